#!/usr/bin/env bash
# Install the npm packages the interop tests verify against (standardwebhooks,
# svix, stripe, @octokit/webhooks-methods, pinned in package-lock.json) into
# tests/interop/node_modules.
#
#   tests/interop/setup.sh
#
# Idempotent: does nothing when node_modules already matches the lock file.
# Without node/npm it says so and exits 0 (the tests then skip themselves),
# unless WH_REQUIRE_INTEROP=1 (as .ci/run sets it): then it exits 1, and so
# does a failing npm ci in every case.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  if [ "${WH_REQUIRE_INTEROP:-}" = 1 ]; then
    echo "tests/interop/setup.sh: node/npm not found, and WH_REQUIRE_INTEROP=1" >&2
    exit 1
  fi
  echo "tests/interop/setup.sh: node/npm not found; the interop tests will be skipped" >&2
  exit 0
fi

# npm writes node_modules/.package-lock.json after a successful install; when
# it is newer than package-lock.json and every locked top-level package is
# installed at its locked version, we are done.
stamp=node_modules/.package-lock.json
installed_matches_lock() {
  node -e '
    const fs = require("fs");
    const lock = require("./package-lock.json").packages;
    const deps = Object.keys(require("./package.json").dependencies);
    for (const d of deps) {
      const want = lock[`node_modules/${d}`];
      const file = `./node_modules/${d}/package.json`;
      if (!want || !fs.existsSync(file) || JSON.parse(fs.readFileSync(file, "utf8")).version !== want.version)
        process.exit(1);
    }' 2>/dev/null
}
if [ -f "$stamp" ] && [ ! package-lock.json -nt "$stamp" ] && [ ! package.json -nt "$stamp" ] &&
  installed_matches_lock; then
  echo "tests/interop/setup.sh: node_modules up to date"
  exit 0
fi

npm ci --no-audit --no-fund
