/*
 * The master: one libev loop. Signals, one catch-all child watcher, timers
 * and the workers' exec-error pipes are its only inputs; every worker
 * transition happens here.
 *
 * What happens to a worker on each event:
 *   exec failed        logged once; its exit follows
 *   exec succeeded     ready now (ready = 0) or after the ready delay
 *   exit               stopping or draining: forgotten; new generation of
 *                      a reload: the reload is rolled back; else its slot
 *                      restarts (at once, or after the crash-loop backoff)
 *   timer              starting: ready; backoff: respawn; draining: KILL
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logging.h"
#include "master.h"
#include "pidfile.h"

extern char **environ;

static void	spawn_slot(struct master *, struct worker *);
static void	master_stop(struct master *, bool quick);
static void	reload(struct master *);

static const int handled_signals[MASTER_NSIG] = {
	SIGTERM, SIGQUIT, SIGINT, SIGHUP, SIGUSR2, SIGUSR1, SIGTTIN, SIGTTOU,
	SIGPIPE, SIGWINCH, SIGCHLD,
};

void
master_init(struct master *m, struct config *c, config_loader load,
    void *load_arg)
{
	memset(m, 0, sizeof(*m));
	m->cur.cfg = *c;
	memset(c, 0, sizeof(*c));
	config_init(c);
	m->load = load;
	m->load_arg = load_arg;
	m->pid = getpid();
	m->devnull = -1;
	m->log_fd = -1;
	m->mlog_fd = -1;
	m->out_fd = 2;
	m->pid_fd = -1;
	m->target = m->cur.cfg.count;
}

static int
open_log(const char *path, int *fd, char *err, size_t len)
{
	int nfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOCTTY, 0640);

	if (nfd == -1) {
		snprintf(err, len, "log file %s: %s", path, strerror(errno));
		return EX_CANTCREAT_;
	}
	if (*fd == -1)
		*fd = nfd;
	else {
		/* Reopen in place: the number others hold stays valid. */
		dup3(nfd, *fd, O_CLOEXEC);
		close(nfd);
	}
	return 0;
}

int
master_open_logs(struct master *m, char *err, size_t len)
{
	const struct config *c = &m->cur.cfg;
	int r;

	if (!c->log_file && m->log_fd != -1) {
		close(m->log_fd);
		m->log_fd = -1;
	}
	if (!c->master_log_file && m->mlog_fd != -1) {
		close(m->mlog_fd);
		m->mlog_fd = -1;
	}
	if (c->log_file && (r = open_log(c->log_file, &m->log_fd, err, len)))
		return r;
	if (c->master_log_file &&
	    (r = open_log(c->master_log_file, &m->mlog_fd, err, len)) != 0)
		return r;
	m->out_fd = m->log_fd != -1 ? m->log_fd : 2;
	m->sink.fd = m->out_fd;
	m->sink.raw = c->log_raw;
	log_set_fd(m->mlog_fd != -1 ? m->mlog_fd : m->out_fd);
	return 0;
}

static void
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
static void
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
static int
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
master_bind(struct master *m, char *err, size_t len)
{
	return gen_bind(&m->cur, NULL, err, len);
}

static int
gen_plan(struct master *m, struct generation *g, char *err, size_t len)
{
	if (spawn_plan_build(&g->plan, &g->cfg, environ, g->fds, (int)g->nls,
	    g->fdnames, g->id, m->pid, NULL, err, len) == -1)
		return -1;
	g->plan.devnull = m->devnull;
	return 0;
}

static struct generation *
gen_of(struct master *m, const struct worker *w)
{
	return w->gen == m->next.id && m->next.id ? &m->next : &m->cur;
}

/* Signal a worker's whole process group (a wrapper script and its server
 * stop together); only ever called for an unreaped child. */
static void
worker_signal(struct worker *w, int sig)
{
	if (w->pid <= 0)
		return;
	if (kill(-w->pid, sig) == -1)
		kill(w->pid, sig);
}

