"""The compatibility matrix as data: one row per real server run under
fugue. tests/compat/run.py tests every row, and the README's table
("Running real servers") is generated from these rows (run.py --table), so
what the README says is what the tests prove.

A row's files are in tests/compat/<app>/ (<name>/ unless the row says), or
in tests/compat/build/ for what make test-compat builds: they are copied into the test's directory, which is the workers'
working_dir; in a file whose name ends in ".in" (written without it), these
words are replaced:

    {listen}   the address as the server spells it: 127.0.0.1:PORT, or
               the socket's path for a UNIX listener
    {bind}     127.0.0.1, or the socket's path
    {port}     the TCP port (80 for a UNIX listener)
    {dir}      the working directory

`limits` are what the server cannot do under fugue. A limit with a `bound`
is a property of the server, asserted as such: no more failed requests
than that. A limit with a `fix` names a change to fugue that is not on this
branch yet: its checks are expected to fail until then, in the way `seen`
(a regular expression) finds in the failure or in fugue's logs; a failure
of another kind fails the matrix, and so does a pass ("limit no longer
holds"), so that the row is corrected when the fix lands (remove the
limit).
"""

from collections import namedtuple

# The checks, in the order they run (run.py's report and --table use it):
#   tcp        GET / on a TCP listener answers 200 from every worker's code
#   procs      each worker is the row's number of processes (it and its own
#              children), no more
#   unix       the same on a UNIX listener (a run of its own)
#   ready      the row's readiness protocol brings the 4 workers up
#   hup        a HUP under load (a new connection per request): failures
#   usr2       a USR2 (fugue re-executes itself) under load: failures
#   slow-hup   a slow request in flight across the HUP: answered in full
#   slow-usr2  the same across the USR2
#   slow-stop  the same across a graceful stop (TERM to fugue)
#   stop       fugue exits 0 and leaves no process behind
#   logs       every line of the log is whole and prefixed
CHECKS = ("tcp", "procs", "unix", "ready", "hup", "usr2", "slow-hup",
          "slow-usr2", "slow-stop", "stop", "logs")

Limit = namedtuple("Limit", "text checks fix seen bound")


def limit(text, checks=(), fix=None, seen=None, bound=None):
    """text: what the README says. checks: the check (or checks) it
    concerns. fix: the pending change to fugue that lifts it, and seen: how
    its failure shows. bound: for hup and usr2, the most failed requests
    each stopping worker may cause in a reload."""
    if isinstance(checks, str):
        checks = (checks,)
    for c in checks:
        assert c in CHECKS, c
    assert (fix is None) == (seen is None), text
    return Limit(text, tuple(checks), fix, seen, bound)


Row = namedtuple("Row", "name title packages programs files command env "
                 "stop_signal ready ready_fallback protocol path slow_path "
                 "body server_lines limits log_marker app processes listen")


def row(name, title, command, packages=(), programs=(), files=(), env=(),
        stop_signal="TERM", ready="notify", ready_fallback="1s",
        protocol="http", path="/", slow_path="/slow?ms={ms}",
        body=r"worker \d+ pid \d+ gen \d+", server_lines=(), limits=(),
        log_marker=r"compat app (?:loaded|serving) \(pid \d+\)", app=None,
        processes=(1, ""), listen=()):
    """processes: (how many processes each worker is, idle: it and its own
    children; what they are)."""
    return Row(name, title, tuple(packages), tuple(programs), tuple(files),
               command, tuple(env), stop_signal, ready, ready_fallback,
               protocol, path, slow_path, body, tuple(server_lines),
               tuple(limits), log_marker, app or name, processes,
               tuple(listen))


