/*
 * A C++ backend sending Casebook's webhooks through <webhook/webhook.hpp>.
 *
 *   1. Acme's administrator, logged in, opens Admin > Integrations > Outgoing and creates
 *      a webhook: the code acting for them holds a view of the registry limited to Acme.
 *   2. The application emits person events from its request threads (two here), for
 *      Acme and for another customer, Globex, who has no webhook.
 *   3. A thread of the application takes the outcomes from the result queue: no
 *      library thread ever calls into the application.
 *   4. Acme's receiving system (here in this process, on 127.0.0.1, with
 *      libmicrohttpd) checks every request with webhook::Receiver, as a receiver
 *      written with libwebhook would.
 *   5. At the end: the attempt log as Acme's administrator sees it, and the
 *      dispatcher's totals.
 *
 *   cpp_backend [STORE]      STORE: "memory:" (default), "sqlite:PATH", "postgresql://..."
 */
#include <webhook/webhook.hpp>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

static const char *const ACME = "be461bd7-2d91-41c6-ab29-4389066bcc71";
static const char *const GLOBEX = "5a0c3e42-8d4e-4c39-9a51-0f3b2c6d7e18";

/* ---- Acme's receiving system ----------------------------------------------------------------- */

struct CrmReceiver {
  webhook::Receiver checker{"memory:"}; /* remembers ids seen: a redelivery is recognised */
  std::mutex mu;
  int received = 0, verified = 0, foreign = 0;
};

struct Upload {
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

static MHD_Result collect_header(void *cls, MHD_ValueKind, const char *name, const char *value)
{
  static_cast<Upload *>(cls)->headers.emplace_back(name, value ? value : "");
  return MHD_YES;
}

static MHD_Result on_request(void *cls, MHD_Connection *c, const char *, const char *, const char *,
                             const char *data, size_t *data_size, void **state)
{
  auto *crm = static_cast<CrmReceiver *>(cls);
  auto *up = static_cast<Upload *>(*state);
  if (!up) { /* the headers have arrived */
    *state = up = new Upload;
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, up);
    return MHD_YES;
  }
  if (*data_size) { /* a piece of the body */
    up->body.append(data, *data_size);
    *data_size = 0;
    return MHD_YES;
  }
  /* The whole request: is it really from Casebook, and new? */
  unsigned status = MHD_HTTP_NO_CONTENT;
  std::string verdict;
  try {
    webhook::Incoming in = crm->checker.check(up->headers, up->body);
    verdict = in.seen_before ? "authentic, seen before (" + in.id + ")" : "authentic (" + in.id + ")";
  } catch (const webhook::Error &e) {
    status = MHD_HTTP_UNAUTHORIZED;
    verdict = e.what();
  }
  {
    std::lock_guard<std::mutex> lock(crm->mu);
    crm->received++;
    crm->verified += status == MHD_HTTP_NO_CONTENT;
    crm->foreign += up->body.find(std::string("\"tenant_id\":\"") + ACME + "\"") == std::string::npos;
    std::printf("CRM: received %zu bytes: %s\n", up->body.size(), verdict.c_str());
  }
  delete up;
  *state = nullptr;
  MHD_Response *resp = MHD_create_response_from_buffer(0, const_cast<char *>(""), MHD_RESPMEM_PERSISTENT);
  MHD_Result ret = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* ---- the application --------------------------------------------------------------------------- */

/* Admin > Integrations > Outgoing > Create a New Webhook, by Acme's administrator: the code
   acting for them only ever holds Acme's view. Returns the endpoint id. */
static std::string admin_creates_webhook(webhook::Registry &webhooks, const std::string &tenant, unsigned port,
                                         CrmReceiver &crm)
{
  webhook::Registry view = webhooks.tenant(tenant);
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/acme/crm";
  std::string id = view.add_endpoint("CRM people sync", url, "Sends new and changed people to our CRM",
                                     {"people.*"}, {{"X-Casebook-Account", "acme"}});
  std::printf("admin: created %s\n", view.endpoint_json(id).c_str());
  /* The administrator copies the signing secret into the CRM's configuration. */
  crm.checker.add_secret("standard", view.secret(id));
  return id;
}

/* The application's results thread: it blocks in next_result() and ends when the dispatcher
   is stopped and every outcome was taken (WH_ESTATE). On every way out of main, including an
   exception, it stops the dispatcher and joins, so the dispatcher is never freed under it. */
class ResultReader {
public:
  explicit ResultReader(webhook::Dispatcher &d) : d_(d), thread_([this] { run(); }) {}
  ResultReader(const ResultReader &) = delete;
  ResultReader &operator=(const ResultReader &) = delete;
  ~ResultReader()
  {
    if (!thread_.joinable())
      return;
    try {
      d_.stop(0ms);
    } catch (const webhook::Error &) {
      /* already stopped */
    }
    thread_.join();
  }
  void join() { thread_.join(); }

