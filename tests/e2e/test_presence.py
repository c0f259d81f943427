# Rosters, subscriptions and presence (RFC 6121 §2-§4, XEP-0237) over raw
# sockets: roster get/set/remove and pushes to interested resources only,
# the subscription handshake between two online users, a request waiting
# for an offline contact, pre-approval, presence broadcast and unavailable
# after a dropped connection, directed presence.

import roost_harness as h

NS_ROSTER = "jabber:iq:roster"
Q = "{%s}query" % NS_ROSTER
ITEM = "{%s}item" % NS_ROSTER
GROUP = "{%s}group" % NS_ROSTER


def login(raw, user, resource="r"):
    local, bare, pw = user
    c = raw()
    c.login(local, pw, resource=resource)
    return c


def roster_get(c, ver=None):
    v = (" ver='%s'" % ver) if ver is not None else ""
    r = c.iq("get", None, "<query xmlns='%s'%s/>" % (NS_ROSTER, v))
    assert r.get("type") == "result", r
    return r


def items_of(r):
    q = r.find(Q)
    return {i.get("jid"): i for i in q.findall(ITEM)} if q is not None else {}


def roster_set(c, item_xml):
    return c.iq("set", None, "<query xmlns='%s'>%s</query>" % (NS_ROSTER, item_xml))


def is_push(el):
    return el.name == "iq" and el.get("type") == "set" and el.find(Q) is not None


def next_push(c, jid=None):
    el = c.next(name="iq", skip=lambda e: not is_push(e) or
                (jid is not None and e.find(Q).find(ITEM).get("jid") != jid))
    # Pushes must be answered (RFC 6121 §2.1.6); the server ignores it.
    c.send("<iq type='result' id='%s'/>" % el.get("id"))
    return el.find(Q).find(ITEM), el


def next_presence(c, typ=None, frm=None):
    def skip(e):
        if e.get("type") != typ:
            return True
        return frm is not None and e.get("from") != frm
    return c.next(name="presence", skip=skip)


def pending(c):
    """Stanzas already received and not yet read (after a sync)."""
    return [e for e in c.reader.items if isinstance(e, h.Element)]


def online(raw, user, resource="r"):
    c = login(raw, user, resource)
    roster_get(c)
    c.presence()
    # Our own presence comes back to us (RFC 6121 §4.2.2).
    next_presence(c, None, c.jid)
    return c


# ------------------------------------------------------------------ roster

def test_roster_set_get_remove_and_push_to_interested_only(raw, user):
    alice, bob = user(), user()
    a1 = login(raw, alice, "one")
    a2 = login(raw, alice, "two")       # never asks for the roster

    r = roster_get(a1)
    ver0 = r.find(Q).get("ver")
    assert ver0 is not None and items_of(r) == {}

    # RFC 6121 §2.3.3: a group listed twice is a bad request.
    res = roster_set(a1, "<item jid='%s' name='Bob'><group>Friends</group>"
                         "<group>Friends</group></item>" % bob[1])
    assert res.get("type") == "error" and h.stanza_error(res)[1] == "bad-request", res
    res = roster_set(a1, "<item jid='%s' name='Bob'><group>Friends</group>"
                         "<group>Work</group></item>" % bob[1])
    assert res.get("type") == "result", res
    it, push = next_push(a1, bob[1])
    assert it.get("name") == "Bob"
    assert it.get("subscription") == "none"
    assert sorted(g.text for g in it.findall(GROUP)) == ["Friends", "Work"]
    ver1 = push.find(Q).get("ver")
    assert ver1 and ver1 != ver0

    # a2 is not interested: no push for it.
    a2.sync()
    assert not [e for e in pending(a2) if is_push(e)]

    # XEP-0237: the current version gets an empty result, an old one the roster.
    r = roster_get(a1, ver=ver1)
    assert r.find(Q) is None
    r = roster_get(a1, ver=ver0)
    assert set(items_of(r)) == {bob[1]}
    assert r.find(Q).get("ver") == ver1

    # Now a2 is interested too: both get the push of a change.
    roster_get(a2)
    assert roster_set(a1, "<item jid='%s' name='Robert'/>" % bob[1]).get("type") == "result"
    for c in (a1, a2):
        it, _ = next_push(c, bob[1])
        assert it.get("name") == "Robert"
        assert it.findall(GROUP) == []

    # The client cannot set the subscription state.
    assert roster_set(a1, "<item jid='%s' subscription='both'/>" % bob[1]).get("type") == "result"
    for c in (a1, a2):
        it, _ = next_push(c, bob[1])
        assert it.get("subscription") == "none"

    res = roster_set(a1, "<item jid='%s' subscription='remove'/>" % bob[1])
    assert res.get("type") == "result", res
    for c in (a1, a2):
        it, _ = next_push(c, bob[1])
        assert it.get("subscription") == "remove"
    assert items_of(roster_get(a1)) == {}

    # Removing what is not there.
    res = roster_set(a1, "<item jid='%s' subscription='remove'/>" % bob[1])
    assert h.stanza_error(res)[1] == "item-not-found"


