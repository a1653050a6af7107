"""The control socket and its clients (fugue(8), CONTROL SOCKET):
status and status --json against what /proc says, reload/upgrade outcomes
and exit codes, scale, peer credentials, malformed and idle clients, and
stopping through the pid file or the socket."""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import time

from harness import (check, collect_ids, fail, http_get,
                     needs_root, pid_alive, timeout, try_get, wait_until)
from support import ctl, ctl_exchange

# SLOT PID GEN STATE UPTIME RESTARTS MEMORY LAST-EXIT
ROW = re.compile(r"^(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\d+)\s+(\S+)"
                 r"\s+(.*?)\s*$")


def _start(t, count=2, master=None, **kw):
    sock = t.path("ctl.sock")
    m = {"control_socket": sock}
    m.update(master or {})
    conf = t.basic_config(count=count, master=m, **kw)
    f = t.start_ready(conf, count)
    return f, conf, sock


def _json(sock):
    return json.loads(ctl(sock, "status json\n"))


def _status_text(t, conf):
    rc, out, err = t.run(["-c", conf, "status"])
    check(rc == 0, "fugue status exited %d: %s" % (rc, out + err))
    lines = out.splitlines()
    check(lines and re.match(r"^fugue pid \d+, \w+, generation \d+, \d+ of "
                             r"\d+ workers ready", lines[0]),
          "status header: %r" % (lines[:1],))
    check(len(lines) > 1 and lines[1].split()[:4] ==
          ["SLOT", "PID", "GEN", "STATE"], "status columns: %r" % lines[1:2])
    rows = []
    for l in lines[2:]:
        m = ROW.match(l)
        check(m, "status row %r does not parse" % l)
        g = m.groups()    # without MEMORY: ..., RESTARTS, LAST EXIT
        rows.append(g[:6] + g[7:])
    return lines[0], rows


def _ready_json(sock, n):
    def cond():
        j = _json(sock)
        return j if j["workers_ready"] == n and j["workers_wanted"] == n \
            and j["phase"] == "running" and not j["reloading"] and \
            len(j["workers"]) == n and \
            all(w["state"] == "ready" for w in j["workers"]) else None
    return wait_until(cond, 10, what="%d ready workers in status json (%s)"
                      % (n, ctl(sock, "status json\n")))


def test_status_matches_proc(t):
    f, conf, sock = _start(t, count=3)
    st = os.stat(sock)
    check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600,
          "control socket mode %o" % st.st_mode)
    kids = f.wait_children(3)
    head, rows = _status_text(t, conf)
    check(head.startswith("fugue pid %d, running, generation 1, 3 of 3 "
                          "workers ready" % f.pid), "header %r" % head)
    check(sorted(int(r[1]) for r in rows) == kids, "status pids %s, the "
          "master's children %s" % ([r[1] for r in rows], kids))
    check(sorted(int(r[0]) for r in rows) == [0, 1, 2] and
          all(r[2] == "1" and r[3] == "ready" and r[5] == "0" and r[6] == "-"
              for r in rows), "status rows: %s" % rows)
    # A worker killed: respawned, and status says so.
    slot, victim = int(rows[1][0]), int(rows[1][1])
    t0 = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in f.children() and
               len(f.children()) == 3, 10, what="the respawn")
    j = _ready_json(sock, 3)
    check(j["pid"] == f.pid and j["generation"] == 1, "json: %s" % j)
    check(sorted(w["pid"] for w in j["workers"]) == f.children(),
          "json pids %s, children %s" % ([w["pid"] for w in j["workers"]],
                                         f.children()))
    for w in j["workers"]:
        check(set(w) >= {"slot", "pid", "generation", "state", "uptime",
                         "restarts", "last_exit"}, "json worker %s" % w)
        check(isinstance(w["uptime"], (int, float)) and
              0 <= w["uptime"] <= time.monotonic() - f.t0 + 1,
              "uptime %r" % w["uptime"])
        if w["slot"] == slot:
            check(w["restarts"] == 1 and w["last_exit"] ==
                  "killed by signal KILL" and w["uptime"] <=
                  time.monotonic() - t0 + 0.5,
                  "the respawned slot %d: %s" % (slot, w))
        else:
            check(w["restarts"] == 0 and w["last_exit"] is None,
                  "slot %d: %s" % (w["slot"], w))
    rc, out, err = t.run(["-c", conf, "status", "--json"])
    check(rc == 0 and json.loads(out)["pid"] == f.pid,
          "status --json: exit %d, %r" % (rc, out[:200]))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    check(not os.path.exists(sock), "control socket left after exit")


