"""Log capture under load and across rotations (fugue(8), LOGGING):
whole lines only, nothing lost or repeated, per worker in order; mv + reopen
and a real logrotate run while workers print; a log file that cannot be
written; a disk that fills up; the continuation mark; log_raw; output of
workers that drain through an upgrade; an upgrade while fugue's stderr is not
read (the backlog crosses the exec: every line whole, and there or counted)."""

import errno
import glob
import gzip
import json
import os
import pty
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import tty

from harness import (MASTER_LINE, ROOT, WORKER, WORKER_LINE, Skip, check,
                     needs_root, poll_for,
                     collect_ids, fail, http_get, timeout, try_get,
                     wait_until)
from support import (BYE_RE, TICK_RE, check_ticks, ctl, read_bytes,
                     read_lines, ticker_command, worker_lines)

CUT = " [...]"
HOLD = 16384


def _expected_line(slot, i, length=80):
    s = "w%d %d " % (slot, i)
    return s + "x" * (length - len(s)) if len(s) < length else s


def _ticks_by_pid(lines):
    """{pid: [(slot, text), ...]} of prefixed worker lines, in file order."""
    out = {}
    for slot, pid, text in worker_lines(lines):
        out.setdefault(pid, []).append((slot, text))
    return out


@timeout(90)
def test_four_workers_50000_lines_each(t):
    # 4 x 50,000 lines printed at once through one log_file: every line is
    # whole, prefixed, from the right worker, and each worker's lines are
    # all there exactly once, in the order printed.
    n, nw = 50000, 4
    logf = t.path("app.log")
    conf = t.basic_config(count=nw, mode="print --lines %d" % n,
                          ready="100ms", master={"log_file": logf})
    f = t.start(conf, logs=[logf])
    last = [(" w%d %d " % (s, n - 1)).encode() for s in range(nw)]

    def all_there():
        data = read_bytes(logf)
        return all(k in data for k in last)
    wait_until(all_there, 60, interval=0.25,
               what="the last line of each of %d workers in %s" % (nw, logf))
    check(f.alive(), "fugue exited (%s)" % f.poll())
    data = read_bytes(logf)
    check(data.endswith(b"\n"), "the log ends in the middle of a line")
    lines = data.decode("utf-8", "replace").splitlines()
    per_slot = {s: [] for s in range(nw)}
    pids = {}
    bad = []
    rx = re.compile(r"^w(\d+) (\d+) (x+)$")
    prev_ts = ""
    for line in lines:
        m = WORKER_LINE.match(line)
        if not m:
            if not MASTER_LINE.match(line):
                bad.append(line)
            continue
        ts, slot, pid, text = m.group(1), int(m.group(2)), int(m.group(3)), \
            m.group(4)
        if ts < prev_ts:
            bad.append("timestamp going back: " + line[:80])
        prev_ts = ts
        p = rx.match(text)
        if not p or int(p.group(1)) != slot or len(text) != 80 or \
                slot not in per_slot:
            bad.append(line)
            continue
        pids.setdefault(slot, set()).add(pid)
        per_slot[slot].append(int(p.group(2)))
    check(not bad, "%d lines torn, mixed or not from their worker, e.g. %r"
          % (len(bad), [b[:120] for b in bad[:3]]))
    for s in range(nw):
        check(len(pids.get(s, ())) == 1, "worker %d lines carry pids %s"
              % (s, sorted(pids.get(s, ()))))
        check_ticks(per_slot[s], "worker %d" % s)
        check(len(per_slot[s]) == n, "worker %d: %d lines, want %d"
              % (s, len(per_slot[s]), n))
    kids = set(f.children())
    check({p for v in pids.values() for p in v} == kids,
          "pids in the log %s are not the master's children %s"
          % (sorted(p for v in pids.values() for p in v), sorted(kids)))


def _rotation_check(t, f, files, nworkers, what):
    """Stop f, then check the ticks of every worker across files (paths,
    oldest first): none lost or repeated, each file holding a later
    stretch, and the TERM line last."""
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    per_file = [_ticks_by_pid(_read_any(p)) for p in files]
    pids = set()
    for d in per_file:
        pids |= set(d)
    check(len(pids) == nworkers, "%s: lines from pids %s, want %d workers"
          % (what, sorted(pids), nworkers))
    for pid in sorted(pids):
        seqs, byes, spans = [], 0, []
        for d in per_file:
            mine = d.get(pid, [])
            got = []
            for slot, text in mine:
                m = TICK_RE.match(text)
                if m:
                    check(byes == 0, "%s: pid %d printed after its TERM line"
                          % (what, pid))
                    check(int(m.group(1)) == slot, "%s: %r under slot %d"
                          % (what, text, slot))
                    got.append(int(m.group(3)))
                elif BYE_RE.match(text):
                    byes += 1
                else:
                    fail("%s: pid %d wrote %r" % (what, pid, text))
            spans.append(got)
            seqs += got
        check_ticks(seqs, "%s, pid %d" % (what, pid))
        check(byes == 1, "%s: pid %d has %d TERM lines, want 1"
              % (what, pid, byes))
        check(all(spans), "%s: pid %d printed %s lines in the files %s; "
              "the test wants lines in each" % (what, pid,
                                                [len(x) for x in spans],
                                                files))


