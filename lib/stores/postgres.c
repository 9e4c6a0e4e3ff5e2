/*
 * The PostgreSQL store: several application servers share one outbox.
 *
 * - Every process keeps its registry in memory and reloads it when another
 *   process changes an endpoint (NOTIFY webhook_endpoints).
 * - Deliveries are claimed with FOR UPDATE SKIP LOCKED and a lease; a process
 *   renews the leases of what it holds, so the work of one that died is taken
 *   over when its leases expire. NOTIFY webhook_work wakes idle processes.
 * - Emit commits the message and its deliveries in one transaction. The outbox
 *   table (and webhook.emit()) lets the host emit inside its own transaction.
 * - Writes run on the shared writer thread (writer.c); a lost connection
 *   is re-established before the next batch, with a short connect timeout, so
 *   emit fails fast (WH_ESTORE) while the database is away.
 * Times in the tables are unix milliseconds (bigint); leases use the
 * database's clock, so machines' clocks need not agree for them.
 */
#include "writer.h"
#include "log.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_S "3"
#define LISTEN_POLL_MS 1000
#define VERSION_POLL_MS 5000

/* Versioned migrations: each runs once, in order, under an advisory lock so
   that processes starting together do not race. Never edit one that shipped. */
static const char *const migrations[] = {
  /* 1 */
  "CREATE TABLE webhook.meta(key text PRIMARY KEY, value text NOT NULL);"
  "INSERT INTO webhook.meta VALUES ('schema', 'libwebhook'), ('endpoints_version', '0');"
  "CREATE FUNCTION webhook.now_ms() RETURNS bigint LANGUAGE sql VOLATILE AS"
  " $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;"
  "CREATE TABLE webhook.endpoint(seq bigserial, id text PRIMARY KEY, name text NOT NULL UNIQUE,"
  " url text NOT NULL, description text, enabled boolean NOT NULL, disabled_reason text,"
  " created_ms bigint NOT NULL, filters text NOT NULL, headers text NOT NULL, secrets text NOT NULL);"
  "CREATE TABLE webhook.message(id text PRIMARY KEY, event_type text NOT NULL, body bytea NOT NULL,"
  " created_ms bigint NOT NULL);"
  "CREATE TABLE webhook.delivery(id bigserial PRIMARY KEY, msg_id text NOT NULL, ep_id text NOT NULL,"
  " state smallint NOT NULL, attempt int NOT NULL, retries_used int NOT NULL, fast_retry_used int NOT NULL,"
  " due_ms bigint NOT NULL, claimed bigint NOT NULL, lease_until bigint NOT NULL DEFAULT 0,"
  " finished_ms bigint);"
  "CREATE INDEX delivery_due ON webhook.delivery(due_ms) WHERE state = 0;"
  "CREATE INDEX delivery_claimed ON webhook.delivery(claimed) WHERE state = 0 AND claimed <> 0;"
  "CREATE INDEX delivery_msg ON webhook.delivery(msg_id);"
  "CREATE INDEX delivery_failed ON webhook.delivery(ep_id, finished_ms) WHERE state = 2;"
  "CREATE TABLE webhook.attempt(delivery_id bigint NOT NULL, attempt int NOT NULL, at_ms bigint NOT NULL,"
  " duration_ms bigint NOT NULL, http_status int, error text, response bytea,"
  " PRIMARY KEY(delivery_id, attempt));"
  /* The outbox: the host inserts (or calls webhook.emit) inside its own
     transaction; a dispatcher turns committed rows into messages. */
  "CREATE TABLE webhook.outbox(id bigserial PRIMARY KEY, resource_type text NOT NULL,"
  " event_type text NOT NULL, resource json NOT NULL DEFAULT '{}', tenant_id text, user_id text,"
  " resource_id text, event_time timestamptz NOT NULL DEFAULT clock_timestamp());"
  "CREATE TABLE webhook.outbox_rejected(id bigint PRIMARY KEY, resource_type text, event_type text,"
  " resource text, tenant_id text, user_id text, resource_id text, event_time timestamptz, error text NOT NULL,"
  " rejected_at timestamptz NOT NULL DEFAULT clock_timestamp());"
  "CREATE FUNCTION webhook.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS"
  " $$ BEGIN PERFORM pg_notify('webhook_work', ''); RETURN NULL; END $$;"
  "CREATE TRIGGER outbox_notify AFTER INSERT ON webhook.outbox FOR EACH STATEMENT"
  " EXECUTE FUNCTION webhook.outbox_notify();"
  "CREATE FUNCTION webhook.emit(resource_type text, event_type text, resource json DEFAULT '{}',"
  " tenant_id text DEFAULT NULL, user_id text DEFAULT NULL, resource_id text DEFAULT NULL)"
  " RETURNS bigint LANGUAGE sql AS"
  " $$ INSERT INTO webhook.outbox(resource_type, event_type, resource, tenant_id, user_id, resource_id)"
  " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id $$;",
  /* 2 (1.1): endpoints belong to a tenant (NULL: the platform), names are unique
     within a tenant; test events. */
  "ALTER TABLE webhook.endpoint ADD COLUMN tenant_id text;"
  "ALTER TABLE webhook.endpoint DROP CONSTRAINT endpoint_name_key;"
  "CREATE UNIQUE INDEX endpoint_tenant_name ON webhook.endpoint((coalesce(tenant_id, '')), name);"
  "ALTER TABLE webhook.message ADD COLUMN flags smallint NOT NULL DEFAULT 0;",
  /* 3 (1.1): per-endpoint settings; deliveries of an ordered endpoint carry their
     resource_id as the key they are ordered by. */
  "ALTER TABLE webhook.endpoint ADD COLUMN settings text;"
  "ALTER TABLE webhook.delivery ADD COLUMN order_key text;"
  "CREATE INDEX delivery_order ON webhook.delivery(ep_id, order_key, id) WHERE state = 0 AND order_key IS NOT NULL;",
};

typedef struct {
  wh__qstore q; /* first: the store operations start here */
  char *conninfo, *label;
  PGconn *w; /* the writer thread's */
  PGconn *r; /* reads of the log and endpoints, under rmu */
  pthread_mutex_t rmu;
  /* the listener thread */
  pthread_t listener;
  int listening;
  atomic_int stop;
  atomic_uint_fast64_t ep_version;
  pthread_mutex_t cbmu;
  void (*work_fn)(void *);
  void *work_ud;
} pstore;

