# roostctl against the same Redis as a running node: accounts and sessions.

import roost_harness as h


def can_login(raw, local, pw, domain=h.DOMAIN):
    c = raw()
    c.open_stream(to=domain)
    r = c.auth_scram(local, pw)
    c.close()
    return r.name == "success"


def test_user_add_and_login(ctl, raw):
    local = h.uniq("add")
    r = ctl.run("user", "add", local + "@" + h.DOMAIN, "--password-stdin", stdin="s3cret\n")
    assert r.returncode == 0, r.stderr
    assert can_login(raw, local, "s3cret")
    assert not can_login(raw, local, "s3cret\n")


def test_user_add_duplicate_fails(ctl):
    jid = h.uniq("dup") + "@" + h.DOMAIN
    assert ctl.run("user", "add", jid, "--password-stdin", stdin="a\n").returncode == 0
    r = ctl.run("user", "add", jid, "--password-stdin", stdin="b\n")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip()


def test_user_list(ctl, user):
    _, bare1, _ = user()
    _, bare2, _ = user(domain=h.DOMAIN2)
    r = ctl.run("user", "list")
    assert r.returncode == 0, r.stderr
    assert bare1 in r.stdout.split()
    assert bare2 in r.stdout.split()
    r = ctl.run("user", "list", h.DOMAIN2)
    assert r.returncode == 0, r.stderr
    assert bare2 in r.stdout.split()
    assert bare1 not in r.stdout.split()


def test_user_passwd(ctl, raw, user):
    local, bare, pw = user()
    assert can_login(raw, local, pw)
    r = ctl.run("user", "passwd", bare, "--password-stdin", stdin="newpass\n")
    assert r.returncode == 0, r.stderr
    assert not can_login(raw, local, pw)
    assert can_login(raw, local, "newpass")


def test_user_passwd_unknown_user_fails(ctl):
    r = ctl.run("user", "passwd", h.uniq("ghost") + "@" + h.DOMAIN,
                "--password-stdin", stdin="x\n")
    assert r.returncode == 1


def test_user_del_ends_live_session(ctl, raw, user):
    local, bare, pw = user()
    c = raw()
    c.login(local, pw, resource="live")
    r = ctl.run("user", "del", bare)
    assert r.returncode == 0, r.stderr
    # The stream ends (with a stream error or a plain close) ...
    c.wait_closed()
    assert c.closed
    # ... the account is gone, and the user is no longer listed.
    assert not can_login(raw, local, pw)
    assert bare not in ctl.run("user", "list").stdout.split()


def test_user_del_unknown_fails(ctl):
    r = ctl.run("user", "del", h.uniq("ghost") + "@" + h.DOMAIN)
    assert r.returncode == 1


def test_session_list_shows_resource(ctl, raw, user):
    local, bare, pw = user()
    c = raw()
    c.login(local, pw, resource="listed")
    r = ctl.run("session", "list", bare)
    assert r.returncode == 0, r.stderr
    assert "listed" in r.stdout
    r = ctl.run("session", "list")
    assert r.returncode == 0, r.stderr
    assert bare + "/listed" in r.stdout


def test_session_kick(ctl, raw, user):
    local, bare, pw = user()
    c = raw()
    c.login(local, pw, resource="kickme")
    other = raw()
    other.login(local, pw, resource="stay")
    r = ctl.run("session", "kick", bare + "/kickme")
    assert r.returncode == 0, r.stderr
    c.wait_closed()
    assert c.closed
    other.sync()
    assert "kickme" not in ctl.run("session", "list", bare).stdout


def test_bad_jid_rejected(ctl):
    for bad in ("no-at-sign@", "@localhost", "a@b@c", "x" * 2000 + "@localhost"):
        r = ctl.run("user", "add", bad, "--password-stdin", stdin="pw\n")
        assert r.returncode != 0, bad


def test_usage_errors_exit_2(ctl):
    assert ctl.run().returncode == 2
    assert ctl.run("user").returncode == 2
    assert ctl.run("frobnicate").returncode == 2


def test_unreachable_redis_fails(ctl):
    r = h.subprocess.run([h.os.path.join(h.bin_dir(), "roostctl"), "--redis",
                          "redis://127.0.0.1:%d" % h.free_port(), "user", "list"],
                         capture_output=True, text=True, timeout=h.WAIT)
    assert r.returncode == 1


