/* wh_receiver: incoming webhooks of the four schemes accepted, every kind of
   bad input refused with its code and message (and never recorded as seen),
   deduplication in memory, in a SQLite file across a restart and shared with a
   registry, in PostgreSQL across two processes, bounded memory under a flood,
   and concurrent checks from several threads.

     test_incoming                 everything but PostgreSQL
     test_incoming pg              PostgreSQL (WH_TEST_PG: the server's URI; exit 77 without)
     test_incoming pg-child URI RUN FD forwards|backwards
                                   (internal) one of the processes of the PostgreSQL test */
#include <webhook/webhook.h>

#include "support/check.h"
#include "support/harness.h"
#include "support/insign.h"

#include <pthread.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STD_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define STD_SECRET2 "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
#define GH_SECRET "It's a Secret to Everybody"
#define STRIPE_SECRET "whsec_test_5c0a9f1e2d3b4a6978"
#define STRIPE_OLD "whsec_test_old_7e6d5c4b3a29"
#define SLACK_SECRET "8f742231b10e8888abcd99yyyzzz85a5"
#define BODY "{\"resource\":{\"id\":\"eedc1ff9\"},\"event_type\":\"CREATE\"}"
#define STRIPE_BODY "{\"id\":\"evt_1NG8Du2eZvKYlo2CUI79vXWy\",\"object\":\"event\",\"type\":\"charge.succeeded\"}"

static int64_t now_s(void) { return (int64_t)time(NULL); }

static wh_receiver *receiver(const char *store)
{
  wh_receiver *rc = NULL;
  CHECK_OK(wh_receiver_new(&rc, store));
  if (!rc)
    exit(1);
  CHECK_OK(wh_receiver_add_secret(rc, "standard", STD_SECRET));
  CHECK_OK(wh_receiver_add_secret(rc, "github", GH_SECRET));
  CHECK_OK(wh_receiver_add_secret(rc, "stripe", STRIPE_SECRET));
  CHECK_OK(wh_receiver_add_secret(rc, "slack", SLACK_SECRET));
  return rc;
}

static void unique_id(char *out, size_t len, const char *prefix)
{
  static int n;
  snprintf(out, len, "%s_%lld_%d_%d", prefix, (long long)h_now_ms(), (int)getpid(), ++n);
}

/* ---- each scheme accepted once, then WH_EEXIST ----------------------------------------- */

static void accepted_then_duplicate(wh_receiver *rc, const in_req *r, const char *want_id)
{
  char id[256] = "";
  CHECK_OK(in_check(rc, r, id, sizeof id));
  CHECK_STR(id, want_id);
  memset(id, 0, sizeof id);
  CHECK_ERR(in_check(rc, r, id, sizeof id), WH_EEXIST, "seen before");
  CHECK_STR(id, want_id);
}

static void schemes_accepted(void)
{
  wh_receiver *rc = receiver(NULL);
  char mid[64], id[256];
  in_req r;

  unique_id(mid, sizeof mid, "msg");
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, mid, now_s());
  accepted_then_duplicate(rc, &r, mid);

  /* Svix's header names, and names in any case. */
  unique_id(mid, sizeof mid, "msg");
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, mid, now_s());
  r.names[0] = "svix-id";
  r.names[1] = "Svix-Timestamp";
  r.names[2] = "SVIX-SIGNATURE";
  accepted_then_duplicate(rc, &r, mid);
  /* The same request under the webhook-* names is the same request. */
  r.names[0] = "Webhook-Id";
  r.names[1] = "webhook-timestamp";
  r.names[2] = "webhook-signature";
  CHECK_ERR(in_check(rc, &r, id, sizeof id), WH_EEXIST, NULL);
  /* Both families at once, agreeing: fine (and still a duplicate). */
  in_add(&r, "svix-id", mid);
  CHECK_ERR(in_check(rc, &r, id, sizeof id), WH_EEXIST, NULL);

  /* GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!". */
  in_init(&r, "Hello, World!");
  in_add(&r, "X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
  char guid[64];
  unique_id(guid, sizeof guid, "72d3162e-cc78-11e3-81ab");
  in_add(&r, "X-GitHub-Delivery", guid);
  in_add(&r, "X-GitHub-Event", "push");
  accepted_then_duplicate(rc, &r, guid);

  /* Stripe: the event id of the body identifies the request. */
  in_init(&r, STRIPE_BODY);
  const char *secs[] = {STRIPE_SECRET};
  in_stripe(&r, secs, 1, now_s());
  accepted_then_duplicate(rc, &r, "evt_1NG8Du2eZvKYlo2CUI79vXWy");
  /* Stripe retrying the event: new t, new signature, same event: a duplicate. */
  in_init(&r, STRIPE_BODY);
  in_stripe(&r, secs, 1, now_s() - 60);
  CHECK_ERR(in_check(rc, &r, id, sizeof id), WH_EEXIST, "evt_1NG8Du2eZvKYlo2CUI79vXWy");
  /* During a rotation Stripe signs with both secrets: either one is enough. */
  in_init(&r, "{\"id\":\"evt_rotation\",\"object\":\"event\"}");
  const char *both[] = {STRIPE_OLD, STRIPE_SECRET};
  in_stripe(&r, both, 2, now_s());
  accepted_then_duplicate(rc, &r, "evt_rotation");
  /* A body without an event id: the id is derived from t and the signature. */
  in_init(&r, "{\"object\":\"event\"}");
  int64_t t = now_s();
  in_stripe(&r, secs, 1, t);
  char want[128];
  snprintf(want, sizeof want, "%lld.%.32s", (long long)t, strstr(r.values[0], "v1=") + 3);
  accepted_then_duplicate(rc, &r, want);

  /* Slack: "<timestamp>.<first 32 hex digits of the signature>". */
  in_init(&r, "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&command=%2Fwebhook-collect&text=");
  t = now_s();
  in_slack(&r, SLACK_SECRET, t);
  snprintf(want, sizeof want, "%lld.%.32s", (long long)t, in_get(&r, "X-Slack-Signature") + 3);
  accepted_then_duplicate(rc, &r, want);

  /* An empty body is a body like any other. */
  unique_id(mid, sizeof mid, "msg");
  in_init(&r, NULL);
  in_standard(&r, STD_SECRET, mid, now_s());
  accepted_then_duplicate(rc, &r, mid);
  /* id_out may be NULL. */
  unique_id(mid, sizeof mid, "msg");
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, mid, now_s());
  CHECK_OK(in_check(rc, &r, NULL, 0));
  CHECK_ERR(in_check(rc, &r, NULL, 0), WH_EEXIST, NULL);
  wh_receiver_free(rc);
}

