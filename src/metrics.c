/*
 * The master's HTTP endpoint: one request per connection, one answer,
 * then close (Connection: close). No keep-alive, no request body, no
 * chunked answers: what Prometheus and load balancers' health checks need
 * and no more. A client that is slow, stuck or gone costs at most its
 * buffers until its timer fires; nothing here ever blocks the loop.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logging.h"
#include "metrics.h"

#define METRICS_BACKLOG		64
#define METRICS_PAUSE_SEC	1.0	/* accept paused when out of fds */
#define CONTENT_PROM	"text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TEXT	"text/plain; charset=utf-8"

/* ---- the request ---- */

static bool
is(const char *p, size_t n, const char *word)
{
	return n == strlen(word) && memcmp(p, word, n) == 0;
}

int
metrics_parse(const char *buf, size_t n, struct metrics_request *r)
{
	const char *eol, *sp1, *sp2, *target, *end;
	size_t len, tlen;

	memset(r, 0, sizeof(*r));
	/* Whole once an empty line ends it. */
	if (memmem(buf, n, "\n\n", 2) == NULL &&
	    memmem(buf, n, "\n\r\n", 3) == NULL) {
		if (n < METRICS_HEAD_MAX)
			return 0;
		r->status = 431;
		return 1;
	}
	r->status = 400;
	if (memchr(buf, '\0', n) != NULL)
		return 1;
	eol = memchr(buf, '\n', n);
	len = (size_t)(eol - buf);
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	/* METHOD SP TARGET SP HTTP/1.x */
	if ((sp1 = memchr(buf, ' ', len)) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - buf))) ==
	    NULL || memchr(sp2 + 1, ' ', len - (size_t)(sp2 + 1 - buf)))
		return 1;
	target = sp1 + 1;
	tlen = (size_t)(sp2 - target);
	if (sp1 == buf || tlen == 0 || target[0] != '/')
		return 1;
	end = sp2 + 1;
	if (len - (size_t)(end - buf) < 5 || memcmp(end, "HTTP/", 5) != 0)
		return 1;
	if (!is(end, len - (size_t)(end - buf), "HTTP/1.1") &&
	    !is(end, len - (size_t)(end - buf), "HTTP/1.0")) {
		r->status = 505;
		return 1;
	}
	r->head = is(buf, (size_t)(sp1 - buf), "HEAD");
	if (!r->head && !is(buf, (size_t)(sp1 - buf), "GET")) {
		r->status = 405;
		return 1;
	}
	/* The path; a query is ignored. */
	for (len = 0; len < tlen && target[len] != '?' && target[len] != '#';
	    len++)
		;
	if (is(target, len, "/metrics"))
		r->page = MP_METRICS;
	else if (is(target, len, "/readyz"))
		r->page = MP_READYZ;
	else if (is(target, len, "/livez"))
		r->page = MP_LIVEZ;
	r->status = r->page == MP_NONE ? 404 : 200;
	return 1;
}

/* ---- clients ---- */

static void	accept_resume(struct metrics *);

static void
client_free(struct metrics_client *c)
{
	struct metrics *mx = c->mx;

	ev_io_stop(mx->loop, &c->io);
	ev_timer_stop(mx->loop, &c->timer);
	ev_idle_stop(mx->loop, &c->collect);
	close(c->io.fd);
	free(c->in);
	prom_snapshot_free(c->snap);
	outbuf_free(&c->out);
	TAILQ_REMOVE(&mx->clients, c, link);
	mx->nclients--;
	free(c);
	accept_resume(mx);
}

/* All sent: what the client sent beyond its request is read away first,
 * or the close would reset the connection under the answer's tail. */
