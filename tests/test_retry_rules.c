/* The pure rules of retrying: schedule parsing, jitter, Retry-After in both
   forms and garbage, the clamps, and the circuit breaker's arithmetic. */
#include "delivery/dispatch.h"

#include "support/check.h"

static void schedule(void)
{
  int64_t d[WH__MAX_SCHEDULE];
  int n = -1;
  CHECK_OK(wh__schedule_parse("5,300,1800,7200,18000,36000,36000", d, WH__MAX_SCHEDULE, &n));
  CHECK_INT(n, 7);
  CHECK_INT(d[0], 5000);
  CHECK_INT(d[6], 36000000);
  CHECK_OK(wh__schedule_parse(" 0.25 , 1.5,2 ", d, WH__MAX_SCHEDULE, &n));
  CHECK_INT(n, 3);
  CHECK_INT(d[0], 250);
  CHECK_INT(d[1], 1500);
  CHECK_OK(wh__schedule_parse("", d, WH__MAX_SCHEDULE, &n));
  CHECK_INT(n, 0);
  static const char *bad[] = {"x", "5,", ",5", "5,,5", "-1", "1.", "1.2345", "1e3", "5;6", "9999999999",
                              "40000000"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_ERR(wh__schedule_parse(bad[i], d, WH__MAX_SCHEDULE, &n), WH_EINVAL, "retry schedule");
  char many[200] = "1";
  for (int i = 0; i < 40; i++)
    strcat(many, ",1");
  CHECK_ERR(wh__schedule_parse(many, d, WH__MAX_SCHEDULE, &n), WH_EINVAL, "entries");
}

static void jitter(void)
{
  CHECK_INT(wh__jitter(10000, 20, 0.0), 8000);
  CHECK_INT(wh__jitter(10000, 20, 0.5), 10000);
  CHECK(wh__jitter(10000, 20, 0.999999) <= 12000 && wh__jitter(10000, 20, 0.999999) > 11990);
  CHECK_INT(wh__jitter(10000, 0, 0.9), 10000);
  /* The real generator stays inside the band. */
  for (int i = 0; i < 1000; i++) {
    int64_t v = wh__jitter(5000, 20, wh__rand01());
    CHECK(v >= 4000 && v <= 6000);
  }
}

static void retry_after(void)
{
  int64_t v = -1;
  int64_t now = 1700000000000LL; /* Tue, 14 Nov 2023 22:13:20 GMT */
  CHECK(wh__retry_after_parse("120", now, &v) && v == 120000);
  CHECK(wh__retry_after_parse(" 7 \r\n", now, &v) && v == 7000);
  CHECK(wh__retry_after_parse("0", now, &v) && v == 0);
  CHECK(wh__retry_after_parse("Tue, 14 Nov 2023 22:15:20 GMT", now, &v) && v == 120000);
  CHECK(wh__retry_after_parse("Tue, 14 Nov 2023 22:10:00 GMT", now, &v) && v == 0); /* in the past */
  CHECK(wh__retry_after_parse("99999999999999", now, &v) && v > 86400000LL);
  static const char *garbage[] = {"", "soon", "-5", "1.5", "12abc", "Tue, 14 Nov 2023 22:15:20 PST",
                                  "Tue, 32 Nov 2023 22:15:20 GMT", "Tue, 14 Foo 2023 22:15:20 GMT",
                                  "Tue, 14 Nov 2023 25:15:20 GMT", "Tue, 14 Nov 2023 22:15:20 GMT junk"};
  for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
    int ok = wh__retry_after_parse(garbage[i], now, &v);
    if (ok)
      fprintf(stderr, "accepted garbage Retry-After: \"%s\"\n", garbage[i]);
    CHECK(!ok);
  }
  CHECK(!wh__retry_after_parse(NULL, now, &v));
  /* The two obsolete forms recipients must accept (RFC 9110 5.6.7). */
  CHECK(wh__retry_after_parse("Tuesday, 14-Nov-23 22:15:20 GMT", now, &v) && v == 120000);
  CHECK(wh__retry_after_parse("Tue Nov 14 22:15:20 2023", now, &v) && v == 120000);
  CHECK(wh__retry_after_parse("Thu Nov  2 22:15:20 2023", now, &v) && v == 0);
  /* Near-misses the fuzzer found accepted by a sscanf parser. */
  static const char *near[] = {"Xyz, 14 Nov 2023 22:15:20 GMT", "Tue, 4 Nov 2023 22:15:20 GMT",
                               "Tue, 14 Nov 2023 22: 5:+0 GMT", "Tue, 14 Nov 2023 -1:-1:-1 GMT",
                               "Tue,14Nov2023 22:15:20GMT", "Tue, 14 Nov 23 22:15:20 GMT",
                               "Tuesday, 14 Nov 2023 22:15:20 GMT", "Tue Nov 14 22:15:20 23"};
  for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
    int ok = wh__retry_after_parse(near[i], now, &v);
    if (ok)
      fprintf(stderr, "accepted near-miss Retry-After: \"%s\"\n", near[i]);
    CHECK(!ok);
  }
  /* Long numbers are capped, never shorter than shorter numbers. */
  int64_t a, b;
  CHECK(wh__retry_after_parse("999999999", now, &a) && wh__retry_after_parse("9999999999", now, &b) && b >= a);
}

