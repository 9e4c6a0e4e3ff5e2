/* Interoperability of incoming webhooks with the senders' own npm packages:
   svix, standardwebhooks, @octokit/webhooks-methods (GitHub), stripe, and a
   Slack request signed as Slack documents it (incoming.mjs, run by node).

     interop_incoming NODE INCOMING_MJS

   1. We sign Standard Webhooks requests with wh_sign (several secrets, bodies,
      tampered and out-of-tolerance versions) into ours.jsonl; node verifies
      each with svix and standardwebhooks, which must give the expected verdict.
   2. Node signs requests of the four schemes with the senders' libraries into
      theirs.jsonl; for each case we make a fresh wh_receiver (memory store)
      with the case's secrets and check its requests in order: each verdict
      and id must be the expected one ("ok" then "exist" for a replay).

   Exit 0: all agree; 1: a check failed; 77: skipped (no node or a package
   missing; run tests/interop/setup.sh), a failure instead under
   WH_REQUIRE_INTEROP=1 (CI). WH_INTEROP_KEEP=1 keeps the temporary files. */
#include <webhook/webhook.h>

#include "support/check.h"
#include "node_common.h"

#include <time.h>

static const struct {
  const char *name;
  int code;
} verdicts[] = {{"ok", WH_OK},
                {"exist", WH_EEXIST},
                {"signature", WH_ESIGNATURE},
                {"timestamp", WH_ETIMESTAMP},
                {"invalid", WH_EINVAL}};

static int code_of(const char *name)
{
  for (size_t i = 0; name && i < sizeof verdicts / sizeof verdicts[0]; i++)
    if (strcmp(verdicts[i].name, name) == 0)
      return verdicts[i].code;
  return -1;
}

/* ---- 1. ours: signed by wh_sign, for svix and standardwebhooks ------------------------ */

static void write_case(FILE *f, const char *name, const char *secret, const char *id, int64_t ts, const char *body,
                       const char *sig, const char *expect)
{
  cJSON *o = cJSON_CreateObject();
  char tsb[32];
  snprintf(tsb, sizeof tsb, "%lld", (long long)ts);
  char *b = b64_encode((const unsigned char *)body, strlen(body));
  cJSON_AddStringToObject(o, "name", name);
  cJSON_AddStringToObject(o, "secret", secret);
  cJSON_AddStringToObject(o, "id", id);
  cJSON_AddStringToObject(o, "timestamp", tsb);
  cJSON_AddStringToObject(o, "body_b64", b);
  cJSON_AddStringToObject(o, "signature", sig);
  cJSON_AddStringToObject(o, "expect", expect);
  char *line = cJSON_PrintUnformatted(o);
  fprintf(f, "%s\n", line);
  cJSON_free(line);
  cJSON_Delete(o);
  free(b);
}

