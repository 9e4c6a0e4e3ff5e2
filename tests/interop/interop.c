/* Interoperability with another Standard Webhooks implementation: the npm
   package "standardwebhooks" (pinned in package.json), run by node.

     interop_standardwebhooks NODE VERIFY_MJS

   1. We sign cases (several secrets, a rotated endpoint carrying two and three
      signatures, message ids, `now` timestamps, bodies: the Casebook person
      event, unicode, a BOM, NUL and CR LF, empty, 100 KB) plus tampered and
      out-of-tolerance versions of them, and one real delivery captured by the
      test receiver; they go to cases.jsonl, bodies base64 so they stay
      byte-exact. We check our own verdict on each as we write it.
   2. `node verify.mjs cases.jsonl results.jsonl signed.jsonl` verifies every
      case with the library's Webhook class, checks the verdict each expects,
      and signs cases of its own (with tampered versions) into signed.jsonl.
   3. We check node's verdicts (one per case) and verify node's signatures
      with wh_verify: the genuine ones pass and sign identically with wh_sign,
      the tampered ones are refused.

   Exit 0: all agree; 1: a check failed; 77: skipped (no node, or the npm
   package not installed: run tests/interop/setup.sh), a failure instead under
   WH_REQUIRE_INTEROP=1 (CI). WH_INTEROP_KEEP=1 keeps the temporary directory;
   it is also kept when a check fails. */
#include <webhook/webhook.h>

#include "support/check.h"
#include "support/harness.h"
#include "node_common.h"
#ifdef WH_INTEROP_DELIVERY
#include "receiver.h"
#endif

#include <cjson/cJSON.h>
#include <errno.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The Standard Webhooks reference vector (24-byte key). */
#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"

/* ------------------------------------------------------------------------ */
/* Small helpers                                                              */
/* ------------------------------------------------------------------------ */

/* A check with the case's name in the message. */
static void expect_rc(const char *what, const char *detail, int got, int want)
{
  check_count++;
  if (got != want) {
    check_failures++;
    fprintf(stderr, "FAIL %s (%s): libwebhook returned %d (%s), expected %d (%s); %s\n", what,
            detail ? detail : "", got, wh_strerror(got), want, wh_strerror(want),
            got ? wh_error_last() : "");
  }
}

static int64_t now_s(void) { return (int64_t)time(NULL); }

/* ------------------------------------------------------------------------ */
/* Signers: a bare secret (wh_sign) or an endpoint (wh_endpoint_signature)    */
/* ------------------------------------------------------------------------ */

#define MAX_ACTIVE 4

typedef struct {
  const char *name;
  char secrets[MAX_ACTIVE][128]; /* every secret the header must verify with */
  int nsecrets;
  wh_registry *reg;              /* NULL: wh_sign with secrets[0] */
  char ep[WH_ID_MAX];
} signer;

static void sign_with(const signer *s, const char *id, int64_t ts, const void *body, size_t len,
                      char *out, size_t out_len)
{
  int rc = s->reg ? wh_endpoint_signature(s->reg, s->ep, id, ts, body, len, out, out_len)
                  : wh_sign(s->secrets[0], id, ts, body, len, out, out_len);
  expect_rc(s->name, "signing", rc, WH_OK);
  if (rc != WH_OK)
    snprintf(out, out_len, "v1,signing-failed");
}

static int count_entries(const char *header)
{
  int n = 0;
  for (const char *p = header; *p;) {
    while (*p == ' ')
      p++;
    if (*p)
      n++;
    while (*p && *p != ' ')
      p++;
  }
  return n;
}

/* ------------------------------------------------------------------------ */
/* Cases for node                                                              */
/* ------------------------------------------------------------------------ */

typedef struct {
  FILE *f;
  size_t n;
  cJSON *names; /* name -> 0, to check node answered each case */
} case_file;

enum { EXPECT_OK = WH_OK, EXPECT_SIGNATURE = WH_ESIGNATURE, EXPECT_TIMESTAMP = WH_ETIMESTAMP };

static const char *expect_name(int e)
{
  return e == EXPECT_OK ? "ok" : e == EXPECT_SIGNATURE ? "signature" : "timestamp";
}

