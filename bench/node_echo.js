// node_echo.js: the loopback benchmark's Node peer, tls.createServer with an
// echo (socket.pipe(socket)), Node's defaults otherwise (tickets on).
//   node node_echo.js --key=k1.pem,k2.pem --cert=c1-chain.pem,c2-chain.pem
// Prints "port N" and serves until its stdin is closed.
'use strict';
const fs = require('fs');
const tls = require('tls');

const opts = {};
for (const a of process.argv.slice(2)) {
  const m = /^--(key|cert)=(.*)$/.exec(a);
  if (!m) {
    console.error('usage: node node_echo.js --key=K[,K2] --cert=C[,C2]');
    process.exit(2);
  }
  opts[m[1]] = m[2].split(',').map((f) => fs.readFileSync(f));
}
const server = tls.createServer(opts, (socket) => {
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
server.on('tlsClientError', () => {});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`port ${server.address().port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
