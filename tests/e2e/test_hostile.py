# Hostile-input suite (issue 5): table-driven cases from the CVE classes of
# XMPP servers and XML parsers and from the RFC 6120/6121 error conditions.
# Every case asserts the exact outcome, then that a fresh client still logs
# in and gets a ping answered on the same node; the nodes are SIGTERMed at
# teardown and must exit 0, which under the ASan build fails on a leak.

import base64
import select
import socket
import time

import pytest

import roost_harness as h
from roost_harness import body_of, stanza_error

STREAM_NS = ("xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'")
HEADER = "<?xml version='1.0'?><stream:stream %s to='localhost' version='1.0'>" % STREAM_NS

# Limits of the shared node: small, so the limit cases stay cheap.
LIMITS = {
    "ROOST_LIMITS_MAX_STANZA_SIZE": "8192",
    "ROOST_LIMITS_MAX_STANZA_SIZE_PREAUTH": "4096",
    "ROOST_LIMITS_MAX_DEPTH": "8",
    "ROOST_LIMITS_MAX_ATTRS": "8",
    "ROOST_LIMITS_MAX_RESOURCES": "3",
}


def _stop_checked(n):
    rc = n.terminate()
    n.kill()
    assert rc == 0, "roost-node did not exit 0 on SIGTERM (leak or crash): rc=%r\n%s" \
        % (rc, n.log()[-4000:])
    n.cleanup_dir()


@pytest.fixture(scope="module")
def hnode(redis):
    """One node for the table: SIGTERMed after the module, must exit 0."""
    n = h.Node(redis, env=LIMITS).start()
    try:
        yield n
    finally:
        _stop_checked(n)


@pytest.fixture(autouse=True)
def _show_hnode_log(request):
    # conftest prints the logs of CURRENT_NODES on failure; the module node
    # was started before this test's list was cleared.
    if "hnode" in request.fixturenames:
        h.CURRENT_NODES.append(request.getfixturevalue("hnode"))
    yield


@pytest.fixture
def rawc():
    clients = []

    def connect(port):
        c = h.RawClient(port)
        clients.append(c)
        return c

    try:
        yield connect
    finally:
        for c in clients:
            c.close()


def still_serves(rawc, user, port):
    local, bare, pw = user()
    c = rawc(port)
    assert c.login(local, pw, resource="after") == bare + "/after"
    r = c.iq("get", h.DOMAIN, "<ping xmlns='%s'/>" % h.NS_PING)
    assert r.get("type") == "result"


def logged_in(rawc, user, port, resource="h"):
    local, _, pw = user()
    c = rawc(port)
    c.login(local, pw, resource=resource)
    return c


def sasl_failure(el):
    assert el.tag == "{%s}failure" % h.NS_SASL, "expected SASL <failure/>, got %r" % el
    conds = [c.name for c in el.children if c.name != "text"]
    return conds[0] if conds else None


def assert_ignored(c):
    """Nothing came back for what was sent: the next thing the client sees
    is the answer to a ping sent now."""
    c.send("<iq type='get' id='sync1'><ping xmlns='%s'/></iq>" % h.NS_PING)
    el = c.next()
    assert el.name == "iq" and el.get("id") == "sync1", "server answered: %r" % el
    assert el.get("type") == "result"


def lol_dtd():
    ents = ["<!ENTITY lol 'lol'>"]
    for i in range(1, 10):
        prev = "lol" if i == 1 else "lol%d" % (i - 1)
        ents.append("<!ENTITY lol%d '%s'>" % (i, ("&%s;" % prev) * 10))
    return "<!DOCTYPE stream:stream [%s]>" % "".join(ents)


def msg(body, extra="", to="{jid}"):
    return ("<message type='chat' to='%s'%s><body>" % (to, extra)).encode() + body + \
        b"</body></message>"


W = "x" * 5000

