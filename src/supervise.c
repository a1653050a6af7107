/*
 * Worker processes: events in, the state machine's actions out. See fsm.c
 * for what each event does in each state.
 */
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervise.h"

static void	sv_step(struct supervisor *, struct worker *, enum worker_event,
		    bool respawn, int64_t kill_ms);
static void	ready_cb(struct ev_loop *, ev_io *, int);

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

/* sig to w's process, or to its whole process group; only ever called
 * for an unreaped child. A worker that left its group gets it alone. */
static void
signal_worker(struct worker *w, int sig, bool group)
{
	if (w->pid <= 0)
		return;
	if (!group || kill(-w->pid, sig) == -1)
		kill(w->pid, sig);
}

/* The stop signal goes to the group only with kill_mode group: a server's
 * own children (CGI, a prefork pool) are its business. */
static void
signal_stop(struct worker *w)
{
	const struct config *c = &w->g->cfg;

	signal_worker(w, c->stop_signal, c->kill_mode == KILL_GROUP);
}

void
sv_kill(struct worker *w)
{
	if (w->pid > 0)
		w->killed = true;
	signal_worker(w, SIGKILL, w->g->cfg.kill_mode != KILL_PROCESS);
}

static void
arm(struct supervisor *sv, struct worker *w, int64_t ms, int64_t repeat_ms)
{
	ev_timer_stop(sv->loop, &w->timer);
	ev_timer_set(&w->timer, ms / 1000.0, repeat_ms / 1000.0);
	ev_timer_start(sv->loop, &w->timer);
}

/* Read the exec-error pipe: EOF means the exec worked. */
static void
exec_result(struct supervisor *sv, struct worker *w)
{
	struct spawn_report r;
	ssize_t n;

	do
		n = read(w->execio.fd, &r, sizeof(r));
	while (n == -1 && errno == EINTR);
	ev_io_stop(sv->loop, &w->execio);
	close(w->execio.fd);
	ev_io_set(&w->execio, -1, EV_READ);
	if (n != (ssize_t)sizeof(r)) {
		w->exec_ok = true;
		sv->exec_stage = 0;
		sv->exec_errno = 0;
		sv_step(sv, w, WE_EXEC_OK, false, -1);
		return;
	}
	if (r.stage == SP_CHDIR)
		snprintf(sv->why, sizeof(sv->why), "cannot chdir to "
		    "working_dir %s: %s", w->g->cfg.working_dir,
		    strerror(r.err));
	else
		snprintf(sv->why, sizeof(sv->why), "cannot %s %s: %s",
		    spawn_stage_name(r.stage), w->g->plan.path,
		    strerror(r.err));
	if (r.stage != sv->exec_stage || r.err != sv->exec_errno)
		log_error("worker %u: %s", w->slot, sv->why);
	sv->exec_stage = r.stage;
	sv->exec_errno = r.err;
	sv_step(sv, w, WE_EXEC_FAILED, false, -1);	/* it exits 127 */
}

static void
execio_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = io->data;

	(void)loop;
	(void)revents;
	exec_result(w->sv, w);
}

static void
watch_exec(struct supervisor *sv, struct worker *w, int fd)
{
	ev_io_init(&w->execio, execio_cb, fd, EV_READ);
	w->execio.data = w;
	ev_io_start(sv->loop, &w->execio);
}

/* One timer per worker; what it means depends on the state. */
static void
timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;
	struct supervisor *sv = w->sv;
	const struct config *c = &w->g->cfg;
	char d[32];

	(void)loop;
	(void)revents;
	/* A READY=1 or WATCHDOG=1 that waits on the socket counts: the notify
	 * watcher's priority orders it first within one loop iteration, but
	 * after a stop and SIGCONT the poll returns EINTR with no events and
	 * the expired timer comes alone. */
	if (c->ready_notify && (w->state == W_STARTING ||
	    w->state == W_READY)) {
		enum worker_state was = w->state;
		double pinged = w->pinged;

		sv_notify_read(sv, w->g);
		if (w->state != was || w->pinged != pinged)
			return;		/* it became ready, or it pinged */
	}
	switch (w->state) {
	case W_STARTING:
		if (!c->ready_notify) {
			sv_step(sv, w, WE_DELAY, false, -1);
			break;
		}
		format_duration(c->ready_timeout_ms, d, sizeof(d));
		log_error("worker %u (pid %ld) sent no READY=1 within "
		    "ready_timeout %s; stopping it", w->slot, (long)w->pid, d);
		snprintf(sv->why, sizeof(sv->why), "worker %u sent no READY=1",
		    w->slot);
		/* It may be serving already: stopped gracefully. */
		sv_step(sv, w, WE_READY_TIMEOUT, false, c->kill_timeout_ms);
		break;
	case W_READY:
		format_duration(c->watchdog_ms, d, sizeof(d));
		log_error("worker %u (pid %ld) sent no WATCHDOG=1 for %s; "
		    "killing it", w->slot, (long)w->pid, d);
		sv_step(sv, w, WE_WATCHDOG, false, -1);
		break;
	case W_DRAINING:
		log_warnx("worker %u (pid %ld) still running after "
		    "kill_timeout; sending KILL", w->slot, (long)w->pid);
		sv_step(sv, w, WE_KILL, false, -1);
		break;
	case W_BACKOFF:
		sv_step(sv, w, WE_RESTART, false, -1);
		break;
	case W_GONE:
		break;
	}
}

