#!/usr/bin/env bash
# Builds the .deb and the .rpm once per test run from the agents already built in BUILD_DIR, into
# BUILD_DIR/packages: ctest runs this as deploy_cpack, the fixture (dogwatch_packages) of
# deploy_packages (packages_test.sh checks both packages) and deploy_systemd_container
# (systemd_container_test.sh installs the .deb), so cpack runs once instead of once per test.
# The SELinux module is built first when the reference-policy devel files are here
# (selinux-policy-dev): the packages then ship it, and packages_test.sh checks they do.
# Usage: cpack_packages.sh BUILD_DIR   (DOGWATCH_BUILD_LOCK: see lib.sh)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
build=${1:?usage: cpack_packages.sh BUILD_DIR}
build=$(cd "$build" && pwd)
source_dir=$(cd "$here/../.." && pwd)

require_tools cpack dpkg-shlibdeps rpmbuild flock
require_built "$build" "${dogwatch_agents[@]}"
[[ -f $build/CPackConfig.cmake ]] || fail "no $build/CPackConfig.cmake (is cmake/Packaging.cmake included?)"

out=$(packages_dir "$build")
mkdir -p "$out"
# An earlier run's packages (perhaps of another version) must not be taken for this run's.
rm -rf "$out"/*.deb "$out"/*.deb.sha256 "$out"/*.rpm "$out"/*.rpm.sha256 "$out"/_CPack_Packages

if [[ -f /usr/share/selinux/devel/Makefile && -f $source_dir/deploy/selinux/dogwatch.te ]]; then
  locked cmake --build "$build" --target selinux-module >"$out/selinux.log" 2>&1 ||
    { cat "$out/selinux.log" >&2; fail "building the SELinux module failed"; }
  echo "SELinux module built: the packages ship it"
else
  echo "SELinux module not built (no selinux-policy-dev): the packages ship one only if a dogwatch.pp is already there"
fi

start=$SECONDS
for gen in DEB RPM; do
  locked cpack -G "$gen" --config "$build/CPackConfig.cmake" -B "$out" >"$out/cpack-$gen.log" 2>&1 ||
    { cat "$out/cpack-$gen.log" >&2; fail "cpack -G $gen failed"; }
  # cpack's staging tree (a copy of every binary) is of no use once the package is written.
  rm -rf "$out/_CPack_Packages"
done
echo "cpack DEB+RPM: $((SECONDS - start)) s"
for package in "$out"/*.deb "$out"/*.rpm; do
  [[ -f $package ]] || fail "cpack wrote no package matching $package (see $out/cpack-*.log)"
  echo "built $package ($(stat -c %s "$package") bytes)"
done
