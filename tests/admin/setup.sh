#!/usr/bin/env bash
# Install the npm packages of the admin tests (pinned in package-lock.json) into
# tests/admin/node_modules: the OpenAPI document validator, Ajv, yaml, and
# puppeteer-core, which drives Debian's chromium (it never downloads a browser).
#
#   tests/admin/setup.sh
#
# Idempotent: does nothing when node_modules already matches the lock file.
# Without node/npm it says so and exits 0: the tests then say what is missing
# and fail (they are not skipped).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "tests/admin/setup.sh: node/npm not found; the admin tests cannot run" >&2
  exit 0
fi

stamp=node_modules/.package-lock.json
installed_matches_lock() {
  node -e '
    const lock = require("./package-lock.json").packages;
    for (const name of Object.keys(require("./package.json").dependencies)) {
      const want = lock["node_modules/" + name];
      const got = require("./node_modules/" + name + "/package.json").version;
      if (!want || want.version !== got) process.exit(1);
    }' 2>/dev/null
}
if [ -f "$stamp" ] && [ ! package-lock.json -nt "$stamp" ] && [ ! package.json -nt "$stamp" ] &&
  installed_matches_lock; then
  echo "tests/admin/setup.sh: node_modules up to date"
  exit 0
fi

# --ignore-scripts: no install script runs (puppeteer-core has none; this keeps it so).
npm ci --no-audit --no-fund --ignore-scripts
