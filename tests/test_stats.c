/* Seeing what happens (API-1.1 section 4): the stats JSON (totals and one
   endpoint), exact under concurrency; the Prometheus text, checked by
   promtool and against the stats. A mixed run on a real loopback receiver:
   several threads emitting, endpoints that succeed, fail, answer 503 then
   succeed, one removed and one disabled while work for them waits. */
#include <webhook/webhook.h>

#include "receiver.h"
#include "support/check.h"
#include "support/harness.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

static rcv *R;

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static cJSON *stats(wh_dispatcher *d)
{
  char *s = NULL;
  CHECK_OK(wh_dispatcher_stats_json(d, &s));
  cJSON *j = s ? cJSON_Parse(s) : NULL;
  CHECK(j != NULL);
  wh_free(s);
  return j;
}

static cJSON *ep_stats(wh_dispatcher *d, const char *id)
{
  char *s = NULL;
  CHECK_OK(wh_dispatcher_endpoint_stats_json(d, id, &s));
  cJSON *j = s ? cJSON_Parse(s) : NULL;
  CHECK(j != NULL);
  wh_free(s);
  return j;
}

static long long num(const cJSON *o, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  CHECK(cJSON_IsNumber(v));
  return cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
}

static const char *str(const cJSON *o, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The object has exactly these keys, in this order. */
static void keys_are(const cJSON *o, const char *const *keys, size_t n)
{
  size_t i = 0;
  for (const cJSON *it = o ? o->child : NULL; it; it = it->next, i++) {
    CHECK(i < n);
    if (i < n)
      CHECK_STR(it->string, keys[i]);
  }
  CHECK_INT(i, n);
}

static const char *const TOTAL_KEYS[] = {"emitted",   "delivered",         "failed",           "retrying",
                                         "attempts",  "in_flight",         "due",              "scheduled",
                                         "results_dropped", "endpoints_enabled", "endpoints_disabled",
                                         "breakers_open"};
static const char *const EP_KEYS[] = {"endpoint_id", "tenant_id", "enabled",  "disabled_reason", "in_flight",
                                      "window",      "breaker",   "due",      "scheduled",       "delivered",
                                      "failed",      "last_http_status", "last_error", "last_attempt_at",
                                      "latency_ms"};

/* A number without a CHECK (CHECK's counters belong to the main thread). */
static long long raw(const cJSON *o, const char *key)
{
  return (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* emitted = delivered + failed + pending, pending = in_flight + due + scheduled. */
static long long unaccounted(const cJSON *t)
{
  return raw(t, "emitted") - raw(t, "delivered") - raw(t, "failed") - raw(t, "in_flight") - raw(t, "due") -
         raw(t, "scheduled");
}

/* ---- the shape, errors, an endpoint not seen yet ----------------------------------------- */

static void shape_and_errors(void)
{
  wh_registry *reg, *acme;
  CHECK_OK(wh_registry_open(&reg, NULL));
  CHECK_OK(wh_registry_open_tenant(&acme, reg, "acme"));
  char url[256], id[WH_ID_MAX], off[WH_ID_MAX];
  rcv_url(R, "/shape", url, sizeof url);
  CHECK_OK(wh_endpoint_add(acme, "acme crm", url, NULL, id, sizeof id));
  CHECK_OK(wh_endpoint_add(reg, "platform off", url, NULL, off, sizeof off));
  CHECK_OK(wh_endpoint_set_enabled(reg, off, 0));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);

  /* Before start: zeros, and the registry's endpoints. */
  cJSON *t = stats(d);
  keys_are(t, TOTAL_KEYS, COUNT(TOTAL_KEYS));
  CHECK_INT(num(t, "emitted"), 0);
  CHECK_INT(num(t, "endpoints_enabled"), 1);
  CHECK_INT(num(t, "endpoints_disabled"), 1);
  cJSON_Delete(t);

  /* An endpoint the dispatcher has not seen: zeros, enabled and tenant from the registry. */
  cJSON *e = ep_stats(d, id);
  keys_are(e, EP_KEYS, COUNT(EP_KEYS));
  CHECK_STR(str(e, "endpoint_id"), id);
  CHECK_STR(str(e, "tenant_id"), "acme");
  CHECK(cJSON_IsTrue(cJSON_GetObjectItem(e, "enabled")));
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(e, "disabled_reason")));
  CHECK_STR(str(e, "breaker"), "closed");
  CHECK_INT(num(e, "in_flight") + num(e, "due") + num(e, "scheduled") + num(e, "delivered") + num(e, "failed"), 0);
  CHECK_INT(num(e, "last_http_status"), 0);
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(e, "last_error")));
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(e, "last_attempt_at")));
  cJSON *lat = cJSON_GetObjectItem(e, "latency_ms");
  const char *const lat_keys[] = {"p50", "p99"};
  keys_are(lat, lat_keys, 2);
  CHECK_INT(num(lat, "p50") + num(lat, "p99"), 0);
  cJSON_Delete(e);
  e = ep_stats(d, off);
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(e, "tenant_id")));
  CHECK(cJSON_IsFalse(cJSON_GetObjectItem(e, "enabled")));
  cJSON_Delete(e);

  char *s = (char *)"untouched";
  CHECK_ERR(wh_dispatcher_endpoint_stats_json(d, "ep_nosuchendpoint", &s), WH_ENOTFOUND, "ep_nosuchendpoint");
  CHECK(s == NULL);
  CHECK_ERR(wh_dispatcher_stats_json(NULL, &s), WH_EINVAL, "dispatcher");
  CHECK_ERR(wh_dispatcher_stats_json(d, NULL), WH_EINVAL, "json_out");
  CHECK_ERR(wh_dispatcher_endpoint_stats_json(d, NULL, &s), WH_EINVAL, "endpoint_id");
  CHECK_ERR(wh_dispatcher_endpoint_stats_json(d, id, NULL), WH_EINVAL, "json_out");
  CHECK_ERR(wh_dispatcher_metrics_text(NULL, &s), WH_EINVAL, "dispatcher");
  CHECK_ERR(wh_dispatcher_metrics_text(d, NULL), WH_EINVAL, "text_out");

  /* After a delivery: its figures. The receiver waits 30 ms before answering. */
  rcv_spec slow = {.kind = RCV_REPLY, .status = 200, .ms = 30};
  rcv_script(R, "/shape", &slow);
  CHECK_OK(wh_dispatcher_start(d));
  for (int i = 0; i < 3; i++) {
    wh_event *ev = h_person_event(NULL, NULL);
    wh_event_set_tenant_id(ev, "acme");
    CHECK_OK(wh_dispatcher_emit(d, ev, NULL, 0));
  }
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  e = ep_stats(d, id);
  CHECK_INT(num(e, "delivered"), 3);
  CHECK_INT(num(e, "last_http_status"), 200);
  CHECK(str(e, "last_attempt_at") != NULL && strlen(str(e, "last_attempt_at")) == 24);
  lat = cJSON_GetObjectItem(e, "latency_ms");
  CHECK(num(lat, "p50") >= 30 && num(lat, "p50") < 5000);
  CHECK(num(lat, "p99") >= num(lat, "p50"));
  CHECK(num(e, "window") >= 2);
  cJSON_Delete(e);
  wh_dispatcher_free(d);
  wh_registry_free(acme);
  wh_registry_free(reg);
  h_log_free(&log);
}

