/* Retries and faults against a scripted receiver: every response rule of
   REFERENCE.md, each asserting the outcome, the next attempt's time, and
   that a healthy endpoint beside it was not held up. */
#include <webhook/webhook.h>

#include "receiver.h"
#include "support/check.h"
#include "support/harness.h"

#include <stdatomic.h>
#include <stdio.h>

static rcv *R;

/* One test's world: a registry with a faulty endpoint and a healthy one. */
typedef struct {
  wh_registry *reg;
  wh_dispatcher *d;
  h_log log;
  char bad[WH_ID_MAX], good[WH_ID_MAX];
  char bad_path[64], good_path[64];
  char secret[128];
} world;

static void world_open(world *w, const char *name, const char *schedule)
{
  memset(w, 0, sizeof *w);
  CHECK_OK(wh_registry_open(&w->reg, NULL));
  snprintf(w->bad_path, sizeof w->bad_path, "/%s-bad", name);
  snprintf(w->good_path, sizeof w->good_path, "/%s-good", name);
  char url[256];
  rcv_url(R, w->bad_path, url, sizeof url);
  CHECK_OK(wh_endpoint_add(w->reg, "bad", url, NULL, w->bad, WH_ID_MAX));
  rcv_url(R, w->good_path, url, sizeof url);
  CHECK_OK(wh_endpoint_add(w->reg, "good", url, NULL, w->good, WH_ID_MAX));
  CHECK_OK(wh_endpoint_secret(w->reg, w->bad, w->secret, sizeof w->secret));
  h_log_init(&w->log);
  w->d = h_dispatcher(w->reg, &w->log, schedule);
  CHECK_OK(wh_dispatcher_set_int(w->d, WH_OPT_BREAKER_FAILURE_PCT, 0));
}

static void world_start(world *w) { CHECK_OK(wh_dispatcher_start(w->d)); }

static void world_close(world *w)
{
  wh_dispatcher_free(w->d);
  wh_registry_free(w->reg);
  h_log_free(&w->log);
}

/* The healthy endpoint got its copies, first time. How soon is not measured
   in milliseconds here (a sanitizer build on a loaded machine is slow): where
   the troubled endpoint's outcome takes long (a timeout, a breaker's
   cooldown), the callers check that the healthy copy came first. */
static void good_unaffected(world *w, size_t expected)
{
  CHECK(h_wait(&w->log, w->good, WH_DELIVERED, expected, 10000));
  CHECK_INT(h_count(&w->log, w->good, WH_RETRYING), 0);
}

/* Every request on path carried the same webhook-id and a valid signature. */
static void same_id_valid_sigs(world *w, const char *path, const char *msg_id, size_t want)
{
  size_t seen = 0;
  for (size_t i = 0; i < rcv_count(R); i++) {
    const rcv_request *q = rcv_request_at(R, i);
    if (strcmp(q->path, path) != 0)
      continue;
    seen++;
    CHECK_STR(rcv_header_get(q, "webhook-id"), msg_id);
    CHECK_OK(wh_verify(w->secret, rcv_header_get(q, "webhook-id"), rcv_header_get(q, "webhook-timestamp"),
                       rcv_header_get(q, "webhook-signature"), q->body, q->body_len, 0));
  }
  CHECK_INT(seen, want);
}

