#!/usr/bin/env bash
# The public header compiles on its own, as C99 or as C++17, pedantic, warnings as errors,
# with every compiler given.
#
#   header_check.sh c99|cxx17 INCLUDE_DIR COMPILER...
set -euo pipefail

mode=$1 include_dir=$2
shift 2
[ $# -gt 0 ] || { echo "header_check: no compiler given" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Included twice to check the include guard; nothing else is included, so the header
# must bring what it uses. The body touches a few declarations so they are parsed in use.
body='#include <webhook/webhook.h>
#include <webhook/webhook.h>

static void on_result(const wh_result *r, void *userdata) { (void)r; (void)userdata; }

int main(void) {
  wh_result_cb cb = on_result;
  wh_option opt = WH_OPT_WORKERS;
  char id[WH_ID_MAX];
  (void)cb;
  (void)opt;
  id[0] = 0;
  return id[0] + (WH_VERSION_NUM == 0x010100 ? WH_OK : WH_EINVAL);
}'

case $mode in
  c99)
    src=$tmp/header.c
    flags=(-std=c99 -pedantic -Werror -Wall -Wextra -Wstrict-prototypes -Wundef) ;;
  cxx17)
    src=$tmp/header.cpp
    flags=(-std=c++17 -pedantic -Werror -Wall -Wextra -Wundef -Wold-style-cast) ;;
  *) echo "header_check: unknown mode '$mode'" >&2; exit 2 ;;
esac
printf '%s\n' "$body" >"$src"

status=0
for cc in "$@"; do
  echo "== $cc ${flags[*]} -I$include_dir"
  if "$cc" "${flags[@]}" -I"$include_dir" -c "$src" -o "$tmp/header.o"; then
    echo "   ok"
  else
    echo "FAIL: <webhook/webhook.h> does not compile alone with $cc ($mode)" >&2
    status=1
  fi
done
exit $status