/* Write one case, after checking that libwebhook itself gives `expect` for
   every secret. raw_headers (taken) replaces the three webhook-* fields for
   node when not NULL. informational: node reports its verdict without it
   counting. */
static void add_case(case_file *cf, const char *name, const char *const *secrets, int nsecrets,
                     const char *id, const char *ts, const void *body, size_t len, const char *sig,
                     int expect, cJSON *raw_headers, int informational)
{
  for (int i = 0; i < nsecrets; i++) {
    char detail[64];
    snprintf(detail, sizeof detail, "wh_verify, secret #%d", i);
    expect_rc(name, detail, wh_verify(secrets[i], id, ts, sig, body, len, 0), expect);
  }
  if (cJSON_GetObjectItemCaseSensitive(cf->names, name)) {
    fprintf(stderr, "interop: duplicate case name %s\n", name);
    check_failures++;
  }
  cJSON_AddNumberToObject(cf->names, name, 0);

  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", name);
  cJSON *arr = cJSON_AddArrayToObject(o, "secrets");
  for (int i = 0; i < nsecrets; i++)
    cJSON_AddItemToArray(arr, cJSON_CreateString(secrets[i]));
  cJSON_AddStringToObject(o, "id", id);
  cJSON_AddStringToObject(o, "timestamp", ts);
  char *b = b64_encode(body, len);
  cJSON_AddStringToObject(o, "body_b64", b);
  free(b);
  cJSON_AddStringToObject(o, "signature", sig);
  cJSON_AddStringToObject(o, "expect", expect_name(expect));
  if (informational)
    cJSON_AddTrueToObject(o, "informational");
  if (raw_headers)
    cJSON_AddItemToObject(o, "raw_headers", raw_headers);
  char *line = cJSON_PrintUnformatted(o);
  fprintf(cf->f, "%s\n", line);
  cJSON_free(line);
  cJSON_Delete(o);
  cf->n++;
}

typedef struct {
  const char *name;
  unsigned char *p;
  size_t len;
} body;

