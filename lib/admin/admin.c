/*
 * The admin REST API as one library call (docs/openapi.yaml): the host's own
 * HTTP server authenticates the administrator, picks the registry (the root,
 * or the tenant view of the administrator's account) and passes the request
 * here; the answer is a status and a JSON body.
 *
 * Everything a client sends is outside input: the path, the query string and
 * the body are checked here and every bad request is answered (4xx with
 * {"error":{"code","message"}}), never a failure of the call; the work is
 * bounded by the limits below whatever the input. A tenant view answers for
 * anything it does not see exactly as for something that does not exist.
 */
#include "admin/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_BYTES 2048  /* a longer path names no route */
#define QUERY_MAX_BYTES 2048
#define MAX_SEGMENTS 4       /* the longest route: /endpoints/{id}/secret/rotate */
#define FAILED_LIMIT_DEFAULT 100
#define FAILED_LIMIT_MAX 1000
#define GRACE_DEFAULT_S 86400      /* a rotated secret keeps signing for a day, as Svix does */
#define GRACE_MAX_S (7 * 86400)
#define TIME_MAX_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */

/* ---- answers -------------------------------------------------------------------------- */

static int answer(wh__admin *a, int status, char *text)
{
  free(a->out);
  a->out = text;
  a->status = text ? status : 500;
  a->rc = text ? WH_OK : WH_ENOMEM;
  return a->rc;
}

int wh__admin_json(wh__admin *a, int status, cJSON *doc)
{
  char *s = doc ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  return answer(a, status, s);
}

int wh__admin_text(wh__admin *a, int status, char *json) { return answer(a, status, json); }

/* Text that came from a client (an id, a name cut at some byte) made valid
   UTF-8 for the JSON answer: a byte that starts no valid sequence becomes '?'. */
static char *clean_utf8(const char *s)
{
  size_t n = strlen(s);
  char *out = malloc(n + 1);
  if (!out)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (len && i + len <= n && wh__utf8_valid(s + i, len)) {
      memcpy(out + k, s + i, len);
      k += len;
      i += len;
    } else {
      out[k++] = '?';
      i++;
    }
  }
  out[k] = '\0';
  return out;
}

static int error_doc(wh__admin *a, int status, const char *code, const char *field, const char *message)
{
  char *clean = clean_utf8(message);
  cJSON *doc = cJSON_CreateObject();
  cJSON *err = cJSON_AddObjectToObject(doc, "error");
  if (!clean || !err) {
    free(clean);
    cJSON_Delete(doc);
    return answer(a, 500, NULL);
  }
  cJSON_AddStringToObject(err, "code", code);
  cJSON_AddStringToObject(err, "message", clean);
  if (field)
    cJSON_AddStringToObject(err, "field", field);
  free(clean);
  return wh__admin_json(a, status, doc);
}

