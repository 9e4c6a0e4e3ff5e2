/**
 * @file webhook/webhook.hpp
 * @brief libwebhook for C++17: RAII owners over the C API of webhook.h.
 *
 * Header-only: it needs nothing but <webhook/webhook.h>, the standard library
 * and libwebhook itself (`pkg-config --libs libwebhook`, or
 * `target_link_libraries(app PRIVATE webhook::webhook)`).
 *
 * The rules, in short (docs/getting-started-cpp.md has the long form):
 *  - Every failure throws webhook::Error, which carries the WH_E* code and the
 *    detail of wh_error_last(). Nothing is reported through a return value.
 *  - webhook::Registry, webhook::Dispatcher, webhook::Event and
 *    webhook::Receiver own one C object each. They are move-only; moves are
 *    noexcept, a moved-from object holds nothing (calls on it throw
 *    webhook::Error with WH_EINVAL), and destructors never throw.
 *  - Objects may be destroyed in any order: a dispatcher or a tenant view keeps
 *    its registry alive (the C library counts references).
 *  - Text goes in and out as std::string; JSON stays text (parse it with the
 *    library of your choice). Durations are std::chrono::milliseconds, instants
 *    std::chrono::system_clock::time_point.
 *  - Threads: as the C API (docs/threading.md). Callbacks given to
 *    webhook::Dispatcher run on library worker threads; webhook::Dispatcher::next_result()
 *    runs on yours.
 */
#ifndef WEBHOOK_WEBHOOK_HPP
#define WEBHOOK_WEBHOOK_HPP

#include <webhook/webhook.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/** libwebhook's C++ interface: RAII owners over the C API of webhook.h. */
namespace webhook {

/**
 * A failed libwebhook call. what() reads "<fixed text of the code>: <detail>",
 * for example "invalid argument: endpoint url: scheme must be http or https".
 * Copying it never throws.
 */
class Error : public std::runtime_error {
public:
  /**
   * An error with a code and its detail.
   * @param code   the WH_E* code the C call returned.
   * @param detail what went wrong, as wh_error_last() said it.
   */
  Error(int code, const std::string &detail)
      : std::runtime_error(std::string(wh_strerror(code)) + (detail.empty() ? "" : ": " + detail)),
        code_(code), detail_(std::make_shared<const std::string>(detail))
  {
  }

  /** The WH_E* code (WH_EINVAL, WH_ENOTFOUND, ...). @return the code. */
  int code() const noexcept { return code_; }

  /** What went wrong, as wh_error_last() said it on the failing thread. @return the detail; may be empty. */
  const std::string &detail() const noexcept { return *detail_; }

private:
  int code_;
  std::shared_ptr<const std::string> detail_; /* shared: copies of an exception must not throw */
};

/** A timeout that waits without limit (drain, stop, next_result). */
inline constexpr std::chrono::milliseconds forever{-1};

/// @cond WEBHOOK_INTERNAL
namespace detail {

/* The calling thread's detail, read at once: the next failing call replaces it. */
[[noreturn]] inline void fail(int rc) { throw Error(rc, wh_error_last()); }

inline void check(int rc)
{
  if (rc != WH_OK)
    fail(rc);
}

inline const char *c_str(const std::optional<std::string> &s) noexcept { return s ? s->c_str() : nullptr; }

/* Text the library allocated for us, as a std::string; freed in every case. */
inline std::string take(char *p)
{
  std::unique_ptr<char, void (*)(void *)> owned(p, wh_free);
  return p ? std::string(p) : std::string();
}

/* C timeouts are int milliseconds, negative for no limit. */
inline int timeout_ms(std::chrono::milliseconds t) noexcept
{
  if (t.count() < 0)
    return -1;
  return t.count() > INT_MAX ? INT_MAX : static_cast<int>(t.count());
}

inline std::int64_t unix_ms(std::chrono::system_clock::time_point t) noexcept
{
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

inline std::chrono::system_clock::time_point from_unix_ms(std::int64_t ms) noexcept
{
  return std::chrono::system_clock::time_point(
    std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::milliseconds(ms)));
}

} // namespace detail
/// @endcond

/* ------------------------------------------------------------------------ */
/* Version, secrets, signatures                                              */
/* ------------------------------------------------------------------------ */

/** The version of the library actually loaded. @return "MAJOR.MINOR.PATCH", as wh_version(). */
inline std::string version() { return wh_version(); }

/** The version of the library actually loaded, as a number. @return 0xMMmmpp, as wh_version_num(). */
inline unsigned version_num() noexcept { return wh_version_num(); }

/**
 * A fresh signing secret, "whsec_" + base64 of 32 random bytes (wh_secret_generate()).
 * @return the secret.
 * @threadsafety Safe from any thread.
 */
inline std::string secret_generate()
{
  char buf[128];
  detail::check(wh_secret_generate(buf, sizeof buf));
  return buf;
}

/**
 * Sign as Standard Webhooks v1 does (wh_sign()).
 * @param secret    "whsec_" + base64 (the prefix is optional).
 * @param msg_id    the webhook-id.
 * @param timestamp the webhook-timestamp, unix seconds.
 * @param body      the exact bytes sent.
 * @return the signature, "v1,<base64>".
 * @threadsafety Safe from any thread.
 */
inline std::string sign(const std::string &secret, const std::string &msg_id, std::int64_t timestamp,
                        std::string_view body)
{
  char buf[128];
  detail::check(wh_sign(secret.c_str(), msg_id.c_str(), timestamp, body.data(), body.size(), buf, sizeof buf));
  return buf;
}

/**
 * Verify a request signed as Standard Webhooks v1 (wh_verify()); throws
 * webhook::Error with WH_ESIGNATURE or WH_ETIMESTAMP when it does not pass.
 * @param secret           "whsec_" + base64.
 * @param msg_id           the webhook-id header.
 * @param timestamp        the webhook-timestamp header, as received.
 * @param signature_header the webhook-signature header, as received.
 * @param body             the raw body, as received.
 * @param now              unix seconds to check the timestamp against; 0: the current time.
 * @threadsafety Safe from any thread.
 */
inline void verify(const std::string &secret, const std::string &msg_id, const std::string &timestamp,
                   const std::string &signature_header, std::string_view body, std::int64_t now = 0)
{
  detail::check(wh_verify(secret.c_str(), msg_id.c_str(), timestamp.c_str(), signature_header.c_str(),
                          body.data(), body.size(), now));
}

/* ------------------------------------------------------------------------ */
/* Registry                                                                   */
/* ------------------------------------------------------------------------ */

/**
 * The endpoints an administrator registered, in a store: the root registry, or
 * a view limited to one tenant (tenant()). Owns one wh_registry.
 *
 * Endpoint and message objects come back as the JSON text of the C API
 * (wh_endpoint_get_json(), wh_message_get_json(), ...), to be read with the
 * JSON library of the application.
 *
 * After fork(), in the child, every member of the parent's registry (and of its
 * views) throws WH_ESTATE, and destroying it returns at once: open a new one there.
 * @threadsafety Every member may be called from any number of threads at once
 * (as the C registry), except moving, assigning and destroying the object.
 */
class Registry {
public:
  /**
   * Open a registry (wh_registry_open()).
   * @param store "memory:" (this process only), "sqlite:PATH" (a durable file)
   *              or "postgresql://..." (shared between processes).
   */
  explicit Registry(const std::string &store = "memory:") { detail::check(wh_registry_open(&reg_, store.c_str())); }