def test_roster_set_validation(raw, user):
    alice = user()
    a = login(raw, alice)
    cases = [
        ("<item jid='@@bad'/>", "bad-request"),
        ("<item/>", "bad-request"),
        ("<item jid='x@localhost/res'/>", "bad-request"),
        ("<item jid='x@localhost'/><item jid='y@localhost'/>", "bad-request"),
        ("<item jid='x@localhost' name='%s'/>" % ("n" * 2000), "not-acceptable"),
        ("<item jid='x@localhost'><group></group></item>", "not-acceptable"),
        ("<item jid='x@localhost'>%s</item>"
         % "".join("<group>g%d</group>" % i for i in range(100)), "not-acceptable"),
    ]
    for payload, cond in cases:
        r = roster_set(a, payload)
        assert r.get("type") == "error", payload
        assert h.stanza_error(r)[1] == cond, (payload, r)
    assert items_of(roster_get(a)) == {}


# ------------------------------------------------------------ subscriptions

def test_subscribe_flow_both_online_then_presence_and_drop(raw, user):
    alice, bob = user(), user()
    a = online(raw, alice, "a")
    b = online(raw, bob, "b")

    a.send("<presence type='subscribe' to='%s'/>" % bob[1])
    it, _ = next_push(a, bob[1])
    assert it.get("ask") == "subscribe" and it.get("subscription") == "none"
    req = next_presence(b, "subscribe")
    assert req.get("from") == alice[1]          # bare JID (§3.1.2)

    b.send("<presence type='subscribed' to='%s'/>" % alice[1])
    it, _ = next_push(b, alice[1])
    assert it.get("subscription") == "from"
    it, _ = next_push(a, bob[1])
    assert it.get("subscription") == "to" and it.get("ask") is None
    ok = next_presence(a, "subscribed")
    assert ok.get("from") == bob[1]
    # Bob's current presence follows the approval (§3.1.5).
    next_presence(a, None, b.jid)

    # Presence updates reach the subscriber.
    b.send("<presence><status>busy</status></presence>")
    p = next_presence(a, None, b.jid)
    assert p.find("{jabber:client}status").text == "busy"
    assert p.get("to") == a.jid

    # Alice has no 'from' relation with Bob: her presence does not reach him.
    a.send("<presence><status>x</status></presence>")
    next_presence(a, None, a.jid)
    b.sync()
    assert not [e for e in pending(b) if e.name == "presence" and e.get("from") == a.jid]

    # A dropped TCP connection: the subscriber gets unavailable.
    b.close()
    p = next_presence(a, "unavailable", b.jid)
    assert p.get("from") == b.jid

    assert items_of(roster_get(a))[bob[1]].get("subscription") == "to"


def test_initial_presence_gets_contacts_presence(raw, user):
    alice, bob = user(), user()
    a = online(raw, alice, "a")
    b = online(raw, bob, "b")
    a.send("<presence type='subscribe' to='%s'/>" % bob[1])
    next_presence(b, "subscribe")
    b.send("<presence type='subscribed' to='%s'/>" % alice[1])
    next_presence(a, "subscribed")
    b.send("<presence><show>away</show></presence>")
    next_presence(a, None, b.jid)

    # A second resource of Alice logs in: it gets Bob's last presence (the
    # probe, answered from his record) and her other resource's presence.
    a2 = login(raw, alice, "a2")
    roster_get(a2)
    a2.presence(priority=1)
    got = {}
    for _ in range(3):
        p = a2.next(name="presence")
        got[p.get("from")] = p
    assert set(got) == {a.jid, b.jid, a2.jid}
    assert got[b.jid].find("{jabber:client}show").text == "away"
    # The first resource learns about the second.
    next_presence(a, None, a2.jid)

    # Unavailable goes to contacts and the other resource.
    a2.send("<presence type='unavailable'/>")
    next_presence(a, "unavailable", a2.jid)
    b.sync()
    assert not [e for e in pending(b) if e.get("from") == a2.jid]


