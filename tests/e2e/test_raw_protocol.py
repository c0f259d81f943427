# Precise protocol checks over raw sockets: features, SASL failures, bind,
# routing rules of RFC 6120 §10 / RFC 6121 §8, iq semantics, from stamping.

import pytest

import roost_harness as h
from roost_harness import body_of, stanza_error


def login(raw, user, resource="r", **kw):
    local, bare, pw = user
    c = raw()
    c.login(local, pw, domain=bare.split("@")[1], resource=resource, **kw)
    return c


# ---------------------------------------------------------------- features

def test_features_before_auth(raw):
    c = raw()
    f = c.open_stream()
    assert c.header.get("from") == h.DOMAIN
    assert c.header.get("version") == "1.0"
    assert c.header.get("id")
    mechs = c.mechanisms()
    for m in ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"):
        assert m in mechs, mechs
    assert f.find("{%s}bind" % h.NS_BIND) is None


def test_features_after_auth_bind_and_optional_session(raw, user):
    local, _, pw = user()
    c = raw()
    c.open_stream()
    assert c.auth_scram(local, pw).name == "success"
    f = c.restart()
    assert f.find("{%s}bind" % h.NS_BIND) is not None
    sess = f.find("{%s}session" % h.NS_SESSION)
    assert sess is not None
    assert sess.find("{%s}optional" % h.NS_SESSION) is not None
    assert f.find("{%s}mechanisms" % h.NS_SASL) is None
    # The legacy session iq still succeeds when sent.
    r = c.bind("s")
    assert r.get("type") == "result"
    r = c.iq("set", None, "<session xmlns='%s'/>" % h.NS_SESSION)
    assert r.get("type") == "result"


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
def test_raw_login_each_mechanism(raw, user, mech):
    u = user()
    c = login(raw, u, resource="x", mech=mech)
    assert c.jid == u[1] + "/x"


# ---------------------------------------------------------------- SASL failures

def sasl_failure(el):
    assert el.tag == "{%s}failure" % h.NS_SASL, el
    conds = [c.name for c in el.children if c.name != "text"]
    return conds[0] if conds else None


def test_bad_password_plain(raw, user):
    local, _, pw = user()
    c = raw()
    c.open_stream()
    assert sasl_failure(c.auth_plain(local, pw + "x")) == "not-authorized"


def test_bad_password_scram(raw, user):
    local, _, pw = user()
    c = raw()
    c.open_stream()
    assert sasl_failure(c.auth_scram(local, pw + "x")) == "not-authorized"


def test_unknown_user_not_authorized(raw):
    c = raw()
    c.open_stream()
    assert sasl_failure(c.auth_plain(h.uniq("nobody"), "pw")) == "not-authorized"


def test_retry_after_failure_succeeds(raw, user):
    local, _, pw = user()
    c = raw()
    c.open_stream()
    assert sasl_failure(c.auth_plain(local, "wrong")) == "not-authorized"
    assert c.auth_plain(local, pw).name == "success"


def test_authzid_mismatch(raw, user):
    local, _, pw = user()
    other = h.uniq("other") + "@" + h.DOMAIN
    c = raw()
    c.open_stream()
    assert sasl_failure(c.auth_plain(local, pw, authzid=other)) == "invalid-authzid"


def test_authzid_own_jid_accepted(raw, user):
    local, bare, pw = user()
    c = raw()
    c.open_stream()
    assert c.auth_plain(local, pw, authzid=bare).name == "success"


def test_unknown_mechanism(raw):
    c = raw()
    c.open_stream()
    c.auth_send("X-ROOST-BOGUS", b"abc")
    assert sasl_failure(c.next()) == "invalid-mechanism"


def test_bad_base64(raw):
    c = raw()
    c.open_stream()
    c.send("<auth xmlns='%s' mechanism='PLAIN'>!!!not*base64$$$</auth>" % h.NS_SASL)
    assert sasl_failure(c.next()) == "incorrect-encoding"


