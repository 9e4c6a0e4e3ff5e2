/*
 * What the benchmark programs share: the payload, clocks, percentiles,
 * resident memory, a delivery counter fed by the result callback, and a
 * loopback listener that accepts connections and never answers.
 *
 * Every program prints its figures as lines "RESULT <name> <value>", which
 * bench/run collects over several runs; everything else it prints is for people.
 */
#ifndef WEBHOOK_BENCH_H
#define WEBHOOK_BENCH_H

#include <webhook/webhook.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- the payload: the seed's person-CREATE event ------------------------------ */

static const char bench_person[] =
  "{\"marital_status\":{\"name\":\"Single adult\",\"id\":\"6120b81e-221c-11ea-978f-2e728ce88125\"},"
  "\"date_of_birth\":\"02/13/2023\",\"sex\":{\"name\":\"Male\",\"id\":\"b149d056-6a9f-46ee-afde-1aec972dbe9f\"},"
  "\"primary_language\":{\"name\":\"English\",\"id\":\"f045ef20-221a-11ea-978f-2e728ce88125\"},"
  "\"last_name\":\"Doe\",\"hispanic_or_latino\":\"no\",\"id\":\"eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543\","
  "\"first_name\":\"John\",\"highest_education_grade\":{\"name\":\"12\",\"id\":\"7772ff4a-221d-11ea-978f-"
  "2e728ce88125\"}}";

static inline void bench_die(const char *what)
{
  fprintf(stderr, "bench: %s: %s\n", what, wh_error_last());
  exit(1);
}

/* The person event; rtype "people" unless given (other types miss the filters). */
static inline wh_event *bench_event(const char *rtype)
{
  wh_event *ev = NULL;
  if (wh_event_new(&ev, rtype ? rtype : "people", "CREATE") ||
      wh_event_set_resource_json(ev, bench_person) ||
      wh_event_set_tenant_id(ev, "be461bd7-2d91-41c6-ab29-4389066bcc71") ||
      wh_event_set_user_id(ev, "f9762deb-a115-412d-adf7-cf772807734a") ||
      wh_event_set_resource_id(ev, "eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543"))
    bench_die("building the event");
  return ev;
}

/* The bytes every benchmark posts: wh_event_to_json of the person event. */
static inline size_t bench_payload_len(void)
{
  wh_event *ev = bench_event(NULL);
  char *json = NULL;
  if (wh_event_to_json(ev, &json))
    bench_die("wh_event_to_json");
  size_t n = strlen(json);
  wh_free(json);
  wh_event_free(ev);
  return n;
}

/* ---- clocks and statistics ---------------------------------------------------- */

static inline double bench_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void bench_sleep(double s)
{
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static inline int bench_cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of v[0..n), sorted in place first. Nearest rank. */
static inline double bench_quantile_sorted(const double *v, size_t n, double q)
{
  if (!n)
    return 0;
  size_t i = (size_t)(q * (double)n);
  return v[i < n ? i : n - 1];
}

static inline void bench_result(const char *name, double value)
{
  printf("RESULT %s %.6g\n", name, value);
  fflush(stdout);
}

/* A field of /proc/self/status in KiB ("VmRSS:", "VmHWM:"), -1 if missing. */
static inline long bench_status_kib(const char *field)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t n = strlen(field);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0)
      v = atol(line + n);
  if (f)
    fclose(f);
  return v;
}

/* CPU time (user + system) this process has used, in seconds. */
static inline double bench_cpu_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- counting outcomes through the result callback ------------------------------- */

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  atomic_long delivered, failed, retrying;
  long target; /* signal when delivered + failed reaches it */
  double last; /* bench_now() of the outcome that reached the target */
} bench_counter;

static inline void bench_counter_init(bench_counter *c)
{
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  c->target = -1;
}

static inline void bench_on_result(const wh_result *r, void *ud)
{
  bench_counter *c = ud;
  int o = wh_result_outcome(r);
  long done;
  if (o == WH_RETRYING) {
    if (atomic_fetch_add(&c->retrying, 1) == 0)
      fprintf(stderr, "bench: a delivery failed and will be retried: %s\n",
              wh_result_error(r) ? wh_result_error(r) : "?");
    return;
  }
  if (o == WH_DELIVERED)
    done = atomic_fetch_add(&c->delivered, 1) + 1 + atomic_load(&c->failed);
  else
    done = atomic_fetch_add(&c->failed, 1) + 1 + atomic_load(&c->delivered);
  pthread_mutex_lock(&c->mu);
  if (c->target >= 0 && done >= c->target && c->last == 0) {
    c->last = bench_now();
    pthread_cond_broadcast(&c->cv);
  }
  pthread_mutex_unlock(&c->mu);
}

/* Wait until target outcomes (delivered or failed) arrived or timeout_s passed.
   Returns the time of the last one, or 0 on timeout. */
