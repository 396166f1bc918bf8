#!/usr/bin/env bash
# The four systemd units, offline (no systemd needed as PID 1):
#   1. `systemd-analyze verify` of each unit against a staged install (DESTDIR=stage cmake
#      --install: the ExecStart/ExecCondition programs exist there); any output on stdout or
#      stderr is a failure, because verify exits 0 on many mistakes (unknown keys, bad values).
#      A unit with a missing binary must make verify complain (proves the check is live).
#   2. `systemd-analyze security --offline=true`: exposure <= 2.5 for the three unprivileged units
#      and <= 4.5 for system-probe; every score is printed.
#   3. The relations and privileges the issue asks for, read back from the unit files.
#   4. system-probe's ExecCondition helper: 1 when disabled, 0 when enabled (file or DD_* variable),
#      255 when the configuration is unreadable.
# Usage: units_test.sh BUILD_DIR
set -euo pipefail

source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
build=${1:?usage: units_test.sh BUILD_DIR}
build=$(cd "$build" && pwd)

command -v systemd-analyze >/dev/null || fail "systemd-analyze not found (package systemd)"
require_built "$build" "${dogwatch_agents[@]}"

stage=$(mktemp -d /var/tmp/dogwatch-units.XXXXXX)
trap 'rm -rf "$stage"' EXIT

# The package layout (Debian's unit directory), exactly as the .deb gets it.
DESTDIR=$stage DOGWATCH_SYSTEMD_UNIT_DIR=/lib/systemd/system cmake --install "$build" >/dev/null
unit_dir=$stage/lib/systemd/system
# verify --root resolves every dependency (sysinit.target, network.target, ...) inside the root:
# give it the host's own units next to ours.
mkdir -p "$stage/usr/lib/systemd"
cp -a /usr/lib/systemd/system "$stage/usr/lib/systemd/"

units=(dogwatch-agent dogwatch-trace-agent dogwatch-process-agent dogwatch-system-probe)

echo "== systemd-analyze verify"
for unit in "${units[@]}"; do
  [[ -f $unit_dir/$unit.service ]] || fail "$unit.service is not installed"
  out=$(systemd-analyze verify --root="$stage" "/lib/systemd/system/$unit.service" 2>&1) ||
    fail "verify $unit.service exited non-zero: $out"
  [[ -z $out ]] || fail "verify $unit.service printed:"$'\n'"$out"
  echo "ok   $unit.service"
done
# The check must be able to fail: without its binary the core's unit is rejected.
mv "$stage/opt/dogwatch/bin/agent" "$stage/agent.moved"
out=$(systemd-analyze verify --root="$stage" /lib/systemd/system/dogwatch-agent.service 2>&1) || true
mv "$stage/agent.moved" "$stage/opt/dogwatch/bin/agent"
grep -q "opt/dogwatch/bin/agent" <<<"$out" ||
  fail "verify did not notice a missing ExecStart binary (got: '$out'); the check above proves nothing"
echo "ok   verify rejects a unit whose binary is missing"

echo "== systemd-analyze security --offline=true"
for unit in "${units[@]}"; do
  limit=2.5
  [[ $unit == dogwatch-system-probe ]] && limit=4.5
  report=$(systemd-analyze security --offline=true --root="$stage" "/lib/systemd/system/$unit.service" 2>&1) ||
    fail "security $unit.service failed: $report"
  score=$(sed -nE 's/.*Overall exposure level for [^:]+: ([0-9]+\.[0-9]+).*/\1/p' <<<"$report")
  [[ -n $score ]] || fail "no exposure level in the report for $unit.service:"$'\n'"$report"
  printf 'exposure %-32s %s (limit %s)\n' "$unit.service" "$score" "$limit"
  awk -v s="$score" -v l="$limit" 'BEGIN { exit !(s <= l) }' ||
    { grep -F '✗' <<<"$report" >&2 || true; fail "$unit.service exposure $score > $limit"; }
done

