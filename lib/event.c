/* The Casebook envelope: built once, in the order of the contract. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAME_MAX_LEN 64
#define ID_MAX_LEN 1024
#define RESOURCE_MAX_DEPTH 512
/* 9999-12-31T23:59:59.999999Z */
#define MAX_TIME_US 253402300799999999LL

struct wh_event {
  char resource_type[NAME_MAX_LEN + 1];
  char event_type[NAME_MAX_LEN + 1];
  char *resource; /* compact JSON object */
  char *tenant_id, *user_id, *resource_id;
  int64_t time_us;
};

static int name_valid(const char *what, const char *s)
{
  if (!s)
    return wh__fail(WH_EINVAL, "%s: must not be NULL", what);
  size_t n = strnlen(s, NAME_MAX_LEN + 1);
  if (n == 0 || n > NAME_MAX_LEN)
    return wh__fail(WH_EINVAL, "%s: must be 1 to %d characters", what, NAME_MAX_LEN);
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return wh__fail(WH_EINVAL, "%s: character %zu is not one of A-Z a-z 0-9 _ -", what, i + 1);
  }
  return WH_OK;
}

int wh_event_new(wh_event **out, const char *resource_type, const char *event_type)
{
  if (!out)
    return wh__fail(WH_EINVAL, "event: out must not be NULL");
  *out = NULL;
  int rc = name_valid("resource_type", resource_type);
  if (!rc)
    rc = name_valid("event_type", event_type);
  if (rc)
    return rc;
  wh_event *ev = calloc(1, sizeof *ev);
  if (!ev)
    return wh__oom();
  ev->resource = wh__strdup("{}");
  if (!ev->resource) {
    free(ev);
    return wh__oom();
  }
  strcpy(ev->resource_type, resource_type);
  strcpy(ev->event_type, event_type);
  ev->time_us = wh__now_us();
  *out = ev;
  return WH_OK;
}

void wh_event_free(wh_event *ev)
{
  if (!ev)
    return;
  free(ev->resource);
  free(ev->tenant_id);
  free(ev->user_id);
  free(ev->resource_id);
  free(ev);
}

int wh_event_set_resource_json(wh_event *ev, const char *json)
{
  if (!ev)
    return wh__fail(WH_EINVAL, "event: must not be NULL");
  if (!json)
    return wh__fail(WH_EINVAL, "resource: must not be NULL");
  char *compact;
  size_t len;
  int rc = wh__json_compact_object("resource", json, strlen(json), RESOURCE_MAX_DEPTH, &compact, &len);
  if (rc)
    return rc;
  free(ev->resource);
  ev->resource = compact;
  return WH_OK;
}

static int set_id(wh_event *ev, char **slot, const char *what, const char *id)
{
  if (!ev)
    return wh__fail(WH_EINVAL, "event: must not be NULL");
  char *copy = NULL;
  if (id) {
    size_t n = strnlen(id, ID_MAX_LEN + 1);
    if (n > ID_MAX_LEN)
      return wh__fail(WH_EINVAL, "%s: longer than %d bytes", what, ID_MAX_LEN);
    if (!wh__utf8_valid(id, n))
      return wh__fail(WH_EINVAL, "%s: not valid UTF-8", what);
    if (!(copy = wh__strndup(id, n)))
      return wh__oom();
  }
  free(*slot);
  *slot = copy;
  return WH_OK;
}

int wh_event_set_resource_id(wh_event *ev, const char *id)
{
  return set_id(ev, ev ? &ev->resource_id : NULL, "resource_id", id);
}

int wh_event_set_tenant_id(wh_event *ev, const char *id)
{
  return set_id(ev, ev ? &ev->tenant_id : NULL, "tenant_id", id);
}

int wh_event_set_user_id(wh_event *ev, const char *id)
{
  return set_id(ev, ev ? &ev->user_id : NULL, "user_id", id);
}

int wh_event_set_time(wh_event *ev, int64_t unix_micros)
{
  if (!ev)
    return wh__fail(WH_EINVAL, "event: must not be NULL");
  if (unix_micros < 0 || unix_micros > MAX_TIME_US)
    return wh__fail(WH_EINVAL, "event_time: %lld is outside 1970-01-01..9999-12-31",
                    (long long)unix_micros);
  ev->time_us = unix_micros;
  return WH_OK;
}

