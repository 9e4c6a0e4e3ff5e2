'use strict';
// Loading libwebhook.so.1 through koffi and declaring its functions.
//
// PROTOTYPES is the binding's copy of include/webhook/webhook.h, one C
// prototype per function; test/header.test.js parses the header and checks
// every one of them (names, argument counts, types), so they cannot drift.
// Differences from the header are only in how koffi is told to pass a value:
// _Out_ on out-parameters, and `void **` for text the library allocates (kept
// as a pointer so that it can be handed back to wh_free).
//
// No callback is ever handed to the library: results come from the result
// queue (see results-worker.js), so no library thread ever waits for JavaScript.

const fs = require('node:fs');
const path = require('node:path');
const koffi = require('koffi');

const SONAME = 'libwebhook.so.1';

const PROTOTYPES = [
  // version and errors
  'const char *wh_version(void)',
  'unsigned int wh_version_num(void)',
  'const char *wh_strerror(int code)',
  'const char *wh_error_last(void)',
  'void wh_free(void *p)',
  // registry
  'int wh_registry_open(_Out_ wh_registry **out, const char *store)',
  'void wh_registry_free(wh_registry *reg)',
  'int wh_registry_open_tenant(_Out_ wh_registry **view_out, wh_registry *reg, const char *tenant_id)',
  'const char *wh_registry_tenant_id(const wh_registry *reg)',
  'int wh_registry_set_int(wh_registry *reg, int setting, long value)',
  'int wh_endpoint_add(wh_registry *reg, const char *name, const char *url, const char *description, char *id_out, size_t id_len)',
  'int wh_endpoint_remove(wh_registry *reg, const char *id)',
  'int wh_endpoint_set_enabled(wh_registry *reg, const char *id, int enabled)',
  'int wh_endpoint_set_url(wh_registry *reg, const char *id, const char *url)',
  'int wh_endpoint_set_name(wh_registry *reg, const char *id, const char *name)',
  'int wh_endpoint_set_description(wh_registry *reg, const char *id, const char *description)',
  'int wh_endpoint_subscribe(wh_registry *reg, const char *id, const char *pattern)',
  'int wh_endpoint_unsubscribe(wh_registry *reg, const char *id, const char *pattern)',
  'int wh_endpoint_set_header(wh_registry *reg, const char *id, const char *name, const char *value)',
  'int wh_endpoint_secret(wh_registry *reg, const char *id, char *buf, size_t len)',
  'int wh_endpoint_rotate_secret(wh_registry *reg, const char *id, const char *new_secret, unsigned int grace_seconds)',
  'int wh_endpoint_signature(wh_registry *reg, const char *id, const char *msg_id, int64_t timestamp, const void *body, size_t body_len, char *header_out, size_t len)',
  'int wh_endpoint_get_json(wh_registry *reg, const char *id, _Out_ void **json_out)',
  'int wh_endpoint_list_json(wh_registry *reg, _Out_ void **json_out)',
  // events
  'int wh_event_new(_Out_ wh_event **out, const char *resource_type, const char *event_type)',
  'int wh_event_set_resource_json(wh_event *ev, const char *json)',
  'int wh_event_set_resource_id(wh_event *ev, const char *id)',
  'int wh_event_set_tenant_id(wh_event *ev, const char *id)',
  'int wh_event_set_user_id(wh_event *ev, const char *id)',
  'int wh_event_set_time(wh_event *ev, int64_t unix_micros)',
  'int wh_event_to_json(const wh_event *ev, _Out_ void **json_out)',
  'void wh_event_free(wh_event *ev)',
  // dispatcher
  'int wh_dispatcher_new(_Out_ wh_dispatcher **out, wh_registry *reg)',
  'int wh_dispatcher_set_int(wh_dispatcher *d, int opt, long value)',
  'int wh_dispatcher_set_str(wh_dispatcher *d, int opt, const char *value)',
  'int wh_dispatcher_start(wh_dispatcher *d)',
  'int wh_dispatcher_emit(wh_dispatcher *d, wh_event *ev, char *msg_id_out, size_t len)',
  'int wh_dispatcher_emit_batch(wh_dispatcher *d, wh_event **evs, size_t n, char *ids_out, size_t ids_len)',
  'int wh_emit(wh_event *ev)',
  'int wh_dispatcher_set_default(wh_dispatcher *d)',
  'int wh_dispatcher_drain(wh_dispatcher *d, int timeout_ms)',
  'int wh_dispatcher_stop(wh_dispatcher *d, int timeout_ms)',
  'void wh_dispatcher_free(wh_dispatcher *d)',
  // results
  'const char *wh_result_message_id(const wh_result *r)',
  'const char *wh_result_endpoint_id(const wh_result *r)',
  'int wh_result_outcome(const wh_result *r)',
  'int wh_result_attempt(const wh_result *r)',
  'int wh_result_http_status(const wh_result *r)',
  'const char *wh_result_error(const wh_result *r)',
  'int64_t wh_result_next_attempt_ms(const wh_result *r)',
  'int64_t wh_result_duration_ms(const wh_result *r)',
  'int wh_result_endpoint_disabled(const wh_result *r)',
  // Declared for completeness; the binding never registers a callback.
  'int wh_dispatcher_on_result(wh_dispatcher *d, void *cb, void *userdata)',
  'int wh_dispatcher_on_disabled(wh_dispatcher *d, void *cb, void *userdata)',
  'int wh_dispatcher_next_result(wh_dispatcher *d, int timeout_ms, _Out_ wh_result **out)',
  'void wh_result_free(wh_result *r)',
  'int wh_dispatcher_result_fd(wh_dispatcher *d)',
  // attempt log, replay, retention
  'int wh_message_get_json(wh_registry *reg, const char *msg_id, _Out_ void **json_out)',
  'int wh_endpoint_failed_json(wh_registry *reg, const char *id, int64_t since_unix_ms, size_t limit, _Out_ void **json_out)',
  'int wh_dispatcher_replay(wh_dispatcher *d, const char *msg_id, const char *endpoint_id, _Out_ size_t *count_out)',
  'int wh_dispatcher_recover(wh_dispatcher *d, const char *endpoint_id, int64_t since_unix_ms, _Out_ size_t *count_out)',
  'int wh_registry_purge(wh_registry *reg, int64_t before_unix_ms, _Out_ size_t *count_out)',
  'int wh_message_replay(wh_registry *reg, const char *msg_id, const char *endpoint_id, _Out_ size_t *count_out)',
  'int wh_endpoint_recover(wh_registry *reg, const char *endpoint_id, int64_t since_unix_ms, _Out_ size_t *count_out)',
  'int wh_endpoint_send_test(wh_registry *reg, const char *endpoint_id, char *msg_id_out, size_t len)',
  // stats, metrics, logs
  'int wh_dispatcher_stats_json(wh_dispatcher *d, _Out_ void **json_out)',
  'int wh_dispatcher_endpoint_stats_json(wh_dispatcher *d, const char *endpoint_id, _Out_ void **json_out)',
  'int wh_dispatcher_metrics_text(wh_dispatcher *d, _Out_ void **text_out)',
  'int wh_dispatcher_on_log(wh_dispatcher *d, int max_level, void *cb, void *userdata)',
  // per-endpoint settings
  'int wh_endpoint_set_int(wh_registry *reg, const char *id, int setting, long value)',
  'int wh_endpoint_set_str(wh_registry *reg, const char *id, int setting, const char *value)',
  // incoming webhooks
  'int wh_receiver_new(_Out_ wh_receiver **out, const char *store)',
  'void wh_receiver_free(wh_receiver *rc)',
  'int wh_receiver_add_secret(wh_receiver *rc, const char *scheme, const char *secret)',
  'int wh_receiver_check(wh_receiver *rc, const char **header_names, const char **header_values, size_t n_headers, const void *body, size_t body_len, char *id_out, size_t id_len)',
  // admin API
  'int wh_admin_handle(wh_registry *reg, wh_dispatcher *d, const char *method, const char *path, const void *body, size_t body_len, _Out_ int *status_out, _Out_ void **body_out)',
  // signing and verification
  'int wh_secret_generate(char *buf, size_t len)',
  'int wh_sign(const char *secret, const char *msg_id, int64_t timestamp, const void *body, size_t body_len, char *sig_out, size_t sig_len)',
  'int wh_verify(const char *secret, const char *msg_id, const char *timestamp, const char *signature_header, const void *body, size_t body_len, int64_t now)',
];