int wh__admin_error(wh__admin *a, int status, const char *code, const char *field, const char *fmt, ...)
{
  char message[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  return error_doc(a, status, code, field, message);
}

/* Answer an error and return 0: for `ok = refuse(...)` in the handlers. */
static int refuse(wh__admin *a, int status, const char *code, const char *field, const char *fmt, ...)
  __attribute__((format(printf, 5, 6)));
static int refuse(wh__admin *a, int status, const char *code, const char *field, const char *fmt, ...)
{
  char message[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  error_doc(a, status, code, field, message);
  return 0;
}

/* The library's result codes as the API names them, with the status that fits. */
static const struct {
  int rc, status;
  const char *code;
} results[] = {
  {WH_EINVAL, 422, "invalid_argument"}, {WH_ENOMEM, 503, "out_of_memory"},
  {WH_ENOTFOUND, 404, "not_found"},     {WH_EEXIST, 409, "already_exists"},
  {WH_ESTATE, 409, "wrong_state"},      {WH_EFULL, 409, "full"},
  {WH_ESTORE, 503, "store_failed"},     {WH_ETIMEOUT, 503, "timeout"},
  {WH_EPOLICY, 422, "policy_refused"},  {WH_ERANGE, 500, "buffer_too_small"},
};

int wh__admin_fail(wh__admin *a, int rc, const char *field)
{
  for (size_t i = 0; i < WH__COUNT(results); i++)
    if (results[i].rc == rc)
      return error_doc(a, results[i].status, results[i].code, field, wh_error_last());
  /* Not a result an admin call makes (signature, timestamp): the library's text. */
  return error_doc(a, 422, "invalid_argument", field, wh_error_last());
}

/* An id echoed in a message: at most 64 bytes of it. */
static int not_found(wh__admin *a, const char *what)
{
  return wh__admin_error(a, 404, "not_found", NULL, "%s \"%.64s\": no such %s", what, a->id, what);
}

int wh__admin_no_endpoint(wh__admin *a) { return not_found(a, "endpoint"); }

/* ---- the body -------------------------------------------------------------------------- */

/* A \u0000 escape would end the C string cJSON hands out, silently: refused.
   It is one when preceded by an odd number of backslashes. */
static int has_nul_escape(const char *s, size_t n)
{
  for (size_t i = 0; i + 6 <= n; i++) {
    if (s[i] != '\\' || (s[i + 1] != 'u' && s[i + 1] != 'U') || memcmp(s + i + 2, "0000", 4) != 0)
      continue;
    size_t slashes = 0;
    for (size_t k = i; k > 0 && s[k - 1] == '\\'; k--)
      slashes++;
    if (slashes % 2 == 0)
      return 1;
  }
  return 0;
}

static int bad_body(wh__admin *a, const char *fmt, const char *detail)
{
  wh__admin_error(a, 400, "bad_request", NULL, fmt, detail);
  return 0;
}

int wh__admin_body(wh__admin *a, int required, cJSON **out)
{
  *out = NULL;
  const char *s = a->body ? a->body : "";
  size_t n = a->body ? a->body_len : 0;
  size_t first = 0;
  while (first < n && (s[first] == ' ' || s[first] == '\t' || s[first] == '\n' || s[first] == '\r'))
    first++;
  if (first == n) {
    if (required)
      return bad_body(a, "body: a JSON object is required%s", "");
    if (!(*out = cJSON_CreateObject()))
      answer(a, 500, NULL);
    return *out != NULL;
  }
  if (!wh__utf8_valid(s, n))
    return bad_body(a, "body: not valid UTF-8%s", "");
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      char where[32];
      snprintf(where, sizeof where, "%zu", i);
      return bad_body(a, "body: control character at byte %s (not allowed in JSON)", where);
    }
  }
  if (has_nul_escape(s, n))
    return bad_body(a, "body: \\u0000 is not allowed in a string%s", "");
  const char *end = NULL;
  cJSON *doc = cJSON_ParseWithLengthOpts(s, n, &end, 0);
  while (doc && end && end < s + n && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
    end++;
  if (!doc || end != s + n) {
    cJSON_Delete(doc);
    return bad_body(a, "body: malformed JSON%s", "");
  }
  if (!cJSON_IsObject(doc)) {
    cJSON_Delete(doc);
    return bad_body(a, "body: must be a JSON object%s", "");
  }
  *out = doc;
  return 1;
}

int wh__admin_members(wh__admin *a, const cJSON *obj, const char *where, const char *const *known)
{
  for (const cJSON *m = obj->child; m; m = m->next) {
    int ok = !known;
    for (size_t i = 0; known && known[i] && !ok; i++)
      ok = strcmp(m->string, known[i]) == 0;
    for (const cJSON *p = obj->child; p != m && ok; p = p->next)
      if (strcmp(p->string, m->string) == 0) {
        wh__admin_error(a, 400, "bad_request", *where ? where : m->string, "%s%s\"%.64s\" is given twice", where,
                        *where ? ": " : "", m->string);
        return 0;
      }
    if (!ok && known) {
      wh__admin_error(a, 422, "invalid_argument", *where ? where : m->string, "%s%sunknown field \"%.64s\"", where,
                      *where ? ": " : "", m->string);
      return 0;
    }
  }
  return 1;
}

/* ---- times ----------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a date of the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* n decimal digits at s, or -1. */
static int digits(const char *s, int n)
{
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* "2024-03-26", "2024-03-26T18:53:16Z", "...16.818Z", "...16+02:00" (also a
   space or lower-case t between date and time, lower-case z). */
static int iso_ms(const char *s, int64_t *ms)
{
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  size_t n = strlen(s);
  if (n < 10)
    return 0;
  int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
  if (y < 1970 || s[4] != '-' || s[7] != '-' || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
    return 0;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo == 2 && d == 29 && !leap)
    return 0;
  int64_t t = days_from_civil(y, mo, d) * 86400000LL;
  if (n == 10) {
    *ms = t;
    return 1;
  }
  if (n < 20 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
    return 0;
  int h = digits(s + 11, 2), mi = digits(s + 14, 2), sec = digits(s + 17, 2);
  if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59)
    return 0;
  t += ((int64_t)h * 3600 + mi * 60 + sec) * 1000;
  const char *p = s + 19;
  if (*p == '.') {
    int frac = 0, k = 0;
    for (p++; *p >= '0' && *p <= '9'; p++, k++)
      if (k < 3)
        frac = frac * 10 + (*p - '0');
    if (k == 0 || k > 9)
      return 0;
    for (; k < 3; k++)
      frac *= 10;
    t += frac;
  }
  if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
    *ms = t;
    return 1;
  }
  if ((*p != '+' && *p != '-') || strlen(p) != 6 || p[3] != ':')
    return 0;
  int oh = digits(p + 1, 2), om = digits(p + 4, 2);
  if (oh < 0 || oh > 23 || om < 0 || om > 59)
    return 0;
  int64_t off = ((int64_t)oh * 60 + om) * 60000;
  t += *p == '+' ? -off : off;
  if (t < 0)
    return 0;
  *ms = t;
  return 1;
}

int wh__admin_time(const cJSON *v, const char *text, int64_t *ms)
{
  if (v && cJSON_IsNumber(v)) {
    double x = v->valuedouble;
    if (!(x >= 0 && x <= (double)TIME_MAX_MS) || x != (double)(int64_t)x)
      return 0;
    *ms = (int64_t)x;
    return 1;
  }
  if (v)
    text = cJSON_GetStringValue(v);
  if (!text || !*text)
    return 0;
  size_t n = strspn(text, "0123456789");
  if (n == strlen(text)) {
    if (n > 15)
      return 0;
    *ms = strtoll(text, NULL, 10);
    return *ms <= TIME_MAX_MS;
  }
  return iso_ms(text, ms) && *ms <= TIME_MAX_MS;
}

/* ---- the query string -------------------------------------------------------------------- */

static int hexval(char c)
{
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decode s[0..n) into out (n + 1 bytes). 0 for a bad escape or a NUL. */
static int pct_decode(const char *s, size_t n, char *out)
{
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
      int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
        return 0;
      c = (char)(hi * 16 + lo);
      i += 2;
    }
    out[k++] = c;
  }
  out[k] = '\0';
  return 1;
}

