"""Hardening (fugue(8)'s WORKER CONTRACT, the README's Security): what
workers inherit after start, respawn, HUP and USR2; privileges; files and
sockets never written through symlinks; the notify sockets' directory
against names planted by another user, and its sweep; exhaustion of fds and
processes; stopped workers and signal bursts; and the master under valgrind.

Tests that need root (CI runs as root) or a tool (valgrind, useradd,
systemd-socket-activate) skip with the reason when it is missing.
"""

import grp
import json
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import stat
import subprocess
import time

import harness
import loadgen
from harness import (Skip, check, collect_ids, fail, free_port,
                     inherit, needs_root, poll_for, proc_stat,
                     proc_status_field, sig_mask, timeout, try_get,
                     wait_until)
from support import Launched, clean_env

FORK_RETRY = re.compile(r"worker (\d+): fork: Resource temporarily "
                        r"unavailable \(retrying in (\d+)ms\)")


# --------------------------------------------------------------------------
# fugue started with extra steps before exec (limits, credentials, umask) or
# through a wrapper that execs it in place (systemd-socket-activate,
# valgrind): the pid stays fugue's, so the harness cleans it up as usual.

class _Fugue(harness.Fugue):

    def __init__(self, test, args, log_path, prefix=(), preexec=None,
                 env=None, name="fugue"):
        self.test = test
        self.args = list(args)
        self.log_path = log_path
        self.logs = []
        self.name = name
        self.logf = open(log_path, "ab")
        self.t0 = time.monotonic()

        def pre():
            if preexec is not None:
                preexec()
            # after any credential change, which clears it
            harness._die_with_runner()
        self.proc = subprocess.Popen(
            list(prefix) + [test.fugue] + self.args,
            stdin=subprocess.DEVNULL, stdout=self.logf,
            stderr=subprocess.STDOUT, env=env, cwd=test.dir, close_fds=True,
            preexec_fn=pre)
        self.pid = self.proc.pid
        self.rc = None
        test._remember(self.pid)
        test.fugues.append(self)


def start_with(t, conf, prefix=(), preexec=None, env=None, log="fugue.log"):
    harness.require_binaries()
    return _Fugue(t, ["-c", conf], t.path(log), prefix=prefix,
                  preexec=preexec, env=env)


# --------------------------------------------------------------------------
# Helpers

