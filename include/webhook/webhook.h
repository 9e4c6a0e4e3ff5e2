/*
 * libwebhook - send and verify webhooks (Standard Webhooks v1) from C.
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
 */
#ifndef WEBHOOK_WEBHOOK_H
#define WEBHOOK_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

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

#define WH_VERSION_MAJOR 1
#define WH_VERSION_MINOR 0
#define WH_VERSION_PATCH 0
/** The version as 0xMMmmpp, for compile-time comparisons. */
#define WH_VERSION_NUM   0x010000
#define WH_VERSION_STRING "1.0.0"

/** @return the version of the library actually loaded, "1.0.0". Static text. */
WH_EXTERN const char *wh_version(void);
/** @return the version of the library actually loaded, as 0xMMmmpp. */
WH_EXTERN unsigned wh_version_num(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                     */
/* ------------------------------------------------------------------------ */

/** Result codes. The numbers never change meaning and are never reused. */
enum {
  WH_OK = 0,
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
 * @return static text; "unknown error" for a code the library does not know.
 * Thread-safe.
 */
WH_EXTERN const char *wh_strerror(int code);

/**
 * Detail about the last failure on the calling thread, for example
 * "endpoint url: scheme must be http or https".
 * @return thread-local text owned by the library, valid until the next
 *         failing libwebhook call on the same thread; "" when there is none.
 *         Successful calls leave it unchanged.
 */
WH_EXTERN const char *wh_error_last(void);

/** Release text that the library allocated for the caller. NULL is fine. */
WH_EXTERN void wh_free(void *p);

/* ------------------------------------------------------------------------ */
/* Registry: where endpoints live                                             */
/* ------------------------------------------------------------------------ */

/**
 * The set of endpoints an administrator registered. Every function on a
 * registry is safe to call from any number of threads at once.
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
 * Close a registry. NULL is fine. Every dispatcher using it must have been
 * freed before.
 */
WH_EXTERN void wh_registry_free(wh_registry *reg);

/**
 * Register an outgoing webhook, enabled, with a freshly generated secret and
 * no filter (it receives every event).
 * @param name        1..256 bytes of UTF-8, unique in the registry (WH_EEXIST otherwise).
 * @param url         http:// or https:// URL with a host, no user:password, at most 65,536 bytes.
 * @param description may be NULL; at most 4096 bytes of UTF-8.
 * @param id_out      receives the new endpoint id ("ep_..."); may be NULL.
 * @param id_len      size of id_out; at least WH_ID_MAX when id_out is not NULL,
 *                    WH_ERANGE otherwise (nothing is added then).
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
 * "filters":[...],"headers":{...},"created_at","disabled_reason"}. Never a secret.
 * @param json_out receives text to release with wh_free().
 */
WH_EXTERN int wh_endpoint_get_json(wh_registry *reg, const char *id, char **json_out);

/** Every endpoint, in the order they were added, as a JSON array of the objects above. */
WH_EXTERN int wh_endpoint_list_json(wh_registry *reg, char **json_out);

/* ------------------------------------------------------------------------ */
/* Event builder: the Casebook envelope                                       */
/* ------------------------------------------------------------------------ */

/** One event being built. Not thread-safe: build it on one thread. */
typedef struct wh_event wh_event;

/**
 * Start an event of type "<resource_type>.<event_type>". Both are 1..64
 * characters of [A-Za-z0-9_-]. The event time defaults to now.
 * @param out receives the event; free it with wh_event_free() unless it is
 *            handed to wh_dispatcher_emit()/wh_emit(), which take it.
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
 * @param json_out receives text to release with wh_free().
 */
WH_EXTERN int wh_event_to_json(const wh_event *ev, char **json_out);

/** Free an event that was not handed to emit. NULL is fine. */
WH_EXTERN void wh_event_free(wh_event *ev);

/* ------------------------------------------------------------------------ */
/* Dispatcher: delivery                                                       */
/* ------------------------------------------------------------------------ */

/**
 * Delivers events to the endpoints of a registry with a pool of worker
 * threads. Configure it, start it, emit from any thread, stop it, free it.
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
  WH_OPT_LEASE_MS = 20             /**< int: postgresql store: how long this process's claim on a
                                        delivery lasts without renewal (renewed every third of it);
                                        another process takes over the work of one that died after
                                        this long. Default 30000, 1000..3600000. */
} wh_option;

/**
 * Create a dispatcher for reg (which must outlive it). Not started yet.
 * @param out receives the dispatcher; free it with wh_dispatcher_free().
 */
WH_EXTERN int wh_dispatcher_new(wh_dispatcher **out, wh_registry *reg);

/** Set an integer option. Before start only (WH_ESTATE after); WH_EINVAL out of range. */
WH_EXTERN int wh_dispatcher_set_int(wh_dispatcher *d, wh_option opt, long value);

/** Set a text option (the text is copied). Before start only. */
WH_EXTERN int wh_dispatcher_set_str(wh_dispatcher *d, wh_option opt, const char *value);

/**
 * Start the worker threads and make this the process default dispatcher
 * (see wh_emit()). Deliveries left pending in a durable store resume.
 */
WH_EXTERN int wh_dispatcher_start(wh_dispatcher *d);

/**
 * Fan ev out to every enabled endpoint whose filter matches, sign and deliver
 * it in the background. Always takes ownership of ev, also on failure. With a
 * durable store it returns only after the message and its deliveries are
 * committed. Never waits for the network. Safe from any thread.
 * An event that matches no endpoint is accepted (WH_OK) and delivered nowhere.
 * @param msg_id_out NULL, or receives the message id ("msg_..."), then len must be
 *                   at least WH_ID_MAX, or the call returns WH_ERANGE without emitting.
 * @return WH_OK; WH_ESTATE before start or after stop; WH_EINVAL for an event
 *         larger than WH_OPT_MAX_BODY_BYTES; WH_EFULL when the memory store's
 *         queue cannot take all of its deliveries (then none is queued);
 *         WH_ESTORE when a durable store cannot commit.
 */
WH_EXTERN int wh_dispatcher_emit(wh_dispatcher *d, wh_event *ev, char *msg_id_out, size_t len);

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
 * remain). timeout_ms < 0 waits without limit.
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

