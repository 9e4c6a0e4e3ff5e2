#!/usr/bin/env node
// The Casebook flow from Node.js: an administrator registers an outgoing
// webhook, the application emits the person-CREATE event of the product page,
// and a receiver (here in the same process, on 127.0.0.1) shows what it got
// and checks the signature, as the receiving system would. Then the outcome
// and the attempt log.
//
//   node examples/casebook.js [STORE]      STORE: "memory:" (default), "sqlite:PATH", ...
//
// Needs the libwebhook package (bindings/node) and libwebhook.so.1 (installed,
// or LIBWEBHOOK_PATH=build/lib).
'use strict';
const http = require('node:http');
const wh = require('libwebhook');

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

async function main() {
  const store = process.argv[2] || 'memory:';
  const tally = { received: 0, verified: 0 };
  let secret = null; // shared with the receiver out of band

  // The receiving system: verifies each request with the secret it was given.
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let verdict = "verified with the endpoint's secret";
      try {
        wh.verify(secret, req.headers, body);
        tally.verified++;
      } catch (e) {
        verdict = `REJECTED: ${e.message}`;
      }
      tally.received++;
      console.log(`\n--- receiver: ${req.method} ${req.url}, ${body.length} bytes`);
      for (const name of ['content-type', 'webhook-id', 'webhook-timestamp', 'webhook-signature', 'x-casebook-tenant'])
        console.log(`${(name + ':').padEnd(19)}${req.headers[name]}`);
      console.log(`${'body:'.padEnd(19)}${body}`);
      console.log(`${'signature:'.padEnd(19)}${verdict}`);
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/casebook`;

  const reg = wh.openRegistry(store);
  // The admin screen: name, endpoint URL, description; people events only.
  const ep = reg.addEndpoint({
    name: 'CRM people sync',
    url,
    description: 'Sends new and changed people to the CRM',
    filters: ['people.*'],
    headers: { 'X-Casebook-Tenant': TENANT },
  });
  secret = reg.secret(ep);
  console.log('endpoint:', JSON.stringify(reg.endpoint(ep)));

  // allowPrivateNetworks: only because this receiver is on 127.0.0.1.
  const d = new wh.Dispatcher(reg, { workers: 2, allowPrivateNetworks: true });
  d.on('result', (r) => console.log(`\nresult: ${r.outcome}, attempt ${r.attempt}, HTTP ${r.httpStatus}, ${r.durationMs} ms`));
  d.start();
  const msgId = d.emit({
    resourceType: 'people',
    eventType: 'CREATE',
    resource: PERSON,
    tenantId: TENANT,
    userId: 'f9762deb-a115-412d-adf7-cf772807734a',
    resourceId: PERSON.id,
  });
  console.log('emitted:', msgId);
  await d.drain(10000);
  console.log('attempt log:', JSON.stringify(reg.message(msgId), null, 2));
  await d.close(5000);
  reg.close();
  server.close();
  console.log(`\n${tally.received} received, ${tally.verified} signature verified`);
  process.exitCode = tally.received === 1 && tally.verified === 1 ? 0 : 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