/* Valid cases for every signer x body, then the tampered ones. */
static void signer_cases(case_file *cf, const signer *s, const body *bodies, int nbodies,
                         const char *const *ids, int nids, int salt)
{
  const char *secs[MAX_ACTIVE];
  for (int i = 0; i < s->nsecrets; i++)
    secs[i] = s->secrets[i];
  char name[160], sig[512], ts[32];
  int64_t now = now_s();
  snprintf(ts, sizeof ts, "%lld", (long long)now);

  for (int b = 0; b < nbodies; b++) {
    const char *id = ids[(b + salt) % nids];
    sign_with(s, id, now, bodies[b].p, bodies[b].len, sig, sizeof sig);
    if (count_entries(sig) != (s->reg ? s->nsecrets : 1)) {
      fprintf(stderr, "FAIL %s: header \"%s\" should carry %d signatures\n", s->name, sig, s->nsecrets);
      check_failures++;
    }
    check_count++;
    snprintf(name, sizeof name, "%s/%s", s->name, bodies[b].name);
    add_case(cf, name, secs, s->nsecrets, id, ts, bodies[b].p, bodies[b].len, sig, EXPECT_OK, NULL, 0);
  }

  /* Tampering, on the person event (bodies[0]) and the unicode one (bodies[1]). */
  const body *pb = &bodies[0];
  const char *id = ids[salt % nids];
  sign_with(s, id, now, pb->p, pb->len, sig, sizeof sig);

  unsigned char *t = malloc(pb->len + 1);
  memcpy(t, pb->p, pb->len);
  t[pb->len / 2] ^= 0x01; /* one bit in the middle of the body */
  snprintf(name, sizeof name, "%s/tampered-body-bit", s->name);
  add_case(cf, name, secs, s->nsecrets, id, ts, t, pb->len, sig, EXPECT_SIGNATURE, NULL, 0);
  memcpy(t, pb->p, pb->len);
  t[pb->len] = '\n'; /* one byte appended */
  snprintf(name, sizeof name, "%s/tampered-body-appended", s->name);
  add_case(cf, name, secs, s->nsecrets, id, ts, t, pb->len + 1, sig, EXPECT_SIGNATURE, NULL, 0);
  snprintf(name, sizeof name, "%s/tampered-body-truncated", s->name);
  add_case(cf, name, secs, s->nsecrets, id, ts, pb->p, pb->len - 1, sig, EXPECT_SIGNATURE, NULL, 0);
  free(t);

  char id2[160];
  snprintf(id2, sizeof id2, "%sX", id);
  snprintf(name, sizeof name, "%s/tampered-id", s->name);
  add_case(cf, name, secs, s->nsecrets, id2, ts, pb->p, pb->len, sig, EXPECT_SIGNATURE, NULL, 0);

  char ts2[32];
  snprintf(ts2, sizeof ts2, "%lld", (long long)now + 1);
  snprintf(name, sizeof name, "%s/tampered-timestamp+1", s->name);
  add_case(cf, name, secs, s->nsecrets, id, ts2, pb->p, pb->len, sig, EXPECT_SIGNATURE, NULL, 0);

  /* Every v1 entry with its first base64 character changed (not the last one,
     whose low bits are padding). */
  char bad[640];
  snprintf(bad, sizeof bad, "%s", sig);
  for (char *p = bad; (p = strstr(p, "v1,")) != NULL; p += 3)
    p[3] = p[3] == 'A' ? 'B' : 'A';
  snprintf(name, sizeof name, "%s/tampered-signature", s->name);
  add_case(cf, name, secs, s->nsecrets, id, ts, pb->p, pb->len, bad, EXPECT_SIGNATURE, NULL, 0);

  /* Right bytes, other version label. */
  snprintf(bad, sizeof bad, "%s", sig);
  for (char *p = bad; (p = strstr(p, "v1,")) != NULL; p += 3)
    p[1] = '2';
  snprintf(name, sizeof name, "%s/version-v2-only", s->name);
  add_case(cf, name, secs, s->nsecrets, id, ts, pb->p, pb->len, bad, EXPECT_SIGNATURE, NULL, 0);

  /* Other versions and extra spaces around a good entry are ignored. */
  snprintf(bad, sizeof bad, "v1a,junk  v2,abc %s", sig);
  snprintf(name, sizeof name, "%s/extra-entries", s->name);
  add_case(cf, name, secs, s->nsecrets, id, ts, pb->p, pb->len, bad, EXPECT_OK, NULL, 0);

  /* A secret that did not sign. */
  char wrong[128];
  CHECK_OK(wh_secret_generate(wrong, sizeof wrong));
  const char *w = wrong;
  snprintf(name, sizeof name, "%s/wrong-secret", s->name);
  add_case(cf, name, &w, 1, id, ts, pb->p, pb->len, sig, EXPECT_SIGNATURE, NULL, 0);

  /* A different valid character in the unicode body ("é" -> "è"). */
  const body *ub = &bodies[1];
  unsigned char *e = memmem(ub->p, ub->len, "\xc3\xa9", 2);
  if (e) {
    sign_with(s, id, now, ub->p, ub->len, sig, sizeof sig);
    t = malloc(ub->len);
    memcpy(t, ub->p, ub->len);
    t[e - ub->p + 1] = 0xa8;
    snprintf(name, sizeof name, "%s/tampered-unicode-char", s->name);
    add_case(cf, name, secs, s->nsecrets, id, ts, t, ub->len, sig, EXPECT_SIGNATURE, NULL, 0);
    free(t);
  } else {
    fprintf(stderr, "FAIL: the unicode body lacks an \"\xc3\xa9\"\n");
    check_failures++;
  }

  /* Tolerance: both sides allow 300 s either way; stay well clear of the edge. */
  static const struct {
    const char *label;
    int64_t delta;
    int expect;
  } tol[] = {{"ts-600", -600, EXPECT_TIMESTAMP}, {"ts+600", 600, EXPECT_TIMESTAMP},
             {"ts-120", -120, EXPECT_OK},        {"ts+120", 120, EXPECT_OK}};
  for (size_t i = 0; i < sizeof tol / sizeof tol[0]; i++) {
    sign_with(s, id, now + tol[i].delta, pb->p, pb->len, sig, sizeof sig);
    snprintf(ts2, sizeof ts2, "%lld", (long long)(now + tol[i].delta));
    snprintf(name, sizeof name, "%s/%s", s->name, tol[i].label);
    add_case(cf, name, secs, s->nsecrets, id, ts2, pb->p, pb->len, sig, tol[i].expect, NULL, 0);
  }
  sign_with(s, id, now, pb->p, pb->len, sig, sizeof sig);
  snprintf(name, sizeof name, "%s/ts-not-a-number", s->name);
  add_case(cf, name, secs, s->nsecrets, id, "abc", pb->p, pb->len, sig, EXPECT_TIMESTAMP, NULL, 0);
}

