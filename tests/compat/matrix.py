"""One row of the compatibility matrix, tested: the server of that row runs
under the real fugue with 4 workers, and each check of servers.CHECKS gets
a result. Used by run.py (one process per row).

    res = Results(row, t)         # t: a harness.Test
    run_row(row, t, res)          # res.res: {check: result}

A result is a dict: "status" is one of
    pass    the check passed
    fail    it failed (detail says how)
    limit   it failed as a pending limit of the row says it does
    xpass   it passed although a pending limit says it fails: the limit no
            longer holds, and the row must say so
    n/a     the check does not apply (a readiness delay has no protocol)
and "detail" says what was seen; the reload checks add their figures
(requests, failed, seconds).
"""

import os
import re
import shutil
import signal
import time

import harness
import loadgen
from harness import TestFailure, check, fail

import fcgi
import servers

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, "build")
COUNT = 4
SLOW_MS = 2000
# Debian's programs only: the matrix tests the packaged servers, whatever
# else (a pyenv, /usr/local) the caller's PATH holds.
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


# --------------------------------------------------------------------------
# The row's files and fugue's configuration

def words(t, addr):
    """The template words for a listener address (see servers.py)."""
    if addr.startswith("unix:"):
        path = addr[5:]
        return {"{listen}": path, "{bind}": path, "{port}": "80",
                "{dir}": t.dir}
    host, port = addr.rsplit(":", 1)
    return {"{listen}": addr, "{bind}": host, "{port}": port, "{dir}": t.dir}


def fill(text, w):
    for k, v in w.items():
        text = text.replace(k, v)
    return text


def source(r, name):
    """Where a file of the row comes from: the row's directory, else the
    build directory (what make test-compat builds or installs)."""
    for d in (os.path.join(HERE, r.app), BUILD):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return None


def stage(t, r, w):
    """Copy the row's files into the test's directory (.in files filled)."""
    for name in r.files:
        src = source(r, name)
        if src is None:
            fail("%s: %s is missing (make test-compat builds it)" % (r.name, name))
        dst = t.path(name[:-3] if name.endswith(".in") else name)
        if os.path.isdir(src):
            if not os.path.exists(dst):
                os.symlink(src, dst)
        elif name.endswith(".in"):
            with open(src) as f:
                text = fill(f.read(), w)
            with open(dst, "w") as f:
                f.write(text)
        else:
            shutil.copy2(src, dst)


def config(t, r, addr, ready, name="fugue.conf", ready_timeout="30s"):
    w = words(t, addr)
    stage(t, r, w)
    worker = [("command", r.command), ("working_dir", t.dir),
              ("count", COUNT), ("ready", ready),
              ("ready_timeout", ready_timeout),
              ("stop_signal", r.stop_signal), ("kill_timeout", "15s")]
    worker += [("env", fill(e, w)) for e in r.env]
    return t.config(name=name, master=[("control_socket", t.path("ctl.sock"))],
                    listen=[("address", addr)] + list(r.listen),
                    worker=worker)


def fugue_env(t):
    return t.env(PATH=PATH, NOTIFY_SOCKET=None, WATCHDOG_USEC=None,
                 WATCHDOG_PID=None, LISTEN_FDS=None, LISTEN_PID=None,
                 LISTEN_FDNAMES=None)


# --------------------------------------------------------------------------
# Requests, in the row's protocol

def get(t, r, target, path, timeout=5.0):
    """(status, body) of one request on a new connection; target: a port
    on 127.0.0.1 or "unix:PATH". Raises on failure."""
    if r.protocol == "fastcgi":
        script, _, query = path.partition("?")
        return fcgi.request(target, os.path.join(t.dir, script), query,
                            timeout)
    return harness.http_get(target, path, timeout)


class FastCGILoad(loadgen.Load):
    """loadgen's new-connection clients, speaking FastCGI."""

    def __init__(self, port, script, **kw):
        super().__init__(port, keep_alive=0, **kw)
        self.script = script

    def _one_new(self, s):
        try:
            status, body = fcgi.request(self.port, self.script,
                                        timeout=self.timeout)
            self._finish(s, status, body)
        except fcgi.FastCGIError as e:
            self._fail(s, loadgen.RequestFailed("short", str(e)))
        except OSError as e:
            self._fail(s, loadgen._classify(e))


def load(t, r, port):
    if r.protocol == "fastcgi":
        return FastCGILoad(port, os.path.join(t.dir, r.path), new_conn=4)
    return loadgen.Load(port, new_conn=4, keep_alive=0, path=r.path)


