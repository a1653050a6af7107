/*
 * fugue's own lines (one write each, filtered by log_level), the log files
 * they and the workers' lines go to, and the workers' output pipes, read
 * into whole lines. Everything is written through logsink.c, below.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "logging.h"
#include "logsink.h"
#include "util.h"

static int log_fd = 2;
static struct logsink *log_sink;
static int log_level = LVL_INFO;
static int log_echo;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_set_fd(int fd)
{
	log_fd = fd;
}

void
log_set_sink(struct logsink *s)
{
	log_sink = s;
}

void
log_set_level(int level)
{
	log_level = level;
}

void
log_set_echo(int on)
{
	log_echo = on;
}

void
log_timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	/* strftime, not snprintf of tm's fields: gcc -O3 cannot tell their
	 * range and warns that the result may be truncated. */
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

/* One line, one write: readers of an O_APPEND file never see it torn. */
static void
log_emit(int level, const char *errstr, const char *fmt, va_list ap)
{
	char line[2048], ts[32];
	int n, m;

	if (level > log_level)
		return;
	log_timestamp(ts, sizeof(ts));
	n = snprintf(line, sizeof(line), "%s fugue (pid %ld) %s: ", ts,
	    (long)getpid(), level_names[level]);
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 64)
		n = sizeof(line) - 64;	/* cut, but keep the error and newline */
	if (errstr)
		n += snprintf(line + n, sizeof(line) - n, ": %s", errstr);
	line[n++] = '\n';
	/* Where it cannot go, nowhere else could say so: lost. */
	if (log_sink)
		logsink_put(log_sink, line, (size_t)n, false);
	else
		logsink_write_lines(log_fd, line, (size_t)n);
	if (log_echo && level == LVL_ERROR &&
	    (log_sink ? log_sink->target : log_fd) != 2) {
		if (write(2, line, n) < 0) {
		}
	}
}

#define LOG_FN(name, level, witherr)					\
void									\
name(const char *fmt, ...)						\
{									\
	int saved = errno;						\
	va_list ap;							\
									\
	va_start(ap, fmt);						\
	log_emit(level, witherr ? strerror(saved) : NULL, fmt, ap);	\
	va_end(ap);							\
	errno = saved;							\
}

LOG_FN(log_error, LVL_ERROR, 0)
LOG_FN(log_warnx, LVL_WARN, 0)
LOG_FN(log_warn, LVL_WARN, 1)
LOG_FN(log_info, LVL_INFO, 0)
LOG_FN(log_debug, LVL_DEBUG, 0)

void
log_report_drops(struct logsink *s, unsigned long n, int err)
{
	(void)s;
	if (err == EAGAIN)
		log_warnx("%lu lines of worker output dropped: its reader was "
		    "too slow (%u KiB waiting)", n, LOGSINK_BACKLOG_MAX / 1024);
	else {
		errno = err;
		log_warn("%lu lines of worker output dropped", n);
	}
}

/* ---- log files ---- */

const char *
log_file_unfit(mode_t mode)
{
	if (S_ISREG(mode) || S_ISCHR(mode))
		return NULL;
	if (S_ISFIFO(mode))
		return "a FIFO (named pipe)";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISSOCK(mode))
		return "a socket";
	return S_ISBLK(mode) ? "a block device" : "not a regular file";
}

static int
open_refused(const char *path, const char *why, char *err, size_t len)
{
	snprintf(err, len, "log file %s: %s; a log file must be a regular "
	    "file or a character device", path, why);
	return EX_CANTCREAT_;
}

int
log_open_file(const char *path, int *fd, char *err, size_t len)
{
	struct stat st;
	const char *why;
	int nfd, fl, e;

	/* Non-blocking, or a FIFO would wait in open() for a reader. */
	nfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK, 0640);
	if (nfd == -1 || fstat(nfd, &st) == -1) {
		e = errno;
		if (nfd != -1)
			close(nfd);
		/* ENXIO: a FIFO nobody reads, a socket file. */
		if (stat(path, &st) == 0 && (why = log_file_unfit(st.st_mode)))
			return open_refused(path, why, err, len);
		snprintf(err, len, "log file %s: %s", path, strerror(e));
		return EX_CANTCREAT_;
	}
	if ((why = log_file_unfit(st.st_mode)) != NULL) {
		close(nfd);
		return open_refused(path, why, err, len);
	}
	/* A regular file never makes a writer wait; a terminal may (^S) and
	 * stays non-blocking: a stopped one costs lines, not the loop. */
	if (S_ISREG(st.st_mode) && (fl = fcntl(nfd, F_GETFL)) != -1)
		fcntl(nfd, F_SETFL, fl & ~O_NONBLOCK);
	if (*fd == -1)
		*fd = nfd;
	else {
		/* Reopen in place: the number others hold stays valid. */
		dup3(nfd, *fd, O_CLOEXEC);
		close(nfd);
	}
	return 0;
}

/* ---- worker output ---- */

static void
emit_line(const char *prefix, size_t plen, const char *a, size_t alen,
    const char *b, size_t blen, bool cut, struct outbuf *out)
{
	outbuf_add(out, prefix, plen);
	outbuf_add(out, a, alen);
	outbuf_add(out, b, blen);
	if (cut)
		outbuf_add(out, LOGLINE_CUT_MARK, sizeof(LOGLINE_CUT_MARK) - 1);
	outbuf_add(out, "\n", 1);
}

