"""The metrics endpoint ([master] metrics, fugue(8) METRICS): GET /metrics
in the Prometheus text format (checked by promtool), /readyz before the
first generation is ready, while serving and during a stop, /livez; a slow
or stuck client never holds reloads or other scrapes; the counters after a
crash, a refused and a rolled-back reload and an upgrade (which the
endpoint's socket crosses); the last reload in status and status --json;
the endpoint is never a worker's."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from harness import (Skip, UnixHTTPConnection, check, free_port, inherit,
                     is_root, timeout, wait_until)
from loadgen import listen_inodes, status_json, wait_generation
from support import ctl

PROM_CONTENT = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def _conf(t, count=2, mode="serve", metrics=None, port=None, **kw):
    """basic_config plus a control socket and the metrics endpoint on a
    free port (t.mport) or at metrics."""
    if metrics is None:
        if not hasattr(t, "mport"):
            t.mport = free_port()
        metrics = "127.0.0.1:%d" % t.mport
    master = {"control_socket": t.path("ctl.sock"), "metrics": metrics}
    master.update(kw.pop("master", {}))
    return t.basic_config(count=count, mode=mode, port=port, master=master,
                          **kw)


def _get(target, path, method="GET", timeout=10.0):
    """(status, content type, body) of one request; target: a port on
    127.0.0.1 or "unix:/path"."""
    if isinstance(target, str):
        conn = UnixHTTPConnection(target[5:], timeout=timeout)
        try:
            conn.request(method, path)
            r = conn.getresponse()
            return r.status, r.getheader("Content-Type"), \
                r.read().decode("utf-8")
        finally:
            conn.close()
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (target, path),
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), \
                r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers.get("Content-Type"), \
                e.read().decode("utf-8")


def _unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n"
                  else m.group(1), v)


def _parse(text):
    """[(name, {label: value}, float)] of every sample."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        check(m, "not a sample line: %r" % line)
        labels = {k: _unescape(v) for k, v in LABEL.findall(m.group(2) or "")}
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def _scrape(target):
    status, ctype, body = _get(target, "/metrics")
    check(status == 200 and ctype == PROM_CONTENT,
          "/metrics: %d %s %r" % (status, ctype, body[:200]))
    return body, _parse(body)


def _value(samples, name, **labels):
    """The value of the one sample of name whose labels include labels;
    None if there is none."""
    want = {k: str(v) for k, v in labels.items()}
    hits = [v for n, lab, v in samples
            if n == name and all(lab.get(k) == x for k, x in want.items())]
    check(len(hits) <= 1, "%d samples of %s%s" % (len(hits), name, labels))
    return hits[0] if hits else None


def _labels(samples, name):
    return [lab for n, lab, _ in samples if n == name]


def _promtool():
    """promtool, from the Debian package prometheus (installed here if it
    can be: as root, with apt-get)."""
    p = shutil.which("promtool")
    if p:
        return p
    if not is_root() or not shutil.which("apt-get"):
        raise Skip("promtool is missing (Debian package prometheus) and "
                   "installing it needs root and apt-get; running as uid %d"
                   % os.geteuid())
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
           "prometheus"]
    out = ""
    for first in (None, ["apt-get", "update", "-qq"]):
        if first:
            subprocess.run(first, env=env, capture_output=True, timeout=300)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True,
                           timeout=600, stdin=subprocess.DEVNULL)
        out = (r.stdout + r.stderr).strip()
        p = shutil.which("promtool")
        if p:
            return p
    raise Skip("promtool: apt-get install prometheus did not provide it: %s"
               % out[-300:])


