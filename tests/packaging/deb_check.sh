#!/usr/bin/env bash
# The Debian packages, built as the README says, checked, installed into a fresh root and
# used to build a program:
#
#  1. configure a tree for /usr (tests off), build it, `cpack` (cmake/packaging.cmake);
#  2. the metadata of libwebhook1 and libwebhook-dev (dpkg-deb -f): names, version,
#     architecture, Multi-Arch, section, maintainer, description;
#  3. their contents (dpkg-deb -c): the runtime package holds the shared library alone,
#     the -dev package every public header, the archive, the .so link, the pkg-config and
#     CMake files and a man page per exported function; no file outside their places;
#  4. the runtime package's Depends name the package of every library it links to (what
#     dpkg-shlibdeps found), its shlibs file and ldconfig trigger are there;
#  5. `apt-get install --simulate` of both .deb files resolves on this machine;
#  6. both are installed into an empty root with `dpkg --root` (see below), and
#     `dpkg --verify` finds every file as packaged;
#  7. consume_prefix.sh builds and runs the consumer against that root: pkg-config,
#     pkg-config --static, find_package(webhook) (signs and verifies the Standard Webhooks
#     test vector, opens a memory registry, builds an event);
#  8. every file those builds read from this machine (the .pc files pkg-config visits, the
#     libraries of the static link line, what find_package found) belongs to a package in
#     the dependency closure of libwebhook-dev (or of build-essential and cmake): so that
#     its Depends are enough for a program built either way;
#  9. `man 3 wh_emit` finds the page in the root.
#
#   deb_check.sh SOURCE_DIR CONSUMER_DIR CMAKE CPACK CC
#
# Why dpkg --root and not dpkg-deb -x: --root runs the real installation (dpkg parses the
# control files, registers the files and the Multi-Arch instances, handles the trigger),
# into a directory of its own, with its own database (ROOT/var/lib/dpkg) and its own log,
# so the machine's /usr and its dpkg database stay untouched. --force-depends lets it
# install the two packages without their dependencies: those are the machine's, which
# step 5 showed resolve, and step 8 showed suffice. There are no maintainer scripts to run
# (cmake/deb_fixup.cmake), so nothing is ever executed inside the root. dpkg needs root,
# or fakeroot for an ordinary user.
set -euo pipefail

src=$1 consumer=$2 cmake=$3 cpack=$4 cc=$5
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

for tool in dpkg dpkg-deb dpkg-query dpkg-architecture dpkg-shlibdeps apt-get file readelf nm ldd pkg-config man; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found (scripts/deps.sh installs it)" >&2; exit 1; }
done
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v fakeroot >/dev/null || { echo "FAIL: not root and no fakeroot for dpkg --root" >&2; exit 1; }
  as_root=(fakeroot)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/webhook-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
problem() { echo "FAIL: $*" >&2; fail=1; }

# Run a step quietly; on failure show the end of its output and stop.
step() {
  local what=$1; shift
  if ! "$@" >"$tmp/step.log" 2>&1; then
    echo "FAIL: $what" >&2
    echo "  \$ $*" >&2
    tail -n 40 "$tmp/step.log" | sed 's/^/  | /' >&2
    exit 1
  fi
}

# --- 1. build the packages ---------------------------------------------------------------
build=$tmp/build
step "configure for /usr" "$cmake" -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX=/usr \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEBHOOK_BUILD_TESTS=OFF -DWEBHOOK_BUILD_EXAMPLES=OFF
step "build" "$cmake" --build "$build" -j2
step "cpack" "$cpack" --config "$build/CPackConfig.cmake" -B "$tmp/packages"

