/*
 * When to try again (REFERENCE.md, "Retries and responses"): the schedule,
 * its jitter, Retry-After in both of its forms, and the clamps around them.
 * Pure functions, so tests and fuzzers can drive them directly.
 */
#include "retry.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_DELAY_MS (366LL * 24 * 3600 * 1000)

int wh__schedule_parse(const char *text, int64_t *delays_ms, int max, int *count)
{
  if (!text)
    return wh__fail(WH_EINVAL, "retry schedule: must not be NULL");
  int n = 0;
  const char *p = text;
  while (*p == ' ')
    p++;
  if (*p == '\0') {
    *count = 0;
    return WH_OK;
  }
  for (;;) {
    while (*p == ' ')
      p++;
    /* A number of seconds with up to three decimals: "5", "0.25". */
    if (!isdigit((unsigned char)*p))
      return wh__fail(WH_EINVAL, "retry schedule: entry %d is not a number of seconds", n + 1);
    int64_t ms = 0;
    int digits = 0;
    while (isdigit((unsigned char)*p)) {
      if (++digits > 9)
        return wh__fail(WH_EINVAL, "retry schedule: entry %d is too large", n + 1);
      ms = ms * 10 + (*p++ - '0');
    }
    ms *= 1000;
    if (*p == '.') {
      p++;
      int scale = 100, frac = 0;
      if (!isdigit((unsigned char)*p))
        return wh__fail(WH_EINVAL, "retry schedule: entry %d has no digits after '.'", n + 1);
      while (isdigit((unsigned char)*p)) {
        if (++frac > 3)
          return wh__fail(WH_EINVAL, "retry schedule: entry %d has more than 3 decimals", n + 1);
        ms += (*p++ - '0') * scale;
        scale /= 10;
      }
    }
    if (ms > MAX_DELAY_MS)
      return wh__fail(WH_EINVAL, "retry schedule: entry %d is longer than a year", n + 1);
    if (n >= max)
      return wh__fail(WH_EINVAL, "retry schedule: more than %d entries", max);
    delays_ms[n++] = ms;
    while (*p == ' ')
      p++;
    if (*p == '\0')
      break;
    if (*p != ',')
      return wh__fail(WH_EINVAL, "retry schedule: expected ',' after entry %d", n);
    p++;
  }
  *count = n;
  return WH_OK;
}

int64_t wh__jitter(int64_t delay_ms, int pct, double r01)
{
  /* Uniform in [delay*(1-pct), delay*(1+pct)]. */
  double f = 1.0 + (double)pct / 100.0 * (2.0 * r01 - 1.0);
  double v = (double)delay_ms * f;
  return v < 0 ? 0 : (int64_t)(v + 0.5);
}

static int month_index(const char *m)
{
  static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  for (int i = 0; i < 12; i++)
    if (strncmp(m, names + 3 * i, 3) == 0)
      return i;
  return -1;
}

/* IMF-fixdate only ("Sun, 06 Nov 1994 08:49:37 GMT"), the form RFC 9110 says to send. */
static int parse_http_date(const char *s, int64_t *unix_ms)
{
  char wd[4], mon[4], tz[4];
  int day, year, hh, mm, ss, consumed = 0;
  if (sscanf(s, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3[A-Z]%n", wd, &day, mon, &year, &hh, &mm, &ss,
             tz, &consumed) != 8)
    return 0;
  if (strcmp(tz, "GMT") != 0 || s[consumed] != '\0')
    return 0;
  int m = month_index(mon);
  if (m < 0 || day < 1 || day > 31 || year < 1970 || year > 9999 || hh > 23 || mm > 59 || ss > 60)
    return 0;
  struct tm tm = {.tm_year = year - 1900, .tm_mon = m, .tm_mday = day, .tm_hour = hh, .tm_min = mm,
                  .tm_sec = ss};
  time_t t = timegm(&tm);
  if (t == (time_t)-1)
    return 0;
  *unix_ms = (int64_t)t * 1000;
  return 1;
}

int wh__retry_after_parse(const char *value, int64_t now_ms, int64_t *delay_ms)
{
  if (!value)
    return 0;
  while (*value == ' ' || *value == '\t')
    value++;
  size_t n = strlen(value);
  while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t' || value[n - 1] == '\r' || value[n - 1] == '\n'))
    n--;
  if (n == 0 || n > 64)
    return 0;
  char buf[65];
  memcpy(buf, value, n);
  buf[n] = '\0';
  if (strspn(buf, "0123456789") == n) {
    if (n > 9)
      *delay_ms = MAX_DELAY_MS; /* absurdly long: the clamp decides */
    else
      *delay_ms = strtoll(buf, NULL, 10) * 1000;
    return 1;
  }
  int64_t at;
  if (!parse_http_date(buf, &at))
    return 0;
  *delay_ms = at > now_ms ? at - now_ms : 0;
  return 1;
}

int64_t wh__next_delay(const wh__retry_input *in)
{
  int64_t delay = wh__jitter(in->scheduled_ms, in->jitter_pct, in->r01);
  if (in->throttled && in->has_retry_after) {
    /* Honour the receiver, within 1x..2x of what we had planned. */
    int64_t lo = delay, hi = delay * 2;
    delay = in->retry_after_ms < lo ? lo : in->retry_after_ms > hi ? hi : in->retry_after_ms;
  }
  if ((in->timed_out || in->http_status == 429) && delay < in->throttle_min_ms)
    delay = in->throttle_min_ms;
  return delay;
}
