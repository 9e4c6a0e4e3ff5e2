#!/usr/bin/env bash
# The README's demo command: install what is missing, build, and run the Casebook demo.
#
#   ./scripts/demo.sh [STORE]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
webhook_install_deps

build=${WEBHOOK_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target casebook_demo >/dev/null
# The demo keeps its SQLite store (casebook-demo.db) in a folder of its own.
mkdir -p "$build/demo"
cd "$build/demo"
exec ../examples/casebook_demo "$@"
