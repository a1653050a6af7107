/*
 * The pid file and its lock (see pidfile.h). Why a lock file of its own: a
 * lock on the world-readable pid file can be held by any user, since flock
 * takes any lock and fcntl a read lock (which keeps out a write lock) on a
 * descriptor opened for reading. Why a POSIX lock: F_GETLK names the
 * process that holds it; it is not inherited by the workers (fork), and it
 * stays with the master across an upgrade's exec as long as its descriptor
 * does.
 */
#include <sys/stat.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "pidfile.h"
#include "util.h"

/* Locking retries when the lock file is replaced under us (see lock_take). */
#define LOCK_TRIES	5

static char *
lock_path(const char *path)
{
	return xprintf("%s.lock", path);
}

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

/* fd is the file at path itself, not a file a symlink there leads to. */
static bool
same_file(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && lstat(path, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* open(2) of a regular file, never through a symlink nor blocking on a
 * FIFO: fd (its stat in *st if st), or -1 with err ("what path: why") and
 * errno kept (EINVAL: not a regular file). */
static int
open_regular(const char *what, const char *path, int flags, mode_t mode,
    struct stat *st, char *err, size_t len)
{
	struct stat sb;
	int fd, e;

	if (st == NULL)
		st = &sb;
	fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
	if (fd == -1) {
		e = errno;
		snprintf(err, len, "%s %s: %s", what, path, e == ELOOP ?
		    "is a symbolic link" : strerror(e));
		errno = e;
		return -1;
	}
	if (fstat(fd, st) == -1 || !S_ISREG(st->st_mode)) {
		snprintf(err, len, "%s %s: not a regular file", what, path);
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

/* The whole file, for F_SETLK and F_GETLK. */
static struct flock
whole_file(short type)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	return fl;
}

/* Who holds a lock that keeps out ours: 1 with *pid (<= 0 when outside
 * our pid namespace), 0 when nobody does, -1 on error. */
static int
lock_holder(int fd, pid_t *pid)
{
	struct flock fl = whole_file(F_WRLCK);

	if (fcntl(fd, F_GETLK, &fl) == -1)
		return -1;
	*pid = fl.l_pid;
	return fl.l_type != F_UNLCK;
}

/* The lock file, created 0600 if missing; refused unless it is ours
 * alone, or another user could hold it. fd, or -1 with err. */
static int
lock_file_open(const char *lpath, char *err, size_t len)
{
	struct stat st;
	int fd;

	if ((fd = open_regular("lock file", lpath, O_RDWR | O_CREAT, 0600, &st,
	    err, len)) == -1)
		return -1;
	if (st.st_uid == geteuid() && !(st.st_mode & 077))
		return fd;
	snprintf(err, len, "lock file %s: owned by uid %ld with mode %04o, "
	    "so others could hold it; it must be uid %ld's alone (0600): "
	    "remove it", lpath, (long)st.st_uid, (unsigned)(st.st_mode & 07777),
	    (long)geteuid());
	close(fd);
	return -1;
}

/* F_SETLK failed with e on fd: 75 naming the holder, or 73. */
static int
lock_busy(int fd, const char *lpath, int e, char *err, size_t len)
{
	pid_t holder;

	if (e != EACCES && e != EAGAIN) {
		snprintf(err, len, "lock file %s: lock: %s", lpath,
		    strerror(e));
		return EX_CANTCREAT_;
	}
	if (lock_holder(fd, &holder) == 1 && holder > 0)
		snprintf(err, len, "already running: pid %ld holds %s",
		    (long)holder, lpath);
	else
		snprintf(err, len, "already running: %s is locked by another "
		    "fugue", lpath);
	return EX_TEMPFAIL_;
}

/*
 * Lock lpath: 0 with *fd, 75 when held, 73. A fugue that exits removes
 * its lock file: a lock taken on the file it removed is worth nothing, so
 * the file locked must still be the one at lpath, or we try again.
 */
static int
lock_take(const char *lpath, int *fdp, char *err, size_t len)
{
	struct flock fl = whole_file(F_WRLCK);

	for (int i = 0; i < LOCK_TRIES; i++) {
		int fd = lock_file_open(lpath, err, len), r;

		if (fd == -1)
			return EX_CANTCREAT_;
		if (fcntl(fd, F_SETLK, &fl) == -1) {
			r = lock_busy(fd, lpath, errno, err, len);
			close(fd);
			return r;
		}
		if (same_file(fd, lpath)) {
			*fdp = fd;
			return 0;
		}
		close(fd);
	}
	snprintf(err, len, "lock file %s: replaced again and again while "
	    "locking it", lpath);
	return EX_TEMPFAIL_;
}

/* Remove the lock file if it still is fd's, then let the lock go. */
static void
lock_drop(const char *lpath, int fd)
{
	if (same_file(fd, lpath))
		unlink(lpath);
	close(fd);
}

int
pidfile_open(const char *path, int *fdp, char *err, size_t len)
{
	char *lpath = lock_path(path);
	int r, fd;

	/* Under the lock, the pid file is created if missing (0644), so
	 * that it is refused now, before anything is bound, if it cannot
	 * be; nothing in it changes until pidfile_write. */
	if ((r = lock_take(lpath, fdp, err, len)) == 0) {
		if ((fd = open_regular("pid file", path, O_RDWR | O_CREAT,
		    0644, NULL, err, len)) == -1) {
			lock_drop(lpath, *fdp);
			*fdp = -1;
			r = EX_CANTCREAT_;
		} else
			close(fd);
	}
	free(lpath);
	return r;
}

int
pidfile_write(const char *path, pid_t pid)
{
	char buf[32], err[512];
	int n, fd, r = -1;

	fd = open_regular("pid file", path, O_WRONLY | O_CREAT, 0644, NULL,
	    err, sizeof(err));
	if (fd == -1)
		return -1;
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)pid);
	if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, n, 0) == n)
		r = 0;
	close(fd);
	return r;
}

