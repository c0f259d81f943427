"""DESIGN §5 / issue 4: when a PUBLISH reaches no node (the recipient's node
died and its records are not reaped yet), the router re-reads the session
once; a message then goes to offline storage and an iq request is answered
with service-unavailable, so nothing vanishes."""
import roost_harness as h
from roost_harness import body_of, stanza_error


def login(raw, port, u, res):
    c = raw(port)
    c.login(u[0], u[2], resource=res)
    return c


def test_message_to_dead_node_goes_offline(node_factory, raw, user, redis):
    n1, n2 = node_factory(), node_factory()
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, n1.port, ua, "a")
    b = login(raw, n2.port, ub, "b")
    b.presence(priority=0)
    a.iq("get", h.DOMAIN, "<ping xmlns='urn:xmpp:ping'/>")   # settle
    n2.kill()                      # SIGKILL: bob's record stays behind
    a.message(b.jid, "while you were dead")
    a.message(ub[1], "bare too")
    h.wait_until(lambda: int(redis.cli("LLEN", "roost:offline:{%s}" % ub[1]) or 0) == 2,
                 what="both messages stored offline")
    b2 = login(raw, n1.port, ub, "b")      # same resource, replaces the stale record
    b2.presence(priority=0)
    got = sorted(body_of(b2.next_message()) for _ in range(2))
    assert got == ["bare too", "while you were dead"]


def test_iq_to_dead_node_bounces(node_factory, raw, user):
    n1, n2 = node_factory(), node_factory()
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, n1.port, ua, "a")
    b = login(raw, n2.port, ub, "b")
    n2.kill()
    r = a.iq("get", b.jid, "<query xmlns='jabber:iq:version'/>")
    assert r.get("type") == "error"
    assert stanza_error(r)[1] == "service-unavailable"
