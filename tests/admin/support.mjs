// What the admin tests share: examples/admin_server started on a fresh store
// with a free port, and a loopback receiver whose answer the test sets.
import { spawn } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Start admin_server with args; resolves to { url, stop() } once it listens.
// stop() ends it with SIGTERM and resolves to its exit code: 0 unless it failed,
// or a sanitizer (ASan, UBSan, TSan builds) reported something.
export function startServer(binary, args, label = 'admin_server') {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label} did not start within 10 s: ${out}${err}`));
    }, 10000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/admin page: (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1],
          stop: () => new Promise((done) => {
            child.once('exit', (code, signal) => done(signal ? 128 : code));
            child.kill('SIGTERM');
          }),
        });
      }
    });
    child.stderr.on('data', (d) => { err += d; process.stderr.write(`[${label}] ${d}`); });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited (${code}) before listening: ${out}${err}`));
    });
  });
}

// A receiver on 127.0.0.1 answering `status` (set it at any time), counting requests.
export function startReceiver() {
  return new Promise((resolve) => {
    const r = { status: 200, requests: [] };
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        r.requests.push({ url: req.url, headers: req.headers, body });
        res.writeHead(r.status, { 'Content-Type': 'text/plain' });
        res.end(r.status < 300 ? 'ok' : 'receiver is down');
      });
    });
    server.listen(0, '127.0.0.1', () => {
      r.url = (p) => `http://127.0.0.1:${server.address().port}${p}`;
      r.stop = () => new Promise((done) => { server.closeAllConnections(); server.close(done); });
      resolve(r);
    });
  });
}

export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
