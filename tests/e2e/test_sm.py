# XEP-0198 stream management (issue 6): enable, acks and counters,
# resumption on another node (also after the first node was SIGKILLed),
# <failed/> with h, the queue cap, expiry, and the drain: resumable clients
# lose their TCP connection and resume elsewhere, others get a grace window.
# Raw sockets, so every counter and element can be checked.

import signal
import time

import roost_harness as h

NS_SM = "urn:xmpp:sm:3"
STANZAS = ("message", "presence", "iq")


class SmClient:
    """A raw client that speaks XEP-0198 exactly: counts the stanzas it
    reads (h), keeps what it sent unacked, and answers <r/>."""

    def __init__(self, port, user, resource="sm"):
        self.port = port
        self.local, self.bare, self.pw = user
        self.resource = resource
        self.c = None
        self.h = 0            # stanzas received since <enabled/>/<resumed/>
        self.sm_id = None
        self.got = []         # message bodies in arrival order
        self.nonzas = []

    def connect(self, port=None, resume=True):
        self.c = h.RawClient(port or self.port)
        self.c.open_stream()
        r = self.c.auth_plain(self.local, self.pw)
        assert r.name == "success", r
        feats = self.c.restart()
        assert feats.find("{%s}sm" % NS_SM) is not None, "no <sm/> feature"
        return feats

    def login(self, resume=True, presence=True):
        self.connect()
        self.c.bind(self.resource)
        self.c.send("<enable xmlns='%s'%s/>" % (NS_SM, " resume='true'" if resume else ""))
        en = self.c.next(name="enabled")
        self.sm_id = en.get("id")
        self.h = 0
        if presence:
            self.c.presence()
            self.pump(until=lambda e: e.name == "presence" and e.get("from") == self.c.jid)
        return en

    def resume(self, port, h_=None):
        self.connect(port)
        self.c.send("<resume xmlns='%s' previd='%s' h='%d'/>"
                    % (NS_SM, self.sm_id, self.h if h_ is None else h_))
        r = self.c.next(skip=lambda e: e.name not in ("resumed", "failed"))
        if r.name == "resumed":
            self.c.jid = "%s/%s" % (self.bare, self.resource)
        return r

    def _take(self, e):
        if e.ns == NS_SM:
            self.nonzas.append(e)
            if e.name == "r":
                self.c.send("<a xmlns='%s' h='%d'/>" % (NS_SM, self.h))
            return
        if e.name in STANZAS:
            self.h += 1
            if e.name == "message":
                b = h.body_of(e)
                if b is not None:
                    self.got.append(b)

    def pump(self, until=None, timeout=None):
        """Reads (answering <r/>) until until(element) is true; returns it."""
        deadline = time.monotonic() + (h.WAIT if timeout is None else timeout)
        while True:
            e = self.c.next(timeout=max(0.0, deadline - time.monotonic()))
            self._take(e)
            if until is not None and until(e):
                return e

    def wait_bodies(self, n):
        self.pump(until=lambda e: len(self.got) >= n)

    def ack(self):
        self.c.send("<a xmlns='%s' h='%d'/>" % (NS_SM, self.h))

    def drop(self):
        """The TCP connection dies without a stream end."""
        self.c.close()


def login(raw_port, user, resource="r"):
    c = h.RawClient(raw_port)
    c.login(user[0], user[2], resource=resource)
    return c


def online(port, user, resource="r"):
    """A raw client that is available (and interested)."""
    c = login(port, user, resource)
    c.iq("get", None, "<query xmlns='jabber:iq:roster'/>")
    c.presence()
    c.next(name="presence", skip=lambda e: e.get("from") != c.jid)
    return c


def subscribe_both(a, b, bbare):
    """SmClient a (available) and raw client b (available, from online())
    become mutual contacts."""
    abare = a.bare
    a.c.send("<presence type='subscribe' to='%s'/>" % bbare)
    b.next(name="presence", skip=lambda e: e.get("type") != "subscribe")
    b.send("<presence type='subscribed' to='%s'/>" % abare)
    a.pump(until=lambda e: e.name == "presence" and e.get("type") is None and
           e.get("from", "").startswith(bbare + "/"))
    b.send("<presence type='subscribe' to='%s'/>" % abare)
    a.pump(until=lambda e: e.name == "presence" and e.get("type") == "subscribe")
    a.c.send("<presence type='subscribed' to='%s'/>" % bbare)
    b.next(name="presence", skip=lambda e: e.get("type") is not None or
           e.get("from") != a.c.jid)