/* ------------------------------------------------------------------------ */
/* Bodies                                                                      */
/* ------------------------------------------------------------------------ */

static body body_dup(const char *name, const void *p, size_t len)
{
  body b = {name, malloc(len ? len : 1), len};
  if (len)
    memcpy(b.p, p, len);
  return b;
}

static body body_event(const char *name, wh_event *ev)
{
  char *json = NULL;
  CHECK_OK(wh_event_to_json(ev, &json));
  body b = body_dup(name, json ? json : "{}", json ? strlen(json) : 2);
  wh_free(json);
  wh_event_free(ev);
  return b;
}

/* Exactly 100 KiB of JSON whose string mixes 1-, 2-, 3- and 4-byte UTF-8. */
static body body_large(void)
{
  const size_t total = 100 * 1024;
  static const char unit[] = "ab\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e xyz "; /* ab é € 𝄞 xyz */
  const size_t ul = sizeof unit - 1;
  body b = {"100KiB", malloc(total), total};
  size_t o = 0;
  memcpy(b.p, "{\"blob\":\"", 9);
  o = 9;
  while (o + ul + 2 <= total) {
    memcpy(b.p + o, unit, ul);
    o += ul;
  }
  while (o + 2 < total)
    b.p[o++] = '.';
  b.p[o++] = '"';
  b.p[o++] = '}';
  return b;
}

/* ------------------------------------------------------------------------ */
/* A real delivery, captured by the test receiver                             */
/* ------------------------------------------------------------------------ */

#ifdef WH_INTEROP_DELIVERY
static void delivery_case(case_file *cf)
{
  rcv *r = NULL;
  if (rcv_start(&r, 0) != 0) {
    fprintf(stderr, "FAIL delivery: cannot start the receiver\n");
    check_failures++;
    return;
  }
  wh_registry *reg = NULL;
  CHECK_OK(wh_registry_open(&reg, "memory:"));
  char url[256], ep[WH_ID_MAX], s_old[128], s_new[128];
  rcv_url(r, "/interop", url, sizeof url);
  CHECK_OK(wh_endpoint_add(reg, "interop-delivery", url, NULL, ep, sizeof ep));
  CHECK_OK(wh_endpoint_secret(reg, ep, s_old, sizeof s_old));
  CHECK_OK(wh_endpoint_rotate_secret(reg, ep, NULL, 3600));
  CHECK_OK(wh_endpoint_secret(reg, ep, s_new, sizeof s_new));

  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, "");
  CHECK(d != NULL);
  if (d)
    CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, 1));
  if (d)
    CHECK_OK(wh_dispatcher_start(d));

  /* The person event with a fixed time, so we know the exact bytes sent. */
  const int64_t t = 1711479196818049; /* 2024-03-26T18:53:16.818049Z */
  wh_event *ev = h_person_event(NULL, NULL), *twin = h_person_event(NULL, NULL);
  CHECK_OK(wh_event_set_time(ev, t));
  CHECK_OK(wh_event_set_time(twin, t));
  char *expected = NULL;
  CHECK_OK(wh_event_to_json(twin, &expected));
  wh_event_free(twin);
  char msg_id[WH_ID_MAX] = "";
  if (d)
    CHECK_OK(wh_dispatcher_emit(d, ev, msg_id, sizeof msg_id));
  else
    wh_event_free(ev);
  CHECK(rcv_wait_count(r, 1, 10000));
  CHECK(h_wait(&log, ep, WH_DELIVERED, 1, 10000));
  wh_dispatcher_free(d);
  rcv_stop(r);

  const rcv_request *q = rcv_request_at(r, 0);
  if (q) {
    CHECK_STR(q->method, "POST");
    CHECK(expected && q->body_len == strlen(expected) && memcmp(q->body, expected, q->body_len) == 0);
    CHECK_STR(rcv_header_get(q, "webhook-id"), msg_id);
    const char *id = rcv_header_get(q, "webhook-id"), *ts = rcv_header_get(q, "webhook-timestamp"),
               *sig = rcv_header_get(q, "webhook-signature");
    CHECK(id && ts && sig && count_entries(sig) == 2);
    if (id && ts && sig) {
      cJSON *hdrs = cJSON_CreateObject(), *hdrs2;
      for (size_t i = 0; i < q->nheaders; i++)
        cJSON_AddStringToObject(hdrs, q->headers[i].name, q->headers[i].value);
      hdrs2 = cJSON_Duplicate(hdrs, 1);
      const char *secs[2] = {s_new, s_old};
      add_case(cf, "delivery/received", secs, 2, id, ts, q->body, q->body_len, sig, EXPECT_OK, hdrs, 0);
      /* The same request with the body changed by one bit. */
      unsigned char *tb = malloc(q->body_len);
      memcpy(tb, q->body, q->body_len);
      tb[q->body_len / 3] ^= 0x02;
      add_case(cf, "delivery/tampered-body", secs, 2, id, ts, tb, q->body_len, sig, EXPECT_SIGNATURE,
               hdrs2, 0);
      free(tb);
    }
  }
  wh_free(expected);
  rcv_free(r);
  h_log_free(&log);
  wh_registry_free(reg);
}
#endif

