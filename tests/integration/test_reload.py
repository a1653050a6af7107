"""Reload (HUP, and "fugue reload" through the control socket): no failed
request under load, refused and rolled-back reloads that change nothing,
in-flight requests, queued reloads, fd hygiene, TTIN/TTOU across reloads,
listeners kept, added and closed, command-line overrides re-applied."""

import os
import re
import signal
import threading
import time

from harness import (check, collect_ids, connect_refused, free_port,
                     http_get, inherit, proc_stat, timeout, try_get,
                     wait_until)
from loadgen import (Load, listen_inodes, reload_done_re, socket_inodes,
                     status_json, wait_generation, wait_reaped,
                     wait_workers, workers_by_gen)


def _conf(t, count=2, command=None, mode="serve", ready="200ms", **kw):
    master = kw.pop("master", {})
    master.setdefault("control_socket", t.path("ctl.sock"))
    return t.basic_config(count=count, command=command, mode=mode,
                          ready=ready, master=master, **kw)


def _rewrite(t, conf, **kw):
    """Rewrite the config in place with the same port and control socket."""
    return _conf(t, port=t.port, name=os.path.basename(conf), **kw)


@timeout(90)
def test_hup_under_load_no_failed_request(t):
    # 20 reloads back to back under continuous load from new-connection and
    # keep-alive clients: not one request fails, the master stays the same
    # process, and each reload leaves only the new generation running.
    conf = _conf(t, count=2, ready="150ms")
    f = t.start_ready(conf, 2, timeout=15)
    start = proc_stat(f.pid)[4]
    wait_generation(f, 1, 2)
    # Besides the busy clients, keep-alive clients idle for 700 ms between
    # requests: a draining worker closes their connections (500 ms idle),
    # and their next request goes out on a closed connection.
    with Load(t.port, new_conn=2, keep_alive=2) as load, \
            Load(t.port, new_conn=0, keep_alive=2, interval=0.7) as idle:
        load.wait_progress(10)
        for gen in range(2, 22):
            if gen % 2:
                rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
                check(rc == 0 and out.startswith(
                    "ok: generation %d serving 2 workers" % gen),
                    "fugue reload (generation %d) exited %d: %r %r"
                    % (gen, rc, out, err))
            else:
                f.signal(signal.SIGHUP)
                f.wait_log(reload_done_re(f, gen), 20)
            wait_generation(f, gen, 2)
            check(f.alive() and proc_stat(f.pid)[4] == start,
                  "the master is not the same process after reload %d" % gen)
            # Both kinds of clients got answers since this reload.
            load.wait_progress(5)
    load.check_clean(min_ok=50)
    idle.check_clean(min_ok=5)
    gens = {s.gen for s in load.samples if s.ok}
    check(21 in gens, "no answer from the last generation (21); generations "
          "seen: %s" % sorted(gens))
    st = status_json(t, conf)
    check(st["pid"] == f.pid and st["generation"] == 21,
          "status after 20 reloads: pid %s generation %s, want %d and 21"
          % (st["pid"], st["generation"], f.pid))
    check(len(re.findall(r"reload: starting generation", f.log())) == 20,
          "want exactly 20 reloads in the log")


def test_invalid_config_reload_refused(t):
    # An invalid config: HUP logs every error and "reload refused", and the
    # same workers go on serving; "fugue reload" says refused, exit 78.
    conf = _conf(t, count=2)
    f = t.start_ready(conf, 2)
    before = workers_by_gen(f)
    ids = collect_ids(t.port, [0, 1], test=t)
    good = open(conf).read()
    bad = good.replace("count = 2", "count = four") + "bogus_key = 1\n"
    with open(conf, "w") as fh:
        fh.write(bad)
    t.expect_error(r"count|bogus_key|reload refused")
    f.signal(signal.SIGHUP)
    f.wait_log(r"fugue \(pid %d\) error: reload refused: .*2 errors"
               % f.pid, 10)
    log = f.log()
    check(re.search(r"error: .*count.*four", log),
          "the count error is not logged")
    check(re.search(r"error: .*bogus_key", log),
          "the unknown key error is not logged")
    rc, out, err = t.run(["-c", conf, "reload"], timeout=20)
    check(rc == 78, "fugue reload with an invalid config exited %d, want 78: "
          "%r %r" % (rc, out, err))
    check(out.startswith("refused:"), "fugue reload printed %r, want "
          "\"refused: ...\"" % out)
    check("starting generation" not in f.log(),
          "a refused reload started a generation")
    check(workers_by_gen(f) == before, "workers changed: %s -> %s"
          % (before, workers_by_gen(f)))
    after = collect_ids(t.port, [0, 1], test=t)
    check(after == ids, "other workers answer after a refused reload: %s -> %s"
          % (ids, after))
    # Fixed again, the next reload works.
    with open(conf, "w") as fh:
        fh.write(good)
    rc, out, err = t.run(["-c", conf, "reload"], timeout=20)
    check(rc == 0 and out.startswith("ok: generation 2 serving 2 workers"),
          "reload after fixing the config: %d %r %r" % (rc, out, err))
    wait_generation(f, 2, 2)


