/*
 * Emit latency and throughput: wh_emit (wh_dispatcher_emit through the
 * default dispatcher) from THREADS host threads, each call timed on its own. Deliveries go to one
 * endpoint on a loopback listener that accepts and never answers, one request
 * at a time, so the figures are those of emit alone (with the SQLite store
 * each emit returns after its commit; concurrent emits share commits).
 *
 *   bench_emit STORE THREADS EVENTS SECONDS [BATCH [SCRAPE_MS]]
 *
 * With BATCH > 1 each thread emits its events BATCH at a time with
 * wh_dispatcher_emit_batch (one commit per batch with SQLite); the latencies
 * are then those of one batch call, and emits_per_s counts events.
 *
 * With SCRAPE_MS > 0 the run has four phases on the same dispatcher, of a
 * quarter of EVENTS and SECONDS each: alone, with another thread calling
 * wh_dispatcher_metrics_text every SCRAPE_MS (as a Prometheus scrape, but
 * far more often), alone, scraped. The latencies of the two alone phases and
 * of the two scraped ones are pooled: emit_p99_us against
 * emit_p99_us_scraped, and what a scrape itself costs (scrape_p50_us,
 * scrape_p99_us). Alternating puts both under the same pending backlog.
 *
 * Stops after EVENTS emits in all or SECONDS, whichever comes first. The event
 * is built before the clock starts; the timed part is the emit call itself
 * (serialising the envelope, fan-out, the store, waking a worker).
 * STORE is "memory:" or "sqlite:PATH" (the files are removed before and after).
 *
 * Environment: WH_BENCH_EMIT_URL, an endpoint that answers (then the workers
 * deliver while the threads emit, as in a host under load: the latency its
 * request threads feel); WH_BENCH_QUANTILES, a file that receives the latency
 * distribution ("quantile microseconds" lines) for a plot.
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

/* The scraper: wh_dispatcher_metrics_text every period, each call timed. */
typedef struct {
  wh_dispatcher *d;
  double period;
  atomic_int stop;
  double *lat;
  long n, cap;
  pthread_t t;
} scraper;

static void *scrape(void *p)
{
  scraper *s = p;
  while (!atomic_load(&s->stop)) {
    char *text = NULL;
    double t0 = bench_now();
    if (wh_dispatcher_metrics_text(s->d, &text))
      bench_die("wh_dispatcher_metrics_text");
    double t1 = bench_now();
    wh_free(text);
    if (s->n < s->cap)
      s->lat[s->n++] = t1 - t0;
    bench_sleep(s->period);
  }
  return NULL;
}

/* One phase: THREADS threads emit n events in all (at most secs); their
   latencies are appended to *lat. Returns the calls made. */
static long phase(wh_dispatcher *d, int threads, int batch, long n, double secs, double **lat, long *nlat)
{
  worker w[64];
  double start = bench_now();
  for (int i = 0; i < threads; i++) {
    w[i] = (worker){.d = d, .batch = batch, .n = n / threads, .until = start + secs};
    w[i].lat = malloc((size_t)w[i].n * sizeof *w[i].lat);
    pthread_create(&w[i].t, NULL, run, &w[i]);
  }
  long calls = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(w[i].t, NULL);
    calls += w[i].count;
  }
  *lat = realloc(*lat, (size_t)(*nlat + calls + 1) * sizeof **lat);
  for (int i = 0; i < threads; i++) {
    memcpy(*lat + *nlat, w[i].lat, (size_t)w[i].count * sizeof **lat);
    *nlat += w[i].count;
    free(w[i].lat);
  }
  return calls;
}

static void quantiles(const char *suffix, double *v, long n)
{
  char name[64];
  qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
  snprintf(name, sizeof name, "emit_p50_us%s", suffix);
  bench_result(name, bench_quantile_sorted(v, (size_t)n, 0.50) * 1e6);
  snprintf(name, sizeof name, "emit_p99_us%s", suffix);
  bench_result(name, bench_quantile_sorted(v, (size_t)n, 0.99) * 1e6);
  snprintf(name, sizeof name, "emit_p999_us%s", suffix);
  bench_result(name, bench_quantile_sorted(v, (size_t)n, 0.999) * 1e6);
}

