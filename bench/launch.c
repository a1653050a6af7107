/*
 * bench/launch.c - the no-supervisor baseline of fugue's benchmarks.
 *
 * It does the least a launcher can: bind one TCP socket, fork N children and
 * exec the worker in each with the socket on fd 3 and LISTEN_FDS=1,
 * LISTEN_PID=<child pid>, FUGUE_WORKER_ID=<slot> set (systemd's
 * socket-activation convention, which is also fugue's worker contract). No
 * readiness timers, no log capture, no generations.
 *
 * usage: launch --listen HOST:PORT [--workers N] [--notify] [--respawn]
 *               [--ready-fd FD] -- COMMAND [ARG ...]
 *   --notify      give each child a NOTIFY_SOCKET and count its READY=1;
 *                 without it a child counts as ready once exec succeeded
 *   --ready-fd FD write "ready N\n" to FD once all N first children are
 *                 ready, then close it
 *   --respawn     restart a child that exits, at once, in the same slot
 *                 (without it, or when exec fails, the launcher exits when
 *                 the last child has)
 * TERM, INT or QUIT: TERM to every child, wait for them, exit 0. The
 * children get the parent-death signal TERM, so none outlives the launcher.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

static int nworkers = 1, notify, respawn, ready_fd = -1, lfd = -1;
static pid_t *pids;
static char **cmd;
static char notify_name[108];
static int nalive, nready, reported;
static sigset_t handled;

static void die(const char *what)
{
	fprintf(stderr, "launch: %s: %s\n", what, strerror(errno));
	exit(1);
}

static pid_t spawn(int slot)
{
	char buf[32];
	pid_t p = fork();

	if (p < 0)
		die("fork");
	if (p > 0)
		return p;
	sigprocmask(SIG_UNBLOCK, &handled, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		_exit(1);
	if (lfd == 3) {
		fcntl(3, F_SETFD, 0);
	} else {
		if (dup2(lfd, 3) < 0)
			_exit(1);
	}
	snprintf(buf, sizeof buf, "%d", (int)getpid());
	setenv("LISTEN_PID", buf, 1);
	setenv("LISTEN_FDS", "1", 1);
	snprintf(buf, sizeof buf, "%d", slot);
	setenv("FUGUE_WORKER_ID", buf, 1);
	if (notify)
		setenv("NOTIFY_SOCKET", notify_name, 1);
	else
		unsetenv("NOTIFY_SOCKET");
	execvp(cmd[0], cmd);
	fprintf(stderr, "launch: exec %s: %s\n", cmd[0], strerror(errno));
	_exit(127);
}

static void report_ready(void)
{
	char msg[64];
	int n;

	if (reported || nready < nworkers)
		return;
	reported = 1;
	if (ready_fd >= 0) {
		n = snprintf(msg, sizeof msg, "ready %d\n", nworkers);
		if (write(ready_fd, msg, (size_t)n) != n)
			fprintf(stderr, "launch: ready-fd: %s\n", strerror(errno));
		close(ready_fd);
		ready_fd = -1;
	}
}

int main(int argc, char **argv)
{
	const char *listen_at = NULL;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int sfd, nfd = -1, one = 1, stopping = 0, i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
			listen_at = argv[++i];
		} else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
			nworkers = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--ready-fd") && i + 1 < argc) {
			ready_fd = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--notify")) {
			notify = 1;
		} else if (!strcmp(argv[i], "--respawn")) {
			respawn = 1;
		} else {
			break;
		}
	}
	if (i >= argc || !listen_at || nworkers < 1 || nworkers > 100000) {
		fprintf(stderr, "usage: launch --listen HOST:PORT [--workers N] "
		    "[--notify] [--respawn] [--ready-fd FD] -- COMMAND [ARG ...]\n");
		return 2;
	}
	cmd = argv + i;
	if (ready_fd >= 0)
		fcntl(ready_fd, F_SETFD, FD_CLOEXEC);

	{
		char host[64];
		const char *colon = strrchr(listen_at, ':');

		if (!colon || (size_t)(colon - listen_at) >= sizeof host) {
			fprintf(stderr, "launch: bad address %s\n", listen_at);
			return 2;
		}
		memcpy(host, listen_at, (size_t)(colon - listen_at));
		host[colon - listen_at] = 0;
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
			fprintf(stderr, "launch: bad host %s\n", host);
			return 2;
		}
		sa.sin_port = htons((unsigned short)atoi(colon + 1));
	}
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("bind");
	if (listen(lfd, 1024) < 0)
		die("listen");

	sigemptyset(&handled);
	sigaddset(&handled, SIGTERM);
	sigaddset(&handled, SIGINT);
	sigaddset(&handled, SIGQUIT);
	sigaddset(&handled, SIGCHLD);
	sigprocmask(SIG_BLOCK, &handled, NULL);
	if ((sfd = signalfd(-1, &handled, SFD_CLOEXEC)) < 0)
		die("signalfd");

	if (notify) {
		struct sockaddr_un un = { .sun_family = AF_UNIX };
		socklen_t len;

		snprintf(notify_name, sizeof notify_name, "@fugue-bench-launch-%d",
		    (int)getpid());
		memcpy(un.sun_path, notify_name, strlen(notify_name));
		un.sun_path[0] = 0;
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		    strlen(notify_name));
		if ((nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, 0)) < 0)
			die("socket(AF_UNIX)");
		if (bind(nfd, (struct sockaddr *)&un, len) < 0)
			die("bind(notify)");
	}

	if (!(pids = calloc((size_t)nworkers, sizeof *pids)))
		die("calloc");
	for (i = 0; i < nworkers; i++) {
		pids[i] = spawn(i);
		nalive++;
	}
	if (!notify) {
		nready = nworkers;	/* exec started: nothing else to wait for */
		report_ready();
	}

	for (;;) {
		struct pollfd pf[2] = { { sfd, POLLIN, 0 }, { nfd, POLLIN, 0 } };

		if (poll(pf, nfd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (nfd >= 0 && (pf[1].revents & POLLIN)) {
			char msg[256];
			ssize_t n;

			while ((n = recv(nfd, msg, sizeof msg - 1, 0)) > 0) {
				msg[n] = 0;
				if (strstr(msg, "READY=1")) {
					nready++;
					report_ready();
				}
			}
		}
		if (pf[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof si) == sizeof si) {
				if (si.ssi_signo != SIGCHLD && !stopping) {
					stopping = 1;
					respawn = 0;
					close(lfd);
					for (i = 0; i < nworkers; i++)
						if (pids[i] > 0)
							kill(pids[i], SIGTERM);
				}
				break;
			}
			for (;;) {
				int st;
				pid_t p = waitpid(-1, &st, WNOHANG);

				if (p <= 0)
					break;
				for (i = 0; i < nworkers; i++) {
					if (pids[i] != p)
						continue;
					if (respawn && WIFEXITED(st) &&
					    WEXITSTATUS(st) == 127) {
						/* exec failed: respawning would spin */
						respawn = 0;
						stopping = 1;
						for (int j = 0; j < nworkers; j++)
							if (pids[j] > 0 && j != i)
								kill(pids[j], SIGTERM);
					}
					if (respawn) {
						pids[i] = spawn(i);
					} else {
						pids[i] = 0;
						nalive--;
					}
					break;
				}
			}
			if (nalive == 0)
				return 0;
		}
	}
}
