'use strict';
// libwebhook for Node.js: send and verify Standard Webhooks through the C
// library libwebhook.so.1 (koffi; nothing to compile).
//
//   const wh = require('libwebhook');
//   const reg = wh.openRegistry('memory:');
//   const id = reg.addEndpoint({ name: 'CRM', url: 'https://crm.example.com/hooks', filters: ['people.*'] });
//   const d = new wh.Dispatcher(reg, { workers: 2 });
//   d.on('result', (r) => console.log(r.outcome, r.httpStatus));
//   d.start();
//   d.emit({ resourceType: 'people', eventType: 'CREATE', resource: { id: 'p1' } });
//   await d.drain(5000);
//   await d.close(5000);
//
// Threads: every call but drain/stop/close runs synchronously on the calling
// JavaScript thread (none waits for the network). drain/stop/close wait on a
// libuv thread. Outcomes come from the library's result queue through a
// worker thread (lib/results-worker.js) and are emitted as 'result' events on
// the JavaScript thread; the library never calls into JavaScript.

const { EventEmitter } = require('node:events');
const { Worker } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const { native, koffi } = require('./lib/native');
const { constants: K, OPTIONS, ENDPOINT_SETTINGS } = require('./lib/constants');
const { WebhookError, errorFor, check, asyncError } = require('./lib/errors');

const ID_MAX = K.WH_ID_MAX;
// drain() waits in slices this long on a libuv thread, so that close() never
// waits long for a drain in progress.
const SLICE_MS = 250;
const DEFAULT_RESULT_QUEUE = 10000;

// ---- helpers -------------------------------------------------------------------

function fail(code, detail) {
  throw new WebhookError(code, detail);
}

// A string argument: refused when it is not a string or holds a NUL (which C
// would silently cut the text at). null/undefined stay NULL when allowed.
function str(value, what, nullable = false) {
  if (value === null || value === undefined) {
    if (nullable) return null;
    fail(K.WH_EINVAL, `${what}: required`);
  }
  if (typeof value !== 'string') fail(K.WH_EINVAL, `${what}: expected a string, got ${typeof value}`);
  if (value.includes('\0')) fail(K.WH_EINVAL, `${what}: contains a NUL character`);
  return value;
}

function bytes(body, what = 'body') {
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body === null || body === undefined) return Buffer.alloc(0);
  fail(K.WH_EINVAL, `${what}: a string, Buffer or Uint8Array`);
}

function cString(buf) {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}

// Text the library allocated for us: decoded, then released with wh_free.
function takeText(ptr) {
  if (!ptr) return '';
  try {
    return koffi.decode(ptr, 'char', -1);
  } finally {
    native().fn.wh_free(ptr);
  }
}

function scheduleText(value) {
  if (value === null || value === undefined || typeof value === 'string') return value ?? null;
  if (Array.isArray(value)) return value.map((v) => String(Number(v))).join(',');
  fail(K.WH_EINVAL, 'retrySchedule: an array of seconds or a string such as "5,300"');
}

function millis(value, what) {
  if (value === null || value === undefined) return 0;
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  fail(K.WH_EINVAL, `${what}: a Date or unix milliseconds`);
}

// A promise for a koffi call made on a libuv thread.
function callAsync(f, ...args) {
  return new Promise((resolve, reject) => f.async(...args, (err, rc) => (err ? reject(err) : resolve(rc))));
}

// ---- Registry ------------------------------------------------------------------

// Frees a registry (or view) that was garbage collected without close(). Any
// order is safe: the library keeps a registry alive while a dispatcher or a
// view uses it.
const registryFinalizer = new FinalizationRegistry((ptr) => native().fn.wh_registry_free(ptr));

class Registry {
  constructor(ptr, what) {
    this._ptr = ptr;
    this._what = what;
    registryFinalizer.register(this, ptr, this);
  }

  _p() {
    if (!this._ptr) fail(K.WH_ESTATE, `${this._what} is closed`);
    return this._ptr;
  }

  _call(name, ...args) {
    check(native().fn[name](this._p(), ...args));
  }

  _json(name, ...args) {
    const out = [null];
    this._call(name, ...args, out);
    return JSON.parse(takeText(out[0]));
  }

