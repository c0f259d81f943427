# Cluster membership under faults (DESIGN §6): a SIGKILLed node's sessions
# are reaped by the survivors; a node stopped past its lease closes its
# clients, never overwrites what others wrote meanwhile and comes back with a
# new epoch; a Redis restart does not take the cluster down; roostctl shows
# the nodes. Short leases so that every wait stays a few seconds.

import signal

import pytest

import roost_harness as h

LEASE_MS = 2000
FAST = {
    "ROOST_CLUSTER_LEASE_MS": str(LEASE_MS),
    "ROOST_CLUSTER_RENEW_MS": "500",
    "ROOST_CLUSTER_REAP_INTERVAL_MS": "500",
}
# Lease expiry + a reaper pass + slack for a loaded machine.
REAP_WAIT = LEASE_MS / 1000.0 + 8.0


@pytest.fixture
def own_redis():
    """A private redis-server for tests that restart it. Requested before
    node_factory, so the nodes are stopped before it is."""
    r = h.Redis()
    try:
        r.start()
        yield r
    finally:
        r.stop()


def login(raw, port, u, resource):
    c = raw(port)
    c.login(u[0], u[2], domain=u[1].split("@")[1], resource=resource)
    return c


def sessions(ctl, bare):
    """{full jid: node id} from `roostctl session list`."""
    r = ctl.run("session", "list", bare)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 2:
            out[f[0]] = f[1]
    return out


def lease_epoch(redis, node_id):
    v = redis.cli("GET", "roost:node:" + node_id).strip()
    for w in v.split():
        if w.startswith("epoch="):
            return int(w[6:])
    return 0


def node_gone(redis, node_id):
    return (redis.cli("EXISTS", "roost:node:" + node_id).strip() == "0"
            and redis.cli("EXISTS", "roost:nodesess:" + node_id).strip() == "0"
            and node_id not in redis.cli("ZRANGE", "roost:nodes", "0", "-1").split())


def login_eventually(raw, port, u, resource, timeout=h.WAIT):
    """Logs in, retrying while the node is not (yet) serving."""
    last = []

    def attempt():
        try:
            return login(raw, port, u, resource)
        except (OSError, AssertionError, h.StreamClosed, TimeoutError) as e:
            last[:] = [e]
            return None
    try:
        return h.wait_until(attempt, timeout=timeout, step=0.2, what="a login")
    except TimeoutError:
        raise AssertionError("could not log in: %r" % last)


def test_sigkill_sessions_reaped(redis, node_factory, raw, user, ctl):
    n1, n2 = node_factory(env=FAST), node_factory(env=FAST)
    u, v = user(prefix="kill"), user(prefix="stay")
    login(raw, n1.port, u, "r")
    cv = login(raw, n1.port, v, "only")
    cv.presence()
    cv.sync()
    assert sessions(ctl, v[1]) == {v[1] + "/only": n1.node_id}

    n1.kill()
    # The same full JID binds on another node at once: bind replaces, no
    # need to wait for the reaper.
    c2 = login(raw, n2.port, u, "r")
    assert sessions(ctl, u[1]) == {u[1] + "/r": n2.node_id}

    h.wait_until(lambda: redis.hkeys("roost:sess:{%s}" % v[1]) == [],
                 timeout=REAP_WAIT, what="the dead node's session to be reaped")
    h.wait_until(lambda: node_gone(redis, n1.node_id), timeout=REAP_WAIT,
                 what="the dead node to leave the registry")
    # The survivor's record was not touched, and it still works.
    assert sessions(ctl, u[1]) == {u[1] + "/r": n2.node_id}
    assert redis.hkeys("roost:sess:{%s}" % u[1]) == ["r"]
    c2.sync()
    assert n2.alive()


