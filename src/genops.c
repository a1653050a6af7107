/*
 * Generations, for the master: their notify sockets, their workers
 * started, scaled and stopped, their end once no worker is left.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master.h"
#include "notify.h"

int
gen_notify_start(struct master *m, struct generation *g, char *err,
    size_t len)
{
	const char *base = g->cfg.runtime_dir;

	if (!g->cfg.ready_notify || g->cfg.ready_pipe)
		return 0;
	if (m->notify_dir == NULL) {
		if (base == NULL && (base = getenv("RUNTIME_DIRECTORY")) ==
		    NULL && (base = getenv("XDG_RUNTIME_DIR")) == NULL)
			base = "/tmp";
		notify_dir_sweep(base);
		if (notify_dir_make(base, m->pid, &m->notify_dir, err, len))
			return -1;
	}
	if (gen_notify_open(g, m->notify_dir, err, len) != 0)
		return -1;
	sv_watch_notify(&m->sv, g);
	return 0;
}

void
gen_drop(struct master *m, struct generation *g)
{
	if (g->notify_fd != -1)
		ev_io_stop(m->loop, &g->notify_io);
	TAILQ_REMOVE(&m->gens, g, link);
	gen_free(g, &m->lsocks);
}

void
gens_reap(struct master *m)
{
	struct generation *g, *next;
	struct worker *w;

	for (g = TAILQ_FIRST(&m->gens); g; g = next) {
		next = TAILQ_NEXT(g, link);
		if (g->phase != G_OLD)
			continue;
		TAILQ_FOREACH(w, &m->sv.wt.list, link)
			if (w->g == g)
				break;
		if (w == NULL)
			gen_drop(m, g);
	}
}

/* Stop every worker of g, each with g's own stop_signal and kill_timeout. */
void
gen_stop(struct master *m, struct generation *g)
{
	struct worker *w, *next;

	for (w = TAILQ_FIRST(&m->sv.wt.list); w; w = next) {
		next = TAILQ_NEXT(w, link);
		if (w->g == g)
			sv_stop(&m->sv, w, g->cfg.kill_timeout_ms);
	}
}

void
gen_scale(struct master *m, struct generation *g, unsigned want)
{
	struct worker *w, *next;
	unsigned have = g->target;
	int slot;

	for (; have < want; have++)
		if ((slot = workers_free_slot(&m->sv.wt, g->id, have + 1)) >= 0)
			sv_start(&m->sv, g, (unsigned)slot);
	while (have > want) {
		have--;
		/* The newest slot goes, with a worker being replaced in
		 * it. */
		for (w = TAILQ_FIRST(&m->sv.wt.list); w; w = next) {
			next = TAILQ_NEXT(w, link);
			if (w->gen == g->id && w->slot == have &&
			    w->state != W_DRAINING)
				sv_stop(&m->sv, w, g->cfg.kill_timeout_ms);
		}
	}
	g->target = want;
}

/* The generation's deadline counts from when its last worker was forked:
 * forking many workers, or a master stalled meanwhile, must not eat it. */
void
reload_deadline(struct master *m, unsigned ms)
{
	ev_now_update(m->loop);
	ev_timer_set(&m->gen_timer, ms / 1000.0, 0);
	ev_timer_start(m->loop, &m->gen_timer);
}

