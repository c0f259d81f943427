"""Stream management's cost (issue 6), printed, asserting nothing: cross-node
chat messages between PAIRS sender/receiver pairs (senders on one node,
receivers on the other), once without XEP-0198 and once with resumable
stream management on every client, in window mode (each pair keeps at most
WINDOW messages in flight). Reports messages per second end to end and the
server CPU per message (both nodes and Redis, from /proc), which the Python
clients do not distort.
Run: ROOST_BIN=build/bin /usr/bin/python3 tests/bench/sm_figures.py"""
import asyncio
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import chaos  # noqa: E402
import roost_harness as h  # noqa: E402

PAIRS = int(os.environ.get("PAIRS", "20"))
PER_PAIR = int(os.environ.get("PER_PAIR", "1000"))
WINDOW = int(os.environ.get("WINDOW", "8"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pids):
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])      # utime + stime
    return total / TICK


async def run(ports, users, sm):
    senders = [chaos.Client("s%d" % i, users[2 * i], [ports[0]], sm=sm) for i in range(PAIRS)]
    recvs = [chaos.Client("r%d" % i, users[2 * i + 1], [ports[1]], sm=sm) for i in range(PAIRS)]
    tasks = [asyncio.ensure_future(c.run()) for c in senders + recvs]
    for c in senders + recvs:
        await asyncio.wait_for(c.connected.wait(), h.WAIT)
    await asyncio.sleep(0.5)

    async def pair(s, r):
        for n in range(1, PER_PAIR + 1):
            while n - len(r.recv) > WINDOW:
                await asyncio.sleep(0.0005)
            s.send_message(r.full, n)
        while len(r.recv) < PER_PAIR:
            await asyncio.sleep(0.001)

    t0 = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(pair(s, r) for s, r in zip(senders, recvs))), 300)
    wall = time.monotonic() - t0
    got = sum(len(r.recv) for r in recvs)
    for c in senders + recvs:
        c.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return wall, got


def measure(sm):
    r = h.Redis().start()
    ctl = h.Ctl(r)
    env = {"ROOST_LOG_LEVEL": "warn"}
    n1, n2 = h.Node(r, env=env).start(), h.Node(r, env=env).start()
    try:
        users = [h.new_user(ctl, prefix="b") for _ in range(2 * PAIRS)]
        pids = [n1.proc.pid, n2.proc.pid, r.proc.pid]
        loop = asyncio.new_event_loop()
        c0 = cpu_s(pids)
        wall, got = loop.run_until_complete(run([n1.port, n2.port], users, sm))
        c1 = cpu_s(pids)
        loop.close()
        return got, wall, (c1 - c0) / max(1, got) * 1e6
    finally:
        n1.terminate()
        n2.terminate()
        r.stop()


def main():
    rows = []
    for sm in (False, True):
        got, wall, us = measure(sm)
        rows.append(("on (resumable)" if sm else "off", got, got / wall, us))
    print("cross-node chat, %d pairs, window %d, %d messages per pair" % (PAIRS, WINDOW, PER_PAIR))
    print("%-16s %10s %10s %26s" % ("stream mgmt", "messages", "msgs/s", "server CPU per msg (us)"))
    for name, got, rate, us in rows:
        print("%-16s %10d %10.0f %26.1f" % (name, got, rate, us))


if __name__ == "__main__":
    main()