/* ---- the mixed run ---------------------------------------------------------------------- */

enum { EMITTERS = 4, EVENTS_PER_EMITTER = 150 };

typedef struct {
  wh_dispatcher *d;
  atomic_int *stop;
  int durable; /* work may wait on disk: the snapshot may count less, never more */
  long snapshots, bad;
  long long worst;
} watcher;

/* Reads the stats (and the metrics, and one endpoint's) while the run goes on:
   every snapshot must add up, not only the last one. */
static void *watch(void *arg)
{
  watcher *w = arg;
  while (!atomic_load(w->stop)) {
    char *s = NULL, *m = NULL;
    if (wh_dispatcher_stats_json(w->d, &s) == WH_OK) {
      cJSON *t = cJSON_Parse(s);
      long long u = unaccounted(t);
      if (w->durable ? u < 0 : u != 0) {
        w->bad++;
        if (llabs(u) > llabs(w->worst))
          w->worst = u;
      }
      w->snapshots++;
      cJSON_Delete(t);
    }
    wh_free(s);
    if (wh_dispatcher_metrics_text(w->d, &m) == WH_OK)
      wh_free(m);
    usleep(500);
  }
  return NULL;
}

typedef struct {
  wh_dispatcher *d;
  int n;
  atomic_int failed;
} emitter;

