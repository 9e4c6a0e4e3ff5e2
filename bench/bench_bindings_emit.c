/*
 * The C side of bench/bench_bindings.sh: emits of the person-CREATE event from
 * one thread, each built from its parts and emitted with its message id taken,
 * as the Python and Node bindings' emit() does, to one endpoint on a loopback
 * receiver that answers. Memory store.
 *
 *   bench_bindings_emit URL EVENTS
 *
 * Prints "RESULT emits_per_s <n>": emits over the time of the emit loop alone
 * (the deliveries go on beside it and are drained, untimed, before exit).
 */
#include "bench.h"

int main(int argc, char **argv)
{
  if (argc != 3) {
    fprintf(stderr, "usage: bench_bindings_emit URL EVENTS\n");
    return 2;
  }
  long events = atol(argv[2]);
  wh_registry *reg = bench_registry("memory:");
  bench_endpoint(reg, "bench", argv[1], NULL, NULL);
  wh_dispatcher *d = bench_dispatcher(reg, 0, NULL);
  bench_start(d);

  char id[WH_ID_MAX];
  double start = bench_now();
  for (long i = 0; i < events; i++)
    if (wh_dispatcher_emit(d, bench_event(NULL), id, sizeof id))
      bench_die("wh_dispatcher_emit");
  double elapsed = bench_now() - start;
  printf("c: %ld emits in %.3f s\n", events, elapsed);
  bench_result("emits_per_s", (double)events / elapsed);
  if (wh_dispatcher_drain(d, 120000))
    bench_die("wh_dispatcher_drain");
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  return 0;
}
