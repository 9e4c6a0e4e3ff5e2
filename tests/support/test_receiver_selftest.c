/*
 * Self test of the test receiver (receiver.h), driven by libcurl.
 * Each test_* function covers one behaviour; failures are counted and the
 * process exits non-zero if any check failed.
 */
#define _GNU_SOURCE

#include "receiver.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int failures;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
      failures++;                                                                    \
    }                                                                                \
  } while (0)

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* A minimal curl client                                               */
/* ------------------------------------------------------------------ */

#define KEEP_BODY (64 * 1024) /* bytes of body kept for comparisons */

struct fetch {
  CURLcode rc;
  long code;
  long http_version;
  curl_off_t content_length;
  uint64_t nbytes;    /* body bytes received */
  int pattern_ok;     /* body matched rcv_large_byte() throughout */
  char body[KEEP_BODY + 1];
  char headers[8192]; /* raw response header lines */
  size_t hlen;
  char redirect[256];
  int64_t ms;         /* duration of the transfer */
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
  struct fetch *f = ud;
  size_t len = sz * n;
  for (size_t i = 0; i < len; i++) {
    uint64_t at = f->nbytes + i;
    if (at < KEEP_BODY)
      f->body[at] = p[i];
    if (p[i] != rcv_large_byte(at))
      f->pattern_ok = 0;
  }
  f->nbytes += len;
  return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
  struct fetch *f = ud;
  size_t len = sz * n;
  size_t room = sizeof f->headers - 1 - f->hlen;
  size_t take = len < room ? len : room;
  memcpy(f->headers + f->hlen, p, take);
  f->hlen += take;
  f->headers[f->hlen] = '\0';
  return len;
}

static CURL *new_handle(void)
{
  CURL *h = curl_easy_init();
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never let an environment proxy in */
  return h;
}

/* Run one request on @h (a fresh handle if NULL).  @post: body to POST or
 * NULL for GET; @hdrs: extra request headers or NULL. */
static void fetch_on(CURL *h, const char *url, const char *post, size_t post_len,
                     struct curl_slist *hdrs, long timeout_ms, struct fetch *f)
{
  int own = h == NULL;
  if (own)
    h = new_handle();
  memset(f, 0, sizeof *f);
  f->pattern_ok = 1;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, f);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  if (post) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)post_len);
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  int64_t t0 = now_ms();
  f->rc = curl_easy_perform(h);
  f->ms = now_ms() - t0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &f->code);
  curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &f->http_version);
  curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &f->content_length);
  char *redir = NULL;
  curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &redir);
  if (redir)
    snprintf(f->redirect, sizeof f->redirect, "%s", redir);
  f->body[f->nbytes < KEEP_BODY ? f->nbytes : KEEP_BODY] = '\0';
  if (own)
    curl_easy_cleanup(h);
}

static void get(const char *url, long timeout_ms, struct fetch *f)
{
  fetch_on(NULL, url, NULL, 0, NULL, timeout_ms, f);
}

/* Did the response carry header line @line (case-insensitive)? */
static int has_header_line(const struct fetch *f, const char *line)
{
  return strcasestr(f->headers, line) != NULL;
}

