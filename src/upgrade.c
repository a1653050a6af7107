/*
 * USR2: check the new binary with -t (a child, watched by the loop), write
 * the master's state to a memfd, and execve the binary in place: same PID,
 * the same listeners, workers, output pipes, notify socket and pid-file
 * lock. The new image adopts all of it and reloads; if anything fails
 * before the exec, the old image goes on untouched.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "logging.h"
#include "master.h"
#include "notify.h"
#include "upgrade.h"

extern char **environ;

#define CHECK_OUTPUT_MAX	8192

static void
check_read(struct master *m)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(m->check_io.fd, buf, sizeof(buf))) > 0)
		if (m->check_out.len < CHECK_OUTPUT_MAX)
			outbuf_add(&m->check_out, buf, (size_t)n);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		ev_io_stop(m->loop, &m->check_io);
		close(m->check_io.fd);
		ev_io_set(&m->check_io, -1, EV_READ);
	}
}

static void
check_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	check_read(io->data);
}

static void
refuse(struct master *m, const char *why)
{
	log_error("upgrade refused: %s; nothing changed", why);
	notify_systemd("READY=1\nSTATUS=upgrade refused: %s", why);
	control_outcome(m, "refused", "%s; nothing changed", why);
	master_dequeue(m);
}

void
upgrade_begin(struct master *m)
{
	char **argv;
	int p[2], argc;
	pid_t pid;

	if (m->phase == M_STOPPING)
		return;
	if (master_busy(m)) {
		master_enqueue(m, Q_UPGRADE);
		return;
	}
	master_op_begin(m);
	if (access(m->self_path, X_OK) == -1) {
		char why[512];

		snprintf(why, sizeof(why), "%s: %s", m->self_path,
		    strerror(errno));
		refuse(m, why);
		return;
	}
	notify_systemd_reloading();
	log_info("upgrade: checking %s and the configuration", m->self_path);

	/* <binary> -t <the same arguments>, built before the fork. */
	for (argc = 0; m->argv[argc]; argc++)
		;
	argv = xcalloc(argc + 2, sizeof(*argv));
	argv[0] = (char *)m->self_path;
	argv[1] = "-t";
	for (int i = 1; i < argc; i++)
		argv[i + 1] = m->argv[i];
	if (pipe2(p, O_CLOEXEC) == -1) {
		free(argv);
		refuse(m, "pipe failed");
		return;
	}
	if ((pid = fork()) == -1) {
		free(argv);
		close(p[0]);
		close(p[1]);
		refuse(m, "fork failed");
		return;
	}
	if (pid == 0) {
		sigset_t set;

		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		sigemptyset(&set);
		sigprocmask(SIG_SETMASK, &set, NULL);
		dup2(m->devnull, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		execve(m->self_path, argv, environ);
		_exit(127);
	}
	free(argv);
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	m->check_pid = pid;
	m->check_out.len = 0;
	ev_io_init(&m->check_io, check_io_cb, p[0], EV_READ);
	m->check_io.data = m;
	ev_io_start(m->loop, &m->check_io);
}

static void upgrade_exec(struct master *);

void
upgrade_checked(struct master *m, int status)
{
	char how[96];

	if (ev_is_active(&m->check_io)) {
		fcntl(m->check_io.fd, F_SETFL, 0);	/* it exited: EOF comes */
		check_read(m);
	}
	if (m->phase == M_STOPPING) {
		outbuf_free(&m->check_out);
		return;
	}
	if (status != 0) {
		char *p = m->check_out.p, *end = p + m->check_out.len, *nl;

		for (; p && p < end; p = nl + 1) {
			if ((nl = memchr(p, '\n', end - p)) == NULL)
				nl = end;
			if (nl > p)
				log_error("upgrade check: %.*s", (int)(nl - p), p);
		}
		describe_status(status, how, sizeof(how));
		log_error("upgrade: %s -t %s", m->self_path, how);
		outbuf_free(&m->check_out);
		refuse(m, "the new binary or the configuration failed its "
		    "check");
		return;
	}
	outbuf_free(&m->check_out);
	upgrade_exec(m);
}

