/* Small shared pieces: clocks, randomness, ids, base64, UTF-8, buffers. */
#include "internal.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t wh__now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t wh__now_ms(void) { return wh__now_us() / 1000; }

int64_t wh__mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void wh__deadline_after(struct timespec *ts, int timeout_ms)
{
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += timeout_ms / 1000;
  ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

void wh__iso_ms(int64_t ms, char out[64])
{
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* OpenSSL frees its global state in an atexit handler unless it is told not to, first
   thing. A host that returns from main with a dispatcher still running (a C++ static, a
   binding never closed, a thread still emitting) then has workers signing and drawing
   random numbers with a freed OpenSSL while the static destructors stop them: a crash
   (tests/test_cpp.cpp, "exit-running", about one exit in 15). Asked at load time, before
   any of our calls or libcurl's initialise it, OpenSSL registers no handler; the OS takes
   the memory back at exit anyway. A host that initialised OpenSSL earlier keeps its choice. */
__attribute__((constructor)) static void openssl_keep_at_exit(void)
{
  OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
}

int wh__random(void *buf, size_t n)
{
  if (RAND_bytes(buf, (int)n) != 1)
    return wh__fail(WH_ENOMEM, "random: the OS random generator failed");
  return WH_OK;
}

/* xorshift64*, seeded per thread from the CSPRNG: for jitter, not secrets. */
double wh__rand01(void)
{
  static _Thread_local uint64_t s;
  if (s == 0) {
    if (RAND_bytes((unsigned char *)&s, sizeof s) != 1 || s == 0)
      s = (uint64_t)wh__now_us() | 1;
  }
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return (double)((s * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* Random bytes for ids, drawn from the CSPRNG a few KiB at a time: OpenSSL's
   RAND_bytes takes a process-wide lock, which eight emitting threads felt. */
static int id_random(unsigned char *out, size_t n)
{
  static _Thread_local unsigned char pool[4096];
  static _Thread_local size_t left;
  if (left < n) {
    int rc = wh__random(pool, sizeof pool);
    if (rc)
      return rc;
    left = sizeof pool;
  }
  memcpy(out, pool + sizeof pool - left, n);
  OPENSSL_cleanse(pool + sizeof pool - left, n);
  left -= n;
  return WH_OK;
}

int wh__make_id(const char *prefix, char out[WH_ID_MAX])
{
  /* 160 bits: 48 of milliseconds since 1970, then 112 random; as five 32-bit
     limbs, divided by 62 for each of the 27 digits. Ids sort by their
     millisecond, so the ids of one commit's messages land together in the
     durable stores' indexes (random ids dirtied a page of each index per
     message: twice the WAL writes per emit). */
  unsigned char rnd[14];
  int rc = id_random(rnd, sizeof rnd);
  if (rc)
    return rc;
  uint64_t ms = (uint64_t)(wh__now_us() / 1000) & 0xFFFFFFFFFFFFULL;
  uint32_t limb[5];
  limb[0] = (uint32_t)(ms >> 16);
  limb[1] = (uint32_t)(ms & 0xFFFF) << 16 | (uint32_t)rnd[0] << 8 | rnd[1];
  for (int i = 0; i < 3; i++)
    limb[i + 2] = (uint32_t)rnd[2 + 4 * i] << 24 | (uint32_t)rnd[3 + 4 * i] << 16 | (uint32_t)rnd[4 + 4 * i] << 8 |
                  rnd[5 + 4 * i];
  char digits[27];
  for (int d = 26; d >= 0; d--) {
    uint64_t rem = 0;
    for (int i = 0; i < 5; i++) {
      uint64_t cur = rem << 32 | limb[i];
      limb[i] = (uint32_t)(cur / 62);
      rem = cur % 62;
    }
    digits[d] = base62[rem];
  }
  size_t pl = strlen(prefix);
  memcpy(out, prefix, pl);
  memcpy(out + pl, digits, sizeof digits);
  out[pl + sizeof digits] = '\0';
  return WH_OK;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t wh__b64_encode(const unsigned char *in, size_t n, char *out)
{
  size_t o = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = b64chars[v >> 18];
    out[o++] = b64chars[(v >> 12) & 63];
    out[o++] = b64chars[(v >> 6) & 63];
    out[o++] = b64chars[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
    out[o++] = b64chars[v >> 18];
    out[o++] = b64chars[(v >> 12) & 63];
    out[o++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
    out[o++] = '=';
  }
  out[o] = '\0';
  return o;
}

static int b64val(unsigned char c)
{
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

long wh__b64_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
  while (n > 0 && in[n - 1] == '=')
    n--;
  if (n % 4 == 1)
    return -1;
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64val((unsigned char)in[i]);
    if (v < 0)
      return -1;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o >= cap)
        return -1;
      out[o++] = (unsigned char)(acc >> bits);
    }
  }
  /* Leftover bits must be zero, or the text was not canonical base64. */
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
    return -1;
  return (long)o;
}

int wh__utf8_valid(const char *str, size_t n)
{
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) { i++; continue; }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (n - i < len)
      return 0;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return 0;
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}

char *wh__strndup(const char *s, size_t n)
{
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

char *wh__strdup(const char *s) { return s ? wh__strndup(s, strlen(s)) : NULL; }

int wh__copy_out(const char *what, const char *s, char *out, size_t len)
{
  size_t n = strlen(s);
  if (!out || len < n + 1)
    return wh__fail(WH_ERANGE, "%s: buffer of %zu bytes is too small, %zu needed", what, len, n + 1);
  memcpy(out, s, n + 1);
  return WH_OK;
}

size_t wh__hash_str(const char *s)
{
  /* FNV-1a: short ids, spread well enough for power-of-two tables. */
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return (size_t)h;
}

int wh__strcaseeq(const char *a, const char *b)
{
  for (;; a++, b++) {
    unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
    if (x >= 'A' && x <= 'Z') x += 32;
    if (y >= 'A' && y <= 'Z') y += 32;
    if (x != y) return 0;
    if (!x) return 1;
  }
}

static int buf_grow(wh__buf *b, size_t extra)
{
  if (b->failed)
    return 0;
  if (b->len + extra + 1 <= b->cap)
    return 1;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1)
    cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->failed = 1;
    return 0;
  }
  b->p = p;
  b->cap = cap;
  return 1;
}

void wh__buf_put(wh__buf *b, const void *data, size_t n)
{
  if (!buf_grow(b, n))
    return;
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

void wh__buf_puts(wh__buf *b, const char *s) { wh__buf_put(b, s, strlen(s)); }

void wh__buf_putc(wh__buf *b, char c) { wh__buf_put(b, &c, 1); }

void wh__buf_json_str(wh__buf *b, const char *s)
{
  static const char hex[] = "0123456789abcdef";
  wh__buf_putc(b, '"');
  const char *run = s;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    wh__buf_put(b, run, (size_t)(s - run));
    run = s + 1;
    switch (c) {
    case '"': wh__buf_puts(b, "\\\""); break;
    case '\\': wh__buf_puts(b, "\\\\"); break;
    case '\n': wh__buf_puts(b, "\\n"); break;
    case '\r': wh__buf_puts(b, "\\r"); break;
    case '\t': wh__buf_puts(b, "\\t"); break;
    case '\b': wh__buf_puts(b, "\\b"); break;
    case '\f': wh__buf_puts(b, "\\f"); break;
    default: {
      char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      wh__buf_put(b, esc, 6);
    }
    }
  }
  wh__buf_put(b, run, (size_t)(s - run));
  wh__buf_putc(b, '"');
}

char *wh__buf_take(wh__buf *b)
{
  if (!buf_grow(b, 0)) {
    wh__buf_free(b);
    return NULL;
  }
  b->p[b->len] = '\0';
  char *p = b->p;
  b->p = NULL;
  b->len = b->cap = 0;
  return p;
}

void wh__buf_free(wh__buf *b)
{
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}