  _count(name, ...args) {
    const out = [0];
    this._call(name, ...args, out);
    return Number(out[0]);
  }

  /** Release it (idempotent). Dispatchers and views made from it keep working. */
  close() {
    if (!this._ptr) return;
    registryFinalizer.unregister(this);
    const ptr = this._ptr;
    this._ptr = null;
    native().fn.wh_registry_free(ptr);
  }

  get closed() {
    return !this._ptr;
  }

  // -- tenants
  /** A view limited to one tenant: the same methods, only that tenant's endpoints and messages. */
  tenant(tenantId) {
    const out = [null];
    // The view comes first here: wh_registry_open_tenant(&view, reg, id).
    check(native().fn.wh_registry_open_tenant(out, this._p(), str(tenantId, 'tenantId')));
    return new Registry(out[0], `tenant view "${tenantId}"`);
  }

  /** The tenant of a view; null for the root registry. */
  get tenantId() {
    return native().fn.wh_registry_tenant_id(this._p());
  }

  setTenantMaxEndpoints(n) {
    this._call('wh_registry_set_int', K.WH_REG_TENANT_MAX_ENDPOINTS, n);
  }

  // -- endpoints
  /** Register an endpoint; all or nothing (a refused filter or header removes it again). */
  addEndpoint({ name, url, description = null, filters = [], headers = {} } = {}) {
    const buf = Buffer.alloc(ID_MAX);
    this._call('wh_endpoint_add', str(name, 'name'), str(url, 'url'), str(description, 'description', true), buf, ID_MAX);
    const id = cString(buf);
    try {
      for (const pattern of filters || []) this.subscribe(id, pattern);
      for (const [k, v] of Object.entries(headers || {})) this.setHeader(id, k, v);
    } catch (e) {
      this.removeEndpoint(id);
      throw e;
    }
    return id;
  }

  endpoint(id) {
    return this._json('wh_endpoint_get_json', str(id, 'endpoint id'));
  }

  endpoints() {
    return this._json('wh_endpoint_list_json');
  }

  removeEndpoint(id) {
    this._call('wh_endpoint_remove', str(id, 'endpoint id'));
  }

  setEnabled(id, enabled) {
    this._call('wh_endpoint_set_enabled', str(id, 'endpoint id'), enabled ? 1 : 0);
  }

  setUrl(id, url) {
    this._call('wh_endpoint_set_url', str(id, 'endpoint id'), str(url, 'url'));
  }

  setName(id, name) {
    this._call('wh_endpoint_set_name', str(id, 'endpoint id'), str(name, 'name'));
  }

  setDescription(id, description) {
    this._call('wh_endpoint_set_description', str(id, 'endpoint id'), str(description, 'description', true));
  }

  subscribe(id, pattern) {
    this._call('wh_endpoint_subscribe', str(id, 'endpoint id'), str(pattern, 'pattern'));
  }

  unsubscribe(id, pattern) {
    this._call('wh_endpoint_unsubscribe', str(id, 'endpoint id'), str(pattern, 'pattern'));
  }

  /** Set (value null: remove) a header sent with every request to this endpoint. */
  setHeader(id, name, value) {
    this._call('wh_endpoint_set_header', str(id, 'endpoint id'), str(name, 'header name'), str(value, 'header value', true));
  }

  secret(id) {
    const buf = Buffer.alloc(128);
    this._call('wh_endpoint_secret', str(id, 'endpoint id'), buf, buf.length);
    return cString(buf);
  }

  rotateSecret(id, newSecret = null, graceSeconds = 0) {
    this._call('wh_endpoint_rotate_secret', str(id, 'endpoint id'), str(newSecret, 'secret', true), graceSeconds);
  }

  signature(id, msgId, timestamp, body) {
    const data = bytes(body);
    const buf = Buffer.alloc(1024);
    this._call('wh_endpoint_signature', str(id, 'endpoint id'), str(msgId, 'msgId'), seconds(timestamp), data, data.length, buf, buf.length);
    return cString(buf);
  }

