/*
 * The registry of endpoints. Readers (the dispatcher, on every emit and every
 * attempt) must never wait on an administrator's change, so each endpoint is
 * an immutable, reference-counted object: a change builds a modified copy and
 * swaps it in under the write lock; readers take a reference under the read lock.
 *
 * Tenants: every endpoint belongs to a tenant or to the platform (tenant NULL).
 * A view (wh_registry_open_tenant) is a small object that names a tenant and
 * holds the root registry: every public function resolves a view to its root
 * and sees only the tenant's endpoints. The endpoints of each tenant, and the
 * platform's, are also kept in a group of their own, found by a hash of the
 * tenant id, so that routing an event costs the endpoints of its tenant plus
 * the platform's, whatever the number of tenants.
 */
#include "internal.h"
#include "stores/store.h"

#include "delivery/retry.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NAME_MAX_BYTES 256
#define DESC_MAX_BYTES 4096
#define HEADER_VALUE_MAX 4096
#define HEADER_NAME_MAX 256
#define MAX_FILTERS WH__MAX_FILTERS
#define MAX_HEADERS WH__MAX_HEADERS
#define MAX_SECRETS 8
#define SECRET_MIN_BYTES 24
#define SECRET_MAX_BYTES 64

#define TENANT_MAX_BYTES 1024

/* The endpoints of one tenant (or of the platform), in the order they were added. */
typedef struct tgroup {
  size_t hash;  /* of the tenant: compared before the tenant itself */
  wh__endpoint **eps;
  size_t n, cap;
  struct tgroup *hnext;
  char *tenant; /* NULL: the platform's */
} tgroup;

/* Something to tell when deliveries were queued outside emit (replay, a test
   event): the running dispatchers of this registry. */
typedef struct watcher {
  void (*fn)(void *ud);
  void *ud;
  struct watcher *next;
} watcher;

struct wh_registry {
  /* A registry lives until the host's handle, its views and its dispatchers
     are all released (wh__registry_unref), in whatever order. */
  atomic_int refs;
  /* A view: the root it sees through and its tenant. Nothing below is used. */
  wh_registry *root;
  char *tenant;

  pthread_rwlock_t lock;
  wh__endpoint **eps; /* in the order they were added */
  size_t n, cap;
  wh__endpoint **index; /* open addressing by id hash; size is a power of two */
  size_t index_cap;
  tgroup platform;
  tgroup **groups;      /* tenants' groups, chained by tenant hash; size is a power of two */
  size_t groups_cap, ngroups;
  _Atomic long tenant_max; /* WH_REG_TENANT_MAX_ENDPOINTS; 0 = no limit */
  uint64_t generation;
  uint64_t seq;         /* the last endpoint's seq */
  wh__store *store;     /* where endpoints, messages and deliveries persist */
  _Atomic uint64_t seen_version; /* the store's endpoints version we loaded (shared stores) */
  pthread_mutex_t watch_mu;
  watcher *watchers;
  unsigned fork_gen;    /* a child of the process that opened it may not use it (see fork.c) */
};

static wh_registry *root_of(wh_registry *reg) { return reg->root ? reg->root : reg; }

/* After fork(), in the child, a registry of the parent is not used: a thread of
   the parent (a worker, the store's writer) may have held one of its locks at
   the fork, and the child would wait for it for ever. The child opens its own. */
int wh__registry_check(wh_registry *reg, const char *what)
{
  if (!reg)
    return wh__fail(WH_EINVAL, "%s: registry must not be NULL", what);
  if (wh__forked(root_of(reg)->fork_gen))
    return wh__fail(WH_ESTATE, "%s: registry belongs to the parent process (after fork, open a new one)", what);
  return WH_OK;
}

struct wh__store *wh__registry_store(wh_registry *reg) { return root_of(reg)->store; }
wh_registry *wh__registry_root(wh_registry *reg) { return root_of(reg); }
const char *wh_registry_tenant_id(const wh_registry *reg) { return reg ? reg->tenant : NULL; }

static void registry_destroy(wh_registry *reg);

/* ---- endpoint objects ------------------------------------------------------ */

void wh__endpoint_ref(wh__endpoint *ep) { atomic_fetch_add_explicit(&ep->refs, 1, memory_order_relaxed); }

static void settings_free(wh__ep_settings *st)
{
  free(st->retry_schedule);
  free(st->schedule);
  free(st->proxy);
  free(st->client_cert);
  memset(st, 0, sizeof *st);
}

/* A deep copy; 0 without memory (dst is then empty). */
static int settings_copy(wh__ep_settings *dst, const wh__ep_settings *src)
{
  *dst = *src;
  dst->retry_schedule = src->retry_schedule ? wh__strdup(src->retry_schedule) : NULL;
  dst->schedule = src->schedule ? malloc(((size_t)src->nschedule + 1) * sizeof *src->schedule) : NULL;
  dst->proxy = src->proxy ? wh__strdup(src->proxy) : NULL;
  dst->client_cert = src->client_cert ? wh__strdup(src->client_cert) : NULL;
  if ((src->retry_schedule && !dst->retry_schedule) || (src->schedule && !dst->schedule) ||
      (src->proxy && !dst->proxy) || (src->client_cert && !dst->client_cert)) {
    settings_free(dst);
    return 0;
  }
  if (src->schedule)
    memcpy(dst->schedule, src->schedule, (size_t)src->nschedule * sizeof *src->schedule);
  return 1;
}

static void endpoint_destroy(wh__endpoint *ep)
{
  settings_free(&ep->set);
  free(ep->tenant);
  free(ep->name);
  free(ep->url);
  free(ep->description);
  free(ep->disabled_reason);
  for (size_t i = 0; i < ep->nfilters; i++)
    free(ep->filters[i]);
  free(ep->filters);
  for (size_t i = 0; i < ep->nheaders; i++)
    free(ep->headers[i]);
  free(ep->headers);
  for (size_t i = 0; i < ep->nsecrets; i++) {
    if (ep->secrets[i].text)
      OPENSSL_cleanse(ep->secrets[i].text, strlen(ep->secrets[i].text));
    free(ep->secrets[i].text);
  }
  if (ep->secrets)
    OPENSSL_cleanse(ep->secrets, ep->nsecrets * sizeof *ep->secrets);
  free(ep->secrets);
  free(ep);
}

void wh__endpoint_unref(wh__endpoint *ep)
{
  if (ep && atomic_fetch_sub_explicit(&ep->refs, 1, memory_order_acq_rel) == 1)
    endpoint_destroy(ep);
}

static char **strv_dup(char **v, size_t n, size_t extra)
{
  char **out = calloc(n + extra + 1, sizeof *out);
  if (!out)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if (!(out[i] = wh__strdup(v[i]))) {
      for (size_t k = 0; k < i; k++)
        free(out[k]);
      free(out);
      return NULL;
    }
  }
  return out;
}

/* A deep copy with room for one more filter, header and secret, so that a
   change can append without reallocating. */
static wh__endpoint *endpoint_clone(const wh__endpoint *src)
{
  wh__endpoint *ep = calloc(1, sizeof *ep);
  if (!ep)
    return NULL;
  atomic_init(&ep->refs, 1);
  memcpy(ep->id, src->id, sizeof ep->id);
  ep->enabled = src->enabled;
  ep->created_ms = src->created_ms;
  ep->enabled_ms = src->enabled_ms;
  ep->generation = src->generation;
  ep->seq = src->seq;
  ep->tenant = src->tenant ? wh__strdup(src->tenant) : NULL;
  ep->name = wh__strdup(src->name);
  ep->url = wh__strdup(src->url);
  ep->description = src->description ? wh__strdup(src->description) : NULL;
  ep->disabled_reason = src->disabled_reason ? wh__strdup(src->disabled_reason) : NULL;
  ep->filters = strv_dup(src->filters, src->nfilters, 1);
  ep->nfilters = ep->filters ? src->nfilters : 0;
  ep->headers = strv_dup(src->headers, src->nheaders, 1);
  ep->nheaders = ep->headers ? src->nheaders : 0;
  ep->secrets = calloc(src->nsecrets + 1, sizeof *ep->secrets);
  if (ep->secrets) {
    for (size_t i = 0; i < src->nsecrets; i++) {
      ep->secrets[i] = src->secrets[i];
      ep->secrets[i].text = wh__strdup(src->secrets[i].text);
      if (ep->secrets[i].text)
        ep->nsecrets++;
      else
        break;
    }
  }
  if (!settings_copy(&ep->set, &src->set) || !ep->name || !ep->url || (src->tenant && !ep->tenant) ||
      (src->description && !ep->description) ||
      (src->disabled_reason && !ep->disabled_reason) || !ep->filters || !ep->headers || !ep->secrets ||
      ep->nsecrets != src->nsecrets) {
    endpoint_destroy(ep);
    return NULL;
  }
  return ep;
}