static void retries_then_success(void)
{
  world w;
  world_open(&w, "retry", "0.2,0.4,0.1");
  rcv_script_reply(R, w.bad_path, 500, NULL, "boom");
  rcv_script_reply(R, w.bad_path, 503, NULL, "busy");
  rcv_script_reply(R, w.bad_path, 200, NULL, "ok");
  world_start(&w);
  char mid[WH_ID_MAX];
  int64_t t0 = h_now_ms();
  CHECK_OK(wh_dispatcher_emit(w.d, h_person_event(NULL, NULL), mid, sizeof mid));
  good_unaffected(&w, 1);
  CHECK(h_wait(&w.log, w.bad, WH_DELIVERED, 1, 5000));
  h_result r = {0};
  CHECK(h_get(&w.log, w.bad, 0, &r));
  CHECK_INT(r.outcome, WH_RETRYING);
  CHECK_INT(r.attempt, 1);
  CHECK_INT(r.status, 500);
  CHECK_STR(r.error, "HTTP 500");
  CHECK(r.next_ms >= t0 + 200 && r.next_ms <= r.at_ms + 250);
  CHECK(h_get(&w.log, w.bad, 1, &r));
  CHECK_INT(r.outcome, WH_RETRYING);
  CHECK_INT(r.attempt, 2);
  CHECK_INT(r.status, 503);
  /* 0.4 s from the library's clock, no jitter. That clock was read after the
     request arrived and before the callback ran, whatever the lag. */
  const rcv_request *q2 = rcv_request_on_path(R, w.bad_path, 1);
  CHECK(q2 && r.next_ms >= q2->real_ms + 400 && r.next_ms <= r.at_ms + 401);
  CHECK(h_get(&w.log, w.bad, 2, &r));
  CHECK_INT(r.outcome, WH_DELIVERED);
  CHECK_INT(r.attempt, 3);
  CHECK_INT(r.next_ms, 0);
  same_id_valid_sigs(&w, w.bad_path, mid, 3);
  /* The timestamps are those of each attempt, so they may differ; the id never does. */
  world_close(&w);
}

static void exhausted_and_statuses(void)
{
  world w;
  world_open(&w, "exhaust", "0.05,0.05");
  rcv_script_reply(R, w.bad_path, 404, NULL, "no");
  world_start(&w);
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&w.log, w.bad, WH_FAILED, 1, 5000));
  CHECK_INT(h_count(&w.log, w.bad, WH_RETRYING), 2);
  CHECK_INT(rcv_count_path(R, w.bad_path), 3); /* attempts = entries + 1 */
  h_result r = {0};
  CHECK(h_get(&w.log, w.bad, 2, &r) && r.attempt == 3 && r.outcome == WH_FAILED && r.next_ms == 0);
  good_unaffected(&w, 1);
  /* 1xx/3xx are failures as well: only 2xx counts. 201 and 204 succeed. */
  rcv_script_clear(R, w.bad_path);
  rcv_script_reply(R, w.bad_path, 204, NULL, NULL);
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&w.log, w.bad, WH_DELIVERED, 1, 5000));
  world_close(&w);
}

static void redirects_not_followed(void)
{
  static const int codes[] = {301, 302, 307};
  for (int i = 0; i < 3; i++) {
    world w;
    char name[32], target[256], elsewhere[64];
    snprintf(name, sizeof name, "redir%d", codes[i]);
    world_open(&w, name, "");
    snprintf(elsewhere, sizeof elsewhere, "/redir-target-%d", codes[i]);
    rcv_url(R, elsewhere, target, sizeof target);
    rcv_script_redirect(R, w.bad_path, codes[i], target);
    world_start(&w);
    CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
    CHECK(h_wait(&w.log, w.bad, WH_FAILED, 1, 5000));
    h_result r = {0};
    CHECK(h_get(&w.log, w.bad, 0, &r) && r.status == codes[i] && strstr(r.error, "redirect"));
    CHECK_INT(rcv_count_path(R, elsewhere), 0);
    good_unaffected(&w, 1);
    world_close(&w);
  }
}

