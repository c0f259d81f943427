#!/bin/bash
# Container health check without curl: one HTTP request to the node's admin
# port over bash's /dev/tcp. Usage: roost-healthcheck [PATH] (default
# /healthz; /readyz for readiness). Exit 0 on HTTP 200, 1 otherwise.
path=${1:-/healthz}
port=${ROOST_ADMIN_PORT:-5280}
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 3 status <&3 || exit 1
case "$status" in
"HTTP/1.1 200 "*) exit 0 ;;
*) exit 1 ;;
esac
