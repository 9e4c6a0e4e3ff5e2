/*
 * Seen ids in a SQLite file: they survive a restart. The file may be the
 * same as a registry's sqlite: store (one file per application): the table
 * and its index are ours alone (wh_incoming_*), created if they do not exist,
 * and the registry counts a file that holds only them as empty
 * (stores/sqlite.c, prepare_schema). A file of another application is refused.
 *
 * One connection per receiver, under a mutex; WAL mode as the registry uses,
 * synchronous=NORMAL: a process crash loses nothing, a power cut may forget
 * the last ids (a redelivery might then be accepted once more).
 */
#include "incoming/incoming.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define BUSY_TIMEOUT_MS 5000

typedef struct {
  wh__seen base;
  pthread_mutex_t mu;
  sqlite3 *db;
  sqlite3_stmt *insert, *purge;
  int64_t next_purge;
  char *path;
} sqstore;

static int fail(sqstore *s, const char *what)
{
  return wh__fail(WH_ESTORE, "store sqlite:%s: %s: %s", s->path, what, s->db ? sqlite3_errmsg(s->db) : "no memory");
}

static int q_add(wh__seen *base, const char *key, int64_t now, int64_t keep)
{
  sqstore *s = (sqstore *)base;
  pthread_mutex_lock(&s->mu);
  /* Expired rows go now and then, a bounded number at a time. */
  if (now >= s->next_purge) {
    s->next_purge = now + 1;
    sqlite3_bind_int64(s->purge, 1, now);
    sqlite3_bind_int(s->purge, 2, WH__SEEN_PURGE_ROWS);
    sqlite3_step(s->purge); /* a failure here costs nothing but disk space */
    sqlite3_reset(s->purge);
  }
  /* Insert, or take over an expired row: one statement decides atomically. */
  sqlite3_bind_text(s->insert, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s->insert, 2, now + keep);
  sqlite3_bind_int64(s->insert, 3, now);
  int step = sqlite3_step(s->insert);
  int rc = step == SQLITE_DONE ? (sqlite3_changes(s->db) == 1 ? WH_OK : WH_EEXIST) : fail(s, "recording a seen id");
  sqlite3_reset(s->insert);
  sqlite3_clear_bindings(s->insert);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static void q_close(wh__seen *base)
{
  sqstore *s = (sqstore *)base;
  sqlite3_finalize(s->insert);
  sqlite3_finalize(s->purge);
  sqlite3_close(s->db);
  pthread_mutex_destroy(&s->mu);
  free(s->path);
  free(s);
}

static const wh__seen_ops sqlite_ops = {q_add, q_close};

/* An empty file, a registry's (wh_meta) or ours: anything else belongs to
   another application. */
static int check_owner(sqstore *s)
{
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT (SELECT count(*) FROM sqlite_master WHERE tbl_name NOT LIKE 'wh\\_incoming\\_%' "
                         "ESCAPE '\\'), (SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'wh_meta')",
                         -1, &st, NULL) != SQLITE_OK)
    return fail(s, "reading the schema");
  int rc = WH_OK;
  if (sqlite3_step(st) != SQLITE_ROW)
    rc = fail(s, "reading the schema");
  else if (sqlite3_column_int(st, 0) > 0 && sqlite3_column_int(st, 1) == 0)
    rc = wh__fail(WH_ESTORE, "store sqlite:%s: a SQLite database of another application; refusing to touch it",
                  s->path);
  sqlite3_finalize(st);
  return rc;
}

static int prepare(sqstore *s)
{
  int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK)
    return fail(s, "cannot open");
  sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  if (sqlite3_db_readonly(s->db, "main") == 1)
    return wh__fail(WH_ESTORE, "store sqlite:%s: the file is read-only; the receiver needs to write it", s->path);
  if ((rc = check_owner(s)) != WH_OK)
    return rc;
  if (sqlite3_exec(s->db,
                   "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                   "CREATE TABLE IF NOT EXISTS wh_incoming_seen(key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)"
                   " WITHOUT ROWID;"
                   "CREATE INDEX IF NOT EXISTS wh_incoming_seen_expires ON wh_incoming_seen(expires_at);",
                   NULL, NULL, NULL) != SQLITE_OK)
    return fail(s, "creating the table of seen ids");
  if (sqlite3_prepare_v2(s->db,
                         "INSERT INTO wh_incoming_seen(key, expires_at) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE"
                         " SET expires_at = excluded.expires_at WHERE wh_incoming_seen.expires_at <= ?3",
                         -1, &s->insert, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->db,
                         "DELETE FROM wh_incoming_seen WHERE key IN (SELECT key FROM wh_incoming_seen"
                         " WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)",
                         -1, &s->purge, NULL) != SQLITE_OK)
    return fail(s, "preparing statements");
  return WH_OK;
}

int wh__seen_sqlite_open(const char *path, wh__seen **out)
{
  sqstore *s = calloc(1, sizeof *s);
  if (!s || !(s->path = wh__strdup(path))) {
    free(s);
    return wh__oom();
  }
  s->base.ops = &sqlite_ops;
  pthread_mutex_init(&s->mu, NULL);
  int rc = prepare(s);
  if (rc) {
    q_close(&s->base);
    return rc;
  }
  *out = &s->base;
  return WH_OK;
}