def _rotate(t, logf, rotated, reopen):
    """mv logf rotated while workers print, then reopen(); wait until the
    new logf has worker lines."""
    def reopens(path):
        return len([l for l in read_lines(path) if "log files reopened" in l])
    os.rename(logf, rotated)
    before = reopens(rotated)
    # Still written to the renamed file until the reopen.
    size = os.path.getsize(rotated)
    wait_until(lambda: os.path.getsize(rotated) > size, 5,
               what="lines written to the renamed file before the reopen")
    reopen()
    wait_until(lambda: reopens(logf), 5,
               what="'log files reopened' in the new %s" % logf)
    check(reopens(rotated) == before, "the reopen was logged in the old "
          "file")
    wait_until(lambda: len(worker_lines(read_lines(logf))) > 200, 10,
               what="worker lines in the new file")


@timeout(40)
def test_mv_and_reopen_while_printing(t):
    # Two workers print numbered lines non-stop (stdout and stderr); the
    # file is renamed, then `fugue -s reopen`; renamed again, then
    # "reopen" on the control socket: each time the next lines go to a new
    # file, and the three files together hold every line once, in order.
    logf = t.path("app.log")
    pidf = t.path("fugue.pid")
    sock = t.path("ctl.sock")
    conf = t.basic_config(count=2, command=ticker_command(t),
                          master={"log_file": logf, "pid_file": pidf,
                                  "control_socket": sock})
    f = t.start(conf, logs=[logf, logf + ".1", logf + ".2"])
    f.wait_ready(2, 10)
    wait_until(lambda: len(read_lines(logf)) > 200, 10,
               what="the workers' first lines")

    def by_pid_file():
        rc, out, err = t.run(["-c", conf, "-s", "reopen"])
        check(rc == 0, "fugue -s reopen exited %d: %s" % (rc, out + err))

    def by_socket():
        out = ctl(sock, "reopen\n")
        check(out == "ok: log files reopened\n", "reopen answered %r" % out)
    _rotate(t, logf, logf + ".1", by_pid_file)
    _rotate(t, logf, logf + ".2", by_socket)
    _rotation_check(t, f, [logf + ".1", logf + ".2", logf], 2,
                    "mv + reopen, twice")


def _adapt_logrotate(text, logf, conf, pidf):
    """conf/logrotate made to rotate this test's file and reach this
    test's fugue: the file names before '{' become logf; in scripts, the
    fugue binary, its -c FILE and any *.conf or *.pid path (or glob)
    become ours; su and the owner in create go (the test may not run as
    those users)."""
    out, in_body = [], False
    for line in text.splitlines():
        s = line.strip()
        if not in_body:
            if "{" in line:
                out.append("%s {%s" % (logf, line.split("{", 1)[1]))
                in_body = True
            continue
        words = s.split()
        if words and words[0] == "su":
            continue
        if words and words[0] == "create" and len(words) > 2:
            out.append("    create %s" % words[1])
            continue
        line = re.sub(r"(^|\s)-c\s+\S+", lambda m: m.group(1) + "-c @CONF@",
                      line)
        line = re.sub(r"[^\s'\"$()]*\.pid\b", "@PID@", line)
        line = re.sub(r"[^\s'\"$()]*\.conf\b", "@CONF@", line)
        line = re.sub(r"(^|[\s;&|`(])(?:/[^\s]*/)?fugue(?=\s|$)",
                      lambda m: m.group(1) + "@FUGUE@", line)
        out.append(line)
    return "\n".join(out).replace("@CONF@", conf).replace(
        "@PID@", pidf).replace("@FUGUE@", os.path.abspath(
            os.path.join(ROOT, "fugue"))) + "\n"


def _read_any(path):
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace").splitlines()
    return read_lines(path)


