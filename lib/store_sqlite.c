/*
 * The SQLite store: one file, WAL mode, synchronous=FULL, so that what emit
 * accepted survives a crash or a power cut.
 *
 * All writes go through one writer thread with its own connection. Callers
 * queue jobs; the writer takes every job queued so far and runs them in one
 * transaction (a savepoint each, so one bad job does not sink the others), so
 * many emitting threads share one fsync: group commit. Emit and the other
 * synchronous jobs wait for their commit; attempt records do not (losing the
 * last ones in a crash only means a delivery is made again).
 * Reads of the log use a second connection.
 */
#include "store.h"
#include "storelog.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 5000

static const char schema_sql[] =
  "CREATE TABLE wh_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
  "CREATE TABLE wh_endpoint(id TEXT PRIMARY KEY, name TEXT NOT NULL, url TEXT NOT NULL, description TEXT,"
  " enabled INTEGER NOT NULL, disabled_reason TEXT, created_ms INTEGER NOT NULL,"
  " filters TEXT NOT NULL, headers TEXT NOT NULL, secrets TEXT NOT NULL);"
  "CREATE TABLE wh_message(id TEXT PRIMARY KEY, event_type TEXT NOT NULL, body BLOB NOT NULL,"
  " created_ms INTEGER NOT NULL);"
  "CREATE TABLE wh_delivery(id INTEGER PRIMARY KEY, msg_id TEXT NOT NULL, ep_id TEXT NOT NULL,"
  " state INTEGER NOT NULL, attempt INTEGER NOT NULL, retries_used INTEGER NOT NULL,"
  " fast_retry_used INTEGER NOT NULL, due_ms INTEGER NOT NULL, claimed INTEGER NOT NULL,"
  " finished_ms INTEGER);"
  "CREATE INDEX wh_delivery_due ON wh_delivery(due_ms) WHERE state = 0 AND claimed = 0;"
  "CREATE INDEX wh_delivery_msg ON wh_delivery(msg_id);"
  "CREATE INDEX wh_delivery_failed ON wh_delivery(ep_id, finished_ms) WHERE state = 2;"
  "CREATE TABLE wh_attempt(delivery_id INTEGER NOT NULL, attempt INTEGER NOT NULL, at_ms INTEGER NOT NULL,"
  " duration_ms INTEGER NOT NULL, http_status INTEGER, error TEXT, response BLOB,"
  " PRIMARY KEY(delivery_id, attempt)) WITHOUT ROWID;"
  "INSERT INTO wh_meta(key, value) VALUES('schema', 'libwebhook'), ('version', '1');";

enum {
  JOB_ENQUEUE, JOB_RECORD, JOB_PUT_EP, JOB_DEL_EP, JOB_CLAIM, JOB_RELEASE, JOB_REQUEUE, JOB_PURGE, JOB_FLUSH
};

/* A claimed delivery, collected by the writer for the caller. */
typedef struct claimed {
  wh__msg *m;
  wh__dlv_state st;
} claimed;

