/**
 * @file webhook/webhook.h
 * @brief libwebhook - send and verify webhooks (Standard Webhooks v1) from C.
 *
 * This is the one public header. It compiles alone as C99 and as C++, and
 * names no type of the libraries libwebhook is built on.
 *
 * Conventions (see docs/guide.md for the long form):
 *  - Objects are opaque and created through an `**out` parameter; each has a
 *    `*_free` that accepts NULL. What a constructor fills belongs to the caller.
 *  - Functions that can fail return `int`: WH_OK (0) or a positive WH_E* code.
 *    wh_error_last() then tells, for the calling thread, what went wrong.
 *  - Text the library allocates for the caller is released with wh_free().
 *    A returned `const char *` is borrowed: do not free it.
 *  - Callbacks take `void *userdata` last; each says which thread runs it.
 *  - No varargs: every function can be called through an FFI as it is.
 *
 * The sections of this file are the groups of the API reference
 * (`cmake --build build --target docs`) and of the man pages, one page per
 * function (`man 3 libwebhook` lists them).
 */
#ifndef WEBHOOK_WEBHOOK_H
#define WEBHOOK_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

/**
 * @def WH_EXTERN
 * Marks a public function: exported from the shared library, which hides
 * everything else. Define WEBHOOK_STATIC before the include when linking the
 * static library on Windows.
 */
