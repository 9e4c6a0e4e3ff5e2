/* Store backends behind the registry: where endpoints, messages, deliveries
   and attempts live. See store.c (the store string) and the backends beside it (memory.c, sqlite.c, postgres.c). */
#ifndef WEBHOOK_STORE_H
#define WEBHOOK_STORE_H

#include "internal.h"

typedef enum { WH__STORE_MEMORY, WH__STORE_SQLITE, WH__STORE_POSTGRES } wh__store_kind;

typedef struct {
  wh__store_kind kind;
  char *target; /* sqlite: the file path; postgres: the conninfo URI; memory: NULL */
} wh__store_spec;

/* Parse the store argument of wh_registry_open: NULL, "", "memory:",
   "sqlite:PATH" (PATH non-empty, no NUL, at most 4096 bytes), or
   "postgresql://..." / "postgres://...". WH_EINVAL with a message otherwise. */
int wh__store_spec_parse(const char *store, wh__store_spec *out);
void wh__store_spec_free(wh__store_spec *spec);

/* One emitted event: its id and the exact bytes sent, shared by its deliveries
   and by the memory store's log. */
#define WH__MSG_ID_MAX 32 /* "msg_" + 27 characters + NUL: ids come from wh__make_id */

/* Message flags, kept by the stores with the message. */
enum {
  WH__MSG_TEST = 1,        /* a test event: one attempt, also to a disabled endpoint, no effect on its health */
  WH__MSG_OPERATIONAL = 2  /* an operational event (webhook.*): its own delivery sets off none (delivery/ops.c) */
};

typedef struct wh__msg {
  atomic_int refs;
  uint8_t flags;             /* WH__MSG_*; in the padding after refs */
  size_t len;
  int64_t created_ms;
  const char *type;          /* "people.CREATE", stored after the body */
  char id[WH__MSG_ID_MAX];
  char body[];               /* NUL-terminated, then the type */
} wh__msg;

wh__msg *wh__msg_new(const char *id, const char *type, const char *body, size_t len, int64_t created_ms);
void wh__msg_ref(wh__msg *m);
/* The key deliveries of m to an ordered endpoint are ordered by: its resource_id
   as written in the envelope (escaped JSON text, without the quotes), pointing
   into m's body. 0 when the event has no resource_id (then it is not ordered). */
int wh__msg_order_key(const wh__msg *m, const char **key, size_t *len);
void wh__msg_unref(wh__msg *m);

/* Where a delivery stands, as stored. */
enum { WH__DLV_PENDING = 0, WH__DLV_DELIVERED = 1, WH__DLV_FAILED = 2 };

/* A delivery's durable state: what survives a restart. */
typedef struct {
  int64_t id;           /* the store's key */
  char ep_id[WH_ID_MAX];
  int attempt;          /* attempts made */
  int retries_used;     /* schedule entries consumed */
  int fast_retry_used;
  int ordered;          /* claim: to an ordered endpoint, one of a chain (see WH_EP_ORDERED) */
  int64_t due_ms;       /* wall clock */
} wh__dlv_state;

/* One attempt, for the log. */
typedef struct {
  int attempt;
  int64_t at_ms;        /* wall clock, when it started */
  int64_t duration_ms;
  int http_status;
  const char *error;    /* NULL when delivered */
  const char *response; /* the first 20,000 bytes of the answer, may be NULL */
  size_t response_len;
} wh__attempt_rec;

/* The outbox (PostgreSQL): turn a row the host wrote into a message and its
   endpoints. Runs inside the store's transaction; *ep_ids is malloc'ed. */
typedef struct {
  const char *resource_type, *event_type, *resource, *tenant_id, *user_id, *resource_id;
  int64_t event_time_us;
} wh__outbox_row;
typedef int (*wh__outbox_fn)(void *ud, const wh__outbox_row *row, wh__msg **m, char (**ep_ids)[WH_ID_MAX],
                             size_t *n);

/* One message and its deliveries, as enqueue takes them. */
typedef struct {
  wh__msg *m;
  const char *const *ep_ids; /* the endpoints it goes to */
  size_t n;
  int64_t *ids;              /* receives the store's key of each delivery */
  const unsigned char *ordered; /* NULL, or per delivery 1: to an ordered endpoint (WH_EP_ORDERED):
                                   kept unclaimed whatever the owner, in the chain of the message's
                                   order key (wh__msg_order_key), for claim to hand out in turn */
} wh__enq;

/* A delivery handed back by claim: its state and its message. */
typedef int (*wh__claim_cb)(void *ud, wh__msg *m, const wh__dlv_state *st);

typedef struct wh__store wh__store;
struct wh__log_filter;

/* An endpoint as stored: the lists are JSON text (see wh__endpoint_encode). */
typedef struct {
  const char *id, *tenant_id, *name, *url, *description, *disabled_reason;
  int enabled;
  int64_t created_ms;
  const char *filters, *headers, *secrets, *settings;
} wh__endpoint_row;

