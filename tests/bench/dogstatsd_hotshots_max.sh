#!/usr/bin/env bash
# Loss at the real client's maximum rate: the npm hot-shots client (buffered, maxBufferSize 8192)
# sends as fast as one Node process can, over UDP and then over the unix datagram socket, to the
# real agent; prints sent vs received, kernel drops and the agent's CPU per metric.
# Usage: tests/bench/dogstatsd_hotshots_max.sh [SECONDS]   (after scripts/test.sh or npm ci in tests/e2e)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-5}
dir=$(mktemp -d)
source tests/support/ports.sh
port=$(free_udp_port)
cat > "$dir/c.yaml" <<YAML
run_path: $dir
agent_ipc:
  socket: $dir/agent.sock
local_intake:
  port: 0
health_port: 0
dogstatsd_port: $port
dogstatsd_socket: $dir/dsd.socket
dogstatsd_so_rcvbuf: 8388608
enable_host_checks: false
YAML
build/bin/agent run -c "$dir/c.yaml" > "$dir/agent.log" 2>&1 &
agent=$!
trap 'kill $agent 2>/dev/null || true; wait $agent 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 50); do [ -S "$dir/dsd.socket" ] && break; sleep 0.1; done
counter() { build/bin/agent -c "$dir/c.yaml" status --json | python3 -c "
import json,sys; c=[c for c in json.load(sys.stdin)['components'] if c['name']=='dogstatsd'][0]['counters']
print(c.get('$1','0'))"; }
cpu() { awk '{print $14+$15}' "/proc/$agent/stat"; }
hz=$(getconf CLK_TCK)
printf '| transport | hot-shots sent | received | kernel drops | loss | agent CPU µs per metric |\n|---|---|---|---|---|---|\n'
for transport in udp uds; do
  target=$port; [ "$transport" = uds ] && target=$dir/dsd.socket
  before=$(counter metric_samples); cpu0=$(cpu)
  sent=$(node tests/bench/hotshots_max.js "$transport" "$target" "$seconds" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sent"])')
  sleep 2
  after=$(counter metric_samples); cpu1=$(cpu); drops=$(counter dropped_kernel_udp)
  received=$((after - before))
  python3 -c "
sent,recv,cpu=$sent,$received,($cpu1-$cpu0)/$hz
print(f'| $transport | {sent} | {recv} | $drops | {100*(sent-recv)/sent:.2f}% | {1e6*cpu/max(recv,1):.2f} |')"
done
