"""mcl_election: run code only while this process leads an mcl lock, and stop it in time.

    import mcl_election

    def lead(leadership):
        while not leadership.wait(1.0):          # True once leadership ended
            do_leader_things(leadership.token)    # pass the fencing token to what you write

    mcl_election.run_while_leader("my-lock", lead)      # blocking; asyncio: mcl_election.aio

The library campaigns through the mcl sidecar ($MCL_SIDECAR_ADDR, default 127.0.0.1:7400) and
runs the leader function on a thread of its own while this candidate leads. Leadership ends
(leadership.lost is set, leadership.is_leader() turns false) at LOST, at the end of the Campaign
stream, and at the validity bound of the last LEADER minus `stop_margin` (default 0.1 s) when no
renewal came — on this process's own CLOCK_MONOTONIC, the clock the sidecar's bound is on. The
bound is the sidecar's own LOST deadline, earlier than any other candidate's grant, so an app
that stops at it never overlaps the next leader, even when the sidecar freezes. The function is
called again on the next LEADER; the stream is reopened with backoff when it breaks, and a new
stream never counts as leading before its own LEADER.

Fails the campaign (CampaignError, never leading) when the app and the sidecar do not share
CLOCK_MONOTONIC (ClockError) and when the sidecar is too old to send bounds (NoValidityError;
allow_missing_validity=True accepts it, unsafe if the sidecar freezes). Fencing tokens remain the
defence against the app's own pauses between its check and its write.
"""

from mcl_election._common import (DEADLINE, LOST, STOPPED, STREAM_ENDED, CampaignError, ClockError,
                                  Config, Event, NoValidityError, monotonic_ns)
from mcl_election.campaign import Campaign, Leadership, run_while_leader

__all__ = ["Campaign", "Leadership", "run_while_leader", "Config", "Event", "CampaignError",
           "ClockError", "NoValidityError", "monotonic_ns", "LOST", "DEADLINE", "STREAM_ENDED",
           "STOPPED"]
__version__ = "0.1.0"
