# PROXY protocol v1/v2 on the c2s listeners (c2s.proxy_protocol): raw
# sockets play the load balancer. The node must log and limit the proxied
# address (not 127.0.0.1), drop connections without a valid header in time,
# read the header before a TLS ClientHello on the direct TLS port, and treat
# a header as garbage when the option is off. It survives all of it.

import socket
import ssl
import struct

import pytest

import roost_harness as h

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, sport=40000, dst=None, dport=5222):
    fam = "TCP6" if ":" in src else "TCP4"
    dst = dst or ("2001:db8::1" if ":" in src else "192.0.2.1")
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def v2(src, sport=40000, dst=None, dport=5222, local=False, tlvs=b""):
    if local:
        return SIG + bytes([0x20, 0x00]) + struct.pack(">H", len(tlvs)) + tlvs
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    dst = dst or ("2001:db8::1" if ":" in src else "192.0.2.1")
    body = socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) + struct.pack(">HH", sport, dport)
    body += tlvs
    return SIG + bytes([0x21, 0x21 if fam == socket.AF_INET6 else 0x11]) + \
        struct.pack(">H", len(body)) + body


def limit_hits(node, limit):
    return [l for l in node.log().splitlines() if "limit hit limit=%s" % limit in l]


class Proxied(h.RawClient):
    """A raw client whose connection starts with a PROXY header."""

    def __init__(self, port, header, timeout=h.WAIT):
        super().__init__(port, timeout)
        self.send(header)


def proxied_login(port, user, header, resource="p"):
    local, bare, pw = user()
    c = Proxied(port, header)
    assert c.login(local, pw, resource=resource) == bare + "/" + resource
    c.sync()
    return c


@pytest.fixture
def pnode(node_factory):
    """A node expecting PROXY headers, 2 connections per address."""
    def start(env=None):
        e = {"ROOST_C2S_PROXY_PROTOCOL": "true", "ROOST_LIMITS_MAX_CONNS_PER_IP": "2"}
        e.update(env or {})
        return node_factory(env=e)
    return start


@pytest.fixture
def held():
    cs = []
    yield cs
    for c in cs:
        c.close()


def test_v1_and_v2_log_the_proxied_address(pnode, user, held):
    n = pnode()
    held.append(proxied_login(n.port, user, v1("203.0.113.7", 41001)))
    assert "proxy header v1 peer=203.0.113.7:41001 via=127.0.0.1:" in n.log()
    held.append(proxied_login(n.port, user, v2("198.51.100.9", 41002)))
    assert "proxy header v2 peer=198.51.100.9:41002 via=127.0.0.1:" in n.log()
    held.append(proxied_login(n.port, user, v2("2001:db8::7", 41003)))
    assert "proxy header v2 peer=[2001:db8::7]:41003 via=127.0.0.1:" in n.log()
    # TLVs after the addresses are skipped.
    held.append(proxied_login(n.port, user, v2("198.51.100.10", 41004,
                                               tlvs=b"\x01\x00\x02h2\x04\x00\x01\x00")))
    # Failed logins are logged with the client's address too.
    local, _, pw = user()
    c = Proxied(n.port, v1("203.0.113.99", 41005))
    held.append(c)
    c.open_stream()
    assert c.auth_plain(local, pw + "x").name == "failure"
    assert "auth failed condition=not-authorized peer=203.0.113.99:41005" in n.log()


def test_limits_count_the_proxied_address(pnode, user, held):
    """Every connection comes from 127.0.0.1, but the limit of 2 applies to
    each proxied address: a third from one client is refused while other
    clients still get in."""
    n = pnode()
    for i in range(2):
        held.append(proxied_login(n.port, user, v2("203.0.113.7", 42000 + i), "r%d" % i))
    c = Proxied(n.port, v2("203.0.113.7", 42009))
    held.append(c)
    c.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
    cond, err = c.expect_stream_error()
    assert cond == "policy-violation"
    hits = limit_hits(n, "conn_per_ip")
    assert len(hits) == 1 and "peer=203.0.113.7:42009" in hits[0]
    # Other addresses behind the same balancer are not affected.
    for i in range(2):
        held.append(proxied_login(n.port, user, v1("203.0.113.8", 43000 + i), "s%d" % i))
    # IPv6 clients count per /64: two addresses of one /64 share the limit.
    held.append(proxied_login(n.port, user, v2("2001:db8:1:2::1"), "x1"))
    held.append(proxied_login(n.port, user, v2("2001:db8:1:2::2"), "x2"))
    c = Proxied(n.port, v2("2001:db8:1:2::3"))
    held.append(c)
    c.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
    assert c.expect_stream_error()[0] == "policy-violation"
    held.append(proxied_login(n.port, user, v2("2001:db8:1:3::1"), "x3"))


