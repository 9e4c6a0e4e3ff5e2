/*
 * wh_receiver: checks what other systems send in. A request is authentic when
 * a signature of its scheme matches one of the scheme's secrets within the
 * timestamp tolerance; it is new when its id was not seen before. Only
 * authentic requests are recorded as seen, so nobody without a secret can
 * fill the store or make a later genuine request look like a replay.
 *
 * Thread-safe: the secrets are under a read-write lock (checks read them,
 * wh_receiver_add_secret writes), each seen store serialises itself.
 */
#include "incoming/incoming.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wh_receiver {
  pthread_rwlock_t lock; /* the secrets */
  wh__in_key keys[WH__IN_NSCHEMES][WH__IN_MAX_SECRETS];
  size_t nkeys[WH__IN_NSCHEMES];
  wh__seen *seen;
};

int wh_receiver_new(wh_receiver **out, const char *store)
{
  if (!out)
    return wh__fail(WH_EINVAL, "receiver: out must not be NULL");
  *out = NULL;
  wh_receiver *rc = calloc(1, sizeof *rc);
  if (!rc)
    return wh__oom();
  int r = wh__seen_open(store, &rc->seen);
  if (r) {
    free(rc);
    return r;
  }
  pthread_rwlock_init(&rc->lock, NULL);
  *out = rc;
  return WH_OK;
}

void wh_receiver_free(wh_receiver *rc)
{
  if (!rc)
    return;
  rc->seen->ops->close(rc->seen);
  for (int s = 0; s < WH__IN_NSCHEMES; s++)
    for (size_t i = 0; i < rc->nkeys[s]; i++)
      wh__in_key_free(&rc->keys[s][i]);
  pthread_rwlock_destroy(&rc->lock);
  free(rc);
}

wh__seen *wh__receiver_seen(wh_receiver *rc) { return rc->seen; }

/* Where is key already? -1 when nowhere. */
static int scheme_holding(const wh_receiver *rc, const wh__in_key *k)
{
  for (int s = 0; s < WH__IN_NSCHEMES; s++)
    for (size_t i = 0; i < rc->nkeys[s]; i++)
      if (rc->keys[s][i].len == k->len && CRYPTO_memcmp(rc->keys[s][i].key, k->key, k->len) == 0)
        return s;
  return -1;
}

int wh_receiver_add_secret(wh_receiver *rc, const char *scheme, const char *secret)
{
  if (!rc)
    return wh__fail(WH_EINVAL, "receiver: must not be NULL");
  int s = wh__in_scheme_from_name(scheme);
  if (s < 0)
    return WH_EINVAL;
  wh__in_key k;
  int r = wh__in_key_make(s, secret, &k);
  if (r)
    return r;
  pthread_rwlock_wrlock(&rc->lock);
  int held = scheme_holding(rc, &k);
  /* The same secret for two schemes would let a signature made for one pass as
     the other's (GitHub signs the body alone, Stripe "t.body"): refuse it. */
  if (held >= 0 && held != s)
    r = wh__fail(WH_EINVAL, "secret: already added for scheme %s; every sender needs a secret of its own",
                 wh__in_scheme_name(held));
  else if (held < 0 && rc->nkeys[s] == WH__IN_MAX_SECRETS)
    r = wh__fail(WH_EFULL, "secret: scheme %s has %d secrets already, the most a receiver keeps",
                 wh__in_scheme_name(s), WH__IN_MAX_SECRETS);
  else if (held < 0)
    rc->keys[s][rc->nkeys[s]++] = k; /* held == s: already there, nothing to add */
  pthread_rwlock_unlock(&rc->lock);
  if (r || held >= 0)
    wh__in_key_free(&k);
  return r;
}

/* No signature header of a scheme that has secrets: say what was expected, and
   what the request carries instead when it is another scheme's. */
