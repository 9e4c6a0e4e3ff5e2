/*
 * One attempt on the wire, through libcurl: a POST of the exact message bytes
 * with the Standard Webhooks headers. Redirects are not followed, only http
 * and https are spoken, TLS is always verified, and the network policy is
 * applied to the address each new connection actually goes to.
 */
#include "http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
  wh__xfer *x = userp;
  size_t n = size * nmemb;
  x->seen += n;
  if (x->kept < WH__RESPONSE_KEEP) {
    size_t take = n < WH__RESPONSE_KEEP - x->kept ? n : WH__RESPONSE_KEEP - x->kept;
    if (!x->body && !(x->body = malloc(WH__RESPONSE_KEEP + 1)))
      return 0;
    memcpy(x->body + x->kept, data, take);
    x->kept += take;
    x->body[x->kept] = '\0';
  }
  /* Past what the log keeps, the rest is of no use: cut the transfer short
     rather than read a receiver's 100 MiB. The status is known by now. */
  return x->seen > WH__RESPONSE_KEEP ? 0 : n;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userp)
{
  wh__xfer *x = userp;
  size_t n = size * nmemb;
  if (n > 5 && strncmp(line, "HTTP/", 5) == 0) {
    x->has_retry_after = 0; /* a new response (e.g. after 100 Continue) */
  } else if (n > 12 && strncasecmp(line, "retry-after:", 12) == 0) {
    size_t vl = n - 12;
    if (vl >= sizeof x->retry_after)
      vl = sizeof x->retry_after - 1;
    memcpy(x->retry_after, line + 12, vl);
    x->retry_after[vl] = '\0';
    x->has_retry_after = 1;
  }
  return n;
}

static curl_socket_t on_open_socket(void *userp, curlsocktype purpose, struct curl_sockaddr *addr)
{
  wh__xfer *x = userp;
  /* Through the operator's proxy the connection goes to that proxy, which the
     operator chose; the destination was checked before (see the dispatcher).
     An endpoint's own proxy is checked like a destination. */
  if (purpose == CURLSOCKTYPE_IPCXN && !x->opts->allow_private && !(x->proxy && x->proxy_trusted)) {
    const char *why = wh__addr_forbidden(&addr->addr);
    if (why) {
      x->policy_refused = 1;
      snprintf(x->policy_why, sizeof x->policy_why, "network policy: destination address is %s", why);
      return CURL_SOCKET_BAD;
    }
  }
  return socket(addr->family, addr->socktype, addr->protocol);
}

struct wh__share {
  CURLSH *sh;
  pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

static void share_lock(CURL *e, curl_lock_data data, curl_lock_access access, void *userp)
{
  (void)e;
  (void)access;
  struct wh__share *s = userp;
  pthread_mutex_lock(&s->locks[data < CURL_LOCK_DATA_LAST ? data : 0]);
}

static void share_unlock(CURL *e, curl_lock_data data, void *userp)
{
  (void)e;
  struct wh__share *s = userp;
  pthread_mutex_unlock(&s->locks[data < CURL_LOCK_DATA_LAST ? data : 0]);
}

int wh__share_new(struct wh__share **out)
{
  struct wh__share *s = calloc(1, sizeof *s);
  if (!s || !(s->sh = curl_share_init())) {
    free(s);
    return wh__oom();
  }
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&s->locks[i], NULL);
  curl_share_setopt(s->sh, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt(s->sh, CURLSHOPT_USERDATA, s);
  curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  *out = s;
  return WH_OK;
}

void wh__share_free(struct wh__share *s)
{
  if (!s)
    return;
  curl_share_cleanup(s->sh);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_destroy(&s->locks[i]);
  free(s);
}

/* Settings that stay the same for every request of a dispatcher: made once
   per easy handle (the options cannot change once the dispatcher runs). */
static void set_fixed(wh__xfer *x, const wh__opts *o)
{
  CURL *e = x->easy;
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, o->user_agent);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
  x->timeout_ms = o->timeout_ms;
  /* No proxy from the environment (http_proxy, ...): only the configured ones,
     whose use the network policy knows about. */
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  free(x->proxy);
  x->proxy = NULL;
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (o->ca_file) {
    /* Trust the extra bundle besides the system's store, not instead of it. */
    curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    if (access("/etc/ssl/certs", R_OK) == 0)
      curl_easy_setopt(e, CURLOPT_CAPATH, "/etc/ssl/certs");
  }
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hnodes);
  if (o->share)
    curl_easy_setopt(e, CURLOPT_SHARE, o->share->sh);
  x->easy_opts = o;
}

const char *wh__xfer_proxy(const wh__opts *o, const wh__endpoint *ep, int *trusted)
{
  *trusted = !ep->set.proxy && o->proxy;
  return ep->set.proxy ? ep->set.proxy : o->proxy;
}

/* Keep *slot equal to value (copies), calling setopt only on a change: libcurl
   copies strings, and most requests repeat the last one's. */
static int sync_str(CURL *e, CURLoption opt, char **slot, const char *value, const char *unset)
{
  if ((!*slot && !value) || (*slot && value && strcmp(*slot, value) == 0))
    return WH_OK;
  char *copy = NULL;
  if (value && !(copy = wh__strdup(value)))
    return wh__oom();
  free(*slot);
  *slot = copy;
  curl_easy_setopt(e, opt, value ? value : unset);
  return WH_OK;
}

