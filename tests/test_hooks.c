/* The two mechanisms behind the lifecycle guarantees, tested directly:
   replaceable callbacks (delivery/hooks.c), called by worker threads and by
   other threads (the log's path), and the result queue (delivery/results.c)
   with its drop count and descriptor. */
#include "delivery/dispatch.h"

#include "support/check.h"
#include "support/harness.h"

#include <poll.h>
#include <stdatomic.h>

/* ---- callbacks replaced while threads call them ------------------------------------ */

typedef struct {
  atomic_int inside, calls, late, retired;
} probe;

static void probe_log(int level, const char *message, void *ud)
{
  (void)level;
  (void)message;
  probe *p = ud;
  if (atomic_load(&p->retired))
    atomic_fetch_add(&p->late, 1);
  atomic_fetch_add(&p->inside, 1);
  atomic_fetch_add(&p->calls, 1);
  for (volatile int i = 0; i < 2000; i++) {
  }
  atomic_fetch_sub(&p->inside, 1);
}

typedef struct {
  wh__hooks *h;
  int worker; /* bound as worker i, or -1: another thread */
  atomic_int *stop;
  long calls;
} caller;

static void *call_loop(void *arg)
{
  caller *c = arg;
  if (c->worker >= 0)
    wh__hooks_bind(c->h, c->worker);
  while (!atomic_load(c->stop)) {
    wh__hook_frame f;
    const wh__hook *k = wh__hook_enter(c->h, WH__HOOK_LOG, &f);
    if (k) {
      k->fn.log(WH_LOG_INFO, "m", k->ud);
      wh__hook_leave(&f);
      c->calls++;
    }
  }
  return NULL;
}

static void swaps_with_workers_and_others(void)
{
  enum { THREADS = 6 };
  wh__hooks *h = calloc(1, sizeof *h);
  wh__hooks_init(h);
  probe *cur = calloc(1, sizeof *cur);
  wh__hook k = {.fn.log = probe_log, .ud = cur, .max_level = WH_LOG_DEBUG};
  CHECK_OK(wh__hooks_set(h, WH__HOOK_LOG, &k));
  atomic_int stop = 0;
  caller c[THREADS];
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) {
    c[i] = (caller){.h = h, .worker = i % 2 ? i : -1, .stop = &stop};
    pthread_create(&t[i], NULL, call_loop, &c[i]);
  }
  int late = 0, busy = 0;
  for (int s = 0; s < 2000; s++) {
    probe *next = calloc(1, sizeof *next);
    k.ud = next;
    busy += atomic_load(&cur->inside) > 0;
    CHECK_OK(wh__hooks_set(h, WH__HOOK_LOG, s % 5 == 4 ? NULL : &k));
    CHECK_INT(atomic_load(&cur->inside), 0);
    atomic_store(&cur->retired, 1);
    for (volatile int i = 0; i < 5000; i++) {
    }
    late += atomic_load(&cur->late);
    free(cur); /* ASan: a late call touches freed memory */
    cur = next;
  }
  atomic_store(&stop, 1);
  long calls = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    calls += c[i].calls;
  }
  CHECK_INT(late, 0);
  CHECK(busy > 0);
  CHECK(calls > 1000);
  printf("hooks: 2000 swaps, %d found a call running, %ld calls\n", busy, calls);
  wh__hooks_destroy(h);
  free(cur);
  free(h);
}

/* A callback that calls into the library again on the same thread (nested),
   then replaces the callback from inside: no deadlock, on either path. */
typedef struct {
  wh__hooks *h;
  int depth, replaced;
} nester;

static void nest_log(int level, const char *message, void *ud)
{
  (void)level;
  (void)message;
  nester *n = ud;
  if (n->depth++ == 0) {
    wh__hook_frame f;
    const wh__hook *k = wh__hook_enter(n->h, WH__HOOK_LOG, &f);
    if (k) {
      k->fn.log(WH_LOG_INFO, "nested", k->ud);
      wh__hook_leave(&f);
    }
    n->replaced = wh__hooks_set(n->h, WH__HOOK_LOG, NULL) == WH_OK;
  }
}

