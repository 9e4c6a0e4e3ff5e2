/*
 * wh_admin_handle, called as a host's HTTP server would: every route on the
 * root and on tenant views, the validation of whole requests (a refused field
 * changes nothing), the error shape and statuses, and hostile paths, query
 * strings and bodies. Deliveries go to a loopback receiver.
 * (The HTTP run against docs/openapi.yaml is tests/admin/openapi_check.mjs.)
 */
#include "support/check.h"
#include "support/harness.h"
#include "support/receiver.h"

#include <cjson/cJSON.h>
#include <webhook/webhook.h>

#ifdef WH_TEST_WITH_PG
#include <libpq-fe.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The last answer. */
static int status;
static cJSON *doc;
static char *text;

static int call(wh_registry *reg, wh_dispatcher *d, const char *method, const char *path, const char *body)
{
  cJSON_Delete(doc);
  wh_free(text);
  doc = NULL;
  text = NULL;
  status = 0;
  int rc = wh_admin_handle(reg, d, method, path, body, body ? strlen(body) : 0, &status, &text);
  CHECK_OK(rc);
  if (rc == WH_OK && text && *text) {
    doc = cJSON_Parse(text);
    if (!doc)
      fprintf(stderr, "not JSON: %s\n", text);
    CHECK(doc != NULL);
  }
  return status;
}

static const char *str(const cJSON *o, const char *key) { return cJSON_GetStringValue(cJSON_GetObjectItem(o, key)); }
static const char *err_code(void) { return str(cJSON_GetObjectItem(doc, "error"), "code"); }
static const char *err_field(void) { return str(cJSON_GetObjectItem(doc, "error"), "field"); }
static const char *err_message(void) { return str(cJSON_GetObjectItem(doc, "error"), "message"); }

#define EXPECT(st, code)                                                                              \
  do {                                                                                                \
    CHECK_INT(status, st);                                                                            \
    if (code) {                                                                                       \
      CHECK_STR(err_code(), code);                                                                    \
      CHECK(err_message() && *err_message());                                                         \
    }                                                                                                 \
  } while (0)

static int count_endpoints(wh_registry *reg)
{
  char *json;
  CHECK_OK(wh_endpoint_list_json(reg, &json));
  cJSON *arr = cJSON_Parse(json);
  int n = cJSON_GetArraySize(arr);
  cJSON_Delete(arr);
  wh_free(json);
  return n;
}

/* The answer equals wh_endpoint_get_json of the same endpoint. */
static void same_as_library(wh_registry *reg, const char *id)
{
  char *json;
  CHECK_OK(wh_endpoint_get_json(reg, id, &json));
  CHECK_STR(text, json);
  wh_free(json);
}

static char ep_id[WH_ID_MAX];

static void create_and_read(wh_registry *reg)
{
  call(reg, NULL, "POST", "/endpoints",
       "{\"name\":\"CRM people sync\",\"url\":\"https://crm.example.com/hooks\",\"description\":\"people\","
       "\"filters\":[\"people.*\",\"people.*\",\"cases.CREATE\"],\"headers\":{\"X-Env\":\"prod\"}}");
  EXPECT(201, NULL);
  snprintf(ep_id, sizeof ep_id, "%s", str(doc, "id") ? str(doc, "id") : "");
  CHECK_STR(str(doc, "name"), "CRM people sync");
  CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "filters")), 2);
  CHECK_STR(str(cJSON_GetObjectItem(doc, "headers"), "X-Env"), "prod");
  CHECK(cJSON_IsTrue(cJSON_GetObjectItem(doc, "enabled")));
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(doc, "tenant_id")));
  same_as_library(reg, ep_id);

  char path[128];
  snprintf(path, sizeof path, "/endpoints/%s", ep_id);
  call(reg, NULL, "GET", path, NULL);
  EXPECT(200, NULL);
  same_as_library(reg, ep_id);
  call(reg, NULL, "GET", "/endpoints", NULL);
  EXPECT(200, NULL);
  CHECK(cJSON_IsArray(doc) && cJSON_GetArraySize(doc) == 1);

  /* Created disabled stays disabled. */
  call(reg, NULL, "POST", "/endpoints", "{\"name\":\"off\",\"url\":\"https://off.example.com/\",\"enabled\":false}");
  EXPECT(201, NULL);
  CHECK(cJSON_IsFalse(cJSON_GetObjectItem(doc, "enabled")));
  snprintf(path, sizeof path, "/endpoints/%s", str(doc, "id"));
  call(reg, NULL, "DELETE", path, NULL);
  EXPECT(204, NULL);
  CHECK_STR(text, "");
  call(reg, NULL, "GET", path, NULL);
  EXPECT(404, "not_found");
}

