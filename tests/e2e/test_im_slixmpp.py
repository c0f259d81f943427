# RFC 6121 and the IM XEPs checked with a real client library (slixmpp):
# roster get/set/remove through its roster API, the subscription handshake
# with its roster state machine and auto-authorize settings, presence
# probes and broadcasts, message routing by type and priority, offline
# delivery with delay, carbons, blocking, ping, disco and version.

import asyncio
import datetime
import xml.etree.ElementTree as ET

import pytest
from slixmpp.exceptions import IqError

import roost_harness as h

PLUGINS = ("xep_0030", "xep_0092", "xep_0199", "xep_0203", "xep_0280", "xep_0191")
NS_ROSTER = "jabber:iq:roster"
NS_CARBONS = "urn:xmpp:carbons:2"
NS_BLOCKING = "urn:xmpp:blocking"
NS_BLOCK_ERR = "urn:xmpp:blocking:errors"


# ------------------------------------------------------------------ helpers

def ptype(p):
    """The wire 'type' of a presence (slixmpp's p['type'] folds <show/> in)."""
    return p.xml.get("type") or "available"


def until(slix, pred, what="condition", timeout=h.WAIT):
    """Runs the client loop until pred() is true (bounded)."""
    async def poll():
        while True:
            v = pred()
            if v:
                return v
            await asyncio.sleep(0.02)
    try:
        return slix.run(poll(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError("timed out waiting for %s" % what)


def login(slix, u, res, presence=True, priority=None, roster=True,
          auto_authorize=None, auto_subscribe=False, status=None):
    """A client the way an IM application starts: connect, fetch the
    roster, send initial presence and see it reflected (RFC 6121 §4.2.2).
    Every presence, roster push, message and message error is recorded."""
    _, bare, pw = u
    x = slix.client("%s/%s" % (bare, res), pw, plugins=PLUGINS)
    x.auto_authorize = auto_authorize
    x.auto_subscribe = auto_subscribe
    x.pres = []
    x.pushes = []
    x.msgs = []
    x.errors = []
    x.carbons = []
    x.add_event_handler("presence", lambda p: x.pres.append(p))
    x.add_event_handler("roster_update",
                        lambda iq: x.pushes.append(iq) if iq["type"] == "set" else None)
    x.add_event_handler("message", lambda m: x.msgs.append(m))
    x.add_event_handler("message_error", lambda m: x.errors.append(m))
    x.add_event_handler("carbon_sent", lambda m: x.carbons.append(("sent", m)))
    x.add_event_handler("carbon_received", lambda m: x.carbons.append(("received", m)))
    slix.connect(x)

    async def wait():
        await asyncio.wait([x.e2e_session, x.e2e_failed, x.e2e_disconnected],
                           return_when=asyncio.FIRST_COMPLETED)
        assert x.e2e_session.done(), "login of %s failed" % bare
    slix.run(wait())
    if roster:
        slix.run(x.get_roster(timeout=h.WAIT))
    if presence:
        x.send_presence(ppriority=priority, pstatus=status)
        presence_from(slix, x, str(x.boundjid))
    return x


def presences(x, frm=None, typ=None):
    return [p for p in x.pres
            if (frm is None or str(p["from"]) == frm) and (typ is None or ptype(p) == typ)]


def presence_from(slix, x, frm, typ="available", after=0):
    """Waits for a presence of wire type typ from frm (exact JID), beyond
    the first `after` recorded presences."""
    return until(slix, lambda: [p for p in x.pres[after:]
                                if str(p["from"]) == frm and ptype(p) == typ],
                 "presence %s from %s at %s" % (typ, frm, x.boundjid))[-1]


def sync(slix, *clients):
    """A server ping from each client: what the server sent them before
    the answer has been handled (in-order processing, RFC 6120 §10.1)."""
    for x in clients:
        slix.run(x["xep_0199"].ping(jid=h.DOMAIN, timeout=h.WAIT))


def barrier(slix, sender, receiver):
    """A marker message sender -> receiver's full JID: stanzas the sender
    addressed to the receiver before it have arrived once it has."""
    mark = h.uniq("mark")
    sender.send_message(mto=receiver.boundjid, mbody=mark, mtype="chat")
    until(slix, lambda: [m for m in receiver.msgs if m["body"] == mark],
          "marker at %s" % receiver.boundjid)
    receiver.msgs[:] = [m for m in receiver.msgs if m["body"] != mark]


def push_for(x, jid, after=0):
    """Roster items pushed for jid, beyond the first `after` pushes."""
    out = []
    for iq in x.pushes[after:]:
        items = iq["roster"]["items"]
        if jid in items:
            out.append(items[jid])
    return out


def roster_jids(x):
    """Contacts in the client's roster (slixmpp files our own presence
    under our bare JID too; that is not a roster item)."""
    return {str(j) for j in x.client_roster.keys()} - {x.boundjid.bare}


def item_sub(x, jid):
    return x.client_roster[jid]["subscription"] if x.client_roster.has_jid(jid) else None


def server_roster(slix, x):
    """The roster as the server has it now: {jid: item dict}."""
    iq = x.Iq()
    iq["type"] = "get"
    iq.enable("roster")
    r = slix.run(iq.send(timeout=h.WAIT))
    return {str(j): dict(v) for j, v in r["roster"]["items"].items()}


def bodies(x):
    return [m["body"] for m in x.msgs]


def subscribe_both(slix, a, b, ua, ub):
    """Mutual subscription between two online clients, the manual way."""
    a.send_presence(pto=ub[1], ptype="subscribe")
    presence_from(slix, b, ua[1], "subscribe")
    b.send_presence(pto=ua[1], ptype="subscribed")
    until(slix, lambda: item_sub(a, ub[1]) == "to", "a: to")
    b.send_presence(pto=ua[1], ptype="subscribe")
    presence_from(slix, a, ub[1], "subscribe")
    a.send_presence(pto=ub[1], ptype="subscribed")
    until(slix, lambda: item_sub(a, ub[1]) == "both", "a: both")
    until(slix, lambda: item_sub(b, ua[1]) == "both", "b: both")
    presence_from(slix, a, str(b.boundjid))
    presence_from(slix, b, str(a.boundjid))


# ------------------------------------------------------------------ rosters

def test_roster_update_and_delete_through_client_api(slix, user):
    ua, ub, uc = user(prefix="alice"), user(prefix="bob"), user(prefix="carol")
    a1 = login(slix, ua, "one")
    a2 = login(slix, ua, "two")
    assert roster_jids(a1) == set()
    assert "rosterver" in a1.features

    slix.run(a1.update_roster(ub[1], name="Bob", groups=["Friends", "Work"],
                              timeout=h.WAIT))
    # Both interested resources get the push (RFC 6121 §2.1.6).
    for x in (a1, a2):
        until(slix, lambda: push_for(x, ub[1]), "push at %s" % x.boundjid)
        it = x.client_roster[ub[1]]
        assert it["name"] == "Bob"
        assert sorted(it["groups"]) == ["Friends", "Work"]
        assert it["subscription"] == "none" and not it["pending_out"]
    slix.run(a1.update_roster(uc[1], name="Carol", groups=[], timeout=h.WAIT))
    until(slix, lambda: push_for(a2, uc[1]), "carol pushed")

    # Rename and regroup: the push carries the new state.
    n = len(a2.pushes)
    slix.run(a1.update_roster(ub[1], name="Bobby", groups=["Family"], timeout=h.WAIT))
    until(slix, lambda: push_for(a2, ub[1], n), "rename pushed")
    assert a2.client_roster[ub[1]]["name"] == "Bobby"
    assert a2.client_roster[ub[1]]["groups"] == ["Family"]

    srv = server_roster(slix, a2)
    assert set(srv) == {ub[1], uc[1]}
    assert srv[ub[1]]["name"] == "Bobby" and srv[ub[1]]["groups"] == ["Family"]

    # Removal: a push with subscription='remove', the item is gone.
    n = len(a2.pushes)
    slix.run(a1.del_roster_item(ub[1]))
    until(slix, lambda: push_for(a2, ub[1], n), "remove pushed")
    assert push_for(a2, ub[1], n)[-1]["subscription"] == "remove"
    assert not a2.client_roster.has_jid(ub[1])
    assert set(server_roster(slix, a1)) == {uc[1]}

    # A fresh session sees the same roster.
    a3 = login(slix, ua, "three", presence=False)
    assert roster_jids(a3) == {uc[1]}
    assert a3.client_roster[uc[1]]["name"] == "Carol"


def test_roster_set_subscription_attribute_ignored(slix, user):
    """slixmpp's update_roster() sends the item's current subscription
    back; a value other than 'remove' must be ignored (RFC 6121
    §2.1.2.5), so renaming does not change the subscription."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    slix.run(a.update_roster(ub[1], name="B", subscription="both", timeout=h.WAIT))
    assert server_roster(slix, a)[ub[1]]["subscription"] == "none"
    b = login(slix, ub, "b")
    subscribe_both(slix, a, b, ua, ub)
    slix.run(a.update_roster(ub[1], name="Bob", subscription="none", timeout=h.WAIT))
    srv = server_roster(slix, a)[ub[1]]
    assert srv["subscription"] == "both" and srv["name"] == "Bob"


def test_roster_versioning(slix, user):
    ua, ub, uc = user(prefix="alice"), user(prefix="bob"), user(prefix="carol")
    a = login(slix, ua, "a", presence=False)
    v0 = a.client_roster.version
    assert v0 is not None, "roster result without ver although rosterver advertised"
    slix.run(a.update_roster(ub[1], name="Bob", timeout=h.WAIT))
    # The push carries the new version (§2.6.3); a get with it is empty.
    until(slix, lambda: a.client_roster.version != v0, "version moves on push")
    v1 = a.client_roster.version
    # (slixmpp's own handler has already run: r["roster"] may be a <query/>
    # it created, hence no check of the raw element here.)
    r = slix.run(a.get_roster(timeout=h.WAIT))
    assert r["type"] == "result" and not r["roster"]["items"]
    assert r["roster"]["ver"] in (None, "", v1)
    assert a.client_roster.version == v1

    # Unchanged since v1: an empty result, or the full roster (§2.6.3).
    a2 = slix.client(ua[1] + "/a2", ua[2], plugins=PLUGINS)
    pushes = []
    a2.add_event_handler("roster_update",
                         lambda iq: pushes.append(iq) if iq["type"] == "set" else None)
    slix.connect(a2)
    slix.run(a2.e2e_session)
    a2.client_roster.version = v1
    r = slix.run(a2.get_roster(timeout=h.WAIT))
    assert r["type"] == "result"
    if r["roster"]["items"]:
        assert set(r["roster"]["items"]) == {ub[1]}
        assert r["roster"]["ver"] == v1
    else:
        assert roster_jids(a2) == set() and r["roster"]["ver"] in (None, "", v1)

    # Changed after v1: the newer state comes as a full roster or as pushes.
    slix.run(a.update_roster(uc[1], name="Carol", timeout=h.WAIT))
    until(slix, lambda: a.client_roster.version != v1, "version moves on push")
    v2 = a.client_roster.version
    a3 = slix.client(ua[1] + "/a3", ua[2], plugins=PLUGINS)
    a3.add_event_handler("roster_update",
                         lambda iq: pushes.append(iq) if iq["type"] == "set" else None)
    slix.connect(a3)
    slix.run(a3.e2e_session)
    a3.client_roster.version = v1
    a3.client_roster[ub[1]]["name"] = "Bob"   # what a3 cached at v1
    r = slix.run(a3.get_roster(timeout=h.WAIT))
    until(slix, lambda: a3.client_roster.version == v2, "a3 at version v2")
    assert a3.client_roster.has_jid(uc[1])
    assert a3.client_roster[uc[1]]["name"] == "Carol"


# ------------------------------------------------------------ subscriptions

def test_mutual_subscription_state_on_both_sides(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    requests = []
    b.add_event_handler("roster_subscription_request", lambda p: requests.append(p))

    # 1. Alice asks: her item is none + pending out; Bob gets the request
    #    from her bare JID.
    a.send_presence(pto=ub[1], ptype="subscribe")
    until(slix, lambda: a.client_roster.has_jid(ub[1]) and a.client_roster[ub[1]]["pending_out"],
          "alice pending_out")
    assert a.client_roster[ub[1]]["subscription"] == "none"
    until(slix, lambda: requests, "subscription request event at bob")
    assert str(requests[0]["from"]) == ua[1]
    assert not b.client_roster.has_jid(ua[1]) or item_sub(b, ua[1]) == "none"

    # 2. Bob approves: Bob 'from', Alice 'to' without pending; Alice gets
    #    'subscribed' and Bob's presence (§3.1.5, §3.1.6).
    n = len(a.pres)
    b.send_presence(pto=ua[1], ptype="subscribed")
    until(slix, lambda: item_sub(b, ua[1]) == "from", "bob: from")
    until(slix, lambda: item_sub(a, ub[1]) == "to", "alice: to")
    assert not a.client_roster[ub[1]]["pending_out"]
    presence_from(slix, a, ub[1], "subscribed", n)
    presence_from(slix, a, str(b.boundjid), "available", n)
    # Alice's presence does not reach Bob (he has no subscription yet).
    barrier(slix, a, b)
    assert not presences(b, str(a.boundjid), "available")

    # 3. Bob asks back: Bob 'from' + pending out; Alice gets the request.
    b.send_presence(pto=ua[1], ptype="subscribe")
    until(slix, lambda: b.client_roster[ua[1]]["pending_out"], "bob pending_out")
    assert item_sub(b, ua[1]) == "from"
    presence_from(slix, a, ub[1], "subscribe")

    # 4. Alice approves: both sides 'both', Bob sees Alice's presence.
    n = len(b.pres)
    a.send_presence(pto=ub[1], ptype="subscribed")
    until(slix, lambda: item_sub(a, ub[1]) == "both", "alice: both")
    until(slix, lambda: item_sub(b, ua[1]) == "both", "bob: both")
    assert not b.client_roster[ua[1]]["pending_out"]
    presence_from(slix, b, ua[1], "subscribed", n)
    presence_from(slix, b, str(a.boundjid), "available", n)

    assert server_roster(slix, a)[ub[1]]["subscription"] == "both"
    assert server_roster(slix, b)[ua[1]]["subscription"] == "both"

    # Presence changes now flow both ways, with show/status (changed_status).
    changed = []
    b.add_event_handler("changed_status", lambda p: changed.append(p))
    a.send_presence(pshow="away", pstatus="lunch")
    until(slix, lambda: [p for p in changed if p["show"] == "away"], "alice away at bob")
    p = [p for p in changed if p["show"] == "away"][-1]
    assert str(p["from"]) == str(a.boundjid) and p["status"] == "lunch"
    assert b.client_roster[ua[1]].resources[a.boundjid.resource]["show"] == "away"


def test_auto_authorize_and_auto_subscribe(slix, user):
    """slixmpp's defaults: approve every request and ask back."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a", auto_authorize=True, auto_subscribe=False)
    b = login(slix, ub, "b", auto_authorize=True, auto_subscribe=True)
    a.send_presence(pto=ub[1], ptype="subscribe")
    until(slix, lambda: item_sub(a, ub[1]) == "both", "alice: both")
    until(slix, lambda: item_sub(b, ua[1]) == "both", "bob: both")
    presence_from(slix, a, str(b.boundjid))
    presence_from(slix, b, str(a.boundjid))
    assert server_roster(slix, a)[ub[1]]["subscription"] == "both"
    assert server_roster(slix, b)[ua[1]]["subscription"] == "both"


def test_auto_authorize_false_denies(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b", auto_authorize=False)
    a.send_presence(pto=ub[1], ptype="subscribe")
    presence_from(slix, a, ub[1], "unsubscribed")
    until(slix, lambda: a.client_roster.has_jid(ub[1])
          and not a.client_roster[ub[1]]["pending_out"], "alice no longer pending")
    assert item_sub(a, ub[1]) == "none"
    assert server_roster(slix, a)[ub[1]].get("subscription") == "none"
    assert server_roster(slix, a)[ub[1]].get("ask") in (None, "")
    # No presence of Bob's reached Alice.
    assert not presences(a, str(b.boundjid), "available")


def test_unsubscribe_then_unsubscribed_then_remove(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    subscribe_both(slix, a, b, ua, ub)

    # Alice unsubscribes from Bob's presence (§3.3): Alice 'from', Bob
    # 'to'; Bob gets 'unsubscribe', Alice gets Bob's unavailable.
    na, nb = len(a.pres), len(b.pres)
    a.send_presence(pto=ub[1], ptype="unsubscribe")
    until(slix, lambda: item_sub(a, ub[1]) == "from", "alice: from")
    until(slix, lambda: item_sub(b, ua[1]) == "to", "bob: to")
    presence_from(slix, b, ua[1], "unsubscribe", nb)
    presence_from(slix, a, str(b.boundjid), "unavailable", na)

    # Alice cancels Bob's subscription (§3.2): both 'none'; Bob gets
    # 'unsubscribed' and Alice's unavailable.
    na, nb = len(a.pres), len(b.pres)
    a.send_presence(pto=ub[1], ptype="unsubscribed")
    until(slix, lambda: item_sub(a, ub[1]) == "none", "alice: none")
    until(slix, lambda: item_sub(b, ua[1]) == "none", "bob: none")
    presence_from(slix, b, ua[1], "unsubscribed", nb)
    presence_from(slix, b, str(a.boundjid), "unavailable", nb)

    # Nothing flows any more.
    a.send_presence(pstatus="still here")
    presence_from(slix, a, str(a.boundjid), "available", na)
    barrier(slix, a, b)
    assert not [p for p in b.pres[nb:] if ptype(p) == "available"
                and str(p["from"]) == str(a.boundjid)]

    # Removing a 'none' item: it is gone, Bob's roster is untouched.
    slix.run(a.del_roster_item(ub[1]))
    until(slix, lambda: not a.client_roster.has_jid(ub[1]), "alice: removed")
    assert ub[1] not in server_roster(slix, a)
    assert server_roster(slix, b)[ua[1]]["subscription"] == "none"


def test_remove_item_with_both_cancels_both_ways(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    subscribe_both(slix, a, b, ua, ub)
    nb, np = len(b.pres), len(a.pushes)
    # del_roster_item() sends 'unsubscribe' then the roster remove (§2.5.3).
    # (Bob's presences may re-create the item in slixmpp's cache: watch
    # the pushes, not the cache.)
    slix.run(a.del_roster_item(ub[1]))
    until(slix, lambda: [i for i in push_for(a, ub[1], np) if i["subscription"] == "remove"],
          "alice: remove push")
    until(slix, lambda: item_sub(b, ua[1]) == "none", "bob: none")
    presence_from(slix, b, ua[1], "unsubscribe", nb)
    presence_from(slix, b, ua[1], "unsubscribed", nb)
    presence_from(slix, b, str(a.boundjid), "unavailable", nb)
    assert ub[1] not in server_roster(slix, a)
    assert server_roster(slix, b)[ua[1]]["subscription"] == "none"


def test_remove_raw_roster_set_with_both(slix, user):
    """A bare roster remove (no unsubscribe first) must also cancel both
    directions and tell the contact (RFC 6121 §2.5.3)."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    subscribe_both(slix, a, b, ua, ub)
    nb, na, np = len(b.pres), len(a.pres), len(a.pushes)
    slix.run(a.client_roster.update(ub[1], subscription="remove", timeout=h.WAIT))
    until(slix, lambda: [i for i in push_for(a, ub[1], np) if i["subscription"] == "remove"],
          "alice: remove push")
    assert ub[1] not in server_roster(slix, a)
    until(slix, lambda: item_sub(b, ua[1]) == "none", "bob: none")
    presence_from(slix, b, ua[1], "unsubscribe", nb)
    presence_from(slix, b, ua[1], "unsubscribed", nb)
    presence_from(slix, b, str(a.boundjid), "unavailable", nb)
    presence_from(slix, a, str(b.boundjid), "unavailable", na)


def test_subscription_request_to_offline_contact_delivered_at_login(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    a.send_presence(pto=ub[1], ptype="subscribe", pstatus="it's alice")
    until(slix, lambda: a.client_roster.has_jid(ub[1]) and a.client_roster[ub[1]]["pending_out"],
          "alice pending_out")

    # Bob logs in and sends initial presence: the stored request arrives.
    b = login(slix, ub, "b", presence=False)
    requests = []
    b.add_event_handler("roster_subscription_request", lambda p: requests.append(p))
    b.send_presence()
    until(slix, lambda: requests, "request at login")
    assert str(requests[0]["from"]) == ua[1]
    assert requests[0]["status"] == "it's alice"

    b.send_presence(pto=ua[1], ptype="subscribed")
    until(slix, lambda: item_sub(a, ub[1]) == "to", "alice: to")
    assert not a.client_roster[ub[1]]["pending_out"]
    presence_from(slix, a, ub[1], "subscribed")
    presence_from(slix, a, str(b.boundjid))


def test_subscribed_while_requester_offline_delivered_at_login(slix, user):
    """Alice asks and leaves; Bob approves while she is offline. She sees
    the state at next login (roster, and Bob's presence via probe)."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    a.send_presence(pto=ub[1], ptype="subscribe")
    until(slix, lambda: a.client_roster.has_jid(ub[1]) and a.client_roster[ub[1]]["pending_out"],
          "alice pending_out")
    a.disconnect()
    slix.run(a.e2e_disconnected)
    b = login(slix, ub, "b")
    presence_from(slix, b, ua[1], "subscribe")
    b.send_presence(pto=ua[1], ptype="subscribed")
    until(slix, lambda: item_sub(b, ua[1]) == "from", "bob: from")
    a2 = login(slix, ua, "a2")
    assert item_sub(a2, ub[1]) == "to"
    assert not a2.client_roster[ub[1]]["pending_out"]
    presence_from(slix, a2, str(b.boundjid))


def test_preapproval(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    assert "preapproval" in b.features
    requests = []
    b.add_event_handler("roster_subscription_request", lambda p: requests.append(p))

    b.send_presence(pto=ua[1], ptype="subscribed")
    until(slix, lambda: push_for(b, ua[1]), "pre-approval push")
    it = push_for(b, ua[1])[-1]
    assert it["approved"] in ("true", "1", True) and it["subscription"] == "none"
    barrier(slix, b, a)
    assert not [p for p in a.pres if str(p["from"]).startswith(ub[1])]

    n = len(a.pres)
    a.send_presence(pto=ub[1], ptype="subscribe")
    until(slix, lambda: item_sub(a, ub[1]) == "to", "alice: to")
    presence_from(slix, a, ub[1], "subscribed", n)
    presence_from(slix, a, str(b.boundjid), "available", n)
    until(slix, lambda: item_sub(b, ua[1]) == "from", "bob: from")
    sync(slix, b)
    assert not requests


def test_contact_presence_at_login_via_probe(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    subscribe_both(slix, a, b, ua, ub)
    b.send_presence(pshow="dnd", pstatus="busy", ppriority=3)
    presence_from(slix, b, str(b.boundjid))

    # A second resource of Alice: at initial presence it learns Bob's
    # current presence (probe) and that of its sibling.
    got_online = []
    a2 = slix.client(ua[1] + "/a2", ua[2], plugins=PLUGINS)
    a2.pres = []
    a2.add_event_handler("presence", lambda p: a2.pres.append(p))
    a2.add_event_handler("got_online", lambda p: got_online.append(str(p["from"])))
    a2.auto_authorize = None
    slix.connect(a2)
    slix.run(a2.e2e_session)
    slix.run(a2.get_roster(timeout=h.WAIT))
    a2.send_presence()
    p = presence_from(slix, a2, str(b.boundjid))
    assert p["show"] == "dnd" and p["status"] == "busy" and p["priority"] == 3
    presence_from(slix, a2, str(a.boundjid))
    until(slix, lambda: str(b.boundjid) in got_online, "got_online for bob")
    assert a2.client_roster[ub[1]].resources[b.boundjid.resource]["show"] == "dnd"
    # Bob sees the new resource.
    presence_from(slix, b, str(a2.boundjid))


def test_probe_not_answered_without_subscription(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    b = login(slix, ub, "b")
    a = login(slix, ua, "a")
    slix.run(a.update_roster(ub[1], name="Bob", timeout=h.WAIT))
    a2 = login(slix, ua, "a2")
    barrier(slix, b, a2)
    assert not presences(a2, str(b.boundjid))


def test_abrupt_disconnect_sends_unavailable(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    subscribe_both(slix, a, b, ua, ub)
    offline = []
    a.add_event_handler("got_offline", lambda p: offline.append(str(p["from"])))
    n = len(a.pres)
    b.abort()    # transport closed, no unavailable, no </stream>
    presence_from(slix, a, str(b.boundjid), "unavailable", n)
    until(slix, lambda: str(b.boundjid) in offline, "got_offline for bob")
    assert not a.client_roster[ub[1]].resources


def test_explicit_unavailable_and_back(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    subscribe_both(slix, a, b, ua, ub)
    n = len(a.pres)
    b.send_presence(ptype="unavailable", pstatus="bye")
    p = presence_from(slix, a, str(b.boundjid), "unavailable", n)
    assert p["status"] == "bye"
    # While unavailable, Bob gets no presence broadcasts from Alice.
    nb = len(b.pres)
    a.send_presence(pstatus="anyone?")
    presence_from(slix, a, str(a.boundjid), "available", n)
    sync(slix, a, b)
    barrier(slix, a, b)
    assert not [p for p in b.pres[nb:] if str(p["from"]) == str(a.boundjid)]
    # Available again: Alice sees him, and he re-learns her presence
    # (initial presence after unavailable probes again).
    b.send_presence()
    presence_from(slix, a, str(b.boundjid), "available", n)
    p = presence_from(slix, b, str(a.boundjid), "available", nb)
    assert p["status"] == "anyone?"


# ------------------------------------------------------------------ messages

def test_message_types_to_full_jid(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    for t in ("chat", "normal", "headline", "groupchat"):
        a.send_message(mto=b.boundjid, mbody="full-" + t, mtype=t)
    until(slix, lambda: len(b.msgs) >= 4, "4 messages")
    got = {m["body"]: m for m in b.msgs}
    for t in ("chat", "normal", "headline", "groupchat"):
        m = got["full-" + t]
        assert m["type"] == t and str(m["from"]) == str(a.boundjid)
        assert str(m["to"]) == str(b.boundjid)


def test_message_types_to_bare_jid(slix, user):
    """RFC 6121 §8.5.2.1.1: chat/normal to the most available resource(s),
    headline to all non-negative ones, groupchat bounced with
    service-unavailable, error silently dropped."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b1 = login(slix, ub, "b1", priority=5)
    b2 = login(slix, ub, "b2", priority=1)
    sync(slix, b1, b2)
    for t in ("chat", "normal", "headline"):
        a.send_message(mto=ub[1], mbody="bare-" + t, mtype=t)
    a.send_message(mto=ub[1], mbody="bare-groupchat", mtype="groupchat")
    until(slix, lambda: a.errors, "groupchat bounce")
    e = a.errors[0]
    assert e["error"]["condition"] == "service-unavailable"
    assert str(e["from"]) == ub[1]
    until(slix, lambda: {"bare-chat", "bare-normal", "bare-headline"} <= set(bodies(b1)),
          "b1 gets chat, normal, headline")
    until(slix, lambda: "bare-headline" in bodies(b2), "b2 gets headline")
    barrier(slix, a, b2)
    barrier(slix, a, b1)
    assert sorted(bodies(b2)) == ["bare-headline"]
    assert "bare-groupchat" not in bodies(b1)

    # type='error' to the bare JID: dropped, no bounce.
    m = a.make_message(mto=ub[1], mbody="bare-error", mtype="error")
    m["error"]["condition"] = "undefined-condition"
    m["error"]["type"] = "cancel"
    m.send()
    barrier(slix, a, b1)
    barrier(slix, a, b2)
    assert "bare-error" not in bodies(b1) + bodies(b2)
    assert len(a.errors) == 1


def test_message_to_unavailable_full_jid(slix, user):
    """RFC 6121 §8.5.3.2.1: a full JID with no such resource: chat is
    treated as bare, groupchat bounced, error dropped."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    a.send_message(mto=ub[1] + "/gone", mbody="to-gone-chat", mtype="chat")
    until(slix, lambda: "to-gone-chat" in bodies(b), "chat rerouted to bare")
    a.send_message(mto=ub[1] + "/gone", mbody="to-gone-gc", mtype="groupchat")
    until(slix, lambda: a.errors, "groupchat bounce")
    assert a.errors[0]["error"]["condition"] == "service-unavailable"
    barrier(slix, a, b)
    assert "to-gone-gc" not in bodies(b)


def test_priorities_highest_gets_bare_chat(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b1 = login(slix, ub, "low", priority=0)
    b2 = login(slix, ub, "high", priority=10)
    b3 = login(slix, ub, "neg", priority=-1)
    sync(slix, b1, b2, b3)
    a.send_message(mto=ub[1], mbody="first", mtype="chat")
    until(slix, lambda: "first" in bodies(b2), "high gets it")
    # Change of priority: now 'low' is the highest.
    b1.send_presence(ppriority=20)
    presence_from(slix, b1, str(b1.boundjid), "available", len(b1.pres))
    sync(slix, b1)
    a.send_message(mto=ub[1], mbody="second", mtype="chat")
    until(slix, lambda: "second" in bodies(b1), "low (now 20) gets it")
    a.send_message(mto=ub[1], mbody="news", mtype="headline")
    until(slix, lambda: "news" in bodies(b1) and "news" in bodies(b2), "headline to both")
    for x in (b1, b2, b3):
        barrier(slix, a, x)
    assert bodies(b2) == ["first", "news"]
    assert bodies(b1) == ["second", "news"]
    assert bodies(b3) == []


def test_offline_messages_with_delay(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    a.send_message(mto=ub[1], mbody="off-1", mtype="chat")
    a.send_message(mto=ub[1], mbody="off-2", mtype="normal")
    a.send_message(mto=ub[1], mbody="off-headline", mtype="headline")
    a.send_message(mto=ub[1], mbody="off-gc", mtype="groupchat")
    # groupchat to a user with no resources: service-unavailable (§8.5.2.2.1)
    until(slix, lambda: a.errors, "groupchat bounced")
    assert a.errors[0]["error"]["condition"] == "service-unavailable"
    sync(slix, a)

    b = login(slix, ub, "b")
    until(slix, lambda: len(b.msgs) >= 2, "2 offline messages")
    sync(slix, b)
    assert bodies(b) == ["off-1", "off-2"]
    for m in b.msgs:
        assert str(m["from"]) == str(a.boundjid)
        stamp = m["delay"]["stamp"]
        assert stamp is not None and stamp.tzinfo is not None
        assert stamp >= before
        assert str(m["delay"]["from"]) in ("", h.DOMAIN)
    assert [m["type"] for m in b.msgs] == ["chat", "normal"]
    # Live messages carry no delay.
    a.send_message(mto=b.boundjid, mbody="live", mtype="chat")
    until(slix, lambda: "live" in bodies(b), "live message")
    assert b.msgs[-1].xml.find("{urn:xmpp:delay}delay") is None


def test_offline_message_not_delivered_to_roster_only_session(slix, user):
    """Offline messages wait for initial presence, not just a roster get."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    a.send_message(mto=ub[1], mbody="wait for presence", mtype="chat")
    sync(slix, a)
    b = login(slix, ub, "b", presence=False)
    sync(slix, b)
    assert bodies(b) == []
    b.send_presence()
    until(slix, lambda: "wait for presence" in bodies(b), "delivered after presence")


# ------------------------------------------------------------------ carbons

def test_carbons_plugin(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a1 = login(slix, ua, "a1", priority=5)
    a2 = login(slix, ua, "a2", priority=1)
    b = login(slix, ub, "b")
    slix.run(a1["xep_0280"].enable(timeout=h.WAIT))
    slix.run(a2["xep_0280"].enable(timeout=h.WAIT))

    a1.send_message(mto=b.boundjid, mbody="from a1", mtype="chat")
    until(slix, lambda: "from a1" in bodies(b), "bob gets it")
    until(slix, lambda: a2.carbons, "sent carbon at a2")
    kind, m = a2.carbons[0]
    assert kind == "sent" and str(m["from"]) == ua[1]
    inner = m["carbon_sent"]
    assert inner["body"] == "from a1" and str(inner["from"]) == str(a1.boundjid)
    assert str(inner["to"]) == str(b.boundjid)

    # Bob writes to the bare JID: a1 (highest priority) gets it, a2 a
    # received carbon (no duplicate plain copy).
    b.send_message(mto=ua[1], mbody="to alice", mtype="chat")
    until(slix, lambda: "to alice" in bodies(a1), "a1 gets it")
    until(slix, lambda: len(a2.carbons) >= 2, "received carbon at a2")
    kind, m = a2.carbons[1]
    assert kind == "received"
    assert m["carbon_received"]["body"] == "to alice"
    assert str(m["carbon_received"]["from"]) == str(b.boundjid)
    assert "to alice" not in bodies(a2)
    # The sender of a carbon-copied message gets no carbon of its own.
    sync(slix, a1)
    assert not a1.carbons

    # Disabled: no more copies.
    slix.run(a2["xep_0280"].disable(timeout=h.WAIT))
    a1.send_message(mto=b.boundjid, mbody="after disable", mtype="chat")
    until(slix, lambda: "after disable" in bodies(b), "bob gets it")
    barrier(slix, a1, a2)
    assert len(a2.carbons) == 2


def test_carbons_in_disco(slix, user):
    _, bare, pw = user()
    x = login(slix, (None, bare, pw), "d", presence=False)
    info = slix.run(x["xep_0030"].get_info(jid=h.DOMAIN, timeout=h.WAIT))
    assert NS_CARBONS in info["disco_info"]["features"]
    assert NS_BLOCKING in info["disco_info"]["features"]


# ------------------------------------------------------------------ blocking

def test_blocking_plugin(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    a2 = login(slix, ua, "a2")
    b = login(slix, ub, "b")
    subscribe_both(slix, a, b, ua, ub)
    blocked_events = []
    a2.add_event_handler("blocked", lambda iq: blocked_events.append(iq))
    assert slix.run(a["xep_0191"].get_blocked(timeout=h.WAIT))["blocklist"]["items"] == set()

    nb = len(b.pres)
    slix.run(a["xep_0191"].block(ub[1], timeout=h.WAIT))
    # The other resource hears about it; Bob sees Alice go away.
    until(slix, lambda: blocked_events, "block push at a2")
    assert {str(j) for j in blocked_events[0]["block"]["items"]} == {ub[1]}
    presence_from(slix, b, str(a.boundjid), "unavailable", nb)
    got = slix.run(a["xep_0191"].get_blocked(timeout=h.WAIT))["blocklist"]["items"]
    assert {str(j) for j in got} == {ub[1]}

    # Bob's message bounces with service-unavailable (XEP-0191 §3.5)...
    b.send_message(mto=ua[1], mbody="let me in", mtype="chat")
    until(slix, lambda: b.errors, "bounce at bob")
    assert b.errors[0]["error"]["condition"] == "service-unavailable"
    # ...and Alice's to Bob is refused with not-acceptable + <blocked/>.
    a.send_message(mto=b.boundjid, mbody="psst", mtype="chat")
    until(slix, lambda: a.errors, "refusal at alice")
    e = a.errors[0]
    assert e["error"]["condition"] == "not-acceptable"
    assert e.xml.find("{jabber:client}error/{%s}blocked" % NS_BLOCK_ERR) is not None
    sync(slix, a, a2)
    assert "let me in" not in bodies(a) + bodies(a2)

    # Unblock: messages flow again.
    slix.run(a["xep_0191"].unblock(ub[1], timeout=h.WAIT))
    assert slix.run(a["xep_0191"].get_blocked(timeout=h.WAIT))["blocklist"]["items"] == set()
    b.send_message(mto=ua[1], mbody="hello again", mtype="chat")
    until(slix, lambda: "hello again" in bodies(a) + bodies(a2), "delivered after unblock")


def test_unblock_sends_current_presence_to_contact(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    subscribe_both(slix, a, b, ua, ub)
    nb = len(b.pres)
    slix.run(a["xep_0191"].block(ub[1], timeout=h.WAIT))
    presence_from(slix, b, str(a.boundjid), "unavailable", nb)
    nb = len(b.pres)
    slix.run(a["xep_0191"].unblock(ub[1], timeout=h.WAIT))
    presence_from(slix, b, str(a.boundjid), "available", nb)


def test_blocked_iq_gets_service_unavailable(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    slix.run(a["xep_0191"].block(ub[1], timeout=h.WAIT))
    with pytest.raises(IqError) as ei:
        slix.run(b["xep_0199"].ping(jid=a.boundjid, timeout=h.WAIT))
    assert ei.value.iq["error"]["condition"] == "service-unavailable"


# --------------------------------------------------------- ping/disco/version

def test_ping_server_and_peer(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    assert slix.run(a["xep_0199"].ping(jid=h.DOMAIN, timeout=h.WAIT)) >= 0
    # slixmpp answers pings itself: the iq goes through to Bob's client.
    assert slix.run(a["xep_0199"].ping(jid=b.boundjid, timeout=h.WAIT)) >= 0
    # A ping to an account's bare JID is answered by the server on its
    # behalf (RFC 6121 §8.5.1): a result or an error, never silence.
    try:
        slix.run(a["xep_0199"].ping(jid=ub[1], timeout=h.WAIT))
    except IqError as e:
        assert e.iq["error"]["condition"] in ("service-unavailable", "feature-not-implemented")


def test_disco_info_server_account_and_client(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    info = slix.run(a["xep_0030"].get_info(jid=h.DOMAIN, timeout=h.WAIT))["disco_info"]
    assert ("server", "im") in {(i[0], i[1]) for i in info["identities"]}
    for f in (h.NS_DISCO_INFO, h.NS_PING, h.NS_VERSION, NS_CARBONS, NS_BLOCKING):
        assert f in info["features"]
    items = slix.run(a["xep_0030"].get_items(jid=h.DOMAIN, timeout=h.WAIT))
    assert items["type"] == "result"

    # Another account's bare JID: the server answers for it (RFC 6120
    # §10.5.3.1: a result or an error, never delivered to a resource).
    try:
        info = slix.run(a["xep_0030"].get_info(jid=ub[1], timeout=h.WAIT))
        assert str(info["from"]) == ub[1]
        assert ("account", "registered") in {(i[0], i[1])
                                             for i in info["disco_info"]["identities"]}
    except IqError as e:
        assert e.iq["error"]["condition"] == "service-unavailable"
        assert str(e.iq["from"]) == ub[1]

    # A full JID: Bob's client answers itself.
    info = slix.run(a["xep_0030"].get_info(jid=b.boundjid, timeout=h.WAIT))
    assert str(info["from"]) == str(b.boundjid)
    assert h.NS_PING in info["disco_info"]["features"]


def test_disco_info_own_account(slix, user):
    ua = user(prefix="alice")
    a = login(slix, ua, "a", presence=False)
    info = slix.run(a["xep_0030"].get_info(jid=ua[1], timeout=h.WAIT))
    assert ("account", "registered") in {(i[0], i[1]) for i in info["disco_info"]["identities"]}


def test_version_server_and_peer(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    v = slix.run(a["xep_0092"].get_version(h.DOMAIN, timeout=h.WAIT))
    assert v["software_version"]["name"] == "roost"
    v = slix.run(a["xep_0092"].get_version(b.boundjid, timeout=h.WAIT))
    assert str(v["from"]) == str(b.boundjid)
    assert v["software_version"]["name"]


def test_unknown_iq_to_bare_jid_service_unavailable(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    login(slix, ub, "b")
    iq = a.make_iq_get(ito=ub[1])
    iq.append(ET.Element("{urn:example:roost:nothing}query"))
    with pytest.raises(IqError) as ei:
        slix.run(iq.send(timeout=h.WAIT))
    assert ei.value.iq["error"]["condition"] == "service-unavailable"


# ------------------------------------------------- subscription edge cases

def test_subscribe_when_already_subscribed_not_asked_again(slix, user):
    """RFC 6121 §3.1.3: a request from a user who already has a
    subscription is answered by the contact's server ('subscribed', which
    the user's server then drops in state Both, A.3.2); the contact is
    not asked again and nothing changes."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    subscribe_both(slix, a, b, ua, ub)
    nb = len(b.pres)
    a.send_presence(pto=ub[1], ptype="subscribe")
    barrier(slix, a, b)
    assert not [p for p in b.pres[nb:] if ptype(p) == "subscribe"]
    assert server_roster(slix, a)[ub[1]]["subscription"] == "both"
    assert server_roster(slix, b)[ua[1]]["subscription"] == "both"


def test_repeated_request_while_pending_not_redelivered(slix, user):
    """Appendix A.3.1: an inbound subscribe in state None + Pending In is
    not delivered again."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    a.send_presence(pto=ub[1], ptype="subscribe")
    presence_from(slix, b, ua[1], "subscribe")
    a.send_presence(pto=ub[1], ptype="subscribe")
    barrier(slix, a, b)
    assert len(presences(b, ua[1], "subscribe")) == 1


def test_unsubscribe_withdraws_pending_request(slix, user):
    """Alice asks offline Bob, then withdraws (unsubscribe): her ask is
    cleared, and Bob is not asked at his next login (A.3.3: None +
    Pending In -> None)."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    a.send_presence(pto=ub[1], ptype="subscribe")
    until(slix, lambda: a.client_roster.has_jid(ub[1]) and a.client_roster[ub[1]]["pending_out"],
          "alice pending_out")
    a.send_presence(pto=ub[1], ptype="unsubscribe")
    until(slix, lambda: not a.client_roster[ub[1]]["pending_out"], "alice ask cleared")
    assert server_roster(slix, a)[ub[1]].get("ask") in (None, "")
    b = login(slix, ub, "b")
    barrier(slix, a, b)
    assert not presences(b, ua[1], "subscribe")


def test_unsolicited_unsubscribe_and_unsubscribed_not_delivered(slix, user):
    """Appendix A.3.3/A.3.4: inbound unsubscribe/unsubscribed for a
    contact in state None are not delivered."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    b.send_presence(pto=ua[1], ptype="unsubscribed")
    b.send_presence(pto=ua[1], ptype="unsubscribe")
    barrier(slix, b, a)
    assert not [p for p in a.pres if ptype(p) in ("unsubscribe", "unsubscribed")]
    assert ub[1] not in server_roster(slix, a)


def test_one_of_two_resources_aborts(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b1 = login(slix, ub, "b1")
    b2 = login(slix, ub, "b2")
    subscribe_both(slix, a, b1, ua, ub)
    presence_from(slix, a, str(b2.boundjid))
    offline = []
    a.add_event_handler("got_offline", lambda p: offline.append(p))
    n = len(a.pres)
    b1.abort()
    presence_from(slix, a, str(b1.boundjid), "unavailable", n)
    presence_from(slix, b2, str(b1.boundjid), "unavailable")
    assert list(a.client_roster[ub[1]].resources) == [b2.boundjid.resource]
    assert not offline
    # The surviving resource gets bare-JID chat.
    a.send_message(mto=ub[1], mbody="still there?", mtype="chat")
    until(slix, lambda: "still there?" in bodies(b2), "b2 gets it")


def test_directed_presence_then_broadcast_unavailable(slix, user):
    """RFC 6121 §4.6.3: an entity that got directed presence also gets
    the unavailable broadcast."""
    ua, uc = user(prefix="alice"), user(prefix="carol")
    a = login(slix, ua, "a")
    c = login(slix, uc, "c")
    a.send_presence(pto=c.boundjid, pstatus="psst")
    p = presence_from(slix, c, str(a.boundjid))
    assert p["status"] == "psst"
    n = len(c.pres)
    a.send_presence(ptype="unavailable")
    presence_from(slix, c, str(a.boundjid), "unavailable", n)


# ---------------------------------------------------------- roster details

def test_roster_unicode_name_and_groups_roundtrip(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    name = "Bøb \u00e9\u4e2d\U0001F426 <&>"
    groups = ["Fr\u00fcnde", "\u53cb\u4eba", "a&b"]
    slix.run(a.update_roster(ub[1], name=name, groups=groups, timeout=h.WAIT))
    until(slix, lambda: push_for(a, ub[1]), "push")
    assert a.client_roster[ub[1]]["name"] == name
    assert sorted(a.client_roster[ub[1]]["groups"]) == sorted(groups)
    a2 = login(slix, ua, "a2", presence=False)
    assert a2.client_roster[ub[1]]["name"] == name
    assert sorted(a2.client_roster[ub[1]]["groups"]) == sorted(groups)


def test_roster_set_duplicate_groups_bad_request(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    with pytest.raises(IqError) as ei:
        slix.run(a.update_roster(ub[1], name="B", groups=["G", "G"], timeout=h.WAIT))
    assert ei.value.iq["error"]["condition"] == "bad-request"
    assert ub[1] not in server_roster(slix, a)


def test_roster_set_empty_group_not_acceptable(slix, user):
    """RFC 6121 §2.3.3: an empty group name -> not-acceptable; nothing is
    stored."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    with pytest.raises(IqError) as ei:
        slix.run(a.update_roster(ub[1], name="B", groups=[""], timeout=h.WAIT))
    assert ei.value.iq["error"]["condition"] == "not-acceptable"
    assert ub[1] not in server_roster(slix, a)


# ------------------------------------------------------------ message details

def test_message_children_and_attributes_preserved(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    m = a.make_message(mto=b.boundjid, mbody="hello", msubject="subj", mtype="chat")
    m["id"] = "msg-42"
    m["thread"] = "thread-7"
    m["lang"] = "de"
    m.append(ET.Element("{http://jabber.org/protocol/chatstates}active"))
    m.send()
    until(slix, lambda: "hello" in bodies(b), "message")
    got = b.msgs[-1]
    assert got["id"] == "msg-42"
    assert got["subject"] == "subj" and got["thread"] == "thread-7"
    assert got["lang"] == "de"
    assert got.xml.find("{http://jabber.org/protocol/chatstates}active") is not None


def test_message_to_nonexistent_account_bounced(slix, user):
    ua = user(prefix="alice")
    a = login(slix, ua, "a")
    ghost = "nobody%s@%s" % (h.uniq(""), h.DOMAIN)
    a.send_message(mto=ghost, mbody="anyone?", mtype="chat")
    until(slix, lambda: a.errors, "bounce")
    assert a.errors[0]["error"]["condition"] == "service-unavailable"
    assert str(a.errors[0]["from"]) == ghost


def test_error_and_headline_to_offline_not_stored(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    m = a.make_message(mto=ub[1], mbody="err-body", mtype="error")
    m["error"]["condition"] = "undefined-condition"
    m["error"]["type"] = "cancel"
    m.send()
    a.send_message(mto=ub[1], mbody="headline-body", mtype="headline")
    a.send_message(mto=ub[1], mbody="real", mtype="chat")
    sync(slix, a)
    b = login(slix, ub, "b")
    until(slix, lambda: "real" in bodies(b), "stored chat")
    sync(slix, b)
    assert bodies(b) == ["real"]
    assert not a.errors


def test_message_to_own_bare_jid(slix, user):
    ua = user(prefix="alice")
    a1 = login(slix, ua, "a1", priority=1)
    a2 = login(slix, ua, "a2", priority=5)
    sync(slix, a1, a2)
    a1.send_message(mto=ua[1], mbody="note to self", mtype="chat")
    until(slix, lambda: "note to self" in bodies(a2), "a2 gets it")
    assert str(a2.msgs[-1]["from"]) == str(a1.boundjid)


# ------------------------------------------------------------- more flows

def test_request_reaches_every_available_resource(slix, user):
    """RFC 6121 §3.1.3: the request goes to all available resources; the
    roster push of the approval to all interested ones."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b1 = login(slix, ub, "b1", priority=5)
    b2 = login(slix, ub, "b2", priority=-1)
    a.send_presence(pto=ub[1], ptype="subscribe")
    presence_from(slix, b1, ua[1], "subscribe")
    presence_from(slix, b2, ua[1], "subscribe")
    b2.send_presence(pto=ua[1], ptype="subscribed")
    until(slix, lambda: item_sub(b1, ua[1]) == "from", "b1 push: from")
    until(slix, lambda: item_sub(b2, ua[1]) == "from", "b2 push: from")
    # Both of Bob's resources' presence reach Alice, the negative one too.
    p = presence_from(slix, a, str(b2.boundjid))
    assert p["priority"] == -1
    presence_from(slix, a, str(b1.boundjid))


def test_remove_unknown_item_not_found(slix, user):
    """RFC 6121 §2.5.3: removing an item that is not in the roster ->
    item-not-found."""
    ua = user(prefix="alice")
    a = login(slix, ua, "a")
    ghost = "nobody%s@%s" % (h.uniq(""), h.DOMAIN)
    with pytest.raises(IqError) as ei:
        slix.run(a.client_roster.update(ghost, subscription="remove", timeout=h.WAIT))
    assert ei.value.iq["error"]["condition"] == "item-not-found"


def test_preapproval_cancelled_by_unsubscribed(slix, user):
    """RFC 6121 §3.4: 'unsubscribed' cancels a pre-approval; a later
    request is then asked of the contact as usual."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    b.send_presence(pto=ua[1], ptype="subscribed")
    until(slix, lambda: [i for i in push_for(b, ua[1]) if i["approved"] in ("true", "1", True)],
          "pre-approved")
    n = len(b.pushes)
    b.send_presence(pto=ua[1], ptype="unsubscribed")
    until(slix, lambda: push_for(b, ua[1], n), "pre-approval cancelled push")
    assert push_for(b, ua[1], n)[-1]["approved"] in ("", None, "false", False)
    a.send_presence(pto=ub[1], ptype="subscribe")
    presence_from(slix, b, ua[1], "subscribe")
    assert item_sub(a, ub[1]) == "none"


def test_blocked_contact_subscription_and_probe_dropped(slix, user):
    """XEP-0191 §3.3: presence from a blocked contact (subscription
    requests, probes) is dropped without an error."""
    ua, uc = user(prefix="alice"), user(prefix="carol")
    a = login(slix, ua, "a")
    slix.run(a["xep_0191"].block(uc[1], timeout=h.WAIT))
    c = login(slix, uc, "c")
    c.send_presence(pto=ua[1], ptype="subscribe")
    c.send_presence(pto=a.boundjid, pstatus="directed")
    # Carol is blocked, so no marker from her can reach Alice: server pings
    # are the barrier (exact on one node; on three a late stanza could
    # still slip by unnoticed, never fail the test wrongly).
    sync(slix, c, a)
    assert not [p for p in a.pres if str(p["from"]).startswith(uc[1])]
    assert not [p for p in c.pres if ptype(p) == "error"]
    assert uc[1] not in server_roster(slix, a) or \
        server_roster(slix, a)[uc[1]]["subscription"] == "none"


def test_carbons_no_duplicate_with_equal_priority(slix, user):
    """A bare-JID chat delivered to several resources: each one gets it
    once, either directly or as a carbon, never both (XEP-0280 §6)."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a1 = login(slix, ua, "a1", priority=1)
    a2 = login(slix, ua, "a2", priority=1)
    b = login(slix, ub, "b")
    slix.run(a1["xep_0280"].enable(timeout=h.WAIT))
    slix.run(a2["xep_0280"].enable(timeout=h.WAIT))
    b.send_message(mto=ua[1], mbody="both of you", mtype="chat")

    def copies(x):
        return (bodies(x).count("both of you") +
                len([1 for k, m in x.carbons if m["carbon_received"]["body"] == "both of you"]))
    until(slix, lambda: copies(a1) >= 1 and copies(a2) >= 1, "each resource has it")
    barrier(slix, b, a1)
    barrier(slix, b, a2)
    assert copies(a1) == 1 and copies(a2) == 1


def test_concurrent_roster_updates_from_two_resources(slix, user):
    """Two resources change the roster at once: every change lands, and
    both end with the same, current version."""
    ua = user(prefix="alice")
    a1 = login(slix, ua, "a1", presence=False)
    a2 = login(slix, ua, "a2", presence=False)
    contacts = ["c%02d%s@%s" % (i, h.uniq(""), h.DOMAIN) for i in range(12)]
    futs = []
    for i, jid in enumerate(contacts):
        x = a1 if i % 2 == 0 else a2
        futs.append(x.update_roster(jid, name="n%d" % i, groups=["g%d" % (i % 3)],
                                    timeout=h.WAIT))
    # One contact renamed by both resources concurrently.
    futs.append(a1.update_roster(contacts[0], name="first", timeout=h.WAIT))
    futs.append(a2.update_roster(contacts[0], name="second", timeout=h.WAIT))
    slix.run(asyncio.gather(*futs))
    srv = server_roster(slix, a1)
    assert set(srv) == set(contacts)
    assert srv[contacts[0]]["name"] in ("first", "second", "n0")
    # Pushes of changes made on different nodes are not ordered by version
    # (each node publishes its own; Redis orders them by arrival), so a
    # resource may keep an older 'ver' from its last push. That is safe: a
    # stale ver only makes the next roster get return the full roster. Both
    # resources agree once they fetch the roster.
    slix.run(a1.get_roster(timeout=h.WAIT))
    slix.run(a2.get_roster(timeout=h.WAIT))
    until(slix, lambda: a1.client_roster.version == a2.client_roster.version,
          "both resources at the same version")
    for x in (a1, a2):
        assert roster_jids(x) >= set(contacts)
        assert x.client_roster[contacts[0]]["name"] == srv[contacts[0]]["name"]
    # A session that already has that version gets nothing new.
    a3 = slix.client(ua[1] + "/a3", ua[2], plugins=PLUGINS)
    slix.connect(a3)
    slix.run(a3.e2e_session)
    a3.client_roster.version = a2.client_roster.version
    r = slix.run(a3.get_roster(timeout=h.WAIT))
    assert not r["roster"]["items"]


def test_invalid_presence_type_bad_request(slix, user):
    """RFC 6121 §4.7.1 / RFC 6120 §8.3.3: an unknown presence type is
    answered with bad-request."""
    ua = user(prefix="alice")
    a = login(slix, ua, "a")
    a.send_raw("<presence type='bogus' id='bogus1'/>")
    until(slix, lambda: [p for p in a.pres if p.xml.get("type") == "error"
                         and p["id"] == "bogus1"], "presence error")
    e = [p for p in a.pres if p.xml.get("type") == "error"][0]
    assert e["error"]["condition"] == "bad-request"


def test_roster_remove_withdraws_pending_request(slix, user):
    """RFC 6121 §2.5.3: removing an item with a pending request sends
    'unsubscribe'; the offline contact is not asked at its next login."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    a.send_presence(pto=ub[1], ptype="subscribe")
    until(slix, lambda: push_for(a, ub[1]), "ask push")
    np = len(a.pushes)
    slix.run(a.client_roster.update(ub[1], subscription="remove", timeout=h.WAIT))
    until(slix, lambda: push_for(a, ub[1], np), "remove push")
    b = login(slix, ub, "b")
    barrier(slix, a, b)
    assert not presences(b, ua[1], "subscribe")


def test_full_jid_message_to_negative_priority_resource(slix, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "neg", priority=-5)
    a.send_message(mto=b.boundjid, mbody="direct", mtype="chat")
    until(slix, lambda: "direct" in bodies(b), "full-JID delivery")


def test_bare_message_while_unavailable_kept_until_available(slix, user):
    """RFC 6121 §8.5.2.2: a connected but unavailable resource is no
    available resource: chat is stored and comes with the next presence."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(slix, ua, "a")
    b = login(slix, ub, "b")
    b.send_presence(ptype="unavailable")
    sync(slix, b)
    a.send_message(mto=ub[1], mbody="while away", mtype="chat")
    sync(slix, a, b)
    assert "while away" not in bodies(b)
    b.send_presence()
    until(slix, lambda: "while away" in bodies(b), "delivered on presence")
    assert b.msgs[-1]["delay"]["stamp"] is not None