@timeout(60)
def test_reload_and_upgrade_outcomes(t):
    # `fugue -c FILE reload|upgrade` wait for the outcome: 0 "ok", 78
    # "refused" (invalid configuration), 69 "failed" (rolled back).
    f, conf, sock = _start(t, count=2)
    good = open(conf).read()
    t.expect_error(r"reload failed|refused|count: |worker \d+ .*crash|exited with status|before the generation was ready")
    rc, out, err = t.run(["-c", conf, "reload"], timeout=20)
    check(rc == 0 and re.match(r"^ok: generation 2 serving 2 workers$",
                               out.strip()), "reload: %d %r" % (rc, out + err))
    seen = collect_ids(t.port, [0, 1], test=t)
    check(all(g == 2 for _, g in seen.values()), "serving %s" % seen)

    t.write("fugue.conf", good.replace("count = 2", "count = four"))
    rc, out, err = t.run(["-c", conf, "reload"], timeout=20)
    check(rc == 78 and out.startswith("refused: ") and "count" in out,
          "reload of an invalid configuration: %d %r" % (rc, out + err))

    # ready = notify: a crashing worker never counts as ready, however
    # slowly a sanitizer build starts on a loaded machine.
    t.write("fugue.conf", good.replace(" serve", " crash")
            .replace("ready = 200ms", "ready = notify"))
    rc, out, err = t.run(["-c", conf, "reload"], timeout=20)
    check(rc == 69 and out.startswith("failed: ") and
          "generation 2 keeps serving" in out,
          "rolled-back reload: %d %r" % (rc, out + err))
    check(f.alive(), "fugue exited")
    seen = collect_ids(t.port, [0, 1], test=t)
    check(all(g == 2 for _, g in seen.values()), "after the rollback %s"
          % seen)

    # An upgrade: the client's connection waits across the re-exec.
    t.write("fugue.conf", good)
    rc, out, err = t.run(["-c", conf, "upgrade"], timeout=30)
    check(rc == 0 and re.match(r"^ok: generation \d+ serving 2 workers$",
                               out.strip()),
          "upgrade: %d %r" % (rc, out + err))
    check(_json(sock)["pid"] == f.pid, "another pid after the upgrade")


@timeout(40)
def test_reload_clients_while_reloading(t):
    # Reload requests that arrive while one runs are merged into one more
    # reload, and each client gets the outcome of a reload that started
    # after it asked: A the generation 2, B and C the generation 3.
    f, conf, sock = _start(t, count=2, ready="3s")
    a = t.background(t.run, ["-c", conf, "reload"], 20)
    f.wait_log(r"reload: starting generation 2", 10)
    b = t.background(t.run, ["-c", conf, "reload"], 20)
    # B is queued while generation 2 gets ready (3 s); C joins it.
    f.wait_log(r"reload: queued until the current one ends", 10)
    c = t.background(t.run, ["-c", conf, "reload"], 20)
    for box in (a, b, c):
        box["thread"].join(25)
    res = [box.get("result") or box.get("error") for box in (a, b, c)]
    want = [r"^ok: generation 2 serving 2 workers$",
            r"^ok: generation 3 serving 2 workers$",
            r"^ok: generation 3 serving 2 workers$"]
    for name, r, w in zip("ABC", res, want):
        check(isinstance(r, tuple) and r[0] == 0 and
              re.match(w, r[1].strip()), "client %s got %r, want /%s/"
              % (name, r, w))
    j = _ready_json(sock, 2)
    check(j["generation"] == 3, "generation %s after the reloads, want 3 "
          "(one merged reload)" % j["generation"])


