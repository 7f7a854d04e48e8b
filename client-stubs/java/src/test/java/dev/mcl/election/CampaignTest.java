package dev.mcl.election;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mcl.v1.State;
import io.grpc.Status;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The library against the fake sidecar. */
class CampaignTest {
  private FakeSidecar fake;
  private Campaign campaign;

  @BeforeEach
  void setUp() throws Exception {
    fake = new FakeSidecar();
  }

  @AfterEach
  void tearDown() {
    if (campaign != null) campaign.close();
    fake.close();
  }

  /** A task that records each term's token, and when and why it stopped. */
  static final class Recorder implements LeaderTask {
    final BlockingQueue<Long> starts = new LinkedBlockingQueue<>();
    record Stop(long token, long at, Cause cause) {}

    final BlockingQueue<Stop> stops = new LinkedBlockingQueue<>();

    @Override
    public void run(Leadership l) {
      starts.add(l.token());
      try {
        while (!l.awaitLoss(Duration.ofHours(1))) {
          // wait for the end of leadership (or the interrupt)
        }
      } catch (InterruptedException e) {
        // the library interrupts the task at the end of leadership: stop now
      }
      stops.add(new Stop(l.token(), Monotonic.nowNanos(), l.cause()));
    }

    void started(long want) throws InterruptedException {
      Long got = starts.poll(5, TimeUnit.SECONDS);
      assertEquals(Long.valueOf(want), got, "task start");
    }

    Stop stopped(Cause want) throws InterruptedException {
      Stop s = stops.poll(5, TimeUnit.SECONDS);
      if (s == null) throw new AssertionError("task not stopped within 5 s");
      assertEquals(want, s.cause());
      return s;
    }

    void quiet(long millis) throws InterruptedException {
      Thread.sleep(millis);
      assertTrue(starts.isEmpty() && stops.isEmpty(), "task started or stopped when it must not");
    }
  }

  private CompletableFuture<Void> start(LeaderTask task, Campaign.Builder b) {
    campaign = b.target(fake.target()).backoff(Duration.ofMillis(20), Duration.ofMillis(200)).build();
    return campaign.start(task);
  }

  private Campaign.Builder lock() {
    return Campaign.newBuilder("lock");
  }

  @Test
  void lostStopsTheTask() throws Exception {
    Recorder r = new Recorder();
    start(r, lock().namespace("ns").identity("me").leaseDuration(Duration.ofSeconds(4)));
    FakeSidecar.Stream s = fake.next();
    assertEquals("ns/lock/me/4", s.request.getLock().getNamespace() + "/" + s.request.getLock().getName() + "/"
        + s.request.getIdentity() + "/" + s.request.getLeaseDurationSeconds());
    s.state(State.FOLLOWER, 3);
    r.quiet(100);
    assertFalse(campaign.isLeader());
    s.leader(7, 10_000);
    r.started(7);
    assertEquals(7, campaign.fencingToken().getAsLong());
    s.state(State.LOST, 7);
    r.stopped(Cause.LOST);
    assertFalse(campaign.isLeader());
  }

  @Test
  void theBoundLapsesWithoutRenewal() throws Exception {
    Recorder r = new Recorder();
    List<Event> events = new CopyOnWriteArrayList<>();
    start(r, lock().onEvent(events::add));
    FakeSidecar.Stream s = fake.next();
    long bound = s.leader(5, 400);
    r.started(5);
    assertEquals(bound, campaign.validUntilNanos().getAsLong());
    Recorder.Stop st = r.stopped(Cause.DEADLINE);
    assertTrue(st.at() <= bound, "task stopped " + (st.at() - bound) / 1e6 + " ms after the bound");
    assertFalse(campaign.isLeader());
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (events.size() < 2 && System.nanoTime() < deadline) Thread.sleep(5);
    assertEquals(State.LEADER, events.get(0).state());
    assertTrue(events.get(1).state() == State.LOST && events.get(1).local());
    s.leader(5, 10_000); // the same grant confirmed again: the task runs again
    r.started(5);
  }

  @Test
  void renewalsExtendTheBound() throws Exception {
    Recorder r = new Recorder();
    AtomicInteger renewals = new AtomicInteger();
    start(r, lock().onEvent(e -> {
      if (e.renewal()) renewals.incrementAndGet();
    }));
    FakeSidecar.Stream s = fake.next();
    s.leader(9, 300);
    r.started(9);
    long last = 0;
    for (int i = 0; i < 12; i++) {
      Thread.sleep(100);
      last = s.leader(9, 300);
      assertTrue(campaign.isLeader(), "not leading during renewals, round " + i);
    }
    r.quiet(0);
    Recorder.Stop st = r.stopped(Cause.DEADLINE);
    assertTrue(st.at() <= last);
    assertEquals(12, renewals.get());
  }

