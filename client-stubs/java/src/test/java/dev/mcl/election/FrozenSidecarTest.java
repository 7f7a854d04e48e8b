package dev.mcl.election;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mcl.v1.ElectionGrpc;
import dev.mcl.v1.LeaderRequest;
import dev.mcl.v1.LeaderResponse;
import dev.mcl.v1.LockRef;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;

/**
 * On the real test bed (client-stubs/test/run.sh sets MCL_SIDECAR_ADDR, MCL_SIDECAR_PID — that
 * sidecar's process — MCL_SIDECAR_ADDR_2 and MCL_NAMESPACE): freezes the leading candidate's
 * sidecar (SIGSTOP) and checks that the task stopped at or before the bound of its last LEADER and
 * before the other candidate was granted the lock, on CLOCK_MONOTONIC.
 */
@EnabledIfEnvironmentVariable(named = "MCL_SIDECAR_PID", matches = "[0-9]+")
class FrozenSidecarTest {
  static final class Candidate {
    volatile long bound;
    volatile long lastWork;
    volatile long stoppedAt;
    volatile long grantRecv;
    final CountDownLatch started = new CountDownLatch(1);
    final CountDownLatch stopped = new CountDownLatch(1);
    Campaign campaign;

    Candidate(String addr, String ns, String name, String id) {
      campaign = Campaign.newBuilder(name).target(addr).namespace(ns).identity(id)
          .leaseDuration(Duration.ofSeconds(4))
          .onEvent(ev -> {
            if (ev.state() != dev.mcl.v1.State.LEADER) return;
            bound = ev.validUntilNanos();
            if (!ev.renewal() && grantRecv == 0) grantRecv = ev.receivedNanos();
          }).build();
      campaign.start(l -> {
        started.countDown();
        try {
          while (!l.awaitLoss(Duration.ofMillis(5))) {
            if (l.isLeader()) lastWork = Monotonic.nowNanos();
          }
        } catch (InterruptedException e) {
          // interrupted at the end of leadership: stop
        }
        stoppedAt = Monotonic.nowNanos();
        stopped.countDown();
      });
    }
  }

  private static void signal(String sig, String pid) throws Exception {
    new ProcessBuilder("kill", "-" + sig, pid).inheritIO().start().waitFor();
  }

  private static double ms(long ns) {
    return ns / 1e6;
  }

  @Test
  void frozenSidecarStopsLeaderWorkBeforeTheNextGrant() throws Exception {
    String pid = System.getenv("MCL_SIDECAR_PID");
    String ns = System.getenv().getOrDefault("MCL_NAMESPACE", "");
    String name = "java-freeze-" + ThreadLocalRandom.current().nextLong(1_000_000_000_000L);
    Candidate a = new Candidate(System.getenv("MCL_SIDECAR_ADDR"), ns, name, name + "-a");
    Candidate b = null;
    try {
      assertTrue(a.started.await(30, TimeUnit.SECONDS), "the first candidate did not lead within 30 s");
      b = new Candidate(System.getenv("MCL_SIDECAR_ADDR_2"), ns, name, name + "-b");
      Thread.sleep(1000);
      long frozenAt = Monotonic.nowNanos();
      signal("STOP", pid);
      boolean ok;
      try {
        ok = a.stopped.await(15, TimeUnit.SECONDS) && b.started.await(30, TimeUnit.SECONDS);
      } finally {
        signal("CONT", pid);
      }
      assertTrue(ok, "the leader did not stop, or the other candidate was not granted, in time");

      // The grant's acquire time: the granting controller's wall clock, on this host.
      ManagedChannel ch = ManagedChannelBuilder.forTarget(System.getenv("MCL_SIDECAR_ADDR_2")).usePlaintext().build();
      LeaderResponse resp = ElectionGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
          .leader(LeaderRequest.newBuilder().setLock(LockRef.newBuilder().setNamespace(ns).setName(name)).build());
      ch.shutdownNow();
      var acq = resp.getLeader().getAcquireTime();
      long acquireWall = acq.getSeconds() * 1_000_000_000L + acq.getNanos();
      java.time.Instant now = java.time.Instant.now();
      long grant = Monotonic.nowNanos() - (now.getEpochSecond() * 1_000_000_000L + now.getNano() - acquireWall);

      System.out.printf("# a: frozen at 0, last work %+.0f ms, stopped %+.0f ms, bound %+.0f ms; b: granted %+.0f ms, "
          + "LEADER received %+.0f ms%n", ms(a.lastWork - frozenAt), ms(a.stoppedAt - frozenAt), ms(a.bound - frozenAt),
          ms(grant - frozenAt), ms(b.grantRecv - frozenAt));
      System.out.printf("FREEZE lang=java stop_before_bound_ms=%.1f stop_before_grant_ms=%.1f "
          + "stop_before_leader_event_ms=%.1f freeze_to_stop_ms=%.1f%n", ms(a.bound - a.stoppedAt),
          ms(grant - a.stoppedAt), ms(b.grantRecv - a.stoppedAt), ms(a.stoppedAt - frozenAt));
      assertTrue(a.stoppedAt <= a.bound, "leader work stopped " + ms(a.stoppedAt - a.bound) + " ms after its bound");
      assertTrue(a.lastWork <= a.stoppedAt, "worked after it stopped");
      assertTrue(a.stoppedAt < grant, "leader work stopped " + ms(a.stoppedAt - grant) + " ms after the next grant");
      assertTrue(a.stoppedAt < b.grantRecv, "leader work stopped after the next leader's LEADER arrived");
    } finally {
      a.campaign.close();
      if (b != null) b.campaign.close();
    }
  }
}
