/*
 * wh_receiver_check on outside headers and bodies, for every scheme.
 *
 * Input: fields separated by '\n': a control field, up to five header lines
 * ("Name: value"), and the body (the rest of the input). Control byte 0 picks
 * the scheme (mod 4); bit 0 of byte 1 asks the target to sign the request
 * itself, correctly, with reference code written here from the senders'
 * documentation (OpenSSL's one-shot HMAC), adding the scheme's headers after
 * the fuzzed ones, which then act as noise and conflicts.
 *
 * Properties, on a fresh receiver holding a secret of each scheme:
 *  - the result is one of WH_OK, WH_EINVAL, WH_ETIMESTAMP, WH_ESIGNATURE;
 *  - WH_OK only when the signature header of the scheme carries, as one of its
 *    entries, the signature the reference code computes; the id is 1..255
 *    bytes of printable ASCII; checking again gives WH_EEXIST and the same id;
 *  - a request the target signed is never WH_ESIGNATURE nor WH_ETIMESTAMP (at
 *    most WH_EINVAL, when a fuzzed header conflicts with the added ones), and
 *    when accepted its id is the one the scheme defines.
 */
#include "fuzz_common.h"

#include "incoming/incoming.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define NOW 1700000000
#define STD_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define GH_SECRET "It's a Secret to Everybody"
#define STRIPE_SECRET "whsec_fuzz_stripe"
#define SLACK_SECRET "8f742231b10e8888abcd99yyyzzz85a5"

/* HMAC-SHA256(key, a || b || c || d): hex (out 65 bytes) or base64 (out 45). */
static void ref_hmac(const void *key, size_t kl, const char *a, const char *b, const char *c, const void *d,
                     size_t dl, int b64, char *out)
{
  size_t al = strlen(a), bl = strlen(b), cl = strlen(c);
  unsigned char *msg = malloc(al + bl + cl + dl + 1), mac[32];
  FUZZ_ASSERT(msg);
  memcpy(msg, a, al);
  memcpy(msg + al, b, bl);
  memcpy(msg + al + bl, c, cl);
  if (dl)
    memcpy(msg + al + bl + cl, d, dl);
  unsigned int ml = 0;
  HMAC(EVP_sha256(), key, (int)kl, msg, al + bl + cl + dl, mac, &ml);
  free(msg);
  if (b64)
    EVP_EncodeBlock((unsigned char *)out, mac, 32);
  else
    for (int i = 0; i < 32; i++)
      snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

static const char *header(const char *const *names, const char *const *values, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (fuzz_eq_ci(names[i], name))
      return values[i];
  return NULL;
}

/* Does the header hold want, as a whole entry (separated by sep, or alone)? */
static int holds(const char *h, const char *want, char sep)
{
  size_t wl = strlen(want);
  for (const char *p = h; p && *p;) {
    const char *end = sep ? strchr(p, sep) : NULL;
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == wl && memcmp(p, want, wl) == 0)
      return 1;
    p = end ? end + 1 : NULL;
  }
  return 0;
}

/* The signature that scheme s expects for these headers, the reference way;
   "" when the headers it signs are missing or unreadable. */
