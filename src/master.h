/* The master: one libev loop that owns the listeners, the generations and
 * the workers, and makes every decision. */
#ifndef FUGUE_MASTER_H
#define FUGUE_MASTER_H

#include <sys/types.h>
#include <stdbool.h>
#include <ev.h>

#include "config.h"
#include "control.h"
#include "gen.h"
#include "hook.h"
#include "logging.h"
#include "metrics.h"
#include "supervise.h"
#include "upgrade.h"

enum master_phase {
	M_STARTING,	/* first generation not ready yet */
	M_RUNNING,
	M_STOPPING,
};

/* A reload or an upgrade; one more may wait, never lost. */
enum master_op { OP_NONE, OP_RELOAD, OP_UPGRADE };

/* Re-reads the configuration (the file and the command line over it). */
typedef int (*config_loader)(void *arg, struct config *c,
    struct errlist *errs);

#define MASTER_NSIG	11

struct master {
	struct ev_loop	*loop;
	pid_t		 pid;
	enum master_phase phase;
	int		 exit_code;
	bool		 seen_ready;	/* a worker of the first generation was */
	bool		 give_up;	/* stop once the current event is done */
	ev_timer	 recycle_timer;	/* the next worker due for max_lifetime */
	ev_timer	 memory_timer;	/* every memory_interval, with max_memory */
	unsigned long	 recycles;	/* workers replaced, for status */
	bool		 lame_duck;	/* stopping, but serving for stop_delay */

	struct gen_list	 gens;		/* every generation alive, oldest first */
	struct generation *serving;
	struct generation *starting;	/* a reload's, until commit or rollback */
	struct generation *pending;	/* a reload's, waiting for its
					 * exec_before_reload */
	struct lsock_list lsocks;	/* every listener, reference-counted */
	unsigned	 last_gen;
	char		*notify_dir;	/* the workers' notify sockets */

	enum master_op	 queued;	/* asked for while busy */
	bool		 upgrading;	/* the reload running ends an upgrade */
	bool		 exec_due;	/* the upgrade's exec, when the loop is idle */
	ev_prepare	 later;		/* runs what waits for the current event */
	struct upgrade_check check;	/* the new binary's check or trial */
	struct hook	 hook;		/* the reload hook running */
	char		*answer;	/* the outcome of the operation that
					 * ended, for its clients once the hook
					 * after it has ended; NULL none */
	char		 answer_word[12];	/* "ok", "failed", "refused" */
	unsigned	 answer_op;
	const char	*self_path;	/* the binary to re-exec, absolute */
	char	       **argv;		/* the arguments to re-exec with */
	struct state	*adopt;		/* after an upgrade: what to take over */
	config_loader	 load;
	void		*load_arg;

	struct supervisor sv;
	int		 devnull;
	long long	 nofile;	/* the soft fd limit fugue started with */
	int		 log_fd;	/* log_file, -1 none */
	int		 mlog_fd;	/* master_log_file, -1 none */
	struct logsink	 sink;		/* the workers' output pipes */
	int		 pid_fd;	/* locked pid file, -1 none */
	int		 ready_fd;	/* -d: tell the launcher, -1 none */

	struct control	 ctl;
	struct metrics	 metrics;	/* the HTTP endpoint, l.fd -1 none */
	struct counters	 counts;	/* exits, reloads: kept across upgrades */
	unsigned	 op_seq;	/* reloads and upgrades started */
	unsigned	 op_current;	/* the one running (or last run) */

	ev_signal	 sigs[MASTER_NSIG];
	ev_child	 child;
	ev_timer	 gen_timer;	/* ready_timeout of a starting generation,
					 * then its ready_hold */
	bool		 holding;	/* gen_timer runs the ready_hold */
	bool		 held;		/* the ready_hold passed */
	unsigned	 roll_to;	/* the count the reload ends with */
	unsigned	 roll_from;	/* the old generation's, for a rollback */
	ev_timer	 stop_timer;	/* end of stop_delay, then the kill
					 * deadline of a stop */
	ev_timer	 watchdog;	/* systemd's, at half its interval */
};

/* Block the signals the master handles (they stay pending) until
 * master_run has its watchers in place. */