@timeout(40)
def test_logrotate_force(t):
    # A real `logrotate -f` with the shipped conf/logrotate (its postrotate
    # tells fugue to reopen) while workers print: nothing lost.
    example = os.environ.get("FUGUE_TEST_LOGROTATE_CONF") or \
        os.path.join(ROOT, "conf", "logrotate")
    lr = shutil.which("logrotate") or ("/usr/sbin/logrotate" if os.access(
        "/usr/sbin/logrotate", os.X_OK) else None)
    if not lr:
        raise Skip("logrotate is not installed (Debian: apt-get install "
                   "logrotate)")
    logf = t.path("app.log")
    pidf = t.path("fugue.pid")
    conf = t.basic_config(count=2, command=ticker_command(t),
                          master={"log_file": logf, "pid_file": pidf})
    with open(example) as fh:
        lrconf = t.write("logrotate.conf",
                         _adapt_logrotate(fh.read(), logf, conf, pidf))
    with open(lrconf) as fh:
        body = fh.read()
    if "postrotate" not in body or not (pidf in body or conf in body):
        raise Skip("conf/logrotate reopens in a way the test cannot point "
                   "at its own fugue:\n" + body)
    f = t.start(conf, logs=[logf])
    f.wait_ready(2, 10)
    wait_until(lambda: len(read_lines(logf)) > 200, 10,
               what="the workers' first lines")
    p = subprocess.run([lr, "-f", "-s", t.path("logrotate.state"), lrconf],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=20, cwd=t.dir)
    check(p.returncode == 0, "logrotate -f exited %d: %s\nconfig:\n%s"
          % (p.returncode, p.stdout.decode(errors="replace"), body))
    rotated = sorted(x for x in glob.glob(logf + "*") if x != logf)
    check(len(rotated) == 1, "rotated files: %s" % rotated)
    wait_until(lambda: any("log files reopened" in l
                           for l in read_lines(logf)), 5,
               what="'log files reopened' in the new %s (logrotate said %s)"
               % (logf, p.stdout.decode(errors="replace")))
    wait_until(lambda: len(worker_lines(read_lines(logf))) > 200, 10,
               what="worker lines in the new file")
    # (conf/logrotate has delaycompress: the newest rotated file stays
    # plain, since fugue writes to it until the reopen; a .gz is read too.)
    _rotation_check(t, f, [rotated[0], logf], 2, "logrotate -f")


def _status_json(sock):
    try:
        return json.loads(ctl(sock, "status json\n", timeout=5))
    except (OSError, ValueError):
        return None


@timeout(40)
def test_unwritable_log_file_drops_and_counts(t):
    # log_file = /dev/full: every write fails. Workers are never blocked
    # and go on serving; once log_file is writable again (a reload to a
    # real file), "N lines of worker output dropped" says how many were
    # lost, and N plus the lines written is all the workers printed.
    sock = t.path("ctl.sock")
    logf = t.path("app.log")
    master = {"log_file": "/dev/full", "control_socket": sock}
    conf = t.basic_config(count=2, mode="print --lines 200", master=master)
    f = t.start(conf, logs=[logf])
    wait_until(lambda: (_status_json(sock) or {}).get("phase") == "running",
               10, what="fugue running (status json)")
    collect_ids(t.port, [0, 1], test=t)
    check(f.alive(), "fugue died writing to /dev/full")
    conf = t.basic_config(port=t.port, count=2, mode="print --lines 200",
                          master=dict(master, log_file=logf))
    rc, out, err = t.run(["-c", conf, "reload"], timeout=20)
    check(rc == 0 and out.startswith("ok"),
          "reload to a writable log_file: exit %d: %s" % (rc, out + err))
    check(ctl(sock, "scale 3\n").startswith("ok"), "scale 3 refused")
    # The new worker of slot 2 prints 200 lines: a successful write.
    wait_until(lambda: any(" w2 199 " in l for l in read_lines(logf)), 10,
               what="the output of the worker added by scale 3")
    def tally():
        lines = read_lines(logf)
        drops = [re.search(r"warn: (\d+) lines of worker output dropped: "
                           r"(.+)$", l) for l in lines if MASTER_LINE.match(l)]
        drops = [d for d in drops if d]
        return lines, drops, sum(int(d.group(1)) for d in drops), \
            len(worker_lines(lines))
    # gen 1: 2 x 200, gen 2: 3 x 200 (slot 2 by scale); the last lines of
    # slots 0 and 1, or the drop report, may come after slot 2's.
    poll_for(lambda: sum(tally()[2:]) >= 1000, 5.0)
    lines, drops, dropped, written = tally()
    check(drops, "no 'lines of worker output dropped' line in %s: %s"
          % (logf, [l for l in lines if MASTER_LINE.match(l)]))
    check(all("No space left on device" in d.group(2) for d in drops),
          "the reason is not ENOSPC: %s" % [d.group(0) for d in drops])
    check(dropped + written == 1000 and dropped >= 400,
          "dropped %d + written %d != 1000 lines printed"
          % (dropped, written))
    check(try_get(t.port) is not None, "no answer after the reload")


