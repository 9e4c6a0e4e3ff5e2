/* The attempt log as JSON: the same document whichever store answers. */
#include "log.h"

#include <stdlib.h>
#include <string.h>

static void add_time(cJSON *o, const char *key, int64_t ms)
{
  if (ms > 0) {
    char t[64];
    wh__iso_ms(ms, t);
    cJSON_AddStringToObject(o, key, t);
  } else {
    cJSON_AddNullToObject(o, key);
  }
}

int wh__log_message_visible(const wh__log_filter *f, const char *body, size_t len)
{
  if (!f)
    return 1;
  cJSON *doc = cJSON_ParseWithLength(body, len);
  const char *tenant = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "tenant_id"));
  int ok = tenant && strcmp(tenant, f->tenant) == 0;
  cJSON_Delete(doc);
  return ok;
}

static int by_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

int wh__log_delivery_visible(const wh__log_filter *f, const char *ep_id)
{
  return !f || (f->n && bsearch(&ep_id, f->ep_ids, f->n, sizeof *f->ep_ids, by_str) != NULL);
}

static const char *state_name(int state)
{
  return state == WH__DLV_DELIVERED ? "delivered" : state == WH__DLV_FAILED ? "failed" : "pending";
}

cJSON *wh__log_message_json(const char *id, const char *type, int64_t created_ms, const char *body)
{
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  cJSON_AddStringToObject(o, "id", id);
  cJSON_AddStringToObject(o, "event_type", type);
  add_time(o, "created_at", created_ms);
  /* The exact bytes sent, which are JSON already. */
  cJSON_AddItemToObject(o, "payload", cJSON_CreateRaw(body));
  cJSON_AddItemToObject(o, "deliveries", cJSON_CreateArray());
  return o;
}

cJSON *wh__log_delivery_json(const wh__log_delivery *d)
{
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  cJSON_AddStringToObject(o, "endpoint_id", d->ep_id);
  cJSON_AddStringToObject(o, "state", state_name(d->state));
  cJSON_AddNumberToObject(o, "attempts_made", d->attempts);
  add_time(o, "next_attempt_at", d->state == WH__DLV_PENDING ? d->due_ms : 0);
  add_time(o, "finished_at", d->state == WH__DLV_PENDING ? 0 : d->finished_ms);
  cJSON_AddItemToObject(o, "attempts", cJSON_CreateArray());
  return o;
}

cJSON *wh__log_attempt_json(const wh__attempt_rec *a)
{
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  cJSON_AddNumberToObject(o, "attempt", a->attempt);
  add_time(o, "at", a->at_ms);
  cJSON_AddNumberToObject(o, "duration_ms", (double)a->duration_ms);
  if (a->http_status)
    cJSON_AddNumberToObject(o, "http_status", a->http_status);
  else
    cJSON_AddNullToObject(o, "http_status");
  if (a->error)
    cJSON_AddStringToObject(o, "error", a->error);
  else
    cJSON_AddNullToObject(o, "error");
  /* Response bodies are text from strangers: kept as a string only when they
     are valid UTF-8 without NUL, else summarised. */
  if (!a->response || a->response_len == 0) {
    cJSON_AddNullToObject(o, "response");
  } else if (wh__utf8_valid(a->response, a->response_len) && !memchr(a->response, 0, a->response_len)) {
    char *copy = wh__strndup(a->response, a->response_len);
    cJSON_AddStringToObject(o, "response", copy ? copy : "");
    free(copy);
  } else {
    cJSON_AddStringToObject(o, "response", "(binary response not shown)");
  }
  return o;
}

cJSON *wh__log_failed_json(const char *msg_id, const char *type, const char *ep_id, int attempts,
                           int64_t finished_ms, int last_status, const char *last_error)
{
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  cJSON_AddStringToObject(o, "message_id", msg_id);
  cJSON_AddStringToObject(o, "event_type", type);
  cJSON_AddStringToObject(o, "endpoint_id", ep_id);
  cJSON_AddNumberToObject(o, "attempts_made", attempts);
  add_time(o, "finished_at", finished_ms);
  if (last_status)
    cJSON_AddNumberToObject(o, "last_http_status", last_status);
  else
    cJSON_AddNullToObject(o, "last_http_status");
  if (last_error)
    cJSON_AddStringToObject(o, "last_error", last_error);
  else
    cJSON_AddNullToObject(o, "last_error");
  return o;
}

static int by_finish(const void *a, const void *b)
{
  const char *x = cJSON_GetStringValue(cJSON_GetObjectItem(*(cJSON *const *)a, "finished_at"));
  const char *y = cJSON_GetStringValue(cJSON_GetObjectItem(*(cJSON *const *)b, "finished_at"));
  return strcmp(x ? x : "", y ? y : "");
}

void wh__log_sort_failed(cJSON *arr)
{
  int n = arr ? cJSON_GetArraySize(arr) : 0;
  if (n < 2)
    return;
  cJSON **v = malloc((size_t)n * sizeof *v);
  if (!v)
    return;
  for (int i = n - 1; i >= 0; i--)
    v[i] = cJSON_DetachItemFromArray(arr, i);
  qsort(v, (size_t)n, sizeof *v, by_finish);
  for (int i = 0; i < n; i++)
    cJSON_AddItemToArray(arr, v[i]);
  free(v);
}

int wh__log_print(cJSON *doc, char **json)
{
  char *s = doc ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  if (!s)
    return wh__oom();
  *json = s;
  return WH_OK;
}
