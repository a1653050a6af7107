"""The worker contract (fugue(8), WORKER CONTRACT), read from the workers' own
/inherit reports: fds, signals, process group, environment, credentials."""

import grp
import os
import pwd
import re
import signal
import socket

from harness import (Skip, check, collect_ids, free_port,
                     inherit, needs_root, proc_fds, proc_status_field,
                     set_disposition, sig_mask)

SIGPIPE_BIT = 1 << (signal.SIGPIPE - 1)
FUGUE_VARS = {"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "FUGUE_WORKER_ID",
              "FUGUE_GENERATION", "FUGUE_MASTER_PID"}


def _fd_numbers(rep):
    return sorted(int(e["fd"]) for e in rep["fds"])


def _fd_target(rep, n):
    for e in rep["fds"]:
        if int(e["fd"]) == n:
            return e["target"]
    return None


def _socket_address(pid, fd):
    """The local address of a listening socket of pid, from /proc/net."""
    target = os.readlink("/proc/%d/fd/%d" % (pid, fd))
    m = re.match(r"socket:\[(\d+)\]", target)
    if not m:
        return target
    inode = m.group(1)
    with open("/proc/%d/net/tcp" % pid) as fh:
        for line in fh.readlines()[1:]:
            f = line.split()
            if f[9] == inode:
                host, port = f[1].split(":")
                ip = socket.inet_ntoa(bytes.fromhex(host)[::-1])
                return "%s:%d" % (ip, int(port, 16))
    with open("/proc/%d/net/unix" % pid) as fh:
        for line in fh.readlines()[1:]:
            f = line.split()
            if f[6] == inode:
                return f[7] if len(f) > 7 else "unix (unnamed)"
    return target


def _umask(v):
    return int(v, 8) if isinstance(v, str) else int(v)


def _contract_problems(t, f, rep, nlisten):
    """Every way the report breaks the worker contract (fugue(8)), as
    a list of sentences (all of them, so that one failure does not hide
    the others)."""
    bad = []

    def want(cond, msg):
        if not cond:
            bad.append(msg)
    env = rep["env"]
    pid = int(rep["pid"])
    t.remember(pid)
    want_fds = list(range(3 + nlisten))
    want(_fd_numbers(rep) == want_fds,
         "worker fds %s, want exactly %s" % (_fd_numbers(rep), want_fds))
    want(_fd_target(rep, 0) == "/dev/null",
         "fd 0 is %r, want /dev/null" % _fd_target(rep, 0))
    for n in (1, 2):
        want(str(_fd_target(rep, n)).startswith("pipe:"),
             "fd %d is %r, want a pipe to the master" % (n, _fd_target(rep, n)))
    for n in range(3, 3 + nlisten):
        want(str(_fd_target(rep, n)).startswith("socket:"),
             "fd %d is %r, want a listening socket" % (n, _fd_target(rep, n)))
    want(sig_mask(rep["SigBlk"]) == 0, "signal mask not empty: SigBlk %s"
         % rep["SigBlk"])
    want(not sig_mask(rep["SigIgn"]) & SIGPIPE_BIT,
         "SIGPIPE is ignored in the worker (SigIgn %s)" % rep["SigIgn"])
    want(sig_mask(rep["SigIgn"]) == 0,
         "signals ignored in the worker: SigIgn %s (want default "
         "dispositions)" % rep["SigIgn"])
    want(int(rep["pgid"]) == pid, "pgid %s != pid %d: the worker does not "
         "lead its own process group" % (rep["pgid"], pid))
    want(int(rep["ppid"]) == f.pid, "ppid %s, want the master %d"
         % (rep["ppid"], f.pid))
    want(env.get("LISTEN_PID") == str(pid), "LISTEN_PID=%r, want %d"
         % (env.get("LISTEN_PID"), pid))
    want(env.get("LISTEN_FDS") == str(nlisten), "LISTEN_FDS=%r, want %d"
         % (env.get("LISTEN_FDS"), nlisten))
    names = env.get("LISTEN_FDNAMES")
    want(names is not None and len(names.split(":")) == nlisten,
         "LISTEN_FDNAMES=%r, want %d names" % (names, nlisten))
    want(env.get("FUGUE_MASTER_PID") == str(f.pid),
         "FUGUE_MASTER_PID=%r, want %d" % (env.get("FUGUE_MASTER_PID"), f.pid))
    want(env.get("FUGUE_WORKER_ID", "").isdigit(),
         "FUGUE_WORKER_ID=%r" % env.get("FUGUE_WORKER_ID"))
    want(env.get("FUGUE_GENERATION", "").isdigit() and
         int(env["FUGUE_GENERATION"]) >= 1,
         "FUGUE_GENERATION=%r" % env.get("FUGUE_GENERATION"))
    return bad


