"""Recycling: workers past max_lifetime (with jitter), above max_memory,
or that say STOPPING=1 are replaced, the successor first, at most
max_surge at a time, with no failed request."""

import re
import time

from harness import check, timeout, try_get, wait_until
from loadgen import Load, status_json


def _conf(t, count=4, **kw):
    master = kw.pop("master", {})
    master.setdefault("control_socket", t.path("ctl.sock"))
    worker = dict(kw.pop("worker", {}))
    worker.setdefault("ready_timeout", "10s")
    return t.basic_config(count=count, ready="notify", master=master,
                          worker=worker, **kw)


def _events(f):
    """(time, kind, slot) of replacements started and finished."""
    out = []
    for line in f.master_lines():
        m = re.search(r"worker (\d+) \(pid \d+\): .*; starting its "
                      r"replacement", line)
        if m:
            out.append((line[:24], "start", int(m.group(1))))
        m = re.search(r"worker (\d+) \(pid \d+\) replaced by pid", line)
        if m:
            out.append((line[:24], "done", int(m.group(1))))
    return out


@timeout(60)
def test_max_lifetime_with_jitter_one_at_a_time(t):
    conf = _conf(t, worker={"max_lifetime": "2s", "max_lifetime_jitter": "2s",
                            "max_surge": "1"})
    f = t.start_ready(conf, 4, timeout=20)
    with Load(t.port, new_conn=2, keep_alive=2) as load:
        f.wait_log(r"replaced by pid", 20, count=6)
        load.wait_progress(20)
    load.check_clean(min_ok=100)
    ev = _events(f)
    busy = most = 0
    for _, kind, _ in ev:
        busy += 1 if kind == "start" else -1
        most = max(most, busy)
    check(most == 1, "%d replacements at once (max_surge 1): %s"
          % (most, ev[:12]))
    check(len([e for e in ev if e[1] == "start"]) >= 6, "few recycles: %s"
          % ev)
    check("restarting" not in f.log(), "a recycle counted as a crash")


@timeout(60)
def test_stopping_1_is_replaced_before_it_goes(t):
    # A worker sends STOPPING=1 (gunicorn's max_requests, in any language):
    # its successor serves before it is asked to stop; no backoff.
    conf = _conf(t, count=1)
    f = t.start_ready(conf, 1, timeout=20)
    m = re.match(r"worker 0 pid (\d+)", try_get(t.port)[1])
    old = int(m.group(1)) if m else None
    r = try_get(t.port, "/stopping")
    check(r and r[0] == 200, "GET /stopping: %r" % (r,))
    f.wait_log(r"worker 0 \(pid \d+\): it asked to be replaced "
               r"\(STOPPING=1\); starting its replacement", 10)
    f.wait_log(r"worker 0 \(pid \d+\) replaced by pid (\d+) .*; draining it",
               10)
    f.wait_log(r"worker 0 \(pid \d+\) exited with status 0", 10)
    log = f.log()
    check("restarting" not in log, "the exit was taken for a crash: %s"
          % [l for l in f.log_lines() if "restarting" in l])
    new = int(re.search(r"replaced by pid (\d+)", log).group(1))

    def served_by_new():
        r = try_get(t.port)
        return r and ("pid %d " % new) in r[1]
    wait_until(served_by_new, 10, what="the successor to answer")
    st = status_json(t, conf)
    check(st["recycled"] == 1, "status recycled %s" % st.get("recycled"))
    check(old is None or old != new, "same pid")


@timeout(60)
def test_max_memory_recycles_a_worker_that_grows(t):
    conf = _conf(t, count=2, worker={"max_memory": "64M",
                                     "memory_interval": "200ms"})
    f = t.start_ready(conf, 2, timeout=20)
    r = try_get(t.port, "/grow?mb=100")
    check(r and r[0] == 200 and "grew by 100 MB\n" == r[1],
          "GET /grow: %r" % (r,))
    f.wait_log(r"worker \d \(pid \d+\): max_memory \(PSS \d+\.\d MiB, above "
               r"64M\); starting its replacement", 10)
    f.wait_log(r"replaced by pid \d+ \(max_memory", 10)
    box = []

    def measured():
        st = status_json(t, conf)
        box[:] = [w["memory"] for w in st["workers"]
                  if w["state"] == "ready"]
        return len(box) == 2 and None not in box
    wait_until(measured, 10, what="both workers measured")
    check(all(0 < x < 64 << 20 for x in box),
          "memory of the ready workers after the recycle: %s" % box)


@timeout(60)
def test_max_memory_measures_a_big_worker_and_leaves_it(t):
    # tests/worker serve --mem 40 holds 40 MB from the start (the bench's big
    # workers): measured as such, below max_memory, never recycled.
    conf = _conf(t, count=2, mode="serve --mem 40",
                 worker={"max_memory": "1G", "memory_interval": "100ms"})
    f = t.start_ready(conf, 2, timeout=20)
    box = []

    def measured():
        st = status_json(t, conf)
        box[:] = [w["memory"] for w in st["workers"]
                  if w["state"] == "ready"]
        return len(box) == 2 and None not in box
    wait_until(measured, 10, what="both workers measured")
    check(all(40 << 20 <= x < 64 << 20 for x in box),
          "memory of workers started with --mem 40: %s" % box)
    check("replacement" not in f.log(), "a worker below max_memory was "
          "recycled: %s" % [l for l in f.log_lines() if "replacement" in l])
