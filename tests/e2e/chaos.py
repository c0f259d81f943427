# Chaos clients for issue 6: asyncio XMPP clients over raw sockets that
# keep talking while nodes restart or die. An SM client implements XEP-0198
# on its side exactly (counts h, keeps what it sent until acked, resumes on
# another node and sends the unacked again); a plain client reconnects and
# binds the same resource again. Every message body is "<sender>|<n>", so
# the receivers can count what arrived, what is missing and what came twice.

import asyncio
import collections
import time

import roost_harness as h

NS_SM = "urn:xmpp:sm:3"
STANZAS = ("message", "presence", "iq")


class Conn:
    """One TCP connection with an incremental reader."""

    def __init__(self, reader, writer):
        self.r, self.w = reader, writer
        self.p = h.Reader()

    @classmethod
    async def open(cls, port, timeout):
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        return cls(r, w)

    def send(self, s):
        self.w.write(s.encode() if isinstance(s, str) else s)

    async def next(self, timeout=h.WAIT):
        """Next top-level element; raises EOFError when the stream ends."""
        deadline = time.monotonic() + timeout
        while not self.p.items:
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError()
            data = await asyncio.wait_for(self.r.read(65536), left)
            if not data:
                raise EOFError()
            self.p.feed(data)
        it = self.p.items.pop(0)
        if it is h.END:
            raise EOFError()
        return it

    def close(self):
        try:
            self.w.close()
        except Exception:
            pass


