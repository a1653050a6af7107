"""Log capture: worker output through the master, whole lines only,
log_file / master_log_file, log_raw, USR1 reopen, what cannot be a log
file."""

import os
import re
import signal
import socket

from harness import (MASTER_LINE, WORKER_LINE, check, collect_ids, inherit,
                     timeout, try_get, wait_until)
from support import ctl, read_lines


def test_worker_output_captured_whole_lines(t):
    # Four workers print 2000 lines each at once into one log_file: every
    # line in the file is whole and prefixed.
    logf = t.path("app.log")
    n = 2000
    conf = t.basic_config(count=4, mode="print --lines %d" % n, ready="100ms",
                          master={"log_file": logf})
    f = t.start(conf, logs=[logf])

    def enough():
        per_pid = {}
        for line in read_lines(logf):
            m = WORKER_LINE.match(line)
            if m:
                per_pid[m.group(3)] = per_pid.get(m.group(3), 0) + 1
        full = [p for p, c in per_pid.items() if c >= n]
        return len(full) >= 4
    wait_until(enough, 20, interval=0.1,
               what="4 workers x %d lines in %s" % (n, logf))
    bad = [l for l in read_lines(logf)
           if not (MASTER_LINE.match(l) or WORKER_LINE.match(l))]
    check(not bad, "%d torn or unprefixed lines in the log, e.g. %r"
          % (len(bad), bad[:3]))
    # Each worker line is one whole "w<id> <i> xxx..." of 80 characters
    # from the worker of that id.
    torn = []
    for l in read_lines(logf):
        m = WORKER_LINE.match(l)
        if m and not (re.match(r"^w%s \d+ x+$" % m.group(2), m.group(4))
                      and len(m.group(4)) == 80):
            torn.append(l)
    check(not torn, "%d worker lines mixed or cut, e.g. %r" % (len(torn),
                                                              torn[:3]))
    ids = {int(WORKER_LINE.match(l).group(2)) for l in read_lines(logf)
           if WORKER_LINE.match(l)}
    check(ids <= {0, 1, 2, 3}, "worker ids in the log: %s" % sorted(ids))
    # Nothing of it went to stderr.
    with open(f.log_path) as fh:
        err = fh.read()
    check(not [l for l in err.splitlines() if WORKER_LINE.match(l)],
          "worker lines also went to stderr")


def test_worker_output_on_stderr_by_default(t):
    conf = t.basic_config(count=1, mode="print --lines 5", ready="100ms")
    f = t.start(conf)
    f.wait_log(r"^\S+Z worker 0 \(pid \d+\): ", 10, count=5)


def test_master_log_file_separate(t):
    logf = t.path("app.log")
    mlog = t.path("fugue-master.log")
    conf = t.basic_config(count=1, mode="print --lines 10", ready="100ms",
                          master={"log_file": logf, "master_log_file": mlog})
    f = t.start(conf, logs=[logf, mlog])
    f.wait_ready(1, 10)
    wait_until(lambda: len([l for l in read_lines(logf) if WORKER_LINE.match(l)])
               >= 10, 10, what="worker lines in log_file")
    check([l for l in read_lines(mlog) if "ready: 1 worker" in l],
          "master_log_file lacks the ready line")
    check(not [l for l in read_lines(logf) if MASTER_LINE.match(l)],
          "master lines in log_file although master_log_file is set: %s"
          % [l for l in read_lines(logf) if MASTER_LINE.match(l)][:3])
    check(not [l for l in read_lines(mlog) if WORKER_LINE.match(l)],
          "worker lines in master_log_file")


def test_log_raw(t):
    logf = t.path("app.log")
    conf = t.basic_config(count=1, mode="print --lines 10", ready="100ms",
                          master={"log_file": logf},
                          worker={"log_raw": "yes"})
    f = t.start(conf, logs=[logf])
    f.wait_ready(1, 10)
    wait_until(lambda: len([l for l in read_lines(logf)
                            if not MASTER_LINE.match(l)]) >= 10, 10,
               what="10 raw worker lines")
    pref = [l for l in read_lines(logf) if WORKER_LINE.match(l)]
    check(not pref, "log_raw = yes but worker lines are prefixed: %s" % pref[:2])


def test_usr1_reopens_log_file(t):
    logf = t.path("app.log")
    conf = t.basic_config(count=2, master={"log_file": logf})
    f = t.start(conf, logs=[logf, logf + ".1"])
    f.wait_ready(2, 10)
    os.rename(logf, logf + ".1")
    f.signal(signal.SIGUSR1)
    wait_until(lambda: os.path.exists(logf), 5,
               what="USR1 to create a new %s" % logf)
    # A master line after the reopen lands in the new file.
    seen = collect_ids(t.port, [0, 1], test=t)
    os.kill(seen[1][0], signal.SIGKILL)
    wait_until(lambda: [l for l in read_lines(logf)
                        if MASTER_LINE.match(l) and "worker 1" in l], 10,
               what="the exit of worker 1 logged in the new file")
    check(not [l for l in read_lines(logf + ".1") if "worker 1" in l and "KILL" in l],
          "the exit was logged in the rotated file")
    check(f.alive(), "fugue died on USR1")
    # The workers were not disturbed.
    check(try_get(t.port) is not None, "no answer after USR1")