def _basic_contract(t, f, rep, nlisten, more=()):
    bad = _contract_problems(t, f, rep, nlisten) + list(more)
    check(not bad, "; ".join(bad))


def test_inherit_one_listener(t):
    conf = t.basic_config(count=2)
    f = t.start_ready(conf, 2)
    rep = inherit(t.port)
    _basic_contract(t, f, rep, 1)
    check(int(rep["pdeathsig"]) == signal.SIGTERM,
          "pdeathsig %s, want 15 (TERM, the default master_death_signal)"
          % rep["pdeathsig"])
    check(int(rep["pid"]) in f.children(), "reporting pid is not a child")
    # The live process agrees with its report (fds of a worker at rest).
    w = int(rep["pid"])
    fds = proc_fds(w)
    check(fds.get(0) == "/dev/null", "/proc/%d/fd/0 -> %r" % (w, fds.get(0)))
    check(fds.get(3, "").startswith("socket:"),
          "/proc/%d/fd/3 -> %r" % (w, fds.get(3)))


def test_inherit_two_listeners(t):
    port2 = free_port()
    unix = t.path("two.sock")
    conf = t.basic_config(count=1, listen=[("address", "127.0.0.1:%d" % port2),
                                           ("address", "unix:" + unix)])
    f = t.start_ready(conf, 1)
    for target in (t.port, port2, "unix:" + unix):
        rep = inherit(target)
        _basic_contract(t, f, rep, 3)
    # fds 3, 4, 5 are the listeners in config order.
    w = int(rep["pid"])
    got = [_socket_address(w, n) for n in (3, 4, 5)]
    want = ["127.0.0.1:%d" % t.port, "127.0.0.1:%d" % port2, unix]
    check(got == want, "listeners on fds 3, 4, 5: %s, want %s" % (got, want))
    # As fugue(8) says: each address, ':' made '_', in fd order.
    names = rep["env"]["LISTEN_FDNAMES"]
    want = "127.0.0.1_%d:127.0.0.1_%d:unix_%s" % (t.port, port2, unix)
    check(names == want, "LISTEN_FDNAMES=%r, want %r" % (names, want))


def test_inherited_ignored_signals_reset(t):
    # Signals ignored in fugue's own environment (nohup, make, a shell)
    # survive exec: the workers must still get default dispositions. 32 is
    # one glibc's sigaction refuses to touch.
    sigs = [signal.SIGHUP, signal.SIGPROF, signal.SIGXCPU, signal.SIGUSR1,
            signal.SIGRTMIN + 3, 32]

    def ignore():
        for s in sigs:
            set_disposition(s, True)
    conf = t.basic_config(count=1)
    f = t.start(conf, preexec=ignore)
    f.wait_ready(1, 10)
    mask = sig_mask(proc_status_field(f.pid, "SigIgn"))
    check(mask & (1 << (signal.SIGPROF - 1)),
          "the test could not make fugue ignore SIGPROF (SigIgn %x)" % mask)
    rep = inherit(t.port)
    ign = sig_mask(rep["SigIgn"])
    left = [s for s in range(1, 65) if ign & (1 << (s - 1))]
    check(not left, "signals still ignored in the worker: %s (SigIgn %s)"
          % (left, rep["SigIgn"]))


def test_master_death_signal_reported(t):
    conf = t.basic_config(count=1, worker={"master_death_signal": "SIGINT"})
    t.start_ready(conf, 1)
    rep = inherit(t.port)
    check(int(rep["pdeathsig"]) == signal.SIGINT,
          "pdeathsig %s, want 2 (master_death_signal = SIGINT)" % rep["pdeathsig"])


