#!/bin/sh
# Builds the images, starts docker/compose.yml (Redis with AOF, three nodes,
# HAProxy with the PROXY protocol v2), logs clients in through HAProxy,
# restarts every node in turn while they exchange messages, and checks that
# no acknowledged message was lost (docker/cluster_check.py). Tears the
# cluster down afterwards (KEEP=1 keeps it). `make docker-test` runs this.
#
# Needs docker and docker-compose (v1) or `docker compose` (v2). No image
# registry is used: the base image comes from docker/make-base.sh.
# Environment: PAIRS (sender/receiver pairs, default 4), KEEP, PROJECT.
set -eu

cd "$(dirname "$0")/.."
PROJECT=${PROJECT:-roosttest}
PAIRS=${PAIRS:-4}
PYTHON=${PYTHON:-/usr/bin/python3}

if docker compose version >/dev/null 2>&1; then
    COMPOSE="docker compose -p $PROJECT -f docker/compose.yml"
elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE="docker-compose -p $PROJECT -f docker/compose.yml"
else
    echo "test-cluster: neither 'docker compose' nor docker-compose is installed" >&2
    exit 1
fi
docker info >/dev/null 2>&1 || { echo "test-cluster: the docker daemon does not answer" >&2; exit 1; }

say() { echo "== $*"; }

WORK=$(mktemp -d /tmp/roost-docker-test.XXXXXX)
export ROOST_TLS_DIR="$WORK/tls"
cleanup() {
    rc=$?
    if [ "$rc" != 0 ]; then
        say "logs (last lines)"
        $COMPOSE logs --no-color --tail 40 2>&1 | tail -150 || true
    fi
    if [ -z "${KEEP:-}" ]; then
        say "tearing down"
        $COMPOSE down -v --remove-orphans >/dev/null 2>&1 || true
        rm -rf "$WORK"
    else
        say "KEEP=1: cluster left running ($COMPOSE), TLS in $WORK"
    fi
    exit $rc
}
trap cleanup EXIT INT TERM

say "base image"
sh docker/make-base.sh roost/bookworm-slim:local

for t in node redis haproxy; do
    say "building roost/$t:local"
    docker build --network host -q -f docker/Dockerfile --target "$t" -t "roost/$t:local" . >/dev/null
done

# An older node build without c2s.proxy_protocol refuses the key, and then
# HAProxy must not send the header either.
if docker run --rm --network none roost/node:local --check-config --domain localhost \
        --set c2s.proxy_protocol=true --set c2s.require_encryption=false >/dev/null 2>&1; then
    export ROOST_PROXY_PROTOCOL=true
    say "nodes speak the PROXY protocol: HAProxy sends v2 headers"
else
    export ROOST_PROXY_PROTOCOL=false
    say "WARNING: this roost-node has no c2s.proxy_protocol:" \
        "HAProxy runs without send-proxy-v2"
fi

say "TLS certificate for localhost"
mkdir -p "$ROOST_TLS_DIR"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost \
    -keyout "$ROOST_TLS_DIR/key.pem" -out "$ROOST_TLS_DIR/cert.pem" >/dev/null 2>&1
# The node runs as uid 10001; a test key may be world-readable.
chmod 0644 "$ROOST_TLS_DIR/key.pem" "$ROOST_TLS_DIR/cert.pem"
chmod 0755 "$ROOST_TLS_DIR"

say "starting the cluster"
$COMPOSE down -v --remove-orphans >/dev/null 2>&1 || true
$COMPOSE up -d --no-build
for n in node1 node2 node3; do
    i=0
    until $COMPOSE exec -T "$n" roost-healthcheck /readyz; do
        i=$((i + 1))
        if [ "$i" -gt 60 ]; then
            echo "test-cluster: $n not ready after 60 s" >&2
            exit 1
        fi
        sleep 1
    done
    echo "$n ready"
done

say "accounts"
: >"$WORK/accounts"
k=0
while [ "$k" -lt $((PAIRS * 2)) ]; do
    jid="dt$k-$$@localhost"
    pw="pw-$k-$$"
    echo "$pw" | $COMPOSE exec -T node1 roostctl --redis redis://redis:6379 \
        user add "$jid" --password-stdin >/dev/null
    echo "$jid $pw" >>"$WORK/accounts"
    k=$((k + 1))
done
$COMPOSE exec -T node1 roostctl --redis redis://redis:6379 stats

say "traffic through HAProxy and a rolling restart"
$PYTHON docker/cluster_check.py --port 15222 --accounts "$WORK/accounts" --compose "$COMPOSE"

say "after the restart"
$COMPOSE exec -T node1 roostctl --redis redis://redis:6379 node list
say "docker-test passed"
