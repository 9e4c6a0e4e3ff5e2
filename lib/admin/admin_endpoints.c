/*
 * POST /endpoints and PATCH /endpoints/{id}: one request sets several things
 * at once (name, url, description, enabled, filters, headers, settings) that
 * the registry changes one call at a time. So the whole request is checked
 * first, with the registry's own checks, and nothing changes when any field is
 * refused. The name is changed first (the endpoint is added with it), so a name
 * another endpoint of the tenant has is refused before anything else changes.
 * What can only fail later (a store that fails) is undone: a new endpoint is
 * removed again, a patched one gets its former values back.
 */
#include "admin/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
  const char *name, *value; /* value NULL: remove the header */
} header;

/* What a request asks for; the text points into the request's JSON (or, to
   undo a change, into the endpoint's former JSON). */
/* The per-endpoint settings as the JSON names them. proxy and client_cert name
   the server's own network routes and files: the platform's to choose, not a
   tenant's (refused through a view). */
static const struct {
  const char *key;
  int setting, text, platform_only;
} settings[] = {
  {"ordered", WH_EP_ORDERED, 0, 0},         {"rate_limit", WH_EP_RATE_LIMIT, 0, 0},
  {"timeout_ms", WH_EP_TIMEOUT_MS, 0, 0},   {"retry_schedule", WH_EP_RETRY_SCHEDULE, 1, 0},
  {"proxy", WH_EP_PROXY, 1, 1},             {"client_cert", WH_EP_CLIENT_CERT, 1, 1},
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

typedef struct {
  int has_name, has_url, has_description, has_enabled, has_filters, has_headers;
  int has_setting[NSETTINGS];
  long set_int[NSETTINGS];
  const char *set_str[NSETTINGS]; /* NULL: back to the default */
  const char *name, *url, *description;
  int enabled;
  const char *filters[WH__MAX_FILTERS];
  size_t nfilters;
  header headers[2 * WH__MAX_HEADERS];
  size_t nheaders;
} plan;

static const char *const fields[] = {"name", "url", "description", "enabled", "filters", "headers", "settings",
                                     NULL};

static int refuse(wh__admin *a, const char *field, const char *message)
{
  wh__admin_error(a, 422, "invalid_argument", field, "%s: %s", field, message);
  return 0;
}

/* A library check's refusal, with its own message. */
static int refused(wh__admin *a, int rc, const char *field)
{
  wh__admin_fail(a, rc, field);
  return 0;
}

static int has_filter(const plan *p, const char *f)
{
  for (size_t i = 0; i < p->nfilters; i++)
    if (strcmp(p->filters[i], f) == 0)
      return 1;
  return 0;
}

static int parse_filters(wh__admin *a, const cJSON *v, plan *p)
{
  if (!cJSON_IsArray(v))
    return refuse(a, "filters", "must be an array of patterns such as \"people.*\" (empty: every event)");
  if (cJSON_GetArraySize(v) > WH__MAX_FILTERS)
    return refuse(a, "filters", "at most 256 patterns");
  for (const cJSON *it = v->child; it; it = it->next) {
    if (!cJSON_IsString(it))
      return refuse(a, "filters", "every pattern must be a string");
    int rc = wh__check_pattern(it->valuestring);
    if (rc)
      return refused(a, rc, "filters");
    if (!has_filter(p, it->valuestring))
      p->filters[p->nfilters++] = it->valuestring;
  }
  p->has_filters = 1;
  return 1;
}

/* Header names are case-insensitive: one per name. */
static const header *find_header(const header *v, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (strcasecmp(v[i].name, name) == 0)
      return &v[i];
  return NULL;
}

/* The endpoint's headers as they are (from its JSON), into v. */
static size_t current_headers(const cJSON *ep, header *v, size_t max)
{
  size_t n = 0;
  for (const cJSON *h = cJSON_GetObjectItem(ep, "headers") ? cJSON_GetObjectItem(ep, "headers")->child : NULL;
       h && n < max; h = h->next)
    v[n++] = (header){h->string, cJSON_GetStringValue(h)};
  return n;
}

static int parse_headers(wh__admin *a, const cJSON *v, const cJSON *ep, plan *p)
{
  if (!cJSON_IsObject(v))
    return refuse(a, "headers", "must be an object of header names and values (null removes one)");
  if (!wh__admin_members(a, v, "headers", NULL))
    return 0;
  if (cJSON_GetArraySize(v) > 2 * WH__MAX_HEADERS)
    return refuse(a, "headers", "at most 64 headers");
  for (const cJSON *it = v->child; it; it = it->next) {
    if (!cJSON_IsString(it) && !cJSON_IsNull(it))
      return refuse(a, "headers", "every value must be a string, or null to remove the header");
    int rc = wh__check_header(it->string, cJSON_GetStringValue(it));
    if (rc)
      return refused(a, rc, "headers");
    if (find_header(p->headers, p->nheaders, it->string)) {
      wh__admin_error(a, 422, "invalid_argument", "headers", "headers: \"%.64s\" is given twice (names are "
                      "case-insensitive)", it->string);
      return 0;
    }
    p->headers[p->nheaders++] = (header){it->string, cJSON_GetStringValue(it)};
  }
  /* How many the endpoint will have: those it keeps plus the new ones. */
  header cur[WH__MAX_HEADERS];
  size_t ncur = ep ? current_headers(ep, cur, WH__MAX_HEADERS) : 0, total = 0;
  for (size_t i = 0; i < ncur; i++) {
    const header *h = find_header(p->headers, p->nheaders, cur[i].name);
    total += !h || h->value;
  }
  for (size_t i = 0; i < p->nheaders; i++)
    total += p->headers[i].value && !find_header(cur, ncur, p->headers[i].name);
  if (total > WH__MAX_HEADERS)
    return refuse(a, "headers", "an endpoint has at most 64 custom headers");
  p->has_headers = 1;
  return 1;
}

/* A setting's refusal: "settings.rate_limit: ...". */
static int refuse_setting(wh__admin *a, size_t i, const char *message)
{
  char field[32];
  snprintf(field, sizeof field, "settings.%s", settings[i].key);
  wh__admin_error(a, 422, "invalid_argument", field, "%s: %s", field, message);
  return 0;
}

static int parse_setting(wh__admin *a, size_t i, const cJSON *v, plan *p)
{
  if (settings[i].platform_only && wh_registry_tenant_id(a->reg))
    return refuse_setting(a, i, "set by the platform only, not through a tenant's account");
  int rc = WH_OK;
  if (settings[i].text) {
    if (!cJSON_IsString(v) && !cJSON_IsNull(v))
      return refuse_setting(a, i, "must be a string, or null for the default");
    p->set_str[i] = cJSON_GetStringValue(v);
    if (p->set_str[i])
      rc = wh__check_setting_str(settings[i].setting, p->set_str[i]);
  } else if (settings[i].setting == WH_EP_ORDERED) {
    if (!cJSON_IsBool(v) && !cJSON_IsNull(v))
      return refuse_setting(a, i, "must be true or false");
    p->set_int[i] = cJSON_IsTrue(v);
  } else {
    double x = cJSON_IsNumber(v) ? v->valuedouble : cJSON_IsNull(v) ? 0 : -1;
    if (!(x >= 0 && x <= 1e9) || x != (double)(long)x)
      return refuse_setting(a, i, "must be a whole number, or null for the default");
    p->set_int[i] = (long)x;
    rc = wh__check_setting_int(settings[i].setting, p->set_int[i]);
  }
  if (rc)
    return refuse_setting(a, i, wh_error_last());
  p->has_setting[i] = 1;
  return 1;
}

static int parse_settings(wh__admin *a, const cJSON *v, plan *p)
{
  static const char *const keys[] = {"ordered", "rate_limit", "timeout_ms", "retry_schedule", "proxy",
                                     "client_cert", NULL};
  _Static_assert(sizeof keys / sizeof *keys == NSETTINGS + 1, "keys: the keys of settings[]");
  if (!cJSON_IsObject(v))
    return refuse(a, "settings", "must be an object (ordered, rate_limit, timeout_ms, retry_schedule, proxy, "
                                 "client_cert)");
  if (!wh__admin_members(a, v, "settings", keys))
    return 0;
  for (size_t i = 0; i < NSETTINGS; i++) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, settings[i].key);
    if (s && !parse_setting(a, i, s, p))
      return 0;
  }
  return 1;
}

