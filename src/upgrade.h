/* The in-place upgrade (USR2): the master's state written to a memfd, the
 * binary re-executed with the same PID, the state read back and the running
 * workers adopted. */
#ifndef FUGUE_UPGRADE_H
#define FUGUE_UPGRADE_H

#include <sys/types.h>
#include <stdbool.h>

#include <stdint.h>
#include <ev.h>

#include "config.h"
#include "logging.h"
#include "util.h"

/* 2: a notify socket per generation in a private directory; version 1
 * (one socket, the serving generation's) is still read. Version 2 also
 * carries the metrics endpoint, the counters and the last reload. */
#define STATE_VERSION	2
#define STATE_ENV	"FUGUE_STATE_FD"

struct state_listener {
	int	 fd;
	dev_t	 dev;
	ino_t	 ino;
	bool	 gone;		/* left the config; closed once unused */
	char	 addr[ADDRESS_TEXT_MAX];
};

struct state_worker {
	pid_t	 pid;		/* 0: waiting to restart (backoff) */
	unsigned slot, gen;
	int	 state;		/* enum worker_state */
	bool	 exec_ok;
	bool	 failed_start;
	int	 execfd;	/* exec-error pipe still open, else -1 */
	int	 outfd;		/* its output pipe's read end, else -1 */
	unsigned restarts;
	unsigned backoff_ms;
	int	 last_status;
	int64_t	 age_ms;	/* since it was forked */
	int64_t	 ready_age_ms;	/* since it became ready, -1 never */
	int64_t	 timer_ms;	/* its timer's time left, -1 none */
	int	 readyfd;	/* ready = fd: its pipe's read end, else -1 */
};

struct state_pipe {
	int	 fd;
	unsigned slot;
	pid_t	 pid;
};

struct state_waiter {
	int	 fd;		/* a control client awaiting the outcome */
	unsigned after;
};

struct state_notify {
	unsigned gen;
	int	 fd;
	char	*path;
};

/* A counter carried across the exec, by name ("exits.stopped"); a name
 * the new image does not know is left behind. */
#define STATE_COUNT_NAME_MAX	48
struct state_count {
	char	 name[STATE_COUNT_NAME_MAX];	/* [a-z0-9_.] */
	unsigned long long value;
};

/* The last reload or upgrade (promtext.h's reload_record), by name. */
#define STATE_WORD_MAX		16
struct state_reload {
	bool	 set;
	char	 kind[STATE_WORD_MAX];		/* [a-z_] */
	char	 result[STATE_WORD_MAX];
	int64_t	 time_ms;	/* since the epoch */
	unsigned from_gen, to_gen;
	char	*reason;
};

/* A metrics client answered nothing yet, and its request so far. */
#define STATE_MCLIENT_MAX	8192	/* METRICS_HEAD_MAX */
struct state_mclient {
	int	 fd;
	char	*in;
};

struct state {
	unsigned version;
	unsigned cur_gen, last_gen, target;
	long long nofile;	/* the soft fd limit to give workers, -1 none */
	int	 pid_fd;	/* -1 none */
	int	 notify_fd;	/* -1 none */
	char	*notify_path;
	struct state_listener *ls;
	size_t	 nls;
	struct state_worker *ws;
	size_t	 nws;
	struct state_pipe *ps;
	size_t	 nps;
	int	 ctl_fd;	/* control socket, -1 none */
	unsigned op_seq, op_current;
	int	 queued;	/* a reload or upgrade asked for meanwhile */
	struct state_waiter *waiters;
	size_t	 nwaiters;
	struct strvec cfg;	/* "section\tkey\tvalue" of the running config */
	char	*notify_dir;	/* v2: where the generations' sockets are */
	struct state_notify *ns;
	size_t	 nns;
	int	 sink_fd;	/* log lines not yet written (memfd), -1 none */
	int	 metrics_fd;	/* the metrics endpoint, -1 none */
	dev_t	 metrics_dev;	/* its UNIX socket file */
	ino_t	 metrics_ino;
	struct state_count *counts;
	size_t	 ncounts;
	struct state_reload last;
	struct state_mclient *mclients;
	size_t	 nmclients;
};

/* Text form; parse never trusts its input: -1 with err on anything off. */
char	*state_format(const struct state *s, size_t *len);
int	 state_parse(const char *buf, size_t len, struct state *s, char *err,
	    size_t errlen);
/* Empty: no fds, no limit. */
void	 state_init(struct state *s);
void	 state_free(struct state *s);

/* The running configuration as "section\tkey\tvalue" lines, and back. */
void	 state_config_dump(const struct config *c, struct strvec *out);
int	 state_config_load(const struct strvec *lines, struct config *c,
	    struct errlist *errs);

/* The new binary's check (-t) or trial run, a child watched by the loop and
 * bounded in time: at its deadline, and once it has ended, its whole
 * process group is killed. */
struct upgrade_check {
	struct ev_loop	*loop;
	pid_t		 pid;		/* 0: none running */
	bool		 trial;		/* the trial run, else -t */
	bool		 timed_out;
	int		 memfd;		/* the trial's state, -1 none */
	ev_io		 io;		/* its output */
	ev_timer	 timer;
	struct outbuf	 out;
};

#define TRIAL_ENV	"FUGUE_TRIAL_FD"

/* Start `self -t args` (trial: `self args` with the state on memfd and
 * TRIAL_ENV set, every fd in keep inherited). 0, or -1 with err. */
int	upgrade_check_start(struct upgrade_check *, struct ev_loop *,
	    const char *self, char **argv, int devnull, int memfd,
	    const int *keep, int nkeep, int64_t timeout_ms, char *err,
	    size_t len);
/* It was reaped (what it left in its process group is killed): what it
 * printed is in c->out (freed by the next start or upgrade_check_end).
 * 0 if it passed. */
int	upgrade_check_exited(struct upgrade_check *, int status, char *why,
	    size_t len);
/* Kill its process group (fugue stops) and forget it. */
void	upgrade_check_end(struct upgrade_check *);

/* The state in a new memfd (close-on-exec). 0, or -1 with errno. */
int	upgrade_state_memfd(const struct state *s, int *memfd);
/* Every fd the state names survives an exec (on), or none does. */
void	upgrade_fds_inherit(const struct state *s, int memfd, bool on);
/* The fds the state names, for a trial run; malloc'd, *n entries. */
int	*upgrade_state_fds(const struct state *s, int *n);
/* execve self in place with the state on memfd; returns only on failure
 * (errno set), with nothing inherited. */
void	upgrade_exec(const char *self, char **argv, const struct state *s,
	    int memfd);
/* In the new image: read the state from fd into s. */
int	upgrade_read_state(int fd, struct state *s, char *err, size_t len);
/* A trial run: the state on fd parses, its configuration loads and every
 * fd it names is open. 0, or -1 with err. */
int	upgrade_trial(int fd, char *err, size_t len);

#endif
