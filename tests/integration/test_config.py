"""Command line and configuration errors: exit codes and messages."""

import os
import re
import socket

from harness import WORKER, check, free_port, is_root, needs_root, try_get


def _good(t, name="good.conf"):
    return t.basic_config(count=1, name=name)


def test_check_good_config(t):
    conf = _good(t)
    # -t binds nothing: with its port held by someone else, the check
    # still passes (a bind would fail with "in use").
    t.tcp_listener(t.port)
    rc, out, err = t.run(["-c", conf, "-t"])
    check(rc == 0, "fugue -t on a good config exited %d: %s" % (rc, err))
    check("configuration is valid" in out, "fugue -t said %r" % out)


def test_check_bad_config_lists_every_error(t):
    conf = t.write("bad.conf", "\n".join([
        "[listen]",
        "address = 127.0.0.1:%d" % free_port(),
        "[worker]",
        "command = %s serve" % WORKER,
        "count = four",
        "kill_timeout = soon",
        ""]))
    rc, out, err = t.run(["-c", conf, "-t"])
    check(rc == 78, "fugue -t on a bad config exited %d, want 78" % rc)
    lines = [l for l in (out + err).splitlines() if l.strip()]
    l5 = [l for l in lines if "bad.conf:5:" in l]
    l6 = [l for l in lines if "bad.conf:6:" in l]
    check(len(l5) == 1 and "count" in l5[0] and "four" in l5[0],
          "no single error for line 5 (count = four): %s" % lines)
    check(len(l6) == 1 and "kill_timeout" in l6[0] and "soon" in l6[0],
          "no single error for line 6 (kill_timeout = soon): %s" % lines)
    errs = [l for l in lines if re.search(r"bad\.conf:\d+:", l)]
    check(len(errs) == 2, "want exactly 2 error lines, got %d: %s"
          % (len(errs), lines))


def test_bad_config_at_start_exits_78(t):
    conf = t.write("bad.conf", "\n".join([
        "[listen]",
        "address = 127.0.0.1:%d" % free_port(),
        "",
        "[worker]",
        "command = %s serve" % WORKER,
        "count = -1",
        ""]))
    rc, out, err = t.run(["-c", conf])
    check(rc == 78, "fugue exited %d for a bad config, want 78" % rc)
    check(re.search(r"bad\.conf:6: .*count", err),
          "the error does not read 'bad.conf:6: ... count ...': %r" % err)


def test_unknown_key_did_you_mean(t):
    conf = t.write("typo.conf", "\n".join([
        "[listen]",
        "address = 127.0.0.1:%d" % free_port(),
        "[worker]",
        "command = %s serve" % WORKER,
        "cuont = 2",
        ""]))
    rc, out, err = t.run(["-c", conf, "-t"])
    check(rc == 78, "exit %d for an unknown key, want 78" % rc)
    check(re.search(r"typo\.conf:5:.*cuont", err), "error %r" % err)
    check("did you mean" in err and "count" in err,
          "no 'did you mean' count: %r" % err)


def test_unknown_section(t):
    conf = t.write("sect.conf", "\n".join([
        "[listen]",
        "address = 127.0.0.1:%d" % free_port(),
        "[worker]",
        "command = %s serve" % WORKER,
        "[wokrer]",
        "count = 2",
        ""]))
    rc, out, err = t.run(["-c", conf, "-t"])
    check(rc == 78, "exit %d for an unknown section, want 78" % rc)
    check(re.search(r"sect\.conf:[56]:", err), "error %r" % err)


def test_overlong_line_is_an_error(t):
    # inih (Debian) cuts lines at 199 characters silently; fugue must not.
    long_env = "X=" + "a" * 240
    conf = t.write("long.conf", "\n".join([
        "[listen]",
        "address = 127.0.0.1:%d" % free_port(),
        "[worker]",
        "command = %s serve" % WORKER,
        "env = " + long_env,
        "count = nine",
        ""]))
    rc, out, err = t.run(["-c", conf, "-t"])
    check(rc == 78, "exit %d for a 246-character line, want 78" % rc)
    check(re.search(r"long\.conf:5:", err),
          "no error for the over-long line 5: %r" % err)
    check(re.search(r"long\.conf:6:.*count", err),
          "line numbers drift after the long line (want long.conf:6: for "
          "count): %r" % err)


def test_continuation_lines(t):
    # An indented line continues the value before it.
    port = free_port()
    conf = t.write("cont.conf", "\n".join([
        "[listen]",
        "address = 127.0.0.1:%d" % port,
        "[worker]",
        "command = %s" % WORKER,
        "    serve",
        "count = 1",
        "ready = 100ms",
        ""]))
    f = t.start_ready(conf, 1)
    check(try_get(port) is not None,
          "the continued command does not serve")


def test_missing_config_exits_66(t):
    rc, out, err = t.run(["-c", t.path("nope.conf")])
    check(rc == 66, "exit %d for a missing config, want 66" % rc)
    check("nope.conf" in err, "the error does not name the file: %r" % err)
    rc, out, err = t.run(["-c", t.path("nope.conf"), "-t"])
    check(rc in (66, 78), "-t on a missing config exited %d" % rc)


def test_unreadable_config_exits_66(t):
    if is_root():
        # root reads anything; use a directory instead.
        path = t.path("adir.conf")
        os.mkdir(path)
    else:
        path = _good(t, "unreadable.conf")
        os.chmod(path, 0)
    rc, out, err = t.run(["-c", path])
    check(rc == 66, "exit %d for an unreadable config, want 66: %s"
          % (rc, err))


def test_bad_option_exits_64(t):
    conf = _good(t)
    for args in (["--bogus-option"], ["-c"], ["-Z"],
                 ["-c", conf, "-s", "nosuchsignal"], ["-c", conf, "-s"]):
        rc, out, err = t.run(args)
        check(rc == 64, "fugue %s exited %d, want 64" % (" ".join(args), rc))
        check(err.strip(), "fugue %s printed nothing on stderr"
              % " ".join(args))


def test_no_config_no_command_exits_64(t):
    rc, out, err = t.run(["--listen", "127.0.0.1:%d" % free_port()])
    check(rc in (64, 78), "fugue without a command exited %d" % rc)


def test_bad_long_option_value(t):
    rc, out, err = t.run(["--listen", "127.0.0.1:%d" % free_port(),
                          "--workers", "many", "--", WORKER, "serve"])
    check(rc == 78, "--workers many exited %d, want 78: %s" % (rc, err))
    check("many" in err, "the error does not quote the value: %r" % err)


def test_check_missing_command(t):
    conf = t.basic_config(count=1, command="/nonexistent/x serve")
    rc, out, err = t.run(["-c", conf, "-t"])
    check(rc == 78, "-t with a missing command exited %d, want 78" % rc)
    check("/nonexistent/x" in err, "the error does not name the command: %r"
          % err)


@needs_root("the check applies when fugue is started as root")
def test_world_writable_config_refused(t):
    conf = _good(t, "ww.conf")
    os.chmod(conf, 0o666)
    rc, out, err = t.run(["-c", conf, "-t"])
    check(rc == 78, "-t on a world-writable config as root exited %d" % rc)
    rc, out, err = t.run(["-c", conf])
    check(rc == 78, "a world-writable config as root exited %d, want 78" % rc)


def test_relative_config_path(t):
    # A relative -c is resolved against fugue's working directory.
    t.basic_config(count=1, name="rel.conf")
    f = t.start(["-c", "rel.conf"])
    f.wait_ready(1, 10)
