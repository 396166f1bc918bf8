#!/usr/bin/env bash
# The .deb under a real systemd (PID 1 in a podman container from the offline Debian 12 base):
#   install with apt (dependencies from the image, which pre-installs them; process collection
#   opted in through /etc/dogwatch/environment), then:
#   - the dogwatch user, statoverride modes, /run/dogwatch, every unit enabled;
#   - agent, trace-agent and process-agent active; `agent status` run as the dogwatch user shows
#     both sub-agents running; the trace-agent answers /info on 8126; the sockets exist;
#   - system-probe: skipped with its reason while system-probe.yaml disables it; with
#     system_probe_config.enabled it runs and serves sysprobe.sock (root:dogwatch 0660); with
#     network_config.enabled too it either loads its eBPF programs or fails with a clear message
#     (depends on what the kernel lets a container do; the test prints which);
#   - stopping the core stops the family, starting it starts the family again;
#   - reinstalling keeps an edited conffile and restarts the units;
#   - apt-get remove stops everything and keeps the configs; apt-get purge leaves nothing behind:
#     no files, no unit files or enablement links, no statoverrides, no file owned by dogwatch.
#     The dogwatch user itself stays, as Debian keeps system users (see deploy/packaging/deb/postrm).
# The image (base + systemd + the package's dependencies) is cached under a tag derived from its
# Containerfile and the .deb's Depends, so a second run only starts a container.
# The .deb is the one tests/deploy/cpack_packages.sh built into BUILD_DIR/packages (ctest runs it
# first, as the fixture deploy_cpack).
# Usage: systemd_container_test.sh BUILD_DIR   (by hand: run cpack_packages.sh BUILD_DIR first;
#        DOGWATCH_BUILD_LOCK: see lib.sh)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
source "$here/lib.sh"
# shellcheck source=tests/support/podman-retry.sh
source "$source_dir/tests/support/podman-retry.sh"
build=${1:?usage: systemd_container_test.sh BUILD_DIR}
build=$(cd "$build" && pwd)
t0=$SECONDS

step() { printf '== %s (%d s)\n' "$*" "$((SECONDS - t0))"; }
[[ $(id -u) == 0 ]] || fail "must run as root (rootful podman)"
require_built "$build" "${dogwatch_agents[@]}"
deb=$(built_package "$build" 'dogwatch_*.deb')

"$source_dir/tests/support/podman.sh" >/dev/null
"$source_dir/tests/support/debian-base.sh" >/dev/null
base=docker.io/library/debian:bookworm-slim

