/*
 * Delivery benchmarks of libwebhook against a loopback receiver (nginx
 * answering 204, started by bench/run). Each prints "RESULT name value" lines.
 *
 *   bench_deliver payload
 *       print the payload (wh_event_to_json of the person event) and nothing else
 *   bench_deliver freeport
 *       print a free TCP port on 127.0.0.1
 *   bench_deliver stream URL STORE WORKERS EVENTS EMIT_THREADS
 *       emit EVENTS events (from EMIT_THREADS host threads) to one endpoint while
 *       the dispatcher delivers them; throughput = EVENTS / (first emit .. last
 *       delivery, as the result callback saw it)
 *   bench_deliver stream-batch URL STORE WORKERS EVENTS BATCH
 *       as stream, from one emitting thread calling wh_dispatcher_emit_batch
 *       with BATCH events a call (one commit per call with SQLite)
 *   bench_deliver drain URL STORE WORKERS EVENTS EMIT_THREADS
 *       fill the store with EVENTS pending deliveries first (the endpoint pointing
 *       at a listener that never answers, then stopped and pointed at URL), then
 *       time a fresh dispatcher delivering them all: deliveries per second from a
 *       full store
 *   bench_deliver e2e URL STORE RATE SECONDS
 *       emit at RATE events/s from one thread; latency = result callback time
 *       (delivered) minus the time just before wh_dispatcher_emit
 *   bench_deliver hol URL HANGING EVENTS
 *       a healthy endpoint's delivery rate while HANGING endpoints (on a loopback
 *       listener that accepts and never answers) have requests hanging
 *   bench_deliver fanout URL ENDPOINTS EVENTS
 *       ENDPOINTS endpoints subscribed to "people.*" at URL/fan/<i>; every event
 *       fans out to all of them; deliveries per second
 *   bench_deliver shared URL PG_URI PROCS EVENTS
 *       PROCS processes (this one and PROCS-1 children) share one PostgreSQL
 *       store; each emits EVENTS/PROCS events from 4 threads and delivers with
 *       its own dispatcher (2 workers): whichever process claims a delivery
 *       sends it. Throughput = EVENTS / (first emit .. all delivered, counted in
 *       the database). The schema is dropped first.
 *   bench_deliver ordered URL STORE RESOURCES EVENTS ORDERED
 *       as stream (default workers, one emitting thread), the events spread over
 *       RESOURCES resource ids in turn, to an endpoint with WH_EP_ORDERED set to
 *       ORDERED (0 or 1): what ordering per resource costs
 *
 * STORE is "memory:" or "sqlite:PATH" (the files are removed before and after).
 * WORKERS is WH_OPT_WORKERS (0: the default).
 */
#include "bench.h"

#include <libpq-fe.h>
#include <sys/resource.h>

static const char *store_path(const char *store)
{
  return strncmp(store, "sqlite:", 7) == 0 ? store + 7 : NULL;
}

static void remove_store(const char *store)
{
  const char *p = store_path(store);
  if (!p)
    return;
  char f[4200];
  unlink(p);
  snprintf(f, sizeof f, "%s-wal", p);
  unlink(f);
  snprintf(f, sizeof f, "%s-shm", p);
  unlink(f);
}

/* ---- emitting from several host threads ------------------------------------------- */

typedef struct {
  wh_dispatcher *d;
  long n;
  const char *rtype;
  pthread_t t;
} emitter;

/* Events per wh_dispatcher_emit_batch call; 1: wh_dispatcher_emit, one by one. */
static int g_batch = 1;

static void *emit_main(void *p)
{
  emitter *e = p;
  if (g_batch <= 1) {
    for (long i = 0; i < e->n; i++)
      bench_emit(e->d, e->rtype);
    return NULL;
  }
  wh_event **evs = malloc((size_t)g_batch * sizeof *evs);
  if (!evs)
    bench_die("out of memory");
  for (long i = 0; i < e->n; i += g_batch) {
    size_t k = (size_t)(e->n - i < g_batch ? e->n - i : g_batch);
    bench_emit_batch(e->d, evs, k, e->rtype);
  }
  free(evs);
  return NULL;
}

