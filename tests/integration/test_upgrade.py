"""Upgrade (USR2, and "fugue upgrade" through the control socket): the
master re-executes its binary in place (same PID), adopts its workers and
reloads, with no failed request; a new binary on disk (replaced file,
swapped symlink, argv[0] relative or found on PATH) is what runs next; a
broken binary or an invalid config changes nothing, nor does one that
passes -t and then fails, crashes or hangs (its trial run), and the check and
trial are bounded and leave nothing running; workers, in-flight requests,
drain deadlines, queued signals, the pid file lock and the master's fds all
cross the exec; a crafted state never makes fugue adopt a process that is not
its child."""

import fcntl
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

from harness import (FUGUE, WORKER, check, collect_ids, fail, free_port,
                     http_get, pid_alive, poll_for, proc_stat, timeout,
                     wait_until)
from loadgen import (Load, exe_inode, file_inode, install_binary, install_file,
                     line_time, listen_inodes, log_time, reload_done_re,
                     socket_inodes, start_binary, status_json,
                     wait_generation, wait_reaped, wait_workers,
                     workers_by_gen)
from support import Launched, clean_env


def _conf(t, count=2, mode="serve", ready="200ms", port=None, **kw):
    master = kw.pop("master", {})
    master.setdefault("control_socket", t.path("ctl.sock"))
    return t.basic_config(count=count, mode=mode, ready=ready, port=port,
                          master=master, **kw)


def _copy_of_fugue(t):
    """A private copy of fugue in the test's directory (bin/fugue)."""
    os.makedirs(t.path("bin"), exist_ok=True)
    path = t.path("bin", "fugue")
    install_binary(FUGUE, path)
    return path


def _same_process(f, start):
    st = proc_stat(f.pid)
    return f.alive() and st is not None and st[4] == start


@timeout(120)
def test_usr2_under_load_no_failed_request(t):
    # 20 upgrades back to back under continuous load: not one request
    # fails, the PID and the binary stay, each upgrade leaves only the new
    # generation. The last one goes through the control socket, whose
    # client waits across the re-exec.
    conf = _conf(t, count=2, ready="150ms")
    f = t.start_ready(conf, 2, timeout=15)
    start = proc_stat(f.pid)[4]
    exe = exe_inode(f.pid)
    check(exe == file_inode(FUGUE), "/proc/%d/exe is not %s" % (f.pid, FUGUE))
    # Busy clients, and keep-alive clients idle for 700 ms between
    # requests (a draining worker closes those connections).
    with Load(t.port, new_conn=2, keep_alive=2) as load, \
            Load(t.port, new_conn=0, keep_alive=2, interval=0.7) as idle:
        load.wait_progress(10)
        for gen in range(2, 22):
            f.signal(signal.SIGUSR2)
            f.wait_log(reload_done_re(f, gen, "upgrade"), 30)
            wait_generation(f, gen, 2)
            check(_same_process(f, start), "the master is not the same "
                  "process after upgrade %d" % gen)
            check(exe_inode(f.pid) == exe, "/proc/%d/exe changed" % f.pid)
            load.wait_progress(5)
        rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
        check(rc == 0 and out.startswith("ok: generation 22 serving 2 "
                                         "workers"),
              "fugue upgrade exited %d: %r %r" % (rc, out, err))
        wait_generation(f, 22, 2)
        load.wait_progress(5)
    load.check_clean(min_ok=50)
    idle.check_clean(min_ok=5)
    check(_same_process(f, start), "the master changed")
    n = len(re.findall(r"fugue \(pid %d\) info: upgrade: re-executing "
                       % f.pid, f.log()))
    check(n == 21, "%d re-execs logged, want 21" % n)
    st = status_json(t, conf)
    check(st["pid"] == f.pid and st["generation"] == 22,
          "status after the upgrades: %s" % st)


@timeout(60)
def test_upgrade_runs_the_replaced_binary(t):
    # Started from bin/fugue; a new build is renamed over bin/fugue (new
    # inode, different bytes); USR2 runs that file: same PID, /proc/PID/exe
    # is the new inode, no failed request.
    binary = _copy_of_fugue(t)
    old = file_inode(binary)
    conf = _conf(t, count=2)
    f = start_binary(t, binary, ["-c", conf])
    f.wait_ready(2, 15)
    start = proc_stat(f.pid)[4]
    check(exe_inode(f.pid) == old, "fugue does not run %s" % binary)
    with Load(t.port, new_conn=2, keep_alive=2) as load:
        load.wait_progress(10)
        new = install_binary(FUGUE, binary, extra=b"\0fugue-test-build-2\0")
        check(new != old, "the replaced file kept its inode")
        f.signal(signal.SIGUSR2)
        f.wait_log(reload_done_re(f, 2, "upgrade"), 30)
        wait_generation(f, 2, 2)
        load.wait_progress(10)
    load.check_clean(min_ok=10)
    check(_same_process(f, start), "the master is not the same process")
    check(exe_inode(f.pid) == new, "/proc/%d/exe is inode %s, want the new "
          "file's %s (the old one was %s)" % (f.pid, exe_inode(f.pid), new,
                                              old))
    check(os.readlink("/proc/%d/exe" % f.pid) == binary,
          "/proc/%d/exe -> %s" % (f.pid, os.readlink("/proc/%d/exe" % f.pid)))


