# Session records in Redis follow the connection: bound -> present,
# disconnected -> gone, node stopped -> none left.

import roost_harness as h


def sess_key(bare):
    return "roost:sess:{%s}" % bare


def test_record_appears_and_goes(node, raw, user, redis):
    local, bare, pw = user()
    c = raw()
    c.login(local, pw, resource="rec")
    assert "rec" in redis.hkeys(sess_key(bare))
    c.end()
    c.wait_closed()
    h.wait_until(lambda: "rec" not in redis.hkeys(sess_key(bare)),
                 what="session record removed after disconnect")


def test_record_removed_on_tcp_drop(node, raw, user, redis):
    local, bare, pw = user()
    c = raw()
    c.login(local, pw, resource="drop")
    assert "drop" in redis.hkeys(sess_key(bare))
    c.close()  # no </stream:stream>
    h.wait_until(lambda: "drop" not in redis.hkeys(sess_key(bare)),
                 what="session record removed after TCP close")


def test_two_resources_two_fields(node, raw, user, redis):
    local, bare, pw = user()
    a, b = raw(), raw()
    a.login(local, pw, resource="one")
    b.login(local, pw, resource="two")
    assert set(redis.hkeys(sess_key(bare))) == {"one", "two"}


def test_no_records_after_sigterm(node_factory, raw):
    r = h.Redis().start()
    try:
        n = node_factory(redis_=r)
        ctl = h.Ctl(r)
        clients = []
        for i in range(3):
            local, bare, pw = h.new_user(ctl)
            c = raw(n.port)
            c.login(local, pw, resource="res%d" % i)
            clients.append(c)
        assert len(r.keys("roost:sess:*")) == 3
        assert n.terminate() == 0
        for c in clients:
            cond, _ = c.expect_stream_error()
            assert cond == "system-shutdown"
        assert r.keys("roost:sess:*") == []
    finally:
        r.stop()
