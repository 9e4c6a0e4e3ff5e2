// A receiver for bench/bench_bindings.sh: answers 204 to every request, on
// 127.0.0.1:<free port> (printed on its first line), until killed.
'use strict';
const http = require('node:http');

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(204).end());
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
