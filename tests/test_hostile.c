/* Bad input from the host (issue 5, item 4).
 *
 * Every public function gets NULL for each pointer argument (one at a time),
 * empty strings, invalid UTF-8 in its text arguments, unknown ids, output
 * buffers of 0 and 1 bytes, absurd numbers, resource JSON nested 100,000
 * levels deep, a body of more than 2 GiB, and calls in the wrong lifecycle
 * state, including wh_dispatcher_free/stop/drain from inside a callback.
 * Each call must return its error code and leave a wh_error_last() message of
 * its own that names the argument or field, and the process must survive.
 *
 * Probes that could take the process down (memory corruption, undefined
 * behaviour that the sanitizers abort on) run in a fresh child process
 * (this program re-executed with "--child NAME"), so that a crash is reported
 * as a failed check instead of ending the test.
 *
 * WH_HOSTILE_SKIP_BIG=1 skips the 2 GiB signing checks (they allocate 2 GiB,
 * and the library copies the body once more while signing); they are skipped
 * by default under ThreadSanitizer, where they take minutes (=0 forces them).
 */
#include <webhook/webhook.h>

#include "receiver.h"
#include "support/check.h"
#include "support/harness.h"

#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Under ThreadSanitizer every byte copied is checked: 2 GiB take minutes. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

static rcv *R;

/* ---- expecting a failure ------------------------------------------------------ */

/* A failing call whose message names this marker: what a call under test
   leaves must differ from it, so a stale message does not pass for a new one. */
#define MARK "hostile-marker-7f3a"

static void mark(void)
{
  wh_registry *r = NULL;
  wh_registry_open(&r, MARK);
  wh_registry_free(r);
}

static int expect_fail(int rc, int code, const char *needle, const char *expr, const char *file, int line)
{
  const char *msg = wh_error_last();
  check_count++;
  if (rc != code) {
    check_failures++;
    fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (%s); message: \"%s\"\n", file, line, expr, rc,
            wh_strerror(rc), code, wh_strerror(code), msg ? msg : "(null)");
  } else if (!msg || !*msg || strstr(msg, MARK)) {
    check_failures++;
    fprintf(stderr, "%s:%d: %s returned %s but left no message of its own (\"%s\")\n", file, line, expr,
            wh_strerror(rc), msg ? msg : "(null)");
  } else if (needle && !strstr(msg, needle)) {
    check_failures++;
    fprintf(stderr, "%s:%d: %s: message \"%s\" does not name \"%s\"\n", file, line, expr, msg, needle);
  }
  return rc;
}

/* expr must return code and leave a message containing needle (NULL: any).
   Evaluates to what expr returned. */
#define BAD(expr, code, needle) expect_fail((mark(), (expr)), (code), (needle), #expr, __FILE__, __LINE__)

/* The same, where either of two codes is right (it depends on the build). */
static int expect_fail2(int rc, int c1, int c2, const char *needle, const char *expr, const char *file, int line)
{
  return expect_fail(rc, rc == c2 ? c2 : c1, needle, expr, file, line);
}
#define BAD2(expr, c1, c2, needle) expect_fail2((mark(), (expr)), (c1), (c2), (needle), #expr, __FILE__, __LINE__)

/* Invalid UTF-8 of every kind the validators must know. */
static const char *const bad_utf8[] = {
  "\xff",                 /* never valid */
  "ab\xfe",               /* never valid, after ASCII */
  "\xc3\x28",             /* bad continuation */
  "\xa0\xa1",             /* lone continuation bytes */
  "\xe2\x82",             /* truncated 3-byte sequence */
  "\xf0\x28\x8c\xbc",     /* bad second byte of 4 */
  "\xc0\xaf",             /* overlong '/' */
  "\xe0\x80\xaf",         /* overlong '/', 3 bytes */
  "\xed\xa0\x80",         /* UTF-16 surrogate */
  "\xf4\x90\x80\x80",     /* above U+10FFFF */
  "\xf8\x88\x80\x80\x80", /* 5-byte form */
};
#define NBAD (sizeof bad_utf8 / sizeof bad_utf8[0])

