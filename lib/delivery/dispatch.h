/* The dispatcher's internals, shared by dispatcher.c (scheduling), http.c
   (one attempt on the wire) and health.c (per-endpoint breaker and limits). */
#ifndef WEBHOOK_DISPATCH_H
#define WEBHOOK_DISPATCH_H

#include "internal.h"
#include "retry.h"
#include "stores/store.h"

#include <pthread.h>

struct wh__epq;

/* One message to one endpoint, until it is delivered or fails for good. */
typedef struct wh__delivery {
  int64_t id;           /* the store's key */
  wh__msg *msg;
  struct wh__epq *q;
  int64_t due_ms;       /* wall clock, when scheduled */
  struct wh__delivery *next; /* in its endpoint's ready FIFO */
  uint32_t heap_idx;
  int32_t attempt;      /* attempts made so far */
  uint8_t retries_used; /* schedule entries consumed (at most WH__MAX_SCHEDULE) */
  uint8_t fast_retry_used; /* the one immediate retry after a fast connection failure */
  uint8_t ordered;      /* one of a chain (WH_EP_ORDERED): its leaving lets the next one go */
  /* 56 bytes: one malloc chunk of 64 per pending delivery */
} wh__delivery;

/* Circuit breaker (Convoy's numbers by default): counts in a sliding window of buckets. */
#define WH__BREAKER_BUCKETS 10
typedef struct {
  int64_t bucket_start[WH__BREAKER_BUCKETS];
  int requests[WH__BREAKER_BUCKETS], failures[WH__BREAKER_BUCKETS];
  int state;          /* WH__BREAKER_CLOSED / OPEN / HALF_OPEN */
  int64_t open_until; /* wall ms */
} wh__breaker;
enum { WH__BREAKER_CLOSED, WH__BREAKER_OPEN, WH__BREAKER_HALF_OPEN };

/* One endpoint's figures for the stats (stats.c), in its queue, under the
   dispatcher's mutex. Latency: the durations of its last attempts, in a ring. */
#define WH__LAT_SAMPLES 128
typedef struct {
  uint64_t delivered, failed;
  int settling;              /* out of flight, its outcome being recorded and reported */
  int last_http_status;      /* of its last attempt; 0: no response */
  int64_t last_attempt_ms;   /* wall clock, when its last attempt started; 0: none yet */
  char *last_error;          /* of its last attempt, NULL when it succeeded */
  uint16_t *lat_ms;          /* ring of its last WH__LAT_SAMPLES durations, made at the first */
  uint16_t nlat, lat_next;
  double ops_tokens;         /* the bound on its webhook.ATTEMPT_EXHAUSTED events (ops.c) */
  int64_t ops_ms;
  int ops_quiet;             /* some were left out since the last one sent */
} wh__ep_counters;

/* The dispatcher's view of one endpoint: its queue and its health. */
typedef struct wh__epq {
  char id[WH_ID_MAX];
  wh__delivery *head, *tail; /* due now, oldest first */
  size_t ready;
  size_t pending;            /* not yet finished: ready + scheduled + in flight */
  int in_flight;
  int limit;                 /* adaptive: drops to 1 on timeouts, grows back on success */
  int in_ring;
  unsigned pick_seq, picked; /* how many the current pick took (see pick()) */
  struct wh__epq *ring_next, *ring_prev;
  int blocked;               /* has ready work but the breaker is open */
  struct wh__epq *blocked_next;
  /* The endpoint as last seen (a reference, swapped under the dispatcher's
     lock; read under it): its settings (schedule, rate limit). May be NULL. */
  _Atomic(wh__endpoint *) ep;
  double tokens;             /* WH_EP_RATE_LIMIT: the token bucket, filled at tokens_ms */
  int64_t tokens_ms;
  int throttled;             /* has ready work but no token: waits in d->throttled */
  int64_t throttle_until;    /* wall ms when a token is there */
  struct wh__epq *throttled_next;
  wh__breaker breaker;
  wh__ep_counters st;         /* its figures for the stats */
  int64_t failing_since;     /* wall ms of the first failure since the last success; 0 = healthy */
  _Atomic int64_t enabled_ms; /* the endpoint's, as last seen by a worker: failures before it are
                                 forgiven (atomic: workers update it outside the lock) */
  struct wh__epq *hnext;
} wh__epq;

