/*
 * Where worker lines (and, without master_log_file, fugue's own) are
 * written: log_file, or fugue's stderr. Never blocking the loop: what a
 * slow reader (a terminal on ^S, a pipe nobody reads quickly) does not take
 * waits in a backlog of up to LOGSINK_BACKLOG_MAX bytes, written as the
 * reader takes it; past that, and on a failed write (disk full), lines are
 * dropped and counted, and the count is reported once writing works again.
 *
 * A line is never cut by another: when a write stops inside a line, the
 * rest of it is the first thing written next. A failed write (disk full)
 * that left part of a line in a regular file of ours takes that part back
 * (ftruncate); where it cannot, the rest of the line waits, tried again
 * every LOGSINK_RETRY_MS, and whole lines behind it are dropped.
 *
 * fugue's stderr is shared with whoever started it, so it is not made
 * non-blocking in place: a pipe or terminal is opened again through
 * /proc/self/fd/2 (a description of fugue's own), a socket (the journal)
 * is written with MSG_DONTWAIT. A regular file never makes a writer wait.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logsink.h"
#include "util.h"

/* ---- the sink ---- */

static size_t
backlog_len(const struct logsink *s)
{
	return s->pend.len - s->pend_off;
}

/* What waits (never a null pointer, even when nothing does). */
static const char *
backlog(const struct logsink *s)
{
	return s->pend.p ? s->pend.p + s->pend_off : "";
}

static void
drop(struct logsink *s, const char *p, size_t n, int err)
{
	size_t lines = lines_count(p, n);

	if (lines == 0)
		return;
	s->dropped += lines;
	s->dropped_total += lines;
	s->drop_errno = err;
}

static void
report_drops(struct logsink *s)
{
	unsigned long n = s->dropped;

	if (n == 0 || s->report == NULL)
		return;
	s->dropped = 0;		/* first: the report goes through s too */
	s->report(s, n, s->drop_errno);
}

/* w bytes of p went out: how much of a line the target holds without
 * its end. */
static void
track(struct logsink *s, const char *p, size_t w)
{
	const char *nl = memrchr(p, '\n', w);

	s->frag = nl ? (size_t)(p + w - nl - 1) : s->frag + w;
}

/* Write as much of p as the target takes: 1 all of it, 0 the rest would
 * block, -1 failed (errno). *done: how much went out. */
static int
send_some(struct logsink *s, const char *p, size_t n, size_t *done)
{
	ssize_t w;

	*done = 0;
	while (*done < n) {
		do
			w = s->sock ? send(s->fd, p + *done, n - *done,
			    MSG_DONTWAIT | MSG_NOSIGNAL) :
			    write(s->fd, p + *done, n - *done);
		while (w == -1 && errno == EINTR);
		if (w == -1 && errno == EAGAIN)
			return 0;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		track(s, p + *done, (size_t)w);
		*done += (size_t)w;
	}
	return 1;
}

/* Of n bytes at p that cannot be written now, how many to keep: the rest
 * of a line whose start is in the target and cannot be taken back. */
static size_t
torn_rest(struct logsink *s, const char *p, size_t n)
{
	if (s->frag == 0 || (!s->shared && lines_cut_back(s->fd, s->frag))) {
		s->frag = 0;
		return 0;
	}
	return lines_end(p, n);
}

static void
wait_writable(struct logsink *s)
{
	if (s->loop == NULL)
		return;
	ev_timer_stop(s->loop, &s->retry);
	if (!ev_is_active(&s->wio)) {
		ev_io_set(&s->wio, s->fd, EV_WRITE);
		ev_io_start(s->loop, &s->wio);
	}
}

/* A failed write is not announced by the fd (a full disk stays
 * "writable"): try again on a timer. */
static void
wait_retry(struct logsink *s)
{
	if (s->loop == NULL)
		return;
	ev_io_stop(s->loop, &s->wio);
	if (!ev_is_active(&s->retry)) {
		ev_timer_set(&s->retry, LOGSINK_RETRY_MS / 1000.0,
		    LOGSINK_RETRY_MS / 1000.0);
		ev_timer_start(s->loop, &s->retry);
	}
}

