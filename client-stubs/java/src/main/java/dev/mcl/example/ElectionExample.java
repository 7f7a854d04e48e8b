package dev.mcl.example;

import dev.mcl.election.Campaign;
import dev.mcl.election.CampaignException;
import dev.mcl.election.Leadership;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * Campaigns for an mcl lock through the sidecar and does leader work only while leading, with the
 * library dev.mcl.election: the task runs while this candidate leads and is interrupted at LOST,
 * at the stream's end, and at the validity bound when no renewal came. The reference example for
 * Java (client-stubs/test/run.sh runs it against a real sidecar).
 *
 * <p>MCL_SIDECAR_ADDR (default 127.0.0.1:7400), MCL_LOCK (default example-lock), MCL_NAMESPACE
 * (default: the sidecar's), MCL_IDENTITY (default: the sidecar's, i.e. pod name + uid).
 */
public final class ElectionExample {
  public static void main(String[] args) throws Exception {
    Campaign campaign = Campaign.newBuilder(env("MCL_LOCK", "example-lock"))
        .namespace(env("MCL_NAMESPACE", "")).identity(env("MCL_IDENTITY", ""))
        .onEvent(ev -> {
          if (ev.renewal()) return; // the same grant with a later bound, about every third of the session TTL
          System.out.printf("event state=%s leader=%s cluster=%s token=%d%n", ev.state(),
              ev.proto().getLeader().getIdentity(), ev.proto().getLeader().getCluster(), ev.fencingToken());
          if (ev.local()) System.out.println("stopped leading: " + ev.proto().getReason());
        })
        .build();

    // SIGTERM (pod shutdown) or Ctrl-C runs this hook: closing the campaign interrupts the leader
    // work, waits for it, and cancels the Campaign stream, which is how we resign.
    CountDownLatch finished = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      campaign.close();
      try {
        finished.await(5, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }));

    try {
      campaign.start(ElectionExample::leaderWork).get();
      System.out.println("resigned, bye");
    } catch (ExecutionException e) {
      System.err.println("campaign ended: " + (e.getCause() instanceof CampaignException ? e.getCause().getMessage() : e.getCause()));
      System.exit(1);
    } finally {
      finished.countDown();
    }
  }

  /** Stands for what only the leader may do; pass the fencing token to what you write. */
  private static void leaderWork(Leadership leadership) throws InterruptedException {
    do {
      System.out.printf("leader work token=%d%n", leadership.token());
    } while (!leadership.awaitLoss(Duration.ofSeconds(1)));
  }

  private static String env(String key, String def) {
    String v = System.getenv(key);
    return v == null || v.isEmpty() ? def : v;
  }
}