def _promtool_check(text):
    r = subprocess.run([_promtool(), "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and not (r.stdout + r.stderr).strip(),
          "promtool check metrics (exit %d): %s\n--- the text:\n%s"
          % (r.returncode, (r.stdout + r.stderr).strip(), text))


def _pids(samples):
    return sorted(int(lab["pid"]) for lab in
                  _labels(samples, "fugue_worker_uptime_seconds"))


def test_metrics_endpoints(t):
    conf = _conf(t, count=2)
    f = t.start_ready(conf, 2)
    f.wait_log(r"metrics on 127\.0\.0\.1:%d \(/metrics, /readyz, /livez\)"
               % t.mport)
    kids = f.wait_children(2)
    check(_get(t.mport, "/livez")[::2] == (200, "ok\n"), "/livez")
    check(_get(t.mport, "/readyz")[::2] == (200, "ok\n"), "/readyz")
    body, s = _scrape(t.mport)
    check(_value(s, "fugue_ready") == 1 and
          _value(s, "fugue_serving_generation") == 1 and
          _value(s, "fugue_workers_wanted") == 2 and
          _value(s, "fugue_workers", state="ready") == 2 and
          _value(s, "fugue_workers", state="starting") == 0, body)
    check(_pids(s) == kids, "per-worker pids %s, fugue's children %s"
          % (_pids(s), kids))
    for lab in _labels(s, "fugue_worker_uptime_seconds"):
        check(lab["generation"] == "1" and lab["slot"] in ("0", "1"),
              "labels %s" % lab)
        for name in ("fugue_worker_uptime_seconds",
                     "fugue_worker_restarts_total",
                     "fugue_worker_cpu_seconds_total",
                     "fugue_worker_memory_pss_bytes"):
            check(_value(s, name, pid=lab["pid"]) is not None,
                  "no %s for pid %s" % (name, lab["pid"]))
        check(_value(s, "fugue_worker_memory_pss_bytes", pid=lab["pid"]) > 0,
              "PSS of %s" % lab["pid"])
    check(_value(s, "fugue_master_cpu_seconds_total") is not None and
          _value(s, "fugue_master_memory_pss_bytes") > 0, "master figures")
    check(all(n.startswith("fugue_") for n, _, _ in s), "names: %s"
          % sorted({n for n, _, _ in s}))
    check(all(_value(s, "fugue_worker_exits_total", reason=r) == 0 for r in
              ("stopped", "killed", "ready_timeout", "watchdog",
               "exec_failed", "exited", "signaled")), "exits at start")
    check(_value(s, "fugue_last_reload_success") is None,
          "a last reload before any")
    # HEAD, other methods, other paths, a query string.
    check(_get(t.mport, "/readyz", "HEAD")[::2] == (200, ""), "HEAD")
    check(_get(t.mport, "/metrics", "POST")[0] == 405, "POST")
    check(_get(t.mport, "/")[0] == 404, "/")
    check(_get(t.mport, "/metrics?x=1")[0] == 200, "a query string")
    # Never a worker's: what a worker inherited names only its listener.
    rep = inherit(t.port)
    names = [e.get("sockname") for e in rep["fds"]]
    check("127.0.0.1:%d" % t.mport not in names and
          "127.0.0.1:%d" % t.port in names, "a worker's fds: %s" % names)


@timeout(600)   # the first run may install promtool
def test_promtool_accepts_the_text(t):
    # Serving, after a refused reload (its reason holds quotes) and a
    # rolled-back one.
    conf = _conf(t, count=2, ready="100ms")
    f = t.start_ready(conf, 2)
    _promtool_check(_scrape(t.mport)[0])
    good = open(conf).read()
    t.write("fugue.conf", good.replace("count = 2", "count = two"))
    t.expect_error(r"\[worker\] count: expected|reload refused|reload failed")
    check(t.run(["-c", conf, "reload"], timeout=30)[0] == 78, "refused")
    body, s = _scrape(t.mport)
    check('got \\"two\\"' in body, "the reason's quotes: %s"
          % _labels(s, "fugue_last_reload_info"))
    _promtool_check(body)
    _conf(t, count=2, mode="crash", port=t.port, ready="100ms")
    check(t.run(["-c", conf, "reload"], timeout=30)[0] == 69, "rolled back")
    _promtool_check(_scrape(t.mport)[0])
    f.signal(signal.SIGTERM)
    f.wait_exit(15)
    # Starting, a slot crash-looping: one waiting to restart has no pid.
    script = t.write("one-fails.sh", "#!/bin/sh\n[ \"$FUGUE_WORKER_ID\" = 1 ] "
                     "&& exit 3\nexec %s serve\n" % t.worker, 0o755)
    del t.mport
    conf = _conf(t, count=2, command=script, ready="100ms",
                 worker={"ready_timeout": "50s"})
    t.start(conf).wait_log(r"worker 1 \(pid \d+\) exited with status 3")

    def waiting():
        body, s = _scrape(t.mport)
        return body if _value(s, "fugue_workers", state="backoff") == 1 \
            else None
    body = wait_until(waiting, 10, what="slot 1 waiting to restart")
    check('fugue_worker_restarts_total{slot="1",pid="",generation="1"}' in
          body and _value(_parse(body), "fugue_ready") == 0, body)
    _promtool_check(body)


def test_metrics_on_a_unix_socket(t):
    path = t.path("metrics.sock")
    conf = _conf(t, count=1, metrics="unix:" + path)
    f = t.start_ready(conf, 1)
    check(_get("unix:" + path, "/livez")[::2] == (200, "ok\n"), "/livez")
    body, s = _scrape("unix:" + path)
    check(_value(s, "fugue_workers", state="ready") == 1, body)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(15) == 0, "exit status")
    check(not os.path.exists(path), "the socket file is left after a stop")


