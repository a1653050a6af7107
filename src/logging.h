/* fugue's own log lines: "2026-11-24T21:05:00.123Z fugue (pid 1234) info:
 * ...", one write each, filtered by log_level. */
#ifndef FUGUE_LOGGING_H
#define FUGUE_LOGGING_H

#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <ev.h>

/* Where master lines go (fd, default 2) and the lowest level written. */
void	log_set_fd(int fd);
void	log_set_level(int level);
/* Also write error lines to stderr (start-up, before the loop runs). */
void	log_set_echo(int on);

void	log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
/* log_warn: appends ": strerror(errno)" */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));

/* "2026-11-24T21:05:00.123Z" into buf (at least 25 bytes). */
void	log_timestamp(char *buf, size_t len);

/*
 * Worker output: one pipe per worker, read by the master and written out
 * as whole lines only, many per write, each behind a prefix
 * ("<time> worker 2 (pid 5678): ") unless raw.
 */
#define LOGLINE_HOLD_MAX	16384	/* a longer partial line is cut */
#define LOGLINE_CUT_MARK	" [...]"

struct outbuf {
	char	*p;
	size_t	 len, cap;
};

struct linebuf {
	char	*p;		/* a partial line, held until its newline */
	size_t	 len;
};

/* Append to out every whole line of data after what lb holds, each behind
 * prefix; keep the rest in lb. Returns the number of lines appended. */
size_t	linebuf_feed(struct linebuf *lb, const char *data, size_t n,
	    const char *prefix, size_t plen, struct outbuf *out);
/* The held partial line, ended (the worker is gone). Lines appended. */
size_t	linebuf_flush(struct linebuf *lb, const char *prefix, size_t plen,
	    struct outbuf *out);
void	linebuf_free(struct linebuf *lb);
void	outbuf_add(struct outbuf *o, const char *s, size_t n);
void	outbuf_free(struct outbuf *o);
/* Append a formatted string (cut at 1 KiB). */
void	outbuf_printf(struct outbuf *o, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

struct logsink;

struct logpipe {
	struct logpipe	*next, *prev;
	struct logsink	*sink;
	ev_io		 io;
	struct linebuf	 lb;
	unsigned	 slot;
	pid_t		 pid;
	void		**owner;	/* cleared when the pipe ends */
};

/* Where worker lines go. */
struct logsink {
	struct ev_loop	*loop;
	int		 fd;
	bool		 raw;
	unsigned long	 dropped;	/* lines lost since the last success */
	int		 drop_errno;
	struct outbuf	 out;
	struct logpipe	*pipes;
};

/* A new pipe for a worker of slot: the read end is watched, the write end
 * (close-on-exec, for the child to dup) returned in *wfd. NULL on error. */
struct logpipe *logpipe_open(struct logsink *s, unsigned slot, int *wfd);
/* Adopt an existing read end (after an upgrade). */
struct logpipe *logpipe_adopt(struct logsink *s, int fd, unsigned slot,
	    pid_t pid);
/* Read what is there now (the worker just exited); the pipe stays open
 * until every writer (grandchildren too) is gone. */
void	logpipe_drain(struct logpipe *lp);
/* Write out its partial line as a whole one. */
void	logpipe_flush(struct logpipe *lp);
/* Flush its partial line and close it. */
void	logpipe_free(struct logpipe *lp);
/* Flush every held partial line and close every pipe (the end). */
void	logsink_close_all(struct logsink *s);

#endif