/* Emit n events of rtype from threads host threads; returns when all returned. */
static void emit_many(wh_dispatcher *d, long n, int threads, const char *rtype)
{
  emitter e[64];
  if (threads < 1)
    threads = 1;
  if (threads > 64)
    threads = 64;
  if (threads == 1) {
    e[0] = (emitter){d, n, rtype, 0};
    emit_main(&e[0]);
    return;
  }
  for (int i = 0; i < threads; i++) {
    e[i] = (emitter){d, n / threads + (i < n % threads), rtype, 0};
    pthread_create(&e[i].t, NULL, emit_main, &e[i]);
  }
  for (int i = 0; i < threads; i++)
    pthread_join(e[i].t, NULL);
}

static double wait_timeout(long events) { return 60 + (double)events / 1000; }

static int check_outcomes(bench_counter *c, long events, double last)
{
  long del = atomic_load(&c->delivered), fail = atomic_load(&c->failed);
  if (!last || del != events) {
    fprintf(stderr, "bench: %ld of %ld delivered (%ld failed, %ld retried)%s\n", del, events, fail,
            atomic_load(&c->retrying), last ? "" : ", timed out");
    return 1;
  }
  return 0;
}

/* ---- stream / drain ---------------------------------------------------------------- */

static int cmd_stream(const char *url, const char *store, int workers, long events, int emit_threads)
{
  remove_store(store);
  wh_registry *reg = bench_registry(store);
  bench_endpoint(reg, "bench", url, NULL, NULL);
  bench_counter c;
  bench_counter_init(&c);
  wh_dispatcher *d = bench_dispatcher(reg, workers, &c);
  bench_start(d);
  double t0 = bench_now(), cpu0 = bench_cpu_s();
  emit_many(d, events, emit_threads, NULL);
  double t_emitted = bench_now();
  double last = bench_counter_wait(&c, events, wait_timeout(events));
  double cpu = bench_cpu_s() - cpu0;
  int bad = check_outcomes(&c, events, last);
  if (!bad) {
    printf("stream %s workers=%d: %ld events emitted in %.3f s (%d threads), all delivered after %.3f s\n",
           store_path(store) ? "sqlite" : "memory", workers, events, t_emitted - t0, emit_threads, last - t0);
    bench_result("deliveries_per_s", (double)events / (last - t0));
    bench_result("emits_per_s", (double)events / (t_emitted - t0));
    bench_result("cpu_us_per_delivery", cpu / (double)events * 1e6);
  }
  wh_dispatcher_stop(d, 5000);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  remove_store(store);
  return bad;
}

static int cmd_ordered(const char *url, const char *store, int resources, long events, int ordered)
{
  remove_store(store);
  wh_registry *reg = bench_registry(store);
  char id[WH_ID_MAX], rid[32];
  bench_endpoint(reg, "bench", url, NULL, id);
  if (wh_endpoint_set_int(reg, id, WH_EP_ORDERED, ordered))
    bench_die("WH_EP_ORDERED");
  bench_counter c;
  bench_counter_init(&c);
  wh_dispatcher *d = bench_dispatcher(reg, 0, &c);
  bench_start(d);
  double t0 = bench_now(), cpu0 = bench_cpu_s();
  for (long i = 0; i < events; i++) {
    wh_event *ev = bench_event(NULL);
    snprintf(rid, sizeof rid, "person-%ld", i % (resources > 0 ? resources : 1));
    if (wh_event_set_resource_id(ev, rid) || wh_dispatcher_emit(d, ev, NULL, 0))
      bench_die("emit");
  }
  double last = bench_counter_wait(&c, events, wait_timeout(events));
  double cpu = bench_cpu_s() - cpu0;
  int bad = check_outcomes(&c, events, last);
  if (!bad) {
    printf("%s %s, %d resources: %ld events all delivered after %.3f s\n", ordered ? "ordered" : "unordered",
           store_path(store) ? "sqlite" : "memory", resources, events, last - t0);
    bench_result("deliveries_per_s", (double)events / (last - t0));
    bench_result("cpu_us_per_delivery", cpu / (double)events * 1e6);
  }
  wh_dispatcher_stop(d, 5000);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  remove_store(store);
  return bad;
}