# ---------------------------------------------------------------- bind

def test_bind_generated_resource(raw, user):
    local, bare, pw = user()
    c = raw()
    c.open_stream()
    assert c.auth_plain(local, pw).name == "success"
    c.restart()
    r = c.bind(None)
    assert r.get("type") == "result"
    assert c.jid.startswith(bare + "/")
    assert len(c.jid) > len(bare) + 1


def test_bind_conflict_new_session_wins(raw, user):
    u = user()
    first = login(raw, u, resource="same")
    second = login(raw, u, resource="same")
    assert second.jid == u[1] + "/same"
    cond, _ = first.expect_stream_error()
    assert cond == "conflict"
    # The new session works.
    second.sync()


def test_stanza_before_bind_not_routed(raw, user):
    """RFC 6120 §7.1: a stanza before resource binding is not processed and
    the stream is closed with <not-authorized/>."""
    local, bare, pw = user()
    rcv = login(raw, user(), resource="rcv")
    c = raw()
    c.open_stream()
    assert c.auth_plain(local, pw).name == "success"
    c.restart()
    c.message(rcv.jid, "before bind")
    cond, _ = c.expect_stream_error()
    assert cond == "not-authorized"
    rcv.message(rcv.jid, "marker")
    m = rcv.next_message()
    assert body_of(m) == "marker"


def test_stanza_before_auth_not_authorized(raw, user):
    rcv = login(raw, user(), resource="rcv")
    c = raw()
    c.open_stream()
    c.message(rcv.jid, "before auth")
    cond, _ = c.expect_stream_error()
    assert cond == "not-authorized"
    rcv.message(rcv.jid, "marker")
    assert body_of(rcv.next_message()) == "marker"


# ---------------------------------------------------------------- routing

def avail(c, prio):
    c.presence(prio)
    c.sync()