static void put_opt_str(wh__buf *b, const char *key, const char *v)
{
  wh__buf_puts(b, key);
  if (v)
    wh__buf_json_str(b, v);
  else
    wh__buf_puts(b, "null");
}

int wh_event_to_json(const wh_event *ev, char **json_out)
{
  if (!ev || !json_out)
    return wh__fail(WH_EINVAL, "event: %s must not be NULL", ev ? "json_out" : "event");
  time_t secs = (time_t)(ev->time_us / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char when[64];
  snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ev->time_us % 1000000));
  wh__buf b = {0};
  wh__buf_puts(&b, "{\"resource\":");
  wh__buf_puts(&b, ev->resource);
  put_opt_str(&b, ",\"tenant_id\":", ev->tenant_id);
  put_opt_str(&b, ",\"user_id\":", ev->user_id);
  put_opt_str(&b, ",\"resource_id\":", ev->resource_id);
  put_opt_str(&b, ",\"resource_type\":", ev->resource_type);
  put_opt_str(&b, ",\"event_type\":", ev->event_type);
  put_opt_str(&b, ",\"event_time\":", when);
  wh__buf_putc(&b, '}');
  *json_out = wh__buf_take(&b);
  return *json_out ? WH_OK : wh__oom();
}

int wh__endpoint_event_json(const wh__endpoint *ep, const char *event_type, const char *reason, const char *msg_id,
                            char **json)
{
  wh__buf b = {0};
  wh__buf_puts(&b, "{\"endpoint_id\":");
  wh__buf_json_str(&b, ep->id);
  wh__buf_puts(&b, ",\"endpoint_name\":");
  wh__buf_json_str(&b, ep->name);
  if (reason) {
    wh__buf_puts(&b, ",\"reason\":");
    wh__buf_json_str(&b, reason);
  }
  if (msg_id) {
    wh__buf_puts(&b, ",\"message_id\":");
    wh__buf_json_str(&b, msg_id);
  }
  wh__buf_putc(&b, '}');
  char *resource = wh__buf_take(&b);
  if (!resource)
    return wh__oom();
  wh_event *ev = NULL;
  int rc = wh_event_new(&ev, "webhook", event_type);
  if (!rc)
    rc = wh_event_set_resource_json(ev, resource);
  if (!rc)
    rc = wh_event_set_tenant_id(ev, ep->tenant);
  if (!rc)
    rc = wh_event_set_resource_id(ev, ep->id);
  if (!rc)
    rc = wh_event_to_json(ev, json);
  wh_event_free(ev);
  free(resource);
  return rc;
}

void wh__event_type(const wh_event *ev, char *out, size_t len)
{
  snprintf(out, len, "%s.%s", ev->resource_type, ev->event_type);
}

/* A pattern is "*", or "<part>.<part>" where each part is a name or "*". */
static int part_valid(const char *s, size_t n)
{
  if (n == 1 && s[0] == '*')
    return 1;
  if (n == 0 || n > NAME_MAX_LEN)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return 0;
  }
  return 1;
}

int wh__pattern_valid(const char *p)
{
  if (strcmp(p, "*") == 0)
    return 1;
  const char *dot = strchr(p, '.');
  if (!dot)
    return 0;
  return part_valid(p, (size_t)(dot - p)) && part_valid(dot + 1, strlen(dot + 1));
}

static int part_match(const char *pat, size_t pn, const char *s, size_t sn)
{
  if (pn == 1 && pat[0] == '*')
    return 1;
  return pn == sn && memcmp(pat, s, pn) == 0;
}

int wh__pattern_match(const char *pattern, const char *type)
{
  if (strcmp(pattern, "*") == 0)
    return 1;
  const char *pd = strchr(pattern, '.'), *td = strchr(type, '.');
  if (!pd || !td)
    return 0;
  return part_match(pattern, (size_t)(pd - pattern), type, (size_t)(td - type)) &&
         part_match(pd + 1, strlen(pd + 1), td + 1, strlen(td + 1));
}

int wh__pattern_names(const char *pattern, const char *type)
{
  const char *pd = strchr(pattern, '.'), *td = strchr(type, '.');
  /* The type's first part is a name: a pattern's "*" never equals it. */
  return pd && td && pd - pattern == td - type && memcmp(pattern, type, (size_t)(td - type)) == 0 &&
         wh__pattern_match(pattern, type);
}

const char *wh__event_tenant(const wh_event *ev) { return ev->tenant_id; }