/* A refused field: the answer names it, and nothing is created. */
static void refused_create(wh_registry *reg)
{
  static const struct {
    const char *body, *field, *needle;
    int status;
  } cases[] = {
    {"{\"url\":\"https://a.example.com/\"}", "name", "required", 422},
    {"{\"name\":\"x\"}", "url", "required", 422},
    {"{\"name\":\"x\",\"url\":\"ftp://a.example.com/\"}", "url", "scheme must be http or https", 422},
    {"{\"name\":\"x\",\"url\":\"https://user:pw@a.example.com/\"}", "url", "credentials", 422},
    {"{\"name\":\"\",\"url\":\"https://a.example.com/\"}", "name", "empty", 422},
    {"{\"name\":7,\"url\":\"https://a.example.com/\"}", "name", "string", 422},
    {"{\"name\":\"x\",\"url\":\"https://a.example.com/\",\"filters\":[\"people\"]}", "filters", "filter", 422},
    {"{\"name\":\"x\",\"url\":\"https://a.example.com/\",\"filters\":\"people.*\"}", "filters", "array", 422},
    {"{\"name\":\"x\",\"url\":\"https://a.example.com/\",\"headers\":{\"Host\":\"h\"}}", "headers", "Host", 422},
    {"{\"name\":\"x\",\"url\":\"https://a.example.com/\",\"headers\":{\"X-A\":\"1\",\"x-a\":\"2\"}}", "headers",
     "twice", 422},
    {"{\"name\":\"x\",\"url\":\"https://a.example.com/\",\"headers\":{\"X-A\":\"a\\r\\nb\"}}", "headers", "control",
     422},
    {"{\"name\":\"x\",\"url\":\"https://a.example.com/\",\"enabled\":\"yes\"}", "enabled", "true or false", 422},
    {"{\"name\":\"x\",\"url\":\"https://a.example.com/\",\"colour\":\"red\"}", "colour", "unknown field", 422},
    {"{\"name\":\"x\",\"url\":\"https://a.example.com/\",\"id\":\"ep_1\"}", "id", "unknown field", 422},
    {"{\"name\":\"CRM people sync\",\"url\":\"https://a.example.com/\"}", "name", "already registered", 409},
  };
  int before = count_endpoints(reg);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    call(reg, NULL, "POST", "/endpoints", cases[i].body);
    CHECK_INT(status, cases[i].status);
    CHECK_STR(err_field(), cases[i].field);
    if (!err_message() || !strstr(err_message(), cases[i].needle))
      fprintf(stderr, "case %zu: message \"%s\" lacks \"%s\"\n", i, err_message() ? err_message() : "", cases[i].needle);
    CHECK(err_message() && strstr(err_message(), cases[i].needle));
    CHECK_INT(count_endpoints(reg), before);
  }
  /* Malformed bodies: 400 bad_request. */
  static const char *const bad[] = {"", "{", "[1]", "{\"name\":\"x\",}", "{} x", "{\"name\":\"a\\u0000b\"}",
                                    "{\"name\":\"x\",\"name\":\"y\",\"url\":\"https://a.example.com/\"}",
                                    "\xff{}", "{\"name\":\"\x01\"}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    call(reg, NULL, "POST", "/endpoints", bad[i]);
    EXPECT(400, "bad_request");
  }
  CHECK_INT(count_endpoints(reg), before);
  /* Over the size limit: 413, before reading it. */
  size_t big = 1024 * 1024 + 1;
  char *huge = malloc(big);
  memset(huge, ' ', big);
  char *out = NULL;
  CHECK_OK(wh_admin_handle(reg, NULL, "POST", "/endpoints", huge, big, &status, &out));
  CHECK_INT(status, 413);
  wh_free(out);
  free(huge);
}

