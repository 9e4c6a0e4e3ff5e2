/*
 * The memory store: messages, deliveries and their attempts kept in this
 * process. It answers the same log, replay and recovery calls as the durable
 * stores, for what it holds: every pending delivery, and the most recent
 * MEM_FINISHED_CAP finished messages (older ones are forgotten first).
 * To stay small it keeps the response body of each delivery's last attempt only.
 */
#include "store.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEM_FINISHED_CAP 10000
#define INBOX_TAKE 256   /* an emit that finds this many in the inbox (and the lock free) takes them */
#define INBOX_FORCE 4096 /* an emit that finds this many takes them, waiting for the lock */

typedef struct mattempt {
  int attempt, http_status;
  int64_t at_ms, duration_ms;
  char *error;
  struct mattempt *next;
} mattempt;

struct mmsg;
struct mchain;

typedef struct mdlv {
  wh__dlv_state st;
  int state;
  int64_t claimed; /* owner token, 0 = unclaimed */
  int64_t finished_ms;
  mattempt *attempts, *last_attempt;
  char *response; /* of the last attempt */
  size_t response_len;
  struct mmsg *msg;
  struct mdlv *next_in_msg;
  struct mdlv *hnext;                /* by id */
  struct mdlv *unc_prev, *unc_next;  /* pending and unclaimed */
  unsigned in_unc : 1;
  unsigned ordered : 1;              /* to an ordered endpoint: one at a time per resource */
  unsigned in_chain : 1;             /* while ordered and pending: in its resource's chain (no
                                        pointer to it: every pending delivery would pay for it) */
} mdlv;

/* The pending deliveries of one resource to one ordered endpoint, oldest
   first. Only the oldest may be claimed, and only while none of the chain is
   claimed: so one at a time, in emit order. */
typedef struct mchain {
  mdlv **v;          /* v[first .. first + n) */
  size_t first, n, cap;
  int claimed;       /* members claimed right now */
  struct mchain *hnext;
  size_t klen;
  char key[];        /* endpoint id, NUL, resource key */
} mchain;

typedef struct mmsg {
  wh__msg *m;
  struct mmsg *inbox_next; /* while in the inbox */
  mdlv *dlvs;
  int unfinished;
  int64_t finished_ms;
  struct mmsg *hnext;
  struct mmsg *fin_prev, *fin_next; /* finished, oldest first */
  int in_fin;
} mmsg;

typedef struct {
  wh__store base;
  _Atomic(mmsg *) inbox;     /* emitted, not yet in the tables: a lock-free stack, newest first */
  _Atomic size_t inbox_n;    /* about how many are in the inbox */
  _Atomic int64_t next_id;   /* delivery ids */
  pthread_mutex_t mu;        /* everything below, and taking the inbox apart */
  mmsg **msgs;
  size_t msg_cap, nmsgs;
  mdlv **dlvs;
  size_t dlv_cap, ndlvs;
  mdlv *unc_head;
  mmsg *fin_head, *fin_tail;
  size_t nfin;
  mchain **chains;           /* by key hash; size is a power of two */
  size_t chain_cap, nchains;
} mstore;

/* ---- hashing --------------------------------------------------------------- */

static size_t hash_id(int64_t id) { return (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ULL >> 17); }

static int grow_msgs(mstore *s)
{
  size_t cap = s->msg_cap ? s->msg_cap * 2 : 1024;
  mmsg **t = calloc(cap, sizeof *t);
  if (!t)
    return 0;
  for (size_t i = 0; i < s->msg_cap; i++)
    for (mmsg *x = s->msgs[i], *n; x; x = n) {
      n = x->hnext;
      size_t b = wh__hash_str(x->m->id) & (cap - 1);
      x->hnext = t[b];
      t[b] = x;
    }
  free(s->msgs);
  s->msgs = t;
  s->msg_cap = cap;
  return 1;
}

