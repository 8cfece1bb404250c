#!/usr/bin/env python3
"""Reads the results of scripts/peers_bench.sh and prints the quorumq vs NATS JetStream table.

  peers_bench.py headline FILE             one line for the progress output of a finished step
  peers_bench.py summarize OUT_DIR [--write-docs DOC]
                                           the Markdown table; with --write-docs it replaces the
                                           section between the peers-bench markers in DOC

OUT_DIR holds, per round N and step S, rN-S.json (quorumq-bench --json) or rN-S.jsonl (natsbench,
one JSON line per measurement), and meta.txt (key=value lines written by the script).

Every figure is paired with the fsync mean probed just before it (quorumq-bench's
machine.fsync_mean_us, natsbench's fsync_mean_us): this disk throttles fsync after bursts, so a
figure read without it misleads. Ratios are taken within a round (quorumq figure / NATS figure of
the same round, minutes apart), then summarised over the rounds; figures of different runs are
never compared.
"""
import datetime
import json
import os
import re
import statistics
import sys

BEGIN = "<!-- peers-bench:begin -->"
END = "<!-- peers-bench:end -->"

# (figure, unit, quorumq step, quorumq value path, NATS step, NATS mode, NATS value path)
# A NATS step's file can hold several modes (nats-r3-async also holds the consume read-back).
FIGURES = [
    ("R3 async, 1 partition", "msg/s", "qq-r3-async-1p", ("produce", "msgs_per_s"),
     "nats-r3-async", "pub_async", ("msgs_per_s",)),
    ("R3 async, 3 partitions (NATS: its one stream)", "msg/s", "qq-r3-async-3p", ("produce", "msgs_per_s"),
     "nats-r3-async", "pub_async", ("msgs_per_s",)),
    ("R3 one at a time, ack p50", "µs", "qq-r3-sync", ("produce", "ack_latency", "p50_us"),
     "nats-r3-sync", "pub_sync", ("ack_latency", "p50_us")),
    ("R3 one at a time, ack p99", "µs", "qq-r3-sync", ("produce", "ack_latency", "p99_us"),
     "nats-r3-sync", "pub_sync", ("ack_latency", "p99_us")),
    ("R3 one at a time", "msg/s", "qq-r3-sync", ("produce", "msgs_per_s"),
     "nats-r3-sync", "pub_sync", ("msgs_per_s",)),
    ("R1 one at a time, ack p50", "µs", "qq-r1-sync", ("produce", "ack_latency", "p50_us"),
     "nats-r1-sync", "pub_sync", ("ack_latency", "p50_us")),
    ("R1 one at a time, ack p99", "µs", "qq-r1-sync", ("produce", "ack_latency", "p99_us"),
     "nats-r1-sync", "pub_sync", ("ack_latency", "p99_us")),
    ("R1 async, 1 partition", "msg/s", "qq-r1-async", ("produce", "msgs_per_s"),
     "nats-r1-async", "pub_async", ("msgs_per_s",)),
    ("R3 consume, read back after the async run (NATS only)", "msg/s", None, None,
     "nats-r3-async", "consume", ("msgs_per_s",)),
]


def dig(obj, path):
    for key in path:
        if not isinstance(obj, dict) or obj.get(key) is None:
            return None
        obj = obj[key]
    return obj if isinstance(obj, (int, float)) else None


def load_step(out, rnd, step):
    """{mode: record} for one step of one round; quorumq-bench's one record is under mode None."""
    path = os.path.join(out, f"r{rnd}-{step}.json")
    if os.path.exists(path):
        try:
            with open(path) as f:
                return {None: json.load(f)}
        except (OSError, ValueError):
            return {}
    path += "l"
    records = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and rec.get("tool") == "natsbench":
                    records[rec.get("mode")] = rec
    return records


def fsync_of(rec):
    if rec is None:
        return None
    return dig(rec, ("machine", "fsync_mean_us")) if "machine" in rec else dig(rec, ("fsync_mean_us",))


