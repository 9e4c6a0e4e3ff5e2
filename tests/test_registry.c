/* The in-memory registry: every operation, its refusals, its JSON, and many
   threads reading and changing it at once. */
#include <webhook/webhook.h>

#include "support/check.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <unistd.h>

static cJSON *endpoint(wh_registry *reg, const char *id)
{
  char *s = NULL;
  CHECK_OK(wh_endpoint_get_json(reg, id, &s));
  cJSON *j = s ? cJSON_Parse(s) : NULL;
  CHECK(j != NULL);
  wh_free(s);
  return j;
}

static void open_and_add(void)
{
  wh_registry *reg = (wh_registry *)1;
  CHECK_ERR(wh_registry_open(&reg, "redis://x"), WH_EINVAL, "store");
  CHECK(reg == NULL);
  CHECK_ERR(wh_registry_open(NULL, NULL), WH_EINVAL, NULL);
  CHECK_OK(wh_registry_open(&reg, "memory:"));
  wh_registry_free(reg);
  CHECK_OK(wh_registry_open(&reg, NULL));

  char id[WH_ID_MAX], id2[WH_ID_MAX];
  CHECK_OK(wh_endpoint_add(reg, "CRM sync", "https://crm.example.com/hooks/casebook", "People to the CRM", id,
                           sizeof id));
  CHECK(strncmp(id, "ep_", 3) == 0);
  CHECK(strlen(id) < WH_ID_MAX);
  CHECK(strchr(id, '.') == NULL);
  CHECK_OK(wh_endpoint_add(reg, "Audit", "http://audit.example.com:8080/in?x=1", NULL, id2, sizeof id2));
  CHECK(strcmp(id, id2) != 0);

  cJSON *j = endpoint(reg, id);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "id")), id);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "name")), "CRM sync");
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "url")), "https://crm.example.com/hooks/casebook");
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "description")), "People to the CRM");
  CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "enabled")));
  CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "filters")) == 0);
  CHECK(cJSON_IsString(cJSON_GetObjectItem(j, "created_at")));
  cJSON_Delete(j);
  j = endpoint(reg, id2);
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "description")));
  cJSON_Delete(j);

  /* Names are unique; ids returned only into a big enough buffer. */
  CHECK_ERR(wh_endpoint_add(reg, "CRM sync", "https://other.example.com/", NULL, id2, sizeof id2), WH_EEXIST,
            "CRM sync");
  char small[8];
  CHECK_ERR(wh_endpoint_add(reg, "Small", "https://other.example.com/", NULL, small, sizeof small), WH_ERANGE,
            "WH_ID_MAX");
  CHECK_OK(wh_endpoint_add(reg, "No id wanted", "https://other.example.com/", NULL, NULL, 0));
  CHECK_ERR(wh_endpoint_add(reg, "", "https://x.example.com/", NULL, NULL, 0), WH_EINVAL, "name");
  CHECK_ERR(wh_endpoint_add(reg, NULL, "https://x.example.com/", NULL, NULL, 0), WH_EINVAL, "name");
  CHECK_ERR(wh_endpoint_add(reg, "Bad utf8 \xff", "https://x.example.com/", NULL, NULL, 0), WH_EINVAL, "UTF-8");
  CHECK_ERR(wh_endpoint_add(NULL, "x", "https://x.example.com/", NULL, NULL, 0), WH_EINVAL, "registry");

  char *list = NULL;
  CHECK_OK(wh_endpoint_list_json(reg, &list));
  cJSON *arr = cJSON_Parse(list);
  CHECK(cJSON_GetArraySize(arr) == 3);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "name")), "CRM sync");
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 2), "name")), "No id wanted");
  cJSON_Delete(arr);
  /* No secret ever appears in the JSON. */
  char secret[128];
  CHECK_OK(wh_endpoint_secret(reg, id, secret, sizeof secret));
  CHECK(strstr(list, secret + 6) == NULL);
  CHECK(strstr(list, "whsec_") == NULL);
  wh_free(list);

  CHECK_OK(wh_endpoint_remove(reg, id2));
  CHECK_ERR(wh_endpoint_remove(reg, id2), WH_ENOTFOUND, "no such endpoint");
  CHECK_ERR(wh_endpoint_get_json(reg, id2, &list), WH_ENOTFOUND, NULL);
  CHECK_ERR(wh_endpoint_set_enabled(reg, "ep_nope", 0), WH_ENOTFOUND, "ep_nope");
  /* The name of a removed endpoint can be used again. */
  CHECK_OK(wh_endpoint_add(reg, "Audit", "http://audit.example.com/", NULL, id2, sizeof id2));
  wh_registry_free(reg);
  wh_registry_free(NULL);
}