static void gone_disables(void)
{
  world w;
  world_open(&w, "gone", "0.05,0.05,0.05");
  rcv_script_reply(R, w.bad_path, 410, NULL, "gone");
  world_start(&w);
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&w.log, w.bad, WH_FAILED, 1, 5000));
  h_result r = {0};
  CHECK(h_get(&w.log, w.bad, 0, &r) && r.status == 410 && r.disabled == 1 && r.attempt == 1);
  CHECK_INT(rcv_count_path(R, w.bad_path), 1); /* no more attempts */
  pthread_mutex_lock(&w.log.mu);
  CHECK_INT(w.log.ndisabled, 1);
  CHECK_STR(w.log.disabled_ep[0], w.bad);
  CHECK_STR(w.log.disabled_reason[0], "410 Gone");
  pthread_mutex_unlock(&w.log.mu);
  char *json = NULL;
  CHECK_OK(wh_endpoint_get_json(w.reg, w.bad, &json));
  CHECK(json && strstr(json, "\"enabled\":false") && strstr(json, "410 Gone"));
  wh_free(json);
  /* Later events skip it. */
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  good_unaffected(&w, 2);
  CHECK_OK(wh_dispatcher_drain(w.d, 2000));
  CHECK_INT(rcv_count_path(R, w.bad_path), 1);
  world_close(&w);
}

/* A 410 also ends the endpoint's retries already scheduled: at once, unattempted. */
static void gone_ends_scheduled_retries(void)
{
  world w;
  world_open(&w, "gone-heap", "30");
  rcv_script_reply(R, w.bad_path, 500, NULL, "not yet");
  rcv_script_reply(R, w.good_path, 500, NULL, "not yet either"); /* the heap mixes both endpoints */
  world_start(&w);
  enum { WAITING = 12 };
  for (int i = 0; i < WAITING; i++)
    CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&w.log, w.bad, WH_RETRYING, WAITING, 5000)); /* all wait 30 s in the heap */
  rcv_script_clear(R, w.bad_path);
  rcv_script_reply(R, w.bad_path, 410, NULL, "gone");
  int64_t t0 = h_mono_ms();
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&w.log, w.bad, WH_FAILED, WAITING + 1, 20000));
  CHECK(h_mono_ms() - t0 < 20000); /* not at their retries, 30 s away */
  CHECK_INT(rcv_count_path(R, w.bad_path), WAITING + 1); /* none of the waiting ones was sent again */
  CHECK_INT(h_count(&w.log, w.good, WH_FAILED), 0);      /* the other endpoint's retries stay */
  world_close(&w);
}

/* Throttling: Retry-After in seconds, as a date, and garbage, clamped to [1x, 2x]. */
static void throttled(void)
{
  static const struct {
    int status;
    const char *header;
    int64_t lo, hi; /* expected delay range in ms */
  } cases[] = {
    {503, "Retry-After: 2", 1900, 2100},            /* within [1 s, 2 s]: honoured */
    {503, "Retry-After: 3600", 1900, 2100},         /* clamped to 2x */
    {502, "Retry-After: 0", 900, 1100},             /* clamped to 1x */
    {504, "Retry-After: soon", 900, 1100},          /* garbage: the schedule */
    {429, "Retry-After: 1", 2900, 3100},            /* 429 waits at least the minimum (3 s here) */
    {503, NULL, 900, 1100},                         /* date form filled in below */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    world w;
    char name[32], hdr[96];
    snprintf(name, sizeof name, "throttle%zu", i);
    world_open(&w, name, "1");
    CHECK_OK(wh_dispatcher_set_int(w.d, WH_OPT_THROTTLE_MIN_DELAY_MS, 3000));
    const char *h = cases[i].header;
    int64_t lo = cases[i].lo, hi = cases[i].hi;
    if (!h) {
      /* An HTTP-date 1.6 s ahead (whole seconds: between 1 and 2 s). */
      time_t when = (time_t)((h_now_ms() + 2000) / 1000);
      struct tm tm;
      gmtime_r(&when, &tm);
      strftime(hdr, sizeof hdr, "Retry-After: %a, %d %b %Y %H:%M:%S GMT", &tm);
      h = hdr;
      lo = 900;
      hi = 2100;
    }
    rcv_script_reply(R, w.bad_path, cases[i].status, h, "slow down");
    world_start(&w);
    CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
    CHECK(h_wait(&w.log, w.bad, WH_RETRYING, 1, 5000));
    good_unaffected(&w, 1);
    h_result r = {0};
    CHECK(h_get(&w.log, w.bad, 0, &r));
    /* The delay counts from the library's clock, read between the request's
       arrival and the callback: from the arrival it is at least the delay,
       from the callback at most. */
    const rcv_request *q = rcv_request_on_path(R, w.bad_path, 0);
    int64_t from_arrival = q ? r.next_ms - q->real_ms : 0, from_callback = r.next_ms - r.at_ms;
    if (from_arrival < lo || from_callback > hi)
      fprintf(stderr, "case %zu (%d %s): delay %lld (from the request) / %lld (from the callback) not in [%lld, %lld]\n",
              i, cases[i].status, h, (long long)from_arrival, (long long)from_callback, (long long)lo, (long long)hi);
    CHECK(from_arrival >= lo && from_callback <= hi);
    CHECK_INT(r.status, cases[i].status);
    world_close(&w);
  }
}

