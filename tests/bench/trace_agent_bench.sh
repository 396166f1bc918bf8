#!/usr/bin/env bash
# End-to-end trace-agent benchmark: the real suite (agent + trace-agent on the local intake),
# loaded over HTTP by tests/load/trace_load from another process. Reports spans per CPU-second of
# the trace-agent process (HTTP request → decode → normalize → obfuscate → stats → sample → encode
# → gzip → handed to the core's forwarder), beside the same run's bare msgpack-tokenizing ceiling
# (msgpack-cxx with a no-op visitor on the same payload), and RSS at a paced 100k spans/s.
# Usage: tests/bench/trace_agent_bench.sh [SECONDS]
#   build first: cmake --build build --target agent trace-agent trace_load trace_decode_benchmark
#   trace_writer_benchmark. DOGWATCH_BIN_DIR=<dir holding another trace-agent> compares a build
#   side by side with the current one (the agent itself always comes from build/bin).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { kill "$agent" 2>/dev/null || true; wait "$agent" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
cat >"$dir/dw.yaml" <<YAML
run_path: $dir
log_level: warn
agent_ipc: {socket: $dir/agent.sock}
health_port: 0
local_intake: {port: 0, max_size_in_bytes: 67108864}
supervisor: {enabled: true, bin_dir: ${DOGWATCH_BIN_DIR:-$PWD/build/bin}}
apm_config: {enabled: true, receiver_port: $port, receiver_socket: ""}
dogstatsd_port: 0
YAML
build/bin/agent -c "$dir/dw.yaml" run 2>"$dir/agent.log" &
agent=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/info" >/dev/null && break; sleep 0.1; done
tpid=$(pgrep -P "$agent" -f trace-agent)
cpu() { awk '{print $14 + $15}' "/proc/$tpid/stat"; }
hz=$(getconf CLK_TCK)

before=$(cpu)
load=$(build/bench/trace_load --url "http://127.0.0.1:$port" --seconds "$seconds" --threads 2 || true)  # failures are in the JSON
after=$(cpu)
spans=$(sed -E 's/.*"spans_sent": ([0-9]+).*/\1/' <<<"$load")
cpu_s=$(echo "($after - $before) / $hz" | bc -l)
per_cpu=$(echo "$spans / $cpu_s" | bc -l)

paced=$(build/bench/trace_load --url "http://127.0.0.1:$port" --seconds "$seconds" --threads 2 --spans-per-second 100000 || true)
rss=$(awk '/VmRSS/{print $2}' "/proc/$tpid/status")
hwm=$(awk '/VmHWM/{print $2}' "/proc/$tpid/status")

ceiling=$(build/bench/trace_decode_benchmark --benchmark_filter='BM_MsgpackCxxTokenizeCeiling' --benchmark_min_time=1 \
  --benchmark_format=csv 2>/dev/null | grep -iE 'ceiling|noop|tokeniz' | head -1)
decode=$(build/bench/trace_decode_benchmark --benchmark_filter='DecodeMsgpackV04$|BM_DecodeMsgpackV04/' --benchmark_min_time=1 \
  --benchmark_format=csv 2>/dev/null | grep -i 'DecodeMsgpackV04' | head -1)
compress=$(build/bench/trace_writer_benchmark --benchmark_filter='CompressFlush|EncodeTracerPayload' \
  --benchmark_min_time=1 --benchmark_format=json 2>/dev/null | python3 -c '
import json, sys
for b in json.load(sys.stdin)["benchmarks"]:
    print("%-34s %9.0f spans/s  ratio %s" % (b["name"], b["spans_per_second"], round(b.get("ratio", 0), 1) or "-"))
' || true)
echo "load (unpaced): $load"
echo "load (paced 100k spans/s): $paced"
printf '\n| measure | value |\n|---|---|\n'
printf '| trace-agent spans per CPU-second (end to end) | %.0f |\n' "$per_cpu"
printf '| trace-agent CPU seconds for %s spans | %.2f |\n' "$spans" "$cpu_s"
printf '| RSS at 100k spans/s (VmRSS / VmHWM) | %d KiB / %d KiB |\n' "$rss" "$hwm"
echo "| decode only (csv) | $decode |"
echo "| msgpack tokenizing ceiling (csv) | $ceiling |"
echo "writer stages on one core (trace_writer_benchmark: encode one tracer payload; compress a 3.2 MB flush):"
echo "$compress"