static struct fetch F; /* large: keep it off the stack */

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_reply_and_capture(rcv *r)
{
  char url[256];
  CHECK(rcv_script_reply(r, "/h", 503, "Retry-After: 7\nX-Test: yes\r\n", "busy") == 0);
  struct curl_slist *hdrs = curl_slist_append(NULL, "X-Sig: abc");
  hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
  size_t before = rcv_count(r);
  int64_t t0 = now_ms(), rt0 = real_ms();
  fetch_on(NULL, rcv_url(r, "h?x=1&y=a%20b", url, sizeof url), "hello", 5, hdrs, 5000, &F);
  int64_t t1 = now_ms(), rt1 = real_ms();
  curl_slist_free_all(hdrs);

  CHECK(F.rc == CURLE_OK);
  CHECK(F.code == 503);
  CHECK(strcmp(F.body, "busy") == 0);
  CHECK(has_header_line(&F, "retry-after: 7\r\n"));
  CHECK(has_header_line(&F, "X-Test: yes\r\n"));

  CHECK(rcv_count(r) == before + 1);
  const rcv_request *q = rcv_request_at(r, before);
  CHECK(q != NULL);
  if (!q)
    return;
  CHECK(q->index == before);
  CHECK(strcmp(q->method, "POST") == 0);
  CHECK(strcmp(q->path, "/h") == 0);
  CHECK(strcmp(q->uri, "/h?x=1&y=a%20b") == 0);
  CHECK(strcmp(q->version, "HTTP/1.1") == 0);
  CHECK(q->body_len == 5 && strcmp(q->body, "hello") == 0);
  CHECK(rcv_header_get(q, "x-sig") && strcmp(rcv_header_get(q, "x-sig"), "abc") == 0);
  CHECK(rcv_header_get(q, "CONTENT-TYPE") &&
        strcmp(rcv_header_get(q, "CONTENT-TYPE"), "application/json") == 0);
  CHECK(rcv_header_get(q, "X-Missing") == NULL);
  CHECK(q->mono_ms >= t0 && q->mono_ms <= t1);
  CHECK(q->real_ms >= rt0 - 5 && q->real_ms <= rt1 + 5);
  CHECK(q->remote_port != 0);
  CHECK(q->conn_id >= 1 && q->conn_seq == 1);
  CHECK(rcv_find_header(r, "X-SIG", "abc") == q);
  CHECK(rcv_find_header(r, "X-Sig", "nope") == NULL);
  CHECK(rcv_count_path(r, "/h") == 1);
  CHECK(rcv_request_at(r, before + 1) == NULL);

  /* A GET without body still gets an empty, non-NULL body. */
  get(rcv_url(r, "/h", url, sizeof url), 5000, &F);
  q = rcv_request_at(r, before + 1);
  CHECK(q && strcmp(q->method, "GET") == 0 && q->body && q->body_len == 0);
}

static void test_queue_and_default(rcv *r)
{
  char url[256];
  rcv_spec twice = {.kind = RCV_REPLY, .status = 500, .body = "e", .times = 2};
  CHECK(rcv_script(r, "/q", &twice) == 0);
  CHECK(rcv_script_reply(r, "/q", 201, NULL, "ok") == 0);
  long want[] = {500, 500, 201, 201};
  for (size_t i = 0; i < 4; i++) {
    get(rcv_url(r, "/q", url, sizeof url), 5000, &F);
    CHECK(F.rc == CURLE_OK && F.code == want[i]);
  }
  /* The default queue serves paths without a queue of their own. */
  CHECK(rcv_script_reply(r, NULL, 404, NULL, "none") == 0);
  get(rcv_url(r, "/other", url, sizeof url), 5000, &F);
  CHECK(F.code == 404 && strcmp(F.body, "none") == 0);
  get(rcv_url(r, "/q", url, sizeof url), 5000, &F);
  CHECK(F.code == 201);
  rcv_script_clear(r, NULL);
  rcv_script_clear(r, "/q");
  get(rcv_url(r, "/q", url, sizeof url), 5000, &F);
  CHECK(F.code == 200 && F.nbytes == 0);

  /* A reply delay. */
  rcv_spec slow = {.kind = RCV_REPLY, .status = 202, .ms = 300};
  CHECK(rcv_script(r, "/slow", &slow) == 0);
  get(rcv_url(r, "/slow", url, sizeof url), 5000, &F);
  CHECK(F.code == 202 && F.ms >= 280);
}

static void test_large(rcv *r)
{
  char url[256];
  const uint64_t n = 10u << 20;
  CHECK(rcv_script_large(r, "/big", n) == 0);
  get(rcv_url(r, "/big", url, sizeof url), 30000, &F);
  CHECK(F.rc == CURLE_OK && F.code == 200);
  CHECK(F.nbytes == n);
  CHECK(F.content_length == (curl_off_t)n);
  CHECK(F.pattern_ok);
  printf("  large: %llu bytes in %lld ms\n", (unsigned long long)F.nbytes, (long long)F.ms);

  /* A large upload is captured completely. */
  size_t up = 2u << 20;
  char *data = malloc(up);
  for (size_t i = 0; i < up; i++)
    data[i] = rcv_large_byte(i * 7);
  size_t before = rcv_count(r);
  fetch_on(NULL, rcv_url(r, "/upload", url, sizeof url), data, up, NULL, 30000, &F);
  CHECK(F.rc == CURLE_OK && F.code == 200);
  const rcv_request *q = rcv_request_at(r, before);
  CHECK(q && q->body_len == up && memcmp(q->body, data, up) == 0);
  free(data);
}