int wh__endpoint_matches(const wh__endpoint *ep, const char *type)
{
  if (ep->nfilters == 0)
    return 1;
  for (size_t i = 0; i < ep->nfilters; i++)
    if (wh__pattern_match(ep->filters[i], type))
      return 1;
  return 0;
}

/* ---- the id index ------------------------------------------------------------ */

static size_t index_find(const wh_registry *reg, const char *id)
{
  size_t mask = reg->index_cap - 1;
  for (size_t i = wh__hash_str(id) & mask;; i = (i + 1) & mask) {
    if (!reg->index[i] || strcmp(reg->index[i]->id, id) == 0)
      return i;
  }
}

static int index_rebuild(wh_registry *reg, size_t cap)
{
  wh__endpoint **idx = calloc(cap, sizeof *idx);
  if (!idx)
    return wh__oom();
  free(reg->index);
  reg->index = idx;
  reg->index_cap = cap;
  for (size_t i = 0; i < reg->n; i++)
    reg->index[index_find(reg, reg->eps[i]->id)] = reg->eps[i];
  return WH_OK;
}

/* Backward-shift deletion keeps linear probing correct without tombstones
   and without allocating. */
static void index_delete(wh_registry *reg, size_t hole)
{
  size_t mask = reg->index_cap - 1;
  reg->index[hole] = NULL;
  for (size_t j = (hole + 1) & mask; reg->index[j]; j = (j + 1) & mask) {
    size_t home = wh__hash_str(reg->index[j]->id) & mask;
    /* Entry j may move into the hole unless its home lies cyclically in (hole, j]. */
    int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!stays) {
      reg->index[hole] = reg->index[j];
      reg->index[j] = NULL;
      hole = j;
    }
  }
}

static wh__endpoint *lookup(const wh_registry *reg, const char *id)
{
  return reg->index_cap ? reg->index[index_find(reg, id)] : NULL;
}

/* Does reg (the root, or a view) see ep? A view sees its tenant's endpoints only. */
static int visible(const wh_registry *reg, const wh__endpoint *ep)
{
  return !reg->tenant || (ep->tenant && strcmp(ep->tenant, reg->tenant) == 0);
}

/* The endpoint id as reg sees it, or NULL. Caller holds the root's lock. */
static wh__endpoint *lookup_visible(wh_registry *reg, const char *id)
{
  wh__endpoint *ep = lookup(root_of(reg), id);
  return ep && visible(reg, ep) ? ep : NULL;
}

/* Where ep is in v (kept in the order added, so sorted by seq): a binary
   search, so that changes stay cheap with 100,000 endpoints. n when absent. */
static size_t position(wh__endpoint *const *v, size_t n, const wh__endpoint *ep)
{
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v[mid]->seq < ep->seq)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && v[lo]->seq == ep->seq ? lo : n;
}

/* ---- tenant groups ----------------------------------------------------------- */

static size_t group_slot(const wh_registry *reg, const char *tenant)
{
  return wh__hash_str(tenant) & (reg->groups_cap - 1);
}

/* The group of tenant (NULL: the platform's), or NULL when the tenant has none. */
static tgroup *group_find(wh_registry *reg, const char *tenant)
{
  if (!tenant)
    return &reg->platform;
  if (!reg->groups_cap)
    return NULL;
  size_t h = wh__hash_str(tenant);
  for (tgroup *g = reg->groups[h & (reg->groups_cap - 1)]; g; g = g->hnext)
    if (g->hash == h && strcmp(g->tenant, tenant) == 0)
      return g;
  return NULL;
}

static int groups_grow(wh_registry *reg)
{
  size_t old = reg->groups_cap, cap = old ? old * 2 : 64;
  tgroup **t = calloc(cap, sizeof *t);
  if (!t)
    return 0;
  tgroup **prev = reg->groups;
  reg->groups = t;
  reg->groups_cap = cap;
  for (size_t i = 0; i < old; i++) {
    for (tgroup *g = prev[i], *next; g; g = next) {
      next = g->hnext;
      size_t b = g->hash & (cap - 1);
      g->hnext = t[b];
      t[b] = g;
    }
  }
  free(prev);
  return 1;
}

/* The group of tenant, made when it has none yet; NULL without memory. */
static tgroup *group_get(wh_registry *reg, const char *tenant)
{
  tgroup *g = group_find(reg, tenant);
  if (g)
    return g;
  if (reg->ngroups + 1 > reg->groups_cap && !groups_grow(reg))
    return NULL;
  if (!(g = calloc(1, sizeof *g)) || !(g->tenant = wh__strdup(tenant))) {
    free(g);
    return NULL;
  }
  g->hash = wh__hash_str(tenant);
  size_t b = group_slot(reg, tenant);
  g->hnext = reg->groups[b];
  reg->groups[b] = g;
  reg->ngroups++;
  return g;
}

static int group_reserve(tgroup *g)
{
  if (g->n < g->cap)
    return 1;
  size_t cap = g->cap ? g->cap * 2 : 4;
  wh__endpoint **v = realloc(g->eps, cap * sizeof *v);
  if (!v)
    return 0;
  g->eps = v;
  g->cap = cap;
  return 1;
}

/* Take ep out of its group; a tenant's group left empty goes. */
static void group_remove(wh_registry *reg, const wh__endpoint *ep)
{
  tgroup *g = group_find(reg, ep->tenant);
  if (!g)
    return;
  size_t pos = position(g->eps, g->n, ep);
  if (pos < g->n) {
    memmove(g->eps + pos, g->eps + pos + 1, (g->n - pos - 1) * sizeof *g->eps);
    g->n--;
  }
  if (g->n || !g->tenant)
    return;
  for (tgroup **pp = &reg->groups[group_slot(reg, g->tenant)]; *pp; pp = &(*pp)->hnext) {
    if (*pp == g) {
      *pp = g->hnext;
      break;
    }
  }
  reg->ngroups--;
  free(g->tenant);
  free(g->eps);
  free(g);
}

/* The endpoint set (list, index, groups) without the endpoints themselves. */
static void set_release(wh_registry *reg)
{
  free(reg->eps);
  free(reg->index);
  free(reg->platform.eps);
  for (size_t i = 0; i < reg->groups_cap; i++) {
    for (tgroup *g = reg->groups[i], *next; g; g = next) {
      next = g->hnext;
      free(g->tenant);
      free(g->eps);
      free(g);
    }
  }
  free(reg->groups);
}

/* Put `ep` where `old` was (in order, index and group) and drop old. */
static void replace(wh_registry *reg, wh__endpoint *old, wh__endpoint *ep)
{
  tgroup *g = group_find(reg, old->tenant);
  ep->generation = ++reg->generation;
  reg->eps[position(reg->eps, reg->n, old)] = ep;
  reg->index[index_find(reg, old->id)] = ep;
  if (g)
    g->eps[position(g->eps, g->n, old)] = ep;
  wh__endpoint_unref(old);
}

/* ---- open / free --------------------------------------------------------------- */

static int append(wh_registry *reg, wh__endpoint *ep)
{
  tgroup *g = group_get(reg, ep->tenant);
  if (!g || !group_reserve(g))
    return wh__oom();
  if (reg->n == reg->cap) {
    size_t cap = reg->cap ? reg->cap * 2 : 16;
    wh__endpoint **eps = realloc(reg->eps, cap * sizeof *eps);
    if (!eps)
      return wh__oom();
    reg->eps = eps;
    reg->cap = cap;
  }
  if ((reg->n + 1) * 2 > reg->index_cap && index_rebuild(reg, reg->index_cap * 2))
    return WH_ENOMEM;
  ep->generation = ++reg->generation;
  ep->seq = ++reg->seq;
  reg->eps[reg->n++] = ep;
  reg->index[index_find(reg, ep->id)] = ep;
  g->eps[g->n++] = ep;
  return WH_OK;
}

