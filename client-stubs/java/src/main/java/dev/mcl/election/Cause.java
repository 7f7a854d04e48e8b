package dev.mcl.election;

/** Why a leadership ended. */
public enum Cause {
  /** The sidecar said LOST, FOLLOWER or NO_LEADER. */
  LOST,
  /** The validity bound (minus the stop margin) passed without a renewal. */
  DEADLINE,
  /** The Campaign stream broke or ended (sidecar restart, connection loss). */
  STREAM_ENDED,
  /** The campaign was closed (it resigns). */
  STOPPED
}
