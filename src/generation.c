/*
 * Generations: the listeners a configuration asks for (kept when the address
 * stayed, bound when new, closed once unused), the spawn plan, and the
 * reload that starts a new generation and commits or rolls it back.
 */
#include <errno.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "logging.h"
#include "master.h"
#include "notify.h"

extern char **environ;

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

void
gen_warn_root(const struct config *c)
{
	if ((c->user && c->uid == 0) || (!c->user && geteuid() == 0))
		log_warnx("workers run as root (set [worker] user)");
}

void
gen_free(struct generation *g)
{
	spawn_plan_free(&g->plan);
	config_free(&g->cfg);
	free(g->ls);
	free(g->bound);
	free(g->fds);
	free(g->fdnames);
	memset(g, 0, sizeof(*g));
}

/* Close the listeners bound for g alone (a rolled-back reload). */
void
gen_close_bound(struct generation *g)
{
	for (size_t i = 0; i < g->nls; i++)
		if (g->bound[i])
			listen_close(&g->ls[i], true);
}

/*
 * The listeners of g's configuration: an address prev already has keeps
 * its socket (never re-bound, so no queued connection is lost); the others
 * are bound now, all or nothing.
 */
int
gen_bind(struct generation *g, const struct generation *prev, char *err,
    size_t len)
{
	const struct config *c = &g->cfg;
	size_t i, j, off = 0, cap;
	int r;

	g->ls = xcalloc(c->nlisten, sizeof(*g->ls));
	g->bound = xcalloc(c->nlisten, sizeof(*g->bound));
	g->fds = xcalloc(c->nlisten, sizeof(*g->fds));
	cap = c->nlisten * (ADDRESS_TEXT_MAX + 1) + 1;
	g->fdnames = xcalloc(1, cap);
	for (i = 0; i < c->nlisten; i++) {
		for (j = 0; prev && j < prev->nls; j++)
			if (strcmp(prev->ls[j].addr.text,
			    c->listen[i].text) == 0)
				break;
		if (prev && j < prev->nls)
			g->ls[i] = prev->ls[j];
		else {
			r = listen_open(&g->ls[i], &c->listen[i], c->backlog,
			    c->socket_mode, c->socket_uid, c->socket_gid, err,
			    len);
			if (r != 0) {
				g->nls = i;
				gen_close_bound(g);
				return r;
			}
			g->bound[i] = true;
			log_info("listening on %s", c->listen[i].text);
		}
		g->fds[i] = g->ls[i].fd;
		g->nls = i + 1;
		if (i)
			g->fdnames[off++] = ':';
		listen_fdname(&c->listen[i], g->fdnames + off, cap - off);
		off += strlen(g->fdnames + off);
	}
	return 0;
}

int
master_bind(struct master *m, const struct generation *activated, char *err,
    size_t len)
{
	return gen_bind(&m->cur, activated, err, len);
}

/* fugue's own NOTIFY_SOCKET for workers, made when a generation wants it;
 * it belongs to the workers' user so that they can send to it. */