static void
worker_drain(struct master *m, struct worker *w, int64_t timeout_ms)
{
	if (w->state == W_BACKOFF) {
		ev_timer_stop(m->loop, &w->timer);
		workers_remove(&m->wt, w);
		return;
	}
	if (w->state == W_DRAINING)
		return;
	worker_signal(w, gen_of(m, w)->cfg.stop_signal);
	w->state = W_DRAINING;
	ev_timer_stop(m->loop, &w->timer);
	if (timeout_ms >= 0) {
		ev_timer_set(&w->timer, timeout_ms / 1000.0, 0);
		ev_timer_start(m->loop, &w->timer);
	}
}

static void
describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %s%s",
		    signal_name(WTERMSIG(status)),
		    WCOREDUMP(status) ? " (core dumped)" : "");
	else
		snprintf(buf, len, "ended with wait status %d", status);
}

/* Listeners that left the config close once no old worker uses them. */
static void
close_gone(struct master *m)
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

static void
commit_reload(struct master *m)
{
	struct generation old = m->cur;
	size_t i, j;

	ev_timer_stop(m->loop, &m->gen_timer);
	for (i = 0; i < old.nls; i++) {
		for (j = 0; j < m->next.nls; j++)
			if (m->next.ls[j].fd == old.ls[i].fd)
				break;
		if (j == m->next.nls) {
			m->gone = xrealloc(m->gone, (m->ngone + 1) *
			    sizeof(*m->gone));
			m->gone[m->ngone++] = old.ls[i];
		}
	}
	m->cur = m->next;
	memset(&m->next, 0, sizeof(m->next));
	m->target = m->next_target;
	for (struct worker *w = m->wt.head, *nx; w; w = nx) {
		nx = w->next;
		if (w->gen != m->cur.id)
			worker_drain(m, w, old.cfg.kill_timeout_ms);
	}
	if (strcmp(old.cfg.log_file ? old.cfg.log_file : "",
	    m->cur.cfg.log_file ? m->cur.cfg.log_file : "") != 0 ||
	    strcmp(old.cfg.master_log_file ? old.cfg.master_log_file : "",
	    m->cur.cfg.master_log_file ? m->cur.cfg.master_log_file : "") != 0) {
		char err[512];

		if (master_open_logs(m, err, sizeof(err)) != 0)
			log_error("reload: %s", err);
	}
	log_set_level(m->cur.cfg.log_level);
	log_info("reload: generation %u ready (%u workers); draining "
	    "generation %u", m->cur.id, m->target, old.id);
	gen_free(&old);
	close_gone(m);
	if (m->reload_queued) {
		m->reload_queued = false;
		reload(m);
	}
}

static void
rollback(struct master *m, const char *why)
{
	ev_timer_stop(m->loop, &m->gen_timer);
	log_error("reload failed: %s; generation %u keeps serving", why,
	    m->cur.id);
	for (struct worker *w = m->wt.head, *nx; w; w = nx) {
		nx = w->next;
		if (w->gen == m->next.id)
			worker_drain(m, w, m->next.cfg.kill_timeout_ms);
	}
	gen_close_bound(&m->next);
	gen_free(&m->next);
	if (m->reload_queued) {
		m->reload_queued = false;
		reload(m);
	}
}

/* A generation is in service when all its wanted workers are ready. */
static void
check_generation(struct master *m)
{
	if (m->phase == M_STARTING &&
	    workers_count(&m->wt, m->cur.id, WS(W_READY)) >= m->target) {
		ev_timer_stop(m->loop, &m->gen_timer);
		m->phase = M_RUNNING;
		log_info("ready: %u workers", m->target);
		if (m->reload_queued) {
			m->reload_queued = false;
			reload(m);
		}
	} else if (m->next.id && workers_count(&m->wt, m->next.id,
	    WS(W_READY)) >= m->next_target)
		commit_reload(m);
}

static void
worker_ready(struct master *m, struct worker *w)
{
	w->state = W_READY;
	w->ready_at = ev_now(m->loop);
	log_debug("worker %u (pid %ld) ready", w->slot, (long)w->pid);
	check_generation(m);
}

