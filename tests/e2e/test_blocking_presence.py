"""XEP-0191 and presence: once alice blocks bob, neither sees the other's
presence updates (and a new resource's probe skips the blocked contact);
after unblocking, updates flow again."""
from test_presence import online, next_presence

NS_B = "urn:xmpp:blocking"


def quiet_presence(c, frm, seconds=1.0):
    try:
        p = c.next(name="presence", timeout=seconds, skip=lambda e: e.get("from") != frm)
    except TimeoutError:
        return
    raise AssertionError("unexpected presence from %s: %r" % (frm, p))


def befriend(a, b, alice, bob):
    for x, y, ux, uy in ((a, b, alice, bob), (b, a, bob, alice)):
        x.send("<presence type='subscribe' to='%s'/>" % uy[1])
        next_presence(y, "subscribe", ux[1])
        y.send("<presence type='subscribed' to='%s'/>" % ux[1])
        next_presence(x, None, y.jid)


def test_block_stops_presence_both_ways(raw, user):
    alice, bob = user(), user()
    a = online(raw, alice, "a")
    b = online(raw, bob, "b")
    befriend(a, b, alice, bob)
    r = a.iq("set", None, "<block xmlns='%s'><item jid='%s'/></block>" % (NS_B, bob[1]))
    assert r.get("type") == "result"
    next_presence(b, "unavailable", a.jid)        # §3.3: bob sees alice leave
    b.send("<presence><show>away</show></presence>")
    a.send("<presence><show>dnd</show></presence>")
    quiet_presence(a, b.jid)
    quiet_presence(b, a.jid)
    # a new resource of alice does not get bob's presence either
    a2 = raw()
    a2.login(alice[0], alice[2], resource="a2")
    a2.presence()
    quiet_presence(a2, b.jid)

    r = a.iq("set", None, "<unblock xmlns='%s'/>" % NS_B)
    assert r.get("type") == "result"
    # §3.4, also for unblock-all: bob gets alice's current presence
    p = next_presence(b, None, a.jid)
    assert p.find("{jabber:client}show").text == "dnd"
    b.send("<presence><show>chat</show></presence>")
    p = next_presence(a, None, b.jid)
    assert p.find("{jabber:client}show").text == "chat"
