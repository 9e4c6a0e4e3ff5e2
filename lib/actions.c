/*
 * What an administrator does through the registry, on the root or on a tenant
 * view: read the attempt log, list failed deliveries, replay, recover, send a
 * test event, purge. A view reaches only its tenant's messages (by the
 * payload's tenant_id) and endpoints; anything else is WH_ENOTFOUND, as if it
 * did not exist.
 *
 * Replay, recovery and test events are written to the store; the dispatchers
 * running on the registry are told (wh__registry_notify) and take them from
 * there. A durable store keeps them for the next start when none runs; the
 * memory store delivers only while one runs, so there they need one.
 */
#include "internal.h"
#include "stores/log.h"
#include "stores/store.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* The filter of a view for the log (none on the root). Free with filter_free. */
static int filter_make(wh_registry *reg, wh__log_filter *f)
{
  memset(f, 0, sizeof *f);
  f->tenant = wh_registry_tenant_id(reg);
  if (!f->tenant)
    return WH_OK;
  char **ids;
  int rc = wh__registry_tenant_ids(reg, &ids, &f->n);
  f->ep_ids = (const char *const *)ids;
  return rc;
}

static void filter_free(wh__log_filter *f) { wh__strv_free((char **)f->ep_ids, f->n); }

static int message_json(wh_registry *reg, const char *msg_id, char **json)
{
  int rc0 = wh__registry_check(reg, "message");
  if (rc0)
    return rc0;
  wh__store *s = wh__registry_store(reg);
  wh__log_filter f;
  int rc = filter_make(reg, &f);
  if (!rc)
    rc = s->ops->message_json(s, msg_id, f.tenant ? &f : NULL, json);
  filter_free(&f);
  return rc;
}

int wh_message_get_json(wh_registry *reg, const char *msg_id, char **json_out)
{
  if (!reg || !msg_id || !json_out)
    return wh__fail(WH_EINVAL, "message json: %s must not be NULL",
                    !reg ? "registry" : !msg_id ? "msg_id" : "json_out");
  return message_json(reg, msg_id, json_out);
}

int wh_endpoint_failed_json(wh_registry *reg, const char *id, int64_t since_unix_ms, size_t limit,
                            char **json_out)
{
  if (!reg || !id || !json_out)
    return wh__fail(WH_EINVAL, "failed deliveries: %s must not be NULL",
                    !reg ? "registry" : !id ? "id" : "json_out");
  int rc0 = wh__registry_check(reg, "failed deliveries");
  if (rc0)
    return rc0;
  wh__endpoint *ep = wh__registry_get(reg, id);
  if (!ep)
    return wh__fail(WH_ENOTFOUND, "failed deliveries: endpoint \"%.64s\": no such endpoint", id);
  wh__endpoint_unref(ep);
  wh__store *s = wh__registry_store(reg);
  return s->ops->failed_json(s, id, since_unix_ms, limit ? limit : (size_t)-1 / 2, json_out);
}

int wh_registry_purge(wh_registry *reg, int64_t before_unix_ms, size_t *count_out)
{
  int rc0 = wh__registry_check(reg, "purge");
  if (rc0)
    return rc0;
  if (wh_registry_tenant_id(reg))
    return wh__fail(WH_EINVAL, "purge: on the root registry only, not on a tenant view");
  size_t n = 0;
  wh__store *s = wh__registry_store(reg);
  int rc = s->ops->purge(s, before_unix_ms, &n);
  if (count_out)
    *count_out = n;
  return rc;
}

/* ---- replay, recovery, test events ---------------------------------------------------- */

/* The memory store delivers what is queued only while a dispatcher runs. */
static int can_queue(wh_registry *reg, const char *what)
{
  wh_registry *root = wh__registry_root(reg);
  if (wh__registry_store(root)->ops->durable || wh__registry_running(root))
    return WH_OK;
  return wh__fail(WH_ESTATE, "%s: no dispatcher is running on this registry (the memory store delivers only "
                             "while one runs)", what);
}

/* What replay needs to know of a message as reg sees it: its tenant and the
   endpoints it has deliveries for (on a view: the view's only). */
typedef struct {
  char *tenant;
  char **ep_ids;
  size_t n;
} msg_info;

static void msg_info_free(msg_info *m)
{
  free(m->tenant);
  wh__strv_free(m->ep_ids, m->n);
}

static int msg_info_get(wh_registry *reg, const char *msg_id, msg_info *out)
{
  memset(out, 0, sizeof *out);
  char *json = NULL;
  int rc = message_json(reg, msg_id, &json);
  if (rc)
    return rc;
  cJSON *doc = cJSON_Parse(json);
  wh_free(json);
  const char *tenant = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "payload"), "tenant_id"));
  cJSON *dl = cJSON_GetObjectItem(doc, "deliveries");
  int n = cJSON_IsArray(dl) ? cJSON_GetArraySize(dl) : 0;
  out->ep_ids = calloc((size_t)n + 1, sizeof *out->ep_ids);
  rc = doc && out->ep_ids && (!tenant || (out->tenant = wh__strdup(tenant))) ? WH_OK : wh__oom();
  for (cJSON *it = dl ? dl->child : NULL; !rc && it; it = it->next) {
    const char *ep = cJSON_GetStringValue(cJSON_GetObjectItem(it, "endpoint_id"));
    if (ep && !(out->ep_ids[out->n++] = wh__strdup(ep)))
      rc = wh__oom();
  }
  cJSON_Delete(doc);
  if (rc)
    msg_info_free(out);
  return rc;
}

