# TLS on the c2s listeners (issue 5): STARTTLS (RFC 6120 §5), direct TLS
# (XEP-0368), TLS 1.2+ only, encryption required before SASL and stanzas,
# pipelined bytes after <starttls/> dropped, certificate reload on SIGHUP;
# SCRAM-*-PLUS with tls-server-end-point (RFC 5929) and the XEP-0440
# feature. (tls-exporter needs export_keying_material, which Python 3.11's
# ssl lacks: tests/unit/test_tls.c and test_sasl.c cover it.)

import asyncio
import base64
import hashlib
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import warnings

import pytest

import roost_harness as h

NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"


def make_cert(directory, cn="localhost"):
    """A fresh self-signed EC certificate and key; returns (cert, key)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    tmp_cert, tmp_key = cert + ".new", key + ".new"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", tmp_key, "-out", tmp_cert, "-days", "2",
                    "-subj", "/CN=%s" % cn, "-addext", "subjectAltName=DNS:%s" % cn],
                   check=True, capture_output=True, timeout=h.WAIT)
    # Renamed into place so a reload never reads a half-written file.
    os.replace(tmp_key, key)
    os.replace(tmp_cert, cert)
    return cert, key


def der_of(cert_path):
    with open(cert_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


@pytest.fixture(scope="session")
def tls_cert():
    d = tempfile.mkdtemp(prefix="roost-e2e-tls.")
    try:
        yield make_cert(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def tls_node(node_factory, tls_cert):
    """tls_node(cert=..., key=...) -> a node requiring encryption, with a
    direct TLS port in node.tls_port."""
    def start(cert=None, key=None, env=None):
        tls_port = h.free_port()
        e = {"ROOST_C2S_REQUIRE_ENCRYPTION": "true",
             "ROOST_TLS_CERT": cert or tls_cert[0],
             "ROOST_TLS_KEY": key or tls_cert[1],
             "ROOST_C2S_TLS_PORT": str(tls_port)}
        e.update(env or {})
        n = node_factory(env=e)
        n.tls_port = tls_port
        h.wait_until(lambda: h.port_open(tls_port), what="direct TLS port")
        return n
    return start


def features_has(features, ns, name):
    return features.find("{%s}%s" % (ns, name)) is not None


def scram_login(c, local, pw, resource="tls"):
    r = c.auth_scram(local, pw)
    assert r.name == "success", r
    feats = c.restart()
    assert features_has(feats, h.NS_BIND, "bind")
    res = c.bind(resource)
    assert res.get("type") == "result", res
    return c.jid


def test_starttls_then_scram_bind_and_message(tls_node, raw, user):
    n = tls_node()
    la, _, pwa = user()
    lb, _, pwb = user()
    a = raw(n.port)
    feats = a.open_stream()
    st = feats.find("{%s}starttls" % NS_TLS)
    assert st is not None and st.find("{%s}required" % NS_TLS) is not None
    # With TLS mandatory nothing else is offered before it.
    assert a.mechanisms() == []
    feats = a.starttls()
    assert a.sock.version() == "TLSv1.3"
    assert not features_has(feats, NS_TLS, "starttls")
    assert {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"} <= set(a.mechanisms())
    scram_login(a, la, pwa, "a")
    b = raw(n.port)
    b.open_stream()
    b.starttls()
    scram_login(b, lb, pwb, "b")
    b.presence()
    b.sync()
    a.message(b.jid, "over tls")
    m = b.next_message()
    assert h.body_of(m) == "over tls"


def test_direct_tls(tls_node, raw, user):
    n = tls_node()
    local, _, pw = user()
    c = raw(n.tls_port)
    c.wrap_tls()
    assert c.sock.version() == "TLSv1.3"
    feats = c.open_stream()
    assert not features_has(feats, NS_TLS, "starttls")
    assert "SCRAM-SHA-256" in c.mechanisms()
    scram_login(c, local, pw)
    c.sync()


def test_plain_allowed_under_tls(tls_node, raw, user):
    n = tls_node()
    local, _, pw = user()
    c = raw(n.tls_port)
    c.wrap_tls()
    c.open_stream()
    assert c.auth_plain(local, pw).name == "success"


def test_tls_1_1_refused(tls_node, raw):
    n = tls_node()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Let this client offer TLS 1.1 at all; the server must refuse it.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    c = raw(n.tls_port)
    with pytest.raises(ssl.SSLError):
        c.wrap_tls(ctx)
    h.wait_until(lambda: "tls handshake failed" in n.log(), what="handshake failure log")
    # ... and the same on STARTTLS; then the node still serves TLS 1.2.
    s = raw(n.port)
    s.open_stream()
    s.send("<starttls xmlns='%s'/>" % NS_TLS)
    assert s.next().name == "proceed"
    with pytest.raises(ssl.SSLError):
        s.wrap_tls(ctx)
    ok = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ok.check_hostname = False
    ok.verify_mode = ssl.CERT_NONE
    ok.maximum_version = ssl.TLSVersion.TLSv1_2
    c2 = raw(n.tls_port)
    c2.wrap_tls(ok)
    assert c2.sock.version() == "TLSv1.2"
    c2.open_stream()
    assert "SCRAM-SHA-256" in c2.mechanisms()


def test_bytes_pipelined_after_starttls_are_discarded(tls_node, raw, user):
    """A stanza and an <auth/> sent in the clear right behind <starttls/>
    are neither processed (no policy-violation, no SASL answer) nor carried
    into the encrypted stream."""
    n = tls_node()
    local, _, pw = user()
    c = raw(n.port)
    c.open_stream()
    c.send("<starttls xmlns='%s'/>"
           "<message to='nobody@localhost' type='chat'><body>clear</body></message>"
           "<auth xmlns='%s' mechanism='PLAIN'>AGZvbwBiYXI=</auth>" % (NS_TLS, h.NS_SASL))
    assert c.next().name == "proceed"
    c.wrap_tls()
    feats = c.restart()
    assert "SCRAM-SHA-256" in c.mechanisms(), feats
    scram_login(c, local, pw)
    c.sync()
    assert "stream error" not in n.log()


def test_auth_and_stanza_before_tls_refused(tls_node, raw, user):
    n = tls_node()
    local, _, pw = user()
    c = raw(n.port)
    c.open_stream()
    r = c.auth_plain(local, pw)
    assert r.name == "failure"
    assert r.find("{%s}encryption-required" % h.NS_SASL) is not None, r
    c.send("<message to='%s@localhost'><body>x</body></message>" % local)
    cond, _ = c.expect_stream_error()
    assert cond == "policy-violation"


def test_starttls_twice_fails(tls_node, raw):
    n = tls_node()
    c = raw(n.port)
    c.open_stream()
    c.starttls()
    c.send("<starttls xmlns='%s'/>" % NS_TLS)
    r = c.next()
    assert r.name == "failure" and r.ns == NS_TLS
    cond, _ = c.expect_stream_error()
    assert cond is not None


def test_sighup_reloads_certificate(tls_node, raw, user, tmp_path):
    cert, key = make_cert(str(tmp_path))
    old_der = der_of(cert)
    n = tls_node(cert=cert, key=key)
    local, _, pw = user()
    a = raw(n.tls_port)
    a.wrap_tls()
    assert a.sock.getpeercert(binary_form=True) == old_der
    a.open_stream()
    scram_login(a, local, pw, "old")

    make_cert(str(tmp_path))
    new_der = der_of(cert)
    assert new_der != old_der
    n.proc.send_signal(signal.SIGHUP)
    h.wait_until(lambda: "reloaded tls.cert" in n.log(), what="certificate reload")

    b = raw(n.tls_port)
    b.wrap_tls()
    assert hashlib.sha256(b.sock.getpeercert(binary_form=True)).hexdigest() == \
        hashlib.sha256(new_der).hexdigest()
    s = raw(n.port)
    s.open_stream()
    s.starttls()
    assert s.sock.getpeercert(binary_form=True) == new_der
    # The connection made before the reload keeps its session.
    a.sync()


def test_sighup_with_broken_cert_keeps_old(tls_node, raw, tmp_path):
    cert, key = make_cert(str(tmp_path))
    old_der = der_of(cert)
    n = tls_node(cert=cert, key=key)
    with open(cert, "w") as f:
        f.write("not a certificate\n")
    n.proc.send_signal(signal.SIGHUP)
    h.wait_until(lambda: "keeping the current certificate" in n.log(), what="reload refusal")
    c = raw(n.tls_port)
    c.wrap_tls()
    assert c.sock.getpeercert(binary_form=True) == old_der


def test_refuses_to_start_without_cert():
    r = h.run_node_cmd(["--domain", "localhost"], env={"ROOST_C2S_REQUIRE_ENCRYPTION": "true"})
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "tls.cert" in r.stderr


def test_refuses_to_start_with_missing_cert_file():
    r = h.run_node_cmd(["--check-config", "--domain", "localhost"],
                       env={"ROOST_C2S_REQUIRE_ENCRYPTION": "true",
                            "ROOST_TLS_CERT": "/nonexistent/cert.pem"})
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "tls.cert" in r.stderr and "/nonexistent/cert.pem" in r.stderr


def slixmpp_end_point(monkeypatch, cb_data):
    """slixmpp 1.8.3 binds only with tls-unique, undefined for TLS 1.3 and
    not offered by roost: make its SCRAM speak tls-server-end-point with
    cb_data instead (the rest of its exchange is unchanged)."""
    from slixmpp.util.sasl import mechanisms as M
    orig = M.SCRAM.process_1

    def process_1(self, challenge):
        orig(self, challenge)
        if self.use_channel_binding:
            authz = self.gs2_header.split(b",", 2)[1]
            self.gs2_header = b"p=tls-server-end-point," + authz + b","
            self.credentials["channel_binding"] = cb_data
            self.client_first_message = self.gs2_header + self.client_first_message_bare
        return self.client_first_message
    monkeypatch.setattr(M.SCRAM, "process_1", process_1)


def slixmpp_login(n, bare, pw, mech):
    s = h.Slix(n.port)
    try:
        x = s.client(bare, pw, mech=mech)
        x.ssl_context.check_hostname = False
        x.ssl_context.verify_mode = ssl.CERT_NONE
        x.connect(address=("127.0.0.1", n.port), use_ssl=False,
                  force_starttls=True, disable_starttls=False)

        async def wait():
            await asyncio.wait([x.e2e_session, x.e2e_failed, x.e2e_disconnected],
                               return_when=asyncio.FIRST_COMPLETED)
            return x.e2e_session.done()
        return s.run(wait())
    finally:
        s.close()


def test_slixmpp_starttls_scram_plus(tls_node, user, tls_cert, monkeypatch):
    n = tls_node()
    local, bare, pw = user()
    slixmpp_end_point(monkeypatch, hashlib.sha256(der_of(tls_cert[0])).digest())
    assert slixmpp_login(n, bare, pw, "SCRAM-SHA-256-PLUS"), \
        "slixmpp SCRAM-SHA-256-PLUS login over STARTTLS failed"
    h.wait_until(lambda: "tls established version=TLSv1.3" in n.log(),
                 what="TLS 1.3 in the node log")
    assert "authenticated user=%s@localhost" % local in n.log()


def test_slixmpp_plain_scram_y_flag_refused(tls_node, user):
    """Stock slixmpp can bind (tls-unique), so with plain SCRAM it sends
    "y": while we offer -PLUS that reads as a stripped offer (RFC 5802 §6)."""
    n = tls_node()
    _, bare, pw = user()
    assert not slixmpp_login(n, bare, pw, "SCRAM-SHA-256")
    h.wait_until(lambda: "auth failed condition=not-authorized" in n.log(),
                 what="the downgrade refused")


def cb_types(features):
    cb = features.find("{urn:xmpp:sasl-cb:0}sasl-channel-binding")
    if cb is None:
        return None
    return [c.get("type") for c in cb.children]


def test_plus_mechanisms_and_cb_types_advertised(tls_node, raw):
    n = tls_node()
    c = raw(n.tls_port)
    c.wrap_tls()
    feats = c.open_stream()
    assert c.mechanisms()[:2] == ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"]
    assert {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"} <= set(c.mechanisms()[2:])
    assert cb_types(feats) == ["tls-exporter", "tls-server-end-point"]
    # Over STARTTLS too, and nothing before it.
    s = raw(n.port)
    feats = s.open_stream()
    assert cb_types(feats) is None
    feats = s.starttls()
    assert cb_types(feats) == ["tls-exporter", "tls-server-end-point"]
    assert "SCRAM-SHA-256-PLUS" in s.mechanisms()


def test_tls12_offers_only_server_end_point(tls_node, raw):
    n = tls_node()
    c = raw(n.tls_port)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    c.wrap_tls(ctx)
    assert c.sock.version() == "TLSv1.2"
    feats = c.open_stream()
    assert cb_types(feats) == ["tls-server-end-point"]
    assert c.mechanisms()[0] == "SCRAM-SHA-256-PLUS"


@pytest.mark.parametrize("hashname", ["sha256", "sha1"])
def test_scram_plus_server_end_point(tls_node, raw, user, hashname):
    n = tls_node()
    local, _, pw = user()
    c = raw(n.tls_port)
    c.wrap_tls()
    c.open_stream()
    # Our test certificate is signed with ECDSA-SHA256: RFC 5929 hashes it
    # with SHA-256, whatever the SCRAM hash.
    cb = hashlib.sha256(c.sock.getpeercert(binary_form=True)).digest()
    r = c.auth_scram(local, pw, hashname, flag="p=tls-server-end-point", cb_data=cb)
    assert r.name == "success", r
    c.restart()
    assert c.bind("plus").get("type") == "result"
    assert "authenticated user=%s@localhost" % local in n.log()


@pytest.mark.parametrize("case", ["wrong-data", "no-data", "y-flag", "tls-unique",
                                  "plus-with-n"])
def test_scram_plus_refused(tls_node, raw, user, case):
    n = tls_node()
    local, _, pw = user()
    c = raw(n.tls_port)
    c.wrap_tls()
    c.open_stream()
    cb = hashlib.sha256(c.sock.getpeercert(binary_form=True)).digest()
    args = {
        "wrong-data": dict(flag="p=tls-server-end-point", cb_data=bytes(32)),
        "no-data": dict(flag="p=tls-server-end-point"),
        "y-flag": dict(flag="y"),
        "tls-unique": dict(flag="p=tls-unique", cb_data=cb),
        "plus-with-n": dict(flag="n", mech="SCRAM-SHA-256-PLUS"),
    }[case]
    r = c.auth_scram(local, pw, **args)
    assert r.name == "failure"
    want = "malformed-request" if case == "plus-with-n" else "not-authorized"
    assert r.children[0].name == want, r
    # The stream lives on: a correct -PLUS login still works.
    r = c.auth_scram(local, pw, flag="p=tls-server-end-point", cb_data=cb)
    assert r.name == "success", r


def test_no_plus_without_tls(node_factory, raw, user):
    """Plaintext (allowed only when configured): no -PLUS, no XEP-0440, and
    a -PLUS <auth/> is an unknown mechanism; "y" passes, as nothing was
    stripped."""
    n = node_factory(env={"ROOST_C2S_REQUIRE_ENCRYPTION": "false"})
    local, _, pw = user()
    c = raw(n.port)
    feats = c.open_stream()
    assert "SCRAM-SHA-256" in c.mechanisms()
    assert not any(m.endswith("-PLUS") for m in c.mechanisms())
    assert cb_types(feats) is None
    r = c.auth_scram(local, pw, flag="p=tls-server-end-point", cb_data=bytes(32))
    assert r.name == "failure" and r.children[0].name == "invalid-mechanism", r
    r = c.auth_scram(local, pw, flag="y")
    assert r.name == "success", r


def test_many_records_in_one_read_all_answered(tls_node, raw, user):
    """Stanzas that wait for Redis pause the session; records that arrived
    in the same TCP read must wait in the TLS engine, not be lost."""
    n = tls_node()
    local, _, pw = user()
    c = raw(n.tls_port)
    c.wrap_tls()
    c.open_stream()
    scram_login(c, local, pw)
    ids = ["q%d" % i for i in range(60)]
    for i in ids:   # one TLS record each
        c.send("<iq type='get' id='%s'><query xmlns='jabber:iq:roster'/></iq>" % i)
    got = [c.next(name="iq").get("id") for _ in ids]
    assert got == ids


# ---------------------------------------------------------------- secure defaults

DEFAULT_SECURITY = {"ROOST_C2S_REQUIRE_ENCRYPTION": None, "ROOST_ALLOW_PLAINTEXT_AUTH": None}


def test_defaults_refuse_to_start_without_certificate():
    r = h.run_node_cmd(["--domain", "localhost"], env=DEFAULT_SECURITY)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "tls.cert" in r.stderr and "require_encryption" in r.stderr


def test_defaults_nothing_but_starttls_before_tls(node_factory, tls_cert, raw, user):
    """With the built-in defaults and a certificate: before TLS no SASL
    mechanism (so no PLAIN) is offered and none is accepted, a stanza ends
    the stream with <policy-violation/>; after STARTTLS, PLAIN and SCRAM
    are offered and PLAIN logs in."""
    n = node_factory(env=dict(DEFAULT_SECURITY, ROOST_TLS_CERT=tls_cert[0],
                              ROOST_TLS_KEY=tls_cert[1]))
    local, bare, pw = user()
    a = raw(n.port)
    feats = a.open_stream()
    st = feats.find("{%s}starttls" % NS_TLS)
    assert st is not None and st.find("{%s}required" % NS_TLS) is not None
    assert feats.find("{%s}mechanisms" % h.NS_SASL) is None
    assert cb_types(feats) is None
    r = a.auth_plain(local, pw)
    assert r.name == "failure" and r.children[0].name == "encryption-required", r
    b = raw(n.port)
    b.open_stream()
    b.send("<message to='%s'><body>in the clear</body></message>" % bare)
    cond, _ = b.expect_stream_error()
    assert cond == "policy-violation"
    c = raw(n.port)
    c.open_stream()
    c.starttls()
    assert {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS"} <= set(c.mechanisms())
    assert c.auth_plain(local, pw).name == "success"
    c.restart()
    assert c.bind("d").get("type") == "result"
    c.sync()


def test_plaintext_configured_without_plain(node_factory, raw, user):
    """c2s.require_encryption: false alone: loopback clients may log in
    without TLS, but with SCRAM only; PLAIN is neither offered nor taken."""
    n = node_factory(env={"ROOST_C2S_REQUIRE_ENCRYPTION": "false",
                          "ROOST_ALLOW_PLAINTEXT_AUTH": None})
    local, _, pw = user()
    c = raw(n.port)
    c.open_stream()
    assert c.mechanisms() == ["SCRAM-SHA-256", "SCRAM-SHA-1"]
    r = c.auth_plain(local, pw)
    assert r.name == "failure" and r.children[0].name == "encryption-required", r
    assert c.auth_scram(local, pw).name == "success"


def ssdp(hashname, mechs, cbs):
    s = "\x1e".join(sorted(mechs))
    if cbs:
        s += "\x1f" + "\x1e".join(sorted(cbs))
    return base64.b64encode(hashlib.new(hashname, s.encode()).digest()).decode()


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plaintext"])
def test_scram_downgrade_protection_hash(node_factory, tls_node, raw, user, tls):
    """XEP-0474: the server-first-message ends with h= over the mechanisms
    and channel-binding types the client saw in the features."""
    n = tls_node() if tls else node_factory()
    local, _, pw = user()
    c = raw(n.port)
    feats = c.open_stream()
    if tls:
        feats = c.starttls()
    mechs, cbs = c.mechanisms(), cb_types(feats)
    sc = h.ScramClient(local, pw, "sha1")
    c.auth_send("SCRAM-SHA-1", sc.first())
    ch = c.next()
    sf = base64.b64decode(ch.text.strip()).decode()
    attrs = dict(kv.split("=", 1) for kv in sf.split(","))
    assert sf.split(",")[-1].startswith("h=")
    assert attrs["h"] == ssdp("sha1", mechs, cbs)
    # A client that saw a stripped list (its best mechanism gone) would
    # compute another value.
    assert attrs["h"] != ssdp("sha1", mechs[1:], None)
    c.send("<response xmlns='%s'>%s</response>" % (h.NS_SASL, h.b64(sc.final(sf.encode()))))
    res = c.next()
    assert res.name == "success"
    assert sc.verify(base64.b64decode(res.text.strip()))