def test_upgrade_follows_a_swapped_symlink(t):
    # Started as bin/fugue -> fugue.v1; the link is swapped to fugue.v2;
    # USR2 runs v2 (the path is not resolved at start).
    os.makedirs(t.path("bin"))
    v1, v2, link = t.path("bin", "fugue.v1"), t.path("bin", "fugue.v2"), \
        t.path("bin", "fugue")
    install_binary(FUGUE, v1)
    install_binary(FUGUE, v2, extra=b"\0v2\0")
    os.symlink("fugue.v1", link)
    conf = _conf(t, count=1)
    f = start_binary(t, link, ["-c", conf])
    f.wait_ready(1, 15)
    check(exe_inode(f.pid) == file_inode(v1), "fugue does not run fugue.v1")
    os.symlink("fugue.v2", link + ".new")
    os.rename(link + ".new", link)
    rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
    check(rc == 0 and out.startswith("ok: generation 2"),
          "fugue upgrade exited %d: %r %r" % (rc, out, err))
    check(exe_inode(f.pid) == file_inode(v2), "after the upgrade /proc/%d/exe "
          "is %s, not fugue.v2" % (f.pid, os.readlink("/proc/%d/exe" % f.pid)))
    wait_generation(f, 2, 1)


@timeout(60)
def test_broken_binary_upgrade_refused(t):
    # The file fugue was started as is replaced by something that cannot
    # run (not executable, a script that exits 1, gone): USR2 and "fugue
    # upgrade" are refused, the old image and the same workers go on.
    binary = _copy_of_fugue(t)
    orig = file_inode(binary)
    conf = _conf(t, count=2)
    f = start_binary(t, binary, ["-c", conf])
    f.wait_ready(2, 15)
    before = workers_by_gen(f)
    ids = collect_ids(t.port, [0, 1], test=t)
    t.expect_error(r"upgrade")
    refusals = 0

    def refused_by_signal(what):
        nonlocal refusals
        f.signal(signal.SIGUSR2)
        refusals += 1
        f.wait_log(r"fugue \(pid %d\) error: upgrade refused: " % f.pid, 15,
                   count=refusals)
        check(exe_inode(f.pid) == orig, "fugue re-executed %s" % what)

    # Not executable.
    install_binary(FUGUE, binary, mode=0o644)
    refused_by_signal("a non-executable file")
    # A script that exits 1 (its -t fails).
    install_file(binary, "#!/bin/sh\necho broken build >&2\nexit 1\n", 0o755)
    refused_by_signal("a script that exits 1")
    check("broken build" in f.log(), "the check's output is not logged")
    rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
    refusals += 1
    check(rc == 78 and out.startswith("refused:") and "broken build" in out,
          "fugue upgrade with a broken binary exited %d: %r %r"
          % (rc, out, err))
    # Gone.
    os.unlink(binary)
    refused_by_signal("a missing file")

    check(workers_by_gen(f) == before, "the workers changed: %s -> %s"
          % (before, workers_by_gen(f)))
    after = collect_ids(t.port, [0, 1], test=t)
    check(after == ids, "other workers answer after refused upgrades: %s -> "
          "%s" % (ids, after))
    check("re-executing" not in f.log(), "fugue re-executed a broken binary")
    # A good binary again: the next upgrade works.
    new = install_binary(FUGUE, binary)
    rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
    check(rc == 0 and out.startswith("ok: generation 2"),
          "upgrade with a good binary again: %d %r %r" % (rc, out, err))
    check(exe_inode(f.pid) == new, "the good binary does not run")
    wait_generation(f, 2, 2)


def test_invalid_config_upgrade_refused(t):
    conf = _conf(t, count=2)
    f = t.start_ready(conf, 2)
    before = workers_by_gen(f)
    ids = collect_ids(t.port, [0, 1], test=t)
    good = open(conf).read()
    with open(conf, "w") as fh:
        fh.write(good.replace("count = 2", "count = four") + "bogus_key = 1\n")
    t.expect_error(r"upgrade")
    f.signal(signal.SIGUSR2)
    f.wait_log(r"fugue \(pid %d\) error: upgrade refused: " % f.pid, 15)
    log = f.log()
    check(re.search(r"error: upgrade check: .*count.*four", log) and
          re.search(r"error: upgrade check: .*bogus_key", log),
          "the config errors are not logged")
    rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
    check(rc == 78 and out.startswith("refused:"),
          "fugue upgrade with an invalid config exited %d: %r %r"
          % (rc, out, err))
    # What the check found, not just that it failed.
    check(re.search(r"failed its check: \S*fugue\.conf:\d+: \[worker\] count: "
                    r".*four.*; \S*fugue\.conf:\d+: \[worker\] bogus_key",
                    out), "fugue upgrade does not say what the check found: "
          "%r" % out)
    check("re-executing" not in f.log() and
          "starting generation" not in f.log(),
          "a refused upgrade went ahead")
    check(workers_by_gen(f) == before, "workers changed: %s -> %s"
          % (before, workers_by_gen(f)))
    check(collect_ids(t.port, [0, 1], test=t) == ids,
          "other workers answer after a refused upgrade")