/* ---- the exec ---- */

static void
state_build(struct master *m, struct state *s)
{
	ev_tstamp now = mono_now();
	size_t i;

	state_init(s);
	s->cur_gen = m->cur.id;
	s->last_gen = m->last_gen;
	s->target = m->target;
	s->nofile = m->nofile;
	s->pid_fd = m->pid_fd;
	s->notify_fd = m->notify_fd;
	s->notify_path = m->notify_path;
	s->nls = m->cur.nls + m->ngone;
	s->ls = xcalloc(s->nls, sizeof(*s->ls));
	for (i = 0; i < s->nls; i++) {
		const struct listener *l = i < m->cur.nls ? &m->cur.ls[i] :
		    &m->gone[i - m->cur.nls];

		s->ls[i].fd = l->fd;
		s->ls[i].dev = l->dev;
		s->ls[i].ino = l->ino;
		s->ls[i].gone = i >= m->cur.nls;
		snprintf(s->ls[i].addr, sizeof(s->ls[i].addr), "%s",
		    l->addr.text);
	}
	s->ws = xcalloc(m->wt.n, sizeof(*s->ws));
	for (struct worker *w = m->wt.head; w; w = w->next) {
		struct state_worker *sw = &s->ws[s->nws++];

		sw->pid = w->pid;
		sw->slot = w->slot;
		sw->gen = w->gen;
		sw->state = w->state;
		sw->exec_ok = w->exec_ok;
		sw->failed_start = w->failed_start;
		sw->execfd = ev_is_active(&w->execio) ? w->execio.fd : -1;
		sw->outfd = w->out ? ((struct logpipe *)w->out)->io.fd : -1;
		sw->restarts = w->restarts;
		sw->backoff_ms = w->backoff_ms;
		sw->last_status = w->last_status;
		sw->age_ms = (int64_t)((now - w->started) * 1000);
		sw->ready_age_ms = w->ready_at ?
		    (int64_t)((now - w->ready_at) * 1000) : -1;
		sw->timer_ms = ev_is_active(&w->timer) ? (int64_t)
		    (ev_timer_remaining(m->loop, &w->timer) * 1000) : -1;
		if (sw->timer_ms < -1)
			sw->timer_ms = 0;
	}
	for (struct logpipe *lp = m->sink.pipes; lp; lp = lp->next) {
		s->ps = xrealloc(s->ps, (s->nps + 1) * sizeof(*s->ps));
		s->ps[s->nps].fd = lp->io.fd;
		s->ps[s->nps].slot = lp->slot;
		s->ps[s->nps].pid = lp->pid;
		s->nps++;
	}
	s->ctl_fd = m->ctl_fd;
	s->op_seq = m->op_seq;
	s->op_current = m->op_current;
	s->queued = m->queued;
	for (struct ctl_client *c = m->ctl_clients; c; c = c->next) {
		int fd;
		unsigned after;

		if (!control_client_waiting(c, &fd, &after))
			continue;
		s->waiters = xrealloc(s->waiters, (s->nwaiters + 1) *
		    sizeof(*s->waiters));
		s->waiters[s->nwaiters].fd = fd;
		s->waiters[s->nwaiters].after = after;
		s->nwaiters++;
	}
	state_config_dump(&m->cur.cfg, &s->cfg);
}

/* Every fd the state names survives the exec; or, undone, none does. */
static void
state_fds_inherit(const struct state *s, int memfd, bool on)
{
	int flag = on ? 0 : FD_CLOEXEC;
	size_t i;

	fcntl(memfd, F_SETFD, flag);
	if (s->pid_fd >= 0)
		fcntl(s->pid_fd, F_SETFD, flag);
	if (s->notify_fd >= 0)
		fcntl(s->notify_fd, F_SETFD, flag);
	for (i = 0; i < s->nls; i++)
		fcntl(s->ls[i].fd, F_SETFD, flag);
	for (i = 0; i < s->nws; i++)
		if (s->ws[i].execfd >= 0)
			fcntl(s->ws[i].execfd, F_SETFD, flag);
	for (i = 0; i < s->nps; i++)
		fcntl(s->ps[i].fd, F_SETFD, flag);
	if (s->ctl_fd >= 0)
		fcntl(s->ctl_fd, F_SETFD, flag);
	for (i = 0; i < s->nwaiters; i++)
		fcntl(s->waiters[i].fd, F_SETFD, flag);
}

