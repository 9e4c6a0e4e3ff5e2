/* The stores: the SQLite file keeps endpoints, messages, deliveries and
   attempts across restarts; replay, recovery and retention work on both the
   SQLite and the memory store; store failures are clear and lose nothing. */
#include <webhook/webhook.h>

#include "receiver.h"
#include "support/check.h"
#include "support/harness.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static rcv *R;
static char dir[256];

static void store_path(char *out, size_t n, const char *name)
{
  snprintf(out, n, "sqlite:%s/%s", dir, name);
}

static cJSON *json_of(int rc, char *text)
{
  CHECK_INT(rc, WH_OK);
  cJSON *j = text ? cJSON_Parse(text) : NULL;
  if (!j)
    fprintf(stderr, "not JSON: %s\n", text ? text : "(null)");
  CHECK(j != NULL);
  wh_free(text);
  return j;
}

static cJSON *failed(wh_registry *reg, const char *ep, int64_t since, size_t limit)
{
  char *s = NULL;
  int rc = wh_endpoint_failed_json(reg, ep, since, limit, &s);
  return json_of(rc, s);
}

static cJSON *message(wh_registry *reg, const char *msg_id)
{
  char *s = NULL;
  int rc = wh_message_get_json(reg, msg_id, &s);
  if (rc)
    fprintf(stderr, "message %s: %s\n", msg_id, wh_error_last());
  return json_of(rc, s);
}

static const char *delivery_state(cJSON *msg, int i)
{
  return cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(msg, "deliveries"), i),
                                                  "state"));
}

/* ---- endpoints survive a restart ---------------------------------------------- */

static void endpoints_persist(void)
{
  char store[512];
  store_path(store, sizeof store, "endpoints.db");
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  char a[WH_ID_MAX], b[WH_ID_MAX], c[WH_ID_MAX];
  CHECK_OK(wh_endpoint_add(reg, "CRM", "https://crm.example.com/in", "people to the CRM", a, sizeof a));
  CHECK_OK(wh_endpoint_add(reg, "Audit", "https://audit.example.com/in", NULL, b, sizeof b));
  CHECK_OK(wh_endpoint_add(reg, "Gone", "https://gone.example.com/in", NULL, c, sizeof c));
  CHECK_OK(wh_endpoint_subscribe(reg, a, "people.*"));
  CHECK_OK(wh_endpoint_subscribe(reg, a, "*.DELETE"));
  CHECK_OK(wh_endpoint_set_header(reg, a, "Authorization", "Bearer x"));
  CHECK_OK(wh_endpoint_set_enabled(reg, b, 0));
  CHECK_OK(wh_endpoint_rotate_secret(reg, a, NULL, 3600));
  CHECK_OK(wh_endpoint_remove(reg, c));
  char *before = NULL, secret[128];
  CHECK_OK(wh_endpoint_list_json(reg, &before));
  CHECK_OK(wh_endpoint_secret(reg, a, secret, sizeof secret));
  char sig1[512];
  CHECK_OK(wh_endpoint_signature(reg, a, "msg_x", 1700000000, "{}", 2, sig1, sizeof sig1));
  wh_registry_free(reg);

  CHECK_OK(wh_registry_open(&reg, store));
  char *after = NULL, secret2[128], sig2[512];
  CHECK_OK(wh_endpoint_list_json(reg, &after));
  CHECK_STR(after, before);
  CHECK_OK(wh_endpoint_secret(reg, a, secret2, sizeof secret2));
  CHECK_STR(secret2, secret);
  /* Both secrets of the rotation still sign. */
  CHECK_OK(wh_endpoint_signature(reg, a, "msg_x", 1700000000, "{}", 2, sig2, sizeof sig2));
  CHECK_STR(sig2, sig1);
  CHECK(strchr(sig2, ' ') != NULL);
  CHECK_ERR(wh_endpoint_get_json(reg, c, &after), WH_ENOTFOUND, NULL);
  /* Names stay unique across the restart. */
  CHECK_ERR(wh_endpoint_add(reg, "CRM", "https://x.example.com/", NULL, NULL, 0), WH_EEXIST, NULL);
  wh_free(before);
  wh_free(after);
  wh_registry_free(reg);
}

/* ---- delivery, the log, and resuming after a restart ----------------------------- */