/* ------------------------------------------------------------------------ */
/* Running node                                                                */
/* ------------------------------------------------------------------------ */

/* results.jsonl: one verdict per case; each case must have one that passed. */
static void on_result(cJSON *o, void *ud)
{
  cJSON *names = ud;
  const char *name = jstr(o, "name");
  cJSON *seen = name ? cJSON_GetObjectItemCaseSensitive(names, name) : NULL;
  check_count++;
  if (!seen) {
    fprintf(stderr, "FAIL: node reported an unknown case %s\n", name ? name : "(no name)");
    check_failures++;
    return;
  }
  if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "pass"))) {
    char *txt = cJSON_PrintUnformatted(o);
    fprintf(stderr, "FAIL: standardwebhooks disagrees: %s\n", txt);
    cJSON_free(txt);
    check_failures++;
  }
  cJSON_SetNumberHelper(seen, seen->valuedouble + 1);
}

typedef struct {
  long ok, rejected;
} signed_stats;

/* signed.jsonl: node's signatures, genuine and tampered. */
static void on_signed(cJSON *o, void *ud)
{
  signed_stats *st = ud;
  const char *name = jstr(o, "name"), *secret = jstr(o, "secret"), *id = jstr(o, "id"),
             *ts = jstr(o, "timestamp"), *b64 = jstr(o, "body_b64"), *sig = jstr(o, "signature"),
             *exp = jstr(o, "expect");
  size_t len = 0;
  unsigned char *body = b64 ? b64_decode(b64, &len) : NULL;
  check_count++;
  if (!name || !secret || !id || !ts || !body || !sig || !exp) {
    fprintf(stderr, "FAIL: malformed signed case %s\n", name ? name : "(no name)");
    check_failures++;
    free(body);
    return;
  }
  int want = strcmp(exp, "ok") == 0 ? WH_OK : strcmp(exp, "timestamp") == 0 ? WH_ETIMESTAMP : WH_ESIGNATURE;
  char what[200];
  snprintf(what, sizeof what, "node-signed %s", name);
  int got = wh_verify(secret, id, ts, sig, body, len, 0);
  expect_rc(what, "wh_verify", got, want);
  if (got == WH_OK)
    st->ok++;
  else
    st->rejected++;

  char *end = NULL;
  long long t = strtoll(ts, &end, 10);
  if (want == WH_OK || want == WH_ETIMESTAMP) {
    /* HMAC is deterministic: we must produce the very same header. */
    char mine[128];
    expect_rc(what, "wh_sign", wh_sign(secret, id, t, body, len, mine, sizeof mine), WH_OK);
    check_count++;
    if (strcmp(mine, sig) != 0) {
      fprintf(stderr, "FAIL %s: node signed %s, wh_sign gives %s\n", what, sig, mine);
      check_failures++;
    }
    /* Our own tampering of node's genuine signatures. */
    if (want == WH_OK) {
      char tw[160];
      if (len) {
        body[len - 1] ^= 0x04;
        expect_rc(what, "body last byte changed", wh_verify(secret, id, ts, sig, body, len, 0),
                  WH_ESIGNATURE);
        body[len - 1] ^= 0x04;
      }
      unsigned char *longer = malloc(len + 1);
      memcpy(longer, body, len);
      longer[len] = ' ';
      expect_rc(what, "one byte appended", wh_verify(secret, id, ts, sig, longer, len + 1, 0), WH_ESIGNATURE);
      free(longer);
      snprintf(tw, sizeof tw, "%s1", id);
      expect_rc(what, "id changed", wh_verify(secret, tw, ts, sig, body, len, 0), WH_ESIGNATURE);
      snprintf(tw, sizeof tw, "%lld", t - 1);
      expect_rc(what, "timestamp-1", wh_verify(secret, id, tw, sig, body, len, 0), WH_ESIGNATURE);
      snprintf(tw, sizeof tw, "%s", sig);
      tw[3] = tw[3] == 'z' ? 'y' : 'z';
      expect_rc(what, "signature changed", wh_verify(secret, id, ts, tw, body, len, 0), WH_ESIGNATURE);
      char other[128];
      CHECK_OK(wh_secret_generate(other, sizeof other));
      expect_rc(what, "other secret", wh_verify(other, id, ts, sig, body, len, 0), WH_ESIGNATURE);
    }
  }
  free(body);
}