static void *emit_loop(void *arg)
{
  emitter *e = arg;
  for (int i = 0; i < e->n; i++) {
    if (wh_dispatcher_emit(e->d, h_person_event(NULL, NULL), NULL, 0) != WH_OK)
      atomic_fetch_add(&e->failed, 1);
    if (i % 25 == 0)
      usleep(2000); /* spread the emits over the run, so removal and disabling fall in the middle */
  }
  return NULL;
}

static int by_delivery(const void *a, const void *b)
{
  const h_result *x = a, *y = b;
  int c = strcmp(x->msg, y->msg);
  if (!c)
    c = strcmp(x->ep, y->ep);
  return c ? c : x->attempt - y->attempt;
}

/* The attempts the results show: for each delivery, the number of its last one. */
static long long attempts_in_results(h_log *log)
{
  pthread_mutex_lock(&log->mu);
  h_result *v = malloc(log->n * sizeof *v);
  memcpy(v, log->v, log->n * sizeof *v);
  size_t n = log->n;
  pthread_mutex_unlock(&log->mu);
  qsort(v, n, sizeof *v, by_delivery);
  long long total = 0;
  for (size_t i = 0; i < n; i++)
    if (i + 1 == n || strcmp(v[i].msg, v[i + 1].msg) != 0 || strcmp(v[i].ep, v[i + 1].ep) != 0)
      total += v[i].attempt;
  free(v);
  return total;
}