static void test_stall(rcv *r)
{
  char url[256];
  CHECK(rcv_script_stall(r, "/stall", 0) == 0);
  size_t before = rcv_count(r);
  get(rcv_url(r, "/stall", url, sizeof url), 300, &F);
  CHECK(F.rc == CURLE_OPERATION_TIMEDOUT);
  CHECK(F.ms >= 250 && F.ms < 3000);
  CHECK(rcv_wait_count(r, before + 1, 1000));

  /* A bounded stall ends by closing without an answer. */
  CHECK(rcv_script_stall(r, "/stall200", 200) == 0);
  get(rcv_url(r, "/stall200", url, sizeof url), 5000, &F);
  CHECK(F.rc == CURLE_GOT_NOTHING);
  CHECK(F.ms >= 180 && F.ms < 3000);
}

static void test_drip(rcv *r)
{
  char url[256];
  CHECK(rcv_script_drip(r, "/drip", "abcdef", 50) == 0);
  get(rcv_url(r, "/drip", url, sizeof url), 5000, &F);
  CHECK(F.rc == CURLE_OK && F.code == 200);
  CHECK(strcmp(F.body, "abcdef") == 0);
  CHECK(F.content_length == 6);
  CHECK(F.ms >= 250);
  printf("  drip: 6 bytes in %lld ms\n", (long long)F.ms);
}

static void test_reset(rcv *r)
{
  char url[256];
  CHECK(rcv_script_reset(r, "/reset") == 0);
  get(rcv_url(r, "/reset", url, sizeof url), 5000, &F);
  CHECK(F.rc == CURLE_GOT_NOTHING);
  CHECK(F.code == 0);

  CHECK(rcv_script_reset_body(r, "/cut", 1000) == 0);
  get(rcv_url(r, "/cut", url, sizeof url), 5000, &F);
  CHECK(F.rc == CURLE_PARTIAL_FILE);
  CHECK(F.code == 200);
  CHECK(F.content_length == 2024);
  CHECK(F.nbytes == 1000 && F.pattern_ok);

  /* Headers, then the connection drops before any body byte. */
  CHECK(rcv_script_reset_body(r, "/cut0", 0) == 0);
  get(rcv_url(r, "/cut0", url, sizeof url), 5000, &F);
  printf("  reset after headers: curl %d, status %ld, %llu bytes\n", (int)F.rc, F.code,
         (unsigned long long)F.nbytes);
  CHECK(F.rc == CURLE_PARTIAL_FILE || F.rc == CURLE_GOT_NOTHING);
  CHECK(F.nbytes == 0);
}

static void test_http10(rcv *r)
{
  char url[256];
  CHECK(rcv_script_http10(r, "/old", 200, "old school") == 0);
  CURL *h = new_handle();
  size_t before = rcv_count(r);
  fetch_on(h, rcv_url(r, "/old", url, sizeof url), NULL, 0, NULL, 5000, &F);
  CHECK(F.rc == CURLE_OK && F.code == 200);
  CHECK(F.http_version == CURL_HTTP_VERSION_1_0);
  CHECK(F.content_length == -1);
  CHECK(!has_header_line(&F, "content-length"));
  CHECK(!has_header_line(&F, "transfer-encoding"));
  CHECK(strcmp(F.body, "old school") == 0);
  /* The body ended with the connection: the next request needs a new one. */
  fetch_on(h, rcv_url(r, "/old", url, sizeof url), NULL, 0, NULL, 5000, &F);
  CHECK(F.rc == CURLE_OK && strcmp(F.body, "old school") == 0);
  const rcv_request *a = rcv_request_at(r, before), *b = rcv_request_at(r, before + 1);
  CHECK(a && b && a->conn_id != b->conn_id);
  curl_easy_cleanup(h);
}

