# End-to-end harness: runs a private redis-server and roost-node processes,
# drives roostctl, and speaks XMPP over raw sockets (expat-based reader, SASL
# PLAIN/SCRAM done here) or through slixmpp for "real client" scenarios.

import asyncio
import atexit
import base64
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import xml.parsers.expat

WAIT = 10.0  # upper bound of every wait in the suite, seconds

NS_STREAM = "http://etherx.jabber.org/streams"
NS_CLIENT = "jabber:client"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_PING = "urn:xmpp:ping"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_VERSION = "jabber:iq:version"

DOMAIN = "localhost"
DOMAIN2 = "example.test"

# Every child process we start, so atexit can reap them whatever happens.
_PROCS = []
# Nodes started during the current test; conftest shows their logs on failure.
CURRENT_NODES = []


def _reap_all():
    for p in _PROCS:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=5)
            except Exception:
                pass


atexit.register(_reap_all)


def bin_dir():
    d = os.environ.get("ROOST_BIN")
    if not d:
        here = os.path.dirname(os.path.abspath(__file__))
        d = os.path.join(here, "..", "..", "build", "bin")
    return os.path.abspath(d)


def clean_environ():
    """The test process environment without ROOST_* settings, so a
    developer's shell cannot skew what a node sees."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}


_HANDED_OUT = set()


def free_port():
    """A port nobody listens on, never one this process handed out before:
    the kernel may offer a just-closed port again, and a node's c2s,
    direct TLS and admin ports are picked one after the other."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def uniq(prefix="u"):
    return "%s%s" % (prefix, uuid.uuid4().hex[:12])


def wait_until(pred, timeout=WAIT, step=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for %s" % what)
        time.sleep(step)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- redis

class Redis:
    def __init__(self, extra=None):
        self.dir = tempfile.mkdtemp(prefix="roost-e2e-redis.")
        self.port = free_port()
        self.proc = None
        self.extra = list(extra or [])

    def start(self):
        log = open(os.path.join(self.dir, "redis.log"), "wb")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--save", "", "--appendonly", "no"] + self.extra,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        _PROCS.append(self.proc)
        wait_until(lambda: self.proc.poll() is not None or self.ping(),
                   what="redis-server to answer PING")
        if self.proc.poll() is not None:
            raise RuntimeError("redis-server exited: %s" % self.log())
        return self

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()
        except OSError:
            return ""

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.port), "--raw"] + list(args),
                           capture_output=True, text=True, timeout=WAIT)
        return r.stdout

    def ping(self):
        try:
            return self.cli("PING").strip() == "PONG"
        except subprocess.TimeoutExpired:
            return False

    def hkeys(self, key):
        return [l for l in self.cli("HKEYS", key).splitlines() if l]

    def keys(self, pattern):
        # Fine in tests: a private, tiny database.
        return [l for l in self.cli("KEYS", pattern).splitlines() if l]

    def restart(self, keep_data=True, downtime=0.0):
        """Stops redis-server and starts it again on the same port after
        downtime seconds. keep_data: SHUTDOWN SAVE, so the dump file brings
        the data back (a restart with persistence); else it comes back empty."""
        if self.proc and self.proc.poll() is None:
            try:
                self.cli("SHUTDOWN", "SAVE" if keep_data else "NOSAVE")
            except subprocess.TimeoutExpired:
                pass
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=WAIT)
        if not keep_data:
            try:
                os.unlink(os.path.join(self.dir, "dump.rdb"))
            except OSError:
                pass
        if downtime > 0:
            time.sleep(downtime)
        return self.start()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=WAIT)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- node

