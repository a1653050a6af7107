#include <stdlib.h>

#include "util.h"
#include "workers.h"

struct worker *
workers_add(struct worker_table *t, unsigned slot, unsigned gen)
{
	struct worker *w = xcalloc(1, sizeof(*w));

	w->slot = slot;
	w->gen = gen;
	w->state = W_STARTING;
	w->last_status = -1;
	w->prev = t->tail;
	if (t->tail)
		t->tail->next = w;
	else
		t->head = w;
	t->tail = w;
	t->n++;
	return w;
}

void
workers_remove(struct worker_table *t, struct worker *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		t->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		t->tail = w->prev;
	t->n--;
	free(w);
}

struct worker *
workers_find_pid(const struct worker_table *t, pid_t pid)
{
	if (pid <= 0)
		return NULL;
	for (struct worker *w = t->head; w; w = w->next)
		if (w->pid == pid)
			return w;
	return NULL;
}

struct worker *
workers_find_slot(const struct worker_table *t, unsigned gen, unsigned slot)
{
	for (struct worker *w = t->head; w; w = w->next)
		if (w->gen == gen && w->slot == slot && w->state != W_DRAINING)
			return w;
	return NULL;
}

int
workers_free_slot(const struct worker_table *t, unsigned gen, unsigned target)
{
	unsigned char *used;
	int slot = -1;

	/* One pass over the table, not one per slot: count may be 10000. */
	used = xcalloc(target ? target : 1, 1);
	for (struct worker *w = t->head; w; w = w->next)
		if (w->gen == gen && w->state != W_DRAINING && w->slot < target)
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
	unsigned n = 0;

	for (struct worker *w = t->head; w; w = w->next)
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
	}
	return "?";
}
