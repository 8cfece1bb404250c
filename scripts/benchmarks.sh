#!/usr/bin/env bash
# Regenerates the "Load generator" part of docs/benchmarks.md: runs quorumq-bench for the cases
# issue 5 lists (single node and 3 brokers, 1 KiB and 16 KiB, acks leader vs quorum, open loop at
# 50% of the measured maximum, one message at a time, a chaos run) and writes their figures, the
# exact commands and what else was running between the markers
#   <!-- load-generator:begin --> ... <!-- load-generator:end -->
# (appended if missing). The rest of the file (the Storage section) is left alone.
#
# Usage: scripts/benchmarks.sh [BUILD_DIR]     (default build/h-bench; RelWithDebInfo)
#   DURATION=10 CHAOS_DURATION=30 scripts/benchmarks.sh
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${1:-build/h-bench}
BENCH=$BUILD/bench/quorumq-bench
BROKER=$BUILD/broker/quorumq-broker
DURATION=${DURATION:-10}
CHAOS_DURATION=${CHAOS_DURATION:-30}
OUT=${OUT:-$(mktemp -d /tmp/quorumq-benchmarks-XXXXXX)}
DOC=docs/benchmarks.md
for f in "$BENCH" "$BROKER"; do
  [[ -x $f ]] || { echo "missing $f: cmake --build $BUILD --target quorumq-bench quorumq-broker" >&2; exit 2; }
done
export QUORUMQ_BROKER_BIN=$BROKER
mkdir -p "$OUT"
: > "$OUT/commands.txt"
: > "$OUT/others.txt"

# What else runs on the machine while we measure (the 2 cores are shared): the processes above
# 5% CPU over half a second (top's second frame; ps would give lifetime averages), before each case.
others() {
  top -b -n 2 -d 0.5 -w 200 | awk '/^top -/ {frame++}
    frame == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 > 5 && $12 !~ /quorumq-(bench|broker)|^top$/ {printf "%s(%s%%) ", $12, $9}' | head -c 300
}

# run NAME ARGS...: one bench run, its JSON in $OUT/NAME.json, its output in $OUT/NAME.txt.
run() {
  local name=$1; shift
  local cmd=("$BENCH" --quiet --json "$OUT/$name.json" "$@")
  echo "== $name: ${cmd[*]}" >&2
  printf '%s\t%s\n' "$name" "quorumq-bench $*" >> "$OUT/commands.txt"
  printf '%s\t%s\n' "$name" "$(others)" >> "$OUT/others.txt"
  "${cmd[@]}" > "$OUT/$name.txt" 2>&1 || echo "   (exit $?; see $OUT/$name.txt)" >&2
  tail -n 3 "$OUT/$name.txt" >&2
}

max_rate() {  # acked msgs/s of a finished run
  python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["produce"]["msgs_per_s"]))' "$OUT/$1.json"
}

D=(--duration "$DURATION")
# Throughput: closed loop with batching (linger 5 ms, 256 KiB batches, 5 in flight: the defaults).
run n1-1k-leader   --spawn 1 "${D[@]}" --size 1024  --acks leader --partitions 3
# The issue 3 configuration: two producers and consumers over four partitions.
run n1-1k-leader-2p --spawn 1 "${D[@]}" --size 1024 --acks leader --partitions 4 --producers 2 --consumers 2
run n1-16k-leader  --spawn 1 "${D[@]}" --size 16384 --acks leader --partitions 3
run n3-1k-leader   --spawn 3 "${D[@]}" --size 1024  --acks leader --partitions 3
run n3-1k-quorum   --spawn 3 "${D[@]}" --size 1024  --acks quorum --partitions 3
run n3-16k-leader  --spawn 3 "${D[@]}" --size 16384 --acks leader --partitions 3
run n3-16k-quorum  --spawn 3 "${D[@]}" --size 16384 --acks quorum --partitions 3
# Latency: open loop at half the maximum just measured (latency from the intended send time).
half1=$(( $(max_rate n1-1k-leader-2p) / 2 ))
half3=$(( $(max_rate n3-1k-quorum) / 2 ))
run n1-1k-leader-2p-open50 --spawn 1 "${D[@]}" --size 1024 --acks leader --partitions 4 --producers 2 --consumers 2 --rate "$half1"
run n3-1k-quorum-open50 --spawn 3 "${D[@]}" --size 1024 --acks quorum --partitions 3 --rate "$half3"
# One message at a time (no batching, one in flight): the replication round trip itself.
run n3-1k-quorum-single --spawn 3 "${D[@]}" --size 1024 --acks quorum --partitions 1 --window 1 --linger-ms 0 --max-in-flight 1
# Availability: kill the leader of a partition every 5 s (restarted 2.5 s later), open loop.
run n3-chaos-kill  --spawn 3 --duration "$CHAOS_DURATION" --size 1024 --acks quorum --partitions 3 --rate 5000 --chaos kill-leader:5
run n3-chaos-pause --spawn 3 --duration "$CHAOS_DURATION" --size 1024 --acks quorum --partitions 3 --rate 5000 --chaos pause-leader:5:2