typedef struct job {
  int kind, sync, done, rc;
  char err[256];
  struct job *next;
  union {
    struct {
      wh__msg *m;
      const char *const *ep_ids;
      size_t n;
      int64_t owner;
      int64_t *ids;
    } enq;
    struct {
      wh__dlv_state st;
      int has_attempt, state;
      int64_t owner;
      wh__attempt_rec a; /* error and response point into owned copies */
      char *error, *response;
    } rec;
    const wh__endpoint *ep;
    const char *ep_id;
    struct {
      int64_t owner, horizon;
      size_t max, n;
      claimed *out;
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
  } u;
} job;

typedef struct {
  wh__store base;
  char *path;
  sqlite3 *wdb; /* the writer thread's */
  sqlite3 *rdb; /* reads of the log, under rmu */
  pthread_mutex_t rmu;
  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_done;
  job *head, *tail;
  int closing;
  pthread_t writer;
  int writer_started;
} sstore;

/* ---- errors -------------------------------------------------------------------- */

static const char *hint(int code)
{
  switch (code & 0xff) {
  case SQLITE_FULL: return " (the disk is full)";
  case SQLITE_READONLY: return " (the file or its folder is read-only)";
  case SQLITE_CORRUPT: return " (the file is corrupt)";
  case SQLITE_NOTADB: return " (the file is not a SQLite database)";
  case SQLITE_IOERR: return " (an I/O error)";
  case SQLITE_CANTOPEN: return " (the file cannot be opened)";
  case SQLITE_BUSY: return " (another process holds the database)";
  default: return "";
  }
}

static int db_fail(sqlite3 *db, const char *path, const char *what)
{
  int code = sqlite3_extended_errcode(db);
  return wh__fail(WH_ESTORE, "store sqlite:%s: %s: %s%s", path, what, sqlite3_errmsg(db), hint(code));
}

/* Inside the writer: remember the error text for the waiting caller. */
static int job_fail(job *j, sqlite3 *db, const char *what)
{
  snprintf(j->err, sizeof j->err, "%s: %s%s", what, sqlite3_errmsg(db), hint(sqlite3_extended_errcode(db)));
  j->rc = WH_ESTORE;
  return WH_ESTORE;
}

/* ---- statements ------------------------------------------------------------------ */

/* Run one statement with bound values described by fmt: i = int64, t = text
   (NULL is SQL NULL), b = blob (pointer, length). Returns the step result. */
static int run(sqlite3 *db, const char *sql, const char *fmt, ...)
{
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  va_list ap;
  va_start(ap, fmt);
  for (int i = 1; fmt && *fmt; fmt++, i++) {
    if (*fmt == 'i') {
      sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
    } else if (*fmt == 't') {
      const char *t = va_arg(ap, const char *);
      if (t)
        sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
      else
        sqlite3_bind_null(st, i);
    } else {
      const void *p = va_arg(ap, const void *);
      int n = va_arg(ap, int);
      if (p)
        sqlite3_bind_blob(st, i, p, n, SQLITE_STATIC);
      else
        sqlite3_bind_null(st, i);
    }
  }
  va_end(ap);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

static int exec(sqlite3 *db, const char *sql) { return sqlite3_exec(db, sql, NULL, NULL, NULL); }

/* ---- the jobs, run by the writer inside its transaction ------------------------------- */

static int do_enqueue(sstore *s, job *j)
{
  sqlite3 *db = s->wdb;
  wh__msg *m = j->u.enq.m;
  if (run(db, "INSERT INTO wh_message(id, event_type, body, created_ms) VALUES(?, ?, ?, ?)", "ttbi", m->id,
          m->type, m->body, (int)m->len, m->created_ms) != SQLITE_DONE)
    return job_fail(j, db, "saving the message");
  for (size_t i = 0; i < j->u.enq.n; i++) {
    if (run(db,
            "INSERT INTO wh_delivery(msg_id, ep_id, state, attempt, retries_used, fast_retry_used, due_ms,"
            " claimed) VALUES(?, ?, 0, 0, 0, 0, ?, ?)",
            "ttii", m->id, j->u.enq.ep_ids[i], m->created_ms, j->u.enq.owner) != SQLITE_DONE)
      return job_fail(j, db, "saving a delivery");
    j->u.enq.ids[i] = sqlite3_last_insert_rowid(db);
  }
  return WH_OK;
}

static int do_record(sstore *s, job *j)
{
  sqlite3 *db = s->wdb;
  const wh__dlv_state *st = &j->u.rec.st;
  int finished = j->u.rec.state != WH__DLV_PENDING;
  int64_t fin = finished ? (j->u.rec.has_attempt ? j->u.rec.a.at_ms + j->u.rec.a.duration_ms : wh__now_ms()) : 0;
  if (run(db,
          "UPDATE wh_delivery SET state = ?, attempt = ?, retries_used = ?, fast_retry_used = ?, due_ms = ?,"
          " claimed = ?, finished_ms = ? WHERE id = ?",
          "iiiiiiii", (int64_t)j->u.rec.state, (int64_t)st->attempt, (int64_t)st->retries_used,
          (int64_t)st->fast_retry_used, st->due_ms, j->u.rec.owner, fin, st->id) != SQLITE_DONE)
    return job_fail(j, db, "recording a delivery's state");
  if (!j->u.rec.has_attempt)
    return WH_OK;
  const wh__attempt_rec *a = &j->u.rec.a;
  if (run(db,
          "INSERT OR REPLACE INTO wh_attempt(delivery_id, attempt, at_ms, duration_ms, http_status, error,"
          " response) VALUES(?, ?, ?, ?, ?, ?, ?)",
          "iiiiitb", st->id, (int64_t)a->attempt, a->at_ms, a->duration_ms, (int64_t)a->http_status, a->error,
          a->response, (int)a->response_len) != SQLITE_DONE)
    return job_fail(j, db, "recording an attempt");
  return WH_OK;
}

static int do_put_ep(sstore *s, job *j)
{
  const wh__endpoint *ep = j->u.ep;
  char *f = NULL, *h = NULL, *sec = NULL;
  if (wh__endpoint_encode(ep, &f, &h, &sec) != WH_OK) {
    snprintf(j->err, sizeof j->err, "%s", wh_error_last());
    return j->rc = WH_ENOMEM;
  }
  int rc = run(s->wdb,
               "INSERT INTO wh_endpoint(id, name, url, description, enabled, disabled_reason, created_ms, filters,"
               " headers, secrets) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(id) DO UPDATE SET"
               " name = ?2, url = ?3, description = ?4, enabled = ?5, disabled_reason = ?6, filters = ?8,"
               " headers = ?9, secrets = ?10",
               "ttttitittt", ep->id, ep->name, ep->url, ep->description, (int64_t)ep->enabled, ep->disabled_reason,
               ep->created_ms, f, h, sec);
  free(f);
  free(h);
  free(sec);
  return rc == SQLITE_DONE ? WH_OK : job_fail(j, s->wdb, "saving the endpoint");
}

static int do_del_ep(sstore *s, job *j)
{
  if (run(s->wdb, "DELETE FROM wh_endpoint WHERE id = ?", "t", j->u.ep_id) != SQLITE_DONE)
    return job_fail(j, s->wdb, "removing the endpoint");
  return WH_OK;
}

static int do_claim(sstore *s, job *j)
{
  sqlite3 *db = s->wdb;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db,
                         "SELECT d.id, d.ep_id, d.attempt, d.retries_used, d.fast_retry_used, d.due_ms, m.id,"
                         " m.event_type, m.body, m.created_ms FROM wh_delivery d JOIN wh_message m ON m.id = d.msg_id"
                         " WHERE d.state = 0 AND d.claimed = 0 AND d.due_ms <= ? ORDER BY d.due_ms LIMIT ?",
                         -1, &st, NULL) != SQLITE_OK)
    return job_fail(j, db, "reading due deliveries");
  sqlite3_bind_int64(st, 1, j->u.claim.horizon);
  sqlite3_bind_int64(st, 2, (int64_t)j->u.claim.max);
  j->u.claim.out = calloc(j->u.claim.max ? j->u.claim.max : 1, sizeof *j->u.claim.out);
  if (!j->u.claim.out) {
    sqlite3_finalize(st);
    snprintf(j->err, sizeof j->err, "out of memory");
    return j->rc = WH_ENOMEM;
  }
  size_t n = 0;
  int rc;
  wh__msg *prev = NULL;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < j->u.claim.max) {
    claimed *c = &j->u.claim.out[n];
    c->st.id = sqlite3_column_int64(st, 0);
    snprintf(c->st.ep_id, sizeof c->st.ep_id, "%s", (const char *)sqlite3_column_text(st, 1));
    c->st.attempt = sqlite3_column_int(st, 2);
    c->st.retries_used = sqlite3_column_int(st, 3);
    c->st.fast_retry_used = sqlite3_column_int(st, 4);
    c->st.due_ms = sqlite3_column_int64(st, 5);
    const char *mid = (const char *)sqlite3_column_text(st, 6);
    /* Deliveries of one message come together after an emit: share its body. */
    if (prev && strcmp(prev->id, mid) == 0) {
      wh__msg_ref(prev);
      c->m = prev;
    } else {
      c->m = wh__msg_new(mid, (const char *)sqlite3_column_text(st, 7), sqlite3_column_blob(st, 8),
                         (size_t)sqlite3_column_bytes(st, 8), sqlite3_column_int64(st, 9));
      prev = c->m;
    }
    if (!c->m)
      break;
    n++;
  }
  sqlite3_finalize(st);
  j->u.claim.n = n;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return job_fail(j, db, "reading due deliveries");
  for (size_t i = 0; i < n; i++)
    if (run(db, "UPDATE wh_delivery SET claimed = ? WHERE id = ?", "ii", j->u.claim.owner,
            j->u.claim.out[i].st.id) != SQLITE_DONE)
      return job_fail(j, db, "claiming a delivery");
  return WH_OK;
}

