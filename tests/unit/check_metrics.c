/* Unit tests of the metrics endpoint's pure parts: the HTTP request head
 * (src/metrics.c), /proc's text (src/procstat.c) and the Prometheus text
 * (src/promtext.c). */
#include <sys/wait.h>

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "procstat.h"
#include "promtext.h"

/* ---- the request head ---- */

static int
parse(const char *text, struct metrics_request *r)
{
	size_t n = strlen(text);
	char *copy = xmalloc(n ? n : 1);	/* exact size: overreads show */
	int ret;

	memcpy(copy, text, n);
	ret = metrics_parse(copy, n, r);
	free(copy);
	return ret;
}

static const struct {
	const char	*head;
	int		 status;
	enum metrics_page page;
	bool		 is_head;
} requests[] = {
	{ "GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", 200,
	    MP_METRICS, false },
	{ "GET /metrics HTTP/1.0\n\n", 200, MP_METRICS, false },
	{ "GET /metrics?name[]=x HTTP/1.1\r\n\r\n", 200, MP_METRICS, false },
	{ "GET /readyz HTTP/1.1\r\n\r\n", 200, MP_READYZ, false },
	{ "GET /livez#x HTTP/1.1\r\n\r\n", 200, MP_LIVEZ, false },
	{ "HEAD /readyz HTTP/1.1\r\n\r\n", 200, MP_READYZ, true },
	{ "GET / HTTP/1.1\r\n\r\n", 404, MP_NONE, false },
	{ "GET /metrics/ HTTP/1.1\r\n\r\n", 404, MP_NONE, false },
	{ "GET /METRICS HTTP/1.1\r\n\r\n", 404, MP_NONE, false },
	{ "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, MP_NONE,
	    false },
	{ "get /metrics HTTP/1.1\r\n\r\n", 405, MP_NONE, false },
	{ "GET /metrics HTTP/2.0\r\n\r\n", 505, MP_NONE, false },
	{ "GET /metrics HTTP/1.10\r\n\r\n", 505, MP_NONE, false },
	{ "GET /metrics\r\n\r\n", 400, MP_NONE, false },
	{ "GET  /metrics HTTP/1.1\r\n\r\n", 400, MP_NONE, false },
	{ "GET /metrics  HTTP/1.1\r\n\r\n", 400, MP_NONE, false },
	{ "GET /metrics HTTP/1.1 \r\n\r\n", 400, MP_NONE, false },
	{ " GET /metrics HTTP/1.1\r\n\r\n", 400, MP_NONE, false },
	{ "GET metrics HTTP/1.1\r\n\r\n", 400, MP_NONE, false },
	{ "GET http://h/metrics HTTP/1.1\r\n\r\n", 400, MP_NONE, false },
	{ "GET /metrics FTP/1.1\r\n\r\n", 400, MP_NONE, false },
	{ "\r\n\r\n", 400, MP_NONE, false },
	{ "\n\n", 400, MP_NONE, false },
};

START_TEST(request_heads)
{
	struct metrics_request r;

	ck_assert_int_eq(parse(requests[_i].head, &r), 1);
	ck_assert_msg(r.status == requests[_i].status, "%s: %d",
	    requests[_i].head, r.status);
	ck_assert_int_eq(r.page, requests[_i].page);
	if (r.status == 200)
		ck_assert_int_eq(r.head, requests[_i].is_head);
}
END_TEST

/* Every prefix of a request is not whole yet; a NUL byte is bad. */
START_TEST(request_partial)
{
	const char *full = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
	struct metrics_request r;

	for (size_t n = 0; n < strlen(full) - 1; n++) {
		char *copy = xmalloc(n ? n : 1);

		memcpy(copy, full, n);
		ck_assert_msg(metrics_parse(copy, n, &r) == 0, "%zu", n);
		free(copy);
	}
	ck_assert_int_eq(metrics_parse("GET /\0 HTTP/1.1\r\n\r\n", 19, &r),
	    1);
	ck_assert_int_eq(r.status, 400);
}
END_TEST

