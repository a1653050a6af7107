"""Load for fugue's reload and upgrade tests, plus a few helpers those tests
share (Python 3 standard library only; the general helpers are harness.py's).

    with Load(port, new_conn=2, keep_alive=2) as load:
        ... reload fugue ...
        load.wait_progress(20)          # requests went on being answered
    load.check_clean()                  # fails the test on any failure

Load runs client threads against 127.0.0.1:port until it is stopped, its
duration runs out or max_requests were made, whichever comes first:
  - new-connection clients: one TCP connection per request (Connection:
    close), as a load balancer's health checks or curl in a loop do;
  - keep-alive clients: HTTP/1.1 requests on one connection, reconnecting
    when the server answers "Connection: close" or closes it.
A keep-alive client behaves as real clients (curl, browsers) do when a
server closes an idle persistent connection: a request whose connection
was already used, and that failed before any byte of the response came
back (reset, broken pipe, end of file), is retried once on a new
connection; only a failure of that retry counts.

Every request ends as a success (200 with a complete body) or a failure of
one kind: "refused" (connect refused), "reset" (connection reset, broken
pipe), "timeout", "status" (an answer other than 200), "short" (the
connection ended before the whole response came) or "other". Latencies
and each answer's worker pid and generation (tests/worker's "worker <id>
pid <pid> gen <gen>") are recorded with monotonic timestamps.
"""

import calendar
import errno
import json
import os
import re
import shutil
import socket
import threading
import time

import harness
from harness import check, fail, poll_for

HOST = "127.0.0.1"
KINDS = ("refused", "reset", "timeout", "status", "short", "other")


class RequestFailed(Exception):
    def __init__(self, kind, detail, got=0):
        super().__init__("%s: %s" % (kind, detail))
        self.kind = kind
        self.detail = detail
        self.got = got          # response bytes received before it failed


class Sample:
    """One finished request (success or not)."""
    __slots__ = ("client", "t0", "t1", "ok", "kind", "detail", "status",
                 "wid", "pid", "gen", "retried", "wall")

    def __init__(self, client, t0):
        self.client = client
        self.t0 = t0
        self.t1 = None
        self.ok = False
        self.kind = None
        self.detail = ""
        self.status = None
        self.wid = self.pid = self.gen = None
        self.retried = False
        self.wall = time.time()

    @property
    def latency(self):
        return self.t1 - self.t0

    def __repr__(self):
        if self.ok:
            return "<%s ok %.0fms gen %s pid %s>" % (
                self.client, 1000 * self.latency, self.gen, self.pid)
        return "<%s %s at %s (%.0fms): %s>" % (
            self.client, self.kind, _utc(self.wall), 1000 * self.latency,
            self.detail)


def _utc(wall):
    return time.strftime("%H:%M:%S", time.gmtime(wall)) + \
        ".%03dZ" % int((wall % 1) * 1000)


def _classify(e):
    if isinstance(e, RequestFailed):
        return e
    if isinstance(e, ConnectionRefusedError):
        return RequestFailed("refused", str(e))
    if isinstance(e, (ConnectionResetError, BrokenPipeError,
                      ConnectionAbortedError)):
        return RequestFailed("reset", str(e))
    if isinstance(e, socket.timeout):
        return RequestFailed("timeout", "no answer in time")
    if isinstance(e, OSError) and e.errno in (errno.ECONNRESET, errno.EPIPE):
        return RequestFailed("reset", str(e))
    return RequestFailed("other", "%s: %s" % (type(e).__name__, e))


