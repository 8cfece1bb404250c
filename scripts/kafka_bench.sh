#!/usr/bin/env bash
# Kafka protocol vs native protocol on this machine, side by side in one run (issue 17: Kafka
# produce and fetch within 80% of native).
#
# For each round, each broker set (BROKERS, default "1 3": one broker, then three with topics of
# 3 replicas) and each partition count (PARTITIONS, default "1 3"), on a freshly started broker set
# (release build, --kafka-listen on every broker, loopback ports from BASE_PORT, temp data dir):
#   two fresh topics created with the quorumq CLI, then one step at a time (a progress line each):
#     native-produce   quorumq-bench --bootstrap ... --producers 1 --consumers 0 --messages N
#                      --size S --acks quorum (its own fsync probe of the data dir first)
#     kafka-produce    rdkbench produce (bench/kafka/rdkbench.c, librdkafka) through the Kafka
#                      listener, acks=all, same N, S, linger, batch, requests in flight and
#                      window as quorumq-bench; the same fsync probe just before it.
#                      Not idempotent by default (librdkafka's default): an idempotent librdkafka
#                      sends one ProduceRequest per partition at a time (its limit is 5 messages
#                      in flight, not 5 requests; librdkafka PR #4989), quorumq's SDK keeps 5.
#     kafka-produce-idem   with KAFKA_IDEMPOTENT_TOO=1: the same, enable.idempotence=true, into a
#                      third topic (produce figure only)
#     native-consume-ntopic / -ktopic   `quorumq consume T -e` (every partition, no group),
#                      counted and timed here, of the natively written / Kafka-written topic
#     kafka-consume-ntopic / -ktopic    rdkbench consume (librdkafka's simple consumer, no group)
#   Odd rounds run Kafka first (in the produce pair and in each consume pair), even rounds native.
# Every step's delivery reports / reads are checked: a failed message, an error, or a count that
# is not N marks the figure in the table. The disk throttles fsync after bursts, so produce
# figures carry the fsync mean probed just before them; ratios pair steps of the same round.
#
# Usage: scripts/kafka_bench.sh [--rounds N] [--messages N] [--size S] [--help]
#   env: ROUNDS=2 MESSAGES=500000 SIZE=1024 BROKERS="1 3" PARTITIONS="1 3"
#        LINGER_MS=5 BATCH_BYTES=262144 MAX_IN_FLIGHT=5 (both clients; quorumq-bench's defaults)
#        KAFKA_IDEMPOTENCE=0 (rdkbench's enable.idempotence) KAFKA_IDEMPOTENT_TOO=0 (1: the extra
#        idempotent Kafka produce step, about 20% more time)
#        BUILD=build/release (quorumq's build dir; never built here)
#        BASE_PORT=23000 (client BASE+i, admin BASE+100+i, peer BASE+200+i, Kafka BASE+300+i)
#        OUT=<dir for raw results and broker logs> (default a fresh /tmp/quorumq-kafka-bench-XXXXXX, kept)
#        RDK_BUILD_DIR=build/rdkbench (where rdkbench is compiled)
# Defaults take about 3-4 minutes. It installs librdkafka-dev and gcc with apt-get if missing,
# compiles rdkbench with gcc against Debian's librdkafka, starts and stops its own brokers (by
# PID, data removed after each broker set) and prints the Markdown table (also OUT/table.md).
set -euo pipefail

cd "$(dirname "$0")/.."
COMMAND="scripts/kafka_bench.sh${*:+ $*}"
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --messages) MESSAGES=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
ROUNDS=${ROUNDS:-2}
MESSAGES=${MESSAGES:-500000}
SIZE=${SIZE:-1024}
BROKERS=${BROKERS:-"1 3"}
PARTITIONS=${PARTITIONS:-"1 3"}
LINGER_MS=${LINGER_MS:-5}
BATCH_BYTES=${BATCH_BYTES:-262144}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-5}
KAFKA_IDEMPOTENCE=${KAFKA_IDEMPOTENCE:-0}
KAFKA_IDEMPOTENT_TOO=${KAFKA_IDEMPOTENT_TOO:-0}
BUILD=${BUILD:-build/release}
BENCH=$BUILD/bench/quorumq-bench
BROKER_BIN=$BUILD/broker/quorumq-broker
CLI=$BUILD/client/cli/quorumq
BASE_PORT=${BASE_PORT:-23000}
RDK_BUILD_DIR=${RDK_BUILD_DIR:-build/rdkbench}
OUT=${OUT:-$(mktemp -d /tmp/quorumq-kafka-bench-XXXXXX)}
HELPER=scripts/kafka_bench.py
for v in ROUNDS MESSAGES SIZE LINGER_MS BATCH_BYTES MAX_IN_FLIGHT BASE_PORT KAFKA_IDEMPOTENCE KAFKA_IDEMPOTENT_TOO; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a non-negative integer" >&2; exit 2; }
done
((ROUNDS >= 1 && MESSAGES >= 1 && SIZE >= 32)) || { echo "ROUNDS and MESSAGES >= 1, SIZE >= 32" >&2; exit 2; }
for f in "$BENCH" "$BROKER_BIN" "$CLI"; do
  [[ -x $f ]] || { echo "missing $f: build quorumq first (release preset), or set BUILD" >&2; exit 2; }
