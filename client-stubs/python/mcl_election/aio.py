"""The asyncio campaign (grpc.aio): leader work is a coroutine, run as a task that is cancelled
(asyncio cancellation) the moment leadership ends.

    async def lead(leadership):
        while True:
            await do_leader_things(leadership.token)   # cancelled at LOST or at the bound
            await asyncio.sleep(1)

    await mcl_election.aio.run_while_leader("my-lock", lead)

The bound is enforced with loop.call_later, which runs on time.monotonic() (CLOCK_MONOTONIC).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Optional

import grpc
import grpc.aio

from mcl_election import _common as c
from mcl_election.v1 import election_pb2 as pb
from mcl_election.v1 import election_pb2_grpc as pb_grpc

log = logging.getLogger("mcl_election")


class Leadership(c.LeadershipBase):
    """One term of leadership (see mcl_election.Leadership); `lost` is an asyncio.Event."""

    def __init__(self, campaign: "Campaign", token: int):
        super().__init__(campaign, token, asyncio.Event())


class _Term:
    def __init__(self, leadership: Leadership):
        self.leadership = leadership
        self.task: Optional[asyncio.Task] = None
        self.timer: Optional[asyncio.TimerHandle] = None


class Campaign:
    """A candidacy for one lock; `await run(fn)` campaigns and runs `fn(leadership)` as a task
    whenever this candidate leads. Arguments as for mcl_election.Campaign (channel: a
    grpc.aio.Channel)."""

    def __init__(self, name: str, *, channel: Optional[grpc.aio.Channel] = None, **kwargs):
        self.cfg = c.Config(name=name, **kwargs)
        self._own_channel = channel is None
        self._channel = channel or grpc.aio.insecure_channel(self.cfg.addr)
        self._stub = pb_grpc.ElectionStub(self._channel)
        self._token = 0
        self._stop_at = 0
        self._valid_until = 0
        self._stopping = False
        self._queue: Optional[asyncio.Queue] = None
        self._stop_event: Optional[asyncio.Event] = None

    @property
    def fencing_token(self) -> Optional[int]:
        """The token of the grant this candidate leads under now, or None (consults the bound)."""
        if self._token and c.monotonic_ns() < self._stop_at:
            return self._token
        return None

    def is_leader(self) -> bool:
        return self.fencing_token is not None

    @property
    def valid_until_ns(self) -> Optional[int]:
        return self._valid_until if self._token else None

    def _set_leading(self, token: int, valid_until: int):
        self._token, self._valid_until = token, valid_until
        self._stop_at = self.cfg.stop_at(valid_until) if token else 0

    def stop(self):
        """Ends run() (call it on the event loop's thread)."""
        self._stopping = True
        if self._queue is not None:
            self._queue.put_nowait(("stop",))
        if self._stop_event is not None:
            self._stop_event.set()

    async def close(self):
        self.stop()
        if self._own_channel:
            await self._channel.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def run(self, fn: Callable[[Leadership], Awaitable[Any]]) -> Any:
        """Campaigns until stop() or cancellation of the caller (then resigns), until fn returns
        on its own while leading (resigns; returns its result or raises its exception), or until a
        CampaignError."""
        self._stop_event = asyncio.Event()
        backoff = self.cfg.min_backoff
        had_stream = False
        while not self._stopping:
            outcome = await _Stream(self, fn).run(had_stream)
            self._set_leading(0, 0)
            had_stream = had_stream or outcome.got_event
            if outcome.final:
                if outcome.error is not None:
                    raise outcome.error
                return outcome.result
            if self._stopping:
                break
            if outcome.got_event:
                backoff = self.cfg.min_backoff
            wait, backoff = self.cfg.backoff(backoff)
            log.warning("mcl_election: %s: campaign stream ended (%s); reconnecting in %.2fs",
                     self.cfg.describe(), outcome.why, wait)
            try:
                await asyncio.wait_for(self._stop_event.wait(), wait)
            except asyncio.TimeoutError:
                pass
        return None


class _Stream:
    def __init__(self, campaign: Campaign, fn):
        self.c = campaign
        self.cfg = campaign.cfg
        self.fn = fn
        self.q: asyncio.Queue = asyncio.Queue()
        self.term: Optional[_Term] = None

    async def run(self, had_stream: bool) -> c.Outcome:
        self.c._queue = self.q
        call = self.c._stub.Campaign(self.cfg.request())
        reader = asyncio.ensure_future(self._read(call))
        got_event = False
        try:
            while True:
                item = await self.q.get()
                kind = item[0]
                if kind == "stop":
                    await self._stop_term(c.STOPPED)
                    return c.Outcome(got_event=got_event)
                if kind == "lapse":
                    if item[1] is self.term:
                        await self._end_lapsed()
                elif kind == "done":
                    term = item[1]
                    if term is self.term:
                        if not term.leadership.lost.is_set():
                            await self._stop_term(c.STOPPED)
                            t = term.task
                            return c.Outcome(final=True, result=None if t.exception() else t.result(),
                                            error=t.exception(), got_event=True)
                        await self._end_lapsed()
                elif kind == "end":
                    err = item[1]
                    token = self.term.leadership.token if self.term else 0
                    await self._stop_term(c.STREAM_ENDED)
                    if token:
                        self._emit(c.local_lost(token, f"campaign stream ended: {c.describe_end(err)}"))
                    if self.c._stopping:
                        return c.Outcome(got_event=got_event)
                    if isinstance(err, grpc.RpcError):
                        perm = c.permanent(self.cfg, err.code(), err.details(), had_stream)
                        if perm is not None:
                            return c.Outcome(final=True, error=perm, got_event=got_event)
                    return c.Outcome(got_event=got_event, why=c.describe_end(err))
                else:
                    got_event = True
                    try:
                        self._handle(item[1], item[2])
                    except c.CampaignError as e:
                        await self._stop_term(c.LOST)
                        return c.Outcome(final=True, error=e, got_event=True)
                    await self._settle()
        except asyncio.CancelledError:
            # The caller cancelled run(): stop leader work, resign, and let the cancellation on.
            await self._stop_term(c.STOPPED)
            raise
        finally:
            call.cancel()  # ends the stream: the sidecar resigns this candidacy
            reader.cancel()

    async def _read(self, call):
        try:
            async for ev in call:
                self.q.put_nowait(("event", ev, c.monotonic_ns()))
            self.q.put_nowait(("end", None))
        except grpc.RpcError as err:
            self.q.put_nowait(("end", err))

    def _handle(self, ev: pb.LeadershipEvent, received_ns: int):
        # Synchronous so that nothing else runs between the decision and its effect; terms to
        # stop are collected in self._pending and awaited by _settle.
        self._pending = []
        if ev.state != pb.LEADER:
            self._pending.append(("stop", c.LOST, c.event_of(ev, received_ns)))
            return
        valid_until = c.leader_bound(self.cfg, ev, received_ns)
        token = ev.leader.fencing_token
        term = self.term
        if term is not None:
            if term.leadership.token == token and self._rearm(term, valid_until):
                self.c._set_leading(token, valid_until)
                self._emit(c.event_of(ev, received_ns, renewal=True))
                return
            if term.leadership.lost.is_set():
                self._pending.append(("stop", c.DEADLINE, c.local_lost(token, "validity bound passed without a renewal")))
            else:
                self._pending.append(("stop", c.LOST, c.local_lost(term.leadership.token, "a new grant arrived without LOST")))
        self._pending.append(("start", token, valid_until, c.event_of(ev, received_ns)))

    async def _settle(self):
        for step in self._pending:
            if step[0] == "stop":
                await self._stop_term(step[1])
                self._emit(step[2])
            else:
                self._emit(step[3])
                self._start(step[1], step[2])
        self._pending = []

    def _start(self, token: int, valid_until: int):
        wait_ns = self.cfg.stop_at(valid_until) - c.monotonic_ns()
        if wait_ns <= 0:
            log.warning("mcl_election: %s: LEADER (token %d) arrived after its bound; not leading "
                        "until the next event", self.cfg.describe(), token)
            return
        term = _Term(Leadership(self.c, token))
        self.term = term
        self.c._set_leading(token, valid_until)
        loop = asyncio.get_running_loop()
        if valid_until != c.UNBOUNDED:
            term.timer = loop.call_later(wait_ns / 1e9, self._lapse, term)
        term.task = asyncio.ensure_future(self.fn(term.leadership))
        term.task.add_done_callback(lambda _t: self.q.put_nowait(("done", term)))

    def _lapse(self, term: _Term):
        term.leadership._end(c.DEADLINE)
        term.task.cancel()
        self.q.put_nowait(("lapse", term))

    def _rearm(self, term: _Term, valid_until: int) -> bool:
        if term.timer is None:
            return valid_until == c.UNBOUNDED
        if valid_until == c.UNBOUNDED or term.leadership.lost.is_set():
            return False
        term.timer.cancel()
        wait_ns = self.cfg.stop_at(valid_until) - c.monotonic_ns()
        if wait_ns <= 0:
            self._lapse(term)
            return False
        term.timer = asyncio.get_running_loop().call_later(wait_ns / 1e9, self._lapse, term)
        return True

    async def _stop_term(self, cause: str):
        self.c._set_leading(0, 0)
        term, self.term = self.term, None
        if term is None:
            return
        if term.timer is not None:
            term.timer.cancel()
        term.leadership._end(cause)
        term.task.cancel()
        await asyncio.wait({term.task})
        if not term.task.cancelled():
            term.task.exception()  # retrieved: a failure after the end of leadership is not ours

    async def _end_lapsed(self):
        token = self.term.leadership.token
        await self._stop_term(c.DEADLINE)
        self._emit(c.local_lost(token, "validity bound passed without a renewal"))

    def _emit(self, event: c.Event):
        if self.cfg.on_event is not None:
            self.cfg.on_event(event)


async def run_while_leader(name: str, fn: Callable[[Leadership], Awaitable[Any]], **kwargs) -> Any:
    """Campaign(name, **kwargs).run(fn), closing the campaign afterwards."""
    async with Campaign(name, **kwargs) as campaign:
        return await campaign.run(fn)
