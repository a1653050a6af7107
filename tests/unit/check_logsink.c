/* Unit tests for logsink.c: a slow reader never blocks the writer, lines
 * keep their order, a full backlog or a failed write drops and counts; a
 * full disk leaves whole lines only; the backlog crosses an upgrade's exec
 * exactly (logsink_export, logsink_import). */
#include <sys/mount.h>
#include <sys/stat.h>

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
	logsink_init(&sink, log_report_drops);
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
drain_sink(struct logsink *s)
{
	struct outbuf got = { 0 };
	char buf[65536];
	ssize_t n;

	for (int spins = 0; spins < 100000; spins++) {
		while ((n = read(rd, buf, sizeof(buf))) > 0)
			outbuf_add(&got, buf, (size_t)n);
		if (s->pend.len == s->pend_off)
			break;
		ev_run(loop, EVRUN_NOWAIT);
	}
	while ((n = read(rd, buf, sizeof(buf))) > 0)
		outbuf_add(&got, buf, (size_t)n);
	return got;
}

static struct outbuf
drain(void)
{
	return drain_sink(&sink);
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

START_TEST(own_lines_past_a_full_backlog)
{
	unsigned total = (LOGSINK_BACKLOG_MAX / 100) + 2000;
	char own[201];
	struct outbuf got;

	logsink_set_fd(&sink, wr, false);
	logsink_start(&sink, loop);
	put_lines(0, total);
	ck_assert_uint_gt(sink.dropped, 0);
	/* Worker lines are dropped now (no room for 100 bytes); fugue's own
	 * (200 here) still wait their turn. */
	memset(own, 'o', sizeof(own));
	own[sizeof(own) - 1] = '\n';
	logsink_put(&sink, own, sizeof(own), false);
	put_lines(total, 1);
	got = drain();
	outbuf_add(&got, "", 1);
	ck_assert_ptr_nonnull(memmem(got.p, got.len, own, sizeof(own)));
	ck_assert_ptr_null(strstr(got.p, "line 00043943"));
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

/* ---- across an upgrade ---- */

/* n numbered lines of 100 bytes from first, per in a batch: a write may
 * end inside a line. */
static void
put_batches(unsigned first, unsigned n, unsigned per)
{
	char line[128];
	struct outbuf b = { 0 };

	for (unsigned i = first; i < first + n; i++) {
		snprintf(line, sizeof(line), "line %08u %0*d\n", i, 85, 0);
		outbuf_add(&b, line, 100);
		if ((i - first) % per == per - 1 || i == first + n - 1) {
			logsink_put(&sink, b.p, b.len, true);
			b.len = 0;
		}
	}
	outbuf_free(&b);
}


/* Fill the pipe and the backlog past its limit: the pipe holds a line cut
 * in the middle, some lines are dropped. How many were put. */
static unsigned
fill_with_a_torn_line(void)
{
	unsigned total = (LOGSINK_BACKLOG_MAX / 100) + 5000;

	logsink_set_fd(&sink, wr, false);
	logsink_start(&sink, loop);
	put_batches(0, total, 50);
	/* 64 KiB of 100-byte lines: the pipe ends inside one. */
	ck_assert_uint_gt(sink.frag, 0);
	ck_assert_uint_lt(sink.frag, 100);
	ck_assert_uint_gt(sink.dropped, 0);
	return total;
}

/* The old image is gone at the exec: its sink is never written again. */
static void
forget(struct logsink *s)
{
	s->pend.len = s->pend_off = 0;
	outbuf_free(&s->pend);
	ev_io_stop(loop, &s->wio);
	ev_timer_stop(loop, &s->retry);
	s->loop = NULL;
}

/* The numbered lines of got, in order from 0, then master lines only; the
 * count of numbered lines; *report: the count a drop report gave. */
static unsigned
check_after_upgrade(const struct outbuf *got, unsigned long *report,
    bool *saw_new)
{
	const char *p = got->p, *end = got->p + got->len, *nl;
	unsigned lines = check_in_order(got, 0);
	const char *r;

	for (unsigned i = 0; i < lines; i++)
		p = memchr(p, '\n', (size_t)(end - p)) + 1;
	*report = 0;
	*saw_new = false;
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		ck_assert_msg(nl != NULL, "a last line without its end");
		ck_assert_msg(strncmp(p, "line ", 5) != 0, "a numbered line "
		    "after the master lines: %.40s", p);
		if ((size_t)(nl - p) == 3 && memcmp(p, "NEW", 3) == 0)
			*saw_new = true;
		else if ((r = memmem(p, (size_t)(nl - p), " lines of worker "
		    "output dropped", 28)) != NULL) {
			while (r > p && r[-1] != ' ')
				r--;
			*report = strtoul(r, NULL, 10);
		} else
			ck_abort_msg("a line that is neither: %.60s", p);
	}
	return lines;
}

START_TEST(handover_finishes_the_torn_line_first)
{
	static struct logsink next;
	unsigned total = fill_with_a_torn_line(), lines;
	unsigned long dropped = sink.dropped, report;
	struct outbuf got;
	bool saw_new;
	int memfd;

	ck_assert_int_eq(logsink_export(&sink, &memfd), 0);
	ck_assert_int_ge(memfd, 0);
	ck_assert_int_ne(fcntl(memfd, F_GETFD) & FD_CLOEXEC, 0);
	forget(&sink);

	/* The new image: its sink takes the handover before anything is
	 * written through it; its first own line comes after. */
	logsink_init(&next, log_report_drops);
	ck_assert_int_eq(logsink_import(&next, memfd), 0);
	ck_assert_int_eq(fcntl(memfd, F_GETFD), -1);	/* closed */
	log_set_sink(&next);
	logsink_set_fd(&next, wr, false);
	logsink_put(&next, "NEW\n", 4, false);
	logsink_start(&next, loop);

	got = drain_sink(&next);
	lines = check_after_upgrade(&got, &report, &saw_new);
	ck_assert(saw_new);
	/* The counter crossed: the new image reports what the old dropped. */
	ck_assert_uint_eq(report, dropped);
	ck_assert_uint_eq(lines + dropped, total);
	outbuf_free(&got);
	log_set_sink(NULL);
	logsink_end(&next);
}
END_TEST

START_TEST(handover_of_nothing)
{
	int memfd = 7;

	logsink_set_fd(&sink, wr, false);
	logsink_start(&sink, loop);
	put_lines(0, 10);
	ck_assert_int_eq(logsink_export(&sink, &memfd), 0);
	ck_assert_int_eq(memfd, -1);
}
END_TEST

START_TEST(handover_refuses_what_it_did_not_write)
{
	static const char *const bad[] = {
		"",
		"fugue-logsink 1 0 0 0 0 0 0",		/* no newline */
		"fugue-logsink 2 0 0 0 0 0 0\n",	/* version */
		"fugue-logsink 1 0 0 0 0 0 4\nabc",	/* short */
		"fugue-logsink 1 0 0 0 0 0 3\nabcd",	/* long */
		"fugue-logsink 1 0 0 0 0 0 3\nabc",	/* no line end */
		"fugue-logsink 1 0 0 5 1 2 0\n",	/* a rest, no bytes */
		"fugue-logsink 1 3 0 0 0 0 0\n",	/* dropped, no reason */
		"fugue-logsink 1 -1 11 0 0 0 0\n",
		"fugue-logsink 1  0 0 0 0 0 0\n",
		"fugue-logsink 1 0 0 0 0 0 99999999999999999999999\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(logsink_import_buf(&sink, bad[i],
		    strlen(bad[i])) == -1, "took \"%s\"", bad[i]);
		ck_assert_uint_eq(sink.pend.len, 0);
		ck_assert_uint_eq(sink.dropped, 0);
		ck_assert_uint_eq(sink.frag, 0);
	}
	ck_assert_int_eq(logsink_import(&sink, -1), -1);
}
END_TEST