static void mixed_run(const char *store)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  enum { OK, FAIL, FLAKY, GONE, OFF, ORD, N };
  const char *paths[N] = {"/mix-ok", "/mix-fail", "/mix-flaky", "/mix-gone", "/mix-off", "/mix-ord"};
  char ids[N][WH_ID_MAX];
  for (int i = 0; i < N; i++) {
    char url[256];
    rcv_script_clear(R, paths[i]);
    CHECK_OK(wh_endpoint_add(reg, paths[i] + 1, rcv_url(R, paths[i], url, sizeof url), NULL, ids[i], WH_ID_MAX));
  }
  rcv_script_reply(R, "/mix-ok", 200, NULL, "ok");
  /* Ordered: one resource's deliveries one at a time, waiting their turn in the store. */
  CHECK_OK(wh_endpoint_set_int(reg, ids[ORD], WH_EP_ORDERED, 1));
  rcv_script_reply(R, "/mix-fail", 500, NULL, "no");
  rcv_spec busy = {.kind = RCV_REPLY, .status = 503, .times = 5};
  rcv_script(R, "/mix-flaky", &busy);
  rcv_script_reply(R, "/mix-flaky", 200, NULL, NULL);
  /* Slow ones: work for them is still waiting when they are removed or disabled. */
  rcv_spec slow = {.kind = RCV_REPLY, .status = 200, .ms = 40};
  rcv_script(R, "/mix-gone", &slow);
  rcv_script(R, "/mix-off", &slow);

  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, "0.05,0.05,0.05");
  wh_dispatcher_set_int(d, WH_OPT_WORKERS, 3);
  wh_dispatcher_set_int(d, WH_OPT_MAX_PER_ENDPOINT, 4);
  /* No breaker here (see breaker()): every failing attempt is made at once. */
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_FAILURE_PCT, 0);
  CHECK_OK(wh_dispatcher_start(d));

  atomic_int stop = 0;
  watcher w = {.d = d, .stop = &stop, .durable = store != NULL};
  pthread_t wt, et[EMITTERS];
  pthread_create(&wt, NULL, watch, &w);
  emitter em = {.d = d, .n = EVENTS_PER_EMITTER};
  for (int i = 0; i < EMITTERS; i++)
    pthread_create(&et[i], NULL, emit_loop, &em);
  /* Mid-way: one endpoint removed, one disabled, while work for them waits. */
  CHECK(h_wait(&log, ids[GONE], WH_DELIVERED, 5, 20000));
  CHECK_OK(wh_endpoint_remove(reg, ids[GONE]));
  CHECK(h_wait(&log, ids[OFF], WH_DELIVERED, 8, 20000));
  CHECK_OK(wh_endpoint_set_enabled(reg, ids[OFF], 0));
  for (int i = 0; i < EMITTERS; i++)
    pthread_join(et[i], NULL);
  CHECK_INT(atomic_load(&em.failed), 0);
  /* Drain, and wait for the retries to end: everything emitted has ended. */
  cJSON *t = NULL;
  for (int round = 0; round < 200; round++) {
    CHECK_OK(wh_dispatcher_drain(d, 20000));
    cJSON_Delete(t);
    t = stats(d);
    if (num(t, "in_flight") + num(t, "due") + num(t, "scheduled") == 0)
      break;
    h_sleep_ms(50);
  }
  atomic_store(&stop, 1);
  pthread_join(wt, NULL);
  printf("%s: %ld snapshots during the run, %ld did not add up (worst %lld)\n", store ? store : "memory:",
         w.snapshots, w.bad, w.worst);
  CHECK(w.snapshots > 10);
  CHECK_INT(w.bad, 0);

  long long emitted = num(t, "emitted");
  size_t n_results = h_count(&log, NULL, 0);
  CHECK(emitted > EMITTERS * EVENTS_PER_EMITTER * 3);
  CHECK_INT(num(t, "in_flight") + num(t, "due") + num(t, "scheduled"), 0);
  CHECK_INT(unaccounted(t), 0);
  CHECK_INT(num(t, "delivered"), h_count(&log, NULL, WH_DELIVERED));
  CHECK_INT(num(t, "failed"), h_count(&log, NULL, WH_FAILED));
  CHECK_INT(num(t, "retrying"), h_count(&log, NULL, WH_RETRYING));
  CHECK_INT(num(t, "attempts"), attempts_in_results(&log));
  CHECK_INT(num(t, "endpoints_enabled"), 4);
  CHECK_INT(num(t, "endpoints_disabled"), 1);
  CHECK_INT(num(t, "results_dropped"), 0);
  CHECK(n_results > (size_t)emitted);

  /* Per endpoint: as the results say, and adding up to the totals with the
     removed endpoint's (which only the results still know). */
  long long sum_delivered = 0, sum_failed = 0;
  for (int i = 0; i < N; i++) {
    if (i == GONE) {
      char *s = NULL;
      CHECK_ERR(wh_dispatcher_endpoint_stats_json(d, ids[i], &s), WH_ENOTFOUND, NULL);
      sum_delivered += (long long)h_count(&log, ids[i], WH_DELIVERED);
      sum_failed += (long long)h_count(&log, ids[i], WH_FAILED);
      continue;
    }
    cJSON *e = ep_stats(d, ids[i]);
    CHECK_INT(num(e, "delivered"), h_count(&log, ids[i], WH_DELIVERED));
    CHECK_INT(num(e, "failed"), h_count(&log, ids[i], WH_FAILED));
    CHECK_INT(num(e, "in_flight") + num(e, "due") + num(e, "scheduled"), 0);
    sum_delivered += num(e, "delivered");
    sum_failed += num(e, "failed");
    if (i == FAIL) {
      CHECK_INT(num(e, "delivered"), 0);
      CHECK_INT(num(e, "last_http_status"), 500);
      CHECK_STR(str(e, "last_error"), "HTTP 500");
    }
    if (i == FLAKY) {
      CHECK_INT(num(e, "failed"), 0);
      CHECK_INT(num(e, "last_http_status"), 200);
      CHECK(cJSON_IsNull(cJSON_GetObjectItem(e, "last_error")));
    }
    if (i == OFF) {
      CHECK(cJSON_IsFalse(cJSON_GetObjectItem(e, "enabled")));
      CHECK(num(e, "failed") > 0); /* what waited for it when it was disabled */
    }
    cJSON_Delete(e);
  }
  CHECK(h_count(&log, ids[GONE], WH_FAILED) > 0); /* what waited for it when it was removed */
  CHECK_INT(sum_delivered, num(t, "delivered"));
  CHECK_INT(sum_failed, num(t, "failed"));
  cJSON_Delete(t);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

