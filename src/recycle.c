/*
 * Recycling, for the master: a worker older than max_lifetime (plus its
 * own random share of max_lifetime_jitter), one whose memory is above
 * max_memory, or one that says STOPPING=1 is replaced. Its successor starts
 * in the same slot first; it drains once that one is ready, so recycling
 * never costs capacity. At most max_surge (at least one) at a time, and
 * none during a reload; STOPPING=1 is not held back (the worker is leaving
 * anyway).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master.h"

/* Workers of g being replaced whose replacement is not ready yet. */
static unsigned
replacing(const struct master *m, const struct generation *g)
{
	const struct worker *w;
	unsigned n = 0;

	TAILQ_FOREACH(w, &m->sv.wt.list, link)
		n += w->g == g && w->retiring && w->state != W_DRAINING;
	return n;
}

static bool
may_recycle(const struct master *m)
{
	return m->phase == M_RUNNING && m->starting == NULL;
}

void
recycle_retire(struct master *m, struct worker *w, const char *why)
{
	if (w->retiring || w->state != W_READY || w->g != m->serving)
		return;
	w->retiring = true;
	snprintf(w->retire_why, sizeof(w->retire_why), "%s", why);
	m->recycles++;
	log_info("worker %u (pid %ld): %s; starting its replacement", w->slot,
	    (long)w->pid, why);
	sv_start(&m->sv, w->g, w->slot);
}

void
recycle_ready(struct master *m, struct worker *nw)
{
	struct worker *w, *next;

	if (nw->g->cfg.max_lifetime_ms > 0)
		nw->recycle_at = nw->started + (nw->g->cfg.max_lifetime_ms +
		    (double)nw->g->cfg.max_lifetime_jitter_ms * arc4random() /
		    UINT32_MAX) / 1000.0;
	for (w = TAILQ_FIRST(&m->sv.wt.list); w; w = next) {
		next = TAILQ_NEXT(w, link);
		if (w != nw && w->g == nw->g && w->slot == nw->slot &&
		    w->retiring && w->state == W_READY) {
			log_info("worker %u (pid %ld) replaced by pid %ld (%s); "
			    "draining it", w->slot, (long)w->pid,
			    (long)nw->pid, w->retire_why);
			sv_stop(&m->sv, w, w->g->cfg.kill_timeout_ms);
		}
	}
	recycle_check(m);
}

/* The worker due first for max_lifetime, not being replaced, or NULL. */
static struct worker *
oldest_due(struct master *m)
{
	struct worker *w, *first = NULL;

	TAILQ_FOREACH(w, &m->sv.wt.list, link)
		if (w->g == m->serving && w->state == W_READY && !w->retiring &&
		    w->recycle_at > 0 && (first == NULL ||
		    w->recycle_at < first->recycle_at))
			first = w;
	return first;
}

void
recycle_check(struct master *m)
{
	const struct config *c = &m->serving->cfg;
	unsigned limit = config_surge(c, m->serving->target);
	struct worker *w;
	char d[32], why[96];
	double now = mono_now();

	ev_timer_stop(m->loop, &m->recycle_timer);
	if (c->max_lifetime_ms == 0 || !may_recycle(m))
		return;		/* a commit checks again */
	while ((w = oldest_due(m)) != NULL && w->recycle_at <= now &&
	    replacing(m, m->serving) < limit) {
		format_duration((int64_t)((now - w->started) * 1000), d,
		    sizeof(d));
		snprintf(why, sizeof(why), "max_lifetime (up %s)", d);
		recycle_retire(m, w, why);
	}
	/* The next one due; a full quota waits for a replacement's ready. */
	if (w != NULL && replacing(m, m->serving) < limit) {
		ev_timer_set(&m->recycle_timer, w->recycle_at > now ?
		    w->recycle_at - now : 0, 0);
		ev_timer_start(m->loop, &m->recycle_timer);
	}
}

static void
recycle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	recycle_check(t->data);
}

/* ---- max_memory ---- */

/* Pss of one process (kB, from smaps_rollup), 0 if unreadable. */
static uint64_t
pss_of(const char *pid)
{
	char path[300], line[128];
	uint64_t kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/smaps_rollup", pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "Pss:", 4) == 0) {
			kb = strtoull(line + 4, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

/* The process group of pid (field 5 of /proc/PID/stat), or -1. */
static long
pgrp_of(const char *pid)
{
	char path[300], buf[512], *p;
	long pgrp = -1;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* After the command's closing parenthesis: state ppid pgrp. */
	if ((p = strrchr(buf, ')')) != NULL)
		sscanf(p + 1, " %*c %*d %ld", &pgrp);
	return pgrp;
}

/* Every ready worker's memory: the PSS of its whole process group (a
 * server's own pool of children counts), in one pass over /proc. */
void
recycle_measure(struct master *m)
{
	struct worker *w;
	struct dirent *de;
	DIR *d;
	long pg;

	TAILQ_FOREACH(w, &m->sv.wt.list, link)
		w->pss = 0;
	if ((d = opendir("/proc")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]) ||
		    (pg = pgrp_of(de->d_name)) <= 0 ||
		    (w = workers_find_pid(&m->sv.wt, (pid_t)pg)) == NULL)
			continue;
		w->pss += pss_of(de->d_name) * 1024;
	}
	closedir(d);
}

static void
memory_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = t->data;
	const struct config *c = &m->serving->cfg;
	unsigned limit = config_surge(c, m->serving->target);
	struct worker *w, *big;
	char max[32], why[96];

	(void)loop;
	(void)revents;
	recycle_measure(m);
	if (!may_recycle(m))
		return;
	/* The largest first, within the quota. */
	while (replacing(m, m->serving) < limit) {
		big = NULL;
		TAILQ_FOREACH(w, &m->sv.wt.list, link)
			if (w->g == m->serving && w->state == W_READY &&
			    !w->retiring && w->pss > c->max_memory &&
			    (big == NULL || w->pss > big->pss))
				big = w;
		if (big == NULL)
			break;
		format_size(c->max_memory, max, sizeof(max));
		snprintf(why, sizeof(why), "max_memory (PSS %.1f MiB, above "
		    "%s)", big->pss / 1048576.0, max);
		recycle_retire(m, big, why);
	}
}

/* The memory timer runs only while max_memory is set: otherwise the
 * master never wakes up idle. */
void
recycle_config(struct master *m)
{
	const struct config *c = &m->serving->cfg;

	ev_timer_stop(m->loop, &m->memory_timer);
	if (c->max_memory > 0) {
		ev_timer_set(&m->memory_timer, c->memory_interval_ms / 1000.0,
		    c->memory_interval_ms / 1000.0);
		ev_timer_start(m->loop, &m->memory_timer);
	}
	recycle_check(m);
}

void
recycle_init(struct master *m)
{
	ev_init(&m->recycle_timer, recycle_cb);
	m->recycle_timer.data = m;
	ev_init(&m->memory_timer, memory_cb);
	m->memory_timer.data = m;
}

void
recycle_stop(struct master *m)
{
	ev_timer_stop(m->loop, &m->recycle_timer);
	ev_timer_stop(m->loop, &m->memory_timer);
}
