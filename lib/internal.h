/*
 * Internals shared by the files of lib/. Nothing here is exported: the build
 * uses hidden visibility and a version script that lets only wh_* out.
 */
#ifndef WEBHOOK_INTERNAL_H
#define WEBHOOK_INTERNAL_H

#include "webhook/webhook.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WH__COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- errors (error.c) ---------------------------------------------------- */

/* Record a message for wh_error_last() on this thread and return code. */
int wh__fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int wh__failv(int code, const char *fmt, va_list ap);
/* Out of memory: a fixed message, no allocation. */
int wh__oom(void);

/* ---- fork (fork.c) ------------------------------------------------------- */

/* The current fork generation, watching for fork() from now on: an object
   created now keeps it and is the parent's once wh__forked(gen) says so. */
unsigned wh__fork_watch(void);
extern atomic_uint wh__fork_gen;
static inline bool wh__forked(unsigned gen)
{
  return atomic_load_explicit(&wh__fork_gen, memory_order_relaxed) != gen;
}

/* ---- time, randomness, ids, encodings (util.c) ---------------------------- */

int64_t wh__now_us(void);   /* wall clock, microseconds since the epoch */
int64_t wh__now_ms(void);   /* wall clock, milliseconds since the epoch */
int64_t wh__mono_ms(void);  /* monotonic clock, milliseconds */
struct timespec;
/* CLOCK_MONOTONIC now + timeout_ms, for waits on condition variables set to that clock. */
void wh__deadline_after(struct timespec *ts, int timeout_ms);
/* "2024-03-26T18:53:16.818Z" for unix milliseconds. */
void wh__iso_ms(int64_t ms, char out[64]);

/* Fill buf with n bytes from the OS CSPRNG (through OpenSSL). */
int wh__random(void *buf, size_t n);
/* A random double in [0, 1), from a fast per-thread generator (not for secrets). */
double wh__rand01(void);

/* prefix + 27 base62 characters: 32 bits of seconds, then 128 random bits.
   Sorts roughly by creation time; never contains '.'. out holds WH_ID_MAX. */
int wh__make_id(const char *prefix, char out[WH_ID_MAX]);

/* Standard base64 with padding. out must hold 4*ceil(n/3)+1 bytes. */
size_t wh__b64_encode(const unsigned char *in, size_t n, char *out);
/* Decode standard base64 (padding optional). Returns the number of bytes
   written or -1 for malformed input or an overflowing out. */
long wh__b64_decode(const char *in, size_t n, unsigned char *out, size_t cap);

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF). */
int wh__utf8_valid(const char *s, size_t n);

char *wh__strdup(const char *s);
char *wh__strndup(const char *s, size_t n);
/* Copy s into out of size len: WH_ERANGE (and a message naming what) when too small. */
int wh__copy_out(const char *what, const char *s, char *out, size_t len);
/* A hash of a NUL-terminated string (ids), for the tables of registry, dispatcher, memory store. */
size_t wh__hash_str(const char *s);
/* ASCII case-insensitive comparison. */
int wh__strcaseeq(const char *a, const char *b);

/* A growing byte buffer. On allocation failure it latches `failed`. */
typedef struct {
  char *p;
  size_t len, cap;
  int failed;
} wh__buf;
void wh__buf_put(wh__buf *b, const void *data, size_t n);
void wh__buf_puts(wh__buf *b, const char *s);
void wh__buf_putc(wh__buf *b, char c);
/* Append s as a JSON string literal, quotes included. */
void wh__buf_json_str(wh__buf *b, const char *s);
/* NUL-terminate and hand the text over (NULL after a failed append). */
char *wh__buf_take(wh__buf *b);
void wh__buf_free(wh__buf *b);

/* ---- JSON (json.c) ---------------------------------------------------------- */

/* Check that in[0..n) is exactly one JSON object (RFC 8259, UTF-8, nesting at most
   max_depth) and produce it without insignificant whitespace, every token byte
   for byte. On failure returns WH_EINVAL with a message prefixed by `what`. */
int wh__json_compact_object(const char *what, const char *in, size_t n, int max_depth,
                            char **out, size_t *out_len);