/* Fork w's process; on failure (EAGAIN, ENOMEM, EMFILE) the slot retries
 * with the crash-loop backoff. */
static void
spawn(struct supervisor *sv, struct worker *w)
{
	struct generation *g = w->g;
	struct logpipe *lp = NULL;
	const char *what = "pipe";
	int execfd, wfd, rfd[2] = { -1, -1 }, e = 0;
	pid_t pid = -1;

	if (g->plan.path == NULL) {
		what = "exec";		/* an adopted generation without a plan */
		e = ENOENT;
	} else if ((g->cfg.ready_pipe && pipe2(rfd, O_CLOEXEC) == -1) ||
	    (lp = logpipe_open(sv->sink, w->slot, &wfd)) == NULL)
		e = errno;
	else {
		g->plan.ready_fd = rfd[1];
		pid = spawn_worker(&g->plan, w->slot, wfd, wfd, &execfd, &what);
		e = errno;
		g->plan.ready_fd = -1;
		close(wfd);
		if (pid == -1)
			logpipe_free(lp);
	}
	if (rfd[1] != -1)
		close(rfd[1]);
	if (pid == -1 && rfd[0] != -1)
		close(rfd[0]);
	if (pid == -1) {
		snprintf(sv->why, sizeof(sv->why), "%s: %s", what, strerror(e));
		w->state = W_BACKOFF;
		w->pid = 0;
		w->backoff_ms = workers_backoff(w->backoff_ms, false, 0,
		    g->cfg.restart_delay_max_ms);
		log_warnx("worker %u: %s (retrying in %ums)", w->slot, sv->why,
		    w->backoff_ms);
		arm(sv, w, w->backoff_ms, 0);
		return;
	}
	lp->pid = pid;
	lp->owner = &w->out;
	lp->last = w->last_line;
	lp->lastsz = sizeof(w->last_line);
	w->last_line[0] = '\0';
	w->out = lp;
	w->pid = pid;
	w->state = W_STARTING;
	w->exec_ok = false;
	w->killed = false;
	w->started = mono_now();
	w->ready_at = 0;
	watch_exec(sv, w, execfd);
	if (rfd[0] != -1) {
		fcntl(rfd[0], F_SETFL, O_NONBLOCK);
		sv_ready_watch(sv, w, rfd[0]);
	}
	log_debug("worker %u (pid %ld) started, generation %u", w->slot,
	    (long)pid, w->gen);
}

/* After an exit the master wants the slot back: now, or after the
 * crash-loop backoff. */
static void
respawn(struct supervisor *sv, struct worker *w, enum worker_state from)
{
	bool was_ready = from == W_READY;
	char how[96];

	w->backoff_ms = workers_backoff(w->backoff_ms, was_ready, was_ready ?
	    mono_now() - w->ready_at : 0, w->g->cfg.restart_delay_max_ms);
	w->restarts++;
	w->failed_start = false;
	describe_status(w->last_status, how, sizeof(how));
	if (w->exec_ok)
		snprintf(sv->why, sizeof(sv->why), "worker %u %s", w->slot,
		    how);
	if (w->backoff_ms) {
		log_info("worker %u (pid %ld) %s; restarting in %ums",
		    w->slot, (long)w->pid, how, w->backoff_ms);
		w->pid = 0;	/* reaped: never signalled again */
		arm(sv, w, w->backoff_ms, 0);
	} else {
		log_info("worker %u (pid %ld) %s; restarting", w->slot,
		    (long)w->pid, how);
		w->pid = 0;
		spawn(sv, w);
	}
}