  /** Take over a registry opened with the C API; nullptr gives an empty object. @param reg the registry (or view) to own. */
  explicit Registry(wh_registry *reg) noexcept : reg_(reg) {}

  /** Take other's registry; other is left empty. @param other the registry moved from. */
  Registry(Registry &&other) noexcept : reg_(std::exchange(other.reg_, nullptr)) {}

  /** Release this registry and take other's. @param other the registry moved from. @return *this. */
  Registry &operator=(Registry &&other) noexcept
  {
    if (this != &other)
      wh_registry_free(std::exchange(reg_, std::exchange(other.reg_, nullptr)));
    return *this;
  }

  Registry(const Registry &) = delete;            ///< Move-only: one owner per registry handle.
  Registry &operator=(const Registry &) = delete; ///< Move-only: one owner per registry handle.

  /** Release the handle (wh_registry_free()); dispatchers and views keep the registry itself alive. */
  ~Registry() { wh_registry_free(reg_); }

  /** The C handle, for calls this wrapper does not make. @return the handle, still owned by this object. */
  wh_registry *get() const noexcept { return reg_; }

  /** Whether this object holds a registry (false once moved from). @return true when it does. */
  explicit operator bool() const noexcept { return reg_ != nullptr; }

  /**
   * A view limited to one tenant (wh_registry_open_tenant()): every member of
   * the view sees only the tenant's endpoints and messages, and endpoints added
   * through it belong to the tenant. The view keeps this registry alive.
   * @param tenant_id the host's stable account id, 1..1024 bytes of UTF-8.
   * @return the view.
   */
  Registry tenant(const std::string &tenant_id) const
  {
    wh_registry *view = nullptr;
    detail::check(wh_registry_open_tenant(&view, reg_, tenant_id.c_str()));
    return Registry(view);
  }

  /** The tenant of a view (wh_registry_tenant_id()). @return the tenant id; std::nullopt for the root registry. */
  std::optional<std::string> tenant_id() const
  {
    const char *t = wh_registry_tenant_id(reg_);
    return t ? std::optional<std::string>(t) : std::nullopt;
  }

  /**
   * Change a registry setting (wh_registry_set_int()), on the root registry only.
   * @param setting WH_REG_TENANT_MAX_ENDPOINTS.
   * @param value   its value.
   */
  void set_int(int setting, long value) { detail::check(wh_registry_set_int(reg_, setting, value)); }

  /**
   * Register an outgoing webhook, enabled, with a fresh secret (wh_endpoint_add()),
   * then its filters (wh_endpoint_subscribe()) and headers
   * (wh_endpoint_set_header()). All or nothing: when a filter or a header is
   * refused, the endpoint is removed again before the error is thrown.
   * @param name        1..256 bytes, unique within its tenant.
   * @param url         http:// or https:// URL.
   * @param description std::nullopt for none.
   * @param filters     patterns such as "people.*"; none: every event.
   * @param headers     custom headers sent with every request.
   * @return the new endpoint's id ("ep_...").
   */
  std::string add_endpoint(const std::string &name, const std::string &url,
                           const std::optional<std::string> &description = std::nullopt,
                           const std::vector<std::string> &filters = {},
                           const std::map<std::string, std::string> &headers = {})
  {
    char id[WH_ID_MAX];
    detail::check(wh_endpoint_add(reg_, name.c_str(), url.c_str(), detail::c_str(description), id, sizeof id));
    try {
      for (const std::string &f : filters)
        subscribe(id, f);
      for (const auto &h : headers)
        set_header(id, h.first, h.second);
    } catch (...) {
      wh_endpoint_remove(reg_, id); /* all or nothing; the first error is the one to report */
      throw;
    }
    return id;
  }

  /** Remove an endpoint (wh_endpoint_remove()). @param id the endpoint. */
  void remove_endpoint(const std::string &id) { detail::check(wh_endpoint_remove(reg_, id.c_str())); }

  /**
   * Enable or disable an endpoint (wh_endpoint_set_enabled()).
   * @param id      the endpoint.
   * @param enabled true to enable (which clears its failure history).
   */
  void set_enabled(const std::string &id, bool enabled)
  {
    detail::check(wh_endpoint_set_enabled(reg_, id.c_str(), enabled ? 1 : 0));
  }

  /** Change an endpoint's URL (wh_endpoint_set_url()). @param id the endpoint. @param url the new URL. */
  void set_url(const std::string &id, const std::string &url)
  {
    detail::check(wh_endpoint_set_url(reg_, id.c_str(), url.c_str()));
  }

  /** Rename an endpoint (wh_endpoint_set_name()). @param id the endpoint. @param name the new name. */
  void set_name(const std::string &id, const std::string &name)
  {
    detail::check(wh_endpoint_set_name(reg_, id.c_str(), name.c_str()));
  }

  /**
   * Change an endpoint's description (wh_endpoint_set_description()).
   * @param id          the endpoint.
   * @param description the new one; std::nullopt for none.
   */
  void set_description(const std::string &id, const std::optional<std::string> &description)
  {
    detail::check(wh_endpoint_set_description(reg_, id.c_str(), detail::c_str(description)));
  }

