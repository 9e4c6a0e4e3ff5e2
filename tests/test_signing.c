/* Signing and verification: the Standard Webhooks reference vector, rotation
   style multi-signature headers, tolerance, and every malformed input. */
#include <webhook/webhook.h>

#include "support/check.h"

#include <time.h>

#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VEC_TS 1614265330
#define VEC_BODY "{\"test\": 2432232314}"
#define VEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static int verify_vec(const char *secret, const char *ts, const char *header, const char *body, long long now)
{
  return wh_verify(secret, VEC_ID, ts, header, body, body ? strlen(body) : 0, now);
}

static void reference_vector(void)
{
  char sig[128];
  CHECK_OK(wh_sign(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig, sizeof sig));
  CHECK_STR(sig, VEC_SIG);
  /* The whsec_ prefix is optional, as in the reference libraries. */
  CHECK_OK(wh_sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig,
                   sizeof sig));
  CHECK_STR(sig, VEC_SIG);
  CHECK_OK(verify_vec(VEC_SECRET, "1614265330", VEC_SIG, VEC_BODY, VEC_TS));
  /* A buffer one byte short is WH_ERANGE, exact size works. */
  CHECK_ERR(wh_sign(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig, strlen(VEC_SIG)),
            WH_ERANGE, "too small");
  CHECK_OK(wh_sign(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig, strlen(VEC_SIG) + 1));
}

static void multiple_signatures(void)
{
  const char *other = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
  char header[512];
  snprintf(header, sizeof header, "%s %s", other, VEC_SIG);
  CHECK_OK(verify_vec(VEC_SECRET, "1614265330", header, VEC_BODY, VEC_TS));
  snprintf(header, sizeof header, "v2,abc %s v1a,xyz", VEC_SIG);
  CHECK_OK(verify_vec(VEC_SECRET, "1614265330", header, VEC_BODY, VEC_TS));
  /* Several spaces between entries are tolerated. */
  snprintf(header, sizeof header, "  %s   %s ", other, VEC_SIG);
  CHECK_OK(verify_vec(VEC_SECRET, "1614265330", header, VEC_BODY, VEC_TS));
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330", other, VEC_BODY, VEC_TS), WH_ESIGNATURE, "signature");
  /* Only v1 counts, even with the right bytes. */
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330", "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                       VEC_BODY, VEC_TS),
            WH_ESIGNATURE, NULL);
}

static void tampering(void)
{
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330", VEC_SIG, "{\"test\": 2432232315}", VEC_TS), WH_ESIGNATURE,
            NULL);
  CHECK_ERR(wh_verify(VEC_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJel", "1614265330", VEC_SIG, VEC_BODY,
                      strlen(VEC_BODY), VEC_TS),
            WH_ESIGNATURE, NULL);
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265331", VEC_SIG, VEC_BODY, VEC_TS), WH_ESIGNATURE, NULL);
  CHECK_ERR(verify_vec("whsec_AfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "1614265330", VEC_SIG, VEC_BODY, VEC_TS),
            WH_ESIGNATURE, NULL);
}

static void tolerance(void)
{
  CHECK_OK(verify_vec(VEC_SECRET, "1614265330", VEC_SIG, VEC_BODY, VEC_TS + 300));
  CHECK_OK(verify_vec(VEC_SECRET, "1614265330", VEC_SIG, VEC_BODY, VEC_TS - 300));
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330", VEC_SIG, VEC_BODY, VEC_TS + 301), WH_ETIMESTAMP, "timestamp");
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330", VEC_SIG, VEC_BODY, VEC_TS - 301), WH_ETIMESTAMP, "timestamp");
  /* now = 0 is the current time: the 2021 vector is far too old. */
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330", VEC_SIG, VEC_BODY, 0), WH_ETIMESTAMP, NULL);
  /* Extreme clocks from the caller: no overflow, just out of tolerance. */
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330", VEC_SIG, VEC_BODY, INT64_MIN), WH_ETIMESTAMP, NULL);
  CHECK_ERR(verify_vec(VEC_SECRET, "-1614265330", VEC_SIG, VEC_BODY, INT64_MAX), WH_ETIMESTAMP, NULL);
  /* And a fresh signature verifies against the real clock. */
  char sig[128], ts[32];
  long long now = (long long)time(NULL);
  snprintf(ts, sizeof ts, "%lld", now);
  CHECK_OK(wh_sign(VEC_SECRET, VEC_ID, now, VEC_BODY, strlen(VEC_BODY), sig, sizeof sig));
  CHECK_OK(verify_vec(VEC_SECRET, ts, sig, VEC_BODY, 0));
}