done
# A step may take: N at 2,000 msg/s, plus start-up.
STEP_TIMEOUT=$((MESSAGES / 2000 + 120))
mkdir -p "$OUT" "$RDK_BUILD_DIR"
OUT=$(cd "$OUT" && pwd)

# --- dependencies (idempotent) -------------------------------------------------------------
missing=()
[[ -f /usr/include/librdkafka/rdkafka.h ]] || missing+=(librdkafka-dev)
command -v gcc > /dev/null || missing+=(gcc)
if ((${#missing[@]})); then
  echo "installing ${missing[*]} with apt-get (log: $OUT/apt.log)"
  SUDO=(); ((EUID == 0)) || SUDO=(sudo)
  "${SUDO[@]}" apt-get install -y "${missing[@]}" > "$OUT/apt.log" 2>&1 ||
    { "${SUDO[@]}" apt-get update >> "$OUT/apt.log" 2>&1 && "${SUDO[@]}" apt-get install -y "${missing[@]}" >> "$OUT/apt.log" 2>&1; } ||
    { echo "apt-get install failed, see $OUT/apt.log" >&2; exit 1; }
else
  echo "dependencies: librdkafka-dev, gcc already installed"
fi
RDKBENCH=$RDK_BUILD_DIR/rdkbench
echo "building $RDKBENCH"
gcc -O2 -Wall -Wextra -o "$RDKBENCH" bench/kafka/rdkbench.c -lrdkafka

# --- brokers: loopback ports, own temp data dir, stopped by PID ----------------------------
PIDS=()
DATA=
BOOT=
KBOOT=
cluster_stop() {
  local pid i
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
  done
  PIDS=()
  [[ -z $DATA ]] || rm -rf "$DATA"
  DATA=
}
trap 'cluster_stop' EXIT
trap 'exit 130' INT TERM

port_busy() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }

# cluster_start N TAG: N brokers (a cluster with a shared secret when N > 1); sets BOOT, KBOOT.
cluster_start() {
  local n=$1 tag=$2 i p peers= args
  for ((i = 1; i <= n; i++)); do
    for p in $((BASE_PORT + i)) $((BASE_PORT + 100 + i)) $((BASE_PORT + 200 + i)) $((BASE_PORT + 300 + i)); do
      if port_busy "$p"; then echo "port $p is busy (set BASE_PORT)" >&2; return 1; fi
    done
    peers+="${peers:+,}$i@127.0.0.1:$((BASE_PORT + 200 + i))"
  done
  DATA=$(mktemp -d /tmp/quorumq-kafka-bench-data-XXXXXX)
  (umask 077; head -c 32 /dev/urandom | base64 > "$DATA/cluster.secret")
  BOOT=
  KBOOT=
  ADMIN_PORTS=()
  for ((i = 1; i <= n; i++)); do
    ADMIN_PORTS+=($((BASE_PORT + 100 + i)))
    args=(--node-id "$i" --listen "127.0.0.1:$((BASE_PORT + i))" --admin-listen "127.0.0.1:$((BASE_PORT + 100 + i))"
      --kafka-listen "127.0.0.1:$((BASE_PORT + 300 + i))" --data-dir "$DATA/b$i" --log-level warn)
    ((n == 1)) || args+=(--peers "$peers" --cluster-secret-file "$DATA/cluster.secret")
    "$BROKER_BIN" "${args[@]}" > "$OUT/$tag-broker$i.log" 2>&1 &
    PIDS+=($!)
    BOOT+="${BOOT:+,}127.0.0.1:$((BASE_PORT + i))"
    KBOOT+="${KBOOT:+,}127.0.0.1:$((BASE_PORT + 300 + i))"
  done
  local deadline=$((SECONDS + 30))
  for ((i = 1; i <= n; i++)); do
    until python3 "$HELPER" ready $((BASE_PORT + 100 + i)) 1; do
      if ! kill -0 "${PIDS[i - 1]}" 2> /dev/null || ((SECONDS >= deadline)); then
        echo "broker $i did not become ready: $(tail -n 3 "$OUT/$tag-broker$i.log")" >&2
        return 1
      fi
    done
  done
}

# topic_create NAME PARTITIONS REPLICAS: asks each broker in turn (only the controller creates),
# then waits until every partition has a leader.
topic_create() {
  local name=$1 parts=$2 reps=$3 addr deadline=$((SECONDS + 60)) err=
  while :; do
    for addr in ${BOOT//,/ }; do
      if err=$("$CLI" -b "$addr" topic create "$name" --partitions "$parts" --replicas "$reps" 2>&1); then break 2; fi
    done
    ((SECONDS < deadline)) || { echo "topic create $name: $err" >&2; return 1; }
    sleep 0.2
  done
  until "$CLI" -b "$BOOT" --json topic describe "$name" 2> /dev/null | python3 "$HELPER" topic-ready "$parts"; do
    ((SECONDS < deadline)) || { echo "topic $name: not every partition has a leader after 60 s" >&2; return 1; }
    sleep 0.1
  done
}

# --- steps -------------------------------------------------------------------------------------
STEPS_PER_SETUP=$((6 + (KAFKA_IDEMPOTENT_TOO ? 1 : 0)))
ROUND=0
SETUP=
STEP_NO=0
progress() {  # NAME SECONDS RESULT
  printf '[round %d/%d, %s, step %d/%d] %-21s %3ds  %s\n' "$ROUND" "$ROUNDS" "$SETUP" "$STEP_NO" "$STEPS_PER_SETUP" "$1" "$2" "$3"
}

# run_step NAME CMD...: runs CMD with the step timeout; stdout to PREFIX-NAME.json (unless the
# command writes it itself), stderr to PREFIX-NAME.log, exit status to PREFIX-NAME.rc.
run_step() {
  local name=$1 t0=$SECONDS rc=0; shift
  STEP_NO=$((STEP_NO + 1))
  local base=$OUT/$PREFIX-$name el0
  printf '%s\t%s\n' "$PREFIX-$name" "$*" >> "$OUT/commands.txt"
  el0=$(python3 "$HELPER" elections "${ADMIN_PORTS[@]}")
  if [[ $name == native-produce || $name == native-consume-* ]]; then
    timeout --kill-after=10 "$STEP_TIMEOUT" "$@" > "$base.log" 2>&1 || rc=$?
  else
    timeout --kill-after=10 "$STEP_TIMEOUT" "$@" > "$base.json" 2> "$base.log" || rc=$?
  fi
  echo "$rc" > "$base.rc"
  echo "$el0 $(python3 "$HELPER" elections "${ADMIN_PORTS[@]}")" > "$base.elections"
  progress "$name" $((SECONDS - t0)) "$(python3 "$HELPER" headline "$base.json" "$MESSAGES")$( ((rc == 0)) || echo " (exit $rc, see $base.log)")"
}

native_produce() {
  run_step native-produce "$BENCH" --bootstrap "$BOOT" --topic "$NTOPIC" --producers 1 --consumers 0 \
    --messages "$MESSAGES" --duration 0 --size "$SIZE" --partitions "$P" --acks quorum \
    --linger-ms "$LINGER_MS" --batch-bytes "$BATCH_BYTES" --max-in-flight "$MAX_IN_FLIGHT" \
    --fsync-dir "$DATA" --quiet --json "$OUT/$PREFIX-native-produce.json"
}

kafka_produce() {  # [-idem]: the idempotent variant into its own topic
  local step=kafka-produce${1:-} topic=$KTOPIC idem=$KAFKA_IDEMPOTENCE
  [[ -z ${1:-} ]] || { topic=$ITOPIC; idem=1; }
  python3 "$HELPER" fsync "$DATA" > "$OUT/$PREFIX-$step-fsync.json"
  run_step "$step" "$RDKBENCH" produce --bootstrap "$KBOOT" --topic "$topic" --messages "$MESSAGES" \
    --size "$SIZE" --acks all --linger-ms "$LINGER_MS" --batch-size "$BATCH_BYTES" --max-in-flight "$MAX_IN_FLIGHT" \
    --idempotence "$idem" --label "$PREFIX-$step"
}

native_consume() {  # ntopic|ktopic TOPIC
  run_step "native-consume-$1" python3 "$HELPER" cli-consume --expect "$MESSAGES" --json "$OUT/$PREFIX-native-consume-$1.json" \
    -- "$CLI" -b "$BOOT" consume "$2" -e -f '%o\n'
}

kafka_consume() {  # ntopic|ktopic TOPIC
  run_step "kafka-consume-$1" "$RDKBENCH" consume --bootstrap "$KBOOT" --topic "$2" --label "$PREFIX-kafka-consume-$1"
}

setup_steps() {  # B P: one broker set's steps for one partition count (brokers running)
  local b=$1 reps
  P=$2
  reps=$((b < 3 ? b : 3))
  SETUP="$b broker(s) R$reps, $P partition(s)"
  STEP_NO=0
  PREFIX=r$ROUND-b$b-p$P
  NTOPIC=native-$PREFIX
  KTOPIC=kafka-$PREFIX
  ITOPIC=kafkaidem-$PREFIX
  if ! topic_create "$NTOPIC" "$P" "$reps" || ! topic_create "$KTOPIC" "$P" "$reps" ||
    { ((KAFKA_IDEMPOTENT_TOO)) && ! topic_create "$ITOPIC" "$P" "$reps"; }; then
    echo "[round $ROUND/$ROUNDS, $SETUP] topics not created: skipped its steps"
    return
  fi
  if ((ROUND % 2)); then
    kafka_produce; ((KAFKA_IDEMPOTENT_TOO == 0)) || kafka_produce -idem; native_produce
    kafka_consume ntopic "$NTOPIC"; native_consume ntopic "$NTOPIC"
    kafka_consume ktopic "$KTOPIC"; native_consume ktopic "$KTOPIC"
  else
    native_produce; kafka_produce; ((KAFKA_IDEMPOTENT_TOO == 0)) || kafka_produce -idem
    native_consume ntopic "$NTOPIC"; kafka_consume ntopic "$NTOPIC"
    native_consume ktopic "$KTOPIC"; kafka_consume ktopic "$KTOPIC"
  fi
}

{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc=$(nproc)"
  echo "kernel=$(uname -r)"
  echo "cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
  echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
  bench_dir=$(dirname "$(readlink -f "$BENCH")")
  echo "quorumq=$("$BENCH" --version 2> /dev/null | awk '{print $NF}') at $(git -C "$bench_dir" rev-parse --short HEAD 2> /dev/null || echo '?')$(git -C "$bench_dir" diff --quiet HEAD 2> /dev/null || echo ' plus uncommitted changes') (the checkout holding $BENCH)"
  echo "librdkafka=$(dpkg-query -W -f '${Version}' librdkafka-dev 2> /dev/null || echo '?')"
  echo "rounds=$ROUNDS"
  echo "messages=$MESSAGES"
  echo "size=$SIZE"
  echo "brokers=$BROKERS"
  echo "partitions=$PARTITIONS"
  echo "linger_ms=$LINGER_MS"
  echo "batch_bytes=$BATCH_BYTES"
  echo "max_in_flight=$MAX_IN_FLIGHT"
  echo "kafka_idempotence=$KAFKA_IDEMPOTENCE"
  echo "kafka_idempotent_too=$KAFKA_IDEMPOTENT_TOO"
  echo "command=ROUNDS=$ROUNDS MESSAGES=$MESSAGES SIZE=$SIZE BROKERS=\"$BROKERS\" PARTITIONS=\"$PARTITIONS\" KAFKA_IDEMPOTENCE=$KAFKA_IDEMPOTENCE KAFKA_IDEMPOTENT_TOO=$KAFKA_IDEMPOTENT_TOO $COMMAND"
} > "$OUT/meta.txt"

n_setups=$(($(wc -w <<< "$BROKERS") * $(wc -w <<< "$PARTITIONS")))
echo "$ROUNDS rounds x $n_setups setups x $STEPS_PER_SETUP steps, $MESSAGES x $SIZE B per run; raw results and broker logs in $OUT"
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  for b in $BROKERS; do
    if ! cluster_start "$b" "r$ROUND-b$b"; then
      echo "[round $ROUND/$ROUNDS] $b broker(s) did not start: skipped"
      cluster_stop
      continue
    fi
    for p in $PARTITIONS; do setup_steps "$b" "$p"; done
    cluster_stop
  done
done

echo
python3 "$HELPER" summarize "$OUT"
# Anything the brokers logged at warn or above during the run (they run with --log-level warn).
warned=$(cat "$OUT"/r*-broker*.log 2> /dev/null | grep -c . || true)
echo
echo "broker logs: $warned line(s) at warn or above (in $OUT/r*-broker*.log); table also in $OUT/table.md"
