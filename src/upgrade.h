/* The in-place upgrade (USR2): the master's state written to a memfd, the
 * binary re-executed with the same PID, the state read back and the running
 * workers adopted. */
#ifndef FUGUE_UPGRADE_H
#define FUGUE_UPGRADE_H

#include <sys/types.h>
#include <stdbool.h>

#include "config.h"
#include "util.h"

#define STATE_VERSION	1
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

struct master;
/* USR2 in the running image: check the new binary, then re-exec. */
void	 upgrade_begin(struct master *m);
/* The check child ended (called by the child watcher). */
void	 upgrade_checked(struct master *m, int status);
/* In the new image: read the state from fd into s. */
int	 upgrade_read_state(int fd, struct state *s, char *err, size_t len);
/* In the new image: take over listeners, workers, pipes and sockets. */
void	 upgrade_adopt(struct master *m, struct state *s);

#endif