/* ---- URLs and network policy (url.c, delivery/netpolicy.c) ----------------------------- */

#define WH__URL_MAX 65536
/* Validate an endpoint URL: http/https, host present, no credentials, no
   control characters, at most WH__URL_MAX bytes. Message starts with `what`. */
int wh__url_validate(const char *what, const char *url);
/* A proxy URL: http:// or https://, a host and a port, credentials allowed, no
   path. With shown non-NULL, also a copy without the password for display. */
int wh__proxy_validate(const char *what, const char *url, char **shown);

struct sockaddr;
/* Why an address may not be connected to under the default policy, or NULL
   when it is public. Pure function: the text is static. */
const char *wh__addr_forbidden(const struct sockaddr *sa);
/* The same for a numeric address in text form; "" for a public address,
   NULL when text is not an IP address. */
const char *wh__ip_text_forbidden(const char *text);

/* ---- signing (signing.c) ------------------------------------------------------- */

#define WH__KEY_MAX 128
/* Decode "whsec_<base64>" (prefix optional) into key. Returns the key length,
   or -1 with a WH_EINVAL message prefixed by `what`. */
int wh__secret_decode(const char *what, const char *secret, unsigned char key[WH__KEY_MAX]);
/* "v1," + base64 HMAC of id.ts.body into out (at least WH__SIG_MAX bytes). */
#define WH__SIG_MAX 48
/* HMAC-SHA256 of parts[0..n) one after another (a part of length 0 may be NULL). */
int wh__hmac_sha256(const unsigned char *key, size_t key_len, const void *const *parts, const size_t *lens,
                    size_t n, unsigned char out[32]);
int wh__sign_raw(const unsigned char *key, size_t key_len, const char *msg_id, int64_t ts,
                 const void *body, size_t body_len, char out[WH__SIG_MAX]);

/* Timestamps of signed requests (outgoing verification and incoming webhooks):
   strictly a decimal integer, optional leading '-', at most 18 digits. */
int wh__parse_unix_ts(const char *s, int64_t *out);
/* WH_OK when |now - ts| <= WH__TOLERANCE_S, else WH_ETIMESTAMP with a message naming `what`. */
#define WH__TOLERANCE_S 300
int wh__ts_within(const char *what, int64_t ts, int64_t now);

/* ---- events (event.c) ----------------------------------------------------------- */

/* "<resource_type>.<event_type>" of ev into out (at least 130 bytes). */
void wh__event_type(const wh_event *ev, char *out, size_t len);
/* The event's tenant_id, or NULL. Borrowed. */
const char *wh__event_tenant(const wh_event *ev);
/* Does pattern match the event type "rtype.etype"? Patterns are validated. */
int wh__pattern_valid(const char *pattern);
int wh__pattern_match(const char *pattern, const char *type);

/* ---- registry (registry.c) ---------------------------------------------------------- */

/* What the dispatcher needs of an endpoint: an immutable, reference-counted
   copy, replaced as a whole whenever the endpoint changes. */
typedef struct wh__secret {
  unsigned char key[WH__KEY_MAX];
  int key_len;
  int64_t expires_ms; /* 0: current secret */
  char *text;         /* "whsec_..." */
} wh__secret;

/* Per-endpoint delivery settings (wh_endpoint_set_int/str); zero/NULL: not set. */
typedef struct {
  int ordered;             /* WH_EP_ORDERED */
  long rate_limit;         /* WH_EP_RATE_LIMIT: requests per second */
  long timeout_ms;         /* WH_EP_TIMEOUT_MS */
  char *retry_schedule;    /* WH_EP_RETRY_SCHEDULE, as given ("" is one attempt) */
  int64_t *schedule;       /* ... parsed: nschedule delays in ms */
  int nschedule;
  char *proxy;             /* WH_EP_PROXY: its URL, credentials included */
  char *client_cert;       /* WH_EP_CLIENT_CERT: path of a PEM file, certificate and key */
} wh__ep_settings;

