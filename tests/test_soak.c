/* Soak (issue 5, item 5).
 *
 * 8 host threads emit WH_SOAK_EVENTS events (default 1,000,000) in total to a
 * mix of endpoints on loopback (a small counting HTTP server of its own, see
 * below, and the support library's blackhole listener):
 *   healthy-all  answers 204, no filter: gets every event;
 *   healthy-ok   answers 204, subscribed to soak.OK only;
 *   failing      answers 500, subscribed to soak.FAIL (one event in 50);
 *   hanging      a listener that never answers, subscribed to soak.HANG
 *                (8 events per pass whatever the total: bounded in count,
 *                and in time by WH_OPT_TIMEOUT_MS = 1000).
 * The retry schedule is "0.05,0.05" (3 attempts), the memory store's queue
 * limit is large enough for everything at once.
 *
 * At the end every delivery is accounted for, one by one: each (message,
 * matching endpoint) ended exactly once, DELIVERED for the healthy ones with
 * no retry, FAILED after exactly 3 attempts for the failing and hanging ones,
 * nothing went to an endpoint that does not match, and the receiver saw
 * exactly one request per delivered delivery (no duplicates) and 3 per failed
 * one. (An attempt to a healthy endpoint that times out on a starved machine
 * is a fault: reported, bounded by WH_SOAK_MAX_FAULT_PPM per million attempts
 * (100; 1000 under sanitizers, 100000 under valgrind), and the duplicate it
 * may cause allowed.)
 * A smaller pass (WH_SOAK_SQLITE_EVENTS, default a tenth) does the same
 * on the SQLite store, whose log must list every failed delivery.
 *
 * Resident memory (VmRSS, after malloc_trim) must come back near where it was
 * before the passes once the dispatchers, registries and receivers are freed.
 * That check is skipped under sanitizers and valgrind, whose allocators keep
 * memory on purpose (WH_SOAK_CHECK_RSS=0/1 overrides).
 *
 * Leaks: run a small count under valgrind --leak-check=full or LeakSanitizer.
 *
 * Environment: WH_SOAK_EVENTS (1000000), WH_SOAK_SQLITE_EVENTS (a tenth of
 * it), WH_SOAK_DEADLINE_S (600: how long a pass may wait for its deliveries
 * to end), WH_SOAK_CHECK_RSS, WH_SOAK_MAX_FAULT_PPM, WH_SOAK_VERBOSE=1
 * (memory at each step).
 */
#include <webhook/webhook.h>

#include "receiver.h"
#include "support/check.h"
#include "support/harness.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define THREADS 8
#define FAIL_EVERY 50
#define HANG_PER_THREAD 1
#define SCHEDULE "0.05,0.05"
#define ATTEMPTS 3
#define TIMEOUT_MS 1000

enum { EP_ALL, EP_OK, EP_FAIL, EP_HANG, NEP };
static const char *const ep_names[NEP] = {"healthy-all", "healthy-ok", "failing", "hanging"};
static const char *const ep_paths[NEP] = {"/all", "/ok", "/fail", "/hang"};
enum { T_OK, T_FAIL, T_HANG, NTYPES };
static const char *const type_names[NTYPES] = {"OK", "FAIL", "HANG"};
static const unsigned type_mask[NTYPES] = {1u << EP_ALL | 1u << EP_OK, 1u << EP_ALL | 1u << EP_FAIL,
                                           1u << EP_ALL | 1u << EP_HANG};

/* ---- per-delivery accounting ------------------------------------------------------- */

/* One emitted message: which endpoints it must reach, and what each reported. */
typedef struct {
  char id[32];
  uint8_t expect;     /* endpoint bit mask, set by the emitter */
  uint8_t delivered;  /* endpoint bit mask, DELIVERED seen */
  uint8_t fin[NEP];   /* DELIVERED or FAILED results, saturating */
  uint8_t retry[NEP]; /* RETRYING results, saturating */
} track;

#define SHARDS 256
typedef struct {
  pthread_mutex_t mu;
  track *v;
  size_t cap, n;
} shard;
static shard shards[SHARDS];

