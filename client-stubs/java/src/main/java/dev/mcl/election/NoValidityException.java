package dev.mcl.election;

/** The sidecar sent LEADER without a validity bound: it is older than this library. */
public final class NoValidityException extends CampaignException {
  private static final long serialVersionUID = 1L;

  public NoValidityException() {
    super("the sidecar sent LEADER without a validity bound (it is older than this client library); "
        + "upgrade the sidecar, or use Builder.allowMissingValidity(true) to trust LEADER until LOST or the "
        + "stream's end (unsafe if the sidecar freezes)", null);
  }
}
