#include <sys/wait.h>

#include <stdlib.h>

#include "util.h"
#include "workers.h"

void
workers_init(struct worker_table *t)
{
	TAILQ_INIT(&t->list);
	t->n = 0;
}

struct worker *
workers_add(struct worker_table *t, unsigned slot, unsigned gen)
{
	struct worker *w = xcalloc(1, sizeof(*w));

	w->slot = slot;
	w->gen = gen;
	w->state = W_STARTING;
	w->last_status = -1;
	TAILQ_INSERT_TAIL(&t->list, w, link);
	t->n++;
	return w;
}

void
workers_remove(struct worker_table *t, struct worker *w)
{
	TAILQ_REMOVE(&t->list, w, link);
	t->n--;
	free(w->rline);
	free(w);
}

struct worker *
workers_find_pid(const struct worker_table *t, pid_t pid)
{
	struct worker *w;

	if (pid <= 0)
		return NULL;
	TAILQ_FOREACH(w, &t->list, link)
		if (w->pid == pid)
			return w;
	return NULL;
}

struct worker *
workers_find_slot(const struct worker_table *t, unsigned gen, unsigned slot)
{
	struct worker *w;

	TAILQ_FOREACH(w, &t->list, link)
		if (w->gen == gen && w->slot == slot &&
		    w->state != W_DRAINING && !w->retiring)
			return w;
	return NULL;
}

int
workers_free_slot(const struct worker_table *t, unsigned gen, unsigned target)
{
	struct worker *w;
	unsigned char *used;
	int slot = -1;

	/* One pass over the table, not one per slot: count may be 10000. */
	used = xcalloc(target ? target : 1, 1);
	TAILQ_FOREACH(w, &t->list, link)
		if (w->gen == gen && w->state != W_DRAINING && !w->retiring &&
		    w->slot < target)
			used[w->slot] = 1;
	for (unsigned s = 0; s < target; s++)
		if (!used[s]) {
			slot = (int)s;
			break;
		}
	free(used);
	return slot;
}

unsigned
workers_count(const struct worker_table *t, unsigned gen, unsigned mask)
{
	struct worker *w;
	unsigned n = 0;

	TAILQ_FOREACH(w, &t->list, link)
		if ((gen == GEN_ANY || w->gen == gen) && (mask & WS(w->state)))
			n++;
	return n;
}

unsigned
workers_count_all(const struct worker_table *t, unsigned mask)
{
	return workers_count(t, GEN_ANY, mask);
}

unsigned
workers_backoff(unsigned prev_ms, bool was_ready, double ready_for,
    unsigned max_ms)
{
	unsigned next;

	if (was_ready && ready_for >= BACKOFF_STABLE_SEC)
		return 0;
	if (prev_ms == 0)
		next = BACKOFF_FIRST_MS;
	else if (prev_ms > max_ms / 2)
		next = max_ms;
	else
		next = prev_ms * 2;
	return next < max_ms ? next : max_ms;
}

const char *
worker_state_name(enum worker_state s)
{
	switch (s) {
	case W_STARTING:
		return "starting";
	case W_READY:
		return "ready";
	case W_DRAINING:
		return "draining";
	case W_BACKOFF:
		return "backoff";
	case W_GONE:
		return "gone";
	}
	return "?";
}

enum worker_exit
workers_exit_reason(enum worker_state from, bool exec_ok, bool failed_start,
    bool killed, int status)
{
	if (from == W_DRAINING) {
		if (failed_start)
			return WX_READY_TIMEOUT;
		return killed ? WX_KILLED : WX_STOPPED;
	}
	if (!exec_ok)
		return WX_EXEC_FAILED;
	if (killed)		/* only the watchdog kills a running worker */
		return WX_WATCHDOG;
	return WIFSIGNALED(status) ? WX_SIGNALED : WX_EXITED;
}

const char *
worker_exit_name(enum worker_exit x)
{
	static const char *const names[WX_COUNT] = {
		"stopped", "killed", "ready_timeout", "watchdog", "exec_failed",
		"exited", "signaled",
	};

	return (unsigned)x < WX_COUNT ? names[x] : "?";
}
