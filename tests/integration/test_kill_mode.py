"""[worker] kill_mode: who gets the stop signal and SIGKILL, at a graceful
stop, a quick stop and the watchdog. The worker is a parent with one child
of its own (a server with a CGI child, a prefork pool); each writes what it
receives to an events file, one line per event, "who pid event"."""

import os
import re
import signal
import sys

from harness import all_pids, check, pid_alive, proc_stat, wait_until

# argv: on-stop (wait: wait for the child; exit: exit at once), the events
# file, and "notify" to send READY=1 (and never WATCHDOG=1).
FAMILY = r'''
import os, signal, socket, sys
on_stop, events = sys.argv[1], sys.argv[2]

def note(who, what):
    fd = os.open(events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, ("%s %d %s\n" % (who, os.getpid(), what)).encode())
    os.close(fd)

def child_term(*_):
    note("child", "TERM")
    os._exit(0)

# The child's handlers, set before the fork: nothing it gets is lost.
signal.signal(signal.SIGTERM, child_term)
signal.signal(signal.SIGUSR1, lambda *_: note("child", "USR1"))
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    note("child", "up")
    os.write(w, b"x")
    while True:
        signal.pause()
os.read(r, 1)           # the child is up before the worker says it is

def parent_term(*_):
    note("parent", "TERM")
    if on_stop == "exit":
        os._exit(0)

signal.signal(signal.SIGTERM, parent_term)
note("parent", "up")
if len(sys.argv) > 3:
    path = os.environ["NOTIFY_SOCKET"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(b"READY=1", path)
os.waitpid(pid, 0)      # the child exits only on TERM
os._exit(0)
'''

KILLED = r"still running.*sending KILL"


def _events(t):
    try:
        with open(t.path("events")) as fh:
            return [tuple(l.split()) for l in fh.read().splitlines()]
    except FileNotFoundError:
        return []


def _pids(t, who, what="up"):
    return [int(p) for w, p, e in _events(t) if w == who and e == what]


def _start(t, kill_mode=None, on_stop="wait", notify=False, **worker):
    script = t.write("family.py", FAMILY)
    cmd = "%s -S %s %s %s%s" % (sys.executable, script, on_stop,
                               t.path("events"), " notify" if notify else "")
    if kill_mode:
        worker["kill_mode"] = kill_mode
    conf = t.basic_config(count=1, command=cmd, kill_timeout="1s",
                          ready="notify" if notify else "200ms",
                          worker=worker)
    f = t.start_ready(conf, 1)
    wait_until(lambda: _pids(t, "parent"), 10, what="the worker to start")
    child = _pids(t, "child")[0]
    t.remember(child, *_pids(t, "parent"))
    return f, child


def _gone(pid):
    wait_until(lambda: not pid_alive(pid), 10,
               what="pid %d to be gone" % pid)


def _alive(t, pid):
    # It takes a USR1 and answers: a SIGKILL sent to it would have come
    # first. Then the test ends it, as nobody else will.
    os.kill(pid, signal.SIGUSR1)
    wait_until(lambda: ("child", str(pid), "USR1") in _events(t), 10,
               what="the child (pid %d) to answer USR1" % pid)
    os.kill(pid, signal.SIGKILL)
    _gone(pid)


def test_kill_mode_mixed_is_the_default(t):
    # The stop signal reaches the worker alone; the child it waits for
    # gets SIGKILL with it at kill_timeout.
    f, child = _start(t)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    ev = [(w, e) for w, _, e in _events(t)]
    check(("parent", "TERM") in ev, "the worker got no TERM: %s" % ev)
    check(("child", "TERM") not in ev, "its child got TERM: %s" % ev)
    check(re.search(KILLED, f.log()), "no SIGKILL at kill_timeout: %s"
          % f.log()[-400:])
    _gone(child)


