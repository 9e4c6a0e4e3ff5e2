/* The lifecycle guarantees that make the library safe from every language
   (API-1.1 section 3), against a real receiver on loopback: drain waits for
   the callbacks, callbacks replaced or detached while running (also from
   inside one), any free order, fork, WH_OPT_PROCESS_DEFAULT, the result
   queue and wh_dispatcher_emit_batch. */
#include <webhook/webhook.h>

#include "receiver.h"
#include "support/check.h"
#include "support/harness.h"

#include <poll.h>
#include <sqlite3.h>
#include <stdatomic.h>

static rcv *R;
static char dir[] = "/tmp/wh-lifecycle-XXXXXX";

static void add_ep(wh_registry *reg, const char *name, const char *path, char *id)
{
  char url[256];
  rcv_url(R, path, url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, name, url, NULL, id, WH_ID_MAX));
}

static wh_dispatcher *plain_dispatcher(wh_registry *reg, int workers)
{
  wh_dispatcher *d = NULL;
  CHECK_OK(wh_dispatcher_new(&d, reg));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, 1));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_WORKERS, workers));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_RETRY_JITTER_PCT, 0));
  CHECK_OK(wh_dispatcher_set_str(d, WH_OPT_RETRY_SCHEDULE, "0.1,0.1"));
  return d;
}

static void sqlite_store(char *out, size_t len, const char *name)
{
  snprintf(out, len, "sqlite:%s/%s.db", dir, name);
}

/* ---- 1. drain returns after the callbacks of the finished attempts ------------------- */

typedef struct {
  atomic_int entered, returned;
  int sleep_ms;
} slow_cb;

static void slow_result(const wh_result *r, void *ud)
{
  (void)r;
  slow_cb *s = ud;
  atomic_fetch_add(&s->entered, 1);
  h_sleep_ms(s->sleep_ms);
  atomic_fetch_add(&s->returned, 1);
}

static void drain_waits_for_callbacks(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX];
  add_ep(reg, "slow-callback", "/drain-cb", id);
  slow_cb s = {.sleep_ms = 300};
  wh_dispatcher *d = plain_dispatcher(reg, 2);
  CHECK_OK(wh_dispatcher_on_result(d, slow_result, &s));
  CHECK_OK(wh_dispatcher_start(d));
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_INT(atomic_load(&s.returned), 1);

  /* Deliveries that end without an attempt (their endpoint disabled while
     they waited) are outcomes too: drain waits for their callbacks. One
     request at a time, the first one held by the receiver, so the others wait
     in the queue while the endpoint is disabled. */
  char url[256];
  rcv_url(R, "/drain-disabled", url, sizeof url);
  char id2[WH_ID_MAX];
  CHECK_OK(wh_endpoint_add(reg, "disabled-while-queued", url, NULL, id2, sizeof id2));
  CHECK_OK(wh_endpoint_subscribe(reg, id2, "orders.*"));
  CHECK_OK(wh_endpoint_subscribe(reg, id, "people.*"));
  /* Held long enough that the endpoint is surely disabled before the answer,
     however slow the machine. */
  rcv_spec hold = {.kind = RCV_REPLY, .status = 200, .ms = 3000, .times = 1};
  rcv_script(R, "/drain-disabled", &hold);
  wh_dispatcher_free(d);
  atomic_store(&s.entered, 0);
  atomic_store(&s.returned, 0);
  s.sleep_ms = 100;
  d = plain_dispatcher(reg, 2);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_MAX_PER_ENDPOINT, 1));
  CHECK_OK(wh_dispatcher_on_result(d, slow_result, &s));
  CHECK_OK(wh_dispatcher_start(d));
  size_t before = rcv_count(R);
  for (int i = 0; i < 5; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event("orders", "CREATE"), NULL, 0));
  CHECK(rcv_wait_count(R, before + 1, 5000));
  CHECK_OK(wh_endpoint_set_enabled(reg, id2, 0));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_INT(atomic_load(&s.returned), 5);
  CHECK_INT(rcv_count(R) - before, 1);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
}

/* ---- 2. callbacks replaced at any time ------------------------------------------------- */

/* A callback's own record: it must never be entered after its replacement
   returned, and nothing of it may be touched after it is freed (ASan). */
typedef struct {
  atomic_int inside, calls, late;
  atomic_int retired; /* set by the test when the call that replaced it returned */
} probe;

static void probe_cb(const wh_result *r, void *ud)
{
  (void)r;
  probe *p = ud;
  if (atomic_load(&p->retired))
    atomic_fetch_add(&p->late, 1);
  atomic_fetch_add(&p->inside, 1);
  atomic_fetch_add(&p->calls, 1);
  h_sleep_ms(1); /* widen the window in which a swap finds it running */
  atomic_fetch_sub(&p->inside, 1);
}

typedef struct {
  wh_dispatcher *d;
  atomic_int stop;
  atomic_long emitted;
} emitter;

static void *emit_loop(void *arg)
{
  emitter *e = arg;
  while (!atomic_load(&e->stop)) {
    if (wh_dispatcher_emit(e->d, h_person_event(NULL, NULL), NULL, 0) == WH_OK)
      atomic_fetch_add(&e->emitted, 1);
    h_sleep_ms(1);
  }
  return NULL;
}