/* ---- connections ------------------------------------------------------------------- */

static void quiet(void *arg, const char *message) {}

static PGconn *connect_db(const char *conninfo)
{
  const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
  const char *vals[] = {conninfo, CONNECT_TIMEOUT_S, "libwebhook", NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  /* NOTICEs ("already exists, skipping") are not for the host's stderr. */
  if (c)
    PQsetNoticeProcessor(c, quiet, NULL);
  return c;
}

/* The first line of libpq's message, without its trailing newline. */
static const char *pg_msg(PGconn *c, char *buf, size_t len)
{
  snprintf(buf, len, "%s", c ? PQerrorMessage(c) : "no connection");
  buf[strcspn(buf, "\n")] = '\0';
  return buf;
}

/* Make sure *c is usable: reconnect once if it broke. */
static int ensure(pstore *s, PGconn **c, char *why, size_t len)
{
  if (*c && PQstatus(*c) == CONNECTION_OK)
    return 1;
  if (*c)
    PQreset(*c); /* keeps the notice processor */
  else
    *c = connect_db(s->conninfo);
  if (*c && PQstatus(*c) == CONNECTION_OK)
    return 1;
  pg_msg(*c, why, len);
  return 0;
}

/* Run a statement with text parameters (NULL is SQL NULL). */
static PGresult *q(PGconn *c, const char *sql, int n, const char *const *params)
{
  return PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
}

static int ok(PGresult *res) { return res && (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK); }

static int job_fail_pg(wh__job *j, PGconn *c, const char *what)
{
  char buf[200];
  return wh__job_fail(j, "%s: %s", what, pg_msg(c, buf, sizeof buf));
}

/* Execute and check; on failure the job carries the reason. */
static int exec_job(wh__job *j, PGconn *c, const char *what, const char *sql, int n, const char *const *p)
{
  PGresult *res = q(c, sql, n, p);
  int good = ok(res);
  if (!good)
    job_fail_pg(j, c, what);
  PQclear(res);
  return good ? WH_OK : WH_ESTORE;
}

static void i64(char *buf, int64_t v) { snprintf(buf, 24, "%lld", (long long)v); }

/* ---- the jobs ------------------------------------------------------------------------- */

static int enqueue_one(pstore *s, wh__job *j, const wh__enq *e)
{
  wh__msg *m = e->m;
  char created[24], owner[24], lease[24];
  i64(created, m->created_ms);
  i64(owner, j->u.enq.owner);
  i64(lease, s->q.base.lease_ms);
  /* The body as bytea in hex: exact bytes, whatever they are. */
  size_t hl = 2 + m->len * 2 + 1;
  char *hex = malloc(hl);
  if (!hex)
    return wh__job_fail(j, "out of memory");
  static const char digits[] = "0123456789abcdef";
  hex[0] = '\\';
  hex[1] = 'x';
  for (size_t i = 0; i < m->len; i++) {
    hex[2 + 2 * i] = digits[(unsigned char)m->body[i] >> 4];
    hex[3 + 2 * i] = digits[(unsigned char)m->body[i] & 15];
  }
  hex[hl - 1] = '\0';
  /* The endpoints as a text[] literal: ids are [A-Za-z0-9_], safe inside quotes. */
  size_t al = 3 + e->n * (WH_ID_MAX + 3);
  char *arr = malloc(al);
  if (!arr) {
    free(hex);
    return wh__job_fail(j, "out of memory");
  }
  size_t k = 0;
  arr[k++] = '{';
  for (size_t i = 0; i < e->n; i++)
    k += (size_t)snprintf(arr + k, al - k, "%s\"%s\"", i ? "," : "", e->ep_ids[i]);
  snprintf(arr + k, al - k, "}");
  /* Which of them are ordered, as a boolean[] literal, and the order key. */
  char *ord = malloc(3 + e->n * 2), *key = NULL;
  const char *kp;
  size_t kl;
  int has_key = e->ordered && wh__msg_order_key(m, &kp, &kl);
  if (!ord || (has_key && !(key = wh__strndup(kp, kl)))) {
    free(hex);
    free(arr);
    free(ord);
    return wh__job_fail(j, "out of memory");
  }
  k = 0;
  ord[k++] = '{';
  for (size_t i = 0; i < e->n; i++) {
    if (i)
      ord[k++] = ',';
    ord[k++] = has_key && e->ordered[i] ? 't' : 'f';
  }
  ord[k++] = '}';
  ord[k] = '\0';
  /* Message and deliveries in one round trip; ordered ones stay unclaimed. */
  char flags[8];
  snprintf(flags, sizeof flags, "%d", m->flags);
  const char *p[] = {m->id, m->type, hex, created, owner, lease, arr, flags, ord, key};
  PGresult *res = q(s->w,
                    "WITH m AS (INSERT INTO webhook.message(id, event_type, body, created_ms, flags)"
                    " VALUES ($1, $2, $3::bytea, $4, $8))"
                    " INSERT INTO webhook.delivery(msg_id, ep_id, state, attempt, retries_used, fast_retry_used,"
                    " due_ms, claimed, lease_until, order_key) SELECT $1, x.e, 0, 0, 0, 0, $4,"
                    " CASE WHEN x.o THEN 0 ELSE $5::bigint END,"
                    " CASE WHEN $5::bigint = 0 OR x.o THEN 0 ELSE webhook.now_ms() + $6::bigint END,"
                    " CASE WHEN x.o THEN $10 END"
                    " FROM unnest($7::text[], $9::boolean[]) AS x(e, o) RETURNING id, ep_id",
                    10, p);
  free(hex);
  free(arr);
  free(ord);
  free(key);
  int rc = WH_OK;
  if (!ok(res) || (size_t)PQntuples(res) != e->n) {
    rc = job_fail_pg(j, s->w, "saving the message");
  } else {
    for (int r = 0; r < PQntuples(res); r++)
      for (size_t i = 0; i < e->n; i++)
        if (strcmp(PQgetvalue(res, r, 1), e->ep_ids[i]) == 0)
          e->ids[i] = strtoll(PQgetvalue(res, r, 0), NULL, 10);
  }
  PQclear(res);
  return rc;
}

static int do_enqueue(pstore *s, wh__job *j)
{
  int rc = WH_OK;
  size_t deliveries = 0;
  int unclaimed = !j->u.enq.owner;
  for (size_t k = 0; k < j->u.enq.n && rc == WH_OK; k++) {
    rc = enqueue_one(s, j, &j->u.enq.msgs[k]);
    deliveries += j->u.enq.msgs[k].n;
    unclaimed |= j->u.enq.msgs[k].ordered != NULL;
  }
  /* Idle processes hear of new work when this commits. */
  if (rc == WH_OK && deliveries && unclaimed)
    rc = exec_job(j, s->w, "notifying", "SELECT pg_notify('webhook_work', '')", 0, NULL);
  return rc;
}

static int do_record(pstore *s, wh__job *j)
{
  const wh__dlv_state *st = &j->u.rec.st;
  int finished = j->u.rec.state != WH__DLV_PENDING;
  int64_t fin = finished ? (j->u.rec.has_attempt ? j->u.rec.a.at_ms + j->u.rec.a.duration_ms : wh__now_ms()) : 0;
  char state[24], attempt[24], retries[24], fast[24], due[24], owner[24], finbuf[24], id[24], lease[24];
  i64(state, j->u.rec.state);
  i64(attempt, st->attempt);
  i64(retries, st->retries_used);
  i64(fast, st->fast_retry_used);
  i64(due, st->due_ms);
  i64(owner, j->u.rec.owner);
  i64(finbuf, fin);
  i64(id, st->id);
  i64(lease, s->q.base.lease_ms);
  const char *p[] = {state, attempt, retries, fast, due, owner, finished ? finbuf : NULL, id, lease};
  static const char update[] =
    "UPDATE webhook.delivery SET state = $1, attempt = $2, retries_used = $3, fast_retry_used = $4,"
    " due_ms = $5, claimed = $6, finished_ms = $7,"
    " lease_until = CASE WHEN $6::bigint = 0 THEN 0 ELSE webhook.now_ms() + $9::bigint END WHERE id = $8";
  if (!j->u.rec.has_attempt)
    return exec_job(j, s->w, "recording a delivery's state", update, 9, p);
  /* The state and the attempt in one round trip. */
  const wh__attempt_rec *a = &j->u.rec.a;
  char an[24], at[24], dur[24], status[24];
  i64(an, a->attempt);
  i64(at, a->at_ms);
  i64(dur, a->duration_ms);
  i64(status, a->http_status);
  size_t elen = 0;
  unsigned char *esc = a->response_len ? PQescapeByteaConn(s->w, (const unsigned char *)a->response,
                                                           a->response_len, &elen)
                                       : NULL;
  const char *ap[] = {state, attempt, retries, fast, due, owner, finished ? finbuf : NULL, id, lease,
                      an, at, dur, a->http_status ? status : NULL, a->error, (const char *)esc};
  char sql[1024];
  snprintf(sql, sizeof sql,
           "WITH u AS (%s RETURNING id) INSERT INTO webhook.attempt(delivery_id, attempt, at_ms, duration_ms,"
           " http_status, error, response) SELECT id, $10, $11, $12, $13, $14, $15::bytea FROM u"
           " ON CONFLICT (delivery_id, attempt) DO UPDATE SET at_ms = EXCLUDED.at_ms,"
           " duration_ms = EXCLUDED.duration_ms, http_status = EXCLUDED.http_status, error = EXCLUDED.error,"
           " response = EXCLUDED.response",
           update);
  int rc = exec_job(j, s->w, "recording an attempt", sql, 15, ap);
  PQfreemem(esc);
  return rc;
}

/* Tell the other processes that endpoints changed (and leave a version for
   those that missed the notification). */
static int announce(pstore *s, wh__job *j)
{
  int rc = exec_job(j, s->w, "announcing the endpoint change",
                    "UPDATE webhook.meta SET value = (value::bigint + 1)::text WHERE key = 'endpoints_version'", 0,
                    NULL);
  return rc ? rc : exec_job(j, s->w, "announcing the endpoint change", "SELECT pg_notify('webhook_endpoints', '')", 0,
                            NULL);
}

static int do_put_ep(pstore *s, wh__job *j)
{
  const wh__endpoint *ep = j->u.ep;
  char *f = NULL, *h = NULL, *sec = NULL, *set = NULL, created[24];
  if (wh__endpoint_encode(ep, &f, &h, &sec, &set) != WH_OK)
    return wh__job_fail(j, "out of memory");
  i64(created, ep->created_ms);
  const char *p[] = {ep->id, ep->name, ep->url, ep->description, ep->enabled ? "t" : "f", ep->disabled_reason,
                     created, f, h, sec, ep->tenant, set};
  PGresult *res = q(s->w,
                    "INSERT INTO webhook.endpoint(id, name, url, description, enabled, disabled_reason, created_ms,"
                    " filters, headers, secrets, tenant_id, settings)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                    " ON CONFLICT (id) DO UPDATE SET name = $2, url = $3, description = $4, enabled = $5,"
                    " disabled_reason = $6, filters = $8, headers = $9, secrets = $10, settings = $12",
                    12, p);
  int rc = WH_OK;
  if (!ok(res)) {
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "23505") == 0) { /* unique_violation: the name, taken by another process */
      snprintf(j->err, sizeof j->err, "endpoint name \"%.64s\" is already registered", ep->name);
      j->rc = rc = WH_EEXIST;
    } else {
      rc = job_fail_pg(j, s->w, "saving the endpoint");
    }
  }
  PQclear(res);
  free(f);
  free(h);
  free(sec);
  free(set);
  return rc ? rc
            : announce(s, j);
}

