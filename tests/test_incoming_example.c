/* examples/incoming_receiver, as a user runs it: started on a loopback port
   with four incoming webhooks and a SQLite store, sent requests of each scheme
   with libcurl, checked by their status codes, then stopped with SIGTERM;
   what it printed must show the accepted requests. Then started again on the
   same store: a request it accepted before is a duplicate.

     test_incoming_example PATH_TO_incoming_receiver */
#include <webhook/webhook.h>

#include "support/check.h"
#include "support/insign.h"

#include <curl/curl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STD_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define GH_SECRET "It's a Secret to Everybody"
#define STRIPE_SECRET "whsec_test_example_0123456789"
#define SLACK_SECRET "8f742231b10e8888abcd99yyyzzz85a5"

typedef struct {
  pid_t pid;
  FILE *out;
  int port;
} server;

static int start(server *s, const char *exe, const char *store)
{
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  s->pid = fork();
  if (s->pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    execl(exe, exe, "--port", "0", "--store", store, "casebook=standard:" STD_SECRET, "github-ci=github:" GH_SECRET,
          "billing=stripe:" STRIPE_SECRET, "slack=slack:" SLACK_SECRET, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  s->out = fdopen(fds[0], "r");
  char line[256];
  s->port = 0;
  while (fgets(line, sizeof line, s->out))
    if (sscanf(line, "listening on http://127.0.0.1:%d", &s->port) == 1)
      break;
  return s->port > 0 ? 0 : -1;
}

/* Stop it; its whole output into out. */
static void stop(server *s, char *out, size_t len)
{
  kill(s->pid, SIGTERM);
  size_t n = fread(out, 1, len - 1, s->out);
  out[n] = '\0';
  fclose(s->out);
  int status = 0;
  waitpid(s->pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static size_t keep(char *p, size_t size, size_t n, void *ud)
{
  char *buf = ud;
  size_t have = strlen(buf), add = size * n;
  if (have + add < 1024) {
    memcpy(buf + have, p, add);
    buf[have + add] = '\0';
  }
  return size * n;
}

/* POST (or method) the request to /in/<name>: the status, the answer in reply. */
static long send_req(const server *s, const char *method, const char *name, const in_req *r, char reply[1024])
{
  CURL *c = curl_easy_init();
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/in/%s", s->port, name);
  struct curl_slist *hs = curl_slist_append(NULL, "content-type: application/json");
  char line[5000];
  for (size_t i = 0; i < r->n; i++) {
    snprintf(line, sizeof line, "%s: %s", r->names[i], r->values[i]);
    hs = curl_slist_append(hs, line);
  }
  reply[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body ? r->body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)r->len);
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  long status = 0;
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hs);
  curl_easy_cleanup(c);
  return status;
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s PATH_TO_incoming_receiver\n", argv[0]);
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  char db[128], store[160];
  snprintf(db, sizeof db, "/tmp/wh-test-incoming-example-%d.db", (int)getpid());
  snprintf(store, sizeof store, "sqlite:%s", db);
  unlink(db);
  server s;
  if (start(&s, argv[1], store) != 0) {
    fprintf(stderr, "test_incoming_example: %s did not start\n", argv[1]);
    return 1;
  }
  int64_t now = (int64_t)time(NULL);
  char reply[1024], mid[64];
  snprintf(mid, sizeof mid, "msg_example_%lld_%d", (long long)now, (int)getpid());
  const char *body = "{\"resource\":{\"first_name\":\"John\"},\"event_type\":\"CREATE\"}";

  in_req std;
  in_init(&std, body);
  in_standard(&std, STD_SECRET, mid, now);
  CHECK_INT(send_req(&s, "POST", "casebook", &std, reply), 200);
  CHECK(strstr(reply, "accepted msg_example_") != NULL);
  CHECK_INT(send_req(&s, "POST", "casebook", &std, reply), 200);
  CHECK(strstr(reply, "duplicate msg_example_") != NULL);

  in_req bad;
  in_init(&bad, "{\"resource\":{\"first_name\":\"Mallory\"}}");
  for (int i = 0; i < 3; i++)
    in_add(&bad, std.names[i], std.values[i]);
  CHECK_INT(send_req(&s, "POST", "casebook", &bad, reply), 401);
  CHECK(strstr(reply, "no signature matched") != NULL);
  bad.n = 2; /* no webhook-signature */
  CHECK_INT(send_req(&s, "POST", "casebook", &bad, reply), 400);
  in_req old;
  in_init(&old, body);
  in_standard(&old, STD_SECRET, "msg_example_old", now - 3600);
  CHECK_INT(send_req(&s, "POST", "casebook", &old, reply), 401);
  CHECK(strstr(reply, "timestamp") != NULL);
  CHECK_INT(send_req(&s, "POST", "nobody", &std, reply), 404);
  CHECK_INT(send_req(&s, "GET", "casebook", &std, reply), 405);

  in_req gh;
  char guid[64];
  snprintf(guid, sizeof guid, "2f1b6e0a-%lld-%d", (long long)now, (int)getpid());
  in_init(&gh, "{\"zen\":\"Practicality beats purity.\"}");
  in_github(&gh, GH_SECRET, guid);
  CHECK_INT(send_req(&s, "POST", "github-ci", &gh, reply), 200);
  CHECK_INT(send_req(&s, "POST", "casebook", &gh, reply), 400); /* another webhook's request */
  in_req st;
  in_init(&st, "{\"id\":\"evt_example_1\",\"object\":\"event\"}");
  const char *secs[] = {STRIPE_SECRET};
  in_stripe(&st, secs, 1, now);
  CHECK_INT(send_req(&s, "POST", "billing", &st, reply), 200);
  CHECK(strstr(reply, "accepted evt_example_1") != NULL);
  in_req sl;
  in_init(&sl, "token=x&team_id=T1&command=%2Fcase&text=open");
  in_slack(&sl, SLACK_SECRET, now);
  CHECK_INT(send_req(&s, "POST", "slack", &sl, reply), 200);

  static char out[65536];
  stop(&s, out, sizeof out);
  CHECK(strstr(out, "accepted  /in/casebook id=msg_example_") != NULL);
  CHECK(strstr(out, "duplicate /in/casebook id=msg_example_") != NULL);
  CHECK(strstr(out, "refused   /in/casebook 401") != NULL);
  CHECK(strstr(out, "accepted  /in/github-ci id=2f1b6e0a-") != NULL);
  CHECK(strstr(out, "accepted  /in/billing id=evt_example_1") != NULL);
  CHECK(strstr(out, "accepted  /in/slack id=") != NULL);
  CHECK(strstr(out, "stopped") != NULL);

  /* Restarted on the same store: what it accepted before is a duplicate. */
  if (start(&s, argv[1], store) == 0) {
    CHECK_INT(send_req(&s, "POST", "github-ci", &gh, reply), 200);
    CHECK(strstr(reply, "duplicate") != NULL);
    CHECK_INT(send_req(&s, "POST", "casebook", &std, reply), 200);
    CHECK(strstr(reply, "duplicate") != NULL);
    stop(&s, out, sizeof out);
  } else {
    CHECK(!"restart");
  }
  char side[200];
  unlink(db);
  snprintf(side, sizeof side, "%s-wal", db);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", db);
  unlink(side);
  curl_global_cleanup();
  return check_done("test_incoming_example");
}
