// The Casebook Admin > Integrations > Outgoing page (examples/admin) in a real
// headless browser: Debian's chromium driven by puppeteer-core, against
// examples/admin_server, as the administrator of the account "acme" (the
// tenant header a host's login would set).
//
//   node browser_test.mjs ADMIN_SERVER_BINARY
//
// It creates a webhook with the keyboard (and first a bad URL, whose error
// must show next to the field), sends a test event to a loopback receiver and
// sees it delivered in the page, disables and enables it, makes a delivery
// fail (the receiver answers 500; one attempt), sees the failed delivery and
// its attempt log, replays it once the receiver is fixed and sees it
// delivered, reveals and rotates the secret, and checks every form field has a
// label; axe-core (the accessibility rules engine) finds no violation of WCAG
// 2.1 A/AA on the page, with the form open and with the details shown.
// CHROMIUM (default /usr/bin/chromium) names the browser.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import puppeteer from 'puppeteer-core';
import { startServer, startReceiver, tempDir } from './support.mjs';

const serverBin = process.argv[2];
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
if (!serverBin) {
  console.error('usage: node browser_test.mjs ADMIN_SERVER_BINARY');
  process.exit(2);
}
if (!fs.existsSync(chromium)) {
  console.error(`browser_test: ${chromium} not found: install Debian's chromium (scripts/deps.sh does)`);
  process.exit(1);
}

let passed = 0;
let failed = 0;
function ok(cond, what) {
  if (cond) passed++;
  else {
    failed++;
    console.error(`not ok: ${what}`);
  }
  return cond;
}

const rcv = await startReceiver();
const dir = tempDir('wh-browser-');
const server = await startServer(serverBin, ['--store', `sqlite:${path.join(dir, 'admin.db')}`, '--allow-private',
  '--retry-schedule', '']);
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  userDataDir: path.join(dir, 'profile'),
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

const text = (page, sel) => page.$eval(sel, (e) => e.textContent);
const focused = (page) => page.evaluate(() => document.activeElement && document.activeElement.id);
async function waitText(page, sel, needle, what) {
  try {
    await page.waitForFunction((s, n) => {
      const e = document.querySelector(s);
      return e && e.textContent.includes(n);
    }, { timeout: 20000 }, sel, needle);
    return ok(true, what);
  } catch (e) {
    const got = await page.$eval(sel, (x) => x.textContent).catch(() => '(no element)');
    return ok(false, `${what}: "${needle}" never appeared in ${sel} (it shows "${got}")`);
  }
}
// axe-core's WCAG 2.1 A and AA rules on the page as it is now.
const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
async function accessible(page, what) {
  await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] });
    return r.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  });
  ok(found.length === 0, `${what}: no accessibility violation (axe-core): ${found.join('; ')}`);
}

// Press Tab until the element with this id has the focus (at most 30 times).
async function tabTo(page, id) {
  for (let i = 0; i < 30; i++) {
    if ((await focused(page)) === id) return true;
    await page.keyboard.press('Tab');
  }
  return (await focused(page)) === id;
}

