/* Tenants: one customer's webhooks never see another customer's events, and
   one tenant's administrator never sees or touches another's endpoints or
   messages. Function by function through views, on the memory, SQLite and
   (with WH_TEST_PG) PostgreSQL stores; routing by the event's tenant;
   admin actions (replay, recovery, test events) through views; the limit per
   tenant under concurrent adds; and the upgrade in place of stores written by
   libwebhook 1.0.0 (tests/fixtures/v1, made by the 1.0 code). */
#include <webhook/webhook.h>

#include "receiver.h"
#include "support/check.h"
#include "support/harness.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#ifdef WH_TEST_WITH_PG
#include <libpq-fe.h>
#endif
#include <stdio.h>
#include <unistd.h>

static rcv *R;
static char dir[256];
static const char *pg_uri;
static int store_seq;

#define TA "be461bd7-2d91-41c6-ab29-4389066bcc71"
#define TB "tenant-b"

/* ---- helpers ------------------------------------------------------------------- */

static cJSON *parse(int rc, char *text)
{
  CHECK_INT(rc, WH_OK);
  cJSON *j = text ? cJSON_Parse(text) : NULL;
  CHECK(j != NULL);
  wh_free(text);
  return j;
}

static cJSON *endpoint(wh_registry *reg, const char *id)
{
  char *s = NULL;
  int rc = wh_endpoint_get_json(reg, id, &s);
  return parse(rc, s);
}

static cJSON *list(wh_registry *reg)
{
  char *s = NULL;
  int rc = wh_endpoint_list_json(reg, &s);
  return parse(rc, s);
}

static cJSON *message(wh_registry *reg, const char *msg_id)
{
  char *s = NULL;
  int rc = wh_message_get_json(reg, msg_id, &s);
  if (rc)
    fprintf(stderr, "message %s: %s\n", msg_id, wh_error_last());
  return parse(rc, s);
}

static const char *str(cJSON *o, const char *key) { return cJSON_GetStringValue(cJSON_GetObjectItem(o, key)); }

/* A fresh store of the given kind ("memory", "sqlite", "postgres"). */
static void new_store(const char *kind, char *out, size_t n)
{
  int seq = ++store_seq;
  if (strcmp(kind, "sqlite") == 0) {
    snprintf(out, n, "sqlite:%s/tenants-%d.db", dir, seq);
#ifdef WH_TEST_WITH_PG
  } else if (strcmp(kind, "postgres") == 0) {
    PGconn *c = PQconnectdb(pg_uri);
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    PQclear(PQexec(c, "DROP SCHEMA IF EXISTS webhook CASCADE"));
    PQfinish(c);
    snprintf(out, n, "%s", pg_uri);
#endif
  } else {
    snprintf(out, n, "memory:");
  }
}

static void add(wh_registry *reg, const char *name, const char *path, const char *filter, char *id)
{
  char url[256];
  rcv_url(R, path, url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, name, url, NULL, id, WH_ID_MAX));
  if (filter)
    CHECK_OK(wh_endpoint_subscribe(reg, id, filter));
}

static wh_event *event(const char *tenant, const char *rtype)
{
  wh_event *ev = NULL;
  wh_event_new(&ev, rtype ? rtype : "people", "CREATE");
  wh_event_set_resource_json(ev, "{\"id\":\"p-1\"}");
  wh_event_set_resource_id(ev, "p-1");
  wh_event_set_tenant_id(ev, tenant);
  return ev;
}

/* The last failure's message with every occurrence of id replaced by "ID". */
static void message_without(const char *id, char *out, size_t n)
{
  const char *m = wh_error_last();
  size_t il = strlen(id), k = 0;
  while (*m && k + 3 < n) {
    if (strncmp(m, id, il) == 0) {
      memcpy(out + k, "ID", 2);
      k += 2;
      m += il;
    } else {
      out[k++] = *m++;
    }
  }
  out[k] = '\0';
}

/* Call `call` with the hidden id and with an id that does not exist: both
   WH_ENOTFOUND, with the same message (no hint that the first exists). */
