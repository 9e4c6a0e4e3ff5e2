/*
 * The dispatcher: emit fans an event out into deliveries, worker threads
 * drive many transfers each through libcurl's multi interface.
 *
 * Scheduling, under one mutex (d->mu):
 *  - each endpoint has a FIFO of deliveries due now (wh__epq);
 *  - endpoints that have due work and may start a request now sit in a ring,
 *    served round-robin, so one endpoint's backlog or slowness cannot hold
 *    back the others;
 *  - retries wait in a min-heap by due time; a worker's poll timeout is the
 *    time to the earliest one, so nothing sleeps and no thread blocks on one;
 *  - an endpoint's adaptive limit (its window) starts at START_WINDOW requests
 *    at once and grows by one with each success, up to WH_OPT_MAX_PER_ENDPOINT
 *    (so it doubles per round trip); a timeout or refused connection drops it
 *    to one. An endpoint that never answers thus holds few slots;
 *  - the windows of all endpoints with work (capped at their pending count)
 *    are the demand. While the demand fits in WH_OPT_MAX_IN_FLIGHT every
 *    endpoint may use its whole window; beyond that each gets at most its fair
 *    share (WH_OPT_MAX_IN_FLIGHT / endpoints with work, at least one).
 * Network work and callbacks happen outside the mutex.
 */
#include "dispatch.h"
#include "http.h"
#include "resolve.h"

#include <errno.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_SCHEDULE "5,300,1800,7200,18000,36000,36000"
#define MAX_WORKERS 64
#define IDLE_POLL_MS 1000

typedef struct worker {
  wh_dispatcher *d;
  pthread_t thread;
  CURLM *multi;
  int epfd;          /* epoll: libcurl's sockets (by its socket callback) and wake_fd */
  int wake_fd;       /* eventfd: other threads write to it to wake the worker */
  int64_t curl_due;  /* monotonic ms when libcurl wants its timeout handling; -1: never */
  int timer_set;     /* libcurl called the timer callback (see curl_timers) */
  int in_flight;
  int polling;       /* waiting in epoll: wake it to hand over work */
  wh__xfer *free_xfers;
  wh__xfer *active;  /* transfers added to multi */
} worker;

enum { ST_NEW, ST_RUNNING, ST_STOPPED };

struct wh_dispatcher {
  wh_registry *reg;
  wh__opts o;
  unsigned fork_gen;    /* a child of the creating process may not use it (see fork.c) */
  wh__hooks hooks;      /* result, disabled and log callbacks */
  wh__results *results; /* the result queue, when WH_OPT_RESULT_QUEUE is on */

  pthread_mutex_t mu;
  pthread_cond_t idle_cv;
  int state;
  int accepting;  /* emit allowed */
  int stopping;   /* workers take no new work */
  int aborting;   /* workers abandon what is in flight */
  worker *workers;
  int nworkers_started;
  int wake_next;

  /* scheduling state, under mu */
  wh__epq **qtab;
  size_t qcap, nq;
  wh__epq *ring;        /* endpoints with work they may start now */
  wh__epq *blocked;     /* endpoints with work, held back by an open breaker */
  wh__epq *throttled;   /* endpoints with work, waiting for a token of their rate limit */
  wh__delivery **heap;  /* scheduled retries, earliest first */
  size_t nheap, heapcap;
  long pending;         /* deliveries held in memory (for the memory store: all not finished) */
  int in_flight;
  int reporting;        /* finished attempts whose outcome the host has not yet been given */
  int active_endpoints; /* endpoints with pending work */
  long demand;          /* sum of q_demand() over the endpoints */

  /* what the stats count (stats.c), under mu */
  wh__counters stats;
  long held;            /* deliveries in the endpoints' queues: in flight, settling, due or scheduled */
  long ready;           /* of them due now (in the ready FIFOs) */
  int64_t started_ms;

  /* the store behind the registry */
  wh__store *store;
  int64_t owner;        /* our claim token in the store */
  long window;          /* most deliveries held in memory; the rest wait in a durable store */
  int64_t next_load_ms; /* when to look in the store for due deliveries; INT64_MAX: only when told */
  long store_waiting;   /* memory store: ordered deliveries waiting in their chains, not yet
                           loaded (they count toward WH_OPT_QUEUE_LIMIT) */
  int load_asked;       /* told that due work waits in the store (replay, a full window, another
                           process): not idle until a load took it */
  int loading, purging, renewing;
  unsigned pick_seq;
  int64_t next_purge_ms, next_renew_ms;
  atomic_int store_failing; /* the last store operation failed (see store_result) */
  _Atomic uint64_t store_failures_seen; /* the store's count of failed writes, as last logged */
  _Atomic int64_t store_failures_logged_ms;
  wh__resolver *resolver; /* made when a proxied request first needs it (under mu) */
};

#define RESOLVE_WAIT_MS 20  /* a proxied request whose destination is being looked up waits this long */

#define START_WINDOW 2           /* requests at once to an endpoint that has not answered yet */
#define DURABLE_WINDOW 20000      /* deliveries in memory at most, with a durable store */
#define LOAD_BATCH 2000
#define LOAD_MIN 500
#define HORIZON_MS 60000          /* retries further away wait in the durable store */
#define RELOAD_EVERY_MS 1000
#define PURGE_EVERY_MS 3600000

static _Atomic(wh_dispatcher *) default_dispatcher;
/* The dispatcher whose callback this thread is running, to refuse stop/drain/free there. */
static _Thread_local wh_dispatcher *in_callback;

/* ---- messages --------------------------------------------------------------- */


/* ---- options ------------------------------------------------------------------ */

static int opts_init(wh__opts *o)
{
  memset(o, 0, sizeof *o);
  o->workers = 2;
  o->max_in_flight = 256;
  o->max_per_endpoint = 16;
  o->timeout_ms = 15000;
  o->connect_timeout_ms = 5000;
  o->queue_limit = 1000000;
  o->jitter_pct = 20;
  o->disable_after_ms = 5LL * 24 * 3600 * 1000;
  o->breaker_window_ms = 300000;
  o->breaker_min_requests = 10;
  o->breaker_failure_pct = 70;
  o->breaker_cooldown_ms = 30000;
  o->throttle_min_ms = 60000;
  o->max_body = 1048576;
  o->retention_days = 30;
  o->lease_ms = 30000;
  o->process_default = 1;
  o->user_agent = wh__strdup("libwebhook/" WH_VERSION_STRING);
  if (!o->user_agent)
    return wh__oom();
  return wh__schedule_parse(DEFAULT_SCHEDULE, o->schedule, WH__MAX_SCHEDULE, &o->nschedule);
}

/* The queue exists from this option on, so that its descriptor can be
   handed to an event loop before start. */
static int result_queue(wh_dispatcher *d, long capacity)
{
  wh__results_free(d->results);
  d->results = NULL;
  d->o.result_queue = capacity;
  return capacity ? wh__results_new(&d->results, capacity) : WH_OK;
}

static int in_range(const char *what, long v, long lo, long hi)
{
  if (v < lo || v > hi)
    return wh__fail(WH_EINVAL, "%s: %ld is outside %ld..%ld", what, v, lo, hi);
  return WH_OK;
}

int wh_dispatcher_set_int(wh_dispatcher *d, wh_option opt, long v)
{
  int rc = wh__dispatcher_check(d, "dispatcher option");
  if (rc)
    return rc;
  if (d->state != ST_NEW)
    return wh__fail(WH_ESTATE, "dispatcher option %d: options are set before wh_dispatcher_start", (int)opt);
  wh__opts *o = &d->o;
  switch (opt) {
  case WH_OPT_WORKERS:
    if (!(rc = in_range("WH_OPT_WORKERS", v, 1, MAX_WORKERS))) o->workers = (int)v;
    return rc;
  case WH_OPT_MAX_IN_FLIGHT:
    if (!(rc = in_range("WH_OPT_MAX_IN_FLIGHT", v, 1, 100000))) o->max_in_flight = (int)v;
    return rc;
  case WH_OPT_MAX_PER_ENDPOINT:
    if (!(rc = in_range("WH_OPT_MAX_PER_ENDPOINT", v, 1, 100000))) o->max_per_endpoint = (int)v;
    return rc;
  case WH_OPT_TIMEOUT_MS:
    if (!(rc = in_range("WH_OPT_TIMEOUT_MS", v, 1000, 30000))) o->timeout_ms = v;
    return rc;
  case WH_OPT_CONNECT_TIMEOUT_MS:
    if (!(rc = in_range("WH_OPT_CONNECT_TIMEOUT_MS", v, 100, 30000))) o->connect_timeout_ms = v;
    return rc;
  case WH_OPT_ALLOW_PRIVATE_NETWORKS:
    if (!(rc = in_range("WH_OPT_ALLOW_PRIVATE_NETWORKS", v, 0, 1))) o->allow_private = (int)v;
    return rc;
  case WH_OPT_QUEUE_LIMIT:
    if (!(rc = in_range("WH_OPT_QUEUE_LIMIT", v, 1, 1000000000L))) o->queue_limit = v;
    return rc;
  case WH_OPT_RETRY_JITTER_PCT:
    if (!(rc = in_range("WH_OPT_RETRY_JITTER_PCT", v, 0, 50))) o->jitter_pct = (int)v;
    return rc;
  case WH_OPT_DISABLE_AFTER_MS:
    if (!(rc = in_range("WH_OPT_DISABLE_AFTER_MS", v, 0, 2147483647L))) o->disable_after_ms = v;
    return rc;
  case WH_OPT_BREAKER_WINDOW_MS:
    if (!(rc = in_range("WH_OPT_BREAKER_WINDOW_MS", v, 10, 86400000L))) o->breaker_window_ms = v;
    return rc;
  case WH_OPT_BREAKER_MIN_REQUESTS:
    if (!(rc = in_range("WH_OPT_BREAKER_MIN_REQUESTS", v, 1, 1000000L))) o->breaker_min_requests = (int)v;
    return rc;
  case WH_OPT_BREAKER_FAILURE_PCT:
    if (!(rc = in_range("WH_OPT_BREAKER_FAILURE_PCT", v, 0, 100))) o->breaker_failure_pct = (int)v;
    return rc;
  case WH_OPT_BREAKER_COOLDOWN_MS:
    if (!(rc = in_range("WH_OPT_BREAKER_COOLDOWN_MS", v, 1, 86400000L))) o->breaker_cooldown_ms = v;
    return rc;
  case WH_OPT_THROTTLE_MIN_DELAY_MS:
    if (!(rc = in_range("WH_OPT_THROTTLE_MIN_DELAY_MS", v, 0, 86400000L))) o->throttle_min_ms = v;
    return rc;
  case WH_OPT_MAX_BODY_BYTES:
    if (!(rc = in_range("WH_OPT_MAX_BODY_BYTES", v, 64, 64L * 1024 * 1024))) o->max_body = v;
    return rc;
  case WH_OPT_RETENTION_DAYS:
    if (!(rc = in_range("WH_OPT_RETENTION_DAYS", v, 0, 36500))) o->retention_days = (int)v;
    return rc;
  case WH_OPT_LEASE_MS:
    if (!(rc = in_range("WH_OPT_LEASE_MS", v, 1000, 3600000))) o->lease_ms = v;
    return rc;
  case WH_OPT_PROCESS_DEFAULT:
    if (!(rc = in_range("WH_OPT_PROCESS_DEFAULT", v, 0, 1))) o->process_default = (int)v;
    return rc;
  case WH_OPT_RESULT_QUEUE:
    if ((rc = in_range("WH_OPT_RESULT_QUEUE", v, 0, WH__RESULTS_MAX)))
      return rc;
    return result_queue(d, v);
  case WH_OPT_RETRY_SCHEDULE:
  case WH_OPT_USER_AGENT:
  case WH_OPT_CA_FILE:
  case WH_OPT_PROXY:
    return wh__fail(WH_EINVAL, "dispatcher option %d takes text: use wh_dispatcher_set_str", (int)opt);
  }
  return wh__fail(WH_EINVAL, "dispatcher option %d: no such option", (int)opt);
}

static int replace_str(char **slot, const char *v)
{
  char *copy = NULL;
  if (v && !(copy = wh__strdup(v)))
    return wh__oom();
  free(*slot);
  *slot = copy;
  return WH_OK;
}

