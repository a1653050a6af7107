#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/close_range.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spawn.h"

#define MAX_LISTENERS	256
#define PID_DIGITS	24

static const char *const private_vars[] = {
	"NOTIFY_SOCKET=", "LISTEN_", "WATCHDOG_", "FUGUE_", NULL
};

bool
spawn_env_private(const char *entry)
{
	for (int i = 0; private_vars[i]; i++)
		if (strncmp(entry, private_vars[i], strlen(private_vars[i])) == 0)
			return true;
	return false;
}

static bool
env_named(const struct strvec *env, const char *entry)
{
	size_t n = strcspn(entry, "=");

	for (size_t i = 0; i < env->n; i++)
		if (strncmp(env->v[i], entry, n) == 0 && env->v[i][n] == '=')
			return true;
	return false;
}

int
spawn_resolve(const char *cmd, const char *pathvar, char **out)
{
	struct stat st;
	const char *p, *q;
	char buf[PATH_MAX];
	int saved = ENOENT;

	*out = NULL;
	if (strchr(cmd, '/')) {
		if (stat(cmd, &st) == -1)
			return -1;
		if (!S_ISREG(st.st_mode)) {
			errno = EACCES;
			return -1;
		}
		if (access(cmd, X_OK) == -1)
			return -1;
		*out = xstrdup(cmd);
		return 0;
	}
	if (*cmd == '\0') {
		errno = ENOENT;
		return -1;
	}
	if (pathvar == NULL || *pathvar == '\0')
		pathvar = "/usr/local/bin:/usr/bin:/bin";
	for (p = pathvar; ; p = q + 1) {
		q = strchr(p, ':');
		size_t dl = q ? (size_t)(q - p) : strlen(p);
		int n = snprintf(buf, sizeof(buf), "%.*s%s%s", (int)dl, p,
		    dl ? "/" : "", cmd);
		if (n > 0 && (size_t)n < sizeof(buf) && stat(buf, &st) == 0 &&
		    S_ISREG(st.st_mode)) {
			if (access(buf, X_OK) == 0) {
				*out = xstrdup(buf);
				return 0;
			}
			saved = EACCES;
		}
		if (q == NULL)
			break;
	}
	errno = saved;
	return -1;
}

/* argv0 found on pathvar, or relative to working_dir when it holds a '/'. */
static int
command_path(const char *argv0, const char *working_dir, const char *pathvar,
    char **out)
{
	char *cmd = NULL;
	int r, e;

	if (argv0[0] != '/' && strchr(argv0, '/') && working_dir)
		cmd = xprintf("%s/%s", working_dir, argv0);
	r = spawn_resolve(cmd ? cmd : argv0, pathvar, out);
	e = errno;
	free(cmd);
	errno = e;
	return r;
}

int
spawn_command_path(const struct config *c, const char *pathvar, char **out)
{
	if (c->argv.n == 0) {
		errno = ENOENT;
		return -1;
	}
	return command_path(c->argv.v[0], c->working_dir, pathvar, out);
}

int
spawn_hook_path(const struct config *c, enum hook_kind k,
    const char *pathvar, char **out)
{
	if (c->hook[k].argv.n == 0) {
		errno = ENOENT;
		return -1;
	}
	return command_path(c->hook[k].argv.v[0], c->working_dir, pathvar,
	    out);
}

/* The environment every process run as the workers get: fugue's (or
 * none), minus what is fugue's own, minus what env= lines override, plus
 * env= lines, plus the user's names. */
static void
plan_env_base(struct spawn_plan *p, const struct config *c, char **environ_)
{
	if (!c->clear_env && environ_)
		for (char **e = environ_; *e; e++)
			if (!spawn_env_private(*e) && !env_named(&c->env, *e) &&
			    !(c->user && (strncmp(*e, "HOME=", 5) == 0 ||
			    strncmp(*e, "USER=", 5) == 0 ||
			    strncmp(*e, "LOGNAME=", 8) == 0)))
				strvec_push(&p->envp, *e);
	for (size_t i = 0; i < c->env.n; i++)
		strvec_push(&p->envp, c->env.v[i]);
	if (c->user && !c->clear_env) {
		if (!env_named(&c->env, "USER="))
			strvec_push_owned(&p->envp, xprintf("USER=%s", c->user));
		if (!env_named(&c->env, "LOGNAME="))
			strvec_push_owned(&p->envp, xprintf("LOGNAME=%s", c->user));
		if (!env_named(&c->env, "HOME=") && c->user_home)
			strvec_push_owned(&p->envp, xprintf("HOME=%s",
			    c->user_home));
	}
}

