/* The store string of wh_registry_open. */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_BYTES 4096

int wh__store_spec_parse(const char *store, wh__store_spec *out)
{
  memset(out, 0, sizeof *out);
  if (!store || !*store || strcmp(store, "memory:") == 0) {
    out->kind = WH__STORE_MEMORY;
    return WH_OK;
  }
  size_t n = strnlen(store, PATH_MAX_BYTES + 64);
  if (n > PATH_MAX_BYTES + 32)
    return wh__fail(WH_EINVAL, "store: longer than %d bytes", PATH_MAX_BYTES + 32);
  if (strncmp(store, "sqlite:", 7) == 0) {
    const char *path = store + 7;
    if (!*path)
      return wh__fail(WH_EINVAL, "store: \"sqlite:\" needs a file path, as in \"sqlite:/var/lib/app/webhooks.db\"");
    if (strlen(path) > PATH_MAX_BYTES)
      return wh__fail(WH_EINVAL, "store: sqlite path longer than %d bytes", PATH_MAX_BYTES);
    if (!wh__utf8_valid(path, strlen(path)))
      return wh__fail(WH_EINVAL, "store: sqlite path is not valid UTF-8");
    out->kind = WH__STORE_SQLITE;
  } else if (strncmp(store, "postgresql://", 13) == 0 || strncmp(store, "postgres://", 11) == 0) {
    if (!wh__utf8_valid(store, n))
      return wh__fail(WH_EINVAL, "store: postgresql URI is not valid UTF-8");
    out->kind = WH__STORE_POSTGRES;
  } else {
    return wh__fail(WH_EINVAL,
                    "store: \"%.40s\" is not understood; use \"memory:\", \"sqlite:PATH\" or "
                    "\"postgresql://...\"",
                    store);
  }
  out->target = wh__strdup(out->kind == WH__STORE_SQLITE ? store + 7 : store);
  return out->target ? WH_OK : wh__oom();
}

void wh__store_spec_free(wh__store_spec *spec)
{
  free(spec->target);
  spec->target = NULL;
}

int wh__store_open(const wh__store_spec *spec, wh__store **out)
{
  switch (spec->kind) {
  case WH__STORE_MEMORY:
    return wh__store_memory_open(out);
  case WH__STORE_SQLITE:
#ifdef WEBHOOK_WITH_SQLITE
    return wh__store_sqlite_open(spec->target, out);
#else
    return wh__fail(WH_EINVAL, "store: this build has no sqlite: store (WEBHOOK_WITH_SQLITE=OFF)");
#endif
  case WH__STORE_POSTGRES:
#ifdef WEBHOOK_WITH_POSTGRES
    return wh__store_pg_open(spec->target, out);
#else
    return wh__fail(WH_EINVAL, "store: this build has no postgresql:// store (WEBHOOK_WITH_POSTGRES=OFF)");
#endif
  }
  return wh__fail(WH_EINVAL, "store: unknown kind");
}

int wh__store_forked_fail(const char *label)
{
  return wh__fail(WH_ESTATE, "store %s: belongs to the parent process (after fork, open a new registry in the "
                             "child)", label);
}

wh__msg *wh__msg_new(const char *id, const char *type, const char *body, size_t len, int64_t created_ms)
{
  /* One allocation: header, body, type. Pending deliveries hold these, so
     every byte counts (docs/performance.md). */
  size_t tl = strlen(type);
  if (strlen(id) >= WH__MSG_ID_MAX)
    return NULL;
  wh__msg *m = malloc(sizeof *m + len + 1 + tl + 1);
  if (!m)
    return NULL;
  atomic_init(&m->refs, 1);
  m->flags = 0;
  m->len = len;
  m->created_ms = created_ms;
  memcpy(m->id, id, strlen(id) + 1);
  memcpy(m->body, body, len);
  m->body[len] = '\0';
  char *t = m->body + len + 1;
  memcpy(t, type, tl + 1);
  m->type = t;
  return m;
}

void wh__msg_ref(wh__msg *m) { atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed); }

void wh__msg_unref(wh__msg *m)
{
  if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
    free(m);
}

int wh__msg_order_key(const wh__msg *m, const char **key, size_t *len)
{
  /* The envelope ends with ,"resource_id":<value>,"resource_type":"..",
     "event_type":"..","event_time":".."}: the names and the time hold no
     quote, and a quote inside a JSON string is escaped, so the last
     ,"resource_id": is the envelope's own whatever the resource holds. */
  static const char tag[] = ",\"resource_id\":";
  const size_t tl = sizeof tag - 1;
  for (size_t i = m->len >= tl ? m->len - tl + 1 : 0; i-- > 0;) {
    if (m->body[i] != ',' || memcmp(m->body + i, tag, tl) != 0)
      continue;
    const char *v = m->body + i + tl;
    if (*v != '"')
      return 0; /* null: no resource, no order */
    const char *end = v + 1;
    while (*end && *end != '"')
      end += *end == '\\' && end[1] ? 2 : 1;
    *key = v + 1;
    *len = (size_t)(end - v - 1);
    return 1;
  }
  return 0;
}