static void patch(wh_registry *reg)
{
  char path[128];
  snprintf(path, sizeof path, "/endpoints/%s", ep_id);
  call(reg, NULL, "PATCH", path,
       "{\"name\":\"CRM\",\"description\":null,\"filters\":[\"people.*\",\"people.DELETE\"],"
       "\"headers\":{\"X-Env\":null,\"X-Team\":\"crm\"},\"enabled\":false}");
  EXPECT(200, NULL);
  same_as_library(reg, ep_id);
  CHECK_STR(str(doc, "name"), "CRM");
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(doc, "description")));
  cJSON *f = cJSON_GetObjectItem(doc, "filters");
  CHECK_INT(cJSON_GetArraySize(f), 2);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(f, 1)), "people.DELETE");
  CHECK(str(cJSON_GetObjectItem(doc, "headers"), "X-Env") == NULL);
  CHECK_STR(str(cJSON_GetObjectItem(doc, "headers"), "X-Team"), "crm");
  CHECK(cJSON_IsFalse(cJSON_GetObjectItem(doc, "enabled")));

  /* One refused field among good ones: nothing changes. */
  char *before;
  CHECK_OK(wh_endpoint_get_json(reg, ep_id, &before));
  call(reg, NULL, "PATCH", path, "{\"name\":\"renamed\",\"url\":\"https://b.example.com/\",\"filters\":[\"bad pattern\"]}");
  EXPECT(422, "invalid_argument");
  CHECK_STR(err_field(), "filters");
  call(reg, NULL, "PATCH", path, "{\"url\":\"https://b.example.com/\",\"enabled\":true,\"name\":\"off2\",\"x\":1}");
  EXPECT(422, "invalid_argument");
  /* 65 headers in all would be one too many. */
  char many[8192] = "{\"url\":\"https://b.example.com/\",\"headers\":{";
  for (int i = 0; i < 64; i++)
    snprintf(many + strlen(many), sizeof many - strlen(many), "%s\"X-H%d\":\"v\"", i ? "," : "", i);
  strcat(many, "}}");
  call(reg, NULL, "PATCH", path, many);
  EXPECT(422, "invalid_argument");
  CHECK(err_message() && strstr(err_message(), "64"));
  char *after;
  CHECK_OK(wh_endpoint_get_json(reg, ep_id, &after));
  CHECK_STR(after, before);
  wh_free(after);
  /* Another endpoint's name: 409, nothing changed. */
  call(reg, NULL, "POST", "/endpoints", "{\"name\":\"other\",\"url\":\"https://o.example.com/\"}");
  EXPECT(201, NULL);
  call(reg, NULL, "PATCH", path, "{\"url\":\"https://b.example.com/\",\"name\":\"other\"}");
  EXPECT(409, "already_exists");
  CHECK_STR(err_field(), "name");
  CHECK_OK(wh_endpoint_get_json(reg, ep_id, &after));
  CHECK_STR(after, before);
  wh_free(after);
  wh_free(before);
  /* Its own name is no conflict. */
  call(reg, NULL, "PATCH", path, "{\"name\":\"CRM\",\"enabled\":true}");
  EXPECT(200, NULL);
  call(reg, NULL, "PATCH", path, "");
  EXPECT(400, "bad_request");
  call(reg, NULL, "PATCH", "/endpoints/ep_nope", "{\"name\":\"x\"}");
  EXPECT(404, "not_found");
}

/* Per-endpoint settings: set, cleared with null, refused whole when one is bad. */
static void settings(wh_registry *reg)
{
  char path[128];
  snprintf(path, sizeof path, "/endpoints/%s", ep_id);
  call(reg, NULL, "PATCH", path,
       "{\"settings\":{\"ordered\":true,\"rate_limit\":10,\"timeout_ms\":5000,\"retry_schedule\":\"1,2\"}}");
  EXPECT(200, NULL);
  same_as_library(reg, ep_id);
  cJSON *st = cJSON_GetObjectItem(doc, "settings");
  CHECK(cJSON_IsTrue(cJSON_GetObjectItem(st, "ordered")));
  CHECK_INT((int)cJSON_GetNumberValue(cJSON_GetObjectItem(st, "rate_limit")), 10);
  CHECK_INT((int)cJSON_GetNumberValue(cJSON_GetObjectItem(st, "timeout_ms")), 5000);
  CHECK_STR(str(st, "retry_schedule"), "1,2");
  char *before;
  CHECK_OK(wh_endpoint_get_json(reg, ep_id, &before));
  static const struct {
    const char *body, *field;
  } bad[] = {
    {"{\"name\":\"renamed\",\"settings\":{\"timeout_ms\":50}}", "settings.timeout_ms"},
    {"{\"name\":\"renamed\",\"settings\":{\"rate_limit\":-1}}", "settings.rate_limit"},
    {"{\"name\":\"renamed\",\"settings\":{\"rate_limit\":1.5}}", "settings.rate_limit"},
    {"{\"name\":\"renamed\",\"settings\":{\"ordered\":1}}", "settings.ordered"},
    {"{\"name\":\"renamed\",\"settings\":{\"retry_schedule\":\"soon\"}}", "settings.retry_schedule"},
    {"{\"name\":\"renamed\",\"settings\":{\"client_cert\":\"/nonexistent/cert.pem\"}}", "settings.client_cert"},
    {"{\"name\":\"renamed\",\"settings\":{\"proxy\":\"ftp://p:1\"}}", "settings.proxy"},
    {"{\"name\":\"renamed\",\"settings\":{\"colour\":1}}", "settings"},
    {"{\"name\":\"renamed\",\"settings\":[]}", "settings"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    call(reg, NULL, "PATCH", path, bad[i].body);
    EXPECT(422, "invalid_argument");
    CHECK_STR(err_field(), bad[i].field);
  }
  char *after;
  CHECK_OK(wh_endpoint_get_json(reg, ep_id, &after));
  CHECK_STR(after, before);
  wh_free(after);
  wh_free(before);
  call(reg, NULL, "PATCH", path, "{\"settings\":{\"ordered\":null,\"rate_limit\":null,\"retry_schedule\":null}}");
  EXPECT(200, NULL);
  st = cJSON_GetObjectItem(doc, "settings");
  CHECK_INT(cJSON_GetArraySize(st), 1);
  CHECK_INT((int)cJSON_GetNumberValue(cJSON_GetObjectItem(st, "timeout_ms")), 5000);
  call(reg, NULL, "PATCH", path, "{\"settings\":{\"timeout_ms\":0}}");
  EXPECT(200, NULL);
  CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "settings")), 0);
}