/* The retry schedule that applies to an endpoint: its own, or the dispatcher's. */
#define WH__SCHEDULE_OF(o, ep) ((ep) && (ep)->set.retry_schedule ? (ep)->set.schedule : (o)->schedule)
#define WH__NSCHEDULE_OF(o, ep) ((ep) && (ep)->set.retry_schedule ? (ep)->set.nschedule : (o)->nschedule)

typedef struct wh__opts {
  int workers, max_in_flight, max_per_endpoint;
  long timeout_ms, connect_timeout_ms;
  int64_t schedule[WH__MAX_SCHEDULE];
  int nschedule;
  int allow_private;
  long queue_limit;
  char *user_agent, *ca_file, *proxy;
  struct wh__share *share;  /* TLS sessions and DNS answers shared by the dispatcher's transfers (http.c) */
  int jitter_pct;
  int64_t disable_after_ms, breaker_window_ms, breaker_cooldown_ms, throttle_min_ms;
  int retention_days;
  int64_t lease_ms;
  int breaker_min_requests, breaker_failure_pct;
  long max_body;
  int process_default;  /* start makes it the default of wh_emit */
  long result_queue;    /* capacity of the result queue; 0: off */
} wh__opts;

/* What one attempt came to, as http.c saw it. */
typedef struct {
  int http_status;         /* 0: no response */
  int timed_out, connect_failed, policy_refused;
  int64_t duration_ms;
  int64_t started_ms;      /* wall clock */
  const char *response;    /* the first bytes of the answer, valid until the transfer is reused */
  size_t response_len;
  char retry_after[72];
  int has_retry_after;
  char error[320];         /* "" on success */
} wh__outcome;

/* One attempt's outcome, as the host sees it. From a callback the strings are
   the dispatcher's; a result taken from the queue owns copies (results.c). */
struct wh_result {
  const char *message_id, *endpoint_id, *error;
  int outcome, attempt, http_status, endpoint_disabled;
  int64_t next_attempt_ms, duration_ms;
};

/* ---- hooks.c: the host's callbacks, replaceable at any time ----
   Setting one returns only when the callback it replaced is running on no
   other thread, yet calling one costs a worker no lock and no shared write:
   each worker announces "inside a callback" on a line of its own, and the
   setter waits for those that were inside when it swapped the pointer. Other
   threads (rare) call through one mutex. */
enum { WH__HOOK_RESULT, WH__HOOK_DISABLED, WH__HOOK_LOG, WH__HOOK_KINDS };
#define WH__HOOK_READERS 64 /* the most workers a dispatcher has */

typedef struct {
  union {
    wh_result_cb result;
    wh_disabled_cb disabled;
    wh_log_cb log;
  } fn;
  void *ud;
  int max_level; /* WH__HOOK_LOG */
} wh__hook;

typedef struct {
  atomic_uint seq; /* odd while its worker runs a callback */
  char pad[60];    /* one cache line each: workers never write the same one */
} wh__hook_reader;

typedef struct {
  _Atomic(wh__hook *) slot[WH__HOOK_KINDS];
  wh__hook_reader readers[WH__HOOK_READERS];
  pthread_mutex_t others;
} wh__hooks;

/* A callback being called, on the caller's stack. */
typedef struct wh__hook_frame {
  wh__hooks *h;
  wh__hook_reader *r; /* NULL: called through `others` */
  int nested, left;
  struct wh__hook_frame *prev;
} wh__hook_frame;

