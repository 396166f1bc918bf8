#!/usr/bin/env bash
# DogStatsD benchmark, side by side with a real peer in the same run: the real dogwatch agent
# (`agent run` on the local intake, DogStatsD on UDP and on a unix datagram socket) and the npm
# `statsd` (Etsy) server, version pinned in tests/bench/peers/package-lock.json, each loaded in turn
# by build/bench/dogstatsd_load with the same hot-shots lines.
#
# For each run: metrics received (dogwatch: the dogstatsd component's metric_samples; statsd: its
# statsd.metrics_received summed across flushes), the receiver's user+system CPU time over the run
# (/proc/<pid>/stat, all threads, including draining its socket after the sender stopped), metrics
# per CPU-second = received / CPU seconds, loss = sent − received, beside the kernel's count of
# datagrams dropped on the receiving UDP socket (/proc/net/udp "drops") and dogwatch's own
# dropped_kernel_udp. Repeated REPS times, back to back; the summary gives median [min–max].
#
# Usage: tests/bench/dogstatsd_bench.sh [SECONDS_PER_RUN=5] [REPS=3]
#   env: CONTEXTS=1000  PACED_RATE=100000 (metrics/s of the paced runs)  LOAD_THREADS=1
#        SCENARIOS="..." (subset of the names below)  PEER=0 / DOGWATCH=0 to skip one side
#        RESULTS=file.jsonl to keep every run's row  DSD_PIPELINES=1 (dogstatsd_pipeline_count)
# Needs: build/bin/agent and build/bench/dogstatsd_load built; node + npm for the peer.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
seconds=${1:-5}
reps=${2:-3}
contexts=${CONTEXTS:-1000}
paced_rate=${PACED_RATE:-100000}
load_threads=${LOAD_THREADS:-1}
run_peer=${PEER:-1}
run_dogwatch=${DOGWATCH:-1}
rcvbuf=8388608
# name:system:transport:lines-per-datagram:rate (0 = the sender's maximum rate)
all_scenarios="dw-udp-40:dogwatch:udp:40:0 statsd-udp-40:statsd:udp:40:0
dw-udp-1:dogwatch:udp:1:0 statsd-udp-1:statsd:udp:1:0
dw-udp-40-paced:dogwatch:udp:40:$paced_rate statsd-udp-40-paced:statsd:udp:40:$paced_rate
dw-uds-40:dogwatch:uds:40:0 dw-uds-1:dogwatch:uds:1:0"
scenarios=${SCENARIOS:-$(for entry in $all_scenarios; do printf '%s ' "${entry%%:*}"; done)}

load=build/bench/dogstatsd_load
[[ ( $run_dogwatch == 0 || -x build/bin/agent ) && -x $load ]] || {
  echo "build first: cmake --build build --target agent dogstatsd_load" >&2
  exit 2
}
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 1 && $seconds -le 120 ]] || { echo "SECONDS_PER_RUN: 1..120" >&2; exit 2; }
[[ $reps =~ ^[0-9]+$ && $reps -ge 1 && $reps -le 10 ]] || { echo "REPS: 1..10" >&2; exit 2; }