@timeout(40)
def test_reload_refuses_what_the_start_would(t):
    # A working_dir that is not there: the reload is refused at once, with
    # the line -t gives, and no generation starts (its workers could not
    # chdir, the generation would only be rolled back).
    conf = _conf(t, count=1)
    f = t.start_ready(conf, 1)
    before = workers_by_gen(f)
    wd = t.path("gone")
    _rewrite(t, conf, count=1, worker={"working_dir": wd})
    t.expect_error(r"working_dir|reload refused")
    rc, out, err = t.run(["-c", conf, "reload"], timeout=20)
    check(rc == 78 and out.startswith("refused:"), "fugue reload with a "
          "missing working_dir: exit %d, %r, want 78 and refused" % (rc, out))
    f.wait_log(r"error: %s:\d+: \[worker\] working_dir: %s: No such file "
               r"or directory$" % (re.escape(conf), re.escape(wd)), 5)
    check("starting generation" not in f.log(),
          "a refused reload started a generation")
    check(workers_by_gen(f) == before, "workers changed: %s -> %s"
          % (before, workers_by_gen(f)))


@timeout(40)
def test_crashing_command_reload_rolled_back(t):
    conf = _conf(t, count=2)
    f = t.start_ready(conf, 2)
    before = workers_by_gen(f)
    ids = collect_ids(t.port, [0, 1], test=t)
    # ready = notify: a crashing worker never counts as ready, however slow
    # its start (a sanitizer build).
    _rewrite(t, conf, count=2, mode="crash", ready="notify")
    t.expect_error(r"reload failed")
    f.signal(signal.SIGHUP)
    f.wait_log(r"fugue \(pid %d\) error: reload failed: .*; generation 1 "
               r"keeps serving" % f.pid, 10)
    rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
    check(rc == 69, "fugue reload with a crashing command exited %d, want "
          "69: %r %r" % (rc, out, err))
    check(out.startswith("failed:") and "generation 1 keeps serving" in out,
          "fugue reload printed %r, want \"failed: ...; generation 1 keeps "
          "serving\"" % out)
    # The crashed generations are gone; the first serves, same pids.
    wait_workers(f, before, 10)
    after = collect_ids(t.port, [0, 1], test=t)
    check(after == ids, "other workers answer after a failed reload: %s -> %s"
          % (ids, after))
    st = status_json(t, conf)
    check(st["generation"] == 1 and not st["reloading"],
          "status after the failed reloads: %s" % st)
    check(len(re.findall(r"reload failed", f.log())) == 2,
          "want two failed reloads logged")


def test_inflight_slow_requests_finish_during_reload(t):
    # Requests in progress in the old workers when the HUP comes are
    # answered in full, by the old generation, before it exits.
    conf = _conf(t, count=2, ready="200ms", kill_timeout="20s")
    f = t.start_ready(conf, 2)
    old = workers_by_gen(f)[1]

    def fds(pid):
        try:
            return len(os.listdir("/proc/%d/fd" % pid))
        except OSError:
            return 0
    base = sum(fds(p) for p in old)
    results = []

    def slow():
        t0 = time.monotonic()
        try:
            r = http_get(t.port, "/slow?ms=3000", timeout=20)
        except Exception as e:  # reported below
            r = e
        results.append((r, time.monotonic() - t0))
    ths = [threading.Thread(target=slow, daemon=True) for _ in range(4)]
    for th in ths:
        th.start()
    # Accepted by the old workers (a connection fd each) before the HUP.
    wait_until(lambda: sum(fds(p) for p in old) >= base + 4, 5,
               interval=0.005, what="the 4 slow requests to be accepted")
    f.signal(signal.SIGHUP)
    f.wait_log(reload_done_re(f, 2), 10)
    check(not results, "the new generation was ready only after a slow "
          "request ended (the machine is too slow for this test)")
    for th in ths:
        th.join(20)
    check(len(results) == 4, "only %d of 4 slow requests returned"
          % len(results))
    for r, took in results:
        check(isinstance(r, tuple), "a slow request failed during the "
              "reload: %r" % (r,))
        check(r[0] == 200 and re.match(r"worker \d pid \d+ gen 1$",
                                       r[1].strip()),
              "a slow request answered %r" % (r,))
        check(took >= 2.9, "a slow request took only %.2fs" % took)
    wait_generation(f, 2, 2)
    wait_reaped(f, old)
    for p in old:
        check(re.search(r"worker \d \(pid %d\) exited with status 0" % p,
                        f.log()), "old worker %d did not exit 0 after its "
              "requests" % p)


