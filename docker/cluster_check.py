#!/usr/bin/python3
# The "nothing lost" check of docker/test-cluster.sh: clients log in through
# HAProxy (STARTTLS, PLAIN), senders send numbered messages to receivers'
# bare JIDs while every node is restarted in turn, then every message the
# server acknowledged must have arrived. A message counts as acknowledged
# once an iq ping sent after it on the same stream was answered: the server
# handles a stream's stanzas in order (RFC 6120 §10.1), so it had routed or
# stored the message. Messages without that answer (the stream broke first)
# are reported as unconfirmed, not as lost.
#
#   cluster_check.py --port 15222 --accounts FILE --compose "docker-compose -p X -f F"
# FILE: one "jid password" per line; the first half send, the second receive.

import argparse
import os
import shlex
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

import roost_harness as h  # noqa: E402

STOP = threading.Event()


def log(*a):
    print("[%s]" % time.strftime("%H:%M:%S"), *a, flush=True)


def connect(port, jid, password, resource, presence):
    local, domain = jid.split("@", 1)
    c = h.RawClient(port, timeout=10)
    try:
        c.open_stream(to=domain)
        c.starttls(to=domain)
        r = c.auth_plain(local, password)
        if r.name != "success":
            raise h.StreamClosed("auth: %s" % r.name)
        c.restart(to=domain)
        res = c.bind(resource)
        if res.get("type") != "result":
            raise h.StreamClosed("bind failed")
        if presence:
            c.presence()
        return c
    except BaseException:
        c.close()
        raise


class Client(threading.Thread):
    def __init__(self, port, jid, password):
        super().__init__(daemon=True)
        self.port, self.jid, self.password = port, jid, password
        self.reconnects = 0
        self.errors = []

    def session(self, presence):
        while not STOP.is_set():
            try:
                # The same resource every time, as a real client does: a
                # drained node keeps that full JID's session for the grace
                # window (issue 6), and the rebind gets what was queued.
                return connect(self.port, self.jid, self.password, "r", presence)
            except (OSError, h.StreamClosed, TimeoutError, AssertionError) as e:
                self.errors.append(repr(e)[:120])
                time.sleep(0.3)
        return None


class Sender(Client):
    def __init__(self, port, jid, password, to, interval):
        super().__init__(port, jid, password)
        self.to, self.interval = to, interval
        self.acked, self.unconfirmed = set(), set()
        self.seq = 0

    def run(self):
        c = None
        while not STOP.is_set():
            if c is None:
                c = self.session(presence=False)
                if c is None:
                    break
            mid = "%s#%d" % (self.jid, self.seq)
            self.seq += 1
            try:
                c.send("<message type='chat' to='%s' id='%s'><body>%s</body></message>"
                       % (self.to, h.xesc(mid), h.xesc(mid)))
                c.sync()
                self.acked.add(mid)
            except (OSError, h.StreamClosed, TimeoutError, AssertionError):
                self.unconfirmed.add(mid)
                c.close()
                c = None
                self.reconnects += 1
                continue
            time.sleep(self.interval)
        if c is not None:
            c.close()


class Receiver(Client):
    def __init__(self, port, jid, password):
        super().__init__(port, jid, password)
        self.got = set()
        self.duplicates = 0
        self.lock = threading.Lock()
        self.done = threading.Event()

    def run(self):
        c = None
        while not self.done.is_set():
            if c is None:
                c = self.session(presence=True)
                if c is None:
                    break
            try:
                el = c.next(timeout=0.5)
            except TimeoutError:
                continue
            except (OSError, h.StreamClosed, AssertionError):
                c.close()
                c = None
                self.reconnects += 1
                continue
            if el.name == "message":
                body = h.body_of(el)
                if body:
                    with self.lock:
                        if body in self.got:
                            self.duplicates += 1
                        self.got.add(body)
        if c is not None:
            c.close()


def compose(cmd, *args, check=True, timeout=120):
    r = subprocess.run(shlex.split(cmd) + list(args), capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("%s %s: %s%s" % (cmd, " ".join(args), r.stdout, r.stderr))
    return r


def ready(cmd, node):
    r = compose(cmd, "exec", "-T", node, "roost-healthcheck", "/readyz", check=False, timeout=20)
    return r.returncode == 0


def wait_ready(cmd, node, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready(cmd, node):
            return True
        time.sleep(0.5)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=15222)
    ap.add_argument("--accounts", required=True)
    ap.add_argument("--compose", required=True)
    ap.add_argument("--nodes", default="node1,node2,node3")
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--settle", type=float, default=5.0)
    args = ap.parse_args()

    with open(args.accounts) as f:
        accts = [l.split() for l in f if l.strip()]
    half = len(accts) // 2
    receivers = [Receiver(args.port, j, p) for j, p in accts[half:]]
    for r in receivers:
        r.start()
    time.sleep(1.0)
    senders = [Sender(args.port, j, p, receivers[i].jid, args.interval)
               for i, (j, p) in enumerate(accts[:half])]
    for s in senders:
        s.start()
    log("%d senders, %d receivers through HAProxy port %d" % (len(senders), len(receivers),
                                                             args.port))
    time.sleep(args.settle)

    restart_ok = True
    for node in args.nodes.split(","):
        before = sum(len(s.acked) for s in senders)
        log("rolling restart: stopping %s (SIGTERM, grace 30 s)" % node)
        t0 = time.monotonic()
        compose(args.compose, "stop", "-t", "30", node, timeout=60)
        log("  %s stopped after %.1f s; starting it again" % (node, time.monotonic() - t0))
        compose(args.compose, "start", node, timeout=60)
        if not wait_ready(args.compose, node, 60):
            log("  %s did not become ready within 60 s" % node)
            restart_ok = False
        else:
            log("  %s ready again after %.1f s" % (node, time.monotonic() - t0))
        time.sleep(args.settle)
        log("  messages acknowledged meanwhile: %d" % (sum(len(s.acked) for s in senders)
                                                       - before))

    STOP.set()
    for s in senders:
        s.join(30)
    acked = set().union(*(s.acked for s in senders))
    unconfirmed = set().union(*(s.unconfirmed for s in senders))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = set().union(*(r.got for r in receivers))
        if acked <= got:
            break
        time.sleep(0.5)
    for r in receivers:
        r.done.set()
    for r in receivers:
        r.join(10)
    got = set().union(*(r.got for r in receivers))
    lost = sorted(acked - got)
    arrived_unconfirmed = len(unconfirmed & got)
    log("sent and acknowledged: %d" % len(acked))
    log("received: %d (duplicates %d)" % (len(got & acked), sum(r.duplicates for r in receivers)))
    log("unconfirmed (stream broke before the ack): %d, of which arrived: %d"
        % (len(unconfirmed), arrived_unconfirmed))
    log("client reconnects: senders %d, receivers %d"
        % (sum(s.reconnects for s in senders), sum(r.reconnects for r in receivers)))
    log("LOST: %d%s" % (len(lost), (" e.g. " + ", ".join(lost[:5])) if lost else ""))
    if not acked:
        log("FAIL: nothing was acknowledged (login errors: %s)"
            % "; ".join(sorted({e for s in senders for e in s.errors})[:3]))
        return 1
    if lost:
        log("FAIL: acknowledged messages were lost")
        return 1
    if not restart_ok:
        log("FAIL: a node did not come back ready")
        return 1
    log("OK: nothing acknowledged was lost across the rolling restart")
    return 0


if __name__ == "__main__":
    sys.exit(main())
