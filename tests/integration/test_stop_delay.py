"""[worker] stop_delay: the lame-duck stop. On TERM or QUIT a running
fugue says at once that it is stopping (systemd's STOPPING=1 and STATUS=,
`fugue status`), goes on serving for stop_delay so that a load balancer
takes the host out, then drains as before; INT and a second stop signal
skip the wait.

(TODO for the metrics branch: /readyz turns 503 at the TERM; here the
same moment is observed through STATUS= and `fugue status`.)"""

import re
import signal

from harness import check, timeout, try_get, wait_until
from loadgen import Load, status_json, workers_by_gen
from support import NotifyListener, clean_env, notify_fields


def _conf(t, delay, **kw):
    master = kw.pop("master", {})
    master.setdefault("control_socket", t.path("ctl.sock"))
    worker = dict(kw.pop("worker", {}))
    worker.setdefault("stop_delay", delay)
    return t.basic_config(count=2, master=master, worker=worker, **kw)


def _start(t, conf):
    n = NotifyListener(t)
    f = t.start_ready(conf, 2, env=clean_env(t, NOTIFY_SOCKET=n.path))
    return f, n


def _stopping_status(n):
    """The STATUS= of the message that carried STOPPING=1, or None."""
    for _, _, text in n.snapshot():
        fields = notify_fields(text)
        if fields.get("STOPPING") == "1":
            return fields.get("STATUS", "")
    return None


@timeout(60)
def test_term_serves_for_stop_delay_then_drains(t):
    # A stop_delay no test waits out: what happens during it is observed,
    # and a second TERM ends it.
    conf = _conf(t, "5m")
    f, n = _start(t, conf)
    workers = sorted(p for ps in workers_by_gen(f).values() for p in ps)
    with Load(t.port, new_conn=2, keep_alive=2) as load:
        load.wait_progress(10)
        f.signal(signal.SIGTERM)
        status = wait_until(lambda: _stopping_status(n), 5,
                            what="STOPPING=1 to the notify socket")
        check(re.match(r"stopping: serving for stop_delay 5m, then draining "
                       r"2 workers$", status),
              "STATUS with STOPPING=1: %r" % status)
        j = status_json(t, conf)
        check(j["phase"] == "stopping" and j["stop_delay_left"] is not None
              and 0 < j["stop_delay_left"] <= 300,
              "status during stop_delay: %s" % j)
        rc, out, err = t.run(["-c", conf, "status"])
        check(rc == 0 and re.match(r"fugue pid \d+, stopping \(stop_delay: "
                                   r"serving \d+\.\ds more\)", out),
              "status: %d %r %r" % (rc, out, err))
        # The lame duck goes on serving: the same workers, new
        # connections and kept-alive ones alike.
        load.wait_progress(20)
    load.check_clean(min_ok=20)
    check(sorted(p for ps in workers_by_gen(f).values() for p in ps) ==
          workers, "the workers changed during stop_delay")
    check(not re.search(r"stopping \d+ workers?", f.log()),
          "drained before stop_delay ended")
    # A reload or a new count is refused meanwhile: fugue is going away.
    rc, out, err = t.run(["-c", conf, "reload"], timeout=15)
    check(rc == 78 and "stopping" in out, "reload: %d %r %r" % (rc, out, err))
    # The second TERM skips the rest of the wait.
    f.signal(signal.SIGTERM)
    f.wait_log(r"info: second stop signal: draining now$", 5)
    f.wait_log(r"info: stopping 2 workers \(graceful\)$", 5)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    msgs = [notify_fields(m[2]) for m in n.snapshot()]
    check(msgs[-1].get("STATUS") == "stopping: draining 2 workers",
          "last message to systemd: %r" % msgs[-1])


@timeout(60)
def test_stop_delay_ends_by_itself(t):
    # QUIT too; after stop_delay the workers drain and fugue exits 0.
    conf = _conf(t, "1500ms")
    f, n = _start(t, conf)
    f.signal(signal.SIGQUIT)
    f.wait_log(r"info: stopping: serving for stop_delay 1.5s before "
               r"draining 2 workers$", 5)
    check(try_get(t.port) is not None, "not serving during stop_delay")
    check(f.wait_exit(15) == 0, "fugue exited %s" % f.rc)
    lines = f.master_lines()
    duck = [i for i, ln in enumerate(lines) if "serving for stop_delay" in ln]
    drain = [i for i, ln in enumerate(lines)
             if ln.endswith("stopping 2 workers (graceful)")]
    check(duck and drain and duck[0] < drain[0],
          "the drain does not follow the wait: %s" % lines[-8:])
    kinds = [notify_fields(m[2]) for m in n.snapshot()]
    check(any(k.get("STATUS") == "stopping: draining 2 workers"
              for k in kinds), "no STATUS for the drain: %s" % kinds)


@timeout(60)
def test_a_worker_that_dies_during_stop_delay_is_replaced(t):
    conf = _conf(t, "5m")
    f, n = _start(t, conf)
    f.signal(signal.SIGTERM)
    f.wait_log(r"info: stopping: serving for stop_delay", 5)
    before = workers_by_gen(f)[1]
    rc = try_get(t.port, "/exit?code=3")
    check(rc is not None, "no answer from /exit")
    f.wait_log(r"info: worker \d \(pid \d+\) exited with status 3; "
               r"restart", 5)
    wait_until(lambda: len(workers_by_gen(f).get(1, [])) == 2 and
               workers_by_gen(f)[1] != before, 10,
               what="the slot to be started again")
    wait_until(lambda: status_json(t, conf)["workers_ready"] == 2, 10,
               what="2 ready workers during stop_delay")
    f.signal(signal.SIGINT)
    f.wait_log(r"info: stopping 2 workers \(quick\)$", 5)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)


@timeout(30)
def test_int_does_not_wait(t):
    conf = _conf(t, "5m")
    f, n = _start(t, conf)
    f.signal(signal.SIGINT)
    f.wait_log(r"info: stopping 2 workers \(quick\)$", 5)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    check("stop_delay" not in f.log(), "INT waited for stop_delay")
    check(_stopping_status(n) is not None, "no STOPPING=1")


@timeout(30)
def test_control_quit_waits_stop_quick_does_not(t):
    from support import ctl
    conf = _conf(t, "5m")
    f, n = _start(t, conf)
    out = ctl(t.path("ctl.sock"), "quit\n")
    check(out == "ok: stopping (graceful)\n", "quit answered %r" % out)
    f.wait_log(r"info: stopping: serving for stop_delay 5m", 5)
    check(try_get(t.port) is not None, "not serving during stop_delay")
    out = ctl(t.path("ctl.sock"), "stop\n")
    check(out == "ok: stopping (quick)\n", "stop answered %r" % out)
    f.wait_log(r"info: stopping 2 workers \(quick\)$", 5)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)


@timeout(30)
def test_stop_delay_zero_stops_as_before(t):
    conf = _conf(t, "0")
    f, n = _start(t, conf)
    f.signal(signal.SIGTERM)
    f.wait_log(r"info: stopping 2 workers \(graceful\)$", 5)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    check("stop_delay" not in f.log(), "stop_delay 0 waited")