# The one place that sets what every test node differs from the built-in
# defaults in (a test's own env goes on top; a value of None there restores
# the default):
# - roost requires TLS by default (c2s.require_encryption: true) and offers
#   PLAIN only under TLS; the suite speaks plaintext on loopback unless a
#   test turns TLS on (tests/e2e/test_tls.py, test_limits.py), with PLAIN
#   allowed in the clear (c2s.allow_plaintext_auth);
# - no direct TLS port to clash on;
# - the whole suite connects, and fails logins, from 127.0.0.1, so the
#   per-address limits and the tarpit are raised out of the way; the tests
#   of those limits (test_limits.py, test_proxy.py) set low values.
PLAINTEXT_ENV = {
    "ROOST_C2S_REQUIRE_ENCRYPTION": "false",
    "ROOST_ALLOW_PLAINTEXT_AUTH": "true",
}
GENEROUS_LIMITS_ENV = {
    "ROOST_LIMITS_MAX_CONNS_PER_IP": "100000",
    "ROOST_LIMITS_MAX_NEW_CONNS_PER_IP_PER_S": "100000",
    "ROOST_LIMITS_AUTH_TARPIT_AFTER": "1000000",
}
NODE_BASE_ENV = dict(PLAINTEXT_ENV, ROOST_C2S_TLS_PORT="0", **GENEROUS_LIMITS_ENV)