static int load_one(void *ud, const wh__endpoint_row *row)
{
  wh__endpoint *ep;
  int rc = wh__endpoint_decode(row, &ep);
  if (rc)
    return rc;
  if ((rc = append(ud, ep)))
    wh__endpoint_unref(ep);
  return rc;
}

/* A shared store: another process changed endpoints since we loaded them?
   Then load them all again, and swap the set in whole. */
static int refresh(wh_registry *reg)
{
  if (!reg->store->ops->endpoints_version)
    return WH_OK;
  uint64_t v = reg->store->ops->endpoints_version(reg->store);
  if (v == atomic_load(&reg->seen_version))
    return WH_OK;
  wh_registry fresh = {.store = reg->store};
  int rc = index_rebuild(&fresh, 64);
  if (!rc)
    rc = reg->store->ops->load_endpoints(reg->store, load_one, &fresh);
  if (rc) {
    for (size_t i = 0; i < fresh.n; i++)
      wh__endpoint_unref(fresh.eps[i]);
    set_release(&fresh);
    return rc;
  }
  pthread_rwlock_wrlock(&reg->lock);
  /* Keep each endpoint's enabled time across the reload, unless another
     process has just enabled it (that clears its failure history here too). */
  for (size_t i = 0; i < fresh.n; i++) {
    const wh__endpoint *was = lookup(reg, fresh.eps[i]->id);
    if (was && (was->enabled || !fresh.eps[i]->enabled))
      fresh.eps[i]->enabled_ms = was->enabled_ms;
  }
  for (size_t i = 0; i < reg->n; i++)
    wh__endpoint_unref(reg->eps[i]);
  set_release(reg);
  reg->eps = fresh.eps;
  reg->n = fresh.n;
  reg->cap = fresh.cap;
  reg->index = fresh.index;
  reg->index_cap = fresh.index_cap;
  reg->platform = fresh.platform;
  reg->groups = fresh.groups;
  reg->groups_cap = fresh.groups_cap;
  reg->ngroups = fresh.ngroups;
  reg->seq = fresh.seq;
  reg->generation += fresh.generation + 1;
  atomic_store(&reg->seen_version, v);
  pthread_rwlock_unlock(&reg->lock);
  return WH_OK;
}

int wh_registry_open(wh_registry **out, const char *store)
{
  if (!out)
    return wh__fail(WH_EINVAL, "registry: out must not be NULL");
  *out = NULL;
  wh__store_spec spec;
  int rc = wh__store_spec_parse(store, &spec);
  if (rc)
    return rc;
  wh_registry *reg = calloc(1, sizeof *reg);
  if (!reg) {
    wh__store_spec_free(&spec);
    return wh__oom();
  }
  atomic_init(&reg->refs, 1);
  reg->fork_gen = wh__fork_watch();
  if (pthread_rwlock_init(&reg->lock, NULL) != 0) {
    free(reg);
    wh__store_spec_free(&spec);
    return wh__oom();
  }
  pthread_mutex_init(&reg->watch_mu, NULL);
  rc = index_rebuild(reg, 64);
  if (!rc)
    rc = wh__store_open(&spec, &reg->store);
  wh__store_spec_free(&spec);
  if (!rc && reg->store->ops->endpoints_version)
    atomic_store(&reg->seen_version, reg->store->ops->endpoints_version(reg->store));
  if (!rc)
    rc = reg->store->ops->load_endpoints(reg->store, load_one, reg);
  if (rc) {
    registry_destroy(reg);
    return rc;
  }
  *out = reg;
  return WH_OK;
}

void wh__registry_ref(wh_registry *reg) { atomic_fetch_add_explicit(&reg->refs, 1, memory_order_relaxed); }

static void registry_destroy(wh_registry *reg)
{
  /* The parent's, in a forked child: its locks may be held by threads that do
     not exist here, its store's connections are the parent's. Left alone. */
  if (wh__forked(root_of(reg)->fork_gen))
    return;
  if (reg->root) { /* a view */
    wh__registry_unref(reg->root);
    free(reg->tenant);
    free(reg);
    return;
  }
  for (size_t i = 0; i < reg->n; i++)
    wh__endpoint_unref(reg->eps[i]);
  set_release(reg);
  if (reg->store)
    reg->store->ops->close(reg->store);
  for (watcher *w = reg->watchers, *next; w; w = next) {
    next = w->next;
    free(w);
  }
  pthread_mutex_destroy(&reg->watch_mu);
  pthread_rwlock_destroy(&reg->lock);
  free(reg);
}

void wh__registry_unref(wh_registry *reg)
{
  if (reg && atomic_fetch_sub_explicit(&reg->refs, 1, memory_order_acq_rel) == 1)
    registry_destroy(reg);
}

void wh_registry_free(wh_registry *reg) { wh__registry_unref(reg); }

/* ---- tenants ------------------------------------------------------------------------ */

static int text_valid(const char *what, const char *s, size_t min, size_t max);

int wh_registry_open_tenant(wh_registry **view_out, wh_registry *reg, const char *tenant_id)
{
  if (!view_out)
    return wh__fail(WH_EINVAL, "tenant view: view_out must not be NULL");
  *view_out = NULL;
  int rc = wh__registry_check(reg, "tenant view");
  if (!rc)
    rc = text_valid("tenant id", tenant_id, 1, TENANT_MAX_BYTES);
  if (rc)
    return rc;
  if (reg->tenant && strcmp(reg->tenant, tenant_id) != 0)
    return wh__fail(WH_EINVAL, "tenant view: a view of one tenant cannot open another tenant's view");
  wh_registry *view = calloc(1, sizeof *view);
  if (!view || !(view->tenant = wh__strdup(tenant_id))) {
    free(view);
    return wh__oom();
  }
  atomic_init(&view->refs, 1);
  view->root = root_of(reg);
  wh__registry_ref(view->root);
  *view_out = view;
  return WH_OK;
}

int wh_registry_set_int(wh_registry *reg, int setting, long value)
{
  int rc0 = wh__registry_check(reg, "registry setting");
  if (rc0)
    return rc0;
  if (reg->tenant)
    return wh__fail(WH_EINVAL, "registry setting %d: on the root registry only, not on a tenant view", setting);
  switch (setting) {
  case WH_REG_TENANT_MAX_ENDPOINTS:
    if (value < 0 || value > 1000000000L)
      return wh__fail(WH_EINVAL, "WH_REG_TENANT_MAX_ENDPOINTS: %ld is outside 0..1000000000", value);
    atomic_store(&reg->tenant_max, value);
    return WH_OK;
  default:
    return wh__fail(WH_EINVAL, "registry setting %d: no such setting", setting);
  }
}

/* ---- running dispatchers ---------------------------------------------------------------- */

int wh__registry_watch(wh_registry *reg, void (*fn)(void *ud), void *ud)
{
  watcher *w = calloc(1, sizeof *w);
  if (!w)
    return wh__oom();
  w->fn = fn;
  w->ud = ud;
  pthread_mutex_lock(&reg->watch_mu);
  w->next = reg->watchers;
  reg->watchers = w;
  pthread_mutex_unlock(&reg->watch_mu);
  return WH_OK;
}

void wh__registry_unwatch(wh_registry *reg, void (*fn)(void *ud), void *ud)
{
  pthread_mutex_lock(&reg->watch_mu);
  for (watcher **pp = &reg->watchers; *pp; pp = &(*pp)->next) {
    if ((*pp)->fn == fn && (*pp)->ud == ud) {
      watcher *w = *pp;
      *pp = w->next;
      free(w);
      break;
    }
  }
  pthread_mutex_unlock(&reg->watch_mu);
}

int wh__registry_notify(wh_registry *reg)
{
  int n = 0;
  pthread_mutex_lock(&reg->watch_mu);
  for (watcher *w = reg->watchers; w; w = w->next, n++)
    w->fn(w->ud);
  pthread_mutex_unlock(&reg->watch_mu);
  return n;
}

