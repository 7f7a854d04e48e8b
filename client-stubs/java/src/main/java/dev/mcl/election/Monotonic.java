package dev.mcl.election;

/**
 * The clock of the sidecar's validity bound: the node's CLOCK_MONOTONIC, in nanoseconds.
 *
 * <p>{@link System#nanoTime()} is that clock on HotSpot/OpenJDK on Linux: {@code os::javaTimeNanos}
 * calls {@code clock_gettime(CLOCK_MONOTONIC)} and returns its value unshifted, so it can be
 * compared with {@code Validity.valid_until_monotonic_ns} directly. {@code MonotonicClockTest}
 * checks this on the machine that runs the tests (another process's CLOCK_MONOTONIC reading must
 * fall between two readings of ours). A JVM that does not hold to it fails the campaign with a
 * {@link ClockException} (a LEADER would appear to arrive before it was sent) or, with a smaller
 * offset, is caught by that test.
 */
public final class Monotonic {
  private Monotonic() {}

  /** CLOCK_MONOTONIC in nanoseconds. */
  public static long nowNanos() {
    return System.nanoTime();
  }
}