/* ------------------------------------------------------------------------ */

static void cleanup(const char *dir, const char *const *files, int n)
{
  for (int i = 0; i < n; i++)
    unlink(files[i]);
  rmdir(dir);
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc != 3) {
    fprintf(stderr, "usage: %s NODE VERIFY_MJS\n", argv[0]);
    return 2;
  }
  char node[4096];
  const char *script = argv[2];
  static const char *const packages[] = {"standardwebhooks"};
  int ready = node_ready(argv[1], script, packages, 1, node, sizeof node);
  if (ready != 0)
    return ready;
  printf("interop: node %s, %s\n", node, wh_version());

  const char *tmp = getenv("TMPDIR");
  char dir[4096], cases[4200], results[4200], signed_out[4200];
  snprintf(dir, sizeof dir, "%s/wh-interop-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    fprintf(stderr, "interop: mkdtemp %s: %s\n", dir, strerror(errno));
    return 1;
  }
  snprintf(cases, sizeof cases, "%s/cases.jsonl", dir);
  snprintf(results, sizeof results, "%s/results.jsonl", dir);
  snprintf(signed_out, sizeof signed_out, "%s/signed.jsonl", dir);
  const char *files[] = {cases, results, signed_out};

  case_file cf = {fopen(cases, "w"), 0, cJSON_CreateObject()};
  if (!cf.f) {
    fprintf(stderr, "interop: %s: %s\n", cases, strerror(errno));
    return 1;
  }

  /* Bodies. [0] must be the person event and [1] contain "é". */
  body bodies[8];
  int nb = 0;
  bodies[nb++] = body_event("person-event", h_person_event(NULL, NULL));
  static const char uni[] = "{\"name\":\"Zo\xc3\xab Br\xc3\xa9" "e\",\"city\":\"Z\xc3\xbcrich\","
                            "\"nfd\":\"e\xcc\x81\",\"ja\":\"\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf\","
                            "\"he\":\"\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d\",\"emoji\":\"\xf0\x9f\x9a\x80\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb\","
                            "\"escaped\":\"\\u00e9\\ud83d\\ude80\",\"ls\":\"\xe2\x80\xa8\"}";
  bodies[nb++] = body_dup("unicode-json", uni, sizeof uni - 1);
  {
    wh_event *ev = NULL;
    CHECK_OK(wh_event_new(&ev, "people", "UPDATE"));
    CHECK_OK(wh_event_set_resource_json(ev, "{ \"first_name\" : \"J\xc3\xbcrgen\", \"last_name\": "
                                            "\"\xe5\xb1\xb1\xe7\x94\xb0 \xf0\x9f\x98\x80\" }"));
    CHECK_OK(wh_event_set_tenant_id(ev, "t\xc3\xa9nant"));
    bodies[nb++] = body_event("unicode-event", ev);
  }
  static const char text[] = "plain text, not JSON: na\xc3\xafve caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9d\x84\x9e";
  bodies[nb++] = body_dup("unicode-text", text, sizeof text - 1);
  static const char bom[] = "\xef\xbb\xbf{\"bom\":true}";
  bodies[nb++] = body_dup("utf8-bom", bom, sizeof bom - 1);
  static const char ctl[] = "line1\r\nline2\0after-nul\ttab\x7f";
  bodies[nb++] = body_dup("nul-crlf", ctl, sizeof ctl - 1);
  bodies[nb++] = body_dup("empty", "", 0);
  bodies[nb++] = body_large();

  static const char *const ids[] = {VEC_ID, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
                                    "evt.with.dots-and_dashes:42", "msg_\xc3\xbcn\xc3\xaf" "c\xc3\xb8" "de"};
  const int nids = (int)(sizeof ids / sizeof ids[0]);

  /* Signers. */
  signer signers[8];
  int ns = 0;
  memset(signers, 0, sizeof signers);
  for (int i = 0; i < 2; i++) {
    signer *s = &signers[ns++];
    s->name = i ? "generated-2" : "generated-1";
    s->nsecrets = 1;
    CHECK_OK(wh_secret_generate(s->secrets[0], sizeof s->secrets[0]));
  }
  signers[ns].name = "vector-secret";
  signers[ns].nsecrets = 1;
  snprintf(signers[ns++].secrets[0], 128, "%s", VEC_SECRET);
  signers[ns].name = "vector-secret-no-prefix";
  signers[ns].nsecrets = 1;
  snprintf(signers[ns++].secrets[0], 128, "%s", VEC_SECRET + 6);

  wh_registry *reg = NULL;
  CHECK_OK(wh_registry_open(&reg, "memory:"));
  {
    /* Rotated once: the new secret and the previous one both sign. */
    signer *s = &signers[ns++];
    s->name = "rotated-2";
    s->reg = reg;
    CHECK_OK(wh_endpoint_add(reg, "rotated-2", "http://127.0.0.1:9/hook", NULL, s->ep, sizeof s->ep));
    CHECK_OK(wh_endpoint_secret(reg, s->ep, s->secrets[1], 128));
    CHECK_OK(wh_endpoint_rotate_secret(reg, s->ep, NULL, 3600));
    CHECK_OK(wh_endpoint_secret(reg, s->ep, s->secrets[0], 128));
    s->nsecrets = 2;

    /* Rotated twice, the second time to a 64-byte key of our choosing. */
    unsigned char k64[64];
    for (int i = 0; i < 64; i++)
      k64[i] = (unsigned char)(i * 37 + 11);
    char *b = b64_encode(k64, sizeof k64);
    s = &signers[ns++];
    s->name = "rotated-3-key64";
    s->reg = reg;
    CHECK_OK(wh_endpoint_add(reg, "rotated-3", "http://127.0.0.1:9/hook", NULL, s->ep, sizeof s->ep));
    CHECK_OK(wh_endpoint_secret(reg, s->ep, s->secrets[2], 128));
    CHECK_OK(wh_endpoint_rotate_secret(reg, s->ep, NULL, 3600));
    CHECK_OK(wh_endpoint_secret(reg, s->ep, s->secrets[1], 128));
    snprintf(s->secrets[0], 128, "whsec_%s", b);
    CHECK_OK(wh_endpoint_rotate_secret(reg, s->ep, s->secrets[0], 3600));
    s->nsecrets = 3;
    free(b);

    /* Rotated with no grace: only the new secret signs. */
    s = &signers[ns++];
    s->name = "rotated-no-grace";
    s->reg = reg;
    char old[128];
    CHECK_OK(wh_endpoint_add(reg, "rotated-0", "http://127.0.0.1:9/hook", NULL, s->ep, sizeof s->ep));
    CHECK_OK(wh_endpoint_secret(reg, s->ep, old, sizeof old));
    CHECK_OK(wh_endpoint_rotate_secret(reg, s->ep, NULL, 0));
    CHECK_OK(wh_endpoint_secret(reg, s->ep, s->secrets[0], 128));
    s->nsecrets = 1;
    /* The retired secret must not verify anymore, on either side. */
    char sig[512], ts[32];
    int64_t now = now_s();
    snprintf(ts, sizeof ts, "%lld", (long long)now);
    sign_with(s, VEC_ID, now, bodies[0].p, bodies[0].len, sig, sizeof sig);
    const char *o = old;
    add_case(&cf, "rotated-no-grace/retired-secret", &o, 1, VEC_ID, ts, bodies[0].p, bodies[0].len, sig,
             EXPECT_SIGNATURE, NULL, 0);
  }

  for (int i = 0; i < ns; i++)
    signer_cases(&cf, &signers[i], bodies, nb, ids, nids, i);

  /* Not UTF-8: we sign the bytes; standardwebhooks decodes a Buffer as UTF-8
     (U+FFFD for bad bytes) before signing, so it cannot agree. Reported only. */
  {
    static const char bin[] = "\xff\xfe\x00\x80 not utf-8 \xc3\x28";
    char sig[128], ts[32];
    int64_t now = now_s();
    snprintf(ts, sizeof ts, "%lld", (long long)now);
    CHECK_OK(wh_sign(signers[0].secrets[0], VEC_ID, now, bin, sizeof bin - 1, sig, sizeof sig));
    const char *sec = signers[0].secrets[0];
    add_case(&cf, "not-utf8/informational", &sec, 1, VEC_ID, ts, bin, sizeof bin - 1, sig, EXPECT_OK, NULL,
             1);
  }

