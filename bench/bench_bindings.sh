#!/usr/bin/env bash
# Emits per second from Python and from Node against C, in the same run on the
# same machine: one thread emitting the person-CREATE event (built from its
# parts, message id taken) to one endpoint on a loopback receiver that answers
# 204, memory store. Each case runs ROUNDS times, interleaved; the table shows
# the median.
#
#   bench/bench_bindings.sh [EVENTS]      default 100000; ROUNDS=3
#
# Builds the library and bench_bindings_emit in build-bench (Release), installs
# the Python binding into a venv there (bindings/python/venv.sh) and the Node
# binding's packages (bindings/node/setup.sh). Traffic goes to 127.0.0.1 only.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
events=${1:-100000}
rounds=${ROUNDS:-3}
build=build-bench

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DWEBHOOK_BUILD_BENCH=ON -DWEBHOOK_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target webhook_shared bench_bindings_emit >/dev/null
bash bindings/node/setup.sh >/dev/null
bindings/python/venv.sh "$build/python-venv" >/dev/null
export LIBWEBHOOK_PATH="$root/$build/lib/libwebhook.so.1"

node bench/bindings_receiver.js >"$build/receiver.port" &
receiver=$!
trap 'kill "$receiver" 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$build/receiver.port" ] && break; sleep 0.1; done
url="http://127.0.0.1:$(head -1 "$build/receiver.port")/bench"

declare -A runs
for round in $(seq "$rounds"); do
  for case in c python node; do
    case $case in
      c) cmd=("$build/bench/bench_bindings_emit" "$url" "$events") ;;
      python) cmd=("$build/python-venv/bin/python" bench/bench_bindings.py "$url" "$events") ;;
      node) cmd=(node bench/bench_bindings.js "$url" "$events") ;;
    esac
    rate=$("${cmd[@]}" | awk '$1 == "RESULT" && $2 == "emits_per_s" { print $3 }')
    echo "round $round: $case $rate emits/s" >&2
    runs[$case]+="$rate "
  done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
c=$(median <<<"${runs[c]}")
printf '\n%s events, %s rounds, median emits per second (%s, %s cores)\n' "$events" "$rounds" "$(uname -m)" "$(nproc)"
printf '%-8s %12s %10s\n' binding emits/s "vs C"
for case in c python node; do
  m=$(median <<<"${runs[$case]}")
  printf '%-8s %12.0f %9.2fx\n' "$case" "$m" "$(awk -v a="$m" -v b="$c" 'BEGIN { print a / b }')"
done
