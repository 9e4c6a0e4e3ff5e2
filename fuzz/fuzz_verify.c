/*
 * wh_verify and wh_sign on outside input.
 *
 * Input: five fields separated by '\n': secret, msg_id, timestamp, signature
 * header, body. The body is the rest of the input (newlines and NUL bytes
 * included); a missing field is "" (a missing body: NULL, length 0).
 *
 * Properties:
 *  - verify returns one of WH_OK, WH_EINVAL, WH_ETIMESTAMP, WH_ESIGNATURE;
 *    with now at the ends of int64_t it returns WH_ETIMESTAMP (or WH_EINVAL);
 *  - sign and verify agree on what is malformed (WH_EINVAL);
 *  - verify succeeds only when the header holds, as one space-separated entry,
 *    exactly the signature that wh_sign computes for the same input;
 *  - what wh_sign produces verifies with now = its timestamp, also among other
 *    entries, at the edge of the 300 s tolerance, and no longer one second
 *    beyond it or with one character changed.
 */
#include "fuzz_common.h"

#include "webhook/webhook.h"

#include <inttypes.h>

#define NOW 1614265330 /* the timestamp of the Standard Webhooks reference vector */
#define TOLERANCE 300
#define SIG_LEN 47     /* "v1," + base64 of 32 bytes */
#define TS_MAX 999999999999999999LL /* 18 digits: what verify reads as a timestamp */