static void fast_connection_failure(void)
{
  world w;
  world_open(&w, "refused", "1,1");
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/refused", rcv_refused_port());
  CHECK_OK(wh_endpoint_set_url(w.reg, w.bad, url));
  world_start(&w);
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&w.log, w.bad, WH_RETRYING, 2, 3000));
  h_result a = {0}, b = {0};
  CHECK(h_get(&w.log, w.bad, 0, &a) && h_get(&w.log, w.bad, 1, &b));
  /* First failure: retried at once; second: on the schedule (1 s). */
  CHECK_INT(a.attempt, 1);
  CHECK(a.next_ms - a.at_ms <= 20);
  CHECK_INT(b.attempt, 2);
  /* 1 s from the library's clock when attempt 2 failed: that is after attempt
     2 was due (a.next_ms) and before its callback. */
  CHECK(b.next_ms >= a.next_ms + 999 && b.next_ms <= b.at_ms + 1001);
  CHECK(a.status == 0 && a.error[0] != '\0');
  good_unaffected(&w, 1);
  world_close(&w);
}

static void timeouts_and_stalls(void)
{
  world w;
  world_open(&w, "stall", "0.5");
  CHECK_OK(wh_dispatcher_set_int(w.d, WH_OPT_TIMEOUT_MS, 1000));
  CHECK_OK(wh_dispatcher_set_int(w.d, WH_OPT_THROTTLE_MIN_DELAY_MS, 2000));
  rcv_script_stall(R, w.bad_path, 0); /* headers never sent */
  world_start(&w);
  int64_t t0 = h_mono_ms();
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  good_unaffected(&w, 1);
  CHECK_INT(h_count(&w.log, w.bad, 0), 0); /* not held behind the stalled one's 1 s timeout */
  CHECK(h_wait(&w.log, w.bad, WH_RETRYING, 1, 10000));
  h_result r = {0};
  CHECK(h_get(&w.log, w.bad, 0, &r));
  CHECK(strstr(r.error, "timeout") != NULL);
  CHECK_INT(r.status, 0);
  CHECK(h_mono_ms() - t0 >= 950);
  /* At least the throttle minimum (2 s), not the schedule's 0.5 s, counted
     from the library's clock at the timeout: about 1 s after the request
     arrived (less its connection time), at most the callback's time. */
  const rcv_request *q = rcv_request_on_path(R, w.bad_path, 0);
  CHECK(q && r.next_ms - q->real_ms >= 2500 && r.next_ms <= r.at_ms + 2001);
  world_close(&w);

  /* A receiver that accepts the connection and never reads. */
  rcv_blackhole *bh;
  CHECK(rcv_blackhole_start(&bh, 0) == 0);
  world_open(&w, "blackhole", "");
  CHECK_OK(wh_dispatcher_set_int(w.d, WH_OPT_TIMEOUT_MS, 1000));
  char url[128];
  rcv_blackhole_url(bh, "/x", url, sizeof url);
  CHECK_OK(wh_endpoint_set_url(w.reg, w.bad, url));
  world_start(&w);
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  good_unaffected(&w, 1);
  CHECK_INT(h_count(&w.log, w.bad, 0), 0); /* not held behind the 1 s timeout */
  CHECK(h_wait(&w.log, w.bad, WH_FAILED, 1, 10000));
  CHECK(h_get(&w.log, w.bad, 0, &r) && strstr(r.error, "timeout"));
  world_close(&w);
  rcv_blackhole_free(bh);
}

