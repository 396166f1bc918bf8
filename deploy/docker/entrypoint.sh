#!/bin/bash
# Entrypoint of the dogwatch image. The first argument picks what the container runs:
#   supervisor [ARGS]          the core agent in supervisor mode: `agent run` starts and watches the
#                              enabled sub-agents itself (one container for everything). Default.
#   agent [COMMAND ARGS]       the core agent alone (`agent run` when no command is given), or any
#                              agent command: status, health, config, intake serve, ...
#   trace-agent [ARGS]         one sub-agent per container (docker-compose / Kubernetes layout);
#   process-agent [ARGS]       they fetch their configuration from the core over
#   system-probe [ARGS]        agent_ipc.socket (system-probe reads system-probe.yaml itself).
#   health ROLE                container healthcheck for ROLE (supervisor, agent, trace-agent,
#                              process-agent, system-probe, intake): exit 0 when healthy.
#   anything else              executed as given (e.g. bash).
# The executables are exec'd, so they receive the container's signals directly (pair with
# `init: true` / --init so a PID 1 reaps children).
set -euo pipefail

# DOGWATCH_BIN_DIR: only for running this script outside the image (tests/deploy/entrypoint_test.sh).
bin=${DOGWATCH_BIN_DIR:-/opt/dogwatch/bin}
run_dir=${DOGWATCH_RUN_DIR:-/var/run/dogwatch}

# GET http://127.0.0.1:PORT/PATH with bash's /dev/tcp (the image carries no HTTP client) and
# succeed on a 200 status line.
http_ok() {
  local port=$1 path=$2 status
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
  IFS= read -r -t 5 status <&3 || status=""
  exec 3<&- 3>&-
  [[ $status =~ ^HTTP/1\.[01]\ 200 ]]
}

health() {
  local role=${1:-}
  case $role in
    supervisor | agent)
      exec "$bin/agent" health
      ;;
    trace-agent)
      # /info answers only once the receiver serves traces.
      http_ok "${DD_APM_RECEIVER_PORT:-${DD_APM_CONFIG_RECEIVER_PORT:-8126}}" /info ||
        { echo "trace-agent: /info did not answer 200" >&2; exit 1; }
      ;;
    process-agent)
      # Healthy when the core lists a process-agent component in state running: the sub-agent
      # reached the core over IPC and reports to it. `status --json` prints one key per line;
      # the component's "state" follows its "name". The status is read whole before it is
      # searched: piped into an awk that stops at the match, `agent` was killed by SIGPIPE as soon
      # as the status outgrew the pipe, and pipefail turned that into a silent failed check.
      local status state
      status=$("$bin/agent" status --json) || { echo "process-agent: agent status failed" >&2; exit 1; }
      state=$(awk '
        /"name": "process-agent"/ { found = 1 }
        found && /"state":/ { gsub(/[",]/, "", $2); print $2; exit }' <<<"$status")
      [[ $state == running ]] || { echo "process-agent: core reports state '${state:-absent}'" >&2; exit 1; }
      ;;
    system-probe)
      local sock=${DD_SYSTEM_PROBE_CONFIG_SYSPROBE_SOCKET:-${DD_SYSPROBE_SOCKET:-$run_dir/sysprobe.sock}}
      [[ -S $sock ]] || { echo "system-probe: no socket at $sock" >&2; exit 1; }
      ;;
    intake)
      exec "$bin/agent" intake list --limit 1 --url "http://127.0.0.1:${DOGWATCH_INTAKE_PORT:-5556}" >/dev/null
      ;;
    *)
      echo "dogwatch-entrypoint: health needs a role: supervisor, agent, trace-agent, process-agent," \
        "system-probe or intake" >&2
      exit 2
      ;;
  esac
}

role=${1:-supervisor}
[[ $# -gt 0 ]] && shift

# The run directory must stay group-writable for system-probe (root, group dogwatch, without
# CAP_DAC_OVERRIDE) to create sysprobe.sock next to the core's sockets. The image has it 0775, but
# podman hands a new named volume mounted there the directory's owner and not its mode; whoever
# owns it (the dogwatch user) puts the mode back. A read-only mount simply stays as it is.
if [[ $role != health && -d $run_dir && -O $run_dir ]]; then
  chmod g+rwx "$run_dir" 2>/dev/null || true
fi
case $role in
  supervisor)
    export DD_SUPERVISOR_ENABLED=true
    exec "$bin/agent" run "$@"
    ;;
  agent)
    [[ $# -eq 0 ]] && set -- run
    exec "$bin/agent" "$@"
    ;;
  trace-agent | process-agent | system-probe)
    exec "$bin/$role" "$@"
    ;;
  health)
    health "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