static void urls(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX];
  CHECK_OK(wh_endpoint_add(reg, "u", "https://a.example.com/x", NULL, id, sizeof id));
  static const struct {
    const char *url, *needle;
  } bad[] = {
    {"ftp://a.example.com/", "scheme must be http or https"},
    {"file:///etc/passwd", "scheme must be http or https"},
    {"gopher://a.example.com/", "scheme"},
    {"a.example.com/hook", "scheme"},
    {"https://user:pw@a.example.com/", "credentials"},
    {"https://user@a.example.com/", "credentials"},
    {"http:///nohost", "host is required"},
    {"https://?q", "host is required"},
    {"https://a.example.com/with space", "space"},
    {"https://a.example.com/\r\nX: y", "control"},
    {"", "empty"},
    {"http://", "endpoint url"},
    {"http://\xff\xfe/", "UTF-8"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_ERR(wh_endpoint_add(reg, "v", bad[i].url, NULL, NULL, 0), WH_EINVAL, bad[i].needle);
    CHECK_ERR(wh_endpoint_set_url(reg, id, bad[i].url), WH_EINVAL, bad[i].needle);
  }
  CHECK_ERR(wh_endpoint_add(reg, "v", NULL, NULL, NULL, 0), WH_EINVAL, "url");

  /* 65,536 bytes is the limit, inclusive. */
  size_t max = 65536;
  char *longurl = malloc(max + 2);
  strcpy(longurl, "https://a.example.com/");
  memset(longurl + strlen(longurl), 'a', max + 1 - strlen(longurl));
  longurl[max + 1] = '\0';
  CHECK_ERR(wh_endpoint_set_url(reg, id, longurl), WH_EINVAL, "65536");
  longurl[max] = '\0';
  CHECK_OK(wh_endpoint_set_url(reg, id, longurl));
  free(longurl);

  CHECK_OK(wh_endpoint_set_url(reg, id, "HTTP://B.example.com:8443/new?q=1#frag"));
  CHECK_OK(wh_endpoint_set_url(reg, id, "http://[::1]:9000/v6"));
  CHECK_OK(wh_endpoint_set_url(reg, id, "http://127.0.0.1:9/local")); /* policy is the dispatcher's job */
  cJSON *j = endpoint(reg, id);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "url")), "http://127.0.0.1:9/local");
  cJSON_Delete(j);
  CHECK_ERR(wh_endpoint_set_url(reg, "ep_missing", "https://a.example.com/"), WH_ENOTFOUND, NULL);
  wh_registry_free(reg);
}

static void filters_headers_enable(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX];
  CHECK_OK(wh_endpoint_add(reg, "f", "https://a.example.com/", NULL, id, sizeof id));
  static const char *good[] = {"people.CREATE", "people.*", "*.DELETE", "*", "*.*", "case_notes.UPDATE-2"};
  for (size_t i = 0; i < 6; i++)
    CHECK_OK(wh_endpoint_subscribe(reg, id, good[i]));
  CHECK_OK(wh_endpoint_subscribe(reg, id, "people.CREATE")); /* twice: harmless */
  static const char *bad[] = {"", "people", "people.", ".CREATE", "people.CRE*", "peo ple.X", "a.b.c", "**",
                              "people.**"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_ERR(wh_endpoint_subscribe(reg, id, bad[i]), WH_EINVAL, "filter");
  CHECK_ERR(wh_endpoint_subscribe(reg, id, NULL), WH_EINVAL, "filter");
  cJSON *j = endpoint(reg, id);
  cJSON *f = cJSON_GetObjectItem(j, "filters");
  CHECK_INT(cJSON_GetArraySize(f), 6);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(f, 0)), "people.CREATE");
  cJSON_Delete(j);
  CHECK_OK(wh_endpoint_unsubscribe(reg, id, "*"));
  CHECK_ERR(wh_endpoint_unsubscribe(reg, id, "*"), WH_ENOTFOUND, NULL);

  /* Headers. */
  CHECK_OK(wh_endpoint_set_header(reg, id, "Authorization", "Bearer abc"));
  CHECK_OK(wh_endpoint_set_header(reg, id, "X-Tenant", "t1"));
  CHECK_OK(wh_endpoint_set_header(reg, id, "x-tenant", "t2")); /* same header, any case: replaced */
  static const char *forbidden[] = {"Content-Type", "content-length", "Transfer-Encoding", "HOST",
                                    "User-Agent", "connection", "webhook-id", "Webhook-Signature",
                                    "WEBHOOK-anything"};
  for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++)
    CHECK_ERR(wh_endpoint_set_header(reg, id, forbidden[i], "x"), WH_EINVAL, "header");
  CHECK_ERR(wh_endpoint_set_header(reg, id, "Bad Name", "x"), WH_EINVAL, "header name");
  CHECK_ERR(wh_endpoint_set_header(reg, id, "X:y", "x"), WH_EINVAL, "header name");
  CHECK_ERR(wh_endpoint_set_header(reg, id, "", "x"), WH_EINVAL, "header name");
  CHECK_ERR(wh_endpoint_set_header(reg, id, "X-Inject", "a\r\nEvil: 1"), WH_EINVAL, "control");
  CHECK_ERR(wh_endpoint_set_header(reg, id, "X-Latin1", "caf\xe9"), WH_EINVAL, "UTF-8");
  CHECK_OK(wh_endpoint_set_header(reg, id, "X-Utf8", "caf\xc3\xa9"));
  CHECK_OK(wh_endpoint_set_header(reg, id, "X-Utf8", NULL));
  char *big = malloc(4098);
  memset(big, 'v', 4097);
  big[4097] = '\0';
  CHECK_ERR(wh_endpoint_set_header(reg, id, "X-Big", big), WH_EINVAL, "4096");
  big[4096] = '\0';
  CHECK_OK(wh_endpoint_set_header(reg, id, "X-Big", big));
  free(big);
  CHECK_OK(wh_endpoint_set_header(reg, id, "X-Big", NULL)); /* removed */
  j = endpoint(reg, id);
  cJSON *h = cJSON_GetObjectItem(j, "headers");
  CHECK_INT(cJSON_GetArraySize(h), 2);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(h, "Authorization")), "Bearer abc");
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "x-tenant")), "t2");
  CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "enabled")));
  cJSON_Delete(j);

  CHECK_OK(wh_endpoint_set_enabled(reg, id, 0));
  j = endpoint(reg, id);
  CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "enabled")));
  cJSON_Delete(j);
  CHECK_OK(wh_endpoint_set_enabled(reg, id, 7)); /* any non-zero is on */
  j = endpoint(reg, id);
  CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "enabled")));
  cJSON_Delete(j);
  wh_registry_free(reg);
}

