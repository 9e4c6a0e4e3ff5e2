/* Delivery in the no-fault case, against a real HTTP receiver on loopback:
   what goes on the wire, fan-out and filters, exactly-once under concurrent
   emitters, connection reuse, the lifecycle, and the limits of emit. */
#include <webhook/webhook.h>

#include "receiver.h"
#include "support/check.h"
#include "support/harness.h"

#include <cjson/cJSON.h>
#include <stdio.h>

static rcv *R;

static void add_ep(wh_registry *reg, const char *name, const char *path, char *id)
{
  char url[256];
  rcv_url(R, path, url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, name, url, "test endpoint", id, WH_ID_MAX));
}

static void wire_format(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX];
  add_ep(reg, "CRM", "/wire", id);
  CHECK_OK(wh_endpoint_set_header(reg, id, "Authorization", "Bearer t0k3n"));
  char secret[128];
  CHECK_OK(wh_endpoint_secret(reg, id, secret, sizeof secret));

  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_start(d));
  size_t before = rcv_count(R);
  wh_event *ev = h_person_event(NULL, NULL);
  char *expected = NULL;
  CHECK_OK(wh_event_to_json(ev, &expected));
  char msg_id[WH_ID_MAX];
  int64_t t0 = h_now_ms() / 1000;
  CHECK_OK(wh_dispatcher_emit(d, ev, msg_id, sizeof msg_id));
  CHECK(strncmp(msg_id, "msg_", 4) == 0 && strchr(msg_id, '.') == NULL);
  CHECK(rcv_wait_count(R, before + 1, 5000));
  CHECK(h_wait(&log, id, WH_DELIVERED, 1, 5000));
  const rcv_request *q = rcv_request_at(R, before);
  if (q) {
    CHECK_STR(q->method, "POST");
    CHECK_STR(q->path, "/wire");
    CHECK(q->body_len == strlen(expected) && memcmp(q->body, expected, q->body_len) == 0);
    CHECK_STR(rcv_header_get(q, "content-type"), "application/json");
    CHECK_STR(rcv_header_get(q, "user-agent"), "libwebhook/" WH_VERSION_STRING);
    CHECK_STR(rcv_header_get(q, "webhook-id"), msg_id);
    CHECK_STR(rcv_header_get(q, "authorization"), "Bearer t0k3n");
    CHECK(rcv_header_get(q, "expect") == NULL);
    const char *ts = rcv_header_get(q, "webhook-timestamp");
    CHECK(ts && llabs(atoll(ts) - t0) <= 2);
    const char *sig = rcv_header_get(q, "webhook-signature");
    CHECK(sig && strncmp(sig, "v1,", 3) == 0);
    CHECK_OK(wh_verify(secret, msg_id, ts, sig, q->body, q->body_len, 0));
  }
  h_result r;
  CHECK(h_get(&log, id, 0, &r));
  CHECK_STR(r.msg, msg_id);
  CHECK_INT(r.outcome, WH_DELIVERED);
  CHECK_INT(r.attempt, 1);
  CHECK_INT(r.status, 200);
  CHECK(r.error[0] == '\0');
  wh_free(expected);

  /* During a rotation both secrets sign; each verifies on its own. */
  CHECK_OK(wh_endpoint_rotate_secret(reg, id, NULL, 3600));
  char secret2[128];
  CHECK_OK(wh_endpoint_secret(reg, id, secret2, sizeof secret2));
  before = rcv_count(R);
  CHECK_OK(wh_emit(h_person_event(NULL, "UPDATE")));
  CHECK(rcv_wait_count(R, before + 1, 5000));
  q = rcv_request_at(R, before);
  if (q) {
    const char *sig = rcv_header_get(q, "webhook-signature");
    CHECK(sig && strchr(sig, ' ') != NULL);
    const char *ts = rcv_header_get(q, "webhook-timestamp");
    const char *mid = rcv_header_get(q, "webhook-id");
    CHECK_OK(wh_verify(secret, mid, ts, sig, q->body, q->body_len, 0));
    CHECK_OK(wh_verify(secret2, mid, ts, sig, q->body, q->body_len, 0));
  }
  CHECK_OK(wh_dispatcher_stop(d, 5000));
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