  /**
   * Subscribe an endpoint to a pattern (wh_endpoint_subscribe()).
   * @param id      the endpoint.
   * @param pattern "people.CREATE", "people.*", "*.DELETE" or "*".
   */
  void subscribe(const std::string &id, const std::string &pattern)
  {
    detail::check(wh_endpoint_subscribe(reg_, id.c_str(), pattern.c_str()));
  }

  /** Remove a pattern (wh_endpoint_unsubscribe()). @param id the endpoint. @param pattern a pattern it has. */
  void unsubscribe(const std::string &id, const std::string &pattern)
  {
    detail::check(wh_endpoint_unsubscribe(reg_, id.c_str(), pattern.c_str()));
  }

  /**
   * Set or remove a custom header (wh_endpoint_set_header()).
   * @param id    the endpoint.
   * @param name  an HTTP token, not one the library sets itself.
   * @param value the value; std::nullopt removes the header.
   */
  void set_header(const std::string &id, const std::string &name, const std::optional<std::string> &value)
  {
    detail::check(wh_endpoint_set_header(reg_, id.c_str(), name.c_str(), detail::c_str(value)));
  }

  /** The endpoint's current signing secret (wh_endpoint_secret()). @param id the endpoint. @return "whsec_...". */
  std::string secret(const std::string &id) const
  {
    char buf[256];
    detail::check(wh_endpoint_secret(reg_, id.c_str(), buf, sizeof buf));
    return buf;
  }

  /**
   * Rotate the endpoint's secret (wh_endpoint_rotate_secret()).
   * @param id         the endpoint.
   * @param new_secret "whsec_" + base64 of 24..64 bytes; std::nullopt generates one.
   * @param grace      how long the previous secret keeps signing alongside.
   */
  void rotate_secret(const std::string &id, const std::optional<std::string> &new_secret = std::nullopt,
                     std::chrono::seconds grace = std::chrono::seconds(0))
  {
    long long g = grace.count() < 0 ? 0 : grace.count();
    unsigned seconds = g > static_cast<long long>(UINT_MAX) ? UINT_MAX : static_cast<unsigned>(g);
    detail::check(wh_endpoint_rotate_secret(reg_, id.c_str(), detail::c_str(new_secret), seconds));
  }

  /**
   * The webhook-signature header this endpoint's deliveries carry for a message
   * (wh_endpoint_signature()): one entry per active secret.
   * @param id        the endpoint.
   * @param msg_id    the webhook-id.
   * @param timestamp unix seconds.
   * @param body      the body.
   * @return "v1,... v1,...".
   */
  std::string signature(const std::string &id, const std::string &msg_id, std::int64_t timestamp,
                        std::string_view body) const
  {
    std::vector<char> buf(2048);
    int rc;
    while ((rc = wh_endpoint_signature(reg_, id.c_str(), msg_id.c_str(), timestamp, body.data(), body.size(),
                                       buf.data(), buf.size())) == WH_ERANGE &&
           buf.size() < (1u << 20))
      buf.resize(buf.size() * 4);
    detail::check(rc);
    return buf.data();
  }

  /** Set an integer endpoint setting (wh_endpoint_set_int()). @param id the endpoint. @param setting a WH_EP_* setting. @param value its value. */
  void set_int(const std::string &id, int setting, long value)
  {
    detail::check(wh_endpoint_set_int(reg_, id.c_str(), setting, value));
  }

  /**
   * Set a text endpoint setting (wh_endpoint_set_str()).
   * @param id      the endpoint.
   * @param setting WH_EP_RETRY_SCHEDULE, WH_EP_PROXY or WH_EP_CLIENT_CERT.
   * @param value   its value; std::nullopt clears it.
   */
  void set_str(const std::string &id, int setting, const std::optional<std::string> &value)
  {
    detail::check(wh_endpoint_set_str(reg_, id.c_str(), setting, detail::c_str(value)));
  }

  /** One endpoint (wh_endpoint_get_json()). @param id the endpoint. @return its JSON object, never a secret. */
  std::string endpoint_json(const std::string &id) const
  {
    char *json = nullptr;
    detail::check(wh_endpoint_get_json(reg_, id.c_str(), &json));
    return detail::take(json);
  }

  /** Every endpoint (of the view's tenant, on a view), in the order added (wh_endpoint_list_json()). @return a JSON array. */
  std::string endpoints_json() const
  {
    char *json = nullptr;
    detail::check(wh_endpoint_list_json(reg_, &json));
    return detail::take(json);
  }

  /** A message and its attempt log (wh_message_get_json()). @param msg_id the message ("msg_..."). @return its JSON object. */
  std::string message_json(const std::string &msg_id) const
  {
    char *json = nullptr;
    detail::check(wh_message_get_json(reg_, msg_id.c_str(), &json));
    return detail::take(json);
  }

  /**
   * An endpoint's failed deliveries (wh_endpoint_failed_json()).
   * @param id    the endpoint.
   * @param since those that finished at or after this instant.
   * @param limit at most this many; 0: no limit.
   * @return a JSON array, oldest first.
   */
  std::string failed_json(const std::string &id, std::chrono::system_clock::time_point since = {},
                          std::size_t limit = 0) const
  {
    char *json = nullptr;
    detail::check(wh_endpoint_failed_json(reg_, id.c_str(), detail::unix_ms(since), limit, &json));
    return detail::take(json);
  }

  /**
   * Send a message again (wh_message_replay()); works on tenant views.
   * @param msg_id      the message.
   * @param endpoint_id one endpoint; std::nullopt: every endpoint it had a delivery for.
   * @return how many deliveries were queued.
   */
  std::size_t replay(const std::string &msg_id, const std::optional<std::string> &endpoint_id = std::nullopt)
  {
    std::size_t n = 0;
    detail::check(wh_message_replay(reg_, msg_id.c_str(), detail::c_str(endpoint_id), &n));
    return n;
  }

  /**
   * Queue again an endpoint's failed deliveries (wh_endpoint_recover()).
   * @param endpoint_id the endpoint.
   * @param since       those that finished at or after this instant.
   * @return how many deliveries were queued.
   */
  std::size_t recover(const std::string &endpoint_id, std::chrono::system_clock::time_point since)
  {
    std::size_t n = 0;
    detail::check(wh_endpoint_recover(reg_, endpoint_id.c_str(), detail::unix_ms(since), &n));
    return n;
  }

