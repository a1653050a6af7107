/*
 * The configuration: an INI file read with inih through our own line reader,
 * then command-line overrides, into a struct config. One table lists every
 * key with its parser; every error is one line with its place.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "config_keys.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#define YEAR_MS		(365LL * 24 * 3600 * 1000)
#define ID_MAX		4294967294UL	/* uid_t/gid_t; -1 means "keep" */
#define DURATION_HELP	"(250ms, 10s, 5m, 1h)"

char *
dupn(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* ---- the keys ---- */

struct key;
typedef int	setter(struct config *, const struct key *, const char *,
		    char *, size_t);

struct key {
	const char	*section;
	const char	*name;
	setter		*set;
	size_t		 off;		/* the field, for the generic setters */
	long long	 lo, hi;	/* ranges of numbers, modes, durations */
	bool		 repeatable;
};

#define FIELD(c, k, type)	((type *)(void *)((char *)(c) + (k)->off))

static int
set_path(struct config *c, const struct key *k, const char *v, char *err,
    size_t len)
{
	char **f = FIELD(c, k, char *), *p;

	if ((p = path_absolute(v, err, len)) == NULL)
		return -1;
	free(*f);
	*f = p;
	return 0;
}

static int
set_word(const char *v, const char *const *words, int *out, char *err,
    size_t len, const char *expected)
{
	for (int i = 0; words[i] != NULL; i++) {
		if (strcmp(v, words[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	snprintf(err, len, "expected %s, got \"%s\"", expected, v);
	return -1;
}

static int
set_log_level(struct config *c, const struct key *k, const char *v,
    char *err, size_t len)
{
	/* in enum log_level order */
	static const char *const words[] =
	    { "error", "warn", "info", "debug", NULL };

	(void)k;
	return set_word(v, words, &c->log_level, err, len,
	    "error, warn, info or debug");
}

static int
set_kill_mode(struct config *c, const struct key *k, const char *v,
    char *err, size_t len)
{
	/* in enum kill_mode order */
	static const char *const words[] = { "mixed", "group", "process",
	    NULL };

	(void)k;
	return set_word(v, words, &c->kill_mode, err, len,
	    "mixed, group or process");
}

static int
set_subreaper(struct config *c, const struct key *k, const char *v,
    char *err, size_t len)
{
	bool b;

	(void)k;
	if (strcmp(v, "auto") == 0)
		c->subreaper = SUBREAPER_AUTO;
	else if (parse_bool(v, &b) == 0)
		c->subreaper = b ? SUBREAPER_YES : SUBREAPER_NO;
	else {
		snprintf(err, len, "expected yes, no or auto, got \"%s\"", v);
		return -1;
	}
	return 0;
}

static int
set_address(struct config *c, const struct key *k, const char *v,
    char *err, size_t len)
{
	struct address a;
	char why[200];

	(void)k;
	if (c->nlisten >= CONFIG_LISTEN_MAX) {
		if (c->listen_full)
			return 0;	/* said once: the config is refused */
		c->listen_full = true;
		snprintf(err, len, "more than %d addresses (the most a worker "
		    "can be given)", CONFIG_LISTEN_MAX);
		return -1;
	}
	if (parse_address(v, &a, why, sizeof(why)) == -1) {
		snprintf(err, len, "bad address \"%s\": %s", v, why);
		return -1;
	}
	if (address_v4_mapped(&a)) {
		snprintf(err, len, "%s: an IPv4-mapped address cannot be bound "
		    "(IPv6 listeners are IPv6-only); write it as IPv4", a.text);
		return -1;
	}
	/* canonical text: "localhost:80" and "127.0.0.1:80" are one */
	for (size_t i = 0; i < c->nlisten; i++) {
		if (strcmp(c->listen[i].text, a.text) == 0) {
			snprintf(err, len, "duplicate address %s", a.text);
			return -1;
		}
	}
	c->listen = xrealloc(c->listen, (c->nlisten + 1) * sizeof(a));
	c->listen[c->nlisten++] = a;
	return 0;
}

/* The master's own HTTP endpoint: TCP or unix:, like a listener. */
static int
set_metrics(struct config *c, const struct key *k, const char *v,
    char *err, size_t len)
{
	struct address a;
	char why[200];

	(void)k;
	if (parse_address(v, &a, why, sizeof(why)) == -1) {
		snprintf(err, len, "bad address \"%s\": %s", v, why);
		return -1;
	}
	if (address_v4_mapped(&a)) {
		snprintf(err, len, "%s: an IPv4-mapped address cannot be bound "
		    "(IPv6 sockets are IPv6-only); write it as IPv4", a.text);
		return -1;
	}
	free(c->metrics);
	c->metrics = xstrdup(a.text);
	c->metrics_addr = a;
	return 0;
}

static int
get_number(const struct key *k, const char *v, unsigned long *n, char *err,
    size_t len)
{
	if (parse_uint(v, (unsigned long)k->lo, (unsigned long)k->hi, n) == 0)
		return 0;
	snprintf(err, len, "expected an integer from %lld to %lld, got \"%s\"",
	    k->lo, k->hi, v);
	return -1;
}

static int
set_int(struct config *c, const struct key *k, const char *v, char *err,
    size_t len)
{
	unsigned long n;

	if (get_number(k, v, &n, err, len) == -1)
		return -1;
	*FIELD(c, k, int) = (int)n;
	return 0;
}

static int
set_unsigned(struct config *c, const struct key *k, const char *v,
    char *err, size_t len)
{
	unsigned long n;

	if (get_number(k, v, &n, err, len) == -1)
		return -1;
	*FIELD(c, k, unsigned) = (unsigned)n;
	return 0;
}

static int
set_mode(struct config *c, const struct key *k, const char *v, char *err,
    size_t len)
{
	int m;

	if (parse_mode(v, &m) == -1 || m > k->hi) {
		snprintf(err, len, "expected an octal mode from 0 to %#llo, "
		    "got \"%s\"", k->hi, v);
		return -1;
	}
	*FIELD(c, k, int) = m;
	return 0;
}

static int
lookup_user(const char *v, struct passwd **pw)
{
	unsigned long id;

	errno = 0;
	if (parse_uint(v, 0, ID_MAX, &id) == 0)
		*pw = getpwuid((uid_t)id);
	else
		*pw = getpwnam(v);
	return *pw == NULL ? -1 : 0;
}

static int
lookup_group(const char *v, struct group **gr)
{
	unsigned long id;

	errno = 0;
	if (parse_uint(v, 0, ID_MAX, &id) == 0)
		*gr = getgrgid((gid_t)id);
	else
		*gr = getgrnam(v);
	return *gr == NULL ? -1 : 0;
}

/* "user", "user:group", ":group", numbers or names. A number needs no
 * entry in the user database: it is only passed to chown. */
static int
set_socket_owner(struct config *c, const struct key *k, const char *v,
    char *err, size_t len)
{
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	const char *colon = strchr(v, ':');
	char *user = dupn(v, colon ? (size_t)(colon - v) : strlen(v));
	struct passwd *pw;
	struct group *gr;
	unsigned long id;

	(void)k;
	if (*user != '\0') {
		if (parse_uint(user, 0, ID_MAX, &id) == 0)
			uid = (uid_t)id;
		else if (lookup_user(user, &pw) == 0)
			uid = pw->pw_uid;
		else {
			snprintf(err, len, "unknown user \"%s\"", user);
			goto fail;
		}
	}
	if (colon != NULL) {
		if (colon[1] == '\0') {
			snprintf(err, len, "missing group after ':' in \"%s\"",
			    v);
			goto fail;
		}
		if (parse_uint(colon + 1, 0, ID_MAX, &id) == 0)
			gid = (gid_t)id;
		else if (lookup_group(colon + 1, &gr) == 0)
			gid = gr->gr_gid;
		else {
			snprintf(err, len, "unknown group \"%s\"", colon + 1);
			goto fail;
		}
	} else if (*user == '\0') {
		snprintf(err, len, "expected user, user:group or :group");
		goto fail;
	}
	free(user);
	free(c->socket_owner);
	c->socket_owner = xstrdup(v);
	c->socket_uid = uid;
	c->socket_gid = gid;
	return 0;
fail:
	free(user);
	return -1;
}

static int
set_command(struct config *c, const struct key *k, const char *v,
    char *err, size_t len)
{
	struct strvec words = { NULL, 0 };

	(void)k;
	if (split_command(v, &words, err, len) == -1)
		return -1;
	free(c->command);
	c->command = xstrdup(v);
	strvec_clear(&c->argv);
	c->argv = words;
	return 0;
}

static int
set_user(struct config *c, const struct key *k, const char *v, char *err,
    size_t len)
{
	struct passwd *pw;

	(void)k;
	if (lookup_user(v, &pw) == -1) {
		snprintf(err, len, "unknown user \"%s\"", v);
		return -1;
	}
	c->uid = pw->pw_uid;
	if (c->group == NULL)	/* gid is the group's once group is set */
		c->gid = pw->pw_gid;
	free(c->user_home);
	c->user_home = xstrdup(pw->pw_dir);
	free(c->user);
	c->user = xstrdup(v);
	return 0;
}

static int
set_group(struct config *c, const struct key *k, const char *v, char *err,
    size_t len)
{
	struct group *gr;

	(void)k;
	if (lookup_group(v, &gr) == -1) {
		snprintf(err, len, "unknown group \"%s\"", v);
		return -1;
	}
	c->gid = gr->gr_gid;
	free(c->group);
	c->group = xstrdup(v);
	return 0;
}

/* Variables fugue sets for every worker itself. */
static bool
env_reserved(const char *name, size_t n)
{
	static const char *const names[] = { "LISTEN_FDS", "LISTEN_PID",
	    "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID" };

	if (n >= 6 && strncmp(name, "FUGUE_", 6) == 0)
		return true;
	for (size_t i = 0; i < nitems(names); i++)
		if (strlen(names[i]) == n && strncmp(name, names[i], n) == 0)
			return true;
	return false;
}

static int
set_env(struct config *c, const struct key *k, const char *v, char *err,
    size_t len)
{
	size_t n = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_");

	(void)k;
	if (n == 0 || v[n] != '=' || isdigit((unsigned char)v[0])) {
		snprintf(err, len, "expected NAME=value (NAME of letters, digits "
		    "and _, not starting with a digit), got \"%s\"", v);
		return -1;
	}
	if (env_reserved(v, n)) {
		snprintf(err, len, "%.*s is set by fugue itself", (int)n, v);
		return -1;
	}
	/* the last value of a name wins, so the command line overrides */
	for (size_t i = 0; i < c->env.n; i++) {
		if (strncmp(c->env.v[i], v, n + 1) == 0) {
			free(c->env.v[i]);
			c->env.v[i] = xstrdup(v);
			return 0;
		}
	}
	strvec_push(&c->env, v);
	return 0;
}

static int
set_bool(struct config *c, const struct key *k, const char *v, char *err,
    size_t len)
{
	if (parse_bool(v, FIELD(c, k, bool)) == -1) {
		snprintf(err, len, "expected yes or no, got \"%s\"", v);
		return -1;
	}
	return 0;
}

static int
set_signal(struct config *c, const struct key *k, const char *v, char *err,
    size_t len)
{
	if (parse_signal(v, FIELD(c, k, int)) == -1) {
		snprintf(err, len, "expected a signal name or number (TERM, "
		    "SIGTERM, 15), got \"%s\"", v);
		return -1;
	}
	return 0;
}

static int
set_duration(struct config *c, const struct key *k, const char *v,
    char *err, size_t len)
{
	char lo[32];
	int64_t ms;

	if (parse_duration(v, &ms) == -1) {
		snprintf(err, len, "expected a duration %s, got \"%s\"",
		    DURATION_HELP, v);
		return -1;
	}
	if (ms < k->lo) {
		format_duration(k->lo, lo, sizeof(lo));
		snprintf(err, len, "expected a duration of %s%s, got \"%s\"",
		    k->lo == 1 ? "more than 0" : "at least ",
		    k->lo == 1 ? "" : lo, v);
		return -1;
	}
	*FIELD(c, k, int64_t) = ms;
	return 0;
}

static int
set_ready(struct config *c, const struct key *k, const char *v, char *err,
    size_t len)
{
	int64_t ms;

	(void)k;
	if (strcmp(v, "notify") == 0 || strcmp(v, "fd") == 0) {
		c->ready_notify = true;
		c->ready_pipe = v[0] == 'f';
		return 0;
	}
	if (parse_duration(v, &ms) == -1) {
		snprintf(err, len, "expected notify, fd or a duration %s, got "
		    "\"%s\"", DURATION_HELP, v);
		return -1;
	}
	c->ready_notify = c->ready_pipe = false;
	c->ready_ms = ms;
	return 0;
}

#define F(field)	offsetof(struct config, field)
#define M	"master"
#define L	"listen"
#define W	"worker"

static const struct key keys[] = {
	{ M, "pid_file",	set_path, F(pid_file), 0, 0, false },
	{ M, "log_file",	set_path, F(log_file), 0, 0, false },
	{ M, "master_log_file",	set_path, F(master_log_file), 0, 0, false },
	{ M, "log_level",	set_log_level, 0, 0, 0, false },
	{ M, "control_socket",	set_path, F(control_socket), 0, 0, false },
	{ M, "metrics",		set_metrics, 0, 0, 0, false },
	{ M, "runtime_dir",	set_path, F(runtime_dir), 0, 0, false },
	{ M, "subreaper",	set_subreaper, 0, 0, 0, false },
	{ L, "address",		set_address, 0, 0, 0, true },
	{ L, "backlog",		set_int, F(backlog), 1, 65535, false },
	{ L, "socket_mode",	set_mode, F(socket_mode), 0, 07777, false },
	{ L, "socket_owner",	set_socket_owner, 0, 0, 0, false },
	{ W, "command",		set_command, 0, 0, 0, false },
	{ W, "count",		set_unsigned, F(count), 0, 10000, false },
	{ W, "user",		set_user, 0, 0, 0, false },
	{ W, "group",		set_group, 0, 0, 0, false },
	{ W, "working_dir",	set_path, F(working_dir), 0, 0, false },
	{ W, "umask",		set_mode, F(umask), 0, 0777, false },
	{ W, "env",		set_env, 0, 0, 0, true },
	{ W, "clear_env",	set_bool, F(clear_env), 0, 0, false },
	{ W, "stop_signal",	set_signal, F(stop_signal), 0, 0, false },
	{ W, "kill_timeout",	set_duration, F(kill_timeout_ms), 0, 0, false },
	{ W, "kill_mode",	set_kill_mode, 0, 0, 0, false },
	{ W, "ready",		set_ready, 0, 0, 0, false },
	{ W, "ready_timeout",	set_duration, F(ready_timeout_ms), 1, 0, false },
	{ W, "ready_hold",	set_duration, F(ready_hold_ms), 0, 0, false },
	{ W, "watchdog",	set_duration, F(watchdog_ms), 0, 0, false },
	{ W, "master_death_signal", set_signal, F(master_death_signal), 0, 0,
	    false },
	{ W, "restart_delay_max", set_duration, F(restart_delay_max_ms), 100, 0,
	    false },
	{ W, "log_raw",		set_bool, F(log_raw), 0, 0, false },
};
#define NKEYS	nitems(keys)

static const char *const sections[] = { M, L, W };

#undef F
#undef M
#undef L
#undef W

/* ---- errors and suggestions ---- */

/* One line per error, whatever a value held. */
void
add_error(struct errlist *errs, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r == -1) {
		errlist_add(errs, "out of memory");
		return;
	}
	for (char *p = s; *p; p++)
		if (iscntrl((unsigned char)*p))
			*p = *p == '\t' ? ' ' : '?';
	errlist_add(errs, "%s", s);
	free(s);
}

static size_t
distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65], diag, up, best;

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			up = row[j];
			best = diag + (tolower((unsigned char)a[i - 1]) !=
			    tolower((unsigned char)b[j - 1]));
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

bool
section_known(const char *s)
{
	for (size_t i = 0; i < nitems(sections); i++)
		if (strcmp(s, sections[i]) == 0)
			return true;
	return false;
}

const struct key *
key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if ((section == NULL || strcmp(keys[i].section, section) == 0) &&
		    strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* " (did you mean ...?)" for an unknown key, or "". The same name in
 * another section first, then the closest name, this section first. */
void
key_hint(const char *section, const char *name, char *buf, size_t len)
{
	const struct key *k = key_find(NULL, name), *best = NULL;
	size_t d, bestd = 3;

	for (int pass = 0; k == NULL && pass < 2; pass++) {
		for (size_t i = 0; i < NKEYS; i++) {
			if ((strcmp(keys[i].section, section) == 0) != (pass == 0))
				continue;
			if ((d = distance(name, keys[i].name)) < bestd) {
				bestd = d;
				best = &keys[i];
			}
		}
		k = best;
	}
	if (k == NULL)
		buf[0] = '\0';
	else if (strcmp(k->section, section) == 0)
		snprintf(buf, len, " (did you mean %s?)", k->name);
	else
		snprintf(buf, len, " (did you mean [%s] %s?)", k->section,
		    k->name);
}

void
section_hint(const char *section, char *buf, size_t len)
{
	const char *best = NULL;
	size_t d, bestd = 3;

	for (size_t i = 0; i < nitems(sections); i++) {
		if ((d = distance(section, sections[i])) < bestd) {
			bestd = d;
			best = sections[i];
		}
	}
	if (best != NULL)
		snprintf(buf, len, " (did you mean [%s]?)", best);
	else
		snprintf(buf, len, " (sections: [master], [listen], [worker])");
}

/* Where k was set; an address set now gets its own. */
static void
note_origin(struct config *c, const struct key *k, const char *where,
    size_t nlisten_before)
{
	size_t i = key_index(k);

	if (c->origin == NULL)
		c->origin = xcalloc(NKEYS, sizeof(*c->origin));
	free(c->origin[i]);
	c->origin[i] = xstrdup(where);
	if (c->nlisten > nlisten_before)
		strvec_push(&c->listen_origin, where);
}

int
key_apply(struct config *c, const struct key *k, const char *value,
    const char *where, struct errlist *errs)
{
	size_t nlisten = c->nlisten;
	char err[1024];

	if (*value == '\0')
		snprintf(err, sizeof(err), "missing value");
	else if (k->set(c, k, value, err, sizeof(err)) == 0) {
		note_origin(c, k, where, nlisten);
		return 0;
	}
	add_error(errs, "%s: [%s] %s: %s", where, k->section, k->name, err);
	return EX_CONFIG_;
}

size_t
key_count(void)
{
	return NKEYS;
}

size_t
key_index(const struct key *k)
{
	return (size_t)(k - keys);
}

bool
key_repeatable(const struct key *k)
{
	return k->repeatable;
}

/* ---- the rest of the API ---- */

int
config_set(struct config *c, const char *section, const char *key,
    const char *value, const char *where, struct errlist *errs)
{
	const struct key *k;
	char hint[128];

	if (section == NULL)
		section = config_key_section(key);
	if (section == NULL || (k = key_find(section, key)) == NULL) {
		key_hint(section ? section : "", key, hint, sizeof(hint));
		if (section != NULL)
			add_error(errs, "%s: [%s] %s: unknown key%s", where,
			    section, key, hint);
		else
			add_error(errs, "%s: %s: unknown key%s", where, key,
			    hint);
		return EX_CONFIG_;
	}
	return key_apply(c, k, value ? value : "", where, errs);
}

const char *
config_key_section(const char *key)
{
	const struct key *k = key_find(NULL, key);

	return k ? k->section : NULL;
}

const char *
config_origin(const struct config *c, const char *key)
{
	const struct key *k = key_find(NULL, key);

	if (k && c->origin && c->origin[key_index(k)])
		return c->origin[key_index(k)];
	return c->path ? c->path : "command line";
}

const char *
config_listen_origin(const struct config *c, size_t i)
{
	if (c->listen_origin.n == c->nlisten && i < c->nlisten)
		return c->listen_origin.v[i];
	return c->path ? c->path : "command line";
}

void
config_set_origin(struct config *c, const char *key, const char *where)
{
	const struct key *k = key_find(NULL, key);

	if (k)
		note_origin(c, k, where, c->nlisten);
}

/* Only the repeatable keys: the others are replaced by a set anyway. */
void
config_reset_key(struct config *c, const char *key)
{
	if (strcmp(key, "address") == 0) {
		free(c->listen);
		c->listen = NULL;
		c->nlisten = 0;
		c->listen_full = false;
		strvec_clear(&c->listen_origin);
	} else if (strcmp(key, "env") == 0)
		strvec_clear(&c->env);
}

void
config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->log_level = LVL_INFO;
	c->subreaper = SUBREAPER_AUTO;
	c->backlog = 1024;
	c->socket_mode = -1;
	c->socket_uid = (uid_t)-1;
	c->socket_gid = (gid_t)-1;
	c->count = 1;
	c->uid = (uid_t)-1;
	c->gid = (gid_t)-1;
	c->umask = -1;
	c->stop_signal = SIGTERM;
	c->kill_mode = KILL_MIXED;
	c->kill_timeout_ms = 30 * 1000;
	c->ready_ms = 1000;
	c->ready_timeout_ms = 60 * 1000;
	c->ready_hold_ms = 1000;
	c->master_death_signal = SIGTERM;
	c->restart_delay_max_ms = 30 * 1000;
}

void
config_free(struct config *c)
{
	free(c->path);
	free(c->pid_file);
	free(c->log_file);
	free(c->master_log_file);
	free(c->control_socket);
	free(c->metrics);
	free(c->runtime_dir);
	free(c->listen);
	free(c->socket_owner);
	free(c->command);
	strvec_clear(&c->argv);
	free(c->user);
	free(c->group);
	free(c->groups);
	free(c->user_home);
	free(c->working_dir);
	strvec_clear(&c->env);
	for (size_t i = 0; c->origin && i < NKEYS; i++)
		free(c->origin[i]);
	free(c->origin);
	strvec_clear(&c->listen_origin);
	memset(c, 0, sizeof(*c));
}
