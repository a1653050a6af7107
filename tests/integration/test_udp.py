"""Datagram listeners (udp:, unixgram:): bound once, passed on fd 3 like
stream listeners, kept across reloads, upgrades and (with systemd's fd
store) restarts; a datagram waiting in the socket's buffer while workers
are swapped is read by a new worker. The worker is tests/udp_echo.py, which
drains on TERM as the worker contract says."""

import os
import re
import shutil
import signal
import socket
import stat
import sys
import threading

from harness import (FUGUE, HERE, Skip, check, free_port, pid_alive, poll_for,
                     timeout, wait_until)
from loadgen import reload_done_re, wait_generation
from support import FdStore, Launched, clean_env, figure

ECHO = os.path.join(os.path.dirname(HERE), "udp_echo.py")
ANSWER = re.compile(rb"^gen (\d+) pid (\d+): (\d+)$")


def _echo_conf(t, address, count=2, deaf=(), name="fugue.conf"):
    command = "%s -S %s%s" % (sys.executable, ECHO,
                              "".join(" --deaf %d" % g for g in deaf))
    return t.basic_config(port=0, count=count, command=command,
                          ready="notify", name=name,
                          listen=[("address", address)])


class Client:
    """One datagram socket sending numbered datagrams to target and
    recording each answer: answers[n] = (generation, pid)."""

    def __init__(self, t, target):
        if isinstance(target, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(t.path("client-%d.sock" % len(t.sockets)))
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.settimeout(0.2)
        t.sockets.append(self.sock)     # closed at cleanup: ends the thread
        self.target = target
        self.sent = 0
        self.answers = {}
        self.odd = []                   # answers not in the echo's format
        self.lock = threading.Lock()
        th = threading.Thread(target=self._recv, daemon=True)
        th.start()
        t.threads.append(th)

    def _recv(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            m = ANSWER.match(data)
            with self.lock:
                if m and int(m.group(3)) not in self.answers:
                    self.answers[int(m.group(3))] = (int(m.group(1)),
                                                     int(m.group(2)))
                else:
                    self.odd.append(data)

    def send(self, n=1):
        for _ in range(n):
            self.sock.sendto(b"%d" % self.sent, self.target)
            self.sent += 1

    def got(self):
        with self.lock:
            return dict(self.answers)

    def run(self, interval=0.002):
        """Send one datagram every interval, in a thread, until halt()."""
        stop = self.stop = threading.Event()

        def loop():
            while not stop.wait(interval):
                self.send()
        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()
        return self

    def halt(self):
        self.stop.set()
        self.thread.join(5)

    def wait_all(self, timeout=10.0):
        """Every datagram sent answered, once; returns the answers."""
        poll_for(lambda: len(self.got()) >= self.sent, timeout)
        got = self.got()
        missing = sorted(set(range(self.sent)) - set(got))
        check(not missing, "%d of %d datagrams unanswered (first: %s); "
              "answered by generations %s" % (
                  len(missing), self.sent, missing[:10],
                  sorted({g for g, _ in got.values()})))
        check(not self.odd, "odd answers: %r" % self.odd[:3])
        return got


def _gens(answers):
    out = {}
    for g, _ in answers.values():
        out[g] = out.get(g, 0) + 1
    return out


@timeout(90)
def test_udp_every_datagram_answered_across_hup_and_usr2(t):
    # A client sends a datagram every 2 ms while fugue reloads (HUP) and
    # upgrades itself (USR2): every datagram gets its answer, from the
    # generation that read it; the socket is the same throughout.
    port = free_port()
    conf = _echo_conf(t, "udp:127.0.0.1:%d" % port)
    f = t.start(conf)
    f.wait_log(r"info: listening on udp:127\.0\.0\.1:%d$" % port, 10)
    f.wait_ready(2, 15)
    c = Client(t, ("127.0.0.1", port)).run()
    wait_until(lambda: len(c.got()) >= 100, 10, what="100 answers")
    f.signal(signal.SIGHUP)
    f.wait_log(reload_done_re(f, 2), 20)
    wait_generation(f, 2, 2)
    n = len(c.got())
    wait_until(lambda: len(c.got()) >= n + 100, 10, what="100 more answers")
    f.signal(signal.SIGUSR2)
    f.wait_log(reload_done_re(f, 3, "upgrade"), 30)
    wait_generation(f, 3, 2)
    n = len(c.got())
    wait_until(lambda: len(c.got()) >= n + 100, 10, what="100 more answers")
    c.halt()
    got = c.wait_all()
    by_gen = _gens(got)
    check(set(by_gen) == {1, 2, 3}, "answers by generation: %s" % by_gen)
    figure("udp across HUP and USR2: %d of %d datagrams answered (by "
           "generation: %s)" % (len(got), c.sent, by_gen))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)


def _rx_queue(port):
    """Bytes waiting in the UDP socket bound to 127.0.0.1:port."""
    want = "0100007F:%04X" % port
    with open("/proc/net/udp") as fh:
        for line in fh.readlines()[1:]:
            f = line.split()
            if f[1] == want:
                return int(f[4].split(":")[1], 16)
    return None


@timeout(90)
def test_datagrams_waiting_in_the_buffer_go_to_the_next_generation(t):
    # Workers that read nothing (--deaf): datagrams wait in the socket's
    # buffer. The next generation, after USR2 and then after HUP, reads and
    # answers every one of them.
    port = free_port()
    target = ("127.0.0.1", port)
    conf = _echo_conf(t, "udp:127.0.0.1:%d" % port, deaf=[1])
    f = t.start(conf)
    f.wait_ready(2, 15)
    c = Client(t, target)
    c.send(50)
    wait_until(lambda: _rx_queue(port), 5, what="datagrams queued")
    f.signal(signal.SIGUSR2)
    f.wait_log(reload_done_re(f, 2, "upgrade"), 30)
    got = c.wait_all()
    check(_gens(got) == {2: 50}, "the 50 datagrams sent to deaf workers "
          "were answered by generations %s" % _gens(got))

    # Generation 3 is deaf too: once generation 2 has drained, nothing
    # reads until the HUP to generation 4.
    _echo_conf(t, "udp:127.0.0.1:%d" % port, deaf=[1, 3])
    f.signal(signal.SIGHUP)
    f.wait_log(reload_done_re(f, 3), 20)
    wait_generation(f, 3, 2)
    c.send(50)
    wait_until(lambda: _rx_queue(port), 5, what="datagrams queued")
    check(len(c.got()) == 50, "deaf workers answered %d datagrams"
          % (len(c.got()) - 50))
    f.signal(signal.SIGHUP)
    f.wait_log(reload_done_re(f, 4), 20)
    got = c.wait_all()
    check(_gens(got) == {2: 50, 4: 50}, "answers by generation: %s"
          % _gens(got))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)


