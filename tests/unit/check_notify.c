/* Unit tests of src/notify.c: parsing sd_notify datagrams from workers, and
 * the workers' notify socket end to end (a datagram sent from this process
 * arrives with its pid from SCM_CREDENTIALS). */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notify.h"
#include "util.h"

/* notify_parse on an exact-size copy: a read past the end is caught. */
static int
parse(const char *buf, size_t len, struct notify_msg *m)
{
	char *copy = xmalloc(len);
	int r;

	memcpy(copy, buf, len);
	memset(m, 0x5a, sizeof(*m));	/* everything must be set */
	r = notify_parse(copy, len, m);
	free(copy);
	return r;
}
#define PARSE(lit, m)	parse(lit, sizeof(lit) - 1, m)

static void
expect_flags(const struct notify_msg *m, bool ready, bool watchdog,
    bool stopping, bool reloading)
{
	ck_assert_int_eq(m->ready, ready);
	ck_assert_int_eq(m->watchdog, watchdog);
	ck_assert_int_eq(m->stopping, stopping);
	ck_assert_int_eq(m->reloading, reloading);
}

/* ---- parsing ---- */

START_TEST(ready)
{
	struct notify_msg m;

	ck_assert_int_eq(PARSE("READY=1", &m), 0);
	expect_flags(&m, true, false, false, false);
	ck_assert_str_eq(m.status, "");
	ck_assert_int_eq(m.pid, 0);
	ck_assert_int_eq(PARSE("READY=1\n", &m), 0);
	expect_flags(&m, true, false, false, false);
}
END_TEST

START_TEST(watchdog_stopping_reloading)
{
	struct notify_msg m;

	ck_assert_int_eq(PARSE("WATCHDOG=1", &m), 0);
	expect_flags(&m, false, true, false, false);
	ck_assert_int_eq(PARSE("STOPPING=1", &m), 0);
	expect_flags(&m, false, false, true, false);
	ck_assert_int_eq(PARSE("RELOADING=1", &m), 0);
	expect_flags(&m, false, false, false, true);
}
END_TEST

START_TEST(several)
{
	struct notify_msg m;

	ck_assert_int_eq(PARSE("READY=1\nSTATUS=serving on :8080\n"
	    "WATCHDOG=1\nMAINPID=42\n", &m), 0);
	expect_flags(&m, true, true, false, false);
	ck_assert_str_eq(m.status, "serving on :8080");
	/* the order does not matter, the last STATUS wins */
	ck_assert_int_eq(PARSE("STATUS=one\nSTOPPING=1\nSTATUS=two\nREADY=1",
	    &m), 0);
	expect_flags(&m, true, false, true, false);
	ck_assert_str_eq(m.status, "two");
	/* empty lines between assignments are fine */
	ck_assert_int_eq(PARSE("\n\nREADY=1\n\n", &m), 0);
	ck_assert(m.ready);
}
END_TEST

START_TEST(status)
{
	struct notify_msg m;

	ck_assert_int_eq(PARSE("STATUS=", &m), 0);
	ck_assert_str_eq(m.status, "");
	expect_flags(&m, false, false, false, false);
	ck_assert_int_eq(PARSE("STATUS=a=b c", &m), 0);
	ck_assert_str_eq(m.status, "a=b c");
	/* control characters become spaces: it ends up in a log line */
	ck_assert_int_eq(PARSE("STATUS=a\tb\rc\001d\033[31me\x1f", &m), 0);
	ck_assert_str_eq(m.status, "a b c d [31me ");
	/* a NUL inside is no end of the string for the log */
	ck_assert_int_eq(PARSE("STATUS=x\0y", &m), 0);
	ck_assert_uint_eq(strlen(m.status), 3);
	ck_assert_str_eq(m.status, "x y");
	/* UTF-8 stays */
	ck_assert_int_eq(PARSE("STATUS=caf\xc3\xa9", &m), 0);
	ck_assert_str_eq(m.status, "caf\xc3\xa9");
}
END_TEST

START_TEST(status_cut)
{
	struct notify_msg m;
	char buf[1000];
	size_t field = sizeof(m.status);

	memcpy(buf, "STATUS=", 7);
	for (size_t i = 7; i < sizeof(buf); i++)
		buf[i] = 'a' + (char)(i % 26);
	/* exactly the room there is, one more, and far more */
	for (size_t n = field - 2; n < field + 2; n++) {
		ck_assert_int_eq(parse(buf, 7 + n, &m), 0);
		ck_assert_uint_eq(strlen(m.status), n < field ? n : field - 1);
		ck_assert_int_eq(memcmp(m.status, buf + 7, strlen(m.status)),
		    0);
	}
	ck_assert_int_eq(parse(buf, sizeof(buf), &m), 0);
	ck_assert_uint_eq(strlen(m.status), field - 1);
	/* with more after it */
	memcpy(buf + 500, "\nREADY=1", 8);
	ck_assert_int_eq(parse(buf, 508, &m), 0);
	ck_assert(m.ready);
	ck_assert_uint_eq(strlen(m.status), field - 1);
}
END_TEST

