"""XEP-0191 Blocking Command: blocklist get, block/unblock with pushes to
the user's interested resources, bad requests and the limit, unavailable
presence to a newly blocked contact, and stanzas between blocked users."""
import pytest

import roost_harness as h
from roost_harness import body_of, stanza_error

NS_B = "urn:xmpp:blocking"
NS_BE = "urn:xmpp:blocking:errors"
NS_ROSTER = "jabber:iq:roster"


def login(raw, port, u, res):
    c = raw(port)
    c.login(u[0], u[2], resource=res)
    return c


def blocklist(c):
    r = c.iq("get", None, "<blocklist xmlns='%s'/>" % NS_B)
    assert r.get("type") == "result", r
    bl = r.find("{%s}blocklist" % NS_B)
    assert bl is not None, r
    return sorted(i.get("jid") for i in bl.findall("{%s}item" % NS_B))


def items(jids):
    return "".join("<item jid='%s'/>" % h.xesc(j) for j in jids)


def block(c, *jids):
    return c.iq("set", None, "<block xmlns='%s'>%s</block>" % (NS_B, items(jids)))


def unblock(c, *jids):
    return c.iq("set", None, "<unblock xmlns='%s'>%s</unblock>" % (NS_B, items(jids)))


def interested(c):
    """Fetches the roster so the resource gets pushes; False when the
    server does not answer roster gets yet."""
    r = c.iq("get", None, "<query xmlns='%s'/>" % NS_ROSTER)
    return r.get("type") == "result"


def next_push(c, kind):
    """The next block/unblock push on c: (payload, sorted item jids)."""
    p = c.next(name="iq", skip=lambda e: e.get("type") != "set"
               or e.find("{%s}%s" % (NS_B, kind)) is None)
    assert p.get("to") == c.jid
    assert p.get("from") in (None, c.jid.split("/")[0])
    pl = p.find("{%s}%s" % (NS_B, kind))
    return pl, sorted(i.get("jid") for i in pl.findall("{%s}item" % NS_B))


def assert_error(r, cond, typ=None):
    assert r.get("type") == "error", r
    e = stanza_error(r)
    assert e is not None and e[1] == cond, r
    if typ is not None:
        assert e[0] == typ, r


def test_blocklist_empty(node, raw, user):
    c = login(raw, node.port, user(), "r")
    assert blocklist(c) == []
    # Addressed to the own bare JID works the same.
    r = c.iq("get", c.jid.split("/")[0], "<blocklist xmlns='%s'/>" % NS_B)
    assert r.get("type") == "result"


