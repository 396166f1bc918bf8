#!/usr/bin/env bash
# End-to-end test of the container image and the docker-compose stack, with real clients:
#   1. the offline Debian base (tests/support/debian-base.sh, which also starts podman's Docker
#      API), the four executables staged from the build directory (deploy/docker/stage.sh);
#   2. the image localhost/dogwatch:latest built by podman from deploy/docker/Dockerfile (prebuilt
#      path), skipped when its label io.dogwatch.content-hash matches the staged tree + Dockerfile
#      + entrypoint;
#   3. deploy/compose/docker-compose.yml + docker-compose.test-intake.yml brought up by Debian's
#      docker-compose 1.29 against podman's Docker API, under a project name unique to this run,
#      with every published port on 127.0.0.1 and chosen free by this script;
#   4. the healthchecks of agent, trace-agent, process-agent and intake run until healthy (podman
#      schedules healthchecks with systemd timers; without systemd this script is the scheduler);
#      system-probe must be running or have exited with a message in its log;
#   5. real dd-trace spans to the published 8126 and hot-shots metrics to the published 8125
#      (tests/deploy/compose_clients.js), then the payloads at the test intake decoded with
#      `agent intake list/show` and checked field by field;
#   6. `docker-compose down -v` (also on failure, from a trap).
# Usage (root): tests/deploy/compose_test.sh [BUILD_DIR]   (default: build)
#   DOGWATCH_BUILD_LOCK  lock file taken around staging and `podman build` so no build runs in
#                        between (default /tmp/dogwatch-build.lock; empty: no lock). A caller that
#                        already holds it must set it empty, or this waits 15 min and fails
#                        (tests/deploy/lib.sh).
# Needs: npm ci --prefix tests/e2e (dd-trace, hot-shots), scripts/deps.d/containers.txt installed.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC2034  # read by lib.sh's fail: failures read "compose_test: FAIL: ..."
test_name=compose_test
# shellcheck source=tests/deploy/lib.sh
source "$root/tests/deploy/lib.sh"
# shellcheck source=tests/support/podman-retry.sh
source "$root/tests/support/podman-retry.sh"
build=${1:-${DOGWATCH_BUILD_DIR:-$root/build}}
image=localhost/dogwatch:latest
export DOCKER_HOST=unix:///run/podman/podman.sock
socket=${DOCKER_HOST#unix://}
compose_files=(-f "$root/deploy/compose/docker-compose.yml" -f "$root/deploy/compose/docker-compose.test-intake.yml")
t0=$(date +%s)

step() { echo "compose_test: [$(($(date +%s) - t0))s] $*"; }
[[ $(id -u) == 0 ]] || fail "must run as root (rootful podman)"
[[ -d $build ]] || fail "build directory $build does not exist"

# ---- 1. base image, podman API, tools --------------------------------------------------------
step "debian base image and podman API"
"$root/tests/support/debian-base.sh" >/dev/null || fail "tests/support/debian-base.sh failed"
if ! command -v docker-compose >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-compose >/dev/null ||
    fail "docker-compose is missing and apt-get install docker-compose failed (scripts/deps.d/containers.txt)"
fi
node_modules=$root/tests/e2e/node_modules
for m in dd-trace hot-shots; do
  [[ -f $node_modules/$m/package.json ]] || fail "$node_modules/$m is missing: run npm ci --prefix tests/e2e"
done

work=$(mktemp -d /tmp/dogwatch-compose.XXXXXX)
project=""
cleanup() {
  local rc=$?
  if [[ -n $project ]]; then
    if ((rc != 0)); then
      echo "---- docker-compose logs ($project) ----" >&2
      timeout 60 docker-compose -p "$project" "${compose_files[@]}" logs --no-color --tail 40 >&2 2>&1 || true
    fi
    # A second try: `down` can race a container that restart: unless-stopped is restarting.
    timeout 120 docker-compose -p "$project" "${compose_files[@]}" down -v --remove-orphans >/dev/null 2>&1 ||
      timeout 120 docker-compose -p "$project" "${compose_files[@]}" down -v --remove-orphans >/dev/null 2>&1 ||
      echo "compose_test: warning: docker-compose down -v failed for project $project" >&2
    # Anything of the project still there is a leak this test must report.
    left=$(podman ps -a -q --filter "label=com.docker.compose.project=$project" | wc -l)
    ((left == 0)) || { echo "compose_test: FAIL: $left containers of $project left behind" >&2; rc=1; }
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# ---- 2. stage and image ----------------------------------------------------------------------
step "staging the executables from $build"
mkdir -p "$work/ctx/deploy/docker"
# Under the build lock: a build running meanwhile (other work on this machine) would leave
# half-linked executables in $build/bin.
locked "$root/deploy/docker/stage.sh" "$build" "$work/ctx/stage" >/dev/null ||
  fail "deploy/docker/stage.sh failed"
cp "$root/deploy/docker/entrypoint.sh" "$work/ctx/deploy/docker/entrypoint.sh"
hash=$( (cd "$work/ctx" && find stage deploy -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  sha256sum <"$root/deploy/docker/Dockerfile") | sha256sum | cut -c1-32)
current=$(podman image inspect "$image" --format '{{ index .Labels "io.dogwatch.content-hash" }}' 2>/dev/null || true)
if [[ $current == "$hash" ]]; then
  step "image $image is up to date (content hash $hash): build skipped"
else
  step "building $image (content hash $hash; was '${current:-none}')"
  old_id=$(podman image inspect "$image" --format '{{.Id}}' 2>/dev/null || true)
  locked podman build --pull=never --network=host \
    -f "$root/deploy/docker/Dockerfile" --build-arg DOGWATCH_STAGE=prebuilt \
    --build-arg DOGWATCH_CONTENT_HASH="$hash" -t "$image" "$work/ctx" >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; fail "podman build failed"; }
  # The replaced image, now untagged, would otherwise pile up with every rebuild.
  if [[ -n $old_id && $old_id != "$(podman image inspect "$image" --format '{{.Id}}')" ]]; then
    podman rmi "$old_id" >/dev/null 2>&1 || true
  fi
  # So would the `prebuilt` stage's image (the staged binaries, kept as build cache); the
  # runtime layers below the final image stay cached.
  for id in $(podman images -q --filter label=io.dogwatch.stage=prebuilt); do
    podman rmi "$id" >/dev/null 2>&1 || true
  done
fi
[[ $(podman image inspect "$image" --format '{{.Config.User}}') == 10001:10001 ]] ||
  fail "the image does not run as 10001:10001 by default"

# ---- 3. the stack ----------------------------------------------------------------------------
free_ports() {  # prints one free TCP port, one free TCP port, one free UDP port (kernel-chosen)
  python3 - <<'PY'
import socket
socks = [socket.socket(socket.AF_INET, t) for t in (socket.SOCK_STREAM, socket.SOCK_STREAM, socket.SOCK_DGRAM)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
read -r apm_port intake_port dsd_port < <(free_ports)
project="dwcompose$$$(date +%s)"
run_id="r$$$(date +%s)"
export DOGWATCH_IMAGE=$image DOGWATCH_BIND_ADDRESS=127.0.0.1 DOGWATCH_APM_PORT=$apm_port \
  DOGWATCH_DOGSTATSD_PORT=$dsd_port DOGWATCH_INTAKE_PORT=$intake_port DOGWATCH_INTAKE_API_KEY="key-$run_id"
unset DD_API_KEY DD_SITE DD_HOSTNAME
step "docker-compose up: project $project, apm 127.0.0.1:$apm_port/tcp, dogstatsd 127.0.0.1:$dsd_port/udp, intake 127.0.0.1:$intake_port"
docker-compose -p "$project" "${compose_files[@]}" config -q || fail "docker-compose config rejected the files"
# On podman's "broken pipe" start race only, the half-started project goes down and up once more,
# the first error kept in the log (tests/support/podman-retry.sh).
retry_on_broken_pipe "$work/up.log" \
  timeout 120 docker-compose -p "$project" "${compose_files[@]}" down -v --remove-orphans -- \
  timeout 180 docker-compose -p "$project" "${compose_files[@]}" up -d ||
  { cat "$work/up.log" >&2; fail "docker-compose up -d failed"; }

cid() { docker-compose -p "$project" "${compose_files[@]}" ps -q "$1"; }
api_health() {  # the health status as the Docker API reports it to compose
  curl -sf --unix-socket "$socket" "http://d/v1.41/containers/$1/json" |
    python3 -c 'import json,sys; s=json.load(sys.stdin)["State"]; print((s.get("Health") or {}).get("Status", "none"), s["Status"])'
}

# ---- 4. health -------------------------------------------------------------------------------
for service in intake agent trace-agent process-agent; do
  id=$(cid "$service")
  [[ -n $id ]] || fail "service $service has no container"
  healthy=0
  deadline=$((SECONDS + 120))  # generous: CI runs this right after the heavy end-to-end tests
  while ((SECONDS < deadline)); do
    if last_check=$(podman healthcheck run "$id" 2>&1); then healthy=1; break; fi
    [[ $(podman inspect "$id" --format '{{.State.Status}}') == running ]] ||
      fail "service $service is $(podman inspect "$id" --format '{{.State.Status}}') (exit $(podman inspect "$id" --format '{{.State.ExitCode}}'))"
    sleep 1
  done
  if ((!healthy)); then
    # Say why: the health command's own words, and what the core reports about its components.
    echo "---- the last failed health check of $service said ----" >&2
    printf '%s\n' "$last_check" >&2
    podman inspect "$id" --format '{{json .State.Health}}' 2>&1 | tail -c 3000 >&2 || true
    echo "---- health check of $service, run by hand ----" >&2
    podman exec "$id" /usr/local/bin/dogwatch-entrypoint health "$service" >&2 || true
    echo "---- agent status (from the agent container) ----" >&2
    podman exec "$(cid agent)" /opt/dogwatch/bin/agent status 2>&1 | head -n 60 >&2 || true
    fail "service $service never became healthy within 120 s"
  fi
  read -r hstate cstate < <(api_health "$id")
  [[ $hstate == healthy && $cstate == running ]] || fail "Docker API reports $service as health=$hstate state=$cstate"
  step "$service: healthy (Docker API: $hstate)"
done

# Every service but system-probe runs as the image's unprivileged user.
for service in agent trace-agent process-agent; do
  uid=$(podman exec "$(cid "$service")" id -u)
  [[ $uid == 10001 ]] || fail "$service runs as uid $uid, not 10001"
done

# system-probe: its eBPF side is not required here; it must be running, or have exited saying why.
sp=$(cid system-probe)
sp_state=$(podman inspect "$sp" --format '{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}')
sp_caps=$(podman inspect "$sp" --format '{{.EffectiveCaps}}')
sp_log=$(podman logs "$sp" 2>&1 | tail -n 2 | cut -c1-300)
if [[ $sp_state == running* ]]; then
  if podman healthcheck run "$sp" >/dev/null 2>&1; then sp_health=healthy; else sp_health=unhealthy; fi
  step "system-probe: running ($sp_health), capabilities $sp_caps"
else
  [[ -n $sp_log ]] || fail "system-probe is '$sp_state' and logged nothing"
  step "system-probe: not running ($sp_state); last log lines:"
fi
printf '  system-probe log: %s\n' "$sp_log"
# The compose file asks for exactly these (and drops the rest); the container may hold fewer when
# this host's own bounding set lacks one (CAP_SYS_RESOURCE in some sandboxes): podman then leaves
# it out, so the eBPF essentials are what is required of the running container.
sp_capadd=$(docker-compose -p "$project" "${compose_files[@]}" config | python3 -c '
import sys, yaml
svc = yaml.safe_load(sys.stdin)["services"]["system-probe"]
print(" ".join(sorted(svc.get("cap_add", []))), "/ drop:", " ".join(svc.get("cap_drop", [])))')
[[ $sp_capadd == "BPF DAC_READ_SEARCH NET_ADMIN PERFMON SYS_PTRACE SYS_RESOURCE / drop: ALL" ]] ||
  fail "system-probe's capabilities in the compose file: $sp_capadd"
for cap in CAP_BPF CAP_PERFMON CAP_NET_ADMIN; do
  [[ $sp_caps == *"$cap"* ]] || fail "system-probe does not hold $cap ($sp_caps)"
done
for service in agent trace-agent process-agent; do
  caps=$(podman inspect "$(cid "$service")" --format '{{.EffectiveCaps}}')
  [[ $caps != *CAP_BPF* && $caps != *CAP_SYS_PTRACE* ]] || fail "$service holds system-probe's capabilities: $caps"
done

# ---- 5. real clients -------------------------------------------------------------------------
step "dd-trace and hot-shots -> the stack -> test intake"
result=$(cd "$work" && NODE_PATH=$node_modules APM_PORT=$apm_port DSD_PORT=$dsd_port \
  INTAKE_URL="http://127.0.0.1:$intake_port" AGENT_CLI="$work/ctx/stage/opt/dogwatch/bin/agent" \
  RUN_ID=$run_id CONTAINER_IDS="$(cid agent) $(cid trace-agent)" WAIT_SECONDS=120 \
  timeout 180 node "$root/tests/deploy/compose_clients.js") ||
  fail "the payloads at the test intake are not what the clients sent"
echo "  verified: $result"

# The in-image CLI reads the same intake (proves the image's agent command works in place).
count=$(docker-compose -p "$project" "${compose_files[@]}" exec -T intake \
  agent intake list --limit 1000 --url http://127.0.0.1:8080 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))') ||
  fail "agent intake list inside the intake container failed"
((count > 0)) || fail "the intake container's own CLI sees no payloads"
step "in-image 'agent intake list' sees $count payloads"

# ---- 6. down ---------------------------------------------------------------------------------
step "docker-compose down -v"
timeout 120 docker-compose -p "$project" "${compose_files[@]}" down -v --remove-orphans >/dev/null 2>&1 ||
  fail "docker-compose down -v failed"
left=$(podman ps -a -q --filter "label=com.docker.compose.project=$project" | wc -l)
volumes=$(podman volume ls -q --filter "label=com.docker.compose.project=$project" | wc -l)
((left == 0 && volumes == 0)) || fail "down -v left $left containers and $volumes volumes"
project=""
step "PASS"
