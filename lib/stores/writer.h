/*
 * The part that the durable stores share: every write is a job, run by one
 * writer thread in batches, one transaction per batch (group commit), one
 * savepoint per job. Emit and the other synchronous jobs wait for their
 * commit; attempt records do not. A backend supplies the transaction steps
 * and how to run each kind of job on its database.
 */
#ifndef WEBHOOK_STORES_WRITER_H
#define WEBHOOK_STORES_WRITER_H

#include "store.h"

#include <pthread.h>

enum {
  WH__JOB_ENQUEUE, WH__JOB_RECORD, WH__JOB_PUT_EP, WH__JOB_DEL_EP, WH__JOB_CLAIM, WH__JOB_RELEASE,
  WH__JOB_REQUEUE, WH__JOB_PURGE, WH__JOB_FLUSH, WH__JOB_OUTBOX
};

/* A delivery a claim hands back. */
typedef struct {
  wh__msg *m;
  wh__dlv_state st;
} wh__claimed;

typedef struct wh__job {
  int kind, sync, done, rc;
  pthread_cond_t cv; /* a synchronous job's waiter sleeps on it */
  int64_t first_try_ms; /* asynchronous jobs are tried again after a failed commit, for a while */
  char err[256];
  struct wh__job *next;
  union {
    struct {
      const wh__enq *msgs;
      size_t n;
      int64_t owner;
    } enq;
    struct {
      wh__dlv_state st;
      int has_attempt, state;
      int64_t owner;
      wh__attempt_rec a; /* error and response point into the owned copies below */
      char *error, *response;
    } rec;
    const wh__endpoint *ep;
    const char *ep_id;
    struct {
      int64_t owner, horizon;
      size_t max, n;
      wh__claimed *out;
    } claim;
    int64_t owner;
    struct {
      const char *msg_id, *ep_id;
      int64_t since;
      size_t count;
    } rq;
    struct {
      int64_t before;
      size_t count;
    } purge;
    struct {
      wh__outbox_fn fn;
      void *ud;
      size_t max, count;
    } outbox;
  } u;
} wh__job;

/* What a backend does; ctx is the backend's own. All run on the writer thread. */
typedef struct {
  /* WH_OK, or fail every job of the batch. durable == 0: the batch holds only
     attempt records and claims, whose commit need not reach the
     disk before the next durable one (losing them to a power cut only makes
     deliveries again). A durable commit must also make every earlier commit
     durable. */
  int (*begin)(void *ctx, wh__job *batch, int durable);
  int (*commit)(void *ctx, char *why, size_t len);
  void (*rollback)(void *ctx);
  void (*savepoint)(void *ctx);
  void (*rollback_to_savepoint)(void *ctx);
  void (*release_savepoint)(void *ctx);
  int (*run)(void *ctx, wh__job *j);        /* sets j->rc / j->err on failure */
  void (*idle)(void *ctx);                  /* optional: the queue has been empty a while */
} wh__backend;

/* A durable store built on the queue: embed first in the backend's struct. */
typedef struct {
  wh__store base;
  const wh__backend *be;
  void *ctx;
  const char *label; /* "sqlite:PATH", for messages */
  pthread_mutex_t mu;
  pthread_cond_t cv_work;
  wh__job *head, *tail;
  size_t njobs, nsync;  /* queued, and of them synchronous */
  size_t last_sync;     /* synchronous jobs in the last batch */
  int writer_state;     /* WH__W_BUSY / IDLE / GATHERING: when a submit must wake it */
  int closing, started;
  pthread_t writer;
  _Atomic uint64_t failures; /* batches in which a job nobody waits for failed */
  char failure[256];         /* the last such job's error (under mu) */
} wh__qstore;

int wh__qstore_init(wh__qstore *q, const wh__backend *be, void *ctx, const char *label);
/* Stop the writer after the jobs queued so far. */
void wh__qstore_stop(wh__qstore *q);
void wh__qstore_destroy(wh__qstore *q);
/* Run j and wait for its commit; a failure becomes the caller's wh_error_last(). */
int wh__qstore_sync(wh__qstore *q, wh__job *j);

/* A job failed: keep its text for the caller (the writer's own thread-local
   error is not the caller's). Returns WH_ESTORE. */
int wh__job_fail(wh__job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The store operations the queue implements for every durable backend. */
int wh__q_put_endpoint(wh__store *s, const wh__endpoint *ep);
int wh__q_delete_endpoint(wh__store *s, const char *id);
int wh__q_enqueue(wh__store *s, const wh__enq *msgs, size_t nmsgs, int64_t owner);
int wh__q_claim(wh__store *s, int64_t owner, int64_t horizon_ms, size_t max, wh__claim_cb cb, void *ud);
void wh__q_record(wh__store *s, const wh__dlv_state *st, const wh__attempt_rec *a, int state, int64_t owner);
void wh__q_release(wh__store *s, int64_t owner);
void wh__q_flush(wh__store *s);
int wh__q_requeue(wh__store *s, const char *msg_id, const char *ep_id, int64_t since_ms, size_t *count);
int wh__q_purge(wh__store *s, int64_t before_ms, size_t *count);
uint64_t wh__q_failures(wh__store *s, char *why, size_t len);
int wh__q_outbox(wh__store *s, size_t max, wh__outbox_fn fn, void *ud, size_t *count);

#endif
