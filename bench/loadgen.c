/*
 * bench/loadgen.c - the HTTP load client of fugue's benchmarks.
 *
 * One thread, epoll, a fixed set of client connections to one address:
 * --ka N keep-alive clients (HTTP/1.1, the connection reused while the server
 * keeps it) and --new N clients that open a new connection for every request
 * ("Connection: close"). Every request is recorded: its start (CLOCK_MONOTONIC
 * seconds, the clock of Python's time.monotonic()), its latency and its
 * outcome:
 *   ok       200 with the whole body
 *   status   any other status
 *   refused  connect() refused (nobody listening)
 *   connerr  another connect() error (ports exhausted, ...)
 *   reset    connection reset
 *   eof      the server closed before the whole response
 *   timeout  no whole response within --timeout-ms
 * A keep-alive client whose reused connection is closed or reset by the
 * server before any byte of the response retries the (idempotent) GET once on
 * a fresh connection, as browsers and HTTP libraries do; only the retry's
 * outcome counts, and the record says it was retried. Latency runs from the
 * first attempt's start (connect() for a new connection) to the last byte.
 *
 * usage: loadgen --addr HOST:PORT [--path /] [--ka N] [--new N]
 *                [--rate R] [--duration S] [--max-requests M]
 *                [--timeout-ms T] [--log FILE]
 *   --rate R: R requests/s in total, spread evenly over the clients
 *   (0: each client sends its next request as soon as the last one ended).
 *   It stops after S seconds, or M requests, or at TERM/INT, lets the
 *   requests in flight end (up to T ms), prints a one-line JSON summary on
 *   stdout (counts by outcome; p50, p90, p99 and max latency of the ok
 *   requests) and exits 0. An idle keep-alive connection that the server
 *   closes is dropped at once; the next request opens a new one.
 * Log lines: "start_s latency_us k|n outcome status retried".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

enum { IDLE, CONNECTING, WRITING, READING };
enum { O_OK, O_STATUS, O_REFUSED, O_CONNERR, O_RESET, O_EOF, O_TIMEOUT, O_N };
static const char *const onames[O_N] = { "ok", "status", "refused",
	"connerr", "reset", "eof", "timeout" };

struct conn {
	int	fd, ka, state, fresh, retried, in_req;
	double	next, start, deadline;
	size_t	wpos, len;
	char	buf[16384];
};

static struct sockaddr_in sa = { .sin_family = AF_INET };
static char req_ka[512], req_close[512];
static size_t req_ka_len, req_close_len;
static int epfd, timeout_ms = 5000;
static double interval;
static FILE *logf;
static long long counts[O_N], nretried, nstarted, ndone;
static long long max_requests = -1;
static volatile sig_atomic_t stop_flag;
static unsigned *lats;			/* latencies of the ok requests, us */
static size_t nlats, caplats;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_u(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

static unsigned pct(double p)
{
	size_t i;

	if (!nlats)
		return 0;
	i = (size_t)(p / 100.0 * (double)nlats + 0.999999);
	return lats[(i ? i : 1) - 1 < nlats ? (i ? i : 1) - 1 : nlats - 1];
}

static void on_signal(int s)
{
	(void)s;
	stop_flag = 1;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
}

static void record(struct conn *c, int outcome, int status)
{
	double t = now();

	counts[outcome]++;
	ndone++;
	if (outcome == O_OK) {
		if (nlats == caplats) {
			size_t nc = caplats ? caplats * 2 : 65536;
			unsigned *nl = realloc(lats, nc * sizeof *lats);

			if (nl) {
				lats = nl;
				caplats = nc;
			}
		}
		if (nlats < caplats)
			lats[nlats++] = (unsigned)((t - c->start) * 1e6);
	}
	if (c->retried)
		nretried++;
	if (logf)
		fprintf(logf, "%.6f %lld %c %s %d %d\n", c->start,
		    (long long)((t - c->start) * 1e6), c->ka ? 'k' : 'n',
		    onames[outcome], status, c->retried);
	c->in_req = 0;
	c->state = IDLE;
	c->len = 0;
	if (!c->ka || outcome != O_OK)
		conn_close(c);
	if (interval > 0) {
		c->next += interval;
		if (c->next < t)
			c->next = t;
	} else {
		c->next = t;
	}
}

static void watch(struct conn *c, unsigned ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e) < 0)
		epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e);
}

static void do_write(struct conn *c);

/* Open a connection and start writing; 0, or an outcome on failure. */
static int open_conn(struct conn *c)
{
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return O_CONNERR;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->fresh = 1;
	c->wpos = 0;
	c->len = 0;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		if (errno == EINPROGRESS) {
			c->state = CONNECTING;
			watch(c, EPOLLOUT);
			return 0;
		}
		return errno == ECONNREFUSED ? O_REFUSED : O_CONNERR;
	}
	c->state = WRITING;
	do_write(c);
	return 0;
}