static int do_del_ep(pstore *s, wh__job *j)
{
  const char *p[] = {j->u.ep_id};
  int rc = exec_job(j, s->w, "removing the endpoint", "DELETE FROM webhook.endpoint WHERE id = $1", 1, p);
  return rc ? rc
            : announce(s, j);
}

static wh__msg *msg_from_row(PGresult *res, int row, int c_id, int c_type, int c_body, int c_created)
{
  size_t blen = 0;
  unsigned char *body = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, c_body), &blen);
  if (!body)
    return NULL;
  wh__msg *m = wh__msg_new(PQgetvalue(res, row, c_id), PQgetvalue(res, row, c_type), (const char *)body, blen,
                           strtoll(PQgetvalue(res, row, c_created), NULL, 10));
  PQfreemem(body);
  return m;
}

static int do_claim(pstore *s, wh__job *j)
{
  char owner[24], horizon[24], max[24], lease[24];
  i64(owner, j->u.claim.owner);
  i64(horizon, j->u.claim.horizon == INT64_MAX ? INT64_MAX / 2 : j->u.claim.horizon);
  i64(max, (int64_t)j->u.claim.max);
  i64(lease, s->q.base.lease_ms);
  const char *p[] = {owner, horizon, max, lease};
  /* Due work that nobody holds, or whose holder's lease ran out (it died). */
  PGresult *res = q(s->w,
                    "WITH c AS (UPDATE webhook.delivery d SET claimed = $1, lease_until = webhook.now_ms() + $4"
                    " FROM (SELECT id FROM webhook.delivery f WHERE state = 0 AND due_ms <= $2"
                    " AND (claimed = 0 OR lease_until < webhook.now_ms())"
                    /* WH_EP_ORDERED: only when no other pending one of its chain (same
                       endpoint and key) is older, or claimed by a live process. */
                    " AND (f.order_key IS NULL OR NOT EXISTS (SELECT 1 FROM webhook.delivery e"
                    " WHERE e.ep_id = f.ep_id AND e.order_key = f.order_key AND e.state = 0 AND e.id <> f.id"
                    " AND (e.id < f.id OR (e.claimed <> 0 AND e.lease_until >= webhook.now_ms()))))"
                    " ORDER BY due_ms LIMIT $3 FOR UPDATE SKIP LOCKED) pick WHERE d.id = pick.id"
                    " RETURNING d.id, d.ep_id, d.attempt, d.retries_used, d.fast_retry_used, d.due_ms, d.msg_id,"
                    " d.order_key IS NOT NULL AS ordered)"
                    " SELECT c.id, c.ep_id, c.attempt, c.retries_used, c.fast_retry_used, c.due_ms, m.id,"
                    " m.event_type, m.body, m.created_ms, m.flags, c.ordered FROM c"
                    " JOIN webhook.message m ON m.id = c.msg_id"
                    " ORDER BY c.msg_id",
                    4, p);
  if (!ok(res)) {
    PQclear(res);
    return job_fail_pg(j, s->w, "claiming due deliveries");
  }
  int rows = PQntuples(res);
  j->u.claim.out = calloc(rows ? (size_t)rows : 1, sizeof *j->u.claim.out);
  if (!j->u.claim.out) {
    PQclear(res);
    return wh__job_fail(j, "out of memory");
  }
  wh__msg *prev = NULL;
  for (int r = 0; r < rows; r++) {
    wh__claimed *c = &j->u.claim.out[j->u.claim.n];
    c->st.id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
    snprintf(c->st.ep_id, sizeof c->st.ep_id, "%s", PQgetvalue(res, r, 1));
    c->st.attempt = atoi(PQgetvalue(res, r, 2));
    c->st.retries_used = atoi(PQgetvalue(res, r, 3));
    c->st.fast_retry_used = atoi(PQgetvalue(res, r, 4));
    c->st.due_ms = strtoll(PQgetvalue(res, r, 5), NULL, 10);
    c->st.ordered = PQgetvalue(res, r, 11)[0] == 't';
    if (prev && strcmp(prev->id, PQgetvalue(res, r, 6)) == 0) {
      wh__msg_ref(prev);
      c->m = prev;
    } else if (!(c->m = prev = msg_from_row(res, r, 6, 7, 8, 9))) {
      break;
    } else {
      c->m->flags = (uint8_t)atoi(PQgetvalue(res, r, 10));
    }
    j->u.claim.n++;
  }
  PQclear(res);
  return WH_OK;
}

