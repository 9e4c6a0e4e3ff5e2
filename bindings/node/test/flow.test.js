'use strict';
// The Casebook flow through the Node binding, against a real receiver on 127.0.0.1.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Webhook } = require('standardwebhooks');
const wh = require('..');
const { PERSON, TENANT, USER, receiver } = require('../testlib/support');

function collect(d) {
  const results = [];
  d.on('result', (r) => results.push(r));
  return results;
}

async function flow(t, store) {
  const rx = await receiver();
  t.after(() => rx.close());
  const reg = wh.openRegistry(store);
  t.after(() => reg.close());
  const ep = reg.addEndpoint({
    name: 'CRM people sync',
    url: rx.url,
    description: 'Sends new and changed people to the CRM',
    filters: ['people.*'],
    headers: { 'X-Casebook-Tenant': TENANT },
  });
  const got = reg.endpoint(ep);
  assert.equal(got.name, 'CRM people sync');
  assert.deepEqual(got.filters, ['people.*']);
  assert.deepEqual(got.headers, { 'X-Casebook-Tenant': TENANT });
  assert.deepEqual(reg.endpoints().map((e) => e.id), [ep]);
  const secret = reg.secret(ep);
  assert.match(secret, /^whsec_/);

  const d = new wh.Dispatcher(reg, { workers: 2, allowPrivateNetworks: true, retrySchedule: [1, 1], timeoutMs: 5000 });
  const results = collect(d);
  d.start();
  const msgId = d.emit({
    resourceType: 'people',
    eventType: 'CREATE',
    resource: PERSON,
    tenantId: TENANT,
    userId: USER,
    resourceId: PERSON.id,
    time: new Date(Date.UTC(2024, 2, 26, 18, 53, 16, 818)),
  });
  assert.match(msgId, /^msg_/);
  d.emit({ resourceType: 'cases', eventType: 'CREATE', resource: { id: 'c1' } }); // filtered out
  await d.drain(10000);
  // drain() resolves after the outcomes so far were emitted: no waiting here.
  assert.equal(results.length, 1);
  const r = results[0];
  assert.deepEqual(
    { messageId: r.messageId, endpointId: r.endpointId, outcome: r.outcome, attempt: r.attempt, httpStatus: r.httpStatus, error: r.error },
    { messageId: msgId, endpointId: ep, outcome: 'delivered', attempt: 1, httpStatus: 200, error: null },
  );
  assert.equal(r.nextAttemptAt, null);
  assert.equal(r.endpointDisabled, false);
  const log = reg.message(msgId);
  assert.equal(log.event_type, 'people.CREATE');
  assert.equal(log.deliveries[0].state, 'delivered');
  await d.close(5000);
  assert.equal(d.closed, true);

  const [req] = await rx.waitFor(1);
  assert.equal(req.headers['webhook-id'], msgId);
  assert.equal(req.headers['x-casebook-tenant'], TENANT);
  const expected =
    `{"resource":${JSON.stringify(PERSON)},"tenant_id":"${TENANT}","user_id":"${USER}",` +
    `"resource_id":"${PERSON.id}","resource_type":"people","event_type":"CREATE",` +
    '"event_time":"2024-03-26T18:53:16.818000Z"}';
  assert.equal(req.body.toString(), expected);
  // Signatures: this binding's verify, with any header case and a Map ...
  wh.verify(secret, req.headers, req.body);
  const upper = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toUpperCase(), v]));
  wh.verify(secret, upper, req.body.toString());
  wh.verify(secret, new Map(Object.entries(upper)), req.body);
  // ... and the npm standardwebhooks package's.
  const payload = new Webhook(secret).verify(req.body.toString(), req.headers);
  assert.deepEqual(payload.resource, PERSON);
}

test('Casebook flow, memory store', (t) => flow(t, 'memory:'));
test('Casebook flow, default store', (t) => flow(t, undefined));
test('Casebook flow, SQLite store', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wh-node-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  await flow(t, `sqlite:${path.join(dir, 'webhooks.db')}`);
});

test('emitBatch and a resource given as JSON text', async (t) => {
  const rx = await receiver();
  t.after(() => rx.close());
  const reg = wh.openRegistry();
  reg.addEndpoint({ name: 'all', url: rx.url });
  const d = new wh.Dispatcher(reg, { allowPrivateNetworks: true });
  const results = collect(d);
  d.start();
  const raw = '{"id":"p2","big":12345678901234567890,"f":1.50}';
  const ids = d.emitBatch([
    { resourceType: 'people', eventType: 'UPDATE', resource: raw, resourceId: 'p2' },
    { resourceType: 'people', eventType: 'DELETE', resource: { id: 'p3' } },
  ]);
  assert.equal(new Set(ids).size, 2);
  await d.drain(10000);
  assert.deepEqual(new Set(results.map((r) => r.messageId)), new Set(ids));
  await d.close();
  const byId = Object.fromEntries((await rx.waitFor(2)).map((r) => [r.headers['webhook-id'], r.body.toString()]));
  assert.ok(byId[ids[0]].includes(`"resource":${raw},`), byId[ids[0]]);
  assert.equal(JSON.parse(byId[ids[1]]).event_type, 'DELETE');
  reg.close();
});