/* ---- refused: each kind of bad input, with its code and message ------------------------ */

/* A refused request is never recorded: the same id signed correctly is still new. */
static void refused(wh_receiver *rc, const in_req *r, int code, const char *needle)
{
  char id[256] = "unchanged";
  CHECK_ERR(in_check(rc, r, id, sizeof id), code, needle);
  CHECK_STR(id, "unchanged");
}

static void missing_and_malformed(void)
{
  wh_receiver *rc = receiver(NULL);
  char mid[64];
  in_req r, ok;
  unique_id(mid, sizeof mid, "msg");
  int64_t now = now_s();

  in_init(&ok, BODY);
  in_standard(&ok, STD_SECRET, mid, now);
  /* Each of the three headers left out. */
  for (int drop = 0; drop < 3; drop++) {
    in_init(&r, BODY);
    for (int i = 0; i < 3; i++)
      if (i != drop)
        in_add(&r, ok.names[i], ok.values[i]);
    refused(rc, &r, WH_EINVAL, drop == 0 ? "webhook-id" : drop == 1 ? "webhook-timestamp" : "no webhook-signature");
  }
  /* No header at all, and nothing but unrelated ones. */
  in_init(&r, BODY);
  refused(rc, &r, WH_EINVAL, "headers: no webhook-signature (scheme standard) or X-Hub-Signature-256");
  in_add(&r, "content-type", "application/json");
  refused(rc, &r, WH_EINVAL, "no webhook-signature");

  in_init(&r, BODY);
  in_github(&r, GH_SECRET, "guid-1");
  r.n = 1; /* no X-GitHub-Delivery */
  refused(rc, &r, WH_EINVAL, "X-GitHub-Delivery");
  in_init(&r, BODY);
  in_slack(&r, SLACK_SECRET, now);
  r.names[0] = "X-Other";
  refused(rc, &r, WH_EINVAL, "X-Slack-Request-Timestamp");
  in_init(&r, STRIPE_BODY);
  char hex[65];
  in_stripe_v1(STRIPE_SECRET, now, STRIPE_BODY, strlen(STRIPE_BODY), hex);
  char sh[128];
  snprintf(sh, sizeof sh, "v1=%s", hex);
  in_add(&r, "Stripe-Signature", sh);
  refused(rc, &r, WH_EINVAL, "no t= timestamp");
  snprintf(sh, sizeof sh, "t=%lld,t=%lld,v1=%s", (long long)now, (long long)now, hex);
  r.values[0] = sh;
  refused(rc, &r, WH_EINVAL, "t= appears more than once");

  /* Duplicated headers with different values: refused, never resolved by picking one. */
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, mid, now);
  in_add(&r, "Webhook-Id", "msg_other");
  refused(rc, &r, WH_EINVAL, "webhook-id: sent twice, with different values");
  in_init(&r, BODY);
  in_add(&r, "webhook-signature", "v1,AAAA");
  in_standard(&r, STD_SECRET, mid, now);
  refused(rc, &r, WH_EINVAL, "webhook-signature: sent twice");
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, mid, now);
  in_add(&r, "svix-id", "msg_someone_else");
  refused(rc, &r, WH_EINVAL, "webhook-id and svix-id: both sent, with different values");
  in_init(&r, "{}");
  in_github(&r, GH_SECRET, "guid-dup");
  in_add(&r, "x-github-delivery", "guid-dup-2");
  refused(rc, &r, WH_EINVAL, "X-GitHub-Delivery: sent twice");
  in_init(&r, "x");
  in_slack(&r, SLACK_SECRET, now);
  in_add(&r, "x-slack-request-timestamp", "1");
  refused(rc, &r, WH_EINVAL, "X-Slack-Request-Timestamp: sent twice");
  /* The same value twice is one value. */
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, mid, now);
  in_add(&r, "webhook-id", mid);
  char id[256];
  CHECK_OK(in_check(rc, &r, id, sizeof id));
  CHECK_STR(id, mid);

  /* Huge values, non-ASCII, control characters, too many headers. */
  static char huge[100001];
  memset(huge, 'A', sizeof huge - 1);
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, "msg_huge", now);
  r.values[2] = huge;
  refused(rc, &r, WH_EINVAL, "webhook-signature: longer than 4096 bytes");
  huge[300] = '\0';
  r.values[2] = ok.values[2];
  r.values[0] = huge;
  refused(rc, &r, WH_EINVAL, "webhook-id: longer than 255 bytes");
  huge[300] = 'A';
  r.values[0] = "msg_\xc3\xa9t\xc3\xa9";
  refused(rc, &r, WH_EINVAL, "webhook-id: byte 0xc3 at offset 4");
  r.values[0] = "msg 1";
  refused(rc, &r, WH_EINVAL, "without spaces");
  r.values[0] = "";
  refused(rc, &r, WH_EINVAL, "webhook-id: empty");
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, "msg_ctl", now);
  strcat(r.store[1], "\r\n");
  refused(rc, &r, WH_EINVAL, "webhook-signature: byte 0x0d");
  in_init(&r, BODY);
  in_github(&r, GH_SECRET, "guid-huge");
  r.values[0] = huge;
  refused(rc, &r, WH_EINVAL, "X-Hub-Signature-256: longer than 128 bytes");
  in_init(&r, BODY);
  in_slack(&r, SLACK_SECRET, now);
  r.values[0] = huge;
  refused(rc, &r, WH_EINVAL, "X-Slack-Request-Timestamp: longer than 32 bytes");
  in_init(&r, BODY);
  for (int i = 0; i < 257; i++)
    in_add(&r, "x-filler", "1");
  in_standard(&r, STD_SECRET, "msg_many", now);
  refused(rc, &r, WH_EINVAL, "more than 256");
  /* Unrelated headers are not looked at: huge, binary, repeated. */
  in_init(&r, BODY);
  unique_id(mid, sizeof mid, "msg");
  in_add(&r, "x-huge", huge);
  in_add(&r, "x-binary", "\xff\xfe\x01");
  in_add(&r, "x-binary", "other");
  in_standard(&r, STD_SECRET, mid, now);
  CHECK_OK(in_check(rc, &r, id, sizeof id));

  /* NULLs and an empty receiver. */
  CHECK_ERR(wh_receiver_check(NULL, ok.names, ok.values, 3, BODY, 3, NULL, 0), WH_EINVAL, "receiver");
  CHECK_ERR(wh_receiver_check(rc, NULL, NULL, 3, BODY, 3, NULL, 0), WH_EINVAL, "NULL arrays");
  CHECK_ERR(wh_receiver_check(rc, ok.names, ok.values, 3, NULL, 3, NULL, 0), WH_EINVAL, "body");
  const char *nn[] = {"webhook-id", NULL};
  const char *nv[] = {"x", "y"};
  CHECK_ERR(wh_receiver_check(rc, nn, nv, 2, BODY, 3, NULL, 0), WH_EINVAL, "header 1: NULL");
  wh_receiver *empty;
  CHECK_OK(wh_receiver_new(&empty, "memory:"));
  CHECK_ERR(in_check(empty, &ok, NULL, 0), WH_ESTATE, "no secret added");
  wh_receiver_free(empty);

  /* A buffer too small for the id: nothing recorded. */
  unique_id(mid, sizeof mid, "msg");
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, mid, now);
  CHECK_ERR(in_check(rc, &r, id, 4), WH_ERANGE, "id buffer");
  CHECK_OK(in_check(rc, &r, id, strlen(mid) + 1));
  wh_receiver_free(rc);
}

