// bench/adapters/server-starter.js - runs examples/hello.js under
// Server::Starter (start_server), for fugue's reload benchmark.
//
// start_server binds the port, runs ONE program per generation and passes the
// socket as SERVER_STARTER_PORT=host:port=fd. To compare like with like (two
// worker processes of the same Node server), this adapter starts two
// examples/hello.js processes, unchanged, with that socket as their fd 3 and
// LISTEN_FDS=1, LISTEN_PID=<their pid> (the convention hello.js expects), and
// forwards start_server's TERM to them: they stop accepting, finish their
// requests and exit, and then so does the adapter.
//
//   start_server --port 127.0.0.1:8080 -- node bench/adapters/server-starter.js [N]
'use strict';

const { spawn } = require('child_process');
const path = require('path');

const spec = process.env.SERVER_STARTER_PORT || '';
const m = /=(\d+)$/.exec(spec.split(';')[0]);
if (!m) {
  console.error('server-starter.js: no SERVER_STARTER_PORT=host:port=fd: run me under start_server');
  process.exit(2);
}
const fd = Number(m[1]);
const count = Number(process.argv[2] || 2);
const hello = path.join(__dirname, '..', '..', 'examples', 'hello.js');
const children = new Set();
let stopping = false;

for (let i = 0; i < count; i++) {
  // sh sets LISTEN_PID to its own pid and execs node, which keeps that pid.
  const child = spawn('/bin/sh', ['-c', 'LISTEN_PID=$$ exec "$0" "$@"', process.execPath, hello], {
    stdio: ['ignore', 'inherit', 'inherit', fd],
    env: Object.assign({}, process.env, {
      LISTEN_FDS: '1', FUGUE_WORKER_ID: String(i),
      SERVER_STARTER_GENERATION: process.env.SERVER_STARTER_GENERATION || '',
    }),
  });
  children.add(child);
  child.on('exit', () => {
    children.delete(child);
    if (children.size === 0) process.exit(0);
    // A worker that dies on its own takes the generation down: start_server
    // then starts a new one, as it does for any server.
    if (!stopping) stop();
  });
}

function stop() {
  if (stopping) return;
  stopping = true;
  for (const c of children) c.kill('SIGTERM');
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('SIGHUP', stop);