static int no_scheme(const wh_receiver *rc, const wh__in_headers *h)
{
  char want[256] = "", other[128] = "";
  size_t wl = 0, ol = 0;
  for (int s = 0; s < WH__IN_NSCHEMES; s++) {
    if (rc->nkeys[s])
      wl += (size_t)snprintf(want + wl, sizeof want - wl, "%s%s (scheme %s)", wl ? " or " : "",
                             wh__in_scheme_sig_header(s), wh__in_scheme_name(s));
    else if (wh__in_scheme_signed(h, s) && !ol)
      ol = (size_t)snprintf(other, sizeof other, "; the request carries %s (scheme %s), for which no secret was added",
                            wh__in_scheme_sig_header(s), wh__in_scheme_name(s));
  }
  return wh__fail(WH_EINVAL, "headers: no %s header%s", want, other);
}

/* The scheme whose signature header the request carries, among those with
   secrets; -1 (and the message) when none or several. */
static int scheme_of(const wh_receiver *rc, const wh__in_headers *h, int *err)
{
  int found = -1;
  for (int s = 0; s < WH__IN_NSCHEMES; s++) {
    if (!rc->nkeys[s] || !wh__in_scheme_signed(h, s))
      continue;
    if (found >= 0) {
      *err = wh__fail(WH_EINVAL, "headers: signed with both %s (scheme %s) and %s (scheme %s)",
                      wh__in_scheme_sig_header(found), wh__in_scheme_name(found), wh__in_scheme_sig_header(s),
                      wh__in_scheme_name(s));
      return -1;
    }
    found = s;
  }
  if (found < 0) {
    int any = 0;
    for (int s = 0; s < WH__IN_NSCHEMES; s++)
      any |= rc->nkeys[s] != 0;
    *err = any ? no_scheme(rc, h)
               : wh__fail(WH_ESTATE, "receiver: no secret added yet; call wh_receiver_add_secret() first");
  }
  return found;
}

int wh__receiver_check_at(wh_receiver *rc, const char *const *header_names, const char *const *header_values,
                          size_t n_headers, const void *body, size_t body_len, char *id_out, size_t id_len,
                          int64_t now)
{
  if (!rc)
    return wh__fail(WH_EINVAL, "receiver: must not be NULL");
  if (!body && body_len)
    return wh__fail(WH_EINVAL, "body: NULL with a length of %zu", body_len);
  wh__in_headers h;
  int r = wh__in_collect(header_names, header_values, n_headers, &h);
  if (r)
    return r;

  char id[WH__IN_ID_MAX];
  pthread_rwlock_rdlock(&rc->lock);
  int scheme = scheme_of(rc, &h, &r);
  if (scheme >= 0)
    r = wh__in_verify(scheme, &h, rc->keys[scheme], rc->nkeys[scheme], body, body_len, now, id);
  pthread_rwlock_unlock(&rc->lock);
  if (r)
    return r;

  /* Authentic. Too small a buffer is said before anything is recorded. */
  size_t need = strlen(id) + 1;
  if (id_out && id_len < need)
    return wh__fail(WH_ERANGE, "id buffer: %zu bytes, the id needs %zu (%d always suffice)", id_len, need,
                    WH__IN_ID_MAX);
  /* Ids are kept per scheme: two senders of different schemes never collide. */
  char key[16 + WH__IN_ID_MAX];
  snprintf(key, sizeof key, "%s:%s", wh__in_scheme_name(scheme), id);
  int64_t keep = scheme == WH__IN_GITHUB ? WH__IN_KEEP_GITHUB_S : WH__IN_KEEP_TIMESTAMPED_S;
  r = rc->seen->ops->add(rc->seen, key, now, keep);
  if (r != WH_OK && r != WH_EEXIST)
    return r;
  if (id_out)
    memcpy(id_out, id, need);
  if (r == WH_EEXIST)
    return wh__fail(WH_EEXIST, "request %s (scheme %s): seen before, a redelivery or a replay", id,
                    wh__in_scheme_name(scheme));
  return WH_OK;
}

int wh_receiver_check(wh_receiver *rc, const char *const *header_names, const char *const *header_values,
                      size_t n_headers, const void *body, size_t body_len, char *id_out, size_t id_len)
{
  return wh__receiver_check_at(rc, header_names, header_values, n_headers, body, body_len, id_out, id_len,
                               wh__now_us() / 1000000);
}
