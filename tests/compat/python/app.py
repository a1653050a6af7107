"""A server on Python's http.server for fugue (standard library only):
serves every listener fugue passes (fd 3 .. 3+LISTEN_FDS-1), says READY=1
to NOTIFY_SOCKET, and on TERM stops accepting and finishes the requests in
flight. GET / answers "worker <slot> pid <pid> gen <generation>"; GET
/slow?ms=N answers after N ms, and logs when it starts."""

import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

sys.stderr.reconfigure(line_buffering=True)


def sd_notify(state):
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(state.encode(), path)


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, no idle keep-alive to drain.
    timeout = 30

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/slow":
            ms = int(parse_qs(url.query).get("ms", ["2000"])[0])
            print("slow request started (pid %d)" % os.getpid(), file=sys.stderr)
            time.sleep(ms / 1000.0)
            body = "slow done pid %d\n" % os.getpid()
        else:
            body = "worker %s pid %d gen %s\n" % (
                os.environ.get("FUGUE_WORKER_ID"), os.getpid(),
                os.environ.get("FUGUE_GENERATION"))
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = False      # server_close() waits for requests in flight


def serve(fd):
    sock = socket.socket(fileno=fd)
    # The listener is shared and non-blocking: serve_forever() waits until
    # it is readable, and an accept() that finds nothing (another worker
    # got the connection) is ignored.
    server = Server(sock.getsockname(), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    return server


def main():
    n = int(os.environ.get("LISTEN_FDS") or "0")
    if n < 1 or os.environ.get("LISTEN_PID") != str(os.getpid()):
        sys.exit("no listening socket on fd 3 (LISTEN_FDS/LISTEN_PID): run me under fugue")
    servers = [serve(fd) for fd in range(3, 3 + n)]
    # TERM is taken by sigwait() in this thread. Blocked before the other
    # threads start, so that they inherit the mask and the kernel cannot
    # give it to one of them: a Python handler runs in the main thread only
    # once that thread runs Python code, never while it waits in a lock
    # (Event.wait(), join()) for a signal delivered to another thread.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    threads = [threading.Thread(target=s.serve_forever) for s in servers]
    for th in threads:
        th.start()
    sd_notify("READY=1")
    print("compat app serving (pid %d)" % os.getpid(), file=sys.stderr)
    signal.sigwait({signal.SIGTERM})
    for s in servers:
        s.shutdown()            # serve_forever() returns
        s.server_close()        # the listener closed, request threads joined
    print("compat app drained (pid %d)" % os.getpid(), file=sys.stderr)


if __name__ == "__main__":
    main()