/* Read the query parameters named in names (at most 4) into values (decoded,
   NULL when absent; each freed by the caller). 1, or 0 after answering 400. */
static int query_params(wh__admin *a, const char *const *names, char **values)
{
  size_t nnames = 0;
  while (names[nnames])
    nnames++;
  for (size_t i = 0; i < nnames; i++)
    values[i] = NULL;
  size_t qn = strlen(a->query);
  if (qn > QUERY_MAX_BYTES) {
    wh__admin_error(a, 400, "invalid_argument", NULL, "query string: longer than %d bytes", QUERY_MAX_BYTES);
    return 0;
  }
  char buf[QUERY_MAX_BYTES + 1];
  for (const char *p = a->query; *p;) {
    size_t len = strcspn(p, "&");
    const char *eq = memchr(p, '=', len);
    size_t klen = eq ? (size_t)(eq - p) : len;
    if (len) {
      size_t i = 0;
      for (; i < nnames; i++)
        if (strlen(names[i]) == klen && memcmp(names[i], p, klen) == 0)
          break;
      const char *err = i == nnames ? "unknown query parameter \"%.*s\""
                        : values[i] ? "query parameter \"%.*s\" is given twice"
                        : !pct_decode(eq ? eq + 1 : p + len, eq ? len - klen - 1 : 0, buf)
                          ? "query parameter \"%.*s\": bad percent-encoding"
                          : NULL;
      if (err) {
        char key[72];
        if (!pct_decode(p, klen < 64 ? klen : 64, key))
          snprintf(key, sizeof key, "?");
        wh__admin_error(a, 400, "invalid_argument", NULL, err, (int)strlen(key), key);
        for (size_t k = 0; k < nnames; k++)
          free(values[k]);
        return 0;
      }
      if (!(values[i] = wh__strdup(buf))) {
        for (size_t k = 0; k < nnames; k++)
          free(values[k]);
        answer(a, 500, NULL);
        return 0;
      }
    }
    p += len + (p[len] == '&');
  }
  return 1;
}