@timeout(40)
def test_udp_port_in_use_exit_75(t):
    # A second fugue on the same UDP port is refused (exit 75): fugue binds
    # UDP without SO_REUSEADDR, which on Linux would let both bind it and
    # split the datagrams between them.
    port = free_port()
    conf = _echo_conf(t, "udp:127.0.0.1:%d" % port, count=1)
    f = t.start(conf)
    f.wait_ready(1, 15)
    g = t.start(conf, log="second.log")
    t.expect_error(r"listen udp:127\.0\.0\.1:%d: Address already in use"
                   % port)
    check(g.wait_exit(10) == 75, "the second fugue exited %s, want 75"
          % g.rc)
    g.wait_log(r"error: listen udp:127\.0\.0\.1:%d: Address already in "
               r"use$" % port, 1)
    c = Client(t, ("127.0.0.1", port))
    c.send(10)
    check(_gens(c.wait_all()) == {1: 10}, "the first fugue does not answer")
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)


@timeout(60)
def test_unixgram_listener(t):
    # unixgram:PATH: a datagram socket at its path, with socket_mode,
    # answering across a reload; its file is removed at exit.
    path = t.path("echo.sock")
    conf = _echo_conf(t, "unixgram:" + path, count=1)
    text = open(conf).read().replace("[listen]\n",
                                     "[listen]\nsocket_mode = 0600\n")
    t.write("fugue.conf", text)
    f = t.start(conf)
    f.wait_ready(1, 15)
    st = os.lstat(path)
    check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600,
          "%s: mode %o" % (path, st.st_mode))
    c = Client(t, path)
    c.send(20)
    wait_until(lambda: len(c.got()) == 20, 10, what="20 answers")
    f.signal(signal.SIGHUP)
    f.wait_log(reload_done_re(f, 2), 20)
    wait_generation(f, 2, 1)
    c.send(20)
    got = c.wait_all()
    check(_gens(got) == {1: 20, 2: 20}, "answers by generation: %s"
          % _gens(got))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    check(not os.path.exists(path), "socket file left after exit")


