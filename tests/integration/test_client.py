"""The clients (status, reload, upgrade, -s) and the -d launcher: every wait
is bounded (-w/--timeout, exit 124 with one line), and SIGINT ends a
waiting client at once, although the master's signals are held in main."""

import os
import re
import signal
import subprocess
import time

import harness
from harness import (FUGUE, check, descendants_of, pid_alive, proc_fds,
                     proc_stat, timeout, wait_until)

TIMED_OUT = 124


def _start(t, **kw):
    sock = t.path("ctl.sock")
    conf = t.basic_config(count=1, master={"control_socket": sock}, **kw)
    f = t.start_ready(conf, 1)
    return f, conf, sock


def _stop(t, f):
    """SIGSTOP the master: it can answer nothing until SIGCONT (or the
    cleanup's SIGKILL)."""
    f.signal(signal.SIGSTOP)
    wait_until(lambda: (proc_stat(f.pid) or "?")[0] == "T", 5,
               what="fugue (pid %d) to stop" % f.pid)


def _timed_run(t, args, limit):
    t0 = time.monotonic()
    rc, out, err = t.run(args, timeout=limit)
    return rc, out, err, time.monotonic() - t0


def _one_line(err):
    lines = err.splitlines()
    check(len(lines) == 1 and lines[0].startswith("fugue: "),
          "not one line on stderr: %r" % err)
    return lines[0]


def test_status_bounded_against_a_stopped_master(t):
    f, conf, sock = _start(t)
    _stop(t, f)
    rc, out, err, took = _timed_run(t, ["-c", conf, "status", "-w", "1s"], 10)
    check(rc == TIMED_OUT, "status exited %d, want %d: %r"
          % (rc, TIMED_OUT, out + err))
    check(1.0 <= took < 4.0, "status took %.1fs with -w 1s" % took)
    line = _one_line(err)
    check(sock in line and "1s" in line, "the line names neither the "
          "socket nor the bound: %r" % line)
    f.signal(signal.SIGCONT)
    rc, out, err = t.run(["-c", conf, "status", "--timeout=5s"])
    check(rc == 0, "status after SIGCONT exited %d: %r" % (rc, out + err))


@timeout(40)
def test_status_bounded_by_default(t):
    f, conf, sock = _start(t)
    _stop(t, f)
    rc, out, err, took = _timed_run(t, ["-c", conf, "status"], 25)
    check(rc == TIMED_OUT, "status exited %d, want %d: %r"
          % (rc, TIMED_OUT, out + err))
    check(9.5 <= took < 14, "status gave up after %.1fs, want 10s" % took)
    _one_line(err)


def test_reload_bounded(t):
    f, conf, sock = _start(t)
    _stop(t, f)
    rc, out, err, took = _timed_run(t, ["-c", conf, "reload",
                                        "--timeout", "500ms"], 10)
    check(rc == TIMED_OUT, "reload exited %d, want %d: %r"
          % (rc, TIMED_OUT, out + err))
    check(took < 3.5, "reload took %.1fs with --timeout 500ms" % took)
    _one_line(err)


def _client(t, args, name="client"):
    """A client left to wait; its stderr goes to a file (the daemon of -d
    would keep a pipe open)."""
    errf = open(t.path(name + ".err"), "w+b")
    p = subprocess.Popen([FUGUE] + args, stdin=subprocess.DEVNULL,
                         stdout=errf, stderr=errf, cwd=t.dir,
                         preexec_fn=harness._die_with_runner)
    t.remember(p.pid)
    p.errf = errf
    return p


def _stderr(p):
    p.errf.seek(0)
    return p.errf.read().decode("utf-8", "replace")


def _blocked(pid, fd_kind):
    """pid sleeps with an fd of that kind ("socket", "pipe") open."""
    st = proc_stat(pid)
    if st is None or st[0] != "S":
        return False
    try:
        return any(v.startswith(fd_kind + ":") for v in proc_fds(pid).values())
    except OSError:
        return False


def _interrupted(t, p, what):
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=3)
    except subprocess.TimeoutExpired:
        check(False, "%s ignored SIGINT for 3s" % what)
    check(p.returncode == -signal.SIGINT, "%s exited %s after SIGINT, "
          "want death by SIGINT: %r" % (what, p.returncode, _stderr(p)))


def test_sigint_ends_a_waiting_reload(t):
    f, conf, sock = _start(t)
    _stop(t, f)
    p = _client(t, ["-c", conf, "reload"])
    wait_until(lambda: _blocked(p.pid, "socket"), 5,
               what="the reload client to wait for its answer")
    _interrupted(t, p, "fugue reload")


def _slow_daemon_config(t):
    """Workers that take 30s to count as ready: the launcher waits."""
    logf = t.path("app.log")
    pidf = t.path("fugue.pid")
    conf = t.basic_config(count=1, ready="30s",
                          master={"log_file": logf, "pid_file": pidf})
    return conf, logf


def _daemon_of(t, launcher_pid, logf):
    """The daemon forked by the launcher, once it started its workers."""
    kids = wait_until(lambda: harness.children_of(launcher_pid), 5,
                      what="the -d launcher to fork the daemon")
    t.remember(*kids)
    pid = kids[0]
    wait_until(lambda: os.path.exists(logf) and
               "starting 1 worker:" in open(logf).read(), 10,
               what="the daemon to start its workers")
    t.remember(*descendants_of(pid))
    return pid


def test_daemon_launcher_bounded(t):
    conf, logf = _slow_daemon_config(t)
    t0 = time.monotonic()
    p = _client(t, ["-c", conf, "-d", "-w", "1s"])
    pid = _daemon_of(t, p.pid, logf)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        check(False, "the -d launcher was still waiting 10s later")
    took = time.monotonic() - t0
    err = _stderr(p)
    check(p.returncode == TIMED_OUT, "fugue -d exited %d, want %d: %r"
          % (p.returncode, TIMED_OUT, err))
    check(took < 4, "the -d launcher took %.1fs with -w 1s" % took)
    line = _one_line(err)
    check(re.search(r"\bpid %d\b" % pid, line), "the line does not name the "
          "daemon's pid %d: %r" % (pid, line))
    check(pid_alive(pid), "the daemon died with its launcher")


def test_sigint_ends_the_daemon_launcher(t):
    conf, logf = _slow_daemon_config(t)
    p = _client(t, ["-c", conf, "-d"])
    pid = _daemon_of(t, p.pid, logf)
    wait_until(lambda: _blocked(p.pid, "pipe"), 5,
               what="the launcher to wait for the daemon")
    _interrupted(t, p, "the -d launcher")
    check(pid_alive(pid), "the daemon died with its launcher")


def test_timeout_usage(t):
    conf = t.basic_config(count=1)
    for args, want in ((["status", "-w"], "needs a value"),
                       (["status", "-w", "soon"], "soon"),
                       (["status", "--timeout", "0"], "0"),
                       (["-w", "1s"], "-w")):
        rc, out, err = t.run(["-c", conf] + args)
        check(rc == 64, "fugue %s exited %d, want 64: %r"
              % (" ".join(args), rc, err))
        check(want in err, "fugue %s: %r does not mention %r"
              % (" ".join(args), err, want))
