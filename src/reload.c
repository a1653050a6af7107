/*
 * Reloads and upgrades, for the master: a new generation started from the
 * re-read configuration, committed once all its workers are ready or
 * rolled back; the new binary checked, tried on the real state, then
 * exec'd. Called by master.c only; what must wait for the current event
 * (a queued operation, the exec) is left to the master's prepare watcher.
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

static const char *
op(const struct master *m)
{
	return m->upgrading ? "upgrade" : "reload";
}

static bool
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

bool
master_busy(const struct master *m)
{
	/* A hook running counts: the next operation's hooks never overlap
	 * the last one's (a host leaving a load balancer while it rejoins). */
	return m->phase == M_STARTING || m->starting || m->pending ||
	    m->check.pid || m->hook.pid || m->exec_due;
}

/* Run what was queued once the current event is handled. */
void
op_later(struct master *m)
{
	ev_prepare_start(m->loop, &m->later);
}

/* A reload or upgrade asked for while another runs: held, once. */
void
op_enqueue(struct master *m, enum master_op what)
{
	if (m->queued < what) {
		log_info("%s: queued until the current one ends",
		    what == OP_UPGRADE ? "upgrade" : "reload");
		m->queued = what;
	}
}

/* The operation that just ended is over: whatever waits may start. */
static void
op_done(struct master *m)
{
	m->upgrading = false;
	if (m->queued != OP_NONE)
		op_later(m);
}

/* After an operation: c's exec_after_reload or exec_reload_failed, if
 * set. Its result changes nothing; the next operation waits for it. True
 * if it runs. */
static bool
hook_after(struct master *m, const struct config *c, enum hook_kind k,
    unsigned old_gen, unsigned new_gen, const char *result, const char *why)
{
	struct hook_vars v = { old_gen, new_gen, result, why };
	char err[512];

	if (c->hook[k].argv.n == 0 || m->phase == M_STOPPING)
		return false;
	if (hook_start(&m->hook, c, k, &v, m->pid, m->devnull, m->nofile,
	    err, sizeof(err)) == 0)
		return true;
	log_error("%s: %s", op(m), err);
	return false;
}

/* The outcome, for the clients waiting for the operation that ends: now,
 * or (hooked) once the hook that follows it has ended, so that a rolling
 * deploy moves to the next host only once this one has rejoined. */
static void __attribute__((format(printf, 4, 5)))
answer(struct master *m, bool hooked, const char *word, const char *fmt,
    ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	va_end(ap);
	if (!hooked) {
		control_outcome(&m->ctl, m->op_current, word, "%s", msg ? msg :
		    "?");
		free(msg);
		return;
	}
	free(m->answer);
	m->answer = msg ? msg : xstrdup("?");
	snprintf(m->answer_word, sizeof(m->answer_word), "%s", word);
	m->answer_op = m->op_current;
}

/* The hook after the operation ended: its clients get their answer, with
 * what went wrong with the hook, if anything. */
static void
answer_now(struct master *m, const char *hook_failure)
{
	if (m->answer == NULL)
		return;
	control_outcome(&m->ctl, m->answer_op, m->answer_word, "%s%s%s",
	    m->answer, hook_failure ? "; " : "", hook_failure ? hook_failure :
	    "");
	free(m->answer);
	m->answer = NULL;
}

int
master_open_logs(struct master *m, char *err, size_t len)
{
	const struct config *c = &m->serving->cfg;
	int r;

	if (!c->log_file && m->log_fd != -1) {
		close(m->log_fd);
		m->log_fd = -1;
	}
	if (!c->master_log_file && m->mlog_fd != -1) {
		close(m->mlog_fd);
		m->mlog_fd = -1;
	}
	if (c->log_file && (r = log_open_file(c->log_file, &m->log_fd, err,
	    len)) != 0)
		return r;
	if (c->master_log_file && (r = log_open_file(c->master_log_file,
	    &m->mlog_fd, err, len)) != 0)
		return r;
	/* Worker lines go to log_file, else to fugue's stderr; master lines
	 * to master_log_file, else with them (in order, never blocking). */
	if (m->log_fd != -1)
		logsink_set_fd(&m->sink, m->log_fd, false);
	else
		logsink_set_fd(&m->sink, 2, true);
	m->sink.raw = c->log_raw;
	log_set_fd(m->mlog_fd);
	log_set_sink(m->mlog_fd != -1 ? NULL : &m->sink);
	return 0;
}