static void free_params(char **values, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(values[i]);
}

/* A route that takes no query parameter: 1, or 0 after answering 400. */
static int no_params(wh__admin *a)
{
  static const char *const none[] = {NULL};
  return query_params(a, none, NULL);
}

/* ---- the handlers ------------------------------------------------------------------------- */

static int list_endpoints(wh__admin *a)
{
  char *json;
  int rc = wh_endpoint_list_json(a->reg, &json);
  return rc ? wh__admin_fail(a, rc, NULL) : wh__admin_text(a, 200, json);
}

static int get_endpoint(wh__admin *a)
{
  char *json;
  int rc = wh_endpoint_get_json(a->reg, a->id, &json);
  if (rc == WH_ENOTFOUND)
    return wh__admin_no_endpoint(a);
  return rc ? wh__admin_fail(a, rc, NULL) : wh__admin_text(a, 200, json);
}

static int delete_endpoint(wh__admin *a)
{
  int rc = wh_endpoint_remove(a->reg, a->id);
  if (rc == WH_ENOTFOUND)
    return wh__admin_no_endpoint(a);
  return rc ? wh__admin_fail(a, rc, NULL) : answer(a, 204, wh__strdup(""));
}

static int get_secret(wh__admin *a)
{
  char secret[128];
  int rc = wh_endpoint_secret(a->reg, a->id, secret, sizeof secret);
  if (rc == WH_ENOTFOUND)
    return wh__admin_no_endpoint(a);
  if (rc)
    return wh__admin_fail(a, rc, NULL);
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "secret", secret);
  return wh__admin_json(a, 200, doc);
}