# (id, phase, bytes, expectation)
#   phase: "raw" = first bytes on the connection, "open" = after a stream
#          header, "auth" = after SASL + bind ({jid} = the client's full JID)
#   expectation: ("stream", condition) | ("stanza", condition) |
#                ("sasl", condition) | ("echo", body) | ("ignored",)
CASES = [
    # -- DTDs and entities (billion laughs, XXE, CVE-2013-4409 class)
    ("billion-laughs", "raw", ("<?xml version='1.0'?>" + lol_dtd() +
                               HEADER[21:].replace("to='localhost'", "to='&lol9;'")).encode(),
     ("stream", "restricted-xml")),
    ("xxe-system-entity", "raw",
     ("<?xml version='1.0'?><!DOCTYPE s [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
      + HEADER[21:]).encode(), ("stream", "restricted-xml")),
    ("parameter-entity", "raw",
     ("<?xml version='1.0'?><!DOCTYPE s [<!ENTITY % p SYSTEM 'http://127.0.0.1:9/x'>%p;]>"
      + HEADER[21:]).encode(), ("stream", "restricted-xml")),
    ("external-dtd", "raw",
     ("<?xml version='1.0'?><!DOCTYPE stream:stream SYSTEM 'http://127.0.0.1:9/x.dtd'>"
      + HEADER[21:]).encode(), ("stream", "restricted-xml")),
    ("doctype-inside-stream", "open", b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
     ("stream", "not-well-formed")),
    ("undefined-entity-ref", "auth", msg(b"&xxe;"), ("stream", "not-well-formed")),
    ("predefined-entities-ok", "auth", msg(b"&lt;&amp;&gt;&quot;&apos;&#x263A;"),
     ("echo", "<&>\"'\u263a")),
    # -- comments and processing instructions (RFC 6120 §11.1)
    ("comment-preauth", "open", b"<!-- hi -->", ("stream", "restricted-xml")),
    ("comment-in-stanza", "auth", msg(b"a<!-- hi -->b"), ("stream", "restricted-xml")),
    ("pi-preauth", "open", b"<?evil cmd?>", ("stream", "restricted-xml")),
    ("pi-in-stanza", "auth", msg(b"a<?evil cmd?>b"), ("stream", "restricted-xml")),
    ("cdata-is-fine", "auth", msg(b"<![CDATA[<b>]]>"), ("echo", "<b>")),
    # -- encodings and invalid UTF-8 (RFC 6120 §11.6)
    ("utf8-truncated", "auth", msg(b"\xc3\x28"), ("stream", "not-well-formed")),
    ("utf8-overlong-slash", "auth", msg(b"\xc0\xaf"), ("stream", "not-well-formed")),
    ("utf8-surrogate", "auth", msg(b"\xed\xa0\x80"), ("stream", "not-well-formed")),
    ("utf8-five-byte", "auth", msg(b"\xf8\x88\x80\x80\x80"), ("stream", "not-well-formed")),
    ("utf8-above-10ffff", "auth", msg(b"\xf4\x90\x80\x80"), ("stream", "not-well-formed")),
    ("utf8-noncharacter-fffe", "auth", msg(b"\xef\xbf\xbe"), ("stream", "not-well-formed")),
    ("charref-nul", "auth", msg(b"&#0;"), ("stream", "not-well-formed")),
    ("charref-surrogate", "auth", msg(b"&#xD800;"), ("stream", "not-well-formed")),
    ("raw-control-char", "auth", msg(b"\x01"), ("stream", "not-well-formed")),
    ("utf16-bom", "raw", b"\xff\xfe<\x00?\x00x\x00", ("stream", "unsupported-encoding")),
    ("latin1-declared", "raw", ("<?xml version='1.0' encoding='ISO-8859-1'?>"
                                + HEADER[21:]).encode(), ("stream", "unsupported-encoding")),
    ("invalid-utf8-in-header", "raw", HEADER.replace("localhost", "local\xc3host")
     .encode().replace(b"\xc3\x83", b"\xc3"), ("stream", "not-well-formed")),
    # -- namespace tricks (expat namespace separator, prefixes)
    ("ns-separator-char", "auth",
     b"<message to='{jid}' xmlns:a='urn:x\x01y'><body>z</body></message>",
     ("stream", "not-well-formed")),
    ("ns-separator-charref", "auth",
     b"<message to='{jid}' xmlns:a='urn:x&#1;y'><body>z</body></message>",
     ("stream", "not-well-formed")),
    ("ns-space-in-stream-uri", "raw",
     HEADER.replace("streams'", "streams stream'").encode(), ("stream", "invalid-namespace")),
    ("ns-unbound-prefix", "auth", b"<evil:message to='{jid}'/>", ("stream", "not-well-formed")),
    ("ns-prefixed-stanza", "auth",
     b"<c:message xmlns:c='jabber:client' type='chat' to='{jid}'><c:body>pfx</c:body>"
     b"</c:message>", ("echo", "pfx")),
    ("ns-attr-in-foreign-ns-not-to", "auth",
     b"<message type='chat' to='{jid}' xmlns:a='urn:x' a:to='nobody@localhost'>"
     b"<body>nsattr</body></message>", ("echo", "nsattr")),
    ("ns-duplicate-attr", "auth", b"<message to='{jid}' to='x@localhost'/>",
     ("stream", "not-well-formed")),
    ("ns-duplicate-expanded-attr", "auth",
     b"<message to='{jid}' xmlns:a='urn:x' xmlns:b='urn:x' a:q='1' b:q='2'/>",
     ("stream", "not-well-formed")),
    ("ns-server-namespace-stanza", "auth",
     b"<message xmlns='jabber:server' to='{jid}' from='admin@localhost'><body>s</body>"
     b"</message>", ("stream", "unsupported-stanza-type")),
    ("ns-no-namespace-toplevel", "auth",
     b"<message xmlns='' to='{jid}'/>", ("stream", "invalid-namespace")),
    # -- sizes and nesting
    ("huge-attribute-preauth", "open",
     ("<auth xmlns='%s' mechanism='%s'/>" % (h.NS_SASL, "A" * 6000)).encode(),
     ("stream", "policy-violation")),
    ("deep-nesting-preauth", "open", b"<a xmlns='urn:x'>" + b"<a>" * 100,
     ("stream", "policy-violation")),
    ("too-many-attributes-preauth", "open",
     b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
     + b" ".join(b"a%d='v'" % i for i in range(20)) + b"/>", ("stream", "policy-violation")),
    ("huge-attribute-unterminated", "open", b"<auth a='" + b"A" * 6000,
     ("stream", "policy-violation")),
    ("huge-attribute-after-auth", "auth", msg(b"x", extra=" id='%s'" % ("i" * 10000)),
     ("stream", "policy-violation")),
    ("huge-header", "raw", (HEADER[:-1] + " xml:lang='%s'>" % ("e" * 20000)).encode(),
     ("stream", "policy-violation")),
    ("huge-element-name-preauth", "open", b"<" + b"n" * 6000 + b"/>",
     ("stream", "policy-violation")),
    ("huge-prefix-after-auth", "auth", b"<" + b"p" * 9000 + b":message xmlns:" + b"p" * 9000
     + b"='jabber:client'/>", ("stream", "policy-violation")),
    ("many-ns-declarations", "auth",
     b"<message type='chat' to='{jid}' " + b" ".join(b"xmlns:p%d='urn:n%d'" % (i, i)
                                                    for i in range(250))
     + b"><body>nsd</body></message>", ("echo", "nsd")),
    ("deep-nesting", "auth", b"<message to='{jid}'>" + b"<x xmlns='urn:d'>" * 50
     + b"</x>" * 50 + b"</message>", ("stream", "policy-violation")),
    ("deep-nesting-unclosed", "auth", b"<message to='{jid}'>" + b"<x>" * 5000,
     ("stream", "policy-violation")),
    ("too-many-attributes", "auth",
     b"<message to='{jid}' " + b" ".join(b"a%d='v'" % i for i in range(20)) + b"/>",
     ("stream", "policy-violation")),
    ("stanza-over-limit", "auth", msg(b"x" * 9000), ("stream", "policy-violation")),
    ("stanza-at-limit-ok", "auth", msg(W.encode()), ("echo", W)),
    ("text-flood-between-stanzas", "auth", b"garbage" * 2000, ("stream", "bad-format")),
    ("whitespace-keepalives-ok", "auth", b" \n" * 4000, ("ignored",)),
    # -- stream-level errors (RFC 6120 §4.9.3)
    ("garbage-before-header", "raw", b"GET / HTTP/1.0\r\n\r\n", ("stream", "not-well-formed")),
    ("close-tag-first", "raw", b"</stream:stream>", ("stream", "not-well-formed")),
    # PROXY headers where c2s.proxy_protocol is off (a spoofed client
    # address must not be believed): just bytes that are not XML.
    ("proxy-v1-header-option-off", "raw",
     b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 5222\r\n" + HEADER.encode(),
     ("stream", "not-well-formed")),
    ("proxy-v2-header-option-off", "raw",
     b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + bytes(12) + HEADER.encode(),
     ("stream", "not-well-formed")),
    ("text-before-header", "raw", ("hello" + HEADER[21:]).encode(),
     ("stream", "not-well-formed")),
    ("tls-clienthello-on-plain", "raw", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
     + bytes(range(32)), ("stream", "not-well-formed")),
    ("wrong-stream-namespace", "raw", HEADER.replace("etherx.jabber.org/streams",
                                                     "evil.example/streams").encode(),
     ("stream", "invalid-namespace")),
    ("wrong-content-namespace", "raw", HEADER.replace("jabber:client", "jabber:server")
     .encode(), ("stream", "invalid-namespace")),
    ("root-not-stream", "raw", b"<stream:features xmlns:stream="
     b"'http://etherx.jabber.org/streams' xmlns='jabber:client'>", ("stream", "bad-format")),
    ("unknown-host", "raw", HEADER.replace("localhost", "evil.example").encode(),
     ("stream", "host-unknown")),
    ("missing-to", "raw", HEADER.replace(" to='localhost'", "").encode(),
     ("stream", "host-unknown")),
    ("missing-version", "raw", HEADER.replace(" version='1.0'>", ">").encode(),
     ("stream", "unsupported-version")),
    ("unsupported-version", "raw", HEADER.replace("'1.0'>", "'2.0'>").encode(),
     ("stream", "unsupported-version")),
    ("second-stream-empty-preauth", "open", HEADER[21:-1].encode() + b"/>",
     ("stream", "unsupported-stanza-type")),
    ("second-stream-empty-after-auth", "auth", HEADER[21:-1].encode() + b"/>",
     ("stream", "unsupported-stanza-type")),
    ("stream-features-from-client", "auth",
     b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
     ("stream", "unsupported-stanza-type")),
    ("stanza-in-streams-namespace", "auth",
     b"<message xmlns='http://etherx.jabber.org/streams' to='{jid}'/>",
     ("stream", "unsupported-stanza-type")),
    ("lt-in-attribute-value", "auth", b"<message to='{jid}' id='a<b'/>",
     ("stream", "not-well-formed")),
    ("unknown-toplevel-after-auth", "auth", b"<foo xmlns='urn:x'/>",
     ("stream", "unsupported-stanza-type")),
    ("text-at-stream-level", "open", b"hello", ("stream", "bad-format")),
    ("mismatched-tags", "auth", b"<message><body>x</message>", ("stream", "not-well-formed")),
    # -- before authentication (RFC 6120 §6.4, §7.1)
    ("message-before-auth", "open", b"<message to='x@localhost'><body>x</body></message>",
     ("stream", "not-authorized")),
    ("iq-before-auth", "open", b"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
     ("stream", "not-authorized")),
    ("presence-before-auth", "open", b"<presence/>", ("stream", "not-authorized")),
    ("unsupported-mechanism", "open",
     ("<auth xmlns='%s' mechanism='X-EVIL'>=</auth>" % h.NS_SASL).encode(),
     ("sasl", "invalid-mechanism")),
    ("auth-without-mechanism", "open", ("<auth xmlns='%s'>=</auth>" % h.NS_SASL).encode(),
     ("sasl", "invalid-mechanism")),
    ("plain-bad-base64", "open",
     ("<auth xmlns='%s' mechanism='PLAIN'>@@@</auth>" % h.NS_SASL).encode(),
     ("sasl", "incorrect-encoding")),
    ("plain-no-nul", "open",
     ("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
      % (h.NS_SASL, h.b64(b"justonestring"))).encode(), ("sasl", "malformed-request")),
    ("plain-unknown-user", "open",
     ("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
      % (h.NS_SASL, h.b64(b"\0nobody-here\0pw"))).encode(), ("sasl", "not-authorized")),
    ("sasl-response-without-auth", "open",
     ("<response xmlns='%s'>%s</response>" % (h.NS_SASL, h.b64(b"c=biws,r=x,p=x"))).encode(),
     ("sasl", "malformed-request")),
    ("scram-garbage-first", "open",
     ("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>"
      % (h.NS_SASL, h.b64(b"garbage"))).encode(), ("sasl", "malformed-request")),
    ("scram-username-raw-comma", "open",
     ("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>"
      % (h.NS_SASL, h.b64(b"n,,n=a,b,r=xyz"))).encode(), ("sasl", "malformed-request")),
    ("scram-huge-nonce", "open",
     ("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>"
      % (h.NS_SASL, h.b64(b"n,,n=a,r=" + b"N" * 2500))).encode(),
     ("sasl", "malformed-request")),
    ("scram-channel-binding-without-tls", "open",
     ("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>"
      % (h.NS_SASL, h.b64(b"p=tls-unique,,n=a,r=abc"))).encode(), ("sasl", "not-authorized")),
    ("plain-extra-nul", "open",
     ("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
      % (h.NS_SASL, h.b64(b"\0a\0pw\0extra"))).encode(), ("sasl", "malformed-request")),
    ("plain-overlong-user", "open",
     ("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
      % (h.NS_SASL, h.b64(b"\0" + b"A" * 2000 + b"\0pw"))).encode(), ("sasl", "not-authorized")),
    ("client-sends-sasl-success", "open", ("<success xmlns='%s'/>" % h.NS_SASL).encode(),
     ("sasl", "malformed-request")),
    # -- after binding: stanza-level errors (RFC 6120 §8)
    ("iq-without-id", "auth", b"<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>",
     ("stanza", "bad-request")),
    ("iq-without-type", "auth", b"<iq id='t1'><ping xmlns='urn:xmpp:ping'/></iq>",
     ("stanza", "bad-request")),
    ("iq-get-without-child", "auth", b"<iq type='get' id='t2'/>", ("stanza", "bad-request")),
    ("to-jid-malformed", "auth", b"<message to='a@b@c'><body>x</body></message>",
     ("stanza", "jid-malformed")),
    ("to-overlong-resource", "auth",
     b"<message to='x@localhost/" + b"r" * 1100 + b"'><body>x</body></message>",
     ("stanza", "jid-malformed")),
    ("to-overlong-localpart", "auth",
     b"<message to='" + b"l" * 1100 + b"@localhost'><body>x</body></message>",
     ("stanza", "jid-malformed")),
    ("iq-result-to-server-ignored", "auth", b"<iq type='result' id='x1' to='localhost'/>",
     ("ignored",)),
    ("iq-error-to-server-ignored", "auth",
     b"<iq type='error' id='x2' to='localhost'><error type='cancel'>"
     b"<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
     ("ignored",)),
    ("error-message-to-nobody-ignored", "auth",
     b"<message type='error' to='ghost-nobody@localhost/r'><error type='cancel'>"
     b"<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
     ("ignored",)),
    ("error-presence-to-nobody-ignored", "auth",
     b"<presence type='error' to='ghost-nobody@localhost/r'/>", ("ignored",)),
    ("error-iq-to-nobody-ignored", "auth",
     b"<iq type='error' id='x3' to='ghost-nobody@localhost/r'><error type='cancel'>"
     b"<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
     ("ignored",)),
    ("closing-then-garbage", "open", b"</stream:stream>\x00\xff<<<", ("closed",)),
]