/* A string of n copies of c (n bytes + NUL), to free. */
static char *repeat(char c, size_t n)
{
  char *s = malloc(n + 1);
  if (!s)
    abort();
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

/* 1 when s is well-formed UTF-8 (for checking the library's JSON output). */
static int utf8_ok(const char *s)
{
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned char c = *p;
    size_t n;
    uint32_t cp, min;
    if (c < 0x80) {
      p++;
      continue;
    }
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    for (size_t k = 1; k < n; k++) {
      if ((p[k] & 0xC0) != 0x80)
        return 0;
      cp = cp << 6 | (p[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    p += n;
  }
  return 1;
}

/* Number of endpoints in the registry, from wh_endpoint_list_json. */
static int endpoint_count(wh_registry *reg)
{
  char *j = NULL;
  if (wh_endpoint_list_json(reg, &j) != WH_OK)
    return -1;
  int n = 0;
  for (const char *p = j; (p = strstr(p, "\"id\":")); p++)
    n++;
  wh_free(j);
  return n;
}

/* Buffer canaries: nothing may be written past what the call was told. */
#define CANARY 'Z'
static void fill(char *buf, size_t n) { memset(buf, CANARY, n); }
static int untouched(const char *buf, size_t from, size_t to)
{
  for (size_t i = from; i < to; i++)
    if (buf[i] != CANARY)
      return 0;
  return 1;
}

static const char SECRET[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"; /* 24 bytes */

/* ---- errors, versions, frees -------------------------------------------------- */

static void errors_and_frees(void)
{
  CHECK(wh_version() && strcmp(wh_version(), WH_VERSION_STRING) == 0);
  CHECK_INT(wh_version_num(), WH_VERSION_NUM);
  for (int c = WH_OK; c <= WH_ERANGE; c++) {
    const char *t = wh_strerror(c);
    CHECK(t && *t && strcmp(t, "unknown error") != 0);
  }
  const int out_of_range[] = {-1, -12, WH_ERANGE + 1, 100, 4096, INT_MAX, INT_MIN};
  for (size_t i = 0; i < sizeof out_of_range / sizeof out_of_range[0]; i++)
    CHECK_STR(wh_strerror(out_of_range[i]), "unknown error");
  CHECK(wh_error_last() != NULL);
  wh_free(NULL);
  wh_registry_free(NULL);
  wh_event_free(NULL);
  wh_dispatcher_free(NULL);
  /* The result accessors are given a NULL result: zeros, no crash. */
  CHECK(wh_result_message_id(NULL) == NULL);
  CHECK(wh_result_endpoint_id(NULL) == NULL);
  CHECK_INT(wh_result_outcome(NULL), 0);
  CHECK_INT(wh_result_attempt(NULL), 0);
  CHECK_INT(wh_result_http_status(NULL), 0);
  CHECK(wh_result_error(NULL) == NULL);
  CHECK_INT(wh_result_next_attempt_ms(NULL), 0);
  CHECK_INT(wh_result_duration_ms(NULL), 0);
  CHECK_INT(wh_result_endpoint_disabled(NULL), 0);
}

/* ---- wh_registry_open ---------------------------------------------------------- */

static void registry_open_bad(void)
{
  wh_registry *reg = (wh_registry *)&reg; /* must be reset to NULL on failure */
  BAD(wh_registry_open(NULL, NULL), WH_EINVAL, "out");
  BAD(wh_registry_open(&reg, "nonsense"), WH_EINVAL, "store");
  CHECK(reg == NULL);
  BAD(wh_registry_open(&reg, "MEMORY:"), WH_EINVAL, "store");
  BAD(wh_registry_open(&reg, "memory:x"), WH_EINVAL, "store");
  BAD(wh_registry_open(&reg, "sqlite:"), WH_EINVAL, "sqlite");
  /* Without the PostgreSQL store in the build: EINVAL; with it, nothing listens on port 1. */
  BAD2(wh_registry_open(&reg, "postgresql://127.0.0.1:1/none?connect_timeout=5"), WH_EINVAL, WH_ESTORE,
       "postgresql");
  CHECK(reg == NULL);
  BAD(wh_registry_open(&reg, "sqlite:/nonexistent-wh-dir/sub/x.db"), WH_ESTORE, "sqlite:");
  for (size_t i = 0; i < NBAD; i++) {
    char store[64];
    snprintf(store, sizeof store, "sqlite:/tmp/%s.db", bad_utf8[i]);
    BAD(wh_registry_open(&reg, store), WH_EINVAL, "UTF-8");
    snprintf(store, sizeof store, "postgresql://h/%s", bad_utf8[i]);
    BAD(wh_registry_open(&reg, store), WH_EINVAL, "UTF-8");
    BAD(wh_registry_open(&reg, bad_utf8[i]), WH_EINVAL, "store");
    CHECK(reg == NULL);
  }
  char *longpath = repeat('a', 5000);
  memcpy(longpath, "sqlite:/tmp/", 12);
  BAD(wh_registry_open(&reg, longpath), WH_EINVAL, "longer");
  free(longpath);
  /* The empty string is the memory store. */
  CHECK_OK(wh_registry_open(&reg, ""));
  wh_registry_free(reg);
  CHECK_OK(wh_registry_open(&reg, "memory:"));
  wh_registry_free(reg);
}

/* ---- endpoints ------------------------------------------------------------------- */

static void endpoint_add_bad(wh_registry *reg)
{
  const char *url = "https://hooks.example.com/in";
  char id[WH_ID_MAX + 16];
  int before = endpoint_count(reg);

  BAD(wh_endpoint_add(NULL, "n", url, NULL, id, sizeof id), WH_EINVAL, "registry");
  BAD(wh_endpoint_add(reg, NULL, url, NULL, id, sizeof id), WH_EINVAL, "endpoint name");
  BAD(wh_endpoint_add(reg, "n", NULL, NULL, id, sizeof id), WH_EINVAL, "endpoint url");
  BAD(wh_endpoint_add(reg, "", url, NULL, id, sizeof id), WH_EINVAL, "endpoint name");
  BAD(wh_endpoint_add(reg, "n", "", NULL, id, sizeof id), WH_EINVAL, "endpoint url");
  for (size_t i = 0; i < NBAD; i++) {
    BAD(wh_endpoint_add(reg, bad_utf8[i], url, NULL, NULL, 0), WH_EINVAL, "endpoint name");
    BAD(wh_endpoint_add(reg, "n", url, bad_utf8[i], NULL, 0), WH_EINVAL, "endpoint description");
    /* A URL is ASCII (RFC 3986); raw bytes >= 0x80 in it end up in the
       endpoint's JSON as invalid UTF-8 if they are let in. */
    char bad_url[128], name[32];
    snprintf(name, sizeof name, "url-probe-%zu", i);
    snprintf(bad_url, sizeof bad_url, "https://hooks.example.com/%s", bad_utf8[i]);
    if (BAD(wh_endpoint_add(reg, name, bad_url, NULL, id, sizeof id), WH_EINVAL, "endpoint url") == WH_OK)
      wh_endpoint_remove(reg, id);
    snprintf(bad_url, sizeof bad_url, "https://ex%s.com/", bad_utf8[i]);
    if (BAD(wh_endpoint_add(reg, name, bad_url, NULL, id, sizeof id), WH_EINVAL, "endpoint url") == WH_OK)
      wh_endpoint_remove(reg, id);
  }
  BAD(wh_endpoint_add(reg, "n", "ftp://hooks.example.com/", NULL, NULL, 0), WH_EINVAL, "scheme");
  BAD(wh_endpoint_add(reg, "n", "https://", NULL, NULL, 0), WH_EINVAL, "host");
  BAD(wh_endpoint_add(reg, "n", "https://u:p@hooks.example.com/", NULL, NULL, 0), WH_EINVAL, "credentials");
  BAD(wh_endpoint_add(reg, "n", "https://hooks.example.com/a b", NULL, NULL, 0), WH_EINVAL, "endpoint url");
  char *s = repeat('n', 257);
  BAD(wh_endpoint_add(reg, s, url, NULL, NULL, 0), WH_EINVAL, "endpoint name");
  free(s);
  s = repeat('d', 4097);
  BAD(wh_endpoint_add(reg, "n", url, s, NULL, 0), WH_EINVAL, "endpoint description");
  free(s);
  s = repeat('p', 65537);
  memcpy(s, "https://hooks.example.com/", 26);
  BAD(wh_endpoint_add(reg, "n", s, NULL, NULL, 0), WH_EINVAL, "endpoint url");
  free(s);
  /* Output buffers too small: WH_ERANGE, nothing written, nothing added. */
  const size_t small[] = {0, 1, WH_ID_MAX - 1};
  for (size_t i = 0; i < 3; i++) {
    fill(id, sizeof id);
    BAD(wh_endpoint_add(reg, "small-buffer", url, NULL, id, small[i]), WH_ERANGE, "id buffer");
    CHECK(untouched(id, 0, sizeof id));
  }
  CHECK_INT(endpoint_count(reg), before);
  /* Empty description is allowed, as is no id buffer. */
  CHECK_OK(wh_endpoint_add(reg, "dup", url, "", NULL, 0));
  BAD(wh_endpoint_add(reg, "dup", url, NULL, id, sizeof id), WH_EEXIST, "endpoint name");
  CHECK_INT(endpoint_count(reg), before + 1);
}

/* Every function that takes an endpoint id, with reg NULL, id NULL, and ids
   that do not exist: empty, invalid UTF-8, unknown, absurdly long. */
static void endpoint_ids_bad(wh_registry *reg, const char *good)
{
  char buf[256], *json = NULL;
  char *huge = repeat('x', 10000);
  const char *unknown[NBAD + 4];
  size_t nunknown = 0;
  unknown[nunknown++] = "";
  unknown[nunknown++] = "ep_doesnotexist0000000000000000";
  unknown[nunknown++] = huge;
  for (size_t i = 0; i < NBAD; i++)
    unknown[nunknown++] = bad_utf8[i];

  BAD(wh_endpoint_remove(NULL, good), WH_EINVAL, "registry");
  BAD(wh_endpoint_remove(reg, NULL), WH_EINVAL, "id");
  BAD(wh_endpoint_set_enabled(NULL, good, 1), WH_EINVAL, "registry");
  BAD(wh_endpoint_set_enabled(reg, NULL, 1), WH_EINVAL, "id");
  BAD(wh_endpoint_set_url(NULL, good, "https://a.example/"), WH_EINVAL, "registry");
  BAD(wh_endpoint_set_url(reg, NULL, "https://a.example/"), WH_EINVAL, "id");
  BAD(wh_endpoint_subscribe(NULL, good, "*"), WH_EINVAL, "registry");
  BAD(wh_endpoint_subscribe(reg, NULL, "*"), WH_EINVAL, "id");
  BAD(wh_endpoint_unsubscribe(NULL, good, "*"), WH_EINVAL, "registry");
  BAD(wh_endpoint_unsubscribe(reg, NULL, "*"), WH_EINVAL, "id");
  BAD(wh_endpoint_set_header(NULL, good, "X-Key", "v"), WH_EINVAL, "registry");
  BAD(wh_endpoint_set_header(reg, NULL, "X-Key", "v"), WH_EINVAL, "id");
  BAD(wh_endpoint_secret(NULL, good, buf, sizeof buf), WH_EINVAL, "registry");
  BAD(wh_endpoint_secret(reg, NULL, buf, sizeof buf), WH_EINVAL, "id");
  BAD(wh_endpoint_rotate_secret(NULL, good, NULL, 0), WH_EINVAL, "registry");
  BAD(wh_endpoint_rotate_secret(reg, NULL, NULL, 0), WH_EINVAL, "id");
  BAD(wh_endpoint_signature(NULL, good, "msg_1", 1, "b", 1, buf, sizeof buf), WH_EINVAL, "registry");
  BAD(wh_endpoint_signature(reg, NULL, "msg_1", 1, "b", 1, buf, sizeof buf), WH_EINVAL, "id");
  BAD(wh_endpoint_get_json(NULL, good, &json), WH_EINVAL, "registry");
  BAD(wh_endpoint_get_json(reg, NULL, &json), WH_EINVAL, "id");
  BAD(wh_endpoint_failed_json(NULL, good, 0, 0, &json), WH_EINVAL, "registry");
  BAD(wh_endpoint_failed_json(reg, NULL, 0, 0, &json), WH_EINVAL, "id");

  for (size_t i = 0; i < nunknown; i++) {
    const char *id = unknown[i];
    BAD(wh_endpoint_remove(reg, id), WH_ENOTFOUND, "endpoint");
    BAD(wh_endpoint_set_enabled(reg, id, 0), WH_ENOTFOUND, "endpoint");
    BAD(wh_endpoint_set_url(reg, id, "https://a.example/"), WH_ENOTFOUND, "endpoint");
    BAD(wh_endpoint_subscribe(reg, id, "*"), WH_ENOTFOUND, "endpoint");
    BAD(wh_endpoint_unsubscribe(reg, id, "*"), WH_ENOTFOUND, "endpoint");
    BAD(wh_endpoint_set_header(reg, id, "X-Key", "v"), WH_ENOTFOUND, "endpoint");
    BAD(wh_endpoint_set_header(reg, id, "X-Key", NULL), WH_ENOTFOUND, "endpoint");
    BAD(wh_endpoint_secret(reg, id, buf, sizeof buf), WH_ENOTFOUND, "endpoint");
    BAD(wh_endpoint_rotate_secret(reg, id, NULL, 10), WH_ENOTFOUND, "endpoint");
    BAD(wh_endpoint_rotate_secret(reg, id, SECRET, 0), WH_ENOTFOUND, "endpoint");
    BAD(wh_endpoint_signature(reg, id, "msg_1", 1, "b", 1, buf, sizeof buf), WH_ENOTFOUND, "endpoint");
    BAD(wh_endpoint_get_json(reg, id, &json), WH_ENOTFOUND, "endpoint");
    /* The brief asks WH_ENOTFOUND of every function taking an id; this one
       answers "[]" for an endpoint that never existed. */
    json = NULL;
    BAD(wh_endpoint_failed_json(reg, id, 0, 0, &json), WH_ENOTFOUND, "endpoint");
    wh_free(json);
  }
  free(huge);
}

/* The other arguments of the endpoint functions, on an endpoint that exists. */
static void endpoint_args_bad(wh_registry *reg, const char *id)
{
  char buf[512], *json = NULL;

  /* set_url */
  BAD(wh_endpoint_set_url(reg, id, NULL), WH_EINVAL, "endpoint url");
  BAD(wh_endpoint_set_url(reg, id, ""), WH_EINVAL, "endpoint url");
  BAD(wh_endpoint_set_url(reg, id, "gopher://a.example/"), WH_EINVAL, "scheme");
  BAD(wh_endpoint_set_url(reg, id, "http:///path"), WH_EINVAL, "host");
  BAD(wh_endpoint_set_url(reg, id, "http://a.example/\r\nX: y"), WH_EINVAL, "endpoint url");
  for (size_t i = 0; i < NBAD; i++) {
    char u[128];
    snprintf(u, sizeof u, "https://a.example/%s", bad_utf8[i]);
    if (BAD(wh_endpoint_set_url(reg, id, u), WH_EINVAL, "endpoint url") == WH_OK)
      wh_endpoint_set_url(reg, id, "https://hooks.example.com/target");
  }

  /* subscribe / unsubscribe */
  BAD(wh_endpoint_subscribe(reg, id, NULL), WH_EINVAL, "pattern");
  BAD(wh_endpoint_subscribe(reg, id, ""), WH_EINVAL, "filter");
  BAD(wh_endpoint_subscribe(reg, id, "people"), WH_EINVAL, "filter");
  BAD(wh_endpoint_subscribe(reg, id, "a.b.c"), WH_EINVAL, "filter");
  BAD(wh_endpoint_subscribe(reg, id, "**"), WH_EINVAL, "filter");
  BAD(wh_endpoint_subscribe(reg, id, ".x"), WH_EINVAL, "filter");
  BAD(wh_endpoint_unsubscribe(reg, id, NULL), WH_EINVAL, "pattern");
  BAD(wh_endpoint_unsubscribe(reg, id, ""), WH_EINVAL, "filter");
  for (size_t i = 0; i < NBAD; i++) {
    char p[64];
    snprintf(p, sizeof p, "people.%s", bad_utf8[i]);
    BAD(wh_endpoint_subscribe(reg, id, p), WH_EINVAL, "filter");
    BAD(wh_endpoint_unsubscribe(reg, id, p), WH_EINVAL, "filter");
  }
  char *longpat = repeat('a', 200);
  longpat[100] = '.';
  BAD(wh_endpoint_subscribe(reg, id, longpat), WH_EINVAL, "filter");
  free(longpat);
  BAD(wh_endpoint_unsubscribe(reg, id, "people.NEVER"), WH_ENOTFOUND, "filter");
  /* At most 256 patterns. */
  int ok = 1;
  for (int i = 0; i < 256 && ok; i++) {
    char p[64];
    snprintf(p, sizeof p, "t%d.E", i);
    ok = wh_endpoint_subscribe(reg, id, p) == WH_OK;
  }
  CHECK(ok);
  BAD(wh_endpoint_subscribe(reg, id, "one.TOO_MANY"), WH_EINVAL, "filter");
  for (int i = 0; i < 256; i++) {
    char p[64];
    snprintf(p, sizeof p, "t%d.E", i);
    wh_endpoint_unsubscribe(reg, id, p);
  }

  /* set_header */
  BAD(wh_endpoint_set_header(reg, id, NULL, "v"), WH_EINVAL, "header name");
  BAD(wh_endpoint_set_header(reg, id, "", "v"), WH_EINVAL, "header name");
  BAD(wh_endpoint_set_header(reg, id, "X Key", "v"), WH_EINVAL, "header name");
  BAD(wh_endpoint_set_header(reg, id, "X:Key", "v"), WH_EINVAL, "header name");
  BAD(wh_endpoint_set_header(reg, id, "Content-Type", "text/plain"), WH_EINVAL, "header name");
  BAD(wh_endpoint_set_header(reg, id, "HOST", "evil"), WH_EINVAL, "header name");
  BAD(wh_endpoint_set_header(reg, id, "Webhook-Signature", "v1,x"), WH_EINVAL, "header name");
  BAD(wh_endpoint_set_header(reg, id, "X-Key", "a\r\nInjected: 1"), WH_EINVAL, "X-Key");
  BAD(wh_endpoint_set_header(reg, id, "X-Key", "a\nb"), WH_EINVAL, "X-Key");
  BAD(wh_endpoint_set_header(reg, id, "X-Key", "a\x01"), WH_EINVAL, "X-Key");
  for (size_t i = 0; i < NBAD; i++) {
    char n[64];
    snprintf(n, sizeof n, "X-%s", bad_utf8[i]);
    BAD(wh_endpoint_set_header(reg, id, n, "v"), WH_EINVAL, "header name");
  }
  char *longval = repeat('v', 4097);
  BAD(wh_endpoint_set_header(reg, id, "X-Key", longval), WH_EINVAL, "X-Key");
  free(longval);
  char *longname = repeat('h', 257);
  BAD(wh_endpoint_set_header(reg, id, longname, "v"), WH_EINVAL, "header name");
  free(longname);
  /* Empty value and removal of a header that is not there are fine. */
  CHECK_OK(wh_endpoint_set_header(reg, id, "X-Empty", ""));
  CHECK_OK(wh_endpoint_set_header(reg, id, "X-Empty", NULL));
  CHECK_OK(wh_endpoint_set_header(reg, id, "X-Never-Set", NULL));
  /* A value with bytes that are not UTF-8 must not make the endpoint's JSON
     invalid: either it is refused, or the JSON stays valid UTF-8. */
  for (size_t i = 0; i < NBAD; i++) {
    char v[64];
    snprintf(v, sizeof v, "key-%s", bad_utf8[i]);
    int rc = wh_endpoint_set_header(reg, id, "X-Raw", v);
    CHECK(rc == WH_OK || rc == WH_EINVAL);
    if (rc == WH_OK) {
      CHECK_OK(wh_endpoint_get_json(reg, id, &json));
      if (json && !utf8_ok(json))
        fprintf(stderr, "  header value \"key-\\x%02x...\" made the endpoint JSON invalid UTF-8\n",
                (unsigned char)bad_utf8[i][0]);
      CHECK(json && utf8_ok(json));
      wh_free(json);
      json = NULL;
    }
  }
  wh_endpoint_set_header(reg, id, "X-Raw", NULL);
  /* At most 64 custom headers. */
  ok = 1;
  for (int i = 0; i < 64 && ok; i++) {
    char n[32];
    snprintf(n, sizeof n, "X-H%d", i);
    ok = wh_endpoint_set_header(reg, id, n, "v") == WH_OK;
  }
  CHECK(ok);
  BAD(wh_endpoint_set_header(reg, id, "X-One-Too-Many", "v"), WH_EINVAL, "64");
  for (int i = 0; i < 64; i++) {
    char n[32];
    snprintf(n, sizeof n, "X-H%d", i);
    wh_endpoint_set_header(reg, id, n, NULL);
  }

  /* secret */
  BAD(wh_endpoint_secret(reg, id, NULL, 128), WH_EINVAL, "buf");
  const size_t small[] = {0, 1, 10};
  for (size_t i = 0; i < 3; i++) {
    fill(buf, sizeof buf);
    BAD(wh_endpoint_secret(reg, id, buf, small[i]), WH_ERANGE, "buffer");
    CHECK(untouched(buf, 0, sizeof buf));
  }
  CHECK_OK(wh_endpoint_secret(reg, id, buf, 128));

  /* rotate_secret */
  BAD(wh_endpoint_rotate_secret(reg, id, "", 0), WH_EINVAL, "secret");
  BAD(wh_endpoint_rotate_secret(reg, id, "whsec_", 0), WH_EINVAL, "secret");
  BAD(wh_endpoint_rotate_secret(reg, id, "whsec_!!!!", 0), WH_EINVAL, "secret");
  BAD(wh_endpoint_rotate_secret(reg, id, "whsec_AAAA", 0), WH_EINVAL, "secret"); /* 3 bytes */
  BAD(wh_endpoint_rotate_secret(reg, id, SECRET + 6, 0), WH_EINVAL, "whsec_");   /* no prefix */
  char *longsec = repeat('A', 400);
  memcpy(longsec, "whsec_", 6);
  BAD(wh_endpoint_rotate_secret(reg, id, longsec, 0), WH_EINVAL, "secret");
  free(longsec);
  for (size_t i = 0; i < NBAD; i++) {
    char s[64];
    snprintf(s, sizeof s, "whsec_%sMfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", bad_utf8[i]);
    BAD(wh_endpoint_rotate_secret(reg, id, s, 0), WH_EINVAL, "secret");
  }
  /* The largest grace period does not overflow anything. */
  CHECK_OK(wh_endpoint_rotate_secret(reg, id, NULL, UINT_MAX));

  /* signature */
  BAD(wh_endpoint_signature(reg, id, NULL, 1, "b", 1, buf, sizeof buf), WH_EINVAL, "msg_id");
  BAD(wh_endpoint_signature(reg, id, "", 1, "b", 1, buf, sizeof buf), WH_EINVAL, "msg_id");
  BAD(wh_endpoint_signature(reg, id, "msg_1", 1, NULL, 5, buf, sizeof buf), WH_EINVAL, "body");
  BAD(wh_endpoint_signature(reg, id, "msg_1", 1, "b", 1, NULL, 200), WH_EINVAL, "header_out");
  const size_t ssmall[] = {0, 1, 47, 48 + 47}; /* two active secrets now: 48 + 48 bytes needed */
  for (size_t i = 0; i < 4; i++) {
    fill(buf, sizeof buf);
    BAD(wh_endpoint_signature(reg, id, "msg_1", 1, "b", 1, buf, ssmall[i]), WH_ERANGE, "buffer");
    CHECK(untouched(buf, ssmall[i], sizeof buf));
  }
  CHECK_OK(wh_endpoint_signature(reg, id, "msg_1", 1, NULL, 0, buf, sizeof buf));
  CHECK_OK(wh_endpoint_signature(reg, id, "msg_\xff\xfe", INT64_MIN, "b", 1, buf, sizeof buf));
  CHECK_OK(wh_endpoint_signature(reg, id, "msg_1", INT64_MAX, "b", 1, buf, sizeof buf));

  /* get_json / list_json / failed_json */
  BAD(wh_endpoint_get_json(reg, id, NULL), WH_EINVAL, "json_out");
  BAD(wh_endpoint_list_json(NULL, &json), WH_EINVAL, "registry");
  BAD(wh_endpoint_list_json(reg, NULL), WH_EINVAL, "json_out");
  BAD(wh_endpoint_failed_json(reg, id, 0, 0, NULL), WH_EINVAL, "json_out");
  CHECK_OK(wh_endpoint_failed_json(reg, id, INT64_MIN, SIZE_MAX, &json));
  wh_free(json);
  CHECK_OK(wh_endpoint_failed_json(reg, id, INT64_MAX, 1, &json));
  wh_free(json);
  /* Whatever was let in, the registry's JSON is valid UTF-8. */
  json = NULL;
  CHECK_OK(wh_endpoint_list_json(reg, &json));
  CHECK(json && utf8_ok(json));
  wh_free(json);
}

/* ---- the attempt log and purge, without a dispatcher ------------------------------ */

static void log_bad(wh_registry *reg)
{
  char *json = NULL;
  size_t n = 99;
  BAD(wh_message_get_json(NULL, "msg_x", &json), WH_EINVAL, "registry");
  BAD(wh_message_get_json(reg, NULL, &json), WH_EINVAL, "msg_id");
  BAD(wh_message_get_json(reg, "msg_x", NULL), WH_EINVAL, "json_out");
  BAD(wh_message_get_json(reg, "", &json), WH_ENOTFOUND, "message");
  BAD(wh_message_get_json(reg, "msg_doesnotexist", &json), WH_ENOTFOUND, "message");
  for (size_t i = 0; i < NBAD; i++)
    BAD(wh_message_get_json(reg, bad_utf8[i], &json), WH_ENOTFOUND, "message");
  char *huge = repeat('m', 100000);
  BAD(wh_message_get_json(reg, huge, &json), WH_ENOTFOUND, "message");
  free(huge);
  BAD(wh_registry_purge(NULL, 0, &n), WH_EINVAL, "registry");
  CHECK_OK(wh_registry_purge(reg, INT64_MIN, NULL));
  CHECK_OK(wh_registry_purge(reg, INT64_MAX, &n));
  CHECK_INT(n, 0);
}

/* ---- events ------------------------------------------------------------------------- */

/* A resource of `depth` nested containers in all: {"a":{"a":...{}...}}, or
   with arrays {"a":[[...[]...]]}; without its closing brackets if !closed. */
static char *nested(size_t depth, int arrays, int closed)
{
  size_t len = 0;
  char *s = malloc(depth * 6 + 16);
  if (!s)
    abort();
  if (depth < 2)
    arrays = 0;
  size_t opens = depth - 1; /* before the innermost, empty one */
  for (size_t i = 0; i < opens; i++) {
    if (arrays && i > 0) {
      s[len++] = '[';
    } else {
      memcpy(s + len, "{\"a\":", 5);
      len += 5;
    }
  }
  s[len++] = arrays ? '[' : '{';
  s[len++] = arrays ? ']' : '}';
  for (size_t i = opens; closed && i > 0; i--)
    s[len++] = arrays && i > 1 ? ']' : '}';
  s[len] = '\0';
  return s;
}

static void event_bad(void)
{
  wh_event *ev = (wh_event *)&ev;
  char *json = NULL;
  BAD(wh_event_new(NULL, "people", "CREATE"), WH_EINVAL, "out");
  BAD(wh_event_new(&ev, NULL, "CREATE"), WH_EINVAL, "resource_type");
  CHECK(ev == NULL);
  BAD(wh_event_new(&ev, "people", NULL), WH_EINVAL, "event_type");
  BAD(wh_event_new(&ev, "", "CREATE"), WH_EINVAL, "resource_type");
  BAD(wh_event_new(&ev, "people", ""), WH_EINVAL, "event_type");
  BAD(wh_event_new(&ev, "peo.ple", "CREATE"), WH_EINVAL, "resource_type");
  BAD(wh_event_new(&ev, "people", "*"), WH_EINVAL, "event_type");
  char *n65 = repeat('n', 65);
  BAD(wh_event_new(&ev, n65, "CREATE"), WH_EINVAL, "resource_type");
  BAD(wh_event_new(&ev, "people", n65), WH_EINVAL, "event_type");
  free(n65);
  for (size_t i = 0; i < NBAD; i++) {
    BAD(wh_event_new(&ev, bad_utf8[i], "CREATE"), WH_EINVAL, "resource_type");
    BAD(wh_event_new(&ev, "people", bad_utf8[i]), WH_EINVAL, "event_type");
  }
  CHECK(ev == NULL);

  CHECK_OK(wh_event_new(&ev, "people", "CREATE"));
  CHECK_OK(wh_event_set_resource_json(ev, "{\"keep\":1}"));
  BAD(wh_event_set_resource_json(NULL, "{}"), WH_EINVAL, "event");
  BAD(wh_event_set_resource_json(ev, NULL), WH_EINVAL, "resource");
  BAD(wh_event_set_resource_json(ev, ""), WH_EINVAL, "resource");
  BAD(wh_event_set_resource_json(ev, "   "), WH_EINVAL, "resource");
  BAD(wh_event_set_resource_json(ev, "[]"), WH_EINVAL, "resource");
  BAD(wh_event_set_resource_json(ev, "\"x\""), WH_EINVAL, "resource");
  BAD(wh_event_set_resource_json(ev, "{} {}"), WH_EINVAL, "resource");
  BAD(wh_event_set_resource_json(ev, "{\"a\":}"), WH_EINVAL, "resource");
  BAD(wh_event_set_resource_json(ev, "{\"a\":1,}"), WH_EINVAL, "resource");
  BAD(wh_event_set_resource_json(ev, "{\"a\":\"\\ud800\"}"), WH_EINVAL, "resource");
  BAD(wh_event_set_resource_json(ev, "{\"a\":01}"), WH_EINVAL, "resource");
  BAD(wh_event_set_resource_json(ev, "{\"a\":\"\x01\"}"), WH_EINVAL, "resource");
  for (size_t i = 0; i < NBAD; i++) {
    char j[64];
    snprintf(j, sizeof j, "{\"a\":\"%s\"}", bad_utf8[i]);
    BAD(wh_event_set_resource_json(ev, j), WH_EINVAL, "UTF-8");
    snprintf(j, sizeof j, "{\"%s\":1}", bad_utf8[i]);
    BAD(wh_event_set_resource_json(ev, j), WH_EINVAL, "UTF-8");
  }
  /* Nesting: 512 levels are fine, 513 and 100,000 are not, objects or arrays,
     closed or not; nothing recurses on the stack. */
  for (int arrays = 0; arrays <= 1; arrays++) {
    char *j = nested(512, arrays, 1);
    CHECK_OK(wh_event_set_resource_json(ev, j));
    free(j);
    j = nested(513, arrays, 1);
    BAD(wh_event_set_resource_json(ev, j), WH_EINVAL, "nested");
    free(j);
    j = nested(100000, arrays, 1);
    BAD(wh_event_set_resource_json(ev, j), WH_EINVAL, "nested");
    free(j);
    j = nested(100000, arrays, 0);
    BAD(wh_event_set_resource_json(ev, j), WH_EINVAL, "nested");
    free(j);
  }
  char *closers = repeat('}', 100000);
  closers[0] = '{';
  closers[1] = '}';
  BAD(wh_event_set_resource_json(ev, closers), WH_EINVAL, "resource");
  free(closers);
  char *openers = repeat('[', 100000);
  BAD(wh_event_set_resource_json(ev, openers), WH_EINVAL, "resource");
  free(openers);
  /* A failed set leaves the resource as it was. */
  CHECK_OK(wh_event_set_resource_json(ev, "{\"keep\":1}"));
  BAD(wh_event_set_resource_json(ev, "{\"keep\":"), WH_EINVAL, "resource");
  CHECK_OK(wh_event_to_json(ev, &json));
  CHECK(json && strncmp(json, "{\"resource\":{\"keep\":1},", 23) == 0);
  wh_free(json);

  /* The ids: NULL is "back to null", empty is fine, bad UTF-8 and > 1024 bytes are not. */
  int (*const setters[])(wh_event *, const char *) = {wh_event_set_resource_id, wh_event_set_tenant_id,
                                                      wh_event_set_user_id};
  const char *const names[] = {"resource_id", "tenant_id", "user_id"};
  char *long_id = repeat('i', 1025);
  for (int k = 0; k < 3; k++) {
    BAD(setters[k](NULL, "x"), WH_EINVAL, "event");
    CHECK_OK(setters[k](ev, NULL));
    CHECK_OK(setters[k](ev, ""));
    for (size_t i = 0; i < NBAD; i++)
      BAD(setters[k](ev, bad_utf8[i]), WH_EINVAL, names[k]);
    BAD(setters[k](ev, long_id), WH_EINVAL, names[k]);
    long_id[1024] = '\0';
    CHECK_OK(setters[k](ev, long_id));
    long_id[1024] = 'i';
  }
  free(long_id);

  BAD(wh_event_set_time(NULL, 0), WH_EINVAL, "event");
  BAD(wh_event_set_time(ev, -1), WH_EINVAL, "event_time");
  BAD(wh_event_set_time(ev, INT64_MIN), WH_EINVAL, "event_time");
  BAD(wh_event_set_time(ev, INT64_MAX), WH_EINVAL, "event_time");
  BAD(wh_event_set_time(ev, 253402300800000000LL), WH_EINVAL, "event_time");
  CHECK_OK(wh_event_set_time(ev, 0));
  CHECK_OK(wh_event_set_time(ev, 253402300799999999LL));
  CHECK_OK(wh_event_to_json(ev, &json));
  CHECK(json && strstr(json, "\"event_time\":\"9999-12-31T23:59:59.999999Z\""));
  wh_free(json);

  BAD(wh_event_to_json(NULL, &json), WH_EINVAL, "event");
  BAD(wh_event_to_json(ev, NULL), WH_EINVAL, "json_out");
  wh_event_free(ev);
}

/* ---- signing and verification --------------------------------------------------------- */

static void signing_bad(void)
{
  char sig[256];
  const char *body = "{\"a\":1}";
  size_t bl = strlen(body);

  BAD(wh_secret_generate(NULL, 64), WH_EINVAL, "secret buffer");
  const size_t small[] = {0, 1, 10, 44};
  for (size_t i = 0; i < 4; i++) {
    fill(sig, sizeof sig);
    BAD(wh_secret_generate(sig, small[i]), WH_ERANGE, "secret buffer");
    CHECK(untouched(sig, 0, sizeof sig));
  }

  BAD(wh_sign(NULL, "msg_1", 1, body, bl, sig, sizeof sig), WH_EINVAL, "secret");
  BAD(wh_sign(SECRET, NULL, 1, body, bl, sig, sizeof sig), WH_EINVAL, "msg_id");
  BAD(wh_sign(SECRET, "msg_1", 1, NULL, bl, sig, sizeof sig), WH_EINVAL, "body");
  BAD(wh_sign(SECRET, "msg_1", 1, body, bl, NULL, sizeof sig), WH_EINVAL, "signature buffer");
  BAD(wh_sign("", "msg_1", 1, body, bl, sig, sizeof sig), WH_EINVAL, "secret");
  BAD(wh_sign("whsec_", "msg_1", 1, body, bl, sig, sizeof sig), WH_EINVAL, "secret");
  BAD(wh_sign(SECRET, "", 1, body, bl, sig, sizeof sig), WH_EINVAL, "msg_id");
  for (size_t i = 0; i < NBAD; i++) {
    char s[64];
    snprintf(s, sizeof s, "whsec_%s", bad_utf8[i]);
    BAD(wh_sign(s, "msg_1", 1, body, bl, sig, sizeof sig), WH_EINVAL, "secret");
    BAD(wh_sign(bad_utf8[i], "msg_1", 1, body, bl, sig, sizeof sig), WH_EINVAL, "secret");
    /* An id of any bytes can be signed; it is the sender's text. */
    CHECK_OK(wh_sign(SECRET, bad_utf8[i], 1, body, bl, sig, sizeof sig));
  }
  const size_t ssmall[] = {0, 1, 47};
  for (size_t i = 0; i < 3; i++) {
    fill(sig, sizeof sig);
    BAD(wh_sign(SECRET, "msg_1", 1, body, bl, sig, ssmall[i]), WH_ERANGE, "signature buffer");
    CHECK(untouched(sig, 0, sizeof sig));
  }
  CHECK_OK(wh_sign(SECRET, "msg_1", 1, NULL, 0, sig, 48));
  CHECK_OK(wh_sign(SECRET, "msg_1", INT64_MIN, body, bl, sig, sizeof sig));
  CHECK_OK(wh_sign(SECRET, "msg_1", INT64_MAX, body, bl, sig, sizeof sig));

  /* verify */
  int64_t now = 1700000000;
  CHECK_OK(wh_sign(SECRET, "msg_1", now, body, bl, sig, sizeof sig));
  CHECK_OK(wh_verify(SECRET, "msg_1", "1700000000", sig, body, bl, now));
  BAD(wh_verify(NULL, "msg_1", "1700000000", sig, body, bl, now), WH_EINVAL, "secret");
  BAD(wh_verify(SECRET, NULL, "1700000000", sig, body, bl, now), WH_EINVAL, "msg_id");
  BAD(wh_verify(SECRET, "msg_1", NULL, sig, body, bl, now), WH_EINVAL, "timestamp");
  BAD(wh_verify(SECRET, "msg_1", "1700000000", NULL, body, bl, now), WH_EINVAL, "signature");
  BAD(wh_verify(SECRET, "msg_1", "1700000000", sig, NULL, bl, now), WH_EINVAL, "body");
  BAD(wh_verify("", "msg_1", "1700000000", sig, body, bl, now), WH_EINVAL, "secret");
  BAD(wh_verify(SECRET, "", "1700000000", sig, body, bl, now), WH_EINVAL, "msg_id");
  BAD(wh_verify(SECRET, "msg_1", "", sig, body, bl, now), WH_ETIMESTAMP, "timestamp");
  BAD(wh_verify(SECRET, "msg_1", "1700000000", "", body, bl, now), WH_ESIGNATURE, "signature");
  const char *bad_ts[] = {"-", "+1700000000", " 1700000000", "1700000000 ", "0x10", "1.5e9",
                          "99999999999999999999", "-9223372036854775808", "1700000000\n"};
  for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++)
    BAD(wh_verify(SECRET, "msg_1", bad_ts[i], sig, body, bl, now), WH_ETIMESTAMP, "timestamp");
  for (size_t i = 0; i < NBAD; i++) {
    char s[64];
    snprintf(s, sizeof s, "whsec_%s", bad_utf8[i]);
    BAD(wh_verify(s, "msg_1", "1700000000", sig, body, bl, now), WH_EINVAL, "secret");
    BAD(wh_verify(SECRET, bad_utf8[i], "1700000000", sig, body, bl, now), WH_ESIGNATURE, "signature");
    BAD(wh_verify(SECRET, "msg_1", bad_utf8[i], sig, body, bl, now), WH_ETIMESTAMP, "timestamp");
    char h[128];
    snprintf(h, sizeof h, "v1,%s %s", bad_utf8[i], bad_utf8[i]);
    BAD(wh_verify(SECRET, "msg_1", "1700000000", h, body, bl, now), WH_ESIGNATURE, "signature");
  }
  /* A megabyte of header: spaces, or entries that almost match. */
  char *hdr = repeat(' ', 1 << 20);
  BAD(wh_verify(SECRET, "msg_1", "1700000000", hdr, body, bl, now), WH_ESIGNATURE, "signature");
  for (size_t i = 0; i + 48 < (size_t)1 << 20; i += 48) {
    memcpy(hdr + i, sig, 47);
    hdr[i + 46] ^= 1;
  }
  BAD(wh_verify(SECRET, "msg_1", "1700000000", hdr, body, bl, now), WH_ESIGNATURE, "signature");
  memcpy(hdr + 48 * 1000, sig, 47); /* one good entry among thousands */
  CHECK_OK(wh_verify(SECRET, "msg_1", "1700000000", hdr, body, bl, now));
  free(hdr);
}

/* More than 2 GiB of body, backed by memory: signing and verifying work (or
   fail cleanly), and every byte counts, the last one too. */
static void signing_2gib(wh_registry *reg, const char *ep)
{
  const char *env = getenv("WH_HOSTILE_SKIP_BIG");
  int skip = env && *env ? strcmp(env, "0") != 0 : UNDER_TSAN;
  if (skip) {
    printf("hostile: 2 GiB checks skipped (%s)\n", env && *env ? "WH_HOSTILE_SKIP_BIG" : "ThreadSanitizer build");
    return;
  }
  size_t len = ((size_t)2 << 30) + 7; /* past INT_MAX and UINT32 halves */
  unsigned char *body = malloc(len);
  if (!body) {
    printf("hostile: 2 GiB checks skipped (malloc of %zu bytes failed)\n", len);
    return;
  }
  for (size_t i = 0; i < len; i += 4096)
    body[i] = (unsigned char)(i >> 12);
  memset(body + len - 4096, 'e', 4096);
  int64_t t0 = h_mono_ms();
  char sig[64], ts[32], hdr[256];
  int64_t now = 1700000000;
  snprintf(ts, sizeof ts, "%lld", (long long)now);
  int rc = wh_sign(SECRET, "msg_big", now, body, len, sig, sizeof sig);
  CHECK(rc == WH_OK || rc == WH_ENOMEM);
  if (rc == WH_OK) {
    CHECK_OK(wh_verify(SECRET, "msg_big", ts, sig, body, len, now));
    /* The byte at 2^31: a length cut to 32 bits (signed) would stop before it. */
    body[(size_t)1 << 31] ^= 1;
    CHECK_ERR(wh_verify(SECRET, "msg_big", ts, sig, body, len, now), WH_ESIGNATURE, "signature");
    body[(size_t)1 << 31] ^= 1;
    /* The endpoint signs the same bytes the same way once SECRET is its current secret. */
    CHECK_OK(wh_endpoint_rotate_secret(reg, ep, SECRET, 0));
    rc = wh_endpoint_signature(reg, ep, "msg_big", now, body, len, hdr, sizeof hdr);
    CHECK(rc == WH_OK || rc == WH_ENOMEM);
    size_t sl = strlen(sig);
    if (rc == WH_OK)
      CHECK(strncmp(hdr, sig, sl) == 0 && (hdr[sl] == ' ' || hdr[sl] == '\0'));
  }
  free(body);
  printf("hostile: signing and verifying %zu bytes took %lld ms\n", len, (long long)(h_mono_ms() - t0));
}

/* ---- dispatcher options ---------------------------------------------------------------- */

static void dispatcher_options_bad(wh_registry *reg)
{
  wh_dispatcher *d = (wh_dispatcher *)&d;
  BAD(wh_dispatcher_new(NULL, reg), WH_EINVAL, "out");
  BAD(wh_dispatcher_new(&d, NULL), WH_EINVAL, "registry");
  CHECK(d == NULL);
  CHECK_OK(wh_dispatcher_new(&d, reg));

  BAD(wh_dispatcher_set_int(NULL, WH_OPT_WORKERS, 2), WH_EINVAL, "dispatcher");
  BAD(wh_dispatcher_set_str(NULL, WH_OPT_USER_AGENT, "x"), WH_EINVAL, "dispatcher");
  BAD(wh_dispatcher_on_result(NULL, h_on_result, NULL), WH_EINVAL, "dispatcher");
  BAD(wh_dispatcher_on_disabled(NULL, h_on_disabled, NULL), WH_EINVAL, "dispatcher");
  BAD(wh_dispatcher_start(NULL), WH_EINVAL, "dispatcher");
  BAD(wh_dispatcher_drain(NULL, 0), WH_EINVAL, "dispatcher");
  BAD(wh_dispatcher_stop(NULL, 0), WH_EINVAL, "dispatcher");

  const int no_such[] = {0, -1, 999, 4096, INT_MAX, INT_MIN};
  for (size_t i = 0; i < sizeof no_such / sizeof no_such[0]; i++) {
    BAD(wh_dispatcher_set_int(d, (wh_option)no_such[i], 1), WH_EINVAL, "option");
    BAD(wh_dispatcher_set_str(d, (wh_option)no_such[i], "1"), WH_EINVAL, "option");
  }
  /* Every integer option, just outside its range on both sides and at the extremes of long. */
  static const struct {
    wh_option opt;
    const char *name;
    long lo, hi;
  } ints[] = {
    {WH_OPT_WORKERS, "WH_OPT_WORKERS", 1, 64},
    {WH_OPT_MAX_IN_FLIGHT, "WH_OPT_MAX_IN_FLIGHT", 1, 100000},
    {WH_OPT_MAX_PER_ENDPOINT, "WH_OPT_MAX_PER_ENDPOINT", 1, 100000},
    {WH_OPT_TIMEOUT_MS, "WH_OPT_TIMEOUT_MS", 1000, 30000},
    {WH_OPT_CONNECT_TIMEOUT_MS, "WH_OPT_CONNECT_TIMEOUT_MS", 100, 30000},
    {WH_OPT_ALLOW_PRIVATE_NETWORKS, "WH_OPT_ALLOW_PRIVATE_NETWORKS", 0, 1},
    {WH_OPT_QUEUE_LIMIT, "WH_OPT_QUEUE_LIMIT", 1, 1000000000L},
    {WH_OPT_RETRY_JITTER_PCT, "WH_OPT_RETRY_JITTER_PCT", 0, 50},
    {WH_OPT_DISABLE_AFTER_MS, "WH_OPT_DISABLE_AFTER_MS", 0, 2147483647L},
    {WH_OPT_BREAKER_WINDOW_MS, "WH_OPT_BREAKER_WINDOW_MS", 10, 86400000L},
    {WH_OPT_BREAKER_MIN_REQUESTS, "WH_OPT_BREAKER_MIN_REQUESTS", 1, 1000000L},
    {WH_OPT_BREAKER_FAILURE_PCT, "WH_OPT_BREAKER_FAILURE_PCT", 0, 100},
    {WH_OPT_BREAKER_COOLDOWN_MS, "WH_OPT_BREAKER_COOLDOWN_MS", 1, 86400000L},
    {WH_OPT_THROTTLE_MIN_DELAY_MS, "WH_OPT_THROTTLE_MIN_DELAY_MS", 0, 86400000L},
    {WH_OPT_MAX_BODY_BYTES, "WH_OPT_MAX_BODY_BYTES", 64, 64L * 1024 * 1024},
    {WH_OPT_RETENTION_DAYS, "WH_OPT_RETENTION_DAYS", 0, 36500},
    {WH_OPT_LEASE_MS, "WH_OPT_LEASE_MS", 1000, 3600000},
  };
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    BAD(wh_dispatcher_set_int(d, ints[i].opt, ints[i].lo - 1), WH_EINVAL, ints[i].name);
    BAD(wh_dispatcher_set_int(d, ints[i].opt, ints[i].hi + 1), WH_EINVAL, ints[i].name);
    BAD(wh_dispatcher_set_int(d, ints[i].opt, LONG_MIN), WH_EINVAL, ints[i].name);
    BAD(wh_dispatcher_set_int(d, ints[i].opt, LONG_MAX), WH_EINVAL, ints[i].name);
    BAD(wh_dispatcher_set_str(d, ints[i].opt, "1"), WH_EINVAL, "option");
  }
  const wh_option strs[] = {WH_OPT_RETRY_SCHEDULE, WH_OPT_USER_AGENT, WH_OPT_CA_FILE};
  for (size_t i = 0; i < 3; i++)
    BAD(wh_dispatcher_set_int(d, strs[i], 1), WH_EINVAL, "wh_dispatcher_set_str");

  BAD(wh_dispatcher_set_str(d, WH_OPT_RETRY_SCHEDULE, NULL), WH_EINVAL, "retry schedule");
  const char *bad_sched[] = {"x", "1,", ",1", "1,,2", "-1", "1e3", "0x10", "1.", ".5", "1.2345",
                             "9999999999", "400000000", "1;2"};
  for (size_t i = 0; i < sizeof bad_sched / sizeof bad_sched[0]; i++)
    BAD(wh_dispatcher_set_str(d, WH_OPT_RETRY_SCHEDULE, bad_sched[i]), WH_EINVAL, "retry schedule");
  for (size_t i = 0; i < NBAD; i++)
    BAD(wh_dispatcher_set_str(d, WH_OPT_RETRY_SCHEDULE, bad_utf8[i]), WH_EINVAL, "retry schedule");
  char *many = malloc(4 * 1000 + 1);
  for (int i = 0; i < 1000; i++)
    memcpy(many + 2 * i, "1,", 2);
  many[1999] = '\0';
  BAD(wh_dispatcher_set_str(d, WH_OPT_RETRY_SCHEDULE, many), WH_EINVAL, "retry schedule");
  free(many);
  CHECK_OK(wh_dispatcher_set_str(d, WH_OPT_RETRY_SCHEDULE, ""));
  CHECK_OK(wh_dispatcher_set_str(d, WH_OPT_RETRY_SCHEDULE, " 0.5 , 1 "));

  BAD(wh_dispatcher_set_str(d, WH_OPT_USER_AGENT, NULL), WH_EINVAL, "WH_OPT_USER_AGENT");
  BAD(wh_dispatcher_set_str(d, WH_OPT_USER_AGENT, ""), WH_EINVAL, "WH_OPT_USER_AGENT");
  BAD(wh_dispatcher_set_str(d, WH_OPT_USER_AGENT, "ua\r\nX-Injected: 1"), WH_EINVAL, "WH_OPT_USER_AGENT");
  char *ua = repeat('u', 257);
  BAD(wh_dispatcher_set_str(d, WH_OPT_USER_AGENT, ua), WH_EINVAL, "WH_OPT_USER_AGENT");
  free(ua);
  CHECK_OK(wh_dispatcher_set_str(d, WH_OPT_CA_FILE, NULL));
  CHECK_OK(wh_dispatcher_set_str(d, WH_OPT_CA_FILE, ""));
  CHECK_OK(wh_dispatcher_on_result(d, NULL, NULL));
  CHECK_OK(wh_dispatcher_on_disabled(d, NULL, NULL));
  wh_dispatcher_free(d); /* never started */
}

/* ---- the lifecycle ------------------------------------------------------------------------ */

static wh_event *ev_new(void) { return h_person_event(NULL, NULL); }

static void lifecycle_bad(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char url[256], ep[WH_ID_MAX], msg[WH_ID_MAX + 16];
  rcv_url(R, "/life", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "life", url, NULL, ep, sizeof ep));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, "");
  size_t n = 99;

  /* Nothing runs yet. */
  wh_dispatcher_set_default(NULL);
  BAD(wh_emit(ev_new()), WH_ESTATE, "dispatcher");
  BAD(wh_emit(NULL), WH_ESTATE, "dispatcher");
  BAD(wh_dispatcher_emit(d, ev_new(), NULL, 0), WH_ESTATE, "not started");
  BAD(wh_dispatcher_drain(d, 0), WH_ESTATE, "drain");
  BAD(wh_dispatcher_drain(d, -1), WH_ESTATE, "drain");
  BAD(wh_dispatcher_stop(d, 0), WH_ESTATE, "stop");
  BAD(wh_dispatcher_replay(d, "msg_x", NULL, &n), WH_ESTATE, "replay");
  BAD(wh_dispatcher_recover(d, ep, 0, &n), WH_ESTATE, "recover");
  CHECK_OK(wh_dispatcher_set_default(d));
  BAD(wh_emit(ev_new()), WH_ESTATE, "not started");

  CHECK_OK(wh_dispatcher_start(d));
  BAD(wh_dispatcher_start(d), WH_ESTATE, "running");
  BAD(wh_dispatcher_set_int(d, WH_OPT_WORKERS, 4), WH_ESTATE, "wh_dispatcher_start");
  BAD(wh_dispatcher_set_int(d, (wh_option)999, 4), WH_ESTATE, "wh_dispatcher_start");
  BAD(wh_dispatcher_set_str(d, WH_OPT_RETRY_SCHEDULE, "1"), WH_ESTATE, "wh_dispatcher_start");
  BAD(wh_dispatcher_set_str(d, WH_OPT_USER_AGENT, "x"), WH_ESTATE, "wh_dispatcher_start");
  /* 1.1: callbacks may be replaced while running (tests/test_lifecycle.c). */
  CHECK_OK(wh_dispatcher_on_result(d, h_on_result, &log));
  CHECK_OK(wh_dispatcher_on_disabled(d, h_on_disabled, &log));

  /* emit's own arguments. */
  BAD(wh_dispatcher_emit(NULL, ev_new(), NULL, 0), WH_EINVAL, "dispatcher");
  BAD(wh_dispatcher_emit(d, NULL, NULL, 0), WH_EINVAL, "event");
  BAD(wh_emit(NULL), WH_EINVAL, "event");
  const size_t small[] = {0, 1, WH_ID_MAX - 1};
  for (size_t i = 0; i < 3; i++) {
    fill(msg, sizeof msg);
    BAD(wh_dispatcher_emit(d, ev_new(), msg, small[i]), WH_ERANGE, "message id buffer");
    CHECK(untouched(msg, 0, sizeof msg));
  }
  /* Larger than WH_OPT_MAX_BODY_BYTES (1 MiB by default). */
  {
    size_t big = 1100 * 1024;
    char *res = repeat('x', big);
    memcpy(res, "{\"a\":\"", 6);
    memcpy(res + big - 2, "\"}", 2);
    wh_event *ev = NULL;
    CHECK_OK(wh_event_new(&ev, "people", "CREATE"));
    CHECK_OK(wh_event_set_resource_json(ev, res));
    free(res);
    BAD(wh_dispatcher_emit(d, ev, NULL, 0), WH_EINVAL, "WH_OPT_MAX_BODY_BYTES");
  }
  CHECK_OK(wh_dispatcher_drain(d, 5000));
  CHECK_INT(rcv_count_path(R, "/life"), 0); /* none of the refused emits went out */

  /* A resource nested 512 deep goes through and arrives as built. */
  {
    wh_event *ev = NULL;
    char *deep = nested(512, 1, 1), *want = NULL;
    CHECK_OK(wh_event_new(&ev, "people", "CREATE"));
    CHECK_OK(wh_event_set_resource_json(ev, deep));
    CHECK_OK(wh_event_to_json(ev, &want));
    free(deep);
    CHECK_OK(wh_dispatcher_emit(d, ev, msg, sizeof msg));
    CHECK(h_wait(&log, ep, WH_DELIVERED, 1, 10000));
    const rcv_request *q = NULL;
    for (size_t i = 0; i < rcv_count(R); i++)
      if (strcmp(rcv_request_at(R, i)->path, "/life") == 0)
        q = rcv_request_at(R, i);
    CHECK(q && want && q->body_len == strlen(want) && memcmp(q->body, want, q->body_len) == 0);
    wh_free(want);
    char *json = NULL;
    CHECK_OK(wh_message_get_json(reg, msg, &json));
    CHECK(json && utf8_ok(json));
    wh_free(json);
  }

  /* replay / recover arguments, running. */
  BAD(wh_dispatcher_replay(NULL, msg, NULL, &n), WH_EINVAL, "dispatcher");
  BAD(wh_dispatcher_replay(d, NULL, NULL, &n), WH_EINVAL, "msg_id");
  BAD(wh_dispatcher_replay(d, "", NULL, &n), WH_ENOTFOUND, "message");
  BAD(wh_dispatcher_replay(d, "msg_doesnotexist", NULL, &n), WH_ENOTFOUND, "message");
  for (size_t i = 0; i < NBAD; i++) {
    BAD(wh_dispatcher_replay(d, bad_utf8[i], NULL, &n), WH_ENOTFOUND, "message");
    BAD(wh_dispatcher_replay(d, bad_utf8[i], ep, NULL), WH_ENOTFOUND, "message");
  }
  BAD(wh_dispatcher_recover(NULL, ep, 0, &n), WH_EINVAL, "dispatcher");
  BAD(wh_dispatcher_recover(d, NULL, 0, &n), WH_EINVAL, "endpoint_id");
  CHECK_OK(wh_dispatcher_recover(d, ep, INT64_MIN, NULL));
  CHECK_OK(wh_dispatcher_recover(d, ep, INT64_MAX, &n));
  CHECK_INT(n, 0);
  /* An endpoint that does not exist: the brief asks WH_ENOTFOUND. A replay to
     one must not queue a delivery to nowhere. */
  size_t before = h_count(&log, NULL, 0);
  const char *unknown_eps[] = {"", "ep_doesnotexist0000000000000000", "\xff\xfe"};
  for (size_t i = 0; i < 3; i++) {
    n = 99;
    BAD(wh_dispatcher_recover(d, unknown_eps[i], 0, &n), WH_ENOTFOUND, "endpoint");
    n = 99;
    BAD(wh_dispatcher_replay(d, msg, unknown_eps[i], &n), WH_ENOTFOUND, "endpoint");
    CHECK(n == 0 || n == 99);
  }
  CHECK_OK(wh_dispatcher_drain(d, 5000));
  h_sleep_ms(200);
  CHECK_INT(h_count(&log, NULL, 0), before); /* no phantom delivery reported */
  CHECK_OK(wh_dispatcher_replay(d, msg, NULL, &n));
  CHECK_INT(n, 1);
  CHECK(h_wait(&log, ep, WH_DELIVERED, 2, 10000));

  /* drain with odd timeouts while idle. */
  CHECK_OK(wh_dispatcher_drain(d, 0));
  CHECK_OK(wh_dispatcher_drain(d, -1));
  CHECK_OK(wh_dispatcher_drain(d, INT_MIN));
  CHECK_OK(wh_dispatcher_drain(d, INT_MAX));

  /* Stopped: everything but free is refused. A negative timeout is 0. */
  CHECK_OK(wh_dispatcher_stop(d, -5));
  BAD(wh_dispatcher_stop(d, 0), WH_ESTATE, "stop");
  BAD(wh_dispatcher_start(d), WH_ESTATE, "stopped");
  BAD(wh_dispatcher_emit(d, ev_new(), NULL, 0), WH_ESTATE, "stopped");
  BAD(wh_emit(ev_new()), WH_ESTATE, NULL);
  BAD(wh_dispatcher_drain(d, 100), WH_ESTATE, "drain");
  BAD(wh_dispatcher_replay(d, msg, NULL, &n), WH_ESTATE, "replay");
  BAD(wh_dispatcher_recover(d, ep, 0, &n), WH_ESTATE, "recover");
  BAD(wh_dispatcher_set_int(d, WH_OPT_WORKERS, 1), WH_ESTATE, "wh_dispatcher_start");
  /* Made the default again after stop, then freed: wh_emit must not use it. */
  CHECK_OK(wh_dispatcher_set_default(d));
  wh_dispatcher_free(d);
  BAD(wh_emit(ev_new()), WH_ESTATE, "dispatcher");

  /* A dispatcher freed without ever starting, while it was the default. */
  CHECK_OK(wh_dispatcher_new(&d, reg));
  CHECK_OK(wh_dispatcher_set_default(d));
  wh_dispatcher_free(d);
  BAD(wh_emit(ev_new()), WH_ESTATE, "dispatcher");

  /* Freed while running, with work in flight to a listener that never answers. */
  rcv_blackhole *hole;
  if (rcv_blackhole_start(&hole, 0) == 0) {
    char hurl[256];
    rcv_blackhole_url(hole, "/hang", hurl, sizeof hurl);
    CHECK_OK(wh_endpoint_set_url(reg, ep, hurl));
    d = h_dispatcher(reg, &log, "");
    CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_TIMEOUT_MS, 30000));
    CHECK_OK(wh_dispatcher_start(d));
    for (int i = 0; i < 20; i++)
      CHECK_OK(wh_dispatcher_emit(d, ev_new(), NULL, 0));
    h_sleep_ms(200);
    BAD(wh_dispatcher_drain(d, 50), WH_ETIMEOUT, "drain");
    int64_t t0 = h_mono_ms();
    wh_dispatcher_free(d); /* stops without waiting */
    CHECK(h_mono_ms() - t0 < 5000);
    rcv_blackhole_free(hole);
  }
  wh_registry_free(reg);
  h_log_free(&log);
}