python3 - "$OUT" "$DOC" <<'PY'
# Turns the JSON results into the markdown section (between the markers) of docs/benchmarks.md.
import json, os, sys
out, doc = sys.argv[1], sys.argv[2]
cmds = dict(l.rstrip("\n").split("\t", 1) for l in open(os.path.join(out, "commands.txt")))
others = dict((l.rstrip("\n").split("\t", 1) + [""])[:2] for l in open(os.path.join(out, "others.txt")))
def load(n):
    try: return json.load(open(os.path.join(out, n + ".json")))
    except Exception: return None
def ms(us): return "%.2f" % (us / 1000.0)
rows, first = [], None
for name in cmds:
    j = load(name)
    if j is None:
        rows.append("| %s | (failed: see the run's output) |||||||||" % name); continue
    first = first or j
    s, p, v, m = j["settings"], j["produce"], j["verify"], j["machine"]
    a, e = p["ack_latency"], j["consume"]["e2e_latency"]
    mode = "open %d/s" % s["rate"] if s["mode"] == "open" else ("1 at a time" if s["window"] == 1 else "closed")
    rows.append("| %s | %d | %d B | %s | %s | %.0f | %.1f | %s / %s / %s / %s | %s / %s | %s | %.0f | %s |" % (
        name, m["brokers"], s["size_bytes"], s["acks"], mode, p["msgs_per_s"], p["mb_per_s"],
        ms(a["p50_us"]), ms(a["p90_us"]), ms(a["p99_us"]), ms(a["max_us"]), ms(e["p50_us"]), ms(e["p99_us"]),
        "lost=%d dup=%d reord=%d" % (v["lost"], v["duplicated"], v["reordered"]) if v["ran"] else "-",
        m["fsync_per_s"] or 0, m["loadavg_before"]))
chaos = []
for name in cmds:
    j = load(name)
    if not j or not j.get("chaos"): continue
    c = j["chaos"]
    chaos.append("| %s | %s | %d | %d | %.3f | %.3f | %.3f | %.1f | %.5f | %s |" % (
        name, c["spec"], c["faults"], c["windows"], c["mttr_mean_s"], c["mttr_p99_s"], c["mttr_max_s"], c["mtbf_s"],
        c["availability"], " ".join("p%d=%.5f" % (q["partition"], q["availability"]) for q in c["partitions"])))
lines = ["<!-- load-generator:begin -->", "## Load generator (quorumq-bench)", "",
 "Generated by `scripts/benchmarks.sh` (do not edit between the markers by hand). Each row is one",
 "`quorumq-bench --spawn N` run on this machine (%d cores); brokers and the bench share the cores." % (first["machine"]["cores"] if first else 0),
 "Latencies are ms: produce-ack p50 / p90 / p99 / max and end-to-end p50 / p99. `fsync/s` is the",
 "data directory's ceiling probed just before the run; `load` is the 1/5/15-minute load average",
 "when the run started (anything above ~2 means other builds and tests were competing for the cores).", "",
 "| case | brokers | size | acks | mode | msg/s | MB/s | ack p50/p90/p99/max | e2e p50/p99 | verify | fsync/s | load |",
 "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"] + rows
if chaos:
    lines += ["", "### Availability under faults", "",
      "Unavailability window = fault -> first acknowledgement on that partition of a message sent after the fault;",
      "MTTR over every (fault, affected partition); availability = MTBF / (MTBF + MTTR) with MTBF = the fault interval.", "",
      "| case | chaos | faults | outages | MTTR mean s | p99 s | max s | MTBF s | availability | per partition |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"] + chaos
lines += ["", "### Exact commands", "", "```"] + [cmds[n] for n in cmds] + ["```", "",
  "### What else was running (processes above 5% CPU over 0.5 s, sampled just before each case)", ""]
lines += ["- %s: %s" % (n, others.get(n, "").strip() or "nothing notable") for n in cmds]
lines += ["<!-- load-generator:end -->"]
section = "\n".join(lines) + "\n"
text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
b, e = "<!-- load-generator:begin -->", "<!-- load-generator:end -->"
if b in text and e in text:
    text = text[:text.index(b)] + section.rstrip("\n") + text[text.index(e) + len(e):]
else:
    text = text.rstrip("\n") + "\n\n" + section
open(doc, "w").write(text)
PY
echo "results in $OUT; $DOC updated" >&2