START_TEST(unknown_assignments)
{
	struct notify_msg m;

	ck_assert_int_eq(PARSE("MAINPID=42", &m), 0);
	expect_flags(&m, false, false, false, false);
	ck_assert_str_eq(m.status, "");
	ck_assert_int_eq(PARSE("ERRNO=2\nBUSERROR=x\nX_CUSTOM=", &m), 0);
	expect_flags(&m, false, false, false, false);
	ck_assert_int_eq(PARSE("FDSTORE=1\nREADY=1", &m), 0);
	expect_flags(&m, true, false, false, false);
}
END_TEST

/* Only the exact assignment counts. */
START_TEST(not_quite_ready)
{
	static const char *const near[] = {
		"READY=10", "READY=0", "READY=", "READY=1 ", " READY=1",
		"READY=1\r", "ready=1", "XREADY=1", "READY=11", "READY==1",
		"WATCHDOG=0", "WATCHDOG=trigger", "STOPPING=yes",
	};
	struct notify_msg m;

	for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++) {
		/* still an assignment, so still a message */
		ck_assert_int_eq(parse(near[i], strlen(near[i]), &m), 0);
		ck_assert_msg(!m.ready && !m.watchdog && !m.stopping,
		    "\"%s\" was taken", near[i]);
	}
	/* "READY=1" followed by a NUL is not READY=1 either */
	ck_assert_int_eq(parse("READY=1\0", 8, &m), 0);
	ck_assert(!m.ready);
}
END_TEST

START_TEST(garbage)
{
	static const char *const bad[] = {
		"READY", "hello", "\n", "\n\n\n", "READY\nWATCHDOG", " ",
	};
	struct notify_msg m;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse(bad[i], strlen(bad[i]), &m) == -1,
		    "\"%s\" taken", bad[i]);
		expect_flags(&m, false, false, false, false);
	}
	/* empty */
	ck_assert_int_eq(parse("", 0, &m), -1);
	/* binary */
	{
		char b[256];

		for (int i = 0; i < 256; i++)
			b[i] = (char)(i == '=' ? 0 : i);
		ck_assert_int_eq(parse(b, sizeof(b), &m), -1);
	}
}
END_TEST

/* Random bytes: never a crash, never a read outside the buffer, the
 * status always a short printable string. */
START_TEST(fuzz)
{
	static const char alphabet[] = "READYWATCHDOGSTUS=1\n\t\0\x7f\xff x";
	unsigned seed = 7;
	struct notify_msg m;
	char buf[600];

	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t)rand_r(&seed) % sizeof(buf);

		for (size_t i = 0; i < n; i++)
			buf[i] = alphabet[(size_t)rand_r(&seed) %
			    (sizeof(alphabet) - 1)];
		if (round % 3 == 0 && n > 7)
			memcpy(buf, "STATUS=", 7);
		(void)parse(buf, n, &m);
		/* plain tests: a ck_assert per byte costs a write each */
		if (memchr(m.status, '\0', sizeof(m.status)) == NULL)
			ck_abort_msg("status not terminated (round %d)", round);
		for (const char *p = m.status; *p; p++)
			if ((unsigned char)*p < 0x20)
				ck_abort_msg("control character %#x in status "
				    "(round %d)", (unsigned char)*p, round);
	}
}
END_TEST

/* ---- the socket, end to end ---- */

static char dir[64], sockpath[128];

static void
sock_setup(void)
{
	strcpy(dir, "/tmp/fugue-notify-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sockpath, sizeof(sockpath), "%s/fugue-1.notify", dir);
}

static void
sock_teardown(void)
{
	unlink(sockpath);
	rmdir(dir);
}

static int
open_sock(void)
{
	char err[256] = "";
	int fd = notify_open(sockpath, (uid_t)-1, (gid_t)-1, err, sizeof(err));

	ck_assert_msg(fd >= 0, "notify_open: %s", err);
	return fd;
}

static void
send_to(const char *path, const void *buf, size_t len)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	ck_assert_int_eq(sendto(fd, buf, len, 0, (struct sockaddr *)&sa,
	    sizeof(sa)), (ssize_t)len);
	close(fd);
}