  /** Per-endpoint settings: { ordered, rateLimit, timeoutMs, retrySchedule, proxy, clientCert }. */
  configureEndpoint(id, settings) {
    const eid = str(id, 'endpoint id');
    for (const [key, value] of Object.entries(settings || {})) {
      const s = ENDPOINT_SETTINGS[key];
      if (!s) fail(K.WH_EINVAL, `configureEndpoint: unknown setting "${key}"`);
      if (s.kind === 'str') {
        const text = key === 'retrySchedule' ? scheduleText(value) : value;
        this._call('wh_endpoint_set_str', eid, s.value, str(text, key, true));
      } else {
        this._call('wh_endpoint_set_int', eid, s.value, Number(value));
      }
    }
  }

  // -- the attempt log and admin actions
  message(msgId) {
    return this._json('wh_message_get_json', str(msgId, 'msgId'));
  }

  failed(id, { since = 0, limit = 0 } = {}) {
    return this._json('wh_endpoint_failed_json', str(id, 'endpoint id'), millis(since, 'since'), limit);
  }

  replay(msgId, endpointId = null) {
    return this._count('wh_message_replay', str(msgId, 'msgId'), str(endpointId, 'endpoint id', true));
  }

  recover(id, since = 0) {
    return this._count('wh_endpoint_recover', str(id, 'endpoint id'), millis(since, 'since'));
  }

  sendTest(id) {
    const buf = Buffer.alloc(ID_MAX);
    this._call('wh_endpoint_send_test', str(id, 'endpoint id'), buf, ID_MAX);
    return cString(buf);
  }

  purge(before) {
    return this._count('wh_registry_purge', millis(before, 'before'));
  }

  /** Answer one admin REST API request: { status, body } (body decoded from JSON). */
  admin(method, path, body = null, dispatcher = null) {
    const data = body === null || body === undefined ? Buffer.alloc(0)
      : typeof body === 'object' && !(body instanceof Uint8Array) ? Buffer.from(JSON.stringify(body)) : bytes(body);
    const status = [0];
    const out = [null];
    const d = dispatcher ? dispatcher._p() : null;
    this._call('wh_admin_handle', d, str(method, 'method'), str(path, 'path'), data, data.length, status, out);
    const text = takeText(out[0]);
    return { status: status[0], body: text ? JSON.parse(text) : null };
  }
}

/** Open a registry: 'memory:' (default), 'sqlite:PATH' or 'postgresql://...'. */
function openRegistry(store = 'memory:') {
  const out = [null];
  check(native().fn.wh_registry_open(out, str(store, 'store', true)));
  return new Registry(out[0], 'registry');
}

// ---- events --------------------------------------------------------------------

function seconds(t) {
  if (t instanceof Date) return Math.floor(t.getTime() / 1000);
  if (typeof t === 'number' && Number.isFinite(t)) return Math.trunc(t);
  if (typeof t === 'bigint') return t;
  fail(K.WH_EINVAL, 'timestamp: a Date or unix seconds');
}

function resourceJson(resource) {
  if (typeof resource === 'string') return resource;
  if (Buffer.isBuffer(resource)) return resource.toString('utf8');
  if (resource && typeof resource === 'object' && !Array.isArray(resource)) return JSON.stringify(resource);
  fail(K.WH_EINVAL, 'resource: an object or JSON text');
}

// A wh_event for { resourceType, eventType, resource, tenantId, userId, resourceId, time }.
// The caller owns it.
function buildEvent(ev) {
  const { fn } = native();
  if (!ev || typeof ev !== 'object') fail(K.WH_EINVAL, 'emit: an event object');
  const out = [null];
  check(fn.wh_event_new(out, str(ev.resourceType, 'resourceType'), str(ev.eventType, 'eventType')));
  const e = out[0];
  try {
    if (ev.resource !== undefined && ev.resource !== null)
      check(fn.wh_event_set_resource_json(e, str(resourceJson(ev.resource), 'resource')));
    if (ev.tenantId != null) check(fn.wh_event_set_tenant_id(e, str(ev.tenantId, 'tenantId')));
    if (ev.userId != null) check(fn.wh_event_set_user_id(e, str(ev.userId, 'userId')));
    if (ev.resourceId != null) check(fn.wh_event_set_resource_id(e, str(ev.resourceId, 'resourceId')));
    if (ev.time != null) {
      if (!(ev.time instanceof Date) || Number.isNaN(ev.time.getTime())) fail(K.WH_EINVAL, 'time: a valid Date');
      check(fn.wh_event_set_time(e, BigInt(ev.time.getTime()) * 1000n));
    }
  } catch (err) {
    fn.wh_event_free(e);
    throw err;
  }
  return e;
}

