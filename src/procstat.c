/*
 * /proc/PID/stat (CPU time) and /proc/PID/smaps_rollup (PSS), read when a
 * scrape asks, never on a timer; the workers' through the cache described
 * in procstat.h.
 */
#include <sys/resource.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procstat.h"
#include "util.h"

#define STAT_UTIME	14	/* fields of /proc/PID/stat, from 1 */
#define STAT_STIME	15
#define STAT_START	22
#define STAT_TEXT_MAX	2048	/* 52 numbers and a 16-byte name fit */

static long
ticks_per_second(void)
{
	static long hz;

	if (hz <= 0 && (hz = sysconf(_SC_CLK_TCK)) <= 0)
		hz = 100;
	return hz;
}

/* What fd holds from offset 0, NUL-terminated: its length, or -1. */
static ssize_t
pread_all(int fd, char *buf, size_t len)
{
	ssize_t n, got = 0;

	while ((size_t)got < len - 1) {
		n = pread(fd, buf + got, len - 1 - (size_t)got, got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			break;
		got += n;
	}
	buf[got] = '\0';
	return got > 0 ? got : -1;
}

static int
open_proc(pid_t pid, const char *name)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, name);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static ssize_t
slurp(pid_t pid, const char *name, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	if ((fd = open_proc(pid, name)) == -1)
		return -1;
	n = pread_all(fd, buf, len);
	close(fd);
	return n;
}

static int
number(const char **p, const char *end, unsigned long long *v)
{
	const char *s = *p;

	if (s >= end || !isdigit((unsigned char)*s))
		return -1;
	for (*v = 0; s < end && isdigit((unsigned char)*s); s++) {
		if (*v > (~0ULL - 9) / 10)
			return -1;
		*v = *v * 10 + (unsigned)(*s - '0');
	}
	*p = s;
	return 0;
}

int
procstat_parse_stat(const char *buf, size_t n, unsigned long long *ticks,
    unsigned long long *start)
{
	const char *end = buf + n, *p;
	unsigned long long v, sum = 0;
	int field = 3;

	/* "PID (COMM) S ...": COMM may hold spaces and parentheses; it
	 * ends at the last ')'. */
	if ((p = memrchr(buf, ')', n)) == NULL)
		return -1;
	for (p++; p < end && field <= STAT_START; field++) {
		if (*p != ' ')
			return -1;
		p++;
		if (field == STAT_UTIME || field == STAT_STIME ||
		    field == STAT_START) {
			if (number(&p, end, &v) == -1)
				return -1;
			if (field == STAT_START)
				*start = v;
			else
				sum += v;
			continue;
		}
		while (p < end && *p != ' ' && *p != '\n')
			p++;
	}
	if (field <= STAT_START)
		return -1;
	*ticks = sum;
	return 0;
}

int
procstat_parse_pss(const char *buf, size_t n, unsigned long long *kib)
{
	const char *end = buf + n, *p = buf;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;

		if (eol - p > 4 && memcmp(p, "Pss:", 4) == 0) {
			for (p += 4; p < eol && *p == ' '; p++)
				;
			if (number(&p, eol, kib) == -1 || *kib > (~0ULL >> 10))
				return -1;
			return eol - p >= 3 && memcmp(p, " kB", 3) == 0 ?
			    0 : -1;
		}
		p = eol + 1;
	}
	return -1;
}

static bool
read_pss(pid_t pid, unsigned long long *bytes)
{
	char buf[2048];
	unsigned long long kib;
	ssize_t n;

	if ((n = slurp(pid, "smaps_rollup", buf, sizeof(buf))) <= 0 ||
	    procstat_parse_pss(buf, (size_t)n, &kib) == -1)
		return false;
	*bytes = kib * 1024;
	return true;
}

void
procstat_read(pid_t pid, struct procstat *ps)
{
	unsigned long long ticks, start;
	char buf[STAT_TEXT_MAX];
	ssize_t n;

	memset(ps, 0, sizeof(*ps));
	if ((n = slurp(pid, "stat", buf, sizeof(buf))) > 0 &&
	    procstat_parse_stat(buf, (size_t)n, &ticks, &start) == 0) {
		ps->cpu_ok = true;
		ps->cpu_seconds = (double)ticks / (double)ticks_per_second();
	}
	ps->pss_ok = read_pss(pid, &ps->pss_bytes);
}

/* ---- the cache ---- */

static int
by_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = ((const struct procent *)b)->pid;

	return (x > y) - (x < y);
}

struct procent *
proccache_find(struct proccache *c, pid_t pid)
{
	return c->n ? bsearch(&pid, c->v, c->n, sizeof(*c->v), by_pid) : NULL;
}

static void
forget(struct proccache *c, struct procent *e)
{
	if (e->statfd != -1) {
		close(e->statfd);
		e->statfd = -1;
		c->nfds--;
	}
}

void
proccache_sync(struct proccache *c, const pid_t *pids, size_t n)
{
	struct procent *v = xcalloc(n ? n : 1, sizeof(*v)), *old;
	size_t i, j = 0;

	/* Both sorted: one pass. */
	for (i = 0; i < n; i++) {
		while (j < c->n && c->v[j].pid < pids[i])
			forget(c, &c->v[j++]);
		if (j < c->n && c->v[j].pid == pids[i])
			v[i] = c->v[j++];
		else {
			v[i].pid = pids[i];
			v[i].statfd = -1;
		}
	}
	for (; j < c->n; j++)
		forget(c, &c->v[j]);
	old = c->v;
	c->v = v;
	c->n = n;
	free(old);
}

/* Keep a worker's stat file open only while fds are plenty: never more
 * than a quarter of the limit, the rest is the workers' pipes'. */
static bool
may_keep_fd(const struct proccache *c)
{
	struct rlimit rl;

	return getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rl.rlim_cur ==
	    RLIM_INFINITY || c->nfds < rl.rlim_cur / 4);
}

void
procent_read_cpu(struct proccache *c, struct procent *e)
{
	unsigned long long ticks, start;
	char buf[STAT_TEXT_MAX];
	ssize_t n = -1;

	e->st.cpu_ok = false;
	if (e->statfd != -1 && (n = pread_all(e->statfd, buf,
	    sizeof(buf))) <= 0)
		forget(c, e);	/* that process is gone (ESRCH) */
	if (n <= 0 && e->statfd == -1) {
		int fd = open_proc(e->pid, "stat");

		if (fd == -1)
			return;
		n = pread_all(fd, buf, sizeof(buf));
		if (n > 0 && may_keep_fd(c)) {
			e->statfd = fd;
			c->nfds++;
		} else
			close(fd);
	}
	if (n <= 0 || procstat_parse_stat(buf, (size_t)n, &ticks, &start) ==
	    -1)
		return;
	if (e->start != start) {	/* another process than before */
		e->start = start;
		e->st.pss_ok = false;
		e->pss_at = 0;
	}
	e->st.cpu_ok = true;
	e->st.cpu_seconds = (double)ticks / (double)ticks_per_second();
}

void
procent_read_pss(struct procent *e, double now)
{
	e->pss_at = now;
	e->st.pss_ok = read_pss(e->pid, &e->st.pss_bytes);
}

void
proccache_free(struct proccache *c)
{
	for (size_t i = 0; i < c->n; i++)
		forget(c, &c->v[i]);
	free(c->v);
	c->v = NULL;
	c->n = 0;
}
