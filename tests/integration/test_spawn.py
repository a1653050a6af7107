"""What fugue does as each worker starts, besides the fork: the step named
when it cannot start one, and the listeners' O_NONBLOCK flag, which every
worker of every generation shares and each one starts with set."""

import os
import re
import resource
import shutil
import signal
import sys

from harness import WORKER, Skip, check, fail, inherit, timeout
from loadgen import Load, reload_done_re, wait_generation


@timeout(60)
def test_out_of_fds_names_the_step_that_failed(t):
    # RLIMIT_NOFILE 20 and 12 workers: the pipes of a worker's start run
    # out of fds; the message names the pipe, not the fork that never ran.
    conf = t.basic_config(count=12, worker={"ready_timeout": "50s"})
    f = t.start(conf, preexec=lambda: resource.setrlimit(
        resource.RLIMIT_NOFILE, (20, 20)))
    t.expect_error(r"Too many open files")
    rx = r"fugue \(pid %d\) \w+: worker \d+: (\w+): Too many open files" \
        % f.pid
    steps = [m.group(1) for m in f.wait_log(rx, 15, count=4)]
    check(set(steps) == {"pipe"}, "steps named: %s, want only pipe" % steps)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(15) == 0, "fugue exited %s after TERM" % f.rc)


# --------------------------------------------------------------------------
# The listeners' O_NONBLOCK flag: one for every worker of every generation

# A Node.js worker: libuv makes fd 3 non-blocking when it opens it (for
# every worker, then), and accepts when epoll says the listener is readable;
# blocking, that accept() would hold its loop whenever another worker got
# the connection first.
NODE_WORKER = r"""
'use strict';
const http = require('http');
const hello = `worker ${process.env.FUGUE_WORKER_ID} pid ${process.pid} ` +
    `gen ${process.env.FUGUE_GENERATION}\n`;
let stopping = false;
const server = http.createServer((req, res) => {
  if (stopping) res.setHeader('Connection', 'close');
  res.end(hello);
});
server.listen({ fd: 3 });
// Stop accepting, close idle connections, answer the others with
// "Connection: close", exit when the last one ends.
process.on('SIGTERM', () => {
  stopping = true;
  server.close(() => process.exit(0));
});
"""

# A Python worker with an accept() loop, as the worker contract asks:
# EAGAIN (no connection waiting, or another worker got it) means wait until
# the listener is readable, or the stop signal came, and accept again.
PY_WORKER = r"""
import os, select, signal, socket, threading

hello = ("worker %s pid %d gen %s\n" % (os.environ["FUGUE_WORKER_ID"],
         os.getpid(), os.environ["FUGUE_GENERATION"])).encode()
sock = socket.socket(fileno=3)
stopping = False


def on_term(signum, frame):
    global stopping
    stopping = True


def serve(conn):
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (len(hello), hello))


# The stop signal also wakes select(), through a pipe.
wake_r, wake_w = os.pipe()
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGTERM, on_term)
while not stopping:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        select.select([sock, wake_r], [], [])
        continue
    threading.Thread(target=serve, args=(conn,)).start()
"""


# A wrapper that makes fd 3 blocking for every worker, as Python's
# sock.setblocking(True) or settimeout(None) would, then runs the worker.
CLEAR_NONBLOCK = r"""
import fcntl, os, sys
fcntl.fcntl(3, fcntl.F_SETFL, fcntl.fcntl(3, fcntl.F_GETFL) & ~os.O_NONBLOCK)
os.execv(sys.argv[1], sys.argv[1:])
"""


def _listener_nonblock(t, gen):
    """How fd 3 was when a worker of generation gen started (its report)."""
    rep = inherit(t.port)
    check(rep["env"].get("FUGUE_GENERATION") == str(gen),
          "answer from generation %s, want %d"
          % (rep["env"].get("FUGUE_GENERATION"), gen))
    t.remember(int(rep["pid"]))
    return [d["nonblock"] for d in rep["fds"] if d["fd"] == 3][0]