def test_environment_filtering(t):
    # fugue's own systemd variables must not reach the workers. LISTEN_*
    # with a LISTEN_PID that is not fugue's are not meant for fugue either.
    nsock_path = t.path("notify.sock")
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(nsock_path)
    t.sockets.append(nsock)
    env = t.env(NOTIFY_SOCKET=nsock_path, WATCHDOG_USEC="60000000",
                WATCHDOG_PID="1", LISTEN_FDS="7", LISTEN_PID="1",
                LISTEN_FDNAMES="bogus", FUGUE_WORKER_ID="99",
                FUGUE_GENERATION="99", TEST_OUTER="outer", TEST_OVERRIDE="outer")
    conf = t.basic_config(count=1, worker=[("env", "TEST_ADDED=1"),
                                           ("env", "TEST_SPACES=two words"),
                                           ("env", "TEST_OVERRIDE=inner")])
    f = t.start_ready(conf, 1, env=env)
    rep = inherit(t.port)
    e = rep["env"]
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        check(name not in e, "%s=%r passed to the worker" % (name, e.get(name)))
    check(e.get("LISTEN_FDNAMES") != "bogus", "fugue's LISTEN_FDNAMES passed on")
    check(e.get("FUGUE_WORKER_ID") == "0", "FUGUE_WORKER_ID=%r, want 0"
          % e.get("FUGUE_WORKER_ID"))
    check(e.get("FUGUE_GENERATION") == "1", "FUGUE_GENERATION=%r, want 1 "
          "(not fugue's own)" % e.get("FUGUE_GENERATION"))
    check(e.get("TEST_OUTER") == "outer", "fugue's environment not passed "
          "(TEST_OUTER=%r)" % e.get("TEST_OUTER"))
    check(e.get("TEST_ADDED") == "1", "env = TEST_ADDED=1 missing: %r"
          % e.get("TEST_ADDED"))
    check(e.get("TEST_SPACES") == "two words", "TEST_SPACES=%r"
          % e.get("TEST_SPACES"))
    check(e.get("TEST_OVERRIDE") == "inner", "env = line does not override "
          "the inherited value: TEST_OVERRIDE=%r" % e.get("TEST_OVERRIDE"))
    check(e.get("PATH") == os.environ.get("PATH"), "PATH changed: %r"
          % e.get("PATH"))
    _basic_contract(t, f, rep, 1)


def test_clear_env(t):
    env = t.env(TEST_OUTER="outer")
    conf = t.basic_config(count=1, worker=[("clear_env", "yes"),
                                           ("env", "TEST_ADDED=1"),
                                           ("env", "PATH=/usr/bin:/bin")])
    f = t.start_ready(conf, 1, env=env)
    rep = inherit(t.port)
    names = set(rep["env"])
    extra = names - FUGUE_VARS - {"TEST_ADDED", "PATH"}
    check(not extra, "clear_env = yes leaves other variables: %s"
          % sorted(extra))
    check(rep["env"].get("TEST_ADDED") == "1", "env = line missing")
    check(rep["env"].get("PATH") == "/usr/bin:/bin", "PATH=%r"
          % rep["env"].get("PATH"))
    _basic_contract(t, f, rep, 1)


def test_working_dir_and_umask(t):
    wd = t.path("wd")
    os.mkdir(wd)
    conf = t.basic_config(count=1, worker={"working_dir": wd, "umask": "0027"})
    t.start_ready(conf, 1)
    rep = inherit(t.port)
    check(rep["cwd"] == wd, "cwd %r, want %r" % (rep["cwd"], wd))
    check(_umask(rep["umask"]) == 0o027, "umask %r, want 0027" % rep["umask"])


def test_default_umask_and_cwd_inherited(t):
    conf = t.basic_config(count=1)
    t.start_ready(conf, 1)
    rep = inherit(t.port)
    check(rep["cwd"] == t.dir, "cwd %r, want fugue's %r" % (rep["cwd"], t.dir))
    check(_umask(rep["umask"]) == 0o022, "umask %r, want fugue's 0022"
          % rep["umask"])


def test_generation_and_ids_match_hello(t):
    conf = t.basic_config(count=2)
    t.start_ready(conf, 2)
    seen = collect_ids(t.port, [0, 1], test=t)
    for _ in range(10):
        rep = inherit(t.port)
        wid = int(rep["env"]["FUGUE_WORKER_ID"])
        check(wid in seen and seen[wid][0] == int(rep["pid"]),
              "/inherit of pid %s says id %d; GET / said %s"
              % (rep["pid"], wid, seen))
        check(int(rep["env"]["FUGUE_GENERATION"]) == seen[wid][1],
              "generation mismatch")


