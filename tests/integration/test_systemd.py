"""systemd, containers and daemon mode (fugue(8), ENVIRONMENT): what fugue
tells NOTIFY_SOCKET across start, reloads, upgrades and stop; WATCHDOG=1,
also across slow upgrades; what workers see of it; socket activation; -d;
fugue as PID 1."""

import os
import re
import shutil
import signal
import subprocess
import time

from harness import (FUGUE, Skip, check, children_of, collect_ids,
                     descendants_of, free_port, http_get, inherit, is_root,
                     pid_alive, pid_exists, poll_for, proc_cmdline,
                     proc_stat, proc_status_field, timeout, try_get,
                     wait_until)
from loadgen import (Load, exe_inode, file_inode, line_time,
                     reload_done_re, start_binary, wait_generation)
from support import (Launched, NotifyListener, clean_env, notify_fields,
                     read_lines)


def _kinds(msgs):
    """A short name per message: READY, RELOADING, STOPPING, WATCHDOG,
    FDSTORE, FDSTOREREMOVE."""
    out = []
    for _, _, text in msgs:
        f = notify_fields(text)
        for k in ("READY", "RELOADING", "STOPPING", "WATCHDOG", "FDSTORE",
                  "FDSTOREREMOVE"):
            if f.get(k) == "1":
                out.append(k)
                break
        else:
            out.append("?" + text)
    return out


@timeout(60)
def test_notify_sequence(t):
    # The whole conversation with "systemd", message by message: start,
    # HUP, USR2 (same pid), a rolled-back reload, a refused reload, a
    # refused upgrade, stop (which leaves the fd store alone). Nothing else
    # is sent.
    ns = NotifyListener(t)
    conf = t.basic_config(count=2)
    good = open(conf).read()
    f = t.start(conf, env=clean_env(t, NOTIFY_SOCKET=ns.path))
    t.expect_error(r"reload failed|refused|count|upgrade")
    seen = []      # (step, [kinds]) so far, for the failure messages
    problems = []  # every deviation, reported together at the end

    def step(name, action, want_status, n_ready):
        before = len(ns.snapshot())
        t0 = time.monotonic()
        if action:
            action()
        wait_until(lambda: _kinds(ns.snapshot()).count("READY") >= n_ready,
                   20, what="READY=1 number %d (%s); so far %s"
                   % (n_ready, name, _kinds(ns.snapshot())))
        msgs = ns.snapshot()[before:]
        kinds = _kinds(msgs)
        seen.append((name, kinds))
        # The listener goes to systemd's fd store as it is bound, and again
        # from the new image of an upgrade (systemd keeps one copy).
        want = ["FDSTORE", "READY"] if action is None else \
            ["RELOADING", "FDSTORE", "READY"] if name == "USR2" else \
            ["RELOADING", "READY"]
        if kinds != want:
            problems.append("%s: fugue sent %s, want %s"
                            % (name, [m[2] for m in msgs], want))
        for m in msgs:
            if _kinds([m]) == ["RELOADING"]:
                usec = notify_fields(m[2]).get("MONOTONIC_USEC", "")
                if not (usec.isdigit() and t0 - 1 <= int(usec) / 1e6 <=
                        time.monotonic() + 1):
                    problems.append("%s: MONOTONIC_USEC=%r, not "
                                    "CLOCK_MONOTONIC now (%.3f)"
                                    % (name, usec, t0))
        status = notify_fields(msgs[-1][2]).get("STATUS", "")
        if not re.search(want_status, status):
            problems.append("%s: STATUS=%r, want /%s/"
                            % (name, status, want_status))
        bad = [m for m in msgs if m[1] != f.pid]
        if bad:
            problems.append("%s: messages from pids %s, fugue is %d"
                            % (name, [m[1] for m in bad], f.pid))

    step("start", None, r"^2 workers ready, generation 1$", 1)
    f.wait_ready(2, 5)
    step("HUP", lambda: f.signal(signal.SIGHUP),
         r"^2 workers ready, generation 2$", 2)
    step("USR2", lambda: f.signal(signal.SIGUSR2),
         r"^2 workers ready, generation 3$", 3)
    check(f.alive(), "fugue exited during the upgrade")
    # A deploy whose workers die before they are ready: rolled back.
    # ready = notify: a crashing worker never counts as ready, however
    # slowly a sanitizer build starts on a loaded machine.
    t.write("fugue.conf", good.replace(" serve", " crash")
            .replace("ready = 200ms", "ready = notify"))
    step("rolled-back HUP", lambda: f.signal(signal.SIGHUP),
         r"reload failed.*generation 3", 4)
    # An invalid configuration: refused, by HUP and by USR2.
    t.write("fugue.conf", good.replace("count = 2", "count = four"))
    step("refused HUP", lambda: f.signal(signal.SIGHUP), r"refused", 5)
    step("refused USR2", lambda: f.signal(signal.SIGUSR2),
         r"upgrade refused", 6)
    t.write("fugue.conf", good)
    collect_ids(t.port, [0, 1], test=t)
    before = len(ns.snapshot())
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    wait_until(lambda: len(ns.snapshot()) > before, 3,
               what="a message at stop")
    last = ns.snapshot()[before:]
    if _kinds(last) != ["STOPPING"]:
        problems.append("stop: fugue sent %s, want STOPPING=1 only"
                        % [m[2] for m in last])
    check(not problems, "; ".join(problems) + " (all: %s)" % seen)