static void
client_done(struct metrics_client *c)
{
	char buf[4096];

	shutdown(c->io.fd, SHUT_WR);
	for (int i = 0; i < 16; i++)
		if (recv(c->io.fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
	client_free(c);
}

static void
client_flush(struct metrics_client *c)
{
	int r = outbuf_send(c->io.fd, &c->out, &c->sent);

	if (r == 0)
		return;		/* the write watcher goes on */
	if (r == -1) {
		client_free(c);
		return;
	}
	client_done(c);
}

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* The whole answer into c->out, then out it goes. */
static void
client_answer(struct metrics_client *c, int status, const char *type,
    const char *body, size_t len)
{
	struct ev_loop *loop = c->mx->loop;

	outbuf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n%s"
	    "Connection: close\r\n\r\n", status, reason_phrase(status), type,
	    len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!c->head)
		outbuf_add(&c->out, body, len);
	ev_io_stop(loop, &c->io);
	ev_io_set(&c->io, c->io.fd, EV_WRITE);
	ev_io_start(loop, &c->io);
	client_flush(c);
}

void
metrics_reply(struct metrics_client *c, int status, const char *text)
{
	client_answer(c, status, CONTENT_TEXT, text, strlen(text));
}

/* After a scrape that ran out of time: the PSS it could not read, a few
 * per idle moment; then nothing more until the next scrape. */
static void
refresh_cb(struct ev_loop *loop, ev_idle *idle, int revents)
{
	struct metrics *mx = idle->data;
	double now = mono_now();
	unsigned k = 0;

	(void)revents;
	for (; k < METRICS_PROC_BATCH && mx->refresh_at < mx->procs.n;
	    mx->refresh_at++) {
		struct procent *e = &mx->procs.v[mx->refresh_at];

		if (e->st.cpu_ok && e->pss_at < mx->refresh_before) {
			procent_read_pss(e, now);
			k++;
		}
	}
	if (mx->refresh_at >= mx->procs.n)
		ev_idle_stop(loop, idle);
}

/* /proc of a few more workers: CPU time, and PSS while the budget lasts. */
static bool
collect_some(struct metrics_client *c)
{
	struct metrics *mx = c->mx;
	struct prom_snapshot *s = c->snap;
	struct procent *e;
	double t;

	for (unsigned k = 0; k < METRICS_PROC_BATCH && s->nread < s->nws; k++) {
		struct prom_worker *w = &s->ws[s->nread++];

		if (w->pid <= 0 || (e = proccache_find(&mx->procs, w->pid)) ==
		    NULL)
			continue;
		procent_read_cpu(&mx->procs, e);
		if (e->st.cpu_ok && e->pss_at < c->started &&
		    c->pss_spent < METRICS_PSS_BUDGET) {
			t = mono_now();
			procent_read_pss(e, t);
			c->pss_spent += mono_now() - t;
		}
		w->proc = e->st;
		w->proc.pss_ok = e->st.cpu_ok && e->st.pss_ok;
	}
	return s->nread == s->nws;
}

static void
collect_cb(struct ev_loop *loop, ev_idle *idle, int revents)
{
	struct metrics_client *c = idle->data;
	struct metrics *mx = c->mx;
	struct outbuf body = { 0 };

	(void)revents;
	if (!collect_some(c))
		return;		/* more at the next idle moment */
	ev_idle_stop(loop, idle);
	procstat_read(c->snap->pid, &c->snap->self);
	prom_format(c->snap, &body);
	prom_snapshot_free(c->snap);
	c->snap = NULL;
	if (c->pss_spent >= METRICS_PSS_BUDGET) {
		mx->refresh_before = c->started;
		mx->refresh_at = 0;
		ev_idle_start(loop, &mx->refresh);
	}
	client_answer(c, 200, CONTENT_PROM, body.p ? body.p : "", body.len);
	outbuf_free(&body);
}

static int
pid_order(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

void
metrics_scrape(struct metrics_client *c, struct prom_snapshot *s)
{
	struct metrics *mx = c->mx;
	pid_t *pids = xcalloc(s->nws ? s->nws : 1, sizeof(*pids));
	size_t n = 0, m = 0;

	/* The cache holds exactly the workers of this snapshot. */
	for (size_t i = 0; i < s->nws; i++)
		if (s->ws[i].pid > 0)
			pids[n++] = s->ws[i].pid;
	qsort(pids, n, sizeof(*pids), pid_order);
	for (size_t i = 0; i < n; i++)
		if (m == 0 || pids[i] != pids[m - 1])
			pids[m++] = pids[i];
	proccache_sync(&mx->procs, pids, m);
	free(pids);
	mx->refresh_at = 0;
	c->snap = s;
	c->started = mono_now();
	c->pss_spent = 0;
	ev_idle_start(mx->loop, &c->collect);
}

static void
client_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct metrics_client *c = io->data;
	struct metrics_request r;
	ssize_t n;

	if (revents & EV_WRITE) {
		client_flush(c);
		return;
	}
	if (c->in == NULL)
		c->in = xmalloc(METRICS_HEAD_MAX);
	n = recv(io->fd, c->in + c->inlen, METRICS_HEAD_MAX - c->inlen,
	    MSG_DONTWAIT);
	if (n > 0)
		c->inlen += (size_t)n;
	/* What came so far is parsed also when nothing new did (an adopted
	 * client's), and at the end of the input (a client that shut its
	 * side down after its request still gets the answer). */
	if (c->inlen == 0 || metrics_parse(c->in, c->inlen, &r) == 0) {
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
			client_free(c);
		return;
	}
	/* One request: nothing more is read until the answer is out. */
	ev_io_stop(loop, io);
	c->answering = true;
	c->head = r.head;
	if (r.status != 200) {
		char text[64];

		snprintf(text, sizeof(text), "%s\n", reason_phrase(r.status));
		metrics_reply(c, r.status, text);
	} else if (r.page == MP_LIVEZ)
		metrics_reply(c, 200, "ok\n");
	else
		c->mx->page(c->mx->arg, c, r.page);
}

static void
client_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	client_free(t->data);
}

