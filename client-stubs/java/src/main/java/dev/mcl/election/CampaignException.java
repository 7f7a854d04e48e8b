package dev.mcl.election;

import io.grpc.Status;

/**
 * The campaign ended for good: bad input (lock name, namespace), another live candidacy of this
 * identity, a clock that is not the sidecar's ({@link ClockException}), or a sidecar too old to
 * send validity bounds ({@link NoValidityException}).
 */
public class CampaignException extends Exception {
  private static final long serialVersionUID = 1L;
  private final Status.Code code;

  public CampaignException(String message, Status.Code code) {
    super(message);
    this.code = code;
  }

  /** The gRPC status the sidecar ended the stream with, or null. */
  public Status.Code code() {
    return code;
  }
}
