/* Destination checks for proxied requests: see resolve.c. */
#ifndef WEBHOOK_DELIVERY_RESOLVE_H
#define WEBHOOK_DELIVERY_RESOLVE_H

#include "internal.h"

enum {
  WH__RESOLVE_OK = 1,       /* every address of the host is allowed */
  WH__RESOLVE_PENDING = 0,  /* being looked up: ask again in a moment */
  WH__RESOLVE_REFUSED = -1, /* the policy refuses it (why says which address) */
  WH__RESOLVE_FAILED = -2   /* the name does not resolve (why says how) */
};

typedef struct wh__resolver wh__resolver;

int wh__resolver_new(wh__resolver **out);
void wh__resolver_free(wh__resolver *r);
/* The policy's verdict on the host of url, from the cache; starts a lookup in
   the background when it has none. Never waits for DNS. */
int wh__resolver_check(wh__resolver *r, const char *url, char *why, size_t len);

#endif