/* Run a statement and add the number of rows it changed to *count. */
static int count_rows(wh__job *j, PGconn *c, const char *sql, int n, const char *const *p, size_t *count)
{
  PGresult *res = q(c, sql, n, p);
  int good = ok(res);
  if (good)
    *count += (size_t)atol(PQcmdTuples(res));
  else
    job_fail_pg(j, c, "requeueing deliveries");
  PQclear(res);
  return good ? WH_OK : WH_ESTORE;
}

/* Pending again, due now, unclaimed, for a new round of the schedule. */
#define RESET                                                                                                \
  "UPDATE webhook.delivery SET state = 0, claimed = 0, lease_until = 0, due_ms = $1, retries_used = 0,"       \
  " fast_retry_used = 0, finished_ms = NULL "

static int do_requeue(pstore *s, wh__job *j)
{
  char now[24], since[24];
  i64(now, wh__now_ms());
  i64(since, j->u.rq.since);
  PGresult *res;
  if (j->u.rq.msg_id) {
    const char *p1[] = {j->u.rq.msg_id};
    res = q(s->w, "SELECT 1 FROM webhook.message WHERE id = $1", 1, p1);
    int exists = ok(res) && PQntuples(res) == 1;
    PQclear(res);
    if (!exists) {
      snprintf(j->err, sizeof j->err, "message \"%.64s\": not in the store", j->u.rq.msg_id);
      return j->rc = WH_ENOTFOUND;
    }
    const char *p[] = {now, j->u.rq.msg_id, j->u.rq.ep_id};
    int rc = count_rows(j, s->w, RESET "WHERE msg_id = $2 AND ($3::text IS NULL OR ep_id = $3) AND state <> 0", 3, p,
                        &j->u.rq.count);
    /* No delivery yet for this endpoint (added later, or filtered out): make one. */
    if (!rc && j->u.rq.ep_id)
      rc = count_rows(j, s->w,
                      "INSERT INTO webhook.delivery(msg_id, ep_id, state, attempt, retries_used, fast_retry_used,"
                      " due_ms, claimed) SELECT $2, $3, 0, 0, 0, 0, $1, 0 WHERE NOT EXISTS"
                      " (SELECT 1 FROM webhook.delivery WHERE msg_id = $2 AND ep_id = $3)",
                      3, p, &j->u.rq.count);
    if (rc)
      return rc;
  } else {
    const char *p[] = {now, j->u.rq.ep_id, since};
    int rc = count_rows(j, s->w, RESET "WHERE ep_id = $2 AND state = 2 AND finished_ms >= $3", 3, p, &j->u.rq.count);
    if (rc)
      return rc;
  }
  return exec_job(j, s->w, "notifying", "SELECT pg_notify('webhook_work', '')", 0, NULL);
}

