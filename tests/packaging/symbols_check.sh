#!/usr/bin/env bash
# What the shared library exports, and under which names it is found.
#
#   symbols_check.sh LIBRARY EXPECTED_SONAME EXPECTED_FILE_NAME PUBLIC_HEADER
#
# Fails when
#  - a defined dynamic symbol is not wh_* (the version node WEBHOOK_1 aside),
#  - a wh__* (internal) symbol is exported,
#  - a function declared WH_EXTERN in the public header is not exported,
#  - an exported wh_* symbol is not bound to the version node WEBHOOK_1,
#  - the SONAME, the file name or the SONAME link next to the file is not as expected.
set -euo pipefail

lib=$1 want_soname=$2 want_file=$3 header=$4
fail=0
problem() { echo "FAIL: $*" >&2; fail=1; }

[ -f "$lib" ] || { echo "FAIL: no such library: $lib" >&2; exit 1; }

# "ADDRESS TYPE NAME[@@VERSION]"; the version suffix depends on the binutils release.
mapfile -t syms < <(nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }')
[ ${#syms[@]} -gt 0 ] || problem "nm -D found no defined symbol in $lib"

declare -A exported=()
for s in "${syms[@]}"; do
  name=${s%%@*}
  case $name in
    WEBHOOK_1) ;;                                  # the version node itself
    wh__*) problem "internal symbol exported: $name" ;;
    wh_*) exported[$name]=1 ;;
    *) problem "symbol without the wh_ prefix exported: $name" ;;
  esac
done
echo "exported wh_* symbols: ${#exported[@]}"

# Every public function is in the library (a consumer would fail to link otherwise).
# Without comments and preprocessor lines, each declaration "WH_EXTERN ... wh_name(...);"
# names its function first among the wh_ words that an opening parenthesis follows.
mapfile -t declared < <(perl -0777 -pe 's{/\*.*?\*/}{}gs; s{//[^\n]*}{}g; s{^\s*#[^\n]*}{}mg; s{\s+}{ }g' "$header" \
                        | grep -o 'WH_EXTERN [^;]*;' \
                        | sed -n 's/^[^(]*[^A-Za-z0-9_]\(wh_[A-Za-z0-9_]*\) *(.*/\1/p' | sort -u)
[ ${#declared[@]} -gt 0 ] || problem "found no WH_EXTERN function in $header"
for f in "${declared[@]}"; do
  [ -n "${exported[$f]:-}" ] || problem "declared in $(basename "$header") but not exported: $f"
done
echo "public functions declared in the header: ${#declared[@]}"

# Every exported symbol carries the version node of lib/libwebhook.map.
while read -r name version; do
  [ "$version" = "WEBHOOK_1" ] || problem "$name is bound to version '${version:-none}', not WEBHOOK_1"
done < <(objdump -T "$lib" | awk '$NF ~ /^wh_/ && $0 !~ /\*UND\*/ {
                 v = $(NF-1); gsub(/[()]/, "", v)
                 if (v ~ /^[0-9a-f]+$/) v = "none"      # no version column: the size came before the name
                 print $NF, v }')

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = "$want_soname" ] || problem "SONAME is '${soname:-none}', expected $want_soname"
echo "SONAME: ${soname:-none}"

file=$(basename "$lib")
[ "$file" = "$want_file" ] || problem "library file is $file, expected $want_file"
link=$(dirname "$lib")/$want_soname
if [ ! -e "$link" ] || [ "$(readlink -f "$link")" != "$(readlink -f "$lib")" ]; then
  problem "$link does not lead to $file"
fi

[ $fail -eq 0 ] && echo "symbols: ok"
exit $fail