@pytest.mark.parametrize("case", CASES, ids=[row[0] for row in CASES])
def test_hostile_table(hnode, rawc, user, case):
    _name, phase, data, expect = case
    c = rawc(hnode.port)
    if phase == "open":
        c.open_stream()
    elif phase == "auth":
        local, _, pw = user()
        c.login(local, pw, resource="h")
        data = data.replace(b"{jid}", c.jid.encode())
    c.send(data)
    kind = expect[0]
    if kind == "stream":
        cond, _ = c.expect_stream_error()
        assert cond == expect[1]
    elif kind == "sasl":
        assert sasl_failure(c.next()) == expect[1]
        # The SASL exchange may be retried on the same stream.
        local, _, pw = user()
        assert c.auth_plain(local, pw).name == "success"
    elif kind == "stanza":
        r = c.next()
        assert r.get("type") == "error", r
        assert stanza_error(r)[1] == expect[1], r
    elif kind == "echo":
        m = c.next()
        assert m.name == "message", m
        assert body_of(m) == expect[1]
        assert m.get("from") == c.jid
        assert_ignored(c)
    elif kind == "ignored":
        assert_ignored(c)
    elif kind == "closed":
        c.wait_closed()
        assert c.ended
    still_serves(rawc, user, hnode.port)


# A second stream header inside the stream is an unsupported first-level
# child (RFC 6120 §4.9.3.24); it must be refused when it opens, not when
# (if ever) it closes.
@pytest.mark.parametrize("phase", ["open", "auth"])
def test_second_stream_open(hnode, rawc, user, phase):
    c = rawc(hnode.port)
    if phase == "open":
        c.open_stream()
    else:
        local, _, pw = user()
        c.login(local, pw, resource="h")
    c.send(HEADER[21:])
    try:
        cond, _ = c.expect_stream_error(timeout=2)
    finally:
        still_serves(rawc, user, hnode.port)
    assert cond == "unsupported-stanza-type"