def test_block_result_get_and_push(node, raw, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a1 = login(raw, node.port, ua, "a1")
    a2 = login(raw, node.port, ua, "a2")
    r = block(a1, ub[1], "Spam.Example/Bot", h.DOMAIN2)
    assert r.get("type") == "result", r
    assert r.get("id") is not None
    # Items are stored prepared (nameprep lowercases the domain).
    assert blocklist(a1) == sorted([ub[1], "spam.example/Bot", h.DOMAIN2])
    assert blocklist(a2) == blocklist(a1)
    # Blocking again is idempotent.
    assert block(a1, ub[1]).get("type") == "result"
    assert blocklist(a1) == sorted([ub[1], "spam.example/Bot", h.DOMAIN2])
    if not interested(a2):
        pytest.xfail("roster get not answered yet: no interested resource for pushes")
    interested(a1)
    r = block(a1, "carol@" + h.DOMAIN)
    assert r.get("type") == "result"
    _, got = next_push(a2, "block")
    assert got == ["carol@" + h.DOMAIN]
    # The requester is interested too, so it gets the push as well.
    _, got = next_push(a1, "block")
    assert got == ["carol@" + h.DOMAIN]


def test_unblock_and_unblock_all(node, raw, user):
    ua = user(prefix="alice")
    a1 = login(raw, node.port, ua, "a1")
    a2 = login(raw, node.port, ua, "a2")
    pushes = interested(a2)
    j1, j2 = "x1@" + h.DOMAIN, "x2@" + h.DOMAIN
    assert block(a1, j1, j2, h.DOMAIN2).get("type") == "result"
    if pushes:
        assert next_push(a2, "block")[1] == sorted([j1, j2, h.DOMAIN2])
    r = unblock(a1, j1, "never-blocked@" + h.DOMAIN)
    assert r.get("type") == "result", r
    assert blocklist(a1) == sorted([j2, h.DOMAIN2])
    if pushes:
        assert next_push(a2, "unblock")[1] == sorted([j1, "never-blocked@" + h.DOMAIN])
    r = unblock(a1)
    assert r.get("type") == "result", r
    assert blocklist(a1) == []
    if pushes:
        # Unblock-all is pushed as an empty <unblock/>.
        assert next_push(a2, "unblock")[1] == []
    # Unblocking with an empty list again is fine.
    assert unblock(a1).get("type") == "result"
    if not pushes:
        pytest.xfail("roster get not answered yet: pushes not checked")


def test_bad_requests(node, raw, user):
    c = login(raw, node.port, user(), "r")
    assert_error(c.iq("set", None, "<block xmlns='%s'/>" % NS_B), "bad-request", "modify")
    assert_error(block(c, "@" + h.DOMAIN), "jid-malformed")
    assert_error(block(c, "ok@" + h.DOMAIN, "bad@"), "jid-malformed")
    assert_error(unblock(c, "a@b/"), "jid-malformed")
    assert_error(c.iq("set", None, "<block xmlns='%s'><item/></block>" % NS_B), "bad-request")
    # A failed request stores nothing.
    assert blocklist(c) == []


def test_limit(node_factory, raw, user):
    n = node_factory(env={"ROOST_LIMITS_MAX_BLOCKLIST": "2"})
    c = login(raw, n.port, user(), "r")
    assert_error(block(c, "a@x.test", "b@x.test", "c@x.test"), "not-acceptable")
    assert blocklist(c) == []
    assert block(c, "a@x.test", "b@x.test").get("type") == "result"
    assert_error(block(c, "c@x.test"), "not-acceptable")
    # Re-blocking a present JID does not grow the list.
    assert block(c, "a@x.test").get("type") == "result"
    assert blocklist(c) == ["a@x.test", "b@x.test"]


def test_block_sends_unavailable(node, raw, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, node.port, ua, "a")
    b = login(raw, node.port, ub, "b")
    b.presence()
    a.presence()
    b.sync()
    # Directed presence: bob has seen alice's resource.
    a.send("<presence to='%s'/>" % b.jid)
    p = b.next(name="presence", skip=lambda e: e.get("from") != a.jid)
    assert p.get("type") is None
    assert block(a, ub[1]).get("type") == "result"
    try:
        p = b.next(name="presence", timeout=3,
                   skip=lambda e: e.get("from") != a.jid)
    except TimeoutError:
        pytest.xfail("directed presence not recorded yet (presence module)")
    assert p.get("type") == "unavailable"


def test_block_unavailable_to_subscriber_only(node, raw, user):
    ua, ub, uc = user(prefix="alice"), user(prefix="bob"), user(prefix="carol")
    a = login(raw, node.port, ua, "a")
    b = login(raw, node.port, ub, "b")
    c = login(raw, node.port, uc, "c")
    for x in (a, b, c):
        x.presence()
        x.sync()
    # bob subscribes to alice's presence and she approves: sub 'from'.
    b.send("<presence type='subscribe' to='%s'/>" % ua[1])
    a.next(name="presence", skip=lambda e: e.get("type") != "subscribe")
    a.send("<presence type='subscribed' to='%s'/>" % ub[1])
    try:
        b.next(name="presence", timeout=3,
               skip=lambda e: e.get("from") != a.jid or e.get("type") is not None)
    except TimeoutError:
        pytest.xfail("presence subscriptions not wired yet")
    assert block(a, ub[1], uc[1]).get("type") == "result"
    p = b.next(name="presence", skip=lambda e: e.get("from") != a.jid)
    assert p.get("type") == "unavailable"
    # carol never saw alice's presence: she learns nothing.
    with pytest.raises(TimeoutError):
        c.next(name="presence", timeout=1, skip=lambda e: e.get("from") != a.jid)


def blocked_pair(node, raw, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, node.port, ua, "a")
    b = login(raw, node.port, ub, "b")
    a.presence()
    b.presence()
    a.sync()
    b.sync()
    assert block(a, ub[1]).get("type") == "result"
    return a, b


def test_blocked_contact_message_bounced(node, raw, user):
    a, b = blocked_pair(node, raw, user)
    b.message(a.jid.split("/")[0], "let me in")
    r = b.next_message()
    assert r.get("type") == "error", r
    assert stanza_error(r)[1] == "service-unavailable"
    b.send("<iq type='get' id='v1' to='%s'><query xmlns='jabber:iq:version'/></iq>" % a.jid)
    r = b.next(name="iq", skip=lambda e: e.get("id") != "v1")
    assert_error(r, "service-unavailable")
    # Nothing reached alice.
    a.sync()
    with pytest.raises(TimeoutError):
        a.next_message(timeout=1)


def test_message_to_blocked_contact_refused(node, raw, user):
    a, b = blocked_pair(node, raw, user)
    a.message(b.jid, "hi bob")
    r = a.next_message()
    assert r.get("type") == "error", r
    assert stanza_error(r) == ("cancel", "not-acceptable")
    assert r.find("{%s}error" % h.NS_CLIENT).find("{%s}blocked" % NS_BE) is not None
    b.sync()
    with pytest.raises(TimeoutError):
        b.next_message(timeout=1)
    # After unblocking, messages flow again.
    assert unblock(a, b.jid.split("/")[0]).get("type") == "result"
    a.message(b.jid, "hello again")
    assert body_of(b.next_message()) == "hello again"
