"""ready = notify with a watchdog across reloads that change [worker] user:
every generation alive reaches its own notify socket with its own
credentials, during a reload, after a commit, after a rollback and across
an upgrade, and nobody poses as another generation's worker (issue #18).

The generations run as two users, A (nobody) and B (another user of the
system). A reload starts a generation of B whose workers take 2.5 s (2.5
watchdog periods) to send READY=1: the old workers of A must go on pinging
all that time, while slow requests they accepted before the reload are in
flight and short requests keep coming."""

import errno
import os
import pwd
import re
import signal
import subprocess
import time

from harness import (Skip, check, collect_ids, needs_root,
                     proc_status_field, timeout, wait_until)
from loadgen import (Load, _Conn, env_of, status_json, wait_generation,
                     wait_workers, workers_by_gen)

WATCHDOG = "1s"
PERIOD = 1.0                # the watchdog period, in seconds
SLOW_READY = 2500           # ms a new generation takes: 2.5 periods
SLOW_MS = 3000              # a slow request: still in flight at the commit
NO_PING = re.compile(r"sent no WATCHDOG=1")


def _users():
    """(A, B): two users other than root, as pwd entries."""
    try:
        a = pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody")
    for name in ("daemon", "www-data", "bin"):
        try:
            b = pwd.getpwnam(name)
        except KeyError:
            continue
        if b.pw_uid not in (0, a.pw_uid):
            return a, b
    raise Skip("no second user besides nobody (daemon, www-data, bin)")


def _conf(t, user, mode="serve", count=3, port=None, log_level="info",
          **worker):
    """ready = notify, watchdog = 1s, workers as user; the notify sockets
    in the test's directory."""
    w = {"user": user.pw_name, "watchdog": WATCHDOG, "ready_timeout": "20s",
         "kill_timeout": "15s"}
    w.update(worker)
    master = {"control_socket": t.path("ctl.sock"), "runtime_dir": t.dir,
              "log_level": log_level}
    return t.basic_config(count=count, mode=mode, ready="notify", port=port,
                          master=master, worker=w)


def _uid(pid):
    """The real, effective, saved and filesystem uids of pid."""
    v = proc_status_field(pid, "Uid")
    check(v is not None, "worker %d is gone" % pid)
    return [int(x) for x in v.split()]


def _check_users(pids, user, what):
    for p in pids:
        check(_uid(p) == [user.pw_uid] * 4, "%s worker %d runs as uids %s, "
              "want %s (%d)" % (what, p, _uid(p), user.pw_name, user.pw_uid))


def _no_watchdog_kill(f):
    bad = [l for l in f.log_lines() if NO_PING.search(l)]
    check(not bad, "workers killed by the watchdog: %s" % bad)


