"""ready_hold: a reload's new workers must stay alive that long once all
are ready before the old generation is drained (a server that says
READY=1 before it has loaded its application would otherwise take the
service down after the drain); and a first generation that only
crash-loops fails fast, not at ready_timeout."""

import re
import shlex
import time

from harness import check, timeout
from loadgen import Load, workers_by_gen, wait_workers


def _conf(t, command=None, port=None, hold="2s", **kw):
    master = kw.pop("master", {})
    master.setdefault("control_socket", t.path("ctl.sock"))
    worker = dict(kw.pop("worker", {}))
    worker.setdefault("ready_timeout", "20s")
    worker.setdefault("ready_hold", hold)
    return t.basic_config(count=2, ready="fd", port=port, command=command,
                          master=master, worker=worker, **kw)


def _early_ready_then_crash(t, after="0.5"):
    # Like a server whose master says READY=1 before its workers import
    # the application, which then fails.
    script = t.write("early.sh", "#!/bin/sh\necho READY=1 >&\"$FUGUE_READY_FD\"\n"
                     "sleep %s\necho 'ImportError: no module named app' >&2\n"
                     "exit 3\n" % after)
    return "/bin/sh " + shlex.quote(script)


@timeout(60)
def test_exit_within_ready_hold_rolls_back(t):
    conf = _conf(t)
    f = t.start_ready(conf, 2, timeout=20)
    before = workers_by_gen(f)
    _conf(t, command=_early_ready_then_crash(t), port=t.port)
    t.expect_error(r"reload failed: .*within ready_hold")
    with Load(t.port, new_conn=2) as load:
        load.wait_progress(10)
        rc, out, err = t.run(["-c", conf, "reload"], timeout=40)
        load.wait_progress(10)
    load.check_clean(min_ok=20)
    check(rc == 69 and out.startswith("failed:") and
          re.search(r"exited with status 3 within ready_hold 2s of being "
                    r"ready", out) and "generation 1 keeps serving" in out,
          "reload: %d %r %r" % (rc, out, err))
    wait_workers(f, before, 10)
    check(re.search(r"reload: every worker of generation 2 is ready; "
                    r"holding 2s before draining generation 1", f.log()),
          "the hold is not logged")


@timeout(60)
def test_without_ready_hold_the_same_reload_commits(t):
    # What ready_hold guards against: with it off, the reload of the same
    # early-READY command is "ok", and the old generation is gone.
    conf = _conf(t, hold="0")
    f = t.start_ready(conf, 2, timeout=20)
    _conf(t, command=_early_ready_then_crash(t, after="2"), port=t.port,
          hold="0")
    t.expect_error(r".")
    rc, out, err = t.run(["-c", conf, "reload"], timeout=40)
    check(rc == 0 and out.startswith("ok: generation 2"),
          "reload with ready_hold = 0: %d %r %r" % (rc, out, err))


@timeout(60)
def test_reload_commits_after_ready_hold(t):
    conf = _conf(t, hold="1500ms")
    f = t.start_ready(conf, 2, timeout=20)
    _conf(t, port=t.port, hold="1500ms")
    t0 = time.monotonic()
    rc, out, err = t.run(["-c", conf, "reload"], timeout=40)
    took = time.monotonic() - t0
    check(rc == 0 and out.startswith("ok: generation 2"),
          "reload: %d %r %r" % (rc, out, err))
    check(took >= 1.45, "committed %.2fs after the reload, before "
          "ready_hold (1.5s) passed" % took)


@timeout(40)
def test_first_generation_that_only_crashes_fails_fast(t):
    # Every start fails at once (a bad flag, a missing database): fugue
    # exits 69 after 3 failed starts of every slot, not at ready_timeout
    # (60 s here), naming the status and the last line the worker wrote.
    script = t.write("bad.sh", "#!/bin/sh\necho starting\n"
                     "echo 'cannot connect to the database' >&2\nexit 3\n")
    conf = _conf(t, command="/bin/sh " + shlex.quote(script),
                 worker={"ready_timeout": "60s"})
    f = t.start(conf)
    t.expect_error(r"first generation not ready")
    rc = f.wait_exit(20)
    check(rc == 69, "fugue exited %s, want 69" % rc)
    took = f.exit_time - f.t0
    check(took < 15, "gave up after %.1fs" % took)
    check(re.search(r"error: first generation not ready: every worker "
                    r"failed to start 3 times in a row; the last: worker \d "
                    r"exited with status 3; its last line: \"cannot connect "
                    r"to the database\"", f.log()),
          "the reason is not logged as it should be")