def test_log_level_error_hides_info(t):
    conf = t.basic_config(count=1, master={"log_level": "error"})
    f = t.start(conf)
    wait_until(lambda: try_get(t.port) is not None, 10, what="an answer")
    check(not f.master_lines("info"), "info lines with log_level = error: %s"
          % f.master_lines("info")[:2])


def test_partial_last_line_flushed_at_exit(t):
    conf = t.basic_config(count=1, mode="print --lines 2 --partial",
                          ready="100ms")
    f = t.start_ready(conf, 1)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    lines = [l for l in f.log_lines() if "w0 partial" in l]
    check(len(lines) == 1, "the partial last line appears %d times: %s"
          % (len(lines), lines))
    m = WORKER_LINE.match(lines[0])
    check(m and m.group(4) == "w0 partial",
          "the partial line is not a whole prefixed line: %r" % lines[0])


def test_overlong_line_split(t):
    # A line over 16 KiB is written in pieces (with a continuation mark),
    # each still a prefixed line; nothing is lost.
    conf = t.basic_config(count=1, mode="print --lines 1 --len 40000",
                          ready="100ms")
    f = t.start_ready(conf, 1)
    wait_until(lambda: sum(l.count("x") for l in f.log_lines()
                           if WORKER_LINE.match(l)) >= 39990, 10,
               what="the 40000-character line in the log")
    pieces = [l for l in f.log_lines() if "x" * 100 in l]
    check(len(pieces) >= 3, "a 40000-character line came out as %d lines"
          % len(pieces))
    for l in pieces:
        check(WORKER_LINE.match(l), "piece without the prefix: %r..." % l[:80])
        check(len(l) <= 16384 + 200, "a %d-character log line" % len(l))


def test_no_fd_leak_with_files(t):
    # pid file (with its lock), log files, UNIX socket: none of fugue's own
    # fds reaches a worker.
    logf = t.path("app.log")
    mlog = t.path("master.log")
    unix = t.path("leak.sock")
    conf = t.basic_config(count=1, mode="serve",
                          master={"pid_file": t.path("fugue.pid"),
                                  "log_file": logf, "master_log_file": mlog},
                          listen=[("address", "unix:" + unix)])
    f = t.start(conf, logs=[logf, mlog])
    f.wait_ready(1, 10)
    rep = inherit(t.port)
    fds = sorted(int(e["fd"]) for e in rep["fds"])
    check(fds == [0, 1, 2, 3, 4], "worker fds %s, want [0..4]: %s"
          % (fds, rep["fds"]))


@timeout(40)
def test_fifo_log_file_refused_at_start(t):
    # A FIFO as log_file or master_log_file would block open() until a
    # reader comes: refused at once, by one line naming the file, the key
    # and where it is set, exit 73; -t finds the same.
    for key in ("log_file", "master_log_file"):
        fifo = t.path(key + ".fifo")
        os.mkfifo(fifo)
        conf = t.basic_config(count=1, master={key: fifo}, name=key + ".conf")
        want = r"^fugue: %s:2: \[master\] %s: %s: a FIFO \(named pipe\); " \
            r"a log file must be a regular file or a character device$" % (
                re.escape(conf), key, re.escape(fifo))
        for args, code in ((["-c", conf], 73), (["-c", conf, "-t"], 78)):
            rc, out, err = t.run(args, timeout=10)
            check(rc == code, "fugue %s with %s a FIFO exited %d, want %d: "
                  "%s" % (" ".join(args[2:]), key, rc, code, err))
            check(re.search(want, err, re.M), "no line %r in %r" % (want, err))


@timeout(30)
def test_fifo_at_reopen_keeps_the_old_file(t):
    # USR1 after log_file was replaced by a FIFO: the master is not stuck
    # in open(); it says why in an error line, goes on writing to the file
    # it had, and answers.
    logf = t.path("app.log")
    sock = t.path("ctl.sock")
    conf = t.basic_config(count=1, master={"log_file": logf,
                                           "control_socket": sock})
    # (f.log() must never open the FIFO: it would wait for a writer.)
    f = t.start(conf, logs=[logf + ".1"])
    wait_until(lambda: [l for l in read_lines(logf) if "ready: 1 worker" in l],
               10, what="ready: 1 worker in %s" % logf)
    os.rename(logf, logf + ".1")
    os.mkfifo(logf)
    t.expect_error(r"reopen: log file .*: a FIFO")
    f.signal(signal.SIGUSR1)
    f.wait_log(r"error: reopen: log file %s: a FIFO \(named pipe\)"
               % re.escape(logf), 10)
    try:
        answer = ctl(sock, "status\n", timeout=5)
    except socket.timeout:
        answer = None
    check(answer and "fugue pid %d" % f.pid in answer,
          "no status from the master after the reopen: %r" % answer)
    f.signal(signal.SIGTTIN)
    wait_until(lambda: [l for l in read_lines(logf + ".1")
                        if "workers: 1 -> 2" in l], 10,
               what="the master's next line in the file it had")
