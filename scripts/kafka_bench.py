#!/usr/bin/env python3
"""Helpers of scripts/kafka_bench.sh (Kafka-protocol vs native, issue 17) and its table.

  kafka_bench.py fsync DIR [SECONDS]       probe DIR's fsync like quorumq-bench does (4 KiB pwrite
                                           at offset 0 + fdatasync, for 1 s); one JSON line
  kafka_bench.py ready PORT [SECONDS]      wait until http://127.0.0.1:PORT/readyz answers 200
  kafka_bench.py topic-ready PARTITIONS    stdin: `quorumq --json topic describe T`; exit 0 if
                                           every one of PARTITIONS partitions has a leader
  kafka_bench.py cli-consume --expect N --json FILE -- CMD...
                                           run a `quorumq consume ... -e -f '%o\\n'` command, count
                                           its lines, time them (from start and from the first line)
  kafka_bench.py elections ADMIN_PORT...   the brokers' quorumq_raft_elections_started_total, summed
  kafka_bench.py headline FILE [EXPECT]    one line for the progress output of a finished step
  kafka_bench.py summarize OUT_DIR         the Markdown tables (also written to OUT_DIR/table.md)

OUT_DIR holds per round R, brokers B and partitions P the files rR-bB-pP-STEP.json, STEP one of
native-produce (quorumq-bench --json), kafka-produce and kafka-produce-idem (rdkbench, the second
only with KAFKA_IDEMPOTENT_TOO=1), kafka-produce[-idem]-fsync (the probe run just before it), {native,kafka}-consume-{ntopic,ktopic} (quorumq CLI timed here / rdkbench:
the topic written by the native producer / by the Kafka producer of that round), each with a .rc
file (the step's exit status) and a .elections file (Raft elections the brokers started during the
step: with no faults injected, each is a spurious one that stalls its partition), and meta.txt. Ratios are Kafka / native within one round.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request

GOAL = 0.80

# (key, figure, unit, native step, native path, Kafka step, Kafka path, higher is better)
FIGURES = [
    ("produce", "produce", "msg/s", "native-produce", ("produce", "msgs_per_s"),
     "kafka-produce", ("msgs_per_s",), True),
    ("produce-idem", "produce, Kafka idempotent", "msg/s", "native-produce", ("produce", "msgs_per_s"),
     "kafka-produce-idem", ("msgs_per_s",), True),
    ("p50", "produce ack p50", "µs", "native-produce", ("produce", "ack_latency", "p50_us"),
     "kafka-produce", ("ack_latency", "p50_us"), False),
    ("p99", "produce ack p99", "µs", "native-produce", ("produce", "ack_latency", "p99_us"),
     "kafka-produce", ("ack_latency", "p99_us"), False),
    ("consume-n", "consume the natively written topic", "msg/s", "native-consume-ntopic", ("read_msgs_per_s",),
     "kafka-consume-ntopic", ("read_msgs_per_s",), True),
    ("consume-k", "consume the Kafka-written topic", "msg/s", "native-consume-ktopic", ("read_msgs_per_s",),
     "kafka-consume-ktopic", ("read_msgs_per_s",), True),
]


def dig(obj, path):
    for key in path:
        if not isinstance(obj, dict) or obj.get(key) is None:
            return None
        obj = obj[key]
    return obj if isinstance(obj, (int, float)) else None


def load_json(path):
    """The last JSON object of the file (rdkbench prints one line; quorumq-bench writes one doc)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        for line in reversed(text.splitlines()):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def read_rc(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or "0")
    except (OSError, ValueError):
        return None


# --- probes and runners ------------------------------------------------------------------------
def fsync_probe(directory, seconds=1.0):
    path = os.path.join(directory, ".kafka-bench-fsync-probe")
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    block = b"f" * 4096
    rounds = 0
    start = now = time.monotonic()
    try:
        while now - start < seconds:
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            rounds += 1
            now = time.monotonic()
    finally:
        os.close(fd)
        os.unlink(path)
    secs = now - start
    return {"tool": "fsync-probe", "dir": directory, "rounds": rounds, "fsync_per_s": rounds / secs,
            "fsync_mean_us": secs * 1e6 / rounds, "loadavg_before": open("/proc/loadavg").read().split()[0]}


