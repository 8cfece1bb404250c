#!/usr/bin/env bash
# quorumq vs NATS JetStream on this machine, side by side, in interleaved rounds.
#
# Each round runs, one step at a time (one progress line per step):
#   quorumq  (quorumq-bench --spawn, acks=quorum, 1 KiB, --consumers 0)
#     qq-r3-async-1p   3 brokers, 1 partition, closed loop with the SDK's batching (defaults)
#     qq-r3-async-3p   3 brokers, 3 partitions
#     qq-r3-sync       3 brokers, one message at a time (--window 1 --linger-ms 0 --max-in-flight 1)
#     qq-r1-sync       1 broker, one message at a time
#     qq-r1-async      1 broker, 1 partition, closed loop
#   NATS JetStream 2.9 (Debian nats-server, our bench/nats/natsbench on Debian's nats.go; file storage)
#     nats-r3-async    3 servers, R3 stream, PublishAsync with NATS_WINDOW acks outstanding,
#                      then a durable pull consumer reads it all back (NATS-only figure)
#     nats-r3-sync     3 servers, R3, Publish one at a time
#     nats-r1-sync     1 server, R1, one at a time
#     nats-r1-async    1 server, R1, PublishAsync
# Odd rounds run quorumq first, even rounds NATS first, so neither always meets a rested disk.
# Every step probes the disk's fsync just before it (quorumq-bench's own probe, the same loop in
# natsbench): this VM throttles fsync after bursts, so each figure is reported with the fsync
# mean measured beside it, and ratios pair figures of the same round only.
# NATS acknowledges before any fsync; quorumq after a majority fsynced. The table says so.
#
# Usage: scripts/peers_bench.sh [--rounds N] [--duration S] [--write-docs] [--help]
#   env: ROUNDS=3 DURATION=12 (seconds per step) BUILD=build/release (quorumq's build dir)
#        QUORUMQ_BENCH_BIN, QUORUMQ_BROKER_BIN (override BUILD's binaries) NATS_WINDOW=256
#        NATS_PORT=14331 NATS_CLUSTER_PORT=16331 (3 consecutive ports each, loopback only)
#        OUT=<dir for the raw JSON> (default a fresh /tmp/quorumq-peers-XXXXXX, kept)
#        GO_BUILD_DIR=build/natsbench DOC=docs/benchmarks.md
# It installs nats-server, golang-go and golang-github-nats-io-go-nats-dev with apt-get if they
# are missing, builds natsbench (GOPATH mode, no network), starts and stops its own nats-servers
# (temp dirs, stopped by PID, removed on exit) and never builds quorumq.
# --write-docs replaces the section between <!-- peers-bench:begin --> and <!-- peers-bench:end -->
# of DOC with the table, the date, the machine, the versions and the command.
set -euo pipefail

cd "$(dirname "$0")/.."
COMMAND="scripts/peers_bench.sh${*:+ $*}"
WRITE_DOCS=0
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --write-docs) WRITE_DOCS=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-12}
BUILD=${BUILD:-build/release}
BENCH=${QUORUMQ_BENCH_BIN:-$BUILD/bench/quorumq-bench}
export QUORUMQ_BROKER_BIN=${QUORUMQ_BROKER_BIN:-$BUILD/broker/quorumq-broker}
NATS_WINDOW=${NATS_WINDOW:-256}
NATS_PORT=${NATS_PORT:-14331}
NATS_CLUSTER_PORT=${NATS_CLUSTER_PORT:-16331}
GO_BUILD_DIR=${GO_BUILD_DIR:-build/natsbench}
DOC=${DOC:-docs/benchmarks.md}
OUT=${OUT:-$(mktemp -d /tmp/quorumq-peers-XXXXXX)}
STEP_TIMEOUT=$(python3 -c "print(int(float('$DURATION') * 3 + 90))")
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }
for f in "$BENCH" "$QUORUMQ_BROKER_BIN"; do
  [[ -x $f ]] || { echo "missing $f: build quorumq first, or set BUILD / QUORUMQ_BENCH_BIN / QUORUMQ_BROKER_BIN" >&2; exit 2; }
done
mkdir -p "$OUT" "$GO_BUILD_DIR"
GO_BUILD_DIR=$(cd "$GO_BUILD_DIR" && pwd)

