/*
 * After fork() the child has a copy of every object but none of the threads
 * that serve them (workers, the store's writer) nor a right to the
 * connections it shares with its parent. Objects remember the fork
 * generation they were created under; a child handler bumps it, so a check
 * is one relaxed load and a comparison, not a getpid() per call.
 */
#include "internal.h"

#include <pthread.h>

atomic_uint wh__fork_gen;

static pthread_once_t watch_once = PTHREAD_ONCE_INIT;

/* The child runs this alone, before fork() returns in it. */
static void on_fork_child(void) { atomic_fetch_add_explicit(&wh__fork_gen, 1, memory_order_relaxed); }

static void install(void) { pthread_atfork(NULL, NULL, on_fork_child); }

unsigned wh__fork_watch(void)
{
  pthread_once(&watch_once, install);
  return atomic_load_explicit(&wh__fork_gen, memory_order_relaxed);
}