static void swap_under_load(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX];
  add_ep(reg, "swap-a", "/swap-a", id);
  add_ep(reg, "swap-b", "/swap-b", id);
  wh_dispatcher *d = plain_dispatcher(reg, 4);
  probe *cur = calloc(1, sizeof *cur);
  CHECK_OK(wh_dispatcher_on_result(d, probe_cb, cur));
  CHECK_OK(wh_dispatcher_start(d));
  emitter e = {.d = d};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    pthread_create(&t[i], NULL, emit_loop, &e);
  int swaps = 0, busy_at_swap = 0, late = 0;
  long calls = 0;
  /* 3 s, or longer (30 s at most) on a slow machine until the checks below
     have had enough swaps, calls and swaps that found a callback running. */
  int64_t t0 = h_mono_ms();
  while (h_mono_ms() - t0 < 3000 || ((swaps <= 50 || calls <= 100 || !busy_at_swap) && h_mono_ms() - t0 < 30000)) {
    h_sleep_ms(10);
    probe *next = calloc(1, sizeof *next);
    busy_at_swap += atomic_load(&cur->inside) > 0;
    /* Every third swap detaches, then attaches again. */
    if (swaps % 3 == 2)
      CHECK_OK(wh_dispatcher_on_result(d, NULL, NULL));
    CHECK_OK(wh_dispatcher_on_result(d, probe_cb, next));
    CHECK_INT(atomic_load(&cur->inside), 0); /* the old one runs nowhere now */
    atomic_store(&cur->retired, 1);
    h_sleep_ms(2);
    late += atomic_load(&cur->late);
    calls += atomic_load(&cur->calls);
    free(cur); /* a late call would now touch freed memory */
    cur = next;
    swaps++;
  }
  atomic_store(&e.stop, 1);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  CHECK_OK(wh_dispatcher_on_result(d, NULL, NULL));
  late += atomic_load(&cur->late);
  free(cur);
  CHECK_INT(late, 0);
  CHECK(swaps > 50);
  CHECK(calls > 100);
  /* The swaps did find callbacks running: the wait was exercised. */
  CHECK(busy_at_swap > 0);
  printf("swap: %d swaps, %d found the old callback running, %ld calls, %ld emitted\n", swaps, busy_at_swap,
         calls, atomic_load(&e.emitted));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  wh_dispatcher_free(d);
  wh_registry_free(reg);
}

/* Detaching from inside the callback: it does not wait for itself, and when
   several workers do it at once they do not wait for one another. */
typedef struct {
  wh_dispatcher *d;
  atomic_int inside, calls, detaches, late, others_inside_after, bad_rc;
  atomic_int detached;
  int other_slot; /* detach the disabled callback instead (another slot of the same dispatcher) */
} detacher;

static void detach_cb(const wh_result *r, void *ud)
{
  (void)r;
  detacher *x = ud;
  if (atomic_load(&x->detached))
    atomic_fetch_add(&x->late, 1);
  atomic_fetch_add(&x->inside, 1);
  atomic_fetch_add(&x->calls, 1);
  /* Wait (a while) for company: two workers detaching at once must not wait
     for each other. */
  for (int i = 0; i < 100 && atomic_load(&x->inside) < 2; i++)
    h_sleep_ms(5);
  int rc = wh_dispatcher_on_result(x->d, NULL, NULL);
  if (x->other_slot && rc == WH_OK)
    rc = wh_dispatcher_on_disabled(x->d, NULL, NULL);
  if (rc != WH_OK)
    atomic_fetch_add(&x->bad_rc, 1);
  atomic_fetch_add(&x->detaches, 1);
  atomic_store(&x->detached, 1);
  /* Stop and drain still refuse here: this is still the callback's thread. */
  if (wh_dispatcher_stop(x->d, 0) != WH_ESTATE || wh_dispatcher_drain(x->d, 0) != WH_ESTATE)
    atomic_fetch_add(&x->bad_rc, 1);
  atomic_fetch_sub(&x->inside, 1);
}

static void disabled_noop(const char *ep, const char *reason, void *ud)
{
  (void)ep;
  (void)reason;
  (void)ud;
}