  /** "Send test event" to one endpoint (wh_endpoint_send_test()). @param endpoint_id the endpoint. @return the test message's id. */
  std::string send_test(const std::string &endpoint_id)
  {
    char id[WH_ID_MAX];
    detail::check(wh_endpoint_send_test(reg_, endpoint_id.c_str(), id, sizeof id));
    return id;
  }

  /**
   * Purge messages delivered before an instant (wh_registry_purge()), on the root registry only.
   * @param before the instant.
   * @return how many messages were purged.
   */
  std::size_t purge(std::chrono::system_clock::time_point before)
  {
    std::size_t n = 0;
    detail::check(wh_registry_purge(reg_, detail::unix_ms(before), &n));
    return n;
  }

private:
  wh_registry *reg_ = nullptr;
};

/* ------------------------------------------------------------------------ */
/* Event                                                                      */
/* ------------------------------------------------------------------------ */

/**
 * One event being built: the Casebook envelope. Each setter returns the event,
 * so a temporary can be built and emitted in one expression:
 * @code
 * d.emit(webhook::Event("people", "CREATE").resource(person_json).tenant_id(tenant).resource_id(id));
 * @endcode
 * Owns one wh_event until it is handed to webhook::Dispatcher::emit().
 * @threadsafety One thread at a time, as the C event.
 */
class Event {
public:
  /**
   * Start an event of type "<resource_type>.<event_type>" (wh_event_new()); its time is now.
   * @param resource_type for example "people".
   * @param event_type    for example "CREATE".
   */
  Event(const std::string &resource_type, const std::string &event_type)
  {
    detail::check(wh_event_new(&ev_, resource_type.c_str(), event_type.c_str()));
  }

  /** Take other's event; other is left empty. @param other the event moved from. */
  Event(Event &&other) noexcept : ev_(std::exchange(other.ev_, nullptr)) {}

  /** Free this event and take other's. @param other the event moved from. @return *this. */
  Event &operator=(Event &&other) noexcept
  {
    if (this != &other)
      wh_event_free(std::exchange(ev_, std::exchange(other.ev_, nullptr)));
    return *this;
  }

  Event(const Event &) = delete;            ///< Move-only: one owner per event.
  Event &operator=(const Event &) = delete; ///< Move-only: one owner per event.

  /** Free an event that was not emitted (wh_event_free()). */
  ~Event() { wh_event_free(ev_); }

  /**
   * Set the resource (wh_event_set_resource_json()): a JSON object, carried as written.
   * @param json the object's text.
   * @return this event.
   */
  Event &resource(const std::string &json) &
  {
    detail::check(wh_event_set_resource_json(ev_, json.c_str()));
    return *this;
  }
  /** As resource(const std::string &) &, on a temporary. @param json the object's text. @return this event, to move on. */
  Event &&resource(const std::string &json) && { return std::move(resource(json)); }

  /** Set "resource_id" (wh_event_set_resource_id()). @param id the id; std::nullopt: null. @return this event. */
  Event &resource_id(const std::optional<std::string> &id) &
  {
    detail::check(wh_event_set_resource_id(ev_, detail::c_str(id)));
    return *this;
  }
  /** As resource_id(const std::optional<std::string> &) &, on a temporary. @param id the id. @return this event, to move on. */
  Event &&resource_id(const std::optional<std::string> &id) && { return std::move(resource_id(id)); }

  /** Set "tenant_id" (wh_event_set_tenant_id()). @param id the tenant; std::nullopt: null. @return this event. */
  Event &tenant_id(const std::optional<std::string> &id) &
  {
    detail::check(wh_event_set_tenant_id(ev_, detail::c_str(id)));
    return *this;
  }
  /** As tenant_id(const std::optional<std::string> &) &, on a temporary. @param id the tenant. @return this event, to move on. */
  Event &&tenant_id(const std::optional<std::string> &id) && { return std::move(tenant_id(id)); }

  /** Set "user_id" (wh_event_set_user_id()). @param id the user; std::nullopt: null. @return this event. */
  Event &user_id(const std::optional<std::string> &id) &
  {
    detail::check(wh_event_set_user_id(ev_, detail::c_str(id)));
    return *this;
  }
  /** As user_id(const std::optional<std::string> &) &, on a temporary. @param id the user. @return this event, to move on. */
  Event &&user_id(const std::optional<std::string> &id) && { return std::move(user_id(id)); }

  /** Set "event_time" (wh_event_set_time()), to the microsecond. @param when the instant. @return this event. */
  Event &time(std::chrono::system_clock::time_point when) &
  {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch()).count();
    detail::check(wh_event_set_time(ev_, static_cast<std::int64_t>(us)));
    return *this;
  }
  /** As time(std::chrono::system_clock::time_point) &, on a temporary. @param when the instant. @return this event, to move on. */
  Event &&time(std::chrono::system_clock::time_point when) && { return std::move(time(when)); }

  /** The envelope, exactly the bytes that endpoints receive (wh_event_to_json()). @return the JSON text. */
  std::string to_json() const
  {
    char *json = nullptr;
    detail::check(wh_event_to_json(ev_, &json));
    return detail::take(json);
  }

  /** The C handle, still owned by this object. @return the handle; nullptr once emitted or moved. */
  wh_event *get() const noexcept { return ev_; }

  /** Give up ownership, for a C call that takes the event. @return the handle, now the caller's. */
  wh_event *release() noexcept { return std::exchange(ev_, nullptr); }

private:
  wh_event *ev_ = nullptr;
};

/**
 * Emit through the process default dispatcher (wh_emit()): the most recently
 * started one, or the one named by webhook::Dispatcher::set_default().
 * @param ev the event; taken in every case, also when this throws.
 */
inline void emit(Event ev) { detail::check(wh_emit(ev.release())); }

/* ------------------------------------------------------------------------ */
/* Results                                                                    */
/* ------------------------------------------------------------------------ */

/** How an attempt ended (wh_result_outcome()). */
enum class Outcome : int {
  delivered = WH_DELIVERED, ///< a 2xx answer
  retrying = WH_RETRYING,   ///< failed; another attempt is scheduled
  failed = WH_FAILED        ///< attempts exhausted, or the endpoint disabled or removed
};