dir=$(mktemp -d /tmp/dogstatsd-bench.XXXXXX)
agent=""
peer=""
cleanup() {
  for pid in $agent $peer; do kill "$pid" 2>/dev/null || true; done
  for pid in $agent $peer; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

source tests/support/ports.sh
hz=$(getconf CLK_TCK)
# The kernel receive buffer a UDP port really got (ss skmem "rb"), to compare the two receivers.
udp_rcvbuf() { ss -u -a -m -n "sport = :$1" 2>/dev/null | grep -o 'rb[0-9]*' | head -1 | tr -d rb; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Datagrams the kernel dropped on the UDP socket bound to this port (receive buffer full).
udp_drops() {
  local hex
  hex=$(printf ':%04X' "$1")
  cat /proc/net/udp /proc/net/udp6 | awk -v p="$hex" '$2 ~ p"$" {d += $NF} END {print d + 0}'
}

# ---- dogwatch --------------------------------------------------------------------------------
dsd_port=$(free_udp_port)
if [[ $run_dogwatch == 1 ]]; then
cat >"$dir/dw.yaml" <<YAML
run_path: $dir/run
log_level: warn
agent_ipc: {socket: $dir/agent.sock}
health_port: 0
local_intake: {port: 0}
supervisor: {enabled: false}
dogstatsd_port: $dsd_port
dogstatsd_socket: $dir/dsd.socket
dogstatsd_so_rcvbuf: $rcvbuf
dogstatsd_pipeline_count: ${DSD_PIPELINES:-1}
YAML
mkdir -p "$dir/run"
build/bin/agent -c "$dir/dw.yaml" run 2>"$dir/agent.log" &
agent=$!

# Counters of the "dogstatsd" component from `agent status --json`, as flat JSON.
dw_counters() {
  build/bin/agent -c "$dir/dw.yaml" status --json 2>/dev/null | python3 -c '
import json, sys
def find(node):
    if isinstance(node, dict):
        if node.get("name") == "dogstatsd" and "counters" in node:
            return node["counters"]
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            found = find(child)
            if found is not None:
                return found
    return None
try:
    counters = find(json.load(sys.stdin))
except ValueError:
    sys.exit(1)  # not answering yet
if counters is None:
    sys.exit(1)
out = {k: int(v) for k, v in counters.items()}
out["received"] = out.get("metric_samples", 0)
out["parse_errors"] = sum(v for k, v in out.items() if k.startswith("parse_errors_"))
print(json.dumps(out))'
}
for _ in $(seq 1 100); do dw_counters >/dev/null && [[ -S $dir/dsd.socket ]] && break; sleep 0.2; done
dw_counters >/dev/null || {
  echo "dogwatch agent has no dogstatsd component in its status; log:" >&2
  cat "$dir/agent.log" >&2
  exit 1
}
fi

# ---- statsd (Etsy) peer ----------------------------------------------------------------------
peers=tests/bench/peers
if [[ $run_peer == 1 ]]; then
  if [[ ! -f $peers/node_modules/statsd/stats.js ]]; then
    (cd "$peers" && npm ci --omit=optional --no-audit --no-fund >/dev/null)
  fi
  peer_port=$(free_udp_port)
  peer_mgmt=$(free_tcp_port)
  sed -e "s#@PEERS@#$root/$peers#g" -e "s/@PORT@/$peer_port/" -e "s/@MGMT_PORT@/$peer_mgmt/" \
    -e "s/@RCVBUF@/$rcvbuf/" "$peers/statsd_config.js.in" >"$dir/statsd_config.js"
  node "$peers/node_modules/statsd/stats.js" "$dir/statsd_config.js" >"$dir/statsd.log" 2>&1 &
  peer=$!
  for _ in $(seq 1 100); do python3 "$peers/statsd_received.py" "$peer_mgmt" >/dev/null 2>&1 && break; sleep 0.2; done
  python3 "$peers/statsd_received.py" "$peer_mgmt" >/dev/null || { cat "$dir/statsd.log" >&2; exit 1; }
  peer_version=$(node -p "require('$root/$peers/node_modules/statsd/package.json').version")
fi

peer_counters() {
  python3 "$peers/statsd_received.py" "$peer_mgmt" | python3 -c '
import json, sys
out = json.load(sys.stdin)
out["received"] = out["metrics_received"] - out["bad_lines_seen"]
out["parse_errors"] = out["bad_lines_seen"]
print(json.dumps(out))'
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], 0))' "$1" "$2"; }

# Reads the receiver's counters until they stop moving (it has drained its socket), bounded.
settled_counters() {
  local reader=$1 last="" now
  for _ in $(seq 1 40); do
    now=$($reader)
    [[ $(field "$now" received) == "$(field "$last" received 2>/dev/null || echo x)" ]] && break
    last=$now
    sleep 0.5
  done
  echo "$now"
}

results=$dir/results.jsonl
: >"$results"
run_one() {
  local name=$1 system=$2 transport=$3 lines=$4 rate=$5 rep=$6 pid reader target port
  if [[ $system == dogwatch ]]; then
    [[ $run_dogwatch == 1 ]] || return 0
    pid=$agent reader=dw_counters port=$dsd_port
    if [[ $transport == udp ]]; then target="--udp 127.0.0.1:$dsd_port"; else target="--uds $dir/dsd.socket"; fi
  else
    [[ $run_peer == 1 ]] || return 0
    pid=$peer reader=peer_counters port=$peer_port target="--udp 127.0.0.1:$peer_port"
  fi
  local before after cpu0 cpu1 drops0 drops1 sent
  before=$(settled_counters $reader)
  drops0=$(udp_drops "$port")
  cpu0=$(cpu_ticks "$pid")
  # shellcheck disable=SC2086
  sent=$($load $target --seconds "$seconds" --rate "$rate" --lines-per-datagram "$lines" \
    --contexts "$contexts" --threads "$load_threads")
  after=$(settled_counters $reader)
  cpu1=$(cpu_ticks "$pid")
  drops1=$(udp_drops "$port")
  python3 - "$name" "$system" "$transport" "$lines" "$rate" "$rep" "$before" "$after" "$sent" \
    "$cpu0" "$cpu1" "$hz" "$drops0" "$drops1" >>"$results" <<'PY'
import json, sys
name, system, transport, lines, rate, rep = sys.argv[1:7]
before, after, sent = (json.loads(a) for a in sys.argv[7:10])
cpu0, cpu1, hz, drops0, drops1 = (int(a) for a in sys.argv[10:15])
received = after["received"] - before["received"]
cpu = (cpu1 - cpu0) / hz
row = {
    "name": name, "system": system, "transport": transport, "lines_per_datagram": int(lines),
    "rate": int(rate), "rep": int(rep),
    "sent": sent["metrics_sent"], "datagrams_sent": sent["datagrams_sent"],
    "send_rate": sent["metrics_per_second"], "sender_would_block": sent["would_block"],
    "sender_enobufs": sent["enobufs"], "received": received,
    "parse_errors": after["parse_errors"] - before["parse_errors"],
    "loss": sent["metrics_sent"] - received,
    "loss_pct": 100.0 * (sent["metrics_sent"] - received) / max(1, sent["metrics_sent"]),
    "kernel_udp_drops": drops1 - drops0 if transport == "udp" else None,
    "dropped_kernel_udp": (after.get("dropped_kernel_udp", 0) - before.get("dropped_kernel_udp", 0))
                          if system == "dogwatch" else None,
    "cpu_seconds": cpu, "per_cpu_second": received / cpu if cpu > 0 else 0.0,
}
print(json.dumps(row))
print("rep %d %-20s sent %10d at %5.2f M/s  received %10d  loss %6.2f%%  kernel drops %s (dogwatch saw %s)"
      "  parse errors %d  cpu %5.2f s  %6.3f M metrics/CPU-s"
      % (row["rep"], name, row["sent"], row["send_rate"] / 1e6, received, row["loss_pct"],
         row["kernel_udp_drops"], row["dropped_kernel_udp"], row["parse_errors"], cpu,
         row["per_cpu_second"] / 1e6), file=sys.stderr)
PY
}

