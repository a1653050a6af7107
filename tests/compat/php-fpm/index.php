<?php
// GET answers "worker <slot> pid <pid> gen <generation>"; with ms=N it
// answers after N ms, and logs when it starts.
$pid = getmypid();
if (isset($_GET['ms'])) {
    file_put_contents('php://stderr', "slow request started (pid $pid)\n");
    // A signal cuts usleep() short: go on until the time is up, as a
    // request busy for that long would.
    $end = microtime(true) + (int)$_GET['ms'] / 1000;
    while (($left = $end - microtime(true)) > 0)
        usleep((int)($left * 1e6));
    echo "slow done pid $pid\n";
} else {
    printf("worker %s pid %d gen %s\n", getenv('FUGUE_WORKER_ID'), $pid,
           getenv('FUGUE_GENERATION'));
}
