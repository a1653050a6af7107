/* Unit tests for logsink.c: a slow reader never blocks the writer, lines
 * keep their order, a full backlog or a failed write drops and counts. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logging.h"
#include "util.h"

static struct ev_loop *loop;
static struct logsink sink;
static int rd = -1, wr = -1;
static int devnull = -1;

static void
setup(void)
{
	int p[2];

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	rd = p[0];
	wr = p[1];
	fcntl(rd, F_SETFL, O_NONBLOCK);
	loop = ev_loop_new(EVFLAG_AUTO);
	memset(&sink, 0, sizeof(sink));
	/* Drop reports of a test's own sink, left at its end: not here. */
	log_set_fd(devnull);
}

static void
teardown(void)
{
	log_set_sink(NULL);
	logsink_end(&sink);
	outbuf_free(&sink.out);
	if (rd != -1)
		close(rd);
	if (wr != -1)
		close(wr);
	rd = wr = -1;
	ev_loop_destroy(loop);
}

/* n numbered lines of 100 bytes, from first. */
static void
put_lines(unsigned first, unsigned n)
{
	char line[128];

	for (unsigned i = first; i < first + n; i++) {
		int len = snprintf(line, sizeof(line), "line %08u %0*d\n", i,
		    85, 0);

		ck_assert_int_eq(len, 100);
		logsink_put(&sink, line, (size_t)len, true);
	}
}

/* Read what is in the pipe now, running the loop so the backlog goes on
 * being written, until nothing waits. */
static struct outbuf
drain(void)
{
	struct outbuf got = { 0 };
	char buf[65536];
	ssize_t n;

	for (int spins = 0; spins < 100000; spins++) {
		while ((n = read(rd, buf, sizeof(buf))) > 0)
			outbuf_add(&got, buf, (size_t)n);
		if (sink.pend.len == sink.pend_off)
			break;
		ev_run(loop, EVRUN_NOWAIT);
	}
	while ((n = read(rd, buf, sizeof(buf))) > 0)
		outbuf_add(&got, buf, (size_t)n);
	return got;
}

/* got holds whole numbered lines in order, the first being first; their
 * count. */
static unsigned
check_in_order(const struct outbuf *got, unsigned first)
{
	unsigned want = first, lines = 0;
	const char *p = got->p, *end = got->p + got->len;

	while (p < end && strncmp(p, "line ", 5) == 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		ck_assert_ptr_nonnull(nl);
		ck_assert_int_eq(nl - p, 99);
		ck_assert_uint_eq((unsigned)strtoul(p + 5, NULL, 10), want);
		want++;
		lines++;
		p = nl + 1;
	}
	return lines;
}

START_TEST(slow_reader_does_not_block)
{
	struct outbuf got;

	logsink_set_fd(&sink, wr, false);
	logsink_start(&sink, loop);
	/* 2 MB into a 64 KiB pipe nobody reads yet: it returns at once. */
	put_lines(0, 20000);
	ck_assert_uint_gt(sink.pend.len - sink.pend_off, 0);
	ck_assert_uint_eq(sink.dropped, 0);
	ck_assert(ev_is_active(&sink.wio));
	got = drain();
	ck_assert_uint_eq(check_in_order(&got, 0), 20000);
	ck_assert_uint_eq(got.len, 20000 * 100);
	ck_assert(!ev_is_active(&sink.wio));
	outbuf_free(&got);
}
END_TEST

START_TEST(full_backlog_drops_and_reports)
{
	unsigned total = (LOGSINK_BACKLOG_MAX / 100) + 20000;
	unsigned long dropped;
	struct outbuf got;
	unsigned written;
	char *report;

	logsink_set_fd(&sink, wr, false);
	logsink_start(&sink, loop);
	log_set_sink(&sink);
	put_lines(0, total);
	ck_assert_uint_le(sink.pend.len - sink.pend_off, LOGSINK_BACKLOG_MAX);
	dropped = sink.dropped;
	ck_assert_uint_gt(dropped, 0);
	/* The backlog goes out; the next success says how many were lost. */
	got = drain();
	written = check_in_order(&got, 0);
	ck_assert_uint_eq(written + dropped, total);
	ck_assert_uint_eq(sink.dropped, 0);
	outbuf_add(&got, "", 1);
	report = strstr(got.p, " lines of worker output dropped: its reader "
	    "was too slow");
	ck_assert_ptr_nonnull(report);
	while (report > got.p && report[-1] != ' ')
		report--;
	ck_assert_uint_eq(strtoul(report, NULL, 10), dropped);
	outbuf_free(&got);
}
END_TEST

