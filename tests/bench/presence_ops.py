#!/usr/bin/python3
# Redis commands per presence broadcast, per login with contacts and per
# message, from INFO commandstats around each step, for ops/CAPACITY.md.
# A private redis-server and one node (the e2e harness); a user with K
# mutually subscribed contacts, all online. Reports figures, asserts nothing.
# Usage: ROOST_BIN=build/bin tests/bench/presence_ops.py [K]
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import roost_harness as h  # noqa: E402

K = int(sys.argv[1]) if len(sys.argv) > 1 else 20


def stats(redis):
    out = {}
    for line in redis.cli("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_") and ":calls=" in line:
            name, rest = line[8:].split(":", 1)
            out[name] = int(rest.split("calls=")[1].split(",")[0])
    return out


def diff(a, b):
    d = {k: b.get(k, 0) - a.get(k, 0) for k in b}
    # The lease renewal and reaper tick on their own; INFO is ours.
    for k in ("info",):
        d.pop(k, None)
    return {k: v for k, v in d.items() if v > 0}


def show(what, d, ops=1):
    total = sum(d.values())
    parts = " ".join("%s %.1f" % (k, v / ops) for k, v in sorted(d.items()))
    print("%-34s %6.1f commands  (%s)" % (what, total / ops, parts))


def online(port, u, res):
    c = h.RawClient(port)
    c.login(u[0], u[2], resource=res)
    c.iq("get", None, "<query xmlns='jabber:iq:roster'/>")
    c.presence()
    c.sync()
    return c


def main():
    redis = h.Redis().start()
    node = h.Node(redis).start()
    ctl = h.Ctl(redis)
    try:
        alice = h.new_user(ctl, prefix="alice")
        contacts = [h.new_user(ctl, prefix="c%d" % i) for i in range(K)]
        a = online(node.port, alice, "a")
        cs = [online(node.port, u, "r") for u in contacts]
        # Mutual subscriptions: alice asks, each contact approves and asks back.
        for c, u in zip(cs, contacts):
            a.send("<presence type='subscribe' to='%s'/>" % u[1])
            c.sync()
            c.send("<presence type='subscribed' to='%s'/>" % alice[1])
            c.send("<presence type='subscribe' to='%s'/>" % alice[1])
            c.sync()
            a.send("<presence type='subscribed' to='%s'/>" % u[1])
            a.sync()
        a.sync()
        for c in cs:
            c.sync()

        # Memory of one user's keys (MEMORY USAGE, bytes).
        for key in ("acct", "roster", "sess"):
            k = "roost:%s:{%s}" % (key, alice[1])
            print("%-34s %6s bytes" % ("MEMORY USAGE " + k.split("{")[0] + "{alice}",
                                       redis.cli("MEMORY", "USAGE", k).strip()))

        # 1. A presence change of alice reaches all K contacts.
        s0 = stats(redis)
        n = 10
        for i in range(n):
            a.send("<presence><status>s%d</status></presence>" % i)
            a.sync()
        for c in cs:
            c.sync()
        show("presence broadcast (%d contacts)" % K, diff(s0, stats(redis)), n)

        # 2. Alice logs out and in again (probes and broadcast to K).
        a.end()
        a.close()
        h.wait_until(lambda: redis.hkeys("roost:sess:{%s}" % alice[1]) == [],
                     what="alice's session removed")
        s0 = stats(redis)
        a = online(node.port, alice, "a")
        for c in cs:
            c.sync()
        show("login + initial presence (%d contacts)" % K, diff(s0, stats(redis)))

        # 3. Messages between two users (same node here).
        s0 = stats(redis)
        n = 50
        for i in range(n):
            a.message(contacts[0][1] + "/r", "m%d" % i)
        a.sync()
        cs[0].sync()
        show("chat message to a full JID", diff(s0, stats(redis)), n)
        for c in cs + [a]:
            c.close()
    finally:
        node.terminate()
        redis.stop()


if __name__ == "__main__":
    main()
