/*
 * fugue: bind the listening sockets once, run N workers of any program on
 * them, keep them alive. main() reads as the start-up order: command line,
 * configuration, checks, logs, pid file, listeners, then the master loop.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "activate.h"
#include "args.h"
#include "client.h"
#include "config.h"
#include "control.h"
#include "logging.h"
#include "master.h"
#include "pidfile.h"
#include "spawn.h"
#include "upgrade.h"

/* The signal mask fugue was started with: main holds the master's signals
 * at once; the clients and the -d launcher give them back. */
static sigset_t caller_mask;

static void
release_signals(void)
{
	sigprocmask(SIG_SETMASK, &caller_mask, NULL);
}

static void
print_errors(struct errlist *e)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(stderr, "fugue: %s\n", e->v[i]);
}


/* Started as root, refuse a config that others could have written. */
static int
check_config_owner(const char *path, struct errlist *errs)
{
	struct stat st;
	char *dir, *copy;

	if (path == NULL || geteuid() != 0)
		return 0;
	if (stat(path, &st) == 0 && (st.st_uid != 0 || (st.st_mode & 022))) {
		errlist_add(errs, "%s: writable by others than root; refusing "
		    "it when running as root", path);
		return EX_CONFIG_;
	}
	copy = xstrdup(path);
	dir = dirname(copy);
	if (stat(dir, &st) == 0 && (st.st_uid != 0 ||
	    ((st.st_mode & 022) && !(st.st_mode & S_ISVTX)))) {
		errlist_add(errs, "%s: its directory %s is writable by others "
		    "than root; refusing it when running as root", path, dir);
		free(copy);
		return EX_CONFIG_;
	}
	free(copy);
	return 0;
}

/* The file, the command line over it, then the checks across keys. */
static int
build_config(struct args *a, struct config *c, struct errlist *errs)
{
	int r = 0;

	/* As typed, so that errors name it so; config_load keeps the
	 * absolute path for reloads and upgrades. */
	if (a->config && (r = config_load(c, a->config, errs)) == EX_NOINPUT_)
		return r;
	for (size_t i = 0; i < a->nov; i++) {
		bool first = true;

		for (size_t j = 0; j < i; j++)
			if (strcmp(a->ov[j].key, a->ov[i].key) == 0)
				first = false;
		/* A repeatable key from the command line replaces the
		 * file's list rather than adding to it. */
		if (first)
			config_reset_key(c, a->ov[i].key);
		if (config_set(c, a->ov[i].section, a->ov[i].key,
		    a->ov[i].value, a->ov[i].where, errs) != 0)
			r = EX_CONFIG_;
	}
	if (a->command) {
		strvec_clear(&c->argv);
		for (int i = 0; i < a->ncommand; i++)
			strvec_push(&c->argv, a->command[i]);
		free(c->command);
		c->command = args_join_command(a->command, a->ncommand);
		config_set_origin(c, "command", "command line");
	}
	/* Checks across keys only make sense once every key parsed. */
	if (r == 0 && config_validate(c, a->daemonize, errs) != 0)
		r = EX_CONFIG_;
	if (check_config_owner(c->path, errs) != 0)
		r = EX_CONFIG_;
	return r;
}

/* The master's way to re-read everything on a reload. */
static int
reload_config(void *arg, struct config *c, struct errlist *errs)
{
	int r = build_config(arg, c, errs);

	if (r == 0 && config_check_host(c, false, errs) != 0)
		r = EX_CONFIG_;
	return r;
}


/*
 * The binary to re-exec on an upgrade: argv[0] made absolute, or found on
 * PATH, without resolving symlinks, so that a deploy that swaps a symlink
 * or replaces the file is what runs next.
 */
static char *
resolve_self(const char *argv0)
{
	char cwd[PATH_MAX], *path = NULL;

	if (argv0[0] == '/')
		return xstrdup(argv0);
	if (strchr(argv0, '/'))
		return getcwd(cwd, sizeof(cwd)) ? xprintf("%s/%s", cwd, argv0) :
		    xstrdup(argv0);
	if (spawn_resolve(argv0, getenv("PATH"), &path) == 0 && path[0] != '/'
	    && getcwd(cwd, sizeof(cwd))) {
		char *abs = xprintf("%s/%s", cwd, path);

		free(path);
		return abs;
	}
	return path ? path : xstrdup(argv0);
}

/*
 * The new image of an upgrade: the state says what the old one ran; adopt
 * it as the serving generation, then reload into the new configuration.
 */
