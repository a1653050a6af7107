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


def _lines(conf, err):
    return [l for l in err.splitlines() if l.startswith("fugue: " + conf)]


def test_check_refuses_too_many_addresses(t):
    # Past 256 addresses no worker can be given them all (LISTEN_FDS): -t
    # refuses it with one line at the first one too many, as does a start,
    # before anything is bound.
    base = free_port()
    conf = t.write("many.conf", "[listen]\n" + "".join(
        "address = 127.0.0.1:%d\n" % (base + i) for i in range(258)) +
        "[worker]\ncommand = %s serve\n" % WORKER)
    for args in (["-c", conf, "-t"], ["-c", conf]):
        rc, out, err = t.run(args, timeout=20)
        check(rc == 78, "fugue %s with 258 addresses exited %d, want 78"
              % (" ".join(args[2:]), rc))
        want = "fugue: %s:258: [listen] address: more than 256 addresses " \
            "(the most a worker can be given)" % conf
        check(_lines(conf, err) == [want], "want only %r, got %r"
              % (want, err[-500:]))


def test_check_refuses_overlapping_addresses(t):
    # 0.0.0.0:P and 127.0.0.1:P cannot both be bound: a start failed with
    # "address in use" (75); -t says so now. [::]:P is IPv6-only and goes
    # with 0.0.0.0:P.
    port = free_port()
    conf = t.config(name="overlap.conf", listen=[
        ("address", "0.0.0.0:%d" % port), ("address", "[::]:%d" % port),
        ("address", "127.0.0.1:%d" % port)],
        worker={"command": "%s serve" % WORKER})
    for args in (["-c", conf, "-t"], ["-c", conf]):
        rc, out, err = t.run(args)
        check(rc == 78, "fugue %s exited %d, want 78: %s"
              % (" ".join(args[2:]), rc, err))
        want = "fugue: %s:4: [listen] address: 127.0.0.1:%d and 0.0.0.0:%d " \
            "(%s:2) overlap: one cannot be bound while the other listens" \
            % (conf, port, port, conf)
        check(_lines(conf, err) == [want], "want only %r, got %r"
              % (want, err))


def test_check_finds_what_the_start_would(t):
    # -t finds, short of binding, what made a start fail: each with one
    # line "file:line: [section] key: why"; the start refuses the same
    # at once, with the exit code of the step that would have failed.
    port = free_port()
    cases = [
        ({"worker": {"working_dir": t.path("nope")}}, 69,
         r":9: \[worker\] working_dir: %s: No such file or directory$"
         % re.escape(t.path("nope"))),
        ({"worker": {"working_dir": t.path("afile")}}, 69,
         r":9: \[worker\] working_dir: %s: not a directory$"
         % re.escape(t.path("afile"))),
        ({"master": {"log_file": t.path("no", "app.log")}}, 73,
         r":2: \[master\] log_file: %s: No such file or directory$"
         % re.escape(t.path("no", "app.log"))),
        ({"master": {"pid_file": t.path("adir")}}, 73,
         r":2: \[master\] pid_file: %s: not a regular file$"
         % re.escape(t.path("adir"))),
        ({"listen": {"address": "192.0.2.1:%d" % port}}, 71,
         r":3: \[listen\] address: listen 192.0.2.1:%d: Cannot assign "
         r"requested address$" % port),
        ({"listen": {"address": "unix:" + t.path("no", "s.sock")}}, 73,
         r":3: \[listen\] address: listen unix:%s: No such file or "
         r"directory$" % re.escape(t.path("no", "s.sock"))),
    ]
    t.write("afile", "")
    os.mkdir(t.path("adir"))
    for i, (keys, code, want) in enumerate(cases):
        kw = dict(keys, count=1, port=port, name="c%d.conf" % i)
        conf = t.basic_config(**kw)
        rc, out, err = t.run(["-c", conf, "-t"])
        check(rc == 78, "-t exited %d, want 78, for %s: %s" % (rc, keys, err))
        got = _lines(conf, err)
        check(len(got) == 1 and re.search(want, got[0]),
              "-t for %s: want one line like %r, got %r" % (keys, want, err))
        rc, out, err = t.run(["-c", conf], timeout=10)
        check(rc == code, "the start exited %d, want %d, for %s: %s"
              % (rc, code, keys, err))
        check(_lines(conf, err) == got, "the start said %r, -t %r"
              % (err, got))


@needs_root("workers run as another user")
def test_check_runtime_dir_the_workers_cannot_enter(t):
    # ready = notify with user = nobody and a runtime_dir only root may
    # enter ($XDG_RUNTIME_DIR of a root login is 0700): the workers could
    # never reach their notify socket; -t and the start say so at once
    # instead of waiting ready_timeout.
    rdir = t.path("run")
    os.mkdir(rdir, 0o700)
    conf = t.basic_config(count=1, ready="notify",
                          command=t.staged(WORKER) + " serve",
                          master={"runtime_dir": rdir},
                          worker={"user": "nobody"})
    want = r"\[master\] runtime_dir: %s: the workers may not enter it" \
        % re.escape(rdir)
    rc, out, err = t.run(["-c", conf, "-t"])
    check(rc == 78 and re.search(want, err), "-t: %d %r" % (rc, err))
    rc, out, err = t.run(["-c", conf], timeout=15)
    check(rc == 69 and re.search(want, err), "start: %d %r" % (rc, err))
    os.chmod(rdir, 0o711)
    rc, out, err = t.run(["-c", conf, "-t"])
    check(rc == 0, "-t with runtime_dir 0711: %d %r" % (rc, err))
