#!/usr/bin/env python3
"""Run fugue's compatibility matrix: real servers under the real fugue.

    python3 tests/compat/run.py [-k NAME[,NAME]] [-j N] [--allow-missing]
                                [--logs DIR]
    python3 tests/compat/run.py --table | --write-readme

Each row of servers.py (gunicorn, uvicorn, uWSGI, lighttpd, php-fpm, Go,
Node with express, Python's http.server) runs in a process of its own, at
most N at a time (default 2), and gets every check of servers.CHECKS (see
matrix.py). Prints a line per server as it ends, then the matrix and the
reload figures, and one summary line: "compat: N passed, N failed, N
missing". Exits 1 if a check failed, a pending limit no longer holds, the
README's table or docs/real-servers.md differ from servers.py, or (without
--allow-missing) a server is not installed: `make test-compat` installs
them.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(os.path.dirname(HERE), "integration"))
sys.dont_write_bytecode = True

import harness  # noqa: E402
import matrix  # noqa: E402
import servers  # noqa: E402
import table  # noqa: E402

ROW_TIMEOUT = 240       # seconds, one server's whole run
MARK = {"pass": "ok", "fail": "FAIL", "limit": "limit", "xpass": "XPASS",
        "n/a": "n/a", None: "-"}


def missing(r):
    """What row r needs and this machine lacks, or None."""
    env_path = matrix.PATH
    for p in r.programs:
        if shutil.which(p, path=env_path) is None:
            return "%s not found (Debian: %s)" % (p, " ".join(r.packages) or p)
    if r.name == "uvicorn":
        py = shutil.which("python3", path=env_path)
        if subprocess.run([py, "-c", "import uvicorn"],
                          capture_output=True).returncode != 0:
            return "%s cannot import uvicorn (Debian: python3-uvicorn)" % py
    for name in r.files:
        if matrix.source(r, name) is None:
            return "%s not built (make test-compat builds it)" % name
    return None


# --------------------------------------------------------------------------
# One row, in a process of its own (--one)

def on_alarm(signum, frame):
    raise harness.TestTimeout()


def keep_logs(t, name, logs):
    """Copy the row's fugue logs into logs/NAME/."""
    d = os.path.join(logs, name)
    os.makedirs(d, exist_ok=True)
    for f in t.fugues:
        for p in [f.log_path] + f.logs:
            if os.path.exists(p):
                shutil.copy(p, d)


def run_one(name, out, logs=None):
    r = servers.by_name(name)
    signal.signal(signal.SIGALRM, on_alarm)
    harness.reset_ignored_signals()
    os.umask(0o022)
    t = harness.Test("compat-" + name)
    res = matrix.Results(r, t)
    t0 = time.monotonic()
    error = None
    signal.setitimer(signal.ITIMER_REAL, ROW_TIMEOUT)
    try:
        matrix.run_row(r, t, res)
    except harness.TestTimeout:
        error = "timed out after %ds" % ROW_TIMEOUT
    except harness.TestFailure as e:
        error = str(e)
    except Exception as e:      # a bug in the test, or an unexpected answer
        error = "%s: %s\n%s" % (type(e).__name__, e,
                                traceback.format_exc(limit=-3))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    tail = []
    if error:
        for f in t.fugues:
            tail += ["%s: %s" % (os.path.basename(f.log_path), ln)
                     for ln in f.log_lines()[-12:]]
        for c in servers.CHECKS:
            if c not in res.res:
                res.set(c, "fail", "not run: " + error.splitlines()[0])
    if logs:
        keep_logs(t, name, logs)
    try:
        t.cleanup()
    except Exception as e:      # noqa: B902 (reported, then the next row)
        tail.append("cleanup: %s" % e)
    with open(out, "w") as f:
        json.dump({"name": name, "checks": res.res, "error": error,
                   "tail": tail, "seconds": round(time.monotonic() - t0, 1)},
                  f)
    return 0


# --------------------------------------------------------------------------
# The matrix

def start_row(r, tmp, logs):
    out = os.path.join(tmp, r.name + ".json")
    log = open(os.path.join(tmp, r.name + ".log"), "wb")
    extra = ["--logs", os.path.abspath(logs)] if logs else []
    p = subprocess.Popen([sys.executable, os.path.abspath(__file__),
                          "--one", r.name, "--out", out] + extra,
                         stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT,
                         preexec_fn=harness._die_with_runner)
    log.close()
    return p, out, time.monotonic()


def finish_row(r, p, out, tmp):
    try:
        with open(out) as f:
            return json.load(f)
    except (OSError, ValueError):
        with open(os.path.join(tmp, r.name + ".log"), "rb") as f:
            text = f.read().decode("utf-8", "replace")
        err = "the run of %s exited %s without results: %s" % (
            r.name, p.returncode, text[-500:])
        return {"name": r.name, "error": err, "tail": [], "seconds": 0,
                "checks": {c: {"status": "fail", "detail": err}
                           for c in servers.CHECKS}}


