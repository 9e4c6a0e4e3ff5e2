/* Operational events (API-1.1 section 4), on the memory and SQLite stores:
   webhook.ENDPOINT_DISABLED, .ATTEMPT_EXHAUSTED, .ENDPOINT_FAILING and
   .ENDPOINT_RECOVERED, delivered like any event (signed, in the attempt log),
   routed by the endpoint's tenant, only to endpoints whose filters name
   "webhook" explicitly, never about an endpoint to itself; no loop from an
   operational event's own failing delivery or a test event's; the bound on
   ATTEMPT_EXHAUSTED. Real receivers on loopback. */
#include <webhook/webhook.h>

#include "receiver.h"
#include "support/check.h"
#include "support/harness.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <unistd.h>

static rcv *R;
static int run_no;

/* A path of this run (each run has its own, so one receiver serves them all). */
static const char *path(const char *name)
{
  static char buf[8][64];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, 64, "/r%d-%s", run_no, name);
  return p;
}

static void add(wh_registry *reg, const char *name, const char *filter, char *id)
{
  char url[256];
  CHECK_OK(wh_endpoint_add(reg, name, rcv_url(R, path(name), url, sizeof url), NULL, id, WH_ID_MAX));
  if (filter)
    CHECK_OK(wh_endpoint_subscribe(reg, id, filter));
}

/* One operational event as received. */
typedef struct {
  char type[64], about[WH_ID_MAX], name[128], reason[200], msg_id[WH_ID_MAX], tenant[64], id[WH_ID_MAX];
  int verified;
} op_seen;

/* The webhook.* events received at an endpoint's path (verified with its secret). */
static size_t ops_at(wh_registry *reg, const char *name, const char *ep_id, op_seen *out, size_t max)
{
  char secret[128];
  CHECK_OK(wh_endpoint_secret(reg, ep_id, secret, sizeof secret));
  const char *p = path(name);
  size_t k = 0, n = rcv_count(R);
  for (size_t i = 0; i < n && k < max; i++) {
    const rcv_request *q = rcv_request_at(R, i);
    if (!q || strcmp(q->path, p) != 0)
      continue;
    cJSON *j = cJSON_Parse(q->body);
    const char *rt = cJSON_GetStringValue(cJSON_GetObjectItem(j, "resource_type"));
    if (rt && strcmp(rt, "webhook") == 0) {
      op_seen *o = &out[k++];
      memset(o, 0, sizeof *o);
      cJSON *res = cJSON_GetObjectItem(j, "resource");
      snprintf(o->type, sizeof o->type, "webhook.%s", cJSON_GetStringValue(cJSON_GetObjectItem(j, "event_type")));
      const char *s;
      if ((s = cJSON_GetStringValue(cJSON_GetObjectItem(res, "endpoint_id"))))
        snprintf(o->about, sizeof o->about, "%s", s);
      if ((s = cJSON_GetStringValue(cJSON_GetObjectItem(res, "endpoint_name"))))
        snprintf(o->name, sizeof o->name, "%s", s);
      if ((s = cJSON_GetStringValue(cJSON_GetObjectItem(res, "reason"))))
        snprintf(o->reason, sizeof o->reason, "%s", s);
      if ((s = cJSON_GetStringValue(cJSON_GetObjectItem(res, "message_id"))))
        snprintf(o->msg_id, sizeof o->msg_id, "%s", s);
      if ((s = cJSON_GetStringValue(cJSON_GetObjectItem(j, "tenant_id"))))
        snprintf(o->tenant, sizeof o->tenant, "%s", s);
      /* Only the four keys, in the contract's order. */
      int nkeys = cJSON_GetArraySize(res);
      CHECK(nkeys == 3 || nkeys == 4);
      CHECK_STR(res && res->child ? res->child->string : NULL, "endpoint_id");
      CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "resource_id")), o->about);
      const char *id = rcv_header_get(q, "webhook-id");
      snprintf(o->id, sizeof o->id, "%s", id ? id : "");
      o->verified = wh_verify(secret, id, rcv_header_get(q, "webhook-timestamp"),
                              rcv_header_get(q, "webhook-signature"), q->body, q->body_len, 0) == WH_OK;
    }
    cJSON_Delete(j);
  }
  return k;
}