static int do_requeue(sstore *s, job *j)
{
  sqlite3 *db = s->wdb;
  int64_t now = wh__now_ms();
  const char *reset =
    "UPDATE wh_delivery SET state = 0, claimed = 0, due_ms = ?1, retries_used = 0, fast_retry_used = 0,"
    " finished_ms = NULL WHERE ";
  char sql[512];
  int rc;
  if (j->u.rq.msg_id) {
    sqlite3_stmt *st;
    int exists = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM wh_message WHERE id = ?", -1, &st, NULL) == SQLITE_OK) {
      sqlite3_bind_text(st, 1, j->u.rq.msg_id, -1, SQLITE_STATIC);
      exists = sqlite3_step(st) == SQLITE_ROW;
      sqlite3_finalize(st);
    }
    if (!exists) {
      snprintf(j->err, sizeof j->err, "message \"%.64s\": not in the store", j->u.rq.msg_id);
      return j->rc = WH_ENOTFOUND;
    }
    snprintf(sql, sizeof sql, "%smsg_id = ?2 AND (?3 IS NULL OR ep_id = ?3) AND state != 0", reset);
    rc = run(db, sql, "itt", now, j->u.rq.msg_id, j->u.rq.ep_id);
    j->u.rq.count = (size_t)sqlite3_changes(db);
    if (rc == SQLITE_DONE && j->u.rq.ep_id) {
      /* No delivery yet for this endpoint (added later, or filtered out): make one. */
      rc = run(db,
               "INSERT INTO wh_delivery(msg_id, ep_id, state, attempt, retries_used, fast_retry_used, due_ms, claimed)"
               " SELECT ?1, ?2, 0, 0, 0, 0, ?3, 0 WHERE NOT EXISTS"
               " (SELECT 1 FROM wh_delivery WHERE msg_id = ?1 AND ep_id = ?2)",
               "tti", j->u.rq.msg_id, j->u.rq.ep_id, now);
      j->u.rq.count += (size_t)sqlite3_changes(db);
    }
  } else {
    snprintf(sql, sizeof sql, "%sep_id = ?2 AND state = 2 AND finished_ms >= ?3", reset);
    rc = run(db, sql, "iti", now, j->u.rq.ep_id, j->u.rq.since);
    j->u.rq.count = (size_t)sqlite3_changes(db);
  }
  return rc == SQLITE_DONE ? WH_OK : job_fail(j, db, "requeueing deliveries");
}

