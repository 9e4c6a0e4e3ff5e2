/*
 * The Casebook demo, multi-tenant: the administrators of two customer
 * accounts (tenants "Acme" and "Globex") each register an outgoing webhook
 * under Admin > Integrations > Outgoing, through a view of the registry limited
 * to their tenant. The application emits the person-CREATE event of the product
 * page and a few more, for both tenants; each customer's receiving system
 * (here in the same process, on 127.0.0.1) shows what it got, checks every
 * signature with wh_verify() as a receiving system would, and checks that it
 * never got another tenant's event.
 *
 *   casebook_demo [STORE]      STORE: default "sqlite:casebook-demo.db" (in the
 *                              working folder), or "memory:", or another store string
 *
 * With the SQLite store the endpoints registered by an earlier run are found
 * again (and pointed at this run's receivers), as in a real deployment.
 */
#include <webhook/webhook.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACME "be461bd7-2d91-41c6-ab29-4389066bcc71"
#define GLOBEX "5a0c3e42-8d4e-4c39-9a51-0f3b2c6d7e18"

/* ---- the receiving systems: one per customer --------------------------------- */

typedef struct {
  const char *name, *tenant, *path;
  char id[WH_ID_MAX];  /* its endpoint */
  char secret[128]; /* shared with the sender out of band, as in the admin screen */
  int received, verified, foreign;
} customer;

typedef struct {
  pthread_mutex_t mu;
  customer *c[2];
} receiver;

typedef struct {
  char *body;
  size_t len;
} upload;

