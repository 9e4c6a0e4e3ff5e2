/*
 * The Casebook demo: an administrator registers an outgoing webhook, the
 * application emits the person-CREATE event of the product page and a few
 * more, and a receiver (here in the same process, on 127.0.0.1) shows what it
 * got and checks every signature with wh_verify(), as a receiving system would.
 *
 *   casebook_demo [STORE]      STORE: default "sqlite:casebook-demo.db" (in the
 *                              working folder), or "memory:", or another store string
 *
 * With the SQLite store the endpoint registered by an earlier run is found
 * again (and pointed at this run's receiver), as in a real deployment.
 */
#include <webhook/webhook.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the receiving system ------------------------------------------------- */

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char secret[128]; /* shared with the sender out of band, as in the admin screen */
  int received, verified;
} receiver;

typedef struct {
  char *body;
  size_t len;
} upload;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *data_size, void **state)
{
  receiver *rx = cls;
  (void)url;
  (void)version;
  upload *up = *state;
  if (!up) { /* first call: headers only */
    *state = calloc(1, sizeof *up);
    return *state ? MHD_YES : MHD_NO;
  }
  if (*data_size) { /* a piece of the body */
    char *p = realloc(up->body, up->len + *data_size + 1);
    if (!p)
      return MHD_NO;
    memcpy(p + up->len, data, *data_size);
    up->body = p;
    up->len += *data_size;
    up->body[up->len] = '\0';
    *data_size = 0;
    return MHD_YES;
  }
  /* The whole request is here: verify it the way any receiver would. */
  const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
  const char *ts = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-timestamp");
  const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-signature");
  pthread_mutex_lock(&rx->mu);
  int rc = wh_verify(rx->secret, id ? id : "", ts ? ts : "", sig ? sig : "", up->body ? up->body : "", up->len,
                     0);
  rx->received++;
  rx->verified += rc == WH_OK;
  printf("\n--- receiver: %s %s, %zu bytes\n", method, url, up->len);
  printf("content-type:      %s\n", MHD_lookup_connection_value(c, MHD_HEADER_KIND, "content-type"));
  printf("user-agent:        %s\n", MHD_lookup_connection_value(c, MHD_HEADER_KIND, "user-agent"));
  printf("webhook-id:        %s\nwebhook-timestamp: %s\nwebhook-signature: %s\n", id, ts, sig);
  printf("x-casebook-tenant: %s\n", MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-casebook-tenant"));
  printf("body:              %s\n", up->body ? up->body : "");
  printf("signature:         %s\n", rc == WH_OK ? "verified with the endpoint's secret" : wh_error_last());
  pthread_cond_broadcast(&rx->cv);
  pthread_mutex_unlock(&rx->mu);

  free(up->body);
  free(up);
  *state = NULL;
  struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret = MHD_queue_response(c, rc == WH_OK ? MHD_HTTP_NO_CONTENT : MHD_HTTP_UNAUTHORIZED, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* ---- the sending application ------------------------------------------------ */

static void on_result(const wh_result *r, void *ud)
{
  (void)ud;
  printf("--- sender: %s to %s: %s (attempt %d, HTTP %d)%s%s\n", wh_result_message_id(r),
         wh_result_endpoint_id(r),
         wh_result_outcome(r) == WH_DELIVERED ? "delivered"
         : wh_result_outcome(r) == WH_RETRYING ? "will retry"
                                               : "failed",
         wh_result_attempt(r), wh_result_http_status(r), wh_result_error(r) ? ": " : "",
         wh_result_error(r) ? wh_result_error(r) : "");
}

static const char *person =
  "{\"marital_status\":{\"name\":\"Single adult\",\"id\":\"6120b81e-221c-11ea-978f-2e728ce88125\"},"
  "\"date_of_birth\":\"02/13/2023\","
  "\"sex\":{\"name\":\"Male\",\"id\":\"b149d056-6a9f-46ee-afde-1aec972dbe9f\"},"
  "\"primary_language\":{\"name\":\"English\",\"id\":\"f045ef20-221a-11ea-978f-2e728ce88125\"},"
  "\"last_name\":\"Doe\",\"hispanic_or_latino\":\"no\",\"id\":\"eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543\","
  "\"first_name\":\"John\",\"highest_education_grade\":{\"name\":\"12\",\"id\":\"7772ff4a-221d-11ea-978f-"
  "2e728ce88125\"}}";

static wh_dispatcher *dispatcher;

/* Build and emit one event; its message id goes to msg_id (WH_ID_MAX bytes). */
static int emit(const char *rtype, const char *etype, const char *resource, int64_t when_us, char *msg_id)
{
  wh_event *ev;
  int rc = wh_event_new(&ev, rtype, etype);
  if (!rc)
    rc = wh_event_set_resource_json(ev, resource);
  if (!rc)
    rc = wh_event_set_tenant_id(ev, "be461bd7-2d91-41c6-ab29-4389066bcc71");
  if (!rc)
    rc = wh_event_set_user_id(ev, "f9762deb-a115-412d-adf7-cf772807734a");
  if (!rc)
    rc = wh_event_set_resource_id(ev, "eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543");
  if (!rc && when_us)
    rc = wh_event_set_time(ev, when_us);
  if (rc) {
    fprintf(stderr, "event: %s\n", wh_error_last());
    wh_event_free(ev);
    return rc;
  }
  /* emit takes the event, whatever it returns. With the SQLite store it
     returns once the event is on disk. */
  if ((rc = wh_dispatcher_emit(dispatcher, ev, msg_id, WH_ID_MAX)))
    fprintf(stderr, "emit: %s: %s\n", wh_strerror(rc), wh_error_last());
  return rc;
}

/* The id of the endpoint called name, from the registry's JSON list. */
static int find_endpoint(wh_registry *reg, const char *name, char id[WH_ID_MAX])
{
  char *list = NULL;
  if (wh_endpoint_list_json(reg, &list) != WH_OK)
    return 0;
  char key[300];
  snprintf(key, sizeof key, "\"name\":\"%s\"", name);
  /* Each object starts with "id"; find the one before our name. */
  const char *at = strstr(list, key), *idp = NULL;
  for (const char *p = list; at && (p = strstr(p, "{\"id\":\"")) && p < at; p++)
    idp = p + 7;
  int found = idp && sscanf(idp, "%63[^\"]", id) == 1;
  wh_free(list);
  return found;
}

#define TRY(call)                                                                     \
  do {                                                                                \
    int rc_ = (call);                                                                 \
    if (rc_) {                                                                        \
      fprintf(stderr, "%s failed: %s: %s\n", #call, wh_strerror(rc_), wh_error_last()); \
      return 1;                                                                       \
    }                                                                                 \
  } while (0)

int main(int argc, char **argv)
{
  const char *store = argc > 1 ? argv[1] : "sqlite:casebook-demo.db";
  setvbuf(stdout, NULL, _IOLBF, 0);
  receiver rx = {.received = 0};
  pthread_mutex_init(&rx.mu, NULL);
  pthread_cond_init(&rx.cv, NULL);

  /* Listen on 127.0.0.1 only, on a port the system picks. */
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct MHD_Daemon *mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                                            NULL, NULL, on_request, &rx, MHD_OPTION_SOCK_ADDR, &addr,
                                            MHD_OPTION_END);
  if (!mhd) {
    fprintf(stderr, "cannot start the local receiver\n");
    return 1;
  }
  unsigned port = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/casebook/people", port);
  printf("libwebhook %s demo, store \"%s\", receiver on %s\n", wh_version(), store, url);

  /* Admin > Integrations > Outgoing > Create a New Webhook. */
  wh_registry *reg;
  TRY(wh_registry_open(&reg, store));
  char id[WH_ID_MAX];
  if (!find_endpoint(reg, "CRM people sync", id)) {
    TRY(wh_endpoint_add(reg, "CRM people sync", url, "Sends new and changed people to the CRM", id, sizeof id));
  } else {
    printf("found the endpoint of an earlier run in the store: %s\n", id);
    TRY(wh_endpoint_set_url(reg, id, url));
  }
  TRY(wh_endpoint_subscribe(reg, id, "people.*"));
  TRY(wh_endpoint_set_header(reg, id, "X-Casebook-Tenant", "be461bd7-2d91-41c6-ab29-4389066bcc71"));
  TRY(wh_endpoint_secret(reg, id, rx.secret, sizeof rx.secret));
  char *json;
  TRY(wh_endpoint_get_json(reg, id, &json));
  printf("registered: %s\n", json);
  wh_free(json);

  wh_dispatcher *d;
  TRY(wh_dispatcher_new(&d, reg));
  /* The receiver is on loopback, which the default network policy refuses. */
  TRY(wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, 1));
  TRY(wh_dispatcher_on_result(d, on_result, NULL));
  TRY(wh_dispatcher_start(d));
  dispatcher = d;

  /* The product page's event, with its own time, then a few more. */
  int sent = 0;
  char first[WH_ID_MAX], other[WH_ID_MAX];
  sent += emit("people", "CREATE", person, 1711479196818049LL, first) == WH_OK;
  sent += emit("people", "UPDATE", "{\"id\":\"eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543\",\"last_name\":\"Doe-Smith\"}", 0,
               other) == WH_OK;
  sent += emit("people", "DELETE", "{\"id\":\"eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543\"}", 0, other) == WH_OK;
  /* Not subscribed: cases.* does not match people.* and goes nowhere. */
  emit("cases", "CREATE", "{\"id\":\"c-1\",\"title\":\"Intake\"}", 0, other);

  TRY(wh_dispatcher_drain(d, 10000));
  /* The attempt log, as an admin screen would show it. */
  TRY(wh_message_get_json(reg, first, &json));
  printf("\n--- attempt log of %s:\n%s\n", first, json);
  wh_free(json);
  TRY(wh_dispatcher_stop(d, 5000));
  pthread_mutex_lock(&rx.mu);
  int received = rx.received, verified = rx.verified;
  pthread_mutex_unlock(&rx.mu);
  printf("\n%d events emitted for the endpoint, %d received, %d signatures verified\n", sent, received, verified);
  if (received > sent)
    printf("(%d of them were left pending by an earlier run and delivered now)\n", received - sent);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  MHD_stop_daemon(mhd);
  return received >= 3 && verified == received ? 0 : 1;
}
