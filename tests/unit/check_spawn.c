/* Unit tests of src/spawn.c: what is private in fugue's environment, how a
 * command is found, the plan of a generation (argv and the exact
 * environment of the worker contract, fugue(8)), and real spawns: the worker's fds, pid,
 * slot, signals, and failures reported through the exec-error pipe. */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "spawn.h"
#include "util.h"

#define WAIT_MS	5000	/* bound on every wait for a child */

static char dir[64];
static int cwd_fd = -1;
static struct config c;
static struct errlist errs;

static void
mkfile(const char *rel, const char *text, mode_t mode)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static void
mksub(const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	ck_assert_int_eq(mkdir(path, 0755), 0);
}

static void
setup(void)
{
	strcpy(dir, "/tmp/fugue-spawn-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* kept high: the low fds are for the spawn tests to arrange */
	cwd_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(cwd_fd, 0);
	{
		int high = fcntl(cwd_fd, F_DUPFD_CLOEXEC, 40);

		ck_assert_int_ge(high, 40);
		close(cwd_fd);
		cwd_fd = high;
	}
	mksub("bin1");
	mksub("bin2");
	mksub("bin1/sub");
	mkfile("bin1/prog", "#!/bin/sh\nexit 0\n", 0755);
	mkfile("bin1/noexec", "#!/bin/sh\nexit 0\n", 0644);
	mkfile("bin1/prog2", "#!/bin/sh\nexit 0\n", 0644);
	mkfile("bin2/prog2", "#!/bin/sh\nexit 0\n", 0755);
	config_init(&c);
	memset(&errs, 0, sizeof(errs));
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) == -1)
		fprintf(stderr, "cannot remove %s: %s\n", path,
		    strerror(errno));
	return 0;
}

static void
teardown(void)
{
	if (cwd_fd >= 0) {
		if (fchdir(cwd_fd) == -1)
			perror("fchdir");
		close(cwd_fd);
		cwd_fd = -1;
	}
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	config_free(&c);
	errlist_free(&errs);
}

static const char *
errors(void)
{
	static char buf[4096];

	buf[0] = '\0';
	for (size_t i = 0; i < errs.n; i++) {
		strncat(buf, errs.v[i], sizeof(buf) - strlen(buf) - 1);
		strncat(buf, " | ", sizeof(buf) - strlen(buf) - 1);
	}
	return buf;
}

static void
set(const char *sec, const char *key, const char *value)
{
	ck_assert_msg(config_set(&c, sec, key, value, "test", &errs) == 0,
	    "%s %s = %s: %s", sec, key, value, errors());
}

/* ---- spawn_env_private ---- */

