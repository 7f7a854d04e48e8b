package dev.mcl.election;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/** One term of leadership, handed to the {@link LeaderTask}. Thread-safe. */
public final class Leadership {
  private final Campaign campaign;
  private final long token;
  private final CountDownLatch lost = new CountDownLatch(1);
  private final AtomicReference<Cause> cause = new AtomicReference<>();

  Leadership(Campaign campaign, long token) {
    this.campaign = campaign;
    this.token = token;
  }

  /** The fencing token of the grant: pass it to storage that must reject deposed leaders. */
  public long token() {
    return token;
  }

  /** True while this term lasts: consults CLOCK_MONOTONIC against the bound. */
  public boolean isLeader() {
    return lost.getCount() == 1 && campaign.fencingToken().orElse(0) == token;
  }

  /** Why it ended, or null while it lasts. */
  public Cause cause() {
    return cause.get();
  }

  /** Waits up to {@code timeout} for the end of this leadership; true once it ended. */
  public boolean awaitLoss(Duration timeout) throws InterruptedException {
    return lost.await(timeout.toNanos(), TimeUnit.NANOSECONDS);
  }

  boolean ended() {
    return lost.getCount() == 0;
  }

  void end(Cause why) {
    cause.compareAndSet(null, why);
    lost.countDown();
  }
}