static int do_purge(pstore *s, wh__job *j)
{
  char before[24];
  i64(before, j->u.purge.before);
  const char *p[] = {before};
  PGresult *res = q(s->w,
                    "WITH gone AS (SELECT m.id FROM webhook.message m WHERE m.created_ms < $1 AND NOT EXISTS"
                    " (SELECT 1 FROM webhook.delivery d WHERE d.msg_id = m.id AND (d.state <> 1 OR d.finished_ms >= $1))),"
                    " a AS (DELETE FROM webhook.attempt WHERE delivery_id IN"
                    " (SELECT id FROM webhook.delivery WHERE msg_id IN (SELECT id FROM gone))),"
                    " d AS (DELETE FROM webhook.delivery WHERE msg_id IN (SELECT id FROM gone))"
                    " DELETE FROM webhook.message WHERE id IN (SELECT id FROM gone)",
                    1, p);
  int good = ok(res);
  j->u.purge.count = good ? (size_t)atol(PQcmdTuples(res)) : 0;
  PQclear(res);
  return good ? WH_OK : job_fail_pg(j, s->w, "purging delivered messages");
}

/* Outbox rows become messages in the same transaction that deletes them: an
   event is emitted exactly when the host's transaction committed, and once. */
static int do_outbox(pstore *s, wh__job *j)
{
  char max[24];
  i64(max, (int64_t)j->u.outbox.max);
  const char *p[] = {max};
  PGresult *res = q(s->w,
                    "SELECT id, resource_type, event_type, resource::text, tenant_id, user_id, resource_id,"
                    " (extract(epoch FROM event_time) * 1000000)::bigint FROM webhook.outbox ORDER BY id LIMIT $1"
                    " FOR UPDATE SKIP LOCKED",
                    1, p);
  if (!ok(res)) {
    PQclear(res);
    return job_fail_pg(j, s->w, "reading the outbox");
  }
  int rc = WH_OK;
  for (int r = 0; rc == WH_OK && r < PQntuples(res); r++) {
    wh__outbox_row row = {
      .resource_type = PQgetvalue(res, r, 1),
      .event_type = PQgetvalue(res, r, 2),
      .resource = PQgetvalue(res, r, 3),
      .tenant_id = PQgetisnull(res, r, 4) ? NULL : PQgetvalue(res, r, 4),
      .user_id = PQgetisnull(res, r, 5) ? NULL : PQgetvalue(res, r, 5),
      .resource_id = PQgetisnull(res, r, 6) ? NULL : PQgetvalue(res, r, 6),
      .event_time_us = strtoll(PQgetvalue(res, r, 7), NULL, 10),
    };
    const char *id = PQgetvalue(res, r, 0);
    wh__msg *m = NULL;
    char(*ep_ids)[WH_ID_MAX] = NULL;
    size_t n = 0;
    int brc = j->u.outbox.fn(j->u.outbox.ud, &row, &m, &ep_ids, &n);
    if (brc != WH_OK) {
      /* A row the host got wrong cannot become an event: set it aside, with why. */
      const char *rp[] = {id, wh_error_last()};
      rc = exec_job(j, s->w, "rejecting an outbox row",
                    "INSERT INTO webhook.outbox_rejected(id, resource_type, event_type, resource, tenant_id, user_id,"
                    " resource_id, event_time, error) SELECT id, resource_type, event_type, resource::text, tenant_id,"
                    " user_id, resource_id, event_time, $2 FROM webhook.outbox WHERE id = $1",
                    2, rp);
    } else {
      const char **ids = calloc(n ? n : 1, sizeof *ids);
      int64_t *dids = calloc(n ? n : 1, sizeof *dids);
      if (!ids || !dids) {
        rc = wh__job_fail(j, "out of memory");
      } else {
        for (size_t i = 0; i < n; i++)
          ids[i] = ep_ids[i];
        wh__enq e = {.m = m, .ep_ids = ids, .n = n, .ids = dids};
        wh__job sub = {.kind = WH__JOB_ENQUEUE};
        sub.u.enq.msgs = &e;
        sub.u.enq.n = 1;
        sub.u.enq.owner = 0;
        if ((rc = do_enqueue(s, &sub)))
          wh__job_fail(j, "%s", sub.err);
      }
      free(ids);
      free(dids);
    }
    wh__msg_unref(m);
    free(ep_ids);
    if (rc == WH_OK) {
      const char *dp[] = {id};
      rc = exec_job(j, s->w, "taking the row off the outbox", "DELETE FROM webhook.outbox WHERE id = $1", 1, dp);
      j->u.outbox.count++;
    }
  }
  PQclear(res);
  return rc;
}

static int do_job(void *ctx, wh__job *j)
{
  pstore *s = ctx;
  switch (j->kind) {
  case WH__JOB_ENQUEUE: return do_enqueue(s, j);
  case WH__JOB_RECORD: return do_record(s, j);
  case WH__JOB_PUT_EP: return do_put_ep(s, j);
  case WH__JOB_DEL_EP: return do_del_ep(s, j);
  case WH__JOB_CLAIM: return do_claim(s, j);
  case WH__JOB_RELEASE: {
    char owner[24];
    i64(owner, j->u.owner);
    const char *p[] = {owner};
    return exec_job(j, s->w, "releasing claimed deliveries",
                    "UPDATE webhook.delivery SET claimed = 0, lease_until = 0 WHERE claimed = $1 AND state = 0", 1, p);
  }
  case WH__JOB_REQUEUE: return do_requeue(s, j);
  case WH__JOB_PURGE: return do_purge(s, j);
  case WH__JOB_OUTBOX: return do_outbox(s, j);
  default: return WH_OK;
  }
}

/* ---- transactions --------------------------------------------------------------------- */

static int simple(PGconn *c, const char *sql)
{
  PGresult *res = PQexec(c, sql);
  int good = ok(res);
  PQclear(res);
  return good;
}

static int tx_begin(void *ctx, wh__job *batch, int durable)
{
  pstore *s = ctx;
  char why[200];
  /* Attempt records alone commit without waiting for the server's WAL flush
     (a server crash may lose the last of them: those deliveries are made
     again). The server flushes in order, so a later durable commit covers them. */
  if (ensure(s, &s->w, why, sizeof why) &&
      simple(s->w, durable ? "BEGIN" : "BEGIN; SET LOCAL synchronous_commit TO off"))
    return WH_OK;
  if (s->w && PQstatus(s->w) == CONNECTION_OK)
    pg_msg(s->w, why, sizeof why);
  for (wh__job *j = batch; j; j = j->next)
    wh__job_fail(j, "the database is unreachable: %s", why);
  return WH_ESTORE;
}