static void malformed(void)
{
  /* Secrets. */
  CHECK_ERR(verify_vec("whsec_", "1614265330", VEC_SIG, VEC_BODY, VEC_TS), WH_EINVAL, "secret");
  CHECK_ERR(verify_vec("", "1614265330", VEC_SIG, VEC_BODY, VEC_TS), WH_EINVAL, "secret");
  CHECK_ERR(verify_vec("whsec_!!notbase64!!", "1614265330", VEC_SIG, VEC_BODY, VEC_TS), WH_EINVAL, "base64");
  CHECK_ERR(verify_vec(NULL, "1614265330", VEC_SIG, VEC_BODY, VEC_TS), WH_EINVAL, "secret");
  char sig[128];
  CHECK_ERR(wh_sign("whsec_", VEC_ID, VEC_TS, "x", 1, sig, sizeof sig), WH_EINVAL, "secret");
  CHECK_ERR(wh_sign("whsec_%%%", VEC_ID, VEC_TS, "x", 1, sig, sizeof sig), WH_EINVAL, "base64");
  CHECK_ERR(wh_sign(VEC_SECRET, "", VEC_TS, "x", 1, sig, sizeof sig), WH_EINVAL, "msg_id");
  CHECK_ERR(wh_sign(VEC_SECRET, NULL, VEC_TS, "x", 1, sig, sizeof sig), WH_EINVAL, "msg_id");
  CHECK_ERR(wh_sign(VEC_SECRET, VEC_ID, VEC_TS, NULL, 5, sig, sizeof sig), WH_EINVAL, "body");
  CHECK_ERR(wh_sign(VEC_SECRET, VEC_ID, VEC_TS, "x", 1, NULL, 100), WH_EINVAL, "signature");
  /* Signature headers. */
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330", "", VEC_BODY, VEC_TS), WH_ESIGNATURE, NULL);
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330", "v1,", VEC_BODY, VEC_TS), WH_ESIGNATURE, NULL);
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330", "v1", VEC_BODY, VEC_TS), WH_ESIGNATURE, NULL);
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE", VEC_BODY,
                       VEC_TS),
            WH_ESIGNATURE, NULL);
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330", "v1,g0hM9SsE", VEC_BODY, VEC_TS), WH_ESIGNATURE, NULL);
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330", "v1,@@@@", VEC_BODY, VEC_TS), WH_ESIGNATURE, NULL);
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330", NULL, VEC_BODY, VEC_TS), WH_EINVAL, "signature");
  /* Timestamps. */
  CHECK_ERR(verify_vec(VEC_SECRET, "abc", VEC_SIG, VEC_BODY, VEC_TS), WH_ETIMESTAMP, "timestamp");
  CHECK_ERR(verify_vec(VEC_SECRET, "", VEC_SIG, VEC_BODY, VEC_TS), WH_ETIMESTAMP, "timestamp");
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330x", VEC_SIG, VEC_BODY, VEC_TS), WH_ETIMESTAMP, NULL);
  CHECK_ERR(verify_vec(VEC_SECRET, " 1614265330", VEC_SIG, VEC_BODY, VEC_TS), WH_ETIMESTAMP, NULL);
  CHECK_ERR(verify_vec(VEC_SECRET, "1614265330.5", VEC_SIG, VEC_BODY, VEC_TS), WH_ETIMESTAMP, NULL);
  CHECK_ERR(verify_vec(VEC_SECRET, "99999999999999999999999", VEC_SIG, VEC_BODY, VEC_TS), WH_ETIMESTAMP, NULL);
  CHECK_ERR(verify_vec(VEC_SECRET, NULL, VEC_SIG, VEC_BODY, VEC_TS), WH_EINVAL, "timestamp");
  CHECK_ERR(wh_verify(VEC_SECRET, "", "1614265330", VEC_SIG, VEC_BODY, strlen(VEC_BODY), VEC_TS), WH_EINVAL,
            "msg_id");
}

static void short_keys_and_generation(void)
{
  /* A 6-byte key ("secret" base64) is accepted on verify, and sign agrees. */
  const char *short_secret = "whsec_c2VjcmV0";
  char sig[128];
  CHECK_OK(wh_sign(short_secret, "msg_1", 1700000000, "{}", 2, sig, sizeof sig));
  CHECK_OK(wh_verify(short_secret, "msg_1", "1700000000", sig, "{}", 2, 1700000000));
  /* An empty body is a valid body. */
  CHECK_OK(wh_sign(VEC_SECRET, "msg_1", 1700000000, NULL, 0, sig, sizeof sig));
  CHECK_OK(wh_verify(VEC_SECRET, "msg_1", "1700000000", sig, "", 0, 1700000000));

  char a[128], b[128];
  CHECK_OK(wh_secret_generate(a, sizeof a));
  CHECK_OK(wh_secret_generate(b, sizeof b));
  CHECK(strncmp(a, "whsec_", 6) == 0);
  CHECK(strlen(a) >= 6 + 32); /* at least 24 bytes of key */
  CHECK(strcmp(a, b) != 0);
  CHECK_ERR(wh_secret_generate(a, 10), WH_ERANGE, NULL);
  CHECK_ERR(wh_secret_generate(NULL, 100), WH_EINVAL, NULL);
  /* A generated secret signs and verifies. */
  CHECK_OK(wh_sign(b, "msg_2", 1700000000, "hello", 5, sig, sizeof sig));
  CHECK_OK(wh_verify(b, "msg_2", "1700000000", sig, "hello", 5, 1700000000));
  CHECK_ERR(wh_verify(a, "msg_2", "1700000000", sig, "hello", 5, 1700000000), WH_ESIGNATURE, NULL);
}

int main(void)
{
  reference_vector();
  multiple_signatures();
  tampering();
  tolerance();
  malformed();
  short_keys_and_generation();
  return check_done("signing");
}