/* registry.c: an endpoint to and from its stored form. */
int wh__endpoint_encode(const wh__endpoint *ep, char **filters, char **headers, char **secrets, char **settings);
int wh__endpoint_decode(const wh__endpoint_row *row, wh__endpoint **out);

typedef struct wh__store_ops {
  const char *name;
  int durable; /* survives the process: no queue limit, deliveries may wait on disk */
  void (*close)(wh__store *s);

  /* Endpoints: loaded once at open, in the order they were added, then written
     through on every change. */
  int (*load_endpoints)(wh__store *s, int (*add)(void *ud, const wh__endpoint_row *row), void *ud);
  int (*put_endpoint)(wh__store *s, const wh__endpoint *ep);
  int (*delete_endpoint)(wh__store *s, const char *id);

  /* Claims: a dispatcher holding deliveries in memory marks them with its
     owner token (never 0), so no other dispatcher takes them; 0 is unclaimed. */

  /* Accept messages, each with one delivery per endpoint, all or nothing;
     durable stores return after the commit (one for all of them). owner:
     claimed by that dispatcher, or 0. Fills msgs[k].ids. */
  int (*enqueue)(wh__store *s, const wh__enq *msgs, size_t nmsgs, int64_t owner);
  /* Hand out unclaimed pending deliveries due by horizon_ms, earliest first,
     at most max, claiming them for owner. */
  int (*claim)(wh__store *s, int64_t owner, int64_t horizon_ms, size_t max, wh__claim_cb cb, void *ud);
  /* Record an attempt (a may be NULL: no attempt, only a new state) and the
     delivery's new state and claim. May be asynchronous: a crash can lose the
     last records, which only means a delivery is made again (at least once). */
  void (*record)(wh__store *s, const wh__dlv_state *st, const wh__attempt_rec *a, int state, int64_t owner);
  /* Unclaim everything owner holds (its dispatcher stopped). */
  void (*release)(wh__store *s, int64_t owner);
  /* Wait until asynchronous records are written. */
  void (*flush)(wh__store *s);

  /* The attempt log. f: NULL (everything), or a tenant view's filter (see log.h). */
  int (*message_json)(wh__store *s, const char *msg_id, const struct wh__log_filter *f, char **json);
  int (*failed_json)(wh__store *s, const char *ep_id, int64_t since_ms, size_t limit, char **json);
  /* Make deliveries pending again, due now, unclaimed: for msg_id to ep_id (NULL:
     to every endpoint it had), or every failed one of ep_id finished since since_ms
     (msg_id NULL). New deliveries are created where the message had none for ep_id.
     *count: how many. */
  int (*requeue)(wh__store *s, const char *msg_id, const char *ep_id, int64_t since_ms, size_t *count);
  /* Drop delivered messages (every delivery delivered) finished before before_ms. */
  int (*purge)(wh__store *s, int64_t before_ms, size_t *count);

  /* Shared stores only (NULL elsewhere). */
  /* Extend owner's claims by the lease (claims of a process that stops renewing expire). */
  int (*renew)(wh__store *s, int64_t owner);
  /* Turn up to max rows of the outbox into messages: see wh__outbox_fn. */
  int (*outbox)(wh__store *s, size_t max, wh__outbox_fn fn, void *ud, size_t *count);
  /* Call fn(ud) when another process (or the outbox) signals new work; NULL to stop. */
  void (*on_work)(wh__store *s, void (*fn)(void *ud), void *ud);
  /* A number that changes when another process changes an endpoint. */
  uint64_t (*endpoints_version)(wh__store *s);

  /* Durable stores (NULL for memory): how many times writes nobody waits for
     (attempt records) failed so far, and with why non-NULL the last error, so
     that the dispatcher can tell the host's log. */
  uint64_t (*failures)(wh__store *s, char *why, size_t len);
} wh__store_ops;

struct wh__store {
  const wh__store_ops *ops;
  int64_t lease_ms; /* how long a claim lasts without renewal (shared stores) */
  unsigned fork_gen; /* durable stores: of the process that opened it (see fork.c) */
};

/* A durable store opened by the parent of this process (after fork): its
   writer thread and its connections are the parent's, so every operation
   refuses with WH_ESTATE and closing it leaves them alone. A memory store is a
   plain copy and keeps working. */
static inline bool wh__store_forked(const wh__store *s) { return s->ops->durable && wh__forked(s->fork_gen); }
int wh__store_forked_fail(const char *label);

int wh__store_open(const wh__store_spec *spec, wh__store **out);
/* Hold PATH.lock shared while a SQLite store is open (filelock.c); *alone: no
   other store had the file open, so the claims of dead processes may be freed. */
int wh__file_lock(const char *path, int *fd_out, int *alone);
void wh__file_unlock(int fd);
int wh__store_memory_open(wh__store **out);
int wh__store_sqlite_open(const char *path, wh__store **out);
int wh__store_pg_open(const char *conninfo, wh__store **out);

#endif