static wh_dispatcher *started(wh_registry *reg, h_log *log, const char *schedule)
{
  wh_dispatcher *d = h_dispatcher(reg, log, schedule);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_BREAKER_FAILURE_PCT, 0));
  CHECK_OK(wh_dispatcher_start(d));
  return d;
}

static void log_and_resume(const char *store)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  char ep[WH_ID_MAX], url[256], path[64];
  snprintf(path, sizeof path, "/resume-%s", strncmp(store, "sqlite:", 7) == 0 ? "sqlite" : "memory");
  rcv_url(R, path, url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "resume", url, NULL, ep, sizeof ep));
  char secret[128];
  CHECK_OK(wh_endpoint_secret(reg, ep, secret, sizeof secret));
  rcv_script_reply(R, path, 500, NULL, "{\"error\":\"database down\"}");
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = started(reg, &log, "3");
  char mid[WH_ID_MAX];
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), mid, sizeof mid));
  CHECK(h_wait(&log, ep, WH_RETRYING, 1, 5000));
  /* The log shows the attempt, its status and the receiver's answer. */
  cJSON *m = message(reg, mid);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(m, "id")), mid);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(m, "event_type")), "people.CREATE");
  CHECK(cJSON_IsObject(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "payload"), "resource")));
  cJSON *dl = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "deliveries"), 0);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(dl, "endpoint_id")), ep);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(dl, "state")), "pending");
  CHECK(cJSON_IsString(cJSON_GetObjectItem(dl, "next_attempt_at")));
  cJSON *at = cJSON_GetArrayItem(cJSON_GetObjectItem(dl, "attempts"), 0);
  CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(at, "http_status")), 500);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(at, "error")), "HTTP 500");
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(at, "response")), "{\"error\":\"database down\"}");
  CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(at, "duration_ms")) >= 0);
  cJSON_Delete(m);

  /* Stop before the retry: it stays pending, with its time. */
  CHECK_OK(wh_dispatcher_stop(d, 1000));
  wh_dispatcher_free(d);
  size_t seen = rcv_count_path(R, path);
  CHECK_INT(seen, 1);
  rcv_script_clear(R, path);
  rcv_script_reply(R, path, 200, NULL, "thanks");

  if (strncmp(store, "sqlite:", 7) == 0) {
    /* A new process would open the file again. */
    wh_registry_free(reg);
    CHECK_OK(wh_registry_open(&reg, store));
  }
  d = started(reg, &log, "3");
  CHECK(h_wait(&log, ep, WH_DELIVERED, 1, 10000));
  /* The scheduled time was kept (3 s after the first attempt's result, so
     3 s after its request arrived, at least), not sent at once on restart. */
  const rcv_request *q = rcv_request_at(R, rcv_count(R) - 1), *q1 = rcv_request_on_path(R, path, 0);
  CHECK(q && q1 && q != q1 && q->real_ms - q1->real_ms >= 3000);
  CHECK_INT(rcv_count_path(R, path), 2);
  /* Same webhook-id, valid signature on the resumed attempt. */
  CHECK(q && strcmp(rcv_header_get(q, "webhook-id"), mid) == 0);
  if (q)
    CHECK_OK(wh_verify(secret, mid, rcv_header_get(q, "webhook-timestamp"), rcv_header_get(q, "webhook-signature"),
                       q->body, q->body_len, 0));
  m = message(reg, mid);
  CHECK_STR(delivery_state(m, 0), "delivered");
  dl = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "deliveries"), 0);
  CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(dl, "attempts")), 2);
  CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(dl, "attempts_made")), 2);
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(dl, "next_attempt_at")));
  cJSON_Delete(m);
  CHECK_ERR(wh_message_get_json(reg, "msg_nope", (char **)&q), WH_ENOTFOUND, "msg_nope");
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

/* ---- replay, recovery, retention ----------------------------------------------------- */

