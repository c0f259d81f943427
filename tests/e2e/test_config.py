# roost-node configuration errors: exit code 2 and a message naming the key.

import os

import pytest

import roost_harness as h

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run(args, **env):
    return h.run_node_cmd(args, env=env)


def write(tmp_path, text):
    p = tmp_path / "roost.yaml"
    p.write_text(text)
    return str(p)


def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, "domains: [localhost]\nbogus_option_xyz: 1\n")
    r = run(["--check-config", "-c", path])
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "bogus_option_xyz" in r.stderr


def test_unknown_nested_key(tmp_path):
    path = write(tmp_path, "domains: [localhost]\nlimits:\n  max_stanza_sise: 5\n")
    r = run(["--check-config", "-c", path])
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "max_stanza_sise" in r.stderr


def test_redis_port_env_not_a_number():
    r = run(["--check-config", "--domain", "localhost"], ROOST_REDIS_PORT="abc")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "redis.port" in r.stderr


def test_redis_port_env_not_a_number_without_check():
    r = run(["--domain", "localhost"], ROOST_REDIS_PORT="abc")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "redis.port" in r.stderr


def test_set_unknown_key():
    r = run(["--check-config", "--domain", "localhost", "--set", "limits.no_such_limit=1"])
    assert r.returncode == 2
    assert "limits.no_such_limit" in r.stderr


def test_set_out_of_range_port():
    r = run(["--check-config", "--domain", "localhost", "--set", "redis.port=70000"])
    assert r.returncode == 2
    assert "redis.port" in r.stderr


def test_missing_config_file():
    r = run(["--check-config", "-c", "/nonexistent/roost.yaml"])
    assert r.returncode == 2
    assert "/nonexistent/roost.yaml" in r.stderr


def test_good_config_passes(tmp_path):
    path = write(tmp_path, "domains: [localhost, example.test]\n")
    r = run(["--check-config", "-c", path])
    assert r.returncode == 0, r.stderr


def test_example_config_passes():
    path = os.path.join(REPO, "ops", "roost.example.yaml")
    if not os.path.exists(path):
        pytest.skip("ops/roost.example.yaml not written yet")
    r = run(["--check-config", "-c", path])
    assert r.returncode == 0, r.stderr


def test_env_limit_is_applied(node_factory, raw):
    """ROOST_LIMITS_MAX_RESOURCES=1 caps resources per account: a second
    resource is refused (RFC 6120 §7.6.2.1: resource-constraint)."""
    n = node_factory(env={"ROOST_LIMITS_MAX_RESOURCES": "1"})
    ctl = h.Ctl(n.redis)
    local, bare, pw = h.new_user(ctl)
    a = raw(n.port)
    a.login(local, pw, resource="one")
    b = raw(n.port)
    b.open_stream()
    assert b.auth_plain(local, pw).name == "success"
    b.restart()
    r = b.bind("two")
    assert r.get("type") == "error"
    assert h.stanza_error(r)[1] == "resource-constraint"
    a.sync()