/* The first generation is in service. */
static void
first_ready(struct master *m)
{
	struct generation *g = m->serving;

	ev_timer_stop(m->loop, &m->gen_timer);
	m->phase = M_RUNNING;
	log_info("ready: %u worker%s", g->target, plural(g->target));
	if (m->ready_fd != -1) {
		/* -d: the launcher may exit 0; we have no terminal. */
		if (write(m->ready_fd, "ready\n", 6) != 6)
			log_warn("-d: cannot tell the launcher");
		close(m->ready_fd);
		m->ready_fd = -1;
		dup2(m->devnull, 0);
		dup2(m->devnull, 1);
		dup2(m->devnull, 2);
	}
	notify_systemd("READY=1\nSTATUS=%u worker%s ready, generation %u",
	    g->target, plural(g->target), g->id);
	recycle_config(m);
	op_done(m);
}

/* The starting generation is ready: it serves, the old one drains. */
static void
commit(struct master *m)
{
	struct generation *old = m->serving, *g = m->starting;
	bool hooked;

	ev_timer_stop(m->loop, &m->gen_timer);
	m->holding = m->held = false;
	old->phase = G_OLD;
	g->phase = G_SERVING;
	m->serving = g;
	m->starting = NULL;
	gen_stop(m, old);
	if (!same(old->cfg.log_file, g->cfg.log_file) ||
	    !same(old->cfg.master_log_file, g->cfg.master_log_file)) {
		char err[512];

		if (master_open_logs(m, err, sizeof(err)) != 0)
			log_error("%s: %s", op(m), err);
	}
	log_set_level(g->cfg.log_level);
	m->sink.raw = g->cfg.log_raw;
	log_info("%s: generation %u ready (%u worker%s); draining "
	    "generation %u", op(m), g->id, g->target, plural(g->target),
	    old->id);
	notify_systemd("READY=1\nSTATUS=%u worker%s ready, generation %u",
	    g->target, plural(g->target), g->id);
	hooked = hook_after(m, &g->cfg, HOOK_AFTER, old->id, g->id, "ok",
	    NULL);
	answer(m, hooked, "ok", "generation %u serving %u worker%s", g->id,
	    g->target, plural(g->target));
	status_record_reload(m, m->upgrading, RR_OK, old->id, g->id, "");
	gens_reap(m);
	recycle_config(m);
	op_done(m);
}

/* Every new worker is ready: it must stay alive for ready_hold before the
 * old generation goes (a server that says READY=1 before it has loaded its
 * application would crash-loop after the drain). An exit meanwhile rolls
 * the reload back. */
static void
hold(struct master *m)
{
	struct generation *g = m->starting;
	char d[32];

	format_duration(g->cfg.ready_hold_ms, d, sizeof(d));
	log_info("%s: every worker of generation %u is ready; holding %s "
	    "before draining generation %u", op(m), g->id, d, m->serving->id);
	m->holding = true;
	ev_timer_stop(m->loop, &m->gen_timer);
	ev_timer_set(&m->gen_timer, g->cfg.ready_hold_ms / 1000.0, 0);
	ev_timer_start(m->loop, &m->gen_timer);
}

/* Workers with a process, of every generation, draining ones included:
 * what max_surge bounds. */
static unsigned
alive(const struct master *m)
{
	const struct worker *w;
	unsigned n = 0;

	TAILQ_FOREACH(w, &m->sv.wt.list, link)
		n += w->state == W_STARTING || w->state == W_READY ||
		    w->state == W_DRAINING;
	return n;
}

/*
 * A rolling reload (max_surge below count): the old generation keeps the
 * slots the new one cannot serve yet, and the next batch of new workers
 * starts once the last one is ready (and held) and the drained old
 * workers have left room: never more than count + max_surge processes.
 */
static void
roll(struct master *m)
{
	struct generation *g = m->starting, *old = m->serving;
	unsigned to = m->roll_to, surge = config_surge(&g->cfg, to);
	unsigned ready = workers_count(&m->sv.wt, g->id, WS(W_READY));
	unsigned live, n;

	if (ready > to)
		ready = to;
	if (old->target > to - ready)
		gen_scale(m, old, to - ready);
	live = alive(m);
	n = to - g->target;
	if (n > surge)
		n = surge;
	if (live >= to + surge)
		n = 0;
	else if (n > to + surge - live)
		n = to + surge - live;
	if (n == 0)
		return;		/* room comes as old workers leave */
	m->held = false;
	log_info("%s: starting %u worker%s of generation %u (%u of %u)", op(m),
	    n, plural(n), g->id, g->target + n, to);
	gen_scale(m, g, g->target + n);
	reload_deadline(m, g->cfg.ready_timeout_ms);
}

/* The starting generation: its last batch ready, held, then the next one
 * or the commit. */
static void
starting_check(struct master *m)
{
	struct generation *g = m->starting;

	if (workers_count(&m->sv.wt, g->id, WS(W_READY)) < g->target)
		return;
	if (g->target > 0 && !m->held && g->cfg.ready_hold_ms > 0) {
		if (!m->holding)
			hold(m);
		return;
	}
	if (g->target >= m->roll_to)
		commit(m);
	else
		roll(m);
}