static int sig_entries(const char *header)
{
  int n = 0;
  for (const char *p = header; (p = strstr(p, "v1,")); p += 3)
    n++;
  return n;
}

static void secrets(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX], id2[WH_ID_MAX];
  CHECK_OK(wh_endpoint_add(reg, "s", "https://a.example.com/", NULL, id, sizeof id));
  CHECK_OK(wh_endpoint_add(reg, "s2", "https://a.example.com/", NULL, id2, sizeof id2));
  char s1[128], s2[128], other[128];
  CHECK_OK(wh_endpoint_secret(reg, id, s1, sizeof s1));
  CHECK_OK(wh_endpoint_secret(reg, id2, other, sizeof other));
  CHECK(strncmp(s1, "whsec_", 6) == 0);
  CHECK(strlen(s1) >= 6 + 32);
  CHECK(strcmp(s1, other) != 0);
  CHECK_ERR(wh_endpoint_secret(reg, id, s1, 10), WH_ERANGE, NULL);
  CHECK_ERR(wh_endpoint_secret(reg, "ep_x", s2, sizeof s2), WH_ENOTFOUND, NULL);

  const char *body = "{\"a\":1}";
  char hdr[512];
  CHECK_OK(wh_endpoint_signature(reg, id, "msg_1", 1700000000, body, 7, hdr, sizeof hdr));
  CHECK_INT(sig_entries(hdr), 1);
  CHECK_OK(wh_verify(s1, "msg_1", "1700000000", hdr, body, 7, 1700000000));

  /* Rotate with a grace period: both secrets sign, current first. */
  CHECK_OK(wh_endpoint_rotate_secret(reg, id, NULL, 2));
  CHECK_OK(wh_endpoint_secret(reg, id, s2, sizeof s2));
  CHECK(strcmp(s1, s2) != 0);
  CHECK_OK(wh_endpoint_signature(reg, id, "msg_1", 1700000000, body, 7, hdr, sizeof hdr));
  CHECK_INT(sig_entries(hdr), 2);
  CHECK_OK(wh_verify(s1, "msg_1", "1700000000", hdr, body, 7, 1700000000));
  CHECK_OK(wh_verify(s2, "msg_1", "1700000000", hdr, body, 7, 1700000000));
  char first[128];
  CHECK_OK(wh_endpoint_signature(reg, id, "msg_1", 1700000000, body, 7, first, sizeof first));
  *strchr(first, ' ') = '\0';
  CHECK_OK(wh_verify(s2, "msg_1", "1700000000", first, body, 7, 1700000000));
  CHECK_ERR(wh_endpoint_signature(reg, id, "msg_1", 1700000000, body, 7, hdr, 60), WH_ERANGE, NULL);
  /* After the grace period only the new secret signs. */
  sleep(3);
  CHECK_OK(wh_endpoint_signature(reg, id, "msg_1", 1700000000, body, 7, hdr, sizeof hdr));
  CHECK_INT(sig_entries(hdr), 1);
  CHECK_ERR(wh_verify(s1, "msg_1", "1700000000", hdr, body, 7, 1700000000), WH_ESIGNATURE, NULL);
  CHECK_OK(wh_verify(s2, "msg_1", "1700000000", hdr, body, 7, 1700000000));

  /* Rotation to a given secret, with no grace: the old one stops at once. */
  const char *given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  CHECK_OK(wh_endpoint_rotate_secret(reg, id, given, 0));
  CHECK_OK(wh_endpoint_secret(reg, id, s1, sizeof s1));
  CHECK_STR(s1, given);
  CHECK_OK(wh_endpoint_signature(reg, id, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, "{\"test\": 2432232314}",
                                 20, hdr, sizeof hdr));
  CHECK_STR(hdr, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  CHECK_ERR(wh_endpoint_rotate_secret(reg, id, "whsec_c2VjcmV0", 0), WH_EINVAL, "24");
  CHECK_ERR(wh_endpoint_rotate_secret(reg, id, "nope", 0), WH_EINVAL, "whsec_");
  CHECK_ERR(wh_endpoint_rotate_secret(reg, id, "whsec_###", 0), WH_EINVAL, "base64");
  CHECK_ERR(wh_endpoint_rotate_secret(reg, "ep_x", NULL, 0), WH_ENOTFOUND, NULL);
  CHECK_OK(wh_endpoint_secret(reg, id, s1, sizeof s1));
  CHECK_STR(s1, given); /* refused rotations changed nothing */
  wh_registry_free(reg);
}

