"""An ASGI application for uvicorn under fugue (standard library only): GET
/ answers "worker <slot> pid <pid> gen <generation>"; GET /slow?ms=N answers
after N ms, and logs when it starts."""

import asyncio
import os
import sys
from urllib.parse import parse_qs

SLOT = os.environ.get("FUGUE_WORKER_ID", "?")
GEN = os.environ.get("FUGUE_GENERATION", "?")


def say(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        query = parse_qs(scope.get("query_string", b"").decode())
        say("slow request started (pid %d)" % os.getpid())
        await asyncio.sleep(int(query.get("ms", ["2000"])[0]) / 1000.0)
        body = "slow done pid %d\n" % os.getpid()
    else:
        body = "worker %s pid %d gen %s\n" % (SLOT, os.getpid(), GEN)
    data = body.encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


say("compat app loaded (pid %d)" % os.getpid())