static void next_delay(void)
{
  wh__retry_input in = {.scheduled_ms = 10000, .jitter_pct = 0, .r01 = 0.5, .throttle_min_ms = 60000};
  CHECK_INT(wh__next_delay(&in), 10000);
  in.http_status = 500;
  CHECK_INT(wh__next_delay(&in), 10000);
  /* Throttled with Retry-After: clamped to [1x, 2x] of the schedule. */
  in.http_status = 503;
  in.throttled = 1;
  in.has_retry_after = 1;
  in.retry_after_ms = 15000;
  CHECK_INT(wh__next_delay(&in), 15000);
  in.retry_after_ms = 1000;
  CHECK_INT(wh__next_delay(&in), 10000);
  in.retry_after_ms = 3600000;
  CHECK_INT(wh__next_delay(&in), 20000);
  /* 429 waits at least the throttle minimum, Retry-After or not. */
  in.http_status = 429;
  in.retry_after_ms = 15000;
  CHECK_INT(wh__next_delay(&in), 60000);
  in.has_retry_after = 0;
  CHECK_INT(wh__next_delay(&in), 60000);
  /* A timeout too. */
  wh__retry_input t = {.scheduled_ms = 5000, .timed_out = 1, .throttle_min_ms = 60000};
  CHECK_INT(wh__next_delay(&t), 60000);
  t.scheduled_ms = 300000;
  CHECK_INT(wh__next_delay(&t), 300000);
  /* Retry-After is ignored when the status is not a throttling one. */
  wh__retry_input e = {.scheduled_ms = 5000, .http_status = 500, .has_retry_after = 1, .retry_after_ms = 9000};
  CHECK_INT(wh__next_delay(&e), 5000);
}

static void breaker(void)
{
  wh__opts o = {.breaker_window_ms = 300000, .breaker_min_requests = 10, .breaker_failure_pct = 70,
                .breaker_cooldown_ms = 30000};
  wh__breaker b = {0};
  int64_t now = 1700000000000LL;
  /* 9 failures: not enough requests yet. */
  for (int i = 0; i < 9; i++)
    wh__breaker_record(&b, &o, now + i, 1);
  CHECK_INT(b.state, WH__BREAKER_CLOSED);
  CHECK(wh__breaker_allows(&b, 0, now + 10));
  wh__breaker_record(&b, &o, now + 10, 1);
  CHECK_INT(b.state, WH__BREAKER_OPEN);
  CHECK(!wh__breaker_allows(&b, 0, now + 1000));
  CHECK(!wh__breaker_allows(&b, 0, now + 10 + 29999));
  /* Half-open: one probe at a time. */
  CHECK(wh__breaker_allows(&b, 0, now + 10 + 30000));
  CHECK_INT(b.state, WH__BREAKER_HALF_OPEN);
  CHECK(!wh__breaker_allows(&b, 1, now + 10 + 30001));
  wh__breaker_record(&b, &o, now + 30100, 1); /* the probe failed: open again */
  CHECK_INT(b.state, WH__BREAKER_OPEN);
  CHECK(wh__breaker_allows(&b, 0, now + 30100 + 30000));
  wh__breaker_record(&b, &o, now + 60200, 0); /* the probe worked: closed, counts reset */
  CHECK_INT(b.state, WH__BREAKER_CLOSED);
  CHECK(wh__breaker_allows(&b, 5, now + 60201));

  /* 69 % failures does not open it; 70 % does. */
  wh__breaker c = {0};
  for (int i = 0; i < 100; i++)
    wh__breaker_record(&c, &o, now + i, i >= 31); /* successes first: the rate never reaches 70 % */
  CHECK_INT(c.state, WH__BREAKER_CLOSED);
  wh__breaker e = {0};
  for (int i = 0; i < 10; i++)
    wh__breaker_record(&e, &o, now + i, i >= 3);
  CHECK_INT(e.state, WH__BREAKER_OPEN);
  /* Old failures fall out of the window. */
  wh__breaker f = {0};
  for (int i = 0; i < 9; i++)
    wh__breaker_record(&f, &o, now, 1);
  wh__breaker_record(&f, &o, now + 400000, 1);
  CHECK_INT(f.state, WH__BREAKER_CLOSED);
  /* failure_pct 0 turns it off. */
  o.breaker_failure_pct = 0;
  wh__breaker g = {0};
  for (int i = 0; i < 50; i++)
    wh__breaker_record(&g, &o, now + i, 1);
  CHECK_INT(g.state, WH__BREAKER_CLOSED);
}

int main(void)
{
  schedule();
  jitter();
  retry_after();
  next_delay();
  breaker();
  return check_done("retry_rules");
}