/* The endpoint's own settings: timeout, proxy, client certificate. */
static int set_per_endpoint(wh__xfer *x, const wh__opts *o, const wh__endpoint *ep)
{
  CURL *e = x->easy;
  long timeout = ep->set.timeout_ms ? ep->set.timeout_ms : o->timeout_ms;
  if (timeout != x->timeout_ms) {
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
    x->timeout_ms = timeout;
  }
  const char *proxy = wh__xfer_proxy(o, ep, &x->proxy_trusted);
  int rc = sync_str(e, CURLOPT_PROXY, &x->proxy, proxy, "");
  const char *had = x->client_cert;
  if (!rc)
    rc = sync_str(e, CURLOPT_SSLCERT, &x->client_cert, ep->set.client_cert, NULL);
  if (!rc && had != x->client_cert) /* the file holds the key too */
    curl_easy_setopt(e, CURLOPT_SSLKEY, x->client_cert);
  return rc;
}

int wh__xfer_setup(wh__xfer *x, const wh__opts *o, wh__delivery *dl, wh__endpoint *ep)
{
  x->ep = ep; /* the caller's reference, released by wh__xfer_reset */
  if (!x->easy && !(x->easy = curl_easy_init()))
    return wh__oom();
  if (x->easy_opts != o)
    set_fixed(x, o);
  CURL *e = x->easy;
  int rc0 = set_per_endpoint(x, o, ep);
  if (rc0)
    return rc0;
  x->dl = dl;
  x->opts = o;
  x->started_ms = wh__mono_ms();
  x->started_wall_ms = wh__now_ms();
  x->errbuf[0] = '\0';

  int64_t now_ms = x->started_wall_ms;
  int64_t ts = now_ms / 1000;
  /* Room for 8 secrets' "v1,<44>" entries. */
  memcpy(x->sig_line, "webhook-signature: ", 19);
  if (!wh__endpoint_sign(ep, dl->msg->id, ts, dl->msg->body, dl->msg->len, now_ms, x->sig_line + 19,
                         sizeof x->sig_line - 19))
    return wh__fail(WH_EINVAL, "endpoint %s: no active secret to sign with", ep->id);
  snprintf(x->id_line, sizeof x->id_line, "webhook-id: %s", dl->msg->id);
  snprintf(x->ts_line, sizeof x->ts_line, "webhook-timestamp: %lld", (long long)ts);
  static const char content_type[] = "content-type: application/json", no_expect[] = "Expect:";
  char *lines[WH__FIXED_HEADERS] = {(char *)content_type, (char *)no_expect, x->sig_line, x->id_line, x->ts_line};
  for (int i = 0; i < WH__FIXED_HEADERS; i++) {
    x->hnodes[i].data = lines[i];
    x->hnodes[i].next = i + 1 < WH__FIXED_HEADERS ? &x->hnodes[i + 1] : NULL;
  }
  if (ep->nheaders) {
    if (ep->nheaders > x->hextra_cap) {
      struct curl_slist *v = realloc(x->hextra, ep->nheaders * sizeof *v);
      if (!v)
        return wh__oom();
      x->hextra = v;
      x->hextra_cap = ep->nheaders;
    }
    for (size_t i = 0; i < ep->nheaders; i++) {
      x->hextra[i].data = ep->headers[i];
      x->hextra[i].next = i + 1 < ep->nheaders ? &x->hextra[i + 1] : NULL;
    }
    x->hnodes[WH__FIXED_HEADERS - 1].next = x->hextra;
  }

  /* libcurl copies the URL: only when it changed. */
  if (!x->url || strcmp(x->url, ep->url) != 0) {
    char *u = wh__strdup(ep->url);
    if (!u)
      return wh__oom();
    free(x->url);
    x->url = u;
    curl_easy_setopt(e, CURLOPT_URL, u);
  }
  const char *body = dl->msg->body; /* a flexible array: libcurl's type check wants a pointer */
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)dl->msg->len);
  return WH_OK;
}

void wh__xfer_outcome(wh__xfer *x, CURLcode code, wh__outcome *out)
{
  memset(out, 0, sizeof *out);
  long status = 0;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  out->http_status = (int)status;
  out->duration_ms = wh__mono_ms() - x->started_ms;
  out->started_ms = x->started_wall_ms;
  out->response = x->body;
  out->response_len = x->kept;
  if (x->has_retry_after) {
    memcpy(out->retry_after, x->retry_after, sizeof out->retry_after);
    out->has_retry_after = 1;
  }
  /* Once a status line has arrived the receiver has spoken: the status decides,
     whatever happened to the body afterwards (cut short by us past what the
     log keeps, dripped past the timeout, or reset). */
  if (x->policy_refused) {
    out->policy_refused = 1;
    snprintf(out->error, sizeof out->error, "%s", x->policy_why);
  } else if (status > 0) {
    if (status < 200 || status > 299)
      snprintf(out->error, sizeof out->error, "HTTP %ld%s", status,
               status >= 300 && status < 400 ? " (redirects are not followed)" : "");
  } else if (code == CURLE_OPERATION_TIMEDOUT) {
    out->timed_out = 1;
    snprintf(out->error, sizeof out->error, "timeout after %lld ms: %s", (long long)out->duration_ms,
             x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
  } else {
    out->connect_failed = code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST;
    snprintf(out->error, sizeof out->error, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
  }
}

void wh__xfer_reset(wh__xfer *x)
{
  wh__endpoint_unref(x->ep);
  x->ep = NULL;
  free(x->body);
  x->body = NULL;
  x->kept = x->seen = 0;
  x->policy_refused = 0;
  x->has_retry_after = 0;
  x->dl = NULL;
}

void wh__xfer_free(wh__xfer *x)
{
  if (!x)
    return;
  wh__xfer_reset(x);
  if (x->easy)
    curl_easy_cleanup(x->easy);
  free(x->hextra);
  free(x->url);
  free(x->proxy);
  free(x->client_cert);
  free(x);
}