static void secrets(wh_registry *reg)
{
  char path[160], secret[128];
  snprintf(path, sizeof path, "/endpoints/%s/secret", ep_id);
  call(reg, NULL, "GET", path, NULL);
  EXPECT(200, NULL);
  CHECK_OK(wh_endpoint_secret(reg, ep_id, secret, sizeof secret));
  CHECK_STR(str(doc, "secret"), secret);
  snprintf(path, sizeof path, "/endpoints/%s/secret/rotate", ep_id);
  call(reg, NULL, "POST", path, NULL);
  EXPECT(200, NULL);
  CHECK(str(doc, "secret") && strcmp(str(doc, "secret"), secret) != 0);
  /* The old one still signs during the default grace period of a day. */
  char sig[512];
  CHECK_OK(wh_endpoint_signature(reg, ep_id, "msg_x", 1, "{}", 2, sig, sizeof sig));
  CHECK(strchr(sig, ' ') != NULL);
  call(reg, NULL, "POST", path, "{\"secret\":\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\",\"grace_seconds\":0}");
  EXPECT(200, NULL);
  CHECK_STR(str(doc, "secret"), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  call(reg, NULL, "POST", path, "{\"secret\":\"nope\"}");
  EXPECT(422, "invalid_argument");
  CHECK_STR(err_field(), "secret");
  call(reg, NULL, "POST", path, "{\"grace_seconds\":-1}");
  EXPECT(422, "invalid_argument");
  call(reg, NULL, "POST", path, "{\"grace_seconds\":1.5}");
  EXPECT(422, "invalid_argument");
  CHECK_OK(wh_endpoint_secret(reg, ep_id, secret, sizeof secret));
  CHECK_STR(secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
}

/* Paths, methods and query strings that name nothing. */
static void routing(wh_registry *reg)
{
  static const char *const no_route[] = {"", "endpoints", "/", "/endpoint", "/endpoints/", "//endpoints",
                                         "/endpoints/x/y", "/endpoints/x/secret/rotate/now", "/messages",
                                         "/endpoints/%zz", "/endpoints/%00", "/ENDPOINTS"};
  for (size_t i = 0; i < sizeof no_route / sizeof no_route[0]; i++) {
    call(reg, NULL, "GET", no_route[i], NULL);
    EXPECT(404, "no_route");
  }
  char path[160];
  snprintf(path, sizeof path, "/endpoints/%s/secret", ep_id);
  call(reg, NULL, "DELETE", path, NULL);
  EXPECT(405, "no_route");
  CHECK(strstr(err_message(), "GET") != NULL);
  cJSON *allow = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "error"), "allow");
  CHECK(cJSON_GetArraySize(allow) == 1 && strcmp(cJSON_GetStringValue(cJSON_GetArrayItem(allow, 0)), "GET") == 0);
  call(reg, NULL, "PUT", "/endpoints", NULL);
  EXPECT(405, "no_route");
  CHECK(strstr(err_message(), "GET, POST") != NULL);
  call(reg, NULL, "get", "/endpoints", NULL);
  EXPECT(405, "no_route");
  /* Percent-encoded ids are decoded. */
  char enc[200];
  snprintf(enc, sizeof enc, "/endpoints/%%65%s", ep_id + 1);
  call(reg, NULL, "GET", enc, NULL);
  EXPECT(200, NULL);
  /* Query strings: only where a route takes one. */
  call(reg, NULL, "GET", "/endpoints?limit=5", NULL);
  EXPECT(400, "invalid_argument");
  snprintf(path, sizeof path, "/endpoints/%s/failed?since=2024-13-01", ep_id);
  call(reg, NULL, "GET", path, NULL);
  EXPECT(400, "invalid_argument");
  CHECK_STR(err_field(), "since");
  static const char *const bad_q[] = {"limit=0", "limit=1001", "limit=-1", "limit=x", "limit=1&limit=2", "nope=1",
                                      "since=", "since=%zz", "since=2024-02-30", "since=99999999999999999"};
  for (size_t i = 0; i < sizeof bad_q / sizeof bad_q[0]; i++) {
    snprintf(path, sizeof path, "/endpoints/%s/failed?%s", ep_id, bad_q[i]);
    call(reg, NULL, "GET", path, NULL);
    EXPECT(400, "invalid_argument");
  }
  static const char *const good_q[] = {"", "limit=1000", "since=0&limit=1", "since=2024-03-26",
                                       "since=2024-03-26T18:53:16Z", "since=2024-03-26T18:53:16.818%2B02:00", "&&"};
  for (size_t i = 0; i < sizeof good_q / sizeof good_q[0]; i++) {
    snprintf(path, sizeof path, "/endpoints/%s/failed?%s", ep_id, good_q[i]);
    call(reg, NULL, "GET", path, NULL);
    EXPECT(200, NULL);
    CHECK(cJSON_IsArray(doc));
  }
  /* Text from the client comes back as valid JSON (UTF-8), whatever it was. */
  call(reg, NULL, "GET", "/endpoints/\xff\xfe%C3", NULL);
  EXPECT(404, "not_found");
  call(reg, NULL, "\xc3\x28", "/endpoints", NULL);
  EXPECT(405, "no_route");
  /* NULL arguments are the caller's bug: WH_EINVAL, no answer. */
  char *out = (char *)1;
  int st;
  CHECK_ERR(wh_admin_handle(NULL, NULL, "GET", "/endpoints", NULL, 0, &st, &out), WH_EINVAL, "registry");
  CHECK(out == NULL);
  CHECK_ERR(wh_admin_handle(reg, NULL, "GET", NULL, NULL, 0, &st, &out), WH_EINVAL, "path");
  CHECK_ERR(wh_admin_handle(reg, NULL, "GET", "/endpoints", NULL, 3, &st, &out), WH_EINVAL, "body");
}

