#!/usr/bin/env python3
"""Campaign for an mcl lock through the sidecar; do leader work only while leading.

The reference example for Python (client-stubs/test/run.sh runs it against a real sidecar).
  MCL_SIDECAR_ADDR  the sidecar (default 127.0.0.1:7400)
  MCL_LOCK          lock name (default example-lock); MCL_NAMESPACE (default: the sidecar's)
  MCL_IDENTITY      candidate identity (default: the sidecar's, i.e. pod name + uid)
Needs: pip install -r requirements.txt; run from this folder (or put it on PYTHONPATH).
"""
import os
import signal
import sys
import threading

import grpc

from mcl.v1 import election_pb2 as pb
from mcl.v1 import election_pb2_grpc as pb_grpc


def leader_work(token, stop):
    """Stands for what only the leader may do; pass the fencing token to what you write."""
    while not stop.is_set():
        print(f"leader work token={token}", flush=True)
        stop.wait(1.0)


def main():
    channel = grpc.insecure_channel(os.environ.get("MCL_SIDECAR_ADDR", "127.0.0.1:7400"))
    stub = pb_grpc.ElectionStub(channel)
    events = stub.Campaign(pb.CampaignRequest(
        lock=pb.LockRef(namespace=os.environ.get("MCL_NAMESPACE", ""),
                        name=os.environ.get("MCL_LOCK", "example-lock")),
        identity=os.environ.get("MCL_IDENTITY", "")))

    # SIGTERM (pod shutdown) or Ctrl-C cancels the Campaign stream: that is how we resign.
    stopping = threading.Event()

    def on_signal(signum, frame):
        stopping.set()
        events.cancel()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    work = None  # (thread, stop event) while we lead

    def stop_work():
        nonlocal work
        if work:
            work[1].set()
            work[0].join()  # no leader work happens after this returns
            work = None

    try:
        for ev in events:
            print(f"event state={pb.State.Name(ev.state)} leader={ev.leader.identity} "
                  f"cluster={ev.leader.cluster} token={ev.leader.fencing_token}", flush=True)
            if ev.state == pb.LEADER:
                stop_work()
                stop = threading.Event()
                work = (threading.Thread(target=leader_work, args=(ev.leader.fencing_token, stop)), stop)
                work[0].start()
            elif ev.state == pb.LOST:
                stop_work()  # stop acting as leader at once
    except grpc.RpcError as err:
        stop_work()
        if not stopping.is_set():
            sys.exit(f"campaign stream ended: {err.code().name}: {err.details()}")
    stop_work()
    print("resigned, bye", flush=True)
    channel.close()


if __name__ == "__main__":
    main()
