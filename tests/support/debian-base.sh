#!/usr/bin/env bash
# Builds the Debian bookworm base image that dogwatch's Dockerfile and the systemd test image start
# from, without any image registry: debootstrap (minbase) into a cache directory, then `podman
# import`, tagged with the names a Dockerfile's `FROM debian:bookworm-slim` resolves to. See
# /work/shared/reference/containers-offline.md.
# Idempotent: when the image exists it only prints its name (~0.1 s); the first run takes ~60-90 s.
#   DEBIAN_MIRROR   mirror for debootstrap (default http://deb.debian.org/debian)
#   DOGWATCH_CACHE  where the rootfs is kept (default /var/cache/dogwatch)
# Runs as root. Prints "debian base ready: <image>".
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${DOGWATCH_CACHE:-/var/cache/dogwatch}
image=docker.io/library/debian:bookworm-slim
alias_image=localhost/debian:bookworm-slim

die() { echo "debian-base.sh: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "must run as root"

# podman itself, its settings for this machine and the API service.
"$here/podman.sh" >/dev/null

mkdir -p /run/lock "$cache"
exec 8>/run/lock/dogwatch-debian-base.lock
flock -w 600 8 || die "timed out waiting for /run/lock/dogwatch-debian-base.lock"

if podman image exists "$image"; then
  podman image exists "$alias_image" || podman tag "$image" "$alias_image"
  echo "debian base ready: $image"
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q debootstrap >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null; } ||
    die "apt-get install debootstrap failed"
fi

rootfs=$cache/bookworm-minbase
if [[ ! -f $rootfs/.dogwatch-complete ]]; then
  rm -rf "$rootfs"
  echo "debian-base.sh: debootstrap bookworm from $mirror (about a minute)..." >&2
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -n 20 "$cache/debootstrap.log" >&2; die "debootstrap failed (log: $cache/debootstrap.log)"; }
  # Like the official slim image: no apt lists or caches in the layer.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  touch "$rootfs/.dogwatch-complete"
fi

tar -C "$rootfs" --exclude=./.dogwatch-complete -c . |
  podman import --change 'CMD ["/bin/bash"]' - "$image" >/dev/null || die "podman import failed"
podman tag "$image" "$alias_image"
echo "debian base ready: $image"