@timeout(40)
def test_hup_during_reload_queued_once(t):
    # A HUP while generation 2 is starting is queued: generation 3 starts
    # only once 2 is in service, and there is no generation 4.
    conf = _conf(t, count=2, mode="slow-ready 1500", ready="notify",
                 worker={"ready_timeout": "20s"})
    f = t.start_ready(conf, 2, timeout=20)
    f.signal(signal.SIGHUP)
    f.wait_log(r"reload: starting generation 2 \(2 workers\)", 10)
    f.signal(signal.SIGHUP)
    f.wait_log(r"reload: queued until the current one ends", 10)
    f.wait_log(reload_done_re(f, 3), 20)
    lines = [l for l in f.master_lines() if ("reload:" in l or "queued" in l)
             and "holding" not in l]
    want = [r"reload: reading the configuration",
            r"reload: starting generation 2 \(2 workers\)",
            r"reload: queued until the current one ends",
            r"reload: generation 2 ready \(2 workers\); draining generation 1",
            r"reload: reading the configuration",
            r"reload: starting generation 3 \(2 workers\)",
            r"reload: generation 3 ready \(2 workers\); draining generation 2"]
    check(len(lines) == len(want) and
          all(re.search(w, l) for w, l in zip(want, lines)),
          "reload lines in the log:\n  %s\nwant, in this order:\n  %s"
          % ("\n  ".join(lines), "\n  ".join(want)))
    st = status_json(t, conf)
    check(st["generation"] == 3 and not st["reloading"],
          "a third reload runs: %s" % st)
    wait_generation(f, 3, 2)


@timeout(90)
def test_no_fd_leak_over_50_reloads(t):
    # The master's open fds after 50 reloads (each waited for until the old
    # worker is gone) are as many as after the first. Half of them go
    # through the control socket.
    conf = _conf(t, count=1, ready="50ms")
    f = t.start_ready(conf, 1, timeout=15)

    def fds():
        return sorted(int(x) for x in os.listdir("/proc/%d/fd" % f.pid))

    def reload(gen):
        if gen % 2:
            rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
            check(rc == 0, "fugue reload (generation %d) exited %d: %r %r"
                  % (gen, rc, out, err))
        else:
            f.signal(signal.SIGHUP)
            f.wait_log(reload_done_re(f, gen), 20)
        wait_generation(f, gen, 1)
        # The log pipe of the old worker is closed when it is reaped; the
        # reaping and the line about it come together.
        wait_until(lambda: len(re.findall(r"worker 0 \(pid \d+\) exited",
                                          f.log())) >= gen - 1, 10,
                   what="the worker of generation %d to be reaped" % (gen - 1))
    reload(2)
    first = fds()
    for gen in range(3, 52):
        reload(gen)
    last = fds()
    # The numbers may differ (the worker's log pipe is a new fd each
    # time), the count may not.
    check(len(last) == len(first), "the master's open fds went from %d to %d "
          "over 50 reloads (%s -> %s)" % (len(first), len(last), first, last))
    check(try_get(t.port) is not None, "no answer after 50 reloads")


