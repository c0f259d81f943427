# Two nodes sharing one Redis: stanzas cross nodes over pub/sub, resource
# conflicts are resolved across nodes, one node's shutdown spares the other's
# sessions.

import roost_harness as h
from roost_harness import body_of


def login(raw, port, u, resource):
    c = raw(port)
    c.login(u[0], u[2], domain=u[1].split("@")[1], resource=resource)
    return c


def test_message_full_jid_across_nodes(node_factory, raw, user):
    n1, n2 = node_factory(), node_factory()
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, n1.port, ua, "a")
    b = login(raw, n2.port, ub, "b")
    a.message(b.jid, "over the bus")
    m = b.next_message()
    assert body_of(m) == "over the bus"
    assert m.get("from") == a.jid
    b.message(a.jid, "and back")
    assert body_of(a.next_message()) == "and back"


def test_message_bare_jid_across_nodes(node_factory, raw, user):
    n1, n2 = node_factory(), node_factory()
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a1 = login(raw, n1.port, ua, "one")
    a2 = login(raw, n2.port, ua, "two")
    b = login(raw, n1.port, ub, "b")
    a1.presence(1)
    a1.sync()
    a2.presence(7)
    a2.sync()
    b.message(ua[1], "to-bare")
    b.message(a1.jid, "marker")
    assert body_of(a2.next_message()) == "to-bare"
    assert body_of(a1.next_message()) == "marker"


def test_iq_across_nodes(node_factory, raw, user):
    n1, n2 = node_factory(), node_factory()
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, n1.port, ua, "a")
    b = login(raw, n2.port, ub, "b")
    a.send("<iq type='get' id='x1' to='%s'><query xmlns='urn:example:roost:x'/></iq>" % b.jid)
    got = b.next(name="iq")
    assert got.get("id") == "x1" and got.get("from") == a.jid
    b.send("<iq type='result' id='x1' to='%s'/>" % a.jid)
    r = a.next(name="iq")
    assert r.get("id") == "x1" and r.get("type") == "result"
    # Unknown resource on a user whose other resource is on the other node.
    r = a.iq("get", ub[1] + "/gone", "<ping xmlns='%s'/>" % h.NS_PING)
    assert r.get("type") == "error"
    assert h.stanza_error(r)[1] == "service-unavailable"


def test_conflict_across_nodes(node_factory, raw, user):
    n1, n2 = node_factory(), node_factory()
    u = user()
    old = login(raw, n1.port, u, "same")
    new = login(raw, n2.port, u, "same")
    cond, _ = old.expect_stream_error()
    assert cond == "conflict"
    new.sync()


def test_shutdown_of_one_node_spares_the_other(node_factory, raw, user, redis):
    n1, n2 = node_factory(), node_factory()
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, n1.port, ua, "a")
    b = login(raw, n2.port, ub, "b")
    assert n1.terminate() == 0
    cond, _ = a.expect_stream_error()
    assert cond == "system-shutdown"
    assert redis.hkeys("roost:sess:{%s}" % ua[1]) == []
    assert redis.hkeys("roost:sess:{%s}" % ub[1]) == ["b"]
    b.sync()
    b.message(b.jid, "still here")
    assert body_of(b.next_message()) == "still here"