START_TEST(failed_write_counts_worker_lines)
{
	int full = open("/dev/full", O_WRONLY | O_CLOEXEC);

	ck_assert_int_ne(full, -1);
	logsink_set_fd(&sink, full, false);
	logsink_start(&sink, loop);
	put_lines(0, 10);
	ck_assert_uint_eq(sink.dropped, 10);
	ck_assert_int_eq(sink.drop_errno, ENOSPC);
	/* A master line is not worker output. */
	logsink_put(&sink, "master\n", 7, false);
	ck_assert_uint_eq(sink.dropped, 10);
	ck_assert_uint_eq(sink.pend.len, 0);
	logsink_end(&sink);
	close(full);
}
END_TEST

START_TEST(shared_fd_left_blocking)
{
	/* Not ours (fugue's stderr): written through a reopen of its own. */
	logsink_set_fd(&sink, wr, true);
	logsink_start(&sink, loop);
	ck_assert(sink.own_fd);
	ck_assert_int_ne(sink.fd, wr);
	ck_assert_int_eq(fcntl(wr, F_GETFL) & O_NONBLOCK, 0);
	ck_assert_int_ne(fcntl(sink.fd, F_GETFL) & O_NONBLOCK, 0);
	ck_assert_int_ne(fcntl(sink.fd, F_GETFD) & FD_CLOEXEC, 0);
	put_lines(0, 2000);	/* more than the pipe holds: no block */
	ck_assert_uint_gt(sink.pend.len - sink.pend_off, 0);
	struct outbuf got = drain();
	ck_assert_uint_eq(check_in_order(&got, 0), 2000);
	outbuf_free(&got);
	logsink_end(&sink);
	ck_assert(!sink.own_fd);
	ck_assert_int_eq(sink.fd, wr);
}
END_TEST

START_TEST(settle_is_bounded)
{
	double t0;
	unsigned long waiting;

	logsink_set_fd(&sink, wr, false);
	logsink_start(&sink, loop);
	put_lines(0, 2000);
	waiting = (sink.pend.len - sink.pend_off) / 100;
	ck_assert_uint_gt(waiting, 0);
	t0 = mono_now();
	logsink_settle(&sink, 100);	/* nobody reads */
	ck_assert(mono_now() - t0 < 1.0);
	ck_assert_uint_eq(sink.pend.len - sink.pend_off, 0);
	ck_assert_uint_eq(sink.dropped, waiting);
}
END_TEST

START_TEST(before_the_loop_writes_through)
{
	char buf[16];

	/* No loop yet (start-up): plain writes, nothing held back. */
	logsink_set_fd(&sink, wr, false);
	logsink_put(&sink, "early\n", 6, true);
	ck_assert_uint_eq(sink.pend.len, 0);
	ck_assert_int_eq(read(rd, buf, sizeof(buf)), 6);
	ck_assert_int_eq(memcmp(buf, "early\n", 6), 0);
}
END_TEST

static Suite *
logsink_suite(void)
{
	Suite *s = suite_create("logsink");
	TCase *tc = tcase_create("sink");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, slow_reader_does_not_block);
	tcase_add_test(tc, full_backlog_drops_and_reports);
	tcase_add_test(tc, failed_write_counts_worker_lines);
	tcase_add_test(tc, shared_fd_left_blocking);
	tcase_add_test(tc, settle_is_bounded);
	tcase_add_test(tc, before_the_loop_writes_through);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(logsink_suite());
	int failed;

	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
