/* Retry timing: see retry.c. */
#ifndef WEBHOOK_RETRY_H
#define WEBHOOK_RETRY_H

#include "internal.h"

#define WH__MAX_SCHEDULE 32
/* The longest wait a schedule entry or a Retry-After can ask for: a year. */
#define WH__MAX_DELAY_MS (366LL * 24 * 3600 * 1000)

/* Parse "5,300,1800" (seconds, up to 3 decimals) into delays_ms. "" gives 0 entries. */
int wh__schedule_parse(const char *text, int64_t *delays_ms, int max, int *count);
/* delay +- pct %, r01 in [0,1) choosing where in that range. */
int64_t wh__jitter(int64_t delay_ms, int pct, double r01);
/* A Retry-After value: delta-seconds or an HTTP-date. 1 and *delay_ms when it
   parses, 0 when it is garbage (then it is ignored). */
int wh__retry_after_parse(const char *value, int64_t now_ms, int64_t *delay_ms);

typedef struct {
  int64_t scheduled_ms;   /* the schedule's entry for this retry */
  int jitter_pct;
  double r01;
  int throttled;          /* 429, 502, 503, 504 */
  int has_retry_after;
  int64_t retry_after_ms;
  int timed_out;
  int http_status;
  int64_t throttle_min_ms; /* least wait after a timeout or 429 */
} wh__retry_input;

/* The wait before the next attempt. */
int64_t wh__next_delay(const wh__retry_input *in);

#endif
