#!/usr/bin/env python3
"""Campaign for an mcl lock through the sidecar; do leader work only while leading.

The reference example for Python (client-stubs/test/run.sh runs it against a real sidecar), with
the library mcl_election: it runs `leader_work` on a thread of its own while this candidate leads
and ends the Leadership at LOST, at the stream's end, and at the validity bound when no renewal
came.
  MCL_SIDECAR_ADDR  the sidecar (default 127.0.0.1:7400)
  MCL_LOCK          lock name (default example-lock); MCL_NAMESPACE (default: the sidecar's)
  MCL_IDENTITY      candidate identity (default: the sidecar's, i.e. pod name + uid)
Needs: pip install . (the mcl-election distribution), or PYTHONPATH=this folder.
"""
import os
import signal
import sys

import mcl_election


def leader_work(leadership):
    """Stands for what only the leader may do; pass the fencing token to what you write."""
    while True:
        print(f"leader work token={leadership.token}", flush=True)
        if leadership.wait(1.0):  # leadership ended: stop at once
            return


def on_event(ev):
    if ev.renewal:  # the same grant with a later bound, about every third of the session TTL
        return
    print(f"event state={ev.state} leader={ev.leader} cluster={ev.cluster} token={ev.fencing_token}", flush=True)
    if ev.local:
        print(f"stopped leading: {ev.reason}", flush=True)


def main():
    campaign = mcl_election.Campaign(
        os.environ.get("MCL_LOCK", "example-lock"), namespace=os.environ.get("MCL_NAMESPACE", ""),
        identity=os.environ.get("MCL_IDENTITY", ""), on_event=on_event)
    # SIGTERM (pod shutdown) or Ctrl-C stops the campaign: leader work ends and it resigns.
    signal.signal(signal.SIGTERM, lambda *_: campaign.stop())
    signal.signal(signal.SIGINT, lambda *_: campaign.stop())
    try:
        campaign.run(leader_work)
    except mcl_election.CampaignError as err:
        sys.exit(f"campaign ended: {err}")
    finally:
        campaign.close()
    print("resigned, bye", flush=True)


if __name__ == "__main__":
    main()