@timeout(60)
def test_workers_survive_the_reexec(t):
    # The upgrade's config makes the new generation slow to get ready, so
    # the adopted workers serve alone for ~3 s after the exec: they are
    # alive and answer, and are drained (exit 0 on TERM) only after the new
    # generation is ready — none killed by the parent-death signal.
    conf = _conf(t, count=2, ready="150ms")
    f = t.start_ready(conf, 2, timeout=15)
    old = workers_by_gen(f)[1]
    ids = collect_ids(t.port, [0, 1], test=t)
    _conf(t, count=2, mode="slow-ready 3000", ready="notify", port=t.port,
          worker={"ready_timeout": "20s"})
    f.signal(signal.SIGUSR2)
    f.wait_log(r"fugue \(pid %d\) info: upgrade: adopted 2 workers of "
               r"generation 1" % f.pid, 15)
    f.wait_log(r"upgrade: starting generation 2 \(2 workers\)", 10)
    for p in old:
        check(pid_alive(p), "old worker %d died in the exec" % p)
        check(proc_stat(p)[1] == f.pid, "old worker %d is no longer fugue's "
              "child" % p)
    check(not re.search(reload_done_re(f, 2, "upgrade"), f.log()),
          "the new generation was ready at once (slow-ready 3000)")
    after = collect_ids(t.port, [0, 1], test=t)
    check(after == ids, "right after the exec, answers came from %s, want "
          "the old workers %s" % (after, ids))
    check(not re.search(reload_done_re(f, 2, "upgrade"), f.log()),
          "the check came too late: generation 2 was already ready")
    f.wait_log(reload_done_re(f, 2, "upgrade"), 20)
    wait_generation(f, 2, 2)
    wait_reaped(f, old)
    log = f.log()
    for p in old:
        check(re.search(r"worker \d \(pid %d\) exited with status 0" % p, log),
              "old worker %d was not drained with exit 0: %s" % (
                  p, [l for l in log.splitlines() if "pid %d)" % p in l]))
        check(not re.search(r"\(pid %d\) killed by signal" % p, log),
              "old worker %d was killed by a signal" % p)
    # The drains come after the new generation is ready.
    ready_at = log.index("upgrade: generation 2 ready")
    for p in old:
        m = re.search(r"worker \d \(pid %d\) exited" % p, log)
        check(m.start() > ready_at, "old worker %d exited before the new "
              "generation was ready" % p)


@timeout(60)
def test_inflight_requests_across_two_upgrades(t):
    # Slow requests in the first generation's workers; an upgrade drains
    # them, and a second upgrade re-executes fugue while they still drain:
    # the requests are answered in full and the draining workers exit 0
    # after them, adopted twice.
    conf = _conf(t, count=2, ready="150ms", kill_timeout="20s")
    f = t.start_ready(conf, 2)
    old = workers_by_gen(f)[1]
    results = []

    def slow():
        try:
            results.append(http_get(t.port, "/slow?ms=4000", timeout=20))
        except Exception as e:  # reported below
            results.append(e)

    def fds(p):
        try:
            return len(os.listdir("/proc/%d/fd" % p))
        except OSError:
            return 0
    base = {p: fds(p) for p in old}
    ths = [threading.Thread(target=slow, daemon=True) for _ in range(4)]
    for th in ths:
        th.start()
    wait_until(lambda: sum(fds(p) - base[p] for p in old) >= 4, 5,
               interval=0.005, what="the 4 slow requests to be accepted")
    # The kernel may hand all four to one worker: the other has nothing
    # in flight and may finish draining at once.
    busy = [p for p in old if fds(p) > base[p]]
    f.signal(signal.SIGUSR2)
    f.wait_log(reload_done_re(f, 2, "upgrade"), 15)
    check(all(pid_alive(p) for p in busy), "an old worker exited with slow "
          "requests in flight")
    rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
    check(rc == 0 and out.startswith("ok: generation 3"),
          "the second upgrade: %d %r %r" % (rc, out, err))
    check(not results, "a slow request ended before the second upgrade was "
          "done (the machine is too slow for this test)")
    for th in ths:
        th.join(20)
    check(len(results) == 4, "%d of 4 slow requests returned" % len(results))
    for r in results:
        check(isinstance(r, tuple) and r[0] == 200 and
              r[1].strip().endswith("gen 1"),
              "a slow request across the upgrades: %r" % (r,))
    wait_generation(f, 3, 2)
    wait_reaped(f, old)
    log = f.log()
    for p in old:
        check(re.search(r"worker \d \(pid %d\) exited with status 0" % p, log),
              "old worker %d did not exit 0" % p)


@timeout(60)
def test_drain_deadline_kept_across_upgrade(t):
    # Workers that ignore TERM are drained with kill_timeout = 6s; an
    # upgrade 1 s into the drain must not restart the clock: KILL comes
    # ~6 s after the drain began, not 6 s after the exec (7 s or more).
    conf = _conf(t, count=1, mode="ignore-term", ready="150ms",
                 kill_timeout="6s")
    f = t.start_ready(conf, 1)
    old = workers_by_gen(f)[1][0]
    _conf(t, count=1, ready="150ms", kill_timeout="6s", port=t.port)
    f.signal(signal.SIGHUP)
    f.wait_log(reload_done_re(f, 2), 15)
    time.sleep(1.0)  # what the test is about: 1 s into the drain
    rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
    check(rc == 0, "fugue upgrade: %d %r %r" % (rc, out, err))
    check(pid_alive(old), "the TERM-ignoring worker %d is gone before its "
          "kill_timeout" % old)
    f.wait_log(r"worker 0 \(pid %d\) still running after kill_timeout; "
               r"sending KILL" % old, 10)
    drain = log_time(f, reload_done_re(f, 2))
    kill = log_time(f, r"\(pid %d\) still running after kill_timeout" % old)
    check(5.8 <= kill - drain <= 6.9, "KILL %.2fs after the drain began, want "
          "6 s (kill_timeout), the time already spent counted across the "
          "upgrade" % (kill - drain))
    f.wait_log(r"worker 0 \(pid %d\) killed by signal KILL" % old, 10)
    wait_generation(f, 3, 1)