SLOW_DONE = re.compile(r"slow done pid \d+\s*$")
SLOW_STARTED = r"^\S+ worker \d+ \(pid \d+\): slow request started \(pid \d+\)$"


class Slow:
    """A slow request (SLOW_MS) in flight: started, then known to be
    inside the server (its "slow request started" line is in the log)."""

    def __init__(self, t, r, f, port):
        self.started = len(re.findall(SLOW_STARTED, f.log(), re.M))
        self.t0 = time.monotonic()
        self.t1 = None
        self.box = t.background(self._get, t, r, port)
        f.wait_log(SLOW_STARTED, 15, count=self.started + 1)

    def _get(self, t, r, port):
        try:
            return get(t, r, port, r.slow_path.format(ms=SLOW_MS),
                       SLOW_MS / 1000.0 + 20)
        finally:
            self.t1 = time.monotonic()

    def result(self):
        """(ok, text): answered in full, after the whole SLOW_MS?"""
        self.box["thread"].join(SLOW_MS / 1000.0 + 25)
        dt = (self.t1 or time.monotonic()) - self.t0
        if "error" in self.box:
            e = self.box["error"]
            return False, "failed after %.1fs: %s: %s" % (
                dt, type(e).__name__, e)
        if "result" not in self.box:
            return False, "no answer after %.1fs" % dt
        status, body = self.box["result"]
        if status != 200 or not SLOW_DONE.search(body):
            return False, "answered %d %r after %.1fs" % (status, body[:60], dt)
        if dt < SLOW_MS / 1000.0:
            return False, "answered after %.2fs, before its %.1fs were up" % (
                dt, SLOW_MS / 1000.0)
        return True, "200 after %.1fs" % dt


# --------------------------------------------------------------------------
# Waiting on fugue

def status(t, conf):
    return loadgen.status_json(t, conf)


def wait_only(t, conf, gen, timeout=40.0):
    """Wait until fugue runs exactly COUNT ready workers, all of
    generation gen (the old ones drained and reaped)."""
    box = {}

    def only():
        st = box["st"] = status(t, conf)
        ws = st["workers"]
        return len(ws) == COUNT and all(
            w["generation"] == gen and w["state"] == "ready" for w in ws)
    if not harness.poll_for(only, timeout, interval=0.1):
        fail("timed out after %.0fs waiting for %d ready workers of "
             "generation %d only; last status: %s"
             % (timeout, COUNT, gen, box.get("st")))


def check_all_answer(t, r, target):
    """GET answers 200 with the row's body, from every worker: asked until
    COUNT different pids answered (where the body names one)."""
    rx = re.compile(r.body)
    pids = set()
    deadline = time.monotonic() + 15
    n = 0
    while time.monotonic() < deadline:
        status_, body = get(t, r, target, r.path)
        n += 1
        check(status_ == 200 and rx.search(body),
              "GET %s answered %d %r" % (r.path, status_, body[:80]))
        m = re.search(r"pid (\d+)", body)
        if not m:
            return "200 %r" % body.strip()[:40]
        pids.add(int(m.group(1)))
        if len(pids) >= COUNT:
            return "200 from %d processes in %d requests" % (len(pids), n)
    fail("only %d of %d workers answered in %d requests" % (len(pids), COUNT, n))


def check_processes(t, r, conf):
    """Each worker is as many processes as the row says, once settled."""
    want = r.processes[0]
    box = {}

    def settled():
        ws = [w["pid"] for w in status(t, conf)["workers"]]
        box["n"] = {p: 1 + len(harness.descendants_of(p)) for p in ws}
        return len(ws) == COUNT and all(n == want for n in box["n"].values())
    if not harness.poll_for(settled, 10.0, interval=0.1):
        fail("processes per worker (pid: count) %s, want %d each"
             % (box.get("n"), want))
    return "%d process%s per worker" % (want, "es" if want > 1 else "")


# --------------------------------------------------------------------------
# The checks

