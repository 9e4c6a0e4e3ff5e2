/*
 * wh__store_spec_parse on outside input (the store argument of
 * wh_registry_open). Only the parser: opening a registry with a fuzzed string
 * could create files.
 *
 * Input: the store text; the parser sees it up to its first NUL byte.
 *
 * Properties:
 *  - the result is WH_OK or WH_EINVAL; on WH_EINVAL nothing is allocated;
 *  - NULL, "" and "memory:" are the memory store, with no target;
 *  - "sqlite:PATH" is accepted exactly when PATH is 1..4096 bytes of UTF-8,
 *    and the target is PATH;
 *  - "postgresql://..." and "postgres://..." give the whole text as target,
 *    refused only when it is not UTF-8 or longer than 4128 bytes (the
 *    library's overall bound);
 *  - anything else is refused.
 */
#include "fuzz_common.h"

#include "stores/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = fuzz_strndup(data, size);
  size_t n = strlen(text);

  wh__store_spec spec;
  memset(&spec, 0xA5, sizeof spec);
  int rc = wh__store_spec_parse(text, &spec);
  FUZZ_ASSERT(rc == WH_OK || rc == WH_EINVAL);

  if (n == 0 || strcmp(text, "memory:") == 0) {
    FUZZ_ASSERT(rc == WH_OK && spec.kind == WH__STORE_MEMORY && spec.target == NULL);
  } else if (strncmp(text, "sqlite:", 7) == 0) {
    size_t pl = n - 7;
    int ok = pl >= 1 && pl <= 4096 && fuzz_utf8_valid((const unsigned char *)text + 7, pl);
    FUZZ_ASSERT(rc == (ok ? WH_OK : WH_EINVAL));
    if (ok)
      FUZZ_ASSERT(spec.kind == WH__STORE_SQLITE && spec.target &&
                  strcmp(spec.target, text + 7) == 0);
  } else if (strncmp(text, "postgresql://", 13) == 0 || strncmp(text, "postgres://", 11) == 0) {
    if (rc == WH_OK)
      FUZZ_ASSERT(spec.kind == WH__STORE_POSTGRES && spec.target && strcmp(spec.target, text) == 0);
    else
      FUZZ_ASSERT(n > 4096 + 32 || !fuzz_utf8_valid((const unsigned char *)text, n));
  } else {
    FUZZ_ASSERT(rc == WH_EINVAL);
  }
  if (rc != WH_OK)
    FUZZ_ASSERT(spec.target == NULL);
  wh__store_spec_free(&spec);
  FUZZ_ASSERT(spec.target == NULL);

  /* NULL is the memory store too. */
  FUZZ_ASSERT(wh__store_spec_parse(NULL, &spec) == WH_OK && spec.kind == WH__STORE_MEMORY &&
              spec.target == NULL);
  wh__store_spec_free(&spec);

  free(text);
  return 0;
}