START_TEST(env_private)
{
	static const char *const yes[] = {
		"NOTIFY_SOCKET=/run/systemd/notify", "NOTIFY_SOCKET=",
		"LISTEN_FDS=2", "LISTEN_PID=1", "LISTEN_FDNAMES=a:b",
		"WATCHDOG_USEC=1000000", "WATCHDOG_PID=1", "FUGUE_STATE_FD=3",
		"FUGUE_WORKER_ID=0", "FUGUE_GENERATION=1",
		"FUGUE_MASTER_PID=1", "FUGUE_ANYTHING=x",
	};
	static const char *const no[] = {
		"PATH=/usr/bin:/bin", "HOME=/root", "NOTIFY_SOCKETS=x",
		"LISTEN=1", "WATCHDOG=1", "FUGUE=1",
		"MY_FUGUE_X=1", "notify_socket=x", "fugue_x=1", "XLISTEN_FDS=1",
		"", "=",
	};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		ck_assert_msg(spawn_env_private(yes[i]), "%s kept", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		ck_assert_msg(!spawn_env_private(no[i]), "%s private", no[i]);
}
END_TEST

/* ---- spawn_resolve ---- */

static void
expect_resolved(const char *cmd, const char *pathvar, const char *want)
{
	char *out = (char *)1;

	errno = 0;
	ck_assert_msg(spawn_resolve(cmd, pathvar, &out) == 0,
	    "%s on %s: %s", cmd, pathvar ? pathvar : "(null)",
	    strerror(errno));
	ck_assert_ptr_nonnull(out);
	if (want)
		ck_assert_str_eq(out, want);
	free(out);
}

static void
expect_unresolved(const char *cmd, const char *pathvar, int err)
{
	char *out = (char *)1;

	errno = 0;
	ck_assert_msg(spawn_resolve(cmd, pathvar, &out) == -1, "%s found",
	    cmd);
	ck_assert_ptr_null(out);
	ck_assert_msg(errno == err, "%s: errno %d (%s), want %d (%s)", cmd,
	    errno, strerror(errno), err, strerror(err));
}

START_TEST(resolve_paths)
{
	char a[PATH_MAX], b[PATH_MAX], pathvar[2 * PATH_MAX];

	/* absolute */
	snprintf(a, sizeof(a), "%s/bin1/prog", dir);
	expect_resolved(a, NULL, a);
	expect_resolved(a, "/nonexistent", a);
	/* relative with a '/': as it is, not on PATH */
	ck_assert_int_eq(chdir(dir), 0);
	expect_resolved("bin1/prog", "/nonexistent", "bin1/prog");
	expect_resolved("./bin1/prog", "/nonexistent", "./bin1/prog");
	expect_unresolved("bin1/prog/", "/nonexistent", ENOTDIR);
	/* a bare name on PATH */
	snprintf(pathvar, sizeof(pathvar), "/nonexistent:%s/bin1", dir);
	expect_resolved("prog", pathvar, a);
	/* the first executable one wins, a non-executable one is skipped */
	snprintf(pathvar, sizeof(pathvar), "%s/bin1:%s/bin2", dir, dir);
	snprintf(b, sizeof(b), "%s/bin2/prog2", dir);
	expect_resolved("prog2", pathvar, b);
	/* an empty PATH entry is the current directory */
	ck_assert_int_eq(chdir("bin1"), 0);
	expect_resolved("prog", "/nonexistent:", "prog");
	expect_resolved("prog", "/nonexistent::/nonexistent2", "prog");
	/* no PATH, or an empty one: the default, where sh is */
	expect_resolved("sh", NULL, NULL);
	expect_resolved("sh", "", NULL);
	{
		char *out = NULL;

		ck_assert_int_eq(spawn_resolve("sh", NULL, &out), 0);
		ck_assert_int_eq(out[0], '/');
		ck_assert_str_eq(strrchr(out, '/'), "/sh");
		free(out);
	}
}
END_TEST

START_TEST(resolve_failures)
{
	char a[PATH_MAX], pathvar[PATH_MAX];

	snprintf(pathvar, sizeof(pathvar), "%s/bin1", dir);
	/* missing */
	expect_unresolved("nosuchprog", pathvar, ENOENT);
	expect_unresolved("nosuchprog", "/nonexistent:/nonexistent2", ENOENT);
	snprintf(a, sizeof(a), "%s/bin1/nosuchprog", dir);
	expect_unresolved(a, pathvar, ENOENT);
	snprintf(a, sizeof(a), "%s/nodir/prog", dir);
	expect_unresolved(a, pathvar, ENOENT);
	expect_unresolved("", pathvar, ENOENT);
	/* not executable (root too: no x bit at all) */
	snprintf(a, sizeof(a), "%s/bin1/noexec", dir);
	expect_unresolved(a, pathvar, EACCES);
	expect_unresolved("noexec", pathvar, EACCES);
	/* found but not executable, then missing elsewhere: still EACCES */
	{
		char pv[2 * PATH_MAX];

		snprintf(pv, sizeof(pv), "%s/bin1:/nonexistent", dir);
		expect_unresolved("noexec", pv, EACCES);
	}
	/* a directory is not executable */
	snprintf(a, sizeof(a), "%s/bin1", dir);
	expect_unresolved(a, pathvar, EACCES);
	snprintf(a, sizeof(a), "%s/bin1/sub/", dir);
	expect_unresolved(a, pathvar, EACCES);
	{
		char *out = (char *)1;

		ck_assert_int_eq(spawn_resolve("sub", pathvar, &out), -1);
		ck_assert_ptr_null(out);
		ck_assert(errno == ENOENT || errno == EACCES);
	}
}
END_TEST

/* ---- spawn_plan_build ---- */

static char *fake_environ[] = {
	"PATH=/usr/bin:/bin",
	"HOME=/home/someone",
	"USER=someone",
	"LANG=C.UTF-8",
	"NODE_ENV=development",
	"NOTIFY_SOCKET=/run/systemd/notify",
	"LISTEN_FDS=2",
	"LISTEN_PID=1",
	"LISTEN_FDNAMES=a:b",
	"WATCHDOG_USEC=100",
	"WATCHDOG_PID=1",
	"FUGUE_STATE_FD=5",
	"FUGUE_WORKER_ID=9",
	"FUGUE_GENERATION=1",
	"FUGUE_MASTER_PID=1",
	"TERM=xterm",
	NULL
};

/* envp holds exactly want (in any order), plus the two per-worker
 * entries, each once. */
static void
expect_env(const struct spawn_plan *p, const char *const *want, size_t n)
{
	size_t seen_slot = 0, seen_pid = 0;

	ck_assert_ptr_nonnull(p->envp.v);
	ck_assert_ptr_null(p->envp.v[p->envp.n]);
	for (size_t i = 0; i < p->envp.n; i++) {
		const char *e = p->envp.v[i];
		size_t hits = 0;

		if (e == p->env_slot) {
			seen_slot++;
			continue;
		}
		if (e == p->env_pid) {
			seen_pid++;
			continue;
		}
		for (size_t j = 0; j < n; j++)
			hits += strcmp(e, want[j]) == 0;
		ck_assert_msg(hits == 1, "unexpected entry \"%s\"", e);
		/* no other entry of the same name */
		for (size_t k = 0; k < p->envp.n; k++) {
			size_t nl = strcspn(e, "=");

			if (k != i && p->envp.v[k] != p->env_slot &&
			    p->envp.v[k] != p->env_pid)
				ck_assert_msg(strncmp(p->envp.v[k], e,
				    nl + 1) != 0, "\"%.*s\" twice", (int)nl, e);
		}
	}
	ck_assert_uint_eq(seen_slot, 1);
	ck_assert_uint_eq(seen_pid, 1);
	ck_assert_uint_eq(p->envp.n, n + 2);
	ck_assert_str_eq(p->env_pid, "LISTEN_PID=");
}

static void
build(struct spawn_plan *p, char **env, const int *fds, int nfds,
    const char *names, unsigned gen, pid_t master, const char *notify)
{
	char err[512] = "";

	if (c.nlisten == 0)
		set("listen", "address", "127.0.0.1:8080");
	ck_assert_msg(config_validate(&c, false, &errs) == 0, "%s", errors());
	ck_assert_msg(spawn_plan_build(p, &c, env, fds, nfds, names, gen,
	    master, notify, err, sizeof(err)) == 0, "%s", err);
}

START_TEST(plan_inherit)
{
	static const char *const want[] = {
		"PATH=/usr/bin:/bin", "HOME=/home/someone", "USER=someone",
		"LANG=C.UTF-8", "TERM=xterm", "NODE_ENV=production", "EXTRA=1",
		"LISTEN_FDS=1", "LISTEN_FDNAMES=127.0.0.1_8080",
		"FUGUE_GENERATION=7", "FUGUE_MASTER_PID=4242",
	};
	struct spawn_plan p;
	int fds[1] = { 7 };

	set("worker", "command", "/bin/sh -c 'echo \"a b\"' x");
	set("worker", "env", "NODE_ENV=production");
	set("worker", "env", "EXTRA=1");
	build(&p, fake_environ, fds, 1, "127.0.0.1_8080", 7, 4242, NULL);
	expect_env(&p, want, sizeof(want) / sizeof(want[0]));
	ck_assert_str_eq(p.path, "/bin/sh");
	ck_assert_uint_eq(p.argv.n, 4);
	ck_assert_str_eq(p.argv.v[0], "/bin/sh");
	ck_assert_str_eq(p.argv.v[1], "-c");
	ck_assert_str_eq(p.argv.v[2], "echo \"a b\"");
	ck_assert_str_eq(p.argv.v[3], "x");
	ck_assert_ptr_null(p.argv.v[4]);
	ck_assert_ptr_eq(p.fds, fds);
	ck_assert_int_eq(p.nfds, 1);
	ck_assert_int_eq(p.master_pid, 4242);
	ck_assert_int_eq(p.umask, -1);
	ck_assert_int_eq(p.death_signal, SIGTERM);
	ck_assert(!p.set_creds);
	ck_assert_ptr_null(p.working_dir);
	spawn_plan_free(&p);
	ck_assert_ptr_null(p.path);
	ck_assert_uint_eq(p.envp.n, 0);
	ck_assert_uint_eq(p.argv.n, 0);
	/* twice is harmless */
	spawn_plan_free(&p);
}
END_TEST

/* A hook runs as the workers do, without what is theirs alone. */
START_TEST(plan_hook)
{
	static const char *const want[] = {
		"PATH=/usr/bin:/bin", "HOME=/home/someone", "USER=someone",
		"LANG=C.UTF-8", "TERM=xterm", "LB_POOL=web",
		"NODE_ENV=development", "FUGUE_MASTER_PID=4242",
		"FUGUE_HOOK=exec_before_reload", "FUGUE_OLD_GENERATION=3",
	};
	struct strvec vars = { NULL, 0 };
	struct spawn_plan p;
	char err[512] = "", exe[128];

	set("worker", "env", "LB_POOL=web");
	set("worker", "umask", "027");
	set("worker", "working_dir", dir);
	strvec_push(&vars, "FUGUE_HOOK=exec_before_reload");
	strvec_push(&vars, "FUGUE_OLD_GENERATION=3");
	/* relative to working_dir, as command is */
	set("master", "exec_before_reload", "bin2/lb leave 'my host'");
	ck_assert_int_eq(spawn_plan_hook(&p, &c, HOOK_BEFORE, fake_environ,
	    &vars, 4242, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "exec_before_reload: bin2/lb: No such file or "
	    "directory");
	set("master", "exec_before_reload", "bin1/prog leave 'my host'");
	ck_assert_msg(spawn_plan_hook(&p, &c, HOOK_BEFORE, fake_environ, &vars,
	    4242, err, sizeof(err)) == 0, "%s", err);
	snprintf(exe, sizeof(exe), "%s/bin1/prog", dir);
	ck_assert_str_eq(p.path, exe);
	ck_assert_uint_eq(p.argv.n, 3);
	ck_assert_str_eq(p.argv.v[2], "my host");
	ck_assert_ptr_null(p.argv.v[3]);
	ck_assert_ptr_null(p.env_slot);
	ck_assert_ptr_null(p.env_pid);
	ck_assert_uint_eq(p.envp.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < p.envp.n; i++) {
		size_t hits = 0;

		for (size_t j = 0; j < sizeof(want) / sizeof(want[0]); j++)
			hits += strcmp(p.envp.v[i], want[j]) == 0;
		ck_assert_msg(hits == 1, "unexpected entry \"%s\"",
		    p.envp.v[i]);
	}
	ck_assert_int_eq(p.nfds, 0);
	ck_assert_int_eq(p.ready_fd, -1);
	ck_assert_int_eq(p.umask, 027);
	ck_assert_str_eq(p.working_dir, dir);
	ck_assert_int_eq(p.master_pid, 4242);
	spawn_plan_free(&p);
	/* one not set: nothing to run */
	ck_assert_int_eq(spawn_plan_hook(&p, &c, HOOK_AFTER, fake_environ,
	    &vars, 4242, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "exec_after_reload: no command");
	strvec_clear(&vars);
}
END_TEST

START_TEST(plan_notify)
{
	static const char *const want[] = {
		"PATH=/usr/bin:/bin", "HOME=/home/someone", "USER=someone",
		"LANG=C.UTF-8", "TERM=xterm", "NODE_ENV=development",
		"LISTEN_FDS=2", "LISTEN_FDNAMES=a:b", "FUGUE_GENERATION=1",
		"FUGUE_MASTER_PID=99", "NOTIFY_SOCKET=/tmp/fugue 1.notify",
		"WATCHDOG_USEC=2500000",
	};
	struct spawn_plan p;
	int fds[2] = { 5, 6 };

	set("worker", "command", "/bin/true");
	set("worker", "ready", "notify");
	set("worker", "watchdog", "2.5s");
	build(&p, fake_environ, fds, 2, "a:b", 1, 99, "/tmp/fugue 1.notify");
	expect_env(&p, want, sizeof(want) / sizeof(want[0]));
	spawn_plan_free(&p);
}
END_TEST

/* No watchdog: no WATCHDOG_USEC; no notify path: neither. */
START_TEST(plan_notify_no_watchdog)
{
	static const char *const want[] = {
		"PATH=/usr/bin:/bin", "HOME=/home/someone", "USER=someone",
		"LANG=C.UTF-8", "TERM=xterm", "NODE_ENV=development",
		"LISTEN_FDS=0", "LISTEN_FDNAMES=", "FUGUE_GENERATION=3",
		"FUGUE_MASTER_PID=99", "NOTIFY_SOCKET=/run/n.sock",
	};
	struct spawn_plan p;

	set("worker", "command", "/bin/true");
	set("worker", "ready", "notify");
	build(&p, fake_environ, NULL, 0, "", 3, 99, "/run/n.sock");
	expect_env(&p, want, sizeof(want) / sizeof(want[0]));
	spawn_plan_free(&p);

	/* ready = notify with a watchdog, but no notify socket given */
	set("worker", "watchdog", "1s");
	build(&p, fake_environ, NULL, 0, "", 3, 99, NULL);
	expect_env(&p, want, sizeof(want) / sizeof(want[0]) - 1);
	spawn_plan_free(&p);
}
END_TEST

START_TEST(plan_clear_env)
{
	static const char *const want[] = {
		"NODE_ENV=production", "EXTRA=two words",
		"LISTEN_FDS=1", "LISTEN_FDNAMES=web", "FUGUE_GENERATION=2",
		"FUGUE_MASTER_PID=1234",
	};
	struct spawn_plan p;
	int fds[1] = { 9 };

	set("worker", "command", "sh -c true");
	set("worker", "env", "NODE_ENV=production");
	set("worker", "env", "EXTRA=two words");
	set("worker", "clear_env", "yes");
	build(&p, fake_environ, fds, 1, "web", 2, 1234, NULL);
	expect_env(&p, want, sizeof(want) / sizeof(want[0]));
	/* no PATH: found on the default one */
	ck_assert_int_eq(p.path[0], '/');
	ck_assert_str_eq(strrchr(p.path, '/'), "/sh");
	spawn_plan_free(&p);
}
END_TEST

/* No environment at all given (environ_ NULL): only ours and env=. */
START_TEST(plan_no_environ)
{
	static const char *const want[] = {
		"A=1", "LISTEN_FDS=0", "LISTEN_FDNAMES=", "FUGUE_GENERATION=0",
		"FUGUE_MASTER_PID=1",
	};
	struct spawn_plan p;

	set("worker", "command", "/bin/true");
	set("worker", "env", "A=1");
	build(&p, NULL, NULL, 0, "", 0, 1, NULL);
	expect_env(&p, want, sizeof(want) / sizeof(want[0]));
	spawn_plan_free(&p);
}
END_TEST

/* env= PATH is the workers' PATH, and the command is looked up on it. */
START_TEST(plan_path_from_env)
{
	struct spawn_plan p;
	char line[PATH_MAX + 8], want[PATH_MAX];

	snprintf(line, sizeof(line), "PATH=%s/bin1", dir);
	snprintf(want, sizeof(want), "%s/bin1/prog", dir);
	set("worker", "command", "prog --flag");
	set("worker", "env", line);
	build(&p, fake_environ, NULL, 0, "", 1, 1, NULL);
	ck_assert_str_eq(p.path, want);
	ck_assert_str_eq(p.argv.v[0], "prog");
	ck_assert_str_eq(p.argv.v[1], "--flag");
	{
		size_t paths = 0;

		for (size_t i = 0; i < p.envp.n; i++)
			if (strncmp(p.envp.v[i], "PATH=", 5) == 0) {
				paths++;
				ck_assert_str_eq(p.envp.v[i], line);
			}
		ck_assert_uint_eq(paths, 1);
	}
	spawn_plan_free(&p);
}
END_TEST

/* A relative command with a '/' is relative to working_dir. */
START_TEST(plan_working_dir)
{
	struct spawn_plan p;
	char want[PATH_MAX];

	snprintf(want, sizeof(want), "%s/bin1/prog", dir);
	set("worker", "command", "bin1/prog");
	set("worker", "working_dir", dir);
	set("worker", "umask", "027");
	set("worker", "master_death_signal", "KILL");
	build(&p, fake_environ, NULL, 0, "", 1, 1, NULL);
	ck_assert_str_eq(p.path, want);
	ck_assert_str_eq(p.argv.v[0], "bin1/prog");
	ck_assert_str_eq(p.working_dir, dir);
	ck_assert_int_eq(p.umask, 027);
	ck_assert_int_eq(p.death_signal, SIGKILL);
	spawn_plan_free(&p);
}
END_TEST

/* With user: HOME, USER and LOGNAME are the user's, unless env= says. */
START_TEST(plan_user)
{
	static const char *const want[] = {
		"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TERM=xterm",
		"NODE_ENV=development", "HOME=/srv/home", "USER=root",
		"LOGNAME=root", "LISTEN_FDS=0", "LISTEN_FDNAMES=",
		"FUGUE_GENERATION=1", "FUGUE_MASTER_PID=1",
	};
	struct spawn_plan p;

	set("worker", "command", "/bin/true");
	set("worker", "user", "root");
	set("worker", "env", "HOME=/srv/home");
	build(&p, fake_environ, NULL, 0, "", 1, 1, NULL);
	expect_env(&p, want, sizeof(want) / sizeof(want[0]));
	ck_assert(p.set_creds);
	ck_assert_uint_eq(p.uid, 0);
	ck_assert_uint_eq(p.gid, 0);
	ck_assert_int_ge(p.ngroups, 1);
	spawn_plan_free(&p);
}
END_TEST

START_TEST(plan_errors)
{
	struct spawn_plan p;
	char err[512];
	int fds[300];

	/* no command */
	set("listen", "address", "127.0.0.1:8080");
	err[0] = '\0';
	ck_assert_int_eq(spawn_plan_build(&p, &c, fake_environ, NULL, 0, "", 1,
	    1, NULL, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "command"));
	spawn_plan_free(&p);

	/* a command that is not there, or not executable */
	set("worker", "command", "no-such-command-here --x");
	err[0] = '\0';
	ck_assert_int_eq(spawn_plan_build(&p, &c, fake_environ, NULL, 0, "", 1,
	    1, NULL, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "no-such-command-here") != NULL &&
	    strstr(err, strerror(ENOENT)) != NULL, "%s", err);
	ck_assert_ptr_null(p.path);
	ck_assert_uint_eq(p.envp.n, 0);
	spawn_plan_free(&p);

	{
		char cmd[PATH_MAX];

		snprintf(cmd, sizeof(cmd), "%s/bin1/noexec", dir);
		set("worker", "command", cmd);
	}
	err[0] = '\0';
	ck_assert_int_eq(spawn_plan_build(&p, &c, fake_environ, NULL, 0, "", 1,
	    1, NULL, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, strerror(EACCES)) != NULL, "%s", err);
	spawn_plan_free(&p);

	/* too many listeners */
	set("worker", "command", "/bin/true");
	for (int i = 0; i < 300; i++)
		fds[i] = 3 + i;
	err[0] = '\0';
	ck_assert_int_eq(spawn_plan_build(&p, &c, fake_environ, fds, 300, "", 1,
	    1, NULL, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "listeners"));
	spawn_plan_free(&p);
}
END_TEST

/* ---- real spawns ---- */

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Read fd to EOF (bounded in time); returns the bytes read. */
static size_t
read_all(int fd, char *buf, size_t cap)
{
	long deadline = now_ms() + WAIT_MS;
	size_t len = 0;

	for (;;) {
		struct pollfd pf = { fd, POLLIN, 0 };
		long left = deadline - now_ms();
		ssize_t n;

		ck_assert_msg(left > 0, "no EOF within %d ms", WAIT_MS);
		if (poll(&pf, 1, (int)left) <= 0)
			continue;
		n = read(fd, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		ck_assert_int_ge(n, 0);
		if (n == 0)
			break;
		len += (size_t)n;
		ck_assert_uint_lt(len, cap);
	}
	buf[len] = '\0';
	return len;
}

/* Reap pid, bounded in time: killed if it does not exit. */
static int
reap(pid_t pid)
{
	long deadline = now_ms() + WAIT_MS;
	int status;
	pid_t r;

	while ((r = waitpid(pid, &status, WNOHANG)) == 0 &&
	    now_ms() < deadline)
		poll(NULL, 0, 5);
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		ck_abort_msg("child %ld did not exit", (long)pid);
	}
	ck_assert_int_eq(r, pid);
	return status;
}

/* Reap pid within ms, else kill it: its status either way. */
static int
reap_within(pid_t pid, long ms)
{
	long deadline = now_ms() + ms;
	int status;
	pid_t r;

	while ((r = waitpid(pid, &status, WNOHANG)) == 0 &&
	    now_ms() < deadline)
		poll(NULL, 0, 5);
	if (r == 0) {
		kill(pid, SIGKILL);
		r = waitpid(pid, &status, 0);
	}
	ck_assert_int_eq(r, pid);
	return status;
}

struct run {
	pid_t	pid;
	int	status;
	size_t	nreport;	/* bytes from the exec-error pipe */
	struct spawn_report report;
	char	out[16384];
};

static void
run(struct spawn_plan *p, unsigned slot, struct run *r)
{
	const char *step = NULL;
	char buf[64];
	int o[2], execfd = -1;

	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(pipe2(o, O_CLOEXEC), 0);
	r->pid = spawn_worker(p, slot, o[1], o[1], &execfd, &step);
	ck_assert_msg(r->pid > 0, "spawn_worker: %s: %s", step, strerror(errno));
	close(o[1]);
	ck_assert_int_ge(execfd, 0);
	ck_assert(fcntl(execfd, F_GETFD) & FD_CLOEXEC);
	r->nreport = read_all(execfd, buf, sizeof(buf));
	close(execfd);
	if (r->nreport == sizeof(r->report))
		memcpy(&r->report, buf, sizeof(r->report));
	read_all(o[0], r->out, sizeof(r->out));
	close(o[0]);
	r->status = reap(r->pid);
}

/* A plan for command (split into words, no shell). */
static void
cmd_plan(struct spawn_plan *p, const char *cmd, const int *fds, int nfds,
    int devnull)
{
	set("worker", "command", cmd);
	build(p, fake_environ, fds, nfds, "a:b", 6, getpid(), NULL);
	p->devnull = devnull;
}

/* A plan for /bin/sh -c script. */
static void
sh_plan(struct spawn_plan *p, const char *script, const int *fds, int nfds,
    int devnull)
{
	char *cmd = xprintf("/bin/sh -c '%s'", script);

	cmd_plan(p, cmd, fds, nfds, devnull);
	free(cmd);
}

static int
tcp_listener(void)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	return fd;
}

static unsigned long
inode(int fd)
{
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	return (unsigned long)st.st_ino;
}

/* The target of fd n in `ls -l /proc/PID/fd` output, or NULL. */
static const char *
fd_target(const char *out, int n, char *buf, size_t len)
{
	char key[32];
	const char *p;

	snprintf(key, sizeof(key), " %d -> ", n);
	if ((p = strstr(out, key)) == NULL)
		return NULL;
	p += strlen(key);
	snprintf(buf, len, "%.*s", (int)strcspn(p, "\n"), p);
	return buf;
}

#define SCRIPT_REPORT \
	"echo \"ids $LISTEN_PID $FUGUE_WORKER_ID $$ $LISTEN_FDS " \
	"$FUGUE_GENERATION $FUGUE_MASTER_PID\"; " \
	"echo \"pgrp $(cut -d\" \" -f5 /proc/$$/stat)\"; " \
	"echo \"umask $(umask)\"; echo \"cwd $(pwd)\"; " \
	"ls -l /proc/$$/fd; echo to-stderr >&2"

START_TEST(spawn_real)
{
	struct spawn_plan p;
	struct run r;
	char want[256], buf[256];
	sigset_t set_, old;
	struct sigaction ign, oldpipe;
	int devnull, fds[3], leak, nopen = 0;

	/* The third listener at fd 4, where the second one goes: moving
	 * the fds in order would overwrite it. The first two reversed. */
	fds[2] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fds[2], 0);
	if (fds[2] != 4 && fcntl(4, F_GETFD) == -1) {
		ck_assert_int_eq(dup3(fds[2], 4, O_CLOEXEC), 4);
		close(fds[2]);
		fds[2] = 4;
	}
	fds[1] = tcp_listener();
	fds[0] = tcp_listener();
	ck_assert_int_gt(fds[0], fds[1]);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(devnull, 0);
	/* an fd of the master's without close-on-exec: not for workers */
	leak = fcntl(devnull, F_DUPFD, 20);
	ck_assert_int_ge(leak, 20);
	/* blocked and ignored signals: workers get neither */
	sigemptyset(&set_);
	sigaddset(&set_, SIGUSR1);
	sigaddset(&set_, SIGTERM);
	ck_assert_int_eq(sigprocmask(SIG_BLOCK, &set_, &old), 0);
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	ck_assert_int_eq(sigaction(SIGPIPE, &ign, &oldpipe), 0);

	set("worker", "working_dir", dir);
	set("worker", "umask", "0027");
	sh_plan(&p, SCRIPT_REPORT, fds, 3, devnull);
	for (int i = 0; i < 3; i++)
		ck_assert(!(fcntl(fds[i], F_GETFL) & O_NONBLOCK));
	run(&p, 5, &r);

	ck_assert_msg(r.nreport == 0, "exec failed: stage %d: %s",
	    r.report.stage, strerror(r.report.err));
	ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
	    "status %#x, output: %s", r.status, r.out);
	/* LISTEN_PID is its own pid, FUGUE_WORKER_ID its slot */
	snprintf(want, sizeof(want), "ids %ld 5 %ld 3 6 %ld\n", (long)r.pid,
	    (long)r.pid, (long)getpid());
	ck_assert_msg(strstr(r.out, want) != NULL, "want \"%s\" in: %s", want,
	    r.out);
	/* its own process group */
	snprintf(want, sizeof(want), "pgrp %ld\n", (long)r.pid);
	ck_assert_msg(strstr(r.out, want) != NULL, "want \"%s\" in: %s", want,
	    r.out);
	ck_assert_msg(strstr(r.out, "umask 0027\n") != NULL, "%s", r.out);
	snprintf(want, sizeof(want), "cwd %s\n", dir);
	ck_assert_msg(strstr(r.out, want) != NULL, "%s", r.out);
	ck_assert_msg(strstr(r.out, "to-stderr\n") != NULL, "%s", r.out);
	/* fds: 0 /dev/null, 1 and 2 the pipe, 3, 4 and 5 the listeners in
	 * order, and nothing else */
	ck_assert_ptr_nonnull(fd_target(r.out, 0, buf, sizeof(buf)));
	ck_assert_str_eq(buf, "/dev/null");
	ck_assert_ptr_nonnull(fd_target(r.out, 1, buf, sizeof(buf)));
	ck_assert_msg(strncmp(buf, "pipe:[", 6) == 0, "fd 1: %s", buf);
	ck_assert_ptr_nonnull(fd_target(r.out, 2, want, sizeof(want)));
	ck_assert_str_eq(buf, want);
	for (int i = 0; i < 3; i++) {
		snprintf(want, sizeof(want), "socket:[%lu]", inode(fds[i]));
		ck_assert_msg(fd_target(r.out, 3 + i, buf, sizeof(buf)) != NULL,
		    "no fd %d: %s", 3 + i, r.out);
		ck_assert_msg(strcmp(buf, want) == 0, "fd %d is %s, want %s",
		    3 + i, buf, want);
	}
	for (const char *q = r.out; (q = strstr(q, " -> ")) != NULL; q++)
		nopen++;
	ck_assert_msg(nopen == 6, "%d fds open: %s", nopen, r.out);
	/* handed over non-blocking: the flag is the one the parent sees */
	for (int i = 0; i < 3; i++)
		ck_assert_msg(fcntl(fds[i], F_GETFL) & O_NONBLOCK,
		    "listener %d left blocking", i);
	/* the parent's copy of LISTEN_PID= is untouched */
	ck_assert_str_eq(p.env_pid, "LISTEN_PID=");
	spawn_plan_free(&p);

	/* An empty mask, nothing ignored: read by the program exec'd itself.
	 * Not by a shell's child reading the shell's status: a shell may
	 * block every signal around its own forks (dash does), and the child
	 * would see that mask rather than the one the worker got. */
	cmd_plan(&p, "grep ^Sig /proc/self/status", fds, 3, devnull);
	run(&p, 5, &r);
	ck_assert_msg(r.nreport == 0, "exec failed: stage %d: %s",
	    r.report.stage, strerror(r.report.err));
	ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
	    "status %#x, output: %s", r.status, r.out);
	ck_assert_msg(strstr(r.out, "SigBlk:\t0000000000000000\n") != NULL,
	    "%s", r.out);
	ck_assert_msg(strstr(r.out, "SigIgn:\t0000000000000000\n") != NULL,
	    "%s", r.out);

	sigprocmask(SIG_SETMASK, &old, NULL);
	sigaction(SIGPIPE, &oldpipe, NULL);
	spawn_plan_free(&p);
	close(leak);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close(devnull);
}
END_TEST

