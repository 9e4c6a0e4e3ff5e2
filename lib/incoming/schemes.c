/*
 * The signature schemes of incoming webhooks: which headers carry the id, the
 * timestamp and the signature, what exactly is signed, and what identifies a
 * request for deduplication.
 *
 *   standard  webhook-id, webhook-timestamp, webhook-signature (or svix-*):
 *             "v1," + base64 HMAC(key, id "." ts "." body), space separated;
 *             key = the base64 after "whsec_".
 *   github    X-Hub-Signature-256: "sha256=" + hex HMAC(secret, body);
 *             id = X-GitHub-Delivery; no timestamp.
 *   stripe    Stripe-Signature: "t=" ts, then "v1=" + hex HMAC(secret, ts "." body),
 *             one v1 per secret Stripe signs with, comma separated;
 *             id = the event id of the body ("id":"evt_..."), see stripe_id().
 *   slack     X-Slack-Signature: "v0=" + hex HMAC(secret, "v0:" ts ":" body),
 *             X-Slack-Request-Timestamp; id derived from ts and signature.
 *
 * Every comparison of a signature is constant-time and every entry of a header
 * is compared (the time taken does not tell which entry or secret matched).
 * The work is bounded by the header limits of wh__in_collect: at most
 * WH__IN_MAX_SECRETS HMACs over the body, and one comparison per entry.
 */
#include "incoming/incoming.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAW_SECRET_MAX 1024
#define HEX_LEN 64 /* a SHA-256 HMAC in hex */

enum { ID_TEXT, ANY_TEXT }; /* an id: no spaces; other values: spaces allowed */

static const struct {
  const char *name; /* as the senders write it; matched case-insensitively */
  size_t max;       /* longest value accepted */
  int kind;
} known[WH__H_COUNT] = {
  [WH__H_WEBHOOK_ID] = {"webhook-id", WH__IN_ID_MAX - 1, ID_TEXT},
  [WH__H_WEBHOOK_TS] = {"webhook-timestamp", 32, ANY_TEXT},
  [WH__H_WEBHOOK_SIG] = {"webhook-signature", 4096, ANY_TEXT},
  [WH__H_SVIX_ID] = {"svix-id", WH__IN_ID_MAX - 1, ID_TEXT},
  [WH__H_SVIX_TS] = {"svix-timestamp", 32, ANY_TEXT},
  [WH__H_SVIX_SIG] = {"svix-signature", 4096, ANY_TEXT},
  [WH__H_GITHUB_SIG] = {"X-Hub-Signature-256", 128, ANY_TEXT},
  [WH__H_GITHUB_DELIVERY] = {"X-GitHub-Delivery", WH__IN_ID_MAX - 1, ID_TEXT},
  [WH__H_STRIPE_SIG] = {"Stripe-Signature", 4096, ANY_TEXT},
  [WH__H_SLACK_SIG] = {"X-Slack-Signature", 128, ANY_TEXT},
  [WH__H_SLACK_TS] = {"X-Slack-Request-Timestamp", 32, ANY_TEXT},
};

static const char *const scheme_names[WH__IN_NSCHEMES] = {"standard", "github", "stripe", "slack"};

/* ---- collecting the headers ------------------------------------------------------ */

/* Is name equal to want, ignoring ASCII case? Reads at most strlen(want) + 1
   bytes of name, however long it is. */
static int name_is(const char *name, const char *want)
{
  for (;; name++, want++) {
    unsigned char a = (unsigned char)*name, b = (unsigned char)*want;
    if (a >= 'A' && a <= 'Z')
      a += 32;
    if (b >= 'A' && b <= 'Z')
      b += 32;
    if (a != b)
      return 0;
    if (!a)
      return 1;
  }
}

