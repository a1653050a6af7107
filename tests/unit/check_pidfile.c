/* Unit tests of src/pidfile.c: the lock on PATH.lock (0600, refused when
 * others could hold it), a second taker told who holds it, -s believing
 * the pid file only when its lock holder is that pid, the removal, and an
 * upgrade from an image that locked the pid file itself. A POSIX lock
 * does not conflict with its own process, so whatever must see the lock
 * held by us runs in a child. */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pidfile.h"
#include "util.h"

static char dir[64], path[PATH_MAX], lpath[PATH_MAX + 8];
static char err[512];

static void
setup(void)
{
	strcpy(dir, "/tmp/check_pidfile.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/app.pid", dir);
	snprintf(lpath, sizeof(lpath), "%s.lock", path);
	err[0] = '\0';
}

static void
teardown(void)
{
	unlink(path);
	unlink(lpath);
	rmdir(dir);
}

static void
write_pid(pid_t pid)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fprintf(f, "%ld\n", (long)pid);
	fclose(f);
}

/* Run fn in a child; its exit status. The child reports its err line on
 * a pipe, into err. */
static int
in_child(int (*fn)(void))
{
	int p[2], status;
	ssize_t n;
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	if ((pid = fork()) == 0) {
		int r = fn();

		n = write(p[1], err, strlen(err));
		_exit(n < 0 ? 100 : r);
	}
	close(p[1]);
	n = read(p[0], err, sizeof(err) - 1);
	err[n > 0 ? n : 0] = '\0';
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int
try_open(void)
{
	int fd = -1;

	return pidfile_open(path, &fd, err, sizeof(err));
}

static pid_t signalled;

static int
try_signal(void)
{
	int r = pidfile_signal(path, 0, &signalled, err, sizeof(err));

	return r == 0 && signalled == getppid() ? 0 : r ? r : 99;
}

static void
said(const char *want)
{
	ck_assert_msg(strstr(err, want) != NULL, "said \"%s\", want \"%s\"",
	    err, want);
}

START_TEST(lock_held_and_named)
{
	struct stat st;
	char me[32];
	int fd = -1;

	ck_assert_int_eq(pidfile_open(path, &fd, err, sizeof(err)), 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(stat(lpath, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(pidfile_write(path, getpid()), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0644);
	snprintf(me, sizeof(me), "pid %ld holds", (long)getpid());
	ck_assert_int_eq(in_child(try_open), EX_TEMPFAIL_);
	said(me);
	ck_assert_int_eq(in_child(try_signal), 0);
	pidfile_remove(path, fd, getpid());
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(access(lpath, F_OK), -1);
	/* Once it is gone, the next one takes it. */
	ck_assert_int_eq(in_child(try_open), 0);
}
END_TEST

START_TEST(stale_pid_file_not_believed)
{
	int fd = -1;

	/* Nobody holds the lock (a master killed with SIGKILL): the pid, our
	 * own here, is not signalled. */
	ck_assert_int_eq(pidfile_open(path, &fd, err, sizeof(err)), 0);
	close(fd);
	write_pid(getpid());
	ck_assert_int_eq(pidfile_signal(path, 0, &signalled, err, sizeof(err)),
	    EX_UNAVAIL_);
	said("stale");
	unlink(lpath);
	ck_assert_int_eq(pidfile_signal(path, 0, &signalled, err, sizeof(err)),
	    EX_UNAVAIL_);
	said("stale");
}
END_TEST

START_TEST(holder_must_be_the_pid_in_the_file)
{
	char want[64];
	int fd = -1;

	ck_assert_int_eq(pidfile_open(path, &fd, err, sizeof(err)), 0);
	write_pid(1);
	ck_assert_int_eq(in_child(try_signal), EX_DATAERR_);
	snprintf(want, sizeof(want), "names pid 1, but pid %ld holds",
	    (long)getpid());
	said(want);
	/* Not removed: it does not hold our pid. */
	pidfile_remove(path, fd, getpid());
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_int_eq(access(lpath, F_OK), -1);
}
END_TEST

START_TEST(lock_file_others_could_hold_refused)
{
	int fd = open(lpath, O_WRONLY | O_CREAT, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fchmod(fd, 0644), 0);
	close(fd);
	fd = -1;
	ck_assert_int_eq(pidfile_open(path, &fd, err, sizeof(err)),
	    EX_CANTCREAT_);
	said("0600");
	ck_assert_int_eq(fd, -1);
}
END_TEST

START_TEST(symlinked_pid_file_refused_and_lock_dropped)
{
	int fd = -1;

	ck_assert_int_eq(symlink("/nonexistent", path), 0);
	ck_assert_int_eq(pidfile_open(path, &fd, err, sizeof(err)),
	    EX_CANTCREAT_);
	said("symbolic link");
	ck_assert_int_eq(access(lpath, F_OK), -1);
}
END_TEST

START_TEST(adopt_an_older_images_lock)
{
	struct stat a, b;
	int fd, lock;

	/* An older image kept the pid file's own fd as its lock. */
	write_pid(getpid());
	fd = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pidfile_adopt(path, &fd, err, sizeof(err)), 0);
	ck_assert_int_eq(fstat(fd, &a), 0);
	ck_assert_int_eq(stat(lpath, &b), 0);
	ck_assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	ck_assert_int_eq(in_child(try_signal), 0);
	/* The lock's own fd is kept as it is. */
	lock = fd;
	ck_assert_int_eq(pidfile_adopt(path, &fd, err, sizeof(err)), 0);
	ck_assert_int_eq(fd, lock);
	pidfile_remove(path, fd, getpid());
	ck_assert_int_eq(access(lpath, F_OK), -1);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

static Suite *
pidfile_suite(void)
{
	Suite *s = suite_create("pidfile");
	TCase *tc = tcase_create("pidfile");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, lock_held_and_named);
	tcase_add_test(tc, stale_pid_file_not_believed);
	tcase_add_test(tc, holder_must_be_the_pid_in_the_file);
	tcase_add_test(tc, lock_file_others_could_hold_refused);
	tcase_add_test(tc, symlinked_pid_file_refused_and_lock_dropped);
	tcase_add_test(tc, adopt_an_older_images_lock);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(pidfile_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