/* ---- callbacks that call back in ----------------------------------------------------------- */

typedef struct {
  wh_dispatcher *d, *other;
  wh_registry *reg;
  atomic_int results, disabled_calls, done;
  /* written by the first result callback, read after `done` */
  int free_refused, stop_rc, drain_rc, set_rc, on_rc, emit_rc, json_rc, other_freed;
  char free_msg[512], stop_msg[512], drain_msg[512];
  /* written by the disabled callback, read after disabled_calls */
  int dis_free_refused, dis_stop_rc;
  char dis_free_msg[512];
} reentry;

static void reentry_result(const wh_result *r, void *ud)
{
  reentry *s = ud;
  if (atomic_fetch_add(&s->results, 1) != 0)
    return;
  mark();
  wh_dispatcher_free(s->d); /* must be refused, not free what runs us */
  snprintf(s->free_msg, sizeof s->free_msg, "%s", wh_error_last());
  s->free_refused = strstr(s->free_msg, MARK) == NULL && *s->free_msg;
  s->stop_rc = wh_dispatcher_stop(s->d, 1000);
  snprintf(s->stop_msg, sizeof s->stop_msg, "%s", wh_error_last());
  s->drain_rc = wh_dispatcher_drain(s->d, 1000);
  snprintf(s->drain_msg, sizeof s->drain_msg, "%s", wh_error_last());
  s->set_rc = wh_dispatcher_set_int(s->d, WH_OPT_WORKERS, 3);
  s->on_rc = wh_dispatcher_on_result(s->d, reentry_result, s); /* 1.1: allowed, does not wait for itself */
  char *json = NULL;
  s->json_rc = wh_message_get_json(s->reg, wh_result_message_id(r), &json);
  wh_free(json);
  /* Freeing another dispatcher, running, from here is allowed. */
  wh_dispatcher_free(s->other);
  s->other_freed = 1;
  /* And the dispatcher still works: emit from its own callback. */
  s->emit_rc = wh_dispatcher_emit(s->d, h_person_event(NULL, NULL), NULL, 0);
  atomic_store(&s->done, 1);
}

