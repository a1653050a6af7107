"""Listeners: UNIX sockets (mode, stale files, refusals), TCP port in use,
and the systemd notify protocol towards fugue's own supervisor."""

import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess

from harness import (Skip, check, collect_ids, fail, free_port, http_get,
                     inherit, needs_root, parse_hello, try_get, wait_until)


def _unix_conf(t, path, count=1, **kw):
    # A UNIX listener alone (no TCP port).
    return t.basic_config(port=0, count=count,
                          listen=[("address", "unix:" + path)] +
                          list(kw.pop("listen", [])), **kw)


def test_unix_socket_serves_with_mode(t):
    path = t.path("app.sock")
    conf = _unix_conf(t, path, count=2, listen=[("socket_mode", "0660")])
    f = t.start_ready(conf, 2)
    st = os.lstat(path)
    check(stat.S_ISSOCK(st.st_mode), "%s is not a socket" % path)
    check(stat.S_IMODE(st.st_mode) == 0o660, "socket mode %o, want 660"
          % stat.S_IMODE(st.st_mode))
    status, body = http_get("unix:" + path, "/")
    check(status == 200 and parse_hello(body), "GET / over UNIX: %d %r"
          % (status, body))
    seen = collect_ids("unix:" + path, [0, 1], test=t)
    check(set(seen) == {0, 1}, "ids %s" % sorted(seen))
    # Nothing else created next to it.
    check(sorted(os.listdir(t.dir)) == sorted(["app.sock", "fugue.conf",
                                               "fugue.log"]),
          "files in the socket's directory: %s" % sorted(os.listdir(t.dir)))
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    check(not os.path.exists(path), "socket file left after exit")


def test_unix_socket_named_by_its_path(t):
    # getsockname() on the worker's fd 3 is the configured path (lighttpd
    # and sd_is_socket_unix() match inherited sockets by it), and so is the
    # control socket's name as its clients see it.
    path = t.path("named.sock")
    ctl = t.path("ctl.sock")
    conf = _unix_conf(t, path, count=1, listen=[("socket_mode", "0600")],
                      master={"control_socket": ctl})
    t.start_ready(conf, 1)
    rep = inherit("unix:" + path)
    names = [e.get("sockname") for e in rep["fds"] if e["fd"] == 3]
    check(names == [path], "getsockname() of fd 3 in the worker: %r, want %r"
          % (names, path))
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.connect(ctl)
        check(c.getpeername() == ctl, "the control socket is named %r, want "
              "%r" % (c.getpeername(), ctl))
    finally:
        c.close()