static int rotate_secret(wh__admin *a)
{
  static const char *const known[] = {"secret", "grace_seconds", NULL};
  cJSON *body;
  if (!wh__admin_body(a, 0, &body))
    return a->rc;
  int ok = wh__admin_members(a, body, "", known);
  cJSON *s = cJSON_GetObjectItemCaseSensitive(body, "secret");
  cJSON *g = cJSON_GetObjectItemCaseSensitive(body, "grace_seconds");
  double grace = GRACE_DEFAULT_S;
  if (ok && s && !cJSON_IsNull(s) && !cJSON_IsString(s))
    ok = refuse(a, 422, "invalid_argument", "secret", "secret: must be a string (\"whsec_...\") or null");
  if (ok && g) {
    grace = cJSON_IsNumber(g) ? g->valuedouble : -1;
    if (!(grace >= 0 && grace <= GRACE_MAX_S) || grace != (double)(long)grace)
      ok = refuse(a, 422, "invalid_argument", "grace_seconds",
                            "grace_seconds: a whole number of seconds from 0 to %d", GRACE_MAX_S);
  }
  int rc = ok ? wh_endpoint_rotate_secret(a->reg, a->id, cJSON_GetStringValue(s), (unsigned)grace) : WH_OK;
  cJSON_Delete(body);
  if (!ok)
    return a->rc;
  if (rc == WH_ENOTFOUND)
    return wh__admin_no_endpoint(a);
  if (rc)
    return wh__admin_fail(a, rc, rc == WH_EINVAL ? "secret" : NULL);
  return get_secret(a);
}

static int send_test(wh__admin *a)
{
  static const char *const known[] = {NULL};
  cJSON *body;
  if (!wh__admin_body(a, 0, &body))
    return a->rc;
  int ok = wh__admin_members(a, body, "", known);
  cJSON_Delete(body);
  if (!ok)
    return a->rc;
  char msg[WH_ID_MAX];
  int rc = wh_endpoint_send_test(a->reg, a->id, msg, sizeof msg);
  if (rc == WH_ENOTFOUND)
    return wh__admin_no_endpoint(a);
  if (rc)
    return wh__admin_fail(a, rc, NULL);
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "message_id", msg);
  return wh__admin_json(a, 202, doc);
}

static int queued(wh__admin *a, size_t n)
{
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddNumberToObject(doc, "queued", (double)n);
  return wh__admin_json(a, 202, doc);
}

static int list_failed(wh__admin *a)
{
  static const char *const names[] = {"since", "limit", NULL};
  char *v[2];
  if (!query_params(a, names, v))
    return a->rc;
  int64_t since = 0;
  long limit = FAILED_LIMIT_DEFAULT;
  int ok = 1;
  if (v[0] && !wh__admin_time(NULL, v[0], &since))
    ok = refuse(a, 400, "invalid_argument", "since",
                          "since: expected unix milliseconds or an ISO 8601 time such as 2024-03-26T18:53:16Z");
  if (ok && v[1]) {
    size_t nd = strspn(v[1], "0123456789");
    limit = nd && nd == strlen(v[1]) && nd <= 4 ? strtol(v[1], NULL, 10) : 0;
    if (limit < 1 || limit > FAILED_LIMIT_MAX)
      ok = refuse(a, 400, "invalid_argument", "limit", "limit: a whole number from 1 to %d",
                            FAILED_LIMIT_MAX);
  }
  free_params(v, 2);
  if (!ok)
    return a->rc;
  char *json;
  int rc = wh_endpoint_failed_json(a->reg, a->id, since, (size_t)limit, &json);
  if (rc == WH_ENOTFOUND)
    return wh__admin_no_endpoint(a);
  return rc ? wh__admin_fail(a, rc, NULL) : wh__admin_text(a, 200, json);
}

static int recover(wh__admin *a)
{
  static const char *const known[] = {"since", NULL};
  cJSON *body;
  if (!wh__admin_body(a, 0, &body))
    return a->rc;
  int ok = wh__admin_members(a, body, "", known);
  cJSON *s = cJSON_GetObjectItemCaseSensitive(body, "since");
  int64_t since = 0;
  if (ok && s && !wh__admin_time(s, NULL, &since))
    ok = refuse(a, 422, "invalid_argument", "since",
                          "since: expected unix milliseconds or an ISO 8601 time such as 2024-03-26T18:53:16Z");
  cJSON_Delete(body);
  if (!ok)
    return a->rc;
  size_t n = 0;
  int rc = wh_endpoint_recover(a->reg, a->id, since, &n);
  if (rc == WH_ENOTFOUND)
    return wh__admin_no_endpoint(a);
  return rc ? wh__admin_fail(a, rc, NULL) : queued(a, n);
}

