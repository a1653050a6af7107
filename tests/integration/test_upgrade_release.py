"""An upgrade from the previous release: its fugue, built from git history,
serves 4 workers under load; the current build is installed over it and
USR2 re-executes it in place. The new image adopts the old one's state
(versioned) and workers, replaces them with a new generation, fails no
request, and stops cleanly on TERM.

The previous release is the newest release tag (v*) reachable from HEAD
whose Makefile VERSION differs from the working tree's; without one, the
newest commit whose VERSION differs. While there is none (no release since the version
was set), it is FUGUE_PREV_REV if set, else HEAD: the committed tree, same
version. A checkout without git history is skipped."""

import os
import re
import shutil
import signal
import subprocess

from harness import (FUGUE, ROOT, Skip, check, fail, poll_for, proc_stat,
                     timeout)
from loadgen import (Load, exe_inode, install_binary,
                     reload_done_re, start_binary, status_json,
                     wait_generation, wait_reaped, workers_by_gen)

VERSION = re.compile(r"^VERSION\s*[:?]?=\s*(\S+)", re.M)


def _git(*args):
    r = subprocess.run(["git", "-c", "safe.directory=" + ROOT, "-C", ROOT]
                       + list(args), capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        fail("git %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def _version(makefile_text):
    m = VERSION.search(makefile_text)
    return m and m.group(1)


def _previous_release():
    """(commit, how it was chosen, whether its VERSION differs)."""
    if not shutil.which("git"):
        raise Skip("no git to find the previous release with")
    r = subprocess.run(["git", "-c", "safe.directory=" + ROOT, "-C", ROOT,
                        "rev-parse", "--show-toplevel"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or \
            os.path.realpath(r.stdout.strip()) != os.path.realpath(ROOT):
        raise Skip("%s is not a git checkout (%s): no previous release to "
                   "build" % (ROOT, r.stderr.strip() or r.stdout.strip()))
    with open(os.path.join(ROOT, "Makefile")) as fh:
        current = _version(fh.read())
    check(current, "no VERSION line in the Makefile")
    for tag in _git("tag", "--merged", "HEAD", "--list", "v*",
                    "--sort=-v:refname").split():
        v = _version(_git("show", tag + ":Makefile"))
        if v and v != current:
            rev = _git("rev-parse", tag + "^{commit}").strip()
            return rev, "tag %s, version %s, ours %s" % (tag, v, current), \
                True
    # Only commits that touch the Makefile can change VERSION: walk them,
    # newest first, to the first with another VERSION; the newest commit
    # with that one is then the parent of the last commit seen with ours.
    newer = None
    for rev in _git("rev-list", "--first-parent", "HEAD", "--",
                    "Makefile").split():
        v = _version(_git("show", rev + ":Makefile"))
        if v is None:
            break           # older than versioning itself
        if v != current:
            rev = _git("rev-parse", newer + "^" if newer else "HEAD").strip()
            return rev, "version %s, ours %s" % (v, current), True
        newer = rev
    rev = os.environ.get("FUGUE_PREV_REV") or "HEAD"
    return (_git("rev-parse", "--verify", rev + "^{commit}").strip(),
            "%s, version %s like ours" % (rev, current), False)


def _run(argv, cwd, env=None, limit=120):
    """Run argv in its own process group, killed whole if the test ends
    first; returns (status, output)."""
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=limit)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    return p.returncode, out.decode("utf-8", "replace")


def _build_release(t, rev):
    """The fugue binary of commit rev, built in t's directory."""
    tree = t.path("release")
    os.makedirs(tree)
    tar = t.path("release.tar")
    _git("archive", "-o", tar, rev)
    rc, out = _run(["tar", "-x", "-f", tar, "-C", tree], t.dir)
    check(rc == 0, "tar -x of %s: %s" % (rev, out))
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    rc, out = _run(["make", "-j2", "fugue"], tree, env=env)
    check(rc == 0, "make fugue of %s exited %d: %s" % (rev, rc, out[-2000:]))
    return os.path.join(tree, "fugue")


def _fugue_v(path):
    rc, out = _run([path, "-V"], "/", limit=10)
    check(rc == 0, "%s -V exited %d: %s" % (path, rc, out))
    return out.strip()


@timeout(180)
def test_upgrade_from_previous_release(t):
    rev, how, bumped = _previous_release()
    what = "the release at %s (%s)" % (rev[:12], how)
    old_build = _build_release(t, rev)
    os.makedirs(t.path("bin"))
    binary = t.path("bin", "fugue")
    old_ino = install_binary(old_build, binary)
    old_v, new_v = _fugue_v(binary), _fugue_v(FUGUE)
    if bumped:
        check(old_v != new_v, "%s: -V says %r, like the current build"
              % (what, old_v))

    conf = t.basic_config(count=4, ready="150ms",
                          master={"control_socket": t.path("ctl.sock")})
    f = start_binary(t, binary, ["-c", conf])
    f.wait_ready(4, 20)
    start = proc_stat(f.pid)[4]
    check(exe_inode(f.pid) == old_ino, "fugue does not run %s" % what)
    old = workers_by_gen(f)
    check(list(old) == [1] and len(old[1]) == 4,
          "%s started workers %s, want 4 of generation 1" % (what, old))

    with Load(t.port, new_conn=2, keep_alive=2) as load:
        load.wait_progress(20)
        new_ino = install_binary(FUGUE, binary)
        f.signal(signal.SIGUSR2)
        f.wait_log(r"fugue \(pid %d\) info: upgrade: adopted 4 workers of "
                   r"generation 1" % f.pid, 60)
        f.wait_log(reload_done_re(f, 2, "upgrade"), 30)
        new = wait_generation(f, 2, 4)
        load.wait_progress(20)
    load.check_clean(min_ok=20)

    check(f.alive() and proc_stat(f.pid)[4] == start,
          "the master is not the same process after upgrading from %s" % what)
    check(exe_inode(f.pid) == new_ino and
          os.readlink("/proc/%d/exe" % f.pid) == binary,
          "/proc/%d/exe -> %s, not the new %s" % (
              f.pid, os.readlink("/proc/%d/exe" % f.pid), binary))
    running_v = _fugue_v("/proc/%d/exe" % f.pid)
    check(running_v == new_v, "the running binary says %r, the current "
          "build %r" % (running_v, new_v))
    check(not set(new) & set(old[1]), "generation 2 reuses old pids: %s %s"
          % (new, old[1]))
    # Each old worker was drained (exit 0) and reaped by the new image:
    # it was adopted, not left behind or killed.
    wait_reaped(f, old[1], 20)
    log = f.log()
    adopted_at = log.index("upgrade: adopted 4 workers")
    for p in old[1]:
        m = re.search(r"worker \d+ \(pid %d\) exited with status 0" % p, log)
        check(m and m.start() > adopted_at, "old worker %d was not drained "
              "by the new image: %s" % (p, [line for line in log.splitlines()
                                             if "(pid %d)" % p in line]))
    st = status_json(t, conf)
    check(st["pid"] == f.pid and st["generation"] == 2 and
          sorted(w["pid"] for w in st["workers"]) == new and
          all(w["generation"] == 2 for w in st["workers"]),
          "status after the upgrade: %s" % st)

    f.signal(signal.SIGTERM)
    check(f.wait_exit(20) == 0, "fugue exited %s after TERM" % f.rc)
    check(poll_for(lambda: not t.leftover(), 10),
          "left running after TERM: %s" % t.leftover())