/* One plan, several workers: each its own slot and pid. */
START_TEST(spawn_slots)
{
	static const unsigned slots[] = { 0, 12, 4294967295u };
	struct spawn_plan p;
	struct run r;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

	ck_assert_int_ge(devnull, 0);
	sh_plan(&p, "echo \"$LISTEN_PID $FUGUE_WORKER_ID $$ $LISTEN_FDS\"",
	    NULL, 0, devnull);
	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		char want[128];

		run(&p, slots[i], &r);
		ck_assert_uint_eq(r.nreport, 0);
		snprintf(want, sizeof(want), "%ld %u %ld 0\n", (long)r.pid,
		    slots[i], (long)r.pid);
		ck_assert_str_eq(r.out, want);
		ck_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
	}
	spawn_plan_free(&p);
	close(devnull);
}
END_TEST

/* The worker's own exit status is its own: no report. */
START_TEST(spawn_exit_status)
{
	struct spawn_plan p;
	struct run r;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

	sh_plan(&p, "exit 3", NULL, 0, devnull);
	run(&p, 0, &r);
	ck_assert_uint_eq(r.nreport, 0);
	ck_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 3);
	spawn_plan_free(&p);

	/* killed by a signal: default dispositions in the worker */
	sh_plan(&p, "kill -TERM $$; sleep 2", NULL, 0, devnull);
	run(&p, 0, &r);
	ck_assert_uint_eq(r.nreport, 0);
	ck_assert_msg(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGTERM,
	    "status %#x", r.status);
	spawn_plan_free(&p);
	close(devnull);
}
END_TEST