  @Test
  void streamEndStopsAndReconnectNeverReportsLeader() throws Exception {
    Recorder r = new Recorder();
    start(r, lock());
    FakeSidecar.Stream s = fake.next();
    s.leader(11, 10_000);
    r.started(11);
    s.breakIt();
    r.stopped(Cause.STREAM_ENDED);
    FakeSidecar.Stream s2 = fake.next();
    s2.state(State.NO_LEADER, 0);
    r.quiet(200);
    assertFalse(campaign.isLeader(), "leading after a reconnect without a fresh LEADER");
    s2.leader(12, 10_000);
    r.started(12);
  }

  @Test
  void clockCheckFailsTheCampaign() throws Exception {
    Recorder r = new Recorder();
    CompletableFuture<Void> done = start(r, lock());
    FakeSidecar.Stream s = fake.next();
    s.leader(3, 3_600_000, Monotonic.nowNanos() + TimeUnit.HOURS.toNanos(1));
    ExecutionException e = assertThrows(ExecutionException.class, () -> done.get(5, TimeUnit.SECONDS));
    assertInstanceOf(ClockException.class, e.getCause());
    assertTrue(e.getCause().getMessage().contains("do not share CLOCK_MONOTONIC"));
    r.quiet(50);
    s.awaitClosed();
  }

  @Test
  void leaderWithoutValidityIsRefusedByDefault() throws Exception {
    Recorder r = new Recorder();
    CompletableFuture<Void> done = start(r, lock());
    FakeSidecar.Stream s = fake.next();
    s.unboundedLeader(3);
    ExecutionException e = assertThrows(ExecutionException.class, () -> done.get(5, TimeUnit.SECONDS));
    assertInstanceOf(NoValidityException.class, e.getCause());
    r.quiet(50);
    s.awaitClosed();
  }

  @Test
  void allowMissingValidityLeadsUntilLost() throws Exception {
    Recorder r = new Recorder();
    start(r, lock().allowMissingValidity(true));
    FakeSidecar.Stream s = fake.next();
    s.unboundedLeader(3);
    r.started(3);
    s.unboundedLeader(3);
    r.quiet(200);
    assertTrue(campaign.isLeader());
    s.state(State.LOST, 3);
    r.stopped(Cause.LOST);
  }

  @Test
  void leaderPastItsBoundIsIgnored() throws Exception {
    Recorder r = new Recorder();
    start(r, lock());
    fake.next().leader(4, 50); // within the stop margin
    r.quiet(200);
    assertFalse(campaign.isLeader());
  }

  @Test
  void taskReturningResignsAndCompletes() throws Exception {
    CompletableFuture<Void> done = start(l -> {}, lock());
    FakeSidecar.Stream s = fake.next();
    s.leader(2, 10_000);
    assertNull(done.get(5, TimeUnit.SECONDS));
    s.awaitClosed();
  }

  @Test
  void closeStopsTheTaskAndResigns() throws Exception {
    Recorder r = new Recorder();
    CompletableFuture<Void> done = start(r, lock());
    FakeSidecar.Stream s = fake.next();
    s.leader(2, 10_000);
    r.started(2);
    campaign.close();
    r.stopped(Cause.STOPPED);
    assertNull(done.get(5, TimeUnit.SECONDS));
    s.awaitClosed();
  }

  @Test
  void permanentErrorsEndTheCampaign() throws Exception {
    for (Status st : List.of(Status.NOT_FOUND.withDescription("namespace \"nope\" does not exist"),
        Status.INVALID_ARGUMENT.withDescription("lock name: invalid"),
        Status.ALREADY_EXISTS.withDescription("identity me already campaigns"))) {
      fake.refuse.add(st);
      CompletableFuture<Void> done = start(new Recorder(), lock());
      ExecutionException e = assertThrows(ExecutionException.class, () -> done.get(5, TimeUnit.SECONDS));
      assertInstanceOf(CampaignException.class, e.getCause());
      assertTrue(e.getCause().getMessage().contains(st.getDescription()), e.getCause().getMessage());
      campaign.close();
    }
  }

  @Test
  void unavailableIsRetried() throws Exception {
    fake.refuse.add(Status.UNAVAILABLE.withDescription("apiserver unreachable"));
    Recorder r = new Recorder();
    start(r, lock());
    fake.next().leader(8, 10_000);
    r.started(8);
  }

  @Test
  void builderChecksItsInput() {
    assertThrows(IllegalArgumentException.class, () -> Campaign.newBuilder(""));
    assertThrows(IllegalArgumentException.class, () -> Campaign.newBuilder("l").leaseDuration(Duration.ofSeconds(1)));
  }
}