static uint64_t hash_str(const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* Sized for `messages` at most half full; every page touched now, so that
   the table is part of the resident baseline. */
static void tracks_init(size_t messages)
{
  size_t per = 64;
  while (per < messages * 2 / SHARDS + 16)
    per *= 2;
  for (int i = 0; i < SHARDS; i++) {
    pthread_mutex_init(&shards[i].mu, NULL);
    shards[i].v = calloc(per, sizeof(track));
    if (!shards[i].v)
      abort();
    /* Volatile: a memset after calloc may be dropped by the compiler. */
    for (size_t b = 0; b < per * sizeof(track); b += 4096)
      ((volatile char *)shards[i].v)[b] = 0;
    shards[i].cap = per;
    shards[i].n = 0;
  }
}

static void tracks_clear(void)
{
  for (int i = 0; i < SHARDS; i++) {
    memset(shards[i].v, 0, shards[i].cap * sizeof(track));
    shards[i].n = 0;
  }
}

static void tracks_free(void)
{
  for (int i = 0; i < SHARDS; i++) {
    free(shards[i].v);
    pthread_mutex_destroy(&shards[i].mu);
  }
}

static track *slot_in(track *v, size_t cap, const char *id, uint64_t h)
{
  for (size_t i = (h >> 8) & (cap - 1);; i = (i + 1) & (cap - 1))
    if (!v[i].id[0] || strcmp(v[i].id, id) == 0)
      return &v[i];
}

/* The entry for id, created if new. Caller holds the shard's lock. */
static track *track_get(shard *s, const char *id, uint64_t h)
{
  if ((s->n + 1) * 2 > s->cap) {
    size_t cap = s->cap * 2;
    track *v = calloc(cap, sizeof *v);
    if (!v)
      abort();
    for (size_t i = 0; i < s->cap; i++)
      if (s->v[i].id[0])
        *slot_in(v, cap, s->v[i].id, hash_str(s->v[i].id)) = s->v[i];
    free(s->v);
    s->v = v;
    s->cap = cap;
  }
  track *t = slot_in(s->v, s->cap, id, h);
  if (!t->id[0]) {
    snprintf(t->id, sizeof t->id, "%s", id);
    s->n++;
  }
  return t;
}

static void sat_inc(uint8_t *c)
{
  if (*c < 255)
    (*c)++;
}

/* ---- a counting HTTP server ----------------------------------------------------------- */

/* The scripted receiver (support/receiver.h) keeps every request it gets,
   about 5 KiB each: a million events would take ~10 GiB. The soak needs only
   counts, so it answers with this: HTTP/1.1 keep-alive, one thread per
   connection, 204 on every path but /fail (500), a count per path. */

typedef struct sconn {
  struct srv *s;
  int fd;
  pthread_t thread;
  atomic_int done;
} sconn;

typedef struct srv {
  int lfd;
  unsigned port;
  pthread_t acceptor;
  atomic_int stop;
  pthread_mutex_t mu;
  sconn **conns;
  size_t nconns, capconns;
  atomic_long count[NEP], other, malformed;
  atomic_long connections;
} srv;

static int path_index(const char *p, size_t n)
{
  for (int k = 0; k < NEP; k++)
    if (strlen(ep_paths[k]) == n && memcmp(ep_paths[k], p, n) == 0)
      return k;
  return -1;
}

static int send_all(int fd, const char *p, size_t n)
{
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void *srv_conn_main(void *arg)
{
  sconn *c = arg;
  srv *s = c->s;
  static const char ok[] = "HTTP/1.1 204 No Content\r\n\r\n";
  static const char fail[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 12\r\n\r\nsoak failure";
  size_t cap = 1 << 16, have = 0;
  char *buf = malloc(cap);
  while (buf) {
    char *end;
    while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
      if (have == cap)
        goto out; /* headers larger than 64 KiB */
      ssize_t r = recv(c->fd, buf + have, cap - have, 0);
      if (r <= 0)
        goto out;
      have += (size_t)r;
    }
    size_t hlen = (size_t)(end + 4 - buf), clen = 0;
    /* "POST /path HTTP/1.1", then headers; only Content-Length matters. */
    char *sp1 = memchr(buf, ' ', hlen), *sp2 = sp1 ? memchr(sp1 + 1, ' ', hlen - (size_t)(sp1 + 1 - buf)) : NULL;
    if (!sp2) {
      atomic_fetch_add(&s->malformed, 1);
      goto out;
    }
    for (char *line = memchr(buf, '\n', hlen); line && line < end; line = memchr(line + 1, '\n', (size_t)(end - line))) {
      if (strncasecmp(line + 1, "content-length:", 15) == 0)
        clen = strtoul(line + 16, NULL, 10);
    }
    if (hlen + clen > cap) {
      atomic_fetch_add(&s->malformed, 1);
      goto out;
    }
    while (have < hlen + clen) {
      ssize_t r = recv(c->fd, buf + have, cap - have, 0);
      if (r <= 0)
        goto out;
      have += (size_t)r;
    }
    int k = path_index(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    if (k < 0)
      atomic_fetch_add(&s->other, 1);
    else
      atomic_fetch_add(&s->count[k], 1);
    if (k == EP_FAIL ? send_all(c->fd, fail, sizeof fail - 1) : send_all(c->fd, ok, sizeof ok - 1))
      goto out;
    memmove(buf, buf + hlen + clen, have - hlen - clen);
    have -= hlen + clen;
  }
out:
  free(buf);
  atomic_store(&c->done, 1);
  return NULL;
}

/* Join the connections that ended (all of them when `all`, after shutting them down). */
static void srv_reap(srv *s, int all)
{
  pthread_mutex_lock(&s->mu);
  size_t keep = 0;
  for (size_t i = 0; i < s->nconns; i++) {
    sconn *c = s->conns[i];
    if (all)
      shutdown(c->fd, SHUT_RDWR);
    if (all || atomic_load(&c->done)) {
      pthread_join(c->thread, NULL);
      close(c->fd);
      free(c);
    } else {
      s->conns[keep++] = c;
    }
  }
  s->nconns = keep;
  pthread_mutex_unlock(&s->mu);
}

static void *srv_accept_main(void *arg)
{
  srv *s = arg;
  while (!atomic_load(&s->stop)) {
    struct pollfd pfd = {.fd = s->lfd, .events = POLLIN};
    if (poll(&pfd, 1, 100) <= 0) {
      srv_reap(s, 0);
      continue;
    }
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
      continue;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sconn *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    c->s = s;
    c->fd = fd;
    pthread_mutex_lock(&s->mu);
    if (s->nconns == s->capconns) {
      size_t cap = s->capconns ? s->capconns * 2 : 64;
      sconn **v = realloc(s->conns, cap * sizeof *v);
      if (!v)
        abort();
      s->conns = v;
      s->capconns = cap;
    }
    if (pthread_create(&c->thread, NULL, srv_conn_main, c) != 0) {
      pthread_mutex_unlock(&s->mu);
      close(fd);
      free(c);
      continue;
    }
    s->conns[s->nconns++] = c;
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&s->connections, 1);
  }
  return NULL;
}

static srv *srv_start(void)
{
  srv *s = calloc(1, sizeof *s);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  int one = 1;
  if (!s || (s->lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
    abort();
  setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(s->lfd, (struct sockaddr *)&a, sizeof a) || listen(s->lfd, 512) ||
      getsockname(s->lfd, (struct sockaddr *)&a, &al))
    abort();
  s->port = ntohs(a.sin_port);
  pthread_mutex_init(&s->mu, NULL);
  if (pthread_create(&s->acceptor, NULL, srv_accept_main, s) != 0)
    abort();
  return s;
}

static void srv_url(const srv *s, const char *path, char *buf, size_t len)
{
  snprintf(buf, len, "http://127.0.0.1:%u%s", s->port, path);
}

static void srv_free(srv *s)
{
  atomic_store(&s->stop, 1);
  pthread_join(s->acceptor, NULL);
  close(s->lfd);
  srv_reap(s, 1);
  free(s->conns);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

/* ---- one pass ------------------------------------------------------------------------- */

typedef struct {
  wh_dispatcher *d;
  char ep_ids[NEP][WH_ID_MAX];
  atomic_long results[NEP][4]; /* by outcome */
  atomic_long finals;          /* DELIVERED + FAILED */
  atomic_long unknown_ep, bad_id, odd_attempt, odd_fail, odd_hang, odd_ok;
  atomic_long emitted[NTYPES], emit_errors;
  atomic_llong max_emit_us; /* the slowest wh_dispatcher_emit */
  atomic_llong last_healthy_ms; /* when the last healthy delivery ended */
  /* Attempts to a healthy endpoint that timed out (the worker did not read the
     answer within WH_OPT_TIMEOUT_MS, e.g. on a starved machine): a fault, after
     which a duplicate request is allowed (at least once). */
  atomic_long healthy_timeouts;
  atomic_llong first_healthy_timeout_ms;
  /* The same at the failing endpoint: its attempt then may or may not have
     reached the receiver. */
  atomic_long fail_timeouts;
  atomic_llong first_fail_timeout_ms;
  char first_odd[256];
  atomic_int have_first_odd;
  long per_thread;
  atomic_long next_index;
} pass;

static void odd(pass *p, atomic_long *counter, const char *fmt, const char *a, const char *b, long x)
{
  atomic_fetch_add(counter, 1);
  if (atomic_exchange(&p->have_first_odd, 1) == 0)
    snprintf(p->first_odd, sizeof p->first_odd, fmt, a ? a : "(null)", b ? b : "(null)", x);
}

static void on_result(const wh_result *r, void *ud)
{
  pass *p = ud;
  const char *ep = wh_result_endpoint_id(r), *msg = wh_result_message_id(r), *err = wh_result_error(r);
  int k = -1;
  for (int i = 0; i < NEP; i++)
    if (ep && strcmp(ep, p->ep_ids[i]) == 0)
      k = i;
  int o = wh_result_outcome(r);
  if (k < 0 || o < WH_DELIVERED || o > WH_FAILED) {
    odd(p, &p->unknown_ep, "result for endpoint %s (message %s), outcome %ld", ep, msg, o);
    return;
  }
  atomic_fetch_add(&p->results[k][o], 1);
  if (o != WH_RETRYING)
    atomic_fetch_add(&p->finals, 1);
  int attempt = wh_result_attempt(r);
  if (o == WH_FAILED && attempt != ATTEMPTS)
    odd(p, &p->odd_attempt, "FAILED at %s, message %s, after %ld attempts", ep_names[k], msg, attempt);
  int timed_out = err && strstr(err, "timeout") && wh_result_http_status(r) == 0;
  if (k == EP_FAIL && timed_out) {
    /* A starved machine: like a healthy endpoint's timeout, a fault (bounded below). */
    if (atomic_fetch_add(&p->fail_timeouts, 1) == 0)
      atomic_store(&p->first_fail_timeout_ms, h_mono_ms());
  } else if (k == EP_FAIL && wh_result_http_status(r) != 500) {
    odd(p, &p->odd_fail, "failing endpoint: %s (message %s), status %ld", err, msg, wh_result_http_status(r));
  }
  if (k == EP_HANG && (!err || !strstr(err, "timeout")))
    odd(p, &p->odd_hang, "hanging endpoint: \"%s\" (message %s), status %ld", err, msg, wh_result_http_status(r));
  if (k == EP_ALL || k == EP_OK)
    atomic_store(&p->last_healthy_ms, h_mono_ms());
  if ((k == EP_ALL || k == EP_OK) && o == WH_RETRYING && err && strstr(err, "timeout") &&
      wh_result_http_status(r) == 0) {
    if (atomic_fetch_add(&p->healthy_timeouts, 1) == 0)
      atomic_store(&p->first_healthy_timeout_ms, h_mono_ms());
  } else if ((k == EP_ALL || k == EP_OK) && o != WH_DELIVERED) {
    odd(p, &p->odd_ok, "healthy endpoint: \"%s\" (message %s), status %ld", err, msg, wh_result_http_status(r));
  }
  if (!msg || strlen(msg) >= sizeof((track *)0)->id) {
    odd(p, &p->bad_id, "message id %s at %s (%ld)", msg, ep_names[k], 0);
    return;
  }
  uint64_t h = hash_str(msg);
  shard *s = &shards[h % SHARDS];
  pthread_mutex_lock(&s->mu);
  track *t = track_get(s, msg, h);
  if (o == WH_RETRYING) {
    sat_inc(&t->retry[k]);
  } else {
    sat_inc(&t->fin[k]);
    if (o == WH_DELIVERED)
      t->delivered |= (uint8_t)(1u << k);
  }
  pthread_mutex_unlock(&s->mu);
}

static wh_event *soak_event(int type, long n)
{
  wh_event *ev = h_person_event("soak", type_names[type]);
  char rid[32];
  snprintf(rid, sizeof rid, "soak-%ld", n);
  wh_event_set_resource_id(ev, rid);
  return ev;
}

static void *emitter(void *arg)
{
  pass *p = arg;
  char msg[WH_ID_MAX];
  for (long i = 0; i < p->per_thread; i++) {
    long n = atomic_fetch_add(&p->next_index, 1);
    int type = i < HANG_PER_THREAD ? T_HANG : n % FAIL_EVERY == FAIL_EVERY - 1 ? T_FAIL : T_OK;
    wh_event *ev = soak_event(type, n);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = wh_dispatcher_emit(p->d, ev, msg, sizeof msg);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long long us = (long long)(b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
    for (long long cur = atomic_load(&p->max_emit_us); us > cur && !atomic_compare_exchange_weak(&p->max_emit_us, &cur, us);)
      ;
    if (rc != WH_OK) {
      if (atomic_fetch_add(&p->emit_errors, 1) < 5)
        fprintf(stderr, "soak: emit: %s (%s)\n", wh_strerror(rc), wh_error_last());
      continue;
    }
    atomic_fetch_add(&p->emitted[type], 1);
    uint64_t h = hash_str(msg);
    shard *s = &shards[h % SHARDS];
    pthread_mutex_lock(&s->mu);
    track_get(s, msg, h)->expect = (uint8_t)type_mask[type];
    pthread_mutex_unlock(&s->mu);
  }
  return NULL;
}

static long count_in(const char *json, const char *needle)
{
  long n = 0;
  for (const char *q = json; json && (q = strstr(q, needle)); q++)
    n++;
  return n;
}

/* Check every delivery of the pass; returns the number of deliveries made. */
static long account(pass *p, const char *label)
{
  long lost = 0, dup = 0, stray = 0, unexpected_outcome = 0, wrong_retries = 0, orphan = 0, shown = 0;
  long messages = 0;
  for (int si = 0; si < SHARDS; si++) {
    shard *s = &shards[si];
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->cap; i++) {
      const track *t = &s->v[i];
      if (!t->id[0])
        continue;
      messages++;
      if (!t->expect) {
        orphan++; /* a result for a message no emit accepted */
        continue;
      }
      for (int k = 0; k < NEP; k++) {
        int want = (t->expect >> k) & 1, healthy = k == EP_ALL || k == EP_OK;
        const char *why = NULL;
        if (!want) {
          if (t->fin[k] || t->retry[k])
            stray++, why = "went to an endpoint that does not match";
        } else if (t->fin[k] == 0) {
          lost++, why = "never ended";
        } else if (t->fin[k] > 1) {
          dup++, why = "ended more than once";
        } else if (healthy != ((t->delivered >> k) & 1)) {
          unexpected_outcome++, why = healthy ? "healthy but not delivered" : "delivered by a failing endpoint";
        } else if (healthy ? t->retry[k] > ATTEMPTS - 1 : t->retry[k] != ATTEMPTS - 1) {
          wrong_retries++, why = "wrong number of retries";
        }
        if (why && shown++ < 5)
          fprintf(stderr, "soak %s: message %s at %s: %s (final %d, retrying %d)\n", label, t->id, ep_names[k],
                  why, t->fin[k], t->retry[k]);
      }
    }
    pthread_mutex_unlock(&s->mu);
  }
  CHECK_INT(lost, 0);
  CHECK_INT(dup, 0);
  CHECK_INT(stray, 0);
  CHECK_INT(unexpected_outcome, 0);
  CHECK_INT(wrong_retries, 0);
  CHECK_INT(orphan, 0);
  long ev = atomic_load(&p->emitted[T_OK]) + atomic_load(&p->emitted[T_FAIL]) + atomic_load(&p->emitted[T_HANG]);
  CHECK_INT(messages, ev);
  return messages;
}

static int verbose;
static long max_fault_ppm;

/* With WH_SOAK_VERBOSE=1: where the memory is at a step of a pass. */
static void mem_note(const char *label, const char *step)
{
  if (!verbose)
    return;
  struct mallinfo2 m = mallinfo2();
  printf("soak %s: %-28s heap in use %8zu KiB, resident %8ld KiB\n", label, step, m.uordblks / 1024,
         h_status_kib("VmRSS:"));
}

static int64_t env_long(const char *name, int64_t dflt)
{
  const char *v = getenv(name);
  if (!v || !*v)
    return dflt;
  char *end;
  long long x = strtoll(v, &end, 10);
  return *end || x < 0 ? dflt : x;
}

static void run_pass(const char *label, const char *store, long events, int64_t deadline_s)
{
  static pass p; /* big; each pass starts it afresh */
  memset(&p, 0, sizeof p);
  tracks_clear();
  rcv_blackhole *hole;
  if (rcv_blackhole_start(&hole, 0) != 0) {
    fprintf(stderr, "soak: cannot start the blackhole listener\n");
    CHECK(0);
    return;
  }
  srv *R = srv_start();

  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  for (int k = 0; k < NEP; k++) {
    char url[256];
    if (k == EP_HANG)
      rcv_blackhole_url(hole, ep_paths[k], url, sizeof url);
    else
      srv_url(R, ep_paths[k], url, sizeof url);
    CHECK_OK(wh_endpoint_add(reg, ep_names[k], url, NULL, p.ep_ids[k], WH_ID_MAX));
  }
  CHECK_OK(wh_endpoint_subscribe(reg, p.ep_ids[EP_OK], "soak.OK"));
  CHECK_OK(wh_endpoint_subscribe(reg, p.ep_ids[EP_FAIL], "soak.FAIL"));
  CHECK_OK(wh_endpoint_subscribe(reg, p.ep_ids[EP_HANG], "soak.HANG"));

  wh_dispatcher *d;
  CHECK_OK(wh_dispatcher_new(&d, reg));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_ALLOW_PRIVATE_NETWORKS, 1));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_RETRY_JITTER_PCT, 0));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_THROTTLE_MIN_DELAY_MS, 0));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_TIMEOUT_MS, TIMEOUT_MS));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_BREAKER_FAILURE_PCT, 0));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_DISABLE_AFTER_MS, 0));
  CHECK_OK(wh_dispatcher_set_int(d, WH_OPT_QUEUE_LIMIT, 1000000000L));
  CHECK_OK(wh_dispatcher_set_str(d, WH_OPT_RETRY_SCHEDULE, SCHEDULE));
  CHECK_OK(wh_dispatcher_on_result(d, on_result, &p));
  CHECK_OK(wh_dispatcher_start(d));
  p.d = d;
  p.per_thread = (events + THREADS - 1) / THREADS;
  if (p.per_thread < HANG_PER_THREAD)
    p.per_thread = HANG_PER_THREAD;

  int64_t t0 = h_mono_ms();
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++)
    pthread_create(&th[i], NULL, emitter, &p);
  for (int i = 0; i < THREADS; i++)
    pthread_join(th[i], NULL);
  int64_t t_emit = h_mono_ms() - t0;
  mem_note(label, "all emitted");
  CHECK_INT(atomic_load(&p.emit_errors), 0);

  long n_ok = atomic_load(&p.emitted[T_OK]), n_fail = atomic_load(&p.emitted[T_FAIL]),
       n_hang = atomic_load(&p.emitted[T_HANG]);
  long total = n_ok + n_fail + n_hang;
  long expect[NEP] = {total, n_ok, n_fail, n_hang};
  long want_finals = expect[0] + expect[1] + expect[2] + expect[3];
  printf("soak %s: %ld events (%ld OK, %ld FAIL, %ld HANG) emitted by %d threads in %lld ms (%.0f/s), the "
         "slowest emit took %lld ms\n",
         label, total, n_ok, n_fail, n_hang, THREADS, (long long)t_emit,
         total * 1000.0 / (double)(t_emit ? t_emit : 1), atomic_load(&p.max_emit_us) / 1000);
  fflush(stdout);

  /* Wait until every delivery has ended: drain returns with retries still
     scheduled, so keep at it until the count is reached. */
  int64_t end = h_mono_ms() + deadline_s * 1000, last_print = h_mono_ms();
  while (atomic_load(&p.finals) < want_finals && h_mono_ms() < end) {
    wh_dispatcher_drain(d, 1000);
    if (h_mono_ms() - last_print >= 15000) {
      last_print = h_mono_ms();
      printf("soak %s: %ld of %ld deliveries ended after %lld s\n", label, atomic_load(&p.finals), want_finals,
             (long long)((h_mono_ms() - t0) / 1000));
      fflush(stdout);
    }
  }
  int64_t t_done = h_mono_ms() - t0;
  CHECK_OK(wh_dispatcher_drain(d, 10000));
  h_sleep_ms(300); /* anything that would still come (a duplicate) comes now */
  CHECK_OK(wh_dispatcher_stop(d, 5000));
  CHECK_INT(atomic_load(&p.finals), want_finals);
  mem_note(label, "all ended, stopped");

  long requests = 0;
  for (int k = 0; k < NEP; k++)
    requests += atomic_load(&R->count[k]);
  int64_t t_healthy = atomic_load(&p.last_healthy_ms) - t0;
  printf("soak %s: %ld deliveries ended in %lld ms; %ld requests received, the healthy endpoints' last "
         "at %lld ms (%.0f requests/s)\n",
         label, atomic_load(&p.finals), (long long)t_done, requests, (long long)t_healthy,
         requests * 1000.0 / (double)(t_healthy > 0 ? t_healthy : 1));
  for (int k = 0; k < NEP; k++)
    printf("soak %s:   %-12s expected %8ld  delivered %8ld  failed %8ld  retrying %8ld\n", label, ep_names[k],
           expect[k], atomic_load(&p.results[k][WH_DELIVERED]), atomic_load(&p.results[k][WH_FAILED]),
           atomic_load(&p.results[k][WH_RETRYING]));
  if (atomic_load(&p.have_first_odd))
    fprintf(stderr, "soak %s: first unexpected result: %s\n", label, p.first_odd);
  CHECK_INT(atomic_load(&p.unknown_ep), 0);
  CHECK_INT(atomic_load(&p.bad_id), 0);
  CHECK_INT(atomic_load(&p.odd_attempt), 0);
  CHECK_INT(atomic_load(&p.odd_fail), 0);
  CHECK_INT(atomic_load(&p.odd_hang), 0);
  CHECK_INT(atomic_load(&p.odd_ok), 0);

  /* The totals: emitted x matching endpoints. */
  CHECK_INT(atomic_load(&p.results[EP_ALL][WH_DELIVERED]), expect[EP_ALL]);
  CHECK_INT(atomic_load(&p.results[EP_OK][WH_DELIVERED]), expect[EP_OK]);
  CHECK_INT(atomic_load(&p.results[EP_FAIL][WH_FAILED]), expect[EP_FAIL]);
  CHECK_INT(atomic_load(&p.results[EP_FAIL][WH_RETRYING]), expect[EP_FAIL] * (ATTEMPTS - 1));
  CHECK_INT(atomic_load(&p.results[EP_HANG][WH_FAILED]), expect[EP_HANG]);
  CHECK_INT(atomic_load(&p.results[EP_HANG][WH_RETRYING]), expect[EP_HANG] * (ATTEMPTS - 1));
  long faults = atomic_load(&p.healthy_timeouts);
  for (int k = 0; k < NEP; k++)
    if (k == EP_ALL || k == EP_OK)
      CHECK_INT(atomic_load(&p.results[k][WH_FAILED]), 0);
    else
      CHECK_INT(atomic_load(&p.results[k][WH_DELIVERED]), 0);
  CHECK_INT(atomic_load(&p.results[EP_ALL][WH_RETRYING]) + atomic_load(&p.results[EP_OK][WH_RETRYING]), faults);
  if (faults) {
    /* Tolerated, but rare: at most max_fault_ppm per million attempts. */
    printf("soak %s: WARNING: %ld attempts to a healthy endpoint timed out (the first %lld ms after the start, "
           "emitting took %lld ms); their retries may duplicate requests\n",
           label, faults, (long long)(atomic_load(&p.first_healthy_timeout_ms) - t0), (long long)t_emit);
    CHECK(faults * 1000000 <= max_fault_ppm * (expect[EP_ALL] + expect[EP_OK]));
  }

  /* What the receiver saw: one request per delivery to a healthy endpoint
     (plus at most one per timed-out attempt), ATTEMPTS per failing one. */
  long got_all = atomic_load(&R->count[EP_ALL]), got_ok = atomic_load(&R->count[EP_OK]);
  long del_all = atomic_load(&p.results[EP_ALL][WH_DELIVERED]), del_ok = atomic_load(&p.results[EP_OK][WH_DELIVERED]);
  if (!faults) {
    CHECK_INT(got_all, del_all);
    CHECK_INT(got_ok, del_ok);
  } else {
    CHECK(got_all >= del_all && got_ok >= del_ok && got_all + got_ok <= del_all + del_ok + faults);
  }
  long fail_faults = atomic_load(&p.fail_timeouts);
  if (fail_faults) {
    printf("soak %s: WARNING: %ld attempts to the failing endpoint timed out (the first %lld ms after the start)\n",
           label, fail_faults, (long long)(atomic_load(&p.first_fail_timeout_ms) - t0));
    CHECK((faults + fail_faults) * 1000000 <= max_fault_ppm * (expect[EP_ALL] + expect[EP_OK] + expect[EP_FAIL]));
  }
  long got_fail = atomic_load(&R->count[EP_FAIL]);
  CHECK(got_fail <= expect[EP_FAIL] * ATTEMPTS && got_fail >= expect[EP_FAIL] * ATTEMPTS - fail_faults);
  CHECK_INT(atomic_load(&R->other) + atomic_load(&R->malformed), 0);
  CHECK(rcv_blackhole_accepted(hole) >= 1);

  account(&p, label);

  /* A durable store's log lists every failed delivery. */
  if (store) {
    char *json = NULL;
    CHECK_OK(wh_endpoint_failed_json(reg, p.ep_ids[EP_FAIL], 0, 0, &json));
    CHECK_INT(count_in(json, "\"message_id\""), expect[EP_FAIL]);
    wh_free(json);
    json = NULL;
    CHECK_OK(wh_endpoint_failed_json(reg, p.ep_ids[EP_HANG], 0, 0, &json));
    CHECK_INT(count_in(json, "\"message_id\""), expect[EP_HANG]);
    wh_free(json);
  }
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  mem_note(label, "dispatcher, registry freed");
  printf("soak %s: the server had %ld connections\n", label, atomic_load(&R->connections));
  srv_free(R);
  rcv_blackhole_free(hole);
  mem_note(label, "receiver freed");
}