static int
run_upgraded(struct args *a, char **argv, char *self, int state_fd)
{
	struct state *st = xcalloc(1, sizeof(*st));
	struct errlist errs = { 0 };
	struct config old;
	struct master m;
	char err[512];
	int r;

	log_set_echo(1);
	if (upgrade_read_state(state_fd, st, err, sizeof(err)) != 0) {
		log_error("upgrade: cannot read the state the old image left: "
		    "%s", err);
		free(st);
		return EX_OSERR_;
	}
	config_init(&old);
	if (state_config_load(&st->cfg, &old, &errs) != 0) {
		/* Whatever it was, the new configuration can serve too. */
		for (size_t i = 0; i < errs.n; i++)
			log_warnx("upgrade: old configuration: %s", errs.v[i]);
		errlist_free(&errs);
		config_free(&old);
		config_init(&old);
		if (reload_config(a, &old, &errs) != 0) {
			for (size_t i = 0; i < errs.n; i++)
				log_error("%s", errs.v[i]);
		}
	}
	errlist_free(&errs);
	log_set_level(old.log_level);
	master_init(&m, &old, reload_config, a);
	config_free(&old);
	m.self_path = self;
	m.argv = argv;
	m.adopt = st;
	/* The old image's unwritten lines go out first, ahead of ours. */
	if (st->sink_fd != -1 && logsink_import(&m.sink, st->sink_fd) != 0)
		log_warnx("upgrade: the old image's unwritten log lines are "
		    "unreadable");
	st->sink_fd = -1;
	if ((r = master_open_logs(&m, err, sizeof(err))) != 0)
		log_error("upgrade: %s", err);
	if (m.serving->cfg.pid_file &&
	    pidfile_adopt(m.serving->cfg.pid_file, &st->pid_fd,
	    err, sizeof(err)) != 0)
		log_warnx("upgrade: keeping the old image's lock: %s", err);
	r = master_run(&m);
	if (m.pid_fd != -1 && m.serving)
		pidfile_remove(m.serving->cfg.pid_file, m.pid_fd, m.pid);
	if (m.adopt) {
		state_free(m.adopt);
		free(m.adopt);
	}
	master_free(&m);
	return r;
}


/*
 * -d, in the launching process: wait until the daemon reports its first
 * generation ready on fd, then exit 0; if the daemon exits first, with its
 * status; after timeout_ms, with 124 (the daemon goes on).
 */
static void __attribute__((noreturn))
launcher_wait(pid_t pid, int fd, int64_t timeout_ms)
{
	char buf[16], d[32];
	ssize_t n;
	int status;

	release_signals();
	format_duration(timeout_ms, d, sizeof(d));
	client_deadline(timeout_ms, "-d: the daemon (pid %ld) was not ready "
	    "within %s; it goes on starting (-w to wait longer)", (long)pid, d);
	do
		n = read(fd, buf, sizeof(buf));
	while (n == -1 && errno == EINTR);
	if (n > 0 && memcmp(buf, "ready", 5) == 0)
		exit(0);
	if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		exit(WEXITSTATUS(status) ? WEXITSTATUS(status) : EX_UNAVAIL_);
	fprintf(stderr, "fugue: -d: the daemon died before it was ready\n");
	exit(EX_UNAVAIL_);
}

/*
 * -d: the daemon goes on in a new session, and reports to the launching
 * process (launcher_wait) on a pipe. Returns the report fd in the daemon.
 */
static int
daemonize(int64_t timeout_ms)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1 || (pid = fork()) == -1) {
		fprintf(stderr, "fugue: -d: %s\n", strerror(errno));
		exit(EX_OSERR_);
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		return p[1];
	}
	close(p[1]);
	launcher_wait(pid, p[0], timeout_ms);
}

/* -w, or how long this kind of client waits by default. */
static int64_t
client_timeout(const struct args *a, const struct config *c)
{
	if (a->timeout_ms)
		return a->timeout_ms;
	if (a->signal)
		return client_default_timeout(c, NULL, false);
	return client_default_timeout(c, a->action, a->daemonize);
}

/* Each worker costs the master fds: take all the kernel allows. */
static long long
raise_fd_limit(void)
{
	struct rlimit rl;
	long long orig;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -1;
	orig = rl.rlim_cur == RLIM_INFINITY ? -1 : (long long)rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	return orig;	/* workers get this back */
}