/* ------------------------------------------------------------------------ */
/* Delivery results                                                           */
/* ------------------------------------------------------------------------ */

/** One attempt's outcome. Valid only during the callback that receives it. */
typedef struct wh_result wh_result;

enum {
  WH_DELIVERED = 1, /**< a 2xx answer */
  WH_RETRYING = 2,  /**< failed; another attempt is scheduled */
  WH_FAILED = 3     /**< attempts exhausted or endpoint disabled / removed */
};

WH_EXTERN const char *wh_result_message_id(const wh_result *r);
WH_EXTERN const char *wh_result_endpoint_id(const wh_result *r);
/** WH_DELIVERED, WH_RETRYING or WH_FAILED. */
WH_EXTERN int wh_result_outcome(const wh_result *r);
/** 1 for the first try. */
WH_EXTERN int wh_result_attempt(const wh_result *r);
/** 0 when no response arrived. */
WH_EXTERN int wh_result_http_status(const wh_result *r);
/** NULL on success; otherwise what went wrong ("timeout after 15000 ms", "HTTP 503"). */
WH_EXTERN const char *wh_result_error(const wh_result *r);
/** For WH_RETRYING: when the next attempt is due, unix milliseconds; 0 otherwise. */
WH_EXTERN int64_t wh_result_next_attempt_ms(const wh_result *r);
/** How long the attempt took, in milliseconds (0 when it did not reach the network). */
WH_EXTERN int64_t wh_result_duration_ms(const wh_result *r);
/** 1 when this attempt's outcome disabled the endpoint (410 Gone, days of failure). */
WH_EXTERN int wh_result_endpoint_disabled(const wh_result *r);

