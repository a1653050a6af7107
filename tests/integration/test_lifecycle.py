"""Crash loops, failed starts, master death, graceful and quick stops."""

import os
import re
import shutil
import signal
import time

from harness import (WORKER, all_pids, check, collect_ids, connect_refused,
                     fail, http_get, inherit, parse_duration_ms, pid_alive,
                     pid_exists, poll_for, proc_fds, proc_stat, timeout,
                     wait_until)

# "worker 0 exited with status 1; restarting in 200ms" (a "(pid N)" after the
# slot is fine too).
RESTART_RE = (r"fugue \(pid %d\) \w+: worker 0 (?:\(pid \d+\) )?exited with "
              r"status %d; restarting in (\S+)")


def _delays(f, code):
    rx = re.compile(RESTART_RE % (f.pid, code))
    return [parse_duration_ms(m.group(1)) for m in rx.finditer(f.log())]


@timeout(30)
def test_crash_loop_backs_off(t):
    # Ready after 100 ms, crashes 300 ms after start: every exit is within
    # 1 s of readiness, so the delays double from 100 ms up to the cap.
    conf = t.basic_config(count=1, mode="crash --after 300 --code 3",
                          ready="100ms",
                          worker={"restart_delay_max": "800ms"})
    f = t.start(conf)
    f.wait_ready(1, 5)
    t0 = time.monotonic()
    f.wait_log(RESTART_RE % (f.pid, 3), 10, count=5)
    elapsed = time.monotonic() - t0
    delays = _delays(f, 3)[:5]
    check(delays == [100, 200, 400, 800, 800],
          "restart delays %s, want [100, 200, 400, 800, 800] (doubling from "
          "100ms, capped by restart_delay_max)" % delays)
    # 5 exits need 5 runs of 300 ms plus 100+200+400+800 ms of delays.
    check(elapsed >= 2.5, "5 crashes after only %.2fs: the delays were not "
          "honoured" % elapsed)
    check(f.alive(), "fugue exited (status %s) because a worker crashed" % f.rc)
    # Still supervising: the slot keeps being restarted.
    n = len(_delays(f, 3))
    f.wait_log(RESTART_RE % (f.pid, 3), 5, count=n + 1)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s after TERM" % f.rc)


@timeout(30)
def test_crash_loop_no_fork_storm(t):
    # A worker that dies at once, with ready = 0 (ready as soon as the exec
    # succeeded): in 3 s the backoff allows a handful of starts, not dozens.
    conf = t.basic_config(count=1, mode="crash", ready="0",
                          worker={"ready_timeout": "10s"})
    f = t.start(conf)
    time.sleep(3.0)  # the duration of the observation itself
    check(f.alive(), "fugue exited (status %s) while its worker crash-looped"
          % f.rc)
    exits = re.findall(r"fugue \(pid %d\) \w+: worker 0 (?:\(pid \d+\) )?"
                       r"exited with status 1" % f.pid, f.log())
    check(1 <= len(exits) <= 8,
          "%d worker exits logged in 3s (want a few, with backoff)" % len(exits))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s after TERM" % f.rc)


def test_missing_command_exits_69(t):
    conf = t.basic_config(count=2, command="/nonexistent/x serve")
    f = t.start(conf)
    t.expect_error(r"/nonexistent/x")
    rc = f.wait_exit(10)
    check(rc == 69, "fugue exited %s, want 69 for a missing command" % rc)
    lines = [l for l in f.log_lines() if "/nonexistent/x" in l]
    check(len(lines) == 1, "want exactly one line naming /nonexistent/x, got "
          "%d: %s" % (len(lines), lines))
    check(time.monotonic() - f.t0 < 5, "took %.1fs to give up"
          % (time.monotonic() - f.t0))


def test_not_executable_command_exits_69(t):
    script = t.write("notexec.sh", "#!/bin/sh\nexit 0\n", mode=0o644)
    conf = t.basic_config(count=1, command=script)
    f = t.start(conf)
    t.expect_error(re.escape(script))
    rc = f.wait_exit(10)
    check(rc == 69, "fugue exited %s, want 69 for a non-executable command" % rc)
    check(script in f.log(), "no line names %s" % script)


