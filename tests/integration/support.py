"""Helpers shared by test_logcapture.py, test_systemd.py and test_control.py
(on top of harness.py, which they do not change).

- Launched: a process other than plain `fugue ARGS` (systemd-socket-activate,
  unshare) tracked like a harness Fugue: logged, cleaned up by pid, its log
  checked for errors.
- NotifyListener: a NOTIFY_SOCKET of our own (datagrams, sender pid checked
  with SCM_CREDENTIALS), recording what fugue tells "systemd".
- FdStore: a NotifyListener that also plays systemd's fd store (FDSTORE=1,
  FDSTOREREMOVE=1) and starts a process with what it keeps as LISTEN_FDS.
- ctl(): one raw request on a control socket.
- ticker_command(): a worker that prints numbered lines at a bounded rate on
  stdout and stderr, and a last line when it gets TERM.
"""

import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

import harness
from harness import check, wait_until


def read_lines(path):
    """The lines of a file (decoded leniently); [] if it does not exist."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return []
    return data.decode("utf-8", "replace").splitlines()


def read_bytes(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return b""


class Launched(harness.Fugue):
    """A process started with an arbitrary argv (the first word is not
    fugue) that the harness treats as one of the test's fugues."""

    def __init__(self, test, argv, log_name, env=None, name=None, logs=(),
                 pass_fds=()):
        harness.require_binaries()
        self.test = test
        self.args = list(argv)
        self.log_path = test.path(log_name)
        self.logs = list(logs)
        self.name = name or os.path.basename(argv[0])
        self.logf = open(self.log_path, "ab")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=self.logf,
            stderr=subprocess.STDOUT, env=env, cwd=test.dir, close_fds=True,
            pass_fds=pass_fds, preexec_fn=harness._die_with_runner)
        self.pid = self.proc.pid
        self.rc = None
        test._remember(self.pid)
        test.fugues.append(self)


# --------------------------------------------------------------------------
# NOTIFY_SOCKET

_UCRED = struct.Struct("iII")   # pid, uid, gid
_INT = struct.Struct("i")


class NotifyListener:
    """A datagram socket in the test's directory playing systemd's part.
    msgs: a list of (monotonic time, sender pid, text), in arrival order."""

    def __init__(self, t, name="notify.sock"):
        self.path = t.path(name)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.2)
        t.sockets.append(self.sock)     # closed at cleanup: ends the thread
        self.msgs = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        t.threads.append(self.thread)

    def _run(self):
        space = socket.CMSG_SPACE(_UCRED.size) + \
            socket.CMSG_SPACE(16 * _INT.size)
        while True:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(4096, space)
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            fds = []
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and \
                        typ == socket.SCM_CREDENTIALS and \
                        len(cdata) >= _UCRED.size:
                    pid = _UCRED.unpack(cdata[:_UCRED.size])[0]
                elif level == socket.SOL_SOCKET and \
                        typ == socket.SCM_RIGHTS:
                    n = len(cdata) // _INT.size
                    fds += struct.unpack("%di" % n, cdata[:n * _INT.size])
            text = data.decode("utf-8", "replace")
            with self.lock:
                self._take(text, fds)
                self.msgs.append((time.monotonic(), pid, text))

    def _take(self, text, fds):
        """File descriptors that came with a message (closed here)."""
        for fd in fds:
            os.close(fd)

    def snapshot(self, watchdog=False):
        """The messages so far; WATCHDOG=1 pings left out unless asked."""
        with self.lock:
            out = list(self.msgs)
        if not watchdog:
            out = [m for m in out if m[2] != "WATCHDOG=1"]
        return out


# Started by FdStore.launch: moves the fds it is given to 3, 4, ... and
# execs the command with LISTEN_FDS, LISTEN_FDNAMES and its own LISTEN_PID,
# as systemd does for a service.
_LAUNCH = r'''
import fcntl, os, sys
n = int(sys.argv[1])
src = [int(a) for a in sys.argv[2:2 + n]]
names = sys.argv[2 + n]
argv = sys.argv[3 + n:]
high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3 + n) for fd in src]
for fd in src:
    os.close(fd)
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i)
    os.close(fd)
env = dict(os.environ, LISTEN_FDS=str(n), LISTEN_PID=str(os.getpid()),
           LISTEN_FDNAMES=names)
os.execve(argv[0], argv, env)
'''


