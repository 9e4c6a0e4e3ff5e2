'use strict';
// Helpers of the Node binding's tests: a real HTTP receiver on 127.0.0.1 and
// child processes. Kept outside test/ so that `node --test` does not run them.

const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const PACKAGE = path.resolve(__dirname, '..');

// The product page's person-CREATE event.
const PERSON = {
  marital_status: { name: 'Single adult', id: '6120b81e-221c-11ea-978f-2e728ce88125' },
  date_of_birth: '02/13/2023',
  sex: { name: 'Male', id: 'b149d056-6a9f-46ee-afde-1aec972dbe9f' },
  primary_language: { name: 'English', id: 'f045ef20-221a-11ea-978f-2e728ce88125' },
  last_name: 'Doe',
  hispanic_or_latino: 'no',
  id: 'eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543',
  first_name: 'John',
  highest_education_grade: { name: '12', id: '7772ff4a-221d-11ea-978f-2e728ce88125' },
};
const TENANT = 'be461bd7-2d91-41c6-ab29-4389066bcc71';
const USER = 'f9762deb-a115-412d-adf7-cf772807734a';

function headerPath() {
  return process.env.WH_HEADER || path.join(ROOT, 'include', 'webhook', 'webhook.h');
}

// An HTTP server on 127.0.0.1:<free port> recording every request.
// opts.status: what it answers; opts.hangMs: how long it waits first.
async function receiver(opts = {}) {
  const rx = { requests: [], status: opts.status ?? 200, hangMs: opts.hangMs ?? 0, waiters: [] };
  const sockets = new Set();
  rx.server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const answer = () => {
        rx.requests.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) });
        rx.waiters = rx.waiters.filter((w) => (rx.requests.length >= w.n ? (w.resolve(rx.requests), false) : true));
        res.writeHead(rx.status, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      };
      if (rx.hangMs) setTimeout(answer, rx.hangMs).unref();
      else answer();
    });
  });
  rx.server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve) => rx.server.listen(0, '127.0.0.1', resolve));
  rx.url = `http://127.0.0.1:${rx.server.address().port}/hooks`;
  rx.waitFor = (n, timeoutMs = 10000) =>
    new Promise((resolve, reject) => {
      if (rx.requests.length >= n) return resolve(rx.requests);
      const t = setTimeout(() => reject(new Error(`receiver: ${rx.requests.length} requests, expected ${n}`)), timeoutMs);
      rx.waiters.push({ n, resolve: (r) => (clearTimeout(t), resolve(r)) });
    });
  rx.close = () =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      rx.server.close(() => resolve());
    });
  return rx;
}

// Run a script in a child node process; resolves { code, signal, stdout, stderr }.
function runNode(args, { timeoutMs = 60000, env = {} } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child timed out after ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

module.exports = { PERSON, TENANT, USER, ROOT, PACKAGE, headerPath, receiver, runNode };