static int tx_commit(void *ctx, char *why, size_t len)
{
  pstore *s = ctx;
  PGresult *res = PQexec(s->w, "COMMIT");
  int good = res && PQresultStatus(res) == PGRES_COMMAND_OK;
  /* COMMIT of an aborted transaction "succeeds" as a ROLLBACK: that is a failure. */
  if (good && strcmp(PQcmdStatus(res), "COMMIT") != 0) {
    snprintf(why, len, "the transaction was rolled back");
    good = 0;
  } else if (!good) {
    pg_msg(s->w, why, len);
  }
  PQclear(res);
  return good ? WH_OK : WH_ESTORE;
}

static void tx_rollback(void *ctx) { simple(((pstore *)ctx)->w, "ROLLBACK"); }
static void tx_savepoint(void *ctx) { simple(((pstore *)ctx)->w, "SAVEPOINT job"); }
static void tx_rollback_to(void *ctx) { simple(((pstore *)ctx)->w, "ROLLBACK TO SAVEPOINT job"); }
static void tx_release(void *ctx) { simple(((pstore *)ctx)->w, "RELEASE SAVEPOINT job"); }

static const wh__backend pg_backend = {
  .begin = tx_begin,
  .commit = tx_commit,
  .rollback = tx_rollback,
  .savepoint = tx_savepoint,
  .rollback_to_savepoint = tx_rollback_to,
  .release_savepoint = tx_release,
  .run = do_job,
};

/* ---- reads ---------------------------------------------------------------------------- */

/* Run a read on the reader connection, reconnecting once if it broke. */
static PGresult *read_q(pstore *s, const char *sql, int n, const char *const *p, const char *what, int *rc)
{
  char why[200];
  PGresult *res = NULL;
  for (int attempt = 0; attempt < 2; attempt++) {
    if (!ensure(s, &s->r, why, sizeof why))
      break;
    res = q(s->r, sql, n, p);
    if (ok(res))
      return res;
    pg_msg(s->r, why, sizeof why);
    PQclear(res);
    res = NULL;
    if (PQstatus(s->r) == CONNECTION_OK)
      break; /* a real error, not a lost connection */
  }
  *rc = wh__fail(WH_ESTORE, "store %s: %s: %s", s->label, what, why);
  return NULL;
}

static int p_load_endpoints(wh__store *base, int (*add)(void *, const wh__endpoint_row *), void *ud)
{
  pstore *s = (pstore *)base;
  if (wh__store_forked(base))
    return wh__store_forked_fail(s->label); /* its connections are the parent's */
  int rc = WH_OK;
  pthread_mutex_lock(&s->rmu);
  PGresult *res = read_q(s,
                         "SELECT id, name, url, description, enabled, disabled_reason, created_ms, filters, headers,"
                         " secrets, tenant_id, settings FROM webhook.endpoint ORDER BY seq",
                         0, NULL, "reading endpoints", &rc);
  for (int r = 0; res && rc == WH_OK && r < PQntuples(res); r++) {
    wh__endpoint_row row = {
      .id = PQgetvalue(res, r, 0),
      .name = PQgetvalue(res, r, 1),
      .url = PQgetvalue(res, r, 2),
      .description = PQgetisnull(res, r, 3) ? NULL : PQgetvalue(res, r, 3),
      .enabled = PQgetvalue(res, r, 4)[0] == 't',
      .disabled_reason = PQgetisnull(res, r, 5) ? NULL : PQgetvalue(res, r, 5),
      .created_ms = strtoll(PQgetvalue(res, r, 6), NULL, 10),
      .filters = PQgetvalue(res, r, 7),
      .headers = PQgetvalue(res, r, 8),
      .secrets = PQgetvalue(res, r, 9),
      .tenant_id = PQgetisnull(res, r, 10) ? NULL : PQgetvalue(res, r, 10),
      .settings = PQgetisnull(res, r, 11) ? NULL : PQgetvalue(res, r, 11),
    };
    rc = add(ud, &row);
  }
  PQclear(res);
  pthread_mutex_unlock(&s->rmu);
  return rc;
}

static int p_message_json(wh__store *base, const char *msg_id, const wh__log_filter *f, char **json)
{
  pstore *s = (pstore *)base;
  if (wh__store_forked(base))
    return wh__store_forked_fail(s->label); /* its connections are the parent's */
  wh__q_flush(base);
  int rc = WH_OK;
  const char *p[] = {msg_id};
  pthread_mutex_lock(&s->rmu);
  cJSON *o = NULL;
  PGresult *m = read_q(s, "SELECT id, event_type, body, created_ms FROM webhook.message WHERE id = $1", 1, p,
                       "reading the log", &rc);
  PGresult *d = NULL, *a = NULL;
  wh__msg *msg = m && PQntuples(m) == 1 ? msg_from_row(m, 0, 0, 1, 2, 3) : NULL;
  if (m && !rc && (PQntuples(m) == 0 || (msg && !wh__log_message_visible(f, msg->body, msg->len))))
    rc = wh__fail(WH_ENOTFOUND, "message \"%.64s\": not in the store", msg_id);
  if (m && !rc) {
    o = msg ? wh__log_message_json(msg->id, msg->type, msg->created_ms, msg->body) : NULL;
    d = read_q(s,
               "SELECT id, ep_id, state, attempt, due_ms, coalesce(finished_ms, 0) FROM webhook.delivery"
               " WHERE msg_id = $1 ORDER BY id",
               1, p, "reading the log", &rc);
    a = d ? read_q(s,
                   "SELECT a.delivery_id, a.attempt, a.at_ms, a.duration_ms, coalesce(a.http_status, 0), a.error,"
                   " a.response FROM webhook.attempt a JOIN webhook.delivery d ON d.id = a.delivery_id"
                   " WHERE d.msg_id = $1 ORDER BY a.delivery_id, a.attempt",
                   1, p, "reading the log", &rc)
          : NULL;
  }
  wh__msg_unref(msg);
  cJSON *arr = o ? cJSON_GetObjectItem(o, "deliveries") : NULL;
  for (int r = 0; arr && a && r < PQntuples(d); r++) {
    wh__log_delivery info = {.id = strtoll(PQgetvalue(d, r, 0), NULL, 10), .ep_id = PQgetvalue(d, r, 1),
                             .state = atoi(PQgetvalue(d, r, 2)), .attempts = atoi(PQgetvalue(d, r, 3)),
                             .due_ms = strtoll(PQgetvalue(d, r, 4), NULL, 10),
                             .finished_ms = strtoll(PQgetvalue(d, r, 5), NULL, 10)};
    if (!wh__log_delivery_visible(f, info.ep_id))
      continue;
    cJSON *dj = wh__log_delivery_json(&info);
    cJSON *atts = dj ? cJSON_GetObjectItem(dj, "attempts") : NULL;
    for (int k = 0; atts && k < PQntuples(a); k++) {
      if (strtoll(PQgetvalue(a, k, 0), NULL, 10) != info.id)
        continue;
      size_t rl = 0;
      unsigned char *resp = PQgetisnull(a, k, 6) ? NULL
                                                 : PQunescapeBytea((const unsigned char *)PQgetvalue(a, k, 6), &rl);
      wh__attempt_rec rec = {.attempt = atoi(PQgetvalue(a, k, 1)), .at_ms = strtoll(PQgetvalue(a, k, 2), NULL, 10),
                             .duration_ms = strtoll(PQgetvalue(a, k, 3), NULL, 10),
                             .http_status = atoi(PQgetvalue(a, k, 4)),
                             .error = PQgetisnull(a, k, 5) ? NULL : PQgetvalue(a, k, 5),
                             .response = (const char *)resp, .response_len = resp ? rl : 0};
      cJSON_AddItemToArray(atts, wh__log_attempt_json(&rec));
      PQfreemem(resp);
    }
    cJSON_AddItemToArray(arr, dj);
  }
  PQclear(m);
  PQclear(d);
  PQclear(a);
  pthread_mutex_unlock(&s->rmu);
  if (rc) {
    cJSON_Delete(o);
    return rc;
  }
  return wh__log_print(o, json);
}