def test_reload_without_control_socket(t):
    pidf = t.path("fugue.pid")
    conf = t.basic_config(count=1, master={"pid_file": pidf})
    f = t.start_ready(conf, 1)
    rc, out, err = t.run(["-c", conf, "reload"])
    check(rc == 0 and "not awaited" in out, "reload without control_socket: "
          "%d %r" % (rc, out + err))
    f.wait_log(r"reload: generation 2 ready", 10)
    rc, out, err = t.run(["-c", conf, "status"])
    check(rc == 78 and "control_socket" in err, "status without "
          "control_socket: %d %r" % (rc, out + err))


def test_scale(t):
    f, conf, sock = _start(t, count=2)
    check(ctl(sock, "scale 3\n") == "ok: 3 workers\n", "scale 3 answer")
    j = _ready_json(sock, 3)
    kids = f.wait_children(3)
    check(sorted(w["pid"] for w in j["workers"]) == kids and
          sorted(w["slot"] for w in j["workers"]) == [0, 1, 2],
          "after scale 3: %s, children %s" % (j["workers"], kids))
    _, rows = _status_text(t, conf)
    check(len(rows) == 3, "status rows after scale 3: %s" % rows)
    collect_ids(t.port, [0, 1, 2], test=t)
    check(ctl(sock, "scale 1\n") == "ok: 1 worker\n", "scale 1 answer")
    j = _ready_json(sock, 1)
    f.wait_children(1)
    check([w["slot"] for w in j["workers"]] == [0], "after scale 1: %s"
          % j["workers"])
    check(ctl(sock, "scale 0\n") == "ok: 0 workers\n", "scale 0 answer")
    f.wait_children(0)
    check(ctl(sock, "scale 2\n") == "ok: 2 workers\n", "scale 2 answer")
    _ready_json(sock, 2)
    collect_ids(t.port, [0, 1], test=t)


