"""The sample workers in examples/ served through fugue, with real clients:
C (examples/hello), Python (examples/hello.py), Node (examples/hello.js)."""

import os
import shutil
import signal
import subprocess
import sys

from harness import ROOT, Skip, check, fail, try_get, wait_until

GREETING = "Hello from worker"


def _serve_example(t, command, count=2, ready="300ms"):
    conf = t.basic_config(count=count, command=command, ready=ready,
                          worker={"working_dir": ROOT,
                                  "ready_timeout": "20s"})
    f = t.start_ready(conf, count, timeout=25)
    r = wait_until(lambda: try_get(t.port), 10, what="an answer")
    check(r[0] == 200, "status %d" % r[0])
    check(GREETING in r[1], "answer %r lacks %r" % (r[1], GREETING))
    check(len(f.children()) == count, "fugue has %d children, want %d"
          % (len(f.children()), count))
    for _ in range(2 * count):
        r = try_get(t.port)
        check(r is not None and r[0] == 200 and GREETING in r[1],
              "answer %r" % (r,))
    curl = shutil.which("curl")
    if curl:
        out = subprocess.run([curl, "-sS", "--max-time", "5",
                              "http://127.0.0.1:%d/" % t.port],
                             capture_output=True, text=True, timeout=10)
        check(out.returncode == 0 and GREETING in out.stdout,
              "curl: %d %r %r" % (out.returncode, out.stdout, out.stderr))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(15) == 0, "fugue exited %s after TERM" % f.rc)
    return f


def test_example_c(t):
    path = os.path.join(ROOT, "examples", "hello")
    if not os.access(path, os.X_OK):
        fail("%s is missing (make examples/hello)" % path)
    _serve_example(t, path, ready="100ms")


def test_example_python(t):
    path = os.path.join(ROOT, "examples", "hello.py")
    if not os.path.exists(path):
        fail("%s is missing" % path)
    _serve_example(t, "%s examples/hello.py" % sys.executable)


def test_example_node(t):
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        raise Skip("node is not installed")
    path = os.path.join(ROOT, "examples", "hello.js")
    if not os.path.exists(path):
        fail("%s is missing" % path)
    # "node" found on PATH, the script relative to working_dir; it says
    # READY=1 on the pipe of ready = fd once it listens.
    f = _serve_example(t, "%s examples/hello.js" % os.path.basename(node),
                       ready="fd")
    check(f.rc == 0, "fugue exited %s" % f.rc)
