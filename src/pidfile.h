/* The pid file: created without following symlinks, locked with flock for
 * the master's lifetime, written in place, removed only if still ours. */
#ifndef FUGUE_PIDFILE_H
#define FUGUE_PIDFILE_H

#include <sys/types.h>

/* Open and lock path. Returns 0 with *fd, 75 when another fugue holds it
 * (err names its pid), 73 on any other failure (err filled). */
int	pidfile_open(const char *path, int *fd, char *err, size_t len);
/* Truncate and write our pid with one write. -1 on error. */
int	pidfile_write(int fd, pid_t pid);
/* Remove path if it still holds our pid, then close fd. */
void	pidfile_remove(const char *path, int fd, pid_t pid);
/* The pid a running master wrote (for -s): >0, or -1 with err filled. */
pid_t	pidfile_read(const char *path, char *err, size_t len);

#endif