/* A head that fills METRICS_HEAD_MAX without its end: 431. */
START_TEST(request_too_long)
{
	struct metrics_request r;
	char *buf = xmalloc(METRICS_HEAD_MAX);

	memset(buf, 'a', METRICS_HEAD_MAX);
	memcpy(buf, "GET /metrics HTTP/1.1\r\nX: ", 26);
	ck_assert_int_eq(metrics_parse(buf, METRICS_HEAD_MAX - 1, &r), 0);
	ck_assert_int_eq(metrics_parse(buf, METRICS_HEAD_MAX, &r), 1);
	ck_assert_int_eq(r.status, 431);
	free(buf);
}
END_TEST

/* ---- /proc ---- */

START_TEST(proc_stat_text)
{
	/* COMM may hold spaces and parentheses: the last ')' ends it. */
	static const char line[] = "4242 (my (odd) server) S 1 4242 4242 0 -1 "
	    "4194560 1029 0 0 0 1234 567 0 0 20 0 1 0 12345 1234567 321 "
	    "18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
	unsigned long long t, st;

	ck_assert_int_eq(procstat_parse_stat(line, strlen(line), &t, &st), 0);
	ck_assert_uint_eq(t, 1234 + 567);
	ck_assert_uint_eq(st, 12345);
	ck_assert_int_eq(procstat_parse_stat("1 (x) S 1 2 3", 13, &t, &st),
	    -1);
	ck_assert_int_eq(procstat_parse_stat("no parenthesis", 14, &t, &st),
	    -1);
	ck_assert_int_eq(procstat_parse_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 "
	    "x 5 0", 33, &t, &st), -1);
	/* cut before the start time */
	ck_assert_int_eq(procstat_parse_stat(line, 70, &t, &st), -1);
	ck_assert_int_eq(procstat_parse_stat("", 0, &t, &st), -1);
}
END_TEST

START_TEST(proc_pss_text)
{
	static const char rollup[] =
	    "55d0c0000000-7ffc0000000 ---p 00000000 00:00 0    [rollup]\n"
	    "Rss:                1284 kB\n"
	    "Pss_Anon:             80 kB\n"
	    "Pss:                 212 kB\n"
	    "Pss_File:            132 kB\n";
	unsigned long long kib;

	ck_assert_int_eq(procstat_parse_pss(rollup, strlen(rollup), &kib), 0);
	ck_assert_uint_eq(kib, 212);
	ck_assert_int_eq(procstat_parse_pss("Rss: 1 kB\n", 10, &kib), -1);
	ck_assert_int_eq(procstat_parse_pss("Pss: x kB\n", 10, &kib), -1);
	ck_assert_int_eq(procstat_parse_pss("Pss: 12", 7, &kib), -1);
	/* cut short inside the line: not read past n */
	ck_assert_int_eq(procstat_parse_pss("Pss: 12 kB", 8, &kib), -1);
}
END_TEST

START_TEST(proc_self)
{
	struct procstat ps;

	procstat_read(getpid(), &ps);
	ck_assert(ps.cpu_ok);
	ck_assert(ps.cpu_seconds >= 0);
	if (access("/proc/self/smaps_rollup", R_OK) == 0) {
		ck_assert(ps.pss_ok);
		ck_assert_uint_gt(ps.pss_bytes, 0);
	}
	procstat_read(0, &ps);		/* no such process */
	ck_assert(!ps.cpu_ok && !ps.pss_ok);
}
END_TEST

/* The cache: entries follow the pids given, keep their stat file open
 * while the process lives, and forget a PSS when the pid names another
 * process. */