/* ---- concurrency: readers and writers at once ------------------------------ */

typedef struct {
  wh_registry *reg;
  int index;
  int errors;
} worker_arg;

static void *writer(void *p)
{
  worker_arg *a = p;
  for (int i = 0; i < 200; i++) {
    char name[64], id[WH_ID_MAX];
    snprintf(name, sizeof name, "w%d-%d", a->index, i);
    if (wh_endpoint_add(a->reg, name, "https://a.example.com/", "d", id, sizeof id)) {
      a->errors++;
      continue;
    }
    if (wh_endpoint_subscribe(a->reg, id, "people.*") || wh_endpoint_set_header(a->reg, id, "X-N", name) ||
        wh_endpoint_set_url(a->reg, id, "https://b.example.com/") || wh_endpoint_set_enabled(a->reg, id, 0) ||
        wh_endpoint_rotate_secret(a->reg, id, NULL, 60))
      a->errors++;
    if (i % 2 == 0 && wh_endpoint_remove(a->reg, id))
      a->errors++;
  }
  return NULL;
}

static void *reader(void *p)
{
  worker_arg *a = p;
  for (int i = 0; i < 200; i++) {
    char *s = NULL;
    if (wh_endpoint_list_json(a->reg, &s)) {
      a->errors++;
      continue;
    }
    cJSON *arr = cJSON_Parse(s);
    if (!arr)
      a->errors++;
    /* Every listed endpoint can be read unless a writer removed it meanwhile. */
    cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, arr)
    {
      if (k++ > 5)
        break;
      char *one = NULL;
      int rc = wh_endpoint_get_json(a->reg, cJSON_GetStringValue(cJSON_GetObjectItem(it, "id")), &one);
      if (rc != WH_OK && rc != WH_ENOTFOUND)
        a->errors++;
      wh_free(one);
    }
    cJSON_Delete(arr);
    wh_free(s);
  }
  return NULL;
}

static void concurrency(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  pthread_t t[8];
  worker_arg args[8];
  for (int i = 0; i < 8; i++) {
    args[i] = (worker_arg){reg, i, 0};
    pthread_create(&t[i], NULL, i < 4 ? writer : reader, &args[i]);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    CHECK_INT(args[i].errors, 0);
  }
  char *s = NULL;
  CHECK_OK(wh_endpoint_list_json(reg, &s));
  cJSON *arr = cJSON_Parse(s);
  CHECK_INT(cJSON_GetArraySize(arr), 4 * 100);
  cJSON *it;
  cJSON_ArrayForEach(it, arr)
  {
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(it, "enabled")));
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(it, "url")), "https://b.example.com/");
  }
  cJSON_Delete(arr);
  wh_free(s);
  wh_registry_free(reg);
}

int main(void)
{
  open_and_add();
  urls();
  filters_headers_enable();
  secrets();
  concurrency();
  return check_done("registry");
}
