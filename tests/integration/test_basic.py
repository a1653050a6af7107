"""Serving, respawn, scaling, the no-config form."""

import os
import re
import signal

from harness import (WORKER, check, collect_ids, free_port, parse_hello,
                     pid_alive, pid_exists, poll_for, try_get, wait_until)


def test_workers_have_distinct_ids(t):
    conf = t.basic_config(count=4)
    f = t.start_ready(conf, 4)
    seen = collect_ids(t.port, range(4), timeout=15, test=t)
    check(set(seen) == {0, 1, 2, 3},
          "worker ids seen: %s, want exactly 0..3" % sorted(seen))
    pids = {pid for pid, _ in seen.values()}
    check(len(pids) == 4, "4 ids but pids %s" % sorted(pids))
    kids = set(f.children())
    check(pids == kids, "answering pids %s are not fugue's children %s"
          % (sorted(pids), sorted(kids)))
    gens = {gen for _, gen in seen.values()}
    check(len(gens) == 1, "one generation expected, got %s" % sorted(gens))


def test_ready_line_counts_workers(t):
    conf = t.basic_config(count=3)
    f = t.start(conf)
    n = f.wait_ready(timeout=10)
    check(n == 3, "ready line says %d workers, want 3" % n)
    check(len(f.children()) == 3, "fugue has %d children, want 3"
          % len(f.children()))
    r = try_get(t.port)
    check(r is not None and r[0] == 200 and parse_hello(r[1]),
          "GET / answered %r" % (r,))


def test_one_worker_is_singular(t):
    # "1 worker", not "1 workers", in what fugue says about its count.
    conf = t.basic_config(count=1)
    f = t.start_ready(conf, 1)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    log = f.log()
    for want in (r"info: starting 1 worker: ", r"info: ready: 1 worker$",
                 r"info: stopping 1 worker \(graceful\)$"):
        check(re.search(want, log, re.M), "no %r in the log" % want)
    check(not re.search(r"\b1 workers\b", log), "\"1 workers\" in the log: %s"
          % log[-400:])


def test_kill9_worker_is_replaced(t):
    conf = t.basic_config(count=2)
    f = t.start_ready(conf, 2)
    before = collect_ids(t.port, [0, 1], test=t)
    victim = before[1][0]
    os.kill(victim, signal.SIGKILL)

    def replaced():
        seen = collect_ids(t.port, [0, 1], timeout=2, test=t, must=False)
        if seen and seen[1][0] != victim:
            return seen
        return None
    after = wait_until(replaced, 10, what="slot 1 to answer from a new pid")
    check(after[1][0] != victim and pid_alive(after[1][0]),
          "slot 1 not replaced: %s" % after)
    check(after[0][0] == before[0][0],
          "slot 0 changed pid (%d -> %d) though only slot 1 was killed"
          % (before[0][0], after[0][0]))
    wait_until(lambda: not pid_exists(victim), 5,
               what="killed worker %d to be reaped" % victim)
    # The exit is logged with the slot and the signal name.
    f.wait_log(r"fugue \(pid %d\) \w+: .*worker 1\b.*KILL" % f.pid, 5)
    check(len(f.children()) == 2, "fugue has %d children after the respawn"
          % len(f.children()))


def test_worker_exit_status_logged(t):
    conf = t.basic_config(count=1)
    f = t.start_ready(conf, 1)
    # The worker may exit before it answers; only the log matters.
    try_get(t.port, "/exit?code=7")
    f.wait_log(r"fugue \(pid %d\) \w+: worker 0 (?:\(pid \d+\) )?exited with "
               r"status 7" % f.pid, 5)
    wait_until(lambda: try_get(t.port) is not None, 10,
               what="slot 0 to serve again")


def test_ttin_ttou_change_count(t):
    conf = t.basic_config(count=2)
    f = t.start_ready(conf, 2)
    f.signal(signal.SIGTTIN)
    f.wait_children(3, 10)
    collect_ids(t.port, [0, 1, 2], timeout=10, test=t)
    f.signal(signal.SIGTTOU)
    f.wait_children(2, 10)
    f.signal(signal.SIGTTOU)
    f.wait_children(1, 10)
    seen = collect_ids(t.port, [0], timeout=5, test=t)
    # The remaining one keeps answering; ids 1 and 2 are gone.
    for _ in range(20):
        r = try_get(t.port)
        check(r is not None and r[0] == 200, "GET / failed after TTOU: %r" % (r,))
        h = parse_hello(r[1])
        check(h and h[0] == 0, "answer from slot %s after scaling to 1" % (h,))
    f.signal(signal.SIGTTOU)
    f.wait_children(0, 10)
    # Never below 0; fugue keeps running and can scale back up. (Two
    # different signals sent back to back may be taken in either order, so
    # give fugue a moment with the TTOU first.)
    size = len(f.log())
    f.signal(signal.SIGTTOU)
    poll_for(lambda: len(f.log()) > size, 0.5)
    check(f.alive() and not f.children(), "TTOU at 0 workers: %s" % f.children())
    f.signal(signal.SIGTTIN)
    f.wait_children(1, 10)
    wait_until(lambda: try_get(t.port) is not None, 10,
               what="a worker to serve after scaling 0 -> 1")
    check(f.alive(), "fugue exited while scaling")
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s after TERM" % f.rc)


def test_no_config_form(t):
    port = t.port = free_port()
    # The command as a relative path, found from fugue's working directory.
    top = os.path.dirname(os.path.dirname(WORKER))
    f = t.start(["--listen", "127.0.0.1:%d" % port, "--workers", "2",
                 "--ready", "200ms", "--kill-timeout", "2s",
                 "--", os.path.relpath(WORKER, top), "serve"], cwd=top)
    f.wait_ready(2, 10)
    seen = collect_ids(port, [0, 1], test=t)
    check(set(seen) == {0, 1}, "ids %s" % sorted(seen))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s after TERM" % f.rc)


def test_no_config_form_default_count(t):
    # Without --workers, the count defaults to 1.
    port = t.port = free_port()
    f = t.start(["--listen", "127.0.0.1:%d" % port, "--ready", "100ms",
                 "--", WORKER, "serve"])
    f.wait_ready(1, 10)
    check(len(f.children()) == 1, "children: %s" % f.children())
    check(try_get(port) is not None, "no answer on %d" % port)


def test_version(t):
    for opt in ("-V", "--version"):
        rc, out, err = t.run([opt])
        check(rc == 0, "fugue %s exited %d: %s" % (opt, rc, err))
        check(re.search(r"\d+\.\d+", out + err),
              "fugue %s printed no version: %r" % (opt, out + err))


def test_help(t):
    rc, out, err = t.run(["--help"])
    check(rc == 0, "fugue --help exited %d: %s" % (rc, err))
    check("-c" in out and "usage" in (out + err).lower(),
          "--help output does not look like usage: %r" % out[:300])