def _log_fills_up(t, logf, make_room, reason, preexec=None, logs=()):
    # Worker 0 prints 3000 lines (~400 KB) into a log_file that has room
    # for less; then make_room(f), and worker 1 (a TTIN) prints 20 more.
    sock = t.path("ctl.sock")
    n0, n1 = 3000, 20
    cmd = "/bin/sh -c 'exec %s print --lines $((FUGUE_WORKER_ID ? %d : " \
        "%d))'" % (WORKER, n1, n0)
    conf = t.basic_config(count=1, command=cmd, ready="100ms",
                          master={"log_file": logf, "control_socket": sock})
    f = t.start(conf, logs=[logf] + list(logs), preexec=preexec)
    # Worker 0 serves once it printed everything; the status answered
    # after that, its pipe was read too.
    collect_ids(t.port, [0], test=t)
    check(ctl(sock, "status\n").startswith("fugue pid"), "no status")
    make_room(f)
    f.signal(signal.SIGTTIN)

    def tally():
        lines = [l for p in list(logs) + [logf] for l in read_lines(p)]
        drops = [re.search(r"warn: (\d+) lines of worker output dropped: "
                           r"%s$" % reason, l) for l in lines]
        return lines, sum(int(d.group(1)) for d in drops if d)
    poll_for(lambda: len(worker_lines(tally()[0])) + tally()[1] >= n0 + n1
             and any(" w1 %d " % (n1 - 1) in l for l in tally()[0]), 10)
    lines, dropped = tally()
    torn = [l for l in lines if not MASTER_LINE.match(l) and
            not WORKER_LINE.match(l)]
    torn += [text for slot, pid, text in worker_lines(lines)
             if text != _expected_line(slot, int(text.split()[1]))]
    check(not torn, "%d torn lines in %s, e.g. %r" % (len(torn), logf,
                                                       torn[:2]))
    mine = [x for x in worker_lines(lines) if x[0] == 1]
    check(len(mine) == n1, "worker 1's %d lines after the log had room "
          "again: %d there" % (n1, len(mine)))
    written = len(worker_lines(lines))
    check(dropped > 0 and written + dropped == n0 + n1,
          "written %d + dropped %d != %d printed" % (written, dropped,
                                                     n0 + n1))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)


def _full_disk(t, small):
    filler = os.path.join(small, "filler")
    with open(filler, "wb") as fh:
        fh.write(b"\0" * 16384)

    def make_room(f):
        check(os.statvfs(small).f_bavail == 0, "the disk did not fill up")
        os.unlink(filler)
    _log_fills_up(t, os.path.join(small, "app.log"), make_room,
                  "No space left on device")