#define HIDDEN(call_with)                                                                         \
  do {                                                                                            \
    char m1_[512], m2_[512];                                                                      \
    const char *id_ = hidden;                                                                     \
    int rc1_ = (call_with);                                                                       \
    message_without(hidden, m1_, sizeof m1_);                                                     \
    id_ = "ep_0000000000000000000000000000";                                                      \
    int rc2_ = (call_with);                                                                       \
    message_without(id_, m2_, sizeof m2_);                                                        \
    (void)id_;                                                                                    \
    CHECK_INT(rc1_, WH_ENOTFOUND);                                                                \
    CHECK_INT(rc2_, WH_ENOTFOUND);                                                                \
    if (strcmp(m1_, m2_) != 0)                                                                    \
      fprintf(stderr, "  %s:\n   hidden:  %s\n   missing: %s\n", #call_with, m1_, m2_);          \
    CHECK(strcmp(m1_, m2_) == 0);                                                                 \
  } while (0)

/* Every registry function that takes an endpoint id, through `view`, on an
   endpoint the view must not see. */
static void all_hidden(wh_registry *view, const char *hidden)
{
  char buf[256], *json = NULL;
  size_t count;
  HIDDEN(wh_endpoint_remove(view, id_));
  HIDDEN(wh_endpoint_set_enabled(view, id_, 0));
  HIDDEN(wh_endpoint_set_url(view, id_, "https://evil.example/hook"));
  HIDDEN(wh_endpoint_set_name(view, id_, "taken over"));
  HIDDEN(wh_endpoint_set_description(view, id_, "taken over"));
  HIDDEN(wh_endpoint_subscribe(view, id_, "people.*"));
  HIDDEN(wh_endpoint_unsubscribe(view, id_, "people.*"));
  HIDDEN(wh_endpoint_set_header(view, id_, "X-Evil", "1"));
  HIDDEN(wh_endpoint_secret(view, id_, buf, sizeof buf));
  HIDDEN(wh_endpoint_rotate_secret(view, id_, NULL, 0));
  HIDDEN(wh_endpoint_signature(view, id_, "msg_x", 1, "{}", 2, buf, sizeof buf));
  HIDDEN(wh_endpoint_get_json(view, id_, &json));
  HIDDEN(wh_endpoint_failed_json(view, id_, 0, 0, &json));
  HIDDEN(wh_endpoint_recover(view, id_, 0, &count));
  HIDDEN(wh_endpoint_send_test(view, id_, buf, WH_ID_MAX));
  CHECK(json == NULL);
}

static int listed(cJSON *arr, const char *id)
{
  for (cJSON *it = arr ? arr->child : NULL; it; it = it->next)
    if (strcmp(str(it, "id"), id) == 0)
      return 1;
  return 0;
}

/* ---- isolation, function by function ------------------------------------------------ */

static void isolation(const char *kind)
{
  char store[512];
  new_store(kind, store, sizeof store);
  wh_registry *reg, *a, *b;
  CHECK_OK(wh_registry_open(&reg, store));
  CHECK_OK(wh_registry_open_tenant(&a, reg, TA));
  CHECK_OK(wh_registry_open_tenant(&b, reg, TB));
  CHECK_STR(wh_registry_tenant_id(a), TA);
  CHECK(wh_registry_tenant_id(reg) == NULL);

  char ea[WH_ID_MAX], eb[WH_ID_MAX], ep[WH_ID_MAX];
  add(a, "CRM", "/iso/a", "people.*", ea);
  add(b, "CRM", "/iso/b", "people.*", eb); /* the same name in another tenant is fine */
  add(reg, "Platform audit", "/iso/p", NULL, ep);
  CHECK_ERR(wh_endpoint_add(a, "CRM", "https://x.example/", NULL, NULL, 0), WH_EEXIST, "already registered");
  CHECK_OK(wh_endpoint_add(reg, "CRM", "https://x.example/", NULL, NULL, 0)); /* platform names apart */
  CHECK_OK(wh_endpoint_set_header(a, ea, "X-Tenant", "a"));

  /* Ownership in the JSON, on the root and on views. */
  cJSON *j = endpoint(a, ea);
  CHECK_STR(str(j, "tenant_id"), TA);
  CHECK(cJSON_IsObject(cJSON_GetObjectItem(j, "settings")));
  cJSON_Delete(j);
  j = endpoint(reg, ep);
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "tenant_id")));
  cJSON_Delete(j);
  j = endpoint(reg, eb);
  CHECK_STR(str(j, "tenant_id"), TB);
  cJSON_Delete(j);

  /* Lists: a view its own only, the root everything. */
  j = list(a);
  CHECK_INT(cJSON_GetArraySize(j), 1);
  CHECK(listed(j, ea) && !listed(j, eb) && !listed(j, ep));
  cJSON_Delete(j);
  j = list(reg);
  CHECK_INT(cJSON_GetArraySize(j), 4);
  CHECK(listed(j, ea) && listed(j, eb) && listed(j, ep));
  cJSON_Delete(j);

  /* Every function on another tenant's endpoint, and on a platform one. */
  all_hidden(b, ea);
  all_hidden(a, eb);
  all_hidden(a, ep);
  /* ... and nothing of them changed. */
  j = endpoint(reg, ea);
  CHECK_STR(str(j, "name"), "CRM");
  CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "enabled")));
  CHECK_STR(str(cJSON_GetObjectItem(j, "headers"), "X-Tenant"), "a");
  CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "headers"), "X-Evil") == NULL);
  cJSON_Delete(j);

  /* Its own endpoints: every function works through the view. */
  char secret[128], sig[256];
  CHECK_OK(wh_endpoint_secret(a, ea, secret, sizeof secret));
  CHECK_OK(wh_endpoint_signature(a, ea, "msg_1", 1, "{}", 2, sig, sizeof sig));
  CHECK_OK(wh_endpoint_set_name(a, ea, "CRM people sync"));
  CHECK_OK(wh_endpoint_set_description(a, ea, "to the CRM"));
  CHECK_OK(wh_endpoint_set_url(a, ea, "https://crm.example/hooks"));
  CHECK_OK(wh_endpoint_rotate_secret(a, ea, NULL, 60));
  CHECK_OK(wh_endpoint_set_enabled(a, ea, 0));
  CHECK_OK(wh_endpoint_set_enabled(a, ea, 1));
  j = endpoint(a, ea);
  CHECK_STR(str(j, "name"), "CRM people sync");
  CHECK_STR(str(j, "description"), "to the CRM");
  cJSON_Delete(j);
  CHECK_ERR(wh_endpoint_set_name(a, ea, ""), WH_EINVAL, "endpoint name");

  /* Names: unique within a tenant, also on rename. */
  char ea2[WH_ID_MAX];
  add(a, "Second", "/iso/a2", NULL, ea2);
  CHECK_ERR(wh_endpoint_set_name(a, ea2, "CRM people sync"), WH_EEXIST, "already registered");
  CHECK_OK(wh_endpoint_set_name(a, ea2, "Second")); /* its own name again */
  CHECK_OK(wh_endpoint_set_name(b, eb, "CRM people sync"));

  /* Root-only operations refuse views. */
  CHECK_ERR(wh_registry_purge(a, 0, NULL), WH_EINVAL, "root");
  CHECK_ERR(wh_registry_set_int(a, WH_REG_TENANT_MAX_ENDPOINTS, 3), WH_EINVAL, "root");
  wh_dispatcher *d = NULL;
  CHECK_ERR(wh_dispatcher_new(&d, a), WH_EINVAL, "root registry");
  CHECK(d == NULL);

  /* Removal through the owner's view; the root still sees the others. */
  CHECK_OK(wh_endpoint_remove(a, ea2));
  CHECK_ERR(wh_endpoint_remove(a, ea2), WH_ENOTFOUND, "no such endpoint");
  wh_registry_free(a);
  wh_registry_free(b);
  wh_registry_free(reg);

  /* Durable stores keep the owner across a reopen. */
  if (strcmp(kind, "memory") != 0) {
    CHECK_OK(wh_registry_open(&reg, store));
    CHECK_OK(wh_registry_open_tenant(&a, reg, TA));
    j = list(a);
    CHECK_INT(cJSON_GetArraySize(j), 1);
    CHECK(listed(j, ea));
    cJSON_Delete(j);
    j = endpoint(reg, eb);
    CHECK_STR(str(j, "tenant_id"), TB);
    cJSON_Delete(j);
    all_hidden(a, eb);
    CHECK_ERR(wh_endpoint_add(a, "CRM people sync", "https://x.example/", NULL, NULL, 0), WH_EEXIST, NULL);
    wh_registry_free(a);
    wh_registry_free(reg);
  }
}

