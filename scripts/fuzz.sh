#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang (outside CMake: the fuzzers need clang's
# -fsanitize=fuzzer, the main build uses g++), replays every saved regression input, then runs
# each target for SECONDS (default 20). Exits non-zero on any crash, leak, sanitizer report or
# timeout. A crash input lands in build/fuzz/artifacts/<target>/: fix the bug, then copy the
# input into tests/fuzz/regressions/<target>/ so every later run replays it.
#
# usage: scripts/fuzz.sh [seconds]      build, replay regressions, fuzz
#        scripts/fuzz.sh --seeds        regenerate tests/fuzz/seeds/ (after a schema change)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/build/fuzz
CXX=${CXX_FUZZ:-clang++}
SECONDS_PER_TARGET=20
MODE=fuzz
case "${1:-}" in
  --seeds) MODE=seeds ;;
  "") ;;
  *[!0-9]*) echo "usage: $0 [seconds] | --seeds" >&2; exit 2 ;;
  *) SECONDS_PER_TARGET=$1 ;;
esac
TARGETS=(fuzz_frame_decoder fuzz_verify fuzz_record_batch fuzz_peer fuzz_kafka_batch fuzz_kafka_request fuzz_scram)
JOBS=$(( $(nproc) < 2 ? 1 : 2 ))

mkdir -p "$OUT/gen/quorumq/protocol" "$OUT/gen/quorumq/broker" "$OUT/obj"
# The generated headers live only in build trees, as in the CMake build.
flatc --cpp --scoped-enums -o "$OUT/gen/quorumq/protocol" "$ROOT/protocol/schema/quorumq.fbs"
flatc --cpp --scoped-enums -o "$OUT/gen/quorumq/broker" "$ROOT/broker/schema/raft.fbs"

COMMON=(-std=c++20 -O1 -g -Wall -Wextra -Werror -Wno-missing-field-initializers
        -fno-omit-frame-pointer -I"$ROOT/protocol/include" -I"$OUT/gen")
