'use strict';
// The hazards of issue 12, each as a test: exit without close, close from
// inside a result listener, a throwing listener, objects dropped in any order.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const wh = require('..');
const { receiver, runNode } = require('../testlib/support');

const REPEAT = 5;
const child = (name) => path.join(__dirname, '..', 'testlib', name);

function cleanExit(r, code = 0) {
  assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
  assert.equal(r.code, code, `exit status ${r.code}: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /FATAL|Segmentation|Aborted|core dumped/);
}

for (const mode of ['fall-off', 'process-exit', 'in-flight', 'exit-in-handler']) {
  test(`exit without close: ${mode}, ${REPEAT} times`, async (t) => {
    const rx = await receiver({ hangMs: mode === 'in-flight' ? 3000 : 0 });
    t.after(() => rx.close());
    for (let i = 0; i < REPEAT; i++) cleanExit(await runNode([child('exit-child.js'), mode, rx.url]));
  });
}

test('drain() and close() awaited last in a script finish before the process ends', async (t) => {
  const rx = await receiver();
  t.after(() => rx.close());
  for (let i = 0; i < REPEAT; i++) {
    const r = await runNode([child('exit-child.js'), 'close-at-end', rx.url]);
    cleanExit(r);
    assert.match(r.stdout, /^drained 20\nclosed 20$/m);
  }
});

test('exit without close: an uncaught exception in the main script', async (t) => {
  const rx = await receiver();
  t.after(() => rx.close());
  for (let i = 0; i < REPEAT; i++) {
    const r = await runNode([child('exit-child.js'), 'uncaught', rx.url]);
    cleanExit(r, 1);
    assert.match(r.stderr, /main boom/);
  }
});

test('a throwing result listener without an error listener: an uncaught exception, no crash', async (t) => {
  const rx = await receiver();
  t.after(() => rx.close());
  for (let i = 0; i < REPEAT; i++) {
    const r = await runNode([child('exit-child.js'), 'handler-throws', rx.url]);
    cleanExit(r, 1);
    assert.match(r.stderr, /handler boom/);
  }
});

test('a throwing result listener with an error listener: the dispatcher goes on', async (t) => {
  const rx = await receiver();
  t.after(() => rx.close());
  const reg = wh.openRegistry();
  reg.addEndpoint({ name: 'rx', url: rx.url });
  const d = new wh.Dispatcher(reg, { allowPrivateNetworks: true });
  const errors = [];
  const results = [];
  d.on('error', (e) => errors.push(e));
  d.on('result', (r) => {
    results.push(r);
    throw new Error(`listener failed on ${r.messageId}`);
  });
  d.start();
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push(d.emit({ resourceType: 'people', eventType: 'CREATE', resource: { n: i } }));
  await d.drain(10000);
  assert.deepEqual(new Set(results.map((r) => r.messageId)), new Set(ids));
  assert.equal(errors.length, 5);
  assert.match(errors[0].message, /listener failed/);
  const more = d.emit({ resourceType: 'people', eventType: 'CREATE', resource: {} });
  await d.drain(10000);
  assert.equal(results.at(-1).messageId, more);
  await d.close();
  reg.close();
});

test('close from inside a result listener', async (t) => {
  const rx = await receiver();
  t.after(() => rx.close());
  const reg = wh.openRegistry();
  reg.addEndpoint({ name: 'rx', url: rx.url });
  const d = new wh.Dispatcher(reg, { allowPrivateNetworks: true });
  let closing = null;
  const closed = new Promise((resolve) => d.on('close', resolve));
  d.on('result', () => {
    if (!closing) closing = d.close(5000);
    assert.equal(d.close(), closing); // idempotent: the same promise
  });
  d.start();
  for (let i = 0; i < 5; i++) d.emit({ resourceType: 'people', eventType: 'CREATE', resource: { n: i } });
  await closed;
  await closing;
  assert.equal(d.closed, true);
  assert.throws(() => d.emit({ resourceType: 'people', eventType: 'CREATE' }), { code: wh.constants.WH_ESTATE });
  reg.close();
});

test('objects dropped in every order, by close and by the garbage collector', async (t) => {
  const rx = await receiver();
  t.after(() => rx.close());
  const r = await runNode(['--expose-gc', child('drop-order.js'), rx.url], { timeoutMs: 120000 });
  cleanExit(r);
  assert.match(r.stdout, /^ok 12$/m);
});

test('a dispatcher outlives its closed registry', async (t) => {
  const rx = await receiver();
  t.after(() => rx.close());
  const reg = wh.openRegistry();
  reg.addEndpoint({ name: 'rx', url: rx.url });
  const d = new wh.Dispatcher(reg, { allowPrivateNetworks: true });
  const results = [];
  d.on('result', (r) => results.push(r));
  d.start();
  reg.close();
  const id = d.emit({ resourceType: 'people', eventType: 'CREATE', resource: {} });
  await d.drain(10000);
  assert.deepEqual(results.map((r) => [r.messageId, r.outcome]), [[id, 'delivered']]);
  await d.close();
});