@needs_root("to drop privileges to nobody")
def test_privilege_drop(t):
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody")
    t.stage_for_other_users()
    wd = t.path("wd")
    os.mkdir(wd)
    os.chmod(wd, 0o755)
    conf = t.basic_config(count=1, worker={"user": "nobody", "working_dir": wd})
    f = t.start_ready(conf, 1)
    rep = inherit(t.port)
    groups = sorted(set(os.getgrouplist("nobody", pw.pw_gid)))
    check((int(rep["uid"]), int(rep["euid"])) == (pw.pw_uid, pw.pw_uid),
          "uid/euid %s/%s, want %d" % (rep["uid"], rep["euid"], pw.pw_uid))
    check((int(rep["gid"]), int(rep["egid"])) == (pw.pw_gid, pw.pw_gid),
          "gid/egid %s/%s, want %d" % (rep["gid"], rep["egid"], pw.pw_gid))
    got = sorted(set(int(g) for g in rep["groups"]))
    check(got == groups, "supplementary groups %s, want %s (nobody's)"
          % (got, groups))
    # The parent-death signal must survive the credential change.
    check(int(rep["pdeathsig"]) == signal.SIGTERM,
          "pdeathsig %s after dropping privileges, want 15 (it must be set "
          "after setuid)" % rep["pdeathsig"])
    check(rep["cwd"] == wd, "cwd %r" % rep["cwd"])
    _basic_contract(t, f, rep, 1)
    # The master keeps its privileges.
    check(os.stat("/proc/%d" % f.pid).st_uid == 0, "the master dropped root")


@needs_root("to drop privileges to nobody")
def test_worker_reopens_its_output_as_its_user(t):
    # A worker run as another user can open its own stdout and stderr
    # again (/dev/stderr, /proc/self/fd/2: php-fpm's error_log): the pipe
    # to the master is its user's.
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody")
    t.stage_for_other_users()
    cmd = ("/bin/sh -c 'echo reopened-err >/dev/stderr && "
           "echo reopened-out >/proc/self/fd/1 && exec \"$0\" serve' %s"
           % t.worker)
    conf = t.basic_config(count=1, command=cmd, worker={"user": "nobody"})
    f = t.start_ready(conf, 1)
    f.wait_log(r"worker 0 \(pid \d+\): reopened-err$")
    f.wait_log(r"worker 0 \(pid \d+\): reopened-out$")
    check("Permission denied" not in f.log(), "a reopen was refused: %s"
          % f.log()[-400:])


@needs_root("to drop privileges to nobody:daemon")
def test_privilege_drop_with_group(t):
    try:
        pw = pwd.getpwnam("nobody")
        gr = grp.getgrnam("daemon")
    except KeyError:
        raise Skip("no user nobody or group daemon")
    t.stage_for_other_users()
    conf = t.basic_config(count=1, worker={"user": "nobody", "group": "daemon"})
    t.start_ready(conf, 1)
    rep = inherit(t.port)
    check(int(rep["uid"]) == pw.pw_uid, "uid %s" % rep["uid"])
    check((int(rep["gid"]), int(rep["egid"])) == (gr.gr_gid, gr.gr_gid),
          "gid/egid %s/%s, want daemon's %d" % (rep["gid"], rep["egid"],
                                                gr.gr_gid))
    check(0 not in [int(g) for g in rep["groups"]],
          "root's group 0 kept among supplementary groups: %s" % rep["groups"])


@needs_root("the warning is about workers running as root")
def test_root_workers_warned_user_root(t):
    # Running workers as root logs a warning (user = root).
    conf = t.basic_config(count=1, worker={"user": "root"})
    f = t.start_ready(conf, 1)
    check(re.search(r"warn: workers run as root", f.log()),
          "no warning that workers run as root (user = root)")


@needs_root("the warning is about workers running as root")
def test_root_workers_warned_no_user(t):
    # fugue started as root without user =: the workers run as root too.
    conf = t.basic_config(count=1)
    f = t.start_ready(conf, 1)
    check(re.search(r"warn: workers run as root", f.log()),
          "no warning that workers run as root (fugue is root, no user =)")