static void
backlog_clear(struct logsink *s)
{
	if (s->loop) {
		ev_io_stop(s->loop, &s->wio);
		ev_timer_stop(s->loop, &s->retry);
	}
	s->fail = 0;
	s->pend.len = s->pend_off = 0;
	if (s->pend.cap > 65536)
		outbuf_free(&s->pend);	/* a burst: give the memory back */
}

/* The backlog cannot be written now (err): drop and count it, all but the
 * rest of a torn line (torn_rest), kept for a retry. Whether kept. */
static bool
backlog_cut(struct logsink *s, int err)
{
	const char *p = backlog(s);
	size_t n = backlog_len(s), keep = torn_rest(s, p, n);

	drop(s, p + keep, n - keep, err);
	if (keep == 0) {
		backlog_clear(s);
		return false;
	}
	s->pend.len = s->pend_off + keep;
	s->fail = err;
	return true;
}

/* Write what waits: 1 all written, 0 the rest waits for the reader, -1 a
 * write failed (backlog_cut; s->fail while the rest of a line waits). */
static int
backlog_write(struct logsink *s)
{
	size_t done;
	int r, err;

	if (backlog_len(s) > 0) {
		r = send_some(s, backlog(s), backlog_len(s),
		    &done);
		s->pend_off += done;
		if (r == 0 && s->loop) {
			s->fail = 0;
			wait_writable(s);
			return 0;
		}
		if (r != 1) {
			err = r == 0 ? EAGAIN : errno;
			if (backlog_cut(s, err))
				wait_retry(s);
			return -1;
		}
	}
	backlog_clear(s);
	return 1;
}

static void
backlog_cb(struct logsink *s)
{
	if (backlog_write(s) == 1)
		report_drops(s);
}

static void
wio_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	backlog_cb(io->data);
}

static void
retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	backlog_cb(t->data);
}

void
logsink_init(struct logsink *s, logsink_report_fn *report)
{
	memset(s, 0, sizeof(*s));
	s->target = s->fd = 2;
	s->shared = true;
	s->report = report;
	ev_init(&s->wio, wio_cb);
	s->wio.data = s;
	ev_init(&s->retry, retry_cb);
	s->retry.data = s;
}

/* Lines behind what waits, in order; or, past the limit, dropped (worker
 * lines counted). fugue's own lines (few, and what says what happened)
 * have room past the workers'. */
static void
put_behind(struct logsink *s, const char *p, size_t n, bool worker)
{
	size_t max = LOGSINK_BACKLOG_MAX + (worker ? 0 : LOGSINK_OWN_MAX);

	if (s->fail) {
		if (worker)
			drop(s, p, n, s->fail);
	} else if (backlog_len(s) + n > max) {
		if (worker)
			drop(s, p, n, EAGAIN);
	} else
		outbuf_add(&s->pend, p, n);
}

void
logsink_put(struct logsink *s, const char *p, size_t n, bool worker)
{
	size_t done, keep;
	int r, err;

	if (n == 0)
		return;
	/* The rest of a line a failed write left goes first: try it now. */
	if (s->fail)
		backlog_cb(s);
	if (backlog_len(s) > 0) {
		put_behind(s, p, n, worker);
		return;
	}
	r = send_some(s, p, n, &done);
	if (r == 1) {
		report_drops(s);
		return;
	}
	p += done;
	n -= done;
	if (r == 0 && s->loop) {
		outbuf_add(&s->pend, p, n);
		wait_writable(s);
		return;
	}
	err = r == 0 ? EAGAIN : errno;
	keep = torn_rest(s, p, n);
	if (worker)
		drop(s, p + keep, n - keep, err);
	if (keep > 0) {
		outbuf_add(&s->pend, p, keep);
		s->fail = err;
		wait_retry(s);
	}
}

void
logsink_write(struct logsink *s)
{
	logsink_put(s, s->out.p, s->out.len, true);
	s->out.len = 0;
}

/* The rest of a line waits for a file the target is no longer: that line
 * is lost (its start is there); the next file gets whole lines only. */
