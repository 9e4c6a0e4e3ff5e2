// The Node side of bench/bench_bindings.sh: the same emits as
// bench_bindings_emit.c, through the Node binding (the object resource
// serialised by each emit, as an application would pass it).
//
//   node bench_bindings.js URL EVENTS
'use strict';
const wh = require('../bindings/node');

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

(async () => {
  const [url, n] = process.argv.slice(2);
  const events = Number(n);
  const reg = wh.openRegistry();
  reg.addEndpoint({ name: 'bench', url });
  const d = new wh.Dispatcher(reg, { allowPrivateNetworks: true, timeoutMs: 30000, queueLimit: 100000000 });
  d.start();
  const ev = {
    resourceType: 'people',
    eventType: 'CREATE',
    resource: PERSON,
    tenantId: 'be461bd7-2d91-41c6-ab29-4389066bcc71',
    userId: 'f9762deb-a115-412d-adf7-cf772807734a',
    resourceId: PERSON.id,
  };
  const start = process.hrtime.bigint();
  for (let i = 0; i < events; i++) d.emit(ev);
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`node: ${events} emits in ${elapsed.toFixed(3)} s`);
  console.log(`RESULT emits_per_s ${(events / elapsed).toFixed(1)}`);
  await d.drain(120000);
  await d.close();
  reg.close();
})();
