/* The dispatcher's log (wh_dispatcher_on_log, API-1.1 section 4): each kind
   of message at its level (start and stop, retries, retries given up, breaker
   open and close, endpoints disabled, store errors), max_level filtering,
   NULL detaching, bad arguments; and a full run whose every message is
   scanned for the secrets, header values, payload, URL path, proxy password
   and response body it must never contain. */
#include <webhook/webhook.h>

#include "receiver.h"
#include "support/check.h"
#include "support/harness.h"

#include <sqlite3.h>
#include <stdio.h>
#include <unistd.h>

static rcv *R;

typedef struct {
  pthread_mutex_t mu;
  int n, cap;
  int *level;
  char **text;
} logbook;

static void on_log(int level, const char *message, void *ud)
{
  logbook *b = ud;
  pthread_mutex_lock(&b->mu);
  if (b->n == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 64;
    b->level = realloc(b->level, (size_t)b->cap * sizeof *b->level);
    b->text = realloc(b->text, (size_t)b->cap * sizeof *b->text);
  }
  b->level[b->n] = level;
  b->text[b->n] = strdup(message);
  b->n++;
  pthread_mutex_unlock(&b->mu);
}

static void book_init(logbook *b)
{
  memset(b, 0, sizeof *b);
  pthread_mutex_init(&b->mu, NULL);
}

static void book_free(logbook *b)
{
  for (int i = 0; i < b->n; i++)
    free(b->text[i]);
  free(b->text);
  free(b->level);
  pthread_mutex_destroy(&b->mu);
}

static int book_count(logbook *b)
{
  pthread_mutex_lock(&b->mu);
  int n = b->n;
  pthread_mutex_unlock(&b->mu);
  return n;
}

/* The level of the first message containing all of a and b (b may be NULL), 0 if none. */
static int level_of(logbook *bk, const char *a, const char *b)
{
  int level = 0;
  pthread_mutex_lock(&bk->mu);
  for (int i = 0; i < bk->n && !level; i++)
    if (strstr(bk->text[i], a) && (!b || strstr(bk->text[i], b)))
      level = bk->level[i];
  pthread_mutex_unlock(&bk->mu);
  return level;
}

static int wait_for(logbook *bk, const char *a, const char *b, int timeout_ms)
{
  int64_t end = h_mono_ms() + timeout_ms;
  while (!level_of(bk, a, b)) {
    if (h_mono_ms() > end)
      return 0;
    h_sleep_ms(10);
  }
  return 1;
}

static void dump(logbook *b)
{
  for (int i = 0; i < b->n; i++)
    fprintf(stderr, "  [%d] %s\n", b->level[i], b->text[i]);
}

/* ---- each kind of message at its level; max_level; NULL detaches --------------------------- */

static void levels(int max_level)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char url[256], gone[WH_ID_MAX], dead[WH_ID_MAX];
  char gone_path[32], dead_path[32];
  snprintf(gone_path, sizeof gone_path, "/gone-%d", max_level);
  snprintf(dead_path, sizeof dead_path, "/dead-%d", max_level);
  CHECK_OK(wh_endpoint_add(reg, "gone", rcv_url(R, gone_path, url, sizeof url), NULL, gone, sizeof gone));
  CHECK_OK(wh_endpoint_add(reg, "dead", rcv_url(R, dead_path, url, sizeof url), NULL, dead, sizeof dead));
  rcv_script_reply(R, gone_path, 410, NULL, NULL);
  rcv_script_reply(R, dead_path, 500, NULL, NULL);
  h_log log;
  h_log_init(&log);
  logbook b;
  book_init(&b);
  wh_dispatcher *d = h_dispatcher(reg, &log, "0.05");
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_MIN_REQUESTS, 3);
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_FAILURE_PCT, 50);
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_COOLDOWN_MS, 200);
  CHECK_OK(wh_dispatcher_on_log(d, max_level, on_log, &b));
  CHECK_OK(wh_dispatcher_start(d));
  for (int i = 0; i < 3; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK(h_wait(&log, dead, WH_FAILED, 3, 20000));
  rcv_script_clear(R, dead_path);
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK(h_wait(&log, dead, WH_DELIVERED, 1, 20000));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_OK(wh_dispatcher_stop(d, 5000));

  /* What each kind of message says, and at what level. */
  struct {
    const char *a, *b;
    int level;
  } want[] = {
      {"dispatcher started", NULL, WH_LOG_INFO},
      {"attempt 1 failed (HTTP 500)", dead, WH_LOG_DEBUG},
      {"retries given up: HTTP 500", dead, WH_LOG_WARN},
      {"circuit breaker opened", dead, WH_LOG_WARN},
      {"circuit breaker closed", dead, WH_LOG_INFO},
      {"(\"gone\") disabled: 410 Gone", gone, WH_LOG_WARN},
      {"dispatcher stopped", NULL, WH_LOG_INFO},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    int got = level_of(&b, want[i].a, want[i].b);
    if (want[i].level <= max_level) {
      if (got != want[i].level)
        fprintf(stderr, "\"%s\": level %d, expected %d\n", want[i].a, got, want[i].level);
      CHECK_INT(got, want[i].level);
    } else {
      CHECK_INT(got, 0); /* above max_level: not sent */
    }
  }
  pthread_mutex_lock(&b.mu);
  for (int i = 0; i < b.n; i++)
    CHECK(b.level[i] >= WH_LOG_ERROR && b.level[i] <= max_level);
  pthread_mutex_unlock(&b.mu);
  if (check_failures)
    dump(&b);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
  book_free(&b);
}

