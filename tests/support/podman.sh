#!/usr/bin/env bash
# Sets up real podman containers for tests, without an image registry (see
# /work/shared/reference/containers-offline.md). Idempotent and quick on a second run (~0.1 s):
#   1. installs podman, runc, fuse-overlayfs, slirp4netns, uidmap, busybox-static, iptables and
#      catatonit with apt if any of them is missing (~15 s the first time);
#   2. adds the settings podman needs on these machines to /etc/containers/containers.conf (ulimits
#      the sandbox allows; runc + cgroupfs because crun refuses the hybrid cgroup layout; file event
#      logger because systemd is not PID 1), keeping whatever else the file holds;
#   3. builds the image localhost/dogwatch-test-busybox:1 from busybox-static if it is missing;
#   4. starts the Docker-compatible API `podman system service` on $PODMAN_SOCKET (default
#      /run/podman/podman.sock) unless something already answers there, and prints its PID.
# The API service is deliberately left running so the next test run finds it (it holds no
# containers of its own and idles at a few MB). Nothing stops it automatically: stop it with
#   kill "$(cat /run/podman/dogwatch-podman-service.pid)"
# Runs as root (CI runs as root). Prints "podman ready: socket=<path> image=<ref> service_pid=<pid>".
set -euo pipefail

socket=${PODMAN_SOCKET:-/run/podman/podman.sock}
image=localhost/dogwatch-test-busybox:1
conf=${CONTAINERS_CONF:-/etc/containers/containers.conf}  # podman reads $CONTAINERS_CONF too
pid_file=$(dirname "$socket")/dogwatch-podman-service.pid
log_file=$(dirname "$socket")/dogwatch-podman-service.log

die() { echo "podman.sh: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "must run as root (podman here runs rootful; CI runs as root)"

# Several test binaries (main and ASan builds) may call this at once: one setup at a time.
mkdir -p /run/lock
exec 9>/run/lock/dogwatch-podman-setup.lock
flock -w 300 9 || die "timed out waiting for /run/lock/dogwatch-podman-setup.lock"

# 1. Packages.
# netavark (podman's network backend on Debian 12) needs iptables: without it every `podman run` fails
# with "netavark: No such file or directory"; `--init` containers need catatonit, which podman only
# recommends.
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v iptables >/dev/null ||
  [[ ! -x /bin/busybox || ! -x /usr/libexec/podman/catatonit ]]; then
  echo "podman.sh: installing podman (apt)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  packages=(podman runc fuse-overlayfs slirp4netns uidmap busybox-static iptables catatonit)
  if ! apt-get install -y -q "${packages[@]}" >/dev/null; then
    apt-get update -q >/dev/null || die "apt-get update failed"
    apt-get install -y -q "${packages[@]}" >/dev/null || die "apt-get install podman failed"
  fi
fi

# 2. containers.conf: add each missing key to its table, never rewrite existing keys.
mkdir -p "$(dirname "$conf")"
touch "$conf"
ensure_key() {  # table key value-line
  local table=$1 key=$2 line=$3
  if grep -Eq "^[[:space:]]*${key}[[:space:]]*=" "$conf"; then
    # Set already (by us, or by someone who chose another value on purpose: kept, but said).
    if ! grep -Fxq "$line" "$conf"; then
      echo "podman.sh: warning: $conf keeps its own '$(grep -E "^[[:space:]]*${key}[[:space:]]*=" "$conf" | head -n 1)'" \
        "instead of '$line'; podman may fail on this machine" >&2
    fi
    return 0
  fi
  if grep -Eq "^[[:space:]]*\[${table}\][[:space:]]*$" "$conf"; then
    # Insert right after the table header.
    local tmp
    tmp=$(mktemp)
    awk -v header="[${table}]" -v add="$line" '
      { print; stripped = $0; gsub(/[[:space:]]/, "", stripped) }
      !done && stripped == header { print add; done = 1 }
    ' "$conf" >"$tmp"
    cat "$tmp" >"$conf"
    rm -f "$tmp"
  else
    printf '\n[%s]\n%s\n' "$table" "$line" >>"$conf"
  fi
}
ensure_key containers default_ulimits 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]'
ensure_key engine runtime 'runtime = "runc"'
ensure_key engine cgroup_manager 'cgroup_manager = "cgroupfs"'
ensure_key engine events_logger 'events_logger = "file"'

# 3. The busybox image (~2 MB rootfs, imports in well under a second).
if ! podman image exists "$image"; then
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,run,var}
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  chmod 1777 "$rootfs/tmp"
  tar -C "$rootfs" -c . | podman import --quiet \
    --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin' - "$image" >/dev/null ||
    die "podman import of $image failed"
  rm -rf "$rootfs"
  trap - EXIT
fi

# 4. The Docker-compatible API service.
alive() { curl -sf --max-time 2 --unix-socket "$socket" http://d/_ping >/dev/null 2>&1; }
# Transitional, for a service started before this script started it in / (below): such a service
# runs in the working directory of the test that started it; once that directory is deleted (it
# was a test's build directory) it still answers pings, but every conmon it spawns dies with
# "Failed to get working directory" and compose reports "write child: broken pipe": replace it.
# Services started by the current script never hit this; the check can go once none is left.
old_pid=$(cat "$pid_file" 2>/dev/null || true)
if [[ $old_pid =~ ^[0-9]+$ ]] && [[ $(readlink "/proc/$old_pid/cwd" 2>/dev/null) == *" (deleted)" ]] &&
  [[ $(tr '\0' ' ' <"/proc/$old_pid/cmdline" 2>/dev/null) == *"system service"* ]]; then
  echo "podman.sh: the API service (pid $old_pid) runs in a deleted directory: restarting it" >&2
  kill "$old_pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$old_pid" 2>/dev/null || break
    sleep 0.1
  done
  rm -f "$socket"
fi
if ! alive; then
  mkdir -p "$(dirname "$socket")"
  rm -f "$socket"
  # setsid + nohup: the service outlives this script and the test that ran it. It starts in / and
  # with no descriptor but 0-2: the test's working directory (a build directory) and its open
  # files and pipes (the ctest log, the setup lock on fd 9) must not live on in a daemon, whose
  # containers' conmon would fail in a working directory deleted later.
  (
    cd / || exit 1
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
    done
    exec setsid nohup podman system service --time=0 "unix://$socket" >"$log_file" 2>&1 </dev/null
  ) &
  echo $! >"$pid_file"
  for _ in $(seq 1 100); do
    alive && break
    sleep 0.1
  done
  alive || die "podman system service did not answer on $socket within 10 s; see $log_file"
fi
service_pid=$(cat "$pid_file" 2>/dev/null || echo unknown)
echo "podman ready: socket=$socket image=$image service_pid=$service_pid"
