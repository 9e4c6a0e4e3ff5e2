/* The writer thread and job queue shared by the durable stores: see writer.h. */
#include "writer.h"

#include <errno.h>
#include <stdarg.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wh__job_fail(wh__job *j, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(j->err, sizeof j->err, fmt, ap);
  va_end(ap);
  j->rc = WH_ESTORE;
  return WH_ESTORE;
}

static void free_async(wh__job *j)
{
  free(j->u.rec.error);
  free(j->u.rec.response);
  free(j);
}

static void drop_claims(wh__job *j)
{
  if (j->kind != WH__JOB_CLAIM)
    return;
  for (size_t i = 0; i < j->u.claim.n; i++)
    wh__msg_unref(j->u.claim.out[i].m);
  j->u.claim.n = 0;
}

/* How long an attempt record is kept and tried again while the database is
   away; past that it is dropped (the delivery is then made again: at least once). */
#define RECORD_RETRY_MS (5 * 60 * 1000)
#define RETRY_PAUSE_MS 200

/* Attempt records alone wait up to RECORD_GATHER_MS for company (a synchronous
   job, or RECORD_BATCH of them), so that they share commits instead of
   costing one each. Readers of the log flush first, so they never see the lag. */
#define RECORD_GATHER_MS 10
#define RECORD_BATCH 1024

enum { WH__W_BUSY, WH__W_IDLE, WH__W_GATHERING };