static void replay_recover_retention(const char *store)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  char a[WH_ID_MAX], b[WH_ID_MAX], late[WH_ID_MAX], url[256], pa[64], pb[64], pl[64];
  const char *kind = strncmp(store, "sqlite:", 7) == 0 ? "sqlite" : "memory";
  snprintf(pa, sizeof pa, "/rr-a-%s", kind);
  snprintf(pb, sizeof pb, "/rr-b-%s", kind);
  snprintf(pl, sizeof pl, "/rr-late-%s", kind);
  rcv_url(R, pa, url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "a", url, NULL, a, sizeof a));
  rcv_url(R, pb, url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "b", url, NULL, b, sizeof b));
  rcv_script_reply(R, pb, 503, NULL, "down");
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = started(reg, &log, ""); /* one attempt: b fails at once */
  char m1[WH_ID_MAX], m2[WH_ID_MAX];
  int64_t t0 = h_now_ms();
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), m1, sizeof m1));
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, "UPDATE"), m2, sizeof m2));
  CHECK(h_wait(&log, b, WH_FAILED, 2, 5000));
  CHECK(h_wait(&log, a, WH_DELIVERED, 2, 5000));

  /* The failed list of b. */
  char *s = NULL;
  cJSON *f = failed(reg, b, 0, 0);
  CHECK_INT(cJSON_GetArraySize(f), 2);
  cJSON *f0 = cJSON_GetArrayItem(f, 0);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(f0, "endpoint_id")), b);
  CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(f0, "last_http_status")), 503);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(f0, "last_error")), "HTTP 503");
  cJSON_Delete(f);
  f = failed(reg, b, 0, 1);
  CHECK_INT(cJSON_GetArraySize(f), 1);
  cJSON_Delete(f);
  f = failed(reg, b, h_now_ms() + 60000, 0);
  CHECK_INT(cJSON_GetArraySize(f), 0);
  cJSON_Delete(f);
  f = failed(reg, a, 0, 0);
  CHECK_INT(cJSON_GetArraySize(f), 0);
  cJSON_Delete(f);

  /* Recover b's failures once it is fixed. */
  rcv_script_clear(R, pb);
  size_t n = 99;
  CHECK_OK(wh_dispatcher_recover(d, b, t0 - 1000, &n));
  CHECK_INT(n, 2);
  CHECK(h_wait(&log, b, WH_DELIVERED, 2, 5000));
  CHECK_INT(rcv_count_path(R, pb), 4);
  f = failed(reg, b, 0, 0);
  CHECK_INT(cJSON_GetArraySize(f), 0);
  cJSON_Delete(f);

  /* Replay m1 to a only; then to every endpoint it had; then to one it never had. */
  size_t before_a = rcv_count_path(R, pa);
  CHECK_OK(wh_dispatcher_replay(d, m1, a, &n));
  CHECK_INT(n, 1);
  CHECK(h_wait(&log, a, WH_DELIVERED, 3, 5000));
  CHECK_INT(rcv_count_path(R, pa), before_a + 1);
  const rcv_request *q = rcv_request_at(R, rcv_count(R) - 1);
  CHECK(q && strcmp(rcv_header_get(q, "webhook-id"), m1) == 0);
  CHECK_OK(wh_dispatcher_replay(d, m1, NULL, &n));
  CHECK_INT(n, 2);
  CHECK_OK(wh_dispatcher_drain(d, 5000));
  CHECK(h_wait(&log, NULL, WH_DELIVERED, 7, 5000));
  rcv_url(R, pl, url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "late", url, NULL, late, sizeof late));
  CHECK_OK(wh_dispatcher_replay(d, m2, late, &n));
  CHECK_INT(n, 1);
  CHECK(h_wait(&log, late, WH_DELIVERED, 1, 5000));
  CHECK_ERR(wh_dispatcher_replay(d, "msg_unknown", NULL, &n), WH_ENOTFOUND, "msg_unknown");
  CHECK_ERR(wh_dispatcher_replay(d, NULL, NULL, &n), WH_EINVAL, NULL);
  CHECK_ERR(wh_dispatcher_recover(d, NULL, 0, &n), WH_EINVAL, NULL);
  cJSON *m = message(reg, m2);
  CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(m, "deliveries")), 3);
  cJSON_Delete(m);

  /* Retention: delivered messages go, a failed one stays. */
  rcv_script_reply(R, pb, 500, NULL, "down again");
  char m3[WH_ID_MAX];
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, "DELETE"), m3, sizeof m3));
  CHECK(h_wait(&log, b, WH_FAILED, 3, 5000));
  CHECK_OK(wh_dispatcher_drain(d, 5000));
  CHECK_OK(wh_dispatcher_stop(d, 1000));
  size_t purged = 0;
  CHECK_OK(wh_registry_purge(reg, t0 - 60000, &purged));
  CHECK_INT(purged, 0); /* nothing that old */
  CHECK_OK(wh_registry_purge(reg, h_now_ms() + 1000, &purged));
  CHECK_INT(purged, 2); /* m1, m2; m3 has a failed delivery */
  CHECK_ERR(wh_message_get_json(reg, m1, &s), WH_ENOTFOUND, NULL);
  m = message(reg, m3);
  CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(m, "id")), m3);
  cJSON_Delete(m);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

