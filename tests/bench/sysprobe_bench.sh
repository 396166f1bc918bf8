#!/usr/bin/env bash
# system-probe overhead benchmark, with and without system-probe side by side in one run.
#
# 1. A/B rounds: loopback TCP throughput (iperf3, one stream, JSON output) and small-message TCP
#    ping-pong latency (build/bench/pingpong, 64-byte request/response, both threads pinned to one
#    CPU: cross-CPU wakeups on a small VM are slow and erratic) without system-probe and with it
#    running, interleaved off,on / on,off / off,on ... (ABBA) so slow drift of the shared machine
#    cancels out. Reports the median of each side, the ratio of the medians, the median of the
#    per-round ratios (each round's on and off ran back to back), and the CPU system-probe's own
#    process used during its rounds.
# 2. Per-program cost: with kernel.bpf_stats_enabled=1 (restored afterwards), run_time_ns and
#    run_cnt of the programs this system-probe owns (found through /proc/<pid>/fdinfo, so another
#    system-probe on the machine is not counted), over one iperf3 run, one ping-pong run and a
#    churn of CHURN short connections (100 bytes up, 50 down, closed, one at a time): ns/event per
#    program, the total in-kernel CPU it adds, and for the churn the program time per connection.
# 3. Memory bound: a fresh system-probe with max_tracked_connections (default 65,536), then FLOWS
#    (default 70,000) distinct unconnected-UDP flows (one socket, one datagram to each of FLOWS
#    loopback addresses 127.1.x.y on a port this script holds); reports VmRSS/PSS before and
#    after, the kernel memory of its maps (fdinfo memlock), tracked_connections and
#    kernel_conn_map_full from `system-probe connections`, and the same after the socket closes.
#
# Usage: tests/bench/sysprobe_bench.sh [ROUNDS=5] [IPERF_SECONDS=5] [PINGPONG_SECONDS=5]
#   env: FLOWS=70000  MAX_TRACKED=65536  PINGPONG_SIZE=64  PINGPONG_CPU=<last CPU> (-1: unpinned)
#        RESULTS=file.tsv (keep every row)
#        COLLECT_DNS=true|false (system_probe_config.collect_dns_stats: false leaves the per-packet
#        DNS hooks out), TCP_COUNTERS=auto|storage|map (network_config.tcp_counters),
#        IO_ACCOUNTING=auto|packets|calls (network_config.io_accounting),
#        CHURN=3000 (connections opened and closed one at a time in the per-program phase)
# Needs: root, build/bin/system-probe and build/bench/pingpong, iperf3, bpftool, python3.
# Run it under `flock /tmp/dogwatch-build.lock` on a shared machine. Defaults take ~3 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
begin=$(date +%s)
rounds=${1:-5}
iperf_seconds=${2:-5}
pingpong_seconds=${3:-5}
flows=${FLOWS:-70000}
max_tracked=${MAX_TRACKED:-65536}
pingpong_size=${PINGPONG_SIZE:-64}
pingpong_cpu=${PINGPONG_CPU:-$(($(nproc) - 1))}
collect_dns=${COLLECT_DNS:-true}
tcp_counters=${TCP_COUNTERS:-auto}
io_accounting=${IO_ACCOUNTING:-auto}
churn=${CHURN:-3000}

fail() {
  echo "sysprobe_bench: $*" >&2
  exit 2
}
[[ $(id -u) == 0 ]] || fail "needs root (loads eBPF programs, sets kernel.bpf_stats_enabled)"
[[ -x build/bin/system-probe && -x build/bench/pingpong ]] ||
  fail "build first: cmake --build build --target system-probe pingpong"
for tool in iperf3 bpftool python3 sysctl; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/deps.d/system-probe.txt)"
done
[[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 && $rounds -le 40 ]] || fail "ROUNDS: 1..40"
[[ $iperf_seconds =~ ^[0-9]+$ && $iperf_seconds -ge 1 && $iperf_seconds -le 60 ]] || fail "IPERF_SECONDS: 1..60"
[[ $pingpong_seconds =~ ^[0-9]+$ && $pingpong_seconds -ge 1 && $pingpong_seconds -le 60 ]] ||
  fail "PINGPONG_SECONDS: 1..60"