static void detach_from_inside(int other_slot)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX];
  for (int i = 0; i < 4; i++) {
    char name[32], path[32];
    snprintf(name, sizeof name, "detach-%d", i);
    snprintf(path, sizeof path, "/detach-%d", i);
    add_ep(reg, name, path, id);
  }
  wh_dispatcher *d = plain_dispatcher(reg, 4);
  detacher *x = calloc(1, sizeof *x);
  x->d = d;
  x->other_slot = other_slot;
  CHECK_OK(wh_dispatcher_on_result(d, detach_cb, x));
  CHECK_OK(wh_dispatcher_on_disabled(d, disabled_noop, NULL));
  CHECK_OK(wh_dispatcher_start(d));
  for (int i = 0; i < 20; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK_OK(wh_dispatcher_drain(d, 20000)); /* a deadlock would end here, in the timeout */
  CHECK(atomic_load(&x->calls) >= 1); /* test_hooks makes two detach at once for sure */
  CHECK_INT(atomic_load(&x->detaches), atomic_load(&x->calls));
  CHECK_INT(atomic_load(&x->inside), 0);
  CHECK_INT(atomic_load(&x->bad_rc), 0);
  int calls = atomic_load(&x->calls);
  /* Several workers were inside at once and all detached: none deadlocked. */
  printf("detach from inside%s: %d calls before the detach took hold\n", other_slot ? " (two slots)" : "", calls);
  for (int i = 0; i < 10; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_INT(atomic_load(&x->calls), calls); /* never called again */
  CHECK_INT(atomic_load(&x->late), 0);
  wh_dispatcher_free(d);
  free(x);
  wh_registry_free(reg);
}

static void log_noop(int level, const char *message, void *ud)
{
  (void)level;
  (void)message;
  (void)ud;
}

static void log_registration(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  wh_dispatcher *d = plain_dispatcher(reg, 1);
  CHECK_ERR(wh_dispatcher_on_log(d, 0, log_noop, NULL), WH_EINVAL, "max_level");
  CHECK_ERR(wh_dispatcher_on_log(d, 5, log_noop, NULL), WH_EINVAL, "max_level");
  CHECK_ERR(wh_dispatcher_on_log(NULL, 1, NULL, NULL), WH_EINVAL, "NULL");
  CHECK_OK(wh_dispatcher_start(d));
  CHECK_OK(wh_dispatcher_on_log(d, WH_LOG_INFO, log_noop, NULL));
  CHECK_OK(wh_dispatcher_on_log(d, 0, NULL, NULL)); /* detaching takes any level */
  CHECK_OK(wh_dispatcher_on_disabled(d, NULL, NULL));
  wh_dispatcher_free(d);
  wh_registry_free(reg);
}

/* ---- 3. free order ------------------------------------------------------------------------ */

/* Registry, tenant view and dispatchers freed in every order: never started,
   running with deliveries in flight (the receiver holds them) and pending,
   stopped. What is left keeps working. */
static const char *tenant = "be461bd7-2d91-41c6-ab29-4389066bcc71"; /* h_person_event's */

static void view_still_works(wh_registry *view)
{
  char *list = NULL;
  CHECK_OK(wh_endpoint_list_json(view, &list));
  CHECK(list && strstr(list, tenant));
  wh_free(list);
}

static void free_orders(const char *store_name)
{
  char store[512];
  if (store_name)
    sqlite_store(store, sizeof store, store_name);
  for (int order = 0; order < 6; order++) {
    wh_registry *reg, *view;
    CHECK_OK(wh_registry_open(&reg, store_name ? store : NULL));
    CHECK_OK(wh_registry_open_tenant(&view, reg, tenant));
    char id[WH_ID_MAX], path[64], url[256];
    snprintf(path, sizeof path, "/free-order-%s-%d", store_name ? store_name : "mem", order);
    char name[64];
    snprintf(name, sizeof name, "free-order-%d", order);
    add_ep(reg, name, path, id);
    rcv_url(R, path, url, sizeof url);
    CHECK_OK(wh_endpoint_add(view, name, url, NULL, NULL, 0)); /* the tenant's own */
    rcv_spec stall = {.kind = RCV_STALL, .ms = 3000};
    rcv_script(R, path, &stall);
    wh_dispatcher *a = plain_dispatcher(reg, 2), *b = plain_dispatcher(reg, 1);
    CHECK_OK(wh_dispatcher_set_int(a, WH_OPT_RESULT_QUEUE, 100));
    int running = order >= 2;
    if (running) {
      CHECK_OK(wh_dispatcher_start(a));
      for (int i = 0; i < 40; i++) /* some in flight, most pending */
        CHECK_OK(wh_dispatcher_emit(a, h_person_event(NULL, NULL), NULL, 0));
    }
    if (order == 5) {
      int rc = wh_dispatcher_stop(a, 0); /* in-flight requests are given up: WH_ETIMEOUT */
      CHECK(rc == WH_OK || rc == WH_ETIMEOUT);
    }
    switch (order % 3) {
    case 0: /* the registry first, then its view */
      wh_registry_free(reg);
      view_still_works(view);
      wh_registry_free(view);
      wh_dispatcher_free(a);
      wh_dispatcher_free(b);
      break;
    case 1: /* between the dispatchers */
      wh_dispatcher_free(b);
      wh_registry_free(view);
      wh_registry_free(reg);
      wh_dispatcher_free(a);
      break;
    default: /* the dispatchers first, the view last */
      wh_dispatcher_free(a);
      wh_dispatcher_free(b);
      wh_registry_free(reg);
      view_still_works(view);
      wh_registry_free(view);
      break;
    }
    rcv_script_clear(R, path);
  }
  /* A durable store keeps what was pending for the next run. */
  if (store_name) {
    wh_registry *reg;
    CHECK_OK(wh_registry_open(&reg, store));
    char *list = NULL;
    CHECK_OK(wh_endpoint_list_json(reg, &list));
    CHECK(list && strstr(list, "free-order-5"));
    wh_free(list);
    wh_registry_free(reg);
  }
}

/* A consumer waiting for results wakes when the dispatcher stops. */
typedef struct {
  wh_dispatcher *d;
  int rc, got;
} consumer;

static void *consume_until_end(void *arg)
{
  consumer *c = arg;
  wh_result *r;
  while ((c->rc = wh_dispatcher_next_result(c->d, -1, &r)) == WH_OK) {
    c->got++;
    wh_result_free(r);
  }
  return NULL;
}

static void stop_wakes_consumer(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX];
  add_ep(reg, "wake", "/wake", id);
  wh_dispatcher *d = plain_dispatcher(reg, 1);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_RESULT_QUEUE, 10));
  CHECK_OK(wh_dispatcher_start(d));
  consumer c = {.d = d};
  pthread_t t;
  pthread_create(&t, NULL, consume_until_end, &c);
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK_OK(wh_dispatcher_drain(d, 5000));
  h_sleep_ms(50);
  int64_t t0 = h_mono_ms();
  CHECK_OK(wh_dispatcher_stop(d, 1000));
  pthread_join(t, NULL);
  CHECK(h_mono_ms() - t0 < 2000);
  CHECK_INT(c.got, 1);
  CHECK_INT(c.rc, WH_ESTATE);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
}

/* ---- 4. fork -------------------------------------------------------------------------------- */

