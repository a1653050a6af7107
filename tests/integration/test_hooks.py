"""The reload hooks: [master] exec_before_reload, exec_after_reload,
exec_reload_failed and hook_timeout. A before-hook runs before the new
generation starts (the master serving on, what is asked for meanwhile
queued) and refuses the reload if it fails or times out; the after and
failed hooks follow the outcome. Each runs as the workers do, its output in
the log, FUGUE_OLD_GENERATION, FUGUE_NEW_GENERATION, FUGUE_RESULT and
FUGUE_REASON in its environment; its process group is killed at
hook_timeout and at a stop."""

import os
import pwd
import re
import signal

from harness import (Skip, check, needs_root, pid_alive, timeout, try_get,
                     wait_until)
from loadgen import (Load, status_json, wait_generation, wait_workers,
                     workers_by_gen)

# Records its environment and CWD= in DIR/NAME.N.env (N counts its runs),
# prints a line, then does what DIR/NAME.do says: "fail N" (exit N), "wait"
# (until DIR/go exists), "hang" (sleep with a child in its group, whose pid
# goes to DIR/NAME.child). DIR is rec/ in the test's directory, which any
# user may write.
HOOK = r'''#!/bin/sh
d=%(dir)s
n=1; while [ -e "$d/$FUGUE_HOOK.$n.env" ]; do n=$((n+1)); done
{ env; echo "CWD=$(pwd -P)"; } > "$d/$FUGUE_HOOK.$n.tmp"
mv "$d/$FUGUE_HOOK.$n.tmp" "$d/$FUGUE_HOOK.$n.env"
echo "$FUGUE_HOOK says hello, old $FUGUE_OLD_GENERATION new $FUGUE_NEW_GENERATION"
what=$(cat "$d/$FUGUE_HOOK.do" 2>/dev/null)
case "$what" in
fail*) echo "lb: pool not found" >&2; exit ${what#fail } ;;
wait) while [ ! -e "$d/go" ]; do sleep 0.05; done ;;
hang) sleep 600 & echo $! > "$d/$FUGUE_HOOK.child"; wait ;;
esac
exit 0
'''

NAMES = ("exec_before_reload", "exec_after_reload", "exec_reload_failed")


def _hook(t):
    rec = t.path("rec")
    if not os.path.isdir(rec):
        os.mkdir(rec)
        os.chmod(rec, 0o777)
    return t.write("hook.sh", HOOK % {"dir": rec}, 0o755)


def _conf(t, hooks=NAMES, master=None, worker=None, command=None,
          port=None):
    m = {"control_socket": t.path("ctl.sock")}
    hook = _hook(t)
    for name in hooks:
        m[name] = hook
    m.update(master or {})
    w = {"ready_hold": "0"}
    w.update(worker or {})
    return t.basic_config(count=2, port=port, master=m, worker=w,
                          command=command)


def _runs(t, name):
    """The environments of the hook's runs so far, in order."""
    out = []
    n = 1
    while os.path.exists(t.path("rec", "%s.%d.env" % (name, n))):
        env = {}
        with open(t.path("rec", "%s.%d.env" % (name, n))) as fh:
            for line in fh.read().splitlines():
                k, sep, v = line.partition("=")
                if sep:
                    env[k] = v
        out.append(env)
        n += 1
    return out


def _do(t, name, what):
    p = t.path("rec", name + ".do")
    if what is None:
        if os.path.exists(p):
            os.unlink(p)
    else:
        t.write(os.path.join("rec", name + ".do"), what)


def _index(lines, pattern):
    rx = re.compile(pattern)
    for i, line in enumerate(lines):
        if rx.search(line):
            return i
    return None


