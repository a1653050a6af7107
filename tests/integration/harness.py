"""Helpers for fugue's integration tests (Python 3 standard library only).

Every test function takes one argument, a Test (below): it owns a temporary
directory, the fugue processes the test starts and every worker pid the
test learned, and cleans them all up afterwards. Processes are only ever
signalled by pid, after checking that the pid still names the process we
recorded (same start time), never by name.

A test that runs something as another uid (a worker's user =, fugue started
with other credentials) first calls t.stage_for_other_users(): fugue and
the test worker then run from copies in the test's directory, which every
user can reach, wherever the checkout lives.
"""

import http.client
import json
import os
import pwd
import re
import shutil
import signal
import shlex
import socket
import stat
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# FUGUE_BIN / FUGUE_TEST_WORKER point the suite at binaries built elsewhere.
FUGUE = os.path.abspath(os.environ.get("FUGUE_BIN") or os.path.join(ROOT, "fugue"))
WORKER = os.path.abspath(os.environ.get("FUGUE_TEST_WORKER")
                         or os.path.join(ROOT, "tests", "worker"))

# "2026-11-24T21:05:00.123Z fugue (pid 1234) info: ready: 2 workers"
MASTER_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) fugue \(pid (\d+)\) "
    r"(error|warn|warning|info|debug): (.*)$")
# "2026-11-24T21:05:00.123Z worker 2 (pid 5678): listening"
WORKER_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) worker (\d+) \(pid (\d+)\): (.*)$")
READY_LINE = re.compile(r" fugue \(pid \d+\) info: ready: (\d+) workers?$", re.M)
# Output that always means a broken build or a crash of fugue itself.
FATAL_PATTERNS = [
    re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer"),
    re.compile(r"runtime error: "),
    re.compile(r"\*\*\* stack smashing detected"),
    re.compile(r"double free or corruption|malloc\(\): "),
]

DEFAULT_TIMEOUT = 60.0


class Skip(Exception):
    """Raised by a test that cannot run here (the reason is printed)."""


class TestFailure(AssertionError):
    pass


class TestTimeout(Exception):
    pass


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def timeout(seconds):
    """Decorator: a per-test time bound other than DEFAULT_TIMEOUT."""
    def deco(fn):
        fn.timeout = seconds
        return fn
    return deco


def needs_root(why):
    """Decorator: skip unless root; why says what root is needed for."""
    def deco(fn):
        fn.needs_root = why
        return fn
    return deco


# --------------------------------------------------------------------------
# Polling

def wait_until(cond, timeout=10.0, interval=0.02, what=None):
    """Poll cond() until it returns a true value, which is returned. On
    timeout raise TestFailure naming what (or cond)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            fail("timed out after %.1fs waiting for %s"
                 % (timeout, what or getattr(cond, "__name__", "condition")))
        time.sleep(interval)


def poll_for(cond, timeout, interval=0.02):
    """Like wait_until, but return the last value (false) on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# --------------------------------------------------------------------------
# Processes through /proc