size_t
linebuf_feed(struct linebuf *lb, const char *data, size_t n,
    const char *prefix, size_t plen, struct outbuf *out)
{
	size_t lines = 0;

	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) : n;

		if (lb->len + take > LOGLINE_HOLD_MAX) {
			/* Too long to hold: out it goes, marked as cut. */
			size_t room = LOGLINE_HOLD_MAX - lb->len;

			emit_line(prefix, plen, lb->p, lb->len, data, room,
			    true, out);
			lb->len = 0;
			data += room;
			n -= room;
			lines++;
			continue;
		}
		if (nl == NULL) {
			if (lb->p == NULL)
				lb->p = xmalloc(LOGLINE_HOLD_MAX);
			memcpy(lb->p + lb->len, data, take);
			lb->len += take;
			break;
		}
		emit_line(prefix, plen, lb->p, lb->len, data, take, false, out);
		lb->len = 0;
		data += take + 1;
		n -= take + 1;
		lines++;
	}
	return lines;
}

size_t
linebuf_flush(struct linebuf *lb, const char *prefix, size_t plen,
    struct outbuf *out)
{
	if (lb->len == 0)
		return 0;
	emit_line(prefix, plen, lb->p, lb->len, "", 0, false, out);
	lb->len = 0;
	return 1;
}

void
linebuf_free(struct linebuf *lb)
{
	free(lb->p);
	lb->p = NULL;
	lb->len = 0;
}

static size_t
logpipe_prefix(const struct logpipe *lp, char *buf, size_t len)
{
	char ts[32];
	int n;

	if (lp->sink->raw)
		return 0;
	log_timestamp(ts, sizeof(ts));
	if (lp->name)
		n = snprintf(buf, len, "%s %s (pid %ld): ", ts, lp->name,
		    (long)lp->pid);
	else
		n = snprintf(buf, len, "%s worker %u (pid %ld): ", ts,
		    lp->slot, (long)lp->pid);
	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

/* The last of the lines just added to out (from off on), without its
 * prefix, for the owner (a worker that fails to start: its last words). */
static void
keep_last(struct logpipe *lp, const struct outbuf *out, size_t off,
    size_t plen)
{
	const char *end = out->p + out->len - 1, *p = end;

	if (lp->last == NULL || out->len <= off)
		return;
	while (p > out->p + off && p[-1] != '\n')
		p--;
	p += plen;
	if (p > end)
		p = end;
	snprintf(lp->last, lp->lastsz, "%.*s", (int)(end - p), p);
}

void
logpipe_flush(struct logpipe *lp)
{
	struct logsink *s = lp->sink;
	char prefix[96];
	size_t plen = logpipe_prefix(lp, prefix, sizeof(prefix));
	size_t off = s->out.len;

	if (linebuf_flush(&lp->lb, prefix, plen, &s->out)) {
		keep_last(lp, &s->out, off, plen);
		logsink_write(s);
	}
}

void
logpipe_free(struct logpipe *lp)
{
	struct logsink *s = lp->sink;

	logpipe_flush(lp);
	ev_io_stop(s->loop, &lp->io);
	close(lp->io.fd);
	linebuf_free(&lp->lb);
	free(lp->name);
	if (lp->owner)
		*lp->owner = NULL;
	lp->last = NULL;
	if (lp->prev)
		lp->prev->next = lp->next;
	else
		s->pipes = lp->next;
	if (lp->next)
		lp->next->prev = lp->prev;
	free(lp);
}

/* 1: read some, 0: nothing there now, -1: the end (lp is freed). */
static int
logpipe_read(struct logpipe *lp)
{
	static char buf[65536];
	struct logsink *s = lp->sink;
	char prefix[96];
	size_t plen, lines, off;
	ssize_t n;

	n = read(lp->io.fd, buf, sizeof(buf));
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		logpipe_free(lp);
		return -1;
	}
	plen = logpipe_prefix(lp, prefix, sizeof(prefix));
	off = s->out.len;
	lines = linebuf_feed(&lp->lb, buf, (size_t)n, prefix, plen, &s->out);
	if (lines) {
		keep_last(lp, &s->out, off, plen);
		logsink_write(s);
	}
	return 1;
}

static void
logpipe_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	logpipe_read(io->data);
}

struct logpipe *
logpipe_adopt(struct logsink *s, int fd, unsigned slot, pid_t pid)
{
	struct logpipe *lp = xcalloc(1, sizeof(*lp));

	lp->sink = s;
	lp->slot = slot;
	lp->pid = pid;
	ev_io_init(&lp->io, logpipe_cb, fd, EV_READ);
	lp->io.data = lp;
	ev_io_start(s->loop, &lp->io);
	lp->next = s->pipes;
	if (s->pipes)
		s->pipes->prev = lp;
	s->pipes = lp;
	return lp;
}

struct logpipe *
logpipe_open(struct logsink *s, unsigned slot, int *wfd)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) == -1)
		return NULL;
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	*wfd = p[1];
	return logpipe_adopt(s, p[0], slot, 0);
}

void
logpipe_drain(struct logpipe *lp)
{
	/* Bounded: a grandchild still writing does not hold us here. */
	for (int i = 0; i < 64; i++)
		if (logpipe_read(lp) != 1)
			return;
}

void
logsink_close_all(struct logsink *s)
{
	while (s->pipes) {
		struct logpipe *lp = s->pipes;

		/* Drained: either it ended (freed) or it is still first. */
		logpipe_drain(lp);
		if (s->pipes == lp)
			logpipe_free(lp);
	}
	outbuf_free(&s->out);
}