def test_readyz_before_the_first_generation_is_ready(t):
    # Each worker waits for a file before it serves and says READY=1.
    go = t.path("go")
    script = t.write("late.sh", "#!/bin/sh\nwhile [ ! -e %s ]; do sleep "
                     "0.05; done\nexec %s serve\n" % (go, t.worker), 0o755)
    conf = _conf(t, count=2, command=script, ready="notify",
                 worker={"ready_timeout": "50s"})
    f = t.start(conf)
    f.wait_log(r"metrics on ")
    status, _, body = _get(t.mport, "/readyz")
    check(status == 503 and body == "not ready: starting: 0 of 2 workers of "
          "generation 1 ready\n", "/readyz while starting: %d %r"
          % (status, body))
    check(_get(t.mport, "/livez")[0] == 200, "/livez while starting")
    _, s = _scrape(t.mport)
    check(_value(s, "fugue_ready") == 0 and
          _value(s, "fugue_workers", state="starting") == 2,
          "starting: %s" % s)
    with open(go, "w"):
        pass
    f.wait_ready(2, 20)
    check(_get(t.mport, "/readyz")[::2] == (200, "ok\n"), "/readyz once ready")


def test_readyz_503_during_a_stop(t):
    # Workers that ignore TERM keep the stop going until the second signal.
    conf = _conf(t, count=2, mode="ignore-term", kill_timeout="30s")
    f = t.start_ready(conf, 2)
    f.signal(signal.SIGTERM)
    f.wait_log(r"stopping 2 workers \(graceful\)")
    status, _, body = _get(t.mport, "/readyz")
    check((status, body) == (503, "not ready: stopping\n"),
          "/readyz during a stop: %d %r" % (status, body))
    check(_get(t.mport, "/livez")[0] == 200, "/livez during a stop")
    _, s = _scrape(t.mport)
    check(_value(s, "fugue_ready") == 0 and
          _value(s, "fugue_workers", state="draining") == 2, "stopping: %s"
          % s)
    f.signal(signal.SIGINT)             # the second: KILL now
    check(f.wait_exit(15) == 0, "exit status")
    s = socket.socket()
    s.settimeout(5)
    try:
        check(s.connect_ex(("127.0.0.1", t.mport)) != 0,
              "the endpoint still listens after fugue exited")
    finally:
        s.close()


@timeout(90)
def test_slow_clients_hold_nothing(t):
    conf = _conf(t, count=2, ready="100ms",
                 worker={"ready_hold": "100ms"})
    f = t.start_ready(conf, 2)
    # Half a request, and more idle clients than the endpoint serves at
    # once: they hold nobody.
    half = socket.create_connection(("127.0.0.1", t.mport), timeout=30)
    half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    idle = [socket.create_connection(("127.0.0.1", t.mport), timeout=30)
            for _ in range(40)]
    try:
        for _ in range(5):
            _scrape(t.mport)
        rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
        check(rc == 0 and out.startswith("ok:"), "reload with slow metrics "
              "clients: %d %r %r" % (rc, out, err))
        wait_generation(f, 2, 2)
        _, s = _scrape(t.mport)
        check(_value(s, "fugue_serving_generation") == 2, "generation")
        # The half request is dropped (to make room, or at the endpoint's
        # bound of 10 s), never answered.
        half.settimeout(30)
        data = half.recv(4096)
        waited = time.monotonic() - t0
        check(data == b"" and waited < 25, "the half request got %r after "
              "%.1fs" % (data, waited))
    finally:
        half.close()
        for c in idle:
            c.close()


