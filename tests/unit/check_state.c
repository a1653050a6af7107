/* Unit tests of src/state.c: the master's state handed across an upgrade's
 * re-exec (text form, round trip, versions, truncated and corrupt input)
 * and the running configuration dumped as "section\tkey\tvalue" lines and
 * loaded back. */
#include <sys/socket.h>
#include <netinet/in.h>

#include <check.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "logging.h"
#include "upgrade.h"
#include "util.h"
#include "workers.h"

#define UNIX_ADDR	"unix:/tmp/fugue state/50% off\x7f.sock"
#define NOTIFY_PATH	"/run/fugue dir/fugue-42 100%.notify"

/* ---- helpers ---- */

/* A state with something of everything: listeners (one gone, one a UNIX
 * path that needs encoding), a worker in every state, pipes, cfg lines. */
static void
state_sample(struct state *s)
{
	static const struct state_listener ls[] = {
		{ 5, 0, 0, false, "127.0.0.1:8080" },
		{ 6, 0, 0, false, "[::1]:9090" },
		{ 7, 2049, 123456789012ULL, false, UNIX_ADDR },
		{ 8, 0, 0, true, "0.0.0.0:7070" },
	};
	static const struct state_worker ws[] = {
		{ 1001, 0, 3, W_STARTING, false, false, 11, 12, 0, 0, -1, 15,
		    -1, 985, -1 },
		{ 1002, 1, 3, W_READY, true, false, -1, 13, 2, 400, 256,
		    86400000LL * 365, 86400000LL * 300, -1, 17 },
		{ 1003, 0, 2, W_DRAINING, true, true, -1, 14, 7, 30000,
		    9, 5000, 4000, 29999, -1 },
		{ 0, 2, 3, W_BACKOFF, false, false, -1, -1, 4, 1600, 139,
		    0, -1, 1600, -1 },
		{ INT_MAX, UINT_MAX, UINT_MAX, W_READY, true, false,
		    (1 << 24), (1 << 24), UINT_MAX, UINT_MAX, INT_MAX,
		    LLONG_MAX / 2, LLONG_MAX / 2, LLONG_MAX / 2, -1 },
	};
	static const struct state_pipe ps[] = {
		{ 12, 0, 1001 }, { 13, 1, 1002 }, { 20, 5, 999 },
	};
	static const struct state_waiter wt[] = {
		{ 30, 7 }, { 31, 0 }, { 32, UINT_MAX },
	};

	memset(s, 0, sizeof(*s));
	s->version = STATE_VERSION;
	s->cur_gen = 3;
	s->last_gen = 4;
	s->target = 2;
	s->nofile = 1024;
	s->pid_fd = 4;
	s->notify_fd = 9;
	s->notify_path = xstrdup(NOTIFY_PATH);
	s->nls = sizeof(ls) / sizeof(ls[0]);
	s->ls = xcalloc(s->nls, sizeof(*s->ls));
	memcpy(s->ls, ls, sizeof(ls));
	s->nws = sizeof(ws) / sizeof(ws[0]);
	s->ws = xcalloc(s->nws, sizeof(*s->ws));
	memcpy(s->ws, ws, sizeof(ws));
	s->nps = sizeof(ps) / sizeof(ps[0]);
	s->ps = xcalloc(s->nps, sizeof(*s->ps));
	memcpy(s->ps, ps, sizeof(ps));
	s->ctl_fd = 10;
	s->op_seq = 8;
	s->op_current = 7;
	s->queued = 2;
	s->nwaiters = sizeof(wt) / sizeof(wt[0]);
	s->waiters = xcalloc(s->nwaiters, sizeof(*s->waiters));
	memcpy(s->waiters, wt, sizeof(wt));
	strvec_push(&s->cfg, "\tpath\t/etc/fugue/app.conf");
	strvec_push(&s->cfg, "worker\tcommand\t/usr/bin/node server.js "
	    "--flag \"quoted arg\" 'single'");
	strvec_push(&s->cfg, "worker\tenv\tGREETING=hello world\t100%\n");
	strvec_push(&s->cfg, "worker\tenv\tEMPTY=");
	strvec_push(&s->cfg, "master\tpid_file\t");
	strvec_push(&s->cfg, "listen\taddress\t" UNIX_ADDR);
	strvec_push(&s->cfg, "worker\tenv\tUTF8=h\xc3\xa9llo %41 %%");
	s->sink_fd = 11;
	s->notify_dir = xstrdup("/run/fugue/fugue-77.Ab3dEf");
	s->nns = 2;
	s->ns = xcalloc(2, sizeof(*s->ns));
	s->ns[0].gen = 3;
	s->ns[0].fd = 15;
	s->ns[0].path = xstrdup("/run/fugue/fugue-77.Ab3dEf/gen-3.sock");
	s->ns[1].gen = 4;
	s->ns[1].fd = 16;
	s->ns[1].path = xstrdup("/run/fugue/fugue-77.Ab3dEf/gen 4.sock");
	s->metrics_fd = 18;
	s->metrics_dev = 2049;
	s->metrics_ino = 123456789013ULL;
	s->ncounts = 3;
	s->counts = xcalloc(3, sizeof(*s->counts));
	strcpy(s->counts[0].name, "exits.stopped");
	s->counts[0].value = 12;
	strcpy(s->counts[1].name, "reloads.upgrade.rolled_back");
	s->counts[1].value = ~0ULL;
	strcpy(s->counts[2].name, "log_lines_dropped");
	s->last.set = true;
	strcpy(s->last.kind, "upgrade");
	strcpy(s->last.result, "rolled_back");
	s->last.time_ms = 1796291708498LL;
	s->last.from_gen = 3;
	s->last.to_gen = 4;
	s->last.reason = xstrdup("worker 0 (pid 12) of generation 4 exited "
	    "with status 1 before the generation was ready; 100% \"sure\"\n");
	s->nmclients = 2;
	s->mclients = xcalloc(2, sizeof(*s->mclients));
	s->mclients[0].fd = 19;
	s->mclients[0].in = xstrdup("GET /readyz HTTP/1.1\r\nHost: a b\r\n");
	s->mclients[1].fd = 20;
	s->mclients[1].in = xstrdup("");
}

