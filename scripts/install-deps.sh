#!/usr/bin/env bash
# Installs every Debian package dogwatch's build, tests, fuzzers and benchmarks need.
# Idempotent: packages already present are skipped by apt; safe to run on every CI run.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git clang-14 llvm-14 lld-14
  libclang-rt-14-dev libfuzzer-14-dev clang-format-14
  # libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libyaml-cpp-dev rapidjson-dev libcurl4-openssl-dev
  libmsgpack-cxx-dev libboost-dev zlib1g-dev libdeflate-dev libzstd-dev libspdlog-dev libfmt-dev
  libmicrohttpd-dev catch2 libbenchmark-dev libcap-dev libbpf-dev libelf-dev libre2-dev
  # test and benchmark tools
  procps iproute2 curl ca-certificates python3 util-linux passwd
)

# Each area with its own tools (packaging, containers, policies) lists them in scripts/deps.d/*.txt,
# one package per line, '#' comments allowed.
for list in "$(dirname "$0")"/deps.d/*.txt; do
  [ -f "$list" ] || continue
  while read -r p _; do
    [ -n "$p" ] && [ "${p#\#}" = "$p" ] && packages+=("$p")
  done <"$list"
done

# Node.js may come from another distribution channel that bundles npm (and conflicts with
# Debian's npm package): only ask Debian for it when no node is on the PATH.
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
