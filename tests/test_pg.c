/* The PostgreSQL store, against a real server (tests/pg/pg.sh, started by the
   pg_server fixture; WH_TEST_PG is its URI): endpoints and the log shared
   between processes, the outbox, several dispatcher processes sharing the
   work exactly once, one of them killed, and the database restarting. */
#include <webhook/webhook.h>

#include "receiver.h"
#include "support/check.h"
#include "support/harness.h"

#include <libpq-fe.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *uri;
static rcv *R;

static void sql(const char *statement)
{
  PGconn *c = PQconnectdb(uri);
  PQclear(PQexec(c, "SET client_min_messages = warning"));
  PGresult *res = PQexec(c, statement);
  if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
    fprintf(stderr, "sql: %s: %s", statement, PQerrorMessage(c));
  PQclear(res);
  PQfinish(c);
}

/* Every test starts from an empty schema, as a new deployment would. */
static void reset_db(void) { sql("DROP SCHEMA IF EXISTS webhook CASCADE"); }

static wh_dispatcher *dispatcher(wh_registry *reg, h_log *log)
{
  wh_dispatcher *d = h_dispatcher(reg, log, "0.2,0.2,0.2");
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_LEASE_MS, 2000));
  CHECK_OK(wh_dispatcher_start(d));
  return d;
}

/* ---- two processes' registries see one set of endpoints and one log -------------- */

static void shared_registry(void)
{
  reset_db();
  wh_registry *a, *b;
  CHECK_OK(wh_registry_open(&a, uri));
  CHECK_OK(wh_registry_open(&b, uri)); /* a second process, as far as the store can tell */
  char id[WH_ID_MAX], url[256];
  rcv_url(R, "/pg-shared", url, sizeof url);
  CHECK_OK(wh_endpoint_add(a, "shared", url, "added by a", id, sizeof id));
  CHECK_OK(wh_endpoint_subscribe(a, id, "people.*"));
  /* b learns of it through NOTIFY (or the version poll behind it). */
  char *json = NULL;
  int rc = WH_ENOTFOUND;
  for (int i = 0; i < 100 && rc == WH_ENOTFOUND; i++) {
    rc = wh_endpoint_get_json(b, id, &json);
    if (rc)
      h_sleep_ms(50);
  }
  CHECK_INT(rc, WH_OK);
  CHECK(json && strstr(json, "people.*") && strstr(json, "added by a"));
  wh_free(json);
  /* Names are unique across processes. */
  CHECK_ERR(wh_endpoint_add(b, "shared", url, NULL, NULL, 0), WH_EEXIST, "shared");
  /* Secrets are shared: b signs as a does. */
  char sa[128], sb[128];
  CHECK_OK(wh_endpoint_secret(a, id, sa, sizeof sa));
  CHECK_OK(wh_endpoint_secret(b, id, sb, sizeof sb));
  CHECK_STR(sa, sb);

  /* An event emitted through a is in b's log. */
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = dispatcher(a, &log);
  char mid[WH_ID_MAX];
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), mid, sizeof mid));
  CHECK(h_wait(&log, id, WH_DELIVERED, 1, 10000));
  CHECK_OK(wh_dispatcher_stop(d, 2000));
  CHECK_OK(wh_message_get_json(b, mid, &json));
  CHECK(json && strstr(json, "\"state\":\"delivered\"") && strstr(json, "\"http_status\":200"));
  wh_free(json);
  /* A disable by one process (as the dispatcher does on 410) stops the other. */
  CHECK_OK(wh_endpoint_set_enabled(b, id, 0));
  rc = WH_OK;
  for (int i = 0; i < 100; i++) {
    CHECK_OK(wh_endpoint_get_json(a, id, &json));
    int off = strstr(json, "\"enabled\":false") != NULL;
    wh_free(json);
    if (off)
      break;
    h_sleep_ms(50);
  }
  CHECK_OK(wh_endpoint_get_json(a, id, &json));
  CHECK(strstr(json, "\"enabled\":false") != NULL);
  wh_free(json);
  wh_dispatcher_free(d);
  wh_registry_free(a);
  wh_registry_free(b);
  h_log_free(&log);
}