def report_row(res):
    bad = [(c, v) for c, v in res["checks"].items()
           if v["status"] in ("fail", "xpass")]
    word = "FAIL" if bad else "ok"
    print("%-4s %s (%.0fs)" % (word, res["name"], res["seconds"]), flush=True)
    for c, v in bad:
        print("     %s %s: %s" % (MARK[v["status"]], c, v["detail"]))
    for ln in res.get("tail") or []:
        print("     | " + ln)
    sys.stdout.flush()


def print_matrix(results):
    names = [r for r in servers.ROWS if r.name in results]
    w = max(len(c) for c in servers.CHECKS)
    print()
    print("%-*s %s" % (w, "", " ".join("%-9s" % r.name[:9] for r in names)))
    for c in servers.CHECKS:
        cells = []
        for r in names:
            v = results[r.name]["checks"].get(c, {})
            cells.append("%-9s" % MARK[v.get("status")])
        print("%-*s %s" % (w, c, " ".join(cells)))
    print()
    print("%-9s %-5s %8s %6s %7s %7s  %s" % (
        "server", "kind", "requests", "failed", "ready", "drained",
        "slow request"))
    for r in names:
        ch = results[r.name]["checks"]
        for kind in ("hup", "usr2"):
            v = ch.get(kind, {})
            s = ch.get("slow-" + kind, {})
            if "requests" not in v:
                print("%-9s %-5s %s" % (r.name, kind, v.get("detail", "-")[:90]))
                continue
            print("%-9s %-5s %8d %6d %6.1fs %6.1fs  %s %s" % (
                r.name, kind, v["requests"], v["failed"], v["ready_s"],
                v["drained_s"], MARK[s.get("status")],
                s.get("slow") or s.get("detail", "")[:60]))
        s = ch.get("slow-stop", {})
        print("%-9s %-5s %8s %6s %7s %7s  %s %s" % (
            r.name, "stop", "", "", "", "", MARK[s.get("status")],
            s.get("detail", "")[:60]))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description="fugue's compatibility matrix")
    ap.add_argument("-k", dest="names", default="",
                    help="only these servers (comma-separated substrings)")
    ap.add_argument("-j", dest="jobs", type=int, default=2,
                    help="servers run at once (default 2)")
    ap.add_argument("--allow-missing", action="store_true",
                    help="a server not installed is not a failure")
    ap.add_argument("--table", action="store_true",
                    help="print the README's table and exit")
    ap.add_argument("--write-readme", action="store_true",
                    help="put the table in README.md and exit")
    ap.add_argument("--logs", metavar="DIR",
                    help="keep each server's fugue logs in DIR/NAME/")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    opts = ap.parse_args()

    if opts.one:
        return run_one(opts.one, opts.out, opts.logs)
    if opts.table:
        print("\n".join(table.table()))
        return 0
    if opts.write_readme:
        table.write_readme()
        return 0

    t_start = time.monotonic()
    stale = [e for e in (table.check_readme(), table.check_recipes()) if e]
    for e in stale:
        print("FAIL " + e, flush=True)
    rows = [r for r in servers.ROWS if not opts.names or
            any(k in r.name for k in opts.names.split(","))]
    todo, results, absent = [], {}, {}
    for r in rows:
        why = missing(r)
        if why:
            absent[r.name] = why
            print("%s %s: %s" % ("skip" if opts.allow_missing else "FAIL",
                                 r.name, why), flush=True)
        else:
            todo.append(r)
    tmp = tempfile.mkdtemp(prefix="fugue-compat-")
    running = []
    try:
        while todo or running:
            while todo and len(running) < max(1, opts.jobs):
                r = todo.pop(0)
                running.append((r,) + start_row(r, tmp, opts.logs))
            for item in list(running):
                r, p, out, t0 = item
                if p.poll() is None and \
                        time.monotonic() - t0 < ROW_TIMEOUT + 60:
                    continue
                if p.poll() is None:        # its own alarm did not end it
                    p.kill()
                    p.wait()
                running.remove(item)
                results[r.name] = finish_row(r, p, out, tmp)
                report_row(results[r.name])
            time.sleep(0.2)
    finally:
        for r, p, out, t0 in running:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    if results:
        print_matrix(results)
    counts = {"pass": 0, "fail": 0}
    for res in results.values():
        bad = any(v["status"] in ("fail", "xpass")
                  for v in res["checks"].values())
        counts["fail" if bad else "pass"] += 1
    print("(%d servers in %.1fs)" % (len(results), time.monotonic() - t_start))
    print("compat: %d passed, %d failed, %d missing" % (
        counts["pass"], counts["fail"], len(absent)), flush=True)
    failed = counts["fail"] or stale or (absent and not opts.allow_missing)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
