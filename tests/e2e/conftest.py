# Fixtures for the end-to-end suite: one private redis-server per session,
# a fresh roost-node per test (SIGTERM at teardown must exit 0), roostctl,
# raw and slixmpp clients that are always closed, node logs on failure.

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import roost_harness as h  # noqa: E402


def pytest_configure(config):
    for b in ("roost-node", "roostctl"):
        p = os.path.join(h.bin_dir(), b)
        if not os.access(p, os.X_OK):
            raise pytest.UsageError("%s not found; build it or set ROOST_BIN" % p)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for n in list(h.CURRENT_NODES):
            text = n.log()
            if len(text) > 20000:
                text = "...(cut)...\n" + text[-20000:]
            rep.sections.append(("roost-node %s (port %d) log" % (n.node_id, n.port), text))


@pytest.fixture(autouse=True)
def _track_nodes():
    h.CURRENT_NODES.clear()
    yield


@pytest.fixture(scope="session")
def redis():
    r = h.Redis()
    try:
        r.start()
        yield r
    finally:
        r.stop()


@pytest.fixture
def ctl(redis):
    return h.Ctl(redis)


@pytest.fixture
def node_factory(redis):
    """start(env={...}, args=[...], redis=...) -> running Node. Every node
    is SIGTERMed at teardown and must exit 0 (unless the test stopped it
    itself and checked the code)."""
    nodes = []

    def start(env=None, args=None, redis_=None):
        n = h.Node(redis_ or redis, env=env, args=args)
        nodes.append(n)
        return n.start()

    try:
        yield start
    finally:
        codes = []
        for n in nodes:
            if n.proc is None:
                continue
            was_alive = n.alive()
            rc = n.terminate()
            if was_alive:
                codes.append((n, rc))
        for n in nodes:
            n.kill()
        bad = [(n.node_id, rc) for n, rc in codes if rc != 0]
        for n in nodes:
            if not bad:
                n.cleanup_dir()
        assert not bad, "roost-node did not exit 0 on SIGTERM: %r" % bad


# The IM scenarios run twice: on one node, and with their clients spread
# round-robin over a 3-node cluster (issue 4: routing is node-blind).
# Tests that start their own nodes (node_factory) run once.
CLUSTER_MODULES = {"test_presence", "test_offline", "test_carbons", "test_blocking",
                   "test_blocking_presence", "test_raw_protocol", "test_slixmpp",
                   "test_im_slixmpp"}


def pytest_generate_tests(metafunc):
    mod = metafunc.module.__name__.rsplit(".", 1)[-1]
    args = metafunc.definition.function.__code__.co_varnames[
        :metafunc.definition.function.__code__.co_argcount]
    if (mod in CLUSTER_MODULES and "node_factory" not in args
            and ("raw" in args or "node" in args or "slix" in args)):
        metafunc.parametrize("topology", ["1node", "3nodes"], indirect=True)


@pytest.fixture
def topology(request):
    return getattr(request, "param", "1node")


@pytest.fixture
def cluster(node_factory, topology):
    """The nodes of this test's topology (1 or 3, sharing one Redis)."""
    return [node_factory() for _ in range(3 if topology == "3nodes" else 1)]


@pytest.fixture
def node(cluster):
    return cluster[0]


@pytest.fixture
def raw(request, topology):
    """raw(port=None) -> RawClient connected to the port (default: the
    next node of the test's topology, round-robin, so on 3 nodes every
    client of a test lands on another node); closed at teardown."""
    clients = []
    turn = [0]

    def connect(port=None):
        if port is None:
            nodes = request.getfixturevalue("cluster")
            port = nodes[turn[0] % len(nodes)].port
            turn[0] += 1
        c = h.RawClient(port)
        clients.append(c)
        return c

    try:
        yield connect
    finally:
        for c in clients:
            c.close()


@pytest.fixture
def slix(cluster):
    s = h.Slix([n.port for n in cluster])
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def user(ctl):
    """user(domain=..., password=...) -> (local, bare, password), a fresh account."""
    def make(domain=h.DOMAIN, password=None, prefix="u"):
        return h.new_user(ctl, domain=domain, password=password, prefix=prefix)
    return make