work=$(mktemp -d /var/tmp/dogwatch-systemd.XXXXXX)
name=dogwatch-systemd-$$
cleanup() {
  podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step "the .deb: $(basename "$deb")"
depends=$(dpkg-deb -f "$deb" Depends)
[[ -n $depends ]] || fail "the .deb has no Depends"
# apt installs Recommends too (logrotate): the image carries them as well.
recommends=$(dpkg-deb -f "$deb" Recommends)
[[ -z $recommends ]] || depends="$depends, $recommends"

step "test image"
mkdir -p "$work/ctx"
cat >"$work/ctx/Containerfile" <<'EOF'
FROM docker.io/library/debian:bookworm-slim
ARG DEPENDS
# systemd as PID 1, curl for the HTTP checks, and the package's dependencies and recommendations
# ahead of time so that installing the .deb needs no network.
RUN apt-get update -q && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      systemd systemd-sysv dbus curl procps && \
    DEBIAN_FRONTEND=noninteractive apt-get satisfy -y -q --no-install-recommends "$DEPENDS" && \
    apt-get clean
# Nothing in a container to resize, remount or log in to.
RUN systemctl mask systemd-remount-fs.service getty.target console-getty.service systemd-logind.service
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
EOF
base_id=$(podman image inspect --format '{{.Id}}' "$base")
hash=$( (cat "$work/ctx/Containerfile"; echo "$depends"; echo "$base_id") | sha256sum | cut -c1-16)
image=localhost/dogwatch-systemd-test:$hash
if podman image exists "$image"; then
  echo "cached $image"
else
  echo "building $image (systemd + $depends)"
  locked podman build --pull=never --network=host --build-arg "DEPENDS=$depends" \
    -t "$image" -f "$work/ctx/Containerfile" "$work/ctx" >"$work/build.log" 2>&1 ||
    { tail -n 30 "$work/build.log" >&2; fail "podman build of the systemd test image failed"; }
  # Earlier versions of this image (other dependencies or Containerfile) are of no further use.
  for old in $(podman images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep '^localhost/dogwatch-systemd-test:' |
    grep -vxF "$image"); do
    podman rmi -f "$old" >/dev/null 2>&1 || true
  done
fi

step "starting systemd"
# The capabilities system-probe's unit grants (a unit cannot grant what the container lacks).
# seccomp=unconfined: podman's default profile refuses bpf(2) to containers without
# CAP_SYS_ADMIN; the filter under test is the unit's own SystemCallFilter=, which systemd still
# applies. No network: everything below talks over loopback and the dependencies are in the image.
# On podman's "broken pipe" start race only, the half-created container goes and the run is tried
# once more (tests/support/podman-retry.sh).
retry_on_broken_pipe "$work/run.log" podman rm -f "$name" -- \
  podman run -d --name "$name" --pull=never --systemd=always --network=none \
  --cap-add=BPF,PERFMON,NET_ADMIN,SYS_PTRACE,DAC_READ_SEARCH --security-opt seccomp=unconfined "$image" ||
  { cat "$work/run.log" >&2; fail "podman run failed"; }
ctr() { podman exec "$name" "$@"; }
state=""
for _ in $(seq 1 60); do
  state=$(ctr systemctl is-system-running 2>/dev/null || true)
  [[ $state == running || $state == degraded ]] && break
  sleep 0.5
done
[[ $state == running || $state == degraded ]] || fail "systemd in the container did not come up (state '$state')"
if [[ $state == degraded ]]; then
  echo "systemd is degraded before the install (not dogwatch's doing):"
  ctr systemctl --failed --no-legend || true
fi

# The container has no network (--network=none): had the image missed a dependency, apt would
# fail to download it here rather than hide the gap.
step "apt-get install ./dogwatch.deb"
podman cp "$deb" "$name:/srv/dogwatch.deb"
# Process collection is opt-in (as in Datadog's agent), and this container has no container
# runtime socket for the process-agent's container checks: without the opt-in the process-agent
# would exit at once ("process-agent is disabled ..."). Opt in the way an administrator would,
# through the environment file every unit reads.
ctr sh -c 'mkdir -p /etc/dogwatch && echo DD_PROCESS_AGENT_ENABLED=true >/etc/dogwatch/environment'
ctr env DEBIAN_FRONTEND=noninteractive apt-get install -y -q /srv/dogwatch.deb >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; fail "apt-get install of the .deb failed"; }

unit_state() { ctr systemctl is-active "$1" 2>/dev/null || true; }
active='^active$'
stopped='^(inactive|failed|unknown)$'
wait_state() {  # regex unit... : each unit's is-active state matches regex within 10 s
  local want=$1 unit state
  shift
  for unit in "$@"; do
    for _ in $(seq 1 40); do
      [[ $(unit_state "$unit") =~ $want ]] && break
      sleep 0.25
    done
    state=$(unit_state "$unit")
    if ! [[ $state =~ $want ]]; then
      ctr systemctl status --no-pager -l "$unit" >&2 || true
      fail "$unit is $state, want $want"
    fi
  done
}
agents=(dogwatch-agent dogwatch-trace-agent dogwatch-process-agent)
all=("${agents[@]}" dogwatch-system-probe)

step "after install"
ctr getent passwd dogwatch | grep -q ':/var/lib/dogwatch:/usr/sbin/nologin$' ||
  fail "no dogwatch system user with nologin shell: $(ctr getent passwd dogwatch || true)"
check_stat() {  # path "mode owner:group"
  local got
  got=$(ctr stat -c '%a %U:%G' "$1") || fail "$1 is missing"
  [[ $got == "$2" ]] || fail "$1 is '$got', want '$2'"
}
check_stat /etc/dogwatch/dogwatch.yaml "640 root:dogwatch"
check_stat /etc/dogwatch/system-probe.yaml "640 root:dogwatch"
check_stat /etc/dogwatch/dogwatch.yaml.example "644 root:root"
check_stat /opt/dogwatch/bin/agent "755 root:root"
check_stat /opt/dogwatch/bin/system-probe "755 root:root"
check_stat /var/lib/dogwatch "750 dogwatch:dogwatch"
check_stat /var/log/dogwatch "750 dogwatch:dogwatch"
check_stat /run/dogwatch "770 dogwatch:dogwatch"
check_stat /lib/systemd/system/dogwatch-agent.service "644 root:root"
for unit in "${all[@]}"; do
  [[ $(ctr systemctl is-enabled "$unit" 2>/dev/null || true) == enabled ]] || fail "$unit is not enabled"
