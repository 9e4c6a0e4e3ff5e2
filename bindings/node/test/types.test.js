'use strict';
// index.d.ts: a TypeScript user's code (testlib/types-usage.ts) type-checks
// against it with tsc --strict, and a misuse does not.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const pkg = path.join(__dirname, '..');
const tsc = path.join(pkg, 'node_modules', 'typescript', 'bin', 'tsc');
const args = ['--noEmit', '--strict', '--target', 'es2022', '--module', 'commonjs', '--types', 'node', '--esModuleInterop'];

function compile(file) {
  try {
    execFileSync(process.execPath, [tsc, ...args, file], { cwd: pkg, encoding: 'utf8', stdio: 'pipe' });
    return '';
  } catch (e) {
    return `${e.stdout}${e.stderr}` || String(e);
  }
}

test('the documented API type-checks against index.d.ts', () => {
  assert.equal(compile(path.join(pkg, 'testlib', 'types-usage.ts')), '');
});

test('a misuse does not', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wh-ts-'));
  const bad = path.join(dir, 'bad.ts');
  fs.writeFileSync(bad, `import * as wh from ${JSON.stringify(pkg)};\nconst d = new wh.Dispatcher(wh.openRegistry(), { workerz: 2 });\nd.emit({ resourceType: 'people' });\n`);
  try {
    const out = compile(bad);
    assert.match(out, /workerz/);
    assert.match(out, /eventType/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
