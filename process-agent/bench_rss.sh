#!/usr/bin/env bash
# Steady-state memory of process-agent builds side by side, in one run, against one core:
#
#   process-agent/bench_rss.sh BIN [BIN...]          # e.g. an older build and build/bin/process-agent
#   SECONDS_RUN=120 CONTAINERS=5 process-agent/bench_rss.sh old/process-agent new/process-agent
#
# Starts `agent run` (no API key: payloads go to its in-process local intake; supervisor off), then
# every BIN twice against the same core: with container collection (runtime socket and cgroups) and
# without. Process collection is on, at the default 10 s interval, real time off (no live view). After
# SECONDS_RUN (default 90) it prints VmRSS, Rss/Pss/Private of /proc/<pid>/smaps_rollup, threads and
# the five mappings with the most Rss of each. CONTAINERS=N first starts N sleeping podman containers
# from IMAGE (default debian:bookworm-slim, never pulled) for the container check to report.
# RUNTIME_SOCKET overrides the runtime socket (default: docker's, else podman's). Every process and
# container it started is stopped on exit.
set -euo pipefail

(($# >= 1)) || { echo "usage: $0 PROCESS_AGENT_BIN [PROCESS_AGENT_BIN...]" >&2; exit 2; }
SECONDS_RUN=${SECONDS_RUN:-90}
((SECONDS_RUN >= 20 && SECONDS_RUN <= 1800)) || { echo "SECONDS_RUN must be in [20, 1800]" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
agent=${AGENT_BIN:-$repo/build/bin/agent}
[[ -x $agent ]] || { echo "no $agent: build the agent target first" >&2; exit 2; }
for bin in "$@"; do [[ -x $bin ]] || { echo "not executable: $bin" >&2; exit 2; }; done
socket=${RUNTIME_SOCKET:-}
if [[ -z $socket ]]; then
  for candidate in /var/run/docker.sock /run/podman/podman.sock; do
    [[ -S $candidate ]] && { socket=$candidate; break; }
  done
fi
[[ -n $socket ]] || echo "warning: no container runtime socket: 'containers on' has cgroups only" >&2

CONTAINERS=${CONTAINERS:-0}
IMAGE=${IMAGE:-docker.io/library/debian:bookworm-slim}
((CONTAINERS >= 0 && CONTAINERS <= 50)) || { echo "CONTAINERS must be in [0, 50]" >&2; exit 2; }

work=$(mktemp -d /tmp/dogwatch-pa-rss-XXXXXX)
pids=()
containers=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((${#containers[@]})); then podman rm -f -t 0 "${containers[@]}" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Containers for the container check to see (CONTAINERS=N, from IMAGE, never pulled).
for n in $(seq 1 "$CONTAINERS"); do
  name="dw-pa-rss-$$-$n"
  containers+=("$name")
  podman run -d --pull=never --name "$name" "$IMAGE" sleep 3600 >/dev/null
done

cat >"$work/dogwatch.yaml" <<EOF
run_path: $work
log_level: warn
agent_ipc:
  socket: $work/agent.sock
health_port: 0
local_intake:
  port: 0
supervisor:
  enabled: false
enable_metadata_collection: false
enable_host_checks: false
enable_payloads:
  series: false
  sketches: false
apm_config:
  enabled: false
use_dogstatsd: false
container_runtime_socket: "$socket"
process_config:
  process_collection:
    enabled: true
  container_collection:
    enabled: true
EOF

"$agent" run -c "$work/dogwatch.yaml" >"$work/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  [[ -S $work/agent.sock ]] && break
  sleep 0.1
done
[[ -S $work/agent.sock ]] || { echo "agent did not start:" >&2; cat "$work/agent.log" >&2; exit 1; }

labels=()
agent_pids=()
i=0
for bin in "$@"; do
  for collect in true false; do
    i=$((i + 1))
    DD_PROCESS_CONFIG_CONTAINER_COLLECTION_ENABLED=$collect \
      "$bin" -c "$work/dogwatch.yaml" >"$work/pa-$i.log" 2>&1 &
    pids+=($!)
    agent_pids+=($!)
    labels+=("$bin containers=$collect")
  done
done

sleep "$SECONDS_RUN"

kib() { awk -v key="$1:" '$1 == key { print $2 }' "$2"; }
printf '%-8s %8s %8s %8s %8s %7s  %s\n' PID VmRSS Rss Pss Private Threads "BINARY (KiB)"
for n in "${!agent_pids[@]}"; do
  pid=${agent_pids[$n]}
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "${labels[$n]}: exited early:" >&2
    cat "$work/pa-$((n + 1)).log" >&2
    exit 1
  fi
  rollup=/proc/$pid/smaps_rollup
  private=$(($(kib Private_Clean "$rollup") + $(kib Private_Dirty "$rollup")))
  printf '%-8s %8s %8s %8s %8s %7s  %s\n' "$pid" "$(kib VmRSS "/proc/$pid/status")" "$(kib Rss "$rollup")" \
    "$(kib Pss "$rollup")" "$private" "$(kib Threads "/proc/$pid/status")" "${labels[$n]}"
done
echo
for n in "${!agent_pids[@]}"; do
  pid=${agent_pids[$n]}
  echo "largest mappings (Rss KiB) of ${labels[$n]}:"
  # smaps: a mapping line starts with an address range; its name is field 6 (anonymous: none).
  awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6) } $1 == "Rss:" { rss[name] += $2 }
       END { for (n in rss) print rss[n], n }' "/proc/$pid/smaps" | sort -rn | awk 'NR <= 5 { print "  " $0 }'
done
echo
# What reached the core's local intake, to show the checks ran (container payloads come only from
# the containers=true instances).
"$agent" status -c "$work/dogwatch.yaml" --json | grep -o '"received:/api/v1/[a-z]*": *"[0-9]*"' | sed 's/^/intake /' || true