int wh_dispatcher_set_str(wh_dispatcher *d, wh_option opt, const char *v)
{
  int rc = wh__dispatcher_check(d, "dispatcher option");
  if (rc)
    return rc;
  if (d->state != ST_NEW)
    return wh__fail(WH_ESTATE, "dispatcher option %d: options are set before wh_dispatcher_start", (int)opt);
  switch (opt) {
  case WH_OPT_RETRY_SCHEDULE: {
    int64_t delays[WH__MAX_SCHEDULE];
    int n;
    rc = wh__schedule_parse(v, delays, WH__MAX_SCHEDULE, &n);
    if (rc)
      return rc;
    memcpy(d->o.schedule, delays, sizeof delays);
    d->o.nschedule = n;
    return WH_OK;
  }
  case WH_OPT_USER_AGENT: {
    size_t n = v ? strnlen(v, 257) : 0;
    int ctl = 0;
    for (size_t i = 0; i < n; i++)
      ctl |= (unsigned char)v[i] < 0x20 || v[i] == 0x7f;
    if (n == 0 || n > 256 || ctl || !wh__utf8_valid(v, n))
      return wh__fail(WH_EINVAL, "WH_OPT_USER_AGENT: 1 to 256 bytes of UTF-8 without control characters");
    return replace_str(&d->o.user_agent, v);
  }
  case WH_OPT_CA_FILE:
    if (v && !*v)
      v = NULL;
    return replace_str(&d->o.ca_file, v);
  case WH_OPT_PROXY: {
    if (v && !*v)
      v = NULL;
    rc = v ? wh__proxy_validate("WH_OPT_PROXY", v, NULL) : WH_OK;
    return rc ? rc : replace_str(&d->o.proxy, v);
  }
  default:
    return wh__fail(WH_EINVAL, "dispatcher option %d: not a text option (or no such option)", (int)opt);
  }
}

/* Callbacks may change at any time: see hooks.c for what a change waits for. */
int wh_dispatcher_on_result(wh_dispatcher *d, wh_result_cb cb, void *userdata)
{
  int rc = wh__dispatcher_check(d, "result callback");
  wh__hook h = {.fn.result = cb, .ud = userdata};
  return rc ? rc : wh__hooks_set(&d->hooks, WH__HOOK_RESULT, cb ? &h : NULL);
}

int wh_dispatcher_on_disabled(wh_dispatcher *d, wh_disabled_cb cb, void *userdata)
{
  int rc = wh__dispatcher_check(d, "disabled callback");
  wh__hook h = {.fn.disabled = cb, .ud = userdata};
  return rc ? rc : wh__hooks_set(&d->hooks, WH__HOOK_DISABLED, cb ? &h : NULL);
}

int wh_dispatcher_on_log(wh_dispatcher *d, int max_level, wh_log_cb cb, void *userdata)
{
  int rc = wh__dispatcher_check(d, "log callback");
  if (!rc && cb && (max_level < WH_LOG_ERROR || max_level > WH_LOG_DEBUG))
    rc = wh__fail(WH_EINVAL, "log callback: max_level %d is outside WH_LOG_ERROR..WH_LOG_DEBUG (1..4)", max_level);
  wh__hook h = {.fn.log = cb, .ud = userdata, .max_level = max_level};
  return rc ? rc : wh__hooks_set(&d->hooks, WH__HOOK_LOG, cb ? &h : NULL);
}

void wh__dispatcher_log(wh_dispatcher *d, int level, const char *fmt, ...)
{
  wh__hook_frame f;
  const wh__hook *h = wh__hook_enter(&d->hooks, WH__HOOK_LOG, &f);
  if (!h)
    return;
  if (level <= h->max_level) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    wh_dispatcher *prev = in_callback;
    in_callback = d;
    h->fn.log(level, msg, h->ud);
    in_callback = prev;
  }
  wh__hook_leave(&f);
}

/* ---- the timer heap ------------------------------------------------------------- */

static void heap_swap(wh_dispatcher *d, size_t a, size_t b)
{
  wh__delivery *t = d->heap[a];
  d->heap[a] = d->heap[b];
  d->heap[b] = t;
  d->heap[a]->heap_idx = a;
  d->heap[b]->heap_idx = b;
}

static void heap_up(wh_dispatcher *d, size_t i)
{
  while (i > 0 && d->heap[(i - 1) / 2]->due_ms > d->heap[i]->due_ms) {
    heap_swap(d, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
}

static void heap_down(wh_dispatcher *d, size_t i)
{
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < d->nheap && d->heap[l]->due_ms < d->heap[m]->due_ms)
      m = l;
    if (r < d->nheap && d->heap[r]->due_ms < d->heap[m]->due_ms)
      m = r;
    if (m == i)
      return;
    heap_swap(d, i, m);
    i = m;
  }
}

static int heap_push(wh_dispatcher *d, wh__delivery *dl)
{
  if (d->nheap == d->heapcap) {
    size_t cap = d->heapcap ? d->heapcap * 2 : 256;
    wh__delivery **h = realloc(d->heap, cap * sizeof *h);
    if (!h)
      return 0;
    d->heap = h;
    d->heapcap = cap;
  }
  dl->heap_idx = d->nheap;
  d->heap[d->nheap++] = dl;
  heap_up(d, dl->heap_idx);
  return 1;
}

static wh__delivery *heap_pop(wh_dispatcher *d)
{
  wh__delivery *top = d->heap[0];
  d->nheap--;
  if (d->nheap) {
    d->heap[0] = d->heap[d->nheap];
    d->heap[0]->heap_idx = 0;
    heap_down(d, 0);
  }
  return top;
}

/* ---- endpoint queues -------------------------------------------------------------- */

static int qtab_grow(wh_dispatcher *d)
{
  size_t cap = d->qcap ? d->qcap * 2 : 64;
  wh__epq **t = calloc(cap, sizeof *t);
  if (!t)
    return 0;
  for (size_t i = 0; i < d->qcap; i++) {
    for (wh__epq *q = d->qtab[i], *next; q; q = next) {
      next = q->hnext;
      size_t b = wh__hash_str(q->id) & (cap - 1);
      q->hnext = t[b];
      t[b] = q;
    }
  }
  free(d->qtab);
  d->qtab = t;
  d->qcap = cap;
  return 1;
}

static wh__epq *queue_find(const wh_dispatcher *d, const char *id)
{
  if (d->qcap) {
    for (wh__epq *q = d->qtab[wh__hash_str(id) & (d->qcap - 1)]; q; q = q->hnext)
      if (strcmp(q->id, id) == 0)
        return q;
  }
  return NULL;
}

static int start_window(const wh_dispatcher *d)
{
  return d->o.max_per_endpoint < START_WINDOW ? d->o.max_per_endpoint : START_WINDOW;
}

static wh__epq *queue_for(wh_dispatcher *d, const char *id)
{
  wh__epq *found = queue_find(d, id);
  if (found)
    return found;
  if ((d->nq + 1) * 2 > d->qcap && !qtab_grow(d))
    return NULL;
  wh__epq *q = calloc(1, sizeof *q);
  if (!q)
    return NULL;
  memcpy(q->id, id, strlen(id) + 1);
  q->limit = start_window(d);
  /* Its settings from the start (a rate limit must hold from the first request);
     start() keeps them current. */
  atomic_init(&q->ep, wh__registry_peek(d->reg, id));
  size_t b = wh__hash_str(id) & (d->qcap - 1);
  q->hnext = d->qtab[b];
  d->qtab[b] = q;
  d->nq++;
  return q;
}

/* A worker saw a newer version of q's endpoint: q uses its settings from now on. */
static void queue_sees(wh_dispatcher *d, wh__epq *q, wh__endpoint *ep)
{
  wh__endpoint_ref(ep);
  pthread_mutex_lock(&d->mu);
  wh__endpoint *old = atomic_exchange_explicit(&q->ep, ep, memory_order_relaxed);
  pthread_mutex_unlock(&d->mu);
  wh__endpoint_unref(old);
}

/* What an endpoint could use now: its window, or less if it has less work. */
static long q_demand(const wh__epq *q)
{
  return q->pending < (size_t)q->limit ? (long)q->pending : q->limit;
}

static int effective_limit(const wh_dispatcher *d, const wh__epq *q)
{
  if (d->demand <= d->o.max_in_flight)
    return q->limit; /* every endpoint's window fits in the budget */
  int share = d->o.max_in_flight / (d->active_endpoints > 0 ? d->active_endpoints : 1);
  if (share < 1)
    share = 1;
  return q->limit < share ? q->limit : share;
}

static void ring_remove(wh_dispatcher *d, wh__epq *q)
{
  if (!q->in_ring)
    return;
  if (q->ring_next == q) {
    d->ring = NULL;
  } else {
    q->ring_prev->ring_next = q->ring_next;
    q->ring_next->ring_prev = q->ring_prev;
    if (d->ring == q)
      d->ring = q->ring_next;
  }
  q->in_ring = 0;
}

static void ring_add(wh_dispatcher *d, wh__epq *q)
{
  if (q->in_ring)
    return;
  if (!d->ring) {
    q->ring_next = q->ring_prev = q;
    d->ring = q;
  } else {
    /* Insert at the tail: just before the head. */
    q->ring_next = d->ring;
    q->ring_prev = d->ring->ring_prev;
    d->ring->ring_prev->ring_next = q;
    d->ring->ring_prev = q;
  }
  q->in_ring = 1;
}

/* Put q where it belongs: in the ring if it has work it may start now, in the
   blocked list if only its breaker holds it back, else in neither. */
/* WH_EP_RATE_LIMIT: may q start a request now? Fills its token bucket (up to
   a tenth of a second's worth, at least one, so bursts stay small); when
   empty, *until is when the next token comes. */
static int rate_allows(wh__epq *q, int64_t now, int64_t *until)
{
  const wh__endpoint *ep = atomic_load_explicit(&q->ep, memory_order_relaxed);
  long rate = ep ? ep->set.rate_limit : 0;
  if (rate <= 0) {
    q->tokens_ms = 0; /* a limit set later starts with a full bucket */
    return 1;
  }
  double cap = rate / 10.0 > 1.0 ? rate / 10.0 : 1.0;
  if (q->tokens_ms == 0) {
    q->tokens = cap;
  } else if (now > q->tokens_ms) {
    q->tokens += (double)(now - q->tokens_ms) * (double)rate / 1000.0;
    if (q->tokens > cap)
      q->tokens = cap;
  }
  q->tokens_ms = now;
  if (q->tokens >= 1.0)
    return 1;
  int64_t wait = (int64_t)((1.0 - q->tokens) * 1000.0 / (double)rate) + 1;
  *until = now + wait;
  return 0;
}

static void requeue(wh_dispatcher *d, wh__epq *q, int64_t now)
{
  int may = q->ready > 0 && q->in_flight < effective_limit(d, q);
  int64_t until;
  if (may && !rate_allows(q, now, &until)) {
    ring_remove(d, q);
    q->throttle_until = until;
    if (!q->throttled) {
      q->throttled = 1;
      q->throttled_next = d->throttled;
      d->throttled = q;
    }
    return;
  }
  if (may && !wh__breaker_allows(&q->breaker, q->in_flight, now)) {
    ring_remove(d, q);
    if (!q->blocked && q->breaker.state == WH__BREAKER_OPEN) {
      q->blocked = 1;
      q->blocked_next = d->blocked;
      d->blocked = q;
    }
    return;
  }
  if (may)
    ring_add(d, q);
  else
    ring_remove(d, q);
}

static void ready_push(wh_dispatcher *d, wh__delivery *dl, int64_t now)
{
  wh__epq *q = dl->q;
  dl->next = NULL;
  if (q->tail)
    q->tail->next = dl;
  else
    q->head = dl;
  q->tail = dl;
  q->ready++;
  d->ready++;
  requeue(d, q, now);
}

static wh__delivery *ready_pop(wh_dispatcher *d, wh__epq *q)
{
  wh__delivery *dl = q->head;
  q->head = dl->next;
  if (!q->head)
    q->tail = NULL;
  q->ready--;
  d->ready--;
  dl->next = NULL;
  return dl;
}