@timeout(60)
def test_hooks_around_a_reload(t):
    conf = _conf(t)
    f = t.start_ready(conf, 2)
    with Load(t.port, new_conn=2, keep_alive=2) as load:
        load.wait_progress(10)
        rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
        check(rc == 0 and out.startswith("ok: generation 2 serving"),
              "reload: %d %r %r" % (rc, out, err))
        # The answer came once exec_after_reload had ended: a rolling
        # deploy goes on to the next host only once this one is back.
        check(len(_runs(t, "exec_after_reload")) == 1,
              "the reload answered before exec_after_reload ran")
        f.wait_log(r"info: exec_after_reload \(pid \d+\) succeeded$", 1)
        load.wait_progress(10)
    load.check_clean(min_ok=10)
    (before,) = _runs(t, "exec_before_reload")
    (after,) = _runs(t, "exec_after_reload")
    check(not _runs(t, "exec_reload_failed"), "exec_reload_failed ran")
    for env, name, result in ((before, "exec_before_reload", ""),
                              (after, "exec_after_reload", "ok")):
        got = {k: env.get(k) for k in ("FUGUE_HOOK", "FUGUE_OLD_GENERATION",
                                       "FUGUE_NEW_GENERATION", "FUGUE_RESULT",
                                       "FUGUE_REASON", "FUGUE_MASTER_PID")}
        want = {"FUGUE_HOOK": name, "FUGUE_OLD_GENERATION": "1",
                "FUGUE_NEW_GENERATION": "2", "FUGUE_RESULT": result,
                "FUGUE_REASON": "", "FUGUE_MASTER_PID": str(f.pid)}
        check(got == want, "%s's environment: %s, want %s" % (name, got,
                                                              want))
        leaked = sorted(k for k in env if k.startswith("LISTEN_") or
                        k in ("NOTIFY_SOCKET", "FUGUE_WORKER_ID",
                              "FUGUE_GENERATION"))
        check(not leaked, "%s got the workers' own variables %s"
              % (name, leaked))
    # Its output is logged as a worker's is; before, then the new
    # generation, then after.
    lines = f.log_lines()
    i_before = _index(lines, r"Z hook exec_before_reload \(pid \d+\): "
                      r"exec_before_reload says hello, old 1 new 2$")
    i_start = _index(lines, r"info: reload: starting generation 2 ")
    i_ready = _index(lines, r"info: reload: generation 2 ready")
    i_after = _index(lines, r"Z hook exec_after_reload \(pid \d+\): "
                     r"exec_after_reload says hello, old 1 new 2$")
    check(None not in (i_before, i_start, i_ready, i_after) and
          i_before < i_start < i_ready < i_after,
          "hooks and generation out of order: %s"
          % [i_before, i_start, i_ready, i_after])
    f.wait_log(r"info: exec_after_reload \(pid \d+\) succeeded$", 5)


@timeout(60)
def test_failing_before_hook_refuses_the_reload(t):
    conf = _conf(t)
    f = t.start_ready(conf, 2)
    workers = workers_by_gen(f)
    _do(t, "exec_before_reload", "fail 3")
    t.expect_error(r"(reload|upgrade) refused: exec_before_reload exited "
                   r"with status 3")
    for verb in ("reload", "upgrade"):
        rc, out, err = t.run(["-c", conf, verb], timeout=30)
        check(rc == 78 and out == 'refused: exec_before_reload exited with '
              'status 3; its last line: "lb: pool not found"\n',
              "%s: %d %r %r" % (verb, rc, out, err))
        wait_workers(f, workers, 10)
    # exec_reload_failed after each (before the answer), told why.
    check(len(_runs(t, "exec_reload_failed")) == 2,
          "exec_reload_failed ran %d times" % len(_runs(t, "exec_reload_failed")))
    for env in _runs(t, "exec_reload_failed"):
        check(env.get("FUGUE_RESULT") == "refused" and
              env.get("FUGUE_REASON", "").startswith(
                  "exec_before_reload exited with status 3") and
              env.get("FUGUE_OLD_GENERATION") == "1" and
              env.get("FUGUE_NEW_GENERATION") == "2",
              "exec_reload_failed's environment: %s" % env)
    check(not _runs(t, "exec_after_reload"), "exec_after_reload ran")
    # Nothing changed: the next reload makes generation 2.
    _do(t, "exec_before_reload", None)
    rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
    check(rc == 0 and out.startswith("ok: generation 2 serving"),
          "reload: %d %r %r" % (rc, out, err))


