#!/usr/bin/env bash
# Idle footprint of the suite: starts `agent run` (supervising trace-agent and process-agent) on
# the local intake with a private config, waits, and prints RSS/PSS per process from smaps_rollup.
# Usage: tests/footprint.sh [SECONDS_IDLE]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
idle=${1:-30}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
cat >"$dir/dw.yaml" <<YAML
run_path: $dir
agent_ipc: {socket: $dir/agent.sock}
health_port: 0
local_intake: {port: 0}
supervisor: {enabled: true}
apm_config: {enabled: true, receiver_port: 0, receiver_socket: $dir/apm.socket}
process_config: {process_collection: {enabled: true}}
dogstatsd_socket: $dir/dsd.socket
dogstatsd_port: 0
YAML
build/bin/agent run -c "$dir/dw.yaml" 2>"$dir/agent.log" &
pid=$!
sleep "$idle"
total_pss=0
printf '%-15s %8s %10s %10s\n' process pid rss_kib pss_kib
for p in $pid $(pgrep -P "$pid"); do
  name=$(cat /proc/$p/comm)
  rss=$(awk '/^Rss:/{print $2}' /proc/$p/smaps_rollup)
  pss=$(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup)
  total_pss=$((total_pss + pss))
  printf '%-15s %8s %10s %10s\n' "$name" "$p" "$rss" "$pss"
done
printf 'total PSS: %d KiB (%.1f MiB)\n' "$total_pss" "$(echo "$total_pss / 1024" | bc -l)"
