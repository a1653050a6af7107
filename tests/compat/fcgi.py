"""Just enough of a FastCGI client to drive php-fpm (one request per
connection), for the compatibility matrix: request() returns (status, body)
like harness.http_get, and raises OSError or FastCGIError on failure."""

import socket
import struct

VERSION = 1
BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7
RESPONDER = 1
HEADER = struct.Struct("!BBHHBx")


class FastCGIError(Exception):
    pass


def _record(rtype, content, req_id=1):
    pad = (8 - len(content) % 8) % 8
    return HEADER.pack(VERSION, rtype, req_id, len(content), pad) + \
        content + b"\0" * pad


def _pair(name, value):
    out = b""
    for n in (len(name), len(value)):
        out += struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)
    return out + name + value


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise FastCGIError("end of file after %d of %d bytes of a record"
                               % (len(buf), n))
        buf += chunk
    return buf


def connect(target, timeout):
    """A connected socket: target is a port on 127.0.0.1 or "unix:PATH"."""
    if isinstance(target, str) and target.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        addr = target[5:]
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        addr = ("127.0.0.1", target)
    s.settimeout(timeout)
    try:
        s.connect(addr)
    except OSError:
        s.close()
        raise
    return s


def request(target, script, query="", timeout=5.0):
    """GET script (a file path) with query through FastCGI: (status, body)."""
    params = {
        "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET",
        "SCRIPT_FILENAME": script, "SCRIPT_NAME": "/" + script.rsplit("/", 1)[-1],
        "QUERY_STRING": query, "REQUEST_URI": "/?" + query,
        "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "localhost",
        "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1", "CONTENT_LENGTH": "0",
    }
    body = b"".join(_pair(k.encode(), v.encode()) for k, v in params.items())
    s = connect(target, timeout)
    try:
        s.sendall(_record(BEGIN_REQUEST, struct.pack("!HB5x", RESPONDER, 0)) +
                  _record(PARAMS, body) + _record(PARAMS, b"") +
                  _record(STDIN, b""))
        out = b""
        while True:
            _v, rtype, _id, clen, pad = HEADER.unpack(_recv_exact(s, HEADER.size))
            content = _recv_exact(s, clen + pad)[:clen]
            if rtype == STDOUT:
                out += content
            elif rtype == END_REQUEST:
                break
    finally:
        s.close()
    head, sep, text = out.partition(b"\r\n\r\n")
    if not sep:
        raise FastCGIError("no header in the answer: %r" % out[:80])
    status = 200
    for line in head.decode("latin-1").split("\r\n"):
        if line.lower().startswith("status:"):
            status = int(line.split(":", 1)[1].split()[0])
    return status, text.decode("utf-8", "replace")
