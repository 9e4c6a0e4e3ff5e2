/*
 * Emit latency and throughput: wh_emit (wh_dispatcher_emit through the
 * default dispatcher) from THREADS host threads, each call timed on its own. Deliveries go to one
 * endpoint on a loopback listener that accepts and never answers, one request
 * at a time, so the figures are those of emit alone (with the SQLite store
 * each emit returns after its commit; concurrent emits share commits).
 *
 *   bench_emit STORE THREADS EVENTS SECONDS [BATCH]
 *
 * With BATCH > 1 each thread emits its events BATCH at a time with
 * wh_dispatcher_emit_batch (one commit per batch with SQLite); the latencies
 * are then those of one batch call, and emits_per_s counts events.
 *
 * Stops after EVENTS emits in all or SECONDS, whichever comes first. The event
 * is built before the clock starts; the timed part is the emit call itself
 * (serialising the envelope, fan-out, the store, waking a worker).
 * STORE is "memory:" or "sqlite:PATH" (the files are removed before and after).
 */
#include "bench.h"

typedef struct {
  wh_dispatcher *d;
  int batch;
  long n;
  double until;
  double *lat;
  long count;
  pthread_t t;
} worker;

static void *run_batches(worker *w)
{
  wh_event **evs = malloc((size_t)w->batch * sizeof *evs);
  for (long i = 0; i + w->batch <= w->n; i += w->batch) {
    for (int k = 0; k < w->batch; k++)
      evs[k] = bench_event(NULL);
    double t0 = bench_now();
    int rc = wh_dispatcher_emit_batch(w->d, evs, (size_t)w->batch, NULL, 0);
    double t1 = bench_now();
    if (rc)
      bench_die("wh_dispatcher_emit_batch");
    w->lat[w->count++] = t1 - t0;
    if (t1 > w->until)
      break;
  }
  free(evs);
  return NULL;
}

static void *run(void *p)
{
  worker *w = p;
  if (w->batch > 1)
    return run_batches(w);
  for (long i = 0; i < w->n; i++) {
    wh_event *ev = bench_event(NULL);
    double t0 = bench_now();
    int rc = wh_emit(ev); /* through the default dispatcher: the one started last */
    double t1 = bench_now();
    if (rc)
      bench_die("wh_emit");
    w->lat[w->count++] = t1 - t0;
    if (t1 > w->until)
      break;
  }
  return NULL;
}

static void remove_files(const char *path)
{
  char f[4200];
  unlink(path);
  snprintf(f, sizeof f, "%s-wal", path);
  unlink(f);
  snprintf(f, sizeof f, "%s-shm", path);
  unlink(f);
}

int main(int argc, char **argv)
{
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: bench_emit STORE THREADS EVENTS SECONDS [BATCH]\n");
    return 2;
  }
  int batch = argc == 6 ? atoi(argv[5]) : 1;
  const char *store = argv[1];
  int threads = atoi(argv[2]);
  long events = atol(argv[3]);
  double secs = atof(argv[4]);
  if (threads < 1 || threads > 64 || events < threads || batch < 1 || batch > 100000)
    return 2;
  const char *path = strncmp(store, "sqlite:", 7) == 0 ? store + 7 : NULL;
  if (path)
    remove_files(path);

  bench_hole hole;
  bench_hole_open(&hole);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/hang", hole.port);
  wh_registry *reg = bench_registry(store);
  bench_endpoint(reg, "bench", url, NULL, NULL);
  wh_dispatcher *d = bench_dispatcher(reg, 0, NULL);
  if (wh_dispatcher_set_int(d, WH_OPT_MAX_IN_FLIGHT, 1))
    bench_die("WH_OPT_MAX_IN_FLIGHT");
  bench_start(d);

  worker w[64];
  double start = bench_now(), cpu0 = bench_cpu_s();
  for (int i = 0; i < threads; i++) {
    w[i] = (worker){.d = d, .batch = batch, .n = events / threads, .until = start + secs};
    w[i].lat = malloc((size_t)w[i].n * sizeof *w[i].lat);
    pthread_create(&w[i].t, NULL, run, &w[i]);
  }
  long total = 0; /* calls */
  for (int i = 0; i < threads; i++) {
    pthread_join(w[i].t, NULL);
    total += w[i].count;
  }
  long emitted = total * batch;
  double elapsed = bench_now() - start, cpu = bench_cpu_s() - cpu0;
  double *all = malloc((size_t)(total ? total : 1) * sizeof *all);
  long k = 0;
  for (int i = 0; i < threads; i++) {
    memcpy(all + k, w[i].lat, (size_t)w[i].count * sizeof *all);
    k += w[i].count;
    free(w[i].lat);
  }
  qsort(all, (size_t)total, sizeof *all, bench_cmp_double);
  if (batch > 1)
    printf("emit %s, %d threads, batches of %d: %ld emits in %.3f s\n", path ? "sqlite" : "memory", threads, batch,
           emitted, elapsed);
  else
    printf("emit %s, %d threads: %ld emits in %.3f s\n", path ? "sqlite" : "memory", threads, emitted, elapsed);
  bench_result("emits_per_s", (double)emitted / elapsed);
  bench_result("emit_p50_us", bench_quantile_sorted(all, (size_t)total, 0.50) * 1e6);
  bench_result("emit_p99_us", bench_quantile_sorted(all, (size_t)total, 0.99) * 1e6);
  bench_result("emit_p999_us", bench_quantile_sorted(all, (size_t)total, 0.999) * 1e6);
  bench_result("cpu_us_per_emit", cpu / (double)emitted * 1e6);
  free(all);
  wh_dispatcher_stop(d, 0);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  if (path)
    remove_files(path);
  return 0;
}