int wh_message_replay(wh_registry *reg, const char *msg_id, const char *endpoint_id, size_t *count_out)
{
  if (count_out)
    *count_out = 0;
  if (!reg || !msg_id)
    return wh__fail(WH_EINVAL, "replay: %s must not be NULL", reg ? "msg_id" : "registry");
  msg_info mi;
  int rc = msg_info_get(reg, msg_id, &mi);
  if (rc)
    return rc;
  wh__endpoint *ep = endpoint_id ? wh__registry_get(reg, endpoint_id) : NULL;
  if (endpoint_id && !ep)
    rc = wh__fail(WH_ENOTFOUND, "replay: endpoint \"%.64s\": no such endpoint", endpoint_id);
  /* One tenant's endpoint never receives another tenant's events, replayed or not. */
  else if (ep && ep->tenant && (!mi.tenant || strcmp(ep->tenant, mi.tenant) != 0))
    rc = wh__fail(WH_EINVAL, "replay: endpoint \"%.64s\" belongs to a tenant, and the message is not of that tenant",
                  endpoint_id);
  else
    rc = can_queue(reg, "replay");
  wh__endpoint_unref(ep);
  wh__store *s = wh__registry_store(reg);
  size_t total = 0;
  if (!rc && (endpoint_id || !wh_registry_tenant_id(reg))) {
    rc = s->ops->requeue(s, msg_id, endpoint_id, 0, &total);
  } else {
    /* A view without an endpoint: each of its own endpoints the message went to. */
    for (size_t i = 0; !rc && i < mi.n; i++) {
      size_t k = 0;
      rc = s->ops->requeue(s, msg_id, mi.ep_ids[i], 0, &k);
      total += k;
    }
  }
  msg_info_free(&mi);
  if (count_out)
    *count_out = total;
  if (total)
    wh__registry_notify(wh__registry_root(reg));
  return rc;
}

int wh_endpoint_recover(wh_registry *reg, const char *endpoint_id, int64_t since_unix_ms, size_t *count_out)
{
  if (count_out)
    *count_out = 0;
  if (!reg || !endpoint_id)
    return wh__fail(WH_EINVAL, "recover: %s must not be NULL", reg ? "endpoint_id" : "registry");
  int rc0 = wh__registry_check(reg, "recover");
  if (rc0)
    return rc0;
  wh__endpoint *ep = wh__registry_get(reg, endpoint_id);
  if (!ep)
    return wh__fail(WH_ENOTFOUND, "recover: endpoint \"%.64s\": no such endpoint", endpoint_id);
  wh__endpoint_unref(ep);
  int rc = can_queue(reg, "recover");
  if (rc)
    return rc;
  wh__store *s = wh__registry_store(reg);
  size_t n = 0;
  rc = s->ops->requeue(s, NULL, endpoint_id, since_unix_ms, &n);
  if (count_out)
    *count_out = n;
  if (n)
    wh__registry_notify(wh__registry_root(reg));
  return rc;
}

/* The test event's envelope: webhook.TEST about the endpoint, of its tenant. */
static int test_body(const wh__endpoint *ep, char **json)
{
  cJSON *res = cJSON_CreateObject();
  cJSON_AddStringToObject(res, "endpoint_id", ep->id);
  cJSON_AddStringToObject(res, "endpoint_name", ep->name);
  char *text = res ? cJSON_PrintUnformatted(res) : NULL;
  cJSON_Delete(res);
  if (!text)
    return wh__oom();
  wh_event *ev = NULL;
  int rc = wh_event_new(&ev, "webhook", "TEST");
  if (!rc)
    rc = wh_event_set_resource_json(ev, text);
  if (!rc)
    rc = wh_event_set_tenant_id(ev, ep->tenant);
  if (!rc)
    rc = wh_event_set_resource_id(ev, ep->id);
  if (!rc)
    rc = wh_event_to_json(ev, json);
  wh_event_free(ev);
  free(text);
  return rc;
}

int wh_endpoint_send_test(wh_registry *reg, const char *endpoint_id, char *msg_id_out, size_t len)
{
  if (!reg || !endpoint_id)
    return wh__fail(WH_EINVAL, "test event: %s must not be NULL", reg ? "endpoint_id" : "registry");
  int rc0 = wh__registry_check(reg, "test event");
  if (rc0)
    return rc0;
  if (msg_id_out && len < WH_ID_MAX)
    return wh__fail(WH_ERANGE, "test event: message id buffer of %zu bytes, at least WH_ID_MAX (%d) needed", len,
                    WH_ID_MAX);
  wh__endpoint *ep = wh__registry_get(reg, endpoint_id);
  if (!ep)
    return wh__fail(WH_ENOTFOUND, "test event: endpoint \"%.64s\": no such endpoint", endpoint_id);
  char id[WH_ID_MAX], *body = NULL;
  wh__msg *m = NULL;
  int rc = can_queue(reg, "test event");
  if (!rc)
    rc = test_body(ep, &body);
  if (!rc)
    rc = wh__make_id("msg_", id);
  if (!rc && !(m = wh__msg_new(id, "webhook.TEST", body, strlen(body), wh__now_ms())))
    rc = wh__oom();
  free(body);
  if (!rc) {
    /* One attempt, whatever the endpoint's filters and state (see the dispatcher). */
    m->flags = WH__MSG_TEST;
    wh__store *s = wh__registry_store(reg);
    const char *ep_ids[1] = {ep->id};
    int64_t dlv_id;
    wh__enq e = {.m = m, .ep_ids = ep_ids, .n = 1, .ids = &dlv_id};
    rc = s->ops->enqueue(s, &e, 1, 0);
  }
  wh__msg_unref(m);
  wh__endpoint_unref(ep);
  if (rc)
    return rc;
  wh__registry_notify(wh__registry_root(reg));
  if (msg_id_out)
    memcpy(msg_id_out, id, strlen(id) + 1);
  return WH_OK;
}
