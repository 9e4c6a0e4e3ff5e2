// docs/openapi.yaml against itself and against every answer of a scripted
// session with examples/admin_server over HTTP.
//
//   node openapi_check.mjs ADMIN_SERVER_BINARY OPENAPI_YAML
//
// 1. The document is checked by a validator of OpenAPI 3.1 documents
//    (@seriousme/openapi-schema-validator, the official JSON schemas).
// 2. A session (create, list, get, patch, rotate, test, failed, recover,
//    message, replay, stats, and errors of every kind the HTTP API can be made
//    to give, on the root and on tenant views) runs against admin_server; every
//    answer's status must be declared for its route in the document, and its
//    body must be valid against the declared schema (Ajv, JSON Schema 2020-12,
//    the dialect of OpenAPI 3.1). A wrong method (405) or an unknown path (404
//    no_route), which the document cannot declare for a route it does not
//    have, must be an Error. Every request the server took must be valid
//    against the request schema the document declares (no drift either way).
// 3. Every operation of the document must have been answered with a 2xx, and
//    every error code of the list below must have been seen.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020 from 'ajv/dist/2020.js';
import { startServer, startReceiver, tempDir, sleep } from './support.mjs';

const [serverBin, specPath] = process.argv.slice(2);
if (!serverBin || !specPath) {
  console.error('usage: node openapi_check.mjs ADMIN_SERVER_BINARY OPENAPI_YAML');
  process.exit(2);
}
let passed = 0;
let failed = 0;
function ok(cond, what) {
  if (cond) {
    passed++;
  } else {
    failed++;
    console.error(`not ok: ${what}`);
  }
  return cond;
}

// ---- 1. the document ------------------------------------------------------------
const spec = YAML.parse(fs.readFileSync(specPath, 'utf8'));
const docCheck = await new Validator().validate(structuredClone(spec));
ok(docCheck.valid, `openapi.yaml is a valid OpenAPI 3.1 document: ${JSON.stringify(docCheck.errors)}`);
ok(spec.openapi.startsWith('3.1'), 'openapi.yaml says OpenAPI 3.1');

// ---- 2. answers against it ---------------------------------------------------------
// The components' schemas as one JSON Schema, so that a response schema can refer to them.
const rewritten = JSON.parse(JSON.stringify(spec).replaceAll('"#/components/schemas/', '"api#/$defs/'));
const ajv = new Ajv2020({ allErrors: true, strict: true });
ajv.addSchema({ $id: 'api', $defs: rewritten.components.schemas });
const errorSchema = ajv.getSchema('api#/$defs/Error');
const compiled = new Map();

const templates = Object.keys(spec.paths).map((t) => ({
  template: t,
  re: new RegExp('^' + t.replace(/\{[^}]+\}/g, '[^/]+') + '$'),
}));

function response(op, status) {
  let r = op.responses[String(status)];
  if (r && r.$ref) r = spec.components.responses[r.$ref.split('/').pop()];
  return r;
}

const covered = new Set();   // "get /endpoints/{id}" answered with a 2xx
const codes = new Set();     // error codes seen

function checkAnswer(method, p, status, text, label) {
  const bare = p.split('?')[0];
  const t = templates.find((x) => x.re.test(bare));
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (e) {
    ok(false, `${label}: the answer is not JSON: ${text.slice(0, 200)}`);
    return;
  }
  if (body && body.error) codes.add(body.error.code);
  const op = t && spec.paths[t.template][method.toLowerCase()];
  if (!op) {
    ok(status === (t ? 405 : 404), `${label}: ${method} ${bare} has no operation, so 404/405, got ${status}`);
    ok(errorSchema(body), `${label}: an Error: ${JSON.stringify(errorSchema.errors)}`);
    ok(body && body.error && body.error.code === 'no_route', `${label}: code no_route`);
    return;
  }
  const key = `${method.toLowerCase()} ${t.template}`;
  const r = response(op, status);
  if (!ok(r, `${label}: status ${status} is declared for ${key}`)) return;
  if (status >= 200 && status < 300) covered.add(key);
  const content = r.content && r.content['application/json'];
  if (!content) {
    ok(text === '', `${label}: ${status} declares no body, got "${text.slice(0, 80)}"`);
    return;
  }
  const schemaKey = `${key} ${status}`;
  if (!compiled.has(schemaKey)) {
    const schema = JSON.parse(JSON.stringify(content.schema).replaceAll('"#/components/schemas/', '"api#/$defs/'));
    compiled.set(schemaKey, ajv.compile(schema));
  }
  const validate = compiled.get(schemaKey);
  ok(validate(body), `${label}: body valid for ${schemaKey}: ${JSON.stringify(validate.errors)} in ${text.slice(0, 300)}`);
}