def _read_all(c, timeout=2.0):
    data = b""
    c.sock.settimeout(timeout)
    try:
        while True:
            d = c.sock.recv(65536)
            if not d:
                break
            data += d
    except (socket.timeout, ConnectionResetError):
        pass
    return data


@pytest.mark.parametrize("payload,cond", [
    (HEADER.replace("localhost", h.DOMAIN2), b"host-unknown"),
    ("<message to='x@localhost'><body>no restart</body></message>", b"invalid-namespace"),
    ("<auth xmlns='%s' mechanism='PLAIN'>=</auth>" % h.NS_SASL, b"invalid-namespace"),
], ids=["other-domain", "stanza-instead-of-restart", "auth-instead-of-restart"])
def test_bad_restart_after_sasl(hnode, rawc, user, payload, cond):
    """After <success/> the next bytes open a new stream (RFC 6120 §6.4.6):
    a bad one is refused with a stream error, and since the error answers
    the new stream, the server must open its own stream first (§4.9.1.1)."""
    local, _, pw = user()
    c = rawc(hnode.port)
    c.open_stream()
    assert c.auth_plain(local, pw).name == "success"
    c.send(payload)
    data = _read_all(c)
    try:
        assert b"<stream:error><" + cond in data, data
        assert b"<stream:stream" in data[:data.index(b"<stream:error>")], data
    finally:
        still_serves(rawc, user, hnode.port)