@timeout(40)
def test_watchdog_and_what_workers_see(t):
    # WATCHDOG_USEC=200000: WATCHDOG=1 every ~100 ms from fugue's pid.
    # Workers see neither fugue's NOTIFY_SOCKET nor its watchdog.
    ns = NotifyListener(t)
    conf = t.basic_config(count=1)
    f = t.start(conf, env=clean_env(t, NOTIFY_SOCKET=ns.path,
                                    WATCHDOG_USEC="200000"))
    f.wait_ready(1, 10)
    env = inherit(t.port)["env"]
    leaked = {k: env[k] for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC",
                                  "WATCHDOG_PID") if k in env}
    check(not leaked, "a ready = 200ms worker sees %s" % leaked)

    def pings():
        return [m for m in ns.snapshot(watchdog=True)
                if m[2] == "WATCHDOG=1"]
    wait_until(lambda: len(pings()) >= 12, 10,
               what="12 WATCHDOG=1 (got %d)" % len(pings()))
    p = pings()
    check({m[1] for m in p} == {f.pid}, "WATCHDOG=1 from pids %s, fugue "
          "is %d" % (sorted({m[1] for m in p}), f.pid))
    gaps = sorted(b[0] - a[0] for a, b in zip(p, p[1:]))
    median = gaps[len(gaps) // 2]
    check(0.07 <= median <= 0.16, "WATCHDOG=1 every %.0f ms (median), want "
          "~100 (WATCHDOG_USEC/2); gaps %s"
          % (median * 1000, [round(g * 1000) for g in gaps]))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)

    # WATCHDOG_PID names another process: no pings. ready = notify with a
    # worker watchdog: the worker talks to fugue's own socket, with
    # fugue's watchdog value, never to ours.
    ns2 = NotifyListener(t, "notify2.sock")
    conf2 = t.basic_config(count=1, ready="notify", name="notify.conf",
                           worker={"watchdog": "2s"})
    g = t.start(conf2, log="fugue2.log",
                env=clean_env(t, NOTIFY_SOCKET=ns2.path,
                              WATCHDOG_USEC="200000", WATCHDOG_PID="1"))
    g.wait_ready(1, 10)
    env = inherit(t.port)["env"]
    check(env.get("NOTIFY_SOCKET") and env["NOTIFY_SOCKET"] != ns2.path,
          "a ready = notify worker has NOTIFY_SOCKET=%r (fugue's own is "
          "%s)" % (env.get("NOTIFY_SOCKET"), ns2.path))
    check(env.get("WATCHDOG_USEC") == "2000000" and
          "WATCHDOG_PID" not in env,
          "worker watchdog env: WATCHDOG_USEC=%r WATCHDOG_PID=%r, want "
          "2000000 and none" % (env.get("WATCHDOG_USEC"),
                                env.get("WATCHDOG_PID")))
    wait_until(lambda: _kinds(ns2.snapshot()) == ["FDSTORE", "READY"], 5,
               what="FDSTORE=1 and READY=1 on the second socket")
    got = poll_for(lambda: [m for m in ns2.snapshot(watchdog=True)
                            if m[2] == "WATCHDOG=1"], 0.6)
    check(not got, "WATCHDOG=1 sent although WATCHDOG_PID=1: from pids %s"
          % [m[1] for m in got or []])
    check([m[1] for m in ns2.snapshot()] == [g.pid, g.pid],
          "messages on fugue's NOTIFY_SOCKET from %s, fugue is %d"
          % ([m[1] for m in ns2.snapshot()], g.pid))


