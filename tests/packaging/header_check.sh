#!/usr/bin/env bash
# The public header compiles on its own, as C99 or as C++17, pedantic, warnings as errors,
# with every compiler given; and so does the C++ wrapper, webhook.hpp (mode hpp17), with
# the warnings a careful C++ project turns on.
#
#   header_check.sh c99|cxx17|hpp17 INCLUDE_DIR COMPILER...
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

# The wrapper's templates are instantiated (Receiver::check with two kinds of header list),
# so that their bodies are checked too.
hpp_body='#include <webhook/webhook.hpp>
#include <webhook/webhook.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

int main() {
  try {
    webhook::Registry reg;
    webhook::Dispatcher d(reg);
    d.on_result([](const webhook::Result &r) { (void)r; });
    webhook::Receiver rc;
    std::map<std::string, std::string> headers;
    std::vector<std::pair<const char *, const char *>> list;
    return rc.check(headers, "").seen_before + rc.check(list, "").seen_before;
  } catch (const webhook::Error &e) {
    return e.code();
  }
}'

case $mode in
  hpp17)
    src=$tmp/wrapper.cpp
    body=$hpp_body
    what='<webhook/webhook.hpp>'
    flags=(-std=c++17 -pedantic -Werror -Wall -Wextra -Wundef -Wold-style-cast -Wshadow -Wconversion
           -Wsign-conversion -Wnon-virtual-dtor -Wzero-as-null-pointer-constant -Wcast-qual) ;;
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
    echo "FAIL: ${what:-<webhook/webhook.h>} does not compile alone with $cc ($mode)" >&2
    status=1
  fi
done
exit $status
