/*
 * The supervisor of worker processes: the worker table, and for each worker
 * its process, exec-error pipe, output pipe and timer. libev's callbacks
 * become events of the state machine (fsm.c), whose actions it carries
 * out; every transition is reported to the master, which alone decides
 * what it means for the worker's generation.
 */
#ifndef FUGUE_SUPERVISE_H
#define FUGUE_SUPERVISE_H

#include <stdint.h>
#include <ev.h>

#include "fsm.h"
#include "gen.h"
#include "logging.h"
#include "notify.h"
#include "workers.h"

struct supervisor;

/* A transition happened: w went from `from` to w->state on e. A worker in
 * W_GONE is removed right after. */
typedef void (*sv_report_fn)(void *arg, struct worker *w,
    enum worker_event e, enum worker_state from);

struct supervisor {
	struct ev_loop	*loop;
	struct worker_table wt;
	struct logsink	*sink;
	sv_report_fn	 report;
	void		*arg;
	char		 why[256];	/* the last reason a worker failed */
	int		 exec_stage;	/* the last exec failure, logged once */
	int		 exec_errno;
};

void	sv_init(struct supervisor *, struct ev_loop *, struct logsink *,
	    sv_report_fn, void *arg);
/* A new worker of g in slot, forked now. */
struct worker *sv_start(struct supervisor *, struct generation *g,
	    unsigned slot);
/* Stop it: stop_signal of its own generation, SIGKILL after kill_ms (-1:
 * no deadline of its own). A worker waiting to restart just goes. */
void	sv_stop(struct supervisor *, struct worker *, int64_t kill_ms);
/* sv_kill every worker that has a process. */
void	sv_kill_all(struct supervisor *);
/* It was reaped with status; respawn: the master wants its slot back. */
void	sv_exited(struct supervisor *, struct worker *, int status,
	    bool respawn);
/* Read g's notify socket from the loop, before any timer due. */
void	sv_watch_notify(struct supervisor *, struct generation *g);
/* Read every message waiting on g's notify socket or its workers' ready
 * pipes (bounded). */
void	sv_notify_read(struct supervisor *, struct generation *g);
/* A record of g in slot with no process yet (an upgrade fills it in). */
struct worker *sv_add(struct supervisor *, struct generation *g,
	    unsigned slot);
/* Watch an adopted worker: its exec pipe (-1 none) and its timer (ms
 * left, -1 none), once its fields are filled in. */
void	sv_resume(struct supervisor *, struct worker *, int execfd,
	    int64_t timer_ms);
/* SIGKILL to its process group (kill_mode mixed, group) or to it alone
 * (process); only for an unreaped child. */
void	sv_kill(struct worker *);
/* ready = fd: watch w's pipe (an adopted worker's too); close it. */
void	sv_ready_watch(struct supervisor *, struct worker *, int fd);
void	sv_ready_close(struct supervisor *, struct worker *);
void	sv_free(struct supervisor *);

void	describe_status(int status, char *buf, size_t len);

#endif