def _activate():
    p = shutil.which("systemd-socket-activate")
    if not p:
        raise Skip("systemd-socket-activate is not installed (Debian: "
                   "systemd)")
    return p


def _sock_inode(pid, fd):
    try:
        return os.readlink("/proc/%d/fd/%d" % (pid, fd))
    except OSError:
        return None


@timeout(40)
def test_socket_activation(t):
    # Under systemd-socket-activate, fugue serves on the socket it was
    # handed (the same inode in the workers), binds nothing itself, and
    # keeps that socket across a reload.
    sa = _activate()
    conf = t.basic_config(count=2)
    f = Launched(t, [sa, "-l", "127.0.0.1:%d" % t.port, FUGUE, "-c", conf],
                 "activate.log", env=clean_env(t))
    f.wait_log(r"Listening on 127\.0\.0\.1:%d" % t.port, 10)
    # The first connection makes it exec fugue; it waits in the backlog.
    st, body = http_get(t.port, "/", timeout=15)
    check(st == 200, "first request answered %d" % st)
    f.wait_ready(2, 10)
    check(proc_cmdline(f.pid).startswith(FUGUE), "pid %d is %r, not fugue"
          % (f.pid, proc_cmdline(f.pid)))
    f.wait_log(r"fugue \(pid %d\) info: listening on 127\.0\.0\.1:%d "
               r"\(socket activation\)" % (f.pid, t.port), 2)
    handed = _sock_inode(f.pid, 3)
    rep = inherit(t.port)
    t.remember(int(rep["pid"]))
    w3 = [e["target"] for e in rep["fds"] if int(e["fd"]) == 3]
    check(handed and w3 == [handed], "fugue's fd 3 is %s, the worker's fd "
          "3 is %s" % (handed, w3))
    env = rep["env"]
    check(env.get("LISTEN_FDS") == "1" and env.get("LISTEN_PID") ==
          str(rep["pid"]), "worker LISTEN_FDS=%r LISTEN_PID=%r"
          % (env.get("LISTEN_FDS"), env.get("LISTEN_PID")))
    f.signal(signal.SIGHUP)
    f.wait_log(r"reload: generation 2 ready", 15)
    seen = collect_ids(t.port, [0, 1], test=t)
    check(all(g == 2 for _, g in seen.values()), "after HUP: %s" % seen)
    rep2 = inherit(t.port)
    check([e["target"] for e in rep2["fds"] if int(e["fd"]) == 3] ==
          [handed], "after the reload the workers listen on another socket")
    check(_sock_inode(f.pid, 3) == handed, "fugue's fd 3 changed")
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)


def test_socket_activation_unmatched_address(t):
    # A socket handed over that matches no [listen] address: exit 78.
    sa = _activate()
    conf = t.basic_config(count=1)
    other = free_port()
    f = Launched(t, [sa, "-l", "127.0.0.1:%d" % other, FUGUE, "-c", conf],
                 "activate.log", env=clean_env(t))
    f.wait_log(r"Listening on 127\.0\.0\.1:%d" % other, 10)
    t.expect_error(r"matches no \[listen\] address")
    try_get(other, "/", timeout=2)     # the connection that starts fugue
    rc = f.wait_exit(10)
    check(rc == 78, "fugue exited %s, want 78" % rc)
    f.wait_log(r"LISTEN_FDS: fd 3 \(127\.0\.0\.1:%d\) matches no \[listen\] "
               r"address" % other, 1)


def _daemon_pid(pidf):
    try:
        with open(pidf) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