/** The outcome as text. @param o the outcome. @return "delivered", "retrying" or "failed". */
inline const char *to_string(Outcome o) noexcept
{
  switch (o) {
  case Outcome::delivered:
    return "delivered";
  case Outcome::retrying:
    return "retrying";
  case Outcome::failed:
    break;
  }
  return "failed";
}

/** One attempt's outcome, copied out of the library: it owns its text and lives as long as you keep it. */
struct Result {
  std::string message_id;                              ///< the message ("msg_...", the webhook-id sent)
  std::string endpoint_id;                             ///< the endpoint ("ep_...")
  Outcome outcome = Outcome::failed;                   ///< how the attempt ended
  int attempt = 0;                                     ///< the attempt's number, 1 for the first try
  int http_status = 0;                                 ///< the answer's HTTP status; 0 when none arrived
  std::optional<std::string> error;                    ///< what went wrong; std::nullopt on success
  std::chrono::system_clock::time_point next_attempt;  ///< when retrying: when the next attempt is due
  std::chrono::milliseconds duration{0};               ///< how long the attempt took
  bool endpoint_disabled = false;                      ///< whether this attempt disabled the endpoint

  /** Copy a C result (the wh_result_* accessors). @param r a result of a callback or of the queue. @return the copy. */
  static Result from(const wh_result *r)
  {
    Result x;
    x.message_id = wh_result_message_id(r) ? wh_result_message_id(r) : "";
    x.endpoint_id = wh_result_endpoint_id(r) ? wh_result_endpoint_id(r) : "";
    x.outcome = static_cast<Outcome>(wh_result_outcome(r));
    x.attempt = wh_result_attempt(r);
    x.http_status = wh_result_http_status(r);
    if (const char *e = wh_result_error(r))
      x.error = e;
    x.next_attempt = detail::from_unix_ms(wh_result_next_attempt_ms(r));
    x.duration = std::chrono::milliseconds(wh_result_duration_ms(r));
    x.endpoint_disabled = wh_result_endpoint_disabled(r) != 0;
    return x;
  }
};

/* ------------------------------------------------------------------------ */
/* Dispatcher                                                                 */
/* ------------------------------------------------------------------------ */

/** The callback of webhook::Dispatcher::on_result(): one attempt's outcome. */
using ResultCallback = std::function<void(const Result &)>;
/** The callback of webhook::Dispatcher::on_disabled(): the endpoint and why ("410 Gone", "failing for N s"). */
using DisabledCallback = std::function<void(const std::string &endpoint_id, const std::string &reason)>;
/** The callback of webhook::Dispatcher::on_log(): a WH_LOG_* level and the message. */
using LogCallback = std::function<void(int level, const std::string &message)>;

/// @cond WEBHOOK_INTERNAL
namespace detail {

struct DispatcherCore;

/* One installed callback. The C library gets a pointer to it as userdata; it is
   deleted once the library guarantees that no thread runs it any more (when
   wh_dispatcher_on_* returns, or when the dispatcher is freed), or, when it was
   replaced from inside itself, by its own last frame on the way out. */
template <class Fn> struct Slot {
  DispatcherCore *core;
  Fn fn;
  std::atomic<int> active{0};
  std::atomic<bool> retired{false};
  Slot(DispatcherCore *c, Fn f) : core(c), fn(std::move(f)) {}
};

/* The callbacks running on this thread, innermost first (a log callback may run
   inside a result callback that called the library). */
struct Frame {
  const void *slot;
  const DispatcherCore *core;
  Frame *prev;
};
inline thread_local Frame *frames = nullptr;

inline bool running_here(const void *slot, const DispatcherCore *core) noexcept
{
  for (const Frame *f = frames; f; f = f->prev)
    if ((slot && f->slot == slot) || (!slot && f->core == core))
      return true;
  return false;
}

/* What a dispatcher owns besides its handle: it stays at one address while the
   Dispatcher object moves, because the library holds pointers into it. */
struct DispatcherCore {
  wh_dispatcher *d = nullptr;
  std::mutex set_mu; /* one callback setter at a time: each must know what it replaced */
  Slot<ResultCallback> *result = nullptr;
  Slot<DisabledCallback> *disabled = nullptr;
  Slot<LogCallback> *log = nullptr;
  std::mutex err_mu;
  std::exception_ptr first_error; /* the first exception a callback threw, not yet taken */
  std::atomic<std::size_t> errors{0};

  /* A callback threw: keep it for take_callback_error(); never let it reach C. */
  void record(std::exception_ptr e) noexcept
  {
    errors.fetch_add(1);
    try {
      std::lock_guard<std::mutex> lock(err_mu);
      if (!first_error)
        first_error = std::move(e);
    } catch (...) {
      /* counted; the exception itself cannot be kept */
    }
  }

  ~DispatcherCore()
  {
    wh_dispatcher_free(d); /* stops, joins the workers: no callback runs after it */
    delete result;
    delete disabled;
    delete log;
  }
};

/* Runs one callback for the library: marks the frame, catches everything. */
template <class Fn, class Call> void run_slot(Slot<Fn> *s, Call &&call) noexcept
{
  Frame f{s, s->core, frames};
  frames = &f;
  s->active.fetch_add(1);
  try {
    call(s->fn);
  } catch (...) {
    s->core->record(std::current_exception());
  }
  frames = f.prev;
  if (s->active.fetch_sub(1) == 1 && s->retired.load())
    delete s;
}

inline void result_trampoline(const wh_result *r, void *ud)
{
  run_slot(static_cast<Slot<ResultCallback> *>(ud), [r](ResultCallback &fn) { fn(Result::from(r)); });
}

inline void disabled_trampoline(const char *endpoint_id, const char *reason, void *ud)
{
  run_slot(static_cast<Slot<DisabledCallback> *>(ud), [endpoint_id, reason](DisabledCallback &fn) {
    fn(std::string(endpoint_id ? endpoint_id : ""), std::string(reason ? reason : ""));
  });
}

inline void log_trampoline(int level, const char *message, void *ud)
{
  run_slot(static_cast<Slot<LogCallback> *>(ud),
           [level, message](LogCallback &fn) { fn(level, std::string(message ? message : "")); });
}

/* A replaced slot: free now, unless it is running on this thread (replaced from
   inside itself); then its outermost frame frees it. No other thread runs it:
   the C setter guarantees that when it returns. */
template <class Fn> void retire(Slot<Fn> *old) noexcept
{
  if (!old)
    return;
  if (running_here(old, nullptr))
    old->retired.store(true);
  else
    delete old;
}

} // namespace detail
/// @endcond

