/*
 * Incoming webhooks for a Casebook tenant: a small HTTP server with one URL per
 * incoming webhook, /in/<name>, each checked by a wh_receiver with its scheme
 * and secret(s). New authentic requests are answered 200 and shown (this is
 * where a real application would process them); duplicates (redeliveries,
 * replays) 200 without processing; the rest 4xx: 400 malformed or missing
 * headers, 401 bad signature or timestamp, 404 unknown webhook, 405 not a POST,
 * 413 body over 1 MiB; 503 when the store of seen ids fails (the sender retries).
 *
 *   incoming_receiver [--port N] [--store STORE] NAME=SCHEME:SECRET...
 *
 *   --port N       TCP port on 127.0.0.1 (default 8080; 0: any free port)
 *   --store STORE  where seen ids are kept: "memory:" (default), "sqlite:PATH",
 *                  "postgresql://..." (shared by several servers)
 *   NAME=SCHEME:SECRET   an incoming webhook at /in/NAME; SCHEME is standard,
 *                  github, stripe or slack. Give the same NAME again with another
 *                  secret during a rotation.
 *
 * Example:
 *   incoming_receiver --store sqlite:incoming.db \
 *       github-ci=github:'It'"'"'s a Secret to Everybody' \
 *       billing=stripe:whsec_test_secret crm=standard:whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
 * It prints "listening on http://127.0.0.1:PORT" once ready; SIGINT or SIGTERM stops it.
 */
#include <webhook/webhook.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_WEBHOOKS 64
#define MAX_HEADERS 256
#define MAX_BODY (1024 * 1024)

typedef struct {
  char name[64];
  wh_receiver *rc;
} webhook;

static webhook hooks[MAX_WEBHOOKS];
static int nhooks;
static volatile sig_atomic_t stop;

static void on_signal(int sig) { stop = sig; }

/* ---- configuration ------------------------------------------------------------- */

static webhook *find_hook(const char *name, size_t len)
{
  for (int i = 0; i < nhooks; i++)
    if (strlen(hooks[i].name) == len && memcmp(hooks[i].name, name, len) == 0)
      return &hooks[i];
  return NULL;
}

/* NAME=SCHEME:SECRET: a new webhook, or one more secret for a known one. */
static int add_hook(const char *spec, const char *store)
{
  const char *eq = strchr(spec, '='), *colon = eq ? strchr(eq + 1, ':') : NULL;
  if (!eq || !colon || eq == spec || (size_t)(eq - spec) >= sizeof hooks[0].name) {
    fprintf(stderr, "incoming_receiver: \"%s\": expected NAME=SCHEME:SECRET\n", spec);
    return -1;
  }
  char scheme[16];
  snprintf(scheme, sizeof scheme, "%.*s", (int)(colon - eq - 1), eq + 1);
  webhook *h = find_hook(spec, (size_t)(eq - spec));
  if (!h) {
    if (nhooks == MAX_WEBHOOKS)
      return -1;
    h = &hooks[nhooks];
    snprintf(h->name, sizeof h->name, "%.*s", (int)(eq - spec), spec);
    if (wh_receiver_new(&h->rc, store) != WH_OK) {
      fprintf(stderr, "incoming_receiver: store %s: %s\n", store, wh_error_last());
      return -1;
    }
    nhooks++;
  }
  if (wh_receiver_add_secret(h->rc, scheme, colon + 1) != WH_OK) {
    fprintf(stderr, "incoming_receiver: %s: %s\n", h->name, wh_error_last());
    return -1;
  }
  return 0;
}

/* ---- requests -------------------------------------------------------------------- */

typedef struct {
  char *body;
  size_t len;
  int too_big;
} upload;

typedef struct {
  const char *names[MAX_HEADERS + 1];
  const char *values[MAX_HEADERS + 1];
  size_t n;
} header_list;

/* Every header as received, repeated ones included: the receiver refuses a
   header sent twice with different values, so none may be merged or dropped. */