def subscribe_raw(a, b, abare, bbare):
    """Raw clients a and b (both from online()) become mutual contacts."""
    for x, y, ybare, xbare in ((a, b, bbare, abare), (b, a, abare, bbare)):
        x.send("<presence type='subscribe' to='%s'/>" % ybare)
        y.next(name="presence", skip=lambda e: e.get("type") != "subscribe")
        y.send("<presence type='subscribed' to='%s'/>" % xbare)
        x.next(name="presence", skip=lambda e: e.get("type") is not None or
               not e.get("from", "").startswith(ybare + "/"))


def no_unavailable(c, frm):
    """Nothing pending on c says frm went unavailable."""
    c.sync()
    for e in c.reader.items:
        if isinstance(e, h.Element) and e.name == "presence" and \
                e.get("type") == "unavailable" and e.get("from") == frm:
            return False
    return True


# ------------------------------------------------------------------ basics

def test_enable_without_resume_counts_and_acks(node_factory, user):
    n = node_factory()
    alice, bob = user(), user()
    a = SmClient(n.port, alice)
    en = a.login(resume=False, presence=False)
    assert en.get("id") is None and en.get("resume") is None
    b = login(n.port, bob)
    for i in range(3):
        b.message(a.c.jid, "m%d" % i)
    a.wait_bodies(3)
    a.c.send("<r xmlns='%s'/>" % NS_SM)
    ack = a.pump(until=lambda e: e.name == "a")
    assert ack.get("h") == "0"          # we sent no stanza yet
    a.c.sync()
    a.c.sync()
    a.c.send("<r xmlns='%s'/>" % NS_SM)
    ack = a.pump(until=lambda e: e.name == "a")
    assert ack.get("h") == "2"          # two pings came from us
    # The server counted 3 messages and 2 ping results: h=5 is right,
    # h=6 is more than it sent.
    a.c.send("<a xmlns='%s' h='5'/>" % NS_SM)
    a.c.sync()
    a.c.send("<a xmlns='%s' h='7'/>" % NS_SM)
    cond, _ = a.c.expect_stream_error()
    assert cond == "undefined-condition"


def test_enable_twice_and_before_bind_fail(node_factory, user):
    n = node_factory()
    u = user()
    a = SmClient(n.port, u)
    a.connect()
    a.c.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    f = a.c.next(name="failed")
    assert f.find("{urn:ietf:params:xml:ns:xmpp-stanzas}unexpected-request") is not None
    a.c.bind("x")
    a.c.send("<enable xmlns='%s'/>" % NS_SM)
    a.c.next(name="enabled")
    a.c.send("<enable xmlns='%s'/>" % NS_SM)
    f = a.c.next(name="failed")
    assert f.find("{urn:ietf:params:xml:ns:xmpp-stanzas}unexpected-request") is not None


def test_ack_of_more_than_sent_is_a_stream_error(node_factory, user):
    n = node_factory()
    a = SmClient(n.port, user())
    a.login(presence=False)
    a.c.send("<a xmlns='%s' h='7'/>" % NS_SM)
    cond, err = a.c.expect_stream_error()
    assert cond == "undefined-condition"


def test_server_keepalive_ping_counts_as_a_stanza(node_factory, user):
    """The server's XEP-0199 ping is a stanza the client counts: an ack
    that includes it is not more than was sent."""
    n = node_factory(env={"ROOST_LIMITS_PING_INTERVAL_S": "1",
                          "ROOST_LIMITS_PING_TIMEOUT_S": "60"})
    a = SmClient(n.port, user())
    a.login(presence=False)
    ping = a.pump(until=lambda e: e.name == "iq" and e.get("type") == "get")
    a.c.send("<iq type='result' id='%s'/>" % ping.get("id"))
    a.ack()
    a.c.sync()                           # still open: no handled-count-too-high


