#!/usr/bin/env bash
# Install the Node binding's npm packages (koffi, and standardwebhooks for the
# tests; versions pinned in package-lock.json) into bindings/node/node_modules.
#
#   bindings/node/setup.sh
#
# Idempotent: does nothing when node_modules already matches the lock file.
# Without node/npm it fails: the binding's tests must not be skipped.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "bindings/node/setup.sh: $tool not found (scripts/deps.sh installs nodejs and npm)" >&2
    exit 1
  }
done

# npm writes node_modules/.package-lock.json after a successful install: when
# it is newer than the lock file and every locked version is installed, done.
installed_matches_lock() {
  node -e '
    const lock = require("./package-lock.json").packages;
    for (const [where, p] of Object.entries(lock)) {
      if (!where) continue;
      if (require("./" + where + "/package.json").version !== p.version) process.exit(1);
    }' 2>/dev/null
}
stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ ! package-lock.json -nt "$stamp" ] && [ ! package.json -nt "$stamp" ] &&
  installed_matches_lock; then
  echo "bindings/node/setup.sh: node_modules up to date"
  exit 0
fi

# koffi's install script only checks its prebuilt binary (it ships one per
# platform in the npm tarball: build/koffi/linux_x64/koffi.node); nothing is
# downloaded from anywhere but the npm registry.
npm ci --no-audit --no-fund
# Fail here, not in the tests, if the prebuilt binary does not load.
node -e 'require("koffi")'