START_TEST(proc_cache)
{
	struct proccache c = { 0 };
	struct procent *e;
	pid_t kids[3], pids[3];
	int status;

	for (int i = 0; i < 3; i++) {
		if ((kids[i] = fork()) == 0) {
			pause();
			_exit(0);
		}
		ck_assert_int_gt(kids[i], 0);
	}
	memcpy(pids, kids, sizeof(pids));
	for (int i = 0; i < 2; i++)		/* sorted */
		for (int j = i + 1; j < 3; j++)
			if (pids[j] < pids[i]) {
				pid_t x = pids[i];

				pids[i] = pids[j];
				pids[j] = x;
			}
	proccache_sync(&c, pids, 3);
	ck_assert_uint_eq(c.n, 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_ptr_nonnull(e = proccache_find(&c, kids[i]));
		ck_assert_int_eq(e->pid, kids[i]);
		procent_read_cpu(&c, e);
		ck_assert(e->st.cpu_ok);
		ck_assert_int_ge(e->statfd, 0);
		procent_read_pss(e, 1.0);
		ck_assert_double_eq(e->pss_at, 1.0);
		if (access("/proc/self/smaps_rollup", R_OK) == 0)
			ck_assert(e->st.pss_ok && e->st.pss_bytes > 0);
	}
	ck_assert_uint_eq(c.nfds, 3);
	ck_assert_ptr_null(proccache_find(&c, 1));
	/* Read again through the open file: the same process. */
	e = proccache_find(&c, pids[0]);
	procent_read_cpu(&c, e);
	ck_assert(e->st.cpu_ok);
	ck_assert_double_eq(e->pss_at, 1.0);
	/* Another start time: another process, its PSS unknown. */
	e->start++;
	procent_read_cpu(&c, e);
	ck_assert(e->st.cpu_ok && !e->st.pss_ok);
	ck_assert_double_eq(e->pss_at, 0);
	/* Gone and reaped: no figures, its file closed. */
	e = proccache_find(&c, pids[1]);
	kill(pids[1], SIGKILL);
	ck_assert_int_eq(waitpid(pids[1], &status, 0), pids[1]);
	procent_read_cpu(&c, e);
	ck_assert(!e->st.cpu_ok);
	ck_assert_int_eq(e->statfd, -1);
	ck_assert_uint_eq(c.nfds, 2);
	/* Synced to one of them: the others are forgotten, it is kept. */
	e = proccache_find(&c, pids[2]);
	e->pss_at = 7.0;
	proccache_sync(&c, &pids[2], 1);
	ck_assert_uint_eq(c.n, 1);
	ck_assert_uint_eq(c.nfds, 1);
	ck_assert_double_eq(proccache_find(&c, pids[2])->pss_at, 7.0);
	ck_assert_ptr_null(proccache_find(&c, pids[0]));
	proccache_sync(&c, NULL, 0);
	ck_assert_uint_eq(c.nfds, 0);
	proccache_free(&c);
	for (int i = 0; i < 3; i++)
		if (kids[i] != pids[1]) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], &status, 0);
		}
}
END_TEST

/* ---- the Prometheus text ---- */

static char *
label(const char *s)
{
	struct outbuf o = { 0 };

	prom_label_value(&o, s);
	outbuf_add(&o, "", 1);
	return o.p;
}

START_TEST(label_values)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "" },
		{ "plain", "plain" },
		{ "a\"b\\c\nd", "a\\\"b\\\\c\\nd" },
		{ "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", "h\xc3\xa9llo "
		    "\xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "bad \xff byte", "bad ? byte" },
		{ "cut \xc3", "cut ?" },
		{ "overlong \xc0\xaf", "overlong ??" },
		{ "surrogate \xed\xa0\x80", "surrogate ???" },
		{ "too big \xf4\x90\x80\x80", "too big ????" },
		{ "tab\tcr\r", "tab\tcr\r" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = label(cases[i].in);

		ck_assert_msg(strcmp(got, cases[i].out) == 0, "%zu: \"%s\"", i,
		    got);
		free(got);
	}
}
END_TEST

static char *
format(const struct prom_snapshot *s)
{
	struct outbuf o = { 0 };

	prom_format(s, &o);
	outbuf_add(&o, "", 1);
	return o.p;
}