static int do_purge(sstore *s, job *j)
{
  sqlite3 *db = s->wdb;
  int rc = exec(db, "CREATE TEMP TABLE IF NOT EXISTS wh_purge(id TEXT PRIMARY KEY); DELETE FROM wh_purge;");
  if (rc == SQLITE_OK)
    rc = run(db,
             "INSERT INTO wh_purge SELECT m.id FROM wh_message m WHERE m.created_ms < ?1 AND NOT EXISTS"
             " (SELECT 1 FROM wh_delivery d WHERE d.msg_id = m.id AND (d.state != 1 OR d.finished_ms >= ?1))",
             "i", j->u.purge.before) == SQLITE_DONE
           ? SQLITE_OK
           : SQLITE_ERROR;
  j->u.purge.count = rc == SQLITE_OK ? (size_t)sqlite3_changes(db) : 0;
  if (rc == SQLITE_OK)
    rc = exec(db, "DELETE FROM wh_attempt WHERE delivery_id IN"
                  " (SELECT id FROM wh_delivery WHERE msg_id IN (SELECT id FROM wh_purge));"
                  "DELETE FROM wh_delivery WHERE msg_id IN (SELECT id FROM wh_purge);"
                  "DELETE FROM wh_message WHERE id IN (SELECT id FROM wh_purge);");
  return rc == SQLITE_OK ? WH_OK : job_fail(j, db, "purging delivered messages");
}

static int do_job(sstore *s, job *j)
{
  switch (j->kind) {
  case JOB_ENQUEUE: return do_enqueue(s, j);
  case JOB_RECORD: return do_record(s, j);
  case JOB_PUT_EP: return do_put_ep(s, j);
  case JOB_DEL_EP: return do_del_ep(s, j);
  case JOB_CLAIM: return do_claim(s, j);
  case JOB_RELEASE:
    return run(s->wdb, "UPDATE wh_delivery SET claimed = 0 WHERE claimed = ?", "i", j->u.owner) == SQLITE_DONE
             ? WH_OK
             : job_fail(j, s->wdb, "releasing claimed deliveries");
  case JOB_REQUEUE: return do_requeue(s, j);
  case JOB_PURGE: return do_purge(s, j);
  default: return WH_OK; /* JOB_FLUSH: only waits for what came before */
  }
}

static void free_record(job *j)
{
  free(j->u.rec.error);
  free(j->u.rec.response);
  free(j);
}