/* The PATH of the environment built so far, or NULL. */
static const char *
plan_pathvar(const struct spawn_plan *p)
{
	const char *pathvar = NULL;

	for (size_t i = 0; i < p->envp.n; i++)
		if (strncmp(p->envp.v[i], "PATH=", 5) == 0)
			pathvar = p->envp.v[i] + 5;
	return pathvar;
}

/* Who the child becomes and where it runs: the workers' user, group,
 * working_dir, umask and parent-death signal. */
static void
plan_creds(struct spawn_plan *p, const struct config *c, pid_t master)
{
	p->set_creds = c->user != NULL || c->group != NULL;
	p->uid = c->user ? c->uid : (uid_t)-1;
	p->gid = c->gid;
	p->groups = c->groups;
	p->ngroups = c->ngroups;
	/* With group alone, root still sheds its own supplementary groups. */
	p->set_groups = p->set_creds && c->ngroups > 0 &&
	    (c->user != NULL || geteuid() == 0);
	p->working_dir = c->working_dir;
	p->umask = c->umask;
	p->death_signal = c->master_death_signal;
	p->nofile = -1;
	p->master_pid = master;
}

int
spawn_plan_build(struct spawn_plan *p, const struct config *c,
    char **environ_, const int *fds, int nfds, const char *fdnames,
    unsigned gen, pid_t master, const char *notify_path, char *err,
    size_t len)
{
	memset(p, 0, sizeof(*p));
	p->devnull = -1;
	if (nfds > MAX_LISTENERS) {
		snprintf(err, len, "too many listeners (%d, at most %d)", nfds,
		    MAX_LISTENERS);
		return -1;
	}
	if (c->argv.n == 0) {
		snprintf(err, len, "no command");
		return -1;
	}

	plan_env_base(p, c, environ_);
	strvec_push_owned(&p->envp, xprintf("LISTEN_FDS=%d", nfds));
	strvec_push_owned(&p->envp, xprintf("LISTEN_FDNAMES=%s", fdnames));
	strvec_push_owned(&p->envp, xprintf("FUGUE_GENERATION=%u", gen));
	strvec_push_owned(&p->envp, xprintf("FUGUE_MASTER_PID=%ld",
	    (long)master));
	/* ready = fd: the pipe comes right after the listeners, so that
	 * LISTEN_FDS stays right. */
	if (c->ready_pipe)
		strvec_push_owned(&p->envp, xprintf("FUGUE_READY_FD=%d",
		    3 + nfds));
	if (notify_path)
		strvec_push_owned(&p->envp, xprintf("NOTIFY_SOCKET=%s",
		    notify_path));
	if (notify_path || c->ready_pipe) {
		if (c->watchdog_ms > 0)
			strvec_push_owned(&p->envp, xprintf("WATCHDOG_USEC=%lld",
			    (long long)c->watchdog_ms * 1000));
	}
	/* Filled per worker: the slot here, the pid in the child. */
	p->env_slot = xcalloc(1, sizeof("FUGUE_WORKER_ID=") + PID_DIGITS);
	strvec_push_owned(&p->envp, p->env_slot);
	p->env_pid = xcalloc(1, sizeof("LISTEN_PID=") + PID_DIGITS);
	strcpy(p->env_pid, "LISTEN_PID=");
	strvec_push_owned(&p->envp, p->env_pid);

	/* The command: found on the workers' PATH, relative to working_dir. */
	if (spawn_command_path(c, plan_pathvar(p), &p->path) == -1) {
		snprintf(err, len, "command %s: %s", c->argv.v[0],
		    strerror(errno));
		spawn_plan_free(p);
		return -1;
	}
	strvec_copy(&p->argv, &c->argv);

	p->fds = fds;
	p->nfds = nfds;
	p->ready_fd = -1;
	p->blocking = c->blocking;
	plan_creds(p, c, master);
	return 0;
}

