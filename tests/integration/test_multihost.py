"""The recipes of docs/multi-host.md, run here.

- Ansible: the playbook of the page, as it is, with Debian's ansible-core,
  against three fugue instances on this host (an inventory of three local
  "hosts", each with its release directory and its hooks leaving and
  rejoining a pretend load balancer): a good release rolls through all
  three with no failed request, a broken one stops at the first host and
  leaves every host serving the release before.
- Kubernetes' stop contract, with fugue as PID 1 of a PID namespace
  (unshare --pid --fork): TERM says "stopping" at once, requests go on
  succeeding for stop_delay, then the drain, and exit 0 within
  stop_delay + kill_timeout; /readyz answers 200 before the TERM and 503
  from it on, while the workers still serve.
- The page's manifests parse, and its fugue configurations name only keys
  fugue knows."""

import json
import os
import re
import shutil
import signal
import subprocess
import time

import harness
from harness import (FUGUE, Skip, check, fail, is_root, timeout, try_get,
                     wait_until)
from loadgen import Load, line_time, status_json
from support import Launched, NotifyListener, clean_env, notify_fields

DOC = os.path.join(harness.ROOT, "docs", "multi-host.md")


def _blocks(lang):
    """The page's fenced code blocks of one language, in order."""
    with open(DOC) as fh:
        text = fh.read()
    return re.findall(r"^```%s\n(.*?)^```$" % re.escape(lang), text,
                      re.S | re.M)


def _playbook():
    (book,) = [b for b in _blocks("yaml") if b.startswith("# deploy.yml")]
    return book


# --------------------------------------------------------------------------
# Ansible

def _ansible_playbook(t):
    """ansible-playbook, installed from Debian's ansible-core when missing
    and we are root; else the test is skipped."""
    exe = shutil.which("ansible-playbook")
    if exe:
        return exe
    if not is_root() or not shutil.which("apt-get"):
        raise Skip("ansible-playbook is missing (Debian: ansible-core); "
                   "installing it needs root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "-qq",
                        "--no-install-recommends", "ansible-core"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=env, timeout=240)
    exe = shutil.which("ansible-playbook")
    if r.returncode != 0 or not exe:
        raise Skip("cannot install ansible-core: %s"
                   % r.stdout.decode("utf-8", "replace")[-300:])
    return exe


# A release: the test worker, with its release name in the environment
# (/inherit shows it); a broken one exits at once.
RELEASE = "#!/bin/sh\nRELEASE=%(name)s exec %(worker)s %(mode)s\n"

# The load balancer's membership log: one "leave HOST" or "join HOST" line
# per hook run, appended under a lock.
LB = r'''#!/bin/sh
exec 9>>"%(log)s.lock"
flock 9
echo "$1 $2 $FUGUE_RESULT" >> "%(log)s"
'''


class Host:
    def __init__(self, t, name, lb):
        self.name = name
        self.dir = t.path(name)
        os.makedirs(os.path.join(self.dir, "releases"))
        for rel, mode in (("v1", "serve"), ("v2", "serve"),
                          ("v3", "crash --code 3")):
            d = os.path.join(self.dir, "releases", rel)
            os.mkdir(d)
            t.write(os.path.join(d, "server"), RELEASE % {
                "name": rel, "worker": t.worker, "mode": mode}, 0o755)
        os.symlink(os.path.join(self.dir, "releases", "v1"),
                   os.path.join(self.dir, "current"))
        self.conf = t.basic_config(
            count=2, name="%s/fugue.conf" % name,
            command=os.path.join(self.dir, "current", "server"),
            master={"control_socket": os.path.join(self.dir, "ctl.sock"),
                    "exec_before_reload": "%s leave %s" % (lb, name),
                    "exec_after_reload": "%s join %s" % (lb, name),
                    "exec_reload_failed": "%s join %s" % (lb, name)},
            worker={"ready_hold": "300ms", "ready_timeout": "10s"})
        self.port = t.port

    def release(self):
        return os.path.basename(os.readlink(os.path.join(self.dir,
                                                         "current")))

    def serving(self, t):
        """(generation, the releases its workers run) from status and
        /inherit."""
        j = status_json(t, self.conf)
        rels = set()
        for _ in range(20):
            r = try_get(self.port, "/inherit")
            if r and r[0] == 200:
                rels.add(json.loads(r[1])["env"].get("RELEASE"))
        return j["generation"], rels