static volatile sig_atomic_t caught;

static void
on_term(int sig)
{
	(void)sig;
	caught = 1;
}

/*
 * A stop signal sent as soon as spawn_worker returns, often before the
 * child's exec, while the parent catches it (the master's libev does): it
 * must not run the parent's handler in the child and be lost, but end the
 * child as it would the command. The parent's own mask is left as it was.
 */
START_TEST(spawn_signal_before_exec)
{
	struct spawn_plan p;
	struct sigaction sa, oldterm;
	sigset_t before, after;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC), lost = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	ck_assert_int_eq(sigaction(SIGTERM, &sa, &oldterm), 0);
	set("worker", "command", "/bin/sleep 30");
	build(&p, fake_environ, NULL, 0, "", 1, getpid(), NULL);
	p.devnull = devnull;
	for (int i = 0; i < 20; i++) {
		int o[2], execfd, status;
		const char *step;
		char buf[64];
		pid_t pid;

		ck_assert_int_eq(pipe2(o, O_CLOEXEC), 0);
		sigprocmask(SIG_SETMASK, NULL, &before);
		pid = spawn_worker(&p, 0, o[1], o[1], &execfd, &step);
		sigprocmask(SIG_SETMASK, NULL, &after);
		ck_assert_msg(pid > 0, "spawn_worker: %s: %s", step,
		    strerror(errno));
		kill(pid, SIGTERM);
		for (int sig = 1; sig < NSIG; sig++)
			ck_assert_int_eq(sigismember(&before, sig),
			    sigismember(&after, sig));
		close(o[0]);
		close(o[1]);
		read_all(execfd, buf, sizeof(buf));
		close(execfd);
		/* Ended by the TERM, or lost it and sleeps: killed. */
		status = reap_within(pid, 2000);
		lost += !(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	}
	ck_assert_msg(lost == 0, "%d of 20 children lost their TERM", lost);
	ck_assert_int_eq(caught, 0);
	sigaction(SIGTERM, &oldterm, NULL);
	spawn_plan_free(&p);
	close(devnull);
}
END_TEST