static inline double bench_counter_wait(bench_counter *c, long target, double timeout_s)
{
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += (time_t)timeout_s;
  pthread_mutex_lock(&c->mu);
  c->target = target;
  if (c->last == 0 && atomic_load(&c->delivered) + atomic_load(&c->failed) >= target)
    c->last = bench_now();
  while (c->last == 0)
    if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) == ETIMEDOUT)
      break;
  double t = c->last;
  pthread_mutex_unlock(&c->mu);
  return t;
}

/* ---- a loopback listener that accepts and never answers ------------------------------ */

typedef struct {
  int fd;
  unsigned port;
  pthread_t thread;
} bench_hole;

static inline void *bench_hole_main(void *p)
{
  bench_hole *h = p;
  for (;;) {
    int c = accept(h->fd, NULL, NULL);
    if (c < 0 && errno != EINTR && errno != ECONNABORTED && errno != EMFILE)
      break;
    /* Keep c open and never read from it: the request hangs until the sender's timeout. */
  }
  return NULL;
}

static inline void bench_hole_open(bench_hole *h)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t l = sizeof a;
  h->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (h->fd < 0 || bind(h->fd, (struct sockaddr *)&a, sizeof a) || listen(h->fd, 4096) ||
      getsockname(h->fd, (struct sockaddr *)&a, &l)) {
    perror("bench: hole listener");
    exit(1);
  }
  h->port = ntohs(a.sin_port);
  pthread_create(&h->thread, NULL, bench_hole_main, h);
  pthread_detach(h->thread);
}

/* ---- dispatchers ------------------------------------------------------------------------- */

static inline wh_registry *bench_registry(const char *store)
{
  wh_registry *reg;
  if (wh_registry_open(&reg, store))
    bench_die("wh_registry_open");
  return reg;
}

static inline void bench_endpoint(wh_registry *reg, const char *name, const char *url, const char *filter,
                                  char id[WH_ID_MAX])
{
  char tmp[WH_ID_MAX];
  if (wh_endpoint_add(reg, name, url, NULL, id ? id : tmp, WH_ID_MAX))
    bench_die("wh_endpoint_add");
  if (filter && wh_endpoint_subscribe(reg, id ? id : tmp, filter))
    bench_die("wh_endpoint_subscribe");
}

/* A dispatcher allowed to reach loopback, reporting to c; not started. */
static inline wh_dispatcher *bench_dispatcher(wh_registry *reg, int workers, bench_counter *c)
{
  wh_dispatcher *d;
  if (wh_dispatcher_new(&d, reg) || wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, 1) ||
      (workers > 0 && wh_dispatcher_set_int(d, WH_OPT_WORKERS, workers)) ||
      wh_dispatcher_set_int(d, WH_OPT_TIMEOUT_MS, 30000) ||
      wh_dispatcher_set_int(d, WH_OPT_QUEUE_LIMIT, 100000000) ||
      (c && wh_dispatcher_on_result(d, bench_on_result, c)))
    bench_die("configuring the dispatcher");
  /* https endpoints of the benchmark: a private CA (bench/run makes it). */
  if (getenv("WH_BENCH_CA") && wh_dispatcher_set_str(d, WH_OPT_CA_FILE, getenv("WH_BENCH_CA")))
    bench_die("WH_OPT_CA_FILE");
  /* For experiments: WH_BENCH_OPTS="3=64,2=1024" sets integer options by number
     (here WH_OPT_MAX_PER_ENDPOINT and WH_OPT_MAX_IN_FLIGHT). bench/run does not set it. */
  const char *o = getenv("WH_BENCH_OPTS");
  while (o && *o) {
    char *end;
    long opt = strtol(o, &end, 10);
    if (*end != '=')
      break;
    long v = strtol(end + 1, &end, 10);
    if (wh_dispatcher_set_int(d, (wh_option)opt, v))
      bench_die("WH_BENCH_OPTS");
    o = *end == ',' ? end + 1 : end;
  }
  return d;
}

static inline void bench_start(wh_dispatcher *d)
{
  if (wh_dispatcher_start(d))
    bench_die("wh_dispatcher_start");
}

/* Build k events of rtype into evs and emit them in one wh_dispatcher_emit_batch call. */
static inline void bench_emit_batch(wh_dispatcher *d, wh_event **evs, size_t k, const char *rtype)
{
  for (size_t j = 0; j < k; j++)
    evs[j] = bench_event(rtype);
  if (wh_dispatcher_emit_batch(d, evs, k, NULL, 0))
    bench_die("wh_dispatcher_emit_batch");
}

static inline void bench_emit(wh_dispatcher *d, const char *rtype)
{
  if (wh_dispatcher_emit(d, bench_event(rtype), NULL, 0))
    bench_die("wh_dispatcher_emit");
}

#endif
