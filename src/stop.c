/*
 * The master's stop: a lame duck first when stop_delay is set (still
 * serving, /readyz and systemd told), then every worker drained with its
 * own stop signal, SIGKILL at kill_timeout, and the loop left once none is
 * alive.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master.h"
#include "notify.h"
#include "pidfile.h"

/* Everything is stopped: close what the master holds and leave the loop. */
void
master_finish(struct master *m)
{
	struct generation *g;

	if (m->serving == NULL)
		return;		/* done already */
	ev_timer_stop(m->loop, &m->stop_timer);
	upgrade_check_end(&m->check);
	if (m->pid_fd != -1)
		pidfile_remove(m->serving->cfg.pid_file, m->pid_fd, m->pid);
	m->pid_fd = -1;
	control_close(&m->ctl, m->serving->cfg.control_socket);
	metrics_close(&m->metrics, true);
	/* The listeners close with the last generation. */
	while ((g = TAILQ_FIRST(&m->gens)) != NULL)
		gen_drop(m, g);
	m->serving = m->starting = NULL;
	logsink_close_all(&m->sink);
	log_info("exiting with status %d", m->exit_code);
	ev_break(m->loop, EVBREAK_ALL);
}

unsigned
master_live(const struct master *m)
{
	return workers_count_all(&m->sv.wt, WS_LIVE);
}

static void
stop_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = t->data;
	struct worker *w;

	(void)loop;
	(void)revents;
	TAILQ_FOREACH(w, &m->sv.wt.list, link)
		if (w->pid > 0) {
			log_warnx("worker %u (pid %ld) still running; sending "
			    "KILL", w->slot, (long)w->pid);
			sv_kill(w);
		}
}

/* The drain of a stop: stop_signal to every worker, SIGKILL at the
 * deadline (kill_timeout, or 1 s for a quick stop). */
static void
master_drain(struct master *m, bool quick)
{
	struct worker *w, *next;

	m->lame_duck = false;
	ev_timer_stop(m->loop, &m->stop_timer);
	log_info("stopping %u worker%s (%s)", master_live(m), plural(master_live(m)),
	    quick ? "quick" :
	    "graceful");
	/* One deadline for all; draining workers keep their earlier one. */
	for (w = TAILQ_FIRST(&m->sv.wt.list); w; w = next) {
		next = TAILQ_NEXT(w, link);
		sv_stop(&m->sv, w, -1);
	}
	ev_timer_init(&m->stop_timer, stop_timer_cb, quick ? 1.0 :
	    m->serving->cfg.kill_timeout_ms / 1000.0, 0);
	m->stop_timer.data = m;
	ev_timer_start(m->loop, &m->stop_timer);
	if (master_live(m) == 0)
		master_finish(m);
}

static void
stop_delay_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = t->data;

	(void)loop;
	(void)revents;
	notify_systemd("STATUS=stopping: draining %u worker%s", master_live(m),
	    plural(master_live(m)));
	master_drain(m, false);
}

/* A graceful stop of a running fugue with stop_delay: the lame duck.
 * Everything says "stopping" at once (systemd's STATUS, `fugue status`),
 * while the workers go on serving (and crashed ones are replaced) until
 * the load balancer has taken this host out; then the drain. */
static void
master_lame_duck(struct master *m)
{
	const struct config *c = &m->serving->cfg;
	char d[32];

	format_duration(c->stop_delay_ms, d, sizeof(d));
	m->lame_duck = true;
	/* A reload under way will not serve: its workers go now. */
	if (m->starting)
		reload_rollback(m, "fugue is stopping");
	notify_systemd("STOPPING=1\nSTATUS=stopping: serving for stop_delay "
	    "%s, then draining %u worker%s", d, master_live(m), plural(master_live(m)));
	log_info("stopping: serving for stop_delay %s before draining %u "
	    "worker%s", d, master_live(m), plural(master_live(m)));
	ev_timer_init(&m->stop_timer, stop_delay_cb, c->stop_delay_ms /
	    1000.0, 0);
	m->stop_timer.data = m;
	ev_timer_start(m->loop, &m->stop_timer);
}

void
master_stop(struct master *m, bool quick)
{
	bool wait = !quick && m->phase == M_RUNNING &&
	    m->serving->cfg.stop_delay_ms > 0;

	if (m->phase == M_STOPPING && m->lame_duck) {
		log_info("second stop signal: draining now");
		notify_systemd("STATUS=stopping: draining %u worker%s",
		    master_live(m), plural(master_live(m)));
		master_drain(m, quick);
		return;
	}
	if (m->phase == M_STOPPING) {
		log_info("second stop signal: killing the workers now");
		sv_kill_all(&m->sv);
		return;
	}
	m->phase = M_STOPPING;
	lsock_exiting(&m->lsocks);	/* the fd store keeps them */
	ev_timer_stop(m->loop, &m->gen_timer);
	recycle_stop(m);
	upgrade_check_end(&m->check);
	reload_stop_hooks(m);
	m->exec_due = false;
	if (wait) {
		master_lame_duck(m);
		return;
	}
	notify_systemd("STOPPING=1");
	master_drain(m, quick);
}