echo "== relations and privileges"
key() {  # unit key -> every value of that key, one per line
  sed -nE "s/^$2=(.*)$/\1/p" "$unit_dir/$1.service"
}
expect() {  # unit key value
  key "$1" "$2" | grep -qxF -- "$3" || fail "$1.service: expected $2=$3, have: $(key "$1" "$2" | tr '\n' ' ')"
}
for unit in dogwatch-agent dogwatch-trace-agent dogwatch-process-agent; do
  expect "$unit" User dogwatch
  expect "$unit" CapabilityBoundingSet ""
  expect "$unit" RuntimeDirectory dogwatch
  expect "$unit" RuntimeDirectoryPreserve yes
done
expect dogwatch-agent ExecStart "/opt/dogwatch/bin/agent -c /etc/dogwatch/dogwatch.yaml run"
expect dogwatch-agent Environment "DD_SUPERVISOR_ENABLED=false"
expect dogwatch-agent WantedBy multi-user.target
for unit in dogwatch-trace-agent dogwatch-process-agent dogwatch-system-probe; do
  expect "$unit" BindsTo dogwatch-agent.service
  expect "$unit" WantedBy dogwatch-agent.service
done
expect dogwatch-trace-agent ExecStart "/opt/dogwatch/bin/trace-agent -c /etc/dogwatch/dogwatch.yaml run"
expect dogwatch-process-agent ExecStart "/opt/dogwatch/bin/process-agent -c /etc/dogwatch/dogwatch.yaml run"
expect dogwatch-system-probe ExecStart "/opt/dogwatch/bin/system-probe -c /etc/dogwatch/system-probe.yaml run"
key dogwatch-system-probe Before | grep -qw dogwatch-agent.service || fail "system-probe is not ordered before the core"
[[ -z $(key dogwatch-system-probe User) ]] || fail "system-probe must run as root (no User=)"
[[ -z $(key dogwatch-system-probe RuntimeDirectory) ]] ||
  fail "system-probe (root) must not declare RuntimeDirectory=: it would re-own the shared directory"
expect dogwatch-system-probe CapabilityBoundingSet "CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_PTRACE CAP_DAC_READ_SEARCH"
expect dogwatch-system-probe ExecCondition "/opt/dogwatch/libexec/system-probe-enabled /etc/dogwatch/system-probe.yaml"
grep -qx 'd /run/dogwatch 0770 dogwatch dogwatch -' "$stage/usr/lib/tmpfiles.d/dogwatch.conf" ||
  fail "tmpfiles.d/dogwatch.conf does not create /run/dogwatch like the units' RuntimeDirectory="
echo "ok   family relations, users, capabilities, shared runtime directory"

echo "== system-probe ExecCondition helper"
condition=$stage/opt/dogwatch/libexec/system-probe-enabled
export DOGWATCH_AGENT_BIN=$build/bin/agent
rc=0
err=$("$condition" "$stage/etc/dogwatch/system-probe.yaml" 2>&1) || rc=$?
[[ $rc == 1 ]] || fail "shipped system-probe.yaml (disabled): condition exit $rc, want 1 ($err)"
grep -q "not starting" <<<"$err" || fail "no reason printed when disabled: '$err'"
sed 's/^  enabled: false/  enabled: true/' "$stage/etc/dogwatch/system-probe.yaml" >"$stage/enabled.yaml"
rc=0
"$condition" "$stage/enabled.yaml" || rc=$?
[[ $rc == 0 ]] || fail "system-probe.yaml with enabled: true: condition exit $rc, want 0"
rc=0
DD_SYSTEM_PROBE_NETWORK_ENABLED=true "$condition" "$stage/etc/dogwatch/system-probe.yaml" || rc=$?
[[ $rc == 0 ]] || fail "DD_SYSTEM_PROBE_NETWORK_ENABLED=true: condition exit $rc, want 0"
printf 'system_probe_config: [unclosed\n' >"$stage/broken.yaml"
rc=0
"$condition" "$stage/broken.yaml" >/dev/null 2>&1 || rc=$?
[[ $rc == 255 ]] || fail "unreadable system-probe.yaml: condition exit $rc, want 255 (unit failed, not skipped)"
echo "ok   condition: disabled -> 1 (skipped), enabled by file or DD_* -> 0, broken config -> 255"

echo "PASS units_test"