/* ---- several processes on one PostgreSQL store ------------------------------------------ */

static long pg_count(PGconn *c, const char *sql)
{
  PGresult *r = PQexec(c, sql);
  long n = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atol(PQgetvalue(r, 0, 0)) : -1;
  PQclear(r);
  return n;
}

/* A child: start, wait for "go", emit its share, deliver until stdin closes. */
static int cmd_shared_child(const char *store, long events)
{
  wh_registry *reg = bench_registry(store);
  wh_dispatcher *d = bench_dispatcher(reg, 2, NULL);
  bench_start(d);
  char line[16];
  if (!fgets(line, sizeof line, stdin))
    return 1;
  emit_many(d, events, 4, NULL);
  while (fgets(line, sizeof line, stdin)) {
  }
  wh_dispatcher_stop(d, 5000);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  return 0;
}

static int cmd_shared(const char *self, const char *url, const char *store, int procs, long events)
{
  PGconn *c = PQconnectdb(store);
  if (PQstatus(c) != CONNECTION_OK)
    bench_die("connecting to PostgreSQL");
  PQclear(PQexec(c, "SET client_min_messages = warning"));
  PQclear(PQexec(c, "DROP SCHEMA IF EXISTS webhook CASCADE"));
  wh_registry *reg = bench_registry(store);
  bench_endpoint(reg, "bench", url, NULL, NULL);
  wh_dispatcher *d = bench_dispatcher(reg, 2, NULL);
  bench_start(d);
  long share = events / procs;
  FILE *kids[16];
  procs = procs > 16 ? 16 : procs < 1 ? 1 : procs;
  for (int i = 1; i < procs; i++) {
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "'%s' shared-child '%s' %ld", self, store, share);
    if (!(kids[i] = popen(cmd, "w")))
      bench_die("starting a process");
  }
  bench_sleep(1.0); /* every process started and listening */
  double t0 = bench_now(), cpu0 = bench_cpu_s();
  for (int i = 1; i < procs; i++) {
    fputs("go\n", kids[i]);
    fflush(kids[i]);
  }
  emit_many(d, events - share * (procs - 1), 4, NULL);
  long done = 0;
  double limit = t0 + wait_timeout(events);
  while ((done = pg_count(c, "SELECT count(*) FROM webhook.delivery WHERE state = 1")) < events &&
         bench_now() < limit)
    bench_sleep(0.01);
  double t1 = bench_now(), cpu = bench_cpu_s() - cpu0;
  for (int i = 1; i < procs; i++)
    pclose(kids[i]);
  int bad = done != events;
  if (bad) {
    fprintf(stderr, "bench: %ld of %ld delivered\n", done, events);
  } else {
    printf("postgresql, %d process%s sharing the store: %ld events all delivered after %.3f s\n", procs,
           procs == 1 ? "" : "es", events, t1 - t0);
    bench_result("deliveries_per_s", (double)events / (t1 - t0));
    bench_result("cpu_us_per_delivery_this_process", cpu / (double)events * 1e6);
  }
  wh_dispatcher_stop(d, 5000);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  PQfinish(c);
  return bad;
}

