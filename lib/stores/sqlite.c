/*
 * The SQLite store: one file, WAL mode, synchronous=FULL, so that what emit
 * accepted survives a crash or a power cut. Batches of attempt records alone
 * commit at synchronous=NORMAL (see tx_begin). Writes run on the shared writer
 * thread (writer.c: group commit) with their own connection; reads of
 * the log use a second one.
 */
#include "writer.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The changes since the first schema, in order: migration i takes version i + 1
   to i + 2. A new file gets schema_sql then every migration; an older file the
   ones it lacks, in one transaction. Never edit one that shipped. */
static const char *const migrations[] = {
  /* 2 (1.1): endpoints belong to a tenant (NULL: the platform); test events. */
  "ALTER TABLE wh_endpoint ADD COLUMN tenant_id TEXT;"
  "ALTER TABLE wh_message ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;",
  /* 3 (1.1): per-endpoint settings; deliveries of an ordered endpoint carry their
     resource_id as the key they are ordered by. */
  "ALTER TABLE wh_endpoint ADD COLUMN settings TEXT;"
  "ALTER TABLE wh_delivery ADD COLUMN order_key TEXT;"
  "CREATE INDEX wh_delivery_order ON wh_delivery(ep_id, order_key, id) WHERE state = 0 AND order_key IS NOT NULL;",
};
#define SCHEMA_VERSION ((int)WH__COUNT(migrations) + 1)

#define STMT_CACHE 24

typedef struct {
  wh__qstore q; /* first: the store operations start here */
  char *path, *label;
  int lock_fd; /* PATH.lock, held while open (filelock.c) */
  sqlite3 *wdb; /* the writer thread's */
  struct {
    char *sql;
    sqlite3_stmt *st;
  } cache[STMT_CACHE]; /* the writer's prepared statements, by their text */
  int ncache;
  int full;     /* the writer's connection is at synchronous=FULL */
  int unsynced; /* commits at synchronous=NORMAL since the last FULL one */
  sqlite3 *rdb; /* reads of the log, under rmu */
  pthread_mutex_t rmu;
  /* Checkpoints run on a thread of their own, so that a commit never waits for
     one (SQLite's automatic checkpoint runs inside the commit that crosses
     1,000 WAL pages, and copies them and syncs the database file there: the
     emit p99). WAL mode lets a checkpoint run beside the writer. */
  sqlite3 *cdb;
  pthread_t ckpt;
  pthread_mutex_t cmu;
  pthread_cond_t ccv;
  int ckpt_started, ckpt_closing;
  unsigned ckpt_asked, ckpt_served; /* checkpoints the writer asked for, and done (under cmu) */
  int ckpt_at;                      /* WAL pages when the writer last asked (writer only) */
  int wal_pages;                    /* after the writer's last commit (writer only) */
} sstore;

#define CKPT_PAGES 1000          /* ask for a checkpoint past this many WAL pages */
#define CKPT_WRITER_PAGES 20000  /* the checkpointer fell this far behind: the writer checkpoints */

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
static int job_fail(wh__job *j, sqlite3 *db, const char *what)
{
  return wh__job_fail(j, "%s: %s%s", what, sqlite3_errmsg(db), hint(sqlite3_extended_errcode(db)));
}

/* ---- statements ------------------------------------------------------------------ */