@needs_root("to mount a 64 KiB tmpfs")
@timeout(40)
def test_full_disk_leaves_whole_lines(t):
    # log_file on a 64 KiB filesystem that fills up: the file only ever
    # holds whole lines (what a write had no room for does not stay as
    # half a line for the next lines to be appended to); once there is
    # room again, every line printed is there or counted in "N lines of
    # worker output dropped: No space left on device".
    small = t.path("small")
    os.mkdir(small)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
                        small], capture_output=True)
    if r.returncode != 0:
        raise Skip("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
    try:
        _full_disk(t, small)
    finally:
        subprocess.run(["umount", "-l", small])


@timeout(40)
def test_file_size_limit_leaves_whole_lines(t):
    # RLIMIT_FSIZE (64 KiB) reached by log_file: the master is not killed
    # by SIGXFSZ; the file holds whole lines only; after a rotation and
    # USR1, every line printed is in one of the files or counted in "N
    # lines of worker output dropped: File too large".
    limit = 65536
    logf = t.path("app.log")

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    def make_room(f):
        check(f.alive(), "fugue died at the file size limit: %s" % f.rc)
        check(os.path.getsize(logf) <= limit, "%s is %d bytes"
              % (logf, os.path.getsize(logf)))
        os.rename(logf, logf + ".1")
        f.signal(signal.SIGUSR1)
        wait_until(lambda: os.path.exists(logf), 5, what="a new " + logf)
    _log_fills_up(t, logf, make_room, "File too large", preexec=small_files,
                  logs=[logf + ".1"])


def _read_to_end(fd):
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError as e:
            if e.errno == errno.EIO:  # a pty whose other side is closed
                break
            raise
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _stalled_output(t, kind):
    # No log_file: worker lines go to fugue's stderr, here a pipe or a
    # socket (the journal's kind) that nobody reads for a while (a terminal
    # on ^S, a stuck log reader). The master goes on answering and starting
    # workers; what the reader did not take waits (up to 4 MiB), the rest
    # is dropped and counted, and once the reader is back every line
    # written is whole and in order, and written + dropped is all the
    # workers printed. What fugue was given stays blocking (it is not
    # fugue's to change).
    n, length = 20000, 200
    sock = t.path("ctl.sock")
    conf = t.basic_config(count=2, mode="print --lines %d --len %d"
                          % (n, length), master={"control_socket": sock})
    if kind == "pipe":
        rfd, wfd = os.pipe2(os.O_CLOEXEC)
    elif kind == "tty":
        rfd, wfd = pty.openpty()
        tty.setraw(wfd)  # bytes as written, no "\r\n"
    else:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        rfd, wfd = a.detach(), b.detach()
    try:
        f = t.start(conf, output=wfd)
    finally:
        os.close(wfd)
    try:
        wait_until(lambda: (_status_json(sock) or {}).get("workers_ready")
                   == 2, 15, what="2 workers ready (status json), stderr "
                   "unread")
        with open("/proc/%d/fdinfo/2" % f.pid) as fh:
            flags = int(re.search(r"flags:\s+(\d+)", fh.read()).group(1), 8)
        check(not flags & os.O_NONBLOCK, "fugue made its stderr non-blocking")
        check(ctl(sock, "scale 3\n").startswith("ok"), "scale 3 refused")
        wait_until(lambda: (_status_json(sock) or {}).get("workers_ready")
                   == 3, 15, what="the third worker ready, stderr unread")
        collect_ids(t.port, [0, 1, 2], test=t)  # all three printed all
        f.signal(signal.SIGTERM)
        data = _read_to_end(rfd)  # until fugue is gone: its last lines too
    finally:
        os.close(rfd)
    check(f.wait_exit(15) == 0, "fugue exit status %r" % f.rc)
    lines = data.decode("utf-8", "replace").splitlines()
    drops = [re.search(r"warn: (\d+) lines of worker output dropped: its "
                       r"reader was too slow", l) for l in lines]
    dropped = sum(int(d.group(1)) for d in drops if d)
    check(dropped > 0, "nothing dropped with %d lines unread: %s"
          % (3 * n, [l for l in lines if MASTER_LINE.match(l)][-5:]))
    got = {}
    for slot, pid, text in worker_lines(lines):
        got.setdefault(pid, []).append((slot, text))
    for pid, seen in got.items():
        last = -1
        for slot, text in seen:
            i = int(text.split()[1])
            check(text == _expected_line(slot, i, length) and i > last,
                  "worker %d: line %r after line %d" % (pid, text[:40],
                                                       last))
            last = i
    written = sum(len(v) for v in got.values())
    check(written + dropped == 3 * n, "written %d + dropped %d != %d "
          "printed" % (written, dropped, 3 * n))
    other = [l for l in lines if not MASTER_LINE.match(l)
             and not WORKER_LINE.match(l)]
    check(not other, "torn lines on stderr: %r" % other[:3])


@timeout(60)
def test_stalled_stderr_pipe_never_blocks_the_master(t):
    _stalled_output(t, "pipe")


@timeout(60)
def test_stalled_stderr_socket_never_blocks_the_master(t):
    _stalled_output(t, "socket")


@timeout(60)
def test_stalled_stderr_terminal_never_blocks_the_master(t):
    _stalled_output(t, "tty")


def test_overlong_line_cut_mark(t):
    # A 40,000-character line: pieces of exactly 16 KiB, each but the last
    # ending with the mark " [...]", and together the whole line.
    conf = t.basic_config(count=1, mode="print --lines 1 --len 40000",
                          ready="100ms")
    f = t.start_ready(conf, 1)
    want = _expected_line(0, 0, 40000)
    wait_until(lambda: sum(len(x[2]) for x in worker_lines(f.log_lines()))
               >= 40000, 10, what="the 40000-character line in the log")
    pieces = [x[2] for x in worker_lines(f.log_lines())]
    lens = [len(p) for p in pieces]
    check(lens == [HOLD + len(CUT), HOLD + len(CUT), 40000 - 2 * HOLD],
          "pieces of %s characters, want [%d, %d, %d]"
          % (lens, HOLD + len(CUT), HOLD + len(CUT), 40000 - 2 * HOLD))
    check(pieces[0].endswith(CUT) and pieces[1].endswith(CUT) and
          not pieces[2].endswith(CUT), "the cut mark is not where the "
          "line was cut: ends %r" % [p[-8:] for p in pieces])
    joined = "".join(p[:-len(CUT)] if p.endswith(CUT) else p for p in pieces)
    check(joined == want, "the pieces do not make up the line printed")


def test_lines_at_the_16k_boundary(t):
    # Worker 0 prints lines of 16383 characters, worker 1 of 16384 (the
    # hold size): 16383 fits and comes out whole; 16384 may come out whole
    # or cut with the mark, but nothing may be invented or lost: no empty
    # extra line, and the pieces make up the line printed.
    # (log_file, not read by the harness: a failure shows no 16 KiB lines)
    logf = t.path("app.log")
    cmd = "/bin/sh -c 'exec %s print --lines 2 --len $((%d + " \
        "FUGUE_WORKER_ID))'" % (WORKER, HOLD - 1)
    conf = t.basic_config(count=2, ready="100ms", master={"log_file": logf},
                          command=cmd)
    f = t.start(conf)
    wait_until(lambda: len([x for x in worker_lines(read_lines(logf))
                            if " 1 x" in x[2]]) >= 2, 10,
               what="both lines of both workers")
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    got = worker_lines(read_lines(logf))
    for slot, length in ((0, HOLD - 1), (1, HOLD)):
        mine = [x[2] for x in got if x[0] == slot]
        empty = [x for x in mine if x == ""]
        joined = "".join(x[:-len(CUT)] if x.endswith(CUT) else x
                         for x in mine)
        want = _expected_line(slot, 0, length) + \
            _expected_line(slot, 1, length)
        check(not empty and joined == want,
              "worker %d's 2 lines of %d characters came out as %d lines "
              "of %s characters (%d empty, %d marked as cut)%s"
              % (slot, length, len(mine), [len(x) for x in mine],
                 len(empty), len([x for x in mine if x.endswith(CUT)]),
                 "" if joined == want else "; the text differs"))
        if length < HOLD:
            check(len(mine) == 2, "a %d-character line was cut" % length)


def test_partial_line_written_when_worker_exits(t):
    # A last line without its newline is held, then written whole (no
    # mark) when that worker's pipe ends, before the line about its exit.
    conf = t.basic_config(count=1, mode="print --lines 3 --partial",
                          ready="100ms")
    f = t.start_ready(conf, 1)
    (w,) = f.children()
    wait_until(lambda: len(worker_lines(f.log_lines())) >= 3, 5,
               what="the 3 whole lines")
    check(not [x for x in worker_lines(f.log_lines()) if "partial" in x[2]],
          "the partial line was written before its worker exited")
    st, body = http_get(t.port, "/exit?code=0")
    check(st == 200, "/exit answered %d" % st)
    f.wait_log(r"worker 0 \(pid %d\) exited with status 0" % w, 10)
    lines = f.log_lines()
    idx = [i for i, l in enumerate(lines)
           if (WORKER_LINE.match(l) or [None] * 5)[4] == "w0 partial"]
    check(len(idx) == 1, "the partial line appears %d times" % len(idx))
    m = WORKER_LINE.match(lines[idx[0]])
    check(int(m.group(3)) == w, "the partial line names pid %s, not %d"
          % (m.group(3), w))
    ex = [i for i, l in enumerate(lines)
          if "worker 0 (pid %d) exited" % w in l]
    check(idx[0] < ex[0], "the partial line came after the exit line")
    f.wait_children(1, 10)


def test_log_raw_exact(t):
    # log_raw = yes: each line exactly as printed (stdout and stderr
    # alternating), in order; a line over 16 KiB still gets the mark.
    logf = t.path("app.log")
    conf = t.basic_config(count=1, ready="100ms",
                          master={"log_file": logf},
                          worker={"log_raw": "yes"},
                          mode="print --lines 300 --stream both")
    f = t.start(conf, logs=[logf])
    f.wait_ready(1, 10)
    wait_until(lambda: _expected_line(0, 299) in read_lines(logf), 10,
               what="the 300th raw line")
    raw = [l for l in read_lines(logf) if not MASTER_LINE.match(l)]
    check(raw == [_expected_line(0, i) for i in range(300)],
          "raw lines differ from what was printed: first differences %s"
          % [(i, l) for i, l in enumerate(raw)
             if i >= 300 or l != _expected_line(0, i)][:3])
    # A long line through the same raw sink.
    conf2 = t.basic_config(count=1, ready="100ms", name="long.conf",
                           master={"log_file": logf + ".long"},
                           worker={"log_raw": "yes"},
                           mode="print --lines 1 --len 20000")
    g = t.start(conf2, log="fugue2.log", logs=[logf + ".long"])
    g.wait_ready(1, 10)
    wait_until(lambda: len([l for l in read_lines(logf + ".long")
                            if not MASTER_LINE.match(l)]) >= 2, 10,
               what="the long raw line in 2 pieces")
    pieces = [l for l in read_lines(logf + ".long")
              if not MASTER_LINE.match(l)]
    check(pieces[0] == _expected_line(0, 0, 20000)[:HOLD] + CUT and
          pieces[1] == _expected_line(0, 0, 20000)[HOLD:],
          "raw long line came out as pieces of %s characters"
          % [len(p) for p in pieces])


@timeout(40)
def test_draining_workers_output_through_upgrade(t):
    # Workers print non-stop; USR2 re-execs fugue and drains them: every
    # line they print, before, during and after the re-exec, and the line
    # they print on TERM, is captured under their own slot and pid.
    logf = t.path("app.log")
    conf = t.basic_config(count=2, command=ticker_command(t),
                          master={"log_file": logf})
    f = t.start(conf, logs=[logf])
    f.wait_ready(2, 10)
    old = set(f.children())
    wait_until(lambda: len(worker_lines(read_lines(logf))) > 100, 10,
               what="the workers' first lines")
    f.signal(signal.SIGUSR2)
    f.wait_log(r"upgrade: generation \d+ ready \(2 workers\); draining", 20)
    for pid in old:
        f.wait_log(r"worker \d \(pid %d\) exited with status 0" % pid, 10)
    new = set(f.children())
    check(not new & old and len(new) == 2, "workers after the upgrade: %s "
          "(before: %s)" % (sorted(new), sorted(old)))
    lines = read_lines(logf)
    pids = {MASTER_LINE.match(l).group(2) for l in lines
            if MASTER_LINE.match(l)}
    check(f.alive() and pids == {str(f.pid)},
          "master lines from pids %s; fugue is %d" % (sorted(pids), f.pid))
    adopted = [i for i, l in enumerate(lines) if "upgrade: adopted" in l]
    check(adopted, "no 'upgrade: adopted' line")
    by_pid = _ticks_by_pid(lines)
    for pid in sorted(old):
        mine = by_pid.get(pid, [])
        seqs = [int(TICK_RE.match(x).group(3)) for _, x in mine
                if TICK_RE.match(x)]
        check_ticks(seqs, "old worker %d" % pid)
        check(mine and BYE_RE.match(mine[-1][1]),
              "old worker %d: its TERM line is not its last line (last: %r)"
              % (pid, mine[-1][1] if mine else None))
        check(len({s for s, _ in mine}) == 1, "old worker %d under slots %s"
              % (pid, sorted({s for s, _ in mine})))
        # Lines read by the new image from the adopted pipe.
        after = [i for i, l in enumerate(lines)
                 if (WORKER_LINE.match(l) or [0] * 4)[3] == str(pid)
                 and i > adopted[0]]
        check(after, "no line of old worker %d after the re-exec" % pid)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)