static int cmd_drain(const char *url, const char *store, int workers, long events, int emit_threads)
{
  remove_store(store);
  bench_hole hole;
  bench_hole_open(&hole);
  char hang[128], id[WH_ID_MAX];
  snprintf(hang, sizeof hang, "http://127.0.0.1:%u/hang", hole.port);
  wh_registry *reg = bench_registry(store);
  bench_endpoint(reg, "bench", hang, NULL, id);

  /* Fill: the one request in flight hangs, everything else waits in the store. */
  wh_dispatcher *fill = bench_dispatcher(reg, 1, NULL);
  if (wh_dispatcher_set_int(fill, WH_OPT_MAX_IN_FLIGHT, 1))
    bench_die("WH_OPT_MAX_IN_FLIGHT");
  bench_start(fill);
  double f0 = bench_now();
  emit_many(fill, events, emit_threads, NULL);
  double f1 = bench_now();
  wh_dispatcher_stop(fill, 0); /* the hanging request is abandoned: it counts as not attempted */
  wh_dispatcher_free(fill);
  if (wh_endpoint_set_url(reg, id, url))
    bench_die("wh_endpoint_set_url");

  bench_counter c;
  bench_counter_init(&c);
  wh_dispatcher *d = bench_dispatcher(reg, workers, &c);
  double t0 = bench_now(), cpu0 = bench_cpu_s();
  bench_start(d);
  double last = bench_counter_wait(&c, events, wait_timeout(events));
  double cpu = bench_cpu_s() - cpu0;
  int bad = check_outcomes(&c, events, last);
  if (!bad) {
    printf("drain %s workers=%d: %ld pending (filled in %.3f s), all delivered after %.3f s\n",
           store_path(store) ? "sqlite" : "memory", workers, events, f1 - f0, last - t0);
    bench_result("deliveries_per_s", (double)events / (last - t0));
    bench_result("cpu_us_per_delivery", cpu / (double)events * 1e6);
  }
  wh_dispatcher_stop(d, 5000);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  remove_store(store);
  return bad;
}

/* ---- end-to-end latency ---------------------------------------------------------------- */

typedef struct {
  char id[WH_ID_MAX];
  double t_emit;
  int used;
} e2e_slot;

typedef struct {
  pthread_mutex_t mu;
  e2e_slot *tab;
  size_t cap; /* a power of two */
  double *lat;
  size_t nlat;
  long unknown;
  bench_counter c;
} e2e_state;

static size_t hash_str(const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return (size_t)h;
}

static void e2e_on_result(const wh_result *r, void *ud)
{
  double t = bench_now();
  e2e_state *s = ud;
  if (wh_result_outcome(r) == WH_DELIVERED) {
    const char *id = wh_result_message_id(r);
    pthread_mutex_lock(&s->mu);
    size_t i = hash_str(id) & (s->cap - 1);
    while (s->tab[i].used && strcmp(s->tab[i].id, id) != 0)
      i = (i + 1) & (s->cap - 1);
    if (s->tab[i].used)
      s->lat[s->nlat++] = t - s->tab[i].t_emit;
    else
      s->unknown++;
    pthread_mutex_unlock(&s->mu);
  }
  bench_on_result(r, &s->c);
}