/* Deliveries whose time has come go to their endpoint's queue; endpoints
   whose breaker cooled down get another look. Returns ms until the next timer. */
static int64_t promote_due(wh_dispatcher *d, int64_t now)
{
  while (d->nheap && d->heap[0]->due_ms <= now)
    ready_push(d, heap_pop(d), now);
  int64_t next = d->nheap ? d->heap[0]->due_ms - now : IDLE_POLL_MS;
  for (wh__epq **pp = &d->blocked; *pp;) {
    wh__epq *q = *pp;
    if (q->breaker.state != WH__BREAKER_OPEN || q->breaker.open_until <= now) {
      *pp = q->blocked_next;
      q->blocked = 0;
      requeue(d, q, now);
    } else {
      if (q->breaker.open_until - now < next)
        next = q->breaker.open_until - now;
      pp = &q->blocked_next;
    }
  }
  for (wh__epq **pp = &d->throttled; *pp;) {
    wh__epq *q = *pp;
    if (q->throttle_until <= now) {
      *pp = q->throttled_next;
      q->throttled = 0;
      requeue(d, q, now);
    } else {
      if (q->throttle_until - now < next)
        next = q->throttle_until - now;
      pp = &q->throttled_next;
    }
  }
  if (d->next_load_ms != INT64_MAX && d->pending < d->window && !d->loading && d->next_load_ms - now < next)
    next = d->next_load_ms - now;
  return next < 0 ? 0 : next;
}

/* Nothing in flight or due, and the host has been given every outcome. */
static int idle_now(const wh_dispatcher *d, int64_t now)
{
  return d->in_flight == 0 && d->reporting == 0 && !d->ring && !d->throttled &&
         (d->nheap == 0 || d->heap[0]->due_ms > now) && !d->loading && !d->load_asked;
}

/* ---- results ------------------------------------------------------------------------- */

/* An outcome goes to the queue, then to the callback. The attempt counts in
   d->reporting until both are done (see reported_locked), so that drain
   returns only after the host has it. */
static void report(wh_dispatcher *d, const wh_result *r)
{
  if (d->results)
    wh__results_push(d->results, r);
  wh__hook_frame f;
  const wh__hook *h = wh__hook_enter(&d->hooks, WH__HOOK_RESULT, &f);
  if (!h)
    return;
  wh_dispatcher *prev = in_callback;
  in_callback = d;
  h->fn.result(r, h->ud);
  in_callback = prev;
  wh__hook_leave(&f);
}

static void report_disabled(wh_dispatcher *d, const char *ep_id, const char *reason)
{
  wh__hook_frame f;
  const wh__hook *h = wh__hook_enter(&d->hooks, WH__HOOK_DISABLED, &f);
  if (!h)
    return;
  wh_dispatcher *prev = in_callback;
  in_callback = d;
  h->fn.disabled(ep_id, reason, h->ud);
  in_callback = prev;
  wh__hook_leave(&f);
}

/* An outcome is about to be recorded and reported (its delivery is out of
   flight, or out of its queue when its endpoint went). Caller holds mu. */
static void reporting_locked(wh_dispatcher *d, wh__epq *q)
{
  d->reporting++;
  q->st.settling++; /* the stats count it in flight meanwhile */
}

/* One outcome was reported. Caller holds mu. */
static void reported_locked(wh_dispatcher *d, wh__epq *q, int64_t now)
{
  d->reporting--;
  q->st.settling--;
  if (idle_now(d, now))
    pthread_cond_broadcast(&d->idle_cv);
}

/* A delivery leaves memory (finished, or left to wait in the store). Caller holds mu. */
static void finish_locked(wh_dispatcher *d, wh__delivery *dl)
{
  wh__epq *q = dl->q;
  d->demand -= q_demand(q);
  q->pending--;
  d->demand += q_demand(q);
  if (q->pending == 0)
    d->active_endpoints--;
  d->pending--;
  d->held--;
  /* The next delivery of its resource can be claimed now: the worker that
     finished this one loads it on its next turn. */
  if (dl->ordered) {
    d->next_load_ms = 0;
    d->load_asked = 1;
  }
  wh__msg_unref(dl->msg);
  free(dl);
}

/* ---- one attempt's end ------------------------------------------------------------------ */

typedef struct {
  int outcome;            /* WH_DELIVERED / WH_RETRYING / WH_FAILED */
  int64_t next_ms;        /* wall ms of the next attempt */
  int disable;            /* disable the endpoint */
  char disable_reason[96];
  int breaker;            /* its breaker: 1 opened, -1 closed again, 0 neither */
  int reopened;           /* its breaker's probe failed: open again */
} verdict;

/* Decide what an attempt's outcome means for the delivery. Caller holds mu. */
static void decide(wh_dispatcher *d, wh__delivery *dl, const wh__outcome *out, int64_t now, verdict *v)
{
  wh__epq *q = dl->q;
  const wh__opts *o = &d->o;
  memset(v, 0, sizeof *v);
  int ok = out->error[0] == '\0';
  /* A test event: one attempt, and no say in the endpoint's health (an
     administrator probing a failing endpoint must not disable it). */
  if (dl->msg->flags & WH__MSG_TEST) {
    v->outcome = ok ? WH_DELIVERED : WH_FAILED;
    return;
  }
  /* Re-enabled since these failures began: they no longer count. */
  if (q->failing_since && q->failing_since < atomic_load_explicit(&q->enabled_ms, memory_order_relaxed))
    q->failing_since = 0;
  int was = q->breaker.state;
  if (!out->policy_refused)
    wh__breaker_record(&q->breaker, o, now, !ok);
  if (was == WH__BREAKER_CLOSED && q->breaker.state == WH__BREAKER_OPEN)
    v->breaker = 1;
  else if (was != WH__BREAKER_CLOSED && q->breaker.state == WH__BREAKER_CLOSED)
    v->breaker = -1;
  v->reopened = was == WH__BREAKER_HALF_OPEN && q->breaker.state == WH__BREAKER_OPEN;
  d->stats.breakers_open += v->breaker;
  d->demand -= q_demand(q);
  if (ok) {
    if (q->limit < o->max_per_endpoint)
      q->limit++;
  } else if (out->timed_out || out->connect_failed) {
    q->limit = 1; /* one request at a time until it answers again */
  }
  d->demand += q_demand(q);
  if (ok) {
    q->failing_since = 0;
    v->outcome = WH_DELIVERED;
    return;
  }
  if (!q->failing_since)
    q->failing_since = now;
  if (out->http_status == 410) {
    v->outcome = WH_FAILED;
    v->disable = 1;
    snprintf(v->disable_reason, sizeof v->disable_reason, "410 Gone");
    return;
  }
  if (out->policy_refused) {
    v->outcome = WH_FAILED; /* the destination will not become allowed by waiting */
    return;
  }
  if (o->disable_after_ms > 0 && now - q->failing_since >= o->disable_after_ms) {
    v->outcome = WH_FAILED;
    v->disable = 1;
    snprintf(v->disable_reason, sizeof v->disable_reason, "failing for %lld s",
             (long long)((now - q->failing_since) / 1000));
    return;
  }
  const wh__endpoint *ep = atomic_load_explicit(&q->ep, memory_order_relaxed);
  int nschedule = WH__NSCHEDULE_OF(o, ep);
  /* A schedule of "" is one attempt: not even the immediate retry. */
  if (out->connect_failed && out->duration_ms < 1000 && !dl->fast_retry_used && nschedule > 0) {
    dl->fast_retry_used = 1;
    v->outcome = WH_RETRYING;
    v->next_ms = now;
    return;
  }
  if (dl->retries_used >= nschedule) {
    v->outcome = WH_FAILED;
    return;
  }
  wh__retry_input in = {
    .scheduled_ms = WH__SCHEDULE_OF(o, ep)[dl->retries_used],
    .jitter_pct = o->jitter_pct,
    .r01 = wh__rand01(),
    .throttled = wh__is_throttle_status(out->http_status),
    .timed_out = out->timed_out,
    .http_status = out->http_status,
    .throttle_min_ms = o->throttle_min_ms,
  };
  in.has_retry_after = out->has_retry_after && wh__retry_after_parse(out->retry_after, now, &in.retry_after_ms);
  dl->retries_used++;
  v->outcome = WH_RETRYING;
  v->next_ms = now + wh__next_delay(&in);
}

/* A disabled or removed endpoint's breaker no longer says anything: it
   starts closed if the endpoint comes back (and stops counting as open). */
static void breaker_reset_locked(wh_dispatcher *d, wh__epq *q)
{
  if (q->breaker.state != WH__BREAKER_CLOSED)
    d->stats.breakers_open--;
  memset(&q->breaker, 0, sizeof q->breaker);
}

/* Fail every queued delivery of an endpoint that was just disabled. Caller
   holds mu; the failed ones are moved to *out for reporting outside it. */
static void drain_disabled_locked(wh_dispatcher *d, wh__epq *q, wh__delivery **out)
{
  breaker_reset_locked(d, q);
  while (q->ready) {
    wh__delivery *dl = ready_pop(d, q);
    dl->next = *out;
    *out = dl;
    reporting_locked(d, q);
  }
  /* Its scheduled retries: filter the heap in one pass, then rebuild it
     (removing entries one by one while scanning would skip some). */
  size_t kept = 0;
  for (size_t i = 0; i < d->nheap; i++) {
    wh__delivery *dl = d->heap[i];
    if (dl->q == q) {
      dl->next = *out;
      *out = dl;
      reporting_locked(d, q);
    } else {
      dl->heap_idx = (uint32_t)kept;
      d->heap[kept++] = dl;
    }
  }
  d->nheap = kept;
  for (size_t i = kept / 2; i-- > 0;)
    heap_down(d, i);
  requeue(d, q, wh__now_ms());
}

static wh__dlv_state dlv_state(const wh__delivery *dl)
{
  wh__dlv_state st = {.id = dl->id, .attempt = dl->attempt, .retries_used = dl->retries_used,
                      .fast_retry_used = dl->fast_retry_used, .due_ms = dl->due_ms};
  memcpy(st.ep_id, dl->q->id, sizeof st.ep_id);
  return st;
}

/* Deliveries that end without an attempt (endpoint removed or disabled).
   Whoever made the list counted each of them in d->reporting. */
static void fail_list(wh_dispatcher *d, wh__delivery *list, const char *why)
{
  size_t n = 0;
  for (const wh__delivery *dl = list; dl; dl = dl->next)
    n++;
  wh__dispatcher_log(d, WH_LOG_INFO, "%zu deliver%s to %s ended failed without an attempt: %s", n, n == 1 ? "y" : "ies",
                     list->q->id, why);
  for (wh__delivery *dl = list, *next; dl; dl = next) {
    next = dl->next;
    wh__dlv_state st = dlv_state(dl);
    d->store->ops->record(d->store, &st, NULL, WH__DLV_FAILED, 0);
    wh_result r = {.message_id = dl->msg->id, .endpoint_id = dl->q->id, .error = why, .outcome = WH_FAILED,
                   .attempt = dl->attempt};
    report(d, &r);
    wh__epq *q = dl->q;
    pthread_mutex_lock(&d->mu);
    wh__stats_finished(&d->stats, &q->st, WH_FAILED);
    finish_locked(d, dl);
    reported_locked(d, q, wh__now_ms());
    pthread_mutex_unlock(&d->mu);
  }
}

/* "ep_... (\"name\")" for a log message about an endpoint's state: its id
   and, while it exists, its name. */
static void ep_label(wh_dispatcher *d, const char *id, char *out, size_t len)
{
  wh__endpoint *ep = wh__registry_get(d->reg, id);
  if (ep)
    snprintf(out, len, "%s (\"%.64s\")", id, ep->name);
  else
    snprintf(out, len, "%s", id);
  wh__endpoint_unref(ep);
}

/* What an attempt's end means for the log. Never a payload, a header, a URL
   or a secret: ids, counts, the error (a status, or libcurl's text). */