# ---- --json, node drain, stats (issue 7)

def jrun(ctl, *args, stdin=None):
    import json
    r = ctl.run("--json", *args, stdin=stdin)
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def test_json_output_of_every_command(ctl, raw, user):
    local = h.uniq("js")
    bare = local + "@" + h.DOMAIN
    assert jrun(ctl, "user", "add", bare, "--password-stdin", stdin="pw1\n") == \
        {"jid": bare, "created": True}
    assert jrun(ctl, "user", "passwd", bare, "--password-stdin", stdin="pw2\n") == \
        {"jid": bare, "password_changed": True}
    assert bare in jrun(ctl, "user", "list")["users"]
    assert bare in jrun(ctl, "user", "list", h.DOMAIN)["users"]
    c = raw()
    c.login(local, "pw2", resource="jr")
    s = jrun(ctl, "session", "list", bare)["sessions"]
    assert [(x["jid"], x["resource"]) for x in s] == [(bare, "jr")]
    assert isinstance(s[0]["epoch"], int) and s[0]["node"]
    assert s[0]["available"] is False
    # --json after the command works too.
    r = ctl.run("session", "list", bare + "/jr", "--json")
    assert r.returncode == 0 and '"resource":"jr"' in r.stdout
    nodes = jrun(ctl, "node", "list")["nodes"]
    mine = [n for n in nodes if n["id"] == s[0]["node"]]
    assert mine and mine[0]["alive"] is True and mine[0]["sessions"] >= 1
    assert jrun(ctl, "session", "kick", bare + "/jr") == {"jid": bare + "/jr", "kicked": True}
    c.wait_closed()
    assert jrun(ctl, "user", "del", bare) == {"jid": bare, "deleted": True}
    # Errors stay on stderr with a nonzero status.
    r = ctl.run("--json", "user", "del", bare)
    assert r.returncode == 1 and r.stdout == "" and r.stderr.strip()


def test_node_drain_reports_receipt(ctl, node_factory):
    n1, n2 = node_factory(), node_factory()
    r = ctl.run("node", "drain", n1.node_id)
    assert r.returncode == 0, r.stderr
    assert "received by 1 subscriber" in r.stdout
    # The node drains (no client here) and exits cleanly.
    assert n1.proc.wait(timeout=h.WAIT) == 0
    assert jrun(ctl, "node", "drain", n2.node_id) == \
        {"node": n2.node_id, "received": True, "receivers": 1}
    assert n2.proc.wait(timeout=h.WAIT) == 0
    ghost = h.uniq("gone")
    r = ctl.run("--json", "node", "drain", ghost)
    assert r.returncode == 1
    import json
    assert json.loads(r.stdout) == {"node": ghost, "received": False, "receivers": 0}
    assert ctl.run("node", "drain", "bad id!").returncode == 1
    assert ctl.run("node", "drain").returncode == 2


def test_stats(ctl, node_factory, user):
    n1, n2 = node_factory(), node_factory()
    clients = []
    try:
        for port, k in ((n1.port, 2), (n2.port, 1)):
            for _ in range(k):
                local, _, pw = user()
                c = h.RawClient(port)
                clients.append(c)
                c.login(local, pw, resource="st")
        s = jrun(ctl, "stats")
        per = {p["id"]: p for p in s["per_node"]}
        assert per[n1.node_id] == {"id": n1.node_id, "alive": True, "sessions": 2}
        assert per[n2.node_id]["sessions"] == 1
        assert s["nodes"]["alive"] >= 2
        assert s["nodes"]["total"] == s["nodes"]["alive"] + s["nodes"]["dead"]
        assert s["sessions"] == sum(p["sessions"] for p in s["per_node"])
        users = ctl.run("user", "list").stdout.split()
        assert s["accounts"]["total"] == len(users)
        assert s["accounts"]["domains"][h.DOMAIN] == len([u for u in users
                                                         if u.endswith("@" + h.DOMAIN)])
        r = ctl.run("stats")
        assert r.returncode == 0
        assert "node %s: alive, 2 sessions" % n1.node_id in r.stdout
        assert ctl.run("stats", "extra").returncode == 2
    finally:
        for c in clients:
            c.close()