static void timestamps(void)
{
  wh_receiver *rc = receiver(NULL);
  int64_t now = now_s();
  /* The library reads its clock after the test does (whole seconds, so up to
     1 s later): -301 is always more than 300 s behind; ahead, 302 leaves a
     second for that, with `now` read again just before each case. */
  const int64_t deltas[] = {-301, 302, -86400, 86400 * 365, -now, 5000000000LL};
  const char *texts[] = {"abc", "12a", "", " 1", "+1700000000", "1e9", "0x10", "9999999999999999999999"};
  const char *secs[] = {STRIPE_SECRET};
  char mid[64];
  in_req r;
  for (size_t i = 0; i < sizeof deltas / sizeof deltas[0]; i++) {
    now = now_s(); /* (the -now case stays near 0, behind by decades) */
    unique_id(mid, sizeof mid, "msg");
    in_init(&r, BODY);
    in_standard(&r, STD_SECRET, mid, now + deltas[i]);
    refused(rc, &r, WH_ETIMESTAMP, deltas[i] > 0 ? "ahead of now" : "behind now");
    in_init(&r, STRIPE_BODY);
    in_stripe(&r, secs, 1, now + deltas[i]);
    refused(rc, &r, WH_ETIMESTAMP, "Stripe-Signature t");
    in_init(&r, "payload=1");
    in_slack(&r, SLACK_SECRET, now + deltas[i]);
    refused(rc, &r, WH_ETIMESTAMP, "X-Slack-Request-Timestamp");
  }
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    in_init(&r, BODY);
    in_standard(&r, STD_SECRET, "msg_ts", now);
    r.values[1] = texts[i];
    refused(rc, &r, WH_ETIMESTAMP, "not a whole number of seconds");
    in_init(&r, "payload=1");
    in_slack(&r, SLACK_SECRET, now);
    r.values[0] = texts[i];
    refused(rc, &r, WH_ETIMESTAMP, "not a whole number");
  }
  in_init(&r, STRIPE_BODY);
  in_add(&r, "Stripe-Signature", "t=soon,v1=00");
  refused(rc, &r, WH_ETIMESTAMP, "not a whole number");
  /* Within the tolerance, either way. */
  unique_id(mid, sizeof mid, "msg");
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, mid, now - 250);
  CHECK_OK(in_check(rc, &r, NULL, 0));
  unique_id(mid, sizeof mid, "msg");
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, mid, now + 250);
  CHECK_OK(in_check(rc, &r, NULL, 0));
  wh_receiver_free(rc);
}