def test_subscription_request_while_contact_offline(raw, user):
    alice, bob = user(), user()
    a = online(raw, alice, "a")
    a.send("<presence type='subscribe' to='%s'><status>hi</status></presence>" % bob[1])
    it, _ = next_push(a, bob[1])
    assert it.get("ask") == "subscribe"

    b = login(raw, bob, "b")
    roster_get(b)
    b.presence()
    req = next_presence(b, "subscribe")
    assert req.get("from") == alice[1]
    assert req.find("{jabber:client}status").text == "hi"

    # Still pending at the next login, until answered.
    b.close()
    b = login(raw, bob, "b2")
    b.presence()
    next_presence(b, "subscribe", alice[1])
    b.send("<presence type='unsubscribed' to='%s'/>" % alice[1])
    # The roster push comes first, then the stanza (§3.2.3).
    it, _ = next_push(a, bob[1])
    assert it.get("ask") is None and it.get("subscription") == "none"
    next_presence(a, "unsubscribed", bob[1])
    b.close()
    b = login(raw, bob, "b3")
    b.presence()
    next_presence(b, None, b.jid)
    b.sync()
    assert not [e for e in pending(b) if e.get("type") == "subscribe"]


def test_preapproval(raw, user):
    alice, bob = user(), user()
    a = online(raw, alice, "a")
    b = online(raw, bob, "b")

    # Bob pre-approves Alice (§3.4): an item with approved='true', and
    # nothing reaches Alice.
    b.send("<presence type='subscribed' to='%s'/>" % alice[1])
    it, _ = next_push(b, alice[1])
    assert it.get("approved") == "true" and it.get("subscription") == "none"
    a.sync()
    assert not [e for e in pending(a) if e.name == "presence"]

    # Alice's request is then approved automatically.
    a.send("<presence type='subscribe' to='%s'/>" % bob[1])
    next_presence(a, "subscribed", bob[1])
    next_presence(a, None, b.jid)
    assert items_of(roster_get(a))[bob[1]].get("subscription") == "to"
    it, _ = next_push(b, alice[1])
    assert it.get("subscription") == "from" and it.get("approved") is None
    b.sync()
    assert not [e for e in pending(b) if e.get("type") == "subscribe"]


def test_unsubscribe_and_remove(raw, user):
    alice, bob = user(), user()
    a = online(raw, alice, "a")
    b = online(raw, bob, "b")
    a.send("<presence type='subscribe' to='%s'/>" % bob[1])
    next_presence(b, "subscribe")
    b.send("<presence type='subscribed' to='%s'/>" % alice[1])
    next_presence(a, None, b.jid)

    # Bob cancels Alice's subscription: she is told, and sees him go away.
    b.send("<presence type='unsubscribed' to='%s'/>" % alice[1])
    next_presence(a, "unsubscribed", bob[1])
    next_presence(a, "unavailable", b.jid)
    assert items_of(roster_get(a))[bob[1]].get("subscription") == "none"
    assert items_of(roster_get(b))[alice[1]].get("subscription") == "none"

    # Subscribe again, then Alice removes Bob from her roster (§2.5.3): his
    # roster loses 'from', he gets the unsubscribe.
    a.send("<presence type='subscribe' to='%s'/>" % bob[1])
    next_presence(b, "subscribe")
    b.send("<presence type='subscribed' to='%s'/>" % alice[1])
    next_presence(a, None, b.jid)
    assert roster_set(a, "<item jid='%s' subscription='remove'/>"
                      % bob[1]).get("type") == "result"
    next_presence(b, "unsubscribe", alice[1])
    assert bob[1] not in items_of(roster_get(a))
    assert items_of(roster_get(b))[alice[1]].get("subscription") == "none"


def test_subscription_errors(raw, user):
    alice = user()
    a = online(raw, alice, "a")
    a.send("<presence type='subscribe' to='x@not-hosted.invalid' id='s1'/>")
    e = a.next(name="presence", skip=lambda e: e.get("id") != "s1")
    assert h.stanza_error(e)[1] == "remote-server-not-found"

    # No such account on a hosted domain: unsubscribed on its behalf.
    ghost = "nobody%s@%s" % (h.uniq(""), h.DOMAIN)
    a.send("<presence type='subscribe' to='%s'/>" % ghost)
    next_presence(a, "unsubscribed", ghost)

    a.send("<presence><priority>300</priority></presence>")
    e = a.next(name="presence", skip=lambda e: e.get("type") != "error")
    assert h.stanza_error(e)[1] == "bad-request"