void wh__hooks_init(wh__hooks *h);
void wh__hooks_destroy(wh__hooks *h);
/* The calling thread is worker i of h (0 <= i < WH__HOOK_READERS). */
void wh__hooks_bind(wh__hooks *h, int i);
/* Replace the callback of kind (hook NULL: detach). Returns when the one it
   replaced runs on no other thread; the caller's own call of it, when it is
   inside one, counts as returned. */
int wh__hooks_set(wh__hooks *h, int kind, const wh__hook *hook);
/* The callback of kind to call now, or NULL (then nothing to leave). */
const wh__hook *wh__hook_enter(wh__hooks *h, int kind, wh__hook_frame *f);
void wh__hook_leave(wh__hook_frame *f);

/* ---- results.c: the result queue ---- */
typedef struct wh__results wh__results;
/* capacity: 1..WH__RESULTS_MAX. Creates the descriptor of wh__results_fd. */
#define WH__RESULTS_MAX 1000000
int wh__results_new(wh__results **out, long capacity);
/* Wakes the consumers waiting in wh__results_next and waits until they left. */
void wh__results_free(wh__results *q);
/* Keep a copy of r; when full, the oldest is dropped and counted. Never
   waits for a consumer. */
void wh__results_push(wh__results *q, const wh_result *r);
/* No more results will come: consumers take what is left, then WH_ESTATE. */
void wh__results_close(wh__results *q);
int wh__results_next(wh__results *q, int timeout_ms, wh_result **out);
int wh__results_fd(const wh__results *q);
uint64_t wh__results_dropped(wh__results *q);
/* Consumers inside wh__results_next now (for tests). */
int wh__results_waiting(wh__results *q);