@timeout(60)
def test_hup_during_upgrade_runs_after_it(t):
    # A HUP while an upgrade is under way (its check, its exec, or the new
    # image's generation starting) is neither lost nor run in parallel:
    # one reload follows the upgrade, then nothing.
    conf = _conf(t, count=2, mode="slow-ready 1000", ready="notify",
                 worker={"ready_timeout": "20s"})
    f = t.start_ready(conf, 2, timeout=15)
    f.signal(signal.SIGUSR2)
    f.wait_log(r"upgrade: checking ", 10)
    f.signal(signal.SIGHUP)
    f.wait_log(reload_done_re(f, 3), 20)
    lines = [l for l in f.master_lines() if "starting generation" in l or
             re.search(r"generation \d+ ready", l)]
    want = [r"upgrade: starting generation 2 \(2 workers\)",
            r"upgrade: generation 2 ready",
            r"reload: starting generation 3 \(2 workers\)",
            r"reload: generation 3 ready"]
    check(len(lines) == len(want) and
          all(re.search(w, l) for w, l in zip(want, lines)),
          "generations in the log:\n  %s\nwant:\n  %s"
          % ("\n  ".join(lines), "\n  ".join(want)))
    st = status_json(t, conf)
    check(st["generation"] == 3 and not st["reloading"], "status: %s" % st)
    wait_generation(f, 3, 2)


@timeout(90)
def test_signal_storm_under_load(t):
    # HUPs and USR2s at random moments, under load: no failed request, the
    # same PID, one generation at the end, and the last signal was not
    # lost (a generation started after it).
    conf = _conf(t, count=2, ready="150ms")
    f = t.start_ready(conf, 2)
    start = proc_stat(f.pid)[4]
    rnd = random.Random(1234)
    with Load(t.port, new_conn=2, keep_alive=2) as load:
        load.wait_progress(10)
        sent = []
        for i in range(16):
            if i:
                # Random gaps, from back to back to longer than an
                # operation (the pacing of the storm itself).
                time.sleep(rnd.choice([0, 0.01, 0.05, 0.2, 0.5]))
            sig = rnd.choice([signal.SIGHUP, signal.SIGUSR2])
            # The time before sending: the one after can come late (this
            # thread may wait for the GIL while the load threads run).
            sent.append((time.time(), sig.name))
            f.signal(sig)
        t_last = sent[-1][0]

        def settled():
            st = status_json(t, conf)
            return not st["reloading"] and st
        st = wait_until(settled, 30, interval=0.2,
                        what="fugue to finish its reloads and upgrades")
        gen = st["generation"]
        wait_generation(f, gen, 2)
        load.wait_progress(10)
    load.check_clean(min_ok=50)
    check(_same_process(f, start), "the master changed")
    starts = [l for l in f.master_lines()
              if "starting generation %d " % gen in l]
    # Log times are cut to the millisecond.
    if not starts or line_time(starts[0]) < t_last - 0.001:
        since = sent[-3][0] - 0.5
        fail("the last signal was lost: generation %d (the last) started "
             "at %s, before it; signals sent: %s; the log since: %s" % (
                 gen, starts and line_time(starts[0]),
                 ", ".join("%s at %.4f" % (n, w) for w, n in sent[-3:]),
                 " | ".join(l for l in f.master_lines()
                            if line_time(l) >= since)))
    check(not f.master_lines("error"), "errors: %s" % f.master_lines("error"))


@timeout(60)
def test_upgrade_finds_itself_by_relative_path_and_by_path(t):
    # argv[0] "./bin/fugue" (relative to fugue's cwd) and "fugue" (found on
    # PATH): both are made absolute at start, and the file there then is
    # what an upgrade runs.
    binary = _copy_of_fugue(t)
    for how, argv0, env in (
            ("relative", "./bin/fugue", None),
            ("on PATH", "fugue", t.env(PATH=t.path("bin") + ":" +
                                      os.environ.get("PATH", "/usr/bin")))):
        install_binary(FUGUE, binary)
        name = how.replace(" ", "-")
        conf = _conf(t, count=1, name="%s.conf" % name,
                     master={"control_socket": t.path("%s.sock" % name)})
        f = start_binary(t, argv0, ["-c", conf], env=env, cwd=t.dir,
                         log="%s.log" % name)
        f.wait_ready(1, 15)
        check(exe_inode(f.pid) == file_inode(binary), "%s: fugue does not "
              "run %s" % (how, binary))
        new = install_binary(FUGUE, binary, extra=b"\0%s\0" % how.encode())
        rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
        check(rc == 0 and out.startswith("ok: generation 2"),
              "%s: fugue upgrade exited %d: %r %r" % (how, rc, out, err))
        check(exe_inode(f.pid) == new, "%s: after the upgrade fugue runs %s, "
              "not the new %s" % (how, os.readlink("/proc/%d/exe" % f.pid),
                                  binary))
        f.signal(signal.SIGTERM)
        check(f.wait_exit(15) == 0, "%s: fugue exited %s" % (how, f.rc))


@timeout(60)
def test_upgrade_and_reload_without_config_file(t):
    # fugue --listen ... --workers 2 -- CMD: a reload re-applies the command
    # line, an upgrade re-execs with it; both keep serving on the same
    # socket with no failed request.
    port = t.port = free_port()
    f = t.start(["--listen", "127.0.0.1:%d" % port, "--workers", "2",
                 "--ready", "150ms", "--kill-timeout", "5s", "--", WORKER,
                 "serve"])
    f.wait_ready(2, 15)
    ino = listen_inodes(port)
    with Load(port, new_conn=2, keep_alive=1) as load:
        load.wait_progress(10)
        f.signal(signal.SIGHUP)
        f.wait_log(reload_done_re(f, 2), 15)
        wait_generation(f, 2, 2)
        f.signal(signal.SIGUSR2)
        f.wait_log(reload_done_re(f, 3, "upgrade"), 15)
        wait_generation(f, 3, 2)
        load.wait_progress(10)
    load.check_clean(min_ok=10)
    check(listen_inodes(port) == ino, "the listener changed: %s -> %s"
          % (ino, listen_inodes(port)))


