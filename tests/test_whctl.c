/*
 * tools/whctl on a SQLite store in a temporary folder: add, list (table and
 * JSON), show, enable/disable, secret and rotation, a test event to a loopback
 * receiver (delivered, then failed), failed deliveries, the attempt log,
 * replay, recover, tenants, the exit codes, and the refusal to open a store
 * that a running process (this test) holds.
 *
 *   test_whctl PATH_TO_WHCTL
 */
#include "support/check.h"
#include "support/receiver.h"

#include <cjson/cJSON.h>
#include <webhook/webhook.h>

#ifdef WH_TEST_WITH_PG
#include <libpq-fe.h>
#endif

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *whctl_path;
static char dir[256], store[300];
static char out[65536], err[65536];

static void slurp(const char *path, char *buf, size_t len)
{
  FILE *f = fopen(path, "rb");
  size_t n = f ? fread(buf, 1, len - 1, f) : 0;
  buf[n] = '\0';
  if (f)
    fclose(f);
}

/* Run whctl --store STORE with the arguments (NULL-terminated); its stdout and
   stderr into out and err; returns its exit status. */
static int whctl(const char *first, ...)
{
  const char *argv[32] = {whctl_path, "--store", store};
  int n = 3;
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a && n < 31; a = va_arg(ap, const char *))
    argv[n++] = a;
  va_end(ap);
  argv[n] = NULL;
  char of[400], ef[400];
  snprintf(of, sizeof of, "%s/out", dir);
  snprintf(ef, sizeof ef, "%s/err", dir);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(of, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(ef, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    execv(whctl_path, (char *const *)argv);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  slurp(of, out, sizeof out);
  slurp(ef, err, sizeof err);
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  if (getenv("WH_TEST_VERBOSE"))
    fprintf(stderr, "whctl %s %s -> %d\n%s%s", first, argv[4] ? argv[4] : "", code, out, err);
  return code;
}

#define HAS(buf, needle)                                                                          \
  do {                                                                                            \
    check_count++;                                                                                \
    if (!strstr(buf, needle)) {                                                                   \
      check_failures++;                                                                           \
      fprintf(stderr, "%s:%d: \"%s\" not in:\n%s\n", __FILE__, __LINE__, needle, buf);             \
    }                                                                                             \
  } while (0)

static void chomp(char *s)
{
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
    s[--n] = '\0';
}

#ifdef WH_TEST_WITH_PG
/* PostgreSQL is shared: whctl works beside a running application, whose
   dispatcher delivers what whctl queues. */
static void beside_a_running_app(rcv *r, const char *pg)
{
  PGconn *c = PQconnectdb(pg);
  PQclear(PQexec(c, "SET client_min_messages = warning"));
  PQclear(PQexec(c, "DROP SCHEMA IF EXISTS webhook CASCADE"));
  PQfinish(c);
  snprintf(store, sizeof store, "%s", pg);
  wh_registry *app;
  wh_dispatcher *d;
  CHECK_OK(wh_registry_open(&app, pg));
  CHECK_OK(wh_dispatcher_new(&d, app));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, 1));
  CHECK_OK(wh_dispatcher_start(d));
  char url[200], ep[WH_ID_MAX];
  rcv_url(r, "/pg", url, sizeof url);
  CHECK_INT(whctl("--tenant", "acme", "endpoints", "add", "PG CRM", url, NULL), 0);
  snprintf(ep, sizeof ep, "%.63s", out);
  chomp(ep);
  char *json = NULL;
  CHECK_OK(wh_endpoint_get_json(app, ep, &json)); /* the application sees it */
  wh_free(json);
  size_t before = rcv_count_path(r, "/pg");
  CHECK_INT(whctl("--tenant", "acme", "endpoints", "test", ep, NULL), 0);
  HAS(out, "delivered (HTTP 200)");
  CHECK(rcv_count_path(r, "/pg") == before + 1);
  CHECK_INT(whctl("endpoints", "list", NULL), 0);
  HAS(out, "PG CRM");
  wh_dispatcher_stop(d, 5000);
  wh_dispatcher_free(d);
  wh_registry_free(app);
}
#endif

