/* The master: one libev loop that owns the listeners and the workers. */
#ifndef FUGUE_MASTER_H
#define FUGUE_MASTER_H

#include <sys/types.h>
#include <stdbool.h>
#include <ev.h>

#include "config.h"
#include "listen.h"
#include "logging.h"
#include "spawn.h"
#include "workers.h"

enum master_phase {
	M_STARTING,	/* first generation not ready yet */
	M_RUNNING,
	M_STOPPING,
};

/* What one generation of workers runs with. Listener fds are shared with
 * the generation before when the address stayed (never re-bound). */
struct generation {
	unsigned	 id;		/* 0: none */
	struct config	 cfg;
	struct spawn_plan plan;
	struct listener	*ls;
	size_t		 nls;
	bool		*bound;		/* ls[i] was bound for this generation */
	int		*fds;
	char		*fdnames;
};

struct state;
struct ctl_client;

/* Re-reads the configuration (the file and the command line over it). */
typedef int (*config_loader)(void *arg, struct config *c,
    struct errlist *errs);

#define MASTER_NSIG	11

struct master {
	struct ev_loop	*loop;
	pid_t		 pid;
	enum master_phase phase;
	int		 exit_code;

	struct generation cur;		/* serving */
	struct generation next;		/* starting during a reload */
	struct listener	*gone;		/* left the config; closed once the */
	size_t		 ngone;		/* old generation is gone */
	unsigned	 last_gen;
	unsigned	 target;	/* workers wanted (count, TTIN/TTOU) */
	unsigned	 next_target;
	enum { Q_NONE, Q_RELOAD, Q_UPGRADE } queued;	/* one, never lost */
	bool		 upgrading;	/* this reload completes an upgrade */
	bool		 exec_pending;	/* the upgrade's exec is imminent */
	const char	*self_path;	/* the binary to re-exec, absolute */
	char	       **argv;		/* the arguments to re-exec with */
	struct state	*adopt;		/* after an upgrade: what to take over */
	pid_t		 check_pid;	/* the new binary's -t, running */
	ev_io		 check_io;	/* its output */
	struct outbuf	 check_out;
	config_loader	 load;
	void		*load_arg;

	struct worker_table wt;
	int		 devnull;
	long long	 nofile;	/* the soft fd limit fugue started with */
	int		 log_fd;	/* log_file, -1 none */
	int		 mlog_fd;	/* master_log_file, -1 none */
	struct logsink	 sink;		/* the workers' output pipes */
	int		 pid_fd;	/* locked pid file, -1 none */
	int		 ready_fd;	/* -d: tell the launcher, -1 none */

	int		 exec_stage;	/* last exec failure, logged once */
	int		 exec_errno;
	char		 why[256];	/* last reason a worker failed */

	int		 notify_fd;	/* workers' NOTIFY_SOCKET, -1 none */
	char		*notify_path;
	ev_io		 notify_io;
	ev_timer	 watchdog;	/* systemd's, at half its interval */

	int		 ctl_fd;	/* control socket, -1 none */
	ev_io		 ctl_io;
	ev_timer	 ctl_pause;	/* accept paused: out of fds */
	struct ctl_client *ctl_clients;
	unsigned	 op_seq;	/* reloads and upgrades started */
	unsigned	 op_current;	/* the one running (or last run) */

	ev_signal	 sigs[MASTER_NSIG];
	ev_child	 child;
	ev_timer	 gen_timer;	/* ready_timeout of a starting generation */
	ev_timer	 stop_timer;	/* kill deadline of a stop */
};

/* Block the signals the master handles (they stay pending) until
 * master_run has its watchers in place. */
void	master_hold_signals(void);
/* Take the configuration (moved into m; c is left empty). */
void	master_init(struct master *m, struct config *c, config_loader load,
	    void *load_arg);
/* Open log_file and master_log_file. Returns 0 or 73 with err. */
int	master_open_logs(struct master *m, char *err, size_t len);
/* Bind every listener, all or nothing, taking those systemd handed over
 * (activated, may be NULL). Returns 0 or an exit code. */
int	master_bind(struct master *m, const struct generation *activated,
	    char *err, size_t len);
/* Start the workers and run the loop until the end; the exit code. */
int	master_run(struct master *m);
void	master_free(struct master *m);

/* Inside the master (master.c, generation.c, lifecycle.c, upgrade.c). */
void	master_stop(struct master *, bool quick);
void	master_finish(struct master *);
void	master_reload(struct master *);
/* A generation is starting, or an upgrade is under way: a reload or an
 * upgrade asked for now waits (master_enqueue). */
bool	master_busy(const struct master *);
void	master_enqueue(struct master *, int what);
void	master_dequeue(struct master *);
void	master_scale(struct master *, unsigned want);
void	master_reopen_logs(struct master *);
/* A reload or upgrade begins: what control clients wait for. */
void	master_op_begin(struct master *);

void	gen_free(struct generation *);
void	gen_close_bound(struct generation *);
int	gen_bind(struct generation *, const struct generation *prev,
	    char *err, size_t len);
int	gen_plan(struct master *, struct generation *, char *err, size_t len);
struct generation *gen_of(struct master *, const struct worker *);
void	gen_check(struct master *);
void	gen_commit(struct master *);
void	gen_rollback(struct master *, const char *why);
void	gen_close_gone(struct master *);
void	gen_retire(struct master *, const struct listener *, size_t,
	    const struct generation *now);
/* "workers run as root" when they would. */
void	gen_warn_root(const struct config *);
void	gen_deadline(struct master *, unsigned);
void	gen_timer_cb(struct ev_loop *, ev_timer *, int);

void	worker_start(struct master *, unsigned gen, unsigned slot);
void	worker_spawn(struct master *, struct worker *);
void	worker_watch_exec(struct master *, struct worker *, int fd);
void	worker_ready(struct master *, struct worker *);
void	worker_signal(struct worker *, int sig);
void	worker_drain(struct master *, struct worker *, int64_t timeout_ms);
void	worker_exited(struct master *, struct worker *, int status);
void	worker_timer_cb(struct ev_loop *, ev_timer *, int);
void	worker_notify_cb(struct ev_loop *, ev_io *, int);
/* Read every notify datagram waiting (bounded). */
void	worker_notify_drain(struct master *);
void	describe_status(int status, char *buf, size_t len);

#endif