typedef struct {
  wh_registry *reg;
  wh_dispatcher *d;
  const char *msg_id, *ep_id;
  int durable;
} forked;

static int child_bad;
#define EXPECT(cond)                                                                      \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      child_bad++;                                                                        \
      fprintf(stderr, "child: %s:%d: %s (%s)\n", __FILE__, __LINE__, #cond, wh_error_last()); \
    }                                                                                     \
  } while (0)
#define PARENTS(expr) EXPECT((expr) == WH_ESTATE && strstr(wh_error_last(), "belongs to the parent process"))

static int in_child(void *arg)
{
  forked *f = arg;
  wh_dispatcher *d = f->d;
  char id[WH_ID_MAX];
  PARENTS(wh_dispatcher_emit(d, h_person_event(NULL, NULL), id, sizeof id));
  PARENTS(wh_emit(h_person_event(NULL, NULL))); /* the default dispatcher is the parent's too */
  wh_event *evs[2] = {h_person_event(NULL, NULL), h_person_event(NULL, NULL)};
  PARENTS(wh_dispatcher_emit_batch(d, evs, 2, NULL, 0));
  PARENTS(wh_dispatcher_drain(d, 1000));
  PARENTS(wh_dispatcher_stop(d, 1000));
  PARENTS(wh_dispatcher_start(d));
  PARENTS(wh_dispatcher_set_int(d, WH_OPT_WORKERS, 1));
  PARENTS(wh_dispatcher_set_str(d, WH_OPT_USER_AGENT, "child"));
  PARENTS(wh_dispatcher_on_result(d, NULL, NULL));
  PARENTS(wh_dispatcher_on_disabled(d, NULL, NULL));
  PARENTS(wh_dispatcher_on_log(d, 1, NULL, NULL));
  PARENTS(wh_dispatcher_set_default(d));
  PARENTS(wh_dispatcher_replay(d, f->msg_id, NULL, NULL));
  PARENTS(wh_dispatcher_recover(d, f->ep_id, 0, NULL));
  wh_result *r = NULL;
  PARENTS(wh_dispatcher_next_result(d, 1000, &r));
  EXPECT(wh_dispatcher_result_fd(d) == -1);
  char ep[WH_ID_MAX], url[256];
  rcv_url(R, "/child", url, sizeof url);
  /* The registry too, whatever its store: a thread of the parent may have held
     one of its locks at the fork (the store's writer and connections are the
     parent's anyway). */
  PARENTS(wh_endpoint_add(f->reg, "child", url, NULL, ep, sizeof ep));
  PARENTS(wh_endpoint_set_enabled(f->reg, f->ep_id, 0));
  char *json = NULL;
  PARENTS(wh_message_get_json(f->reg, f->msg_id, &json));
  PARENTS(wh_endpoint_failed_json(f->reg, f->ep_id, 0, 10, &json));
  PARENTS(wh_endpoint_get_json(f->reg, f->ep_id, &json));
  PARENTS(wh_endpoint_list_json(f->reg, &json));
  PARENTS(wh_registry_purge(f->reg, 0, NULL));
  wh_registry *view = NULL;
  PARENTS(wh_registry_open_tenant(&view, f->reg, "acme"));
  wh_dispatcher *d2 = NULL;
  PARENTS(wh_dispatcher_new(&d2, f->reg));
  EXPECT(json == NULL && view == NULL && d2 == NULL);
  /* A registry of its own works. */
  wh_registry *mine;
  EXPECT(wh_registry_open(&mine, NULL) == WH_OK);
  EXPECT(wh_endpoint_add(mine, "child", url, NULL, ep, sizeof ep) == WH_OK);
  wh_registry_free(mine);
  /* Freeing the parent's objects returns at once and breaks nothing. */
  wh_dispatcher_free(d);
  wh_registry_free(f->reg);
  return child_bad ? 1 : 0;
}

/* Forked while the workers are busy (a lock of the store or the registry may
   be held at that moment): the child exits at once, freeing the parent's
   objects as a binding's finalizers would, and never waits for a lock. */
static int in_busy_child(void *arg)
{
  forked *f = arg;
  wh_dispatcher_free(f->d);
  wh_registry_free(f->reg);
  return 0;
}

static void fork_while_busy(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX];
  add_ep(reg, "busy", "/busy", id);
  wh_dispatcher *d = plain_dispatcher(reg, 2);
  CHECK_OK(wh_dispatcher_start(d));
  for (int round = 0; round < 20; round++) {
    for (int i = 0; i < 20; i++)
      CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
    forked f = {.reg = reg, .d = d};
    CHECK_INT(h_fork_run(in_busy_child, &f, 10000), 0);
  }
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  wh_dispatcher_free(d);
  wh_registry_free(reg);
}

static void fork_child(const char *store_name)
{
  char store[512];
  if (store_name)
    sqlite_store(store, sizeof store, store_name);
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store_name ? store : NULL));
  char id[WH_ID_MAX], mid[WH_ID_MAX];
  add_ep(reg, "forked", "/forked", id);
  wh_dispatcher *d = plain_dispatcher(reg, 2);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_RESULT_QUEUE, 10));
  CHECK_OK(wh_dispatcher_start(d));
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), mid, sizeof mid));
  CHECK_OK(wh_dispatcher_drain(d, 5000));
  forked f = {.reg = reg, .d = d, .msg_id = mid, .ep_id = id, .durable = store_name != NULL};
  int rc = h_fork_run(in_child, &f, 20000);
  CHECK_INT(rc, 0); /* -1: it hung (killed), 1: a check failed (see its stderr) */

  /* The parent goes on as if nothing happened: same threads, same store. */
  size_t before = rcv_count(R);
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), mid, sizeof mid));
  CHECK_OK(wh_dispatcher_drain(d, 5000));
  CHECK_INT(rcv_count(R) - before, 1);
  char *json = NULL;
  CHECK_OK(wh_message_get_json(reg, mid, &json));
  CHECK(json && strstr(json, "\"delivered\""));
  wh_free(json);
  CHECK_OK(wh_endpoint_add(reg, "after-fork", "http://127.0.0.1:9/x", NULL, NULL, 0));
  wh_result *r;
  int n = 0;
  while (wh_dispatcher_next_result(d, 0, &r) == WH_OK) {
    n++;
    wh_result_free(r);
  }
  CHECK_INT(n, 2);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
}