typedef struct wh__endpoint {
  /* What routing reads of every candidate endpoint, first, in one cache line:
     an emit of a tenant met in no cache yet pays fewer misses. */
  atomic_int refs;
  int enabled;
  char **filters;
  size_t nfilters;
  char id[WH_ID_MAX];
  char *tenant;            /* the owning tenant; NULL: a platform endpoint */
  char *name, *url, *description, *disabled_reason;
  int64_t created_ms;
  int64_t enabled_ms;      /* when it was last enabled (or loaded): failures before it do not count */
  uint64_t generation;     /* changes with every modification */
  uint64_t seq;            /* the registry's order: increasing in the order they were added */
  char **headers;          /* "Name: value", ready for the wire */
  size_t nheaders;
  wh__secret *secrets;     /* newest first */
  size_t nsecrets;
  wh__ep_settings set;
} wh__endpoint;

void wh__endpoint_ref(wh__endpoint *ep);
void wh__endpoint_unref(wh__endpoint *ep);
int wh__endpoint_matches(const wh__endpoint *ep, const char *type);
/* The webhook-signature value for every secret active at now_ms into out;
   returns its length, 0 when len is too small. */
size_t wh__endpoint_sign(const wh__endpoint *ep, const char *msg_id, int64_t ts, const void *body,
                         size_t body_len, int64_t now_ms, char *out, size_t len);

/* The endpoint by id as reg sees it (a view: only its tenant's), referenced
   (unref when done), or NULL. */
wh__endpoint *wh__registry_get(wh_registry *reg, const char *id);
/* As wh__registry_get, but never waits: NULL when the registry is being
   changed right now (for callers holding a lock of their own). */
wh__endpoint *wh__registry_peek(wh_registry *reg, const char *id);
/* Every enabled endpoint that matches type and receives events of tenant (NULL:
   an event without a tenant): the tenant's own and the platform's. Referenced,
   into a new array. The cost grows with those endpoints only. */
int wh__registry_match(wh_registry *reg, const char *tenant, const char *type, wh__endpoint ***out, size_t *n);
/* An endpoint's limits, and its checks as the registry's functions make them
   (same codes and messages), for callers that validate before changing anything. */
#define WH__MAX_FILTERS 256
#define WH__MAX_HEADERS 64
int wh__check_name(const char *name);
int wh__check_description(const char *description); /* NULL is fine */
int wh__check_header(const char *name, const char *value); /* value NULL: a removal */
int wh__check_pattern(const char *pattern);
/* The checks of wh_endpoint_set_int / wh_endpoint_set_str (a client certificate
   file is read), without changing anything. */
int wh__check_setting_int(int setting, long value);
int wh__check_setting_str(int setting, const char *value);
/* Disable an endpoint with a reason (used by the dispatcher). */
int wh__registry_disable(wh_registry *reg, const char *id, const char *reason);

struct wh__store;
struct wh__store *wh__registry_store(wh_registry *reg);
/* A registry is freed when its last reference goes: the host's (wh_registry_free),
   its views' and its dispatchers'. */
void wh__registry_ref(wh_registry *reg);
void wh__registry_unref(wh_registry *reg);
/* WH_OK, or WH_EINVAL for NULL, or WH_ESTATE in a forked child for a registry
   of the parent (whose locks a parent's thread may have held at the fork). */
int wh__registry_check(wh_registry *reg, const char *what);
/* The root registry behind reg (reg itself unless it is a tenant view). */
wh_registry *wh__registry_root(wh_registry *reg);
/* Running dispatchers register fn, called (quickly, under a registry mutex)
   when deliveries were queued in the store outside emit: replay, recovery, a
   test event. notify returns how many were told; running says whether any is. */
int wh__registry_watch(wh_registry *reg, void (*fn)(void *ud), void *ud);
void wh__registry_unwatch(wh_registry *reg, void (*fn)(void *ud), void *ud);
int wh__registry_notify(wh_registry *reg);
int wh__registry_running(wh_registry *reg);
/* The ids of a view's endpoints, sorted, for the log's filter; free with wh__strv_free. */
int wh__registry_tenant_ids(wh_registry *reg, char ***ids, size_t *n);
void wh__strv_free(char **v, size_t n);

#endif /* WEBHOOK_INTERNAL_H */
