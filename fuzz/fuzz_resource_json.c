/*
 * wh_event_set_resource_json + wh_event_to_json on outside input.
 *
 * Input: the resource text; the library sees it up to its first NUL byte, as
 * a C caller's string.
 *
 * Properties, when the resource is accepted:
 *  - the input is valid UTF-8;
 *  - the envelope parses with cJSON and its "resource" is an object;
 *  - the envelope is exactly {"resource":R,...} where R is the input with the
 *    whitespace outside strings removed and nothing else changed (numbers,
 *    escapes, key order byte for byte; cJSON is not used to compare, it would
 *    turn numbers into doubles).
 * When it is refused, the event keeps its previous resource ({}).
 */
#include "fuzz_common.h"

#include "webhook/webhook.h"

#include <cjson/cJSON.h>

#define EVENT_TIME_US 1711479196818049LL /* 2024-03-26T18:53:16.818049Z */

/* in with JSON whitespace (space, tab, LF, CR) outside string literals removed.
   A reference for the library's compaction that knows only where strings
   start and end. */
static char *strip_ws(const char *in, size_t n, size_t *out_len)
{
  char *out = malloc(n + 1);
  FUZZ_ASSERT(out);
  size_t o = 0;
  int in_str = 0;
  for (size_t i = 0; i < n; i++) {
    char c = in[i];
    if (in_str) {
      out[o++] = c;
      if (c == '\\' && i + 1 < n)
        out[o++] = in[++i];
      else if (c == '"')
        in_str = 0;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
      continue;
    if (c == '"')
      in_str = 1;
    out[o++] = c;
  }
  out[o] = '\0';
  *out_len = o;
  return out;
}

static const char TAIL[] = ",\"tenant_id\":null,\"user_id\":null,\"resource_id\":null,"
                           "\"resource_type\":\"people\",\"event_type\":\"CREATE\","
                           "\"event_time\":\"2024-03-26T18:53:16.818049Z\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = fuzz_strndup(data, size);
  size_t n = strlen(text);

  wh_event *ev = NULL;
  FUZZ_ASSERT(wh_event_new(&ev, "people", "CREATE") == WH_OK && ev);
  FUZZ_ASSERT(wh_event_set_time(ev, EVENT_TIME_US) == WH_OK);

  int rc = wh_event_set_resource_json(ev, text);
  FUZZ_ASSERT(rc == WH_OK || rc == WH_EINVAL);

  char *json = NULL;
  FUZZ_ASSERT(wh_event_to_json(ev, &json) == WH_OK && json);
  size_t jl = strlen(json);

  size_t rl;
  char *expect;
  if (rc == WH_OK) {
    FUZZ_ASSERT(fuzz_utf8_valid((const unsigned char *)text, n));
    expect = strip_ws(text, n, &rl);
  } else {
    expect = fuzz_strndup("{}", 2);
    rl = 2;
  }

  /* {"resource":R + TAIL, byte for byte. */
  static const char HEAD[] = "{\"resource\":";
  size_t hl = sizeof HEAD - 1, tl = sizeof TAIL - 1;
  FUZZ_ASSERT(jl == hl + rl + tl);
  FUZZ_ASSERT(memcmp(json, HEAD, hl) == 0);
  FUZZ_ASSERT(memcmp(json + hl, expect, rl) == 0);
  FUZZ_ASSERT(memcmp(json + hl + rl, TAIL, tl) == 0);

  cJSON *doc = cJSON_ParseWithLength(json, jl);
  FUZZ_ASSERT(doc != NULL);
  FUZZ_ASSERT(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(doc, "resource")));
  cJSON_Delete(doc);

  free(expect);
  wh_free(json);
  wh_event_free(ev);
  free(text);
  return 0;
}