/* ---- the outbox: emitted if and only if the host's transaction commits ------------- */

static void outbox(void)
{
  reset_db();
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, uri));
  char id[WH_ID_MAX], url[256], secret[128];
  rcv_url(R, "/pg-outbox", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "outbox", url, NULL, id, sizeof id));
  CHECK_OK(wh_endpoint_secret(reg, id, secret, sizeof secret));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = dispatcher(reg, &log);

  /* The host's own connection and transactions. */
  PGconn *host = PQconnectdb(uri);
  CHECK(PQstatus(host) == CONNECTION_OK);
  PQclear(PQexec(host, "BEGIN"));
  PQclear(PQexec(host, "CREATE TEMP TABLE people(id text)"));
  PQclear(PQexec(host, "INSERT INTO people VALUES ('p1')"));
  PGresult *res = PQexec(host, "SELECT webhook.emit('people', 'CREATE', '{\"id\": \"p1\", \"n\": 1.10}',"
                               " 'tenant-1', 'user-1', 'p1')");
  CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
  PQclear(res);
  h_sleep_ms(300);
  CHECK_INT(rcv_count_path(R, "/pg-outbox"), 0); /* not committed: not sent */
  PQclear(PQexec(host, "COMMIT"));
  CHECK(h_wait(&log, id, WH_DELIVERED, 1, 10000));
  const rcv_request *q = rcv_request_at(R, rcv_count(R) - 1);
  CHECK(q && strstr(q->body, "{\"resource\":{\"id\":\"p1\",\"n\":1.10},\"tenant_id\":\"tenant-1\",\"user_id\":"
                             "\"user-1\",\"resource_id\":\"p1\",\"resource_type\":\"people\",\"event_type\":"
                             "\"CREATE\",\"event_time\":\"") == q->body);
  if (q)
    CHECK_OK(wh_verify(secret, rcv_header_get(q, "webhook-id"), rcv_header_get(q, "webhook-timestamp"),
                       rcv_header_get(q, "webhook-signature"), q->body, q->body_len, 0));

  /* Rolled back: never sent. A plain INSERT into the table works as well. */
  PQclear(PQexec(host, "BEGIN"));
  PQclear(PQexec(host, "SELECT webhook.emit('people', 'DELETE', '{\"id\": \"p2\"}')"));
  PQclear(PQexec(host, "ROLLBACK"));
  PQclear(PQexec(host, "INSERT INTO webhook.outbox(resource_type, event_type, resource)"
                       " VALUES ('cases', 'UPDATE', '{\"id\": \"c1\"}')"));
  CHECK(h_wait(&log, id, WH_DELIVERED, 2, 10000));
  h_sleep_ms(500);
  CHECK_INT(rcv_count_path(R, "/pg-outbox"), 2);
  CHECK(strstr(rcv_request_at(R, rcv_count(R) - 1)->body, "\"resource_type\":\"cases\"") != NULL);

  /* A row that cannot be an event is set aside with the reason, and blocks nothing. */
  PQclear(PQexec(host, "INSERT INTO webhook.outbox(resource_type, event_type, resource)"
                       " VALUES ('bad type', 'CREATE', '[1, 2]')"));
  PQclear(PQexec(host, "SELECT webhook.emit('people', 'UPDATE', '{\"id\": \"p3\"}')"));
  CHECK(h_wait(&log, id, WH_DELIVERED, 3, 10000));
  res = PQexec(host, "SELECT error FROM webhook.outbox_rejected");
  CHECK(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
        strstr(PQgetvalue(res, 0, 0), "resource_type") != NULL);
  PQclear(res);
  res = PQexec(host, "SELECT count(*) FROM webhook.outbox");
  CHECK(PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "0") == 0);
  PQclear(res);
  PQfinish(host);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

/* ---- several processes share the work ----------------------------------------------------- */

typedef struct {
  wh_dispatcher *d;
  int events;
} emit_job;

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