static void
upgrade_exec(struct master *m)
{
	struct state s;
	sigset_t block, old;
	char *text = NULL, num[16];
	size_t len, off = 0;
	ssize_t n;
	int memfd = -1, e;

	/*
	 * Held across the exec: a blocked signal stays pending, and the new
	 * image takes it once its watchers are in place. A signal libev has
	 * caught but not yet dispatched would be lost, so run the loop once
	 * more with everything blocked: signal_cb raises what it gets again
	 * (pending now), and children reaped meanwhile are in the state.
	 */
	sigfillset(&block);
	sigdelset(&block, SIGSEGV);
	sigdelset(&block, SIGBUS);
	sigdelset(&block, SIGFPE);
	sigdelset(&block, SIGILL);
	sigprocmask(SIG_BLOCK, &block, &old);
	m->exec_pending = true;
	ev_run(m->loop, EVRUN_NOWAIT);
	m->exec_pending = false;
	if (m->phase == M_STOPPING) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return;		/* a stop came first: no upgrade */
	}

	/* Partial lines go out whole now; the pipes go on after. */
	for (struct logpipe *lp = m->sink.pipes; lp; lp = lp->next)
		logpipe_flush(lp);
	state_build(m, &s);
	text = state_format(&s, &len);
	if ((memfd = memfd_create("fugue-state", MFD_CLOEXEC)) == -1) {
		e = errno;
		goto fail;
	}
	while (off < len) {
		if ((n = write(memfd, text + off, len - off)) <= 0) {
			e = n == -1 ? errno : EIO;
			goto fail;
		}
		off += (size_t)n;
	}
	lseek(memfd, 0, SEEK_SET);
	free(text);
	text = NULL;

	state_fds_inherit(&s, memfd, true);
	snprintf(num, sizeof(num), "%d", memfd);
	setenv(STATE_ENV, num, 1);
	log_info("upgrade: re-executing %s", m->self_path);
	logsink_settle(&m->sink, 1000);	/* a backlog is not handed over */
	execve(m->self_path, m->argv, environ);
	e = errno;
	unsetenv(STATE_ENV);
	state_fds_inherit(&s, memfd, false);
fail:
	if (memfd != -1)
		close(memfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	free(text);
	s.notify_path = NULL;	/* borrowed */
	state_free(&s);
	errno = e;
	log_warn("upgrade: cannot re-execute %s", m->self_path);
	refuse(m, "the re-exec failed");
}

/* ---- in the new image ---- */

int
upgrade_read_state(int fd, struct state *s, char *err, size_t len)
{
	struct outbuf o = { 0 };
	char buf[65536];
	ssize_t n;
	int r;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		outbuf_add(&o, buf, (size_t)n);
		if (o.len > 256u << 20)
			break;
	}
	close(fd);
	if (n == -1) {
		snprintf(err, len, "reading the state: %s", strerror(errno));
		outbuf_free(&o);
		return -1;
	}
	r = state_parse(o.p ? o.p : "", o.len, s, err, len);
	outbuf_free(&o);
	return r;
}