def _run_playbook(t, exe, hosts, release):
    inv = ["[web]"]
    for h in hosts:
        inv.append("%s fugue_conf=%s app_dir=%s" % (h.name, h.conf, h.dir))
    inv += ["", "[web:vars]", "ansible_connection=local",
            "ansible_python_interpreter=/usr/bin/python3", ""]
    t.write("inventory", "\n".join(inv))
    t.write("deploy.yml", _playbook())
    t.write("ansible.cfg", "[defaults]\nretry_files_enabled = False\n")
    bindir = t.path("bin")
    if not os.path.isdir(bindir):
        os.mkdir(bindir)
        os.symlink(t.fugue, os.path.join(bindir, "fugue"))
    env = clean_env(t, PATH=bindir + ":" + os.environ.get("PATH", ""),
                    HOME=t.dir, ANSIBLE_CONFIG=t.path("ansible.cfg"),
                    ANSIBLE_LOCAL_TEMP=t.path("ansible-tmp"),
                    ANSIBLE_REMOTE_TEMP=t.path("ansible-tmp"),
                    ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                    LC_ALL="C.UTF-8")
    p = subprocess.Popen([exe, "-i", t.path("inventory"), t.path("deploy.yml"),
                          "-e", "release=%s" % release],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, cwd=t.dir, env=env,
                         preexec_fn=harness._die_with_runner)
    t.remember(p.pid)
    try:
        out, _ = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        fail("ansible-playbook did not finish: %s" % out.decode()[-1500:])
    with open(t.path("ansible-%s.log" % release), "wb") as fh:
        fh.write(out)
    return p.returncode, out.decode("utf-8", "replace")


@timeout(300)
def test_ansible_rolls_one_host_at_a_time_and_stops_at_a_failure(t):
    exe = _ansible_playbook(t)
    lblog = t.path("lb.log")
    lb = t.write("lb.sh", LB % {"log": lblog}, 0o755)
    hosts = [Host(t, "host%d" % i, lb) for i in (1, 2, 3)]
    fugues = [t.start_ready(h.conf, 2, log="%s.log" % h.name) for h in hosts]
    for h in hosts:
        check(h.serving(t) == (1, {"v1"}), "%s before: %s"
              % (h.name, h.serving(t)))

    # A good release rolls through all three, one at a time, each host
    # leaving the load balancer and back before the next one leaves.
    loads = [Load(h.port, new_conn=1, keep_alive=1) for h in hosts]
    for load in loads:
        load.start()
    try:
        for load in loads:
            load.wait_progress(5)
        rc, out = _run_playbook(t, exe, hosts, "v2")
        for load in loads:
            load.wait_progress(5)
    finally:
        for load in loads:
            load.stop()
    check(rc == 0, "the good deploy failed (%d):\n%s" % (rc, out[-2500:]))
    for load in loads:
        load.check_clean(min_ok=5)
    for h in hosts:
        check(h.release() == "v2" and h.serving(t) == (2, {"v2"}),
              "%s after the good deploy: %s %s" % (h.name, h.release(),
                                                  h.serving(t)))
    with open(lblog) as fh:
        lines = fh.read().split("\n")[:-1]
    want = []
    for h in hosts:
        want += ["leave %s " % h.name, "join %s ok" % h.name]
    check(lines == want, "the load balancer saw %s, want %s" % (lines, want))

    # A broken release: the first host's new workers exit, fugue rolls
    # back and says so, the play stops there; that host's current points
    # back at v2, and the others were never touched.
    before = [f.children() for f in fugues]
    rc, out = _run_playbook(t, exe, hosts, "v3")
    check(rc != 0, "the broken deploy succeeded:\n%s" % out[-2500:])
    check(re.search(r"failed: worker \d \(pid \d+\) of generation 3 exited "
                    r"with status 3", out),
          "the play does not show fugue's answer:\n%s" % out[-2500:])
    check(not re.search(r"host[23]", out.split("PLAY RECAP")[0]),
          "the play went on after host1:\n%s" % out[-2500:])
    with open(lblog) as fh:
        lines = fh.read().split("\n")[:-1]
    check(lines[len(want):] == ["leave host1 ", "join host1 failed"],
          "the load balancer saw %s" % lines[len(want):])
    for h, f, kids in zip(hosts, fugues, before):
        check(h.release() == "v2" and h.serving(t) == (2, {"v2"}),
              "%s after the broken deploy: %s %s" % (h.name, h.release(),
                                                     h.serving(t)))
        if h.name != "host1":
            check(f.children() == kids, "%s's workers changed" % h.name)
            check("upgrade: checking" not in f.log().split(
                "generation 2 ready")[-1], "%s was upgraded again" % h.name)
    t.expect_error(r"upgrade failed: worker \d \(pid \d+\) of generation 3")