/* ---- failures of the store itself -------------------------------------------------------- */

static void write_file(const char *path, const char *content)
{
  FILE *f = fopen(path, "wb");
  fputs(content, f);
  fclose(f);
}

static void bad_files(void)
{
  char path[512], store[600];
  wh_registry *reg = (wh_registry *)1;
  /* Not a database at all. */
  snprintf(path, sizeof path, "%s/garbage.db", dir);
  write_file(path, "this is certainly not a SQLite database, just some text that is long enough to matter\n");
  snprintf(store, sizeof store, "sqlite:%s", path);
  CHECK_ERR(wh_registry_open(&reg, store), WH_ESTORE, "not a database");
  CHECK(reg == NULL);
  /* A SQLite database of somebody else. */
  snprintf(path, sizeof path, "%s/foreign.db", dir);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "sqlite3 '%s' 'CREATE TABLE invoices(id INTEGER PRIMARY KEY, total REAL);'", path);
  if (system(cmd) == 0) {
    snprintf(store, sizeof store, "sqlite:%s", path);
    CHECK_ERR(wh_registry_open(&reg, store), WH_ESTORE, "another application");
  }
  /* A folder that does not exist. */
  snprintf(store, sizeof store, "sqlite:%s/no/such/dir/x.db", dir);
  CHECK_ERR(wh_registry_open(&reg, store), WH_ESTORE, "open");
  CHECK_ERR(wh_registry_open(&reg, "sqlite:"), WH_EINVAL, "path");
  /* A corrupt database: a valid one with its pages overwritten. */
  snprintf(path, sizeof path, "%s/corrupt.db", dir);
  snprintf(store, sizeof store, "sqlite:%s", path);
  CHECK_OK(wh_registry_open(&reg, store));
  for (int i = 0; i < 50; i++) {
    char name[32];
    snprintf(name, sizeof name, "ep%d", i);
    CHECK_OK(wh_endpoint_add(reg, name, "https://a.example.com/", "padding padding padding", NULL, 0));
  }
  wh_registry_free(reg);
  int fd = open(path, O_WRONLY);
  char junk[4096];
  memset(junk, 0xA5, sizeof junk);
  for (off_t off = 4096; off < 5 * 4096; off += 4096)
    CHECK(pwrite(fd, junk, sizeof junk, off) == (ssize_t)sizeof junk);
  close(fd);
  reg = NULL;
  int rc = wh_registry_open(&reg, store);
  CHECK_INT(rc, WH_ESTORE);
  CHECK(strstr(wh_error_last(), "sqlite:") != NULL);
  wh_registry_free(reg);
}

/* Run a child mode of this program (a fresh exec, so no threads are inherited);
   its exit status is the number of checks that failed in it. */
static const char *self_path;

static int in_child(const char *mode, const char *arg)
{
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    execl(self_path, self_path, mode, arg, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

static void read_only_child(const char *store)
{
  /* Root writes any file: become nobody so the permission bits count. */
  if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
    _exit(101);
  wh_registry *reg = NULL;
  CHECK_ERR(wh_registry_open(&reg, store), WH_ESTORE, "read-only");
}

static void read_only(void)
{
  char sub[400], path[512], store[600];
  snprintf(sub, sizeof sub, "%s/ro", dir);
  mkdir(sub, 0755);
  snprintf(path, sizeof path, "%s/ro.db", sub);
  snprintf(store, sizeof store, "sqlite:%s", path);
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  CHECK_OK(wh_endpoint_add(reg, "x", "https://a.example.com/", NULL, NULL, 0));
  wh_registry_free(reg);
  chmod(path, 0444);
  chmod(sub, 0555);
  chmod(dir, 0755);
  CHECK_INT(in_child("child-readonly", store), 0);
  chmod(sub, 0755);
  chmod(path, 0644);
}

/* Several stores may have one SQLite file open, in one process or in several:
   an opener that is not alone with the file leaves the others' claims alone
   (freeing them would deliver their work twice); one that is alone frees the
   claims of processes that died, and delivers their work. The child holds the
   store with a delivery in flight (to an endpoint that answers slowly) until
   its standard input closes. */
static void hold_child(const char *store)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store)); /* its endpoint: the parent's "held" */
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_start(d));
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  printf("open\n");
  fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  wh_dispatcher_free(d);
  wh_registry_free(reg);
}

