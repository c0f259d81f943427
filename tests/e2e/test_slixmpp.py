# Real-client scenarios with slixmpp: SASL mechanisms, chat, server iqs.

import xml.etree.ElementTree as ET

import pytest
from slixmpp.exceptions import IqError

import roost_harness as h


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
def test_login_each_mechanism(slix, user, mech):
    _, bare, pw = user()
    x = slix.login(bare + "/m", pw, mech=mech, presence=False)
    assert x.authenticated
    assert str(x.boundjid) == bare + "/m"
    assert x["feature_mechanisms"].mech.name == mech


def test_login_on_second_hosted_domain(slix, user):
    _, bare, pw = user(domain=h.DOMAIN2)
    x = slix.login(bare + "/d2", pw, presence=False)
    assert str(x.boundjid) == bare + "/d2"


def test_wrong_password_fails(slix, user):
    _, bare, pw = user()
    x = slix.client(bare + "/w", pw + "x")
    slix.connect(x)
    failure = slix.run(x.e2e_failed)
    assert failure["condition"] == "not-authorized"
    assert not x.e2e_session.done()


def test_chat_both_ways_full_and_bare(slix, user):
    _, alice, apw = user(prefix="alice")
    _, bob, bpw = user(prefix="bob")
    a = slix.login(alice + "/a", apw)
    b = slix.login(bob + "/b", bpw)
    # Presence is handled before the ping answer arrives (in-order
    # processing), so both are available before chatting.
    slix.run(a["xep_0199"].ping(jid=h.DOMAIN, timeout=h.WAIT))
    slix.run(b["xep_0199"].ping(jid=h.DOMAIN, timeout=h.WAIT))

    a.send_message(mto=bob + "/b", mbody="hi bob (full)", mtype="chat")
    m = slix.next_message(b)
    assert m["body"] == "hi bob (full)"
    assert str(m["from"]) == alice + "/a"

    b.send_message(mto=alice, mbody="hi alice (bare)", mtype="chat")
    m = slix.next_message(a)
    assert m["body"] == "hi alice (bare)"
    assert str(m["from"]) == bob + "/b"

    a.send_message(mto=bob, mbody="hi bob (bare)", mtype="chat")
    m = slix.next_message(b)
    assert m["body"] == "hi bob (bare)"
    assert str(m["from"]) == alice + "/a"

    b.send_message(mto=alice + "/a", mbody="hi alice (full)", mtype="chat")
    m = slix.next_message(a)
    assert m["body"] == "hi alice (full)"
    assert str(m["from"]) == bob + "/b"


def test_ping_server(slix, user):
    _, bare, pw = user()
    x = slix.login(bare + "/p", pw, presence=False)
    rtt = slix.run(x["xep_0199"].ping(jid=h.DOMAIN, timeout=h.WAIT))
    assert rtt is not None and rtt >= 0


def test_disco_info_domain(slix, user):
    _, bare, pw = user()
    x = slix.login(bare + "/d", pw, presence=False)
    iq = slix.run(x["xep_0030"].get_info(jid=h.DOMAIN, timeout=h.WAIT))
    assert iq["type"] == "result"
    info = iq["disco_info"]
    cats = {(i[0], i[1]) for i in info["identities"]}
    assert any(c == "server" for c, _ in cats), cats
    feats = set(info["features"])
    for f in (h.NS_PING, h.NS_VERSION, h.NS_DISCO_INFO):
        assert f in feats, feats


def test_version(slix, user):
    _, bare, pw = user()
    x = slix.login(bare + "/v", pw, presence=False)
    iq = slix.run(x["xep_0092"].get_version(h.DOMAIN, timeout=h.WAIT))
    assert iq["type"] == "result"
    assert iq["software_version"]["name"] == "roost"
    assert iq["software_version"]["version"]


def test_iq_to_unknown_full_jid_service_unavailable(slix, user):
    _, alice, apw = user(prefix="alice")
    _, bob, bpw = user(prefix="bob")
    a = slix.login(alice + "/a", apw, presence=False)
    slix.login(bob + "/here", bpw, presence=False)
    with pytest.raises(IqError) as ei:
        slix.run(a["xep_0199"].ping(jid=bob + "/nope", timeout=h.WAIT))
    assert ei.value.iq["type"] == "error"
    assert ei.value.iq["error"]["condition"] == "service-unavailable"
    assert str(ei.value.iq["from"]) == bob + "/nope"


def test_iq_to_bare_jid_unknown_namespace_service_unavailable(slix, user):
    _, alice, apw = user(prefix="alice")
    _, bob, bpw = user(prefix="bob")
    a = slix.login(alice + "/a", apw, presence=False)
    slix.login(bob + "/b", bpw)
    iq = a.make_iq_get(ito=bob)
    iq.append(ET.Element("{urn:example:roost:unknown}query"))
    with pytest.raises(IqError) as ei:
        slix.run(iq.send(timeout=h.WAIT))
    assert ei.value.iq["error"]["condition"] == "service-unavailable"