static size_t count_of(const op_seen *v, size_t n, const char *type, const char *about)
{
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if ((!type || strcmp(v[i].type, type) == 0) && (!about || strcmp(v[i].about, about) == 0))
      k++;
  return k;
}

static const op_seen *find(const op_seen *v, size_t n, const char *type, const char *about)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i].type, type) == 0 && strcmp(v[i].about, about) == 0)
      return &v[i];
  return NULL;
}

/* Requests whose body is a webhook.* event at name's path. */
static size_t ops_received(const char *name)
{
  const char *p = path(name);
  size_t k = 0, n = rcv_count(R);
  for (size_t i = 0; i < n; i++) {
    const rcv_request *q = rcv_request_at(R, i);
    if (q && strcmp(q->path, p) == 0 && strstr(q->body, "\"resource_type\":\"webhook\""))
      k++;
  }
  return k;
}

static wh_event *tenant_event(const char *tenant)
{
  wh_event *ev = h_person_event(NULL, NULL);
  wh_event_set_tenant_id(ev, tenant);
  return ev;
}

enum { MAXOPS = 512 };

/* Results for ep with this HTTP status. */
static size_t with_status(h_log *l, const char *ep, int status)
{
  size_t n = 0;
  pthread_mutex_lock(&l->mu);
  for (size_t i = 0; i < l->n; i++)
    n += strcmp(l->v[i].ep, ep) == 0 && l->v[i].status == status;
  pthread_mutex_unlock(&l->mu);
  return n;
}

/* Wait until the dispatcher holds nothing (retries and breakers included), as its stats say. */
static int settle(wh_dispatcher *d)
{
  for (int i = 0; i < 600; i++) {
    char *s = NULL;
    wh_dispatcher_drain(d, 20000);
    CHECK_OK(wh_dispatcher_stats_json(d, &s));
    cJSON *j = s ? cJSON_Parse(s) : NULL;
    wh_free(s);
    double pending = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "in_flight")) +
                     cJSON_GetNumberValue(cJSON_GetObjectItem(j, "due")) +
                     cJSON_GetNumberValue(cJSON_GetObjectItem(j, "scheduled"));
    cJSON_Delete(j);
    if (pending == 0)
      return 1;
    h_sleep_ms(50);
  }
  return 0;
}

/* ---- routing, content, each of the four events --------------------------------------------- */