@timeout(60)
def test_adopted_worker_that_dies_is_restarted(t):
    # While the new image's generation gets ready (slow-ready 3000), an
    # adopted worker is killed: the new image restarts its slot with the
    # old generation's command, and drains it with the rest afterwards.
    conf = _conf(t, count=2, ready="150ms")
    f = t.start_ready(conf, 2)
    old = workers_by_gen(f)[1]
    _conf(t, count=2, mode="slow-ready 3000", ready="notify", port=t.port,
          worker={"ready_timeout": "20s"})
    f.signal(signal.SIGUSR2)
    f.wait_log(r"upgrade: starting generation 2", 15)
    os.kill(old[0], signal.SIGKILL)
    f.wait_log(r"worker \d \(pid %d\) killed by signal KILL; restarting"
               % old[0], 10)

    def respawned():
        w = workers_by_gen(f).get(1, [])
        return len(w) == 2 and old[0] not in w and w
    again = wait_until(respawned, 10, what="the killed slot of generation 1 "
                       "to run again")
    check(not re.search(reload_done_re(f, 2, "upgrade"), f.log()),
          "generation 2 was ready too soon for this test")
    new_pid = [p for p in again if p not in old][0]
    cmdline = open("/proc/%d/cmdline" % new_pid).read().replace("\0", " ")
    check(cmdline.strip().endswith("serve"), "the restarted slot runs %r, "
          "not generation 1's command" % cmdline)
    f.wait_log(reload_done_re(f, 2, "upgrade"), 20)
    wait_generation(f, 2, 2)
    wait_reaped(f, [new_pid])
    check(re.search(r"\(pid %d\) exited with status 0" % new_pid, f.log()),
          "the restarted worker %d was not drained" % new_pid)


@timeout(60)
def test_failed_upgrade_keeps_the_adopted_generation(t):
    # The new binary runs, but the new generation crashes: "fugue upgrade"
    # reports the failure (exit 69), the adopted workers keep serving, and
    # a slot of theirs that dies restarts with their command, not the
    # failed one.
    conf = _conf(t, count=2, ready="150ms")
    f = t.start_ready(conf, 2)
    ids = collect_ids(t.port, [0, 1], test=t)
    before = workers_by_gen(f)
    _conf(t, count=2, mode="crash", ready="notify", port=t.port)
    t.expect_error(r"upgrade failed")
    rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
    check(rc == 69 and out.startswith("failed:") and
          "generation 1 keeps serving" in out,
          "fugue upgrade into a crashing command: %d %r %r" % (rc, out, err))
    wait_workers(f, before, 10)
    check(collect_ids(t.port, [0, 1], test=t) == ids,
          "other workers answer after the failed upgrade")
    victim = ids[1][0]
    os.kill(victim, signal.SIGKILL)
    f.wait_log(r"worker 1 \(pid %d\) killed by signal KILL; restarting"
               % victim, 10)

    def back():
        seen = collect_ids(t.port, [0, 1], timeout=2, test=t, must=False)
        return seen and seen[1][0] != victim and seen
    seen = wait_until(back, 10, what="slot 1 to serve again")
    check(seen[1][1] == 1, "slot 1 came back as generation %d" % seen[1][1])
    check(not re.search(r"worker 1 \(pid \d+\) exited with status 1",
                        f.log().split("killed by signal KILL")[-1]),
          "the restarted slot ran the failed generation's command")


def test_upgrade_keeps_the_pid_file_and_its_lock(t):
    pidf = t.path("fugue.pid")
    conf = _conf(t, count=1, master={"pid_file": pidf})
    f = t.start_ready(conf, 1)
    rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
    check(rc == 0, "fugue upgrade: %d %r %r" % (rc, out, err))
    with open(pidf) as fh:
        check(fh.read() == "%d\n" % f.pid, "the pid file changed")
    # The lock (a POSIX lock on PATH.lock) crossed the exec with its fd.
    fd = os.open(pidf + ".lock", os.O_RDWR)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fail("the pid file is no longer locked after the upgrade")
        except OSError:
            pass
    finally:
        os.close(fd)
    g = t.start(t.basic_config(port=free_port(), count=1, name="second.conf",
                               master={"pid_file": pidf}),
                log="second.log", name="second fugue")
    t.expect_error(r"already running: pid %d holds " % f.pid)
    check(g.wait_exit(10) == 75, "a second fugue exited %s, want 75" % g.rc)
    # Signals through the pid file reach the new image.
    rc, out, err = t.run(["-c", conf, "-s", "reload"], timeout=10)
    check(rc == 0, "fugue -s reload: %d %r %r" % (rc, out, err))
    f.wait_log(reload_done_re(f, 3), 15)


@timeout(90)
def test_no_fd_leak_over_upgrades(t):
    # The master's open fds after 15 upgrades (each waited for until the
    # old worker is reaped) are as many as after the first; every other one
    # goes through the control socket, whose client waits across the exec.
    conf = _conf(t, count=1, ready="100ms")
    f = t.start_ready(conf, 1)

    def upgrade(gen):
        if gen % 2:
            rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
            check(rc == 0, "fugue upgrade (generation %d) exited %d: %r %r"
                  % (gen, rc, out, err))
        else:
            f.signal(signal.SIGUSR2)
            f.wait_log(reload_done_re(f, gen, "upgrade"), 20)
        wait_generation(f, gen, 1)
        wait_until(lambda: len(re.findall(r"worker 0 \(pid \d+\) exited",
                                          f.log())) >= gen - 1, 10,
                   what="the worker of generation %d to be reaped" % (gen - 1))
    upgrade(2)
    first = sorted(int(x) for x in os.listdir("/proc/%d/fd" % f.pid))
    for gen in range(3, 17):
        upgrade(gen)
    last = sorted(int(x) for x in os.listdir("/proc/%d/fd" % f.pid))
    check(len(last) == len(first), "the master's open fds went from %d to %d "
          "over 15 upgrades (%s -> %s)" % (len(first), len(last), first, last))


