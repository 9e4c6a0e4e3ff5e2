/* A million pending deliveries in the SQLite store do not need more than a few
   tens of MiB of memory: they wait on disk and only a window is loaded. */
#include <webhook/webhook.h>

#include "support/check.h"
#include "support/harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define ENDPOINTS 10
#define EVENTS 100000
#define THREADS 8
#define LIMIT_KIB (64 * 1024)

typedef struct {
  wh_dispatcher *d;
  int n, errors;
} job;

static void *emit_all(void *p)
{
  job *j = p;
  for (int i = 0; i < j->n; i++)
    if (wh_dispatcher_emit(j->d, h_person_event(NULL, NULL), NULL, 0) != WH_OK && j->errors++ == 0)
      fprintf(stderr, "emit: %s\n", wh_error_last());
  return NULL;
}

int main(void)
{
  char dir[] = "/tmp/wh-bound-XXXXXX", store[128];
  if (!mkdtemp(dir))
    return 1;
  snprintf(store, sizeof store, "sqlite:%s/bound.db", dir);
  /* The endpoints' requests hang: a listener that never accepts. */
  int hole = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (hole < 0 || bind(hole, (struct sockaddr *)&a, sizeof a) || listen(hole, 64) ||
      getsockname(hole, (struct sockaddr *)&a, &al))
    return 1;
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  for (int i = 0; i < ENDPOINTS; i++) {
    char name[32], url[128];
    snprintf(name, sizeof name, "hang%d", i);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/%d", (unsigned)ntohs(a.sin_port), i);
    CHECK_OK(wh_endpoint_add(reg, name, url, NULL, NULL, 0));
  }
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, NULL);
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_TIMEOUT_MS, 30000));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_MAX_IN_FLIGHT, 20));
  CHECK_OK(wh_dispatcher_start(d));
  long base = h_status_kib("VmRSS:");
  int64_t t0 = h_mono_ms();
  pthread_t t[THREADS];
  job j[THREADS];
  for (int i = 0; i < THREADS; i++) {
    j[i] = (job){d, EVENTS / THREADS, 0};
    pthread_create(&t[i], NULL, emit_all, &j[i]);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    CHECK_INT(j[i].errors, 0);
  }
  int64_t ms = h_mono_ms() - t0;
  h_sleep_ms(500);
  long rss = h_status_kib("VmRSS:"), hwm = h_status_kib("VmHWM:");
  printf("memory bound: %d deliveries pending (%d events x %d endpoints) emitted in %lld ms (%.0f events/s); "
         "resident %ld KiB (%ld KiB at start, peak %ld KiB)\n",
         EVENTS * ENDPOINTS, EVENTS, ENDPOINTS, (long long)ms, EVENTS * 1000.0 / (double)ms, rss, base, hwm);
  CHECK(rss < LIMIT_KIB);
  CHECK(hwm < LIMIT_KIB);
  /* Everything is still pending: none was lost, none finished. */
  CHECK_INT(h_count(&log, NULL, WH_DELIVERED) + h_count(&log, NULL, WH_FAILED), 0);
  wh_dispatcher_stop(d, 0);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
  close(hole);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    return 1;
  return check_done("memory_bound");
}