def _accept_queue(port):
    """Connections waiting in 127.0.0.1:port's accept queue."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            f = line.split()
            if f[1] == want and f[3] == "0A":
                return int(f[4].split(":")[1], 16)
    return 0


class SlowRequests:
    """n requests GET /slow?ms=ms, each on its own connection. When the
    constructor returns every connection was accepted by a worker (the
    listener's accept queue was seen empty after they were all made): the
    workers serving now own them."""

    def __init__(self, t, port, n, ms=SLOW_MS):
        self.conns = [_Conn(port, 30.0) for _ in range(n)]
        wait_until(lambda: _accept_queue(port) == 0, 10,
                   what="the slow requests' connections to be accepted")
        self.boxes = [t.background(c.request, "/slow?ms=%d" % ms, False)
                      for c in self.conns]

    def answers(self, timeout=30.0):
        """[(worker id, pid, gen)] of the answers; fails the test unless
        every one is a 200 with its whole body."""
        out = []
        for i, box in enumerate(self.boxes):
            box["thread"].join(timeout)
            self.conns[i].close()
            check(not box["thread"].is_alive(), "slow request %d still "
                  "unanswered after %.0fs" % (i, timeout))
            check("error" not in box, "slow request %d failed: %s"
                  % (i, box.get("error")))
            status, _, body, _ = box["result"]
            m = re.match(r"^worker (\d+) pid (\d+) gen (\d+)$", body.strip())
            check(status == 200 and m, "slow request %d: %d %r"
                  % (i, status, body[:100]))
            out.append(tuple(int(x) for x in m.groups()))
        return out


def _reload(t, conf, op="reload"):
    """The synchronous client: (exit status, what it printed)."""
    rc, out, err = t.run(["-c", conf, op], timeout=45)
    return rc, (out + err).strip()


def _ready_pid(t, conf, slot, gen, old):
    """The pid of worker slot of generation gen once status shows it ready
    under another pid than old."""
    def ready():
        for w in status_json(t, conf)["workers"]:
            if w["slot"] == slot and w["generation"] == gen and \
                    w["pid"] != old and w["state"] == "ready":
                return w["pid"]
        return None
    pid = wait_until(ready, 15, interval=0.1,
                     what="worker %d of generation %d to be respawned and "
                     "ready" % (slot, gen))
    t.remember(pid)
    return pid


@needs_root("to run the workers as two users")
@timeout(90)
def test_reload_to_another_user_under_load(t):
    a, b = _users()
    t.stage_for_other_users()
    conf = _conf(t, a)
    f = t.start_ready(conf, 3, timeout=20)
    old = workers_by_gen(f)[1]
    _check_users(old, a, "generation 1")
    _conf(t, b, mode="slow-ready %d" % SLOW_READY, port=t.port)
    with Load(t.port, new_conn=2, keep_alive=2) as load:
        load.wait_progress(10)
        slow = SlowRequests(t, t.port, 4)
        rc, out = _reload(t, conf)
        check(rc == 0 and out.startswith("ok: generation 2"),
              "reload from %s to %s: exit %d: %s" % (a.pw_name, b.pw_name,
                                                     rc, out))
        load.wait_progress(10)
        gens = {g for _, _, g in slow.answers()}
        check(gens == {1}, "slow requests answered by generations %s, want "
              "1 (the old workers had them in flight)" % sorted(gens))
        new = wait_generation(f, 2, 3)
        _check_users(new, b, "generation 2")
        time.sleep(2 * PERIOD)  # the observation window: 2 watchdog periods
        load.wait_progress(10)
    load.check_clean(min_ok=10)
    check(workers_by_gen(f) == {2: new}, "generation 2 changed: %s -> %s"
          % (new, workers_by_gen(f)))
    _no_watchdog_kill(f)


def _rolled_back(t, op):
    # Generation 2 (user B) never sends READY=1: after ready_timeout (2.5
    # periods) the reload (or the upgrade's reload) rolls back. The old
    # workers ping all along and after; a respawned one (user A) becomes
    # ready and keeps pinging.
    a, b = _users()
    t.stage_for_other_users()
    conf = _conf(t, a)
    f = t.start_ready(conf, 3, timeout=20)
    old = workers_by_gen(f)[1]
    _conf(t, b, mode="slow-ready 600000", port=t.port,
          ready_timeout="%dms" % SLOW_READY)
    t.expect_error(r"%s failed: |sent no READY=1 within" % op)
    with Load(t.port, new_conn=2, keep_alive=2) as load:
        load.wait_progress(10)
        slow = SlowRequests(t, t.port, 4)
        rc, out = _reload(t, conf, op)
        check(rc == 69 and out.startswith("failed: ") and
              out.endswith("generation 1 keeps serving"),
              "%s to %s that never gets ready: exit %d: %s"
              % (op, b.pw_name, rc, out))
        check(f.alive(), "fugue exited")
        gens = {g for _, _, g in slow.answers()}
        check(gens == {1}, "slow requests answered by generations %s"
              % sorted(gens))
        wait_workers(f, {1: old}, 15)
        time.sleep(2 * PERIOD)  # the observation window: 2 watchdog periods
        check(workers_by_gen(f) == {1: old}, "generation 1 changed after "
              "the rollback: %s -> %s" % (old, workers_by_gen(f)))
        _no_watchdog_kill(f)
        # A respawn of the old generation: user A, ready, pinging. (TERM:
        # the worker drains, so that no request of the load is cut.)
        victim = old[0]
        slot = int(env_of(victim)["FUGUE_WORKER_ID"])
        os.kill(victim, signal.SIGTERM)
        pid = _ready_pid(t, conf, slot, 1, victim)
        _check_users([pid], a, "respawned generation 1")
        check(collect_ids(t.port, {slot}, test=t)[slot] == (pid, 1),
              "worker %d is not answered by its respawn %d" % (slot, pid))
        time.sleep(2 * PERIOD)  # the observation window: 2 watchdog periods
        load.wait_progress(10)
    load.check_clean(min_ok=10)
    want = {1: sorted(old[1:] + [pid])}
    check(workers_by_gen(f) == want, "workers %s, want %s"
          % (workers_by_gen(f), want))
    _no_watchdog_kill(f)


@needs_root("to run the workers as two users")
@timeout(90)
def test_reload_to_another_user_rolled_back(t):
    _rolled_back(t, "reload")


@needs_root("to run the workers as two users")
@timeout(90)
def test_upgrade_to_another_user_rolled_back(t):
    # The same through an upgrade: generation 1 adopted by the new image.
    _rolled_back(t, "upgrade")


@needs_root("to run the workers as two users")
@timeout(120)
def test_upgrade_after_reload_to_another_user(t):
    # A -> B by a reload; an upgrade (USR2, the same binary) that adopts
    # generation 2 and starts generation 3 (B); a reload back to A. Each
    # time the serving workers have slow requests in flight and ping for
    # the 2.5 s the next generation takes.
    a, b = _users()
    t.stage_for_other_users()
    conf = _conf(t, a)
    f = t.start_ready(conf, 3, timeout=20)
    with Load(t.port, new_conn=2, keep_alive=2) as load:
        load.wait_progress(10)
        _conf(t, b, port=t.port)
        rc, out = _reload(t, conf)
        check(rc == 0 and out.startswith("ok: generation 2"),
              "reload to %s: exit %d: %s" % (b.pw_name, rc, out))
        _check_users(wait_generation(f, 2, 3), b, "generation 2")

        _conf(t, b, mode="slow-ready %d" % SLOW_READY, port=t.port)
        slow = SlowRequests(t, t.port, 3)
        rc, out = _reload(t, conf, "upgrade")
        check(rc == 0 and out.startswith("ok: generation 3"),
              "upgrade: exit %d: %s" % (rc, out))
        check(f.alive(), "fugue exited across the upgrade")
        gens = {g for _, _, g in slow.answers()}
        check(gens == {2}, "slow requests answered by generations %s, want "
              "2 (the adopted workers)" % sorted(gens))
        _check_users(wait_generation(f, 3, 3), b, "generation 3")
        _no_watchdog_kill(f)

        _conf(t, a, mode="slow-ready %d" % SLOW_READY, port=t.port)
        slow = SlowRequests(t, t.port, 3)
        rc, out = _reload(t, conf)
        check(rc == 0 and out.startswith("ok: generation 4"),
              "reload back to %s after the upgrade: exit %d: %s"
              % (a.pw_name, rc, out))
        gens = {g for _, _, g in slow.answers()}
        check(gens == {3}, "slow requests answered by generations %s"
              % sorted(gens))
        new = wait_generation(f, 4, 3)
        _check_users(new, a, "generation 4")
        time.sleep(2 * PERIOD)  # the observation window: 2 watchdog periods
        load.wait_progress(10)
    load.check_clean(min_ok=10)
    check(workers_by_gen(f) == {4: new}, "generation 4 changed: %s -> %s"
          % (new, workers_by_gen(f)))
    _no_watchdog_kill(f)


def _send_as(t, user, path, text):
    """Send text to the datagram socket at path from a process of user that
    is not a worker (tests/worker notify): (its pid, None) if sent, else
    (its pid, the errno)."""
    def drop():
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    r = subprocess.run([t.worker, "notify", text], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, preexec_fn=drop, timeout=20,
                       cwd="/", env=t.env(NOTIFY_SOCKET=path))
    words = r.stdout.decode().split()
    check(r.returncode == 0 and len(words) == 2, "the sender as %s: exit "
          "%d: %s" % (user.pw_name, r.returncode, r.stdout.decode()))
    return int(words[0]), int(words[1]) or None


@needs_root("to run the workers as two users")
@timeout(60)
def test_each_generation_its_own_socket_and_user(t):
    # While generation 2 (B) starts beside generation 1 (A): two sockets,
    # each 0600 and its generation's user's, in one directory nobody can
    # list; neither user can send to the other's; a process of B that is
    # not a worker is not heard on B's socket.
    a, b = _users()
    t.stage_for_other_users()
    conf = _conf(t, a, count=1, log_level="debug")
    f = t.start_ready(conf, 1, timeout=20)
    _conf(t, b, count=1, mode="slow-ready 600000", port=t.port)
    f.signal(signal.SIGHUP)
    box = {}

    def both():
        box["w"] = workers_by_gen(f)
        return set(box["w"]) == {1, 2} and box["w"]
    wait_until(both, 15, what="generations 1 and 2 side by side")
    (p1,), (p2,) = box["w"][1], box["w"][2]
    s1 = env_of(p1).get("NOTIFY_SOCKET", "")
    s2 = env_of(p2).get("NOTIFY_SOCKET", "")
    check(s1 and s2 and s1 != s2, "NOTIFY_SOCKET %r and %r" % (s1, s2))
    d = os.path.dirname(s1)
    check(os.path.dirname(s2) == d, "the sockets are in %s and %s"
          % (d, os.path.dirname(s2)))
    st = os.lstat(d)
    check(st.st_uid == 0 and st.st_mode & 0o777 == 0o711,
          "%s: owner %d mode %o, want root's 0711" % (d, st.st_uid,
                                                      st.st_mode & 0o777))
    for path, user in ((s1, a), (s2, b)):
        st = os.lstat(path)
        check(st.st_uid == user.pw_uid and st.st_mode & 0o777 == 0o600,
              "%s: owner %d mode %o, want %s's 0600" % (
                  path, st.st_uid, st.st_mode & 0o777, user.pw_name))
    check(_send_as(t, b, s1, "WATCHDOG=1")[1] == errno.EACCES,
          "%s could send to generation 1's socket (%s's)" % (b.pw_name,
                                                             a.pw_name))
    check(_send_as(t, a, s2, "READY=1")[1] == errno.EACCES,
          "%s could send to generation 2's socket (%s's)" % (a.pw_name,
                                                             b.pw_name))
    pid, err = _send_as(t, b, s2, "READY=1")
    check(err is None, "%s cannot send to its own generation's socket: "
          "errno %s" % (b.pw_name, err))
    f.wait_log(r"debug: notify message from pid %d, not a worker of "
               r"generation 2; ignored" % pid, 10)
    states = {w["pid"]: w["state"] for w in status_json(t, conf)["workers"]}
    check(states.get(p2) == "starting", "generation 2's worker is %s after "
          "a READY=1 from another process of its user" % states.get(p2))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(20) == 0, "fugue exited %s" % f.rc)