@timeout(40)
def test_daemon_ready_when_it_returns(t):
    # -d returns 0 only once the workers are ready: a request made right
    # after it returns succeeds; the pid file names the daemon, which
    # runs in its own session.
    logf = t.path("app.log")
    pidf = t.path("fugue.pid")
    conf = t.basic_config(count=2, ready="500ms",
                          master={"log_file": logf, "pid_file": pidf})
    rc, out, err = t.run(["-c", conf, "-d"], timeout=20)
    r = try_get(t.port, "/", timeout=2)
    pid = _daemon_pid(pidf)
    if pid:
        t.remember(pid)
        t.remember(*descendants_of(pid))
    check(rc == 0, "fugue -d exited %d: %s" % (rc, out + err))
    check(r is not None and r[0] == 200, "no answer right after -d "
          "returned: %s" % (r,))
    check(pid and pid_alive(pid), "pid file %s names %s, not a live "
          "process" % (pidf, pid))
    st = proc_stat(pid)
    check(st[3] == pid, "the daemon %d is not a session leader (sid %d)"
          % (pid, st[3]))
    check(FUGUE in proc_cmdline(pid), "pid %d is %r" % (pid,
                                                       proc_cmdline(pid)))
    kids = children_of(pid)
    t.remember(*kids)
    check(len(kids) == 2, "the daemon has children %s" % kids)
    check(any(re.search(r"fugue \(pid %d\) info: ready: 2 workers$" % pid,
                        l) for l in read_lines(logf)),
          "no ready line from pid %d in %s" % (pid, logf))
    check(not out.strip() and not err.strip(), "-d printed %r" % (out + err))
    std = [os.readlink("/proc/%d/fd/%d" % (pid, n)) for n in (0, 1, 2)]
    check(std == ["/dev/null"] * 3, "the daemon's fds 0-2: %s" % std)
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not pid_alive(pid), 10, what="the daemon to exit")
    check(any("fugue (pid %d) info: exiting with status 0" % pid in l
              for l in read_lines(logf)), "the daemon did not exit 0")
    check(not os.path.exists(pidf), "pid file left behind")
    check(not [k for k in kids if pid_alive(k)], "workers left behind")


@timeout(40)
def test_daemon_never_ready_exits_69(t):
    # Workers that never become ready: the launching process exits with
    # the daemon's status, 69, and says why on stderr.
    logf = t.path("app.log")
    conf = t.basic_config(count=2, mode="no-ready",
                          master={"log_file": logf},
                          ready="notify", worker={"ready_timeout": "2s"})
    t0 = time.monotonic()
    rc, out, err = t.run(["-c", conf, "-d"], timeout=20)
    check(rc == 69, "fugue -d exited %d, want 69: %s" % (rc, out + err))
    check(re.search(r"first generation not ready: 0 of 2 workers ready "
                    r"after ready_timeout 2s; no READY=1 came from running "
                    r"workers \(if the server does not speak sd_notify, set "
                    r"ready to a duration\)", err),
          "stderr does not say why: %r" % err)
    check(time.monotonic() - t0 >= 1.8, "it gave up before ready_timeout")
    pids = {int(m) for l in read_lines(logf)
            for m in re.findall(r"fugue \(pid (\d+)\)", l)}
    check(len(pids) == 1 and not pid_alive(pids.pop()),
          "the daemon still runs")


def test_daemon_needs_log_file(t):
    conf = t.basic_config(count=1)
    rc, out, err = t.run(["-c", conf, "-d"], timeout=10)
    check(rc == 78, "fugue -d without log_file exited %d, want 78" % rc)
    check("log_file" in err, "the error does not name log_file: %r" % err)
    check(try_get(t.port, "/", timeout=1) is None, "something serves")


def _nspid(pid):
    """The pid of pid in its innermost PID namespace."""
    v = proc_status_field(pid, "NSpid")
    return int(v.split()[-1]) if v else None


