#!/usr/bin/env python3
"""Run fugue's integration tests.

    python3 tests/integration/run.py [-k SUBSTRING] [-v]

Discovers tests/integration/test_*.py, runs every function named test_*
in each with a time bound (SIGALRM), prints one line per test and ends with
one summary line: "integration: N passed, N failed, N skipped". Exits 1 if
any test failed.
"""

import argparse
import glob
import importlib.util
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True      # leave no __pycache__ in the tree

import harness  # noqa: E402

LOG_TAIL = 15


def discover(pattern):
    tests = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
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


def main():
    ap = argparse.ArgumentParser(description="fugue integration tests")
    ap.add_argument("-k", dest="pattern", default="",
                    help="run only tests whose file::name contains this")
    ap.add_argument("-v", dest="verbose", action="store_true",
                    help="print tracebacks of failures")
    opts = ap.parse_args()

    signal.signal(signal.SIGALRM, on_alarm)
    harness.reset_ignored_signals()
    os.umask(0o022)
    tests = discover(opts.pattern)
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
