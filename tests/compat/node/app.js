// An express application for fugue: serves every listener fugue passes
// (fd 3 .. 3+LISTEN_FDS-1); on TERM stops accepting, finishes the requests
// in flight and exits. GET / answers "worker <slot> pid <pid> gen
// <generation>"; GET /slow?ms=N answers after N ms, and logs when it starts.
'use strict';

const fs = require('fs');
const express = require('express');

const n = Number(process.env.LISTEN_FDS);
if (!(n >= 1) || process.env.LISTEN_PID !== String(process.pid)) {
  console.error('no listening socket on fd 3 (LISTEN_FDS/LISTEN_PID): run me under fugue');
  process.exit(2);
}

const app = express();
app.get('/slow', (req, res) => {
  console.log(`slow request started (pid ${process.pid})`);
  setTimeout(() => res.type('text').send(`slow done pid ${process.pid}\n`),
             Number(req.query.ms) || 0);
});
app.get('/', (req, res) => {
  res.type('text').send(`worker ${process.env.FUGUE_WORKER_ID} pid ${process.pid} ` +
                        `gen ${process.env.FUGUE_GENERATION}\n`);
});

// Readiness: with ready = fd, fugue reads sd_notify's lines from the pipe
// whose write end is FUGUE_READY_FD (Node has no UNIX datagram sockets).
function ready() {
  const fd = Number(process.env.FUGUE_READY_FD);
  if (fd > 0) fs.writeSync(fd, 'READY=1\n');
  console.log(`compat app serving (pid ${process.pid})`);
}

const servers = [];
let listening = 0;
for (let fd = 3; fd < 3 + n; fd++)
  servers.push(app.listen({ fd }, () => { if (++listening === n) ready(); }));

process.on('SIGTERM', () => {
  let open = servers.length;
  for (const s of servers) {
    // close() stops accepting and calls back once its connections ended.
    s.close(() => {
      if (--open === 0) {
        console.log(`compat app drained (pid ${process.pid})`);
        process.exit(0);
      }
    });
    s.closeIdleConnections();
  }
});