static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
  header_list *h = cls;
  (void)kind;
  if (h->n <= MAX_HEADERS) { /* one more than the receiver takes: it then says "too many" */
    h->names[h->n] = key;
    h->values[h->n] = value ? value : "";
    h->n++;
  }
  return MHD_YES;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *text)
{
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  MHD_add_response_header(r, "content-type", "text/plain; charset=utf-8");
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static unsigned status_of(int rc)
{
  switch (rc) {
  case WH_OK:
  case WH_EEXIST:
    return 200;
  case WH_ESIGNATURE:
  case WH_ETIMESTAMP:
    return 401;
  case WH_EINVAL:
    return 400;
  case WH_ESTORE:
    return 503;
  default:
    return 500;
  }
}

/* The whole request is here: check it, answer, show what happened. */
static enum MHD_Result handle(struct MHD_Connection *c, const char *url, webhook *h, upload *up)
{
  char text[1200];
  if (up->too_big) {
    printf("refused   %s: body over %d bytes\n", url, MAX_BODY);
    return answer(c, 413, "body too large\n");
  }
  header_list hl;
  hl.n = 0;
  MHD_get_connection_values(c, MHD_HEADER_KIND, collect, &hl);
  char id[256] = "";
  int rc = wh_receiver_check(h->rc, hl.names, hl.values, hl.n, up->body, up->len, id, sizeof id);
  unsigned status = status_of(rc);
  if (rc == WH_OK) {
    /* Here a real application processes the event. */
    printf("accepted  %s id=%s %zu bytes: %.200s\n", url, id, up->len, up->body ? up->body : "");
    snprintf(text, sizeof text, "accepted %s\n", id);
  } else if (rc == WH_EEXIST) {
    printf("duplicate %s id=%s (not processed again)\n", url, id);
    snprintf(text, sizeof text, "duplicate %s, already processed\n", id);
  } else {
    printf("refused   %s %u: %s\n", url, status, wh_error_last());
    snprintf(text, sizeof text, "%s: %s\n", wh_strerror(rc), wh_error_last());
  }
  fflush(stdout);
  return answer(c, status, text);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *data_size, void **state)
{
  (void)cls;
  (void)version;
  upload *up = *state;
  if (!up) { /* first call: the headers only */
    if (!(up = calloc(1, sizeof *up)))
      return MHD_NO;
    *state = up;
    return MHD_YES;
  }
  if (*data_size) { /* a piece of the body */
    if (up->len + *data_size > MAX_BODY) {
      up->too_big = 1;
    } else {
      char *p = realloc(up->body, up->len + *data_size + 1);
      if (!p)
        return MHD_NO;
      memcpy(p + up->len, data, *data_size);
      up->body = p;
      up->len += *data_size;
      up->body[up->len] = '\0';
    }
    *data_size = 0;
    return MHD_YES;
  }
  webhook *h = strncmp(url, "/in/", 4) == 0 ? find_hook(url + 4, strlen(url + 4)) : NULL;
  if (!h)
    return answer(c, 404, "no such incoming webhook\n");
  if (strcmp(method, "POST") != 0)
    return answer(c, 405, "POST only\n");
  return handle(c, url, h, up);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode code)
{
  (void)cls;
  (void)c;
  (void)code;
  upload *up = *state;
  if (up)
    free(up->body);
  free(up);
  *state = NULL;
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  int port = 8080;
  const char *store = "memory:";
  int first = 1;
  for (; first < argc && strncmp(argv[first], "--", 2) == 0; first += 2) {
    if (first + 1 >= argc)
      break;
    if (strcmp(argv[first], "--port") == 0)
      port = atoi(argv[first + 1]);
    else if (strcmp(argv[first], "--store") == 0)
      store = argv[first + 1];
    else
      break;
  }
  if (first >= argc) {
    fprintf(stderr, "usage: %s [--port N] [--store STORE] NAME=SCHEME:SECRET...\n", argv[0]);
    return 2;
  }
  for (int i = first; i < argc; i++)
    if (add_hook(argv[i], store) != 0)
      return 2;

  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
                                          NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "incoming_receiver: cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  /* The signals wait blocked until sigsuspend: none is lost between the test and the wait. */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigprocmask(SIG_BLOCK, &block, &old);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  printf("listening on http://127.0.0.1:%u\n", info ? info->port : (unsigned)port);
  for (int i = 0; i < nhooks; i++)
    printf("  /in/%s\n", hooks[i].name);
  while (!stop)
    sigsuspend(&old);
  MHD_stop_daemon(d);
  for (int i = 0; i < nhooks; i++)
    wh_receiver_free(hooks[i].rc);
  printf("stopped\n");
  return 0;
}