@needs_root("to make a socket file owned by another user")
def test_unix_stale_socket_of_another_user_refused(t):
    # A stale socket file is replaced only if it is fugue's own (or
    # socket_owner's): not another user's.
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody")
    path = t.path("theirs.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    os.chown(path, nobody.pw_uid, nobody.pw_gid)
    ino = os.lstat(path).st_ino
    f = t.start(_unix_conf(t, path, count=1))
    t.expect_error(r"theirs\.sock")
    check(f.wait_exit(10) == 73, "fugue exited %s, want 73 for another "
          "user's socket file" % f.rc)
    check(os.lstat(path).st_ino == ino, "another user's socket file was "
          "replaced")
    check(re.search(r"theirs\.sock is a socket of uid %d; not replacing it"
                    % nobody.pw_uid, f.log()), "no clear error: %s"
          % f.log()[-300:])
    # socket_owner's own stale file is replaced.
    f = t.start(_unix_conf(t, path, count=1, listen=[
        ("socket_owner", "nobody")]), log="fugue2.log")
    f.wait_ready(1)
    r = try_get("unix:" + path)
    check(r is not None and r[0] == 200, "socket_owner's stale socket file "
          "was not replaced: %r" % (r,))


def test_unix_socket_with_curl(t):
    curl = shutil.which("curl")
    if not curl:
        raise Skip("curl not installed")
    path = t.path("curl.sock")
    conf = _unix_conf(t, path, count=1)
    t.start_ready(conf, 1)
    out = subprocess.run([curl, "-sS", "--max-time", "5", "--unix-socket", path,
                          "http://localhost/"], capture_output=True, text=True,
                         timeout=10)
    check(out.returncode == 0, "curl failed: %s" % out.stderr)
    check(parse_hello(out.stdout), "curl got %r" % out.stdout)


def test_unix_stale_socket_replaced(t):
    path = t.path("stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    s.close()   # the file stays; nobody answers on it
    check(os.path.exists(path), "the stale socket file should exist")
    conf = _unix_conf(t, path, count=1)
    t.start_ready(conf, 1)
    r = try_get("unix:" + path)
    check(r is not None and r[0] == 200, "no answer on the replaced socket: %r"
          % (r,))


def test_unix_regular_file_refused(t):
    path = t.path("file.sock")
    with open(path, "w") as fh:
        fh.write("precious\n")
    conf = _unix_conf(t, path, count=1)
    f = t.start(conf)
    t.expect_error(r".")
    rc = f.wait_exit(10)
    check(rc == 73, "fugue exited %s, want 73 for a regular file at the "
          "socket path" % rc)
    with open(path) as fh:
        check(fh.read() == "precious\n", "the regular file was changed")
    check(path in f.log(), "the error does not name %s" % path)
    check(not f.children(), "workers started")


def test_unix_live_socket_refused(t):
    path = t.path("live.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(5)
    t.sockets.append(s)
    ino = os.lstat(path).st_ino
    conf = _unix_conf(t, path, count=1)
    f = t.start(conf)
    t.expect_error(r".")
    rc = f.wait_exit(10)
    check(rc == 75, "fugue exited %s, want 75 for a socket someone listens on"
          % rc)
    check(os.lstat(path).st_ino == ino, "the live socket file was replaced")
    # The other listener still works.
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(2)
    try:
        c.connect(path)
    except OSError as e:
        fail("the live socket no longer accepts: %s" % e)
    finally:
        c.close()


def test_unix_path_too_long(t):
    d = t.path("d" * 60)
    os.mkdir(d)
    path = os.path.join(d, "s" * 60 + ".sock")
    check(len(path) > 107, "path not long enough")
    conf = _unix_conf(t, path, count=1)
    rc, out, err = t.run(["-c", conf])
    check(rc == 78, "fugue exited %d for a %d-byte socket path, want 78: %s"
          % (rc, len(path), err))


def test_unix_socket_missing_dir(t):
    path = t.path("nodir", "x.sock")
    conf = _unix_conf(t, path, count=1)
    rc, out, err = t.run(["-c", conf])
    check(rc == 73, "fugue exited %d when the socket's directory is "
          "missing, want 73: %s" % (rc, err))


def test_tcp_port_in_use(t):
    port = free_port()
    t.tcp_listener(port)
    conf = t.basic_config(port=port, count=1)
    f = t.start(conf)
    t.expect_error(r".")
    rc = f.wait_exit(10)
    check(rc == 75, "fugue exited %s, want 75 for an address in use" % rc)
    lines = [l for l in f.log_lines() if "127.0.0.1:%d" % port in l]
    check(lines, "no line names 127.0.0.1:%d: %s" % (port, f.log()[-500:]))
    check("in use" in lines[0].lower(), "the reason is not 'in use': %s"
          % lines[0])


def test_second_listener_in_use_binds_nothing(t):
    # All or nothing: every listener is bound before any worker starts, so
    # a second address in use starts no worker. (That the first address
    # is closed again while fugue lives is test_reload.py's
    # test_failed_reload_closes_its_new_listener.)
    busy = free_port()
    t.tcp_listener(busy)
    conf = t.basic_config(count=1, listen=[("address", "127.0.0.1:%d" % busy)])
    f = t.start(conf)
    t.expect_error(r".")
    check(f.wait_exit(10) == 75, "fugue exited %s, want 75" % f.rc)
    log = f.log()
    check("127.0.0.1:%d" % busy in log, "the address in use is not named")
    check(not re.search(r"starting \d+ workers?|worker \d+ \(pid", log),
          "a worker was started though a listener could not be bound: %s"
          % log[-500:])


def test_systemd_notify(t):
    # With NOTIFY_SOCKET, fugue tells its supervisor READY=1 once the first
    # generation is ready, and STOPPING=1 when it stops.
    path = t.path("notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    ns.settimeout(0.1)
    t.sockets.append(ns)
    got = []

    def recv_all():
        while True:
            try:
                got.append(ns.recv(4096).decode("utf-8", "replace"))
            except socket.timeout:
                return
    conf = t.basic_config(count=2)
    f = t.start(conf, env=t.env(NOTIFY_SOCKET=path))
    f.wait_ready(2, 10)
    wait_until(lambda: recv_all() or any("READY=1" in m for m in got), 5,
               what="READY=1 on NOTIFY_SOCKET (got %r)" % got)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(10) == 0, "fugue exited %s" % f.rc)
    recv_all()
    check(any("STOPPING=1" in m for m in got), "no STOPPING=1; got %r" % got)
