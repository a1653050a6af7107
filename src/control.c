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
#include "logging.h"
#include "master.h"
#include "upgrade.h"

#define CTL_IDLE_SEC	10.0
#define CTL_PAUSE_SEC	1.0	/* accept paused when out of fds */


int
control_open(const char *path, int *fd, char *err, size_t len)
{
	struct address a;
	struct listener l;
	int r;

	char spec[ADDRESS_TEXT_MAX + 8];

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
	struct master *m = c->m;

	ev_io_stop(m->loop, &c->io);
	ev_timer_stop(m->loop, &c->timer);
	close(c->io.fd);
	outbuf_free(&c->out);
	if (c->prev)
		c->prev->next = c->next;
	else
		m->ctl_clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

static void
client_flush(struct ctl_client *c)
{
	ssize_t n;

	while (c->sent < c->out.len) {
		n = send(c->io.fd, c->out.p + c->sent, c->out.len - c->sent,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;		/* the write watcher goes on */
		if (n <= 0) {
			client_free(c);
			return;
		}
		c->sent += (size_t)n;
	}
	client_free(c);
}

/* Send what c->out holds, the whole answer; the client is gone after. */
static void
client_send(struct ctl_client *c)
{
	struct master *m = c->m;

	c->waiting = false;
	ev_io_stop(m->loop, &c->io);
	ev_io_set(&c->io, c->io.fd, EV_WRITE);
	ev_io_start(m->loop, &c->io);
	ev_timer_stop(m->loop, &c->timer);
	ev_timer_set(&c->timer, CTL_IDLE_SEC, 0);
	ev_timer_start(m->loop, &c->timer);
	client_flush(c);
}

static void __attribute__((format(printf, 2, 3)))
client_reply(struct ctl_client *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		outbuf_add(&c->out, buf, (size_t)n < sizeof(buf) ? (size_t)n :
		    sizeof(buf) - 1);
	client_send(c);
}

static void
client_reply_owned(struct ctl_client *c, char *text)
{
	outbuf_add(&c->out, text, strlen(text));
	free(text);
	client_send(c);
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
client_command(struct ctl_client *c, const char *line, size_t n)
{
	struct master *m = c->m;
	unsigned count = 0;
	enum ctl_verb verb = control_parse(line, n, &count);

	switch (verb) {
	case CTL_STATUS:
	case CTL_STATUS_JSON:
		client_reply_owned(c, control_status(m, verb == CTL_STATUS_JSON));
		break;
	case CTL_RELOAD:
	case CTL_UPGRADE:
		if (m->phase == M_STOPPING) {
			client_reply(c, "refused: fugue is stopping\n");
			break;
		}
		/* Wait for the first operation that starts from now on. */
		c->waiting = true;
		c->after = m->op_seq;
		ev_timer_stop(m->loop, &c->timer);
		ev_io_stop(m->loop, &c->io);
		if (verb == CTL_RELOAD)
			master_reload(m);
		else
			upgrade_begin(m);
		break;
	case CTL_STOP:
	case CTL_QUIT:
		client_reply(c, "ok: stopping (%s)\n", verb == CTL_STOP ?
		    "quick" : "graceful");
		master_stop(m, verb == CTL_STOP);
		break;
	case CTL_REOPEN:
		master_reopen_logs(m);
		client_reply(c, "ok: log files reopened\n");
		break;
	case CTL_SCALE:
		if (m->phase == M_STOPPING)
			client_reply(c, "refused: fugue is stopping\n");
		else {
			master_scale(m, count);
			client_reply(c, "ok: %u workers\n", count);
		}
		break;
	case CTL_BAD:
		client_reply(c, "error: unknown command; try status, status "
		    "json, reload, upgrade, scale N (0 to 10000), reopen, "
		    "stop, quit\n");
		break;
	}
}

static void
client_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct ctl_client *c = io->data;
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
			client_reply(c, "error: command too long\n");
		return;
	}
	client_command(c, c->line, (size_t)(nl - c->line));
}

static void
client_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	client_free(t->data);
}

static struct ctl_client *
client_add(struct master *m, int fd)
{
	struct ctl_client *c = xcalloc(1, sizeof(*c));

	c->m = m;
	ev_io_init(&c->io, client_io_cb, fd, EV_READ);
	c->io.data = c;
	ev_init(&c->timer, client_timer_cb);
	c->timer.data = c;
	c->next = m->ctl_clients;
	if (c->next)
		c->next->prev = c;
	m->ctl_clients = c;
	return c;
}

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct master *m = io->data;
	struct ctl_client *c;
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	int fd;

	(void)loop;
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
			ev_io_stop(m->loop, &m->ctl_io);
			ev_timer_set(&m->ctl_pause, CTL_PAUSE_SEC, 0);
			ev_timer_start(m->loop, &m->ctl_pause);
		} else if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("control: accept");
		return;
	}
	c = client_add(m, fd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) == -1 ||
	    (cr.uid != 0 && cr.uid != geteuid())) {
		log_warnx("control: refused a client with uid %ld",
		    (long)cr.uid);
		client_reply(c, "error: permission denied\n");
		return;
	}
	ev_io_start(m->loop, &c->io);
	ev_timer_set(&c->timer, CTL_IDLE_SEC, 0);
	ev_timer_start(m->loop, &c->timer);
}

