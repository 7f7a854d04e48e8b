"""The blocking campaign: leader work runs on a thread of its own and is told to stop through its
Leadership (an Event and is_leader()); threads cannot be killed, so the work must look."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Optional

import grpc

from mcl_election import _common as c
from mcl_election.v1 import election_pb2 as pb
from mcl_election.v1 import election_pb2_grpc as pb_grpc

log = logging.getLogger("mcl_election")


class Leadership(c.LeadershipBase):
    """One term of leadership, handed to the leader function.

    token        the fencing token of the grant; pass it to storage that must fence.
    lost         a threading.Event, set the moment leadership ends (LOST, the bound minus the
                 stop margin, the stream's end, stop()); `cause` then says which.
    is_leader()  True while this term lasts: consults CLOCK_MONOTONIC against the bound.
    wait(t)      waits up to t seconds for the end of leadership; True once it ended.
    """

    def __init__(self, campaign: "Campaign", token: int):
        super().__init__(campaign, token, threading.Event())

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self.lost.wait(timeout)


class _Term:
    def __init__(self, leadership: Leadership):
        self.leadership = leadership
        self.thread: Optional[threading.Thread] = None
        self.timer: Optional[threading.Timer] = None
        self.result: Any = None
        self.error: Optional[BaseException] = None


class Campaign:
    """A candidacy for one lock. `run(fn)` campaigns and calls fn(leadership) on a thread of its
    own whenever this candidate leads; see the package documentation.

    Keyword arguments are those of mcl_election.Config (namespace, identity, addr,
    lease_duration, stop_margin, allow_missing_validity, min_backoff, max_backoff, on_event),
    plus `channel` to use an existing grpc.Channel instead of dialling addr."""

    def __init__(self, name: str, *, channel: Optional[grpc.Channel] = None, **kwargs):
        self.cfg = c.Config(name=name, **kwargs)
        self._own_channel = channel is None
        self._channel = channel or grpc.insecure_channel(self.cfg.addr)
        self._stub = pb_grpc.ElectionStub(self._channel)
        self._mu = threading.Lock()
        self._token = 0
        self._stop_at = 0
        self._valid_until = 0
        self._stopping = threading.Event()
        self._queue: Optional[queue.Queue] = None

    # --- state, safe from any thread -----------------------------------------------------------
    @property
    def fencing_token(self) -> Optional[int]:
        """The token of the grant this candidate leads under now, or None (consults the bound)."""
        with self._mu:
            token, stop_at = self._token, self._stop_at
        return token if token and c.monotonic_ns() < stop_at else None

    def is_leader(self) -> bool:
        """Whether this candidate leads now: a LEADER on the current stream, nothing ended it,
        and its bound (minus the stop margin) is still ahead on CLOCK_MONOTONIC."""
        return self.fencing_token is not None

    @property
    def valid_until_ns(self) -> Optional[int]:
        """The bound of the current leadership on CLOCK_MONOTONIC, or None."""
        with self._mu:
            return self._valid_until if self._token else None

    def _set_leading(self, token: int, valid_until: int):
        with self._mu:
            self._token, self._valid_until = token, valid_until
            self._stop_at = self.cfg.stop_at(valid_until) if token else 0

    def stop(self):
        """Ends run(): leader work is stopped and the campaign resigns. Safe from any thread and
        from a signal handler."""
        self._stopping.set()
        q = self._queue
        if q is not None:
            q.put(("stop",))

    def close(self):
        self.stop()
        if self._own_channel:
            self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- the campaign ----------------------------------------------------------------------------
    def run(self, fn: Callable[[Leadership], Any]) -> Any:
        """Campaigns until stop(), until fn returns on its own while leading (then resigns and
        returns fn's result, or raises its exception), or until a CampaignError."""
        backoff = self.cfg.min_backoff
        had_stream = False
        while not self._stopping.is_set():
            outcome = _Stream(self, fn).run(had_stream)
            self._set_leading(0, 0)
            had_stream = had_stream or outcome.got_event
            if outcome.final:
                if outcome.error is not None:
                    raise outcome.error
                return outcome.result
            if self._stopping.is_set():
                break
            if outcome.got_event:
                backoff = self.cfg.min_backoff
            wait, backoff = self.cfg.backoff(backoff)
            log.warning("mcl_election: %s: campaign stream ended (%s); reconnecting in %.2fs",
                     self.cfg.describe(), outcome.why, wait)
            if self._stopping.wait(wait):
                break
        return None


class _Stream:
    """One Campaign stream. Its run loop, on run()'s thread, is the only one that changes state;
    the reader thread, the term's thread and its lapse timer only post to the queue (the timer
    also ends the Leadership at once, without waiting for the loop)."""

    def __init__(self, campaign: Campaign, fn):
        self.c = campaign
        self.cfg = campaign.cfg
        self.fn = fn
        self.q: queue.Queue = queue.Queue()
        self.term: Optional[_Term] = None

    def run(self, had_stream: bool) -> c.Outcome:
        self.c._queue = self.q
        if self.c._stopping.is_set():
            return c.Outcome()
        call = self.c._stub.Campaign(self.cfg.request())
        threading.Thread(target=self._read, args=(call,), daemon=True, name="mcl-campaign-reader").start()
        got_event = False
        try:
            while True:
                item = self.q.get()
                kind = item[0]
                if kind == "stop":
                    self._stop_term(c.STOPPED)
                    return c.Outcome(got_event=got_event)
                if kind == "lapse":
                    if item[1] is self.term:
                        self._end_lapsed()
                elif kind == "done":
                    term = item[1]
                    if term is self.term:
                        if not term.leadership.lost.is_set():
                            # fn returned on its own while leading: resign, hand back its result.
                            self._stop_term(c.STOPPED)
                            return c.Outcome(final=True, result=term.result, error=term.error, got_event=True)
                        self._end_lapsed()
                elif kind == "end":
                    err = item[1]
                    token = self.term.leadership.token if self.term else 0
                    self._stop_term(c.STREAM_ENDED)
                    if token:
                        self._emit(c.local_lost(token, f"campaign stream ended: {c.describe_end(err)}"))
                    if self.c._stopping.is_set():
                        return c.Outcome(got_event=got_event)
                    if isinstance(err, grpc.RpcError):
                        perm = c.permanent(self.cfg, err.code(), err.details(), had_stream)
                        if perm is not None:
                            return c.Outcome(final=True, error=perm, got_event=got_event)
                    return c.Outcome(got_event=got_event, why=c.describe_end(err))
                else:  # an event
                    got_event = True
                    try:
                        self._handle(item[1], item[2])
                    except c.CampaignError as e:
                        self._stop_term(c.LOST)
                        return c.Outcome(final=True, error=e, got_event=True)
        finally:
            call.cancel()  # ends the stream: the sidecar resigns this candidacy

    def _read(self, call):
        try:
            for ev in call:
                self.q.put(("event", ev, c.monotonic_ns()))
            self.q.put(("end", None))
        except grpc.RpcError as err:
            self.q.put(("end", err))

    def _handle(self, ev: pb.LeadershipEvent, received_ns: int):
        if ev.state != pb.LEADER:
            self._stop_term(c.LOST)
            self._emit(c.event_of(ev, received_ns))
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
                self._end_lapsed()
            else:
                self._stop_term(c.LOST)
                self._emit(c.local_lost(term.leadership.token, "a new grant arrived without LOST"))
        self._emit(c.event_of(ev, received_ns))
        self._start(token, valid_until)

    def _start(self, token: int, valid_until: int):
        wait_ns = self.cfg.stop_at(valid_until) - c.monotonic_ns()
        if wait_ns <= 0:
            log.warning("mcl_election: %s: LEADER (token %d) arrived after its bound; not leading "
                        "until the next event", self.cfg.describe(), token)
            return
        term = _Term(Leadership(self.c, token))
        self.term = term
        self.c._set_leading(token, valid_until)
        if valid_until != c.UNBOUNDED:
            term.timer = threading.Timer(wait_ns / 1e9, self._lapse, args=(term,))
            term.timer.daemon = True
            term.timer.start()

        def body():
            try:
                term.result = self.fn(term.leadership)
            except BaseException as e:  # handed to run()'s caller
                term.error = e
            self.q.put(("done", term))

        term.thread = threading.Thread(target=body, daemon=True, name=f"mcl-leader-{token}")
        term.thread.start()

    def _lapse(self, term: _Term):
        # On the timer's thread: end the leadership now, then tell the loop.
        term.leadership._end(c.DEADLINE)
        self.q.put(("lapse", term))

    def _rearm(self, term: _Term, valid_until: int) -> bool:
        if term.timer is None:
            return valid_until == c.UNBOUNDED
        if valid_until == c.UNBOUNDED or term.leadership.lost.is_set():
            return False
        term.timer.cancel()
        if term.leadership.lost.is_set():  # fired meanwhile
            return False
        wait_ns = self.cfg.stop_at(valid_until) - c.monotonic_ns()
        if wait_ns <= 0:
            self._lapse(term)
            return False
        term.timer = threading.Timer(wait_ns / 1e9, self._lapse, args=(term,))
        term.timer.daemon = True
        term.timer.start()
        return True

    def _stop_term(self, cause: str):
        self.c._set_leading(0, 0)
        term, self.term = self.term, None
        if term is None:
            return
        if term.timer is not None:
            term.timer.cancel()
        term.leadership._end(cause)
        if term.thread is not threading.current_thread():
            term.thread.join()

    def _end_lapsed(self):
        token = self.term.leadership.token
        self._stop_term(c.DEADLINE)
        self._emit(c.local_lost(token, "validity bound passed without a renewal"))

    def _emit(self, event: c.Event):
        if self.cfg.on_event is not None:
            self.cfg.on_event(event)


def run_while_leader(name: str, fn: Callable[[Leadership], Any], **kwargs) -> Any:
    """Campaign(name, **kwargs).run(fn), closing the campaign afterwards."""
    with Campaign(name, **kwargs) as campaign:
        return campaign.run(fn)