[[ $flows =~ ^[0-9]+$ && $flows -ge 1 && $flows -le 1000000 ]] || fail "FLOWS: 1..1000000"
[[ $max_tracked =~ ^[0-9]+$ && $max_tracked -ge 1024 ]] || fail "MAX_TRACKED: >= 1024"
[[ $churn =~ ^[0-9]+$ && $churn -ge 1 && $churn -le 100000 ]] || fail "CHURN: 1..100000"
[[ $pingpong_cpu =~ ^-?[0-9]+$ && $pingpong_cpu -lt $(nproc) ]] || fail "PINGPONG_CPU: -1..$(($(nproc) - 1))"

dir=$(mktemp -d /tmp/sysprobe-bench.XXXXXX)
sp=""
iperf_server=""
flood=""
stats_old=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  for pid in $flood $sp $iperf_server; do kill "$pid" 2>/dev/null || true; done
  for pid in $flood $sp $iperf_server; do wait "$pid" 2>/dev/null || true; done
  sysctl -q -w kernel.bpf_stats_enabled="$stats_old" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

results=$dir/results.tsv
printf 'phase\tround\tmode\tmetric\tvalue\n' >"$results"
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"; }
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
source tests/support/ports.sh

# ---- system-probe ---------------------------------------------------------------------------------
write_config() {
  cat >"$dir/system-probe.yaml" <<YAML
log_level: warn
log_file: $dir/system-probe.log
run_path: $dir/run
system_probe_config:
  enabled: true
  sysprobe_socket: $dir/sysprobe.sock
  max_tracked_connections: $max_tracked
  collect_dns_stats: $collect_dns
network_config:
  enabled: true
  tcp_counters: $tcp_counters
  io_accounting: $io_accounting
YAML
}
write_config
mkdir -p "$dir/run"

