/*
 * The setters of the configuration's keys: each parses one value into the
 * struct config, or says why it cannot in one line. config.c's key table
 * names them.
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

int
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

int
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

int
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

int
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

int
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
int
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

int
set_int(struct config *c, const struct key *k, const char *v, char *err,
    size_t len)
{
	unsigned long n;

	if (get_number(k, v, &n, err, len) == -1)
		return -1;
	*FIELD(c, k, int) = (int)n;
	return 0;
}

int
set_unsigned(struct config *c, const struct key *k, const char *v,
    char *err, size_t len)
{
	unsigned long n;

	if (get_number(k, v, &n, err, len) == -1)
		return -1;
	*FIELD(c, k, unsigned) = (unsigned)n;
	return 0;
}

int
set_size(struct config *c, const struct key *k, const char *v, char *err,
    size_t len)
{
	uint64_t n;

	if (parse_size(v, &n) == -1) {
		snprintf(err, len, "expected a size such as 512M, 2G or 0, got "
		    "\"%s\"", v);
		return -1;
	}
	*FIELD(c, k, uint64_t) = n;
	return 0;
}

/* max_surge: N workers, or N% of count. */
int
set_surge(struct config *c, const struct key *k, const char *v, char *err,
    size_t len)
{
	size_t n = strlen(v);
	unsigned long x;
	bool pct = n > 1 && v[n - 1] == '%';
	char num[24];

	(void)k;
	if (n < sizeof(num)) {
		memcpy(num, v, n + 1);
		if (pct)
			num[n - 1] = '\0';
		if (parse_uint(num, 1, pct ? 100 : 10000, &x) == 0) {
			c->max_surge = (unsigned)x;
			c->max_surge_pct = pct;
			return 0;
		}
	}
	snprintf(err, len, "expected a number of workers from 1 to 10000 or a "
	    "percentage of count from 1%% to 100%%, got \"%s\"", v);
	return -1;
}

unsigned
config_surge(const struct config *c, unsigned count)
{
	unsigned long s;

	if (!c->max_surge_pct)
		return c->max_surge;
	s = ((unsigned long)count * c->max_surge + 99) / 100;
	return s ? (unsigned)s : 1;
}

int
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
int
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

int
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

/* A reload hook: split as command is; run later, without a shell. */
int
set_hook(struct config *c, const struct key *k, const char *v, char *err,
    size_t len)
{
	struct hookcmd *h = FIELD(c, k, struct hookcmd);
	struct strvec words = { NULL, 0 };

	if (split_command(v, &words, err, len) == -1)
		return -1;
	free(h->text);
	h->text = xstrdup(v);
	strvec_clear(&h->argv);
	h->argv = words;
	return 0;
}

const char *
hook_name(enum hook_kind k)
{
	static const char *const names[HOOK_N] = { "exec_before_reload",
	    "exec_after_reload", "exec_reload_failed" };

	return (unsigned)k < HOOK_N ? names[k] : "?";
}

int
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

int
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

int
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

int
set_bool(struct config *c, const struct key *k, const char *v, char *err,
    size_t len)
{
	if (parse_bool(v, FIELD(c, k, bool)) == -1) {
		snprintf(err, len, "expected yes or no, got \"%s\"", v);
		return -1;
	}
	return 0;
}

int
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

int
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

int
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