class Results:
    def __init__(self, r, t):
        self.r = r
        self.t = t
        self.res = {}

    def evidence(self, lim, detail, since):
        """The line of the failure, or of what a fugue logged since (its
        log's length when the check began), that shows the limit lim at
        work, or None."""
        rx = re.compile(lim.seen)
        texts = [detail] + [f.log()[since.get(f, 0):] for f in self.t.fugues]
        for text in texts:
            for line in text.splitlines():
                if rx.search(line):
                    return line
        return None

    def mark(self):
        """Where each fugue's log is now (for run's since)."""
        return {f: len(f.log()) for f in self.t.fugues}

    def run(self, name, fn, *args, since=None):
        """Run check name: fn(*args) returns a detail string, or a (detail,
        figures) pair, or raises (TestFailure, or the error of a request).
        since: a mark() from where the check began, if before this call."""
        lim = servers.pending(self.r, name)
        figures = {}
        if since is None:
            since = self.mark()
        try:
            out = fn(*args)
            if isinstance(out, tuple):
                out, figures = out
            st = "xpass" if lim else "pass"
            detail = out or ""
            if lim:
                detail = "limit no longer holds (%s): %s" % (lim.fix, detail)
        except harness.TestTimeout:
            raise
        except Exception as e:      # noqa: B902 (a failed request too)
            st = "fail"
            detail = str(e) if isinstance(e, TestFailure) else \
                "%s: %s" % (type(e).__name__, e)
            figures = getattr(e, "figures", {})
            if lim:
                seen = self.evidence(lim, detail, since)
                if seen:
                    st = "limit"
                    detail = "until %s: %s; seen: %s" % (lim.fix, detail, seen)
                else:
                    detail = "failed, but not as its limit says (no %r): %s" \
                        % (lim.seen, detail)
        self.res[name] = dict(status=st, detail=detail, **figures)
        return st in ("pass", "limit")

    def set(self, name, st, detail):
        self.res[name] = dict(status=st, detail=detail)


def killed_since(f, since):
    """fugue's line about the first worker it had to kill at kill_timeout
    since the mark, or None."""
    for line in f.log()[since.get(f, 0):].splitlines():
        if "after kill_timeout; sending KILL" in line:
            return line
    return None


def reload_phase(t, r, f, conf, port, gen, sig, res):
    """HUP or USR2 under load with a slow request in flight: the checks
    hup/usr2 (failed requests within the row's bound) and slow-hup/
    slow-usr2."""
    kind = "hup" if sig == signal.SIGHUP else "usr2"
    op = "reload" if kind == "hup" else "upgrade"
    figures = {}
    since = res.mark()
    with load(t, r, port) as ld:
        ld.wait_progress(10)
        slow = Slow(t, r, f, port)
        t0 = time.monotonic()
        f.signal(sig)
        f.wait_log(loadgen.reload_done_re(f, gen, op), 60)
        figures["ready_s"] = round(time.monotonic() - t0, 2)
        wait_only(t, conf, gen)
        figures["drained_s"] = round(time.monotonic() - t0, 2)
        ld.wait_progress(10)
    ok = sum(ld.ok.values())
    failed = ld.failed_samples()
    figures.update(requests=ok + len(failed), failed=len(failed))
    killed = killed_since(f, since)
    most = servers.bound(r, kind) * COUNT

    def reload_check():
        detail = "%d requests, %d failed; generation %d ready %.1fs and the " \
            "old one drained %.1fs after the signal" % (
                figures["requests"], figures["failed"], gen,
                figures["ready_s"], figures["drained_s"])
        # A bounded limit is a connection closed unanswered, nothing else.
        odd = [s for s in failed if s.kind not in ("reset", "short")]
        if len(failed) > most or (failed and odd):
            e = TestFailure("%s (at most %d allowed, each a connection "
                            "closed unanswered); first: %s" % (
                                detail, most, "; ".join(
                                    repr(s) for s in (odd or failed)[:3])))
            e.figures = figures
            raise e
        check(ok >= 20, "only %d requests answered: %s" % (ok, ld.summary()))
        check(not killed, "an old worker did not drain: %s" % killed)
        return detail, figures
    res.run(kind, reload_check, since=since)
    ok_slow, text = slow.result()

    def slow_check():
        check(ok_slow, "the slow request %s" % text)
        return text, {"slow": text}
    res.run("slow-" + kind, slow_check, since=since)


