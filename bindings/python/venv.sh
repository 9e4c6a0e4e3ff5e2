#!/usr/bin/env bash
# Install the Python binding into a fresh virtual environment, the way a user
# would (pip install --no-build-isolation, with Debian's setuptools and wheel;
# nothing comes from PyPI), for the tests, the examples and the benchmark.
#
#   bindings/python/venv.sh VENV [PYTHON]      PYTHON: default /usr/bin/python3
#
# The package is built from a copy, so the source tree gets no build/ or
# egg-info folder.
set -euo pipefail

venv=${1:?usage: venv.sh VENV [PYTHON]}
python=${2:-/usr/bin/python3}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

"$python" -c 'import setuptools, wheel, venv' 2>/dev/null || {
  echo "venv.sh: $python lacks setuptools, wheel or venv (scripts/deps.sh installs python3-setuptools python3-wheel python3-venv)" >&2
  exit 1
}
rm -rf "$venv"
# --system-site-packages: the build backend (Debian's setuptools and wheel) comes from the system.
"$python" -m venv --system-site-packages "$venv"
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
cp -r "$here/pyproject.toml" "$here/README.md" "$here/src" "$copy/"
"$venv/bin/python" -m pip install --quiet --no-build-isolation --no-index --no-deps --disable-pip-version-check "$copy"
"$venv/bin/python" -c 'import libwebhook, sys; print("installed", libwebhook.__file__)'