static void
expect_failure(struct spawn_plan *p, int stage, int err)
{
	struct run r;

	run(p, 1, &r);
	ck_assert_msg(r.nreport == sizeof(struct spawn_report),
	    "%zu bytes of report, output: %s", r.nreport, r.out);
	ck_assert_msg(r.report.stage == stage, "stage %d (%s), want %d (%s)",
	    r.report.stage, spawn_stage_name(r.report.stage), stage,
	    spawn_stage_name(stage));
	ck_assert_msg(r.report.err == err, "errno %d (%s), want %d (%s)",
	    r.report.err, strerror(r.report.err), err, strerror(err));
	ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 127,
	    "status %#x", r.status);
	ck_assert_str_eq(r.out, "");
}

START_TEST(spawn_exec_fails)
{
	struct spawn_plan p;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

	/* gone between the plan and the spawn */
	sh_plan(&p, "true", NULL, 0, devnull);
	free(p.path);
	p.path = xprintf("%s/does-not-exist", dir);
	expect_failure(&p, SP_EXEC, ENOENT);
	/* not executable */
	free(p.path);
	p.path = xprintf("%s/bin1/noexec", dir);
	expect_failure(&p, SP_EXEC, EACCES);
	/* a bad interpreter */
	mkfile("badinterp", "#!/nonexistent/interpreter\n", 0755);
	free(p.path);
	p.path = xprintf("%s/badinterp", dir);
	expect_failure(&p, SP_EXEC, ENOENT);
	spawn_plan_free(&p);
	close(devnull);
}
END_TEST