static int cmd_e2e(const char *url, const char *store, double rate, double secs)
{
  remove_store(store);
  long events = (long)(rate * secs);
  e2e_state s = {0};
  pthread_mutex_init(&s.mu, NULL);
  for (s.cap = 1024; s.cap < (size_t)events * 2; s.cap *= 2) {
  }
  s.tab = calloc(s.cap, sizeof *s.tab);
  s.lat = calloc((size_t)events + 1, sizeof *s.lat);
  bench_counter_init(&s.c);
  wh_registry *reg = bench_registry(store);
  bench_endpoint(reg, "bench", url, NULL, NULL);
  wh_dispatcher *d = bench_dispatcher(reg, 0, NULL);
  if (wh_dispatcher_on_result(d, e2e_on_result, &s))
    bench_die("wh_dispatcher_on_result");
  bench_start(d);

  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  double t_start = bench_now();
  long step_ns = (long)(1e9 / rate);
  for (long i = 0; i < events; i++) {
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    next.tv_nsec += step_ns;
    while (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      next.tv_sec++;
    }
    char id[WH_ID_MAX];
    wh_event *ev = bench_event(NULL);
    /* Held across emit so the callback cannot look the id up before it is recorded;
       the callback takes its time before waiting for the lock. */
    pthread_mutex_lock(&s.mu);
    double t0 = bench_now();
    int rc = wh_dispatcher_emit(d, ev, id, sizeof id);
    if (!rc) {
      size_t k = hash_str(id) & (s.cap - 1);
      while (s.tab[k].used)
        k = (k + 1) & (s.cap - 1);
      memcpy(s.tab[k].id, id, sizeof id);
      s.tab[k].t_emit = t0;
      s.tab[k].used = 1;
    }
    pthread_mutex_unlock(&s.mu);
    if (rc)
      bench_die("wh_dispatcher_emit");
  }
  double t_end = bench_now();
  double last = bench_counter_wait(&s.c, events, wait_timeout(events));
  int bad = check_outcomes(&s.c, events, last) || s.unknown;
  if (!bad) {
    qsort(s.lat, s.nlat, sizeof *s.lat, bench_cmp_double);
    printf("e2e %s: %ld events at %.0f/s (achieved %.0f/s)\n", store_path(store) ? "sqlite" : "memory", events,
           rate, (double)events / (t_end - t_start));
    bench_result("e2e_p50_ms", bench_quantile_sorted(s.lat, s.nlat, 0.50) * 1e3);
    bench_result("e2e_p99_ms", bench_quantile_sorted(s.lat, s.nlat, 0.99) * 1e3);
    bench_result("e2e_max_ms", s.nlat ? s.lat[s.nlat - 1] * 1e3 : 0);
    bench_result("achieved_rate", (double)events / (t_end - t_start));
  }
  wh_dispatcher_stop(d, 5000);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  remove_store(store);
  free(s.tab);
  free(s.lat);
  return bad;
}

/* ---- head-of-line isolation --------------------------------------------------------------- */

static int cmd_hol(const char *url, int hanging, long events)
{
  bench_hole hole;
  bench_hole_open(&hole);
  wh_registry *reg = bench_registry("memory:");
  bench_endpoint(reg, "healthy", url, "people.CREATE", NULL);
  for (int i = 0; i < hanging; i++) {
    char name[32], hang[128];
    snprintf(name, sizeof name, "hanging-%d", i);
    snprintf(hang, sizeof hang, "http://127.0.0.1:%u/hang/%d", hole.port, i);
    bench_endpoint(reg, name, hang, "hang.*", NULL);
  }
  bench_counter c;
  bench_counter_init(&c);
  wh_dispatcher *d = bench_dispatcher(reg, 0, &c);
  bench_start(d);
  if (hanging) {
    /* Enough work for every hanging endpoint to fill its share of the in-flight
       budget and keep a backlog; the requests hang for the whole measurement. */
    emit_many(d, 20, 1, "hang");
    bench_sleep(0.5);
  }
  double t0 = bench_now();
  emit_many(d, events, 1, NULL);
  double last = bench_counter_wait(&c, events, wait_timeout(events));
  int bad = check_outcomes(&c, events, last);
  if (!bad) {
    printf("hol: healthy endpoint with %d hanging: %ld delivered in %.3f s\n", hanging, events, last - t0);
    bench_result("deliveries_per_s", (double)events / (last - t0));
  }
  wh_dispatcher_stop(d, 0);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  return bad;
}

/* ---- fan-out ------------------------------------------------------------------------------- */

