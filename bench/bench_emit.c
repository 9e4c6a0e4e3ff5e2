/*
 * Emit throughput and latency: wh_emit from 1 and 8 host threads into the
 * memory store and into the SQLite store (durable: each emit returns after
 * its commit; concurrent emits share commits). Deliveries go to one endpoint
 * that accepts connections and never answers, one request at a time, so the
 * figures are those of emit itself.
 *
 *   bench_emit [SECONDS_PER_CASE] [DIR]
 */
#include <webhook/webhook.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *resource =
  "{\"marital_status\":{\"name\":\"Single adult\",\"id\":\"6120b81e-221c-11ea-978f-2e728ce88125\"},"
  "\"date_of_birth\":\"02/13/2023\",\"sex\":{\"name\":\"Male\",\"id\":\"b149d056-6a9f-46ee-afde-1aec972dbe9f\"},"
  "\"primary_language\":{\"name\":\"English\",\"id\":\"f045ef20-221a-11ea-978f-2e728ce88125\"},"
  "\"last_name\":\"Doe\",\"hispanic_or_latino\":\"no\",\"id\":\"eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543\","
  "\"first_name\":\"John\",\"highest_education_grade\":{\"name\":\"12\",\"id\":\"7772ff4a-221d-11ea-978f-"
  "2e728ce88125\"}}";

typedef struct {
  wh_dispatcher *d;
  double until;
  long count;
  double *lat;
  size_t nlat, cap;
} worker;

static void *run(void *p)
{
  worker *w = p;
  while (now_s() < w->until) {
    wh_event *ev;
    wh_event_new(&ev, "people", "CREATE");
    wh_event_set_resource_json(ev, resource);
    wh_event_set_tenant_id(ev, "be461bd7-2d91-41c6-ab29-4389066bcc71");
    wh_event_set_user_id(ev, "f9762deb-a115-412d-adf7-cf772807734a");
    wh_event_set_resource_id(ev, "eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543");
    double t0 = now_s();
    int rc = wh_dispatcher_emit(w->d, ev, NULL, 0);
    double t1 = now_s();
    if (rc) {
      fprintf(stderr, "emit: %s\n", wh_error_last());
      break;
    }
    if (w->nlat == w->cap) {
      w->cap = w->cap ? w->cap * 2 : 65536;
      w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
    }
    w->lat[w->nlat++] = t1 - t0;
    w->count++;
  }
  return NULL;
}

static int cmp_d(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void one_case(const char *store, int threads, double secs, unsigned hole_port)
{
  wh_registry *reg;
  wh_dispatcher *d;
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/hang", hole_port);
  if (wh_registry_open(&reg, store) || wh_endpoint_add(reg, "bench", url, NULL, NULL, 0) ||
      wh_dispatcher_new(&d, reg) || wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, 1) ||
      wh_dispatcher_set_int(d, WH_OPT_MAX_IN_FLIGHT, 1) || wh_dispatcher_set_int(d, WH_OPT_TIMEOUT_MS, 30000) ||
      wh_dispatcher_set_int(d, WH_OPT_QUEUE_LIMIT, 100000000) || wh_dispatcher_start(d)) {
    fprintf(stderr, "setup: %s\n", wh_error_last());
    exit(1);
  }
  worker w[64] = {{0}};
  pthread_t t[64];
  double start = now_s();
  for (int i = 0; i < threads; i++) {
    w[i].d = d;
    w[i].until = start + secs;
    pthread_create(&t[i], NULL, run, &w[i]);
  }
  long total = 0;
  size_t nlat = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    total += w[i].count;
    nlat += w[i].nlat;
  }
  double elapsed = now_s() - start;
  double *all = malloc((nlat ? nlat : 1) * sizeof *all);
  size_t k = 0;
  for (int i = 0; i < threads; i++) {
    memcpy(all + k, w[i].lat, w[i].nlat * sizeof *all);
    k += w[i].nlat;
    free(w[i].lat);
  }
  qsort(all, nlat, sizeof *all, cmp_d);
  double p50 = nlat ? all[nlat / 2] : 0, p99 = nlat ? all[(size_t)(nlat * 0.99)] : 0,
         p999 = nlat ? all[(size_t)(nlat * 0.999)] : 0;
  printf("| %-7s | %2d | %10.0f | %9.1f | %9.1f | %9.1f |\n", strncmp(store, "sqlite:", 7) == 0 ? "sqlite" : "memory",
         threads, total / elapsed, p50 * 1e6, p99 * 1e6, p999 * 1e6);
  fflush(stdout);
  free(all);
  wh_dispatcher_stop(d, 0);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
}

/* A listener that accepts and never answers (the kernel's backlog accepts for it). */
static int hole(unsigned *port)
{
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t l = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 128) ||
      getsockname(s, (struct sockaddr *)&a, &l))
    return -1;
  *port = ntohs(a.sin_port);
  return s;
}

int main(int argc, char **argv)
{
  double secs = argc > 1 ? atof(argv[1]) : 3;
  const char *dir = argc > 2 ? argv[2] : "/tmp";
  unsigned port;
  int hs = hole(&port);
  if (hs < 0)
    return 1;
  printf("| store   | threads | emits/s | p50 us | p99 us | p999 us |\n|---|---|---|---|---|---|\n");
  static const int th[] = {1, 8};
  for (int s = 0; s < 2; s++)
    for (int i = 0; i < 2; i++) {
      char store[512];
      if (s == 0) {
        snprintf(store, sizeof store, "memory:");
      } else {
        snprintf(store, sizeof store, "%s/bench-emit-%d-%d.db", dir, (int)getpid(), th[i]);
        unlink(store);
        char spec[600];
        snprintf(spec, sizeof spec, "sqlite:%s", store);
        one_case(spec, th[i], secs, port);
        char f[600];
        unlink(store);
        snprintf(f, sizeof f, "%s-wal", store);
        unlink(f);
        snprintf(f, sizeof f, "%s-shm", store);
        unlink(f);
        continue;
      }
      one_case(store, th[i], secs, port);
    }
  close(hs);
  return 0;
}
