#!/usr/bin/env bash
# Runs deploy/compose.yaml for real with podman-compose (no Docker engine here) and checks it:
# three brokers, the example producer and consumer; messages flow; the consumer group owns all
# six partitions; one broker killed (SIGKILL): messages keep flowing; a broker stopped
# (SIGTERM): exit code 0; then everything is removed (containers, network, volumes).
#
#   deploy/compose-smoke.sh            (root; installs podman, podman-compose, runc, buildah)
#
# The image is localhost/quorumq:latest; it is built with buildah from deploy/Dockerfile when
# missing (tests/container/ci.sh builds the same image as localhost/quorumq:test and is reused).
# This VM refuses crun's setrlimit and its cgroup setup, so podman runs with runc and explicit
# ulimits (a containers.conf of our own through CONTAINERS_CONF); a normal host needs neither.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[compose-smoke $(( $(date +%s) - T0 ))s] $*"; }
fail() { echo "compose-smoke: FAIL: $*" >&2; exit 1; }
T0=$(date +%s)
[ "$(id -u)" = 0 ] || fail "run as root (podman networks and volumes)"
need=()
for c in podman podman-compose runc buildah; do command -v "$c" >/dev/null || need+=("$c"); done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
conf=$(mktemp /tmp/quorumq-containers-XXXXXX.conf)
cat >"$conf" <<'EOF'
[containers]
default_ulimits = ["nofile=10000:10000", "nproc=4096:4096"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$conf
P=qqsmoke
say "secrets (deploy/make-secrets.sh: CA, certificates, bootstrap user, tokens)"
OWNER=10001:10001 bash deploy/make-secrets.sh deploy/secrets 3 >/dev/null 2>&1 || fail "deploy/make-secrets.sh"
compose() { podman-compose -p "$P" -f deploy/compose.yaml "$@"; }
down() { compose down -v >/dev/null 2>&1 || true; }
trap 'down; rm -f "$conf"' EXIT
if ! podman image exists localhost/quorumq:latest; then
  if podman image exists localhost/quorumq:test; then
    podman tag localhost/quorumq:test localhost/quorumq:latest
  else
    say "building the image (buildah bud deploy/Dockerfile; several minutes the first time)"
    buildah bud --isolation chroot -f deploy/Dockerfile -t localhost/quorumq:latest . >/dev/null
  fi
fi
down
say "podman-compose up (3 brokers, producer, consumer)"
compose up -d >/tmp/quorumq-compose-up.log 2>&1 || fail "compose up (log: /tmp/quorumq-compose-up.log)"
lines() { podman logs "${P}_consumer_1" 2>/dev/null | grep -c '^order-' || true; }
wait_more() {  # wait_more N SECONDS: the consumer printed N more lines
  local start; start=$(lines); local end=$(( $(date +%s) + $2 ))
  while [ "$(lines)" -lt $(( start + $1 )) ]; do
    [ "$(date +%s)" -lt $end ] || fail "the consumer printed fewer than $1 new messages in $2 s"
    sleep 1
  done
}
wait_more 5 90
say "messages flow: producer -> 3 brokers -> consumer ($(lines) consumed)"
code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:19644/readyz || true)
[ "$code" = 200 ] || fail "broker1 /readyz (published port 19644) answered $code"
desc=$(podman exec "${P}_broker1_1" quorumq --bootstrap broker1:9092 group describe example 2>/dev/null)
echo "$desc" | head -1
owned=$(echo "$desc" | awk -F'\t' 'NR>2 && $3 != "-"' | wc -l)
[ "$owned" = 6 ] || fail "the example group owns $owned of 6 partitions"
podman kill "${P}_broker2_1" >/dev/null
say "broker2 killed (SIGKILL)"
wait_more 5 60
say "messages still flow with broker2 dead"
podman start "${P}_broker2_1" >/dev/null
podman stop -t 30 "${P}_broker3_1" >/dev/null
rc=$(podman inspect "${P}_broker3_1" --format '{{.State.ExitCode}}')
[ "$rc" = 0 ] || fail "broker3 exited $rc on SIGTERM, want 0"
say "broker3 stopped with SIGTERM: exit 0 (leadership handed over first)"
wait_more 3 60
say "PASS in $(( $(date +%s) - T0 ))s"
