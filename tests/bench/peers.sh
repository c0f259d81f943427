#!/bin/sh
# `make bench-peers` (opt-in; never part of `make test` or `make bench`):
# roost-bench's scenarios against the peers of issue 8, Prosody and ejabberd
# from Debian (apt-get install prosody ejabberd; their system services are
# not used). Each runs as a private single-node instance: one virtual host
# `localhost`, c2s on a free 127.0.0.1 port without TLS, SCRAM-SHA-256 with
# hashed storage, no rate limits, its own config and data under a fresh
# /tmp directory. Accounts are written in bulk with the server's own tool;
# roost-bench then runs with --no-setup and the server's pid (CPU, RSS) and
# no Redis. One table per server; everything started here is stopped on exit.
# Usage: tests/bench/peers.sh [BUILD_DIR]
# PEERS picks the servers (default "prosody ejabberd"); PEERS_SCENARIOS the
# scenarios (see roost-bench --help). idle comes first, on a fresh server
# (Lua's and Erlang's heaps do not shrink after a login storm, so a later
# idle phase's RSS delta would be too low); its logins derive and cache the
# salted passwords, so login:2000 after it uses cached ones.
set -eu

BUILD_DIR=${1:-build}
BENCH=$BUILD_DIR/bin/roost-bench
PY=/usr/bin/python3
PEERS=${PEERS:-"prosody ejabberd"}
SCENARIOS=${PEERS_SCENARIOS:-"idle:5000:5 login:2000 window:1000:4:10 rate:1000:8000:10"}

die() { echo "bench-peers: $*" >&2; exit 1; }
say() { echo "bench-peers: $*" >&2; }

[ -x "$BENCH" ] || die "$BENCH is missing; run 'make bench-peers'"

# Accounts bench00000.. for the largest scenario (roost-bench's defaults).
USERS=0
for s in $SCENARIOS; do
    n=$(echo "$s" | cut -d: -f2)
    case $n in '' | *[!0-9]*) die "bad scenario $s" ;; esac
    [ "$n" -le "$USERS" ] || USERS=$n
done
PASSWORD=bench-password

hard=$(ulimit -Hn)
want=20000
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want" 2>/dev/null || say "could not raise the fd limit (now $(ulimit -n))"

mkdir -p "$BUILD_DIR/bench-peers"
OUT_DIR=$(cd "$BUILD_DIR/bench-peers" && pwd)
RUN_DIR=$(mktemp -d /tmp/roost-peers.XXXXXX)
chmod 755 "$RUN_DIR"

