#!/usr/bin/env bash
# The main job: builds quorumq, starts a local broker cluster in a temporary directory, creates a
# topic, produces and consumes through the CLI, shows what happened, and stops the cluster.
# Usage: scripts/demo.sh [--brokers N (1, 3 or 5; default 3)] [--messages N] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BROKERS=3; MESSAGES=1000; KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --brokers) BROKERS=$2; shift ;;
    --messages) MESSAGES=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
step() { printf '\n==> %s\n' "$*"; }

step "dependencies"
bash scripts/install-deps.sh
step "build (release preset)"
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target quorumq-broker quorumq
BIN=$ROOT/build/release
BROKER=$BIN/broker/quorumq-broker
CLI=$(find "$BIN/client" -type f -name quorumq -perm -u+x | head -1)

WORK=$(mktemp -d /tmp/quorumq-demo.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

BASE=29092
PEERS=""
if [ "$BROKERS" -gt 1 ]; then
  # Brokers reach each other on their peer listeners (port BASE+200+i), proving they share the
  # cluster secret; clients use the client ports (BASE+i).
  for i in $(seq 1 "$BROKERS"); do PEERS+="${PEERS:+,}$i@127.0.0.1:$((BASE + 200 + i))"; done
  (umask 077; head -c 32 /dev/urandom | base64 >"$WORK/cluster.secret")
fi
BOOT=""
step "starting $BROKERS broker(s) in $WORK"
for i in $(seq 1 "$BROKERS"); do
  args=(--node-id "$i" --listen "127.0.0.1:$((BASE + i))" --admin-listen "127.0.0.1:$((BASE + 100 + i))"
        --data-dir "$WORK/broker$i")
  [ -n "$PEERS" ] && args+=(--peers "$PEERS" --cluster-secret-file "$WORK/cluster.secret")
  "$BROKER" "${args[@]}" >"$WORK/broker$i.log" 2>&1 &
  PIDS+=($!)
  BOOT+="${BOOT:+,}127.0.0.1:$((BASE + i))"
done
for i in $(seq 1 "$BROKERS"); do
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$((BASE + 100 + i))/readyz" >/dev/null && break
    sleep 0.05
  done
  curl -sf "http://127.0.0.1:$((BASE + 100 + i))/readyz" >/dev/null ||
    { echo "broker $i did not become ready; its log:"; cat "$WORK/broker$i.log"; exit 1; }
done
echo "brokers ready: $BOOT"
export QUORUMQ_BOOTSTRAP=$BOOT

step "quorumq topic create demo --partitions 3 --replicas $BROKERS"
"$CLI" topic create demo --partitions 3 --replicas "$BROKERS"
for _ in $(seq 1 100); do  # each partition elects its leader within an election timeout or two
  [ -z "$("$CLI" topic describe demo | awk 'NR > 2 && $2 == -1')" ] && break
  sleep 0.1
done
"$CLI" topic describe demo

step "producing $MESSAGES messages (acks=quorum)"
start=$(date +%s.%N)
seq 1 "$MESSAGES" | sed 's/^/message-/' | "$CLI" produce demo --acks quorum --print-offsets >"$WORK/produced.tsv"
end=$(date +%s.%N)
echo "acknowledged: $(wc -l <"$WORK/produced.tsv") messages in $(python3 -c "print(round($end - $start, 2))") s"

step "consuming with group demo-group"
"$CLI" consume demo --group demo-group --from-beginning --max-messages "$MESSAGES" --timeout-ms 20000 \
  --print-offsets >"$WORK/consumed.tsv"
echo "consumed: $(wc -l <"$WORK/consumed.tsv") messages; first three:"
head -3 "$WORK/consumed.tsv"
sort -u -t$'\t' -k3 "$WORK/consumed.tsv" | wc -l | xargs echo "distinct values:"

step "committed offsets of demo-group"
"$CLI" group offsets demo-group
step "the group (its consumer has left: state empty, lag per partition)"
"$CLI" group describe demo-group

step "broker metrics (excerpt, every broker)"
for i in $(seq 1 "$BROKERS"); do
  echo "broker $i:"
  curl -s "http://127.0.0.1:$((BASE + 100 + i))/metrics" |
    grep -E '^quorumq_(produce_records_total|fetch_bytes_total|storage_commits_total|storage_appends_per_commit|partitions|partitions_led) ' |
    sed 's/^/  /'
done
if [ "$BROKERS" -gt 1 ]; then
  step "failover: kill -9 the leader of partition 0, produce and consume again"
  victim=""
  for i in $(seq 1 "$BROKERS"); do
    if curl -s "http://127.0.0.1:$((BASE + 100 + i))/metrics" | grep -q 'quorumq_partition_leader{topic="demo",partition="0"} 1'; then victim=$i; fi
  done
  if [ -n "$victim" ]; then
    kill -9 "${PIDS[$((victim - 1))]}"
    echo "killed broker $victim (pid ${PIDS[$((victim - 1))]})"
    start=$(date +%s.%N)
    seq 1 100 | sed 's/^/after-failover-/' | "$CLI" produce demo --key k0 --acks quorum --print-offsets >"$WORK/after.tsv"
    end=$(date +%s.%N)
    echo "acknowledged $(wc -l <"$WORK/after.tsv") more messages in $(python3 -c "print(round($end - $start, 2))") s (includes the election)"
    "$CLI" consume demo --group demo-group --max-messages 100 --timeout-ms 20000 >"$WORK/after-consumed.txt"
    echo "consumed $(wc -l <"$WORK/after-consumed.txt") of them after the failover; last: $(tail -1 "$WORK/after-consumed.txt")"
  fi
fi
step "done: stopping the cluster"