/* ---- routing, the log and admin actions through views ----------------------------------------- */

static size_t at(const char *path) { return rcv_count_path(R, path); }

static void routing(const char *kind)
{
  char store[512], p[8][64];
  new_store(kind, store, sizeof store);
  for (int i = 0; i < 8; i++)
    snprintf(p[i], sizeof p[i], "/route/%s/%d", kind, i);
  wh_registry *reg, *a, *b;
  CHECK_OK(wh_registry_open(&reg, store));
  CHECK_OK(wh_registry_open_tenant(&a, reg, TA));
  CHECK_OK(wh_registry_open_tenant(&b, reg, TB));
  char a1[WH_ID_MAX], a2[WH_ID_MAX], b1[WH_ID_MAX], p1[WH_ID_MAX], p2[WH_ID_MAX];
  add(a, "A people", p[0], "people.*", a1);
  add(a, "A cases", p[1], "cases.*", a2);
  add(b, "B people", p[2], "people.*", b1);
  add(reg, "Platform people", p[3], "people.*", p1);
  add(reg, "Platform other", p[4], "invoices.*", p2);

  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, "");
  CHECK_OK(wh_dispatcher_start(d));
  size_t before[5];
  for (int i = 0; i < 5; i++)
    before[i] = at(p[i]);
  char ma[WH_ID_MAX], mb[WH_ID_MAX], mn[WH_ID_MAX], mc[WH_ID_MAX];
  CHECK_OK(wh_dispatcher_emit(d, event(TA, NULL), ma, sizeof ma));
  CHECK_OK(wh_dispatcher_emit(d, event(TB, NULL), mb, sizeof mb));
  CHECK_OK(wh_dispatcher_emit(d, event(NULL, NULL), mn, sizeof mn));
  CHECK_OK(wh_dispatcher_emit(d, event("tenant-without-endpoints", NULL), mc, sizeof mc));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  /* A's event: A's matching endpoint and the platform's; never B's. */
  CHECK_INT(at(p[0]) - before[0], 1);
  CHECK_INT(at(p[1]) - before[1], 0);
  CHECK_INT(at(p[2]) - before[2], 1); /* B's own event only */
  CHECK_INT(at(p[3]) - before[3], 4); /* every tenant's, and the one without */
  CHECK_INT(at(p[4]) - before[4], 0);
  const rcv_request *q = rcv_find_header(R, "webhook-id", ma);
  CHECK(q && strcmp(q->path, p[2]) != 0);
  q = rcv_find_header(R, "webhook-id", mb);
  CHECK(q && strcmp(q->path, p[0]) != 0);

  /* The log through views: A sees its message, with its own delivery only. */
  cJSON *m = message(a, ma);
  cJSON *dl = cJSON_GetObjectItem(m, "deliveries");
  CHECK_INT(cJSON_GetArraySize(dl), 1);
  CHECK_STR(str(cJSON_GetArrayItem(dl, 0), "endpoint_id"), a1);
  cJSON_Delete(m);
  m = message(reg, ma);
  CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(m, "deliveries")), 2);
  cJSON_Delete(m);
  char *json = NULL;
  char missing[] = "msg_0000000000000000000000000000";
  CHECK_ERR(wh_message_get_json(b, ma, &json), WH_ENOTFOUND, "not in the store");
  char m1[512], m2[512];
  message_without(ma, m1, sizeof m1);
  CHECK_ERR(wh_message_get_json(b, missing, &json), WH_ENOTFOUND, "not in the store");
  message_without(missing, m2, sizeof m2);
  CHECK_STR(m1, m2);
  CHECK_ERR(wh_message_get_json(a, mn, &json), WH_ENOTFOUND, NULL); /* no tenant: the platform's */
  CHECK_ERR(wh_message_get_json(a, mb, &json), WH_ENOTFOUND, NULL);
  CHECK(json == NULL);

  /* Replay through views: to the view's own endpoints only. */
  size_t n = 99;
  size_t b0 = at(p[0]), b3 = at(p[3]);
  CHECK_OK(wh_message_replay(a, ma, NULL, &n));
  CHECK_INT(n, 1);
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK(rcv_wait_count(R, rcv_count(R), 100));
  CHECK_INT(at(p[0]) - b0, 1);
  CHECK_INT(at(p[3]) - b3, 0); /* the platform endpoint is not the view's to replay to */
  CHECK_ERR(wh_message_replay(b, ma, NULL, &n), WH_ENOTFOUND, NULL);
  CHECK_ERR(wh_message_replay(a, ma, p1, &n), WH_ENOTFOUND, NULL);
  CHECK_ERR(wh_message_replay(a, ma, b1, &n), WH_ENOTFOUND, NULL);
  CHECK_ERR(wh_message_replay(a, mb, a1, &n), WH_ENOTFOUND, NULL);
  /* Not even the root sends one tenant's event to another tenant's endpoint. */
  CHECK_ERR(wh_message_replay(reg, ma, b1, &n), WH_EINVAL, "tenant");
  CHECK_ERR(wh_dispatcher_replay(d, ma, b1, &n), WH_EINVAL, "tenant");
  CHECK_OK(wh_message_replay(reg, ma, NULL, &n));
  CHECK_INT(n, 2);
  CHECK_OK(wh_message_replay(reg, ma, p2, &n)); /* a platform endpoint takes any tenant's */
  CHECK_INT(n, 1);
  CHECK_OK(wh_dispatcher_drain(d, 10000));

  /* Recovery through a view: its endpoint's failed deliveries. */
  rcv_script_reply(R, p[0], 500, NULL, "down");
  char mf[WH_ID_MAX];
  CHECK_OK(wh_dispatcher_emit(d, event(TA, NULL), mf, sizeof mf));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK(h_wait(&log, a1, WH_FAILED, 1, 5000));
  rcv_script_clear(R, p[0]);
  CHECK_OK(wh_endpoint_failed_json(a, a1, 0, 0, &json));
  cJSON *fl = cJSON_Parse(json);
  wh_free(json);
  json = NULL;
  CHECK_INT(cJSON_GetArraySize(fl), 1);
  CHECK_STR(str(cJSON_GetArrayItem(fl, 0), "message_id"), mf);
  cJSON_Delete(fl);
  b0 = at(p[0]);
  CHECK_OK(wh_endpoint_recover(a, a1, 0, &n));
  CHECK_INT(n, 1);
  CHECK(h_wait(&log, a1, WH_DELIVERED, 3, 5000));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_INT(at(p[0]) - b0, 1);

  /* Disabled endpoints receive nothing; the tenant's others still do. */
  CHECK_OK(wh_endpoint_set_enabled(a, a1, 0));
  b0 = at(p[0]);
  CHECK_OK(wh_dispatcher_emit(d, event(TA, NULL), NULL, 0));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_INT(at(p[0]) - b0, 0);

  /* A test event through the view: to the disabled endpoint, whatever its
     filters (people.* does not match webhook.TEST), one attempt. */
  char mt[WH_ID_MAX];
  b0 = at(p[0]);
  size_t b1c = at(p[2]);
  CHECK_OK(wh_endpoint_send_test(a, a1, mt, sizeof mt));
  CHECK(h_wait(&log, a1, WH_DELIVERED, 4, 5000));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_INT(at(p[0]) - b0, 1);
  CHECK_INT(at(p[2]) - b1c, 0);
  q = rcv_find_header(R, "webhook-id", mt);
  cJSON *body = q ? cJSON_ParseWithLength(q->body, q->body_len) : NULL;
  CHECK(body != NULL);
  CHECK_STR(str(body, "resource_type"), "webhook");
  CHECK_STR(str(body, "event_type"), "TEST");
  CHECK_STR(str(body, "tenant_id"), TA);
  CHECK_STR(str(cJSON_GetObjectItem(body, "resource"), "endpoint_id"), a1);
  CHECK_STR(str(cJSON_GetObjectItem(body, "resource"), "endpoint_name"), "A people");
  cJSON_Delete(body);
  /* Its outcome is in the log (through the view) and the results. */
  m = message(a, mt);
  CHECK_STR(str(m, "event_type"), "webhook.TEST");
  CHECK_STR(str(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "deliveries"), 0), "state"), "delivered");
  cJSON_Delete(m);
  /* A failing test: one attempt, no retry, and no effect on the endpoint. */
  rcv_script_reply(R, p[0], 503, NULL, "nope");
  size_t failed_before = h_count(&log, a1, WH_FAILED);
  b0 = at(p[0]);
  CHECK_OK(wh_endpoint_send_test(a, a1, mt, sizeof mt));
  CHECK(h_wait(&log, a1, WH_FAILED, failed_before + 1, 5000));
  h_sleep_ms(400); /* the schedule of the dispatcher is "": but not even a fast retry may come */
  CHECK_INT(at(p[0]) - b0, 1);
  h_result r;
  CHECK(h_get(&log, a1, h_count(&log, a1, 0) - 1, &r));
  CHECK_STR(r.msg, mt);
  CHECK_INT(r.outcome, WH_FAILED);
  CHECK_INT(r.attempt, 1);
  CHECK_INT(r.status, 503);
  rcv_script_clear(R, p[0]);
  cJSON *e = endpoint(a, a1);
  CHECK(cJSON_IsFalse(cJSON_GetObjectItem(e, "enabled")));
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(e, "disabled_reason")));
  cJSON_Delete(e);
  CHECK_ERR(wh_endpoint_send_test(a, a1, mt, 8), WH_ERANGE, "WH_ID_MAX");
  CHECK_OK(wh_endpoint_send_test(reg, p1, NULL, 0)); /* the root tests platform endpoints */
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_OK(wh_endpoint_set_enabled(a, a1, 1));

  CHECK_OK(wh_dispatcher_stop(d, 5000));
  wh_dispatcher_free(d);

  /* With no dispatcher running: the memory store cannot deliver it; a durable
     store keeps it for the next start. */
  if (strcmp(kind, "memory") == 0) {
    CHECK_ERR(wh_endpoint_send_test(a, a1, mt, sizeof mt), WH_ESTATE, "no dispatcher");
    CHECK_ERR(wh_message_replay(a, ma, NULL, &n), WH_ESTATE, "no dispatcher");
    CHECK_ERR(wh_endpoint_recover(a, a1, 0, &n), WH_ESTATE, "no dispatcher");
  } else {
    b0 = at(p[0]);
    CHECK_OK(wh_endpoint_send_test(a, a1, mt, sizeof mt));
    CHECK_OK(wh_message_replay(a, ma, NULL, &n));
    CHECK_INT(n, 1);
    h_sleep_ms(200);
    CHECK_INT(at(p[0]) - b0, 0);
    d = h_dispatcher(reg, &log, "");
    CHECK_OK(wh_dispatcher_start(d));
    CHECK(rcv_wait_count(R, rcv_count(R), 100));
    int64_t end = h_mono_ms() + 10000;
    while (at(p[0]) - b0 < 2 && h_mono_ms() < end)
      h_sleep_ms(10);
    CHECK_INT(at(p[0]) - b0, 2);
    CHECK(rcv_find_header(R, "webhook-id", mt) != NULL);
    CHECK_OK(wh_dispatcher_stop(d, 5000));
    wh_dispatcher_free(d);
  }
  wh_registry_free(a);
  wh_registry_free(b);
  wh_registry_free(reg);
  h_log_free(&log);
}