def stop_phase(t, r, f, port, res):
    """A graceful stop (TERM to fugue) with a slow request in flight:
    slow-stop, and stop (exit 0, no process left)."""
    for p in harness.descendants_of(f.pid):
        t.remember(p)
    since = res.mark()
    slow = Slow(t, r, f, port)
    t0 = time.monotonic()
    f.signal(signal.SIGTERM)
    rc = f.wait_exit(40)
    dt = time.monotonic() - t0
    ok_slow, text = slow.result()

    def slow_check():
        check(ok_slow, "the slow request %s" % text)
        return text
    res.run("slow-stop", slow_check, since=since)

    def stop_check():
        check(rc == 0, "fugue exited %s after TERM" % rc)
        killed = killed_since(f, since)
        check(not killed, "a worker did not drain: %s" % killed)
        left = harness.poll_for(lambda: not t.leftover(), 5.0)
        check(left, "processes left after fugue exited: %s" % ", ".join(
            "%d (%s)" % (p, harness.proc_cmdline(p)) for p in t.leftover()))
        return "exit 0 after %.1fs, no process left" % dt
    res.run("stop", stop_check, since=since)


def logs_check(r, f):
    """Every line of fugue's log is whole and prefixed: a master line or a
    worker line; the row's own marker line came whole from each first
    worker, and every "slow request started" line is whole."""
    lines = f.log_lines()
    bad = [ln for ln in lines if not (harness.MASTER_LINE.match(ln) or
                                      harness.WORKER_LINE.match(ln))]
    check(not bad, "%d of %d lines neither a master nor a worker line: %r"
          % (len(bad), len(lines), bad[:3]))
    marker = re.compile(r.log_marker + "$")
    pids = set()
    slow = 0
    for ln in lines:
        m = harness.WORKER_LINE.match(ln)
        if not m:
            continue
        if marker.match(m.group(4)):
            pids.add(int(m.group(3)))
        if m.group(4).startswith("slow request started"):
            slow += 1
            check(re.match(r"slow request started \(pid \d+\)$", m.group(4)),
                  "a torn line: %r" % ln)
    errors = f.master_lines("error") + [
        ln for ln in lines if any(rx.search(ln) for rx in harness.FATAL_PATTERNS)]
    check(not errors, "fugue logged errors: %r" % errors[:3])
    check(len(pids) >= COUNT, "the line %r came from %d worker(s), want >= %d"
          % (r.log_marker, len(pids), COUNT))
    return "%d lines, all prefixed; %d worker processes logged %r" % (
        len(lines), len(pids), r.log_marker)


def unix_run(t, r, res):
    """The unix check: a fugue of its own with a UNIX listener only."""
    sock = t.path("app.sock")
    conf = config(t, r, "unix:" + sock, servers.ready_mode(r),
                  name="unix.conf", ready_timeout="10s")

    def unix_check():
        f = t.start(conf, env=fugue_env(t), log="unix.log")
        try:
            f.wait_ready(COUNT, 20)
            return check_all_answer(t, r, "unix:" + sock)
        finally:
            if f.poll() is None:
                f.signal(signal.SIGINT)       # quick stop
                f.wait_exit(20)
    res.run("unix", unix_check)


def ready_probe(t, r):
    """A pending readiness protocol: does fugue start the row with it?"""
    conf = config(t, r, "127.0.0.1:%d" % harness.free_port(), r.ready,
                  name="ready.conf", ready_timeout="10s")
    f = t.start(conf, env=fugue_env(t), log="ready.log")
    try:
        f.wait_ready(COUNT, 20)
    finally:
        if f.poll() is None:
            f.signal(signal.SIGINT)
            f.wait_exit(20)
    return "ready = %s: %d workers ready" % (r.ready, COUNT)


def run_row(r, t, res):
    """Every check of row r, into res (a Results)."""
    port = harness.free_port()
    ready = servers.ready_mode(r)
    conf = config(t, r, "127.0.0.1:%d" % port, ready)
    f = t.start(conf, env=fugue_env(t))
    try:
        f.wait_ready(COUNT, 45)
    except TestFailure as e:
        for c in servers.CHECKS:
            res.set(c, "fail", "fugue did not start %d workers: %s; log: %s"
                    % (COUNT, e, " | ".join(f.log_lines()[-5:])))
        return

    res.run("tcp", check_all_answer, t, r, port)
    res.run("procs", check_processes, t, r, conf)
    if servers.pending(r, "ready"):
        res.run("ready", ready_probe, t, r)
    elif ready == "notify":
        res.set("ready", "pass", "ready = notify: READY=1 from each of the "
                "%d workers" % COUNT)
    else:
        res.set("ready", "n/a", "ready = %s (no readiness protocol)" % ready)
    reload_phase(t, r, f, conf, port, 2, signal.SIGHUP, res)
    reload_phase(t, r, f, conf, port, 3, signal.SIGUSR2, res)
    stop_phase(t, r, f, port, res)
    res.run("logs", logs_check, r, f)
    unix_run(t, r, res)
