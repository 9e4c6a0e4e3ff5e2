/* Per-endpoint delivery settings (API-1.1 section 5), but for ordering (see
   test_ordering.c): validation and the JSON, kept by every store; the retry
   schedule and its "" (one attempt, not even the immediate retry); the
   timeout; the rate limit, measured; proxies (plain HTTP and CONNECT) with
   the network policy applied to the destination before the proxy; and mutual
   TLS against a server that requires a client certificate. Everything on
   127.0.0.1: the proxy answers for other destinations itself. */
#include <webhook/webhook.h>

#include "proxy.h"
#include "receiver.h"
#include "support/check.h"
#include "support/harness.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static rcv *R;
static char dir[256];

static cJSON *endpoint(wh_registry *reg, const char *id)
{
  char *s = NULL;
  CHECK_OK(wh_endpoint_get_json(reg, id, &s));
  cJSON *j = s ? cJSON_Parse(s) : NULL;
  wh_free(s);
  return j;
}

static cJSON *settings_of(cJSON *ep) { return cJSON_GetObjectItem(ep, "settings"); }

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static int run(const char *cmd)
{
  char full[4096];
  snprintf(full, sizeof full, "cd '%s' && %s >/dev/null 2>&1", dir, cmd);
  return system(full);
}

/* A CA, a server certificate for 127.0.0.1 and a client certificate it signed
   (client.pem: certificate and key), made with the openssl command. */
static int make_certs(void)
{
  return run("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca") ||
         run("openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost") ||
         run("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > san.ext && openssl x509 -req -in server.csr"
             " -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext") ||
         run("openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=casebook-client") ||
         run("openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.crt -days 2") ||
         run("cat client.crt client.key > client.pem && cp client.crt only-cert.pem &&"
             " cat client.crt server.key > mismatched.pem && cat client.key > only-key.pem");
}

/* ---- validation, the JSON, the stores ---------------------------------------------------- */

