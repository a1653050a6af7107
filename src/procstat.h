/*
 * What /proc says of a process, read only when a scrape asks: its CPU time
 * (/proc/PID/stat) and its proportional set size (/proc/PID/smaps_rollup).
 * The workers' figures go through a cache kept between scrapes: each
 * worker's stat file stays open (a pread costs a third of an open), its
 * start time tells a pid reused by another process, and its last PSS is
 * kept with the time it was read, for a scrape that has no time to read
 * them all (smaps_rollup walks the process's page tables).
 */
#ifndef FUGUE_PROCSTAT_H
#define FUGUE_PROCSTAT_H

#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>

struct procstat {
	bool		 cpu_ok;	/* /proc/PID/stat was read */
	bool		 pss_ok;	/* /proc/PID/smaps_rollup was, once */
	double		 cpu_seconds;	/* user + system, the process itself */
	unsigned long long pss_bytes;
};

/* Read both files of pid now; what cannot be read (gone, no smaps_rollup
 * before Linux 4.14) is left out, its _ok false. */
void	procstat_read(pid_t pid, struct procstat *ps);

/* One process of the cache. */
struct procent {
	pid_t		 pid;
	int		 statfd;	/* /proc/PID/stat kept open, -1 none */
	unsigned long long start;	/* its start time (clock ticks after
					 * boot), 0 unknown */
	struct procstat	 st;
	double		 pss_at;	/* when PSS was read (mono_now), 0 never */
};

struct proccache {
	struct procent	*v;		/* sorted by pid */
	size_t		 n;
	size_t		 nfds;		/* statfd open */
};

/* Keep exactly the processes in pids (n, sorted, no duplicates): those
 * kept keep what was read, the others are forgotten (their fd closed). */
void	proccache_sync(struct proccache *, const pid_t *pids, size_t n);
/* The entry of pid, or NULL. */
struct procent *proccache_find(struct proccache *, pid_t pid);
/* Read its CPU time now; a pid that names another process than before
 * loses its PSS. */
void	procent_read_cpu(struct proccache *, struct procent *);
/* Read its PSS now (now: mono_now()). */
void	procent_read_pss(struct procent *, double now);
void	proccache_free(struct proccache *);

/* The text of /proc/PID/stat: utime + stime, and the start time, in clock
 * ticks. 0 or -1. */
int	procstat_parse_stat(const char *buf, size_t n,
	    unsigned long long *ticks, unsigned long long *start);
/* The text of /proc/PID/smaps_rollup: its "Pss:" line in KiB. 0 or -1. */
int	procstat_parse_pss(const char *buf, size_t n,
	    unsigned long long *kib);

#endif
