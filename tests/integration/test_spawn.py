"""What fugue does at each worker's start besides the fork: the step that
failed when it cannot start one."""

import resource
import signal

from harness import check, timeout


@timeout(60)
def test_out_of_fds_names_the_step_that_failed(t):
    # RLIMIT_NOFILE 20 and 12 workers: the pipes of a worker's start run
    # out of fds; the message names the pipe, not the fork that never ran.
    conf = t.basic_config(count=12, worker={"ready_timeout": "50s"})
    f = t.start(conf, preexec=lambda: resource.setrlimit(
        resource.RLIMIT_NOFILE, (20, 20)))
    t.expect_error(r"Too many open files")
    rx = r"fugue \(pid %d\) \w+: worker \d+: (\w+): Too many open files" \
        % f.pid
    steps = [m.group(1) for m in f.wait_log(rx, 15, count=4)]
    check(set(steps) == {"pipe"}, "steps named: %s, want only pipe" % steps)
    f.signal(signal.SIGTERM)
    check(f.wait_exit(15) == 0, "fugue exited %s after TERM" % f.rc)