#if defined(_WIN32) && !defined(WEBHOOK_STATIC)
#  if defined(WEBHOOK_BUILDING)
#    define WH_EXTERN __declspec(dllexport)
#  else
#    define WH_EXTERN __declspec(dllimport)
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define WH_EXTERN __attribute__((visibility("default")))
#else
#  define WH_EXTERN
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                    */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup version Version and errors
 * The library's version, and how every function reports a failure.
 * @{
 */

/** Major version of this header: 1 for as long as the ABI is libwebhook.so.1. */
#define WH_VERSION_MAJOR 1
/** Minor version of this header: grows with additions. */
#define WH_VERSION_MINOR 1
/** Patch version of this header: fixes only. */
#define WH_VERSION_PATCH 0
/** The version as 0xMMmmpp, for compile-time comparisons. */
#define WH_VERSION_NUM   0x010100
/** The version as text, "MAJOR.MINOR.PATCH"; compare it with wh_version() at run time. */
#define WH_VERSION_STRING "1.1.0"

/**
 * The version of the library actually loaded, which may be newer than the header.
 * @return static text, "1.1.0".
 * @threadsafety Safe from any thread.
 */
WH_EXTERN const char *wh_version(void);
/**
 * The version of the library actually loaded, as a number.
 * @return 0xMMmmpp, as WH_VERSION_NUM.
 */
WH_EXTERN unsigned wh_version_num(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                     */
/* ------------------------------------------------------------------------ */

/** Result codes. The numbers never change meaning and are never reused. */
enum {
  WH_OK = 0,          /**< success */
  WH_EINVAL = 1,      /**< bad argument: NULL, malformed URL, JSON, secret, pattern */
  WH_ENOMEM = 2,      /**< out of memory */
  WH_ENOTFOUND = 3,   /**< no such endpoint / message */
  WH_EEXIST = 4,      /**< duplicate id or name */
  WH_ESTATE = 5,      /**< wrong lifecycle state: emit before start or after stop, set after start */
  WH_EFULL = 6,       /**< bounded queue is full (memory store) */
  WH_ESTORE = 7,      /**< storage backend failed (disk full, database down) */
  WH_ETIMEOUT = 8,    /**< drain / stop ran out of time */
  WH_ESIGNATURE = 9,  /**< verify: no signature matched */
  WH_ETIMESTAMP = 10, /**< verify: timestamp missing, malformed or outside tolerance */
  WH_EPOLICY = 11,    /**< destination refused by network policy (private address, scheme) */
  WH_ERANGE = 12      /**< caller buffer too small */
};

/**
 * Fixed text for a result code ("invalid argument", ...).
 * @param code a WH_E* code, or WH_OK.
 * @return static text; "unknown error" for a code the library does not know.
 * @threadsafety Safe from any thread.
 */
WH_EXTERN const char *wh_strerror(int code);

/**
 * Detail about the last failure on the calling thread, for example
 * "endpoint url: scheme must be http or https".
 * @threadsafety Per thread: it describes the calling thread's last failure.
 * @return thread-local text owned by the library, valid until the next
 *         failing libwebhook call on the same thread; "" when there is none.
 *         Successful calls leave it unchanged.
 */
WH_EXTERN const char *wh_error_last(void);

/**
 * Release text that the library allocated for the caller.
 * @param p what a `char **..._out` parameter received; NULL is fine.
 */
WH_EXTERN void wh_free(void *p);

/** @} */

/* ------------------------------------------------------------------------ */
/* Registry: where endpoints live                                             */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup registry Registry
 * Where endpoints live: open a store, add, change and list endpoints.
 * @{
 */

/**
 * The set of endpoints an administrator registered.
 * @threadsafety Every function on a registry is safe to call from any number of
 * threads at once.
 */
typedef struct wh_registry wh_registry;

/** Any id the library returns fits in this many bytes, NUL included. */
#define WH_ID_MAX 64

/**
 * Open a registry.
 * @param out   receives the registry; free it with wh_registry_free().
 * @param store NULL or "memory:" (in this process only), "sqlite:PATH" (a durable
 *              file), "postgresql://..." (shared between processes).
 * @return WH_OK; WH_EINVAL for a store string that is not understood;
 *         WH_ESTORE when the store cannot be opened.
 */
WH_EXTERN int wh_registry_open(wh_registry **out, const char *store);

/**
 * Release a registry or a tenant view. NULL is fine. A registry lives until
 * its last dispatcher and its last view are freed too, so the order in which
 * they are freed does not matter (a garbage collector may pick any).
 */
WH_EXTERN void wh_registry_free(wh_registry *reg);

/**
 * @defgroup tenants Tenants
 * @ingroup registry
 * Views of a registry limited to one tenant, and the limits set on tenants.
 * @{
 */

/**
 * Open a view of reg limited to one tenant. Through the view every registry
 * function sees only the tenant's own endpoints and messages: anything else is
 * WH_ENOTFOUND, exactly as if it did not exist. Endpoints added through the
 * view belong to the tenant; endpoints added through the root registry are
 * platform endpoints ("tenant_id": null), which receive the events of every
 * tenant. Names are unique within one tenant (and among platform endpoints).
 * An event whose tenant_id is T goes to the matching enabled endpoints of T and
 * to the matching enabled platform endpoints; an event without a tenant goes
 * to platform endpoints only.
 * @param view_out  receives the view; free it with wh_registry_free(). The view
 *                  keeps reg alive: freeing reg first is safe.
 * @param reg       the root registry, or a view of the same tenant.
 * @param tenant_id 1..1024 bytes of UTF-8, compared byte for byte.
 * @return WH_OK; WH_EINVAL for an empty, too long or non-UTF-8 tenant id, or
 *         when reg is a view of another tenant.
 */
WH_EXTERN int wh_registry_open_tenant(wh_registry **view_out, wh_registry *reg, const char *tenant_id);

/**
 * The tenant a view is limited to.
 * @return borrowed text valid while the view lives; NULL for the root registry.
 */
WH_EXTERN const char *wh_registry_tenant_id(const wh_registry *reg);

/** Registry settings, for wh_registry_set_int(). */
enum {
  WH_REG_TENANT_MAX_ENDPOINTS = 1 /**< long: endpoints one tenant may have; 0 = no limit (default).
                                       wh_endpoint_add() through a view beyond it: WH_EFULL */
};

/**
 * Change a registry setting. On the root registry only (WH_EINVAL on a view).
 * Settings are kept in this process (not in the store); set them after open.
 */
WH_EXTERN int wh_registry_set_int(wh_registry *reg, int setting, long value);

/** @} */

/**
 * Register an outgoing webhook, enabled, with a freshly generated secret and
 * no filter (it receives every event).
 * Through a tenant view the endpoint belongs to that tenant; through the root
 * registry it is a platform endpoint (see wh_registry_open_tenant()).
 * @param reg         the root registry, or a tenant view.
 * @param name        1..256 bytes of UTF-8, unique within its tenant, or among platform
 *                    endpoints (WH_EEXIST otherwise).
 * @param url         http:// or https:// URL with a host, no user:password, at most 65,536 bytes.
 * @param description may be NULL; at most 4096 bytes of UTF-8.
 * @param id_out      receives the new endpoint id ("ep_..."); may be NULL.
 * @param id_len      size of id_out; at least WH_ID_MAX when id_out is not NULL,
 *                    WH_ERANGE otherwise (nothing is added then).
 * @return WH_OK; WH_EINVAL; WH_EEXIST; WH_EFULL through a view whose tenant has
 *         WH_REG_TENANT_MAX_ENDPOINTS endpoints already; WH_ESTORE.
 */
WH_EXTERN int wh_endpoint_add(wh_registry *reg, const char *name, const char *url,
                              const char *description, char *id_out, size_t id_len);

/** Remove an endpoint. Deliveries still pending for it end as WH_FAILED. */
WH_EXTERN int wh_endpoint_remove(wh_registry *reg, const char *id);

/**
 * Enable (1) or disable (0) an endpoint. A disabled endpoint is not matched by
 * new events; enabling one clears its failure history and disable reason.
 */
WH_EXTERN int wh_endpoint_set_enabled(wh_registry *reg, const char *id, int enabled);

/** Change an endpoint's URL (same rules as wh_endpoint_add). Pending deliveries go to the new URL. */
WH_EXTERN int wh_endpoint_set_url(wh_registry *reg, const char *id, const char *url);

/** Rename an endpoint (same rules as wh_endpoint_add(): unique within its tenant, WH_EEXIST otherwise). */
WH_EXTERN int wh_endpoint_set_name(wh_registry *reg, const char *id, const char *name);

/** Change an endpoint's description (NULL: none; at most 4096 bytes of UTF-8). */
WH_EXTERN int wh_endpoint_set_description(wh_registry *reg, const char *id, const char *description);

/**
 * Subscribe an endpoint to events whose type "<resource_type>.<event_type>"
 * matches pattern: "people.CREATE", "people.*", "*.DELETE" or "*".
 * An endpoint with no filter receives every event. Subscribing twice to the
 * same pattern is harmless.
 */
WH_EXTERN int wh_endpoint_subscribe(wh_registry *reg, const char *id, const char *pattern);

/**
 * Remove one pattern that wh_endpoint_subscribe() added.
 * @return WH_ENOTFOUND when the endpoint does not have that pattern.
 */
WH_EXTERN int wh_endpoint_unsubscribe(wh_registry *reg, const char *id, const char *pattern);

/**
 * Set (or, with value NULL, remove) a custom header sent with every request to
 * this endpoint. Names are HTTP tokens; content-type, content-length,
 * transfer-encoding, host, user-agent, connection and webhook-* are refused.
 * Values: at most 4096 bytes, no CR, LF or NUL.
 */
WH_EXTERN int wh_endpoint_set_header(wh_registry *reg, const char *id, const char *name,
                                     const char *value);

/**
 * Copy the endpoint's current signing secret ("whsec_...") into buf.
 * @return WH_ERANGE when len is too small (128 bytes always suffice).
 */
WH_EXTERN int wh_endpoint_secret(wh_registry *reg, const char *id, char *buf, size_t len);

/**
 * Make new_secret the endpoint's signing secret (NULL: generate one). The
 * previous secret keeps signing alongside it for grace_seconds (0: retire it
 * at once), so receivers can switch without rejecting a message.
 * new_secret must be "whsec_" + base64 of 24..64 bytes.
 */
WH_EXTERN int wh_endpoint_rotate_secret(wh_registry *reg, const char *id,
                                        const char *new_secret, unsigned grace_seconds);

/**
 * The webhook-signature header value this endpoint's deliveries carry for
 * (msg_id, timestamp, body): one "v1,..." entry per active secret (the current
 * one first, then those still in their rotation grace period), space separated.
 * @return WH_ERANGE when len is too small (100 bytes per active secret suffice).
 */
WH_EXTERN int wh_endpoint_signature(wh_registry *reg, const char *id, const char *msg_id,
                                    int64_t timestamp, const void *body, size_t body_len,
                                    char *header_out, size_t len);

/**
 * The endpoint as JSON: {"id","name","url","description","enabled",
 * "filters":[...],"headers":{...},"created_at","disabled_reason","tenant_id",
 * "settings":{...}}. "tenant_id" is the owning tenant, or null for a platform
 * endpoint; "settings" holds the per-endpoint settings of wh_endpoint_set_int()
 * and wh_endpoint_set_str() that are set ("ordered", "rate_limit",
 * "timeout_ms", "retry_schedule", "proxy", "client_cert"). Never a secret nor
 * a key.
 * @param reg      the registry, or a tenant view.
 * @param id       the endpoint id.
 * @param json_out receives text to release with wh_free().
 */
WH_EXTERN int wh_endpoint_get_json(wh_registry *reg, const char *id, char **json_out);

/** Every endpoint (of the view's tenant, on a view), in the order they were added, as a JSON
    array of the objects above. */
WH_EXTERN int wh_endpoint_list_json(wh_registry *reg, char **json_out);

/** @} */

/* ------------------------------------------------------------------------ */
/* Event builder: the Casebook envelope                                       */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup event Event builder
 * Build one event, the Casebook envelope that endpoints receive.
 * @{
 */

/**
 * One event being built.
 * @threadsafety Not thread-safe: build an event on one thread at a time, then
 * hand it to emit.
 */
typedef struct wh_event wh_event;

/**
 * Start an event of type "<resource_type>.<event_type>". Both are 1..64
 * characters of [A-Za-z0-9_-]. The event time defaults to now.
 * @param out receives the event; free it with wh_event_free() unless it is
 *            handed to wh_dispatcher_emit()/wh_emit(), which take it.
 * @param resource_type for example "people".
 * @param event_type    for example "CREATE".
 */
WH_EXTERN int wh_event_new(wh_event **out, const char *resource_type, const char *event_type);

/**
 * Set the resource: a JSON object, valid UTF-8, nested at most 512 levels.
 * It is carried through unchanged (key order, nesting, strings, escapes,
 * numbers as written); only whitespace between tokens is removed.
 * Default: {}. Anything but an object is WH_EINVAL.
 */
WH_EXTERN int wh_event_set_resource_json(wh_event *ev, const char *json);

/** Set "resource_id" (NULL: back to null). Any UTF-8 text up to 1024 bytes. */
WH_EXTERN int wh_event_set_resource_id(wh_event *ev, const char *id);
/** Set "tenant_id" (NULL: back to null). Any UTF-8 text up to 1024 bytes. */
WH_EXTERN int wh_event_set_tenant_id(wh_event *ev, const char *id);
/** Set "user_id" (NULL: back to null). Any UTF-8 text up to 1024 bytes. */
WH_EXTERN int wh_event_set_user_id(wh_event *ev, const char *id);

/**
 * Set "event_time" as microseconds since 1970-01-01T00:00:00Z, between year
 * 1970 and 9999. Default: the time of wh_event_new().
 */
WH_EXTERN int wh_event_set_time(wh_event *ev, int64_t unix_micros);

/**
 * The envelope, exactly the bytes sent: keys resource, tenant_id, user_id,
 * resource_id, resource_type, event_type, event_time in that order, no
 * whitespace, event_time as "2024-03-26T18:53:16.818049Z".
 * @param ev       the event.
 * @param json_out receives text to release with wh_free().
 */
WH_EXTERN int wh_event_to_json(const wh_event *ev, char **json_out);

/** Free an event that was not handed to emit. NULL is fine. */
WH_EXTERN void wh_event_free(wh_event *ev);

/** @} */

/* ------------------------------------------------------------------------ */
/* Dispatcher: delivery                                                       */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup dispatcher Dispatcher
 * Delivery: options, start and stop, emit.
 * @{
 */

/**
 * Delivers events to the endpoints of a registry with a pool of worker
 * threads. Configure it, start it, emit from any thread, stop it, free it.
 * @threadsafety wh_dispatcher_emit() and wh_emit() from any number of threads at
 * once; options and callbacks from one thread before wh_dispatcher_start(); see
 * each function, and docs/threading.md.
 */
typedef struct wh_dispatcher wh_dispatcher;

/** Dispatcher options; set them before wh_dispatcher_start(). */
typedef enum {
  WH_OPT_WORKERS = 1,              /**< int: worker threads, default 2, 1..64 */
  WH_OPT_MAX_IN_FLIGHT = 2,        /**< int: concurrent requests overall, default 256 */
  WH_OPT_MAX_PER_ENDPOINT = 3,     /**< int: most concurrent requests to one endpoint, default 16 (reached as it answers: from 2, +1 per success) */
  WH_OPT_TIMEOUT_MS = 4,           /**< int: whole request, default 15000, range 1000..30000 */
  WH_OPT_CONNECT_TIMEOUT_MS = 5,   /**< int: default 5000, range 100..30000 */
  WH_OPT_RETRY_SCHEDULE = 6,       /**< str: delays in seconds before attempt 2, 3, ...;
                                        attempts = entries + 1; "" means a single attempt;
                                        decimals allowed ("0.5"); default
                                        "5,300,1800,7200,18000,36000,36000" */
  WH_OPT_ALLOW_PRIVATE_NETWORKS = 7, /**< int 0/1, default 0: loopback, private, link-local refused */
  WH_OPT_QUEUE_LIMIT = 8,          /**< int: memory store: max pending deliveries, default 1000000 */
  WH_OPT_USER_AGENT = 9,           /**< str: default "libwebhook/<version>" */
  WH_OPT_CA_FILE = 10,             /**< str: extra CA bundle (PEM) trusted besides the system's */
  /* Extensions. Durations are configurable so tests can run them in seconds. */
  WH_OPT_RETRY_JITTER_PCT = 11,    /**< int: +- jitter on each retry delay, default 20, 0..50 */
  WH_OPT_DISABLE_AFTER_MS = 12,    /**< int: disable an endpoint that failed every attempt for
                                        this long, default 432000000 (5 days); 0 = never */
  WH_OPT_BREAKER_WINDOW_MS = 13,   /**< int: circuit breaker window, default 300000 */
  WH_OPT_BREAKER_MIN_REQUESTS = 14,/**< int: requests in the window before it may open, default 10 */
  WH_OPT_BREAKER_FAILURE_PCT = 15, /**< int: failure percentage that opens it, default 70; 0 = no breaker */
  WH_OPT_BREAKER_COOLDOWN_MS = 16, /**< int: how long it stays open before probing, default 30000 */
  WH_OPT_THROTTLE_MIN_DELAY_MS = 17, /**< int: least wait after a timeout or 429, default 60000 */
  WH_OPT_MAX_BODY_BYTES = 18,      /**< int: largest event accepted by emit, default 1048576 */
  WH_OPT_RETENTION_DAYS = 19,      /**< int: delivered messages and their attempts are purged this
                                        many days after delivery, default 30; 0 = keep them.
                                        Failed ones are kept until replayed or purged. */
  WH_OPT_LEASE_MS = 20,            /**< int: postgresql store: how long this process's claim on a
                                        delivery lasts without renewal (renewed every third of it);
                                        another process takes over the work of one that died after
                                        this long. Default 30000, 1000..3600000. */
  /* 1.1 */
  WH_OPT_PROCESS_DEFAULT = 21,     /**< int 0/1, default 1: 0 keeps wh_dispatcher_start() from making
                                        this dispatcher the process default of wh_emit() */
  WH_OPT_RESULT_QUEUE = 22,        /**< int: keep a copy of each outcome in a queue of this many
                                        (default 0 = off, at most 1000000); when it is full the oldest
                                        is dropped and counted ("results_dropped" in the stats).
                                        See wh_dispatcher_next_result(). */
  WH_OPT_PROXY = 23                /**< str: "http://host:port" proxy for every endpoint without its
                                        own (WH_EP_PROXY); NULL or "": none */
} wh_option;

/**
 * Create a dispatcher for reg. Not started yet. The dispatcher keeps reg alive
 * until it is freed.
 * @param out receives the dispatcher; free it with wh_dispatcher_free().
 * @param reg the root registry: WH_EINVAL for a tenant view.
 */
WH_EXTERN int wh_dispatcher_new(wh_dispatcher **out, wh_registry *reg);

/** Set an integer option. Before start only (WH_ESTATE after); WH_EINVAL out of range. */
WH_EXTERN int wh_dispatcher_set_int(wh_dispatcher *d, wh_option opt, long value);

/** Set a text option (the text is copied). Before start only. */
WH_EXTERN int wh_dispatcher_set_str(wh_dispatcher *d, wh_option opt, const char *value);

/**
 * Start the worker threads and make this the process default dispatcher
 * (see wh_emit(); unless WH_OPT_PROCESS_DEFAULT is 0). Deliveries left pending
 * in a durable store resume.
 *
 * A dispatcher belongs to the process that created it: after fork(), in the
 * child, every call on it returns WH_ESTATE ("dispatcher belongs to the parent
 * process"), so nothing is ever accepted there and then dropped. Create a new
 * registry and dispatcher in the child.
 */
WH_EXTERN int wh_dispatcher_start(wh_dispatcher *d);

/**
 * Fan ev out to every enabled endpoint whose filter matches, sign and deliver
 * it in the background. Always takes ownership of ev, also on failure. With a
 * durable store it returns only after the message and its deliveries are
 * committed. Never waits for the network.
 * An event that matches no endpoint is accepted (WH_OK) and delivered nowhere.
 * @threadsafety Safe from any number of threads at once, including from a result
 * callback.
 * @param d          the dispatcher, started.
 * @param ev         the event; taken in every case.
 * @param msg_id_out NULL, or receives the message id ("msg_..."), then len must be
 *                   at least WH_ID_MAX, or the call returns WH_ERANGE without emitting.
 * @param len        the size of msg_id_out.
 * @return WH_OK; WH_ESTATE before start or after stop; WH_EINVAL for an event
 *         larger than WH_OPT_MAX_BODY_BYTES; WH_EFULL when the memory store's
 *         queue cannot take all of its deliveries (then none is queued);
 *         WH_ESTORE when a durable store cannot commit.
 */
WH_EXTERN int wh_dispatcher_emit(wh_dispatcher *d, wh_event *ev, char *msg_id_out, size_t len);

/**
 * Emit n events at once, in one commit with a durable store: all or nothing.
 * Takes ownership of every event, also on failure (NULL entries are refused
 * with WH_EINVAL, the others are freed).
 * @param d       the dispatcher, started.
 * @param evs     n events.
 * @param n       how many; 0 is WH_EINVAL.
 * @param ids_out NULL, or n * WH_ID_MAX bytes that receive the message ids one
 *                after another (each NUL-terminated in its WH_ID_MAX slot).
 * @param ids_len the size of ids_out: at least n * WH_ID_MAX, or WH_ERANGE
 *                without emitting.
 * @return as wh_dispatcher_emit(); on failure none of the events is accepted.
 */
WH_EXTERN int wh_dispatcher_emit_batch(wh_dispatcher *d, wh_event **evs, size_t n, char *ids_out,
                                       size_t ids_len);

/**
 * wh_dispatcher_emit() through the process default dispatcher: the most
 * recently started one, or the one named by wh_dispatcher_set_default().
 * Takes ownership of ev. WH_ESTATE if there is none.
 */
WH_EXTERN int wh_emit(wh_event *ev);

/** Make d the process default dispatcher used by wh_emit(). NULL clears it. */
WH_EXTERN int wh_dispatcher_set_default(wh_dispatcher *d);

/**
 * Wait until no delivery is in flight or due now (scheduled retries may
 * remain), and until the result callbacks of the finished attempts have
 * returned. timeout_ms < 0 waits without limit.
 * @return WH_OK; WH_ETIMEOUT; WH_ESTATE when not running or called from a
 *         result callback.
 */
WH_EXTERN int wh_dispatcher_drain(wh_dispatcher *d, int timeout_ms);

/**
 * Stop taking events, give in-flight requests up to timeout_ms to finish,
 * then abort the rest and join the workers. Nothing undelivered is lost: it
 * stays pending in the store (for the memory store, until the dispatcher is
 * freed). Called from inside a result callback it returns WH_ESTATE (never
 * deadlocks); wh_dispatcher_free() must not be called there.
 * @return WH_OK; WH_ETIMEOUT when requests had to be aborted (they count as
 *         not attempted); WH_ESTATE when not running.
 */
WH_EXTERN int wh_dispatcher_stop(wh_dispatcher *d, int timeout_ms);

/** Stop (if running, without waiting) and free. NULL is fine. */
WH_EXTERN void wh_dispatcher_free(wh_dispatcher *d);

/** @} */

/* ------------------------------------------------------------------------ */
/* Delivery results                                                           */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup results Delivery results
 * The outcome of each attempt, handed to a callback, and the disabled-endpoint
 * callback.
 * @{
 */

/** One attempt's outcome. Valid only during the callback that receives it, or, when
    taken from the result queue (wh_dispatcher_next_result()), until wh_result_free(). */
typedef struct wh_result wh_result;

/** Outcomes of an attempt, from wh_result_outcome(). */
enum {
  WH_DELIVERED = 1, /**< a 2xx answer */
  WH_RETRYING = 2,  /**< failed; another attempt is scheduled */
  WH_FAILED = 3     /**< attempts exhausted or endpoint disabled / removed */
};

/** The message of the attempt. @return its id ("msg_...", the webhook-id sent); borrowed, valid as r. */
WH_EXTERN const char *wh_result_message_id(const wh_result *r);
/** The endpoint of the attempt. @return its id ("ep_..."); borrowed, valid as r. */
WH_EXTERN const char *wh_result_endpoint_id(const wh_result *r);
/** The outcome of the attempt. @return WH_DELIVERED, WH_RETRYING or WH_FAILED. */
WH_EXTERN int wh_result_outcome(const wh_result *r);
/** The attempt's number. @return 1 for the first try. */
WH_EXTERN int wh_result_attempt(const wh_result *r);
/** The HTTP status of the answer. @return the status; 0 when no response arrived. */
WH_EXTERN int wh_result_http_status(const wh_result *r);
/** What went wrong. @return NULL on success; otherwise what went wrong ("timeout after 15000 ms", "HTTP 503"). */
WH_EXTERN const char *wh_result_error(const wh_result *r);
/** When the next attempt is due. @return for WH_RETRYING, unix milliseconds; 0 otherwise. */
WH_EXTERN int64_t wh_result_next_attempt_ms(const wh_result *r);
/** How long the attempt took. @return milliseconds; 0 when it did not reach the network. */
WH_EXTERN int64_t wh_result_duration_ms(const wh_result *r);
/** Whether the attempt disabled the endpoint. @return 1 when this attempt's outcome disabled the endpoint (410 Gone, days of failure); 0 otherwise. */
WH_EXTERN int wh_result_endpoint_disabled(const wh_result *r);

/**
 * Called once per attempt outcome, on a library worker thread, with no
 * library lock held. It may call any libwebhook function except
 * wh_dispatcher_free() on its own dispatcher; wh_dispatcher_stop() and
 * wh_dispatcher_drain() return WH_ESTATE there.
 */
typedef void (*wh_result_cb)(const wh_result *r, void *userdata);

/**
 * Set the result callback (NULL detaches it). At any time, also while running:
 * when the call returns, the previous callback is not running on any other
 * thread and will never be called again (called from inside that callback,
 * it does not wait for itself).
 */
WH_EXTERN int wh_dispatcher_on_result(wh_dispatcher *d, wh_result_cb cb, void *userdata);

/**
 * Called when the dispatcher disables an endpoint by itself: reason is
 * "410 Gone" or "failing for N s". Runs on a library worker thread, no
 * library lock held, same rules as wh_result_cb.
 */
typedef void (*wh_disabled_cb)(const char *endpoint_id, const char *reason, void *userdata);

/** Set the endpoint-disabled callback (NULL detaches it). At any time, with the same
    guarantee as wh_dispatcher_on_result(). */
WH_EXTERN int wh_dispatcher_on_disabled(wh_dispatcher *d, wh_disabled_cb cb, void *userdata);

/** @} */

/* ------------------------------------------------------------------------ */
/* Results without callbacks: the result queue (for FFI bindings)            */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup result_queue Result queue
 * Results without callbacks, for FFI bindings and event loops.
 * @{
 */

/**
 * Take the next outcome from the result queue (WH_OPT_RESULT_QUEUE), waiting
 * up to timeout_ms for one (-1: no limit, 0: do not wait).
 * @threadsafety Safe from any thread; no library thread ever waits for the caller.
 * @param d   the dispatcher.
 * @param timeout_ms how long to wait, in milliseconds.
 * @param out receives a result that the wh_result_* accessors read; free it with
 *            wh_result_free().
 * @return WH_OK; WH_ETIMEOUT when none came in time; WH_ESTATE when the queue is
 *         off, or when the dispatcher was stopped and the queue is empty.
 */
WH_EXTERN int wh_dispatcher_next_result(wh_dispatcher *d, int timeout_ms, wh_result **out);

/** Free a result taken with wh_dispatcher_next_result(). NULL is fine. */
WH_EXTERN void wh_result_free(wh_result *r);

/**
 * A file descriptor that is readable while outcomes wait in the queue, for
 * poll, epoll, asyncio or libuv. Owned by the dispatcher: do not read from it
 * or close it. It stays valid until wh_dispatcher_free().
 * @return the descriptor; -1 when the queue is off.
 */
WH_EXTERN int wh_dispatcher_result_fd(wh_dispatcher *d);

/** @} */

/* ------------------------------------------------------------------------ */
/* The attempt log, replay and retention                                      */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup attempt_log Attempt log, replay and admin actions
 * What happened to a message, sending it again, retention; and the same admin
 * actions through the registry, so that they work on tenant views.
 * @{
 */

/**
 * A message's state as JSON: {"id","event_type","created_at","payload":{...},
 * "deliveries":[{"endpoint_id","state":"pending|delivered|failed","attempts_made",
 * "next_attempt_at","finished_at","attempts":[{"attempt","at","duration_ms",
 * "http_status","error","response"}]}]}. "response" holds the first 20,000
 * bytes of the receiver's answer (the memory store keeps it for the last
 * attempt only). Times are ISO 8601 UTC with milliseconds, or null.
 * @param reg      the registry, or a tenant view.
 * @param msg_id   the message id ("msg_...").
 * @param json_out receives text to release with wh_free().
 * On a tenant view: only messages of that tenant (their "tenant_id"), with only
 * the deliveries to the tenant's own endpoints.
 * @return WH_ENOTFOUND for a message the store does not hold (the memory store
 *         forgets finished messages beyond the 10,000 most recent).
 */
WH_EXTERN int wh_message_get_json(wh_registry *reg, const char *msg_id, char **json_out);

/**
 * An endpoint's failed deliveries that finished at or after since_unix_ms,
 * oldest first, at most limit (0: no limit), as a JSON array of
 * {"message_id","event_type","endpoint_id","attempts_made","finished_at",
 * "last_http_status","last_error"}.
 */
WH_EXTERN int wh_endpoint_failed_json(wh_registry *reg, const char *id, int64_t since_unix_ms,
                                      size_t limit, char **json_out);

/**
 * Send a message again: to endpoint_id, or (NULL) to every endpoint it had a
 * delivery for. Finished deliveries start a new round of the retry schedule,
 * due now; one still pending is left as it is. An endpoint the message was
 * never sent to gets a new delivery. The webhook-id stays the message's id.
 * @param d           the dispatcher, running.
 * @param msg_id      the message id ("msg_...").
 * @param endpoint_id one endpoint, or NULL for all.
 * @param count_out NULL, or receives how many deliveries were queued.
 * @return WH_ENOTFOUND for an unknown message; WH_ESTATE when not running.
 */
WH_EXTERN int wh_dispatcher_replay(wh_dispatcher *d, const char *msg_id, const char *endpoint_id,
                                   size_t *count_out);

/**
 * Queue again every failed delivery of endpoint_id that finished at or after
 * since_unix_ms (after fixing or re-enabling the endpoint).
 * @param d             the dispatcher, running.
 * @param endpoint_id   the endpoint.
 * @param since_unix_ms unix milliseconds.
 * @param count_out NULL, or receives how many deliveries were queued.
 */
WH_EXTERN int wh_dispatcher_recover(wh_dispatcher *d, const char *endpoint_id, int64_t since_unix_ms,
                                    size_t *count_out);

/**
 * Purge messages whose every delivery was delivered before before_unix_ms,
 * with their attempts. The dispatcher does this by itself every hour with
 * WH_OPT_RETENTION_DAYS; this is for doing it now. On the root registry only
 * (WH_EINVAL on a tenant view).
 * @param reg            the root registry.
 * @param before_unix_ms unix milliseconds.
 * @param count_out NULL, or receives how many messages were purged.
 */
WH_EXTERN int wh_registry_purge(wh_registry *reg, int64_t before_unix_ms, size_t *count_out);

/* ------------------------------------------------------------------------ */
/* Admin actions through the registry (they work on tenant views)           */
/* ------------------------------------------------------------------------ */

/**
 * As wh_dispatcher_replay(), through the registry, so that a tenant view can
 * only reach its own messages and endpoints (with endpoint_id NULL: the view's
 * endpoints the message had a delivery for). The dispatcher started on the
 * root registry delivers it (with PostgreSQL, any process's).
 * @return WH_OK; WH_ENOTFOUND for a message or endpoint the view cannot see;
 *         WH_ESTATE on the memory store when no dispatcher runs. Durable stores
 *         keep the work for the next start.
 */
WH_EXTERN int wh_message_replay(wh_registry *reg, const char *msg_id, const char *endpoint_id,
                                size_t *count_out);

/** As wh_dispatcher_recover(), through the registry (same rules as wh_message_replay()). */
WH_EXTERN int wh_endpoint_recover(wh_registry *reg, const char *endpoint_id, int64_t since_unix_ms,
                                  size_t *count_out);

/**
 * "Send test event": one message of type "webhook.TEST" whose resource is
 * {"endpoint_id":"...","endpoint_name":"..."} and whose tenant_id is the
 * endpoint's, to this endpoint only, whatever its filters, also when it is
 * disabled; one attempt, no retry. Its outcome is in the attempt log
 * (wh_message_get_json()) and in the results.
 * @param reg         the registry, or a tenant view.
 * @param endpoint_id the endpoint.
 * @param msg_id_out NULL, or receives the message id (len at least WH_ID_MAX).
 * @param len         the size of msg_id_out.
 * @return WH_OK; WH_ENOTFOUND; WH_ESTATE on the memory store when no dispatcher
 *         runs (durable stores keep it for the next start).
 */
WH_EXTERN int wh_endpoint_send_test(wh_registry *reg, const char *endpoint_id, char *msg_id_out, size_t len);

/** @} */

/* ------------------------------------------------------------------------ */
/* Seeing what happens: stats, metrics, logs                                  */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup observability Stats, metrics and logs
 * Seeing what happens: totals, per-endpoint figures, Prometheus metrics, log
 * messages, and operational events.
 *
 * Every function here may be called from any thread, at any time, also from a
 * callback; before wh_dispatcher_start() the figures are zeros, after
 * wh_dispatcher_stop() they stay as they were. A call copies the dispatcher's
 * counters under its lock, as long as a copy of a few hundred bytes takes,
 * and does everything else (the registry's counts, the text) outside it: a
 * scrape never makes an emit or a worker wait longer than that copy.
 *
 * Operational events: the dispatcher itself emits events of resource_type
 * "webhook" about endpoints, through the same machinery as any event (signed,
 * retried, in the attempt log, durable with a durable store):
 * "webhook.ENDPOINT_DISABLED" (it disabled an endpoint: 410 Gone, or failing
 * for WH_OPT_DISABLE_AFTER_MS), "webhook.ATTEMPT_EXHAUSTED" (a delivery ended
 * failed after its attempts), "webhook.ENDPOINT_FAILING" (its circuit breaker
 * opened), "webhook.ENDPOINT_RECOVERED" (it closed again). The resource is
 * {"endpoint_id","endpoint_name","reason","message_id"} (message_id: the
 * message whose attempt caused it), resource_id the endpoint's id, tenant_id
 * the endpoint's: they go to that tenant's endpoints and to platform
 * endpoints only. Only endpoints with a filter that names "webhook"
 * explicitly receive them ("webhook.*", "webhook.ENDPOINT_DISABLED"); "*",
 * "*.ENDPOINT_DISABLED" and no filter do not. None is sent about an endpoint
 * to that endpoint itself. None is made about an operational event's own
 * delivery or a test event's (wh_endpoint_send_test()), and
 * "webhook.ATTEMPT_EXHAUSTED" is bounded per endpoint (see the guide), so
 * that a failing endpoint cannot set off a storm.
 * @{
 */

/**
 * This dispatcher's totals since wh_dispatcher_start(), as a JSON object of
 * numbers, in this order:
 * - "emitted": deliveries created by this dispatcher's emits
 *   (wh_dispatcher_emit(), wh_dispatcher_emit_batch(), wh_emit(), its
 *   operational events): one per endpoint an event goes to.
 * - "delivered", "failed": deliveries that ended: delivered, or failed for
 *   good (attempts used up, 410 Gone, refused by the network policy, their
 *   endpoint disabled or removed while they waited). These count every
 *   delivery this dispatcher ended, also those it did not emit: replays,
 *   recoveries, test events, and with a durable store work left by an
 *   earlier run, written to the PostgreSQL outbox or emitted by another
 *   process.
 * - "retrying": attempts that failed and scheduled another.
 * - "attempts": attempts made (each request, and each that could not even
 *   start); the sum of the attempt numbers the results end with.
 * - "in_flight": deliveries being attempted now, or whose outcome is being
 *   recorded and reported.
 * - "due": deliveries held in memory that are due and wait for a free slot,
 *   a token of their endpoint's rate limit, or its open breaker.
 * - "scheduled": deliveries that wait for a later time (a retry's delay),
 *   held in memory; with the memory store also those of an ordered endpoint
 *   (WH_EP_ORDERED) waiting for an earlier one of their resource.
 * - "results_dropped": outcomes dropped from a full result queue
 *   (WH_OPT_RESULT_QUEUE).
 * - "endpoints_enabled", "endpoints_disabled": the registry's endpoints now,
 *   of every tenant.
 * - "breakers_open": endpoints whose circuit breaker is open or half-open
 *   (disabling or removing an endpoint resets its breaker).
 *
 * The figures are one consistent snapshot. in_flight + due + scheduled are
 * the pending deliveries this dispatcher holds, and
 * emitted = delivered + failed + in_flight + due + scheduled
 * holds exactly while everything it ended was emitted by it and nothing waits
 * on disk: always with the memory store (short of replays and test events).
 * A durable store keeps work on disk that is in none of these figures until a
 * worker loads it, shortly before it is due: deliveries beyond the 20,000 a
 * dispatcher holds in memory, retries more than a minute ahead, deliveries
 * of an ordered endpoint waiting for their turn, and what is left at
 * wh_dispatcher_stop().
 * @param d        the dispatcher.
 * @param json_out receives text to release with wh_free().
 * @return WH_OK; WH_EINVAL when an argument is NULL.
 */
WH_EXTERN int wh_dispatcher_stats_json(wh_dispatcher *d, char **json_out);

/**
 * One endpoint's figures, as a JSON object in this order:
 * "endpoint_id"; "tenant_id" (text, or null for a platform endpoint);
 * "enabled" (true/false) and "disabled_reason" (text or null), as the
 * registry has them now; "in_flight", "due", "scheduled" (as in
 * wh_dispatcher_stats_json(), for this endpoint); "window" (the requests it
 * may have at once now: its adaptive limit, which starts at 2, grows by one
 * with each success up to WH_OPT_MAX_PER_ENDPOINT and drops to one on a
 * timeout or refused connection); "breaker" ("closed", "open", or
 * "half_open": its cooldown is over and the next request is a probe);
 * "delivered", "failed" (its deliveries that ended since start);
 * "last_http_status" (of its last attempt, 0 for no response),
 * "last_error" (of its last attempt, null when it succeeded),
 * "last_attempt_at" (when the last attempt started,
 * "2024-03-26T18:53:16.818Z", or null); "latency_ms": {"p50","p99"}, the
 * median and 99th percentile of the durations of its last 128 attempts, in
 * whole milliseconds (0 before any).
 * An endpoint that this dispatcher has not had work for yet shows zeros
 * (window: 2, breaker: "closed"), with enabled and tenant_id from the registry.
 * @param d           the dispatcher.
 * @param endpoint_id the endpoint (of any tenant).
 * @param json_out    receives text to release with wh_free().
 * @return WH_OK; WH_ENOTFOUND for an endpoint the registry does not have
 *         (also one removed since, whose figures are in the totals only);
 *         WH_EINVAL when an argument is NULL.
 */
WH_EXTERN int wh_dispatcher_endpoint_stats_json(wh_dispatcher *d, const char *endpoint_id, char **json_out);

/**
 * The figures of wh_dispatcher_stats_json() as a Prometheus text exposition
 * (format 0.0.4), with HELP and TYPE lines, for a host to serve on its own
 * /metrics. Counters: webhook_deliveries_emitted_total,
 * webhook_deliveries_finished_total (label outcome: delivered, failed),
 * webhook_attempts_total (outcome: delivered, retrying, failed),
 * webhook_attempt_responses_total (class: none, 1xx to 5xx),
 * webhook_results_dropped_total, webhook_operational_events_total
 * (outcome: emitted, suppressed), webhook_store_errors_total. Histogram:
 * webhook_attempt_duration_seconds (le 0.005 to 30). Gauges:
 * webhook_deliveries_in_flight, webhook_deliveries_due,
 * webhook_deliveries_scheduled, webhook_endpoints (state: enabled,
 * disabled), webhook_breakers_open, webhook_dispatcher_start_time_seconds.
 * No label grows with endpoints or tenants: per-endpoint figures are in
 * wh_dispatcher_endpoint_stats_json().
 * @param d        the dispatcher.
 * @param text_out receives text to release with wh_free().
 * @return WH_OK; WH_EINVAL when an argument is NULL.
 */
WH_EXTERN int wh_dispatcher_metrics_text(wh_dispatcher *d, char **text_out);

/** Log levels for wh_dispatcher_on_log(). */
enum {
  WH_LOG_ERROR = 1, /**< something failed and needs attention: the store failing (a run of
                         failures is one ERROR line, then DEBUG ones, then an INFO line when
                         it works again; failed attempt records at most once a minute) */
  WH_LOG_WARN = 2,  /**< something went wrong that the library works around: a delivery's
                         retries given up, an endpoint's breaker opened, an endpoint disabled,
                         operational events that could not be sent or were limited */
  WH_LOG_INFO = 3,  /**< a change of state worth knowing about: start and stop, a breaker
                         closed again, deliveries failed because their endpoint was disabled
                         or removed, a test event that failed, the store working again */
  WH_LOG_DEBUG = 4  /**< detail, for finding out why: each failed attempt and when the next
                         one is due, failed breaker probes, loads from the store */
};

/**
 * A log message, one line without a trailing newline. It names endpoints and
 * messages by id (and an endpoint's state changes by name too) and says what
 * failed (an HTTP status, libcurl's or the store's error); never a secret, a
 * payload, a header value, a URL or a proxy's credentials.
 * Runs on a library thread (a worker, or the thread whose call met a store
 * error), with no library lock held; the same rules as wh_result_cb.
 * @param level    WH_LOG_ERROR..WH_LOG_DEBUG.
 * @param message  the text, valid during the call.
 * @param userdata as given to wh_dispatcher_on_log().
 */
typedef void (*wh_log_cb)(int level, const char *message, void *userdata);

/**
 * Send the dispatcher's log messages up to max_level to cb. At any time,
 * also while running; NULL detaches, with the guarantee of
 * wh_dispatcher_on_result(): when the call returns the previous callback runs
 * on no other thread and is never called again.
 * @param d         the dispatcher.
 * @param max_level WH_LOG_ERROR..WH_LOG_DEBUG: the most detailed level wanted
 *                  (ignored when cb is NULL).
 * @param cb        the callback, or NULL.
 * @param userdata  passed to cb.
 * @return WH_OK; WH_EINVAL for a NULL d or a max_level outside 1..4; WH_ESTATE
 *         in a child after fork().
 */
WH_EXTERN int wh_dispatcher_on_log(wh_dispatcher *d, int max_level, wh_log_cb cb, void *userdata);

/** @} */

/* ------------------------------------------------------------------------ */
/* Per-endpoint delivery settings                                             */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup endpoint_settings Per-endpoint settings
 * Delivery settings of one endpoint: ordering, rate limit, timeout, retry
 * schedule, proxy, client certificate.
 * @{
 */

/** Endpoint settings, for wh_endpoint_set_int() and wh_endpoint_set_str(). */
enum {
  WH_EP_ORDERED = 1,        /**< int 0/1: deliveries with the same resource_id go one at a time in
                                 emit order; a failing one holds back the later ones of that
                                 resource until it is delivered or ends failed. Kept across
                                 restarts and, with PostgreSQL, across processes. */
  WH_EP_RATE_LIMIT = 2,     /**< int: most requests per second to this endpoint; 0 = none */
  WH_EP_TIMEOUT_MS = 3,     /**< int: overrides WH_OPT_TIMEOUT_MS for this endpoint (1000..30000); 0 = default */
  WH_EP_RETRY_SCHEDULE = 4, /**< str: overrides WH_OPT_RETRY_SCHEDULE; NULL: back to the default */
  WH_EP_PROXY = 5,          /**< str: "http://host:port" proxy for this endpoint; NULL: none */
  WH_EP_CLIENT_CERT = 6     /**< str: PEM file with client certificate and key (mutual TLS); NULL: none */
};

/** Set an integer endpoint setting. WH_EINVAL for a negative or absurd value. */
WH_EXTERN int wh_endpoint_set_int(wh_registry *reg, const char *id, int setting, long value);

/**
 * Set a text endpoint setting (the text is copied; NULL clears it). A client
 * certificate file is read and checked now: an unreadable file or one without
 * a certificate and its key is WH_EINVAL here, not a failure at delivery.
 */
WH_EXTERN int wh_endpoint_set_str(wh_registry *reg, const char *id, int setting, const char *value);

/** @} */

/* ------------------------------------------------------------------------ */
/* Incoming webhooks                                                          */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup incoming Incoming webhooks
 * Check requests that other systems send in: signatures, timestamps, replays.
 * @{
 */

/**
 * Checks requests that other systems send in: signatures, timestamps, replays.
 * @threadsafety Thread-safe: one receiver may check requests on any number of
 * threads at once.
 */
typedef struct wh_receiver wh_receiver;

/**
 * Create a receiver.
 * @param out   receives the receiver; free it with wh_receiver_free().
 * @param store NULL or "memory:", "sqlite:PATH", "postgresql://...": where the ids
 *              of the requests already seen are kept (shared by several servers
 *              with PostgreSQL). Memory keeps at most 100,000 ids, forgetting the
 *              oldest first; "sqlite:PATH" may be the registry's own file. Ids are
 *              kept 900 s after the check, a week for "github" (which signs no
 *              timestamp); docs/guide.md, "Incoming webhooks", says why.
 * @return WH_ESTORE when the store cannot be opened or belongs to another application.
 */
WH_EXTERN int wh_receiver_new(wh_receiver **out, const char *store);

/** Free a receiver. NULL is fine. */
WH_EXTERN void wh_receiver_free(wh_receiver *rc);

/**
 * Accept signatures made with secret for scheme: "standard" (Standard Webhooks,
 * which Svix uses too), "github" (X-Hub-Signature-256), "stripe"
 * (Stripe-Signature t=,v1=) or "slack" (X-Slack-Signature v0=). Several secrets
 * may be active at once (rotation), up to 16 per scheme. "standard" takes
 * "whsec_" + base64; the others the shared text itself (1..1024 bytes, Stripe's
 * "whsec_..." as it is). Adding a secret twice to one scheme does nothing.
 * @return WH_EINVAL for an unknown scheme, a malformed secret, or a secret
 *         already added for another scheme; WH_EFULL beyond 16.
 */
WH_EXTERN int wh_receiver_add_secret(wh_receiver *rc, const char *scheme, const char *secret);

/**
 * Check one request. Header names match case-insensitively; pass every header
 * as received (a header the scheme reads, sent twice with different values, is
 * refused) and the raw body. The scheme is the one whose signature header the
 * request carries. Only authentic requests are recorded as seen.
 * @param rc            the receiver.
 * @param header_names  n_headers names, as received.
 * @param header_values n_headers values, in the order of the names.
 * @param n_headers     how many headers.
 * @param body          the raw body, exactly as received.
 * @param body_len      its length in bytes.
 * @param id_out receives the request's id (webhook-id, X-GitHub-Delivery, the
 *               Stripe event id, "<ts>.<signature prefix>" for Slack) for WH_OK
 *               and WH_EEXIST; may be NULL. 256 bytes always suffice.
 * @param id_len        the size of id_out.
 * @return WH_OK (authentic and new); WH_EEXIST (authentic, seen before: a
 *         redelivery or a replay); WH_ESIGNATURE; WH_ETIMESTAMP (outside the
 *         scheme's tolerance, 300 s, or not a number); WH_EINVAL (headers
 *         missing, repeated with different values, over their length limit or
 *         not printable ASCII, more than 256 headers); WH_ERANGE (id_len too
 *         small: nothing recorded); WH_ESTATE (no secret added); WH_ESTORE.
 *         Thread-safe.
 */
WH_EXTERN int wh_receiver_check(wh_receiver *rc, const char *const *header_names,
                                const char *const *header_values, size_t n_headers, const void *body,
                                size_t body_len, char *id_out, size_t id_len);

/** @} */

/* ------------------------------------------------------------------------ */
/* The admin API as a library call                                            */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup admin_api Admin API
 * The admin REST API as one library call, for the host's own HTTP server.
 * @{
 */

/**
 * Answer one request of the admin REST API (docs/openapi.yaml) on reg, the root
 * or a tenant view, as the host's own HTTP server passes it after its own
 * authentication. path may carry a query string. d may be NULL (then /stats
 * answers 409). Never fails for a bad request: that is a 4xx in *status_out
 * with {"error":{"code","message"}} in *body_out.
 * @param reg        the registry, or a tenant view: what the request may see.
 * @param d          the dispatcher, or NULL.
 * @param method     "GET", "POST", "PATCH" or "DELETE".
 * @param path       for example "/endpoints/ep_123?limit=10".
 * @param body       the request body (JSON), or NULL.
 * @param body_len   its length in bytes.
 * @param status_out receives the HTTP status of the answer.
 * @param body_out receives the JSON answer, to release with wh_free().
 * @return WH_OK whenever an answer was produced; WH_EINVAL for NULL arguments;
 *         WH_ENOMEM.
 */
WH_EXTERN int wh_admin_handle(wh_registry *reg, wh_dispatcher *d, const char *method, const char *path,
                              const void *body, size_t body_len, int *status_out, char **body_out);

/** @} */

/* ------------------------------------------------------------------------ */
/* Signing and verification (Standard Webhooks v1, also for incoming ones)   */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup signing Signing and verification
 * Standard Webhooks v1 secrets, signatures and verification.
 * @{
 */

/**
 * Generate a secret, "whsec_" + base64 of 32 random bytes from the OS CSPRNG.
 * @return WH_ERANGE when len is too small (64 bytes suffice).
 * @threadsafety Safe from any thread.
 */
WH_EXTERN int wh_secret_generate(char *buf, size_t len);

/**
 * Sign: "v1," + base64(HMAC-SHA256(key, msg_id "." timestamp "." body)),
 * key being the base64-decoded part after "whsec_" (the prefix is optional).
 * @return WH_EINVAL for an empty or malformed secret, or an empty msg_id;
 *         WH_ERANGE when sig_len is too small (64 bytes suffice).
 * @threadsafety Safe from any thread.
 */
WH_EXTERN int wh_sign(const char *secret, const char *msg_id, int64_t timestamp,
                      const void *body, size_t body_len, char *sig_out, size_t sig_len);

/**
 * Verify an incoming webhook. WH_OK if any "v1," entry of signature_header
 * (entries separated by spaces; other versions ignored) matches, compared in
 * constant time, and |now - timestamp| <= 300 s. now = 0 means the current time.
 * @return WH_OK; WH_EINVAL for an empty or malformed secret or NULL arguments;
 *         WH_ETIMESTAMP for a timestamp that is not a number or is out of
 *         tolerance; WH_ESIGNATURE when no entry matches.
 * @threadsafety Safe from any thread.
 */
WH_EXTERN int wh_verify(const char *secret, const char *msg_id, const char *timestamp,
                        const char *signature_header, const void *body, size_t body_len,
                        int64_t now);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* WEBHOOK_WEBHOOK_H */