/* ---- 5. WH_OPT_PROCESS_DEFAULT -------------------------------------------------------------- */

static void process_default(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX];
  add_ep(reg, "default", "/default", id);
  h_log la, lb;
  h_log_init(&la);
  h_log_init(&lb);
  wh_dispatcher *a = h_dispatcher(reg, &la, NULL), *b = h_dispatcher(reg, &lb, NULL);
  CHECK_ERR(wh_dispatcher_set_int(b, WH_OPT_PROCESS_DEFAULT, 2), WH_EINVAL, "WH_OPT_PROCESS_DEFAULT");
  CHECK_OK(wh_dispatcher_set_int(b, WH_OPT_PROCESS_DEFAULT, 0));
  /* Started alone, b does not become the default. */
  CHECK_OK(wh_dispatcher_start(b));
  CHECK_ERR(wh_emit(h_person_event(NULL, NULL)), WH_ESTATE, "no dispatcher");
  CHECK_OK(wh_dispatcher_start(a));
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK_OK(wh_dispatcher_drain(a, 5000));
  CHECK_OK(wh_dispatcher_drain(b, 5000));
  CHECK_INT(h_count(&la, NULL, WH_DELIVERED), 1);
  CHECK_INT(h_count(&lb, NULL, 0), 0);
  /* Named explicitly, it is. */
  CHECK_OK(wh_dispatcher_set_default(b));
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK_OK(wh_dispatcher_drain(b, 5000));
  CHECK_INT(h_count(&lb, NULL, WH_DELIVERED), 1);
  wh_dispatcher_free(a);
  wh_dispatcher_free(b);
  wh_registry_free(reg);
  h_log_free(&la);
  h_log_free(&lb);
}

/* ---- 6. the result queue ---------------------------------------------------------------------- */