/* A view sees its own, and answers for the rest exactly as for nothing. */
static void views(wh_registry *reg)
{
  wh_registry *acme, *globex;
  CHECK_OK(wh_registry_open_tenant(&acme, reg, "acme"));
  CHECK_OK(wh_registry_open_tenant(&globex, reg, "globex"));
  call(acme, NULL, "POST", "/endpoints", "{\"name\":\"CRM\",\"url\":\"https://acme.example.com/\"}");
  EXPECT(201, NULL);
  CHECK_STR(str(doc, "tenant_id"), "acme");
  char acme_ep[WH_ID_MAX];
  snprintf(acme_ep, sizeof acme_ep, "%s", str(doc, "id"));
  call(acme, NULL, "GET", "/endpoints", NULL);
  CHECK_INT(cJSON_GetArraySize(doc), 1);

  static const char *const routes[][2] = {
    {"GET", ""}, {"PATCH", ""}, {"DELETE", ""}, {"GET", "/secret"}, {"POST", "/secret/rotate"},
    {"POST", "/test"}, {"GET", "/failed"}, {"POST", "/recover"}};
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    char mine[160], missing[160];
    char *msg_mine = NULL;
    /* Another tenant's endpoint and an id that exists nowhere: the same answer but for the id. */
    snprintf(mine, sizeof mine, "/endpoints/%s%s", acme_ep, routes[i][1]);
    call(globex, NULL, routes[i][0], mine, strcmp(routes[i][0], "PATCH") == 0 ? "{\"name\":\"x\"}" : NULL);
    EXPECT(404, "not_found");
    msg_mine = strdup(err_message());
    char *fake = strdup(acme_ep);
    fake[strlen(fake) - 1] = fake[strlen(fake) - 1] == 'A' ? 'B' : 'A';
    snprintf(missing, sizeof missing, "/endpoints/%s%s", fake, routes[i][1]);
    call(globex, NULL, routes[i][0], missing, strcmp(routes[i][0], "PATCH") == 0 ? "{\"name\":\"x\"}" : NULL);
    EXPECT(404, "not_found");
    char *msg_missing = strdup(err_message());
    char *at = strstr(msg_missing, fake);
    CHECK(at != NULL);
    if (at)
      memcpy(at, acme_ep, strlen(acme_ep));
    CHECK_STR(msg_missing, msg_mine);
    free(msg_mine);
    free(msg_missing);
    free(fake);
    /* The platform's endpoints are not a view's either. */
    snprintf(mine, sizeof mine, "/endpoints/%s%s", ep_id, routes[i][1]);
    call(acme, NULL, routes[i][0], mine, strcmp(routes[i][0], "PATCH") == 0 ? "{\"name\":\"x\"}" : NULL);
    EXPECT(404, "not_found");
  }
  /* The server's routes and files are the platform's: refused through a view. */
  char own[160];
  snprintf(own, sizeof own, "/endpoints/%s", acme_ep);
  call(acme, NULL, "PATCH", own, "{\"settings\":{\"proxy\":\"http://10.0.0.1:3128\"}}");
  EXPECT(422, "invalid_argument");
  CHECK_STR(err_field(), "settings.proxy");
  call(acme, NULL, "POST", "/endpoints",
       "{\"name\":\"mtls\",\"url\":\"https://a.example.com/\",\"settings\":{\"client_cert\":\"/etc/ssl/private/k.pem\"}}");
  EXPECT(422, "invalid_argument");
  CHECK_STR(err_field(), "settings.client_cert");
  call(acme, NULL, "PATCH", own, "{\"settings\":{\"rate_limit\":5}}");
  EXPECT(200, NULL);
  /* The acme endpoint is untouched, and names are per tenant (and the platform's). */
  call(globex, NULL, "POST", "/endpoints", "{\"name\":\"CRM\",\"url\":\"https://globex.example.com/\"}");
  EXPECT(201, NULL);
  call(acme, NULL, "POST", "/endpoints", "{\"name\":\"acme only\",\"url\":\"https://acme.example.com/2\"}");
  EXPECT(201, NULL);
  char acme2[WH_ID_MAX];
  snprintf(acme2, sizeof acme2, "%s", str(doc, "id"));
  call(reg, NULL, "POST", "/endpoints", "{\"name\":\"acme only\",\"url\":\"https://platform.example.com/\"}");
  EXPECT(201, NULL);
  snprintf(own, sizeof own, "/endpoints/%s", acme2);
  call(acme, NULL, "DELETE", own, NULL);
  EXPECT(204, NULL);
  call(acme, NULL, "GET", "/endpoints", NULL);
  CHECK_INT(cJSON_GetArraySize(doc), 1);
  CHECK_STR(str(cJSON_GetArrayItem(doc, 0), "url"), "https://acme.example.com/");
  wh_registry_free(globex);
  wh_registry_free(acme);
}