ROWS = (
    row("gunicorn", "gunicorn 20.1 (WSGI)",
        packages=["gunicorn"], programs=["gunicorn"], files=["app.py"],
        app="wsgi", command="gunicorn --workers 1 --preload app:app",
        processes=(2, "its arbiter and one worker (`--workers 1`; "
                   "fugue runs the N)"),
        limits=[
            limit("READY=1 comes from the arbiter: `--preload` imports the "
                  "app before it"),
        ]),
    row("uvicorn", "uvicorn 0.17 (ASGI)",
        packages=["python3-uvicorn"], programs=["python3"], files=["app.py"],
        command="python3 -m uvicorn --fd 3 app:app",
        ready="1s",
        limits=[
            limit("serves fd 3 only (one `address`)"),
            limit("no sd_notify: readiness is a delay"),
            limit("when it stops it closes the connections it accepted "
                  "but has not read yet: up to one failed request per "
                  "stopping worker in a reload", checks=("hup", "usr2"),
                  bound=1),
        ]),
    row("uwsgi", "uWSGI 2.0 (WSGI)",
        packages=["uwsgi-core", "uwsgi-plugin-python3"], programs=["uwsgi"],
        files=["app.py"], app="wsgi",
        command="uwsgi --plugin python3 --protocol http --wsgi-file app.py",
        stop_signal="HUP",
        limits=[
            limit("`--protocol http` (else it reads the uwsgi protocol); "
                  "no `--master`: fugue is the master"),
            limit("TERM cuts requests in flight: HUP is its graceful stop"),
        ]),
    row("lighttpd", "lighttpd 1.4",
        packages=["lighttpd"], programs=["lighttpd"],
        files=["lighttpd.conf.in", "index.txt", "slow.cgi"],
        command="lighttpd -D -f lighttpd.conf",
        stop_signal="INT", ready="1s",
        body=r"hello from lighttpd", slow_path="/slow.cgi?ms={ms}",
        server_lines=['server.systemd-socket-activation = "enable"',
                      "`server.bind` and `server.port` the same as "
                      "`address`"],
        log_marker=r"\S+ \S+ \(server\.c\.\d+\) server started "
                   r"\(lighttpd/[\d.]+\)",
        limits=[
            limit("no sd_notify: readiness is a delay"),
        ]),
    row("php-fpm", "PHP-FPM 8.2 (FastCGI)",
        packages=["php-fpm"], programs=["php-fpm8.2"],
        files=["php-fpm.conf.in", "index.php"],
        command="php-fpm8.2 -F -y php-fpm.conf", listen=[("blocking", "yes")],
        env=["FPM_SOCKETS={listen}=3"], stop_signal="QUIT",
        protocol="fastcgi", path="index.php", slow_path="index.php?ms={ms}",
        server_lines=["`listen` the same as `address`",
                      "process_control_timeout = 30s",
                      "error_log = /proc/self/fd/2"],
        log_marker=r"\[[^]]+\] NOTICE: ready to handle connections",
        processes=(2, "its master and `pm.max_children = 1`"),
        limits=[
            limit("FPM_SOCKETS names its listener, not LISTEN_FDS"),
            limit("its children call accept() to wait, and exit at EAGAIN "
                  "(its master starts them again, in a loop): "
                  "`blocking = yes`, and listeners of its own"),
        ]),
    row("go", "Go 1.19, standard library",
        packages=["golang-go"], files=["server"], command="./server"),
    row("node", "Node.js + express 4",
        programs=["node"], files=["app.js", "node_modules"],
        command="node app.js",
        ready="fd",
        limits=[
            limit("no UNIX datagram sockets in core: readiness by the "
                  "FUGUE_READY_FD pipe (`ready = fd`)"),
        ]),
    row("python", "Python http.server",
        programs=["python3"], files=["app.py"],
        command="python3 app.py",
        limits=[
            limit("the listener stays non-blocking: `serve_forever()` polls "
                  "it; a blocking `accept()` would not see TERM"),
            limit("a TERM handler runs only when the main thread runs "
                  "Python code: serve in the main thread, or take TERM with "
                  "`signal.sigwait()`"),
        ]),
)


def by_name(name):
    for r in ROWS:
        if r.name == name:
            return r
    raise KeyError(name)


def pending(r, check):
    """The limit that makes check an expected failure of row r, or None."""
    for lim in r.limits:
        if lim.fix and check in lim.checks:
            return lim
    return None


def bound(r, check):
    """The most failed requests each stopping worker of row r may cause in
    check (0 unless a limit says otherwise)."""
    for lim in r.limits:
        if lim.bound is not None and check in lim.checks:
            return lim.bound
    return 0


def ready_mode(r):
    """The ready = value the matrix runs r with: its own, unless the fix
    that brings it is pending."""
    return r.ready_fallback if pending(r, "ready") else r.ready