/* Check every field of body (ep: the endpoint as it is, NULL for a new one). */
static int parse(wh__admin *a, const cJSON *body, const cJSON *ep, plan *p)
{
  memset(p, 0, sizeof *p);
  if (!wh__admin_members(a, body, "", fields))
    return 0;
  const cJSON *v;
  int rc;
  if ((v = cJSON_GetObjectItemCaseSensitive(body, "name"))) {
    if (!cJSON_IsString(v))
      return refuse(a, "name", "must be a string");
    if ((rc = wh__check_name(v->valuestring)))
      return refused(a, rc, "name");
    p->has_name = 1;
    p->name = v->valuestring;
  } else if (!ep) {
    return refuse(a, "name", "required: a name for the webhook");
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(body, "url"))) {
    if (!cJSON_IsString(v))
      return refuse(a, "url", "must be a string");
    if ((rc = wh__url_validate("endpoint url", v->valuestring)))
      return refused(a, rc, "url");
    p->has_url = 1;
    p->url = v->valuestring;
  } else if (!ep) {
    return refuse(a, "url", "required: the endpoint URL, http:// or https://");
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(body, "description"))) {
    if (!cJSON_IsString(v) && !cJSON_IsNull(v))
      return refuse(a, "description", "must be a string or null");
    if ((rc = wh__check_description(cJSON_GetStringValue(v))))
      return refused(a, rc, "description");
    p->has_description = 1;
    p->description = cJSON_GetStringValue(v);
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(body, "enabled"))) {
    if (!cJSON_IsBool(v))
      return refuse(a, "enabled", "must be true or false");
    p->has_enabled = 1;
    p->enabled = cJSON_IsTrue(v);
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(body, "filters")) && !parse_filters(a, v, p))
    return 0;
  if ((v = cJSON_GetObjectItemCaseSensitive(body, "headers")) && !parse_headers(a, v, ep, p))
    return 0;
  if ((v = cJSON_GetObjectItemCaseSensitive(body, "settings")) && !parse_settings(a, v, p))
    return 0;
  return 1;
}

