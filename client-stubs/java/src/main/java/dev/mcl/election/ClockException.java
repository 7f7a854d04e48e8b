package dev.mcl.election;

/**
 * A LEADER event arrived, by this process's CLOCK_MONOTONIC, before the sidecar sent it by its
 * own: the app and its sidecar do not share a clock (another host, another time namespace), so
 * the bound means nothing here. The campaign ends without ever acting as leader.
 */
public final class ClockException extends CampaignException {
  private static final long serialVersionUID = 1L;

  public ClockException(long receivedNanos, long sentNanos) {
    super("a LEADER event was received at " + receivedNanos + " ns on this process's CLOCK_MONOTONIC, "
        + "before the sidecar sent it (" + sentNanos + " ns on its clock): the app and its sidecar do not "
        + "share CLOCK_MONOTONIC (run them on the same node, outside separate time namespaces); not acting "
        + "as leader", null);
  }
}