/* ---- dispatcher.c, for the other parts of the dispatcher (stats, logging) ---- */
/* WH_OK, or WH_ESTATE when d belongs to the parent of this process (after fork). */
int wh__dispatcher_check(wh_dispatcher *d, const char *what);
/* Send a message to the host's log callback when it takes level. */
void wh__dispatcher_log(wh_dispatcher *d, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Outcomes dropped from a full result queue so far. */
uint64_t wh__dispatcher_results_dropped(wh_dispatcher *d);

/* ---- health.c ---- */
void wh__breaker_record(wh__breaker *b, const wh__opts *o, int64_t now, int failed);
/* May the endpoint start another request now? Moves OPEN to HALF_OPEN when due. */
int wh__breaker_allows(wh__breaker *b, int in_flight, int64_t now);
int wh__is_throttle_status(int status);

/* ---- stats.c: what the dispatcher counts (wh_dispatcher_stats_json and the
   others). The counters are plain integers updated where the dispatcher
   already holds its mutex for the same change of state (an attempt's end, a
   delivery's end), so counting costs no lock of its own, and a reader copies
   them all under that mutex in one go: a consistent snapshot for the price
   of a copy of a few hundred bytes. ---- */

/* Upper bounds (ms) of the attempt duration histogram: Prometheus' le buckets. */
#define WH__HIST_BOUNDS 13
extern const int wh__hist_bounds_ms[WH__HIST_BOUNDS];
/* Response classes of attempts: no response, 1xx .. 5xx. */
enum { WH__CLASS_NONE, WH__CLASS_1XX, WH__CLASS_2XX, WH__CLASS_3XX, WH__CLASS_4XX, WH__CLASS_5XX, WH__CLASSES };

/* The dispatcher's totals since its start (under its mutex). */
typedef struct {
  uint64_t emitted;          /* deliveries created by this dispatcher's emits */
  uint64_t delivered, failed; /* deliveries that ended */
  uint64_t attempts;         /* attempts made; by what they came to: */
  uint64_t attempts_delivered, attempts_retrying, attempts_failed;
  uint64_t by_class[WH__CLASSES];
  uint64_t hist[WH__HIST_BOUNDS + 1]; /* attempts by duration; the last: longer than every bound */
  uint64_t duration_ms_sum;
  uint64_t ops_emitted, ops_suppressed; /* operational events sent, and left out (see ops) */
  uint64_t store_errors;
  long breakers_open;        /* endpoints whose breaker is not closed */
} wh__counters;

/* An attempt ended: outcome is what it came to (WH_DELIVERED, WH_RETRYING, WH_FAILED). */
void wh__stats_attempt(wh__counters *c, wh__ep_counters *e, const wh__outcome *out, int outcome);
/* A delivery ended (WH_DELIVERED or WH_FAILED). */
void wh__stats_finished(wh__counters *c, wh__ep_counters *e, int outcome);
void wh__ep_counters_free(wh__ep_counters *e);

/* Snapshots the dispatcher takes for stats.c. */
typedef struct {
  wh__counters c;
  long in_flight, due, scheduled; /* deliveries it holds now (see the header's definitions) */
  uint64_t results_dropped;
  size_t endpoints_enabled, endpoints_disabled;
  int64_t started_ms;        /* wall clock; 0: not started */
} wh__stats_totals;

typedef struct {
  int seen;                  /* the dispatcher has had work for it */
  int in_flight, window, breaker; /* breaker: WH__BREAKER_*, as it applies now */
  long due, scheduled;
  uint64_t delivered, failed;
  int last_http_status;
  int64_t last_attempt_ms;
  char last_error[320];      /* "" for none */
  uint16_t lat_ms[WH__LAT_SAMPLES];
  int nlat;
} wh__stats_endpoint;

/* dispatcher.c: copy the figures, under the mutex for no longer than the copy. */
int wh__dispatcher_totals(wh_dispatcher *d, wh__stats_totals *t);
/* One endpoint's figures (e->seen = 0 and zeros when the dispatcher has had no
   work for it yet) and *ep, referenced, as the registry has it now.
   WH_ENOTFOUND when the registry does not have it. */
int wh__dispatcher_endpoint(wh_dispatcher *d, const char *id, wh__stats_endpoint *e, wh__endpoint **ep);

/* ---- ops.c: operational events (webhook.*) about endpoints ---- */
enum { WH__OP_DISABLED, WH__OP_EXHAUSTED, WH__OP_FAILING, WH__OP_RECOVERED, WH__OPS };
/* webhook.ATTEMPT_EXHAUSTED per endpoint: a burst of this many, then this many a second. */
#define WH__OPS_EXHAUSTED_BURST 60
#define WH__OPS_EXHAUSTED_PER_S 1.0

typedef struct {
  int kind;                  /* WH__OP_* */
  char ep_id[WH_ID_MAX];     /* the endpoint it is about */
  char msg_id[WH__MSG_ID_MAX]; /* the message whose attempt set it off; "" for none */
  char reason[160];
} wh__op;

/* May a failed delivery of m set off webhook.ATTEMPT_EXHAUSTED? The host's messages only. */
static inline int wh__ops_about(const wh__msg *m) { return !(m->flags & (WH__MSG_TEST | WH__MSG_OPERATIONAL)); }
void wh__op_set(wh__op *op, int kind, const char *ep_id, const char *msg_id, const char *reason);
/* May the endpoint have another ATTEMPT_EXHAUSTED now? Takes a token. Under the dispatcher's mutex. */
int wh__ops_exhausted_allowed(wh__ep_counters *e, int64_t now);
/* Send it to the endpoints subscribed (none: nothing is made). No lock held. */
int wh__ops_emit(wh_dispatcher *d, wh_registry *reg, const wh__op *op);
/* dispatcher.c: accept message m for eps as emit does (all or nothing), taking
   m's reference, the endpoints' references and the array. */
int wh__dispatcher_send(wh_dispatcher *d, wh__msg *m, wh__endpoint **eps, size_t n);

#endif
