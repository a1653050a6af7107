/*
 * The master's state across an upgrade's re-exec: what the old image hands
 * over (handover_build) and how the new one takes it (handover_adopt). The
 * record of each piece is defined once, in upgrade.h.
 */
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master.h"

static void
build_listeners(struct master *m, struct state *s)
{
	struct lsock *l;
	size_t n = 0;

	TAILQ_FOREACH(l, &m->lsocks, link)
		n++;
	s->ls = xcalloc(n ? n : 1, sizeof(*s->ls));
	TAILQ_FOREACH(l, &m->lsocks, link) {
		struct state_listener *sl = &s->ls[s->nls++];
		size_t j;

		for (j = 0; j < m->serving->nls; j++)
			if (m->serving->ls[j] == l)
				break;
		sl->fd = l->l.fd;
		sl->dev = l->l.dev;
		sl->ino = l->l.ino;
		sl->gone = j == m->serving->nls;
		snprintf(sl->addr, sizeof(sl->addr), "%s", l->l.addr.text);
	}
}

static void
build_worker(struct master *m, struct worker *w,
    struct state_worker *sw, ev_tstamp now)
{
	sw->pid = w->pid;
	sw->slot = w->slot;
	sw->gen = w->gen;
	sw->state = w->state;
	sw->exec_ok = w->exec_ok;
	sw->failed_start = w->failed_start;
	sw->execfd = ev_is_active(&w->execio) ? w->execio.fd : -1;
	sw->outfd = w->out ? ((struct logpipe *)w->out)->io.fd : -1;
	sw->readyfd = w->readyio.fd;
	sw->restarts = w->restarts;
	sw->backoff_ms = w->backoff_ms;
	sw->last_status = w->last_status;
	sw->age_ms = (int64_t)((now - w->started) * 1000);
	sw->ready_age_ms = w->ready_at ? (int64_t)((now - w->ready_at) * 1000) :
	    -1;
	sw->timer_ms = ev_is_active(&w->timer) ? (int64_t)
	    (ev_timer_remaining(m->loop, &w->timer) * 1000) : -1;
	if (sw->timer_ms < -1)
		sw->timer_ms = 0;
}

