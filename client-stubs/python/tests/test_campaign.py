"""Unit tests of the blocking campaign against the fake sidecar."""

import queue
import threading
import time
import unittest

import grpc

import mcl_election
from mcl_election import monotonic_ns
from mcl_election.v1 import election_pb2 as pb
from tests.fake_sidecar import FakeSidecar


class Recorder:
    """A leader function that records each term's token, and when and why it stopped."""

    def __init__(self):
        self.starts = queue.Queue()
        self.stops = queue.Queue()

    def __call__(self, leadership):
        self.starts.put(leadership.token)
        leadership.lost.wait()
        self.stops.put((leadership.token, monotonic_ns(), leadership.cause))

    def started(self, want):
        try:
            got = self.starts.get(timeout=5)
        except queue.Empty:
            raise AssertionError(f"fn did not start (token {want})") from None
        assert got == want, f"fn started with token {got}, want {want}"

    def stopped(self):
        try:
            return self.stops.get(timeout=5)
        except queue.Empty:
            raise AssertionError("fn was not stopped") from None

    def quiet(self, seconds):
        time.sleep(seconds)
        assert self.starts.empty() and self.stops.empty(), "fn started or stopped when it must not"


class CampaignTest(unittest.TestCase):
    def setUp(self):
        self.fake = FakeSidecar()
        self.addCleanup(self.fake.stop)

    def start(self, fn, **kwargs):
        kwargs.setdefault("min_backoff", 0.02)
        campaign = mcl_election.Campaign("lock", addr=self.fake.addr, **kwargs)
        result = queue.Queue()

        def body():
            try:
                result.put(("ok", campaign.run(fn)))
            except BaseException as e:
                result.put(("error", e))
        t = threading.Thread(target=body, daemon=True)
        t.start()

        def cleanup():
            campaign.close()
            t.join(5)
            self.assertFalse(t.is_alive(), "run() did not return after stop()")
        self.addCleanup(cleanup)
        return campaign, result

    def result(self, result):
        try:
            return result.get(timeout=5)
        except queue.Empty:
            raise AssertionError("run() did not return") from None

    def test_lost_stops_leader_work(self):
        r = Recorder()
        campaign, _ = self.start(r, namespace="ns", identity="me", lease_duration=4)
        s = self.fake.next()
        self.assertEqual((s.request.lock.namespace, s.request.lock.name, s.request.identity,
                          s.request.lease_duration_seconds), ("ns", "lock", "me", 4))
        s.state(pb.FOLLOWER, 3)
        r.quiet(0.1)
        self.assertFalse(campaign.is_leader())
        s.leader(7, 10)
        r.started(7)
        self.assertEqual(campaign.fencing_token, 7)
        s.state(pb.LOST, 7)
        self.assertEqual(r.stopped()[2], mcl_election.LOST)
        self.assertFalse(campaign.is_leader())

    def test_deadline_lapses_without_renewal(self):
        r = Recorder()
        events = []
        campaign, _ = self.start(r, on_event=events.append)
        s = self.fake.next()
        bound = s.leader(5, 0.4)
        r.started(5)
        self.assertEqual(campaign.valid_until_ns, bound)
        token, at, cause = r.stopped()
        self.assertEqual(cause, mcl_election.DEADLINE)
        self.assertLessEqual(at, bound, "leader work stopped after the bound")
        self.assertLess(bound - at, 0.3e9, "leader work stopped far earlier than the margin")
        self.assertFalse(campaign.is_leader())
        deadline = time.monotonic() + 5
        while len(events) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual([(e.state, e.local) for e in events], [("LEADER", False), ("LOST", True)])
        # The stream stays open: the same grant confirmed again starts fn again.
        s.leader(5, 10)
        r.started(5)

    def test_renewal_extends_the_bound(self):
        r = Recorder()
        renewals = []
        campaign, _ = self.start(r, on_event=lambda e: e.renewal and renewals.append(e))
        s = self.fake.next()
        s.leader(9, 0.3)
        r.started(9)
        for _ in range(12):  # 1.2 s of renewals, each 0.3 s ahead: four times the first bound
            time.sleep(0.1)
            last = s.leader(9, 0.3)
            self.assertTrue(campaign.is_leader())
        r.quiet(0)
        token, at, cause = r.stopped()
        self.assertEqual(cause, mcl_election.DEADLINE)
        self.assertLessEqual(at, last)
        self.assertEqual(len(renewals), 12)

    def test_stream_end_stops_and_reconnect_never_reports_leader(self):
        r = Recorder()
        campaign, _ = self.start(r)
        s = self.fake.next()
        s.leader(11, 10)
        r.started(11)
        s.break_it()
        self.assertEqual(r.stopped()[2], mcl_election.STREAM_ENDED)
        s2 = self.fake.next()
        s2.state(pb.NO_LEADER)
        r.quiet(0.2)
        self.assertFalse(campaign.is_leader(), "leading after a reconnect without a fresh LEADER")
        s2.leader(12, 10)
        r.started(12)

    def test_clock_check_refuses_to_lead(self):
        r = Recorder()
        _, result = self.start(r)
        s = self.fake.next()
        s.leader(3, 3600, sent_ns=monotonic_ns() + 3600 * 10**9)
        kind, err = self.result(result)
        self.assertIsInstance(err, mcl_election.ClockError)
        self.assertIn("do not share CLOCK_MONOTONIC", str(err))
        r.quiet(0.05)
        s.wait_closed()

    def test_missing_validity_refused_by_default(self):
        r = Recorder()
        _, result = self.start(r)
        s = self.fake.next()
        s.unbounded_leader(3)
        kind, err = self.result(result)
        self.assertIsInstance(err, mcl_election.NoValidityError)
        r.quiet(0.05)
        s.wait_closed()

    def test_missing_validity_allowed_leads_until_lost(self):
        r = Recorder()
        campaign, _ = self.start(r, allow_missing_validity=True)
        s = self.fake.next()
        s.unbounded_leader(3)
        r.started(3)
        s.unbounded_leader(3)
        r.quiet(0.2)
        self.assertTrue(campaign.is_leader())
        s.state(pb.LOST, 3)
        self.assertEqual(r.stopped()[2], mcl_election.LOST)

    def test_leader_past_its_bound_is_ignored(self):
        r = Recorder()
        campaign, _ = self.start(r)
        self.fake.next().leader(4, 0.05)  # within the stop margin: already over
        r.quiet(0.2)
        self.assertFalse(campaign.is_leader())

    def test_fn_returning_resigns_and_ends_run(self):
        _, result = self.start(lambda leadership: "done")
        s = self.fake.next()
        s.leader(2, 10)
        self.assertEqual(self.result(result), ("ok", "done"))
        s.wait_closed()

    def test_stop_ends_work_and_resigns(self):
        r = Recorder()
        campaign, result = self.start(r)
        s = self.fake.next()
        s.leader(2, 10)
        r.started(2)
        campaign.stop()
        self.assertEqual(r.stopped()[2], mcl_election.STOPPED)
        self.assertEqual(self.result(result), ("ok", None))
        s.wait_closed()

    def test_permanent_errors_end_run(self):
        for code, details in [(grpc.StatusCode.NOT_FOUND, 'namespace "nope" does not exist'),
                              (grpc.StatusCode.INVALID_ARGUMENT, "lock name: invalid"),
                              (grpc.StatusCode.ALREADY_EXISTS, "identity me already campaigns")]:
            self.fake.refuse.put((code, details))
            _, result = self.start(Recorder())
            kind, err = self.result(result)
            self.assertIsInstance(err, mcl_election.CampaignError)
            self.assertIn(details, str(err))

    def test_unavailable_is_retried(self):
        self.fake.refuse.put((grpc.StatusCode.UNAVAILABLE, "apiserver unreachable"))
        r = Recorder()
        self.start(r)
        self.fake.next().leader(8, 10)
        r.started(8)

    def test_config_errors(self):
        with self.assertRaisesRegex(ValueError, "name"):
            mcl_election.Campaign("")
        with self.assertRaisesRegex(ValueError, "lease_duration"):
            mcl_election.Campaign("l", lease_duration=1)


if __name__ == "__main__":
    unittest.main()