def test_server_requests_acks_and_trims_queue(node_factory, user, redis):
    n = node_factory()
    alice, bob = user(), user()
    a = SmClient(n.port, alice)
    a.login(presence=False)
    b = login(n.port, bob)
    for i in range(6):
        b.message(a.c.jid, "m%d" % i)
    a.wait_bodies(6)
    # After 5 unacked stanzas the server asked; our answer trims the queue.
    a.pump(until=lambda e: e.name == "r" and e.ns == NS_SM) if not \
        any(x.name == "r" for x in a.nonzas) else None
    a.ack()
    a.c.sync()
    a.h += 1
    a.ack()
    h.wait_until(lambda: redis.cli("ZCARD", "roost:smq:{%s}:sm" % alice[1]).strip() == "0",
                 what="queue trimmed")


# -------------------------------------------------------------- resumption

def test_resume_on_another_node_gets_everything_no_flap(node_factory, user):
    n1, n2 = node_factory(), node_factory()
    alice, bob = user(), user()
    a = SmClient(n1.port, alice)
    a.login()
    b = online(n2.port, bob)
    subscribe_both(a, b, bob[1])
    for i in range(4):
        b.message(a.c.jid, "before%d" % i)
    a.wait_bodies(4)
    # Received but never acked: they come again after the resumption.
    h_before = a.h - 2
    a.drop()
    for i in range(3):
        b.message(a.c.jid, "during%d" % i)
    b.sync()
    got_before = list(a.got)
    a.got = []
    a.h = h_before
    r = a.resume(n2.port)
    assert r.name == "resumed", r
    assert r.get("previd") == a.sm_id
    a.wait_bodies(5)
    assert a.got[:5] == got_before[2:] + ["during0", "during1", "during2"]
    assert no_unavailable(b, a.c.jid)
    # The resumed session is live: new messages arrive, we can send.
    b.message(a.c.jid, "after")
    a.wait_bodies(6)
    a.c.message(bob[1], "back")
    assert h.body_of(b.next_message()) == "back"


def test_resume_after_sigkill_of_the_node(node_factory, user, redis):
    env = {"ROOST_CLUSTER_LEASE_MS": "1500", "ROOST_CLUSTER_RENEW_MS": "300",
           "ROOST_CLUSTER_REAP_INTERVAL_MS": "300"}
    n1, n2 = node_factory(env=env), node_factory(env=env)
    alice, bob = user(), user()
    a = SmClient(n1.port, alice)
    a.login()
    b = online(n2.port, bob)
    subscribe_both(a, b, bob[1])
    b.message(a.c.jid, "one")
    a.wait_bodies(1)
    n1.kill()
    a.drop()
    for i in range(3):
        b.message(a.c.jid, "dead%d" % i)
    # Once the lease expired the reaper ran: the session was detached,
    # not reaped, so bob sees no unavailable.
    h.wait_until(lambda: redis.cli("HGET", "roost:sm:{%s}:sm" % alice[1], "det").strip() == "1",
                 what="the reaper to detach the session")
    assert no_unavailable(b, a.c.jid)
    a.got = []
    r = a.resume(n2.port)
    assert r.name == "resumed", r
    a.wait_bodies(3)
    assert a.got[-3:] == ["dead0", "dead1", "dead2"]
    assert no_unavailable(b, a.c.jid)