/* Read the exec-error pipe: EOF means the exec worked. */
static void
exec_result(struct master *m, struct worker *w)
{
	struct generation *g = gen_of(m, w);
	struct spawn_report r;
	ssize_t n;

	do
		n = read(w->execio.fd, &r, sizeof(r));
	while (n == -1 && errno == EINTR);
	ev_io_stop(m->loop, &w->execio);
	close(w->execio.fd);
	ev_io_set(&w->execio, -1, EV_READ);

	if (n == (ssize_t)sizeof(r)) {
		snprintf(m->why, sizeof(m->why), "cannot %s %s: %s",
		    spawn_stage_name(r.stage), g->plan.path, strerror(r.err));
		if (r.stage != m->exec_stage || r.err != m->exec_errno)
			log_error("worker %u: %s", w->slot, m->why);
		m->exec_stage = r.stage;
		m->exec_errno = r.err;
		return;		/* it exits 127; the child watcher goes on */
	}
	w->exec_ok = true;
	m->exec_stage = 0;
	m->exec_errno = 0;
	if (w->state != W_STARTING)
		return;
	if (g->cfg.ready_ms == 0 && !g->cfg.ready_notify)
		worker_ready(m, w);
	else if (!g->cfg.ready_notify) {
		ev_timer_set(&w->timer, g->cfg.ready_ms / 1000.0, 0);
		ev_timer_start(m->loop, &w->timer);
	}
}

static void
execio_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = io->data;

	(void)loop;
	(void)revents;
	exec_result(w->master, w);
}

static void
worker_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;
	struct master *m = w->master;

	(void)loop;
	(void)revents;
	switch (w->state) {
	case W_STARTING:
		worker_ready(m, w);
		break;
	case W_BACKOFF:
		spawn_slot(m, w);
		break;
	case W_DRAINING:
		log_warnx("worker %u (pid %ld) still running after "
		    "kill_timeout; sending KILL", w->slot, (long)w->pid);
		worker_signal(w, SIGKILL);
		break;
	case W_READY:
		break;
	}
}

static void
schedule_restart(struct master *m, struct worker *w, unsigned delay_ms)
{
	w->state = W_BACKOFF;
	w->pid = 0;
	ev_timer_stop(m->loop, &w->timer);
	if (delay_ms == 0) {
		spawn_slot(m, w);
		return;
	}
	ev_timer_set(&w->timer, delay_ms / 1000.0, 0);
	ev_timer_start(m->loop, &w->timer);
}

static void
spawn_slot(struct master *m, struct worker *w)
{
	struct generation *g = gen_of(m, w);
	struct logpipe *lp;
	int execfd, wfd;
	pid_t pid = -1;

	if ((lp = logpipe_open(&m->sink, w->slot, &wfd)) != NULL) {
		pid = spawn_worker(&g->plan, w->slot, wfd, wfd, &execfd);
		close(wfd);
		if (pid == -1)
			logpipe_free(lp);
	}
	if (pid == -1) {
		/* EAGAIN, ENOMEM: retry with the crash-loop backoff. */
		snprintf(m->why, sizeof(m->why), "%s: %s", lp ? "fork" :
		    "pipe", strerror(errno));
		w->backoff_ms = workers_backoff(w->backoff_ms, false, 0,
		    g->cfg.restart_delay_max_ms);
		log_warn("worker %u: %s (retrying in %ums)", w->slot,
		    lp ? "fork" : "pipe", w->backoff_ms);
		schedule_restart(m, w, w->backoff_ms);
		return;
	}
	lp->pid = pid;
	lp->owner = &w->out;
	w->out = lp;
	w->pid = pid;
	w->state = W_STARTING;
	w->exec_ok = false;
	w->started = ev_now(m->loop);
	w->ready_at = 0;
	ev_io_init(&w->execio, execio_cb, execfd, EV_READ);
	w->execio.data = w;
	ev_io_start(m->loop, &w->execio);
	log_debug("worker %u (pid %ld) started, generation %u", w->slot,
	    (long)pid, w->gen);
}

static void
start_worker(struct master *m, unsigned gen, unsigned slot)
{
	struct worker *w = workers_add(&m->wt, slot, gen);

	w->master = m;
	ev_init(&w->timer, worker_timer_cb);
	w->timer.data = w;
	spawn_slot(m, w);
}

