/*
 * The pid file and its lock. The pid file is for tools to read (0644); the
 * lock is a POSIX write lock on a lock file beside it, PATH.lock, fugue's
 * user's alone (0600): another user can neither hold it nor keep fugue from
 * taking it, and F_GETLK names the process that holds it. -s believes the
 * pid file only when that process is the pid written in it.
 */
#ifndef FUGUE_PIDFILE_H
#define FUGUE_PIDFILE_H

#include <sys/types.h>

/* Lock path's lock file, and make sure path can be written: 0 with *fd,
 * the lock (kept for the master's lifetime, across an upgrade's exec), 75
 * when another fugue holds it (err names its pid), 73 on any other failure
 * (err filled). */
int	pidfile_open(const char *path, int *fd, char *err, size_t len);
/* Write pid into path with one write (under the lock). -1 on error. */
int	pidfile_write(const char *path, pid_t pid);
/* Remove path if it still holds pid (or nothing yet), and the lock file if
 * it is still fd's; then close fd, and the lock goes with it. */
void	pidfile_remove(const char *path, int fd, pid_t pid);
/* sig (0: only check) to the master of path, which must hold the lock: 0
 * with *pid; 69 when nobody holds it (the file is stale) or the signal
 * fails, 65 when its holder is not the pid in the file; err filled. */
int	pidfile_signal(const char *path, int sig, pid_t *pid, char *err,
	    size_t len);
/* In the new image of an upgrade: if *fd is not the lock (an older fugue
 * locked the pid file itself), take the lock, then drop *fd. 0, or 73/75
 * with err, *fd kept. */
int	pidfile_adopt(const char *path, int *fd, char *err, size_t len);

#endif