def loadavg_of(rec):
    if rec is None:
        return None
    la = rec.get("machine", {}).get("loadavg_before") if "machine" in rec else rec.get("loadavg_before")
    try:
        return float(str(la).split()[0])
    except (IndexError, ValueError):
        return None


def rounds_in(out):
    found = set()
    for name in os.listdir(out):
        m = re.match(r"r(\d+)-", name)
        if m:
            found.add(int(m.group(1)))
    return sorted(found)


def collect(out):
    """Per figure, per round: (quorumq value, its fsync, NATS value, its fsync)."""
    rows = []
    for fig in FIGURES:
        name, unit, qstep, qpath, nstep, nmode, npath = fig
        per_round = []
        for rnd in rounds_in(out):
            q = load_step(out, rnd, qstep).get(None) if qstep else None
            n = load_step(out, rnd, nstep).get(nmode)
            per_round.append({
                "round": rnd,
                "qq": dig(q, qpath) if q else None, "qq_fsync": fsync_of(q), "qq_load": loadavg_of(q),
                "nats": dig(n, npath) if n else None, "nats_fsync": fsync_of(n), "nats_load": loadavg_of(n),
            })
        rows.append((name, unit, qstep is not None, per_round))
    return rows


def fmt(v, unit=""):
    if v is None:
        return "—"
    if unit == "ratio":
        return f"{v:.2f}" if v < 10 else f"{v:.1f}"
    return f"{v:,.0f}".replace(",", " ")


def spread(values, unit=""):
    """median [min–max] of the values that exist; '—' if none."""
    vals = [v for v in values if v is not None]
    if not vals:
        return "—"
    if len(vals) == 1:
        return fmt(vals[0], unit)
    return f"{fmt(statistics.median(vals), unit)} [{fmt(min(vals), unit)}–{fmt(max(vals), unit)}]"


def mean_or_none(values):
    vals = [v for v in values if v is not None]
    return statistics.mean(vals) if vals else None


