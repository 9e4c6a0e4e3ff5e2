/*
 * wh__schedule_parse on outside input (WH_OPT_RETRY_SCHEDULE).
 *
 * Input: the schedule text; the parser sees it up to its first NUL byte.
 *
 * Properties, when accepted:
 *  - 0 <= count <= WH__MAX_SCHEDULE, and nothing is written past the array
 *    (it is an exact-size heap block, so the sanitizer sees an overflow);
 *  - every delay is >= 0 and at most 366 days;
 *  - printing the delays back as "s.mmm,..." and parsing that gives the same
 *    delays;
 *  - the same text with room for one entry fewer is refused.
 * When refused: the result is WH_EINVAL.
 */
#include "fuzz_common.h"

#include "delivery/retry.h"

#define MAX_DELAY_MS (366LL * 24 * 3600 * 1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = fuzz_strndup(data, size);
  int64_t *delays = malloc(WH__MAX_SCHEDULE * sizeof *delays);
  FUZZ_ASSERT(delays);
  int count = -1;
  int rc = wh__schedule_parse(text, delays, WH__MAX_SCHEDULE, &count);
  FUZZ_ASSERT(rc == WH_OK || rc == WH_EINVAL);
  if (rc == WH_OK) {
    FUZZ_ASSERT(count >= 0 && count <= WH__MAX_SCHEDULE);
    /* Room for 32 entries of "31622400.000," and a NUL. */
    char back[WH__MAX_SCHEDULE * 16 + 1];
    size_t o = 0;
    for (int i = 0; i < count; i++) {
      FUZZ_ASSERT(delays[i] >= 0 && delays[i] <= MAX_DELAY_MS);
      o += (size_t)snprintf(back + o, sizeof back - o, "%s%lld.%03lld", i ? "," : "",
                            (long long)(delays[i] / 1000), (long long)(delays[i] % 1000));
    }
    back[o] = '\0';
    int64_t *again = malloc(WH__MAX_SCHEDULE * sizeof *again);
    FUZZ_ASSERT(again);
    int count2 = -1;
    FUZZ_ASSERT(wh__schedule_parse(back, again, WH__MAX_SCHEDULE, &count2) == WH_OK);
    FUZZ_ASSERT(count2 == count);
    for (int i = 0; i < count; i++)
      FUZZ_ASSERT(again[i] == delays[i]);
    free(again);

    if (count > 0) {
      int64_t *fewer = malloc((size_t)(count - 1) * sizeof *fewer + 1);
      FUZZ_ASSERT(fewer);
      int c3 = -1;
      FUZZ_ASSERT(wh__schedule_parse(text, fewer, count - 1, &c3) == WH_EINVAL);
      free(fewer);
    }
  }
  free(delays);
  free(text);
  return 0;
}