free_port() {
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

listening() {
    $PY -c "import socket; socket.create_connection(('127.0.0.1',$1),0.5).close()" 2>/dev/null
}

# The pid of the process named $2 among $1's descendants (ejabberdctl runs
# beam.smp through sh and erl), or nothing.
descendant() {
    ps -e -o pid= -o ppid= -o comm= | $PY -c '
import sys
root, name = int(sys.argv[1]), sys.argv[2]
kids, comm = {}, {}
for line in sys.stdin:
    f = line.split(None, 2)
    if len(f) == 3:
        pid, ppid = int(f[0]), int(f[1])
        kids.setdefault(ppid, []).append(pid)
        comm[pid] = f[2].strip()
todo = [root]
while todo:
    p = todo.pop()
    if comm.get(p) == name and p != root:
        print(p)
        break
    todo.extend(kids.get(p, []))
' "$1" "$2"
}

# Waits up to $2 tenths of a second for pid $1 to exit; 0 when it did.
wait_gone() {
    i=0
    while kill -0 "$1" 2>/dev/null; do
        i=$((i + 1)); [ "$i" -le "$2" ] || return 1
        sleep 0.1
    done
}

prosody_pid=
ejabberd_ctl_pid=
ejabberd_pid=
EJ_CTL=

# shellcheck disable=SC2317 # reached through the traps
cleanup() {
    trap - EXIT INT TERM
    stop_prosody
    stop_ejabberd
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- Prosody ----------------------------------------------------------------

stop_prosody() {
    [ -n "$prosody_pid" ] || return 0
    kill -TERM "$prosody_pid" 2>/dev/null || true
    wait_gone "$prosody_pid" 100 || kill -KILL "$prosody_pid" 2>/dev/null || true
    wait "$prosody_pid" 2>/dev/null || true
    prosody_pid=
}

run_prosody() {
    command -v prosody >/dev/null 2>&1 || { say "prosody not installed (apt-get install prosody); skipped"; return 0; }
    d=$RUN_DIR/prosody
    mkdir -p "$d/data" "$d/certs"
    port=$(free_port)
    cfg=$d/prosody.cfg.lua
    # c2s only, on loopback: no s2s, no HTTP, no offline storage, no
    # mod_limits; the admin shell (a unix socket in data_path) provisions.
    cat >"$cfg" <<EOF
run_as_root = true
pidfile = "$d/prosody.pid"
data_path = "$d/data"
certificates = "$d/certs"
admins = {}
modules_enabled = { "roster", "saslauth", "disco", "ping", "admin_shell" }
modules_disabled = { "s2s", "offline" }
authentication = "internal_hashed"
password_hash = "SHA-256"
storage = "internal"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
c2s_ports = { $port }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = {}
s2s_ports = {}
component_ports = {}
http_ports = {}
https_ports = {}
network_settings = { tcp_backlog = 1024 }
log = { warn = "$d/prosody.log" }
VirtualHost "localhost"
EOF
    prosody --config "$cfg" -F </dev/null >"$d/stdout.log" 2>&1 &
    prosody_pid=$!
    i=0
    until listening "$port" && [ -S "$d/data/prosody.sock" ]; do
        kill -0 "$prosody_pid" 2>/dev/null || die "prosody exited; see $d/stdout.log"
        i=$((i + 1)); [ $i -le 150 ] || die "prosody not ready within 15 s"
        sleep 0.1
    done
    version=$(prosodyctl --config "$cfg" about </dev/null 2>/dev/null | head -1)
    # One raw-Lua line in the admin shell creates every account inside the
    # server (usermanager, so the hashed SCRAM-SHA-256 records it writes are
    # the server's own); one prosodyctl call per account would take minutes.
    t0=$(date +%s)
    res=$(echo ">local um = require 'core.usermanager'; local n = 0; for i = 0, $((USERS - 1)) do if um.create_user(string.format('bench%05d', i), '$PASSWORD', 'localhost') then n = n + 1 end end; return n" |
          prosodyctl --config "$cfg" shell 2>&1 | sed -n 's/.*Result: \([0-9]*\).*/\1/p')
    [ "$res" = "$USERS" ] || die "prosody: created ${res:-no} accounts of $USERS"
    say "prosody: $version, c2s :$port, pid $prosody_pid, $USERS accounts in $(( $(date +%s) - t0 )) s"
    echo "== $version (Debian $(dpkg-query -W -f='${Version}' prosody)), single node, internal_hashed SCRAM-SHA-256 =="
    run_bench prosody "$port" "$prosody_pid"
    w=$(grep -c . "$d/prosody.log" || true)
    [ "$w" = 0 ] || { say "prosody logged $w warning/error lines:"; head -5 "$d/prosody.log" >&2; }
    stop_prosody
}

# ---- ejabberd ---------------------------------------------------------------

# ejabberdctl runs as root or as its install user, and through su as root,
# which resets the fd limit: run it as ejabberd with setpriv instead.
ejctl() {
    # shellcheck disable=SC2086 # EJ_CTL is the option list
    HOME=/var/lib/ejabberd setpriv --reuid ejabberd --regid ejabberd --init-groups \
        ejabberdctl $EJ_CTL "$@"
}

stop_ejabberd() {
    [ -n "$ejabberd_ctl_pid" ] || return 0
    if [ -n "$ejabberd_pid" ] && kill -0 "$ejabberd_pid" 2>/dev/null; then
        ejctl stop >/dev/null 2>&1 || true
        wait_gone "$ejabberd_pid" 150 || kill -KILL "$ejabberd_pid" 2>/dev/null || true
    fi
    kill -TERM "$ejabberd_ctl_pid" 2>/dev/null || true
    wait "$ejabberd_ctl_pid" 2>/dev/null || true
    ejabberd_ctl_pid=
    ejabberd_pid=
}

run_ejabberd() {
    command -v ejabberdctl >/dev/null 2>&1 || { say "ejabberd not installed (apt-get install ejabberd); skipped"; return 0; }
    [ "$(id -u)" = 0 ] || { say "ejabberd: ejabberdctl needs root (or the ejabberd user); skipped"; return 0; }
    command -v setpriv >/dev/null 2>&1 || { say "ejabberd: setpriv missing; skipped"; return 0; }
    d=$RUN_DIR/ejabberd
    mkdir -p "$d/spool" "$d/logs"
    port=$(free_port)
    dist=$(free_port)
    # A private node name; the distribution port is fixed, so no epmd is
    # started, and it listens on loopback only.
    cat >"$d/ejabberdctl.cfg" <<EOF
ERLANG_NODE=roost-peers@localhost
ERL_MAX_PORTS=32000
ERL_DIST_PORT=$dist
INET_DIST_INTERFACE=127.0.0.1
EOF
    printf '{lookup,["file","native"]}.\n{host,{127,0,0,1}, ["localhost"]}.\n' >"$d/inetrc"
    # No shaper, no access rules, big queues and stanzas, caches that hold
    # every bench account (the default 1000 would evict during logins).
    cat >"$d/ejabberd.yml" <<EOF
hosts: [localhost]
loglevel: warning
log_rotate_count: 0
certfiles: []
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha256
default_db: mnesia
cache_size: 200000
max_fsm_queue: 1000000
shaper: {}
shaper_rules: {}
acl: {}
access_rules: {}
listen:
  -
    port: $port
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 1024
    max_stanza_size: 1048576
    shaper: none
    starttls: false
    starttls_required: false
    max_fsm_queue: 1000000
modules:
  mod_roster: {}
  mod_disco: {}
  mod_ping: {}
EOF
    /usr/bin/python3 -c '
import sys
n, pw = int(sys.argv[1]), sys.argv[2]
print("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
print("<server-data xmlns=\"urn:xmpp:pie:0\"><host jid=\"localhost\">")
for i in range(n):
    print("<user name=\"bench%05d\" password=\"%s\"/>" % (i, pw))
print("</host></server-data>")' "$USERS" "$PASSWORD" >"$d/users.xml"
    chown -R ejabberd: "$d"
    EJ_CTL="--config-dir $d --logs $d/logs --spool $d/spool"
    ejctl foreground </dev/null >"$d/stdout.log" 2>&1 &
    ejabberd_ctl_pid=$!
    i=0
    until listening "$port"; do
        kill -0 "$ejabberd_ctl_pid" 2>/dev/null || die "ejabberd exited; see $d/stdout.log"
        i=$((i + 1)); [ $i -le 300 ] || die "ejabberd not ready within 30 s"
        sleep 0.1
    done
    ejabberd_pid=$(descendant "$ejabberd_ctl_pid" beam.smp)
    [ -n "$ejabberd_pid" ] || die "ejabberd: no beam.smp under pid $ejabberd_ctl_pid"
    # XEP-0227 import: ejabberd registers each account itself (stored as
    # SCRAM-SHA-256 per auth_password_format); one ejabberdctl register per
    # account would start a VM each time.
    t0=$(date +%s)
    # About 100 accounts/s: more than ejabberdctl's default 60 s call timeout.
    if ! ejctl --no-timeout import_piefxis "$d/users.xml" >"$d/import.log" 2>&1; then
        grep -v '^$\|inetrc\|ERROR REPORT' "$d/import.log" | tail -5 >&2
        die "ejabberd: import failed"
    fi
    n=$(ejctl registered_users localhost 2>/dev/null | grep -c '^bench' || true)
    [ "$n" = "$USERS" ] || die "ejabberd: $n accounts of $USERS after the import"
    version=$(ejctl status 2>/dev/null | sed -n 's/^\(ejabberd [^ ]*\) is running.*/\1/p')
    say "ejabberd: ${version:-?}, c2s :$port, beam.smp pid $ejabberd_pid, $USERS accounts in $(( $(date +%s) - t0 )) s"
    echo "== ${version:-ejabberd} (Debian $(dpkg-query -W -f='${Version}' ejabberd), OTP $(cat /usr/lib/erlang/releases/*/OTP_VERSION 2>/dev/null | head -1)), single node, mnesia, SCRAM-SHA-256 =="
    run_bench ejabberd "$port" "$ejabberd_pid"
    w=$(grep -c '\[error\]\|\[critical\]' "$d/logs/ejabberd.log" 2>/dev/null || true)
    [ "${w:-0}" = 0 ] || { say "ejabberd logged $w error lines:"; grep '\[error\]\|\[critical\]' "$d/logs/ejabberd.log" | head -5 >&2; }
    stop_ejabberd
}

# ---- the bench ----------------------------------------------------------------

run_bench() {
    say "$1: scenarios: $SCENARIOS (fd limit $(ulimit -n))"
    # Both partners of a message pair give the one port: a single node.
    # shellcheck disable=SC2086 # word splitting of the list is wanted
    "$BENCH" --no-setup --port "$2" --node-pid "$3" --sources 8 --inflight 200 \
        --password "$PASSWORD" $SCENARIOS | tee "$OUT_DIR/$1.txt"
    echo
}

for p in $PEERS; do
    case $p in
        prosody) run_prosody ;;
        ejabberd) run_ejabberd ;;
        *) die "unknown peer $p (prosody, ejabberd)" ;;
    esac
done
