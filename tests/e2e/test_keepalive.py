"""XEP-0199 from the server side: an idle client is pinged; a client that
answers stays, one that stays silent gets connection-timeout."""
import roost_harness as h


def test_idle_client_is_pinged_and_kept(node_factory, raw, user):
    n = node_factory(env={"ROOST_LIMITS_PING_INTERVAL_S": "1",
                          "ROOST_LIMITS_PING_TIMEOUT_S": "2"})
    local, bare, pw = user()
    c = raw(n.port)
    c.login(local, pw)
    ping = c.next(name="iq", timeout=5)
    assert ping.get("type") == "get"
    assert ping.find("{urn:xmpp:ping}ping") is not None
    c.send("<iq type='result' id='%s' to='%s'/>" % (ping.get("id"), h.DOMAIN))
    # Answered: the next ping comes after another idle interval, no error.
    again = c.next(name="iq", timeout=5)
    assert again.find("{urn:xmpp:ping}ping") is not None
    assert again.get("id") != ping.get("id")
    # Still served.
    r = c.iq("get", h.DOMAIN, "<ping xmlns='urn:xmpp:ping'/>")
    assert r.get("type") == "result"


def test_silent_client_times_out(node_factory, raw, user):
    n = node_factory(env={"ROOST_LIMITS_PING_INTERVAL_S": "1",
                          "ROOST_LIMITS_PING_TIMEOUT_S": "1"})
    local, bare, pw = user()
    c = raw(n.port)
    c.login(local, pw)
    c.next(name="iq", timeout=5)       # the ping, left unanswered
    cond, _ = c.expect_stream_error(timeout=10)
    assert cond == "connection-timeout"
    # The node still serves a new client.
    c2 = raw(n.port)
    assert c2.login(local, pw).startswith(bare + "/")


def test_ping_disabled(node_factory, raw, user):
    n = node_factory(env={"ROOST_LIMITS_PING_INTERVAL_S": "0"})
    local, bare, pw = user()
    c = raw(n.port)
    c.login(local, pw)
    try:
        el = c.next(name="iq", timeout=1.5)
    except TimeoutError:
        el = None
    assert el is None