static int p_failed_json(wh__store *base, const char *ep_id, int64_t since_ms, size_t limit, char **json)
{
  pstore *s = (pstore *)base;
  if (wh__store_forked(base))
    return wh__store_forked_fail(s->label); /* its connections are the parent's */
  wh__q_flush(base);
  char since[24], lim[24];
  i64(since, since_ms);
  i64(lim, limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit);
  const char *p[] = {ep_id, since, lim};
  int rc = WH_OK;
  pthread_mutex_lock(&s->rmu);
  PGresult *res = read_q(s,
                         "SELECT d.msg_id, m.event_type, d.attempt, d.finished_ms, coalesce(a.http_status, 0), a.error"
                         " FROM webhook.delivery d JOIN webhook.message m ON m.id = d.msg_id"
                         " LEFT JOIN webhook.attempt a ON a.delivery_id = d.id AND a.attempt = d.attempt"
                         " WHERE d.ep_id = $1 AND d.state = 2 AND d.finished_ms >= $2 ORDER BY d.finished_ms, d.id"
                         " LIMIT $3",
                         3, p, "reading failed deliveries", &rc);
  cJSON *arr = res ? cJSON_CreateArray() : NULL;
  for (int r = 0; arr && r < PQntuples(res); r++)
    cJSON_AddItemToArray(arr, wh__log_failed_json(PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), ep_id,
                                                  atoi(PQgetvalue(res, r, 2)), strtoll(PQgetvalue(res, r, 3), NULL, 10),
                                                  atoi(PQgetvalue(res, r, 4)),
                                                  PQgetisnull(res, r, 5) ? NULL : PQgetvalue(res, r, 5)));
  PQclear(res);
  pthread_mutex_unlock(&s->rmu);
  if (rc)
    return rc;
  return wh__log_print(arr, json);
}

/* ---- the listener: LISTEN/NOTIFY, with polling behind it ----------------------------------- */

static void *listener_main(void *arg)
{
  pstore *s = arg;
  PGconn *c = NULL;
  int64_t next_poll = 0;
  char last_version[32] = "";
  while (!atomic_load(&s->stop)) {
    if (!c || PQstatus(c) != CONNECTION_OK) {
      if (c)
        PQfinish(c);
      c = connect_db(s->conninfo);
      if (PQstatus(c) != CONNECTION_OK || !simple(c, "LISTEN webhook_work; LISTEN webhook_endpoints")) {
        PQfinish(c);
        c = NULL;
        for (int i = 0; i < 10 && !atomic_load(&s->stop); i++) {
          struct timespec ts = {0, 100000000L};
          nanosleep(&ts, NULL);
        }
        continue;
      }
      /* We may have missed notifications while away: look again. */
      atomic_fetch_add(&s->ep_version, 1);
      next_poll = 0;
    }
    int work = 0;
    struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
    if (poll(&pfd, 1, LISTEN_POLL_MS) > 0 && !PQconsumeInput(c))
      continue; /* the connection broke: reconnect at the top */
    PGnotify *n;
    while ((n = PQnotifies(c))) {
      if (strcmp(n->relname, "webhook_endpoints") == 0)
        atomic_fetch_add(&s->ep_version, 1);
      else
        work = 1;
      PQfreemem(n);
    }
    /* Polling behind the notifications: the endpoints' version, now and then. */
    int64_t now = wh__now_ms();
    if (now >= next_poll) {
      next_poll = now + VERSION_POLL_MS;
      PGresult *res = PQexec(c, "SELECT value FROM webhook.meta WHERE key = 'endpoints_version'");
      if (ok(res) && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), last_version) != 0) {
        if (last_version[0])
          atomic_fetch_add(&s->ep_version, 1);
        snprintf(last_version, sizeof last_version, "%s", PQgetvalue(res, 0, 0));
      }
      PQclear(res);
    }
    if (work) {
      pthread_mutex_lock(&s->cbmu);
      if (s->work_fn)
        s->work_fn(s->work_ud);
      pthread_mutex_unlock(&s->cbmu);
    }
  }
  PQfinish(c);
  return NULL;
}

static void p_on_work(wh__store *base, void (*fn)(void *), void *ud)
{
  pstore *s = (pstore *)base;
  pthread_mutex_lock(&s->cbmu);
  s->work_fn = fn;
  s->work_ud = ud;
  pthread_mutex_unlock(&s->cbmu);
}

static uint64_t p_endpoints_version(wh__store *base) { return atomic_load(&((pstore *)base)->ep_version); }

/* ---- open and close ------------------------------------------------------------------------- */