static int grow_dlvs(mstore *s)
{
  size_t cap = s->dlv_cap ? s->dlv_cap * 2 : 1024;
  mdlv **t = calloc(cap, sizeof *t);
  if (!t)
    return 0;
  for (size_t i = 0; i < s->dlv_cap; i++)
    for (mdlv *x = s->dlvs[i], *n; x; x = n) {
      n = x->hnext;
      size_t b = hash_id(x->st.id) & (cap - 1);
      x->hnext = t[b];
      t[b] = x;
    }
  free(s->dlvs);
  s->dlvs = t;
  s->dlv_cap = cap;
  return 1;
}

static mmsg *find_msg(mstore *s, const char *id)
{
  if (!s->msg_cap)
    return NULL;
  for (mmsg *x = s->msgs[wh__hash_str(id) & (s->msg_cap - 1)]; x; x = x->hnext)
    if (strcmp(x->m->id, id) == 0)
      return x;
  return NULL;
}

static mdlv *find_dlv(mstore *s, int64_t id)
{
  if (!s->dlv_cap)
    return NULL;
  for (mdlv *x = s->dlvs[hash_id(id) & (s->dlv_cap - 1)]; x; x = x->hnext)
    if (x->st.id == id)
      return x;
  return NULL;
}

static void insert_dlv(mstore *s, mdlv *d)
{
  size_t b = hash_id(d->st.id) & (s->dlv_cap - 1);
  d->hnext = s->dlvs[b];
  s->dlvs[b] = d;
  s->ndlvs++;
}

static void unlink_dlv(mstore *s, mdlv *d)
{
  for (mdlv **pp = &s->dlvs[hash_id(d->st.id) & (s->dlv_cap - 1)]; *pp; pp = &(*pp)->hnext)
    if (*pp == d) {
      *pp = d->hnext;
      s->ndlvs--;
      return;
    }
}

/* ---- lists ---------------------------------------------------------------------- */

static void unc_add(mstore *s, mdlv *d)
{
  if (d->in_unc)
    return;
  d->unc_prev = NULL;
  d->unc_next = s->unc_head;
  if (s->unc_head)
    s->unc_head->unc_prev = d;
  s->unc_head = d;
  d->in_unc = 1;
}

static void unc_remove(mstore *s, mdlv *d)
{
  if (!d->in_unc)
    return;
  if (d->unc_prev)
    d->unc_prev->unc_next = d->unc_next;
  else
    s->unc_head = d->unc_next;
  if (d->unc_next)
    d->unc_next->unc_prev = d->unc_prev;
  d->in_unc = 0;
}

/* ---- ordered chains ---------------------------------------------------------------- */

static size_t chain_hash(const char *key, size_t klen)
{
  size_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < klen; i++)
    h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
  return h;
}

/* d's chain key into buf (endpoint id, NUL, resource key); its length, 0 if none fits. */
static size_t chain_key(const mdlv *d, char *buf, size_t cap)
{
  const char *k;
  size_t kl, el = strlen(d->st.ep_id);
  if (!wh__msg_order_key(d->msg->m, &k, &kl) || el + 1 + kl > cap)
    return 0;
  memcpy(buf, d->st.ep_id, el + 1);
  memcpy(buf + el + 1, k, kl);
  return el + 1 + kl;
}

static int chains_grow(mstore *s)
{
  size_t cap = s->chain_cap ? s->chain_cap * 2 : 256;
  mchain **t = calloc(cap, sizeof *t);
  if (!t)
    return 0;
  for (size_t i = 0; i < s->chain_cap; i++)
    for (mchain *c = s->chains[i], *n; c; c = n) {
      n = c->hnext;
      size_t b = chain_hash(c->key, c->klen) & (cap - 1);
      c->hnext = t[b];
      t[b] = c;
    }
  free(s->chains);
  s->chains = t;
  s->chain_cap = cap;
  return 1;
}

static mdlv *chain_head(const mchain *c) { return c->n ? c->v[c->first] : NULL; }
static mchain *chain_of(mstore *s, const mdlv *d);

/* Whether claim may take d: pending, unclaimed and, when ordered, the oldest
   of its chain with none of the chain claimed. Puts it in or out of the list
   claim takes from. */