@timeout(40)
def test_udp_socket_activation(t):
    # ListenDatagram=: systemd-socket-activate --datagram hands fugue a UDP
    # socket, matched to the udp: address; the first datagram, which made
    # it start fugue, is answered.
    sa = shutil.which("systemd-socket-activate")
    if not sa:
        raise Skip("systemd-socket-activate is not installed (Debian: "
                   "systemd)")
    port = free_port()
    conf = _echo_conf(t, "udp:127.0.0.1:%d" % port, count=1)
    f = Launched(t, [sa, "--datagram", "-l", "127.0.0.1:%d" % port, FUGUE,
                     "-c", conf], "activate.log", env=clean_env(t))
    f.wait_log(r"Listening on 127\.0\.0\.1:%d" % port, 10)
    c = Client(t, ("127.0.0.1", port))
    c.send(1)
    f.wait_ready(1, 15)
    f.wait_log(r"fugue \(pid %d\) info: listening on udp:127\.0\.0\.1:%d "
               r"\(socket activation\)" % (f.pid, port), 2)
    c.send(9)
    got = c.wait_all()
    check(_gens(got) == {1: 10}, "answers by generation: %s" % _gens(got))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)


@timeout(60)
def test_udp_datagrams_across_a_restart_from_the_fd_store(t):
    # fugue is SIGKILLed and its workers exit; datagrams sent meanwhile
    # wait in the UDP socket systemd's fd store holds, and the next fugue,
    # started with it, answers all of them (and those sent before). 100
    # datagrams fit the socket's default receive buffer, whatever time the
    # restart takes.
    port = free_port()
    store = FdStore(t)
    conf = _echo_conf(t, "udp:127.0.0.1:%d" % port)
    env = clean_env(t, NOTIFY_SOCKET=store.path)
    f = t.start(conf, env=env)
    f.wait_ready(2, 15)
    name = "udp_127.0.0.1_%d" % port
    wait_until(lambda: store.names() == [name], 5,
               what="%s in the store (kept: %s)" % (name, store.names()))
    c = Client(t, ("127.0.0.1", port)).run()
    wait_until(lambda: len(c.got()) >= 100, 10, what="100 answers")
    old = f.children()
    os.kill(f.pid, signal.SIGKILL)
    f.wait_exit(5)
    wait_until(lambda: not any(pid_alive(p) for p in old), 10,
               what="the old workers %s to exit" % old)
    c.halt()
    before = c.sent
    c.send(100)
    g = store.launch([FUGUE, "-c", conf], "restarted.log", env=env)
    g.wait_ready(2, 15)
    c.run()
    n = len(c.got())
    wait_until(lambda: len(c.got()) >= n + 100, 10, what="100 more answers")
    c.halt()
    got = c.wait_all()
    gap = sum(1 for k in got if before <= k < before + 100)
    figure("udp across a restart from the fd store: %d of %d datagrams "
           "answered, %d of them sent while no master ran"
           % (len(got), c.sent, gap))
    g.signal(signal.SIGTERM)
    check(g.wait_exit(10) == 0, "the new fugue exited %s" % g.rc)
