/*
 * Byte buffers and whole lines: what the log sink and the state are built
 * in, and the writes that never leave part of a line in a file.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lines.h"
#include "util.h"

/* ---- buffers ---- */

void
outbuf_add(struct outbuf *o, const char *s, size_t n)
{
	if (n == 0)
		return;
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;

		while (cap < o->len + n)
			cap *= 2;
		o->p = xrealloc(o->p, cap);
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

void
outbuf_vprintf(struct outbuf *o, const char *fmt, va_list ap)
{
	char buf[1024];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);

	if (n > 0)
		outbuf_add(o, buf, (size_t)n < sizeof(buf) ? (size_t)n :
		    sizeof(buf) - 1);
}

void
outbuf_printf(struct outbuf *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	outbuf_vprintf(o, fmt, ap);
	va_end(ap);
}

void
outbuf_free(struct outbuf *o)
{
	free(o->p);
	memset(o, 0, sizeof(*o));
}

/* ---- lines ---- */

int
outbuf_send(int fd, const struct outbuf *o, size_t *sent)
{
	ssize_t n;

	while (*sent < o->len) {
		n = send(fd, o->p + *sent, o->len - *sent, MSG_NOSIGNAL |
		    MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		*sent += (size_t)n;
	}
	return 1;
}

size_t
lines_count(const char *p, size_t n)
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

size_t
lines_end(const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);

	return nl ? (size_t)(nl - p) + 1 : n;
}

bool
lines_cut_back(int fd, size_t frag)
{
	struct stat st;
	off_t end;

	if (frag == 0)
		return true;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (end = lseek(fd, 0, SEEK_CUR)) == -1 || st.st_size != end ||
	    (off_t)frag > end)
		return false;
	return ftruncate(fd, end - (off_t)frag) == 0;
}

int
logsink_write_lines(int fd, const char *p, size_t n)
{
	const char *nl;
	size_t done = 0;
	ssize_t w;
	int e;

	while (done < n) {
		do
			w = write(fd, p + done, n - done);
		while (w == -1 && errno == EINTR);
		if (w <= 0) {
			e = w == 0 ? EIO : errno;
			/* Part of a line went in: take it back. */
			nl = done ? memrchr(p, '\n', done) : NULL;
			lines_cut_back(fd, nl ? done - (size_t)(nl - p) - 1 : done);
			errno = e;
			return -1;
		}
		done += (size_t)w;
	}
	return 0;
}