static void run_batch(sstore *s, job *batch)
{
  sqlite3 *db = s->wdb;
  int txn = exec(db, "BEGIN IMMEDIATE") == SQLITE_OK;
  if (!txn) {
    for (job *j = batch; j; j = j->next)
      job_fail(j, db, "starting a transaction");
  } else {
    for (job *j = batch; j; j = j->next) {
      exec(db, "SAVEPOINT job");
      if (do_job(s, j) != WH_OK)
        exec(db, "ROLLBACK TO job");
      exec(db, "RELEASE job");
    }
    if (exec(db, "COMMIT") != SQLITE_OK) {
      /* The disk is full, or gone: nothing of this batch is durable. */
      char why[256];
      snprintf(why, sizeof why, "committing: %s%s", sqlite3_errmsg(db), hint(sqlite3_extended_errcode(db)));
      exec(db, "ROLLBACK");
      for (job *j = batch; j; j = j->next) {
        j->rc = WH_ESTORE;
        snprintf(j->err, sizeof j->err, "%s", why);
        if (j->kind == JOB_CLAIM) {
          for (size_t i = 0; i < j->u.claim.n; i++)
            wh__msg_unref(j->u.claim.out[i].m);
          j->u.claim.n = 0;
        }
      }
    }
  }
  pthread_mutex_lock(&s->mu);
  for (job *j = batch, *next; j; j = next) {
    next = j->next;
    if (j->sync)
      j->done = 1;
    else
      free_record(j);
  }
  pthread_cond_broadcast(&s->cv_done);
  pthread_mutex_unlock(&s->mu);
}

static void *writer_main(void *arg)
{
  sstore *s = arg;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    while (!s->head && !s->closing)
      pthread_cond_wait(&s->cv_work, &s->mu);
    job *batch = s->head;
    s->head = s->tail = NULL;
    int closing = s->closing;
    pthread_mutex_unlock(&s->mu);
    if (batch)
      run_batch(s, batch);
    else if (closing)
      break;
  }
  return NULL;
}

