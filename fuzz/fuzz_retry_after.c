/*
 * wh__retry_after_parse on outside input (a receiver's Retry-After header).
 *
 * Input: the header value; the parser sees it up to its first NUL byte.
 *
 * Properties:
 *  - the result is 0 or 1, and an accepted value gives a delay >= 0;
 *  - delta-seconds (digits only, surrounding blanks ignored) are accepted, as
 *    seconds * 1000 capped at WH__MAX_DELAY_MS, never less for more digits;
 *  - an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110 5.6.7) of a
 *    year from 1970 on is accepted, with the delay max(0, date - now)
 *    computed here by independent code;
 *  - anything else accepted must have the exact shape of one of the three
 *    HTTP-date forms: IMF-fixdate, rfc850-date or asctime-date.
 */
#include "fuzz_common.h"

#include "delivery/retry.h"

#define NOW_MS 1700000000000LL /* 2023-11-14T22:13:20Z */

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar; d may
   overflow the month (Feb 31 = Mar 3), as with timegm. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* Shape only, independent of the parser: "Sunday, 06-Nov-94 08:49:37 GMT" or
   "Sun Nov  6 08:49:37 1994". */
static int shape(const char *s, size_t n, const char *pattern)
{
  /* pattern: 'D' digit, ' ' space, 'A' letter, other chars literal. */
  if (n != strlen(pattern))
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i], p = pattern[i];
    if (p == 'D' ? !(c >= '0' && c <= '9') : p == 'A' ? !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) : c != p)
      return 0;
  }
  return 1;
}

static int obsolete_shape(const char *s, size_t n)
{
  static const char *const long_days[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                                          "Sunday"};
  for (int i = 0; i < 7; i++) {
    size_t l = strlen(long_days[i]);
    if (n > l && strncmp(s, long_days[i], l) == 0 && shape(s + l, n - l, ", DD-AAA-DD DD:DD:DD GMT"))
      return 1;
  }
  return shape(s, n, "AAA AAA DD DD:DD:DD DDDD") || shape(s, n, "AAA AAA  D DD:DD:DD DDDD");
}

static int num(const char *s, int n)
{
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* Exactly "Www, DD Mon YYYY HH:MM:SS GMT" with real day and month names and
   in-range fields; *ms and *year receive the time and its year. */
static int strict_imf_fixdate(const char *s, size_t n, int64_t *ms, int *year_out)
{
  static const char days[] = "MonTueWedThuFriSatSun";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  if (n != 29)
    return 0;
  int wd = -1, mon = -1;
  for (int i = 0; i < 7; i++)
    if (memcmp(s, days + 3 * i, 3) == 0)
      wd = i;
  for (int i = 0; i < 12; i++)
    if (memcmp(s + 8, months + 3 * i, 3) == 0)
      mon = i + 1;
  if (wd < 0 || mon < 0 || memcmp(s + 3, ", ", 2) != 0 || s[7] != ' ' || s[11] != ' ' ||
      s[16] != ' ' || s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
    return 0;
  int day = num(s + 5, 2), year = num(s + 12, 4), hh = num(s + 17, 2), mm = num(s + 20, 2),
      ss = num(s + 23, 2);
  if (day < 1 || day > 31 || year < 0 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 ||
      ss > 60)
    return 0;
  *year_out = year;
  *ms = ((days_from_civil(year, mon, day) * 24 + hh) * 60 + mm) * 60000LL + ss * 1000LL;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = fuzz_strndup(data, size);

  int64_t delay = -12345;
  int rc = wh__retry_after_parse(text, NOW_MS, &delay);
  FUZZ_ASSERT(rc == 0 || rc == 1);
  if (rc == 1)
    FUZZ_ASSERT(delay >= 0);

  /* The value without the blanks around it, as the parser trims it. */
  const char *v = text + strspn(text, " \t");
  size_t n = strlen(v);
  while (n > 0 && strchr(" \t\r\n", v[n - 1]))
    n--;

  if (n > 0 && n <= 64 && strspn(v, "0123456789") >= n) {
    FUZZ_ASSERT(rc == 1);
    if (n <= 9) {
      int64_t want = (int64_t)strtoll(v, NULL, 10) * 1000;
      FUZZ_ASSERT(delay == (want > WH__MAX_DELAY_MS ? WH__MAX_DELAY_MS : want));
    } else {
      FUZZ_ASSERT(delay == WH__MAX_DELAY_MS);
    }
  } else {
    int64_t at;
    int year;
    int strict = strict_imf_fixdate(v, n, &at, &year);
    if (strict && year >= 1970) { /* the parser ignores earlier years */
      FUZZ_ASSERT(rc == 1);
      FUZZ_ASSERT(delay == (at > NOW_MS ? at - NOW_MS : 0));
    }
    if (rc == 1 && !fuzz_ignored("http-date"))
      FUZZ_ASSERT(strict || obsolete_shape(v, n));
  }

  free(text);
  return 0;
}