static void signatures(void)
{
  wh_receiver *rc = receiver(NULL);
  int64_t now = now_s();
  char mid[64], id[256];
  in_req r;
  const char *secs[] = {STRIPE_SECRET};
  const char *other = "{\"resource\":{\"id\":\"eedc1ff9\"},\"event_type\":\"DELETE\"}";

  /* A signature for another body. */
  unique_id(mid, sizeof mid, "msg");
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, mid, now);
  r.body = other;
  refused(rc, &r, WH_ESIGNATURE, "webhook-signature: no v1 entry matches");
  r.body = BODY;
  CHECK_OK(in_check(rc, &r, id, sizeof id)); /* the refusal recorded nothing */
  in_init(&r, BODY);
  in_github(&r, GH_SECRET, "guid-other-body");
  r.body = other;
  refused(rc, &r, WH_ESIGNATURE, "X-Hub-Signature-256");
  in_init(&r, STRIPE_BODY);
  in_stripe(&r, secs, 1, now);
  r.body = "{\"id\":\"evt_forged\"}";
  r.len = strlen(r.body);
  refused(rc, &r, WH_ESIGNATURE, "no v1= entry matches");
  in_init(&r, "a=1");
  in_slack(&r, SLACK_SECRET, now);
  r.body = "a=2";
  refused(rc, &r, WH_ESIGNATURE, "X-Slack-Signature");
  /* Another id or timestamp than the one signed. */
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, "msg_signed", now);
  r.values[0] = "msg_replaced";
  refused(rc, &r, WH_ESIGNATURE, NULL);
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, "msg_ts_changed", now);
  snprintf(r.store[0], 32, "%lld", (long long)now - 1);
  refused(rc, &r, WH_ESIGNATURE, NULL);
  in_init(&r, "a=1");
  in_slack(&r, SLACK_SECRET, now);
  snprintf(r.store[0], 32, "%lld", (long long)now + 1);
  refused(rc, &r, WH_ESIGNATURE, NULL);

  /* Rotation: the old secret signs; the receiver has only the new one, then both. */
  wh_receiver *rot;
  CHECK_OK(wh_receiver_new(&rot, NULL));
  CHECK_OK(wh_receiver_add_secret(rot, "standard", STD_SECRET2));
  CHECK_OK(wh_receiver_add_secret(rot, "stripe", STRIPE_SECRET));
  unique_id(mid, sizeof mid, "msg");
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, mid, now);
  refused(rot, &r, WH_ESIGNATURE, NULL);
  in_req s;
  in_init(&s, STRIPE_BODY);
  const char *old[] = {STRIPE_OLD};
  in_stripe(&s, old, 1, now);
  refused(rot, &s, WH_ESIGNATURE, NULL);
  CHECK_OK(wh_receiver_add_secret(rot, "standard", STD_SECRET));
  CHECK_OK(wh_receiver_add_secret(rot, "stripe", STRIPE_OLD));
  CHECK_OK(in_check(rot, &r, id, sizeof id));
  CHECK_OK(in_check(rot, &s, id, sizeof id));
  /* A rotating sender signs with both: fine for a receiver holding either. */
  unique_id(mid, sizeof mid, "msg");
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET2, mid, now);
  char both[512];
  char sig1[128];
  wh_sign(STD_SECRET, mid, now, BODY, strlen(BODY), sig1, sizeof sig1);
  snprintf(both, sizeof both, "%s %s", sig1, r.values[2]);
  r.values[2] = both;
  CHECK_OK(in_check(rc, &r, id, sizeof id));
  wh_receiver_free(rot);

  /* Valid signatures of another scheme. GitHub headers at a standard-only receiver: */
  wh_receiver *std;
  CHECK_OK(wh_receiver_new(&std, NULL));
  CHECK_OK(wh_receiver_add_secret(std, "standard", STD_SECRET));
  in_init(&r, BODY);
  in_github(&r, GH_SECRET, "guid-cross");
  refused(std, &r, WH_EINVAL, "the request carries X-Hub-Signature-256 (scheme github), for which no secret");
  wh_receiver_free(std);
  /* The GitHub HMAC (of the body alone) presented as Slack's or Stripe's: */
  wh_receiver *same;
  CHECK_OK(wh_receiver_new(&same, NULL));
  CHECK_OK(wh_receiver_add_secret(same, "slack", GH_SECRET));
  CHECK_ERR(wh_receiver_add_secret(same, "stripe", GH_SECRET), WH_EINVAL, "already added for scheme slack");
  CHECK_OK(wh_receiver_add_secret(same, "slack", GH_SECRET)); /* again for the same scheme: a no-op */
  in_init(&r, BODY);
  in_github(&r, GH_SECRET, "guid-as-slack");
  char ts[32];
  snprintf(ts, sizeof ts, "%lld", (long long)now);
  in_add(&r, "X-Slack-Request-Timestamp", ts);
  char v0[80];
  snprintf(v0, sizeof v0, "v0=%s", r.values[0] + 7);
  in_add(&r, "X-Slack-Signature", v0);
  refused(same, &r, WH_ESIGNATURE, "X-Slack-Signature");
  wh_receiver_free(same);
  /* A standard signature in a Stripe header, a Stripe one in a standard header. */
  in_init(&r, STRIPE_BODY);
  char stdsig[128], hdr[256];
  wh_sign(STD_SECRET, "evt_x", now, STRIPE_BODY, strlen(STRIPE_BODY), stdsig, sizeof stdsig);
  snprintf(hdr, sizeof hdr, "t=%lld,v1=%s", (long long)now, stdsig + 3);
  in_add(&r, "Stripe-Signature", hdr);
  refused(rc, &r, WH_ESIGNATURE, NULL);
  in_init(&r, STRIPE_BODY);
  char hex[65];
  in_stripe_v1(STRIPE_SECRET, now, STRIPE_BODY, strlen(STRIPE_BODY), hex);
  snprintf(hdr, sizeof hdr, "v1,%s", hex);
  in_add(&r, "webhook-id", "evt_x");
  in_add(&r, "webhook-timestamp", ts);
  in_add(&r, "webhook-signature", hdr);
  refused(rc, &r, WH_ESIGNATURE, NULL);
  /* Signature headers of two schemes in one request. */
  in_init(&r, BODY);
  in_github(&r, GH_SECRET, "guid-two");
  in_slack(&r, SLACK_SECRET, now);
  refused(rc, &r, WH_EINVAL, "signed with both");
  /* Malformed signature values. */
  const char *bad_gh[] = {"sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                          "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                          "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17", "sha256=", ""};
  for (size_t i = 0; i < sizeof bad_gh / sizeof bad_gh[0]; i++) {
    in_init(&r, "Hello, World!");
    in_add(&r, "X-Hub-Signature-256", bad_gh[i]);
    in_add(&r, "X-GitHub-Delivery", "guid-malformed");
    refused(rc, &r, WH_ESIGNATURE, "X-Hub-Signature-256");
  }
  wh_receiver_free(rc);
}