static void
expect_same_state(const struct state *a, const struct state *b)
{
	size_t i;

	ck_assert_uint_eq(b->version, STATE_VERSION);
	ck_assert_int_eq(a->sink_fd, b->sink_fd);
	ck_assert_int_eq(a->metrics_fd, b->metrics_fd);
	ck_assert_uint_eq(a->metrics_dev, b->metrics_dev);
	ck_assert_uint_eq(a->metrics_ino, b->metrics_ino);
	ck_assert_uint_eq(a->ncounts, b->ncounts);
	for (i = 0; i < a->ncounts; i++) {
		ck_assert_str_eq(a->counts[i].name, b->counts[i].name);
		ck_assert_uint_eq(a->counts[i].value, b->counts[i].value);
	}
	ck_assert_uint_eq(a->nmclients, b->nmclients);
	for (i = 0; i < a->nmclients; i++) {
		ck_assert_int_eq(a->mclients[i].fd, b->mclients[i].fd);
		ck_assert_str_eq(a->mclients[i].in, b->mclients[i].in);
	}
	ck_assert_int_eq(a->last.set, b->last.set);
	if (a->last.set) {
		ck_assert_str_eq(a->last.kind, b->last.kind);
		ck_assert_str_eq(a->last.result, b->last.result);
		ck_assert_int_eq(a->last.time_ms, b->last.time_ms);
		ck_assert_uint_eq(a->last.from_gen, b->last.from_gen);
		ck_assert_uint_eq(a->last.to_gen, b->last.to_gen);
		ck_assert_str_eq(a->last.reason ? a->last.reason : "",
		    b->last.reason);
	}
	if (a->notify_dir)
		ck_assert_str_eq(a->notify_dir, b->notify_dir);
	else
		ck_assert_ptr_null(b->notify_dir);
	ck_assert_uint_eq(a->nns, b->nns);
	for (i = 0; i < a->nns; i++) {
		ck_assert_uint_eq(a->ns[i].gen, b->ns[i].gen);
		ck_assert_int_eq(a->ns[i].fd, b->ns[i].fd);
		ck_assert_str_eq(a->ns[i].path, b->ns[i].path);
	}
	ck_assert_uint_eq(a->cur_gen, b->cur_gen);
	ck_assert_uint_eq(a->last_gen, b->last_gen);
	ck_assert_uint_eq(a->target, b->target);
	ck_assert_int_eq(a->nofile, b->nofile);
	ck_assert_int_eq(a->pid_fd, b->pid_fd);
	ck_assert_int_eq(a->notify_fd, b->notify_fd);
	if (a->notify_path == NULL || a->notify_path[0] == '\0')
		ck_assert_ptr_null(b->notify_path);
	else
		ck_assert_str_eq(a->notify_path, b->notify_path);

	ck_assert_uint_eq(a->nls, b->nls);
	for (i = 0; i < a->nls; i++) {
		ck_assert_int_eq(a->ls[i].fd, b->ls[i].fd);
		ck_assert_uint_eq(a->ls[i].dev, b->ls[i].dev);
		ck_assert_uint_eq(a->ls[i].ino, b->ls[i].ino);
		ck_assert_int_eq(a->ls[i].gone, b->ls[i].gone);
		ck_assert_str_eq(a->ls[i].addr, b->ls[i].addr);
	}
	ck_assert_uint_eq(a->nws, b->nws);
	for (i = 0; i < a->nws; i++) {
		const struct state_worker *x = &a->ws[i], *y = &b->ws[i];

		ck_assert_int_eq(x->pid, y->pid);
		ck_assert_uint_eq(x->slot, y->slot);
		ck_assert_uint_eq(x->gen, y->gen);
		ck_assert_int_eq(x->state, y->state);
		ck_assert_int_eq(x->exec_ok, y->exec_ok);
		ck_assert_int_eq(x->failed_start, y->failed_start);
		ck_assert_int_eq(x->execfd, y->execfd);
		ck_assert_int_eq(x->outfd, y->outfd);
		ck_assert_uint_eq(x->restarts, y->restarts);
		ck_assert_uint_eq(x->backoff_ms, y->backoff_ms);
		ck_assert_int_eq(x->last_status, y->last_status);
		ck_assert_int_eq(x->age_ms, y->age_ms);
		ck_assert_int_eq(x->ready_age_ms, y->ready_age_ms);
		ck_assert_int_eq(x->timer_ms, y->timer_ms);
		ck_assert_int_eq(x->readyfd, y->readyfd);
	}
	ck_assert_uint_eq(a->nps, b->nps);
	for (i = 0; i < a->nps; i++) {
		ck_assert_int_eq(a->ps[i].fd, b->ps[i].fd);
		ck_assert_uint_eq(a->ps[i].slot, b->ps[i].slot);
		ck_assert_int_eq(a->ps[i].pid, b->ps[i].pid);
	}
	ck_assert_int_eq(a->ctl_fd, b->ctl_fd);
	ck_assert_uint_eq(a->op_seq, b->op_seq);
	ck_assert_uint_eq(a->op_current, b->op_current);
	ck_assert_int_eq(a->queued, b->queued);
	ck_assert_uint_eq(a->nwaiters, b->nwaiters);
	for (i = 0; i < a->nwaiters; i++) {
		ck_assert_int_eq(a->waiters[i].fd, b->waiters[i].fd);
		ck_assert_uint_eq(a->waiters[i].after, b->waiters[i].after);
	}
	ck_assert_uint_eq(a->cfg.n, b->cfg.n);
	for (i = 0; i < a->cfg.n; i++)
		ck_assert_str_eq(a->cfg.v[i], b->cfg.v[i]);
	if (b->cfg.n > 0)
		ck_assert_ptr_null(b->cfg.v[b->cfg.n]);
}

/* state_parse on an exact-size copy (no NUL after it), so that any read
 * past the end is caught by the sanitizer. */
static int
parse_exact(const char *buf, size_t len, struct state *s, char *err,
    size_t errlen)
{
	char *copy = xmalloc(len);
	int r;

	memcpy(copy, buf, len);
	r = state_parse(copy, len, s, err, errlen);
	free(copy);
	return r;
}

static void
expect_parse_fails(const char *text, size_t len, const char *want_err)
{
	struct state s;
	char err[256];

	err[0] = '\0';
	ck_assert_msg(parse_exact(text, len, &s, err, sizeof(err)) == -1,
	    "parsed: \"%.*s\"", (int)len, text);
	ck_assert_msg(err[0] != '\0', "no error message for \"%.*s\"",
	    (int)len, text);
	if (want_err)
		ck_assert_msg(strstr(err, want_err) != NULL,
		    "error \"%s\" lacks \"%s\"", err, want_err);
	/* a failed parse leaves nothing behind to free */
	ck_assert_ptr_null(s.notify_path);
	ck_assert_ptr_null(s.ls);
	ck_assert_ptr_null(s.ws);
	ck_assert_ptr_null(s.ps);
	ck_assert_ptr_null(s.waiters);
	ck_assert_ptr_null(s.cfg.v);
	ck_assert_ptr_null(s.counts);
	ck_assert_ptr_null(s.last.reason);
	ck_assert_ptr_null(s.mclients);
	ck_assert_uint_eq(s.nls + s.nws + s.nps + s.nwaiters + s.cfg.n +
	    s.ncounts + s.nmclients, 0);
	state_free(&s);
}

/* ---- round trip ---- */