// The results worker gets the dispatcher as an address and rebuilds it as a
// plain pointer (koffi cannot give a typed one back from an address), so it
// declares the one dispatcher function it calls with `void *d`.
const WORKER_PROTOTYPES = ['int wh_dispatcher_next_result(void *d, int timeout_ms, _Out_ wh_result **out)'];

for (const t of ['wh_registry', 'wh_event', 'wh_dispatcher', 'wh_result', 'wh_receiver']) koffi.opaque(t);

// Where to look, in order: LIBWEBHOOK_PATH (the file, or its folder), the
// dynamic linker's search path (LD_LIBRARY_PATH, ld.so.cache), then the usual
// install prefixes.
function candidates() {
  const env = process.env.LIBWEBHOOK_PATH;
  if (env) {
    let isDir = false;
    try {
      isDir = fs.statSync(env).isDirectory();
    } catch {}
    return [isDir ? path.join(env, SONAME) : env];
  }
  const out = [SONAME];
  for (const prefix of ['/usr/local', '/usr'])
    for (const dir of ['lib', 'lib/x86_64-linux-gnu', 'lib/aarch64-linux-gnu', 'lib64']) out.push(path.join(prefix, dir, SONAME));
  return out;
}

function nameOf(proto) {
  return /([A-Za-z_][A-Za-z0-9_]*)\s*\(/.exec(proto)[1];
}

let loaded = null;

// The library: { path, fn: {name: function} }, loaded on first use.
function native() {
  if (loaded) return loaded;
  const tried = [];
  let lib = null;
  let libPath = null;
  for (const p of candidates()) {
    try {
      lib = koffi.load(p);
      libPath = p;
      break;
    } catch (e) {
      tried.push(`${p}: ${e.message}`);
    }
  }
  if (!lib) {
    throw new Error(
      'libwebhook: cannot load libwebhook.so.1; install libwebhook (cmake --install), ' +
        `or set LIBWEBHOOK_PATH to the library file. Tried:\n  ${tried.join('\n  ')}`,
    );
  }
  const fn = {};
  let version = '?';
  for (const proto of PROTOTYPES) {
    const name = nameOf(proto);
    try {
      fn[name] = lib.func(proto);
    } catch (e) {
      if (!/Cannot find function/.test(e.message)) throw e; // a mistake of ours, not the library's
      // An older library: the binding still loads, the call says what is missing.
      fn[name] = () => {
        throw new Error(`${libPath}: libwebhook ${version} has no ${name}() (this binding needs 1.1)`);
      };
    }
    if (name === 'wh_version') version = fn[name]();
  }
  loaded = { path: libPath, fn, koffi };
  return loaded;
}

module.exports = { PROTOTYPES, WORKER_PROTOTYPES, SONAME, native, nameOf, koffi };