static void fan_out_and_filters(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char all[WH_ID_MAX], people[WH_ID_MAX], deletes[WH_ID_MAX], create[WH_ID_MAX], off[WH_ID_MAX];
  add_ep(reg, "all", "/f-all", all);
  add_ep(reg, "people", "/f-people", people);
  CHECK_OK(wh_endpoint_subscribe(reg, people, "people.*"));
  add_ep(reg, "deletes", "/f-del", deletes);
  CHECK_OK(wh_endpoint_subscribe(reg, deletes, "*.DELETE"));
  add_ep(reg, "create", "/f-create", create);
  CHECK_OK(wh_endpoint_subscribe(reg, create, "people.CREATE"));
  CHECK_OK(wh_endpoint_subscribe(reg, create, "cases.CREATE"));
  add_ep(reg, "off", "/f-off", off);
  CHECK_OK(wh_endpoint_set_enabled(reg, off, 0));

  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_start(d));
  CHECK_OK(wh_emit(h_person_event("people", "CREATE")));  /* all, people, create */
  CHECK_OK(wh_emit(h_person_event("people", "DELETE")));  /* all, people, deletes */
  CHECK_OK(wh_emit(h_person_event("cases", "DELETE")));   /* all, deletes */
  CHECK_OK(wh_emit(h_person_event("cases", "CREATE")));   /* all, create */
  CHECK_OK(wh_emit(h_person_event("notes", "UPDATE")));   /* all */
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_INT(rcv_count_path(R, "/f-all"), 5);
  CHECK_INT(rcv_count_path(R, "/f-people"), 2);
  CHECK_INT(rcv_count_path(R, "/f-del"), 2);
  CHECK_INT(rcv_count_path(R, "/f-create"), 2);
  CHECK_INT(rcv_count_path(R, "/f-off"), 0);
  CHECK_INT(h_count(&log, NULL, WH_DELIVERED), 11);
  /* Filters are applied at emit time: a later subscription does not pull old events. */
  CHECK_OK(wh_endpoint_set_enabled(reg, off, 1));
  CHECK_OK(wh_dispatcher_drain(d, 2000));
  CHECK_INT(rcv_count_path(R, "/f-off"), 0);
  /* An event nobody wants is accepted and goes nowhere. */
  wh_registry *empty;
  CHECK_OK(wh_registry_open(&empty, NULL));
  wh_dispatcher *d2 = h_dispatcher(empty, &log, NULL);
  CHECK_OK(wh_dispatcher_start(d2));
  char mid[WH_ID_MAX];
  CHECK_OK(wh_dispatcher_emit(d2, h_person_event(NULL, NULL), mid, sizeof mid));
  CHECK(strncmp(mid, "msg_", 4) == 0);
  wh_dispatcher_free(d2);
  wh_registry_free(empty);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

typedef struct {
  wh_dispatcher *d;
  int n, errors;
} emitter;