static void
finish(struct master *m)
{
	ev_timer_stop(m->loop, &m->stop_timer);
	for (size_t i = 0; i < m->cur.nls; i++)
		listen_close(&m->cur.ls[i], true);
	for (size_t i = 0; i < m->ngone; i++)
		listen_close(&m->gone[i], true);
	if (m->next.id)
		gen_close_bound(&m->next);
	if (m->cur.cfg.pid_file)
		pidfile_remove(m->cur.cfg.pid_file, m->pid_fd, m->pid);
	m->pid_fd = -1;
	logsink_close_all(&m->sink);
	log_info("exiting with status %d", m->exit_code);
	ev_break(m->loop, EVBREAK_ALL);
}

static void
worker_exited(struct master *m, struct worker *w, int status)
{
	struct generation *g = gen_of(m, w);
	bool was_ready = w->state == W_READY;
	ev_tstamp now = ev_now(m->loop);
	long pid = (long)w->pid;
	char how[96], why[320];

	if (ev_is_active(&w->execio))
		exec_result(m, w);
	if (w->out) {
		struct logpipe *lp = w->out;

		/* Its last lines before the line about its exit; the pipe
		 * lives on while a grandchild holds it. */
		logpipe_drain(lp);
		if (w->out)
			lp->owner = NULL;
		w->out = NULL;
	}
	ev_timer_stop(m->loop, &w->timer);
	w->last_status = status;
	w->pid = 0;	/* reaped: never signal this pid again */
	describe_status(status, how, sizeof(how));

	if (m->phase == M_STOPPING || w->state == W_DRAINING ||
	    (w->gen != m->cur.id && w->gen != m->next.id) ||
	    (w->gen == m->cur.id && w->slot >= m->target)) {
		log_info("worker %u (pid %ld) %s", w->slot, pid, how);
		workers_remove(&m->wt, w);
		if (m->phase == M_STOPPING &&
		    workers_count_all(&m->wt, WS_LIVE) == 0)
			finish(m);
		else
			close_gone(m);
		return;
	}
	if (w->gen == m->next.id) {
		/* A new generation never restarts before it is in service. */
		if (w->exec_ok)
			snprintf(why, sizeof(why), "worker %u (pid %ld) of "
			    "generation %u %s before the generation was ready",
			    w->slot, pid, w->gen, how);
		else
			snprintf(why, sizeof(why), "worker %u: %s", w->slot,
			    m->why);
		workers_remove(&m->wt, w);
		rollback(m, why);
		return;
	}

	w->backoff_ms = workers_backoff(w->backoff_ms, was_ready,
	    was_ready ? now - w->ready_at : 0, g->cfg.restart_delay_max_ms);
	w->restarts++;
	if (w->exec_ok)
		snprintf(m->why, sizeof(m->why), "worker %u %s", w->slot, how);
	if (w->backoff_ms)
		log_info("worker %u (pid %ld) %s; restarting in %ums",
		    w->slot, pid, how, w->backoff_ms);
	else
		log_info("worker %u (pid %ld) %s; restarting", w->slot, pid,
		    how);
	schedule_restart(m, w, w->backoff_ms);
}

static void
child_cb(struct ev_loop *loop, ev_child *c, int revents)
{
	struct master *m = c->data;
	struct worker *w;

	(void)loop;
	(void)revents;
	if ((w = workers_find_pid(&m->wt, c->rpid)) != NULL)
		worker_exited(m, w, c->rstatus);
	else	/* an orphan reaped as a subreaper (or PID 1) */
		log_debug("reaped pid %ld", (long)c->rpid);
}

static void
gen_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = t->data;
	struct generation *g = m->next.id ? &m->next : &m->cur;
	unsigned want = m->next.id ? m->next_target : m->target;
	char d[32], why[512];

	(void)loop;
	(void)revents;
	format_duration(g->cfg.ready_timeout_ms, d, sizeof(d));
	snprintf(why, sizeof(why), "%u of %u workers ready after "
	    "ready_timeout %s%s%s", workers_count(&m->wt, g->id, WS(W_READY)),
	    want, d, m->why[0] ? "; last failure: " : "", m->why);
	if (m->next.id) {
		rollback(m, why);
		return;
	}
	log_error("first generation not ready: %s", why);
	m->exit_code = EX_UNAVAIL_;
	master_stop(m, false);
}