int wh__registry_running(wh_registry *reg)
{
  pthread_mutex_lock(&reg->watch_mu);
  int any = reg->watchers != NULL;
  pthread_mutex_unlock(&reg->watch_mu);
  return any;
}

/* ---- validation -------------------------------------------------------------------- */

static int text_valid(const char *what, const char *s, size_t min, size_t max)
{
  if (!s)
    return wh__fail(WH_EINVAL, "%s: must not be NULL", what);
  size_t n = strnlen(s, max + 1);
  if (n < min)
    return wh__fail(WH_EINVAL, "%s: must not be empty", what);
  if (n > max)
    return wh__fail(WH_EINVAL, "%s: longer than %zu bytes", what, max);
  if (!wh__utf8_valid(s, n))
    return wh__fail(WH_EINVAL, "%s: not valid UTF-8", what);
  return WH_OK;
}

static int is_tchar(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int header_valid(const char *name, const char *value)
{
  static const char *const forbidden[] = {"content-type", "content-length", "transfer-encoding",
                                          "host", "user-agent", "connection"};
  if (!name || !*name)
    return wh__fail(WH_EINVAL, "header name: must not be empty");
  size_t n = strnlen(name, HEADER_NAME_MAX + 1);
  if (n > HEADER_NAME_MAX)
    return wh__fail(WH_EINVAL, "header name: longer than %d bytes", HEADER_NAME_MAX);
  for (size_t i = 0; i < n; i++)
    if (!is_tchar((unsigned char)name[i]))
      return wh__fail(WH_EINVAL, "header name \"%.64s\": character %zu is not allowed in an HTTP header name",
                      name, i + 1);
  for (size_t i = 0; i < WH__COUNT(forbidden); i++)
    if (wh__strcaseeq(name, forbidden[i]))
      return wh__fail(WH_EINVAL, "header name \"%s\": set by the library, cannot be overridden", name);
  if (n >= 8 && strncasecmp(name, "webhook-", 8) == 0)
    return wh__fail(WH_EINVAL, "header name \"%.64s\": webhook-* headers are reserved for signing", name);
  if (!value)
    return WH_OK;
  size_t vn = strnlen(value, HEADER_VALUE_MAX + 1);
  if (vn > HEADER_VALUE_MAX)
    return wh__fail(WH_EINVAL, "header \"%.64s\": value longer than %d bytes", name, HEADER_VALUE_MAX);
  for (size_t i = 0; i < vn; i++) {
    unsigned char c = (unsigned char)value[i];
    if (c == '\r' || c == '\n' || (c < 0x20 && c != '\t') || c == 0x7f)
      return wh__fail(WH_EINVAL, "header \"%.64s\": value has a control character at byte %zu", name, i);
  }
  if (!wh__utf8_valid(value, vn))
    return wh__fail(WH_EINVAL, "header \"%.64s\": value is not valid UTF-8", name);
  return WH_OK;
}

/* Decode and check a secret given by the caller: 24..64 bytes, whsec_ prefix. */
static int new_secret_valid(const char *s, wh__secret *out)
{
  if (strncmp(s, "whsec_", 6) != 0)
    return wh__fail(WH_EINVAL, "secret: must start with \"whsec_\"");
  int kl = wh__secret_decode("secret", s, out->key);
  if (kl < 0)
    return WH_EINVAL;
  if (kl < SECRET_MIN_BYTES || kl > SECRET_MAX_BYTES)
    return wh__fail(WH_EINVAL, "secret: key is %d bytes, must be %d to %d", kl, SECRET_MIN_BYTES,
                    SECRET_MAX_BYTES);
  out->key_len = kl;
  out->expires_ms = 0;
  return (out->text = wh__strdup(s)) ? WH_OK : wh__oom();
}

static int fresh_secret(wh__secret *out)
{
  char text[128];
  int rc = wh_secret_generate(text, sizeof text);
  if (!rc)
    rc = new_secret_valid(text, out);
  OPENSSL_cleanse(text, sizeof text);
  return rc;
}

/* The same checks for callers that validate a whole request before changing
   anything (the admin handler). */
int wh__check_name(const char *name) { return text_valid("endpoint name", name, 1, NAME_MAX_BYTES); }

int wh__check_description(const char *d)
{
  return d ? text_valid("endpoint description", d, 0, DESC_MAX_BYTES) : WH_OK;
}

int wh__check_header(const char *name, const char *value) { return header_valid(name, value); }

static int pattern_check(const char *pattern);
int wh__check_pattern(const char *pattern) { return pattern_check(pattern); }

/* ---- changes ------------------------------------------------------------------------ */

/* Does another endpoint of group g than self have this name? Caller holds the lock. */
static int name_taken(const tgroup *g, const char *name, const wh__endpoint *self)
{
  for (size_t i = 0; g && i < g->n; i++)
    if (g->eps[i] != self && strcmp(g->eps[i]->name, name) == 0)
      return 1;
  return 0;
}

static int name_taken_fail(const char *name)
{
  return wh__fail(WH_EEXIST, "endpoint name: \"%.64s\" is already registered", name);
}

int wh_endpoint_add(wh_registry *reg, const char *name, const char *url, const char *description,
                    char *id_out, size_t id_len)
{
  int rc = wh__registry_check(reg, "endpoint");
  if (rc)
    return rc;
  if (id_out && id_len < WH_ID_MAX)
    return wh__fail(WH_ERANGE, "endpoint id buffer: %zu bytes, at least WH_ID_MAX (%d) needed", id_len,
                    WH_ID_MAX);
  rc = text_valid("endpoint name", name, 1, NAME_MAX_BYTES);
  if (!rc)
    rc = wh__url_validate("endpoint url", url);
  if (!rc && description)
    rc = text_valid("endpoint description", description, 0, DESC_MAX_BYTES);
  if (rc)
    return rc;

  wh__endpoint *ep = calloc(1, sizeof *ep);
  if (!ep)
    return wh__oom();
  atomic_init(&ep->refs, 1);
  ep->enabled = 1;
  ep->created_ms = wh__now_ms();
  ep->enabled_ms = ep->created_ms;
  ep->tenant = reg->tenant ? wh__strdup(reg->tenant) : NULL;
  ep->name = wh__strdup(name);
  ep->url = wh__strdup(url);
  ep->description = description ? wh__strdup(description) : NULL;
  ep->filters = calloc(1, sizeof *ep->filters);
  ep->headers = calloc(1, sizeof *ep->headers);
  ep->secrets = calloc(1, sizeof *ep->secrets);
  if (!ep->name || !ep->url || (reg->tenant && !ep->tenant) || (description && !ep->description) ||
      !ep->filters || !ep->headers || !ep->secrets) {
    endpoint_destroy(ep);
    return wh__oom();
  }
  if ((rc = fresh_secret(&ep->secrets[0])) || (rc = wh__make_id("ep_", ep->id))) {
    endpoint_destroy(ep);
    return rc;
  }
  ep->nsecrets = 1;

  wh_registry *root = root_of(reg);
  if ((rc = refresh(root))) {
    endpoint_destroy(ep);
    return rc;
  }
  pthread_rwlock_wrlock(&root->lock);
  tgroup *g = group_find(root, reg->tenant);
  long max = atomic_load(&root->tenant_max);
  if (name_taken(g, name, NULL))
    rc = name_taken_fail(name);
  else if (reg->tenant && max > 0 && g && g->n >= (size_t)max)
    rc = wh__fail(WH_EFULL, "endpoint: the tenant has %zu endpoints, the most allowed "
                            "(WH_REG_TENANT_MAX_ENDPOINTS)", g->n);
  /* Durable first: an endpoint the store could not keep is not added. */
  else if ((rc = root->store->ops->put_endpoint(root->store, ep)) || (rc = append(root, ep))) {
    if (rc != WH_ESTORE)
      root->store->ops->delete_endpoint(root->store, ep->id);
  }
  pthread_rwlock_unlock(&root->lock);
  if (rc) {
    endpoint_destroy(ep);
    return rc;
  }
  if (id_out)
    memcpy(id_out, ep->id, strlen(ep->id) + 1);
  return WH_OK;
}

static int not_found(const char *id) { return wh__fail(WH_ENOTFOUND, "endpoint \"%.64s\": no such endpoint", id); }

int wh_endpoint_remove(wh_registry *reg, const char *id)
{
  int rc = wh__registry_check(reg, "endpoint");
  if (rc)
    return rc;
  if (!id)
    return wh__fail(WH_EINVAL, "endpoint: id must not be NULL");
  wh_registry *root = root_of(reg);
  if ((rc = refresh(root)))
    return rc;
  pthread_rwlock_wrlock(&root->lock);
  wh__endpoint *ep = lookup_visible(reg, id);
  if (!ep)
    rc = not_found(id);
  else if (!(rc = root->store->ops->delete_endpoint(root->store, id))) {
    size_t pos = position(root->eps, root->n, ep);
    memmove(root->eps + pos, root->eps + pos + 1, (root->n - pos - 1) * sizeof *root->eps);
    root->n--;
    root->generation++;
    index_delete(root, index_find(root, id));
    group_remove(root, ep);
  }
  pthread_rwlock_unlock(&root->lock);
  if (rc)
    return rc;
  wh__endpoint_unref(ep);
  return WH_OK;
}

/* Apply `change` to a copy of endpoint id and swap it in. The change runs
   under the root's write lock, with the root at hand. */
typedef int (*change_fn)(wh_registry *root, wh__endpoint *copy, const void *arg);

static int modify(wh_registry *reg, const char *id, change_fn change, const void *arg)
{
  int rc0 = wh__registry_check(reg, "endpoint");
  if (rc0)
    return rc0;
  if (!id)
    return wh__fail(WH_EINVAL, "endpoint: id must not be NULL");
  wh_registry *root = root_of(reg);
  rc0 = refresh(root);
  if (rc0)
    return rc0;
  pthread_rwlock_wrlock(&root->lock);
  wh__endpoint *old = lookup_visible(reg, id);
  if (!old) {
    pthread_rwlock_unlock(&root->lock);
    return not_found(id);
  }
  wh__endpoint *ep = endpoint_clone(old);
  int rc = ep ? change(root, ep, arg) : wh__oom();
  if (rc == WH_OK)
    rc = root->store->ops->put_endpoint(root->store, ep);
  if (rc == WH_OK)
    replace(root, old, ep);
  else if (ep)
    endpoint_destroy(ep);
  pthread_rwlock_unlock(&root->lock);
  return rc;
}

static int change_name(wh_registry *root, wh__endpoint *ep, const void *arg)
{
  if (name_taken(group_find(root, ep->tenant), arg, lookup(root, ep->id)))
    return name_taken_fail(arg);
  char *name = wh__strdup(arg);
  if (!name)
    return wh__oom();
  free(ep->name);
  ep->name = name;
  return WH_OK;
}

int wh_endpoint_set_name(wh_registry *reg, const char *id, const char *name)
{
  int rc = text_valid("endpoint name", name, 1, NAME_MAX_BYTES);
  return rc ? rc : modify(reg, id, change_name, name);
}

static int change_description(wh_registry *root, wh__endpoint *ep, const void *arg)
{
  char *d = NULL;
  if (arg && !(d = wh__strdup(arg)))
    return wh__oom();
  free(ep->description);
  ep->description = d;
  return WH_OK;
}

int wh_endpoint_set_description(wh_registry *reg, const char *id, const char *description)
{
  int rc = description ? text_valid("endpoint description", description, 0, DESC_MAX_BYTES) : WH_OK;
  return rc ? rc : modify(reg, id, change_description, description);
}

typedef struct {
  int enabled;
  const char *reason;
} enable_arg;

static int change_enabled(wh_registry *root, wh__endpoint *ep, const void *arg)
{
  const enable_arg *a = arg;
  char *reason = NULL;
  if (!a->enabled && a->reason && !(reason = wh__strdup(a->reason)))
    return wh__oom();
  free(ep->disabled_reason);
  ep->disabled_reason = reason;
  if (a->enabled && !ep->enabled)
    ep->enabled_ms = wh__now_ms(); /* a fresh start: the failure history is cleared */
  ep->enabled = a->enabled;
  return WH_OK;
}

int wh_endpoint_set_enabled(wh_registry *reg, const char *id, int enabled)
{
  enable_arg a = {enabled != 0, NULL};
  return modify(reg, id, change_enabled, &a);
}

int wh__registry_disable(wh_registry *reg, const char *id, const char *reason)
{
  enable_arg a = {0, reason};
  return modify(reg, id, change_enabled, &a);
}

static int change_url(wh_registry *root, wh__endpoint *ep, const void *arg)
{
  char *url = wh__strdup(arg);
  if (!url)
    return wh__oom();
  free(ep->url);
  ep->url = url;
  return WH_OK;
}

int wh_endpoint_set_url(wh_registry *reg, const char *id, const char *url)
{
  int rc = wh__url_validate("endpoint url", url);
  return rc ? rc : modify(reg, id, change_url, url);
}

static int change_subscribe(wh_registry *root, wh__endpoint *ep, const void *arg)
{
  for (size_t i = 0; i < ep->nfilters; i++)
    if (strcmp(ep->filters[i], arg) == 0)
      return WH_OK;
  if (ep->nfilters >= MAX_FILTERS)
    return wh__fail(WH_EINVAL, "filter: an endpoint has at most %d patterns", MAX_FILTERS);
  if (!(ep->filters[ep->nfilters] = wh__strdup(arg)))
    return wh__oom();
  ep->nfilters++;
  return WH_OK;
}

static int pattern_check(const char *pattern)
{
  if (!pattern)
    return wh__fail(WH_EINVAL, "filter: pattern must not be NULL");
  if (strlen(pattern) > 2 * 64 + 1 || !wh__pattern_valid(pattern))
    return wh__fail(WH_EINVAL,
                    "filter \"%.80s\": expected \"<resource_type>.<event_type>\" with names of "
                    "[A-Za-z0-9_-] or \"*\" in either part, or \"*\"",
                    pattern);
  return WH_OK;
}

int wh_endpoint_subscribe(wh_registry *reg, const char *id, const char *pattern)
{
  int rc = pattern_check(pattern);
  return rc ? rc : modify(reg, id, change_subscribe, pattern);
}

static int change_unsubscribe(wh_registry *root, wh__endpoint *ep, const void *arg)
{
  for (size_t i = 0; i < ep->nfilters; i++) {
    if (strcmp(ep->filters[i], arg) == 0) {
      free(ep->filters[i]);
      memmove(ep->filters + i, ep->filters + i + 1, (ep->nfilters - i - 1) * sizeof *ep->filters);
      ep->nfilters--;
      return WH_OK;
    }
  }
  return wh__fail(WH_ENOTFOUND, "filter \"%.80s\": the endpoint has no such pattern", (const char *)arg);
}

int wh_endpoint_unsubscribe(wh_registry *reg, const char *id, const char *pattern)
{
  int rc = pattern_check(pattern);
  return rc ? rc : modify(reg, id, change_unsubscribe, pattern);
}

typedef struct {
  const char *name, *value;
} header_arg;

static int change_header(wh_registry *root, wh__endpoint *ep, const void *arg)
{
  const header_arg *h = arg;
  size_t nl = strlen(h->name);
  size_t i = 0;
  for (; i < ep->nheaders; i++)
    if (strncasecmp(ep->headers[i], h->name, nl) == 0 && ep->headers[i][nl] == ':')
      break;
  if (!h->value) {
    if (i == ep->nheaders)
      return WH_OK;
    free(ep->headers[i]);
    memmove(ep->headers + i, ep->headers + i + 1, (ep->nheaders - i - 1) * sizeof *ep->headers);
    ep->nheaders--;
    return WH_OK;
  }
  if (i == ep->nheaders && ep->nheaders >= MAX_HEADERS)
    return wh__fail(WH_EINVAL, "header: an endpoint has at most %d custom headers", MAX_HEADERS);
  size_t vl = strlen(h->value);
  char *line = malloc(nl + 2 + vl + 1);
  if (!line)
    return wh__oom();
  memcpy(line, h->name, nl);
  memcpy(line + nl, ": ", 2);
  memcpy(line + nl + 2, h->value, vl + 1);
  if (i < ep->nheaders)
    free(ep->headers[i]);
  else
    ep->nheaders++;
  ep->headers[i] = line;
  return WH_OK;
}

int wh_endpoint_set_header(wh_registry *reg, const char *id, const char *name, const char *value)
{
  int rc = header_valid(name, value);
  header_arg h = {name, value};
  return rc ? rc : modify(reg, id, change_header, &h);
}

typedef struct {
  wh__secret fresh;
  unsigned grace_seconds;
} rotate_arg;

static int change_rotate(wh_registry *root, wh__endpoint *ep, const void *arg)
{
  const rotate_arg *r = arg;
  int64_t now = wh__now_ms();
  /* Keep only secrets still in their grace period, and the current one if it gets one. */
  size_t keep = 0;
  for (size_t i = 0; i < ep->nsecrets; i++) {
    wh__secret s = ep->secrets[i];
    if (s.expires_ms == 0 && r->grace_seconds > 0)
      s.expires_ms = now + (int64_t)r->grace_seconds * 1000;
    if (s.expires_ms > now && keep + 1 < MAX_SECRETS) {
      ep->secrets[keep++] = s;
    } else {
      OPENSSL_cleanse(s.text, strlen(s.text));
      free(s.text);
    }
  }
  memmove(ep->secrets + 1, ep->secrets, keep * sizeof *ep->secrets);
  ep->secrets[0] = r->fresh;
  ep->secrets[0].text = wh__strdup(r->fresh.text);
  ep->nsecrets = keep + (ep->secrets[0].text ? 1 : 0);
  if (!ep->secrets[0].text) {
    memmove(ep->secrets, ep->secrets + 1, keep * sizeof *ep->secrets);
    return wh__oom();
  }
  return WH_OK;
}

int wh_endpoint_rotate_secret(wh_registry *reg, const char *id, const char *new_secret,
                              unsigned grace_seconds)
{
  rotate_arg r = {.grace_seconds = grace_seconds};
  int rc = new_secret ? new_secret_valid(new_secret, &r.fresh) : fresh_secret(&r.fresh);
  if (rc)
    return rc;
  rc = modify(reg, id, change_rotate, &r);
  OPENSSL_cleanse(r.fresh.text, strlen(r.fresh.text));
  free(r.fresh.text);
  OPENSSL_cleanse(&r, sizeof r);
  return rc;
}

/* ---- per-endpoint delivery settings ------------------------------------------------------ */

/* Parse and keep a retry schedule ("" is one attempt); NULL clears it. */
static int set_schedule(wh__ep_settings *st, const char *text)
{
  int64_t delays[WH__MAX_SCHEDULE];
  int n = 0;
  char *copy = NULL;
  int64_t *v = NULL;
  if (text) {
    int rc = wh__schedule_parse(text, delays, WH__MAX_SCHEDULE, &n);
    if (rc)
      return rc;
    if (!(copy = wh__strdup(text)) || !(v = malloc(((size_t)n + 1) * sizeof *v))) {
      free(copy);
      return wh__oom();
    }
    memcpy(v, delays, (size_t)n * sizeof *v);
  }
  free(st->retry_schedule);
  free(st->schedule);
  st->retry_schedule = copy;
  st->schedule = v;
  st->nschedule = n;
  return WH_OK;
}

typedef struct {
  int setting;
  long value;
  const char *text;
} setting_arg;

static int change_setting(wh_registry *root, wh__endpoint *ep, const void *arg)
{
  const setting_arg *a = arg;
  wh__ep_settings *st = &ep->set;
  char **slot = a->setting == WH_EP_PROXY ? &st->proxy : &st->client_cert;
  char *copy = NULL;
  switch (a->setting) {
  case WH_EP_ORDERED: st->ordered = (int)a->value; return WH_OK;
  case WH_EP_RATE_LIMIT: st->rate_limit = a->value; return WH_OK;
  case WH_EP_TIMEOUT_MS: st->timeout_ms = a->value; return WH_OK;
  case WH_EP_RETRY_SCHEDULE: return set_schedule(st, a->text);
  default:
    if (a->text && !(copy = wh__strdup(a->text)))
      return wh__oom();
    free(*slot);
    *slot = copy;
    return WH_OK;
  }
}

int wh__check_setting_int(int setting, long value)
{
  long lo = 0, hi = 0;
  const char *name = NULL;
  switch (setting) {
  case WH_EP_ORDERED: name = "WH_EP_ORDERED"; hi = 1; break;
  case WH_EP_RATE_LIMIT: name = "WH_EP_RATE_LIMIT"; hi = 100000; break;
  case WH_EP_TIMEOUT_MS: name = "WH_EP_TIMEOUT_MS"; lo = 1000; hi = 30000; break;
  case WH_EP_RETRY_SCHEDULE:
  case WH_EP_PROXY:
  case WH_EP_CLIENT_CERT:
    return wh__fail(WH_EINVAL, "endpoint setting %d takes text: use wh_endpoint_set_str", setting);
  default:
    return wh__fail(WH_EINVAL, "endpoint setting %d: no such setting", setting);
  }
  /* 0 turns a setting off (timeout: back to the dispatcher's). */
  if (value != 0 && (value < lo || value > hi))
    return wh__fail(WH_EINVAL, "%s: %ld is outside %ld..%ld (0: not set)", name, value, lo ? lo : 0, hi);
  return WH_OK;
}

int wh_endpoint_set_int(wh_registry *reg, const char *id, int setting, long value)
{
  int rc = wh__check_setting_int(setting, value);
  setting_arg a = {setting, value, NULL};
  return rc ? rc : modify(reg, id, change_setting, &a);
}

/* A client certificate file must hold a certificate and its private key, now:
   not a surprise at the first delivery. */
static int client_cert_valid(const char *path)
{
  if (!*path || strlen(path) > 4096)
    return wh__fail(WH_EINVAL, "WH_EP_CLIENT_CERT: a path of 1 to 4096 bytes");
  FILE *f = fopen(path, "r");
  if (!f)
    return wh__fail(WH_EINVAL, "WH_EP_CLIENT_CERT \"%.200s\": cannot read it: %s", path, strerror(errno));
  X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
  rewind(f);
  EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  fclose(f);
  int rc = WH_OK;
  if (!cert)
    rc = wh__fail(WH_EINVAL, "WH_EP_CLIENT_CERT \"%.200s\": no PEM certificate in it", path);
  else if (!key)
    rc = wh__fail(WH_EINVAL, "WH_EP_CLIENT_CERT \"%.200s\": no unencrypted PEM private key in it", path);
  else if (X509_check_private_key(cert, key) != 1)
    rc = wh__fail(WH_EINVAL, "WH_EP_CLIENT_CERT \"%.200s\": the private key does not belong to the certificate",
                  path);
  X509_free(cert);
  EVP_PKEY_free(key);
  return rc;
}

int wh__check_setting_str(int setting, const char *value)
{
  int rc = WH_OK;
  switch (setting) {
  case WH_EP_RETRY_SCHEDULE:
    if (value) {
      int64_t delays[WH__MAX_SCHEDULE];
      int n;
      rc = wh__schedule_parse(value, delays, WH__MAX_SCHEDULE, &n);
    }
    break;
  case WH_EP_PROXY:
    if (value)
      rc = wh__proxy_validate("WH_EP_PROXY", value, NULL);
    break;
  case WH_EP_CLIENT_CERT:
    if (value)
      rc = client_cert_valid(value);
    break;
  case WH_EP_ORDERED:
  case WH_EP_RATE_LIMIT:
  case WH_EP_TIMEOUT_MS:
    return wh__fail(WH_EINVAL, "endpoint setting %d takes a number: use wh_endpoint_set_int", setting);
  default:
    return wh__fail(WH_EINVAL, "endpoint setting %d: no such setting", setting);
  }
  return rc;
}

int wh_endpoint_set_str(wh_registry *reg, const char *id, int setting, const char *value)
{
  int rc = wh__check_setting_str(setting, value);
  setting_arg a = {setting, 0, value};
  return rc ? rc : modify(reg, id, change_setting, &a);
}

/* ---- reads ------------------------------------------------------------------------- */

wh__endpoint *wh__registry_get(wh_registry *reg, const char *id)
{
  wh_registry *root = root_of(reg);
  refresh(root); /* on failure: the endpoints we have */
  pthread_rwlock_rdlock(&root->lock);
  wh__endpoint *ep = lookup_visible(reg, id);
  if (ep)
    wh__endpoint_ref(ep);
  pthread_rwlock_unlock(&root->lock);
  return ep;
}

wh__endpoint *wh__registry_peek(wh_registry *reg, const char *id)
{
  wh_registry *root = root_of(reg);
  if (pthread_rwlock_tryrdlock(&root->lock) != 0)
    return NULL;
  wh__endpoint *ep = lookup_visible(reg, id);
  if (ep)
    wh__endpoint_ref(ep);
  pthread_rwlock_unlock(&root->lock);
  return ep;
}

static size_t match_group(const tgroup *g, const char *type, wh__endpoint **v, size_t k)
{
  for (size_t i = 0; g && i < g->n; i++) {
    wh__endpoint *ep = g->eps[i];
    if (ep->enabled && wh__endpoint_matches(ep, type)) {
      wh__endpoint_ref(ep);
      v[k++] = ep;
    }
  }
  return k;
}

int wh__registry_match(wh_registry *reg, const char *tenant, const char *type, wh__endpoint ***out, size_t *n)
{
  reg = root_of(reg);
  refresh(reg); /* on failure: the endpoints we have */
  pthread_rwlock_rdlock(&reg->lock);
  const tgroup *g = tenant ? group_find(reg, tenant) : NULL;
  size_t most = reg->platform.n + (g ? g->n : 0);
  wh__endpoint **v = malloc((most ? most : 1) * sizeof *v);
  size_t k = 0;
  if (v)
    k = match_group(&reg->platform, type, v, match_group(g, type, v, 0));
  pthread_rwlock_unlock(&reg->lock);
  if (!v)
    return wh__oom();
  *out = v;
  *n = k;
  return WH_OK;
}

int wh_endpoint_secret(wh_registry *reg, const char *id, char *buf, size_t len)
{
  if (!reg || !id || !buf)
    return wh__fail(WH_EINVAL, "endpoint secret: %s must not be NULL",
                    !reg ? "registry" : !id ? "id" : "buf");
  int rcf = wh__registry_check(reg, "endpoint secret");
  if (rcf)
    return rcf;
  wh__endpoint *ep = wh__registry_get(reg, id);
  if (!ep)
    return not_found(id);
  int rc = wh__copy_out("endpoint secret buffer", ep->secrets[0].text, buf, len);
  wh__endpoint_unref(ep);
  return rc;
}

/* The settings that are set, as an object. For display (shown): the proxy
   without its password, the certificate's path only; stored: everything. */
static cJSON *settings_json(const wh__ep_settings *st, int shown)
{
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  if (st->ordered)
    cJSON_AddBoolToObject(o, "ordered", 1);
  if (st->rate_limit)
    cJSON_AddNumberToObject(o, "rate_limit", (double)st->rate_limit);
  if (st->timeout_ms)
    cJSON_AddNumberToObject(o, "timeout_ms", (double)st->timeout_ms);
  if (st->retry_schedule)
    cJSON_AddStringToObject(o, "retry_schedule", st->retry_schedule);
  if (st->proxy) {
    char *p = NULL;
    if (!shown || wh__proxy_validate("proxy", st->proxy, &p) == WH_OK)
      cJSON_AddStringToObject(o, "proxy", shown ? p : st->proxy);
    free(p);
  }
  if (st->client_cert)
    cJSON_AddStringToObject(o, "client_cert", st->client_cert);
  return o;
}

static cJSON *endpoint_json(const wh__endpoint *ep)
{
  cJSON *o = cJSON_CreateObject();
  cJSON *filters = cJSON_CreateArray();
  cJSON *headers = cJSON_CreateObject();
  char when[64];
  wh__iso_ms(ep->created_ms, when);
  if (!o || !filters || !headers) {
    cJSON_Delete(o);
    cJSON_Delete(filters);
    cJSON_Delete(headers);
    return NULL;
  }
  cJSON_AddStringToObject(o, "id", ep->id);
  cJSON_AddStringToObject(o, "name", ep->name);
  cJSON_AddStringToObject(o, "url", ep->url);
  if (ep->description)
    cJSON_AddStringToObject(o, "description", ep->description);
  else
    cJSON_AddNullToObject(o, "description");
  cJSON_AddBoolToObject(o, "enabled", ep->enabled);
  for (size_t i = 0; i < ep->nfilters; i++)
    cJSON_AddItemToArray(filters, cJSON_CreateString(ep->filters[i]));
  cJSON_AddItemToObject(o, "filters", filters);
  for (size_t i = 0; i < ep->nheaders; i++) {
    const char *colon = strchr(ep->headers[i], ':');
    char *name = wh__strndup(ep->headers[i], (size_t)(colon - ep->headers[i]));
    if (name)
      cJSON_AddStringToObject(headers, name, colon + 2);
    free(name);
  }
  cJSON_AddItemToObject(o, "headers", headers);
  cJSON_AddStringToObject(o, "created_at", when);
  if (ep->disabled_reason)
    cJSON_AddStringToObject(o, "disabled_reason", ep->disabled_reason);
  else
    cJSON_AddNullToObject(o, "disabled_reason");
  if (ep->tenant)
    cJSON_AddStringToObject(o, "tenant_id", ep->tenant);
  else
    cJSON_AddNullToObject(o, "tenant_id");
  cJSON_AddItemToObject(o, "settings", settings_json(&ep->set, 1));
  return o;
}

static int print_json(cJSON *doc, char **json_out)
{
  char *s = doc ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  if (!s)
    return wh__oom();
  /* cJSON's allocator is malloc (we never change its hooks), so wh_free() frees it. */
  *json_out = s;
  return WH_OK;
}

int wh_endpoint_get_json(wh_registry *reg, const char *id, char **json_out)
{
  if (!reg || !id || !json_out)
    return wh__fail(WH_EINVAL, "endpoint json: %s must not be NULL",
                    !reg ? "registry" : !id ? "id" : "json_out");
  int rcf = wh__registry_check(reg, "endpoint json");
  if (rcf)
    return rcf;
  wh__endpoint *ep = wh__registry_get(reg, id);
  if (!ep)
    return not_found(id);
  int rc = print_json(endpoint_json(ep), json_out);
  wh__endpoint_unref(ep);
  return rc;
}

int wh_endpoint_list_json(wh_registry *reg, char **json_out)
{
  if (!reg || !json_out)
    return wh__fail(WH_EINVAL, "endpoint list: %s must not be NULL", reg ? "json_out" : "registry");
  int rcf = wh__registry_check(reg, "endpoint list");
  if (rcf)
    return rcf;
  wh_registry *root = root_of(reg);
  int rc = refresh(root);
  if (rc)
    return rc;
  cJSON *arr = cJSON_CreateArray();
  pthread_rwlock_rdlock(&root->lock);
  /* A view lists its tenant's group, kept in the order they were added. */
  const tgroup *g = reg->tenant ? group_find(root, reg->tenant) : NULL;
  wh__endpoint *const *v = reg->tenant ? (g ? g->eps : NULL) : root->eps;
  size_t n = reg->tenant ? (g ? g->n : 0) : root->n;
  for (size_t i = 0; arr && i < n; i++) {
    cJSON *o = endpoint_json(v[i]);
    if (!o) {
      cJSON_Delete(arr);
      arr = NULL;
      break;
    }
    cJSON_AddItemToArray(arr, o);
  }
  pthread_rwlock_unlock(&root->lock);
  return print_json(arr, json_out);
}

size_t wh__endpoint_sign(const wh__endpoint *ep, const char *msg_id, int64_t ts, const void *body,
                         size_t body_len, int64_t now_ms, char *out, size_t len)
{
  size_t used = 0;
  for (size_t i = 0; i < ep->nsecrets; i++) {
    const wh__secret *s = &ep->secrets[i];
    if (s->expires_ms != 0 && s->expires_ms <= now_ms)
      continue;
    char sig[WH__SIG_MAX];
    if (wh__sign_raw(s->key, (size_t)s->key_len, msg_id, ts, body, body_len, sig) != WH_OK)
      return 0;
    size_t sl = strlen(sig);
    if (used + (used ? 1 : 0) + sl + 1 > len)
      return 0;
    if (used)
      out[used++] = ' ';
    memcpy(out + used, sig, sl + 1);
    used += sl;
  }
  return used;
}

int wh_endpoint_signature(wh_registry *reg, const char *id, const char *msg_id, int64_t timestamp,
                          const void *body, size_t body_len, char *header_out, size_t len)
{
  if (!reg || !id || !msg_id || !*msg_id || !header_out || (!body && body_len))
    return wh__fail(WH_EINVAL, "endpoint signature: %s",
                    !reg ? "registry must not be NULL" : !id ? "id must not be NULL"
                    : (!msg_id || !*msg_id) ? "msg_id must not be empty"
                    : !header_out ? "header_out must not be NULL" : "body is NULL with a length");
  int rcf = wh__registry_check(reg, "endpoint signature");
  if (rcf)
    return rcf;
  wh__endpoint *ep = wh__registry_get(reg, id);
  if (!ep)
    return not_found(id);
  size_t n = wh__endpoint_sign(ep, msg_id, timestamp, body, body_len, wh__now_ms(), header_out, len);
  wh__endpoint_unref(ep);
  if (n == 0)
    return wh__fail(WH_ERANGE, "endpoint signature: buffer of %zu bytes is too small", len);
  return WH_OK;
}

/* ---- the stored form ---------------------------------------------------------------- */

static char *strv_json(char **v, size_t n)
{
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; arr && i < n; i++)
    cJSON_AddItemToArray(arr, cJSON_CreateString(v[i]));
  char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
  cJSON_Delete(arr);
  return s;
}