def _as_nobody(path, data):
    """Connect to path as uid/gid 65534 (a forked child) and return what
    the server answers."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(path)
            out = ctl_exchange(s, data)
            os.write(w, out or b"<closed without an answer>")
            os._exit(0)
        except BaseException as e:  # noqa: B902 (reported to the parent)
            try:
                os.write(w, ("EXC %s" % e).encode())
            finally:
                os._exit(1)
    os.close(w)
    out = b""
    while True:
        c = os.read(r, 4096)
        if not c:
            break
        out += c
    os.close(r)
    os.waitpid(pid, 0)
    return out.decode("utf-8", "replace")


@needs_root("to connect as another uid (nobody)")
def test_peer_with_other_uid_refused(t):
    # Even with the socket opened to everyone (chmod 0666), a peer that
    # is neither root nor fugue's uid is refused and its command ignored.
    t.check_reachable_by_others()   # the peer connects to a path in t.dir
    f, conf, sock = _start(t, count=1)
    os.chmod(sock, 0o666)
    out = _as_nobody(sock, b"stop\n")
    check(out == "error: permission denied\n", "a uid 65534 peer got %r"
          % out)
    out = _as_nobody(sock, b"scale 3\n")
    check(out.startswith("error:"), "a uid 65534 peer got %r" % out)
    f.wait_log(r"warn: control: refused a client with uid 65534$", 5,
               count=2)
    check(f.alive() and try_get(t.port) is not None, "fugue stopped serving")
    check(_json(sock)["workers_wanted"] == 1, "the refused scale was done")
    check(len(f.children()) == 1, "children: %s" % f.children())


@needs_root("to run fugue status as another uid (nobody)")
def test_status_as_another_user_says_why(t):
    # The control socket (0600) is not for nobody: fugue status says so,
    # not "is fugue running?".
    t.stage_for_other_users()
    f, conf, sock = _start(t, count=1)

    def drop():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    p = subprocess.run([t.fugue, "-c", conf, "status"], cwd="/",
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=15, preexec_fn=drop)
    check(p.returncode == 69, "fugue status as nobody exited %d: %r"
          % (p.returncode, p.stderr))
    check("Permission denied" in p.stderr and "running?" not in p.stderr and
          "root" in p.stderr, "fugue status as nobody says %r" % p.stderr)


def test_malformed_commands(t):
    f, conf, sock = _start(t, count=1)
    bad = [
        b"x" * 300 + b"\n",             # over 255 bytes
        b"y" * 255,                     # 255 bytes, no newline yet
        bytes(range(1, 256)),           # binary, no newline
        b"status\x00json\n",            # NUL byte
        b"\x00\n",
        b"frobnicate\n",
        b"STATUS\n",
        b"\n",
        b"scale\n",
        b"scale -1\n",
        b"scale 10001\n",
        b"scale 3x\n",
        b"scale 99999999999999999999\n",
        b"reload now\n",
    ]
    for data in bad:
        out = ctl(sock, data)
        check(out.startswith("error: ") and out.endswith("\n") and
              out.count("\n") == 1, "%r got %r" % (data[:40], out))
        check(f.alive(), "fugue died on %r" % data[:40])
    check(ctl(sock, "x" * 300 + "\n") == "error: command too long\n",
          "the answer to an overlong command")
    # One command per connection: what follows the first line is ignored.
    out = ctl(sock, "status\nstop\n")
    check(out.startswith("fugue pid %d" % f.pid), "status\\nstop got %r" % out)
    check(ctl(sock, "status\r\n").startswith("fugue pid"), "CRLF refused")
    # Answered after everything sent before it was handled: a "stop" run
    # by mistake would show as the phase "stopping".
    j = _json(sock)
    check(j["workers_wanted"] == 1 and j["phase"] == "running",
          "state changed by bad commands: %s" % j)
    check(f.alive() and try_get(t.port) is not None,
          "fugue stopped serving after the bad commands")
    # A client that goes away before it is answered: nothing breaks.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(b"status json\n")
    s.close()
    _ready_json(sock, 1)


@timeout(40)
def test_idle_clients_do_not_block(t):
    # Clients that send nothing (or half a line) do not hold up others,
    # and are dropped after 10 s.
    f, conf, sock = _start(t, count=1)
    idle = []
    t0 = time.monotonic()
    for i in range(20):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock)
        if i % 2:
            s.sendall(b"sta")
        t.sockets.append(s)
        idle.append(s)
    t1 = time.monotonic()
    rc, out, err = t.run(["-c", conf, "status"], timeout=5)
    check(rc == 0 and out.startswith("fugue pid"), "status with idle "
          "clients: %d %r" % (rc, out + err))
    check(time.monotonic() - t1 < 3, "status took %.1fs with idle clients"
          % (time.monotonic() - t1))
    check(ctl(sock, "scale 2\n") == "ok: 2 workers\n", "scale with idle "
          "clients")
    f.wait_children(2)
    # Dropped after 10 s: each sees EOF, none an answer.
    for s in idle:
        s.settimeout(max(0.1, t0 + 14 - time.monotonic()))
        try:
            data = s.recv(100)
        except socket.timeout:
            fail("an idle client was not dropped within 14 s")
        check(data == b"", "an idle client got %r" % data)
    dt = time.monotonic() - t0
    check(dt >= 9.5, "idle clients dropped after %.1fs, before 10 s" % dt)
    check(f.alive() and ctl(sock, "status\n").startswith("fugue pid"),
          "fugue after dropping idle clients")


@timeout(40)
def test_quit_and_stop(t):
    # -s quit through the pid file: exit 0, pid file, control socket and
    # workers gone. The control socket's own quit and stop answer before
    # fugue goes, then it exits 0.
    pidf = t.path("fugue.pid")
    f, conf, sock = _start(t, count=2, master={"pid_file": pidf})
    kids = f.children()
    rc, out, err = t.run(["-c", conf, "-s", "quit"])
    check(rc == 0, "fugue -s quit exited %d: %r" % (rc, out + err))
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    check(not os.path.exists(pidf) and not os.path.exists(sock),
          "pid file or control socket left behind")
    check(not [k for k in kids if pid_alive(k)], "workers left")
    f.wait_log(r"info: got QUIT$", 1)
    rc, out, err = t.run(["-c", conf, "status"])
    check(rc == 69 and "is fugue running" in err, "status with no fugue: "
          "%d %r" % (rc, out + err))

    # quit drains: a 3 s request in flight is answered. stop is quick: the
    # worker gets 1 s, then KILL, and the request is cut.
    for verb, how in (("quit", "graceful"), ("stop", "quick")):
        g, conf2, sock2 = _start(t, count=1, kill_timeout="10s")
        port = t.port
        kid = g.children()[0]
        base = len(os.listdir("/proc/%d/fd" % kid))
        req = t.background(http_get, port, "/slow?ms=3000", 10)
        wait_until(lambda: len(os.listdir("/proc/%d/fd" % kid)) > base, 5,
                   interval=0.005, what="the slow request to be accepted")
        t0 = time.monotonic()
        out = ctl(sock2, verb + "\n")
        check(out == "ok: stopping (%s)\n" % how, "%s answered %r"
              % (verb, out))
        check(g.wait_exit(10) == 0, "fugue exited %s after %s"
              % (g.rc, verb))
        took = time.monotonic() - t0
        req["thread"].join(10)
        if verb == "quit":
            check(req.get("result", (None,))[0] == 200, "the request in "
                  "flight during quit: %r" % (req,))
            check(took >= 2.5, "quit returned after %.1fs, before the "
                  "3 s request ended" % took)
        else:
            check("error" in req, "the request in flight during stop was "
                  "answered: %r" % (req,))
            check(took < 2.5, "stop took %.1fs, want the 1 s of a quick "
                  "stop" % took)


def test_reopen_that_fails_answers_failed(t):
    # The log file's directory is gone: "reopen" says it failed, and why;
    # fugue keeps writing to the file it has.
    logdir = t.path("logs")
    os.mkdir(logdir)
    sock = t.path("ctl.sock")
    conf = t.basic_config(count=1, master={
        "control_socket": sock, "log_file": os.path.join(logdir, "a.log")})
    t.start(conf)
    wait_until(lambda: try_get(t.port), 10, what="an answer")
    os.rename(logdir, t.path("logs.old"))
    t.expect_error(r"reopen: log file")
    out = ctl(sock, "reopen\n")
    check(out.startswith("failed: log file %s/a.log: No such file or "
                         "directory" % logdir), "reopen answered %r" % out)
    check(try_get(t.port) is not None, "no answer after the failed reopen")


def test_chdir_failure_names_working_dir(t):
    # working_dir is there at start, gone at a respawn: the error names
    # the key and the directory, not the command.
    wd = t.path("wd")
    os.mkdir(wd)
    f, conf, sock = _start(t, count=1, worker={"working_dir": wd})
    pid = f.children()[0]
    os.rmdir(wd)
    t.expect_error(r"cannot chdir")
    os.kill(pid, signal.SIGKILL)
    f.wait_log(r"error: worker 0: cannot chdir to working_dir %s: No such "
               r"file or directory" % re.escape(wd), 10)
    os.mkdir(wd)
