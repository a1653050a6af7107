/*
 * tests/worker.c - the worker of fugue's integration tests: a small HTTP/1.1
 * server that takes its listeners from fugue (fd 3, 4, ..., LISTEN_FDS and
 * LISTEN_PID) and behaves in the ways the tests need.
 *
 * usage: worker MODE [options]
 *   serve                serve HTTP on every inherited listener
 *   crash [--after MS] [--code N] [--signal N]
 *                        serve nothing; after MS ms (default 0) exit with
 *                        code N (default 1), or die of signal N
 *   ignore-term          serve; TERM, INT, QUIT and HUP are ignored
 *   slow-ready MS        wait MS ms before accepting and before READY=1
 *   no-ready             serve, but never send READY=1
 *   print --lines N [--len L] [--stream out|err|both] [--partial]
 *                        write N lines "w<id> <i> xxx..." (L chars before the
 *                        newline, default 80) through fully buffered stdio
 *                        (both: lines alternate between stdout and stderr,
 *                        line-buffered so that each stays whole); --partial
 *                        ends with "w<id> partial" and no newline; then serve
 *   orphan [--sleep MS] [--keep-fds] [--serve]
 *                        fork a child that sleeps MS ms (default 2000; fds 0-2
 *                        on /dev/null, others closed, unless --keep-fds), print
 *                        "orphan <pid>", exit 0 at once (--serve: serve instead)
 *   report               print the /inherit JSON on one stdout line, then serve
 *   notify MSG           send MSG to NOTIFY_SOCKET once, print "<pid> <errno>"
 *                        (0: sent) and exit 0: a process that is not a worker
 *   Serving modes also take --no-watchdog (never send WATCHDOG=1) and
 *   --mem MB (allocate and touch that many MB before READY=1, kept).
 *
 * Endpoints: GET /  -> "worker <FUGUE_WORKER_ID> pid <pid> gen <FUGUE_GENERATION>"
 *   /slow?ms=N (the same after N ms), /stopping (send STOPPING=1: replace
 *   me), /grow?mb=N (allocate and touch N MB, kept), /inherit (JSON of what the process
 *   inherited, read first thing in main: pid ppid pgid sid uid euid gid egid
 *   groups cwd umask, SigBlk SigIgn SigCgt Cap* NoNewPrivs Seccomp as in
 *   /proc/self/status, pdeathsig, nofile [soft, hard], fds [{fd, target,
 *   nonblock, cloexec, sockname (sockets: getsockname's path or HOST:PORT)}],
 *   env {name: value}, sanitizer (true under ASan, whose
 *   own handlers then show in SigCgt)), /exit?code=N (answer, then exit N),
 *   /kill?sig=N (answer, then kill(getpid(), N), default SIGKILL); else 404.
 *   Every response carries X-Worker-Id, X-Worker-Pid and X-Worker-Generation.
 * READY=1 (and WATCHDOG=1 every WATCHDOG_USEC/2) go to NOTIFY_SOCKET if set,
 * or as lines to the pipe FUGUE_READY_FD names (ready = fd).
 * TERM, INT or QUIT drain: stop accepting, finish the requests in flight
 * with "Connection: close", close keep-alive connections that stay idle for
 * 500 ms more (a request already on its way is answered), exit 0.
 * Bad usage or environment: one line on stderr, exit 2.
 *
 * Threads: main waits for signals (blocked everywhere, taken with
 * sigtimedwait) and sends notifications; one acceptor thread per listener
 * (accept, and poll on EAGAIN: the listeners are shared and non-blocking,
 * and another worker may take a connection first; a thread signal
 * interrupts either at drain); one thread per connection.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

extern char **environ;

#define MAX_LISTEN	256
#define MAX_CONNS	4096
#define REQ_BUF		16384
#define MAX_BODY	(1 << 20)
#define IDLE_MS		60000	/* keep-alive connection without a request */
#define REQ_MS		30000	/* a started request, a body, a new connection */
#define GRACE_MS	500	/* keep-alive connection idle at drain */
#define USAGE "usage: worker serve|ignore-term|no-ready|report|slow-ready MS|" \
	"notify MSG|" \
	"crash [--after MS] [--code N] [--signal N]|print --lines N [--len L] " \
	"[--stream out|err|both] [--partial]|orphan [--sleep MS] [--keep-fds] " \
	"[--serve] [--no-watchdog] [--mem MB]"

