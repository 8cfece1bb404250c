#!/bin/bash
# quorumq-entrypoint: fills in the per-broker settings a StatefulSet cannot template, then
# execs quorumq-broker (so the broker is PID 1 and receives SIGTERM directly).
#
# Plain use (compose, systemd, tests): set QUORUMQ_NODE_ID and QUORUMQ_PEERS yourself; nothing
# is changed. StatefulSet use: set QUORUMQ_CLUSTER_SIZE=N and
# QUORUMQ_PEER_HOST_TEMPLATE='quorumq-{ordinal}.quorumq.default.svc.cluster.local' and leave
# QUORUMQ_NODE_ID/QUORUMQ_PEERS unset: pod "quorumq-K" becomes node K+1 and the peers are
# 1@<template with 0>:PEERPORT, ..., N@<template with N-1>:PEERPORT (the peer listener,
# QUORUMQ_PEER_LISTEN, 9093 by default). QUORUMQ_ADVERTISED defaults to this pod's own name at
# the client port, so clients are told a name that resolves.
# Security: QUORUMQ_PEER_TLS_DIR (node<N>.pem/.key per broker) sets this broker's peer
# certificate; QUORUMQ_SECURITY=off drops every TLS, SASL and token setting (development).
# Cluster secret: QUORUMQ_CLUSTER_SECRET_FILE (a mounted Secret), or QUORUMQ_CLUSTER_SECRET (the
# value), which is written to a file only this user can read and then removed from the
# environment the broker sees.
set -euo pipefail
port=${QUORUMQ_LISTEN:-0.0.0.0:9092}
port=${port##*:}
peer_port=${QUORUMQ_PEER_LISTEN:-0.0.0.0:9093}
peer_port=${peer_port##*:}
if [ -n "${QUORUMQ_CLUSTER_SECRET:-}" ] && [ -z "${QUORUMQ_CLUSTER_SECRET_FILE:-}" ]; then
  secret_file=$(mktemp "${TMPDIR:-/tmp}/quorumq-cluster-secret.XXXXXX")
  chmod 600 "$secret_file"
  printf '%s\n' "$QUORUMQ_CLUSTER_SECRET" >"$secret_file"
  export QUORUMQ_CLUSTER_SECRET_FILE=$secret_file
fi
unset QUORUMQ_CLUSTER_SECRET
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
      peers+="${peers:+,}$((i + 1))@${template//\{ordinal\}/$i}:$peer_port"
    done
    export QUORUMQ_PEERS=$peers
  fi
  if [ -z "${QUORUMQ_ADVERTISED:-}" ]; then
    export QUORUMQ_ADVERTISED=${template//\{ordinal\}/$ordinal}:$port
  fi
fi
# Peer TLS from a directory of per-node certificates (one Secret or bind mount for every broker):
# node<N>.pem / node<N>.key for this broker's node id.
if [ -n "${QUORUMQ_PEER_TLS_DIR:-}" ] && [ -n "${QUORUMQ_NODE_ID:-}" ] && [ -z "${QUORUMQ_PEER_TLS_CERT_FILE:-}" ]; then
  export QUORUMQ_PEER_TLS_CERT_FILE=$QUORUMQ_PEER_TLS_DIR/node$QUORUMQ_NODE_ID.pem
  export QUORUMQ_PEER_TLS_KEY_FILE=$QUORUMQ_PEER_TLS_DIR/node$QUORUMQ_NODE_ID.key
fi
unset QUORUMQ_PEER_TLS_DIR
# QUORUMQ_SECURITY=off (local development): plain text, no logins, no ACLs, open admin endpoint.
if [ "${QUORUMQ_SECURITY:-on}" = off ]; then
  echo "quorumq-entrypoint: QUORUMQ_SECURITY=off: no TLS, no SASL, no admin token (development only)" >&2
  unset QUORUMQ_TLS_CERT_FILE QUORUMQ_TLS_KEY_FILE QUORUMQ_TLS_CA_FILE QUORUMQ_TLS_CLIENT_AUTH QUORUMQ_ADMIN_TLS \
    QUORUMQ_PEER_TLS_CERT_FILE QUORUMQ_PEER_TLS_KEY_FILE QUORUMQ_PEER_TLS_CA_FILE QUORUMQ_SASL \
    QUORUMQ_SASL_BOOTSTRAP_USER_FILE QUORUMQ_SUPER_USERS QUORUMQ_ADMIN_TOKEN_FILE
fi
unset QUORUMQ_SECURITY
echo "quorumq-entrypoint: node ${QUORUMQ_NODE_ID:-?} peers ${QUORUMQ_PEERS:-?} advertised ${QUORUMQ_ADVERTISED:-(listen)}" >&2
exec quorumq-broker "$@"