static void p_close(wh__store *base)
{
  pstore *s = (pstore *)base;
  if (wh__store_forked(base))
    return; /* the threads are the parent's, and so are the connections: a goodbye here would end them there */
  if (s->listening) {
    atomic_store(&s->stop, 1);
    pthread_join(s->listener, NULL);
  }
  wh__qstore_destroy(&s->q);
  PQfinish(s->w);
  PQfinish(s->r);
  pthread_mutex_destroy(&s->rmu);
  pthread_mutex_destroy(&s->cbmu);
  free(s->conninfo);
  free(s->label);
  free(s);
}

/* Keep this process's claims alive, on the reading connection rather than
   through the writer: queued behind a batch of emits (or a writer waiting on a
   lock) a renewal could come after the lease ran out, and another process
   would then take over deliveries this one still holds. SKIP LOCKED: a row
   that the writer's open transaction is recording is not waited for (no lock
   cycle with it), and its record gives it a fresh lease anyway. */
static int p_renew(wh__store *base, int64_t owner)
{
  pstore *s = (pstore *)base;
  if (wh__store_forked(base))
    return wh__store_forked_fail(s->label); /* the connections are the parent's */
  char o[24], lease[24];
  i64(o, owner);
  i64(lease, s->q.base.lease_ms);
  const char *p[] = {o, lease};
  int rc = WH_OK;
  pthread_mutex_lock(&s->rmu);
  PGresult *res = read_q(s,
                         "UPDATE webhook.delivery SET lease_until = webhook.now_ms() + $2::bigint WHERE id IN"
                         " (SELECT id FROM webhook.delivery WHERE claimed = $1 AND state = 0 FOR UPDATE SKIP LOCKED)",
                         2, p, "renewing leases", &rc);
  PQclear(res);
  pthread_mutex_unlock(&s->rmu);
  return rc;
}

static const wh__store_ops pg_ops = {
  .name = "postgresql",
  .durable = 1,
  .close = p_close,
  .load_endpoints = p_load_endpoints,
  .put_endpoint = wh__q_put_endpoint,
  .delete_endpoint = wh__q_delete_endpoint,
  .enqueue = wh__q_enqueue,
  .claim = wh__q_claim,
  .record = wh__q_record,
  .release = wh__q_release,
  .flush = wh__q_flush,
  .message_json = p_message_json,
  .failed_json = p_failed_json,
  .requeue = wh__q_requeue,
  .purge = wh__q_purge,
  .renew = p_renew,
  .outbox = wh__q_outbox,
  .failures = wh__q_failures,
  .on_work = p_on_work,
  .endpoints_version = p_endpoints_version,
};

/* Create or migrate the schema, one process at a time. */
static int migrate(pstore *s)
{
  PGconn *c = s->w;
  char why[200];
  if (!simple(c, "BEGIN") || !simple(c, "SELECT pg_advisory_xact_lock(7316200504)") ||
      !simple(c, "CREATE SCHEMA IF NOT EXISTS webhook") ||
      !simple(c, "CREATE TABLE IF NOT EXISTS webhook.schema_version(version int NOT NULL)")) {
    int rc = wh__fail(WH_ESTORE, "store %s: preparing the schema: %s", s->label, pg_msg(c, why, sizeof why));
    simple(c, "ROLLBACK");
    return rc;
  }
  PGresult *res = PQexec(c, "SELECT coalesce(max(version), 0) FROM webhook.schema_version");
  int have = ok(res) && PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : -1;
  PQclear(res);
  int want = (int)WH__COUNT(migrations);
  if (have > want) {
    simple(c, "ROLLBACK");
    return wh__fail(WH_ESTORE, "store %s: the schema is at version %d, newer than this library's %d", s->label,
                    have, want);
  }
  for (int v = have; v >= 0 && v < want; v++) {
    char mark[64];
    snprintf(mark, sizeof mark, "INSERT INTO webhook.schema_version VALUES (%d)", v + 1);
    if (!simple(c, migrations[v]) || !simple(c, mark)) {
      int rc = wh__fail(WH_ESTORE, "store %s: migration %d: %s", s->label, v + 1, pg_msg(c, why, sizeof why));
      simple(c, "ROLLBACK");
      return rc;
    }
  }
  if (have < 0 || !simple(c, "COMMIT")) {
    int rc = wh__fail(WH_ESTORE, "store %s: preparing the schema: %s", s->label, pg_msg(c, why, sizeof why));
    simple(c, "ROLLBACK");
    return rc;
  }
  return WH_OK;
}

/* The conninfo without a password, for messages. */
static char *redact(const char *conninfo)
{
  char *out = wh__strdup(conninfo);
  char *at = out ? strchr(out, '@') : NULL;
  char *scheme = out ? strstr(out, "://") : NULL;
  if (at && scheme && scheme < at) {
    char *colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3));
    if (colon)
      memmove(colon, at, strlen(at) + 1);
  }
  return out;
}

int wh__store_pg_open(const char *conninfo, wh__store **out)
{
  pstore *s = calloc(1, sizeof *s);
  if (!s || !(s->conninfo = wh__strdup(conninfo)) || !(s->label = redact(conninfo))) {
    if (s) {
      free(s->conninfo);
      free(s);
    }
    return wh__oom();
  }
  s->q.base.ops = &pg_ops;
  s->q.base.lease_ms = 30000;
  pthread_mutex_init(&s->rmu, NULL);
  pthread_mutex_init(&s->cbmu, NULL);
  atomic_init(&s->stop, 0);
  atomic_init(&s->ep_version, 0);
  int rc = WH_OK;
  char why[200];
  s->w = connect_db(conninfo);
  if (PQstatus(s->w) != CONNECTION_OK)
    rc = wh__fail(WH_ESTORE, "store %s: cannot connect: %s", s->label, pg_msg(s->w, why, sizeof why));
  if (!rc)
    rc = migrate(s);
  if (!rc) {
    s->r = connect_db(conninfo);
    if (PQstatus(s->r) != CONNECTION_OK)
      rc = wh__fail(WH_ESTORE, "store %s: cannot connect: %s", s->label, pg_msg(s->r, why, sizeof why));
  }
  if (!rc)
    rc = wh__qstore_init(&s->q, &pg_backend, s, s->label);
  if (!rc) {
    if (pthread_create(&s->listener, NULL, listener_main, s) != 0)
      rc = wh__fail(WH_ENOMEM, "store %s: cannot start the listener thread", s->label);
    else
      s->listening = 1;
  }
  if (rc) {
    p_close(&s->q.base);
    return rc;
  }
  *out = &s->q.base;
  return WH_OK;
}
