/* The admin REST API (admin.c): what its handlers share. */
#ifndef WEBHOOK_ADMIN_H
#define WEBHOOK_ADMIN_H

#include "internal.h"

#include <cjson/cJSON.h>

/* A request body larger than this is refused (413) before it is read. */
#define WH__ADMIN_BODY_MAX (1024 * 1024)

/* One request being answered. Handlers answer through the functions below,
   which fill status and out and return rc: WH_OK when an answer was made,
   WH_ENOMEM when not even an error answer could be. */
typedef struct {
  wh_registry *reg;
  wh_dispatcher *d;
  const char *id;    /* the path's {id}, percent-decoded, or NULL */
  const char *query; /* what follows '?', "" when nothing */
  const char *body;
  size_t body_len;
  int status;
  char *out;
  int rc;
} wh__admin;

/* Answer status with doc as JSON (doc is taken, NULL means out of memory). */
int wh__admin_json(wh__admin *a, int status, cJSON *doc);
/* Answer status with JSON text the library made (taken; freed with wh_free). */
int wh__admin_text(wh__admin *a, int status, char *json);
/* Answer an error: {"error":{"code","message","field"?}}. field may be NULL. */
int wh__admin_error(wh__admin *a, int status, const char *code, const char *field, const char *fmt, ...)
  __attribute__((format(printf, 5, 6)));
/* Answer the failure rc of a library call with wh_error_last(), naming field
   (may be NULL) when the request's field caused it. */
int wh__admin_fail(wh__admin *a, int rc, const char *field);
/* The same answer for every endpoint that reg does not see, whether it exists
   in another tenant or nowhere. */
int wh__admin_no_endpoint(wh__admin *a);

/* The body as a JSON object (an empty body is {} unless required). 1 with *out
   set, or 0 after answering the error. Duplicate keys are refused. */
int wh__admin_body(wh__admin *a, int required, cJSON **out);
/* 1 when obj's members are all named in known (NULL-terminated); else answers
   422 naming the first unknown or repeated one, and returns 0. where: "" for
   the body, "headers" for a member object. */
int wh__admin_members(wh__admin *a, const cJSON *obj, const char *where, const char *const *known);
/* A time given as unix milliseconds (a number or digits) or as ISO 8601 text:
   1 and *ms, or 0 when it is neither (nothing answered). */
int wh__admin_time(const cJSON *v, const char *text, int64_t *ms);

/* POST /endpoints and PATCH /endpoints/{id} (admin_endpoints.c). */
int wh__admin_create_endpoint(wh__admin *a);
int wh__admin_patch_endpoint(wh__admin *a);

#endif