static void broken_responses(void)
{
  /* Reset before any answer: a failure, retried. */
  world w;
  world_open(&w, "reset", "0.05");
  rcv_script_reset(R, w.bad_path);
  world_start(&w);
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&w.log, w.bad, WH_FAILED, 1, 3000));
  CHECK_INT(h_count(&w.log, w.bad, WH_RETRYING), 1);
  good_unaffected(&w, 1);
  world_close(&w);

  /* Reset during the body of a 200: the status had arrived, so delivered. */
  world_open(&w, "resetbody", "0.05");
  rcv_script_reset_body(R, w.bad_path, 100);
  world_start(&w);
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&w.log, w.bad, WH_DELIVERED, 1, 3000));
  world_close(&w);

  /* A 100 MiB answer: kept 20,000 bytes, cut short, quickly. */
  world_open(&w, "huge", "");
  rcv_script_large(R, w.bad_path, 100ull << 20);
  world_start(&w);
  int64_t t0 = h_mono_ms();
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&w.log, w.bad, WH_DELIVERED, 1, 10000));
  CHECK(h_mono_ms() - t0 < 5000); /* reading all 100 MiB takes longer under a sanitizer */
  world_close(&w);

  /* An HTTP/1.0 server that ends the body by closing. */
  world_open(&w, "http10", "");
  rcv_script_http10(R, w.bad_path, 200, "fine, thanks");
  world_start(&w);
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&w.log, w.bad, WH_DELIVERED, 2, 3000));
  world_close(&w);

  /* A body dripped a byte every 300 ms past the 1 s timeout, after a 200 status. */
  world_open(&w, "drip", "");
  CHECK_OK(wh_dispatcher_set_int(w.d, WH_OPT_TIMEOUT_MS, 1000));
  rcv_script_drip(R, w.bad_path, "0123456789", 300);
  world_start(&w);
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  good_unaffected(&w, 1);
  CHECK_INT(h_count(&w.log, w.bad, 0), 0); /* not held behind the dripping one */
  CHECK(h_wait(&w.log, w.bad, 0, 1, 10000));
  h_result r = {0};
  CHECK(h_get(&w.log, w.bad, 0, &r) && r.outcome == WH_DELIVERED && r.status == 200);
  world_close(&w);
}

static void breaker_opens(void)
{
  world w;
  world_open(&w, "breaker", "0.05,0.05,0.05,0.05,0.05,0.05,0.05,0.05,0.05,0.05");
  CHECK_OK(wh_dispatcher_set_int(w.d, WH_OPT_BREAKER_FAILURE_PCT, 70));
  CHECK_OK(wh_dispatcher_set_int(w.d, WH_OPT_BREAKER_MIN_REQUESTS, 4));
  CHECK_OK(wh_dispatcher_set_int(w.d, WH_OPT_BREAKER_WINDOW_MS, 60000));
  CHECK_OK(wh_dispatcher_set_int(w.d, WH_OPT_BREAKER_COOLDOWN_MS, 4000));
  rcv_script_reply(R, w.bad_path, 500, NULL, "down");
  world_start(&w);
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  /* 4 failures 50 ms apart open it; nothing for 4 s; then one probe. */
  CHECK(rcv_wait_count(R, 0, 0) || 1);
  int64_t t0 = h_mono_ms();
  while (rcv_count_path(R, w.bad_path) < 4 && h_mono_ms() - t0 < 3000)
    h_sleep_ms(5);
  size_t at_open = rcv_count_path(R, w.bad_path);
  CHECK_INT(at_open, 4);
  h_sleep_ms(1000);
  CHECK_INT(rcv_count_path(R, w.bad_path), 4); /* held back, no attempt spent */
  CHECK_INT(h_count(&w.log, w.bad, WH_FAILED), 0);
  /* The healthy endpoint is not affected by the other's breaker. */
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  good_unaffected(&w, 2);
  CHECK_INT(rcv_count_path(R, w.bad_path), 4); /* delivered before the cooldown ended */
  rcv_script_clear(R, w.bad_path);
  rcv_script_reply(R, w.bad_path, 200, NULL, "back");
  CHECK(h_wait(&w.log, w.bad, WH_DELIVERED, 2, 10000)); /* probe, then the rest */
  world_close(&w);
}

