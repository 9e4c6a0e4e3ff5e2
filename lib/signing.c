/* Standard Webhooks v1: HMAC-SHA256 over "id.timestamp.body", base64, "v1,". */
#include "internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "whsec_"
#define PREFIX_LEN 6
#define GEN_BYTES 32

int wh__secret_decode(const char *what, const char *secret, unsigned char key[WH__KEY_MAX])
{
  if (!secret)
    return wh__fail(WH_EINVAL, "%s: must not be NULL", what), -1;
  const char *b64 = strncmp(secret, PREFIX, PREFIX_LEN) == 0 ? secret + PREFIX_LEN : secret;
  size_t n = strlen(b64);
  if (n == 0)
    return wh__fail(WH_EINVAL, "%s: empty; expected \"whsec_\" followed by base64", what), -1;
  if (n > (WH__KEY_MAX + 2) / 3 * 4)
    return wh__fail(WH_EINVAL, "%s: key longer than %d bytes", what, WH__KEY_MAX), -1;
  long len = wh__b64_decode(b64, n, key, WH__KEY_MAX);
  if (len <= 0)
    return wh__fail(WH_EINVAL, "%s: the part after \"whsec_\" is not valid base64", what), -1;
  return (int)len;
}

/* One HMAC-SHA256 context per thread, made once (fetching the algorithm and
   the digest by name is the expensive part) and re-keyed for each signature. */
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac;

static void free_ctx(void *c) { EVP_MAC_CTX_free(c); }

static void init_hmac(void)
{
  hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  pthread_key_create(&ctx_key, free_ctx);
}

static EVP_MAC_CTX *thread_ctx(void)
{
  pthread_once(&ctx_once, init_hmac);
  EVP_MAC_CTX *c = pthread_getspecific(ctx_key);
  if (c || !hmac)
    return c;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0), OSSL_PARAM_construct_end()};
  c = EVP_MAC_CTX_new(hmac);
  if (c && !EVP_MAC_CTX_set_params(c, params)) {
    EVP_MAC_CTX_free(c);
    c = NULL;
  }
  if (c)
    pthread_setspecific(ctx_key, c);
  return c;
}

int wh__hmac_sha256(const unsigned char *key, size_t key_len, const void *const *parts, const size_t *lens,
                    size_t n, unsigned char out[32])
{
  size_t mac_len = 0;
  /* The signed content is fed in pieces: a body of any size is never copied. */
  EVP_MAC_CTX *c = thread_ctx();
  int ok = c && EVP_MAC_init(c, key, key_len, NULL);
  for (size_t i = 0; ok && i < n; i++)
    ok = lens[i] == 0 || EVP_MAC_update(c, parts[i], lens[i]);
  unsigned char mac[EVP_MAX_MD_SIZE];
  ok = ok && EVP_MAC_final(c, mac, &mac_len, sizeof mac) && mac_len == 32;
  if (ok)
    memcpy(out, mac, 32);
  OPENSSL_cleanse(mac, sizeof mac);
  return ok ? WH_OK : wh__fail(WH_ENOMEM, "signing: OpenSSL could not compute HMAC-SHA256");
}

int wh__sign_raw(const unsigned char *key, size_t key_len, const char *msg_id, int64_t ts, const void *body,
                 size_t body_len, char out[WH__SIG_MAX])
{
  char tsbuf[24];
  int tl = snprintf(tsbuf, sizeof tsbuf, "%lld", (long long)ts);
  unsigned char mac[32];
  const void *parts[] = {msg_id, ".", tsbuf, ".", body};
  const size_t lens[] = {strlen(msg_id), 1, (size_t)tl, 1, body_len};
  if (wh__hmac_sha256(key, key_len, parts, lens, 5, mac) != WH_OK) {
    out[0] = '\0';
    return WH_ENOMEM;
  }
  memcpy(out, "v1,", 3);
  wh__b64_encode(mac, sizeof mac, out + 3);
  OPENSSL_cleanse(mac, sizeof mac);
  return WH_OK;
}

int wh_secret_generate(char *buf, size_t len)
{
  unsigned char raw[GEN_BYTES];
  char text[PREFIX_LEN + (GEN_BYTES + 2) / 3 * 4 + 1];
  if (!buf)
    return wh__fail(WH_EINVAL, "secret buffer: must not be NULL");
  int rc = wh__random(raw, sizeof raw);
  if (rc)
    return rc;
  memcpy(text, PREFIX, PREFIX_LEN);
  wh__b64_encode(raw, sizeof raw, text + PREFIX_LEN);
  OPENSSL_cleanse(raw, sizeof raw);
  rc = wh__copy_out("secret buffer", text, buf, len);
  OPENSSL_cleanse(text, sizeof text);
  return rc;
}

