#!/bin/bash
# Per-step latency budget of one-at-a-time produces (issue 16): runs quorumq-bench one message at
# a time against N spawned brokers, records the syscalls that mark each step with `perf record`
# (kernel timestamps; far lighter than strace), and prints microseconds per step
# (scripts/latency_budget.py). Needs root (system-wide perf) and perf (apt-get install linux-perf).
# Usage: scripts/latency_budget.sh [BROKERS=1] [BUILD_DIR=build/release] [SECONDS=3]
set -euo pipefail
N=${1:-1}; BUILD=${2:-build/release}; SECS=${3:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=$BUILD/bench/quorumq-bench
[ -x "$BENCH" ] || { echo "no $BENCH: build first (cmake --build --preset release)" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf not found: apt-get install -y linux-perf" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root: perf records system-wide syscall tracepoints" >&2; exit 1; }
OUT=$(mktemp -d /tmp/qq-latency.XXXXXX)
trap 'kill $BPID 2>/dev/null || true; wait $BPID 2>/dev/null || true' EXIT
echo "[$(date +%T)] bench: $N broker(s), one message at a time, acks=quorum; output in $OUT"
stdbuf -oL -eL "$BENCH" --spawn "$N" --window 1 --linger-ms 0 --max-in-flight 1 --partitions 1 --consumers 0 \
  --acks quorum --duration $((SECS + 10)) --quiet --json "$OUT/bench.json" >"$OUT/bench.out" 2>&1 &
BPID=$!
for _ in $(seq 1 600); do grep -q 'closed loop\|open loop' "$OUT/bench.out" 2>/dev/null && break; sleep 0.1; done
sleep 2  # past the first produce's metadata lookups and connection set-up
echo "[$(date +%T)] recording ${SECS}s of syscalls"
perf record -a -q -o "$OUT/perf.data" -e 'syscalls:sys_enter_sendmsg,syscalls:sys_exit_recvfrom,syscalls:sys_enter_fdatasync,syscalls:sys_exit_fdatasync,syscalls:sys_enter_pwrite64,syscalls:sys_exit_pwrite64,syscalls:sys_enter_writev' -- sleep "$SECS"
perf script -i "$OUT/perf.data" -F comm,pid,tid,time,event,trace >"$OUT/perf.txt" 2>/dev/null
echo "[$(date +%T)] waiting for the bench to finish"
wait $BPID || true
grep -E 'fsync ceiling|^  ack' "$OUT/bench.out" || true
python3 "$HERE/latency_budget.py" "$OUT/perf.txt" --json "$OUT/budget.json"