int wh__endpoint_encode(const wh__endpoint *ep, char **filters, char **headers, char **secrets, char **settings)
{
  cJSON *so = settings_json(&ep->set, 0);
  *settings = so ? cJSON_PrintUnformatted(so) : NULL;
  cJSON_Delete(so);
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; arr && i < ep->nsecrets; i++) {
    cJSON *o = cJSON_CreateObject();
    if (!o)
      break;
    cJSON_AddStringToObject(o, "secret", ep->secrets[i].text);
    cJSON_AddNumberToObject(o, "expires_ms", (double)ep->secrets[i].expires_ms);
    cJSON_AddItemToArray(arr, o);
  }
  *secrets = arr ? cJSON_PrintUnformatted(arr) : NULL;
  cJSON_Delete(arr);
  *filters = strv_json(ep->filters, ep->nfilters);
  *headers = strv_json(ep->headers, ep->nheaders);
  if (!*secrets || !*filters || !*headers || !*settings) {
    free(*secrets);
    free(*filters);
    free(*headers);
    free(*settings);
    *secrets = *filters = *headers = *settings = NULL;
    return wh__oom();
  }
  return WH_OK;
}

static int strv_parse(const char *json, char ***out, size_t *n)
{
  cJSON *arr = cJSON_Parse(json ? json : "[]");
  int count = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
  if (count < 0) {
    cJSON_Delete(arr);
    return 0;
  }
  char **v = calloc((size_t)count + 2, sizeof *v); /* room to append one, as clones have */
  int i = 0;
  for (cJSON *it = arr ? arr->child : NULL; v && it; it = it->next, i++)
    if (!cJSON_IsString(it) || !(v[i] = wh__strdup(it->valuestring)))
      break;
  cJSON_Delete(arr);
  if (!v || i != count) {
    for (int k = 0; v && k < i; k++)
      free(v[k]);
    free(v);
    return 0;
  }
  *out = v;
  *n = (size_t)count;
  return 1;
}