done
echo "ok   user, modes and owners, every unit enabled"

wait_state "$active" "${agents[@]}"
for sock in agent.sock apm.socket dsd.socket; do
  ctr test -S "/run/dogwatch/$sock" || fail "/run/dogwatch/$sock does not exist"
done
sub_agents_running() {  # agent-status-output
  grep -qE '^  trace-agent .*\[running\]' <<<"$1" && grep -qE '^  process-agent .*\[running\]' <<<"$1"
}
status=""
for _ in $(seq 1 60); do
  status=$(ctr runuser -u dogwatch -- /opt/dogwatch/bin/agent -c /etc/dogwatch/dogwatch.yaml status 2>&1 || true)
  sub_agents_running "$status" && break
  sleep 0.5
done
if ! sub_agents_running "$status"; then
  echo "$status" >&2
  fail "agent status (as dogwatch) does not show trace-agent and process-agent running"
fi
echo "ok   agent, trace-agent, process-agent active; agent status as dogwatch:"
sed -n '/^Components/,/^$/p' <<<"$status" | sed 's/^/       /'
info=$(ctr curl -sf --max-time 5 http://127.0.0.1:8126/info) || fail "trace-agent does not answer http://127.0.0.1:8126/info"
grep -q '"endpoints"' <<<"$info" || fail "/info is not the trace-agent's: $info"
echo "ok   trace-agent answers /info on 8126"

step "system-probe"
# Shipped config: disabled, so the unit is skipped by its ExecCondition, with the reason.
[[ $(unit_state dogwatch-system-probe) == inactive ]] ||
  fail "system-probe is $(unit_state dogwatch-system-probe) although system-probe.yaml disables it"
reason=$(ctr journalctl -u dogwatch-system-probe --no-pager -o cat)
grep -q 'not starting: system_probe_config.enabled and network_config.enabled are false' <<<"$reason" ||
  { echo "$reason" >&2; fail "system-probe's journal does not say why it did not start"; }
echo "ok   disabled: skipped by ExecCondition ('$(grep -m1 'not starting' <<<"$reason")')"

# Enabled without the network tracer: the service alone, whatever the kernel allows.
ctr sed -i '0,/^  enabled: false/s//  enabled: true/' /etc/dogwatch/system-probe.yaml
ctr systemctl restart dogwatch-agent.service
wait_state "$active" dogwatch-system-probe "${agents[@]}"
for _ in $(seq 1 40); do ctr test -S /run/dogwatch/sysprobe.sock && break; sleep 0.25; done
check_stat /run/dogwatch/sysprobe.sock "660 root:dogwatch"
check_stat /run/dogwatch "770 dogwatch:dogwatch"
echo "ok   enabled: active as root with group dogwatch, sysprobe.sock root:dogwatch 0660"

# With the eBPF network tracer as well.
ctr sed -i '/^network_config:/{n;s/  enabled: false/  enabled: true/}' /etc/dogwatch/system-probe.yaml
ctr grep -A1 '^network_config:' /etc/dogwatch/system-probe.yaml | grep -q 'enabled: true' ||
  fail "could not enable network_config in the container's system-probe.yaml"
ctr systemctl restart dogwatch-agent.service
wait_state "$active" "${agents[@]}"
sp=""
for _ in $(seq 1 40); do
  sp=$(unit_state dogwatch-system-probe)
  [[ $sp == active ]] && ctr test -S /run/dogwatch/sysprobe.sock && break
  [[ $sp == failed ]] && break
  sleep 0.25
done
journal=$(ctr journalctl -u dogwatch-system-probe --no-pager -o cat -n 30)
if [[ $sp == active ]]; then
  grep -q 'network tracer: backend' <<<"$journal" || { echo "$journal" >&2; fail "system-probe active but no tracer line"; }
  echo "ok   network tracer: ACTIVE in this container ($(grep -m1 'network tracer: backend' <<<"$journal"))"
else
  # Restart=on-failure may be between attempts: the reason must be in the journal either way.
  message=$(grep -m1 -E 'system-probe: network tracer: |network tracer: ' <<<"$journal" || true)
  [[ -n $message ]] || { echo "$journal" >&2; fail "system-probe is '$sp' without a clear message"; }
  echo "ok   network tracer: NOT AVAILABLE in this container, unit '$sp' with: $message"
fi
ctr sed -i 's/^  enabled: true/  enabled: false/' /etc/dogwatch/system-probe.yaml

step "the family follows the core"
ctr systemctl stop dogwatch-agent.service
wait_state "$stopped" "${all[@]}"
ctr systemctl start dogwatch-agent.service
wait_state "$active" "${agents[@]}"
echo "ok   stop core -> all four stopped; start core -> agent, trace-agent, process-agent active"

step "reinstall keeps an edited conffile"
ctr sh -c 'echo "# local edit kept across upgrades" >>/etc/dogwatch/dogwatch.yaml'
ctr env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall /srv/dogwatch.deb \
  >"$work/reinstall.log" 2>&1 || { cat "$work/reinstall.log" >&2; fail "reinstall failed"; }
ctr grep -q '^# local edit kept across upgrades$' /etc/dogwatch/dogwatch.yaml ||
  fail "reinstalling the package overwrote the edited /etc/dogwatch/dogwatch.yaml"
check_stat /etc/dogwatch/dogwatch.yaml "640 root:dogwatch"
wait_state "$active" "${agents[@]}"
echo "ok   edited dogwatch.yaml kept, units running again"

step "apt-get remove"
ctr env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q dogwatch >"$work/remove.log" 2>&1 ||
  { cat "$work/remove.log" >&2; fail "apt-get remove failed"; }
wait_state "$stopped" "${all[@]}"
if ctr pgrep -u dogwatch >/dev/null; then fail "dogwatch processes survive the removal: $(ctr pgrep -a -u dogwatch)"; fi
ctr test -f /etc/dogwatch/dogwatch.yaml || fail "remove deleted the configuration"
ctr grep -q '^# local edit kept across upgrades$' /etc/dogwatch/dogwatch.yaml || fail "remove changed the configuration"
ctr test ! -e /opt/dogwatch/bin/agent || fail "remove left the binaries"
echo "ok   units stopped, no dogwatch process, configs kept, binaries gone"

step "apt-get purge"
ctr env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q dogwatch >"$work/purge.log" 2>&1 ||
  { cat "$work/purge.log" >&2; fail "apt-get purge failed"; }
for path in /etc/dogwatch /opt/dogwatch /var/lib/dogwatch /var/log/dogwatch /run/dogwatch \
  /usr/lib/tmpfiles.d/dogwatch.conf /etc/logrotate.d/dogwatch; do
  ctr test ! -e "$path" || fail "purge left $path"
done
left=$(ctr sh -c 'ls -d /lib/systemd/system/dogwatch* /etc/systemd/system/dogwatch* /etc/systemd/system/*/dogwatch* /var/lib/systemd/deb-systemd-helper-enabled/*dogwatch* /var/lib/systemd/deb-systemd-helper-enabled/*/dogwatch* /var/lib/systemd/deb-systemd-helper-masked/dogwatch* 2>/dev/null' || true)
[[ -z $left ]] || fail "purge left unit files or enablement records: $left"
units_left=$(ctr systemctl list-unit-files --no-legend 'dogwatch*' || true)
[[ -z $units_left ]] || fail "systemd still knows dogwatch units: $units_left"
if ctr dpkg-statoverride --list | grep dogwatch; then fail "purge left statoverrides"; fi
owned=$(ctr find / -xdev \( -user dogwatch -o -group dogwatch \) -print 2>/dev/null | head -n 5 || true)
[[ -z $owned ]] || fail "files owned by dogwatch remain after purge: $owned"
ctr getent passwd dogwatch >/dev/null || fail "the dogwatch user was removed (expected to be kept, see postrm)"
echo "ok   nothing left: files, units, enablement records, statoverrides; the dogwatch user stays and owns nothing"

echo "PASS systemd_container_test ($((SECONDS - t0)) s)"