def test_resume_with_unknown_id_fails(node_factory, user):
    n = node_factory()
    a = SmClient(n.port, user())
    a.connect()
    a.c.send("<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM, "00" * 16 + "-7878"))
    f = a.c.next(name="failed")
    assert f.find("{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found") is not None
    a.c.send("<resume xmlns='%s' previd='garbage' h='0'/>" % NS_SM)
    f = a.c.next(name="failed")
    assert f.find("{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found") is not None
    # Still usable: bind works after a failed resumption.
    assert a.c.bind("after").get("type") == "result"


def test_someone_elses_id_is_not_found(node_factory, user):
    n = node_factory()
    a = SmClient(n.port, user())
    a.login(presence=False)
    a.drop()
    m = SmClient(n.port, user())
    m.sm_id = a.sm_id
    r = m.resume(n.port)
    assert r.name == "failed"


def test_failed_carries_h_after_the_session_ended(node_factory, user):
    n = node_factory()
    alice, bob = user(), user()
    a = SmClient(n.port, alice)
    a.login(presence=False)
    for i in range(3):
        a.c.message(bob[1], "x%d" % i)
    a.c.send("<r xmlns='%s'/>" % NS_SM)
    a.pump(until=lambda e: e.name == "a")
    a.c.end()
    a.c.wait_closed()
    r = a.resume(n.port)
    assert r.name == "failed"
    assert r.get("h") == "3"


def test_clean_close_sends_unacked_messages_offline(node_factory, user):
    n = node_factory()
    alice, bob = user(), user()
    a = SmClient(n.port, alice)
    a.login(presence=False)
    b = login(n.port, bob)
    b.message(a.c.jid, "unacked")
    a.wait_bodies(1)
    a.c.end()
    a.c.wait_closed()
    # Never acknowledged, so not known to be delivered: stored offline.
    c = login(n.port, alice, "again")
    c.presence()
    m = c.next_message()
    assert h.body_of(m) == "unacked"
    assert m.find("{urn:xmpp:delay}delay") is not None


def test_queue_cap_sends_the_rest_offline(node_factory, user):
    n = node_factory(env={"ROOST_SM_MAX_QUEUE": "10"})
    alice, bob = user(), user()
    a = SmClient(n.port, alice)
    a.login(presence=False)
    a.drop()                       # detached: nothing acks, the queue fills
    b = login(n.port, bob)
    for i in range(12):
        b.message(alice[1] + "/sm", "q%d" % i)
    b.sync()
    a.got = []
    a.h = 0
    r = a.resume(n.port)
    assert r.name == "resumed"
    a.wait_bodies(10)
    assert a.got == ["q%d" % i for i in range(10)]
    # The two that did not fit were not dropped: offline storage.
    c = login(n.port, alice, "other")
    c.presence()
    got = [h.body_of(c.next_message()), h.body_of(c.next_message())]
    assert got == ["q10", "q11"]


def test_expiry_broadcasts_unavailable_and_keeps_messages(node_factory, user):
    n = node_factory(env={"ROOST_SM_RESUME_TIMEOUT_S": "1"})
    alice, bob = user(), user()
    a = SmClient(n.port, alice)
    a.login()
    b = online(n.port, bob)
    subscribe_both(a, b, bob[1])
    full = a.c.jid
    a.drop()
    b.message(full, "late")
    b.send("<iq type='get' id='q1' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % full)
    # Once the deadline passed: unavailable, the iq bounced, the message offline.
    seen = {}
    while len(seen) < 2:
        e = b.next(skip=lambda e: not ((e.name == "presence" and e.get("from") == full) or
                                       (e.name == "iq" and e.get("id") == "q1")))
        seen[e.name] = e
    assert seen["presence"].get("type") == "unavailable"
    assert seen["iq"].get("type") == "error"
    c = login(n.port, alice, "fresh")
    c.presence()
    assert h.body_of(c.next_message()) == "late"
    r = a.resume(n.port)
    assert r.name == "failed"


# ------------------------------------------------------------------- drain

def test_drain_releases_sm_clients_without_stream_end(node_factory, user):
    n1, n2 = node_factory(), node_factory()
    alice, bob = user(), user()
    a = SmClient(n1.port, alice)
    a.login(presence=False)
    b = login(n2.port, bob)
    n1.proc.send_signal(signal.SIGTERM)
    seen = a.c.wait_closed()
    assert h.END not in seen and not a.c.ended, "a resumable client got a stream end"
    assert n1.terminate() == 0
    b.message(alice[1] + "/sm", "while away")
    b.sync()
    a.got = []
    r = a.resume(n2.port)
    assert r.name == "resumed"
    a.wait_bodies(1)
    assert a.got == ["while away"]


def test_fast_shutdown_keeps_sm_sessions_resumable(node_factory, user):
    """SIGINT skips the drain, but a resumable client still only loses its
    connection (no stream end) and resumes elsewhere."""
    n1, n2 = node_factory(), node_factory()
    alice, bob = user(), user()
    a = SmClient(n1.port, alice)
    a.login(presence=False)
    n1.proc.send_signal(signal.SIGINT)
    seen = a.c.wait_closed()
    assert h.END not in seen and not a.c.ended
    assert n1.proc.wait(timeout=h.WAIT) == 0
    b = login(n2.port, bob)
    b.message(alice[1] + "/sm", "after the shutdown")
    b.sync()
    a.got = []
    assert a.resume(n2.port).name == "resumed"
    a.wait_bodies(1)
    assert a.got == ["after the shutdown"]


def test_drain_grace_keeps_non_sm_session(node_factory, user, redis):
    env = {"ROOST_DRAIN_GRACE_S": "20"}
    n1, n2 = node_factory(env=env), node_factory(env=env)
    alice, bob = user(), user()
    a = online(n1.port, alice, "desk")
    b = online(n2.port, bob)
    subscribe_raw(a, b, alice[1], bob[1])
    n1.proc.send_signal(signal.SIGTERM)
    cond, _ = a.expect_stream_error()
    assert cond == "system-shutdown"
    assert n1.terminate() == 0
    # The record is kept; what bob sends meanwhile waits for alice.
    assert redis.hkeys("roost:sess:{%s}" % alice[1]) == ["desk"]
    b.message(alice[1], "during the upgrade")
    assert no_unavailable(b, a.jid)
    a2 = login(n2.port, alice, "desk")
    m = a2.next_message()
    assert h.body_of(m) == "during the upgrade"
    a2.presence()
    assert no_unavailable(b, a2.jid)


def test_drain_envelope_starts_a_drain(node_factory, user, redis):
    """A DRAIN envelope on the node's channel starts the same drain."""
    n = node_factory()
    c = login(n.port, user())
    redis.cli("PUBLISH", "roost:route:%s" % n.node_id, "\x10\x02")
    cond, _ = c.expect_stream_error()
    assert cond == "system-shutdown"
    n.proc.wait(timeout=h.WAIT)
    assert n.proc.returncode == 0


# ------------------------------------------------------------------ slixmpp

def test_slixmpp_resumes_on_another_node_after_drain(node_factory, user):
    """A real client: slixmpp's XEP-0198 plugin enables resumption; its
    node drains (the TCP connection just ends); reconnected to the other
    node, it resumes and gets what was sent meanwhile."""
    n1, n2 = node_factory(), node_factory()
    alice, bob = user(), user()
    s = h.Slix(n1.port)
    try:
        x = s.client(alice[1] + "/slix", alice[2],
                     plugins=("xep_0030", "xep_0199", "xep_0198"))
        resumed = s.loop.create_future()
        x.add_event_handler("session_resumed",
                            lambda _: resumed.done() or resumed.set_result(True))
        x.add_event_handler("disconnected", lambda _: x.connect(
            address=("127.0.0.1", n2.port), use_ssl=False, force_starttls=False,
            disable_starttls=True))
        enabled = s.loop.create_future()
        x.add_event_handler("sm_enabled", lambda _: enabled.done() or enabled.set_result(True))
        s.connect(x)
        s.run(x.e2e_session)
        x.send_presence()
        s.run(enabled)
        b = online(n2.port, bob)
        b.message(alice[1] + "/slix", "first")
        assert s.next_message(x)["body"] == "first"
        n1.proc.send_signal(signal.SIGTERM)
        b.message(alice[1] + "/slix", "while moving")
        s.run(resumed, timeout=h.WAIT)
        assert s.next_message(x)["body"] == "while moving"
        assert n1.terminate() == 0
        # And the resumed stream carries messages both ways.
        x.send_message(mto=bob[1], mbody="hello from the new node", mtype="chat")
        # A ping round trip runs slixmpp's loop until the message is out.
        s.run(x["xep_0199"].ping(jid=h.DOMAIN, timeout=h.WAIT))
        assert h.body_of(b.next_message()) == "hello from the new node"
    finally:
        s.close()
