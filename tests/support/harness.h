/* Shared pieces of the dispatcher tests: a result log filled by the result
   callback (on worker threads) and read by the test thread. */
#ifndef WH_TEST_HARNESS_H
#define WH_TEST_HARNESS_H

#include <webhook/webhook.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <unistd.h>

typedef struct {
  char msg[WH_ID_MAX], ep[WH_ID_MAX];
  int outcome, attempt, status, disabled;
  int64_t next_ms, at_ms, duration_ms;
  char error[256];
} h_result;

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  h_result *v;
  size_t n, cap;
  char disabled_ep[8][WH_ID_MAX];
  char disabled_reason[8][128];
  int ndisabled;
} h_log;

static inline int64_t h_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t h_mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A field of /proc/self/status in KiB ("VmRSS:", "VmHWM:"), -1 if absent. */
static inline long h_status_kib(const char *field)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t n = strlen(field);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0)
      v = atol(line + n + 1);
  if (f)
    fclose(f);
  return v;
}

/* Remove a SQLite database and its -wal and -shm files. */
static inline void h_remove_sqlite(const char *path)
{
  char side[4200];
  unlink(path);
  snprintf(side, sizeof side, "%s-wal", path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", path);
  unlink(side);
}

static inline void h_sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static inline void h_log_init(h_log *l)
{
  memset(l, 0, sizeof *l);
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
}

static inline void h_log_free(h_log *l)
{
  free(l->v);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv);
}

static inline void h_on_result(const wh_result *r, void *ud)
{
  h_log *l = (h_log *)ud;
  h_result x;
  memset(&x, 0, sizeof x);
  snprintf(x.msg, sizeof x.msg, "%s", wh_result_message_id(r));
  snprintf(x.ep, sizeof x.ep, "%s", wh_result_endpoint_id(r));
  x.outcome = wh_result_outcome(r);
  x.attempt = wh_result_attempt(r);
  x.status = wh_result_http_status(r);
  x.disabled = wh_result_endpoint_disabled(r);
  x.next_ms = wh_result_next_attempt_ms(r);
  x.duration_ms = wh_result_duration_ms(r);
  x.at_ms = h_now_ms();
  if (wh_result_error(r))
    snprintf(x.error, sizeof x.error, "%s", wh_result_error(r));
  pthread_mutex_lock(&l->mu);
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->v = (h_result *)realloc(l->v, l->cap * sizeof *l->v);
  }
  l->v[l->n++] = x;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
}

static inline void h_on_disabled(const char *ep, const char *reason, void *ud)
{
  h_log *l = (h_log *)ud;
  pthread_mutex_lock(&l->mu);
  if (l->ndisabled < 8) {
    snprintf(l->disabled_ep[l->ndisabled], WH_ID_MAX, "%s", ep);
    snprintf(l->disabled_reason[l->ndisabled], 128, "%s", reason);
    l->ndisabled++;
  }
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
}

/* Results whose outcome is `outcome` (0: any) for endpoint ep (NULL: any). */
static inline size_t h_count(h_log *l, const char *ep, int outcome)
{
  size_t n = 0;
  pthread_mutex_lock(&l->mu);
  for (size_t i = 0; i < l->n; i++)
    if ((!ep || strcmp(l->v[i].ep, ep) == 0) && (!outcome || l->v[i].outcome == outcome))
      n++;
  pthread_mutex_unlock(&l->mu);
  return n;
}

/* Wait until h_count(ep, outcome) >= n, at most timeout_ms. 1 when reached. */
static inline int h_wait(h_log *l, const char *ep, int outcome, size_t n, int timeout_ms)
{
  int64_t end = h_mono_ms() + timeout_ms;
  while (h_count(l, ep, outcome) < n) {
    if (h_mono_ms() >= end)
      return 0;
    h_sleep_ms(5);
  }
  return 1;
}

/* Copy of the i-th result for ep (in arrival order); 0 when there is none. */
static inline int h_get(h_log *l, const char *ep, size_t i, h_result *out)
{
  int found = 0;
  pthread_mutex_lock(&l->mu);
  for (size_t k = 0; k < l->n; k++) {
    if (!ep || strcmp(l->v[k].ep, ep) == 0) {
      if (i-- == 0) {
        *out = l->v[k];
        found = 1;
        break;
      }
    }
  }
  pthread_mutex_unlock(&l->mu);
  return found;
}

/* A dispatcher set up for loopback tests: private networks allowed, the
   callbacks wired to log, fast retries unless the test sets its own. */
static inline wh_dispatcher *h_dispatcher(wh_registry *reg, h_log *log, const char *schedule)
{
  wh_dispatcher *d = NULL;
  if (wh_dispatcher_new(&d, reg) != WH_OK)
    return NULL;
  wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, 1);
  wh_dispatcher_set_int(d, WH_OPT_RETRY_JITTER_PCT, 0);
  wh_dispatcher_set_int(d, WH_OPT_THROTTLE_MIN_DELAY_MS, 0);
  wh_dispatcher_set_str(d, WH_OPT_RETRY_SCHEDULE, schedule ? schedule : "0.1,0.1,0.1");
  wh_dispatcher_on_result(d, h_on_result, log);
  wh_dispatcher_on_disabled(d, h_on_disabled, log);
  return d;
}

/* Run fn(arg) in a fork()ed child of this (threaded) process and return its
   exit status, or -1 when it did not end within timeout_ms (it is killed).
   The child must only make calls that return at once and then _exit(): after
   fork only the forking thread exists, and ThreadSanitizer lets a child of a
   threaded process run, not start threads. */
static inline int h_fork_run(int (*fn)(void *), void *arg, int timeout_ms)
{
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0)
    _exit(fn(arg));
  int64_t end = h_mono_ms() + timeout_ms;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (h_mono_ms() >= end) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    h_sleep_ms(5);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The seed's person-CREATE event. */
static inline wh_event *h_person_event(const char *type, const char *kind)
{
  wh_event *ev = NULL;
  wh_event_new(&ev, type ? type : "people", kind ? kind : "CREATE");
  wh_event_set_resource_json(ev, "{\"last_name\":\"Doe\",\"first_name\":\"John\","
                                 "\"id\":\"eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543\"}");
  wh_event_set_tenant_id(ev, "be461bd7-2d91-41c6-ab29-4389066bcc71");
  wh_event_set_user_id(ev, "f9762deb-a115-412d-adf7-cf772807734a");
  wh_event_set_resource_id(ev, "eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543");
  return ev;
}

#endif