class _Conn:
    """One client connection speaking just enough HTTP/1.1."""

    def __init__(self, port, timeout):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.used = 0           # responses read on it

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def request(self, path, keep):
        """(status, headers, body, server_closes). Raises RequestFailed
        (with .got) or OSError."""
        req = "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (
            path, HOST, "" if keep else "Connection: close\r\n")
        self.sock.sendall(req.encode("ascii"))
        buf = b""
        while b"\r\n\r\n" not in buf:
            try:
                chunk = self.sock.recv(65536)
            except OSError as e:
                f = _classify(e)
                f.got = len(buf)
                raise f
            if not chunk:
                raise RequestFailed("short", "end of file after %d bytes of "
                                    "the header" % len(buf), len(buf))
            buf += chunk
            if len(buf) > 65536:
                raise RequestFailed("other", "header over 64 KiB", len(buf))
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"^HTTP/1\.[01] (\d{3})", lines[0])
        if not m:
            raise RequestFailed("other", "bad status line %r" % lines[0],
                                len(buf))
        status = int(m.group(1))
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        closes = "close" in headers.get("connection", "").lower()
        clen = headers.get("content-length")
        if clen is None:
            # No length: the body runs to the end of the connection.
            closes = True
            while True:
                try:
                    chunk = self.sock.recv(65536)
                except OSError as e:
                    f = _classify(e)
                    f.got = len(head) + len(body)
                    raise f
                if not chunk:
                    break
                body += chunk
        else:
            want = int(clen)
            while len(body) < want:
                try:
                    chunk = self.sock.recv(65536)
                except OSError as e:
                    f = _classify(e)
                    f.got = len(head) + len(body)
                    raise f
                if not chunk:
                    raise RequestFailed(
                        "short", "end of file after %d of %d body bytes"
                        % (len(body), want), len(head) + len(body))
                body += chunk
            if len(body) > want:
                raise RequestFailed("other", "%d bytes after the body"
                                    % (len(body) - want), len(buf))
        self.used += 1
        return status, headers, body.decode("utf-8", "replace"), closes


