#!/usr/bin/env python3
"""Per-step latency budget of one-at-a-time produces, from kernel syscall timestamps.

Reads `perf script -F comm,pid,tid,time,event,trace` output of a `perf record` taken while
`quorumq-bench ... --window 1 --max-in-flight 1` runs (scripts/latency_budget.sh does both), and
splits every round trip (the bench's sendmsg -> the bench's recvfrom of the answer) into steps
that can be seen from outside the processes: network hops, the hand-off to the storage writer,
LMDB's page writes, its data fdatasync, its meta-page write (O_DSYNC), the replication round trip
to the fastest follower, and the hand-off back to the connection. Only one produce is in flight,
so every event between a send and its answer belongs to that produce.

Usage: latency_budget.py PERF_SCRIPT_TXT [--json OUT]
"""
import json
import re
import statistics
import sys
from collections import defaultdict

LINE = re.compile(r"^\s*(\S+)\s+(\d+)/(\d+)\s+([\d.]+):\s+syscalls:sys_(enter|exit)_(\w+):\s*(.*)$")


def parse(path):
    ev = []
    for line in open(path, errors="replace"):
        m = LINE.match(line)
        if not m:
            continue
        comm, pid, tid, t, kind, call, rest = m.groups()
        fields = {}
        if kind == "enter":
            for kv in rest.split(", "):
                if ": " in kv:
                    k, v = kv.split(": ", 1)
                    fields[k] = v
        else:
            v = int(rest.strip(), 16)
            fields["ret"] = v - (1 << 64) if v >= 1 << 63 else v
        ev.append((float(t) * 1e6, comm, int(pid), int(tid), kind, call, fields))
    ev.sort(key=lambda e: e[0])
    return ev


def is_meta_write(e):
    # LMDB writes its 120-byte meta record through the O_DSYNC descriptor.
    return e[5] == "pwrite64" and e[4] == "enter" and int(e[6].get("count", "0"), 16) < 512


def steps_of(window, client_pid):
    """One round trip's events -> {step: microseconds}, or None when it is not a clean produce."""
    t_send = window[0][0]
    brokers = [e for e in window if e[2] != client_pid]
    recvs = [e for e in brokers if e[5] == "recvfrom" and e[4] == "exit" and e[6]["ret"] > 0]
    if not recvs:
        return None
    leader = recvs[0][2]
    L = [e for e in brokers if e[2] == leader]
    out = {"client send -> leader read": recvs[0][0] - t_send}
    t_recv = recvs[0][0]

    def first(evs, pred, after):
        for e in evs:
            if e[0] >= after and pred(e):
                return e
        return None

    def disk(evs, after, prefix):
        w = first(evs, lambda e: e[4] == "enter" and e[5] in ("pwrite64", "writev") and not is_meta_write(e), after)
        fs0 = first(evs, lambda e: e[4] == "enter" and e[5] == "fdatasync", after)
        fs1 = first(evs, lambda e: e[4] == "exit" and e[5] == "fdatasync", after)
        if not (w and fs0 and fs1):
            return None
        m0 = first(evs, is_meta_write, fs1[0])
        m1 = first(evs, lambda e: e[4] == "exit" and e[5] == "pwrite64", m0[0]) if m0 else None
        if not (m0 and m1):
            return None
        r = {
            prefix + "read -> first page write (decode, propose, hand-off to the writer)": w[0] - after,
            prefix + "page writes (pwrite)": fs0[0] - w[0],
            prefix + "data fdatasync": fs1[0] - fs0[0],
            prefix + "meta page write (O_DSYNC)": m1[0] - m0[0],
        }
        return r, m1[0]

    d = disk(L, t_recv, "leader: ")
    if not d:
        return None
    out.update(d[0])
    leader_durable = d[1]
    done = leader_durable
    followers = sorted({e[2] for e in brokers if e[2] != leader})
    if followers:
        best = None
        for f in followers:
            F = [e for e in brokers if e[2] == f]
            fr = first(F, lambda e: e[5] == "recvfrom" and e[4] == "exit" and e[6]["ret"] > 0, t_recv)
            if not fr:
                continue
            fd = disk(F, fr[0], "follower: ")
            if not fd:
                continue
            fsend = first(F, lambda e: e[5] == "sendmsg" and e[4] == "enter", fd[1])
            if not fsend:
                continue
            ack = first(L, lambda e: e[5] == "recvfrom" and e[4] == "exit" and e[6]["ret"] > 0, fsend[0])
            if not ack:
                continue
            if best is None or ack[0] < best[0]:
                lsend = first(L, lambda e: e[5] == "sendmsg" and e[4] == "enter", t_recv)
                r = {"leader read -> AppendEntries sent": (lsend[0] if lsend else fr[0]) - t_recv,
                     "AppendEntries sent -> follower read": fr[0] - (lsend[0] if lsend else fr[0])}
                r.update(fd[0])
                r["follower durable -> ack sent"] = fsend[0] - fd[1]
                r["ack sent -> leader read"] = ack[0] - fsend[0]
                best = (ack[0], r)
        if best is None:
            return None
        out.update(best[1])
        out["follower ack read - leader durable (>0: waited for the follower)"] = best[0] - leader_durable
        done = max(done, best[0])
    answer = [e for e in L if e[5] == "sendmsg" and e[4] == "enter" and e[0] >= done]
    if not answer:
        return None
    out["quorum durable -> answer sent (apply, hand-off to the connection)"] = answer[0][0] - done
    out["answer sent -> client read"] = window[-1][0] - answer[0][0]
    out["total (client sendmsg -> client read)"] = window[-1][0] - t_send
    return out


def main():
    path = sys.argv[1]
    ev = parse(path)
    client = [e for e in ev if e[1].startswith("quorumq-bench")]
    if not client:
        sys.exit("no quorumq-bench events in " + path + ": was the bench running while perf recorded?")
    client_pid = client[0][2]
    rows = defaultdict(list)
    n = 0
    i = 0
    while i < len(ev):
        e = ev[i]
        if e[2] == client_pid and e[5] == "sendmsg" and e[4] == "enter":
            j = i + 1
            while j < len(ev) and not (ev[j][2] == client_pid and ev[j][5] == "recvfrom" and ev[j][4] == "exit"
                                       and ev[j][6]["ret"] > 0):
                j += 1
            if j >= len(ev):
                break
            s = steps_of(ev[i:j + 1], client_pid)
            if s:
                n += 1
                for k, v in s.items():
                    rows[k].append(v)
            i = j
        i += 1
    if not n:
        sys.exit("no complete produce round trips found (one at a time: --window 1 --max-in-flight 1?)")
    result = {"round_trips": n, "steps_us": {}}
    print(f"{n} round trips; microseconds per step (p50 / p90):")
    for k, v in rows.items():
        v.sort()
        p50 = statistics.median(v)
        p90 = v[int(len(v) * 0.9)]
        result["steps_us"][k] = {"p50": round(p50, 1), "p90": round(p90, 1)}
        print(f"  {p50:8.1f} {p90:8.1f}  {k}")
    if "--json" in sys.argv:
        with open(sys.argv[sys.argv.index("--json") + 1], "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
