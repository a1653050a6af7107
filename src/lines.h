/* Byte buffers and whole lines (lines.c). */
#ifndef FUGUE_LINES_H
#define FUGUE_LINES_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct outbuf {
	char	*p;
	size_t	 len, cap;
};

void	outbuf_add(struct outbuf *o, const char *s, size_t n);
void	outbuf_free(struct outbuf *o);
/* Append a formatted string (cut at 1 KiB). */
void	outbuf_printf(struct outbuf *o, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	outbuf_vprintf(struct outbuf *o, const char *fmt, va_list ap)
	    __attribute__((format(printf, 2, 0)));

/* Send o from *sent on, to a socket, never waiting: 1 all sent, 0 the
 * socket is full (EAGAIN: wait until writable), -1 failed. */
int	outbuf_send(int fd, const struct outbuf *o, size_t *sent);
/* Newlines in p. */
size_t	lines_count(const char *p, size_t n);
/* Bytes of p up to and including its first newline (all if none). */
size_t	lines_end(const char *p, size_t n);
/*
 * The last frag bytes written to fd, a regular file, are the start of a
 * line whose end had no room: cut them off again, so that the file holds
 * whole lines only. Only if nobody wrote after them: the file ends where
 * our own write did.
 */
bool	lines_cut_back(int fd, size_t frag);
/* One write of whole lines to fd, blocking as fd is (master_log_file): a
 * regular file never keeps part of a line the disk had no room for.
 * 0, or -1 with errno. */
int	logsink_write_lines(int fd, const char *p, size_t n);

#endif
