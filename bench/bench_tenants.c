/*
 * Routing cost against the number of tenants: the CPU time of wh_dispatcher_emit
 * on the emitting thread, with TENANTS tenants of 3 endpoints each and 10
 * platform endpoints (memory store).
 *
 *   bench_tenants TENANTS EVENTS [random|one]
 *
 * Each tenant's endpoints subscribe to people.*, cases.* and invoices.*; the
 * platform's to audit.*. Every emit is a people.CREATE of a tenant drawn at
 * random ("random", the default), or always of the same tenant ("one"), so
 * routing looks at that tenant's 3
 * endpoints and the 10 platform ones, and one delivery is made: the same work
 * whatever TENANTS is. What should not grow with TENANTS is the cost of finding
 * those 13. Deliveries go to a listener that never answers, one request at a
 * time, so the workers stay out of the way; the time measured is the emitting
 * thread's own CPU time (CLOCK_THREAD_CPUTIME_ID), events built beforehand,
 * after one untimed emit per tenant (the dispatcher's per-endpoint state then
 * exists, as in a host that has been running).
 */
#include "bench.h"

static double thread_cpu_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: bench_tenants TENANTS EVENTS [random|one]\n");
    return 2;
  }
  long tenants = atol(argv[1]), events = atol(argv[2]);
  int one = argc == 4 && strcmp(argv[3], "one") == 0;
  if (tenants < 1 || events < 1)
    return 2;
  bench_hole hole;
  bench_hole_open(&hole);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/hang", hole.port);
  wh_registry *reg = bench_registry("memory:");

  double t0 = bench_now();
  static const char *const filters[3] = {"people.*", "cases.*", "invoices.*"};
  char tenant[64], name[64];
  for (long t = 0; t < tenants; t++) {
    wh_registry *view;
    snprintf(tenant, sizeof tenant, "tenant-%08ld", t);
    if (wh_registry_open_tenant(&view, reg, tenant))
      bench_die("wh_registry_open_tenant");
    for (int k = 0; k < 3; k++) {
      snprintf(name, sizeof name, "endpoint %d", k);
      bench_endpoint(view, name, url, filters[k], NULL);
    }
    wh_registry_free(view);
  }
  for (int k = 0; k < 10; k++) {
    snprintf(name, sizeof name, "platform %d", k);
    bench_endpoint(reg, name, url, "audit.*", NULL);
  }
  double setup = bench_now() - t0;

  wh_dispatcher *d = bench_dispatcher(reg, 1, NULL);
  if (wh_dispatcher_set_int(d, WH_OPT_MAX_IN_FLIGHT, 1))
    bench_die("WH_OPT_MAX_IN_FLIGHT");
  bench_start(d);

  /* Warm up: one event per tenant first, untimed, so that what the dispatcher
     keeps per endpoint exists already (the steady state of a running host). */
  for (long t = 0; t < tenants; t++) {
    wh_event *ev = bench_event("people");
    snprintf(tenant, sizeof tenant, "tenant-%08ld", t);
    if (wh_event_set_tenant_id(ev, tenant) || wh_dispatcher_emit(d, ev, NULL, 0))
      bench_die("warming up");
  }

  enum { BATCH = 1000 };
  wh_event *evs[BATCH];
  double *lat = malloc((size_t)events * sizeof *lat), cpu = 0;
  unsigned seed = 12345;
  for (long done = 0; done < events;) {
    long n = events - done < BATCH ? events - done : BATCH;
    for (long i = 0; i < n; i++) {
      evs[i] = bench_event("people");
      snprintf(tenant, sizeof tenant, "tenant-%08ld", tenants > 1 && !one ? (long)(rand_r(&seed) % tenants) : 0L);
      if (wh_event_set_tenant_id(evs[i], tenant))
        bench_die("wh_event_set_tenant_id");
    }
    double c0 = thread_cpu_s();
    for (long i = 0; i < n; i++) {
      double a = bench_now();
      if (wh_dispatcher_emit(d, evs[i], NULL, 0))
        bench_die("wh_dispatcher_emit");
      lat[done + i] = bench_now() - a;
    }
    cpu += thread_cpu_s() - c0;
    done += n;
  }
  qsort(lat, (size_t)events, sizeof *lat, bench_cmp_double);
  printf("emit with %ld tenants x 3 endpoints + 10 platform endpoints, %s (setup %.2f s): %.2f us of CPU per emit\n",
         tenants, one ? "always the same tenant" : "tenants at random", setup, cpu / (double)events * 1e6);
  bench_result("setup_s", setup);
  bench_result("cpu_us_per_emit", cpu / (double)events * 1e6);
  bench_result("emit_p50_us", bench_quantile_sorted(lat, (size_t)events, 0.50) * 1e6);
  bench_result("emit_p99_us", bench_quantile_sorted(lat, (size_t)events, 0.99) * 1e6);
  free(lat);
  wh_dispatcher_stop(d, 0);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  return 0;
}
