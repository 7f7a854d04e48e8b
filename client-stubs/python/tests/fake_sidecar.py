"""A fake sidecar for the unit tests: a real gRPC server on 127.0.0.1 whose Campaign streams the
test scripts event by event (LEADER with a validity bound, renewals, LOST, a broken stream)."""

import queue
import threading
from concurrent import futures

import grpc
from google.protobuf import duration_pb2

from mcl_election import monotonic_ns
from mcl_election.v1 import election_pb2 as pb
from mcl_election.v1 import election_pb2_grpc as pb_grpc


class FakeStream:
    def __init__(self, request):
        self.request = request
        self.events = queue.Queue()
        self.closed = threading.Event()

    def leader(self, token, valid_s, sent_ns=None):
        """LEADER for token, valid for valid_s seconds from now; returns the bound."""
        now = monotonic_ns() if sent_ns is None else sent_ns
        until = now + int(valid_s * 1e9)
        self.events.put(pb.LeadershipEvent(
            state=pb.LEADER, leader=pb.Leader(identity="me", cluster="c0", fencing_token=token),
            validity=pb.Validity(valid_until_monotonic_ns=until, sent_monotonic_ns=now,
                                 remaining=duration_pb2.Duration(nanos=int(valid_s * 1e9) % 10**9,
                                                                 seconds=int(valid_s)))))
        return until

    def unbounded_leader(self, token):
        self.events.put(pb.LeadershipEvent(state=pb.LEADER, leader=pb.Leader(fencing_token=token)))

    def state(self, state, token=0):
        self.events.put(pb.LeadershipEvent(state=state, leader=pb.Leader(identity="other", fencing_token=token)))

    def break_it(self):
        self.events.put(("end", grpc.StatusCode.UNAVAILABLE, "sidecar restarting"))

    def wait_closed(self, timeout=5):
        assert self.closed.wait(timeout), "the client did not end the Campaign stream"


class FakeSidecar(pb_grpc.ElectionServicer):
    def __init__(self):
        self.streams = queue.Queue()
        self.refuse = queue.Queue()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        pb_grpc.add_ElectionServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.addr = f"127.0.0.1:{self.port}"
        self.server.start()

    def stop(self):
        self.server.stop(0)

    def next(self, timeout=5) -> FakeStream:
        try:
            return self.streams.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no Campaign stream opened") from None

    def Campaign(self, request, context):
        try:
            code, details = self.refuse.get_nowait()
            context.abort(code, details)
        except queue.Empty:
            pass
        s = FakeStream(request)

        def on_done():
            s.closed.set()
            s.events.put(None)
        context.add_callback(on_done)
        self.streams.put(s)
        while True:
            item = s.events.get()
            if item is None:
                return
            if isinstance(item, tuple):
                context.abort(item[1], item[2])
            yield item
