/*
 * The reload hooks ([master] exec_before_reload, exec_after_reload,
 * exec_reload_failed): one command at a time, a child run as the workers
 * are (spawn.c), its output logged through a pipe of its own, its process
 * group killed at hook_timeout. How it ended is reported to the master,
 * which decides what that means for the reload.
 */
#ifndef FUGUE_HOOK_H
#define FUGUE_HOOK_H

#include <sys/types.h>
#include <stdbool.h>
#include <stdint.h>
#include <ev.h>

#include "config.h"
#include "logging.h"

/* It ended: ok (exit status 0), or why not ("exited with status 3; its
 * last line: \"...\""). */
typedef void (*hook_report_fn)(void *arg, enum hook_kind kind, bool ok,
    const char *why);

/* What a hook is told, in FUGUE_OLD_GENERATION, FUGUE_NEW_GENERATION,
 * FUGUE_RESULT and FUGUE_REASON (NULL: empty). */
struct hook_vars {
	unsigned	 old_gen, new_gen;
	const char	*result;	/* "ok", "failed", "refused" */
	const char	*reason;
};

struct hook {
	struct ev_loop	*loop;
	struct logsink	*sink;
	hook_report_fn	 report;
	void		*arg;
	pid_t		 pid;		/* 0: none running */
	enum hook_kind	 kind;
	bool		 timed_out;
	bool		 killed;	/* fugue stops */
	int64_t		 timeout_ms;
	int		 execfd;	/* the exec-error pipe, -1 none */
	ev_timer	 timer;		/* hook_timeout */
	struct logpipe	*out;		/* its output, until the pipe ends */
	char		 last_line[120];
};

void	hook_init(struct hook *, struct ev_loop *, struct logsink *,
	    hook_report_fn, void *arg);
/* Start c's hook of kind k (none may be running). 0, or -1 with err
 * ("exec_before_reload: /x: No such file or directory"): nothing runs. */
int	hook_start(struct hook *, const struct config *c, enum hook_kind k,
	    const struct hook_vars *, pid_t master, int devnull,
	    long long nofile, char *err, size_t len);
/* pid was reaped: if it was the hook, report how it ended (what it left
 * in its process group is killed) and return true. */
bool	hook_reaped(struct hook *, pid_t pid, int status);
/* Kill its process group now (fugue stops); the end is still reported. */
void	hook_kill(struct hook *);

#endif
