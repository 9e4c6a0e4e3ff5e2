#!/usr/bin/env bash
# Build a small host program against an installed libwebhook, as a user would, and run it:
#   (a) with pkg-config, linked to the shared library, run with LD_LIBRARY_PATH;
#   (b) as an out-of-tree CMake project: find_package(webhook 1) and webhook::webhook
#       (and webhook::webhook_static), in C and in C++ (<webhook/webhook.hpp>);
#   (c) with pkg-config --static, linked to libwebhook.a.
# Each program must print OK, and must have used the install in PREFIX, not another copy.
# Used by install_consumer.sh (a cmake --install) and deb_check.sh (the Debian packages
# installed into a fresh root).
#
#   consume_prefix.sh PREFIX LIBDIR CONSUMER_DIR CMAKE CC WORK_DIR
#
# LIBDIR is relative to PREFIX (lib, lib/x86_64-linux-gnu). WORK_DIR receives the builds
# (WORK_DIR/cmake is the CMake consumer's build tree); the caller removes it.
# WEBHOOK_CONSUMER_FLAGS (environment, optional): extra compile and link flags, such as
# the -fsanitize= flags of a sanitizer build.
set -euo pipefail

prefix=$1 libdir=$2 consumer=$3 cmake=$4 cc=$5 tmp=$6
read -r -a extra <<<"${WEBHOOK_CONSUMER_FLAGS:-}"
mkdir -p "$tmp"
fail=0

# Run a command quietly; on failure show its output and count it.
run() {
  local what=$1; shift
  if "$@" >"$tmp/log" 2>&1; then
    return 0
  fi
  echo "FAIL: $what" >&2
  echo "  \$ $*" >&2
  sed 's/^/  | /' "$tmp/log" >&2
  fail=1
  return 1
}

# A program passes when it exits 0 and prints exactly OK.
expect_ok() {
  local what=$1; shift
  local out
  if out=$("$@" 2>&1) && [ "$out" = OK ]; then
    echo "ok: $what"
  else
    echo "FAIL: $what did not print OK" >&2
    printf '%s\n' "$out" | sed 's/^/  | /' >&2
    fail=1
  fi
}

same_dir() { [ -d "$1" ] && [ -d "$2" ] && [ "$(cd "$1" && pwd -P)" = "$(cd "$2" && pwd -P)" ]; }

# --- (a) pkg-config, shared -----------------------------------------------------------
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR

# The .pc file must describe where it was installed, not the prefix the build was
# configured with: otherwise a consumer compiles against another copy, or none.
pc_ok=1
inc=$(pkg-config --variable=includedir libwebhook)
lib=$(pkg-config --variable=libdir libwebhook)
if ! same_dir "$inc" "$prefix/include" || ! same_dir "$lib" "$prefix/$libdir"; then
  echo "FAIL: libwebhook.pc installed to $prefix names includedir=$inc libdir=$lib;" \
       "it must follow the install prefix (cmake --install --prefix)" >&2
  fail=1 pc_ok=0
fi

if [ $pc_ok -eq 1 ]; then
  read -r -a pc_flags <<<"$(pkg-config --cflags --libs libwebhook)"
  if run "build with pkg-config" "$cc" "${extra[@]}" "$consumer/main.c" "${pc_flags[@]}" -o "$tmp/app_pc"; then
    # ldd's output first, then grep: with pipefail, `ldd | grep -q` fails when
    # grep stops reading early and ldd dies of SIGPIPE.
    deps=$(LD_LIBRARY_PATH=$prefix/$libdir ldd "$tmp/app_pc")
    if grep -q "=> $prefix/$libdir/libwebhook.so.1 " <<<"$deps"; then
      expect_ok "pkg-config, shared" env LD_LIBRARY_PATH="$prefix/$libdir" "$tmp/app_pc"
    else
      echo "FAIL: app_pc does not load libwebhook.so.1 from $prefix/$libdir" >&2
      LD_LIBRARY_PATH=$prefix/$libdir ldd "$tmp/app_pc" | sed 's/^/  | /' >&2
      fail=1
    fi
  fi

  # --- (c) pkg-config --static, libwebhook.a --------------------------------------------
  # -lwebhook would take libwebhook.so; -l:libwebhook.a takes the archive from the same -L.
  read -r -a st_flags <<<"$(pkg-config --static --cflags --libs libwebhook)"
  for i in "${!st_flags[@]}"; do
    [ "${st_flags[$i]}" != -lwebhook ] || st_flags[i]=-l:libwebhook.a
  done
  if run "build with pkg-config --static" "$cc" "${extra[@]}" "$consumer/main.c" "${st_flags[@]}" -o "$tmp/app_static"; then
    dyn=$(readelf -d "$tmp/app_static")
    if grep -q 'NEEDED.*libwebhook' <<<"$dyn"; then
      echo "FAIL: the static build still needs libwebhook.so" >&2
      fail=1
    else
      expect_ok "pkg-config --static" env -u LD_LIBRARY_PATH "$tmp/app_static"
    fi
  fi
fi

# --- (b) CMake: find_package(webhook 1) -----------------------------------------------
if run "configure the CMake consumer" "$cmake" -S "$consumer" -B "$tmp/cmake" \
       -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release \
       -DCMAKE_C_FLAGS="${WEBHOOK_CONSUMER_FLAGS:-}" -DCMAKE_CXX_FLAGS="${WEBHOOK_CONSUMER_FLAGS:-}" \
       -DCMAKE_EXE_LINKER_FLAGS="${WEBHOOK_CONSUMER_FLAGS:-}"; then
  found=$(sed -n 's/^webhook_DIR:[A-Z]*=//p' "$tmp/cmake/CMakeCache.txt")
  if ! same_dir "$found" "$prefix/$libdir/cmake/webhook"; then
    echo "FAIL: find_package(webhook) used $found, not the install in $prefix" >&2
    fail=1
  elif run "build the CMake consumer" "$cmake" --build "$tmp/cmake"; then
    # The imported target carries the library's full path: no LD_LIBRARY_PATH needed.
    expect_ok "find_package, webhook::webhook" env -u LD_LIBRARY_PATH "$tmp/cmake/app"
    expect_ok "find_package, webhook::webhook_static" env -u LD_LIBRARY_PATH "$tmp/cmake/app_static"
    expect_ok "find_package, webhook::webhook, C++ (webhook.hpp)" env -u LD_LIBRARY_PATH "$tmp/cmake/app_cpp"
  fi
fi

exit $fail