void
reload_check(struct master *m)
{
	if (m->phase == M_STARTING && workers_count(&m->sv.wt,
	    m->serving->id, WS(W_READY)) >= m->serving->target)
		first_ready(m);
	else if (m->starting)
		starting_check(m);
}

void
reload_scale(struct master *m, unsigned want)
{
	struct generation *g = m->starting;

	/* During a reload: the count it ends with (and a rollback returns
	 * to); the old generation only shrinks. */
	m->roll_to = m->roll_from = want;
	if (g->target > want)
		gen_scale(m, g, want);
	if (m->serving->target > want)
		gen_scale(m, m->serving, want);
}

void
reload_rollback(struct master *m, const char *why)
{
	struct generation *g = m->starting;
	bool hooked;

	ev_timer_stop(m->loop, &m->gen_timer);
	m->holding = m->held = false;
	log_error("%s failed: %s; generation %u keeps serving", op(m), why,
	    m->serving->id);
	m->starting = NULL;
	g->phase = G_OLD;
	gen_stop(m, g);
	/* The slots a rolling reload took are the old generation's again. */
	if (m->serving->target < m->roll_from)
		gen_scale(m, m->serving, m->roll_from);
	/* Its listeners go now (its workers keep their own copies): a
	 * deploy script told of the failure may bind them next. */
	for (size_t i = 0; i < g->nls; i++)
		lsock_release(&m->lsocks, g->ls[i]);
	g->nls = 0;
	status_record_reload(m, m->upgrading, RR_ROLLED_BACK, m->serving->id,
	    g->id, why);
	/* READY=1 still, or systemd would stay "reloading". */
	notify_systemd("READY=1\nSTATUS=reload failed, generation %u serving "
	    "%u worker%s", m->serving->id, m->serving->target,
	    plural(m->serving->target));
	hooked = hook_after(m, &g->cfg, HOOK_FAILED, m->serving->id, g->id,
	    "failed", why);
	answer(m, hooked, "failed", "%s; generation %u keeps serving", why,
	    m->serving->id);
	gens_reap(m);
	recycle_check(m);
	op_done(m);
}

/* A reload or upgrade that could not start: nothing changed. c: the
 * configuration whose exec_reload_failed runs (the new one, if it could
 * be read); new_gen: the generation it would have started. */
void
op_refused(struct master *m, const char *what, const char *why,
    const char *detail, const struct config *c, unsigned new_gen)
{
	bool hooked;

	log_error("%s refused: %s; nothing changed", what, why);
	notify_systemd("READY=1\nSTATUS=%s refused: %s", what, why);
	hooked = hook_after(m, c, HOOK_FAILED, m->serving->id, new_gen,
	    "refused", why);
	answer(m, hooked, "refused", "%s", detail ? detail : why);
	status_record_reload(m, strcmp(what, "upgrade") == 0, RR_REFUSED,
	    m->serving->id, 0, detail ? detail : why);
	op_done(m);
}

/* A generation prepared but never started goes, and its number with it. */
static void
discard(struct master *m, struct generation *g)
{
	if (g->notify_fd != -1)
		ev_io_stop(m->loop, &g->notify_io);
	if (m->last_gen == g->id)
		m->last_gen--;
	gen_free(g, &m->lsocks);
}

/* What the master itself holds (its pid file lock, control socket, notify
 * sockets, subreaper role) stays as started: say so if the file changed. */
static void
keep_start_only(struct master *m, struct config *c)
{
	static const struct {
		const char	*key;
		size_t		 off;
	} keys[] = {
		{ "pid_file", offsetof(struct config, pid_file) },
		{ "control_socket", offsetof(struct config, control_socket) },
		{ "metrics", offsetof(struct config, metrics) },
		{ "runtime_dir", offsetof(struct config, runtime_dir) },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char **now = (char **)((char *)c + keys[i].off);
		char *was = *(char **)((char *)&m->serving->cfg + keys[i].off);

		if (same(*now, was))
			continue;
		log_warnx("%s: [master] %s changes only at a restart; keeping "
		    "%s", op(m), keys[i].key, was ? was : "none");
		free(*now);
		*now = was ? xstrdup(was) : NULL;
	}
	c->metrics_addr = m->serving->cfg.metrics_addr;
	if (c->subreaper != m->serving->cfg.subreaper) {
		log_warnx("%s: [master] subreaper changes only at a restart",
		    op(m));
		c->subreaper = m->serving->cfg.subreaper;
	}
	gen_warn_root(c);
}

/* The re-read configuration as a generation ready to start: NULL (and
 * refused) if it cannot be. */
