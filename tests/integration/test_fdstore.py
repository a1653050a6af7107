"""systemd's fd store (fugue(8), SYSTEMD): with NOTIFY_SOCKET, every
listener goes to the store (FDSTORE=1, FDNAME=) as it is bound, leaves it
(FDSTOREREMOVE=1) when a reload drops it, and stays there when fugue exits;
a fugue started with the stored sockets (LISTEN_FDS, LISTEN_FDNAMES) serves
on them instead of binding. A receiver on NOTIFY_SOCKET plays systemd's
part, as sd_notify(3) and systemd's FILE_DESCRIPTOR_STORE describe it."""

import os
import signal
import socket

from harness import (FUGUE, check, parse_hello, pid_alive, timeout,
                     wait_until, free_port, http_get)
from loadgen import Load, listen_inodes
from support import FdStore, clean_env, figure, notify_fields


def _ask(port):
    """A request on a new connection, sent; the answer is read later."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return s


def _answer(s):
    """(status, hello) of the answer on s, read to the end; (None, why)
    if there was none."""
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        return None, str(e)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    if not line.startswith("HTTP/1.1 "):
        return None, "no answer (%r)" % data[:80]
    return int(line.split()[1]), parse_hello(body.decode("utf-8", "replace"))


def _removed(store):
    return [notify_fields(m[2]).get("FDNAME") for m in store.snapshot()
            if notify_fields(m[2]).get("FDSTOREREMOVE") == "1"]


@timeout(90)
def test_restart_from_the_fd_store_refuses_nothing(t):
    # fugue is SIGKILLed under load and its workers drain and exit: no
    # process accepts on the port any more, but the store holds the socket,
    # so connections made meanwhile wait in its queue. A new fugue started
    # with the stored socket answers every one of them; no client of the
    # load running across the restart sees a refusal or any other failure.
    gap_connections = 60
    store = FdStore(t)
    conf = t.basic_config(count=2)
    env = clean_env(t, NOTIFY_SOCKET=store.path)
    f = t.start(conf, env=env)
    f.wait_ready(2, 10)
    name = "127.0.0.1_%d" % t.port
    wait_until(lambda: store.names() == [name], 5,
               what="the listener in the store as %s (kept: %s)"
               % (name, store.names()))
    (inode,) = listen_inodes(t.port)
    check(store.inode(name) == inode, "the store holds socket %s, fugue "
          "listens on %s" % (store.inode(name), inode))
    old = f.children()
    with Load(t.port, new_conn=2, keep_alive=2) as load:
        load.wait_progress(10)
        os.kill(f.pid, signal.SIGKILL)
        check(f.wait_exit(5) == -signal.SIGKILL, "fugue exited %s" % f.rc)
        # Its workers get master_death_signal (TERM), drain and exit.
        wait_until(lambda: not any(pid_alive(p) for p in old), 10,
                   what="the old workers %s to exit" % old)
        check(store.names() == [name], "the store holds %s" % store.names())
        gap, refused = [], []
        for _ in range(gap_connections):
            try:
                gap.append(_ask(t.port))
            except OSError as e:
                refused.append(str(e))
        check(not refused, "%d connection(s) failed while no fugue ran: %s"
              % (len(refused), refused[:3]))
        g = store.launch([FUGUE, "-c", conf], "restarted.log", env=env)
        g.wait_log(r"fugue \(pid %d\) info: listening on 127\.0\.0\.1:%d "
                   r"\(systemd's fd store\)$" % (g.pid, t.port), 10)
        g.wait_ready(2, 15)
        answers = [_answer(s) for s in gap]
        load.wait_progress(10)
    load.check_clean(min_ok=10)
    ok = [a for a in answers if a[0] == 200 and a[1]]
    check(len(ok) == gap_connections, "%d of %d connections made while no "
          "fugue ran were answered; the others: %s" % (
              len(ok), gap_connections,
              [a for a in answers if a not in ok][:3]))
    new = set(g.children())
    check({a[1][1] for a in ok} <= new, "answered by pids %s, the new "
          "fugue's workers are %s" % (sorted({a[1][1] for a in ok}),
                                      sorted(new)))
    check(listen_inodes(t.port) == [inode], "the port's socket is now %s, "
          "was %s" % (listen_inodes(t.port), inode))
    figure("fd store restart: %d of %d connections made while no master "
           "ran answered, none refused; load across the restart: %s"
           % (len(ok), gap_connections, load.summary()))
    g.signal(signal.SIGTERM)
    check(g.wait_exit(10) == 0, "the new fugue exited %s" % g.rc)


@timeout(60)
def test_fd_store_follows_reloads_and_stops(t):
    # A reload that adds a listener stores it; one that drops a listener
    # removes it from the store. A stop leaves the store (and the UNIX
    # socket file) alone. A restart whose configuration dropped an address
    # closes that stored socket and removes it from the store, and serves
    # the others, the UNIX one at its old path, from the store.
    store = FdStore(t)
    other = free_port()
    sock = t.path("app.sock")
    conf = t.basic_config(count=1, listen=[("address", "unix:" + sock)])
    text = open(conf).read()
    env = clean_env(t, NOTIFY_SOCKET=store.path)
    f = t.start(conf, env=env)
    f.wait_ready(1, 10)
    tcp, unix = "127.0.0.1_%d" % t.port, "unix_" + sock
    wait_until(lambda: store.names() == [tcp, unix], 5,
               what="both listeners in the store (kept: %s)" % store.names())

    t.write("fugue.conf", text.replace(
        "address = unix:", "address = 127.0.0.1:%d\naddress = unix:" % other))
    f.signal(signal.SIGHUP)
    f.wait_log(r"reload: generation 2 ready", 15)
    added = "127.0.0.1_%d" % other
    wait_until(lambda: store.names() == [tcp, unix, added], 5,
               what="the added listener in the store (kept: %s)"
               % store.names())
    t.write("fugue.conf", text.replace(
        "address = 127.0.0.1:%d\n" % t.port,
        "address = 127.0.0.1:%d\n" % other))
    f.signal(signal.SIGHUP)
    f.wait_log(r"reload: generation 3 ready", 15)
    wait_until(lambda: _removed(store) == [tcp], 10,
               what="FDSTOREREMOVE=1 for %s once its workers left (removed: "
               "%s)" % (tcp, _removed(store)))
    check(store.names() == [unix, added], "the store holds %s"
          % store.names())

    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    check(_removed(store) == [tcp], "removed at the stop: %s"
          % _removed(store)[1:])
    check(os.path.exists(sock), "the stored UNIX socket's file was removed")

    # Restarted with the first configuration: the added port is no longer
    # in it.
    t.write("fugue.conf", text)
    g = store.launch([FUGUE, "-c", conf], "restarted.log", env=env)
    g.wait_ready(1, 10)
    g.wait_log(r"warn: LISTEN_FDS: fd 4 \(127\.0\.0\.1:%d\) from systemd's "
               r"fd store matches no \[listen\] address: closed and removed "
               r"from the store$" % other, 2)
    g.wait_log(r"info: listening on unix:%s \(systemd's fd store\)$"
               % sock.replace(".", r"\."), 2)
    g.wait_log(r"info: listening on 127\.0\.0\.1:%d$" % t.port, 2)
    wait_until(lambda: store.names() == [unix, tcp], 5,
               what="the store to hold %s (kept: %s)" % ([unix, tcp],
                                                          store.names()))
    for target in (t.port, "unix:" + sock):
        st, body = http_get(target, "/")
        check(st == 200 and parse_hello(body), "GET / on %s: %s %r"
              % (target, st, body))
    g.signal(signal.SIGTERM)
    check(g.wait_exit(10) == 0, "the new fugue exited %s" % g.rc)
