/*
 * Incoming webhooks: the receiver (receiver.c), the four signature schemes
 * (schemes.c) and the stores of the ids already seen (seen*.c).
 *
 * A check goes: the headers the schemes read are collected once, with their
 * limits (wh__in_collect); the scheme is told by its signature header; the
 * scheme checks timestamp and signature against each of its secrets and names
 * the request's id (wh__in_verify); only then is the id recorded as seen.
 */
#ifndef WEBHOOK_INCOMING_H
#define WEBHOOK_INCOMING_H

#include "internal.h"

/* ---- schemes (schemes.c) --------------------------------------------------- */

typedef enum { WH__IN_STANDARD, WH__IN_GITHUB, WH__IN_STRIPE, WH__IN_SLACK, WH__IN_NSCHEMES } wh__in_scheme;

/* Headers that any scheme reads. */
enum {
  WH__H_WEBHOOK_ID, WH__H_WEBHOOK_TS, WH__H_WEBHOOK_SIG, /* Standard Webhooks */
  WH__H_SVIX_ID, WH__H_SVIX_TS, WH__H_SVIX_SIG,          /* the same, as Svix names them */
  WH__H_GITHUB_SIG, WH__H_GITHUB_DELIVERY,
  WH__H_STRIPE_SIG,
  WH__H_SLACK_SIG, WH__H_SLACK_TS,
  WH__H_COUNT
};

/* At most this many headers in one request: the work of a check is bounded. */
#define WH__IN_MAX_HEADERS 256
/* A request's id: 1..255 bytes of printable ASCII without spaces. id_out of
   wh_receiver_check never needs more than WH__IN_ID_MAX bytes. */
#define WH__IN_ID_MAX 256
/* Secrets of one scheme in one receiver (rotation needs two or three). */
#define WH__IN_MAX_SECRETS 16
/* How long a seen id is kept, counted from the check. A timestamped request is
   accepted while |now - ts| <= 300 s, so a replay can pass the timestamp check
   until 600 s after the check at most: 900 s leaves 300 s of margin (clock steps,
   servers whose clocks differ). GitHub signs no timestamp: a captured request
   stays valid for ever, so its delivery id is kept a week (GitHub redelivers
   for 3 days). */
#define WH__IN_KEEP_TIMESTAMPED_S 900
#define WH__IN_KEEP_GITHUB_S (7 * 86400)

typedef struct {
  const char *v[WH__H_COUNT]; /* NULL when absent */
} wh__in_headers;

/* Collect the headers the schemes read, case-insensitively by name. WH_EINVAL
   for more than WH__IN_MAX_HEADERS headers, a NULL name or value, a known header
   sent twice with different values, over its length limit, or holding anything
   but printable ASCII. Other headers are not looked at beyond their name. */
int wh__in_collect(const char *const *names, const char *const *values, size_t n, wh__in_headers *out);

/* "standard", "github", "stripe", "slack"; -1 (and a WH_EINVAL message) otherwise. */
int wh__in_scheme_from_name(const char *name);
const char *wh__in_scheme_name(int scheme);
/* The header whose presence says a request is signed with scheme. */
int wh__in_scheme_signed(const wh__in_headers *h, int scheme);
/* The signature header's name, for messages. */
const char *wh__in_scheme_sig_header(int scheme);

typedef struct {
  unsigned char *key;
  size_t len;
} wh__in_key;

/* Turn a secret into the HMAC key of scheme: "standard" takes "whsec_" + base64
   (the key is the decoded bytes), the others the shared text itself (1..1024
   bytes, no control characters, no leading or trailing space). */
int wh__in_key_make(int scheme, const char *secret, wh__in_key *out);
void wh__in_key_free(wh__in_key *k);

/* Check a request signed with scheme: its other headers present (WH_EINVAL),
   its timestamp within 300 s of now (WH_ETIMESTAMP), one of its signatures made
   by one of keys (WH_ESIGNATURE). On WH_OK id receives the request's id: the id
   header, or for Stripe the event id of the body, or one derived from the
   timestamp and the signature (see docs/guide.md, "Incoming webhooks"). */
int wh__in_verify(int scheme, const wh__in_headers *h, const wh__in_key *keys, size_t nkeys, const void *body,
                  size_t body_len, int64_t now, char id[WH__IN_ID_MAX]);

/* ---- stores of seen ids (seen.c, seen_sqlite.c, seen_pg.c) -------------------------- */

typedef struct wh__seen wh__seen;
typedef struct {
  /* Record key as seen until now + keep_s, atomically with the look-up:
     WH_OK when it was not seen (or its record has expired), WH_EEXIST when a
     live record exists, WH_ESTORE (with a message) when the store failed. */
  int (*add)(wh__seen *s, const char *key, int64_t now, int64_t keep_s);
  void (*close)(wh__seen *s);
} wh__seen_ops;
struct wh__seen {
  const wh__seen_ops *ops;
};

/* Open the store of a store string (wh_registry_open's syntax). */
int wh__seen_open(const char *store, wh__seen **out);

/* The memory store: at most cap ids; beyond, the oldest is forgotten. */
#define WH__SEEN_MEMORY_CAP 100000
int wh__seen_memory_open(size_t cap, wh__seen **out);
/* Ids held now, and ids forgotten early because of the cap (for tests). */
void wh__seen_memory_stats(wh__seen *s, size_t *held, size_t *evicted);
int wh__seen_sqlite_open(const char *path, wh__seen **out);
int wh__seen_pg_open(const char *conninfo, wh__seen **out);
/* Rows deleted at most per purge, and purges at most once a second per store:
   the work of expiring rows is bounded per check. */
#define WH__SEEN_PURGE_ROWS 500

/* ---- the receiver (receiver.c) ------------------------------------------------------ */

/* wh_receiver_check at a given clock (unix seconds), for tests. */
int wh__receiver_check_at(wh_receiver *rc, const char *const *header_names, const char *const *header_values,
                          size_t n_headers, const void *body, size_t body_len, char *id_out, size_t id_len,
                          int64_t now);
wh__seen *wh__receiver_seen(wh_receiver *rc);

#endif /* WEBHOOK_INCOMING_H */