static int value_ok(int k, const char *v)
{
  size_t n = strnlen(v, known[k].max + 1);
  if (n > known[k].max)
    return wh__fail(WH_EINVAL, "%s: longer than %zu bytes", known[k].name, known[k].max);
  if (n == 0 && known[k].kind == ID_TEXT)
    return wh__fail(WH_EINVAL, "%s: empty", known[k].name);
  unsigned char lo = known[k].kind == ID_TEXT ? 0x21 : 0x20;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c < lo || c > 0x7e)
      return wh__fail(WH_EINVAL, "%s: byte 0x%02x at offset %zu is not %s", known[k].name, c, i,
                      lo == 0x21 ? "printable ASCII without spaces" : "printable ASCII");
  }
  return WH_OK;
}

int wh__in_collect(const char *const *names, const char *const *values, size_t n, wh__in_headers *out)
{
  memset(out, 0, sizeof *out);
  if (n > WH__IN_MAX_HEADERS)
    return wh__fail(WH_EINVAL, "headers: %zu of them, more than %d", n, WH__IN_MAX_HEADERS);
  if (n && (!names || !values))
    return wh__fail(WH_EINVAL, "headers: NULL arrays for %zu headers", n);
  for (size_t i = 0; i < n; i++) {
    if (!names[i] || !values[i])
      return wh__fail(WH_EINVAL, "header %zu: NULL name or value", i);
    for (int k = 0; k < WH__H_COUNT; k++) {
      if (!name_is(names[i], known[k].name))
        continue;
      int rc = value_ok(k, values[i]);
      if (rc)
        return rc;
      /* Two different values: which one did the sender sign? Refuse rather than pick. */
      if (out->v[k] && strcmp(out->v[k], values[i]) != 0)
        return wh__fail(WH_EINVAL, "%s: sent twice, with different values", known[k].name);
      out->v[k] = values[i];
      break;
    }
  }
  return WH_OK;
}

/* ---- schemes and secrets ------------------------------------------------------------ */

int wh__in_scheme_from_name(const char *name)
{
  for (int s = 0; name && s < WH__IN_NSCHEMES; s++)
    if (strcmp(name, scheme_names[s]) == 0)
      return s;
  wh__fail(WH_EINVAL, "scheme: \"%.32s\" is not one of \"standard\", \"github\", \"stripe\", \"slack\"",
           name ? name : "(null)");
  return -1;
}

const char *wh__in_scheme_name(int scheme) { return scheme_names[scheme]; }

int wh__in_scheme_signed(const wh__in_headers *h, int scheme)
{
  switch (scheme) {
  case WH__IN_STANDARD:
    return h->v[WH__H_WEBHOOK_SIG] || h->v[WH__H_SVIX_SIG];
  case WH__IN_GITHUB:
    return h->v[WH__H_GITHUB_SIG] != NULL;
  case WH__IN_STRIPE:
    return h->v[WH__H_STRIPE_SIG] != NULL;
  default:
    return h->v[WH__H_SLACK_SIG] != NULL;
  }
}

const char *wh__in_scheme_sig_header(int scheme)
{
  static const int sig[WH__IN_NSCHEMES] = {WH__H_WEBHOOK_SIG, WH__H_GITHUB_SIG, WH__H_STRIPE_SIG, WH__H_SLACK_SIG};
  return known[sig[scheme]].name;
}

int wh__in_key_make(int scheme, const char *secret, wh__in_key *out)
{
  unsigned char buf[WH__KEY_MAX];
  const unsigned char *src = buf;
  size_t len;
  if (!secret)
    return wh__fail(WH_EINVAL, "secret: must not be NULL");
  if (scheme == WH__IN_STANDARD) {
    int kl = wh__secret_decode("secret", secret, buf);
    if (kl < 0)
      return WH_EINVAL;
    len = (size_t)kl;
  } else {
    /* GitHub, Stripe and Slack sign with the text of the secret itself (Stripe's
       "whsec_..." included, not decoded). A control character or an outer space
       is almost always a copy-paste slip that would fail every request. */
    len = strnlen(secret, RAW_SECRET_MAX + 1);
    if (len == 0 || len > RAW_SECRET_MAX)
      return wh__fail(WH_EINVAL, "secret: must be 1 to %d bytes", RAW_SECRET_MAX);
    for (size_t i = 0; i < len; i++)
      if ((unsigned char)secret[i] < 0x20 || secret[i] == 0x7f)
        return wh__fail(WH_EINVAL, "secret: control character at offset %zu (a trailing newline?)", i);
    if (secret[0] == ' ' || secret[len - 1] == ' ')
      return wh__fail(WH_EINVAL, "secret: starts or ends with a space");
    src = (const unsigned char *)secret;
  }
  out->key = malloc(len);
  if (!out->key) {
    OPENSSL_cleanse(buf, sizeof buf);
    return wh__oom();
  }
  memcpy(out->key, src, len);
  out->len = len;
  OPENSSL_cleanse(buf, sizeof buf);
  return WH_OK;
}