static void secrets(void)
{
  wh_receiver *rc;
  CHECK_ERR(wh_receiver_new(NULL, NULL), WH_EINVAL, NULL);
  CHECK_ERR(wh_receiver_new(&rc, "redis://x"), WH_EINVAL, "not understood");
  CHECK(rc == NULL);
  CHECK_OK(wh_receiver_new(&rc, ""));
  CHECK_ERR(wh_receiver_add_secret(rc, "svix", STD_SECRET), WH_EINVAL, "\"svix\" is not one of");
  CHECK_ERR(wh_receiver_add_secret(rc, NULL, STD_SECRET), WH_EINVAL, "scheme");
  CHECK_ERR(wh_receiver_add_secret(rc, "standard", NULL), WH_EINVAL, "secret");
  CHECK_ERR(wh_receiver_add_secret(rc, "standard", "whsec_***"), WH_EINVAL, "base64");
  CHECK_ERR(wh_receiver_add_secret(rc, "github", ""), WH_EINVAL, "1 to 1024 bytes");
  CHECK_ERR(wh_receiver_add_secret(rc, "slack", "abc\n"), WH_EINVAL, "control character");
  CHECK_ERR(wh_receiver_add_secret(rc, "stripe", " whsec_x"), WH_EINVAL, "space");
  CHECK_ERR(wh_receiver_add_secret(NULL, "github", "x"), WH_EINVAL, "receiver");
  char s[64];
  for (int i = 0; i < 16; i++) {
    snprintf(s, sizeof s, "github-secret-%d", i);
    CHECK_OK(wh_receiver_add_secret(rc, "github", s));
  }
  CHECK_ERR(wh_receiver_add_secret(rc, "github", "one too many"), WH_EFULL, "16 secrets");
  wh_receiver_free(rc);
  wh_receiver_free(NULL);
}

