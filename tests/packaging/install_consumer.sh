#!/usr/bin/env bash
# Install the build into a temporary prefix and build a small host program against the
# install, as a user would (consume_prefix.sh: pkg-config, pkg-config --static,
# find_package). The temporary directory is removed on exit.
#
#   install_consumer.sh BUILD_DIR CONFIG LIBDIR CONSUMER_DIR CMAKE CC
#
# CONFIG may be empty (single-configuration generators). LIBDIR is CMAKE_INSTALL_LIBDIR.
# WEBHOOK_CONSUMER_FLAGS (environment, optional): extra compile and link flags, such as
# the -fsanitize= flags of a sanitizer build.
set -euo pipefail

build=$1 config=$2 libdir=$3 consumer=$4 cmake=$5 cc=$6

case $libdir in
  /*) echo "FAIL: CMAKE_INSTALL_LIBDIR is absolute ($libdir); cmake --install --prefix cannot move it" >&2
      exit 1 ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/webhook-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail=0

# --- install --------------------------------------------------------------------------
cfg=()
[ -z "$config" ] || cfg=(--config "$config")
if ! "$cmake" --install "$build" --prefix "$prefix" "${cfg[@]}" >"$tmp/log" 2>&1; then
  echo "FAIL: cmake --install $build --prefix $prefix" >&2
  sed 's/^/  | /' "$tmp/log" >&2
  exit 1
fi

for f in include/webhook/webhook.h include/webhook/webhook.hpp \
         "$libdir/libwebhook.so" "$libdir/libwebhook.so.1" "$libdir/libwebhook.a" \
         "$libdir/pkgconfig/libwebhook.pc" \
         "$libdir/cmake/webhook/webhookConfig.cmake" \
         "$libdir/cmake/webhook/webhookConfigVersion.cmake" \
         "$libdir/cmake/webhook/webhookTargets.cmake"; do
  [ -e "$prefix/$f" ] || { echo "FAIL: not installed: <prefix>/$f" >&2; fail=1; }
done
[ $fail -eq 0 ] || exit 1
echo "ok: installed to $prefix"

bash "$(dirname "${BASH_SOURCE[0]}")/consume_prefix.sh" \
  "$prefix" "$libdir" "$consumer" "$cmake" "$cc" "$tmp/consume" || exit 1
echo "install_consumer: ok"
