"""XEP-0280 Message Carbons: enable/disable, sent and received copies,
<private/> and no-copy, across one and two nodes."""
import roost_harness as h
from roost_harness import body_of

NS_C = "urn:xmpp:carbons:2"
NS_F = "urn:xmpp:forward:0"


def enable(c, on=True):
    r = c.iq("set", None, "<%s xmlns='%s'/>" % ("enable" if on else "disable", NS_C))
    assert r.get("type") == "result"


def forwarded(msg, kind):
    w = msg.find("{%s}%s" % (NS_C, kind))
    assert w is not None, "no <%s/> in %r" % (kind, msg)
    f = w.find("{%s}forwarded" % NS_F)
    inner = f.find("{%s}message" % h.NS_CLIENT)
    return inner


def assert_quiet(c, seconds=1.0):
    """No message arrives within `seconds` (a carbon would come sooner)."""
    try:
        m = c.next_message(timeout=seconds)
    except TimeoutError:
        return
    raise AssertionError("unexpected message: %r" % m)


def login(raw, port, u, res):
    c = raw(port)
    c.login(u[0], u[2], resource=res)
    return c


def three_clients(node_factory, raw, user, two_nodes=False):
    n1 = node_factory()
    n2 = node_factory() if two_nodes else n1
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a1 = login(raw, n1.port, ua, "a1")
    a2 = login(raw, n2.port, ua, "a2")
    b = login(raw, n1.port, ub, "b")
    return a1, a2, b


def test_disco_advertises_carbons(node, raw, user):
    u = user()
    c = login(raw, node.port, u, "r")
    r = c.iq("get", h.DOMAIN, "<query xmlns='http://jabber.org/protocol/disco#info'/>")
    feats = [f.get("var") for f in r.find("{http://jabber.org/protocol/disco#info}query").children]
    assert NS_C in feats


def check_sent_and_received(a1, a2, b):
    enable(a1)
    enable(a2)
    a1.message(b.jid, "to bob")
    assert body_of(b.next_message()) == "to bob"
    copy = a2.next_message()
    assert copy.get("from") == a1.jid.split("/")[0]
    inner = forwarded(copy, "sent")
    assert body_of(inner) == "to bob"
    assert inner.get("from") == a1.jid
    # bob answers a1's full JID: a2 gets a received copy
    b.message(a1.jid, "to a1")
    assert body_of(a1.next_message()) == "to a1"
    inner = forwarded(a2.next_message(), "received")
    assert body_of(inner) == "to a1"
    assert inner.get("from") == b.jid


def test_sent_and_received(node_factory, raw, user):
    check_sent_and_received(*three_clients(node_factory, raw, user))


def test_sent_and_received_across_nodes(node_factory, raw, user):
    check_sent_and_received(*three_clients(node_factory, raw, user, two_nodes=True))


def test_private_and_disabled_not_copied(node_factory, raw, user):
    a1, a2, b = three_clients(node_factory, raw, user)
    enable(a1)
    enable(a2)
    a1.send("<message type='chat' to='%s'><body>secret</body><private xmlns='%s'/></message>"
            % (b.jid, NS_C))
    assert body_of(b.next_message()) == "secret"
    assert_quiet(a2)
    enable(a2, False)
    a1.message(b.jid, "after disable")
    assert body_of(b.next_message()) == "after disable"
    assert_quiet(a2)


def test_headline_not_copied(node_factory, raw, user):
    a1, a2, b = three_clients(node_factory, raw, user)
    enable(a1)
    enable(a2)
    b.message(a1.jid, "news", typ="headline")
    assert body_of(a1.next_message()) == "news"
    assert_quiet(a2)
