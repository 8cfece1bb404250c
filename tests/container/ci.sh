#!/usr/bin/env bash
# What scripts/test.sh calls: runs the container test (run.sh) when it is cheap enough or asked
# for, and otherwise says clearly that it skipped it and why (exit 0).
#   QUORUMQ_CONTAINER_TEST=1  run it (a cold run installs buildah+debootstrap, debootstraps the
#                             base images and builds the image: measured 5.6 min, up to ~11 min on busy cores)
#   QUORUMQ_CONTAINER_TEST=0  never run it
#   unset                     run it only if the base images are already cached in buildah
#                             storage (a warm run: ~5 s to ~6 min, depending on what changed)
set -euo pipefail
cd "$(dirname "$0")/../.."
want=${QUORUMQ_CONTAINER_TEST:-auto}
skip() { echo "container test: SKIPPED — $*"; exit 0; }
[ "$want" = 0 ] && skip "QUORUMQ_CONTAINER_TEST=0"
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, chroot, mounts)"
if [ "$want" != 1 ]; then
  command -v buildah >/dev/null ||
    skip "buildah is not installed and no base image is cached; a cold run takes ~6-11 min (set QUORUMQ_CONTAINER_TEST=1 to run it)"
  buildah inspect --type image docker.io/library/debian:bookworm >/dev/null 2>&1 &&
    buildah inspect --type image docker.io/library/debian:bookworm-slim >/dev/null 2>&1 ||
    skip "no cached debian:bookworm base images; a cold run takes ~6-11 min (set QUORUMQ_CONTAINER_TEST=1 to run it)"
fi
# Bounded: a cold run measured 4m51s (+46 s apt) on a lightly loaded 2-core machine, up to ~11 min
# when other builds share the cores; past 12 min something is wrong (mirror down, hang).
exec timeout 720 bash tests/container/run.sh