static void several_openers(void)
{
  char store[600], lockfile[600], url[256];
  store_path(store, sizeof store, "held.db");
  snprintf(lockfile, sizeof lockfile, "%s.lock", store + 7);
  /* In one process: a delivery in flight for A; B opens and starts a
     dispatcher of its own: it must not take A's delivery. */
  rcv_spec slow = {.kind = RCV_REPLY, .status = 200, .ms = 1500};
  rcv_script(R, "/held", &slow); /* an answer, slowly: a delivery stays in flight */
  wh_registry *a, *b;
  CHECK_OK(wh_registry_open(&a, store));
  char id[WH_ID_MAX];
  CHECK_OK(wh_endpoint_add(a, "held", rcv_url(R, "/held", url, sizeof url), NULL, id, sizeof id));
  h_log la, lb;
  h_log_init(&la);
  h_log_init(&lb);
  wh_dispatcher *da = h_dispatcher(a, &la, NULL);
  CHECK_OK(wh_dispatcher_start(da));
  size_t before = rcv_count_path(R, "/held");
  CHECK_OK(wh_dispatcher_emit(da, h_person_event(NULL, NULL), NULL, 0));
  CHECK(rcv_wait_count(R, rcv_count(R) + 1, 5000));
  CHECK_OK(wh_registry_open(&b, store));
  wh_dispatcher *db = h_dispatcher(b, &lb, NULL);
  CHECK_OK(wh_dispatcher_start(db));
  CHECK(h_wait(&la, id, WH_DELIVERED, 1, 5000));
  h_sleep_ms(300);
  CHECK_INT(rcv_count_path(R, "/held") - before, 1); /* sent once, by A */
  CHECK_INT(h_count(&lb, id, 0), 0);
  wh_dispatcher_free(db);
  wh_dispatcher_free(da);
  wh_registry_free(b);
  wh_registry_free(a);
  h_log_free(&la);
  h_log_free(&lb);

  /* Another process holds it with a delivery in flight: opening it here
     works and takes nothing; once that process is killed, the next opener is
     alone, frees its claim and delivers its work. */
  int in[2], out[2];
  CHECK(pipe(in) == 0 && pipe(out) == 0);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    execl(self_path, self_path, "child-hold", store, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  /* Its request is never answered until it is killed (a slow answer could
     come before the kill on a slow machine, and then nothing would be left). */
  rcv_script_clear(R, "/held");
  rcv_script_stall(R, "/held", 0);
  char line[16] = "";
  CHECK(read(out[0], line, sizeof line - 1) > 0 && strncmp(line, "open", 4) == 0);
  before = rcv_count_path(R, "/held");
  int64_t end = h_mono_ms() + 5000;
  while (rcv_count_path(R, "/held") == before && h_mono_ms() < end)
    h_sleep_ms(5); /* its request is in flight */
  CHECK_OK(wh_registry_open(&a, store));
  wh_registry_free(a);
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  close(in[1]);
  close(out[0]);
  rcv_script_clear(R, "/held");
  size_t sent = rcv_count_path(R, "/held");
  h_log_init(&la);
  CHECK_OK(wh_registry_open(&a, store));
  da = h_dispatcher(a, &la, NULL);
  CHECK_OK(wh_dispatcher_start(da));
  CHECK_OK(wh_dispatcher_drain(da, 10000));
  CHECK_INT(h_count(&la, NULL, WH_DELIVERED), 1); /* the dead process's delivery */
  CHECK_INT(rcv_count_path(R, "/held") - sent, 1);
  wh_dispatcher_free(da);
  wh_registry_free(a);
  h_log_free(&la);
  CHECK(access(lockfile, F_OK) == 0);
}

/* A full disk, made with a file size limit: emit fails with WH_ESTORE; what was
   accepted before is still there and gets delivered. */
static char full_msgs[64][WH_ID_MAX];
static void full_disk_child(const char *store)
{
  signal(SIGXFSZ, SIG_IGN);
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  /* Deliveries here go to a listener that never accepts, one at a time: they
     stay pending (the parent delivers them after the "disk" has room again). */
  int hole = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  CHECK(hole >= 0 && bind(hole, (struct sockaddr *)&a, sizeof a) == 0 && listen(hole, 16) == 0 &&
        getsockname(hole, (struct sockaddr *)&a, &alen) == 0);
  char *list_json = NULL, url[128];
  CHECK_OK(wh_endpoint_list_json(reg, &list_json));
  cJSON *arr = cJSON_Parse(list_json);
  wh_free(list_json);
  snprintf(url, sizeof url, "http://127.0.0.1:%u/hole", (unsigned)ntohs(a.sin_port));
  CHECK_OK(wh_endpoint_set_url(reg, cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "id")), url));
  cJSON_Delete(arr);
  wh_dispatcher *d;
  CHECK_OK(wh_dispatcher_new(&d, reg));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, 1));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_MAX_IN_FLIGHT, 1));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_TIMEOUT_MS, 30000));
  CHECK_OK(wh_dispatcher_start(d));
  struct stat stt;
  const char *file = store + 7;
  char wal[600];
  snprintf(wal, sizeof wal, "%s-wal", file);
  stat(wal, &stt);
  /* Allow what the file holds now plus a little. */
  struct rlimit rl = {(rlim_t)stt.st_size + 64 * 1024, (rlim_t)stt.st_size + 64 * 1024};
  setrlimit(RLIMIT_FSIZE, &rl);
  int ok = 0, rc = WH_OK;
  static char big[20000];
  memcpy(big, "{\"blob\":\"", 9);
  memset(big + 9, 'x', 19000);
  memcpy(big + 9 + 19000, "\"}", 3);
  for (int i = 0; i < 64 && rc == WH_OK; i++) {
    wh_event *ev = h_person_event(NULL, NULL);
    wh_event_set_resource_json(ev, big);
    rc = wh_dispatcher_emit(d, ev, full_msgs[i], WH_ID_MAX);
    ok += rc == WH_OK;
  }
  CHECK_INT(rc, WH_ESTORE);
  CHECK(strstr(wh_error_last(), "sqlite:") != NULL);
  CHECK(ok >= 1);
  /* Report the accepted ids to the parent through a file next to the store. */
  char list[600];
  snprintf(list, sizeof list, "%s.accepted", file);
  rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
  setrlimit(RLIMIT_FSIZE, &rl); /* may fail (lowering hard limits is final): the list goes to /tmp then */
  FILE *f = fopen(list, "w");
  if (!f) {
    snprintf(list, sizeof list, "/tmp/wh-full-accepted-%d", (int)getppid());
    f = fopen(list, "w");
  }
  for (int i = 0; f && i < ok; i++)
    fprintf(f, "%s\n", full_msgs[i]);
  if (f)
    fclose(f);
  _exit(check_failures); /* no clean shutdown: like a process that dies */
}