/**
 * Delivers events to the endpoints of a registry with a pool of worker
 * threads. Configure it (set_int(), set_str(), the callbacks), start() it,
 * emit() from any thread, stop() it; the destructor stops it if needed.
 * Owns one wh_dispatcher.
 *
 * Results come two ways:
 *  - the result queue (set_int(WH_OPT_RESULT_QUEUE, n) before start):
 *    next_result() on a thread of yours, or result_fd() in an event loop. No
 *    library thread ever waits for you.
 *  - callbacks (on_result(), on_disabled(), on_log()), which run on a library
 *    worker thread. An exception a callback throws never reaches the library:
 *    it is caught, counted (callback_errors()) and kept (take_callback_error()).
 *
 * @threadsafety emit(), emit_batch(), next_result() and the queries from any
 * number of threads at once; drain() and stop() from any thread but not from
 * inside this dispatcher's own callback (they throw WH_ESTATE there); options
 * and start() from one thread; moving and destroying from one thread while no
 * other uses the object. Do not destroy a Dispatcher from inside its own
 * callback: the library cannot free a dispatcher there, so the object is left
 * running and leaked.
 */
class Dispatcher {
public:
  /**
   * Create a dispatcher for a root registry, not started (wh_dispatcher_new()).
   * It keeps the registry alive: the Registry object may be destroyed first.
   * @param reg the root registry (a tenant view throws WH_EINVAL).
   */
  explicit Dispatcher(const Registry &reg) : core_(std::make_unique<detail::DispatcherCore>())
  {
    detail::check(wh_dispatcher_new(&core_->d, reg.get()));
  }

  /** Take other's dispatcher; other is left empty. @param other the dispatcher moved from. */
  Dispatcher(Dispatcher &&other) noexcept = default;

  /** Stop and free this dispatcher, then take other's. @param other the dispatcher moved from. @return *this. */
  Dispatcher &operator=(Dispatcher &&other) noexcept
  {
    if (this != &other) {
      Dispatcher old(std::move(*this));
      core_ = std::move(other.core_);
    }
    return *this;
  }

  Dispatcher(const Dispatcher &) = delete;            ///< Move-only: one owner per dispatcher.
  Dispatcher &operator=(const Dispatcher &) = delete; ///< Move-only: one owner per dispatcher.

  /**
   * Stop without waiting, if running, and free (wh_dispatcher_free()). Undelivered
   * work stays pending in a durable store. After it no callback runs.
   */
  ~Dispatcher()
  {
    if (core_ && detail::running_here(nullptr, core_.get()))
      static_cast<void>(core_.release()); /* inside its own callback: the library cannot free it here */
  }

  /** The C handle, for calls this wrapper does not make. @return the handle, still owned by this object. */
  wh_dispatcher *get() const noexcept { return core_ ? core_->d : nullptr; }

  /** Whether this object holds a dispatcher (false once moved from). @return true when it does. */
  explicit operator bool() const noexcept { return get() != nullptr; }

  /**
   * Set an integer option before start (wh_dispatcher_set_int()).
   * @param opt   WH_OPT_WORKERS, WH_OPT_ALLOW_PRIVATE_NETWORKS, WH_OPT_RESULT_QUEUE, ...
   * @param value its value.
   * @return this dispatcher, to set more.
   */
  Dispatcher &set_int(wh_option opt, long value)
  {
    detail::check(wh_dispatcher_set_int(get(), opt, value));
    return *this;
  }

  /**
   * Set a text option before start (wh_dispatcher_set_str()).
   * @param opt   WH_OPT_RETRY_SCHEDULE, WH_OPT_USER_AGENT, WH_OPT_CA_FILE, WH_OPT_PROXY.
   * @param value its value; std::nullopt where the option allows NULL.
   * @return this dispatcher, to set more.
   */
  Dispatcher &set_str(wh_option opt, const std::optional<std::string> &value)
  {
    detail::check(wh_dispatcher_set_str(get(), opt, detail::c_str(value)));
    return *this;
  }

  /**
   * Start the workers (wh_dispatcher_start()); pending work of a durable store
   * resumes. In a child process after fork() this and every other call throws
   * WH_ESTATE: create a new Registry and Dispatcher there.
   */
  void start() { detail::check(wh_dispatcher_start(get())); }

  /**
   * Fan an event out to the matching endpoints (wh_dispatcher_emit()). Returns
   * once the message is queued (committed, with a durable store), never waiting
   * for the network.
   * @param ev the event; taken in every case, also when this throws.
   * @return the message id ("msg_...").
   */
  std::string emit(Event ev)
  {
    char id[WH_ID_MAX];
    detail::check(wh_dispatcher_emit(get(), ev.release(), id, sizeof id));
    return id;
  }