/* The stored settings (written by settings_json), checked as when they were set. */
static int settings_load(wh__ep_settings *st, const char *json)
{
  cJSON *o = cJSON_Parse(json);
  int ok = cJSON_IsObject(o);
  for (cJSON *it = ok ? o->child : NULL; ok && it; it = it->next) {
    if (strcmp(it->string, "ordered") == 0)
      st->ordered = cJSON_IsTrue(it);
    else if (strcmp(it->string, "rate_limit") == 0 && cJSON_IsNumber(it))
      st->rate_limit = (long)it->valuedouble;
    else if (strcmp(it->string, "timeout_ms") == 0 && cJSON_IsNumber(it))
      st->timeout_ms = (long)it->valuedouble;
    else if (strcmp(it->string, "retry_schedule") == 0 && cJSON_IsString(it))
      ok = set_schedule(st, it->valuestring) == WH_OK;
    else if (strcmp(it->string, "proxy") == 0 && cJSON_IsString(it))
      ok = (st->proxy = wh__strdup(it->valuestring)) != NULL;
    else if (strcmp(it->string, "client_cert") == 0 && cJSON_IsString(it))
      ok = (st->client_cert = wh__strdup(it->valuestring)) != NULL;
  }
  cJSON_Delete(o);
  return ok;
}