def test_v2_local_keeps_the_socket_address(pnode, user, held):
    """The balancer's own health check (LOCAL) counts as the balancer."""
    n = pnode()
    held.append(proxied_login(n.port, user, v2(None, local=True)))
    assert "proxy header v2 peer=127.0.0.1:" in n.log()
    assert "(local: the proxy's own connection)" in n.log()
    held.append(proxied_login(n.port, user, b"PROXY UNKNOWN\r\n"))


def test_header_split_at_every_byte(pnode, user, held):
    n = pnode()
    local, bare, pw = user()
    c = h.RawClient(n.port)
    held.append(c)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    hdr = v2("198.51.100.77", 44000)
    for i in range(len(hdr)):
        c.send(hdr[i:i + 1])
    assert c.login(local, pw, resource="split") == bare + "/split"
    assert "peer=198.51.100.77:44000" in n.log()


@pytest.mark.parametrize("data,reason", [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "invalid"),
    (b"<?xml version='1.0'?><stream:stream to='localhost'>", "invalid"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "invalid"),
    (b"PROXY TCP4 999.2.3.4 5.6.7.8 1 2\r\n", "invalid"),
    (b"PROXY UNKNOWN " + b"A" * 200, "too_long"),
    (SIG + b"\x21\x11\xff\xff" + b"\0" * 64, "too_long"),
    (SIG[:6] + b"X" * 20, "invalid"),
    (SIG + b"\x22\x11\x00\x0c" + b"\0" * 12, "invalid"),
], ids=["http", "xml-without-header", "v1-lf-only", "v1-bad-address", "v1-too-long",
        "v2-too-long", "v2-bad-signature", "v2-bad-command"])
def test_bad_header_drops_the_connection(pnode, user, data, reason):
    n = pnode()
    c = h.RawClient(n.port)
    try:
        c.send(data)
    except OSError:
        pass
    # Dropped without a byte of XMPP: not even a stream header.
    assert c.wait_closed() == []
    h.wait_until(lambda: "proxy header refused reason=%s" % reason in n.log(),
                 what="the refusal log line")
    c.close()
    proxied_login(n.port, user, v1("203.0.113.5")).close()


def test_header_deadline(pnode, user):
    n = pnode({"ROOST_C2S_PROXY_TIMEOUT_MS": "300"})
    c = h.RawClient(n.port)
    c.send(b"PROXY TCP4 1.2.")      # a start, then nothing
    assert c.wait_closed() == []
    assert "proxy header refused reason=timeout" in n.log()
    c.close()
    proxied_login(n.port, user, v1("203.0.113.5")).close()


def test_direct_tls_header_before_client_hello(pnode, user, tmp_path):
    from test_tls import make_cert
    cert, key = make_cert(str(tmp_path))
    tls_port = h.free_port()
    n = pnode({"ROOST_TLS_CERT": cert, "ROOST_TLS_KEY": key,
               "ROOST_C2S_TLS_PORT": str(tls_port), "ROOST_C2S_REQUIRE_ENCRYPTION": "true"})
    h.wait_until(lambda: h.port_open(tls_port), what="direct TLS port")
    local, bare, pw = user()
    c = h.RawClient(tls_port)
    c.send(v2("198.51.100.44", 45000, dport=5223))
    c.wrap_tls()
    assert c.sock.version() == "TLSv1.3"
    assert c.login(local, pw, resource="tls") == bare + "/tls"
    c.sync()
    assert "proxy header v2 peer=198.51.100.44:45000" in n.log()
    c.close()
    # STARTTLS on the main port, behind a v1 header.
    d = Proxied(n.port, v1("198.51.100.45", 45001))
    d.open_stream()
    d.starttls()
    assert d.auth_plain(local, pw).name == "success"
    d.close()
    # Without a header the ClientHello itself is refused as a header.
    e = h.RawClient(tls_port)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        e.wrap_tls()
    e.close()
    h.wait_until(lambda: "proxy header refused reason=invalid" in n.log(),
                 what="the refusal log line")


def test_option_off_header_is_garbage(node_factory, user):
    """Without c2s.proxy_protocol a PROXY header is not XML: the stream
    ends with a stream error, as for any garbage."""
    n = node_factory()
    c = h.RawClient(n.port)
    c.send(v1("203.0.113.7") + b"<?xml version='1.0'?>")
    cond, _ = c.expect_stream_error()
    assert cond == "not-well-formed"
    assert "proxy header" not in n.log()
    c.close()
    local, bare, pw = user()
    d = h.RawClient(n.port)
    assert d.login(local, pw) == bare + "/raw"
    d.close()