static void log_attempt(wh_dispatcher *d, const wh__delivery *dl, const verdict *v, const wh__outcome *out,
                        int newly, int64_t now)
{
  const char *ep = dl->q->id, *msg = dl->msg->id;
  if (v->outcome == WH_RETRYING)
    wh__dispatcher_log(d, WH_LOG_DEBUG, "delivery of %s to %s: attempt %d failed (%s); next attempt in %lld ms", msg,
                       ep, dl->attempt, out->error, (long long)(v->next_ms - now));
  else if (v->outcome == WH_FAILED && (dl->msg->flags & WH__MSG_TEST))
    wh__dispatcher_log(d, WH_LOG_INFO, "test event %s to %s failed: %s", msg, ep, out->error);
  else if (v->outcome == WH_FAILED)
    wh__dispatcher_log(d, WH_LOG_WARN, "delivery of %s to %s failed after %d attempt%s, retries given up: %s", msg,
                       ep, dl->attempt, dl->attempt == 1 ? "" : "s", out->error);
  if (!v->breaker && !v->reopened && !newly)
    return;
  char who[WH_ID_MAX + 80];
  ep_label(d, ep, who, sizeof who);
  double pause = (double)d->o.breaker_cooldown_ms / 1000.0;
  if (v->breaker > 0)
    wh__dispatcher_log(d, WH_LOG_WARN,
                       "endpoint %s failing: circuit breaker opened (last error: %s); no requests for %g s", who,
                       out->error, pause);
  else if (v->breaker < 0)
    wh__dispatcher_log(d, WH_LOG_INFO, "endpoint %s recovered: circuit breaker closed, deliveries resume", who);
  else if (v->reopened)
    wh__dispatcher_log(d, WH_LOG_DEBUG, "endpoint %s: the breaker's probe failed (%s); open again for %g s", who,
                       out->error, pause);
  if (newly)
    wh__dispatcher_log(d, WH_LOG_WARN, "endpoint %s disabled: %s", who, v->disable_reason);
}

static void ops_emit(wh_dispatcher *d, const wh__op *op)
{
  int rc = wh__ops_emit(d, d->reg, op);
  if (rc)
    wh__dispatcher_log(d, WH_LOG_WARN, "operational event about endpoint %s not sent: %s", op->ep_id,
                       wh_error_last());
}

/* The operational events an attempt's verdict sets off (at most three). A
   test event's attempt has no say in the endpoint's health, so it sets off
   none; an operational event's may open a breaker or disable an endpoint
   (news for the other admin endpoints), but its own failure is no news.
   Caller holds mu. */
static int ops_of(wh_dispatcher *d, wh__epq *q, const wh__delivery *dl, const verdict *v, const wh__outcome *out,
                  int64_t now, wh__op *ops, int *quieted)
{
  int n = 0;
  char why[160];
  if (v->breaker > 0) {
    snprintf(why, sizeof why, "circuit breaker opened, requests paused for %g s; last error: %.80s",
             (double)d->o.breaker_cooldown_ms / 1000.0, out->error);
    wh__op_set(&ops[n++], WH__OP_FAILING, q->id, dl->msg->id, why);
  } else if (v->breaker < 0) {
    wh__op_set(&ops[n++], WH__OP_RECOVERED, q->id, dl->msg->id, "circuit breaker closed: a request succeeded");
  }
  if (v->disable)
    wh__op_set(&ops[n++], WH__OP_DISABLED, q->id, dl->msg->id, v->disable_reason);
  if (v->outcome == WH_FAILED && wh__ops_about(dl->msg)) {
    if (wh__ops_exhausted_allowed(&q->st, now)) {
      snprintf(why, sizeof why, "failed after %d attempt%s: %.100s", dl->attempt, dl->attempt == 1 ? "" : "s",
               out->error);
      wh__op_set(&ops[n++], WH__OP_EXHAUSTED, q->id, dl->msg->id, why);
      q->st.ops_quiet = 0;
    } else {
      d->stats.ops_suppressed++;
      *quieted = !q->st.ops_quiet;
      q->st.ops_quiet = 1;
    }
  }
  return n;
}

static void complete(worker *w, wh__delivery *dl, const wh__outcome *out)
{
  wh_dispatcher *d = w->d;
  verdict v;
  wh__delivery *orphans = NULL;
  int64_t now = wh__now_ms();
  wh__op ops[3];
  int quieted = 0;

  pthread_mutex_lock(&d->mu);
  wh__epq *q = dl->q;
  q->in_flight--;
  d->in_flight--;
  w->in_flight--;
  dl->attempt++;
  decide(d, dl, out, now, &v);
  wh__stats_attempt(&d->stats, &q->st, out, v.outcome);
  reporting_locked(d, q);
  int nops = ops_of(d, q, dl, &v, out, now, ops, &quieted);
  if (v.disable)
    drain_disabled_locked(d, q, &orphans);
  else
    requeue(d, q, now);
  pthread_mutex_unlock(&d->mu);

  /* The store learns first, so the log is as current as the callback. A retry
     far ahead waits in a durable store, not in memory. */
  int retry = v.outcome == WH_RETRYING;
  int evict = retry && d->store->ops->durable && v.next_ms > now + HORIZON_MS;
  if (retry)
    dl->due_ms = v.next_ms;
  wh__dlv_state st = dlv_state(dl);
  wh__attempt_rec rec = {.attempt = dl->attempt, .at_ms = out->started_ms, .duration_ms = out->duration_ms,
                         .http_status = out->http_status, .error = out->error[0] ? out->error : NULL,
                         .response = out->response, .response_len = out->response_len};
  d->store->ops->record(d->store, &st, &rec,
                        v.outcome == WH_DELIVERED ? WH__DLV_DELIVERED
                        : retry                   ? WH__DLV_PENDING
                                                  : WH__DLV_FAILED,
                        retry && !evict ? d->owner : 0);

  /* Two attempts in flight may both disable it: only the first tells operators. */
  int newly = v.disable && wh__registry_disable(d->reg, q->id, v.disable_reason) == WH_OK;

  wh_result r = {.message_id = dl->msg->id, .endpoint_id = q->id, .outcome = v.outcome,
                 .attempt = dl->attempt, .http_status = out->http_status,
                 .error = out->error[0] ? out->error : NULL, .endpoint_disabled = v.disable,
                 .next_attempt_ms = retry ? v.next_ms : 0, .duration_ms = out->duration_ms};
  report(d, &r);
  if (v.disable)
    report_disabled(d, q->id, v.disable_reason);
  log_attempt(d, dl, &v, out, newly, now);
  if (quieted)
    wh__dispatcher_log(d, WH_LOG_WARN,
                       "endpoint %s: more than %d deliveries failed at once; webhook.ATTEMPT_EXHAUSTED about it is "
                       "limited to %g a second until fewer fail",
                       q->id, WH__OPS_EXHAUSTED_BURST, WH__OPS_EXHAUSTED_PER_S);
  /* Before this delivery settles, so that drain waits for them too. */
  for (int i = 0; i < nops; i++)
    if (ops[i].kind != WH__OP_DISABLED || newly)
      ops_emit(d, &ops[i]);

  pthread_mutex_lock(&d->mu);
  if (retry && !evict) {
    if (v.next_ms <= now || !heap_push(d, dl)) /* no memory for the heap: retry at once rather than lose it */
      ready_push(d, dl, now);
  } else {
    if (evict && v.next_ms - HORIZON_MS < d->next_load_ms)
      d->next_load_ms = v.next_ms - HORIZON_MS;
    if (!evict) /* an evicted retry waits in the store: not finished */
      wh__stats_finished(&d->stats, &q->st, v.outcome);
    finish_locked(d, dl);
  }
  reported_locked(d, q, now);
  pthread_mutex_unlock(&d->mu);

  if (orphans) {
    char why[128];
    snprintf(why, sizeof why, "endpoint disabled: %s", v.disable_reason);
    fail_list(d, orphans, why);
  }
}

/* ---- workers ------------------------------------------------------------------------------ */

static wh__xfer *xfer_get(worker *w)
{
  wh__xfer *x = w->free_xfers;
  if (x) {
    w->free_xfers = x->next_free;
    return x;
  }
  return calloc(1, sizeof *x);
}

static void active_add(worker *w, wh__xfer *x)
{
  x->act_prev = NULL;
  x->act_next = w->active;
  if (w->active)
    w->active->act_prev = x;
  w->active = x;
}

static void active_remove(worker *w, wh__xfer *x)
{
  if (x->act_prev)
    x->act_prev->act_next = x->act_next;
  else
    w->active = x->act_next;
  if (x->act_next)
    x->act_next->act_prev = x->act_prev;
  x->act_prev = x->act_next = NULL;
}

static void xfer_put(worker *w, wh__xfer *x)
{
  wh__xfer_reset(x);
  x->next_free = w->free_xfers;
  w->free_xfers = x;
}

/* A picked delivery goes back to wait, as if never picked (no attempt used). */
static void unpick(worker *w, wh__delivery *dl, int64_t due_ms)
{
  wh_dispatcher *d = w->d;
  pthread_mutex_lock(&d->mu);
  dl->q->in_flight--;
  d->in_flight--;
  w->in_flight--;
  dl->due_ms = due_ms;
  if (!heap_push(d, dl))
    ready_push(d, dl, wh__now_ms());
  requeue(d, dl->q, wh__now_ms());
  pthread_mutex_unlock(&d->mu);
}

/* Through a proxy, the policy judges the destination's addresses before the
   request leaves (resolve.c). 1: go on. 0: not now; with out->error set, an
   outcome to settle (refused, or the name does not resolve), else the delivery
   was put back to wait for the lookup. */
static int proxy_destination_allowed(worker *w, wh__delivery *dl, const wh__endpoint *ep, wh__outcome *out)
{
  wh_dispatcher *d = w->d;
  int trusted;
  if (d->o.allow_private || !wh__xfer_proxy(&d->o, ep, &trusted))
    return 1;
  pthread_mutex_lock(&d->mu);
  int rc = d->resolver ? WH_OK : wh__resolver_new(&d->resolver);
  pthread_mutex_unlock(&d->mu);
  char why[256];
  int v = rc ? WH__RESOLVE_FAILED : wh__resolver_check(d->resolver, ep->url, why, sizeof why);
  if (rc)
    snprintf(why, sizeof why, "%s", wh_error_last());
  if (v == WH__RESOLVE_OK)
    return 1;
  if (v == WH__RESOLVE_PENDING) {
    unpick(w, dl, wh__now_ms() + RESOLVE_WAIT_MS);
    return 0;
  }
  out->started_ms = wh__now_ms();
  out->policy_refused = v == WH__RESOLVE_REFUSED;
  out->connect_failed = v == WH__RESOLVE_FAILED;
  snprintf(out->error, sizeof out->error, "%s", why);
  return 0;
}

/* Start one picked delivery, or settle it at once when it cannot be sent. */
static void start(worker *w, wh__delivery *dl)
{
  wh_dispatcher *d = w->d;
  wh__endpoint *ep = wh__registry_get(d->reg, dl->q->id);
  wh__outcome out;
  memset(&out, 0, sizeof out);
  if (!ep || (!ep->enabled && !(dl->msg->flags & WH__MSG_TEST))) {
    /* Removed or disabled since emit: it ends here, and can be replayed later. */
    pthread_mutex_lock(&d->mu);
    dl->q->in_flight--;
    d->in_flight--;
    w->in_flight--;
    reporting_locked(d, dl->q);
    breaker_reset_locked(d, dl->q);
    requeue(d, dl->q, wh__now_ms());
    pthread_mutex_unlock(&d->mu);
    fail_list(d, dl, ep ? "endpoint disabled" : "endpoint removed");
    wh__endpoint_unref(ep);
    return;
  }
  if (atomic_load_explicit(&dl->q->enabled_ms, memory_order_relaxed) != ep->enabled_ms)
    atomic_store_explicit(&dl->q->enabled_ms, ep->enabled_ms, memory_order_relaxed);
  if (atomic_load_explicit(&dl->q->ep, memory_order_relaxed) != ep)
    queue_sees(d, dl->q, ep);
  if (!proxy_destination_allowed(w, dl, ep, &out)) {
    wh__endpoint_unref(ep);
    if (out.error[0])
      complete(w, dl, &out);
    return;
  }
  wh__xfer *x = xfer_get(w);
  int rc = x ? wh__xfer_setup(x, &d->o, dl, ep) : wh__oom(); /* x holds ep from here */
  if (!x)
    wh__endpoint_unref(ep);
  if (rc == WH_OK && curl_multi_add_handle(w->multi, x->easy) == CURLM_OK) {
    active_add(w, x);
    return;
  }
  /* Could not even start: count it as a failed attempt so it is retried later. */
  snprintf(out.error, sizeof out.error, "could not start the request: %s", wh_error_last());
  out.started_ms = wh__now_ms();
  if (x)
    xfer_put(w, x);
  complete(w, dl, &out);
}