/* A decimal int64, optional '-', 1..19 digits, nothing else. */
static int parse_i64(const char *s, int64_t *out)
{
  int neg = *s == '-';
  const char *p = s + neg;
  size_t n = strlen(p);
  if (n == 0 || n > 19 || strspn(p, "0123456789") != n)
    return 0;
  uint64_t v = 0;
  for (; *p; p++) {
    if (v > (UINT64_MAX - 9) / 10)
      return 0;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  if (v > (uint64_t)INT64_MAX + (uint64_t)neg)
    return 0;
  *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
  return 1;
}

/* Does header hold sig as one of its space-separated entries? */
static int has_entry(const char *header, const char *sig)
{
  size_t sl = strlen(sig);
  const char *p = header;
  while (*p) {
    while (*p == ' ')
      p++;
    const char *end = strchr(p, ' ');
    if (!end)
      end = p + strlen(p);
    if ((size_t)(end - p) == sl && memcmp(p, sig, sl) == 0)
      return 1;
    p = end;
  }
  return 0;
}

static void check_roundtrip(const char *secret, const char *msg_id, int64_t ts, const char *header,
                            const void *body, size_t body_len, const char *sig)
{
  char tsbuf[32];
  snprintf(tsbuf, sizeof tsbuf, "%" PRId64, ts);
  FUZZ_ASSERT(wh_verify(secret, msg_id, tsbuf, sig, body, body_len, ts) == WH_OK);

  /* Among other entries: before, after, other versions, extra spaces. */
  size_t hl = strlen(header);
  char *multi = malloc(hl + 2 * SIG_LEN + 32);
  FUZZ_ASSERT(multi);
  snprintf(multi, hl + 2 * SIG_LEN + 32, "%s  %s v2,%s ", header, sig, sig + 3);
  FUZZ_ASSERT(wh_verify(secret, msg_id, tsbuf, multi, body, body_len, ts) == WH_OK);
  free(multi);

  /* The tolerance is inclusive on both sides (now = 0 means "the clock"). */
  if (ts + TOLERANCE != 0)
    FUZZ_ASSERT(wh_verify(secret, msg_id, tsbuf, sig, body, body_len, ts + TOLERANCE) == WH_OK);
  if (ts - TOLERANCE != 0)
    FUZZ_ASSERT(wh_verify(secret, msg_id, tsbuf, sig, body, body_len, ts - TOLERANCE) == WH_OK);
  if (ts + TOLERANCE + 1 != 0)
    FUZZ_ASSERT(wh_verify(secret, msg_id, tsbuf, sig, body, body_len, ts + TOLERANCE + 1) ==
                WH_ETIMESTAMP);
  if (ts - TOLERANCE - 1 != 0)
    FUZZ_ASSERT(wh_verify(secret, msg_id, tsbuf, sig, body, body_len, ts - TOLERANCE - 1) ==
                WH_ETIMESTAMP);

  /* One base64 character changed: no match. The first character after "v1,"
     carries six bits of the MAC, so any change alters the decoded bytes. */
  char bad[SIG_LEN + 1];
  memcpy(bad, sig, SIG_LEN + 1);
  bad[3] = bad[3] == 'A' ? 'B' : 'A';
  FUZZ_ASSERT(wh_verify(secret, msg_id, tsbuf, bad, body, body_len, ts) == WH_ESIGNATURE);
  /* Truncated, and with a character too many: no match either. */
  bad[3] = sig[3];
  bad[SIG_LEN - 1] = '\0';
  FUZZ_ASSERT(wh_verify(secret, msg_id, tsbuf, bad, body, body_len, ts) == WH_ESIGNATURE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fuzz_fields f;
  fuzz_split(data, size, '\n', 5, &f);
  const char *secret = fuzz_field(&f, 0, "");
  const char *msg_id = fuzz_field(&f, 1, "");
  const char *ts_text = fuzz_field(&f, 2, "");
  const char *header = fuzz_field(&f, 3, "");
  const void *body = f.n > 4 && f.len[4] ? f.s[4] : NULL;
  size_t body_len = f.n > 4 ? f.len[4] : 0;

  int vrc = wh_verify(secret, msg_id, ts_text, header, body, body_len, NOW);
  FUZZ_ASSERT(vrc == WH_OK || vrc == WH_EINVAL || vrc == WH_ETIMESTAMP || vrc == WH_ESIGNATURE);

  /* Any other fixed clock, even the most extreme, is out of tolerance for a
     timestamp of at most 18 digits (known bug "verify-now": the tolerance
     arithmetic overflows near INT64_MIN / INT64_MAX). */
  if (!fuzz_ignored("verify-now")) {
    static const int64_t far[] = {INT64_MIN, INT64_MIN + 1, INT64_MAX - 1, INT64_MAX};
    for (size_t i = 0; i < sizeof far / sizeof far[0]; i++) {
      int r = wh_verify(secret, msg_id, ts_text, header, body, body_len, far[i]);
      FUZZ_ASSERT(r == (vrc == WH_EINVAL ? WH_EINVAL : WH_ETIMESTAMP));
    }
  }

  int64_t ts;
  int ts_ok = parse_i64(ts_text, &ts);
  if (!ts_ok)
    ts = NOW;
  char sig[64];
  int src = wh_sign(secret, msg_id, ts, body, body_len, sig, sizeof sig);
  FUZZ_ASSERT(src == WH_OK || src == WH_EINVAL);
  /* Both reject exactly an empty msg_id or a malformed secret. */
  FUZZ_ASSERT((src == WH_EINVAL) == (vrc == WH_EINVAL));

  if (vrc == WH_OK) {
    /* Accepted: the timestamp was a number within the tolerance... */
    FUZZ_ASSERT(ts_ok && ts >= NOW - TOLERANCE && ts <= NOW + TOLERANCE);
    /* ...and the header really carries the right signature. */
    FUZZ_ASSERT(src == WH_OK && has_entry(header, sig));
  }

  if (src == WH_OK) {
    FUZZ_ASSERT(strlen(sig) == SIG_LEN && memcmp(sig, "v1,", 3) == 0);
    char again[SIG_LEN + 1];
    FUZZ_ASSERT(wh_sign(secret, msg_id, ts, body, body_len, again, sizeof again) == WH_OK);
    FUZZ_ASSERT(strcmp(again, sig) == 0);
    FUZZ_ASSERT(wh_sign(secret, msg_id, ts, body, body_len, again, SIG_LEN) == WH_ERANGE);
    /* now = 0 means the current time, so ts 0 cannot be checked with now = ts;
       verify reads at most 18 digits (see the report on 19-digit timestamps). */
    if (ts != 0 && ts >= -TS_MAX && ts <= TS_MAX)
      check_roundtrip(secret, msg_id, ts, header, body, body_len, sig);
  }

  fuzz_fields_free(&f);
  return 0;
}
