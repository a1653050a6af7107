/*
 * The master: one libev loop. Signals, one catch-all child watcher, the
 * supervisor's reports, the control socket's commands and the timers of
 * generations and stops are its inputs; every decision is taken here or in
 * reload.c (which this file alone calls). Lower modules report through
 * the callbacks registered here and never call back up.
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

#include "master.h"
#include "notify.h"
#include "pidfile.h"

static const int handled_signals[MASTER_NSIG] = {
	SIGTERM, SIGQUIT, SIGINT, SIGHUP, SIGUSR2, SIGUSR1, SIGTTIN, SIGTTOU,
	SIGPIPE, SIGWINCH, SIGCHLD,
};

static void
handled_set(sigset_t *set)
{
	sigemptyset(set);
	for (int i = 0; i < MASTER_NSIG; i++)
		sigaddset(set, handled_signals[i]);
}

void
master_hold_signals(void)
{
	sigset_t set;

	handled_set(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

void
master_init(struct master *m, struct config *c, config_loader load,
    void *load_arg)
{
	memset(m, 0, sizeof(*m));
	TAILQ_INIT(&m->gens);
	TAILQ_INIT(&m->lsocks);
	m->serving = gen_new(1, c);
	m->serving->phase = G_SERVING;
	TAILQ_INSERT_TAIL(&m->gens, m->serving, link);
	m->last_gen = 1;
	m->load = load;
	m->load_arg = load_arg;
	m->pid = getpid();
	m->devnull = -1;
	m->log_fd = -1;
	m->mlog_fd = -1;
	logsink_init(&m->sink, log_report_drops);
	m->pid_fd = -1;
	m->ready_fd = -1;
	m->nofile = -1;
	m->ctl.fd = -1;
	m->metrics.l.fd = -1;
	m->check.memfd = -1;
}

int
master_bind(struct master *m, char *err, size_t len)
{
	return gen_bind(m->serving, &m->lsocks, err, len);
}

static void
master_scale(struct master *m, unsigned want)
{
	if (m->phase == M_STOPPING)
		return;
	log_info("workers: %u -> %u", m->starting ? m->roll_to :
	    m->serving->target, want);
	if (m->starting)
		reload_scale(m, want);
	else
		gen_scale(m, m->serving, want);
	reload_check(m);
}

static void
master_reopen_logs(struct master *m, struct ctl_client *c)
{
	char err[512];

	if (master_open_logs(m, err, sizeof(err)) != 0) {
		log_error("reopen: %s", err);
		if (c)
			control_reply(c, "failed: %s\n", err);
	} else {
		log_info("log files reopened");
		if (c)
			control_reply(c, "ok: log files reopened\n");
	}
}

/* Should the slot of w, just exited, be started again? */
static bool
wants_back(const struct master *m, const struct worker *w)
{
	const struct generation *g = w->g;

	/* A lame duck still serves: its workers come back. */
	if ((m->phase == M_STOPPING && !m->lame_duck) || g != m->serving ||
	    w->slot >= g->target || w->retiring)	/* retiring: its successor
							 * has the slot */
		return false;
	if (w->state != W_DRAINING)
		return true;
	/* Stopped for not getting ready: its slot retries, unless it was
	 * taken again meanwhile (scale). */
	return w->failed_start &&
	    workers_find_slot(&m->sv.wt, w->gen, w->slot) == NULL;
}

/* Failed starts in a row, in every slot of a first generation none of
 * whose workers was ever ready, after which fugue gives up at once instead
 * of at ready_timeout (a bad flag, a missing database). */
#define FAIL_FAST_STARTS	3

/* The first generation only crash-loops: exit 69 with the last failure
 * and the last line the worker wrote before it. */
static void
first_failing(struct master *m, struct worker *w)
{
	struct worker *x;

	if (m->seen_ready)
		return;
	TAILQ_FOREACH(x, &m->sv.wt.list, link)
		if (x->g == m->serving && x->restarts < FAIL_FAST_STARTS)
			return;
	log_error("first generation not ready: every worker failed to start "
	    "%u times in a row; the last: %s%s%s%s", FAIL_FAST_STARTS,
	    m->sv.why, w->last_line[0] ? "; its last line: \"" : "",
	    w->last_line, w->last_line[0] ? "\"" : "");
	/* Not from inside the supervisor's step: after this event. */
	m->exit_code = EX_UNAVAIL_;
	m->give_up = true;
	ev_prepare_start(m->loop, &m->later);
}