/* ---- stores ------------------------------------------------------------------------------ */

static void remove_db(const char *path)
{
  char side[200];
  unlink(path);
  snprintf(side, sizeof side, "%s-wal", path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", path);
  unlink(side);
}

static void sqlite_restart_and_sharing(void)
{
  char path[128];
  snprintf(path, sizeof path, "/tmp/wh-test-incoming-%d.db", (int)getpid());
  char store[160];
  snprintf(store, sizeof store, "sqlite:%s", path);
  remove_db(path);

  /* The receiver first: a registry opens the same file afterwards. */
  wh_receiver *rc = receiver(store);
  char mid[64], id[256];
  unique_id(mid, sizeof mid, "msg");
  in_req r;
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, mid, now_s());
  CHECK_OK(in_check(rc, &r, id, sizeof id));
  in_req g;
  in_init(&g, "{\"zen\":\"Design for failure.\"}");
  in_github(&g, GH_SECRET, "c0ffee00-0000-4000-8000-000000000001");
  CHECK_OK(in_check(rc, &g, id, sizeof id));
  wh_registry *reg = NULL;
  CHECK_OK(wh_registry_open(&reg, store));
  char ep[WH_ID_MAX];
  CHECK_OK(wh_endpoint_add(reg, "crm", "https://crm.example.com/hooks", NULL, ep, sizeof ep));
  wh_receiver_free(rc);
  wh_registry_free(reg);

  /* A restart: both find their data again, in the other order. */
  CHECK_OK(wh_registry_open(&reg, store));
  char *json = NULL;
  CHECK_OK(wh_endpoint_get_json(reg, ep, &json));
  wh_free(json);
  rc = receiver(store);
  CHECK_ERR(in_check(rc, &r, id, sizeof id), WH_EEXIST, "seen before");
  CHECK_STR(id, mid);
  CHECK_ERR(in_check(rc, &g, id, sizeof id), WH_EEXIST, NULL);
  unique_id(mid, sizeof mid, "msg");
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, mid, now_s());
  CHECK_OK(in_check(rc, &r, id, sizeof id));
  wh_receiver_free(rc);
  wh_registry_free(reg);
  remove_db(path);

  /* The registry first, then the receiver, then the registry again. */
  CHECK_OK(wh_registry_open(&reg, store));
  wh_registry_free(reg);
  rc = receiver(store);
  CHECK_OK(in_check(rc, &r, id, sizeof id));
  wh_receiver_free(rc);
  CHECK_OK(wh_registry_open(&reg, store));
  wh_registry_free(reg);

  /* Another application's database is left alone, by both. */
  char foreign[128];
  snprintf(foreign, sizeof foreign, "/tmp/wh-test-incoming-foreign-%d.db", (int)getpid());
  unlink(foreign);
  sqlite3 *db;
  sqlite3_open(foreign, &db);
  sqlite3_exec(db, "CREATE TABLE invoices(id INTEGER PRIMARY KEY)", NULL, NULL, NULL);
  sqlite3_close(db);
  snprintf(store, sizeof store, "sqlite:%s", foreign);
  CHECK_ERR(wh_receiver_new(&rc, store), WH_ESTORE, "another application");
  CHECK_ERR(wh_registry_open(&reg, store), WH_ESTORE, "another application");
  remove_db(foreign);
  remove_db(path);
}