static int cmd_fanout(const char *url, int endpoints, long events)
{
  wh_registry *reg = bench_registry("memory:");
  for (int i = 0; i < endpoints; i++) {
    char name[32], u[256];
    snprintf(name, sizeof name, "fan-%d", i);
    snprintf(u, sizeof u, "%s/fan/%d", url, i);
    bench_endpoint(reg, name, u, "people.*", NULL);
  }
  bench_counter c;
  bench_counter_init(&c);
  wh_dispatcher *d = bench_dispatcher(reg, 0, &c);
  bench_start(d);
  long total = events * endpoints;
  double t0 = bench_now();
  emit_many(d, events, 1, NULL);
  double t_emitted = bench_now();
  double last = bench_counter_wait(&c, total, wait_timeout(total));
  int bad = check_outcomes(&c, total, last);
  if (!bad) {
    printf("fanout: %ld events x %d endpoints emitted in %.3f s, %ld delivered in %.3f s\n", events, endpoints,
           t_emitted - t0, total, last - t0);
    bench_result("deliveries_per_s", (double)total / (last - t0));
    bench_result("emit_us_per_event", (t_emitted - t0) / (double)events * 1e6);
  }
  wh_dispatcher_stop(d, 5000);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  return bad;
}

static int cmd_freeport(void)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t l = sizeof a;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || getsockname(s, (struct sockaddr *)&a, &l))
    return 1;
  printf("%u\n", (unsigned)ntohs(a.sin_port));
  close(s);
  return 0;
}

static int cmd_payload(void)
{
  wh_event *ev = bench_event(NULL);
  char *json = NULL;
  if (wh_event_to_json(ev, &json))
    bench_die("wh_event_to_json");
  fputs(json, stdout);
  wh_free(json);
  wh_event_free(ev);
  return 0;
}

static void raise_nofile(void)
{
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

static int usage(void)
{
  fprintf(stderr, "usage: bench_deliver payload | freeport | stream URL STORE WORKERS EVENTS EMIT_THREADS |\n"
                  "       stream-batch URL STORE WORKERS EVENTS BATCH |\n"
                  "       drain URL STORE WORKERS EVENTS EMIT_THREADS | e2e URL STORE RATE SECONDS |\n"
                  "       hol URL HANGING EVENTS | fanout URL ENDPOINTS EVENTS |\n"
                  "       ordered URL STORE RESOURCES EVENTS ORDERED | shared URL PG_URI PROCS EVENTS\n");
  return 2;
}

int main(int argc, char **argv)
{
  if (argc < 2)
    return usage();
  raise_nofile();
  const char *cmd = argv[1];
  if (strcmp(cmd, "payload") == 0)
    return cmd_payload();
  if (strcmp(cmd, "freeport") == 0)
    return cmd_freeport();
  if ((strcmp(cmd, "stream") == 0 || strcmp(cmd, "drain") == 0) && argc == 7) {
    int (*f)(const char *, const char *, int, long, int) = cmd[0] == 's' ? cmd_stream : cmd_drain;
    return f(argv[2], argv[3], atoi(argv[4]), atol(argv[5]), atoi(argv[6]));
  }
  if (strcmp(cmd, "stream-batch") == 0 && argc == 7) {
    g_batch = atoi(argv[6]);
    if (g_batch < 1 || g_batch > 100000)
      return usage();
    return cmd_stream(argv[2], argv[3], atoi(argv[4]), atol(argv[5]), 1);
  }
  if (strcmp(cmd, "e2e") == 0 && argc == 6)
    return cmd_e2e(argv[2], argv[3], atof(argv[4]), atof(argv[5]));
  if (strcmp(cmd, "hol") == 0 && argc == 5)
    return cmd_hol(argv[2], atoi(argv[3]), atol(argv[4]));
  if (strcmp(cmd, "fanout") == 0 && argc == 5)
    return cmd_fanout(argv[2], atoi(argv[3]), atol(argv[4]));
  if (strcmp(cmd, "shared") == 0 && argc == 6)
    return cmd_shared(argv[0], argv[2], argv[3], atoi(argv[4]), atol(argv[5]));
  if (strcmp(cmd, "shared-child") == 0 && argc == 4)
    return cmd_shared_child(argv[2], atol(argv[3]));
  if (strcmp(cmd, "ordered") == 0 && argc == 7)
    return cmd_ordered(argv[2], argv[3], atoi(argv[4]), atol(argv[5]), atoi(argv[6]));
  return usage();
}
