/*
 * Seen ids in PostgreSQL, shared by every process and server that receives the
 * same webhooks: INSERT ... ON CONFLICT decides atomically who saw an id first,
 * so of two servers checking the same request at once exactly one gets WH_OK.
 *
 * The table webhook.incoming_seen is this file's own, created if it does not
 * exist, not one of the registry's numbered migrations (stores/postgres.c): a
 * receiver does not need a registry. It is created under the registry's
 * advisory lock, as both create the schema "webhook" and concurrent
 * CREATE ... IF NOT EXISTS can collide.
 *
 * Times are the checking process's clock (unix seconds), as for the
 * timestamp tolerance itself; the 300 s margin of the keeping time absorbs
 * servers whose clocks differ a little.
 */
#include "incoming/incoming.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_S "3"
#define SCHEMA_LOCK "7316200504" /* the registry's: see migrate() in stores/postgres.c */

typedef struct {
  wh__seen base;
  pthread_mutex_t mu;
  PGconn *c;
  int64_t next_purge;
  char label[160];
} pgstore;

static void quiet(void *arg, const char *message) {}

static const char *text(const char *s) { return s ? s : ""; }

static int fail(pgstore *s, const char *what)
{
  char msg[200];
  snprintf(msg, sizeof msg, "%s", s->c ? PQerrorMessage(s->c) : "out of memory");
  msg[strcspn(msg, "\n")] = '\0';
  return wh__fail(WH_ESTORE, "store %s: %s: %s", s->label, what, msg);
}

/* Usable connection, or one attempt to re-establish it. No statement is ever
   retried: an INSERT whose answer was lost may have been committed. */
static int ensure(pgstore *s)
{
  if (PQstatus(s->c) == CONNECTION_OK)
    return WH_OK;
  PQreset(s->c);
  return PQstatus(s->c) == CONNECTION_OK ? WH_OK : fail(s, "cannot connect");
}

static int ok(PGresult *r)
{
  return r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
}

static void purge(pgstore *s, int64_t now)
{
  char at[24], rows[24];
  snprintf(at, sizeof at, "%lld", (long long)now);
  snprintf(rows, sizeof rows, "%d", WH__SEEN_PURGE_ROWS);
  const char *p[] = {at, rows};
  /* A failure costs nothing but space: the next purge tries again. */
  PQclear(PQexecParams(s->c,
                       "DELETE FROM webhook.incoming_seen WHERE key IN (SELECT key FROM webhook.incoming_seen"
                       " WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                       2, NULL, p, NULL, NULL, 0));
}

static int p_add(wh__seen *base, const char *key, int64_t now, int64_t keep)
{
  pgstore *s = (pgstore *)base;
  pthread_mutex_lock(&s->mu);
  int rc = ensure(s);
  if (!rc && now >= s->next_purge) {
    s->next_purge = now + 1;
    purge(s, now);
  }
  if (!rc) {
    char exp[24], at[24];
    snprintf(exp, sizeof exp, "%lld", (long long)(now + keep));
    snprintf(at, sizeof at, "%lld", (long long)now);
    const char *p[] = {key, exp, at};
    /* Inserted, or an expired row taken over: "1"; a live row: "0". */
    PGresult *r = PQexecParams(s->c,
                               "INSERT INTO webhook.incoming_seen(key, expires_at) VALUES ($1, $2)"
                               " ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at"
                               " WHERE webhook.incoming_seen.expires_at <= $3",
                               3, NULL, p, NULL, NULL, 0);
    rc = !ok(r) ? fail(s, "recording a seen id") : strcmp(PQcmdTuples(r), "1") == 0 ? WH_OK : WH_EEXIST;
    PQclear(r);
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static void p_close(wh__seen *base)
{
  pgstore *s = (pgstore *)base;
  PQfinish(s->c);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

static const wh__seen_ops pg_ops = {p_add, p_close};

static int create_table(pgstore *s)
{
  PGresult *r = PQexec(s->c, "BEGIN; SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ");"
                             "CREATE SCHEMA IF NOT EXISTS webhook;"
                             "CREATE TABLE IF NOT EXISTS webhook.incoming_seen(key text PRIMARY KEY,"
                             " expires_at bigint NOT NULL);"
                             "CREATE INDEX IF NOT EXISTS incoming_seen_expires ON webhook.incoming_seen(expires_at);"
                             "COMMIT");
  int good = ok(r);
  PQclear(r);
  if (good)
    return WH_OK;
  int rc = fail(s, "creating webhook.incoming_seen");
  PQclear(PQexec(s->c, "ROLLBACK"));
  return rc;
}

int wh__seen_pg_open(const char *conninfo, wh__seen **out)
{
  pgstore *s = calloc(1, sizeof *s);
  if (!s)
    return wh__oom();
  s->base.ops = &pg_ops;
  pthread_mutex_init(&s->mu, NULL);
  const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
  const char *vals[] = {conninfo, CONNECT_TIMEOUT_S, "libwebhook-receiver", NULL};
  s->c = PQconnectdbParams(keys, vals, 1);
  /* The label names the server without the password. */
  snprintf(s->label, sizeof s->label, "postgresql://%s@%s:%s/%s", text(PQuser(s->c)), text(PQhost(s->c)),
           text(PQport(s->c)), text(PQdb(s->c)));
  int rc = WH_OK;
  if (PQstatus(s->c) != CONNECTION_OK)
    rc = fail(s, "cannot connect");
  if (!rc) {
    /* NOTICEs ("already exists, skipping") are not for the host's stderr. */
    PQsetNoticeProcessor(s->c, quiet, NULL);
    rc = create_table(s);
  }
  if (rc) {
    p_close(&s->base);
    return rc;
  }
  *out = &s->base;
  return WH_OK;
}