  std::atomic<int> delivered{0}, not_delivered{0};

private:
  webhook::Dispatcher &d_;
  std::thread thread_;

  void run()
  {
    try {
      for (;;) {
        std::optional<webhook::Result> r = d_.next_result(webhook::forever);
        if (!r)
          continue;
        (r->outcome == webhook::Outcome::delivered ? delivered : not_delivered)++;
        std::printf("results: %s to %s: %s (attempt %d, HTTP %d)%s%s\n", r->message_id.c_str(),
                    r->endpoint_id.c_str(), webhook::to_string(r->outcome), r->attempt, r->http_status,
                    r->error ? ": " : "", r->error ? r->error->c_str() : "");
      }
    } catch (const webhook::Error &e) {
      if (e.code() != WH_ESTATE)
        std::fprintf(stderr, "results: %s\n", e.what());
    }
  }
};

/* What a request handler of the application does when a person changes. */
static std::string person_changed(webhook::Dispatcher &d, const char *tenant, const char *kind, int n)
{
  std::string id = "person-" + std::to_string(n);
  std::string person = R"({"id":")" + id + R"(","first_name":"John","last_name":"Doe )" + std::to_string(n) +
                       R"(","date_of_birth":"02/13/2023"})";
  return d.emit(webhook::Event("people", kind)
                  .resource(person)
                  .tenant_id(tenant)
                  .user_id("f9762deb-a115-412d-adf7-cf772807734a")
                  .resource_id(id));
}

int main(int argc, char **argv)
{
  const std::string store = argc > 1 ? argv[1] : "memory:";
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    /* Acme's CRM, listening on 127.0.0.1 only. */
    CrmReceiver crm;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::unique_ptr<MHD_Daemon, void (*)(MHD_Daemon *)> mhd(MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, nullptr,
                                       nullptr, on_request, &crm, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_END),
                                                            MHD_stop_daemon);
    if (!mhd) {
      std::fprintf(stderr, "cannot start the CRM's receiver\n");
      return 1;
    }
    unsigned port = MHD_get_daemon_info(mhd.get(), MHD_DAEMON_INFO_BIND_PORT)->port;
    std::printf("libwebhook %s, store \"%s\", Acme's CRM on 127.0.0.1:%u\n", webhook::version().c_str(),
                store.c_str(), port);

    webhook::Registry webhooks(store);
    std::string endpoint = admin_creates_webhook(webhooks, ACME, port, crm);

    /* One dispatcher delivers every tenant's events, from the root registry. */
    webhook::Dispatcher d(webhooks);
    d.set_int(WH_OPT_ALLOW_PRIVATE_NETWORKS, 1) /* the CRM is on loopback, refused by default */
      .set_int(WH_OPT_RESULT_QUEUE, 10000);
    d.start();

    ResultReader results(d);

    /* Two request threads: Acme's people change, and Globex's (no webhook: goes nowhere). */
    std::vector<std::string> acme_messages;
    std::mutex mu;
    std::vector<std::thread> requests;
    for (int t = 0; t < 2; t++)
      requests.emplace_back([&, t] {
        for (int i = 0; i < 3; i++) {
          std::string id = person_changed(d, ACME, i == 0 ? "CREATE" : "UPDATE", t * 10 + i);
          std::lock_guard<std::mutex> lock(mu);
          acme_messages.push_back(id);
        }
        person_changed(d, GLOBEX, "CREATE", 100 + t);
      });
    for (std::thread &t : requests)
      t.join();

    d.drain(10s); /* every delivery done, every outcome in the queue */

    /* The attempt log, as Acme's administrator sees it; Globex's messages do not exist for them. */
    webhook::Registry acme = webhooks.tenant(ACME);
    std::printf("attempt log of %s, seen by Acme's administrator:\n%s\n", acme_messages.front().c_str(),
                acme.message_json(acme_messages.front()).c_str());

    d.stop(5s);
    results.join();
    mhd.reset(); /* the CRM stops: its counts are final */

    int emitted = static_cast<int>(acme_messages.size());
    int delivered = results.delivered, not_delivered = results.not_delivered;
    bool ok = delivered == emitted && not_delivered == 0 && crm.received == emitted &&
              crm.verified == emitted && crm.foreign == 0;
    std::printf("Acme: %d events emitted, %d delivered (result queue), %d received by the CRM, %d verified, "
                "%d of another tenant\n",
                emitted, delivered, crm.received, crm.verified, crm.foreign);
    std::printf("%s\n", ok ? "every event reached Acme's CRM, signed, and nothing else did" : "SOMETHING WENT WRONG");
    return ok ? 0 : 1;
  } catch (const webhook::Error &e) {
    std::fprintf(stderr, "libwebhook: %s\n", e.what());
    return 1;
  }
}