static void full_disk(void)
{
  char store[600], url[256];
  store_path(store, sizeof store, "full.db");
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  char ep[WH_ID_MAX];
  rcv_url(R, "/full", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "full", url, NULL, ep, sizeof ep));
  wh_registry_free(reg);
  CHECK_INT(in_child("child-full", store), 0);

  char list[700], line[128];
  snprintf(list, sizeof list, "%s.accepted", store + 7);
  FILE *f = fopen(list, "r");
  if (!f) {
    snprintf(list, sizeof list, "/tmp/wh-full-accepted-%d", (int)getpid());
    f = fopen(list, "r");
  }
  CHECK(f != NULL);
  size_t accepted = 0;
  char ids[64][WH_ID_MAX];
  while (f && accepted < 64 && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    snprintf(ids[accepted++], WH_ID_MAX, "%.63s", line);
  }
  if (f)
    fclose(f);
  unlink(list);
  CHECK(accepted >= 1);
  /* With room again, everything accepted is delivered. */
  CHECK_OK(wh_registry_open(&reg, store));
  CHECK_OK(wh_endpoint_set_url(reg, ep, url));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = started(reg, &log, NULL);
  CHECK(h_wait(&log, ep, WH_DELIVERED, accepted, 10000));
  for (size_t i = 0; i < accepted; i++)
    CHECK(rcv_find_header(R, "webhook-id", ids[i]) != NULL);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

