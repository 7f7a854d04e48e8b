"""On the real test bed (client-stubs/test/run.sh runs it): freezes the leading candidate's
sidecar (SIGSTOP) and checks that the app's leader work stopped at or before the bound of its
last LEADER and before the other candidate was granted the lock, all on CLOCK_MONOTONIC.

  MCL_SIDECAR_ADDR, MCL_SIDECAR_PID (its process), MCL_SIDECAR_ADDR_2, MCL_NAMESPACE
Prints "ok - ..." / "not ok - ..." lines and a FREEZE line with the margins."""

import os
import queue
import random
import signal
import sys
import threading
import time

import mcl_election
from mcl_election import monotonic_ns


class Log:
    def __init__(self):
        self.mu = threading.Lock()
        self.bound = self.last_work = self.stopped_at = 0
        self.grant_recv = self.grant_sent = 0
        self.grant_wall_ns = 0
        self.started = queue.Queue()
        self.stopped = queue.Queue()

    def on_event(self, ev):
        if ev.state != "LEADER":
            return
        with self.mu:
            self.bound = ev.valid_until_ns
            if not ev.renewal and not self.grant_recv:
                self.grant_recv = ev.received_ns

    def work(self, leadership):
        self.started.put(leadership.token)
        while not leadership.wait(0.005):
            if leadership.is_leader():
                with self.mu:
                    self.last_work = monotonic_ns()
        with self.mu:
            self.stopped_at = monotonic_ns()
        self.stopped.put(leadership.cause)


def grant_of(campaign_addr, namespace, name):
    """The current grant's acquire time (the granting controller's wall clock, on this host) and
    token, from the sidecar's Leader answer."""
    import grpc
    from mcl_election.v1 import election_pb2 as pb, election_pb2_grpc as pb_grpc
    with grpc.insecure_channel(campaign_addr) as ch:
        resp = pb_grpc.ElectionStub(ch).Leader(pb.LeaderRequest(lock=pb.LockRef(namespace=namespace, name=name)), timeout=10)
    return resp.leader.acquire_time.ToNanoseconds(), resp.leader.fencing_token


def main():
    addr_a, addr_b = os.environ["MCL_SIDECAR_ADDR"], os.environ["MCL_SIDECAR_ADDR_2"]
    pid = int(os.environ["MCL_SIDECAR_PID"])
    ns = os.environ.get("MCL_NAMESPACE", "")
    name = f"py-freeze-{random.randrange(10**12)}"
    a, b = Log(), Log()
    ca = mcl_election.Campaign(name, addr=addr_a, namespace=ns, identity=name + "-a", lease_duration=4, on_event=a.on_event)
    cb = mcl_election.Campaign(name, addr=addr_b, namespace=ns, identity=name + "-b", lease_duration=4, on_event=b.on_event)
    threads = [threading.Thread(target=ca.run, args=(a.work,), daemon=True),
               threading.Thread(target=cb.run, args=(b.work,), daemon=True)]
    failures = []

    def check(ok, what, detail=""):
        print(("ok - " if ok else "not ok - ") + "python: " + what, flush=True)
        if not ok:
            print("#   " + detail, flush=True)
            failures.append(what)

    threads[0].start()
    try:
        a.started.get(timeout=30)
    except queue.Empty:
        check(False, "frozen sidecar: the first candidate leads", "no LEADER within 30 s")
        return 1
    threads[1].start()
    time.sleep(1)
    frozen_at = monotonic_ns()
    os.kill(pid, signal.SIGSTOP)
    try:
        try:
            a.stopped.get(timeout=15)
            b.started.get(timeout=30)
        except queue.Empty:
            check(False, "frozen sidecar: the leader stops and the other candidate is granted", "timed out")
            return 1
    finally:
        os.kill(pid, signal.SIGCONT)
    acquire_wall_ns, token = grant_of(addr_b, ns, name)
    grant = monotonic_ns() - (time.time_ns() - acquire_wall_ns)  # wall -> CLOCK_MONOTONIC, this host
    with a.mu, b.mu:
        ms = lambda ns_: ns_ / 1e6
        print(f"# a: frozen at 0, last work {ms(a.last_work - frozen_at):+.0f} ms, stopped "
              f"{ms(a.stopped_at - frozen_at):+.0f} ms, bound {ms(a.bound - frozen_at):+.0f} ms; b: granted "
              f"{ms(grant - frozen_at):+.0f} ms, LEADER received {ms(b.grant_recv - frozen_at):+.0f} ms", flush=True)
        check(a.stopped_at <= a.bound, "frozen sidecar: leader work stopped at or before its bound",
              f"{ms(a.stopped_at - a.bound):.1f} ms after")
        check(a.last_work <= a.stopped_at and a.stopped_at < grant,
              "frozen sidecar: leader work stopped before the other candidate was granted",
              f"stopped {ms(a.stopped_at - grant):.1f} ms after the grant")
        check(a.stopped_at < b.grant_recv, "frozen sidecar: ... and before its LEADER arrived")
        print(f"FREEZE lang=python stop_before_bound_ms={ms(a.bound - a.stopped_at):.1f} "
              f"stop_before_grant_ms={ms(grant - a.stopped_at):.1f} "
              f"stop_before_leader_event_ms={ms(b.grant_recv - a.stopped_at):.1f} "
              f"freeze_to_stop_ms={ms(a.stopped_at - frozen_at):.1f}", flush=True)
    for campaign in (ca, cb):
        campaign.close()
    for t in threads:
        t.join(10)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