/**
 * Called once per attempt outcome, on a library worker thread, with no
 * library lock held. It may call any libwebhook function except
 * wh_dispatcher_free() on its own dispatcher; wh_dispatcher_stop() and
 * wh_dispatcher_drain() return WH_ESTATE there.
 */
typedef void (*wh_result_cb)(const wh_result *r, void *userdata);

/** Set the result callback (NULL: none). Before start only. */
WH_EXTERN int wh_dispatcher_on_result(wh_dispatcher *d, wh_result_cb cb, void *userdata);

/**
 * Called when the dispatcher disables an endpoint by itself: reason is
 * "410 Gone" or "failing for N s". Runs on a library worker thread, no
 * library lock held, same rules as wh_result_cb.
 */
typedef void (*wh_disabled_cb)(const char *endpoint_id, const char *reason, void *userdata);

/** Set the endpoint-disabled callback (NULL: none). Before start only. */
WH_EXTERN int wh_dispatcher_on_disabled(wh_dispatcher *d, wh_disabled_cb cb, void *userdata);

/* ------------------------------------------------------------------------ */
/* The attempt log, replay and retention                                      */
/* ------------------------------------------------------------------------ */

/**
 * A message's state as JSON: {"id","event_type","created_at","payload":{...},
 * "deliveries":[{"endpoint_id","state":"pending|delivered|failed","attempts_made",
 * "next_attempt_at","finished_at","attempts":[{"attempt","at","duration_ms",
 * "http_status","error","response"}]}]}. "response" holds the first 20,000
 * bytes of the receiver's answer (the memory store keeps it for the last
 * attempt only). Times are ISO 8601 UTC with milliseconds, or null.
 * @param json_out receives text to release with wh_free().
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
 * @param count_out NULL, or receives how many deliveries were queued.
 * @return WH_ENOTFOUND for an unknown message; WH_ESTATE when not running.
 */
WH_EXTERN int wh_dispatcher_replay(wh_dispatcher *d, const char *msg_id, const char *endpoint_id,
                                   size_t *count_out);

/**
 * Queue again every failed delivery of endpoint_id that finished at or after
 * since_unix_ms (after fixing or re-enabling the endpoint).
 * @param count_out NULL, or receives how many deliveries were queued.
 */
WH_EXTERN int wh_dispatcher_recover(wh_dispatcher *d, const char *endpoint_id, int64_t since_unix_ms,
                                    size_t *count_out);

/**
 * Purge messages whose every delivery was delivered before before_unix_ms,
 * with their attempts. The dispatcher does this by itself every hour with
 * WH_OPT_RETENTION_DAYS; this is for doing it now.
 * @param count_out NULL, or receives how many messages were purged.
 */
WH_EXTERN int wh_registry_purge(wh_registry *reg, int64_t before_unix_ms, size_t *count_out);

/* ------------------------------------------------------------------------ */
/* Signing and verification (Standard Webhooks v1, also for incoming ones)   */
/* ------------------------------------------------------------------------ */

/**
 * Generate a secret, "whsec_" + base64 of 32 random bytes from the OS CSPRNG.
 * @return WH_ERANGE when len is too small (64 bytes suffice).
 */
WH_EXTERN int wh_secret_generate(char *buf, size_t len);

/**
 * Sign: "v1," + base64(HMAC-SHA256(key, msg_id "." timestamp "." body)),
 * key being the base64-decoded part after "whsec_" (the prefix is optional).
 * @return WH_EINVAL for an empty or malformed secret, or an empty msg_id;
 *         WH_ERANGE when sig_len is too small (64 bytes suffice).
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
 */
WH_EXTERN int wh_verify(const char *secret, const char *msg_id, const char *timestamp,
                        const char *signature_header, const void *body, size_t body_len,
                        int64_t now);

#ifdef __cplusplus
}
#endif

#endif /* WEBHOOK_WEBHOOK_H */