function checkRequest(method, p, body, label) {
  const t = templates.find((x) => x.re.test(p.split('?')[0]));
  const op = t && spec.paths[t.template][method.toLowerCase()];
  const content = op && op.requestBody && op.requestBody.content['application/json'];
  if (!ok(content, `${label}: ${method} ${p} declares a JSON request body`)) return;
  const key = `request ${method} ${t.template}`;
  if (!compiled.has(key))
    compiled.set(key, ajv.compile(JSON.parse(JSON.stringify(content.schema).replaceAll('"#/components/schemas/', '"api#/$defs/'))));
  const validate = compiled.get(key);
  ok(validate(body), `${label}: the request is valid for ${key}: ${JSON.stringify(validate.errors)}`);
}

// One request: checked against the document, and against what the session expects.
async function call(server, label, method, p, { tenant, body, raw, expect } = {}) {
  const headers = {};
  if (tenant) headers['X-Casebook-Tenant'] = tenant;
  let payload;
  if (raw !== undefined) payload = raw;
  else if (body !== undefined) payload = JSON.stringify(body);
  if (payload !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${server.url}/api${p}`, { method, headers, body: payload });
  const text = await res.text();
  checkAnswer(method, p, res.status, text, label);
  // A request the server took must be one the document describes (no drift the other way).
  if (res.status < 300 && body !== undefined) checkRequest(method, p, body, label);
  if (expect !== undefined)
    ok(res.status === expect, `${label}: expected ${expect}, got ${res.status}: ${text.slice(0, 300)}`);
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  return { status: res.status, data, headers: res.headers };
}

// Wait for the delivery of msg to ep to finish; every answer is checked too.
async function settle(server, msg, ep, tenant) {
  for (let i = 0; i < 150; i++) {
    const r = await call(server, `poll ${msg}`, 'GET', `/messages/${msg}`, { tenant, expect: 200 });
    const d = r.data && r.data.deliveries.find((x) => x.endpoint_id === ep);
    if (d && d.state !== 'pending') return d;
    await sleep(100);
  }
  return null;
}

const rcv = await startReceiver();
const dir = tempDir('wh-openapi-');
const server = await startServer(serverBin, ['--store', `sqlite:${path.join(dir, 'admin.db')}`, '--allow-private',
  '--retry-schedule', '', '--platform-admin', '--tenant-max-endpoints', '2']);
const idle = await startServer(serverBin, ['--store', 'memory:', '--platform-admin', '--no-dispatcher'], 'idle');
try {
  // -- the root (the platform's operator)
  await call(server, 'empty list', 'GET', '/endpoints', { expect: 200 });
  let r = await call(server, 'create', 'POST', '/endpoints', { expect: 201, body: {
    name: 'Audit trail', url: rcv.url('/audit'), description: 'Every event, for the audit',
    filters: ['people.*', 'webhook.TEST'], headers: { 'X-Env': 'test' }, settings: { timeout_ms: 5000 } } });
  const audit = r.data.id;
  ok(r.data.tenant_id === null, 'a root endpoint is the platform\'s');
  await call(server, 'create another', 'POST', '/endpoints', { expect: 201,
    body: { name: 'Warehouse', url: 'https://warehouse.example.com/in', enabled: false } })
    .then((x) => call(server, 'delete', 'DELETE', `/endpoints/${x.data.id}`, { expect: 204 }));
  await call(server, 'name taken', 'POST', '/endpoints', { expect: 409,
    body: { name: 'Audit trail', url: 'https://a.example.com/' } });
  r = await call(server, 'bad url', 'POST', '/endpoints', { expect: 422, body: { name: 'x', url: 'ftp://a.example.com/' } });
  ok(r.data.error.field === 'url', 'a bad URL names the field');
  await call(server, 'missing name', 'POST', '/endpoints', { expect: 422, body: { url: 'https://a.example.com/' } });
  await call(server, 'unknown field', 'POST', '/endpoints', { expect: 422, body: { name: 'x', url: 'https://a.example.com/', colour: 1 } });
  await call(server, 'malformed', 'POST', '/endpoints', { expect: 400, raw: '{"name":' });
  await call(server, 'not an object', 'POST', '/endpoints', { expect: 400, raw: '[]' });
  await call(server, 'too large', 'POST', '/endpoints', { expect: 413, raw: ' '.repeat(1024 * 1024 + 10) });
  await call(server, 'list', 'GET', '/endpoints', { expect: 200 });
  await call(server, 'get', 'GET', `/endpoints/${audit}`, { expect: 200 });
  await call(server, 'get missing', 'GET', '/endpoints/ep_missing', { expect: 404 });
  await call(server, 'query where none is taken', 'GET', '/endpoints?limit=3', { expect: 400 });
  await call(server, 'patch', 'PATCH', `/endpoints/${audit}`, { expect: 200,
    body: { description: null, headers: { 'X-Env': null, 'X-Team': 'audit' }, settings: { rate_limit: 50 } } });
  await call(server, 'patch bad setting', 'PATCH', `/endpoints/${audit}`, { expect: 422, body: { settings: { timeout_ms: 3 } } });
  await call(server, 'patch missing', 'PATCH', '/endpoints/ep_missing', { expect: 404, body: { name: 'x' } });
  await call(server, 'secret', 'GET', `/endpoints/${audit}/secret`, { expect: 200 });
  await call(server, 'rotate', 'POST', `/endpoints/${audit}/secret/rotate`, { expect: 200, body: { grace_seconds: 60 } });
  await call(server, 'rotate bad', 'POST', `/endpoints/${audit}/secret/rotate`, { expect: 422, body: { secret: 'nope' } });
  await call(server, 'wrong method', 'DELETE', `/endpoints/${audit}/secret`, { expect: 405 })
    .then((x) => ok(x.headers.get('allow') === 'GET', 'a 405 has an Allow header'));
  await call(server, 'no route', 'GET', '/nothing/here', { expect: 404 });

  r = await call(server, 'test event', 'POST', `/endpoints/${audit}/test`, { expect: 202 });
  let d = await settle(server, r.data.message_id, audit);
  ok(d && d.state === 'delivered', 'the test event is delivered');
  rcv.status = 500;
  r = await call(server, 'test event to a failing receiver', 'POST', `/endpoints/${audit}/test`, { expect: 202, body: {} });
  const failedMsg = r.data.message_id;
  d = await settle(server, failedMsg, audit);
  ok(d && d.state === 'failed', 'it fails after one attempt');
  r = await call(server, 'failed', 'GET', `/endpoints/${audit}/failed?since=2020-01-01T00:00:00Z&limit=10`, { expect: 200 });
  ok(r.data.length === 1 && r.data[0].message_id === failedMsg, 'the failed delivery is listed');
  await call(server, 'failed bad limit', 'GET', `/endpoints/${audit}/failed?limit=0`, { expect: 400 });
  await call(server, 'failed bad since', 'GET', `/endpoints/${audit}/failed?since=tomorrow`, { expect: 400 });
  await call(server, 'failed missing', 'GET', '/endpoints/ep_missing/failed', { expect: 404 });
  rcv.status = 200;
  r = await call(server, 'replay', 'POST', `/messages/${failedMsg}/replay`, { expect: 202, body: { endpoint_id: audit } });
  ok(r.data.queued === 1, 'one delivery queued');
  d = await settle(server, failedMsg, audit);
  ok(d && d.state === 'delivered', 'the replay is delivered');
  await call(server, 'replay to a missing endpoint', 'POST', `/messages/${failedMsg}/replay`, { expect: 404, body: { endpoint_id: 'ep_missing' } });
  await call(server, 'replay missing', 'POST', '/messages/msg_missing/replay', { expect: 404 });
  await call(server, 'message missing', 'GET', '/messages/msg_missing', { expect: 404 });
  await call(server, 'recover', 'POST', `/endpoints/${audit}/recover`, { expect: 202, body: { since: 0 } });
  await call(server, 'recover bad since', 'POST', `/endpoints/${audit}/recover`, { expect: 422, body: { since: 'soon' } });
  await call(server, 'stats', 'GET', '/stats', { expect: 200 });
  await call(server, 'endpoint stats', 'GET', `/endpoints/${audit}/stats`, { expect: 200 });
  await call(server, 'endpoint stats missing', 'GET', '/endpoints/ep_missing/stats', { expect: 404 });

  // -- a tenant's administrator
  const acme = { tenant: 'acme' };
  r = await call(server, 'view: create', 'POST', '/endpoints', { ...acme, expect: 201,
    body: { name: 'CRM people sync', url: rcv.url('/acme'), filters: ['people.*'] } });
  const mine = r.data.id;
  ok(r.data.tenant_id === 'acme', 'a view\'s endpoint is the tenant\'s');
  await call(server, 'view: second', 'POST', '/endpoints', { ...acme, expect: 201, body: { name: 'Two', url: rcv.url('/two') } });
  await call(server, 'view: over the limit', 'POST', '/endpoints', { ...acme, expect: 409, body: { name: 'Three', url: rcv.url('/3') } })
    .then((x) => ok(x.data.error.code === 'full', 'the tenant is full'));
  r = await call(server, 'view: list', 'GET', '/endpoints', { ...acme, expect: 200 });
  ok(r.data.length === 2 && r.data.every((e) => e.tenant_id === 'acme'), 'a view lists its own only');
  await call(server, 'view: the platform\'s endpoint', 'GET', `/endpoints/${audit}`, { ...acme, expect: 404 });
  await call(server, 'view: patch the platform\'s', 'PATCH', `/endpoints/${audit}`, { ...acme, expect: 404, body: { name: 'x' } });
  await call(server, 'view: proxy refused', 'PATCH', `/endpoints/${mine}`, { ...acme, expect: 422, body: { settings: { proxy: 'http://10.1.1.1:3128' } } });
  await call(server, 'view: patch', 'PATCH', `/endpoints/${mine}`, { ...acme, expect: 200, body: { enabled: false } });
  r = await call(server, 'view: test', 'POST', `/endpoints/${mine}/test`, { ...acme, expect: 202 });
  const acmeMsg = r.data.message_id;
  d = await settle(server, acmeMsg, mine, 'acme');
  ok(d && d.state === 'delivered', 'a test event reaches a disabled endpoint');
  await call(server, 'other view: the message', 'GET', `/messages/${acmeMsg}`, { tenant: 'globex', expect: 404 });
  await call(server, 'root: the message', 'GET', `/messages/${acmeMsg}`, { expect: 200 });
  await call(server, 'view: replay', 'POST', `/messages/${acmeMsg}/replay`, { ...acme, expect: 202 });
  await call(server, 'view: failed', 'GET', `/endpoints/${mine}/failed`, { ...acme, expect: 200 });
  await call(server, 'view: recover', 'POST', `/endpoints/${mine}/recover`, { ...acme, expect: 202, body: { since: '2024-01-01' } });
  await call(server, 'view: secret', 'GET', `/endpoints/${mine}/secret`, { ...acme, expect: 200 });
  await call(server, 'view: endpoint stats', 'GET', `/endpoints/${mine}/stats`, { ...acme, expect: 200 });
  await call(server, 'view: stats are the platform\'s', 'GET', '/stats', { ...acme, expect: 400 });
  await call(server, 'view: delete the platform\'s', 'DELETE', `/endpoints/${audit}`, { ...acme, expect: 404 });

  // -- nothing delivering (a memory store without a dispatcher)
  r = await call(idle, 'idle: create', 'POST', '/endpoints', { expect: 201, body: { name: 'x', url: 'https://x.example.com/' } });
  await call(idle, 'idle: test event', 'POST', `/endpoints/${r.data.id}/test`, { expect: 409 })
    .then((x) => ok(x.data.error.code === 'wrong_state', 'nothing runs to deliver: wrong_state'));
  await call(idle, 'idle: stats', 'GET', '/stats', { expect: 409 });
  await call(idle, 'idle: endpoint stats', 'GET', `/endpoints/${r.data.id}/stats`, { expect: 409 });

  // ---- 3. coverage -------------------------------------------------------------------
  for (const [t, ops] of Object.entries(spec.paths))
    for (const m of Object.keys(ops).filter((k) => k !== 'parameters'))
      ok(covered.has(`${m} ${t}`), `${m.toUpperCase()} ${t} was answered with a 2xx`);
  for (const c of ['bad_request', 'invalid_argument', 'not_found', 'already_exists', 'wrong_state', 'full', 'no_route'])
    ok(codes.has(c), `the error code ${c} was seen`);
  ok(rcv.requests.length >= 4, 'the receiver got the deliveries');
} finally {
  ok((await server.stop()) === 0, 'admin_server ended cleanly (no sanitizer report)');
  ok((await idle.stop()) === 0, 'the idle admin_server ended cleanly');
  await rcv.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(`openapi_check: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