/* ---- the breaker ------------------------------------------------------------------------- */

static void breaker(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char url[256], id[WH_ID_MAX];
  rcv_script_clear(R, "/brk");
  rcv_script_reply(R, "/brk", 500, NULL, NULL);
  CHECK_OK(wh_endpoint_add(reg, "brk", rcv_url(R, "/brk", url, sizeof url), NULL, id, sizeof id));
  h_log log;
  h_log_init(&log);
  /* Retries 2 s apart: the first failures of a round all come back before any
     retry is sent (with 0.05 s, on a slow machine a retry could be the fifth
     request below, meet the 410 and disable the endpoint before the breaker
     had opened). The breaker holds them back longer anyway. */
  wh_dispatcher *d = h_dispatcher(reg, &log, "2,2,2,2,2,2,2,2");
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_MIN_REQUESTS, 4);
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_FAILURE_PCT, 50);
  /* A cooldown long enough that the checks below see the breaker open,
     however slow the machine. */
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_COOLDOWN_MS, 5000);
  CHECK_OK(wh_dispatcher_start(d));
  for (int i = 0; i < 4; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK(h_wait(&log, id, WH_RETRYING, 4, 10000));
  CHECK_OK(wh_dispatcher_drain(d, 10000)); /* the last outcome settled; the breaker holds the rest back */
  cJSON *e = ep_stats(d, id), *t = stats(d);
  CHECK_STR(str(e, "breaker"), "open");
  CHECK_INT(num(t, "breakers_open"), 1);
  CHECK_INT(num(e, "in_flight"), 0);
  CHECK_INT(num(e, "due") + num(e, "scheduled"), 4); /* waiting for the breaker or their retry */
  CHECK_INT(unaccounted(t), 0);
  cJSON_Delete(e);
  cJSON_Delete(t);
  /* The endpoint comes back: past the cooldown a probe succeeds, the breaker closes. */
  rcv_script_clear(R, "/brk");
  CHECK(h_wait(&log, id, WH_DELIVERED, 4, 15000));
  e = ep_stats(d, id);
  t = stats(d);
  CHECK_STR(str(e, "breaker"), "closed");
  CHECK_INT(num(t, "breakers_open"), 0);
  CHECK_INT(num(e, "delivered"), 4);
  cJSON_Delete(e);
  cJSON_Delete(t);

  /* Open again, and then the endpoint is disabled (its probe meets a 410):
     a disabled endpoint's breaker no longer counts as open. */
  rcv_spec fail4 = {.kind = RCV_REPLY, .status = 500, .times = 4};
  rcv_script(R, "/brk", &fail4);
  rcv_script_reply(R, "/brk", 410, NULL, NULL);
  for (int i = 0; i < 4; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK(h_wait(&log, id, WH_RETRYING, 8, 10000));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  t = stats(d);
  CHECK_INT(num(t, "breakers_open"), 1);
  cJSON_Delete(t);
  CHECK(h_wait(&log, id, WH_FAILED, 4, 15000));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  e = ep_stats(d, id);
  t = stats(d);
  CHECK(cJSON_IsFalse(cJSON_GetObjectItem(e, "enabled")));
  CHECK_STR(str(e, "disabled_reason"), "410 Gone");
  CHECK_STR(str(e, "breaker"), "closed");
  CHECK_INT(num(t, "breakers_open"), 0);
  CHECK_INT(num(t, "endpoints_disabled"), 1);
  cJSON_Delete(e);
  cJSON_Delete(t);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

/* ---- Prometheus ---------------------------------------------------------------------------- */

/* The value of the sample `name` (with its labels, as written), or -1. */
static double sample(const char *text, const char *name)
{
  size_t n = strlen(name);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, name, n) == 0 && p[n] == ' ')
      return strtod(p + n + 1, NULL);
  return -1;
}

