"""Measures (prints, asserts nothing) two cluster figures on this machine:
  1. message round trip (ping-pong of chat messages) between two clients on
     the same node vs. on two nodes, at low load (one message in flight);
  2. time from SIGKILL of a node to a contact on another node seeing the
     killed user's unavailable presence, with the default lease settings
     and with short ones.
Run: ROOST_BIN=build/bin /usr/bin/python3 tests/bench/cluster_figures.py"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import roost_harness as h  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "2000"))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def pingpong(ctl, port_a, port_b):
    ua, ub = h.new_user(ctl, prefix="a"), h.new_user(ctl, prefix="b")
    a, b = h.RawClient(port_a), h.RawClient(port_b)
    a.login(ua[0], ua[2], resource="a")
    b.login(ub[0], ub[2], resource="b")
    rtts = []
    for i in range(ROUNDS):
        t0 = time.perf_counter()
        a.message(b.jid, "p%d" % i)
        b.next_message()
        b.message(a.jid, "q%d" % i)
        a.next_message()
        rtts.append((time.perf_counter() - t0) * 1e6 / 2)   # one exchange = 2 messages
    a.close()
    b.close()
    return rtts


def befriend(ctl, n_alice, n_bob, env_unused=None):
    alice, bob = h.new_user(ctl, prefix="alice"), h.new_user(ctl, prefix="bob")
    a = h.RawClient(n_alice.port)
    a.login(alice[0], alice[2], resource="a")
    a.presence()
    b = h.RawClient(n_bob.port)
    b.login(bob[0], bob[2], resource="b")
    b.presence()
    a.send("<presence type='subscribe' to='%s'/>" % bob[1])
    b.next(name="presence", skip=lambda e: e.get("type") != "subscribe")
    b.send("<presence type='subscribed' to='%s'/>" % alice[1])
    a.next(name="presence", skip=lambda e: e.get("from") != b.jid or e.get("type") is not None)
    return a, b


def kill_to_unavailable(redis, ctl, env):
    n1 = h.Node(redis, env=env).start()
    n2 = h.Node(redis, env=env).start()
    try:
        a, b = befriend(ctl, n1, n2)
        t0 = time.monotonic()
        n2.kill()
        a.next(name="presence", timeout=60,
               skip=lambda e: e.get("from") != b.jid or e.get("type") != "unavailable")
        return time.monotonic() - t0
    finally:
        n1.terminate()
        n2.kill()


def main():
    r = h.Redis()
    r.start()
    ctl = h.Ctl(r)
    try:
        n1 = h.Node(r).start()
        n2 = h.Node(r).start()
        try:
            local = pingpong(ctl, n1.port, n1.port)
            cross = pingpong(ctl, n1.port, n2.port)
        finally:
            n1.terminate()
            n2.terminate()
        for name, xs in (("same node", local), ("cross node", cross)):
            print("message one-way (half a ping-pong), %s: median %.0f us, p99 %.0f us, n=%d"
                  % (name, statistics.median(xs), pct(xs, 99), len(xs)))
        for label, env in (("defaults (lease 10 s, renew 2 s, reap every 2 s)", {}),
                           ("lease 2 s, renew 0.5 s, reap every 0.5 s",
                            {"ROOST_CLUSTER_LEASE_MS": "2000", "ROOST_CLUSTER_RENEW_MS": "500",
                             "ROOST_CLUSTER_REAP_INTERVAL_MS": "500"})):
            runs = [kill_to_unavailable(r, ctl, env) for _ in range(3)]
            print("SIGKILL -> contact sees unavailable, %s: %s s"
                  % (label, ", ".join("%.2f" % x for x in runs)))
    finally:
        r.stop()


if __name__ == "__main__":
    main()
