/*
 * The resource of an event is carried through byte for byte: cJSON would turn
 * numbers into doubles and lose "1.10" or 2^64. So we check the text against
 * RFC 8259 ourselves, without recursion (depth is bounded, not the stack),
 * and copy every token as written, dropping only whitespace between tokens.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *s;
  size_t n, i;
  const char *what;
  wh__buf out;
} scan;

static int bad(scan *sc, const char *why)
{
  return wh__fail(WH_EINVAL, "%s: invalid JSON at byte %zu: %s", sc->what, sc->i, why);
}

static void skip_ws(scan *sc)
{
  while (sc->i < sc->n) {
    char c = sc->s[sc->i];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      break;
    sc->i++;
  }
}

static int is_hex(char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned hex4(const char *p)
{
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    char c = p[k];
    v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
  }
  return v;
}

static int string_tok(scan *sc)
{
  size_t start = sc->i++; /* opening quote */
  while (sc->i < sc->n) {
    unsigned char c = (unsigned char)sc->s[sc->i];
    if (c == '"') {
      sc->i++;
      /* Copy as written; UTF-8 was checked for the whole text up front. */
      wh__buf_put(&sc->out, sc->s + start, sc->i - start);
      return WH_OK;
    }
    if (c < 0x20)
      return bad(sc, "control character in string");
    if (c != '\\') {
      sc->i++;
      continue;
    }
    if (sc->i + 1 >= sc->n)
      return bad(sc, "unterminated escape");
    char e = sc->s[sc->i + 1];
    if (strchr("\"\\/bfnrt", e) && e) {
      sc->i += 2;
      continue;
    }
    if (e != 'u')
      return bad(sc, "unknown escape");
    if (sc->i + 6 > sc->n || !is_hex(sc->s[sc->i + 2]) || !is_hex(sc->s[sc->i + 3]) ||
        !is_hex(sc->s[sc->i + 4]) || !is_hex(sc->s[sc->i + 5]))
      return bad(sc, "\\u needs four hex digits");
    unsigned u = hex4(sc->s + sc->i + 2);
    sc->i += 6;
    if (u >= 0xDC00 && u <= 0xDFFF)
      return bad(sc, "lone low surrogate escape");
    if (u >= 0xD800 && u <= 0xDBFF) {
      if (sc->i + 6 > sc->n || sc->s[sc->i] != '\\' || sc->s[sc->i + 1] != 'u' ||
          !is_hex(sc->s[sc->i + 2]) || !is_hex(sc->s[sc->i + 3]) || !is_hex(sc->s[sc->i + 4]) ||
          !is_hex(sc->s[sc->i + 5]))
        return bad(sc, "high surrogate escape without its low half");
      unsigned lo = hex4(sc->s + sc->i + 2);
      if (lo < 0xDC00 || lo > 0xDFFF)
        return bad(sc, "high surrogate escape without its low half");
      sc->i += 6;
    }
  }
  return bad(sc, "unterminated string");
}