/* ---- bad input, lifetimes, the per-tenant limit --------------------------------------------- */

static void bad_input(void)
{
  wh_registry *reg, *v = NULL;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char big[1100];
  memset(big, 't', sizeof big - 1);
  big[1025] = '\0';
  CHECK_ERR(wh_registry_open_tenant(&v, reg, ""), WH_EINVAL, "tenant id: must not be empty");
  CHECK_ERR(wh_registry_open_tenant(&v, reg, big), WH_EINVAL, "tenant id: longer than 1024 bytes");
  CHECK_ERR(wh_registry_open_tenant(&v, reg, "bad\xff\xfe"), WH_EINVAL, "tenant id: not valid UTF-8");
  CHECK_ERR(wh_registry_open_tenant(&v, reg, NULL), WH_EINVAL, "tenant id");
  CHECK_ERR(wh_registry_open_tenant(&v, NULL, "a"), WH_EINVAL, "registry");
  CHECK_ERR(wh_registry_open_tenant(NULL, reg, "a"), WH_EINVAL, "view_out");
  CHECK(v == NULL);
  big[1024] = '\0';
  CHECK_OK(wh_registry_open_tenant(&v, reg, big)); /* 1024 bytes: the longest */
  wh_registry_free(v);
  CHECK_OK(wh_registry_open_tenant(&v, reg, "\xc3\xa9quipe")); /* any UTF-8 */
  wh_registry *same, *other = NULL;
  CHECK_OK(wh_registry_open_tenant(&same, v, "\xc3\xa9quipe"));
  CHECK_ERR(wh_registry_open_tenant(&other, v, "another"), WH_EINVAL, "another tenant");
  CHECK(other == NULL);
  CHECK_ERR(wh_registry_set_int(reg, WH_REG_TENANT_MAX_ENDPOINTS, -1), WH_EINVAL, "WH_REG_TENANT_MAX_ENDPOINTS");
  CHECK_ERR(wh_registry_set_int(reg, 99, 1), WH_EINVAL, "no such setting");
  CHECK_ERR(wh_registry_set_int(NULL, WH_REG_TENANT_MAX_ENDPOINTS, 1), WH_EINVAL, NULL);
  wh_registry_free(same);
  wh_registry_free(v);
  wh_registry_free(reg);
}

