/*
 * Upgrades, for the master: the new binary checked (-t), tried on the real
 * state, then exec'd in place, the state and the log backlog crossing the
 * exec. Called by master.c; refusals go through the reload's own path.
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

static void
upgrade_refused(struct master *m, const char *why)
{
	char detail[600];

	snprintf(detail, sizeof(detail), "%s; nothing changed", why);
	upgrade_check_end(&m->check);
	op_refused(m, "upgrade", why, detail, &m->serving->cfg, m->last_gen + 1);
}

/* The trial run: the new binary started the way the exec will start it,
 * on the real state, told to check it and exit. */
static void
upgrade_trial_start(struct master *m)
{
	struct state s;
	char err[512];
	int memfd, n, *keep;

	handover_build(m, &s);
	if (upgrade_state_memfd(&s, &memfd) == -1) {
		snprintf(err, sizeof(err), "the state: %s", strerror(errno));
		state_free(&s);
		upgrade_refused(m, err);
		return;
	}
	keep = upgrade_state_fds(&s, &n);
	keep = xrealloc(keep, (n + 1) * sizeof(*keep));
	keep[n++] = memfd;
	if (upgrade_check_start(&m->check, m->loop, m->self_path, m->argv,
	    m->devnull, memfd, keep, n, m->serving->cfg.ready_timeout_ms,
	    err, sizeof(err)) != 0) {
		close(memfd);
		upgrade_refused(m, err);
	} else
		log_info("upgrade: trying %s on the running state",
		    m->self_path);
	free(keep);
	state_free(&s);
}

void
upgrade_begin(struct master *m)
{
	char err[512];

	if (m->phase == M_STOPPING)
		return;
	if (master_busy(m)) {
		op_enqueue(m, OP_UPGRADE);
		return;
	}
	m->op_current = ++m->op_seq;
	if (access(m->self_path, X_OK) == -1) {
		snprintf(err, sizeof(err), "%s: %s", m->self_path,
		    strerror(errno));
		upgrade_refused(m, err);
		return;
	}
	notify_systemd_reloading();
	log_info("upgrade: checking %s and the configuration", m->self_path);
	if (upgrade_check_start(&m->check, m->loop, m->self_path, m->argv,
	    m->devnull, -1, NULL, 0, m->serving->cfg.ready_timeout_ms, err,
	    sizeof(err)) != 0)
		upgrade_refused(m, err);
}

void
upgrade_checked(struct master *m, int status)
{
	struct upgrade_check *c = &m->check;
	char why[400], how[96], *p, *end, *nl;
	bool trial = c->trial;
	unsigned lines = 0;
	size_t n;

	if (upgrade_check_exited(c, status, why, sizeof(why)) == 0) {
		outbuf_free(&c->out);
		if (!trial)
			upgrade_trial_start(m);
		else {
			upgrade_check_end(c);
			m->exec_due = true;
			op_later(m);
		}
		return;
	}
	/* Every line it printed is logged; the first ones also go into the
	 * refusal, which is what `fugue upgrade` prints. */
	n = strlen(why);
	for (p = c->out.p, end = p + c->out.len; p && p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', end - p)) == NULL)
			nl = end;
		if (nl == p)
			continue;
		log_error("upgrade %s: %.*s", trial ? "trial" : "check",
		    (int)(nl - p), p);
		if (lines++ < 3 && n < sizeof(why) - 1) {
			const char *q = p;

			if (nl - q > 7 && memcmp(q, "fugue: ", 7) == 0)
				q += 7;
			n += snprintf(why + n, sizeof(why) - n, "%s%.*s",
			    lines == 1 ? ": " : "; ", (int)(nl - q), q);
		} else if (lines == 4 && n < sizeof(why) - 1)
			n += snprintf(why + n, sizeof(why) - n, "; ...");
	}
	describe_status(status, how, sizeof(how));
	log_error("upgrade: %s%s %s", m->self_path, trial ? "" : " -t", how);
	upgrade_refused(m, why);
}

void
upgrade_exec_now(struct master *m)
{
	struct state s;
	sigset_t block, old;
	int memfd;

	if (m->phase == M_STOPPING)
		return;		/* a stop came first: no upgrade */
	/* Held across the exec: a blocked signal stays pending for the new
	 * image (libev's signalfd already holds those the master handles). */
	sigfillset(&block);
	sigdelset(&block, SIGSEGV);
	sigdelset(&block, SIGBUS);
	sigdelset(&block, SIGFPE);
	sigdelset(&block, SIGILL);
	sigprocmask(SIG_BLOCK, &block, &old);
	/* Partial lines go out whole now; the pipes go on after. */
	for (struct logpipe *lp = m->sink.pipes; lp; lp = lp->next)
		logpipe_flush(lp);
	handover_build(m, &s);
	/* The last line through the sink: what it has not written yet
	 * crosses the exec whole, behind it (logsink_export). */
	log_info("upgrade: re-executing %s", m->self_path);
	if (logsink_export(&m->sink, &s.sink_fd) == 0 &&
	    upgrade_state_memfd(&s, &memfd) == 0) {
		if (ev_is_active(&m->watchdog))
			notify_systemd("WATCHDOG=1");
		upgrade_exec(m->self_path, m->argv, &s, memfd);
		close(memfd);
	}
	if (s.sink_fd != -1)
		close(s.sink_fd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	log_warn("upgrade: cannot re-execute %s", m->self_path);
	state_free(&s);
	upgrade_refused(m, "the re-exec failed");
}
