/* fork+exec of one worker. Everything the child needs is built before the
 * fork (spawn_plan_build); the child makes only async-signal-safe calls and
 * reports a failure through a close-on-exec pipe. */
#ifndef FUGUE_SPAWN_H
#define FUGUE_SPAWN_H

#include <sys/types.h>
#include <stdbool.h>

#include "config.h"

/* What failed in the child, sent with errno through the exec-error pipe. */
enum spawn_stage {
	SP_FDS = 1, SP_SETGROUPS, SP_SETGID, SP_SETUID, SP_PDEATHSIG,
	SP_ORPHANED, SP_CHDIR, SP_EXEC,
};

struct spawn_report {
	int	stage;
	int	err;
};

struct spawn_plan {
	char		*path;		/* resolved executable */
	struct strvec	 argv;
	struct strvec	 envp;
	char		*env_pid;	/* the LISTEN_PID= entry, filled in the
					 * child; NULL: none (a hook) */
	char		*env_slot;	/* the FUGUE_WORKER_ID= entry, per spawn;
					 * NULL: none */
	const int	*fds;		/* listeners, become fd 3, 4, ... */
	int		 nfds;
	bool		 blocking;	/* listeners blocking, not O_NONBLOCK */
	int		 ready_fd;	/* per spawn: ready = fd's pipe, the fd
					 * after the listeners; -1 none */
	int		 devnull;	/* becomes fd 0 */
	bool		 set_creds;
	uid_t		 uid;
	gid_t		 gid;
	const gid_t	*groups;
	int		 ngroups;
	bool		 set_groups;	/* setgroups(groups) before setgid */
	const char	*working_dir;
	int		 umask;		/* -1: keep */
	int		 death_signal;
	long long	 nofile;	/* RLIMIT_NOFILE soft limit to restore, -1 keep */
	pid_t		 master_pid;
};

/* What fugue strips from the environment it passes on, beyond LISTEN_*. */
bool	spawn_env_private(const char *entry);

/*
 * Build the plan of one generation: resolve the command on PATH, build argv
 * and the environment (fugue's own unless clear_env, minus NOTIFY_SOCKET,
 * LISTEN_*, WATCHDOG_* and FUGUE_*, plus env= lines, LISTEN_FDS,
 * LISTEN_FDNAMES, FUGUE_GENERATION, FUGUE_MASTER_PID, NOTIFY_SOCKET when
 * notify_path is set, and the two per-worker entries). fdnames is the
 * colon-separated LISTEN_FDNAMES value. Returns 0, or -1 with err.
 */
int	spawn_plan_build(struct spawn_plan *p, const struct config *c,
	    char **environ_, const int *fds, int nfds, const char *fdnames,
	    unsigned gen, pid_t master, const char *notify_path,
	    char *err, size_t len);
void	spawn_plan_free(struct spawn_plan *p);

/* The worker command's executable: argv[0] found on pathvar, or relative
 * to working_dir when it holds a '/'. 0 with *out, or -1 with errno. */
int	spawn_command_path(const struct config *c, const char *pathvar,
	    char **out);

/* The same for the hook of kind k (exec_before_reload, ...). */
int	spawn_hook_path(const struct config *c, enum hook_kind k,
	    const char *pathvar, char **out);

/*
 * The plan of a reload hook, for spawn_worker: the command of kind k, run
 * as the workers are (their user, group, working_dir, umask, environment
 * and parent-death signal) but with no listener, nothing of LISTEN_*,
 * NOTIFY_SOCKET or the per-worker variables: FUGUE_MASTER_PID and the
 * "NAME=value" entries of vars instead. 0, or -1 with err.
 */
int	spawn_plan_hook(struct spawn_plan *p, const struct config *c,
	    enum hook_kind k, char **environ_, const struct strvec *vars,
	    pid_t master, char *err, size_t len);

/* Resolve cmd like execvp would, without running it: "" and -1 on failure
 * with errno (ENOENT, EACCES). out gets a malloc'd absolute-or-relative path. */
int	spawn_resolve(const char *cmd, const char *pathvar, char **out);

/*
 * Fork one worker for slot with stdout/stderr on out_fd (out_fd and err_fd
 * may be the same). Returns its pid with *execfd the read end of the
 * exec-error pipe (EOF: exec succeeded; a struct spawn_report: it failed),
 * or -1 with errno and *step naming what failed ("pipe", "fork"). A signal
 * sent to the child before its exec is held until its dispositions are the
 * defaults, never lost.
 */
pid_t	spawn_worker(struct spawn_plan *p, unsigned slot, int out_fd,
	    int err_fd, int *execfd, const char **step);

/*
 * A helper process (the upgrade's check and trial run): path with argv and
 * envp, stdin on in_fd, stdout and stderr on out_fd, the fds in keep
 * inherited, default signal dispositions, a process group of its own (so
 * that all it started can be killed). Its pid, or -1 with errno.
 */
pid_t	spawn_command(const char *path, char *const argv[], char *const envp[],
	    int in_fd, int out_fd, const int *keep, int nkeep);

const char *spawn_stage_name(int stage);

#endif