try {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('dialog', (d) => d.accept()); // "Make a new secret?"
  await page.setExtraHTTPHeaders({ 'X-Casebook-Tenant': 'acme' });
  await page.goto(`${server.url}/`, { waitUntil: 'networkidle0' });
  ok((await page.title()).includes('Outgoing webhooks'), 'the page is the Outgoing webhooks screen');
  await waitText(page, '#empty', 'No webhooks yet', 'an empty account says so');

  await accessible(page, 'the empty list');
  // Every form field has a label (and the icon-free buttons have names).
  const unlabelled = await page.$$eval('input, textarea, select', (els) =>
    els.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map((e) => e.id || e.name));
  ok(unlabelled.length === 0, `every form field has a label (not: ${unlabelled.join(', ')})`);
  const labels = await page.$$eval('label', (els) => els.map((e) => e.textContent.trim()));
  ok(labels.some((l) => l.startsWith('Name')) && labels.some((l) => l.startsWith('Endpoint URL')) &&
     labels.some((l) => l.startsWith('Description')), `the fields are Name, Endpoint URL, Description: ${labels}`);

  // Create a New Webhook, with the keyboard only.
  ok(await tabTo(page, 'create'), 'Tab reaches "Create a New Webhook"');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#editor[open]');
  ok((await focused(page)) === 'name', 'the form opens with the focus on Name');
  await page.keyboard.type('CRM people sync');
  await page.keyboard.press('Tab');
  ok((await focused(page)) === 'url', 'Tab goes from Name to Endpoint URL');
  await page.keyboard.type('ftp://crm.example.com/hooks');
  await page.keyboard.press('Tab');
  ok((await focused(page)) === 'description', 'then to Description');
  await page.keyboard.type('People to the CRM');
  ok(await tabTo(page, 'save'), 'then to Save');
  await page.keyboard.press('Enter');
  await waitText(page, '#url-error', 'scheme must be http or https', 'a bad URL says why, next to the field');
  ok(await page.$eval('#url', (e) => e.getAttribute('aria-invalid') === 'true'), 'the URL field is marked invalid');
  ok(await page.$eval('#url', (e) => e.getAttribute('aria-describedby').includes('url-error')),
     'the error is tied to the field (aria-describedby)');
  ok((await focused(page)) === 'url', 'the focus goes to the field in error');
  await accessible(page, 'the form with an error');
  ok(await page.$eval('#name-error', (e) => e.hidden), 'the other fields show no error');
  await page.keyboard.down('Control');
  await page.keyboard.press('KeyA');
  await page.keyboard.up('Control');
  await page.keyboard.type(rcv.url('/crm'));
  await page.keyboard.press('Enter'); // Enter in a field submits the form
  await page.waitForFunction(() => !document.getElementById('editor').open, { timeout: 20000 });
  await page.waitForSelector('#rows tr');
  const rowId = await page.$eval('#rows tr', (e) => e.id);
  const ep = rowId.replace(/^row-/, '');
  ok(ep.startsWith('ep_'), 'the new webhook is listed');
  ok((await text(page, `#${rowId} th`)) === 'CRM people sync', 'with its name');
  await waitText(page, `#${rowId} td.state`, 'Enabled', 'and its state');
  await waitText(page, '#status', 'was created', 'the page says it was created');
  ok((await focused(page)) !== 'body', 'the focus stays in the page');

  // The endpoint belongs to the account.
  const api = await page.evaluate(async (id) => (await fetch(`/api/endpoints/${id}`)).json(), ep);
  ok(api.tenant_id === 'acme' && api.description === 'People to the CRM', 'created in the acme account, with its description');

  // Send test event: delivered to the receiver, and the page says so.
  await page.click(`#${rowId} button[aria-label^="Details"]`);
  await page.waitForSelector('#details:not([hidden])');
  await page.click('#send-test');
  await waitText(page, '#test-result', 'Delivered (HTTP 200)', 'the test event is delivered, in the page');
  const got = rcv.requests.find((q) => q.url === '/crm');
  ok(got && JSON.parse(got.body).event_type === 'TEST' && got.headers['webhook-signature'],
     'the receiver got a signed webhook.TEST');

  // Disable, then enable.
  await page.click(`#${rowId} button[aria-label^="Disable"]`);
  await waitText(page, `#${rowId} td.state`, 'Disabled', 'disabling shows "Disabled"');
  await page.click(`#${rowId} button[aria-label^="Enable"]`);
  await waitText(page, `#${rowId} td.state`, 'Enabled', 'enabling shows "Enabled"');

  // A failing receiver: the test event fails (one attempt) and is listed.
  rcv.status = 500;
  await page.click('#send-test');
  await waitText(page, '#test-result', 'Failed: HTTP 500', 'a failed delivery shows in the page');
  await page.waitForSelector('#failed-rows tr');
  const failedRow = await page.$eval('#failed-rows tr', (e) => e.id);
  const msg = failedRow.replace(/^failed-/, '');
  ok(msg.startsWith('msg_'), 'the failed delivery is listed');
  await page.click(`#${failedRow} button[aria-label^="Attempt log"]`);
  await waitText(page, '#log-rows', '500', 'the attempt log shows the 500');
  await waitText(page, '#log-rows', 'receiver is down', 'and the receiver\'s answer');

  // Fixed: replay, delivered.
  rcv.status = 200;
  const before = rcv.requests.length;
  await page.click(`#${failedRow} button[aria-label^="Replay"]`);
  await waitText(page, '#status', 'Delivered (HTTP 200)', 'the replay is delivered, in the page');
  await waitText(page, '#log-summary', 'delivered', 'the attempt log says delivered');
  await accessible(page, 'the list with the details and the attempt log');
  ok(rcv.requests.length === before + 1, 'the receiver got the replay');
  ok(await page.$eval('#failed-empty', (e) => !e.hidden), 'no failed delivery is left');

  // The secret: reveal, rotate.
  await page.click('#reveal');
  await waitText(page, '#secret', 'whsec_', 'revealing shows the secret');
  const first = await text(page, '#secret');
  await page.click('#rotate');
  await page.waitForFunction((s) => document.getElementById('secret').textContent !== s, { timeout: 20000 }, first);
  const second = await text(page, '#secret');
  ok(second.startsWith('whsec_') && second !== first, 'rotating shows a new secret');

  // Health, as the stats say (once the list reloads).
  await page.reload({ waitUntil: 'networkidle0' });
  const health = await text(page, `#${rowId} td.health`);
  ok(health && health !== '…', `the webhook shows its health ("${health}")`);

  // Without an account the API refuses (the host's login would have one).
  const anon = await fetch(`${server.url}/api/endpoints`);
  ok(anon.status === 401, 'no account: 401');

  if (process.env.WH_SCREENSHOT) await page.screenshot({ path: process.env.WH_SCREENSHOT, fullPage: true });
  ok(errors.length === 0, `no script error in the page: ${errors.join('; ')}`);
} finally {
  await browser.close();
  ok((await server.stop()) === 0, 'admin_server ended cleanly (no sanitizer report)');
  await rcv.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(`browser_test: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