/* Whose event is it? The envelope's tenant_id, as a receiver reads it. */
static int body_has_tenant(const char *body, const char *tenant)
{
  char key[128];
  snprintf(key, sizeof key, "\"tenant_id\":\"%s\"", tenant);
  return body && strstr(body, key) != NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *data_size, void **state)
{
  receiver *rx = cls;
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
  customer *who = NULL;
  for (int i = 0; i < 2; i++)
    if (strcmp(url, rx->c[i]->path) == 0)
      who = rx->c[i];
  int rc = who ? wh_verify(who->secret, id ? id : "", ts ? ts : "", sig ? sig : "", up->body ? up->body : "",
                           up->len, 0)
               : WH_ENOTFOUND;
  if (who) {
    who->received++;
    who->verified += rc == WH_OK;
    who->foreign += !body_has_tenant(up->body, who->tenant);
  }
  printf("\n--- %s's receiver: %s %s, %zu bytes\n", who ? who->name : "nobody", method, url, up->len);
  printf("webhook-id:        %s\nwebhook-timestamp: %s\nwebhook-signature: %s\n", id, ts, sig);
  printf("body:              %s\n", up->body ? up->body : "");
  printf("signature:         %s\n", rc == WH_OK ? "verified with the endpoint's secret" : wh_error_last());
  if (who)
    printf("tenant:            %s\n", body_has_tenant(up->body, who->tenant) ? "ours" : "ANOTHER TENANT'S");
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

/* Build and emit one event of a tenant about resource rid; its message id goes
   to msg_id (WH_ID_MAX bytes). */
static int emit(const char *tenant, const char *rtype, const char *etype, const char *rid, const char *resource,
                int64_t when_us, char *msg_id)
{
  wh_event *ev;
  int rc = wh_event_new(&ev, rtype, etype);
  if (!rc)
    rc = wh_event_set_resource_json(ev, resource);
  if (!rc)
    rc = wh_event_set_tenant_id(ev, tenant);
  if (!rc)
    rc = wh_event_set_user_id(ev, "f9762deb-a115-412d-adf7-cf772807734a");
  if (!rc)
    rc = wh_event_set_resource_id(ev, rid);
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

/* One customer's administrator, logged in: a view of the registry limited to
   their tenant. Creates (or finds) their webhook and reads its secret. */
static int admin_setup(wh_registry *reg, customer *cu, unsigned port)
{
  wh_registry *view;
  char url[160], id[WH_ID_MAX], *json;
  snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, cu->path);
  TRY(wh_registry_open_tenant(&view, reg, cu->tenant));
  /* Both customers call theirs "CRM people sync": names are per tenant. */
  if (!find_endpoint(view, "CRM people sync", id)) {
    TRY(wh_endpoint_add(view, "CRM people sync", url, "Sends new and changed people to our CRM", id, sizeof id));
  } else {
    printf("%s: found the endpoint of an earlier run in the store: %s\n", cu->name, id);
    TRY(wh_endpoint_set_url(view, id, url));
  }
  TRY(wh_endpoint_subscribe(view, id, "people.*"));
  TRY(wh_endpoint_secret(view, id, cu->secret, sizeof cu->secret));
  memcpy(cu->id, id, sizeof cu->id);
  TRY(wh_endpoint_get_json(view, id, &json));
  printf("%s registered: %s\n", cu->name, json);
  wh_free(json);
  wh_registry_free(view);
  return 0;
}

int main(int argc, char **argv)
{
  const char *store = argc > 1 ? argv[1] : "sqlite:casebook-demo.db";
  setvbuf(stdout, NULL, _IOLBF, 0);
  customer acme = {.name = "Acme", .tenant = ACME, .path = "/acme/crm"};
  customer globex = {.name = "Globex", .tenant = GLOBEX, .path = "/globex/crm"};
  receiver rx = {.c = {&acme, &globex}};
  pthread_mutex_init(&rx.mu, NULL);

  /* Listen on 127.0.0.1 only, on a port the system picks. */
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct MHD_Daemon *mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                                            NULL, NULL, on_request, &rx, MHD_OPTION_SOCK_ADDR, &addr,
                                            MHD_OPTION_END);
  if (!mhd) {
    fprintf(stderr, "cannot start the local receivers\n");
    return 1;
  }
  unsigned port = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
  printf("libwebhook %s demo, store \"%s\", receivers on 127.0.0.1:%u\n", wh_version(), store, port);

  /* Admin > Integrations > Outgoing > Create a New Webhook, in each account. */
  wh_registry *reg;
  TRY(wh_registry_open(&reg, store));
  if (admin_setup(reg, &acme, port) || admin_setup(reg, &globex, port))
    return 1;

  /* One dispatcher delivers every tenant's events, from the root registry. */
  wh_dispatcher *d;
  TRY(wh_dispatcher_new(&d, reg));
  /* The receivers are on loopback, which the default network policy refuses. */
  TRY(wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, 1));
  TRY(wh_dispatcher_on_result(d, on_result, NULL));
  TRY(wh_dispatcher_start(d));
  dispatcher = d;

  /* The product page's event (Acme's), with its own time, then a few more of
     both customers. */
  int acme_sent = 0, globex_sent = 0;
  char first[WH_ID_MAX], other[WH_ID_MAX], globex_first[WH_ID_MAX];
  const char *john = "eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543", *jane = "0b7d6c1a-5f2e-4e8b-9d3c-7a1f2e3d4c5b";
  acme_sent += emit(ACME, "people", "CREATE", john, person, 1711479196818049LL, first) == WH_OK;
  acme_sent += emit(ACME, "people", "UPDATE", john,
                    "{\"id\":\"eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543\",\"last_name\":\"Doe-Smith\"}", 0,
                    other) == WH_OK;
  globex_sent += emit(GLOBEX, "people", "CREATE", jane,
                      "{\"id\":\"0b7d6c1a-5f2e-4e8b-9d3c-7a1f2e3d4c5b\",\"first_name\":\"Jane\","
                      "\"last_name\":\"Roe\"}",
                      0, globex_first) == WH_OK;
  acme_sent += emit(ACME, "people", "DELETE", john, "{\"id\":\"eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543\"}", 0,
                    other) == WH_OK;
  /* Not subscribed: cases.* does not match people.* and goes nowhere. */
  emit(ACME, "cases", "CREATE", "c-1", "{\"id\":\"c-1\",\"title\":\"Intake\"}", 0, other);

  TRY(wh_dispatcher_drain(d, 10000));
  /* The attempt log, as Acme's admin screen would show it: through Acme's view,
     which does not even see that Globex's message exists. */
  wh_registry *acme_view;
  char *json;
  TRY(wh_registry_open_tenant(&acme_view, reg, ACME));
  TRY(wh_message_get_json(acme_view, first, &json));
  printf("\n--- attempt log of %s, seen by Acme's administrator:\n%s\n", first, json);
  wh_free(json);
  int rc = wh_message_get_json(acme_view, globex_first, &json);
  printf("--- Globex's message %s, asked for by Acme's administrator: %s\n", globex_first,
         rc == WH_ENOTFOUND ? "not found (as if it did not exist)" : "VISIBLE: a leak");
  if (rc == WH_OK)
    wh_free(json);
  wh_registry_free(acme_view);

  /* What the operator's dashboard shows (and a Prometheus scrape would read
     with wh_dispatcher_metrics_text): the totals, and each customer's endpoint. */
  TRY(wh_dispatcher_stats_json(d, &json));
  printf("\n--- stats: %s\n", json);
  wh_free(json);
  for (int i = 0; i < 2; i++) {
    TRY(wh_dispatcher_endpoint_stats_json(d, rx.c[i]->id, &json));
    printf("--- %s's endpoint: %s\n", rx.c[i]->name, json);
    wh_free(json);
  }
  TRY(wh_dispatcher_stop(d, 5000));

  pthread_mutex_lock(&rx.mu);
  int ok = rc == WH_ENOTFOUND;
  printf("\n");
  for (int i = 0; i < 2; i++) {
    customer *cu = rx.c[i];
    int sent = cu == &acme ? acme_sent : globex_sent;
    printf("%s: %d events emitted for its endpoint, %d received, %d signatures verified, %d of another tenant\n",
           cu->name, sent, cu->received, cu->verified, cu->foreign);
    if (cu->received > sent)
      printf("(%d of them were left pending by an earlier run and delivered now)\n", cu->received - sent);
    ok = ok && cu->received >= sent && cu->verified == cu->received && cu->foreign == 0;
  }
  pthread_mutex_unlock(&rx.mu);
  printf("%s\n", ok ? "each customer received only its own events" : "SOMETHING WENT WRONG");
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  MHD_stop_daemon(mhd);
  return ok ? 0 : 1;
}