START_TEST(handover_to_another_file_drops_the_rest)
{
	static const char h[] = "fugue-logsink 1 0 0 4 1 2 10\nst line\nx\n";
	struct outbuf got;
	char buf[64];
	ssize_t n;

	/* The start of "first line" went to file 1:2; the target is now
	 * another: its end is no line there, "x" is. */
	ck_assert_int_eq(logsink_import_buf(&sink, h, sizeof(h) - 1), 0);
	logsink_set_fd(&sink, wr, false);
	ck_assert_uint_eq(sink.dropped, 1);
	logsink_start(&sink, loop);
	got = drain();
	ck_assert_uint_eq(got.len, 2);
	ck_assert_int_eq(memcmp(got.p, "x\n", 2), 0);
	outbuf_free(&got);
	n = read(rd, buf, sizeof(buf));
	ck_assert_int_le(n, 0);
}
END_TEST

/* ---- a full disk ---- */

static char fsdir[64] = "";

/* A 64 KiB tmpfs (root only), with a 16 KiB file to free later. */
static bool
small_fs(void)
{
	char filler[96], zero[16384] = { 0 };
	int fd;

	strcpy(fsdir, "/tmp/fugue-check-fs-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fsdir));
	if (mount("tmpfs", fsdir, "tmpfs", 0, "size=64k") == -1) {
		fprintf(stderr, "skipped: mounting a 64 KiB tmpfs on %s: %s "
		    "(needs root)\n", fsdir, strerror(errno));
		rmdir(fsdir);
		fsdir[0] = '\0';
		return false;
	}
	snprintf(filler, sizeof(filler), "%s/filler", fsdir);
	fd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, zero, sizeof(zero)), (ssize_t)sizeof(zero));
	close(fd);
	return true;
}