def proc_stat(pid):
    """(state, ppid, pgrp, session, starttime) of pid, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    # rest[0] is field 3 (state); starttime is field 22.
    return (rest[0], int(rest[1]), int(rest[2]), int(rest[3]), int(rest[19]))


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def pid_exists(pid):
    """True if pid exists at all (a zombie counts)."""
    return proc_stat(pid) is not None


def all_pids():
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            out.append(int(name))
    return out


def children_of(ppid, include_zombies=False):
    """Pids whose parent is ppid (read from /proc/*/stat)."""
    kids = []
    for pid in all_pids():
        st = proc_stat(pid)
        if st is None or st[1] != ppid:
            continue
        if not include_zombies and st[0] in ("Z", "X"):
            continue
        kids.append(pid)
    return sorted(kids)


def descendants_of(ppid):
    table = {}
    for pid in all_pids():
        st = proc_stat(pid)
        if st is not None:
            table.setdefault(st[1], []).append(pid)
    out, todo = [], [ppid]
    while todo:
        p = todo.pop()
        for c in table.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def proc_status_field(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return "?"


def proc_fds(pid):
    """{fd: readlink target} of a live process."""
    out = {}
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        try:
            out[int(name)] = os.readlink(os.path.join(d, name))
        except OSError:
            pass
    return out


# --------------------------------------------------------------------------
# Network

def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


def http_get(target, path="/", timeout=5.0):
    """GET path on a new connection. target: a port on 127.0.0.1, a
    (host, port) pair, or "unix:/path". Returns (status, body as str).
    Raises OSError/http.client errors on failure."""
    if isinstance(target, str) and target.startswith("unix:"):
        conn = UnixHTTPConnection(target[5:], timeout=timeout)
    else:
        if isinstance(target, int):
            host, port = "127.0.0.1", target
        else:
            host, port = target
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        return resp.status, body
    finally:
        conn.close()


def try_get(target, path="/", timeout=2.0):
    """(status, body) or None when the request failed."""
    try:
        return http_get(target, path, timeout)
    except (OSError, http.client.HTTPException):
        return None


def connect_refused(port, timeout=1.0):
    """True if a TCP connect to 127.0.0.1:port is refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(("127.0.0.1", port))
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()
    return False


HELLO_RE = re.compile(r"^worker (\d+) pid (\d+) gen (\d+)\s*$")


def parse_hello(body):
    """'worker <id> pid <pid> gen <gen>' -> (id, pid, gen) or None."""
    m = HELLO_RE.match(body.strip())
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def parse_duration_ms(s):
    """'100ms', '1.6s', '2m', '1h' -> milliseconds (float)."""
    m = re.match(r"^([0-9.]+)(ms|s|m|h)?$", s)
    if not m:
        raise ValueError("bad duration %r" % s)
    v = float(m.group(1))
    unit = m.group(2) or "s"
    return v * {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}[unit]


# --------------------------------------------------------------------------
# fugue processes

class Fugue:
    """One fugue process started by a test (normally the master)."""

    def __init__(self, test, args, log_path, env=None, cwd=None, name="fugue",
                 logs=(), preexec=None, output=None):
        self.test = test
        self.args = list(args)
        self.log_path = log_path
        # Files fugue writes its log to besides stderr (log_file,
        # master_log_file): read together with stderr by log().
        self.logs = list(logs)
        self.name = name
        self.logf = open(log_path, "ab")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [test.fugue] + self.args, stdin=subprocess.DEVNULL,
            stdout=self.logf if output is None else output,
            stderr=subprocess.STDOUT, env=env, cwd=cwd or test.dir,
            close_fds=True, preexec_fn=_preexec(preexec))
        self.pid = self.proc.pid
        self.rc = None
        test._remember(self.pid)

    # -- state
    def alive(self):
        return self.poll() is None

    def poll(self):
        if self.rc is None:
            rc = self.proc.poll()
            if rc is not None:
                self.rc = rc
                self.exit_time = time.monotonic()
        return self.rc

    def wait_exit(self, timeout=10.0):
        """Wait for fugue to exit; returns its exit status (negative:
        killed by that signal). Fails the test on timeout."""
        wait_until(lambda: self.poll() is not None, timeout,
                   what="%s (pid %d) to exit" % (self.name, self.pid))
        return self.rc

    def signal(self, sig):
        if self.poll() is None:
            os.kill(self.pid, sig)

    # -- log
    def log(self):
        """stderr, then every other log file, as one text."""
        out = []
        for p in [self.log_path] + self.logs:
            try:
                with open(p, "rb") as f:
                    data = f.read().decode("utf-8", "replace")
            except (FileNotFoundError, IsADirectoryError):
                continue
            if data and not data.endswith("\n"):
                data += "\n"
            out.append(data)
        return "".join(out)

    def log_lines(self):
        return self.log().splitlines()

    def master_lines(self, level=None):
        out = []
        for line in self.log_lines():
            m = MASTER_LINE.match(line)
            if m and (level is None or m.group(3) == level):
                out.append(line)
        return out

    def wait_log(self, pattern, timeout=10.0, count=1):
        """Wait until pattern (regex) matches count times in the log;
        returns the list of matches."""
        rx = re.compile(pattern, re.M)

        def cond():
            ms = list(rx.finditer(self.log()))
            if len(ms) >= count:
                return ms
            if self.poll() is not None:
                fail("fugue exited (status %s) while waiting for %r in its log"
                     % (self.rc, pattern))
            return None
        return wait_until(cond, timeout, what="%r in the log" % pattern)

    def wait_ready(self, n=None, timeout=10.0, count=1):
        """Wait for 'ready: N workers' (the count-th such line); returns N."""
        pat = r" fugue \(pid %d\) info: ready: %s workers?$" % (
            self.pid, r"(\d+)" if n is None else str(n))
        ms = self.wait_log(pat, timeout, count)
        return int(ms[count - 1].group(1)) if n is None else n

    # -- children
    def children(self):
        """Live children of the master; they are remembered for cleanup."""
        kids = children_of(self.pid)
        for k in kids:
            self.test._remember(k)
        return kids

    def wait_children(self, n, timeout=10.0):
        """Wait until the master has exactly n live children; returns them."""
        box = []

        def cond():
            box[:] = [self.children()]
            return len(box[0]) == n
        wait_until(cond, timeout, what="%d live children of fugue (pid %d)"
                   % (n, self.pid))
        return box[0]


_RT_SIGACTION = {"x86_64": 13, "aarch64": 134, "riscv64": 134}


def set_disposition(sig, ignore):
    """Set sig to SIG_IGN (ignore=True) or SIG_DFL with rt_sigaction itself:
    glibc's sigaction refuses its internal signals (32, 33), which a parent
    may still have left ignored. False if that is not possible here."""
    nr = _RT_SIGACTION.get(os.uname().machine)
    if nr is None:
        try:
            signal.signal(sig, signal.SIG_IGN if ignore else signal.SIG_DFL)
            return True
        except (OSError, ValueError):
            return False
    import ctypes

    class KSigaction(ctypes.Structure):
        _fields_ = [("handler", ctypes.c_ulong), ("flags", ctypes.c_ulong),
                    ("restorer", ctypes.c_ulong), ("mask", ctypes.c_ulong)]
    act = KSigaction(1 if ignore else 0, 0, 0, 0)
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(ctypes.c_long(nr), ctypes.c_long(sig),
                        ctypes.byref(act), None, ctypes.c_long(8)) == 0


def reset_ignored_signals(keep=(signal.SIGPIPE, signal.SIGXFSZ)):
    """Give every signal ignored in this process its default disposition,
    so that what fugue and its workers inherit does not depend on how the
    suite was started (make, nohup, a CI runner). Python's own SIGPIPE and
    SIGXFSZ stay ignored (subprocess resets them in children)."""
    mask = sig_mask(proc_status_field(os.getpid(), "SigIgn") or "0")
    for sig in range(1, 65):
        if mask & (1 << (sig - 1)) and sig not in keep:
            set_disposition(sig, False)


def _preexec(extra):
    if extra is None:
        return _die_with_runner

    def both():
        _die_with_runner()
        extra()
    return both


def _die_with_runner():
    # If the runner itself dies, take fugue with it (fugue's workers then
    # follow through their own parent-death signal).
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


# --------------------------------------------------------------------------
# The per-test context

def reachable_by_others(path):
    """True if any user can reach path: every directory from / down to it
    searchable by others (o+x)."""
    p = os.path.realpath(path)
    while True:
        try:
            st = os.stat(p)
        except OSError:
            return False
        if not st.st_mode & stat.S_IXOTH:
            return False
        if p == "/":
            return True
        p = os.path.dirname(p)


_temp_base = []


def temp_base():
    """Where the tests' directories go: the usual temporary directory if
    every user can reach it and run programs there (what runs as another
    uid is staged under it), else the first of /tmp, /var/tmp, /dev/shm
    that qualifies."""
    if not _temp_base:
        def fits(d):
            try:
                return os.path.isdir(d) and reachable_by_others(d) and \
                    not os.statvfs(d).f_flag & os.ST_NOEXEC
            except OSError:
                return False
        cands = [tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"]
        _temp_base.append(next((d for d in cands if fits(d)), cands[0]))
    return _temp_base[0]


class Test:
    """Context handed to each test function."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="fugue-it-", dir=temp_base())
        os.chmod(self.dir, 0o755)
        # The binaries the test runs; stage_for_other_users() points them
        # at copies another uid can execute.
        self.fugue = FUGUE
        self.worker = WORKER
        self.fugues = []
        self.pids = {}             # pid -> starttime, for cleanup
        self.expected = []         # regexes of error lines the test expects
        self.check_errors = True
        self.sockets = []
        self.threads = []

    # -- files
    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, name, text, mode=0o644):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def config(self, name="fugue.conf", master=None, listen=None,
               worker=None, extra=""):
        """Write an INI file. Each section is a list of (key, value) pairs
        (repeat a key by listing it twice) or a dict; None leaves it out."""
        out = []
        for sect, items in (("master", master), ("listen", listen),
                            ("worker", worker)):
            if items is None:
                continue
            if isinstance(items, dict):
                items = list(items.items())
            if sect == "worker":
                self._check_staged(items)
            out.append("[%s]" % sect)
            for k, v in items:
                out.append("%s = %s" % (k, v))
            out.append("")
        text = "\n".join(out) + extra
        return self.write(name, text)

    def basic_config(self, port=None, count=2, command=None, mode="serve",
                     ready="200ms", kill_timeout="2s", master=None,
                     listen=None, worker=None, name="fugue.conf"):
        """The minimal config on a free port (self.port), plus extra keys.
        Returns the config path."""
        if port is None:
            port = self.port = free_port()
        if command is None:
            command = "%s %s" % (self.worker, mode)
        lst = [("address", "127.0.0.1:%d" % port)] if port else []
        lst += list((listen or {}).items()) if isinstance(listen, dict) \
            else list(listen or [])
        wk = [("command", command), ("count", count), ("ready", ready),
              ("kill_timeout", kill_timeout)]
        extra = list(worker.items()) if isinstance(worker, dict) \
            else list(worker or [])
        keys = {k for k, _ in extra}
        wk = [(k, v) for k, v in wk if k not in keys] + extra
        return self.config(name=name, master=master, listen=lst, worker=wk)

    # -- what another uid runs
    def check_reachable_by_others(self):
        """Fail unless every user can reach the test's directory."""
        check(reachable_by_others(self.dir),
              "%s is not reachable by other users (a directory on its way "
              "from / is not mode o+x)" % self.dir)

    def staged(self, path, name=None):
        """A copy of the program path (mode 0755) in the test's directory,
        which every user can reach: what runs as another uid (a worker's
        user =, fugue started with other credentials) must not depend on
        where the checkout lives."""
        self.check_reachable_by_others()
        d = self.path("staged")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        dst = os.path.join(d, name or os.path.basename(path))
        shutil.copyfile(path, dst)
        os.chmod(dst, 0o755)
        return dst

    def stage_for_other_users(self):
        """From now on run fugue and the test worker from staged copies
        (self.fugue, self.worker; basic_config's default command)."""
        require_binaries()
        if self.fugue == FUGUE:
            self.fugue = self.staged(FUGUE, "fugue")
        if self.worker == WORKER:
            self.worker = self.staged(WORKER, "worker")

    def _check_staged(self, worker):
        """A [worker] section whose user = is another existing uid must not
        run a program from the checkout, which that uid may not reach."""
        user = [v for k, v in worker if k == "user"]
        cmd = [v for k, v in worker if k == "command"]
        if not user or not cmd:
            return
        try:
            u = str(user[-1])
            uid = int(u) if u.isdigit() else pwd.getpwnam(u).pw_uid
        except KeyError:
            return                      # refused by fugue: nothing runs
        if uid == os.geteuid():
            return
        try:
            words = shlex.split(str(cmd[-1]))
        except ValueError:
            words = str(cmd[-1]).split()
        prog = os.path.realpath(words[0]) if words else ""
        check(not (prog == os.path.realpath(WORKER) or prog.startswith(
            os.path.realpath(ROOT) + os.sep)),
            "the worker runs %s as user %s: call t.stage_for_other_users() "
            "(or t.staged()) so that uid %d can reach it in any checkout"
            % (prog, u, uid))

    # -- fugue
    def start(self, args, env=None, cwd=None, log="fugue.log", name="fugue",
              logs=(), preexec=None, output=None):
        """Start fugue with args (a list, or a config path for -c PATH).
        Its stdout and stderr go to log in the test's directory (or to the
        fd output); logs names the other files it logs to (log_file,
        master_log_file); preexec runs in the child just before the exec."""
        require_binaries()
        if isinstance(args, str):
            args = ["-c", args]
        f = Fugue(self, args, self.path(log), env=env, cwd=cwd, name=name,
                  logs=logs, preexec=preexec, output=output)
        self.fugues.append(f)
        return f

    def start_ready(self, conf, n=None, timeout=10.0, **kw):
        f = self.start(conf, **kw)
        f.wait_ready(n, timeout)
        return f

    def run(self, args, timeout=10.0, env=None, cwd=None):
        """Run fugue to completion: (status, stdout, stderr)."""
        require_binaries()
        p = subprocess.Popen([self.fugue] + list(args), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env, cwd=cwd or self.dir,
                             preexec_fn=_die_with_runner)
        self._remember(p.pid)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kids = descendants_of(p.pid)
            for k in kids:
                self._remember(k)
            p.kill()
            out, err = p.communicate()
            fail("fugue %s did not finish within %.0fs; output: %s"
                 % (" ".join(args), timeout, (out + err).decode()[-500:]))
        out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        for line in (out + err).splitlines():
            if any(rx.search(line) for rx in FATAL_PATTERNS):
                fail("fugue %s (exit %d): %s" % (" ".join(args), p.returncode,
                                                 line))
        return p.returncode, out, err

    def env(self, **extra):
        """fugue's environment: ours plus extra (None removes a name)."""
        e = dict(os.environ)
        for k, v in extra.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    # -- expectations about the log
    def expect_error(self, pattern):
        """An error-level log line matching pattern is expected."""
        self.expected.append(re.compile(pattern))

    def unexpected_lines(self, fugue):
        bad = []
        text = fugue.log()
        for line in text.splitlines():
            for rx in FATAL_PATTERNS:
                if rx.search(line):
                    bad.append(line)
                    break
            else:
                m = MASTER_LINE.match(line)
                if m and m.group(3) == "error" and self.check_errors:
                    if not any(rx.search(line) for rx in self.expected):
                        bad.append(line)
        return bad

    # -- processes
    def _remember(self, pid):
        if pid in self.pids:
            return
        st = proc_stat(pid)
        if st is not None:
            self.pids[pid] = st[4]

    def remember(self, *pids):
        for p in pids:
            self._remember(p)

    def _ours(self, pid):
        st = proc_stat(pid)
        return st is not None and st[0] not in ("Z", "X") and \
            st[4] == self.pids.get(pid)

    def cleanup(self):
        # Learn every descendant of the masters still running, then kill
        # the masters by pid, then whatever remembered process is left.
        for f in self.fugues:
            if f.poll() is None:
                for k in descendants_of(f.pid):
                    self._remember(k)
        for f in self.fugues:
            if f.poll() is None:
                try:
                    os.kill(f.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                f.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            f.poll()
            f.logf.close()
        for pid in list(self.pids):
            if self._ours(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        poll_for(lambda: not any(self._ours(p) for p in self.pids), 5.0)
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass
        for th in self.threads:
            th.join(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def leftover(self):
        """Remembered processes (other than fugue's own that exited) that
        are still alive."""
        return [p for p in self.pids if self._ours(p)]

    # -- helpers for concurrency
    def background(self, fn, *args):
        """Run fn(*args) in a thread; returns a dict filled with 'result'
        or 'error' when it ends."""
        box = {}

        def run():
            try:
                box["result"] = fn(*args)
            except BaseException as e:  # noqa: B902 (reported to the test)
                box["error"] = e
        th = threading.Thread(target=run, daemon=True)
        th.start()
        box["thread"] = th
        self.threads.append(th)
        return box

    def tcp_listener(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(5)
        self.sockets.append(s)
        return s


# --------------------------------------------------------------------------
# Worker helpers

def inherit(target, timeout=5.0):
    """A worker's /inherit report as a dict."""
    status, body = http_get(target, "/inherit", timeout)
    check(status == 200, "/inherit answered %d: %s" % (status, body[:200]))
    try:
        return json.loads(body)
    except ValueError as e:
        fail("/inherit is not JSON (%s): %s" % (e, body[:300]))


def collect_ids(target, want, timeout=10.0, test=None, must=True):
    """Ask GET / until every worker id in want has answered. Returns
    {id: (pid, gen)} of the latest answers. Sequential requests on new
    connections, alternating with concurrent slow ones (a busy worker
    leaves the next connection to the others). With must=False, return
    None instead of failing when not every id answered in time."""
    want = set(want)
    seen = {}
    deadline = time.monotonic() + timeout

    def record(r):
        if r and r[0] == 200:
            h = parse_hello(r[1])
            if h:
                seen[h[0]] = (h[1], h[2])
                if test is not None:
                    test.remember(h[1])

    rounds = 0
    while time.monotonic() < deadline:
        for _ in range(20):
            record(try_get(target, "/"))
        if want <= set(seen):
            return seen
        rounds += 1
        results = []
        ths = []
        for _ in range(len(want)):
            th = threading.Thread(target=lambda: results.append(
                try_get(target, "/slow?ms=100")), daemon=True)
            th.start()
            ths.append(th)
        # /slow answers may not carry the hello line; a plain GET while the
        # others are busy reaches an idle worker.
        record(try_get(target, "/"))
        for th in ths:
            th.join(5)
        for r in results:
            record(r)
        if want <= set(seen):
            return seen
    if not must:
        return None
    fail("worker ids seen %s, wanted %s" % (sorted(seen), sorted(want)))


def sig_mask(value):
    """A /proc status mask as an int (hex string, or an int already)."""
    if isinstance(value, int):
        return value
    return int(str(value), 16)


_binaries_checked = []


def require_binaries():
    if _binaries_checked:
        return
    for p in (FUGUE, WORKER):
        if not os.access(p, os.X_OK):
            fail("%s is missing (run make fugue tests/worker)" % p)
    _binaries_checked.append(True)


def is_root():
    return os.geteuid() == 0