int wh_sign(const char *secret, const char *msg_id, int64_t timestamp, const void *body,
            size_t body_len, char *sig_out, size_t sig_len)
{
  unsigned char key[WH__KEY_MAX];
  if (!msg_id || !*msg_id)
    return wh__fail(WH_EINVAL, "msg_id: must not be empty");
  if (!body && body_len)
    return wh__fail(WH_EINVAL, "body: NULL with a length of %zu", body_len);
  if (!sig_out)
    return wh__fail(WH_EINVAL, "signature buffer: must not be NULL");
  int kl = wh__secret_decode("secret", secret, key);
  if (kl < 0)
    return WH_EINVAL;
  char sig[WH__SIG_MAX];
  int rc = wh__sign_raw(key, (size_t)kl, msg_id, timestamp, body, body_len, sig);
  OPENSSL_cleanse(key, sizeof key);
  return rc ? rc : wh__copy_out("signature buffer", sig, sig_out, sig_len);
}

int wh__parse_unix_ts(const char *s, int64_t *out)
{
  if (!*s)
    return 0;
  const char *p = s;
  if (*p == '-')
    p++;
  if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 18)
    return 0;
  errno = 0;
  long long v = strtoll(s, NULL, 10);
  if (errno)
    return 0;
  *out = v;
  return 1;
}

int wh__ts_within(const char *what, int64_t ts, int64_t now)
{
  /* |now - ts| without overflow, whatever the caller passed. */
  uint64_t dist = ts > now ? (uint64_t)ts - (uint64_t)now : (uint64_t)now - (uint64_t)ts;
  if (dist > WH__TOLERANCE_S)
    return wh__fail(WH_ETIMESTAMP, "%s: %lld is %llu s %s now, more than %d s", what, (long long)ts,
                    (unsigned long long)dist, ts > now ? "ahead of" : "behind", WH__TOLERANCE_S);
  return WH_OK;
}

int wh_verify(const char *secret, const char *msg_id, const char *timestamp,
              const char *signature_header, const void *body, size_t body_len, int64_t now)
{
  unsigned char key[WH__KEY_MAX];
  if (!msg_id || !*msg_id)
    return wh__fail(WH_EINVAL, "msg_id: must not be empty");
  if (!timestamp)
    return wh__fail(WH_EINVAL, "timestamp: must not be NULL");
  if (!signature_header)
    return wh__fail(WH_EINVAL, "signature header: must not be NULL");
  if (!body && body_len)
    return wh__fail(WH_EINVAL, "body: NULL with a length of %zu", body_len);
  int kl = wh__secret_decode("secret", secret, key);
  if (kl < 0)
    return WH_EINVAL;

  int64_t ts;
  if (!wh__parse_unix_ts(timestamp, &ts)) {
    OPENSSL_cleanse(key, sizeof key);
    return wh__fail(WH_ETIMESTAMP, "timestamp: \"%.32s\" is not a whole number of seconds", timestamp);
  }
  if (now == 0)
    now = wh__now_us() / 1000000;
  if (wh__ts_within("timestamp", ts, now) != WH_OK) {
    OPENSSL_cleanse(key, sizeof key);
    return WH_ETIMESTAMP;
  }

  char expect[WH__SIG_MAX];
  int rc = wh__sign_raw(key, (size_t)kl, msg_id, ts, body, body_len, expect);
  OPENSSL_cleanse(key, sizeof key);
  if (rc)
    return rc;
  /* Compare the base64 text after "v1,": equal length, constant time. */
  const char *want = expect + 3;
  size_t want_len = strlen(want);

  int matched = 0;
  const char *p = signature_header;
  while (*p) {
    while (*p == ' ')
      p++;
    const char *end = p;
    while (*end && *end != ' ')
      end++;
    size_t n = (size_t)(end - p);
    if (n > 3 && memcmp(p, "v1,", 3) == 0 && n - 3 == want_len &&
        CRYPTO_memcmp(p + 3, want, want_len) == 0)
      matched = 1; /* keep scanning: the time taken must not tell which entry matched */
    p = end;
  }
  if (!matched)
    return wh__fail(WH_ESIGNATURE, "signature: no v1 entry of the header matches");
  return WH_OK;
}