int
spawn_plan_hook(struct spawn_plan *p, const struct config *c,
    enum hook_kind k, char **environ_, const struct strvec *vars,
    pid_t master, char *err, size_t len)
{
	const struct strvec *argv = &c->hook[k].argv;

	memset(p, 0, sizeof(*p));
	p->devnull = -1;
	p->ready_fd = -1;
	if (argv->n == 0) {
		snprintf(err, len, "%s: no command", hook_name(k));
		return -1;
	}
	plan_env_base(p, c, environ_);
	strvec_push_owned(&p->envp, xprintf("FUGUE_MASTER_PID=%ld",
	    (long)master));
	for (size_t i = 0; i < vars->n; i++)
		strvec_push(&p->envp, vars->v[i]);
	if (spawn_hook_path(c, k, plan_pathvar(p), &p->path) == -1) {
		snprintf(err, len, "%s: %s: %s", hook_name(k), argv->v[0],
		    strerror(errno));
		spawn_plan_free(p);
		return -1;
	}
	strvec_copy(&p->argv, argv);
	plan_creds(p, c, master);
	return 0;
}

void
spawn_plan_free(struct spawn_plan *p)
{
	free(p->path);
	strvec_clear(&p->argv);
	strvec_clear(&p->envp);	/* env_slot and env_pid are in it */
	memset(p, 0, sizeof(*p));
	p->devnull = -1;
}

/* Decimal digits of v into dst, NUL-terminated. Async-signal-safe. */
static void
put_decimal(char *dst, unsigned long v)
{
	char tmp[PID_DIGITS];
	int n = 0;

	do {
		tmp[n++] = '0' + v % 10;
		v /= 10;
	} while (v && n < PID_DIGITS - 1);
	while (n)
		*dst++ = tmp[--n];
	*dst = '\0';
}

static void __attribute__((noreturn))
child_fail(int fd, int stage)
{
	struct spawn_report r = { stage, errno };
	ssize_t n = write(fd, &r, sizeof(r));

	(void)n;
	_exit(127);
}

static int
set_nonblocking(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	return fl == -1 ? -1 : fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK :
	    fl & ~O_NONBLOCK);
}

/* In a child: every signal blocked, then default dispositions; the mask
 * is emptied just before exec. libev's blocked and ignored signals would
 * otherwise survive exec. Async-signal-safe. */
static void
child_reset_signals(void)
{
	struct sigaction sa;
	sigset_t set;

	/* Every signal is blocked from before the fork (spawn_worker): one
	 * sent now stays pending instead of running the master's handler
	 * here, where it would be lost. Default dispositions while it is
	 * held, an empty mask just before exec: it then acts as it would
	 * on any program (and ignored ones do not survive exec). */
	sigfillset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int i = 1; i < NSIG; i++)
		if (sigaction(i, &sa, NULL) == -1 && errno == EINVAL) {
			/* glibc keeps 32 and 33 to itself; an ignored one
			 * would survive exec. The kernel's call takes them. */
			struct {
				void		*handler;
				unsigned long	 flags;
				void		*restorer;
				unsigned long	 mask;
			} k = { 0 };

			syscall(SYS_rt_sigaction, i, &k, NULL, sizeof(k.mask));
		}
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void __attribute__((noreturn))
child_exec(struct spawn_plan *p, int out_fd, int err_fd, int errpipe)
{
	int src[MAX_LISTENERS + 4], n = p->nfds + 3, i;
	sigset_t set;

	child_reset_signals();

	/* Its own process group: a terminal's Ctrl-C reaches only fugue. */
	setpgid(0, 0);

	/* fds: first everything up out of the way (above every target),
	 * then down into place; dup2 clears close-on-exec on the copy. */
	src[0] = p->devnull;
	src[1] = out_fd;
	src[2] = err_fd;
	for (i = 0; i < p->nfds; i++)
		src[3 + i] = p->fds[i];
	if (p->ready_fd >= 0)
		src[n++] = p->ready_fd;
	if ((errpipe = fcntl(errpipe, F_DUPFD_CLOEXEC, n)) == -1)
		_exit(127);
	for (i = 0; i < n; i++)
		if ((src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, n)) == -1)
			child_fail(errpipe, SP_FDS);
	for (i = 0; i < n; i++)
		if (dup2(src[i], i) == -1)
			child_fail(errpipe, SP_FDS);
	/* The listeners' O_NONBLOCK is shared by every worker, and any of
	 * them may have changed it: each one starts as its generation's
	 * [listen] blocking says (non-blocking unless set), as fugue(8)
	 * promises. */
	for (i = 3; i < p->nfds + 3; i++)
		if (set_nonblocking(i, !p->blocking) == -1)
			child_fail(errpipe, SP_FDS);
	/* Anything fugue itself inherited without close-on-exec. */
	syscall(SYS_close_range, n, ~0U, CLOSE_RANGE_CLOEXEC);

	if (p->set_creds) {
		/* Its output pipe (mode 0600, the master's) becomes its
		 * user's: a server that opens /dev/stderr or /proc/self/fd/2
		 * again (php-fpm's error_log) may. */
		if (fchown(1, p->uid, p->gid) == -1 ||
		    fchown(2, p->uid, p->gid) == -1)
			child_fail(errpipe, SP_FDS);
		if (p->set_groups && setgroups(p->ngroups, p->groups) == -1)
			child_fail(errpipe, SP_SETGROUPS);
		if (setgid(p->gid) == -1)
			child_fail(errpipe, SP_SETGID);
		if (p->uid != (uid_t)-1 && setuid(p->uid) == -1)
			child_fail(errpipe, SP_SETUID);
	}
	/* After the credential change, which clears it; then make sure the
	 * master did not die before it was set. */
	if (prctl(PR_SET_PDEATHSIG, p->death_signal) == -1)
		child_fail(errpipe, SP_PDEATHSIG);
	if (getppid() != p->master_pid) {
		errno = ESRCH;
		child_fail(errpipe, SP_ORPHANED);
	}
	/* The soft fd limit fugue had before it raised its own. */
	if (p->nofile >= 0) {
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
			rl.rlim_cur = (rlim_t)p->nofile;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if (p->working_dir && chdir(p->working_dir) == -1)
		child_fail(errpipe, SP_CHDIR);
	if (p->umask >= 0)
		umask(p->umask);

	if (p->env_pid)
		put_decimal(p->env_pid + sizeof("LISTEN_PID=") - 1,
		    (unsigned long)getpid());
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	execve(p->path, p->argv.v, p->envp.v);
	child_fail(errpipe, SP_EXEC);
}

