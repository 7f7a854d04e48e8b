"""What the blocking and the asyncio campaigns share: configuration, the clock, errors, and the
reading of one event (validity bound, clock check). Neither does I/O here."""

from __future__ import annotations

import dataclasses
import os
import random
import time
from typing import Callable, Optional

import grpc

from mcl_election.v1 import election_pb2 as pb

DEFAULT_ADDR = "127.0.0.1:7400"
DEFAULT_STOP_MARGIN = 0.1  # seconds before the bound at which leader work is told to stop


def monotonic_ns() -> int:
    """CLOCK_MONOTONIC in nanoseconds: the clock of Validity.valid_until_monotonic_ns."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class CampaignError(Exception):
    """The campaign ended for good: bad input, another live candidacy of this identity, a clock
    that is not the sidecar's, or a sidecar too old to send validity bounds."""


class ClockError(CampaignError):
    """A LEADER event arrived, by this process's CLOCK_MONOTONIC, before the sidecar sent it by
    its own: app and sidecar do not share a clock (another host, another time namespace), so the
    bound means nothing here. The campaign ends without ever acting as leader."""

    def __init__(self, received_ns: int, sent_ns: int):
        super().__init__(
            f"a LEADER event was received at {received_ns} ns on this process's CLOCK_MONOTONIC, "
            f"before the sidecar sent it ({sent_ns} ns on its clock): the app and its sidecar do "
            "not share CLOCK_MONOTONIC (run them on the same node, outside separate time "
            "namespaces); not acting as leader")
        self.received_ns, self.sent_ns = received_ns, sent_ns


class NoValidityError(CampaignError):
    """The sidecar sent LEADER without a validity bound (it is older than this library)."""

    def __init__(self):
        super().__init__(
            "the sidecar sent LEADER without a validity bound (it is older than this client "
            "library); upgrade the sidecar, or pass allow_missing_validity=True to trust LEADER "
            "until LOST or the stream's end (unsafe if the sidecar freezes)")


# Why leadership ended (Leadership.cause).
LOST = "lost"            # the sidecar said LOST, FOLLOWER or NO_LEADER
DEADLINE = "deadline"    # the bound passed without a renewal
STREAM_ENDED = "stream ended"
STOPPED = "stopped"      # the campaign was stopped (resigns)

UNBOUNDED = 2**63 - 1


@dataclasses.dataclass
class Event:
    """One leadership event as the library acted on it (see Config.on_event)."""
    state: str                 # "LEADER", "FOLLOWER", "NO_LEADER", "LOST"
    leader: str                # identity (empty for a local LOST)
    cluster: str
    fencing_token: int
    reason: str
    received_ns: int           # CLOCK_MONOTONIC on receipt (or when the library decided)
    valid_until_ns: int = 0    # the bound of a LEADER
    renewal: bool = False      # a LEADER for the grant already held, with a later bound
    local: bool = False        # a LOST made by the library (bound passed, stream ended)


def event_of(ev: pb.LeadershipEvent, received_ns: int, renewal=False) -> Event:
    return Event(state=pb.State.Name(ev.state), leader=ev.leader.identity, cluster=ev.leader.cluster,
                 fencing_token=ev.leader.fencing_token, reason=ev.reason, received_ns=received_ns,
                 valid_until_ns=ev.validity.valid_until_monotonic_ns if ev.HasField("validity") else 0,
                 renewal=renewal)


def local_lost(token: int, reason: str) -> Event:
    return Event(state="LOST", leader="", cluster="", fencing_token=token, reason=reason,
                 received_ns=monotonic_ns(), local=True)


@dataclasses.dataclass
class Config:
    name: str
    namespace: str = ""
    identity: str = ""
    addr: Optional[str] = None           # default $MCL_SIDECAR_ADDR, else 127.0.0.1:7400
    lease_duration: int = 0              # seconds; 0: the sidecar's default
    stop_margin: float = DEFAULT_STOP_MARGIN
    allow_missing_validity: bool = False
    min_backoff: float = 0.1
    max_backoff: float = 5.0
    on_event: Optional[Callable[[Event], None]] = None

    def __post_init__(self):
        if not self.name:
            raise ValueError("mcl_election: the lock's name is required")
        if self.lease_duration and not 2 <= self.lease_duration <= 3600:
            raise ValueError(f"mcl_election: lease_duration {self.lease_duration} is outside the "
                             "sidecar's range [2, 3600] seconds")
        self.stop_margin = max(0.0, float(self.stop_margin))
        if self.addr is None:
            self.addr = os.environ.get("MCL_SIDECAR_ADDR") or DEFAULT_ADDR

    def request(self) -> pb.CampaignRequest:
        return pb.CampaignRequest(lock=pb.LockRef(namespace=self.namespace, name=self.name),
                                  identity=self.identity,
                                  lease_duration_seconds=int(self.lease_duration))

    def describe(self) -> str:
        return f"{self.namespace or '(sidecar namespace)'}/{self.name}"

    def stop_at(self, valid_until_ns: int) -> int:
        if valid_until_ns == UNBOUNDED:
            return UNBOUNDED
        return valid_until_ns - int(self.stop_margin * 1e9)

    def backoff(self, current: float) -> float:
        """The wait before the next reconnect (with jitter) and the next backoff."""
        return current / 2 + random.uniform(0, current / 2), min(current * 2, self.max_backoff)


def leader_bound(cfg: Config, ev: pb.LeadershipEvent, received_ns: int) -> int:
    """The bound of a LEADER event on CLOCK_MONOTONIC; raises if it must not be trusted."""
    if not ev.HasField("validity"):
        if cfg.allow_missing_validity:
            return UNBOUNDED
        raise NoValidityError()
    if received_ns < ev.validity.sent_monotonic_ns:
        raise ClockError(received_ns, ev.validity.sent_monotonic_ns)
    return ev.validity.valid_until_monotonic_ns


class LeadershipBase:
    """What the blocking and the asyncio Leadership share; `lost` is their own Event type."""

    def __init__(self, campaign, token: int, lost):
        self.token = token
        self.lost = lost
        self.cause: Optional[str] = None
        self._campaign = campaign

    def is_leader(self) -> bool:
        """True while this term lasts: consults CLOCK_MONOTONIC against the bound."""
        return not self.lost.is_set() and self._campaign.fencing_token == self.token

    def _end(self, cause: str):
        if self.cause is None:
            self.cause = cause
        self.lost.set()


class Outcome:
    """How one Campaign stream ended: final (run returns result or raises error) or not (the
    campaign reconnects)."""

    def __init__(self, final=False, result=None, error=None, got_event=False, why=""):
        self.final, self.result, self.error, self.got_event, self.why = final, result, error, got_event, why


def describe_end(err) -> str:
    if isinstance(err, grpc.RpcError):
        return f"{err.code().name}: {err.details()}"
    return "the sidecar ended the stream (the campaign was resigned)" if err is None else str(err)


_PERMANENT = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
              grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNIMPLEMENTED,
              grpc.StatusCode.UNAUTHENTICATED}


def permanent(cfg: Config, code, details: str, had_stream: bool) -> Optional[CampaignError]:
    """The error that ends the campaign for a stream that ended with `code`, or None to retry.
    ALREADY_EXISTS on the first stream is another live candidacy of this identity (misuse);
    after a reconnect it may be our own previous stream that the sidecar has not seen end."""
    if code in _PERMANENT or (code == grpc.StatusCode.ALREADY_EXISTS and not had_stream):
        return CampaignError(f"campaign for {cfg.describe()}: {code.name}: {details}")
    return None