static void auto_disable(void)
{
  world w;
  world_open(&w, "autodis", "0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1");
  CHECK_OK(wh_dispatcher_set_int(w.d, WH_OPT_DISABLE_AFTER_MS, 500));
  rcv_script_reply(R, w.bad_path, 500, NULL, "down");
  world_start(&w);
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&w.log, w.bad, WH_FAILED, 1, 10000));
  h_result r = {0};
  size_t n = h_count(&w.log, w.bad, 0);
  CHECK(h_get(&w.log, w.bad, n - 1, &r) && r.disabled == 1);
  for (size_t i = 0; (n < 2 || n > 8) && i < n; i++) {
    h_result x = {0};
    h_get(&w.log, w.bad, i, &x);
    fprintf(stderr, "  auto-disable: #%d outcome %d status %d at %lld next %lld err %s\n", x.attempt, x.outcome,
            x.status, (long long)x.at_ms, (long long)x.next_ms, x.error);
  }
  /* Disabled once it had been failing for 500 ms: not before (from the first
     request's arrival to the disabling attempt's callback; the library's
     clock reads fall in between), and not much after (attempts are 0.1 s
     apart: 6 on time, fewer on a slow machine, never all 13). */
  const rcv_request *q1 = rcv_request_on_path(R, w.bad_path, 0);
  CHECK(q1 && r.at_ms - q1->real_ms >= 500);
  CHECK(n >= 2 && n <= 8);
  pthread_mutex_lock(&w.log.mu);
  CHECK_INT(w.log.ndisabled, 1);
  CHECK(strstr(w.log.disabled_reason[0], "failing for") != NULL);
  pthread_mutex_unlock(&w.log.mu);
  /* Enabled again by the administrator: the failure history is cleared, so
     the next failure does not disable it at once; it takes the period again. */
  size_t before = h_count(&w.log, w.bad, 0);
  CHECK_OK(wh_endpoint_set_enabled(w.reg, w.bad, 1));
  int64_t t0 = h_mono_ms();
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&w.log, w.bad, WH_FAILED, 2, 10000));
  CHECK(h_mono_ms() - t0 >= 500);
  CHECK(h_count(&w.log, w.bad, 0) - before >= 2);
  pthread_mutex_lock(&w.log.mu);
  CHECK_INT(w.log.ndisabled, 2);
  pthread_mutex_unlock(&w.log.mu);
  world_close(&w);
}

