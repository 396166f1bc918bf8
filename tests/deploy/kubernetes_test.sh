#!/usr/bin/env bash
# Renders deploy/kubernetes/base and overlays/datadog with `kubectl kustomize` (offline), validates
# every object and both examples with kubernetes_test.mjs (Kubernetes schema + least-privilege
# contract), then runs the real system-probe under strace and checks that every syscall it makes
# while starting, serving a connection and stopping is allowed by seccomp/system-probe.json.
# Usage: tests/deploy/kubernetes_test.sh [PATH_TO_SYSTEM_PROBE]   (default build/bin/system-probe)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/deploy
probe=${1:-$root/build/bin/system-probe}

fail() { echo "kubernetes_test: FAIL: $*" >&2; exit 1; }
install_pkg() {  # package...
  [[ $(id -u) -eq 0 ]] || fail "missing $* (run scripts/install-deps.sh as root)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# kubectl with kustomize. Debian's kubernetes-client (1.20, kustomize v2.0.3) is what CI gets; it
# is installed here rather than from scripts/deps.d because some machines carry another kubectl
# package owning /usr/bin/kubectl, and dpkg would refuse to overwrite it.
if ! command -v kubectl >/dev/null 2>&1; then install_pkg kubernetes-client; fi
kubectl kustomize --help >/dev/null 2>&1 || fail "this kubectl has no 'kustomize' subcommand"
command -v node >/dev/null 2>&1 || fail "node not found (scripts/install-deps.sh installs it)"
command -v strace >/dev/null 2>&1 || install_pkg strace
command -v python3 >/dev/null 2>&1 || fail "python3 not found"
[[ -x $probe ]] || fail "system-probe binary not found at $probe (build the system-probe target)"

# npm dependencies of the validator (kubernetes-models, js-yaml), from the lock file.
if [[ ! -f $here/k8s-validate/node_modules/kubernetes-models/package.json ||
  ! -f $here/k8s-validate/node_modules/js-yaml/package.json ]]; then
  npm ci --prefix "$here/k8s-validate" --no-audit --no-fund --loglevel=error >/dev/null ||
    fail "npm ci in tests/deploy/k8s-validate failed"
fi

work=$(mktemp -d)
probe_pid=""
cleanup() {
  # system-probe first: killing only strace would detach it and leave it running.
  if [[ -n $probe_pid ]]; then
    local c
    for c in $(pgrep -P "$probe_pid" || true); do kill "$c" 2>/dev/null || true; done
    kill "$probe_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# 1. Render. Only kustomize's deprecation notices (newer kubectl on `bases`/`commonLabels`, kept for
# kustomize v2 compatibility) may appear on stderr.
render() {  # dir, output
  kubectl kustomize "$root/deploy/kubernetes/$1" >"$2" 2>"$work/render.err" ||
    { cat "$work/render.err" >&2; fail "kubectl kustomize deploy/kubernetes/$1 failed"; }
  if grep -v -E "^# Warning: '(bases|commonLabels)' is deprecated" "$work/render.err" | grep -q .; then
    cat "$work/render.err" >&2
    fail "kubectl kustomize deploy/kubernetes/$1 printed warnings"
  fi
  [[ -s $2 ]] || fail "deploy/kubernetes/$1 rendered nothing"
  echo "ok - kubectl kustomize deploy/kubernetes/$1 ($(grep -c '^kind:' "$2") objects, $(kubectl version --client 2>/dev/null | head -n 1 | tr -d '\n'))"
}
render base "$work/base.yaml"
render overlays/datadog "$work/overlay.yaml"

# 2. Schema and least-privilege checks.
node "$here/kubernetes_test.mjs" "$work/base.yaml" "$work/overlay.yaml"

# 3. The seccomp profile against the real binary. system-probe runs with the same configuration
# shape as in the pod (its own socket, socket group), one client connects (accept, peer
# credentials) and SIGTERM stops it; strace records every syscall of every thread.
cat >"$work/system-probe.yaml" <<EOF
system_probe_config:
  enabled: true
  sysprobe_socket: $work/sysprobe.sock
agent_ipc:
  socket_group: "$(id -g)"
EOF
strace -f -qq -o "$work/trace" "$probe" -c "$work/system-probe.yaml" run >"$work/probe.log" 2>&1 &
probe_pid=$!
for _ in $(seq 1 100); do
  [[ -S $work/sysprobe.sock ]] && break
  kill -0 "$probe_pid" 2>/dev/null || { cat "$work/probe.log" >&2; fail "system-probe exited early"; }
  sleep 0.1
done
[[ -S $work/sysprobe.sock ]] || { cat "$work/probe.log" >&2; fail "system-probe did not create its socket in 10 s"; }
python3 - "$work/sysprobe.sock" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
# An HTTP/2 client preface: gRPC's server reads it, so the serving path runs too.
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
try:
    s.recv(64)
except socket.timeout:
    pass
s.close()
EOF
# SIGTERM to system-probe itself (strace's child), as the kubelet would send it.
child=$(pgrep -P "$probe_pid" | head -n 1 || true)
[[ -n $child ]] || fail "cannot find the traced system-probe process"
kill -TERM "$child"
for _ in $(seq 1 100); do kill -0 "$probe_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$probe_pid" 2>/dev/null && fail "system-probe did not stop within 10 s of SIGTERM"
wait "$probe_pid" || true
probe_pid=""
# Syscall names: "PID name(args..." and resumed lines "PID <... name resumed>".
sed -nE 's/^[0-9]+ +([a-z_0-9]+)\(.*/\1/p; s/^[0-9]+ +<\.\.\. ([a-z_0-9]+) resumed>.*/\1/p' "$work/trace" |
  sort -u >"$work/used"
[[ $(wc -l <"$work/used") -gt 20 ]] || fail "strace recorded only $(wc -l <"$work/used") syscalls"
python3 - "$root/deploy/kubernetes/seccomp/system-probe.json" "$work/used" <<'EOF'
import json, sys
profile = json.load(open(sys.argv[1]))
allowed = {n for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for n in rule["names"]}
used = [l.strip() for l in open(sys.argv[2]) if l.strip()]
missing = [n for n in used if n not in allowed]
if missing:
    sys.exit(f"kubernetes_test: FAIL: system-probe made syscalls the seccomp profile denies: {' '.join(missing)}")
print(f"ok - the {len(used)} distinct syscalls system-probe made ({' '.join(used)}) are all in seccomp/system-probe.json")
EOF
echo "kubernetes_test: passed"
