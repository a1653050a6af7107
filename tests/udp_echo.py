#!/usr/bin/env python3
"""A datagram worker for fugue's tests (Python 3 standard library only).

    udp_echo.py [--deaf GEN]...

It serves every socket fugue passes (LISTEN_FDS, from fd 3: udp: and
unixgram: listeners) and answers each datagram to its sender with
"gen G pid P: " followed by the datagram. It tells fugue it is ready with
READY=1 on NOTIFY_SOCKET (ready = notify), and follows the worker contract
for datagrams on TERM (stop_signal): it stops reading, answers what it has
read, and exits 0; what it has not read stays in the socket's buffer for
the next generation. The sockets stay non-blocking (every worker shares
that flag): EAGAIN from recvfrom means another worker took the datagram.

--deaf GEN: a worker of generation GEN reads nothing, so that datagrams
wait in the socket's buffer until a later generation reads them.
"""

import os
import select
import signal
import socket
import sys
import time


def sd_notify(state):
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(state.encode(), path)


def answer(sock, data, addr, prefix):
    """Send the answer; a full receiver (a UNIX peer) gets a second."""
    deadline = time.monotonic() + 1.0
    while True:
        try:
            sock.sendto(prefix + data, addr)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.001)


def main():
    args = sys.argv[1:]
    deaf = set()
    while args:
        if args[0] == "--deaf" and len(args) > 1:
            deaf.add(args[1])
            args = args[2:]
        else:
            sys.stderr.write("usage: udp_echo.py [--deaf GEN]...\n")
            return 64
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        sys.stderr.write("udp_echo: LISTEN_PID is not this process\n")
        return 2
    n = int(os.environ.get("LISTEN_FDS", "0"))
    socks = {3 + i: socket.socket(fileno=3 + i) for i in range(n)}
    gen = os.environ.get("FUGUE_GENERATION", "?")
    prefix = ("gen %s pid %d: " % (gen, os.getpid())).encode()

    # TERM wakes the poll through this pipe; the handler only notes it.
    rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wfd)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))

    poll = select.poll()
    poll.register(rfd, select.POLLIN)
    if gen not in deaf:
        for fd in socks:
            poll.register(fd, select.POLLIN)
    sd_notify("READY=1")
    print("udp_echo: generation %s serving %d socket%s%s" % (
        gen, n, "" if n == 1 else "s", " (deaf)" if gen in deaf else ""),
        flush=True)
    while not stop:
        for fd, _ in poll.poll():
            if fd == rfd:
                try:
                    os.read(rfd, 64)
                except BlockingIOError:
                    pass
                continue
            if stop:
                break           # read no more: the rest is the next's
            try:
                data, addr = socks[fd].recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                continue        # another worker took it
            if addr:
                answer(socks[fd], data, addr, prefix)
    print("udp_echo: stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
