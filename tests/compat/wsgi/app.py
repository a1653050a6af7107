"""A WSGI application for gunicorn and uWSGI under fugue (standard library
only): GET / answers "worker <slot> pid <pid> gen <generation>"; GET
/slow?ms=N answers after N ms, and logs when it starts."""

import os
import sys
import time
from urllib.parse import parse_qs

SLOT = os.environ.get("FUGUE_WORKER_ID", "?")
GEN = os.environ.get("FUGUE_GENERATION", "?")


def say(line):
    # One write per line: fugue logs whole lines from the worker's pipe.
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":
        ms = int(parse_qs(environ.get("QUERY_STRING", "")).get("ms", ["2000"])[0])
        say("slow request started (pid %d)" % os.getpid())
        time.sleep(ms / 1000.0)
        body = "slow done pid %d\n" % os.getpid()
    else:
        body = "worker %s pid %d gen %s\n" % (SLOT, os.getpid(), GEN)
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(data)))])
    return [data]


application = app
say("compat app loaded (pid %d)" % os.getpid())