def summary_table(rows):
    out = ["| figure | unit | quorumq median [min–max] | NATS median [min–max] | quorumq / NATS, per round: median [min–max] "
           "| fsync µs beside quorumq / beside NATS (mean of rounds) | rounds |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, unit, has_qq, per_round in rows:
        ratios = [r["qq"] / r["nats"] for r in per_round if r["qq"] is not None and r["nats"]]
        fs_q = mean_or_none(r["qq_fsync"] for r in per_round) if has_qq else None
        fs_n = mean_or_none(r["nats_fsync"] for r in per_round)
        complete = sum(1 for r in per_round if r["nats"] is not None and (r["qq"] is not None or not has_qq))
        out.append(f"| {name} | {unit} | {spread([r['qq'] for r in per_round]) if has_qq else 'n/a'} "
                   f"| {spread([r['nats'] for r in per_round])} | {spread(ratios, 'ratio') if has_qq else 'n/a'} "
                   f"| {fmt(fs_q) if has_qq else 'n/a'} / {fmt(fs_n)} | {complete}/{len(per_round)} |")
    return "\n".join(out)


def round_table(rows):
    out = ["| round | figure | quorumq (fsync µs beside it) | NATS (fsync µs beside it) | quorumq / NATS |",
           "| --- | --- | --- | --- | --- |"]
    rounds = sorted({r["round"] for _, _, _, pr in rows for r in pr})
    for rnd in rounds:
        for name, unit, has_qq, per_round in rows:
            r = next(x for x in per_round if x["round"] == rnd)
            q = f"{fmt(r['qq'])} {unit} ({fmt(r['qq_fsync'])})" if has_qq else "n/a"
            n = f"{fmt(r['nats'])} {unit} ({fmt(r['nats_fsync'])})"
            ratio = fmt(r["qq"] / r["nats"], "ratio") if has_qq and r["qq"] is not None and r["nats"] else "—"
            out.append(f"| {rnd} | {name} | {q} | {n} | {ratio} |")
    return "\n".join(out)


def read_meta(out):
    meta = {}
    path = os.path.join(out, "meta.txt")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                key, sep, value = line.rstrip("\n").partition("=")
                if sep:
                    meta[key] = value
    return meta


def nats_client_version(out):
    for rnd in rounds_in(out):
        for step in ("nats-r3-async", "nats-r3-sync", "nats-r1-sync", "nats-r1-async"):
            for rec in load_step(out, rnd, step).values():
                if rec.get("client"):
                    return rec["client"]
    return "?"


def section(out, rows):
    meta = read_meta(out)
    loads = [x for _, _, _, pr in rows for r in pr for x in (r["qq_load"], r["nats_load"]) if x is not None]
    load_text = f"{min(loads):.2f}–{max(loads):.2f}" if loads else "unknown"
    g = meta.get
    return "\n".join([
        f"### quorumq vs NATS JetStream, side by side ({g('date', datetime.datetime.now().strftime('%Y-%m-%d %H:%M'))})",
        "",
        "Generated by `scripts/peers_bench.sh --write-docs` (do not edit between the markers by hand).",
        f"Machine: {g('nproc', '?')} cores ({g('cpu', '?')}), kernel {g('kernel', '?')}; "
        f"1-minute load average before the steps {load_text}.",
        f"Versions: quorumq {g('quorumq', '?')}, nats-server {g('nats_server', '?')}, {nats_client_version(out)} "
        f"({g('go', '?')}).",
        f"Command: `{g('command', '?')}` — interleaved rounds: {g('rounds', '?')}, {g('duration', '?')} s per step, "
        f"1 KiB messages, quorumq `--consumers 0`, NATS async window {g('nats_window', '?')}.",
        "",
        "quorumq acknowledges after a majority fsynced (acks=quorum); NATS JetStream acknowledges before"
        " any fsync (its `sync_interval` is 2 minutes), so the ratios compare a durable broker with one"
        " that is not. A latency ratio above 1 means quorumq is slower; a msg/s ratio above 1 means it is faster.",
        "",
        summary_table(rows),
        "",
        "<details><summary>Every figure, with the fsync mean probed just before it</summary>",
        "",
        round_table(rows),
        "",
        "</details>",
    ])


def replace_section(doc_path, body):
    with open(doc_path) as f:
        text = f.read()
    block = f"{BEGIN}\n{body}\n{END}"
    if BEGIN in text and END in text and text.index(BEGIN) < text.index(END):
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    tmp = doc_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, doc_path)


def headline(path):
    recs = load_step(os.path.dirname(path) or ".", *re.match(r"r(\d+)-(.*)\.jsonl?$", os.path.basename(path)).groups())
    if not recs:
        return "no result"
    parts = []
    for mode, rec in recs.items():
        lat = (rec.get("produce") or {}).get("ack_latency") if mode is None else rec.get("ack_latency")
        rate = dig(rec, ("produce", "msgs_per_s")) if mode is None else rec.get("msgs_per_s")
        one_at_a_time = (rec.get("settings") or {}).get("window") == 1 if mode is None else mode == "pub_sync"
        text = f"{mode + ' ' if mode else ''}{fmt(rate)} msg/s"
        if one_at_a_time and lat:
            text += f", ack p50 {fmt(lat.get('p50_us'))} µs p99 {fmt(lat.get('p99_us'))} µs"
        parts.append(f"{text} (fsync {fmt(fsync_of(rec))} µs)")
    return "; ".join(parts)


def main(argv):
    if len(argv) >= 2 and argv[0] == "headline":
        print(headline(argv[1]))
        return 0
    if len(argv) >= 2 and argv[0] == "summarize":
        out = argv[1]
        rows = collect(out)
        body = section(out, rows)
        print(body)
        if len(argv) >= 4 and argv[2] == "--write-docs":
            replace_section(argv[3], body)
            print(f"\nwrote the section between the peers-bench markers of {argv[3]}", file=sys.stderr)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