static void submit(sstore *s, job *j)
{
  pthread_mutex_lock(&s->mu);
  j->next = NULL;
  if (s->tail)
    s->tail->next = j;
  else
    s->head = j;
  s->tail = j;
  pthread_cond_signal(&s->cv_work);
  if (j->sync)
    while (!j->done)
      pthread_cond_wait(&s->cv_done, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

/* Run a job and wait for its commit; the error is the caller's. */
static int submit_sync(sstore *s, job *j)
{
  j->sync = 1;
  submit(s, j);
  if (j->rc != WH_OK)
    return wh__fail(j->rc, "store sqlite:%s: %s", s->path, j->err);
  return WH_OK;
}

/* ---- the store operations ------------------------------------------------------------ */

static void s_close(wh__store *base)
{
  sstore *s = (sstore *)base;
  if (s->writer_started) {
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    pthread_cond_signal(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->writer, NULL);
  }
  sqlite3_close(s->rdb);
  sqlite3_close(s->wdb);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->rmu);
  pthread_cond_destroy(&s->cv_work);
  pthread_cond_destroy(&s->cv_done);
  free(s->path);
  free(s);
}

static int s_load_endpoints(wh__store *base, int (*add)(void *, const wh__endpoint_row *), void *ud)
{
  sstore *s = (sstore *)base;
  sqlite3_stmt *st;
  pthread_mutex_lock(&s->rmu);
  if (sqlite3_prepare_v2(s->rdb,
                         "SELECT id, name, url, description, enabled, disabled_reason, created_ms, filters,"
                         " headers, secrets FROM wh_endpoint ORDER BY rowid",
                         -1, &st, NULL) != SQLITE_OK) {
    int rc = db_fail(s->rdb, s->path, "reading endpoints");
    pthread_mutex_unlock(&s->rmu);
    return rc;
  }
  int rc = WH_OK, step;
  while (rc == WH_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
    wh__endpoint_row row = {
      .id = (const char *)sqlite3_column_text(st, 0),
      .name = (const char *)sqlite3_column_text(st, 1),
      .url = (const char *)sqlite3_column_text(st, 2),
      .description = (const char *)sqlite3_column_text(st, 3),
      .enabled = sqlite3_column_int(st, 4),
      .disabled_reason = (const char *)sqlite3_column_text(st, 5),
      .created_ms = sqlite3_column_int64(st, 6),
      .filters = (const char *)sqlite3_column_text(st, 7),
      .headers = (const char *)sqlite3_column_text(st, 8),
      .secrets = (const char *)sqlite3_column_text(st, 9),
    };
    rc = add(ud, &row);
  }
  if (rc == WH_OK && step != SQLITE_DONE)
    rc = db_fail(s->rdb, s->path, "reading endpoints");
  sqlite3_finalize(st);
  pthread_mutex_unlock(&s->rmu);
  return rc;
}

static int s_put_endpoint(wh__store *base, const wh__endpoint *ep)
{
  job j = {.kind = JOB_PUT_EP};
  j.u.ep = ep;
  return submit_sync((sstore *)base, &j);
}

static int s_delete_endpoint(wh__store *base, const char *id)
{
  job j = {.kind = JOB_DEL_EP};
  j.u.ep_id = id;
  return submit_sync((sstore *)base, &j);
}

static int s_enqueue(wh__store *base, wh__msg *m, const char *const *ep_ids, size_t n, int64_t owner, int64_t *ids)
{
  job j = {.kind = JOB_ENQUEUE};
  j.u.enq.m = m;
  j.u.enq.ep_ids = ep_ids;
  j.u.enq.n = n;
  j.u.enq.owner = owner;
  j.u.enq.ids = ids;
  return submit_sync((sstore *)base, &j);
}

static int s_claim(wh__store *base, int64_t owner, int64_t horizon_ms, size_t max, wh__claim_cb cb, void *ud)
{
  job j = {.kind = JOB_CLAIM};
  j.u.claim.owner = owner;
  j.u.claim.horizon = horizon_ms;
  j.u.claim.max = max;
  int rc = submit_sync((sstore *)base, &j);
  for (size_t i = 0; i < j.u.claim.n; i++) {
    if (rc == WH_OK)
      rc = cb(ud, j.u.claim.out[i].m, &j.u.claim.out[i].st);
    wh__msg_unref(j.u.claim.out[i].m);
  }
  free(j.u.claim.out);
  return rc;
}

static void s_record(wh__store *base, const wh__dlv_state *st, const wh__attempt_rec *a, int state, int64_t owner)
{
  job *j = calloc(1, sizeof *j);
  if (!j)
    return; /* the delivery stays as last recorded: at worst it is made again */
  j->kind = JOB_RECORD;
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
  submit((sstore *)base, j);
}

static void s_release(wh__store *base, int64_t owner)
{
  job j = {.kind = JOB_RELEASE};
  j.u.owner = owner;
  submit_sync((sstore *)base, &j);
}

static void s_flush(wh__store *base)
{
  job j = {.kind = JOB_FLUSH};
  submit_sync((sstore *)base, &j);
}

static int s_message_json(wh__store *base, const char *msg_id, char **json)
{
  sstore *s = (sstore *)base;
  s_flush(base); /* the log shows every attempt reported so far */
  pthread_mutex_lock(&s->rmu);
  sqlite3 *db = s->rdb;
  sqlite3_stmt *st = NULL, *dq = NULL, *aq = NULL;
  cJSON *o = NULL;
  int rc = WH_OK;
  if (sqlite3_prepare_v2(db, "SELECT event_type, created_ms, body FROM wh_message WHERE id = ?", -1, &st, NULL) !=
        SQLITE_OK ||
      sqlite3_prepare_v2(db,
                         "SELECT id, ep_id, state, attempt, due_ms, finished_ms FROM wh_delivery WHERE msg_id = ?"
                         " ORDER BY id",
                         -1, &dq, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db,
                         "SELECT attempt, at_ms, duration_ms, http_status, error, response FROM wh_attempt"
                         " WHERE delivery_id = ? ORDER BY attempt",
                         -1, &aq, NULL) != SQLITE_OK) {
    rc = db_fail(db, s->path, "reading the log");
    goto out;
  }
  sqlite3_bind_text(st, 1, msg_id, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_ROW) {
    rc = wh__fail(WH_ENOTFOUND, "message \"%.64s\": not in the store", msg_id);
    goto out;
  }
  char *body = wh__strndup(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2));
  o = body ? wh__log_message_json(msg_id, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
                                  body)
           : NULL;
  free(body);
  cJSON *arr = o ? cJSON_GetObjectItem(o, "deliveries") : NULL;
  sqlite3_bind_text(dq, 1, msg_id, -1, SQLITE_STATIC);
  while (arr && sqlite3_step(dq) == SQLITE_ROW) {
    wh__log_delivery info = {.id = sqlite3_column_int64(dq, 0), .ep_id = (const char *)sqlite3_column_text(dq, 1),
                             .state = sqlite3_column_int(dq, 2), .attempts = sqlite3_column_int(dq, 3),
                             .due_ms = sqlite3_column_int64(dq, 4), .finished_ms = sqlite3_column_int64(dq, 5)};
    cJSON *d = wh__log_delivery_json(&info);
    cJSON *atts = d ? cJSON_GetObjectItem(d, "attempts") : NULL;
    sqlite3_reset(aq);
    sqlite3_bind_int64(aq, 1, info.id);
    while (atts && sqlite3_step(aq) == SQLITE_ROW) {
      wh__attempt_rec a = {.attempt = sqlite3_column_int(aq, 0), .at_ms = sqlite3_column_int64(aq, 1),
                           .duration_ms = sqlite3_column_int64(aq, 2), .http_status = sqlite3_column_int(aq, 3),
                           .error = (const char *)sqlite3_column_text(aq, 4),
                           .response = sqlite3_column_blob(aq, 5),
                           .response_len = (size_t)sqlite3_column_bytes(aq, 5)};
      cJSON_AddItemToArray(atts, wh__log_attempt_json(&a));
    }
    cJSON_AddItemToArray(arr, d);
  }
out:
  sqlite3_finalize(st);
  sqlite3_finalize(dq);
  sqlite3_finalize(aq);
  pthread_mutex_unlock(&s->rmu);
  if (rc) {
    cJSON_Delete(o);
    return rc;
  }
  return wh__log_print(o, json);
}

