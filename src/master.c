/*
 * The master: one libev loop. Signals, one catch-all child watcher, timers,
 * the workers' exec-error and output pipes and the notify socket are its
 * only inputs. This file sets the loop up, answers signals and stops;
 * lifecycle.c follows each worker, generation.c each generation.
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
#include "notify.h"
#include "control.h"
#include "pidfile.h"
#include "upgrade.h"


static const int handled_signals[MASTER_NSIG] = {
	SIGTERM, SIGQUIT, SIGINT, SIGHUP, SIGUSR2, SIGUSR1, SIGTTIN, SIGTTOU,
	SIGPIPE, SIGWINCH, SIGCHLD,
};

void
master_hold_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	for (int i = 0; i < MASTER_NSIG; i++)
		sigaddset(&set, handled_signals[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

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
	logsink_init(&m->sink, log_report_drops);
	m->pid_fd = -1;
	m->notify_fd = -1;
	m->ctl_fd = -1;
	m->ready_fd = -1;
	m->nofile = -1;
	m->target = m->cur.cfg.count;
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
	if (c->log_file &&
	    (r = log_open_file(c->log_file, &m->log_fd, err, len)) != 0)
		return r;
	if (c->master_log_file &&
	    (r = log_open_file(c->master_log_file, &m->mlog_fd, err, len)) != 0)
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

void
master_finish(struct master *m)
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
	control_close(m, true);
	outbuf_free(&m->check_out);	/* a check still running */
	log_info("exiting with status %d", m->exit_code);
	ev_break(m->loop, EVBREAK_ALL);
}

static void
child_cb(struct ev_loop *loop, ev_child *c, int revents)
{
	struct master *m = c->data;
	struct worker *w;

	(void)loop;
	(void)revents;
	if (c->rpid == m->check_pid && m->check_pid) {
		m->check_pid = 0;
		upgrade_checked(m, c->rstatus);
	} else if ((w = workers_find_pid(&m->wt, c->rpid)) != NULL)
		worker_exited(m, w, c->rstatus);
	else	/* an orphan reaped as a subreaper (or PID 1) */
		log_debug("reaped pid %ld", (long)c->rpid);
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

void
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
	notify_systemd("STOPPING=1");
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
		master_finish(m);
}

/* Start or drain workers of generation gen from have to want slots. */
static void
scale_gen(struct master *m, unsigned gen, unsigned have, unsigned want)
{
	struct worker *w;
	int slot;

	for (; have < want; have++)
		if ((slot = workers_free_slot(&m->wt, gen, have + 1)) >= 0)
			worker_start(m, gen, (unsigned)slot);
	while (have > want) {
		have--;
		/* The newest slot goes. */
		if ((w = workers_find_slot(&m->wt, gen, have)) != NULL)
			worker_drain(m, w, gen_of(m, w)->cfg.kill_timeout_ms);
	}
}

void
master_scale(struct master *m, unsigned want)
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
	gen_check(m);
}

bool
master_busy(const struct master *m)
{
	return m->phase == M_STARTING || m->next.id || m->check_pid ||
	    m->exec_pending;
}

void
master_op_begin(struct master *m)
{
	m->op_current = ++m->op_seq;
}

/* A reload or upgrade asked for while another runs: held, once. */
void
master_enqueue(struct master *m, int what)
{
	if (m->exec_pending) {
		m->queued = what > (int)m->queued ? what : (int)m->queued;
		return;
	}
	if ((int)m->queued < what) {
		log_info("%s: queued until the current one ends",
		    what == Q_UPGRADE ? "upgrade" : "reload");
		m->queued = what;
	}
}

void
master_dequeue(struct master *m)
{
	int what = m->queued;

	m->queued = Q_NONE;
	if (what == Q_UPGRADE)
		upgrade_begin(m);
	else if (what == Q_RELOAD)
		master_reload(m);
}