static const char *wid = "?", *wgen = "?";
static pid_t self_pid;
static int nlisten, lfds[MAX_LISTEN];
static pthread_t acceptors[MAX_LISTEN];
static atomic_int acc_done[MAX_LISTEN];
static atomic_int draining;
static int drain_pipe[2] = { -1, -1 };	/* write end closed at drain */
static pthread_mutex_t conn_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conn_cv;
static pthread_attr_t conn_attr;
static int nconns;
static char *report;			/* the /inherit JSON */
static size_t report_len;
static int notify_fd = -1, notify_failed, ready_pipe = -1;
static struct sockaddr_un notify_sa;
static socklen_t notify_salen;
static long long wd_interval, wd_next;	/* ns on CLOCK_MONOTONIC; 0: none */

/* One line on stderr with a single write, so it never tears. */
static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
	char line[600];
	va_list ap;
	int n = snprintf(line, sizeof line, "worker: ");

	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	if (write(2, line, (size_t)n) < 0) {
		/* nowhere left to complain */
	}
}

#define die(code, ...) do { fflush(stdout); say(__VA_ARGS__); exit(code); } while (0)

static long long parse_num(const char *s, long long min, long long max,
    const char *what)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		die(2, "%s: expected an integer in %lld..%lld, got \"%s\"", what,
		    min, max, s);
	return v;
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(long long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- the /inherit report: a growing string ---- */

struct sb { char *p; size_t len, cap; };

static void sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(p = realloc(b->p, cap)))
			die(2, "out of memory");
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void __attribute__((format(printf, 2, 3)))
sb_printf(struct sb *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	sb_add(b, tmp, n < (int)sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string; bytes >= 0x80 pass through (UTF-8 stays UTF-8). */
static void sb_str(struct sb *b, const char *s, size_t n)
{
	sb_add(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			sb_printf(b, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			sb_printf(b, "\\u%04x", c);
		else
			sb_add(b, s + i, 1);
	}
	sb_add(b, "\"", 1);
}

/* "Key:\tvalue" of /proc/self/status, as a string or a bare number. */
static void status_field(struct sb *b, const char *st, const char *key,
    int number)
{
	size_t k = strlen(key);
	const char *p;

	for (p = st; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, k) || p[k] != ':')
			continue;
		p += k + 1;
		p += strspn(p, " \t");
		sb_printf(b, ",\"%s\":", key);
		if (number)
			sb_add(b, p, strcspn(p, "\n"));
		else
			sb_str(b, p, strcspn(p, "\n"));
		return;
	}
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* ,"sockname":"..." of a socket fd: the path of a UNIX socket as
 * getsockname() gives it (what servers that match inherited sockets by
 * name see), or "HOST:PORT"; nothing for other fds. */
static void sockname(struct sb *b, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[64];

	memset(&ss, 0, sizeof ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	sb_add(b, ",\"sockname\":", 12);
	if (ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
		size_t off = offsetof(struct sockaddr_un, sun_path);

		sb_str(b, sun->sun_path, len > off ?
		    strnlen(sun->sun_path, len - off) : 0);
	} else if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		sb_printf(b, "\"%s:%u\"", host, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		sb_printf(b, "\"[%s]:%u\"", host, ntohs(in6->sin6_port));
	} else
		sb_add(b, "null", 4);
}

/* Record what the process inherited, before it changes anything. */
static void capture(void)
{
	static const char *const keys[] = { "SigBlk", "SigIgn", "SigCgt",
	    "ShdPnd", "SigPnd", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" };
	char st[8192], path[64], target[PATH_MAX], cwd[PATH_MAX];
	int fds[1024], nfds = 0, fd, sig = -1, ng;
	size_t stlen = 0;
	struct sb b = { 0 };
	struct rlimit rl;
	struct dirent *e;
	const char *um;
	ssize_t n;
	DIR *d;

	/* status first: its fd is closed again before the fds are listed */
	if ((fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)) >= 0) {
		while (stlen < sizeof st - 1 &&
		    (n = read(fd, st + stlen, sizeof st - 1 - stlen)) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				break;
			stlen += (size_t)n;
		}
		close(fd);
	}
	st[stlen] = 0;
	if ((d = opendir("/proc/self/fd"))) {
		while ((e = readdir(d)) && nfds < 1024)
			if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
				fds[nfds++] = atoi(e->d_name);
		closedir(d);
	}
	qsort(fds, (size_t)nfds, sizeof *fds, cmp_int);

	sb_printf(&b, "{\"pid\":%d,\"ppid\":%d,\"pgid\":%d,\"sid\":%d",
	    (int)getpid(), (int)getppid(), (int)getpgid(0), (int)getsid(0));
	sb_printf(&b, ",\"uid\":%u,\"euid\":%u,\"gid\":%u,\"egid\":%u,\"groups\":[",
	    getuid(), geteuid(), getgid(), getegid());
	if ((ng = getgroups(0, NULL)) > 0) {
		gid_t *g = calloc((size_t)ng, sizeof *g);

		if (g && (ng = getgroups(ng, g)) > 0)
			for (int i = 0; i < ng; i++)
				sb_printf(&b, "%s%u", i ? "," : "", g[i]);
		free(g);
	}
	sb_add(&b, "],\"cwd\":", 8);
	if (getcwd(cwd, sizeof cwd))
		sb_str(&b, cwd, strlen(cwd));
	else
		sb_add(&b, "null", 4);
	if ((um = strstr(st, "\nUmask:")))	/* Linux >= 4.7 */
		sb_printf(&b, ",\"umask\":\"%.4s\"", um + 7 + strspn(um + 7, " \t"));
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
		status_field(&b, st, keys[i], 0);
	status_field(&b, st, "NoNewPrivs", 1);
	status_field(&b, st, "Seccomp", 1);
	prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
	sb_printf(&b, ",\"pdeathsig\":%d", sig);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		sb_printf(&b, ",\"nofile\":[%lld,%lld]", (long long)rl.rlim_cur,
		    (long long)rl.rlim_max);
	sb_add(&b, ",\"fds\":[", 8);
	for (int i = 0; i < nfds; i++) {
		int fl = fcntl(fds[i], F_GETFL), fdfl = fcntl(fds[i], F_GETFD);

		snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
		n = readlink(path, target, sizeof target);
		sb_printf(&b, "%s{\"fd\":%d,\"target\":", i ? "," : "", fds[i]);
		if (n >= 0)
			sb_str(&b, target, (size_t)n);
		else
			sb_add(&b, "null", 4);
		sb_printf(&b, ",\"nonblock\":%s,\"cloexec\":%s",
		    fl >= 0 && (fl & O_NONBLOCK) ? "true" : "false",
		    fdfl >= 0 && (fdfl & FD_CLOEXEC) ? "true" : "false");
		sockname(&b, fds[i]);
		sb_add(&b, "}", 1);
	}
	sb_add(&b, "],\"env\":{", 9);
	for (char **ep = environ; *ep; ep++) {
		const char *eq = strchr(*ep, '=');

		if (ep != environ)
			sb_add(&b, ",", 1);
		sb_str(&b, *ep, eq ? (size_t)(eq - *ep) : strlen(*ep));
		sb_add(&b, ":", 1);
		if (eq)
			sb_str(&b, eq + 1, strlen(eq + 1));
		else
			sb_add(&b, "null", 4);
	}
	sb_printf(&b, "},\"sanitizer\":%s}", SANITIZED ? "true" : "false");
	report = b.p;
	report_len = b.len;
}

/* ---- sd_notify ---- */

static void setup_notify(int watchdog)
{
	const char *ns = getenv("NOTIFY_SOCKET");
	const char *wu = getenv("WATCHDOG_USEC"), *wp = getenv("WATCHDOG_PID");
	const char *rf = getenv("FUGUE_READY_FD");
	size_t n;

	if (rf && *rf)		/* ready = fd: the same lines on a pipe */
		ready_pipe = (int)parse_num(rf, 3, INT_MAX, "FUGUE_READY_FD");
	else if (!ns || !*ns)
		return;
	if (watchdog && wu && *wu && (!wp || !*wp ||
	    parse_num(wp, 1, INT_MAX, "WATCHDOG_PID") == self_pid)) {
		wd_interval = parse_num(wu, 1, LLONG_MAX / 1000,
		    "WATCHDOG_USEC") * 1000 / 2;
		wd_next = now_ns() + wd_interval;
	}
	if (ready_pipe >= 0)
		return;
	n = strlen(ns);
	if ((ns[0] != '/' && ns[0] != '@') || n >= sizeof notify_sa.sun_path)
		die(2, "NOTIFY_SOCKET: not a path or @name that fits: \"%s\"", ns);
	notify_sa.sun_family = AF_UNIX;
	memcpy(notify_sa.sun_path, ns, n);
	if (ns[0] == '@')
		notify_sa.sun_path[0] = 0;	/* abstract: exact length */
	notify_salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	if ((notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		die(1, "socket(AF_UNIX): %s", strerror(errno));
}

static void notify(const char *msg)
{
	if (ready_pipe >= 0) {
		char line[64];
		int n = snprintf(line, sizeof line, "%s\n", msg);

		while (write(ready_pipe, line, (size_t)n) < 0 && errno == EINTR)
			;
		return;
	}
	if (notify_fd < 0)
		return;
	while (sendto(notify_fd, msg, strlen(msg), MSG_NOSIGNAL,
	    (struct sockaddr *)&notify_sa, notify_salen) < 0) {
		if (errno == EINTR)
			continue;
		if (!notify_failed++)
			say("sending %s to NOTIFY_SOCKET: %s", msg, strerror(errno));
		break;
	}
}

/* Send WATCHDOG=1 when due; returns ns until the next one (or `dflt`). */
static long long watchdog_tick(long long dflt)
{
	long long now = now_ns();

	if (!wd_interval)
		return dflt;
	if (now >= wd_next) {
		notify("WATCHDOG=1");
		wd_next = now + wd_interval;
	}
	return wd_next - now < dflt || dflt < 0 ? wd_next - now : dflt;
}

/* Wait up to ms (< 0: for ever) for a signal of set; 0 on timeout. */
static int wait_signal(const sigset_t *set, long long ms)
{
	long long deadline = ms < 0 ? -1 : now_ns() + ms * 1000000;

	for (;;) {
		long long left = deadline < 0 ? -1 : deadline - now_ns();
		struct timespec ts;
		int sig;

		left = watchdog_tick(left);
		if (deadline >= 0 && now_ns() >= deadline)
			return 0;
		ts.tv_sec = left / 1000000000;
		ts.tv_nsec = left % 1000000000;
		sig = sigtimedwait(set, NULL, left < 0 ? NULL : &ts);
		if (sig > 0)
			return sig;
	}
}

/* ---- HTTP ---- */

struct req {
	char	method[16], path[1024], query[1024];
	int	keep;
	long long clen;
};

static int send_all(int fd, const char *p, size_t n, int more)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL | (more ? MSG_MORE : 0));

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int respond(int fd, int code, const char *ctype, const char *body,
    size_t blen, int keep, int head)
{
	const char *why = code == 200 ? "OK" : code == 400 ? "Bad Request" :
	    code == 404 ? "Not Found" : code == 413 ? "Payload Too Large" :
	    code == 431 ? "Request Header Fields Too Large" :
	    code == 501 ? "Not Implemented" : "Service Unavailable";
	char h[512];
	int n = snprintf(h, sizeof h, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: %s\r\nX-Worker-Id: %.64s\r\n"
	    "X-Worker-Pid: %d\r\nX-Worker-Generation: %.64s\r\n\r\n", code, why,
	    ctype, blen, keep ? "keep-alive" : "close", wid, (int)self_pid, wgen);

	if (send_all(fd, h, (size_t)n, !head && blen) < 0)
		return -1;
	return head || !blen ? 0 : send_all(fd, body, blen, 0);
}

static int error_reply(int fd, int code)
{
	return respond(fd, code, "text/plain", "error\n", 6, 0, 0);
}

/* Index just past the blank line that ends the header block, or 0. */
static size_t header_end(const char *b, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (b[i] != '\n')
			continue;
		if (b[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && b[i + 1] == '\r' && b[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Parse the header block h[0..n) in place: 0, or an HTTP error status. */
static int parse_req(char *h, size_t n, struct req *r)
{
	char *save, *line, *sp1, *sp2, *q;

	memset(r, 0, sizeof *r);
	h[n - 1] = 0;
	if (!(line = strtok_r(h, "\n", &save)))
		return 400;
	line[strcspn(line, "\r")] = 0;
	if (!(sp1 = strchr(line, ' ')) || !(sp2 = strchr(sp1 + 1, ' ')))
		return 400;
	*sp1 = *sp2 = 0;
	if (!strcmp(sp2 + 1, "HTTP/1.1"))
		r->keep = 1;
	else if (strcmp(sp2 + 1, "HTTP/1.0"))
		return 400;
	if ((q = strchr(sp1 + 1, '?')))
		*q++ = 0;
	if (strlen(line) >= sizeof r->method || strlen(sp1 + 1) >= sizeof r->path ||
	    (q && strlen(q) >= sizeof r->query))
		return 431;
	strcpy(r->method, line);
	strcpy(r->path, sp1 + 1);
	strcpy(r->query, q ? q : "");
	while ((line = strtok_r(NULL, "\n", &save))) {
		char *v, *end;

		line[strcspn(line, "\r")] = 0;
		if (!*line)
			continue;
		if (!(v = strchr(line, ':')))
			return 400;
		*v++ = 0;
		v += strspn(v, " \t");
		if (!strcasecmp(line, "Connection")) {
			if (strcasestr(v, "close"))
				r->keep = 0;
			else if (strcasestr(v, "keep-alive"))
				r->keep = 1;
		} else if (!strcasecmp(line, "Content-Length")) {
			errno = 0;
			r->clen = strtoll(v, &end, 10);
			if (errno || end == v || r->clen < 0 ||
			    end[strspn(end, " \t")])
				return 400;
		} else if (!strcasecmp(line, "Transfer-Encoding"))
			return 501;
	}
	return 0;
}

/* Allocate and touch mb MB, kept to the end: the process grows. Each block
 * stays reachable from the list (no leak for LeakSanitizer at exit); the
 * empty asm lets the pointer escape, so that the compiler keeps the
 * stores. */
struct block { struct block *next; };
static struct block *grown;

static int grow(long long mb)
{
	struct block *b = malloc((size_t)mb << 20);

	if (b == NULL)
		return 0;
	memset(b, 1, (size_t)mb << 20);
	__asm__ volatile ("" : : "r"(b) : "memory");
	b->next = grown;
	grown = b;
	return 1;
}

static long long qparam(const char *q, const char *name, long long dflt,
    long long min, long long max)
{
	size_t k = strlen(name);

	for (const char *p = q; p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
		char *end;
		long long v;

		if (strncmp(p, name, k) || p[k] != '=')
			continue;
		errno = 0;
		v = strtoll(p + k + 1, &end, 10);
		return errno || end == p + k + 1 || v < min || v > max ? dflt : v;
	}
	return dflt;
}

/* Wait for input on fd (or, when watch_drain, for the drain); 1 readable,
 * 0 drain or timeout or error. */
static int wait_input(int fd, int timeout_ms, int watch_drain)
{
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
	    { .fd = drain_pipe[0], .events = POLLIN } };
	int r;

	while ((r = poll(p, watch_drain ? 2 : 1, timeout_ms)) < 0 && errno == EINTR)
		;
	return r > 0 && p[0].revents;
}

/* Close after a response: our FIN first, then read what the client still
 * sends (up to 500 ms), so that closing never resets the answer in flight. */
static void lingering_close(int fd)
{
	long long end = now_ns() + 500000000LL;
	size_t total = 0;
	char tmp[4096];
	ssize_t n;

	shutdown(fd, SHUT_WR);
	while (total < 65536 && wait_input(fd, (int)((end - now_ns()) / 1000000 + 1), 0)
	    && now_ns() < end) {
		if ((n = recv(fd, tmp, sizeof tmp, 0)) < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += (size_t)n;
	}
	close(fd);
}

static void conn_done(void)
{
	pthread_mutex_lock(&conn_mu);
	if (--nconns == 0)
		pthread_cond_broadcast(&conn_cv);
	pthread_mutex_unlock(&conn_mu);
}

static void *conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg, served = 0, linger = 1;
	struct timeval tv = { 30, 0 };
	char buf[REQ_BUF], body[256];
	size_t len = 0;
	struct req rq;

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	for (;;) {
		size_t hend, skip, used, take;
		long long left, arg_n = 0;
		int code, keep, action = 0, head;
		const char *b = body, *ctype = "text/plain";
		ssize_t n;
		int blen;

		while ((hend = header_end(buf, len)) == 0) {
			int idle = served && len == 0, d = atomic_load(&draining);
			int ok;

			if (len == sizeof buf) {
				error_reply(fd, 431);
				goto out;
			}
			/* idle at drain: a last request may be on its way, answer
			 * it with "Connection: close" rather than close under it */
			ok = wait_input(fd, !idle ? REQ_MS : d ? GRACE_MS : IDLE_MS,
			    idle && !d);
			if (!ok && idle && !d && atomic_load(&draining))
				ok = wait_input(fd, GRACE_MS, 0);
			if (!ok) {
				linger = 0;	/* timed out, or idle at drain */
				goto out;
			}
			if ((n = recv(fd, buf + len, sizeof buf - len, 0)) < 0 &&
			    errno == EINTR)
				continue;
			if (n <= 0) {
				linger = 0;
				goto out;
			}
			len += (size_t)n;
			/* blank lines before a request line are allowed */
			for (skip = 0; skip < len && (buf[skip] == '\r' ||
			    buf[skip] == '\n'); skip++)
				;
			memmove(buf, buf + skip, len - skip);
			len -= skip;
		}
		if ((code = parse_req(buf, hend, &rq)) != 0) {
			error_reply(fd, code);
			goto out;
		}
		if (rq.clen > MAX_BODY) {
			error_reply(fd, 413);
			goto out;
		}
		/* consume the header block, then discard the body */
		take = len - hend < (size_t)rq.clen ? len - hend : (size_t)rq.clen;
		used = hend + take;
		memmove(buf, buf + used, len - used);
		len -= used;
		left = rq.clen - (long long)take;
		while (left > 0) {
			if (!wait_input(fd, REQ_MS, 0))
				goto out;
			if ((n = recv(fd, buf, left < REQ_BUF ? (size_t)left : REQ_BUF,
			    0)) < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				goto out;
			left -= n;
		}
		served++;
		head = !strcmp(rq.method, "HEAD");
		code = 200;
		if (!strcmp(rq.path, "/") || !strcmp(rq.path, "/slow")) {
			if (rq.path[1])
				sleep_ms(qparam(rq.query, "ms", 0, 0, 3600000));
			blen = snprintf(body, sizeof body, "worker %.64s pid %d gen %.64s\n",
			    wid, (int)self_pid, wgen);
		} else if (!strcmp(rq.path, "/inherit")) {
			b = report;
			blen = (int)report_len;
			ctype = "application/json";
		} else if (!strcmp(rq.path, "/stopping")) {
			notify("STOPPING=1");	/* "replace me" */
			blen = snprintf(body, sizeof body, "asked to be replaced\n");
		} else if (!strcmp(rq.path, "/grow")) {
			long long mb = qparam(rq.query, "mb", 1, 1, 4096);

			blen = snprintf(body, sizeof body, "grew by %lld MB%s\n",
			    mb, grow(mb) ? "" : " (failed)");
		} else if (!strcmp(rq.path, "/exit")) {
			action = 1;
			arg_n = qparam(rq.query, "code", 0, 0, 255);
			blen = snprintf(body, sizeof body, "exiting with code %lld\n", arg_n);
		} else if (!strcmp(rq.path, "/kill")) {
			action = 2;
			arg_n = qparam(rq.query, "sig", SIGKILL, 1, SIGRTMAX);
			blen = snprintf(body, sizeof body, "killing myself with signal %lld\n",
			    arg_n);
		} else {
			code = 404;
			blen = snprintf(body, sizeof body, "not found\n");
		}
		keep = rq.keep && !action && !atomic_load(&draining);
		if (respond(fd, code, ctype, b, (size_t)blen, keep, head) < 0) {
			linger = 0;
			goto out;
		}
		if (action) {
			shutdown(fd, SHUT_WR);	/* the answer leaves before we go */
			fflush(NULL);
			if (action == 1)
				_exit((int)arg_n);
			kill(self_pid, (int)arg_n);
		}
		if (!keep)
			goto out;
	}
out:
	if (linger)
		lingering_close(fd);
	else
		close(fd);
	conn_done();
	return NULL;
}

static void start_conn(int fd)
{
	pthread_t t;
	int err;

	pthread_mutex_lock(&conn_mu);
	if (nconns >= MAX_CONNS) {
		pthread_mutex_unlock(&conn_mu);
		error_reply(fd, 503);
		close(fd);
		return;
	}
	nconns++;
	pthread_mutex_unlock(&conn_mu);
	if ((err = pthread_create(&t, &conn_attr, conn_main, (void *)(intptr_t)fd))) {
		say("pthread_create: %s", strerror(err));
		error_reply(fd, 503);
		close(fd);
		conn_done();
	}
}

static void on_wake(int sig)
{
	(void)sig;	/* only there to interrupt accept() with EINTR */
}

static void *acceptor(void *arg)
{
	int i = (int)(intptr_t)arg, lfd = lfds[i], fd;
	sigset_t wake;

	sigemptyset(&wake);
	sigaddset(&wake, SIGRTMIN + 1);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	while (!atomic_load(&draining)) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
			start_conn(fd);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			/* another worker took it first */
			struct pollfd p = { .fd = lfd, .events = POLLIN };

			poll(&p, 1, -1);	/* EINTR at drain */
		} else if (errno == EMFILE || errno == ENFILE ||
		    errno == ENOBUFS || errno == ENOMEM) {
			say("accept on fd %d: %s", lfd, strerror(errno));
			poll(NULL, 0, 100);
		} else if (errno != EINTR && errno != ECONNABORTED &&
		    errno != EPROTO && errno != EPERM) {
			die(1, "accept on fd %d: %s", lfd, strerror(errno));
		}
	}
	atomic_store(&acc_done[i], 1);
	return NULL;
}

static void setup_listeners(void)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");

	if (!fds || !pid)
		die(2, "LISTEN_FDS and LISTEN_PID are not set: run me under fugue");
	if (parse_num(pid, 1, INT_MAX, "LISTEN_PID") != self_pid)
		die(2, "LISTEN_PID=%s is not my pid %d: the sockets are not for me",
		    pid, (int)self_pid);
	nlisten = (int)parse_num(fds, 0, MAX_LISTEN, "LISTEN_FDS");
	for (int i = 0; i < nlisten; i++) {
		int acc = 0;
		socklen_t l = sizeof acc;

		lfds[i] = 3 + i;
		if (getsockopt(lfds[i], SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) < 0)
			die(2, "fd %d: %s", lfds[i], strerror(errno));
		if (!acc)
			die(2, "fd %d is not a listening socket", lfds[i]);
	}
}

static void __attribute__((noreturn)) serve(int ignore_term,
    long long ready_ms, int send_ready)
{
	struct sigaction sa = { .sa_handler = on_wake };
	pthread_condattr_t ca;
	sigset_t stop, block;

	sigemptyset(&stop);
	if (ignore_term) {
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		signal(SIGQUIT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
	} else {
		sigaddset(&stop, SIGTERM);
		sigaddset(&stop, SIGINT);
		sigaddset(&stop, SIGQUIT);
	}
	block = stop;
	sigaddset(&block, SIGRTMIN + 1);
	pthread_sigmask(SIG_BLOCK, &block, NULL);	/* every thread inherits it */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGRTMIN + 1, &sa, NULL);		/* no SA_RESTART */
	if (pipe2(drain_pipe, O_CLOEXEC) < 0)
		die(1, "pipe: %s", strerror(errno));
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&conn_cv, &ca);
	pthread_attr_init(&conn_attr);
	pthread_attr_setdetachstate(&conn_attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&conn_attr, 512 * 1024);

	if (ready_ms > 0 && wait_signal(&stop, ready_ms) > 0)
		exit(0);
	for (int i = 0; i < nlisten; i++) {
		int err = pthread_create(&acceptors[i], NULL, acceptor,
		    (void *)(intptr_t)i);

		if (err)
			die(1, "pthread_create: %s", strerror(err));
	}
	if (send_ready)
		notify("READY=1");
	while (wait_signal(&stop, -1) == 0)
		;

	/* drain: wake idle connections, stop the acceptors, close listeners */
	atomic_store(&draining, 1);
	close(drain_pipe[1]);
	for (int i = 0; i < nlisten; i++) {
		for (int tries = 0; !atomic_load(&acc_done[i]) && tries < 2000; tries++) {
			pthread_kill(acceptors[i], SIGRTMIN + 1);
			sleep_ms(5);
		}
		if (atomic_load(&acc_done[i]))
			pthread_join(acceptors[i], NULL);
		close(lfds[i]);
	}
	pthread_mutex_lock(&conn_mu);
	while (nconns > 0) {
		long long t = now_ns() + watchdog_tick(3600000000000LL);
		struct timespec ts = { t / 1000000000, t % 1000000000 };

		pthread_cond_timedwait(&conn_cv, &conn_mu, &ts);
	}
	pthread_mutex_unlock(&conn_mu);
	fflush(NULL);
	exit(0);
}

static void print_lines(long long lines, long long len, const char *stream,
    int partial)
{
	int both = !strcmp(stream, "both");
	FILE *f = !strcmp(stream, "err") ? stderr : stdout;
	size_t cap = (size_t)len + 160;
	char *line = malloc(cap);

	if (!line)
		die(2, "out of memory");
	if (both) {
		setvbuf(stdout, NULL, _IOLBF, BUFSIZ);
		setvbuf(stderr, NULL, _IOLBF, BUFSIZ);
	} else
		setvbuf(f, NULL, _IOFBF, BUFSIZ);
	for (long long i = 0; i < lines; i++) {
		int n = snprintf(line, cap, "w%.64s %lld ", wid, i);

		if (n < len) {
			memset(line + n, 'x', (size_t)(len - n));
			n = (int)len;
		}
		line[n++] = '\n';
		fwrite(line, 1, (size_t)n, both && (i & 1) ? stderr : f);
	}
	if (partial)
		fprintf(f, "w%.64s partial", wid);
	fflush(stdout);
	fflush(stderr);
	free(line);
}

int main(int argc, char **argv)
{
	enum { SERVE, CRASH, IGNORE, SLOW, NOREADY, PRINT, ORPHAN, REPORT,
	    NOTIFY } mode;
	static const char *const names[] = { "serve", "crash", "ignore-term",
	    "slow-ready", "no-ready", "print", "orphan", "report", "notify" };
	long long after = 0, code = 1, sig = 0, lines = -1, len = 80;
	long long sleep_for = 2000, ready_ms = -1, mem_mb = 0;
	int partial = 0, keep_fds = 0, no_wd = 0, orphan_serves = 0;
	const char *stream = "out", *msg = NULL;
	int i;

	capture();		/* first: before anything changes */
	self_pid = getpid();
	signal(SIGPIPE, SIG_IGN);
	if (getenv("FUGUE_WORKER_ID"))
		wid = getenv("FUGUE_WORKER_ID");
	if (getenv("FUGUE_GENERATION"))
		wgen = getenv("FUGUE_GENERATION");
	if (argc < 2)
		die(2, "%s", USAGE);
	for (i = 0; i < (int)(sizeof names / sizeof *names); i++)
		if (!strcmp(argv[1], names[i]))
			break;
	if (i == (int)(sizeof names / sizeof *names))
		die(2, "unknown mode \"%s\"; %s", argv[1], USAGE);
	mode = i;
	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *v = argv[i + 1];	/* argv[argc] is NULL */

		if (mode == PRINT && !strcmp(a, "--partial"))
			partial = 1;
		else if (mode == ORPHAN && !strcmp(a, "--keep-fds"))
			keep_fds = 1;
		else if (mode == ORPHAN && !strcmp(a, "--serve"))
			orphan_serves = 1;
		else if (mode != CRASH && !strcmp(a, "--no-watchdog"))
			no_wd = 1;
		else if (mode == SLOW && ready_ms < 0 && a[0] != '-')
			ready_ms = parse_num(a, 0, 86400000, "slow-ready delay");
		else if (mode == NOTIFY && !msg)
			msg = a;
		else if (a[0] != '-')
			die(2, "%s: unexpected argument \"%s\"; %s", argv[1], a, USAGE);
		else if (!v)
			die(2, "%s: option %s needs a value; %s", argv[1], a, USAGE);
		else if (i++, mode == CRASH && !strcmp(a, "--after"))
			after = parse_num(v, 0, 86400000, a);
		else if (mode == CRASH && !strcmp(a, "--code"))
			code = parse_num(v, 0, 255, a);
		else if (mode == CRASH && !strcmp(a, "--signal"))
			sig = parse_num(v, 1, SIGRTMAX, a);
		else if (mode == PRINT && !strcmp(a, "--lines"))
			lines = parse_num(v, 0, 1000000000, a);
		else if (mode == PRINT && !strcmp(a, "--len"))
			len = parse_num(v, 0, 1 << 20, a);
		else if (mode == PRINT && !strcmp(a, "--stream"))
			stream = v;
		else if (mode == ORPHAN && !strcmp(a, "--sleep"))
			sleep_for = parse_num(v, 0, 86400000, a);
		else if (mode != CRASH && mode != NOTIFY && !strcmp(a, "--mem"))
			mem_mb = parse_num(v, 0, 65536, a);
		else
			die(2, "%s: unexpected option \"%s\"; %s", argv[1], a, USAGE);
	}
	if (mode == SLOW && ready_ms < 0)
		die(2, "slow-ready needs a delay in ms; %s", USAGE);
	if (mode == PRINT && (lines < 0 || (strcmp(stream, "out") &&
	    strcmp(stream, "err") && strcmp(stream, "both"))))
		die(2, "print needs --lines N and --stream out, err or both; %s", USAGE);
	if (mode == NOTIFY && (!msg || !getenv("NOTIFY_SOCKET")))
		die(2, "notify needs a message and NOTIFY_SOCKET; %s", USAGE);

	if (mode == NOTIFY) {
		setup_notify(0);
		printf("%d %d\n", (int)self_pid, sendto(notify_fd, msg,
		    strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&notify_sa,
		    notify_salen) < 0 ? errno : 0);
		exit(0);
	}
	if (mode == CRASH) {
		sleep_ms(after);
		if (sig) {
			sigset_t all;

			signal((int)sig, SIG_DFL);
			sigemptyset(&all);
			sigaddset(&all, (int)sig);
			sigprocmask(SIG_UNBLOCK, &all, NULL);
			kill(self_pid, (int)sig);
		}
		exit((int)code);
	}
	if (mode != ORPHAN || orphan_serves)
		setup_listeners();
	if (mode == ORPHAN) {
		pid_t p;

		fflush(NULL);
		if ((p = fork()) < 0)
			die(1, "fork: %s", strerror(errno));
		if (p == 0) {
			int nul = open("/dev/null", O_RDWR);

			if (!keep_fds && nul >= 0) {
				dup2(nul, 0);
				dup2(nul, 1);
				dup2(nul, 2);
				close_range(3, ~0U, 0);
			}
			sleep_ms(sleep_for);
			_exit(0);
		}
		printf("orphan %d\n", (int)p);
		fflush(stdout);
		if (!orphan_serves)
			exit(0);
	}
	setup_notify(!no_wd);
	if (mode == PRINT)
		print_lines(lines, len, stream, partial);
	if (mode == REPORT) {
		fwrite(report, 1, report_len, stdout);
		fputc('\n', stdout);
		fflush(stdout);
	}
	if (mem_mb > 0 && !grow(mem_mb))
		die(1, "--mem %lld: out of memory", mem_mb);
	serve(mode == IGNORE, mode == SLOW ? ready_ms : 0, mode != NOREADY);
}