static int s_failed_json(wh__store *base, const char *ep_id, int64_t since_ms, size_t limit, char **json)
{
  sstore *s = (sstore *)base;
  s_flush(base);
  pthread_mutex_lock(&s->rmu);
  sqlite3_stmt *st;
  int rc = WH_OK;
  cJSON *arr = cJSON_CreateArray();
  if (sqlite3_prepare_v2(s->rdb,
                         "SELECT d.msg_id, m.event_type, d.attempt, d.finished_ms, a.http_status, a.error"
                         " FROM wh_delivery d JOIN wh_message m ON m.id = d.msg_id"
                         " LEFT JOIN wh_attempt a ON a.delivery_id = d.id AND a.attempt = d.attempt"
                         " WHERE d.ep_id = ? AND d.state = 2 AND d.finished_ms >= ? ORDER BY d.finished_ms, d.id"
                         " LIMIT ?",
                         -1, &st, NULL) != SQLITE_OK) {
    rc = db_fail(s->rdb, s->path, "reading failed deliveries");
  } else {
    sqlite3_bind_text(st, 1, ep_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since_ms);
    sqlite3_bind_int64(st, 3, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
    while (arr && sqlite3_step(st) == SQLITE_ROW)
      cJSON_AddItemToArray(arr, wh__log_failed_json((const char *)sqlite3_column_text(st, 0),
                                                    (const char *)sqlite3_column_text(st, 1), ep_id,
                                                    sqlite3_column_int(st, 2), sqlite3_column_int64(st, 3),
                                                    sqlite3_column_int(st, 4),
                                                    (const char *)sqlite3_column_text(st, 5)));
    sqlite3_finalize(st);
  }
  pthread_mutex_unlock(&s->rmu);
  if (rc) {
    cJSON_Delete(arr);
    return rc;
  }
  return wh__log_print(arr, json);
}

static int s_requeue(wh__store *base, const char *msg_id, const char *ep_id, int64_t since_ms, size_t *count)
{
  job j = {.kind = JOB_REQUEUE};
  j.u.rq.msg_id = msg_id;
  j.u.rq.ep_id = ep_id;
  j.u.rq.since = since_ms;
  int rc = submit_sync((sstore *)base, &j);
  if (count)
    *count = rc ? 0 : j.u.rq.count;
  return rc;
}

static int s_purge(wh__store *base, int64_t before_ms, size_t *count)
{
  job j = {.kind = JOB_PURGE};
  j.u.purge.before = before_ms;
  int rc = submit_sync((sstore *)base, &j);
  if (count)
    *count = rc ? 0 : j.u.purge.count;
  return rc;
}

static const wh__store_ops sqlite_ops = {
  .name = "sqlite",
  .durable = 1,
  .close = s_close,
  .load_endpoints = s_load_endpoints,
  .put_endpoint = s_put_endpoint,
  .delete_endpoint = s_delete_endpoint,
  .enqueue = s_enqueue,
  .claim = s_claim,
  .record = s_record,
  .release = s_release,
  .flush = s_flush,
  .message_json = s_message_json,
  .failed_json = s_failed_json,
  .requeue = s_requeue,
  .purge = s_purge,
};

/* ---- opening ------------------------------------------------------------------------------ */

static int open_conn(sstore *s, sqlite3 **db)
{
  int rc = sqlite3_open_v2(s->path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    int r = *db ? db_fail(*db, s->path, "opening")
                : wh__fail(WH_ESTORE, "store sqlite:%s: cannot open: %s", s->path, sqlite3_errstr(rc));
    return r;
  }
  sqlite3_busy_timeout(*db, BUSY_TIMEOUT_MS);
  sqlite3_extended_result_codes(*db, 1);
  if (sqlite3_db_readonly(*db, "main") == 1)
    return wh__fail(WH_ESTORE, "store sqlite:%s: the file is read-only; libwebhook needs to write it", s->path);
  return WH_OK;
}

/* Create the schema in an empty file, or check that a non-empty one is ours. */
static int prepare_schema(sstore *s)
{
  sqlite3 *db = s->wdb;
  sqlite3_stmt *st;
  /* The first read tells a corrupt or foreign (non-SQLite) file apart. */
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) != SQLITE_OK)
    return db_fail(db, s->path, "reading the schema");
  int step = sqlite3_step(st);
  int tables = step == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
  sqlite3_finalize(st);
  if (step != SQLITE_ROW)
    return db_fail(db, s->path, "reading the schema");
  if (exec(db, "PRAGMA journal_mode=WAL") != SQLITE_OK || exec(db, "PRAGMA synchronous=FULL") != SQLITE_OK)
    return db_fail(db, s->path, "switching to WAL mode");
  if (tables == 0) {
    if (exec(db, "BEGIN IMMEDIATE") != SQLITE_OK)
      return db_fail(db, s->path, "creating the schema");
    if (exec(db, schema_sql) != SQLITE_OK) {
      int rc = db_fail(db, s->path, "creating the schema");
      exec(db, "ROLLBACK");
      return rc;
    }
    if (exec(db, "COMMIT") != SQLITE_OK) {
      int rc = db_fail(db, s->path, "creating the schema");
      exec(db, "ROLLBACK");
      return rc;
    }
    return WH_OK;
  }
  const char *schema = NULL;
  int version = 0;
  if (sqlite3_prepare_v2(db, "SELECT (SELECT value FROM wh_meta WHERE key = 'schema'),"
                             " (SELECT value FROM wh_meta WHERE key = 'version')",
                         -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    schema = (const char *)sqlite3_column_text(st, 0);
    version = sqlite3_column_int(st, 1);
  }
  int ours = schema && strcmp(schema, "libwebhook") == 0;
  sqlite3_finalize(st);
  if (!ours)
    return wh__fail(WH_ESTORE, "store sqlite:%s: a SQLite database of another application (no libwebhook "
                               "schema); refusing to touch it",
                    s->path);
  if (version != SCHEMA_VERSION)
    return wh__fail(WH_ESTORE, "store sqlite:%s: schema version %d, this library knows %d", s->path, version,
                    SCHEMA_VERSION);
  return WH_OK;
}

int wh__store_sqlite_open(const char *path, wh__store **out)
{
  sstore *s = calloc(1, sizeof *s);
  if (!s || !(s->path = wh__strdup(path))) {
    free(s);
    return wh__oom();
  }
  s->base.ops = &sqlite_ops;
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->rmu, NULL);
  pthread_cond_init(&s->cv_work, NULL);
  pthread_cond_init(&s->cv_done, NULL);
  int rc = open_conn(s, &s->wdb);
  if (!rc)
    rc = prepare_schema(s);
  if (!rc)
    rc = open_conn(s, &s->rdb);
  /* Deliveries claimed by a process that died are free again: recovery. */
  if (!rc && run(s->wdb, "UPDATE wh_delivery SET claimed = 0 WHERE claimed != 0", NULL) != SQLITE_DONE)
    rc = db_fail(s->wdb, path, "recovering claimed deliveries");
  if (!rc && pthread_create(&s->writer, NULL, writer_main, s) != 0)
    rc = wh__fail(WH_ENOMEM, "store sqlite:%s: cannot start the writer thread", path);
  else if (!rc)
    s->writer_started = 1;
  if (rc) {
    s_close(&s->base);
    return rc;
  }
  *out = &s->base;
  return WH_OK;
}