# Undefined behaviour is a crash here, not a warning that scrolls by.
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
LIB_SRCS=("$ROOT"/protocol/src/*.cc)

echo "fuzz: compiling protocol sources with $CXX"
printf '%s\n' "${LIB_SRCS[@]}" | xargs -P "$JOBS" -I{} sh -c \
  'f="$1"; shift; exec "$@" -c "$f" -o "'"$OUT"'/obj/$(basename "$f" .cc).o"' _ {} \
  "$CXX" "${COMMON[@]}" "${SAN[@]}" -fsanitize=fuzzer-no-link
LIB_OBJS=()
for s in "${LIB_SRCS[@]}"; do LIB_OBJS+=("$OUT/obj/$(basename "$s" .cc).o"); done
# fuzz_peer: the peer listener's decoders (envelope codec, handshake) from broker/.
PEER_INC=(-I"$ROOT/broker/src/replication" -I"$ROOT/broker/src/common" -I"$ROOT/broker/raft/include")
PEER_SRCS=("$ROOT/broker/src/replication/raft_codec.cc" "$ROOT/broker/src/replication/peer_auth.cc")
PEER_OBJS=()
for s in "${PEER_SRCS[@]}"; do
  o="$OUT/obj/peer_$(basename "$s" .cc).o"
  "$CXX" "${COMMON[@]}" "${PEER_INC[@]}" "${SAN[@]}" -fsanitize=fuzzer-no-link -c "$s" -o "$o"
  PEER_OBJS+=("$o")
done
# fuzz_scram: the SCRAM exchange (protocol/src/scram.cc, with Debian's libcrypto).
# fuzz_kafka_batch, fuzz_kafka_request: the Kafka listener's decoders from broker/src/kafka/,
# with the compression codecs (Debian's zlib, snappy, lz4, zstd, not instrumented: the fuzzer
# explores our use of them, the output limit and the framing around them).
KAFKA_INC=(-I"$ROOT/broker/src/kafka")
KAFKA_LIBS=(-lz -lsnappy -llz4 -lzstd)
KAFKA_OBJS=()
for s in "$ROOT/broker/src/kafka/kafka_wire.cc" "$ROOT/broker/src/kafka/kafka_batch.cc" "$ROOT/broker/src/kafka/kafka_requests.cc" \
         "$ROOT/broker/src/kafka/kafka_compression.cc" "$ROOT/broker/src/kafka/kafka_group_requests.cc"; do
  o="$OUT/obj/kafka_$(basename "$s" .cc).o"
  "$CXX" "${COMMON[@]}" "${KAFKA_INC[@]}" "${SAN[@]}" -fsanitize=fuzzer-no-link -c "$s" -o "$o"
  KAFKA_OBJS+=("$o")
done
extra_for() {  # extra compile/link arguments of one target
  if [[ $1 == fuzz_peer ]]; then echo "${PEER_INC[*]} ${PEER_OBJS[*]} -lcrypto"; fi
  if [[ $1 == fuzz_kafka_batch || $1 == fuzz_kafka_request ]]; then echo "${KAFKA_INC[*]} ${KAFKA_OBJS[*]} ${KAFKA_LIBS[*]}"; fi
}

if [[ $MODE == seeds ]]; then
  "$CXX" "${COMMON[@]}" "${SAN[@]}" "$ROOT/tests/fuzz/make_seeds.cc" "${LIB_OBJS[@]}" -lcrypto -o "$OUT/make_seeds"
  for t in "${TARGETS[@]}"; do mkdir -p "$ROOT/tests/fuzz/seeds/$t"; done
  (cd "$ROOT" && "$OUT/make_seeds" tests/fuzz/seeds)
  "$CXX" "${COMMON[@]}" "${PEER_INC[@]}" "${SAN[@]}" "$ROOT/tests/fuzz/make_peer_seeds.cc" "${LIB_OBJS[@]}" \
    "${PEER_OBJS[@]}" -lcrypto -o "$OUT/make_peer_seeds"
  (cd "$ROOT" && "$OUT/make_peer_seeds" tests/fuzz/seeds/fuzz_peer)
  echo "fuzz: seeds written to tests/fuzz/seeds/"
  exit 0
fi

for t in "${TARGETS[@]}"; do
  echo "fuzz: building $t"
  # shellcheck disable=SC2046
  "$CXX" "${COMMON[@]}" "${SAN[@]}" -fsanitize=fuzzer "$ROOT/tests/fuzz/$t.cc" "${LIB_OBJS[@]}" $(extra_for "$t") -lcrypto -o "$OUT/$t"
done

status=0
for t in "${TARGETS[@]}"; do
  reg="$ROOT/tests/fuzz/regressions/$t"
  corpus="$OUT/corpus/$t"
  art="$OUT/artifacts/$t"
  mkdir -p "$corpus" "$art"
  log="$OUT/$t.log"
  # 1. Replay every input that once crashed: each must now pass.
  if compgen -G "$reg/[!.]*" >/dev/null; then
    if ! "$OUT/$t" -runs=1 "$reg"/[!.]* >"$OUT/$t.regressions.log" 2>&1; then
      echo "fuzz: $t FAILED replaying regressions (see $OUT/$t.regressions.log)"
      status=1
      continue
    fi
    replayed=$(find "$reg" -type f ! -name ".*" | wc -l)
  else
    replayed=0
  fi
  # Known findings in code we may not change yet (tests/fuzz/pending/README.md): report only.
  pend="$ROOT/tests/fuzz/pending/$t"
  if compgen -G "$pend/*" >/dev/null; then
    for f in "$pend"/*; do
      if "$OUT/$t" -runs=1 "$f" >/dev/null 2>&1; then
        echo "fuzz: $t: pending input $(basename "$f") passes now: move it to regressions/"
      else
        echo "fuzz: $t: pending input $(basename "$f") still crashes (known, see tests/fuzz/pending/README.md)"
      fi
    done
  fi
  # 2. Fuzz: new corpus entries go to build/fuzz/corpus/<t> (first dir); seeds are read only.
  if "$OUT/$t" "$corpus" "$ROOT/tests/fuzz/seeds/$t" -max_total_time="$SECONDS_PER_TARGET" \
       -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
       -artifact_prefix="$art/" >"$log" 2>&1; then
    execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    echo "fuzz: $t ok: ${execs:-?} execs in ${SECONDS_PER_TARGET}s, cov ${cov:-?}, $replayed regressions replayed"
  else
    echo "fuzz: $t FAILED: crash input(s) in $art/ (log: $log)"
    grep -m3 -E 'ERROR|runtime error|SUMMARY' "$log" | sed 's/^/fuzz:   /' || true
    status=1
  fi
done
exit $status