/* A flood of unique authentic ids: the memory store stays under its cap. */
static void memory_bound(void)
{
  wh_receiver *rc = receiver(NULL);
  const int total = 250000;
  long before = h_status_kib("VmRSS:");
  long peak_after_cap = 0;
  in_req r;
  int64_t now = now_s();
  int fails = 0;
  for (int i = 0; i < total; i++) {
    char mid[64];
    snprintf(mid, sizeof mid, "msg_flood_%08d_%lld", i, (long long)now);
    in_init(&r, BODY);
    in_standard(&r, STD_SECRET, mid, now);
    fails += in_check(rc, &r, NULL, 0) != WH_OK;
    if (i == 120000)
      peak_after_cap = h_status_kib("VmRSS:");
  }
  long after = h_status_kib("VmRSS:");
  CHECK_INT(fails, 0);
  printf("memory store flood: %d unique ids, RSS %ld KiB -> %ld KiB at 120k -> %ld KiB at %d\n", total, before,
         peak_after_cap, after, total);
#ifndef WH_SANITIZED /* a sanitizer's quarantine and shadow memory make RSS meaningless */
  /* 100,000 ids of ~30 bytes take ~15 MiB; past the cap the RSS stays flat. */
  CHECK(after - before < 40 * 1024);
  CHECK(after - peak_after_cap < 4 * 1024);
#endif
  /* The most recent ids are still known. */
  char mid[64];
  snprintf(mid, sizeof mid, "msg_flood_%08d_%lld", total - 1, (long long)now);
  in_init(&r, BODY);
  in_standard(&r, STD_SECRET, mid, now);
  CHECK_ERR(in_check(rc, &r, NULL, 0), WH_EEXIST, NULL);
  wh_receiver_free(rc);
}

/* ---- threads -------------------------------------------------------------------------------- */

#define THREADS 8
#define SHARED_IDS 200

typedef struct {
  wh_receiver *rc;
  int64_t now;
  int index;
  int ok_shared[SHARED_IDS];
  int ok_own, errors;
} worker;

static void *worker_main(void *arg)
{
  worker *w = arg;
  in_req r;
  char mid[64];
  for (int i = 0; i < SHARED_IDS; i++) {
    /* Every thread checks the same shared requests, and one of its own. */
    snprintf(mid, sizeof mid, "msg_shared_%d_%lld", i, (long long)w->now);
    in_init(&r, BODY);
    if (i % 4 == 0) {
      in_github(&r, GH_SECRET, mid);
    } else {
      in_standard(&r, STD_SECRET, mid, w->now);
    }
    int rc = in_check(w->rc, &r, NULL, 0);
    w->ok_shared[i] = rc == WH_OK;
    w->errors += rc != WH_OK && rc != WH_EEXIST;
    snprintf(mid, sizeof mid, "msg_own_%d_%d_%lld", w->index, i, (long long)w->now);
    in_init(&r, "payload=own");
    in_slack(&r, SLACK_SECRET, w->now - i); /* its own timestamp: its own id */
    rc = in_check(w->rc, &r, NULL, 0);
    w->ok_own += rc == WH_OK;
    w->errors += rc != WH_OK && rc != WH_EEXIST;
  }
  return NULL;
}

static void threads(void)
{
  wh_receiver *rc = receiver(NULL);
  static worker w[THREADS];
  pthread_t t[THREADS];
  int64_t now = now_s();
  for (int i = 0; i < THREADS; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].rc = rc;
    w[i].now = now;
    w[i].index = i;
    pthread_create(&t[i], NULL, worker_main, &w[i]);
  }
  /* Meanwhile, secrets are added: checks and additions may overlap. */
  for (int i = 0; i < 10; i++) {
    char s[32];
    snprintf(s, sizeof s, "rotating-%d", i);
    CHECK_OK(wh_receiver_add_secret(rc, "github", s));
  }
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  int errors = 0, own = 0;
  for (int i = 0; i < THREADS; i++) {
    errors += w[i].errors;
    own += w[i].ok_own;
  }
  CHECK_INT(errors, 0);
  /* Slack ids derive from the timestamp and the signature: the threads' own
     requests differ only by timestamp within a thread, and every thread signs
     the same bodies, so exactly SHARED_IDS of them are new overall. */
  CHECK_INT(own, SHARED_IDS);
  for (int i = 0; i < SHARED_IDS; i++) {
    int n = 0;
    for (int k = 0; k < THREADS; k++)
      n += w[k].ok_shared[i];
    CHECK_INT(n, 1);
  }
  wh_receiver_free(rc);
}

/* ---- PostgreSQL: two processes, one store ------------------------------------------------ */

#define PG_REQUESTS 50