class Client:
    def __init__(self, name, user, ports, sm=True, resource="chaos"):
        self.name = name
        self.local, self.bare, self.pw = user
        self.ports = list(ports)
        self.turn = 0
        self.sm = sm
        self.resource = resource
        self.full = "%s/%s" % (self.bare, resource)
        self.conn = None
        self.connected = asyncio.Event()
        # XEP-0198, client side
        self.sm_id = None
        self.h_in = 0
        self.out_seq = 0
        self.unacked = collections.deque()     # (seq, bytes)
        # results
        self.sent = 0
        self.recv = collections.Counter()       # (sender, n) -> times
        self.bounced = 0
        self.bounced_keys = set()               # (destination bare, n)
        self.unavailable_from = collections.Counter()
        self.resumes = 0
        self.rebinds = 0
        self.resume_times = []
        self.failed_resumes = 0
        self.lost_at = None
        self.stop = False
        self.on_subscribe_approve = True

    # -- connection ------------------------------------------------------

    def port(self):
        p = self.ports[self.turn % len(self.ports)]
        self.turn += 1
        return p

    async def _login(self, conn):
        conn.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>"
                  % h.DOMAIN)
        await conn.next()                       # header
        await conn.next()                       # features
        conn.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
                  % (h.NS_SASL, h.b64(("\0%s\0%s" % (self.local, self.pw)).encode())))
        r = await conn.next()
        if r.name != "success":
            raise RuntimeError("auth failed: %r" % r)
        conn.p = h.Reader()
        conn.send("<stream:stream xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>"
                  % h.DOMAIN)
        await conn.next()
        await conn.next()

    async def _bind(self, conn):
        conn.send("<iq type='set' id='bind'><bind xmlns='%s'><resource>%s</resource>"
                  "</bind></iq>" % (h.NS_BIND, self.resource))
        while True:
            e = await conn.next()
            if e.name == "iq" and e.get("id") == "bind":
                if e.get("type") != "result":
                    raise RuntimeError("bind failed: %r" % e)
                return
            self._handle(e)                     # queued stanzas may come first

    async def establish(self):
        """Connects to the next node: resumes when possible, else binds."""
        conn = await Conn.open(self.port(), 3)
        try:
            await self._login(conn)
            if self.sm and self.sm_id is not None:
                conn.send("<resume xmlns='%s' previd='%s' h='%d'/>"
                          % (NS_SM, self.sm_id, self.h_in))
                while True:
                    e = await conn.next()
                    if e.name in ("resumed", "failed"):
                        break
                if e.name == "resumed":
                    self.conn = conn
                    self._acked(int(e.get("h")))
                    # Resend what the server has not handled (XEP-0198 §5).
                    pending = list(self.unacked)
                    self.unacked.clear()
                    self.out_seq = int(e.get("h"))
                    for _, data in pending:
                        self._send_stanza(data)
                    self.resumes += 1
                    if self.lost_at is not None:
                        self.resume_times.append(time.monotonic() - self.lost_at)
                    return
                self.failed_resumes += 1
                self.sm_id = None
            await self._bind(conn)
            self.conn = conn
            if self.sm:
                conn.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
                while True:
                    e = await conn.next()
                    if e.name == "enabled":
                        self.sm_id = e.get("id")
                        break
                    self._handle(e)
                self.h_in = 0
                # A fresh SM stream: whatever was unacked is resent.
                pending = list(self.unacked)
                self.unacked.clear()
                self.out_seq = 0
                for _, data in pending:
                    self._send_stanza(data)
            else:
                self.rebinds += 1
            conn.send("<presence/>")
            if self.sm:
                self._count_out()
        except BaseException:
            conn.close()
            raise

    # -- stanzas ---------------------------------------------------------

    def _count_out(self):
        self.out_seq += 1
        if self.out_seq % 5 == 0:
            self.conn.send("<r xmlns='%s'/>" % NS_SM)

    def _send_stanza(self, data):
        if self.sm:
            self.unacked.append((self.out_seq + 1, data))
        self.conn.send(data)
        if self.sm:
            self._count_out()

    def send_message(self, to, n):
        data = "<message type='chat' to='%s'><body>%s|%d</body></message>" % (to, self.name, n)
        self.sent += 1
        if self.conn is None:
            # Between connections: an SM client keeps it to send on resume;
            # a plain client would have had no socket to send it on.
            if self.sm:
                self.unacked.append((None, data))
            return
        self._send_stanza(data)

    def _acked(self, hv):
        while self.unacked and self.unacked[0][0] is not None and self.unacked[0][0] <= hv:
            self.unacked.popleft()

    def _handle(self, e):
        if e.ns == NS_SM:
            if e.name == "r" and self.conn is not None:
                self.conn.send("<a xmlns='%s' h='%d'/>" % (NS_SM, self.h_in))
            elif e.name == "a":
                self._acked(int(e.get("h")))
            return
        if e.name in STANZAS:
            self.h_in += 1
        if e.name == "message":
            if e.get("type") == "error":
                # Bounced back to us: not lost, the sender was told.
                self.bounced += 1
                b = h.body_of(e)
                if b and "|" in b:
                    self.bounced_keys.add((e.get("from", "").split("/")[0], int(b.rsplit("|", 1)[1])))
                return
            b = h.body_of(e)
            if b and "|" in b:
                who, n = b.rsplit("|", 1)
                self.recv[(who, int(n))] += 1
        elif e.name == "presence":
            t = e.get("type")
            if t == "subscribe" and self.on_subscribe_approve and self.conn is not None:
                # A stanza like any other: it counts toward the server's h,
                # so it must be numbered here too, or acks pop one too many.
                self._send_stanza("<presence type='subscribed' to='%s'/>" % e.get("from"))
            elif t == "unavailable" and e.get("from", "") != self.full:
                self.unavailable_from[e.get("from")] += 1
        elif e.name == "iq" and e.get("type") in ("get", "set") and self.conn is not None:
            self.conn.send("<iq type='result' id='%s' to='%s'/>" % (e.get("id"), e.get("from")))
            if self.sm:
                self._count_out()

    async def run(self):
        """Reads forever; on a lost connection reconnects (resuming)."""
        while not self.stop:
            if self.conn is None:
                try:
                    await self.establish()
                    self.connected.set()
                except (OSError, EOFError, asyncio.TimeoutError, RuntimeError):
                    self.conn = None
                    await asyncio.sleep(0.1)
                    continue
            try:
                e = await self.conn.next(timeout=1.0)
            except asyncio.TimeoutError:
                if self.sm and self.unacked:
                    self.conn.send("<r xmlns='%s'/>" % NS_SM)
                continue
            except (OSError, EOFError):
                self.conn.close()
                self.conn = None
                self.connected.clear()
                self.lost_at = time.monotonic()
                continue
            self._handle(e)

    async def settle(self):
        """Asks for an ack so unacked stanzas are known to be handled."""
        if self.conn is not None and self.sm:
            self.conn.send("<r xmlns='%s'/>" % NS_SM)

    def close(self):
        self.stop = True
        if self.conn is not None:
            try:
                self.conn.send("</stream:stream>")
            except Exception:
                pass
            self.conn.close()
