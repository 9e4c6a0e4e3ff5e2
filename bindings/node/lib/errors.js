'use strict';
// WebhookError: a libwebhook call failed. .code is the WH_E* number, .codeName
// its name ("WH_EINVAL"), .detail what wh_error_last() said.

const { constants } = require('./constants');
const { native } = require('./native');

const NAMES = {};
for (const [name, value] of Object.entries(constants)) if (/^WH_E[A-Z]+$/.test(name)) NAMES[value] = name;

class WebhookError extends Error {
  constructor(code, detail) {
    super(detail || `libwebhook error ${code}`);
    this.name = 'WebhookError';
    this.code = code;
    this.codeName = NAMES[code] || 'WH_E?';
    this.detail = detail || '';
  }
}

// The error of a failed call on this thread (wh_error_last is per thread, and
// a synchronous koffi call runs on the JavaScript thread).
function errorFor(code, detail) {
  const { fn } = native();
  if (detail === undefined) detail = fn.wh_error_last() || fn.wh_strerror(code) || '';
  return new WebhookError(code, detail);
}

function check(rc) {
  if (rc !== 0) throw errorFor(rc);
}

// For calls made on a libuv thread (koffi .async): wh_error_last() belongs to
// that thread, so the detail is the code's fixed text plus what was asked.
function asyncError(code, what) {
  const { fn } = native();
  return new WebhookError(code, `${what}: ${fn.wh_strerror(code)}`);
}

module.exports = { WebhookError, errorFor, check, asyncError };
