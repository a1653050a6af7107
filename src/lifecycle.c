/*
 * One worker's life. What happens to a worker on each event:
 *   exec failed        logged once; its exit follows
 *   exec succeeded     ready now (ready = 0), after the ready delay, or on
 *                      READY=1 (ready = notify) within ready_timeout
 *   exit               stopping or draining: forgotten; new generation of
 *                      a reload: the reload is rolled back; else its slot
 *                      restarts (at once, or after the crash-loop backoff)
 *   timer              starting: ready, or stopped for not getting ready;
 *                      backoff: respawn; draining: KILL; ready: watchdog
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "logging.h"
#include "master.h"
#include "notify.h"
#include "pidfile.h"

/* Signal a worker's whole process group (a wrapper script and its server
 * stop together); only ever called for an unreaped child. */
void
worker_signal(struct worker *w, int sig)
{
	if (w->pid <= 0)
		return;
	if (kill(-w->pid, sig) == -1)
		kill(w->pid, sig);
}

void
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

void
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

void
worker_ready(struct master *m, struct worker *w)
{
	const struct config *c = &gen_of(m, w)->cfg;

	w->state = W_READY;
	w->ready_at = w->pinged = mono_now();
	ev_timer_stop(m->loop, &w->timer);
	if (c->ready_notify && c->watchdog_ms > 0) {
		ev_timer_set(&w->timer, 0, c->watchdog_ms / 1000.0);
		ev_timer_again(m->loop, &w->timer);
	}
	log_debug("worker %u (pid %ld) ready", w->slot, (long)w->pid);
	gen_check(m);
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
	else {
		/* The ready delay, or how long READY=1 may take. */
		ev_timer_set(&w->timer, (g->cfg.ready_notify ?
		    g->cfg.ready_timeout_ms : g->cfg.ready_ms) / 1000.0, 0);
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

void
worker_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;
	struct master *m = w->master;

	(void)loop;
	(void)revents;
	const struct config *c = &gen_of(m, w)->cfg;
	char d[32];

	if (c->ready_notify &&
	    (w->state == W_STARTING || w->state == W_READY)) {
		/* After a stall of the master, what the worker sent meanwhile
		 * is still on the socket: read it before judging. */
		worker_notify_drain(m);
		if (w->state != W_STARTING && w->state != W_READY)
			return;
		if (w->state == W_READY && !ev_is_active(&w->timer))
			return;		/* it just became ready */
		if (w->state == W_READY &&
		    mono_now() - w->pinged < c->watchdog_ms / 1000.0)
			return;		/* it pinged: the timer was re-armed */
	}
	switch (w->state) {
	case W_STARTING:
		if (!c->ready_notify) {
			worker_ready(m, w);
			break;
		}
		/* Counts as a failed start; it may be serving already, so it
		 * is stopped gracefully like any other. */
		format_duration(c->ready_timeout_ms, d, sizeof(d));
		log_error("worker %u (pid %ld) sent no READY=1 within "
		    "ready_timeout %s; stopping it", w->slot, (long)w->pid, d);
		snprintf(m->why, sizeof(m->why), "worker %u sent no READY=1",
		    w->slot);
		w->failed_start = true;
		worker_drain(m, w, c->kill_timeout_ms);
		break;
	case W_BACKOFF:
		worker_spawn(m, w);
		break;
	case W_DRAINING:
		log_warnx("worker %u (pid %ld) still running after "
		    "kill_timeout; sending KILL", w->slot, (long)w->pid);
		worker_signal(w, SIGKILL);
		break;
	case W_READY:
		/* Only the watchdog runs a timer on a ready worker. */
		format_duration(c->watchdog_ms, d, sizeof(d));
		log_error("worker %u (pid %ld) sent no WATCHDOG=1 for %s; "
		    "killing it", w->slot, (long)w->pid, d);
		ev_timer_stop(m->loop, &w->timer);
		worker_signal(w, SIGKILL);
		break;
	}
}

void
worker_notify_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	worker_notify_drain(io->data);
}