/** The envelope an event is delivered as, byte for byte. */
function eventJson(ev) {
  const { fn } = native();
  const e = buildEvent(ev);
  try {
    const out = [null];
    check(fn.wh_event_to_json(e, out));
    return takeText(out[0]);
  } finally {
    fn.wh_event_free(e);
  }
}

// ---- Dispatcher ----------------------------------------------------------------

// Started dispatchers, until closed: kept alive (their worker reads their
// queue), and parked at process exit (see results-worker.js).
const live = new Set();
process.on('exit', () => {
  for (const pump of live) pump.park();
});

// Frees a dispatcher that was garbage collected without close(): only one that
// never started can be (a started one stays in `live` until closed).
const dispatcherFinalizer = new FinalizationRegistry((ptr) => native().fn.wh_dispatcher_free(ptr));

// The worker thread that reads one dispatcher's result queue.
class Pump {
  constructor(dispatcher, resultFd) {
    const { fn } = native();
    const fds = [0, 0];
    const libc = koffi.load('libc.so.6');
    const pipe2 = libc.func('int pipe2(_Out_ int *fds, int flags)');
    if (pipe2(fds, 0o2004000 /* O_CLOEXEC | O_NONBLOCK */) !== 0) fail(K.WH_ENOMEM, 'results: pipe2 failed');
    this.wakeRead = fds[0];
    this.wakeWrite = fds[1];
    this.ctl = new Int32Array(new SharedArrayBuffer(16));
    this.flushWaiters = [];
    this.ended = new Promise((resolve) => (this._onEnd = resolve));
    this.exited = new Promise((resolve) => (this._onExit = resolve));
    this.done = false;
    this.worker = new Worker(path.join(__dirname, 'lib', 'results-worker.js'), {
      workerData: { address: String(koffi.address(dispatcher._ptr)), resultFd, wakeFd: this.wakeRead, ctl: this.ctl },
      env: process.env,
    });
    this.worker.on('message', (m) => {
      if (m.results) for (const r of m.results) dispatcher._deliver(r);
      if (m.flushed !== undefined) this._flushed(m.flushed);
      if (m.end) {
        this.done = true;
        this._flushed(Infinity);
        this._onEnd();
      }
    });
    this.worker.on('error', (e) => dispatcher._handlerError(e));
    this.worker.on('exit', () => {
      this.done = true;
      this._flushed(Infinity);
      this._onEnd();
      this._onExit();
    });
    // A running dispatcher does not keep the process alive. After the
    // listeners: adding a 'message' listener refs the worker's port again.
    this.worker.unref();
    void fn;
  }

  wake() {
    try {
      fs.writeSync(this.wakeWrite, Buffer.from([1]));
    } catch {} // EAGAIN: the pipe is full, so it is awake anyway
  }

  // While a promise waits for the worker (drain's flush, close), the worker
  // must keep the process alive, or it could end with the promise pending.
  async holding(promise) {
    this.worker.ref();
    try {
      return await promise;
    } finally {
      if (!this.done) this.worker.unref();
    }
  }

  // Resolves once every outcome queued before now has been emitted.
  flush() {
    if (this.done) return Promise.resolve();
    const n = Atomics.add(this.ctl, 2, 1) + 1;
    const p = new Promise((resolve) => this.flushWaiters.push({ n, resolve }));
    this.wake();
    return this.holding(p);
  }

  _flushed(n) {
    this.flushWaiters = this.flushWaiters.filter((w) => (w.n <= n ? (w.resolve(), false) : true));
  }

  // At process exit: have the worker leave native code for good, and wait
  // (at most 2 s) until it has.
  park() {
    if (this.done) return;
    Atomics.store(this.ctl, 0, 1);
    this.wake();
    Atomics.wait(this.ctl, 1, 0, 2000);
  }

  closeFds() {
    for (const fd of [this.wakeRead, this.wakeWrite]) {
      try {
        fs.closeSync(fd);
      } catch {}
    }
  }
}