/* ---- memory ------------------------------------------------------------------------------- */

static long rss_now_kib(void)
{
  malloc_trim(0);
  return h_status_kib("VmRSS:");
}

static int under_valgrind(void)
{
  const char *p = getenv("LD_PRELOAD");
  return p && strstr(p, "vgpreload") != NULL;
}

/* A small run first, so that what the libraries set up once per process
   (libcurl, OpenSSL, SQLite) is in the baseline. */
static void warm_up(const char *store)
{
  srv *R = srv_start();
  char url[256];
  srv_url(R, "/warm", url, sizeof url);
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, store));
  CHECK_OK(wh_endpoint_add(reg, "warm", url, NULL, NULL, 0));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, "");
  CHECK_OK(wh_dispatcher_start(d));
  for (int i = 0; i < 200; i++)
    CHECK_OK(wh_dispatcher_emit(d, h_person_event(NULL, NULL), NULL, 0));
  CHECK(h_wait(&log, NULL, WH_DELIVERED, 200, 60000));
  CHECK_OK(wh_dispatcher_stop(d, 5000));
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
  srv_free(R);
}

int main(void)
{
  /* One malloc arena: glibc's malloc_trim gives back the free memory of the
     main arena, but not the top of the per-thread arenas, which would keep
     what the emitting threads once used resident and hide what this test
     looks for (memory the library still holds). */
  mallopt(M_ARENA_MAX, 1);
  long events = (long)env_long("WH_SOAK_EVENTS", 1000000);
  long sq_events = (long)env_long("WH_SOAK_SQLITE_EVENTS", events / 10);
  int64_t deadline_s = env_long("WH_SOAK_DEADLINE_S", 600);
  int check_rss = (int)env_long("WH_SOAK_CHECK_RSS", !SANITIZED && !under_valgrind());
  verbose = (int)env_long("WH_SOAK_VERBOSE", 0);
  /* Healthy attempts that may time out, per million: valgrind runs one thread
     at a time and sanitizers slow everything, so their bounds are looser. */
  max_fault_ppm = (long)env_long("WH_SOAK_MAX_FAULT_PPM", under_valgrind() ? 100000 : SANITIZED ? 1000 : 100);
  int64_t t0 = h_mono_ms();

  char dir[] = "/tmp/wh-soak-XXXXXX", store[128], warm_store[128];
  if (!mkdtemp(dir))
    return 1;
  snprintf(store, sizeof store, "sqlite:%s/soak.db", dir);
  snprintf(warm_store, sizeof warm_store, "sqlite:%s/warm.db", dir);

  tracks_init((size_t)(events > sq_events ? events : sq_events) + THREADS * HANG_PER_THREAD);
  warm_up(NULL);
  if (sq_events > 0)
    warm_up(warm_store);
  long rss0 = rss_now_kib();
  struct mallinfo2 mi0 = mallinfo2();

  if (events > 0)
    run_pass("memory", NULL, events, deadline_s);
  long rss_mid = rss_now_kib();
  if (sq_events > 0)
    run_pass("sqlite", store, sq_events, deadline_s);

  long hwm = h_status_kib("VmHWM:");
  long rss1 = rss_now_kib();
  struct mallinfo2 mi1 = mallinfo2();
  /* Allocator caching and thread stacks may keep some: allow 32 MiB and 2 %
     of the peak's growth. */
  long slack = 32 * 1024 + (hwm - rss0) / 50;
  printf("soak: resident %ld KiB before, %ld KiB after the memory pass, %ld KiB at the end (peak %ld KiB, "
         "slack %ld KiB); heap in use %zu -> %zu bytes%s\n",
         rss0, rss_mid, rss1, hwm, slack, mi0.uordblks, mi1.uordblks,
         check_rss ? "" : " (not checked: sanitizer or valgrind)");
  if (check_rss) {
    CHECK(rss_mid - rss0 <= slack);
    CHECK(rss1 - rss0 <= slack);
    CHECK(mi1.uordblks <= mi0.uordblks + 4 * 1024 * 1024);
  }
  tracks_free();
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    return 1;
  printf("soak: %lld ms in all\n", (long long)(h_mono_ms() - t0));
  return check_done("soak");
}