static void
stop_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = t->data;

	(void)loop;
	(void)revents;
	for (struct worker *w = m->wt.head; w; w = w->next)
		if (w->pid > 0) {
			log_warnx("worker %u (pid %ld) still running; sending "
			    "KILL", w->slot, (long)w->pid);
			worker_signal(w, SIGKILL);
		}
}

static void
master_stop(struct master *m, bool quick)
{
	if (m->phase == M_STOPPING) {
		log_info("second stop signal: killing the workers now");
		for (struct worker *w = m->wt.head; w; w = w->next)
			worker_signal(w, SIGKILL);
		return;
	}
	m->phase = M_STOPPING;
	ev_timer_stop(m->loop, &m->gen_timer);
	log_info("stopping %u workers (%s)", workers_count_all(&m->wt,
	    WS_LIVE), quick ? "quick" : "graceful");
	/* One deadline for all; draining workers keep their earlier one. */
	for (struct worker *w = m->wt.head, *nx; w; w = nx) {
		nx = w->next;
		worker_drain(m, w, -1);
	}
	ev_timer_init(&m->stop_timer, stop_timer_cb, quick ? 1.0 :
	    m->cur.cfg.kill_timeout_ms / 1000.0, 0);
	m->stop_timer.data = m;
	ev_timer_start(m->loop, &m->stop_timer);
	if (workers_count_all(&m->wt, WS_LIVE) == 0)
		finish(m);
}

/* Start or drain workers of generation gen from have to want slots. */
static void
scale_gen(struct master *m, unsigned gen, unsigned have, unsigned want)
{
	struct worker *w;
	int slot;

	for (; have < want; have++)
		if ((slot = workers_free_slot(&m->wt, gen, have + 1)) >= 0)
			start_worker(m, gen, (unsigned)slot);
	while (have > want) {
		have--;
		/* The newest slot goes. */
		if ((w = workers_find_slot(&m->wt, gen, have)) != NULL)
			worker_drain(m, w, gen_of(m, w)->cfg.kill_timeout_ms);
	}
}

static void
scale(struct master *m, unsigned want)
{
	if (m->phase == M_STOPPING)
		return;
	log_info("workers: %u -> %u", m->target, want);
	scale_gen(m, m->cur.id, m->target, want);
	if (m->next.id) {
		scale_gen(m, m->next.id, m->next_target, want);
		m->next_target = want;
	}
	m->target = want;
	check_generation(m);
}

/* HUP: a new generation with the re-read configuration; the old one is
 * drained only once the new one is ready (commit_reload), or stays if it
 * never is (rollback). */