static void
sv_step(struct supervisor *sv, struct worker *w, enum worker_event e,
    bool want_back, int64_t kill_ms)
{
	const struct config *c = &w->g->cfg;
	struct fsm_in in = {
		.notify = c->ready_notify,
		.delay = c->ready_ms > 0,
		.watchdog = c->ready_notify && c->watchdog_ms > 0,
		.respawn = want_back,
	};
	enum worker_state from = w->state;
	struct fsm_out o = fsm_step(from, e, &in);
	unsigned a = o.actions;

	if (o.ignored)
		return;
	w->state = o.next;
	if (a & A_DISARM)
		ev_timer_stop(sv->loop, &w->timer);
	if (a & A_FAILED_START)
		w->failed_start = true;
	if (a & A_SIGNAL_STOP) {
		signal_stop(w);
		if (kill_ms >= 0)
			arm(sv, w, kill_ms, 0);
	}
	if (a & A_SIGNAL_KILL)
		sv_kill(w);
	if (a & A_ARM_READY)
		arm(sv, w, c->ready_notify ? c->ready_timeout_ms : c->ready_ms,
		    0);
	if (a & A_MARK_READY) {
		w->ready_at = w->pinged = mono_now();
		log_debug("worker %u (pid %ld) ready", w->slot, (long)w->pid);
	}
	if (a & A_ARM_WATCHDOG) {
		w->pinged = mono_now();
		arm(sv, w, c->watchdog_ms, c->watchdog_ms);
	}
	if (a & A_RESPAWN)
		respawn(sv, w, from);
	if (a & A_SPAWN) {
		w->pid = 0;
		spawn(sv, w);
	}
	if (a & A_FORGET) {
		char how[96];

		if (e == WE_EXIT) {
			describe_status(w->last_status, how, sizeof(how));
			log_info("worker %u (pid %ld) %s", w->slot,
			    (long)w->pid, how);
		}
	}
	sv->report(sv->arg, w, e, from);
	if (w->state == W_GONE)
		workers_remove(&sv->wt, w);
}

void
sv_init(struct supervisor *sv, struct ev_loop *loop, struct logsink *sink,
    sv_report_fn report, void *arg)
{
	memset(sv, 0, sizeof(*sv));
	sv->loop = loop;
	sv->sink = sink;
	sv->report = report;
	sv->arg = arg;
	workers_init(&sv->wt);
}

struct worker *
sv_add(struct supervisor *sv, struct generation *g, unsigned slot)
{
	struct worker *w = workers_add(&sv->wt, slot, g->id);

	w->g = g;
	w->sv = sv;
	ev_init(&w->timer, timer_cb);
	w->timer.data = w;
	ev_init(&w->execio, execio_cb);
	ev_io_set(&w->execio, -1, EV_READ);
	ev_init(&w->readyio, ready_cb);
	ev_io_set(&w->readyio, -1, EV_READ);
	w->readyio.data = w;
	return w;
}

struct worker *
sv_start(struct supervisor *sv, struct generation *g, unsigned slot)
{
	struct worker *w = sv_add(sv, g, slot);

	spawn(sv, w);
	return w;
}

void
sv_stop(struct supervisor *sv, struct worker *w, int64_t kill_ms)
{
	sv_step(sv, w, WE_STOP, false, kill_ms);
}

void
sv_kill_all(struct supervisor *sv)
{
	struct worker *w;

	TAILQ_FOREACH(w, &sv->wt.list, link)
		sv_kill(w);
}

void
sv_exited(struct supervisor *sv, struct worker *w, int status, bool again)
{
	if (ev_is_active(&w->execio))
		exec_result(sv, w);
	if (w->out) {
		struct logpipe *lp = w->out;

		/* Its last lines before the line about its exit; the pipe
		 * lives on while a grandchild holds it. */
		logpipe_drain(lp);
		if (w->out) {
			lp->owner = NULL;
			lp->last = NULL;
		}
		w->out = NULL;
	}
	/* Stopped under kill_mode mixed, it took the stop signal alone:
	 * what is left of its group goes with it, as with systemd. A pid is
	 * not reused while a process group of that id has members. */
	if (w->state == W_DRAINING && w->g->cfg.kill_mode == KILL_MIXED &&
	    kill(-w->pid, SIGKILL) == 0)
		log_warnx("worker %u (pid %ld) exited, leaving processes in "
		    "its process group; killed them (kill_mode mixed)",
		    w->slot, (long)w->pid);
	sv_ready_close(sv, w);
	w->last_status = status;
	/* Now: a respawn in the step below starts its next process. */
	w->exit_reason = workers_exit_reason(w->state, w->exec_ok,
	    w->failed_start, w->killed, status);
	sv_step(sv, w, WE_EXIT, again, -1);	/* w may be gone after */
}

/* One message from w, on its generation's socket or its ready pipe. */
static void
notify_apply(struct supervisor *sv, struct worker *w,
    const struct notify_msg *msg)
{
	if (msg->status[0])
		log_debug("worker %u (pid %ld) status: %s", w->slot,
		    (long)w->pid, msg->status);
	/* A message from it means it exec'd: the exec pipe's EOF may just
	 * not have been read yet in this iteration. */
	if (msg->ready && w->state == W_STARTING && ev_is_active(&w->execio))
		exec_result(sv, w);
	if (msg->ready && w->exec_ok)
		sv_step(sv, w, WE_READY, false, -1);
	else if (msg->watchdog && ev_is_active(&w->timer))
		sv_step(sv, w, WE_PING, false, -1);
	if (msg->stopping)
		sv_step(sv, w, WE_STOPPING, false, -1);
}

