#!/usr/bin/env bash
# Compare the shared library's ABI with the committed baseline (abi/libwebhook.abi).
#
#   abi_check.sh BASELINE LIBRARY PUBLIC_HEADERS_DIR
#
# Passes when nothing changed, or when the only changes are added functions or
# variables. Fails on anything else: a removed or changed function, a changed public
# type, a changed SONAME. Only types of the public headers count; the internals behind
# the opaque handles may change freely. Exits 77 (skipped) when abidiff is missing.
#
# After a deliberate change of the ABI, regenerate the baseline with abi/update.sh.
set -euo pipefail

baseline=$1 lib=$2 headers=$3

if ! command -v abidiff >/dev/null 2>&1; then
  echo "SKIP: abidiff not installed (Debian package abigail-tools)"
  exit 77
fi
[ -f "$baseline" ] || { echo "FAIL: no baseline $baseline; create it with abi/update.sh" >&2; exit 1; }
[ -f "$lib" ] || { echo "FAIL: no such library: $lib" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# abidiff exit status bits (libabigail abidiff(1)):
#   1 ABIDIFF_ERROR, 2 ABIDIFF_USAGE_ERROR,
#   4 ABIDIFF_ABI_CHANGE, 8 ABIDIFF_ABI_INCOMPATIBLE_CHANGE
# The headers make every type they do not define private, so its changes do not count.
# (No --drop-private-types here: libabigail 2.2 aborts reading an ABIXML file with it;
# abi/update.sh already dropped them from the baseline.)
common=(--no-architecture --headers-dir1 "$headers" --headers-dir2 "$headers")

# Without debug information abidiff would see symbols only, and miss every change of a
# parameter or a type. Say so instead of passing quietly.
sections=$(readelf -S "$lib") # not piped into grep -q: with pipefail that races (SIGPIPE)
if ! grep -q '\.debug_info' <<<"$sections"; then
  echo "FAIL: $lib has no debug information; build with -g (RelWithDebInfo or Debug)" >&2
  exit 1
fi

status=0
abidiff "${common[@]}" --fail-no-debug-info "$baseline" "$lib" >"$tmp/report" 2>&1 || status=$?
cat "$tmp/report"

if (( (status & 3) || status > 15 )); then   # an error, or abidiff crashed
  echo "FAIL: abidiff could not compare (exit $status)" >&2
  exit 1
fi
if (( status & 8 )); then
  echo "FAIL: incompatible ABI change against $baseline (exit $status)" >&2
  exit 1
fi
if (( status & 4 )); then
  # Something changed. Added functions and variables are compatible; compare again
  # without them, and anything left is a change existing callers would feel (a
  # parameter added, a return type changed, a public type altered).
  rest=0
  abidiff "${common[@]}" --no-added-syms "$baseline" "$lib" >"$tmp/rest" 2>&1 || rest=$?
  if (( rest != 0 )); then
    echo "FAIL: ABI changed beyond added functions (abidiff exit $status, $rest without additions)." >&2
    echo "      If the change is deliberate (and compatible, or the SONAME was bumped)," >&2
    echo "      regenerate the baseline with abi/update.sh and commit it." >&2
    exit 1
  fi
  echo "abi: ok (only additions; regenerate the baseline with abi/update.sh to record them)"
  exit 0
fi
echo "abi: ok (no change)"