def test_bad_interpreter_exits_69(t):
    # Exists and is executable, but its #! interpreter does not: the exec
    # fails in the child; the first generation can never be ready.
    script = t.write("badinterp.sh", "#!/nonexistent/interp\n", mode=0o755)
    conf = t.basic_config(count=1, command=script,
                          worker={"ready_timeout": "2s"})
    f = t.start(conf)
    t.expect_error(re.escape(script))
    rc = f.wait_exit(10)
    check(rc == 69, "fugue exited %s, want 69" % rc)
    check(script in f.log(), "no line names %s" % script)


@timeout(40)
def test_exec_failure_at_runtime_logged_once_with_backoff(t):
    # The command exists at start; it disappears before a respawn. Each
    # failed exec counts as a crash (backoff) and the error is logged once,
    # not once per retry; when the file is back the slot runs it again.
    copy = t.path("w")
    shutil.copy(WORKER, copy)
    os.chmod(copy, 0o755)
    conf = t.basic_config(count=1, command="%s crash --after 400" % copy,
                          ready="100ms",
                          worker={"restart_delay_max": "1s"})
    f = t.start(conf)
    f.wait_ready(1, 5)
    os.unlink(copy)
    t.expect_error(re.escape(copy))
    time.sleep(3.0)  # the observation window
    check(f.alive(), "fugue exited (status %s) after exec failures" % f.rc)
    err_lines = [l for l in f.master_lines("error") if copy in l]
    check(len(err_lines) >= 1, "no log line names the missing command %s"
          % copy)
    check(len(err_lines) == 1, "the exec failure was logged %d times in 3s "
          "(want once, not per retry): %s" % (len(err_lines), err_lines[:4]))
    check("No such file" in err_lines[0], "the error does not say why: %s"
          % err_lines[0])
    restarts = re.findall(r"restarting in (\S+)", f.log())
    check(len(restarts) <= 8, "%d restarts in 3s: no backoff on exec failure"
          % len(restarts))
    # Once the file is back the slot runs it again: it crashes as before
    # (status 1), not with the exec failure's status.
    shutil.copy(WORKER, copy)
    os.chmod(copy, 0o755)
    n = len(re.findall(r"worker 0 .*exited with status 1;", f.log()))
    f.wait_log(r"worker 0 .*exited with status 1;", 10, count=n + 1)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s after TERM" % f.rc)


@timeout(30)
def test_first_generation_never_ready_exits_69(t):
    conf = t.basic_config(count=2, mode="crash", ready="1s",
                          worker={"ready_timeout": "2s"})
    f = t.start(conf)
    t.expect_error(r".")  # the reason is logged as an error
    seen = set()

    def exited():
        seen.update(f.children())
        return f.poll() is not None
    wait_until(exited, 10, interval=0.01, what="fugue to give up")
    check(f.rc == 69, "fugue exited %s, want 69" % f.rc)
    took = f.exit_time - f.t0
    # Workers that only exit: given up after 3 failed starts of each slot
    # (~0.7 s of backoff), before ready_timeout.
    check(took <= 6, "fugue gave up after %.1fs" % took)
    check("failed to start 3 times in a row" in f.log(),
          "fugue did not give up for the failed starts")
    left = [p for p in seen if pid_alive(p)]
    check(not left, "workers left running after exit 69: %s" % left)
    check(connect_refused(t.port), "port %d still accepts connections" % t.port)


def test_no_ready_with_notify_exits_69(t):
    conf = t.basic_config(count=1, mode="no-ready", ready="notify",
                          worker={"ready_timeout": "1s"})
    f = t.start(conf)
    t.expect_error(r".")
    seen = set()

    def exited():
        seen.update(f.children())
        return f.poll() is not None
    wait_until(exited, 10, interval=0.01, what="fugue to give up")
    check(f.rc == 69, "fugue exited %s, want 69" % f.rc)
    left = [p for p in seen if pid_alive(p)]
    check(not left, "workers left running after exit 69: %s" % left)