/* A failure: retry once if allowed, else record it. */
static void fail(struct conn *c, int outcome)
{
	int retry = c->ka && !c->fresh && !c->retried && c->len == 0 &&
	    (outcome == O_EOF || outcome == O_RESET);

	conn_close(c);
	if (retry) {
		int o;

		c->retried = 1;
		if ((o = open_conn(c)) != 0)
			fail(c, o);
		return;
	}
	record(c, outcome, 0);
}

static void start_request(struct conn *c)
{
	int o;

	c->in_req = 1;
	c->retried = 0;
	c->start = now();
	c->deadline = c->start + timeout_ms / 1000.0;
	c->len = 0;
	c->wpos = 0;
	nstarted++;
	if (c->fd < 0) {
		if ((o = open_conn(c)) != 0)
			fail(c, o);
		return;
	}
	c->fresh = 0;
	c->state = WRITING;
	do_write(c);
}

static void do_write(struct conn *c)
{
	const char *r = c->ka ? req_ka : req_close;
	size_t rl = c->ka ? req_ka_len : req_close_len;

	while (c->wpos < rl) {
		ssize_t n = send(c->fd, r + c->wpos, rl - c->wpos, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				watch(c, EPOLLOUT);
				return;
			}
			fail(c, errno == ECONNREFUSED ? (c->fresh ? O_REFUSED :
			    O_RESET) : errno == EPIPE ? O_EOF : O_RESET);
			return;
		}
		c->wpos += (size_t)n;
	}
	c->state = READING;
	watch(c, EPOLLIN);
}

/* Is the response in buf whole? -1: not yet; else its status. */
static int parse(struct conn *c, int eof, int *close_after)
{
	char *hend, *p;
	long clen = -1;
	int status;

	c->buf[c->len] = 0;
	hend = strstr(c->buf, "\r\n\r\n");
	if (!hend)
		return -1;
	if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1)
		return 0;
	*close_after = 0;
	for (p = strstr(c->buf, "\r\n"); p && p < hend; p = strstr(p + 2, "\r\n")) {
		char *l = p + 2;

		if (!strncasecmp(l, "content-length:", 15))
			clen = strtol(l + 15, NULL, 10);
		else if (!strncasecmp(l, "connection:", 11)) {
			char *e = strstr(l, "\r\n"), *cl = strcasestr(l, "close");

			if (cl && e && cl < e)
				*close_after = 1;
		}
	}
	if (clen < 0) {
		*close_after = 1;
		return eof ? status : -1;
	}
	if ((size_t)(hend + 4 - c->buf) + (size_t)clen > c->len)
		return -1;
	return status;
}

static void do_read(struct conn *c)
{
	for (;;) {
		ssize_t n;
		int st, close_after = 0;

		if (c->len >= sizeof c->buf - 1) {
			fail(c, O_STATUS);
			return;
		}
		n = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			fail(c, errno == ECONNREFUSED && c->fresh ? O_REFUSED :
			    O_RESET);
			return;
		}
		if (n == 0) {
			st = c->len ? parse(c, 1, &close_after) : -1;
			if (st < 0) {
				fail(c, O_EOF);
				return;
			}
			conn_close(c);
			record(c, st == 200 ? O_OK : O_STATUS, st);
			return;
		}
		c->len += (size_t)n;
		st = parse(c, 0, &close_after);
		if (st >= 0) {
			if (close_after)
				conn_close(c);
			record(c, st == 200 ? O_OK : O_STATUS, st);
			return;
		}
	}
}