@timeout(60)
def test_removed_listener_crosses_upgrade_until_drained(t):
    # A reload removes address a while an old worker still answers a slow
    # request on it; an upgrade comes before that worker is done. The
    # socket of a crosses the exec (listed as going away) and is closed
    # once the old worker is gone, not before and not never.
    a, b = free_port(), free_port()
    t.port = b

    def conf_for(*ports):
        return t.basic_config(
            port=0, listen=[("address", "127.0.0.1:%d" % p) for p in ports],
            count=1, ready="150ms", kill_timeout="20s",
            master={"control_socket": t.path("ctl.sock")})
    conf = conf_for(a, b)
    f = t.start_ready(conf, 1)
    old = workers_by_gen(f)[1][0]
    ino_a = listen_inodes(a)
    nfd = len(os.listdir("/proc/%d/fd" % old))
    res = []
    th = threading.Thread(target=lambda: res.append(
        http_get(a, "/slow?ms=2500", timeout=15)), daemon=True)
    th.start()
    wait_until(lambda: len(os.listdir("/proc/%d/fd" % old)) > nfd, 5,
               interval=0.005, what="the slow request to be accepted")
    conf_for(b)
    rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
    check(rc == 0, "fugue reload: %d %r %r" % (rc, out, err))
    rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
    check(rc == 0, "fugue upgrade: %d %r %r" % (rc, out, err))
    check(pid_alive(old), "the old worker is gone before its slow request "
          "ended")
    check(listen_inodes(a) == ino_a, "address a was closed (or re-bound) "
          "while a worker still used it")
    th.join(15)
    check(res and res[0][0] == 200, "the slow request on a: %r" % (res,))
    f.wait_log(r"worker 0 \(pid %d\) exited with status 0" % old, 10)
    f.wait_log(r"fugue \(pid %d\) info: closed 127\.0\.0\.1:%d" % (f.pid, a),
               10)
    check(not listen_inodes(a) and not set(ino_a) & socket_inodes(f.pid),
          "address a is still open after the last worker using it left")
    wait_generation(f, 3, 1)


def _pid_from(path):
    """The pid a script wrote to path (written whole: renamed into place)."""
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


# The new binary passes its -t (the real fugue checks) and then does what
# the case says instead of running: the trial run of the new binary on the
# running state catches it before the exec, whatever it is.
_FAILS_AFTER_CHECK = {
    "exits 1": "echo 'new build: cannot start' >&2\nexit 1\n",
    "segfaults": "kill -SEGV $$\n",
    # Its children too: the bound kills the trial's whole process group.
    "hangs": "sleep 1000 &\necho $$ $! > {dir}/trial.tmp && "
             "mv {dir}/trial.tmp {dir}/trial.pid\nwait\n",
}


@timeout(120)
def test_binary_that_fails_after_its_check_is_refused_by_the_trial(t):
    # A new binary that passes -t but exits 1, segfaults or hangs when it
    # runs: "fugue upgrade" is refused with the reason, the master keeps
    # its pid and its image, its workers keep serving (no request fails
    # under load), and an upgrade to a good binary afterwards works.
    binary = _copy_of_fugue(t)
    orig = file_inode(binary)
    conf = _conf(t, count=2, worker={"ready_timeout": "3s"})
    f = start_binary(t, binary, ["-c", conf])
    f.wait_ready(2, 15)
    start = proc_stat(f.pid)[4]
    before = workers_by_gen(f)
    t.expect_error(r"upgrade")
    with Load(t.port, new_conn=2, keep_alive=2) as load:
        load.wait_progress(10)
        for case, rest in sorted(_FAILS_AFTER_CHECK.items()):
            install_file(binary, "#!/bin/sh\ncase \"$1\" in -t) exec %s "
                         "\"$@\";; esac\n%s" % (FUGUE, rest.format(
                             dir=t.dir)), 0o755)
            t0 = time.monotonic()
            rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
            why = ("its trial run did not end in time" if case == "hangs"
                   else "the new binary failed its trial run")
            check(rc == 78 and out.startswith("refused: %s" % why),
                  "upgrade to a binary that %s: exit %d, %r %r, want 78 "
                  "and \"refused: %s\"" % (case, rc, out, err, why))
            if case == "hangs":
                check(time.monotonic() - t0 >= 2.9, "refused %.1fs after "
                      "it began, before ready_timeout (3s)"
                      % (time.monotonic() - t0))
                with open(t.path("trial.pid")) as fh:
                    pids = [int(p) for p in fh.read().split()]
                t.remember(*pids)
                wait_until(lambda: not any(pid_alive(p) for p in pids), 5,
                           what="the trial %d and its child %d to be "
                           "killed" % tuple(pids))
            check(_same_process(f, start) and exe_inode(f.pid) == orig,
                  "the master re-executed a binary that %s" % case)
            check(workers_by_gen(f) == before, "the workers changed after "
                  "a binary that %s: %s -> %s" % (case, before,
                                                   workers_by_gen(f)))
            load.wait_progress(10)
        check("re-executing" not in f.log(), "fugue re-executed a binary "
              "that fails")
        check("new build: cannot start" in f.log(), "the trial's output is "
              "not logged")
        check(re.search(r"error: upgrade: %s killed by signal SEGV"
                        % re.escape(binary), f.log()),
              "the segfault of the trial is not logged")
        new = install_binary(FUGUE, binary)
        rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
        check(rc == 0 and out.startswith("ok: generation 2"),
              "upgrade to a good binary again: %d %r %r" % (rc, out, err))
        wait_generation(f, 2, 2)
        load.wait_progress(10)
    load.check_clean(min_ok=20)
    check(_same_process(f, start) and exe_inode(f.pid) == new,
          "after the good upgrade fugue runs %s"
          % os.readlink("/proc/%d/exe" % f.pid))