def test_notify_readiness(t):
    # ready = notify: "ready" only once the worker sent READY=1.
    conf = t.basic_config(count=2, mode="slow-ready 800", ready="notify",
                          worker={"ready_timeout": "10s"})
    f = t.start(conf)
    f.wait_ready(2, 10)
    took = time.monotonic() - f.t0
    check(took >= 0.7, "ready after %.2fs, before the workers sent READY=1 "
          "(800 ms)" % took)
    collect_ids(t.port, [0, 1], test=t)
    # The worker got NOTIFY_SOCKET, and no fd of the notify socket.
    rep = inherit(t.port)
    check(rep["env"].get("NOTIFY_SOCKET"), "no NOTIFY_SOCKET with ready = notify")
    fds = sorted(int(e["fd"]) for e in rep["fds"])
    check(fds == [0, 1, 2, 3], "worker fds %s, want [0, 1, 2, 3]" % fds)


@timeout(30)
def test_master_kill9_kills_workers(t):
    conf = t.basic_config(count=3)
    f = t.start_ready(conf, 3)
    kids = f.children()
    check(len(kids) == 3, "children %s" % kids)
    os.kill(f.pid, signal.SIGKILL)
    f.wait_exit(5)
    left = poll_for(lambda: not [p for p in kids if pid_alive(p)], 5)
    check(left, "workers still alive 5s after the master's SIGKILL: %s"
          % [p for p in kids if pid_alive(p)])
    wait_until(lambda: connect_refused(t.port), 5,
               what="port %d to refuse connections" % t.port)


def test_master_death_signal_kill(t):
    # master_death_signal = KILL reaches even a worker that ignores TERM.
    conf = t.basic_config(count=2, mode="ignore-term",
                          worker={"master_death_signal": "KILL"})
    f = t.start_ready(conf, 2)
    kids = f.children()
    os.kill(f.pid, signal.SIGKILL)
    f.wait_exit(5)
    ok = poll_for(lambda: not [p for p in kids if pid_alive(p)], 3)
    check(ok, "ignore-term workers survived the master's death with "
          "master_death_signal = KILL: %s" % [p for p in kids if pid_alive(p)])


def _inflight_stop(t, sig):
    unix = t.path("app.sock")
    pidf = t.path("fugue.pid")
    conf = t.basic_config(count=1, kill_timeout="10s",
                          master={"pid_file": pidf},
                          listen=[("address", "unix:" + unix)])
    f = t.start_ready(conf, 1)
    check(os.path.exists(pidf), "pid file %s missing" % pidf)
    check(os.path.exists(unix), "socket file %s missing" % unix)
    (w,) = f.children()
    base = set(proc_fds(w))
    box = t.background(http_get, t.port, "/slow?ms=1500", 10)
    # The request is in flight once the worker holds a new (accepted) fd.
    wait_until(lambda: set(proc_fds(w)) - base if pid_alive(w) else fail(
        "worker died"), 5, what="the worker to accept the slow request")
    t_sig = time.monotonic()
    f.signal(sig)
    rc = f.wait_exit(10)
    box["thread"].join(10)
    check("error" not in box, "the in-flight request failed: %r"
          % box.get("error"))
    status, body = box["result"]
    check(status == 200, "in-flight request answered %d" % status)
    check(rc == 0, "fugue exited %s after %s" % (rc, signal.Signals(sig).name))
    check(f.exit_time - t_sig >= 1.0, "fugue exited %.2fs after %s, before the "
          "1.5s request could finish" % (f.exit_time - t_sig,
                                         signal.Signals(sig).name))
    check(not os.path.exists(pidf), "pid file not removed at exit")
    check(not os.path.exists(unix), "UNIX socket file not removed at exit")
    check(not pid_alive(w), "worker %d still alive after fugue exited" % w)


def test_term_drains_inflight_request(t):
    _inflight_stop(t, signal.SIGTERM)


def test_quit_drains_inflight_request(t):
    _inflight_stop(t, signal.SIGQUIT)


