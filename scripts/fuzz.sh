#!/usr/bin/env bash
# Fuzz every target of fuzz/ for a bounded time: libFuzzer, ASan and UBSan, clang.
#
#   scripts/fuzz.sh [TARGET...]        all targets when none is named
#                                      (verify url_header resource_json retry_after
#                                       schedule store_spec incoming admin)
# Environment:
#   FUZZ_SECONDS    fuzzing time per target, default 30
#   FUZZ_BUILD_DIR  build directory, default build-fuzz (relative to the source tree)
#   FUZZ_JOBS       build parallelism, default 2
#   CC, CXX         compilers, default clang and clang++ (libFuzzer needs clang)
#   WH_FUZZ_IGNORE  checks of reported, unfixed library bugs to skip, comma separated
#                   (names in fuzz/fuzz_common.h); default: those listed in
#                   fuzz/known-bugs. WH_FUZZ_IGNORE= (empty) runs every check.
#
# First every target replays its seed corpus (ctest fuzz_replay_*), then fuzzes for
# FUZZ_SECONDS starting from a scratch copy of fuzz/corpus/<target>/: new inputs go
# to the copy, which is deleted at the end; nothing is written under fuzz/. A crash,
# leak, sanitizer report, timeout or out-of-memory leaves its input under
# $FUZZ_BUILD_DIR/fuzz-artifacts/<target>/ and makes the script exit 1, after the
# other targets have run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

all_targets=(verify url_header resource_json retry_after schedule store_spec incoming admin)
# Longest input each target is given: enough for its limits that matter (a body
# past the 4096-byte stack buffer, 513 levels of JSON, a 4 KiB sqlite path,
# header values past the receiver's 4096-byte limit).
declare -A max_len=(
  [verify]=8192 [url_header]=4096 [resource_json]=4096
  [retry_after]=128 [schedule]=1024 [store_spec]=8192 [incoming]=8192 [admin]=8192
)

seconds=${FUZZ_SECONDS:-30}
build=${FUZZ_BUILD_DIR:-build-fuzz}
jobs=${FUZZ_JOBS:-2}
export CC=${CC:-clang} CXX=${CXX:-clang++}
case $seconds in
  '' | *[!0-9]*) echo "fuzz.sh: FUZZ_SECONDS must be a whole number of seconds" >&2; exit 2 ;;
esac

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -n "${max_len[$t]:-}" ] || { echo "fuzz.sh: unknown target '$t' (known: ${all_targets[*]})" >&2; exit 2; }
done

command -v "$CC" >/dev/null || { echo "fuzz.sh: $CC not found; libFuzzer needs clang" >&2; exit 2; }

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DWEBHOOK_BUILD_FUZZERS=ON -DWEBHOOK_SANITIZER=address+undefined \
  -DWEBHOOK_BUILD_TESTS=OFF -DWEBHOOK_BUILD_EXAMPLES=OFF >/dev/null
grep -q '^WEBHOOK_HAVE_LIBFUZZER:INTERNAL=1$' "$build/CMakeCache.txt" || {
  echo "fuzz.sh: $build is not a libFuzzer build (CC=$CC); use clang or another FUZZ_BUILD_DIR" >&2
  exit 2
}
cmake --build "$build" --target webhook_fuzzers -j"$jobs"

if [ -z "${WH_FUZZ_IGNORE+set}" ]; then
  WH_FUZZ_IGNORE=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' fuzz/known-bugs | paste -sd, -)
fi
export WH_FUZZ_IGNORE
[ -z "$WH_FUZZ_IGNORE" ] || echo "fuzz.sh: skipping the checks of known bugs: $WH_FUZZ_IGNORE"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# The seed corpus must pass before fuzzing means anything.
regex="^fuzz_replay_($(IFS='|'; echo "${targets[*]}"))\$"
ctest --test-dir "$build/fuzz" --output-on-failure -R "$regex"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/webhook-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
artifacts=$(cd "$build" && pwd)/fuzz-artifacts

failed=()
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "$artifacts/$t"
  cp -R fuzz/corpus/"$t"/. "$scratch/$t/"
  log="$artifacts/$t/last-run.log"
  echo "== fuzz_$t: ${seconds}s, max_len ${max_len[$t]}"
  rc=0
  (cd "$artifacts/$t" &&
    "$root/$build/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len="${max_len[$t]}" \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$t/" "$scratch/$t") >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n1 || true)
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    tail -n 60 "$log" >&2
    summary+=("$(printf '%-14s FAILED (exit %s), log and input in %s' "$t" "$rc" "$artifacts/$t")")
  else
    summary+=("$(printf '%-14s ok  %10s runs  %7s exec/s  %s' "$t" "${runs:-?}" "${rate:-?}" "$cov")")
  fi
done

echo
echo "== fuzz summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: failures in: ${failed[*]}" >&2
  exit 1
fi