class Load:
    """Client threads against 127.0.0.1:port; a context manager.

    new_conn / keep_alive: how many clients of each kind. path: what they
    GET. interval: pause between one client's requests (s). timeout: per
    request (s). duration: the load stops by itself after this long (s).
    max_requests: and after this many requests in all."""

    def __init__(self, port, new_conn=2, keep_alive=2, path="/",
                 interval=0.005, timeout=10.0, duration=120.0,
                 max_requests=200000):
        self.port = port
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self.duration = duration
        self.max_requests = max_requests
        self.plan = [("new", i) for i in range(new_conn)] + \
            [("keep", i) for i in range(keep_alive)]
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.samples = []
        self.ok = {"new": 0, "keep": 0}
        self.failures = {k: 0 for k in KINDS}
        self.retries = 0        # keep-alive requests retried (and how many)
        self.retries_ok = 0     # of which the retry worked
        self.started = 0
        self.threads = []
        self.t_start = None
        self.t_stop = None

    # -- running
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        self.t_start = time.monotonic()
        self.deadline = self.t_start + self.duration
        for kind, i in self.plan:
            th = threading.Thread(target=self._run, args=(kind, i),
                                  name="load-%s-%d" % (kind, i), daemon=True)
            th.start()
            self.threads.append(th)
        return self

    def stop(self):
        self.stop_ev.set()
        for th in self.threads:
            th.join(self.timeout + 5)
        if self.t_stop is None:
            self.t_stop = time.monotonic()
        alive = [th.name for th in self.threads if th.is_alive()]
        if alive:
            fail("load threads did not stop: %s" % alive)

    def _go_on(self):
        if self.stop_ev.is_set() or time.monotonic() >= self.deadline:
            return False
        with self.lock:
            if self.started >= self.max_requests:
                return False
            self.started += 1
        return True

    def _run(self, kind, i):
        conn = None
        name = "%s%d" % (kind, i)
        try:
            while self._go_on():
                s = Sample(name, time.monotonic())
                if kind == "new":
                    self._one_new(s)
                else:
                    conn = self._one_keep(s, conn)
                s.t1 = time.monotonic()
                self._record(s)
                if self.interval:
                    self.stop_ev.wait(self.interval)
        finally:
            if conn is not None:
                conn.close()

    def _finish(self, s, status, body):
        s.status = status
        h = harness.parse_hello(body)
        if h:
            s.wid, s.pid, s.gen = h
        if status == 200:
            s.ok = True
        else:
            s.kind = "status"
            s.detail = "HTTP %d: %r" % (status, body[:80])

    def _fail(self, s, f):
        s.ok = False
        s.kind = f.kind
        s.detail = (s.detail + "; then " if s.retried else "") + f.detail

    def _one_new(self, s):
        conn = None
        try:
            conn = _Conn(self.port, self.timeout)
            status, _, body, _ = conn.request(self.path, keep=False)
            self._finish(s, status, body)
        except (OSError, RequestFailed) as e:
            self._fail(s, _classify(e))
        finally:
            if conn is not None:
                conn.close()

    def _one_keep(self, s, conn):
        """One request on the client's persistent connection; returns the
        connection to use next (None: open a new one)."""
        for attempt in (1, 2):
            reused = conn is not None and conn.used > 0
            try:
                if conn is None:
                    conn = _Conn(self.port, self.timeout)
                status, _, body, closes = conn.request(self.path, keep=True)
            except (OSError, RequestFailed) as e:
                f = _classify(e)
                if conn is not None:
                    conn.close()
                conn = None
                # The server closed the idle connection as the request
                # went out: nothing of an answer came, so it never began
                # on it. Retry once on a new connection, as clients do.
                if attempt == 1 and reused and f.got == 0 and \
                        f.kind in ("reset", "short"):
                    s.retried = True
                    s.detail = "retried after %s: %s" % (f.kind, f.detail)
                    continue
                self._fail(s, f)
                return None
            self._finish(s, status, body)
            if closes:
                conn.close()
                conn = None
            return conn
        return conn

    def _record(self, s):
        with self.lock:
            self.samples.append(s)
            if s.retried:
                self.retries += 1
                if s.ok:
                    self.retries_ok += 1
            if s.ok:
                self.ok["new" if s.client.startswith("new") else "keep"] += 1
            else:
                self.failures[s.kind] += 1

    # -- observing
    def failed_samples(self):
        with self.lock:
            return [s for s in self.samples if not s.ok]

    def wait_progress(self, n=10, timeout=20.0):
        """Wait until every kind of client had n more successes (from
        now): the load is flowing."""
        with self.lock:
            base = dict(self.ok)
        kinds = {k for k, _ in self.plan}

        def moved():
            with self.lock:
                return all(self.ok[k] - base[k] >= n for k in kinds)
        if not poll_for(moved, timeout):
            fail("timed out after %.1fs waiting for %d more answered "
                 "requests of each client kind: %s" % (timeout, n,
                                                       self.summary()))

    def latencies(self):
        with self.lock:
            return sorted(s.latency for s in self.samples if s.ok)

    @staticmethod
    def _pct(lat, p):
        return lat[min(len(lat) - 1, int(len(lat) * p / 100.0))] if lat else 0

    def summary(self):
        with self.lock:
            ok = dict(self.ok)
            fails = {k: v for k, v in self.failures.items() if v}
            retries, retries_ok = self.retries, self.retries_ok
        lat = self.latencies()
        p50, p99 = self._pct(lat, 50) * 1000, self._pct(lat, 99) * 1000
        mx = lat[-1] * 1000 if lat else 0
        return ("%d ok (%d new-connection, %d keep-alive), failures %s, "
                "%d keep-alive retries (%d ok), latency p50 %.0fms p99 "
                "%.0fms max %.0fms" % (sum(ok.values()), ok["new"], ok["keep"],
                                      fails or "none", retries, retries_ok,
                                      p50, p99, mx))

    def check_clean(self, min_ok=1):
        """Fail the test if any request failed, or fewer than min_ok of each
        client kind succeeded."""
        bad = self.failed_samples()
        if bad:
            fail("%d failed request(s): %s; first: %s" % (
                len(bad), self.summary(), "; ".join(repr(s) for s in bad[:6])))
        kinds = {k for k, _ in self.plan}
        with self.lock:
            few = {k: self.ok[k] for k in kinds if self.ok[k] < min_ok}
        check(not few, "too few answered requests %s (want >= %d of each "
              "kind): %s" % (few, min_ok, self.summary()))


# --------------------------------------------------------------------------
# Helpers shared by the reload, upgrade and readiness tests

def env_of(pid):
    """The environment pid was started with, as a dict ({} if gone)."""
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return {}
    out = {}
    for item in data.split(b"\0"):
        k, sep, v = item.partition(b"=")
        if sep:
            out[k.decode("utf-8", "replace")] = v.decode("utf-8", "replace")
    return out


def workers_by_gen(f):
    """{generation: sorted worker pids} of the master's live children, read
    from each one's FUGUE_GENERATION (children without one, such as an
    upgrade's "fugue -t" check, are left out). They are remembered for
    cleanup."""
    out = {}
    for pid in f.children():
        g = env_of(pid).get("FUGUE_GENERATION")
        if g is not None and g.isdigit():
            out.setdefault(int(g), []).append(pid)
    return {g: sorted(p) for g, p in out.items()}


