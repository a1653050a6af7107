#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pidfile.h"
#include "util.h"

static pid_t
pidfile_parse(int fd)
{
	char buf[32];
	ssize_t n;
	long v;
	char *end;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf || v <= 0 || (*end != '\n' && *end != '\0'))
		return -1;
	return (pid_t)v;
}

int
pidfile_open(const char *path, int *fdp, char *err, size_t len)
{
	struct stat st;
	pid_t holder;
	int fd;

	/* No O_TRUNC: a running master's file must stay intact until we
	 * know we hold the lock. O_NOFOLLOW: never through a symlink. */
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd == -1) {
		snprintf(err, len, "pid file %s: %s", path,
		    errno == ELOOP ? "is a symbolic link" : strerror(errno));
		return EX_CANTCREAT_;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, len, "pid file %s: not a regular file", path);
		close(fd);
		return EX_CANTCREAT_;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		int e = errno;

		if (e == EWOULDBLOCK) {
			if ((holder = pidfile_parse(fd)) > 0)
				snprintf(err, len, "already running: pid %ld "
				    "holds %s", (long)holder, path);
			else
				snprintf(err, len, "already running: %s is "
				    "locked by another fugue", path);
			close(fd);
			return EX_TEMPFAIL_;
		}
		snprintf(err, len, "pid file %s: lock: %s", path, strerror(e));
		close(fd);
		return EX_CANTCREAT_;
	}
	*fdp = fd;
	return 0;
}

int
pidfile_write(int fd, pid_t pid)
{
	char buf[32];
	int n;

	n = snprintf(buf, sizeof(buf), "%ld\n", (long)pid);
	if (ftruncate(fd, 0) == -1)
		return -1;
	if (pwrite(fd, buf, n, 0) != n)
		return -1;
	return 0;
}

void
pidfile_remove(const char *path, int fd, pid_t pid)
{
	struct stat a, b;

	if (fd == -1)
		return;
	/* Only if the name still leads to our locked inode and holds our pid
	 * (or nothing yet: we failed before writing it). */
	if (fstat(fd, &a) == 0 && (a.st_size == 0 || pidfile_parse(fd) == pid) &&
	    lstat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		unlink(path);
	close(fd);
}

pid_t
pidfile_read(const char *path, char *err, size_t len)
{
	pid_t pid;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		snprintf(err, len, "pid file %s: %s", path, strerror(errno));
		return -1;
	}
	/* A file nobody holds the lock on is stale: no master runs. */
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		snprintf(err, len, "pid file %s: no fugue is running (stale)",
		    path);
		close(fd);
		return -1;
	}
	pid = pidfile_parse(fd);
	close(fd);
	if (pid <= 0)
		snprintf(err, len, "pid file %s: no valid pid in it", path);
	return pid;
}