void wh__in_key_free(wh__in_key *k)
{
  if (k->key)
    OPENSSL_cleanse(k->key, k->len);
  free(k->key);
  k->key = NULL;
  k->len = 0;
}

/* ---- pieces of the checks --------------------------------------------------------------- */

static void hex_lower(const unsigned char *p, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

/* Does an entry of header, "prefix" + want, match? Entries are separated by
   sep; sep 0: the whole header is one entry. Every entry is compared, in
   constant time for its length, whether or not an earlier one matched. */
static int entries_match(const char *header, char sep, const char *prefix, const char *want, size_t want_len)
{
  size_t pl = strlen(prefix);
  int matched = 0;
  const char *p = header;
  for (;;) {
    const char *end = sep ? strchr(p, sep) : NULL;
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == pl + want_len && memcmp(p, prefix, pl) == 0 && CRYPTO_memcmp(p + pl, want, want_len) == 0)
      matched = 1;
    if (!end)
      return matched;
    p = end + 1;
  }
}

/* One of two names for the same header (webhook-* or svix-*). */
static int pick(const wh__in_headers *h, int a, int b, const char **out)
{
  if (h->v[a] && h->v[b] && strcmp(h->v[a], h->v[b]) != 0)
    return wh__fail(WH_EINVAL, "%s and %s: both sent, with different values", known[a].name, known[b].name);
  *out = h->v[a] ? h->v[a] : h->v[b];
  return WH_OK;
}

static int missing(int scheme, int k)
{
  return wh__fail(WH_EINVAL, "%s: the %s header is missing (scheme %s)", known[k].name, known[k].name,
                  scheme_names[scheme]);
}

static int read_ts(const char *what, const char *text, int64_t now, int64_t *ts)
{
  if (!wh__parse_unix_ts(text, ts))
    return wh__fail(WH_ETIMESTAMP, "%s: \"%.32s\" is not a whole number of seconds", what, text);
  return wh__ts_within(what, *ts, now);
}

static int no_match(int k, const char *how)
{
  return wh__fail(WH_ESIGNATURE, "%s: %s", known[k].name, how);
}

static int copy_id(const char *id, char out[WH__IN_ID_MAX])
{
  snprintf(out, WH__IN_ID_MAX, "%s", id);
  return WH_OK;
}

/* ---- the schemes --------------------------------------------------------------------- */

static int check_standard(const wh__in_headers *h, const wh__in_key *keys, size_t nkeys, const void *body,
                          size_t len, int64_t now, char id[WH__IN_ID_MAX])
{
  const char *msg_id = NULL, *ts_text = NULL, *sig = NULL;
  int rc = pick(h, WH__H_WEBHOOK_ID, WH__H_SVIX_ID, &msg_id);
  if (!rc)
    rc = pick(h, WH__H_WEBHOOK_TS, WH__H_SVIX_TS, &ts_text);
  if (!rc)
    rc = pick(h, WH__H_WEBHOOK_SIG, WH__H_SVIX_SIG, &sig);
  if (rc)
    return rc;
  if (!msg_id)
    return missing(WH__IN_STANDARD, WH__H_WEBHOOK_ID);
  if (!ts_text)
    return missing(WH__IN_STANDARD, WH__H_WEBHOOK_TS);
  int64_t ts;
  if ((rc = read_ts(known[WH__H_WEBHOOK_TS].name, ts_text, now, &ts)) != WH_OK)
    return rc;
  int matched = 0;
  for (size_t i = 0; i < nkeys; i++) {
    char expect[WH__SIG_MAX];
    if ((rc = wh__sign_raw(keys[i].key, keys[i].len, msg_id, ts, body, len, expect)) != WH_OK)
      return rc;
    matched |= entries_match(sig, ' ', "v1,", expect + 3, strlen(expect + 3));
    OPENSSL_cleanse(expect, sizeof expect);
  }
  if (!matched)
    return no_match(WH__H_WEBHOOK_SIG, "no v1 entry matches a secret of scheme standard");
  return copy_id(msg_id, id);
}