pid_t
spawn_worker(struct spawn_plan *p, unsigned slot, int out_fd, int err_fd,
    int *execfd, const char **step)
{
	sigset_t all, old;
	int pfd[2], e;
	pid_t pid;

	if (p->env_slot) {
		strcpy(p->env_slot, "FUGUE_WORKER_ID=");
		put_decimal(p->env_slot + sizeof("FUGUE_WORKER_ID=") - 1,
		    slot);
	}
	*step = "pipe";
	if (pipe2(pfd, O_CLOEXEC) == -1)
		return -1;
	*step = "fork";
	/* The child starts with every signal blocked; see child_exec. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		child_exec(p, out_fd, err_fd, pfd[1]);
	e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid == -1) {
		close(pfd[0]);
		close(pfd[1]);
		errno = e;
		return -1;
	}
	close(pfd[1]);
	setpgid(pid, pid);	/* also here: no race with a kill(-pid) */
	*execfd = pfd[0];
	return pid;
}

const char *
spawn_stage_name(int stage)
{
	switch (stage) {
	case SP_FDS:
		return "set up file descriptors";
	case SP_SETGROUPS:
		return "setgroups";
	case SP_SETGID:
		return "setgid";
	case SP_SETUID:
		return "setuid";
	case SP_PDEATHSIG:
		return "set the parent-death signal";
	case SP_ORPHANED:
		return "start (the master died)";
	case SP_CHDIR:
		return "chdir to working_dir";
	case SP_EXEC:
		return "exec";
	}
	return "start";
}

pid_t
spawn_command(const char *path, char *const argv[], char *const envp[],
    int in_fd, int out_fd, const int *keep, int nkeep)
{
	sigset_t all, old;
	pid_t pid;

	/* Blocked across the fork: a signal meant for the child waits for
	 * its default disposition instead of running the master's handler. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		sigset_t none;

		child_reset_signals();
		setpgid(0, 0);
		if (dup2(in_fd, 0) == -1 || dup2(out_fd, 1) == -1 ||
		    dup2(out_fd, 2) == -1)
			_exit(127);
		for (int i = 0; i < nkeep; i++)
			fcntl(keep[i], F_SETFD, 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(path, argv, envp);
		_exit(127);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid > 0)
		setpgid(pid, pid);
	return pid;
}