static int get_message(wh__admin *a)
{
  char *json;
  int rc = wh_message_get_json(a->reg, a->id, &json);
  if (rc == WH_ENOTFOUND)
    return not_found(a, "message");
  return rc ? wh__admin_fail(a, rc, NULL) : wh__admin_text(a, 200, json);
}

static int replay(wh__admin *a)
{
  static const char *const known[] = {"endpoint_id", NULL};
  cJSON *body;
  if (!wh__admin_body(a, 0, &body))
    return a->rc;
  int ok = wh__admin_members(a, body, "", known);
  cJSON *e = cJSON_GetObjectItemCaseSensitive(body, "endpoint_id");
  if (ok && e && !cJSON_IsNull(e) && !cJSON_IsString(e))
    ok = refuse(a, 422, "invalid_argument", "endpoint_id", "endpoint_id: must be a string or null");
  /* Which one is missing, the message or the endpoint: asked one at a time,
     so that the answer names the right one. */
  char *json = NULL;
  int rc = ok ? wh_message_get_json(a->reg, a->id, &json) : WH_OK;
  wh_free(json);
  const char *ep = cJSON_GetStringValue(e);
  size_t n = 0;
  if (ok && rc == WH_ENOTFOUND)
    ok = !not_found(a, "message");
  else if (ok && !rc && ep && !wh_endpoint_get_json(a->reg, ep, &json))
    wh_free(json);
  else if (ok && !rc && ep)
    ok = refuse(a, 404, "not_found", "endpoint_id", "endpoint \"%.64s\": no such endpoint", ep);
  if (ok && !rc)
    rc = wh_message_replay(a->reg, a->id, ep, &n);
  cJSON_Delete(body);
  if (!ok)
    return a->rc;
  return rc ? wh__admin_fail(a, rc, rc == WH_EINVAL ? "endpoint_id" : NULL) : queued(a, n);
}

/* ---- routing ------------------------------------------------------------------------------- */

typedef int (*handler)(wh__admin *a);

/* A route's pattern: literal segments, "*" for the {id}. Routes that take a
   query string (query 1) read it themselves; the others refuse one. */
static const struct route {
  const char *method;
  const char *segs[MAX_SEGMENTS];
  handler fn;
  int query;
} routes[] = {
  {"GET", {"endpoints"}, list_endpoints, 0},
  {"POST", {"endpoints"}, wh__admin_create_endpoint, 0},
  {"GET", {"endpoints", "*"}, get_endpoint, 0},
  {"PATCH", {"endpoints", "*"}, wh__admin_patch_endpoint, 0},
  {"DELETE", {"endpoints", "*"}, delete_endpoint, 0},
  {"GET", {"endpoints", "*", "secret"}, get_secret, 0},
  {"POST", {"endpoints", "*", "secret", "rotate"}, rotate_secret, 0},
  {"POST", {"endpoints", "*", "test"}, send_test, 0},
  {"GET", {"endpoints", "*", "failed"}, list_failed, 1},
  {"POST", {"endpoints", "*", "recover"}, recover, 0},
  {"GET", {"messages", "*"}, get_message, 0},
  {"POST", {"messages", "*", "replay"}, replay, 0},
};

static int route_matches(const struct route *r, char **segs, size_t n, const char **id)
{
  size_t k = 0;
  while (k < MAX_SEGMENTS && r->segs[k])
    k++;
  if (k != n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(r->segs[i], "*") == 0)
      *id = segs[i];
    else if (strcmp(r->segs[i], segs[i]) != 0)
      return 0;
  }
  return 1;
}

/* Split path (before '?') into percent-decoded segments, in buf. 0 when it
   cannot name a route: no leading '/', an empty segment, a bad escape, too long. */