static void wake_one(wh_dispatcher *d);

/* Take work under the lock: round-robin over endpoints that may start a request. */
static int pick(worker *w, wh__delivery **batch, int max, int64_t *wait_ms)
{
  wh_dispatcher *d = w->d;
  int64_t now = wh__now_ms();
  int n = 0;
  *wait_ms = promote_due(d, now);
  /* No worker has a cap of its own: requests that hang cost a worker nothing
     (see wait_and_run), so a cap would only let hanging ones hold a worker back.
     One pick takes at most a worker's share of an endpoint's slots, so that a
     busy endpoint's requests spread over the workers (and cores). */
  unsigned seq = ++d->pick_seq;
  wh__epq *first_full = NULL;
  while (!d->stopping && n < max && d->ring && d->in_flight < d->o.max_in_flight) {
    wh__epq *q = d->ring;
    if (q->pick_seq != seq) {
      q->pick_seq = seq;
      q->picked = 0;
    }
    int share = (effective_limit(d, q) + d->o.workers - 1) / d->o.workers;
    if ((int)q->picked >= share) {
      if (q == first_full)
        break; /* every endpoint in the ring has had its share of this pick */
      if (!first_full)
        first_full = q;
      d->ring = q->ring_next;
      continue;
    }
    if (q->in_flight >= effective_limit(d, q)) {
      /* The budget became contended since q joined the ring: it waits for
         one of its own requests to end (which requeues it). */
      if (q == first_full)
        first_full = NULL;
      ring_remove(d, q);
      continue;
    }
    first_full = NULL;
    wh__delivery *dl = ready_pop(d, q);
    if (q->tokens_ms)
      q->tokens -= 1.0; /* a rate-limited endpoint: one request, one token */
    q->in_flight++;
    q->picked++;
    d->in_flight++;
    w->in_flight++;
    batch[n++] = dl;
    d->ring = q->ring_next; /* the next endpoint goes first next time */
    requeue(d, q, now);
  }
  /* Work left that this worker did not take: another one may. */
  if (d->ring && !d->stopping && d->in_flight < d->o.max_in_flight)
    wake_one(d);
  return n;
}

static void collect(worker *w)
{
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(w->multi, &left))) {
    if (m->msg != CURLMSG_DONE)
      continue;
    wh__xfer *x = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    CURLcode code = m->data.result;
    curl_multi_remove_handle(w->multi, m->easy_handle);
    active_remove(w, x);
    wh__outcome out;
    wh__xfer_outcome(x, code, &out);
    complete(w, x->dl, &out);
    xfer_put(w, x);
  }
}

/* Stop with a deadline passed: give in-flight deliveries back, unattempted. */
static void abandon_all(worker *w)
{
  wh_dispatcher *d = w->d;
  while (w->active) {
    wh__xfer *x = w->active;
    active_remove(w, x);
    curl_multi_remove_handle(w->multi, x->easy);
    wh__delivery *dl = x->dl;
    xfer_put(w, x);
    pthread_mutex_lock(&d->mu);
    dl->q->in_flight--;
    d->in_flight--;
    w->in_flight--;
    ready_push(d, dl, wh__now_ms());
    pthread_mutex_unlock(&d->mu);
  }
}

/* ---- the store: loading due deliveries, retention -------------------------------------- */

/* A store operation ended with rc. A run of failures (a database gone for an
   hour) is one ERROR line, then DEBUG ones, and one INFO line when it works
   again: the log says what changed, without thousands of lines. */
static void store_result(wh_dispatcher *d, const char *what, int rc)
{
  if (rc == WH_OK && !atomic_load_explicit(&d->store_failing, memory_order_relaxed))
    return;
  int was = atomic_exchange(&d->store_failing, rc != WH_OK);
  if (rc == WH_OK) {
    if (was)
      wh__dispatcher_log(d, WH_LOG_INFO, "store %s: %s works again", d->store->ops->name, what);
    return;
  }
  pthread_mutex_lock(&d->mu);
  d->stats.store_errors++;
  pthread_mutex_unlock(&d->mu);
  wh__dispatcher_log(d, was ? WH_LOG_DEBUG : WH_LOG_ERROR, "store %s: %s failed: %s", d->store->ops->name, what,
                     wh_error_last());
}

typedef struct {
  wh__delivery *dl;
  char ep_id[WH_ID_MAX];
} loaded;

typedef struct {
  loaded *v;
  size_t n, cap;
} load_ctx;

static int on_claimed(void *ud, wh__msg *m, const wh__dlv_state *st)
{
  load_ctx *c = ud;
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 64;
    loaded *v = realloc(c->v, cap * sizeof *v);
    if (!v)
      return wh__oom();
    c->v = v;
    c->cap = cap;
  }
  wh__delivery *dl = calloc(1, sizeof *dl);
  if (!dl)
    return wh__oom();
  dl->id = st->id;
  wh__msg_ref(m);
  dl->msg = m;
  dl->attempt = st->attempt;
  dl->retries_used = st->retries_used;
  dl->fast_retry_used = st->fast_retry_used;
  dl->ordered = st->ordered != 0;
  dl->due_ms = st->due_ms;
  c->v[c->n].dl = dl;
  memcpy(c->v[c->n].ep_id, st->ep_id, WH_ID_MAX);
  c->n++;
  return WH_OK;
}

/* Take deliveries into memory. Caller holds mu. */
static void adopt_locked(wh_dispatcher *d, wh__delivery *dl, const char *ep_id, int64_t now)
{
  wh__epq *q = queue_for(d, ep_id);
  if (!q) {
    /* No memory for its queue: leave it to the store for a later load. */
    wh__dlv_state st = {.id = dl->id, .attempt = dl->attempt, .retries_used = dl->retries_used,
                        .fast_retry_used = dl->fast_retry_used, .due_ms = dl->due_ms};
    memcpy(st.ep_id, ep_id, WH_ID_MAX);
    d->store->ops->record(d->store, &st, NULL, WH__DLV_PENDING, 0);
    wh__msg_unref(dl->msg);
    free(dl);
    return;
  }
  dl->q = q;
  d->demand -= q_demand(q);
  if (q->pending++ == 0)
    d->active_endpoints++;
  d->demand += q_demand(q);
  d->pending++;
  d->held++;
  if (dl->due_ms <= now || !heap_push(d, dl))
    ready_push(d, dl, now);
}

/* The outbox of a shared store: an event the host wrote in its own transaction
   becomes a message exactly as wh_dispatcher_emit would make it. */
static int from_outbox(void *ud, const wh__outbox_row *row, wh__msg **m, char (**ep_ids)[WH_ID_MAX], size_t *n)
{
  wh_dispatcher *d = ud;
  wh_event *ev = NULL;
  char *json = NULL, type[2 * 64 + 2], id[WH_ID_MAX];
  int rc = wh_event_new(&ev, row->resource_type, row->event_type);
  if (!rc)
    rc = wh_event_set_resource_json(ev, row->resource);
  if (!rc)
    rc = wh_event_set_tenant_id(ev, row->tenant_id);
  if (!rc)
    rc = wh_event_set_user_id(ev, row->user_id);
  if (!rc)
    rc = wh_event_set_resource_id(ev, row->resource_id);
  if (!rc)
    rc = wh_event_set_time(ev, row->event_time_us);
  if (!rc)
    rc = wh_event_to_json(ev, &json);
  if (!rc && (long)strlen(json) > d->o.max_body)
    rc = wh__fail(WH_EINVAL, "outbox: event is %zu bytes, more than the %ld allowed", strlen(json), d->o.max_body);
  if (!rc) {
    wh__event_type(ev, type, sizeof type);
    rc = wh__make_id("msg_", id);
  }
  wh_event_free(ev);
  wh__endpoint **eps = NULL;
  size_t k = 0;
  if (!rc && !(*m = wh__msg_new(id, type, json, strlen(json), wh__now_ms())))
    rc = wh__oom();
  free(json);
  if (!rc && (rc = wh__registry_match(d->reg, row->tenant_id, type, &eps, &k)) == WH_OK) {
    if (!(*ep_ids = calloc(k ? k : 1, sizeof **ep_ids)))
      rc = wh__oom();
    for (size_t i = 0; i < k; i++) {
      if (!rc)
        memcpy((*ep_ids)[i], eps[i]->id, WH_ID_MAX);
      wh__endpoint_unref(eps[i]);
    }
    free(eps);
    *n = k;
  }
  if (rc && *m) {
    wh__msg_unref(*m);
    *m = NULL;
  }
  return rc;
}

/* A shared store signalled work (another process emitted, the outbox filled). */
static void on_store_work(void *ud)
{
  wh_dispatcher *d = ud;
  pthread_mutex_lock(&d->mu);
  d->next_load_ms = 0;
  d->load_asked = 1;
  wake_one(d);
  pthread_mutex_unlock(&d->mu);
}

/* Shared stores: keep our claims alive, every third of the lease. */
static void maybe_renew(worker *w)
{
  wh_dispatcher *d = w->d;
  if (!d->store->ops->renew)
    return;
  pthread_mutex_lock(&d->mu);
  int64_t now = wh__now_ms();
  if (d->renewing || d->stopping || now < d->next_renew_ms) {
    pthread_mutex_unlock(&d->mu);
    return;
  }
  d->renewing = 1;
  d->next_renew_ms = now + d->o.lease_ms / 3;
  pthread_mutex_unlock(&d->mu);
  store_result(d, "renewing leases", d->store->ops->renew(d->store, d->owner));
  pthread_mutex_lock(&d->mu);
  d->renewing = 0;
  pthread_mutex_unlock(&d->mu);
}

/* Pull due deliveries from the store while memory has room: those left by a
   previous run, evicted retries coming due, replays, emits that found the
   window full. One worker at a time. */
static void maybe_load(worker *w)
{
  wh_dispatcher *d = w->d;
  pthread_mutex_lock(&d->mu);
  int64_t now = wh__now_ms();
  /* With room for fewer than LOAD_MIN, wait for more: a claim has a fixed cost
     (a query and a commit), and thousands of deliveries are in memory anyway. */
  if (d->loading || d->stopping || now < d->next_load_ms || d->window - d->pending < LOAD_MIN) {
    pthread_mutex_unlock(&d->mu);
    return;
  }
  d->loading = 1;
  d->load_asked = 0;
  d->next_load_ms = INT64_MAX; /* requests that come while loading lower it again */
  size_t room = (size_t)(d->window - d->pending);
  if (room > LOAD_BATCH)
    room = LOAD_BATCH;
  int durable = d->store->ops->durable;
  pthread_mutex_unlock(&d->mu);

  if (d->store->ops->outbox)
    store_result(d, "reading the outbox", d->store->ops->outbox(d->store, LOAD_BATCH, from_outbox, d, NULL));
  load_ctx c = {0};
  int rc = d->store->ops->claim(d->store, d->owner, durable ? now + HORIZON_MS : INT64_MAX, room, on_claimed, &c);
  store_result(d, "loading due deliveries", rc);
  if (c.n)
    wh__dispatcher_log(d, WH_LOG_DEBUG, "loaded %zu deliveries from the store", c.n);

  pthread_mutex_lock(&d->mu);
  now = wh__now_ms();
  for (size_t i = 0; i < c.n; i++) {
    if (c.v[i].dl->ordered && d->store_waiting > 0)
      d->store_waiting--;
    adopt_locked(d, c.v[i].dl, c.v[i].ep_id, now);
  }
  int64_t next = rc != WH_OK || c.n == room ? now + (rc ? RELOAD_EVERY_MS : 0)
                 : durable                 ? now + RELOAD_EVERY_MS
                                           : INT64_MAX;
  if (next < d->next_load_ms)
    d->next_load_ms = next;
  d->loading = 0;
  if (rc != WH_OK || c.n == room)
    d->load_asked = 1; /* more waits, or the store failed: not idle yet */
  if (c.n)
    wake_one(d);
  else if (idle_now(d, now))
    pthread_cond_broadcast(&d->idle_cv);
  pthread_mutex_unlock(&d->mu);
  free(c.v);
}