int main(int argc, char **argv)
{
	const char *addr = NULL, *path = "/", *logpath = NULL;
	int nka = 0, nnew = 0, n, i;
	double rate = 0, duration = 10, t0, t_end, drain_end = 0;
	struct conn *cs;
	struct sigaction sact = { .sa_handler = on_signal };

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			goto usage;
		i++;
		if (!strcmp(a, "--addr"))
			addr = v;
		else if (!strcmp(a, "--path"))
			path = v;
		else if (!strcmp(a, "--ka"))
			nka = atoi(v);
		else if (!strcmp(a, "--new"))
			nnew = atoi(v);
		else if (!strcmp(a, "--rate"))
			rate = atof(v);
		else if (!strcmp(a, "--duration"))
			duration = atof(v);
		else if (!strcmp(a, "--max-requests"))
			max_requests = atoll(v);
		else if (!strcmp(a, "--timeout-ms"))
			timeout_ms = atoi(v);
		else if (!strcmp(a, "--log"))
			logpath = v;
		else
			goto usage;
	}
	if (!addr || nka + nnew < 1 || nka < 0 || nnew < 0)
		goto usage;
	{
		char host[64];
		const char *colon = strrchr(addr, ':');

		if (!colon || (size_t)(colon - addr) >= sizeof host)
			goto usage;
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = 0;
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
			goto usage;
		sa.sin_port = htons((unsigned short)atoi(colon + 1));
		req_ka_len = (size_t)snprintf(req_ka, sizeof req_ka,
		    "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr);
		req_close_len = (size_t)snprintf(req_close, sizeof req_close,
		    "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
		    path, addr);
	}
	if (logpath && !(logf = fopen(logpath, "w"))) {
		perror(logpath);
		return 1;
	}
	if (logf)
		setvbuf(logf, NULL, _IOFBF, 1 << 20);
	sigaction(SIGTERM, &sact, NULL);
	sigaction(SIGINT, &sact, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		perror("epoll_create1");
		return 1;
	}
	n = nka + nnew;
	if (!(cs = calloc((size_t)n, sizeof *cs)))
		return 1;
	interval = rate > 0 ? n / rate : 0;
	t0 = now();
	t_end = t0 + duration;
	for (i = 0; i < n; i++) {
		cs[i].fd = -1;
		cs[i].ka = i < nka;
		cs[i].next = t0 + (interval > 0 ? interval * i / n : 0);
	}

	for (;;) {
		struct epoll_event ev[64];
		double t = now(), wake = t + 0.05;
		int stopping = stop_flag || t >= t_end ||
		    (max_requests >= 0 && nstarted >= max_requests);
		int busy = 0, k;

		if (stopping && drain_end == 0)
			drain_end = t + timeout_ms / 1000.0;
		for (i = 0; i < n; i++) {
			struct conn *c = &cs[i];

			if (c->in_req) {
				if (t >= c->deadline) {
					conn_close(c);
					record(c, O_TIMEOUT, 0);
				} else {
					busy++;
					if (c->deadline < wake)
						wake = c->deadline;
				}
			}
			if (!c->in_req && !stopping) {
				if (c->next <= t) {
					if (max_requests >= 0 &&
					    nstarted >= max_requests)
						continue;
					start_request(c);
					if (c->in_req)
						busy++;
				} else if (c->next < wake) {
					wake = c->next;
				}
			}
		}
		if (stopping && (busy == 0 || t >= drain_end))
			break;
		k = epoll_wait(epfd, ev, 64, (int)((wake - now()) * 1000) > 0 ?
		    (int)((wake - now()) * 1000 + 0.999) : 0);
		for (i = 0; i < k; i++) {
			struct conn *c = ev[i].data.ptr;

			if (c->fd < 0)
				continue;
			if (!c->in_req) {
				/* An idle keep-alive connection the server closed
				 * (or wrote to): drop it; the next request opens a
				 * new one. */
				char junk[256];

				if (recv(c->fd, junk, sizeof junk, MSG_DONTWAIT) < 0 &&
				    errno == EAGAIN)
					continue;
				conn_close(c);
				continue;
			}
			if (c->state == CONNECTING) {
				int err = 0;
				socklen_t el = sizeof err;

				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err) {
					fail(c, err == ECONNREFUSED ? O_REFUSED :
					    err == ETIMEDOUT ? O_TIMEOUT : O_CONNERR);
					continue;
				}
				c->state = WRITING;
				do_write(c);
			} else if (c->state == WRITING) {
				do_write(c);
			} else if (c->state == READING) {
				do_read(c);
			}
		}
	}
	for (i = 0; i < n; i++)
		conn_close(&cs[i]);
	if (logf)
		fclose(logf);
	printf("{\"started\": %lld, \"done\": %lld, \"retried\": %lld, "
	    "\"elapsed\": %.3f", nstarted, ndone, nretried, now() - t0);
	for (i = 0; i < O_N; i++)
		printf(", \"%s\": %lld", onames[i], counts[i]);
	qsort(lats, nlats, sizeof *lats, cmp_u);
	printf(", \"p50_us\": %u, \"p90_us\": %u, \"p99_us\": %u, "
	    "\"max_us\": %u", pct(50), pct(90), pct(99), pct(100));
	printf("}\n");
	return 0;
usage:
	fprintf(stderr, "usage: loadgen --addr HOST:PORT [--path P] [--ka N] "
	    "[--new N] [--rate R] [--duration S] [--max-requests M] "
	    "[--timeout-ms T] [--log FILE]\n");
	return 2;
}
