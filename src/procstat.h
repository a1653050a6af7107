/* What /proc says of one process, read only when asked (a scrape): its
 * CPU time and its proportional set size. */
#ifndef FUGUE_PROCSTAT_H
#define FUGUE_PROCSTAT_H

#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>

struct procstat {
	bool		 cpu_ok;	/* /proc/PID/stat was read */
	bool		 pss_ok;	/* /proc/PID/smaps_rollup was read */
	double		 cpu_seconds;	/* user + system, the process itself */
	unsigned long long pss_bytes;
};

/* Read both files of pid; what cannot be read (gone, no smaps_rollup
 * before Linux 4.14) is left out, its _ok false. */
void	procstat_read(pid_t pid, struct procstat *ps);

/* The text of /proc/PID/stat: utime + stime in clock ticks. 0 or -1. */
int	procstat_parse_stat(const char *buf, size_t n,
	    unsigned long long *ticks);
/* The text of /proc/PID/smaps_rollup: its "Pss:" line in KiB. 0 or -1. */
int	procstat_parse_pss(const char *buf, size_t n,
	    unsigned long long *kib);

#endif
