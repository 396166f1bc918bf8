#!/usr/bin/env bash
# CPU cost of one steady-state ProcessCollector::Collect() versus one
# `ps -eo pid,ppid,user,rss,vsz,pcpu,args`, over the same process table with N extra idle processes.
#
#   process-agent/procfs/bench_vs_ps.sh            # N=1000 sleepers, 5 repetitions
#   N=2000 REPS=10 process-agent/procfs/bench_vs_ps.sh
#
# The collector's figure is Google Benchmark's process CPU time per Collect() (user + system, the
# second and later calls on one collector); ps's is the children rusage (user + system) of REPS runs,
# measured with microsecond resolution, divided by REPS. Every sleeper is killed by PID on exit.
set -euo pipefail

N=${N:-1000}
REPS=${REPS:-5}
(( N >= 0 && N <= 5000 )) || { echo "N must be in [0, 5000]" >&2; exit 2; }
(( REPS >= 1 && REPS <= 50 )) || { echo "REPS must be in [1, 50]" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
bench=${BENCH_BIN:-$repo/build/bench/procfs_benchmark}
[[ -x $bench ]] || { echo "no $bench: build the procfs_benchmark target first" >&2; exit 2; }
command -v ps >/dev/null || { echo "ps not found" >&2; exit 2; }

sleepers=()
cleanup() {
  if ((${#sleepers[@]})); then
    kill "${sleepers[@]}" 2>/dev/null || true
    wait "${sleepers[@]}" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

for ((i = 0; i < N; i++)); do
  sleep 300 &
  sleepers+=($!)
done
# Wait until every sleeper has exec'd (its comm is "sleep"), at most ~10 s.
for ((t = 0; t < 100; t++)); do
  ready=0
  for pid in "${sleepers[@]}"; do
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == sleep ]] && ready=$((ready + 1))
  done
  ((ready == N)) && break
  sleep 0.1
done
total=$(ls /proc | grep -c '^[0-9]')
echo "sleepers: $N, processes in /proc: $total, reps: $REPS, load: $(cut -d' ' -f1-3 /proc/loadavg)"

# ps: children CPU time (user + system) per run.
ps_ms=$(python3 - "$REPS" <<'EOF'
import resource, subprocess, sys
reps = int(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_CHILDREN)
for _ in range(reps):
    subprocess.run(["ps", "-eo", "pid,ppid,user,rss,vsz,pcpu,args"], stdout=subprocess.DEVNULL, check=True)
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(f"{cpu / reps * 1000:.3f}")
EOF
)

# Collector: process CPU time per Collect(), median over repetitions.
json=$(mktemp)
"$bench" --benchmark_filter='BM_CollectSteadyState|BM_CollectCold' --benchmark_repetitions="$REPS" \
  --benchmark_min_time=0.3 --benchmark_report_aggregates_only=true --benchmark_format=json >"$json" 2>/dev/null

python3 - "$json" "$ps_ms" "$total" <<'EOF'
import json, sys
data = json.load(open(sys.argv[1]))
ps_ms = float(sys.argv[2])
total = int(sys.argv[3])
per_k = 1000.0 / total
print(f"{'measure':<42} {'CPU ms/run':>11} {'ms per 1000 procs':>18} {'ps / this':>10}")
print(f"{'ps -eo pid,ppid,user,rss,vsz,pcpu,args':<42} {ps_ms:>11.3f} {ps_ms * per_k:>18.3f} {1.0:>10.2f}")
labels = {
    "BM_CollectSteadyState": "Collect, steady state (default)",
    "BM_CollectSteadyStateNoPeriodicRefresh": "Collect, steady, no periodic refresh",
    "BM_CollectSteadyStateNoShortcut": "Collect, steady, no idle shortcut",
    "BM_CollectSteadyStateNoHeldFds": "Collect, steady, no shortcut, no held fds",
    "BM_CollectCold": "Collect, cold (new collector, scrubbing)",
}
for bench in data["benchmarks"]:
    if bench.get("aggregate_name") != "median":
        continue
    name = bench["run_name"].split("/")[0]
    unit = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[bench["time_unit"]]
    cpu_ms = bench["cpu_time"] * unit
    procs = bench.get("processes", total)
    print(f"{labels.get(name, name):<42} {cpu_ms:>11.3f} {cpu_ms * 1000.0 / procs:>18.3f} {ps_ms / cpu_ms:>10.2f}")
EOF
rm -f "$json"