@timeout(40)
def test_pid1_reaps_orphans(t):
    # fugue as PID 1 of a new PID namespace (as in a container): subreaper
    # = auto makes it reap the orphans its workers leave; it stops on TERM.
    if not is_root():
        raise Skip("needs root for unshare --pid; running as uid %d"
                   % os.geteuid())
    unshare = shutil.which("unshare")
    if not unshare:
        raise Skip("unshare is not installed (util-linux)")
    conf = t.basic_config(count=2, mode="orphan --serve --sleep 3000",
                          master={"log_level": "debug"})
    f = Launched(t, [unshare, "--pid", "--fork", "--mount-proc",
                     "--kill-child", FUGUE, "-c", conf], "unshare.log",
                 env=clean_env(t))
    try:
        f.wait_log(r"fugue \(pid 1\) info: ready: 2 workers$", 10)
    except AssertionError:
        if f.poll() is not None and "fugue (pid" not in f.log():
            raise Skip("unshare failed here: %s" % f.log()[-300:])
        raise
    (fo,) = children_of(f.pid)
    t.remember(fo)
    check(_nspid(fo) == 1, "fugue is pid %s in its namespace" % _nspid(fo))
    rep = inherit(t.port)
    check(rep["ppid"] == 1 and rep["env"].get("FUGUE_MASTER_PID") == "1",
          "a worker sees ppid %s, FUGUE_MASTER_PID=%s"
          % (rep["ppid"], rep["env"].get("FUGUE_MASTER_PID")))
    workers = children_of(fo)
    check(len(workers) == 2, "fugue's children: %s" % workers)
    t.remember(*workers)
    outside = {}
    for w in workers:
        for d in descendants_of(w):
            t.remember(d)
            outside[_nspid(d)] = d
    ns_orphans = [int(m.group(1)) for m in
                  f.wait_log(r"\): orphan (\d+)$", 5, count=2)][:2]
    orphans = [outside.get(n) for n in ns_orphans]
    check(all(orphans), "orphans %s (namespace pids) not found among the "
          "workers' children %s" % (ns_orphans, outside))
    for w in workers:
        os.kill(w, signal.SIGKILL)
    # (One that already exited, a zombie of its dead worker, is
    # re-parented too and reaped: the "reaped pid" lines below show it.)
    wait_until(lambda: all((proc_stat(o) or (0, fo))[1] == fo
                           for o in orphans), 5,
               what="the orphans %s to be re-parented to fugue %d" %
               (orphans, fo))
    # They exit 3 s after they started; PID 1 must reap them.
    wait_until(lambda: not any(pid_exists(o) for o in orphans), 8,
               what="the orphans %s to exit and be reaped" % orphans)
    for n in ns_orphans:
        f.wait_log(r"fugue \(pid 1\) debug: reaped pid %d$" % n, 2)
    zombies = [p for p in children_of(fo, include_zombies=True)
               if proc_stat(p) and proc_stat(p)[0] == "Z"]
    check(not zombies, "zombie children of fugue: %s" % zombies)
    check(try_get(t.port) is not None, "not serving after the orphans")
    os.kill(fo, signal.SIGTERM)
    rc = f.wait_exit(10)
    check(rc == 0, "unshare (fugue as PID 1) exited %s" % rc)
    f.wait_log(r"fugue \(pid 1\) info: exiting with status 0$", 1)