def test_counters_after_crashes(t):
    conf = _conf(t, count=2, ready="100ms")
    f = t.start_ready(conf, 2)
    _, s = _scrape(t.mport)
    victim = int(_labels(s, "fugue_worker_uptime_seconds")[0]["pid"])
    slot = _labels(s, "fugue_worker_uptime_seconds")[0]["slot"]
    os.kill(victim, signal.SIGKILL)
    f.wait_log(r"worker %s \(pid %d\) killed by signal KILL" % (slot, victim))

    def respawned():
        _, x = _scrape(t.mport)
        return x if _value(x, "fugue_workers", state="ready") == 2 and \
            victim not in _pids(x) else None
    s = wait_until(respawned, 10, what="slot %s back" % slot)
    check(_value(s, "fugue_worker_exits_total", reason="signaled") == 1,
          "signaled exits: %s" % s)
    new = [lab for lab in _labels(s, "fugue_worker_restarts_total")
           if lab["slot"] == slot][0]
    check(_value(s, "fugue_worker_restarts_total", **new) == 1,
          "restarts of slot %s" % slot)
    # One that exits by itself, then one fugue stops (scale).
    _get(t.port, "/exit?code=3")
    wait_until(lambda: _value(_scrape(t.mport)[1], "fugue_worker_exits_total",
                              reason="exited") == 1, 10, what="an exit")
    # Both serve again (a slot waiting to restart has no process to stop).
    wait_until(lambda: _value(_scrape(t.mport)[1], "fugue_workers",
                              state="ready") == 2, 10, what="2 ready")
    check(ctl(t.path("ctl.sock"), "scale 1\n").startswith("ok:"), "scale")
    wait_until(lambda: _value(_scrape(t.mport)[1], "fugue_worker_exits_total",
                              reason="stopped") == 1, 10, what="a stop")


def _reload_info(s):
    labs = _labels(s, "fugue_last_reload_info")
    check(len(labs) == 1 and _value(s, "fugue_last_reload_info") == 1,
          "fugue_last_reload_info: %s" % labs)
    return labs[0]


def test_refused_and_rolled_back_reloads(t):
    conf = _conf(t, count=2, ready="100ms", worker={"ready_hold": "100ms"})
    f = t.start_ready(conf, 2)
    t0 = time.time()
    # Refused: an invalid configuration.
    good = open(conf).read()
    t.write("fugue.conf", good.replace("count = 2", "count = two"))
    t.expect_error(r"\[worker\] count: expected|reload refused|reload failed")
    rc, out, _ = t.run(["-c", conf, "reload"], timeout=30)
    check(rc != 0 and out.startswith("refused:"), "refused: %d %r" % (rc, out))
    body, s = _scrape(t.mport)
    check(_value(s, "fugue_reloads_total", kind="reload",
                 result="refused") == 1 and
          _value(s, "fugue_last_reload_success") == 0, body)
    info = _reload_info(s)
    check(info["kind"] == "reload" and info["result"] == "refused" and
          info["from_generation"] == "1" and info["to_generation"] == "0" and
          "count: expected an integer" in info["reason"], "info %s" % info)
    j = status_json(t, conf)["last_reload"]
    check(j["result"] == "refused" and j["to_generation"] is None and
          j["from_generation"] == 1 and "count" in j["reason"] and
          t0 - 1 <= j["time"] <= time.time() + 1, "status json: %s" % j)
    # Rolled back: the new workers crash.
    _conf(t, count=2, mode="crash", port=t.port, ready="100ms")
    rc, out, _ = t.run(["-c", conf, "reload"], timeout=30)
    check(rc != 0 and out.startswith("failed:"), "rolled back: %d %r"
          % (rc, out))
    body, s = _scrape(t.mport)
    check(_value(s, "fugue_reloads_total", kind="reload",
                 result="rolled_back") == 1 and
          _value(s, "fugue_reloads_total", kind="reload", result="ok") == 0 and
          _value(s, "fugue_serving_generation") == 1, body)
    info = _reload_info(s)
    check(info["result"] == "rolled_back" and info["from_generation"] == "1"
          and info["to_generation"] == "2" and "exited with status 1" in
          info["reason"], "info %s" % info)
    rc, text, _ = t.run(["-c", conf, "status"])
    last = text.splitlines()[-1]
    check(re.match(r"^last reload: rolled back at \d{4}-\d\d-\d\dT\d\d:\d\d:"
                   r"\d\dZ \(\d+s ago\), generation 1 -> 2: worker \d+ \(pid "
                   r"\d+\) of generation 2 exited with status 1", last),
          "status: %r" % last)
    j = status_json(t, conf)["last_reload"]
    check(j["kind"] == "reload" and j["result"] == "rolled_back" and
          j["from_generation"] == 1 and j["to_generation"] == 2, "json %s" % j)
    # And one that works.
    t.write("fugue.conf", good)
    rc, out, _ = t.run(["-c", conf, "reload"], timeout=30)
    check(rc == 0, "reload: %d %r" % (rc, out))
    _, s = _scrape(t.mport)
    check(_value(s, "fugue_reloads_total", kind="reload", result="ok") == 1
          and _value(s, "fugue_last_reload_success") == 1 and
          _reload_info(s)["to_generation"] == "3", "ok: %s" % s)
    f.wait_log(r"reload: generation 3 ready")