static void four_events(const char *store)
{
  run_no++;
  wh_registry *reg, *acme, *globex;
  CHECK_OK(wh_registry_open(&reg, store));
  CHECK_OK(wh_registry_open_tenant(&acme, reg, "acme"));
  CHECK_OK(wh_registry_open_tenant(&globex, reg, "globex"));
  char platform[WH_ID_MAX], acme_admin[WH_ID_MAX], globex_admin[WH_ID_MAX], all[WH_ID_MAX], nofilter[WH_ID_MAX],
      star_disabled[WH_ID_MAX], gone[WH_ID_MAX], dead[WH_ID_MAX], ggone[WH_ID_MAX];
  add(reg, "platform", "webhook.*", platform);
  add(acme, "acme-admin", "webhook.*", acme_admin);
  add(globex, "globex-admin", "webhook.ENDPOINT_DISABLED", globex_admin);
  add(acme, "all", "*", all);
  add(acme, "nofilter", NULL, nofilter);
  add(reg, "star-disabled", "*.ENDPOINT_DISABLED", star_disabled);
  add(acme, "gone", "people.*", gone);
  add(acme, "dead", "people.*", dead);
  add(globex, "ggone", "people.*", ggone);
  rcv_script_reply(R, path("gone"), 410, NULL, NULL);
  rcv_script_reply(R, path("ggone"), 410, NULL, NULL);
  rcv_script_reply(R, path("dead"), 500, NULL, NULL);

  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, "0.05");
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_MIN_REQUESTS, 4);
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_FAILURE_PCT, 50);
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_COOLDOWN_MS, 300);
  CHECK_OK(wh_dispatcher_start(d));
  /* A test event to the failing endpoint: one failed attempt, and no event about it. */
  char test_msg[WH_ID_MAX];
  CHECK_OK(wh_endpoint_send_test(acme, dead, test_msg, sizeof test_msg));
  CHECK(h_wait(&log, dead, WH_FAILED, 1, 10000));
  char first[WH_ID_MAX];
  CHECK_OK(wh_dispatcher_emit(d, tenant_event("acme"), first, sizeof first));
  for (int i = 0; i < 3; i++)
    CHECK_OK(wh_dispatcher_emit(d, tenant_event("acme"), NULL, 0));
  CHECK_OK(wh_dispatcher_emit(d, tenant_event("globex"), NULL, 0));
  /* 4 failed deliveries (2 attempts each) to dead: its breaker opens. */
  CHECK(h_wait(&log, dead, WH_FAILED, 5, 20000));
  CHECK(settle(d));
  /* It comes back: after the cooldown a probe gets through and the breaker closes. */
  rcv_script_clear(R, path("dead"));
  CHECK_OK(wh_dispatcher_emit(d, tenant_event("acme"), NULL, 0));
  CHECK(h_wait(&log, dead, WH_DELIVERED, 1, 20000));
  CHECK(settle(d));
  /* Two attempts in flight may both have met the 410: each is a failed delivery. */
  size_t gone_failed = with_status(&log, gone, 410), ggone_failed = with_status(&log, ggone, 410);
  CHECK(gone_failed >= 1 && ggone_failed >= 1);

  op_seen *p = calloc(MAXOPS, sizeof *p), *a = calloc(MAXOPS, sizeof *a), *g = calloc(MAXOPS, sizeof *g);
  size_t np = ops_at(reg, "platform", platform, p, MAXOPS), na = ops_at(reg, "acme-admin", acme_admin, a, MAXOPS),
         ng = ops_at(reg, "globex-admin", globex_admin, g, MAXOPS);
  printf("%s: platform admin got %zu operational events, acme's %zu, globex's %zu\n", store ? store : "memory:",
         np, na, ng);
  /* Each event, at the platform's admin endpoint: signed, about the right endpoint. */
  const op_seen *o = find(p, np, "webhook.ENDPOINT_DISABLED", gone);
  CHECK(o != NULL);
  if (o) {
    CHECK_STR(o->name, "gone");
    CHECK_STR(o->reason, "410 Gone");
    CHECK_STR(o->tenant, "acme");
    CHECK(strncmp(o->msg_id, "msg_", 4) == 0);
  }
  CHECK(find(p, np, "webhook.ENDPOINT_DISABLED", ggone) != NULL);
  CHECK_INT(count_of(p, np, "webhook.ATTEMPT_EXHAUSTED", dead), 4);
  o = find(p, np, "webhook.ATTEMPT_EXHAUSTED", dead);
  if (o) {
    CHECK(strstr(o->reason, "HTTP 500") != NULL);
    CHECK(strstr(o->reason, "2 attempts") != NULL);
  }
  int first_seen = 0;
  for (size_t i = 0; i < np; i++) {
    CHECK(p[i].verified);
    CHECK(strcmp(p[i].msg_id, test_msg) != 0); /* nothing about the test event */
    first_seen |= strcmp(p[i].type, "webhook.ATTEMPT_EXHAUSTED") == 0 && strcmp(p[i].msg_id, first) == 0;
  }
  CHECK(first_seen);
  CHECK_INT(count_of(p, np, "webhook.ENDPOINT_FAILING", dead), 1);
  CHECK_INT(count_of(p, np, "webhook.ENDPOINT_RECOVERED", dead), 1);
  o = find(p, np, "webhook.ENDPOINT_FAILING", dead);
  if (o)
    CHECK(strstr(o->reason, "circuit breaker opened") != NULL);
  /* The 410s are failed deliveries too; the endpoint is disabled once. */
  CHECK_INT(count_of(p, np, "webhook.ATTEMPT_EXHAUSTED", gone), gone_failed);
  CHECK_INT(count_of(p, np, "webhook.ATTEMPT_EXHAUSTED", ggone), ggone_failed);
  CHECK_INT(count_of(p, np, "webhook.ENDPOINT_DISABLED", gone), 1);
  CHECK_INT(count_of(p, np, "webhook.ENDPOINT_DISABLED", ggone), 1);
  CHECK_INT(count_of(p, np, NULL, NULL), 1 + gone_failed + 1 + ggone_failed + 4 + 1 + 1);

  /* A tenant's admin endpoint: its own endpoints' events, not another tenant's. */
  CHECK_INT(na, 1 + gone_failed + 4 + 1 + 1);
  CHECK(find(a, na, "webhook.ENDPOINT_DISABLED", gone) != NULL);
  CHECK_INT(count_of(a, na, NULL, ggone), 0);
  for (size_t i = 0; i < na; i++)
    CHECK_STR(a[i].tenant, "acme");
  /* Subscribed to one event type: only that one, only its tenant's. */
  CHECK_INT(ng, 1);
  CHECK(find(g, ng, "webhook.ENDPOINT_DISABLED", ggone) != NULL);
  /* "*", no filter and "*.ENDPOINT_DISABLED" do not ask for the library's events. */
  CHECK_INT(ops_received("all"), 0);
  CHECK_INT(ops_received("nofilter"), 0);
  CHECK_INT(ops_received("star-disabled"), 0);
  CHECK(rcv_count_path(R, path("all")) >= 5); /* while they do get the host's */

  /* Like any event: in the attempt log (durable with a durable store), seen
     through the tenant's view, not through another's. */
  o = find(a, na, "webhook.ENDPOINT_DISABLED", gone);
  if (o) {
    char *json = NULL;
    CHECK_OK(wh_message_get_json(acme, o->id, &json));
    CHECK(json && strstr(json, "\"event_type\":\"ENDPOINT_DISABLED\"") != NULL);
    wh_free(json);
    CHECK_ERR(wh_message_get_json(globex, o->id, &json), WH_ENOTFOUND, NULL);
  }

  /* The stats count them. */
  char *m = NULL;
  CHECK_OK(wh_dispatcher_metrics_text(d, &m));
  char line[128];
  /* The platform's admin endpoint hears of every one of them. */
  snprintf(line, sizeof line, "webhook_operational_events_total{outcome=\"emitted\"} %zu\n", np);
  CHECK(m && strstr(m, line) != NULL);
  wh_free(m);

  free(p);
  free(a);
  free(g);
  wh_dispatcher_free(d);
  wh_registry_free(globex);
  wh_registry_free(acme);
  wh_registry_free(reg);
  h_log_free(&log);
}