static int digits(scan *sc)
{
  size_t s0 = sc->i;
  while (sc->i < sc->n && sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9')
    sc->i++;
  return sc->i > s0;
}

static int number_tok(scan *sc)
{
  size_t start = sc->i;
  if (sc->s[sc->i] == '-')
    sc->i++;
  if (sc->i < sc->n && sc->s[sc->i] == '0')
    sc->i++;
  else if (!digits(sc))
    return bad(sc, "malformed number");
  if (sc->i < sc->n && sc->s[sc->i] == '.') {
    sc->i++;
    if (!digits(sc))
      return bad(sc, "malformed number: digits must follow '.'");
  }
  if (sc->i < sc->n && (sc->s[sc->i] == 'e' || sc->s[sc->i] == 'E')) {
    sc->i++;
    if (sc->i < sc->n && (sc->s[sc->i] == '+' || sc->s[sc->i] == '-'))
      sc->i++;
    if (!digits(sc))
      return bad(sc, "malformed number: exponent needs digits");
  }
  wh__buf_put(&sc->out, sc->s + start, sc->i - start);
  return WH_OK;
}

static int literal_tok(scan *sc, const char *lit)
{
  size_t l = strlen(lit);
  if (sc->n - sc->i < l || memcmp(sc->s + sc->i, lit, l) != 0)
    return bad(sc, "unexpected character");
  wh__buf_put(&sc->out, lit, l);
  sc->i += l;
  return WH_OK;
}

/* One scalar, or the opening of a container (pushed on stack). */
static int value_start(scan *sc, char *stack, int *depth, int max_depth)
{
  skip_ws(sc);
  if (sc->i >= sc->n)
    return bad(sc, "unexpected end, a value was expected");
  char c = sc->s[sc->i];
  if (c == '{' || c == '[') {
    if (*depth >= max_depth)
      return wh__fail(WH_EINVAL, "%s: JSON nested deeper than %d levels", sc->what, max_depth);
    stack[(*depth)++] = c;
    wh__buf_putc(&sc->out, c);
    sc->i++;
    return WH_OK;
  }
  if (c == '"') return string_tok(sc);
  if (c == '-' || (c >= '0' && c <= '9')) return number_tok(sc);
  if (c == 't') return literal_tok(sc, "true");
  if (c == 'f') return literal_tok(sc, "false");
  if (c == 'n') return literal_tok(sc, "null");
  return bad(sc, "unexpected character");
}

int wh__json_compact_object(const char *what, const char *in, size_t n, int max_depth,
                            char **out, size_t *out_len)
{
  scan sc = {.s = in, .n = n, .what = what};
  if (!wh__utf8_valid(in, n))
    return wh__fail(WH_EINVAL, "%s: not valid UTF-8", what);
  if (memchr(in, '\0', n))
    return wh__fail(WH_EINVAL, "%s: contains a NUL byte", what);
  char *stack = malloc((size_t)max_depth);
  if (!stack)
    return wh__oom();
  int depth = 0, rc;
  skip_ws(&sc);
  if (sc.i >= n || in[sc.i] != '{') {
    rc = wh__fail(WH_EINVAL, "%s: must be a JSON object", what);
    goto done;
  }
  /* State machine over containers: after '{' expect key or '}', after a value
     expect ',' or the closer. `expect_key` tracks object members. */
  rc = value_start(&sc, stack, &depth, max_depth);
  int first = 1;
  while (rc == WH_OK && depth > 0) {
    char top = stack[depth - 1];
    skip_ws(&sc);
    if (sc.i >= n) {
      rc = bad(&sc, "unexpected end of input");
      break;
    }
    char c = in[sc.i];
    if (c == (top == '{' ? '}' : ']') && first) {
      wh__buf_putc(&sc.out, c);
      sc.i++;
      depth--;
      first = 0;
      continue;
    }
    if (!first) {
      if (c == ',') {
        wh__buf_putc(&sc.out, c);
        sc.i++;
      } else if (c == (top == '{' ? '}' : ']')) {
        wh__buf_putc(&sc.out, c);
        sc.i++;
        depth--;
        continue;
      } else {
        rc = bad(&sc, top == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        break;
      }
    }
    if (top == '{') {
      skip_ws(&sc);
      if (sc.i >= n || in[sc.i] != '"') {
        rc = bad(&sc, "expected a string key");
        break;
      }
      if ((rc = string_tok(&sc)))
        break;
      skip_ws(&sc);
      if (sc.i >= n || in[sc.i] != ':') {
        rc = bad(&sc, "expected ':'");
        break;
      }
      wh__buf_putc(&sc.out, ':');
      sc.i++;
    }
    int before = depth;
    rc = value_start(&sc, stack, &depth, max_depth);
    first = depth > before; /* just opened a container: it may be empty */
  }
  if (rc == WH_OK) {
    skip_ws(&sc);
    if (sc.i != n)
      rc = bad(&sc, "text after the closing '}'");
  }
  if (rc == WH_OK && sc.out.failed)
    rc = wh__oom();
done:
  free(stack);
  if (rc) {
    wh__buf_free(&sc.out);
    return rc;
  }
  *out_len = sc.out.len;
  *out = wh__buf_take(&sc.out);
  return *out ? WH_OK : wh__oom();
}