/* Emit, and report each accepted id on stdout (one line, written whole). */
static void *emit_thread(void *arg)
{
  emit_job *e = arg;
  for (int i = 0; i < e->events; i++) {
    char id[WH_ID_MAX], line[WH_ID_MAX + 2];
    if (wh_dispatcher_emit(e->d, h_person_event(NULL, i % 2 ? "UPDATE" : "CREATE"), id, sizeof id) != WH_OK) {
      fprintf(stderr, "worker emit: %s\n", wh_error_last());
      continue;
    }
    int n = snprintf(line, sizeof line, "%s\n", id);
    pthread_mutex_lock(&out_mu);
    if (write(1, line, (size_t)n) != n)
      _exit(3);
    pthread_mutex_unlock(&out_mu);
  }
  return NULL;
}

static int worker_main(const char *store, int events, int lease_ms)
{
  wh_registry *reg;
  wh_dispatcher *d;
  if (wh_registry_open(&reg, store) || wh_dispatcher_new(&d, reg) ||
      wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, 1) ||
      wh_dispatcher_set_int(d, WH_OPT_LEASE_MS, lease_ms) || wh_dispatcher_start(d)) {
    fprintf(stderr, "worker: %s\n", wh_error_last());
    return 2;
  }
  /* Four host threads, as an application server would emit from its requests. */
  enum { EMITTERS = 4 };
  pthread_t t[EMITTERS];
  emit_job e[EMITTERS];
  for (int i = 0; i < EMITTERS; i++) {
    e[i] = (emit_job){d, events / EMITTERS + (i < events % EMITTERS)};
    pthread_create(&t[i], NULL, emit_thread, &e[i]);
  }
  for (int i = 0; i < EMITTERS; i++)
    pthread_join(t[i], NULL);
  if (write(1, "done\n", 5) != 5)
    return 3;
  /* Keep delivering (and taking over others' work) until the parent says stop. */
  char c;
  while (read(0, &c, 1) > 0)
    ;
  wh_dispatcher_stop(d, 5000);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  return 0;
}

typedef struct {
  pid_t pid;
  int to, from; /* its stdin (we close it to stop it), its stdout */
  int done;
} proc;

