#!/usr/bin/env bash
# Container test (issue 8), with no Docker engine: builds the real deploy/Dockerfile with
# `buildah bud --isolation chroot` on base images made by debootstrap (base-images.sh), then runs
# three brokers from that image, each in its own network namespace (ip netns + veth on a bridge)
# and PID/mount namespace, chrooted into its own container root filesystem (buildah mount), as the
# image's user, with the image's ENV and ENTRYPOINT, configured only by QUORUMQ_* variables.
# It creates a replicated topic, produces with acks=quorum from a fourth namespace using the
# image's own CLI, kill -9s one broker, produces more, checks that every acknowledged message is
# consumed, that /healthz and /readyz answer as docs/operations.md says, that the healthcheck
# script works, and that SIGTERM reaches the broker (exit 0).
#
# Needs root (namespaces, chroot, mounts). Installs buildah and debootstrap if missing.
# Usage: tests/container/run.sh [--keep-image]     Cache: $QUORUMQ_CONTAINER_CACHE
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
IMAGE=localhost/quorumq:test
NET=10.79.0            # bridge qq-br0 = .1, brokers .11-.13, client .20
KEEP_IMAGE=0; [ "${1:-}" = --keep-image ] && KEEP_IMAGE=1
T0=$(date +%s)
say() { printf '[container-test %3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
fail() { say "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || { echo "container test: needs root (network namespaces, chroot)" >&2; exit 2; }
missing=()
for p in buildah debootstrap iproute2 curl util-linux; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash tests/container/base-images.sh
say "buildah bud deploy/Dockerfile -> $IMAGE"
t=$(date +%s)
buildah bud --isolation chroot --pull=never --layers --format docker -q -f deploy/Dockerfile -t "$IMAGE" . \
  >/tmp/quorumq-container-build.log 2>&1 || { tail -30 /tmp/quorumq-container-build.log; fail "image build failed"; }
say "image built in $(( $(date +%s) - t ))s"

# The image as a runtime would read it: user, env, entrypoint, healthcheck, volume, ports.
cfg() { buildah inspect --type image --format "$1" "$IMAGE"; }
USER_SPEC=$(cfg '{{.Docker.Config.User}}')
mapfile -t IMG_ENV < <(cfg '{{range .Docker.Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
ENTRYPOINT=$(cfg '{{range .Docker.Config.Entrypoint}}{{.}} {{end}}')
[ "$USER_SPEC" = "quorumq:quorumq" ] || fail "image user is '$USER_SPEC', want quorumq:quorumq"
cfg '{{.Docker.Config.Healthcheck.Test}}' | grep -q healthz || fail "image has no HEALTHCHECK on /healthz"
cfg '{{range $k, $v := .Docker.Config.Volumes}}{{$k}} {{end}}' | grep -q /var/lib/quorumq || fail "no /var/lib/quorumq volume"
cfg '{{range $k, $v := .Docker.Config.ExposedPorts}}{{$k}} {{end}}' | grep -q 9092 || fail "port 9092 not exposed"
say "image: user $USER_SPEC, entrypoint '$ENTRYPOINT', HEALTHCHECK, VOLUME and EXPOSE present"

CTRS=(); MNTS=(); PIDS=(); NSS=()
RUN_TAG="qqct-$$-$T0"
# broker_pid I: host pid of broker I (PID 1 of its namespace), found by the env tag it was started
# with. Not via the launcher's children: `ip netns exec` may fork, and unshare's --kill-child is
# dropped when chroot --userspec changes credentials, so killing a launcher does not kill the broker.
broker_pid() {
  local e
  for e in /proc/[0-9]*/environ; do
    if { tr '\0' '\n' <"$e"; } 2>/dev/null | grep -qx "QUORUMQ_TEST_TAG=$RUN_TAG-b$1"; then
      e=${e#/proc/}; echo "${e%/environ}"; return 0
    fi
  done
  return 1
}
cleanup() {
  set +e
  for i in 1 2 3; do p=$(broker_pid "$i") && kill -9 "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  for m in "${MNTS[@]}"; do umount -R "$m/dev" 2>/dev/null; umount "$m/proc" 2>/dev/null; done
  for c in "${CTRS[@]}"; do buildah rm "$c" >/dev/null 2>&1; done
  for n in "${NSS[@]}"; do ip netns del "$n" 2>/dev/null; ip link del "v-$n" 2>/dev/null; done
  ip link del qq-br0 2>/dev/null
  [ $KEEP_IMAGE = 1 ] || true  # the image and its layers stay cached for the next run
}
trap cleanup EXIT
trap 'exit 143' TERM INT   # so a timeout or ^C still runs cleanup
trap 'say "FAIL: line $LINENO: $BASH_COMMAND exited $?"' ERR

# Leftovers of an interrupted run (its brokers are gone with their namespaces' last process).
for n in qq-b1 qq-b2 qq-b3 qq-cl; do ip netns del "$n" 2>/dev/null || true; ip link del "v-$n" 2>/dev/null || true; done
ip link del qq-br0 2>/dev/null || true
ip link add qq-br0 type bridge && ip addr add "$NET.1/24" dev qq-br0 && ip link set qq-br0 up
HOSTS=$'127.0.0.1 localhost\n'
for i in 1 2 3; do HOSTS+="$NET.1$i broker$i"$'\n'; done
HOSTS+="$NET.20 client"$'\n'
netns() {  # netns NAME ADDR
  ip netns add "$1"; NSS+=("$1")
  ip link add "v-$1" type veth peer name eth0 netns "$1"
  ip link set "v-$1" master qq-br0 up
  ip -n "$1" addr add "$2/24" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" link set lo up
}
container() {  # container -> index in CTRS/MNTS
  local c m
  c=$(buildah from --pull=never "$IMAGE"); m=$(buildah mount "$c")
  printf '%s' "$HOSTS" >"$m/etc/hosts"
  CTRS+=("$c"); MNTS+=("$m")
}
PEERS="1@broker1:9093,2@broker2:9093,3@broker3:9093"  # the peer listeners
SECRET=$(head -c 32 /dev/urandom | base64)
# start_broker I: PID 1 of its own PID namespace is the broker (entrypoint execs it).
start_broker() {
  local i=$1 m=${MNTS[$(( $1 - 1 ))]}
  ip netns exec "qq-b$i" unshare --mount --pid --fork --kill-child --mount-proc="$m/proc" \
    sh -c 'm=$0 u=$1; shift; mount --rbind /dev "$m/dev" && exec chroot --userspec="$u" "$m" "$@"' "$m" "$USER_SPEC" \
    /usr/bin/env -i "${IMG_ENV[@]}" HOSTNAME="broker$i" QUORUMQ_TEST_TAG="$RUN_TAG-b$i" \
      QUORUMQ_NODE_ID="$i" QUORUMQ_PEERS="$PEERS" QUORUMQ_ADVERTISED="broker$i:9092" QUORUMQ_CLUSTER_SECRET="$SECRET" \
      $ENTRYPOINT >"/tmp/quorumq-container-b$i.log" 2>&1 &
  PIDS[$i]=$!
}
http() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$NET.1$1:9644$2" || true; }
wait_code() {  # wait_code I PATH CODE SECONDS
  local end=$(( $(date +%s) + $4 ))
  while [ "$(http "$1" "$2")" != "$3" ]; do
    [ "$(date +%s)" -lt $end ] || fail "broker $1 $2 did not answer $3 within $4s (log: /tmp/quorumq-container-b$1.log)"
    sleep 0.2
  done
}
# cli ARGS...: the image's own CLI, as the image's user, from the client namespace.
cli() {
  ip netns exec qq-cl chroot --userspec="$USER_SPEC" "${MNTS[3]}" /usr/bin/env -i "${IMG_ENV[@]}" \
    QUORUMQ_BOOTSTRAP=broker1:9092,broker2:9092,broker3:9092 quorumq "$@"
}

for i in 1 2 3; do netns "qq-b$i" "$NET.1$i"; container; done
netns qq-cl "$NET.20"; container
for i in 1 2 3; do start_broker "$i"; done
for i in 1 2 3; do wait_code "$i" /readyz 200 60; [ "$(http "$i" /healthz)" = 200 ] || fail "broker $i /healthz"; done
say "3 brokers ready (/readyz 200, /healthz 200), each in its own netns, configured by env only"
ip netns exec qq-b1 chroot --userspec="$USER_SPEC" "${MNTS[0]}" /usr/bin/env -i "${IMG_ENV[@]}" \
  quorumq-healthcheck /healthz || fail "the image's HEALTHCHECK command failed inside the container"
owner=$(stat -c %U "${MNTS[0]}/var/lib/quorumq/data/data.mdb" 2>/dev/null || true)
[ "$owner" = quorumq ] || [ "$(stat -c %u "${MNTS[0]}/var/lib/quorumq/data/data.mdb")" = 10001 ] ||
  fail "data.mdb is not owned by the non-root user (owner '$owner')"

cli topic create orders --partitions 3 --replicas 3 >/dev/null || fail "topic create"
sleep 1
seq 1 2000 | sed 's/^/m/' | cli produce orders --print-offsets >/tmp/quorumq-container-acks1 || fail "produce 1"
say "produced 2000 (acks=quorum); kill -9 broker 2"
kill -9 "$(broker_pid 2)"; wait "${PIDS[2]}" 2>/dev/null || true; PIDS[2]=""
[ "$(http 2 /healthz)" = 000 ] || fail "a killed broker still answers /healthz"
[ "$(http 1 /readyz)" = 200 ] && [ "$(http 3 /readyz)" = 200 ] || fail "survivors not ready after the kill"
seq 2001 4000 | sed 's/^/m/' | cli produce orders --print-offsets >/tmp/quorumq-container-acks2 || fail "produce 2 (one broker down)"
acked=$(cat /tmp/quorumq-container-acks1 /tmp/quorumq-container-acks2 | wc -l)
[ "$acked" = 4000 ] || fail "only $acked of 4000 acknowledged"
cli consume orders --group check --from-beginning -n 4000 --timeout-ms 60000 >/tmp/quorumq-container-got || fail "consume"
lost=$(comm -23 <(seq 1 4000 | sed 's/^/m/' | sort) <(sort -u /tmp/quorumq-container-got) | wc -l)
[ "$lost" = 0 ] || fail "$lost acknowledged messages not consumed"
say "4000 acknowledged (2000 with broker 2 dead), all 4000 consumed: nothing lost"

start_broker 2
wait_code 2 /readyz 200 60
say "broker 2 restarted on the same /var/lib/quorumq: /readyz 200"
kill -TERM "$(broker_pid 3)"
rc=0; wait "${PIDS[3]}" || rc=$?; PIDS[3]=""
[ "$rc" = 0 ] || fail "SIGTERM: broker 3 exited $rc, want 0 (log: /tmp/quorumq-container-b3.log)"
grep -q "signal 15" /tmp/quorumq-container-b3.log || fail "broker 3 did not log the SIGTERM"
say "SIGTERM reached broker 3 (PID 1 of its namespace): clean exit 0"
kill -9 "$(broker_pid 2)"; wait "${PIDS[2]}" 2>/dev/null || true; PIDS[2]=""
wait_code 1 /readyz 503 30
[ "$(http 1 /healthz)" = 200 ] || fail "broker 1 /healthz while alone"
say "broker 1 alone (no quorum): /readyz 503, /healthz 200, as documented"
say "PASS in $(( $(date +%s) - T0 ))s"