static int readable(int fd, int timeout_ms)
{
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static void queue_basics(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char ok_id[WH_ID_MAX], bad_id[WH_ID_MAX];
  add_ep(reg, "queue-ok", "/queue-ok", ok_id);
  add_ep(reg, "queue-bad", "/queue-bad", bad_id);
  rcv_script_reply(R, "/queue-bad", 500, NULL, "no");

  /* Off by default. */
  wh_dispatcher *d = plain_dispatcher(reg, 2);
  wh_result *r = NULL;
  CHECK_ERR(wh_dispatcher_next_result(d, 0, &r), WH_ESTATE, "WH_OPT_RESULT_QUEUE");
  CHECK_INT(wh_dispatcher_result_fd(d), -1);
  CHECK_ERR(wh_dispatcher_set_int(d, WH_OPT_RESULT_QUEUE, 1000001), WH_EINVAL, "WH_OPT_RESULT_QUEUE");
  CHECK_ERR(wh_dispatcher_set_int(d, WH_OPT_RESULT_QUEUE, -1), WH_EINVAL, "WH_OPT_RESULT_QUEUE");
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_RESULT_QUEUE, 1000));
  int fd = wh_dispatcher_result_fd(d);
  CHECK(fd >= 0);
  CHECK_ERR(wh_dispatcher_next_result(d, 0, NULL), WH_EINVAL, "out");

  /* Timeouts: 0 does not wait, a bound waits about that long. */
  CHECK_OK(wh_dispatcher_start(d));
  int64_t t0 = h_mono_ms();
  CHECK_ERR(wh_dispatcher_next_result(d, 0, &r), WH_ETIMEOUT, NULL);
  CHECK(h_mono_ms() - t0 < 100);
  t0 = h_mono_ms();
  CHECK_ERR(wh_dispatcher_next_result(d, 200, &r), WH_ETIMEOUT, NULL);
  int64_t waited = h_mono_ms() - t0;
  CHECK(waited >= 190 && waited < 2000);
  CHECK(r == NULL);
  CHECK(!readable(fd, 0));

  /* The descriptor becomes readable with the first outcome. */
  char mid[WH_ID_MAX];
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), mid, sizeof mid));
  CHECK(readable(fd, 5000));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  /* After drain: one delivered, one retrying (first attempt), then the
     retries (0.1 s apart) until it fails; drain does not wait for scheduled retries. */
  CHECK(readable(fd, 0));
  int delivered = 0, retrying = 0, failed = 0;
  int64_t end = h_mono_ms() + 5000;
  while (failed == 0 && h_mono_ms() < end) {
    if (wh_dispatcher_next_result(d, 1000, &r) != WH_OK)
      continue;
    CHECK_STR(wh_result_message_id(r), mid);
    if (wh_result_outcome(r) == WH_DELIVERED) {
      delivered++;
      CHECK_STR(wh_result_endpoint_id(r), ok_id);
      CHECK_INT(wh_result_http_status(r), 200);
      CHECK(wh_result_error(r) == NULL);
      CHECK_INT(wh_result_attempt(r), 1);
    } else {
      CHECK_STR(wh_result_endpoint_id(r), bad_id);
      CHECK_INT(wh_result_http_status(r), 500);
      CHECK(wh_result_error(r) && strstr(wh_result_error(r), "500"));
      if (wh_result_outcome(r) == WH_RETRYING) {
        retrying++;
        CHECK(wh_result_next_attempt_ms(r) > 0);
      } else {
        failed++;
        CHECK_INT(wh_result_outcome(r), WH_FAILED);
        CHECK_INT(wh_result_attempt(r), 3);
      }
    }
    wh_result_free(r);
  }
  CHECK_INT(delivered, 1);
  CHECK_INT(retrying, 2);
  CHECK_INT(failed, 1);
  CHECK(!readable(fd, 0)); /* empty again: not readable */

  /* Deliveries failed because their endpoint went away are outcomes too. */
  rcv_script_clear(R, "/queue-bad");
  rcv_spec hold = {.kind = RCV_REPLY, .status = 200, .ms = 3000, .times = 1}; /* removed before it answers */
  rcv_script(R, "/queue-ok", &hold);
  wh_dispatcher_free(d);
  d = plain_dispatcher(reg, 1);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_RESULT_QUEUE, 1000));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_MAX_PER_ENDPOINT, 1));
  CHECK_OK(wh_endpoint_remove(reg, bad_id));
  CHECK_OK(wh_dispatcher_start(d));
  size_t before = rcv_count(R);
  for (int i = 0; i < 3; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK(rcv_wait_count(R, before + 1, 5000));
  CHECK_OK(wh_endpoint_remove(reg, ok_id));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  int removed = 0, ok = 0;
  while (wh_dispatcher_next_result(d, 0, &r) == WH_OK) {
    if (wh_result_outcome(r) == WH_FAILED && wh_result_error(r) && strstr(wh_result_error(r), "removed"))
      removed++;
    ok += wh_result_outcome(r) == WH_DELIVERED;
    wh_result_free(r);
  }
  CHECK_INT(ok, 1);
  CHECK_INT(removed, 2);

  /* After stop: what is left, then WH_ESTATE. A result outlives its dispatcher. */
  char id[WH_ID_MAX];
  add_ep(reg, "queue-late", "/queue-late", id);
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), mid, sizeof mid));
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK_OK(wh_dispatcher_drain(d, 5000));
  CHECK_OK(wh_dispatcher_stop(d, 1000));
  wh_result *kept = NULL;
  CHECK_OK(wh_dispatcher_next_result(d, 0, &kept));
  CHECK_OK(wh_dispatcher_next_result(d, -1, &r));
  wh_result_free(r);
  CHECK_ERR(wh_dispatcher_next_result(d, -1, &r), WH_ESTATE, "stopped");
  CHECK_ERR(wh_dispatcher_next_result(d, 100, &r), WH_ESTATE, NULL);
  wh_dispatcher_free(d);
  CHECK_STR(wh_result_message_id(kept), mid);
  CHECK_STR(wh_result_endpoint_id(kept), id);
  wh_result_free(kept);
  wh_result_free(NULL);
  wh_registry_free(reg);
}

/* Full: the oldest outcomes make room and are counted; the newest are kept. */
static void queue_overflow(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX];
  add_ep(reg, "overflow", "/overflow", id);
  wh_dispatcher *d = plain_dispatcher(reg, 1);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_RESULT_QUEUE, 5));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_MAX_PER_ENDPOINT, 1)); /* outcomes in emit order */
  CHECK_OK(wh_dispatcher_start(d));
  char ids[20][WH_ID_MAX];
  for (int i = 0; i < 20; i++) {
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), ids[i], WH_ID_MAX));
    CHECK_OK(wh_dispatcher_drain(d, 5000));
  }
  int fd = wh_dispatcher_result_fd(d);
  CHECK(readable(fd, 0));
  wh_result *r;
  for (int i = 15; i < 20; i++) {
    CHECK_OK(wh_dispatcher_next_result(d, 0, &r));
    CHECK_STR(wh_result_message_id(r), ids[i]);
    wh_result_free(r);
  }
  CHECK_ERR(wh_dispatcher_next_result(d, 0, &r), WH_ETIMEOUT, NULL);
  CHECK(!readable(fd, 0));
  /* The count is "results_dropped" in the stats (another part of 1.1);
     test_hooks checks the counter itself. */
  wh_dispatcher_free(d);
  wh_registry_free(reg);
}

/* Many consumers: every outcome is taken exactly once. */
typedef struct {
  wh_dispatcher *d;
  atomic_int *taken;
  char (*seen)[WH_ID_MAX];
  pthread_mutex_t *mu;
  int total;
} taker;

static void *take_loop(void *arg)
{
  taker *t = arg;
  while (atomic_load(t->taken) < t->total) {
    wh_result *r;
    if (wh_dispatcher_next_result(t->d, 100, &r) != WH_OK)
      continue;
    int k = atomic_fetch_add(t->taken, 1);
    if (k < t->total)
      snprintf(t->seen[k], WH_ID_MAX, "%s", wh_result_message_id(r));
    wh_result_free(r);
  }
  return NULL;
}

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