class Dispatcher extends EventEmitter {
  /**
   * options: one key per WH_OPT_* in camelCase (workers, maxInFlight,
   * maxPerEndpoint, timeoutMs, connectTimeoutMs, retrySchedule ([5, 300] or
   * "5,300"), allowPrivateNetworks, queueLimit, userAgent, caFile,
   * retryJitterPct, disableAfterMs, breaker*, throttleMinDelayMs,
   * maxBodyBytes, retentionDays, leaseMs, processDefault, resultQueue (default
   * 10000; 0: no 'result' events), proxy).
   */
  constructor(registry, options = {}) {
    super();
    if (!(registry instanceof Registry)) fail(K.WH_EINVAL, 'Dispatcher: registry must come from openRegistry()');
    const out = [null];
    check(native().fn.wh_dispatcher_new(out, registry._p()));
    this._ptr = out[0];
    // No reference to the Registry object: the library keeps the registry
    // alive for the dispatcher, so the two can be dropped in any order.
    this._state = 'new';
    this._pending = new Set(); // drain/stop calls running on libuv threads
    this._pump = null;
    this._closing = null;
    dispatcherFinalizer.register(this, this._ptr, this);
    try {
      const opts = { resultQueue: DEFAULT_RESULT_QUEUE, ...options };
      for (const [key, value] of Object.entries(opts)) this._setOption(key, value);
    } catch (e) {
      this._free();
      throw e;
    }
  }

  _setOption(key, value) {
    const o = OPTIONS[key];
    if (!o) fail(K.WH_EINVAL, `Dispatcher: unknown option "${key}"`);
    if (o.kind === 'str') {
      const text = key === 'retrySchedule' ? scheduleText(value) : value;
      this._call('wh_dispatcher_set_str', o.value, str(text, key, true));
    } else {
      this._call('wh_dispatcher_set_int', o.value, o.kind === 'bool' ? (value ? 1 : 0) : Number(value));
    }
  }

  _p() {
    if (this._state === 'closing' || this._state === 'closed') fail(K.WH_ESTATE, 'dispatcher is closed');
    return this._ptr;
  }

  _call(name, ...args) {
    check(native().fn[name](this._p(), ...args));
  }

  _free() {
    dispatcherFinalizer.unregister(this);
    if (this._ptr) native().fn.wh_dispatcher_free(this._ptr);
    this._ptr = null;
    this._state = 'closed';
  }

  // Calls a function on a libuv thread, counted so that close() can wait for it.
  _async(name, ...args) {
    const p = callAsync(native().fn[name], this._ptr, ...args);
    this._pending.add(p);
    const forget = () => this._pending.delete(p);
    p.then(forget, forget);
    return p;
  }

  /** Start the worker threads (deliveries pending in a durable store resume). */
  start() {
    this._call('wh_dispatcher_start');
    this._state = 'running';
    const fd = native().fn.wh_dispatcher_result_fd(this._ptr);
    if (fd >= 0) {
      this._pump = new Pump(this, fd);
      live.add(this._pump); // keeps this dispatcher reachable (the pump's listener) until closed
      this._pump.ended.then(() => live.delete(this._pump));
    }
    return this;
  }

  /** Emit an event; returns its message id. Never waits for the network. */
  emit(eventOrName, ...rest) {
    // EventEmitter#emit keeps working for events of the emitter itself.
    if (typeof eventOrName === 'string' || typeof eventOrName === 'symbol') return super.emit(eventOrName, ...rest);
    const e = buildEvent(eventOrName);
    let d;
    try {
      d = this._p();
    } catch (err) {
      native().fn.wh_event_free(e);
      throw err;
    }
    const buf = Buffer.alloc(ID_MAX);
    check(native().fn.wh_dispatcher_emit(d, e, buf, ID_MAX)); // takes e, also on failure
    return cString(buf);
  }

  /** Emit several events in one commit, all or nothing; their message ids. */
  emitBatch(events) {
    const { fn } = native();
    const built = [];
    let d;
    try {
      for (const ev of events) built.push(buildEvent(ev));
      d = this._p();
    } catch (err) {
      for (const e of built) fn.wh_event_free(e);
      throw err;
    }
    const ids = Buffer.alloc(Math.max(built.length, 1) * ID_MAX);
    check(fn.wh_dispatcher_emit_batch(d, built, built.length, ids, ids.length));
    return built.map((_, i) => cString(ids.subarray(i * ID_MAX, (i + 1) * ID_MAX)));
  }