static struct metrics_client *
client_add(struct metrics *mx, int fd)
{
	struct metrics_client *c = xcalloc(1, sizeof(*c));

	c->mx = mx;
	ev_io_init(&c->io, client_io_cb, fd, EV_READ);
	c->io.data = c;
	ev_timer_init(&c->timer, client_timer_cb, METRICS_CLIENT_SEC, 0);
	c->timer.data = c;
	ev_idle_init(&c->collect, collect_cb);
	c->collect.data = c;
	TAILQ_INSERT_TAIL(&mx->clients, c, link);
	mx->nclients++;
	ev_io_start(mx->loop, &c->io);
	ev_timer_start(mx->loop, &c->timer);
	return c;
}

/* Full: the oldest client still sending its request makes room. False
 * when every one is being answered (accept waits for one to finish). */
static bool
make_room(struct metrics *mx)
{
	struct metrics_client *c;

	if (mx->nclients < METRICS_CLIENTS)
		return true;
	TAILQ_FOREACH(c, &mx->clients, link)
		if (!c->answering) {
			client_free(c);
			return true;
		}
	return false;
}

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct metrics *mx = io->data;
	int fd;

	(void)revents;
	if (!make_room(mx)) {
		ev_io_stop(loop, io);	/* client_free starts it again */
		return;
	}
	fd = accept4(io->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd == -1) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* It stays readable: pause, or the loop spins. */
			log_warn("metrics: accept (paused for %.0fs)",
			    METRICS_PAUSE_SEC);
			ev_io_stop(loop, io);
			ev_timer_set(&mx->pause, METRICS_PAUSE_SEC, 0);
			ev_timer_start(loop, &mx->pause);
		} else if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("metrics: accept");
		return;
	}
	client_add(mx, fd);
}

static void
accept_resume(struct metrics *mx)
{
	if (mx->l.fd != -1 && !ev_is_active(&mx->io) &&
	    !ev_is_active(&mx->pause) && mx->nclients < METRICS_CLIENTS)
		ev_io_start(mx->loop, &mx->io);
}

static void
pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	accept_resume(t->data);
}

/* ---- across an upgrade's exec ---- */

size_t
metrics_pending(const struct metrics *mx, struct metrics_pending **out)
{
	const struct metrics_client *c;
	size_t n = 0;

	*out = xcalloc(mx->nclients ? mx->nclients : 1, sizeof(**out));
	TAILQ_FOREACH(c, &mx->clients, link) {
		/* Answered in part: cut by the exec. */
		if (c->sent > 0 || (c->inlen && memchr(c->in, '\0', c->inlen)))
			continue;
		(*out)[n].fd = c->io.fd;
		(*out)[n].in = xprintf("%.*s", (int)c->inlen, c->in ? c->in : "");
		n++;
	}
	return n;
}

void
metrics_adopt_client(struct metrics *mx, int fd, const char *in)
{
	struct metrics_client *c;
	size_t len = strlen(in);

	if (mx->l.fd == -1 || len > METRICS_HEAD_MAX) {
		close(fd);
		return;
	}
	make_room(mx);
	c = client_add(mx, fd);
	c->in = xmalloc(METRICS_HEAD_MAX);
	memcpy(c->in, in, len);
	c->inlen = len;
	/* Its request may be whole already: looked at once the loop runs. */
	ev_feed_event(mx->loop, &c->io, EV_READ);
}

/* ---- the endpoint ---- */

int
metrics_open(struct listener *l, const struct address *a, char *err,
    size_t len)
{
	/* Non-blocking and close-on-exec, as listen_open makes sockets; a
	 * UNIX socket gets fugue's umask. */
	return listen_open(l, a, METRICS_BACKLOG, -1, (uid_t)-1, (gid_t)-1,
	    err, len);
}

void
metrics_start(struct metrics *mx, struct ev_loop *loop,
    metrics_page_fn page, void *arg)
{
	mx->loop = loop;
	mx->page = page;
	mx->arg = arg;
	mx->nclients = 0;
	TAILQ_INIT(&mx->clients);
	ev_io_init(&mx->io, accept_cb, mx->l.fd, EV_READ);
	mx->io.data = mx;
	ev_init(&mx->pause, pause_cb);
	mx->pause.data = mx;
	ev_idle_init(&mx->refresh, refresh_cb);
	mx->refresh.data = mx;
	/* libev runs only the highest priority's idle watchers: a scrape
	 * collecting goes first. */
	ev_set_priority(&mx->refresh, EV_MINPRI);
	if (mx->l.fd != -1)
		ev_io_start(loop, &mx->io);
}

void
metrics_close(struct metrics *mx, bool unlink_file)
{
	if (mx->loop) {
		while (!TAILQ_EMPTY(&mx->clients))
			client_free(TAILQ_FIRST(&mx->clients));
		ev_io_stop(mx->loop, &mx->io);
		ev_timer_stop(mx->loop, &mx->pause);
		ev_idle_stop(mx->loop, &mx->refresh);
	}
	proccache_free(&mx->procs);
	if (mx->l.fd != -1)
		listen_close(&mx->l, unlink_file);
	mx->l.fd = -1;
}