static void refresh_avail(mstore *s, mdlv *d)
{
  int ok = d->state == WH__DLV_PENDING && !d->claimed;
  mchain *c = ok ? chain_of(s, d) : NULL;
  if (c)
    ok = chain_head(c) == d && c->claimed == 0;
  if (ok)
    unc_add(s, d);
  else
    unc_remove(s, d);
}

/* After a chain changed: only its oldest two can have changed standing. */
static void refresh_chain(mstore *s, mchain *c)
{
  for (size_t i = 0; i < 2 && i < c->n; i++)
    refresh_avail(s, c->v[c->first + i]);
}

static void chain_drop_if_empty(mstore *s, mchain *c)
{
  if (c->n)
    return;
  for (mchain **pp = &s->chains[chain_hash(c->key, c->klen) & (s->chain_cap - 1)]; *pp; pp = &(*pp)->hnext)
    if (*pp == c) {
      *pp = c->hnext;
      break;
    }
  s->nchains--;
  free(c->v);
  free(c);
}

/* d's chain (found by its key), or NULL. */
static mchain *chain_find(mstore *s, const mdlv *d, char *key, size_t *klen, size_t *hash)
{
  size_t kl = chain_key(d, key, WH_ID_MAX + 1100);
  if (!kl)
    return NULL;
  size_t h = chain_hash(key, kl);
  *klen = kl;
  *hash = h;
  for (mchain *c = s->chain_cap ? s->chains[h & (s->chain_cap - 1)] : NULL; c; c = c->hnext)
    if (c->klen == kl && memcmp(c->key, key, kl) == 0)
      return c;
  return NULL;
}

static mchain *chain_of(mstore *s, const mdlv *d)
{
  char key[WH_ID_MAX + 1100];
  size_t kl, h;
  return d->in_chain ? chain_find(s, d, key, &kl, &h) : NULL;
}

/* Put pending, ordered d into its chain, in id order. 0 without memory (d then
   goes unordered rather than be lost). */
static int chain_insert(mstore *s, mdlv *d)
{
  char key[WH_ID_MAX + 1100];
  size_t kl = 0, h = 0;
  mchain *c = chain_find(s, d, key, &kl, &h);
  if (!kl)
    return 0;
  if (!c) {
    if ((s->nchains + 1) * 2 > s->chain_cap && !chains_grow(s) && !s->chain_cap)
      return 0;
    if (!(c = calloc(1, sizeof *c + kl)))
      return 0;
    memcpy(c->key, key, kl);
    c->klen = kl;
    size_t b = h & (s->chain_cap - 1);
    c->hnext = s->chains[b];
    s->chains[b] = c;
    s->nchains++;
  }
  if (c->first + c->n == c->cap) {
    if (c->first > 0) { /* room at the front: slide down */
      memmove(c->v, c->v + c->first, c->n * sizeof *c->v);
      c->first = 0;
    } else {
      size_t cap = c->cap ? c->cap * 2 : 4;
      mdlv **v = realloc(c->v, cap * sizeof *v);
      if (!v) {
        chain_drop_if_empty(s, c);
        return 0;
      }
      c->v = v;
      c->cap = cap;
    }
  }
  /* Usually the newest: at the end. A replayed older one goes in its place. */
  size_t at = c->n;
  while (at > 0 && c->v[c->first + at - 1]->st.id > d->st.id)
    at--;
  memmove(c->v + c->first + at + 1, c->v + c->first + at, (c->n - at) * sizeof *c->v);
  c->v[c->first + at] = d;
  c->n++;
  d->in_chain = 1;
  if (d->claimed)
    c->claimed++;
  refresh_chain(s, c);
  return 1;
}

/* d leaves its chain (it finished); the next one may go. */
static void chain_remove(mstore *s, mdlv *d)
{
  mchain *c = chain_of(s, d);
  if (!c)
    return;
  size_t i = 0;
  while (i < c->n && c->v[c->first + i] != d)
    i++;
  if (i < c->n) {
    if (i == 0) {
      c->first++;
    } else {
      memmove(c->v + c->first + i, c->v + c->first + i + 1, (c->n - i - 1) * sizeof *c->v);
    }
    c->n--;
  }
  if (d->claimed)
    c->claimed--;
  d->in_chain = 0;
  if (c->n)
    refresh_chain(s, c);
  else
    chain_drop_if_empty(s, c);
}

