#!/usr/bin/env bash
# Makes what a secured quorumq cluster needs, into DIR (default deploy/secrets, git-ignored):
#   ca.pem / ca.key          a CA (keep ca.key offline in production)
#   broker.pem / broker.key  the client/Kafka listener certificate, valid for every HOST given
#   node<N>.pem / .key       per broker N (1..BROKERS) the peer-link certificate, named
#                            quorumq-node-<N> (mutual TLS between brokers, bound to the node id)
#   bootstrap-user           "admin:<random password>": the first super user (--sasl-bootstrap-user-file)
#   admin.password           that password alone (for `quorumq --user admin --password-file`)
#   admin-token              the admin endpoint's bearer token (/metrics, backups)
#   cluster-secret           the secret the brokers share (forwarded requests log in with it)
# Usage: deploy/make-secrets.sh [DIR] [BROKERS] [HOST...]   (default: deploy/secrets 3 broker1
#        broker2 broker3 localhost, plus IP 127.0.0.1). Existing files are kept: run it again
#        safely; delete DIR to start over. Needs the openssl command. OWNER=UID:GID chowns the
#        files (compose: 10001:10001, the image's user; needs root).
set -euo pipefail
dir=${1:-$(dirname "$0")/secrets}
brokers=${2:-3}
shift $(( $# >= 2 ? 2 : $# )) || true
hosts=("$@")
[ ${#hosts[@]} -gt 0 ] || hosts=(broker1 broker2 broker3 localhost)
command -v openssl >/dev/null || { echo "make-secrets: needs the openssl command (apt-get install openssl)" >&2; exit 2; }
mkdir -p "$dir"
cd "$dir"
umask 077
say() { echo "make-secrets: $*" >&2; }
rand() { head -c "$1" /dev/urandom | base64 | tr -d '/+=\n'; }
if [ ! -f ca.pem ]; then
  say "CA (ca.pem)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj /CN=quorumq-ca -keyout ca.key -out ca.pem 2>/dev/null
fi
leaf() {  # leaf NAME CN SAN
  [ -f "$1.pem" ] && return 0
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$2" \
    -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -extfile "$1.ext" \
    -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
san="IP:127.0.0.1"
for h in "${hosts[@]}"; do san+=",DNS:$h"; done
say "broker certificate for ${hosts[*]} (broker.pem)"
leaf broker "${hosts[0]}" "$san"
for ((n = 1; n <= brokers; n++)); do leaf "node$n" "quorumq-node-$n" "DNS:quorumq-node-$n"; done
say "peer certificates node1..node$brokers"
[ -f bootstrap-user ] || { pw=$(rand 24); printf 'admin:%s\n' "$pw" > bootstrap-user; printf '%s\n' "$pw" > admin.password; }
[ -f admin-token ] || rand 32 > admin-token
[ -f cluster-secret ] || rand 32 > cluster-secret
chmod 700 . ; chmod 600 ./*
# OWNER=10001:10001 (the image's quorumq user): the brokers in containers read the bind mount.
if [ -n "${OWNER:-}" ]; then chown -R "$OWNER" . ; fi
say "done: $(pwd)"