  /**
   * Resolves when nothing is in flight or due now (scheduled retries may
   * remain) and every outcome so far was emitted as a 'result' event.
   * Rejects with WebhookError WH_ETIMEOUT after timeoutMs (-1: no limit).
   */
  async drain(timeoutMs = -1) {
    this._p();
    const deadline = timeoutMs < 0 ? Infinity : Date.now() + timeoutMs;
    for (;;) {
      if (this._state !== 'running') fail(K.WH_ESTATE, 'drain: the dispatcher is not running');
      const left = deadline - Date.now();
      const rc = await this._async('wh_dispatcher_drain', Math.max(0, Math.min(SLICE_MS, left)));
      if (rc === K.WH_OK) break;
      if (rc !== K.WH_ETIMEOUT) throw asyncError(rc, 'drain');
      if (Date.now() >= deadline) throw new WebhookError(K.WH_ETIMEOUT, `drain: deliveries still in flight or due after ${timeoutMs} ms`);
    }
    if (this._pump) await this._pump.flush();
  }

  /** Stop taking events; requests in flight get timeoutMs, then are aborted (they stay pending). */
  async stop(timeoutMs = 5000) {
    this._p();
    const rc = await this._async('wh_dispatcher_stop', timeoutMs);
    if (this._pump) this._pump.wake(); // its queue ends now: the worker sees WH_ESTATE
    if (rc !== K.WH_OK) throw asyncError(rc, 'stop');
  }

  /**
   * Stop (requests in flight get timeoutMs), emit the outcomes still queued,
   * free. Idempotent: every call returns the same promise. 'close' is emitted
   * at the end. Safe from inside a 'result' listener.
   */
  close(timeoutMs = 5000) {
    if (this._closing) return this._closing;
    const wasRunning = this._state === 'running';
    this._state = 'closing';
    this._closing = (async () => {
      if (wasRunning) {
        await callAsync(native().fn.wh_dispatcher_stop, this._ptr, timeoutMs); // WH_ETIMEOUT: aborted, fine
        await Promise.allSettled([...this._pending]);
        if (this._pump) {
          this._pump.wake();
          await this._pump.holding(this._pump.exited);
          this._pump.closeFds();
          live.delete(this._pump);
        }
      }
      this._free();
      super.emit('close');
    })();
    return this._closing;
  }

  get closed() {
    return this._state === 'closed';
  }

  /** Make this the process default dispatcher (of the C function wh_emit). */
  setDefault() {
    this._call('wh_dispatcher_set_default');
  }

  /** A descriptor readable while outcomes wait in the queue; -1 when it is off. */
  get resultFd() {
    return native().fn.wh_dispatcher_result_fd(this._p());
  }

  _json(name, ...args) {
    const out = [null];
    this._call(name, ...args, out);
    const text = takeText(out[0]);
    return name === 'wh_dispatcher_metrics_text' ? text : JSON.parse(text);
  }

  stats() {
    return this._json('wh_dispatcher_stats_json');
  }

  endpointStats(id) {
    return this._json('wh_dispatcher_endpoint_stats_json', str(id, 'endpoint id'));
  }

  /** Prometheus text exposition. */
  metrics() {
    return this._json('wh_dispatcher_metrics_text');
  }

  replay(msgId, endpointId = null) {
    const n = [0];
    this._call('wh_dispatcher_replay', str(msgId, 'msgId'), str(endpointId, 'endpoint id', true), n);
    return Number(n[0]);
  }

  recover(endpointId, since = 0) {
    const n = [0];
    this._call('wh_dispatcher_recover', str(endpointId, 'endpoint id'), millis(since, 'since'), n);
    return Number(n[0]);
  }

  // One outcome from the worker, on the JavaScript thread.
  _deliver(raw) {
    const { nextAttemptMs, ...r } = raw;
    r.nextAttemptAt = nextAttemptMs ? new Date(nextAttemptMs) : null;
    try {
      super.emit('result', r);
    } catch (e) {
      this._handlerError(e);
    }
  }