/* Test events, the attempt log, failed deliveries, replay and recovery, with a
   dispatcher delivering to a loopback receiver. */
static void deliveries(void)
{
  rcv *r;
  CHECK(rcv_start(&r, 0) == 0);
  char url[160], body[400], path[200];
  rcv_url(r, "/hook", url, sizeof url);
  wh_registry *reg, *acme;
  CHECK_OK(wh_registry_open(&reg, "memory:"));
  CHECK_OK(wh_registry_open_tenant(&acme, reg, "acme"));
  snprintf(body, sizeof body, "{\"name\":\"hook\",\"url\":\"%s\",\"filters\":[\"people.*\"]}", url);
  call(acme, NULL, "POST", "/endpoints", body);
  EXPECT(201, NULL);
  char ep[WH_ID_MAX], msg[WH_ID_MAX];
  snprintf(ep, sizeof ep, "%s", str(doc, "id"));

  /* The memory store needs a running dispatcher for a test event. */
  snprintf(path, sizeof path, "/endpoints/%s/test", ep);
  call(acme, NULL, "POST", path, NULL);
  EXPECT(409, "wrong_state");

  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, "");
  CHECK_OK(wh_dispatcher_start(d));
  call(acme, d, "POST", path, "{}");
  EXPECT(202, NULL);
  snprintf(msg, sizeof msg, "%s", str(doc, "message_id") ? str(doc, "message_id") : "");
  CHECK(h_wait(&log, ep, WH_DELIVERED, 1, 10000));
  snprintf(path, sizeof path, "/messages/%s", msg);
  call(acme, d, "GET", path, NULL);
  EXPECT(200, NULL);
  CHECK_STR(str(doc, "event_type"), "webhook.TEST");
  cJSON *dl = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "deliveries"), 0);
  CHECK_STR(str(dl, "state"), "delivered");
  /* Another tenant's view does not see the message: as if it did not exist. */
  wh_registry *globex;
  CHECK_OK(wh_registry_open_tenant(&globex, reg, "globex"));
  call(globex, d, "GET", path, NULL);
  EXPECT(404, "not_found");
  CHECK(strstr(err_message(), "no such message") != NULL);
  snprintf(path, sizeof path, "/messages/%s/replay", msg);
  call(globex, d, "POST", path, NULL);
  EXPECT(404, "not_found");

  /* A failing receiver: the delivery fails (one attempt), is listed, and is replayed. */
  rcv_script_clear(r, "/hook");
  rcv_script_reply(r, "/hook", 500, NULL, "broken");
  wh_event *ev = h_person_event(NULL, NULL);
  wh_event_set_tenant_id(ev, "acme");
  CHECK_OK(wh_dispatcher_emit(d, ev, msg, sizeof msg));
  CHECK(h_wait(&log, ep, WH_FAILED, 1, 10000));
  snprintf(path, sizeof path, "/endpoints/%s/failed?limit=10", ep);
  call(acme, d, "GET", path, NULL);
  EXPECT(200, NULL);
  CHECK_INT(cJSON_GetArraySize(doc), 1);
  CHECK_STR(str(cJSON_GetArrayItem(doc, 0), "message_id"), msg);
  rcv_script_clear(r, "/hook");
  rcv_script_reply(r, "/hook", 200, NULL, "ok");
  snprintf(path, sizeof path, "/messages/%s/replay", msg);
  call(acme, d, "POST", path, "{\"endpoint_id\":\"ep_nope\"}");
  EXPECT(404, "not_found");
  CHECK_STR(err_field(), "endpoint_id");
  char body2[200];
  snprintf(body2, sizeof body2, "{\"endpoint_id\":\"%s\"}", ep);
  call(acme, d, "POST", path, body2);
  EXPECT(202, NULL);
  CHECK_INT((int)cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "queued")), 1);
  CHECK(h_wait(&log, ep, WH_DELIVERED, 2, 10000));

  /* Recovery: the failed ones since a time. */
  rcv_script_clear(r, "/hook");
  rcv_script_reply(r, "/hook", 500, NULL, "broken");
  ev = h_person_event(NULL, NULL);
  wh_event_set_tenant_id(ev, "acme");
  CHECK_OK(wh_dispatcher_emit(d, ev, msg, sizeof msg));
  CHECK(h_wait(&log, ep, WH_FAILED, 2, 10000));
  rcv_script_clear(r, "/hook");
  rcv_script_reply(r, "/hook", 200, NULL, "ok");
  snprintf(path, sizeof path, "/endpoints/%s/recover", ep);
  call(acme, d, "POST", path, "{\"since\":\"9999-01-01T00:00:00Z\"}");
  EXPECT(202, NULL);
  CHECK_INT((int)cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "queued")), 0);
  call(acme, d, "POST", path, "{\"since\":\"yesterday\"}");
  EXPECT(422, "invalid_argument");
  call(acme, d, "POST", path, "{\"since\":0}");
  EXPECT(202, NULL);
  CHECK((int)cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "queued")) >= 1);
  CHECK(h_wait(&log, ep, WH_DELIVERED, 3, 10000));

  wh_dispatcher_stop(d, 5000);
  wh_dispatcher_free(d);
  h_log_free(&log);
  wh_registry_free(globex);
  wh_registry_free(acme);
  wh_registry_free(reg);
  rcv_free(r);
}