/* The request number i of a run: the same in both processes. */
static void pg_request(in_req *r, const char *run, int i)
{
  static char mid[PG_REQUESTS][200];
  snprintf(mid[i], sizeof mid[i], "msg_pg_%s_%d", run, i);
  in_init(r, BODY);
  in_standard(r, STD_SECRET, mid[i], atoll(run));
}

/* One of the two processes: check every request, print one verdict a line.
   The second goes backwards, so that they meet in the middle: each finds some
   requests already seen by the other, and they race on the ones in between. */
static int pg_child(const char *uri, const char *run, int start_fd, int backwards)
{
  wh_receiver *rc = receiver(uri);
  printf("ready\n"); /* connected */
  fflush(stdout);
  char go;
  if (read(start_fd, &go, 1) != 1)
    return 2;
  for (int k = 0; k < PG_REQUESTS; k++) {
    int i = backwards ? PG_REQUESTS - 1 - k : k;
    in_req r;
    pg_request(&r, run, i);
    printf("%d %d\n", i, in_check(rc, &r, NULL, 0));
  }
  fflush(stdout);
  wh_receiver_free(rc);
  return 0;
}

static void pg_shared(const char *self, const char *uri)
{
  char run[32];
  snprintf(run, sizeof run, "%lld", (long long)now_s());
  /* Two processes, started together: each gets its verdict on each request. */
  int start[2], out[2][2];
  pid_t pid[2];
  CHECK(pipe(start) == 0);
  for (int k = 0; k < 2; k++) {
    CHECK(pipe(out[k]) == 0);
    pid[k] = fork();
    if (pid[k] == 0) {
      dup2(out[k][1], 1);
      close(out[k][0]);
      close(start[1]);
      char fd[16];
      snprintf(fd, sizeof fd, "%d", start[0]);
      execl(self, self, "pg-child", uri, run, fd, k ? "backwards" : "forwards", (char *)NULL);
      _exit(127);
    }
    close(out[k][1]);
  }
  close(start[0]);
  /* Both connected and waiting: then both start at once. */
  FILE *f[2];
  for (int k = 0; k < 2; k++) {
    char line[16] = "";
    f[k] = fdopen(out[k][0], "r");
    CHECK(f[k] && fgets(line, sizeof line, f[k]) && strcmp(line, "ready\n") == 0);
  }
  CHECK(write(start[1], "gg", 2) == 2);
  close(start[1]);
  int verdict[2][PG_REQUESTS];
  for (int k = 0; k < 2; k++) {
    for (int i = 0; i < PG_REQUESTS; i++)
      verdict[k][i] = -1;
    int i, v;
    while (f[k] && fscanf(f[k], "%d %d", &i, &v) == 2)
      if (i >= 0 && i < PG_REQUESTS)
        verdict[k][i] = v;
    if (f[k])
      fclose(f[k]);
    int status = 0;
    waitpid(pid[k], &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  int firsts[2] = {0, 0};
  for (int i = 0; i < PG_REQUESTS; i++) {
    int a = verdict[0][i], b = verdict[1][i];
    CHECK((a == WH_OK && b == WH_EEXIST) || (a == WH_EEXIST && b == WH_OK));
    firsts[0] += a == WH_OK;
    firsts[1] += b == WH_OK;
  }
  printf("postgresql: %d requests checked by two processes at once: first %d / %d times\n", PG_REQUESTS,
         firsts[0], firsts[1]);
  /* Each saw some first: both really used the one store. */
  CHECK(firsts[0] > 0 && firsts[1] > 0);
  /* A third receiver, later: every one of them is a duplicate. */
  wh_receiver *rc = receiver(uri);
  for (int i = 0; i < PG_REQUESTS; i++) {
    in_req r;
    pg_request(&r, run, i);
    CHECK_ERR(in_check(rc, &r, NULL, 0), WH_EEXIST, NULL);
  }
  /* A store that cannot be reached. */
  wh_receiver *down = NULL;
  CHECK_ERR(wh_receiver_new(&down, "postgresql://postgres@127.0.0.1:1/postgres"), WH_ESTORE, "cannot connect");
  CHECK(down == NULL);
  wh_receiver_free(rc);
}

int main(int argc, char **argv)
{
  if (argc == 6 && strcmp(argv[1], "pg-child") == 0)
    return pg_child(argv[2], argv[3], atoi(argv[4]), strcmp(argv[5], "backwards") == 0);
  if (argc == 2 && strcmp(argv[1], "pg") == 0) {
    const char *uri = getenv("WH_TEST_PG");
    if (!uri || !*uri) {
      fprintf(stderr, "test_incoming pg: WH_TEST_PG is not set; skipped\n");
      return 77;
    }
    pg_shared(argv[0], uri);
    return check_done("test_incoming pg");
  }
  schemes_accepted();
  missing_and_malformed();
  timestamps();
  signatures();
  secrets();
  sqlite_restart_and_sharing();
  memory_bound();
  threads();
  return check_done("test_incoming");
}
