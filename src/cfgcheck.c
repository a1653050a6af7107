/*
 * A configuration once every key is set: checks across keys
 * (config_validate), then against this machine (config_check_host): what
 * the start would find, short of binding, so that fugue -t finds it too
 * (and a reload refuses it before starting anything). Each check of the
 * machine mirrors a step of the start and fails with that step's exit
 * code: the log files (73), the pid file (73), the control socket and the
 * listeners (73, 71), the notify socket's directory and the command (69),
 * the workers' working_dir (69).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_keys.h"
#include "listen.h"
#include "logging.h"
#include "spawn.h"

/* ---- across keys ---- */

/*
 * Credentials for spawn: with user, uid is the user's and gid the group's
 * (or the user's primary one), groups its getgrouplist(). With group but
 * no user, uid stays (uid_t)-1 (fugue's own is kept) and groups holds only
 * gid, so no supplementary group of fugue's (root's) leaks to the workers.
 * With neither, uid and gid are -1 and groups is empty: nothing changes.
 */
static int
validate_groups(struct config *c, const char *where, struct errlist *errs)
{
	struct passwd *pw;
	char *name;
	int n = 16;

	free(c->groups);
	c->groups = NULL;
	c->ngroups = 0;
	if (c->user == NULL) {
		if (c->group != NULL) {
			c->groups = xmalloc(sizeof(gid_t));
			c->groups[0] = c->gid;
			c->ngroups = 1;
		}
		return 0;
	}
	if ((pw = getpwuid(c->uid)) == NULL) {
		add_error(errs, "%s: [worker] user: unknown user \"%s\"", where,
		    c->user);
		return -1;
	}
	name = xstrdup(pw->pw_name);
	for (;;) {
		int want = n;

		c->groups = xrealloc(c->groups, (size_t)n * sizeof(gid_t));
		if (getgrouplist(name, c->gid, c->groups, &n) != -1)
			break;
		/* glibc says how many it needs; others may not */
		n = n > want ? n : want * 2;
	}
	c->ngroups = n;
	free(name);
	return 0;
}

/* Two addresses no start can bind together: a TCP wildcard and an
 * address of the same family and type on its port (IPv6 listeners are
 * IPv6-only: [::]:80 and 0.0.0.0:80 go together); a UNIX stream and a
 * datagram socket, or a UNIX socket and the control socket, at one path. */
static void
validate_listen(const struct config *c, struct errlist *errs)
{
	const struct address *a, *b;
	const char *ctl = c->control_socket;

	for (size_t i = 0; i < c->nlisten; i++) {
		a = &c->listen[i];
		for (size_t j = 0; j < i; j++) {
			b = &c->listen[j];
			if (!address_overlap(a, b))
				continue;
			add_error(errs, "%s: [listen] address: %s and %s (%s) "
			    "overlap: one cannot be bound while the other "
			    "listens", config_listen_origin(c, i), a->text,
			    b->text, config_listen_origin(c, j));
		}
		if (ctl && a->family == AF_UNIX &&
		    strcmp(address_path(a), ctl) == 0)
			add_error(errs, "%s: [listen] address: %s is the "
			    "control socket (%s)", config_listen_origin(c, i),
			    a->text, config_origin(c, "control_socket"));
	}
}

/* The metrics endpoint is fugue's own: no worker may get it, and it
 * cannot be bound beside a listener it excludes (or that excludes it). */
static void
validate_metrics(const struct config *c, struct errlist *errs)
{
	const struct address *m = &c->metrics_addr, *a;
	const char *where = config_origin(c, "metrics");

	if (c->metrics == NULL)
		return;
	for (size_t i = 0; i < c->nlisten; i++) {
		a = &c->listen[i];
		if (strcmp(a->text, m->text) == 0)
			add_error(errs, "%s: [master] metrics: %s is also a "
			    "[listen] address (%s): the endpoint is fugue's "
			    "own, never passed to workers", where, m->text,
			    config_listen_origin(c, i));
		else if (address_overlap(a, m))
			add_error(errs, "%s: [master] metrics: %s and [listen] "
			    "address %s (%s) overlap: one cannot be bound "
			    "while the other listens", where, m->text, a->text,
			    config_listen_origin(c, i));
	}
	if (c->control_socket && m->family == AF_UNIX &&
	    strcmp(m->text + 5, c->control_socket) == 0)
		add_error(errs, "%s: [master] metrics: %s is the control "
		    "socket (%s)", where, m->text,
		    config_origin(c, "control_socket"));
}

