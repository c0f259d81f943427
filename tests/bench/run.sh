#!/bin/sh
# `make bench`: a private redis-server and 2 roost-node processes on free
# loopback ports, roost-bench's standard scenarios, one table; everything
# started here is stopped on exit. The nodes run without TLS (SCRAM over
# loopback) and without the per-address limits: every bench client comes
# from 127.0.0.1. Usage: tests/bench/run.sh [BUILD_DIR]
# BENCH_SCENARIOS overrides the scenario list (see roost-bench --help);
# BENCH_NODE_WRAPPER runs each node under a profiler (e.g. "heaptrack -o
# DIR/node"; CPU and RSS figures are then the wrapper's).
set -eu

BUILD_DIR=${1:-build}
BIN=$BUILD_DIR/bin
RUN_DIR=$BUILD_DIR/bench-run
PY=/usr/bin/python3
SCENARIOS=${BENCH_SCENARIOS:-"idle:10000:3 idle:19000:3:1 login:2000 login:10000 window:1000:4:10 rate:1000:8000:10"}

die() { echo "bench: $*" >&2; exit 1; }

for b in "$BIN/roost-node" "$BIN/roost-bench"; do
    [ -x "$b" ] || die "$b is missing; run 'make bench'"
done
command -v redis-server >/dev/null 2>&1 || die "redis-server not found (sh ops/deps.sh)"
command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found (sh ops/deps.sh)"

# Up to 19k client sockets here, and as many on one node (idle:19000:3:1):
# raise the soft fd limit as far as the hard limit allows (children inherit it).
hard=$(ulimit -Hn)
want=20000
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want" 2>/dev/null || echo "bench: could not raise the fd limit (now $(ulimit -n))" >&2

rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)

free_port() {
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

redis_pid=
node_pids=

# shellcheck disable=SC2317 # reached through the traps
cleanup() {
    trap - EXIT INT TERM
    for p in $node_pids; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in $node_pids; do
        # Bounded: a node that does not stop within 10 s is killed.
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ -n "$redis_pid" ]; then
        kill -TERM "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN_DIR" --save '' \
    --appendonly no --daemonize no --logfile "$RUN_DIR/redis.log" </dev/null >/dev/null 2>&1 &
redis_pid=$!
i=0
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do
    kill -0 "$redis_pid" 2>/dev/null || die "redis-server exited; see $RUN_DIR/redis.log"
    i=$((i + 1)); [ $i -le 100 ] || die "redis-server did not answer within 10 s"
    sleep 0.1
done

ports=
args=
for n in 1 2; do
    port=$(free_port)
    # The bench speaks plaintext SCRAM on loopback: encryption is switched
    # off in the file explicitly, whatever the default becomes.
    cat >"$RUN_DIR/node$n.yaml" <<EOF
node:
  id: bench-$n
domains: [localhost]
c2s:
  bind: ["127.0.0.1"]
  port: $port
  require_encryption: false
  tls_port: 0
limits:
  max_conns_per_ip: 0
  max_new_conns_per_ip_per_s: 0
admin:
  port: 0
redis:
  host: 127.0.0.1
  port: $REDIS_PORT
log:
  level: warn
EOF
    # shellcheck disable=SC2086 # BENCH_NODE_WRAPPER is a command line
    ${BENCH_NODE_WRAPPER:-} "$BIN/roost-node" -c "$RUN_DIR/node$n.yaml" </dev/null \
        >"$RUN_DIR/node$n.log" 2>&1 &
    pid=$!
    node_pids="$node_pids $pid"
    ports="$ports $port"
    args="$args --port $port --node-pid $pid"
done

# A node is ready once it listens and holds its lease in Redis.
n=0
for port in $ports; do
    n=$((n + 1))
    i=0
    until $PY -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.5).close()" \
            2>/dev/null && [ "$(redis-cli -p "$REDIS_PORT" exists "roost:node:bench-$n")" = 1 ]; do
        i=$((i + 1)); [ $i -le 100 ] || die "node $n not ready within 10 s; see $RUN_DIR/node$n.log"
        sleep 0.1
    done
done

echo "bench: redis :$REDIS_PORT (pid $redis_pid), nodes:$ports (pids$node_pids), fd limit $(ulimit -n)" >&2
echo "bench: scenarios: $SCENARIOS" >&2
# shellcheck disable=SC2086 # word splitting of the lists is wanted
"$BIN/roost-bench" --redis "redis://127.0.0.1:$REDIS_PORT" --redis-pid "$redis_pid" \
    $args --sources 8 --inflight 200 $SCENARIOS | tee "$RUN_DIR/table.txt"

for n in 1 2; do
    w=$(grep -c . "$RUN_DIR/node$n.log" || true)
    [ "$w" = 0 ] || echo "bench: node $n logged $w warning/error lines (see $RUN_DIR/node$n.log)" >&2
done