/* The head-of-line test of the issue: 50 hanging endpoints and a healthy one. */
static void head_of_line(void)
{
  rcv_blackhole *bh;
  CHECK(rcv_blackhole_start(&bh, 0) == 0);
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char url[128], name[32], good[WH_ID_MAX];
  for (int i = 0; i < 50; i++) {
    snprintf(name, sizeof name, "hang%d", i);
    rcv_blackhole_url(bh, "/hang", url, sizeof url);
    CHECK_OK(wh_endpoint_add(reg, name, url, NULL, NULL, 0));
  }
  rcv_url(R, "/hol-good", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "healthy", url, NULL, good, sizeof good));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_TIMEOUT_MS, 30000));
  CHECK_OK(wh_dispatcher_start(d));
  enum { EVENTS = 40 };
  int64_t worst = 0, total = 0;
  for (int i = 0; i < EVENTS; i++) {
    size_t before = rcv_count_path(R, "/hol-good");
    int64_t t0 = h_mono_ms();
    CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
    while (rcv_count_path(R, "/hol-good") == before && h_mono_ms() - t0 < 5000)
      h_sleep_ms(1);
    int64_t lat = h_mono_ms() - t0;
    if (getenv("HOL_VERBOSE"))
      fprintf(stderr, "event %d: %lld ms\n", i, (long long)lat);
    total += lat;
    if (lat > worst)
      worst = lat;
  }
  printf("head-of-line: 50 hanging endpoints (%lu connections held), healthy endpoint latency "
         "mean %.1f ms, worst %lld ms over %d events\n",
         rcv_blackhole_accepted(bh), (double)total / EVENTS, (long long)worst, EVENTS);
  CHECK(rcv_blackhole_accepted(bh) >= 50);
  /* Blocked behind a hanging request, it would wait for the 30 s timeout (the
     loop gives up at 5 s). Unblocked it takes a few ms; the worst seen was
     319 ms, under ThreadSanitizer with a full CI run beside it. */
  CHECK(worst < 1000);
  /* The receiver records a request before it answers: the last result may
     still be on its way back. */
  CHECK(h_wait(&log, good, WH_DELIVERED, EVENTS, 5000));
  CHECK_INT(h_count(&log, good, WH_DELIVERED), EVENTS);
  CHECK_ERR(wh_dispatcher_stop(d, 100), WH_ETIMEOUT, NULL);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
  rcv_blackhole_free(bh);
}

/* Hanging endpoints with a backlog each must not take a healthy endpoint's
   concurrency: the healthy one (100 ms per answer) still gets its windows of
   requests at once. Before the adaptive windows and the demand-based share,
   101 endpoints with work cut every endpoint to 256/101 = 2 requests at once
   (the hanging ones sat on 200 slots), and a worker whose share of the budget
   was held by hanging requests took no healthy work at all. */
static void hanging_backlog_keeps_concurrency(void)
{
  rcv_blackhole *bh;
  CHECK(rcv_blackhole_start(&bh, 0) == 0);
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char url[128], name[32], id[WH_ID_MAX], good[WH_ID_MAX];
  enum { HANGING = 100, BACKLOG = 20, EVENTS = 64, ANSWER_MS = 500 };
  for (int i = 0; i < HANGING; i++) {
    snprintf(name, sizeof name, "backlog-hang%d", i);
    rcv_blackhole_url(bh, "/hang", url, sizeof url);
    CHECK_OK(wh_endpoint_add(reg, name, url, NULL, id, sizeof id));
    CHECK_OK(wh_endpoint_subscribe(reg, id, "hang.*"));
  }
  rcv_spec slow = {.kind = RCV_REPLY, .status = 200, .ms = ANSWER_MS};
  CHECK(rcv_script(R, "/backlog-good", &slow) == 0);
  rcv_url(R, "/backlog-good", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "healthy", url, NULL, good, sizeof good));
  CHECK_OK(wh_endpoint_subscribe(reg, good, "people.*"));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_TIMEOUT_MS, 30000));
  CHECK_OK(wh_dispatcher_start(d));
  for (int i = 0; i < HANGING * BACKLOG; i++)
    CHECK_OK(wh_emit(h_person_event("hang", "CREATE")));
  for (int i = 0; i < 100 && rcv_blackhole_accepted(bh) < HANGING; i++)
    h_sleep_ms(20);
  size_t first = rcv_count(R);
  int64_t t0 = h_mono_ms();
  for (int i = 0; i < EVENTS; i++)
    CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  CHECK(h_wait(&log, good, WH_DELIVERED, EVENTS, 30000));
  int64_t took = h_mono_ms() - t0;
  /* Peak concurrency, from arrival times: most requests that arrived within
     ANSWER_MS of each other. Each is answered ANSWER_MS after it arrived, so
     they were all open at once just before the first one's answer. */
  size_t peak = 0, last = rcv_count(R);
  for (size_t i = first; i < last; i++) {
    const rcv_request *a = rcv_request_at(R, i);
    if (!a || strcmp(a->path, "/backlog-good") != 0)
      continue;
    size_t n = 0;
    for (size_t j = first; j < last; j++) {
      const rcv_request *b = rcv_request_at(R, j);
      if (b && strcmp(b->path, "/backlog-good") == 0 && b->mono_ms >= a->mono_ms &&
          b->mono_ms < a->mono_ms + ANSWER_MS)
        n++;
    }
    if (n > peak)
      peak = n;
  }
  printf("hanging backlog: %lu hanging connections; healthy endpoint: %d events in %lld ms, "
         "peak %zu requests at once\n",
         rcv_blackhole_accepted(bh), EVENTS, (long long)took, peak);
  CHECK(rcv_blackhole_accepted(bh) >= HANGING);
  CHECK(peak >= 12); /* WH_OPT_MAX_PER_ENDPOINT is 16; the old share was 2 */
  /* The windows grow 2, 4, 8, 16: about 7 rounds of 0.5 s. 64 at 2 at a time
     would take 32 rounds, 16 s. */
  CHECK(took < 10000);
  CHECK_ERR(wh_dispatcher_stop(d, 100), WH_ETIMEOUT, NULL);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
  rcv_blackhole_free(bh);
}

