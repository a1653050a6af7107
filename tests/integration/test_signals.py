"""A stop signal that reaches a worker between its fork and its exec is
held, never lost."""

import os
import re
import signal
import time

from harness import check, poll_for, timeout

KILLED = r"killed by signal KILL"


def _count(f, pattern):
    return len(re.findall(pattern, f.log(), re.M))


@timeout(150)
def test_stop_right_after_reload_reaches_new_workers(t):
    # HUP then TERM back to back: the stop signal reaches workers the reload
    # has just forked, some before their exec. Each must stop at once, as
    # its command had not started or on its own stop signal; none may be
    # left running until kill_timeout and killed.
    rounds, kill_timeout = 12, 6.0
    conf = t.basic_config(count=4, ready="200ms",
                          kill_timeout="%gs" % kill_timeout)
    slow, killed, forked = [], 0, 0
    for i in range(rounds):
        f = t.start_ready(conf, 4, log="fugue-%d.log" % i)
        t0 = time.monotonic()
        os.kill(f.pid, signal.SIGHUP), os.kill(f.pid, signal.SIGTERM)
        rc = f.wait_exit(kill_timeout + 10)
        took = time.monotonic() - t0
        check(rc == 0, "round %d: fugue exited %s after TERM" % (i, rc))
        if took >= kill_timeout / 2:
            slow.append(round(took, 1))
        killed += _count(f, KILLED)
        # The reload went as far as forking its workers.
        forked += _count(f, r"fugue \(pid %d\) \w+: reload: starting "
                         r"generation 2" % f.pid) > 0
    check(forked >= rounds // 2, "the reload began before the stop in only "
          "%d of %d rounds: the test proves nothing" % (forked, rounds))
    check(not slow and not killed,
          "%d of %d stops took kill_timeout (%s s), %d workers killed by KILL: "
          "workers just forked lost the stop signal"
          % (len(slow), rounds, slow, killed))


@timeout(150)
def test_scale_down_right_after_scale_up_reaches_new_worker(t):
    # TTIN then TTOU back to back: the new worker gets its stop signal at
    # once, often before its exec; it must end by itself, never by KILL.
    rounds, kill_timeout = 30, 4.0
    conf = t.basic_config(count=1, ready="200ms",
                          kill_timeout="%gs" % kill_timeout)
    f = t.start_ready(conf, 1)
    late = 0
    for i in range(rounds):
        os.kill(f.pid, signal.SIGTTIN), os.kill(f.pid, signal.SIGTTOU)
        f.wait_log(r"fugue \(pid %d\) \w+: workers: \d+ -> \d+$" % f.pid, 5,
                   count=2 * (i + 1))
        # Back to one worker well before kill_timeout, or it was lost.
        if not poll_for(lambda: len(f.children()) == 1, kill_timeout / 3):
            late += 1
    f.wait_children(1, kill_timeout + 10)
    started = _count(f, r"fugue \(pid %d\) \w+: workers: 1 -> 2$" % f.pid)
    killed = _count(f, KILLED)
    check(started >= rounds // 2, "TTIN came first in only %d of %d rounds: "
          "the test proves nothing" % (started, rounds))
    check(not late and not killed,
          "in %d of %d rounds the new worker outlived its stop signal; %d "
          "workers killed by KILL" % (late, rounds, killed))
    check(f.alive(), "fugue exited (status %s)" % f.rc)
