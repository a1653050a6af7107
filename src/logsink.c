/*
 * Where worker lines (and, without master_log_file, fugue's own) are
 * written: log_file, or fugue's stderr. Never blocking the loop: what a
 * slow reader (a terminal on ^S, a pipe nobody reads quickly) does not take
 * waits in a backlog of up to LOGSINK_BACKLOG_MAX bytes, written as the
 * reader takes it; past that, and on a failed write (disk full), lines are
 * dropped and counted, and the count is logged once writing works again.
 *
 * fugue's stderr is shared with whoever started it, so it is not made
 * non-blocking in place: a pipe or terminal is opened again through
 * /proc/self/fd/2 (a description of fugue's own), a socket (the journal)
 * is written with MSG_DONTWAIT. A regular file never makes a writer wait.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logging.h"
#include "util.h"

static size_t
count_lines(const char *p, size_t n)
{
	size_t lines = 0;
	const char *nl;

	while (n > 0 && (nl = memchr(p, '\n', n)) != NULL) {
		lines++;
		n -= (size_t)(nl - p) + 1;
		p = nl + 1;
	}
	return lines;
}

static ssize_t
sink_out(struct logsink *s, const char *p, size_t n)
{
	ssize_t w;

	do
		w = s->sock ? send(s->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) :
		    write(s->fd, p, n);
	while (w == -1 && errno == EINTR);
	return w;
}

static size_t
backlog_len(const struct logsink *s)
{
	return s->pend.len - s->pend_off;
}

static void
drop(struct logsink *s, const char *p, size_t n, int err)
{
	s->dropped += count_lines(p, n);
	s->drop_errno = err;
}

static void
report_drops(struct logsink *s)
{
	unsigned long n = s->dropped;

	if (n == 0)
		return;
	s->dropped = 0;
	if (s->drop_errno == EAGAIN)
		log_warnx("%lu lines of worker output dropped: its reader was "
		    "too slow (%u KiB waiting)", n, LOGSINK_BACKLOG_MAX / 1024);
	else {
		errno = s->drop_errno;
		log_warn("%lu lines of worker output dropped", n);
	}
}

static void
backlog_clear(struct logsink *s)
{
	if (s->loop)
		ev_io_stop(s->loop, &s->wio);
	s->pend.len = s->pend_off = 0;
	if (s->pend.cap > 65536)
		outbuf_free(&s->pend);	/* a burst: give the memory back */
}

/* Write what waits: 1 all written, 0 the rest waits, -1 failed (the rest
 * is dropped). */
static int
backlog_write(struct logsink *s)
{
	while (backlog_len(s) > 0) {
		const char *p = s->pend.p + s->pend_off;
		ssize_t w = sink_out(s, p, backlog_len(s));

		if (w == -1 && errno == EAGAIN)
			return 0;
		if (w <= 0) {
			drop(s, p, backlog_len(s), w == -1 ? errno : EIO);
			backlog_clear(s);
			return -1;
		}
		s->pend_off += (size_t)w;
	}
	backlog_clear(s);
	return 1;
}

static void
wio_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct logsink *s = io->data;

	(void)loop;
	(void)revents;
	if (backlog_write(s) == 1)
		report_drops(s);
}

void
logsink_put(struct logsink *s, const char *p, size_t n, bool worker)
{
	ssize_t w;

	if (n == 0)
		return;
	if (backlog_len(s) > 0) {
		/* Behind what waits, to keep the order; or dropped. */
		if (backlog_len(s) + n > LOGSINK_BACKLOG_MAX) {
			if (worker)
				drop(s, p, n, EAGAIN);
		} else
			outbuf_add(&s->pend, p, n);
		return;
	}
	while (n > 0) {
		w = sink_out(s, p, n);
		if (w == -1 && errno == EAGAIN && s->loop) {
			outbuf_add(&s->pend, p, n);
			ev_io_set(&s->wio, s->fd, EV_WRITE);
			ev_io_start(s->loop, &s->wio);
			return;
		}
		if (w <= 0) {
			if (worker)
				drop(s, p, n, w == -1 ? errno : EIO);
			return;
		}
		p += w;
		n -= (size_t)w;
	}
	report_drops(s);
}

void
logsink_write(struct logsink *s)
{
	logsink_put(s, s->out.p, s->out.len, true);
	s->out.len = 0;
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
	if (s->loop == NULL || fstat(s->target, &st) == -1 ||
	    S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
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

void
logsink_set_fd(struct logsink *s, int fd, bool shared)
{
	bool waiting = s->loop && ev_is_active(&s->wio);

	if (waiting)
		ev_io_stop(s->loop, &s->wio);
	s->target = fd;
	s->shared = shared;
	sink_prepare(s);
	if (waiting) {
		ev_io_set(&s->wio, s->fd, EV_WRITE);
		ev_io_start(s->loop, &s->wio);
	}
}

void
logsink_start(struct logsink *s, struct ev_loop *loop)
{
	s->loop = loop;
	ev_init(&s->wio, wio_cb);
	s->wio.data = s;
	sink_prepare(s);
}

void
logsink_settle(struct logsink *s, int ms)
{
	double end = mono_now() + ms / 1000.0;
	struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };
	bool reported = false;

	for (;;) {
		while (backlog_len(s) > 0) {
			int left = (int)((end - mono_now()) * 1000);

			if (left <= 0 || poll(&pfd, 1, left) <= 0) {
				drop(s, s->pend.p + s->pend_off,
				    backlog_len(s), EAGAIN);
				backlog_clear(s);
				return;
			}
			if (backlog_write(s) == -1)
				return;
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
	logsink_settle(s, 1000);
	outbuf_free(&s->pend);
	if (s->own_fd)
		close(s->fd);
	s->own_fd = false;
	s->fd = s->target;
	s->loop = NULL;
}