static void reentry_disabled(const char *ep, const char *reason, void *ud)
{
  reentry *s = ud;
  (void)ep;
  (void)reason;
  if (atomic_load(&s->disabled_calls) == 0) {
    mark();
    wh_dispatcher_free(s->d);
    snprintf(s->dis_free_msg, sizeof s->dis_free_msg, "%s", wh_error_last());
    s->dis_free_refused = strstr(s->dis_free_msg, MARK) == NULL && *s->dis_free_msg;
    s->dis_stop_rc = wh_dispatcher_stop(s->d, 1000);
  }
  atomic_fetch_add(&s->disabled_calls, 1);
}

static void callbacks_reentry(void)
{
  static reentry s; /* large, and read after the workers are gone */
  memset(&s, 0, sizeof s);
  wh_registry *reg, *reg2;
  CHECK_OK(wh_registry_open(&reg, NULL));
  CHECK_OK(wh_registry_open(&reg2, NULL));
  char url[256], ok_ep[WH_ID_MAX], gone_ep[WH_ID_MAX];
  rcv_script_reply(R, "/cb-ok", 204, NULL, NULL);
  rcv_script_reply(R, "/cb-gone", 410, NULL, "gone");
  rcv_url(R, "/cb-ok", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "cb-ok", url, NULL, ok_ep, sizeof ok_ep));
  CHECK_OK(wh_endpoint_subscribe(reg, ok_ep, "people.*"));
  rcv_url(R, "/cb-gone", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "cb-gone", url, NULL, gone_ep, sizeof gone_ep));
  CHECK_OK(wh_endpoint_subscribe(reg, gone_ep, "gone.*"));
  rcv_url(R, "/cb-other", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg2, "cb-other", url, NULL, NULL, 0));

  wh_dispatcher *d;
  CHECK_OK(wh_dispatcher_new(&d, reg));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, 1));
  CHECK_OK(wh_dispatcher_set_str(d, WH_OPT_RETRY_SCHEDULE, ""));
  CHECK_OK(wh_dispatcher_on_result(d, reentry_result, &s));
  CHECK_OK(wh_dispatcher_on_disabled(d, reentry_disabled, &s));
  CHECK_OK(wh_dispatcher_new(&s.other, reg2));
  CHECK_OK(wh_dispatcher_set_int(s.other, WH_OPT_ALLOW_PRIVATE_NETWORKS, 1));
  CHECK_OK(wh_dispatcher_start(s.other));
  s.d = d;
  s.reg = reg;
  CHECK_OK(wh_dispatcher_start(d));

  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  int64_t end = h_mono_ms() + 20000;
  while ((!atomic_load(&s.done) || atomic_load(&s.results) < 2) && h_mono_ms() < end)
    h_sleep_ms(10);
  CHECK(atomic_load(&s.done));
  CHECK(atomic_load(&s.results) >= 2); /* the emit from inside the callback was delivered */
  if (atomic_load(&s.done)) {
    if (!s.free_refused || !strstr(s.free_msg, "wh_dispatcher_free"))
      fprintf(stderr, "  free inside the callback: message \"%s\"\n", s.free_msg);
    CHECK(s.free_refused);
    CHECK(strstr(s.free_msg, "wh_dispatcher_free") != NULL);
    CHECK_INT(s.stop_rc, WH_ESTATE);
    CHECK(strstr(s.stop_msg, "stop") != NULL);
    CHECK_INT(s.drain_rc, WH_ESTATE);
    CHECK(strstr(s.drain_msg, "drain") != NULL);
    CHECK_INT(s.set_rc, WH_ESTATE);
    CHECK_OK(s.on_rc);
    CHECK_OK(s.json_rc);
    CHECK_OK(s.emit_rc);
    CHECK(s.other_freed);
  }

  /* 410 Gone disables the endpoint: the disabled callback tries the same. */
  wh_event *ev = NULL;
  CHECK_OK(wh_event_new(&ev, "gone", "PING"));
  CHECK_OK(wh_dispatcher_emit(d, ev, NULL, 0));
  end = h_mono_ms() + 20000;
  while (atomic_load(&s.disabled_calls) < 1 && h_mono_ms() < end)
    h_sleep_ms(10);
  CHECK_INT(atomic_load(&s.disabled_calls), 1);
  if (atomic_load(&s.disabled_calls) >= 1) {
    CHECK(s.dis_free_refused);
    CHECK(strstr(s.dis_free_msg, "wh_dispatcher_free") != NULL);
    CHECK_INT(s.dis_stop_rc, WH_ESTATE);
  }
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_OK(wh_dispatcher_stop(d, 5000));
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  wh_registry_free(reg2);
}

