/*
 * Helpers shared by the fuzz targets: splitting one input into several
 * NUL-terminated fields, a few reference checks written independently of
 * lib/ (so that a target compares the library against something that is not
 * the library), and FUZZ_ASSERT, which aborts so that both libFuzzer and the
 * replay driver report the input as a crash.
 *
 * Every field is its own exact-size allocation: an over-read past the end of
 * one field hits the sanitizer's redzone instead of the next field.
 */
#ifndef WEBHOOK_FUZZ_COMMON_H
#define WEBHOOK_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                        \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond);              \
      abort();                                                                                   \
    }                                                                                            \
  } while (0)

/*
 * Checks of library bugs that were found and reported but are not fixed yet
 * carry a name. WH_FUZZ_IGNORE, a comma-separated list of such names, turns
 * them off, so that a fuzzing run can look for other bugs meanwhile (ctest and
 * scripts/fuzz.sh set it from fuzz/known-bugs):
 *   json-utf8   wh_endpoint_get_json emits a URL or header value that is not UTF-8
 *   http-date   wh__retry_after_parse accepts dates that are not IMF-fixdate
 *   verify-now  wh_verify overflows int64_t with now near INT64_MIN / INT64_MAX
 * Without WH_FUZZ_IGNORE every check is on.
 */
static int fuzz_ignored(const char *check)
{
  static const char *list;
  static int looked;
  if (!looked) {
    list = getenv("WH_FUZZ_IGNORE");
    looked = 1;
  }
  if (!list)
    return 0;
  size_t n = strlen(check);
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, ", ");
    if (len == n && memcmp(p, check, n) == 0)
      return 1;
    p += len;
    p += strspn(p, ", ");
  }
  return 0;
}

#define FUZZ_MAX_FIELDS 8

typedef struct {
  char *s[FUZZ_MAX_FIELDS]; /* NULL when the input has fewer fields */
  size_t len[FUZZ_MAX_FIELDS];
  int n;
} fuzz_fields;

/* A NUL-terminated copy of data[0..n) in an allocation of exactly n + 1 bytes.
   Aborts when memory runs out: a fuzz target cannot report it otherwise. */
static char *fuzz_strndup(const void *data, size_t n)
{
  char *p = malloc(n + 1);
  if (!p)
    abort();
  if (n)
    memcpy(p, data, n);
  p[n] = '\0';
  return p;
}

/* Split data at the first (max - 1) occurrences of sep into at most max fields;
   the last field takes the rest of the input, separators included. A field
   keeps any NUL bytes it holds (len counts them); functions taking a C string
   see it up to its first NUL, as a C caller would. */
static void fuzz_split(const uint8_t *data, size_t size, char sep, int max, fuzz_fields *f)
{
  memset(f, 0, sizeof *f);
  if (!data)
    data = (const uint8_t *)""; /* no arithmetic on a null pointer, even + 0 */
  if (max > FUZZ_MAX_FIELDS)
    max = FUZZ_MAX_FIELDS;
  size_t start = 0;
  for (int k = 0; k < max; k++) {
    size_t end = start;
    if (k < max - 1)
      while (end < size && data[end] != (uint8_t)sep)
        end++;
    else
      end = size;
    f->s[k] = fuzz_strndup(data + start, end - start);
    f->len[k] = end - start;
    f->n = k + 1;
    if (end >= size)
      break;
    start = end + 1;
  }
}

static void fuzz_fields_free(fuzz_fields *f)
{
  for (int k = 0; k < FUZZ_MAX_FIELDS; k++)
    free(f->s[k]);
  memset(f, 0, sizeof *f);
}

/* Field k as a C string, or dflt when the input has no such field. */
static const char *fuzz_field(const fuzz_fields *f, int k, const char *dflt)
{
  return k < f->n && f->s[k] ? f->s[k] : dflt;
}

static int fuzz_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* ASCII case-insensitive: does s start with prefix (prefix in lower case)? */
static int fuzz_has_prefix_ci(const char *s, const char *prefix)
{
  for (; *prefix; s++, prefix++)
    if (fuzz_lower((unsigned char)*s) != *prefix)
      return 0;
  return 1;
}

static int fuzz_eq_ci(const char *a, const char *b)
{
  for (;; a++, b++) {
    if (fuzz_lower((unsigned char)*a) != fuzz_lower((unsigned char)*b))
      return 0;
    if (!*a)
      return 1;
  }
}

/* RFC 3629 UTF-8: shortest form, no surrogates, nothing above U+10FFFF.
   Written from the table of well-formed byte sequences (Unicode 15, table 3-7),
   not from the library's decoder. */
static int fuzz_utf8_valid(const unsigned char *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    unsigned char b = s[i];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t more;
    if (b <= 0x7F) {
      i++;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      more = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      more = 2;
      if (b == 0xE0)
        lo = 0xA0;
      else if (b == 0xED)
        hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      more = 3;
      if (b == 0xF0)
        lo = 0x90;
      else if (b == 0xF4)
        hi = 0x8F;
    } else {
      return 0;
    }
    if (n - i - 1 < more)
      return 0;
    if (s[i + 1] < lo || s[i + 1] > hi)
      return 0;
    for (size_t k = 2; k <= more; k++)
      if (s[i + k] < 0x80 || s[i + k] > 0xBF)
        return 0;
    i += more + 1;
  }
  return 1;
}

#endif /* WEBHOOK_FUZZ_COMMON_H */
