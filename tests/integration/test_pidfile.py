"""The pid file: written, locked against a second fugue, removed, stale
files taken over, symlinks refused."""

import fcntl
import os
import signal

from harness import check, free_port


def _read(path):
    with open(path) as fh:
        return fh.read()


def test_pid_file_written_and_removed(t):
    pidf = t.path("fugue.pid")
    conf = t.basic_config(count=1, master={"pid_file": pidf})
    f = t.start_ready(conf, 1)
    check(_read(pidf).strip() == str(f.pid), "pid file holds %r, want %d"
          % (_read(pidf), f.pid))
    check(_read(pidf).endswith("\n"), "pid file does not end with a newline")
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    check(not os.path.exists(pidf), "pid file left after exit")


def test_second_fugue_refused(t):
    pidf = t.path("fugue.pid")
    conf = t.basic_config(count=1, master={"pid_file": pidf})
    f = t.start_ready(conf, 1)
    # Same pid file, another port: refused before binding anything.
    conf2 = t.basic_config(port=free_port(), count=1, name="second.conf",
                           master={"pid_file": pidf})
    g = t.start(conf2, log="second.log", name="second fugue")
    t.expect_error(r".")
    rc = g.wait_exit(10)
    check(rc == 75, "second fugue exited %s, want 75" % rc)
    check(str(f.pid) in g.log(), "the refusal does not name the running "
          "pid %d: %s" % (f.pid, g.log()[-300:]))
    check(not g.children(), "second fugue started workers")
    check(_read(pidf).strip() == str(f.pid), "pid file overwritten: %r"
          % _read(pidf))
    check(f.alive(), "the first fugue died")
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    check(not os.path.exists(pidf), "pid file left after exit")


def test_stale_pid_file_taken_over(t):
    pidf = t.path("fugue.pid")
    with open(pidf, "w") as fh:
        fh.write("999999999\n")   # longer than the pid that replaces it
    conf = t.basic_config(count=1, master={"pid_file": pidf})
    f = t.start_ready(conf, 1)
    check(_read(pidf) == "%d\n" % f.pid, "pid file holds %r, want %r"
          % (_read(pidf), "%d\n" % f.pid))


def test_pid_file_lock_held(t):
    # The lock lives on the inode: while fugue runs, flock on the file fails.
    pidf = t.path("fugue.pid")
    conf = t.basic_config(count=1, master={"pid_file": pidf})
    t.start_ready(conf, 1)
    fd = os.open(pidf, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            check(False, "the pid file is not locked by the running fugue")
        except BlockingIOError:
            pass
    finally:
        os.close(fd)


def test_pid_file_symlink_refused(t):
    target = t.path("target")
    with open(target, "w") as fh:
        fh.write("untouched\n")
    pidf = t.path("fugue.pid")
    os.symlink(target, pidf)
    conf = t.basic_config(count=1, master={"pid_file": pidf})
    f = t.start(conf)
    t.expect_error(r".")
    rc = f.wait_exit(10)
    check(rc == 73, "fugue exited %s, want 73 for a symlinked pid file" % rc)
    check(_read(target) == "untouched\n", "the symlink's target was written")
    check(os.path.islink(pidf), "the symlink was removed or replaced")
    check(not f.children(), "workers started")


def test_pid_file_dir_missing(t):
    pidf = t.path("nodir", "fugue.pid")
    conf = t.basic_config(count=1, master={"pid_file": pidf})
    rc, out, err = t.run(["-c", conf])
    check(rc == 73, "fugue exited %d for a pid file in a missing directory, "
          "want 73: %s" % (rc, err))


def test_signal_through_pid_file(t):
    # fugue -c FILE -s quit: QUIT to the master named by the pid file.
    pidf = t.path("fugue.pid")
    conf = t.basic_config(count=2, master={"pid_file": pidf})
    f = t.start_ready(conf, 2)
    rc, out, err = t.run(["-c", conf, "-s", "incr"])
    check(rc == 0, "fugue -s incr exited %d: %s" % (rc, err))
    f.wait_children(3, 10)
    rc, out, err = t.run(["-c", conf, "-s", "quit"])
    check(rc == 0, "fugue -s quit exited %d: %s" % (rc, err))
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    check(not os.path.exists(pidf), "pid file left after exit")
    rc, out, err = t.run(["-c", conf, "-s", "quit"])
    check(rc != 0, "fugue -s quit with no running master exited 0")
    check(err.strip(), "no message when no master runs")
