#!/usr/bin/env bash
# The test command: installs what is missing, builds everything (release preset), runs every
# test suite (unit, simulation, integration with real broker processes), the fuzzers for a
# bounded time, and builds the examples against the installed package. Exits non-zero on any
# failure. Usage: scripts/test.sh [--asan] [--tsan] [--fuzz-seconds N]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ASAN=0; TSAN=0; FUZZ_SECONDS=${FUZZ_SECONDS:-10}
while [ $# -gt 0 ]; do
  case "$1" in
    --asan) ASAN=1 ;;
    --tsan) TSAN=1 ;;
    --fuzz-seconds) FUZZ_SECONDS=$2; shift ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
JOBS=$(nproc)

step "dependencies"
bash scripts/install-deps.sh

step "configure + build (release preset, $JOBS jobs)"
cmake --preset release >/dev/null
cmake --build --preset release -j "$JOBS"

step "unit, simulation and integration tests"
ctest --preset release -j "$JOBS" --timeout 600

step "fault-injection suite with TLS and authentication on (~3 min, >= 30 faults; network faults in namespaces as root)"
bash tests/chaos/run --secure

step "container test (deploy/Dockerfile via buildah; 3 brokers in network namespaces)"
bash tests/container/ci.sh

step "fuzzers (${FUZZ_SECONDS}s each)"
bash scripts/fuzz.sh "$FUZZ_SECONDS"

if [ -x examples/build-against-install.sh ]; then
  step "examples against the installed package"
  bash examples/build-against-install.sh build/release
fi

# Sanitizer builds cover the code with the most pointer work and concurrency below the
# network layer (protocol, storage, Raft core + simulation, the brokers' replication layers in
# the driver-level simulation, client internals, the broker's unit-tested pieces with the Kafka
# decoders); the process-level integration tests run in the release build above.
SANITIZED_TARGETS=(protocol_unit_tests storage_unit_tests storage_crash_tests raft_unit_tests raft_sim_tests
                   driver_sim_tests client_unit_tests broker_unit_tests kafka_batch_tool)
run_sanitized() {
  local preset=$1
  step "$preset build + unit tests (${SANITIZED_TARGETS[*]})"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$JOBS" --target "${SANITIZED_TARGETS[@]}"
  # The release run above covers the simulation's 2,000 seeds; under a sanitizer each seed is
  # ~25x slower, so it runs a sample that still crosses every fault kind.
  QUORUMQ_SIM_SEEDS=${QUORUMQ_SIM_SEEDS_SANITIZED:-200} \
  QUORUMQ_SIM_DRIVER_SEEDS=${QUORUMQ_SIM_DRIVER_SEEDS_SANITIZED:-60} \
    ctest --preset "$preset" -j "$JOBS" --timeout 900 -LE integration -E NOT_BUILT
}
if [ "$ASAN" = 1 ]; then run_sanitized asan; fi
if [ "$TSAN" = 1 ]; then run_sanitized tsan; fi

step "all tests passed"
