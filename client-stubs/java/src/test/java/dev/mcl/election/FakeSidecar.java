package dev.mcl.election;

import dev.mcl.v1.CampaignRequest;
import dev.mcl.v1.ElectionGrpc;
import dev.mcl.v1.Leader;
import dev.mcl.v1.LeadershipEvent;
import dev.mcl.v1.State;
import dev.mcl.v1.Validity;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A fake sidecar for the unit tests: a real gRPC server on 127.0.0.1 whose Campaign streams the
 * test scripts event by event (LEADER with a validity bound, renewals, LOST, a broken stream).
 */
final class FakeSidecar extends ElectionGrpc.ElectionImplBase implements AutoCloseable {
  final BlockingQueue<Stream> streams = new LinkedBlockingQueue<>();
  final BlockingQueue<Status> refuse = new LinkedBlockingQueue<>();
  final Server server;

  FakeSidecar() throws Exception {
    server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0)).addService(this).build().start();
  }

  String target() {
    return "127.0.0.1:" + server.getPort();
  }

  Stream next() throws InterruptedException {
    Stream s = streams.poll(5, TimeUnit.SECONDS);
    if (s == null) throw new AssertionError("no Campaign stream opened within 5 s");
    return s;
  }

  @Override
  public void close() {
    server.shutdownNow();
  }

  @Override
  public void campaign(CampaignRequest request, StreamObserver<LeadershipEvent> observer) {
    Status refusal = refuse.poll();
    if (refusal != null) {
      observer.onError(refusal.asRuntimeException());
      return;
    }
    Stream s = new Stream(request, (ServerCallStreamObserver<LeadershipEvent>) observer);
    streams.add(s);
  }

  static final class Stream {
    final CampaignRequest request;
    final ServerCallStreamObserver<LeadershipEvent> out;
    final CountDownLatch closed = new CountDownLatch(1);

    Stream(CampaignRequest request, ServerCallStreamObserver<LeadershipEvent> out) {
      this.request = request;
      this.out = out;
      out.setOnCancelHandler(closed::countDown);
    }

    /** LEADER for token, valid for validMillis from sentNanos; returns the bound. */
    synchronized long leader(long token, long validMillis, long sentNanos) {
      long until = sentNanos + TimeUnit.MILLISECONDS.toNanos(validMillis);
      out.onNext(LeadershipEvent.newBuilder().setState(State.LEADER)
          .setLeader(Leader.newBuilder().setIdentity("me").setCluster("c0").setFencingToken(token))
          .setValidity(Validity.newBuilder().setValidUntilMonotonicNs(until).setSentMonotonicNs(sentNanos))
          .build());
      return until;
    }

    long leader(long token, long validMillis) {
      return leader(token, validMillis, Monotonic.nowNanos());
    }

    synchronized void unboundedLeader(long token) {
      out.onNext(LeadershipEvent.newBuilder().setState(State.LEADER)
          .setLeader(Leader.newBuilder().setFencingToken(token)).build());
    }

    synchronized void state(State st, long token) {
      out.onNext(LeadershipEvent.newBuilder().setState(st)
          .setLeader(Leader.newBuilder().setIdentity("other").setFencingToken(token)).build());
    }

    synchronized void breakIt() {
      out.onError(Status.UNAVAILABLE.withDescription("sidecar restarting").asRuntimeException());
    }

    void awaitClosed() throws InterruptedException {
      if (!closed.await(5, TimeUnit.SECONDS)) throw new AssertionError("the client did not end the stream");
    }
  }
}
