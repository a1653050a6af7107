/*
 * The mechanics of an in-place upgrade (USR2): the new binary's check and
 * trial run (children bounded in time), the state written to a memfd, and
 * the execve of the binary with the same PID. What the state holds and
 * when to exec are the master's business (handover.c, reload.c).
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logging.h"
#include "spawn.h"
#include "upgrade.h"

extern char **environ;

#define CHECK_OUTPUT_MAX	8192

static void
check_read(struct upgrade_check *c)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(c->io.fd, buf, sizeof(buf))) > 0)
		if (c->out.len < CHECK_OUTPUT_MAX)
			outbuf_add(&c->out, buf, (size_t)n);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		ev_io_stop(c->loop, &c->io);
		close(c->io.fd);
		ev_io_set(&c->io, -1, EV_READ);
	}
}

static void
check_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	check_read(io->data);
}

/* Too long: the whole group goes; its exit comes through the child
 * watcher as usual. */
static void
check_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct upgrade_check *c = t->data;

	(void)loop;
	(void)revents;
	c->timed_out = true;
	if (c->pid > 0)
		kill(-c->pid, SIGKILL);
}

/* <self> -t <the same arguments>, or for the trial the same arguments. */
static char **
check_argv(const char *self, char **argv, bool trial)
{
	int argc, i, j = 0;
	char **v;

	for (argc = 0; argv[argc]; argc++)
		;
	v = xcalloc(argc + 2, sizeof(*v));
	v[j++] = (char *)self;
	if (!trial)
		v[j++] = "-t";
	for (i = 1; i < argc; i++)
		v[j++] = argv[i];
	return v;
}

