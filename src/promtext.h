/*
 * The Prometheus text format (version 0.0.4) of a snapshot of the master,
 * and the records it is made of that outlive a scrape: the counts of
 * reloads by result and the last reload. The snapshot is the master's to
 * fill; the per-process figures are read from /proc at scrape time.
 */
#ifndef FUGUE_PROMTEXT_H
#define FUGUE_PROMTEXT_H

#include <sys/types.h>
#include <stdbool.h>

#include "logsink.h"
#include "procstat.h"
#include "workers.h"

/* The names cross an upgrade: append only. */
enum reload_kind { RK_RELOAD, RK_UPGRADE, RK_COUNT };
enum reload_result { RR_OK, RR_REFUSED, RR_ROLLED_BACK, RR_COUNT };

#define RELOAD_REASON_MAX	512

/* How the last reload or upgrade ended (after HAProxy's ReloadFailed). */
struct reload_record {
	bool		 set;		/* one has ended */
	enum reload_kind kind;
	enum reload_result result;
	double		 time;		/* when it ended, seconds since the epoch */
	unsigned	 from_gen;	/* the generation serving when it began */
	unsigned	 to_gen;	/* the one it started, 0 if none */
	char		 reason[RELOAD_REASON_MAX];
};

/* Counted since fugue started, across upgrades. */
struct counters {
	unsigned long long exits[WX_COUNT];
	unsigned long long reloads[RK_COUNT][RR_COUNT];
	struct reload_record last;
};

const char *reload_kind_name(enum reload_kind);
const char *reload_result_name(enum reload_result);
/* A name back (as the state carries it); -1 if unknown. */
int	reload_kind_parse(const char *);
int	reload_result_parse(const char *);

struct prom_worker {
	pid_t		 pid;		/* 0: waiting to restart */
	unsigned	 slot, gen;
	double		 uptime;	/* seconds since it was forked */
	unsigned	 restarts;
	struct procstat	 proc;		/* from /proc, at scrape time */
};

struct prom_snapshot {
	const char	*version;
	pid_t		 pid;		/* the master's */
	bool		 ready;		/* as /readyz says */
	unsigned	 serving_gen;
	unsigned	 wanted;	/* the serving generation's target */
	unsigned	 by_state[W_GONE];
	struct counters	 counts;
	unsigned long long log_dropped;
	struct procstat	 self;		/* the master's, read at scrape time */
	struct prom_worker *ws;
	size_t		 nws;
	size_t		 nread;		/* workers whose /proc was read */
};

/* The whole text into o. */
void	prom_format(const struct prom_snapshot *, struct outbuf *o);
void	prom_snapshot_free(struct prom_snapshot *);

/* Append s as a label value: \, " and newlines escaped, bytes that are
 * not UTF-8 replaced by '?'. */
void	prom_label_value(struct outbuf *o, const char *s);

#endif
