#!/bin/bash
# quorumq-entrypoint: fills in the per-broker settings a StatefulSet cannot template, then
# execs quorumq-broker (so the broker is PID 1 and receives SIGTERM directly).
#
# Plain use (compose, systemd, tests): set QUORUMQ_NODE_ID and QUORUMQ_PEERS yourself; nothing
# is changed. StatefulSet use: set QUORUMQ_CLUSTER_SIZE=N and
# QUORUMQ_PEER_HOST_TEMPLATE='quorumq-{ordinal}.quorumq.default.svc.cluster.local' and leave
# QUORUMQ_NODE_ID/QUORUMQ_PEERS unset: pod "quorumq-K" becomes node K+1 and the peers are
# 1@<template with 0>:PORT, ..., N@<template with N-1>:PORT. QUORUMQ_ADVERTISED defaults to
# this pod's own peer address, so clients are told a name that resolves.
set -euo pipefail
port=${QUORUMQ_LISTEN:-0.0.0.0:9092}
port=${port##*:}
if [ -n "${QUORUMQ_CLUSTER_SIZE:-}" ] && [ -z "${QUORUMQ_NODE_ID:-}" ]; then
  host=${QUORUMQ_POD_NAME:-$(hostname)}
  ordinal=${host##*-}
  case "$ordinal" in
    ''|*[!0-9]*) echo "quorumq-entrypoint: cannot read a pod ordinal from hostname '$host' (want NAME-K)" >&2; exit 2 ;;
  esac
  template=${QUORUMQ_PEER_HOST_TEMPLATE:-}
  [ -n "$template" ] || { echo "quorumq-entrypoint: set QUORUMQ_PEER_HOST_TEMPLATE, e.g. quorumq-{ordinal}.quorumq.NAMESPACE.svc.cluster.local" >&2; exit 2; }
  if [ "$ordinal" -ge "$QUORUMQ_CLUSTER_SIZE" ]; then
    echo "quorumq-entrypoint: pod ordinal $ordinal is outside QUORUMQ_CLUSTER_SIZE=$QUORUMQ_CLUSTER_SIZE" >&2; exit 2
  fi
  export QUORUMQ_NODE_ID=$((ordinal + 1))
  if [ -z "${QUORUMQ_PEERS:-}" ]; then
    peers=""
    for ((i = 0; i < QUORUMQ_CLUSTER_SIZE; i++)); do
      peers+="${peers:+,}$((i + 1))@${template//\{ordinal\}/$i}:$port"
    done
    export QUORUMQ_PEERS=$peers
  fi
  if [ -z "${QUORUMQ_ADVERTISED:-}" ]; then
    export QUORUMQ_ADVERTISED=${template//\{ordinal\}/$ordinal}:$port
  fi
fi
echo "quorumq-entrypoint: node ${QUORUMQ_NODE_ID:-?} peers ${QUORUMQ_PEERS:-?} advertised ${QUORUMQ_ADVERTISED:-(listen)}" >&2
exec quorumq-broker "$@"