static void run_batch(wh__qstore *q, wh__job *batch)
{
  const wh__backend *be = q->be;
  int ok = 0, durable = 0;
  /* Claims need not reach the disk either: a claim lost to a power cut is a
     delivery that is claimed (and perhaps made) again. */
  for (wh__job *j = batch; j && !durable; j = j->next)
    durable = j->kind != WH__JOB_RECORD && j->kind != WH__JOB_CLAIM;
  if (be->begin(q->ctx, batch, durable) == WH_OK) {
    /* A job alone needs no savepoint: its failure is the transaction's. Nor
       does an attempt record: nobody waits for it, and what can make one of
       its statements fail (a full disk, an I/O error) fails the commit too,
       and then the record is tried again. */
    int alone = batch->next == NULL, alone_failed = 0;
    for (wh__job *j = batch; j; j = j->next) {
      int sp = !alone && j->kind != WH__JOB_RECORD;
      if (sp)
        be->savepoint(q->ctx);
      if (be->run(q->ctx, j) != WH_OK) {
        if (sp)
          be->rollback_to_savepoint(q->ctx);
        drop_claims(j);
        alone_failed = alone;
      }
      if (sp)
        be->release_savepoint(q->ctx);
    }
    char why[200];
    if (alone_failed) {
      /* Its failure is the transaction's: nothing of it may stay (an
         enqueue is all or nothing). Nothing to try again either. */
      be->rollback(q->ctx);
      ok = 1;
    } else if (be->commit(q->ctx, why, sizeof why) != WH_OK) {
      /* The disk is full, the database gone: nothing of this batch is durable. */
      be->rollback(q->ctx);
      for (wh__job *j = batch; j; j = j->next) {
        wh__job_fail(j, "committing: %s", why);
        drop_claims(j);
      }
    } else {
      ok = 1;
    }
  }
  /* Synchronous jobs learn their fate; asynchronous ones (attempt records)
     whose batch failed wait for the database to come back. */
  int64_t now = wh__now_ms();
  wh__job *retry = NULL, *last = NULL;
  int failed = 0;
  pthread_mutex_lock(&q->mu);
  for (wh__job *j = batch, *next; j; j = next) {
    next = j->next;
    if (!j->sync && j->rc != WH_OK && !failed++)
      snprintf(q->failure, sizeof q->failure, "%s", j->err); /* for wh__q_failures: nobody else hears of it */
    if (j->sync) {
      /* Each waiter has its own condition: the ones whose jobs are still
         queued sleep on. (Signalled under the lock: the job lives on the
         waiter's stack and is gone as soon as it sees done.) */
      j->done = 1;
      pthread_cond_signal(&j->cv);
    } else if (!ok && now - j->first_try_ms < RECORD_RETRY_MS && !q->closing) {
      j->rc = WH_OK;
      j->next = NULL;
      if (last)
        last->next = j;
      else
        retry = j;
      last = j;
      q->njobs++;
    } else {
      free_async(j);
    }
  }
  if (failed)
    atomic_fetch_add(&q->failures, 1);
  if (retry) {
    /* Ahead of newer jobs, so each delivery's records stay in order. */
    last->next = q->head;
    q->head = retry;
    if (!q->tail)
      q->tail = last;
  }
  pthread_mutex_unlock(&q->mu);
  if (retry) {
    struct timespec ts = {0, RETRY_PAUSE_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
}

#define IDLE_MS 20
#define GROUP_WAIT_US 200 /* longest a commit waits for the last batch's emitters */

static void deadline_in_us(struct timespec *ts, long us)
{
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += us / 1000000;
  ts->tv_nsec += (us % 1000000) * 1000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

static void deadline_in(struct timespec *ts, long ms) { deadline_in_us(ts, ms * 1000); }

static void *writer_main(void *arg)
{
  wh__qstore *q = arg;
  for (;;) {
    pthread_mutex_lock(&q->mu);
    q->writer_state = WH__W_IDLE;
    /* Quiet for IDLE_MS: the backend may do upkeep that would delay a commit
       (a job arriving meanwhile waits for it; that is rare when it is quiet). */
    struct timespec until;
    deadline_in(&until, IDLE_MS);
    while (!q->head && !q->closing) {
      if (!q->be->idle) {
        pthread_cond_wait(&q->cv_work, &q->mu);
      } else if (pthread_cond_timedwait(&q->cv_work, &q->mu, &until) == ETIMEDOUT && !q->head) {
        pthread_mutex_unlock(&q->mu);
        q->be->idle(q->ctx);
        pthread_mutex_lock(&q->mu);
        deadline_in(&until, 3600 * 1000); /* once per quiet spell */
      }
    }
    if (q->nsync && q->nsync < q->last_sync && !q->closing) {
      /* Group commit: the emitters of the last batch are on their way back
         with their next emits; a moment's wait lets them share this commit
         instead of each group paying a disk flush of its own. */
      deadline_in_us(&until, GROUP_WAIT_US);
      q->writer_state = WH__W_GATHERING;
      while (q->nsync < q->last_sync && !q->closing &&
             pthread_cond_timedwait(&q->cv_work, &q->mu, &until) != ETIMEDOUT) {
      }
    } else if (!q->nsync && q->njobs < RECORD_BATCH && !q->closing) {
      deadline_in(&until, RECORD_GATHER_MS);
      q->writer_state = WH__W_GATHERING;
      while (!q->nsync && q->njobs < RECORD_BATCH && !q->closing &&
             pthread_cond_timedwait(&q->cv_work, &q->mu, &until) != ETIMEDOUT) {
      }
    }
    q->writer_state = WH__W_BUSY;
    q->last_sync = q->nsync;
    wh__job *batch = q->head;
    q->head = q->tail = NULL;
    q->njobs = q->nsync = 0;
    int closing = q->closing;
    pthread_mutex_unlock(&q->mu);
    if (batch)
      run_batch(q, batch);
    else if (closing)
      break;
  }
  return NULL;
}

static void submit(wh__qstore *q, wh__job *j)
{
  pthread_mutex_lock(&q->mu);
  j->next = NULL;
  if (q->tail)
    q->tail->next = j;
  else
    q->head = j;
  q->tail = j;
  q->njobs++;
  q->nsync += j->sync != 0;
  if (q->writer_state == WH__W_IDLE ||
      (q->writer_state == WH__W_GATHERING && (j->sync || q->njobs >= RECORD_BATCH)))
    pthread_cond_signal(&q->cv_work);
  if (j->sync)
    while (!j->done)
      pthread_cond_wait(&j->cv, &q->mu);
  pthread_mutex_unlock(&q->mu);
}

int wh__qstore_sync(wh__qstore *q, wh__job *j)
{
  if (wh__store_forked(&q->base))
    return wh__store_forked_fail(q->label); /* no writer here: it would wait for ever */
  j->sync = 1;
  pthread_cond_init(&j->cv, NULL);
  submit(q, j);
  pthread_cond_destroy(&j->cv);
  if (j->rc != WH_OK)
    return wh__fail(j->rc, "store %s: %s", q->label, j->err);
  return WH_OK;
}

uint64_t wh__q_failures(wh__store *s, char *why, size_t len)
{
  wh__qstore *q = (wh__qstore *)s;
  if (!why)
    return atomic_load(&q->failures);
  pthread_mutex_lock(&q->mu);
  uint64_t n = atomic_load(&q->failures);
  snprintf(why, len, "%s", q->failure);
  pthread_mutex_unlock(&q->mu);
  return n;
}

int wh__qstore_init(wh__qstore *q, const wh__backend *be, void *ctx, const char *label)
{
  q->base.fork_gen = wh__fork_watch();
  q->be = be;
  q->ctx = ctx;
  q->label = label;
  pthread_mutex_init(&q->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&q->cv_work, &ca);
  pthread_condattr_destroy(&ca);
  if (pthread_create(&q->writer, NULL, writer_main, q) != 0)
    return wh__fail(WH_ENOMEM, "store %s: cannot start the writer thread", label);
  q->started = 1;
  return WH_OK;
}

void wh__qstore_stop(wh__qstore *q)
{
  if (!q->started || wh__store_forked(&q->base))
    return; /* in a child after fork the writer is the parent's: nothing to join */
  pthread_mutex_lock(&q->mu);
  q->closing = 1;
  pthread_cond_signal(&q->cv_work);
  pthread_mutex_unlock(&q->mu);
  pthread_join(q->writer, NULL);
  q->started = 0;
}

void wh__qstore_destroy(wh__qstore *q)
{
  wh__qstore_stop(q);
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->cv_work);
}

/* ---- the operations ---------------------------------------------------------------- */

int wh__q_put_endpoint(wh__store *s, const wh__endpoint *ep)
{
  wh__job j = {.kind = WH__JOB_PUT_EP};
  j.u.ep = ep;
  return wh__qstore_sync((wh__qstore *)s, &j);
}

int wh__q_delete_endpoint(wh__store *s, const char *id)
{
  wh__job j = {.kind = WH__JOB_DEL_EP};
  j.u.ep_id = id;
  return wh__qstore_sync((wh__qstore *)s, &j);
}

int wh__q_enqueue(wh__store *s, const wh__enq *msgs, size_t nmsgs, int64_t owner)
{
  wh__job j = {.kind = WH__JOB_ENQUEUE};
  j.u.enq.msgs = msgs;
  j.u.enq.n = nmsgs;
  j.u.enq.owner = owner;
  return wh__qstore_sync((wh__qstore *)s, &j);
}

int wh__q_claim(wh__store *s, int64_t owner, int64_t horizon_ms, size_t max, wh__claim_cb cb, void *ud)
{
  wh__job j = {.kind = WH__JOB_CLAIM};
  j.u.claim.owner = owner;
  j.u.claim.horizon = horizon_ms;
  j.u.claim.max = max;
  int rc = wh__qstore_sync((wh__qstore *)s, &j);
  for (size_t i = 0; i < j.u.claim.n; i++) {
    if (rc == WH_OK)
      rc = cb(ud, j.u.claim.out[i].m, &j.u.claim.out[i].st);
    wh__msg_unref(j.u.claim.out[i].m);
  }
  free(j.u.claim.out);
  return rc;
}

void wh__q_record(wh__store *s, const wh__dlv_state *st, const wh__attempt_rec *a, int state, int64_t owner)
{
  if (wh__store_forked(s))
    return;
  wh__job *j = calloc(1, sizeof *j);
  if (!j)
    return; /* the delivery stays as last recorded: at worst it is made again */
  j->kind = WH__JOB_RECORD;
  j->first_try_ms = wh__now_ms();
  j->u.rec.st = *st;
  j->u.rec.state = state;
  j->u.rec.owner = owner;
  if (a) {
    j->u.rec.has_attempt = 1;
    j->u.rec.a = *a;
    j->u.rec.error = a->error ? wh__strdup(a->error) : NULL;
    j->u.rec.response = a->response_len ? wh__strndup(a->response, a->response_len) : NULL;
    j->u.rec.a.error = j->u.rec.error;
    j->u.rec.a.response = j->u.rec.response;
    j->u.rec.a.response_len = j->u.rec.response ? a->response_len : 0;
  }
  submit((wh__qstore *)s, j);
}

void wh__q_release(wh__store *s, int64_t owner)
{
  wh__job j = {.kind = WH__JOB_RELEASE};
  j.u.owner = owner;
  wh__qstore_sync((wh__qstore *)s, &j);
}

void wh__q_flush(wh__store *s)
{
  wh__job j = {.kind = WH__JOB_FLUSH};
  wh__qstore_sync((wh__qstore *)s, &j);
}

int wh__q_requeue(wh__store *s, const char *msg_id, const char *ep_id, int64_t since_ms, size_t *count)
{
  wh__job j = {.kind = WH__JOB_REQUEUE};
  j.u.rq.msg_id = msg_id;
  j.u.rq.ep_id = ep_id;
  j.u.rq.since = since_ms;
  int rc = wh__qstore_sync((wh__qstore *)s, &j);
  if (count)
    *count = rc ? 0 : j.u.rq.count;
  return rc;
}

int wh__q_purge(wh__store *s, int64_t before_ms, size_t *count)
{
  wh__job j = {.kind = WH__JOB_PURGE};
  j.u.purge.before = before_ms;
  int rc = wh__qstore_sync((wh__qstore *)s, &j);
  if (count)
    *count = rc ? 0 : j.u.purge.count;
  return rc;
}

int wh__q_outbox(wh__store *s, size_t max, wh__outbox_fn fn, void *ud, size_t *count)
{
  wh__job j = {.kind = WH__JOB_OUTBOX};
  j.u.outbox.fn = fn;
  j.u.outbox.ud = ud;
  j.u.outbox.max = max;
  int rc = wh__qstore_sync((wh__qstore *)s, &j);
  if (count)
    *count = rc ? 0 : j.u.outbox.count;
  return rc;
}