static struct generation *
prepare(struct master *m)
{
	struct errlist errs = { 0 };
	struct generation *g;
	struct config c;
	char err[512], detail[1024];

	config_init(&c);
	if (m->load(m->load_arg, &c, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			log_error("%s", errs.v[i]);
		snprintf(err, sizeof(err), "the configuration has %zu error%s",
		    errs.n, errs.n == 1 ? "" : "s");
		snprintf(detail, sizeof(detail), "%s: %s", err,
		    errs.n ? errs.v[0] : "?");
		errlist_free(&errs);
		config_free(&c);
		op_refused(m, op(m), err, detail, &m->serving->cfg,
		    m->last_gen + 1);
		return NULL;
	}
	errlist_free(&errs);
	keep_start_only(m, &c);
	g = gen_new(m->last_gen + 1, &c);
	if (gen_bind(g, &m->lsocks, err, sizeof(err)) != 0 ||
	    gen_notify_start(m, g, err, sizeof(err)) != 0 ||
	    gen_plan(g, m->pid, m->devnull, m->nofile, err, sizeof(err)) != 0) {
		op_refused(m, op(m), err, NULL, &g->cfg, g->id);
		discard(m, g);
		return NULL;
	}
	m->last_gen = g->id;
	return g;
}

/* The prepared generation's workers start. */
static void
reload_start(struct master *m, struct generation *g)
{
	/* The runtime count (TTIN/TTOU) survives unless count changed. */
	if (g->cfg.count == m->serving->cfg.count)
		g->target = m->serving->target;
	TAILQ_INSERT_TAIL(&m->gens, g, link);
	m->starting = g;
	m->sv.why[0] = '\0';
	log_info("%s: starting generation %u (%u worker%s)", op(m), g->id,
	    g->target, plural(g->target));
	m->roll_to = g->target;
	m->roll_from = m->serving->target;
	m->held = m->holding = false;
	if (config_surge(&g->cfg, g->target) < g->target) {
		g->target = 0;		/* in batches of max_surge */
		roll(m);
	} else {
		for (unsigned s = 0; s < g->target; s++)
			sv_start(&m->sv, g, s);
		reload_deadline(m, g->cfg.ready_timeout_ms);
	}
	reload_check(m);
}

/* A hook refused the reload of g, which never started. */
static void
hook_refused(struct master *m, struct generation *g, const char *why)
{
	char err[600];

	snprintf(err, sizeof(err), "%s %s", hook_name(HOOK_BEFORE), why);
	op_refused(m, op(m), err, NULL, &g->cfg, g->id);
	discard(m, g);
}

/* HUP: a new generation with the re-read configuration, once its
 * exec_before_reload (if any) succeeded; the old one is drained only once
 * the new one is ready (commit), or stays if it never is
 * (reload_rollback). */
void
reload_begin(struct master *m)
{
	struct hook_vars v = { 0, 0, NULL, NULL };
	struct generation *g;
	char err[512];

	if (m->phase == M_STOPPING)
		return;
	if (master_busy(m)) {
		op_enqueue(m, OP_RELOAD);
		return;
	}
	if (!m->upgrading) {
		m->op_current = ++m->op_seq;
		notify_systemd_reloading();	/* an upgrade did, before */
	}
	log_info("%s: reading the configuration", op(m));
	if ((g = prepare(m)) == NULL)
		return;
	if (g->cfg.hook[HOOK_BEFORE].argv.n == 0) {
		reload_start(m, g);
		return;
	}
	/* The master serves on meanwhile; what is asked for waits. */
	v.old_gen = m->serving->id;
	v.new_gen = g->id;
	if (hook_start(&m->hook, &g->cfg, HOOK_BEFORE, &v, m->pid,
	    m->devnull, m->nofile, err, sizeof(err)) != 0) {
		op_refused(m, op(m), err, NULL, &g->cfg, g->id);
		discard(m, g);
		return;
	}
	m->pending = g;
}

void
reload_hook_ended(void *arg, enum hook_kind k, bool ok, const char *why)
{
	struct master *m = arg;
	struct generation *g = m->pending;

	if (k == HOOK_BEFORE && g != NULL) {
		m->pending = NULL;
		if (ok)
			reload_start(m, g);
		else
			hook_refused(m, g, why);
		return;
	}
	/* An after or failed hook: the operation it followed is over. */
	if (ok)
		answer_now(m, NULL);
	else {
		char failure[600];

		snprintf(failure, sizeof(failure), "%s %s", hook_name(k), why);
		answer_now(m, failure);
	}
	if (m->queued != OP_NONE)
		op_later(m);
}

void
reload_stop_hooks(struct master *m)
{
	struct generation *g = m->pending;

	hook_kill(&m->hook);
	answer_now(m, NULL);
	if (g == NULL)
		return;
	m->pending = NULL;
	log_info("%s: dropped before it started: fugue is stopping", op(m));
	control_outcome(&m->ctl, m->op_current, "refused", "fugue is "
	    "stopping");
	discard(m, g);
	m->upgrading = false;
}