#ifdef WH_INTEROP_DELIVERY
  delivery_case(&cf);
#else
  printf("interop: built without the test receiver: no delivery case\n");
#endif

  if (fclose(cf.f) != 0) {
    fprintf(stderr, "interop: writing %s failed\n", cases);
    return 1;
  }
  printf("interop: %zu cases written to %s; libwebhook's own verdicts: %s\n", cf.n, cases,
         check_failures ? "SOME WRONG" : "as expected");

  /* Node verifies ours and signs its own. */
  int nrc = run_node(node, script, cases, results, signed_out);
  check_count++;
  if (nrc != 0) {
    fprintf(stderr, "FAIL: node %s exited with %d\n", script, nrc);
    check_failures++;
  }

  /* Every case has a passing verdict, exactly once per (case, secret, form). */
  if (each_line(results, on_result, cf.names) >= 0) {
    for (cJSON *c = cf.names->child; c; c = c->next) {
      check_count++;
      if (c->valuedouble < 1) {
        fprintf(stderr, "FAIL: node gave no verdict for %s\n", c->string);
        check_failures++;
      }
    }
  }

  signed_stats st = {0, 0};
  long nsigned = each_line(signed_out, on_signed, &st);
  check_count++;
  if (nsigned < 20 || st.ok < 10) {
    fprintf(stderr, "FAIL: node signed too few cases (%ld, %ld verified)\n", nsigned, st.ok);
    check_failures++;
  }
  printf("interop: node-signed cases: %ld (%ld verified by wh_verify, %ld refused as expected)\n", nsigned, st.ok,
         st.rejected);

  for (int i = 0; i < nb; i++)
    free(bodies[i].p);
  cJSON_Delete(cf.names);
  wh_registry_free(reg);

  const char *keep = getenv("WH_INTEROP_KEEP");
  if (check_failures || (keep && *keep && strcmp(keep, "0") != 0))
    printf("interop: files kept in %s\n", dir);
  else
    cleanup(dir, files, 3);
  return check_done("interop_standardwebhooks");
}