START_TEST(spawn_chdir_fails)
{
	struct spawn_plan p;
	char *wd = xprintf("%s/missing-dir", dir);
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

	set("worker", "working_dir", wd);
	sh_plan(&p, "true", NULL, 0, devnull);
	expect_failure(&p, SP_CHDIR, ENOENT);
	spawn_plan_free(&p);
	free(wd);
	close(devnull);
}
END_TEST

/* The master it was planned for is not its parent: it never runs. */
START_TEST(spawn_orphaned)
{
	struct spawn_plan p;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

	sh_plan(&p, "echo ran", NULL, 0, devnull);
	p.master_pid = getpid() + 1;
	expect_failure(&p, SP_ORPHANED, ESRCH);
	spawn_plan_free(&p);
	close(devnull);
}
END_TEST

/* Out of fds for the exec-error pipe: the step named is the pipe. */
START_TEST(spawn_out_of_fds)
{
	struct spawn_plan p;
	struct rlimit rl, low;
	const char *step = NULL;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC), execfd, lowest;

	sh_plan(&p, "echo ran", NULL, 0, devnull);
	/* Every fd below the lowest free one is open: a limit there leaves
	 * none. */
	lowest = fcntl(0, F_DUPFD_CLOEXEC, 0);
	ck_assert_int_ge(lowest, 0);
	close(lowest);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	low = rl;
	low.rlim_cur = (rlim_t)lowest;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	errno = 0;
	ck_assert_int_eq(spawn_worker(&p, 0, devnull, devnull, &execfd, &step),
	    -1);
	ck_assert_int_eq(errno, EMFILE);
	ck_assert_str_eq(step, "pipe");
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	spawn_plan_free(&p);
	close(devnull);
}
END_TEST