class Node:
    def __init__(self, redis, env=None, args=None, domains=(DOMAIN, DOMAIN2)):
        self.redis = redis
        self.port = free_port()
        self.admin_port = free_port()
        self.node_id = uniq("n")
        self.dir = tempfile.mkdtemp(prefix="roost-e2e-node.")
        self.logpath = os.path.join(self.dir, "node.log")
        self.env = clean_environ()
        self.env.update({
            "ROOST_DOMAINS": ",".join(domains),
            "ROOST_C2S_BIND": "127.0.0.1",
            "ROOST_C2S_PORT": str(self.port),
            "ROOST_REDIS_HOST": "127.0.0.1",
            "ROOST_REDIS_PORT": str(redis.port),
            "ROOST_NODE_ID": self.node_id,
            "ROOST_LOG_LEVEL": "debug",
            # Drained sessions end at once unless a test asks for a grace
            # window (tests/e2e/test_sm.py).
            "ROOST_DRAIN_GRACE_S": "0",
            "ROOST_ADMIN_PORT": str(self.admin_port),
        })
        self.env.update(NODE_BASE_ENV)
        self.env.update(env or {})
        # None in env: leave that setting at the node's built-in default.
        self.env = {k: v for k, v in self.env.items() if v is not None}
        self.args = list(args or [])
        self.proc = None
        self.returncode = None

    def start(self):
        log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(
            [os.path.join(bin_dir(), "roost-node")] + self.args,
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        log.close()
        _PROCS.append(self.proc)
        CURRENT_NODES.append(self)
        try:
            wait_until(lambda: self.proc.poll() is not None or port_open(self.port),
                       what="roost-node to accept on port %d" % self.port)
        except TimeoutError:
            raise RuntimeError("roost-node did not listen:\n" + self.log())
        if self.proc.poll() is not None:
            raise RuntimeError("roost-node exited with %s:\n%s"
                               % (self.proc.returncode, self.log()))
        return self

    def log(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def http(self, path, method="GET"):
        """One request to the admin listener: (status, headers dict, body)."""
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=WAIT)
        try:
            c.request(method, path)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
        finally:
            c.close()

    def metrics(self):
        """/metrics as {'name{labels}': value}."""
        status, _, body = self.http("/metrics")
        assert status == 200, (status, body)
        out = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout=WAIT):
        """SIGTERM and wait; returns the exit code (or None if it hung and
        had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.returncode = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=WAIT)
                self.returncode = None
        elif self.returncode is None:
            self.returncode = self.proc.returncode
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)

    def cleanup_dir(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def run_node_cmd(args, env=None, timeout=WAIT):
    """Runs roost-node to completion (e.g. --check-config)."""
    e = clean_environ()
    # As for Node: tests opt in to the TLS requirement.
    e.update(PLAINTEXT_ENV)
    e.update(env or {})
    e = {k: v for k, v in e.items() if v is not None}
    return subprocess.run([os.path.join(bin_dir(), "roost-node")] + list(args),
                          env=e, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------- roostctl

class Ctl:
    def __init__(self, redis):
        self.redis = redis

    def run(self, *args, stdin=None):
        return subprocess.run(
            [os.path.join(bin_dir(), "roostctl"), "--redis", self.redis.url] + list(args),
            input=stdin if stdin is not None else "", capture_output=True,
            text=True, timeout=WAIT)

    def add(self, jid, password):
        r = self.run("user", "add", jid, "--password-stdin", stdin=password + "\n")
        if r.returncode != 0:
            raise RuntimeError("roostctl user add %s: rc=%d %s%s"
                               % (jid, r.returncode, r.stdout, r.stderr))
        return r


def new_user(ctl, domain=DOMAIN, password=None, prefix="u"):
    """Creates a fresh account; returns (localpart, bare jid, password)."""
    local = uniq(prefix)
    pw = password or uniq("pw")
    ctl.add("%s@%s" % (local, domain), pw)
    return local, "%s@%s" % (local, domain), pw


# ---------------------------------------------------------------- raw XML

class Element:
    """A tiny element tree: tag is "{ns}local" (or "local" without ns)."""

    def __init__(self, tag, attrs):
        self.tag = tag
        self.attrs = attrs
        self.children = []
        self.text = ""

    @property
    def ns(self):
        return self.tag[1:].split("}", 1)[0] if self.tag.startswith("{") else ""

    @property
    def name(self):
        return self.tag.split("}", 1)[1] if self.tag.startswith("{") else self.tag

    def get(self, key, default=None):
        return self.attrs.get(key, default)

    def find(self, tag):
        for c in self.children:
            if c.tag == tag:
                return c
        return None

    def findall(self, tag):
        return [c for c in self.children if c.tag == tag]

    def iter(self):
        yield self
        for c in self.children:
            yield from c.iter()

    def __repr__(self):
        return "<%s %r children=%r text=%r>" % (self.tag, self.attrs,
                                               self.children, self.text[:80])


class StreamClosed(Exception):
    pass


END = "END-OF-STREAM"  # marker: the peer sent </stream:stream>
EOF = "EOF"            # marker: the TCP connection was closed


def _qname(n):
    if " " in n:
        ns, local = n.split(" ", 1)
        return "{%s}%s" % (ns, local)
    return n


class Reader:
    """Incremental expat reader: the stream header at depth 1, complete
    top-level children (depth 2) as Element trees."""

    def __init__(self):
        self.p = xml.parsers.expat.ParserCreate(namespace_separator=" ")
        self.p.StartElementHandler = self._start
        self.p.EndElementHandler = self._end
        self.p.CharacterDataHandler = self._chars
        self.stack = []
        self.header = None
        self.items = []

    def feed(self, data):
        self.p.Parse(data, False)

    def _start(self, name, attrs):
        e = Element(_qname(name), {_qname(k): v for k, v in attrs.items()})
        if self.header is None and not self.stack:
            self.header = e
            self.items.append(e)
            self.stack.append(e)
            return
        if len(self.stack) > 1:  # the header does not keep its children
            self.stack[-1].children.append(e)
        self.stack.append(e)

    def _end(self, name):
        e = self.stack.pop()
        if not self.stack:
            self.items.append(END)
        elif len(self.stack) == 1:
            self.items.append(e)

    def _chars(self, data):
        if len(self.stack) > 1:
            self.stack[-1].text += data


def xesc(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&apos;").replace('"', "&quot;"))


def b64(b):
    return base64.b64encode(b).decode()


class ScramClient:
    """Client side of SCRAM (RFC 5802). flag is the gs2 channel-binding flag
    ("n", "y" or "p=<type>"); cb_data the binding data c= appends to the gs2
    header."""

    def __init__(self, user, password, hashname="sha256", authzid="", flag="n", cb_data=b""):
        self.h = hashname
        self.user = user.replace("=", "=3D").replace(",", "=2C")
        self.password = password.encode()
        self.cb_data = cb_data
        self.gs2 = "%s,%s," % (flag, ("a=" + authzid.replace("=", "=3D").replace(",", "=2C"))
                               if authzid else "")
        self.cnonce = b64(os.urandom(18))
        self.first_bare = "n=%s,r=%s" % (self.user, self.cnonce)
        self.server_sig = None

    def first(self):
        return (self.gs2 + self.first_bare).encode()

    def final(self, server_first):
        sf = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in sf.split(","))
        nonce, salt, it = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        if not nonce.startswith(self.cnonce):
            raise ValueError("server nonce does not extend client nonce")
        salted = hashlib.pbkdf2_hmac(self.h, self.password, salt, it)
        ckey = hmac.new(salted, b"Client Key", self.h).digest()
        stored = hashlib.new(self.h, ckey).digest()
        without_proof = "c=%s,r=%s" % (b64(self.gs2.encode() + self.cb_data), nonce)
        auth_msg = ("%s,%s,%s" % (self.first_bare, sf, without_proof)).encode()
        csig = hmac.new(stored, auth_msg, self.h).digest()
        proof = bytes(a ^ b for a, b in zip(ckey, csig))
        skey = hmac.new(salted, b"Server Key", self.h).digest()
        self.server_sig = hmac.new(skey, auth_msg, self.h).digest()
        return ("%s,p=%s" % (without_proof, b64(proof))).encode()

    def verify(self, server_final):
        attrs = dict(kv.split("=", 1) for kv in server_final.decode().split(","))
        return base64.b64decode(attrs.get("v", "")) == self.server_sig


class RawClient:
    """A compact XMPP client over a plain socket, for precise protocol tests."""

    def __init__(self, port, timeout=WAIT):
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.reader = Reader()
        self.header = None
        self.features = None
        self.closed = False  # EOF seen
        self.ended = False   # </stream:stream> seen
        self.jid = None
        self._id = 0

    # -- plumbing

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def next_id(self):
        self._id += 1
        return "r%d" % self._id

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from server within timeout")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from server within timeout")
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            self.reader.items.append(EOF)
            return
        self.reader.feed(data)

    def read(self, timeout=None):
        """Next item: the stream header Element, a top-level Element, END
        (closing tag) or EOF (connection closed). Raises TimeoutError."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.reader.items:
            if self.closed:
                return EOF
            self._fill(deadline)
        item = self.reader.items.pop(0)
        if item is END:
            self.ended = True
        return item

    def next(self, timeout=None, name=None, skip=None):
        """Next top-level element (optionally only those with local name
        `name`, or skipping those for which skip(el) is true). Raises
        StreamClosed on END/EOF, TimeoutError on timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            item = self.read(timeout=max(0.0, deadline - time.monotonic()))
            if item is END or item is EOF:
                raise StreamClosed(item)
            if name is not None and item.name != name:
                continue
            if skip is not None and skip(item):
                continue
            return item

    def wait_closed(self, timeout=None):
        """Reads until EOF; returns the list of elements seen on the way."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        seen = []
        while True:
            item = self.read(timeout=max(0.0, deadline - time.monotonic()))
            if item is EOF:
                return seen
            seen.append(item)

    def expect_stream_error(self, timeout=None):
        """Reads until a <stream:error/>; returns (condition local name,
        error element). Asserts the server then sends </stream:stream> and
        closes the connection."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            item = self.read(timeout=max(0.0, deadline - time.monotonic()))
            if item is END or item is EOF:
                raise AssertionError("stream closed (%s) without a stream error" % item)
            if isinstance(item, Element) and item.tag == "{%s}error" % NS_STREAM:
                break
        conds = [c.name for c in item.children if c.ns == NS_STREAMS_ERR and c.name != "text"]
        rest = self.wait_closed(timeout=max(0.5, deadline - time.monotonic()))
        assert END in rest or self.ended, \
            "no </stream:stream> after stream error; got %r" % rest
        return (conds[0] if conds else None), item

    # -- stream

    def open_stream(self, to=DOMAIN, version="1.0", extra="", decl=True, raw=None):
        """Sends a stream header; reads the server header and features."""
        if raw is None:
            raw = ("%s<stream:stream xmlns='jabber:client' "
                   "xmlns:stream='http://etherx.jabber.org/streams'%s%s%s>"
                   % ("<?xml version='1.0'?>" if decl else "",
                      (" to='%s'" % to) if to is not None else "",
                      (" version='%s'" % version) if version is not None else "",
                      extra))
        self.send(raw)
        return self.read_header_and_features()

    def read_header_and_features(self):
        hdr = self.read()
        if not isinstance(hdr, Element) or hdr.tag != "{%s}stream" % NS_STREAM:
            raise AssertionError("expected stream header, got %r" % (hdr,))
        self.header = hdr
        self.features = self.next()
        if self.features.tag != "{%s}features" % NS_STREAM:
            raise AssertionError("expected stream features, got %r" % (self.features,))
        return self.features

    def restart(self, to=DOMAIN):
        self.reader = Reader()
        return self.open_stream(to=to)

    def starttls(self, context=None, to=DOMAIN):
        """STARTTLS (RFC 6120 §5): sends <starttls/>, expects <proceed/>,
        wraps the socket (no certificate check unless context says so) and
        restarts the stream; returns the new features."""
        import ssl
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        r = self.next()
        if r.name != "proceed":
            raise AssertionError("expected <proceed/>, got %r" % (r,))
        self.wrap_tls(context)
        return self.restart(to=to)

    def wrap_tls(self, context=None):
        import ssl
        if context is None:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self.sock.settimeout(self.timeout)
        self.sock = context.wrap_socket(self.sock, server_hostname=DOMAIN)
        return self.sock

    def mechanisms(self):
        m = self.features.find("{%s}mechanisms" % NS_SASL)
        return [c.text.strip() for c in m.children] if m is not None else []

    # -- SASL

    def auth_send(self, mech, payload=None):
        body = "=" if payload is None or payload == b"" else b64(payload)
        self.send("<auth xmlns='%s' mechanism='%s'>%s</auth>" % (NS_SASL, mech, body))

    def auth_plain(self, user, password, authzid=""):
        self.auth_send("PLAIN", ("%s\0%s\0%s" % (authzid, user, password)).encode())
        return self.next()

    def auth_scram(self, user, password, hashname="sha256", authzid="", flag="n", cb_data=b"",
                   mech=None):
        """SCRAM login; a flag "p=<type>" picks the -PLUS mechanism unless
        mech names one."""
        if mech is None:
            mech = {"sha256": "SCRAM-SHA-256", "sha1": "SCRAM-SHA-1"}[hashname]
            if flag.startswith("p="):
                mech += "-PLUS"
        sc = ScramClient(user, password, hashname, authzid, flag, cb_data)
        self.auth_send(mech, sc.first())
        ch = self.next()
        if ch.name != "challenge":
            return ch
        final = sc.final(base64.b64decode(ch.text.strip()))
        self.send("<response xmlns='%s'>%s</response>" % (NS_SASL, b64(final)))
        res = self.next()
        if res.name == "success":
            data = base64.b64decode(res.text.strip()) if res.text.strip() not in ("", "=") else b""
            if data and not sc.verify(data):
                raise AssertionError("server signature did not verify")
            if not data:
                raise AssertionError("SCRAM success without server-final-message")
        return res

    # -- bind / stanzas

    def bind(self, resource=None):
        iid = self.next_id()
        inner = ("<resource>%s</resource>" % xesc(resource)) if resource is not None else ""
        self.send("<iq type='set' id='%s'><bind xmlns='%s'>%s</bind></iq>" % (iid, NS_BIND, inner))
        res = self.next(name="iq")
        if res.get("id") != iid:
            raise AssertionError("bind answer with id %r, wanted %r" % (res.get("id"), iid))
        if res.get("type") == "result":
            b = res.find("{%s}bind" % NS_BIND)
            self.jid = b.find("{%s}jid" % NS_BIND).text.strip()
        return res

    def login(self, local, password, domain=DOMAIN, resource="raw", mech="PLAIN"):
        """Full login; returns the bound JID (raises on failure)."""
        self.open_stream(to=domain)
        if mech == "PLAIN":
            r = self.auth_plain(local, password)
        else:
            r = self.auth_scram(local, password,
                                {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-1": "sha1"}[mech])
        if r.name != "success":
            raise AssertionError("auth failed: %r" % r)
        self.restart(to=domain)
        res = self.bind(resource)
        if res.get("type") != "result":
            raise AssertionError("bind failed: %r" % res)
        return self.jid

    def iq(self, typ, to, payload, iid=None):
        """Sends an iq and returns the answer with the same id."""
        iid = iid or self.next_id()
        to_attr = (" to='%s'" % xesc(to)) if to else ""
        self.send("<iq type='%s' id='%s'%s>%s</iq>" % (typ, iid, to_attr, payload))
        return self.next(name="iq", skip=lambda e: e.get("id") != iid)

    def sync(self):
        """A ping round trip to the server: stanzas sent before it are
        processed once the answer arrives (in-order processing, RFC 6120
        §10.1)."""
        r = self.iq("get", None, "<ping xmlns='%s'/>" % NS_PING)
        assert r.get("type") == "result", "ping failed: %r" % r
        return r

    def presence(self, priority=None, extra=""):
        p = ("<priority>%d</priority>" % priority) if priority is not None else ""
        self.send("<presence>%s%s</presence>" % (p, extra))

    def message(self, to, body, typ="chat", extra=""):
        self.send("<message type='%s' to='%s'%s><body>%s</body></message>"
                  % (typ, xesc(to), extra, xesc(body)))

    def next_message(self, timeout=None):
        return self.next(name="message", timeout=timeout)

    def end(self):
        try:
            self.send("</stream:stream>")
        except OSError:
            pass


def body_of(msg):
    b = msg.find("{%s}body" % NS_CLIENT)
    return b.text if b is not None else None


def stanza_error(el):
    """(type, condition) of a stanza's <error/> child, or None."""
    err = el.find("{%s}error" % NS_CLIENT)
    if err is None:
        return None
    conds = [c.name for c in err.children if c.ns == NS_STANZAS and c.name != "text"]
    return err.get("type"), (conds[0] if conds else None)


