/* The worker table: one record per worker process or pending restart, with
 * its slot, generation and state; the crash-loop backoff. No I/O here. */
#ifndef FUGUE_WORKERS_H
#define FUGUE_WORKERS_H

#include <sys/queue.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stdint.h>
#include <ev.h>

/* The values are part of the upgrade state: append only. */
enum worker_state {
	W_STARTING,	/* forked; exec or readiness pending */
	W_READY,	/* serving */
	W_DRAINING,	/* got stop_signal; SIGKILL at its deadline */
	W_BACKOFF,	/* exited; its slot restarts when the timer fires */
	W_GONE,		/* exited for good: the record is removed */
};

/* Why a worker process ended, for the exit counters. The names cross an
 * upgrade: append only. */
enum worker_exit {
	WX_STOPPED,		/* after fugue's stop signal */
	WX_KILLED,		/* SIGKILL from fugue: kill_timeout passed */
	WX_READY_TIMEOUT,	/* stopped for not being ready in time */
	WX_WATCHDOG,		/* SIGKILL from fugue: no WATCHDOG=1 */
	WX_EXEC_FAILED,		/* its command could not be executed */
	WX_EXITED,		/* exited by itself */
	WX_SIGNALED,		/* killed by a signal fugue did not send */
	WX_COUNT
};

struct generation;

#define WORKER_RLINE	256	/* a ready = fd line; longer: cut */

struct worker {
	TAILQ_ENTRY(worker) link;
	pid_t		 pid;		/* 0 in W_BACKOFF */
	unsigned	 slot;		/* FUGUE_WORKER_ID */
	unsigned	 gen;		/* FUGUE_GENERATION */
	struct generation *g;		/* that generation, while it lives */
	enum worker_state state;
	bool		 exec_ok;	/* the exec-error pipe closed empty */
	bool		 failed_start;	/* stopped for not getting ready */
	bool		 killed;	/* fugue sent its process SIGKILL */
	enum worker_exit exit_reason;	/* why its last process ended */
	double		 started;	/* fork time (mono_now) */
	double		 ready_at;	/* 0 until ready */
	double		 pinged;	/* last WATCHDOG=1 (mono_now) */
	unsigned	 restarts;	/* respawns of this slot */
	int		 last_status;	/* wait status of the last exit, -1 none */
	unsigned	 backoff_ms;	/* delay of the next restart */
	void		*sv;		/* its supervisor, for the watchers */
	ev_timer	 timer;		/* readiness, backoff or kill deadline */
	ev_io		 execio;	/* read end of the exec-error pipe */
	ev_io		 readyio;	/* ready = fd: its pipe's read end */
	unsigned	 rlen;		/* bytes of a line in rline */
	bool		 rskip;		/* rest of an overlong line: skipped */
	char		*rline;		/* WORKER_RLINE bytes, ready = fd only */
	void		*out;		/* its output pipe (struct logpipe) */
	char		 last_line[120];	/* the last line it wrote */
	double		 recycle_at;	/* max_lifetime: due then; 0 never */
	bool		 retiring;	/* being replaced: its successor starts */
	char		 retire_why[96];
	uint64_t	 pss;		/* memory of its group, bytes; 0 unknown */
};

TAILQ_HEAD(worker_list, worker);

struct worker_table {
	struct worker_list list;
	unsigned	 n;
};

/* The first restart delay of a crash loop, and how long a worker must stay
 * ready before its next exit counts as a clean one. */
#define BACKOFF_FIRST_MS	100
#define BACKOFF_STABLE_SEC	1.0

void		 workers_init(struct worker_table *);
struct worker	*workers_add(struct worker_table *, unsigned slot, unsigned gen);
void		 workers_remove(struct worker_table *, struct worker *);
struct worker	*workers_find_pid(const struct worker_table *, pid_t);
struct worker	*workers_find_slot(const struct worker_table *, unsigned gen,
		    unsigned slot);
/* Lowest slot below target with no live record in gen; -1 if all taken. */
int		 workers_free_slot(const struct worker_table *, unsigned gen,
		    unsigned target);
/* Records of gen in any of the states in mask (1 << W_READY | ...). */
unsigned	 workers_count(const struct worker_table *, unsigned gen,
		    unsigned mask);
unsigned	 workers_count_all(const struct worker_table *, unsigned mask);
#define WS(s)	(1u << (s))
#define WS_LIVE	(WS(W_STARTING) | WS(W_READY) | WS(W_DRAINING))
#define WS_ANY	(WS_LIVE | WS(W_BACKOFF))
#define GEN_ANY	0u

/*
 * Delay before restarting a slot whose worker just exited: 0 when the
 * worker had stayed ready for BACKOFF_STABLE_SEC, else the previous delay
 * doubled (starting at BACKOFF_FIRST_MS), capped at max_ms.
 */
unsigned	 workers_backoff(unsigned prev_ms, bool was_ready,
		    double ready_for, unsigned max_ms);

const char	*worker_state_name(enum worker_state);

/* Why a process that left state `from` ended with wait status. */
enum worker_exit workers_exit_reason(enum worker_state from, bool exec_ok,
		    bool failed_start, bool killed, int status);
const char	*worker_exit_name(enum worker_exit);

#endif