# --- dependencies (idempotent) -------------------------------------------------------------
NATS_GO_SRC=/usr/share/gocode/src/github.com/nats-io/nats.go
missing=()
command -v nats-server > /dev/null || missing+=(nats-server)
[[ -x /usr/bin/go ]] || missing+=(golang-go)
[[ -d $NATS_GO_SRC ]] || missing+=(golang-github-nats-io-go-nats-dev)
if ((${#missing[@]})); then
  echo "installing ${missing[*]} with apt-get (log: $OUT/apt.log)"
  SUDO=(); ((EUID == 0)) || SUDO=(sudo)
  "${SUDO[@]}" apt-get install -y "${missing[@]}" > "$OUT/apt.log" 2>&1 ||
    { "${SUDO[@]}" apt-get update >> "$OUT/apt.log" 2>&1 && "${SUDO[@]}" apt-get install -y "${missing[@]}" >> "$OUT/apt.log" 2>&1; } ||
    { echo "apt-get install failed, see $OUT/apt.log" >&2; exit 1; }
else
  echo "dependencies: nats-server, golang-go, nats.go already installed"
fi

# --- natsbench (Debian's Go and nats.go, GOPATH mode: no module download) --------------------
NATSBENCH=$GO_BUILD_DIR/natsbench
echo "building $NATSBENCH"
GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$GO_BUILD_DIR/gocache GOFLAGS='' \
  /usr/bin/go build -o "$NATSBENCH" ./bench/nats/natsbench

# --- NATS servers: loopback ports, own temp dirs, stopped by PID ---------------------------
NATS_PIDS=()
NATS_DIR=
nats_stop() {
  local pid
  for pid in "${NATS_PIDS[@]}"; do kill "$pid" 2> /dev/null || true; done
  for pid in "${NATS_PIDS[@]}"; do wait "$pid" 2> /dev/null || true; done
  NATS_PIDS=()
  [[ -z $NATS_DIR ]] || rm -rf "$NATS_DIR"
  NATS_DIR=
}
trap 'nats_stop' EXIT
trap 'exit 130' INT TERM

port_busy() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }

# nats_start N: N servers (a JetStream cluster when N > 1); sets NATS_URLS.
nats_start() {
  local n=$1 i p routes=() urls=() route_list
  for ((i = 0; i < n; i++)); do
    for p in $((NATS_PORT + i)) $((NATS_CLUSTER_PORT + i)); do
      if port_busy "$p"; then echo "port $p is busy (another NATS? set NATS_PORT / NATS_CLUSTER_PORT)" >&2; return 1; fi
    done
    routes+=("nats-route://127.0.0.1:$((NATS_CLUSTER_PORT + i))")
    urls+=("nats://127.0.0.1:$((NATS_PORT + i))")
  done
  route_list=$(IFS=,; echo "${routes[*]}")
  NATS_URLS=$(IFS=,; echo "${urls[*]}")
  NATS_DIR=$(mktemp -d /tmp/quorumq-peers-nats-XXXXXX)
  for ((i = 0; i < n; i++)); do
    {
      echo "server_name: n$i"
      echo "listen: 127.0.0.1:$((NATS_PORT + i))"
      echo "jetstream { store_dir: \"$NATS_DIR/n$i\", max_file_store: 20GB, max_memory_store: 1GB }"
      if ((n > 1)); then
        echo "cluster { name: qqpeers, listen: 127.0.0.1:$((NATS_CLUSTER_PORT + i)), routes: [$route_list] }"
      fi
    } > "$NATS_DIR/n$i.conf"
    : > "$NATS_DIR/n$i.log" # exists before the wait below greps it (the & child opens it later)
    nats-server -c "$NATS_DIR/n$i.conf" > "$NATS_DIR/n$i.log" 2>&1 &
    NATS_PIDS+=($!)
  done
  # Wait for every server to listen; natsbench itself retries until JetStream takes the stream.
  local deadline=$((SECONDS + 30))
  for ((i = 0; i < n; i++)); do
    until grep -q "Server is ready" "$NATS_DIR/n$i.log"; do
      ((SECONDS < deadline)) || { echo "nats-server n$i did not start: $(tail -n 3 "$NATS_DIR/n$i.log")" >&2; return 1; }
      sleep 0.2
    done
  done
}

# --- steps -------------------------------------------------------------------------------------
STEPS_PER_ROUND=9
STEP_NO=0
ROUND=0
progress() {  # NAME SECONDS RESULT
  printf '[round %d/%d, step %d/%d] %-15s %3ds  %s\n' "$ROUND" "$ROUNDS" "$STEP_NO" "$STEPS_PER_ROUND" "$1" "$2" "$3"
}

qq() {  # NAME ARGS...: one quorumq-bench run
  local name=$1 t0=$SECONDS rc=0; shift
  STEP_NO=$((STEP_NO + 1))
  local cmd=("$BENCH" --quiet --duration "$DURATION" --size 1024 --acks quorum --consumers 0 --json "$OUT/r$ROUND-$name.json" "$@")
  printf '%s\t%s\n' "r$ROUND-$name" "quorumq-bench ${cmd[*]:1}" >> "$OUT/commands.txt"
  timeout "$STEP_TIMEOUT" "${cmd[@]}" > "$OUT/r$ROUND-$name.log" 2>&1 || rc=$?
  progress "$name" $((SECONDS - t0)) "$(python3 scripts/peers_bench.py headline "$OUT/r$ROUND-$name.json")$( ((rc == 0)) || echo " (exit $rc, see $OUT/r$ROUND-$name.log)")"
}

nats() {  # NAME REPLICAS MODES: one natsbench run against the servers started last
  local name=$1 replicas=$2 modes=$3 t0=$SECONDS rc=0
  STEP_NO=$((STEP_NO + 1))
  local cmd=("$NATSBENCH" -servers "$NATS_URLS" -replicas "$replicas" -modes "$modes" -duration "$DURATION"
    -size 1024 -window "$NATS_WINDOW" -fsync-dir "$NATS_DIR" -label "r$ROUND-$name")
  printf '%s\t%s\n' "r$ROUND-$name" "natsbench ${cmd[*]:1}" >> "$OUT/commands.txt"
  timeout "$STEP_TIMEOUT" "${cmd[@]}" > "$OUT/r$ROUND-$name.jsonl" 2> "$OUT/r$ROUND-$name.log" || rc=$?
  progress "$name" $((SECONDS - t0)) "$(python3 scripts/peers_bench.py headline "$OUT/r$ROUND-$name.jsonl")$( ((rc == 0)) || echo " (exit $rc, see $OUT/r$ROUND-$name.log)")"
}

quorumq_block() {
  qq qq-r3-async-1p --spawn 3 --partitions 1
  qq qq-r3-async-3p --spawn 3 --partitions 3
  qq qq-r3-sync --spawn 3 --partitions 1 --window 1 --linger-ms 0 --max-in-flight 1
  qq qq-r1-sync --spawn 1 --partitions 1 --window 1 --linger-ms 0 --max-in-flight 1
  qq qq-r1-async --spawn 1 --partitions 1
}

nats_block() {
  if nats_start 3; then
    nats nats-r3-async 3 pub-async,consume
    nats nats-r3-sync 3 pub-sync
  else
    STEP_NO=$((STEP_NO + 2)); echo "[round $ROUND/$ROUNDS] NATS cluster did not start: skipped its steps"
  fi
  nats_stop
  if nats_start 1; then
    nats nats-r1-sync 1 pub-sync
    nats nats-r1-async 1 pub-async
  else
    STEP_NO=$((STEP_NO + 2)); echo "[round $ROUND/$ROUNDS] NATS server did not start: skipped its steps"
  fi
  nats_stop
}

{
  echo "date=$(date '+%Y-%m-%d %H:%M %Z')"
  echo "nproc=$(nproc)"
  echo "kernel=$(uname -r)"
  echo "cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
  # The commit of the tree the binaries were built from (not necessarily this checkout's).
  bench_dir=$(dirname "$(readlink -f "$BENCH")")
  echo "quorumq=$("$BENCH" --version 2> /dev/null | awk '{print $NF}') at $(git -C "$bench_dir" rev-parse --short HEAD 2> /dev/null || echo '?')$(git -C "$bench_dir" diff --quiet HEAD 2> /dev/null || echo ' plus uncommitted changes') (the checkout holding $BENCH)"
  echo "nats_server=$(nats-server --version | awk '{print $NF}')"
  echo "go=$(/usr/bin/go version | awk '{print $3}')"
  echo "rounds=$ROUNDS"
  echo "duration=$DURATION"
  echo "nats_window=$NATS_WINDOW"
  echo "command=ROUNDS=$ROUNDS DURATION=$DURATION $COMMAND"
} > "$OUT/meta.txt"

echo "$ROUNDS rounds x $STEPS_PER_ROUND steps of ${DURATION} s (plus start-up); raw results in $OUT"
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  STEP_NO=0
  if ((ROUND % 2)); then quorumq_block; nats_block; else nats_block; quorumq_block; fi
done

echo
if ((WRITE_DOCS)); then
  python3 scripts/peers_bench.py summarize "$OUT" --write-docs "$DOC"
else
  python3 scripts/peers_bench.py summarize "$OUT"
fi
