/* Requests as GitHub, Stripe, Slack and Standard Webhooks senders sign them,
   for the tests of wh_receiver. Written from the senders' documentation with
   OpenSSL's one-shot HMAC, not with the library's code, so that a test
   compares the library with something that is not itself (the interop test
   compares it with the senders' own npm packages). */
#ifndef WH_TEST_INSIGN_H
#define WH_TEST_INSIGN_H

#include <webhook/webhook.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IN_MAX_HEADERS 300

typedef struct {
  const char *names[IN_MAX_HEADERS];
  const char *values[IN_MAX_HEADERS];
  char store[16][4096]; /* values built by the signers */
  size_t n, used;
  const char *body;
  size_t len;
} in_req;

static inline void in_init(in_req *r, const char *body)
{
  memset(r, 0, sizeof *r);
  r->body = body;
  r->len = body ? strlen(body) : 0;
}

/* Add a header; value NULL: the next free buffer, filled by the caller. */
static inline char *in_add(in_req *r, const char *name, const char *value)
{
  r->names[r->n] = name;
  if (!value) {
    if (r->used == sizeof r->store / sizeof r->store[0])
      abort();
    value = r->store[r->used++];
  }
  r->values[r->n] = value;
  return (char *)r->values[r->n++];
}

static inline const char *in_get(const in_req *r, const char *name)
{
  for (size_t i = 0; i < r->n; i++)
    if (strcasecmp(r->names[i], name) == 0)
      return r->values[i];
  return NULL;
}

static inline int in_check(wh_receiver *rc, const in_req *r, char *id, size_t id_len)
{
  return wh_receiver_check(rc, r->names, r->values, r->n, r->body, r->len, id, id_len);
}

/* hex HMAC-SHA256(key, a || b || c || d) into out (65 bytes). */
static inline void in_hmac_hex(const void *key, size_t kl, const char *a, const char *b, const char *c,
                               const void *d, size_t dl, char *out)
{
  size_t al = strlen(a), bl = strlen(b), cl = strlen(c);
  unsigned char *msg = (unsigned char *)malloc(al + bl + cl + dl + 1), mac[32];
  memcpy(msg, a, al);
  memcpy(msg + al, b, bl);
  memcpy(msg + al + bl, c, cl);
  if (dl)
    memcpy(msg + al + bl + cl, d, dl);
  unsigned int ml = 0;
  HMAC(EVP_sha256(), key, (int)kl, msg, al + bl + cl + dl, mac, &ml);
  free(msg);
  for (unsigned i = 0; i < 32; i++)
    sprintf(out + 2 * i, "%02x", mac[i]);
}

/* Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature (wh_sign). */
static inline void in_standard(in_req *r, const char *secret, const char *id, int64_t ts)
{
  in_add(r, "webhook-id", id);
  snprintf(in_add(r, "webhook-timestamp", NULL), 4096, "%lld", (long long)ts);
  wh_sign(secret, id, ts, r->body, r->len, in_add(r, "webhook-signature", NULL), 4096);
}

/* GitHub: X-Hub-Signature-256 = "sha256=" hex HMAC(secret, body), X-GitHub-Delivery. */
static inline void in_github(in_req *r, const char *secret, const char *delivery)
{
  char hex[65];
  in_hmac_hex(secret, strlen(secret), "", "", "", r->body, r->len, hex);
  snprintf(in_add(r, "X-Hub-Signature-256", NULL), 4096, "sha256=%s", hex);
  in_add(r, "X-GitHub-Delivery", delivery);
}

/* The v1 value Stripe computes: hex HMAC(secret, "<t>." body). */
static inline void in_stripe_v1(const char *secret, int64_t t, const char *body, size_t len, char *hex)
{
  char ts[32];
  snprintf(ts, sizeof ts, "%lld", (long long)t);
  in_hmac_hex(secret, strlen(secret), ts, ".", "", body, len, hex);
}

/* Stripe: Stripe-Signature = "t=<t>,v1=<hex>" with one v1 per secret given. */
static inline void in_stripe(in_req *r, const char *const *secrets, int n, int64_t t)
{
  char *h = in_add(r, "Stripe-Signature", NULL);
  int len = snprintf(h, 4096, "t=%lld", (long long)t);
  for (int i = 0; i < n; i++) {
    char hex[65];
    in_stripe_v1(secrets[i], t, r->body, r->len, hex);
    len += snprintf(h + len, 4096 - (size_t)len, ",v1=%s", hex);
  }
}

/* Slack: X-Slack-Signature = "v0=" hex HMAC(secret, "v0:" ts ":" body), X-Slack-Request-Timestamp. */
static inline void in_slack(in_req *r, const char *secret, int64_t ts)
{
  char *t = in_add(r, "X-Slack-Request-Timestamp", NULL);
  snprintf(t, 4096, "%lld", (long long)ts);
  char hex[65];
  in_hmac_hex(secret, strlen(secret), "v0:", t, ":", r->body, r->len, hex);
  snprintf(in_add(r, "X-Slack-Signature", NULL), 4096, "v0=%s", hex);
}

#endif
