// Casebook Admin > Integrations > Outgoing: the webhooks of the signed-in
// administrator's account, through the admin API (docs/openapi.yaml) under
// /api/. Plain JavaScript, no build step. Text from the API is only ever put
// in the page with textContent.
'use strict';

const API = '/api';
const $ = (id) => document.getElementById(id);

let webhooks = [];
let current = null;   // the webhook whose details are open
let editing = null;   // the webhook being edited, or null when creating

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(API + path, init);
  } catch (e) {
    return { status: 0, error: { code: 'network', message: 'The server cannot be reached.' } };
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (res.ok) return { status: res.status, data };
  const error = (data && data.error) || { code: 'http', message: `The server answered ${res.status}.` };
  return { status: res.status, error };
}

function say(text) {
  $('status').textContent = text;
}

function showPageError(error) {
  const p = $('page-error');
  p.textContent = error ? error.message : '';
  p.hidden = !error;
}

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) e.append(c);
  return e;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '';
}

// ---- the list ------------------------------------------------------------

function stateText(w) {
  if (w.enabled) return 'Enabled';
  return w.disabled_reason ? `Disabled (${w.disabled_reason})` : 'Disabled';
}

async function healthText(w) {
  const r = await api('GET', `/endpoints/${encodeURIComponent(w.id)}/stats`);
  if (r.error) return 'Unknown';
  const s = r.data;
  const last = s.last_http_status ? `last answer HTTP ${s.last_http_status}` : s.last_error || 'no attempt yet';
  if (s.breaker === 'open') return `Failing: sending paused (${last})`;
  if (s.breaker === 'half_open') return `Recovering (${last})`;
  if (s.last_error) return `Failing (${last})`;
  return `Healthy (${last})`;
}

async function load() {
  const r = await api('GET', '/endpoints');
  if (r.error) {
    showPageError(r.error);
    return;
  }
  showPageError(null);
  webhooks = r.data;
  const rows = $('rows');
  rows.replaceChildren();
  for (const w of webhooks) {
    const health = el('td', { className: 'health', textContent: '…' });
    const row = el('tr', { id: `row-${w.id}` },
      el('th', { scope: 'row', textContent: w.name }),
      el('td', { className: 'url', textContent: w.url }),
      el('td', { className: w.enabled ? 'state on' : 'state off', textContent: stateText(w) }),
      health,
      el('td', { className: 'actions' },
        el('button', { type: 'button', textContent: 'Details', onclick: () => openDetails(w.id),
                       ariaLabel: `Details of ${w.name}` }),
        el('button', { type: 'button', textContent: 'Edit', onclick: () => openEditor(w),
                       ariaLabel: `Edit ${w.name}` }),
        el('button', { type: 'button', textContent: w.enabled ? 'Disable' : 'Enable',
                       onclick: () => setEnabled(w, !w.enabled),
                       ariaLabel: `${w.enabled ? 'Disable' : 'Enable'} ${w.name}` }),
        el('button', { type: 'button', textContent: 'Delete', className: 'danger', onclick: () => remove(w),
                       ariaLabel: `Delete ${w.name}` })));
    rows.append(row);
    healthText(w).then((t) => { health.textContent = t; });
  }
  $('webhooks').hidden = webhooks.length === 0;
  $('empty').hidden = webhooks.length !== 0;
}

async function setEnabled(w, enabled) {
  const r = await api('PATCH', `/endpoints/${encodeURIComponent(w.id)}`, { enabled });
  if (r.error) return showPageError(r.error);
  say(`${w.name} is now ${enabled ? 'enabled' : 'disabled'}.`);
  await load();
}

async function remove(w) {
  if (!window.confirm(`Delete the webhook "${w.name}"? Messages waiting for it will not be sent.`)) return;
  const r = await api('DELETE', `/endpoints/${encodeURIComponent(w.id)}`);
  if (r.error) return showPageError(r.error);
  if (current === w.id) closeDetails();
  say(`${w.name} was deleted.`);
  await load();
}