static void spawn(proc *p, const char *self, int events, int lease_ms)
{
  int in[2], out[2];
  /* Close-on-exec: later workers must not inherit this one's pipe ends, or it never sees EOF. */
  CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
  fflush(NULL);
  p->pid = fork();
  if (p->pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    char n[16], l[16];
    snprintf(n, sizeof n, "%d", events);
    snprintf(l, sizeof l, "%d", lease_ms);
    execl(self, self, "worker", uri, n, l, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  p->to = in[1];
  p->from = out[0];
  p->done = 0;
}

static void add_id(char (**ids)[WH_ID_MAX], size_t *n, size_t *cap, const char *id)
{
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 4096;
    *ids = realloc(*ids, *cap * WH_ID_MAX);
  }
  snprintf((*ids)[(*n)++], WH_ID_MAX, "%.63s", id);
}

/* Read every worker's reports at once (a worker whose pipe is full would stop
   emitting), until each said "done" or closed; kill worker 0 at kill_at_ms
   (monotonic) if that is not 0. Lines are assembled across reads. */
static void read_all(proc *p, int nproc, int64_t kill_at_ms, char (**ids)[WH_ID_MAX], size_t *n, size_t *cap)
{
  char line[3][128];
  size_t len[3] = {0};
  int open = nproc;
  while (open > 0) {
    if (kill_at_ms && h_mono_ms() >= kill_at_ms) {
      kill(p[0].pid, SIGKILL);
      kill_at_ms = 0;
    }
    struct pollfd pfd[3];
    for (int i = 0; i < nproc; i++)
      pfd[i] = (struct pollfd){.fd = p[i].done ? -1 : p[i].from, .events = POLLIN};
    if (poll(pfd, (nfds_t)nproc, 100) <= 0)
      continue;
    for (int i = 0; i < nproc; i++) {
      if (p[i].done || !(pfd[i].revents & (POLLIN | POLLHUP)))
        continue;
      char buf[4096];
      ssize_t got = read(p[i].from, buf, sizeof buf);
      if (got <= 0) {
        p[i].done = 1; /* killed: what it reported whole is taken */
        open--;
        continue;
      }
      for (ssize_t k = 0; k < got; k++) {
        if (buf[k] != '\n') {
          if (len[i] < sizeof line[i] - 1)
            line[i][len[i]++] = buf[k];
          continue;
        }
        line[i][len[i]] = '\0';
        len[i] = 0;
        if (strcmp(line[i], "done") == 0) {
          p[i].done = 1;
          open--;
          break;
        }
        if (strncmp(line[i], "msg_", 4) == 0)
          add_id(ids, n, cap, line[i]);
      }
    }
  }
}

static int cmp_key(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* nproc processes emit `total` events to two endpoints; optionally one is killed
   after half a second. Checks every (id, endpoint) arrived; exactly once unless killed. */
static void shared_work(const char *self, int nproc, int total, int kill_one)
{
  reset_db();
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, uri));
  char url[256];
  const char *paths[2] = {"/pg-work-a", "/pg-work-b"};
  for (int i = 0; i < 2; i++) {
    rcv_url(R, paths[i], url, sizeof url);
    CHECK_OK(wh_endpoint_add(reg, paths[i] + 1, url, NULL, NULL, 0));
  }
  wh_registry_free(reg);
  size_t before = rcv_count(R);
  proc p[3];
  char(*ids)[WH_ID_MAX] = NULL;
  size_t n = 0, cap = 0;
  int64_t t0 = h_mono_ms();
  /* Leases: 2 s where a process is killed (its work is taken over that soon).
     Without a kill no delivery may be made twice: each process keeps its
     backlog claimed by renewing every third of the lease. Renewals went
     through the writer's queue, and on a loaded machine one queued behind a
     batch of emits came more than 2 s late: 7 of 60,000 deliveries were made
     twice. They now run beside the writer (renew_beside_writer); 6 s leaves
     a loaded machine's scheduler its margin too. */
  for (int i = 0; i < nproc; i++)
    spawn(&p[i], self, total / nproc, kill_one ? 2000 : 6000);
  /* With kill_one, process 0 is killed mid-run, 0.7 s in. */
  read_all(p, nproc, kill_one ? t0 + 700 : 0, &ids, &n, &cap);
  if (kill_one) {
    waitpid(p[0].pid, NULL, 0);
    close(p[0].to);
    close(p[0].from);
  }
  size_t want = n * 2;
  int64_t deadline = h_mono_ms() + 120000;
  while (rcv_count(R) - before < want && h_mono_ms() < deadline)
    h_sleep_ms(20);
  int64_t ms = h_mono_ms() - t0;
  size_t got = rcv_count(R) - before;
  printf("pg: %d process%s%s, %zu events accepted, %zu deliveries received in %lld ms: %.0f deliveries/s\n", nproc,
         nproc > 1 ? "es" : "", kill_one ? " (one killed)" : "", n, got, (long long)ms, got * 1000.0 / (double)ms);
  /* Give stragglers a moment (duplicates would show up now). */
  h_sleep_ms(kill_one ? 500 : 1000);
  got = rcv_count(R) - before;

  /* Count (webhook-id, endpoint) at the receiver. */
  char **keys = calloc(got ? got : 1, sizeof *keys);
  for (size_t i = 0; i < got; i++) {
    const rcv_request *q = rcv_request_at(R, before + i);
    keys[i] = malloc(WH_ID_MAX + 32);
    snprintf(keys[i], WH_ID_MAX + 32, "%s %s", rcv_header_get(q, "webhook-id"), q->path);
  }
  qsort(keys, got, sizeof *keys, cmp_key);
  size_t dups = 0, distinct = got ? 1 : 0;
  for (size_t i = 1; i < got; i++) {
    if (strcmp(keys[i], keys[i - 1]) == 0)
      dups++;
    else
      distinct++;
  }
  size_t missing = 0;
  for (size_t i = 0; i < n; i++)
    for (int e = 0; e < 2; e++) {
      char key[WH_ID_MAX + 32], *kp = key;
      snprintf(key, sizeof key, "%s %s", ids[i], paths[e]);
      missing += bsearch(&kp, keys, got, sizeof *keys, cmp_key) == NULL;
    }
  printf("pg: %zu distinct deliveries, %zu duplicates, %zu missing\n", distinct, dups, missing);
  CHECK_INT(missing, 0);
  if (!kill_one)
    CHECK_INT(dups, 0);
  for (size_t i = 0; i < got; i++)
    free(keys[i]);
  free(keys);
  free(ids);
  for (int i = kill_one ? 1 : 0; i < nproc; i++) {
    close(p[i].to);
    int st;
    waitpid(p[i].pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(p[i].from);
  }
}

/* ---- the database restarts during delivery ------------------------------------------------- */

static void db_restart(void)
{
  const char *restart = getenv("WH_TEST_PG_RESTART");
  if (!restart) {
    printf("db restart: skipped (WH_TEST_PG_RESTART not set)\n");
    return;
  }
  reset_db();
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, uri));
  char id[WH_ID_MAX], url[256];
  rcv_url(R, "/pg-restart", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "restart", url, NULL, id, sizeof id));
  /* Slow answers, so deliveries are in flight when the database goes. */
  rcv_spec slow = {.kind = RCV_REPLY, .status = 200, .ms = 50};
  rcv_script(R, "/pg-restart", &slow);
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = dispatcher(reg, &log);
  char ids[400][WH_ID_MAX];
  int accepted = 0, refused = 0;
  for (int i = 0; i < 200; i++)
    if (wh_dispatcher_emit(d, h_person_event(NULL, NULL), ids[accepted], WH_ID_MAX) == WH_OK)
      accepted++;
  /* Restart in the background; meanwhile emit: refusals must be quick. */
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", restart, (char *)NULL);
    _exit(127);
  }
  int64_t worst = 0;
  for (int i = 0; i < 200; i++) {
    int64_t t = h_mono_ms();
    int rc = wh_dispatcher_emit(d, h_person_event(NULL, NULL), ids[accepted], WH_ID_MAX);
    t = h_mono_ms() - t;
    if (t > worst)
      worst = t;
    if (rc == WH_OK) {
      accepted++;
    } else {
      CHECK_INT(rc, WH_ESTORE);
      refused++;
    }
    h_sleep_ms(10);
  }
  int st;
  waitpid(pid, &st, 0);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  printf("db restart: %d emits accepted, %d refused with WH_ESTORE while it was down, slowest emit %lld ms\n",
         accepted, refused, (long long)worst);
  CHECK(worst < 8000);
  /* After the restart: every accepted event arrives. */
  int64_t deadline = h_mono_ms() + 60000;
  int missing = accepted;
  while (missing && h_mono_ms() < deadline) {
    missing = 0;
    for (int i = 0; i < accepted; i++)
      missing += rcv_find_header(R, "webhook-id", ids[i]) == NULL;
    if (missing)
      h_sleep_ms(200);
  }
  CHECK_INT(missing, 0);
  /* And new events flow again. */
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), ids[0], WH_ID_MAX));
  rcv_script_clear(R, "/pg-restart");
  int64_t until = h_mono_ms() + 20000;
  while (!rcv_find_header(R, "webhook-id", ids[0]) && h_mono_ms() < until)
    h_sleep_ms(50);
  CHECK(rcv_find_header(R, "webhook-id", ids[0]) != NULL);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