def _hanging_check(t, binary):
    """Make binary a script whose -t hangs, with a child of its own that
    hangs too; both write their pids (check.pid, check-child.pid). Anything
    else runs the real fugue."""
    d = t.dir
    install_file(binary, "#!/bin/sh\ncase \"$1\" in -t) ;; *) exec %s "
                 "\"$@\";; esac\n"
                 "echo $$ > %s/check.tmp && mv %s/check.tmp %s/check.pid\n"
                 "sleep 1000 &\n"
                 "echo $! > %s/child.tmp && mv %s/child.tmp %s/child.pid\n"
                 "wait\n" % ((FUGUE,) + (d,) * 6), 0o755)


def _check_pids(t):
    """The pids of the hanging check and its child, once both are known."""
    def both():
        p = [_pid_from(t.path(n)) for n in ("check.pid", "child.pid")]
        return all(p) and p
    pids = wait_until(both, 10, what="the hanging check to start its child")
    t.remember(*pids)
    return pids


@timeout(60)
def test_hanging_upgrade_check_is_killed_at_its_bound(t):
    # The new binary's -t hangs (and so does a child it started): after
    # ready_timeout the upgrade is refused, the check and its child are
    # killed, and the master takes reloads and upgrades again.
    binary = _copy_of_fugue(t)
    conf = _conf(t, count=2, worker={"ready_timeout": "2s"})
    f = start_binary(t, binary, ["-c", conf])
    f.wait_ready(2, 15)
    before = workers_by_gen(f)
    _hanging_check(t, binary)
    t.expect_error(r"upgrade")
    t0 = time.monotonic()
    box = t.background(t.run, ["-c", conf, "-w", "20s", "upgrade"], 30)
    pids = _check_pids(t)
    box["thread"].join(30)
    check("result" in box, "fugue upgrade: %r" % box.get("error"))
    rc, out, err = box["result"]
    check(rc == 78 and out.startswith("refused: its check did not end in "
                                      "time"),
          "upgrade with a hanging check: exit %d, %r %r" % (rc, out, err))
    check(time.monotonic() - t0 >= 1.9, "refused %.1fs after it began, "
          "before ready_timeout (2s)" % (time.monotonic() - t0))
    wait_until(lambda: not any(pid_alive(p) for p in pids), 5,
               what="the check %d and its child %d to be killed" %
               tuple(pids))
    check(workers_by_gen(f) == before, "the workers changed: %s -> %s"
          % (before, workers_by_gen(f)))
    rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
    check(rc == 0 and out.startswith("ok: generation 2"),
          "a reload after the hanging check: %d %r %r" % (rc, out, err))
    install_binary(FUGUE, binary)
    rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
    check(rc == 0 and out.startswith("ok: generation 3"),
          "an upgrade after the hanging check: %d %r %r" % (rc, out, err))
    wait_generation(f, 3, 2)


@timeout(60)
def test_stop_during_a_hanging_upgrade_check_kills_it(t):
    # TERM while the new binary's -t hangs (ready_timeout is far off):
    # fugue stops as it would otherwise, and takes the check and its child
    # with it.
    binary = _copy_of_fugue(t)
    conf = _conf(t, count=2, kill_timeout="3s",
                 worker={"ready_timeout": "60s"})
    f = start_binary(t, binary, ["-c", conf])
    f.wait_ready(2, 15)
    _hanging_check(t, binary)
    f.signal(signal.SIGUSR2)
    pids = _check_pids(t)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    wait_until(lambda: not any(pid_alive(p) for p in pids), 5,
               what="the check %d and its child %d to be gone after fugue "
               "stopped" % tuple(pids))


# A process that is not fugue's: it notes every signal it can catch.
_STRANGER = r'''
import os, signal, sys, time
path = sys.argv[1]

def note(sig, frame):
    with open(path, "a") as fh:
        fh.write("%d\n" % sig)

for s in signal.valid_signals():
    if s not in (signal.SIGKILL, signal.SIGSTOP):
        try:
            signal.signal(s, note)
        except (OSError, ValueError):
            pass
open(path + ".ready", "w").close()
while True:
    time.sleep(1)
'''


def _state_text(port, pid):
    """A version 2 upgrade state whose only worker is pid, with the
    configuration of a one-worker fugue on port."""
    def enc(s):
        return "".join("%%%02X" % ord(c) if ord(c) <= 0x20 or c == "%"
                       else c for c in s)
    cfg = [("listen", "address", "127.0.0.1:%d" % port),
           ("worker", "command", "%s serve" % WORKER),
           ("worker", "count", "1"), ("worker", "ready", "150ms"),
           ("worker", "kill_timeout", "20s")]
    return "".join(
        ["fugue-state 2\n", "master 1 1 1 -1 -1 %\n",
         # PID SLOT GEN STATE(ready) EXEC_OK FAILED EXECFD OUTFD RESTARTS
         # BACKOFF_MS LAST_STATUS AGE_MS READY_AGE_MS TIMER_MS
         "worker %d 0 1 1 1 0 -1 -1 0 0 0 60000 59000 -1\n" % pid,
         "nofile -1\n", "control -1 0 0 0\n"] +
        ["cfg %s %s %s\n" % (s, k, enc(v)) for s, k, v in cfg] + ["end\n"])