/* Many administrators at once (the host's server calls from many threads):
   every answer well formed, and a tenant's limit holds. */
static wh_registry *shared_view;

static void *admin_thread(void *arg)
{
  int k = (int)(long)arg, made = 0;
  for (int i = 0; i < 40; i++) {
    char body[200], *out = NULL;
    int st = 0;
    snprintf(body, sizeof body, "{\"name\":\"t%d-%d\",\"url\":\"https://t%d.example.com/\",\"filters\":[\"a.*\"]}", k, i,
             k);
    if (wh_admin_handle(shared_view, NULL, "POST", "/endpoints", body, strlen(body), &st, &out) != WH_OK ||
        (st != 201 && st != 409) || !out) {
      fprintf(stderr, "thread %d: POST answered %d: %s\n", k, st, out ? out : "(null)");
      made = -1000;
    }
    made += st == 201;
    wh_free(out);
    out = NULL;
    if (wh_admin_handle(shared_view, NULL, "GET", "/endpoints", NULL, 0, &st, &out) != WH_OK || st != 200)
      made = -1000;
    wh_free(out);
  }
  return (void *)(long)made;
}

static void concurrent(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, "memory:"));
  CHECK_OK(wh_registry_set_int(reg, WH_REG_TENANT_MAX_ENDPOINTS, 10));
  CHECK_OK(wh_registry_open_tenant(&shared_view, reg, "busy"));
  pthread_t t[4];
  for (long i = 0; i < 4; i++)
    pthread_create(&t[i], NULL, admin_thread, (void *)i);
  long made = 0;
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    made += (long)r;
  }
  CHECK_INT(made, 10);
  CHECK_INT(count_endpoints(shared_view), 10);
  wh_registry_free(shared_view);
  wh_registry_free(reg);
}