static void validation_and_json(const char *store)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  char id[WH_ID_MAX], cert[512];
  CHECK_OK(wh_endpoint_add(reg, "settings", "https://crm.example/hook", NULL, id, sizeof id));
  cJSON *j = endpoint(reg, id);
  CHECK_INT(cJSON_GetArraySize(settings_of(j)), 0); /* nothing set: an empty object */
  cJSON_Delete(j);

  /* Bad values: a clear error, nothing changed. */
  CHECK_ERR(wh_endpoint_set_int(reg, id, WH_EP_RATE_LIMIT, -1), WH_EINVAL, "WH_EP_RATE_LIMIT");
  CHECK_ERR(wh_endpoint_set_int(reg, id, WH_EP_RATE_LIMIT, 100000000), WH_EINVAL, "WH_EP_RATE_LIMIT");
  CHECK_ERR(wh_endpoint_set_int(reg, id, WH_EP_TIMEOUT_MS, 999), WH_EINVAL, "WH_EP_TIMEOUT_MS");
  CHECK_ERR(wh_endpoint_set_int(reg, id, WH_EP_TIMEOUT_MS, 30001), WH_EINVAL, "WH_EP_TIMEOUT_MS");
  CHECK_ERR(wh_endpoint_set_int(reg, id, WH_EP_TIMEOUT_MS, -5), WH_EINVAL, "WH_EP_TIMEOUT_MS");
  CHECK_ERR(wh_endpoint_set_int(reg, id, WH_EP_ORDERED, 2), WH_EINVAL, "WH_EP_ORDERED");
  CHECK_ERR(wh_endpoint_set_int(reg, id, 99, 1), WH_EINVAL, "no such setting");
  CHECK_ERR(wh_endpoint_set_int(reg, id, WH_EP_PROXY, 1), WH_EINVAL, "takes text");
  CHECK_ERR(wh_endpoint_set_str(reg, id, WH_EP_RATE_LIMIT, "5"), WH_EINVAL, "takes a number");
  CHECK_ERR(wh_endpoint_set_str(reg, id, WH_EP_RETRY_SCHEDULE, "5,x"), WH_EINVAL, "retry schedule");
  CHECK_ERR(wh_endpoint_set_str(reg, id, WH_EP_RETRY_SCHEDULE, "-1"), WH_EINVAL, "retry schedule");
  CHECK_ERR(wh_endpoint_set_str(reg, id, WH_EP_PROXY, "socks5://127.0.0.1:1080"), WH_EINVAL, "http://host:port");
  CHECK_ERR(wh_endpoint_set_str(reg, id, WH_EP_PROXY, "http://proxy.example"), WH_EINVAL, "port");
  CHECK_ERR(wh_endpoint_set_str(reg, id, WH_EP_PROXY, "http://proxy.example:3128/path"), WH_EINVAL, "no path");
  path_in(cert, sizeof cert, "does-not-exist.pem");
  CHECK_ERR(wh_endpoint_set_str(reg, id, WH_EP_CLIENT_CERT, cert), WH_EINVAL, "cannot read it");
  path_in(cert, sizeof cert, "only-key.pem");
  CHECK_ERR(wh_endpoint_set_str(reg, id, WH_EP_CLIENT_CERT, cert), WH_EINVAL, "no PEM certificate");
  path_in(cert, sizeof cert, "only-cert.pem");
  CHECK_ERR(wh_endpoint_set_str(reg, id, WH_EP_CLIENT_CERT, cert), WH_EINVAL, "private key");
  path_in(cert, sizeof cert, "mismatched.pem");
  CHECK_ERR(wh_endpoint_set_str(reg, id, WH_EP_CLIENT_CERT, cert), WH_EINVAL, "does not belong");
  CHECK_ERR(wh_endpoint_set_int(reg, "ep_nope", WH_EP_RATE_LIMIT, 5), WH_ENOTFOUND, "no such endpoint");
  j = endpoint(reg, id);
  CHECK_INT(cJSON_GetArraySize(settings_of(j)), 0);
  cJSON_Delete(j);

  /* Good values, all in the JSON; the proxy's password and the key never are. */
  path_in(cert, sizeof cert, "client.pem");
  CHECK_OK(wh_endpoint_set_int(reg, id, WH_EP_ORDERED, 1));
  CHECK_OK(wh_endpoint_set_int(reg, id, WH_EP_RATE_LIMIT, 25));
  CHECK_OK(wh_endpoint_set_int(reg, id, WH_EP_TIMEOUT_MS, 5000));
  CHECK_OK(wh_endpoint_set_str(reg, id, WH_EP_RETRY_SCHEDULE, "1,2.5"));
  CHECK_OK(wh_endpoint_set_str(reg, id, WH_EP_PROXY, "http://relay:s3cr3t@proxy.example:3128"));
  CHECK_OK(wh_endpoint_set_str(reg, id, WH_EP_CLIENT_CERT, cert));
  for (int round = 0; round < 2; round++) {
    j = endpoint(reg, id);
    cJSON *st = settings_of(j);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(st, "ordered")));
    CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(st, "rate_limit")), 25);
    CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(st, "timeout_ms")), 5000);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(st, "retry_schedule")), "1,2.5");
    const char *proxy = cJSON_GetStringValue(cJSON_GetObjectItem(st, "proxy"));
    CHECK(proxy && strstr(proxy, "proxy.example:3128") && strstr(proxy, "relay") && !strstr(proxy, "s3cr3t"));
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(st, "client_cert")), cert);
    char *text = cJSON_PrintUnformatted(j);
    CHECK(text && !strstr(text, "s3cr3t") && !strstr(text, "PRIVATE KEY"));
    free(text);
    cJSON_Delete(j);
    if (round == 0 && strcmp(store, "memory:") != 0) {
      /* Kept by the store: the same after a reopen. */
      wh_registry_free(reg);
      CHECK_OK(wh_registry_open(&reg, store));
    }
  }
  /* Cleared again: NULL for text, 0 for numbers. */
  CHECK_OK(wh_endpoint_set_int(reg, id, WH_EP_ORDERED, 0));
  CHECK_OK(wh_endpoint_set_int(reg, id, WH_EP_RATE_LIMIT, 0));
  CHECK_OK(wh_endpoint_set_int(reg, id, WH_EP_TIMEOUT_MS, 0));
  CHECK_OK(wh_endpoint_set_str(reg, id, WH_EP_RETRY_SCHEDULE, NULL));
  CHECK_OK(wh_endpoint_set_str(reg, id, WH_EP_PROXY, NULL));
  CHECK_OK(wh_endpoint_set_str(reg, id, WH_EP_CLIENT_CERT, NULL));
  j = endpoint(reg, id);
  CHECK_INT(cJSON_GetArraySize(settings_of(j)), 0);
  cJSON_Delete(j);
  /* "" is a schedule of its own (one attempt), not "unset". */
  CHECK_OK(wh_endpoint_set_str(reg, id, WH_EP_RETRY_SCHEDULE, ""));
  j = endpoint(reg, id);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(settings_of(j), "retry_schedule")), "");
  cJSON_Delete(j);
  /* Dispatcher-wide proxy option: the same rules. */
  wh_dispatcher *d;
  CHECK_OK(wh_dispatcher_new(&d, reg));
  CHECK_ERR(wh_dispatcher_set_str(d, WH_OPT_PROXY, "ftp://x:1"), WH_EINVAL, "WH_OPT_PROXY");
  CHECK_ERR(wh_dispatcher_set_int(d, WH_OPT_PROXY, 1), WH_EINVAL, "takes text");
  CHECK_OK(wh_dispatcher_set_str(d, WH_OPT_PROXY, "http://127.0.0.1:3128"));
  CHECK_OK(wh_dispatcher_set_str(d, WH_OPT_PROXY, NULL));
  wh_dispatcher_free(d);
  wh_registry_free(reg);
}