  // A 'result' listener threw: an 'error' event if someone listens, else an
  // uncaught exception (Node's rule for errors nobody handles). Either way the
  // library's threads never see it: they only fill the queue.
  _handlerError(e) {
    if (this.listenerCount('error') > 0) super.emit('error', e);
    else
      process.nextTick(() => {
        throw e;
      });
  }
}

// ---- signing -------------------------------------------------------------------

function header(headers, name) {
  if (!headers) return undefined;
  if (typeof headers.get === 'function') {
    // fetch Headers (case-insensitive already) or a Map (exact keys, then any case)
    const v = headers.get(name);
    if (v !== undefined && v !== null) return v;
    if (typeof headers.entries === 'function')
      for (const [k, val] of headers.entries()) if (String(k).toLowerCase() === name) return val;
    return undefined;
  }
  if (headers[name] !== undefined) return headers[name];
  for (const k of Object.keys(headers)) if (k.toLowerCase() === name) return headers[k];
  return undefined;
}

function headerText(v) {
  return Array.isArray(v) ? v.join(' ') : String(v);
}

/**
 * Verify an incoming webhook. headers: an object (as http.IncomingMessage#headers),
 * a Map or fetch Headers, names in any case. Throws WebhookError: WH_ESIGNATURE,
 * WH_ETIMESTAMP (outside 5 minutes), WH_EINVAL (a header missing, a bad secret).
 */
function verify(secret, headers, body, { now = 0 } = {}) {
  const vals = ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((n) => {
    const v = header(headers, n);
    if (v === undefined || v === null) fail(K.WH_EINVAL, `verify: header ${n} is missing`);
    return str(headerText(v), n);
  });
  const data = bytes(body);
  check(native().fn.wh_verify(str(secret, 'secret'), vals[0], vals[1], vals[2], data, data.length, now ? seconds(now) : 0));
}

/** The "v1,..." signature of (msgId, timestamp, body): timestamp a Date or unix seconds. */
function sign(secret, msgId, timestamp, body) {
  const data = bytes(body);
  const buf = Buffer.alloc(128);
  check(native().fn.wh_sign(str(secret, 'secret'), str(msgId, 'msgId'), seconds(timestamp), data, data.length, buf, buf.length));
  return cString(buf);
}

function generateSecret() {
  const buf = Buffer.alloc(128);
  check(native().fn.wh_secret_generate(buf, buf.length));
  return cString(buf);
}

const receiverFinalizer = new FinalizationRegistry((ptr) => native().fn.wh_receiver_free(ptr));

/** Checks incoming webhooks ("standard", "github", "stripe", "slack"): signatures, timestamps, replays. */
class Receiver {
  constructor(store = null) {
    const out = [null];
    check(native().fn.wh_receiver_new(out, str(store, 'store', true)));
    this._ptr = out[0];
    receiverFinalizer.register(this, this._ptr, this);
  }

  _p() {
    if (!this._ptr) fail(K.WH_ESTATE, 'receiver is closed');
    return this._ptr;
  }

  addSecret(scheme, secret) {
    check(native().fn.wh_receiver_add_secret(this._p(), str(scheme, 'scheme'), str(secret, 'secret')));
  }

  /** The request's id when authentic and new; throws WH_EEXIST for one seen before. */
  check(headers, body) {
    const entries = typeof headers.entries === 'function' && !(headers instanceof Array) && typeof headers.get === 'function'
      ? [...headers.entries()] : Object.entries(headers);
    const names = entries.map(([k]) => str(String(k), 'header name'));
    const values = entries.map(([, v]) => str(headerText(v), 'header value'));
    const data = bytes(body);
    const buf = Buffer.alloc(1024);
    check(native().fn.wh_receiver_check(this._p(), names, values, names.length, data, data.length, buf, buf.length));
    return cString(buf);
  }

  close() {
    if (!this._ptr) return;
    receiverFinalizer.unregister(this);
    native().fn.wh_receiver_free(this._ptr);
    this._ptr = null;
  }
}

module.exports = {
  openRegistry,
  Registry,
  Dispatcher,
  Receiver,
  WebhookError,
  verify,
  sign,
  generateSecret,
  eventJson,
  constants: K,
  libraryVersion: () => native().fn.wh_version(),
  libraryPath: () => native().path,
  errorFor,
};