void
pidfile_remove(const char *path, int fd, pid_t pid)
{
	char err[512], *lpath;
	struct stat st;
	int pfd;

	if (fd == -1)
		return;
	/* Only if it holds our pid, or nothing yet (we failed before
	 * writing it); the lock file then, while it is still locked. */
	pfd = open_regular("pid file", path, O_RDONLY, 0, &st, err,
	    sizeof(err));
	if (pfd != -1 && (st.st_size == 0 ||
	    pidfile_parse(pfd) == pid) && same_file(pfd, path))
		unlink(path);
	if (pfd != -1)
		close(pfd);
	lpath = lock_path(path);
	lock_drop(lpath, fd);
	free(lpath);
}

/* The pid written in path: > 0, or -1 with err. */
static pid_t
pid_file_read(const char *path, char *err, size_t len)
{
	pid_t pid;
	int fd;

	if ((fd = open_regular("pid file", path, O_RDONLY, 0, NULL, err,
	    len)) == -1)
		return -1;
	pid = pidfile_parse(fd);
	close(fd);
	if (pid <= 0)
		snprintf(err, len, "pid file %s: no valid pid in it", path);
	return pid;
}

/* 0 when the holder of lfd's lock is pid; 69 when nobody holds it, 65
 * when another process does (err filled). */
static int
vouch(int lfd, const char *path, pid_t pid, char *err, size_t len)
{
	pid_t holder;
	int held = lock_holder(lfd, &holder);

	if (held == -1) {
		snprintf(err, len, "pid file %s: its lock: %s", path,
		    strerror(errno));
		return EX_UNAVAIL_;
	}
	if (held == 0) {
		snprintf(err, len, "pid file %s is stale: no fugue holds its "
		    "lock, so pid %ld is not signalled", path, (long)pid);
		return EX_UNAVAIL_;
	}
	if (holder == pid)
		return 0;
	if (holder > 0)
		snprintf(err, len, "pid file %s names pid %ld, but pid %ld "
		    "holds its lock: signalling neither", path, (long)pid,
		    (long)holder);
	else
		snprintf(err, len, "pid file %s names pid %ld, but a process "
		    "outside this pid namespace holds its lock: not signalling",
		    path, (long)pid);
	return EX_DATAERR_;
}

static int
pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

static int
pidfd_signal_(int pfd, int sig)
{
#ifdef SYS_pidfd_send_signal
	return (int)syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0);
#else
	(void)pfd;
	(void)sig;
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * sig to pid, vouched for by lfd's lock: through a pidfd, which pins the
 * process, with the lock asked again after that, so that a pid reused in
 * between is never hit. Kernels without pidfds get kill(2) right after
 * the one check.
 */
static int
signal_vouched(int lfd, const char *path, pid_t pid, int sig, char *err,
    size_t len)
{
	int pfd = pidfd_open_(pid), r, e;

	if (pfd == -1)		/* ESRCH: gone since; else no pidfds here */
		r = errno == ESRCH ? -1 : kill(pid, sig);
	else if ((r = vouch(lfd, path, pid, err, len)) == 0)
		r = pidfd_signal_(pfd, sig);
	e = errno;
	if (pfd != -1)
		close(pfd);
	if (r != -1)
		return r;
	snprintf(err, len, "signal %s to pid %ld: %s", signal_name(sig),
	    (long)pid, strerror(e));
	return EX_UNAVAIL_;
}

int
pidfile_signal(const char *path, int sig, pid_t *pidp, char *err, size_t len)
{
	char *lpath = lock_path(path);
	int lfd = -1, r = EX_UNAVAIL_;
	pid_t pid;

	if ((pid = pid_file_read(path, err, len)) > 0 && (lfd = open_regular(
	    "lock file", lpath, O_RDONLY, 0, NULL, err, len)) == -1 &&
	    errno == ENOENT)
		snprintf(err, len, "pid file %s is stale: %s is missing, so no "
		    "fugue holds it", path, lpath);
	if (lfd != -1 && (r = vouch(lfd, path, pid, err, len)) == 0)
		r = signal_vouched(lfd, path, pid, sig, err, len);
	if (lfd != -1)
		close(lfd);
	free(lpath);
	*pidp = pid;
	return r;
}

int
pidfile_adopt(const char *path, int *fdp, char *err, size_t len)
{
	char *lpath = lock_path(path);
	int r = 0, fd;

	if (*fdp >= 0 && !same_file(*fdp, lpath) &&
	    (r = lock_take(lpath, &fd, err, len)) == 0) {
		close(*fdp);
		*fdp = fd;
	}
	free(lpath);
	return r;
}