/* d's claim changes to owner (0: unclaimed), keeping its chain's count. */
static void set_claimed(mstore *s, mdlv *d, int64_t owner)
{
  mchain *c = chain_of(s, d);
  if (c)
    c->claimed += (owner != 0) - (d->claimed != 0);
  d->claimed = owner;
  if (c)
    refresh_chain(s, c);
  else
    refresh_avail(s, d);
}

/* d is pending and unclaimed again (new, released, replayed): where claim finds it. */
static void make_available(mstore *s, mdlv *d)
{
  if (d->ordered && !d->in_chain && chain_insert(s, d))
    return;
  refresh_avail(s, d);
}

static void fin_remove(mstore *s, mmsg *x)
{
  if (!x->in_fin)
    return;
  if (x->fin_prev)
    x->fin_prev->fin_next = x->fin_next;
  else
    s->fin_head = x->fin_next;
  if (x->fin_next)
    x->fin_next->fin_prev = x->fin_prev;
  else
    s->fin_tail = x->fin_prev;
  x->in_fin = 0;
  s->nfin--;
}

static void free_dlv(mdlv *d)
{
  for (mattempt *a = d->attempts, *n; a; a = n) {
    n = a->next;
    free(a->error);
    free(a);
  }
  free(d->response);
  free(d);
}

static void drop_msg(mstore *s, mmsg *x)
{
  fin_remove(s, x);
  for (mmsg **pp = &s->msgs[wh__hash_str(x->m->id) & (s->msg_cap - 1)]; *pp; pp = &(*pp)->hnext)
    if (*pp == x) {
      *pp = x->hnext;
      s->nmsgs--;
      break;
    }
  for (mdlv *d = x->dlvs, *n; d; d = n) {
    n = d->next_in_msg;
    chain_remove(s, d);
    unc_remove(s, d);
    unlink_dlv(s, d);
    free_dlv(d);
  }
  wh__msg_unref(x->m);
  free(x);
}

/* A message whose deliveries are all finished joins the finished list; the
   oldest finished ones are forgotten past the cap. */
static void settle_msg(mstore *s, mmsg *x, int64_t now)
{
  if (x->unfinished > 0) {
    fin_remove(s, x);
    return;
  }
  if (x->in_fin)
    return;
  x->finished_ms = now;
  x->fin_prev = s->fin_tail;
  x->fin_next = NULL;
  if (s->fin_tail)
    s->fin_tail->fin_next = x;
  else
    s->fin_head = x;
  s->fin_tail = x;
  x->in_fin = 1;
  s->nfin++;
  while (s->nfin > MEM_FINISHED_CAP)
    drop_msg(s, s->fin_head);
}

/* ---- the store operations ---------------------------------------------------------- */

static void take_inbox(mstore *s);