@timeout(90)
def test_watchdog_pinged_across_a_slow_upgrade(t):
    # WATCHDOG_USEC=5s: fugue pings every 2.5 s. Each upgrade's new image
    # takes 3 s to start (a wrapper that sleeps once it is exec'd with the
    # state, then runs the real fugue under its own name): without a ping
    # right before the exec and one right after the adoption, the gap
    # would be 3 s plus a whole interval, over WatchdogSec. Under load,
    # over three upgrades: every gap between pings is under 5 s, a ping
    # comes after the "re-executing" line and before the exec ends, and
    # one at the adoption, long before the new image's first interval.
    usec, slow = 5000000, 3.0
    os.makedirs(t.path("bin"))
    wrapper = t.write("bin/fugue", "#!/bin/bash\n"
                      "if [ -n \"$FUGUE_STATE_FD\" ]; then sleep %g; fi\n"
                      "exec -a \"$0\" %s \"$@\"\n" % (slow, FUGUE), 0o755)
    ns = NotifyListener(t)
    conf = t.basic_config(count=2, ready="150ms")
    f = start_binary(t, wrapper, ["-c", conf],
                     env=clean_env(t, NOTIFY_SOCKET=ns.path,
                                   WATCHDOG_USEC=str(usec)))
    f.wait_ready(2, 15)
    # Log lines carry the wall clock, arrivals the monotonic one.
    offset = time.time() - time.monotonic()

    def pings():
        return [m for m in ns.snapshot(watchdog=True) if m[2] == "WATCHDOG=1"]
    wait_until(pings, usec / 1e6, what="the first WATCHDOG=1")
    with Load(t.port, new_conn=2, keep_alive=2) as load:
        load.wait_progress(10)
        for gen in (2, 3, 4):
            f.signal(signal.SIGUSR2)
            f.wait_log(reload_done_re(f, gen, "upgrade"), 30)
            wait_generation(f, gen, 2)
            load.wait_progress(5)
            # The new image's own first ping, before the next upgrade (the
            # next one's ping before its exec would fill the gap).
            n = len(pings())
            wait_until(lambda: len(pings()) > n, usec / 1e6,
                       what="a WATCHDOG=1 after upgrade %d" % gen)
    load.check_clean(min_ok=20)
    check(exe_inode(f.pid) == file_inode(FUGUE) and
          os.readlink("/proc/%d/exe" % f.pid) == FUGUE,
          "fugue does not run %s" % FUGUE)
    p = pings()
    check({m[1] for m in p} == {f.pid}, "WATCHDOG=1 from pids %s, fugue is "
          "%d" % (sorted({m[1] for m in p}), f.pid))
    gaps = [b[0] - a[0] for a, b in zip(p, p[1:])]
    reexec = [line_time(l) - offset for l in f.master_lines()
              if "upgrade: re-executing " in l]
    adopted = [line_time(l) - offset for l in f.master_lines()
               if "upgrade: adopted " in l]
    check(len(reexec) == 3 and len(adopted) == 3, "%d re-execs and %d "
          "adoptions logged, want 3" % (len(reexec), len(adopted)))

    def rel(t0):
        return [round(m[0] - t0, 2) for m in p if -6 < m[0] - t0 < 6]
    for i, (t_re, t_ad, t_next) in enumerate(zip(reexec, adopted,
                                                 reexec[1:] + [1e12])):
        check(t_ad - t_re >= slow - 0.1, "upgrade %d: the new image took "
              "%.2fs, the wrapper sleeps %gs" % (i + 2, t_ad - t_re, slow))
        # Log times are cut to the millisecond; an arrival can be late.
        check([m for m in p if t_re - 0.01 <= m[0] <= t_re + slow / 2],
              "upgrade %d: no WATCHDOG=1 right before the exec; pings at "
              "%s s from the re-executing line" % (i + 2, rel(t_re)))
        check([m for m in p if t_re + slow / 2 < m[0] <=
               min(t_ad + 1.0, t_next - 0.01)],
              "upgrade %d: no WATCHDOG=1 at the adoption; pings at %s s "
              "from the adopted line" % (i + 2, rel(t_ad)))
    check(max(gaps) < usec / 1e6, "a gap of %.2fs between WATCHDOG=1 pings, "
          "WatchdogSec is %gs; gaps: %s" % (max(gaps), usec / 1e6,
                                            [round(g, 2) for g in gaps]))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)


def test_units_verify_and_keep_the_fd_store(t):
    # conf/fugue.service and conf/fugue@.service pass systemd-analyze
    # verify (with this fugue as ExecStart), and let systemd hold every
    # listener fugue may have across a restart: FileDescriptorStoreMax= at
    # least two per address (a reload holds the old and the new ones).
    # FileDescriptorStorePreserve= is the one key an older systemd may not
    # know.
    sa = shutil.which("systemd-analyze")
    if not sa:
        raise Skip("systemd-analyze is not installed (Debian: systemd)")
    conf_dir = os.path.join(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))), "conf")
    for unit, name in (("fugue.service", "fugue.service"),
                       ("fugue@.service", "fugue@app.service")):
        text = open(os.path.join(conf_dir, unit)).read()
        m = re.search(r"^FileDescriptorStoreMax=(\d+)$", text, re.M)
        check(m and int(m.group(1)) >= 2 * 256, "%s: FileDescriptorStoreMax"
              "=%s, want at least 512" % (unit, m and m.group(1)))
        check(re.search(r"^FileDescriptorStorePreserve=yes$", text, re.M),
              "%s: no FileDescriptorStorePreserve=yes" % unit)
        path = t.write(name, text.replace("/usr/local/bin/fugue", FUGUE))
        p = subprocess.run([sa, "verify", "--man=no", path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        out = [l for l in p.stdout.decode("utf-8", "replace").splitlines()
               if l.strip() and not re.search(
                   r"Unknown key '?FileDescriptorStorePreserve'? in section "
                   r"\[Service\], ignoring", l)]
        check(p.returncode == 0 and not out, "systemd-analyze verify %s "
              "exited %d: %s" % (unit, p.returncode, out))
