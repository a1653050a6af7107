"""Rolling reloads: max_surge bounds the new workers a reload runs beyond
count (draining ones included), batch after batch; a batch that fails
rolls the reload back and gives every slot back to the old generation."""

import re
import shlex
import signal
import threading
import time

from harness import WORKER, check, timeout
from loadgen import Load, wait_generation, wait_workers, workers_by_gen


def _conf(t, count=4, mode="serve", command=None, port=None, **kw):
    master = kw.pop("master", {})
    master.setdefault("control_socket", t.path("ctl.sock"))
    worker = dict(kw.pop("worker", {}))
    worker.setdefault("ready_timeout", "10s")
    worker.setdefault("max_surge", "1")
    worker.setdefault("ready_hold", "200ms")
    return t.basic_config(count=count, mode=mode, command=command,
                          ready="notify", port=port, master=master,
                          worker=worker, **kw)


class Sampler:
    """The number of the master's live children, every 10 ms."""

    def __init__(self, pid):
        self.path = "/proc/%d/task/%d/children" % (pid, pid)
        self.most = 0
        self.samples = 0
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_ev.wait(0.01):
            try:
                with open(self.path) as fh:
                    n = len(fh.read().split())
            except OSError:
                return
            self.most = max(self.most, n)
            self.samples += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.thread.join(5)


@timeout(90)
def test_max_surge_one_never_more_than_count_plus_one(t):
    conf = _conf(t)
    f = t.start_ready(conf, 4, timeout=20)
    _conf(t, port=t.port)
    with Load(t.port, new_conn=2, keep_alive=2) as load, \
            Sampler(f.pid) as s:
        load.wait_progress(20)
        rc, out, err = t.run(["-c", conf, "reload"], timeout=60)
        wait_generation(f, 2, 4, timeout=20)
        load.wait_progress(20)
    load.check_clean(min_ok=50)
    check(rc == 0 and out.startswith("ok: generation 2"),
          "reload: %d %r %r" % (rc, out, err))
    check(s.most <= 5, "%d workers alive at once, want at most 5 (count 4 "
          "+ max_surge 1)" % s.most)
    check(s.samples >= 50, "only %d samples" % s.samples)
    batches = re.findall(r"reload: starting 1 worker of generation 2 "
                         r"\((\d) of 4\)", f.log())
    check(batches == ["1", "2", "3", "4"], "batches %s, want 1, 2, 3, 4 of 4"
          % batches)


@timeout(90)
def test_broken_second_batch_rolls_back_to_the_old_generation(t):
    # The new command serves in slot 0 and fails in every other slot: the
    # first batch replaces one old worker, the second fails, and the old
    # generation gets its 4 slots back.
    conf = _conf(t)
    f = t.start_ready(conf, 4, timeout=20)
    script = t.write("half.sh", "#!/bin/sh\n"
                     "[ \"$FUGUE_WORKER_ID\" = 0 ] && exec %s serve\n"
                     "echo 'slot $FUGUE_WORKER_ID: broken' >&2\nexit 1\n"
                     % shlex.quote(WORKER))
    _conf(t, command="/bin/sh " + shlex.quote(script), port=t.port)
    t.expect_error(r"reload failed")
    with Load(t.port, new_conn=2, keep_alive=2) as load:
        load.wait_progress(20)
        rc, out, err = t.run(["-c", conf, "reload"], timeout=60)
        load.wait_progress(20)

        def four_old():
            w = workers_by_gen(f)
            return set(w) == {1} and len(w[1]) == 4
        from harness import wait_until
        wait_until(four_old, 20, what="4 workers of generation 1 again")
        load.wait_progress(20)
    load.check_clean(min_ok=50)
    check(rc == 69 and out.startswith("failed:") and
          "generation 1 keeps serving" in out,
          "reload: %d %r %r" % (rc, out, err))
    check(re.search(r"reload: starting 1 worker of generation 2 \(2 of 4\)",
                    f.log()), "the second batch never started")


@timeout(90)
def test_scale_during_a_rollout_sets_the_count_it_ends_with(t):
    conf = _conf(t, count=2, mode="slow-ready 600")
    f = t.start_ready(conf, 2, timeout=20)
    _conf(t, count=2, mode="slow-ready 600", port=t.port)
    f.signal(signal.SIGHUP)
    f.wait_log(r"reload: starting 1 worker of generation 2 \(1 of 2\)", 10)
    f.signal(signal.SIGTTIN)
    wait_generation(f, 2, 3, timeout=30)
    check(re.search(r"reload: generation 2 ready \(3 workers\)", f.log()),
          "the reload did not end with 3 workers")


@timeout(90)
def test_reload_and_upgrade_during_a_rollout_are_queued(t):
    conf = _conf(t, count=2, mode="slow-ready 500")
    f = t.start_ready(conf, 2, timeout=20)
    pid = f.pid
    f.signal(signal.SIGHUP)
    f.wait_log(r"reload: starting 1 worker of generation 2 \(1 of 2\)", 10)
    f.signal(signal.SIGUSR2)
    f.wait_log(r"upgrade: queued until the current one ends", 10)
    f.wait_log(r"upgrade: generation 3 ready \(2 workers\)", 40)
    wait_generation(f, 3, 2, timeout=30)
    check(f.pid == pid and f.alive(), "the master changed")
    log = f.log()
    check(log.index("reload: generation 2 ready") <
          log.index("upgrade: re-executing"),
          "the upgrade's exec came before the rollout ended")
