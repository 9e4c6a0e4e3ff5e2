#!/usr/bin/env bash
# Regenerate abi/libwebhook.abi, the ABI baseline that the `abi` test
# (tests/packaging/abi_check.sh) compares the shared library against.
#
# When to run it: only when the public ABI changes ON PURPOSE.
#  - Public functions were added: the abi test still passes, and says so; run this
#    to record them, so a later removal or change of them is caught.
#  - A deliberate incompatible change (a function removed or its signature changed, a
#    public type altered): that is a new ABI, so first bump the SONAME
#    (WEBHOOK_SOVERSION in CMakeLists.txt, the version node in lib/libwebhook.map and the
#    expected SONAME in tests/packaging/CMakeLists.txt), then run this.
# Never run it merely to make a failing abi test pass: the failure means that programs
# already linked against libwebhook.so.1 would break. Review `git diff abi/` before
# committing the new baseline; every line of it is a change users will see.
#
#   abi/update.sh              build the library (RelWithDebInfo) in a temporary
#                              directory, then write the baseline from it
#   abi/update.sh LIBRARY      write the baseline from an already built libwebhook.so.1.x.y
#                              (it must carry debug information: -g)
#
# The baseline leaves out what would make it vary between machines and checkouts and
# hide the real changes in the diff: file paths and line numbers, the compilation
# directory, the architecture, the libraries it depends on, undefined symbols, and every
# type not declared in the public header (the internals behind the opaque handles).
# Type ids are hashes, so adding a function does not renumber every type.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$root/abi/libwebhook.abi
headers=$root/include/webhook

command -v abidw >/dev/null || { echo "abidw not found: install abigail-tools" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ $# -ge 1 ]; then
  lib=$1
else
  echo "building libwebhook in $tmp/build ..."
  if ! { cmake -S "$root" -B "$tmp/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                -DWEBHOOK_BUILD_TESTS=OFF -DWEBHOOK_BUILD_EXAMPLES=OFF &&
         cmake --build "$tmp/build" --target webhook_shared -j2; } >"$tmp/build.log" 2>&1; then
    cat "$tmp/build.log" >&2
    exit 1
  fi
  lib=$(find "$tmp/build" -name 'libwebhook.so.*.*.*' -type f | head -n1)
fi
[ -f "$lib" ] || { echo "no library: $lib" >&2; exit 1; }
readelf -S "$lib" | grep -q '\.debug_info' \
  || { echo "$lib has no debug information; build it with -g" >&2; exit 1; }

abidw --headers-dir "$headers" --drop-private-types --drop-undefined-syms \
      --no-corpus-path --no-comp-dir-path --no-show-locs --no-architecture \
      --no-elf-needed --type-id-style hash \
      --out-file "$tmp/raw.abi" "$lib"
# Translation units are named by absolute source path; keep only lib/NAME.c, so the
# baseline does not depend on where the checkout lives.
sed "s|<abi-instr \(.*\) path='[^']*/\(lib/[^/']*\)'|<abi-instr \1 path='\2'|" \
    "$tmp/raw.abi" >"$tmp/libwebhook.abi"

# Check the new baseline reads back and matches the library it came from.
abidiff --no-architecture --headers-dir1 "$headers" --headers-dir2 "$headers" \
        "$tmp/libwebhook.abi" "$lib" >/dev/null \
  || { echo "the new baseline does not compare equal to $lib" >&2; exit 1; }

mv "$tmp/libwebhook.abi" "$out"
echo "wrote $out from $lib"
echo "functions in the baseline: $(grep -c "<elf-symbol .*type='func-type'" "$out")"