static void
free_space(void)
{
	char filler[96];

	snprintf(filler, sizeof(filler), "%s/filler", fsdir);
	ck_assert_int_eq(unlink(filler), 0);
}

static void
fs_teardown(void)
{
	teardown();
	if (fsdir[0]) {
		umount2(fsdir, MNT_DETACH);
		rmdir(fsdir);
		fsdir[0] = '\0';
	}
}

static int
open_in_fs(const char *name)
{
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fsdir, name);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	return fd;
}

static struct outbuf
read_file(const char *name)
{
	struct outbuf got = { 0 };
	char path[96], buf[65536];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fsdir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		outbuf_add(&got, buf, (size_t)n);
	close(fd);
	return got;
}

/* Every line of got whole: numbered ones in order (with gaps only where
 * lines were dropped), master lines; the drop reports' total. */
static unsigned
whole_lines(const struct outbuf *got, unsigned long *reported)
{
	const char *p = got->p, *end = got->p + got->len, *nl, *r;
	unsigned lines = 0;
	long last = -1;

	*reported = 0;
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		ck_assert_msg(nl != NULL, "the file ends inside a line: %.*s",
		    (int)(end - p), p);
		if (strncmp(p, "line ", 5) == 0) {
			long i = strtol(p + 5, NULL, 10);

			ck_assert_msg(nl - p == 99 && i > last, "a torn line: "
			    "%.*s", (int)(nl - p), p);
			last = i;
			lines++;
		} else if ((r = memmem(p, (size_t)(nl - p), " lines of worker "
		    "output dropped: No space left on device", 56)) != NULL) {
			while (r > p && r[-1] != ' ')
				r--;
			*reported += strtoul(r, NULL, 10);
		} else
			ck_abort_msg("a torn line: %.*s", (int)(nl - p), p);
	}
	return lines;
}

