/*
 * The control socket. A client sends one line; fugue answers and closes.
 * Peers are checked with SO_PEERCRED (root or fugue's own uid). reload and
 * upgrade hold the answer until the outcome: "ok: ...", "refused: ..." or
 * "failed: ...". Every client is bounded: a line of CTL_LINE_MAX bytes, a
 * few seconds to send it.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "listen.h"

#define CTL_IDLE_SEC	10.0
#define CTL_PAUSE_SEC	1.0	/* accept paused when out of fds */

int
control_open(const char *path, int *fd, char *err, size_t len)
{
	char spec[ADDRESS_TEXT_MAX + 8];
	struct address a;
	struct listener l;
	int r;

	snprintf(spec, sizeof(spec), "unix:%s", path);
	if (parse_address(spec, &a, err, len) == -1)
		return EX_CONFIG_;
	/* Bound like a UNIX listener (stale file replaced, never a regular
	 * file), only for root and fugue's own user. */
	r = listen_open(&l, &a, 16, 0600, (uid_t)-1, (gid_t)-1, err, len);
	if (r != 0)
		return r;
	fcntl(l.fd, F_SETFL, O_NONBLOCK);
	*fd = l.fd;
	return 0;
}

static void
client_free(struct ctl_client *c)
{
	struct ev_loop *loop = c->ctl->loop;

	ev_io_stop(loop, &c->io);
	ev_timer_stop(loop, &c->timer);
	close(c->io.fd);
	outbuf_free(&c->out);
	LIST_REMOVE(c, link);
	free(c);
}

static void
client_flush(struct ctl_client *c)
{
	int r = outbuf_send(c->io.fd, &c->out, &c->sent);

	if (r == 0)
		return;		/* the write watcher goes on */
	if (r == -1) {
		client_free(c);
		return;
	}
	client_free(c);
}

/* Send what c->out holds, the whole answer; the client is gone after. */
static void
client_send(struct ctl_client *c)
{
	struct ev_loop *loop = c->ctl->loop;

	c->waiting = false;
	ev_io_stop(loop, &c->io);
	ev_io_set(&c->io, c->io.fd, EV_WRITE);
	ev_io_start(loop, &c->io);
	ev_timer_stop(loop, &c->timer);
	ev_timer_set(&c->timer, CTL_IDLE_SEC, 0);
	ev_timer_start(loop, &c->timer);
	client_flush(c);
}

void
control_reply(struct ctl_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	outbuf_vprintf(&c->out, fmt, ap);
	va_end(ap);
	client_send(c);
}

void
control_reply_owned(struct ctl_client *c, char *text)
{
	outbuf_add(&c->out, text, strlen(text));
	free(text);
	client_send(c);
}

void
control_wait(struct ctl_client *c, unsigned after)
{
	c->waiting = true;
	c->after = after;
	ev_timer_stop(c->ctl->loop, &c->timer);
	ev_io_stop(c->ctl->loop, &c->io);
}

enum ctl_verb
control_parse(const char *line, size_t n, unsigned *count)
{
	static const struct {
		const char	*word;
		enum ctl_verb	 verb;
	} verbs[] = {
		{ "status", CTL_STATUS }, { "status json", CTL_STATUS_JSON },
		{ "reload", CTL_RELOAD }, { "upgrade", CTL_UPGRADE },
		{ "stop", CTL_STOP }, { "quit", CTL_QUIT },
		{ "reopen", CTL_REOPEN },
	};
	char buf[CTL_LINE_MAX];
	unsigned long v;

	if (n >= sizeof(buf) || memchr(line, '\0', n))
		return CTL_BAD;
	memcpy(buf, line, n);
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[n - 1] = '\0';
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(buf, verbs[i].word) == 0)
			return verbs[i].verb;
	if (strncmp(buf, "scale ", 6) == 0 &&
	    parse_uint(buf + 6, 0, 10000, &v) == 0) {
		*count = (unsigned)v;
		return CTL_SCALE;
	}
	return CTL_BAD;
}

