/*
 * The host's callbacks (result, endpoint disabled, log), replaceable while
 * the dispatcher runs. A binding must be able to detach its callback and then
 * free what the callback uses (a trampoline, a closure): so setting one
 * returns only when the callback it replaced runs on no other thread.
 *
 * Workers call callbacks for every outcome, so calling one must stay cheap:
 * a worker makes its own counter odd, reads the pointer, calls, makes the
 * counter even again. Both are sequentially consistent, so a setter that
 * swapped the pointer and then finds a worker's counter even knows that
 * worker will read the new pointer; it waits only for the workers whose
 * counter was odd, until it changes. No worker writes a line another writes.
 * Threads that are not workers of this dispatcher (rare: a log message from
 * a host's call) call through one mutex, which a setter takes once.
 *
 * A setter inside a callback does not wait for itself: its own call counts
 * as returned from then on (two callbacks that replace callbacks would
 * otherwise wait for each other).
 */
#include "dispatch.h"

#include <sched.h>
#include <stdlib.h>
#include <time.h>

static _Thread_local wh__hooks *bound_h;       /* the hooks whose worker this thread is */
static _Thread_local wh__hook_reader *bound_r;
static _Thread_local wh__hook_frame *frames;   /* callbacks this thread is inside, innermost first */

void wh__hooks_init(wh__hooks *h)
{
  for (int k = 0; k < WH__HOOK_KINDS; k++)
    atomic_init(&h->slot[k], NULL);
  for (int i = 0; i < WH__HOOK_READERS; i++)
    atomic_init(&h->readers[i].seq, 0);
  pthread_mutex_init(&h->others, NULL);
}

void wh__hooks_destroy(wh__hooks *h)
{
  for (int k = 0; k < WH__HOOK_KINDS; k++)
    free(atomic_load(&h->slot[k]));
  pthread_mutex_destroy(&h->others);
}

void wh__hooks_bind(wh__hooks *h, int i)
{
  bound_h = h;
  bound_r = &h->readers[i];
}

/* Give up what f holds: the worker's odd counter, or the mutex. */
static void release(wh__hook_frame *f)
{
  if (f->nested)
    return;
  if (f->r)
    atomic_fetch_add(&f->r->seq, 1);
  else
    pthread_mutex_unlock(&f->h->others);
}

const wh__hook *wh__hook_enter(wh__hooks *h, int kind, wh__hook_frame *f)
{
  if (!atomic_load_explicit(&h->slot[kind], memory_order_relaxed))
    return NULL; /* the common case of bindings: no callback, only the queue */
  f->h = h;
  f->left = 0;
  f->nested = 0;
  /* Already inside one of h's callbacks (one that emits, and emit logs):
     that call already holds what a setter waits for. */
  for (wh__hook_frame *o = frames; o; o = o->prev)
    if (o->h == h && !o->left)
      f->nested = 1;
  f->r = bound_h == h ? bound_r : NULL;
  if (!f->nested) {
    if (f->r)
      atomic_fetch_add(&f->r->seq, 1);
    else
      pthread_mutex_lock(&h->others);
  }
  const wh__hook *k = atomic_load(&h->slot[kind]);
  if (!k) {
    release(f);
    return NULL;
  }
  f->prev = frames;
  frames = f;
  return k;
}

void wh__hook_leave(wh__hook_frame *f)
{
  if (!f->left)
    release(f);
  frames = f->prev;
}

/* The caller is inside callbacks of h: from now on they count as returned. */
static void leave_own(wh__hooks *h)
{
  for (wh__hook_frame *f = frames; f; f = f->prev) {
    if (f->h == h && !f->left) {
      release(f);
      f->left = 1;
    }
  }
}

static void pause_us(long us)
{
  struct timespec ts = {0, us * 1000L};
  nanosleep(&ts, NULL);
}

/* Wait for every call that may have read the pointer before it was swapped. */
static void wait_readers(wh__hooks *h)
{
  for (int i = 0; i < WH__HOOK_READERS; i++) {
    unsigned s = atomic_load(&h->readers[i].seq);
    /* A short callback ends within a few yields; a long one is not worth a core. */
    for (long spins = 0, us = 10; (s & 1) && atomic_load(&h->readers[i].seq) == s; spins++) {
      if (spins < 64) {
        sched_yield();
      } else {
        pause_us(us);
        if (us < 1000)
          us *= 2;
      }
    }
  }
  pthread_mutex_lock(&h->others);
  pthread_mutex_unlock(&h->others);
}

int wh__hooks_set(wh__hooks *h, int kind, const wh__hook *hook)
{
  wh__hook *n = NULL;
  if (hook) {
    if (!(n = malloc(sizeof *n)))
      return wh__oom();
    *n = *hook;
  }
  wh__hook *old = atomic_exchange(&h->slot[kind], n);
  leave_own(h);
  wait_readers(h);
  free(old);
  return WH_OK;
}
