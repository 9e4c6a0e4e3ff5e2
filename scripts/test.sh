#!/usr/bin/env bash
# The README's test command: install the packages that are missing, configure, build and
# run every test.
#
#   ./scripts/test.sh [-DOPTION=VALUE ...]    extra options go to cmake
#
# WEBHOOK_BUILD_DIR chooses the build directory (default: build); WEBHOOK_CTEST_ARGS adds
# ctest arguments (for instance "-LE perf" under a sanitizer, where memory figures mean nothing).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
webhook_install_deps
# The Node binding's npm packages (pinned in its package-lock.json).
bash bindings/node/setup.sh

build=${WEBHOOK_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEBHOOK_BUILD_TESTS=ON "$@"
cmake --build "$build" -j2
# shellcheck disable=SC2086
ctest --test-dir "$build" --output-on-failure -j2 ${WEBHOOK_CTEST_ARGS:-}