static void *emit_many(void *p)
{
  emitter *e = p;
  for (int i = 0; i < e->n; i++) {
    char mid[WH_ID_MAX];
    if (wh_dispatcher_emit(e->d, h_person_event(NULL, NULL), mid, sizeof mid) != WH_OK)
      e->errors++;
  }
  return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void exactly_once_concurrent(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  const char *paths[3] = {"/x1", "/x2", "/x3"};
  char ids[3][WH_ID_MAX];
  for (int i = 0; i < 3; i++) {
    char name[16];
    snprintf(name, sizeof name, "x%d", i);
    add_ep(reg, name, paths[i], ids[i]);
  }
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_WORKERS, 4));
  CHECK_OK(wh_dispatcher_start(d));
  size_t before = rcv_count(R);
  enum { THREADS = 6, PER = 300 };
  pthread_t t[THREADS];
  emitter e[THREADS];
  for (int i = 0; i < THREADS; i++) {
    e[i] = (emitter){d, PER, 0};
    pthread_create(&t[i], NULL, emit_many, &e[i]);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    CHECK_INT(e[i].errors, 0);
  }
  CHECK_OK(wh_dispatcher_drain(d, 30000));
  size_t total = THREADS * PER * 3;
  CHECK_INT(rcv_count(R) - before, total);
  CHECK_INT(h_count(&log, NULL, WH_DELIVERED), total);
  CHECK_INT(h_count(&log, NULL, WH_RETRYING), 0);
  /* Each (webhook-id, endpoint) exactly once. */
  char **keys = calloc(total, sizeof *keys);
  size_t k = 0;
  for (size_t i = before; i < rcv_count(R) && k < total; i++) {
    const rcv_request *q = rcv_request_at(R, i);
    keys[k] = malloc(WH_ID_MAX + 16);
    snprintf(keys[k], WH_ID_MAX + 16, "%s %s", rcv_header_get(q, "webhook-id"), q->path);
    k++;
  }
  qsort(keys, k, sizeof *keys, cmp_str);
  int dups = 0;
  for (size_t i = 1; i < k; i++)
    dups += strcmp(keys[i], keys[i - 1]) == 0;
  CHECK_INT(dups, 0);
  for (size_t i = 0; i < k; i++)
    free(keys[i]);
  free(keys);
  /* Connections were kept alive and reused: far fewer than requests. */
  unsigned long conns = 0, reqs = 0;
  for (size_t i = before; i < rcv_count(R); i++) {
    const rcv_request *q = rcv_request_at(R, i);
    reqs++;
    conns += q->conn_seq == 1;
  }
  printf("exactly-once: %lu requests over %lu new connections\n", reqs, conns);
  CHECK(conns * 10 < reqs);
  CHECK_OK(wh_dispatcher_stop(d, 5000));
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

static void lifecycle(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX];
  add_ep(reg, "life", "/life", id);
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_ERR(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0), WH_ESTATE, "not started");
  CHECK_ERR(wh_dispatcher_drain(d, 10), WH_ESTATE, NULL);
  CHECK_ERR(wh_dispatcher_stop(d, 10), WH_ESTATE, NULL);
  CHECK_ERR(wh_dispatcher_set_int(d, WH_OPT_WORKERS, 0), WH_EINVAL, "WH_OPT_WORKERS");
  CHECK_ERR(wh_dispatcher_set_int(d, WH_OPT_TIMEOUT_MS, 999), WH_EINVAL, "WH_OPT_TIMEOUT_MS");
  CHECK_ERR(wh_dispatcher_set_int(d, WH_OPT_TIMEOUT_MS, 30001), WH_EINVAL, "WH_OPT_TIMEOUT_MS");
  CHECK_ERR(wh_dispatcher_set_int(d, (wh_option)999, 1), WH_EINVAL, "no such option");
  CHECK_ERR(wh_dispatcher_set_int(d, WH_OPT_USER_AGENT, 1), WH_EINVAL, "text");
  CHECK_ERR(wh_dispatcher_set_str(d, WH_OPT_RETRY_SCHEDULE, "5,x"), WH_EINVAL, "retry schedule");
  CHECK_ERR(wh_dispatcher_set_str(d, WH_OPT_RETRY_SCHEDULE, "5,,6"), WH_EINVAL, "retry schedule");
  CHECK_ERR(wh_dispatcher_set_str(d, WH_OPT_USER_AGENT, "a\r\nb"), WH_EINVAL, "USER_AGENT");
  CHECK_ERR(wh_dispatcher_set_str(d, WH_OPT_WORKERS, "2"), WH_EINVAL, NULL);
  CHECK_OK(wh_dispatcher_set_str(d, WH_OPT_USER_AGENT, "casebook-webhooks/2"));
  CHECK_OK(wh_dispatcher_start(d));
  CHECK_ERR(wh_dispatcher_start(d), WH_ESTATE, "running");
  CHECK_ERR(wh_dispatcher_set_int(d, WH_OPT_WORKERS, 3), WH_ESTATE, "before");
  CHECK_ERR(wh_dispatcher_set_str(d, WH_OPT_USER_AGENT, "x"), WH_ESTATE, NULL);
  /* 1.1: callbacks may change while running (the guarantees: tests/test_lifecycle.c). */
  CHECK_OK(wh_dispatcher_on_result(d, h_on_result, &log));
  char small[8];
  size_t before = rcv_count(R);
  CHECK_ERR(wh_dispatcher_emit(d, h_person_event(NULL, NULL), small, sizeof small), WH_ERANGE, "WH_ID_MAX");
  CHECK_ERR(wh_dispatcher_emit(d, NULL, NULL, 0), WH_EINVAL, "event");
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK_OK(wh_dispatcher_drain(d, 5000));
  CHECK_INT(rcv_count(R) - before, 1); /* the refused emits sent nothing */
  const rcv_request *q = rcv_request_at(R, before);
  CHECK(q && strcmp(rcv_header_get(q, "user-agent"), "casebook-webhooks/2") == 0);

  /* The default dispatcher is the most recently started one. */
  wh_dispatcher *d2 = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_start(d2));
  CHECK_OK(wh_dispatcher_set_default(d));
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK_OK(wh_dispatcher_drain(d, 5000));
  CHECK_OK(wh_dispatcher_stop(d2, 1000));
  CHECK_OK(wh_dispatcher_stop(d, 1000));
  CHECK_ERR(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0), WH_ESTATE, "stopped");
  CHECK_ERR(wh_emit(h_person_event(NULL, NULL)), WH_ESTATE, "no dispatcher");
  CHECK_ERR(wh_dispatcher_start(d), WH_ESTATE, NULL);
  wh_dispatcher_free(d2);
  wh_dispatcher_free(d);
  wh_dispatcher_free(NULL);
  CHECK_ERR(wh_dispatcher_new(&d, NULL), WH_EINVAL, "registry");
  wh_registry_free(reg);
  h_log_free(&log);
}