// ---- create and edit -------------------------------------------------------

const FIELDS = ['name', 'url', 'description'];

function clearErrors() {
  for (const f of FIELDS) {
    $(`${f}-error`).hidden = true;
    $(`${f}-error`).textContent = '';
    $(f).removeAttribute('aria-invalid');
  }
  $('form-error').hidden = true;
}

// The API names the refused field: its message goes next to that field.
function showError(error) {
  const field = FIELDS.includes(error.field) ? error.field : null;
  if (!field) {
    $('form-error').textContent = error.message;
    $('form-error').hidden = false;
    return;
  }
  const p = $(`${field}-error`);
  p.textContent = error.message;
  p.hidden = false;
  $(field).setAttribute('aria-invalid', 'true');
  $(field).focus();
}

function openEditor(w) {
  editing = w || null;
  clearErrors();
  $('editor-title').textContent = w ? `Edit ${w.name}` : 'Create a New Webhook';
  $('name').value = w ? w.name : '';
  $('url').value = w ? w.url : '';
  $('description').value = w && w.description ? w.description : '';
  $('editor').showModal();
  $('name').focus();
}

async function save(event) {
  event.preventDefault();
  clearErrors();
  const body = {
    name: $('name').value.trim(),
    url: $('url').value.trim(),
    description: $('description').value.trim() || null,
  };
  const r = editing
    ? await api('PATCH', `/endpoints/${encodeURIComponent(editing.id)}`, body)
    : await api('POST', '/endpoints', body);
  if (r.error) return showError(r.error);
  $('editor').close();
  say(editing ? `${r.data.name} was saved.` : `${r.data.name} was created.`);
  await load();
  const row = $(`row-${r.data.id}`);
  if (row) row.querySelector('button').focus();
}

// ---- details: secret, test, failed deliveries, attempt log -------------------

async function openDetails(id) {
  const w = webhooks.find((x) => x.id === id);
  if (!w) return;
  current = id;
  $('details-title').textContent = w.name;
  $('secret').textContent = '••••••••••••';
  $('reveal').textContent = 'Reveal secret';
  $('test-result').textContent = '';
  $('log').hidden = true;
  $('details').hidden = false;
  $('details-title').focus();
  await loadFailed();
}

function closeDetails() {
  current = null;
  $('details').hidden = true;
}

async function reveal() {
  if ($('reveal').textContent === 'Hide secret') {
    $('secret').textContent = '••••••••••••';
    $('reveal').textContent = 'Reveal secret';
    return;
  }
  const r = await api('GET', `/endpoints/${encodeURIComponent(current)}/secret`);
  if (r.error) return showPageError(r.error);
  $('secret').textContent = r.data.secret;
  $('reveal').textContent = 'Hide secret';
}