/* A view keeps its registry alive: freeing the root first is safe. */
static void view_outlives_root(void)
{
  wh_registry *reg, *v;
  CHECK_OK(wh_registry_open(&reg, NULL));
  CHECK_OK(wh_registry_open_tenant(&v, reg, TA));
  wh_registry_free(reg);
  char id[WH_ID_MAX];
  CHECK_OK(wh_endpoint_add(v, "still here", "https://crm.example/h", NULL, id, sizeof id));
  cJSON *j = list(v);
  CHECK_INT(cJSON_GetArraySize(j), 1);
  cJSON_Delete(j);
  wh_registry_free(v);
}

typedef struct {
  wh_registry *view;
  int thread;
  int ok, full;
} adder;

static void *add_many(void *p)
{
  adder *x = p;
  for (int i = 0; i < 4; i++) {
    char name[64];
    snprintf(name, sizeof name, "ep-%d-%d", x->thread, i);
    int rc = wh_endpoint_add(x->view, name, "https://crm.example/h", NULL, NULL, 0);
    if (rc == WH_OK)
      x->ok++;
    else if (rc == WH_EFULL)
      x->full++;
  }
  return NULL;
}

static void tenant_limit(void)
{
  char store[512];
  new_store("sqlite", store, sizeof store);
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  CHECK_OK(wh_registry_set_int(reg, WH_REG_TENANT_MAX_ENDPOINTS, 5));
  enum { T = 12 };
  pthread_t th[T];
  adder ad[T];
  for (int i = 0; i < T; i++) {
    memset(&ad[i], 0, sizeof ad[i]);
    ad[i].thread = i;
    /* Half the threads share one view, the others open their own. */
    if (i % 2 == 0 || i == 1)
      CHECK_OK(wh_registry_open_tenant(&ad[i].view, reg, TA));
    else
      ad[i].view = ad[1].view;
  }
  for (int i = 0; i < T; i++)
    pthread_create(&th[i], NULL, add_many, &ad[i]);
  int ok = 0, full = 0;
  for (int i = 0; i < T; i++) {
    pthread_join(th[i], NULL);
    ok += ad[i].ok;
    full += ad[i].full;
  }
  CHECK_INT(ok, 5);
  CHECK_INT(full, T * 4 - 5);
  cJSON *j = list(ad[0].view);
  CHECK_INT(cJSON_GetArraySize(j), 5);
  cJSON_Delete(j);
  CHECK_ERR(wh_endpoint_add(ad[0].view, "one more", "https://crm.example/h", NULL, NULL, 0), WH_EFULL,
            "WH_REG_TENANT_MAX_ENDPOINTS");
  /* Other tenants and the platform are not affected. */
  wh_registry *b;
  CHECK_OK(wh_registry_open_tenant(&b, reg, TB));
  CHECK_OK(wh_endpoint_add(b, "b", "https://crm.example/h", NULL, NULL, 0));
  for (int i = 0; i < 7; i++) {
    char name[32];
    snprintf(name, sizeof name, "platform-%d", i);
    CHECK_OK(wh_endpoint_add(reg, name, "https://crm.example/h", NULL, NULL, 0));
  }
  /* Room again after a removal; and no limit once it is 0. */
  j = list(ad[0].view);
  CHECK_OK(wh_endpoint_remove(ad[0].view, str(cJSON_GetArrayItem(j, 0), "id")));
  cJSON_Delete(j);
  CHECK_OK(wh_endpoint_add(ad[0].view, "one more", "https://crm.example/h", NULL, NULL, 0));
  CHECK_OK(wh_registry_set_int(reg, WH_REG_TENANT_MAX_ENDPOINTS, 0));
  CHECK_OK(wh_endpoint_add(ad[0].view, "and another", "https://crm.example/h", NULL, NULL, 0));
  for (int i = 0; i < T; i++)
    if (i % 2 == 0 || i == 1)
      wh_registry_free(ad[i].view);
  wh_registry_free(b);
  wh_registry_free(reg);
}

