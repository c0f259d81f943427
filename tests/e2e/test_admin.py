# The admin HTTP listener (issue 7): /healthz, /readyz, /metrics, refusals
# of bad requests, JSON logs and the SIGHUP log-level reload.

import json
import os
import re
import signal
import socket

import roost_harness as h

FAMILIES = [
    "roost_connections", "roost_sessions", "roost_logins_total", "roost_stanzas_in_total",
    "roost_stanzas_out_total", "roost_routed_total", "roost_pubsub_published_total",
    "roost_pubsub_received_total", "roost_pubsub_unrouted_total",
    "roost_redis_latency_seconds", "roost_redis_failures_total", "roost_build_info",
    "roost_lease_held", "roost_ready", "roost_redis_up", "roost_pubsub_subscribed",
    "roost_draining",
]


def raw_http(port, data, read_all=True):
    """Sends raw bytes to the admin port; returns everything it answers
    until it closes the connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=h.WAIT)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def status_of(resp):
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", resp)
    assert m, resp[:200]
    return int(m.group(1))


def ready(node):
    return node.http("/readyz")[0] == 200


def delta(before, after, key):
    return after.get(key, 0) - before.get(key, 0)


def test_healthz_readyz_metrics_on_a_running_node(node_factory):
    n = node_factory()
    st, hdr, body = n.http("/healthz")
    assert (st, body) == (200, "ok\n")
    h.wait_until(lambda: ready(n), what="/readyz 200")
    st, _, body = n.http("/readyz")
    assert body == "ready\n"
    st, hdr, body = n.http("/metrics")
    assert st == 200
    assert hdr["content-type"].startswith("text/plain; version=0.0.4")
    for fam in FAMILIES:
        assert "# TYPE %s " % fam in body, fam
    assert re.search(r'^roost_build_info\{version="[^"]+"\} 1$', body, re.M)
    m = n.metrics()
    assert m["roost_lease_held"] == 1 and m["roost_ready"] == 1
    assert m['roost_redis_latency_seconds_bucket{le="+Inf"}'] == \
        m["roost_redis_latency_seconds_count"] > 0
    # HEAD: headers only.
    st, hdr, body = n.http("/metrics", method="HEAD")
    assert st == 200 and body == "" and int(hdr["content-length"]) > 0


def test_not_found_and_method_not_allowed(node_factory):
    n = node_factory()
    assert n.http("/")[0] == 404
    assert n.http("/metricsx")[0] == 404
    assert n.http("/healthz/")[0] == 404
    st, hdr, _ = n.http("/metrics", method="POST")
    assert st == 405 and hdr["allow"] == "GET, HEAD"
    assert n.http("/readyz", method="DELETE")[0] == 405
    # Query strings and absolute-form targets name the same resource.
    assert n.http("/healthz?verbose=1")[0] == 200
    resp = raw_http(n.admin_port, b"GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(resp) == 200


def test_bad_requests_are_refused_and_the_node_still_serves(node_factory, user):
    n = node_factory(env={"ROOST_ADMIN_TIMEOUT_MS": "500"})
    p = n.admin_port
    assert status_of(raw_http(p, b"\x00\x01\x02garbage\r\n\r\n")) == 400
    assert status_of(raw_http(p, b"GET /healthz HTTP/2.0\r\n\r\n")) == 505
    assert status_of(raw_http(p, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n")) == 414
    big = b"GET /healthz HTTP/1.1\r\n" + b"X-Pad: " + b"p" * 200000 + b"\r\n\r\n"
    assert status_of(raw_http(p, big)) == 431
    many = b"GET /healthz HTTP/1.1\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(2000)) + b"\r\n"
    assert status_of(raw_http(p, many)) == 431
    # A client that never finishes its request is cut off by the deadline.
    s = socket.create_connection(("127.0.0.1", p), timeout=h.WAIT)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert s.recv(100) == b""
    s.close()
    # Still alive, for HTTP and for XMPP.
    assert n.http("/healthz")[0] == 200
    local, _, pw = user()
    c = h.RawClient(n.port)
    try:
        assert c.login(local, pw, resource="after")
    finally:
        c.close()
    assert n.alive()


def test_connection_cap(node_factory):
    n = node_factory(env={"ROOST_ADMIN_MAX_CONNECTIONS": "3"})
    idle = [socket.create_connection(("127.0.0.1", n.admin_port), timeout=h.WAIT)
            for _ in range(3)]
    try:
        # The fourth is over the cap: closed at once, nothing answered.
        extra = socket.create_connection(("127.0.0.1", n.admin_port), timeout=h.WAIT)
        try:
            # The close may already have arrived: then even the send fails.
            extra.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
            got = extra.recv(100)
        except (ConnectionResetError, BrokenPipeError):
            got = b""
        assert got == b""
        extra.close()
    finally:
        for s in idle:
            s.close()
    # The node may not have seen the idle ones close yet: until it has, a
    # new connection is still over the cap and reset.
    def healthy():
        try:
            return n.http("/healthz")[0] == 200
        except OSError:
            return False
    h.wait_until(healthy, what="admin after the flood")


def test_readyz_follows_redis(node_factory):
    r = h.Redis().start()
    try:
        n = node_factory(redis_=r)
        h.wait_until(lambda: ready(n), what="ready")
        r.cli("SHUTDOWN", "NOSAVE")
        r.proc.wait(timeout=h.WAIT)
        h.wait_until(lambda: n.http("/readyz")[0] == 503, what="/readyz 503")
        st, _, body = n.http("/readyz")
        assert st == 503 and "redis unreachable" in body, body
        assert n.http("/healthz")[0] == 200        # alive, just not ready
        assert n.metrics()["roost_redis_up"] == 0
        r.start()
        h.wait_until(lambda: ready(n), timeout=3 * h.WAIT, what="ready again")
        assert n.metrics()["roost_redis_up"] == 1
        assert n.terminate() == 0
    finally:
        r.stop()


def test_counters_move(node_factory, user):
    n1 = node_factory()
    n2 = node_factory()
    b1, b2 = n1.metrics(), n2.metrics()
    la, _, pa = user()
    lb, _, pb = user()
    bad = h.RawClient(n1.port)
    alice = h.RawClient(n1.port)
    bob = h.RawClient(n1.port)
    carol = h.RawClient(n2.port)
    try:
        bad.open_stream()
        assert bad.auth_scram(la, "wrong-password").name == "failure"
        ja = alice.login(la, pa, resource="a")
        jb = bob.login(lb, pb, resource="b")
        jc = carol.login(lb, pb, resource="c")
        alice.message(jb, "local")
        assert h.body_of(bob.next_message()) == "local"
        alice.message(jc, "remote")
        assert h.body_of(carol.next_message()) == "remote"
        alice.sync()
        m1, m2 = n1.metrics(), n2.metrics()
        assert delta(b1, m1, 'roost_logins_total{result="ok"}') == 2
        assert delta(b1, m1, 'roost_logins_total{result="failure",reason="not-authorized"}') == 1
        assert delta(b2, m2, 'roost_logins_total{result="ok"}') == 1
        assert delta(b1, m1, 'roost_stanzas_in_total{kind="message"}') == 2
        assert delta(b1, m1, 'roost_stanzas_in_total{kind="iq"}') >= 1
        assert delta(b1, m1, 'roost_stanzas_out_total{kind="message"}') == 1
        assert delta(b2, m2, 'roost_stanzas_out_total{kind="message"}') == 1
        assert delta(b1, m1, 'roost_routed_total{path="local"}') >= 1
        assert delta(b1, m1, 'roost_routed_total{path="remote"}') >= 1
        assert delta(b1, m1, "roost_pubsub_published_total") >= 1
        assert delta(b2, m2, "roost_pubsub_received_total") >= 1
        assert delta(b1, m1, "roost_redis_latency_seconds_count") > 0
        assert m1["roost_sessions"] == 2 and m2["roost_sessions"] == 1
        assert m1['roost_connections{state="established"}'] == 2
        assert m1['roost_connections{state="auth"}'] == 1      # the failed one, still open
        assert ja and jc
    finally:
        for c in (bad, alice, bob, carol):
            c.close()


def test_unrouted_publish_is_counted(node_factory, user):
    """A session whose node was SIGKILLed (its record still names it): the
    publish to it reaches no node."""
    n = node_factory()
    n2 = node_factory()
    la, _, pa = user()
    lc, _, pc = user()
    carol = h.RawClient(n2.port)
    alice = h.RawClient(n.port)
    try:
        jc = carol.login(lc, pc, resource="c")
        alice.login(la, pa, resource="a")
        n2.proc.send_signal(signal.SIGKILL)
        n2.proc.wait(timeout=h.WAIT)
        before = n.metrics()
        alice.message(jc, "to a dead node")
        alice.sync()
        h.wait_until(lambda: delta(before, n.metrics(), "roost_pubsub_unrouted_total") >= 1,
                     what="unrouted publish counted")
    finally:
        carol.close()
        alice.close()


def test_admin_port_zero_and_disabled(node_factory):
    n = node_factory(env={"ROOST_ADMIN_PORT": "0"})
    m = h.wait_until(lambda: re.search(r"admin listening addr=127\.0\.0\.1 port=(\d+)", n.log()),
                     what="admin port in the log")
    port = int(m.group(1))
    assert port != 0
    n.admin_port = port
    assert n.http("/healthz")[0] == 200
    d = node_factory(env={"ROOST_ADMIN_ENABLED": "false"})
    assert not h.port_open(d.admin_port)
    assert "admin listening" not in d.log()


def test_admin_config_errors():
    for env, key in (({"ROOST_ADMIN_PORT": "70000"}, "admin.port"),
                     ({"ROOST_ADMIN_BIND": "localhost"}, "admin.bind"),
                     ({"ROOST_ADMIN_ENABLED": "maybe"}, "admin.enabled"),
                     ({"ROOST_LOG_FORMAT": "xml"}, "log.format")):
        r = h.run_node_cmd(["--check-config", "--domain", "localhost"], env=env)
        assert r.returncode == 2, (env, r.stderr)
        assert key in r.stderr, (env, r.stderr)


def test_json_logs_parse(node_factory, user):
    n = node_factory(env={"ROOST_LOG_FORMAT": "json"})
    local, _, pw = user()
    c = h.RawClient(n.port)
    try:
        c.login(local, pw, resource="json\"\\quote")
        c.send("<message to='nobody@localhost'><body>\x01</body></message>"
               .replace("\x01", "caf\u00e9"))
        c.sync()
    finally:
        c.close()
    assert n.terminate() == 0
    lines = [l for l in n.log().splitlines() if l.strip()]
    assert len(lines) > 5
    recs = [json.loads(l) for l in lines]      # every line is one JSON object
    for r in recs:
        assert set(r) >= {"ts", "level", "msg"}, r
        assert r["level"] in ("debug", "info", "warn", "error")
    with_conn = [r for r in recs if "conn" in r]
    assert with_conn and all(isinstance(r["conn"], int) for r in with_conn)
    assert any('json"\\quote' in r["msg"] for r in recs)


def test_sighup_reloads_log_level(tmp_path, redis, user):
    cfg = tmp_path / "roost.yaml"
    cfg.write_text("log:\n  level: warn\n")
    n = h.Node(redis, args=["-c", str(cfg)])
    del n.env["ROOST_LOG_LEVEL"]           # the file decides
    n.start()
    try:
        local, _, pw = user()
        c = h.RawClient(n.port)
        c.login(local, pw, resource="quiet")
        c.close()
        assert "level=info" not in n.log() and "level=debug" not in n.log()
        cfg.write_text("log:\n  level: debug\n  format: json\n")
        n.proc.send_signal(signal.SIGHUP)
        h.wait_until(lambda: "SIGHUP: log.level=debug log.format=json" in n.log(),
                     what="reload logged")
        c = h.RawClient(n.port)
        c.login(local, pw, resource="loud")
        c.close()
        h.wait_until(lambda: '"level":"debug"' in n.log(), what="debug lines after SIGHUP")
        # A broken file keeps what is in force.
        cfg.write_text("log:\n  level: chatty\n")
        n.proc.send_signal(signal.SIGHUP)
        h.wait_until(lambda: "keeping the log settings" in n.log(), what="bad reload refused")
        assert n.alive()
    finally:
        rc = n.terminate()
        n.cleanup_dir()
    assert rc == 0


def test_readyz_flips_during_a_drain(node_factory, user):
    """Issue 7 with issue 6: a drain (SIGTERM) makes /readyz 503 while the
    clients are let go (one per second here), /healthz stays 200, and the
    drain metrics move."""
    import signal
    n = node_factory(env={"ROOST_DRAIN_RATE": "1"})
    h.wait_until(lambda: ready(n), what="/readyz 200")
    clients = []
    for _ in range(3):
        local, _, pw = user()
        c = h.RawClient(n.port)
        c.login(local, pw)
        clients.append(c)
    n.proc.send_signal(signal.SIGTERM)
    h.wait_until(lambda: n.http("/readyz")[0] == 503, what="/readyz 503 while draining")
    st, _, body = n.http("/readyz")
    assert "draining" in body
    assert n.http("/healthz")[0] == 200
    _, _, metrics = n.http("/metrics")
    assert "roost_drain_remaining_connections" in metrics
    for c in clients:
        cond, _ = c.expect_stream_error()
        assert cond == "system-shutdown"
    assert n.proc.wait(timeout=h.WAIT) == 0