/* The supervisor's report of one transition. */
static void
on_worker(void *arg, struct worker *w, enum worker_event e,
    enum worker_state from)
{
	struct master *m = arg;
	char how[96], why[320], d[32];

	if (e == WE_EXIT)
		m->counts.exits[w->exit_reason % WX_COUNT]++;
	if (from == W_STARTING && w->state == W_READY) {
		if (w->g == m->serving)
			m->seen_ready = true;
		recycle_ready(m, w);
		reload_check(m);
		return;
	}
	if (e == WE_STOPPING) {
		recycle_retire(m, w, "it asked to be replaced (STOPPING=1)");
		return;
	}
	if (e == WE_EXIT && m->phase == M_STARTING && w->g == m->serving &&
	    from != W_DRAINING) {
		first_failing(m, w);
		return;
	}
	if (e != WE_EXIT || w->g != m->starting || from == W_DRAINING ||
	    m->phase == M_STOPPING)
		return;
	/* A new generation never restarts before it is in service. */
	if (w->exec_ok && m->holding) {
		describe_status(w->last_status, how, sizeof(how));
		format_duration(w->g->cfg.ready_hold_ms, d, sizeof(d));
		snprintf(why, sizeof(why), "worker %u (pid %ld) of generation "
		    "%u %s within ready_hold %s of being ready", w->slot,
		    (long)w->pid, w->gen, how, d);
	} else if (w->exec_ok) {
		describe_status(w->last_status, how, sizeof(how));
		snprintf(why, sizeof(why), "worker %u (pid %ld) of generation "
		    "%u %s before the generation was ready", w->slot,
		    (long)w->pid, w->gen, how);
	} else
		snprintf(why, sizeof(why), "worker %u: %s", w->slot,
		    m->sv.why);
	reload_rollback(m, why);
}

static void
child_cb(struct ev_loop *loop, ev_child *c, int revents)
{
	struct master *m = c->data;
	struct worker *w;

	(void)loop;
	(void)revents;
	if (c->rpid == m->check.pid && m->check.pid)
		upgrade_checked(m, c->rstatus);
	else if (hook_reaped(&m->hook, c->rpid, c->rstatus))
		;	/* reported to reload_hook_ended */
	else if ((w = workers_find_pid(&m->sv.wt, c->rpid)) != NULL) {
		sv_exited(&m->sv, w, c->rstatus, wants_back(m, w));
		if (m->starting)	/* room for a rolling reload's batch */
			reload_check(m);
	}
	else	/* an orphan reaped as a subreaper (or PID 1) */
		log_debug("reaped pid %ld", (long)c->rpid);
	gens_reap(m);
	if (m->phase == M_STOPPING && !m->lame_duck && master_live(m) == 0)
		master_finish(m);
}

/* ready = notify or fd, and a worker that runs (its exec worked) has sent
 * no READY=1. */
static bool
silent(const struct master *m, const struct generation *g)
{
	const struct worker *w;

	if (!g->cfg.ready_notify)
		return false;
	TAILQ_FOREACH(w, &m->sv.wt.list, link)
		if (w->g == g && w->state == W_STARTING && w->exec_ok)
			return true;
	return false;
}

/* A generation did not get ready in time: a reload is rolled back; the
 * first generation ends fugue. */