/* Calls a host may make from inside its result callback. */
typedef struct {
  wh_dispatcher *d;
  atomic_int stop_rc, drain_rc, emit_rc, calls;
} cb_state;

static void reentrant_cb(const wh_result *r, void *ud)
{
  cb_state *s = ud;
  (void)r;
  if (atomic_fetch_add(&s->calls, 1) > 0)
    return;
  s->stop_rc = wh_dispatcher_stop(s->d, 1000);
  s->drain_rc = wh_dispatcher_drain(s->d, 1000);
  wh_dispatcher_free(s->d); /* refused, must not crash */
  s->emit_rc = wh_dispatcher_emit(s->d, h_person_event("cases", "UPDATE"), NULL, 0);
}

static void callbacks_reentry(void)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char url[128];
  rcv_url(R, "/reentry", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "re", url, NULL, NULL, 0));
  wh_dispatcher *d;
  CHECK_OK(wh_dispatcher_new(&d, reg));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, 1));
  cb_state s = {.d = d};
  atomic_init(&s.stop_rc, -1);
  atomic_init(&s.drain_rc, -1);
  atomic_init(&s.emit_rc, -1);
  atomic_init(&s.calls, 0);
  CHECK_OK(wh_dispatcher_on_result(d, reentrant_cb, &s));
  CHECK_OK(wh_dispatcher_start(d));
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  int64_t t0 = h_mono_ms();
  while (s.calls < 2 && h_mono_ms() - t0 < 5000)
    h_sleep_ms(5);
  CHECK_INT(s.stop_rc, WH_ESTATE);
  CHECK_INT(s.drain_rc, WH_ESTATE);
  CHECK_INT(s.emit_rc, WH_OK); /* emitting from a callback is fine */
  CHECK_INT(s.calls, 2);
  CHECK_OK(wh_dispatcher_stop(d, 2000));
  wh_dispatcher_free(d);
  wh_registry_free(reg);
}

int main(void)
{
  if (rcv_start(&R, 0) != 0)
    return 1;
  retries_then_success();
  exhausted_and_statuses();
  redirects_not_followed();
  gone_disables();
  gone_ends_scheduled_retries();
  throttled();
  fast_connection_failure();
  timeouts_and_stalls();
  broken_responses();
  breaker_opens();
  auto_disable();
  head_of_line();
  hanging_backlog_keeps_concurrency();
  callbacks_reentry();
  rcv_free(R);
  return check_done("faults");
}