/* ---- loops: a failing admin endpoint, an endpoint that is its own admin ------------------------ */

/* "self" takes webhook.* and people.*: the host's events fail there, the
   library's succeed. */
static int self_hook(const rcv_request *q, void *ud, rcv_spec *answer)
{
  const char *self = ud;
  if (strcmp(q->path, self) != 0 || strstr(q->body, "\"resource_type\":\"webhook\""))
    return 0;
  memset(answer, 0, sizeof *answer);
  answer->status = 500;
  return 1;
}

static void loops(const char *store)
{
  run_no++;
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  char watcher[WH_ID_MAX], broken[WH_ID_MAX], self[WH_ID_MAX], dead[WH_ID_MAX];
  add(reg, "watcher", "webhook.*", watcher);
  add(reg, "broken", "webhook.*", broken); /* every delivery to it fails, the library's too */
  add(reg, "self", "webhook.*", self);
  CHECK_OK(wh_endpoint_subscribe(reg, self, "people.*"));
  add(reg, "dead", "people.*", dead);
  rcv_script_reply(R, path("broken"), 500, NULL, NULL);
  rcv_script_reply(R, path("dead"), 500, NULL, NULL);
  static char self_path[64];
  snprintf(self_path, sizeof self_path, "%s", path("self"));
  rcv_set_hook(R, self_hook, self_path);

  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, "0.02,0.02");
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_MIN_REQUESTS, 3);
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_FAILURE_PCT, 60);
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_COOLDOWN_MS, 200);
  CHECK_OK(wh_dispatcher_start(d));
  char msgs[3][WH_ID_MAX];
  for (int i = 0; i < 3; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), msgs[i], WH_ID_MAX));
  CHECK(h_wait(&log, self, WH_FAILED, 3, 20000));
  CHECK(h_wait(&log, dead, WH_FAILED, 3, 20000));
  /* Everything settles: the failures of "broken" make nothing more. */
  CHECK(settle(d));
  size_t results = h_count(&log, NULL, 0);
  h_sleep_ms(500);
  CHECK(settle(d));
  CHECK_INT(h_count(&log, NULL, 0), results);

  op_seen *w = calloc(MAXOPS, sizeof *w), *s = calloc(MAXOPS, sizeof *s);
  size_t nw = ops_at(reg, "watcher", watcher, w, MAXOPS), ns = ops_at(reg, "self", self, s, MAXOPS);
  /* Every ATTEMPT_EXHAUSTED is about one of the host's messages: not about
     the operational events that failed at "broken". */
  for (size_t i = 0; i < nw; i++) {
    if (strcmp(w[i].type, "webhook.ATTEMPT_EXHAUSTED") == 0)
      CHECK(strcmp(w[i].msg_id, msgs[0]) == 0 || strcmp(w[i].msg_id, msgs[1]) == 0 ||
            strcmp(w[i].msg_id, msgs[2]) == 0);
  }
  CHECK_INT(count_of(w, nw, "webhook.ATTEMPT_EXHAUSTED", dead), 3);
  CHECK_INT(count_of(w, nw, "webhook.ATTEMPT_EXHAUSTED", self), 3);
  CHECK_INT(count_of(w, nw, "webhook.ATTEMPT_EXHAUSTED", broken), 0);
  /* Its breaker may close on an operational event's success and open again
     on the host's: each time the watcher hears of it. */
  size_t failing = count_of(w, nw, "webhook.ENDPOINT_FAILING", self),
         recovered = count_of(w, nw, "webhook.ENDPOINT_RECOVERED", self);
  CHECK(failing >= 1 && (failing == recovered || failing == recovered + 1));
  /* "broken"'s breaker opened on operational events: the watcher hears of it. */
  CHECK_INT(count_of(w, nw, "webhook.ENDPOINT_FAILING", broken), 1);
  /* An endpoint never hears about itself, though it hears about the others. */
  CHECK_INT(count_of(s, ns, NULL, self), 0);
  CHECK_INT(count_of(s, ns, "webhook.ATTEMPT_EXHAUSTED", dead), 3);
  CHECK(count_of(w, nw, NULL, watcher) == 0);
  printf("%s: watcher got %zu operational events, self %zu\n", store ? store : "memory:", nw, ns);
  rcv_set_hook(R, NULL, NULL);
  free(w);
  free(s);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