static int write_ours(const char *path)
{
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  char secrets[3][128];
  snprintf(secrets[0], sizeof secrets[0], "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  CHECK_OK(wh_secret_generate(secrets[1], sizeof secrets[1]));
  CHECK_OK(wh_secret_generate(secrets[2], sizeof secrets[2]));
  const char *bodies[] = {
    "{\"resource\":{\"last_name\":\"Doe\",\"first_name\":\"John\"},\"tenant_id\":\"be461bd7\",\"event_type\":\"CREATE\"}",
    "{\"name\":\"Zo\xc3\xab Br\xc3\xa9" "e\",\"emoji\":\"\xf0\x9f\x9a\x80\"}", ""};
  int n = 0;
  int64_t now = (int64_t)time(NULL);
  for (int s = 0; s < 3; s++) {
    for (int b = 0; b < 3; b++) {
      char id[64], name[64], sig[128];
      snprintf(id, sizeof id, "msg_interop_%d_%d_%lld", s, b, (long long)now);
      CHECK_OK(wh_sign(secrets[s], id, now, bodies[b], strlen(bodies[b]), sig, sizeof sig));
      snprintf(name, sizeof name, "secret%d/body%d", s, b);
      write_case(f, name, secrets[s], id, now, bodies[b], sig, "ok");
      n++;
      if (b != 0)
        continue;
      snprintf(name, sizeof name, "secret%d/tampered", s);
      write_case(f, name, secrets[s], id, now, "{\"resource\":{}}", sig, "signature");
      snprintf(name, sizeof name, "secret%d/other-secret", s);
      write_case(f, name, secrets[(s + 1) % 3], id, now, bodies[b], sig, "signature");
      CHECK_OK(wh_sign(secrets[s], id, now - 600, bodies[b], strlen(bodies[b]), sig, sizeof sig));
      snprintf(name, sizeof name, "secret%d/ts-600", s);
      write_case(f, name, secrets[s], id, now - 600, bodies[b], sig, "timestamp");
      n += 3;
    }
  }
  fclose(f);
  return n;
}

static void on_verdict(cJSON *o, void *ud)
{
  (void)ud;
  const char *expect = jstr(o, "expect"), *got = jstr(o, "got");
  check_count++;
  if (!expect || !got || strcmp(expect, got) != 0) {
    check_failures++;
    fprintf(stderr, "FAIL %s: %s says %s, expected %s\n", jstr(o, "name"), jstr(o, "lib"), got, expect);
  }
}

/* ---- 2. theirs: signed by the senders' libraries, for wh_receiver_check ---------------- */

typedef struct {
  int cases, steps;
  int per_code[16];
} tally;

static void check_step(wh_receiver *rc, const char *name, int k, const cJSON *step, tally *t)
{
  const cJSON *hs = cJSON_GetObjectItemCaseSensitive(step, "headers");
  int nh = cJSON_GetArraySize(hs);
  const char *names[64], *values[64];
  if (nh > 64)
    nh = 64;
  for (int i = 0; i < nh; i++) {
    const cJSON *pair = cJSON_GetArrayItem(hs, i);
    names[i] = cJSON_GetArrayItem(pair, 0)->valuestring;
    values[i] = cJSON_GetArrayItem(pair, 1)->valuestring;
  }
  size_t bl = 0;
  unsigned char *body = b64_decode(jstr(step, "body_b64"), &bl);
  int want = code_of(jstr(step, "expect"));
  char id[256] = "";
  int got = wh_receiver_check(rc, names, values, (size_t)nh, body, bl, id, sizeof id);
  check_count++;
  if (got != want) {
    check_failures++;
    fprintf(stderr, "FAIL %s, check %d: wh_receiver_check returned %d (%s), expected %s; %s\n", name, k + 1, got,
            wh_strerror(got), jstr(step, "expect"), got ? wh_error_last() : "");
  }
  const char *want_id = jstr(step, "id");
  if ((got == WH_OK || got == WH_EEXIST) && want_id) {
    check_count++;
    if (strcmp(id, want_id) != 0) {
      check_failures++;
      fprintf(stderr, "FAIL %s, check %d: id \"%s\", expected \"%s\"\n", name, k + 1, id, want_id);
    }
  }
  if (got >= 0 && got < 16)
    t->per_code[got]++;
  t->steps++;
  free(body);
}

static void on_theirs(cJSON *o, void *ud)
{
  tally *t = ud;
  const char *name = jstr(o, "name"), *scheme = jstr(o, "scheme");
  wh_receiver *rc = NULL;
  CHECK_OK(wh_receiver_new(&rc, "memory:"));
  const cJSON *s;
  cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(o, "secrets"))
    CHECK_OK(wh_receiver_add_secret(rc, scheme, s->valuestring));
  int k = 0;
  const cJSON *step;
  cJSON_ArrayForEach(step, cJSON_GetObjectItemCaseSensitive(o, "steps"))
    check_step(rc, name, k++, step, t);
  wh_receiver_free(rc);
  t->cases++;
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc != 3) {
    fprintf(stderr, "usage: %s NODE INCOMING_MJS\n", argv[0]);
    return 2;
  }
  char node[4096];
  static const char *const packages[] = {"svix", "standardwebhooks", "stripe", "@octokit/webhooks-methods"};
  int ready = node_ready(argv[1], argv[2], packages, 4, node, sizeof node);
  if (ready != 0)
    return ready;

  const char *tmp = getenv("TMPDIR");
  char dir[4096], ours[4200], verdict_path[4200], theirs[4200];
  snprintf(dir, sizeof dir, "%s/wh-interop-in-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    fprintf(stderr, "interop_incoming: mkdtemp %s: %s\n", dir, strerror(errno));
    return 1;
  }
  snprintf(ours, sizeof ours, "%s/ours.jsonl", dir);
  snprintf(verdict_path, sizeof verdict_path, "%s/verdicts.jsonl", dir);
  snprintf(theirs, sizeof theirs, "%s/theirs.jsonl", dir);

  int n = write_ours(ours);
  CHECK(n > 0);
  int nrc = run_node(node, argv[2], ours, verdict_path, theirs);
  check_count++;
  if (nrc != 0) {
    check_failures++;
    fprintf(stderr, "FAIL: node %s exited with %d\n", argv[2], nrc);
  }
  long nv = each_line(verdict_path, on_verdict, NULL);
  /* standardwebhooks on each, svix twice (two header families) on each JSON body */
  CHECK(nv >= 2L * n && nv <= 3L * n);
  tally t;
  memset(&t, 0, sizeof t);
  long nt = each_line(theirs, on_theirs, &t);
  CHECK(nt > 40);
  printf("interop_incoming: %d requests signed by libwebhook verified by svix and standardwebhooks (%ld verdicts); "
         "%d cases of the senders' libraries, %d checks by wh_receiver: %d ok, %d exist, %d signature, "
         "%d timestamp, %d invalid\n",
         n, nv, t.cases, t.steps, t.per_code[WH_OK], t.per_code[WH_EEXIST], t.per_code[WH_ESIGNATURE],
         t.per_code[WH_ETIMESTAMP], t.per_code[WH_EINVAL]);

  const char *keep = getenv("WH_INTEROP_KEEP");
  if ((keep && *keep == '1') || check_failures) {
    printf("interop_incoming: files kept in %s\n", dir);
  } else {
    unlink(ours);
    unlink(verdict_path);
    unlink(theirs);
    rmdir(dir);
  }
  return check_done("interop_incoming");
}