void
upgrade_adopt(struct master *m, struct state *s)
{
	struct generation prev = { 0 };
	char err[512];
	size_t i;

	m->cur.id = s->cur_gen;
	m->last_gen = s->last_gen > s->cur_gen ? s->last_gen : s->cur_gen;
	m->target = s->target;
	m->nofile = s->nofile;
	m->pid_fd = s->pid_fd;
	if (s->notify_fd >= 0) {
		m->notify_fd = s->notify_fd;
		m->notify_path = s->notify_path;
		s->notify_path = NULL;
		ev_io_init(&m->notify_io, worker_notify_cb, m->notify_fd,
		    EV_READ);
		m->notify_io.data = m;
		ev_io_start(m->loop, &m->notify_io);
	}

	/* Listeners: the old generation's, in its configuration's order;
	 * whatever the state has beyond that is on its way out. */
	prev.ls = xcalloc(s->nls + 1, sizeof(*prev.ls));
	for (i = 0; i < s->nls; i++) {
		struct listener *l = &prev.ls[prev.nls];

		if (parse_address(s->ls[i].addr, &l->addr, err,
		    sizeof(err)) == -1) {
			log_error("upgrade: listener %s: %s", s->ls[i].addr, err);
			close(s->ls[i].fd);
			continue;
		}
		l->fd = s->ls[i].fd;
		l->dev = s->ls[i].dev;
		l->ino = s->ls[i].ino;
		fcntl(l->fd, F_SETFD, FD_CLOEXEC);
		prev.nls++;
	}
	if (gen_bind(&m->cur, &prev, err, sizeof(err)) != 0)
		log_error("upgrade: %s", err);
	gen_retire(m, prev.ls, prev.nls, &m->cur);
	free(prev.ls);
	if (gen_plan(m, &m->cur, err, sizeof(err)) != 0)
		log_error("upgrade: generation %u cannot restart workers: %s",
		    m->cur.id, err);

	for (i = 0; i < s->nps; i++) {
		fcntl(s->ps[i].fd, F_SETFD, FD_CLOEXEC);
		logpipe_adopt(&m->sink, s->ps[i].fd, s->ps[i].slot,
		    s->ps[i].pid);
	}
	if (m->pid_fd >= 0)
		fcntl(m->pid_fd, F_SETFD, FD_CLOEXEC);
	m->op_seq = s->op_seq;
	m->op_current = s->op_current;
	m->queued = s->queued;
	if (s->ctl_fd >= 0) {
		fcntl(s->ctl_fd, F_SETFD, FD_CLOEXEC);
		control_start(m, s->ctl_fd);
	}
	for (i = 0; i < s->nwaiters; i++)
		control_adopt_waiter(m, s->waiters[i].fd, s->waiters[i].after);
	if (m->notify_fd >= 0)
		fcntl(m->notify_fd, F_SETFD, FD_CLOEXEC);

	/* Workers, with their timers re-armed from the time they had left. */
	ev_tstamp now = mono_now();
	for (i = 0; i < s->nws; i++) {
		const struct state_worker *sw = &s->ws[i];
		struct worker *w = workers_add(&m->wt, sw->slot, sw->gen);

		w->master = m;
		w->pid = sw->pid;
		w->state = sw->state;
		w->exec_ok = sw->exec_ok;
		w->failed_start = sw->failed_start;
		w->restarts = sw->restarts;
		w->backoff_ms = sw->backoff_ms;
		w->last_status = sw->last_status;
		w->started = now - sw->age_ms / 1000.0;
		w->ready_at = sw->ready_age_ms >= 0 ?
		    now - sw->ready_age_ms / 1000.0 : 0;
		ev_init(&w->timer, worker_timer_cb);
		w->timer.data = w;
		ev_init(&w->execio, NULL);
		ev_io_set(&w->execio, -1, EV_READ);
		for (struct logpipe *lp = m->sink.pipes; lp; lp = lp->next)
			if (sw->outfd >= 0 && lp->io.fd == sw->outfd) {
				w->out = lp;
				lp->owner = &w->out;
			}
		if (sw->execfd >= 0)
			worker_watch_exec(m, w, sw->execfd);
		if (sw->timer_ms >= 0) {
			const struct config *c = &gen_of(m, w)->cfg;
			ev_tstamp repeat = w->state == W_READY ?
			    c->watchdog_ms / 1000.0 : 0;

			ev_timer_set(&w->timer, sw->timer_ms / 1000.0, repeat);
			ev_timer_start(m->loop, &w->timer);
		}
	}
}