# ---------------------------------------------------------------- SASL

def test_plain_mismatched_authzid(hnode, rawc, user):
    local, _, pw = user()
    other = user()[1]
    c = rawc(hnode.port)
    c.open_stream()
    assert sasl_failure(c.auth_plain(local, pw, authzid=other)) == "invalid-authzid"
    still_serves(rawc, user, hnode.port)


def test_scram_mismatched_authzid(hnode, rawc, user):
    local, _, pw = user()
    other = user()[1]
    c = rawc(hnode.port)
    c.open_stream()
    assert sasl_failure(c.auth_scram(local, pw, authzid=other)) == "invalid-authzid"
    still_serves(rawc, user, hnode.port)


def test_abort_and_restart_mid_scram(hnode, rawc, user):
    local, _, pw = user()
    c = rawc(hnode.port)
    c.open_stream()
    _scram_first(c, local)
    c.send("<abort xmlns='%s'/>" % h.NS_SASL)
    assert sasl_failure(c.next()) == "aborted"
    # A new <auth/> while a SCRAM exchange waits for its response.
    _scram_first(c, local)
    c.auth_send("PLAIN", ("\0%s\0%s" % (local, pw)).encode())
    assert sasl_failure(c.next()) == "malformed-request"
    assert c.auth_plain(local, pw).name == "success"
    still_serves(rawc, user, hnode.port)


def test_failed_auth_attempts_end_the_stream(hnode, rawc, user):
    """RFC 6120 §6.4.5: a configurable number of retries, then the stream
    ends; roost allows 5."""
    local, _, pw = user()
    c = rawc(hnode.port)
    c.open_stream()
    for _ in range(4):
        assert sasl_failure(c.auth_plain(local, pw + "x")) == "not-authorized"
    assert sasl_failure(c.auth_plain(local, pw + "x")) == "not-authorized"
    cond, _ = c.expect_stream_error()
    assert cond == "policy-violation"
    still_serves(rawc, user, hnode.port)


def test_resources_per_account_limit(hnode, rawc, user):
    """RFC 6120 §7.6.2.1: over the resource limit, bind fails with
    <resource-constraint/>; the bound sessions are unaffected."""
    local, _, pw = user()
    bound = []
    for i in range(3):
        c = rawc(hnode.port)
        c.login(local, pw, resource="r%d" % i)
        bound.append(c)
    c = rawc(hnode.port)
    c.open_stream()
    assert c.auth_plain(local, pw).name == "success"
    c.restart()
    r = c.bind("r9")
    assert r.get("type") == "error"
    assert stanza_error(r) == ("wait", "resource-constraint")
    for b in bound:
        b.sync()
    still_serves(rawc, user, hnode.port)


