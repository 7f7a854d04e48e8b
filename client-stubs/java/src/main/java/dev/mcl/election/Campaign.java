package dev.mcl.election;

import dev.mcl.v1.CampaignRequest;
import dev.mcl.v1.ElectionGrpc;
import dev.mcl.v1.LeadershipEvent;
import dev.mcl.v1.LockRef;
import dev.mcl.v1.State;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.time.Duration;
import java.util.EnumSet;
import java.util.Objects;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * A candidacy for one mcl lock that runs a {@link LeaderTask} only while this process leads, and
 * stops it in time.
 *
 * <pre>{@code
 * try (Campaign campaign = Campaign.newBuilder("my-lock").build()) {
 *   campaign.start(leadership -> {
 *     while (leadership.isLeader()) { doLeaderThings(leadership.token()); }  // interrupted at the end
 *   }).get();  // completes when the campaign ends; close() resigns
 * }
 * }</pre>
 *
 * <p>The task runs on the campaign's executor when the sidecar reports LEADER with a bound still
 * ahead. Leadership ends — the task's Future is cancelled (interrupting it) and {@link
 * Leadership#isLeader()} turns false — at LOST, FOLLOWER or NO_LEADER, at the end of the Campaign
 * stream, at {@link #close()}, and at the validity bound of the last LEADER minus the stop margin
 * (default 100 ms) when no renewal came, on {@link System#nanoTime()} (CLOCK_MONOTONIC, the clock of
 * the sidecar's bound; see {@link Monotonic}). The library waits for the task to return before it
 * runs it again on the next LEADER. The stream is reopened with backoff when it breaks, and a new
 * stream never counts as leading before its own LEADER.
 *
 * <p>The future of {@link #start} completes normally after {@link #close()}; with the task's result
 * (normally or exceptionally) when the task returns on its own while leading (the campaign resigns
 * first); exceptionally with a {@link CampaignException} for bad input, another live candidacy of
 * this identity, a {@link ClockException} or a {@link NoValidityException}.
 *
 * <p>Fencing tokens remain the defence against the app's own pauses (a GC pause between a check of
 * isLeader() and a write): pass the token to storage that must reject deposed leaders.
 *
 * <p>Threads: one "mcl-campaign" thread owns all state changes (events, reconnects, the end of
 * tasks); one "mcl-campaign-timer" thread only ends a lapsed leadership at once and tells it; the
 * task runs on the executor (by default one daemon thread per term).
 */
public final class Campaign implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(Campaign.class.getName());
  private static final long UNBOUNDED = Long.MAX_VALUE;
  private static final Set<Status.Code> PERMANENT = EnumSet.of(Status.Code.INVALID_ARGUMENT,
      Status.Code.NOT_FOUND, Status.Code.PERMISSION_DENIED, Status.Code.UNIMPLEMENTED, Status.Code.UNAUTHENTICATED);

  private final Builder cfg;
  private final ManagedChannel channel;
  private final boolean ownsChannel;
  private final ElectionGrpc.ElectionStub stub;
  private final ScheduledExecutorService loop;
  private final ScheduledExecutorService timer;
  private final ExecutorService executor;
  private final boolean ownsExecutor;
  private final CompletableFuture<Void> done = new CompletableFuture<>();

  // Read from any thread.
  private long token; // of the running term; 0 while not leading
  private long stopAtNanos;
  private long validUntilNanos;

  // Owned by the loop thread.
  private LeaderTask task;
  private Attempt attempt;
  private Term term;
  private boolean stopping;
  private boolean hadStream;
  private long backoffNanos;

  private Campaign(Builder b) {
    this.cfg = b;
    this.ownsChannel = b.channel == null;
    this.channel = ownsChannel ? ManagedChannelBuilder.forTarget(b.target).usePlaintext().build() : b.channel;
    this.stub = ElectionGrpc.newStub(channel);
    this.loop = Executors.newSingleThreadScheduledExecutor(daemon("mcl-campaign"));
    this.timer = Executors.newSingleThreadScheduledExecutor(daemon("mcl-campaign-timer"));
    this.ownsExecutor = b.executor == null;
    this.executor = ownsExecutor ? Executors.newCachedThreadPool(daemon("mcl-leader")) : b.executor;
    this.backoffNanos = b.minBackoff.toNanos();
  }

  public static Builder newBuilder(String lockName) {
    return new Builder(lockName);
  }

  /** The lock, for messages. */
  public String describe() {
    return (cfg.namespace.isEmpty() ? "(sidecar namespace)" : cfg.namespace) + "/" + cfg.name;
  }

  /** The token of the grant this candidate leads under now (consults the bound). */
  public synchronized OptionalLong fencingToken() {
    return token != 0 && Monotonic.nowNanos() - stopAtNanos < 0 ? OptionalLong.of(token) : OptionalLong.empty();
  }

  /** Whether this candidate leads now: a LEADER on the current stream whose bound is ahead. */
  public boolean isLeader() {
    return fencingToken().isPresent();
  }

  /** The bound of the current leadership on CLOCK_MONOTONIC (ns). */
  public synchronized OptionalLong validUntilNanos() {
    return token != 0 ? OptionalLong.of(validUntilNanos) : OptionalLong.empty();
  }

  private synchronized void setLeading(long tok, long validUntil) {
    token = tok;
    validUntilNanos = validUntil;
    stopAtNanos = tok == 0 ? 0 : stopAt(validUntil);
  }

  private long stopAt(long validUntil) {
    return validUntil == UNBOUNDED ? UNBOUNDED : validUntil - cfg.stopMargin.toNanos();
  }

  /**
   * Starts campaigning; {@code task} runs whenever this candidate leads. Call once. The returned
   * future completes when the campaign ends (see the class documentation).
   */
  public CompletableFuture<Void> start(LeaderTask task) {
    Objects.requireNonNull(task, "task");
    loop.execute(() -> {
      if (this.task != null) throw new IllegalStateException("start() was already called");
      this.task = task;
      if (!stopping) open();
    });
    return done;
  }

  /**
   * Stops the campaign: the task is interrupted and awaited, the stream is cancelled (the sidecar
   * resigns), and the channel and executors the campaign made are shut down.
   */
  @Override
  public void close() {
    try {
      loop.execute(() -> finish(null));
    } catch (java.util.concurrent.RejectedExecutionException alreadyClosed) {
      return;
    }
    try {
      done.handle((v, e) -> null).get(10, TimeUnit.SECONDS);
    } catch (Exception e) {
      LOG.warning("mcl-election: " + describe() + ": the leader task did not end within 10 s of close()");
    }
    loop.shutdown();
    timer.shutdownNow();
    if (ownsExecutor) executor.shutdownNow();
    if (ownsChannel) channel.shutdownNow();
  }

  // --- the loop thread -------------------------------------------------------------------------

  private void open() {
    Attempt a = new Attempt();
    attempt = a;
    CampaignRequest req = CampaignRequest.newBuilder()
        .setLock(LockRef.newBuilder().setNamespace(cfg.namespace).setName(cfg.name))
        .setIdentity(cfg.identity).setLeaseDurationSeconds((int) cfg.leaseDuration.toSeconds()).build();
    stub.campaign(req, a);
  }

  private void handle(LeadershipEvent ev, long receivedNanos) {
    if (ev.getState() != State.LEADER) {
      stopTerm(Cause.LOST);
      emit(new Event(ev.getState(), ev, receivedNanos, false, false));
      return;
    }
    long validUntil = UNBOUNDED;
    if (ev.hasValidity()) {
      long sent = ev.getValidity().getSentMonotonicNs();
      if (receivedNanos - sent < 0) {
        stopTerm(Cause.LOST);
        finish(new ClockException(receivedNanos, sent));
        return;
      }
      validUntil = ev.getValidity().getValidUntilMonotonicNs();
    } else if (!cfg.allowMissingValidity) {
      stopTerm(Cause.LOST);
      finish(new NoValidityException());
      return;
    }
    long tok = ev.getLeader().getFencingToken();
    Term t = term;
    if (t != null) {
      if (t.leadership.token() == tok && rearm(t, validUntil)) {
        setLeading(tok, validUntil);
        emit(new Event(State.LEADER, ev, receivedNanos, true, false));
        return;
      }
      if (t.leadership.ended()) {
        endLapsed();
      } else {
        stopTerm(Cause.LOST);
        emit(Event.localLost(t.leadership.token(), "a new grant arrived without LOST"));
      }
    }
    emit(new Event(State.LEADER, ev, receivedNanos, false, false));
    startTerm(tok, validUntil);
  }

  private void startTerm(long tok, long validUntil) {
    long wait = stopAt(validUntil) - Monotonic.nowNanos();
    if (wait <= 0) {
      LOG.warning("mcl-election: " + describe() + ": LEADER (token " + tok
          + ") arrived after its bound; not leading until the next event");
      return;
    }
    Term t = new Term(new Leadership(this, tok));
    term = t;
    setLeading(tok, validUntil);
    t.future = executor.submit(() -> {
      try {
        task.run(t.leadership);
      } catch (Throwable e) {
        t.error = e;
      } finally {
        t.finished.countDown();
        post(() -> termDone(t));
      }
    });
    // After the submit: lapse() cancels t.future.
    if (validUntil != UNBOUNDED) t.lapse = timer.schedule(() -> lapse(t), wait, TimeUnit.NANOSECONDS);
  }

  /** On the timer thread: ends the leadership at once, then tells the loop. */
  private void lapse(Term t) {
    t.leadership.end(Cause.DEADLINE);
    t.future.cancel(true);
    post(() -> {
      if (term == t) endLapsed();
    });
  }

  private boolean rearm(Term t, long validUntil) {
    if (t.leadership.ended()) return false;
    if (t.lapse == null) return validUntil == UNBOUNDED;
    if (validUntil == UNBOUNDED || !t.lapse.cancel(false)) return false;
    long wait = stopAt(validUntil) - Monotonic.nowNanos();
    if (wait <= 0) {
      lapse(t);
      return false;
    }
    t.lapse = timer.schedule(() -> lapse(t), wait, TimeUnit.NANOSECONDS);
    return true;
  }

  private void termDone(Term t) {
    if (term != t) return;
    if (!t.leadership.ended()) {
      // The task returned on its own while leading: resign, hand back its outcome.
      stopTerm(Cause.STOPPED);
      finish(t.error);
      return;
    }
    endLapsed();
  }

  /** Ends the running term, if any, and waits for its task to return. */
  private void stopTerm(Cause cause) {
    setLeading(0, 0);
    Term t = term;
    if (t == null) return;
    term = null;
    if (t.lapse != null) t.lapse.cancel(false);
    t.leadership.end(cause);
    t.future.cancel(true);
    try {
      t.finished.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void endLapsed() {
    long tok = term.leadership.token();
    stopTerm(Cause.DEADLINE);
    emit(Event.localLost(tok, "validity bound passed without a renewal"));
  }

  private void ended(Attempt a, Throwable err) {
    long tok = term != null ? term.leadership.token() : 0;
    stopTerm(Cause.STREAM_ENDED);
    Status status = err == null ? null : Status.fromThrowable(err);
    String why = status == null ? "the sidecar ended the stream (the campaign was resigned)"
        : status.getCode() + ": " + status.getDescription();
    if (tok != 0) emit(Event.localLost(tok, "campaign stream ended: " + why));
    if (stopping) return;
    if (status != null && (PERMANENT.contains(status.getCode())
        || (status.getCode() == Status.Code.ALREADY_EXISTS && !hadStream))) {
      finish(new CampaignException("campaign for " + describe() + ": " + why, status.getCode()));
      return;
    }
    hadStream = hadStream || a.gotEvent;
    if (a.gotEvent) backoffNanos = cfg.minBackoff.toNanos();
    long wait = backoffNanos / 2 + ThreadLocalRandom.current().nextLong(backoffNanos / 2 + 1);
    backoffNanos = Math.min(2 * backoffNanos, cfg.maxBackoff.toNanos());
    LOG.info("mcl-election: " + describe() + ": campaign stream ended (" + why + "); reconnecting in "
        + TimeUnit.NANOSECONDS.toMillis(wait) + " ms");
    attempt = null;
    loop.schedule(() -> {
      if (!stopping) open();
    }, wait, TimeUnit.NANOSECONDS);
  }

  /** Ends the campaign: error null completes the future normally. */
  private void finish(Throwable error) {
    if (stopping) return;
    stopping = true;
    stopTerm(Cause.STOPPED);
    if (attempt != null && attempt.call != null) attempt.call.cancel("campaign ended", null); // resigns
    if (error == null) done.complete(null);
    else done.completeExceptionally(error);
  }

  /** Runs r on the loop thread; after close() there is nothing left to do. */
  private void post(Runnable r) {
    try {
      loop.execute(r);
    } catch (java.util.concurrent.RejectedExecutionException closed) {
      // closed
    }
  }

  private void emit(Event e) {
    if (cfg.onEvent != null) cfg.onEvent.accept(e);
  }

  private static final class Term {
    final Leadership leadership;
    final CountDownLatch finished = new CountDownLatch(1);
    volatile Future<?> future;
    volatile ScheduledFuture<?> lapse;
    volatile Throwable error;

    Term(Leadership leadership) {
      this.leadership = leadership;
    }
  }

  /** One Campaign stream; gRPC calls it on its threads, and it hands everything to the loop. */
  private final class Attempt implements ClientResponseObserver<CampaignRequest, LeadershipEvent> {
    volatile ClientCallStreamObserver<CampaignRequest> call;
    boolean gotEvent;

    @Override
    public void beforeStart(ClientCallStreamObserver<CampaignRequest> requestStream) {
      call = requestStream;
    }

    @Override
    public void onNext(LeadershipEvent ev) {
      long at = Monotonic.nowNanos(); // first: the receipt time of the clock check
      post(() -> {
        if (attempt != this || stopping) return;
        gotEvent = true;
        handle(ev, at);
      });
    }

    @Override
    public void onError(Throwable t) {
      post(() -> {
        if (attempt == this) ended(this, t);
      });
    }

    @Override
    public void onCompleted() {
      post(() -> {
        if (attempt == this) ended(this, null);
      });
    }
  }

  private static java.util.concurrent.ThreadFactory daemon(String name) {
    return r -> {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      return t;
    };
  }

  /** Configures a {@link Campaign}. */
  public static final class Builder {
    private final String name;
    private String namespace = "";
    private String identity = "";
    private String target;
    private ManagedChannel channel;
    private Duration leaseDuration = Duration.ZERO;
    private Duration stopMargin = Duration.ofMillis(100);
    private boolean allowMissingValidity;
    private Duration minBackoff = Duration.ofMillis(100);
    private Duration maxBackoff = Duration.ofSeconds(5);
    private Consumer<Event> onEvent;
    private ExecutorService executor;

    private Builder(String name) {
      if (name == null || name.isEmpty()) throw new IllegalArgumentException("mcl-election: the lock's name is required");
      this.name = name;
      String env = System.getenv("MCL_SIDECAR_ADDR");
      this.target = env == null || env.isEmpty() ? "127.0.0.1:7400" : env;
    }

    /** The lock's namespace; empty: the sidecar's own. */
    public Builder namespace(String ns) {
      namespace = Objects.requireNonNull(ns);
      return this;
    }

    /** This candidate's identity; empty: the sidecar's default (pod name + uid). */
    public Builder identity(String id) {
      identity = Objects.requireNonNull(id);
      return this;
    }

    /** The sidecar's address; default $MCL_SIDECAR_ADDR, else 127.0.0.1:7400. */
    public Builder target(String t) {
      target = Objects.requireNonNull(t);
      return this;
    }

    /** A channel to the sidecar to use instead of dialling the target (close() leaves it open). */
    public Builder channel(ManagedChannel c) {
      channel = c;
      return this;
    }

    /** Lease duration sent with the Campaign, [2 s, 1 h]; zero: the sidecar's default. */
    public Builder leaseDuration(Duration d) {
      if (!d.isZero() && (d.compareTo(Duration.ofSeconds(2)) < 0 || d.compareTo(Duration.ofHours(1)) > 0)) {
        throw new IllegalArgumentException("mcl-election: leaseDuration " + d + " is outside the sidecar's range [2s, 1h]");
      }
      leaseDuration = d;
      return this;
    }

    /** How long before the bound leadership ends (default 100 ms). */
    public Builder stopMargin(Duration d) {
      stopMargin = d.isNegative() ? Duration.ZERO : d;
      return this;
    }

    /**
     * Accept LEADER without a validity bound (sidecars older than this library) and lead until
     * LOST or the stream's end. Unsafe when the sidecar freezes; by default such an event ends the
     * campaign with {@link NoValidityException}.
     */
    public Builder allowMissingValidity(boolean allow) {
      allowMissingValidity = allow;
      return this;
    }

    /** Reconnect backoff bounds (defaults 100 ms and 5 s; doubled per failure, with jitter). */
    public Builder backoff(Duration min, Duration max) {
      minBackoff = min;
      maxBackoff = max.compareTo(min) < 0 ? min : max;
      return this;
    }

    /**
     * Called on the campaign's thread for each event, in order: after the task returned for an
     * event that ends leadership, before it starts for a LEADER. Includes local LOST events
     * (bound passed, stream ended while leading), so LEADER..LOST pairs are when the task may run.
     */
    public Builder onEvent(Consumer<Event> listener) {
      onEvent = listener;
      return this;
    }

    /** Where the task runs (default: a daemon thread per term); close() leaves it running. */
    public Builder executor(ExecutorService e) {
      executor = e;
      return this;
    }

    public Campaign build() {
      return new Campaign(this);
    }
  }
}