# ---------------------------------------------------------------- slixmpp

class Slix:
    """Runs slixmpp clients on a private asyncio loop, one per test."""

    def __init__(self, port):
        # One port, or a list of ports used round-robin (one per client).
        self.ports = list(port) if isinstance(port, (list, tuple)) else [port]
        self.port = self.ports[0]
        self.turn = 0
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.clients = []

    def run(self, coro_or_fut, timeout=WAIT):
        return self.loop.run_until_complete(asyncio.wait_for(coro_or_fut, timeout))

    def client(self, jid, password, mech=None, plugins=("xep_0030", "xep_0092", "xep_0199")):
        import slixmpp
        x = slixmpp.ClientXMPP(jid, password, sasl_mech=mech,
                               plugin_config={"feature_mechanisms": {"unencrypted_plain": True}})
        x.loop = self.loop
        x["feature_mechanisms"].unencrypted_plain = True
        for p in plugins:
            x.register_plugin(p)
        x.e2e_inbox = asyncio.Queue()
        x.e2e_session = self.loop.create_future()
        x.e2e_failed = self.loop.create_future()
        x.e2e_disconnected = self.loop.create_future()

        def on_session(_):
            if not x.e2e_session.done():
                x.e2e_session.set_result(True)

        def on_failed(st):
            if not x.e2e_failed.done():
                x.e2e_failed.set_result(st)

        def on_disc(_):
            if not x.e2e_disconnected.done():
                x.e2e_disconnected.set_result(True)

        x.add_event_handler("session_start", on_session)
        x.add_event_handler("failed_auth", on_failed)
        x.add_event_handler("disconnected", on_disc)
        x.add_event_handler("message", lambda m: x.e2e_inbox.put_nowait(m))
        self.clients.append(x)
        return x

    def connect(self, x):
        port = self.ports[self.turn % len(self.ports)]
        self.turn += 1
        x.connect(address=("127.0.0.1", port), use_ssl=False,
                  force_starttls=False, disable_starttls=True)

    def login(self, jid, password, mech=None, presence=True):
        """Connects and waits for session_start; fails on failed_auth."""
        x = self.client(jid, password, mech)
        self.connect(x)

        async def wait():
            done, _ = await asyncio.wait([x.e2e_session, x.e2e_failed, x.e2e_disconnected],
                                         return_when=asyncio.FIRST_COMPLETED)
            if not x.e2e_session.done():
                raise AssertionError("login of %s failed (failed_auth=%s, disconnected=%s)"
                                     % (jid, x.e2e_failed.done(), x.e2e_disconnected.done()))
        self.run(wait())
        if presence:
            x.send_presence()
        return x

    def next_message(self, x, timeout=WAIT):
        return self.run(x.e2e_inbox.get(), timeout)

    def close(self):
        for x in self.clients:
            try:
                x.abort()
            except Exception:
                pass
        try:
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.wait(pending, timeout=2))
        except Exception:
            pass
        self.loop.close()
        asyncio.set_event_loop(None)