static struct prom_snapshot *
sample(void)
{
	struct prom_snapshot *s = xcalloc(1, sizeof(*s));

	s->version = "1.2.3";
	s->pid = getpid();
	s->ready = true;
	s->serving_gen = 4;
	s->wanted = 2;
	s->by_state[W_READY] = 2;
	s->by_state[W_BACKOFF] = 1;
	s->counts.exits[WX_SIGNALED] = 3;
	s->counts.reloads[RK_UPGRADE][RR_ROLLED_BACK] = 1;
	s->counts.last.set = true;
	s->counts.last.kind = RK_UPGRADE;
	s->counts.last.result = RR_ROLLED_BACK;
	s->counts.last.time = 1796291708.5;
	s->counts.last.from_gen = 4;
	s->counts.last.to_gen = 5;
	snprintf(s->counts.last.reason, sizeof(s->counts.last.reason),
	    "worker 0 said \"no\"\n");
	s->log_dropped = 17;
	s->nws = 3;
	s->ws = xcalloc(3, sizeof(*s->ws));
	s->ws[0] = (struct prom_worker){ .pid = 1234, .slot = 0,
	    .gen = 4, .uptime = 12.5, .restarts = 1, .proc = { .cpu_ok = true,
	    .pss_ok = true, .cpu_seconds = 1.25, .pss_bytes = 4096 } };
	s->ws[1] = (struct prom_worker){ .pid = 1235, .slot = 1,
	    .gen = 4, .uptime = 3, .proc = { .cpu_ok = true,
	    .cpu_seconds = 0 } };
	s->self = (struct procstat){ .cpu_ok = true, .pss_ok = true,
	    .cpu_seconds = 0.5, .pss_bytes = 1 << 20 };
	s->ws[2] = (struct prom_worker){ .pid = 0, .slot = 2, .gen = 4,
	    .restarts = 6 };
	return s;
}

static void
expect_line(const char *text, const char *line)
{
	char *want = xprintf("\n%s\n", line);

	ck_assert_msg(strstr(text, want) != NULL, "no line \"%s\" in:\n%s",
	    line, text);
	free(want);
}

START_TEST(format_samples)
{
	struct prom_snapshot *s = sample();
	char *text;

	text = format(s);
	ck_assert_msg(strncmp(text, "# HELP fugue_build_info ", 24) == 0,
	    "%s", text);
	expect_line(text, "fugue_build_info{version=\"1.2.3\"} 1");
	expect_line(text, "fugue_ready 1");
	expect_line(text, "fugue_serving_generation 4");
	expect_line(text, "fugue_workers_wanted 2");
	expect_line(text, "fugue_workers{state=\"ready\"} 2");
	expect_line(text, "fugue_workers{state=\"backoff\"} 1");
	expect_line(text, "fugue_workers{state=\"starting\"} 0");
	expect_line(text, "# TYPE fugue_worker_uptime_seconds gauge");
	expect_line(text, "fugue_worker_uptime_seconds{slot=\"0\","
	    "pid=\"1234\",generation=\"4\"} 12.500");
	expect_line(text, "fugue_worker_cpu_seconds_total{slot=\"0\","
	    "pid=\"1234\",generation=\"4\"} 1.25");
	expect_line(text, "fugue_worker_memory_pss_bytes{slot=\"0\","
	    "pid=\"1234\",generation=\"4\"} 4096");
	expect_line(text, "fugue_worker_cpu_seconds_total{slot=\"1\","
	    "pid=\"1235\",generation=\"4\"} 0.00");
	/* no PSS read for it: no sample */
	ck_assert(strstr(text, "fugue_worker_memory_pss_bytes{slot=\"1\"") ==
	    NULL);
	expect_line(text, "fugue_master_memory_pss_bytes 1048576");
	expect_line(text, "fugue_master_cpu_seconds_total 0.50");
	expect_line(text, "fugue_worker_restarts_total{slot=\"2\",pid=\"\","
	    "generation=\"4\"} 6");
	ck_assert(strstr(text, "fugue_worker_uptime_seconds{slot=\"2\"") ==
	    NULL);
	expect_line(text, "fugue_worker_exits_total{reason=\"signaled\"} 3");
	expect_line(text, "fugue_worker_exits_total{reason=\"stopped\"} 0");
	expect_line(text, "fugue_reloads_total{kind=\"upgrade\","
	    "result=\"rolled_back\"} 1");
	expect_line(text, "fugue_reloads_total{kind=\"reload\",result=\"ok\"} "
	    "0");
	expect_line(text, "fugue_last_reload_timestamp_seconds 1796291708.500");
	expect_line(text, "fugue_last_reload_success 0");
	expect_line(text, "fugue_last_reload_info{kind=\"upgrade\","
	    "result=\"rolled_back\",from_generation=\"4\",to_generation=\"5\","
	    "reason=\"worker 0 said \\\"no\\\"\\n\"} 1");
	expect_line(text, "fugue_log_lines_dropped_total 17");
	expect_line(text, "# TYPE fugue_master_cpu_seconds_total counter");
	ck_assert(text[strlen(text) - 1] == '\n');
	free(text);
	prom_snapshot_free(s);
}
END_TEST

