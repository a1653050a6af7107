/*
 * /proc/PID/stat (CPU time) and /proc/PID/smaps_rollup (PSS), read one
 * process at a time. Nothing here is kept between calls: the figures are
 * read when a scrape asks for them, never on a timer.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procstat.h"

#define STAT_UTIME	14	/* fields of /proc/PID/stat, from 1 */
#define STAT_STIME	15

/* The whole (short) file into buf, NUL-terminated: its length, or -1. */
static ssize_t
slurp(pid_t pid, const char *name, char *buf, size_t len)
{
	char path[64];
	ssize_t n, got = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while ((size_t)got < len - 1) {
		n = read(fd, buf + got, len - 1 - (size_t)got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	buf[got] = '\0';
	return got > 0 ? got : -1;
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
procstat_parse_stat(const char *buf, size_t n, unsigned long long *ticks)
{
	const char *end = buf + n, *p;
	unsigned long long v, sum = 0;
	int field = 3;

	/* "PID (COMM) S ...": COMM may hold spaces and parentheses; it
	 * ends at the last ')'. */
	if ((p = memrchr(buf, ')', n)) == NULL)
		return -1;
	for (p++; p < end && field <= STAT_STIME; field++) {
		if (*p != ' ')
			return -1;
		p++;
		if (field == STAT_UTIME || field == STAT_STIME) {
			if (number(&p, end, &v) == -1)
				return -1;
			sum += v;
			continue;
		}
		while (p < end && *p != ' ' && *p != '\n')
			p++;
	}
	if (field <= STAT_STIME)
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

void
procstat_read(pid_t pid, struct procstat *ps)
{
	static long hz;
	unsigned long long v;
	char buf[2048];
	ssize_t n;

	memset(ps, 0, sizeof(*ps));
	if (hz <= 0 && (hz = sysconf(_SC_CLK_TCK)) <= 0)
		hz = 100;
	if ((n = slurp(pid, "stat", buf, sizeof(buf))) > 0 &&
	    procstat_parse_stat(buf, (size_t)n, &v) == 0) {
		ps->cpu_ok = true;
		ps->cpu_seconds = (double)v / (double)hz;
	}
	if ((n = slurp(pid, "smaps_rollup", buf, sizeof(buf))) > 0 &&
	    procstat_parse_pss(buf, (size_t)n, &v) == 0) {
		ps->pss_ok = true;
		ps->pss_bytes = v * 1024;
	}
}
