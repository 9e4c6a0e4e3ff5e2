#!/usr/bin/env bash
# After `cmake --install --component dev` into a temporary prefix, `man 3 wh_emit` finds
# and shows the installed page (MANPATH pointing into the prefix), and so does
# `man 3 libwebhook`.
#
#   man_install.sh BUILD_DIR CONFIG CMAKE
#
# CONFIG may be empty (single-configuration generators).
set -euo pipefail

build=$1 config=$2 cmake=$3
command -v man >/dev/null || { echo "FAIL: man not found (Debian package man-db; scripts/deps.sh)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/webhook-man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail=0
problem() { echo "FAIL: $*" >&2; fail=1; }

cfg=()
[ -z "$config" ] || cfg=(--config "$config")
# The dev component is the one that carries the man pages (and the libwebhook-dev package).
if ! "$cmake" --install "$build" --prefix "$prefix" --component dev "${cfg[@]}" >"$tmp/log" 2>&1; then
  echo "FAIL: cmake --install --component dev" >&2
  sed 's/^/  | /' "$tmp/log" >&2
  exit 1
fi

export MANPATH=$prefix/share/man MANWIDTH=80 MANPAGER=cat PAGER=cat LC_ALL=C.UTF-8
for page in wh_emit libwebhook; do
  want=$prefix/share/man/man3/$page.3.gz
  where=$(man -w 3 "$page" 2>&1 || true)
  if [ "$where" != "$want" ]; then
    problem "man -w 3 $page gives '$where', not $want"
    continue
  fi
  # --warnings: man-db runs groff with them on; a warning is a failure too.
  if ! out=$(man --warnings 3 "$page" 2>"$tmp/err"); then
    problem "man 3 $page failed: $(cat "$tmp/err")"
    continue
  fi
  [ ! -s "$tmp/err" ] || problem "man 3 $page warns: $(cat "$tmp/err")"
  grep -q "^NAME" <<<"$out" || problem "man 3 $page: no NAME section in what it shows"
  grep -q "^ *$page - " <<<"$out" || problem "man 3 $page: its NAME line is not '$page - ...'"
  grep -q "#include <webhook/webhook.h>" <<<"$out" || problem "man 3 $page: no #include in the SYNOPSIS"
  echo "ok: man 3 $page ($want)"
done
# The prototype as the header declares it.
out=$(man 3 wh_emit 2>/dev/null || true)
grep -q "int wh_emit(wh_event \*ev);" <<<"$out" || problem "man 3 wh_emit does not show int wh_emit(wh_event *ev);"

[ $fail -eq 0 ] && echo "man_install: ok"
exit $fail