/* ---- retry schedules: "" is one attempt -------------------------------------------------------- */

static void schedules(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char refused[128], url[128], a[WH_ID_MAX], b[WH_ID_MAX], c[WH_ID_MAX];
  rcv_loopback_url(0, rcv_refused_port(), "/none", refused, sizeof refused);
  CHECK_OK(wh_endpoint_add(reg, "refused", refused, NULL, a, sizeof a));
  CHECK_OK(wh_endpoint_add(reg, "own one attempt", refused, NULL, b, sizeof b));
  CHECK_OK(wh_endpoint_set_str(reg, b, WH_EP_RETRY_SCHEDULE, ""));
  rcv_script_reply(R, "/sched/c", 503, NULL, "busy");
  CHECK_OK(wh_endpoint_add(reg, "own quick schedule", rcv_url(R, "/sched/c", url, sizeof url), NULL, c, sizeof c));
  CHECK_OK(wh_endpoint_set_str(reg, c, WH_EP_RETRY_SCHEDULE, "0.1,0.1"));

  /* The dispatcher's schedule "": a fast connection failure is not retried. */
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, "");
  CHECK_OK(wh_endpoint_set_enabled(reg, b, 0));
  CHECK_OK(wh_endpoint_set_enabled(reg, c, 0));
  CHECK_OK(wh_dispatcher_start(d));
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&log, a, WH_FAILED, 1, 5000));
  h_sleep_ms(300);
  CHECK_INT(h_count(&log, a, 0), 1);
  CHECK_OK(wh_dispatcher_stop(d, 2000));
  wh_dispatcher_free(d);

  /* An endpoint's own schedule wins over the dispatcher's (3600 s here). */
  CHECK_OK(wh_endpoint_set_enabled(reg, a, 0));
  CHECK_OK(wh_endpoint_set_enabled(reg, b, 1));
  CHECK_OK(wh_endpoint_set_enabled(reg, c, 1));
  d = h_dispatcher(reg, &log, "3600");
  CHECK_OK(wh_dispatcher_start(d));
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&log, b, WH_FAILED, 1, 5000));
  CHECK(h_wait(&log, c, WH_FAILED, 1, 5000));
  h_sleep_ms(300);
  CHECK_INT(h_count(&log, b, 0), 1);                   /* "": one attempt */
  CHECK_INT(h_count(&log, c, 0), 3);                   /* "0.1,0.1": three attempts */
  CHECK_INT(rcv_count_path(R, "/sched/c"), 3);
  CHECK_OK(wh_dispatcher_stop(d, 2000));
  wh_dispatcher_free(d);
  rcv_script_clear(R, "/sched/c");
  wh_registry_free(reg);
  h_log_free(&log);
}

/* ---- the timeout ---------------------------------------------------------------------------- */

static void timeout_override(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char url[128], id[WH_ID_MAX];
  rcv_script_stall(R, "/slow", 0); /* never answers */
  CHECK_OK(wh_endpoint_add(reg, "slow", rcv_url(R, "/slow", url, sizeof url), NULL, id, sizeof id));
  CHECK_OK(wh_endpoint_set_int(reg, id, WH_EP_TIMEOUT_MS, 1000));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, "");
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_TIMEOUT_MS, 15000));
  CHECK_OK(wh_dispatcher_start(d));
  int64_t t0 = h_mono_ms();
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&log, id, WH_FAILED, 1, 12000));
  int64_t took = h_mono_ms() - t0;
  h_result r;
  CHECK(h_get(&log, id, 0, &r));
  CHECK(strstr(r.error, "timeout after") != NULL);
  CHECK(took >= 900 && took < 10000); /* the endpoint's 1 s, not the dispatcher's 15 s */
  wh_dispatcher_free(d);
  rcv_script_clear(R, "/slow");
  wh_registry_free(reg);
  h_log_free(&log);
}