def test_bare_message_goes_to_highest_priority_only(raw, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    hi, lo = login(raw, ua, "hi"), login(raw, ua, "lo")
    b = login(raw, ub, "b")
    avail(hi, 5)
    avail(lo, 1)
    b.message(ua[1], "to-bare")
    b.message(lo.jid, "marker")
    m = hi.next_message()
    assert body_of(m) == "to-bare"
    assert m.get("from") == b.jid
    m = lo.next_message()
    assert body_of(m) == "marker", "low-priority resource got %r" % body_of(m)


def test_bare_message_equal_priority_goes_to_all(raw, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    r1, r2 = login(raw, ua, "one"), login(raw, ua, "two")
    b = login(raw, ub, "b")
    avail(r1, 3)
    avail(r2, 3)
    b.message(ua[1], "both")
    assert body_of(r1.next_message()) == "both"
    assert body_of(r2.next_message()) == "both"


def test_bare_message_negative_priority_only_not_delivered(raw, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    neg = login(raw, ua, "neg")
    b = login(raw, ub, "b")
    avail(neg, -1)
    b.message(ua[1], "to-bare")
    b.message(neg.jid, "marker")
    m = neg.next_message()
    assert body_of(m) == "marker", "negative-priority resource got %r" % body_of(m)


def test_bare_message_not_delivered_to_unavailable_resource(raw, user):
    """A bound resource that never sent presence is not 'available' and
    gets no message addressed to the bare JID (RFC 6121 §8.5.2.1.1)."""
    ua, ub = user(prefix="alice"), user(prefix="bob")
    quiet = login(raw, ua, "quiet")
    loud = login(raw, ua, "loud")
    b = login(raw, ub, "b")
    avail(loud, 0)
    quiet.sync()
    b.message(ua[1], "to-bare")
    b.message(quiet.jid, "marker")
    assert body_of(loud.next_message()) == "to-bare"
    assert body_of(quiet.next_message()) == "marker"


def test_message_to_unknown_full_jid_treated_as_bare(raw, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, ua, "a")
    b = login(raw, ub, "b")
    avail(a, 0)
    b.message(ua[1] + "/no-such-resource", "via-bare")
    m = a.next_message()
    assert body_of(m) == "via-bare"
    assert m.get("from") == b.jid


def test_spoofed_from_is_rewritten(raw, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, ua, "a")
    b = login(raw, ub, "b")
    b.send("<message type='chat' to='%s' from='evil@%s/x'><body>spoof</body></message>"
           % (a.jid, h.DOMAIN))
    m = a.next_message()
    assert body_of(m) == "spoof"
    assert m.get("from") == b.jid


def test_message_full_jid_on_other_domain(raw, user):
    ua, ub = user(prefix="alice"), user(domain=h.DOMAIN2, prefix="bob")
    a = login(raw, ua, "a")
    b = login(raw, ub, "b")
    b.message(a.jid, "cross-domain")
    m = a.next_message()
    assert body_of(m) == "cross-domain"
    assert m.get("from") == ub[1] + "/b"


# ---------------------------------------------------------------- iq semantics

def test_iq_without_id_bad_request(raw, user):
    c = login(raw, user())
    c.send("<iq type='get' to='%s'><ping xmlns='%s'/></iq>" % (h.DOMAIN, h.NS_PING))
    r = c.next(name="iq")
    assert r.get("type") == "error", r
    assert stanza_error(r)[1] == "bad-request"


def test_iq_unknown_type_bad_request(raw, user):
    c = login(raw, user())
    c.send("<iq type='foo' id='t1' to='%s'><ping xmlns='%s'/></iq>" % (h.DOMAIN, h.NS_PING))
    r = c.next(name="iq")
    assert r.get("id") == "t1"
    assert r.get("type") == "error"
    assert stanza_error(r)[1] == "bad-request"


def test_iq_result_and_error_not_answered(raw, user):
    c = login(raw, user())
    c.send("<iq type='result' id='res1' to='%s'/>" % h.DOMAIN)
    c.send("<iq type='error' id='err1' to='%s'><error type='cancel'>"
           "<bad-request xmlns='%s'/></error></iq>" % (h.DOMAIN, h.NS_STANZAS))
    c.send("<iq type='get' id='ping1' to='%s'><ping xmlns='%s'/></iq>" % (h.DOMAIN, h.NS_PING))
    r = c.next(name="iq")
    assert r.get("id") == "ping1", "server answered a result/error iq: %r" % r
    assert r.get("type") == "result"


def test_iq_get_with_two_children_bad_request(raw, user):
    """RFC 6120 §8.2.3: an iq get/set has exactly one payload child."""
    c = login(raw, user())
    r = c.iq("get", h.DOMAIN, "<ping xmlns='%s'/><ping xmlns='%s'/>" % (h.NS_PING, h.NS_PING))
    assert r.get("type") == "error"
    assert stanza_error(r)[1] == "bad-request"


def test_iq_unknown_namespace_to_server(raw, user):
    c = login(raw, user())
    r = c.iq("get", h.DOMAIN, "<query xmlns='urn:example:roost:nothing'/>")
    assert r.get("type") == "error"
    assert stanza_error(r)[1] == "service-unavailable"


def test_ping_server_raw(raw, user):
    c = login(raw, user())
    r = c.iq("get", h.DOMAIN, "<ping xmlns='%s'/>" % h.NS_PING)
    assert r.get("type") == "result"
    assert r.get("from") == h.DOMAIN


def test_ping_own_bare_jid_answered_by_server(raw, user):
    """RFC 6120 §10.3.3: an iq to the user's own bare JID is handled by the
    server on the user's behalf."""
    u = user()
    c = login(raw, u)
    r = c.iq("get", u[1], "<ping xmlns='%s'/>" % h.NS_PING)
    assert r.get("type") in ("result", "error")
    if r.get("type") == "error":
        assert stanza_error(r)[1] == "service-unavailable"


def test_disco_items_domain(raw, user):
    c = login(raw, user())
    r = c.iq("get", h.DOMAIN, "<query xmlns='%s'/>" % h.NS_DISCO_ITEMS)
    assert r.get("type") == "result"
    assert r.find("{%s}query" % h.NS_DISCO_ITEMS) is not None


def test_disco_info_domain_raw(raw, user):
    c = login(raw, user())
    r = c.iq("get", h.DOMAIN, "<query xmlns='%s'/>" % h.NS_DISCO_INFO)
    assert r.get("type") == "result"
    q = r.find("{%s}query" % h.NS_DISCO_INFO)
    ids = q.findall("{%s}identity" % h.NS_DISCO_INFO)
    assert any(i.get("category") == "server" for i in ids)
    feats = {f.get("var") for f in q.findall("{%s}feature" % h.NS_DISCO_INFO)}
    assert h.NS_PING in feats and h.NS_VERSION in feats


def test_iq_full_jid_routed_and_answered(raw, user):
    ua, ub = user(prefix="alice"), user(prefix="bob")
    a = login(raw, ua, "a")
    b = login(raw, ub, "b")
    a.send("<iq type='get' id='q1' to='%s'><query xmlns='urn:example:roost:x'/></iq>" % b.jid)
    got = b.next(name="iq")
    assert got.get("from") == a.jid
    assert got.get("id") == "q1"
    b.send("<iq type='result' id='q1' to='%s'/>" % a.jid)
    r = a.next(name="iq")
    assert r.get("id") == "q1" and r.get("type") == "result"
    assert r.get("from") == b.jid


def test_error_message_not_answered(raw, user):
    """An error stanza to an unknown JID is dropped, never bounced."""
    ua = user()
    a = login(raw, ua, "a")
    a.send("<message type='error' to='%s/nobody'><error type='cancel'>"
           "<item-not-found xmlns='%s'/></error></message>"
           % (h.uniq("ghost") + "@" + h.DOMAIN, h.NS_STANZAS))
    a.message(a.jid, "marker")
    m = a.next_message()
    assert body_of(m) == "marker", "server answered an error stanza: %r" % m


# ---------------------------------------------------------------- stream content

def test_unicode_and_entities_round_trip(raw, user):
    c = login(raw, user())
    text = "h\u00e9llo \u2603 \U0001F600 <&> 'q' \"dq\""
    c.message(c.jid, text)
    assert body_of(c.next_message()) == text


def test_pipelined_stanzas_in_order(raw, user):
    c = login(raw, user())
    burst = "".join("<message type='chat' to='%s'><body>m%d</body></message>" % (c.jid, i)
                    for i in range(200))
    c.send(burst)
    got = [body_of(c.next_message()) for _ in range(200)]
    assert got == ["m%d" % i for i in range(200)]


def test_stanza_split_across_writes(raw, user):
    c = login(raw, user())
    data = ("<message type='chat' to='%s'><body>split \u00e9</body></message>" % c.jid).encode()
    for i in range(len(data)):
        c.send(data[i:i + 1])
    assert body_of(c.next_message()) == "split \u00e9"


def test_initial_presence_reaches_own_resources(raw, user):
    """RFC 6121 §4.2.2: initial presence is broadcast to the user's own
    available resources."""
    u = user()
    r1, r2 = login(raw, u, "one"), login(raw, u, "two")
    avail(r1, 0)
    r2.presence(0)
    p = r1.next(name="presence", skip=lambda e: e.get("from") != r2.jid)
    assert p.get("type") in (None, "available")


def test_unavailable_on_disconnect_reaches_own_resources(raw, user):
    """RFC 6121 §4.5.2 / §4.6: when an available resource goes away the
    server broadcasts unavailable presence on its behalf."""
    u = user()
    r1, r2 = login(raw, u, "one"), login(raw, u, "two")
    avail(r1, 0)
    avail(r2, 0)
    r2.end()
    r2.wait_closed()
    p = r1.next(name="presence",
                skip=lambda e: e.get("from") != r2.jid or e.get("type") != "unavailable")
    assert p.get("type") == "unavailable"
