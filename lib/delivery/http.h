/* One attempt on the wire: see http.c. */
#ifndef WEBHOOK_HTTP_H
#define WEBHOOK_HTTP_H

#include "dispatch.h"

#include <curl/curl.h>

#define WH__RESPONSE_KEEP 20000

#define WH__FIXED_HEADERS 5 /* content-type, Expect, webhook-signature, -id, -timestamp */

typedef struct wh__xfer {
  CURL *easy;
  const wh__opts *easy_opts;  /* the options the easy handle's fixed settings came from */
  /* The request's headers: nodes of our own (libcurl only reads the list), so
     that a request costs no allocation; the endpoint's own headers follow,
     pointing into ep, which the transfer holds a reference to. */
  struct curl_slist hnodes[WH__FIXED_HEADERS];
  struct curl_slist *hextra;  /* nodes for ep's headers: hextra_cap of them */
  size_t hextra_cap;
  wh__endpoint *ep;
  char sig_line[8 * (WH__SIG_MAX + 1) + 32];
  char id_line[WH_ID_MAX + 16];
  char ts_line[48];
  char *url;                  /* the URL last given to the easy handle */
  char *proxy;                /* the proxy last given to it (NULL: none) */
  char *client_cert;          /* the client certificate last given to it (NULL: none) */
  long timeout_ms;            /* the timeout last given to it */
  int proxy_trusted;          /* the proxy is the operator's (WH_OPT_PROXY), not the endpoint's */
  wh__delivery *dl;
  const wh__opts *opts;
  int64_t started_ms;  /* monotonic */
  int64_t started_wall_ms;
  size_t kept, seen;   /* response bytes kept for the log, and seen in all */
  char *body;          /* the first WH__RESPONSE_KEEP bytes of the response */
  int policy_refused;
  char policy_why[160];
  char retry_after[72];
  int has_retry_after;
  char errbuf[CURL_ERROR_SIZE];
  struct wh__xfer *next_free;               /* in the worker's pool */
  struct wh__xfer *act_prev, *act_next;     /* in the worker's list of transfers in flight */
} wh__xfer;

/* Prepare x (easy handle reused) to POST dl's message to ep. x takes over the caller's
   reference to ep, also when it fails: wh__xfer_reset releases it. */
int wh__xfer_setup(wh__xfer *x, const wh__opts *o, wh__delivery *dl, wh__endpoint *ep);
/* A libcurl share object for one dispatcher: every transfer of it resumes the
   TLS sessions of the others (a new connection to an endpoint, after the
   endpoint closed the last one, skips the full handshake) and uses the same
   DNS cache. Freed after every easy handle using it. */
struct wh__share;
int wh__share_new(struct wh__share **out);
void wh__share_free(struct wh__share *sh);

/* The proxy a request to ep goes through (NULL: none), and whether it is the operator's. */
const char *wh__xfer_proxy(const wh__opts *o, const wh__endpoint *ep, int *trusted);
/* Turn curl's verdict into an outcome. */
void wh__xfer_outcome(wh__xfer *x, CURLcode code, wh__outcome *out);
/* Drop per-request state, keep the easy handle (and so its connection cache use). */
void wh__xfer_reset(wh__xfer *x);
void wh__xfer_free(wh__xfer *x);

#endif
