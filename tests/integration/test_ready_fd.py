"""ready = fd: each worker writes sd_notify lines (READY=1, WATCHDOG=1) to
the pipe numbered FUGUE_READY_FD, the fd right after the listeners; fugue
waits for READY=1 on it as on the notify socket, watches WATCHDOG=1 on it,
and keeps every worker's pipe across an upgrade."""

import re
import signal
import time

from harness import check, free_port, inherit, timeout, try_get
from loadgen import (Load, reload_done_re, wait_generation, wait_reaped,
                     workers_by_gen)


def _conf(t, count=2, mode="serve", port=None, **kw):
    master = kw.pop("master", {})
    master.setdefault("control_socket", t.path("ctl.sock"))
    worker = dict(kw.pop("worker", {}))
    worker.setdefault("ready_timeout", "20s")
    return t.basic_config(count=count, mode=mode, ready="fd", port=port,
                          master=master, worker=worker, **kw)


def test_ready_fd_is_a_pipe_after_the_listeners(t):
    # Two listeners: fds 3 and 4, the pipe is 5; LISTEN_FDS stays 2 and
    # no NOTIFY_SOCKET is set.
    port2 = free_port()
    conf = _conf(t, count=1, listen=[("address", "127.0.0.1:%d" % port2)])
    t.start_ready(conf, 1, timeout=20)
    rep = inherit(t.port)
    env = rep["env"]
    check(env.get("FUGUE_READY_FD") == "5" and env.get("LISTEN_FDS") == "2",
          "FUGUE_READY_FD=%r LISTEN_FDS=%r, want 5 and 2"
          % (env.get("FUGUE_READY_FD"), env.get("LISTEN_FDS")))
    check("NOTIFY_SOCKET" not in env, "NOTIFY_SOCKET=%r with ready = fd"
          % env.get("NOTIFY_SOCKET"))
    fds = {int(e["fd"]): e for e in rep["fds"]}
    check(sorted(fds) == [0, 1, 2, 3, 4, 5], "fds %s, want 0-5" % sorted(fds))
    check(str(fds[5]["target"]).startswith("pipe:"),
          "fd 5 is %s, not a pipe" % fds[5]["target"])
    check(not fds[3]["cloexec"] and not fds[5]["cloexec"],
          "close-on-exec set on an inherited fd: %s" % rep["fds"])


@timeout(60)
def test_ready_fd_gates_a_reload(t):
    # New workers write READY=1 after 1.5 s: until then generation 1
    # serves every request; the reload is "ok" only after it.
    conf = _conf(t, count=2)
    f = t.start_ready(conf, 2, timeout=20)
    _conf(t, count=2, mode="slow-ready 1500", port=t.port)
    with Load(t.port, new_conn=2) as load:
        load.wait_progress(10)
        t0 = time.monotonic()
        rc, out, err = t.run(["-c", conf, "reload"], timeout=40)
        took = time.monotonic() - t0
        load.wait_progress(10)
    load.check_clean(min_ok=20)
    check(rc == 0 and out.startswith("ok: generation 2"),
          "reload: %d %r %r" % (rc, out, err))
    check(took >= 1.4, "generation 2 committed %.2fs after the reload, "
          "before its workers wrote READY=1 (1.5 s)" % took)
    early = [s for s in load.samples if s.gen == 2 and s.t1 < t0 + 1.4]
    check(not early, "generation 2 answered before it was ready: %s"
          % early[:3])


@timeout(40)
def test_ready_fd_never_written_start_fails(t):
    conf = _conf(t, count=2, mode="no-ready", worker={"ready_timeout": "2s"})
    f = t.start(conf)
    t.expect_error(r".")
    rc = f.wait_exit(20)
    check(rc == 69, "fugue exited %s, want 69 (never ready)" % rc)
    check(re.search(r"first generation not ready: 0 of 2 workers ready",
                    f.log()), "the reason is not logged")


@timeout(60)
def test_ready_fd_watchdog_and_upgrade(t):
    # watchdog = 1s over the pipe: pinging workers survive an upgrade (the
    # pipes cross the exec: the adopted workers serve alone for 2.5 s while
    # the new generation gets ready), a silent one is killed.
    conf = _conf(t, count=2, worker={"watchdog": "1s"})
    f = t.start_ready(conf, 2, timeout=20)
    old = workers_by_gen(f)[1]
    pid0 = f.pid
    _conf(t, count=2, mode="slow-ready 2500", port=t.port,
          worker={"watchdog": "1s"})
    f.signal(signal.SIGUSR2)
    f.wait_log(reload_done_re(f, 2, "upgrade"), 30)
    new = wait_generation(f, 2, 2)
    wait_reaped(f, old)
    check(f.pid == pid0 and f.alive(), "the master changed or died")
    log = f.log()
    for p in old:
        check(re.search(r"\(pid %d\) exited with status 0" % p, log),
              "adopted worker %d was not drained with exit 0" % p)
    time.sleep(2.5)  # the observation window: 2.5 watchdog periods
    check(workers_by_gen(f) == {2: new}, "generation 2 changed: %s -> %s"
          % (new, workers_by_gen(f)))
    check("WATCHDOG" not in f.log(), "watchdog kills: %s"
          % [l for l in f.log_lines() if "WATCHDOG" in l])
    # A worker that never pings on its pipe is killed by the watchdog.
    _conf(t, count=1, mode="serve --no-watchdog", port=t.port,
          worker={"watchdog": "1s"})
    t.expect_error(r"sent no WATCHDOG=1")
    f.signal(signal.SIGHUP)
    f.wait_log(r"worker 0 \(pid \d+\) sent no WATCHDOG=1 for 1s; killing it",
               15)
    r = try_get(t.port)
    check(r and r[0] == 200, "no answer after the watchdog kill: %r" % (r,))
