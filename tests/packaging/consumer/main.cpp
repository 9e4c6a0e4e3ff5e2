/*
 * The C++ host application in miniature: the same checks as main.c, through the
 * header-only wrapper <webhook/webhook.hpp> of the install. It prints OK when
 * every call did what the header promises.
 */
#include <webhook/webhook.hpp>

#include <cstdio>
#include <string>

static int failures;

static void check(bool ok, const char *what)
{
  if (!ok) {
    std::fprintf(stderr, "consumer (C++): %s failed\n", what);
    failures++;
  }
}

int main()
{
  try {
    check(webhook::version() == WH_VERSION_STRING, "webhook::version");
    webhook::Registry reg("memory:");
    std::string id = reg.add_endpoint("Consumer", "https://example.com/webhooks", std::nullopt, {"people.*"});
    check(id.rfind("ep_", 0) == 0 && reg.endpoint_json(id).find("\"people.*\"") != std::string::npos,
          "Registry::add_endpoint");
    check(webhook::Event("people", "CREATE").to_json().find("\"resource_type\":\"people\"") != std::string::npos,
          "Event::to_json");
    const std::string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", msg_id = "msg_p5jXN8AQM9LWM0D4loKWxJek",
                      body = "{\"test\": 2432232314}", want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    check(webhook::sign(secret, msg_id, 1614265330, body) == want, "webhook::sign");
    webhook::verify(secret, msg_id, "1614265330", want, body, 1614265330);
    try {
      reg.add_endpoint("Bad", "ftp://example.com/");
      check(false, "Registry::add_endpoint with a bad URL throws");
    } catch (const webhook::Error &e) {
      check(e.code() == WH_EINVAL && !e.detail().empty(), "webhook::Error code and detail");
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "consumer (C++): %s\n", e.what());
    failures++;
  }
  if (failures) {
    std::fprintf(stderr, "consumer (C++): %d check(s) failed\n", failures);
    return 1;
  }
  std::puts("OK");
  return 0;
}
