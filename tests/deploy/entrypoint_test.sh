#!/usr/bin/env bash
# The image entrypoint's health checks against a real suite, outside any container, so a check that
# fails for its own reasons (not the service's) is caught without podman: the core with its
# supervised trace-agent and process-agent from BUILD/bin on private sockets and ports, then each
# role's check run many times in a row, each of which must pass; and the process-agent check must
# fail, saying why, against a core that has no process-agent.
#
# Why many times: the process-agent check once piped `agent status --json` into an awk that stopped
# at the match; `agent` then died of SIGPIPE writing the rest, and pipefail made the check fail
# with no output, depending on where the status's write boundaries fell (the compose stack's
# process-agent "never became healthy"). Repeating it shows the check does not depend on timing.
#
# Usage: tests/deploy/entrypoint_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
test_name=entrypoint_test
source "$here/lib.sh"
build=$(cd "${1:?usage: entrypoint_test.sh BUILD_DIR}" && pwd)
require_built "$build" agent trace-agent process-agent
entrypoint=$here/../../deploy/docker/entrypoint.sh
runs=${ENTRYPOINT_RUNS:-25}

dir=$(mktemp -d /tmp/dogwatch-entrypoint.XXXXXX)
agent_pid=""
cleanup() {
  if [[ -n $agent_pid ]]; then
    kill "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

source "$here/../support/ports.sh"
apm_port=$(free_tcp_port)

# start_core SUPERVISE: the core on private sockets, supervising the sub-agents or not.
start_core() {
  cat >"$dir/dogwatch.yaml" <<YAML
run_path: $dir
log_level: warn
agent_ipc: {socket: $dir/agent.sock}
health_port: 0
local_intake: {port: 0}
dogstatsd_port: 0
dogstatsd_socket: ""
apm_config: {receiver_port: $apm_port, receiver_socket: $dir/apm.socket}
process_config: {process_collection: {enabled: true}, container_collection: {enabled: false}}
supervisor: {enabled: $1, bin_dir: $build/bin}
YAML
  "$build/bin/agent" run -c "$dir/dogwatch.yaml" >"$dir/agent.log" 2>&1 &
  agent_pid=$!
}
stop_core() {
  kill "$agent_pid"
  wait "$agent_pid" 2>/dev/null || true
  agent_pid=""
}

# The environment a container of the compose stack gives the checks.
check() {  # role : runs the entrypoint's health check for role, outside the image
  DOGWATCH_BIN_DIR=$build/bin DD_AGENT_IPC_SOCKET=$dir/agent.sock DD_APM_RECEIVER_PORT=$apm_port \
    bash "$entrypoint" health "$1"
}

wait_healthy() {  # role
  local deadline=$((SECONDS + 60))
  until check "$1" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { cat "$dir/agent.log" >&2; check "$1" || true; fail "$1 never became healthy within 60 s"; }
    kill -0 "$agent_pid" 2>/dev/null || { cat "$dir/agent.log" >&2; fail "the core exited"; }
    sleep 1
  done
}

start_core true
for role in agent trace-agent process-agent; do
  wait_healthy "$role"
  size=$("$build/bin/agent" -c "$dir/dogwatch.yaml" status --json | wc -c)
  failed=0
  for ((i = 0; i < runs; i++)); do
    if ! out=$(check "$role" 2>&1); then
      failed=$((failed + 1))
      echo "$role check #$i failed: ${out:-(no output)}" >&2
    fi
  done
  ((failed == 0)) || fail "$role: $failed of $runs health checks failed against a healthy suite (status JSON $size bytes)"
  echo "ok - $role: $runs of $runs health checks passed (status JSON $size bytes)"
done
stop_core

# A core without the sub-agents: the process-agent check fails and says why.
start_core false
wait_healthy agent
if out=$(check process-agent 2>&1); then
  fail "the process-agent check passed against a core with no process-agent"
fi
[[ $out == *"core reports state 'absent'"* ]] || fail "the process-agent check failed without saying why: '$out'"
echo "ok - process-agent: without one the check fails: $out"