static void
client_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct ctl_client *c = io->data;
	enum ctl_verb verb;
	unsigned count = 0;
	char *nl;
	ssize_t n;

	(void)loop;
	if (revents & EV_WRITE) {
		client_flush(c);
		return;
	}
	n = recv(io->fd, c->line + c->len, sizeof(c->line) - 1 - c->len,
	    MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_free(c);
		return;
	}
	c->len += (size_t)n;
	c->line[c->len] = '\0';
	if ((nl = memchr(c->line, '\n', c->len)) == NULL) {
		if (c->len == sizeof(c->line) - 1)
			control_reply(c, "error: command too long\n");
		return;
	}
	verb = control_parse(c->line, (size_t)(nl - c->line), &count);
	c->ctl->command(c->ctl->arg, c, verb, count);
}

static void
client_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	client_free(t->data);
}

static struct ctl_client *
client_add(struct control *ctl, int fd)
{
	struct ctl_client *c = xcalloc(1, sizeof(*c));

	c->ctl = ctl;
	ev_io_init(&c->io, client_io_cb, fd, EV_READ);
	c->io.data = c;
	ev_init(&c->timer, client_timer_cb);
	c->timer.data = c;
	LIST_INSERT_HEAD(&ctl->clients, c, link);
	return c;
}

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct control *ctl = io->data;
	struct ctl_client *c;
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	int fd;

	(void)revents;
	fd = accept4(io->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd == -1) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* The client stays in the backlog and the socket stays
			 * readable: stop watching it for a while, or the loop
			 * spins and floods the log. */
			log_warn("control: accept (paused for %.0fs)",
			    CTL_PAUSE_SEC);
			ev_io_stop(loop, &ctl->io);
			ev_timer_set(&ctl->pause, CTL_PAUSE_SEC, 0);
			ev_timer_start(loop, &ctl->pause);
		} else if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("control: accept");
		return;
	}
	c = client_add(ctl, fd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) == -1 ||
	    (cr.uid != 0 && cr.uid != geteuid())) {
		log_warnx("control: refused a client with uid %ld",
		    (long)cr.uid);
		control_reply(c, "error: permission denied\n");
		return;
	}
	ev_io_start(loop, &c->io);
	ev_timer_set(&c->timer, CTL_IDLE_SEC, 0);
	ev_timer_start(loop, &c->timer);
}

static void
accept_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct control *ctl = t->data;

	(void)revents;
	if (ctl->fd != -1)
		ev_io_start(loop, &ctl->io);
}

void
control_start(struct control *ctl, struct ev_loop *loop, int fd,
    ctl_command_fn command, void *arg)
{
	ctl->loop = loop;
	ctl->fd = fd;
	ctl->command = command;
	ctl->arg = arg;
	LIST_INIT(&ctl->clients);
	ev_io_init(&ctl->io, accept_cb, fd, EV_READ);
	ctl->io.data = ctl;
	ev_init(&ctl->pause, accept_resume_cb);
	ctl->pause.data = ctl;
	if (fd != -1)
		ev_io_start(loop, &ctl->io);
}

void
control_adopt_waiter(struct control *ctl, int fd, unsigned after)
{
	struct ctl_client *c;

	fcntl(fd, F_SETFD, FD_CLOEXEC);
	c = client_add(ctl, fd);
	c->waiting = true;
	c->after = after;
}

void
control_outcome(struct control *ctl, unsigned op, const char *word,
    const char *fmt, ...)
{
	struct ctl_client *c, *next;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (c = LIST_FIRST(&ctl->clients); c; c = next) {
		next = LIST_NEXT(c, link);
		if (c->waiting && c->after < op)
			control_reply(c, "%s: %s\n", word, msg);
	}
}

void
control_close(struct control *ctl, const char *path)
{
	while (ctl->loop && !LIST_EMPTY(&ctl->clients))
		client_free(LIST_FIRST(&ctl->clients));
	if (ctl->fd == -1)
		return;
	if (ctl->loop) {
		ev_io_stop(ctl->loop, &ctl->io);
		ev_timer_stop(ctl->loop, &ctl->pause);
	}
	close(ctl->fd);
	ctl->fd = -1;
	if (path)
		unlink(path);
}