static void
add_count(struct state *s, const char *name, unsigned long long v)
{
	struct state_count *c;

	s->counts = xrealloc(s->counts, (s->ncounts + 1) * sizeof(*s->counts));
	c = &s->counts[s->ncounts++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->value = v;
}

/* The counters and the last reload, by name: a fugue that counts more
 * (or less) reads what it knows. */
static void
build_counts(struct master *m, struct state *s)
{
	const struct reload_record *r = &m->counts.last;
	char name[STATE_COUNT_NAME_MAX];

	for (int x = 0; x < WX_COUNT; x++) {
		snprintf(name, sizeof(name), "exits.%s", worker_exit_name(x));
		add_count(s, name, m->counts.exits[x]);
	}
	for (int k = 0; k < RK_COUNT; k++)
		for (int x = 0; x < RR_COUNT; x++) {
			snprintf(name, sizeof(name), "reloads.%s.%s",
			    reload_kind_name(k), reload_result_name(x));
			add_count(s, name, m->counts.reloads[k][x]);
		}
	add_count(s, "log_lines_dropped", m->sink.dropped_total);
	if (!r->set)
		return;
	s->last.set = true;
	snprintf(s->last.kind, sizeof(s->last.kind), "%s",
	    reload_kind_name(r->kind));
	snprintf(s->last.result, sizeof(s->last.result), "%s",
	    reload_result_name(r->result));
	s->last.time_ms = (int64_t)(r->time * 1000);
	s->last.from_gen = r->from_gen;
	s->last.to_gen = r->to_gen;
	s->last.reason = xstrdup(r->reason);
}

/* Metrics clients not answered yet: the new image answers them. */
static void
build_mclients(struct master *m, struct state *s)
{
	struct metrics_pending *p;
	size_t n = metrics_pending(&m->metrics, &p);

	s->mclients = xcalloc(n ? n : 1, sizeof(*s->mclients));
	for (size_t i = 0; i < n; i++) {
		s->mclients[i].fd = p[i].fd;
		s->mclients[i].in = p[i].in;
	}
	s->nmclients = n;
	free(p);
}

void
handover_build(struct master *m, struct state *s)
{
	ev_tstamp now = mono_now();
	struct generation *g;
	struct ctl_client *c;
	struct worker *w;

	state_init(s);
	s->cur_gen = m->serving->id;
	s->last_gen = m->last_gen;
	s->target = m->serving->target;
	s->nofile = m->nofile;
	s->pid_fd = m->pid_fd;
	s->notify_dir = m->notify_dir ? xstrdup(m->notify_dir) : NULL;
	TAILQ_FOREACH(g, &m->gens, link)
		if (g->notify_fd != -1) {
			s->ns = xrealloc(s->ns, (s->nns + 1) * sizeof(*s->ns));
			s->ns[s->nns].gen = g->id;
			s->ns[s->nns].fd = g->notify_fd;
			s->ns[s->nns].path = xstrdup(g->notify_path);
			s->nns++;
		}
	build_listeners(m, s);
	s->ws = xcalloc(m->sv.wt.n ? m->sv.wt.n : 1, sizeof(*s->ws));
	TAILQ_FOREACH(w, &m->sv.wt.list, link)
		build_worker(m, w, &s->ws[s->nws++], now);
	for (struct logpipe *lp = m->sink.pipes; lp; lp = lp->next) {
		if (lp->name)
			continue;	/* a hook's: never across an exec */
		s->ps = xrealloc(s->ps, (s->nps + 1) * sizeof(*s->ps));
		s->ps[s->nps].fd = lp->io.fd;
		s->ps[s->nps].slot = lp->slot;
		s->ps[s->nps].pid = lp->pid;
		s->nps++;
	}
	s->ctl_fd = m->ctl.fd;
	s->op_seq = m->op_seq;
	s->op_current = m->op_current;
	s->queued = m->queued;
	LIST_FOREACH(c, &m->ctl.clients, link) {
		if (!c->waiting)
			continue;
		s->waiters = xrealloc(s->waiters, (s->nwaiters + 1) *
		    sizeof(*s->waiters));
		s->waiters[s->nwaiters].fd = c->io.fd;
		s->waiters[s->nwaiters].after = c->after;
		s->nwaiters++;
	}
	state_config_dump(&m->serving->cfg, &s->cfg);
	s->metrics_fd = m->metrics.l.fd;
	s->metrics_dev = m->metrics.l.dev;
	s->metrics_ino = m->metrics.l.ino;
	build_mclients(m, s);
	build_counts(m, s);
}

/* ---- in the new image ---- */

/* The generation a worker of the state belongs to: the serving one, or an
 * old one whose workers drain (made with the serving configuration: they
 * were signalled already, and their kill deadline is in the state). */
static struct generation *
adopt_gen(struct master *m, const struct state *s, unsigned id)
{
	struct errlist errs = { 0 };
	struct generation *g;
	struct config c;

	TAILQ_FOREACH(g, &m->gens, link)
		if (g->id == id)
			return g;
	config_init(&c);
	if (state_config_load(&s->cfg, &c, &errs) != 0) {
		config_free(&c);
		config_init(&c);
	}
	errlist_free(&errs);
	g = gen_new(id, &c);
	g->phase = G_OLD;
	TAILQ_INSERT_HEAD(&m->gens, g, link);
	return g;
}

static void
adopt_listeners(struct master *m, const struct state *s)
{
	struct address a;
	char err[512];

	for (size_t i = 0; i < s->nls; i++) {
		if (parse_address(s->ls[i].addr, &a, err, sizeof(err)) == -1) {
			log_error("upgrade: listener %s: %s", s->ls[i].addr,
			    err);
			close(s->ls[i].fd);
			continue;
		}
		fcntl(s->ls[i].fd, F_SETFD, FD_CLOEXEC);
		lsock_adopt(&m->lsocks, s->ls[i].fd, &a, s->ls[i].dev,
		    s->ls[i].ino);
	}
	if (gen_bind(m->serving, &m->lsocks, err, sizeof(err)) != 0)
		log_error("upgrade: %s", err);
}

/* Each generation's notify socket; version 1 had one, the serving
 * generation's. */
static void
adopt_notify(struct master *m, struct state *s)
{
	struct generation *g;

	if (s->notify_fd >= 0 && s->nns == 0) {
		s->ns = xcalloc(1, sizeof(*s->ns));
		s->ns[0].gen = s->cur_gen;
		s->ns[0].fd = s->notify_fd;
		s->ns[0].path = s->notify_path;
		s->notify_path = NULL;
		s->nns = 1;
	}
	m->notify_dir = s->notify_dir;
	s->notify_dir = NULL;
	for (size_t i = 0; i < s->nns; i++) {
		fcntl(s->ns[i].fd, F_SETFD, FD_CLOEXEC);
		g = adopt_gen(m, s, s->ns[i].gen);
		g->notify_fd = s->ns[i].fd;
		g->notify_path = s->ns[i].path;
		s->ns[i].path = NULL;
		sv_watch_notify(&m->sv, g);
	}
}

/* Listeners that left the configuration: the old generations' workers may
 * still use them; they close with the last of those generations. */
static void
adopt_old_listeners(struct master *m)
{
	struct generation *old = TAILQ_FIRST(&m->gens);
	struct lsock *l;

	if (old != m->serving) {
		TAILQ_FOREACH(l, &m->lsocks, link)
			if (l->refs == 0) {
				old->ls = xrealloc(old->ls, (old->nls + 1) *
				    sizeof(*old->ls));
				old->ls[old->nls++] = l;
				l->refs++;
			}
	}
	lsock_close_unused(&m->lsocks);
}

/* Only pids that are our own unreaped children: a crafted state must not
 * make fugue signal anyone else. */
static bool
our_child(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) ==
	    0;
}