test('failures are results, with retries', async (t) => {
  const rx = await receiver({ status: 503 });
  t.after(() => rx.close());
  const reg = wh.openRegistry();
  const ep = reg.addEndpoint({ name: 'failing', url: rx.url });
  const d = new wh.Dispatcher(reg, { allowPrivateNetworks: true, retrySchedule: [0.2], retryJitterPct: 0 });
  const results = collect(d);
  const two = new Promise((resolve) => d.on('result', () => results.length === 2 && resolve()));
  d.start();
  const msgId = d.emit({ resourceType: 'people', eventType: 'CREATE', resource: { id: 'p1' } });
  await two;
  await d.close();
  reg.close();
  assert.deepEqual(
    results.map((r) => [r.messageId, r.endpointId, r.outcome, r.attempt, r.httpStatus]),
    [
      [msgId, ep, 'retrying', 1, 503],
      [msgId, ep, 'failed', 2, 503],
    ],
  );
  assert.ok(results[0].nextAttemptAt instanceof Date);
  assert.ok(results[0].error);
});

test('errors carry code and detail', async () => {
  const reg = wh.openRegistry();
  assert.throws(() => reg.addEndpoint({ name: 'bad', url: 'ftp://example.com/' }), (e) => {
    assert.ok(e instanceof wh.WebhookError);
    assert.equal(e.code, wh.constants.WH_EINVAL);
    assert.equal(e.codeName, 'WH_EINVAL');
    assert.match(e.detail, /url/);
    return true;
  });
  reg.addEndpoint({ name: 'dup', url: 'https://example.com/a' });
  assert.throws(() => reg.addEndpoint({ name: 'dup', url: 'https://example.com/b' }), { code: wh.constants.WH_EEXIST });
  assert.throws(() => reg.endpoint('ep_nope'), { code: wh.constants.WH_ENOTFOUND });
  assert.throws(() => reg.addEndpoint({ name: 'f', url: 'https://example.com/c', filters: ['no spaces'] }), { code: wh.constants.WH_EINVAL });
  assert.deepEqual(reg.endpoints().map((e) => e.name), ['dup']); // all or nothing
  assert.throws(() => reg.addEndpoint({ name: 'nul\0', url: 'https://example.com/d' }), { code: wh.constants.WH_EINVAL });
  const d = new wh.Dispatcher(reg);
  assert.throws(() => d.emit({ resourceType: 'people', eventType: 'CREATE' }), { code: wh.constants.WH_ESTATE });
  assert.throws(() => d.emit({ resourceType: 'people', eventType: 'CREATE', resource: [1] }), { code: wh.constants.WH_EINVAL });
  await assert.rejects(d.drain(100), { code: wh.constants.WH_ESTATE });
  await d.close();
  await d.close(); // idempotent
  assert.throws(() => d.start(), { code: wh.constants.WH_ESTATE });
  assert.throws(() => new wh.Dispatcher(reg, { noSuchOption: 1 }), { code: wh.constants.WH_EINVAL });
  assert.throws(() => new wh.Dispatcher(reg, { workers: 0 }), { code: wh.constants.WH_EINVAL });
  reg.close();
  assert.throws(() => reg.endpoints(), { code: wh.constants.WH_ESTATE });
});

test('drain times out, then completes', async (t) => {
  const rx = await receiver({ hangMs: 2000 });
  t.after(() => rx.close());
  const reg = wh.openRegistry();
  reg.addEndpoint({ name: 'slow', url: rx.url });
  const d = new wh.Dispatcher(reg, { allowPrivateNetworks: true });
  d.start();
  d.emit({ resourceType: 'people', eventType: 'CREATE', resource: {} });
  await assert.rejects(d.drain(300), { code: wh.constants.WH_ETIMEOUT });
  await d.drain(10000);
  await d.close();
  reg.close();
});

test('sign and verify: the Standard Webhooks reference vector', () => {
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const sig = wh.sign(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
  assert.equal(sig, 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  const headers = { 'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek', 'webhook-timestamp': '1614265330', 'webhook-signature': sig };
  wh.verify(secret, headers, '{"test": 2432232314}', { now: 1614265330 });
  assert.throws(() => wh.verify(secret, headers, '{"test": 2432232315}', { now: 1614265330 }), { code: wh.constants.WH_ESIGNATURE });
  assert.throws(() => wh.verify(secret, headers, '{"test": 2432232314}'), { code: wh.constants.WH_ETIMESTAMP });
  assert.throws(() => wh.verify(secret, { 'webhook-id': 'x' }, ''), { code: wh.constants.WH_EINVAL });
  // And against the npm package, both ways.
  const mine = wh.generateSecret();
  const now = new Date();
  const theirs = new Webhook(mine).sign('msg_1', now, '{"a":1}');
  assert.equal(wh.sign(mine, 'msg_1', now, '{"a":1}'), theirs);
  wh.verify(mine, { 'webhook-id': 'msg_1', 'webhook-timestamp': String(Math.floor(now / 1000)), 'webhook-signature': theirs }, '{"a":1}');
});

test('Receiver: the standard scheme, and replays refused', () => {
  const secret = wh.generateSecret();
  const now = Math.floor(Date.now() / 1000);
  const body = '{"type":"people.CREATE"}';
  const headers = { 'Webhook-Id': 'msg_rx1', 'Webhook-Timestamp': String(now), 'Webhook-Signature': wh.sign(secret, 'msg_rx1', now, body) };
  const rx = new wh.Receiver();
  rx.addSecret('standard', secret);
  assert.equal(rx.check(headers, body), 'msg_rx1');
  assert.throws(() => rx.check(headers, body), { code: wh.constants.WH_EEXIST });
  assert.throws(() => rx.check({ ...headers, 'Webhook-Id': 'msg_rx2' }, body), { code: wh.constants.WH_ESIGNATURE });
  assert.throws(() => rx.check(new Map(), body), { code: wh.constants.WH_EINVAL });
  assert.throws(() => rx.addSecret('no-such-scheme', secret), { code: wh.constants.WH_EINVAL });
  rx.close();
  assert.throws(() => rx.check(headers, body), { code: wh.constants.WH_ESTATE });
});
