# shellcheck shell=bash
# The Debian 12 packages that building libwebhook and running its whole test suite
# need. Sourced by scripts/test.sh (installs what is missing) and .ci/run (installs all).

WEBHOOK_DEPS=(
  build-essential cmake pkg-config binutils clang libclang-rt-dev openssl
  libcurl4-openssl-dev libcjson-dev libssl-dev libsqlite3-dev libpq-dev libmicrohttpd-dev
  # `pkg-config --static --libs libcurl` names these libraries, but Debian's
  # libcurl4-openssl-dev only suggests their -dev packages. The install_consumer test
  # links libwebhook.a with that list, as a user linking statically would.
  libbrotli-dev libidn2-dev libkrb5-dev libldap2-dev libnghttp2-dev libpsl-dev
  librtmp-dev libssh2-1-dev libzstd-dev zlib1g-dev
  abigail-tools   # abidw, abidiff: the abi test
  # The man pages and the API reference (docs/): doxygen writes XML and HTML, Debian's
  # python3 turns the XML into man pages; man-db and groff render them in the tests.
  doxygen python3 man-db groff-base
  # The Debian packages (cpack, the deb_packages test): dpkg-shlibdeps and
  # dpkg-architecture, file for CPack, fakeroot for dpkg --root as an ordinary user.
  dpkg-dev file fakeroot
  postgresql      # a server for the postgresql:// store tests
  valgrind
  # The bindings' tests (bindings/): the Python package is built offline with
  # Debian's setuptools and wheel into a venv (mypy checks its type hints); the Node one needs node and npm
  # (bindings/node/setup.sh installs its npm packages).
  python3 python3-setuptools python3-wheel python3-venv python3-pip python3-mypy
  nodejs npm
  chromium        # the admin page's browser test (driven by puppeteer-core from npm)
  man-db          # whctl's man page is rendered without warnings (test whctl_man)
)

# Print the packages of WEBHOOK_DEPS that are not installed, one a line. A name
# that an installed package provides counts as installed: a machine whose
# nodejs comes from elsewhere (NodeSource's provides npm and conflicts with
# Debian's npm) has what npm is wanted for.
webhook_missing_deps() {
  local p provided
  provided=$(dpkg-query -W -f='${Status}\t${Provides}\n' 2>/dev/null |
    awk -F'\t' '$1 == "install ok installed" { print $2 }' | tr ',' '\n' |
    sed -e 's/([^)]*)//' -e 's/^ *//' -e 's/ *$//')
  for p in "${WEBHOOK_DEPS[@]}"; do
    # No pipe into grep -q here: under pipefail that races (SIGPIPE) and lies.
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] && continue
    grep -qxF -- "$p" <<<"$provided" && continue
    echo "$p"
  done
}

# Install the missing packages, through sudo when not root. Does nothing (and needs
# neither root nor the network) when everything is there already.
webhook_install_deps() {
  local missing sudo=()
  mapfile -t missing < <(webhook_missing_deps)
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      echo "missing packages: ${missing[*]}; install them as root (sudo not found)" >&2
      return 1
    }
    sudo=(sudo)
  fi
  echo "installing missing packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
}