arch=$(dpkg --print-architecture)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
debver=$version-1
built_lib=$(find "$build/lib" -name "libwebhook.so.$version" -type f | head -n1)
soname=$(readelf -d "$built_lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
rt_name=libwebhook${soname#libwebhook.so.}     # Debian's rule: libNAME + SONAME version
rt=$tmp/packages/${rt_name}_${debver}_${arch}.deb
dev=$tmp/packages/libwebhook-dev_${debver}_${arch}.deb
mapfile -t debs < <(find "$tmp/packages" -maxdepth 1 -name '*.deb' -printf '%f\n' | sort)
[ -f "$rt" ] && [ -f "$dev" ] && [ ${#debs[@]} -eq 2 ] ||
  { echo "FAIL: expected $(basename "$rt") and $(basename "$dev"), cpack made: ${debs[*]:-nothing}" >&2; exit 1; }
echo "ok: built ${debs[*]}"

# --- 2. metadata ---------------------------------------------------------------------------
field() { dpkg-deb -f "$1" "$2"; }
check_field() {
  local deb=$1 name=$2 want=$3 got
  got=$(field "$deb" "$name")
  [ "$got" = "$want" ] || problem "$(basename "$deb"): $name is '$got', expected '$want'"
}
for deb in "$rt" "$dev"; do
  check_field "$deb" Version "$debver"
  check_field "$deb" Architecture "$arch"
  check_field "$deb" Multi-Arch same
  check_field "$deb" Priority optional
  maint=$(field "$deb" Maintainer)
  [[ $maint =~ ^[^\<\>]+\ \<[^\<\>@\ ]+@[^\<\>\ ]+\>$ ]] || problem "$(basename "$deb"): Maintainer '$maint' is not 'Name <address>'"
  [ -n "$(field "$deb" Homepage)" ] || problem "$(basename "$deb"): no Homepage"
  mapfile -t desc < <(field "$deb" Description)
  summary=${desc[0]:-}
  { [ -n "$summary" ] && [ ${#summary} -le 80 ]; } || problem "$(basename "$deb"): summary '$summary' empty or longer than 80"
  [ ${#desc[@]} -ge 3 ] || problem "$(basename "$deb"): no extended description"
done
check_field "$rt" Package "$rt_name"
check_field "$rt" Section libs
check_field "$dev" Package libwebhook-dev
check_field "$dev" Section libdevel
echo "ok: metadata"

# --- 3. contents -----------------------------------------------------------------------------
# "PATH" for files, "PATH -> TARGET" for links; directories left out.
contents() { dpkg-deb -c "$1" | awk '$1 !~ /^d/ { $1=$2=$3=$4=$5=""; sub(/^ +\./, ""); print }'; }
mapfile -t rt_files < <(contents "$rt")
want_rt=("/usr/lib/$ma/$soname -> libwebhook.so.$version" "/usr/lib/$ma/libwebhook.so.$version")
[ "$(printf '%s\n' "${rt_files[@]}" | sort)" = "$(printf '%s\n' "${want_rt[@]}" | sort)" ] ||
  problem "$rt_name holds: ${rt_files[*]}; expected: ${want_rt[*]}"

mapfile -t dev_files < <(contents "$dev")
declare -A in_dev=()
for f in "${dev_files[@]}"; do
  in_dev[${f%% -> *}]=1
  case $f in
    /usr/include/webhook/*|/usr/lib/$ma/libwebhook.a|/usr/lib/$ma/pkgconfig/libwebhook.pc) ;;
    "/usr/lib/$ma/libwebhook.so -> $soname") ;;
    /usr/lib/$ma/cmake/webhook/*.cmake|/usr/share/man/man3/*.3.gz|/usr/share/doc/libwebhook-dev/*) ;;
    *) problem "libwebhook-dev holds $f, which has no place there" ;;
  esac
done
want_dev=("/usr/lib/$ma/libwebhook.a" "/usr/lib/$ma/libwebhook.so" "/usr/lib/$ma/pkgconfig/libwebhook.pc"
          "/usr/lib/$ma/cmake/webhook/webhookConfig.cmake" "/usr/lib/$ma/cmake/webhook/webhookConfigVersion.cmake"
          "/usr/lib/$ma/cmake/webhook/webhookTargets.cmake" /usr/share/man/man3/libwebhook.3.gz)
for h in "$src"/include/webhook/*; do want_dev+=("/usr/include/webhook/$(basename "$h")"); done
mkdir -p "$tmp/x"
dpkg-deb -x "$rt" "$tmp/x"
lib=$tmp/x/usr/lib/$ma/libwebhook.so.$version
mapfile -t funcs < <(nm -D --defined-only "$lib" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' | grep '^wh_' | sort -u)
[ ${#funcs[@]} -gt 0 ] || problem "the packaged library exports no wh_* function"
for f in "${funcs[@]}"; do want_dev+=("/usr/share/man/man3/$f.3.gz"); done
for f in "${want_dev[@]}"; do
  [ -n "${in_dev[$f]:-}" ] || problem "libwebhook-dev lacks $f"
done
sections=$(readelf -S "$lib")
! grep -q '\.debug_info' <<<"$sections" || problem "the packaged library is not stripped"
echo "ok: contents (${#rt_files[@]} + ${#dev_files[@]} files, ${#funcs[@]} functions with a man page)"

# --- 4. the runtime package's dependencies, shlibs and trigger ------------------------------
# Which packages own a file. dpkg-query -S reads its whole database on every call, so
# lookup_owners asks once for all the paths given (and their other names: the link's
# target, and /lib for /usr/lib and back, the usr-merge aliases), then owners answers.
declare -A owner_of=()
path_names() { local p=$1; printf '%s\n' "$p" "$(readlink -f "$p")" "/usr${p#/usr}"; [ "${p#/usr/}" = "$p" ] || echo "${p#/usr}"; }
lookup_owners() {
  local line pkgs path
  while IFS= read -r line; do
    [[ $line != diversion* ]] || continue
    path=${line##*: } pkgs=${line%: *}
    pkgs=${pkgs//,/ }
    owner_of[$path]=$(for o in $pkgs; do echo "${o%%:*}"; done | sort -u | tr '\n' ' ')
  done < <(for p in "$@"; do path_names "$p"; done | sort -u | xargs -d '\n' dpkg-query -S 2>/dev/null || true)
}
owners() {  # the packages that own a path, one a line (lookup_owners first)
  local v
  while read -r v; do
    if [ -n "${owner_of[$v]:-}" ]; then printf '%s\n' ${owner_of[$v]}; return 0; fi
  done < <(path_names "$1")
  return 1
}
depends_names() {  # the package names of a Depends or Provides field, alternatives included
  local item items
  IFS=',' read -r -a items <<<"${1//|/,}"
  for item in "${items[@]}"; do
    item=${item%%(*} item=${item%%:*} item=${item// /}
    [ -z "$item" ] || echo "$item"
  done
}
rt_deps=$(field "$rt" Depends)
mapfile -t rt_dep_names < <(depends_names "$rt_deps")
libs=$(ldd "$lib")
mapfile -t needed_list < <(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p')
needed_paths=()
for needed in "${needed_list[@]}"; do
  # "NAME => PATH (ADDR)", or "PATH (ADDR)" for the dynamic loader.
  path=$(awk -v n="$needed" '$1 == n && $3 ~ /^\// { print $3; exit }
                             $1 ~ /^\// && substr($1, length($1) - length(n)) == "/" n { print $1; exit }' <<<"$libs")
  if [ -z "$path" ]; then problem "$needed (NEEDED) not found by ldd"; continue; fi
  needed_paths+=("$path")
done
lookup_owners "${needed_paths[@]}"
for path in "${needed_paths[@]}"; do
  owner=$(owners "$path" | head -n1) || { problem "no package owns $path"; continue; }
  printf '%s\n' "${rt_dep_names[@]}" | grep -qx "$owner" ||
    problem "$rt_name links to $path ($owner) but does not depend on $owner: Depends: $rt_deps"
done
! grep -q -- '-dev\b' <<<"$rt_deps" || problem "$rt_name depends on a -dev package: $rt_deps"
mkdir -p "$tmp/ctrl"
dpkg-deb -e "$rt" "$tmp/ctrl"
[ "$(cat "$tmp/ctrl/shlibs" 2>/dev/null)" = "libwebhook ${soname#libwebhook.so.} $rt_name (>= $debver)" ] ||
  problem "shlibs of $rt_name: '$(cat "$tmp/ctrl/shlibs" 2>/dev/null)'"
grep -qx 'activate-noawait ldconfig' "$tmp/ctrl/triggers" 2>/dev/null || problem "$rt_name has no ldconfig trigger"
for s in preinst postinst prerm postrm; do
  [ ! -e "$tmp/ctrl/$s" ] || problem "$rt_name has a $s script"
done
dev_deps=$(field "$dev" Depends)
grep -q "\(^\|, \)$rt_name (= $debver)\(,\|$\)" <<<"$dev_deps" ||
  problem "libwebhook-dev does not depend on $rt_name (= $debver): $dev_deps"
echo "ok: $rt_name Depends: $rt_deps"

# --- 5. apt resolves them on this machine -------------------------------------------------------
if (cd "$tmp/packages" && apt-get install --simulate -q "./$(basename "$rt")" "./$(basename "$dev")") >"$tmp/apt.log" 2>&1 &&
   grep -q "^Inst $rt_name " "$tmp/apt.log" && grep -q "^Inst libwebhook-dev " "$tmp/apt.log"; then
  echo "ok: apt-get install --simulate resolves both"
else
  problem "apt-get install --simulate does not resolve the packages:"
  sed 's/^/  | /' "$tmp/apt.log" >&2
fi

# --- 6. install into a fresh root -----------------------------------------------------------------
root=$tmp/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
# --path-include: a path-exclude of the machine's dpkg.cfg.d (Docker images drop the man
# pages) would otherwise apply to the root as well.
step "dpkg --root install" "${as_root[@]}" dpkg --root="$root" --log="$tmp/dpkg.log" --force-depends \
  --path-include='/*' --install "$rt" "$dev"
status=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Package} ${Version} ${db:Status-Status}\n' | sort)
[ "$status" = "$(printf '%s\n' "libwebhook-dev $debver installed" "$rt_name $debver installed" | sort)" ] ||
  problem "dpkg in the root has: $status"
verify=$("${as_root[@]}" dpkg --root="$root" --verify 2>&1 || true)
[ -z "$verify" ] || problem "dpkg --verify in the root: $verify"
echo "ok: installed into $root"

# --- 7. build and run the consumer against the root ---------------------------------------------
bash "$here/consume_prefix.sh" "$root/usr" "lib/$ma" "$consumer" "$cmake" "$cc" "$tmp/consume" || fail=1

# --- 8. the -dev package's Depends suffice ---------------------------------------------------------
# Every installed package: its dependencies and what it provides.
declare -A installed=() deps_of=() providers=()
while IFS=$'\t' read -r st pkg deps prov; do
  [ "$st" = installed ] || continue
  installed[$pkg]=1
  deps_of[$pkg]="${deps_of[$pkg]:-}, $deps"
  [ -n "$prov" ] || continue   # most provide nothing: spare them a subshell
  for v in $(depends_names "$prov"); do providers[$v]="${providers[$v]:-} $pkg"; done
done < <(dpkg-query -W -f='${db:Status-Status}\t${Package}\t${Depends}, ${Pre-Depends}\t${Provides}\n')
declare -A allowed=()
closure() {  # every installed package reachable from the names given, into allowed[]
  local queue=("$@") i=0 p
  while [ $i -lt ${#queue[@]} ]; do
    p=${queue[$i]} i=$((i + 1))
    [ -z "${allowed[$p]:-}" ] || continue
    allowed[$p]=1
    if [ -n "${installed[$p]:-}" ]; then
      mapfile -t -O "${#queue[@]}" queue < <(depends_names "${deps_of[$p]}")
    fi
    for v in ${providers[$p]:-}; do queue+=("$v"); done
  done
}
mapfile -t dev_dep_names < <(depends_names "$dev_deps")
closure "${dev_dep_names[@]}" build-essential cmake

needs=()  # "FILE<tab>why"
export PKG_CONFIG_PATH=$root/usr/lib/$ma/pkgconfig
# (a) the .pc files pkg-config reads for libwebhook, Requires.private included.
queue=(libwebhook) ; declare -A seen_pc=()
while [ ${#queue[@]} -gt 0 ]; do
  m=${queue[0]}; queue=("${queue[@]:1}")
  [ -z "${seen_pc[$m]:-}" ] || continue
  seen_pc[$m]=1
  dir=$(pkg-config --variable=pcfiledir "$m" 2>/dev/null) || { problem "pkg-config cannot find $m"; continue; }
  [ "$m" = libwebhook ] || needs+=("$dir/$m.pc"$'\t'"pkg-config libwebhook reads it")
  mapfile -t -O "${#queue[@]}" queue < <(pkg-config --print-requires --print-requires-private "$m" | awk '{ print $1 }')
done
# (b) every library of the static link line: the archive, or the shared library if none.
for flag in $(pkg-config --static --libs libwebhook); do
  case $flag in -l*) ;; *) continue ;; esac
  name=${flag#-l}
  [ "$name" != webhook ] || continue
  file=$("$cc" -print-file-name="lib$name.a")
  [ "$file" != "lib$name.a" ] || file=$("$cc" -print-file-name="lib$name.so")
  if [ "$file" = "lib$name.so" ]; then problem "no library for $flag of pkg-config --static"; continue; fi
  needs+=("$(realpath -s "$file")"$'\t'"pkg-config --static --libs names $flag")
done
# (c) what find_package(webhook) found: files, and directories that one package owns.
cache_dirs=()
while IFS='=' read -r key value; do
  [ -e "$value" ] || continue
  case $value in "$root"/*|"$tmp"/*) continue ;; esac
  if [ -d "$value" ]; then cache_dirs+=("$value"$'\t'"${key%%:*}"); continue; fi
  needs+=("$value"$'\t'"find_package(webhook) found ${key%%:*}")
done < <(grep -E '^[A-Za-z0-9_.-]+:(FILEPATH|PATH)=/' "$tmp/consume/cmake/CMakeCache.txt" || true)

lookup_owners "${needs[@]%%$'\t'*}" "${cache_dirs[@]%%$'\t'*}"
for d in "${cache_dirs[@]}"; do
  n=$(owners "${d%%$'\t'*}" | wc -l || true)
  [ "$n" != 1 ] || needs+=("${d%%$'\t'*}"$'\t'"find_package(webhook) found ${d#*$'\t'}")
done
checked=0 missing=0
for n in "${needs[@]}"; do
  file=${n%%$'\t'*} why=${n#*$'\t'}
  mapfile -t own < <(owners "$file" || true)
  if [ ${#own[@]} -eq 0 ]; then problem "no package owns $file ($why)"; missing=$((missing + 1)); continue; fi
  ok=0
  for o in "${own[@]}"; do [ -z "${allowed[$o]:-}" ] || ok=1; done
  if [ $ok -eq 0 ]; then
    problem "libwebhook-dev does not depend on ${own[*]}, which has $file ($why)"
    missing=$((missing + 1))
  fi
  checked=$((checked + 1))
done
[ $missing -gt 0 ] || echo "ok: the $checked files that consumers read belong to libwebhook-dev's dependencies"

# --- 9. the man pages in the root -----------------------------------------------------------------
where=$(MANPATH=$root/usr/share/man man -w 3 wh_emit 2>&1 || true)
[ "$where" = "$root/usr/share/man/man3/wh_emit.3.gz" ] || problem "man -w 3 wh_emit in the root: $where"

[ $fail -eq 0 ] && echo "deb_packages: ok"
exit $fail