/* A registry lives until its last dispatcher is freed: a host (or a garbage
   collector) may free the registry first, and the dispatcher goes on. */
static void registry_freed_first(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX];
  add_ep(reg, "orphan", "/orphan", id);
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_start(d));
  wh_registry_free(reg);
  size_t before = rcv_count(R);
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK_OK(wh_dispatcher_drain(d, 5000));
  CHECK(h_wait(&log, id, WH_DELIVERED, 1, 5000));
  CHECK_INT(rcv_count(R) - before, 1);
  wh_dispatcher_free(d);
  h_log_free(&log);
}

static void emit_limits(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  rcv_blackhole *bh;
  CHECK(rcv_blackhole_start(&bh, 0) == 0);
  char ids[3][WH_ID_MAX];
  for (int i = 0; i < 3; i++) {
    char url[128], name[16];
    snprintf(name, sizeof name, "hang%d", i);
    rcv_blackhole_url(bh, "/hang", url, sizeof url);
    CHECK_OK(wh_endpoint_add(reg, name, url, NULL, ids[i], WH_ID_MAX));
  }
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_QUEUE_LIMIT, 7));
  /* Longer than the test runs, however slow: no hanging request may time out
     before the stop below (it counts results). */
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_TIMEOUT_MS, 30000)); /* the most allowed */
  CHECK_OK(wh_dispatcher_start(d));
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  /* Wait until all 6 hang in flight (disabling an endpoint fails its queued ones). */
  for (int i = 0; i < 500 && rcv_blackhole_accepted(bh) < 6; i++)
    h_sleep_ms(10);
  CHECK_INT(rcv_blackhole_accepted(bh), 6);
  /* 6 pending; the next event has 3 deliveries: all or nothing. */
  CHECK_ERR(wh_emit(h_person_event(NULL, NULL)), WH_EFULL, "queue limit");
  CHECK_OK(wh_endpoint_set_enabled(reg, ids[2], 0)); /* now it has only 2 -> 8 > 7, still full */
  CHECK_ERR(wh_emit(h_person_event(NULL, NULL)), WH_EFULL, NULL);
  CHECK_OK(wh_endpoint_set_enabled(reg, ids[1], 0)); /* 1 -> 7: fits */
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));

  /* Bodies over 1 MiB are refused at emit, with nothing queued. */
  wh_event *big;
  CHECK_OK(wh_event_new(&big, "people", "CREATE"));
  size_t n = 1048576;
  char *json = malloc(n + 16);
  memcpy(json, "{\"blob\":\"", 9);
  memset(json + 9, 'x', n);
  memcpy(json + 9 + n, "\"}", 3);
  CHECK_OK(wh_event_set_resource_json(big, json));
  free(json);
  CHECK_ERR(wh_emit(big), WH_EINVAL, "WH_OPT_MAX_BODY_BYTES");

  /* Stop while requests hang: it gives up after its timeout, nothing is lost. */
  int64_t t0 = h_mono_ms();
  CHECK_ERR(wh_dispatcher_stop(d, 300), WH_ETIMEOUT, "pending");
  CHECK(h_mono_ms() - t0 < 3000);
  CHECK_INT(h_count(&log, NULL, 0), 0); /* no attempt counted as made */
  for (size_t i = 0; i < h_count(&log, NULL, 0); i++) {
    h_result r;
    h_get(&log, NULL, i, &r);
    fprintf(stderr, "  unexpected result: attempt %d outcome %d status %d error %s\n", r.attempt, r.outcome,
            r.status, r.error);
  }
  wh_dispatcher_free(d);
  rcv_blackhole_free(bh);
  wh_registry_free(reg);
  h_log_free(&log);
}