/* Alone, scraped, alone, scraped: see the top of the file. */
static void compare_scraped(wh_dispatcher *d, const char *kind, int threads, long events, double secs, int scrape_ms)
{
  double *alone = NULL, *scraped = NULL;
  long nalone = 0, nscraped = 0;
  scraper s = {.d = d, .period = scrape_ms / 1000.0, .cap = (long)(secs * 1000 / scrape_ms) + 1000};
  s.lat = malloc((size_t)s.cap * sizeof *s.lat);
  for (int round = 0; round < 2; round++) {
    phase(d, threads, 1, events / 4, secs / 4, &alone, &nalone);
    atomic_store(&s.stop, 0);
    pthread_create(&s.t, NULL, scrape, &s);
    phase(d, threads, 1, events / 4, secs / 4, &scraped, &nscraped);
    atomic_store(&s.stop, 1);
    pthread_join(s.t, NULL);
  }
  printf("emit %s, %d threads: %ld emits alone, %ld while scraped (%ld scrapes, every %d ms)\n", kind, threads, nalone,
         nscraped, s.n, scrape_ms);
  quantiles("", alone, nalone);
  quantiles("_scraped", scraped, nscraped);
  qsort(s.lat, (size_t)s.n, sizeof *s.lat, bench_cmp_double);
  bench_result("scrapes", (double)s.n);
  bench_result("scrape_p50_us", bench_quantile_sorted(s.lat, (size_t)s.n, 0.50) * 1e6);
  bench_result("scrape_p99_us", bench_quantile_sorted(s.lat, (size_t)s.n, 0.99) * 1e6);
  free(alone);
  free(scraped);
  free(s.lat);
}

/* The plain case: THREADS threads emit EVENTS (at most SECONDS). */
static void rate(wh_dispatcher *d, const char *kind, int threads, int batch, long events, double secs)
{
  double *all = NULL;
  long total = 0; /* calls */
  double start = bench_now(), cpu0 = bench_cpu_s();
  phase(d, threads, batch, events, secs, &all, &total);
  long emitted = total * batch;
  double elapsed = bench_now() - start, cpu = bench_cpu_s() - cpu0;
  if (batch > 1)
    printf("emit %s, %d threads, batches of %d: %ld emits in %.3f s\n", kind, threads, batch, emitted, elapsed);
  else
    printf("emit %s, %d threads: %ld emits in %.3f s\n", kind, threads, emitted, elapsed);
  bench_result("emits_per_s", (double)emitted / elapsed);
  quantiles("", all, total);
  bench_result("cpu_us_per_emit", cpu / (double)emitted * 1e6);
  const char *qfile = getenv("WH_BENCH_QUANTILES");
  FILE *qf = qfile ? fopen(qfile, "w") : NULL;
  /* 0.01 .. 0.99, then finer in the tail: 0.991 .. 0.999, 0.9991 .. 0.9999. */
  for (int i = 1; qf && i <= 117; i++) {
    double q = i <= 99 ? i / 100.0 : i <= 108 ? 0.99 + (i - 99) / 1000.0 : 0.999 + (i - 108) / 10000.0;
    fprintf(qf, "%.4f %.3f\n", q, bench_quantile_sorted(all, (size_t)total, q) * 1e6);
  }
  if (qf)
    fclose(qf);
  free(all);
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
  if (argc < 5 || argc > 7) {
    fprintf(stderr, "usage: bench_emit STORE THREADS EVENTS SECONDS [BATCH [SCRAPE_MS]]\n");
    return 2;
  }
  int batch = argc >= 6 ? atoi(argv[5]) : 1;
  int scrape_ms = argc == 7 ? atoi(argv[6]) : 0;
  const char *store = argv[1];
  int threads = atoi(argv[2]);
  long events = atol(argv[3]);
  double secs = atof(argv[4]);
  if (threads < 1 || threads > 64 || events < threads || batch < 1 || batch > 100000 || scrape_ms < 0 ||
      (scrape_ms && batch != 1))
    return 2;
  const char *path = strncmp(store, "sqlite:", 7) == 0 ? store + 7 : NULL;
  if (path)
    remove_files(path);

  const char *live = getenv("WH_BENCH_EMIT_URL");
  bench_hole hole;
  char url[128];
  if (!live) {
    bench_hole_open(&hole);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/hang", hole.port);
  }
  wh_registry *reg = bench_registry(store);
  bench_endpoint(reg, "bench", live ? live : url, NULL, NULL);
  wh_dispatcher *d = bench_dispatcher(reg, 0, NULL);
  if (!live && wh_dispatcher_set_int(d, WH_OPT_MAX_IN_FLIGHT, 1))
    bench_die("WH_OPT_MAX_IN_FLIGHT");
  bench_start(d);
  if (scrape_ms)
    compare_scraped(d, path ? "sqlite" : "memory", threads, events, secs, scrape_ms);
  else
    rate(d, path ? "sqlite" : "memory", threads, batch, events, secs);
  wh_dispatcher_stop(d, 0);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  if (path)
    remove_files(path);
  return 0;
}
