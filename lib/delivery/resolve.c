/*
 * The network policy for proxied requests. Through a proxy, libcurl connects to
 * the proxy and the proxy connects to the destination: the address check on
 * our own connections (http.c) would see only the proxy. So before a request
 * goes to a proxy, the destination's host is resolved here and every address
 * it has must pass the policy (REFERENCE.md, "Network policy").
 *
 * Workers never wait for DNS: a host not yet known is looked up by a thread of
 * this resolver, and the request waits a moment without using an attempt.
 * Verdicts are kept for a minute (failures for a few seconds), at most
 * CACHE_MAX of them. The proxy resolves the name again itself: a name whose
 * addresses change between the two lookups (DNS rebinding) can still get
 * through a proxy; only a proxy that applies the same policy closes that
 * (docs/guide.md, "Proxies").
 */
#include "delivery/resolve.h"

#include <curl/curl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CACHE_MAX 4096
#define KEEP_MS 60000
#define KEEP_FAILED_MS 5000

typedef struct entry {
  char *host;
  int verdict;        /* WH__RESOLVE_* */
  char why[200];
  int64_t expires_ms; /* 0 while pending */
  struct entry *next;
} entry;

struct wh__resolver {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  entry *entries; /* most recent first */
  size_t n;
  int pending;    /* lookups asked and not done */
  int stop;
  pthread_t thread;
};

static entry *find(wh__resolver *r, const char *host)
{
  for (entry *e = r->entries; e; e = e->next)
    if (strcmp(e->host, host) == 0)
      return e;
  return NULL;
}

/* Every address host has must pass the policy. */
static void judge(const char *host, int *verdict, char *why, size_t len)
{
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
  int gai = getaddrinfo(host, NULL, &hints, &res);
  if (gai != 0) {
    *verdict = WH__RESOLVE_FAILED;
    snprintf(why, len, "cannot resolve \"%.100s\" (checked before the proxy): %s", host, gai_strerror(gai));
    return;
  }
  *verdict = WH__RESOLVE_OK;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    const char *bad = wh__addr_forbidden(a->ai_addr);
    if (bad) {
      *verdict = WH__RESOLVE_REFUSED;
      snprintf(why, len, "network policy: destination \"%.100s\" resolves to %s (checked before the proxy)", host,
               bad);
      break;
    }
  }
  freeaddrinfo(res);
}

static void *resolver_main(void *arg)
{
  wh__resolver *r = arg;
  pthread_mutex_lock(&r->mu);
  for (;;) {
    entry *todo = NULL;
    for (entry *e = r->entries; e && !todo; e = e->next)
      if (e->verdict == WH__RESOLVE_PENDING)
        todo = e;
    if (r->stop)
      break;
    if (!todo) {
      pthread_cond_wait(&r->cv, &r->mu);
      continue;
    }
    char *host = wh__strdup(todo->host);
    pthread_mutex_unlock(&r->mu);
    int verdict = WH__RESOLVE_FAILED;
    char why[200] = "out of memory";
    if (host)
      judge(host, &verdict, why, sizeof why);
    pthread_mutex_lock(&r->mu);
    entry *e = host ? find(r, host) : todo; /* the list may have changed meanwhile */
    if (e && e->verdict == WH__RESOLVE_PENDING) {
      e->verdict = verdict;
      memcpy(e->why, why, sizeof e->why);
      e->expires_ms = wh__mono_ms() + (verdict == WH__RESOLVE_FAILED ? KEEP_FAILED_MS : KEEP_MS);
      r->pending--;
    }
    free(host);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

int wh__resolver_new(wh__resolver **out)
{
  wh__resolver *r = calloc(1, sizeof *r);
  if (!r)
    return wh__oom();
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  if (pthread_create(&r->thread, NULL, resolver_main, r) != 0) {
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return wh__fail(WH_ENOMEM, "dispatcher: cannot start the resolver thread");
  }
  *out = r;
  return WH_OK;
}

void wh__resolver_free(wh__resolver *r)
{
  if (!r)
    return;
  pthread_mutex_lock(&r->mu);
  r->stop = 1;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
  pthread_join(r->thread, NULL); /* an address lookup in progress finishes first */
  for (entry *e = r->entries, *next; e; e = next) {
    next = e->next;
    free(e->host);
    free(e);
  }
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r);
}

/* Drop expired verdicts, and the oldest beyond CACHE_MAX. Caller holds mu. */
static void prune(wh__resolver *r, int64_t now)
{
  size_t kept = 0;
  for (entry **pp = &r->entries; *pp;) {
    entry *e = *pp;
    int old = e->verdict != WH__RESOLVE_PENDING && (e->expires_ms <= now || kept >= CACHE_MAX);
    if (old) {
      *pp = e->next;
      free(e->host);
      free(e);
      r->n--;
    } else {
      kept++;
      pp = &e->next;
    }
  }
}

int wh__resolver_check(wh__resolver *r, const char *url, char *why, size_t len)
{
  CURLU *h = curl_url();
  char *host = NULL;
  if (!h || curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host) {
    curl_url_cleanup(h);
    snprintf(why, len, "network policy: cannot read the host of the endpoint URL");
    return WH__RESOLVE_REFUSED;
  }
  curl_url_cleanup(h);
  /* An address written in the URL needs no lookup ("[::1]" without brackets). */
  size_t hl = strlen(host);
  if (host[0] == '[' && hl > 2) {
    memmove(host, host + 1, hl - 2);
    host[hl - 2] = '\0';
  }
  const char *bad = wh__ip_text_forbidden(host);
  if (bad) {
    int v = *bad ? WH__RESOLVE_REFUSED : WH__RESOLVE_OK;
    if (*bad)
      snprintf(why, len, "network policy: destination address is %s (checked before the proxy)", bad);
    curl_free(host);
    return v;
  }
  int64_t now = wh__mono_ms();
  pthread_mutex_lock(&r->mu);
  entry *e = find(r, host);
  if (e && e->verdict != WH__RESOLVE_PENDING && e->expires_ms <= now) {
    e->verdict = WH__RESOLVE_PENDING; /* look it up again */
    e->expires_ms = 0;
    r->pending++;
    pthread_cond_signal(&r->cv);
  }
  if (!e) {
    prune(r, now);
    if ((e = calloc(1, sizeof *e)) && (e->host = wh__strdup(host))) {
      e->verdict = WH__RESOLVE_PENDING;
      e->next = r->entries;
      r->entries = e;
      r->n++;
      r->pending++;
      pthread_cond_signal(&r->cv);
    } else {
      free(e);
      e = NULL;
    }
  }
  int v = e ? e->verdict : WH__RESOLVE_FAILED;
  if (!e)
    snprintf(why, len, "out of memory");
  else if (v != WH__RESOLVE_OK && v != WH__RESOLVE_PENDING)
    snprintf(why, len, "%s", e->why);
  pthread_mutex_unlock(&r->mu);
  curl_free(host);
  return v;
}
