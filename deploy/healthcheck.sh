#!/bin/bash
# quorumq-healthcheck [PATH]: GET http://127.0.0.1:<admin port>PATH (default /healthz) with bash's
# /dev/tcp, so the image needs no curl. Exit 0 on HTTP 200, 1 otherwise.
set -u
path=${1:-/healthz}
port=${QUORUMQ_ADMIN_LISTEN:-127.0.0.1:9644}
port=${port##*:}
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$path" >&3
IFS= read -r -t 3 status <&3 || exit 1
case "$status" in
  "HTTP/1."?" 200 "*) exit 0 ;;
  *) echo "quorumq-healthcheck: $path answered: ${status%$'\r'}" >&2; exit 1 ;;
esac
