#!/usr/bin/env python3
"""examples/hello.py - a fugue worker in Python 3 (standard library only).

Run it under fugue:

    fugue --listen 127.0.0.1:8080 --workers 4 -- python3 examples/hello.py
    curl http://127.0.0.1:8080/      ->  Hello from worker 2 (pid 4321)

fugue binds the listening socket once and hands it to every worker as fd 3,
with LISTEN_FDS=1 and LISTEN_PID=<the worker's pid> (systemd's
socket-activation convention) and FUGUE_WORKER_ID=<slot>. The server must not
bind a port itself: it wraps fd 3 in a socket object and serves that. To stop
or replace a worker, fugue sends SIGTERM: we stop accepting, let the requests
in flight finish, and exit 0; new connections wait in the kernel's queue for
the other workers, so none is refused during a reload.

If you start Python from a wrapper script, end the script with
`exec python3 app.py`: then Python *is* the worker process, so LISTEN_PID
matches its pid, and fugue's signals (SIGTERM to drain, the parent-death signal
if fugue dies) reach Python instead of a shell.
"""

import os
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORKER = os.environ.get("FUGUE_WORKER_ID", "?")

# stdout and stderr are a pipe to fugue, which logs whole lines: flush every
# line instead of holding output in a block buffer until exit.
sys.stdout.reconfigure(line_buffering=True)
sys.stderr.reconfigure(line_buffering=True)

stopping = threading.Event()


class Hello(BaseHTTPRequestHandler):
    # HTTP/1.0 (the default): one request per connection, so no idle
    # keep-alive connection can hold up a drain.
    timeout = 30    # a client that stalls is dropped after 30 s

    def do_GET(self):
        body = ("Hello from worker %s (pid %d)\n" % (WORKER, os.getpid())).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass        # no access log (it would go to fugue's log, line by line)


class Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for requests in flight


def inherited_listener():
    """fd 3, if LISTEN_PID says the sockets are meant for this process."""
    if (os.environ.get("LISTEN_PID") != str(os.getpid())
            or int(os.environ.get("LISTEN_FDS", "0") or "0") < 1):
        print("hello.py: no listening socket on fd 3 (LISTEN_FDS/LISTEN_PID): "
              "run me under fugue", file=sys.stderr)
        sys.exit(2)
    sock = socket.socket(fileno=3)  # family and type are read from the fd
    # Every worker waits on the same socket and the kernel wakes them all for
    # each connection; only one gets it. A blocking accept() would leave the
    # others stuck in accept() (and deaf to shutdown), so don't block.
    sock.setblocking(False)
    return sock


def main():
    sock = inherited_listener()
    server = Server(sock.getsockname(), Hello, bind_and_activate=False)
    server.socket.close()   # the unbound socket the constructor made
    server.socket = sock

    def on_sigterm(signum, frame):
        if not stopping.is_set():
            stopping.set()
            # shutdown() waits for serve_forever() to return, and that runs
            # in this (the main) thread: call it from another thread.
            threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    print("worker %s (pid %d) serving" % (WORKER, os.getpid()))
    server.serve_forever()
    server.server_close()   # close the listener, join the request threads
    print("worker %s (pid %d) drained, exiting" % (WORKER, os.getpid()))


if __name__ == "__main__":
    main()