int
config_validate(struct config *c, bool daemonize, struct errlist *errs)
{
	const char *where = c->path ? c->path : "command line";
	size_t nerr = errs->n;

	validate_listen(c, errs);
	validate_metrics(c, errs);
	if (c->argv.n == 0)
		add_error(errs, "%s: [worker] command: missing", where);
	/* count = 0 runs nothing, so it needs no socket either */
	if (c->nlisten == 0 && c->count > 0)
		add_error(errs, "%s: [listen] address: missing", where);
	if (c->watchdog_ms > 0 && !c->ready_notify)
		add_error(errs, "%s: [worker] watchdog: needs ready = notify or fd",
		    where);
	if (daemonize && c->log_file == NULL)
		add_error(errs, "%s: -d needs [master] log_file (a daemon has "
		    "no stderr)", where);
	validate_groups(c, where, errs);
	return errs->n > nerr ? EX_CONFIG_ : 0;
}

/* ---- against this machine ---- */

struct check {
	const struct config	*c;
	struct errlist		*errs;
	int			 code;	/* the first failure's exit code */
};

static void __attribute__((format(printf, 4, 5)))
fail(struct check *k, int code, const char *key, const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	add_error(k->errs, "%s: [%s] %s: %s", config_origin(k->c, key),
	    config_key_section(key), key, why);
	if (k->code == 0)
		k->code = code;
}


/* Why a file fugue opens for writing, created if missing, could not be
 * (the reason a start would give), or NULL. */
static const char *
unwritable(const char *path, bool follow)
{
	struct stat st;

	if ((follow ? stat(path, &st) : lstat(path, &st)) == 0)
		return faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) == 0 ? NULL :
		    strerror(errno);
	if (errno == ENOENT && path_dir_writable(path) == 0)
		return NULL;
	return strerror(errno);
}

static void
check_log_file(struct check *k, const char *key, const char *path)
{
	struct stat st;
	const char *why;

	if (path == NULL)
		return;
	if (stat(path, &st) == 0 && (why = log_file_unfit(st.st_mode)))
		fail(k, EX_CANTCREAT_, key, "%s: %s; a log file must be a "
		    "regular file or a character device", path, why);
	else if ((why = unwritable(path, true)) != NULL)
		fail(k, EX_CANTCREAT_, key, "%s: %s", path, why);
}

/* Its lock is not looked at: an upgrade's check runs beside the holder. */
static void
check_pid_file(struct check *k, const char *path)
{
	struct stat st;
	const char *why;

	if (path == NULL)
		return;
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
		fail(k, EX_CANTCREAT_, "pid_file", "%s: %s", path,
		    S_ISLNK(st.st_mode) ? "is a symbolic link" :
		    "not a regular file");
	else if ((why = unwritable(path, false)) != NULL)
		fail(k, EX_CANTCREAT_, "pid_file", "%s: %s", path, why);
}

static void
check_control_socket(struct check *k, const char *path)
{
	struct address a;
	char spec[ADDRESS_TEXT_MAX + 8], err[512];
	int r;

	if (path == NULL)
		return;
	snprintf(spec, sizeof(spec), "unix:%s", path);
	if (parse_address(spec, &a, err, sizeof(err)) == -1)
		fail(k, EX_CONFIG_, "control_socket", "%s", err);
	else if ((r = listen_check(&a, err, sizeof(err))) != 0)
		fail(k, r, "control_socket", "%s", err);
}

static void
check_metrics(struct check *k)
{
	char err[512];
	int r;

	if (k->c->metrics && (r = listen_check(&k->c->metrics_addr, err,
	    sizeof(err))) != 0)
		fail(k, r, "metrics", "%s", err);
}

static void
check_listeners(struct check *k)
{
	char err[512];
	int r;

	for (size_t i = 0; i < k->c->nlisten; i++) {
		if ((r = listen_check(&k->c->listen[i], err, sizeof(err))) == 0)
			continue;
		add_error(k->errs, "%s: [listen] address: %s",
		    config_listen_origin(k->c, i), err);
		if (k->code == 0)
			k->code = r;
	}
}