static void
adopt_worker(struct master *m, const struct state *s,
    const struct state_worker *sw)
{
	struct worker *w;
	struct logpipe *lp;
	ev_tstamp now = mono_now();

	if (sw->pid > 0 && !our_child(sw->pid)) {
		log_error("upgrade: pid %ld (worker %u) is not a child of "
		    "fugue; not adopted", (long)sw->pid, sw->slot);
		if (sw->execfd >= 0)
			close(sw->execfd);
		if (sw->readyfd >= 0)
			close(sw->readyfd);
		return;
	}
	w = sv_add(&m->sv, adopt_gen(m, s, sw->gen), sw->slot);
	w->pid = sw->pid;
	w->state = sw->state;
	w->exec_ok = sw->exec_ok;
	w->failed_start = sw->failed_start;
	w->restarts = sw->restarts;
	w->backoff_ms = sw->backoff_ms;
	w->last_status = sw->last_status;
	w->started = now - sw->age_ms / 1000.0;
	w->ready_at = sw->ready_age_ms >= 0 ? now - sw->ready_age_ms / 1000.0 :
	    0;
	for (lp = m->sink.pipes; lp; lp = lp->next)
		if (sw->outfd >= 0 && lp->io.fd == sw->outfd) {
			w->out = lp;
			lp->owner = &w->out;
			lp->last = w->last_line;
			lp->lastsz = sizeof(w->last_line);
		}
	if (sw->readyfd >= 0) {
		fcntl(sw->readyfd, F_SETFD, FD_CLOEXEC);
		sv_ready_watch(&m->sv, w, sw->readyfd);
	}
	sv_resume(&m->sv, w, sw->execfd, sw->timer_ms);
}

static void
adopt_count(struct master *m, const struct state_count *c)
{
	char name[STATE_COUNT_NAME_MAX];

	for (int x = 0; x < WX_COUNT; x++) {
		snprintf(name, sizeof(name), "exits.%s", worker_exit_name(x));
		if (strcmp(c->name, name) == 0)
			m->counts.exits[x] += c->value;
	}
	for (int k = 0; k < RK_COUNT; k++)
		for (int x = 0; x < RR_COUNT; x++) {
			snprintf(name, sizeof(name), "reloads.%s.%s",
			    reload_kind_name(k), reload_result_name(x));
			if (strcmp(c->name, name) == 0)
				m->counts.reloads[k][x] += c->value;
		}
	if (strcmp(c->name, "log_lines_dropped") == 0)
		m->sink.dropped_total += c->value;
}

