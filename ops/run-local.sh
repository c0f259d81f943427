#!/bin/sh
# `make run`: a private redis-server plus one roost-node for domain "localhost"
# on 127.0.0.1:5222 (STARTTLS offered) and 5223 (direct TLS), with a
# self-signed certificate for localhost made on first use under the build
# tree, and the demo account demo@localhost (password "demo").
# Ctrl-C or SIGTERM stops both. Usage: ops/run-local.sh [BUILD_DIR]
set -eu

BUILD_DIR=${1:-build}
RUN_DIR=$BUILD_DIR/run
REDIS_DIR=$RUN_DIR/redis
REDIS_PORT=${ROOST_REDIS_PORT:-6380}
C2S_PORT=${ROOST_C2S_PORT:-5222}
TLS_PORT=${ROOST_C2S_TLS_PORT:-5223}
TLS_DIR=$RUN_DIR/tls
NODE_BIN=$BUILD_DIR/bin/roost-node
CTL_BIN=$BUILD_DIR/bin/roostctl
NODE_LOG=$RUN_DIR/node.log

die() { echo "run-local: $*" >&2; exit 1; }

for b in "$NODE_BIN" "$CTL_BIN"; do
    [ -x "$b" ] || die "$b is missing; run 'make' first"
done
command -v redis-server >/dev/null 2>&1 || die "redis-server not found (sh ops/deps.sh)"
command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found (sh ops/deps.sh)"
command -v openssl >/dev/null 2>&1 || die "openssl not found (sh ops/deps.sh)"

mkdir -p "$REDIS_DIR"
REDIS_DIR=$(cd "$REDIS_DIR" && pwd)

redis_pid=
node_pid=
tail_pid=

# Stops whatever was started, newest first; the node gets SIGTERM so it can
# close its streams and remove its session records before Redis goes away.
# shellcheck disable=SC2317 # only reached through the traps below
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
        echo "run-local: stopping roost-node" >&2
        kill -TERM "$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
    if [ -n "$tail_pid" ]; then
        kill -TERM "$tail_pid" 2>/dev/null || true
        wait "$tail_pid" 2>/dev/null || true
    fi
    if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
        echo "run-local: stopping redis-server" >&2
        kill -TERM "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    die "port $REDIS_PORT already answers PING; set ROOST_REDIS_PORT to a free port"
fi

# Append-only file so the demo account (and anything else) survives restarts.
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" \
    --logfile "$REDIS_DIR/redis.log" --save '' --appendonly yes \
    --daemonize no </dev/null >/dev/null 2>&1 &
redis_pid=$!

i=0
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do
    kill -0 "$redis_pid" 2>/dev/null || die "redis-server exited; see $REDIS_DIR/redis.log"
    i=$((i + 1))
    [ "$i" -le 100 ] || die "redis-server did not answer within 10 s; see $REDIS_DIR/redis.log"
    sleep 0.1
done
echo "run-local: redis-server on 127.0.0.1:$REDIS_PORT (data in $REDIS_DIR)" >&2

REDIS_URL=redis://127.0.0.1:$REDIS_PORT
if ! printf 'demo\n' | "$CTL_BIN" --redis "$REDIS_URL" user add demo@localhost --password-stdin \
        >/dev/null 2>"$RUN_DIR/roostctl.err"; then
    # Already there from an earlier run is fine; anything else is not.
    "$CTL_BIN" --redis "$REDIS_URL" user list localhost 2>/dev/null | grep -qx 'demo@localhost' ||
        die "could not create demo@localhost: $(cat "$RUN_DIR/roostctl.err")"
fi

# Encryption is required by default: a self-signed certificate for
# localhost, made once and kept, stands in for a real one.
mkdir -p "$TLS_DIR"
if [ ! -s "$TLS_DIR/cert.pem" ] || [ ! -s "$TLS_DIR/key.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" -days 3650 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost \
        >"$RUN_DIR/openssl.log" 2>&1 || die "openssl req failed; see $RUN_DIR/openssl.log"
    echo "run-local: made a self-signed certificate in $TLS_DIR" >&2
fi

: >"$NODE_LOG"
ROOST_REDIS_HOST=127.0.0.1 ROOST_REDIS_PORT=$REDIS_PORT \
ROOST_C2S_BIND=127.0.0.1 ROOST_C2S_PORT=$C2S_PORT ROOST_C2S_TLS_PORT=$TLS_PORT \
ROOST_TLS_CERT=$TLS_DIR/cert.pem ROOST_TLS_KEY=$TLS_DIR/key.pem \
    "$NODE_BIN" --domain localhost </dev/null 2>>"$NODE_LOG" &
node_pid=$!
tail -n +1 -f "$NODE_LOG" >&2 &
tail_pid=$!

i=0
until grep -q 'msg="listening' "$NODE_LOG"; do
    kill -0 "$node_pid" 2>/dev/null || die "roost-node exited; see $NODE_LOG"
    i=$((i + 1))
    [ "$i" -le 100 ] || die "roost-node did not start listening within 10 s; see $NODE_LOG"
    sleep 0.1
done

cat <<EOF

  roost is running.
    JID:       demo@localhost
    password:  demo
    server:    127.0.0.1, port $C2S_PORT (STARTTLS), $TLS_PORT (direct TLS)
    security:  TLS is required (STARTTLS or direct TLS), with a self-signed
               certificate for localhost ($TLS_DIR/cert.pem): accept it in
               your client; no login without TLS
  node log:    $NODE_LOG     redis: $REDIS_URL
  Add users:   printf 'pw\\n' | $CTL_BIN --redis $REDIS_URL user add bob@localhost --password-stdin
  Stop:        Ctrl-C

EOF

set +e
wait "$node_pid"
rc=$?
set -e
node_pid=
echo "run-local: roost-node exited with status $rc" >&2
exit "$rc"