# --------------------------------------------------------------------------
# Kubernetes' stop contract: fugue as PID 1

def _nspid(pid):
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    return None


@timeout(60)
def test_pid1_term_is_a_lame_duck_then_a_drain(t):
    if not is_root():
        raise Skip("needs root for unshare --pid; running as uid %d"
                   % os.geteuid())
    unshare = shutil.which("unshare")
    if not unshare:
        raise Skip("unshare is not installed (util-linux)")
    # Workers that ignore TERM: the drain lasts all of kill_timeout, the
    # longest a stop can take.
    delay, kill = 2.0, 1.5
    mport = harness.free_port()
    conf = t.basic_config(count=2, mode="ignore-term", worker={
        "stop_delay": "2s", "kill_timeout": "1500ms"},
        master={"control_socket": t.path("ctl.sock"),
                "metrics": "127.0.0.1:%d" % mport})
    n = NotifyListener(t)
    f = Launched(t, [unshare, "--pid", "--fork", "--mount-proc",
                     "--kill-child", FUGUE, "-c", conf], "unshare.log",
                 env=clean_env(t, NOTIFY_SOCKET=n.path))
    try:
        f.wait_log(r"fugue \(pid 1\) info: ready: 2 workers$", 10)
    except AssertionError:
        if f.poll() is not None and f.log().startswith("unshare:"):
            raise Skip("unshare failed here: %s" % f.log()[-300:])
        raise
    (fo,) = f.children()
    check(_nspid(fo) == 1, "fugue is pid %s in its namespace" % _nspid(fo))
    t.remember(*harness.descendants_of(fo))
    r = harness.http_get(mport, "/readyz")
    check(r and r[0] == 200, "/readyz before the TERM: %r" % (r,))
    with Load(t.port, new_conn=2, keep_alive=2) as load:
        load.wait_progress(10)
        os.kill(fo, signal.SIGTERM)
        # The load balancer's probe fails at once.
        wait_until(lambda: (harness.http_get(mport, "/readyz") or [0])[0]
                   == 503, 2, what="/readyz to answer 503")
        # At once: stopping, to systemd's socket and to `fugue status`.
        wait_until(lambda: any(notify_fields(m[2]).get("STOPPING") == "1"
                               for m in n.snapshot()), 5,
                   what="STOPPING=1")
        check(status_json(t, conf)["phase"] == "stopping",
              "status does not say stopping")
        # Requests go on succeeding through stop_delay.
        load.wait_progress(20)
        drain = f.wait_log(r"^.*Z fugue \(pid 1\) info: stopping 2 workers "
                           r"\(graceful\)$", delay + 5)
    rc = f.wait_exit(delay + kill + 5)
    check(rc == 0, "fugue as PID 1 exited %s" % rc)
    log = f.log()
    t_term = line_time(re.search(r"^.*fugue \(pid 1\) info: got TERM$", log,
                                 re.M).group(0))
    t_drain = line_time(drain[0].group(0))
    t_exit = line_time(re.search(r"^.*fugue \(pid 1\) info: exiting with "
                                 r"status 0$", log, re.M).group(0))
    # The log's clock has millisecond steps, and the timer counts from
    # the loop's time of the TERM, a little before its line: some slack.
    check(t_drain - t_term >= delay - 0.05,
          "the drain began %.3fs after TERM, before stop_delay %.1fs"
          % (t_drain - t_term, delay))
    check(t_exit - t_term <= delay + kill + 1.0,
          "fugue exited %.3fs after TERM; stop_delay + kill_timeout is %.1fs"
          % (t_exit - t_term, delay + kill))
    # Every request that ended before the drain began was answered.
    early = [s for s in load.samples if s.wall + s.latency < t_drain]
    bad = [s for s in early if not s.ok]
    late = [s for s in early if s.ok and s.wall > t_term + delay / 2]
    check(not bad, "requests failed before the drain: %s" % bad[:5])
    check(late, "no request answered in the second half of stop_delay")


# --------------------------------------------------------------------------
# The page itself

PENDING_KEYS = set()

