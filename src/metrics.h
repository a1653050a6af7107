/*
 * The master's own HTTP endpoint ([master] metrics, never passed to the
 * workers): GET /metrics, /readyz and /livez. Each client sends one
 * request, gets one answer and is closed. Every client is bounded: a
 * request head of METRICS_HEAD_MAX bytes, METRICS_CLIENT_SEC from its
 * connection to the last byte of the answer, METRICS_CLIENTS at once (the
 * oldest one still sending its request makes room for a new one). Reads
 * and writes never block, and a scrape reads /proc a few workers per loop
 * iteration, when no other event waits: every worker's CPU time, and its
 * PSS within METRICS_PSS_BUDGET; a PSS older than the scrape that it had
 * no time to read is answered as last read, and read once the answer is
 * out. The master answers /metrics with a snapshot and /readyz with a
 * status and a line, through the callback.
 */
#ifndef FUGUE_METRICS_H
#define FUGUE_METRICS_H

#include <sys/queue.h>
#include <stdbool.h>
#include <stddef.h>
#include <ev.h>

#include "listen.h"
#include "logsink.h"
#include "procstat.h"
#include "promtext.h"

#define METRICS_HEAD_MAX	8192
#define METRICS_CLIENT_SEC	10.0
#define METRICS_CLIENTS		32
#define METRICS_PROC_BATCH	32	/* workers' /proc read per iteration */
#define METRICS_PSS_BUDGET	0.010	/* seconds of smaps_rollup a scrape
					 * may spend before it answers */

enum metrics_page { MP_NONE, MP_METRICS, MP_READYZ, MP_LIVEZ };

/* A request head, parsed. */
struct metrics_request {
	int		 status;	/* 200, or the error to answer */
	enum metrics_page page;
	bool		 head;		/* HEAD: the answer without its body */
};

struct metrics;

struct metrics_client {
	TAILQ_ENTRY(metrics_client) link;
	struct metrics	*mx;
	ev_io		 io;
	ev_timer	 timer;
	ev_idle		 collect;	/* a scrape reading /proc */
	char		*in;		/* the request head so far */
	size_t		 inlen;
	bool		 answering;	/* the request is whole */
	bool		 head;
	struct prom_snapshot *snap;
	double		 started;	/* the scrape (mono_now) */
	double		 pss_spent;	/* seconds spent reading PSS */
	struct outbuf	 out;
	size_t		 sent;
};
TAILQ_HEAD(metrics_clients, metrics_client);

/* /metrics or /readyz was asked for: answer with metrics_scrape or
 * metrics_reply, now. */
typedef void (*metrics_page_fn)(void *arg, struct metrics_client *c,
    enum metrics_page page);

struct metrics {
	struct ev_loop	*loop;
	struct listener	 l;		/* l.fd -1: none */
	ev_io		 io;
	ev_timer	 pause;		/* accept paused: out of fds, or full */
	struct metrics_clients clients;	/* oldest first */
	unsigned	 nclients;
	struct proccache procs;		/* the workers' /proc figures */
	ev_idle		 refresh;	/* PSS a scrape had no time for */
	size_t		 refresh_at;	/* the next entry it looks at */
	double		 refresh_before; /* it reads PSS older than this */
	metrics_page_fn	 page;
	void		*arg;
};

/* The request head in buf (n bytes, NUL bytes are bad): 0 while it is not
 * whole, else 1 with *r filled. Pure: unit-tested. */
int	metrics_parse(const char *buf, size_t n, struct metrics_request *r);

/* Bind a (TCP or UNIX, as a listener) for the endpoint. 0, or an exit
 * code (75 in use, 73, 71) with err. */
int	metrics_open(struct listener *l, const struct address *a, char *err,
	    size_t len);
/* Serve mx->l (fd -1: nothing) from loop. */
void	metrics_start(struct metrics *mx, struct ev_loop *loop,
	    metrics_page_fn page, void *arg);
/* Answer status with text (text/plain). */
void	metrics_reply(struct metrics_client *c, int status, const char *text);
/* Answer with the Prometheus text of s (taken, freed with the client),
 * once /proc has been read for its workers. */
void	metrics_scrape(struct metrics_client *c, struct prom_snapshot *s);
/*
 * Across an upgrade's exec: the clients answered nothing yet, each with
 * the bytes of its request read so far (malloc'd; a client whose bytes
 * hold a NUL is left out, as is one answered in part: the exec cuts it).
 * Nothing changes here. The new image adopts each one, after
 * metrics_start, to be answered once its loop runs.
 */
struct metrics_pending {
	int		 fd;
	char		*in;
};
size_t	metrics_pending(const struct metrics *mx, struct metrics_pending **);
void	metrics_adopt_client(struct metrics *mx, int fd, const char *in);
/* Close the socket and every client; with unlink_file, remove a UNIX
 * socket file still ours. */
void	metrics_close(struct metrics *mx, bool unlink_file);

#endif
