/* The crash test: a child process emits events into a SQLite store from
   several threads and is killed with SIGKILL at a random moment; after a
   restart every event whose emit returned WH_OK must arrive, with a valid
   signature. Duplicates are allowed, with the same webhook-id only. */
#include <webhook/webhook.h>

#include "receiver.h"
#include "support/check.h"
#include "support/harness.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define PER_THREAD 5000
#define ROUNDS 3

/* ---- the child: emit until killed (or done) -------------------------------------- */

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static void *emitter(void *arg)
{
  wh_dispatcher *d = arg;
  for (int i = 0; i < PER_THREAD; i++) {
    char id[WH_ID_MAX], line[WH_ID_MAX + 2];
    if (wh_dispatcher_emit(d, h_person_event(NULL, i % 2 ? "UPDATE" : "CREATE"), id, sizeof id) != WH_OK)
      continue;
    /* Only now is the event accepted: tell the parent. */
    int n = snprintf(line, sizeof line, "%s\n", id);
    pthread_mutex_lock(&out_mu);
    if (write(1, line, (size_t)n) != n)
      _exit(3);
    pthread_mutex_unlock(&out_mu);
  }
  return NULL;
}

static int child_main(const char *store)
{
  wh_registry *reg;
  wh_dispatcher *d;
  if (wh_registry_open(&reg, store) || wh_dispatcher_new(&d, reg) ||
      wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, 1) ||
      wh_dispatcher_set_str(d, WH_OPT_RETRY_SCHEDULE, "0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2") ||
      wh_dispatcher_set_int(d, WH_OPT_BREAKER_FAILURE_PCT, 0) || wh_dispatcher_start(d)) {
    fprintf(stderr, "child: %s\n", wh_error_last());
    return 2;
  }
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, emitter, d);
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  pause(); /* wait for the kill: no clean shutdown */
  return 0;
}

/* ---- the parent ---------------------------------------------------------------------- */

typedef struct {
  char (*ids)[WH_ID_MAX];
  size_t n, cap;
} idset;

static void idset_add(idset *s, const char *id)
{
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 1024;
    s->ids = realloc(s->ids, s->cap * sizeof *s->ids);
  }
  snprintf(s->ids[s->n++], WH_ID_MAX, "%s", id);
}

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

/* Run the child, kill it after kill_ms, collect the ids it reported accepted. */
static void run_round(const char *self, const char *store, int kill_ms, idset *acked)
{
  int fds[2];
  CHECK(pipe(fds) == 0);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execl(self, self, "child", store, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  /* Read while it runs (a full pipe would stall its emits), kill it at the
     chosen moment, then read what is left. Lines are assembled across reads;
     a line cut by the kill was not complete and is dropped. */
  char pending[256];
  size_t plen = 0, before = acked->n;
  int64_t deadline = h_mono_ms() + kill_ms;
  int killed = 0;
  for (;;) {
    if (!killed && h_mono_ms() >= deadline) {
      kill(pid, SIGKILL);
      killed = 1;
    }
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    int left = killed ? 1000 : (int)(deadline - h_mono_ms());
    if (poll(&pfd, 1, left > 0 ? left : 0) <= 0)
      continue;
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0)
      break; /* EOF: the child is gone */
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] == '\n') {
        pending[plen] = '\0';
        idset_add(acked, pending);
        plen = 0;
      } else if (plen < sizeof pending - 1) {
        pending[plen++] = buf[i];
      }
    }
  }
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  printf("round: killed after %d ms, %zu events accepted\n", kill_ms, acked->n - before);
}

