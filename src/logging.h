/* fugue's own log lines: "2026-11-24T21:05:00.123Z fugue (pid 1234) info:
 * ...", one write each, filtered by log_level; the log files; the workers'
 * output pipes. Lines are written through logsink.h, the layer below. */
#ifndef FUGUE_LOGGING_H
#define FUGUE_LOGGING_H

#include <sys/stat.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <ev.h>

#include "logsink.h"

/* Where master lines go (fd, default 2) and the lowest level written. */
void	log_set_fd(int fd);
/* Master lines through s instead (NULL: to the fd of log_set_fd). */
void	log_set_sink(struct logsink *s);
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

/* A sink's report of the worker lines it dropped, as a warning line (the
 * report callback of logsink_init). */
void	log_report_drops(struct logsink *s, unsigned long lines, int err);

/*
 * Open a log file (log_file, master_log_file) for appending, created 0640
 * if missing. Never waits: a FIFO, a socket or a directory is refused (a
 * FIFO would block in open until a reader comes); a regular file or a
 * character device (/dev/null, a terminal: left non-blocking) is taken.
 * With *fd == -1 the new fd goes there, else it replaces *fd in place (a
 * reopen: *fd stays valid, and on an error stays what it was). Returns 0,
 * or 73 with err ("log file PATH: why").
 */
int	log_open_file(const char *path, int *fd, char *err, size_t len);
/* Why a file of this type cannot be a log file, or NULL if it can. */
const char *log_file_unfit(mode_t mode);

/*
 * Worker output: one pipe per worker, read by the master and written out
 * as whole lines only, many per write, each behind a prefix
 * ("<time> worker 2 (pid 5678): ") unless raw.
 */
#define LOGLINE_HOLD_MAX	16384	/* a longer partial line is cut */
#define LOGLINE_CUT_MARK	" [...]"

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

struct logpipe {
	struct logpipe	*next, *prev;
	struct logsink	*sink;
	ev_io		 io;
	struct linebuf	 lb;
	unsigned	 slot;
	pid_t		 pid;
	char		*name;		/* the prefix's "hook NAME" instead of
					 * "worker SLOT" (malloc'd), or NULL */
	void		**owner;	/* cleared when the pipe ends */
	char		*last;		/* the owner's copy of the last line
					 * read (lastsz bytes), or NULL */
	size_t		 lastsz;
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
