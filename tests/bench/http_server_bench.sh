#!/usr/bin/env bash
# What the trace-agent's HTTP layer costs before any trace work: trace_load's requests (the 233 KB
# realistic v0.4 body, keep-alive, 2 threads) against build/bench/http_sink, which only reads each body
# and replies, once with the project's HttpServer (libmicrohttpd, as the receiver runs it) and once
# with a bare epoll loop (the floor for HTTP over loopback TCP). The two alternate ROUNDS times (default
# 3) so that both see the same machine; prints the sink's CPU per request and per span for each.
# Usage: tests/bench/http_server_bench.sh [SECONDS]
#   build first: cmake --build build --target http_sink trace_load
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/support/ports.sh
seconds=${1:-5}
hz=$(getconf CLK_TCK)
sink=
cleanup() { [ -n "$sink" ] && kill "$sink" 2>/dev/null && wait "$sink" 2>/dev/null; true; }
trap cleanup EXIT

# measure SERVER: prints "CPU µs per request" for one run.
measure() {
  local port out ticks0 ticks1 requests spans
  port=$(free_tcp_port)
  build/bench/http_sink --server "$1" --port "$port" --seconds $((seconds + 30)) 2>/dev/null &
  sink=$!
  for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  ticks0=$(awk '{print $14 + $15}' "/proc/$sink/stat")
  out=$(build/bench/trace_load --url "http://127.0.0.1:$port" --seconds "$seconds" --threads 2 || true)
  ticks1=$(awk '{print $14 + $15}' "/proc/$sink/stat")
  kill "$sink"
  wait "$sink" 2>/dev/null || true
  sink=
  requests=$(sed -E 's/.*"requests_ok": ([0-9]+).*/\1/' <<<"$out")
  spans=$(sed -E 's/.*"spans_per_request": ([0-9]+).*/\1/' <<<"$out")
  [ "$requests" -gt 0 ] || { echo "no request succeeded against $1: $out" >&2; exit 1; }
  echo "$(echo "($ticks1 - $ticks0) * 1000000 / $hz / $requests" | bc -l) $spans"
}

printf '| round | raw epoll: µs per request (per span) | dogwatch HttpServer: µs per request (per span) | HttpServer − raw |\n|---|---|---|---|\n'
for round in $(seq 1 "${ROUNDS:-3}"); do
  read -r raw spans < <(measure raw)
  read -r ours _ < <(measure dogwatch)
  printf '| %d | %.1f (%.3f) | %.1f (%.3f) | %+.1f µs |\n' "$round" "$raw" "$(echo "$raw / $spans" | bc -l)" \
    "$ours" "$(echo "$ours / $spans" | bc -l)" "$(echo "$ours - $raw" | bc -l)"
done