static void
reload(struct master *m)
{
	struct errlist errs = { 0 };
	struct generation *g = &m->next;
	char err[512];

	if (m->phase == M_STOPPING)
		return;
	if (m->phase == M_STARTING || m->next.id) {
		if (!m->reload_queued)
			log_info("reload: queued until the current one ends");
		m->reload_queued = true;
		return;
	}
	log_info("reload: reading the configuration");
	config_init(&g->cfg);
	if (m->load(m->load_arg, &g->cfg, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			log_error("%s", errs.v[i]);
		log_error("reload refused: the configuration has %zu error%s; "
		    "nothing changed", errs.n, errs.n == 1 ? "" : "s");
		errlist_free(&errs);
		gen_free(g);
		return;
	}
	errlist_free(&errs);
	if (gen_bind(g, &m->cur, err, sizeof(err)) != 0) {
		log_error("reload refused: %s; nothing changed", err);
		gen_free(g);
		return;
	}
	g->id = ++m->last_gen;
	if (gen_plan(m, g, err, sizeof(err)) != 0) {
		log_error("reload refused: %s; nothing changed", err);
		gen_close_bound(g);
		gen_free(g);
		return;
	}
	/* The runtime count (TTIN/TTOU) survives unless count changed. */
	m->next_target = g->cfg.count != m->cur.cfg.count ? g->cfg.count :
	    m->target;
	m->why[0] = '\0';
	log_info("reload: starting generation %u (%u workers)", g->id,
	    m->next_target);
	ev_timer_set(&m->gen_timer, g->cfg.ready_timeout_ms / 1000.0, 0);
	ev_timer_start(m->loop, &m->gen_timer);
	for (unsigned s = 0; s < m->next_target; s++)
		start_worker(m, g->id, s);
	check_generation(m);
}

static void
reopen_logs(struct master *m)
{
	char err[512];

	if (master_open_logs(m, err, sizeof(err)) != 0)
		log_error("reopen: %s", err);
	else
		log_info("log files reopened");
}

static void
signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct master *m = s->data;

	(void)loop;
	(void)revents;
	switch (s->signum) {
	case SIGTERM:
	case SIGQUIT:
		log_info("got %s", signal_name(s->signum));
		master_stop(m, false);
		break;
	case SIGINT:
		log_info("got INT");
		master_stop(m, true);
		break;
	case SIGHUP:
		reload(m);
		break;
	case SIGUSR2:
		log_warnx("got USR2: the in-place upgrade is not implemented "
		    "yet; reloading instead");
		reload(m);
		break;
	case SIGUSR1:
		reopen_logs(m);
		break;
	case SIGTTIN:
		scale(m, m->target + 1);
		break;
	case SIGTTOU:
		if (m->target > 0)
			scale(m, m->target - 1);
		break;
	default:
		break;	/* PIPE, WINCH: ignored */
	}
}

int
master_run(struct master *m)
{
	struct config *c = &m->cur.cfg;
	char err[512];
	sigset_t set;

	m->loop = ev_default_loop(EVFLAG_AUTO);
	if (m->loop == NULL) {
		log_error("cannot initialise the event loop");
		return EX_OSERR_;
	}
	/* The catch-all child watcher before the first fork. */
	ev_child_init(&m->child, child_cb, 0, 0);
	m->child.data = m;
	ev_child_start(m->loop, &m->child);
	for (int i = 0; i < MASTER_NSIG; i++) {
		if (handled_signals[i] == SIGCHLD)
			continue;	/* libev's own */
		ev_signal_init(&m->sigs[i], signal_cb, handled_signals[i]);
		m->sigs[i].data = m;
		ev_signal_start(m->loop, &m->sigs[i]);
	}
	/* Every watcher is in place: let what main() held through. */
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	ev_init(&m->gen_timer, gen_timer_cb);
	m->gen_timer.data = m;
	m->sink.loop = m->loop;

	if ((c->subreaper == SUBREAPER_YES ||
	    (c->subreaper == SUBREAPER_AUTO && m->pid == 1)) &&
	    prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		log_warn("subreaper");
	m->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (m->devnull == -1) {
		log_warn("/dev/null");
		return EX_OSERR_;
	}
	m->cur.id = m->last_gen = 1;
	if (gen_plan(m, &m->cur, err, sizeof(err)) != 0) {
		log_error("%s", err);
		gen_close_bound(&m->cur);
		return EX_UNAVAIL_;
	}
	if (c->user && c->uid == 0)
		log_warnx("workers run as root");

	m->phase = M_STARTING;
	ev_timer_set(&m->gen_timer, c->ready_timeout_ms / 1000.0, 0);
	ev_timer_start(m->loop, &m->gen_timer);
	log_info("starting %u workers: %s", m->target, c->command);
	for (unsigned s = 0; s < m->target; s++)
		start_worker(m, m->cur.id, s);
	check_generation(m);

	ev_run(m->loop, 0);
	return m->exit_code;
}

void
master_free(struct master *m)
{
	struct worker *w;

	while ((w = m->wt.head) != NULL) {
		if (ev_is_active(&w->execio))
			close(w->execio.fd);
		workers_remove(&m->wt, w);
	}
	gen_free(&m->cur);
	gen_free(&m->next);
	free(m->gone);
	if (m->devnull != -1)
		close(m->devnull);
	if (m->log_fd != -1)
		close(m->log_fd);
	if (m->mlog_fd != -1)
		close(m->mlog_fd);
}
