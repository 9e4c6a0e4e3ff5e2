#!/usr/bin/env bash
# The man pages that the build generated (docs/man/xml2man.py) against the shared library.
#
#   manpages_check.sh LIBRARY MAN3_DIR PUBLIC_HEADERS_DIR
#
# Fails when
#  - an exported wh_* symbol of LIBRARY (nm -D) has no page NAME.3.gz,
#  - a page is neither an exported function nor a function or type the public headers
#    declare (a page left behind by a function that is gone),
#  - a page does not render cleanly: groff -man -ww (every warning) says anything,
#  - man-db cannot read its NAME section (lexgrog: what apropos and whatis index),
#  - a page lacks NAME, SYNOPSIS with the #include, DESCRIPTION or SEE ALSO, or a
#    function's page lacks its prototype,
#  - a SEE ALSO names a page that does not exist,
#  - libwebhook(3), the overview, is missing or does not name every function.
set -euo pipefail

lib=$1 man3=$2 headers=$3
fail=0
problem() { echo "FAIL: $*" >&2; fail=1; }

for tool in nm groff lexgrog zcat; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found (scripts/deps.sh installs it)" >&2; exit 1; }
done
[ -f "$lib" ] || { echo "FAIL: no such library: $lib" >&2; exit 1; }
[ -d "$man3" ] || { echo "FAIL: no man pages in $man3: build the default target first" >&2; exit 1; }

mapfile -t funcs < <(nm -D --defined-only "$lib" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' \
                     | grep '^wh_' | sort -u)
[ ${#funcs[@]} -gt 0 ] || problem "nm -D found no wh_* symbol in $lib"
declare -A exported=()
for f in "${funcs[@]}"; do
  exported[$f]=1
  # Doxygen leaves an undocumented function out, and so its page.
  [ -f "$man3/$f.3.gz" ] || problem "exported $f has no man page ($man3/$f.3.gz):" \
    "is it documented in the header? (cmake --build build --target docs lists what is not)"
done
echo "exported wh_* functions: ${#funcs[@]}"

# What the headers declare, comments and preprocessor lines left out: the functions
# (WH_EXTERN ... wh_name(...);), declared before they are implemented and exported, and
# the types (typedef ... wh_name; and typedef ... (*wh_name)(...);).
declare -A declared=()
while read -r t; do declared[$t]=1; done < <(
  cat "$headers"/*.h | perl -0777 -pe 's{/\*.*?\*/}{}gs; s{//[^\n]*}{}g; s{^\s*#[^\n]*}{}mg' \
    | perl -0777 -ne 'while (/typedef\b[^;]*?\b(wh_\w+)\s*(?:\)\s*\([^;]*\))?\s*;/g) { print "$1\n" }
                      while (/WH_EXTERN\b[^;(]*?\b(wh_\w+)\s*\(/g) { print "$1\n" }')

[ -f "$man3/libwebhook.3.gz" ] || problem "no overview page libwebhook.3.gz"
overview=$(zcat "$man3/libwebhook.3.gz" 2>/dev/null || true)

# Every warning groff has (-ww), the output thrown away (-z): all pages in one run, then,
# if anything was said, page by page to name the culprits.
render() { groff -man -ww -z -Tutf8 2>&1 || echo "groff failed"; }
if [ -n "$(zcat "$man3"/*.3.gz | render)" ]; then
  for page in "$man3"/*.3.gz; do
    warnings=$(zcat "$page" | render)
    [ -z "$warnings" ] || problem "$(basename "$page") does not render cleanly: $warnings"
  done
fi

pages=0
for page in "$man3"/*.3.gz; do
  [ -e "$page" ] || continue
  pages=$((pages + 1))
  name=$(basename "$page" .3.gz)
  text=$(zcat "$page")
  if [ "$name" != libwebhook ] && [ -z "${exported[$name]:-}" ] && [ -z "${declared[$name]:-}" ]; then
    problem "$name.3.gz: neither exported nor declared in the headers (a page left behind?)"
  fi

  whatis=$(lexgrog "$page" 2>&1 || true)
  case $whatis in
    *": \"$name - "*) ;;
    *) problem "$name.3.gz: lexgrog cannot read its NAME section: $whatis" ;;
  esac

  # Bash patterns rather than a grep per check: there are a hundred pages.
  for section in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
    [[ $text == *$'\n.SH '"$section"$'\n'* ]] || problem "$name.3.gz has no $section section"
  done
  [[ $text == *$'\n.B #include <webhook/'* ]] || problem "$name.3.gz: SYNOPSIS without its #include"
  if [ -n "${exported[$name]:-}" ] && [[ $text != *"$name("* ]]; then
    problem "$name.3.gz: no prototype of $name"
  fi
  # SEE ALSO lines are ".BR name (3)" with a comma after all but the last.
  while read -r line; do
    if [[ $line =~ ^\.BR\ ([A-Za-z0-9_]+)\ \(3\),?$ ]]; then
      ref=${BASH_REMATCH[1]}
      [ -f "$man3/$ref.3.gz" ] || problem "$name.3.gz refers to $ref(3), which has no page"
    fi
  done <<<"$text"
  if [ -n "${exported[$name]:-}" ] && [[ $overview != *$'\n.BR '"$name"$' (3)\n'* ]]; then
    problem "libwebhook(3) does not list $name"
  fi
done
echo "pages: $pages"

[ $fail -eq 0 ] && echo "manpages: ok"
exit $fail