@timeout(60)
def test_ttin_count_survives_reload_unless_count_changes(t):
    conf = _conf(t, count=2, ready="150ms")
    f = t.start_ready(conf, 2)
    f.signal(signal.SIGTTIN)
    wait_until(lambda: len(workers_by_gen(f).get(1, [])) == 3, 10,
               what="3 workers after one TTIN")
    f.signal(signal.SIGTTIN)
    wait_until(lambda: len(workers_by_gen(f).get(1, [])) == 4, 10,
               what="4 workers after two TTINs")
    # Count unchanged in the file: the runtime count (4) carries over.
    f.signal(signal.SIGHUP)
    f.wait_log(r"reload: starting generation 2 \(4 workers\)", 10)
    f.wait_log(reload_done_re(f, 2), 15)
    wait_generation(f, 2, 4)
    collect_ids(t.port, [0, 1, 2, 3], test=t)
    # Count changed in the file: the new count wins.
    _rewrite(t, conf, count=3, ready="150ms")
    f.signal(signal.SIGHUP)
    f.wait_log(r"reload: starting generation 3 \(3 workers\)", 10)
    f.wait_log(reload_done_re(f, 3), 15)
    wait_generation(f, 3, 3)
    # TTOU, then a reload with the count unchanged again (3): 2 stay.
    f.signal(signal.SIGTTOU)
    wait_until(lambda: len(workers_by_gen(f).get(3, [])) == 2, 10,
               what="2 workers after TTOU")
    f.signal(signal.SIGHUP)
    f.wait_log(r"reload: starting generation 4 \(2 workers\)", 10)
    f.wait_log(reload_done_re(f, 4), 15)
    wait_generation(f, 4, 2)
    st = status_json(t, conf)
    check(st["workers_wanted"] == 2 and len(st["workers"]) == 2,
          "status after the reloads: %s" % st)
    # And across an upgrade (the count travels in the state).
    f.signal(signal.SIGTTIN)
    wait_until(lambda: len(workers_by_gen(f).get(4, [])) == 3, 10,
               what="3 workers after TTIN")
    rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
    check(rc == 0 and out.startswith("ok: generation 5 serving 3 workers"),
          "fugue upgrade after TTIN: %d %r %r" % (rc, out, err))
    wait_generation(f, 5, 3)


def _listen(*ports):
    return [("address", "127.0.0.1:%d" % p) for p in ports]


def _one_listener(port):
    ino = listen_inodes(port)
    check(len(ino) == 1, "%d sockets listen on port %d, want 1"
          % (len(ino), port))
    return ino[0]


@timeout(60)
def test_reload_keeps_adds_and_closes_listeners(t):
    # A kept address keeps its socket (same inode, never re-bound), under
    # load with no failed request; a new one is bound; a removed one is
    # closed once the old generation is gone.
    a, b = free_port(), free_port()
    t.port = a
    conf = t.basic_config(port=0, listen=_listen(a), count=2, ready="150ms",
                          master={"control_socket": t.path("ctl.sock")})
    f = t.start_ready(conf, 2)
    ino_a = _one_listener(a)
    with Load(a, new_conn=2, keep_alive=1) as load:
        load.wait_progress(10)
        t.basic_config(port=0, listen=_listen(a, b), count=2, ready="150ms",
                       master={"control_socket": t.path("ctl.sock")})
        f.signal(signal.SIGHUP)
        f.wait_log(reload_done_re(f, 2), 15)
        wait_generation(f, 2, 2)
        load.wait_progress(10)
    load.check_clean(min_ok=10)
    check(_one_listener(a) == ino_a, "port %d was bound again" % a)
    ino_b = _one_listener(b)
    check({ino_a, ino_b} <= socket_inodes(f.pid),
          "the master does not hold both listeners")
    r = try_get(b)
    check(r and r[0] == 200 and r[1].strip().endswith("gen 2"),
          "the new address answered %r" % (r,))
    rep = inherit(a)
    targets = {e["fd"]: e["target"] for e in rep["fds"]}
    check(targets.get(3) == "socket:[%d]" % ino_a and
          targets.get(4) == "socket:[%d]" % ino_b,
          "generation 2's fds 3 and 4 are %s, want the sockets of ports %d "
          "and %d" % (targets, a, b))
    # Address a removed: closed once generation 2 is gone; b stays.
    t.basic_config(port=0, listen=_listen(b), count=2, ready="150ms",
                   master={"control_socket": t.path("ctl.sock")})
    rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
    check(rc == 0, "fugue reload exited %d: %r %r" % (rc, out, err))
    wait_generation(f, 3, 2)
    f.wait_log(r"fugue \(pid %d\) info: closed 127\.0\.0\.1:%d"
               % (f.pid, a), 10)
    wait_until(lambda: connect_refused(a), 5,
               what="port %d to refuse connections" % a)
    check(ino_a not in socket_inodes(f.pid), "the master still holds the "
          "socket of the removed address")
    check(_one_listener(b) == ino_b, "port %d was bound again" % b)
    r = try_get(b)
    check(r and r[0] == 200 and r[1].strip().endswith("gen 3"),
          "port %d answered %r" % (b, r))