int main(int argc, char **argv)
{
  if (argc == 3 && strcmp(argv[1], "child") == 0)
    return child_main(argv[2]);

  char dir[] = "/tmp/wh-crash-XXXXXX";
  if (!mkdtemp(dir))
    return 1;
  char store[256], url[256], refused[128];
  snprintf(store, sizeof store, "sqlite:%s/crash.db", dir);
  rcv *r;
  if (rcv_start(&r, 0) != 0)
    return 1;
  rcv_url(r, "/crash", url, sizeof url);
  snprintf(refused, sizeof refused, "http://127.0.0.1:%u/down", rcv_refused_port());

  wh_registry *reg;
  char ep[WH_ID_MAX], secret[128];
  CHECK_OK(wh_registry_open(&reg, store));
  CHECK_OK(wh_endpoint_add(reg, "crash", refused, NULL, ep, sizeof ep));
  CHECK_OK(wh_endpoint_secret(reg, ep, secret, sizeof secret));
  wh_registry_free(reg);

  unsigned seed = (unsigned)h_now_ms();
  printf("seed %u\n", seed);
  srand(seed);
  idset acked = {0};
  for (int round = 0; round < ROUNDS; round++) {
    /* The last round delivers while it runs, so some attempts are cut by the kill. */
    if (round == ROUNDS - 1) {
      CHECK_OK(wh_registry_open(&reg, store));
      CHECK_OK(wh_endpoint_set_url(reg, ep, url));
      wh_registry_free(reg);
    }
    run_round(argv[0], store, 150 + rand() % 600, &acked);
  }
  CHECK(acked.n > 0);

  /* Restart with the receiver up: everything accepted arrives. */
  CHECK_OK(wh_registry_open(&reg, store));
  CHECK_OK(wh_endpoint_set_url(reg, ep, url));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_WORKERS, 2));
  CHECK_OK(wh_dispatcher_start(d));

  qsort(acked.ids, acked.n, WH_ID_MAX, cmp_id);
  int64_t deadline = h_mono_ms() + 120000;
  size_t missing = acked.n;
  while (missing && h_mono_ms() < deadline) {
    h_sleep_ms(200);
    size_t count = rcv_count(r);
    idset got = {0};
    for (size_t i = 0; i < count; i++) {
      const rcv_request *q = rcv_request_at(r, i);
      const char *id = rcv_header_get(q, "webhook-id");
      if (id)
        idset_add(&got, id);
    }
    qsort(got.ids, got.n, WH_ID_MAX, cmp_id);
    missing = 0;
    for (size_t i = 0; i < acked.n; i++)
      if (!bsearch(acked.ids[i], got.ids, got.n, WH_ID_MAX, cmp_id))
        missing++;
    free(got.ids);
  }
  CHECK_INT(missing, 0);

  /* Every request carried a valid signature; duplicates share an id that was emitted. */
  size_t total = rcv_count(r), bad = 0, dup = 0, unknown = 0;
  idset seen = {0};
  for (size_t i = 0; i < total; i++) {
    const rcv_request *q = rcv_request_at(r, i);
    const char *id = rcv_header_get(q, "webhook-id");
    if (wh_verify(secret, id, rcv_header_get(q, "webhook-timestamp"), rcv_header_get(q, "webhook-signature"),
                  q->body, q->body_len, 0) != WH_OK)
      bad++;
    idset_add(&seen, id);
  }
  qsort(seen.ids, seen.n, WH_ID_MAX, cmp_id);
  for (size_t i = 1; i < seen.n; i++)
    dup += strcmp(seen.ids[i], seen.ids[i - 1]) == 0;
  /* Events emitted but killed before emit returned may arrive too: that is fine. */
  for (size_t i = 0; i < seen.n; i++)
    unknown += !bsearch(seen.ids[i], acked.ids, acked.n, WH_ID_MAX, cmp_id);
  printf("crash: %zu accepted, %zu requests received, %zu duplicates, %zu not acknowledged before the kill, "
         "%zu bad signatures\n",
         acked.n, total, dup, unknown, bad);
  CHECK_INT(bad, 0);
  CHECK_OK(wh_dispatcher_stop(d, 5000));
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
  free(acked.ids);
  free(seen.ids);
  rcv_free(r);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return check_done("crash");
}