/* ready = fd: the lines w wrote on its pipe, each one message. A line
 * longer than rline counts for what fits, the rest is skipped. */
static void
ready_read(struct supervisor *sv, struct worker *w)
{
	struct notify_msg msg;
	char buf[512];
	bool parsed;
	ssize_t n;

	/* Bounded: a flood cannot hold the loop. */
	for (int rounds = 0; rounds < 16; rounds++) {
		if ((n = read(w->readyio.fd, buf, sizeof(buf))) <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EINTR))
				sv_ready_close(sv, w);	/* it closed its end */
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n' && w->rskip)
				continue;
			if (buf[i] != '\n' && w->rlen < WORKER_RLINE) {
				w->rline[w->rlen++] = buf[i];
				continue;
			}
			/* A whole line, or as much of one as fits. */
			parsed = w->rlen && !w->rskip && notify_parse(w->rline,
			    w->rlen, &msg) == 0;
			w->rskip = buf[i] != '\n';
			w->rlen = 0;
			if (parsed) {
				notify_apply(sv, w, &msg);
				if (!ev_is_active(&w->readyio))
					return;		/* it was stopped */
			}
		}
	}
}

static void
ready_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = io->data;

	(void)loop;
	(void)revents;
	ready_read(w->sv, w);
}

void
sv_ready_watch(struct supervisor *sv, struct worker *w, int fd)
{
	ev_io_set(&w->readyio, fd, EV_READ);
	/* As the notify sockets: before any deadline of the same iteration. */
	ev_set_priority(&w->readyio, EV_MAXPRI);
	ev_io_start(sv->loop, &w->readyio);
	if (w->rline == NULL)
		w->rline = xmalloc(WORKER_RLINE);
	w->rlen = 0;
	w->rskip = false;
}

void
sv_ready_close(struct supervisor *sv, struct worker *w)
{
	if (w->readyio.fd < 0)
		return;
	ev_io_stop(sv->loop, &w->readyio);
	close(w->readyio.fd);
	ev_io_set(&w->readyio, -1, EV_READ);
}

static void
notify_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct generation *g = (struct generation *)((char *)io -
	    offsetof(struct generation, notify_io));

	(void)loop;
	(void)revents;
	sv_notify_read(io->data, g);
}

void
sv_watch_notify(struct supervisor *sv, struct generation *g)
{
	ev_io_init(&g->notify_io, notify_cb, g->notify_fd, EV_READ);
	g->notify_io.data = sv;
	/* Before any deadline due in the same iteration: a READY=1 that
	 * waited while the master was stalled counts. */
	ev_set_priority(&g->notify_io, EV_MAXPRI);
	ev_io_start(sv->loop, &g->notify_io);
}

void
sv_notify_read(struct supervisor *sv, struct generation *g)
{
	struct notify_msg msg;
	struct worker *w, *next;

	if (g->cfg.ready_pipe) {
		for (w = TAILQ_FIRST(&sv->wt.list); w; w = next) {
			next = TAILQ_NEXT(w, link);
			if (w->g == g && w->readyio.fd >= 0)
				ready_read(sv, w);
		}
		return;
	}
	/* Bounded: a flood cannot hold the loop. */
	for (int i = 0; i < 256 && notify_recv(g->notify_fd, &msg) == 1; i++) {
		/* Only a worker of this generation may speak on its socket. */
		if ((w = workers_find_pid(&sv->wt, msg.pid)) == NULL ||
		    w->g != g) {
			log_debug("notify message from pid %ld, not a worker "
			    "of generation %u; ignored", (long)msg.pid, g->id);
			continue;
		}
		notify_apply(sv, w, &msg);
	}
}

void
sv_resume(struct supervisor *sv, struct worker *w, int execfd,
    int64_t timer_ms)
{
	const struct config *c = &w->g->cfg;

	if (execfd >= 0)
		watch_exec(sv, w, execfd);
	if (timer_ms >= 0)
		arm(sv, w, timer_ms, w->state == W_READY ? c->watchdog_ms : 0);
}

void
sv_free(struct supervisor *sv)
{
	struct worker *w;

	while ((w = TAILQ_FIRST(&sv->wt.list)) != NULL) {
		if (ev_is_active(&w->execio))
			close(w->execio.fd);
		sv_ready_close(sv, w);
		workers_remove(&sv->wt, w);
	}
}