/* ---- a storm: many deliveries failing at once ------------------------------------------------- */

static void storm(void)
{
  run_no++;
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char watcher[WH_ID_MAX], dead[WH_ID_MAX];
  add(reg, "watcher", "webhook.ATTEMPT_EXHAUSTED", watcher);
  add(reg, "dead", "people.*", dead);
  rcv_script_reply(R, path("dead"), 500, NULL, NULL);
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, ""); /* one attempt each */
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_FAILURE_PCT, 0);
  CHECK_OK(wh_dispatcher_start(d));
  int64_t t0 = h_mono_ms();
  enum { N = 300 };
  for (int i = 0; i < N; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK(h_wait(&log, dead, WH_FAILED, N, 30000));
  long secs = (long)((h_mono_ms() - t0) / 1000) + 1;
  CHECK_OK(wh_dispatcher_drain(d, 20000));
  size_t got = ops_received("watcher");
  printf("storm: %d deliveries failed in about %ld s, %zu webhook.ATTEMPT_EXHAUSTED sent\n", N, secs, got);
  CHECK(got >= 60);
  CHECK((long)got <= 60 + secs);
  char *m = NULL;
  CHECK_OK(wh_dispatcher_metrics_text(d, &m));
  char line[128];
  snprintf(line, sizeof line, "webhook_operational_events_total{outcome=\"suppressed\"} %zu\n", N - got);
  CHECK(m && strstr(m, line) != NULL);
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
  char store[64];
  snprintf(store, sizeof store, "sqlite:/tmp/wh-test-ops-%d.db", (int)getpid());
  four_events(NULL);
  four_events(store);
  h_remove_sqlite(store + 7);
  loops(NULL);
  loops(store);
  h_remove_sqlite(store + 7);
  storm();
  rcv_free(R);
  return check_done("test_ops");
}