def _scram_first(c, local):
    sc = h.ScramClient(local, "unused", "sha256", "")
    c.auth_send("SCRAM-SHA-256", sc.first())
    ch = c.next()
    assert ch.name == "challenge", ch
    sf = base64.b64decode(ch.text.strip()).decode()
    return dict(kv.split("=", 1) for kv in sf.split(","))


def test_scram_bad_nonce(hnode, rawc, user):
    local, _, pw = user()
    c = rawc(hnode.port)
    c.open_stream()
    _scram_first(c, local)
    final = "c=biws,r=%s,p=%s" % ("forged-nonce", h.b64(b"\0" * 32))
    c.send("<response xmlns='%s'>%s</response>" % (h.NS_SASL, h.b64(final.encode())))
    assert sasl_failure(c.next()) in ("not-authorized", "malformed-request")
    still_serves(rawc, user, hnode.port)


def test_scram_bad_proof(hnode, rawc, user):
    local, _, pw = user()
    c = rawc(hnode.port)
    c.open_stream()
    sf = _scram_first(c, local)
    final = "c=biws,r=%s,p=%s" % (sf["r"], h.b64(b"\x55" * 32))
    c.send("<response xmlns='%s'>%s</response>" % (h.NS_SASL, h.b64(final.encode())))
    assert sasl_failure(c.next()) == "not-authorized"
    still_serves(rawc, user, hnode.port)


def test_scram_bad_channel_binding_header(hnode, rawc, user):
    local, _, pw = user()
    c = rawc(hnode.port)
    c.open_stream()
    sf = _scram_first(c, local)
    # c= must echo the gs2 header "n,,"; a different one is a downgrade.
    final = "c=%s,r=%s,p=%s" % (h.b64(b"y,,"), sf["r"], h.b64(b"\x55" * 32))
    c.send("<response xmlns='%s'>%s</response>" % (h.NS_SASL, h.b64(final.encode())))
    assert sasl_failure(c.next()) in ("not-authorized", "malformed-request")
    still_serves(rawc, user, hnode.port)


# ---------------------------------------------------------------- binding

def test_bind_overlong_resource(hnode, rawc, user):
    local, _, pw = user()
    c = rawc(hnode.port)
    c.open_stream()
    assert c.auth_plain(local, pw).name == "success"
    c.restart()
    r = c.bind("r" * 1100)
    assert r.get("type") == "error"
    assert stanza_error(r)[1] == "bad-request"
    # The stream stays usable: a proper resource binds.
    assert c.bind("ok").get("type") == "result"
    still_serves(rawc, user, hnode.port)


# ---------------------------------------------------------------- from stamping

def test_spoofed_from_is_stamped(hnode, rawc, user):
    a = logged_in(rawc, user, hnode.port, "a")
    b = logged_in(rawc, user, hnode.port, "b")
    for spoof in ("admin@localhost/x", "localhost", b.jid, ""):
        a.send("<message type='chat' to='%s' from='%s'><body>s</body></message>"
               % (b.jid, h.xesc(spoof)))
        m = b.next_message()
        assert m.get("from") == a.jid, (spoof, m.get("from"))
    # A roster push forged by another user (CVE-2015-8688 class) reaches
    # the victim only with the sender's real full JID as from.
    a.send("<iq type='set' id='push1' to='%s' from='%s'><query xmlns='jabber:iq:roster'>"
           "<item jid='evil@localhost'/></query></iq>" % (b.jid, b.jid.split("/")[0]))
    got = b.next(name="iq")
    assert got.get("from") == a.jid
    still_serves(rawc, user, hnode.port)


# ---------------------------------------------------------------- server-only elements

def test_forged_carbon_wrapper_carries_real_sender(hnode, rawc, user):
    """XEP-0280 §11: a carbon is trusted only if from is the user's bare JID.
    A client-forged <sent/> wrapper must reach the victim with the forger's
    full JID as from, so the victim's client rejects it."""
    a = logged_in(rawc, user, hnode.port, "a")
    b = logged_in(rawc, user, hnode.port, "b")
    victim_bare = b.jid.split("/")[0]
    a.send("<message type='chat' to='%s' from='%s'><sent xmlns='urn:xmpp:carbons:2'>"
           "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' "
           "type='chat' from='%s' to='boss@localhost'><body>forged</body></message>"
           "</forwarded></sent></message>" % (b.jid, victim_bare, b.jid))
    m = b.next_message()
    assert m.get("from") == a.jid
    assert m.get("from") != victim_bare
    # DESIGN §4: the server strips the client-sent wrapper altogether.
    assert m.find("{urn:xmpp:carbons:2}sent") is None
    still_serves(rawc, user, hnode.port)


def test_client_delay_claiming_server_is_stripped(hnode, rawc, user):
    a = logged_in(rawc, user, hnode.port, "a")
    b = logged_in(rawc, user, hnode.port, "b")
    a.send("<message type='chat' to='%s'><body>d</body><delay xmlns='urn:xmpp:delay' "
           "from='localhost' stamp='2002-09-10T23:08:25Z'>Offline Storage</delay>"
           "</message>" % b.jid)
    m = b.next_message()
    d = m.find("{urn:xmpp:delay}delay")
    assert d is None or d.get("from") != h.DOMAIN


# ---------------------------------------------------------------- error loops