class FdStore(NotifyListener):
    """NOTIFY_SOCKET playing systemd's part for its fd store, as
    sd_notify(3) and systemd's FILE_DESCRIPTOR_STORE document it: each fd
    sent with FDSTORE=1 is kept under its FDNAME= (a socket it holds already
    is not added twice), FDSTOREREMOVE=1 closes every fd of that name, and
    launch() starts a service with what is kept, in order, as LISTEN_FDS."""

    def __init__(self, t, name="notify.sock"):
        self.kept = []          # [(name, fd)], in the order received
        self.test = t
        super().__init__(t, name)
        t.sockets.append(self)  # its fds closed at cleanup, after the thread

    def _take(self, text, fds):
        f = notify_fields(text)
        if f.get("FDSTORE") == "1":
            for fd in fds:
                st = os.fstat(fd)
                if any((os.fstat(k).st_dev, os.fstat(k).st_ino) ==
                       (st.st_dev, st.st_ino) for _, k in self.kept):
                    os.close(fd)
                else:
                    self.kept.append((f.get("FDNAME", "stored"), fd))
            return
        if f.get("FDSTOREREMOVE") == "1":
            gone = [fd for n, fd in self.kept if n == f.get("FDNAME")]
            self.kept = [(n, fd) for n, fd in self.kept
                         if n != f.get("FDNAME")]
            for fd in gone:
                os.close(fd)
        super()._take(text, fds)

    def names(self):
        with self.lock:
            return [n for n, _ in self.kept]

    def inode(self, name):
        """The socket inode kept under name (None if none)."""
        with self.lock:
            for n, fd in self.kept:
                if n == name:
                    return os.fstat(fd).st_ino
        return None

    def close(self):
        with self.lock:
            for _, fd in self.kept:
                os.close(fd)
            self.kept = []

    def launch(self, argv, log_name, env=None):
        """Start argv (fugue and its arguments) the way systemd restarts a
        service: the stored fds from fd 3, LISTEN_FDS, LISTEN_FDNAMES and
        LISTEN_PID its own pid; NOTIFY_SOCKET this store (as env says)."""
        with self.lock:
            kept = list(self.kept)
        script = self.test.write("launch.py", _LAUNCH)
        args = [sys.executable, "-S", script, str(len(kept))] + \
            [str(fd) for _, fd in kept] + \
            [":".join(n for n, _ in kept)] + list(argv)
        return Launched(self.test, args, log_name, env=env,
                        name=os.path.basename(argv[0]),
                        pass_fds=[fd for _, fd in kept])


def figure(text):
    """A measured figure, printed when FUGUE_FIGURES is set in the
    environment of the test run (a report's numbers come from there)."""
    if os.environ.get("FUGUE_FIGURES"):
        print("     figure: " + text, flush=True)


def notify_fields(text):
    """'READY=1\\nSTATUS=x' -> {'READY': '1', 'STATUS': 'x'}."""
    out = {}
    for line in text.split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def clean_env(t, **extra):
    """fugue's environment without anything systemd-ish of our own
    surroundings, plus extra."""
    base = dict(NOTIFY_SOCKET=None, WATCHDOG_USEC=None, WATCHDOG_PID=None,
                LISTEN_FDS=None, LISTEN_PID=None, LISTEN_FDNAMES=None)
    base.update(extra)
    return t.env(**base)


# --------------------------------------------------------------------------
# Control socket

def ctl(path, data, timeout=10.0):
    """Send data (bytes or str, sent as is) on the control socket at path
    and return everything it answers until it closes, as str."""
    if isinstance(data, str):
        data = data.encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        return ctl_exchange(s, data).decode("utf-8", "replace")
    finally:
        s.close()


def ctl_exchange(s, data):
    """Send data on a connected control socket, return all it answers.
    fugue may answer and close before it read everything (a refused peer,
    an overlong line): then our send fails with EPIPE, or the end of the
    answer reads as ECONNRESET (Linux resets a UNIX stream closed with
    unread data); the answer itself is never lost, so both end it."""
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return out


# --------------------------------------------------------------------------
# A worker that prints numbered lines

TICKER = r'''
import os, signal, sys, time
wid = os.environ.get("FUGUE_WORKER_ID", "?")
gen = os.environ.get("FUGUE_GENERATION", "?")
interval = float(sys.argv[1]) if len(sys.argv) > 1 else 0.002

def bye(signum, frame):
    os.write(1, ("bye w%s g%s\n" % (wid, gen)).encode())
    os._exit(0)

signal.signal(signal.SIGTERM, bye)
i = 0
while True:
    # even lines on stdout, odd ones on stderr: one pipe, one order
    os.write(1 + (i & 1), ("tick w%s g%s %d\n" % (wid, gen, i)).encode())
    i += 1
    time.sleep(interval)
'''

TICK_RE = re.compile(r"^tick w(\d+) g(\d+) (\d+)$")
BYE_RE = re.compile(r"^bye w(\d+) g(\d+)$")


def ticker_command(t, interval=0.002):
    """The [worker] command of a ticker (Python, from this interpreter)."""
    script = t.write("ticker.py", TICKER)
    return "%s -S %s %s" % (sys.executable, script, interval)


def worker_lines(lines):
    """[(slot, pid, text)] of the prefixed worker lines among lines."""
    out = []
    for line in lines:
        m = harness.WORKER_LINE.match(line)
        if m:
            out.append((int(m.group(2)), int(m.group(3)), m.group(4)))
    return out


def check_ticks(seqs, what):
    """seqs must be 0, 1, 2, ... with no gap and no repeat."""
    check(seqs, "%s: no tick lines at all" % what)
    bad = [(i, s) for i, s in enumerate(seqs) if s != i]
    check(not bad, "%s: tick numbers out of order, missing or repeated "
          "(position, number): %s; %d ticks" % (what, bad[:5], len(seqs)))