START_TEST(roundtrip_full)
{
	struct state a, b;
	char err[256];
	size_t len;
	char *text;

	state_sample(&a);
	text = state_format(&a, &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_gt(len, 0);
	ck_assert_int_eq(text[len - 1], '\n');
	ck_assert_ptr_null(memchr(text, '\0', len));
	ck_assert_msg(parse_exact(text, len, &b, err, sizeof(err)) == 0,
	    "%s", err);
	expect_same_state(&a, &b);

	/* and formatted again, the same text */
	{
		size_t len2;
		char *text2 = state_format(&b, &len2);

		ck_assert_uint_eq(len, len2);
		ck_assert_int_eq(memcmp(text, text2, len), 0);
		free(text2);
	}
	free(text);
	state_free(&a);
	state_free(&b);
}
END_TEST

START_TEST(roundtrip_minimal)
{
	struct state a, b;
	char err[256];
	size_t len;
	char *text;

	state_init(&a);
	text = state_format(&a, &len);
	ck_assert_msg(parse_exact(text, len, &b, err, sizeof(err)) == 0,
	    "%s", err);
	expect_same_state(&a, &b);
	ck_assert_ptr_null(b.notify_path);
	free(text);
	state_free(&b);

	/* an empty notify path is no notify path */
	a.notify_path = "";
	text = state_format(&a, &len);
	ck_assert_int_eq(parse_exact(text, len, &b, err, sizeof(err)), 0);
	ck_assert_ptr_null(b.notify_path);
	free(text);
	state_free(&b);
}
END_TEST

/* Free text is percent-encoded: every record keeps its field count. */
START_TEST(encoding)
{
	struct state a;
	size_t len;
	char *text, *line, *next;

	state_sample(&a);
	text = state_format(&a, &len);
	text = xrealloc(text, len + 1);
	text[len] = '\0';
	ck_assert_ptr_nonnull(strstr(text, "fugue-state 2\n"));
	ck_assert_ptr_nonnull(strstr(text,
	    " unix:/tmp/fugue%20state/50%25%20off%7F.sock\n"));
	ck_assert_ptr_nonnull(strstr(text,
	    " /run/fugue%20dir/fugue-42%20100%25.notify\n"));
	ck_assert_ptr_nonnull(strstr(text,
	    "cfg worker env GREETING=hello%20world%09100%25%0A\n"));
	/* the empty string is a lone '%', bytes above 0x7f go as they are */
	ck_assert_ptr_nonnull(strstr(text, "cfg master pid_file %\n"));
	ck_assert_ptr_nonnull(strstr(text, "cfg % path /etc/fugue/app.conf\n"));
	ck_assert_ptr_nonnull(strstr(text, "UTF8=h\xc3\xa9llo%20%2541"));
	for (line = text; *line; line = next) {
		size_t spaces = 0;

		next = strchr(line, '\n');
		ck_assert_ptr_nonnull(next);
		*next++ = '\0';
		for (char *p = line; *p; p++) {
			ck_assert_int_ne(*p, '\t');
			ck_assert_int_ne(*p, '\r');
			if (*p == ' ') {
				ck_assert_msg(p[1] != ' ' && p[1] != '\0',
				    "empty field in \"%s\"", line);
				spaces++;
			}
		}
		if (strncmp(line, "listener ", 9) == 0)
			ck_assert_uint_eq(spaces, 5);
		else if (strncmp(line, "master ", 7) == 0)
			ck_assert_uint_eq(spaces, 6);
		else if (strncmp(line, "worker ", 7) == 0)
			ck_assert_uint_eq(spaces, 14);
		else if (strncmp(line, "cfg ", 4) == 0)
			ck_assert_uint_eq(spaces, 3);
		else if (strncmp(line, "pipe ", 5) == 0)
			ck_assert_uint_eq(spaces, 3);
		else if (strncmp(line, "control ", 8) == 0)
			ck_assert_uint_eq(spaces, 4);
		else if (strncmp(line, "waiter ", 7) == 0)
			ck_assert_uint_eq(spaces, 2);
	}
	ck_assert_str_eq(text + len - 4, "end");	/* its '\n' cut above */
	free(text);
	state_free(&a);
}
END_TEST

/* dev_t and ino_t are unsigned 64-bit: an inode number with the top bit
 * set (NFS, FUSE, overlayfs with xino) comes back as it was. */
START_TEST(roundtrip_big_inode)
{
	struct state a, b;
	char err[256];
	size_t len;
	char *text;

	state_init(&a);
	a.nls = 1;
	a.ls = xcalloc(1, sizeof(*a.ls));
	a.ls[0].fd = 3;
	a.ls[0].dev = (dev_t)0xfffff00000000fffULL;
	a.ls[0].ino = (ino_t)(1ULL << 63 | 12345);
	strcpy(a.ls[0].addr, "unix:/run/app.sock");
	text = state_format(&a, &len);
	ck_assert_msg(parse_exact(text, len, &b, err, sizeof(err)) == 0,
	    "%s", err);
	expect_same_state(&a, &b);
	free(text);
	state_free(&a);
	state_free(&b);
}
END_TEST

/* Lowercase escapes are read too. */
START_TEST(lowercase_escapes)
{
	static const char text[] =
	    "fugue-state 1\n"
	    "master 1 1 1 -1 -1 /a%2fb%20c\n"
	    "cfg worker env X=%3d%7e\n"
	    "end\n";
	struct state s;
	char err[256];

	ck_assert_msg(parse_exact(text, sizeof(text) - 1, &s, err,
	    sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(s.notify_path, "/a/b c");
	ck_assert_uint_eq(s.cfg.n, 1);
	ck_assert_str_eq(s.cfg.v[0], "worker\tenv\tX==~");
	state_free(&s);
}
END_TEST

/* ---- versions ---- */

START_TEST(other_version)
{
	static const char *const heads[] = { "fugue-state 3\n",
	    "fugue-state 0\n", "fugue-state 1000\n" };
	static const char *const nums[] = { "3", "0", "1000" };
	char text[512], want[64];
	struct state s;
	size_t len;
	char *good;

	state_init(&s);
	good = state_format(&s, &len);
	for (size_t i = 0; i < 3; i++) {
		const char *rest = (const char *)memchr(good, '\n', len) + 1;

		snprintf(text, sizeof(text), "%s%.*s", heads[i],
		    (int)(len - (size_t)(rest - good)), rest);
		snprintf(want, sizeof(want), "version %s", nums[i]);
		expect_parse_fails(text, strlen(text), want);
		/* and it names the version this fugue reads */
		{
			char err[256];

			ck_assert_int_eq(parse_exact(text, strlen(text), &s,
			    err, sizeof(err)), -1);
			snprintf(want, sizeof(want), "versions 1 to %d",
			    STATE_VERSION);
			ck_assert_msg(strstr(err, want) != NULL, "%s", err);
		}
	}
	free(good);
}
END_TEST

/* The records of version 2 are not version 1's. */
START_TEST(v2_records_not_in_v1)
{
	static const char *const recs[] = {
		"metrics 5 0 0", "count exits.stopped 1", "mclient 5 GET",
		"lastreload reload ok 1 2 3 %",
	};
	struct state s;
	char err[256], text[256];

	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		snprintf(text, sizeof(text), "fugue-state 1\nmaster 3 4 2 -1 "
		    "-1 %%\n%s\nend\n", recs[i]);
		expect_parse_fails(text, strlen(text), "record");
		text[12] = '2';
		ck_assert_msg(parse_exact(text, strlen(text), &s, err,
		    sizeof(err)) == 0, "%s: %s", recs[i], err);
		state_free(&s);
	}
}
END_TEST

START_TEST(not_a_state)
{
	static const char *const texts[] = {
		"", "\n", "hello\n", "fugue-state\n", "fugue-state 1 2\n",
		"fugue-state x\n", "fugue-state -1\n", "FUGUE-STATE 1\n",
		"fugue-state  1\n",
		("fugue-state 1\r\nmaster 0 0 0 -1 -1 %\r\n" "end\r\n"),
		"master 0 0 0 -1 -1 %\nend\n",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		expect_parse_fails(texts[i], strlen(texts[i]), NULL);
}
END_TEST

/* ---- truncated ---- */

START_TEST(truncated_every_prefix)
{
	struct state a, b;
	char err[256];
	size_t len;
	char *text;

	state_sample(&a);
	text = state_format(&a, &len);
	for (size_t cut = 0; cut < len; cut++) {
		err[0] = '\0';
		ck_assert_msg(parse_exact(text, cut, &b, err, sizeof(err)) ==
		    -1, "a prefix of %zu bytes (of %zu) parsed", cut, len);
		ck_assert_msg(err[0] != '\0', "no error at %zu", cut);
		ck_assert_ptr_null(b.ls);
		ck_assert_ptr_null(b.ws);
		ck_assert_ptr_null(b.ps);
		ck_assert_ptr_null(b.waiters);
		ck_assert_ptr_null(b.cfg.v);
		ck_assert_ptr_null(b.notify_path);
		state_free(&b);
	}
	ck_assert_int_eq(parse_exact(text, len, &b, err, sizeof(err)), 0);
	state_free(&b);
	free(text);
	state_free(&a);
}
END_TEST

START_TEST(truncated_messages)
{
#define FAILS(text, want) \
	expect_parse_fails(text, sizeof(text) - 1, want)
	FAILS("fugue-state 1\nmaster 0 0 0 -1 -1 %\n", "no end");
	FAILS("fugue-state 1\nend\n", "no master");
	FAILS("fugue-state 1\nmaster 0 0 0 -1 -1 %\nend", "truncated");
	FAILS("fugue-state 1\nmaster 0 0 0 -1 -1 %\nend", "line 3");
#undef FAILS
}
END_TEST

/* ---- corrupt ---- */

/* A small valid state; each corrupt case replaces one of its lines. */
static const char *const base[] = {
	"fugue-state 2",
	"master 3 4 2 4 9 /run/fugue.notify",
	"nofile 1024",
	"listener 5 0 0 0 127.0.0.1:8080",
	"worker 1001 0 3 1 1 0 -1 12 0 0 -1 1500 500 -1",
	"worker 0 1 3 3 0 0 -1 -1 3 800 256 100 -1 800",
	"pipe 12 0 1001",
	"cfg worker command /bin/true",
	"control 10 8 7 1",
	"waiter 30 7",
	"end",
};
#define NBASE	(sizeof(base) / sizeof(base[0]))

/* The base with line i replaced by repl (NULL: removed); i == NBASE
 * appends repl after "end". */
static char *
base_with(size_t i, const char *repl, size_t *len)
{
	struct outbuf o = { 0 };

	for (size_t j = 0; j <= NBASE; j++) {
		const char *l = j == i ? repl : j < NBASE ? base[j] : NULL;

		if (l == NULL)
			continue;
		outbuf_add(&o, l, strlen(l));
		outbuf_add(&o, "\n", 1);
	}
	*len = o.len;
	return o.p;
}

START_TEST(corrupt_base_is_valid)
{
	struct state s;
	char err[256], *text;
	size_t len;

	text = base_with(NBASE, NULL, &len);
	ck_assert_msg(parse_exact(text, len, &s, err, sizeof(err)) == 0, "%s",
	    err);
	ck_assert_uint_eq(s.cur_gen, 3);
	ck_assert_uint_eq(s.last_gen, 4);
	ck_assert_uint_eq(s.target, 2);
	ck_assert_int_eq(s.pid_fd, 4);
	ck_assert_int_eq(s.notify_fd, 9);
	ck_assert_int_eq(s.nofile, 1024);
	ck_assert_str_eq(s.notify_path, "/run/fugue.notify");
	ck_assert_uint_eq(s.nls, 1);
	ck_assert_str_eq(s.ls[0].addr, "127.0.0.1:8080");
	ck_assert_uint_eq(s.nws, 2);
	ck_assert_int_eq(s.ws[0].pid, 1001);
	ck_assert_int_eq(s.ws[0].state, W_READY);
	ck_assert_int_eq(s.ws[1].pid, 0);
	ck_assert_int_eq(s.ws[1].state, W_BACKOFF);
	ck_assert_int_eq(s.ws[1].timer_ms, 800);
	ck_assert_uint_eq(s.nps, 1);
	ck_assert_uint_eq(s.cfg.n, 1);
	ck_assert_str_eq(s.cfg.v[0], "worker\tcommand\t/bin/true");
	ck_assert_int_eq(s.ctl_fd, 10);
	ck_assert_uint_eq(s.op_seq, 8);
	ck_assert_uint_eq(s.op_current, 7);
	ck_assert_int_eq(s.queued, 1);
	ck_assert_uint_eq(s.nwaiters, 1);
	ck_assert_int_eq(s.waiters[0].fd, 30);
	ck_assert_uint_eq(s.waiters[0].after, 7);
	state_free(&s);
	free(text);

	/* without the optional control and waiter records: none */
	{
		struct outbuf o = { 0 };

		for (size_t j = 0; j < NBASE; j++) {
			if (strncmp(base[j], "control ", 8) == 0 ||
			    strncmp(base[j], "waiter ", 7) == 0)
				continue;
			outbuf_add(&o, base[j], strlen(base[j]));
			outbuf_add(&o, "\n", 1);
		}
		ck_assert_msg(parse_exact(o.p, o.len, &s, err, sizeof(err)) ==
		    0, "%s", err);
		ck_assert_int_eq(s.ctl_fd, -1);
		ck_assert_uint_eq(s.nwaiters, 0);
		ck_assert_ptr_null(s.waiters);
		state_free(&s);
		outbuf_free(&o);
	}

	/* without the optional nofile record: none */
	text = base_with(2, NULL, &len);
	ck_assert_msg(parse_exact(text, len, &s, err, sizeof(err)) == 0, "%s",
	    err);
	ck_assert_int_eq(s.nofile, -1);
	state_free(&s);
	free(text);
}
END_TEST

static const struct {
	size_t		 line;
	const char	*text;
} corrupt[] = {
	/* master */
	{ 1, "master x 4 2 4 9 %" },
	{ 1, "master 3 4 2 4 9" },
	{ 1, "master 3 4 2 4 9 % extra" },
	{ 1, "master -1 4 2 4 9 %" },
	{ 1, "master 3 4 4294967296 4 9 %" },
	{ 1, "master 3 4 2 -2 9 %" },
	{ 1, "master 3 4 2 4 16777217 %" },
	{ 1, "master 3 4 2 4 99999999999999999999 %" },
	{ 1, "master 3 4 2 +4 9 %" },
	{ 1, "master 3 4 2 4 0x9 %" },
	{ 1, "master 3 4 2 4 9 /a%zz" },
	{ 1, "master 3 4 2 4 9 /a%4" },
	{ 1, "master 3 4 2 4 9 /a%" },
	{ 1, "master 3 4 2 4 9 /a%00b" },
	{ 1, "master 3  4 2 4 9 %" },
	{ 1, "master 3 4 2 4 9 % " },
	{ 1, "master 3 4 2 4 9 %\r" },
	/* nofile */
	{ 2, "nofile -2" },
	{ 2, "nofile x" },
	{ 2, "nofile" },
	{ 2, "nofile 1 2" },
	/* listener */
	{ 3, "listener -1 0 0 0 127.0.0.1:8080" },
	{ 3, "listener 16777217 0 0 0 127.0.0.1:8080" },
	{ 3, "listener 5 -1 0 0 127.0.0.1:8080" },
	{ 3, "listener 5 0 x 0 127.0.0.1:8080" },
	{ 3, "listener 5 0 0 2 127.0.0.1:8080" },
	{ 3, "listener 5 0 0 0 %" },
	{ 3, "listener 5 0 0 0 a%00" },
	{ 3, "listener 5 0 0 0" },
	{ 3, "listener 5 0 0 0 127.0.0.1:8080 x" },
	{ 3, "listener 5 0 0 0 unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
	/* worker: PID SLOT GEN STATE EXEC_OK FAILED EXECFD OUTFD RESTARTS
	 * BACKOFF_MS LAST_STATUS AGE_MS READY_AGE_MS TIMER_MS */
	{ 4, "worker -5 0 3 1 1 0 -1 12 0 0 -1 1500 500 -1" },
	{ 4, "worker 2147483648 0 3 1 1 0 -1 12 0 0 -1 1500 500 -1" },
	{ 4, "worker 0 0 3 1 1 0 -1 12 0 0 -1 1500 500 -1" },
	{ 4, "worker 0 0 3 0 1 0 -1 12 0 0 -1 1500 500 -1" },
	{ 4, "worker 0 0 3 2 1 0 -1 12 0 0 -1 1500 500 -1" },
	{ 4, "worker 1001 0 3 3 1 0 -1 12 0 0 -1 1500 500 -1" },
	{ 4, "worker 1001 0 3 4 1 0 -1 12 0 0 -1 1500 500 -1" },
	{ 4, "worker 1001 0 3 -1 1 0 -1 12 0 0 -1 1500 500 -1" },
	{ 4, "worker 1001 0 3 1 2 0 -1 12 0 0 -1 1500 500 -1" },
	{ 4, "worker 1001 0 3 1 1 -1 -1 12 0 0 -1 1500 500 -1" },
	{ 4, "worker 1001 0 3 1 1 0 -2 12 0 0 -1 1500 500 -1" },
	{ 4, "worker 1001 0 3 1 1 0 -1 16777217 0 0 -1 1500 500 -1" },
	{ 4, "worker 1001 -1 3 1 1 0 -1 12 0 0 -1 1500 500 -1" },
	{ 4, "worker 1001 4294967296 3 1 1 0 -1 12 0 0 -1 1500 500 -1" },
	{ 4, "worker 1001 0 3 1 1 0 -1 12 0 0 -2 1500 500 -1" },
	{ 4, "worker 1001 0 3 1 1 0 -1 12 0 0 -1 -1 500 -1" },
	{ 4, "worker 1001 0 3 1 1 0 -1 12 0 0 -1 1500 -2 -1" },
	{ 4, "worker 1001 0 3 1 1 0 -1 12 0 0 -1 1500 500 -2" },
	{ 4, "worker 1001 0 3 1 1 0 -1 12 0 0 -1 1500 500 "
	    "9223372036854775807" },
	{ 4, "worker 1001 0 3 1 1 0 -1 12 0 0 -1 1500 500 "
	    "99999999999999999999" },
	{ 4, "worker 1001 0 3 1 1 0 -1 12 0 0 -1 1500 500" },
	{ 4, "worker 1001 0 3 1 1 0 -1 12 0 0 -1 1500 500 -1 7" },
	{ 4, "worker 1001 0 3 1 1 0 -1 12 0 0 -1 1500 500 -1 1 2 3 4 5 6 7 8" },
	{ 4, "worker 1001 0 3 1 1 0 -1 12 0 0 -1 1500 500 1e3" },
	{ 4, "worker 1001 0 3 1 1 0 -1 12 0 0 -1 1500 500 -" },
	{ 4, "worker 1001 0 3 1 1 0 -1 12 0 0 -1 1500 500 --1" },
	{ 4, "worker 1001 0 3 1 1 0 -1 12 0 0 -1 1500 500 - 1" },
	{ 5, "worker 0 1 3 3 0 0 -1 -1 3 800 256 100 -1" },
	/* pipe */
	{ 6, "pipe 12 0 -1" },
	{ 6, "pipe -1 0 1001" },
	{ 6, "pipe 16777217 0 1001" },
	{ 6, "pipe 12 -1 1001" },
	{ 6, "pipe 12 0" },
	{ 6, "pipe 12 0 1001 " },
	/* ready PID FD: after the worker record of PID */
	{ 7, "ready 999 5" },
	{ 7, "ready 0 5" },
	{ 7, "ready 1001 -1" },
	{ 7, "ready 1001 16777217" },
	{ 7, "ready 1001" },
	{ 7, "ready 1001 5 5" },
	{ 3, "ready 1001 5" },
	/* cfg */
	{ 7, "cfg worker command /bin/%zz" },
	{ 7, "cfg worker command %00" },
	{ 7, "cfg worker command ab%0" },
	{ 7, "cfg worker command %G0" },
	{ 7, "cfg wor%09ker command x" },
	{ 7, "cfg worker com%09mand x" },
	{ 7, "cfg worker command" },
	{ 7, "cfg worker command /bin/true x" },
	/* records */
	{ 7, "bogus 1 2 3" },
	{ 7, "" },
	{ 7, " " },
	{ 7, "end end" },
	{ 7, "END" },
	{ 7, "x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x" },
	{ 0, "fugue-state 1 x" },
	{ 10, "end x" },
	/* metrics FD DEV INO */
	{ 7, "metrics -1 0 0" },
	{ 7, "metrics 16777217 0 0" },
	{ 7, "metrics 5 -1 0" },
	{ 7, "metrics 5 0 x" },
	{ 7, "metrics 5 0" },
	{ 7, "metrics 5 0 0 0" },
	/* mclient FD REQUEST_SO_FAR */
	{ 7, "mclient -1 %" },
	{ 7, "mclient 16777217 %" },
	{ 7, "mclient 5" },
	{ 7, "mclient 5 GET%00" },
	{ 7, "mclient 5 GET%2" },
	{ 7, "mclient 5 % %" },
	/* count NAME VALUE */
	{ 7, "count exits.stopped -1" },
	{ 7, "count exits.stopped 18446744073709551616" },
	{ 7, "count exits.stopped" },
	{ 7, "count exits.stopped 1 2" },
	{ 7, "count Exits 1" },
	{ 7, "count exits-stopped 1" },
	{ 7, "count exits%20stopped 1" },
	{ 7, "count % 1" },
	{ 7, "count aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 1" },
	/* lastreload KIND RESULT TIME_MS FROM_GEN TO_GEN REASON */
	{ 7, "lastreload reload ok 1 2 3" },
	{ 7, "lastreload reload ok 1 2 3 % x" },
	{ 7, "lastreload reload ok -1 2 3 %" },
	{ 7, "lastreload reload ok 1 -2 3 %" },
	{ 7, "lastreload reload ok 1 2 4294967296 %" },
	{ 7, "lastreload reload ok 1 2 3 a%zz" },
	{ 7, "lastreload reload ok 1 2 3 a%00" },
	{ 7, "lastreload Reload ok 1 2 3 %" },
	{ 7, "lastreload reload 0k 1 2 3 %" },
	{ 7, "lastreload reload % 1 2 3 %" },
	{ 7, "lastreload reloadreloadreload ok 1 2 3 %" },
	/* control FD OP_SEQ OP_CURRENT QUEUED, waiter FD AFTER */
	{ 8, "control -2 8 7 1" },
	{ 8, "control 16777217 8 7 1" },
	{ 8, "control 10 -1 7 1" },
	{ 8, "control 10 8 4294967296 1" },
	{ 8, "control 10 8 7 3" },
	{ 8, "control 10 8 7 -1" },
	{ 8, "control 10 8 7" },
	{ 8, "control 10 8 7 1 0" },
	{ 9, "waiter -1 7" },
	{ 9, "waiter 30 -1" },
	{ 9, "waiter 30" },
	{ 9, "waiter 30 7 7" },
	{ 9, "waiter x 7" },
	/* after the end, also behind an empty line */
	{ NBASE, "end" },
	{ NBASE, "\nbogus" },
	{ NBASE, "\nmaster 3 4 2 4 9 %" },
	{ NBASE, "\n\n" },
	{ NBASE, "master 3 4 2 4 9 %" },
	{ NBASE, "bogus" },
};

/* A request so far of at most 8 KiB. */
START_TEST(mclient_bounded)
{
	struct state s;
	char err[256], *text, *line = xmalloc(STATE_MCLIENT_MAX + 32);
	size_t len;

	memcpy(line, "mclient 5 ", 10);
	memset(line + 10, 'a', STATE_MCLIENT_MAX);
	line[10 + STATE_MCLIENT_MAX] = '\0';
	text = base_with(7, line, &len);
	ck_assert_msg(parse_exact(text, len, &s, err, sizeof(err)) == 0, "%s",
	    err);
	ck_assert_uint_eq(s.nmclients, 1);
	ck_assert_uint_eq(strlen(s.mclients[0].in), STATE_MCLIENT_MAX);
	state_free(&s);
	free(text);
	strcat(line, "a");
	text = base_with(7, line, &len);
	expect_parse_fails(text, len, "mclient");
	free(text);
	free(line);
}
END_TEST

START_TEST(corrupt_records)
{
	size_t len;
	char *text;

	text = base_with(corrupt[_i].line, corrupt[_i].text, &len);
	expect_parse_fails(text, len, NULL);
	free(text);
}
END_TEST

/* The error names the record and its line. */
START_TEST(corrupt_messages)
{
	struct state s;
	char err[256], *text;
	size_t len;

	text = base_with(4, "worker 1001 0 3 3 1 0 -1 12 0 0 -1 1500 500 -1",
	    &len);
	ck_assert_int_eq(parse_exact(text, len, &s, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "bad \"worker\" record at line 5");
	free(text);

	text = base_with(NBASE, "pipe 1 1 1", &len);
	ck_assert_int_eq(parse_exact(text, len, &s, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "after its end"));
	free(text);

	text = base_with(7, "x x x x x x x x x x x x x x x x x x x x x", &len);
	ck_assert_int_eq(parse_exact(text, len, &s, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "too many fields"));
	free(text);

	/* a small error buffer is not overrun */
	text = base_with(4, "worker x", &len);
	memset(err, 'Z', sizeof(err));
	ck_assert_int_eq(parse_exact(text, len, &s, err, 8), -1);
	ck_assert_int_eq(strlen(err), 7);
	ck_assert_int_eq(err[8], 'Z');
	free(text);
}
END_TEST

START_TEST(corrupt_nul_bytes)
{
	size_t len;
	char *text;

	text = base_with(NBASE, NULL, &len);
	for (size_t at = 0; at < len; at += 7) {
		char *t = xmalloc(len);

		memcpy(t, text, len);
		t[at] = '\0';
		expect_parse_fails(t, len, "NUL");
		free(t);
	}
	free(text);
}
END_TEST

/* Every single byte of a valid state changed to something else: never a
 * crash, never a leak; where it still parses, it is self-consistent. */
START_TEST(corrupt_every_byte)
{
	static const char repl[] = { ' ', '\n', '%', '-', '9', 'x', '\t' };
	struct state s;
	char err[256], *text;
	size_t len;

	text = base_with(NBASE, NULL, &len);
	for (size_t at = 0; at < len; at++) {
		for (size_t k = 0; k < sizeof(repl); k++) {
			char *t = xmalloc(len);

			memcpy(t, text, len);
			if (t[at] == repl[k]) {
				free(t);
				continue;
			}
			t[at] = repl[k];
			if (parse_exact(t, len, &s, err, sizeof(err)) == 0) {
				for (size_t i = 0; i < s.nws; i++)
					ck_assert((s.ws[i].state ==
					    W_BACKOFF) == (s.ws[i].pid == 0));
				for (size_t i = 0; i < s.nls; i++)
					ck_assert(s.ls[i].addr[0] != '\0');
				state_free(&s);
			} else
				ck_assert_ptr_null(s.ws);
			free(t);
		}
	}
	free(text);
}
END_TEST

/* ---- the configuration, key by key ---- */

static struct config c1, c2;
static struct errlist errs;

static void
cfg_setup(void)
{
	config_init(&c1);
	config_init(&c2);
	memset(&errs, 0, sizeof(errs));
}

static void
cfg_teardown(void)
{
	config_free(&c1);
	config_free(&c2);
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
set(struct config *c, const char *sec, const char *key, const char *value)
{
	ck_assert_msg(config_set(c, sec, key, value, "test", &errs) == 0,
	    "%s %s = %s: %s", sec, key, value, errors());
}

/* dump c1, through the text form of a state, into c2. */
static void
through_state(void)
{
	struct state a, b;
	char err[256], *text;
	size_t len;

	state_init(&a);
	state_config_dump(&c1, &a.cfg);
	ck_assert_uint_gt(a.cfg.n, 0);
	text = state_format(&a, &len);
	ck_assert_msg(parse_exact(text, len, &b, err, sizeof(err)) == 0, "%s",
	    err);
	ck_assert_uint_eq(a.cfg.n, b.cfg.n);
	for (size_t i = 0; i < a.cfg.n; i++)
		ck_assert_str_eq(a.cfg.v[i], b.cfg.v[i]);
	ck_assert_msg(state_config_load(&b.cfg, &c2, &errs) == 0, "%s",
	    errors());
	ck_assert_uint_eq(errs.n, 0);
	free(text);
	state_free(&a);
	state_free(&b);
}

static void
expect_str(const char *a, const char *b)
{
	if (a == NULL)
		ck_assert_ptr_null(b);
	else {
		ck_assert_ptr_nonnull(b);
		ck_assert_str_eq(a, b);
	}
}

static void
expect_same_config(const struct config *a, const struct config *b)
{
	expect_str(a->path, b->path);
	expect_str(a->pid_file, b->pid_file);
	expect_str(a->log_file, b->log_file);
	expect_str(a->master_log_file, b->master_log_file);
	ck_assert_int_eq(a->log_level, b->log_level);
	expect_str(a->control_socket, b->control_socket);
	expect_str(a->metrics, b->metrics);
	ck_assert_int_eq(a->metrics_addr.family, b->metrics_addr.family);
	ck_assert_str_eq(a->metrics_addr.text, b->metrics_addr.text);
	expect_str(a->runtime_dir, b->runtime_dir);
	ck_assert_int_eq(a->subreaper, b->subreaper);
	for (int i = 0; i < HOOK_N; i++) {
		expect_str(a->hook[i].text, b->hook[i].text);
		ck_assert_uint_eq(a->hook[i].argv.n, b->hook[i].argv.n);
		for (size_t j = 0; j < a->hook[i].argv.n; j++)
			ck_assert_str_eq(a->hook[i].argv.v[j],
			    b->hook[i].argv.v[j]);
	}
	ck_assert_int_eq(a->hook_timeout_ms, b->hook_timeout_ms);
	ck_assert_int_eq(a->stop_delay_ms, b->stop_delay_ms);
	ck_assert_uint_eq(a->nlisten, b->nlisten);
	for (size_t i = 0; i < a->nlisten; i++) {
		ck_assert_int_eq(a->listen[i].family, b->listen[i].family);
		ck_assert_str_eq(a->listen[i].text, b->listen[i].text);
		ck_assert_uint_eq(a->listen[i].salen, b->listen[i].salen);
		ck_assert_int_eq(memcmp(&a->listen[i].sa, &b->listen[i].sa,
		    a->listen[i].salen), 0);
	}
	ck_assert_int_eq(a->backlog, b->backlog);
	ck_assert_int_eq(a->socket_mode, b->socket_mode);
	expect_str(a->socket_owner, b->socket_owner);
	ck_assert_uint_eq(a->socket_uid, b->socket_uid);
	ck_assert_uint_eq(a->socket_gid, b->socket_gid);
	expect_str(a->command, b->command);
	ck_assert_uint_eq(a->argv.n, b->argv.n);
	for (size_t i = 0; i < a->argv.n; i++)
		ck_assert_str_eq(a->argv.v[i], b->argv.v[i]);
	ck_assert_uint_eq(a->count, b->count);
	expect_str(a->user, b->user);
	expect_str(a->group, b->group);
	ck_assert_uint_eq(a->uid, b->uid);
	ck_assert_uint_eq(a->gid, b->gid);
	ck_assert_int_eq(a->ngroups, b->ngroups);
	for (int i = 0; i < a->ngroups; i++)
		ck_assert_uint_eq(a->groups[i], b->groups[i]);
	expect_str(a->user_home, b->user_home);
	expect_str(a->working_dir, b->working_dir);
	ck_assert_int_eq(a->umask, b->umask);
	ck_assert_uint_eq(a->env.n, b->env.n);
	for (size_t i = 0; i < a->env.n; i++)
		ck_assert_str_eq(a->env.v[i], b->env.v[i]);
	ck_assert_int_eq(a->clear_env, b->clear_env);
	ck_assert_int_eq(a->stop_signal, b->stop_signal);
	ck_assert_int_eq(a->kill_mode, b->kill_mode);
	ck_assert_int_eq(a->kill_timeout_ms, b->kill_timeout_ms);
	ck_assert_int_eq(a->ready_notify, b->ready_notify);
	ck_assert_int_eq(a->ready_pipe, b->ready_pipe);
	ck_assert_int_eq(a->ready_ms, b->ready_ms);
	ck_assert_int_eq(a->ready_timeout_ms, b->ready_timeout_ms);
	ck_assert_int_eq(a->ready_hold_ms, b->ready_hold_ms);
	ck_assert_int_eq(a->watchdog_ms, b->watchdog_ms);
	ck_assert_int_eq(a->master_death_signal, b->master_death_signal);
	ck_assert_int_eq(a->restart_delay_max_ms, b->restart_delay_max_ms);
	ck_assert_int_eq(a->log_raw, b->log_raw);
}

START_TEST(config_roundtrip_full)
{
	struct strvec d1 = { 0 }, d2 = { 0 };

	c1.path = xstrdup("/etc/fugue/app.conf");
	set(&c1, "master", "pid_file", "/run/app dir/fugue.pid");
	set(&c1, "master", "log_file", "/var/log/app/app.log");
	set(&c1, "master", "master_log_file", "/var/log/app/fugue.log");
	set(&c1, "master", "log_level", "debug");
	set(&c1, "master", "control_socket", "/run/app/fugue.sock");
	set(&c1, "master", "metrics", "localhost:9100");
	set(&c1, "master", "runtime_dir", "/run/app");
	set(&c1, "master", "subreaper", "yes");
	set(&c1, "master", "exec_before_reload", "/usr/local/bin/lb leave "
	    "\"web 1\"");
	set(&c1, "master", "exec_after_reload", "lb join");
	set(&c1, "master", "exec_reload_failed", "'/opt/ops tools/alert' 100%");
	set(&c1, "master", "hook_timeout", "2500ms");
	set(&c1, "listen", "address", "127.0.0.1:8080");
	set(&c1, "listen", "address", "[::1]:9090");
	set(&c1, "listen", "address", ":7070");
	set(&c1, "listen", "address", "unix:/tmp/fugue test/50% off.sock");
	set(&c1, "listen", "backlog", "511");
	set(&c1, "listen", "socket_mode", "0660");
	set(&c1, "listen", "socket_owner", "0:0");
	set(&c1, "worker", "command", "/usr/bin/node server.js --flag "
	    "\"quoted arg\" 'single  quoted' \"a \\\"b\\\" c\" back\\ slash "
	    "\"\" 100%");
	set(&c1, "worker", "count", "4");
	set(&c1, "worker", "user", "root");
	set(&c1, "worker", "group", "0");
	set(&c1, "worker", "working_dir", "/srv/my app");
	set(&c1, "worker", "umask", "0027");
	set(&c1, "worker", "env", "NODE_ENV=production");
	set(&c1, "worker", "env", "GREETING=hello  world; \"quoted\" %41");
	set(&c1, "worker", "env", "EMPTY=");
	set(&c1, "worker", "env", "EQ=a=b");
	set(&c1, "worker", "clear_env", "yes");
	set(&c1, "worker", "stop_signal", "SIGQUIT");
	set(&c1, "worker", "kill_mode", "process");
	set(&c1, "worker", "kill_timeout", "1.5s");
	set(&c1, "worker", "stop_delay", "7s");
	set(&c1, "worker", "ready", "notify");
	set(&c1, "worker", "ready_timeout", "2m");
	set(&c1, "worker", "ready_hold", "3s");
	set(&c1, "worker", "watchdog", "250ms");
	set(&c1, "worker", "master_death_signal", "9");
	set(&c1, "worker", "restart_delay_max", "1h");
	set(&c1, "worker", "log_raw", "yes");
	ck_assert_msg(config_validate(&c1, false, &errs) == 0, "%s", errors());

	through_state();
	expect_same_config(&c1, &c2);

	/* the values as they were meant */
	ck_assert_uint_eq(c2.argv.n, 9);
	ck_assert_str_eq(c2.argv.v[0], "/usr/bin/node");
	ck_assert_str_eq(c2.argv.v[3], "quoted arg");
	ck_assert_str_eq(c2.argv.v[4], "single  quoted");
	ck_assert_str_eq(c2.argv.v[5], "a \"b\" c");
	ck_assert_str_eq(c2.argv.v[6], "back slash");
	ck_assert_str_eq(c2.argv.v[7], "");
	ck_assert_str_eq(c2.argv.v[8], "100%");
	ck_assert_ptr_null(c2.argv.v[9]);
	ck_assert_int_eq(c2.kill_timeout_ms, 1500);
	ck_assert_int_eq(c2.ready_timeout_ms, 120000);
	ck_assert_int_eq(c2.ready_hold_ms, 3000);
	ck_assert_int_eq(c2.watchdog_ms, 250);
	ck_assert_int_eq(c2.restart_delay_max_ms, 3600000);
	ck_assert_int_eq(c2.stop_signal, SIGQUIT);
	ck_assert_int_eq(c2.kill_mode, KILL_PROCESS);
	ck_assert_int_eq(c2.master_death_signal, SIGKILL);
	ck_assert_int_eq(c2.umask, 027);
	ck_assert_int_eq(c2.socket_mode, 0660);
	ck_assert(c2.ready_notify);
	ck_assert(c2.clear_env);
	ck_assert(c2.log_raw);
	ck_assert_uint_eq(c2.uid, 0);
	ck_assert_uint_eq(c2.gid, 0);
	ck_assert_uint_eq(c2.nlisten, 4);
	ck_assert_int_eq(c2.listen[1].family, AF_INET6);
	ck_assert_int_eq(c2.listen[3].family, AF_UNIX);
	ck_assert_str_eq(c2.listen[3].text,
	    "unix:/tmp/fugue test/50% off.sock");
	ck_assert_str_eq(c2.env.v[1], "GREETING=hello  world; \"quoted\" %41");
	ck_assert_str_eq(c2.path, "/etc/fugue/app.conf");
	ck_assert_str_eq(c2.hook[HOOK_BEFORE].argv.v[2], "web 1");
	ck_assert_str_eq(c2.hook[HOOK_FAILED].argv.v[0], "/opt/ops tools/alert");
	ck_assert_int_eq(c2.hook_timeout_ms, 2500);
	ck_assert_int_eq(c2.stop_delay_ms, 7000);
	ck_assert_str_eq(c2.metrics, "127.0.0.1:9100");

	/* dumped again: the same lines */
	state_config_dump(&c1, &d1);
	state_config_dump(&c2, &d2);
	ck_assert_uint_eq(d1.n, d2.n);
	for (size_t i = 0; i < d1.n; i++)
		ck_assert_str_eq(d1.v[i], d2.v[i]);
	strvec_clear(&d1);
	strvec_clear(&d2);
}
END_TEST

/* The defaults survive, and "ready = <duration>" (also 0). */
START_TEST(config_roundtrip_defaults)
{
	set(&c1, "listen", "address", "127.0.0.1:8080");
	set(&c1, "worker", "command", "/bin/true");
	ck_assert_int_eq(config_validate(&c1, false, &errs), 0);
	through_state();
	expect_same_config(&c1, &c2);
	ck_assert_int_eq(c2.socket_mode, -1);
	ck_assert_int_eq(c2.umask, -1);
	ck_assert_ptr_null(c2.user);
	ck_assert_ptr_null(c2.path);
	ck_assert_int_eq(c2.ready_ms, 1000);
	ck_assert(!c2.ready_notify);
	config_free(&c1);
	config_free(&c2);
	config_init(&c1);
	config_init(&c2);

	set(&c1, "worker", "count", "0");
	set(&c1, "worker", "command", "sleep 1");
	set(&c1, "worker", "ready", "0");
	set(&c1, "worker", "kill_timeout", "0");
	set(&c1, "worker", "restart_delay_max", "100ms");
	set(&c1, "worker", "ready_timeout", "1ms");
	set(&c1, "master", "log_level", "error");
	set(&c1, "master", "subreaper", "no");
	ck_assert_int_eq(config_validate(&c1, false, &errs), 0);
	through_state();
	expect_same_config(&c1, &c2);
	ck_assert_int_eq(c2.ready_ms, 0);
	ck_assert_int_eq(c2.ready_timeout_ms, 1);
	ck_assert_uint_eq(c2.count, 0);
	ck_assert_uint_eq(c2.nlisten, 0);
}
END_TEST

/* Any signal the configuration accepts survives an upgrade, also one that
 * has no name (a real-time signal given by number). */
START_TEST(config_roundtrip_signal_numbers)
{
	static const char *const sigs[] = { "1", "HUP", "sigusr1", "WINCH",
	    "31", "34", "40", "64" };
	int sig;

	ck_assert_int_eq(parse_signal(sigs[_i], &sig), 0);
	set(&c1, "listen", "address", "127.0.0.1:8080");
	set(&c1, "worker", "command", "/bin/true");
	set(&c1, "worker", "stop_signal", sigs[_i]);
	set(&c1, "worker", "master_death_signal", sigs[_i]);
	ck_assert_int_eq(config_validate(&c1, false, &errs), 0);
	through_state();
	ck_assert_int_eq(c2.stop_signal, sig);
	ck_assert_int_eq(c2.master_death_signal, sig);
}
END_TEST

/* kill_mode crosses an upgrade; at its default it is left out of the
 * state, which a fugue that predates the key can then still read. */
START_TEST(config_kill_mode)
{
	struct strvec d = { 0 };

	set(&c1, "listen", "address", "127.0.0.1:8080");
	set(&c1, "worker", "command", "/bin/true");
	ck_assert_int_eq(config_validate(&c1, false, &errs), 0);
	state_config_dump(&c1, &d);
	for (size_t i = 0; i < d.n; i++)
		ck_assert_msg(strstr(d.v[i], "kill_mode") == NULL, "%s",
		    d.v[i]);
	strvec_clear(&d);
	set(&c1, "worker", "kill_mode", "group");
	through_state();
	ck_assert_int_eq(c2.kill_mode, KILL_GROUP);
}
END_TEST

/* A bad line in the state is an error, not a crash. */
START_TEST(config_load_bad)
{
	struct strvec lines = { 0 };

	strvec_push(&lines, "worker\tcommand\t/bin/true");
	strvec_push(&lines, "listen\taddress\t127.0.0.1:8080");
	strvec_push(&lines, "worker\tcount\tfour");
	ck_assert_int_eq(state_config_load(&lines, &c2, &errs), EX_CONFIG_);
	ck_assert_uint_ge(errs.n, 1);
	ck_assert_ptr_nonnull(strstr(errs.v[0], "count"));
	strvec_clear(&lines);
	errlist_free(&errs);

	strvec_push(&lines, "worker command /bin/true");
	ck_assert_int_eq(state_config_load(&lines, &c2, &errs), EX_CONFIG_);
	ck_assert_uint_ge(errs.n, 1);
	strvec_clear(&lines);
	errlist_free(&errs);

	strvec_push(&lines, "nosuch\tkey\tvalue");
	ck_assert_int_eq(state_config_load(&lines, &c2, &errs), EX_CONFIG_);
	strvec_clear(&lines);
	errlist_free(&errs);

	/* cross-key checks run too: no command */
	strvec_push(&lines, "listen\taddress\t127.0.0.1:8080");
	ck_assert_int_eq(state_config_load(&lines, &c2, &errs), EX_CONFIG_);
	strvec_clear(&lines);
}
END_TEST

static Suite *
state_suite(void)
{
	Suite *s = suite_create("state");
	TCase *tc;

	tc = tcase_create("format");
	tcase_add_test(tc, roundtrip_full);
	tcase_add_test(tc, roundtrip_minimal);
	tcase_add_test(tc, roundtrip_big_inode);
	tcase_add_test(tc, encoding);
	tcase_add_test(tc, lowercase_escapes);
	suite_add_tcase(s, tc);

	tc = tcase_create("refused");
	tcase_add_test(tc, other_version);
	tcase_add_test(tc, not_a_state);
	tcase_add_test(tc, v2_records_not_in_v1);
	tcase_add_test(tc, mclient_bounded);
	tcase_add_test(tc, truncated_every_prefix);
	tcase_add_test(tc, truncated_messages);
	tcase_add_test(tc, corrupt_base_is_valid);
	tcase_add_loop_test(tc, corrupt_records, 0,
	    sizeof(corrupt) / sizeof(corrupt[0]));
	tcase_add_test(tc, corrupt_messages);
	tcase_add_test(tc, corrupt_nul_bytes);
	tcase_add_test(tc, corrupt_every_byte);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_checked_fixture(tc, cfg_setup, cfg_teardown);
	tcase_add_test(tc, config_roundtrip_full);
	tcase_add_test(tc, config_roundtrip_defaults);
	tcase_add_loop_test(tc, config_roundtrip_signal_numbers, 0, 8);
	tcase_add_test(tc, config_kill_mode);
	tcase_add_test(tc, config_load_bad);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(state_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