@timeout(120)
def test_counters_and_endpoint_cross_an_upgrade(t):
    conf = _conf(t, count=2, ready="100ms", worker={"ready_hold": "100ms"})
    f = t.start_ready(conf, 2)
    inode = listen_inodes(t.mport)
    check(len(inode) == 1, "metrics listener inodes %s" % inode)
    _, s = _scrape(t.mport)
    victim = _pids(s)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: _value(_scrape(t.mport)[1], "fugue_worker_exits_total",
                              reason="signaled") == 1, 10, what="the exit")
    good = open(conf).read()
    _conf(t, count=2, mode="crash", port=t.port, ready="100ms")
    t.expect_error(r"reload failed")
    rc, out, _ = t.run(["-c", conf, "reload"], timeout=30)
    check(rc != 0, "the crashing reload: %d %r" % (rc, out))
    t.write("fugue.conf", good)
    # A client halfway through its request when the master re-executes
    # itself gets its answer from the new image.
    half = socket.create_connection(("127.0.0.1", t.mport), timeout=30)
    half.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")
    _scrape(t.mport)        # and the endpoint has taken it in
    # Scrapes keep coming while the master re-executes itself.
    seen = []
    box = t.background(lambda: [seen.append(_get(t.mport, "/readyz")[0])
                                for _ in range(200)])
    rc, out, err = t.run(["-c", conf, "upgrade"], timeout=60)
    check(rc == 0 and out.startswith("ok:"), "upgrade: %d %r %r"
          % (rc, out, err))
    box["thread"].join(30)
    check("error" not in box and seen and set(seen) == {200},
          "/readyz across the upgrade: %s %s" % (box.get("error"),
                                                 sorted(set(seen))))
    check(listen_inodes(t.mport) == inode, "the metrics socket changed: %s, "
          "was %s" % (listen_inodes(t.mport), inode))
    try:
        half.sendall(b"\r\n")
        got = b""
        while True:
            x = half.recv(4096)
            if not x:
                break
            got += x
    finally:
        half.close()
    check(got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\nok\n"),
          "the request begun before the upgrade: %r" % got)
    body, s = _scrape(t.mport)
    check(_value(s, "fugue_worker_exits_total", reason="signaled") == 1 and
          _value(s, "fugue_reloads_total", kind="reload",
                 result="rolled_back") == 1 and
          _value(s, "fugue_reloads_total", kind="upgrade", result="ok") == 1
          and _value(s, "fugue_worker_exits_total", reason="stopped") >= 2,
          "counters after the upgrade:\n%s" % body)
    info = _reload_info(s)
    check(info["kind"] == "upgrade" and info["result"] == "ok" and
          info["to_generation"] == "3", "info %s" % info)
    j = status_json(t, conf)["last_reload"]
    check(j["kind"] == "upgrade" and j["result"] == "ok", "json %s" % j)


def test_metrics_address_errors(t):
    port = free_port()
    conf = _conf(t, count=1, metrics="127.0.0.1:%d" % port)
    text = open(conf).read().replace("127.0.0.1:%d" % t.port,
                                     "127.0.0.1:%d" % port)
    t.write("fugue.conf", text)
    rc, out, err = t.run(["-c", conf, "-t"])
    check(rc == 78 and re.search(r"fugue\.conf:3: \[master\] metrics: "
                                 r"127\.0\.0\.1:%d is also a \[listen\] "
                                 r"address" % port, err),
          "metrics on a listener's address: %d %r" % (rc, err))
    # Taken by someone else: 75, naming it.
    busy = t.tcp_listener(free_port())
    conf = _conf(t, count=1, metrics="127.0.0.1:%d" % busy.getsockname()[1])
    t.expect_error(r"metrics: listen 127\.0\.0\.1:\d+: Address already in "
                   r"use")
    f = t.start(conf)
    check(f.wait_exit(10) == 75, "exit status %s" % f.rc)
    f.wait_log(r"metrics: listen 127\.0\.0\.1:%d: Address already in use"
               % busy.getsockname()[1])