/* ---- probes that may take a process down: run in a child --------------------------------- */

/* Replay of a message to an endpoint id longer than WH_ID_MAX. */
static int child_replay_long_endpoint_id(const char *store)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  wh_dispatcher *d;
  CHECK_OK(wh_dispatcher_new(&d, reg));
  CHECK_OK(wh_dispatcher_start(d));
  char msg[WH_ID_MAX];
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), msg, sizeof msg));
  char *long_id = repeat('e', 300);
  size_t n = 99;
  BAD(wh_dispatcher_replay(d, msg, long_id, &n), WH_ENOTFOUND, "endpoint");
  free(long_id);
  wh_dispatcher_drain(d, 2000);
  wh_dispatcher_free(d);
  wh_registry_free(reg); /* the memory store frees what replay made */
  return check_done("hostile child: replay to a long endpoint id");
}

/* wh_verify's `now` at the ends of int64_t: out of tolerance, no overflow. */
static int child_verify_now_extremes(void)
{
  char sig[64];
  CHECK_OK(wh_sign(SECRET, "msg_1", 1700000000, "b", 1, sig, sizeof sig));
  const int64_t nows[] = {INT64_MAX, INT64_MIN, INT64_MIN + 1, -1, INT64_MAX - 299};
  for (size_t i = 0; i < sizeof nows / sizeof nows[0]; i++)
    BAD(wh_verify(SECRET, "msg_1", "1700000000", sig, "b", 1, nows[i]), WH_ETIMESTAMP, "timestamp");
  BAD(wh_verify(SECRET, "msg_1", "-999999999999999999", sig, "b", 1, INT64_MAX), WH_ETIMESTAMP, "timestamp");
  BAD(wh_verify(SECRET, "msg_1", "999999999999999999", sig, "b", 1, INT64_MIN), WH_ETIMESTAMP, "timestamp");
  /* The message tells a distance, never a negative (wrapped-around) one. */
  wh_verify(SECRET, "msg_1", "1700000000", sig, "b", 1, INT64_MIN);
  if (strstr(wh_error_last(), " is -"))
    fprintf(stderr, "  verify with now = INT64_MIN: \"%s\"\n", wh_error_last());
  CHECK(strstr(wh_error_last(), " is -") == NULL);
  return check_done("hostile child: verify with extreme now");
}

