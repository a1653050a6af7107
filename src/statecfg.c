/*
 * The running configuration in the upgrade's state, key by key: what the
 * new image loads, so that it serves what the old one did even if the file
 * changed meanwhile.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "upgrade.h"

static void
cfg_line(struct strvec *out, const char *sec, const char *key,
    const char *value)
{
	if (value)
		strvec_push_owned(out, xprintf("%s\t%s\t%s", sec, key, value));
}

static void
cfg_ms(struct strvec *out, const char *sec, const char *key, int64_t ms)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lldms", (long long)ms);
	cfg_line(out, sec, key, buf);
}

void
state_config_dump(const struct config *c, struct strvec *out)
{
	static const char *const levels[] = { "error", "warn", "info",
	    "debug" };
	static const char *const reapers[] = { "auto", "no", "yes" };
	static const char *const kill_modes[] = { "mixed", "group",
	    "process" };
	char buf[32];
	size_t i;

	cfg_line(out, "", "path", c->path);
	cfg_line(out, "master", "pid_file", c->pid_file);
	cfg_line(out, "master", "log_file", c->log_file);
	cfg_line(out, "master", "master_log_file", c->master_log_file);
	cfg_line(out, "master", "log_level", levels[c->log_level & 3]);
	cfg_line(out, "master", "control_socket", c->control_socket);
	cfg_line(out, "master", "metrics", c->metrics);
	cfg_line(out, "master", "runtime_dir", c->runtime_dir);
	cfg_line(out, "master", "subreaper", reapers[c->subreaper % 3]);
	/* The keys that came later only when set (a downgrade still reads
	 * a state that keeps their defaults). */
	for (i = 0; i < HOOK_N; i++)
		cfg_line(out, "master", hook_name(i), c->hook[i].text);
	if (c->hook_timeout_ms != 30 * 1000)
		cfg_ms(out, "master", "hook_timeout", c->hook_timeout_ms);
	for (i = 0; i < c->nlisten; i++)
		cfg_line(out, "listen", "address", c->listen[i].text);
	snprintf(buf, sizeof(buf), "%d", c->backlog);
	cfg_line(out, "listen", "backlog", buf);
	if (c->socket_mode >= 0) {
		snprintf(buf, sizeof(buf), "%04o", c->socket_mode);
		cfg_line(out, "listen", "socket_mode", buf);
	}
	cfg_line(out, "listen", "socket_owner", c->socket_owner);
	cfg_line(out, "worker", "command", c->command);
	snprintf(buf, sizeof(buf), "%u", c->count);
	cfg_line(out, "worker", "count", buf);
	/* Keys newer than 0.1.0 only when set: a downgrade reads the rest. */
	if (c->blocking)
		cfg_line(out, "listen", "blocking", "yes");
	if (c->max_surge != 100 || !c->max_surge_pct) {
		snprintf(buf, sizeof(buf), "%u%s", c->max_surge,
		    c->max_surge_pct ? "%" : "");
		cfg_line(out, "worker", "max_surge", buf);
	}
	cfg_line(out, "worker", "user", c->user);
	cfg_line(out, "worker", "group", c->group);
	cfg_line(out, "worker", "working_dir", c->working_dir);
	if (c->umask >= 0) {
		snprintf(buf, sizeof(buf), "%04o", c->umask);
		cfg_line(out, "worker", "umask", buf);
	}
	for (i = 0; i < c->env.n; i++)
		cfg_line(out, "worker", "env", c->env.v[i]);
	cfg_line(out, "worker", "clear_env", c->clear_env ? "yes" : "no");
	cfg_line(out, "worker", "stop_signal", signal_name(c->stop_signal));
	cfg_ms(out, "worker", "kill_timeout", c->kill_timeout_ms);
	/* Only when set: a fugue that predates the key (a downgrade) can
	 * still read a state that keeps the default. */
	if (c->kill_mode != KILL_MIXED)
		cfg_line(out, "worker", "kill_mode",
		    kill_modes[c->kill_mode % 3]);
	if (c->stop_delay_ms != 0)
		cfg_ms(out, "worker", "stop_delay", c->stop_delay_ms);
	if (c->ready_notify)
		cfg_line(out, "worker", "ready", c->ready_pipe ? "fd" : "notify");
	else
		cfg_ms(out, "worker", "ready", c->ready_ms);
	cfg_ms(out, "worker", "ready_timeout", c->ready_timeout_ms);
	if (c->max_lifetime_ms)
		cfg_ms(out, "worker", "max_lifetime", c->max_lifetime_ms);
	if (c->max_lifetime_jitter_ms)
		cfg_ms(out, "worker", "max_lifetime_jitter",
		    c->max_lifetime_jitter_ms);
	if (c->max_memory) {
		format_size(c->max_memory, buf, sizeof(buf));
		cfg_line(out, "worker", "max_memory", buf);
	}
	if (c->memory_interval_ms != 10 * 1000)
		cfg_ms(out, "worker", "memory_interval", c->memory_interval_ms);
	if (c->ready_hold_ms != 1000)
		cfg_ms(out, "worker", "ready_hold", c->ready_hold_ms);
	cfg_ms(out, "worker", "watchdog", c->watchdog_ms);
	cfg_line(out, "worker", "master_death_signal",
	    signal_name(c->master_death_signal));
	cfg_ms(out, "worker", "restart_delay_max", c->restart_delay_max_ms);
	cfg_line(out, "worker", "log_raw", c->log_raw ? "yes" : "no");
}

int
state_config_load(const struct strvec *lines, struct config *c,
    struct errlist *errs)
{
	int r = 0;

	for (size_t i = 0; i < lines->n; i++) {
		char *sec = xstrdup(lines->v[i]);
		char *key = strchr(sec, '\t'), *value;

		if (key == NULL || (value = strchr(key + 1, '\t')) == NULL) {
			free(sec);
			errlist_add(errs, "state: bad configuration line");
			return EX_CONFIG_;
		}
		*key++ = '\0';
		*value++ = '\0';
		if (strcmp(key, "path") == 0 && *sec == '\0') {
			free(c->path);
			c->path = xstrdup(value);
		} else if (config_set(c, sec, key, value, "state", errs) != 0)
			r = EX_CONFIG_;
		free(sec);
	}
	if (r == 0 && config_validate(c, false, errs) != 0)
		r = EX_CONFIG_;
	return r;
}