int
main(int argc, char **argv)
{
	struct args a = { 0 };
	struct errlist errs = { 0 };
	struct config c;
	struct master m;
	char err[512];
	char *self = NULL;
	const char *env;
	int r, state_fd = -1, ready_fd = -1;
	long long nofile;

	/* Held, never fatal, until the master's watchers are in place. */
	sigprocmask(SIG_BLOCK, NULL, &caller_mask);
	master_hold_signals();
	/* A log file past RLIMIT_FSIZE fails its write (EFBIG: the lines are
	 * dropped and counted) instead of killing the master. */
	signal(SIGXFSZ, SIG_IGN);

	config_init(&c);
	/* Set by the old image of an upgrade: its state, on this fd. */
	if ((env = getenv(STATE_ENV)) != NULL) {
		state_fd = atoi(env);
		unsetenv(STATE_ENV);
	}
	if ((r = args_parse(argc, argv, &a)) != 0)
		goto out;
	/* An upgrade's trial run: check the state, adopt nothing. */
	if ((env = getenv(TRIAL_ENV)) != NULL) {
		if ((r = upgrade_trial(atoi(env), err, sizeof(err))) != 0) {
			fprintf(stderr, "fugue: upgrade trial: %s\n", err);
			r = EX_DATAERR_;
		}
		goto out;
	}
	/* A client is no master: Ctrl-C and the like end it. */
	if (state_fd < 0 && (a.signal || a.action))
		release_signals();
	self = resolve_self(argv[0]);
	if (state_fd >= 0) {
		r = run_upgraded(&a, argv, self, state_fd);
		goto out;
	}
	if (a.config == NULL && a.command == NULL) {
		r = args_usage_error("%s", "no configuration: give -c FILE, or "
		    "-- COMMAND with --listen");
		goto out;
	}

	r = build_config(&a, &c, &errs);
	/* A client needs only where the master listens: a config broken
	 * elsewhere is the master's to refuse, with its reasons. */
	if ((a.signal || a.action) && r == EX_CONFIG_ &&
	    (c.control_socket || c.pid_file)) {
		errlist_free(&errs);
		r = 0;
	}
	/* What the start would find short of binding: -t finds it too. */
	if (r == 0 && !a.signal && !a.action)
		r = config_check_host(&c, true, &errs);
	if (r != 0) {
		print_errors(&errs);
		if (a.test)
			r = EX_CONFIG_;
		goto out;
	}
	if (a.test) {
		printf("fugue: %s: configuration is valid\n",
		    c.path ? c.path : "command line");
		goto out;
	}
	if (a.signal) {
		r = client_signal(&c, a.signal, client_timeout(&a, &c));
		goto out;
	}
	if (a.action) {
		r = client_action(&c, a.action, a.json, client_timeout(&a, &c));
		goto out;
	}
	if (a.daemonize)
		ready_fd = daemonize(client_timeout(&a, &c));

	nofile = raise_fd_limit();
	log_set_level(c.log_level);
	log_set_echo(1);
	master_init(&m, &c, reload_config, &a);
	m.self_path = self;
	m.argv = argv;
	m.nofile = nofile;
	m.ready_fd = ready_fd;
	if ((r = master_open_logs(&m, err, sizeof(err))) != 0) {
		fprintf(stderr, "fugue: %s\n", err);
		goto out_master;
	}
	if (m.serving->cfg.pid_file) {
		r = pidfile_open(m.serving->cfg.pid_file, &m.pid_fd, err,
		    sizeof(err));
		if (r != 0) {
			log_error("%s", err);
			goto out_master;
		}
	}
	if (m.serving->cfg.control_socket && (r = control_open(
	    m.serving->cfg.control_socket, &m.ctl.fd, err, sizeof(err))) != 0) {
		log_error("control socket: %s", err);
		goto out_master;
	}
	if (m.serving->cfg.metrics) {
		if ((r = metrics_open(&m.metrics.l, &m.serving->cfg.metrics_addr,
		    err, sizeof(err))) != 0) {
			log_error("metrics: %s", err);
			goto out_master;
		}
		log_info("metrics on %s (/metrics, /readyz, /livez)",
		    m.metrics.l.addr.text);
	}
	if ((r = activate_listeners(&m.serving->cfg, &m.lsocks, err,
	    sizeof(err))) != 0 || (r = master_bind(&m, err, sizeof(err))) != 0) {
		log_error("%s", err);
		goto out_master;
	}
	if (m.pid_fd != -1 && pidfile_write(m.serving->cfg.pid_file, m.pid) == -1) {
		log_warn("pid file %s", m.serving->cfg.pid_file);
		r = EX_CANTCREAT_;
		goto out_master;
	}
	r = master_run(&m);
out_master:
	if (m.pid_fd != -1 && m.serving)
		pidfile_remove(m.serving->cfg.pid_file, m.pid_fd, m.pid);
	master_free(&m);
out:
	free(self);
	errlist_free(&errs);
	config_free(&c);
	args_free(&a);
	return r;
}
