# Nodes cache other users' session records (store/cache.h) and route with
# them. However the target moves between nodes, a message sent right after
# its new session is bound reaches the new session: the cache is
# invalidated through pub/sub, and a node that gets a stanza for a session
# it no longer has re-reads the record and forwards it.

import roost_harness as h
from roost_harness import body_of


def login(raw, port, u, resource):
    c = raw(port)
    c.login(u[0], u[2], domain=u[1].split("@")[1], resource=resource)
    return c


def bodies(client, n):
    return [body_of(client.next_message()) for _ in range(n)]


def test_cached_route_follows_a_resource_that_moved(node_factory, raw, user):
    nodes = [node_factory(), node_factory(), node_factory()]
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, nodes[0].port, ua, "a")
    b = login(raw, nodes[1].port, ub, "mob")
    # Warm alice's node: it now routes to bob from its cache.
    for i in range(5):
        a.message(b.jid, "warm %d" % i)
    assert bodies(b, 5) == ["warm %d" % i for i in range(5)]
    # Bob's resource moves back and forth between the other two nodes; the
    # old session is replaced (conflict) by the new one each time.
    for turn in range(6):
        port = nodes[2 if turn % 2 == 0 else 1].port
        nb = login(raw, port, ub, "mob")
        cond, _ = b.expect_stream_error()
        assert cond == "conflict"
        b = nb
        for i in range(3):
            a.message(b.jid, "turn %d msg %d" % (turn, i))
        assert bodies(b, 3) == ["turn %d msg %d" % (turn, i) for i in range(3)]


def test_cached_route_after_logout_and_login_elsewhere(node_factory, raw, user, redis):
    nodes = [node_factory(), node_factory(), node_factory()]
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, nodes[0].port, ua, "a")
    b = login(raw, nodes[1].port, ub, "mob")
    a.message(b.jid, "first")
    assert body_of(b.next_message()) == "first"
    # Bob leaves node 2 for good, then comes back on node 3: node 2 has no
    # session for him at all any more.
    b.end()
    h.wait_until(lambda: redis.hkeys("roost:sess:{%s}" % ub[1]) == [],
                 what="bob's session record removed")
    b = login(raw, nodes[2].port, ub, "mob")
    for i in range(3):
        a.message(b.jid, "again %d" % i)
    assert bodies(b, 3) == ["again %d" % i for i in range(3)]
    # And alice, who sent everything, got no error back.
    a.sync()