static void
gen_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = t->data;
	struct generation *g = m->starting ? m->starting : m->serving;
	char d[32], why[512];

	(void)loop;
	(void)revents;
	if (m->holding) {		/* the new workers held: they serve */
		m->holding = false;
		m->held = true;
		reload_check(m);
		return;
	}
	/* After a stall of the master, READY=1 may wait on the socket (see
	 * supervise.c's timer_cb): read it before judging. */
	if (g->cfg.ready_notify) {
		sv_notify_read(&m->sv, g);
		if (ev_is_active(&m->gen_timer) || (g != m->starting &&
		    g != m->serving) || (g == m->serving && m->phase !=
		    M_STARTING))
			return;		/* in service now, or a new deadline */
	}
	format_duration(g->cfg.ready_timeout_ms, d, sizeof(d));
	snprintf(why, sizeof(why), "%u of %u workers ready after "
	    "ready_timeout %s%s%s%s", workers_count(&m->sv.wt, g->id,
	    WS(W_READY)), g->target, d, m->sv.why[0] ? "; last failure: " :
	    "", m->sv.why, silent(m, g) ? "; no READY=1 came from running "
	    "workers (if the server does not speak sd_notify, set ready to a "
	    "duration)" : "");
	if (m->starting) {
		reload_rollback(m, why);
		return;
	}
	log_error("first generation not ready: %s", why);
	m->exit_code = EX_UNAVAIL_;
	master_stop(m, false);
}

/* After the event being handled: a queued reload or upgrade, or the
 * upgrade's exec (every event of this loop iteration has been handled:
 * a signal not read yet stays pending across the exec). */
static void
later_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct master *m = p->data;
	enum master_op op = m->queued;

	(void)revents;
	ev_prepare_stop(loop, p);
	if (m->give_up) {
		m->give_up = false;
		master_stop(m, false);
		return;
	}
	if (m->exec_due) {
		m->exec_due = false;
		upgrade_exec_now(m);
		return;
	}
	if (master_busy(m) || m->phase == M_STOPPING)
		return;
	m->queued = OP_NONE;
	if (op == OP_UPGRADE)
		upgrade_begin(m);
	else if (op == OP_RELOAD)
		reload_begin(m);
}

static void
on_command(void *arg, struct ctl_client *c, enum ctl_verb verb,
    unsigned count)
{
	struct master *m = arg;

	switch (verb) {
	case CTL_STATUS:
	case CTL_STATUS_JSON:
		control_reply_owned(c, status_format(m,
		    verb == CTL_STATUS_JSON));
		break;
	case CTL_RELOAD:
	case CTL_UPGRADE:
		if (m->phase == M_STOPPING) {
			control_reply(c, "refused: fugue is stopping\n");
			break;
		}
		/* Wait for the first operation that starts from now on. */
		control_wait(c, m->op_seq);
		if (verb == CTL_RELOAD)
			reload_begin(m);
		else
			upgrade_begin(m);
		break;
	case CTL_STOP:
	case CTL_QUIT:
		control_reply(c, "ok: stopping (%s)\n", verb == CTL_STOP ?
		    "quick" : "graceful");
		master_stop(m, verb == CTL_STOP);
		break;
	case CTL_REOPEN:
		master_reopen_logs(m, c);
		break;
	case CTL_SCALE:
		if (m->phase == M_STOPPING)
			control_reply(c, "refused: fugue is stopping\n");
		else {
			master_scale(m, count);
			control_reply(c, "ok: %u worker%s\n", count,
			    plural(count));
		}
		break;
	case CTL_BAD:
		control_reply(c, "error: unknown command; try status, status "
		    "json, reload, upgrade, scale N (0 to 10000), reopen, "
		    "stop, quit\n");
		break;
	}
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
		reload_begin(m);
		break;
	case SIGUSR2:
		upgrade_begin(m);
		break;
	case SIGUSR1:
		master_reopen_logs(m, NULL);
		break;
	case SIGTTIN:
		master_scale(m, m->serving->target + 1);
		break;
	case SIGTTOU:
		if (m->serving->target > 0)
			master_scale(m, m->serving->target - 1);
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
	unsigned n;
	int status;

	handover_adopt(m, m->adopt);
	state_free(m->adopt);
	free(m->adopt);
	m->adopt = NULL;
	if (ev_is_active(&m->watchdog))
		notify_systemd("WATCHDOG=1");
	/* A worker that died during the exec left a zombie but no SIGCHLD
	 * we could see: reap each adopted pid once. */
	for (w = TAILQ_FIRST(&m->sv.wt.list); w; w = next) {
		next = TAILQ_NEXT(w, link);
		if (w->pid > 0 && waitpid(w->pid, &status, WNOHANG) == w->pid)
			sv_exited(&m->sv, w, status, wants_back(m, w));
	}
	gens_reap(m);
	m->phase = M_RUNNING;
	n = workers_count(&m->sv.wt, m->serving->id, WS_LIVE);
	log_info("upgrade: adopted %u worker%s of generation %u", n,
	    plural(n), m->serving->id);
	m->upgrading = true;
	reload_begin(m);
}

