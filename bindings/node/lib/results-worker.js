'use strict';
// The result pump of one Dispatcher, on a worker thread of its own.
//
// It waits with poll() on the dispatcher's result fd (readable while outcomes
// wait in the queue) and on a wake pipe, takes every queued outcome with
// wh_dispatcher_next_result(..., 0) and posts them in batches to the main
// thread, which emits them as 'result' events. No library thread ever waits
// for JavaScript: the library only fills its queue.
//
// Control words shared with the main thread (Int32Array on a SharedArrayBuffer):
//   STOP    set by the main thread at process exit: stop touching native code
//   PARKED  set here once parked (the main thread waits for it, see index.js)
//   FLUSH   a counter the main thread bumps after a drain; once the queue is
//           seen empty after that, {flushed: n} is posted, so that drain()
//           resolves only after every outcome before it was emitted.
//
// It ends by itself when wh_dispatcher_next_result says WH_ESTATE (the
// dispatcher was stopped and its queue is empty), posting {end: true}; only
// then may the main thread free the dispatcher.
//
// Why park instead of letting Node terminate the thread at exit: koffi aborts
// the process when a worker is terminated while inside a native call (its
// return conversion then throws into a terminating isolate). Parked in
// Atomics.wait, the thread is in JavaScript and terminates cleanly.

const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { native, koffi, WORKER_PROTOTYPES } = require('./native');
const { OUTCOMES, constants: K } = require('./constants');

const STOP = 0;
const PARKED = 1;
const FLUSH = 2;
const SLEEP = 3;
const BATCH = 512;
const POLL_MS = 1000; // a bound, in case a wake-up is ever missed

const { fn, path: libPath } = native();
const { ctl, resultFd, wakeFd } = workerData;
// The dispatcher pointer, rebuilt from its address (see WORKER_PROTOTYPES).
const addr = Buffer.alloc(8);
addr.writeBigUInt64LE(BigInt(workerData.address));
const d = koffi.decode(addr, 'void *');
const nextResult = koffi.load(libPath).func(WORKER_PROTOTYPES[0]);

const libc = koffi.load('libc.so.6');
const pollfd = koffi.struct('wh_node_pollfd', { fd: 'int', events: 'short', revents: 'short' });
const poll = libc.func('int poll(_Inout_ wh_node_pollfd *fds, unsigned long nfds, int timeout)');
const POLLIN = 1;
void pollfd;

function park() {
  Atomics.store(ctl, PARKED, 1);
  Atomics.notify(ctl, PARKED);
  for (;;) Atomics.wait(ctl, SLEEP, 0);
}

function readResult(r) {
  const next = Number(fn.wh_result_next_attempt_ms(r));
  const outcome = fn.wh_result_outcome(r);
  return {
    messageId: fn.wh_result_message_id(r),
    endpointId: fn.wh_result_endpoint_id(r),
    outcome: OUTCOMES[outcome] || String(outcome),
    attempt: fn.wh_result_attempt(r),
    httpStatus: fn.wh_result_http_status(r),
    error: fn.wh_result_error(r),
    nextAttemptMs: next,
    durationMs: Number(fn.wh_result_duration_ms(r)),
    endpointDisabled: fn.wh_result_endpoint_disabled(r) !== 0,
  };
}

// Take every queued outcome; returns the last code (WH_ETIMEOUT: empty now).
function takeAll() {
  const out = [null];
  let batch = [];
  let rc;
  while ((rc = nextResult(d, 0, out)) === K.WH_OK) {
    try {
      batch.push(readResult(out[0]));
    } finally {
      fn.wh_result_free(out[0]);
    }
    if (batch.length >= BATCH) {
      parentPort.postMessage({ results: batch });
      batch = [];
    }
  }
  if (batch.length) parentPort.postMessage({ results: batch });
  return rc;
}

const wakeBuf = Buffer.alloc(64);
function clearWake() {
  for (;;) {
    try {
      if (fs.readSync(wakeFd, wakeBuf, 0, wakeBuf.length, null) < wakeBuf.length) return;
    } catch {
      return; // EAGAIN: empty
    }
  }
}

let acked = 0;
for (;;) {
  if (Atomics.load(ctl, STOP)) park();
  const flush = Atomics.load(ctl, FLUSH); // before takeAll: see FLUSH above
  const rc = takeAll();
  if (rc !== K.WH_ETIMEOUT) {
    parentPort.postMessage({ end: true, code: rc });
    break;
  }
  if (flush !== acked) {
    acked = flush;
    parentPort.postMessage({ flushed: flush });
  }
  if (Atomics.load(ctl, STOP)) park();
  const fds = [
    { fd: resultFd, events: POLLIN, revents: 0 },
    { fd: wakeFd, events: POLLIN, revents: 0 },
  ];
  poll(fds, 2, POLL_MS);
  if (fds[1].revents) clearWake();
}
