// examples/hello.js - a fugue worker in Node.js (v18+, no dependencies).
//
// Run it under fugue:
//
//     fugue --listen 127.0.0.1:8080 --workers 4 -- node examples/hello.js
//     curl http://127.0.0.1:8080/      ->  Hello from worker 2 (pid 4321)
//
// fugue binds the listening socket once and hands it to every worker as fd 3,
// with LISTEN_FDS=1 and LISTEN_PID=<the worker's pid> (systemd's
// socket-activation convention) and FUGUE_WORKER_ID=<slot>. The server must
// not bind a port itself: `server.listen({ fd: 3 })` serves the shared socket.
// To stop or replace a worker, fugue sends SIGTERM: we stop accepting, let the
// requests in flight finish, and exit 0; new connections wait in the kernel's
// queue for the other workers, so none is refused during a reload.
//
// With `ready = fd` in fugue's configuration, fugue waits for the worker to
// say it is ready: it writes READY=1 (sd_notify's words, one per line) to the
// pipe numbered FUGUE_READY_FD once it listens, so the old generation is
// drained only when this one really serves. Node has no UNIX datagram
// sockets in its core, so this pipe stands in for NOTIFY_SOCKET.
//
// If you start node from a wrapper script, end the script with
// `exec node server.js`: then node *is* the worker process, so LISTEN_PID
// matches its pid, and fugue's signals (SIGTERM to drain, the parent-death
// signal if fugue dies) reach node instead of a shell.
'use strict';

const fs = require('fs');
const http = require('http');

const id = process.env.FUGUE_WORKER_ID ?? '?';

if (Number(process.env.LISTEN_FDS) < 1 ||
    process.env.LISTEN_PID !== String(process.pid)) {
  console.error('hello.js: no listening socket on fd 3 (LISTEN_FDS/LISTEN_PID): ' +
                'run me under fugue');
  process.exit(2);
}

let stopping = false;

const server = http.createServer((req, res) => {
  const body = `Hello from worker ${id} (pid ${process.pid})\n`;
  res.setHeader('Content-Type', 'text/plain');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  // While draining, tell keep-alive clients not to send another request here.
  if (stopping) res.setHeader('Connection', 'close');
  res.end(body);
});

server.listen({ fd: 3 }, () => {
  console.log(`worker ${id} (pid ${process.pid}) serving`);
  if (process.env.FUGUE_READY_FD) {
    fs.writeSync(Number(process.env.FUGUE_READY_FD), 'READY=1\n');
  }
});

process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  // close() stops accepting and calls back once every connection has ended;
  // since Node 19 it also closes idle keep-alive connections at once.
  server.close(() => {
    console.log(`worker ${id} (pid ${process.pid}) drained, exiting`);
    process.exit(0);
  });
  server.closeIdleConnections();
});
