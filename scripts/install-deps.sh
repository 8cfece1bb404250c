#!/usr/bin/env bash
# Installs, with apt-get, every Debian 12 package quorumq needs to build, test and run, and
# says which ones it installed; then Node.js and KafkaJS (npm) for the KafkaJS integration
# test. Idempotent: a machine that has them all is left untouched.
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ ccache pkg-config git
  libasio-dev libflatbuffers-dev flatbuffers-compiler liblmdb-dev lmdb-utils
  libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libcli11-dev libssl-dev
  nlohmann-json3-dev
  zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
  clang libclang-rt-14-dev
  curl openssl iproute2 procps e2fsprogs util-linux python3
  python3-kafka kcat python3-confluent-kafka
  python3-snappy python3-lz4 python3-zstandard
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
apt_install() {
  if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
    echo "install-deps: need root or sudo to install: $*" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  apt_install "${missing[@]}"
  echo "install-deps: done"
fi

# Node.js and KafkaJS for tests/integration/kafkajs_test (issue 17). Debian's nodejs and npm,
# unless a node and npm are already on the PATH (a NodeSource nodejs carries its own npm, and
# Debian's npm package would conflict with it).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-deps: installing nodejs npm"
  apt_install nodejs npm
fi
# kafkajs at the version package-lock.json pins, into tests/integration/kafkajs/node_modules.
KAFKAJS_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/integration/kafkajs"
KAFKAJS_VERSION=2.2.4
if [ "$(node -p "try { require('$KAFKAJS_DIR/node_modules/kafkajs/package.json').version } catch { '' }")" = "$KAFKAJS_VERSION" ]; then
  echo "install-deps: kafkajs $KAFKAJS_VERSION present"
else
  echo "install-deps: installing kafkajs $KAFKAJS_VERSION (npm ci in tests/integration/kafkajs)"
  (cd "$KAFKAJS_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi
