#!/usr/bin/env bash
# Installs, with apt-get, every Debian 12 package quorumq needs to build, test and run, and
# says which ones it installed. Idempotent: a machine that has them all is left untouched.
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ ccache pkg-config git
  libasio-dev libflatbuffers-dev flatbuffers-compiler liblmdb-dev lmdb-utils
  libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libcli11-dev libssl-dev
  nlohmann-json3-dev
  zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
  clang libclang-rt-14-dev
  curl iproute2 procps e2fsprogs util-linux python3
  python3-kafka kcat python3-confluent-kafka
  python3-snappy python3-lz4 python3-zstandard
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