# The BPF objects a process holds, from its file descriptors: "prog <id>" and "map <id> <memlock>".
# Exact per process, unlike names (another system-probe may run on the same machine).
bpf_objects() {
  local pid=$1 f
  for f in /proc/"$pid"/fdinfo/*; do
    awk '/^prog_id:/ {p=$2} /^map_id:/ {m=$2} /^memlock:/ {mem=$2}
         END {if (m != "") print "map", m, mem; else if (p != "") print "prog", p}' "$f" 2>/dev/null || true
  done | sort -u
}
prog_ids() { bpf_objects "$1" | awk '$1 == "prog" {print $2}' | paste -sd, -; }

start_sysprobe() {
  rm -f "$dir/sysprobe.sock"
  env -u DD_SYSTEM_PROBE_CONFIG_MAX_TRACKED_CONNECTIONS build/bin/system-probe -c "$dir/system-probe.yaml" \
    >>"$dir/system-probe.out" 2>&1 &
  sp=$!
  local i
  for ((i = 0; i < 300; i++)); do
    kill -0 "$sp" 2>/dev/null || { cat "$dir/system-probe.out" "$dir/system-probe.log" >&2 2>/dev/null; fail "system-probe exited"; }
    if [[ -S $dir/sysprobe.sock ]] &&
      build/bin/system-probe -c "$dir/system-probe.yaml" connections >"$dir/conn.txt" 2>/dev/null; then
      [[ -n $(prog_ids "$sp") ]] || fail "system-probe serves but holds no BPF programs"
      if [[ -z ${tracer_reported:-} ]]; then
        echo "system-probe: $(head -1 "$dir/conn.txt"), io_from_packets $(counter "$dir/conn.txt" io_from_packets)," \
          "tcp_counters_in_socket_storage $(counter "$dir/conn.txt" tcp_counters_in_socket_storage)"
        tracer_reported=1
      fi
      return 0
    fi
    sleep 0.1
  done
  fail "system-probe did not serve $dir/sysprobe.sock within 30 s"
}
stop_sysprobe() {
  [[ -n $sp ]] || return 0
  kill "$sp" 2>/dev/null || true
  wait "$sp" 2>/dev/null || true
  sp=""
}
counter() { awk -v n="$2" '$1 == n {print $2; found=1} END {if (!found) print "?"}' "$1"; }

# dw_ programs attached by somebody else (e.g. a containerized system-probe): they run in both
# the off and the on rounds, so the ratio still isolates ours, but the baseline is not bare.
foreign_programs() {
  local ours=${1:-}
  bpftool prog show -j | python3 -c '
import json, sys
ours = {int(x) for x in sys.argv[1].split(",") if x}
print(sum(1 for p in json.load(sys.stdin) if p.get("name", "").startswith("dw_") and p["id"] not in ours))' "$ours"
}

# ---- workloads ------------------------------------------------------------------------------------
iperf_port=$(free_tcp_port)
iperf3 -s -B 127.0.0.1 -p "$iperf_port" >"$dir/iperf-server.log" 2>&1 &
iperf_server=$!
for ((i = 0; i < 50; i++)); do
  (exec 3<>"/dev/tcp/127.0.0.1/$iperf_port") 2>/dev/null && break
  sleep 0.1
done

run_iperf() {  # prints Gbit/s received
  local out=$dir/iperf.json i
  for ((i = 0; i < 3; i++)); do  # the server answers one test at a time; retry if it is busy
    if iperf3 -c 127.0.0.1 -p "$iperf_port" -t "$iperf_seconds" -J >"$out" 2>&1; then
      python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e9))' "$out"
      return 0
    fi
    sleep 1
  done
  cat "$out" >&2
  fail "iperf3 client failed"
}
run_pingpong() {  # prints "median_us p99_us round_trips_per_s"
  build/bench/pingpong --seconds "$pingpong_seconds" --count 10000000 --size "$pingpong_size" \
    --cpu "$pingpong_cpu" >"$dir/pp.json" ||
    fail "pingpong failed"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["median_us"], d["p99_us"], d["round_trips_per_s"])' "$dir/pp.json"
}

# ---- 1. A/B rounds --------------------------------------------------------------------------------
echo "machine: $(nproc) CPUs, kernel $(uname -r); rounds=$rounds iperf=${iperf_seconds}s" \
  "pingpong=${pingpong_seconds}s x ${pingpong_size} B on CPU $pingpong_cpu"
echo "foreign dw_ programs already attached: $(foreign_programs)"
for ((round = 1; round <= rounds; round++)); do
  if ((round % 2 == 1)); then order="off on"; else order="on off"; fi
  for mode in $order; do
    if [[ $mode == on ]]; then [[ -n $sp ]] || start_sysprobe; else stop_sysprobe; fi
    sp_ticks0=0
    [[ -n $sp ]] && sp_ticks0=$(cpu_ticks "$sp")
    gbps=$(run_iperf)
    pp=$(run_pingpong)
    read -r median p99 rtps <<<"$pp"
    record ab "$round" "$mode" gbps "$gbps"
    record ab "$round" "$mode" pp_median_us "$median"
    record ab "$round" "$mode" pp_p99_us "$p99"
    record ab "$round" "$mode" pp_rtps "$rtps"
    if [[ -n $sp ]]; then
      sp_cpu=$(awk -v a="$sp_ticks0" -v b="$(cpu_ticks "$sp")" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz}')
      record ab "$round" "$mode" sysprobe_cpu_s "$sp_cpu"
    fi
    printf 'round %d %-3s iperf3 %7.2f Gbit/s  pingpong median %7.2f us p99 %7.2f us (%s rt/s)\n' \
      "$round" "$mode" "$gbps" "$median" "$p99" "$rtps"
  done
done
stop_sysprobe

# ---- 2. Per-program cost --------------------------------------------------------------------------
start_sysprobe
ours=$(prog_ids "$sp")
echo "foreign dw_ programs attached besides ours: $(foreign_programs "$ours")"
snapshot() { bpftool prog show -j >"$dir/$1.json"; }
sysctl -q -w kernel.bpf_stats_enabled=1
snapshot s0
t0=$(date +%s.%N)
stats_gbps=$(run_iperf)
t1=$(date +%s.%N)
snapshot s1
pp=$(run_pingpong)
read -r stats_median _ _ <<<"$pp"
t2=$(date +%s.%N)
snapshot s2
# Connection churn: what each connection costs (its state changes, storage and close event), the
# figure that matters for short-lived connections. Bounded: CHURN connections, one at a time.
python3 - "$churn" <<'PY'
import socket, sys
n = int(sys.argv[1])
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
for _ in range(n):
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    client.sendall(b"q" * 100)
    server.recv(100)
    server.sendall(b"r" * 50)
    client.recv(50)
    client.close()
    server.close()
listener.close()
PY
t3=$(date +%s.%N)
snapshot s3
sysctl -q -w kernel.bpf_stats_enabled="$stats_old"
echo "with bpf_stats on: iperf3 $stats_gbps Gbit/s, pingpong median $stats_median us (stats add their own clock reads)"
python3 - "$dir" "$ours" "$t0" "$t1" "$t2" "$t3" "$results" "$churn" <<'PY'
import json, sys
d, ours = sys.argv[1], {int(x) for x in sys.argv[2].split(",")}
t0, t1, t2, t3 = map(float, sys.argv[3:7])
results, churn = sys.argv[7], int(sys.argv[8])
snaps = []
for name in ("s0", "s1", "s2", "s3"):
    progs = {p["id"]: p for p in json.load(open(f"{d}/{name}.json")) if p["id"] in ours}
    snaps.append(progs)
rows = []
for phase, a, b, secs in (("iperf3", snaps[0], snaps[1], t1 - t0), ("pingpong", snaps[1], snaps[2], t2 - t1),
                          (f"churn of {churn} connections", snaps[2], snaps[3], t3 - t2)):
    total_ns = 0
    print(f"\n{phase} ({secs:.1f} s): program, runs, runs/s, ns/run")
    for pid in sorted(ours):
        if pid not in a or pid not in b:
            continue
        runs = b[pid].get("run_cnt", 0) - a[pid].get("run_cnt", 0)
        ns = b[pid].get("run_time_ns", 0) - a[pid].get("run_time_ns", 0)
        total_ns += ns
        name = b[pid]["name"]
        per = ns / runs if runs else 0
        print(f"  {name:26s} {runs:12d} {runs / secs:12.0f} {per:8.0f}")
        with open(results, "a") as f:
            f.write(f"stats\t-\t{phase}\t{name}.runs\t{runs}\n")
            f.write(f"stats\t-\t{phase}\t{name}.ns_per_run\t{per:.0f}\n")
    print(f"  total in-kernel time {total_ns / 1e6:.1f} ms = {100 * total_ns / 1e9 / secs:.2f}% of one CPU")
    if phase.startswith("churn"):
        print(f"  per connection (both ends): {total_ns / churn / 1000:.2f} us in programs")
    with open(results, "a") as f:
        f.write(f"stats\t-\t{phase}\ttotal_cpu_percent\t{100 * total_ns / 1e9 / secs:.3f}\n")
PY
stop_sysprobe

# ---- 3. Memory bound ------------------------------------------------------------------------------
mem_kib() {  # "VmRSS PSS VmHWM" in KiB
  printf '%s %s %s\n' "$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status")" \
    "$(awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup")" "$(awk '/^VmHWM:/ {print $2}' "/proc/$1/status")"
}
map_report() {  # "<total bytes>" and one line per map on stderr-free stdout file
  local ids
  ids=$(bpf_objects "$1" | awk '$1 == "map" {print $2 ":" $3}' | paste -sd, -)
  bpftool map show -j | python3 -c '
import json, sys
held = dict(x.split(":") for x in sys.argv[1].split(",") if x)
names = {str(m["id"]): m.get("name", "?") for m in json.load(sys.stdin)}
total = 0
for mid, mem in sorted(held.items(), key=lambda kv: -int(kv[1])):
    total += int(mem)
    print(f"  map {names.get(mid, mid):16s} {int(mem) / 1048576:8.2f} MiB")
print(f"  maps total       {total / 1048576:8.2f} MiB")' "$ids"
}
start_sysprobe
sleep 1
read -r rss0 pss0 _ < <(mem_kib "$sp")
echo
echo "memory: system-probe idle: VmRSS $((rss0 / 1024)) MiB, PSS $((pss0 / 1024)) MiB; kernel maps:"
map_report "$sp" | tee "$dir/maps.txt"
flood_port_file=$dir/flood.port
python3 - "$flows" "$flood_port_file" >"$dir/flood.out" 2>&1 <<'PY' &
import socket, sys, time
flows, port_file = int(sys.argv[1]), sys.argv[2]
# The sink holds the destination port on every local address, so no other service on this machine
# receives the datagrams; it never reads them (unread datagrams are not flows of their own).
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sink.bind(("0.0.0.0", 0))
port = sink.getsockname()[1]
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = 0
for i in range(flows):  # 127.1.0.0 upwards: one flow per peer address for an unconnected socket
    address = f"127.{1 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
    try:
        sender.sendto(b"x", (address, port))
        sent += 1
    except OSError:
        pass
with open(port_file + ".tmp", "w") as f:
    f.write(f"{port} {sent}\n")
import os
os.rename(port_file + ".tmp", port_file)
time.sleep(300)  # keep the socket (and its flows) open until the benchmark kills us
PY
flood=$!
for ((i = 0; i < 600; i++)); do
  [[ -s $flood_port_file ]] && break
  sleep 0.1
done
[[ -s $flood_port_file ]] || { cat "$dir/flood.out" >&2; fail "the UDP flow generator did not finish"; }
read -r flood_port flood_sent <"$flood_port_file"
build/bin/system-probe -c "$dir/system-probe.yaml" connections >"$dir/conn.txt" || fail "connections failed"
ours_listed=$(awk -v p=":$flood_port" '$1 == "udp" && index($4, p) == length($4) - length(p) + 1' "$dir/conn.txt" | wc -l)
read -r rss1 pss1 hwm1 < <(mem_kib "$sp")
tracked=$(counter "$dir/conn.txt" tracked_connections)
full=$(counter "$dir/conn.txt" kernel_conn_map_full)
opened=$(counter "$dir/conn.txt" kernel_conns_opened)
echo "after $flood_sent UDP flows to port $flood_port: tracked_connections $tracked (of which ours $ours_listed)," \
  "kernel_conn_map_full $full, kernel_conns_opened $opened"
echo "  VmRSS $((rss1 / 1024)) MiB, PSS $((pss1 / 1024)) MiB, VmHWM $((hwm1 / 1024)) MiB"
map_report "$sp" >"$dir/maps-after.txt"
grep 'maps total' "$dir/maps-after.txt"
kill "$flood" 2>/dev/null || true
wait "$flood" 2>/dev/null || true
flood=""
# `connections` asks for a snapshot, which does not finalize; the 10-second housekeeping scan
# finalizes the released socket's flows and deletes them from the kernel map.
for ((i = 0; i < 15; i++)); do
  sleep 2
  build/bin/system-probe -c "$dir/system-probe.yaml" connections >"$dir/conn2.txt" || fail "connections failed"
  (($(counter "$dir/conn2.txt" tracked_connections) < flood_sent / 2)) && break
done
read -r rss2 pss2 hwm2 < <(mem_kib "$sp")
echo "after the socket closed: tracked_connections $(counter "$dir/conn2.txt" tracked_connections)," \
  "closed_buffer_dropped $(counter "$dir/conn2.txt" closed_buffer_dropped)," \
  "udp_released_finalized $(counter "$dir/conn2.txt" udp_released_finalized);" \
  "VmRSS $((rss2 / 1024)) MiB, PSS $((pss2 / 1024)) MiB, VmHWM $((hwm2 / 1024)) MiB"
for kv in rss0:$rss0 pss0:$pss0 rss1:$rss1 pss1:$pss1 hwm1:$hwm1 rss2:$rss2 pss2:$pss2 tracked:$tracked \
  map_full:$full flows_sent:$flood_sent ours_listed:$ours_listed; do
  record memory - - "${kv%%:*}" "${kv#*:}"
done
stop_sysprobe

# ---- summary --------------------------------------------------------------------------------------
echo
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
def med(mode, metric):
    v = [float(r[4]) for r in rows if r[0] == "ab" and r[2] == mode and r[3] == metric]
    return statistics.median(v), min(v), max(v)
def paired(metric):  # each round's on / off, which ran back to back
    by_round = {}
    for r in rows:
        if r[0] == "ab" and r[3] == metric:
            by_round.setdefault(r[1], {})[r[2]] = float(r[4])
    ratios = [v["on"] / v["off"] for v in by_round.values() if v.get("off")]
    return statistics.median(ratios), min(ratios), max(ratios)
print("summary: median [min-max] over rounds; on/off = ratio of the medians; paired = median of per-round ratios")
for metric, label, unit in (("gbps", "iperf3 throughput", "Gbit/s"), ("pp_median_us", "ping-pong median", "us"),
                            ("pp_p99_us", "ping-pong p99", "us"), ("pp_rtps", "ping-pong round trips", "/s")):
    off, on = med("off", metric), med("on", metric)
    ratio = on[0] / off[0] if off[0] else float("nan")
    p = paired(metric)
    print(f"  {label:22s} off {off[0]:9.2f} [{off[1]:.2f}-{off[2]:.2f}]  on {on[0]:9.2f} [{on[1]:.2f}-{on[2]:.2f}] {unit:6s}"
          f" on/off {ratio:.3f} ({100 * (ratio - 1):+.1f}%)  paired {p[0]:.3f} [{p[1]:.3f}-{p[2]:.3f}]")
cpu = [float(r[4]) for r in rows if r[0] == "ab" and r[3] == "sysprobe_cpu_s"]
if cpu:
    print(f"  system-probe process CPU per on-round: median {statistics.median(cpu):.2f} s")
PY
echo "total time: $(($(date +%s) - begin)) s"
[[ -n ${RESULTS:-} ]] && cp "$results" "$RESULTS"
exit 0