static void queue_many_consumers(void)
{
  enum { N = 400, TAKERS = 4 };
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX];
  add_ep(reg, "many", "/many", id);
  wh_dispatcher *d = plain_dispatcher(reg, 2);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_RESULT_QUEUE, N));
  CHECK_OK(wh_dispatcher_start(d));
  atomic_int taken = 0;
  char(*seen)[WH_ID_MAX] = calloc(N, WH_ID_MAX);
  taker t = {.d = d, .taken = &taken, .seen = seen, .total = N};
  pthread_t th[TAKERS];
  for (int i = 0; i < TAKERS; i++)
    pthread_create(&th[i], NULL, take_loop, &t);
  for (int i = 0; i < N; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK_OK(wh_dispatcher_drain(d, 20000));
  int64_t end = h_mono_ms() + 10000;
  while (atomic_load(&taken) < N && h_mono_ms() < end)
    h_sleep_ms(10);
  atomic_store(&taken, N + 1000); /* let the takers go, whatever happened */
  for (int i = 0; i < TAKERS; i++)
    pthread_join(th[i], NULL);
  qsort(seen, N, WH_ID_MAX, cmp_id);
  int dup = 0, empty = 0;
  for (int i = 0; i < N; i++) {
    empty += seen[i][0] == '\0';
    dup += i > 0 && seen[i][0] && strcmp(seen[i], seen[i - 1]) == 0;
  }
  CHECK_INT(empty, 0);
  CHECK_INT(dup, 0);
  wh_result *r;
  CHECK_ERR(wh_dispatcher_next_result(d, 0, &r), WH_ETIMEOUT, NULL);
  free(seen);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
}

/* drain's guarantee holds for the queue: when drain returns, the outcomes of
   the attempts it waited for are in the queue. */
static void queue_after_drain(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char a[WH_ID_MAX], b[WH_ID_MAX];
  add_ep(reg, "after-drain-a", "/after-drain-a", a);
  add_ep(reg, "after-drain-b", "/after-drain-b", b);
  wh_dispatcher *d = plain_dispatcher(reg, 4);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_RESULT_QUEUE, 10000));
  CHECK_OK(wh_dispatcher_start(d));
  for (int round = 0; round < 20; round++) {
    for (int i = 0; i < 10; i++)
      CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
    CHECK_OK(wh_dispatcher_drain(d, 10000));
    int n = 0;
    wh_result *r;
    while (wh_dispatcher_next_result(d, 0, &r) == WH_OK) {
      n++;
      wh_result_free(r);
    }
    CHECK_INT(n, 20);
  }
  wh_dispatcher_free(d);
  wh_registry_free(reg);
}

/* ---- 7. emit_batch ------------------------------------------------------------------------------ */

static wh_event *poison_event(void)
{
  wh_event *ev = NULL;
  wh_event_new(&ev, "people", "CREATE");
  wh_event_set_resource_json(ev, "{\"poison\":true}");
  return ev;
}