static void check_with_promtool(const char *text)
{
  if (!*WH_PROMTOOL) {
    fprintf(stderr, "promtool not found: install Debian's prometheus package (scripts/deps.sh)\n");
    CHECK(0);
    return;
  }
  char file[64], cmd[512];
  snprintf(file, sizeof file, "/tmp/wh-test-metrics-%d.txt", (int)getpid());
  FILE *f = fopen(file, "w");
  CHECK(f != NULL);
  if (!f)
    return;
  fputs(text, f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "'%s' check metrics < %s", WH_PROMTOOL, file);
  int rc = system(cmd);
  if (rc != 0)
    fprintf(stderr, "promtool check metrics failed on:\n%s\n", text);
  CHECK_INT(rc, 0);
  unlink(file);
}

static void metrics(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char url[256], ok[WH_ID_MAX], bad[WH_ID_MAX], off[WH_ID_MAX];
  rcv_script_clear(R, "/m-ok");
  rcv_script_clear(R, "/m-bad");
  rcv_spec slow = {.kind = RCV_REPLY, .status = 204, .ms = 20};
  rcv_script(R, "/m-ok", &slow);
  rcv_script_reply(R, "/m-bad", 404, NULL, NULL);
  CHECK_OK(wh_endpoint_add(reg, "m ok", rcv_url(R, "/m-ok", url, sizeof url), NULL, ok, sizeof ok));
  CHECK_OK(wh_endpoint_add(reg, "m bad", rcv_url(R, "/m-bad", url, sizeof url), NULL, bad, sizeof bad));
  CHECK_OK(wh_endpoint_add(reg, "m off", rcv_url(R, "/m-ok", url, sizeof url), NULL, off, sizeof off));
  CHECK_OK(wh_endpoint_set_enabled(reg, off, 0));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, "0.02");
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_FAILURE_PCT, 0);
  char *text = NULL;
  CHECK_OK(wh_dispatcher_metrics_text(d, &text)); /* before start: valid too */
  if (text)
    check_with_promtool(text);
  wh_free(text);
  CHECK_OK(wh_dispatcher_start(d));
  for (int i = 0; i < 20; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK(h_wait(&log, bad, WH_FAILED, 20, 20000));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  text = NULL;
  CHECK_OK(wh_dispatcher_metrics_text(d, &text));
  cJSON *t = stats(d);
  CHECK(text != NULL);
  if (text) {
    check_with_promtool(text);
    /* Nothing that grows with endpoints or tenants: no endpoint id in it. */
    CHECK(strstr(text, ok) == NULL && strstr(text, bad) == NULL);
    CHECK(strstr(text, "endpoint_id") == NULL && strstr(text, "tenant") == NULL);
    CHECK_INT(sample(text, "webhook_deliveries_emitted_total"), num(t, "emitted"));
    CHECK_INT(sample(text, "webhook_deliveries_finished_total{outcome=\"delivered\"}"), num(t, "delivered"));
    CHECK_INT(sample(text, "webhook_deliveries_finished_total{outcome=\"failed\"}"), num(t, "failed"));
    CHECK_INT(sample(text, "webhook_attempts_total{outcome=\"retrying\"}"), num(t, "retrying"));
    CHECK_INT(sample(text, "webhook_attempts_total{outcome=\"delivered\"}") +
                  sample(text, "webhook_attempts_total{outcome=\"retrying\"}") +
                  sample(text, "webhook_attempts_total{outcome=\"failed\"}"),
              num(t, "attempts"));
    CHECK_INT(sample(text, "webhook_attempt_duration_seconds_count"), num(t, "attempts"));
    CHECK_INT(sample(text, "webhook_attempt_duration_seconds_bucket{le=\"+Inf\"}"), num(t, "attempts"));
    /* 20 attempts of at least 20 ms (the receiver waits), 40 quick 404s on loopback. */
    CHECK(sample(text, "webhook_attempt_duration_seconds_bucket{le=\"0.01\"}") <= 40);
    CHECK(sample(text, "webhook_attempt_duration_seconds_sum") >= 20 * 0.02);
    CHECK_INT(sample(text, "webhook_attempt_responses_total{class=\"2xx\"}"), 20);
    CHECK_INT(sample(text, "webhook_attempt_responses_total{class=\"4xx\"}"), 40);
    CHECK_INT(sample(text, "webhook_attempt_responses_total{class=\"none\"}"), 0);
    CHECK_INT(sample(text, "webhook_deliveries_in_flight"), num(t, "in_flight"));
    CHECK_INT(sample(text, "webhook_deliveries_due"), num(t, "due"));
    CHECK_INT(sample(text, "webhook_deliveries_scheduled"), num(t, "scheduled"));
    CHECK_INT(sample(text, "webhook_endpoints{state=\"enabled\"}"), num(t, "endpoints_enabled"));
    CHECK_INT(sample(text, "webhook_endpoints{state=\"disabled\"}"), num(t, "endpoints_disabled"));
    CHECK_INT(sample(text, "webhook_endpoints{state=\"disabled\"}"), 1);
    CHECK_INT(sample(text, "webhook_breakers_open"), num(t, "breakers_open"));
    CHECK_INT(sample(text, "webhook_results_dropped_total"), num(t, "results_dropped"));
    CHECK(sample(text, "webhook_dispatcher_start_time_seconds") > 1.7e9);
    CHECK_INT(num(t, "delivered"), 20);
    CHECK_INT(num(t, "failed"), 20);
  }
  wh_free(text);
  cJSON_Delete(t);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

/* Outcomes dropped from a full result queue: counted in the stats and the metrics. */
static void results_dropped(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char url[256], id[WH_ID_MAX];
  rcv_script_clear(R, "/dropped");
  CHECK_OK(wh_endpoint_add(reg, "dropped", rcv_url(R, "/dropped", url, sizeof url), NULL, id, sizeof id));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_RESULT_QUEUE, 3));
  CHECK_OK(wh_dispatcher_start(d));
  for (int i = 0; i < 10; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  cJSON *t = stats(d);
  CHECK_INT(num(t, "results_dropped"), 7);
  cJSON_Delete(t);
  char *m = NULL;
  CHECK_OK(wh_dispatcher_metrics_text(d, &m));
  CHECK(m && strstr(m, "\nwebhook_results_dropped_total 7\n") != NULL);
  wh_free(m);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

int main(void)
{
  if (rcv_start(&R, 0) != 0) {
    fprintf(stderr, "cannot start the receiver\n");
    return 1;
  }
  shape_and_errors();
  breaker();
  metrics();
  results_dropped();
  mixed_run(NULL);
  char path[64];
  snprintf(path, sizeof path, "sqlite:/tmp/wh-test-stats-%d.db", (int)getpid());
  mixed_run(path);
  h_remove_sqlite(path + 7);
  rcv_free(R);
  return check_done("test_stats");
}