#ifdef WH_TEST_WITH_PG
/* What can fail only while changing (the store) is undone: a PostgreSQL
   trigger refuses some writes, so a request fails half way, for real. */
static void undone_on_store_failure(const char *pg)
{
  PGconn *c = PQconnectdb(pg);
  PQclear(PQexec(c, "SET client_min_messages = warning"));
  PQclear(PQexec(c, "DROP SCHEMA IF EXISTS webhook CASCADE"));
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, pg)); /* makes the schema */
  PGresult *res = PQexec(c,
    "CREATE FUNCTION webhook.refuse() RETURNS trigger AS $$ BEGIN"
    " IF NEW.url = 'https://refused.example.com/' OR NEW.headers LIKE '%X-Refuse%' THEN"
    " RAISE EXCEPTION 'refused by test_admin'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql;"
    "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON webhook.endpoint FOR EACH ROW EXECUTE FUNCTION webhook.refuse();");
  CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
  if (PQresultStatus(res) != PGRES_COMMAND_OK)
    fprintf(stderr, "trigger: %s\n", PQerrorMessage(c));
  PQclear(res);

  /* POST: added, then its header cannot be stored: the endpoint goes again. */
  call(reg, NULL, "POST", "/endpoints",
       "{\"name\":\"half\",\"url\":\"https://ok.example.com/\",\"headers\":{\"X-Refuse\":\"1\"}}");
  EXPECT(503, "store_failed");
  CHECK_INT(count_endpoints(reg), 0);

  /* PATCH: the name changes, the URL cannot be stored: the name comes back. */
  call(reg, NULL, "POST", "/endpoints", "{\"name\":\"whole\",\"url\":\"https://ok.example.com/\"}");
  EXPECT(201, NULL);
  char id[WH_ID_MAX], path[128], *before, *after;
  snprintf(id, sizeof id, "%s", str(doc, "id"));
  snprintf(path, sizeof path, "/endpoints/%s", id);
  CHECK_OK(wh_endpoint_get_json(reg, id, &before));
  call(reg, NULL, "PATCH", path,
       "{\"name\":\"renamed\",\"description\":\"changed\",\"url\":\"https://refused.example.com/\"}");
  EXPECT(503, "store_failed");
  CHECK(strstr(err_message(), "refused by test_admin") != NULL);
  CHECK_OK(wh_endpoint_get_json(reg, id, &after));
  CHECK_STR(after, before);
  wh_free(before);
  wh_free(after);
  wh_registry_free(reg);
  PQclear(PQexec(c, "DROP SCHEMA IF EXISTS webhook CASCADE"));
  PQfinish(c);
}
#endif

int main(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, "memory:"));
  create_and_read(reg);
  refused_create(reg);
  patch(reg);
  settings(reg);
  secrets(reg);
  routing(reg);
  views(reg);
  wh_registry_free(reg);
  concurrent();
  deliveries();
#ifdef WH_TEST_WITH_PG
  const char *pg = getenv("WH_TEST_PG");
  CHECK(pg != NULL);
  if (pg)
    undone_on_store_failure(pg);
#endif
  cJSON_Delete(doc);
  wh_free(text);
  return check_done("test_admin");
}