/* ---- upgrade in place from stores written by 1.0.0 ----------------------------------------- */

static cJSON *manifest(const char *name)
{
  char path[512];
  snprintf(path, sizeof path, "%s/%s", WH_FIXTURES_DIR, name);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL);
  if (!f)
    return NULL;
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return cJSON_Parse(buf);
}

static void check_upgraded(const char *store, cJSON *man)
{
  cJSON *eps = cJSON_GetObjectItem(man, "endpoints"), *msgs = cJSON_GetObjectItem(man, "messages");
  const char *crm = str(eps, "crm"), *billing = str(eps, "billing"), *audit = str(eps, "audit"),
             *later = str(eps, "later");
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));

  /* Endpoints: every field kept, all of them platform endpoints now. */
  cJSON *all = list(reg);
  CHECK_INT(cJSON_GetArraySize(all), 4);
  for (cJSON *it = all ? all->child : NULL; it; it = it->next)
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(it, "tenant_id")));
  cJSON *j = endpoint(reg, crm);
  CHECK_STR(str(j, "name"), "CRM people sync");
  CHECK_STR(str(j, "description"), "Sends new and changed people to the CRM");
  CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "filters"), 0)), "people.*");
  CHECK_STR(str(cJSON_GetObjectItem(j, "headers"), "X-Env"), "prod");
  cJSON_Delete(j);
  j = endpoint(reg, audit);
  CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "enabled")));
  cJSON_Delete(j);
  cJSON_Delete(all);

  /* Secrets: the current one, and the one in its grace period still signs. */
  cJSON *secrets = cJSON_GetObjectItem(cJSON_GetObjectItem(man, "secrets"), "crm");
  char secret[128], sig[512];
  CHECK_OK(wh_endpoint_secret(reg, crm, secret, sizeof secret));
  CHECK_STR(secret, cJSON_GetStringValue(cJSON_GetArrayItem(secrets, 0)));
  CHECK_OK(wh_endpoint_signature(reg, crm, "msg_x", 1700000000, "{}", 2, sig, sizeof sig));
  for (int i = 0; i < 2; i++)
    CHECK_OK(wh_verify(cJSON_GetStringValue(cJSON_GetArrayItem(secrets, i)), "msg_x", "1700000000", sig, "{}", 2,
                       1700000000));

  /* The attempt log. */
  char *text = NULL;
  CHECK_OK(wh_message_get_json(reg, str(msgs, "delivered"), &text));
  /* The payload as 1.0 sent it, byte for byte, big number and all. */
  CHECK(text && strstr(text, "\"big\":18446744073709551617}") != NULL);
  cJSON *m = parse(WH_OK, text);
  cJSON *d0 = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "deliveries"), 0);
  CHECK_STR(str(d0, "endpoint_id"), crm);
  CHECK_STR(str(d0, "state"), "delivered");
  CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(d0, "attempts")), 1);
  cJSON_Delete(m);
  m = message(reg, str(msgs, "failed"));
  d0 = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "deliveries"), 0);
  CHECK_STR(str(d0, "endpoint_id"), billing);
  CHECK_STR(str(d0, "state"), "failed");
  cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItem(d0, "attempts"), 0);
  CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(a0, "http_status")), 500);
  CHECK_STR(str(a0, "response"), "billing is down");
  cJSON_Delete(m);
  char *json = NULL;
  CHECK_OK(wh_endpoint_failed_json(reg, billing, 0, 0, &json));
  CHECK(json && strstr(json, str(msgs, "failed")) != NULL);
  wh_free(json);

  /* The 1.0 messages carry tenant_id "tenant-acme" in their payload: a view of
     that tenant sees them, without the deliveries to platform endpoints. */
  wh_registry *acme;
  CHECK_OK(wh_registry_open_tenant(&acme, reg, "tenant-acme"));
  m = message(acme, str(msgs, "delivered"));
  CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(m, "deliveries")), 0);
  cJSON_Delete(m);
  CHECK_ERR(wh_message_get_json(acme, str(msgs, "failed"), &json), WH_ENOTFOUND, NULL);

  /* Tenancy works on the upgraded store. */
  char own[WH_ID_MAX];
  CHECK_OK(wh_endpoint_add(acme, "CRM people sync", "https://crm.example/h", NULL, own, sizeof own));
  all_hidden(acme, crm);

  /* The pending deliveries are delivered, signed with the stored secret. */
  char url[256], later_secret[128];
  CHECK_OK(wh_endpoint_set_url(reg, later, rcv_url(R, "/upgraded/later", url, sizeof url)));
  CHECK_OK(wh_endpoint_secret(reg, later, later_secret, sizeof later_secret));
  h_log log;
  h_log_init(&log);
  size_t before = rcv_count_path(R, "/upgraded/later");
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_start(d));
  CHECK(h_wait(&log, later, WH_DELIVERED, 3, 10000));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_INT(rcv_count_path(R, "/upgraded/later") - before, 3);
  cJSON *pending = cJSON_GetObjectItem(msgs, "pending");
  for (int i = 0; i < 3; i++) {
    const rcv_request *q = rcv_find_header(R, "webhook-id", cJSON_GetStringValue(cJSON_GetArrayItem(pending, i)));
    CHECK(q != NULL);
    if (q)
      CHECK_OK(wh_verify(later_secret, rcv_header_get(q, "webhook-id"), rcv_header_get(q, "webhook-timestamp"),
                         rcv_header_get(q, "webhook-signature"), q->body, q->body_len, 0));
  }
  /* Nothing else was pending: no second delivery of the delivered or failed ones. */
  CHECK_INT(h_count(&log, NULL, 0), 3);
  CHECK_OK(wh_dispatcher_stop(d, 5000));
  wh_dispatcher_free(d);
  h_log_free(&log);
  wh_registry_free(acme);
  wh_registry_free(reg);

  /* Opening it again changes nothing more. */
  CHECK_OK(wh_registry_open(&reg, store));
  all = list(reg);
  CHECK_INT(cJSON_GetArraySize(all), 5);
  cJSON_Delete(all);
  wh_registry_free(reg);
}