static void policy_refuses_loopback(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX], id6[WH_ID_MAX], idname[WH_ID_MAX];
  add_ep(reg, "private", "/private", id);
  char url[128];
  snprintf(url, sizeof url, "http://[::1]:%u/private6", rcv_port(R));
  CHECK_OK(wh_endpoint_add(reg, "private6", url, NULL, id6, sizeof id6));
  /* A name that resolves to loopback is refused too: the check is on the
     address connected to, not on the URL's text. */
  snprintf(url, sizeof url, "http://localhost:%u/private-name", rcv_port(R));
  CHECK_OK(wh_endpoint_add(reg, "private-name", url, NULL, idname, sizeof idname));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, 0));
  CHECK_OK(wh_dispatcher_start(d));
  size_t before = rcv_count(R);
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&log, NULL, WH_FAILED, 3, 5000));
  CHECK_OK(wh_dispatcher_drain(d, 5000));
  CHECK_INT(rcv_count(R) - before, 0);
  CHECK_INT(h_count(&log, NULL, WH_RETRYING), 0);
  h_result r;
  CHECK(h_get(&log, id, 0, &r) && strstr(r.error, "network policy") && strstr(r.error, "loopback"));
  CHECK(h_get(&log, id6, 0, &r) && strstr(r.error, "loopback"));
  CHECK(h_get(&log, idname, 0, &r) && strstr(r.error, "network policy"));
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

/* Message ids: "msg_" and 27 base62 digits, unique, and sorting by the
   millisecond they were made in (so one commit's messages sit together in a
   durable store's indexes). */
static void ids_sort_by_time(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX];
  add_ep(reg, "ids", "/ids", id);
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_start(d));
  enum { N = 20 };
  char ids[N][WH_ID_MAX];
  for (int i = 0; i < N; i++) {
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), ids[i], WH_ID_MAX));
    CHECK_INT((long)strlen(ids[i]), 31);
    CHECK(strncmp(ids[i], "msg_", 4) == 0);
    CHECK(strspn(ids[i] + 4, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") == 27);
    if (i > 0)
      CHECK(strcmp(ids[i - 1], ids[i]) < 0); /* 2 ms apart: a later millisecond sorts later */
    h_sleep_ms(2);
  }
  /* Made in the same millisecond, they still differ. */
  char a[WH_ID_MAX], b[WH_ID_MAX];
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), a, WH_ID_MAX));
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), b, WH_ID_MAX));
  CHECK(strcmp(a, b) != 0);
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_OK(wh_dispatcher_stop(d, 1000));
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
  wire_format();
  fan_out_and_filters();
  exactly_once_concurrent();
  lifecycle();
  registry_freed_first();
  emit_limits();
  policy_refuses_loopback();
  ids_sort_by_time();
  rcv_free(R);
  return check_done("delivery");
}