/* ---- the rate limit, measured --------------------------------------------------------------- */

static void rate_limit(void)
{
  enum { RATE = 20, EVENTS = 240 };
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char url[128], id[WH_ID_MAX], other[WH_ID_MAX];
  CHECK_OK(wh_endpoint_add(reg, "limited", rcv_url(R, "/rate", url, sizeof url), NULL, id, sizeof id));
  CHECK_OK(wh_endpoint_subscribe(reg, id, "people.*"));
  CHECK_OK(wh_endpoint_set_int(reg, id, WH_EP_RATE_LIMIT, RATE));
  CHECK_OK(wh_endpoint_add(reg, "free", rcv_url(R, "/rate-free", url, sizeof url), NULL, other, sizeof other));
  CHECK_OK(wh_endpoint_subscribe(reg, other, "cases.*"));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_start(d));
  size_t before = rcv_count(R);
  int64_t t0 = h_mono_ms();
  for (int i = 0; i < EVENTS; i++)
    CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  /* Another endpoint is not slowed down by the backlog. */
  for (int i = 0; i < 50; i++)
    CHECK_OK(wh_emit(h_person_event("cases", NULL)));
  CHECK(h_wait(&log, other, WH_DELIVERED, 50, 8000)); /* behind the backlog it would take 12 s */
  /* Meanwhile the limited one kept to its rate: its burst (RATE / 10) plus
     RATE per second so far. */
  size_t so_far = h_count(&log, id, WH_DELIVERED);
  int64_t el = h_mono_ms() - t0;
  CHECK(so_far <= (size_t)(RATE / 10 + 1 + RATE * el / 1000));
  /* The backlog waits, it is not failed; drain waits for it too. */
  CHECK_OK(wh_dispatcher_drain(d, 30000));
  int64_t took = h_mono_ms() - t0;
  CHECK_INT(h_count(&log, id, WH_DELIVERED), EVENTS);
  CHECK_INT(h_count(&log, id, WH_FAILED) + h_count(&log, id, WH_RETRYING), 0);
  /* The rate the receiver saw, between its first and last request. */
  int64_t first = 0, last = 0;
  size_t seen = 0;
  for (size_t i = before; i < rcv_count(R); i++) {
    const rcv_request *q = rcv_request_at(R, i);
    if (!q || strcmp(q->path, "/rate") != 0)
      continue;
    seen++;
    if (!first || q->mono_ms < first)
      first = q->mono_ms;
    if (q->mono_ms > last)
      last = q->mono_ms;
  }
  double rate = last > first ? (double)(EVENTS - 1) * 1000.0 / (double)(last - first) : 0;
  printf("rate limit %d/s: %d deliveries in %.1f s, measured %.2f/s\n", RATE, EVENTS, (double)took / 1000, rate);
  CHECK_INT(seen, EVENTS);
  CHECK(rate >= RATE * 0.9 && rate <= RATE * 1.1);
  CHECK(took >= (EVENTS - RATE / 10) * 1000 / RATE - 500);
  CHECK_OK(wh_dispatcher_stop(d, 2000));
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

/* ---- proxies -------------------------------------------------------------------------------- */

/* One event to one endpoint through the given proxy setup; the first result. */
static int through(wh_registry *reg, const char *ep_id, const char *opt_proxy, int allow_private, h_result *r)
{
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, "");
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, allow_private));
  if (opt_proxy)
    CHECK_OK(wh_dispatcher_set_str(d, WH_OPT_PROXY, opt_proxy));
  char ca[512];
  path_in(ca, sizeof ca, "ca.pem");
  CHECK_OK(wh_dispatcher_set_str(d, WH_OPT_CA_FILE, ca));
  CHECK_OK(wh_dispatcher_start(d));
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  int got = h_wait(&log, ep_id, 0, 1, 10000);
  CHECK(got);
  if (got)
    h_get(&log, ep_id, 0, r);
  wh_dispatcher_free(d);
  h_log_free(&log);
  return got ? r->outcome : 0;
}