int main(int argc, char **argv)
{
  if (argc != 2)
    return 2;
  whctl_path = argv[1];
  snprintf(dir, sizeof dir, "/tmp/wh-whctl-XXXXXX");
  if (!mkdtemp(dir))
    return 1;
  snprintf(store, sizeof store, "sqlite:%s/app.db", dir);
  rcv *r;
  CHECK(rcv_start(&r, 0) == 0);
  char url[200];
  rcv_url(r, "/crm", url, sizeof url);

  /* Usage. */
  CHECK_INT(whctl(NULL), 2);
  CHECK_INT(whctl("endpoints", "frobnicate", NULL), 2);
  HAS(err, "usage:");
  CHECK_INT(whctl("--help", NULL), 0);
  HAS(out, "endpoints add NAME URL");

  /* add, list, show. */
  CHECK_INT(whctl("endpoints", "add", "CRM people sync", url, "--description", "People to the CRM", "--filter",
                  "people.*", NULL), 0);
  char ep[WH_ID_MAX];
  snprintf(ep, sizeof ep, "%.63s", out);
  chomp(ep);
  CHECK(strncmp(ep, "ep_", 3) == 0);
  CHECK_INT(whctl("--json", "endpoints", "add", "Warehouse", "https://warehouse.example.com/in", NULL), 0);
  cJSON *j = cJSON_Parse(out);
  CHECK(cJSON_IsObject(j) && cJSON_GetStringValue(cJSON_GetObjectItem(j, "id")));
  char wh2[WH_ID_MAX];
  snprintf(wh2, sizeof wh2, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(j, "id")));
  cJSON_Delete(j);

  CHECK_INT(whctl("endpoints", "list", NULL), 0);
  HAS(out, "NAME");
  HAS(out, "CRM people sync");
  HAS(out, "Warehouse");
  HAS(out, ep);
  CHECK_INT(whctl("endpoints", "list", "--json", NULL), 0);
  j = cJSON_Parse(out);
  CHECK(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 2);
  cJSON_Delete(j);
  CHECK_INT(whctl("endpoints", "show", ep, NULL), 0);
  HAS(out, url);
  HAS(out, "People to the CRM");
  HAS(out, "people.*");
  HAS(out, "(platform)");

  /* Errors and their exit codes. */
  CHECK_INT(whctl("endpoints", "show", "ep_missing", NULL), 3);
  HAS(err, "no such endpoint");
  CHECK_INT(whctl("endpoints", "add", "x", "ftp://x.example.com/", NULL), 4);
  HAS(err, "scheme must be http or https");
  CHECK_INT(whctl("endpoints", "add", "Warehouse", "https://w.example.com/", NULL), 5);
  HAS(err, "already registered");

  /* enable / disable / remove. */
  CHECK_INT(whctl("endpoints", "disable", wh2, NULL), 0);
  HAS(out, "disabled");
  CHECK_INT(whctl("endpoints", "enable", wh2, NULL), 0);
  HAS(out, "enabled");
  CHECK_INT(whctl("endpoints", "remove", wh2, NULL), 0);
  CHECK_INT(whctl("endpoints", "show", wh2, NULL), 3);

  /* The secret, and a rotation. */
  CHECK_INT(whctl("endpoints", "secret", ep, NULL), 0);
  char secret[128];
  snprintf(secret, sizeof secret, "%.127s", out);
  CHECK(strncmp(secret, "whsec_", 6) == 0);
  CHECK_INT(whctl("endpoints", "secret", ep, "--rotate", "--grace", "60", NULL), 0);
  CHECK(strncmp(out, "whsec_", 6) == 0 && strcmp(out, secret) != 0);

  /* A test event to the loopback receiver: delivered. */
  CHECK_INT(whctl("--allow-private", "endpoints", "test", ep, NULL), 0);
  HAS(out, "delivered (HTTP 200)");
  CHECK(rcv_count(r) == 1);
  CHECK(rcv_request_at(r, 0) && rcv_header_get(rcv_request_at(r, 0), "webhook-signature"));

  /* The receiver fails: exit 1, the failed delivery is listed, its log shows the 500. */
  rcv_script_reply(r, "/crm", 500, NULL, "down");
  CHECK_INT(whctl("--allow-private", "--json", "endpoints", "test", ep, NULL), 1);
  j = cJSON_Parse(out);
  char msg[WH_ID_MAX];
  snprintf(msg, sizeof msg, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(j, "id")) ? cJSON_GetStringValue(cJSON_GetObjectItem(j, "id")) : "");
  cJSON_Delete(j);
  CHECK(strncmp(msg, "msg_", 4) == 0);
  CHECK_INT(whctl("failed", ep, "--since", "2024-01-01T00:00:00+02:00", NULL), 0);
  HAS(out, "MESSAGE");
  HAS(out, msg);
  HAS(out, "HTTP 500");
  CHECK_INT(whctl("failed", ep, "--limit", "0", NULL), 4);
  CHECK_INT(whctl("messages", "show", msg, NULL), 0);
  HAS(out, "webhook.TEST");
  HAS(out, "failed, 1 attempt(s)");
  HAS(out, "HTTP 500");
  CHECK_INT(whctl("messages", "show", "msg_missing", NULL), 3);

  /* Fixed: replay delivers it. */
  rcv_script_clear(r, "/crm");
  CHECK_INT(whctl("--allow-private", "replay", msg, "--endpoint", ep, NULL), 0);
  HAS(out, "delivered (HTTP 200)");
  CHECK_INT(whctl("failed", ep, "--json", NULL), 0);
  CHECK_STR(out, "[]\n");
  CHECK_INT(whctl("--allow-private", "recover", ep, "--since", "2024-01-01", NULL), 0);
  HAS(out, "queued 0");

  /* Tenants: a view sees its own only. */
  CHECK_INT(whctl("--tenant", "acme", "endpoints", "add", "Acme CRM", "https://acme.example.com/", NULL), 0);
  char acme_ep[WH_ID_MAX];
  snprintf(acme_ep, sizeof acme_ep, "%.63s", out);
  chomp(acme_ep);
  CHECK_INT(whctl("--tenant", "acme", "endpoints", "list", "--json", NULL), 0);
  j = cJSON_Parse(out);
  CHECK(cJSON_GetArraySize(j) == 1);
  cJSON_Delete(j);
  CHECK_INT(whctl("--tenant", "globex", "endpoints", "show", acme_ep, NULL), 3);
  CHECK_INT(whctl("--tenant", "acme", "endpoints", "show", ep, NULL), 3);
  CHECK_INT(whctl("--tenant", "", "endpoints", "list", NULL), 2);

  /* A running process holds the store: whctl refuses, says who, changes nothing. */
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  CHECK_INT(whctl("endpoints", "add", "Sneaky", "https://s.example.com/", NULL), 6);
  char held[64];
  snprintf(held, sizeof held, "held by process %ld", (long)getpid());
  HAS(err, held);
  HAS(err, "stop the application");
  CHECK_INT(whctl("endpoints", "list", NULL), 0); /* reading is fine */
  char *list;
  CHECK_OK(wh_endpoint_list_json(reg, &list));
  CHECK(strstr(list, "Sneaky") == NULL);
  wh_free(list);
  wh_registry_free(reg);
  CHECK_INT(whctl("endpoints", "list", NULL), 0);

  /* WEBHOOK_STORE instead of --store; neither: usage. */
  setenv("WEBHOOK_STORE", store, 1);
  {
    const char *argv2[] = {whctl_path, "endpoints", "list", NULL};
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      execv(whctl_path, (char *const *)argv2);
      _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }

#ifdef WH_TEST_WITH_PG
  unsetenv("WEBHOOK_STORE");
  const char *pg = getenv("WH_TEST_PG");
  CHECK(pg != NULL);
  if (pg)
    beside_a_running_app(r, pg);
#endif
  rcv_free(r);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return check_done("test_whctl");
}
