/*
 * The worker state machine. The table says what each event does in each
 * state; three rules below it fill in what depends on the configuration or
 * on the master's wish:
 *   - exec ok with ready = 0 (no delay, no notify): ready at once;
 *   - READY=1 counts only with ready = notify;
 *   - an exit restarts the slot (backoff) when the master wants it back,
 *     else the record goes.
 * A worker that becomes ready with a watchdog gets its timer armed.
 */
#include "fsm.h"

#define S_(s)	W_##s
#define IGNORE	{ 0, 0, true }

/* next state, actions; an IGNORE entry keeps the state */
static const struct fsm_out table[W_GONE][WE_COUNT] = {
	[W_STARTING] = {
		[WE_EXEC_OK]	   = { S_(STARTING), A_ARM_READY, false },
		[WE_EXEC_FAILED]   = { S_(STARTING), 0, false },
		[WE_READY]	   = { S_(READY), A_DISARM | A_MARK_READY, false },
		[WE_DELAY]	   = { S_(READY), A_DISARM | A_MARK_READY, false },
		[WE_READY_TIMEOUT] = { S_(DRAINING), A_DISARM | A_FAILED_START |
				       A_SIGNAL_STOP, false },
		[WE_PING]	   = IGNORE,
		[WE_WATCHDOG]	   = IGNORE,
		[WE_EXIT]	   = { S_(GONE), A_DISARM | A_FORGET, false },
		[WE_STOP]	   = { S_(DRAINING), A_DISARM | A_SIGNAL_STOP, false },
		[WE_KILL]	   = IGNORE,
		[WE_RESTART]	   = IGNORE,
		[WE_STOPPING]	   = IGNORE,
	},
	[W_READY] = {
		[WE_EXEC_OK]	   = IGNORE,
		[WE_EXEC_FAILED]   = IGNORE,
		[WE_READY]	   = IGNORE,
		[WE_DELAY]	   = IGNORE,
		[WE_READY_TIMEOUT] = IGNORE,
		[WE_PING]	   = { S_(READY), A_ARM_WATCHDOG, false },
		[WE_WATCHDOG]	   = { S_(READY), A_DISARM | A_SIGNAL_KILL, false },
		[WE_EXIT]	   = { S_(GONE), A_DISARM | A_FORGET, false },
		[WE_STOP]	   = { S_(DRAINING), A_DISARM | A_SIGNAL_STOP, false },
		[WE_KILL]	   = IGNORE,
		[WE_RESTART]	   = IGNORE,
		[WE_STOPPING]	   = { S_(READY), 0, false },
	},
	[W_DRAINING] = {
		[WE_EXEC_OK]	   = IGNORE,
		[WE_EXEC_FAILED]   = IGNORE,
		[WE_READY]	   = IGNORE,
		[WE_DELAY]	   = IGNORE,
		[WE_READY_TIMEOUT] = IGNORE,
		[WE_PING]	   = IGNORE,
		[WE_WATCHDOG]	   = IGNORE,
		[WE_EXIT]	   = { S_(GONE), A_DISARM | A_FORGET, false },
		[WE_STOP]	   = IGNORE,	/* keeps its earlier deadline */
		[WE_KILL]	   = { S_(DRAINING), A_SIGNAL_KILL, false },
		[WE_RESTART]	   = IGNORE,
		[WE_STOPPING]	   = IGNORE,
	},
	[W_BACKOFF] = {
		[WE_EXEC_OK]	   = IGNORE,
		[WE_EXEC_FAILED]   = IGNORE,
		[WE_READY]	   = IGNORE,
		[WE_DELAY]	   = IGNORE,
		[WE_READY_TIMEOUT] = IGNORE,
		[WE_PING]	   = IGNORE,
		[WE_WATCHDOG]	   = IGNORE,
		[WE_EXIT]	   = IGNORE,	/* it has no process */
		[WE_STOP]	   = { S_(GONE), A_DISARM | A_FORGET, false },
		[WE_KILL]	   = IGNORE,
		[WE_RESTART]	   = { S_(STARTING), A_SPAWN, false },
		[WE_STOPPING]	   = IGNORE,
	},
};

struct fsm_out
fsm_step(enum worker_state s, enum worker_event e, const struct fsm_in *in)
{
	struct fsm_out o;

	if (s >= W_GONE || e >= WE_COUNT || table[s][e].ignored) {
		o.next = s;
		o.actions = 0;
		o.ignored = true;
		return o;
	}
	o = table[s][e];
	if (s == W_STARTING && e == WE_EXEC_OK && !in->notify && !in->delay) {
		o.next = W_READY;
		o.actions = A_MARK_READY;
	}
	if (s == W_STARTING && e == WE_READY && !in->notify) {
		o.next = s;
		o.actions = 0;
		o.ignored = true;
		return o;
	}
	if (e == WE_EXIT && in->respawn) {
		o.next = W_BACKOFF;
		o.actions = A_DISARM | A_RESPAWN;
	}
	if ((o.actions & A_MARK_READY) && in->watchdog)
		o.actions |= A_ARM_WATCHDOG;
	return o;
}

const char *
fsm_event_name(enum worker_event e)
{
	static const char *const names[WE_COUNT] = {
		"exec ok", "exec failed", "READY=1", "ready delay",
		"ready_timeout", "WATCHDOG=1", "watchdog missed", "exit", "stop",
		"kill deadline", "restart", "STOPPING=1",
	};

	return e < WE_COUNT ? names[e] : "?";
}