/* Run a probe in a fresh process: 0 when it passed, else its failure. */
static int run_child(const char *name)
{
  char *args[] = {(char *)"test_hostile", (char *)"--child", (char *)name, NULL};
  pid_t pid;
  fflush(NULL);
  if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ) != 0) {
    fprintf(stderr, "cannot start the child for %s\n", name);
    return -1;
  }
  int st = 0;
  if (waitpid(pid, &st, 0) != pid)
    return -1;
  if (WIFSIGNALED(st)) {
    fprintf(stderr, "hostile: child \"%s\" was killed by signal %d (the library crashed)\n", name, WTERMSIG(st));
    return -1;
  }
  if (WEXITSTATUS(st) != 0)
    fprintf(stderr, "hostile: child \"%s\" failed (exit %d)\n", name, WEXITSTATUS(st));
  return WEXITSTATUS(st);
}

static int child_main(const char *name)
{
  if (strcmp(name, "replay-long-ep-memory") == 0)
    return child_replay_long_endpoint_id(NULL);
  if (strcmp(name, "replay-long-ep-sqlite") == 0) {
    char dir[] = "/tmp/wh-hostile-XXXXXX", store[128], cmd[160];
    if (!mkdtemp(dir))
      return 2;
    snprintf(store, sizeof store, "sqlite:%s/h.db", dir);
    int rc = child_replay_long_endpoint_id(store);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      rc = 2;
    return rc;
  }
  if (strcmp(name, "verify-now-extremes") == 0)
    return child_verify_now_extremes();
  fprintf(stderr, "no child called %s\n", name);
  return 2;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void on_alarm(int sig)
{
  (void)sig;
  static const char msg[] = "hostile: still running after the watchdog's limit: a deadlock?\n";
  if (write(2, msg, sizeof msg - 1) < 0) {
  }
  _exit(3);
}

int main(int argc, char **argv)
{
  if (argc == 3 && strcmp(argv[1], "--child") == 0)
    return child_main(argv[2]);
  signal(SIGALRM, on_alarm);
  alarm(280); /* before ctest's TIMEOUT 300, with a message */
  int64_t t0 = h_mono_ms();
  if (rcv_start(&R, 0) != 0) {
    fprintf(stderr, "cannot start the receiver\n");
    return 1;
  }
  errors_and_frees();
  registry_open_bad();

  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char ep[WH_ID_MAX];
  CHECK_OK(wh_endpoint_add(reg, "target", "https://hooks.example.com/target", "d", ep, sizeof ep));
  endpoint_add_bad(reg);
  endpoint_ids_bad(reg, ep);
  endpoint_args_bad(reg, ep);
  log_bad(reg);
  event_bad();
  signing_bad();
  dispatcher_options_bad(reg);
  signing_2gib(reg, ep);
  wh_registry_free(reg);

  lifecycle_bad();
  callbacks_reentry();

  const char *children[] = {"verify-now-extremes", "replay-long-ep-memory", "replay-long-ep-sqlite"};
  for (size_t i = 0; i < sizeof children / sizeof children[0]; i++) {
    check_count++;
    if (run_child(children[i]) != 0)
      check_failures++;
  }
  rcv_free(R);
  printf("hostile: %lld ms\n", (long long)(h_mono_ms() - t0));
  return check_done("hostile");
}