def test_every_worker_starts_with_non_blocking_listeners(t):
    # The flag is shared by every worker of every generation; whatever the
    # ones before did with it, each worker starts with it set.
    wrapper = t.write("clear-nonblock.py", CLEAR_NONBLOCK)
    plain = "%s serve" % WORKER
    clearing = "%s %s %s serve" % (sys.executable, wrapper, WORKER)
    seen = []
    for gen, cmd in ((1, plain), (2, clearing), (3, plain)):
        t.basic_config(port=getattr(t, "port", None), count=2, command=cmd)
        if gen == 1:
            f = t.start_ready(t.path("fugue.conf"), 2)
        else:
            f.signal(signal.SIGHUP)
            f.wait_log(reload_done_re(f, gen), 15)
            wait_generation(f, gen, 2)
        seen.append(_listener_nonblock(t, gen))
    check(seen == [True, False, True], "fd 3 non-blocking at the start of a "
          "worker of generations 1, 2 (a wrapper cleared it), 3: %s, want "
          "[True, False, True]" % seen)


def _fd_flags(pid, fd):
    with open("/proc/%d/fdinfo/%d" % (pid, fd)) as fh:
        for line in fh:
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    fail("no flags in /proc/%d/fdinfo/%d" % (pid, fd))


@timeout(120)
def test_deploy_node_to_python_accept_loop_and_back(t):
    # Under load, a reload from Node workers to Python workers with an
    # accept() loop, and back, twice: both share the listener and its
    # O_NONBLOCK flag while the old generation drains. No request fails, no
    # reload is rolled back, no worker dies or is killed, and the flag Node
    # needs stays set while the Python workers serve.
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        raise Skip("node is not installed")
    js, py = t.write("worker.js", NODE_WORKER), t.write("worker.py", PY_WORKER)
    cmds = {"node": "%s %s" % (node, js), "python": "%s %s" % (sys.executable,
                                                               py)}

    def conf(kind):
        return t.basic_config(port=getattr(t, "port", None), count=2,
                              command=cmds[kind], ready="1s",
                              kill_timeout="10s",
                              worker={"ready_timeout": "20s"})
    f = t.start_ready(conf("node"), 2, timeout=25)
    with Load(t.port, new_conn=2, keep_alive=2) as load:
        load.wait_progress(20)
        for gen, kind in ((2, "python"), (3, "node"), (4, "python")):
            conf(kind)
            f.signal(signal.SIGHUP)
            f.wait_log(reload_done_re(f, gen), 30)
            pids = wait_generation(f, gen, 2, timeout=20)
            load.wait_progress(20)
            for p in pids:
                check(_fd_flags(p, 3) & os.O_NONBLOCK, "the listener is "
                      "blocking under %s worker %d" % (kind, p))
    load.check_clean(min_ok=20)
    gens = {s.gen for s in load.samples if s.ok}
    check({1, 2, 3, 4} <= gens, "answers came from generations %s"
          % sorted(g for g in gens if g is not None))
    bad = [l for l in f.master_lines() if re.search(
        r"failed|keeps serving|killed by signal|restarting", l)]
    check(not bad, "a reload failed, or a worker died or was killed: %s"
          % bad)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(20) == 0, "fugue exited %s after TERM" % f.rc)


def test_blocking_listeners_by_configuration(t):
    # [listen] blocking = yes (servers whose processes wait in accept(),
    # such as php-fpm's children): each worker of that generation starts
    # with the flag cleared; a reload to the default sets it again.
    seen = []
    for gen, blocking in ((1, "yes"), (2, "no"), (3, "yes")):
        t.basic_config(port=getattr(t, "port", None), count=2,
                       listen={"blocking": blocking})
        if gen == 1:
            f = t.start_ready(t.path("fugue.conf"), 2)
        else:
            f.signal(signal.SIGHUP)
            f.wait_log(reload_done_re(f, gen), 15)
            wait_generation(f, gen, 2)
        seen.append(_listener_nonblock(t, gen))
    check(seen == [False, True, False], "fd 3 non-blocking at the start of "
          "generations with blocking = yes, no, yes: %s" % seen)