static void test_redirect(rcv *r)
{
  char url[256], target[256];
  int codes[] = {301, 302, 307};
  rcv_url(r, "/target", target, sizeof target);
  for (size_t i = 0; i < 3; i++) {
    CHECK(rcv_script_redirect(r, "/moved", codes[i], target) == 0);
    get(rcv_url(r, "/moved", url, sizeof url), 5000, &F);
    CHECK(F.rc == CURLE_OK && F.code == codes[i]);
    CHECK(strcmp(F.redirect, target) == 0);
    rcv_script_clear(r, "/moved");
  }
  CHECK(rcv_count_path(r, "/moved") == 3);
  CHECK(rcv_count_path(r, "/target") == 0); /* not followed */
}

static void test_keepalive(rcv *r)
{
  char url[256];
  unsigned long conns = rcv_connections(r);
  size_t before = rcv_count(r);
  CURL *h = new_handle();
  fetch_on(h, rcv_url(r, "/ka", url, sizeof url), NULL, 0, NULL, 5000, &F);
  CHECK(F.rc == CURLE_OK);
  fetch_on(h, rcv_url(r, "/ka", url, sizeof url), "x", 1, NULL, 5000, &F);
  CHECK(F.rc == CURLE_OK);
  curl_easy_cleanup(h);
  get(rcv_url(r, "/ka", url, sizeof url), 5000, &F);
  const rcv_request *a = rcv_request_at(r, before), *b = rcv_request_at(r, before + 1),
                    *c = rcv_request_at(r, before + 2);
  CHECK(a && b && c);
  if (!a || !b || !c)
    return;
  CHECK(a->remote_port == b->remote_port); /* reused connection */
  CHECK(a->conn_id == b->conn_id && a->conn_seq == 1 && b->conn_seq == 2);
  CHECK(c->conn_id != a->conn_id && c->conn_seq == 1);
  CHECK(c->remote_port != a->remote_port);
  CHECK(rcv_connections(r) == conns + 2);
}

static int hook_teapot(const rcv_request *q, void *ud, rcv_spec *answer)
{
  int *calls = ud;
  __atomic_add_fetch(calls, 1, __ATOMIC_SEQ_CST);
  const char *v = rcv_header_get(q, "X-Override");
  if (!v || strcmp(v, "1") != 0)
    return 0;
  *answer = (rcv_spec){.kind = RCV_REPLY, .status = 418, .body = "tea time"};
  return 1;
}

static void test_hook(rcv *r)
{
  char url[256];
  int calls = 0;
  CHECK(rcv_script_reply(r, "/hook", 204, NULL, NULL) == 0);
  rcv_set_hook(r, hook_teapot, &calls);
  struct curl_slist *hdrs = curl_slist_append(NULL, "X-Override: 1");
  fetch_on(NULL, rcv_url(r, "/hook", url, sizeof url), NULL, 0, hdrs, 5000, &F);
  curl_slist_free_all(hdrs);
  CHECK(F.code == 418 && strncmp(F.body, "tea ", 4) == 0);
  get(rcv_url(r, "/hook", url, sizeof url), 5000, &F);
  CHECK(F.code == 204);
  rcv_set_hook(r, NULL, NULL);
  CHECK(__atomic_load_n(&calls, __ATOMIC_SEQ_CST) == 2);
}

static void test_wait_timeout(rcv *r)
{
  int64_t t0 = now_ms();
  CHECK(rcv_wait_count(r, rcv_count(r) + 1, 200) == 0);
  int64_t dt = now_ms() - t0;
  CHECK(dt >= 190 && dt < 2000);
  CHECK(rcv_wait_count(r, 0, 0) == 1);
  char small[8];
  CHECK(rcv_url(r, "/x", small, sizeof small) == NULL);
}