void
master_reopen_logs(struct master *m)
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
	if (m->exec_pending) {
		/* Blocked now: pending across the exec, for the new image. */
		kill(m->pid, s->signum);
		return;
	}
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
		master_reload(m);
		break;
	case SIGUSR2:
		upgrade_begin(m);
		break;
	case SIGUSR1:
		master_reopen_logs(m);
		break;
	case SIGTTIN:
		master_scale(m, m->target + 1);
		break;
	case SIGTTOU:
		if (m->target > 0)
			master_scale(m, m->target - 1);
		break;
	default:
		break;	/* PIPE, WINCH: ignored */
	}
}

static void
watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)t;
	(void)revents;
	notify_systemd("WATCHDOG=1");
}

/* systemd's watchdog, if it set one for us: ping at half its interval. */
static void
watchdog_start(struct master *m)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *wpid = getenv("WATCHDOG_PID");
	unsigned long long us;

	if (usec == NULL || !notify_systemd_enabled() ||
	    (wpid && strtol(wpid, NULL, 10) != (long)m->pid))
		return;
	us = strtoull(usec, NULL, 10);
	if (us == 0)
		return;
	ev_timer_init(&m->watchdog, watchdog_cb, 0, us / 2e6);
	ev_timer_again(m->loop, &m->watchdog);
}

/* After an upgrade's re-exec: the old image's workers, then a reload. */
static void
run_adopted(struct master *m)
{
	struct worker *w, *next;
	int status;

	upgrade_adopt(m, m->adopt);
	state_free(m->adopt);
	free(m->adopt);
	m->adopt = NULL;
	/* A worker that died during the exec left a zombie but no SIGCHLD
	 * we could see: reap each adopted pid once. */
	for (w = m->wt.head; w; w = next) {
		next = w->next;
		if (w->pid > 0 && waitpid(w->pid, &status, WNOHANG) == w->pid)
			worker_exited(m, w, status);
	}
	m->phase = M_RUNNING;
	log_info("upgrade: adopted %u workers of generation %u",
	    workers_count(&m->wt, m->cur.id, WS_LIVE), m->cur.id);
	m->upgrading = true;
	master_reload(m);
}

static int
run_first(struct master *m)
{
	struct config *c = &m->cur.cfg;
	char err[512];

	m->cur.id = m->last_gen = 1;
	if (gen_plan(m, &m->cur, err, sizeof(err)) != 0) {
		log_error("%s", err);
		gen_close_bound(&m->cur);
		return EX_UNAVAIL_;
	}
	gen_warn_root(c);
	m->phase = M_STARTING;
	log_info("starting %u workers: %s", m->target, c->command);
	for (unsigned s = 0; s < m->target; s++)
		worker_start(m, m->cur.id, s);
	gen_deadline(m, c->ready_timeout_ms);
	gen_check(m);
	return 0;
}

int
master_run(struct master *m)
{
	struct config *c = &m->cur.cfg;
	sigset_t set;
	int r;

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
	ev_init(&m->gen_timer, gen_timer_cb);
	m->gen_timer.data = m;
	logsink_start(&m->sink, m->loop);

	if ((c->subreaper == SUBREAPER_YES ||
	    (c->subreaper == SUBREAPER_AUTO && m->pid == 1)) &&
	    prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		log_warn("subreaper");
	m->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (m->devnull == -1) {
		log_warn("/dev/null");
		return EX_OSERR_;
	}
	watchdog_start(m);
	if (m->ctl_fd != -1)
		control_start(m, m->ctl_fd);
	if (m->adopt)
		run_adopted(m);
	else if ((r = run_first(m)) != 0)
		return r;
	/* Every watcher is in place: let through what main() held. */
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);

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
	if (m->notify_fd != -1) {
		close(m->notify_fd);
		unlink(m->notify_path);
	}
	free(m->notify_path);
	if (m->devnull != -1)
		close(m->devnull);
	/* What a slow reader has not taken yet gets a second, then the
	 * last lines go straight to stderr. */
	logsink_end(&m->sink);
	log_set_sink(NULL);
	log_set_fd(2);
	if (m->log_fd != -1)
		close(m->log_fd);
	if (m->mlog_fd != -1)
		close(m->mlog_fd);
}
