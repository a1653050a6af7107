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


/* ---- the keys (their setters: cfgset.c) ---- */

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
	{ M, "exec_before_reload", set_hook, F(hook[HOOK_BEFORE]), 0, 0, false },
	{ M, "exec_after_reload", set_hook, F(hook[HOOK_AFTER]), 0, 0, false },
	{ M, "exec_reload_failed", set_hook, F(hook[HOOK_FAILED]), 0, 0, false },
	{ M, "hook_timeout",	set_duration, F(hook_timeout_ms), 1, 0, false },
	{ L, "address",		set_address, 0, 0, 0, true },
	{ L, "backlog",		set_int, F(backlog), 1, 65535, false },
	{ L, "blocking",	set_bool, F(blocking), 0, 0, false },
	{ L, "socket_mode",	set_mode, F(socket_mode), 0, 07777, false },
	{ L, "socket_owner",	set_socket_owner, 0, 0, 0, false },
	{ W, "command",		set_command, 0, 0, 0, false },
	{ W, "count",		set_unsigned, F(count), 0, 10000, false },
	{ W, "max_surge",	set_surge, 0, 0, 0, false },
	{ W, "max_lifetime",	set_duration, F(max_lifetime_ms), 0, 0, false },
	{ W, "max_lifetime_jitter", set_duration, F(max_lifetime_jitter_ms), 0,
	    0, false },
	{ W, "max_memory",	set_size, F(max_memory), 0, 0, false },
	{ W, "memory_interval",	set_duration, F(memory_interval_ms), 100, 0,
	    false },
	{ W, "user",		set_user, 0, 0, 0, false },
	{ W, "group",		set_group, 0, 0, 0, false },
	{ W, "working_dir",	set_path, F(working_dir), 0, 0, false },
	{ W, "umask",		set_mode, F(umask), 0, 0777, false },
	{ W, "env",		set_env, 0, 0, 0, true },
	{ W, "clear_env",	set_bool, F(clear_env), 0, 0, false },
	{ W, "stop_signal",	set_signal, F(stop_signal), 0, 0, false },
	{ W, "kill_timeout",	set_duration, F(kill_timeout_ms), 0, 0, false },
	{ W, "kill_mode",	set_kill_mode, 0, 0, 0, false },
	{ W, "stop_delay",	set_duration, F(stop_delay_ms), 0, 0, false },
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
	c->hook_timeout_ms = 30 * 1000;
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
	c->memory_interval_ms = 10 * 1000;
	c->max_surge = 100;
	c->max_surge_pct = true;
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
	for (int i = 0; i < HOOK_N; i++) {
		free(c->hook[i].text);
		strvec_clear(&c->hook[i].argv);
	}
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