def test_failed_reload_closes_its_new_listener(t):
    # A reload that binds a new address and then fails closes that address
    # again, by the time "fugue reload" reports the failure; the old one
    # keeps its socket. (Several rounds: a close that comes after the
    # answer is a race, seen in some rounds only.)
    a, c = free_port(), free_port()
    t.port = a
    conf = t.basic_config(port=0, listen=_listen(a), count=1,
                          master={"control_socket": t.path("ctl.sock")})
    f = t.start_ready(conf, 1)
    ino_a = _one_listener(a)
    old = workers_by_gen(f)
    t.basic_config(port=0, listen=_listen(a, c), count=1, mode="crash",
                   ready="notify",
                   master={"control_socket": t.path("ctl.sock")})
    t.expect_error(r"reload failed")
    for _ in range(10):
        rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
        check(rc == 69 and out.startswith("failed:"),
              "fugue reload exited %d: %r %r" % (rc, out, err))
        check(not listen_inodes(c), "port %d still listens after \"fugue "
              "reload\" reported the failure (%r): the outcome was sent "
              "before the new listener was closed" % (c, out.strip()))
    check(connect_refused(c), "port %d accepts connections" % c)
    check(_one_listener(a) == ino_a, "port %d was bound again" % a)
    wait_workers(f, old, 10)
    r = try_get(a)
    check(r and r[0] == 200 and r[1].strip().endswith("gen 1"),
          "port %d answered %r" % (a, r))


def test_reload_reapplies_command_line_overrides(t):
    # -c FILE --workers 3: the command line wins over the file at start and
    # at every reload, whatever the file says then.
    conf = _conf(t, count=2, ready="150ms")
    f = t.start(["-c", conf, "--workers", "3"])
    f.wait_ready(3, 15)
    _rewrite(t, conf, count=5, ready="150ms")
    rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
    check(rc == 0 and out.startswith("ok: generation 2 serving 3 workers"),
          "fugue reload: %d %r %r" % (rc, out, err))
    wait_generation(f, 2, 3)
    rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
    check(rc == 0 and out.startswith("ok: generation 3 serving 3 workers"),
          "fugue upgrade: %d %r %r" % (rc, out, err))
    wait_generation(f, 3, 3)


_SIGNAL_RECORDER = r'''
import os, signal, sys
out = sys.argv[1]
def stop(sig, frame):
    with open(out, "a") as f:
        f.write("%d %s\n" % (os.getpid(), signal.Signals(sig).name))
    os._exit(0)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGQUIT):
    signal.signal(s, stop)
while True:
    signal.pause()
'''


@timeout(30)
def test_old_workers_stop_with_their_own_stop_signal(t):
    # A reload that changes stop_signal: the old generation's workers are
    # stopped with the signal their own configuration named (USR1), the
    # new ones with the new one (INT), at the stop that follows.
    script = t.path("record.py")
    got = t.path("signals")
    with open(script, "w") as fh:
        fh.write(_SIGNAL_RECORDER)
    cmd = "python3 %s %s" % (script, got)
    conf = _conf(t, count=2, command=cmd, ready="300ms",
                 worker={"stop_signal": "USR1"})
    f = t.start_ready(conf, 2)
    old = wait_generation(f, 1, 2)
    _rewrite(t, conf, count=2, command=cmd, ready="300ms",
             worker={"stop_signal": "INT"})
    f.signal(signal.SIGHUP)
    f.wait_log(reload_done_re(f, 2), 15)
    new = wait_generation(f, 2, 2)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue did not stop cleanly")

    def lines():
        with open(got) as fh:
            return dict(line.split() for line in fh if line.strip())
    seen = {int(p): s for p, s in lines().items()}
    for pid in old:
        check(seen.get(pid) == "SIGUSR1", "old worker %d got %s, want "
              "SIGUSR1 (its own generation's stop_signal)"
              % (pid, seen.get(pid)))
    for pid in new:
        check(seen.get(pid) == "SIGINT", "new worker %d got %s, want SIGINT"
              % (pid, seen.get(pid)))