static void expected(int s, const char *const *names, const char *const *values, size_t n, const void *body,
                     size_t len, char *out)
{
  out[0] = '\0';
  if (s == 0) {
    const char *id = header(names, values, n, "webhook-id"), *ts = header(names, values, n, "webhook-timestamp");
    if (!id)
      id = header(names, values, n, "svix-id");
    if (!ts)
      ts = header(names, values, n, "svix-timestamp");
    if (!id || !ts)
      return;
    long long t = atoll(ts);
    char tsn[32];
    snprintf(tsn, sizeof tsn, "%lld", t);
    unsigned char key[64];
    int kl = EVP_DecodeBlock(key, (const unsigned char *)STD_SECRET + 6, (int)strlen(STD_SECRET) - 6);
    char b64[48];
    size_t il = strlen(id);
    char *pre = malloc(il + 2);
    FUZZ_ASSERT(pre);
    snprintf(pre, il + 2, "%s.", id);
    ref_hmac(key, (size_t)kl, pre, tsn, ".", body, len, 1, b64);
    free(pre);
    snprintf(out, 128, "v1,%s", b64);
  } else if (s == 1) {
    char hex[65];
    ref_hmac(GH_SECRET, strlen(GH_SECRET), "", "", "", body, len, 0, hex);
    snprintf(out, 128, "sha256=%s", hex);
  } else if (s == 2) {
    const char *h = header(names, values, n, "stripe-signature"), *t = NULL;
    for (const char *p = h; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
      if (p[0] == 't' && p[1] == '=' && !t)
        t = p;
    if (!t)
      return;
    char tsn[32], hex[65];
    snprintf(tsn, sizeof tsn, "%lld", atoll(t + 2));
    ref_hmac(STRIPE_SECRET, strlen(STRIPE_SECRET), tsn, ".", "", body, len, 0, hex);
    snprintf(out, 128, "v1=%s", hex);
  } else {
    const char *ts = header(names, values, n, "x-slack-request-timestamp");
    if (!ts || strlen(ts) > 32)
      return;
    char hex[65];
    ref_hmac(SLACK_SECRET, strlen(SLACK_SECRET), "v0:", ts, ":", body, len, 0, hex);
    snprintf(out, 128, "v0=%s", hex);
  }
}

static const char *const sig_names[] = {"webhook-signature", "X-Hub-Signature-256", "Stripe-Signature",
                                        "X-Slack-Signature"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fuzz_fields f;
  fuzz_split(data, size, '\n', 7, &f);
  const char *control = fuzz_field(&f, 0, "");
  int s = (unsigned char)control[0] % 4;
  int sign = control[0] && (control[1] & 1);
  const void *body = f.n > 6 ? f.s[6] : NULL;
  size_t len = f.n > 6 ? f.len[6] : 0;

  const char *names[16], *values[16];
  char *owned[16] = {0};
  size_t n = 0, no = 0;
  for (int k = 1; k <= 5 && k < f.n; k++) {
    char *line = f.s[k];
    char *colon = strchr(line, ':');
    if (colon) {
      *colon = '\0';
      values[n] = colon[1] == ' ' ? colon + 2 : colon + 1;
    } else {
      values[n] = "";
    }
    names[n++] = line;
  }
  char want_id[WH__IN_ID_MAX] = "";
  char buf[160], ts[32]; /* headers added below point into these */
  if (sign) {
    /* The scheme's headers, signed by the reference code, after the fuzzed ones. */
    snprintf(ts, sizeof ts, "%d", NOW);
    if (s == 0) {
      names[n] = "webhook-id", values[n++] = "msg_fuzz";
      names[n] = "webhook-timestamp", values[n++] = ts;
      expected(0, names + n - 2, values + n - 2, 2, body, len, buf);
      snprintf(want_id, sizeof want_id, "msg_fuzz");
    } else if (s == 1) {
      expected(1, names, values, 0, body, len, buf);
      names[n] = "X-GitHub-Delivery", values[n++] = "fuzz-delivery";
      snprintf(want_id, sizeof want_id, "fuzz-delivery");
    } else if (s == 2) {
      char hex[65];
      ref_hmac(STRIPE_SECRET, strlen(STRIPE_SECRET), ts, ".", "", body, len, 0, hex);
      snprintf(buf, sizeof buf, "t=%s,v1=%s", ts, hex);
    } else {
      names[n] = "X-Slack-Request-Timestamp", values[n++] = ts;
      expected(3, names + n - 1, values + n - 1, 1, body, len, buf);
      snprintf(want_id, sizeof want_id, "%s.%.32s", ts, buf + 3);
    }
    owned[no] = fuzz_strndup(buf, strlen(buf));
    names[n] = sig_names[s], values[n++] = owned[no++];
  }

  wh_receiver *rc = NULL;
  FUZZ_ASSERT(wh_receiver_new(&rc, "memory:") == WH_OK);
  FUZZ_ASSERT(wh_receiver_add_secret(rc, "standard", STD_SECRET) == WH_OK);
  FUZZ_ASSERT(wh_receiver_add_secret(rc, "github", GH_SECRET) == WH_OK);
  FUZZ_ASSERT(wh_receiver_add_secret(rc, "stripe", STRIPE_SECRET) == WH_OK);
  FUZZ_ASSERT(wh_receiver_add_secret(rc, "slack", SLACK_SECRET) == WH_OK);

  char id[WH__IN_ID_MAX];
  int r = wh__receiver_check_at(rc, names, values, n, body, len, id, sizeof id, NOW);
  FUZZ_ASSERT(r == WH_OK || r == WH_EINVAL || r == WH_ETIMESTAMP || r == WH_ESIGNATURE);
  if (sign)
    FUZZ_ASSERT(r == WH_OK || r == WH_EINVAL);
  if (r == WH_OK) {
    /* Which scheme accepted it: the one whose signature header holds the reference signature. */
    int found = 0;
    for (int k = 0; k < 4; k++) {
      const char *h = header(names, values, n, sig_names[k]);
      if (!h && k == 0)
        h = header(names, values, n, "svix-signature");
      char want[160];
      expected(k, names, values, n, body, len, want);
      if (h && want[0] && holds(h, want, k == 0 ? ' ' : k == 2 ? ',' : 0))
        found = 1;
    }
    FUZZ_ASSERT(found);
    size_t il = strlen(id);
    FUZZ_ASSERT(il > 0 && il < WH__IN_ID_MAX);
    for (size_t i = 0; i < il; i++)
      FUZZ_ASSERT(id[i] > 0x20 && id[i] < 0x7f);
    if (sign && want_id[0])
      FUZZ_ASSERT(strcmp(id, want_id) == 0);
    char again[WH__IN_ID_MAX];
    FUZZ_ASSERT(wh__receiver_check_at(rc, names, values, n, body, len, again, sizeof again, NOW) == WH_EEXIST);
    FUZZ_ASSERT(strcmp(again, id) == 0);
  }
  wh_receiver_free(rc);
  for (size_t i = 0; i < no; i++)
    free(owned[i]);
  fuzz_fields_free(&f);
  return 0;
}