static int seen_by_proxy(px *p, size_t from, const char *needle)
{
  char line[2200];
  for (size_t i = from; px_request(p, i, line, sizeof line); i++)
    if (strstr(line, needle))
      return 1;
  return 0;
}

static void proxies(tls *server)
{
  px *p;
  CHECK(px_start(&p) == 0);
  char proxy[64], url[256], id[WH_ID_MAX], want[300];
  snprintf(proxy, sizeof proxy, "http://127.0.0.1:%u", px_port(p));
  h_result r;

  /* Plain HTTP through the dispatcher's proxy (WH_OPT_PROXY). */
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  rcv_url(R, "/via-proxy", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "plain", url, NULL, id, sizeof id));
  size_t from = px_count(p), before = rcv_count_path(R, "/via-proxy");
  CHECK_INT(through(reg, id, proxy, 1, &r), WH_DELIVERED);
  snprintf(want, sizeof want, "POST %s", url);
  CHECK(seen_by_proxy(p, from, want));
  CHECK_INT(rcv_count_path(R, "/via-proxy") - before, 1);
  const rcv_request *q = rcv_find_header(R, "webhook-id", r.msg);
  CHECK(q && rcv_header_get(q, "webhook-signature") != NULL);
  wh_registry_free(reg);

  /* HTTPS through the endpoint's own proxy: a CONNECT tunnel, TLS end to end,
     the client certificate too. */
  CHECK_OK(wh_registry_open(&reg, NULL));
  snprintf(url, sizeof url, "https://127.0.0.1:%u/tunnel", tls_port(server));
  CHECK_OK(wh_endpoint_add(reg, "tunnel", url, NULL, id, sizeof id));
  CHECK_OK(wh_endpoint_set_str(reg, id, WH_EP_PROXY, proxy));
  char cert[512];
  path_in(cert, sizeof cert, "client.pem");
  CHECK_OK(wh_endpoint_set_str(reg, id, WH_EP_CLIENT_CERT, cert));
  from = px_count(p);
  size_t tls_before = tls_requests(server);
  CHECK_INT(through(reg, id, NULL, 1, &r), WH_DELIVERED);
  snprintf(want, sizeof want, "CONNECT 127.0.0.1:%u", tls_port(server));
  CHECK(seen_by_proxy(p, from, want));
  CHECK_INT(tls_requests(server) - tls_before, 1);
  wh_registry_free(reg);

  /* The policy with the operator's proxy on loopback and private networks
     refused: the destination is judged before the proxy. */
  CHECK_OK(wh_registry_open(&reg, NULL));
  rcv_url(R, "/private", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "private literal", url, NULL, id, sizeof id));
  from = px_count(p);
  CHECK_INT(through(reg, id, proxy, 0, &r), WH_FAILED);
  CHECK(strstr(r.error, "network policy") && strstr(r.error, "before the proxy"));
  CHECK_INT(px_count(p) - from, 0); /* the proxy never saw it */
  CHECK_OK(wh_endpoint_remove(reg, id));
  /* A name: resolved here first ("localhost" is loopback: refused). */
  CHECK_OK(wh_endpoint_add(reg, "private name", "http://localhost:9/x", NULL, id, sizeof id));
  CHECK_INT(through(reg, id, proxy, 0, &r), WH_FAILED);
  CHECK(strstr(r.error, "resolves to") != NULL);
  CHECK_INT(px_count(p) - from, 0);
  CHECK_OK(wh_endpoint_remove(reg, id));
  /* A public address passes and goes to the proxy (which answers itself: no
     traffic leaves the machine). */
  CHECK_OK(wh_endpoint_add(reg, "public", "http://192.0.32.10/hook", NULL, id, sizeof id));
  CHECK_INT(through(reg, id, proxy, 0, &r), WH_DELIVERED);
  CHECK(seen_by_proxy(p, from, "POST http://192.0.32.10/hook"));
  /* An endpoint's own proxy is judged like a destination: on loopback, refused. */
  CHECK_OK(wh_endpoint_set_str(reg, id, WH_EP_PROXY, proxy));
  from = px_count(p);
  CHECK_INT(through(reg, id, NULL, 0, &r), WH_FAILED);
  CHECK(strstr(r.error, "network policy") != NULL);
  CHECK_INT(px_count(p) - from, 0);
  wh_registry_free(reg);

  /* No proxy from the environment: only what is configured. */
  setenv("http_proxy", proxy, 1);
  setenv("HTTP_PROXY", proxy, 1);
  CHECK_OK(wh_registry_open(&reg, NULL));
  rcv_url(R, "/direct", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "direct", url, NULL, id, sizeof id));
  from = px_count(p);
  CHECK_INT(through(reg, id, NULL, 1, &r), WH_DELIVERED);
  CHECK_INT(px_count(p) - from, 0);
  unsetenv("http_proxy");
  unsetenv("HTTP_PROXY");
  wh_registry_free(reg);
  px_free(p);
}