async function rotate() {
  if (!window.confirm('Make a new secret? The current one keeps signing for one more day.')) return;
  const r = await api('POST', `/endpoints/${encodeURIComponent(current)}/secret/rotate`, {});
  if (r.error) return showPageError(r.error);
  $('secret').textContent = r.data.secret;
  $('reveal').textContent = 'Hide secret';
  say('A new secret was made. Update your receiver within a day.');
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Wait (up to a while) for the delivery of msgId to endpoint id to finish.
async function outcome(msgId, id) {
  for (let i = 0; i < 100; i++) {
    const r = await api('GET', `/messages/${encodeURIComponent(msgId)}`);
    if (r.error) return { error: r.error };
    const d = r.data.deliveries.find((x) => x.endpoint_id === id);
    if (d && d.state !== 'pending') return { delivery: d };
    await sleep(300);
  }
  return { delivery: null };
}

function describe(d) {
  const a = d.attempts[d.attempts.length - 1];
  const answer = a ? (a.http_status ? `HTTP ${a.http_status}` : a.error || 'no answer') : 'no attempt';
  return d.state === 'delivered' ? `Delivered (${answer}).` : `Failed: ${answer}.`;
}

async function sendTest() {
  const id = current;
  const out = $('test-result');
  out.textContent = 'Sending a test event…';
  const r = await api('POST', `/endpoints/${encodeURIComponent(id)}/test`, {});
  if (r.error) {
    out.textContent = `Not sent: ${r.error.message}`;
    return;
  }
  const o = await outcome(r.data.message_id, id);
  if (o.error) out.textContent = o.error.message;
  else if (!o.delivery) out.textContent = 'Still waiting for the endpoint to answer.';
  else out.textContent = `Test event ${describe(o.delivery)}`;
  await loadFailed();
}

async function loadFailed() {
  const id = current;
  const r = await api('GET', `/endpoints/${encodeURIComponent(id)}/failed?limit=100`);
  const rows = $('failed-rows');
  rows.replaceChildren();
  if (r.error) return showPageError(r.error);
  for (const f of r.data) {
    const answer = f.last_http_status ? `HTTP ${f.last_http_status}` : f.last_error || '';
    rows.append(el('tr', { id: `failed-${f.message_id}` },
      el('td', {}, el('code', { textContent: f.message_id })),
      el('td', { textContent: f.event_type }),
      el('td', { textContent: when(f.finished_at) }),
      el('td', { textContent: answer }),
      el('td', { className: 'actions' },
        el('button', { type: 'button', textContent: 'Attempt log', onclick: () => showLog(f.message_id),
                       ariaLabel: `Attempt log of ${f.message_id}` }),
        el('button', { type: 'button', textContent: 'Replay', onclick: () => replay(f.message_id),
                       ariaLabel: `Replay ${f.message_id}` }))));
  }
  $('failed-empty').hidden = r.data.length !== 0;
}

async function showLog(msgId) {
  const r = await api('GET', `/messages/${encodeURIComponent(msgId)}`);
  if (r.error) return showPageError(r.error);
  const d = r.data.deliveries.find((x) => x.endpoint_id === current);
  $('log-title').textContent = `Attempt log of ${msgId}`;
  $('log-summary').textContent = d
    ? `${r.data.event_type}, sent ${when(r.data.created_at)}: ${d.state}, ${d.attempts_made} attempt(s).`
    : `${r.data.event_type}: no delivery to this webhook.`;
  const rows = $('log-rows');
  rows.replaceChildren();
  for (const a of d ? d.attempts : []) {
    rows.append(el('tr', {},
      el('td', { textContent: String(a.attempt) }),
      el('td', { textContent: when(a.at) }),
      el('td', { textContent: a.http_status ? String(a.http_status) : '' }),
      el('td', { textContent: `${a.duration_ms} ms` }),
      el('td', { textContent: [a.error, a.response].filter(Boolean).join(': ') })));
  }
  $('log').hidden = false;
  $('log-title').focus();
}

async function replay(msgId) {
  const id = current;
  const r = await api('POST', `/messages/${encodeURIComponent(msgId)}/replay`, { endpoint_id: id });
  if (r.error) return showPageError(r.error);
  say(`Replaying ${msgId}…`);
  const o = await outcome(msgId, id);
  if (o.delivery) say(`Replay of ${msgId}: ${describe(o.delivery)}`);
  await loadFailed();
  await showLog(msgId);
}

// ---- wiring ---------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  $('create').addEventListener('click', () => openEditor(null));
  $('editor-form').addEventListener('submit', save);
  $('cancel').addEventListener('click', () => $('editor').close());
  $('details-close').addEventListener('click', closeDetails);
  $('reveal').addEventListener('click', reveal);
  $('rotate').addEventListener('click', rotate);
  $('send-test').addEventListener('click', sendTest);
  $('refresh-failed').addEventListener('click', loadFailed);
  load();
});