static long sqlite_count(const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  long n = -1;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

static void sqlite_exec(const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  char *err = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK || sqlite3_busy_timeout(db, 10000) ||
      sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
    fprintf(stderr, "sqlite: %s: %s\n", sql, err ? err : sqlite3_errmsg(db));
  sqlite3_free(err);
  sqlite3_close(db);
}

static void emit_batch(const char *store_name)
{
  char store[512];
  if (store_name)
    sqlite_store(store, sizeof store, store_name);
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store_name ? store : NULL));
  char id[WH_ID_MAX], id2[WH_ID_MAX];
  char path[64];
  snprintf(path, sizeof path, "/batch-%s", store_name ? store_name : "memory");
  add_ep(reg, "batch", path, id);
  add_ep(reg, "batch-people-only", "/batch-2", id2);
  CHECK_OK(wh_endpoint_subscribe(reg, id2, "people.*"));
  wh_dispatcher *d = plain_dispatcher(reg, 2);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_RESULT_QUEUE, 1000));
  wh_event *evs[10];
  for (int i = 0; i < 10; i++)
    evs[i] = h_person_event(i % 2 ? "people" : "orders", "CREATE");
  CHECK_ERR(wh_dispatcher_emit_batch(d, evs, 10, NULL, 0), WH_ESTATE, "not started");
  CHECK_OK(wh_dispatcher_start(d));

  /* Ids, one WH_ID_MAX slot each, in order; every event delivered. */
  for (int i = 0; i < 10; i++)
    evs[i] = h_person_event(i % 2 ? "people" : "orders", "CREATE");
  char ids[10 * WH_ID_MAX];
  memset(ids, 'x', sizeof ids);
  size_t before = rcv_count(R);
  CHECK_OK(wh_dispatcher_emit_batch(d, evs, 10, ids, sizeof ids));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_INT(rcv_count(R) - before, 15); /* 10 to one endpoint, 5 people to the other */
  for (int i = 0; i < 10; i++) {
    const char *mid = ids + i * WH_ID_MAX;
    CHECK(strncmp(mid, "msg_", 4) == 0 && strlen(mid) < WH_ID_MAX);
    CHECK(rcv_find_header(R, "webhook-id", mid) != NULL);
    CHECK(i == 0 || strcmp(mid, ids + (i - 1) * WH_ID_MAX) != 0);
    char *json = NULL;
    CHECK_OK(wh_message_get_json(reg, mid, &json));
    CHECK(json && strstr(json, i % 2 ? "people.CREATE" : "orders.CREATE"));
    wh_free(json);
  }
  wh_result *r;
  int outcomes = 0;
  while (wh_dispatcher_next_result(d, 0, &r) == WH_OK) {
    outcomes++;
    wh_result_free(r);
  }
  CHECK_INT(outcomes, 15);

  /* Refused whole, every event taken (ASan would see a leak): ids too short,
     a NULL entry, one event too big. Nothing is sent. */
  before = rcv_count(R);
  for (int i = 0; i < 3; i++)
    evs[i] = h_person_event(NULL, NULL);
  CHECK_ERR(wh_dispatcher_emit_batch(d, evs, 3, ids, 3 * WH_ID_MAX - 1), WH_ERANGE, "WH_ID_MAX");
  evs[0] = h_person_event(NULL, NULL);
  evs[1] = NULL;
  evs[2] = h_person_event(NULL, NULL);
  CHECK_ERR(wh_dispatcher_emit_batch(d, evs, 3, NULL, 0), WH_EINVAL, "event 1 of 3 is NULL");
  CHECK_ERR(wh_dispatcher_emit_batch(d, NULL, 3, NULL, 0), WH_EINVAL, "NULL");
  CHECK_OK(wh_dispatcher_emit_batch(d, NULL, 0, NULL, 0));
  wh_dispatcher_free(d);
  d = plain_dispatcher(reg, 2);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_MAX_BODY_BYTES, 1000));
  CHECK_OK(wh_dispatcher_start(d));
  evs[0] = h_person_event(NULL, NULL);
  wh_event_new(&evs[1], "people", "CREATE");
  char big[2000];
  snprintf(big, sizeof big, "{\"x\":\"%01500d\"}", 0);
  wh_event_set_resource_json(evs[1], big);
  evs[2] = h_person_event(NULL, NULL);
  CHECK_ERR(wh_dispatcher_emit_batch(d, evs, 3, NULL, 0), WH_EINVAL, "WH_OPT_MAX_BODY_BYTES");
  CHECK_OK(wh_dispatcher_drain(d, 5000));
  CHECK_INT(rcv_count(R) - before, 0);

  if (store_name) {
    /* The store fails on the third of four: nothing of the batch is kept. */
    const char *file = store + 7;
    sqlite_exec(file, "CREATE TRIGGER poison BEFORE INSERT ON wh_message WHEN CAST(NEW.body AS TEXT) LIKE '%poison%'"
                      " BEGIN SELECT RAISE(ABORT, 'poisoned'); END");
    long msgs = sqlite_count(file, "SELECT count(*) FROM wh_message");
    long dlvs = sqlite_count(file, "SELECT count(*) FROM wh_delivery");
    CHECK(msgs > 0 && dlvs > 0);
    evs[0] = h_person_event(NULL, NULL);
    evs[1] = h_person_event(NULL, NULL);
    evs[2] = poison_event();
    evs[3] = h_person_event(NULL, NULL);
    CHECK_ERR(wh_dispatcher_emit_batch(d, evs, 4, ids, sizeof ids), WH_ESTORE, "poisoned");
    CHECK_INT(sqlite_count(file, "SELECT count(*) FROM wh_message"), msgs);
    CHECK_INT(sqlite_count(file, "SELECT count(*) FROM wh_delivery"), dlvs);
    /* One emit alone that fails leaves nothing either. */
    CHECK_ERR(wh_dispatcher_emit(d, poison_event(), NULL, 0), WH_ESTORE, "poisoned");
    CHECK_INT(sqlite_count(file, "SELECT count(*) FROM wh_message"), msgs);
    CHECK_OK(wh_dispatcher_drain(d, 5000));
    CHECK_INT(rcv_count(R) - before, 0);
    sqlite_exec(file, "DROP TRIGGER poison");
  } else {
    /* The memory store's queue limit is checked for the whole batch. Deliveries
       stay pending at an endpoint that never answers. */
    wh_dispatcher_free(d);
    d = plain_dispatcher(reg, 1);
    rcv_blackhole *hole;
    CHECK(rcv_blackhole_start(&hole, 0) == 0);
    char url[128];
    rcv_blackhole_url(hole, "/", url, sizeof url);
    CHECK_OK(wh_endpoint_set_url(reg, id, url));
    CHECK_OK(wh_endpoint_set_url(reg, id2, url));
    CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_QUEUE_LIMIT, 10));
    CHECK_OK(wh_dispatcher_start(d));
    for (int i = 0; i < 4; i++)
      evs[i] = h_person_event(NULL, NULL); /* 2 deliveries each */
    CHECK_OK(wh_dispatcher_emit_batch(d, evs, 4, NULL, 0)); /* 8 pending */
    for (int i = 0; i < 2; i++)
      evs[i] = h_person_event(NULL, NULL);
    CHECK_ERR(wh_dispatcher_emit_batch(d, evs, 2, NULL, 0), WH_EFULL, "queue limit"); /* 12 > 10: none */
    evs[0] = h_person_event(NULL, NULL);
    CHECK_OK(wh_dispatcher_emit_batch(d, evs, 1, NULL, 0)); /* 10 */
    CHECK_ERR(wh_dispatcher_emit(d, h_person_event("orders", "X"), NULL, 0), WH_EFULL, NULL);
    wh_dispatcher_stop(d, 0); /* gives the hanging requests up */
    rcv_blackhole_free(hole);
  }
  wh_dispatcher_free(d);
  wh_registry_free(reg);
}

int main(void)
{
  if (!mkdtemp(dir) || rcv_start(&R, 0) != 0) {
    fprintf(stderr, "cannot set up\n");
    return 1;
  }
  drain_waits_for_callbacks();
  swap_under_load();
  detach_from_inside(0);
  detach_from_inside(1);
  log_registration();
  free_orders(NULL);
  free_orders("free-order");
  stop_wakes_consumer();
  fork_child(NULL);
  fork_child("fork");
  fork_while_busy();
  process_default();
  queue_basics();
  queue_overflow();
  queue_many_consumers();
  queue_after_drain();
  emit_batch(NULL);
  emit_batch("batch");
  rcv_free(R);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return check_done("lifecycle");
}
