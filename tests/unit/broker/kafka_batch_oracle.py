#!/usr/bin/python3
"""Checks quorumq's RecordBatch v2 conversion against kafka-python's own record-batch code
(Debian python3-kafka, an implementation nobody here wrote): batches kafka-python builds convert
record for record, uncompressed and compressed with each codec it has (gzip; snappy, lz4, zstd
through Debian python3-snappy, python3-lz4, python3-zstandard); the batch quorumq writes parses
in kafka-python with a valid CRC.
Usage: kafka_batch_oracle.py PATH/TO/kafka_batch_tool"""
import json
import os
import subprocess
import sys
import tempfile

try:
    from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
except ImportError:
    sys.exit("kafka-python is missing: apt-get install python3-kafka (scripts/install-deps.sh installs it)")

from kafka.record.util import calc_crc32c as crc32c  # kafka-python's own CRC-32C
import kafka.codec

CODECS = {1: ("gzip", kafka.codec.has_gzip, "python3 (gzip)"), 2: ("snappy", kafka.codec.has_snappy, "python3-snappy"),
          3: ("lz4", kafka.codec.has_lz4, "python3-lz4"), 4: ("zstd", kafka.codec.has_zstd, "python3-zstandard")}
missing = [pkg for _, has, pkg in CODECS.values() if not has()]
if missing:
    sys.exit(f"kafka-python lacks codecs: apt-get install {' '.join(missing)} (scripts/install-deps.sh installs them)")

tool = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def build(producer, records, compression=0, transactional=False):
    b = DefaultRecordBatchBuilder(magic=2, compression_type=compression, is_transactional=transactional,
                                  producer_id=producer[0], producer_epoch=producer[1], base_sequence=producer[2],
                                  batch_size=1 << 24)
    for i, (ts, key, value, headers) in enumerate(records):
        b.append(i, timestamp=ts, key=key, value=value, headers=headers)
    return bytes(b.build())


with tempfile.TemporaryDirectory() as d:
    # kafka-python -> quorumq
    cases = {
        "plain": ((5, 1, 10), [(1700000000123, b"kk", b"vv", [("h1", b"x"), ("h2", None)]),
                               (1700000000124, None, b"second", []),
                               (1700000000100, b"k3", None, [])]),
        "not idempotent, many records": ((-1, -1, -1), [(1700000000000 + i, str(i).encode(), b"v" * i, [])
                                                        for i in range(300)]),
        "large value": ((9, 0, 0), [(1, b"big", os.urandom(200000), [("k", b"")])]),
    }
    # Each case compressed with each codec too: the records as kafka-python compressed them.
    for codec, (codec_name, _, _) in CODECS.items():
        for name, case in list(cases.items()):
            if len(case) == 2:
                cases[f"{name}, {codec_name}"] = case + (codec,)
    for name, (producer, records, *codec) in cases.items():
        path = os.path.join(d, "in.bin")
        with open(path, "wb") as f:
            f.write(build(producer, records, compression=codec[0] if codec else 0))
        out = subprocess.run([tool, "from-kafka", path], capture_output=True)
        check(out.returncode == 0, f"{name}: refused: {out.stdout[:200]!r}")
        if out.returncode != 0:
            continue
        got = [json.loads(line) for line in out.stdout.decode("utf-8", "surrogateescape").splitlines()]
        check(len(got) == len(records), f"{name}: {len(got)} records, want {len(records)}")
        for i, (g, (ts, key, value, headers)) in enumerate(zip(got, records)):
            check(g["producer"] == list(producer), f"{name}[{i}] producer {g['producer']}")
            check(g["offset_delta"] == i, f"{name}[{i}] offset delta")
            check(g["timestamp"] == ts, f"{name}[{i}] timestamp {g['timestamp']} want {ts}")
            check(g["value_crc"] == (crc32c(value) if value is not None else 0), f"{name}[{i}] value bytes")
            if key is None or value is None or key.isascii() and value.isascii():
                check(g["key"] == (key.decode() if key is not None else None), f"{name}[{i}] key")
                check(g["value"] == (value.decode() if value is not None else None), f"{name}[{i}] value")
            # Null header values become empty (documented in kafka_batch.h).
            check(g["headers"] == [[k, (v or b"").decode()] for k, v in headers], f"{name}[{i}] headers")
    # Two batches back to back in one records field.
    path = os.path.join(d, "two.bin")
    with open(path, "wb") as f:
        f.write(build((1, 0, 0), [(1, b"a", b"1", [])]) + build((1, 0, 1), [(2, b"b", b"2", [])]))
    out = subprocess.run([tool, "from-kafka", path], capture_output=True)
    check(out.returncode == 0 and len(out.stdout.splitlines()) == 2, "two batches in one records field")
    # Refusals with Kafka's codes: a codec beyond zstd (76), transactional (87), compressed
    # records that decompress past the tool's limit (10).
    def with_codec(blob, codec):
        b = bytearray(blob)
        b[22] = (b[22] & ~7) | codec
        b[17:21] = crc32c(bytes(b[21:])).to_bytes(4, "big")
        return bytes(b)
    big = build((1, 0, 0), [(1, b"a", b"x" * 17000000, [])], compression=1)  # 17 MB of x, gzipped
    for name, blob, code in (("codec 5", with_codec(build((1, 0, 0), [(1, b"a", b"x" * 100, [])]), 5), 76),
                             ("transactional", build((1, 0, 0), [(1, b"a", b"x", [])], transactional=True), 87),
                             ("gzip past 16 MiB", big, 10)):
        path = os.path.join(d, "bad.bin")
        with open(path, "wb") as f:
            f.write(blob)
        out = subprocess.run([tool, "from-kafka", path], capture_output=True)
        check(out.returncode == 1 and out.stdout.startswith(f"refused {code} ".encode()),
              f"{name}: want refused {code}, got {out.stdout[:120]!r}")

    # quorumq -> kafka-python
    path = os.path.join(d, "out.bin")
    subprocess.run([tool, "to-kafka", path], check=True)
    with open(path, "rb") as f:
        data = f.read()
    b = DefaultRecordBatch(data)
    check(b.magic == 2, "magic")
    check(b.validate_crc(), "kafka-python finds the CRC-32C valid")
    check(b.base_offset == 1000, f"base offset {b.base_offset}")
    got = [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in b]
    want = [(1000, 1700000000000, b"k1", b"value one", [("trace", b"abc"), ("empty", b"")]),
            (1001, 1700000000005, None, b"value two", []),
            (1002, 1699999999990, b"k3", None, [])]
    check(got == want, f"records as kafka-python reads them: {got}")

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print(f"kafka-python agrees with quorumq's RecordBatch v2 conversion in both directions "
      f"({len(cases)} kafka-python batches converted, {len(CODECS)} codecs)")