/* hex HMAC(key, parts) for each key; which_hex receives the first that an entry
   of header matched. */
static int match_hex(const wh__in_key *keys, size_t nkeys, const void *const *parts, const size_t *lens,
                     size_t nparts, const char *header, char sep, const char *prefix, char which_hex[HEX_LEN + 1])
{
  int matched = 0;
  for (size_t i = 0; i < nkeys; i++) {
    unsigned char mac[32];
    char hex[HEX_LEN + 1];
    int rc = wh__hmac_sha256(keys[i].key, keys[i].len, parts, lens, nparts, mac);
    if (rc)
      return -rc;
    hex_lower(mac, sizeof mac, hex);
    if (entries_match(header, sep, prefix, hex, HEX_LEN) && !matched) {
      matched = 1;
      memcpy(which_hex, hex, sizeof hex);
    }
    OPENSSL_cleanse(mac, sizeof mac);
    OPENSSL_cleanse(hex, sizeof hex);
  }
  return matched;
}

static int check_github(const wh__in_headers *h, const wh__in_key *keys, size_t nkeys, const void *body,
                        size_t len, char id[WH__IN_ID_MAX])
{
  const char *delivery = h->v[WH__H_GITHUB_DELIVERY];
  if (!delivery)
    return missing(WH__IN_GITHUB, WH__H_GITHUB_DELIVERY);
  char hex[HEX_LEN + 1];
  const void *parts[] = {body};
  const size_t lens[] = {len};
  int m = match_hex(keys, nkeys, parts, lens, 1, h->v[WH__H_GITHUB_SIG], 0, "sha256=", hex);
  if (m < 0)
    return -m;
  if (!m)
    return no_match(WH__H_GITHUB_SIG, "not \"sha256=\" and the HMAC of the body with a secret of scheme github");
  return copy_id(delivery, id);
}

/* Does text satisfy the rules of a request id? */
static int id_ok(const char *s, size_t n)
{
  if (n == 0 || n >= WH__IN_ID_MAX)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
      return 0;
  return 1;
}

/* Stripe sends no id header. Its retries of an event carry a new t= and a new
   signature but the same body, whose top-level "id" is the event id
   ("evt_..."): that id catches retries as well as replays. The body is only
   parsed once the signature proved it authentic. A body without such an id
   (never sent by Stripe) gets an id derived as for Slack. */
static void stripe_id(const void *body, size_t len, int64_t ts, const char *hex, char id[WH__IN_ID_MAX])
{
  cJSON *doc = len ? cJSON_ParseWithLength(body, len) : NULL;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "id");
  if (cJSON_IsString(v) && id_ok(v->valuestring, strlen(v->valuestring)))
    snprintf(id, WH__IN_ID_MAX, "%s", v->valuestring);
  else
    snprintf(id, WH__IN_ID_MAX, "%lld.%.32s", (long long)ts, hex);
  cJSON_Delete(doc);
}

