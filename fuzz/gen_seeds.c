/*
 * gen_seeds DIR: write state seeds made by the real state_format() into
 * DIR/state/gen-*: the state of a master running fugue.conf.example, one in
 * the middle of a reload (two generations, a worker in backoff, a draining
 * one, a control client waiting), and one with every field at its limits.
 * Run by `make fuzz-seeds` from the top of the tree.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "upgrade.h"
#include "workers.h"

static void
put(const char *dir, const char *name, const struct state *s)
{
	char path[PATH_MAX], err[256];
	struct state back;
	size_t len;
	char *text = state_format(s, &len);
	FILE *f;

	if (state_parse(text, len, &back, err, sizeof(err)) == -1) {
		fprintf(stderr, "gen_seeds: %s does not parse: %s\n", name, err);
		exit(1);
	}
	state_free(&back);
	snprintf(path, sizeof(path), "%s/state/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL || fwrite(text, 1, len, f) != len ||
	    fclose(f) != 0) {
		fprintf(stderr, "gen_seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	printf("%s (%zu bytes)\n", path, len);
	free(text);
}

static void
load(struct config *c, const char *path)
{
	struct errlist errs = { NULL, 0 };

	config_init(c);
	if (config_load(c, path, &errs) != 0 ||
	    config_validate(c, false, &errs) != 0) {
		fprintf(stderr, "gen_seeds: %s: %s\n", path, errs.v[0]);
		exit(1);
	}
	errlist_free(&errs);
}

static struct state
base(void)
{
	struct state s;

	state_init(&s);
	s.version = STATE_VERSION;
	return s;
}

int
main(int argc, char **argv)
{
	struct state_listener ls[3];
	struct state_worker ws[4];
	struct state_pipe ps[4];
	struct state_waiter wt[2];
	struct state_count cs[3];
	struct state_mclient mc[1];
	struct config c;
	struct state s;
	char path[PATH_MAX];
	const char *dir = argc > 1 ? argv[1] : "fuzz/corpus";

	snprintf(path, sizeof(path), "%s/state", dir);
	mkdir(path, 0755);

	/* fugue.conf.example, running: generation 1, two ready workers. */
	load(&c, "fugue.conf.example");
	/* Where it would be installed: no path of this machine in a seed. */
	free(c.path);
	c.path = xstrdup("/etc/fugue/app.conf");
	s = base();
	s.cur_gen = s.last_gen = 1;
	s.target = 2;
	s.nofile = 1024;
	s.pid_fd = 3;
	memset(ls, 0, sizeof(ls));
	ls[0].fd = 4;
	ls[0].dev = 0;
	ls[0].ino = 0;
	snprintf(ls[0].addr, sizeof(ls[0].addr), "127.0.0.1:8080");
	s.ls = ls;
	s.nls = 1;
	memset(ws, 0, sizeof(ws));
	for (int i = 0; i < 2; i++) {
		ws[i] = (struct state_worker){ .pid = 4242 + i, .slot = i,
		    .gen = 1, .state = W_READY, .exec_ok = true, .execfd = -1,
		    .outfd = 6 + i, .age_ms = 73000, .ready_age_ms = 72500,
		    .timer_ms = -1 };
		ps[i] = (struct state_pipe){ .fd = 6 + i, .slot = i,
		    .pid = 4242 + i };
	}
	ws[0].readyfd = ws[1].readyfd = -1;	/* no ready = fd pipe */
	s.ws = ws;
	s.nws = 2;
	s.ps = ps;
	s.nps = 2;
	state_config_dump(&c, &s.cfg);
	put(dir, "gen-example", &s);
	strvec_clear(&s.cfg);
	config_free(&c);

	/* Mid-reload: TCP, IPv6 and UNIX listeners (one going away), a new
	 * generation starting, an old one draining, a slot in backoff, a
	 * notify socket, a control client awaiting the outcome. */
	config_init(&c);
	{
		struct errlist errs = { NULL, 0 };
		static const char *const kv[][3] = {
		    { "master", "log_level", "debug" },
		    { "master", "control_socket", "/run/app/fugue.sock" },
		    { "master", "metrics", "127.0.0.1:9100" },
		    { "master", "runtime_dir", "/run/app" },
		    { "listen", "address", "127.0.0.1:8080" },
		    { "listen", "address", "[::1]:8080" },
		    { "listen", "address", "unix:/run/app/app.sock" },
		    { "listen", "socket_mode", "0660" },
		    { "listen", "socket_owner", "0:0" },
		    { "worker", "command", "/usr/bin/node server.js "
			"--flag \"a quoted; argument\" 'single'" },
		    { "worker", "count", "2" },
		    { "worker", "env", "NODE_ENV=production" },
		    { "worker", "env", "SPACES=two words\tand a tab" },
		    { "worker", "umask", "0027" },
		    { "worker", "ready", "notify" },
		    { "worker", "watchdog", "10s" },
		    { "worker", "stop_signal", "SIGQUIT" },
		    { "worker", "master_death_signal", "KILL" },
		    { "worker", "kill_timeout", "1.5s" },
		};

		for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
			config_set(&c, kv[i][0], kv[i][1], kv[i][2], "gen", &errs);
		if (errs.n || config_validate(&c, false, &errs)) {
			fprintf(stderr, "gen_seeds: %s\n", errs.v[0]);
			return 1;
		}
		errlist_free(&errs);
	}
	s = base();
	s.cur_gen = 3;
	s.last_gen = 4;
	s.target = 2;
	s.nofile = 1048576;
	s.pid_fd = 3;
	s.notify_fd = 5;
	s.notify_path = "/run/app/fugue-123.notify";
	ls[0].fd = 4;
	snprintf(ls[1].addr, sizeof(ls[1].addr), "[::1]:8080");
	ls[1].fd = 7;
	snprintf(ls[2].addr, sizeof(ls[2].addr), "unix:/run/app/app.sock");
	ls[2].fd = 8;
	ls[2].dev = 64769;
	ls[2].ino = 1234567;
	ls[2].gone = true;
	s.ls = ls;
	s.nls = 3;
	ws[0] = (struct state_worker){ .pid = 5000, .slot = 0, .gen = 3,
	    .state = W_DRAINING, .exec_ok = true, .execfd = -1, .outfd = 9,
	    .restarts = 2, .backoff_ms = 0, .last_status = 256,
	    .age_ms = 3600000, .ready_age_ms = 3599000, .timer_ms = 29000 };
	ws[1] = (struct state_worker){ .pid = 0, .slot = 1, .gen = 3,
	    .state = W_BACKOFF, .exec_ok = false, .failed_start = true,
	    .execfd = -1, .outfd = -1, .restarts = 7, .backoff_ms = 6400,
	    .last_status = 9, .age_ms = 120, .ready_age_ms = -1,
	    .timer_ms = 3100 };
	ws[2] = (struct state_worker){ .pid = 5101, .slot = 0, .gen = 4,
	    .state = W_STARTING, .exec_ok = false, .execfd = 10, .outfd = 11,
	    .age_ms = 15, .ready_age_ms = -1, .timer_ms = 59985 };
	ws[3] = (struct state_worker){ .pid = 5102, .slot = 1, .gen = 4,
	    .state = W_READY, .exec_ok = true, .execfd = -1, .outfd = 12,
	    .age_ms = 900, .ready_age_ms = 10, .timer_ms = 9990 };
	for (int i = 0; i < 4; i++)
		ws[i].readyfd = -1;
	s.ws = ws;
	s.nws = 4;
	ps[0] = (struct state_pipe){ 9, 0, 5000 };
	ps[1] = (struct state_pipe){ 11, 0, 5101 };
	ps[2] = (struct state_pipe){ 12, 1, 5102 };
	ps[3] = (struct state_pipe){ 13, 1, 4999 };	/* exited, draining */
	s.ps = ps;
	s.nps = 4;
	s.ctl_fd = 14;
	s.op_seq = 5;
	s.op_current = 5;
	s.queued = 1;	/* a reload asked for during this one */
	wt[0] = (struct state_waiter){ 15, 4 };
	wt[1] = (struct state_waiter){ 16, 4 };
	s.waiters = wt;
	s.nwaiters = 2;
	/* The metrics endpoint, the counters, the last reload's failure. */
	s.metrics_fd = 17;
	mc[0] = (struct state_mclient){ 18, "GET /metrics HTTP/1.1\r\n" };
	s.mclients = mc;
	s.nmclients = 1;
	memset(cs, 0, sizeof(cs));
	snprintf(cs[0].name, sizeof(cs[0].name), "exits.signaled");
	cs[0].value = 7;
	snprintf(cs[1].name, sizeof(cs[1].name), "reloads.reload.rolled_back");
	cs[1].value = 1;
	snprintf(cs[2].name, sizeof(cs[2].name), "log_lines_dropped");
	cs[2].value = 18446744073709551615ULL;
	s.counts = cs;
	s.ncounts = 3;
	s.last.set = true;
	snprintf(s.last.kind, sizeof(s.last.kind), "reload");
	snprintf(s.last.result, sizeof(s.last.result), "rolled_back");
	s.last.time_ms = 1796291708498LL;
	s.last.from_gen = 2;
	s.last.to_gen = 3;
	s.last.reason = "worker 1 (pid 4998) of generation 3 exited with "
	    "status 1 before the generation was ready";
	state_config_dump(&c, &s.cfg);
	put(dir, "gen-reload", &s);
	strvec_clear(&s.cfg);
	config_free(&c);

	/* Limits: the largest numbers each field takes, no config. */
	s = base();
	s.cur_gen = s.last_gen = s.target = UINT_MAX;
	s.nofile = LLONG_MAX / 2;
	s.pid_fd = s.notify_fd = s.ctl_fd = 1 << 24;
	s.notify_path = "/%20 weird\tpath%";
	s.op_seq = s.op_current = UINT_MAX;
	ls[0].fd = 1 << 24;
	ls[0].dev = LLONG_MAX;
	ls[0].ino = LLONG_MAX;
	ls[0].gone = true;
	memset(ls[0].addr, 'a', ADDRESS_TEXT_MAX - 1);
	ls[0].addr[ADDRESS_TEXT_MAX - 1] = '\0';
	s.ls = ls;
	s.nls = 1;
	ws[0] = (struct state_worker){ .pid = INT_MAX, .slot = UINT_MAX,
	    .gen = UINT_MAX, .state = W_DRAINING, .exec_ok = true,
	    .failed_start = true, .execfd = 1 << 24, .outfd = 1 << 24,
	    .restarts = UINT_MAX, .backoff_ms = UINT_MAX,
	    .last_status = INT_MAX, .age_ms = LLONG_MAX / 2,
	    .ready_age_ms = LLONG_MAX / 2, .timer_ms = LLONG_MAX / 2 };
	ws[0].readyfd = -1;
	s.ws = ws;
	s.nws = 1;
	put(dir, "gen-limits", &s);

	/* The smallest state: a master record and the end. */
	s = base();
	put(dir, "gen-minimal", &s);
	return 0;
}
