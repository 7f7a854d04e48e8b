package dev.mcl.election;

import dev.mcl.v1.LeadershipEvent;
import dev.mcl.v1.State;

/**
 * One leadership event as the library acted on it ({@link Campaign.Builder#onEvent}).
 *
 * @param state LEADER, FOLLOWER, NO_LEADER or LOST
 * @param proto the sidecar's event (for a local LOST: one the library made)
 * @param receivedNanos CLOCK_MONOTONIC on receipt, or when the library decided
 * @param renewal a LEADER for the grant already held, with a later bound
 * @param local a LOST made by the library (bound passed, stream ended while leading)
 */
public record Event(State state, LeadershipEvent proto, long receivedNanos, boolean renewal, boolean local) {
  /** The fencing token the event names (0 if none). */
  public long fencingToken() {
    return proto.getLeader().getFencingToken();
  }

  /** The bound of a LEADER on CLOCK_MONOTONIC, or 0. */
  public long validUntilNanos() {
    return proto.hasValidity() ? proto.getValidity().getValidUntilMonotonicNs() : 0;
  }

  static Event localLost(long token, String reason) {
    LeadershipEvent ev = LeadershipEvent.newBuilder().setState(State.LOST).setReason(reason)
        .setLeader(dev.mcl.v1.Leader.newBuilder().setFencingToken(token)).build();
    return new Event(State.LOST, ev, Monotonic.nowNanos(), false, true);
  }
}
