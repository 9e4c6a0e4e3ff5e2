/* Result codes, their fixed texts, and the per-thread detail message. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[512];

static const char *const texts[] = {
  [WH_OK] = "success",
  [WH_EINVAL] = "invalid argument",
  [WH_ENOMEM] = "out of memory",
  [WH_ENOTFOUND] = "not found",
  [WH_EEXIST] = "already exists",
  [WH_ESTATE] = "wrong state for this call",
  [WH_EFULL] = "queue is full",
  [WH_ESTORE] = "storage failed",
  [WH_ETIMEOUT] = "timed out",
  [WH_ESIGNATURE] = "no signature matched",
  [WH_ETIMESTAMP] = "timestamp invalid or outside tolerance",
  [WH_EPOLICY] = "refused by network policy",
  [WH_ERANGE] = "buffer too small",
};

const char *wh_version(void) { return WH_VERSION_STRING; }

unsigned wh_version_num(void) { return WH_VERSION_NUM; }

const char *wh_strerror(int code)
{
  if (code < 0 || (size_t)code >= WH__COUNT(texts) || !texts[code])
    return "unknown error";
  return texts[code];
}

const char *wh_error_last(void) { return last_error; }

void wh_free(void *p) { free(p); }

int wh__failv(int code, const char *fmt, va_list ap)
{
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  return code;
}

int wh__fail(int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  wh__failv(code, fmt, ap);
  va_end(ap);
  return code;
}

int wh__oom(void)
{
  /* No formatting, no allocation: this must work when memory is gone. */
  memcpy(last_error, "out of memory", sizeof "out of memory");
  return WH_ENOMEM;
}