/* ---- the WAL starts over ------------------------------------------------------------ */

/* The first n bytes of the database's "-wal" or "-shm" file; 0 when it has fewer. */
static int read_head(const char *db_path, const char *suffix, unsigned char *buf, size_t n)
{
  char name[600];
  snprintf(name, sizeof name, "%s%s", db_path, suffix);
  FILE *f = fopen(name, "rb");
  if (!f)
    return 0;
  size_t got = fread(buf, 1, n, f);
  fclose(f);
  return got == n;
}

/* The WAL header's checkpoint sequence number (offset 12, big-endian): SQLite
   increments it each time the WAL starts over from its beginning. */
static long wal_sequence(const char *db_path)
{
  unsigned char h[32];
  if (!read_head(db_path, "-wal", h, sizeof h))
    return -1;
  return (long)((unsigned long)h[12] << 24 | (unsigned long)h[13] << 16 | (unsigned long)h[14] << 8 | h[15]);
}

/* Frames in the WAL: mxFrame of the wal-index header in the -shm file
   (offset 16, native byte order; SQLite's file format, "WAL-Index Format"). */
static long wal_frames(const char *db_path)
{
  unsigned char h[48];
  if (!read_head(db_path, "-shm", h, sizeof h))
    return -1;
  uint32_t mx;
  memcpy(&mx, h + 16, sizeof mx);
  return (long)mx;
}

/* Checkpoints run beside the writer, and the WAL can only start over once all
   of it has been copied while the writer is between transactions: after a
   burst that leaves thousands of frames and a quiet moment, the next write
   must start the WAL over (else it grows for as long as the process runs). */
static void wal_starts_over(void)
{
  char store[512];
  store_path(store, sizeof store, "wal.db");
  const char *path = store + 7;
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  char url[128], id[WH_ID_MAX];
  rcv_url(R, "/wal", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "wal", url, NULL, id, sizeof id));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_start(d));
  /* Emit until the WAL holds 1,500 frames (a checkpoint copies them meanwhile,
     but the WAL keeps them until it starts over). */
  long frames = 0;
  for (int i = 0; i < 50000 && frames < 1500; i++) {
    CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
    if (i % 100 == 99)
      frames = wal_frames(path);
  }
  CHECK(frames >= 1500);
  long before = wal_sequence(path);
  CHECK(before >= 0);
  CHECK_OK(wh_dispatcher_drain(d, 20000));
  /* Quiet: the writer copies the rest of the WAL, and the next write starts
     it over. How soon the writer notices the quiet depends on the machine:
     look again every 300 ms, for at most 10 s. */
  long after = before, left = -1;
  for (int64_t end = h_mono_ms() + 10000; after <= before && h_mono_ms() < end;) {
    h_sleep_ms(300);
    CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
    after = wal_sequence(path);
    left = wal_frames(path);
  }
  printf("wal: %ld frames after the burst; checkpoint sequence %ld then, %ld after a quiet moment and the next "
         "write, which left %ld frames\n", frames, before, after, left);
  CHECK(after > before);               /* it started over since the burst */
  CHECK(left >= 0 && left < 1000);     /* and is short now */
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_OK(wh_dispatcher_stop(d, 1000));
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

int main(int argc, char **argv)
{
  self_path = argv[0];
  if (argc == 3 && strcmp(argv[1], "child-readonly") == 0) {
    read_only_child(argv[2]);
    return check_failures;
  }
  if (argc == 3 && strcmp(argv[1], "child-hold") == 0) {
    hold_child(argv[2]);
    return check_failures;
  }
  if (argc == 3 && strcmp(argv[1], "child-full") == 0) {
    full_disk_child(argv[2]);
    return check_failures;
  }
  snprintf(dir, sizeof dir, "/tmp/wh-store-XXXXXX");
  if (!mkdtemp(dir) || rcv_start(&R, 0) != 0)
    return 1;
  endpoints_persist();
  char store[512];
  store_path(store, sizeof store, "resume.db");
  log_and_resume(store);
  log_and_resume("memory:");
  store_path(store, sizeof store, "replay.db");
  replay_recover_retention(store);
  replay_recover_retention("memory:");
  bad_files();
  read_only();
  several_openers();
  full_disk();
  wal_starts_over();
  rcv_free(R);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return check_done("store");
}