/* Writes nobody waits for (attempt records) fail in the store's own thread:
   the workers look at its count now and then and tell the log, at ERROR at
   most once a minute. */
#define STORE_FAILURE_LOG_MS 60000
static void watch_store(wh_dispatcher *d)
{
  if (!d->store->ops->failures)
    return;
  uint64_t seen = atomic_load_explicit(&d->store_failures_seen, memory_order_relaxed);
  uint64_t n = d->store->ops->failures(d->store, NULL, 0);
  if (n == seen || !atomic_compare_exchange_strong(&d->store_failures_seen, &seen, n))
    return; /* nothing new, or another worker tells it */
  char why[256];
  d->store->ops->failures(d->store, why, sizeof why);
  pthread_mutex_lock(&d->mu);
  d->stats.store_errors += n - seen;
  pthread_mutex_unlock(&d->mu);
  int64_t now = wh__now_ms(), last = atomic_load(&d->store_failures_logged_ms);
  int loud = now - last >= STORE_FAILURE_LOG_MS && atomic_compare_exchange_strong(&d->store_failures_logged_ms, &last, now);
  wh__dispatcher_log(d, loud ? WH_LOG_ERROR : WH_LOG_DEBUG,
                     "store %s: writing attempt records failed (%llu time%s so far; they are tried again for a while, "
                     "then a delivery may be made twice): %s",
                     d->store->ops->name, (unsigned long long)n, n == 1 ? "" : "s", why);
}

/* Retention: drop delivered messages older than WH_OPT_RETENTION_DAYS, hourly. */
static void maybe_purge(worker *w)
{
  wh_dispatcher *d = w->d;
  if (d->o.retention_days <= 0)
    return;
  pthread_mutex_lock(&d->mu);
  int64_t now = wh__now_ms();
  if (d->purging || d->stopping || now < d->next_purge_ms) {
    pthread_mutex_unlock(&d->mu);
    return;
  }
  d->purging = 1;
  d->next_purge_ms = now + PURGE_EVERY_MS;
  pthread_mutex_unlock(&d->mu);
  store_result(d, "purging old messages",
               d->store->ops->purge(d->store, now - (int64_t)d->o.retention_days * 86400000, NULL));
  pthread_mutex_lock(&d->mu);
  d->purging = 0;
  pthread_mutex_unlock(&d->mu);
}

/* ---- the event loop: libcurl's socket interface over epoll ---------------------------------
   curl_multi_socket_action only looks at the transfers whose sockets are ready
   or whose timers expired, so transfers that hang cost nothing while they wait
   (curl_multi_perform would visit every one of them on every call). */

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
  (void)easy;
  (void)socketp;
  worker *w = userp;
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, s, NULL); /* may be closed already: nothing to do then */
    return 0;
  }
  struct epoll_event ev = {.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u),
                           .data.fd = s};
  if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT && epoll_ctl(w->epfd, EPOLL_CTL_ADD, s, &ev) != 0)
    return -1; /* libcurl fails the transfers on this socket */
  return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
  (void)multi;
  worker *w = userp;
  w->curl_due = timeout_ms < 0 ? -1 : wh__mono_ms() + timeout_ms;
  w->timer_set = 1;
  return 0;
}

/* Let libcurl handle its timeouts while they are due. libcurl calls the timer
   callback only when its next timeout changes: when our millisecond clock
   fires a little early, nothing expires, the callback is not called, and the
   timeout would be lost. So the timeout stays ours until libcurl replaces it,
   and an early one is looked at again a millisecond later. */
static void curl_timers(worker *w)
{
  int running;
  for (int guard = 0; guard < 16; guard++) {
    int64_t now = wh__mono_ms();
    if (w->curl_due < 0 || w->curl_due > now)
      return;
    w->timer_set = 0;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    if (!w->timer_set) {
      w->curl_due = now + 1;
      return;
    }
  }
}

/* Wait up to timeout_ms for sockets, libcurl's timer or a wake-up, and hand
   what is ready to libcurl. */
