/* wh_receiver at a chosen clock (wh__receiver_check_at) and its seen stores
   directly: the senders' documented vectors, the tolerance edges, how long ids
   are kept per scheme, the memory store's cap, and the bounded purge of expired
   ids in memory, SQLite and PostgreSQL (WH_TEST_PG; that part is skipped
   without it). */
#include "incoming/incoming.h"

#include "support/check.h"
#include "support/insign.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

static int check_at(wh_receiver *rc, const in_req *r, char *id, int64_t now)
{
  return wh__receiver_check_at(rc, r->names, r->values, r->n, r->body, r->len, id, 256, now);
}

static void vectors(void)
{
  wh_receiver *rc;
  CHECK_OK(wh_receiver_new(&rc, NULL));
  CHECK_OK(wh_receiver_add_secret(rc, "standard", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
  CHECK_OK(wh_receiver_add_secret(rc, "slack", "8f742231b10e8888abcd99yyyzzz85a5"));
  char id[256];
  in_req r;
  /* The Standard Webhooks reference vector. */
  in_init(&r, "{\"test\": 2432232314}");
  in_add(&r, "webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek");
  in_add(&r, "webhook-timestamp", "1614265330");
  in_add(&r, "webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  CHECK_OK(check_at(rc, &r, id, 1614265330));
  CHECK_STR(id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
  /* Slack's documented example request. */
  in_init(&r, "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
              "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
              "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgc"
              "ZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c");
  in_add(&r, "X-Slack-Request-Timestamp", "1531420618");
  in_add(&r, "X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503");
  CHECK_OK(check_at(rc, &r, id, 1531420618 + 300));
  CHECK_STR(id, "1531420618.a2114d57b48eac39b9ad189dd8316235");
  CHECK_ERR(check_at(rc, &r, id, 1531420618 - 300), WH_EEXIST, NULL);
  CHECK_ERR(check_at(rc, &r, id, 1531420618 + 301), WH_ETIMESTAMP, "301 s behind now");
  CHECK_ERR(check_at(rc, &r, id, 1531420618 - 301), WH_ETIMESTAMP, "301 s ahead of now");
  wh_receiver_free(rc);
}

/* Ids are kept 900 s after the check for the timestamped schemes, a week for GitHub. */
static void keeping_times(void)
{
  wh_receiver *rc;
  CHECK_OK(wh_receiver_new(&rc, NULL));
  CHECK_OK(wh_receiver_add_secret(rc, "github", "It's a Secret to Everybody"));
  CHECK_OK(wh_receiver_add_secret(rc, "standard", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
  const int64_t t0 = 1700000000;
  char id[256];
  in_req g;
  in_init(&g, "Hello, World!");
  in_github(&g, "It's a Secret to Everybody", "guid-keep");
  CHECK_OK(check_at(rc, &g, id, t0));
  CHECK_ERR(check_at(rc, &g, id, t0 + 7 * 86400 - 1), WH_EEXIST, NULL);
  CHECK_OK(check_at(rc, &g, id, t0 + 7 * 86400)); /* forgotten after a week: new again */

  /* A request timestamped at the edge of the future is replayable until
     ts + 300 = now + 600: its id is still known then. */
  in_req r;
  in_init(&r, "{}");
  in_standard(&r, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_keep", t0 + 300);
  CHECK_OK(check_at(rc, &r, id, t0));
  CHECK_ERR(check_at(rc, &r, id, t0 + 600), WH_EEXIST, NULL);
  CHECK_ERR(check_at(rc, &r, id, t0 + 601), WH_ETIMESTAMP, NULL);
  wh_receiver_free(rc);

  /* The store itself: expired at now + keep, exactly. */
  wh__seen *s;
  CHECK_OK(wh__seen_memory_open(100, &s));
  CHECK_OK(s->ops->add(s, "k", t0, 900));
  CHECK_INT(s->ops->add(s, "k", t0 + 899, 900), WH_EEXIST);
  CHECK_OK(s->ops->add(s, "k", t0 + 900, 900));
  CHECK_INT(s->ops->add(s, "k", t0 + 1000, 900), WH_EEXIST);
  s->ops->close(s);
}

static void memory_cap_and_purge(void)
{
  wh__seen *s;
  CHECK_OK(wh__seen_memory_open(1000, &s));
  char key[32];
  for (int i = 0; i < 5000; i++) {
    snprintf(key, sizeof key, "standard:msg_%d", i);
    CHECK_OK(s->ops->add(s, key, 1000, 900));
  }
  size_t held, evicted;
  wh__seen_memory_stats(s, &held, &evicted);
  CHECK_INT(held, 1000);
  CHECK_INT(evicted, 4000);
  /* Oldest first: the first ids were forgotten, the last 1000 are known. */
  CHECK_OK(s->ops->add(s, "standard:msg_0", 1000, 900));
  CHECK_INT(s->ops->add(s, "standard:msg_4999", 1000, 900), WH_EEXIST);
  CHECK_INT(s->ops->add(s, "standard:msg_4001", 1000, 900), WH_EEXIST);
  /* Once expired, each add drops a bounded number of them. */
  CHECK_OK(s->ops->add(s, "late-1", 1900, 900));
  wh__seen_memory_stats(s, &held, &evicted);
  CHECK_INT(held, 1000 - 16 + 1);
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof key, "late-x-%d", i);
    CHECK_OK(s->ops->add(s, key, 1900, 900));
  }
  wh__seen_memory_stats(s, &held, &evicted);
  CHECK_INT(held, 101); /* every expired one gone, only the 101 new ones */
  /* Two keeping times: the short ones expire while the long ones stay. */
  CHECK_OK(s->ops->add(s, "github:a", 2000, 7 * 86400));
  CHECK_OK(s->ops->add(s, "standard:b", 2000, 900));
  for (int i = 0; i < 200; i++) {
    snprintf(key, sizeof key, "later-%d", i);
    CHECK_OK(s->ops->add(s, key, 5000, 900));
  }
  CHECK_INT(s->ops->add(s, "github:a", 5000, 7 * 86400), WH_EEXIST);
  CHECK_OK(s->ops->add(s, "standard:b", 5000, 900));
  s->ops->close(s);
}

static long long sqlite_rows(const char *path)
{
  sqlite3 *db;
  sqlite3_stmt *st;
  long long n = -1;
  sqlite3_open(path, &db);
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM wh_incoming_seen", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

/* Expired rows go at most WH__SEEN_PURGE_ROWS at a time, at most once a second. */
static void sqlite_purge(void)
{
  char path[128];
  snprintf(path, sizeof path, "/tmp/wh-test-incoming-internal-%d.db", (int)getpid());
  unlink(path);
  wh__seen *s;
  CHECK_OK(wh__seen_sqlite_open(path, &s));
  char key[32];
  for (int i = 0; i < 1200; i++) {
    snprintf(key, sizeof key, "k%d", i);
    CHECK_OK(s->ops->add(s, key, 1000, 10));
  }
  CHECK_INT(s->ops->add(s, "k5", 1009, 10), WH_EEXIST);
  CHECK_INT(sqlite_rows(path), 1200);
  CHECK_OK(s->ops->add(s, "k6", 1010, 10)); /* expired: taken over */
  /* The first add at 1010 purged 500 (k6 among them, or re-inserted). */
  long long rows = sqlite_rows(path);
  CHECK(rows >= 700 && rows <= 701);
  CHECK_OK(s->ops->add(s, "new-1", 1010, 10));
  CHECK_INT(sqlite_rows(path), rows + 1); /* same second: no second purge */
  CHECK_OK(s->ops->add(s, "new-2", 1011, 100));
  CHECK(sqlite_rows(path) <= rows + 2 - 200);
  s->ops->close(s);
  /* A restart keeps them. */
  CHECK_OK(wh__seen_sqlite_open(path, &s));
  CHECK_INT(s->ops->add(s, "new-2", 1050, 100), WH_EEXIST);
  s->ops->close(s);
  char side[200];
  unlink(path);
  snprintf(side, sizeof side, "%s-wal", path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", path);
  unlink(side);
}

static long long pg_rows(PGconn *c, const char *prefix)
{
  const char *p[] = {prefix};
  PGresult *r = PQexecParams(c, "SELECT count(*) FROM webhook.incoming_seen WHERE key LIKE $1 || '%'", 1, NULL, p,
                             NULL, NULL, 0);
  long long n = PQresultStatus(r) == PGRES_TUPLES_OK ? atoll(PQgetvalue(r, 0, 0)) : -1;
  PQclear(r);
  return n;
}

static void pg_purge(void)
{
  const char *uri = getenv("WH_TEST_PG");
  if (!uri || !*uri) {
    printf("test_incoming_internal: WH_TEST_PG not set, the PostgreSQL purge is not checked here\n");
    return;
  }
  PGconn *c = PQconnectdb(uri);
  PQclear(PQexec(c, "SET client_min_messages = warning"));
  PQclear(PQexec(c, "DROP TABLE IF EXISTS webhook.incoming_seen"));
  wh__seen *s;
  CHECK_OK(wh__seen_pg_open(uri, &s));
  char key[48];
  /* Far in the past, so that no other test's rows are old enough to be purged. */
  for (int i = 0; i < 700; i++) {
    snprintf(key, sizeof key, "purge-test:%d", i);
    CHECK_OK(s->ops->add(s, key, 1000, 10));
  }
  CHECK_INT(s->ops->add(s, "purge-test:3", 1005, 10), WH_EEXIST);
  CHECK_INT(pg_rows(c, "purge-test:"), 700);
  CHECK_OK(s->ops->add(s, "purge-test:3", 1010, 10));
  long long rows = pg_rows(c, "purge-test:");
  CHECK(rows >= 200 && rows <= 201);
  CHECK_OK(s->ops->add(s, "purge-test:new", 1010, 10));
  CHECK_INT(pg_rows(c, "purge-test:"), rows + 1);
  s->ops->close(s);
  PQfinish(c);
}

int main(void)
{
  vectors();
  keeping_times();
  memory_cap_and_purge();
  sqlite_purge();
  pg_purge();
  return check_done("test_incoming_internal");
}