def wait_ready(port, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def elections(ports):
    total = 0
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                body = r.read().decode()
        except OSError:
            return None
        m = re.search(r"^quorumq_raft_elections_started_total\s+(\S+)$", body, re.M)
        total += float(m.group(1)) if m else 0
    return int(total)


def elections_during(path):
    """Elections started during the step (the .elections file holds 'before after'), or None."""
    try:
        with open(re.sub(r"\.json$", ".elections", path)) as f:
            before, after = f.read().split()
        return int(after) - int(before)
    except (OSError, ValueError):
        return None


def topic_ready(partitions):
    try:
        doc = json.loads(sys.stdin.read())
    except ValueError:
        return False
    parts = doc.get("partitions") or []
    return len(parts) == partitions and all(isinstance(p.get("leader"), int) and p["leader"] >= 0 for p in parts)


def cli_consume(expect, out_path, cmd):
    """Runs the CLI consumer, counts its output lines (one per message), times them."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    fd = proc.stdout.fileno()
    count = 0
    first = last = None
    first_count = 0  # lines of the first chunk: the rate from the first line counts those after it
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        n = chunk.count(b"\n")
        if n:
            now = time.monotonic()
            if first is None:
                first = now
                first_count = n
            last = now
            count += n
    rc = proc.wait()
    secs = (last - t0) if last else 0.0
    read_secs = (last - first) if last and first else 0.0
    doc = {"tool": "quorumq-cli", "mode": "consume", "command": cmd, "consumed": count, "expected": expect,
           "seconds": round(secs, 4), "msgs_per_s": count / secs if secs > 0 else 0.0,
           "read_seconds": round(read_secs, 4), "first_chunk": first_count,
           "read_msgs_per_s": (count - first_count) / read_secs if read_secs > 0 else 0.0,
           "exit": rc}
    with open(out_path, "w") as f:
        json.dump(doc, f)
        f.write("\n")
    if rc:
        return rc
    return 0 if expect is None or count == expect else 1


# --- table -------------------------------------------------------------------------------------
def fmt(v, unit=""):
    if v is None:
        return "—"
    if unit == "ratio":
        return f"{v:.2f}"
    return f"{v:,.0f}".replace(",", " ")


def spread(values, unit=""):
    vals = [v for v in values if v is not None]
    if not vals:
        return "—"
    if len(vals) == 1:
        return fmt(vals[0], unit)
    return f"{fmt(statistics.median(vals), unit)} [{fmt(min(vals), unit)}–{fmt(max(vals), unit)}]"


def mean_or_none(values):
    vals = [v for v in values if v is not None]
    return statistics.mean(vals) if vals else None


def setups_in(out):
    """{(brokers, partitions): sorted rounds} from the file names."""
    found = {}
    for name in os.listdir(out):
        m = re.match(r"r(\d+)-b(\d+)-p(\d+)-", name)
        if m:
            r, b, p = map(int, m.groups())
            found.setdefault((b, p), set()).add(r)
    return {k: sorted(v) for k, v in sorted(found.items())}


def step_value(out, prefix, step, path, expect):
    """(value, problem): value None with a short reason if the step failed or read short."""
    doc = load_json(os.path.join(out, f"{prefix}-{step}.json"))
    rc = read_rc(os.path.join(out, f"{prefix}-{step}.rc"))
    if doc is None:
        return None, f"no result (exit {rc})" if rc is not None else "not run"
    problem = None
    if rc:
        problem = f"exit {rc}"
    if step.endswith("produce"):
        acked = dig(doc, ("produce", "acked")) if "produce" in doc else doc.get("acked")
        failed = dig(doc, ("produce", "failed")) if "produce" in doc else doc.get("failed")
        if failed:
            problem = f"{failed} failed"
        elif expect and acked is not None and acked != expect:
            problem = f"acked {acked} of {expect}"
    else:
        consumed = doc.get("consumed")
        if expect and consumed is not None and consumed != expect:
            problem = f"read {consumed} of {expect}"
    if problem:
        return None, problem
    return dig(doc, path), None


def fsync_of(out, prefix, step):
    if step.startswith("native"):
        return dig(load_json(os.path.join(out, f"{prefix}-{step}.json")), ("machine", "fsync_mean_us"))
    return dig(load_json(os.path.join(out, f"{prefix}-{step}-fsync.json")), ("fsync_mean_us",))


def read_meta(out):
    meta = {}
    try:
        with open(os.path.join(out, "meta.txt")) as f:
            for line in f:
                key, sep, value = line.rstrip("\n").partition("=")
                if sep:
                    meta[key] = value
    except OSError:
        pass
    return meta


def setup_name(b, p):
    return f"{b} broker{'s' if b > 1 else ''}, R{min(b, 3)}, {p} partition{'s' if p > 1 else ''}"


def collect(out, expect):
    rows = []  # (setup, figure, unit, higher_better, [per-round dicts])
    for (b, p), rounds in setups_in(out).items():
        for key, figure, unit, nstep, npath, kstep, kpath, higher in FIGURES:
            if not any(os.path.exists(os.path.join(out, f"r{r}-b{b}-p{p}-{kstep}.rc")) for r in rounds):
                continue  # a step this run did not have (kafka-produce-idem without KAFKA_IDEMPOTENT_TOO)
            per = []
            for r in rounds:
                prefix = f"r{r}-b{b}-p{p}"
                nv, nprob = step_value(out, prefix, nstep, npath, expect)
                kv, kprob = step_value(out, prefix, kstep, kpath, expect)
                per.append({"round": r, "native": nv, "kafka": kv, "nprob": nprob, "kprob": kprob,
                            "nfsync": fsync_of(out, prefix, nstep) if key.startswith("produce") else None,
                            "kfsync": fsync_of(out, prefix, kstep) if key.startswith("produce") else None})
            rows.append((setup_name(b, p), figure, unit, higher, per))
    return rows


def summary_table(rows):
    out = [f"| setup | figure | unit | native median [min–max] | Kafka median [min–max] "
           f"| Kafka / native per round: median [min–max] | goal ≥ {GOAL:.2f} | fsync µs beside native / Kafka | rounds |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for setup, figure, unit, higher, per in rows:
        ratios = [r["kafka"] / r["native"] for r in per if r["kafka"] is not None and r["native"]]
        goal = "n/a"
        if higher and ratios:
            met = sum(1 for x in ratios if x >= GOAL)
            goal = f"{met}/{len(ratios)} rounds"
        fs = ""
        if any(r["nfsync"] is not None or r["kfsync"] is not None for r in per):
            fs = f"{fmt(mean_or_none(r['nfsync'] for r in per))} / {fmt(mean_or_none(r['kfsync'] for r in per))}"
        complete = sum(1 for r in per if r["native"] is not None and r["kafka"] is not None)
        out.append(f"| {setup} | {figure} | {unit} | {spread([r['native'] for r in per])} "
                   f"| {spread([r['kafka'] for r in per])} | {spread(ratios, 'ratio')} | {goal} | {fs} "
                   f"| {complete}/{len(per)} |")
    return "\n".join(out)


def round_table(rows, meta):
    out = ["| round (first) | setup | figure | native | Kafka | Kafka / native | fsync µs beside native / Kafka |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    rounds = sorted({r["round"] for *_, per in rows for r in per})
    for rnd in rounds:
        first = "Kafka" if rnd % 2 else "native"
        for setup, figure, unit, higher, per in rows:
            r = next((x for x in per if x["round"] == rnd), None)
            if r is None:
                continue
            n = f"{fmt(r['native'])} {unit}" if r["native"] is not None else f"— ({r['nprob']})"
            k = f"{fmt(r['kafka'])} {unit}" if r["kafka"] is not None else f"— ({r['kprob']})"
            ratio = fmt(r["kafka"] / r["native"], "ratio") if r["kafka"] is not None and r["native"] else "—"
            fs = f"{fmt(r['nfsync'])} / {fmt(r['kfsync'])}" if r["nfsync"] is not None or r["kfsync"] is not None else ""
            out.append(f"| {rnd} ({first}) | {setup} | {figure} | {n} | {k} | {ratio} | {fs} |")
    return "\n".join(out)


def summarize(out):
    meta = read_meta(out)
    expect = int(meta["messages"]) if meta.get("messages", "").isdigit() else None
    rows = collect(out, expect)
    notes = retry_notes(out)
    g = meta.get
    body = "\n".join([
        f"### Kafka protocol vs native, side by side ({g('date', '?')})",
        "",
        f"Machine: {g('nproc', '?')} cores ({g('cpu', '?')}), kernel {g('kernel', '?')}; "
        f"1-minute load average before the run {g('loadavg', '?')}.",
        f"Versions: quorumq {g('quorumq', '?')}; librdkafka {g('librdkafka', '?')} (rdkbench).",
        f"Command: `{g('command', '?')}` — {g('rounds', '?')} interleaved rounds (odd: Kafka first, even: native first), "
        f"{g('messages', '?')} messages of {g('size', '?')} B per run, a fresh topic per run, "
        f"acks=all / acks=quorum, linger {g('linger_ms', '?')} ms, batch {g('batch_bytes', '?')} B, "
        f"{g('max_in_flight', '?')} requests in flight, closed loop with quorumq-bench's "
        f"window on both (max-in-flight × batch × partitions / size); the native producer is idempotent, "
        f"rdkbench's enable.idempotence={'true' if g('kafka_idempotence') == '1' else 'false'} (an idempotent "
        f"librdkafka keeps one ProduceRequest per partition in flight; the row 'produce, Kafka idempotent', "
        f"when present, measures it).",
        "",
        "Native: quorumq-bench (produce; SDK) and `quorumq consume -e -f '%o\\n'` (consume, every partition "
        "without a group, timed by the script from its first output chunk to its last line). Kafka: rdkbench "
        "(librdkafka; consume with its simple consumer, no group, timed from the first message to the last). "
        "Consume rates count the messages after the first chunk / batch, over the time from it to the last. Both "
        "consumers read both topics of the round: the one written natively and the one written through "
        "the Kafka listener. A msg/s ratio below 1 means the Kafka path is slower; a latency ratio above 1 "
        "means it is slower.",
        "",
        summary_table(rows),
        "",
        "<details><summary>Every round</summary>",
        "",
        round_table(rows, meta),
        "",
        "</details>",
    ] + (["", "Steps with retries librdkafka made silently (its statistics; the application saw no error) "
          "or with Raft elections during them (spurious: no faults are injected):"] + notes if notes else []))
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(body + "\n")
    return body


def retry_note(doc):
    """What librdkafka retried silently (rdkbench's client_stats), or ''."""
    cs = doc.get("client_stats") or {}
    parts = []
    if doc.get("messages_resent"):
        parts.append(f"{doc['messages_resent']} messages sent again after an error answer")
    for key, text in (("request_retries", "request retries"), ("request_timeouts", "request timeouts"),
                      ("transmit_errors", "transmit errors"), ("receive_errors", "receive errors")):
        if cs.get(key):
            parts.append(f"{cs[key]} {text}")
    return ", ".join(parts)


def retry_notes(out):
    notes = []
    for name in sorted(os.listdir(out)):
        if not re.match(r"r\d+-b\d+-p\d+-(native|kafka)-(produce|produce-idem|consume-\w+)\.json$", name):
            continue
        path = os.path.join(out, name)
        doc = load_json(path)
        parts = [retry_note(doc)] if doc and "-kafka-" in name else []
        el = elections_during(path)
        if el:
            parts.append(f"{el} Raft election{'s' if el > 1 else ''} started during the step")
        note = ", ".join(p for p in parts if p)
        if note:
            notes.append(f"- {name[:-5]}: {note}")
    return notes


def headline(path, expect=None):
    doc = load_json(path)
    rc = read_rc(re.sub(r"\.json$", ".rc", path))
    if doc is None:
        return f"no result (exit {rc})"
    tail = "" if not rc else f" (exit {rc})"
    if doc.get("tool") == "quorumq-bench" or "produce" in doc and isinstance(doc.get("produce"), dict):
        p = doc["produce"]
        lat = p.get("ack_latency") or {}
        text = (f"{fmt(p.get('msgs_per_s'))} msg/s, {p.get('acked')} acked, {p.get('failed')} failed, "
                f"ack p50 {fmt(lat.get('p50_us'))} µs p99 {fmt(lat.get('p99_us'))} µs "
                f"(fsync {fmt(dig(doc, ('machine', 'fsync_mean_us')))} µs)")
    elif doc.get("mode") == "produce":
        lat = doc.get("ack_latency") or {}
        fs = load_json(re.sub(r"\.json$", "-fsync.json", path))
        text = (f"{fmt(doc.get('msgs_per_s'))} msg/s, {doc.get('acked')} acked, {doc.get('failed')} failed, "
                f"ack p50 {fmt(lat.get('p50_us'))} µs p99 {fmt(lat.get('p99_us'))} µs "
                f"(fsync {fmt(dig(fs, ('fsync_mean_us',)))} µs)")
        retries = retry_note(doc)
        if retries:
            text += f"; {retries}"
        if doc.get("error_count"):
            text += f"; {doc['error_count']} errors, first: {doc['errors'][0] if doc.get('errors') else '?'}"
    else:
        text = (f"{fmt(doc.get('read_msgs_per_s'))} msg/s from the first message "
                f"({fmt(doc.get('msgs_per_s'))} from the start), read {doc.get('consumed')}")
        if expect and doc.get("consumed") != expect:
            text += f" of {expect} EXPECTED"
        retries = retry_note(doc)
        if retries:
            text += f"; {retries}"
        if doc.get("error_count"):
            text += f"; {doc['error_count']} errors, first: {doc['errors'][0] if doc.get('errors') else '?'}"
    el = elections_during(path)
    if el:
        text += f"; {el} Raft election{'s' if el > 1 else ''} during the step"
    return text + tail


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[0]
    if cmd == "fsync" and len(argv) >= 2:
        print(json.dumps(fsync_probe(argv[1], float(argv[2]) if len(argv) > 2 else 1.0)))
        return 0
    if cmd == "ready" and len(argv) >= 2:
        return 0 if wait_ready(int(argv[1]), float(argv[2]) if len(argv) > 2 else 30.0) else 1
    if cmd == "elections" and len(argv) >= 2:
        n = elections([int(p) for p in argv[1:]])
        print("?" if n is None else n)
        return 0
    if cmd == "topic-ready" and len(argv) == 2:
        return 0 if topic_ready(int(argv[1])) else 1
    if cmd == "cli-consume" and "--" in argv:
        at = argv.index("--")
        opts = dict(zip(argv[1:at:2], argv[2:at:2]))
        expect = int(opts["--expect"]) if "--expect" in opts else None
        return cli_consume(expect, opts["--json"], argv[at + 1:])
    if cmd == "headline" and len(argv) >= 2:
        print(headline(argv[1], int(argv[2]) if len(argv) > 2 else None))
        return 0
    if cmd == "summarize" and len(argv) == 2:
        print(summarize(argv[1]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