def wait_generation(f, gen, count, timeout=20.0):
    """Wait until the master's live workers are exactly count workers, all
    of generation gen (the older ones drained and gone); returns their
    pids."""
    box = {}

    def only():
        box["w"] = workers_by_gen(f)
        return set(box["w"]) == ({gen} if count else set()) and \
            len(box["w"].get(gen, [])) == count
    if not poll_for(only, timeout):
        fail("timed out after %.1fs waiting for exactly %d workers, all of "
             "generation %d, under fugue (pid %d); last seen: %s"
             % (timeout, count, gen, f.pid, box.get("w")))
    return box["w"].get(gen, [])


def wait_workers(f, want, timeout=10.0):
    """Wait until workers_by_gen(f) == want (e.g. only the old generation's
    same pids, after a refused or rolled-back reload)."""
    box = {}

    def same():
        box["w"] = workers_by_gen(f)
        return box["w"] == want
    if not poll_for(same, timeout):
        fail("timed out after %.1fs waiting for the workers under fugue "
             "(pid %d) to be %s; last seen: %s"
             % (timeout, f.pid, want, box.get("w")))


def reload_done_re(f, gen, op="reload"):
    """The line that ends a successful reload/upgrade into gen."""
    return (r"fugue \(pid %d\) info: %s: generation %d ready "
            r"\(\d+ workers?\); "
            r"draining generation \d+" % (f.pid, op, gen))


def status_json(t, conf):
    """fugue -c conf status --json, parsed."""
    rc, out, err = t.run(["-c", conf, "status", "--json"], timeout=15)
    check(rc == 0, "status --json exited %d: %s %s" % (rc, out, err))
    try:
        return json.loads(out)
    except ValueError as e:
        fail("status --json is not JSON (%s): %r" % (e, out[:300]))


def exe_inode(pid):
    """(st_dev, st_ino) of the file pid runs (/proc/PID/exe)."""
    st = os.stat("/proc/%d/exe" % pid)
    return st.st_dev, st.st_ino


def file_inode(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


def install_binary(src, dest, extra=b"", mode=0o755):
    """Put a copy of src at dest as a new inode (written beside it, then
    renamed over it, as a deploy does); extra bytes are appended so that the
    file differs from src. Returns (st_dev, st_ino) of the new file."""
    tmp = dest + ".tmp-%d" % os.getpid()
    shutil.copyfile(src, tmp)
    if extra:
        with open(tmp, "ab") as f:
            f.write(extra)
    os.chmod(tmp, mode)
    os.rename(tmp, dest)
    return file_inode(dest)


def install_file(dest, text, mode):
    """Replace dest by a new file with text (as a new inode)."""
    tmp = dest + ".tmp-%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.rename(tmp, dest)
    return file_inode(dest)


def start_binary(t, binary, args, **kw):
    """t.start(args), but running the fugue binary at path binary (a copy,
    or a symlink to one) instead of t.fugue; the process is the test's like
    any other (cleanup, log checks)."""
    harness.require_binaries()
    saved = t.fugue
    t.fugue = binary
    try:
        return t.start(args, **kw)
    finally:
        t.fugue = saved


def listen_inodes(port):
    """Inodes of the TCP sockets listening on 127.0.0.1:port (from
    /proc/net/tcp; several only if something is wrong)."""
    want = "0100007F:%04X" % port
    out = []
    with open("/proc/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            f = line.split()
            if f[1] == want and f[3] == "0A":
                out.append(int(f[9]))
    return out


def socket_inodes(pid):
    """Inodes of the sockets pid has open."""
    out = set()
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        try:
            target = os.readlink(os.path.join(d, name))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]$", target)
        if m:
            out.add(int(m.group(1)))
    return out


def line_time(line):
    """The time (seconds since the epoch) a master log line was written."""
    m = harness.MASTER_LINE.match(line)
    if not m:
        fail("not a master log line: %r" % line)
    ts = m.group(1)
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + \
        int(ts[20:23]) / 1000.0


def log_time(f, pattern):
    """The time of the first master line of f's log matching pattern."""
    rx = re.compile(pattern)
    for line in f.master_lines():
        if rx.search(line):
            return line_time(line)
    fail("no master line matching %r in the log" % pattern)


def wait_reaped(f, pids, timeout=10.0):
    """Wait until f's log tells how each worker pid ended ("worker N (pid
    P) exited ..." or "killed by signal ..."): it was reaped, and its last
    output and its fds are closed."""
    for p in pids:
        f.wait_log(r"fugue \(pid %d\) \w+: worker \d+ \(pid %d\) "
                   r"(?:exited|killed|ended)" % (f.pid, p), timeout)
