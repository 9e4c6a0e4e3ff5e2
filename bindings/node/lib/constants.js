'use strict';
// The numbers of include/webhook/webhook.h, under their names in the header.
// test/header.test.js checks each one against the header, so they cannot drift.

const constants = Object.freeze({
  // result codes
  WH_OK: 0,
  WH_EINVAL: 1,
  WH_ENOMEM: 2,
  WH_ENOTFOUND: 3,
  WH_EEXIST: 4,
  WH_ESTATE: 5,
  WH_EFULL: 6,
  WH_ESTORE: 7,
  WH_ETIMEOUT: 8,
  WH_ESIGNATURE: 9,
  WH_ETIMESTAMP: 10,
  WH_EPOLICY: 11,
  WH_ERANGE: 12,
  // delivery outcomes
  WH_DELIVERED: 1,
  WH_RETRYING: 2,
  WH_FAILED: 3,
  // log levels
  WH_LOG_ERROR: 1,
  WH_LOG_WARN: 2,
  WH_LOG_INFO: 3,
  WH_LOG_DEBUG: 4,
  // registry settings
  WH_REG_TENANT_MAX_ENDPOINTS: 1,
  // endpoint settings
  WH_EP_ORDERED: 1,
  WH_EP_RATE_LIMIT: 2,
  WH_EP_TIMEOUT_MS: 3,
  WH_EP_RETRY_SCHEDULE: 4,
  WH_EP_PROXY: 5,
  WH_EP_CLIENT_CERT: 6,
  // dispatcher options
  WH_OPT_WORKERS: 1,
  WH_OPT_MAX_IN_FLIGHT: 2,
  WH_OPT_MAX_PER_ENDPOINT: 3,
  WH_OPT_TIMEOUT_MS: 4,
  WH_OPT_CONNECT_TIMEOUT_MS: 5,
  WH_OPT_RETRY_SCHEDULE: 6,
  WH_OPT_ALLOW_PRIVATE_NETWORKS: 7,
  WH_OPT_QUEUE_LIMIT: 8,
  WH_OPT_USER_AGENT: 9,
  WH_OPT_CA_FILE: 10,
  WH_OPT_RETRY_JITTER_PCT: 11,
  WH_OPT_DISABLE_AFTER_MS: 12,
  WH_OPT_BREAKER_WINDOW_MS: 13,
  WH_OPT_BREAKER_MIN_REQUESTS: 14,
  WH_OPT_BREAKER_FAILURE_PCT: 15,
  WH_OPT_BREAKER_COOLDOWN_MS: 16,
  WH_OPT_THROTTLE_MIN_DELAY_MS: 17,
  WH_OPT_MAX_BODY_BYTES: 18,
  WH_OPT_RETENTION_DAYS: 19,
  WH_OPT_LEASE_MS: 20,
  WH_OPT_PROCESS_DEFAULT: 21,
  WH_OPT_RESULT_QUEUE: 22,
  WH_OPT_PROXY: 23,
  WH_ID_MAX: 64,
});

// camelCase name of a WH_OPT_* / WH_EP_* constant: WH_OPT_MAX_IN_FLIGHT -> maxInFlight.
function camel(name, prefix) {
  return name
    .slice(prefix.length)
    .toLowerCase()
    .replace(/_([a-z])/g, (_, c) => c.toUpperCase());
}

function kindsOf(prefix, text, bools) {
  const out = {};
  for (const [name, value] of Object.entries(constants)) {
    if (!name.startsWith(prefix)) continue;
    const key = camel(name, prefix);
    out[key] = { value, kind: text.includes(key) ? 'str' : bools.includes(key) ? 'bool' : 'int' };
  }
  return Object.freeze(out);
}

// Dispatcher options by their key in the options object: { value, kind }.
const OPTIONS = kindsOf('WH_OPT_', ['retrySchedule', 'userAgent', 'caFile', 'proxy'], [
  'allowPrivateNetworks',
  'processDefault',
]);
// Endpoint settings by their key in configureEndpoint(): { value, kind }.
const ENDPOINT_SETTINGS = kindsOf('WH_EP_', ['retrySchedule', 'proxy', 'clientCert'], ['ordered']);

const OUTCOMES = Object.freeze({ 1: 'delivered', 2: 'retrying', 3: 'failed' });

module.exports = { constants, OPTIONS, ENDPOINT_SETTINGS, OUTCOMES, camel };
