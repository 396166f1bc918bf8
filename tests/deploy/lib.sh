# shellcheck shell=bash
# Helpers shared by the tests/deploy scripts; sourced, not run:
#   source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
# A script may set test_name before sourcing: its failures then read "<test_name>: FAIL: ..."
# (compose_test) instead of plain "FAIL: ..." (units, packages, systemd container).
# Environment:
#   DOGWATCH_BUILD_LOCK  lock file `locked` takes around anything that reads or writes the build
#                        tree or builds images, so that no build runs in between (default
#                        /tmp/dogwatch-build.lock; empty: no lock). A caller that already holds it
#                        must set it empty, or the script waits 15 min for it and fails.

fail() { echo "${test_name:+$test_name: }FAIL: $*" >&2; exit 1; }

build_lock=${DOGWATCH_BUILD_LOCK-/tmp/dogwatch-build.lock}
locked() {  # command... : run it under the build lock
  if [[ -n $build_lock ]]; then
    flock -w 900 "$build_lock" "$@"
  else
    "$@"
  fi
}

# The four executables every package, unit and image is made of.
dogwatch_agents=(agent trace-agent process-agent system-probe)

require_tools() {  # tool... : each must be on PATH; packaging.txt is where the deploy tools come from
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null ||
      fail "$tool not found: install scripts/deps.d/packaging.txt (scripts/install-deps.sh)"
  done
}

require_built() {  # build_dir executable... : each must be in build_dir/bin already
  local dir=$1 bin
  shift
  for bin in "$@"; do
    [[ -x $dir/bin/$bin ]] || fail "$dir/bin/$bin is not built (cmake --build $dir --target $bin)"
  done
}

# Where tests/deploy/cpack_packages.sh puts the .deb and the .rpm: ctest runs it once per run as the
# fixture deploy_cpack, and the tests that check or install the packages read them from there.
packages_dir() { echo "$1/packages"; }  # build_dir

built_package() {  # build_dir glob : prints the one package matching glob in packages_dir
  local dir=$1 glob=$2 found=() bin
  local out
  out=$(packages_dir "$dir")
  shopt -s nullglob
  # shellcheck disable=SC2206  # the glob is meant to expand here
  found=("$out"/$glob)
  shopt -u nullglob
  ((${#found[@]} > 0)) ||
    fail "no $glob in $out: build the packages first with tests/deploy/cpack_packages.sh $dir (ctest runs it as deploy_cpack)"
  ((${#found[@]} == 1)) || fail "several $glob in $out (${found[*]}): rerun tests/deploy/cpack_packages.sh $dir"
  # Run by hand after a rebuild, this would check the previous binaries: say so (not a failure, as
  # the package itself is still what is under test).
  for bin in "${dogwatch_agents[@]}"; do
    if [[ $dir/bin/$bin -nt ${found[0]} ]]; then
      echo "warning: $dir/bin/$bin is newer than $(basename "${found[0]}"): rerun tests/deploy/cpack_packages.sh $dir to package it" >&2
    fi
  done
  echo "${found[0]}"
}
