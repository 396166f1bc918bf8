#!/usr/bin/env bash
# Stages the dogwatch install tree that the container image copies, from a configured and built
# CMake build directory:   deploy/docker/stage.sh BUILD_DIR STAGE_DIR
# Used by the Dockerfile's `build` stage and by tests/deploy/compose_test.sh (prebuilt path).
#   1. `DESTDIR=STAGE_DIR cmake --install BUILD_DIR --strip` when the build has install rules
#      (cmake/Packaging.cmake); otherwise the four executables are copied from BUILD_DIR/bin and
#      stripped of debug info into the same layout, /opt/dogwatch/bin.
#   2. Writes STAGE_DIR/.dogwatch-runtime-packages: the Debian packages owning every shared library
#      the four executables load (ldd, then dpkg -S), so the runtime image installs exactly those
#      and nothing goes stale when a library is added. Must run on Debian bookworm (the image's
#      base) for the package names to match: the build stage does; CI machines are Debian 12.
set -euo pipefail

die() { echo "stage.sh: $*" >&2; exit 1; }
[[ $# -eq 2 ]] || die "usage: stage.sh BUILD_DIR STAGE_DIR"
build=$1
stage=$2
executables=(agent trace-agent process-agent system-probe)
bindir=opt/dogwatch/bin

[[ -f $build/CMakeCache.txt ]] || die "$build is not a configured CMake build directory"
for x in "${executables[@]}"; do
  [[ -x $build/bin/$x ]] || die "$build/bin/$x is missing: build it first (cmake --build $build --target $x)"
done

rm -rf "$stage"
mkdir -p "$stage"
DESTDIR=$(cd "$stage" && pwd) cmake --install "$build" --strip >"$stage.install.log" 2>&1 ||
  { cat "$stage.install.log" >&2; die "cmake --install failed"; }
rm -f "$stage.install.log"
installed=0
for x in "${executables[@]}"; do [[ -x $stage/$bindir/$x ]] && installed=$((installed + 1)); done
if ((installed == 0)); then
  # No install rules for the executables in this build tree yet: same layout by hand.
  echo "stage.sh: $build has no install rules for the executables; copying $build/bin" >&2
  mkdir -p "$stage/$bindir"
  for x in "${executables[@]}"; do
    install -m 0755 "$build/bin/$x" "$stage/$bindir/$x"
    strip --strip-debug "$stage/$bindir/$x"
  done
elif ((installed != ${#executables[@]})); then
  die "cmake --install staged only $installed of the ${#executables[@]} executables under /$bindir"
fi
mkdir -p "$stage/etc/dogwatch"

# Runtime packages. dpkg records paths as shipped: with Debian's merged /usr a library that ldd
# finds under /lib may be registered under /usr/lib (or the reverse), so every spelling is asked,
# all in one dpkg -S call (one call per path costs ~0.2 s each).
spellings() {
  local path=$1 real c
  real=$(readlink -f "$path")
  for c in "$path" "$real"; do
    echo "$c"
    case $c in
      /usr/lib/*) echo "${c#/usr}" ;;
      /lib/*) echo "/usr$c" ;;
    esac
  done
}
libs=()
for x in "${executables[@]}"; do
  ldd_out=$(ldd "$stage/$bindir/$x") || die "ldd $x failed"
  if grep -q 'not found' <<<"$ldd_out"; then
    grep 'not found' <<<"$ldd_out" >&2
    die "$x needs libraries this machine lacks"
  fi
  while read -r lib; do libs+=("$lib"); done < <(awk '$2 == "=>" && $3 ~ /^\// {print $3}' <<<"$ldd_out")
done
mapfile -t libs < <(printf '%s\n' "${libs[@]}" | sort -u)
mapfile -t queries < <(for lib in "${libs[@]}"; do spellings "$lib"; done | sort -u)
# "pkg[:arch][, pkg2]: /path" per owned path; unowned spellings only go to stderr.
owned=$(dpkg -S "${queries[@]}" 2>/dev/null || true)
packages=()
for lib in "${libs[@]}"; do
  pkg=""
  while read -r c; do
    pkg=$(awk -v want="$c" '{ p = $0; sub(/^[^:]*(:[^:]*)?: /, "", p); if (p == want) { sub(/[:,].*/, ""); print; exit } }' <<<"$owned")
    [[ -n $pkg ]] && break
  done < <(spellings "$lib")
  [[ -n $pkg ]] || die "no Debian package owns $lib (a library outside the distribution cannot go in the image)"
  packages+=("$pkg")
done
printf '%s\n' "${packages[@]}" | sort -u >"$stage/.dogwatch-runtime-packages"
echo "stage.sh: staged $(find "$stage" -type f | wc -l) files in $stage;" \
  "runtime packages: $(tr '\n' ' ' <"$stage/.dogwatch-runtime-packages")"