void
worker_notify_drain(struct master *m)
{
	struct notify_msg msg;
	struct worker *w;

	if (m->notify_fd == -1)
		return;
	/* Bounded: a flood cannot hold the loop. */
	for (int i = 0; i < 256 && notify_recv(m->notify_fd, &msg) == 1; i++) {
		if ((w = workers_find_pid(&m->wt, msg.pid)) == NULL) {
			log_debug("notify message from pid %ld, not a worker; "
			    "ignored", (long)msg.pid);
			continue;
		}
		if (msg.status[0])
			log_debug("worker %u (pid %ld) status: %s", w->slot,
			    (long)w->pid, msg.status);
		/* A datagram from its pid means it exec'd: the exec pipe's
		 * EOF may just not have been read yet in this iteration. */
		if (msg.ready && w->state == W_STARTING &&
		    ev_is_active(&w->execio))
			exec_result(m, w);
		if (msg.ready && w->state == W_STARTING && w->exec_ok &&
		    gen_of(m, w)->cfg.ready_notify)
			worker_ready(m, w);
		else if (msg.watchdog && w->state == W_READY &&
		    ev_is_active(&w->timer)) {
			w->pinged = mono_now();
			ev_timer_again(m->loop, &w->timer);
		}
	}
}

static void
schedule_restart(struct master *m, struct worker *w, unsigned delay_ms)
{
	w->state = W_BACKOFF;
	w->pid = 0;
	ev_timer_stop(m->loop, &w->timer);
	if (delay_ms == 0) {
		worker_spawn(m, w);
		return;
	}
	ev_timer_set(&w->timer, delay_ms / 1000.0, 0);
	ev_timer_start(m->loop, &w->timer);
}

/* Wait for the exec-error pipe's verdict (EOF: the exec worked). */
void
worker_watch_exec(struct master *m, struct worker *w, int fd)
{
	ev_io_init(&w->execio, execio_cb, fd, EV_READ);
	w->execio.data = w;
	ev_io_start(m->loop, &w->execio);
}

void
worker_spawn(struct master *m, struct worker *w)
{
	struct generation *g = gen_of(m, w);
	struct logpipe *lp = NULL;
	const char *what = "pipe";
	int execfd, wfd, e = 0;
	pid_t pid = -1;

	if (g->plan.path == NULL) {
		what = "exec";		/* an adopted generation without a plan */
		e = ENOENT;
	} else if ((lp = logpipe_open(&m->sink, w->slot, &wfd)) == NULL)
		e = errno;
	else {
		pid = spawn_worker(&g->plan, w->slot, wfd, wfd, &execfd, &what);
		e = errno;
		close(wfd);
		if (pid == -1)
			logpipe_free(lp);
	}
	if (pid == -1) {
		/* EAGAIN, ENOMEM, EMFILE: retry with the crash-loop backoff. */
		snprintf(m->why, sizeof(m->why), "%s: %s", what, strerror(e));
		w->backoff_ms = workers_backoff(w->backoff_ms, false, 0,
		    g->cfg.restart_delay_max_ms);
		log_warnx("worker %u: %s (retrying in %ums)", w->slot, m->why,
		    w->backoff_ms);
		schedule_restart(m, w, w->backoff_ms);
		return;
	}
	lp->pid = pid;
	lp->owner = &w->out;
	w->out = lp;
	w->pid = pid;
	w->state = W_STARTING;
	w->exec_ok = false;
	w->started = mono_now();
	w->ready_at = 0;
	worker_watch_exec(m, w, execfd);
	log_debug("worker %u (pid %ld) started, generation %u", w->slot,
	    (long)pid, w->gen);
}

void
worker_start(struct master *m, unsigned gen, unsigned slot)
{
	struct worker *w = workers_add(&m->wt, slot, gen);

	w->master = m;
	ev_init(&w->timer, worker_timer_cb);
	w->timer.data = w;
	worker_spawn(m, w);
}

void
worker_exited(struct master *m, struct worker *w, int status)
{
	struct generation *g = gen_of(m, w);
	bool was_ready = w->state == W_READY;
	ev_tstamp now = mono_now();
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

	if (w->state == W_DRAINING && w->failed_start &&
	    m->phase != M_STOPPING && w->gen == m->cur.id &&
	    w->slot < m->target &&
	    workers_find_slot(&m->wt, w->gen, w->slot) == NULL) {
		was_ready = false;
		w->failed_start = false;
	} else if (m->phase == M_STOPPING || w->state == W_DRAINING ||
	    (w->gen != m->cur.id && w->gen != m->next.id) ||
	    (w->gen == m->cur.id && w->slot >= m->target)) {
		log_info("worker %u (pid %ld) %s", w->slot, pid, how);
		workers_remove(&m->wt, w);
		if (m->phase == M_STOPPING &&
		    workers_count_all(&m->wt, WS_LIVE) == 0)
			master_finish(m);
		else
			gen_close_gone(m);
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
		gen_rollback(m, why);
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