int
upgrade_check_start(struct upgrade_check *c, struct ev_loop *loop,
    const char *self, char **argv, int devnull, int memfd, const int *keep,
    int nkeep, int64_t timeout_ms, char *err, size_t len)
{
	char **v = check_argv(self, argv, memfd >= 0), num[16];
	int p[2];

	upgrade_check_end(c);
	c->loop = loop;
	c->trial = memfd >= 0;
	c->memfd = memfd;
	if (pipe2(p, O_CLOEXEC) == -1) {
		snprintf(err, len, "pipe: %s", strerror(errno));
		free(v);
		return -1;
	}
	if (c->trial) {
		snprintf(num, sizeof(num), "%d", memfd);
		setenv(TRIAL_ENV, num, 1);
	}
	c->pid = spawn_command(self, v, environ, devnull, p[1], keep, nkeep);
	if (c->trial)
		unsetenv(TRIAL_ENV);
	free(v);
	close(p[1]);
	if (c->pid == -1) {
		snprintf(err, len, "fork: %s", strerror(errno));
		c->pid = 0;
		close(p[0]);
		return -1;
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	ev_io_init(&c->io, check_io_cb, p[0], EV_READ);
	c->io.data = c;
	ev_io_start(loop, &c->io);
	ev_timer_init(&c->timer, check_timer_cb, timeout_ms / 1000.0, 0);
	c->timer.data = c;
	ev_timer_start(loop, &c->timer);
	return 0;
}

int
upgrade_check_exited(struct upgrade_check *c, int status, char *why,
    size_t len)
{
	/* It is over: what it left running goes too (a trial's children hold
	 * copies of the state's fds, a waiting control client's among them).
	 * Just reaped, so the group's id is not anyone else's yet. */
	if (c->pid > 0)
		kill(-c->pid, SIGKILL);
	c->pid = 0;
	ev_timer_stop(c->loop, &c->timer);
	if (ev_is_active(&c->io)) {
		/* It exited: what it wrote is there, or EOF comes (unless a
		 * child of its own holds the pipe: then we read what is). */
		check_read(c);
		if (ev_is_active(&c->io)) {
			ev_io_stop(c->loop, &c->io);
			close(c->io.fd);
			ev_io_set(&c->io, -1, EV_READ);
		}
	}
	if (c->timed_out)
		snprintf(why, len, "its %s did not end in time", c->trial ?
		    "trial run" : "check");
	else if (status != 0)
		snprintf(why, len, "the new binary %s", c->trial ?
		    "failed its trial run on the running state" :
		    "or the configuration failed its check");
	return c->timed_out || status != 0 ? -1 : 0;
}

void
upgrade_check_end(struct upgrade_check *c)
{
	if (c->pid > 0)
		kill(-c->pid, SIGKILL);	/* reaped by the child watcher */
	c->pid = 0;
	c->timed_out = false;
	if (c->loop) {
		ev_timer_stop(c->loop, &c->timer);
		if (ev_is_active(&c->io)) {
			ev_io_stop(c->loop, &c->io);
			close(c->io.fd);
		}
	}
	ev_io_set(&c->io, -1, EV_READ);
	if (c->memfd >= 0 && c->trial)
		close(c->memfd);
	c->memfd = -1;
	outbuf_free(&c->out);
}

int
upgrade_state_memfd(const struct state *s, int *memfd)
{
	size_t len, off = 0;
	char *text = state_format(s, &len);
	ssize_t n;
	int fd, e;

	if ((fd = memfd_create("fugue-state", MFD_CLOEXEC)) == -1) {
		free(text);
		return -1;
	}
	while (off < len) {
		if ((n = write(fd, text + off, len - off)) <= 0) {
			e = n == -1 ? errno : EIO;
			free(text);
			close(fd);
			errno = e;
			return -1;
		}
		off += (size_t)n;
	}
	free(text);
	*memfd = fd;
	return 0;
}

int *
upgrade_state_fds(const struct state *s, int *n)
{
	int *v = xcalloc(8 + s->nls + 2 * s->nws + s->nps + s->nwaiters +
	    s->nns + s->nmclients, sizeof(*v));
	size_t i;

	*n = 0;
#define ADD(fd)	do { if ((fd) >= 0) v[(*n)++] = (fd); } while (0)
	ADD(s->pid_fd);
	ADD(s->notify_fd);
	ADD(s->ctl_fd);
	ADD(s->sink_fd);
	ADD(s->metrics_fd);
	for (i = 0; i < s->nls; i++)
		ADD(s->ls[i].fd);
	for (i = 0; i < s->nws; i++) {
		ADD(s->ws[i].execfd);
		ADD(s->ws[i].readyfd);
	}
	for (i = 0; i < s->nps; i++)
		ADD(s->ps[i].fd);
	for (i = 0; i < s->nwaiters; i++)
		ADD(s->waiters[i].fd);
	for (i = 0; i < s->nns; i++)
		ADD(s->ns[i].fd);
	for (i = 0; i < s->nmclients; i++)
		ADD(s->mclients[i].fd);
#undef ADD
	return v;
}

void
upgrade_fds_inherit(const struct state *s, int memfd, bool on)
{
	int n, *v = upgrade_state_fds(s, &n);

	fcntl(memfd, F_SETFD, on ? 0 : FD_CLOEXEC);
	for (int i = 0; i < n; i++)
		fcntl(v[i], F_SETFD, on ? 0 : FD_CLOEXEC);
	free(v);
}

void
upgrade_exec(const char *self, char **argv, const struct state *s, int memfd)
{
	char num[16];
	int e;

	upgrade_fds_inherit(s, memfd, true);
	snprintf(num, sizeof(num), "%d", memfd);
	setenv(STATE_ENV, num, 1);
	execve(self, argv, environ);
	e = errno;
	unsetenv(STATE_ENV);
	upgrade_fds_inherit(s, memfd, false);
	errno = e;
}

int
upgrade_read_state(int fd, struct state *s, char *err, size_t len)
{
	struct outbuf o = { 0 };
	char buf[65536];
	off_t off = 0;
	ssize_t n;
	int r;

	/* From the start, whoever read it before (a trial run shares it). */
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		outbuf_add(&o, buf, (size_t)n);
		off += n;
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

int
upgrade_trial(int fd, char *err, size_t len)
{
	struct errlist errs = { 0 };
	struct config c;
	struct state s;
	int n, *v, r = 0;

	if (upgrade_read_state(fd, &s, err, len) == -1)
		return -1;
	config_init(&c);
	if (state_config_load(&s.cfg, &c, &errs) != 0) {
		snprintf(err, len, "its configuration: %s", errs.n ?
		    errs.v[0] : "?");
		r = -1;
	}
	v = upgrade_state_fds(&s, &n);
	for (int i = 0; r == 0 && i < n; i++)
		if (fcntl(v[i], F_GETFD) == -1) {
			snprintf(err, len, "fd %d: %s", v[i], strerror(errno));
			r = -1;
		}
	free(v);
	errlist_free(&errs);
	config_free(&c);
	state_free(&s);
	return r;
}
