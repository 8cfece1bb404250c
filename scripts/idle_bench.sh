#!/usr/bin/env bash
# "Idle costs nothing" (issue 16): starts a local cluster of real brokers, creates a topic with
# many partitions, waits until every partition has a leader, then, with no client connected,
# counts each broker's durable storage commits (quorumq_storage_commits_total: one LMDB commit
# = one fdatasync + one meta-page sync), Raft elections and CPU over a window. Goal: at most 1
# commit per second per broker. With --with-load S it then runs quorumq-bench one message at a
# time for S seconds on a 1-partition topic beside the idle ones, deletes the idle topic and runs
# it again: what the idle partitions cost an active one, in the same run.
# Usage: scripts/idle_bench.sh [--brokers 3] [--partitions 100] [--seconds 60] [--with-load 10] [--build build/release]
set -euo pipefail
cd "$(dirname "$0")/.."
BROKERS=3; PARTS=100; SECS=60; BUILD=build/release; LOAD=0
while [ $# -gt 0 ]; do
  case "$1" in
    --brokers) BROKERS=$2; shift ;;
    --partitions) PARTS=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --build) BUILD=$2; shift ;;
    --with-load) LOAD=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "idle_bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
BROKER=$BUILD/broker/quorumq-broker
CLI=$(find "$BUILD/client" -type f -name quorumq -perm -u+x 2>/dev/null | head -1)
[ -x "$BROKER" ] && [ -n "$CLI" ] || { echo "no broker or CLI under $BUILD: build first (cmake --build --preset release)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/quorumq-idle.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
# Free ports from the kernel: bind port 0 and read what it gave.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -a CP AP PP
PEERS=""
for i in $(seq 1 "$BROKERS"); do
  CP[$i]=$(free_port); AP[$i]=$(free_port); PP[$i]=$(free_port)
  PEERS+="${PEERS:+,}$i@127.0.0.1:${PP[$i]}"
done
(umask 077; head -c 32 /dev/urandom | base64 >"$WORK/cluster.secret")
BOOT=""
echo "[$(date +%T)] starting $BROKERS broker(s) in $WORK"
for i in $(seq 1 "$BROKERS"); do
  "$BROKER" --node-id "$i" --listen "127.0.0.1:${CP[$i]}" --admin-listen "127.0.0.1:${AP[$i]}" \
    --peer-listen "127.0.0.1:${PP[$i]}" --data-dir "$WORK/b$i" --peers "$PEERS" \
    --cluster-secret-file "$WORK/cluster.secret" --log-level warn >"$WORK/b$i.log" 2>&1 &
  PIDS+=($!)
  BOOT+="${BOOT:+,}127.0.0.1:${CP[$i]}"
done
for i in $(seq 1 "$BROKERS"); do
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:${AP[$i]}/readyz" >/dev/null && break; sleep 0.05; done
  curl -sf "http://127.0.0.1:${AP[$i]}/readyz" >/dev/null || { echo "broker $i not ready; its log:"; cat "$WORK/b$i.log"; exit 1; }
done
export QUORUMQ_BOOTSTRAP=$BOOT
R=$(( BROKERS < 3 ? BROKERS : 3 ))
echo "[$(date +%T)] topic idle: $PARTS partitions x $R replicas"
"$CLI" topic create idle --partitions "$PARTS" --replicas "$R" >/dev/null
for _ in $(seq 1 600); do
  [ -z "$("$CLI" topic describe idle | awk 'NR > 2 && $2 == -1')" ] && break
  sleep 0.1
done
echo "[$(date +%T)] every partition has a leader; settling 5 s (the last commit records go out after 50 ms of quiet)"
sleep 5
metric() { curl -sf "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
declare -a C0 E0 U0
for i in $(seq 1 "$BROKERS"); do
  C0[$i]=$(metric "${AP[$i]}" quorumq_storage_commits_total)
  E0[$i]=$(metric "${AP[$i]}" quorumq_raft_elections_started_total)
  U0[$i]=$(metric "${AP[$i]}" process_cpu_seconds_total)
  echo "  broker $i: ${C0[$i]} durable commits so far (creating the topic and electing its leaders)"
done
for s in $(seq 1 "$SECS"); do
  sleep 1
  if (( s % 10 == 0 )); then
    line="[$(date +%T)] ${s}/${SECS} s:"
    for i in $(seq 1 "$BROKERS"); do line+=" b$i $(( $(metric "${AP[$i]}" quorumq_storage_commits_total) - C0[$i] )) commits"; done
    echo "$line"
  fi
done
echo
echo "idle cluster: $BROKERS brokers, topic of $PARTS partitions x $R replicas, no clients, ${SECS} s"
worst=0
for i in $(seq 1 "$BROKERS"); do
  c=$(( $(metric "${AP[$i]}" quorumq_storage_commits_total) - C0[$i] ))
  e=$(( $(metric "${AP[$i]}" quorumq_raft_elections_started_total) - E0[$i] ))
  u=$(metric "${AP[$i]}" process_cpu_seconds_total)
  rate=$(python3 -c "print(f'{$c / $SECS:.2f}')")
  cpu=$(python3 -c "print(f'{($u - ${U0[$i]}) / $SECS * 100:.1f}')")
  echo "  broker $i: $c durable commits ($rate/s), $e elections started, CPU $cpu% of a core"
  python3 -c "import sys; sys.exit(0 if $c / $SECS <= 1 else 1)" || worst=1
done
if [ "$worst" = 0 ]; then echo "goal (<= 1 commit/s per broker): met"; else echo "goal (<= 1 commit/s per broker): MISSED"; fi

if [ "$LOAD" -gt 0 ]; then
  BENCH=$BUILD/bench/quorumq-bench
  one() {  # $1: label
    "$BENCH" --bootstrap "$BOOT" --partitions 1 --window 1 --linger-ms 0 --max-in-flight 1 --consumers 0 \
      --duration "$LOAD" --quiet --json "$WORK/$1.json" >"$WORK/$1.out" 2>&1 || { cat "$WORK/$1.out"; exit 1; }
    echo "  $1: $(grep -E '^  ack latency' "$WORK/$1.out" | sed 's/^  ack latency *//') ($(grep -E 'fsync ceiling' "$WORK/$1.out" | head -1 | sed 's/.*(//; s/)//'))"
  }
  echo
  echo "[$(date +%T)] one message at a time on a new 1-partition topic for ${LOAD} s, beside the $PARTS idle partitions"
  one beside-idle
  "$CLI" topic delete idle >/dev/null
  echo "[$(date +%T)] the idle topic deleted; the same again"
  one alone
fi
