/*
 * The lowest layer of logging: where lines are written (log_file, or
 * fugue's stderr) without ever blocking the loop, and the byte buffers
 * they are built in. It calls nothing of the layers above; what it lost it
 * says through the report callback its owner gives it.
 */
#ifndef FUGUE_LOGSINK_H
#define FUGUE_LOGSINK_H

#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <ev.h>

#include "lines.h"


#define LOGSINK_BACKLOG_MAX	(4u << 20)	/* then lines are dropped */
#define LOGSINK_OWN_MAX		(256u << 10)	/* past it, fugue's own lines */
#define LOGSINK_RETRY_MS	1000	/* a failed write is tried again */

struct logsink;
struct logpipe;

/* Lines of worker output dropped since the last report, and why (EAGAIN:
 * the reader was too slow); called once writing works again. */
typedef void	logsink_report_fn(struct logsink *, unsigned long lines,
		    int err);

struct logsink {
	struct ev_loop	*loop;
	int		 target;	/* log_file's fd, or 2 */
	int		 fd;		/* what is written: target or our own */
	bool		 shared;	/* target is not ours (fugue's stderr) */
	bool		 own_fd;	/* fd is a reopen of target */
	bool		 sock;		/* fd is a socket: MSG_DONTWAIT */
	bool		 raw;
	dev_t		 dev;		/* the target's file, where frag went */
	ino_t		 ino;
	unsigned long	 dropped;	/* lines lost since the last report */
	unsigned long long dropped_total;	/* and since fugue started */
	int		 drop_errno;	/* EAGAIN: the backlog was full */
	int		 fail;		/* a write failed (errno); retried */
	size_t		 frag;		/* bytes of a line written without its
					 * end: the backlog begins with the rest */
	logsink_report_fn *report;
	struct outbuf	 out;		/* the batch being built */
	struct outbuf	 pend;		/* the backlog, from pend_off */
	size_t		 pend_off;
	ev_io		 wio;
	ev_timer	 retry;
	struct logpipe	*pipes;		/* the layer above's (logging.h) */
};

/* An empty sink writing to fugue's stderr; report may be NULL. */
void	logsink_init(struct logsink *s, logsink_report_fn *report);
/* Write to fd (shared: not ours to make non-blocking, e.g. stderr). */
void	logsink_set_fd(struct logsink *s, int fd, bool shared);
/* From now on, wait for a slow reader on loop instead of blocking. */
void	logsink_start(struct logsink *s, struct ev_loop *loop);
/* Write out n bytes of whole lines; worker: count them if dropped. */
void	logsink_put(struct logsink *s, const char *p, size_t n, bool worker);
/* Write out (and empty) the batch in s->out. */
void	logsink_write(struct logsink *s);
/* Wait up to ms for the backlog to be written (an exit). */
void	logsink_settle(struct logsink *s, int ms);
/* Settle for a second, then write blocking to the target again. */
void	logsink_end(struct logsink *s);

/*
 * Across an upgrade's exec. Export: what is not written yet (the rest of a
 * line already partly written first, then whole lines) and the lines
 * dropped but not yet reported, into a new memfd (close-on-exec: the
 * caller clears that for the exec); *memfd is -1 when there is nothing to
 * hand over. The sink is left as it was (for an exec that fails): nothing
 * may go through it between the export and the exec. 0, or -1 with errno.
 * Import, in the new image, before anything is written through s: queue
 * it ahead of everything else and take over the count; fd is closed.
 * 0, or -1 (unreadable or malformed: nothing taken).
 */
int	logsink_export(struct logsink *s, int *memfd);
int	logsink_import(struct logsink *s, int fd);
/* Import from the exported bytes themselves (what logsink_import reads). */
int	logsink_import_buf(struct logsink *s, const char *buf, size_t len);


#endif