static void m_close(wh__store *base)
{
  mstore *s = (mstore *)base;
  take_inbox(s);
  for (size_t i = 0; i < s->msg_cap; i++)
    for (mmsg *x = s->msgs[i], *n; x; x = n) {
      n = x->hnext;
      for (mdlv *d = x->dlvs, *dn; d; d = dn) {
        dn = d->next_in_msg;
        free_dlv(d);
      }
      wh__msg_unref(x->m);
      free(x);
    }
  for (size_t i = 0; i < s->chain_cap; i++)
    for (mchain *c = s->chains[i], *n; c; c = n) {
      n = c->hnext;
      free(c->v);
      free(c);
    }
  free(s->chains);
  free(s->msgs);
  free(s->dlvs);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

static int m_load_endpoints(wh__store *s, int (*add)(void *, const wh__endpoint_row *), void *ud) { return WH_OK; }
static int m_put_endpoint(wh__store *s, const wh__endpoint *ep) { return WH_OK; }
static int m_delete_endpoint(wh__store *s, const char *id) { return WH_OK; }

/* A delivery of message x, linked into it (not yet into the tables). */
static mdlv *alloc_dlv(mmsg *x, int64_t id, const char *ep_id, int64_t due_ms, int64_t claimed)
{
  mdlv *d = calloc(1, sizeof *d);
  if (!d)
    return NULL;
  d->st.id = id;
  snprintf(d->st.ep_id, sizeof d->st.ep_id, "%s", ep_id);
  d->st.due_ms = due_ms;
  d->claimed = claimed;
  d->msg = x;
  d->next_in_msg = x->dlvs;
  x->dlvs = d;
  x->unfinished++;
  return d;
}

static mdlv *new_dlv(mstore *s, mmsg *x, const char *ep_id, int64_t claimed, int64_t now)
{
  mdlv *d = alloc_dlv(x, atomic_fetch_add_explicit(&s->next_id, 1, memory_order_relaxed) + 1, ep_id, now, claimed);
  if (!d)
    return NULL;
  insert_dlv(s, d);
  if (!claimed)
    make_available(s, d);
  return d;
}

/* A message's entries, not yet anywhere but in the list of its deliveries. */
static void free_unpushed(mmsg *x)
{
  for (mdlv *e = x->dlvs, *next; e; e = next) {
    next = e->next_in_msg;
    free(e);
  }
  wh__msg_unref(x->m);
  free(x);
}

static mmsg *build_msg(mstore *s, const wh__enq *e, int64_t claimed)
{
  mmsg *x = calloc(1, sizeof *x);
  if (!x)
    return NULL;
  int64_t first = e->n ? atomic_fetch_add_explicit(&s->next_id, (int64_t)e->n, memory_order_relaxed) + 1 : 0;
  for (size_t i = 0; i < e->n; i++) {
    int ordered = e->ordered && e->ordered[i];
    mdlv *d = alloc_dlv(x, first + (int64_t)i, e->ep_ids[i], e->m->created_ms, ordered ? 0 : claimed);
    if (!d) {
      free_unpushed(x);
      return NULL;
    }
    d->ordered = ordered;
    e->ids[i] = first + (int64_t)i;
  }
  wh__msg_ref(e->m);
  x->m = e->m;
  return x;
}

/* Emit does not take the store's lock: it builds the messages' entries and
   pushes them on the inbox, all in one go. Whoever takes the lock next (a
   worker recording an attempt, a reader of the log) moves them into the
   tables first, so every operation sees them; emitting threads never wait
   for one another here nor for a table to grow. */
static int m_enqueue(wh__store *base, const wh__enq *msgs, size_t nmsgs, int64_t claimed)
{
  mstore *s = (mstore *)base;
  mmsg *newest = NULL, *oldest = NULL;
  for (size_t k = 0; k < nmsgs; k++) {
    mmsg *x = build_msg(s, &msgs[k], claimed);
    if (!x) {
      for (mmsg *next; newest; newest = next) {
        next = newest->inbox_next;
        free_unpushed(newest);
      }
      return wh__oom();
    }
    x->inbox_next = newest;
    newest = x;
    if (!oldest)
      oldest = x;
  }
  if (!newest)
    return WH_OK;
  mmsg *head = atomic_load_explicit(&s->inbox, memory_order_relaxed);
  do
    oldest->inbox_next = head;
  while (!atomic_compare_exchange_weak_explicit(&s->inbox, &head, newest, memory_order_release, memory_order_relaxed));
  /* Keep the inbox short, so that no one who takes the lock (a worker, about
     to read its next answer) has a long job of it: an emit that finds
     INBOX_TAKE waiting takes them if the lock is free; one that finds
     INBOX_FORCE waits for the lock (emitters faster than the tables pay for
     their own work). */
  size_t waiting = atomic_fetch_add_explicit(&s->inbox_n, nmsgs, memory_order_relaxed) + nmsgs;
  if (waiting >= INBOX_TAKE) {
    if (waiting >= INBOX_FORCE)
      pthread_mutex_lock(&s->mu);
    else if (pthread_mutex_trylock(&s->mu) != 0)
      return WH_OK;
    take_inbox(s);
    pthread_mutex_unlock(&s->mu);
  }
  return WH_OK;
}

/* Move what emit pushed into the tables, oldest first. Caller holds mu. A table
   that cannot grow (no memory) only gets longer chains: nothing is lost. */
static void take_inbox(mstore *s)
{
  atomic_store_explicit(&s->inbox_n, 0, memory_order_relaxed);
  mmsg *x = atomic_exchange_explicit(&s->inbox, NULL, memory_order_acquire);
  mmsg *fifo = NULL;
  while (x) {
    mmsg *next = x->inbox_next;
    x->inbox_next = fifo;
    fifo = x;
    x = next;
  }
  for (x = fifo; x; x = fifo) {
    fifo = x->inbox_next;
    x->inbox_next = NULL;
    if ((s->nmsgs + 1) * 2 > s->msg_cap)
      grow_msgs(s);
    size_t b = wh__hash_str(x->m->id) & (s->msg_cap - 1);
    x->hnext = s->msgs[b];
    s->msgs[b] = x;
    s->nmsgs++;
    for (mdlv *d = x->dlvs; d; d = d->next_in_msg) {
      if ((s->ndlvs + 1) * 2 > s->dlv_cap)
        grow_dlvs(s);
      insert_dlv(s, d);
      if (!d->claimed)
        make_available(s, d);
    }
    settle_msg(s, x, x->m->created_ms);
  }
}

static void lock_store(mstore *s)
{
  pthread_mutex_lock(&s->mu);
  take_inbox(s);
}

static int m_claim(wh__store *base, int64_t owner, int64_t horizon_ms, size_t max, wh__claim_cb cb, void *ud)
{
  mstore *s = (mstore *)base;
  /* Collect under the lock, call back outside it. */
  lock_store(s);
  size_t n = 0;
  for (mdlv *d = s->unc_head; d && n < max; d = d->unc_next)
    n += d->st.due_ms <= horizon_ms;
  wh__dlv_state *st = n ? malloc(n * sizeof *st) : NULL;
  wh__msg **ms = n ? malloc(n * sizeof *ms) : NULL;
  size_t k = 0;
  if (st && ms) {
    for (mdlv *d = s->unc_head, *next; d && k < n; d = next) {
      next = d->unc_next;
      if (d->st.due_ms > horizon_ms)
        continue;
      set_claimed(s, d, owner); /* out of the list; its chain waits for it */
      st[k] = d->st;
      st[k].ordered = d->in_chain;
      wh__msg_ref(d->msg->m);
      ms[k++] = d->msg->m;
    }
  }
  pthread_mutex_unlock(&s->mu);
  int rc = (n && !(st && ms)) ? wh__oom() : WH_OK;
  for (size_t i = 0; i < k; i++) {
    if (rc == WH_OK)
      rc = cb(ud, ms[i], &st[i]);
    wh__msg_unref(ms[i]);
  }
  free(st);
  free(ms);
  return rc;
}

static void m_record(wh__store *base, const wh__dlv_state *st, const wh__attempt_rec *a, int state,
                     int64_t claimed)
{
  mstore *s = (mstore *)base;
  lock_store(s);
  mdlv *d = find_dlv(s, st->id);
  if (!d) {
    pthread_mutex_unlock(&s->mu);
    return;
  }
  d->st = *st;
  if (a) {
    mattempt *at = calloc(1, sizeof *at);
    if (at) {
      at->attempt = a->attempt;
      at->http_status = a->http_status;
      at->at_ms = a->at_ms;
      at->duration_ms = a->duration_ms;
      at->error = a->error ? wh__strdup(a->error) : NULL;
      if (d->last_attempt)
        d->last_attempt->next = at;
      else
        d->attempts = at;
      d->last_attempt = at;
    }
    free(d->response);
    d->response = a->response_len ? wh__strndup(a->response, a->response_len) : NULL;
    d->response_len = d->response ? a->response_len : 0;
  }
  int was_pending = d->state == WH__DLV_PENDING;
  if (state == WH__DLV_PENDING) {
    d->state = state;
    set_claimed(s, d, claimed);
  } else {
    chain_remove(s, d); /* finished: the next of its resource may go */
    d->state = state;
    d->claimed = claimed;
    unc_remove(s, d);
  }
  if (was_pending && state != WH__DLV_PENDING) {
    d->finished_ms = a ? a->at_ms + a->duration_ms : wh__now_ms();
    d->msg->unfinished--;
    settle_msg(s, d->msg, d->finished_ms);
  }
  pthread_mutex_unlock(&s->mu);
}

static void m_release(wh__store *base, int64_t owner)
{
  mstore *s = (mstore *)base;
  lock_store(s);
  for (size_t i = 0; i < s->dlv_cap; i++)
    for (mdlv *d = s->dlvs[i]; d; d = d->hnext)
      if (d->state == WH__DLV_PENDING && d->claimed == owner)
        set_claimed(s, d, 0);
  pthread_mutex_unlock(&s->mu);
}

static void m_flush(wh__store *s) {}

static cJSON *dlv_json(const mdlv *d)
{
  wh__log_delivery info = {.id = d->st.id, .ep_id = d->st.ep_id, .state = d->state, .attempts = d->st.attempt,
                           .due_ms = d->st.due_ms, .finished_ms = d->finished_ms};
  cJSON *o = wh__log_delivery_json(&info);
  cJSON *arr = o ? cJSON_GetObjectItem(o, "attempts") : NULL;
  for (const mattempt *a = d->attempts; arr && a; a = a->next) {
    wh__attempt_rec r = {.attempt = a->attempt, .at_ms = a->at_ms, .duration_ms = a->duration_ms,
                         .http_status = a->http_status, .error = a->error};
    if (a == d->last_attempt) {
      r.response = d->response;
      r.response_len = d->response_len;
    }
    cJSON_AddItemToArray(arr, wh__log_attempt_json(&r));
  }
  return o;
}

static int m_message_json(wh__store *base, const char *msg_id, const wh__log_filter *f, char **json)
{
  mstore *s = (mstore *)base;
  lock_store(s);
  mmsg *x = find_msg(s, msg_id);
  if (!x || !wh__log_message_visible(f, x->m->body, x->m->len)) {
    pthread_mutex_unlock(&s->mu);
    return wh__fail(WH_ENOTFOUND, "message \"%.64s\": not in the store (unknown, or forgotten: the memory "
                                  "store keeps the last %d finished messages)",
                    msg_id, MEM_FINISHED_CAP);
  }
  cJSON *o = wh__log_message_json(x->m->id, x->m->type, x->m->created_ms, x->m->body);
  cJSON *arr = o ? cJSON_GetObjectItem(o, "deliveries") : NULL;
  for (const mdlv *d = x->dlvs; arr && d; d = d->next_in_msg)
    if (wh__log_delivery_visible(f, d->st.ep_id))
      cJSON_AddItemToArray(arr, dlv_json(d));
  pthread_mutex_unlock(&s->mu);
  return wh__log_print(o, json);
}

static int m_failed_json(wh__store *base, const char *ep_id, int64_t since_ms, size_t limit, char **json)
{
  mstore *s = (mstore *)base;
  cJSON *arr = cJSON_CreateArray();
  size_t n = 0;
  lock_store(s);
  for (size_t i = 0; arr && i < s->dlv_cap; i++)
    for (const mdlv *d = s->dlvs[i]; d && n < limit; d = d->hnext)
      if (d->state == WH__DLV_FAILED && strcmp(d->st.ep_id, ep_id) == 0 && d->finished_ms >= since_ms) {
        cJSON *o = wh__log_failed_json(d->msg->m->id, d->msg->m->type, d->st.ep_id, d->st.attempt,
                                       d->finished_ms, d->last_attempt ? d->last_attempt->http_status : 0,
                                       d->last_attempt ? d->last_attempt->error : NULL);
        cJSON_AddItemToArray(arr, o);
        n++;
      }
  pthread_mutex_unlock(&s->mu);
  wh__log_sort_failed(arr);
  return wh__log_print(arr, json);
}

/* Make d pending again, due now, for a new round of the schedule. */
static void revive(mstore *s, mdlv *d, int64_t now)
{
  if (d->state != WH__DLV_PENDING)
    d->msg->unfinished++;
  d->state = WH__DLV_PENDING;
  d->claimed = 0;
  d->st.due_ms = now;
  d->st.retries_used = 0;
  d->st.fast_retry_used = 0;
  d->finished_ms = 0;
  make_available(s, d);
  settle_msg(s, d->msg, now);
}

static int m_requeue(wh__store *base, const char *msg_id, const char *ep_id, int64_t since_ms, size_t *count)
{
  mstore *s = (mstore *)base;
  int64_t now = wh__now_ms();
  size_t n = 0;
  int rc = WH_OK;
  lock_store(s);
  if (msg_id) {
    mmsg *x = find_msg(s, msg_id);
    if (!x) {
      rc = wh__fail(WH_ENOTFOUND, "message \"%.64s\": not in the store", msg_id);
    } else {
      int had = 0;
      for (mdlv *d = x->dlvs; d; d = d->next_in_msg) {
        if (ep_id && strcmp(d->st.ep_id, ep_id) != 0)
          continue;
        had = 1;
        if (d->state != WH__DLV_PENDING) {
          revive(s, d, now);
          n++;
        }
      }
      if (ep_id && !had) {
        if ((s->ndlvs + 1) * 2 > s->dlv_cap && !grow_dlvs(s)) {
          rc = wh__oom();
        } else if (new_dlv(s, x, ep_id, 0, now)) {
          settle_msg(s, x, now);
          n++;
        } else {
          rc = wh__oom();
        }
      }
    }
  } else {
    for (size_t i = 0; i < s->dlv_cap; i++)
      for (mdlv *d = s->dlvs[i]; d; d = d->hnext)
        if (d->state == WH__DLV_FAILED && strcmp(d->st.ep_id, ep_id) == 0 && d->finished_ms >= since_ms) {
          revive(s, d, now);
          n++;
        }
  }
  pthread_mutex_unlock(&s->mu);
  if (count)
    *count = n;
  return rc;
}

static int m_purge(wh__store *base, int64_t before_ms, size_t *count)
{
  mstore *s = (mstore *)base;
  size_t n = 0;
  lock_store(s);
  for (mmsg *x = s->fin_head, *next; x; x = next) {
    next = x->fin_next;
    if (x->finished_ms >= before_ms)
      break;
    int all_delivered = 1;
    for (mdlv *d = x->dlvs; d; d = d->next_in_msg)
      all_delivered &= d->state == WH__DLV_DELIVERED;
    if (all_delivered) {
      drop_msg(s, x);
      n++;
    }
  }
  pthread_mutex_unlock(&s->mu);
  if (count)
    *count = n;
  return WH_OK;
}

static const wh__store_ops memory_ops = {
  .name = "memory",
  .durable = 0,
  .close = m_close,
  .load_endpoints = m_load_endpoints,
  .put_endpoint = m_put_endpoint,
  .delete_endpoint = m_delete_endpoint,
  .enqueue = m_enqueue,
  .claim = m_claim,
  .record = m_record,
  .release = m_release,
  .flush = m_flush,
  .message_json = m_message_json,
  .failed_json = m_failed_json,
  .requeue = m_requeue,
  .purge = m_purge,
};

int wh__store_memory_open(wh__store **out)
{
  mstore *s = calloc(1, sizeof *s);
  if (!s)
    return wh__oom();
  s->base.ops = &memory_ops;
  pthread_mutex_init(&s->mu, NULL);
  if (!grow_msgs(s) || !grow_dlvs(s)) {
    m_close(&s->base);
    return wh__oom();
  }
  *out = &s->base;
  return WH_OK;
}