static void
accept_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = t->data;

	(void)revents;
	if (m->ctl_fd != -1)
		ev_io_start(loop, &m->ctl_io);
}

void
control_start(struct master *m, int fd)
{
	m->ctl_fd = fd;
	ev_io_init(&m->ctl_io, accept_cb, fd, EV_READ);
	m->ctl_io.data = m;
	ev_io_start(m->loop, &m->ctl_io);
	ev_init(&m->ctl_pause, accept_resume_cb);
	m->ctl_pause.data = m;
}

bool
control_client_waiting(const struct ctl_client *c, int *fd, unsigned *after)
{
	*fd = c->io.fd;
	*after = c->after;
	return c->waiting;
}

void
control_adopt_waiter(struct master *m, int fd, unsigned after)
{
	struct ctl_client *c;

	fcntl(fd, F_SETFD, FD_CLOEXEC);
	c = client_add(m, fd);
	c->waiting = true;
	c->after = after;
}

void
control_outcome(struct master *m, const char *word, const char *fmt, ...)
{
	struct ctl_client *c, *next;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (c = m->ctl_clients; c; c = next) {
		next = c->next;
		if (c->waiting && c->after < m->op_current)
			client_reply(c, "%s: %s\n", word, msg);
	}
}

void
control_close(struct master *m, bool unlink_file)
{
	while (m->ctl_clients)
		client_free(m->ctl_clients);
	if (m->ctl_fd == -1)
		return;
	ev_io_stop(m->loop, &m->ctl_io);
	ev_timer_stop(m->loop, &m->ctl_pause);
	close(m->ctl_fd);
	m->ctl_fd = -1;
	if (unlink_file && m->cur.cfg.control_socket)
		unlink(m->cur.cfg.control_socket);
}

/* ---- status ---- */

static void
json_string(struct outbuf *o, const char *s)
{
	char e[8];

	outbuf_add(o, "\"", 1);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			e[0] = '\\';
			e[1] = (char)ch;
			outbuf_add(o, e, 2);
		} else if (ch < 0x20) {
			snprintf(e, sizeof(e), "\\u%04x", ch);
			outbuf_add(o, e, 6);
		} else
			outbuf_add(o, s, 1);
	}
	outbuf_add(o, "\"", 1);
}


static void
format_uptime(double sec, char *buf, size_t len)
{
	long s = (long)sec;

	if (s < 60)
		snprintf(buf, len, "%lds", s);
	else if (s < 3600)
		snprintf(buf, len, "%ldm%02lds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%ldh%02ldm", s / 3600, s / 60 % 60);
	else
		snprintf(buf, len, "%ldd%02ldh", s / 86400, s / 3600 % 24);
}

char *
control_status(struct master *m, bool json)
{
	static const char *const phases[] = { "starting", "running",
	    "stopping" };
	ev_tstamp now = mono_now();
	struct outbuf o = { 0 };
	char up[32], last[96];
	struct worker *w;
	bool first = true;

	if (json) {
		outbuf_printf(&o, "{\"pid\":%ld,\"phase\":\"%s\",\"generation\":%u,"
		    "\"workers_wanted\":%u,\"workers_ready\":%u,"
		    "\"reloading\":%s,\"workers\":[", (long)m->pid,
		    phases[m->phase], m->cur.id, m->target,
		    workers_count(&m->wt, m->cur.id, WS(W_READY)),
		    m->next.id || m->check_pid ? "true" : "false");
		for (w = m->wt.head; w; w = w->next) {
			outbuf_printf(&o, "%s{\"slot\":%u,\"pid\":%ld,\"generation\":%u,"
			    "\"state\":\"%s\",\"uptime\":%.3f,\"restarts\":%u,"
			    "\"last_exit\":", first ? "" : ",", w->slot,
			    (long)w->pid, w->gen, worker_state_name(w->state),
			    w->pid > 0 ? now - w->started : 0.0, w->restarts);
			first = false;
			if (w->last_status == -1)
				outbuf_printf(&o, "null}");
			else {
				describe_status(w->last_status, last,
				    sizeof(last));
				json_string(&o, last);
				outbuf_printf(&o, "}");
			}
		}
		outbuf_printf(&o, "]}\n");
	} else {
		outbuf_printf(&o, "fugue pid %ld, %s, generation %u, %u of %u workers "
		    "ready%s\n", (long)m->pid, phases[m->phase], m->cur.id,
		    workers_count(&m->wt, m->cur.id, WS(W_READY)), m->target,
		    m->next.id || m->check_pid ? ", reloading" : "");
		outbuf_printf(&o, "%-5s %-8s %-4s %-9s %-8s %-8s %s\n", "SLOT", "PID",
		    "GEN", "STATE", "UPTIME", "RESTARTS", "LAST EXIT");
		for (w = m->wt.head; w; w = w->next) {
			if (w->pid > 0)
				format_uptime(now - w->started, up,
				    sizeof(up));
			else
				snprintf(up, sizeof(up), "-");
			if (w->last_status == -1)
				snprintf(last, sizeof(last), "-");
			else
				describe_status(w->last_status, last,
				    sizeof(last));
			outbuf_printf(&o, "%-5u %-8ld %-4u %-9s %-8s %-8u %s\n", w->slot,
			    (long)w->pid, w->gen, worker_state_name(w->state),
			    up, w->restarts, last);
		}
	}
	outbuf_add(&o, "", 1);	/* NUL */
	return o.p;
}
