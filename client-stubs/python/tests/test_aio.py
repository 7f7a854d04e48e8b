"""Unit tests of the asyncio campaign (grpc.aio) against the fake sidecar."""

import asyncio
import time
import unittest

import grpc

import mcl_election
from mcl_election import aio, monotonic_ns
from mcl_election.v1 import election_pb2 as pb
from tests.fake_sidecar import FakeSidecar


class Recorder:
    """A leader coroutine that records each term's token, and when and why it was cancelled."""

    def __init__(self):
        self.starts = asyncio.Queue()
        self.stops = asyncio.Queue()

    async def __call__(self, leadership):
        self.starts.put_nowait(leadership.token)
        try:
            await asyncio.sleep(3600)
        finally:
            self.stops.put_nowait((leadership.token, monotonic_ns(), leadership.cause))

    async def started(self, want):
        got = await asyncio.wait_for(self.starts.get(), 5)
        assert got == want, f"fn started with token {got}, want {want}"

    async def stopped(self):
        return await asyncio.wait_for(self.stops.get(), 5)

    async def quiet(self, seconds):
        await asyncio.sleep(seconds)
        assert self.starts.empty() and self.stops.empty(), "fn started or stopped when it must not"


async def next_stream(fake):
    return await asyncio.get_running_loop().run_in_executor(None, fake.next)


class AioCampaignTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.fake = FakeSidecar()
        self.addCleanup(self.fake.stop)
        self.campaigns = []

    async def asyncTearDown(self):
        for campaign, task in self.campaigns:
            await campaign.close()
            await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)

    def start(self, fn, **kwargs):
        kwargs.setdefault("min_backoff", 0.02)
        campaign = aio.Campaign("lock", addr=self.fake.addr, **kwargs)
        task = asyncio.ensure_future(campaign.run(fn))
        self.campaigns.append((campaign, task))
        return campaign, task

    async def test_lost_cancels_leader_work(self):
        r = Recorder()
        campaign, _ = self.start(r, identity="me")
        s = await next_stream(self.fake)
        self.assertEqual(s.request.identity, "me")
        s.leader(7, 10)
        await r.started(7)
        self.assertEqual(campaign.fencing_token, 7)
        s.state(pb.LOST, 7)
        self.assertEqual((await r.stopped())[2], mcl_election.LOST)
        self.assertFalse(campaign.is_leader())

    async def test_deadline_lapses_without_renewal(self):
        r = Recorder()
        events = []
        campaign, _ = self.start(r, on_event=events.append)
        s = await next_stream(self.fake)
        bound = s.leader(5, 0.4)
        await r.started(5)
        token, at, cause = await r.stopped()
        self.assertEqual(cause, mcl_election.DEADLINE)
        self.assertLessEqual(at, bound, "leader work stopped after the bound")
        self.assertFalse(campaign.is_leader())
        await asyncio.sleep(0.05)
        self.assertEqual([(e.state, e.local) for e in events], [("LEADER", False), ("LOST", True)])
        s.leader(5, 10)
        await r.started(5)

    async def test_renewal_extends_the_bound(self):
        r = Recorder()
        campaign, _ = self.start(r)
        s = await next_stream(self.fake)
        s.leader(9, 0.3)
        await r.started(9)
        for _ in range(12):
            await asyncio.sleep(0.1)
            last = s.leader(9, 0.3)
            self.assertTrue(campaign.is_leader())
        await r.quiet(0)
        token, at, cause = await r.stopped()
        self.assertEqual(cause, mcl_election.DEADLINE)
        self.assertLessEqual(at, last)

    async def test_stream_end_and_reconnect_never_reports_leader(self):
        r = Recorder()
        campaign, _ = self.start(r)
        s = await next_stream(self.fake)
        s.leader(11, 10)
        await r.started(11)
        s.break_it()
        self.assertEqual((await r.stopped())[2], mcl_election.STREAM_ENDED)
        s2 = await next_stream(self.fake)
        s2.state(pb.NO_LEADER)
        await r.quiet(0.2)
        self.assertFalse(campaign.is_leader())
        s2.leader(12, 10)
        await r.started(12)

    async def test_clock_check_and_missing_validity(self):
        for script, error in [(lambda s: s.leader(3, 3600, sent_ns=monotonic_ns() + 3600 * 10**9), mcl_election.ClockError),
                              (lambda s: s.unbounded_leader(3), mcl_election.NoValidityError)]:
            r = Recorder()
            _, task = self.start(r)
            s = await next_stream(self.fake)
            script(s)
            with self.assertRaises(error):
                await asyncio.wait_for(task, 5)
            await r.quiet(0.05)
            s.wait_closed()

    async def test_fn_returning_resigns(self):
        async def job(leadership):
            return "done"
        _, task = self.start(job)
        s = await next_stream(self.fake)
        s.leader(2, 10)
        self.assertEqual(await asyncio.wait_for(task, 5), "done")
        s.wait_closed()

    async def test_cancel_stops_work_and_resigns(self):
        r = Recorder()
        _, task = self.start(r)
        s = await next_stream(self.fake)
        s.leader(2, 10)
        await r.started(2)
        task.cancel()
        self.assertEqual((await r.stopped())[2], mcl_election.STOPPED)
        with self.assertRaises(asyncio.CancelledError):
            await task
        s.wait_closed()

    async def test_not_found_namespace_is_permanent(self):
        self.fake.refuse.put((grpc.StatusCode.NOT_FOUND, 'namespace "nope" does not exist'))
        _, task = self.start(Recorder())
        with self.assertRaisesRegex(mcl_election.CampaignError, 'namespace "nope"'):
            await asyncio.wait_for(task, 5)


if __name__ == "__main__":
    unittest.main()
