/*
 * The client side of fugue: -s through the pid file (fire and forget), and
 * status, reload and upgrade through the control socket, which answers
 * once the outcome is known. Every wait has a bound (client_deadline).
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "pidfile.h"
#include "util.h"

/* What the SIGALRM of client_deadline writes: formatted beforehand, since
 * a signal handler may only write(2). */
static char	deadline_line[600];
static size_t	deadline_len;

static void
deadline_passed(int sig)
{
	ssize_t n;

	(void)sig;
	n = write(2, deadline_line, deadline_len);
	(void)n;
	_exit(EX_TIMEOUT_);
}

void
client_deadline(int64_t ms, const char *fmt, ...)
{
	struct sigaction sa;
	struct itimerval it;
	sigset_t alrm;
	size_t room = sizeof(deadline_line) - 8;	/* "fugue: ", '\n' */
	va_list ap;
	int n;

	memcpy(deadline_line, "fugue: ", 7);
	va_start(ap, fmt);
	n = vsnprintf(deadline_line + 7, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	deadline_len = 7 + ((size_t)n < room ? (size_t)n : room - 1);
	deadline_line[deadline_len++] = '\n';
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = deadline_passed;
	sigfillset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	sigprocmask(SIG_UNBLOCK, &alrm, NULL);
	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = ms / 1000;
	it.it_value.tv_usec = (ms % 1000) * 1000;
	setitimer(ITIMER_REAL, &it, NULL);
}

int64_t
client_default_timeout(const struct config *c, const char *action,
    bool daemonize)
{
	if (daemonize)
		return c->ready_timeout_ms + 30 * 1000;
	if (action == NULL || strcmp(action, "status") == 0)
		return 10 * 1000;
	return 2 * c->ready_timeout_ms + c->ready_hold_ms + 30 * 1000;
}

/* sig to the master holding pid_file's lock (its pid in *pid): 0, or an
 * exit code after a line on stderr. */
static int
signal_master(const struct config *c, int sig, pid_t *pidp)
{
	char err[512];
	int r;

	if ((r = pidfile_signal(c->pid_file, sig, pidp, err, sizeof(err))) != 0)
		fprintf(stderr, "fugue: %s\n", err);
	return r;
}

int
client_signal(const struct config *c, const char *name, int64_t timeout_ms)
{
	static const struct { const char *name; int sig; } table[] = {
		{ "quit", SIGQUIT }, { "stop", SIGINT }, { "reload", SIGHUP },
		{ "upgrade", SIGUSR2 }, { "reopen", SIGUSR1 },
		{ "incr", SIGTTIN }, { "decr", SIGTTOU },
	};
	char d[32];
	pid_t pid;

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcmp(name, table[i].name) != 0)
			continue;
		if (c->pid_file == NULL) {
			fprintf(stderr, "fugue: -s needs [master] pid_file in "
			    "the configuration\n");
			return EX_CONFIG_;
		}
		format_duration(timeout_ms, d, sizeof(d));
		client_deadline(timeout_ms, "-s %s: not done within %s (-w to "
		    "wait longer)", name, d);
		return signal_master(c, table[i].sig, &pid);
	}
	fprintf(stderr, "fugue: -s %s: expected quit, stop, reload, upgrade, "
	    "reopen, incr or decr\n(fugue -h for help)\n", name);
	return EX_USAGE_;
}

/* The bound of an action, and what its end says. */
static void
action_deadline(const struct config *c, const char *action, int64_t ms)
{
	char d[32];

	format_duration(ms, d, sizeof(d));
	if (c->control_socket == NULL)
		client_deadline(ms, "%s: not done within %s (-w to wait "
		    "longer)", action, d);
	else if (strcmp(action, "status") == 0)
		client_deadline(ms, "status: no answer from %s within %s "
		    "(-w to wait longer)", c->control_socket, d);
	else
		client_deadline(ms, "%s: no outcome from %s within %s; the "
		    "master may still carry it out (-w to wait longer)", action,
		    c->control_socket, d);
}

/* status, reload, upgrade: through the control socket, else signals. */
int
client_action(const struct config *c, const char *action, bool json,
    int64_t timeout_ms)
{
	int sig = action[0] == 'r' ? SIGHUP : SIGUSR2, r;
	pid_t pid;

	action_deadline(c, action, timeout_ms);
	if (c->control_socket)
		return control_request(c->control_socket,
		    strcmp(action, "status") == 0 && json ?
		    "status json" : action);
	if (strcmp(action, "status") == 0) {
		fprintf(stderr, "fugue: status needs [master] control_socket\n");
		return EX_CONFIG_;
	}
	if (c->pid_file == NULL) {
		fprintf(stderr, "fugue: %s needs [master] control_socket (or "
		    "pid_file, to signal without waiting)\n", action);
		return EX_CONFIG_;
	}
	if ((r = signal_master(c, sig, &pid)) != 0)
		return r;
	printf("fugue: sent %s to pid %ld; the outcome was not awaited (no "
	    "control_socket)\n", signal_name(sig), (long)pid);
	return 0;
}

/* One connection, one command, the answer to stdout: 0 with *total bytes
 * of answer (and its head), or an exit code. */
static int
request_once(const char *path, const char *cmd, char *head, size_t hlen,
    size_t *totalp)
{
	struct sockaddr_un sa;
	char buf[4096];
	size_t total = 0;
	ssize_t n;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "fugue: control socket %s: path too long\n",
		    path);
		return EX_CONFIG_;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		int e = errno;

		fprintf(stderr, "fugue: control socket %s: %s%s\n", path,
		    strerror(e), e == EACCES || e == EPERM ? " (it answers "
		    "only root and the user fugue runs as)" : e == ENOENT ||
		    e == ECONNREFUSED ? " (is fugue running?)" : "");
		if (fd != -1)
			close(fd);
		return EX_UNAVAIL_;
	}
	if (send(fd, cmd, strlen(cmd), MSG_NOSIGNAL) == -1 ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) == -1) {
		int e = errno;

		close(fd);
		*totalp = 0;
		if (e == EPIPE || e == ECONNRESET)
			return 0;	/* closed unread: ask again */
		fprintf(stderr, "fugue: control socket %s: %s\n", path,
		    strerror(e));
		return EX_UNAVAIL_;
	}
	/* A reset before any answer is a close unread too (ECONNRESET). */
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (total < hlen - 1) {
			size_t k = hlen - 1 - total;

			memcpy(head + total, buf, (size_t)n < k ? (size_t)n : k);
		}
		total += (size_t)n;
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			break;
	}
	close(fd);
	fflush(stdout);
	*totalp = total;
	return 0;
}

int
control_request(const char *path, const char *cmd)
{
	char head[16] = "";
	size_t total = 0;
	int r;

	/* Closed without a word: the master re-executed itself (an upgrade)
	 * before it read the command, which it never saw. The listening
	 * socket crossed the exec: ask again at once, the new image answers
	 * from its backlog (the action's deadline still holds). */
	for (int i = 0; i < 5; i++) {
		if ((r = request_once(path, cmd, head, sizeof(head), &total)) != 0)
			return r;
		if (total > 0)
			break;
	}
	if (total == 0) {
		fprintf(stderr, "fugue: control socket %s: no answer\n", path);
		return EX_UNAVAIL_;
	}
	if (strncmp(head, "ok", 2) == 0 || strncmp(head, "fugue pid", 9) == 0 ||
	    head[0] == '{')
		return 0;
	if (strncmp(head, "refused", 7) == 0 || strncmp(head, "error", 5) == 0)
		return EX_CONFIG_;
	return EX_UNAVAIL_;
}
