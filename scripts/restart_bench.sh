#!/usr/bin/env bash
# How long a broker with a large log takes to serve again after kill -9 (issue 16, "restart at
# once"). Starts one broker on loopback, fills a 4-partition topic with quorumq-bench, kills the
# broker with SIGKILL, optionally drops the page cache (root only: a machine that rebooted), restarts it and
# measures the time to /readyz = 200 and to the first acknowledged produce. Then waits for
# the background CRC check to finish (quorumq_log_verifying_partitions = 0) and reports that too.
#
# usage: scripts/restart_bench.sh [MESSAGES (default 1000000 = ~1 GB of 1 KiB)] [--warm]
set -euo pipefail
MESSAGES=${1:-1000000}
WARM=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${QUORUMQ_BUILD:-$ROOT/build/release}
BROKER=$B/broker/quorumq-broker
for f in "$BROKER" "$B/bench/quorumq-bench" "$B/client/cli/quorumq"; do
  [[ -x $f ]] || { echo "missing $f: build first (cmake --preset release && cmake --build --preset release)" >&2; exit 2; }
done
WORK=$(mktemp -d /tmp/quorumq-restart.XXXXXX)
PORT=${QUORUMQ_RESTART_PORT:-19092}
ADMIN=${QUORUMQ_RESTART_ADMIN_PORT:-19644}
PID=
cleanup() { [[ -n $PID ]] && kill -9 "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
start() {
  "$BROKER" --node-id 1 --data-dir "$WORK/data" --listen 127.0.0.1:$PORT --admin-listen 127.0.0.1:$ADMIN \
    --log-level info >>"$WORK/broker.log" 2>&1 &
  PID=$!
}
ready() { [[ $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$ADMIN/readyz || true) == 200 ]]; }
now() { date +%s.%N; }
wait_ready() {
  local deadline=$(( $(date +%s) + 300 ))
  until ready; do
    kill -0 "$PID" 2>/dev/null || { echo "the broker exited; its log: $WORK/broker.log" >&2; tail -20 "$WORK/broker.log" >&2; exit 1; }
    (( $(date +%s) < deadline )) || { echo "not ready after 300 s; see $WORK/broker.log" >&2; exit 1; }
    sleep 0.02
  done
}

echo "[1/4] starting a broker in $WORK"
start; wait_ready
echo "[2/4] producing $MESSAGES messages of 1 KiB to topic 'big' (4 partitions)"
"$B/bench/quorumq-bench" --bootstrap 127.0.0.1:$PORT --topic big --partitions 4 --messages "$MESSAGES" \
  --duration 0 --consumers 0 --size 1024 --quiet | grep -E "throughput|acked" || true
echo "      data directory: $(du -sh "$WORK/data" | cut -f1)"
echo "[3/4] kill -9, then restart"
kill -9 "$PID"; wait "$PID" 2>/dev/null || true
if [[ $WARM != --warm ]]; then
  if [[ $(id -u) == 0 ]]; then sync; echo 3 >/proc/sys/vm/drop_caches; echo "      page cache dropped (cold start)"
  else echo "      not root: page cache kept (warm start)"; fi
fi
t0=$(now); start; wait_ready; t1=$(now)
echo x | "$B/client/cli/quorumq" --bootstrap 127.0.0.1:$PORT produce big >/dev/null
t2=$(now)
printf '      ready after %.3f s; first produce acknowledged after %.3f s\n' "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t0" | bc)"
echo "[4/4] waiting for the background CRC check (quorumq_log_verifying_partitions = 0)"
while :; do
  v=$(curl -s http://127.0.0.1:$ADMIN/metrics | awk '/^quorumq_log_verifying_partitions /{print $2}')
  [[ ${v:-1} == 0 ]] && break
  printf '      %s partitions still being checked (%.0f s)\r' "$v" "$(echo "$(now) - $t0" | bc)"
  sleep 1
done
t3=$(now)
printf '\n      background check done after %.1f s\n' "$(echo "$t3 - $t0" | bc)"
