/*
 * Per-endpoint health: the circuit breaker. Over a sliding window (5 min by
 * default) with at least 10 requests and at least 70 % failures, the breaker
 * opens: nothing is sent for 30 s, then one probe (half-open) decides. Waiting
 * behind an open breaker does not use up a delivery's attempts.
 */
#include "dispatch.h"

#include <string.h>

static void window_totals(const wh__breaker *b, const wh__opts *o, int64_t now, int *req, int *fail)
{
  *req = *fail = 0;
  for (int i = 0; i < WH__BREAKER_BUCKETS; i++) {
    if (b->bucket_start[i] > now - o->breaker_window_ms) {
      *req += b->requests[i];
      *fail += b->failures[i];
    }
  }
}

void wh__breaker_record(wh__breaker *b, const wh__opts *o, int64_t now, int failed)
{
  if (o->breaker_failure_pct <= 0)
    return;
  if (b->state == WH__BREAKER_HALF_OPEN) {
    if (failed) {
      b->state = WH__BREAKER_OPEN;
      b->open_until = now + o->breaker_cooldown_ms;
    } else {
      /* The probe got through: start counting afresh. */
      memset(b, 0, sizeof *b);
    }
    return;
  }
  int64_t width = o->breaker_window_ms / WH__BREAKER_BUCKETS;
  if (width < 1)
    width = 1;
  int64_t start = now - now % width;
  int i = (int)((now / width) % WH__BREAKER_BUCKETS);
  if (b->bucket_start[i] != start) {
    b->bucket_start[i] = start;
    b->requests[i] = b->failures[i] = 0;
  }
  b->requests[i]++;
  b->failures[i] += failed != 0;
  if (!failed || b->state != WH__BREAKER_CLOSED)
    return;
  int req, fail;
  window_totals(b, o, now, &req, &fail);
  if (req >= o->breaker_min_requests && fail * 100 >= o->breaker_failure_pct * req) {
    b->state = WH__BREAKER_OPEN;
    b->open_until = now + o->breaker_cooldown_ms;
  }
}

int wh__breaker_allows(wh__breaker *b, int in_flight, int64_t now)
{
  switch (b->state) {
  case WH__BREAKER_CLOSED:
    return 1;
  case WH__BREAKER_OPEN:
    if (now < b->open_until)
      return 0;
    b->state = WH__BREAKER_HALF_OPEN;
    /* fall through */
  default:
    return in_flight == 0; /* a single probe at a time */
  }
}

int wh__is_throttle_status(int status)
{
  return status == 429 || status == 502 || status == 503 || status == 504;
}
