// bench/adapters/pm2-worker.js - examples/hello.js as PM2 cluster mode wants it.
//
// PM2 cluster mode runs the script in Node's cluster workers; each calls
// server.listen(port) and the cluster primary (PM2's daemon) owns the socket
// and hands the connections out. The handler is hello.js's, byte for byte.
// `pm2 reload` starts a new worker, waits for it to listen, then sends the old
// one SIGINT: it stops accepting, finishes its requests and exits 0.
//
//   PORT=8080 pm2 start bench/adapters/pm2-worker.js -i 2
'use strict';

const http = require('http');

const id = process.env.NODE_APP_INSTANCE ?? process.env.pm_id ?? '?';
const port = Number(process.env.PORT);
const host = process.env.HOST || '127.0.0.1';
let stopping = false;

const server = http.createServer((req, res) => {
  const body = `Hello from worker ${id} (pid ${process.pid})\n`;
  res.setHeader('Content-Type', 'text/plain');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  if (stopping) res.setHeader('Connection', 'close');
  res.end(body);
});

server.listen(port, host, () => {
  console.log(`worker ${id} (pid ${process.pid}) serving`);
});

function stop() {
  if (stopping) return;
  stopping = true;
  server.close(() => {
    console.log(`worker ${id} (pid ${process.pid}) drained, exiting`);
    process.exit(0);
  });
  server.closeIdleConnections();
}

process.on('SIGINT', stop);
process.on('SIGTERM', stop);