def test_kill_mode_mixed_worker_exits_first(t):
    # The worker exits on TERM and leaves its child: what is left of its
    # process group is killed as it is reaped, not left running.
    f, child = _start(t, "mixed", on_stop="exit")
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    ev = [(w, e) for w, _, e in _events(t)]
    check(("child", "TERM") not in ev, "its child got TERM: %s" % ev)
    check(re.search(r"leaving processes in its process group; killed them",
                    f.log()), "no line about the rest of the group: %s"
          % f.log()[-400:])
    _gone(child)


def test_kill_mode_mixed_quick_stop(t):
    # INT: the same, with SIGKILL after one second.
    f, child = _start(t)
    f.signal(signal.SIGINT)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    ev = [(w, e) for w, _, e in _events(t)]
    check(("parent", "TERM") in ev and ("child", "TERM") not in ev,
          "events %s" % ev)
    check(re.search(KILLED, f.log()), "no SIGKILL: %s" % f.log()[-400:])
    _gone(child)


def test_kill_mode_group(t):
    # Both signals to the whole group: the child stops on TERM, and the
    # worker after it, before kill_timeout.
    f, child = _start(t, "group")
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    ev = [(w, e) for w, _, e in _events(t)]
    check(("parent", "TERM") in ev and ("child", "TERM") in ev,
          "events %s" % ev)
    check(not re.search(KILLED, f.log()), "killed at kill_timeout: %s"
          % f.log()[-400:])
    _gone(child)


def test_kill_mode_group_quick_stop(t):
    f, child = _start(t, "group")
    f.signal(signal.SIGINT)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    ev = [(w, e) for w, _, e in _events(t)]
    check(("parent", "TERM") in ev and ("child", "TERM") in ev,
          "events %s" % ev)


def test_kill_mode_process(t):
    # Both signals to the worker process alone: its child gets neither,
    # and outlives it (then it is the test's to end).
    f, child = _start(t, "process")
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    ev = [(w, e) for w, _, e in _events(t)]
    check(("parent", "TERM") in ev and ("child", "TERM") not in ev,
          "events %s" % ev)
    check(re.search(KILLED, f.log()), "no SIGKILL at kill_timeout: %s"
          % f.log()[-400:])
    _alive(t, child)


def test_kill_mode_process_quick_stop(t):
    f, child = _start(t, "process")
    f.signal(signal.SIGINT)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    ev = [(w, e) for w, _, e in _events(t)]
    check(("parent", "TERM") in ev and ("child", "TERM") not in ev,
          "events %s" % ev)
    _alive(t, child)


def _watchdog(t, kill_mode):
    f, child = _start(t, kill_mode, notify=True, watchdog="300ms")
    worker = _pids(t, "parent")[0]
    t.expect_error(r"sent no WATCHDOG=1 for 300ms; killing it")
    f.wait_log(r"worker 0 \(pid %d\) sent no WATCHDOG=1" % worker)
    # Reaped: the SIGKILL was sent before.
    f.wait_log(r"worker 0 \(pid %d\) killed by signal KILL" % worker)
    return f, child


def _end_watchdog(t, f):
    # The workers that replaced the first one are stopped; with process,
    # what is left of their process groups (each worker leads one) is the
    # test's to end.
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    workers = {int(p) for p in re.findall(r"worker \d+ \(pid (\d+)\)",
                                          f.log())}
    for pid in all_pids():
        st = proc_stat(pid)
        if st is not None and st[2] in workers and pid_alive(pid):
            t.remember(pid)
            os.kill(pid, signal.SIGKILL)


def test_kill_mode_mixed_watchdog(t):
    # The watchdog's SIGKILL goes to the whole group.
    f, child = _watchdog(t, "mixed")
    _gone(child)
    check(("child", str(child), "TERM") not in _events(t),
          "the child got TERM")
    _end_watchdog(t, f)


def test_kill_mode_process_watchdog(t):
    # ... and with process, to the worker alone.
    f, child = _watchdog(t, "process")
    _alive(t, child)
    _end_watchdog(t, f)