static void test_blackhole_and_refused(void)
{
  char url[256];
  rcv_blackhole *b = NULL;
  CHECK(rcv_blackhole_start(&b, 0) == 0);
  if (b) {
    get(rcv_blackhole_url(b, "/void", url, sizeof url), 300, &F);
    CHECK(F.rc == CURLE_OPERATION_TIMEDOUT);
    CHECK(F.ms >= 250 && F.ms < 3000);
    CHECK(rcv_blackhole_accepted(b) >= 1);
    /* Leave one connection open for free to deal with. */
    CURLM *m = curl_multi_init();
    CURL *h = new_handle();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_multi_add_handle(m, h);
    int running = 1;
    int64_t until = now_ms() + 3000;
    while (rcv_blackhole_accepted(b) < 2 && now_ms() < until) {
      curl_multi_perform(m, &running);
      curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    CHECK(rcv_blackhole_accepted(b) >= 2);
    int64_t t0 = now_ms();
    rcv_blackhole_free(b);
    CHECK(now_ms() - t0 < 1000);
    curl_multi_remove_handle(m, h);
    curl_easy_cleanup(h);
    curl_multi_cleanup(m);
  }

  unsigned port = rcv_refused_port();
  CHECK(port != 0);
  get(rcv_loopback_url(0, port, "/x", url, sizeof url), 5000, &F);
  CHECK(F.rc == CURLE_COULDNT_CONNECT);
  CHECK(F.ms < 1000);
}

static void test_ipv6(void)
{
  rcv *r6 = NULL;
  if (rcv_start(&r6, 1) != 0) {
    printf("  ipv6: SKIP (no ::1)\n");
    return;
  }
  char url[256];
  CHECK(strncmp(rcv_url(r6, "/six", url, sizeof url), "http://[::1]:", 13) == 0);
  CHECK(rcv_script_reply(r6, "/six", 200, NULL, "six") == 0);
  get(url, 5000, &F);
  CHECK(F.rc == CURLE_OK && strcmp(F.body, "six") == 0);
  const rcv_request *q = rcv_request_at(r6, 0);
  CHECK(q && q->remote_port != 0);
  rcv_free(r6);

  rcv_blackhole *b = NULL;
  CHECK(rcv_blackhole_start(&b, 1) == 0);
  if (b) {
    get(rcv_blackhole_url(b, "/", url, sizeof url), 200, &F);
    CHECK(F.rc == CURLE_OPERATION_TIMEDOUT);
    rcv_blackhole_free(b);
  }
}

static size_t pause_body(char *p, size_t sz, size_t n, void *ud)
{
  (void)p;
  (void)sz;
  (void)n;
  (void)ud;
  return CURL_WRITEFUNC_PAUSE; /* the server is left blocked mid-send */
}

static size_t discard_body(char *p, size_t sz, size_t n, void *ud)
{
  (void)p;
  (void)ud;
  return sz * n;
}

#define NSTALL 120

/* NSTALL stalled requests, slow drips and a paused 100 MiB download are in
 * flight; a normal request must still be answered at once, and rcv_free()
 * must still return promptly. */
static void test_concurrency(void)
{
  rcv *r = NULL;
  CHECK(rcv_start(&r, 0) == 0);
  if (!r)
    return;
  char url[256];
  CHECK(rcv_script_stall(r, "/stall", 0) == 0);
  rcv_spec drip = {.kind = RCV_DRIP, .status = 200, .nbytes = 1000, .ms = 1000};
  CHECK(rcv_script(r, "/drip", &drip) == 0);
  CHECK(rcv_script_large(r, "/huge", 100ull << 20) == 0);

  CURLM *m = curl_multi_init();
  enum { NDRIP = 2, NALL = NSTALL + NDRIP + 1 };
  CURL *hs[NALL];
  for (int i = 0; i < NALL; i++) {
    const char *path = i < NSTALL ? "/stall" : i < NSTALL + NDRIP ? "/drip" : "/huge";
    hs[i] = new_handle();
    curl_easy_setopt(hs[i], CURLOPT_URL, rcv_url(r, path, url, sizeof url));
    curl_easy_setopt(hs[i], CURLOPT_WRITEFUNCTION, i == NALL - 1 ? pause_body : discard_body);
    curl_multi_add_handle(m, hs[i]);
  }
  int running = 0;
  int64_t until = now_ms() + 20000;
  while (rcv_count(r) < NALL && now_ms() < until) {
    curl_multi_perform(m, &running);
    curl_multi_poll(m, NULL, 0, 20, NULL);
  }
  /* Give the huge download and the drips a moment to get going. */
  for (int i = 0; i < 10; i++) {
    curl_multi_perform(m, &running);
    curl_multi_poll(m, NULL, 0, 20, NULL);
  }
  CHECK(rcv_count_path(r, "/stall") == NSTALL);
  CHECK(rcv_count_path(r, "/drip") == NDRIP);
  CHECK(rcv_count_path(r, "/huge") == 1);
  CHECK(rcv_connections(r) == NALL);
  CHECK(rcv_open_connections(r) == NALL);

  CHECK(rcv_script_reply(r, "/ok", 200, NULL, "fine") == 0);
  get(rcv_url(r, "/ok", url, sizeof url), 5000, &F);
  CHECK(F.rc == CURLE_OK && F.code == 200 && strcmp(F.body, "fine") == 0);
  CHECK(F.ms < 1000);
  printf("  concurrency: normal request answered in %lld ms with %d stalled\n", (long long)F.ms,
         NSTALL);

  int64_t t0 = now_ms();
  rcv_free(r);
  int64_t dt = now_ms() - t0;
  CHECK(dt < 1000);
  printf("  concurrency: rcv_free took %lld ms\n", (long long)dt);

  for (int i = 0; i < NALL; i++) {
    curl_multi_remove_handle(m, hs[i]);
    curl_easy_cleanup(hs[i]);
  }
  curl_multi_cleanup(m);
}

/* A stall ends once its client hangs up, so the server thread is freed. */
static void test_stall_client_leaves(void)
{
  rcv *r = NULL;
  CHECK(rcv_start(&r, 0) == 0);
  if (!r)
    return;
  char url[256];
  CHECK(rcv_script_stall(r, "/s", 0) == 0);
  get(rcv_url(r, "/s", url, sizeof url), 200, &F);
  CHECK(F.rc == CURLE_OPERATION_TIMEDOUT);
  /* curl closed its connection on timeout: the stall must notice and the
   * server must close its side too. */
  int64_t until = now_ms() + 2000;
  while (rcv_open_connections(r) > 0 && now_ms() < until) {
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  CHECK(rcv_open_connections(r) == 0);
  CHECK(rcv_connections(r) == 1);
  rcv_free(r);
}

int main(void)
{
  setvbuf(stdout, NULL, _IONBF, 0);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  rcv *r = NULL;
  if (rcv_start(&r, 0) != 0) {
    fprintf(stderr, "cannot start the receiver\n");
    return 1;
  }
  printf("receiver on port %u\n", rcv_port(r));

  struct {
    const char *name;
    void (*fn)(rcv *);
  } tests[] = {
    {"reply_and_capture", test_reply_and_capture},
    {"queue_and_default", test_queue_and_default},
    {"large", test_large},
    {"stall", test_stall},
    {"drip", test_drip},
    {"reset", test_reset},
    {"http10", test_http10},
    {"redirect", test_redirect},
    {"keepalive", test_keepalive},
    {"hook", test_hook},
    {"wait_timeout", test_wait_timeout},
  };
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    int before = failures;
    tests[i].fn(r);
    printf("%s %s\n", failures == before ? "ok  " : "FAIL", tests[i].name);
  }
  rcv_free(r);

  struct {
    const char *name;
    void (*fn)(void);
  } solo[] = {
    {"blackhole_and_refused", test_blackhole_and_refused},
    {"ipv6", test_ipv6},
    {"stall_client_leaves", test_stall_client_leaves},
    {"concurrency", test_concurrency},
  };
  for (size_t i = 0; i < sizeof solo / sizeof solo[0]; i++) {
    int before = failures;
    solo[i].fn();
    printf("%s %s\n", failures == before ? "ok  " : "FAIL", solo[i].name);
  }

  curl_global_cleanup();
  printf("%d failure(s)\n", failures);
  return failures ? 1 : 0;
}