/* ---- lifecycle (API-1.1 section 3) with the shared store ------------------------------- */

static long pg_count(const char *query)
{
  PGconn *c = PQconnectdb(uri);
  PGresult *res = PQexec(c, query);
  long n = PQresultStatus(res) == PGRES_TUPLES_OK ? atol(PQgetvalue(res, 0, 0)) : -1;
  PQclear(res);
  PQfinish(c);
  return n;
}

typedef struct {
  wh_registry *reg;
  wh_dispatcher *d;
  const char *msg_id;
} pg_forked;

/* In a child after fork: the connections are the parent's. Everything that
   would use them refuses at once, and freeing says no goodbye on them. */
static int pg_child(void *arg)
{
  pg_forked *f = arg;
  int bad = 0;
  char *json = NULL;
  bad += wh_dispatcher_emit(f->d, h_person_event(NULL, NULL), NULL, 0) != WH_ESTATE;
  bad += wh_emit(h_person_event(NULL, NULL)) != WH_ESTATE;
  bad += wh_endpoint_add(f->reg, "child", "http://127.0.0.1:9/", NULL, NULL, 0) != WH_ESTATE;
  bad += wh_message_get_json(f->reg, f->msg_id, &json) != WH_ESTATE;
  bad += strstr(wh_error_last(), "belongs to the parent process") == NULL;
  wh_dispatcher_free(f->d);
  wh_registry_free(f->reg);
  return bad;
}

