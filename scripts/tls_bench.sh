#!/usr/bin/env bash
# The cost of TLS (issue 18: throughput with TLS >= 70% of plaintext in the same run): one broker
# without TLS, one with --tls-cert-file (a certificate made here with openssl, RSA 2048) and one
# "secure": TLS plus --sasl, the bench logging in as a SCRAM user whose ACLs are checked on every
# request (not a super user). The order rotates per round; each step runs quorumq-bench (our SDK,
# acks=quorum) to produce MESSAGES messages of SIZE bytes into a fresh topic of PARTITIONS
# partitions and then read them all back from the start (--catch-up). Prints a progress line per
# step and a markdown table (produce and catch-up msg/s, TLS / plain), with the fsync mean the
# bench probed beside each figure.
#
# Usage: scripts/tls_bench.sh        env: ROUNDS=3 MESSAGES=500000 SIZE=1024 PARTITIONS="1 3"
#                                         BUILD=build/release BASE_PORT=24000
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}; MESSAGES=${MESSAGES:-500000}; SIZE=${SIZE:-1024}; PARTITIONS=${PARTITIONS:-"1 3"}
BUILD=${BUILD:-build/release}; BASE_PORT=${BASE_PORT:-24000}
BROKER=$BUILD/broker/quorumq-broker BENCH=$BUILD/bench/quorumq-bench CLI=$BUILD/client/cli/quorumq
for b in "$BROKER" "$BENCH"; do
  [ -x "$b" ] || { echo "tls_bench: $b missing: build first (cmake --preset release && cmake --build --preset release)" >&2; exit 2; }
done
command -v openssl >/dev/null || { echo "tls_bench: needs openssl (apt-get install openssl)" >&2; exit 2; }
W=$(mktemp -d /tmp/quorumq-tls-bench-XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/ca.key" -out "$W/ca.pem" -days 2 -subj /CN=tls-bench-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$W/b.key" -out "$W/b.csr" -subj /CN=localhost 2>/dev/null
echo "subjectAltName=DNS:localhost,IP:127.0.0.1" > "$W/ext"
openssl x509 -req -in "$W/b.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial -out "$W/b.pem" -days 2 \
  -extfile "$W/ext" 2>/dev/null

start() {  # start NAME PORT ADMIN [flags...]
  local name=$1 port=$2 admin=$3; shift 3
  "$BROKER" --node-id 1 --data-dir "$W/$name" --listen 127.0.0.1:$port --admin-listen 127.0.0.1:$admin \
    --log-level warn "$@" > "$W/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf 127.0.0.1:$admin/readyz >/dev/null && return 0; sleep 0.1; done
  echo "tls_bench: broker $name did not become ready; see $W/$name.log" >&2; exit 1
}
start plain $((BASE_PORT + 1)) $((BASE_PORT + 2))
start tls $((BASE_PORT + 3)) $((BASE_PORT + 4)) --tls-cert-file "$W/b.pem" --tls-key-file "$W/b.key"
( umask 077; echo "admin:admin-bench-password" > "$W/boot"; echo admin-bench-password > "$W/admin.pw"
  echo bench-user-password > "$W/bench.pw" )
start secure $((BASE_PORT + 5)) $((BASE_PORT + 6)) --tls-cert-file "$W/b.pem" --tls-key-file "$W/b.key" \
  --sasl --sasl-bootstrap-user-file "$W/boot"
ADMIN=("$CLI" --bootstrap localhost:$((BASE_PORT + 5)) --tls-ca-file "$W/ca.pem" --user admin --password-file "$W/admin.pw")
"${ADMIN[@]}" user create bench --user-password-file "$W/bench.pw" >/dev/null
"${ADMIN[@]}" acl add --principal User:bench --operation all --topic '*' >/dev/null
"${ADMIN[@]}" acl add --principal User:bench --operation all --group '*' >/dev/null
"${ADMIN[@]}" acl add --principal User:bench --operation describe --cluster >/dev/null

run() {  # run KIND ROUND PARTITIONS -> prints "produce catchup fsync_us"
  local kind=$1 round=$2 parts=$3 args=()
  case $kind in
    tls) args=(--bootstrap localhost:$((BASE_PORT + 3)) --tls-ca-file "$W/ca.pem") ;;
    secure) args=(--bootstrap localhost:$((BASE_PORT + 5)) --tls-ca-file "$W/ca.pem" --user bench --password-file "$W/bench.pw") ;;
    *) args=(--bootstrap 127.0.0.1:$((BASE_PORT + 1))) ;;
  esac
  local out="$W/r$round-$kind-p$parts.json"
  "$BENCH" "${args[@]}" --fsync-dir "$W" --messages "$MESSAGES" --duration 0 --size "$SIZE" --partitions "$parts" \
    --replicas 1 --consumers 1 --catch-up --quiet --json "$out" > "$out.log" 2>&1 \
    || { echo "tls_bench: $kind run failed: $out.log" >&2; tail -5 "$out.log" >&2; exit 1; }
  python3 - "$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
v = d['verify']
if v.get('lost') or v.get('duplicated'): sys.exit('verification failed: %s' % v)
fs = d.get('machine', {}).get('fsync_mean_us', 0)
print('%d %d %d' % (d['produce']['msgs_per_s'], d['consume']['catch_up']['msgs_per_s'], fs or 0))
PY
}

echo "tls_bench: $ROUNDS round(s), $MESSAGES x $SIZE B, partitions: $PARTITIONS; work dir $W"
ROWS=()
for r in $(seq 1 "$ROUNDS"); do
  for p in $PARTITIONS; do
    case $((r % 3)) in 1) order="plain tls secure" ;; 2) order="tls secure plain" ;; *) order="secure plain tls" ;; esac
    declare -A res=()
    for k in $order; do
      res[$k]=$(run "$k" "$r" "$p")
      read -r pr cu fs <<< "${res[$k]}"
      printf '[round %d/%d, %d partition(s)] %-6s produce %8d msg/s, catch-up %8d msg/s (fsync %s us)\n' \
        "$r" "$ROUNDS" "$p" "$k" "$pr" "$cu" "$fs"
    done
    read -r ppr pcu pfs <<< "${res[plain]}"
    read -r tpr tcu tfs <<< "${res[tls]}"
    read -r spr scu sfs <<< "${res[secure]}"
    ratio() { python3 -c "print('%.2f' % ($1/$2))"; }
    ROWS+=("| $r (${order%% *} first) | $p | $ppr | $tpr ($(ratio $tpr $ppr)) | $spr ($(ratio $spr $ppr)) | $pcu | $tcu ($(ratio $tcu $pcu)) | $scu ($(ratio $scu $pcu)) | $pfs / $tfs / $sfs |")
    unset res
  done
done
echo
echo "| round | partitions | produce plain msg/s | produce TLS (/ plain) | produce TLS+SASL+ACL (/ plain) | catch-up plain msg/s | catch-up TLS (/ plain) | catch-up TLS+SASL+ACL (/ plain) | fsync µs plain / TLS / secure |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${ROWS[@]}"
