'use strict';
// Tenant views through the binding: reg.tenant('acme') has the registry's methods, limited to that tenant.
const test = require('node:test');
const assert = require('node:assert/strict');
const wh = require('..');
const { receiver } = require('../testlib/support');

test('views see only their tenant; events reach the tenant and the platform', async (t) => {
  const rx = await receiver();
  t.after(() => rx.close());
  const reg = wh.openRegistry();
  const acme = reg.tenant('acme');
  const beta = reg.tenant('beta');
  assert.equal(acme.tenantId, 'acme');
  assert.equal(reg.tenantId, null);
  const platform = reg.addEndpoint({ name: 'platform', url: `${rx.url}/platform` });
  const a = acme.addEndpoint({ name: 'crm', url: `${rx.url}/acme`, filters: ['people.*'] });
  const b = beta.addEndpoint({ name: 'crm', url: `${rx.url}/beta` });
  assert.deepEqual(acme.endpoints().map((e) => e.id), [a]);
  assert.equal(acme.endpoint(a).tenant_id, 'acme');
  assert.equal(reg.endpoint(platform).tenant_id, null);
  assert.deepEqual(new Set(reg.endpoints().map((e) => e.id)), new Set([platform, a, b]));
  for (const [view, other] of [[acme, b], [beta, a], [acme, platform]]) {
    assert.throws(() => view.endpoint(other), { code: wh.constants.WH_ENOTFOUND });
    assert.throws(() => view.setEnabled(other, false), { code: wh.constants.WH_ENOTFOUND });
  }
  assert.throws(() => new wh.Dispatcher(acme), { code: wh.constants.WH_EINVAL });
  assert.throws(() => reg.tenant(''), { code: wh.constants.WH_EINVAL });

  const d = new wh.Dispatcher(reg, { allowPrivateNetworks: true });
  const outcomes = {};
  d.on('result', (r) => (outcomes[r.endpointId] = r.outcome));
  d.start();
  const msgId = d.emit({ resourceType: 'people', eventType: 'CREATE', resource: { id: 'p1' }, tenantId: 'acme' });
  await d.drain(10000);
  assert.deepEqual(outcomes, { [a]: 'delivered', [platform]: 'delivered' });
  assert.deepEqual((await rx.waitFor(2)).map((r) => r.url).sort(), ['/hooks/acme', '/hooks/platform']);
  assert.deepEqual(acme.message(msgId).deliveries.map((x) => x.endpoint_id), [a]);
  assert.throws(() => beta.message(msgId), { code: wh.constants.WH_ENOTFOUND });
  await d.close();
  // A view outlives its root.
  reg.close();
  assert.equal(acme.endpoints().length, 1);
  acme.close();
  beta.close();
});

test('a tenant endpoint limit', () => {
  const reg = wh.openRegistry();
  reg.setTenantMaxEndpoints(1);
  const acme = reg.tenant('acme');
  acme.addEndpoint({ name: 'one', url: 'https://example.com/1' });
  assert.throws(() => acme.addEndpoint({ name: 'two', url: 'https://example.com/2' }), { code: wh.constants.WH_EFULL });
  assert.throws(() => acme.setTenantMaxEndpoints(5), { code: wh.constants.WH_EINVAL });
  acme.close();
  reg.close();
});
