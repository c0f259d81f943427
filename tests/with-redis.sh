#!/bin/sh
# Starts a private redis-server on a free loopback port, runs "$@" with
# ROOST_TEST_REDIS_PORT set, and stops the server whatever happens.
set -u
dir=$(mktemp -d /tmp/roost-redis.XXXXXX)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
i=0
until redis-cli -p "$port" ping >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "redis did not start" >&2; cat "$dir/redis.log" >&2; exit 1; }
    sleep 0.05
done
ROOST_TEST_REDIS_PORT=$port "$@"
rc=$?
kill "$(cat "$dir/redis.pid")" 2>/dev/null
i=0
while [ -f "$dir/redis.pid" ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.05; done
rm -rf "$dir"
exit $rc
