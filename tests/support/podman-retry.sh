# shellcheck shell=bash
# Sourced by the shell tests that start containers (tests/deploy/compose_test.sh,
# tests/deploy/systemd_container_test.sh). Its C++ twin, for the C++ tests, is PodmanRun in
# tests/support/test_support.h: keep the two alike.
#
# podman 4.3 (Debian 12) sometimes fails a container's start with "write child: broken pipe", a
# race on conmon's sync pipe that a second start does not hit (containers/conmon#438).
#
# retry_on_broken_pipe LOG CLEANUP... -- COMMAND...
#   Runs COMMAND with its stdout and stderr in LOG. If it fails and LOG says "broken pipe" (that
#   error only), prints the first error to stderr so it stays visible in the test log, runs CLEANUP
#   (e.g. removes the half-created container; its own failure is ignored) and runs COMMAND exactly
#   once more. Returns COMMAND's last exit status; on failure LOG holds the last attempt's output,
#   for the caller to print with its own message.
retry_on_broken_pipe() {
  local log=$1 rc=0 who
  shift
  local cleanup=()
  while (($# > 0)) && [[ $1 != -- ]]; do
    cleanup+=("$1")
    shift
  done
  if (($# < 2)); then
    echo "retry_on_broken_pipe: usage: retry_on_broken_pipe LOG CLEANUP... -- COMMAND..." >&2
    return 2
  fi
  shift
  who=$(basename "$0" .sh)
  "$@" >"$log" 2>&1 || rc=$?
  ((rc != 0)) || return 0
  grep -q "broken pipe" "$log" || return "$rc"
  echo "$who: transient container start failure, retrying once:" >&2
  cat "$log" >&2
  if ((${#cleanup[@]} > 0)); then
    "${cleanup[@]}" >/dev/null 2>&1 || true
  fi
  rc=0
  "$@" >"$log" 2>&1 || rc=$?
  ((rc == 0)) || echo "$who: the second try failed too" >&2
  return "$rc"
}