  /**
   * Emit several events in one commit, all or nothing (wh_dispatcher_emit_batch()).
   * @param evs the events; taken in every case, also when this throws.
   * @return their message ids, in order.
   */
  std::vector<std::string> emit_batch(std::vector<Event> evs)
  {
    std::vector<wh_event *> raw;
    raw.reserve(evs.size());
    std::vector<char> ids(evs.size() * WH_ID_MAX);
    for (Event &e : evs)
      raw.push_back(e.release());
    detail::check(wh_dispatcher_emit_batch(get(), raw.data(), raw.size(), ids.data(), ids.size()));
    std::vector<std::string> out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); i++)
      out.emplace_back(ids.data() + i * WH_ID_MAX);
    return out;
  }

  /**
   * Wait until no delivery is in flight or due now and the result callbacks of
   * the finished attempts have returned (wh_dispatcher_drain()).
   * @param timeout how long at most (webhook::forever: no limit); WH_ETIMEOUT after it.
   */
  void drain(std::chrono::milliseconds timeout) { detail::check(wh_dispatcher_drain(get(), detail::timeout_ms(timeout))); }

  /**
   * Stop taking events, give in-flight requests up to timeout, abort the rest
   * and join the workers (wh_dispatcher_stop()). WH_ETIMEOUT means some had to
   * be aborted (they stay pending); the dispatcher is stopped then too. The
   * result queue then ends: next_result() gives what is left, then throws WH_ESTATE.
   * @param timeout how long in-flight requests may take.
   */
  void stop(std::chrono::milliseconds timeout) { detail::check(wh_dispatcher_stop(get(), detail::timeout_ms(timeout))); }

  /** Make this the process default of webhook::emit() (wh_dispatcher_set_default()). */
  void set_default() { detail::check(wh_dispatcher_set_default(get())); }

  /**
   * Send a message again (wh_dispatcher_replay()); the dispatcher must be running.
   * @param msg_id      the message.
   * @param endpoint_id one endpoint; std::nullopt: every endpoint it had a delivery for.
   * @return how many deliveries were queued.
   */
  std::size_t replay(const std::string &msg_id, const std::optional<std::string> &endpoint_id = std::nullopt)
  {
    std::size_t n = 0;
    detail::check(wh_dispatcher_replay(get(), msg_id.c_str(), detail::c_str(endpoint_id), &n));
    return n;
  }

  /**
   * Queue again an endpoint's failed deliveries (wh_dispatcher_recover()).
   * @param endpoint_id the endpoint.
   * @param since       those that finished at or after this instant.
   * @return how many deliveries were queued.
   */
  std::size_t recover(const std::string &endpoint_id, std::chrono::system_clock::time_point since)
  {
    std::size_t n = 0;
    detail::check(wh_dispatcher_recover(get(), endpoint_id.c_str(), detail::unix_ms(since), &n));
    return n;
  }

  /**
   * Take the next outcome from the result queue (wh_dispatcher_next_result()),
   * waiting up to timeout. Throws WH_ESTATE when the queue is off, or when the
   * dispatcher is stopped and every outcome was taken (the end of the results).
   * @param timeout how long to wait (0: not at all; webhook::forever: no limit).
   * @return the outcome; std::nullopt when none came in time.
   * @threadsafety Any number of threads at once.
   */
  std::optional<Result> next_result(std::chrono::milliseconds timeout)
  {
    wh_result *r = nullptr;
    int rc = wh_dispatcher_next_result(get(), detail::timeout_ms(timeout), &r);
    if (rc == WH_ETIMEOUT)
      return std::nullopt;
    detail::check(rc);
    std::unique_ptr<wh_result, void (*)(wh_result *)> owned(r, wh_result_free);
    return Result::from(r);
  }

  /**
   * A descriptor readable while outcomes wait in the queue, for poll or epoll
   * (wh_dispatcher_result_fd()); owned by the dispatcher: do not read or close it.
   * @return the descriptor; throws WH_ESTATE when the queue is off.
   */
  int result_fd() const
  {
    int fd = wh_dispatcher_result_fd(get());
    if (fd < 0)
      detail::fail(get() ? WH_ESTATE : WH_EINVAL); /* the call said why in wh_error_last() */
    return fd;
  }

  /**
   * Set the result callback (wh_dispatcher_on_result()); an empty function
   * detaches it. At any time, also while running. When it returns, the previous
   * callback runs on no other thread and is never called again, so what it
   * captured may go. The callback runs on a library worker thread, once per
   * attempt; it may emit, but drain() and stop() throw WH_ESTATE there.
   * Setters of this dispatcher's callbacks run one at a time; one called from
   * inside a callback while another thread is setting one throws WH_ESTATE
   * rather than wait (that thread may be waiting for the callback).
   * @param fn the callback.
   */
  void on_result(ResultCallback fn) { set_slot(&detail::DispatcherCore::result, std::move(fn), "on_result"); }

  /**
   * Set the endpoint-disabled callback (wh_dispatcher_on_disabled()); as on_result().
   * @param fn the callback: the endpoint id and the reason.
   */
  void on_disabled(DisabledCallback fn) { set_slot(&detail::DispatcherCore::disabled, std::move(fn), "on_disabled"); }

  /**
   * Send log messages up to max_level to a callback (wh_dispatcher_on_log()); as
   * on_result(). It runs on a library thread, or on the thread of a call that logs.
   * @param max_level WH_LOG_ERROR..WH_LOG_DEBUG.
   * @param fn        the callback: the level and the message.
   */
  void on_log(int max_level, LogCallback fn) { set_slot(&detail::DispatcherCore::log, std::move(fn), "on_log", max_level); }

  /** How many times a callback of this dispatcher threw. @return the count since it was created. */
  std::size_t callback_errors() const noexcept { return core_ ? core_->errors.load() : 0; }

  /**
   * The first exception a callback threw that was not taken yet, to rethrow
   * with std::rethrow_exception() on a thread of yours.
   * @return it, and forget it; nullptr when there is none.
   */
  std::exception_ptr take_callback_error()
  {
    if (!core_)
      return nullptr;
    std::lock_guard<std::mutex> lock(core_->err_mu);
    return std::exchange(core_->first_error, nullptr);
  }

  /**
   * Totals since start (wh_dispatcher_stats_json()).
   * @return {"emitted","delivered","failed","retrying","attempts","in_flight",...} as JSON.
   */
  std::string stats_json() const
  {
    char *json = nullptr;
    detail::check(wh_dispatcher_stats_json(get(), &json));
    return detail::take(json);
  }

  /** One endpoint's figures (wh_dispatcher_endpoint_stats_json()). @param endpoint_id the endpoint. @return its JSON object. */
  std::string endpoint_stats_json(const std::string &endpoint_id) const
  {
    char *json = nullptr;
    detail::check(wh_dispatcher_endpoint_stats_json(get(), endpoint_id.c_str(), &json));
    return detail::take(json);
  }

  /** Prometheus text exposition, format 0.0.4 (wh_dispatcher_metrics_text()). @return the text. */
  std::string metrics_text() const
  {
    char *text = nullptr;
    detail::check(wh_dispatcher_metrics_text(get(), &text));
    return detail::take(text);
  }