/* Every family once, HELP then TYPE then its samples; every name fugue_,
 * counters and only they end in _total. */
START_TEST(format_families)
{
	struct prom_snapshot *s = sample();
	char *text, *line, *save = NULL, fam[128] = "", *seen;
	bool counter = false;

	text = format(s);
	seen = xstrdup(" ");
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL,
	    "\n", &save)) {
		char name[128], type[32];

		if (sscanf(line, "# HELP %127s", name) == 1) {
			char *key = xprintf(" %s ", name);

			ck_assert_msg(strstr(seen, key) == NULL, "%s twice",
			    name);
			free(key);
			key = seen;
			seen = xprintf("%s%s ", seen, name);
			free(key);
			ck_assert_msg(strncmp(name, "fugue_", 6) == 0, "%s",
			    name);
			snprintf(fam, sizeof(fam), "%s", name);
			continue;
		}
		if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
			ck_assert_str_eq(name, fam);
			counter = strcmp(type, "counter") == 0;
			ck_assert(counter || strcmp(type, "gauge") == 0);
			ck_assert_int_eq(counter, strlen(name) > 6 &&
			    strcmp(name + strlen(name) - 6, "_total") == 0);
			continue;
		}
		ck_assert_msg(strncmp(line, fam, strlen(fam)) == 0 &&
		    (line[strlen(fam)] == ' ' || line[strlen(fam)] == '{'),
		    "\"%s\" outside its family %s", line, fam);
	}
	free(seen);
	free(text);
	prom_snapshot_free(s);
}
END_TEST

/* Before any reload: no last reload's samples. */
START_TEST(format_no_reload)
{
	struct prom_snapshot *s = sample();
	char *text;

	s->counts.last.set = false;
	s->ready = false;
	text = format(s);
	ck_assert(strstr(text, "fugue_last_reload") == NULL);
	expect_line(text, "fugue_ready 0");
	free(text);
	prom_snapshot_free(s);
}
END_TEST

START_TEST(reload_names)
{
	ck_assert_str_eq(reload_kind_name(RK_RELOAD), "reload");
	ck_assert_str_eq(reload_kind_name(RK_UPGRADE), "upgrade");
	ck_assert_str_eq(reload_result_name(RR_OK), "ok");
	ck_assert_str_eq(reload_result_name(RR_REFUSED), "refused");
	ck_assert_str_eq(reload_result_name(RR_ROLLED_BACK), "rolled_back");
	ck_assert_int_eq(reload_kind_parse("upgrade"), RK_UPGRADE);
	ck_assert_int_eq(reload_result_parse("rolled_back"), RR_ROLLED_BACK);
	ck_assert_int_eq(reload_kind_parse("restart"), -1);
	ck_assert_int_eq(reload_result_parse(""), -1);
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc;

	tc = tcase_create("http");
	tcase_add_loop_test(tc, request_heads, 0,
	    sizeof(requests) / sizeof(requests[0]));
	tcase_add_test(tc, request_partial);
	tcase_add_test(tc, request_too_long);
	suite_add_tcase(s, tc);

	tc = tcase_create("proc");
	tcase_add_test(tc, proc_stat_text);
	tcase_add_test(tc, proc_pss_text);
	tcase_add_test(tc, proc_self);
	tcase_add_test(tc, proc_cache);
	suite_add_tcase(s, tc);

	tc = tcase_create("prometheus");
	tcase_add_test(tc, label_values);
	tcase_add_test(tc, format_samples);
	tcase_add_test(tc, format_families);
	tcase_add_test(tc, format_no_reload);
	tcase_add_test(tc, reload_names);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