def test_sigstop_past_lease(redis, node_factory, raw, user, ctl):
    n1, n2 = node_factory(env=FAST), node_factory(env=FAST)
    u, w = user(prefix="moved"), user(prefix="left")
    c1 = login(raw, n1.port, u, "r")
    cw = login(raw, n1.port, w, "w")
    ep1 = lease_epoch(redis, n1.node_id)
    assert ep1 > 0

    n1.proc.send_signal(signal.SIGSTOP)
    try:
        h.wait_until(lambda: redis.cli("EXISTS", "roost:node:" + n1.node_id).strip() == "0",
                     timeout=REAP_WAIT, what="the stopped node's lease to expire")
        # Meanwhile the same full JID binds on node 2.
        c2 = login(raw, n2.port, u, "r")
        assert sessions(ctl, u[1]) == {u[1] + "/r": n2.node_id}
    finally:
        n1.proc.send_signal(signal.SIGCONT)

    # Node 1 ends its clients (a stream error, then the TCP close).
    for c in (cw, c1):
        seen = c.wait_closed(timeout=h.WAIT)
        assert h.EOF in seen or c.closed
    # It comes back under a new epoch ...
    h.wait_until(lambda: lease_epoch(redis, n1.node_id) > ep1, timeout=h.WAIT,
                 what="node 1 to register with a new epoch")
    # ... without having overwritten what node 2 wrote.
    assert sessions(ctl, u[1]) == {u[1] + "/r": n2.node_id}
    h.wait_until(lambda: redis.hkeys("roost:sess:{%s}" % w[1]) == [], timeout=REAP_WAIT,
                 what="node 1's old record of w to go")
    c2.sync()
    # And serves again.
    c3 = login_eventually(raw, n1.port, w, "again")
    assert sessions(ctl, w[1]) == {w[1] + "/again": n1.node_id}
    c3.sync()
    assert n1.alive() and n2.alive()


def test_redis_restart(own_redis, node_factory, raw):
    ctl = h.Ctl(own_redis)
    n1 = node_factory(env=FAST, redis_=own_redis)
    n2 = node_factory(env=FAST, redis_=own_redis)
    u = h.new_user(ctl, prefix="rr")
    login(raw, n1.port, u, "a")
    login(raw, n2.port, u, "b")

    # With its data (persistence): the nodes re-assert their leases.
    own_redis.restart(keep_data=True, downtime=0.3)
    c = login_eventually(raw, n1.port, u, "after1")
    c.sync()
    c = login_eventually(raw, n2.port, u, "after2")
    c.sync()
    assert n1.alive() and n2.alive()

    # Empty (no persistence) and down for longer than a lease.
    own_redis.restart(keep_data=False, downtime=LEASE_MS / 1000.0 + 0.5)
    assert n1.alive() and n2.alive()
    u2 = h.new_user(ctl, prefix="rr2")
    for n in (n1, n2):
        c = login_eventually(raw, n.port, u2, "x" + str(n.port))
        c.sync()
    h.wait_until(lambda: lease_epoch(own_redis, n1.node_id) > 0
                 and lease_epoch(own_redis, n2.node_id) > 0, what="both leases")
    assert lease_epoch(own_redis, n1.node_id) != lease_epoch(own_redis, n2.node_id)
    assert n1.alive() and n2.alive()


def test_roostctl_node_list(redis, node_factory, raw, user, ctl):
    n1, n2 = node_factory(env=FAST), node_factory(env=FAST)
    u = user(prefix="nl")
    login(raw, n1.port, u, "one")
    login(raw, n2.port, u, "two")
    login(raw, n2.port, u, "three")

    def rows():
        r = ctl.run("node", "list")
        assert r.returncode == 0, r.stderr
        return {l.split()[0]: l for l in r.stdout.splitlines() if l.strip()}
    # The address is written by the renewal that follows listening.
    got = h.wait_until(lambda: (lambda g: g if all(
        "addr=127.0.0.1:%d" % n.port in g.get(n.node_id, "") for n in (n1, n2)) else None)(rows()),
        what="both nodes listed with their address")
    for n, count in ((n1, 1), (n2, 2)):
        line = got.get(n.node_id)
        assert line is not None, got
        assert " alive " in line
        assert "sessions=%d" % count in line, line
        assert "addr=127.0.0.1:%d" % n.port in line, line
        assert "epoch=%d" % lease_epoch(redis, n.node_id) in line
    assert ctl.run("node", "list", "extra").returncode == 2
