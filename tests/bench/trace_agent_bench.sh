#!/usr/bin/env bash
# End-to-end trace-agent benchmark: the real suite (agent + trace-agent on the local intake),
# loaded over HTTP by tests/load/trace_load from another process. Reports spans per CPU-second of
# the trace-agent process (HTTP request → decode → normalize → obfuscate → stats → sample → encode
# → zstd → handed to the core's forwarder), beside the same run's bare msgpack-tokenizing ceiling
# (msgpack-cxx with a no-op visitor on the same payload), and RSS at a paced 100k spans/s.
# Usage: [BODIES=16] [TRANSPORT=tcp|unix] tests/bench/trace_agent_bench.sh [SECONDS]
#   build first: cmake --build build --target agent trace-agent trace_load trace_decode_benchmark
#   trace_writer_benchmark.
#   DOGWATCH_BIN_DIR=<dir holding another trace-agent, process-agent and system-probe> runs that
#   build instead of build/bin (the agent itself always comes from build/bin).
#   DOGWATCH_BASE_BIN_DIR=<dir> (same layout) compares two builds side by side: both suites run at
#   the same time, each under its own load generator, ROUNDS times (default 3), so that both see the
#   same interference from whatever else runs on the machine; prints each round's figures and ratio.
#   TRANSPORT=unix sends the requests over the receiver's unix socket (apm_config.receiver_socket), as
#   tracers do when the agent's socket exists, instead of TCP.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/support/ports.sh
seconds=${1:-10}
# Distinct request bodies trace_load sends in turn (other ids and start times); BODIES=1 repeats one
# body byte for byte, as rounds 1-6 of docs/benchmarks.md measured.
bodies=${BODIES:-16}
transport=${TRANSPORT:-tcp}
[[ $transport == tcp || $transport == unix ]] || { echo "TRANSPORT must be tcp or unix" >&2; exit 2; }
hz=$(getconf CLK_TCK)
agents=()
dirs=()
cleanup() {
  for a in "${agents[@]}"; do kill "$a" 2>/dev/null || true; done
  for a in "${agents[@]}"; do wait "$a" 2>/dev/null || true; done
  for d in "${dirs[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT

# start_suite BIN_DIR: starts agent + trace-agent; sets suite_tpid and suite_target
# (trace_load's options that reach it over the chosen transport).
start_suite() {
  local bin_dir=$1 dir port agent socket=""
  dir=$(mktemp -d)
  dirs+=("$dir")
  port=$(free_tcp_port)
  # The unix listener only when it is measured: the TCP figures stay those of a TCP-only receiver.
  [[ $transport == unix ]] && socket=$dir/apm.socket
  cat >"$dir/dw.yaml" <<YAML
run_path: $dir
log_level: warn
agent_ipc: {socket: $dir/agent.sock}
health_port: 0
local_intake: {port: 0, max_size_in_bytes: 67108864}
supervisor: {enabled: true, bin_dir: $bin_dir}
apm_config: {enabled: true, receiver_port: $port, receiver_socket: "$socket"}
dogstatsd_port: 0
dogstatsd_socket: ""
YAML
  build/bin/agent -c "$dir/dw.yaml" run 2>"$dir/agent.log" &
  agent=$!
  agents+=("$agent")
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/info" >/dev/null && break; sleep 0.1; done
  suite_tpid=$(pgrep -P "$agent" -x trace-agent) || {
    echo "trace-agent from $bin_dir did not start:" >&2
    cat "$dir/agent.log" >&2
    exit 1
  }
  suite_target=(--url "http://127.0.0.1:$port")
  [[ -n $socket ]] && suite_target+=(--unix-socket "$socket")
  return 0
}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
spans_of() { sed -E 's/.*"spans_sent": ([0-9]+).*/\1/' <<<"$1"; }

if [ -n "${DOGWATCH_BASE_BIN_DIR:-}" ]; then
  start_suite "$DOGWATCH_BASE_BIN_DIR"
  base_tpid=$suite_tpid base_target=("${suite_target[@]}")
  start_suite "${DOGWATCH_BIN_DIR:-$PWD/build/bin}"
  new_tpid=$suite_tpid new_target=("${suite_target[@]}")
  out=$(mktemp -d)
  dirs+=("$out")
  printf '| round | base spans/CPU-s | new spans/CPU-s | new/base |\n|---|---|---|---|\n'
  for round in $(seq 1 "${ROUNDS:-3}"); do
    b0=$(cpu "$base_tpid") n0=$(cpu "$new_tpid")
    build/bench/trace_load "${base_target[@]}" --seconds "$seconds" --threads 2 --bodies "$bodies" >"$out/base" || true &
    lb=$!
    build/bench/trace_load "${new_target[@]}" --seconds "$seconds" --threads 2 --bodies "$bodies" >"$out/new" || true &
    ln=$!
    wait "$lb" "$ln" || true
    b1=$(cpu "$base_tpid") n1=$(cpu "$new_tpid")
    base=$(echo "$(spans_of "$(cat "$out/base")") * $hz / ($b1 - $b0)" | bc -l)
    new=$(echo "$(spans_of "$(cat "$out/new")") * $hz / ($n1 - $n0)" | bc -l)
    printf '| %d | %.0f | %.0f | %.2f |\n' "$round" "$base" "$new" "$(echo "$new / $base" | bc -l)"
  done
  # Memory: both at a paced 100k spans/s at the same time.
  build/bench/trace_load "${base_target[@]}" --seconds "$seconds" --threads 2 --bodies "$bodies" \
    --spans-per-second 100000 >/dev/null || true &
  lb=$!
  build/bench/trace_load "${new_target[@]}" --seconds "$seconds" --threads 2 --bodies "$bodies" \
    --spans-per-second 100000 >/dev/null || true &
  ln=$!
  wait "$lb" "$ln" || true
  for which in base new; do
    tpid=${which}_tpid
    printf '| %s: RSS at 100k spans/s (VmRSS / VmHWM) | %d KiB / %d KiB |\n' "$which" \
      "$(awk '/VmRSS/{print $2}' "/proc/${!tpid}/status")" "$(awk '/VmHWM/{print $2}' "/proc/${!tpid}/status")"
  done
  exit 0
fi

start_suite "${DOGWATCH_BIN_DIR:-$PWD/build/bin}"
tpid=$suite_tpid
core_pid=${agents[-1]}
before=$(cpu "$tpid")
core_before=$(cpu "$core_pid")
load=$(build/bench/trace_load "${suite_target[@]}" --seconds "$seconds" --threads 2 --bodies "$bodies" || true)  # failures are in the JSON
after=$(cpu "$tpid")
core_after=$(cpu "$core_pid")
spans=$(spans_of "$load")
cpu_s=$(echo "($after - $before) / $hz" | bc -l)
per_cpu=$(echo "$spans / $cpu_s" | bc -l)

paced=$(build/bench/trace_load "${suite_target[@]}" --seconds "$seconds" --threads 2 --bodies "$bodies" --spans-per-second 100000 || true)
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
printf '| trace-agent spans per CPU-second (end to end, %s) | %.0f |\n' "$transport" "$per_cpu"
printf '| trace-agent CPU seconds for %s spans | %.2f |\n' "$spans" "$cpu_s"
# The core shares the machine: it forwards every flush to the local intake, which checks each one.
printf '| agent (core) CPU seconds over the same run | %.2f |\n' "$(echo "($core_after - $core_before) / $hz" | bc -l)"
printf '| RSS at 100k spans/s (VmRSS / VmHWM) | %d KiB / %d KiB |\n' "$rss" "$hwm"
echo "| decode only (csv) | $decode |"
echo "| msgpack tokenizing ceiling (csv) | $ceiling |"
echo "writer stages on one core (trace_writer_benchmark: encode one tracer payload; compress a 3.2 MB flush):"
echo "$compress"
