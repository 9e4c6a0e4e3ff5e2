/* A minimal test harness: each CHECK reports file:line and keeps going; the
   test's exit status says whether any failed. No framework to install. */
#ifndef WH_TEST_CHECK_H
#define WH_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                              \
  do {                                                                           \
    check_count++;                                                               \
    if (!(cond)) {                                                               \
      check_failures++;                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
    }                                                                            \
  } while (0)

#define CHECK_INT(a, b)                                                                      \
  do {                                                                                       \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);                          \
    check_count++;                                                                           \
    if (check_a_ != check_b_) {                                                              \
      check_failures++;                                                                      \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, \
              #b, check_a_, check_b_);                                                       \
    }                                                                                        \
  } while (0)

#define CHECK_STR(a, b)                                                                         \
  do {                                                                                          \
    const char *check_a_ = (a), *check_b_ = (b);                                                \
    check_count++;                                                                              \
    if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                            \
      check_failures++;                                                                         \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s\n  got:      %s\n  expected: %s\n",        \
              __FILE__, __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",                       \
              check_b_ ? check_b_ : "(null)");                                                  \
    }                                                                                           \
  } while (0)

/* A call that must succeed; on failure print the library's own explanation. */
#define CHECK_OK(expr)                                                                        \
  do {                                                                                        \
    int check_rc_ = (expr);                                                                   \
    check_count++;                                                                            \
    if (check_rc_ != 0) {                                                                     \
      check_failures++;                                                                       \
      fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #expr, check_rc_,    \
              wh_error_last());                                                               \
    }                                                                                         \
  } while (0)

/* A call that must fail with code, and leave a message that contains needle. */
#define CHECK_ERR(expr, code, needle)                                                          \
  do {                                                                                         \
    int check_rc_ = (expr);                                                                    \
    check_count++;                                                                             \
    if (check_rc_ != (code)) {                                                                 \
      check_failures++;                                                                        \
      fprintf(stderr, "%s:%d: %s returned %d, expected %s (%d); message: %s\n", __FILE__,      \
              __LINE__, #expr, check_rc_, #code, (int)(code), wh_error_last());                \
    } else if ((needle) && !strstr(wh_error_last(), (needle) ? (needle) : "")) {              \
      check_failures++;                                                                        \
      fprintf(stderr, "%s:%d: %s: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, #expr,  \
              wh_error_last(), (needle) ? (needle) : "");                                     \
    }                                                                                          \
  } while (0)

static inline int check_done(const char *name)
{
  if (check_failures) {
    fprintf(stderr, "%s: %d of %d checks failed\n", name, check_failures, check_count);
    return 1;
  }
  printf("%s: all %d checks passed\n", name, check_count);
  return 0;
}

#endif