@timeout(60)
def test_before_hook_timeout_kills_its_group_and_refuses(t):
    conf = _conf(t, master={"hook_timeout": "1s"})
    f = t.start_ready(conf, 2)
    workers = workers_by_gen(f)
    _do(t, "exec_before_reload", "hang")
    t.expect_error(r"reload refused: exec_before_reload did not end within "
                   r"hook_timeout 1s")
    rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
    check(rc == 78 and out.startswith("refused: exec_before_reload did not "
                                      "end within hook_timeout 1s"),
          "reload: %d %r %r" % (rc, out, err))
    child = int(open(t.path("rec", "exec_before_reload.child")).read())
    t.remember(child)
    wait_until(lambda: not pid_alive(child), 5,
               what="the hook's child %d to be killed" % child)
    wait_workers(f, workers, 10)
    check(f.alive(), "fugue exited")


@timeout(60)
def test_master_serves_and_queues_during_the_before_hook(t):
    conf = _conf(t)
    f = t.start_ready(conf, 2)
    _do(t, "exec_before_reload", "wait")
    box = t.background(t.run, ["-c", conf, "reload"], 30)
    wait_until(lambda: _runs(t, "exec_before_reload"), 10,
               what="exec_before_reload to start")
    with Load(t.port, new_conn=2, keep_alive=2) as load:
        load.wait_progress(10)
        check(status_json(t, conf)["reloading"],
              "status does not say reloading while the hook runs")
        f.signal(signal.SIGHUP)
        f.wait_log(r"info: reload: queued until the current one ends$", 5)
        f.signal(signal.SIGTTIN)
        f.wait_log(r"info: workers: 2 -> 3$", 5)
        load.wait_progress(10)
        _do(t, "exec_before_reload", None)
        t.write("rec/go", "")
        box["thread"].join(30)
        rc, out, err = box["result"]
        check(rc == 0 and out.startswith("ok: generation 2 serving 3 "
                                         "workers"),
              "reload: %d %r %r" % (rc, out, err))
        # The queued reload waits for exec_after_reload, then runs its
        # own hooks.
        wait_generation(f, 3, 3, 20)
        load.wait_progress(10)
    load.check_clean(min_ok=10)
    wait_until(lambda: len(_runs(t, "exec_after_reload")) == 2, 10,
               what="exec_after_reload to run twice")
    lines = f.log_lines()
    i_after = _index(lines, r"info: exec_after_reload \(pid \d+\) "
                     r"succeeded$")
    starts = [i for i, ln in enumerate(lines)
              if re.search(r"info: running exec_before_reload", ln)]
    check(i_after is not None and len(starts) == 2 and starts[1] > i_after,
          "the queued reload's hook overlapped the last one's")


@timeout(60)
def test_failing_after_hook_changes_no_outcome(t):
    conf = _conf(t)
    f = t.start_ready(conf, 2)
    _do(t, "exec_after_reload", "fail 5")
    rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
    check(rc == 0 and out == 'ok: generation 2 serving 2 workers; '
          'exec_after_reload exited with status 5; its last line: "lb: pool '
          'not found"\n', "reload: %d %r %r" % (rc, out, err))
    wait_generation(f, 2, 2)
    check(not _runs(t, "exec_reload_failed"), "exec_reload_failed ran")
    f.wait_log(r"warn: exec_after_reload \(pid \d+\) exited with status 5",
               1)