/* The writer's statement for sql: prepared once, then reset and reused. */
static sqlite3_stmt *prepared(sstore *s, const char *sql, int *owned)
{
  for (int i = 0; i < s->ncache; i++)
    if (strcmp(s->cache[i].sql, sql) == 0) {
      *owned = 0;
      return s->cache[i].st;
    }
  sqlite3_stmt *st;
  if (sqlite3_prepare_v3(s->wdb, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
    return NULL;
  char *copy = s->ncache < STMT_CACHE ? wh__strdup(sql) : NULL;
  if (!copy) {
    *owned = 1; /* cache full: use once */
    return st;
  }
  s->cache[s->ncache].sql = copy;
  s->cache[s->ncache++].st = st;
  *owned = 0;
  return st;
}

/* Run one statement on the writer's connection with bound values described
   by fmt: i = int64, t = text (NULL is SQL NULL), b = blob (pointer, length).
   Returns the step result (SQLITE_DONE for a row too). */
static int run(sstore *s, const char *sql, const char *fmt, ...)
{
  int owned;
  sqlite3_stmt *st = prepared(s, sql, &owned);
  if (!st)
    return sqlite3_errcode(s->wdb);
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
  int rc = sqlite3_step(st);
  if (owned) {
    sqlite3_finalize(st);
  } else {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  }
  return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

static int exec(sqlite3 *db, const char *sql) { return sqlite3_exec(db, sql, NULL, NULL, NULL); }

/* ---- the jobs, run by the writer inside its transaction ------------------------------- */

static int enqueue_one(sstore *s, wh__job *j, const wh__enq *e)
{
  sqlite3 *db = s->wdb;
  wh__msg *m = e->m;
  if (run(s, "INSERT INTO wh_message(id, event_type, body, created_ms, flags) VALUES(?, ?, ?, ?, ?)", "ttbii",
          m->id, m->type, m->body, (int)m->len, m->created_ms, (int64_t)m->flags) != SQLITE_DONE)
    return job_fail(j, db, "saving the message");
  const char *kp;
  size_t kl;
  char *key = NULL;
  if (e->ordered && wh__msg_order_key(m, &kp, &kl) && !(key = wh__strndup(kp, kl))) {
    snprintf(j->err, sizeof j->err, "out of memory");
    return j->rc = WH_ENOMEM;
  }
  int rc = WH_OK;
  for (size_t i = 0; i < e->n && !rc; i++) {
    int ordered = key && e->ordered[i];
    if (run(s,
            "INSERT INTO wh_delivery(msg_id, ep_id, state, attempt, retries_used, fast_retry_used, due_ms,"
            " claimed, order_key) VALUES(?, ?, 0, 0, 0, 0, ?, ?, ?)",
            "ttiit", m->id, e->ep_ids[i], m->created_ms, ordered ? 0 : j->u.enq.owner,
            ordered ? key : NULL) != SQLITE_DONE)
      rc = job_fail(j, db, "saving a delivery");
    else
      e->ids[i] = sqlite3_last_insert_rowid(db);
  }
  free(key);
  return rc;
}

static int do_enqueue(sstore *s, wh__job *j)
{
  int rc = WH_OK;
  for (size_t k = 0; k < j->u.enq.n && rc == WH_OK; k++)
    rc = enqueue_one(s, j, &j->u.enq.msgs[k]);
  return rc;
}

static int do_record(sstore *s, wh__job *j)
{
  sqlite3 *db = s->wdb;
  const wh__dlv_state *st = &j->u.rec.st;
  int finished = j->u.rec.state != WH__DLV_PENDING;
  int64_t fin = finished ? (j->u.rec.has_attempt ? j->u.rec.a.at_ms + j->u.rec.a.duration_ms : wh__now_ms()) : 0;
  if (run(s,
          "UPDATE wh_delivery SET state = ?, attempt = ?, retries_used = ?, fast_retry_used = ?, due_ms = ?,"
          " claimed = ?, finished_ms = ? WHERE id = ?",
          "iiiiiiii", (int64_t)j->u.rec.state, (int64_t)st->attempt, (int64_t)st->retries_used,
          (int64_t)st->fast_retry_used, st->due_ms, j->u.rec.owner, fin, st->id) != SQLITE_DONE)
    return job_fail(j, db, "recording a delivery's state");
  if (!j->u.rec.has_attempt)
    return WH_OK;
  const wh__attempt_rec *a = &j->u.rec.a;
  if (run(s,
          "INSERT OR REPLACE INTO wh_attempt(delivery_id, attempt, at_ms, duration_ms, http_status, error,"
          " response) VALUES(?, ?, ?, ?, ?, ?, ?)",
          "iiiiitb", st->id, (int64_t)a->attempt, a->at_ms, a->duration_ms, (int64_t)a->http_status, a->error,
          a->response, (int)a->response_len) != SQLITE_DONE)
    return job_fail(j, db, "recording an attempt");
  return WH_OK;
}

static int do_put_ep(sstore *s, wh__job *j)
{
  const wh__endpoint *ep = j->u.ep;
  char *f = NULL, *h = NULL, *sec = NULL, *set = NULL;
  if (wh__endpoint_encode(ep, &f, &h, &sec, &set) != WH_OK) {
    snprintf(j->err, sizeof j->err, "%s", wh_error_last());
    return j->rc = WH_ENOMEM;
  }
  int rc = run(s,
               "INSERT INTO wh_endpoint(id, name, url, description, enabled, disabled_reason, created_ms, filters,"
               " headers, secrets, tenant_id, settings) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
               " ON CONFLICT(id) DO UPDATE SET name = ?2, url = ?3, description = ?4, enabled = ?5,"
               " disabled_reason = ?6, filters = ?8, headers = ?9, secrets = ?10, settings = ?12",
               "ttttitittttt", ep->id, ep->name, ep->url, ep->description, (int64_t)ep->enabled,
               ep->disabled_reason, ep->created_ms, f, h, sec, ep->tenant, set);
  free(set);
  free(f);
  free(h);
  free(sec);
  return rc == SQLITE_DONE ? WH_OK : job_fail(j, s->wdb, "saving the endpoint");
}

static int do_del_ep(sstore *s, wh__job *j)
{
  if (run(s, "DELETE FROM wh_endpoint WHERE id = ?", "t", j->u.ep_id) != SQLITE_DONE)
    return job_fail(j, s->wdb, "removing the endpoint");
  return WH_OK;
}

/* WH_EP_ORDERED: a delivery with an order key may go only when no other
   pending one of its chain (same endpoint and key) is older or claimed. */
#define ORDER_HEAD                                                                                   \
  " AND (d.order_key IS NULL OR NOT EXISTS (SELECT 1 FROM wh_delivery e WHERE e.ep_id = d.ep_id"     \
  " AND e.order_key = d.order_key AND e.state = 0 AND e.id <> d.id AND (e.id < d.id OR e.claimed <> 0)))"

static int do_claim(sstore *s, wh__job *j)
{
  sqlite3 *db = s->wdb;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db,
                         "SELECT d.id, d.ep_id, d.attempt, d.retries_used, d.fast_retry_used, d.due_ms, m.id,"
                         " m.event_type, m.body, m.created_ms, m.flags, d.order_key IS NOT NULL FROM wh_delivery d"
                         " JOIN wh_message m ON m.id = d.msg_id"
                         " WHERE d.state = 0 AND d.claimed = 0 AND d.due_ms <= ?" ORDER_HEAD
                         " ORDER BY d.due_ms LIMIT ?",
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
    wh__claimed *c = &j->u.claim.out[n];
    c->st.id = sqlite3_column_int64(st, 0);
    snprintf(c->st.ep_id, sizeof c->st.ep_id, "%s", (const char *)sqlite3_column_text(st, 1));
    c->st.attempt = sqlite3_column_int(st, 2);
    c->st.retries_used = sqlite3_column_int(st, 3);
    c->st.fast_retry_used = sqlite3_column_int(st, 4);
    c->st.due_ms = sqlite3_column_int64(st, 5);
    c->st.ordered = sqlite3_column_int(st, 11);
    const char *mid = (const char *)sqlite3_column_text(st, 6);
    /* Deliveries of one message come together after an emit: share its body. */
    if (prev && strcmp(prev->id, mid) == 0) {
      wh__msg_ref(prev);
      c->m = prev;
    } else {
      c->m = wh__msg_new(mid, (const char *)sqlite3_column_text(st, 7), sqlite3_column_blob(st, 8),
                         (size_t)sqlite3_column_bytes(st, 8), sqlite3_column_int64(st, 9));
      if (c->m)
        c->m->flags = (uint8_t)sqlite3_column_int(st, 10);
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
    if (run(s, "UPDATE wh_delivery SET claimed = ? WHERE id = ?", "ii", j->u.claim.owner,
            j->u.claim.out[i].st.id) != SQLITE_DONE)
      return job_fail(j, db, "claiming a delivery");
  return WH_OK;
}

static int do_requeue(sstore *s, wh__job *j)
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
    rc = run(s, sql, "itt", now, j->u.rq.msg_id, j->u.rq.ep_id);
    j->u.rq.count = (size_t)sqlite3_changes(db);
    if (rc == SQLITE_DONE && j->u.rq.ep_id) {
      /* No delivery yet for this endpoint (added later, or filtered out): make one. */
      rc = run(s,
               "INSERT INTO wh_delivery(msg_id, ep_id, state, attempt, retries_used, fast_retry_used, due_ms, claimed)"
               " SELECT ?1, ?2, 0, 0, 0, 0, ?3, 0 WHERE NOT EXISTS"
               " (SELECT 1 FROM wh_delivery WHERE msg_id = ?1 AND ep_id = ?2)",
               "tti", j->u.rq.msg_id, j->u.rq.ep_id, now);
      j->u.rq.count += (size_t)sqlite3_changes(db);
    }
  } else {
    snprintf(sql, sizeof sql, "%sep_id = ?2 AND state = 2 AND finished_ms >= ?3", reset);
    rc = run(s, sql, "iti", now, j->u.rq.ep_id, j->u.rq.since);
    j->u.rq.count = (size_t)sqlite3_changes(db);
  }
  return rc == SQLITE_DONE ? WH_OK : job_fail(j, db, "requeueing deliveries");
}

static int do_purge(sstore *s, wh__job *j)
{
  sqlite3 *db = s->wdb;
  int rc = exec(db, "CREATE TEMP TABLE IF NOT EXISTS wh_purge(id TEXT PRIMARY KEY); DELETE FROM wh_purge;");
  if (rc == SQLITE_OK)
    rc = run(s,
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

static int do_job(void *ctx, wh__job *j)
{
  sstore *s = ctx;
  switch (j->kind) {
  case WH__JOB_ENQUEUE: return do_enqueue(s, j);
  case WH__JOB_RECORD: return do_record(s, j);
  case WH__JOB_PUT_EP: return do_put_ep(s, j);
  case WH__JOB_DEL_EP: return do_del_ep(s, j);
  case WH__JOB_CLAIM: return do_claim(s, j);
  case WH__JOB_RELEASE:
    return run(s, "UPDATE wh_delivery SET claimed = 0 WHERE claimed = ?", "i", j->u.owner) == SQLITE_DONE
             ? WH_OK
             : job_fail(j, s->wdb, "releasing claimed deliveries");
  case WH__JOB_REQUEUE: return do_requeue(s, j);
  case WH__JOB_PURGE: return do_purge(s, j);
  default: return WH_OK; /* a flush only waits for what came before */
  }
}

/* ---- transactions, for the writer thread ------------------------------------------------ */

static int tx_begin(void *ctx, wh__job *batch, int durable)
{
  sstore *s = ctx;
  /* In WAL mode synchronous=FULL syncs the WAL at each commit, NORMAL only at
     checkpoints. A FULL commit syncs the whole WAL, so it also makes the NORMAL
     commits before it durable; when it would write nothing, a touch of wh_meta
     makes it write (and sync). */
  if (durable != s->full && exec(s->wdb, durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL") == SQLITE_OK)
    s->full = durable;
  if ((s->full || !durable) && exec(s->wdb, "BEGIN IMMEDIATE") == SQLITE_OK) {
    if (!durable)
      s->unsynced = 1;
    else if (s->unsynced && s->full && run(s, "UPDATE wh_meta SET value = value WHERE key = 'version'", NULL) == SQLITE_DONE)
      s->unsynced = 0;
    return WH_OK;
  }
  for (wh__job *j = batch; j; j = j->next)
    job_fail(j, s->wdb, "starting a transaction");
  return WH_ESTORE;
}

static int tx_commit(void *ctx, char *why, size_t len)
{
  sstore *s = ctx;
  if (exec(s->wdb, "COMMIT") == SQLITE_OK)
    return WH_OK;
  snprintf(why, len, "%s%s", sqlite3_errmsg(s->wdb), hint(sqlite3_extended_errcode(s->wdb)));
  return WH_ESTORE;
}

static void tx_rollback(void *ctx) { exec(((sstore *)ctx)->wdb, "ROLLBACK"); }
static void tx_savepoint(void *ctx) { run(ctx, "SAVEPOINT job", NULL); }
static void tx_rollback_to(void *ctx) { run(ctx, "ROLLBACK TO job", NULL); }
static void tx_release(void *ctx) { run(ctx, "RELEASE job", NULL); }

static void sqlite_idle(void *ctx);

static const wh__backend sqlite_backend = {
  .begin = tx_begin,
  .commit = tx_commit,
  .rollback = tx_rollback,
  .savepoint = tx_savepoint,
  .rollback_to_savepoint = tx_rollback_to,
  .release_savepoint = tx_release,
  .run = do_job,
  .idle = sqlite_idle,
};

/* ---- the store operations ------------------------------------------------------------ */

/* ---- checkpoints -------------------------------------------------------------------- */

static void *ckpt_main(void *arg)
{
  sstore *s = arg;
  pthread_mutex_lock(&s->cmu);
  for (;;) {
    while (s->ckpt_served == s->ckpt_asked && !s->ckpt_closing)
      pthread_cond_wait(&s->ccv, &s->cmu);
    if (s->ckpt_closing)
      break;
    unsigned asked = s->ckpt_asked;
    pthread_mutex_unlock(&s->cmu);
    /* PASSIVE: copies what no reader still needs, never waits for the writer. */
    sqlite3_wal_checkpoint_v2(s->cdb, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    pthread_mutex_lock(&s->cmu);
    s->ckpt_served = asked;
  }
  pthread_mutex_unlock(&s->cmu);
  return NULL;
}

/* After each commit of the writer's connection, with the WAL's size in pages.
   The WAL starts over from its beginning only when the writer begins while all
   of it has been copied; the checkpointer, working beside the writer, never
   quite catches up, so once it has copied all but a few frames the writer
   copies those (a small copy and one sync of the database file). */
/* After each commit of the writer's connection, with the WAL's size in pages.
   The checkpointer copies the WAL into the database beside the writer. The WAL
   starts over from its beginning only when the writer begins while all of it
   has been copied, which a checkpointer working beside a busy writer never
   quite sees: the writer copies the rest itself when it is quiet (sqlite_idle),
   or, under load without pause, once the WAL reaches CKPT_WRITER_PAGES. */
static int on_wal(void *ud, sqlite3 *db, const char *name, int pages)
{
  sstore *s = ud;
  s->wal_pages = pages;
  if (!s->ckpt_started || pages >= CKPT_WRITER_PAGES) {
    if (pages >= CKPT_PAGES)
      sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
  }
  if (pages < s->ckpt_at)
    s->ckpt_at = 0; /* the WAL started over */
  if (pages >= s->ckpt_at + CKPT_PAGES) {
    s->ckpt_at = pages;
    pthread_mutex_lock(&s->cmu);
    s->ckpt_asked++;
    pthread_cond_signal(&s->ccv);
    pthread_mutex_unlock(&s->cmu);
  }
  return SQLITE_OK;
}

static void sqlite_idle(void *ctx)
{
  sstore *s = ctx;
  if (s->wal_pages >= CKPT_PAGES) {
    sqlite3_wal_checkpoint_v2(s->wdb, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    s->wal_pages = 0;
  }
}

static void ckpt_stop(sstore *s)
{
  if (!s->ckpt_started)
    return;
  pthread_mutex_lock(&s->cmu);
  s->ckpt_closing = 1;
  pthread_cond_signal(&s->ccv);
  pthread_mutex_unlock(&s->cmu);
  pthread_join(s->ckpt, NULL);
  s->ckpt_started = 0;
}

static void s_close(wh__store *base)
{
  sstore *s = (sstore *)base;
  if (wh__store_forked(base))
    return; /* the threads are the parent's; closing the connections here could checkpoint its file */
  wh__qstore_destroy(&s->q);
  ckpt_stop(s);
  sqlite3_close(s->cdb);
  pthread_mutex_destroy(&s->cmu);
  pthread_cond_destroy(&s->ccv);
  for (int i = 0; i < s->ncache; i++) {
    sqlite3_finalize(s->cache[i].st);
    free(s->cache[i].sql);
  }
  sqlite3_close(s->rdb);
  sqlite3_close(s->wdb);
  pthread_mutex_destroy(&s->rmu);
  wh__file_unlock(s->lock_fd);
  free(s->path);
  free(s->label);
  free(s);
}

static int s_load_endpoints(wh__store *base, int (*add)(void *, const wh__endpoint_row *), void *ud)
{
  sstore *s = (sstore *)base;
  if (wh__store_forked(base))
    return wh__store_forked_fail(s->label);
  sqlite3_stmt *st;
  pthread_mutex_lock(&s->rmu);
  if (sqlite3_prepare_v2(s->rdb,
                         "SELECT id, name, url, description, enabled, disabled_reason, created_ms, filters,"
                         " headers, secrets, tenant_id, settings FROM wh_endpoint ORDER BY rowid",
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
      .tenant_id = (const char *)sqlite3_column_text(st, 10),
      .settings = (const char *)sqlite3_column_text(st, 11),
    };
    rc = add(ud, &row);
  }
  if (rc == WH_OK && step != SQLITE_DONE)
    rc = db_fail(s->rdb, s->path, "reading endpoints");
  sqlite3_finalize(st);
  pthread_mutex_unlock(&s->rmu);
  return rc;
}

static int s_message_json(wh__store *base, const char *msg_id, const wh__log_filter *f, char **json)
{
  sstore *s = (sstore *)base;
  if (wh__store_forked(base))
    return wh__store_forked_fail(s->label);
  wh__q_flush(base); /* the log shows every attempt reported so far */
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
  if (sqlite3_step(st) != SQLITE_ROW ||
      !wh__log_message_visible(f, sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2))) {
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
    if (!wh__log_delivery_visible(f, info.ep_id))
      continue;
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
  if (wh__store_forked(base))
    return wh__store_forked_fail(s->label);
  wh__q_flush(base);
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

static const wh__store_ops sqlite_ops = {
  .name = "sqlite",
  .durable = 1,
  .close = s_close,
  .load_endpoints = s_load_endpoints,
  .put_endpoint = wh__q_put_endpoint,
  .delete_endpoint = wh__q_delete_endpoint,
  .enqueue = wh__q_enqueue,
  .claim = wh__q_claim,
  .record = wh__q_record,
  .release = wh__q_release,
  .flush = wh__q_flush,
  .message_json = s_message_json,
  .failed_json = s_failed_json,
  .requeue = wh__q_requeue,
  .purge = wh__q_purge,
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

/* Bring the schema from version `have` (0: an empty file) to SCHEMA_VERSION,
   all or nothing. */
static int migrate(sstore *s, int have)
{
  sqlite3 *db = s->wdb;
  char mark[96];
  snprintf(mark, sizeof mark, "UPDATE wh_meta SET value = '%d' WHERE key = 'version'", SCHEMA_VERSION);
  int ok = exec(db, "BEGIN IMMEDIATE") == SQLITE_OK;
  if (ok && have == 0)
    ok = exec(db, schema_sql) == SQLITE_OK;
  for (int v = have > 1 ? have : 1; ok && v < SCHEMA_VERSION; v++)
    ok = exec(db, migrations[v - 1]) == SQLITE_OK;
  if (ok)
    ok = exec(db, mark) == SQLITE_OK && exec(db, "COMMIT") == SQLITE_OK;
  if (ok)
    return WH_OK;
  int rc = db_fail(db, s->path, have ? "upgrading the schema" : "creating the schema");
  exec(db, "ROLLBACK");
  return rc;
}

/* Create the schema in an empty file, or check that a non-empty one is ours. */
static int prepare_schema(sstore *s)
{
  sqlite3 *db = s->wdb;
  sqlite3_stmt *st;
  /* The first read tells a corrupt or foreign (non-SQLite) file apart. A file
     holding only a receiver's seen ids (wh_incoming_*, incoming/seen_sqlite.c)
     counts as empty: both may share one file, opened in either order. */
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE tbl_name NOT LIKE 'wh\\_incoming\\_%' ESCAPE '\\'",
                         -1, &st, NULL) != SQLITE_OK)
    return db_fail(db, s->path, "reading the schema");
  int step = sqlite3_step(st);
  int tables = step == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
  sqlite3_finalize(st);
  if (step != SQLITE_ROW)
    return db_fail(db, s->path, "reading the schema");
  if (exec(db, "PRAGMA journal_mode=WAL") != SQLITE_OK || exec(db, "PRAGMA synchronous=FULL") != SQLITE_OK)
    return db_fail(db, s->path, "switching to WAL mode");
  s->full = 1;
  if (tables == 0)
    return migrate(s, 0);
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
  if (version > SCHEMA_VERSION || version < 1)
    return wh__fail(WH_ESTORE, "store sqlite:%s: schema version %d, this library knows 1 to %d (a newer "
                               "libwebhook wrote it)", s->path, version, SCHEMA_VERSION);
  return version < SCHEMA_VERSION ? migrate(s, version) : WH_OK;
}

int wh__store_sqlite_open(const char *path, wh__store **out)
{
  sstore *s = calloc(1, sizeof *s);
  if (!s || !(s->path = wh__strdup(path)) || !(s->label = malloc(strlen(path) + 8))) {
    if (s)
      free(s->path);
    free(s);
    return wh__oom();
  }
  sprintf(s->label, "sqlite:%s", path);
  s->q.base.ops = &sqlite_ops;
  pthread_mutex_init(&s->rmu, NULL);
  pthread_mutex_init(&s->cmu, NULL);
  pthread_cond_init(&s->ccv, NULL);
  int alone = 0;
  int rc = wh__file_lock(path, &s->lock_fd, &alone);
  if (!rc)
    rc = open_conn(s, &s->wdb);
  if (!rc)
    rc = prepare_schema(s);
  if (!rc)
    rc = open_conn(s, &s->rdb);
  if (!rc)
    rc = open_conn(s, &s->cdb);
  /* A connection knows the file is in WAL mode once it has read it. */
  if (!rc && exec(s->cdb, "SELECT count(*) FROM wh_meta") != SQLITE_OK)
    rc = db_fail(s->cdb, path, "opening the checkpoint connection");
  if (!rc) {
    /* Checkpoints: ours (on_wal) instead of SQLite's inside the commit. Without
       the thread, the writer checkpoints as SQLite would. */
    s->ckpt_started = pthread_create(&s->ckpt, NULL, ckpt_main, s) == 0;
    sqlite3_wal_hook(s->wdb, on_wal, s);
  }
  /* Deliveries claimed by a process that died are free again: recovery; but
     only when no other store has the file open, whose claims are live. */
  if (!rc && alone && run(s, "UPDATE wh_delivery SET claimed = 0 WHERE claimed != 0", NULL) != SQLITE_DONE)
    rc = db_fail(s->wdb, path, "recovering claimed deliveries");
  if (!rc)
    rc = wh__qstore_init(&s->q, &sqlite_backend, s, s->label);
  if (rc) {
    s_close(&s->q.base);
    return rc;
  }
  *out = &s->q.base;
  return WH_OK;
}