static void lifecycle_pg(void)
{
  reset_db();
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, uri));
  char id[WH_ID_MAX], url[256], mid[WH_ID_MAX];
  rcv_url(R, "/pg-life", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "life", url, NULL, id, sizeof id));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = dispatcher(reg, &log);
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), mid, sizeof mid));
  CHECK_OK(wh_dispatcher_drain(d, 10000));

  pg_forked f = {.reg = reg, .d = d, .msg_id = mid};
  CHECK_INT(h_fork_run(pg_child, &f, 20000), 0);
  /* The parent's connections are intact: reads, writes, deliveries. */
  char *json = NULL;
  CHECK_OK(wh_message_get_json(reg, mid, &json));
  CHECK(json && strstr(json, "\"delivered\""));
  wh_free(json);
  CHECK_OK(wh_endpoint_add(reg, "after-fork", url, NULL, NULL, 0));
  size_t before = rcv_count_path(R, "/pg-life");
  CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), mid, sizeof mid));
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  CHECK_INT(rcv_count_path(R, "/pg-life") - before, 2);

  /* A batch: one commit, ids in order; all or nothing when the database refuses one. */
  wh_event *evs[4];
  char ids[4 * WH_ID_MAX];
  for (int i = 0; i < 4; i++)
    evs[i] = h_person_event(NULL, NULL);
  CHECK_OK(wh_dispatcher_emit_batch(d, evs, 4, ids, sizeof ids));
  for (int i = 0; i < 4; i++) {
    CHECK_OK(wh_message_get_json(reg, ids + i * WH_ID_MAX, &json));
    wh_free(json);
  }
  sql("CREATE FUNCTION webhook.poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
      " IF convert_from(NEW.body, 'UTF8') LIKE '%poison%' THEN RAISE EXCEPTION 'poisoned'; END IF;"
      " RETURN NEW; END $$;"
      "CREATE TRIGGER poison BEFORE INSERT ON webhook.message FOR EACH ROW EXECUTE FUNCTION webhook.poison()");
  long msgs = pg_count("SELECT count(*) FROM webhook.message");
  long dlvs = pg_count("SELECT count(*) FROM webhook.delivery");
  for (int i = 0; i < 4; i++)
    evs[i] = h_person_event(NULL, NULL);
  wh_event_free(evs[2]);
  wh_event_new(&evs[2], "people", "CREATE");
  wh_event_set_resource_json(evs[2], "{\"poison\":true}");
  CHECK_ERR(wh_dispatcher_emit_batch(d, evs, 4, ids, sizeof ids), WH_ESTORE, "poisoned");
  CHECK_INT(pg_count("SELECT count(*) FROM webhook.message"), msgs);
  CHECK_INT(pg_count("SELECT count(*) FROM webhook.delivery"), dlvs);
  sql("DROP TRIGGER poison ON webhook.message");

  /* Free order: the registry first, with deliveries in flight and pending. */
  rcv_spec stall = {.kind = RCV_STALL, .ms = 2000};
  rcv_script(R, "/pg-life", &stall);
  for (int i = 0; i < 20; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  h_sleep_ms(100);
  wh_registry_free(reg);
  wh_dispatcher_free(d);
  rcv_script_clear(R, "/pg-life");
  CHECK(pg_count("SELECT count(*) FROM webhook.delivery WHERE state = 0") >= 18); /* kept for the next run */
  h_log_free(&log);
}

