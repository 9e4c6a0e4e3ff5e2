// Verifies requests that libwebhook delivered with the npm standardwebhooks
// package, for the Python binding's tests.
//
//   NODE_PATH=bindings/node/node_modules node standardwebhooks_verify.cjs SECRET < cases.json
//
// stdin: a JSON array of {headers: {...}, body_b64}. stdout: a JSON array of
// {ok: true, payload} or {ok: false, error} in the same order.
'use strict';
const { Webhook } = require('standardwebhooks');

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => (input += c));
process.stdin.on('end', () => {
  const wh = new Webhook(process.argv[2]);
  const out = JSON.parse(input).map((c) => {
    // The package looks headers up in lower case, as Node's http module gives them.
    const headers = {};
    for (const [k, v] of Object.entries(c.headers)) headers[k.toLowerCase()] = v;
    try {
      return { ok: true, payload: wh.verify(Buffer.from(c.body_b64, 'base64').toString('utf8'), headers) };
    } catch (e) {
      return { ok: false, error: String(e && e.message) };
    }
  });
  process.stdout.write(JSON.stringify(out));
});