K8S_KEYS = {
    "ConfigMap": {"apiVersion": None, "kind": None,
                  "metadata": {"name": None}, "data": None},
    "Deployment": {
        "apiVersion": None, "kind": None, "metadata": {"name": None},
        "spec": {
            "replicas": None, "selector": {"matchLabels": None},
            "strategy": {"type": None, "rollingUpdate": {
                "maxUnavailable": None, "maxSurge": None}},
            "template": {
                "metadata": {"labels": None},
                "spec": {
                    "terminationGracePeriodSeconds": None,
                    "containers": [{
                        "name": None, "image": None, "command": None,
                        "ports": [{"name": None, "containerPort": None}],
                        "readinessProbe": {
                            "httpGet": {"path": None, "port": None},
                            "periodSeconds": None, "failureThreshold": None},
                        "livenessProbe": {
                            "httpGet": {"path": None, "port": None},
                            "periodSeconds": None, "failureThreshold": None},
                        "volumeMounts": [{"name": None, "mountPath": None,
                                          "subPath": None, "readOnly": None}],
                    }],
                    "volumes": [{"name": None, "configMap": {"name": None}}],
                }}}},
}


def _keys_known(doc, schema, where, bad):
    """Every key of doc is in schema (a subset of the Kubernetes API's
    fields: those the page may use)."""
    if schema is None:
        return
    if isinstance(schema, list):
        check(isinstance(doc, list), "%s: expected a list" % where)
        for i, item in enumerate(doc):
            _keys_known(item, schema[0], "%s[%d]" % (where, i), bad)
        return
    check(isinstance(doc, dict), "%s: expected a mapping" % where)
    for k, v in doc.items():
        if k not in schema:
            bad.append("%s.%s" % (where, k))
        else:
            _keys_known(v, schema[k], "%s.%s" % (where, k), bad)


@timeout(60)
def test_the_pages_manifests_parse_and_name_real_keys(t):
    try:
        import yaml
    except ImportError:
        raise Skip("no PyYAML (Debian: python3-yaml, which ansible-core "
                   "brings)")
    docs = []
    for block in _blocks("yaml"):
        docs += [d for d in yaml.safe_load_all(block) if d is not None]
    kinds = [d.get("kind") for d in docs if isinstance(d, dict)]
    check(kinds == ["ConfigMap", "Deployment"], "Kubernetes objects: %s"
          % kinds)
    bad = []
    for d in docs:
        if isinstance(d, dict):
            _keys_known(d, K8S_KEYS[d["kind"]], d["kind"], bad)
    check(not bad, "keys the page's manifests should not have: %s" % bad)
    (cm, dep) = [d for d in docs if isinstance(d, dict)]
    spec = dep["spec"]["template"]["spec"]
    (play,) = [d for d in docs if isinstance(d, list)]
    check(play[0]["serial"] == 1 and play[0]["max_fail_percentage"] == 0,
          "the playbook: %s" % play[0])

    # Each fugue configuration: the ConfigMap's, the ```ini blocks and the
    # Nomad template's. Only keys fugue knows, valid values; what -t finds
    # missing on this machine (commands, users, directories) is not the
    # page's business.
    confs = [cm["data"]["fugue.conf"]]
    confs += [b for b in _blocks("ini") if "[worker]" in b]
    (hcl,) = _blocks("hcl")
    confs.append(re.search(r"<<EOT\n(.*?)^EOT$", hcl, re.S | re.M).group(1))
    check(len(confs) == 4, "%d fugue configurations on the page" % len(confs))
    for i, text in enumerate(confs):
        path = t.write("page%d.conf" % i, text)
        rc, out, err = t.run(["-c", path, "-t"])
        for line in err.splitlines():
            m = re.match(r"fugue: [^:]+:\d+: \[(\w+)\] (\w+): (.*)$", line)
            check(m, "page configuration %d: %s" % (i, line))
            if m.group(3).startswith("unknown key") and \
                    m.group(2) in PENDING_KEYS:
                continue
            check(m.group(2) in ("command", "user", "working_dir",
                                 "exec_before_reload", "exec_after_reload",
                                 "exec_reload_failed", "pid_file",
                                 "control_socket", "address") and
                  "unknown key" not in m.group(3) and
                  "expected" not in m.group(3),
                  "page configuration %d: %s" % (i, line))
    # The grace period covers stop_delay + kill_timeout.
    conf = cm["data"]["fugue.conf"]
    sd = int(re.search(r"stop_delay = (\d+)s", conf).group(1))
    kt = int(re.search(r"kill_timeout = (\d+)s", conf).group(1))
    check(spec["terminationGracePeriodSeconds"] > sd + kt,
          "terminationGracePeriodSeconds %s, stop_delay + kill_timeout %d"
          % (spec["terminationGracePeriodSeconds"], sd + kt))
    check(re.search(r'kill_signal\s+=\s+"SIGTERM"', hcl) and
          re.search(r"fail_on_error\s+=\s+true", hcl),
          "the Nomad job lost kill_signal or fail_on_error")