static void detach_and_errors(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char url[256], dead[WH_ID_MAX];
  CHECK_OK(wh_endpoint_add(reg, "dead", rcv_url(R, "/detach", url, sizeof url), NULL, dead, sizeof dead));
  rcv_script_reply(R, "/detach", 500, NULL, NULL);
  h_log log;
  h_log_init(&log);
  logbook b;
  book_init(&b);
  wh_dispatcher *d = h_dispatcher(reg, &log, "0.01,0.01");
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_FAILURE_PCT, 0);
  CHECK_ERR(wh_dispatcher_on_log(d, 0, on_log, &b), WH_EINVAL, "max_level");
  CHECK_ERR(wh_dispatcher_on_log(d, 5, on_log, &b), WH_EINVAL, "max_level");
  CHECK_ERR(wh_dispatcher_on_log(NULL, WH_LOG_INFO, on_log, &b), WH_EINVAL, NULL);
  CHECK_OK(wh_dispatcher_on_log(d, WH_LOG_DEBUG, on_log, &b));
  CHECK_OK(wh_dispatcher_start(d));
  for (int i = 0; i < 20; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  /* Detached while messages come: none after the call returns. */
  CHECK(wait_for(&b, "attempt 1 failed", NULL, 10000));
  CHECK_OK(wh_dispatcher_on_log(d, WH_LOG_DEBUG, NULL, NULL));
  int n = book_count(&b);
  for (int i = 0; i < 20; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK(h_wait(&log, dead, WH_FAILED, 40, 20000));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_INT(book_count(&b), n);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
  book_free(&b);
}

/* ---- store errors: a SQLite database another connection holds locked ------------------------ */

static void store_errors(void)
{
  char file[64], store[80];
  snprintf(file, sizeof file, "/tmp/wh-test-logs-%d.db", (int)getpid());
  snprintf(store, sizeof store, "sqlite:%s", file);
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  h_log log;
  h_log_init(&log);
  logbook b;
  book_init(&b);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_on_log(d, WH_LOG_DEBUG, on_log, &b));
  CHECK_OK(wh_dispatcher_start(d));
  CHECK(wait_for(&b, "dispatcher started", "sqlite", 5000));
  sqlite3 *db = NULL;
  CHECK(sqlite3_open(file, &db) == SQLITE_OK);
  sqlite3_busy_timeout(db, 20000); /* the store's writer may be in a transaction of its own */
  CHECK(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK);
  /* The dispatcher looks for due work every second (and purges old messages at
     start): that needs the database. The first failure is an ERROR, the ones
     after it DEBUG. */
  CHECK(wait_for(&b, "loading due deliveries failed", NULL, 30000));
  CHECK_INT(level_of(&b, "store sqlite: ", "failed"), WH_LOG_ERROR);
  CHECK(level_of(&b, "loading due deliveries failed", NULL) != 0);
  CHECK(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(db);
  if (!wait_for(&b, "works again", NULL, 30000)) {
    CHECK(0);
    dump(&b);
  }
  CHECK_INT(level_of(&b, "works again", NULL), WH_LOG_INFO);
  char *s = NULL;
  CHECK_OK(wh_dispatcher_metrics_text(d, &s));
  CHECK(s && !strstr(s, "\nwebhook_store_errors_total 0\n") && strstr(s, "\nwebhook_store_errors_total "));
  wh_free(s);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
  book_free(&b);
  h_remove_sqlite(file);
}

/* ---- nothing secret in any message ------------------------------------------------------------ */

static const char *const MARKERS[] = {
    "S3cretKeyMarker", /* the signing key, decoded */
    "c2VjcmV0LVMz",    /* the secret as written (whsec_ + base64) */
    "HeaderValueMarker", "PayloadMarker", "PathMarker", "ProxyPassMarker", "ResponseBodyMarker",
};

static void no_secrets(void)
{
  wh_registry *reg, *acme;
  CHECK_OK(wh_registry_open(&reg, NULL));
  CHECK_OK(wh_registry_open_tenant(&acme, reg, "acme"));
  char url[256], bad[WH_ID_MAX], gone[WH_ID_MAX], proxied[WH_ID_MAX], ok[WH_ID_MAX], admin[WH_ID_MAX];
  /* A URL whose path is a secret (as many services' hook URLs are). */
  CHECK_OK(wh_endpoint_add(acme, "bad", rcv_url(R, "/hook/PathMarker/bad", url, sizeof url), NULL, bad, sizeof bad));
  CHECK_OK(wh_endpoint_add(acme, "gone", rcv_url(R, "/hook/PathMarker/gone", url, sizeof url), NULL, gone,
                           sizeof gone));
  CHECK_OK(wh_endpoint_add(acme, "ok", rcv_url(R, "/hook/PathMarker/ok", url, sizeof url), NULL, ok, sizeof ok));
  CHECK_OK(wh_endpoint_add(acme, "proxied", "http://crm.example/hook/PathMarker", NULL, proxied, sizeof proxied));
  CHECK_OK(wh_endpoint_add(reg, "admin", rcv_url(R, "/hook/PathMarker/admin", url, sizeof url), NULL, admin,
                           sizeof admin));
  CHECK_OK(wh_endpoint_subscribe(reg, admin, "webhook.*"));
  /* whsec_ + base64("secret-S3cretKeyMarker-padding!!") */
  const char *secret = "whsec_c2VjcmV0LVMzY3JldEtleU1hcmtlci1wYWRkaW5nISE=";
  const char *ids[] = {bad, gone, ok, proxied, admin};
  for (int i = 0; i < 5; i++) {
    CHECK_OK(wh_endpoint_rotate_secret(reg, ids[i], secret, 0));
    CHECK_OK(wh_endpoint_set_header(reg, ids[i], "X-Api-Token", "HeaderValueMarker-123"));
  }
  char proxy[128];
  snprintf(proxy, sizeof proxy, "http://user:ProxyPassMarker@127.0.0.1:%u", rcv_refused_port());
  CHECK_OK(wh_endpoint_set_str(reg, proxied, WH_EP_PROXY, proxy));
  rcv_script_reply(R, "/hook/PathMarker/bad", 500, "X-Reply: ResponseBodyMarker", "ResponseBodyMarker: no");
  rcv_script_reply(R, "/hook/PathMarker/gone", 410, NULL, "ResponseBodyMarker gone");

  h_log log;
  h_log_init(&log);
  logbook b;
  book_init(&b);
  wh_dispatcher *d = h_dispatcher(reg, &log, "0.02,0.02");
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_MIN_REQUESTS, 3);
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_FAILURE_PCT, 50);
  wh_dispatcher_set_int(d, WH_OPT_BREAKER_COOLDOWN_MS, 100);
  CHECK_OK(wh_dispatcher_on_log(d, WH_LOG_DEBUG, on_log, &b));
  CHECK_OK(wh_dispatcher_start(d));
  for (int i = 0; i < 6; i++) {
    wh_event *ev = NULL;
    wh_event_new(&ev, "people", "CREATE");
    wh_event_set_resource_json(ev, "{\"note\":\"PayloadMarker\",\"ssn\":\"PayloadMarker-000\"}");
    wh_event_set_tenant_id(ev, "acme");
    wh_event_set_user_id(ev, "PayloadMarker-user");
    CHECK_OK(wh_dispatcher_emit(d, ev, NULL, 0));
  }
  CHECK(h_wait(&log, bad, WH_FAILED, 6, 30000));
  CHECK(h_wait(&log, proxied, WH_FAILED, 6, 30000));
  CHECK_OK(wh_endpoint_send_test(acme, bad, NULL, 0));
  CHECK(h_wait(&log, bad, WH_FAILED, 7, 30000));
  CHECK_OK(wh_dispatcher_drain(d, 20000));
  wh_dispatcher_free(d);

  printf("no_secrets: %d log messages\n", b.n);
  if (getenv("WH_TEST_DUMP"))
    dump(&b);
  CHECK(b.n > 20);
  /* The run did say what happened (so the scan below is not of silence). */
  CHECK(level_of(&b, "(\"gone\") disabled: 410 Gone", gone) == WH_LOG_WARN);
  CHECK(level_of(&b, "retries given up", proxied) == WH_LOG_WARN);
  CHECK(level_of(&b, "circuit breaker opened", bad) == WH_LOG_WARN);
  CHECK(level_of(&b, "test event", bad) == WH_LOG_INFO);
  for (int i = 0; i < b.n; i++)
    for (size_t k = 0; k < sizeof MARKERS / sizeof MARKERS[0]; k++)
      if (strstr(b.text[i], MARKERS[k])) {
        fprintf(stderr, "log message carries \"%s\": %s\n", MARKERS[k], b.text[i]);
        CHECK(0);
      }
  wh_registry_free(acme);
  wh_registry_free(reg);
  h_log_free(&log);
  book_free(&b);
}

int main(void)
{
  if (rcv_start(&R, 0) != 0) {
    fprintf(stderr, "cannot start the receiver\n");
    return 1;
  }
  levels(WH_LOG_DEBUG);
  levels(WH_LOG_WARN);
  levels(WH_LOG_ERROR);
  detach_and_errors();
  store_errors();
  no_secrets();
  rcv_free(R);
  return check_done("test_logs");
}