static int split_path(const char *path, size_t n, char *buf, char **segs, size_t *nsegs)
{
  if (n == 0 || path[0] != '/' || n > PATH_MAX_BYTES)
    return 0;
  *nsegs = 0;
  size_t used = 0;
  for (size_t i = 1; i <= n;) {
    size_t len = 0;
    while (i + len < n && path[i + len] != '/')
      len++;
    if (len == 0 || *nsegs == MAX_SEGMENTS || !pct_decode(path + i, len, buf + used))
      return 0;
    segs[(*nsegs)++] = buf + used;
    used += strlen(buf + used) + 1;
    i += len + 1;
  }
  return 1;
}

/* 405, with the methods the path has in the message and, for the host's
   Allow header, as an array "allow". */
static int not_allowed(wh__admin *a, const char *method, const char *allowed)
{
  if (wh__admin_error(a, 405, "no_route", NULL, "method \"%.16s\" is not allowed here; allowed: %s", method,
                      allowed))
    return a->rc;
  cJSON *doc = cJSON_Parse(a->out);
  cJSON *list = cJSON_AddArrayToObject(cJSON_GetObjectItem(doc, "error"), "allow");
  for (const char *p = allowed; list && *p;) {
    size_t n = strcspn(p, ",");
    char m[16];
    snprintf(m, sizeof m, "%.*s", (int)n, p);
    cJSON_AddItemToArray(list, cJSON_CreateString(m));
    p += n + strspn(p + n, ", ");
  }
  return wh__admin_json(a, 405, list ? doc : (cJSON_Delete(doc), NULL));
}

static int route(wh__admin *a, const char *method, const char *path)
{
  size_t n = strcspn(path, "?");
  a->query = path[n] == '?' ? path + n + 1 : "";
  char buf[PATH_MAX_BYTES + 1], *segs[MAX_SEGMENTS];
  size_t nsegs = 0;
  if (!split_path(path, n, buf, segs, &nsegs))
    return wh__admin_error(a, 404, "no_route", NULL, "no such route: %.200s", path);
  char allowed[64] = "";
  for (size_t i = 0; i < WH__COUNT(routes); i++) {
    const char *id = NULL;
    if (!route_matches(&routes[i], segs, nsegs, &id))
      continue;
    if (strcmp(routes[i].method, method) != 0) {
      size_t used = strlen(allowed);
      snprintf(allowed + used, sizeof allowed - used, "%s%s", used ? ", " : "", routes[i].method);
      continue;
    }
    a->id = id;
    if (!routes[i].query && !no_params(a))
      return a->rc;
    return routes[i].fn(a);
  }
  if (*allowed)
    return not_allowed(a, method, allowed);
  return wh__admin_error(a, 404, "no_route", NULL, "no such route: %.200s", path);
}

int wh_admin_handle(wh_registry *reg, wh_dispatcher *d, const char *method, const char *path, const void *body,
                    size_t body_len, int *status_out, char **body_out)
{
  if (status_out)
    *status_out = 500;
  if (body_out)
    *body_out = NULL;
  if (!reg || !method || !path || !status_out || !body_out || (!body && body_len))
    return wh__fail(WH_EINVAL, "admin: %s",
                    !reg ? "registry must not be NULL" : !method ? "method must not be NULL"
                    : !path ? "path must not be NULL" : !status_out ? "status_out must not be NULL"
                    : !body_out ? "body_out must not be NULL" : "body is NULL with a length");
  wh__admin a = {.reg = reg, .d = d, .body = body, .body_len = body_len};
  if (body_len > WH__ADMIN_BODY_MAX)
    wh__admin_error(&a, 413, "bad_request", NULL, "body: %zu bytes, at most %d", body_len, WH__ADMIN_BODY_MAX);
  else
    route(&a, method, path);
  if (a.rc || !a.out) {
    free(a.out);
    return wh__oom();
  }
  *status_out = a.status;
  *body_out = a.out;
  return WH_OK;
}
