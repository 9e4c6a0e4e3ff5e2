'use strict';
// The binding's constants and function declarations against
// include/webhook/webhook.h, parsed when the test runs, so they cannot drift.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const wh = require('..');
const { PROTOTYPES, WORKER_PROTOTYPES, nameOf } = require('../lib/native');
const { OPTIONS, ENDPOINT_SETTINGS, OUTCOMES, camel } = require('../lib/constants');
const { headerPath } = require('../testlib/support');

const raw = fs.readFileSync(headerPath(), 'utf8');
const text = raw
  .replace(/\/\*[\s\S]*?\*\//g, ' ')
  .replace(/\/\/[^\n]*/g, ' ')
  .split('\n')
  .filter((l) => !l.trimStart().startsWith('#')) // WH_EXTERN's own definition among them
  .join('\n');

function headerConstants() {
  const out = {};
  for (const [, body] of text.matchAll(/enum\s*\{([\s\S]*?)\}/g))
    for (const [, name, value] of body.matchAll(/\b(WH_[A-Z0-9_]+)\s*=\s*(\d+)/g)) out[name] = Number(value);
  for (const [, name, value] of raw.matchAll(/^#define\s+(WH_[A-Z_]+)\s+(\d+)\s*$/gm)) out[name] = Number(value);
  return out;
}

// "const char *name" -> { base: "char", stars: 1 }; qualifiers and names dropped.
function shape(param) {
  const t = param.replace(/\b_(Out|Inout)_\b/g, ' ').replace(/\bunsigned int\b/g, 'unsigned').trim();
  const noName = /\*\s*$/.test(t) || /^(void|int|long|unsigned|size_t|int64_t)$/.test(t) ? t : t.replace(/\b[A-Za-z_]\w*\s*$/, '');
  const stars = (noName.match(/\*/g) || []).length;
  const base = noName.replace(/\bconst\b|\*/g, ' ').trim().split(/\s+/).join(' ');
  return { base, stars };
}

function parse(decl) {
  const m = /^\s*(.*?)\b(wh_[a-z0-9_]+)\s*\(([\s\S]*)\)\s*$/.exec(decl.replace(/\s+/g, ' '));
  const params = m[3].trim();
  return {
    name: m[2],
    ret: shape(m[1]),
    params: params === '' || params === 'void' ? [] : params.split(',').map(shape),
  };
}

function headerFunctions() {
  const out = {};
  for (const [, decl] of text.matchAll(/WH_EXTERN\s+([^;]*?\))\s*;/g)) {
    const f = parse(decl);
    out[f.name] = f;
  }
  return out;
}

// Whether the binding's type passes the header's the same way in the ABI.
function compatible(h, b) {
  if (h.base === b.base && h.stars === b.stars) return true;
  if (h.stars === 0 && h.base === 'wh_option') return b.base === 'int' && b.stars === 0;
  if (h.stars === 0 && h.base.endsWith('_cb')) return b.base === 'void' && b.stars === 1; // a function pointer
  if (h.base === 'char' && h.stars === 2) return b.base === 'void' && b.stars === 2; // text out, kept for wh_free
  return false;
}

function checkDeclaration(h, b) {
  assert.equal(b.params.length, h.params.length, `${h.name}: argument count`);
  assert.ok(compatible(h.ret, b.ret), `${h.name}: returns ${JSON.stringify(h.ret)}, declared ${JSON.stringify(b.ret)}`);
  h.params.forEach((p, i) =>
    assert.ok(compatible(p, b.params[i]), `${h.name}: argument ${i + 1} is ${JSON.stringify(p)}, declared ${JSON.stringify(b.params[i])}`),
  );
}

test('the header was found and parsed', () => {
  assert.ok(Object.keys(headerFunctions()).length > 75);
  assert.ok('WH_OPT_RESULT_QUEUE' in headerConstants());
});

test('every function is declared, with its arguments', () => {
  const header = headerFunctions();
  const ours = Object.fromEntries(PROTOTYPES.map((p) => [nameOf(p), parse(p)]));
  assert.deepEqual(Object.keys(header).filter((n) => !(n in ours)), [], 'in the header, not in the binding');
  assert.deepEqual(Object.keys(ours).filter((n) => !(n in header)), [], 'in the binding, not in the header');
  for (const [name, h] of Object.entries(header)) checkDeclaration(h, ours[name]);
});

test("the results worker's declarations match too (a handle may be passed as void *)", () => {
  const header = headerFunctions();
  for (const p of WORKER_PROTOTYPES) {
    const b = parse(p);
    const h = header[b.name];
    assert.ok(h, `${b.name}: not in the header`);
    // Only a wh_* handle may become void *; everything else as in the header.
    const loosened = { ...h, params: h.params.map((x, i) => (x.base.startsWith('wh_') && x.stars === 1 && b.params[i].base === 'void' ? b.params[i] : x)) };
    checkDeclaration(loosened, b);
  }
});

test('koffi understands every declaration', () => {
  const koffi = require('koffi');
  // koffi.proto() registers a type of that name: each check gets a name of its own.
  [...PROTOTYPES, ...WORKER_PROTOTYPES].forEach((p, i) =>
    assert.doesNotThrow(() => koffi.proto(p.replace(nameOf(p), `wh_node_check_${i}`)), p),
  );
});

test('constants match', () => {
  const header = headerConstants();
  const ours = wh.constants;
  const headerOnly = Object.keys(header).filter((k) => !(k in ours) && !k.startsWith('WH_VERSION'));
  assert.deepEqual(headerOnly, [], 'constants of the header missing in the binding');
  for (const [name, value] of Object.entries(ours)) assert.equal(value, header[name], name);
  // The option and setting keys are the header's names, camelCased.
  const opts = Object.keys(header).filter((k) => k.startsWith('WH_OPT_'));
  assert.deepEqual(Object.keys(OPTIONS).sort(), opts.map((k) => camel(k, 'WH_OPT_')).sort());
  for (const k of opts) assert.equal(OPTIONS[camel(k, 'WH_OPT_')].value, header[k], k);
  const eps = Object.keys(header).filter((k) => k.startsWith('WH_EP_'));
  assert.deepEqual(Object.keys(ENDPOINT_SETTINGS).sort(), eps.map((k) => camel(k, 'WH_EP_')).sort());
  for (const k of eps) assert.equal(ENDPOINT_SETTINGS[camel(k, 'WH_EP_')].value, header[k], k);
  assert.deepEqual(OUTCOMES, { [header.WH_DELIVERED]: 'delivered', [header.WH_RETRYING]: 'retrying', [header.WH_FAILED]: 'failed' });
});

test('every error code has its name on WebhookError', () => {
  for (const [name, code] of Object.entries(headerConstants()))
    if (/^WH_E[A-Z]+$/.test(name)) assert.equal(new wh.WebhookError(code, 'x').codeName, name);
});

test('versions agree', () => {
  const h = headerConstants();
  const v = `${h.WH_VERSION_MAJOR}.${h.WH_VERSION_MINOR}.${h.WH_VERSION_PATCH}`;
  assert.equal(wh.libraryVersion(), v);
  assert.equal(require('../package.json').version, v);
});
