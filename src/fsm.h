/*
 * A worker's life as one transition function, after s6-supervise:
 * (state, event) -> (next state, actions). Pure: no I/O, no clock. The
 * supervisor (supervise.c) turns libev's callbacks into events and carries
 * out the actions; the master decides only what the events mean for the
 * worker's generation.
 */
#ifndef FUGUE_FSM_H
#define FUGUE_FSM_H

#include <stdbool.h>

#include "workers.h"

enum worker_event {
	WE_EXEC_OK,		/* the exec-error pipe closed empty */
	WE_EXEC_FAILED,		/* it carried an errno: the exit follows */
	WE_READY,		/* READY=1 (ready = notify) */
	WE_DELAY,		/* the ready delay passed (ready = DURATION) */
	WE_READY_TIMEOUT,	/* no READY=1 within ready_timeout */
	WE_PING,		/* WATCHDOG=1 */
	WE_WATCHDOG,		/* no WATCHDOG=1 for the watchdog interval */
	WE_EXIT,		/* reaped */
	WE_STOP,		/* the master wants it gone */
	WE_KILL,		/* its kill deadline passed */
	WE_RESTART,		/* its backoff delay passed */
	WE_STOPPING,		/* STOPPING=1: it asks to be replaced */
	WE_COUNT
};

/* What the supervisor does, in this order. */
enum {
	A_DISARM	= 1 << 0,	/* stop its timer */
	A_SIGNAL_STOP	= 1 << 1,	/* stop_signal, kill deadline armed */
	A_SIGNAL_KILL	= 1 << 2,	/* SIGKILL */
	A_ARM_READY	= 1 << 3,	/* timer: the ready delay or ready_timeout */
	A_MARK_READY	= 1 << 4,	/* ready from now on */
	A_ARM_WATCHDOG	= 1 << 5,	/* timer: the watchdog interval, again */
	A_FAILED_START	= 1 << 6,	/* remembered: a start that failed */
	A_RESPAWN	= 1 << 7,	/* restart its slot after the backoff */
	A_SPAWN		= 1 << 8,	/* fork it again now */
	A_FORGET	= 1 << 9,	/* remove the record */
};

/* What the transition depends on beyond (state, event). */
struct fsm_in {
	bool	notify;		/* ready = notify */
	bool	delay;		/* ready = DURATION, not 0 */
	bool	watchdog;	/* ready = notify with a watchdog */
	bool	respawn;	/* WE_EXIT: the master wants its slot back */
};

struct fsm_out {
	enum worker_state next;
	unsigned	 actions;
	bool		 ignored;	/* the event means nothing in this state */
};

struct fsm_out	 fsm_step(enum worker_state, enum worker_event,
		    const struct fsm_in *);
const char	*fsm_event_name(enum worker_event);

#endif
