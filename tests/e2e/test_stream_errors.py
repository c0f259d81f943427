# Stream errors (RFC 6120 §4.9): the exact condition, the stream closed
# afterwards (</stream:stream> then TCP close), and the node still serving.

import signal

import roost_harness as h

STREAM_OPEN = ("<stream:stream xmlns='jabber:client' "
               "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>")


def still_serves(raw, user, port=None):
    local, bare, pw = user()
    c = raw(port)
    jid = c.login(local, pw, resource="after")
    assert jid == bare + "/after"
    c.sync()


def opened(raw, port=None):
    c = raw(port)
    c.open_stream()
    return c


def logged_in(raw, user, port=None):
    local, _, pw = user()
    c = raw(port)
    c.login(local, pw, resource="e")
    return c


def test_not_well_formed_mismatched_tags(raw, user):
    c = opened(raw)
    c.send("<message><body>x</message>")
    cond, _ = c.expect_stream_error()
    assert cond == "not-well-formed"
    still_serves(raw, user)


def test_not_well_formed_garbage_after_auth(raw, user):
    c = logged_in(raw, user)
    c.send(b"<<<\x00\xff>>>")
    cond, _ = c.expect_stream_error()
    assert cond == "not-well-formed"
    still_serves(raw, user)


def test_not_well_formed_garbage_instead_of_header(raw, user):
    c = raw()
    c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    cond, _ = c.expect_stream_error()
    assert cond == "not-well-formed"
    still_serves(raw, user)


def test_invalid_namespace_stream(raw, user):
    c = raw()
    c.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
           "xmlns:stream='http://example.com/not-streams' to='localhost' version='1.0'>")
    cond, _ = c.expect_stream_error()
    assert cond == "invalid-namespace"
    still_serves(raw, user)


def test_invalid_namespace_content(raw, user):
    c = raw()
    c.send("<?xml version='1.0'?><stream:stream xmlns='urn:example:not-client' "
           "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
    cond, _ = c.expect_stream_error()
    assert cond == "invalid-namespace"
    still_serves(raw, user)


def test_host_unknown(raw, user):
    c = raw()
    c.send("<?xml version='1.0'?>" + STREAM_OPEN % "not-hosted.example")
    cond, _ = c.expect_stream_error()
    assert cond == "host-unknown"
    still_serves(raw, user)


def test_second_domain_is_hosted(raw):
    c = raw()
    c.open_stream(to=h.DOMAIN2)
    assert c.header.get("from") == h.DOMAIN2
    assert "PLAIN" in c.mechanisms()


def test_restricted_xml_doctype(raw, user):
    c = raw()
    c.send("<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]>" + STREAM_OPEN % h.DOMAIN)
    cond, _ = c.expect_stream_error()
    assert cond == "restricted-xml"
    still_serves(raw, user)


def test_restricted_xml_comment(raw, user):
    c = opened(raw)
    c.send("<!-- a comment -->")
    cond, _ = c.expect_stream_error()
    assert cond == "restricted-xml"
    still_serves(raw, user)


def test_restricted_xml_processing_instruction(raw, user):
    c = opened(raw)
    c.send("<?roost do-something?>")
    cond, _ = c.expect_stream_error()
    assert cond == "restricted-xml"
    still_serves(raw, user)


def test_policy_violation_preauth_stanza_size(node_factory, raw, user):
    n = node_factory(env={"ROOST_LIMITS_MAX_STANZA_SIZE_PREAUTH": "2048"})
    c = opened(raw, n.port)
    c.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (h.NS_SASL, "A" * 4096))
    cond, _ = c.expect_stream_error()
    assert cond == "policy-violation"
    still_serves(raw, user, n.port)


def test_policy_violation_stanza_size_after_auth(node_factory, raw, user):
    n = node_factory(env={"ROOST_LIMITS_MAX_STANZA_SIZE": "8192",
                          "ROOST_LIMITS_MAX_STANZA_SIZE_PREAUTH": "4096"})
    c = logged_in(raw, user, n.port)
    # Below the limit is fine.
    c.message(c.jid, "x" * 2000)
    assert h.body_of(c.next_message()) == "x" * 2000
    c.message(c.jid, "x" * 16384)
    cond, _ = c.expect_stream_error()
    assert cond == "policy-violation"
    still_serves(raw, user, n.port)


def test_unsupported_stanza_type(raw, user):
    c = logged_in(raw, user)
    c.send("<foo/>")
    cond, _ = c.expect_stream_error()
    assert cond == "unsupported-stanza-type"
    still_serves(raw, user)


def test_unsupported_version(raw, user):
    c = raw()
    c.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='2.0'>")
    cond, _ = c.expect_stream_error()
    assert cond == "unsupported-version"
    still_serves(raw, user)


def test_connection_timeout_before_auth(node_factory, raw, user):
    n = node_factory(env={"ROOST_LIMITS_AUTH_TIMEOUT_S": "1"})
    c = opened(raw, n.port)
    cond, _ = c.expect_stream_error(timeout=5)
    assert cond == "connection-timeout"
    # A client that logs in promptly is not affected.
    still_serves(raw, user, n.port)


def test_connection_timeout_no_header(node_factory, raw):
    n = node_factory(env={"ROOST_LIMITS_AUTH_TIMEOUT_S": "1"})
    c = raw(n.port)
    # Not even a stream header: the server still closes the connection.
    c.wait_closed(timeout=5)
    assert c.closed


def test_conflict_stream_error(raw, user):
    u = user()
    a = raw()
    a.login(u[0], u[2], resource="dup")
    b = raw()
    b.login(u[0], u[2], resource="dup")
    cond, _ = a.expect_stream_error()
    assert cond == "conflict"
    b.sync()
    still_serves(raw, user)


def test_system_shutdown_on_sigterm(node_factory, raw, user):
    n = node_factory()
    bound = logged_in(raw, user, n.port)
    pre = opened(raw, n.port)
    n.proc.send_signal(signal.SIGTERM)
    cond, _ = bound.expect_stream_error()
    assert cond == "system-shutdown"
    cond, _ = pre.expect_stream_error()
    assert cond == "system-shutdown"
    rc = n.terminate()
    assert rc == 0


def test_client_close_is_answered(raw, user):
    c = logged_in(raw, user)
    c.end()
    seen = c.wait_closed()
    assert h.END in seen or c.ended
    still_serves(raw, user)


def test_many_bad_clients_do_not_hurt(raw, user):
    for i in range(5):
        c = raw()
        c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32)))
        c.wait_closed()
    still_serves(raw, user)


def test_policy_violation_depth(node_factory, raw, user):
    n = node_factory(env={"ROOST_LIMITS_MAX_DEPTH": "8"})
    c = logged_in(raw, user, n.port)
    c.send("<message to='%s'>%s%s</message>" % (c.jid, "<x xmlns='urn:example:d'>" * 20,
                                                "</x>" * 20))
    cond, _ = c.expect_stream_error()
    assert cond == "policy-violation"
    still_serves(raw, user, n.port)


def test_policy_violation_attribute_count(node_factory, raw, user):
    n = node_factory(env={"ROOST_LIMITS_MAX_ATTRS": "8"})
    c = logged_in(raw, user, n.port)
    attrs = " ".join("a%d='v'" % i for i in range(40))
    c.send("<message to='%s'><x xmlns='urn:example:a' %s/></message>" % (c.jid, attrs))
    cond, _ = c.expect_stream_error()
    assert cond == "policy-violation"
    still_serves(raw, user, n.port)
