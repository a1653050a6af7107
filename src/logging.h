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

/* Open a log file for appending, or reopen it in place of *fd. 0, or an
 * exit code with err. */
int	log_open_file(const char *path, int *fd, char *err, size_t len);

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

/* Where worker lines go (logsink.c), never blocking the loop. */
#define LOGSINK_BACKLOG_MAX	(4u << 20)	/* then lines are dropped */

struct logsink {
	struct ev_loop	*loop;
	int		 target;	/* log_file's fd, or 2 */
	int		 fd;		/* what is written: target or our own */
	bool		 shared;	/* target is not ours (fugue's stderr) */
	bool		 own_fd;	/* fd is a reopen of target */
	bool		 sock;		/* fd is a socket: MSG_DONTWAIT */
	bool		 raw;
	unsigned long	 dropped;	/* lines lost since the last success */
	int		 drop_errno;	/* EAGAIN: the backlog was full */
	struct outbuf	 out;		/* the batch being built */
	struct outbuf	 pend;		/* the backlog, from pend_off */
	size_t		 pend_off;
	ev_io		 wio;
	struct logpipe	*pipes;
};

/* Write to fd (shared: not ours to make non-blocking, e.g. stderr). */
void	logsink_set_fd(struct logsink *s, int fd, bool shared);
/* From now on, wait for a slow reader on loop instead of blocking. */
void	logsink_start(struct logsink *s, struct ev_loop *loop);
/* Write out n bytes of whole lines; worker: count them if dropped. */
void	logsink_put(struct logsink *s, const char *p, size_t n, bool worker);
/* Write out (and empty) the batch in s->out. */
void	logsink_write(struct logsink *s);
/* Wait up to ms for the backlog to be written (an exit, a re-exec). */
void	logsink_settle(struct logsink *s, int ms);
/* Settle for a second, then write blocking to the target again. */
void	logsink_end(struct logsink *s);
/* Master lines through s (NULL: to the fd of log_set_fd). */
void	log_set_sink(struct logsink *s);

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