@timeout(60)
def test_crafted_state_never_adopts_a_stranger(t):
    # fugue started with an upgrade state (FUGUE_STATE_FD) that names, as
    # its worker, a process group leader fugue did not start: fugue logs
    # that it is not its child and leaves it alone (no signal, ever: it is
    # still there, untouched, after fugue stopped), starts a worker of its
    # own for the slot, and stops at once (it does not wait kill_timeout,
    # 20 s, for a process it cannot reap).
    notes = t.path("stranger.signals")
    stranger = subprocess.Popen([sys.executable, "-c", _STRANGER, notes],
                                stdin=subprocess.DEVNULL,
                                start_new_session=True)
    t.remember(stranger.pid)
    try:
        wait_until(lambda: os.path.exists(notes + ".ready"), 10,
                   what="the stranger's signal handlers")
        port = t.port = free_port()
        state = t.write("state", _state_text(port, stranger.pid))
        conf = t.basic_config(port=port, count=1, ready="150ms",
                              kill_timeout="20s")
        t.expect_error(r"upgrade: pid %d \(worker 0\) is not a child of "
                       r"fugue; not adopted" % stranger.pid)
        f = Launched(t, ["/bin/sh", "-c", 'exec 9<"$0" && exec "$@"', state,
                         FUGUE, "-c", conf], "fugue.log", name="fugue",
                     env=clean_env(t, FUGUE_STATE_FD="9"))
        f.wait_log(reload_done_re(f, 2, "upgrade"), 15)
        (pid,) = wait_generation(f, 2, 1)
        ids = collect_ids(port, [0], test=t)
        check(ids[0] == (pid, 2), "slot 0 answers as %s, want fugue's own "
              "worker %d of generation 2" % (ids[0], pid))
        f.signal(signal.SIGTERM)
        poll_for(lambda: f.poll() is not None, 10)
        got = open(notes).read().split() if os.path.exists(notes) else []
        check(not got, "fugue signalled the stranger %d: signals %s"
              % (stranger.pid, got))
        check(f.poll() == 0, "fugue did not stop within 10 s of TERM (exit "
              "status %s); kill_timeout is 20 s" % f.poll())
        check(pid_alive(stranger.pid) and
              proc_stat(stranger.pid)[0] != "T",
              "the stranger %d is gone or stopped: %s"
              % (stranger.pid, proc_stat(stranger.pid)))
        check(re.search(r"fugue \(pid %d\) error: upgrade: pid %d \(worker "
                        r"0\) is not a child of fugue; not adopted\n.*"
                        r"upgrade: adopted 0 workers of generation 1"
                        % (f.pid, stranger.pid), f.log(), re.S),
              "fugue did not say it left pid %d alone" % stranger.pid)
    finally:
        stranger.kill()
        stranger.wait(10)


@timeout(60)
def test_upgrade_check_and_trial_leave_nothing_running(t):
    # The new binary's -t and its trial run each start a child that stays,
    # then pass. The trial's child holds copies of every fd of the state:
    # the listeners, the workers' pipes, and the connection of the "fugue
    # upgrade" client, which would then wait for the end of an answer that
    # never closes. Once the check or the trial has ended, its process
    # group goes too: the upgrade goes through and the client gets its
    # answer.
    binary = _copy_of_fugue(t)
    conf = _conf(t, count=1)
    f = start_binary(t, binary, ["-c", conf])
    f.wait_ready(1, 15)
    install_file(binary, "#!/bin/sh\n"
                 "if [ \"$1\" = -t ]; then what=check; "
                 "elif [ -n \"$FUGUE_TRIAL_FD\" ]; then what=trial; "
                 "else exec %s \"$@\"; fi\n"
                 "sleep 1000 &\n"
                 "echo $! > %s/$what.tmp && mv %s/$what.tmp %s/$what.pid\n"
                 "%s \"$@\"\n" % ((FUGUE,) + (t.dir,) * 3 + (FUGUE,)), 0o755)
    rc, out, err = t.run(["-c", conf, "-w", "15s", "upgrade"], timeout=30)
    check(rc == 0 and out.startswith("ok: generation 2"),
          "upgrade: %d %r %r" % (rc, out, err))
    pids = [_pid_from(t.path(n + ".pid")) for n in ("check", "trial")]
    check(all(pids), "the check and the trial did not both start a child: "
          "%s" % pids)
    t.remember(*pids)
    wait_until(lambda: not any(pid_alive(p) for p in pids), 5,
               what="the children %s of the check and of the trial to be "
               "gone" % pids)
    wait_generation(f, 2, 1)


@timeout(90)
def test_status_answered_across_upgrades(t):
    # `fugue status` in a loop while the master re-executes itself: a
    # request the old image accepted but never read is asked again of the
    # new one, never "no answer".
    conf = _conf(t, count=2, ready="100ms", worker={"ready_hold": "0"})
    f = t.start_ready(conf, 2)
    stop = threading.Event()
    bad, calls = [], [0]

    def ask():
        while not stop.is_set():
            rc, out, err = t.run(["-c", conf, "status"], timeout=15)
            calls[0] += 1
            if rc != 0:
                bad.append((rc, err.strip()))
    ths = [threading.Thread(target=ask, daemon=True) for _ in range(2)]
    for th in ths:
        th.start()
    try:
        for gen in range(2, 12):
            f.signal(signal.SIGUSR2)
            f.wait_log(reload_done_re(f, gen, "upgrade"), 30)
    finally:
        stop.set()
        for th in ths:
            th.join(20)
    check(calls[0] >= 10, "only %d status calls" % calls[0])
    check(not bad, "%d of %d status calls failed: %s"
          % (len(bad), calls[0], bad[:3]))