static void
sink_moved(struct logsink *s, const struct stat *st)
{
	size_t k;

	if (s->frag > 0 && (s->dev || s->ino) &&
	    (st->st_dev != s->dev || st->st_ino != s->ino)) {
		k = lines_end(backlog(s), backlog_len(s));
		drop(s, backlog(s), k, s->fail ? s->fail : EAGAIN);
		s->pend_off += k;
		s->frag = 0;
		s->fail = 0;
		if (backlog_len(s) == 0)
			backlog_clear(s);
	}
	s->dev = st->st_dev;
	s->ino = st->st_ino;
}

/* How fd is written without blocking (only with a loop to wait on). */
static void
sink_prepare(struct logsink *s)
{
	struct stat st;
	int fd, fl;

	if (s->own_fd)
		close(s->fd);
	s->own_fd = false;
	s->sock = false;
	s->fd = s->target;
	if (fstat(s->target, &st) == -1)
		return;
	sink_moved(s, &st);
	if (s->loop == NULL || S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
		return;
	if (S_ISSOCK(st.st_mode)) {
		s->sock = true;
		return;
	}
	if (!s->shared) {
		if ((fl = fcntl(s->target, F_GETFL)) != -1)
			fcntl(s->target, F_SETFL, fl | O_NONBLOCK);
		return;
	}
	/* A pipe or a terminal: a description of our own (else blocking). */
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", s->target);
	if ((fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)) !=
	    -1) {
		s->fd = fd;
		s->own_fd = true;
	}
}

/* What waits, tried at once (on a new target, or once the loop runs). */
static void
sink_resume(struct logsink *s)
{
	if (s->loop == NULL || backlog_len(s) == 0)
		return;
	ev_io_stop(s->loop, &s->wio);
	ev_timer_stop(s->loop, &s->retry);
	s->fail = 0;
	backlog_cb(s);
}

void
logsink_set_fd(struct logsink *s, int fd, bool shared)
{
	if (s->loop)
		ev_io_stop(s->loop, &s->wio);
	s->target = fd;
	s->shared = shared;
	sink_prepare(s);
	sink_resume(s);
}

void
logsink_start(struct logsink *s, struct ev_loop *loop)
{
	s->loop = loop;
	sink_prepare(s);
	sink_resume(s);
}

void
logsink_settle(struct logsink *s, int ms)
{
	double end = mono_now() + ms / 1000.0;
	struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };
	bool reported = false;
	int r, left;

	for (;;) {
		while ((r = backlog_write(s)) != 1) {
			left = (int)((end - mono_now()) * 1000);
			if (r == -1)
				return;	/* failed: only a line's rest waits */
			if (left <= 0 || poll(&pfd, 1, left) <= 0) {
				backlog_cut(s, EAGAIN);
				return;
			}
		}
		/* All out: say what was lost (once; it may wait too). */
		if (reported || s->dropped == 0)
			return;
		report_drops(s);
		reported = true;
	}
}

void
logsink_end(struct logsink *s)
{
	size_t done;

	logsink_settle(s, 1000);
	if (s->loop) {
		ev_io_stop(s->loop, &s->wio);
		ev_timer_stop(s->loop, &s->retry);
	}
	if (s->own_fd)
		close(s->fd);
	s->own_fd = false;
	s->fd = s->target;
	s->loop = NULL;
	/* The rest of a torn line, before what follows (written blocking). */
	if (backlog_len(s) > 0)
		send_some(s, backlog(s), backlog_len(s), &done);
	outbuf_free(&s->pend);
	s->pend_off = 0;
	s->fail = 0;
}

/* ---- across an upgrade ---- */

#define HANDOVER_VERSION	1
#define HANDOVER_MAX		(4 * (size_t)LOGSINK_BACKLOG_MAX)

/*
 * "fugue-logsink VERSION DROPPED DROP_ERRNO FRAG DEV INO LEN\n", then LEN
 * bytes: the rest of a line of which FRAG bytes went to the file DEV:INO,
 * then whole lines.
 */
