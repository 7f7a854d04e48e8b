package dev.mcl.example;

import dev.mcl.v1.CampaignRequest;
import dev.mcl.v1.ElectionGrpc;
import dev.mcl.v1.LeadershipEvent;
import dev.mcl.v1.LockRef;
import dev.mcl.v1.State;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import java.util.Iterator;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * Campaigns for an mcl lock through the sidecar and does leader work only while leading. The
 * reference example for Java (client-stubs/test/run.sh runs it against a real sidecar).
 *
 * <p>MCL_SIDECAR_ADDR (default 127.0.0.1:7400), MCL_LOCK (default example-lock), MCL_NAMESPACE
 * (default: the sidecar's), MCL_IDENTITY (default: the sidecar's, i.e. pod name + uid).
 */
public final class ElectionExample {
  public static void main(String[] args) throws Exception {
    // The sidecar listens on loopback only, so plaintext is fine.
    ManagedChannel channel =
        ManagedChannelBuilder.forTarget(env("MCL_SIDECAR_ADDR", "127.0.0.1:7400")).usePlaintext().build();
    CampaignRequest request = CampaignRequest.newBuilder()
        .setLock(LockRef.newBuilder().setNamespace(env("MCL_NAMESPACE", "")).setName(env("MCL_LOCK", "example-lock")))
        .setIdentity(env("MCL_IDENTITY", ""))
        .build();

    // SIGTERM (pod shutdown) or Ctrl-C runs this hook: cancelling the campaign's gRPC context
    // cancels the Campaign stream, which is how we resign. The hook waits for main to finish.
    Context.CancellableContext campaign = Context.current().withCancellation();
    CountDownLatch finished = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      campaign.cancel(null);
      try {
        finished.await(5, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }));

    ScheduledExecutorService worker = Executors.newSingleThreadScheduledExecutor();
    ScheduledFuture<?> work = null; // leader work, scheduled only between LEADER and LOST
    try {
      Iterator<LeadershipEvent> events = campaign.call(() -> ElectionGrpc.newBlockingStub(channel).campaign(request));
      while (events.hasNext()) {
        LeadershipEvent ev = events.next();
        System.out.printf("event state=%s leader=%s cluster=%s token=%d%n", ev.getState(),
            ev.getLeader().getIdentity(), ev.getLeader().getCluster(), ev.getLeader().getFencingToken());
        if (ev.getState() == State.LEADER) {
          stop(work, worker);
          long token = ev.getLeader().getFencingToken();
          // Stands for what only the leader may do; pass the fencing token to what you write.
          work = worker.scheduleAtFixedRate(
              () -> System.out.printf("leader work token=%d%n", token), 0, 1, TimeUnit.SECONDS);
        } else if (ev.getState() == State.LOST) {
          stop(work, worker); // stop acting as leader at once
          work = null;
        }
      }
    } catch (StatusRuntimeException e) {
      if (!campaign.isCancelled()) {
        System.err.println("campaign stream ended: " + e.getStatus());
        System.exit(1);
      }
    } finally {
      stop(work, worker);
      worker.shutdown();
      channel.shutdownNow().awaitTermination(2, TimeUnit.SECONDS);
    }
    System.out.println("resigned, bye");
    finished.countDown();
  }

  /** Cancels the leader work and waits until a run in progress has finished. */
  private static void stop(ScheduledFuture<?> work, ScheduledExecutorService worker) throws Exception {
    if (work == null) return;
    work.cancel(false);
    worker.submit(() -> {}).get(); // the worker has one thread: a run in progress has now ended
  }

  private static String env(String key, String def) {
    String v = System.getenv(key);
    return v == null || v.isEmpty() ? def : v;
  }
}