/* Wait (bounded) for the socket to be readable, then receive. */
static int
recv_one(int fd, struct notify_msg *m)
{
	struct pollfd p = { fd, POLLIN, 0 };

	ck_assert_int_eq(poll(&p, 1, 2000), 1);
	return notify_recv(fd, m);
}

START_TEST(socket_ready)
{
	struct notify_msg m;
	struct stat st;
	int fd = open_sock(), fl;

	/* a socket, 0600, non-blocking and close-on-exec */
	ck_assert_int_eq(lstat(sockpath, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert((fl = fcntl(fd, F_GETFL)) != -1 && (fl & O_NONBLOCK));
	ck_assert((fl = fcntl(fd, F_GETFD)) != -1 && (fl & FD_CLOEXEC));

	/* nothing there yet */
	ck_assert_int_eq(notify_recv(fd, &m), 0);

	send_to(sockpath, "READY=1\nSTATUS=up", 17);
	ck_assert_int_eq(recv_one(fd, &m), 1);
	ck_assert_int_eq(m.pid, getpid());
	ck_assert(m.ready);
	ck_assert(!m.watchdog);
	ck_assert_str_eq(m.status, "up");

	send_to(sockpath, "WATCHDOG=1", 10);
	ck_assert_int_eq(recv_one(fd, &m), 1);
	ck_assert_int_eq(m.pid, getpid());
	ck_assert(!m.ready);
	ck_assert(m.watchdog);

	ck_assert_int_eq(notify_recv(fd, &m), 0);
	close(fd);
}
END_TEST

/* Garbage and oversized datagrams come back as messages asking for
 * nothing, still with the sender's pid. */
START_TEST(socket_garbage)
{
	struct notify_msg m;
	char *big;
	int fd = open_sock();
	size_t blen = NOTIFY_DATAGRAM_MAX + 100;

	send_to(sockpath, "garbage", 7);
	ck_assert_int_eq(recv_one(fd, &m), 1);
	ck_assert_int_eq(m.pid, getpid());
	expect_flags(&m, false, false, false, false);

	/* READY=1 at the start of a datagram too big to read whole */
	big = xmalloc(blen);
	memset(big, 'x', blen);
	memcpy(big, "READY=1\nSTATUS=", 15);
	send_to(sockpath, big, blen);
	ck_assert_int_eq(recv_one(fd, &m), 1);
	ck_assert_int_eq(m.pid, getpid());
	expect_flags(&m, false, false, false, false);
	ck_assert_str_eq(m.status, "");
	free(big);

	/* an empty datagram */
	send_to(sockpath, "", 0);
	ck_assert_int_eq(recv_one(fd, &m), 1);
	expect_flags(&m, false, false, false, false);

	/* and the socket still works */
	send_to(sockpath, "READY=1", 7);
	ck_assert_int_eq(recv_one(fd, &m), 1);
	ck_assert(m.ready);
	close(fd);
}
END_TEST

/* An fd passed along with a datagram is closed, not leaked. */
START_TEST(socket_passed_fd_closed)
{
	struct notify_msg m;
	struct sockaddr_un sa;
	union {
		struct cmsghdr	align;
		char		buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { "READY=1", 7 };
	struct msghdr mh;
	struct cmsghdr *c;
	int fd = open_sock(), s, p[2];
	char ch;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, sockpath);
	memset(&mh, 0, sizeof(mh));
	memset(&ctl, 0, sizeof(ctl));
	mh.msg_name = &sa;
	mh.msg_namelen = sizeof(sa);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &p[1], sizeof(int));
	ck_assert_int_eq(sendmsg(s, &mh, 0), 7);
	close(s);
	close(p[1]);

	ck_assert_int_eq(recv_one(fd, &m), 1);
	ck_assert_int_eq(m.pid, getpid());
	ck_assert(m.ready);
	/* the only other write end was the one passed: EOF means closed */
	ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(read(p[0], &ch, 1), 0);
	close(p[0]);
	close(fd);
}
END_TEST

/* More fds than notify_recv makes room for: none of them stays open. */
START_TEST(socket_many_fds_closed)
{
	enum { NFDS = 40 };
	struct notify_msg m;
	struct sockaddr_un sa;
	union {
		struct cmsghdr	align;
		char		buf[CMSG_SPACE(sizeof(int) * NFDS)];
	} ctl;
	struct iovec iov = { "READY=1", 7 };
	struct msghdr mh;
	struct cmsghdr *c;
	int fd = open_sock(), s, p[2], w[NFDS];
	char ch;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	for (int i = 0; i < NFDS; i++)
		ck_assert_int_ge(w[i] = fcntl(p[1], F_DUPFD_CLOEXEC, 0), 0);
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, sockpath);
	memset(&mh, 0, sizeof(mh));
	memset(&ctl, 0, sizeof(ctl));
	mh.msg_name = &sa;
	mh.msg_namelen = sizeof(sa);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * NFDS);
	memcpy(CMSG_DATA(c), w, sizeof(w));
	ck_assert_int_eq(sendmsg(s, &mh, 0), 7);
	close(s);
	for (int i = 0; i < NFDS; i++)
		close(w[i]);
	close(p[1]);

	ck_assert_int_eq(recv_one(fd, &m), 1);
	ck_assert_int_eq(m.pid, getpid());
	/* a datagram whose control data was cut asks for nothing */
	ck_assert(!m.ready);
	ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(read(p[0], &ch, 1), 0);
	close(p[0]);
	close(fd);
}
END_TEST