/* ---- changing --------------------------------------------------------------------------- */

static int same_text(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

/* A number setting as the endpoint JSON shows it (absent: 0, "ordered": true). */
static long int_setting(const cJSON *v) { return cJSON_IsTrue(v) ? 1 : cJSON_IsNumber(v) ? (long)v->valuedouble : 0; }

/* Make the endpoint id, now as cur describes it, what p asks for. Returns a
   library result; *field names what failed. */
static int apply(wh__admin *a, const char *id, const plan *p, const cJSON *cur, const char **field)
{
  int rc = WH_OK;
  if (p->has_name && !same_text(p->name, cJSON_GetStringValue(cJSON_GetObjectItem(cur, "name"))) &&
      (rc = wh_endpoint_set_name(a->reg, id, p->name)))
    return *field = "name", rc;
  if (p->has_url && !same_text(p->url, cJSON_GetStringValue(cJSON_GetObjectItem(cur, "url"))) &&
      (rc = wh_endpoint_set_url(a->reg, id, p->url)))
    return *field = "url", rc;
  if (p->has_description &&
      !same_text(p->description, cJSON_GetStringValue(cJSON_GetObjectItem(cur, "description"))) &&
      (rc = wh_endpoint_set_description(a->reg, id, p->description)))
    return *field = "description", rc;
  const cJSON *now = cJSON_GetObjectItem(cur, "settings");
  for (size_t i = 0; i < NSETTINGS; i++) {
    const cJSON *was = cJSON_GetObjectItem(now, settings[i].key);
    if (!p->has_setting[i])
      continue;
    *field = "settings";
    if (settings[i].text && !same_text(p->set_str[i], cJSON_GetStringValue(was)))
      rc = wh_endpoint_set_str(a->reg, id, settings[i].setting, p->set_str[i]);
    else if (!settings[i].text && p->set_int[i] != int_setting(was))
      rc = wh_endpoint_set_int(a->reg, id, settings[i].setting, p->set_int[i]);
    if (rc)
      return rc;
  }
  *field = "filters";
  const cJSON *have = cJSON_GetObjectItem(cur, "filters");
  for (const cJSON *f = have ? have->child : NULL; p->has_filters && f; f = f->next)
    if (cJSON_IsString(f) && !has_filter(p, f->valuestring) &&
        (rc = wh_endpoint_unsubscribe(a->reg, id, f->valuestring)))
      return rc;
  for (size_t i = 0; p->has_filters && i < p->nfilters; i++)
    if ((rc = wh_endpoint_subscribe(a->reg, id, p->filters[i])))
      return rc;
  *field = "headers";
  for (size_t i = 0; p->has_headers && i < p->nheaders; i++)
    if ((rc = wh_endpoint_set_header(a->reg, id, p->headers[i].name, p->headers[i].value)))
      return rc;
  *field = "enabled";
  if (p->has_enabled && p->enabled != cJSON_IsTrue(cJSON_GetObjectItem(cur, "enabled")) &&
      (rc = wh_endpoint_set_enabled(a->reg, id, p->enabled)))
    return rc;
  *field = NULL;
  return WH_OK;
}

/* The endpoint as reg sees it, parsed; NULL when it is not there (or no memory). */
static cJSON *endpoint_doc(wh_registry *reg, const char *id, int *rc)
{
  char *json = NULL;
  *rc = wh_endpoint_get_json(reg, id, &json);
  cJSON *doc = *rc ? NULL : cJSON_Parse(json);
  wh_free(json);
  if (!*rc && !doc)
    *rc = wh__oom();
  return doc;
}

/* Put the endpoint back as `was` describes it, as far as that goes (the
   failure being undone may be the store's, which may refuse this too). */
static void undo(wh__admin *a, const char *id, const cJSON *was, const plan *asked)
{
  int rc;
  cJSON *now = endpoint_doc(a->reg, id, &rc);
  plan *p = calloc(1, sizeof *p);
  if (!now || !p) {
    cJSON_Delete(now);
    free(p);
    return;
  }
  p->has_name = p->has_url = p->has_description = p->has_enabled = p->has_filters = p->has_headers = 1;
  p->name = cJSON_GetStringValue(cJSON_GetObjectItem(was, "name"));
  p->url = cJSON_GetStringValue(cJSON_GetObjectItem(was, "url"));
  p->description = cJSON_GetStringValue(cJSON_GetObjectItem(was, "description"));
  p->enabled = cJSON_IsTrue(cJSON_GetObjectItem(was, "enabled"));
  const cJSON *f = cJSON_GetObjectItem(was, "filters");
  for (f = f ? f->child : NULL; f && p->nfilters < WH__MAX_FILTERS; f = f->next)
    if (cJSON_IsString(f))
      p->filters[p->nfilters++] = f->valuestring;
  /* The settings the request changed, as they were (a proxy shows without its
     password, so one with a password comes back without it). */
  const cJSON *ws = cJSON_GetObjectItem(was, "settings");
  for (size_t i = 0; i < NSETTINGS; i++) {
    const cJSON *v = cJSON_GetObjectItem(ws, settings[i].key);
    p->has_setting[i] = asked->has_setting[i];
    p->set_str[i] = cJSON_GetStringValue(v);
    p->set_int[i] = int_setting(v);
  }
  p->nheaders = current_headers(was, p->headers, WH__MAX_HEADERS);
  header cur[WH__MAX_HEADERS];
  size_t ncur = current_headers(now, cur, WH__MAX_HEADERS);
  for (size_t i = 0; i < ncur; i++)
    if (!find_header(p->headers, p->nheaders, cur[i].name))
      p->headers[p->nheaders++] = (header){cur[i].name, NULL};
  const char *field;
  apply(a, id, p, now, &field);
  cJSON_Delete(now);
  free(p);
}

/* Answer the endpoint as it is now, with status. */
static int answer_endpoint(wh__admin *a, const char *id, int status)
{
  char *json;
  int rc = wh_endpoint_get_json(a->reg, id, &json);
  return rc ? wh__admin_fail(a, rc, NULL) : wh__admin_text(a, status, json);
}

int wh__admin_create_endpoint(wh__admin *a)
{
  cJSON *body;
  if (!wh__admin_body(a, 1, &body))
    return a->rc;
  plan *p = calloc(1, sizeof *p);
  if (!p) {
    cJSON_Delete(body);
    return wh__admin_fail(a, wh__oom(), NULL);
  }
  char id[WH_ID_MAX];
  const char *field = "name";
  cJSON *ep = NULL;
  int rc = WH_OK;
  if (!parse(a, body, NULL, p))
    goto out;
  /* Added disabled until it has all its settings: no event reaches it half made. */
  rc = wh_endpoint_add(a->reg, p->name, p->url, p->description, id, sizeof id);
  int added = rc == WH_OK;
  if (added && !(rc = wh_endpoint_set_enabled(a->reg, id, 0)) && (ep = endpoint_doc(a->reg, id, &rc))) {
    p->has_name = p->has_url = p->has_description = 0;
    if (!p->has_enabled)
      p->has_enabled = p->enabled = 1;
    rc = apply(a, id, p, ep, &field);
  }
  if (rc) {
    char why[512];
    snprintf(why, sizeof why, "%s", wh_error_last());
    if (added)
      wh_endpoint_remove(a->reg, id);
    wh__fail(rc, "%s", why);
    wh__admin_fail(a, rc, rc == WH_EEXIST || rc == WH_EINVAL ? field : NULL);
  } else {
    answer_endpoint(a, id, 201);
  }
out:
  cJSON_Delete(ep);
  cJSON_Delete(body);
  free(p);
  return a->rc;
}

int wh__admin_patch_endpoint(wh__admin *a)
{
  int rc;
  cJSON *was = endpoint_doc(a->reg, a->id, &rc);
  if (rc == WH_ENOTFOUND)
    return wh__admin_no_endpoint(a);
  if (rc)
    return wh__admin_fail(a, rc, NULL);
  cJSON *body = NULL;
  plan *p = calloc(1, sizeof *p);
  if (!p)
    wh__admin_fail(a, wh__oom(), NULL);
  else if (wh__admin_body(a, 1, &body) && parse(a, body, was, p)) {
    const char *field;
    if ((rc = apply(a, a->id, p, was, &field))) {
      char why[512];
      snprintf(why, sizeof why, "%s", wh_error_last());
      undo(a, a->id, was, p);
      wh__fail(rc, "%s", why);
      wh__admin_fail(a, rc, rc == WH_EEXIST || rc == WH_EINVAL ? field : NULL);
    } else {
      answer_endpoint(a, a->id, 200);
    }
  }
  cJSON_Delete(was);
  cJSON_Delete(body);
  free(p);
  return a->rc;
}