/* ---- leases are renewed beside the writer, not behind it ------------------------------- */

/* The dispatcher's ERROR lines saying that renewing leases failed, counted. */
static atomic_int renew_failures_logged;

static void on_renew_log(int level, const char *message, void *ud)
{
  (void)ud;
  if (level <= WH_LOG_ERROR && strstr(message, "renewing leases failed"))
    atomic_fetch_add(&renew_failures_logged, 1);
}

static void *emit_one(void *arg)
{
  CHECK_OK(wh_dispatcher_emit(arg, h_person_event(NULL, NULL), NULL, 0));
  return NULL;
}

/* The deliveries a process holds (in flight, or waiting in its memory) keep
   their lease while its writer is held up: behind a lock here, behind a long
   batch of emits on a loaded machine. Renewed through the writer's queue, they
   lapsed, and another process took them over and delivered them a second time. */
static void renew_beside_writer(void)
{
  reset_db();
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, uri));
  char url[256];
  rcv_url(R, "/pg-renew", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "renew", url, NULL, NULL, 0));
  rcv_spec stall = {.kind = RCV_STALL, .ms = 8000};
  rcv_script(R, "/pg-renew", &stall);
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, "0.2,0.2,0.2");
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_LEASE_MS, 1500));
  CHECK_OK(wh_dispatcher_on_log(d, WH_LOG_ERROR, on_renew_log, NULL));
  CHECK_OK(wh_dispatcher_start(d));
  for (int i = 0; i < 10; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));

  /* Another session's SHARE lock on webhook.message stops the writer's next
     insert: an emit from a thread now holds the writer for as long as we like. */
  PGconn *c = PQconnectdb(uri);
  PQclear(PQexec(c, "BEGIN"));
  PGresult *res = PQexec(c, "LOCK TABLE webhook.message IN SHARE MODE");
  CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
  PQclear(res);
  pthread_t t;
  pthread_create(&t, NULL, emit_one, d);
  h_sleep_ms(3500); /* more than twice the lease */
  long held = pg_count("SELECT count(*) FROM webhook.delivery WHERE state = 0 AND claimed <> 0");
  long lapsed = pg_count("SELECT count(*) FROM webhook.delivery WHERE state = 0 AND claimed <> 0"
                         " AND lease_until < webhook.now_ms()");
  PQclear(PQexec(c, "COMMIT"));
  PQfinish(c);
  pthread_join(t, NULL);
  CHECK_INT(held, 10);
  CHECK_INT(lapsed, 0);

  /* A renewal the database refuses is the host's news: one ERROR line. */
  CHECK_INT(atomic_load(&renew_failures_logged), 0);
  sql("ALTER TABLE webhook.delivery ADD CONSTRAINT no_renewal CHECK (lease_until < 1) NOT VALID");
  for (int i = 0; i < 200 && !atomic_load(&renew_failures_logged); i++)
    h_sleep_ms(50); /* renewals come every 0.5 s; 10 s at most */
  sql("ALTER TABLE webhook.delivery DROP CONSTRAINT no_renewal");
  CHECK_INT(atomic_load(&renew_failures_logged), 1);

  rcv_script_clear(R, "/pg-renew");
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
}

int main(int argc, char **argv)
{
  if (argc == 5 && strcmp(argv[1], "worker") == 0) {
    uri = argv[2];
    return worker_main(argv[2], atoi(argv[3]), atoi(argv[4]));
  }
  uri = getenv("WH_TEST_PG");
  if (!uri || !*uri) {
    printf("WH_TEST_PG is not set: no PostgreSQL server to test against\n");
    return 77;
  }
  if (rcv_start(&R, 0) != 0)
    return 1;
  shared_registry();
  outbox();
  lifecycle_pg();
  renew_beside_writer();
  int total = getenv("WH_TEST_PG_EVENTS") ? atoi(getenv("WH_TEST_PG_EVENTS")) : 30000;
  shared_work(argv[0], 1, total, 0);
  shared_work(argv[0], 3, total, 0);
  shared_work(argv[0], 3, total / 3, 1);
  db_restart();
  rcv_free(R);
  return check_done("pg");
}
