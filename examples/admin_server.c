/*
 * admin_server: the Casebook "Admin > Integrations > Outgoing" page and the
 * admin API behind it, as a host application would mount them.
 *
 *   admin_server [--store STORE] [--port N] [--static DIR] [--allow-private]
 *                [--retry-schedule S] [--platform-admin] [--tenant-max-endpoints N]
 *                [--no-dispatcher]
 *
 *   --store STORE       default "sqlite:casebook-admin.db"
 *   --port N            default 8080; 0 picks a free one. Always 127.0.0.1.
 *   --static DIR        the page's files (default: examples/admin of the sources)
 *   --allow-private     let deliveries reach loopback and private addresses
 *                       (a receiver on this machine, for trying it out and tests)
 *   --retry-schedule S  the dispatcher's retry schedule ("" = one attempt)
 *   --platform-admin    a request without a tenant is the platform's (the root)
 *   --tenant-max-endpoints N   how many webhooks one account may have (0: no limit)
 *   --no-dispatcher     deliver nothing (another process delivers: PostgreSQL)
 *
 * Who is asking: a real host takes the administrator's customer account from
 * its login session. Here the request says it in a header, X-Casebook-Tenant,
 * as a reverse proxy in front of the host would after checking the session.
 * No header: 401, unless --platform-admin lets the operator use the root.
 *
 * Routes: /api/... goes to wh_admin_handle (docs/openapi.yaml), on the tenant's
 * view; everything else is a file of the page. One dispatcher, on the root
 * registry, delivers every tenant's events.
 *
 * It prints "admin page: http://127.0.0.1:PORT/" once it listens, and runs
 * until SIGINT or SIGTERM.
 */
#include <webhook/webhook.h>

#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef WH_ADMIN_STATIC_DIR
#define WH_ADMIN_STATIC_DIR "examples/admin"
#endif

#define BODY_MAX (1024 * 1024)
#define TENANT_HEADER "X-Casebook-Tenant"

typedef struct {
  wh_registry *reg;
  wh_dispatcher *d;
  const char *static_dir;
  int platform_admin;
} server;

/* One request: its raw target (path and query as sent) and its body. */
typedef struct {
  char *uri;
  char *body;
  size_t len;
  int too_large;
  int started; /* MHD's first call for a request comes before its body */
} request;

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { (void)sig; stopping = 1; }

/* MHD hands the handler a decoded path without the query: keep the raw target,
   which wh_admin_handle decodes itself. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
  (void)cls;
  (void)c;
  request *r = calloc(1, sizeof *r);
  if (r && !(r->uri = strdup(uri))) {
    free(r);
    r = NULL;
  }
  return r;
}

static void on_done(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode why)
{
  (void)cls;
  (void)c;
  (void)why;
  request *r = *state;
  if (r) {
    free(r->uri);
    free(r->body);
    free(r);
  }
  *state = NULL;
}

static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *type, const void *body, size_t len,
                            enum MHD_ResponseMemoryMode mode)
{
  struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, mode);
  if (!resp)
    return MHD_NO;
  MHD_add_response_header(resp, "Content-Type", type);
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
  MHD_add_response_header(resp, "Content-Security-Policy",
                          "default-src 'self'; frame-ancestors 'none'; form-action 'self'");
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *code, const char *message)
{
  char body[512];
  int n = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, message);
  return reply(c, status, "application/json", body, (size_t)n, MHD_RESPMEM_MUST_COPY);
}

/* A 405 answer lists the path's methods in error.allow: the Allow header. */
static void allow_header(struct MHD_Response *resp, const char *json)
{
  const char *p = strstr(json, "\"allow\":[");
  if (!p)
    return;
  char value[64] = "";
  for (p += 9; *p && *p != ']';) {
    const char *q = strchr(p + 1, '"');
    if (*p != '"' || !q)
      break;
    size_t used = strlen(value);
    snprintf(value + used, sizeof value - used, "%s%.*s", used ? ", " : "", (int)(q - p - 1), p + 1);
    p = q + 1 + (q[1] == ',');
  }
  MHD_add_response_header(resp, "Allow", value);
}