static int check_stripe(const wh__in_headers *h, const wh__in_key *keys, size_t nkeys, const void *body,
                        size_t len, int64_t now, char id[WH__IN_ID_MAX])
{
  const char *header = h->v[WH__H_STRIPE_SIG];
  /* "t=<ts>,v1=<hex>,v1=<hex>,v0=<hex>": exactly one t; other keys are ignored,
     as Stripe's own libraries do (v0 is the test-mode scheme). */
  const char *t = NULL;
  size_t tl = 0;
  for (const char *p = header;;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n >= 2 && p[0] == 't' && p[1] == '=') {
      if (t)
        return wh__fail(WH_EINVAL, "Stripe-Signature: t= appears more than once");
      t = p + 2;
      tl = n - 2;
    }
    if (!end)
      break;
    p = end + 1;
  }
  if (!t)
    return wh__fail(WH_EINVAL, "Stripe-Signature: no t= timestamp");
  if (tl > 32)
    return wh__fail(WH_ETIMESTAMP, "Stripe-Signature t: %zu characters, not a whole number of seconds", tl);
  char ts_text[33];
  snprintf(ts_text, sizeof ts_text, "%.*s", (int)tl, t);
  int64_t ts;
  int rc = read_ts("Stripe-Signature t", ts_text, now, &ts);
  if (rc)
    return rc;
  /* Signed: the timestamp as a number, ".", the body (as Stripe's libraries). */
  char norm[24];
  int nl = snprintf(norm, sizeof norm, "%lld", (long long)ts);
  char hex[HEX_LEN + 1];
  const void *parts[] = {norm, ".", body};
  const size_t lens[] = {(size_t)nl, 1, len};
  int m = match_hex(keys, nkeys, parts, lens, 3, header, ',', "v1=", hex);
  if (m < 0)
    return -m;
  if (!m)
    return no_match(WH__H_STRIPE_SIG, "no v1= entry matches a secret of scheme stripe");
  stripe_id(body, len, ts, hex, id);
  return WH_OK;
}

/* Slack sends no id header (nor a retry-stable one for every kind of request).
   The id is "<timestamp>.<first 32 hex digits of the signature>": the same
   bytes give the same id, so a replay is refused; a retry by Slack is a new
   request (new timestamp), so it gets a new id. */
static int check_slack(const wh__in_headers *h, const wh__in_key *keys, size_t nkeys, const void *body,
                       size_t len, int64_t now, char id[WH__IN_ID_MAX])
{
  const char *ts_text = h->v[WH__H_SLACK_TS];
  if (!ts_text)
    return missing(WH__IN_SLACK, WH__H_SLACK_TS);
  int64_t ts;
  int rc = read_ts(known[WH__H_SLACK_TS].name, ts_text, now, &ts);
  if (rc)
    return rc;
  /* Signed: "v0:" + the timestamp header as sent + ":" + the body (Slack's documentation). */
  char hex[HEX_LEN + 1];
  const void *parts[] = {"v0:", ts_text, ":", body};
  const size_t lens[] = {3, strlen(ts_text), 1, len};
  int m = match_hex(keys, nkeys, parts, lens, 4, h->v[WH__H_SLACK_SIG], 0, "v0=", hex);
  if (m < 0)
    return -m;
  if (!m)
    return no_match(WH__H_SLACK_SIG, "not \"v0=\" and the HMAC of \"v0:<timestamp>:<body>\" with a secret of "
                                     "scheme slack");
  snprintf(id, WH__IN_ID_MAX, "%lld.%.32s", (long long)ts, hex);
  return WH_OK;
}

int wh__in_verify(int scheme, const wh__in_headers *h, const wh__in_key *keys, size_t nkeys, const void *body,
                  size_t body_len, int64_t now, char id[WH__IN_ID_MAX])
{
  id[0] = '\0';
  switch (scheme) {
  case WH__IN_STANDARD:
    return check_standard(h, keys, nkeys, body, body_len, now, id);
  case WH__IN_GITHUB:
    return check_github(h, keys, nkeys, body, body_len, id);
  case WH__IN_STRIPE:
    return check_stripe(h, keys, nkeys, body, body_len, now, id);
  default:
    return check_slack(h, keys, nkeys, body, body_len, now, id);
  }
}