private:
  std::unique_ptr<detail::DispatcherCore> core_;

  /* The C setter of each kind of callback. */
  static int install(wh_dispatcher *d, detail::Slot<ResultCallback> *s, int)
  {
    return wh_dispatcher_on_result(d, s ? detail::result_trampoline : nullptr, s);
  }
  static int install(wh_dispatcher *d, detail::Slot<DisabledCallback> *s, int)
  {
    return wh_dispatcher_on_disabled(d, s ? detail::disabled_trampoline : nullptr, s);
  }
  static int install(wh_dispatcher *d, detail::Slot<LogCallback> *s, int max_level)
  {
    return wh_dispatcher_on_log(d, max_level, s ? detail::log_trampoline : nullptr, s);
  }

  template <class Fn>
  void set_slot(detail::Slot<Fn> *detail::DispatcherCore::*which, Fn fn, const char *what, int level = 0)
  {
    if (!core_)
      throw Error(WH_EINVAL, std::string(what) + ": the dispatcher was moved from");
    detail::DispatcherCore &c = *core_;
    std::unique_lock<std::mutex> lock(c.set_mu, std::defer_lock);
    if (!detail::running_here(nullptr, &c))
      lock.lock();
    else if (!lock.try_lock())
      throw Error(WH_ESTATE, std::string(what) + ": another thread is setting a callback of this dispatcher, "
                                                 "and may be waiting for this one to return");
    std::unique_ptr<detail::Slot<Fn>> fresh(fn ? new detail::Slot<Fn>(&c, std::move(fn)) : nullptr);
    int rc = install(c.d, fresh.get(), level);
    if (rc != WH_OK)
      detail::fail(rc);
    detail::retire(std::exchange(c.*which, fresh.release()));
  }
};

/* ------------------------------------------------------------------------ */
/* Incoming webhooks                                                          */
/* ------------------------------------------------------------------------ */

/** An authentic incoming request, as webhook::Receiver::check() found it. */
struct Incoming {
  std::string id;            ///< the request's id (webhook-id, X-GitHub-Delivery, the Stripe event id, ...)
  bool seen_before = false;  ///< authentic, but seen before: a redelivery or a replay (WH_EEXIST)
};

/**
 * Checks requests that other systems send in: signatures, timestamps, replays.
 * Owns one wh_receiver.
 * @threadsafety check() and add_secret() from any number of threads at once;
 * moving and destroying from one thread while no other uses the object.
 */
class Receiver {
public:
  /**
   * Create a receiver (wh_receiver_new()).
   * @param store where the ids of requests already seen are kept: "memory:",
   *              "sqlite:PATH" or "postgresql://...".
   */
  explicit Receiver(const std::string &store = "memory:") { detail::check(wh_receiver_new(&rc_, store.c_str())); }

  /** Take other's receiver; other is left empty. @param other the receiver moved from. */
  Receiver(Receiver &&other) noexcept : rc_(std::exchange(other.rc_, nullptr)) {}

  /** Free this receiver and take other's. @param other the receiver moved from. @return *this. */
  Receiver &operator=(Receiver &&other) noexcept
  {
    if (this != &other)
      wh_receiver_free(std::exchange(rc_, std::exchange(other.rc_, nullptr)));
    return *this;
  }

  Receiver(const Receiver &) = delete;            ///< Move-only: one owner per receiver.
  Receiver &operator=(const Receiver &) = delete; ///< Move-only: one owner per receiver.

  /** Free the receiver (wh_receiver_free()). */
  ~Receiver() { wh_receiver_free(rc_); }

  /** The C handle. @return the handle, still owned by this object. */
  wh_receiver *get() const noexcept { return rc_; }

  /**
   * Accept signatures made with a secret (wh_receiver_add_secret()).
   * @param scheme "standard", "github", "stripe" or "slack".
   * @param secret the secret, as the scheme takes it.
   */
  void add_secret(const std::string &scheme, const std::string &secret)
  {
    detail::check(wh_receiver_add_secret(rc_, scheme.c_str(), secret.c_str()));
  }

  /**
   * Check one request (wh_receiver_check()). Throws WH_ESIGNATURE, WH_ETIMESTAMP,
   * WH_EINVAL (headers missing or malformed), ...; an authentic request seen
   * before is not an error: it comes back with seen_before set.
   * @param headers every header as received: any range of pairs of strings
   *                (std::map, std::vector of std::pair, ...); names match
   *                case-insensitively.
   * @param body    the raw body, as received.
   * @return the request's id, and whether it was seen before.
   */
  template <class Headers> Incoming check(const Headers &headers, std::string_view body)
  {
    std::vector<std::string> text;
    for (const auto &h : headers) {
      text.emplace_back(h.first);
      text.emplace_back(h.second);
    }
    std::vector<const char *> names, values;
    for (std::size_t i = 0; i < text.size(); i += 2) {
      names.push_back(text[i].c_str());
      values.push_back(text[i + 1].c_str());
    }
    char id[256];
    int rc = wh_receiver_check(rc_, names.data(), values.data(), names.size(), body.data(), body.size(), id,
                               sizeof id);
    if (rc != WH_OK && rc != WH_EEXIST)
      detail::fail(rc);
    return Incoming{id, rc == WH_EEXIST};
  }

private:
  wh_receiver *rc_ = nullptr;
};

/* ------------------------------------------------------------------------ */
/* The admin API                                                              */
/* ------------------------------------------------------------------------ */

/** An answer of the admin REST API (webhook::admin_handle()). */
struct AdminResponse {
  int status = 0;   ///< the HTTP status: 2xx, or a 4xx for a bad request
  std::string body; ///< the JSON answer; {"error":{"code","message"}} for a 4xx
};

/**
 * Answer one request of the admin REST API (wh_admin_handle()), as the host's
 * own HTTP server passes it after its own authentication. A bad request is a
 * 4xx answer, not an exception.
 * @param reg        the registry, or a tenant view: what the request may see.
 * @param d          the dispatcher (for /stats), or nullptr.
 * @param method     "GET", "POST", "PATCH" or "DELETE".
 * @param path       for example "/endpoints/ep_123?limit=10".
 * @param body       the request body (JSON), or empty.
 * @return the status and the JSON answer.
 */
inline AdminResponse admin_handle(const Registry &reg, const Dispatcher *d, const std::string &method,
                                  const std::string &path, std::string_view body = {})
{
  AdminResponse out;
  char *text = nullptr;
  detail::check(wh_admin_handle(reg.get(), d ? d->get() : nullptr, method.c_str(), path.c_str(), body.data(),
                                body.size(), &out.status, &text));
  out.body = detail::take(text);
  return out;
}

} // namespace webhook

#endif /* WEBHOOK_WEBHOOK_HPP */