/* ---- mutual TLS ------------------------------------------------------------------------------- */

static void mutual_tls(tls *server)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char url[128], id[WH_ID_MAX], cert[512], cn[256];
  snprintf(url, sizeof url, "https://127.0.0.1:%u/mtls", tls_port(server));
  CHECK_OK(wh_endpoint_add(reg, "mtls", url, NULL, id, sizeof id));
  h_result r;
  /* Without a certificate the server refuses the handshake. */
  size_t refused = tls_refused(server), answered = tls_requests(server);
  CHECK_INT(through(reg, id, NULL, 1, &r), WH_FAILED);
  CHECK_INT(r.status, 0);
  CHECK(tls_refused(server) > refused);
  CHECK_INT(tls_requests(server) - answered, 0);
  /* With it: delivered, and the server saw who we are. */
  path_in(cert, sizeof cert, "client.pem");
  CHECK_OK(wh_endpoint_set_str(reg, id, WH_EP_CLIENT_CERT, cert));
  CHECK_INT(through(reg, id, NULL, 1, &r), WH_DELIVERED);
  CHECK_INT(r.status, 204);
  CHECK_INT(tls_requests(server) - answered, 1);
  CHECK(tls_last_client(server, cn, sizeof cn));
  CHECK_STR(cn, "casebook-client");

  /* TLS sessions are resumed on new connections: the server closes after each
     request, and the later connections skip the full handshake. */
  tls_close_after(server, 1);
  size_t resumed = tls_resumed(server);
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, "");
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_MAX_PER_ENDPOINT, 1));
  char ca[512];
  path_in(ca, sizeof ca, "ca.pem");
  CHECK_OK(wh_dispatcher_set_str(d, WH_OPT_CA_FILE, ca));
  CHECK_OK(wh_dispatcher_start(d));
  for (int i = 0; i < 4; i++)
    CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&log, id, WH_DELIVERED, 4, 10000));
  for (size_t i = 0; i < h_count(&log, id, 0); i++) {
    h_result r;
    if (h_get(&log, id, i, &r) && r.outcome != WH_DELIVERED)
      fprintf(stderr, "  attempt: %s\n", r.error);
  }
  printf("TLS: %zu of 4 connections resumed a session\n", tls_resumed(server) - resumed);
  CHECK(tls_resumed(server) - resumed >= 3);
  wh_dispatcher_free(d);
  h_log_free(&log);
  tls_close_after(server, 0);
  wh_registry_free(reg);
}

int main(void)
{
  snprintf(dir, sizeof dir, "/tmp/wh-settings-XXXXXX");
  if (!mkdtemp(dir) || rcv_start(&R, 0) != 0)
    return 1;
  if (make_certs() != 0) {
    fprintf(stderr, "the openssl command could not make the test certificates\n");
    return 1;
  }
  char store[512], cert[512], key[512], ca[512];
  validation_and_json("memory:");
  snprintf(store, sizeof store, "sqlite:%s/settings.db", dir);
  validation_and_json(store);
  const char *pg = getenv("WH_TEST_PG");
  if (pg && *pg) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "psql -q -d '%s' -c 'DROP SCHEMA IF EXISTS webhook CASCADE' >/dev/null 2>&1", pg);
    CHECK_INT(system(cmd), 0);
    validation_and_json(pg);
  }
  schedules();
  timeout_override();
  path_in(cert, sizeof cert, "server.pem");
  path_in(key, sizeof key, "server.key");
  path_in(ca, sizeof ca, "ca.pem");
  tls *server = NULL;
  CHECK(tls_start(&server, cert, key, ca) == 0);
  if (server) {
    mutual_tls(server);
    proxies(server);
    tls_free(server);
  }
  rate_limit();
  rcv_free(R);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return check_done("settings");
}
