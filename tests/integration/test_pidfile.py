"""The pid file: written, locked against a second fugue, removed, stale
files taken over, symlinks refused."""

import errno
import fcntl
import os
import pwd
import signal
import stat
import struct
import subprocess

from harness import Skip, check, free_port, needs_root, pid_alive, wait_until


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
    # The lock is a POSIX write lock on PATH.lock, which only fugue's user
    # may open: while fugue runs, taking it fails, and F_GETLK names fugue.
    pidf = t.path("fugue.pid")
    conf = t.basic_config(count=1, master={"pid_file": pidf})
    f = t.start_ready(conf, 1)
    lockf = pidf + ".lock"
    st = os.lstat(lockf)
    check(stat.S_ISREG(st.st_mode) and st.st_mode & 0o7777 == 0o600 and
          st.st_uid == os.geteuid(), "%s: mode %o, owner %d, want a regular "
          "file, 0600, ours" % (lockf, st.st_mode, st.st_uid))
    check(os.stat(pidf).st_mode & 0o7777 == 0o644, "the pid file is not "
          "0644 (readable by tools)")
    fd = os.open(lockf, os.O_RDWR)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            check(False, "%s is not locked by the running fugue" % lockf)
        except OSError as e:
            check(e.errno in (errno.EACCES, errno.EAGAIN), "lockf: %s" % e)
        fl = fcntl.fcntl(fd, fcntl.F_GETLK,
                         struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))
        holder = struct.unpack("hhqqi", fl)[4]
        check(holder == f.pid, "F_GETLK names pid %d, want fugue's %d"
              % (holder, f.pid))
    finally:
        os.close(fd)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    check(not os.path.exists(lockf), "lock file left after exit")


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


# Run as nobody: open every regular file of a directory that nobody can
# read and hold every lock a read-only descriptor allows on it (flock
# LOCK_EX, and a POSIX read lock, which keeps out a write lock), until its
# stdin closes. Prints the names it holds a lock on.
_LOCK_ALL = r"""
import fcntl, os, stat, sys
held = []
for name in sorted(os.listdir(sys.argv[1])):
    path = os.path.join(sys.argv[1], name)
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            continue
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        continue
    for lock in (lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB),
                 lambda: fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)):
        try:
            lock()
            held.append(name)
        except OSError:
            pass
print(" ".join(sorted(set(held))), flush=True)
sys.stdin.read()
"""

SYSTEM_PYTHON = "/usr/bin/python3"


def _as_nobody():
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody")
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        raise Skip("no %s for nobody to run" % SYSTEM_PYTHON)

    def drop():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return drop


def _lock_all_as_nobody(t):
    """nobody holds every lock it can on the files of t.dir until _end();
    returns the process and the names it holds a lock on."""
    p = subprocess.Popen([SYSTEM_PYTHON, "-c", _LOCK_ALL, t.dir], cwd="/",
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         preexec_fn=_as_nobody(), close_fds=True)
    t.remember(p.pid)
    return p, p.stdout.readline().decode().split()


def _sleeper(t):
    """A live process of ours that fugue has nothing to do with."""
    p = subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL)
    t.remember(p.pid)
    return p


def _end(*procs):
    """End the helpers a test started (the locker when its stdin closes)."""
    for p in procs:
        if p.stdin:
            p.stdin.close()
        else:
            p.kill()
        p.wait(5)


def _killed(t, conf):
    """A fugue killed with SIGKILL: its pid file (and lock) left stale."""
    f = t.start_ready(conf, 1, log="killed.log", name="killed fugue")
    kids = f.children()
    f.signal(signal.SIGKILL)
    f.wait_exit(10)
    wait_until(lambda: not any(pid_alive(k) for k in kids), 10,
               what="the killed fugue's workers to exit")
    return f


@needs_root("to lock the stale pid file as another user (nobody)")
def test_stale_pid_file_locked_by_another_user(t):
    # Whatever another user can open, it can lock: none of it may stop
    # fugue from starting.
    pidf = t.path("fugue.pid")
    conf = t.basic_config(count=1, master={"pid_file": pidf})
    dead = _killed(t, conf)
    check(_read(pidf).strip() == str(dead.pid), "no stale pid file left")
    locker, held = _lock_all_as_nobody(t)
    check("fugue.pid" in held, "nobody could not lock the pid file (%s): "
          "the test proves nothing" % held)
    f = t.start_ready(conf, 1)
    check(_read(pidf) == "%d\n" % f.pid, "pid file holds %r, want %d"
          % (_read(pidf), f.pid))
    _end(locker)


@needs_root("to lock the stale pid file as another user (nobody)")
def test_signal_never_through_stale_pid_file(t):
    # The master died; its pid now names another process; somebody holds
    # what locks they can on the file: -s signals nobody, and says so.
    pidf = t.path("fugue.pid")
    conf = t.basic_config(count=1, master={"pid_file": pidf})
    _killed(t, conf)
    victim = _sleeper(t)
    with open(pidf, "w") as fh:
        fh.write("%d\n" % victim.pid)
    locker, held = _lock_all_as_nobody(t)
    check("fugue.pid" in held, "nobody could not lock the pid file (%s): "
          "the test proves nothing" % held)
    rc, out, err = t.run(["-c", conf, "-s", "stop"])
    check(victim.poll() is None, "fugue -s stop signalled pid %d, which a "
          "stale pid file named (it died: %s)" % (victim.pid, victim.poll()))
    check(rc == 69, "fugue -s stop exited %d, want 69: %s" % (rc, err))
    check(len(err.splitlines()) == 1 and "stale" in err and pidf in err,
          "not one line naming the stale pid file: %r" % err)
    _end(locker, victim)


def test_signal_refused_when_pid_file_names_another_pid(t):
    # A running master holds the lock, but the file names another process:
    # the file is not believed.
    pidf = t.path("fugue.pid")
    conf = t.basic_config(count=1, master={"pid_file": pidf})
    f = t.start_ready(conf, 1)
    victim = _sleeper(t)
    with open(pidf, "w") as fh:
        fh.write("%d\n" % victim.pid)
    rc, out, err = t.run(["-c", conf, "-s", "stop"])
    check(victim.poll() is None, "fugue -s stop signalled pid %d, which the "
          "pid file named without holding its lock" % victim.pid)
    check(f.alive(), "the master died")
    check(rc == 65, "fugue -s stop exited %d, want 65: %s" % (rc, err))
    check(len(err.splitlines()) == 1 and str(victim.pid) in err and
          str(f.pid) in err, "not one line naming both pids: %r" % err)
    _end(victim)