/* A directory fugue creates a file in: NULL, or why it cannot. */
static const char *
unusable_dir(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) == -1)
		return strerror(errno);
	if (!S_ISDIR(st.st_mode))
		return "not a directory";
	if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) == -1)
		return strerror(errno);
	return NULL;
}

/* May the workers' credentials search st (by its mode bits; an ACL may
 * allow what they do not: then the start finds out). */
static bool
may_search(const struct config *c, const char *dir, const struct stat *st)
{
	bool member = st->st_gid == c->gid;

	if (c->user == NULL && c->group == NULL)
		return faccessat(AT_FDCWD, dir, X_OK, AT_EACCESS) == 0;
	if ((c->user ? c->uid : geteuid()) == 0)
		return true;
	if (st->st_uid == (c->user ? c->uid : geteuid()))
		return st->st_mode & S_IXUSR;
	for (int i = 0; i < c->ngroups; i++)
		member |= c->groups[i] == st->st_gid;
	if (member)
		return st->st_mode & S_IXGRP;
	return (st->st_mode & S_IXOTH) || getxattr(dir,
	    "system.posix_acl_access", NULL, 0) > 0;
}

/* Where the notify socket goes (as gen_plan picks it). */
static void
check_runtime_dir(struct check *k)
{
	const struct config *c = k->c;
	const char *dir = c->runtime_dir, *from = NULL, *why;
	struct stat st;

	if (!c->ready_notify || c->ready_pipe)
		return;
	if (dir == NULL && (dir = getenv(from = "RUNTIME_DIRECTORY")) == NULL &&
	    (dir = getenv(from = "XDG_RUNTIME_DIR")) == NULL) {
		dir = "/tmp";
		from = NULL;
	}
	if ((why = unusable_dir(dir)) == NULL && stat(dir, &st) == 0 &&
	    !may_search(c, dir, &st))
		why = "the workers may not enter it";
	if (why != NULL)
		fail(k, EX_UNAVAIL_, "runtime_dir", "%s%s%s%s: %s (ready = "
		    "notify makes the workers' socket there)", from ? "$" : "",
		    from ? from : "", from ? "=" : "", dir, why);
}

/* The command must be there and executable before anything is bound. */
static void
check_command(struct check *k)
{
	const struct config *c = k->c;
	const char *pathvar = getenv("PATH");
	char *path = NULL;

	for (size_t i = 0; i < c->env.n; i++)
		if (strncmp(c->env.v[i], "PATH=", 5) == 0)
			pathvar = c->env.v[i] + 5;
	if (c->argv.n > 0 && spawn_command_path(c, pathvar, &path) == -1)
		fail(k, EX_UNAVAIL_, "command", "%s: %s", c->argv.v[0],
		    strerror(errno));
	free(path);
	/* The reload hooks are found the same way (as the workers run). */
	for (int i = 0; i < HOOK_N; i++) {
		path = NULL;
		if (c->hook[i].argv.n > 0 && spawn_hook_path(c, i, pathvar,
		    &path) == -1)
			fail(k, EX_UNAVAIL_, hook_name(i), "%s: %s",
			    c->hook[i].argv.v[0], strerror(errno));
		free(path);
	}
}

static void
check_working_dir(struct check *k)
{
	const char *dir = k->c->working_dir;
	struct stat st;

	if (dir == NULL)
		return;
	if (stat(dir, &st) == -1)
		fail(k, EX_UNAVAIL_, "working_dir", "%s: %s", dir,
		    strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		fail(k, EX_UNAVAIL_, "working_dir", "%s: not a directory", dir);
	else if (!may_search(k->c, dir, &st))
		fail(k, EX_UNAVAIL_, "working_dir", "%s: the workers (%s) may "
		    "not enter it", dir, k->c->user ? k->c->user : "group");
}

int
config_check_host(const struct config *c, bool start, struct errlist *errs)
{
	struct check k = { c, errs, 0 };

	/* A reload opens the log files only if they changed, and keeps the
	 * ones it has if it cannot: not a reason to refuse it. */
	if (start) {
		check_log_file(&k, "log_file", c->log_file);
		check_log_file(&k, "master_log_file", c->master_log_file);
		check_pid_file(&k, c->pid_file);
		check_control_socket(&k, c->control_socket);
		check_metrics(&k);
	}
	check_listeners(&k);
	if (start)
		check_runtime_dir(&k);
	check_command(&k);
	check_working_dir(&k);
	return k.code;
}