int
logsink_export(struct logsink *s, int *memfd)
{
	struct outbuf o = { 0 };
	size_t n = backlog_len(s) + s->out.len, off = 0;
	ssize_t w;
	int fd, e;

	*memfd = -1;
	if (n == 0 && s->dropped == 0)
		return 0;
	outbuf_printf(&o, "fugue-logsink %d %lu %d %zu %ju %ju %zu\n",
	    HANDOVER_VERSION, s->dropped, s->drop_errno, s->frag,
	    (uintmax_t)s->dev, (uintmax_t)s->ino, n);
	outbuf_add(&o, backlog(s), backlog_len(s));
	outbuf_add(&o, s->out.p, s->out.len);
	if ((fd = memfd_create("fugue-logsink", MFD_CLOEXEC)) == -1)
		goto fail;
	while (off < o.len) {
		if ((w = write(fd, o.p + off, o.len - off)) <= 0) {
			e = w == 0 ? EIO : errno;
			close(fd);
			errno = e;
			goto fail;
		}
		off += (size_t)w;
	}
	outbuf_free(&o);
	*memfd = fd;
	return 0;
fail:
	e = errno;
	outbuf_free(&o);
	errno = e;
	return -1;
}

/* A decimal number of at most max, then sep; p moves past both. */
static int
take_num(const char **p, const char *end, uintmax_t max, char sep,
    uintmax_t *out)
{
	uintmax_t v = 0;
	const char *q = *p;

	if (q >= end || *q < '0' || *q > '9')
		return -1;
	for (; q < end && *q >= '0' && *q <= '9'; q++) {
		if (v > (max - (uintmax_t)(*q - '0')) / 10)
			return -1;
		v = v * 10 + (uintmax_t)(*q - '0');
	}
	if (q >= end || *q != sep)
		return -1;
	*p = q + 1;
	*out = v;
	return 0;
}

int
logsink_import_buf(struct logsink *s, const char *buf, size_t len)
{
	static const char magic[] = "fugue-logsink ";
	const char *p = buf, *end = buf + len;
	uintmax_t v[7];
	struct outbuf o = { 0 };
	struct stat st;
	size_t n;

	if (len < sizeof(magic) - 1 || memcmp(p, magic, sizeof(magic) - 1))
		return -1;
	p += sizeof(magic) - 1;
	if (take_num(&p, end, INT_MAX, ' ', &v[0]) == -1 ||
	    v[0] != HANDOVER_VERSION ||
	    take_num(&p, end, ULONG_MAX, ' ', &v[1]) == -1 ||
	    take_num(&p, end, INT_MAX, ' ', &v[2]) == -1 ||
	    take_num(&p, end, HANDOVER_MAX, ' ', &v[3]) == -1 ||
	    take_num(&p, end, UINTMAX_MAX, ' ', &v[4]) == -1 ||
	    take_num(&p, end, UINTMAX_MAX, ' ', &v[5]) == -1 ||
	    take_num(&p, end, HANDOVER_MAX, '\n', &v[6]) == -1)
		return -1;
	n = (size_t)v[6];
	/* Whole lines: it ends with a newline; the rest of a line needs
	 * one, and it is no longer than what is there. */
	if ((size_t)(end - p) != n || (n > 0 && p[n - 1] != '\n') ||
	    (v[3] > 0 && n == 0) || (v[1] > 0 && v[2] == 0))
		return -1;
	/* First, before what the new image may have queued already. */
	outbuf_add(&o, p, n);
	outbuf_add(&o, backlog(s), backlog_len(s));
	outbuf_free(&s->pend);
	s->pend = o;
	s->pend_off = 0;
	if (v[1] > 0) {
		s->dropped += (unsigned long)v[1];
		s->drop_errno = (int)v[2];
	}
	if (v[3] > 0) {
		s->frag = (size_t)v[3];
		s->dev = (dev_t)v[4];
		s->ino = (ino_t)v[5];
	}
	/* Once the loop runs the target is final: the same file still?
	 * (Before, logsink_set_fd and logsink_start look.) */
	if (s->loop && fstat(s->target, &st) == 0)
		sink_moved(s, &st);
	sink_resume(s);
	return 0;
}

int
logsink_import(struct logsink *s, int fd)
{
	struct outbuf o = { 0 };
	char buf[65536];
	ssize_t n;
	int r = -1;

	if (fd < 0)
		return -1;
	while ((n = pread(fd, buf, sizeof(buf), (off_t)o.len)) > 0 &&
	    o.len <= HANDOVER_MAX + 128)
		outbuf_add(&o, buf, (size_t)n);
	if (n == 0)
		r = logsink_import_buf(s, o.p ? o.p : "", o.len);
	outbuf_free(&o);
	close(fd);
	return r;
}