static void *nest_once(void *arg)
{
  nester *n = arg;
  wh__hook_frame f;
  const wh__hook *k = wh__hook_enter(n->h, WH__HOOK_LOG, &f);
  if (k) {
    k->fn.log(WH_LOG_INFO, "outer", k->ud);
    wh__hook_leave(&f);
  }
  return NULL;
}

static void nested_and_from_inside(int as_worker)
{
  wh__hooks *h = calloc(1, sizeof *h);
  wh__hooks_init(h);
  nester n = {.h = h};
  wh__hook k = {.fn.log = nest_log, .ud = &n, .max_level = WH_LOG_DEBUG};
  CHECK_OK(wh__hooks_set(h, WH__HOOK_LOG, &k));
  if (as_worker)
    wh__hooks_bind(h, 3);
  pthread_t t;
  if (as_worker) {
    nest_once(&n);
  } else {
    pthread_create(&t, NULL, nest_once, &n);
    pthread_join(t, NULL);
  }
  CHECK_INT(n.depth, 2);
  CHECK_INT(n.replaced, 1);
  wh__hook_frame f;
  CHECK(wh__hook_enter(h, WH__HOOK_LOG, &f) == NULL);
  /* The mutex of other threads is free again, the worker's counter even. */
  CHECK_OK(wh__hooks_set(h, WH__HOOK_LOG, &k));
  CHECK_OK(wh__hooks_set(h, WH__HOOK_LOG, NULL));
  CHECK_INT(atomic_load(&h->readers[3].seq) % 2, 0);
  wh__hooks_bind(h, 0);
  wh__hooks_destroy(h);
  free(h);
}

/* Two workers inside the callback at once, each replacing it: neither waits
   for the other (each counts as returned once it replaces). */
typedef struct {
  wh__hooks *h;
  atomic_int inside, replaced;
} pair;

static void pair_log(int level, const char *message, void *ud)
{
  (void)level;
  (void)message;
  pair *p = ud;
  atomic_fetch_add(&p->inside, 1);
  while (atomic_load(&p->inside) < 2) {
  }
  if (wh__hooks_set(p->h, WH__HOOK_LOG, NULL) == WH_OK)
    atomic_fetch_add(&p->replaced, 1);
}

typedef struct {
  pair *p;
  int worker;
} pair_arg;

static void *pair_call(void *arg)
{
  pair_arg *a = arg;
  wh__hooks_bind(a->p->h, a->worker);
  wh__hook_frame f;
  const wh__hook *k = wh__hook_enter(a->p->h, WH__HOOK_LOG, &f);
  if (k) {
    k->fn.log(WH_LOG_INFO, "m", k->ud);
    wh__hook_leave(&f);
  }
  return NULL;
}

static void two_replace_at_once(void)
{
  wh__hooks *h = calloc(1, sizeof *h);
  wh__hooks_init(h);
  pair p = {.h = h};
  wh__hook k = {.fn.log = pair_log, .ud = &p, .max_level = WH_LOG_DEBUG};
  CHECK_OK(wh__hooks_set(h, WH__HOOK_LOG, &k));
  pair_arg a[2] = {{&p, 0}, {&p, 1}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    pthread_create(&t[i], NULL, pair_call, &a[i]);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL); /* a deadlock hangs here (ctest's timeout) */
  CHECK_INT(atomic_load(&p.replaced), 2);
  wh__hooks_destroy(h);
  free(h);
}

/* ---- wh__dispatcher_log: levels, formatting, replaced while called ---------------- */

typedef struct {
  pthread_mutex_t mu;
  int n, last_level;
  char last[128];
} logbook;

static void book_log(int level, const char *message, void *ud)
{
  logbook *b = ud;
  pthread_mutex_lock(&b->mu);
  b->n++;
  b->last_level = level;
  snprintf(b->last, sizeof b->last, "%s", message);
  pthread_mutex_unlock(&b->mu);
}

