/*
 * Where the ids of the requests already seen are kept: the store string, and
 * the memory store.
 *
 * The memory store is bounded: at most `cap` ids (WH__SEEN_MEMORY_CAP for a
 * receiver). Ids wait in one queue per keeping time, oldest first, so the
 * expired ones are found at the heads; each add drops a few expired ones, and
 * when the store is full the oldest id of any queue is forgotten early.
 * Only authentic requests get here, so filling it takes a sender's secret.
 */
#include "incoming/incoming.h"
#include "stores/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_QUEUES 4      /* distinct keeping times: timestamped schemes and GitHub */
#define PURGE_PER_ADD 16  /* expired ids dropped per add: bounded work per check */

int wh__seen_open(const char *store, wh__seen **out)
{
  wh__store_spec spec;
  int rc = wh__store_spec_parse(store, &spec);
  if (rc)
    return rc;
  switch (spec.kind) {
  case WH__STORE_MEMORY:
    rc = wh__seen_memory_open(WH__SEEN_MEMORY_CAP, out);
    break;
  case WH__STORE_SQLITE:
#ifdef WEBHOOK_WITH_SQLITE
    rc = wh__seen_sqlite_open(spec.target, out);
#else
    rc = wh__fail(WH_EINVAL, "store: this build has no sqlite: store (WEBHOOK_WITH_SQLITE=OFF)");
#endif
    break;
  case WH__STORE_POSTGRES:
#ifdef WEBHOOK_WITH_POSTGRES
    rc = wh__seen_pg_open(spec.target, out);
#else
    rc = wh__fail(WH_EINVAL, "store: this build has no postgresql:// store (WEBHOOK_WITH_POSTGRES=OFF)");
#endif
    break;
  }
  wh__store_spec_free(&spec);
  return rc;
}

/* ---- the memory store ------------------------------------------------------------- */

typedef struct entry {
  struct entry *chain;       /* next in the hash bucket */
  struct entry *prev, *next; /* the queue, oldest first */
  uint64_t seq;              /* insertion order across queues */
  int64_t expires;
  size_t hash;
  int queue;
  char key[];
} entry;

typedef struct {
  entry *head, *tail;
  int64_t keep;
} queue;

typedef struct {
  wh__seen base;
  pthread_mutex_t mu;
  entry **tab; /* buckets; a power of two */
  size_t tab_cap;
  size_t n, cap, evicted;
  uint64_t seq;
  queue q[MAX_QUEUES];
  int nq;
} mstore;

static void unlink_entry(mstore *m, entry *e)
{
  entry **pp = &m->tab[e->hash & (m->tab_cap - 1)];
  while (*pp != e)
    pp = &(*pp)->chain;
  *pp = e->chain;
  queue *q = &m->q[e->queue];
  if (e->prev)
    e->prev->next = e->next;
  else
    q->head = e->next;
  if (e->next)
    e->next->prev = e->prev;
  else
    q->tail = e->prev;
  m->n--;
  free(e);
}

static entry *find(mstore *m, const char *key, size_t hash)
{
  for (entry *e = m->tab[hash & (m->tab_cap - 1)]; e; e = e->chain)
    if (e->hash == hash && strcmp(e->key, key) == 0)
      return e;
  return NULL;
}

/* Double the buckets while the table is over 3/4 full; failing to grow only
   makes the chains longer. */
static void grow(mstore *m)
{
  if (m->n * 4 < m->tab_cap * 3)
    return;
  size_t cap = m->tab_cap * 2;
  entry **tab = calloc(cap, sizeof *tab);
  if (!tab)
    return;
  for (size_t i = 0; i < m->tab_cap; i++) {
    for (entry *e = m->tab[i], *next; e; e = next) {
      next = e->chain;
      e->chain = tab[e->hash & (cap - 1)];
      tab[e->hash & (cap - 1)] = e;
    }
  }
  free(m->tab);
  m->tab = tab;
  m->tab_cap = cap;
}

static int queue_for(mstore *m, int64_t keep)
{
  for (int i = 0; i < m->nq; i++)
    if (m->q[i].keep == keep)
      return i;
  if (m->nq == MAX_QUEUES)
    return -1;
  m->q[m->nq].keep = keep;
  return m->nq++;
}

static void purge_expired(mstore *m, int64_t now)
{
  int budget = PURGE_PER_ADD;
  for (int i = 0; i < m->nq; i++)
    while (budget > 0 && m->q[i].head && m->q[i].head->expires <= now) {
      unlink_entry(m, m->q[i].head);
      budget--;
    }
}

static void evict_oldest(mstore *m)
{
  entry *oldest = NULL;
  for (int i = 0; i < m->nq; i++)
    if (m->q[i].head && (!oldest || m->q[i].head->seq < oldest->seq))
      oldest = m->q[i].head;
  if (oldest) {
    unlink_entry(m, oldest);
    m->evicted++;
  }
}

static int m_add(wh__seen *s, const char *key, int64_t now, int64_t keep)
{
  mstore *m = (mstore *)s;
  size_t hash = wh__hash_str(key);
  size_t kl = strlen(key);
  pthread_mutex_lock(&m->mu);
  purge_expired(m, now);
  entry *e = find(m, key, hash);
  if (e && e->expires > now) {
    pthread_mutex_unlock(&m->mu);
    return WH_EEXIST;
  }
  if (e)
    unlink_entry(m, e);
  int qi = queue_for(m, keep);
  entry *ne = qi < 0 ? NULL : malloc(sizeof *ne + kl + 1);
  if (!ne) {
    pthread_mutex_unlock(&m->mu);
    return qi < 0 ? wh__fail(WH_ESTORE, "store memory: more than %d keeping times", MAX_QUEUES) : wh__oom();
  }
  if (m->n >= m->cap)
    evict_oldest(m);
  memcpy(ne->key, key, kl + 1);
  ne->hash = hash;
  ne->expires = now + keep;
  ne->seq = m->seq++;
  ne->queue = qi;
  ne->chain = m->tab[hash & (m->tab_cap - 1)];
  m->tab[hash & (m->tab_cap - 1)] = ne;
  queue *q = &m->q[qi];
  ne->next = NULL;
  ne->prev = q->tail;
  if (q->tail)
    q->tail->next = ne;
  else
    q->head = ne;
  q->tail = ne;
  m->n++;
  grow(m);
  pthread_mutex_unlock(&m->mu);
  return WH_OK;
}

static void m_close(wh__seen *s)
{
  mstore *m = (mstore *)s;
  for (int i = 0; i < m->nq; i++)
    for (entry *e = m->q[i].head, *next; e; e = next) {
      next = e->next;
      free(e);
    }
  free(m->tab);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

static const wh__seen_ops memory_ops = {m_add, m_close};

int wh__seen_memory_open(size_t cap, wh__seen **out)
{
  mstore *m = calloc(1, sizeof *m);
  if (!m || !(m->tab = calloc(64, sizeof *m->tab))) {
    free(m);
    return wh__oom();
  }
  m->base.ops = &memory_ops;
  m->tab_cap = 64;
  m->cap = cap ? cap : 1;
  pthread_mutex_init(&m->mu, NULL);
  *out = &m->base;
  return WH_OK;
}

void wh__seen_memory_stats(wh__seen *s, size_t *held, size_t *evicted)
{
  *held = *evicted = 0;
  if (s->ops != &memory_ops)
    return;
  mstore *m = (mstore *)s;
  pthread_mutex_lock(&m->mu);
  *held = m->n;
  *evicted = m->evicted;
  pthread_mutex_unlock(&m->mu);
}