def test_int_quick_stop(t):
    conf = t.basic_config(count=1, kill_timeout="30s")
    f = t.start_ready(conf, 1)
    (w,) = f.children()
    base = set(proc_fds(w))
    box = t.background(http_get, t.port, "/slow?ms=10000", 15)
    wait_until(lambda: set(proc_fds(w)) - base, 5,
               what="the worker to accept the slow request")
    t0 = time.monotonic()
    f.signal(signal.SIGINT)
    rc = f.wait_exit(5)
    took = time.monotonic() - t0
    check(rc == 0, "fugue exited %s after INT" % rc)
    check(took < 3, "INT took %.1fs; a quick stop kills after 1s" % took)
    check(not pid_alive(w), "worker %d still alive" % w)


def test_kill_timeout_for_worker_ignoring_term(t):
    conf = t.basic_config(count=1, mode="ignore-term", kill_timeout="1s")
    f = t.start_ready(conf, 1)
    (w,) = f.children()
    t0 = time.monotonic()
    f.signal(signal.SIGTERM)
    rc = f.wait_exit(10)
    took = time.monotonic() - t0
    check(rc == 0, "fugue exited %s" % rc)
    check(0.8 <= took <= 3, "stop took %.2fs, want ~1s (kill_timeout)" % took)
    wait_until(lambda: not pid_alive(w), 2, what="worker %d to be gone" % w)


def test_second_term_kills_at_once(t):
    conf = t.basic_config(count=2, mode="ignore-term", kill_timeout="20s")
    f = t.start_ready(conf, 2)
    kids = f.children()
    f.signal(signal.SIGTERM)
    # fugue acts on the first TERM (it logs the stop) before the second.
    f.wait_log(r"info: stopping 2 workers \(graceful\)", 5)
    check(f.alive(), "fugue exited on the first TERM with ignore-term workers")
    t0 = time.monotonic()
    f.signal(signal.SIGTERM)
    rc = f.wait_exit(5)
    took = time.monotonic() - t0
    check(rc == 0, "fugue exited %s" % rc)
    check(took < 2, "second TERM took %.1fs to stop fugue" % took)
    wait_until(lambda: not [p for p in kids if pid_alive(p)], 2,
               what="workers %s to be gone" % kids)


def _group(pgid):
    out = []
    for pid in all_pids():
        st = proc_stat(pid)
        if st and st[2] == pgid and st[0] not in ("Z", "X"):
            out.append(pid)
    return out


def test_worker_group_signalled_at_stop(t):
    # 'orphan --serve' forks a child (in the worker's process group) and
    # serves: at stop the worker alone drains and exits (kill_mode mixed),
    # and what is left of its group is killed then, so the child goes too.
    conf = t.basic_config(count=1, mode="orphan --serve --sleep 30000",
                          kill_timeout="2s")
    f = t.start_ready(conf, 1)
    (w,) = f.children()
    m = f.wait_log(r"(?:^|: )orphan (\d+)$", 5)
    child = int(m[0].group(1))
    t.remember(child)
    check(child in _group(w), "the child %d is not in the worker's group %s"
          % (child, _group(w)))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    ok = poll_for(lambda: not pid_alive(child), 3)
    check(ok, "the worker's child %d survived the stop" % child)


def test_subreaper_adopts_and_reaps_orphans(t):
    # With subreaper = yes, a worker's child orphaned by the worker's death
    # is re-parented to fugue, which reaps it when it exits.
    conf = t.basic_config(count=1, mode="orphan --serve --sleep 1500",
                          master={"subreaper": "yes"})
    f = t.start_ready(conf, 1)
    (w,) = f.children()
    m = f.wait_log(r"(?:^|: )orphan (\d+)$", 5)
    child = int(m[0].group(1))
    t.remember(child)
    os.kill(w, signal.SIGKILL)
    wait_until(lambda: (proc_stat(child) or (0, 0))[1] == f.pid, 3,
               what="the orphan %d to be re-parented to fugue %d (ppid %s)"
               % (child, f.pid, (proc_stat(child) or (0, 0))[1]))
    # It exits after 1.5 s; fugue reaps it (no zombie left behind).
    wait_until(lambda: not pid_exists(child), 5,
               what="the orphan %d to exit and be reaped by fugue" % child)
    check(f.alive(), "fugue exited")
    f.wait_children(1, 10)
