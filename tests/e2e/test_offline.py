"""XEP-0160 offline messages: stored in Redis when no resource is
available, delivered in order with XEP-0203 delay on initial presence with
non-negative priority, removed once delivered, capped with bounces."""
import roost_harness as h
from roost_harness import body_of, stanza_error

NS_DELAY = "urn:xmpp:delay"


def login(raw, port, u, res):
    c = raw(port)
    c.login(u[0], u[2], resource=res)
    return c


def quiet(c, seconds=1.0):
    try:
        m = c.next_message(timeout=seconds)
    except TimeoutError:
        return True
    raise AssertionError("unexpected message: %r" % m)


def test_stored_then_delivered_in_order_with_delay(node, raw, user, redis):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, None, ua, "a")
    for i in range(3):
        a.message(ub[1], "m%d" % i)
    # a full JID of an offline user is treated like the bare JID
    a.message(ub[1] + "/gone", "m3", typ="normal")
    h.wait_until(lambda: int(redis.cli("LLEN", "roost:offline:{%s}" % ub[1]) or 0) == 4,
                 what="4 offline messages stored")
    b = login(raw, None, ub, "b")
    b.presence(priority=0)
    got = [b.next_message() for _ in range(4)]
    assert [body_of(m) for m in got] == ["m0", "m1", "m2", "m3"]
    for m in got:
        d = m.find("{%s}delay" % NS_DELAY)
        assert d is not None and d.get("from") == h.DOMAIN and d.get("stamp").endswith("Z")
        assert m.get("from") == a.jid
    assert int(redis.cli("LLEN", "roost:offline:{%s}" % ub[1]) or 0) == 0
    # a second resource gets nothing: they were removed once delivered
    b2 = login(raw, None, ub, "b2")
    b2.presence(priority=0)
    assert quiet(b2)


def test_negative_priority_gets_nothing(node, raw, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, None, ua, "a")
    a.message(ub[1], "later")
    b = login(raw, None, ub, "neg")
    b.presence(priority=-1)
    assert quiet(b)
    b2 = login(raw, None, ub, "pos")
    b2.presence(priority=1)
    assert body_of(b2.next_message()) == "later"


def test_unknown_user_bounced(node, raw, user):
    ua = user(prefix="alice")
    a = login(raw, None, ua, "a")
    a.message("nobody-%s@%s" % (h.uniq(), h.DOMAIN), "hello?")
    err = a.next_message()
    assert err.get("type") == "error"
    assert stanza_error(err)[1] == "service-unavailable"


def test_cap_bounces_new_messages(node_factory, raw, user, redis):
    n = node_factory(env={"ROOST_LIMITS_MAX_OFFLINE": "2"})
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, n.port, ua, "a")
    for i in range(3):
        a.message(ub[1], "c%d" % i)
    err = a.next_message()
    assert err.get("type") == "error" and stanza_error(err)[1] == "service-unavailable"
    assert body_of(err) == "c2"
    b = login(raw, n.port, ub, "b")
    b.presence(priority=0)
    assert [body_of(b.next_message()) for _ in range(2)] == ["c0", "c1"]


def test_headline_not_stored(node, raw, user, redis):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, None, ua, "a")
    a.message(ub[1], "news", typ="headline")
    a.message(ub[1], "chat after")
    h.wait_until(lambda: int(redis.cli("LLEN", "roost:offline:{%s}" % ub[1]) or 0) == 1,
                 what="the chat message stored")
    b = login(raw, None, ub, "b")
    b.presence(priority=0)
    assert body_of(b.next_message()) == "chat after"
    assert quiet(b)
