#!/usr/bin/env bash
# Install the npm package the interop test verifies against (standardwebhooks,
# pinned in package-lock.json) into tests/interop/node_modules.
#
#   tests/interop/setup.sh
#
# Idempotent: does nothing when node_modules already matches the lock file.
# Without node/npm it says so and exits 0: the test then skips itself.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "tests/interop/setup.sh: node/npm not found; interop_standardwebhooks will be skipped" >&2
  exit 0
fi

# npm writes node_modules/.package-lock.json after a successful install; when
# it is newer than package-lock.json and the package is there, we are done.
stamp=node_modules/.package-lock.json
installed_matches_lock() {
  node -e '
    const lock = require("./package-lock.json").packages["node_modules/standardwebhooks"];
    const got = require("./node_modules/standardwebhooks/package.json").version;
    process.exit(lock && lock.version === got ? 0 : 1);' 2>/dev/null
}
if [ -f "$stamp" ] && [ -f node_modules/standardwebhooks/package.json ] &&
  [ ! package-lock.json -nt "$stamp" ] && [ ! package.json -nt "$stamp" ] && installed_matches_lock; then
  echo "tests/interop/setup.sh: node_modules up to date"
  exit 0
fi

npm ci --no-audit --no-fund