@timeout(60)
def test_failed_hook_after_a_rollback(t):
    conf = _conf(t)
    f = t.start_ready(conf, 2)
    workers = workers_by_gen(f)
    _conf(t, port=t.port, command="%s crash --code 4" % t.worker)
    t.expect_error(r"reload failed: ")
    rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
    check(rc == 69 and out.startswith("failed:"),
          "reload: %d %r %r" % (rc, out, err))
    (env,) = _runs(t, "exec_reload_failed")
    check(env.get("FUGUE_RESULT") == "failed" and
          "exited with status 4" in env.get("FUGUE_REASON", "") and
          env.get("FUGUE_OLD_GENERATION") == "1" and
          env.get("FUGUE_NEW_GENERATION") == "2",
          "exec_reload_failed's environment: %s" % env)
    check(len(_runs(t, "exec_before_reload")) == 1 and
          not _runs(t, "exec_after_reload"), "the other hooks")
    wait_workers(f, workers, 10)


@timeout(60)
def test_stop_kills_the_hook_and_drops_the_reload(t):
    conf = _conf(t)
    f = t.start_ready(conf, 2)
    _do(t, "exec_before_reload", "hang")
    box = t.background(t.run, ["-c", conf, "reload"], 30)
    wait_until(lambda: os.path.exists(t.path("rec", "exec_before_reload.child")),
               10, what="exec_before_reload to start its child")
    child = int(open(t.path("rec", "exec_before_reload.child")).read())
    t.remember(child)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    box["thread"].join(20)
    rc, out, err = box["result"]
    check(rc == 78 and out == "refused: fugue is stopping\n",
          "reload: %d %r %r" % (rc, out, err))
    wait_until(lambda: not pid_alive(child), 5,
               what="the hook's child %d to be killed" % child)
    check(not _runs(t, "exec_reload_failed"),
          "exec_reload_failed ran during the stop")


@needs_root("to run the hooks as nobody")
@timeout(60)
def test_hooks_run_as_the_workers(t):
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody")
    t.stage_for_other_users()
    wd = t.path("wd")
    os.mkdir(wd)
    conf = _conf(t, hooks=("exec_before_reload",),
                 worker={"user": "nobody", "working_dir": wd,
                         "env": "LB_POOL=web"})
    f = t.start_ready(conf, 2)
    rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
    check(rc == 0, "reload: %d %r %r" % (rc, out, err))
    (env,) = _runs(t, "exec_before_reload")
    st = os.stat(t.path("rec", "exec_before_reload.1.env"))
    check(st.st_uid == pw.pw_uid, "the hook ran as uid %d" % st.st_uid)
    check(env.get("CWD") == os.path.realpath(wd),
          "the hook ran in %s, want %s" % (env.get("CWD"), wd))
    check(env.get("USER") == "nobody" and env.get("HOME") == pw.pw_dir and
          env.get("LB_POOL") == "web",
          "USER %s HOME %s LB_POOL %s" % (env.get("USER"), env.get("HOME"),
                                          env.get("LB_POOL")))
    check(try_get(t.port) is not None, "not serving")


@timeout(30)
def test_missing_hook_is_a_configuration_error(t):
    conf = t.basic_config(count=1, master={
        "exec_after_reload": t.path("no-such-hook")})
    rc, out, err = t.run(["-c", conf, "-t"])
    check(rc == 78 and err.strip() == "fugue: %s:2: [master] "
          "exec_after_reload: %s: No such file or directory"
          % (conf, t.path("no-such-hook")), "-t: %d %r %r" % (rc, out, err))
    # Refused at a reload too, before anything starts.
    conf = _conf(t)
    f = t.start_ready(conf, 2)
    workers = workers_by_gen(f)
    _conf(t, port=t.port, master={"exec_reload_failed": t.path("gone")})
    t.expect_error(r"exec_reload_failed: .*gone: No such file")
    t.expect_error(r"reload refused: the configuration has 1 error")
    rc, out, err = t.run(["-c", conf, "reload"], timeout=30)
    check(rc == 78 and "exec_reload_failed: %s: No such file or directory"
          % t.path("gone") in out, "reload: %d %r %r" % (rc, out, err))
    check(not _runs(t, "exec_before_reload"), "exec_before_reload ran")
    wait_workers(f, workers, 10)
