'use strict';
// Outcomes as 'result' events: from the result queue through the worker, in order, flushed by drain().
const test = require('node:test');
const assert = require('node:assert/strict');
const wh = require('..');
const { receiver } = require('../testlib/support');

async function setup(t, options = {}) {
  const rx = await receiver();
  t.after(() => rx.close());
  const reg = wh.openRegistry();
  t.after(() => reg.close());
  const ep = reg.addEndpoint({ name: 'rx', url: rx.url });
  const d = new wh.Dispatcher(reg, { allowPrivateNetworks: true, ...options });
  t.after(() => d.close());
  return { rx, reg, ep, d };
}

test('every outcome is emitted once, and drain() waits for them', async (t) => {
  const { d, ep } = await setup(t);
  const seen = new Map();
  d.on('result', (r) => seen.set(r.messageId, (seen.get(r.messageId) || 0) + 1));
  d.start();
  const ids = [];
  for (let i = 0; i < 300; i++) ids.push(d.emit({ resourceType: 'people', eventType: 'CREATE', resource: { n: i } }));
  await d.drain(30000);
  assert.equal(seen.size, 300);
  for (const id of ids) assert.equal(seen.get(id), 1, id);
  assert.ok(d.resultFd >= 0);
  void ep;
});

test('results come without drain, as they happen', async (t) => {
  const { d } = await setup(t);
  d.start();
  const id = d.emit({ resourceType: 'people', eventType: 'CREATE', resource: {} });
  const r = await new Promise((resolve) => d.once('result', resolve));
  assert.equal(r.messageId, id);
  assert.equal(r.outcome, 'delivered');
});

test('resultQueue 0: no queue, no worker, no events', async (t) => {
  const { d, rx } = await setup(t, { resultQueue: 0 });
  let n = 0;
  d.on('result', () => n++);
  d.start();
  assert.equal(d.resultFd, -1);
  d.emit({ resourceType: 'people', eventType: 'CREATE', resource: {} });
  await d.drain(10000);
  await rx.waitFor(1);
  assert.equal(n, 0);
});

test('a small result queue: outcomes may be dropped, never duplicated or invented', async (t) => {
  // The worker reads as outcomes come, so how many the queue of 2 drops depends on timing.
  const { d } = await setup(t, { resultQueue: 2, workers: 1, maxPerEndpoint: 1 });
  const got = [];
  d.on('result', (r) => got.push(r.messageId));
  d.start();
  const ids = [];
  for (let i = 0; i < 50; i++) ids.push(d.emit({ resourceType: 'people', eventType: 'CREATE', resource: { n: i } }));
  await d.drain(20000);
  assert.equal(new Set(got).size, got.length);
  for (const id of got) assert.ok(ids.includes(id));
  assert.ok(got.includes(ids.at(-1)), 'the last outcome is never the one dropped');
});

test('stop() then close(): outcomes still queued are emitted before close resolves', async (t) => {
  const { d } = await setup(t);
  const got = [];
  d.on('result', (r) => got.push(r.messageId));
  d.start();
  const ids = [];
  for (let i = 0; i < 20; i++) ids.push(d.emit({ resourceType: 'people', eventType: 'CREATE', resource: { n: i } }));
  await d.drain(10000);
  await d.stop(5000);
  assert.throws(() => d.emit({ resourceType: 'people', eventType: 'CREATE' }), { code: wh.constants.WH_ESTATE });
  await d.close();
  assert.deepEqual(new Set(got), new Set(ids));
});