# A worker that prints numbered lines of a fixed length: a burst of BURST
# lines at once (ten to a write, each write under PIPE_BUF: whole lines),
# then a file burst.<pid> in OUT, then one line every 5 ms until TERM; on
# TERM a last line "end ..." and then the number of lines it printed (the
# end line included) in OUT/count.<pid>, whatever of it reached the log.
PRINTER = r'''
import os, signal, sys, time
slot, gen = os.environ["FUGUE_WORKER_ID"], os.environ["FUGUE_GENERATION"]
burst, length, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
stop = []
signal.signal(signal.SIGTERM, lambda s, f: stop.append(s))

def line(i):
    s = "n w%s g%s %d " % (slot, gen, i)
    return s + "x" * (length - len(s)) + "\n"

def mark(name, text=""):
    p = os.path.join(out, "%s.%d" % (name, os.getpid()))
    with open(p + ".tmp", "w") as fh:
        fh.write(text)
    os.rename(p + ".tmp", p)

n = 0
while n < burst and not stop:
    k = min(10, burst - n)
    os.write(1, "".join(line(n + j) for j in range(k)).encode())
    n += k
mark("burst")
while not stop:
    os.write(2, line(n).encode())
    n += 1
    time.sleep(0.005)
os.write(1, ("end w%s g%s %d\n" % (slot, gen, n)).encode())
mark("count", "%d\n" % (n + 1))
'''
PRINTED_RE = re.compile(r"^n w(\d+) g(\d+) (\d+) (x+)$")
END_RE = re.compile(r"^end w(\d+) g(\d+) (\d+)$")
DROPPED_RE = re.compile(r"warn: (\d+) lines of worker output dropped: its "
                        r"reader was too slow")