def test_error_loop_between_clients(hnode, rawc, user):
    """RFC 6120 §8.3.1: an error stanza is never answered with an error.
    Two clients exchange error messages and iqs; then one goes away and
    the other sends errors to its vanished full JID: nothing bounces."""
    a = logged_in(rawc, user, hnode.port, "a")
    b = logged_in(rawc, user, hnode.port, "b")
    err = ("<error type='cancel'><service-unavailable xmlns='%s'/></error>" % h.NS_STANZAS)
    for _ in range(3):
        a.send("<message type='error' to='%s'>%s</message>" % (b.jid, err))
        a.send("<iq type='error' id='e1' to='%s'>%s</iq>" % (b.jid, err))
        m = b.next(name="message")
        assert m.get("type") == "error" and m.get("from") == a.jid
        i = b.next(name="iq")
        assert i.get("type") == "error" and i.get("from") == a.jid
        # b "answers" the error with an error of its own.
        b.send("<message type='error' to='%s'>%s</message>" % (a.jid, err))
        b.send("<iq type='error' id='e1' to='%s'>%s</iq>" % (a.jid, err))
        assert a.next(name="message").get("type") == "error"
        assert a.next(name="iq").get("type") == "error"
    assert_ignored(a)
    assert_ignored(b)
    gone = b.jid
    b.end()
    b.wait_closed()
    a.send("<message type='error' to='%s'>%s</message>" % (gone, err))
    a.send("<iq type='error' id='e2' to='%s'>%s</iq>" % (gone, err))
    a.send("<presence type='error' to='%s'>%s</presence>" % (gone, err))
    with pytest.raises(TimeoutError):
        a.next(timeout=1.0)
    assert_ignored(a)
    still_serves(rawc, user, hnode.port)


# ---------------------------------------------------------------- tiny fragments

def test_tiny_fragment_flood(hnode, rawc, user):
    """A stanza dribbled one byte per write, many times over, is parsed
    like any other; an over-limit one dribbled the same way is refused."""
    c = logged_in(rawc, user, hnode.port)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = msg(b"frag", to=c.jid)
    for _ in range(5):
        for i in range(len(data)):
            c.send(data[i:i + 1])
    for _ in range(5):
        assert body_of(c.next_message()) == "frag"
    big = msg(b"y" * 9000, to=c.jid)
    try:
        for i in range(0, len(big), 3):
            c.send(big[i:i + 3])
    except OSError:
        pass  # the server closed it while we were still sending
    cond, _ = c.expect_stream_error()
    assert cond == "policy-violation"
    still_serves(rawc, user, hnode.port)


# ---------------------------------------------------------------- connection flood

def test_connection_flood(hnode, rawc, user):
    """500 connections opened and dropped (half of them with a partial
    header, 100 held open at once); the node then serves a normal login."""
    held = []
    for i in range(500):
        s = socket.create_connection(("127.0.0.1", hnode.port), timeout=h.WAIT)
        if i % 2:
            s.send(HEADER[:30].encode())
        if i % 5 == 0:
            held.append(s)
            if len(held) >= 100:
                for x in held:
                    x.close()
                held = []
        else:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            s.close()
    for x in held:
        x.close()
    still_serves(rawc, user, hnode.port)
    assert hnode.alive()


# ---------------------------------------------------------------- slowloris

def dribble(c, data):
    """Sends data one byte per 0.5 s until the server answers or closes.
    True when it did so before the bytes ran out (the outcome under test);
    the suite-wide bound h.WAIT only keeps a broken server from hanging
    the run."""
    t0 = time.monotonic()
    for b in data:
        try:
            c.send(bytes([b]))
        except OSError:
            return True
        r, _, _ = select.select([c.sock], [], [], 0.5)
        if r:
            return True
        if time.monotonic() - t0 > h.WAIT:
            return False
    return False


def test_slowloris_header_dribble(node_factory, rawc, user):
    n = node_factory(env={"ROOST_LIMITS_AUTH_TIMEOUT_S": "2"})
    c = rawc(n.port)
    assert dribble(c, HEADER.encode()), "the server let a slowloris header run to its end"
    cond, _ = c.expect_stream_error(timeout=5)
    assert cond == "connection-timeout"
    still_serves(rawc, user, n.port)


