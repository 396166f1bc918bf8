#!/usr/bin/env bash
# Sets up everything and runs every test: build + unit + integration tests (ctest), the unit tests
# again under ASan/UBSan, and each libFuzzer target for a short time. Usage: scripts/test.sh
#   FUZZ_SECONDS=N   seconds per fuzz target (default 20)
#   SKIP_SANITIZE=1  skip the ASan/UBSan build (local iteration only; CI runs it)
#   SKIP_FUZZ=1      skip the fuzz build (local iteration only; CI runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=${JOBS:-$(nproc)}
fuzz_seconds=${FUZZ_SECONDS:-20}
logs=$root/build-logs
mkdir -p "$logs"

step() { printf '\n==== %s\n' "$*"; }

step "installing dependencies"
./scripts/install-deps.sh

step "npm clients for the end-to-end tests (dd-trace, hot-shots)"
# hot-shots' unix-datagram transport is the native `unix-dgram` module, compiled by its install
# script; nodedir points node-gyp at the headers of the installed Node instead of a download.
nodedir=/usr
[ -f /usr/include/node/node.h ] || nodedir=$(dirname "$(dirname "$(command -v node)")")
npm_config_nodedir=$nodedir npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
if [ ! -f tests/e2e/node_modules/unix-dgram/build/Release/unix_dgram.node ]; then
  echo "warning: unix-dgram did not build; the hot-shots UDS end-to-end test will fail and say so" >&2
fi

step "build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDOGWATCH_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

passed=0
failed=0
# Names and output tails of every failure, printed again at the very end: CI keeps only the tail
# of this script's output, and the full ctest logs scroll far above it.
summary=$logs/failures.txt
: >"$summary"
record_ctest_failures() {  # dir
  local dir=$1 name
  local failed_list="$dir/Testing/Temporary/LastTestsFailed.log"
  local last="$dir/Testing/Temporary/LastTest.log"
  [[ -s $failed_list ]] || return 0
  while IFS=: read -r _ name; do
    {
      echo "---- FAILED ($(basename "$dir")): $name"
      # The test's own output block in LastTest.log, its last 60 lines.
      awk -v n="$name" '
        $0 ~ "^[0-9]+/[0-9]+ Testing: " && substr($0, index($0, "Testing: ") + 9) == n { on = 1; next }
        on && $0 == "<end of output>" { exit }
        on' "$last" | tail -n 60
    } >>"$summary"
  done <"$failed_list"
}
run_ctest() {  # dir, label args...
  local dir=$1; shift
  local log="$logs/ctest-$(basename "$dir").log"
  local rc=0
  rm -f "$dir/Testing/Temporary/LastTestsFailed.log"  # a previous run's failures are not this one's
  (cd "$dir" && ctest --output-on-failure --timeout 300 "$@") 2>&1 | tee "$log" || rc=$?
  local line
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [[ -n "$line" ]]; then
    local total fail
    total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
    fail=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
    passed=$((passed + total - fail))
    failed=$((failed + fail))
  else
    failed=$((failed + 1))
    echo "---- ctest in $(basename "$dir") printed no summary (see $log)" >>"$summary"
    tail -n 40 "$log" >>"$summary"
  fi
  record_ctest_failures "$dir"
  return 0
}

step "unit and integration tests"
run_ctest build

if [[ "${SKIP_SANITIZE:-0}" != 1 ]]; then
  step "ASan/UBSan build and unit tests"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDOGWATCH_SANITIZE=ON \
    -DDOGWATCH_BUILD_BENCHMARKS=OFF >/dev/null
  cmake --build build-asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest build-asan -L unit
fi

if [[ "${SKIP_FUZZ:-0}" != 1 ]]; then
  step "libFuzzer targets (clang 14), ${fuzz_seconds}s each"
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DDOGWATCH_BUILD_FUZZERS=ON -DDOGWATCH_BUILD_TESTS=OFF -DDOGWATCH_BUILD_BENCHMARKS=OFF >/dev/null
  # The fuzz build's progress goes to a log: its hundreds of lines would push the test results out
  # of the tail CI keeps.
  cmake --build build-fuzz -j"$jobs" --target fuzzers >"$logs/fuzz-build.log" 2>&1 ||
    { tail -n 60 "$logs/fuzz-build.log"; exit 1; }
  for fuzzer in build-fuzz/fuzz/*; do
    name=$(basename "$fuzzer")
    corpus="$root/tests/fuzz/corpus/$name"
    work=$(mktemp -d)
    args=("$work")
    [[ -d "$corpus" ]] && args+=("$corpus")
    if "$fuzzer" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        "${args[@]}" >"$logs/fuzz-$name.log" 2>&1; then
      echo "fuzz $name: ok ($(grep -m1 -oE 'stat::number_of_executed_units: *[0-9]+' "$logs/fuzz-$name.log" | grep -oE '[0-9]+$') runs)"
      passed=$((passed + 1))
    else
      echo "fuzz $name: FAILED (see below)"
      tail -n 40 "$logs/fuzz-$name.log"
      { echo "---- FAILED (fuzz): $name"; tail -n 40 "$logs/fuzz-$name.log"; } >>"$summary"
      failed=$((failed + 1))
    fi
    rm -rf "$work"
  done
fi

echo
if [[ -s $summary ]]; then
  echo "==== failures (full logs in build-logs/)"
  cat "$summary"
  echo
fi
echo "tests: ${passed} passed, ${failed} failed"
[[ $failed -eq 0 ]]
