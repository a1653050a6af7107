#!/usr/bin/env python3
"""Run fugue's integration tests.

    python3 tests/integration/run.py [-k SUBSTRING] [-j JOBS] [-v]

Discovers tests/integration/test_*.py, runs every function named test_*
in each with a time bound (SIGALRM), prints one line per test and ends with
one summary line: "integration: N passed, N failed, N skipped". Exits 1 if
any test failed. With -j JOBS, that many files run at once, each in a
process of its own (the tests of one file in order); a file's lines are
printed together when it ends.
"""

import argparse
import glob
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True      # leave no __pycache__ in the tree

import harness  # noqa: E402

LOG_TAIL = 15


def discover(pattern, only=None):
    tests = []
    for path in sorted(glob.glob(os.path.join(HERE, only or "test_*.py"))):
        modname = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(modname, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        names = [n for n, v in vars(mod).items()
                 if n.startswith("test_") and callable(v)]
        # Keep the order of definition in the file.
        names.sort(key=lambda n: getattr(vars(mod)[n], "__code__").co_firstlineno)
        for n in names:
            full = "%s::%s" % (os.path.basename(path), n)
            if pattern and pattern not in full:
                continue
            tests.append((full, vars(mod)[n]))
    return tests


def on_alarm(signum, frame):
    raise harness.TestTimeout()


def run_one(full, fn, verbose):
    why = getattr(fn, "needs_root", None)
    if why and not harness.is_root():
        return "skip", "needs root (%s); running as uid %d" % (why, os.geteuid()), []
    t = harness.Test(full)
    limit = getattr(fn, "timeout", harness.DEFAULT_TIMEOUT)
    status, reason = "ok", ""
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        fn(t)
    except harness.TestTimeout:
        status, reason = "FAIL", "timed out after %.0fs" % limit
    except harness.Skip as e:
        status, reason = "skip", str(e)
    except harness.TestFailure as e:
        status, reason = "FAIL", str(e)
        if verbose:
            reason += "\n" + traceback.format_exc()
    except Exception as e:  # a bug in the test or an unexpected answer
        status, reason = "FAIL", "%s: %s\n%s" % (
            type(e).__name__, e, traceback.format_exc(limit=-3))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    tails = []
    try:
        # Errors in the log count only for a test that otherwise passed
        # (a failed test shows its log tail anyway).
        if status == "ok" and t.fugues and \
                all(f.poll() is not None for f in t.fugues):
            # Every fugue the test started has exited: nothing it ran may
            # outlive it (workers get the parent-death signal, stops kill
            # what remains).
            if not harness.poll_for(lambda: not t.leftover(), 3.0):
                status = "FAIL"
                reason = "processes left running after fugue exited: %s" % (
                    ", ".join("%d (%s)" % (p, harness.proc_cmdline(p))
                              for p in t.leftover()))
        if status == "ok":
            for f in t.fugues:
                bad = t.unexpected_lines(f)
                if bad:
                    status = "FAIL"
                    reason = "unexpected line(s) in the log of fugue (pid %d): %s" % (
                        f.pid, " | ".join(bad[:5]))
        if status == "FAIL":
            for f in t.fugues:
                lines = f.log_lines()
                tails.append(("fugue %s (pid %d, exit %s)" % (
                    " ".join(f.args), f.pid, f.poll()), lines[-LOG_TAIL:]))
    finally:
        t.cleanup()
    return status, reason, tails


def run_parallel(tests, jobs, opts):
    """Each file's tests in a run.py of its own, jobs at a time; the
    longest files first, so that the last one does not start alone."""
    files = {}
    for full, _ in tests:
        name = full.split("::")[0]
        files[name] = files.get(name, 0) + 1
    queue = sorted(files, key=lambda n: -files[n])
    running, counts = [], {"ok": 0, "FAIL": 0, "skip": 0}
    t_start = time.monotonic()
    summary = re.compile(r"^integration: (\d+) passed, (\d+) failed, "
                         r"(\d+) skipped$", re.M)
    while queue or running:
        while queue and len(running) < jobs:
            name = queue.pop(0)
            cmd = [sys.executable, os.path.abspath(__file__), "-k",
                   opts.pattern, "--file", name]
            if opts.verbose:
                cmd.append("-v")
            running.append((name, subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True)))
        done = None
        while done is None:
            for i, (name, proc) in enumerate(running):
                if proc.poll() is not None:
                    done = running.pop(i)
                    break
            else:
                time.sleep(0.05)
        name, proc = done
        out = proc.stdout.read()
        m = summary.search(out)
        body = summary.sub("", out).rstrip()
        print(body, flush=True)
        if m:
            for k, v in zip(("ok", "FAIL", "skip"), m.groups()):
                counts[k] += int(v)
        else:
            counts["FAIL"] += 1
            print("FAIL %s: its runner ended without a summary (exit %s)"
                  % (name, proc.returncode), flush=True)
    print("(%d tests in %.1fs, %d at a time)" % (len(tests),
          time.monotonic() - t_start, jobs))
    print("integration: %d passed, %d failed, %d skipped"
          % (counts["ok"], counts["FAIL"], counts["skip"]), flush=True)
    return 1 if counts["FAIL"] else 0


def main():
    ap = argparse.ArgumentParser(description="fugue integration tests")
    ap.add_argument("-k", dest="pattern", default="",
                    help="run only tests whose file::name contains this")
    ap.add_argument("-j", dest="jobs", type=int, default=1,
                    help="run this many test files at once")
    ap.add_argument("-v", dest="verbose", action="store_true",
                    help="print tracebacks of failures")
    ap.add_argument("--file", dest="only", help=argparse.SUPPRESS)
    opts = ap.parse_args()

    signal.signal(signal.SIGALRM, on_alarm)
    harness.reset_ignored_signals()
    os.umask(0o022)
    tests = discover(opts.pattern, opts.only)
    if opts.jobs > 1:
        return run_parallel(tests, opts.jobs, opts)
    counts = {"ok": 0, "FAIL": 0, "skip": 0}
    t_start = time.monotonic()
    for full, fn in tests:
        t0 = time.monotonic()
        status, reason, tails = run_one(full, fn, opts.verbose)
        counts[status] += 1
        dt = time.monotonic() - t0
        if status == "ok":
            print("ok   %s (%.1fs)" % (full, dt), flush=True)
        elif status == "skip":
            print("skip %s: %s" % (full, reason), flush=True)
        else:
            print("FAIL %s (%.1fs): %s" % (full, dt, reason.rstrip()), flush=True)
            for title, lines in tails:
                print("     --- log tail of %s" % title)
                for line in lines:
                    print("     | " + line)
            sys.stdout.flush()
    print("(%d tests in %.1fs)" % (len(tests), time.monotonic() - t_start))
    print("integration: %d passed, %d failed, %d skipped"
          % (counts["ok"], counts["FAIL"], counts["skip"]), flush=True)
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