def test_slowloris_stanza_dribble(node_factory, rawc, user):
    n = node_factory(env={"ROOST_LIMITS_AUTH_TIMEOUT_S": "2"})
    c = rawc(n.port)
    c.open_stream()
    data = ("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (h.NS_SASL, "A" * 200)).encode()
    assert dribble(c, data), "the server let a slowloris stanza run to its end"
    cond, _ = c.expect_stream_error(timeout=5)
    assert cond == "connection-timeout"
    still_serves(rawc, user, n.port)


# ---------------------------------------------------------------- never-reading client

def test_client_that_never_reads(node_factory, rawc, user):
    n = node_factory(env={"ROOST_LIMITS_WRITE_MAX": "65536",
                          "ROOST_LIMITS_WRITE_HIGH_WATERMARK": "16384",
                          "ROOST_LIMITS_WRITE_LOW_WATERMARK": "4096"})
    lazy = logged_in(rawc, user, n.port, "lazy")
    lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # Its own pings pile up answers it never reads; the server stops
    # reading it (backpressure) rather than buffering.
    lazy.sock.settimeout(0.05)
    ping = ("<iq type='get' id='p'><ping xmlns='%s'/></iq>" % h.NS_PING).encode() * 100
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            lazy.sock.sendall(ping)
        except (socket.timeout, OSError):
            break
    # Others keep sending to it: its queue passes write_max and it is cut.
    sender = logged_in(rawc, user, n.port, "sender")
    body = "z" * 4000
    for _ in range(1500):
        sender.send("<message type='headline' to='%s'><body>%s</body></message>"
                    % (lazy.jid, body))
    sender.sync()
    lazy.sock.settimeout(h.WAIT)
    lazy.wait_closed(timeout=h.WAIT)
    assert lazy.closed
    sender.sync()
    still_serves(rawc, user, n.port)


# ---------------------------------------------------------------- addressing

@pytest.mark.parametrize("header", [
    HEADER.replace("to='localhost'", "to='LOCALHOST'"),
    HEADER.replace("to='localhost'", "to='localhost.'"),
    HEADER.replace("stream:", "s:").replace("xmlns:stream", "xmlns:s"),
    "\ufeff" + HEADER,
    HEADER.replace("version='1.0'?>", "version='1.0' encoding='utf-8'?>"),
], ids=["uppercase-domain", "trailing-dot-domain", "other-stream-prefix", "utf8-bom",
        "utf8-declared-lowercase"])
def test_equivalent_stream_headers_accepted(hnode, rawc, user, header):
    """RFC 7622 §3.2: domains compare case-insensitively and without a
    trailing dot; the stream prefix is the client's choice (XML namespaces)."""
    c = rawc(hnode.port)
    c.send(header)
    c.read_header_and_features()
    assert c.header.get("from") == h.DOMAIN
    assert "PLAIN" in c.mechanisms()
    still_serves(rawc, user, hnode.port)


def test_jid_case_folding_in_to(hnode, rawc, user):
    """RFC 7622 §3.3: the localpart is case-folded, so a message to the
    upper-cased full JID reaches the same session."""
    a = logged_in(rawc, user, hnode.port, "a")
    b = logged_in(rawc, user, hnode.port, "b")
    local, dom = b.jid.split("/")[0].split("@")
    a.message("%s@%s/b" % (local.upper(), dom.upper()), "folded")
    m = b.next_message()
    assert body_of(m) == "folded" and m.get("from") == a.jid
    still_serves(rawc, user, hnode.port)


@pytest.mark.parametrize("payload", [
    "<query xmlns='jabber:iq:roster'><item jid='evil@localhost' name='E'/></query>",
    "<block xmlns='urn:xmpp:blocking'><item jid='evil@localhost'/></block>",
], ids=["roster-set", "block"])
def test_other_users_state_not_writable(hnode, rawc, user, payload):
    """RFC 6121 §2.1.5 / XEP-0191: an iq to another user's bare JID is
    handled by the server for that user and must not change their roster
    or blocklist."""
    a = logged_in(rawc, user, hnode.port, "a")
    b = logged_in(rawc, user, hnode.port, "b")
    victim = b.jid.split("/")[0]
    r = a.iq("set", victim, payload)
    assert r.get("type") == "error"
    assert stanza_error(r)[1] == "service-unavailable"
    q = b.iq("get", None, "<query xmlns='jabber:iq:roster'/>")
    assert q.get("type") == "result"
    assert not q.find("{jabber:iq:roster}query").children
    bl = b.iq("get", None, "<blocklist xmlns='urn:xmpp:blocking'/>")
    assert bl.get("type") == "result"
    assert not bl.find("{urn:xmpp:blocking}blocklist").children
    # Nor is another user's roster readable.
    r = a.iq("get", victim, "<query xmlns='jabber:iq:roster'/>")
    assert r.get("type") == "error"
    still_serves(rawc, user, hnode.port)


# ---------------------------------------------------------------- presence abuse

def test_probe_from_stranger_reveals_nothing(hnode, rawc, user):
    """RFC 6121 §4.3.2: a probe from an entity without a subscription must
    not reveal the contact's presence."""
    a = logged_in(rawc, user, hnode.port, "a")
    b = logged_in(rawc, user, hnode.port, "b")
    b.presence(0, extra="<status>secret</status>")
    b.sync()
    a.send("<presence type='probe' to='%s'/>" % b.jid.split("/")[0])
    a.send("<presence type='probe' to='%s'/>" % b.jid)
    deadline = time.monotonic() + 1.0
    while True:
        try:
            p = a.next(name="presence", timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            break
        assert p.get("type") in ("unsubscribed", "error"), "presence leaked: %r" % p
    assert_ignored(a)
    still_serves(rawc, user, hnode.port)


def test_unsolicited_subscribed_changes_nothing_for_target(hnode, rawc, user):
    """RFC 6121 §3.1.5/§3.4: a 'subscribed' nobody asked for is not
    delivered and does not give the target a subscription."""
    a = logged_in(rawc, user, hnode.port, "a")
    b = logged_in(rawc, user, hnode.port, "b")
    b.presence(0)
    b.sync()
    a.send("<presence type='subscribed' to='%s'/>" % b.jid.split("/")[0])
    a.sync()
    assert_ignored(b)
    q = b.iq("get", None, "<query xmlns='jabber:iq:roster'/>")
    assert not q.find("{jabber:iq:roster}query").children
    still_serves(rawc, user, hnode.port)
