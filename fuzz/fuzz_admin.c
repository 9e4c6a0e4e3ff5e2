/*
 * wh_admin_handle on outside input: the method, path, query string and body
 * of an administrator's request, as a host's HTTP server passes them.
 *
 * Input: "FLAGS\nMETHOD\nPATH\nBODY" (the body takes the rest, NUL bytes and
 * all). FLAGS' first byte chooses the registry (odd: the tenant view "acme",
 * else the root); an '@' in PATH is replaced by the id of an endpoint (the
 * tenant's when FLAGS' second byte is odd, else the platform's), so that the
 * fuzzer reaches the routes of endpoints that exist. A fresh memory registry
 * per input, with one platform and one tenant endpoint; no dispatcher (so
 * nothing is sent anywhere).
 *
 * Properties:
 *  - the call never fails (WH_OK) and always answers;
 *  - the status is one the API documents, and the body valid UTF-8 JSON
 *    (empty for 204); an error is {"error":{"code","message"}} with a code
 *    of the API's list;
 *  - through the view, the platform endpoint is never changed, and no answer
 *    shows its URL (unless the request itself named it).
 */
#define _GNU_SOURCE /* memmem */
#include "fuzz_common.h"

#include <cjson/cJSON.h>
#include <webhook/webhook.h>

#define PLATFORM_URL "https://platform-only.example.com/secret-path"

static const char *const codes[] = {"invalid_argument", "out_of_memory", "not_found", "already_exists",
                                    "wrong_state", "full", "store_failed", "timeout", "policy_refused",
                                    "buffer_too_small", "bad_request", "no_route"};

static int status_known(int st)
{
  static const int known[] = {200, 201, 202, 204, 400, 404, 405, 409, 413, 422, 503};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (st == known[i])
      return 1;
  return 0;
}

static void check_error(const cJSON *doc)
{
  const cJSON *err = cJSON_GetObjectItem(doc, "error");
  const char *code = cJSON_GetStringValue(cJSON_GetObjectItem(err, "code"));
  FUZZ_ASSERT(code && cJSON_IsString(cJSON_GetObjectItem(err, "message")));
  int ok = 0;
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    ok |= strcmp(code, codes[i]) == 0;
  FUZZ_ASSERT(ok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fuzz_fields f;
  fuzz_split(data, size, '\n', 4, &f);
  const char *flags = fuzz_field(&f, 0, "");
  const char *method = fuzz_field(&f, 1, "GET");
  const char *path = fuzz_field(&f, 2, "/endpoints");
  const char *body = fuzz_field(&f, 3, "");
  size_t body_len = f.n > 3 ? f.len[3] : 0;

  wh_registry *root, *view;
  char platform[WH_ID_MAX], mine[WH_ID_MAX];
  FUZZ_ASSERT(wh_registry_open(&root, "memory:") == WH_OK);
  FUZZ_ASSERT(wh_registry_open_tenant(&view, root, "acme") == WH_OK);
  FUZZ_ASSERT(wh_endpoint_add(root, "platform", PLATFORM_URL, NULL, platform, sizeof platform) == WH_OK);
  FUZZ_ASSERT(wh_endpoint_add(view, "mine", "https://acme.example.com/", NULL, mine, sizeof mine) == WH_OK);
  int on_view = flags[0] & 1;
  wh_registry *reg = on_view ? view : root;

  /* PATH with its first '@' replaced by an endpoint id. */
  const char *id = flags[0] && (flags[1] & 1) ? mine : platform;
  size_t pl = strlen(path), il = strlen(id);
  char *full = malloc(pl + il + 1);
  FUZZ_ASSERT(full);
  const char *at = strchr(path, '@');
  if (at) {
    size_t k = (size_t)(at - path);
    memcpy(full, path, k);
    memcpy(full + k, id, il);
    memcpy(full + k + il, at + 1, pl - k);
  } else {
    memcpy(full, path, pl + 1);
  }

  char *before = NULL;
  FUZZ_ASSERT(wh_endpoint_get_json(root, platform, &before) == WH_OK);
  int st = 0;
  char *out = NULL;
  int rc = wh_admin_handle(reg, NULL, method, full, body, body_len, &st, &out);
  FUZZ_ASSERT(rc == WH_OK && out != NULL);
  FUZZ_ASSERT(status_known(st));
  FUZZ_ASSERT(fuzz_utf8_valid((const unsigned char *)out, strlen(out)));
  if (st == 204) {
    FUZZ_ASSERT(*out == '\0');
  } else {
    cJSON *doc = cJSON_Parse(out);
    FUZZ_ASSERT(doc != NULL);
    if (st >= 400)
      check_error(doc);
    cJSON_Delete(doc);
  }
  if (on_view) {
    char *after = NULL;
    FUZZ_ASSERT(wh_endpoint_get_json(root, platform, &after) == WH_OK);
    FUZZ_ASSERT(strcmp(before, after) == 0);
    /* (An answer may echo the request: only a URL the request did not name is a leak.) */
    FUZZ_ASSERT(strstr(out, "platform-only.example.com") == NULL ||
                memmem(data, size, "platform-only", 13) != NULL);
    wh_free(after);
  }
  wh_free(before);
  wh_free(out);
  free(full);
  wh_registry_free(view);
  wh_registry_free(root);
  fuzz_fields_free(&f);
  return 0;
}
