'use strict';
// Registries, tenant views and dispatchers dropped in every order, by close()
// and by the garbage collector (run with --expose-gc). Prints "ok N" at the end.
//   node --expose-gc drop-order.js URL
const assert = require('node:assert/strict');
const wh = require('..');

const url = process.argv[2];
const perms = (xs) => (xs.length <= 1 ? [xs] : xs.flatMap((x) => perms(xs.filter((y) => y !== x)).map((p) => [x, ...p])));
const tick = () => new Promise((r) => setImmediate(r));

(async () => {
  let runs = 0;
  for (const order of perms(['registry', 'view', 'dispatcher'])) {
    for (const how of ['close', 'gc']) {
      const objs = { registry: wh.openRegistry() };
      objs.registry.addEndpoint({ name: 'rx', url });
      objs.view = objs.registry.tenant('acme');
      objs.view.addEndpoint({ name: 'acme-rx', url });
      objs.dispatcher = new wh.Dispatcher(objs.registry, { allowPrivateNetworks: true });
      objs.dispatcher.start();
      objs.dispatcher.emit({ resourceType: 'people', eventType: 'CREATE', resource: {}, tenantId: 'acme' });
      for (const name of order) {
        const obj = objs[name];
        delete objs[name];
        if (how === 'close') await obj.close();
        global.gc();
        await tick();
        global.gc();
        if (objs.dispatcher) objs.dispatcher.emit({ resourceType: 'people', eventType: 'UPDATE', resource: {} });
        if (objs.view) assert.equal(objs.view.endpoints().length, 1);
        if (objs.registry) assert.equal(objs.registry.endpoints().length, 2);
      }
      runs++;
    }
  }
  // Never-started dispatchers and views, dropped without close: collected and freed.
  for (let i = 0; i < 200; i++) {
    const reg = wh.openRegistry();
    reg.tenant(`t${i}`).addEndpoint({ name: 'x', url });
    new wh.Dispatcher(reg);
  }
  global.gc();
  await tick();
  global.gc();
  console.log(`ok ${runs}`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