echo "dogwatch: $(build/bin/agent version 2>/dev/null | head -1 || true); peer: statsd ${peer_version:-skipped};" \
  "$seconds s per run, $reps reps, $contexts contexts, $load_threads sender thread(s);" \
  "UDP receive buffer (ss rb): dogwatch $( ((run_dogwatch)) && udp_rcvbuf "$dsd_port"), " \
  "statsd $( ((run_peer)) && udp_rcvbuf "$peer_port") (asked $rcvbuf; net.core.rmem_max $(cat /proc/sys/net/core/rmem_max))" >&2
for rep in $(seq 1 "$reps"); do
  for scenario in $scenarios; do
    for entry in $all_scenarios; do
      [[ ${entry%%:*} == "$scenario" ]] || continue
      IFS=: read -r name system transport lines rate <<<"$entry"
      run_one "$name" "$system" "$transport" "$lines" "$rate" "$rep"
    done
  done
done

# ---- summary -----------------------------------------------------------------------------------
python3 - "$results" "$seconds" "$reps" "${peer_version:-}" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
seconds, reps, peer_version = sys.argv[2], sys.argv[3], sys.argv[4]
order = []
for r in rows:
    if r["name"] not in order:
        order.append(r["name"])
def spread(values, fmt):
    med = statistics.median(values)
    return f"{fmt(med)} [{fmt(min(values))}–{fmt(max(values))}]" if len(values) > 1 else fmt(med)
print(f"\n{seconds} s per run, {reps} repetitions; median [min–max]\n")
print("| run | receiver | transport | lines/datagram | send rate (M metrics/s) | received | loss | "
      "kernel UDP drops, datagrams (/proc/net/udp; dogwatch's own count) | parse errors | receiver CPU s | **M metrics per CPU-second** |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for name in order:
    g = [r for r in rows if r["name"] == name]
    first = g[0]
    receiver = "dogwatch agent" if first["system"] == "dogwatch" else f"statsd {peer_version} (node)"
    rate = "max" if first["rate"] == 0 else f"paced {first['rate'] / 1e3:.0f} k/s"
    drops = [r["kernel_udp_drops"] for r in g if r["kernel_udp_drops"] is not None]
    own = [r["dropped_kernel_udp"] for r in g if r["dropped_kernel_udp"] is not None]
    drops_text = spread(drops, lambda v: f"{v:.0f}") if drops else "n/a"
    if drops and own:
        drops_text += "; " + spread(own, lambda v: f"{v:.0f}")
    print(f"| {name} | {receiver} | {first['transport']} | {first['lines_per_datagram']} | "
          f"{spread([r['send_rate'] / 1e6 for r in g], lambda v: f'{v:.2f}')} ({rate}) | "
          f"{spread([r['received'] / 1e6 for r in g], lambda v: f'{v:.2f} M')} | "
          f"{spread([r['loss_pct'] for r in g], lambda v: f'{v:.2f}%')} | "
          f"{drops_text} | {max(r['parse_errors'] for r in g)} | "
          f"{spread([r['cpu_seconds'] for r in g], lambda v: f'{v:.2f}')} | "
          f"**{spread([r['per_cpu_second'] / 1e6 for r in g], lambda v: f'{v:.3f}')}** |")
PY
if [[ -n ${RESULTS:-} ]]; then cp "$results" "$RESULTS"; fi
