/* The attempt log as JSON, one shape for every store. See log.c. */
#ifndef WEBHOOK_STORES_LOG_H
#define WEBHOOK_STORES_LOG_H

#include "store.h"

#include <cjson/cJSON.h>

typedef struct {
  int64_t id;
  const char *ep_id;
  int state, attempts;
  int64_t due_ms, finished_ms;
} wh__log_delivery;

/* What a tenant view may see of the log: messages of its tenant (the
   payload's tenant_id), deliveries to its endpoints. */
typedef struct wh__log_filter {
  const char *tenant;
  const char *const *ep_ids; /* sorted */
  size_t n;
} wh__log_filter;
/* May f see the message whose payload is body? (f NULL: yes) */
int wh__log_message_visible(const wh__log_filter *f, const char *body, size_t len);
/* May f see a delivery to ep_id? (f NULL: yes) */
int wh__log_delivery_visible(const wh__log_filter *f, const char *ep_id);

/* {"id","event_type","created_at","payload":{...},"deliveries":[]} */
cJSON *wh__log_message_json(const char *id, const char *type, int64_t created_ms, const char *body);
/* {"endpoint_id","state","attempts_made","next_attempt_at","finished_at","attempts":[]} */
cJSON *wh__log_delivery_json(const wh__log_delivery *d);
/* {"attempt","at","duration_ms","http_status","error","response"} */
cJSON *wh__log_attempt_json(const wh__attempt_rec *a);
/* A failed delivery in an endpoint's list. */
cJSON *wh__log_failed_json(const char *msg_id, const char *type, const char *ep_id, int attempts,
                           int64_t finished_ms, int last_status, const char *last_error);
/* Order an array of failed deliveries by finish time, oldest first. */
void wh__log_sort_failed(cJSON *arr);
/* Print and free doc; text for wh_free(). */
int wh__log_print(cJSON *doc, char **json);

#endif
