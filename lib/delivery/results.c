/*
 * The result queue (WH_OPT_RESULT_QUEUE): a copy of every outcome, for hosts
 * that cannot take a call on a library thread (FFI bindings, event loops).
 * Workers never wait for the consumer: when the queue is full the oldest
 * outcome makes room and is counted as dropped. An eventfd is readable
 * exactly while the queue holds something (it is written on the first
 * outcome and read empty with the last one, under the queue's lock), so a
 * host can wait for outcomes with poll, epoll, asyncio or libuv.
 */
#include "dispatch.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* A queued outcome: the result and the strings it points to, one allocation. */
typedef struct qres {
  struct qres *next;
  wh_result r;
  char text[];
} qres;

struct wh__results {
  pthread_mutex_t mu;
  pthread_cond_t more;  /* an outcome came, or the queue closed */
  pthread_cond_t gone;  /* the last consumer left (for free) */
  qres *head, *tail;
  long n, capacity;
  int fd;
  int closed, freeing, waiters;
  _Atomic uint64_t dropped;
};

int wh__results_new(wh__results **out, long capacity)
{
  wh__results *q = calloc(1, sizeof *q);
  if (!q)
    return wh__oom();
  q->capacity = capacity;
  q->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (q->fd < 0) {
    int e = errno;
    free(q);
    return wh__fail(WH_ENOMEM, "result queue: cannot create its descriptor: %s", strerror(e));
  }
  pthread_mutex_init(&q->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&q->more, &ca);
  pthread_condattr_destroy(&ca);
  pthread_cond_init(&q->gone, NULL);
  *out = q;
  return WH_OK;
}

void wh__results_free(wh__results *q)
{
  if (!q)
    return;
  pthread_mutex_lock(&q->mu);
  q->closed = q->freeing = 1;
  pthread_cond_broadcast(&q->more);
  while (q->waiters)
    pthread_cond_wait(&q->gone, &q->mu);
  pthread_mutex_unlock(&q->mu);
  for (qres *x = q->head, *next; x; x = next) {
    next = x->next;
    free(x);
  }
  close(q->fd);
  pthread_cond_destroy(&q->more);
  pthread_cond_destroy(&q->gone);
  pthread_mutex_destroy(&q->mu);
  free(q);
}

static char *put_text(char **p, const char *s)
{
  if (!s)
    return NULL;
  char *at = *p;
  size_t n = strlen(s) + 1;
  memcpy(at, s, n);
  *p += n;
  return at;
}

static qres *copy(const wh_result *r)
{
  size_t lm = r->message_id ? strlen(r->message_id) + 1 : 0, le = r->endpoint_id ? strlen(r->endpoint_id) + 1 : 0,
         lr = r->error ? strlen(r->error) + 1 : 0;
  qres *x = malloc(sizeof *x + lm + le + lr);
  if (!x)
    return NULL;
  x->next = NULL;
  x->r = *r;
  char *p = x->text;
  x->r.message_id = put_text(&p, r->message_id);
  x->r.endpoint_id = put_text(&p, r->endpoint_id);
  x->r.error = put_text(&p, r->error);
  return x;
}

static void fd_set_readable(wh__results *q, int readable)
{
  uint64_t v = 1;
  ssize_t rc;
  do
    rc = readable ? write(q->fd, &v, sizeof v) : read(q->fd, &v, sizeof v);
  while (rc < 0 && errno == EINTR);
}

void wh__results_push(wh__results *q, const wh_result *r)
{
  qres *x = copy(r), *dropped = NULL;
  pthread_mutex_lock(&q->mu);
  if (!x) {
    atomic_fetch_add_explicit(&q->dropped, 1, memory_order_relaxed); /* no memory for it: lost, and counted */
  } else {
    if (q->n == q->capacity) {
      dropped = q->head;
      q->head = dropped->next;
      if (!q->head)
        q->tail = NULL;
      q->n--;
      atomic_fetch_add_explicit(&q->dropped, 1, memory_order_relaxed);
    }
    if (q->tail)
      q->tail->next = x;
    else
      q->head = x;
    q->tail = x;
    if (q->n++ == 0 && !dropped)
      fd_set_readable(q, 1);
    pthread_cond_signal(&q->more);
  }
  pthread_mutex_unlock(&q->mu);
  free(dropped);
}

void wh__results_close(wh__results *q)
{
  pthread_mutex_lock(&q->mu);
  q->closed = 1;
  pthread_cond_broadcast(&q->more);
  pthread_mutex_unlock(&q->mu);
}

int wh__results_next(wh__results *q, int timeout_ms, wh_result **out)
{
  struct timespec deadline;
  if (timeout_ms > 0)
    wh__deadline_after(&deadline, timeout_ms);
  pthread_mutex_lock(&q->mu);
  q->waiters++;
  int timed_out = 0;
  while (!q->head && !q->closed && !timed_out) {
    if (timeout_ms == 0)
      timed_out = 1;
    else if (timeout_ms < 0)
      pthread_cond_wait(&q->more, &q->mu);
    else
      timed_out = pthread_cond_timedwait(&q->more, &q->mu, &deadline) == ETIMEDOUT;
  }
  qres *x = q->head;
  if (x) {
    q->head = x->next;
    if (!q->head) {
      q->tail = NULL;
      fd_set_readable(q, 0);
    }
    q->n--;
  }
  int closed = q->closed;
  if (--q->waiters == 0 && q->freeing)
    pthread_cond_signal(&q->gone);
  pthread_mutex_unlock(&q->mu);
  if (!x)
    return closed ? wh__fail(WH_ESTATE, "next result: the dispatcher is stopped and every outcome was taken")
                  : wh__fail(WH_ETIMEOUT, "next result: none within %d ms", timeout_ms);
  *out = &x->r;
  return WH_OK;
}

int wh__results_fd(const wh__results *q) { return q->fd; }

uint64_t wh__results_dropped(wh__results *q) { return atomic_load_explicit(&q->dropped, memory_order_relaxed); }

int wh__results_waiting(wh__results *q)
{
  pthread_mutex_lock(&q->mu);
  int n = q->waiters;
  pthread_mutex_unlock(&q->mu);
  return n;
}

void wh_result_free(wh_result *r)
{
  if (r)
    free((char *)r - offsetof(qres, r));
}