static void
adopt_counts(struct master *m, const struct state *s)
{
	struct reload_record *r = &m->counts.last;
	int kind = reload_kind_parse(s->last.kind);
	int result = reload_result_parse(s->last.result);

	for (size_t i = 0; i < s->ncounts; i++)
		adopt_count(m, &s->counts[i]);
	if (!s->last.set || kind < 0 || result < 0)
		return;
	r->set = true;
	r->kind = kind;
	r->result = result;
	r->time = s->last.time_ms / 1000.0;
	r->from_gen = s->last.from_gen;
	r->to_gen = s->last.to_gen;
	snprintf(r->reason, sizeof(r->reason), "%s", s->last.reason ?
	    s->last.reason : "");
}

/* The endpoint keeps its socket (and its clients' connections queued). */
static void
adopt_metrics(struct master *m, const struct state *s)
{
	struct listener *l = &m->metrics.l;

	if (s->metrics_fd < 0)
		return;
	fcntl(s->metrics_fd, F_SETFD, FD_CLOEXEC);
	if (listen_describe(s->metrics_fd, &l->addr) == -1) {
		log_error("upgrade: the metrics endpoint (fd %d) is not a "
		    "listening socket; metrics are off", s->metrics_fd);
		close(s->metrics_fd);
		return;
	}
	l->fd = s->metrics_fd;
	l->dev = s->metrics_dev;
	l->ino = s->metrics_ino;
	metrics_start(&m->metrics, m->loop, m->metrics.page, m->metrics.arg);
}

static void
adopt_mclients(struct master *m, const struct state *s)
{
	for (size_t i = 0; i < s->nmclients; i++) {
		fcntl(s->mclients[i].fd, F_SETFD, FD_CLOEXEC);
		metrics_adopt_client(&m->metrics, s->mclients[i].fd,
		    s->mclients[i].in);
	}
}

void
handover_adopt(struct master *m, struct state *s)
{
	char err[512];
	size_t i;

	m->serving->id = s->cur_gen;
	m->serving->target = s->target;
	m->last_gen = s->last_gen > s->cur_gen ? s->last_gen : s->cur_gen;
	m->nofile = s->nofile;
	m->pid_fd = s->pid_fd;
	if (m->pid_fd >= 0)
		fcntl(m->pid_fd, F_SETFD, FD_CLOEXEC);
	adopt_listeners(m, s);
	adopt_notify(m, s);
	if (gen_plan(m->serving, m->pid, m->devnull, m->nofile, err,
	    sizeof(err)) != 0)
		log_error("upgrade: generation %u cannot restart workers: %s",
		    m->serving->id, err);
	for (i = 0; i < s->nps; i++) {
		fcntl(s->ps[i].fd, F_SETFD, FD_CLOEXEC);
		logpipe_adopt(&m->sink, s->ps[i].fd, s->ps[i].slot,
		    s->ps[i].pid);
	}
	m->op_seq = s->op_seq;
	m->op_current = s->op_current;
	m->queued = s->queued;
	if (s->ctl_fd >= 0) {
		fcntl(s->ctl_fd, F_SETFD, FD_CLOEXEC);
		control_start(&m->ctl, m->loop, s->ctl_fd, m->ctl.command,
		    m->ctl.arg);
	}
	for (i = 0; i < s->nwaiters; i++)
		control_adopt_waiter(&m->ctl, s->waiters[i].fd,
		    s->waiters[i].after);
	adopt_metrics(m, s);
	adopt_mclients(m, s);
	adopt_counts(m, s);
	for (i = 0; i < s->nws; i++)
		adopt_worker(m, s, &s->ws[i]);
	/* Listeners only old workers used are theirs until they are gone. */
	adopt_old_listeners(m);
}