def test_directed_presence_gets_unavailable_on_drop(raw, user):
    alice, carol = user(), user()
    a = online(raw, alice, "a")
    c = online(raw, carol, "c")
    a.send("<presence to='%s'><status>psst</status></presence>" % c.jid)
    p = next_presence(c, None, a.jid)
    assert p.find("{jabber:client}status").text == "psst"
    a.sync()
    a.close()
    next_presence(c, "unavailable", a.jid)


def test_subscription_and_presence_across_nodes(node_factory, raw, user):
    n1, n2 = node_factory(), node_factory()
    alice, bob = user(), user()
    a = online(lambda: raw(n1.port), alice, "a")
    b = online(lambda: raw(n2.port), bob, "b")

    a.send("<presence type='subscribe' to='%s'/>" % bob[1])
    next_presence(b, "subscribe", alice[1])
    b.send("<presence type='subscribed' to='%s'/>" % alice[1])
    it, _ = next_push(a, bob[1])
    assert it.get("ask") == "subscribe"
    it, _ = next_push(a, bob[1])
    assert it.get("subscription") == "to"
    next_presence(a, "subscribed", bob[1])
    next_presence(a, None, b.jid)

    b.send("<presence><show>dnd</show></presence>")
    p = next_presence(a, None, b.jid)
    assert p.find("{jabber:client}show").text == "dnd"
    b.close()
    next_presence(a, "unavailable", b.jid)


def test_node_shutdown_sends_unavailable_to_contacts(node_factory, raw, user):
    """SIGTERM ends bob's stream with system-shutdown; alice, on another
    node, still sees bob go unavailable: the node waits for the broadcast
    before it exits."""
    n1, n2 = node_factory(), node_factory()
    alice, bob = user(), user()
    a = online(lambda: raw(n1.port), alice, "a")
    b = online(lambda: raw(n2.port), bob, "b")
    a.send("<presence type='subscribe' to='%s'/>" % bob[1])
    next_presence(b, "subscribe", alice[1])
    b.send("<presence type='subscribed' to='%s'/>" % alice[1])
    next_presence(a, None, b.jid)
    assert n2.terminate() == 0
    next_presence(a, "unavailable", b.jid)


def test_sigkill_contacts_see_unavailable_after_reap(node_factory, raw, user):
    """Issue 4: a node dies without a word; once its lease expires a
    surviving node reaps bob's session and sends unavailable on his
    behalf."""
    env = {"ROOST_CLUSTER_LEASE_MS": "2000", "ROOST_CLUSTER_RENEW_MS": "500",
           "ROOST_CLUSTER_REAP_INTERVAL_MS": "500"}
    n1, n2 = node_factory(env=env), node_factory(env=env)
    alice, bob = user(), user()
    a = online(lambda: raw(n1.port), alice, "a")
    b = online(lambda: raw(n2.port), bob, "b")
    a.send("<presence type='subscribe' to='%s'/>" % bob[1])
    next_presence(b, "subscribe", alice[1])
    b.send("<presence type='subscribed' to='%s'/>" % alice[1])
    next_presence(a, None, b.jid)
    n2.kill()
    next_presence(a, "unavailable", b.jid)    # waits up to the harness bound


def test_disco_on_contact_bare_jid_needs_subscription(raw, user):
    """RFC 6120 §10.5.3.1: the server answers disco#info for an account's
    bare JID only to someone subscribed to its presence."""
    alice, bob, eve = user(), user(), user()
    a = online(raw, alice, "a")
    b = online(raw, bob, "b")
    e = online(raw, eve, "e")
    q = "<query xmlns='http://jabber.org/protocol/disco#info'/>"
    r = a.iq("get", bob[1], q)
    assert r.get("type") == "error" and h.stanza_error(r)[1] == "service-unavailable"
    a.send("<presence type='subscribe' to='%s'/>" % bob[1])
    next_presence(b, "subscribe", alice[1])
    b.send("<presence type='subscribed' to='%s'/>" % alice[1])
    next_presence(a, None, b.jid)
    r = a.iq("get", bob[1], q)
    assert r.get("type") == "result" and r.get("from") == bob[1]
    ident = r.find("{http://jabber.org/protocol/disco#info}query").find(
        "{http://jabber.org/protocol/disco#info}identity")
    assert (ident.get("category"), ident.get("type")) == ("account", "registered")
    r = e.iq("get", bob[1], q)
    assert r.get("type") == "error" and h.stanza_error(r)[1] == "service-unavailable"