def _files(d, name):
    return sorted(p for p in os.listdir(d) if p.startswith(name + ".")
                  and not p.endswith(".tmp"))


def _check_upgrade_output(f, data, out, nworkers, length, want_drops):
    """What fugue wrote (stderr or log_file) across an upgrade: whole lines
    only; every line a worker printed there, in order, or counted in a drop
    report; the master's lines of the upgrade there, from both images."""
    check(data.endswith(b"\n"), "the output ends inside a line: %r"
          % data[-80:])
    lines = data.decode("utf-8", "replace").splitlines()
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
    bad, per_pid, masters, dropped = [], {}, [], 0
    for line in lines:
        m, w = MASTER_LINE.match(line), WORKER_LINE.match(line)
        if m and not stamp.search(m.group(4)) and \
                not PRINTED_RE.search(m.group(4)):
            masters.append(line)
            d = DROPPED_RE.search(line)
            dropped += int(d.group(1)) if d else 0
            continue
        text = w.group(4) if w else ""
        p, e = PRINTED_RE.match(text), END_RE.match(text)
        if not w or not (p or e) or stamp.search(text) or \
                (p and (len(text) != length or p.group(1) != w.group(2))) or \
                (e and e.group(1) != w.group(2)):
            bad.append(line)
            continue
        seq = int((p or e).group(3))
        per_pid.setdefault(int(w.group(3)), []).append((seq, bool(e)))
    check(not bad, "%d lines torn or glued together, e.g. %r"
          % (len(bad), [b[:160] for b in bad[:3]]))
    for pid, seqs in sorted(per_pid.items()):
        order = [s for s, _ in seqs]
        check(order == sorted(set(order)) and
              all(not e for _, e in seqs[:-1]),
              "worker %d: its lines out of order or repeated: %s"
              % (pid, [(i, s) for i, (s, _) in enumerate(seqs)
                       if i and s <= seqs[i - 1][0]][:5]))
    counts = {int(p.split(".")[1]): int(open(os.path.join(out, p)).read())
              for p in _files(out, "count")}
    check(len(counts) == nworkers, "%d workers said how many lines they "
          "printed, want %d: %s" % (len(counts), nworkers, sorted(counts)))
    check(set(per_pid) <= set(counts), "lines from pids %s, the workers "
          "were %s" % (sorted(per_pid), sorted(counts)))
    printed = sum(counts.values())
    present = sum(len(v) for v in per_pid.values())
    check(present + dropped == printed, "%d worker lines there + %d "
          "reported dropped != %d printed (by pid: printed %s, there %s)"
          % (present, dropped, printed, counts,
             {p: len(v) for p, v in per_pid.items()}))
    if want_drops:
        check(dropped > 0, "nothing dropped: the test did not fill the "
              "backlog")
    else:
        check(dropped == 0, "%d lines dropped writing to a file" % dropped)
    want = [r"upgrade: checking ", r"upgrade: trying ",
            r"upgrade: re-executing ",
            r"upgrade: adopted %d workers of generation 1" % (nworkers // 2),
            r"upgrade: starting generation 2 ",
            r"upgrade: generation 2 ready ", r"exiting with status 0"]
    pos = 0
    for rx in want:
        i = next((i for i in range(pos, len(masters))
                  if re.search(rx, masters[i])), None)
        check(i is not None, "no master line /%s/ after %r; master lines: "
              "%s" % (rx, masters[pos - 1][-60:] if pos else None,
                      [l[30:110] for l in masters]))
        pos = i + 1
    pids = {MASTER_LINE.match(l).group(2) for l in masters}
    check(pids == {str(f.pid)}, "master lines from pids %s; fugue is %d"
          % (sorted(pids), f.pid))


def _upgrade_with_backlog(t, to_file):
    # 3 workers print a burst of 6000 lines of 300 characters (5 MB in
    # all), then a line every 5 ms. With no log_file, fugue's stderr is a
    # pipe the test does not read until the upgrade is over: the burst
    # fills the 4 MiB backlog and more is dropped; USR2 re-executes fugue
    # with the backlog unwritten, and the new generation's burst comes on
    # top. With log_file (a regular file), nothing waits and nothing may
    # be dropped.
    nw, burst, length = 3, 6000, 300
    out = t.path("out")
    os.mkdir(out)
    script = t.write("printer.py", PRINTER)
    sock = t.path("ctl.sock")
    master = {"control_socket": sock}
    if to_file:
        master["log_file"] = t.path("app.log")
    conf = t.basic_config(count=nw, master=master, kill_timeout="10s",
                          command="%s -S %s %d %d %s" % (
                              sys.executable, script, burst, length, out))
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    try:
        f = t.start(conf, output=wfd,
                    logs=[master["log_file"]] if to_file else ())
    finally:
        os.close(wfd)
    got, eof = [], threading.Event()

    def reader():
        try:
            while True:
                chunk = os.read(rfd, 65536)
                if not chunk:
                    break
                got.append(chunk)
        finally:
            os.close(rfd)
            eof.set()

    def status():
        return _status_json(sock) or {}
    try:
        wait_until(lambda: status().get("workers_ready") == nw, 15,
                   what="%d workers ready (status json), stderr unread" % nw)
        # A burst is over once the master took all but a pipe's worth.
        wait_until(lambda: len(_files(out, "burst")) == nw, 30,
                   what="the first generation's bursts")
        f.signal(signal.SIGUSR2)
        wait_until(lambda: status().get("generation") == 2 and
                   not status().get("reloading"), 30,
                   what="the upgrade to end (status json), stderr unread")
        check(f.alive(), "fugue exited during the upgrade")
    except BaseException:
        t.background(reader)
        raise
    t.background(reader)
    # The old workers drain (and say how much they printed); the new ones
    # print their burst.
    wait_until(lambda: len(_files(out, "count")) == nw and
               len(_files(out, "burst")) == 2 * nw, 20,
               what="the old workers' ends and the new bursts")
    if not to_file:
        # The new image writes what the old one left while it runs, not
        # only at its exit.
        wait_until(lambda: re.search(rb"upgrade: generation 2 ready",
                                     b"".join(got)), 20,
                   what="the backlog and the new image's lines on stderr")
    f.signal(signal.SIGTERM)
    check(f.wait_exit(20) == 0, "fugue exited %s" % f.rc)
    check(eof.wait(10), "fugue's stderr still open after it exited")
    data = b"".join(got)
    if to_file:
        check(not data.strip(), "fugue wrote to stderr with a log_file: %r"
              % data[:300])
        data = read_bytes(master["log_file"])
    else:
        with open(f.log_path, "ab") as fh:   # the harness checks it
            fh.write(data)
    _check_upgrade_output(f, data, out, 2 * nw, length, not to_file)


@timeout(90)
def test_upgrade_carries_the_stderr_backlog_across_the_exec(t):
    _upgrade_with_backlog(t, False)


@timeout(90)
def test_upgrade_loses_no_line_of_a_log_file(t):
    _upgrade_with_backlog(t, True)