static void wait_and_run(worker *w, int timeout_ms)
{
  enum { EVENTS = 64 };
  struct epoll_event ev[EVENTS];
  if (w->curl_due >= 0) {
    int64_t left = w->curl_due - wh__mono_ms();
    if (left < timeout_ms)
      timeout_ms = left < 0 ? 0 : (int)left;
  }
  int n = epoll_wait(w->epfd, ev, EVENTS, timeout_ms);
  int running;
  for (int i = 0; i < n; i++) {
    int fd = ev[i].data.fd;
    if (fd == w->wake_fd) {
      uint64_t v;
      while (read(w->wake_fd, &v, sizeof v) < 0 && errno == EINTR) {
      }
      continue;
    }
    int mask = (ev[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) | (ev[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
               (ev[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
    curl_multi_socket_action(w->multi, fd, mask, &running);
  }
  curl_timers(w);
}

static void wake_worker(worker *w)
{
  uint64_t one = 1;
  while (write(w->wake_fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

static void *worker_main(void *arg)
{
  worker *w = arg;
  wh_dispatcher *d = w->d;
  wh__hooks_bind(&d->hooks, (int)(w - d->workers));
  enum { BATCH = 64 };
  wh__delivery *batch[BATCH];
  for (;;) {
    int64_t wait_ms;
    maybe_load(w);
    maybe_purge(w);
    maybe_renew(w);
    watch_store(d);
    pthread_mutex_lock(&d->mu);
    if (d->aborting || (d->stopping && w->in_flight == 0)) {
      pthread_mutex_unlock(&d->mu);
      break;
    }
    int n = pick(w, batch, BATCH, &wait_ms);
    pthread_mutex_unlock(&d->mu);

    for (int i = 0; i < n; i++)
      start(w, batch[i]);
    curl_timers(w); /* new transfers ask for a timeout of 0: that starts them */
    collect(w);
    if (n == BATCH) {
      wait_and_run(w, 0); /* more may be waiting: take it before sleeping */
      collect(w);
      continue;
    }

    pthread_mutex_lock(&d->mu);
    /* Completions may have scheduled retries: the wait is computed afresh. */
    wait_ms = promote_due(d, wh__now_ms());
    int more = d->ring && !d->stopping && d->in_flight < d->o.max_in_flight;
    w->polling = !more;
    pthread_mutex_unlock(&d->mu);
    wait_and_run(w, more ? 0 : (int)(wait_ms > IDLE_POLL_MS ? IDLE_POLL_MS : wait_ms));
    if (!more) {
      pthread_mutex_lock(&d->mu);
      w->polling = 0;
      pthread_mutex_unlock(&d->mu);
    }
    collect(w);
  }
  abandon_all(w);
  return NULL;
}

/* Wake the least loaded worker that sleeps in poll, so it picks new work up.
   Caller holds mu. */
static void wake_one(wh_dispatcher *d)
{
  worker *best = NULL;
  for (int k = 0; k < d->nworkers_started; k++) {
    worker *w = &d->workers[(d->wake_next + k) % d->nworkers_started];
    if (w->polling && (!best || w->in_flight < best->in_flight))
      best = w;
  }
  if (best) {
    best->polling = 0;
    d->wake_next = (int)(best - d->workers + 1) % d->nworkers_started;
    wake_worker(best);
  }
}

static void wake_all(wh_dispatcher *d)
{
  for (int i = 0; i < d->nworkers_started; i++)
    wake_worker(&d->workers[i]);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

int wh__dispatcher_check(wh_dispatcher *d, const char *what)
{
  if (!d)
    return wh__fail(WH_EINVAL, "%s: dispatcher must not be NULL", what);
  if (wh__forked(d->fork_gen))
    return wh__fail(WH_ESTATE, "%s: dispatcher belongs to the parent process (after fork, create a new "
                               "registry and dispatcher in the child)", what);
  return WH_OK;
}

int wh_dispatcher_new(wh_dispatcher **out, wh_registry *reg)
{
  if (!out)
    return wh__fail(WH_EINVAL, "dispatcher: out must not be NULL");
  *out = NULL;
  if (!reg)
    return wh__fail(WH_EINVAL, "dispatcher: registry must not be NULL");
  if (wh_registry_tenant_id(reg))
    return wh__fail(WH_EINVAL, "dispatcher: needs the root registry, not a tenant view (one dispatcher "
                               "delivers every tenant's events)");
  unsigned fork_gen = wh__fork_watch();
  int rc0 = wh__registry_check(reg, "dispatcher");
  if (rc0)
    return rc0;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return wh__fail(WH_ENOMEM, "dispatcher: libcurl failed to initialise");
  wh_dispatcher *d = calloc(1, sizeof *d);
  if (!d)
    return wh__oom();
  wh__registry_ref(reg);
  d->reg = reg;
  d->fork_gen = fork_gen;
  d->store = wh__registry_store(reg);
  d->window = d->store->ops->durable ? DURABLE_WINDOW : LONG_MAX;
  d->next_load_ms = 0; /* at start: take up what an earlier run left pending */
  d->load_asked = 1;
  int rc = opts_init(&d->o);
  if (!rc)
    rc = wh__random(&d->owner, sizeof d->owner);
  d->owner = (int64_t)((uint64_t)d->owner >> 2) | 1; /* positive, never 0 */
  if (rc) {
    wh__registry_unref(reg);
    free(d->o.user_agent);
    free(d);
    return rc;
  }
  wh__hooks_init(&d->hooks);
  pthread_mutex_init(&d->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&d->idle_cv, &ca);
  pthread_condattr_destroy(&ca);
  *out = d;
  return WH_OK;
}

int wh_dispatcher_start(wh_dispatcher *d)
{
  int rc0 = wh__dispatcher_check(d, "start");
  if (rc0)
    return rc0;
  if (d->state != ST_NEW)
    return wh__fail(WH_ESTATE, "dispatcher: already %s", d->state == ST_RUNNING ? "running" : "stopped");
  d->workers = calloc((size_t)d->o.workers, sizeof *d->workers);
  if (!d->workers || (!d->o.share && wh__share_new(&d->o.share) != WH_OK)) {
    free(d->workers);
    d->workers = NULL;
    return wh__oom();
  }
  for (int i = 0; i < d->o.workers; i++)
    d->workers[i].epfd = d->workers[i].wake_fd = -1;
  for (int i = 0; i < d->o.workers; i++) {
    worker *w = &d->workers[i];
    w->d = d;
    w->curl_due = -1;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = w->wake_fd};
    if (w->epfd < 0 || w->wake_fd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fd, &ev) != 0 ||
        !(w->multi = curl_multi_init()))
      break;
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, (long)d->o.max_in_flight);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
  }
  pthread_mutex_lock(&d->mu);
  d->state = ST_RUNNING;
  d->accepting = 1;
  d->started_ms = wh__now_ms();
  d->next_purge_ms = wh__now_ms();
  d->next_renew_ms = wh__now_ms() + d->o.lease_ms / 3;
  d->store->lease_ms = d->o.lease_ms;
  int rc = WH_OK;
  for (int i = 0; i < d->o.workers; i++) {
    if (!d->workers[i].multi || pthread_create(&d->workers[i].thread, NULL, worker_main, &d->workers[i]) != 0) {
      rc = wh__fail(WH_ENOMEM, "dispatcher: could not start worker %d of %d", i + 1, d->o.workers);
      break;
    }
    d->nworkers_started++;
  }
  pthread_mutex_unlock(&d->mu);
  if (rc) {
    wh_dispatcher_stop(d, 0);
    return rc;
  }
  if (d->store->ops->on_work)
    d->store->ops->on_work(d->store, on_store_work, d);
  /* Replays and test events queued through the registry wake us too. */
  if (wh__registry_watch(d->reg, on_store_work, d) != WH_OK) {
    wh_dispatcher_stop(d, 0);
    return WH_ENOMEM;
  }
  if (d->o.process_default)
    atomic_store(&default_dispatcher, d);
  wh__dispatcher_log(d, WH_LOG_INFO, "dispatcher started: %d worker%s, store %s, at most %d requests at once",
                     d->o.workers, d->o.workers == 1 ? "" : "s", d->store->ops->name, d->o.max_in_flight);
  return WH_OK;
}

int wh_dispatcher_set_default(wh_dispatcher *d)
{
  int rc = d ? wh__dispatcher_check(d, "set default") : WH_OK;
  if (!rc)
    atomic_store(&default_dispatcher, d);
  return rc;
}

/* Replay and recovery through the dispatcher: as through its registry, while it runs. */
static int running_or_fail(wh_dispatcher *d, const char *what)
{
  pthread_mutex_lock(&d->mu);
  int running = d->accepting;
  pthread_mutex_unlock(&d->mu);
  return running ? WH_OK : wh__fail(WH_ESTATE, "%s: the dispatcher is not running", what);
}

/* Emit's deliveries of one message, prepared before any lock is taken. */
typedef struct {
  wh__msg *m;
  wh__endpoint **eps;
  size_t n;
  const char **ep_ids;
  int64_t *ids;
  wh__delivery **dls; /* when they go straight to memory */
  unsigned char *ordered; /* NULL, or per endpoint: WH_EP_ORDERED, and the event has a resource_id */
  size_t nordered;
} fanout;

static void fanout_free(fanout *f, int free_dls)
{
  for (size_t i = 0; i < f->n; i++) {
    wh__endpoint_unref(f->eps[i]);
    if (free_dls && f->dls)
      free(f->dls[i]);
  }
  free(f->eps);
  free(f->ep_ids);
  free(f->ids);
  free(f->dls);
  free(f->ordered);
  wh__msg_unref(f->m);
}

static int fanout_alloc(fanout *f, int in_memory)
{
  size_t n = f->n ? f->n : 1;
  f->ep_ids = calloc(n, sizeof *f->ep_ids);
  f->ids = calloc(n, sizeof *f->ids);
  f->dls = in_memory ? calloc(n, sizeof *f->dls) : NULL;
  if (!f->ep_ids || !f->ids || (in_memory && !f->dls))
    return wh__oom();
  for (size_t i = 0; i < f->n; i++) {
    f->ep_ids[i] = f->eps[i]->id;
    if (in_memory && !(f->dls[i] = calloc(1, sizeof **f->dls)))
      return wh__oom();
  }
  return WH_OK;
}

/* The event becomes a message and the endpoints it goes to. Takes ev. */
static int fanout_prepare(wh_dispatcher *d, wh_event *ev, fanout *f)
{
  char type[2 * 64 + 2], id[WH_ID_MAX], tenant[1025];
  wh__event_type(ev, type, sizeof type);
  const char *t = wh__event_tenant(ev); /* the event's ids are at most 1024 bytes */
  int has_tenant = t != NULL;
  if (has_tenant)
    memcpy(tenant, t, strlen(t) + 1);
  char *json = NULL;
  int rc = wh_event_to_json(ev, &json);
  wh_event_free(ev);
  if (rc)
    return rc;
  size_t blen = strlen(json);
  if ((long)blen > d->o.max_body) {
    free(json);
    return wh__fail(WH_EINVAL, "emit: event is %zu bytes, more than the %ld allowed (WH_OPT_MAX_BODY_BYTES)",
                    blen, d->o.max_body);
  }
  if (!(rc = wh__make_id("msg_", id)) && !(f->m = wh__msg_new(id, type, json, blen, wh__now_ms())))
    rc = wh__oom();
  free(json);
  if (rc)
    return rc;
  if ((rc = wh__registry_match(d->reg, has_tenant ? tenant : NULL, type, &f->eps, &f->n)))
    return rc;
  /* Deliveries to ordered endpoints go through the store, which hands each
     resource's out one at a time (see claim); the others straight to memory. */
  const char *key;
  size_t kl;
  for (size_t i = 0; i < f->n; i++)
    f->nordered += f->eps[i]->set.ordered != 0;
  if (f->nordered && !wh__msg_order_key(f->m, &key, &kl))
    f->nordered = 0; /* no resource_id: nothing to order by */
  if (f->nordered) {
    if (!(f->ordered = calloc(f->n, 1)))
      return wh__oom();
    for (size_t i = 0; i < f->n; i++)
      f->ordered[i] = f->eps[i]->set.ordered != 0;
  }
  return WH_OK;
}

/* Accept k prepared messages, all or nothing: room in memory (and, for the
   memory store, under the queue limit) is reserved for all of them first,
   the store takes them in one commit. */
static int fanout_commit(wh_dispatcher *d, fanout *fs, size_t k)
{
  size_t total = 0, ordered = 0;
  for (size_t j = 0; j < k; j++) {
    total += fs[j].n;
    ordered += fs[j].nordered;
  }
  int durable = d->store->ops->durable;
  /* n: what goes straight to memory; ordered ones are loaded from the store. */
  long n = (long)(total - ordered);
  int in_memory = 0, rc = WH_OK;
  pthread_mutex_lock(&d->mu);
  if (!d->accepting) {
    rc = wh__fail(WH_ESTATE, "emit: the dispatcher is %s", d->state == ST_NEW ? "not started" : "stopped");
  } else if (!durable && d->pending + d->store_waiting + (long)total > d->o.queue_limit) {
    rc = wh__fail(WH_EFULL, "emit: %zu deliveries would exceed the queue limit of %ld (%ld pending)", total,
                  d->o.queue_limit, d->pending + d->store_waiting);
  } else if (d->pending + n <= d->window) {
    in_memory = 1;
    d->pending += n;
  }
  pthread_mutex_unlock(&d->mu);
  wh__enq one, *es = k == 1 ? &one : calloc(k ? k : 1, sizeof *es);
  if (!rc && !es)
    rc = wh__oom();
  for (size_t j = 0; j < k && !rc; j++) {
    rc = fanout_alloc(&fs[j], in_memory);
    es[j] = (wh__enq){.m = fs[j].m, .ep_ids = fs[j].ep_ids, .n = fs[j].n, .ids = fs[j].ids,
                      .ordered = fs[j].ordered};
  }
  /* With a durable store this returns after the commit. */
  if (!rc && k) {
    rc = d->store->ops->enqueue(d->store, es, k, in_memory ? d->owner : 0);
    if (rc == WH_OK || rc == WH_ESTORE)
      store_result(d, "saving events", rc);
  }
  if (es != &one)
    free(es);

  pthread_mutex_lock(&d->mu);
  if (!rc) {
    d->stats.emitted += (uint64_t)total;
    for (size_t j = 0; j < k; j++)
      d->stats.ops_emitted += (fs[j].m->flags & WH__MSG_OPERATIONAL) != 0;
  }
  if (!rc && ordered) {
    /* A load hands each resource's next one out, in turn. */
    d->store_waiting += durable ? 0 : (long)ordered;
    d->next_load_ms = 0;
    d->load_asked = 1;
  }
  if (rc) {
    if (in_memory)
      d->pending -= n;
  } else if (!in_memory) {
    /* The window is full: they wait in the store and are loaded as room frees up. */
    d->next_load_ms = 0;
    d->load_asked = 1;
  } else if (!d->accepting) {
    /* Stopped while we committed: leave them to the store for the next run. */
    d->pending -= n;
    for (size_t j = 0; j < k; j++) {
      for (size_t i = 0; i < fs[j].n; i++) {
        if (fs[j].ordered && fs[j].ordered[i])
          continue; /* unclaimed already */
        wh__dlv_state st = {.id = fs[j].ids[i], .due_ms = fs[j].m->created_ms};
        memcpy(st.ep_id, fs[j].ep_ids[i], WH_ID_MAX);
        d->store->ops->record(d->store, &st, NULL, WH__DLV_PENDING, 0);
      }
    }
  } else {
    int64_t now = wh__now_ms();
    d->pending -= n; /* adopt counts them again */
    for (size_t j = 0; j < k; j++) {
      fanout *f = &fs[j];
      for (size_t i = 0; i < f->n; i++) {
        if (f->ordered && f->ordered[i])
          continue; /* in the store's chain: a load takes it when its turn comes */
        wh__delivery *dl = f->dls[i];
        f->dls[i] = NULL;
        dl->id = f->ids[i];
        wh__msg_ref(f->m);
        dl->msg = f->m;
        dl->due_ms = f->m->created_ms;
        adopt_locked(d, dl, f->ep_ids[i], now);
      }
    }
  }
  /* Wake a worker only when one can start something now (or load from the store). */
  if (!rc && total && (!in_memory || ordered || (d->ring && d->in_flight < d->o.max_in_flight)))
    wake_one(d);
  pthread_mutex_unlock(&d->mu);
  return rc;
}

int wh_dispatcher_emit(wh_dispatcher *d, wh_event *ev, char *msg_id_out, size_t len)
{
  int rc = wh__dispatcher_check(d, "emit");
  if (rc) {
    wh_event_free(ev);
    return rc;
  }
  if (!ev)
    return wh__fail(WH_EINVAL, "emit: event must not be NULL");
  if (msg_id_out && len < WH_ID_MAX) {
    wh_event_free(ev);
    return wh__fail(WH_ERANGE, "emit: message id buffer of %zu bytes, at least WH_ID_MAX (%d) needed", len,
                    WH_ID_MAX);
  }
  fanout f = {0};
  rc = fanout_prepare(d, ev, &f);
  if (!rc)
    rc = fanout_commit(d, &f, 1);
  if (!rc && msg_id_out)
    memcpy(msg_id_out, f.m->id, strlen(f.m->id) + 1);
  fanout_free(&f, 1);
  return rc;
}

int wh__dispatcher_send(wh_dispatcher *d, wh__msg *m, wh__endpoint **eps, size_t n)
{
  fanout f = {.m = m, .eps = eps, .n = n};
  int rc = fanout_commit(d, &f, 1);
  fanout_free(&f, 1);
  return rc;
}

static void free_events(wh_event **evs, size_t n)
{
  for (size_t i = 0; evs && i < n; i++)
    wh_event_free(evs[i]);
}

int wh_dispatcher_emit_batch(wh_dispatcher *d, wh_event **evs, size_t n, char *ids_out, size_t ids_len)
{
  int rc = wh__dispatcher_check(d, "emit batch");
  if (!rc && n && !evs)
    rc = wh__fail(WH_EINVAL, "emit batch: events must not be NULL");
  if (!rc && ids_out && (n > SIZE_MAX / WH_ID_MAX || ids_len < n * WH_ID_MAX))
    rc = wh__fail(WH_ERANGE, "emit batch: ids buffer of %zu bytes, %zu events need %zu (WH_ID_MAX each)", ids_len,
                  n, n * (size_t)WH_ID_MAX);
  for (size_t i = 0; i < n && !rc; i++)
    if (!evs[i])
      rc = wh__fail(WH_EINVAL, "emit batch: event %zu of %zu is NULL", i, n);
  fanout *fs = rc ? NULL : calloc(n ? n : 1, sizeof *fs);
  if (!rc && !fs)
    rc = wh__oom();
  if (rc) {
    free_events(evs, n);
    return rc;
  }
  /* Every event is taken: those after a refused one are freed unread. */
  for (size_t i = 0; i < n; i++) {
    if (rc)
      wh_event_free(evs[i]);
    else
      rc = fanout_prepare(d, evs[i], &fs[i]);
  }
  if (!rc)
    rc = fanout_commit(d, fs, n);
  for (size_t i = 0; i < n; i++) {
    if (!rc && ids_out)
      memcpy(ids_out + i * WH_ID_MAX, fs[i].m->id, strlen(fs[i].m->id) + 1);
    fanout_free(&fs[i], 1);
  }
  free(fs);
  return rc;
}

int wh_dispatcher_replay(wh_dispatcher *d, const char *msg_id, const char *endpoint_id, size_t *count_out)
{
  int rc = wh__dispatcher_check(d, "replay");
  if (rc)
    return rc;
  if (!msg_id)
    return wh__fail(WH_EINVAL, "replay: msg_id must not be NULL");
  rc = running_or_fail(d, "replay");
  return rc ? rc : wh_message_replay(d->reg, msg_id, endpoint_id, count_out);
}

int wh_dispatcher_recover(wh_dispatcher *d, const char *endpoint_id, int64_t since_unix_ms, size_t *count_out)
{
  int rc = wh__dispatcher_check(d, "recover");
  if (rc)
    return rc;
  if (!endpoint_id)
    return wh__fail(WH_EINVAL, "recover: endpoint_id must not be NULL");
  rc = running_or_fail(d, "recover");
  return rc ? rc : wh_endpoint_recover(d->reg, endpoint_id, since_unix_ms, count_out);
}

int wh_emit(wh_event *ev)
{
  wh_dispatcher *d = atomic_load(&default_dispatcher);
  if (!d) {
    wh_event_free(ev);
    return wh__fail(WH_ESTATE, "emit: no dispatcher is running (start one, or name it with "
                               "wh_dispatcher_set_default)");
  }
  return wh_dispatcher_emit(d, ev, NULL, 0);
}

int wh_dispatcher_drain(wh_dispatcher *d, int timeout_ms)
{
  int rc0 = wh__dispatcher_check(d, "drain");
  if (rc0)
    return rc0;
  if (in_callback == d)
    return wh__fail(WH_ESTATE, "drain: not from inside the dispatcher's own callback (it would wait on itself)");
  struct timespec deadline;
  wh__deadline_after(&deadline, timeout_ms < 0 ? 0 : timeout_ms);
  int rc = WH_OK;
  pthread_mutex_lock(&d->mu);
  if (d->state != ST_RUNNING || d->aborting) {
    pthread_mutex_unlock(&d->mu);
    return wh__fail(WH_ESTATE, "drain: the dispatcher is not running");
  }
  while (!idle_now(d, wh__now_ms())) {
    /* Wake at least every 100 ms: a retry may come due with no worker event. */
    struct timespec t, now;
    wh__deadline_after(&t, 100);
    int bounded = timeout_ms >= 0;
    if (bounded && (t.tv_sec > deadline.tv_sec || (t.tv_sec == deadline.tv_sec && t.tv_nsec > deadline.tv_nsec)))
      t = deadline;
    pthread_cond_timedwait(&d->idle_cv, &d->mu, &t);
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (bounded && (now.tv_sec > deadline.tv_sec ||
                    (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))) {
      if (!idle_now(d, wh__now_ms()))
        rc = wh__fail(WH_ETIMEOUT, "drain: %d in flight or work still due after %d ms", d->in_flight,
                      timeout_ms);
      break;
    }
  }
  pthread_mutex_unlock(&d->mu);
  return rc;
}

int wh_dispatcher_stop(wh_dispatcher *d, int timeout_ms)
{
  int rc0 = wh__dispatcher_check(d, "stop");
  if (rc0)
    return rc0;
  if (in_callback == d)
    return wh__fail(WH_ESTATE, "stop: not from inside the dispatcher's own callback (it would join itself)");
  pthread_mutex_lock(&d->mu);
  if (d->state != ST_RUNNING) {
    pthread_mutex_unlock(&d->mu);
    return wh__fail(WH_ESTATE, "stop: the dispatcher is not running");
  }
  d->accepting = 0;
  d->stopping = 1;
  wake_all(d);
  pthread_mutex_unlock(&d->mu);
  if (d->store->ops->on_work)
    d->store->ops->on_work(d->store, NULL, NULL);
  wh__registry_unwatch(d->reg, on_store_work, d);
  pthread_mutex_lock(&d->mu);
  struct timespec deadline;
  wh__deadline_after(&deadline, timeout_ms < 0 ? 0 : timeout_ms);
  int rc = WH_OK;
  while (d->in_flight > 0) {
    if (pthread_cond_timedwait(&d->idle_cv, &d->mu, &deadline) == ETIMEDOUT) {
      if (d->in_flight > 0) {
        rc = wh__fail(WH_ETIMEOUT, "stop: %d requests still in flight after %d ms; they stay pending",
                      d->in_flight, timeout_ms);
      }
      break;
    }
  }
  d->aborting = 1;
  wake_all(d);
  pthread_mutex_unlock(&d->mu);
  for (int i = 0; i < d->nworkers_started; i++)
    pthread_join(d->workers[i].thread, NULL);
  pthread_mutex_lock(&d->mu);
  d->state = ST_STOPPED;
  long held = d->held;
  pthread_mutex_unlock(&d->mu);
  if (held == 0)
    wh__dispatcher_log(d, WH_LOG_INFO, "dispatcher stopped: nothing pending");
  else
    wh__dispatcher_log(d, WH_LOG_INFO, "dispatcher stopped: %ld pending deliver%s %s", held, held == 1 ? "y" : "ies",
                       d->store->ops->durable ? "left in the store for the next start" : "lost (memory store)");
  if (d->results)
    wh__results_close(d->results); /* the workers are gone: no outcome comes any more */
  /* What we held in memory is free for the next run (or another dispatcher). */
  d->store->ops->release(d->store, d->owner);
  d->store->ops->flush(d->store);
  wh_dispatcher *self = d;
  atomic_compare_exchange_strong(&default_dispatcher, &self, NULL);
  return rc;
}

static void free_delivery(wh__delivery *dl)
{
  wh__msg_unref(dl->msg);
  free(dl);
}

/* In a child after fork: the threads are the parent's and do not exist here;
   the connections, epoll sets and store are shared with the parent, and
   closing them here would break them there. Only this process's copies of
   the dispatcher's own descriptors are closed; the memory is a copy that is
   left as it is. */
static void free_in_child(wh_dispatcher *d)
{
  for (int i = 0; d->workers && i < d->o.workers; i++) {
    if (d->workers[i].epfd >= 0)
      close(d->workers[i].epfd);
    if (d->workers[i].wake_fd >= 0)
      close(d->workers[i].wake_fd);
  }
  if (d->results)
    close(wh__results_fd(d->results));
}

void wh_dispatcher_free(wh_dispatcher *d)
{
  if (!d)
    return;
  if (wh__forked(d->fork_gen)) {
    free_in_child(d);
    return;
  }
  if (in_callback == d) {
    wh__fail(WH_ESTATE, "wh_dispatcher_free: not from inside the dispatcher's own callback; ignored");
    return;
  }
  if (d->state == ST_RUNNING)
    wh_dispatcher_stop(d, 0);
  wh_dispatcher *self = d;
  atomic_compare_exchange_strong(&default_dispatcher, &self, NULL);
  for (int i = 0; d->workers && i < d->o.workers; i++) {
    worker *w = &d->workers[i];
    for (wh__xfer *x = w->free_xfers, *next; x; x = next) {
      next = x->next_free;
      wh__xfer_free(x);
    }
    if (w->multi)
      curl_multi_cleanup(w->multi);
    if (w->epfd >= 0)
      close(w->epfd);
    if (w->wake_fd >= 0)
      close(w->wake_fd);
  }
  free(d->workers);
  wh__share_free(d->o.share); /* after the easy handles using it */
  for (size_t i = 0; i < d->nheap; i++)
    free_delivery(d->heap[i]);
  free(d->heap);
  for (size_t b = 0; b < d->qcap; b++) {
    for (wh__epq *q = d->qtab[b], *next; q; q = next) {
      next = q->hnext;
      while (q->ready)
        free_delivery(ready_pop(d, q));
      wh__endpoint_unref(atomic_load(&q->ep));
      wh__ep_counters_free(&q->st);
      free(q);
    }
  }
  free(d->qtab);
  wh__resolver_free(d->resolver);
  free(d->o.user_agent);
  free(d->o.ca_file);
  free(d->o.proxy);
  wh__results_free(d->results);
  wh__hooks_destroy(&d->hooks);
  pthread_cond_destroy(&d->idle_cv);
  pthread_mutex_destroy(&d->mu);
  wh__registry_unref(d->reg);
  free(d);
}

/* ---- figures for the stats (stats.c) ------------------------------------------------------- */

/* Only counters are copied under mu: a few hundred bytes. */
int wh__dispatcher_totals(wh_dispatcher *d, wh__stats_totals *t)
{
  int rc = wh__dispatcher_check(d, "stats");
  if (rc)
    return rc;
  memset(t, 0, sizeof *t);
  pthread_mutex_lock(&d->mu);
  t->c = d->stats;
  t->in_flight = d->in_flight + d->reporting;
  t->due = d->ready;
  /* Memory store: ordered deliveries wait in their chains in the store, in turn. */
  t->scheduled = d->held - d->ready - d->in_flight - d->reporting + d->store_waiting;
  t->started_ms = d->started_ms;
  pthread_mutex_unlock(&d->mu);
  t->results_dropped = wh__dispatcher_results_dropped(d);
  wh__registry_counts(d->reg, &t->endpoints_enabled, &t->endpoints_disabled);
  return WH_OK;
}

/* One queue's figures: a hash lookup and a copy of at most ~600 bytes under mu. */
int wh__dispatcher_endpoint(wh_dispatcher *d, const char *id, wh__stats_endpoint *e, wh__endpoint **ep)
{
  int rc = wh__dispatcher_check(d, "endpoint stats");
  if (rc)
    return rc;
  if (!(*ep = wh__registry_get(d->reg, id)))
    return wh__fail(WH_ENOTFOUND, "endpoint stats: endpoint \"%.64s\": no such endpoint", id);
  memset(e, 0, sizeof *e);
  e->window = start_window(d);
  int64_t now = wh__now_ms();
  pthread_mutex_lock(&d->mu);
  const wh__epq *q = queue_find(d, id);
  if (q) {
    const wh__ep_counters *st = &q->st;
    e->seen = 1;
    e->in_flight = q->in_flight + st->settling;
    e->window = q->limit;
    /* Past its cooldown an open breaker lets the next request through as a probe. */
    e->breaker = q->breaker.state == WH__BREAKER_OPEN && now >= q->breaker.open_until ? WH__BREAKER_HALF_OPEN
                                                                                    : q->breaker.state;
    e->due = (long)q->ready;
    e->scheduled = (long)q->pending - (long)q->ready - q->in_flight - st->settling;
    e->delivered = st->delivered;
    e->failed = st->failed;
    e->last_http_status = st->last_http_status;
    e->last_attempt_ms = st->last_attempt_ms;
    if (st->last_error)
      snprintf(e->last_error, sizeof e->last_error, "%s", st->last_error);
    e->nlat = st->nlat;
    if (st->lat_ms)
      memcpy(e->lat_ms, st->lat_ms, (size_t)st->nlat * sizeof e->lat_ms[0]);
  }
  pthread_mutex_unlock(&d->mu);
  return WH_OK;
}

/* ---- result accessors --------------------------------------------------------------------- */

const char *wh_result_message_id(const wh_result *r) { return r ? r->message_id : NULL; }
const char *wh_result_endpoint_id(const wh_result *r) { return r ? r->endpoint_id : NULL; }
int wh_result_outcome(const wh_result *r) { return r ? r->outcome : 0; }
int wh_result_attempt(const wh_result *r) { return r ? r->attempt : 0; }
int wh_result_http_status(const wh_result *r) { return r ? r->http_status : 0; }
const char *wh_result_error(const wh_result *r) { return r ? r->error : NULL; }
int64_t wh_result_next_attempt_ms(const wh_result *r) { return r ? r->next_attempt_ms : 0; }
int64_t wh_result_duration_ms(const wh_result *r) { return r ? r->duration_ms : 0; }
int wh_result_endpoint_disabled(const wh_result *r) { return r ? r->endpoint_disabled : 0; }

/* ---- the result queue ---------------------------------------------------------------------- */

int wh_dispatcher_next_result(wh_dispatcher *d, int timeout_ms, wh_result **out)
{
  int rc = wh__dispatcher_check(d, "next result");
  if (rc)
    return rc;
  if (!out)
    return wh__fail(WH_EINVAL, "next result: out must not be NULL");
  *out = NULL;
  if (!d->results)
    return wh__fail(WH_ESTATE, "next result: the result queue is off (set WH_OPT_RESULT_QUEUE before start)");
  return wh__results_next(d->results, timeout_ms, out);
}

int wh_dispatcher_result_fd(wh_dispatcher *d)
{
  if (wh__dispatcher_check(d, "result fd"))
    return -1;
  if (!d->results) {
    wh__fail(WH_ESTATE, "result fd: the result queue is off (set WH_OPT_RESULT_QUEUE before start)");
    return -1;
  }
  return wh__results_fd(d->results);
}

uint64_t wh__dispatcher_results_dropped(wh_dispatcher *d) { return d->results ? wh__results_dropped(d->results) : 0; }