/* A stale file at the path is replaced; a path too long is an error. */
START_TEST(socket_open_errors)
{
	char err[512], longpath[300];
	int fd;

	/* A stale socket is replaced; anything else is left alone. */
	fd = open_sock();
	close(fd);
	fd = open_sock();
	close(fd);
	unlink(sockpath);
	fd = open(sockpath, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	err[0] = '\0';
	ck_assert_int_eq(notify_open(sockpath, (uid_t)-1, (gid_t)-1, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a socket"));
	ck_assert_int_eq(access(sockpath, F_OK), 0);

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	err[0] = '\0';
	ck_assert_int_eq(notify_open(longpath, (uid_t)-1, (gid_t)-1, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "too long"));

	err[0] = '\0';
	ck_assert_int_eq(notify_open("/nonexistent-dir/x.notify", (uid_t)-1,
	    (gid_t)-1, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/x.notify"));
	ck_assert_ptr_nonnull(strstr(err, strerror(ENOENT)));
}
END_TEST

/* FDSTORE=1 to systemd: the text, and the very socket attached. Without
 * NOTIFY_SOCKET nothing is sent. */
START_TEST(systemd_store_sends_the_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(4 * sizeof(int))];
	} cm;
	char text[512];
	struct iovec iov = { text, sizeof(text) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf) };
	struct stat a, b;
	struct pollfd p;
	int rx, lfd, got = -1;
	ssize_t n;

	rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(rx, 0);
	strcpy(sa.sun_path, sockpath);
	ck_assert_int_eq(bind(rx, (struct sockaddr *)&sa, sizeof(sa)), 0);
	lfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(lfd, 0);

	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(notify_systemd_store(lfd, "udp_127.0.0.1_53"), -1);
	setenv("NOTIFY_SOCKET", sockpath, 1);
	ck_assert_int_eq(notify_systemd_store(lfd, "udp_127.0.0.1_53"), 0);
	p.fd = rx;
	p.events = POLLIN;
	ck_assert_int_eq(poll(&p, 1, 2000), 1);
	n = recvmsg(rx, &mh, MSG_CMSG_CLOEXEC);
	ck_assert_int_gt(n, 0);
	text[n] = '\0';
	ck_assert_str_eq(text, "FDSTORE=1\nFDNAME=udp_127.0.0.1_53\nFDPOLL=0");
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&got, CMSG_DATA(c), sizeof(int));
	ck_assert_int_ge(got, 0);
	ck_assert_int_eq(fstat(lfd, &a), 0);
	ck_assert_int_eq(fstat(got, &b), 0);
	ck_assert(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
	unsetenv("NOTIFY_SOCKET");
	close(got);
	close(lfd);
	close(rx);
}
END_TEST

static Suite *
notify_suite(void)
{
	Suite *s = suite_create("notify");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_test(tc, ready);
	tcase_add_test(tc, watchdog_stopping_reloading);
	tcase_add_test(tc, several);
	tcase_add_test(tc, status);
	tcase_add_test(tc, status_cut);
	tcase_add_test(tc, unknown_assignments);
	tcase_add_test(tc, not_quite_ready);
	tcase_add_test(tc, garbage);
	tcase_add_test(tc, fuzz);
	suite_add_tcase(s, tc);

	tc = tcase_create("socket");
	tcase_add_checked_fixture(tc, sock_setup, sock_teardown);
	tcase_add_test(tc, socket_ready);
	tcase_add_test(tc, socket_garbage);
	tcase_add_test(tc, socket_passed_fd_closed);
	tcase_add_test(tc, socket_many_fds_closed);
	tcase_add_test(tc, socket_open_errors);
	tcase_add_test(tc, systemd_store_sends_the_fd);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(notify_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