static void upgrade_sqlite(void)
{
  char cmd[1024], store[512];
  snprintf(cmd, sizeof cmd, "cp '%s/sqlite.db' '%s/v1.db'", WH_FIXTURES_DIR, dir);
  CHECK_INT(system(cmd), 0);
  snprintf(store, sizeof store, "sqlite:%s/v1.db", dir);
  cJSON *man = manifest("manifest-sqlite.json");
  CHECK_STR(str(man, "version"), "1.0.0");
  check_upgraded(store, man);
  cJSON_Delete(man);
}

#ifdef WH_TEST_WITH_PG
static void upgrade_postgres(void)
{
  /* A database of its own, loaded with the dump of the 1.0 store. */
  PGconn *c = PQconnectdb(pg_uri);
  PQclear(PQexec(c, "SET client_min_messages = warning"));
  PQclear(PQexec(c, "DROP DATABASE IF EXISTS wh_upgrade"));
  PGresult *res = PQexec(c, "CREATE DATABASE wh_upgrade");
  CHECK_INT(PQresultStatus(res), PGRES_COMMAND_OK);
  PQclear(res);
  PQfinish(c);
  char uri[512], cmd[1024];
  const char *slash = strrchr(pg_uri, '/');
  snprintf(uri, sizeof uri, "%.*s/wh_upgrade", (int)(slash - pg_uri), pg_uri);
  snprintf(cmd, sizeof cmd, "psql -q -v ON_ERROR_STOP=1 -d '%s' -f '%s/postgres.sql' >/dev/null", uri,
           WH_FIXTURES_DIR);
  CHECK_INT(system(cmd), 0);
  cJSON *man = manifest("manifest-postgres.json");
  check_upgraded(uri, man);
  cJSON_Delete(man);
}
#endif

int main(void)
{
  snprintf(dir, sizeof dir, "/tmp/wh-tenants-XXXXXX");
  if (!mkdtemp(dir) || rcv_start(&R, 0) != 0)
    return 1;
  int kinds_n = 2;
#ifdef WH_TEST_WITH_PG
  /* Built with the PostgreSQL store: it is tested, never skipped. */
  pg_uri = getenv("WH_TEST_PG");
  if (!pg_uri || !*pg_uri) {
    fprintf(stderr, "WH_TEST_PG is not set: run this test through ctest (it starts the server)\n");
    return 1;
  }
  kinds_n = 3;
#endif
  const char *kinds[] = {"memory", "sqlite", "postgres"};
  for (int i = 0; i < kinds_n; i++) {
    isolation(kinds[i]);
    routing(kinds[i]);
  }
  bad_input();
  view_outlives_root();
  tenant_limit();
  upgrade_sqlite();
#ifdef WH_TEST_WITH_PG
  upgrade_postgres();
#endif
  rcv_free(R);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return check_done("tenants");
}