static int
notify_prepare(struct master *m, const struct config *c, char *err,
    size_t len)
{
	const char *dir = c->runtime_dir;
	uid_t uid = c->user ? c->uid : (uid_t)-1;
	gid_t gid = c->user || c->group ? c->gid : (gid_t)-1;

	if (!c->ready_notify)
		return 0;
	if (m->notify_fd != -1) {
		if ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
		    chown(m->notify_path, uid, gid) == -1) {
			snprintf(err, len, "notify socket %s: %s",
			    m->notify_path, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (dir == NULL && (dir = getenv("RUNTIME_DIRECTORY")) == NULL &&
	    (dir = getenv("XDG_RUNTIME_DIR")) == NULL)
		dir = "/tmp";
	free(m->notify_path);
	m->notify_path = xprintf("%s/fugue-%ld.notify", dir, (long)m->pid);
	if ((m->notify_fd = notify_open(m->notify_path, uid, gid, err,
	    len)) == -1)
		return -1;
	ev_io_init(&m->notify_io, worker_notify_cb, m->notify_fd, EV_READ);
	m->notify_io.data = m;
	ev_io_start(m->loop, &m->notify_io);
	return 0;
}

int
gen_plan(struct master *m, struct generation *g, char *err, size_t len)
{
	if (notify_prepare(m, &g->cfg, err, len) == -1)
		return -1;
	if (spawn_plan_build(&g->plan, &g->cfg, environ, g->fds, (int)g->nls,
	    g->fdnames, g->id, m->pid, g->cfg.ready_notify ? m->notify_path :
	    NULL, err, len) == -1)
		return -1;
	g->plan.devnull = m->devnull;
	g->plan.nofile = m->nofile;
	return 0;
}

struct generation *
gen_of(struct master *m, const struct worker *w)
{
	return w->gen == m->next.id && m->next.id ? &m->next : &m->cur;
}

/* Listeners that left the config close once no old worker uses them. */
void
gen_close_gone(struct master *m)
{
	if (m->ngone == 0)
		return;
	for (struct worker *w = m->wt.head; w; w = w->next)
		if (w->gen != m->cur.id && w->gen != m->next.id)
			return;
	for (size_t i = 0; i < m->ngone; i++) {
		log_info("closed %s", m->gone[i].addr.text);
		listen_close(&m->gone[i], true);
	}
	free(m->gone);
	m->gone = NULL;
	m->ngone = 0;
}

/* Of the listeners ls, those the serving generation does not use are on
 * their way out: closed once the workers that may still use them are gone. */
void
gen_retire(struct master *m, const struct listener *ls, size_t n,
    const struct generation *now)
{
	for (size_t i = 0, j; i < n; i++) {
		for (j = 0; j < now->nls; j++)
			if (now->ls[j].fd == ls[i].fd)
				break;
		if (j < now->nls)
			continue;
		m->gone = xrealloc(m->gone, (m->ngone + 1) * sizeof(*m->gone));
		m->gone[m->ngone++] = ls[i];
	}
}

void
gen_commit(struct master *m)
{
	struct generation old = m->cur;

	ev_timer_stop(m->loop, &m->gen_timer);
	gen_retire(m, old.ls, old.nls, &m->next);
	m->cur = m->next;
	memset(&m->next, 0, sizeof(m->next));
	m->target = m->next_target;
	for (struct worker *w = m->wt.head, *nx; w; w = nx) {
		nx = w->next;
		if (w->gen != m->cur.id)
			worker_drain(m, w, old.cfg.kill_timeout_ms);
	}
	if (!same(old.cfg.log_file, m->cur.cfg.log_file) ||
	    !same(old.cfg.master_log_file, m->cur.cfg.master_log_file)) {
		char err[512];

		if (master_open_logs(m, err, sizeof(err)) != 0)
			log_error("%s: %s", op(m), err);
	}
	log_set_level(m->cur.cfg.log_level);
	m->sink.raw = m->cur.cfg.log_raw;
	log_info("%s: generation %u ready (%u workers); draining "
	    "generation %u", op(m), m->cur.id, m->target, old.id);
	m->upgrading = false;
	notify_systemd("READY=1\nSTATUS=%u workers ready, generation %u",
	    m->target, m->cur.id);
	control_outcome(m, "ok", "generation %u serving %u workers", m->cur.id,
	    m->target);
	gen_free(&old);
	gen_close_gone(m);
	master_dequeue(m);
}

void
gen_rollback(struct master *m, const char *why)
{
	ev_timer_stop(m->loop, &m->gen_timer);
	log_error("%s failed: %s; generation %u keeps serving", op(m), why,
	    m->cur.id);
	for (struct worker *w = m->wt.head, *nx; w; w = nx) {
		nx = w->next;
		if (w->gen == m->next.id)
			worker_drain(m, w, m->next.cfg.kill_timeout_ms);
	}
	gen_close_bound(&m->next);
	gen_free(&m->next);
	/* Told once the new listeners are closed: a deploy script may bind
	 * them next. READY=1 still, or systemd would stay "reloading". */
	control_outcome(m, "failed", "%s; generation %u keeps serving", why,
	    m->cur.id);
	notify_systemd("READY=1\nSTATUS=reload failed, generation %u serving "
	    "%u workers", m->cur.id, m->target);
	m->upgrading = false;
	master_dequeue(m);
}

/* A generation is in service when all its wanted workers are ready. */
void
gen_check(struct master *m)
{
	if (m->phase == M_STARTING &&
	    workers_count(&m->wt, m->cur.id, WS(W_READY)) >= m->target) {
		ev_timer_stop(m->loop, &m->gen_timer);
		m->phase = M_RUNNING;
		log_info("ready: %u workers", m->target);
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
		notify_systemd("READY=1\nSTATUS=%u workers ready, generation "
		    "%u", m->target, m->cur.id);
		master_dequeue(m);
	} else if (m->next.id && workers_count(&m->wt, m->next.id,
	    WS(W_READY)) >= m->next_target)
		gen_commit(m);
}

/* The generation's deadline counts from when its last worker was forked:
 * forking many workers, or a master stalled meanwhile, must not eat it. */
void
gen_deadline(struct master *m, unsigned ms)
{
	ev_now_update(m->loop);
	ev_timer_set(&m->gen_timer, ms / 1000.0, 0);
	ev_timer_start(m->loop, &m->gen_timer);
}

void
gen_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = t->data;
	unsigned reloading = m->next.id;
	struct generation *g;
	unsigned want;
	char d[32], why[512];

	(void)loop;
	(void)revents;
	/* After a stall of the master (SIGSTOP, a loaded machine), READY=1
	 * may be waiting on the socket: read it before judging. If that
	 * put the generation in service (and perhaps started a queued
	 * reload, with a deadline of its own), this deadline is void. */
	worker_notify_drain(m);
	if (reloading ? m->next.id != reloading : m->phase != M_STARTING)
		return;
	g = reloading ? &m->next : &m->cur;
	want = reloading ? m->next_target : m->target;
	format_duration(g->cfg.ready_timeout_ms, d, sizeof(d));
	snprintf(why, sizeof(why), "%u of %u workers ready after "
	    "ready_timeout %s%s%s", workers_count(&m->wt, g->id, WS(W_READY)),
	    want, d, m->why[0] ? "; last failure: " : "", m->why);
	if (m->next.id) {
		gen_rollback(m, why);
		return;
	}
	log_error("first generation not ready: %s", why);
	m->exit_code = EX_UNAVAIL_;
	master_stop(m, false);
}

/* What the master itself holds (its pid file lock, control socket, notify
 * socket, subreaper role) stays as started: say so if the file changed. */
static void
keep_start_only(struct master *m, struct config *c)
{
	static const struct {
		const char	*key;
		size_t		 off;
	} keys[] = {
		{ "pid_file", offsetof(struct config, pid_file) },
		{ "control_socket", offsetof(struct config, control_socket) },
		{ "runtime_dir", offsetof(struct config, runtime_dir) },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char **now = (char **)((char *)c + keys[i].off);
		char *was = *(char **)((char *)&m->cur.cfg + keys[i].off);

		if (same(*now, was))
			continue;
		log_warnx("%s: [master] %s changes only at a restart; keeping "
		    "%s", op(m), keys[i].key, was ? was : "none");
		free(*now);
		*now = was ? xstrdup(was) : NULL;
	}
	if (c->subreaper != m->cur.cfg.subreaper) {
		log_warnx("%s: [master] subreaper changes only at a restart",
		    op(m));
		c->subreaper = m->cur.cfg.subreaper;
	}
	gen_warn_root(c);
}

/* A reload that could not start: what it had is freed, nothing changed. */
static void
reload_refused(struct master *m, const char *why, const char *detail)
{
	log_error("%s refused: %s; nothing changed", op(m), why);
	notify_systemd("READY=1\nSTATUS=reload refused: %s", why);
	control_outcome(m, "refused", "%s", detail ? detail : why);
	gen_free(&m->next);
	m->upgrading = false;
}

/* HUP: a new generation with the re-read configuration; the old one is
 * drained only once the new one is ready (gen_commit), or stays if it
 * never is (gen_rollback). */
void
master_reload(struct master *m)
{
	struct errlist errs = { 0 };
	struct generation *g = &m->next;
	char err[512];

	if (m->phase == M_STOPPING)
		return;
	if (master_busy(m)) {
		master_enqueue(m, Q_RELOAD);
		return;
	}
	if (!m->upgrading)
		master_op_begin(m);
	log_info("%s: reading the configuration", op(m));
	if (!m->upgrading)
		notify_systemd_reloading();	/* an upgrade did, before */
	config_init(&g->cfg);
	if (m->load(m->load_arg, &g->cfg, &errs) != 0) {
		char detail[sizeof(err) + 512];

		for (size_t i = 0; i < errs.n; i++)
			log_error("%s", errs.v[i]);
		snprintf(err, sizeof(err), "the configuration has %zu error%s",
		    errs.n, errs.n == 1 ? "" : "s");
		snprintf(detail, sizeof(detail), "%s: %s", err,
		    errs.n ? errs.v[0] : "?");
		errlist_free(&errs);
		reload_refused(m, err, detail);
		return;
	}
	errlist_free(&errs);
	keep_start_only(m, &g->cfg);
	if (gen_bind(g, &m->cur, err, sizeof(err)) != 0) {
		reload_refused(m, err, NULL);
		return;
	}
	g->id = ++m->last_gen;
	if (gen_plan(m, g, err, sizeof(err)) != 0) {
		gen_close_bound(g);
		reload_refused(m, err, NULL);
		return;
	}
	/* The runtime count (TTIN/TTOU) survives unless count changed. */
	m->next_target = g->cfg.count != m->cur.cfg.count ? g->cfg.count :
	    m->target;
	m->why[0] = '\0';
	log_info("%s: starting generation %u (%u workers)", op(m), g->id,
	    m->next_target);
	for (unsigned s = 0; s < m->next_target; s++)
		worker_start(m, g->id, s);
	gen_deadline(m, g->cfg.ready_timeout_ms);
	gen_check(m);
}