void	master_hold_signals(void);
/* Take the configuration (moved into m; c is left empty). */
void	master_init(struct master *m, struct config *c, config_loader load,
	    void *load_arg);
/* Open log_file and master_log_file. Returns 0 or 73 with err. */
int	master_open_logs(struct master *m, char *err, size_t len);
/* Bind every listener, all or nothing, taking those systemd handed over.
 * Returns 0 or an exit code. */
int	master_bind(struct master *m, char *err, size_t len);
/* Start the workers and run the loop until the end; the exit code. */
int	master_run(struct master *m);
void	master_free(struct master *m);

/* ---- reload.c: generations started, committed, rolled back ---- */
void	reload_begin(struct master *);
void	upgrade_begin(struct master *);
/* The check child ended. */
void	upgrade_checked(struct master *, int status);
/* The upgrade's exec: every event of this iteration has been handled. */
void	upgrade_exec_now(struct master *);
void	reload_rollback(struct master *, const char *why);
/* The hook's report (hook_report_fn): a reload waiting for it goes on or
 * is refused; an operation waiting for it may start. */
void	reload_hook_ended(void *arg, enum hook_kind, bool ok, const char *why);
/* fugue stops: the hook is killed, a reload waiting for it dropped. */
void	reload_stop_hooks(struct master *);
/* A worker of the first or a starting generation became ready. */
void	reload_check(struct master *);
/* Arm the deadline of the generation starting (ready_timeout). */
void	reload_deadline(struct master *, unsigned ms);
/* A reload or upgrade is under way: another waits. */
bool	master_busy(const struct master *);
/* Start g's missing workers or stop its extra ones, to want. */
void	gen_scale(struct master *, struct generation *g, unsigned want);
/* Stop every worker of g, each with g's own stop_signal and kill_timeout. */
void	gen_stop(struct master *, struct generation *g);
/* TTIN, TTOU or scale while a reload runs. */
void	reload_scale(struct master *, unsigned want);
/* Free the old generations none of whose workers remain. */
void	gens_reap(struct master *);
/* Stop a generation's notify watcher and free it. */
void	gen_drop(struct master *, struct generation *);
/* fugue's own notify socket for g's workers (ready = notify). */
int	gen_notify_start(struct master *, struct generation *, char *err,
	    size_t len);

/* ---- handover.c: the state across an upgrade's re-exec ---- */
void	handover_build(struct master *, struct state *);
/* In the new image: take over listeners, generations, workers, pipes,
 * sockets and clients. */
void	handover_adopt(struct master *, struct state *);

/* ---- status.c ---- */
char	*status_format(const struct master *, bool json);
/* The metrics endpoint's callback: /metrics and /readyz. */
void	status_http(void *master, struct metrics_client *, enum metrics_page);
/* A reload or upgrade ended: counted, and remembered as the last one. */
void	status_record_reload(struct master *, bool upgrade,
	    enum reload_result, unsigned from_gen, unsigned to_gen,
	    const char *reason);

/* recycle.c: replacing workers that are too old, too big, or ask to be. */
void	recycle_init(struct master *);
/* The serving configuration changed (start, commit): timers as it says. */
void	recycle_config(struct master *);
void	recycle_stop(struct master *);
/* A worker became ready: its own deadline; a predecessor drains. */
void	recycle_ready(struct master *, struct worker *);
/* Replace the workers due, within the quota; arm for the next one. */
void	recycle_check(struct master *);
/* Start w's replacement now (why is logged and shown in status). */
void	recycle_retire(struct master *, struct worker *, const char *why);
/* Read every worker's memory (PSS of its process group). */
void	recycle_measure(struct master *);

/* reload.c, for reexec.c: an operation queued, refused, or run after the
 * current event. */
void	op_later(struct master *);
void	op_enqueue(struct master *, enum master_op what);
void	op_refused(struct master *, const char *what, const char *why,
	    const char *detail, const struct config *c, unsigned new_gen);

/* stop.c: TERM/QUIT (a lame duck first with stop_delay) or INT (quick);
 * the end once every worker is gone; workers with a process. */
void	master_stop(struct master *, bool quick);
void	master_finish(struct master *);
unsigned master_live(const struct master *);

#endif
