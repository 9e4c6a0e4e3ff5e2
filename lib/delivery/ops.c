/*
 * Operational events: what the dispatcher tells operators about endpoints,
 * as events of resource_type "webhook" (webhook.ENDPOINT_DISABLED,
 * .ATTEMPT_EXHAUSTED, .ENDPOINT_FAILING, .ENDPOINT_RECOVERED). They go through
 * the same path as the host's events (the store, signing, retries, the
 * attempt log), with the endpoint's tenant, and only to endpoints whose
 * filters name "webhook" explicitly: an endpoint subscribed to everything did
 * not ask for the library's own traffic.
 *
 * Loops and storms: an operational event's own delivery (flag
 * WH__MSG_OPERATIONAL) and a test event's never set one off; no event about an
 * endpoint goes to that endpoint; ATTEMPT_EXHAUSTED is bounded per endpoint
 * (a dead endpoint with a backlog ends many deliveries at once: the breaker's
 * ENDPOINT_FAILING is the news, not each of them); deliveries failed because
 * their endpoint was disabled or removed are covered by that event.
 */
#include "dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kinds[WH__OPS] = {"ENDPOINT_DISABLED", "ATTEMPT_EXHAUSTED", "ENDPOINT_FAILING",
                                           "ENDPOINT_RECOVERED"};

int wh__ops_exhausted_allowed(wh__ep_counters *e, int64_t now)
{
  if (e->ops_ms == 0) {
    e->ops_tokens = WH__OPS_EXHAUSTED_BURST;
  } else if (now > e->ops_ms) {
    e->ops_tokens += (double)(now - e->ops_ms) * WH__OPS_EXHAUSTED_PER_S / 1000.0;
    if (e->ops_tokens > WH__OPS_EXHAUSTED_BURST)
      e->ops_tokens = WH__OPS_EXHAUSTED_BURST;
  }
  e->ops_ms = now;
  if (e->ops_tokens < 1.0)
    return 0;
  e->ops_tokens -= 1.0;
  return 1;
}

void wh__op_set(wh__op *op, int kind, const char *ep_id, const char *msg_id, const char *reason)
{
  op->kind = kind;
  snprintf(op->ep_id, sizeof op->ep_id, "%s", ep_id);
  snprintf(op->msg_id, sizeof op->msg_id, "%s", msg_id ? msg_id : "");
  snprintf(op->reason, sizeof op->reason, "%s", reason ? reason : "");
}

static int subscribed(const wh__endpoint *ep, const char *type)
{
  for (size_t i = 0; i < ep->nfilters; i++)
    if (wh__pattern_names(ep->filters[i], type))
      return 1;
  return 0;
}

/* The endpoints that receive it: of the subject's tenant and the platform,
   subscribed explicitly, not the subject. Keeps them first in eps, drops the
   others' references; returns how many. */
static size_t recipients(wh__endpoint **eps, size_t n, const char *type, const char *subject)
{
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (subscribed(eps[i], type) && strcmp(eps[i]->id, subject) != 0)
      eps[k++] = eps[i];
    else
      wh__endpoint_unref(eps[i]);
  }
  return k;
}

int wh__ops_emit(wh_dispatcher *d, wh_registry *reg, const wh__op *op)
{
  wh__endpoint *subject = wh__registry_get(reg, op->ep_id);
  if (!subject)
    return WH_OK; /* removed meanwhile: nobody left to tell about it */
  char type[64], id[WH_ID_MAX];
  snprintf(type, sizeof type, "webhook.%s", kinds[op->kind]);
  wh__endpoint **eps = NULL;
  size_t n = 0;
  int rc = wh__registry_match(reg, subject->tenant, type, &eps, &n);
  if (!rc)
    n = recipients(eps, n, type, subject->id);
  char *json = NULL;
  wh__msg *m = NULL;
  if (!rc && n > 0)
    rc = wh__endpoint_event_json(subject, kinds[op->kind], op->reason, op->msg_id[0] ? op->msg_id : NULL, &json);
  if (!rc && n > 0 && !(rc = wh__make_id("msg_", id)) && !(m = wh__msg_new(id, type, json, strlen(json), wh__now_ms())))
    rc = wh__oom();
  free(json);
  wh__endpoint_unref(subject);
  if (rc || n == 0) {
    for (size_t i = 0; i < n; i++)
      wh__endpoint_unref(eps[i]);
    free(eps);
    return rc;
  }
  m->flags = WH__MSG_OPERATIONAL;
  return wh__dispatcher_send(d, m, eps, n); /* takes m and eps */
}
