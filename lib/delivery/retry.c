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

#define MAX_DELAY_MS WH__MAX_DELAY_MS

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

/* ---- HTTP-date (RFC 9110 section 5.6.7), all three forms, strictly -------------- */

typedef struct {
  const char *p;
} cur;

static int lit(cur *c, const char *s)
{
  size_t n = strlen(s);
  if (strncmp(c->p, s, n) != 0)
    return 0;
  c->p += n;
  return 1;
}

/* Exactly n digits. */
static int num(cur *c, int n, int *out)
{
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (c->p[i] < '0' || c->p[i] > '9')
      return 0;
    v = v * 10 + (c->p[i] - '0');
  }
  c->p += n;
  *out = v;
  return 1;
}

static int one_of(cur *c, const char *const *names, int count, int *out)
{
  for (int i = 0; i < count; i++)
    if (lit(c, names[i])) {
      *out = i;
      return 1;
    }
  return 0;
}

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const long_days[] = {"Monday", "Tuesday", "Wednesday", "Thursday",
                                        "Friday", "Saturday", "Sunday"};

static int hms(cur *c, struct tm *tm)
{
  return num(c, 2, &tm->tm_hour) && lit(c, ":") && num(c, 2, &tm->tm_min) && lit(c, ":") && num(c, 2, &tm->tm_sec);
}

static int parse_http_date(const char *s, int64_t now_ms, int64_t *unix_ms)
{
  struct tm tm = {0};
  int d, year = 0;
  cur c = {s};
  if (one_of(&c, long_days, 7, &d) && lit(&c, ", ")) {
    /* rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT */
    if (!(num(&c, 2, &tm.tm_mday) && lit(&c, "-") && one_of(&c, months, 12, &tm.tm_mon) && lit(&c, "-") &&
          num(&c, 2, &year) && lit(&c, " ") && hms(&c, &tm) && lit(&c, " GMT")))
      return 0;
    /* Two-digit years: the most recent past year with those digits unless
       that is more than 50 years ago (RFC 9110). */
    time_t nows = (time_t)(now_ms / 1000);
    struct tm now_tm;
    gmtime_r(&nows, &now_tm);
    int this_year = now_tm.tm_year + 1900;
    year += this_year - this_year % 100;
    if (year > this_year + 50)
      year -= 100;
  } else {
    c.p = s;
    if (!one_of(&c, days, 7, &d))
      return 0;
    if (lit(&c, ", ")) {
      /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
      if (!(num(&c, 2, &tm.tm_mday) && lit(&c, " ") && one_of(&c, months, 12, &tm.tm_mon) && lit(&c, " ") &&
            num(&c, 4, &year) && lit(&c, " ") && hms(&c, &tm) && lit(&c, " GMT")))
        return 0;
    } else if (lit(&c, " ")) {
      /* asctime-date: Sun Nov  6 08:49:37 1994 */
      if (!(one_of(&c, months, 12, &tm.tm_mon) && lit(&c, " ")))
        return 0;
      if (lit(&c, " ")) {
        if (!num(&c, 1, &tm.tm_mday))
          return 0;
      } else if (!num(&c, 2, &tm.tm_mday)) {
        return 0;
      }
      if (!(lit(&c, " ") && hms(&c, &tm) && lit(&c, " ") && num(&c, 4, &year)))
        return 0;
    } else {
      return 0;
    }
  }
  if (*c.p != '\0' || tm.tm_mday < 1 || tm.tm_mday > 31 || year < 1970 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60)
    return 0;
  tm.tm_year = year - 1900;
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
    /* Absurdly long values are capped: the clamp to the schedule decides anyway. */
    int64_t secs = n > 9 ? MAX_DELAY_MS / 1000 : strtoll(buf, NULL, 10);
    *delay_ms = secs * 1000 > MAX_DELAY_MS ? MAX_DELAY_MS : secs * 1000;
    return 1;
  }
  int64_t at;
  if (!parse_http_date(buf, now_ms, &at))
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
