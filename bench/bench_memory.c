/*
 * Resident memory of pending deliveries, measured as VmRSS in a fresh process.
 *
 *   bench_memory memory EVENTS
 *       memory store, one endpoint on a loopback listener that never answers,
 *       WH_OPT_MAX_IN_FLIGHT 1: emit EVENTS events (one delivery each) and compare
 *       VmRSS before and after; the payload's own bytes are subtracted to give
 *       the overhead per pending delivery
 *   bench_memory sqlite PATH EVENTS ENDPOINTS THREADS
 *       SQLite store, ENDPOINTS hanging endpoints: EVENTS x ENDPOINTS pending
 *       deliveries emitted from THREADS threads; VmRSS and VmHWM afterwards
 */
#include "bench.h"

typedef struct {
  wh_dispatcher *d;
  long n;
  pthread_t t;
} emitter;

static void *emit_main(void *p)
{
  emitter *e = p;
  for (long i = 0; i < e->n; i++)
    bench_emit(e->d, NULL);
  return NULL;
}

static wh_dispatcher *hanging_dispatcher(wh_registry *reg, int endpoints, int max_in_flight, unsigned port)
{
  for (int i = 0; i < endpoints; i++) {
    char name[32], url[128];
    snprintf(name, sizeof name, "hang-%d", i);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/hang/%d", port, i);
    bench_endpoint(reg, name, url, NULL, NULL);
  }
  wh_dispatcher *d = bench_dispatcher(reg, 0, NULL);
  if (wh_dispatcher_set_int(d, WH_OPT_MAX_IN_FLIGHT, max_in_flight))
    bench_die("WH_OPT_MAX_IN_FLIGHT");
  bench_start(d);
  return d;
}

static int cmd_memory(long events)
{
  bench_hole hole;
  bench_hole_open(&hole);
  size_t payload = bench_payload_len();
  wh_registry *reg = bench_registry("memory:");
  wh_dispatcher *d = hanging_dispatcher(reg, 1, 1, hole.port);
  /* Warm up: the first request is in flight, the allocator's arenas exist. */
  for (int i = 0; i < 1000; i++)
    bench_emit(d, NULL);
  bench_sleep(0.3);
  long before = bench_status_kib("VmRSS:");
  double t0 = bench_now();
  for (long i = 0; i < events; i++)
    bench_emit(d, NULL);
  double t1 = bench_now();
  bench_sleep(0.3);
  long after = bench_status_kib("VmRSS:");
  double per = (double)(after - before) * 1024.0 / (double)events;
  printf("memory store: %ld pending deliveries (emitted in %.3f s) added %ld KiB resident (%ld -> %ld KiB): "
         "%.0f bytes each, of which %zu are the payload\n",
         events, t1 - t0, after - before, before, after, per, payload);
  bench_result("rss_bytes_per_pending", per);
  bench_result("overhead_bytes_per_pending", per - (double)payload);
  bench_result("payload_bytes", (double)payload);
  wh_dispatcher_stop(d, 0);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  return 0;
}

static int cmd_sqlite(const char *path, long events, int endpoints, int threads)
{
  char store[4200], f[4200];
  snprintf(store, sizeof store, "sqlite:%s", path);
  unlink(path);
  snprintf(f, sizeof f, "%s-wal", path);
  unlink(f);
  snprintf(f, sizeof f, "%s-shm", path);
  unlink(f);
  bench_hole hole;
  bench_hole_open(&hole);
  wh_registry *reg = bench_registry(store);
  wh_dispatcher *d = hanging_dispatcher(reg, endpoints, 20, hole.port);
  long base = bench_status_kib("VmRSS:");
  emitter e[64];
  if (threads < 1 || threads > 64)
    threads = 8;
  double t0 = bench_now();
  for (int i = 0; i < threads; i++) {
    e[i] = (emitter){d, events / threads + (i < events % threads), 0};
    pthread_create(&e[i].t, NULL, emit_main, &e[i]);
  }
  for (int i = 0; i < threads; i++)
    pthread_join(e[i].t, NULL);
  double t1 = bench_now();
  bench_sleep(0.5);
  long rss = bench_status_kib("VmRSS:"), hwm = bench_status_kib("VmHWM:");
  printf("sqlite store: %ld pending deliveries (%ld events x %d endpoints, %.0f events/s from %d threads): "
         "resident %ld KiB (%ld at start), peak %ld KiB\n",
         events * endpoints, events, endpoints, (double)events / (t1 - t0), threads, rss, base, hwm);
  bench_result("rss_mib", (double)rss / 1024);
  bench_result("hwm_mib", (double)hwm / 1024);
  bench_result("events_per_s", (double)events / (t1 - t0));
  wh_dispatcher_stop(d, 0);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  unlink(path);
  snprintf(f, sizeof f, "%s-wal", path);
  unlink(f);
  snprintf(f, sizeof f, "%s-shm", path);
  unlink(f);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc == 3 && strcmp(argv[1], "memory") == 0)
    return cmd_memory(atol(argv[2]));
  if (argc == 6 && strcmp(argv[1], "sqlite") == 0)
    return cmd_sqlite(argv[2], atol(argv[3]), atoi(argv[4]), atoi(argv[5]));
  fprintf(stderr, "usage: bench_memory memory EVENTS | sqlite PATH EVENTS ENDPOINTS THREADS\n");
  return 2;
}
