package dev.mcl.election;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import org.junit.jupiter.api.Test;

/**
 * System.nanoTime() must be the node's CLOCK_MONOTONIC (the clock of the sidecar's bound): another
 * process's clock_gettime(CLOCK_MONOTONIC) reading must fall between two readings of ours. A JVM
 * whose nanoTime had another origin (or used CLOCK_MONOTONIC_RAW with a drifted rate) would land
 * outside the window, which is a few tens of milliseconds wide.
 */
class MonotonicClockTest {
  @Test
  void nanoTimeIsClockMonotonic() throws Exception {
    long before = Monotonic.nowNanos();
    Process p = new ProcessBuilder("python3", "-c",
        "import time; print(time.clock_gettime_ns(time.CLOCK_MONOTONIC))").start();
    long other;
    try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream()))) {
      other = Long.parseLong(r.readLine().trim());
    }
    p.waitFor();
    long after = Monotonic.nowNanos();
    assertTrue(before <= other && other <= after,
        "CLOCK_MONOTONIC " + other + " is not within [" + before + ", " + after + "] of System.nanoTime()");
  }
}
