/*
 * A host application in miniature, built against an installed libwebhook by
 * tests/packaging/install_consumer.sh: through pkg-config, through
 * find_package(webhook) and statically. It prints OK when every call did what
 * the public header promises.
 */
#include <webhook/webhook.h>

#include <stdio.h>
#include <string.h>

static int failures;

static void check(int ok, const char *what)
{
  if (!ok) {
    fprintf(stderr, "consumer: %s failed: %s\n", what, wh_error_last());
    failures++;
  }
}

int main(void)
{
  /* The library loaded is the one the header belongs to. */
  check(strcmp(wh_version(), WH_VERSION_STRING) == 0, "wh_version");
  check(wh_version_num() == WH_VERSION_NUM, "wh_version_num");

  wh_registry *reg = NULL;
  char id[WH_ID_MAX];
  check(wh_registry_open(&reg, "memory:") == WH_OK && reg != NULL, "wh_registry_open");
  if (reg) {
    check(wh_endpoint_add(reg, "Consumer", "https://example.com/webhooks", NULL,
                          id, sizeof id) == WH_OK && id[0] != '\0',
          "wh_endpoint_add");
    wh_registry_free(reg);
  }

  wh_event *ev = NULL;
  char *json = NULL;
  check(wh_event_new(&ev, "people", "CREATE") == WH_OK && ev != NULL, "wh_event_new");
  if (ev) {
    check(wh_event_to_json(ev, &json) == WH_OK && json != NULL &&
          strstr(json, "\"resource_type\":\"people\"") != NULL,
          "wh_event_to_json");
    wh_free(json);
    wh_event_free(ev);
  }

  /* The Standard Webhooks reference test vector. */
  const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const char *msg_id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
  const char *body = "{\"test\": 2432232314}";
  const char *want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
  char sig[128];
  check(wh_sign(secret, msg_id, 1614265330, body, strlen(body), sig, sizeof sig) == WH_OK &&
        strcmp(sig, want) == 0,
        "wh_sign");
  check(wh_verify(secret, msg_id, "1614265330", want, body, strlen(body), 1614265330) == WH_OK,
        "wh_verify");
  check(wh_verify(secret, msg_id, "1614265330", want, "{}", 2, 1614265330) == WH_ESIGNATURE,
        "wh_verify (tampered body)");

  if (failures) {
    fprintf(stderr, "consumer: %d check(s) failed\n", failures);
    return 1;
  }
  puts("OK");
  return 0;
}