static void dispatcher_log(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  wh_dispatcher *d;
  CHECK_OK(wh_dispatcher_new(&d, reg));
  logbook b = {.mu = PTHREAD_MUTEX_INITIALIZER};
  wh__dispatcher_log(d, WH_LOG_ERROR, "nobody listens %d", 0);
  CHECK_OK(wh_dispatcher_on_log(d, WH_LOG_WARN, book_log, &b));
  wh__dispatcher_log(d, WH_LOG_ERROR, "store %s failed %d times", "sqlite:x", 3);
  wh__dispatcher_log(d, WH_LOG_WARN, "breaker open");
  wh__dispatcher_log(d, WH_LOG_INFO, "too detailed");
  CHECK_INT(b.n, 2);
  CHECK_INT(b.last_level, WH_LOG_WARN);
  CHECK_STR(b.last, "breaker open");
  CHECK_OK(wh_dispatcher_on_log(d, WH_LOG_DEBUG, NULL, NULL));
  wh__dispatcher_log(d, WH_LOG_ERROR, "detached");
  CHECK_INT(b.n, 2);
  CHECK_INT((long)wh__dispatcher_results_dropped(d), 0);
  CHECK_OK(wh__dispatcher_check(d, "test"));
  wh_dispatcher_free(d);
  wh_registry_free(reg);
}

/* ---- the result queue -------------------------------------------------------------- */

static int readable(int fd)
{
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, 0) == 1;
}

static void push(wh__results *q, int attempt, const char *error)
{
  char mid[32];
  snprintf(mid, sizeof mid, "msg_%d", attempt);
  wh_result r = {.message_id = mid, .endpoint_id = "ep_1", .error = error, .outcome = WH_RETRYING,
                 .attempt = attempt, .http_status = 503, .next_attempt_ms = 42, .duration_ms = 7};
  wh__results_push(q, &r);
}

typedef struct {
  wh__results *q;
  int rc;
} waiter;

static void *wait_forever(void *arg)
{
  waiter *w = arg;
  wh_result *r = NULL;
  w->rc = wh__results_next(w->q, -1, &r);
  return NULL;
}

static void result_queue(void)
{
  wh__results *q;
  CHECK_OK(wh__results_new(&q, 3));
  int fd = wh__results_fd(q);
  CHECK(fd >= 0 && !readable(fd));
  for (int i = 1; i <= 5; i++)
    push(q, i, i == 5 ? NULL : "HTTP 503");
  CHECK_INT((long)wh__results_dropped(q), 2);
  CHECK(readable(fd));
  wh_result *r;
  for (int i = 3; i <= 5; i++) {
    CHECK_OK(wh__results_next(q, 0, &r));
    char mid[32];
    snprintf(mid, sizeof mid, "msg_%d", i);
    CHECK_STR(wh_result_message_id(r), mid);
    CHECK_STR(wh_result_endpoint_id(r), "ep_1");
    CHECK_INT(wh_result_attempt(r), i);
    CHECK_INT(wh_result_outcome(r), WH_RETRYING);
    CHECK_INT(wh_result_http_status(r), 503);
    CHECK_INT(wh_result_next_attempt_ms(r), 42);
    CHECK_INT(wh_result_duration_ms(r), 7);
    CHECK(i == 5 ? wh_result_error(r) == NULL : strcmp(wh_result_error(r), "HTTP 503") == 0);
    CHECK_INT(readable(fd), i < 5);
    wh_result_free(r);
  }
  CHECK_ERR(wh__results_next(q, 0, &r), WH_ETIMEOUT, NULL);
  push(q, 6, NULL);
  wh__results_close(q);
  CHECK_OK(wh__results_next(q, 0, &r));
  wh_result_free(r);
  CHECK_ERR(wh__results_next(q, -1, &r), WH_ESTATE, NULL);
  wh__results_free(q);

  /* Freeing wakes a consumer that waits without limit, and waits for it. */
  CHECK_OK(wh__results_new(&q, 10));
  waiter w = {.q = q, .rc = -1};
  pthread_t t;
  pthread_create(&t, NULL, wait_forever, &w);
  /* Free only once it waits (sooner, it would then call into freed memory). */
  for (int64_t end = h_mono_ms() + 10000; !wh__results_waiting(q) && h_mono_ms() < end;)
    h_sleep_ms(1);
  CHECK_INT(wh__results_waiting(q), 1);
  wh__results_free(q);
  pthread_join(t, NULL);
  CHECK_INT(w.rc, WH_ESTATE);
}

int main(void)
{
  swaps_with_workers_and_others();
  nested_and_from_inside(0);
  nested_and_from_inside(1);
  two_replace_at_once();
  dispatcher_log();
  result_queue();
  return check_done("hooks");
}