static void
disk_full_then_space(bool shared)
{
	unsigned long reported;
	struct outbuf got;
	unsigned lines;
	int fd;

	if (!small_fs())
		return;
	fd = open_in_fs("app.log");
	logsink_set_fd(&sink, fd, shared);
	logsink_start(&sink, loop);
	log_set_sink(&sink);
	put_batches(0, 1000, 7);		/* 100 KB: the disk fills */
	ck_assert_uint_gt(sink.dropped, 0);
	ck_assert_int_eq(sink.drop_errno, ENOSPC);
	if (!shared) {
		/* What went in is whole lines, now already. */
		got = read_file("app.log");
		ck_assert_uint_eq(got.len % 100, 0);
		outbuf_free(&got);
	} else
		ck_assert_uint_gt(sink.frag, 0);	/* the rest waits */
	free_space();
	put_batches(1000, 10, 7);	/* room again: these, the report */
	ck_assert_uint_eq(sink.dropped, 0);
	got = read_file("app.log");
	lines = whole_lines(&got, &reported);
	ck_assert_uint_gt(reported, 0);
	ck_assert_uint_eq(lines + reported, 1010);
	ck_assert(memmem(got.p, got.len, "line 00001009", 13) != NULL);
	outbuf_free(&got);
	close(fd);
}

START_TEST(disk_full_leaves_whole_lines)
{
	disk_full_then_space(false);
}
END_TEST

START_TEST(disk_full_finishes_the_line_later)
{
	/* Not ours (stderr): what went in stays; its end is written first
	 * once there is room. */
	disk_full_then_space(true);
}
END_TEST

START_TEST(disk_full_retried_without_new_lines)
{
	struct outbuf got;
	unsigned long reported;
	int fd;

	if (!small_fs())
		return;
	fd = open_in_fs("app.log");
	logsink_set_fd(&sink, fd, true);
	logsink_start(&sink, loop);
	log_set_sink(&sink);
	put_batches(0, 1000, 7);
	ck_assert_uint_gt(sink.frag, 0);
	ck_assert(ev_is_active(&sink.retry));
	free_space();
	/* Nothing more is printed: the timer finishes the line. */
	for (int i = 0; i < 100 && sink.pend.len > sink.pend_off; i++)
		ev_run(loop, EVRUN_ONCE);
	ck_assert_uint_eq(sink.frag, 0);
	ck_assert(!ev_is_active(&sink.retry));
	got = read_file("app.log");
	whole_lines(&got, &reported);
	outbuf_free(&got);
	close(fd);
}
END_TEST

START_TEST(disk_full_master_log_file)
{
	char line[300];
	struct outbuf got;
	int fd, failed = 0;

	if (!small_fs())
		return;
	fd = open_in_fs("master.log");
	memset(line, 'm', sizeof(line));
	line[sizeof(line) - 1] = '\n';
	for (int i = 0; i < 300; i++)
		failed += logsink_write_lines(fd, line, sizeof(line)) == -1;
	ck_assert_int_gt(failed, 0);
	got = read_file("master.log");
	ck_assert_uint_eq(got.len % sizeof(line), 0);
	outbuf_free(&got);
	close(fd);
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
	tcase_add_test(tc, own_lines_past_a_full_backlog);
	tcase_add_test(tc, failed_write_counts_worker_lines);
	tcase_add_test(tc, shared_fd_left_blocking);
	tcase_add_test(tc, settle_is_bounded);
	tcase_add_test(tc, before_the_loop_writes_through);
	suite_add_tcase(s, tc);

	tc = tcase_create("handover");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, handover_finishes_the_torn_line_first);
	tcase_add_test(tc, handover_of_nothing);
	tcase_add_test(tc, handover_refuses_what_it_did_not_write);
	tcase_add_test(tc, handover_to_another_file_drops_the_rest);
	suite_add_tcase(s, tc);

	tc = tcase_create("disk full");
	tcase_add_checked_fixture(tc, setup, fs_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, disk_full_leaves_whole_lines);
	tcase_add_test(tc, disk_full_finishes_the_line_later);
	tcase_add_test(tc, disk_full_retried_without_new_lines);
	tcase_add_test(tc, disk_full_master_log_file);
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