static enum MHD_Result api(server *s, struct MHD_Connection *c, const char *method, request *r)
{
  const char *tenant = MHD_lookup_connection_value(c, MHD_HEADER_KIND, TENANT_HEADER);
  wh_registry *reg = s->reg, *view = NULL;
  if (tenant && *tenant) {
    if (wh_registry_open_tenant(&view, s->reg, tenant) != WH_OK)
      return send_error(c, 400, "bad_request", "X-Casebook-Tenant: not a valid tenant id");
    reg = view;
  } else if (!s->platform_admin) {
    return send_error(c, 401, "unauthorized", "sign in: no customer account (X-Casebook-Tenant) on the request");
  }
  if (r->too_large) {
    wh_registry_free(view);
    return send_error(c, 413, "bad_request", "body: larger than 1 MiB");
  }
  int status = 500;
  char *out = NULL;
  /* "/api/endpoints?limit=5" is "/endpoints?limit=5" to the handler. */
  int rc = wh_admin_handle(reg, s->d, method, r->uri + 4, r->body, r->len, &status, &out);
  wh_registry_free(view);
  if (rc != WH_OK)
    return send_error(c, 500, "out_of_memory", "the server could not answer");
  struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(out), out, MHD_RESPMEM_MUST_FREE);
  if (!resp) {
    wh_free(out);
    return MHD_NO;
  }
  if (status != 204)
    MHD_add_response_header(resp, "Content-Type", "application/json");
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  if (status == 405)
    allow_header(resp, out);
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* A file of the page: a plain name in the static folder, nothing else. */
static enum MHD_Result page(server *s, struct MHD_Connection *c, const char *method, const char *path)
{
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return send_error(c, 405, "no_route", "the page's files are read with GET");
  const char *name = strcmp(path, "/") == 0 ? "index.html" : path + 1;
  static const struct {
    const char *ext, *type;
  } types[] = {{".html", "text/html; charset=utf-8"},
               {".css", "text/css; charset=utf-8"},
               {".js", "text/javascript; charset=utf-8"},
               {".svg", "image/svg+xml"}};
  const char *dot = strrchr(name, '.');
  const char *type = NULL;
  for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
    if (strcmp(dot, types[i].ext) == 0)
      type = types[i].type;
  if (!type || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789._-") != strlen(name) || name[0] == '.')
    return send_error(c, 404, "no_route", "no such page");
  char file[4096];
  snprintf(file, sizeof file, "%s/%s", s->static_dir, name);
  FILE *f = fopen(file, "rb");
  if (!f)
    return send_error(c, 404, "no_route", "no such page");
  struct stat st;
  char *buf = NULL;
  size_t n = 0;
  if (fstat(fileno(f), &st) == 0 && st.st_size < 4 * 1024 * 1024 && (buf = malloc((size_t)st.st_size + 1)))
    n = fread(buf, 1, (size_t)st.st_size, f);
  fclose(f);
  if (!buf)
    return send_error(c, 500, "out_of_memory", "cannot read the page");
  return reply(c, 200, type, buf, n, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **state)
{
  (void)version;
  server *s = cls;
  request *r = *state;
  if (!r)
    return MHD_NO;
  if (!r->started) {
    r->started = 1;
    return MHD_YES;
  }
  if (*upload_size) { /* the body arrives in pieces */
    if (r->len + *upload_size > BODY_MAX) {
      r->too_large = 1;
    } else if (!r->too_large) {
      char *b = realloc(r->body, r->len + *upload_size + 1);
      if (!b)
        return MHD_NO;
      memcpy(b + r->len, upload, *upload_size);
      r->body = b;
      r->len += *upload_size;
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (strncmp(r->uri, "/api/", 5) == 0 || strcmp(url, "/api") == 0)
    return api(s, c, method, r);
  return page(s, c, method, url);
}

static int usage(void)
{
  fprintf(stderr, "usage: admin_server [--store STORE] [--port N] [--static DIR] [--allow-private]\n"
                  "                    [--retry-schedule S] [--platform-admin] [--tenant-max-endpoints N]\n"
                  "                    [--no-dispatcher]\n");
  return 2;
}

int main(int argc, char **argv)
{
  const char *store = "sqlite:casebook-admin.db", *schedule = NULL;
  server s = {.static_dir = WH_ADMIN_STATIC_DIR};
  long port = 8080, tenant_max = 0;
  int allow_private = 0, deliver = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--allow-private") == 0)
      allow_private = 1;
    else if (strcmp(a, "--platform-admin") == 0)
      s.platform_admin = 1;
    else if (strcmp(a, "--no-dispatcher") == 0)
      deliver = 0;
    else if (strcmp(a, "--store") == 0 && v)
      store = argv[++i];
    else if (strcmp(a, "--static") == 0 && v)
      s.static_dir = argv[++i];
    else if (strcmp(a, "--retry-schedule") == 0 && v)
      schedule = argv[++i];
    else if ((strcmp(a, "--port") == 0 || strcmp(a, "--tenant-max-endpoints") == 0) && v) {
      char *end;
      long n = strtol(argv[++i], &end, 10);
      if (*end || n < 0 || (a[2] == 'p' && n > 65535))
        return usage();
      *(a[2] == 'p' ? &port : &tenant_max) = n;
    } else {
      return usage();
    }
  }
  if (wh_registry_open(&s.reg, store) != WH_OK ||
      wh_registry_set_int(s.reg, WH_REG_TENANT_MAX_ENDPOINTS, tenant_max) != WH_OK ||
      (deliver && (wh_dispatcher_new(&s.d, s.reg) != WH_OK ||
                   wh_dispatcher_set_int(s.d, WH_OPT_ALLOW_PRIVATE_NETWORKS, allow_private) != WH_OK ||
                   (schedule && wh_dispatcher_set_str(s.d, WH_OPT_RETRY_SCHEDULE, schedule) != WH_OK) ||
                   wh_dispatcher_start(s.d) != WH_OK))) {
    fprintf(stderr, "admin_server: %s\n", wh_error_last());
    return 1;
  }
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* never another interface */
  struct MHD_Daemon *mhd =
    MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, on_request, &s,
                     MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_THREAD_POOL_SIZE, 2u, MHD_OPTION_URI_LOG_CALLBACK,
                     on_uri, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
                     30u, MHD_OPTION_END);
  if (!mhd) {
    fprintf(stderr, "admin_server: cannot listen on 127.0.0.1:%ld: %s\n", port, strerror(errno));
    return 1;
  }
  printf("admin page: http://127.0.0.1:%u/\n", (unsigned)MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT)->port);
  fflush(stdout);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  while (!stopping)
    pause();
  MHD_stop_daemon(mhd);
  if (s.d)
    wh_dispatcher_stop(s.d, 5000);
  wh_dispatcher_free(s.d);
  wh_registry_free(s.reg);
  return 0;
}