/* A bad fd to pass is reported, not a crash. */
START_TEST(spawn_bad_fd)
{
	struct spawn_plan p;
	int fds[1] = { 1000 };	/* not open */
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

	ck_assert_int_eq(fcntl(1000, F_GETFD), -1);
	sh_plan(&p, "echo ran", fds, 1, devnull);
	expect_failure(&p, SP_FDS, EBADF);
	spawn_plan_free(&p);
	close(devnull);
}
END_TEST

START_TEST(stage_names)
{
	for (int s = SP_FDS; s <= SP_EXEC; s++) {
		ck_assert_ptr_nonnull(spawn_stage_name(s));
		ck_assert_str_ne(spawn_stage_name(s), "start");
	}
	ck_assert_str_eq(spawn_stage_name(SP_EXEC), "exec");
	ck_assert_str_eq(spawn_stage_name(0), "start");
	ck_assert_str_eq(spawn_stage_name(999), "start");
}
END_TEST

static Suite *
spawn_suite(void)
{
	Suite *s = suite_create("spawn");
	TCase *tc;

	tc = tcase_create("env");
	tcase_add_test(tc, env_private);
	tcase_add_test(tc, stage_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("resolve");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, resolve_paths);
	tcase_add_test(tc, resolve_failures);
	suite_add_tcase(s, tc);

	tc = tcase_create("plan");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, plan_inherit);
	tcase_add_test(tc, plan_notify);
	tcase_add_test(tc, plan_notify_no_watchdog);
	tcase_add_test(tc, plan_clear_env);
	tcase_add_test(tc, plan_no_environ);
	tcase_add_test(tc, plan_path_from_env);
	tcase_add_test(tc, plan_working_dir);
	tcase_add_test(tc, plan_hook);
	tcase_add_test(tc, plan_user);
	tcase_add_test(tc, plan_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("spawn");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, spawn_real);
	tcase_add_test(tc, spawn_slots);
	tcase_add_test(tc, spawn_exit_status);
	tcase_add_test(tc, spawn_signal_before_exec);
	tcase_add_test(tc, spawn_exec_fails);
	tcase_add_test(tc, spawn_chdir_fails);
	tcase_add_test(tc, spawn_orphaned);
	tcase_add_test(tc, spawn_bad_fd);
	tcase_add_test(tc, spawn_out_of_fds);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(spawn_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
