# Chaos tests (issue 6), bounded and on loopback: clients on 3 nodes keep
# exchanging messages while (1) every node is restarted in turn, (2) one
# node is SIGKILLed, (3) Redis (AOF on) restarts. SM clients must lose
# nothing in 1 and 2 (duplicates are counted, not failures); contacts see
# no unavailable presence in 1; plain clients lose nothing in 1 thanks to
# the drain's grace window. Each scenario prints its figures (run with -s,
# or `make chaos`), and writes them to $ROOST_CHAOS_REPORT when set.

import asyncio
import json
import os
import time

import pytest

import chaos
import roost_harness as h

RATE_HZ = 25          # messages per second per sender and destination
ENV = {
    "ROOST_DRAIN_GRACE_S": "30",
    "ROOST_DRAIN_RATE": "1000",
    "ROOST_CLUSTER_LEASE_MS": "3000",
    "ROOST_CLUSTER_RENEW_MS": "500",
    "ROOST_CLUSTER_REAP_INTERVAL_MS": "500",
    "ROOST_LOG_LEVEL": "info",
}


def report(name, fig):
    line = "chaos %-16s %s" % (name, json.dumps(fig, sort_keys=True))
    print("\n" + line)
    path = os.environ.get("ROOST_CHAOS_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


class World:
    def __init__(self, ports, ctl):
        self.ports = ports
        mk = lambda p: h.new_user(ctl, prefix=p)   # noqa: E731
        rot = lambda i: ports[i % 3:] + ports[:i % 3]   # noqa: E731
        self.sm = [chaos.Client("s%d" % i, mk("s%d" % i), rot(i)) for i in range(4)]
        self.plain = [chaos.Client("p%d" % i, mk("p%d" % i), rot(i + 1), sm=False)
                      for i in range(2)]
        self.observer = chaos.Client("obs", mk("obs"), rot(2))
        self.all = self.sm + self.plain + [self.observer]
        # sender -> destinations (bare JIDs), always on another node at start
        self.routes = {}
        for i, c in enumerate(self.sm):
            self.routes[c] = [self.sm[(i + 1) % 4], self.plain[i % 2]]
        self.sent = {}       # (sender, dest) -> [n...]
        self.sending = True

    async def start(self):
        self.tasks = [asyncio.ensure_future(c.run()) for c in self.all]
        for c in self.all:
            await asyncio.wait_for(c.connected.wait(), h.WAIT)
        # The observer follows everybody's presence.
        for c in self.sm + self.plain:
            self.observer.conn.send("<presence type='subscribe' to='%s'/>" % c.bare)
        await asyncio.sleep(1.0)

    async def senders(self):
        n = 0
        while self.sending:
            n += 1
            for c, dests in self.routes.items():
                for d in dests:
                    c.send_message(d.bare, n)
                    self.sent.setdefault((c.name, d.name), []).append(n)
            await asyncio.sleep(1.0 / RATE_HZ)

    async def settle(self, timeout=15.0):
        """Waits until every sender's stanzas are acked and the counts stop
        moving (bounded)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for c in self.sm:
                await c.settle()
            await asyncio.sleep(0.5)
            now = (sum(sum(c.recv.values()) for c in self.all),
                   sum(len(c.unacked) for c in self.sm))
            if now == last and now[1] == 0:
                return
            last = now

    def figures(self):
        fig = {"sent": 0, "lost": 0, "dup": 0, "sm_lost": 0, "plain_lost": 0,
               "flaps": 0, "resumes": 0, "failed_resumes": 0, "rebinds": 0,
               "bounced": 0}
        by_name = {c.name: c for c in self.all}
        for (src, dst), ns in self.sent.items():
            got = by_name[dst].recv
            told = by_name[src].bounced_keys
            dbare = by_name[dst].bare
            lost = sum(1 for n in ns if got[(src, n)] == 0 and (dbare, n) not in told)
            missing = [n for n in ns if got[(src, n)] == 0 and (dbare, n) not in told]
            if missing:
                fig.setdefault("missing", []).append("%s->%s:%s" % (src, dst, missing[:10]))
            dup = sum(got[(src, n)] - 1 for n in ns if got[(src, n)] > 1)
            fig["sent"] += len(ns)
            fig["lost"] += lost
            fig["dup"] += dup
            fig["sm_lost" if by_name[dst].sm else "plain_lost"] += lost
        fig["flaps"] = sum(self.observer.unavailable_from.values())
        for c in self.all:
            fig["resumes"] += c.resumes
            fig["failed_resumes"] += c.failed_resumes
            fig["rebinds"] += c.rebinds
            fig["bounced"] += c.bounced
        times = sorted(t for c in self.all for t in c.resume_times)
        if times:
            fig["resume_ms_median"] = round(1000 * times[len(times) // 2], 1)
            fig["resume_ms_max"] = round(1000 * times[-1], 1)
        return fig

    def close(self):
        for c in self.all:
            c.close()
        for t in self.tasks:
            t.cancel()


def run_scenario(ports, ctl, action, name):
    """Starts the world, runs action() (blocking, in a thread) while the
    clients talk, then settles and returns the figures."""
    async def main():
        w = World(ports, ctl)
        await w.start()
        snd = asyncio.ensure_future(w.senders())
        try:
            await asyncio.sleep(1.0)
            await asyncio.get_event_loop().run_in_executor(None, action)
            await asyncio.sleep(2.0)
        finally:
            w.sending = False
            await snd
        await w.settle()
        fig = w.figures()
        w.close()
        await asyncio.sleep(0.2)
        return fig
    loop = asyncio.new_event_loop()
    try:
        fig = loop.run_until_complete(asyncio.wait_for(main(), 120))
    finally:
        loop.close()
    report(name, fig)
    return fig


@pytest.fixture
def cluster3(node_factory):
    return [node_factory(env=ENV) for _ in range(3)]


def test_rolling_restart_loses_nothing(cluster3, ctl):
    nodes = cluster3

    def rolling():
        for n in nodes:
            assert n.terminate(timeout=30) == 0, n.log()[-3000:]
            n.start()
            time.sleep(1.0)

    fig = run_scenario([n.port for n in nodes], ctl, rolling, "rolling-restart")
    assert fig["sent"] > 0
    assert fig["sm_lost"] == 0, fig
    assert fig["plain_lost"] == 0, fig
    assert fig["flaps"] == 0, fig
    assert fig["resumes"] >= 3, fig      # every SM client moved at least once


def test_sigkill_of_a_node_loses_nothing_for_sm(cluster3, ctl):
    nodes = cluster3

    def kill():
        nodes[0].kill()           # s0 and s3 are there at the start
        time.sleep(2.0)
        nodes[0].start()

    fig = run_scenario([n.port for n in nodes], ctl, kill, "sigkill")
    assert fig["sent"] > 0
    assert fig["sm_lost"] == 0, fig
    assert fig["resumes"] >= 2, fig


def test_redis_restart_with_aof(redis_aof, ctl_aof, node_factory):
    nodes = [node_factory(env=ENV, redis_=redis_aof) for _ in range(3)]

    def restart():
        redis_aof.restart(keep_data=True, downtime=0.5)

    fig = run_scenario([n.port for n in nodes], ctl_aof, restart, "redis-restart")
    # Acknowledged writes survive (AOF, fsync always); what was in flight
    # while Redis was down is reported, and traffic flows again after it.
    assert fig["sent"] > 0
    # Measured: 0 lost; stanzas sent while Redis is down are bounced to
    # their senders (counted apart). A small allowance for what was in
    # flight at the very moment Redis stopped.
    assert fig["lost"] <= max(2, fig["sent"] // 50), fig
    for n in nodes:
        assert n.alive(), n.log()[-3000:]


@pytest.fixture
def redis_aof():
    r = h.Redis(extra=["--appendonly", "yes", "--appendfsync", "always"])
    try:
        r.start()
        yield r
    finally:
        r.stop()


@pytest.fixture
def ctl_aof(redis_aof):
    return h.Ctl(redis_aof)