static int
run_first(struct master *m)
{
	struct generation *g = m->serving;
	char err[512];

	if (gen_notify_start(m, g, err, sizeof(err)) != 0 ||
	    gen_plan(g, m->pid, m->devnull, m->nofile, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return EX_UNAVAIL_;
	}
	gen_warn_root(&g->cfg);
	m->phase = M_STARTING;
	log_info("starting %u worker%s: %s", g->target, plural(g->target),
	    g->cfg.command);
	for (unsigned s = 0; s < g->target; s++)
		sv_start(&m->sv, g, s);
	reload_deadline(m, g->cfg.ready_timeout_ms);
	reload_check(m);
	return 0;
}

static void
watch_signals(struct master *m)
{
	sigset_t others;

	for (int i = 0; i < MASTER_NSIG; i++) {
		if (handled_signals[i] == SIGCHLD)
			continue;	/* libev's own */
		ev_signal_init(&m->sigs[i], signal_cb, handled_signals[i]);
		m->sigs[i].data = m;
		/* Signals read together are taken in the order they are most
		 * likely sent (a reload, then a stop; TTIN, then TTOU): libev
		 * runs the pending watchers of one priority last first. */
		if (handled_signals[i] == SIGHUP || handled_signals[i] ==
		    SIGUSR2 || handled_signals[i] == SIGUSR1 ||
		    handled_signals[i] == SIGTTIN)
			ev_set_priority(&m->sigs[i], 1);
		ev_signal_start(m->loop, &m->sigs[i]);
	}
	/* The handled ones are libev's to block or not (a signalfd wants
	 * them blocked); let through everything else main() held. */
	sigfillset(&others);
	for (int i = 0; i < MASTER_NSIG; i++)
		sigdelset(&others, handled_signals[i]);
	sigprocmask(SIG_UNBLOCK, &others, NULL);
}

int
master_run(struct master *m)
{
	const struct config *c = &m->serving->cfg;
	int r;

	/* Signals through a signalfd: one not read yet stays pending, so
	 * it crosses an upgrade's exec instead of being lost. */
	m->loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_SIGNALFD);
	if (m->loop == NULL) {
		log_error("cannot initialise the event loop");
		return EX_OSERR_;
	}
	/* The catch-all child watcher before the first fork. */
	ev_child_init(&m->child, child_cb, 0, 0);
	m->child.data = m;
	ev_child_start(m->loop, &m->child);
	recycle_init(m);
	ev_init(&m->gen_timer, gen_timer_cb);
	m->gen_timer.data = m;
	ev_prepare_init(&m->later, later_cb);
	m->later.data = m;
	sv_init(&m->sv, m->loop, &m->sink, on_worker, m);
	hook_init(&m->hook, m->loop, &m->sink, reload_hook_ended, m);
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
	control_start(&m->ctl, m->loop, m->ctl.fd, on_command, m);
	metrics_start(&m->metrics, m->loop, status_http, m);
	if (m->adopt)
		run_adopted(m);
	else if ((r = run_first(m)) != 0)
		return r;
	watch_signals(m);
	ev_run(m->loop, 0);
	return m->exit_code;
}

void
master_free(struct master *m)
{
	struct generation *g;

	sv_free(&m->sv);
	control_close(&m->ctl, m->serving ? m->serving->cfg.control_socket :
	    NULL);
	lsock_exiting(&m->lsocks);	/* the fd store keeps them */
	metrics_close(&m->metrics, true);
	while ((g = TAILQ_FIRST(&m->gens)) != NULL)
		gen_drop(m, g);
	lsock_close_unused(&m->lsocks);
	notify_dir_remove(m->notify_dir);
	free(m->notify_dir);
	free(m->answer);
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