int wh__endpoint_decode(const wh__endpoint_row *row, wh__endpoint **out)
{
  wh__endpoint *ep = calloc(1, sizeof *ep);
  if (!ep)
    return wh__oom();
  atomic_init(&ep->refs, 1);
  int ok = row->id && strlen(row->id) < WH_ID_MAX && row->name && row->url;
  if (ok) {
    memcpy(ep->id, row->id, strlen(row->id) + 1);
    ep->tenant = row->tenant_id ? wh__strdup(row->tenant_id) : NULL;
    ep->name = wh__strdup(row->name);
    ep->url = wh__strdup(row->url);
    ep->description = row->description ? wh__strdup(row->description) : NULL;
    ep->disabled_reason = row->disabled_reason ? wh__strdup(row->disabled_reason) : NULL;
    ep->enabled = row->enabled != 0;
    ep->created_ms = row->created_ms;
    ep->enabled_ms = wh__now_ms();
    ok = ep->name && ep->url && (!row->tenant_id || ep->tenant) && (!row->description || ep->description) &&
         (!row->disabled_reason || ep->disabled_reason) && strv_parse(row->filters, &ep->filters, &ep->nfilters) &&
         strv_parse(row->headers, &ep->headers, &ep->nheaders);
  }
  cJSON *secrets = ok ? cJSON_Parse(row->secrets ? row->secrets : "") : NULL;
  int ns = cJSON_IsArray(secrets) ? cJSON_GetArraySize(secrets) : 0;
  ok = ok && ns > 0 && (ep->secrets = calloc((size_t)ns + 1, sizeof *ep->secrets)) != NULL;
  for (cJSON *it = ok ? secrets->child : NULL; ok && it; it = it->next) {
    wh__secret *sec = &ep->secrets[ep->nsecrets];
    const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(it, "secret"));
    cJSON *exp = cJSON_GetObjectItem(it, "expires_ms");
    ok = text && cJSON_IsNumber(exp) && (sec->key_len = wh__secret_decode("stored secret", text, sec->key)) > 0 &&
         (sec->text = wh__strdup(text)) != NULL;
    if (ok) {
      sec->expires_ms = (int64_t)exp->valuedouble;
      ep->nsecrets++;
    }
  }
  cJSON_Delete(secrets);
  if (ok && row->settings && *row->settings)
    ok = settings_load(&ep->set, row->settings);
  if (!ok) {
    endpoint_destroy(ep);
    return wh__fail(WH_ESTORE, "store: endpoint \"%.64s\" is stored in a form this library cannot read",
                    row->id ? row->id : "?");
  }
  *out = ep;
  return WH_OK;
}

/* ---- a view's endpoints, for the log -------------------------------------------------------- */

static int by_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int wh__registry_tenant_ids(wh_registry *reg, char ***ids_out, size_t *n_out)
{
  wh_registry *root = root_of(reg);
  refresh(root); /* on failure: the endpoints we have */
  pthread_rwlock_rdlock(&root->lock);
  const tgroup *g = group_find(root, reg->tenant);
  size_t n = g ? g->n : 0;
  char **v = calloc(n ? n : 1, sizeof *v);
  size_t k = 0;
  for (; v && k < n && (v[k] = wh__strdup(g->eps[k]->id)); k++) {
  }
  pthread_rwlock_unlock(&root->lock);
  if (!v || k < n) {
    wh__strv_free(v, k);
    return wh__oom();
  }
  qsort(v, n, sizeof *v, by_str);
  *ids_out = v;
  *n_out = n;
  return WH_OK;
}

void wh__strv_free(char **v, size_t n)
{
  for (size_t i = 0; v && i < n; i++)
    free(v[i]);
  free(v);
}