def control(path, cmd, timeout=5.0):
    """One command on the control socket; the whole reply."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(cmd.encode() + b"\n")
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
        return out.decode("utf-8", "replace")
    finally:
        s.close()


def status_json(path):
    return json.loads(control(path, "status json"))


def cpu_ticks(pid):
    """utime + stime of pid, in clock ticks."""
    with open("/proc/%d/stat" % pid) as fh:
        rest = fh.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def status_ids(pid, field):
    """The four ids of the Uid: or Gid: line of /proc/pid/status."""
    v = proc_status_field(pid, field)
    check(v is not None, "no %s in /proc/%d/status" % (field, pid))
    return [int(x) for x in v.split()]


def report_of(t, target, want, what, timeout=15.0):
    """The /inherit report of a worker for which want(rep) is true."""
    box = {}

    def cond():
        try:
            rep = inherit(target, 2.0)
        except (OSError, harness.TestFailure):
            return False
        box["last"] = rep
        t.remember(int(rep["pid"]))
        return want(rep)
    if not poll_for(cond, timeout, 0.05):
        fail("no worker report %s within %.0fs (last: pid %s gen %s)"
             % (what, timeout, box.get("last", {}).get("pid"),
                box.get("last", {}).get("env", {}).get("FUGUE_GENERATION")))
    return box["last"]


def inheritance_problems(f, rep, nlisten, outer, notify=False):
    """Ways the report breaks the worker contract (fugue(8)) on environment and fds;
    outer: fugue's own values of NOTIFY_SOCKET and LISTEN_* (not for the
    workers)."""
    bad = []
    env = rep["env"]
    pid = int(rep["pid"])
    fds = sorted(int(e["fd"]) for e in rep["fds"])
    if fds != list(range(3 + nlisten)):
        bad.append("fds %s, want exactly %s" % (fds, list(range(3 + nlisten))))
    for e in rep["fds"]:
        if int(e["fd"]) >= 3 and not str(e["target"]).startswith("socket:"):
            bad.append("fd %s is %s, not a listener" % (e["fd"], e["target"]))
    if "FUGUE_STATE_FD" in env:
        bad.append("FUGUE_STATE_FD=%s reached the worker" % env["FUGUE_STATE_FD"])
    for name in ("WATCHDOG_USEC", "WATCHDOG_PID"):
        if name in env:
            bad.append("%s=%s reached the worker" % (name, env[name]))
    if outer.get("NOTIFY_SOCKET") and \
            env.get("NOTIFY_SOCKET") == outer["NOTIFY_SOCKET"]:
        bad.append("fugue's own NOTIFY_SOCKET (systemd's) reached the worker")
    if not notify and "NOTIFY_SOCKET" in env:
        bad.append("NOTIFY_SOCKET=%s without ready = notify"
                   % env["NOTIFY_SOCKET"])
    if env.get("LISTEN_PID") != str(pid):
        bad.append("LISTEN_PID=%r, want its own pid %d"
                   % (env.get("LISTEN_PID"), pid))
    if env.get("LISTEN_FDS") != str(nlisten):
        bad.append("LISTEN_FDS=%r, want %d" % (env.get("LISTEN_FDS"), nlisten))
    if outer.get("LISTEN_FDNAMES") and \
            env.get("LISTEN_FDNAMES") == outer["LISTEN_FDNAMES"]:
        bad.append("fugue's LISTEN_FDNAMES reached the worker")
    if sig_mask(rep["SigBlk"]) != 0:
        bad.append("SigBlk %s" % rep["SigBlk"])
    if sig_mask(rep["SigIgn"]) != 0:
        bad.append("SigIgn %s" % rep["SigIgn"])
    if int(rep["ppid"]) != f.pid:
        bad.append("ppid %s, want the master %d" % (rep["ppid"], f.pid))
    return bad


def _kill9_and_wait_replacement(t, f, old, timeout=10.0):
    os.kill(old, signal.SIGKILL)
    box = []

    def cond():
        kids = f.children()
        new = [k for k in kids if k != old]
        if new and old not in kids:
            box[:] = new
            return True
        return False
    wait_until(cond, timeout, what="a replacement for worker %d" % old)
    return box[0]


def _stages(t, f, port, nlisten, outer, extra_check=None):
    """The report after start, respawn (kill -9), HUP and USR2; every
    problem of every stage, as one list."""
    problems = []

    def look(stage, rep):
        bad = inheritance_problems(f, rep, nlisten, outer)
        if extra_check:
            bad += extra_check(rep)
        problems.extend("after %s: %s" % (stage, b) for b in bad)

    rep = report_of(t, port, lambda r: True, "after start")
    look("start", rep)

    new = _kill9_and_wait_replacement(t, f, int(rep["pid"]))
    rep = report_of(t, port, lambda r: int(r["pid"]) == new,
                    "from the respawned pid %d" % new)
    look("respawn", rep)

    f.signal(signal.SIGHUP)
    f.wait_log(r"reload: generation 2 ready", 20)
    rep = report_of(t, port, lambda r: r["env"].get("FUGUE_GENERATION") == "2",
                    "of generation 2")
    look("HUP", rep)

    f.signal(signal.SIGUSR2)
    f.wait_log(r"upgrade: generation 3 ready", 30)
    rep = report_of(t, port, lambda r: r["env"].get("FUGUE_GENERATION") == "3",
                    "of generation 3")
    look("USR2", rep)
    check(f.alive(), "fugue exited during the upgrade")
    return problems


def _datagrams(sock):
    out = []
    while True:
        try:
            out.append(sock.recv(65536).decode("utf-8", "replace"))
        except BlockingIOError:
            return out


# --------------------------------------------------------------------------
# Environment and fds after start, respawn, HUP and USR2

@timeout(90)
def test_inheritance_across_respawn_reload_upgrade(t):
    """fugue started with systemd's NOTIFY_SOCKET and WATCHDOG_*, and with
    LISTEN_* meant for another pid: none of it reaches a worker, at any
    stage, nor fugue's state fd; and fugue itself keeps talking to
    systemd across the re-exec."""
    nsock_path = t.path("systemd-notify.sock")
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(nsock_path)
    nsock.setblocking(False)
    t.sockets.append(nsock)
    outer = {"NOTIFY_SOCKET": nsock_path, "LISTEN_FDNAMES": "not-for-workers"}
    env = t.env(NOTIFY_SOCKET=nsock_path, WATCHDOG_USEC="600000000",
                WATCHDOG_PID="1", LISTEN_FDS="2", LISTEN_PID="1",
                LISTEN_FDNAMES="not-for-workers")
    conf = t.basic_config(count=1)
    f = t.start(conf, env=env)
    f.wait_ready(1, 15)
    problems = _stages(t, f, t.port, 1, outer)
    check(not problems, "; ".join(problems))
    # fugue kept systemd's socket for itself across the re-exec: READY=1
    # at start and after each reload, RELOADING=1 before them.
    got = []

    def heard():
        got.extend(_datagrams(nsock))
        text = "\n".join(got)
        return "RELOADING=1" in text and text.count("READY=1") >= 3
    check(poll_for(heard, 5), "systemd did not hear READY=1 three times and "
          "RELOADING=1 from fugue: %r" % "|".join(got)[:400])


@timeout(60)
def test_inheritance_notify_mode_gets_fugues_own_socket(t):
    """With ready = notify, workers get fugue's NOTIFY_SOCKET, never the
    one systemd gave fugue."""
    nsock_path = t.path("systemd-notify.sock")
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(nsock_path)
    nsock.setblocking(False)
    t.sockets.append(nsock)
    run = t.path("run")
    os.mkdir(run)
    conf = t.basic_config(count=1, ready="notify",
                          master={"runtime_dir": run})
    f = t.start(conf, env=t.env(NOTIFY_SOCKET=nsock_path))
    f.wait_ready(1, 15)
    rep = report_of(t, t.port, lambda r: True, "after start")
    bad = inheritance_problems(f, rep, 1, {"NOTIFY_SOCKET": nsock_path},
                               notify=True)
    ns = rep["env"].get("NOTIFY_SOCKET", "")
    if not ns.startswith(run + "/"):
        bad.append("NOTIFY_SOCKET=%r, want fugue's own in %s" % (ns, run))
    check(not bad, "; ".join(bad))
    st = os.stat(ns)
    check(stat.S_ISSOCK(st.st_mode) and st.st_mode & 0o777 == 0o600,
          "fugue's notify socket %s has mode %o, want a socket with 0600"
          % (ns, st.st_mode & 0o7777))


@timeout(90)
def test_inheritance_socket_activated(t):
    """fugue socket-activated by systemd-socket-activate: the workers get
    LISTEN_* of their own, never the activator's, before and after a
    respawn, HUP and USR2 (the re-exec must not take the old LISTEN_FDS for
    its own either)."""
    ssa = shutil.which("systemd-socket-activate")
    if ssa is None:
        raise Skip("systemd-socket-activate is not installed")
    port = free_port()
    conf = t.basic_config(port=port, count=1)
    f = start_with(t, conf, prefix=[ssa, "-l", "127.0.0.1:%d" % port,
                                    "--fdname=activator"])
    f.wait_log(r"Listening on", 10)
    # The activator waits for a first connection before it execs fugue;
    # that connection waits in the backlog and is answered by the worker.
    box = t.background(lambda: harness.http_get(port, "/", 20))
    f.wait_ready(1, 20)
    th = box["thread"]
    th.join(20)
    check("result" in box and box["result"][0] == 200,
          "the first connection (queued before fugue ran) was not answered: %r"
          % (box.get("error") or box.get("result"),))
    check("socket activation" in f.log(),
          "fugue did not use the activated socket:\n" + f.log()[-500:])
    problems = _stages(t, f, port, 1, {"LISTEN_FDNAMES": "activator"})
    check(not problems, "; ".join(problems))


# --------------------------------------------------------------------------
# Privileges (root)

def _check_dropped(t, f, rep, user, gid, groups):
    """uid, gid and groups exact, everywhere in /proc, no capability left,
    and the master untouched."""
    pid = int(rep["pid"])
    t.remember(pid)
    pw = pwd.getpwnam(user)
    bad = []
    uids = status_ids(pid, "Uid")
    gids = status_ids(pid, "Gid")
    if uids != [pw.pw_uid] * 4:
        bad.append("Uid (real, effective, saved, fs) %s, want %d everywhere"
                   % (uids, pw.pw_uid))
    if gids != [gid] * 4:
        bad.append("Gid %s, want %d everywhere" % (gids, gid))
    got = sorted(set(int(g) for g in rep["groups"]))
    if got != sorted(set(groups)):
        bad.append("supplementary groups %s, want exactly %s"
                   % (got, sorted(set(groups))))
    if int(rep["euid"]) == 0 or int(rep["uid"]) == 0:
        bad.append("the worker is root")
    for cap in ("CapEff", "CapPrm", "CapAmb"):
        if int(rep.get(cap, "1"), 16) != 0:
            bad.append("%s %s: the worker could regain root" % (cap, rep.get(cap)))
    if int(rep["pdeathsig"]) == 0:
        bad.append("the parent-death signal was lost with the credentials")
    # The master keeps what it was started with.
    if status_ids(f.pid, "Uid") != [0] * 4:
        bad.append("the master's Uid is %s" % status_ids(f.pid, "Uid"))
    mine = proc_status_field(os.getpid(), "CapEff")
    if proc_status_field(f.pid, "CapEff") != mine:
        bad.append("the master's CapEff %s, started with %s"
                   % (proc_status_field(f.pid, "CapEff"), mine))
    check(not bad, "; ".join(bad))


@needs_root("to run the workers as nobody")
def test_root_workers_as_nobody_cannot_regain_root(t):
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody")
    t.stage_for_other_users()
    conf = t.basic_config(count=1, worker={"user": "nobody"})
    f = t.start_ready(conf, 1)
    rep = inherit(t.port)
    _check_dropped(t, f, rep, "nobody", pw.pw_gid,
                   os.getgrouplist("nobody", pw.pw_gid))
    # Still so for a respawned worker.
    new = _kill9_and_wait_replacement(t, f, int(rep["pid"]))
    rep = report_of(t, t.port, lambda r: int(r["pid"]) == new, "respawned")
    _check_dropped(t, f, rep, "nobody", pw.pw_gid,
                   os.getgrouplist("nobody", pw.pw_gid))


class _Account:
    """A user with a primary group and two supplementary groups, made with
    groupadd/useradd and removed afterwards."""

    def __init__(self):
        for tool in ("useradd", "userdel", "groupadd", "groupdel"):
            if shutil.which(tool) is None:
                raise Skip("%s is not installed" % tool)
        tag = "%d" % (os.getpid() % 100000)
        self.user = "fgh" + tag
        self.groups = ["fgp" + tag, "fga" + tag, "fgb" + tag]
        self.made_groups = []
        self.made_user = False
        try:
            for g in self.groups:
                self._run(["groupadd", g])
                self.made_groups.append(g)
            self._run(["useradd", "-M", "-N", "-s", "/usr/sbin/nologin",
                       "-g", self.groups[0], "-G",
                       ",".join(self.groups[1:]), self.user])
            self.made_user = True
        except BaseException:
            self.remove()
            raise

    @staticmethod
    def _run(cmd):
        r = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        if r.returncode != 0:
            raise Skip("%s failed: %s" % (" ".join(cmd),
                                          r.stdout.decode().strip()))

    def gid(self, name):
        return grp.getgrnam(name).gr_gid

    def remove(self):
        if self.made_user:
            subprocess.run(["userdel", self.user], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
            self.made_user = False
        for g in reversed(self.made_groups):
            subprocess.run(["groupdel", g], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        self.made_groups = []


@needs_root("to create a user and run the workers as it")
@timeout(60)
def test_root_workers_get_exactly_the_users_groups(t):
    t.stage_for_other_users()
    acct = _Account()
    try:
        prim, a, b = (acct.gid(g) for g in acct.groups)
        conf = t.basic_config(count=1, worker={"user": acct.user})
        f = t.start_ready(conf, 1)
        rep = inherit(t.port)
        _check_dropped(t, f, rep, acct.user, prim, [prim, a, b])
        # group = one of them: gid is that group, groups still the user's.
        f.signal(signal.SIGTERM)
        f.wait_exit(10)
        conf = t.basic_config(count=1, port=t.port, name="group.conf",
                              worker={"user": acct.user,
                                      "group": acct.groups[2]})
        f = t.start_ready(conf, 1, log="group.log")
        rep = inherit(t.port)
        want = os.getgrouplist(acct.user, b)
        check(0 not in want, "the test user is in group 0")
        _check_dropped(t, f, rep, acct.user, b, want)
    finally:
        for f in t.fugues:
            if f.alive():
                f.signal(signal.SIGTERM)
                poll_for(lambda: not f.alive(), 10)
        acct.remove()


@needs_root("the check applies when fugue is started as root")
def test_root_refuses_config_writable_by_others(t):
    conf = t.basic_config(count=1)
    os.chmod(conf, 0o666)
    for args in (["-c", conf, "-t"], ["-c", conf]):
        rc, out, err = t.run(args)
        check(rc == 78, "fugue %s exited %d for a world-writable config as "
              "root, want 78" % (" ".join(args), rc))
        check(conf in err and "writable" in err,
              "the error does not say that %s is writable by others: %r"
              % (conf, err))
        check(len(err.strip().splitlines()) <= 2, "not a short error: %r" % err)
    # Group-writable is writable by others too.
    os.chmod(conf, 0o664)
    rc, out, err = t.run(["-c", conf, "-t"])
    check(rc == 78, "a group-writable config as root: -t exited %d" % rc)
    # Owned by another user: refused as well.
    os.chmod(conf, 0o644)
    nobody = pwd.getpwnam("nobody").pw_uid
    os.chown(conf, nobody, -1)
    rc, out, err = t.run(["-c", conf, "-t"])
    check(rc == 78, "a config owned by nobody as root: -t exited %d" % rc)


@needs_root("the check applies when fugue is started as root")
def test_root_refuses_config_in_directory_writable_by_others(t):
    d = t.path("conf.d")
    os.mkdir(d)
    conf = t.basic_config(count=1, name="conf.d/app.conf")
    os.chmod(d, 0o777)
    rc, out, err = t.run(["-c", conf])
    check(rc == 78, "a config in a 0777 directory as root exited %d, want 78"
          % rc)
    check(d in err and "writable" in err,
          "the error does not name the directory %s: %r" % (d, err))
    # A sticky directory (like /tmp) protects the file: accepted.
    os.chmod(d, 0o1777)
    rc, out, err = t.run(["-c", conf, "-t"])
    check(rc == 0, "a root-owned 0644 config in a 1777 directory: -t exited "
          "%d: %s" % (rc, err))


@needs_root("the check applies when fugue is started as root")
@timeout(60)
def test_root_reload_refuses_config_made_writable(t):
    conf = t.basic_config(count=1)
    f = t.start_ready(conf, 1)
    t.expect_error(r"writable|refused")
    os.chmod(conf, 0o666)
    f.signal(signal.SIGHUP)
    f.wait_log(r"reload refused", 10)
    check("writable" in f.log(), "the refusal does not say why")
    r = try_get(t.port)
    check(r is not None and r[1].rstrip().endswith("gen 1"),
          "generation 1 no longer serves after a refused reload: %r" % (r,))
    os.chmod(conf, 0o644)
    f.signal(signal.SIGHUP)
    f.wait_log(r"reload: generation 2 ready", 20)


def test_unknown_user_refused(t):
    conf = t.basic_config(count=1, worker={"user": "nosuchuser-fugue"})
    for args in (["-c", conf, "-t"], ["-c", conf]):
        rc, out, err = t.run(args)
        check(rc == 78, "fugue %s with user = nosuchuser-fugue exited %d, "
              "want 78" % (" ".join(args), rc))
        check("nosuchuser-fugue" in err and "user" in err,
              "the error does not name the unknown user: %r" % err)
    conf = t.basic_config(count=1, port=t.port, name="g.conf",
                          worker={"group": "nosuchgroup-fugue"})
    rc, out, err = t.run(["-c", conf, "-t"])
    check(rc == 78 and "nosuchgroup-fugue" in err,
          "group = nosuchgroup-fugue: exit %d, %r" % (rc, err))


# --------------------------------------------------------------------------
# Files: never through a symlink, never over a regular file, modes

def _read(p):
    with open(p) as fh:
        return fh.read()


def _planted_dir(t):
    """A world-writable sticky directory, like /tmp, where another user
    could plant names."""
    d = t.path("shared")
    os.mkdir(d)
    os.chmod(d, 0o1777)
    return d


def _plant_symlink(target, path):
    os.symlink(target, path)
    if os.geteuid() == 0:
        try:
            nobody = pwd.getpwnam("nobody")
            os.lchown(path, nobody.pw_uid, nobody.pw_gid)
        except KeyError:
            pass


def test_pid_file_never_through_planted_symlink(t):
    d = _planted_dir(t)
    precious = t.path("precious")
    with open(precious, "w") as fh:
        fh.write("precious\n")
    os.chmod(precious, 0o644)
    before = os.stat(precious)
    pidf = os.path.join(d, "fugue.pid")
    missing = t.path("created-through-the-link")
    for target in (precious, missing):
        _plant_symlink(target, pidf)
        conf = t.basic_config(count=1, master={"pid_file": pidf},
                              name="pid.conf")
        f = t.start(conf, log="pid-%d.log" % len(t.fugues))
        t.expect_error(r".")
        rc = f.wait_exit(10)
        check(rc == 73, "fugue exited %s for a pid file that is a symlink "
              "to %s, want 73" % (rc, target))
        check(os.path.islink(pidf) and os.readlink(pidf) == target,
              "the planted symlink was removed or replaced")
        check(not f.children(), "workers started")
        os.unlink(pidf)
    after = os.stat(precious)
    check(_read(precious) == "precious\n" and
          (after.st_mode, after.st_uid, after.st_size, after.st_mtime_ns) ==
          (before.st_mode, before.st_uid, before.st_size, before.st_mtime_ns),
          "the symlink's target was changed")
    check(not os.path.lexists(missing), "a file was created through the "
          "dangling symlink")


def test_unix_listener_never_replaces_file_or_symlink(t):
    d = _planted_dir(t)
    precious = t.path("precious")
    with open(precious, "w") as fh:
        fh.write("precious\n")
    missing = t.path("created-through-the-link")
    path = os.path.join(d, "app.sock")
    cases = [("a regular file", lambda: shutil.copy(precious, path)),
             ("a symlink to a file", lambda: _plant_symlink(precious, path)),
             ("a dangling symlink", lambda: _plant_symlink(missing, path))]
    for what, plant in cases:
        plant()
        ino = os.lstat(path).st_ino
        conf = t.basic_config(count=1, listen={"address": "unix:" + path},
                              name="unix.conf")
        f = t.start(conf, log="unix-%d.log" % len(t.fugues))
        t.expect_error(r".")
        rc = f.wait_exit(10)
        check(rc == 73, "fugue exited %s when the socket path is %s, want 73"
              % (rc, what))
        check(os.lstat(path).st_ino == ino, "%s at the socket path was "
              "replaced" % what)
        check(path in f.log(), "the error does not name %s" % path)
        os.unlink(path)
    check(_read(precious) == "precious\n", "the file was changed")
    check(not os.path.lexists(missing), "something was created through the "
          "dangling symlink")


def test_control_socket_never_replaces_regular_file(t):
    path = t.path("ctl.sock")
    with open(path, "w") as fh:
        fh.write("precious\n")
    conf = t.basic_config(count=1, master={"control_socket": path})
    f = t.start(conf)
    t.expect_error(r".")
    rc = f.wait_exit(10)
    check(rc == 73, "fugue exited %s for a regular file at control_socket, "
          "want 73" % rc)
    check(_read(path) == "precious\n", "the regular file was changed")


def test_file_modes_do_not_depend_on_umask(t):
    """Started with umask 000: the UNIX listener gets socket_mode exactly,
    the control socket 0600, the pid file 0644 (nobody else may write it)."""
    sock = t.path("app.sock")
    ctl = t.path("ctl.sock")
    pidf = t.path("fugue.pid")
    conf = t.basic_config(count=1, listen=[("address", "unix:" + sock),
                                           ("socket_mode", "0660")],
                          master={"control_socket": ctl, "pid_file": pidf})
    f = start_with(t, conf, preexec=lambda: os.umask(0))
    f.wait_ready(1, 15)
    want = {sock: (stat.S_ISSOCK, 0o660), ctl: (stat.S_ISSOCK, 0o600),
            pidf: (stat.S_ISREG, 0o644)}
    bad = []
    for p, (kind, mode) in want.items():
        st = os.lstat(p)
        if not kind(st.st_mode) or st.st_mode & 0o7777 != mode:
            bad.append("%s: mode %o, want %o" % (p, st.st_mode & 0o7777, mode))
        if st.st_uid != os.geteuid():
            bad.append("%s: owner %d" % (p, st.st_uid))
    check(not bad, "; ".join(bad))
    # No temporary name left behind by the bind-then-rename.
    left = [n for n in os.listdir(t.dir) if n.endswith("~")]
    check(not left, "temporary socket names left: %s" % left)
    r = try_get("unix:" + sock)
    check(r is not None and r[0] == 200, "no answer on %s" % sock)


@needs_root("socket_owner needs root to give the socket away")
def test_socket_owner_applied(t):
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody")
    sock = t.path("app.sock")
    conf = t.basic_config(count=1, listen=[("address", "unix:" + sock),
                                           ("socket_mode", "0600"),
                                           ("socket_owner", "nobody:%d"
                                            % pw.pw_gid)])
    t.start_ready(conf, 1)
    st = os.lstat(sock)
    check((st.st_uid, st.st_gid, st.st_mode & 0o7777) ==
          (pw.pw_uid, pw.pw_gid, 0o600),
          "socket owner %d:%d mode %o, want %d:%d 0600"
          % (st.st_uid, st.st_gid, st.st_mode & 0o7777, pw.pw_uid, pw.pw_gid))


# --------------------------------------------------------------------------
# Exhaustion

def _nofile(n):
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


@timeout(60)
def test_low_nofile_master_keeps_running(t):
    """RLIMIT_NOFILE 20:20 and count = 12: the master reports EMFILE for the
    workers it cannot start, keeps serving with those it has, and recovers
    (ready, no more errors) once TTOU brings count within reach."""
    conf = t.basic_config(count=12, worker={"ready_timeout": "50s"})
    f = start_with(t, conf, preexec=_nofile(20))
    # A child may run out too, moving its fds into place: an error, logged.
    t.expect_error(r"Too many open files")
    f.wait_log(r"Too many open files", 15)
    check(f.alive(), "fugue exited")
    # Serving with what it has.
    r = wait_until(lambda: try_get(t.port), 10, what="an answer")
    check(r[0] == 200, "answer %r" % (r,))
    check(len(f.children()) < 12, "12 workers with 20 fds")
    # Give slots back one TTOU at a time (back-to-back signals merge) until
    # the rest fits: the generation is then ready.
    target = 12
    while True:
        check(target > 1, "never ready, even with 1 worker")
        f.signal(signal.SIGTTOU)
        f.wait_log(r"workers: %d -> %d$" % (target, target - 1), 5)
        target -= 1
        if poll_for(lambda: re.search(r"ready: \d+ workers?", f.log()),
                    1.0):
            break
    n = f.log().count("Too many open files")
    poll_for(lambda: f.log().count("Too many open files") > n, 1.5)
    check(f.log().count("Too many open files") == n,
          "still failing after count was lowered to %d" % target)
    wait_until(lambda: len(f.children()) == target, 5,
               what="exactly %d workers" % target)
    ids = collect_ids(t.port, range(target), test=t)
    check(len(ids) == target, "ids %s" % sorted(ids))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(15) == 0, "fugue did not stop cleanly")


@timeout(60)
def test_low_nofile_control_accept_does_not_spin(t):
    """Out of fds, a client on the control socket cannot be accepted: the
    master must not spin on the readable listening socket nor flood its
    log, and answers again once fds are free."""
    ctl = t.path("ctl.sock")
    conf = t.basic_config(count=12, master={"control_socket": ctl},
                          worker={"ready_timeout": "50s",
                                  "restart_delay_max": "2s"})
    f = start_with(t, conf, preexec=_nofile(20))
    t.expect_error(r"Too many open files")
    f.wait_log(r"Too many open files", 15)
    # Fill whatever fd is left with idle clients (each accepted one holds
    # an fd for a while); the next ones wait in the backlog, unaccepted.
    clients = []
    for _ in range(24):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        t.sockets.append(s)
        s.setblocking(False)
        try:
            s.connect(ctl)
        except OSError:
            break       # the backlog is full: nothing more to add
        clients.append(s)
    full = poll_for(lambda: re.search(r"control: accept \(paused", f.log()),
                    3.0)
    check(full, "the master never ran out of fds (%d open)"
          % len(harness.proc_fds(f.pid)))
    c0 = cpu_ticks(f.pid)
    lines0 = len(f.log_lines())
    t0 = time.monotonic()
    poll_for(lambda: False, 2.0, 0.1)
    dt = time.monotonic() - t0
    used = (cpu_ticks(f.pid) - c0) / os.sysconf("SC_CLK_TCK")
    grown = len(f.log_lines()) - lines0
    check(f.alive(), "fugue exited")
    check(used < 0.5 * dt, "the master used %.2fs of CPU in %.2fs with a "
          "control client it cannot accept (busy loop)" % (used, dt))
    check(grown < 50, "%d log lines in %.1fs with a control client it cannot "
          "accept" % (grown, dt))
    # Once fds are free again the waiting clients are served.
    for s in clients:
        s.close()
    for n in range(12, 0, -1):
        f.signal(signal.SIGTTOU)
        f.wait_log(r"workers: %d -> %d$" % (n, n - 1), 10)
    reply = wait_until(lambda: _try_control(ctl, "status"), 10,
                       what="an answer on the control socket")
    check(reply.startswith("fugue pid"), "status reply %r" % reply[:200])


def _try_control(path, cmd):
    try:
        return control(path, cmd, 2.0) or None
    except OSError:
        return None


def _has_user(uid):
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def _uid_tasks(uid):
    """Tasks (threads count for RLIMIT_NPROC) whose real uid is uid."""
    n = 0
    for pid in harness.all_pids():
        try:
            if status_ids(pid, "Uid")[0] == uid:
                n += int(proc_status_field(pid, "Threads") or 1)
        except (harness.TestFailure, ValueError):
            pass
    return n


@timeout(60)
def test_nproc_reached_spawning_backs_off(t):
    """RLIMIT_NPROC leaves room for two workers of four: the other forks
    fail with EAGAIN and are retried with growing delays, not in a loop."""
    sleep = shutil.which("sleep")
    if sleep is None:
        raise Skip("no sleep(1)")
    if os.geteuid() == 0:
        # root ignores RLIMIT_NPROC: run fugue as a uid of its own, which
        # no other process (another test run as nobody) shares.
        uid = next((u for u in range(61000, 62000) if not _has_user(u)
                    and _uid_tasks(u) == 0), None)
        if uid is None:
            raise Skip("no unused uid to run fugue as")
        gid = uid
        t.stage_for_other_users()   # fugue runs as that uid
    else:
        uid, gid = os.getuid(), os.getgid()
    limit = _uid_tasks(uid) + 3    # fugue and two single-threaded workers

    def pre():
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    conf = t.basic_config(count=4, command="%s 600" % sleep,
                          worker={"ready_timeout": "50s",
                                  "restart_delay_max": "30s"})
    f = start_with(t, conf, preexec=pre)
    f.wait_log(FORK_RETRY.pattern, 10)
    c0 = cpu_ticks(f.pid)
    t0 = time.monotonic()
    poll_for(lambda: not f.alive(), 4.0, 0.1)
    dt = time.monotonic() - t0
    used = (cpu_ticks(f.pid) - c0) / os.sysconf("SC_CLK_TCK")
    check(f.alive(), "fugue exited (status %s)" % f.poll())
    tries = {}
    for m in FORK_RETRY.finditer(f.log()):
        tries.setdefault(int(m.group(1)), []).append(int(m.group(2)))
    total = sum(len(v) for v in tries.values())
    check(tries, "no fork failure logged")
    check(total <= 40, "%d failed forks logged in about %.0fs: a spin, not a "
          "backoff (%s)" % (total, dt + 1, tries))
    for slot, delays in tries.items():
        check(delays == sorted(delays), "worker %d: retry delays %s do not grow"
              % (slot, delays))
        check(len(delays) < 3 or delays[-1] >= 4 * delays[0],
              "worker %d: retry delays %s do not back off" % (slot, delays))
    check(max(max(v) for v in tries.values()) >= 800,
          "the delays never grew past %s" % tries)
    check(used < 0.5 * dt, "the master used %.2fs of CPU in %.1fs" % (used, dt))
    check(len(f.children()) == 2, "%d workers running, want the 2 that fit"
          % len(f.children()))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(15) == 0, "fugue did not stop cleanly")


# --------------------------------------------------------------------------
# Stopped workers and signal bursts

@timeout(60)
def test_sigstop_sigcont_worker_master_consistent(t):
    ctl = t.path("ctl.sock")
    conf = t.basic_config(count=2, master={"control_socket": ctl})
    f = t.start_ready(conf, 2)
    before = collect_ids(t.port, [0, 1], test=t)
    victim = before[0][0]
    os.kill(victim, signal.SIGSTOP)
    wait_until(lambda: (proc_stat(victim) or "?")[0] == "T", 5,
               what="worker %d to stop" % victim)
    # The master must not take a stopped worker for a dead one.
    poll_for(lambda: re.search(r"\(pid %d\) (exited|killed)" % victim,
                               f.log()), 1.5)
    check(not re.search(r"\(pid %d\)" % victim, f.log()),
          "the master logged about the stopped worker: %s" % [
              ln for ln in f.log_lines() if "(pid %d)" % victim in ln])
    st = status_json(ctl)
    pids = sorted(w["pid"] for w in st["workers"])
    check(pids == sorted(p for p, _ in before.values()),
          "status lists %s, want the same workers %s" % (pids, before))
    check(all(w["state"] == "ready" for w in st["workers"]) and
          st["workers_ready"] == 2, "status changed: %s" % st)
    check(sorted(f.children()) == sorted(p for p, _ in before.values()),
          "children changed while a worker is stopped")
    os.kill(victim, signal.SIGCONT)
    after = collect_ids(t.port, [0, 1], test=t)
    check(after == before, "workers after SIGCONT %s, before %s"
          % (after, before))
    check("restarting" not in f.log(), "a worker was restarted")
    f.signal(signal.SIGTERM)
    check(f.wait_exit(15) == 0, "fugue did not stop cleanly")


@timeout(60)
def test_hup_burst_reloads_once_or_twice(t):
    ctl = t.path("ctl.sock")
    conf = t.basic_config(count=2, master={"control_socket": ctl})
    f = t.start_ready(conf, 2)
    for _ in range(100):
        os.kill(f.pid, signal.SIGHUP)
    burst_end = time.time()

    def settled():
        text = f.log()
        started = len(re.findall(r"reload: starting generation", text))
        done = len(re.findall(r"reload: generation \d+ ready", text))
        return started >= 1 and started == done and not \
            status_json(ctl)["reloading"]
    wait_until(settled, 30, what="the reloads to end")
    # Nothing more comes in the next second (no reload left queued).
    n = len(re.findall(r"reload: starting generation", f.log()))
    poll_for(lambda: len(re.findall(r"reload: starting generation",
                                    f.log())) > n, 1.0)
    n = len(re.findall(r"reload: starting generation", f.log()))
    # One reload, and the HUPs that came meanwhile queued once: 2. A third
    # only if generation 2 was ready before the last HUP was sent (the
    # sender was not scheduled for that long).
    straddled = n == 3 and loadgen.log_time(
        f, r"reload: generation 2 ready") < burst_end
    check(1 <= n <= 2 or straddled, "%d reloads for a burst of 100 HUPs, "
          "want 1 or 2 (one at a time, queued once)" % n)
    st = status_json(ctl)
    check(st["workers_ready"] == 2 and st["workers_wanted"] == 2,
          "status after the burst: %s" % st)
    gens = set(w["generation"] for w in st["workers"]
               if w["state"] != "draining")
    check(gens == {st["generation"]}, "workers of generations %s" % gens)
    wait_until(lambda: len(f.children()) == 2, 10,
               what="exactly 2 workers (the old ones drained)")
    ids = collect_ids(t.port, [0, 1], test=t)
    check(set(g for _, g in ids.values()) == {st["generation"]},
          "answers from generations %s" % ids)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(15) == 0, "fugue did not stop cleanly")


# --------------------------------------------------------------------------
# valgrind

@timeout(150)
def test_valgrind_master_no_leak_no_invalid_access(t):
    vg = shutil.which("valgrind")
    if vg is None:
        raise Skip("valgrind is not installed (apt-get install valgrind)")
    with open(harness.FUGUE, "rb") as fh:
        if b"__asan_init" in fh.read():
            raise Skip("fugue is built with AddressSanitizer, which valgrind "
                       "cannot run")
    vglog = t.path("valgrind.log")
    ctl = t.path("ctl.sock")
    conf = t.basic_config(count=2, ready="300ms",
                          master={"control_socket": ctl})
    # USR2 re-execs fugue outside valgrind: left out here.
    f = start_with(t, conf, prefix=[
        vg, "--leak-check=full", "--error-exitcode=99", "--track-fds=no",
        "--child-silent-after-fork=yes", "--log-file=" + vglog])
    f.wait_ready(2, 60)
    collect_ids(t.port, [0, 1], test=t, timeout=20)
    check(status_json(ctl)["workers_ready"] == 2, "status under valgrind")
    f.signal(signal.SIGHUP)
    f.wait_log(r"reload: generation 2 ready", 60)
    victim = f.children()[0]
    _kill9_and_wait_replacement(t, f, victim, 30)
    f.signal(signal.SIGUSR1)
    f.wait_log(r"log files reopened", 20)
    # The error paths: a refused reload, and a refused upgrade (its check
    # runs "fugue -t" in a child, outside valgrind; no re-exec happens).
    t.expect_error(r"refused|count|upgrade check|upgrade:")
    good = _read(conf)
    with open(conf, "w") as fh:
        fh.write(good.replace("count = 2", "count = two"))
    f.signal(signal.SIGHUP)
    f.wait_log(r"reload refused", 30)
    f.signal(signal.SIGUSR2)
    f.wait_log(r"upgrade refused", 60)
    with open(conf, "w") as fh:
        fh.write(good)
    f.signal(signal.SIGTERM)
    rc = f.wait_exit(60)
    report = _read(vglog)
    summary = re.findall(r"ERROR SUMMARY: (\d+) errors", report)
    check(rc != 99, "valgrind found errors in the master:\n" + report[-3000:])
    check(summary and summary[-1] == "0",
          "valgrind's summary is not 0 errors:\n" + report[-3000:])
    check(rc == 0, "fugue under valgrind exited %s" % rc)
    check("definitely lost" not in report or
          re.search(r"definitely lost: 0 bytes", report),
          "memory definitely lost:\n" + report[-3000:])


# --------------------------------------------------------------------------
# The notify sockets' directory in runtime_dir

def _as_nobody(pw, script):
    """Run a shell script as nobody (in /), failing the test if it fails."""
    r = subprocess.run(["/bin/sh", "-ec", script], user=pw.pw_uid,
                       group=pw.pw_gid, extra_groups=[], cwd="/",
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    check(r.returncode == 0, "as nobody: %s: %s" % (script,
                                                    r.stdout.decode()))


def _notify_dirs(rundir, pid):
    """fugue's notify directories for pid in rundir (mkdtemp's names)."""
    out = []
    for e in os.listdir(rundir):
        p = os.path.join(rundir, e)
        if re.fullmatch(r"fugue-%d\.[A-Za-z0-9]{6}" % pid, e) and \
                stat.S_ISDIR(os.lstat(p).st_mode) and \
                os.lstat(p).st_uid == os.geteuid():
            out.append(p)
    return out


def _snapshot(paths):
    """{path: (type, owner, link target or content)} of what others put
    there, to see that fugue changed none of it."""
    out = {}
    for p in paths:
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            what = os.readlink(p)
        elif stat.S_ISDIR(st.st_mode):
            what = sorted(os.listdir(p))
        elif stat.S_ISREG(st.st_mode):
            what = open(p).read()
        else:
            what = None
        out[p] = (stat.S_IFMT(st.st_mode), st.st_uid, what)
    return out


@needs_root("to plant files as another user (nobody)")
@timeout(60)
def test_notify_directory_not_predictable(t):
    # runtime_dir is world-writable (sticky, as /tmp), and nobody has put
    # symlinks, a directory, a FIFO and a file at every name fugue's pid
    # makes predictable, the old socket's fugue-PID.notify first. fugue
    # starts all the same, and its ready = notify workers (nobody too)
    # reach its socket in a directory of its own: made for it, owned by
    # fugue's user, mode 0711 (not listable, not writable by others); what
    # nobody planted is left as it was.
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody")
    t.stage_for_other_users()
    rundir = t.path("run")
    os.mkdir(rundir)
    os.chmod(rundir, 0o1777)
    precious = t.write("precious", "root's own\n", 0o644)
    conf = t.basic_config(count=2, ready="notify",
                          master={"runtime_dir": rundir},
                          worker={"user": "nobody"})
    gate = t.path("gate")
    os.mkfifo(gate)
    # fugue's pid is known before it runs: the shell that execs it waits.
    f = Launched(t, ["/bin/sh", "-c", 'read go < "$0"; exec "$@"', gate,
                     t.fugue, "-c", conf], "fugue.log", name="fugue",
                 env=clean_env(t))
    base = os.path.join(rundir, "fugue-%d" % f.pid)
    _as_nobody(pw, "ln -s {p} {b}.notify; mkdir -m 777 {b}; "
               "ln -s {p} {b}.XXXXXX; mkfifo {b}.sock; mkdir {b}.d; "
               "echo nobody\\'s > {b}.d/file; echo nobody\\'s > {b}.tmp; "
               "ln -s {r} {b}.0".format(p=precious, b=base, r=rundir))
    planted = [os.path.join(rundir, e) for e in os.listdir(rundir)]
    before = _snapshot(planted)
    with open(gate, "w") as fh:
        fh.write("go\n")
    f.wait_ready(2, 15)
    dirs = _notify_dirs(rundir, f.pid)
    check(len(dirs) == 1 and dirs[0] not in planted, "fugue's notify "
          "directories: %s (planted: %s)" % (dirs, sorted(planted)))
    st = os.lstat(dirs[0])
    check(st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o711,
          "%s: owner %d, mode %o; want fugue's uid %d and 0711"
          % (dirs[0], st.st_uid, stat.S_IMODE(st.st_mode), os.geteuid()))
    for pid in f.children():
        sock = loadgen.env_of(pid).get("NOTIFY_SOCKET", "")
        check(os.path.dirname(sock) == dirs[0], "worker %d has "
              "NOTIFY_SOCKET=%r, not in %s" % (pid, sock, dirs[0]))
        sst = os.lstat(sock)
        check(stat.S_ISSOCK(sst.st_mode) and sst.st_uid == pw.pw_uid and
              stat.S_IMODE(sst.st_mode) == 0o600, "%s: mode %o, owner %d; "
              "want a socket, 0600, nobody's" % (sock, sst.st_mode,
                                                 sst.st_uid))
    check(_snapshot(planted) == before and open(precious).read() ==
          "root's own\n", "fugue changed what nobody planted: %s -> %s"
          % (before, _snapshot(planted)))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    check(not os.path.exists(dirs[0]), "%s is left after fugue stopped"
          % dirs[0])
    check(_snapshot(planted) == before, "fugue's stop changed what nobody "
          "planted: %s -> %s" % (before, _snapshot(planted)))


@needs_root("to plant files as another user (nobody)")
@timeout(60)
def test_notify_directory_sweep_takes_only_stale_ones(t):
    # A fugue killed with SIGKILL leaves its notify directory. The next
    # fugue with the same runtime_dir removes it, and nothing else: not
    # the directory of a fugue still running (which goes on taking
    # READY=1 there), not what looks like fugue's but belongs to another
    # user (a directory, a file, a socket), not a symlink or a file of
    # fugue's own user named like one (nor what the symlink points to).
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody")
    rundir = t.path("run")
    os.mkdir(rundir)
    os.chmod(rundir, 0o1777)

    def start(name):
        conf = t.basic_config(port=free_port(), count=1, ready="notify",
                              name=name + ".conf",
                              master={"runtime_dir": rundir})
        f = t.start(conf, log=name + ".log", name="fugue " + name)
        f.wait_ready(1, 15)
        (d,) = _notify_dirs(rundir, f.pid)
        return f, d
    a, a_dir = start("a")
    a.signal(signal.SIGKILL)
    a.wait_exit(10)
    check(os.path.isdir(a_dir), "the killed fugue's %s is gone" % a_dir)
    b, b_dir = start("b")
    # Named after the dead fugue's pid: nobody's directory (with a file),
    # regular file, and socket of the old naming; fugue's user's symlink to
    # a directory of its own, and a file.
    dead = os.path.join(rundir, "fugue-%d" % a.pid)
    keep = t.path("keep")
    os.mkdir(keep)
    t.write("keep/file", "kept\n")
    _as_nobody(pw, "mkdir {d}.nobody; echo x > {d}.nobody/file; "
               "echo x > {d}.file".format(d=dead))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.bind(dead + ".notify")
    finally:
        s.close()
    os.lchown(dead + ".notify", pw.pw_uid, pw.pw_gid)
    os.symlink(keep, dead + ".ABCDEF")
    with open(dead + ".mine", "w") as fh:
        fh.write("mine\n")
    others = [dead + x for x in (".nobody", ".file", ".notify", ".ABCDEF",
                                 ".mine")]
    before = _snapshot(others + [keep])
    c, c_dir = start("c")
    check(not os.path.exists(a_dir), "the stale %s was not removed" % a_dir)
    check(os.path.isdir(b_dir) and os.listdir(b_dir) == ["gen-1.sock"],
          "the running fugue's %s: %s" % (
              b_dir, os.path.isdir(b_dir) and os.listdir(b_dir)))
    check(_snapshot(others + [keep]) == before, "the sweep changed what "
          "is not fugue's: %s -> %s" % (before, _snapshot(others + [keep])))
    # The running fugue still gets its workers' READY=1 there.
    b.signal(signal.SIGHUP)
    b.wait_log(r"reload: generation 2 ready \(1 worker", 15)
    for f, d in ((b, b_dir), (c, c_dir)):
        f.signal(signal.SIGTERM)
        check(f.wait_exit(10) == 0, "%s exited %s" % (f.name, f.rc))
        check(not os.path.exists(d), "%s is left after %s stopped"
              % (d, f.name))
    check(_snapshot(others + [keep]) == before, "the stops changed what "
          "is not fugue's")
