package dev.mcl.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class ElectionGrpc {

  private ElectionGrpc() {}

  public static final java.lang.String SERVICE_NAME = "mcl.v1.Election";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<dev.mcl.v1.CampaignRequest,
      dev.mcl.v1.LeadershipEvent> getCampaignMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Campaign",
      requestType = dev.mcl.v1.CampaignRequest.class,
      responseType = dev.mcl.v1.LeadershipEvent.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<dev.mcl.v1.CampaignRequest,
      dev.mcl.v1.LeadershipEvent> getCampaignMethod() {
    io.grpc.MethodDescriptor<dev.mcl.v1.CampaignRequest, dev.mcl.v1.LeadershipEvent> getCampaignMethod;
    if ((getCampaignMethod = ElectionGrpc.getCampaignMethod) == null) {
      synchronized (ElectionGrpc.class) {
        if ((getCampaignMethod = ElectionGrpc.getCampaignMethod) == null) {
          ElectionGrpc.getCampaignMethod = getCampaignMethod =
              io.grpc.MethodDescriptor.<dev.mcl.v1.CampaignRequest, dev.mcl.v1.LeadershipEvent>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Campaign"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.mcl.v1.CampaignRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.mcl.v1.LeadershipEvent.getDefaultInstance()))
              .setSchemaDescriptor(new ElectionMethodDescriptorSupplier("Campaign"))
              .build();
        }
      }
    }
    return getCampaignMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.mcl.v1.ResignRequest,
      dev.mcl.v1.ResignResponse> getResignMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Resign",
      requestType = dev.mcl.v1.ResignRequest.class,
      responseType = dev.mcl.v1.ResignResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.mcl.v1.ResignRequest,
      dev.mcl.v1.ResignResponse> getResignMethod() {
    io.grpc.MethodDescriptor<dev.mcl.v1.ResignRequest, dev.mcl.v1.ResignResponse> getResignMethod;
    if ((getResignMethod = ElectionGrpc.getResignMethod) == null) {
      synchronized (ElectionGrpc.class) {
        if ((getResignMethod = ElectionGrpc.getResignMethod) == null) {
          ElectionGrpc.getResignMethod = getResignMethod =
              io.grpc.MethodDescriptor.<dev.mcl.v1.ResignRequest, dev.mcl.v1.ResignResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Resign"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.mcl.v1.ResignRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.mcl.v1.ResignResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ElectionMethodDescriptorSupplier("Resign"))
              .build();
        }
      }
    }
    return getResignMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.mcl.v1.ObserveRequest,
      dev.mcl.v1.LeadershipEvent> getObserveMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Observe",
      requestType = dev.mcl.v1.ObserveRequest.class,
      responseType = dev.mcl.v1.LeadershipEvent.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<dev.mcl.v1.ObserveRequest,
      dev.mcl.v1.LeadershipEvent> getObserveMethod() {
    io.grpc.MethodDescriptor<dev.mcl.v1.ObserveRequest, dev.mcl.v1.LeadershipEvent> getObserveMethod;
    if ((getObserveMethod = ElectionGrpc.getObserveMethod) == null) {
      synchronized (ElectionGrpc.class) {
        if ((getObserveMethod = ElectionGrpc.getObserveMethod) == null) {
          ElectionGrpc.getObserveMethod = getObserveMethod =
              io.grpc.MethodDescriptor.<dev.mcl.v1.ObserveRequest, dev.mcl.v1.LeadershipEvent>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Observe"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.mcl.v1.ObserveRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.mcl.v1.LeadershipEvent.getDefaultInstance()))
              .setSchemaDescriptor(new ElectionMethodDescriptorSupplier("Observe"))
              .build();
        }
      }
    }
    return getObserveMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.mcl.v1.LeaderRequest,
      dev.mcl.v1.LeaderResponse> getLeaderMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Leader",
      requestType = dev.mcl.v1.LeaderRequest.class,
      responseType = dev.mcl.v1.LeaderResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.mcl.v1.LeaderRequest,
      dev.mcl.v1.LeaderResponse> getLeaderMethod() {
    io.grpc.MethodDescriptor<dev.mcl.v1.LeaderRequest, dev.mcl.v1.LeaderResponse> getLeaderMethod;
    if ((getLeaderMethod = ElectionGrpc.getLeaderMethod) == null) {
      synchronized (ElectionGrpc.class) {
        if ((getLeaderMethod = ElectionGrpc.getLeaderMethod) == null) {
          ElectionGrpc.getLeaderMethod = getLeaderMethod =
              io.grpc.MethodDescriptor.<dev.mcl.v1.LeaderRequest, dev.mcl.v1.LeaderResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Leader"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.mcl.v1.LeaderRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.mcl.v1.LeaderResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ElectionMethodDescriptorSupplier("Leader"))
              .build();
        }
      }
    }
    return getLeaderMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static ElectionStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ElectionStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ElectionStub>() {
        @java.lang.Override
        public ElectionStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ElectionStub(channel, callOptions);
        }
      };
    return ElectionStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static ElectionBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ElectionBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ElectionBlockingV2Stub>() {
        @java.lang.Override
        public ElectionBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ElectionBlockingV2Stub(channel, callOptions);
        }
      };
    return ElectionBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static ElectionBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ElectionBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ElectionBlockingStub>() {
        @java.lang.Override
        public ElectionBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ElectionBlockingStub(channel, callOptions);
        }
      };
    return ElectionBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static ElectionFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ElectionFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ElectionFutureStub>() {
        @java.lang.Override
        public ElectionFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ElectionFutureStub(channel, callOptions);
        }
      };
    return ElectionFutureStub.newStub(factory, channel);
  }

  /**
   */
  public interface AsyncService {

    /**
     * <pre>
     * Campaign makes the caller a candidate for `lock` and streams its leadership events.
     * The first event arrives at once and states the current view (LEADER, FOLLOWER or NO_LEADER);
     * after that an event is sent on every change. Leadership is bound to this stream: when the caller
     * cancels it, or its connection drops, the sidecar resigns at once, exactly as Resign would.
     * After LOST the candidacy continues: the stream may later report LEADER again — with the same
     * fencing token when the same grant is confirmed again after a lapse (e.g. a slow heartbeat), or
     * with a new, larger one for a new grant. LOST always comes before the next state (FOLLOWER,
     * NO_LEADER, or LEADER of a new grant). A grant that names this candidate but is not confirmed yet
     * is reported as NO_LEADER. A caller that wants to stop campaigning cancels the stream or calls
     * Resign.
     * The sidecar reports LEADER only while the election controller's confirmation that the grant is
     * backed by a live global (etcd) lease is fresh by the sidecar's own monotonic clock, and reports
     * LOST before that lease could have expired when confirmations stop. An app must stop acting as
     * leader when it receives LOST, and should pass `fencing_token` to anything it writes.
     * Every LEADER event carries a `validity` bound: the instant on the node's CLOCK_MONOTONIC after
     * which the app must stop acting as leader unless a later event arrived, exactly as if it had
     * received LOST. The bound is never later than the sidecar's own LOST deadline, so an app that
     * honours it stops in time even when the sidecar is frozen or the connection to it stalls. While
     * the grant stays confirmed the sidecar sends LEADER again, with the same grant and a later bound,
     * each time the bound moves forward (about every third of the controller's session TTL), so a
     * healthy leader's bound never lapses. A repeated LEADER with the same fencing token is such a
     * renewal, not a new grant. The client libraries (client-stubs/) enforce the bound for you.
     * Errors:
     *   INVALID_ARGUMENT    empty or invalid lock name or namespace, identity longer than 128 bytes,
     *                       lease_duration_seconds outside [2, 3600].
     *   ALREADY_EXISTS      this identity already campaigns for this lock on this sidecar.
     *   UNAVAILABLE         the kube-apiserver is unreachable when the campaign starts, or the
     *                       previous campaign of this identity for this lock is still resigning.
     *   NOT_FOUND           the lock's namespace does not exist in this cluster (the message names
     *                       it); the stream ends with this status after its first event.
     *   ALREADY_EXISTS      also when another sidecar of this cluster holds the candidacy of the
     *                       same identity for this lock: one identity must not campaign twice.
     * </pre>
     */
    default void campaign(dev.mcl.v1.CampaignRequest request,
        io.grpc.stub.StreamObserver<dev.mcl.v1.LeadershipEvent> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCampaignMethod(), responseObserver);
    }

    /**
     * <pre>
     * Resign gives up candidacy (and leadership, if held) for `lock` and returns once the local
     * MultiClusterLease no longer names this candidate, so the controller releases the global lock.
     * The matching Campaign stream receives LOST (if it was leading) and then ends with status OK.
     * Errors:
     *   INVALID_ARGUMENT    empty or invalid lock name or namespace.
     *   FAILED_PRECONDITION no Campaign for this lock (and identity, when given) is active here.
     *   UNAVAILABLE         the kube-apiserver did not accept the change; the campaign is still
     *                       cancelled locally and the controller releases the lock when the
     *                       candidate's renewals go stale.
     * </pre>
     */
    default void resign(dev.mcl.v1.ResignRequest request,
        io.grpc.stub.StreamObserver<dev.mcl.v1.ResignResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getResignMethod(), responseObserver);
    }

    /**
     * <pre>
     * Observe streams the leader of `lock` as seen from this cluster, for any caller: the first event
     * arrives at once with the current view, then one event per change, including NO_LEADER. Every
     * observer of a lock sees the same sequence of (leader, fencing_token) values. Observers never
     * receive LEADER or LOST; those are Campaign-only.
     * Errors: INVALID_ARGUMENT (lock name or namespace). If the apiserver becomes unreachable the
     * stream stays open and continues once the sidecar's watch resumes.
     * </pre>
     */
    default void observe(dev.mcl.v1.ObserveRequest request,
        io.grpc.stub.StreamObserver<dev.mcl.v1.LeadershipEvent> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getObserveMethod(), responseObserver);
    }

    /**
     * <pre>
     * Leader returns the current leader of `lock`.
     * Errors:
     *   INVALID_ARGUMENT    lock name or namespace invalid.
     *   NOT_FOUND           no candidate currently leads the lock (or the lock does not exist).
     *   UNAVAILABLE         the sidecar has not yet synced with its kube-apiserver.
     * </pre>
     */
    default void leader(dev.mcl.v1.LeaderRequest request,
        io.grpc.stub.StreamObserver<dev.mcl.v1.LeaderResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getLeaderMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service Election.
   */
  public static abstract class ElectionImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return ElectionGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service Election.
   */
  public static final class ElectionStub
      extends io.grpc.stub.AbstractAsyncStub<ElectionStub> {
    private ElectionStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ElectionStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ElectionStub(channel, callOptions);
    }

    /**
     * <pre>
     * Campaign makes the caller a candidate for `lock` and streams its leadership events.
     * The first event arrives at once and states the current view (LEADER, FOLLOWER or NO_LEADER);
     * after that an event is sent on every change. Leadership is bound to this stream: when the caller
     * cancels it, or its connection drops, the sidecar resigns at once, exactly as Resign would.
     * After LOST the candidacy continues: the stream may later report LEADER again — with the same
     * fencing token when the same grant is confirmed again after a lapse (e.g. a slow heartbeat), or
     * with a new, larger one for a new grant. LOST always comes before the next state (FOLLOWER,
     * NO_LEADER, or LEADER of a new grant). A grant that names this candidate but is not confirmed yet
     * is reported as NO_LEADER. A caller that wants to stop campaigning cancels the stream or calls
     * Resign.
     * The sidecar reports LEADER only while the election controller's confirmation that the grant is
     * backed by a live global (etcd) lease is fresh by the sidecar's own monotonic clock, and reports
     * LOST before that lease could have expired when confirmations stop. An app must stop acting as
     * leader when it receives LOST, and should pass `fencing_token` to anything it writes.
     * Every LEADER event carries a `validity` bound: the instant on the node's CLOCK_MONOTONIC after
     * which the app must stop acting as leader unless a later event arrived, exactly as if it had
     * received LOST. The bound is never later than the sidecar's own LOST deadline, so an app that
     * honours it stops in time even when the sidecar is frozen or the connection to it stalls. While
     * the grant stays confirmed the sidecar sends LEADER again, with the same grant and a later bound,
     * each time the bound moves forward (about every third of the controller's session TTL), so a
     * healthy leader's bound never lapses. A repeated LEADER with the same fencing token is such a
     * renewal, not a new grant. The client libraries (client-stubs/) enforce the bound for you.
     * Errors:
     *   INVALID_ARGUMENT    empty or invalid lock name or namespace, identity longer than 128 bytes,
     *                       lease_duration_seconds outside [2, 3600].
     *   ALREADY_EXISTS      this identity already campaigns for this lock on this sidecar.
     *   UNAVAILABLE         the kube-apiserver is unreachable when the campaign starts, or the
     *                       previous campaign of this identity for this lock is still resigning.
     *   NOT_FOUND           the lock's namespace does not exist in this cluster (the message names
     *                       it); the stream ends with this status after its first event.
     *   ALREADY_EXISTS      also when another sidecar of this cluster holds the candidacy of the
     *                       same identity for this lock: one identity must not campaign twice.
     * </pre>
     */
    public void campaign(dev.mcl.v1.CampaignRequest request,
        io.grpc.stub.StreamObserver<dev.mcl.v1.LeadershipEvent> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getCampaignMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Resign gives up candidacy (and leadership, if held) for `lock` and returns once the local
     * MultiClusterLease no longer names this candidate, so the controller releases the global lock.
     * The matching Campaign stream receives LOST (if it was leading) and then ends with status OK.
     * Errors:
     *   INVALID_ARGUMENT    empty or invalid lock name or namespace.
     *   FAILED_PRECONDITION no Campaign for this lock (and identity, when given) is active here.
     *   UNAVAILABLE         the kube-apiserver did not accept the change; the campaign is still
     *                       cancelled locally and the controller releases the lock when the
     *                       candidate's renewals go stale.
     * </pre>
     */
    public void resign(dev.mcl.v1.ResignRequest request,
        io.grpc.stub.StreamObserver<dev.mcl.v1.ResignResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getResignMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Observe streams the leader of `lock` as seen from this cluster, for any caller: the first event
     * arrives at once with the current view, then one event per change, including NO_LEADER. Every
     * observer of a lock sees the same sequence of (leader, fencing_token) values. Observers never
     * receive LEADER or LOST; those are Campaign-only.
     * Errors: INVALID_ARGUMENT (lock name or namespace). If the apiserver becomes unreachable the
     * stream stays open and continues once the sidecar's watch resumes.
     * </pre>
     */
    public void observe(dev.mcl.v1.ObserveRequest request,
        io.grpc.stub.StreamObserver<dev.mcl.v1.LeadershipEvent> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getObserveMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Leader returns the current leader of `lock`.
     * Errors:
     *   INVALID_ARGUMENT    lock name or namespace invalid.
     *   NOT_FOUND           no candidate currently leads the lock (or the lock does not exist).
     *   UNAVAILABLE         the sidecar has not yet synced with its kube-apiserver.
     * </pre>
     */
    public void leader(dev.mcl.v1.LeaderRequest request,
        io.grpc.stub.StreamObserver<dev.mcl.v1.LeaderResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getLeaderMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service Election.
   */
  public static final class ElectionBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<ElectionBlockingV2Stub> {
    private ElectionBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ElectionBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ElectionBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Campaign makes the caller a candidate for `lock` and streams its leadership events.
     * The first event arrives at once and states the current view (LEADER, FOLLOWER or NO_LEADER);
     * after that an event is sent on every change. Leadership is bound to this stream: when the caller
     * cancels it, or its connection drops, the sidecar resigns at once, exactly as Resign would.
     * After LOST the candidacy continues: the stream may later report LEADER again — with the same
     * fencing token when the same grant is confirmed again after a lapse (e.g. a slow heartbeat), or
     * with a new, larger one for a new grant. LOST always comes before the next state (FOLLOWER,
     * NO_LEADER, or LEADER of a new grant). A grant that names this candidate but is not confirmed yet
     * is reported as NO_LEADER. A caller that wants to stop campaigning cancels the stream or calls
     * Resign.
     * The sidecar reports LEADER only while the election controller's confirmation that the grant is
     * backed by a live global (etcd) lease is fresh by the sidecar's own monotonic clock, and reports
     * LOST before that lease could have expired when confirmations stop. An app must stop acting as
     * leader when it receives LOST, and should pass `fencing_token` to anything it writes.
     * Every LEADER event carries a `validity` bound: the instant on the node's CLOCK_MONOTONIC after
     * which the app must stop acting as leader unless a later event arrived, exactly as if it had
     * received LOST. The bound is never later than the sidecar's own LOST deadline, so an app that
     * honours it stops in time even when the sidecar is frozen or the connection to it stalls. While
     * the grant stays confirmed the sidecar sends LEADER again, with the same grant and a later bound,
     * each time the bound moves forward (about every third of the controller's session TTL), so a
     * healthy leader's bound never lapses. A repeated LEADER with the same fencing token is such a
     * renewal, not a new grant. The client libraries (client-stubs/) enforce the bound for you.
     * Errors:
     *   INVALID_ARGUMENT    empty or invalid lock name or namespace, identity longer than 128 bytes,
     *                       lease_duration_seconds outside [2, 3600].
     *   ALREADY_EXISTS      this identity already campaigns for this lock on this sidecar.
     *   UNAVAILABLE         the kube-apiserver is unreachable when the campaign starts, or the
     *                       previous campaign of this identity for this lock is still resigning.
     *   NOT_FOUND           the lock's namespace does not exist in this cluster (the message names
     *                       it); the stream ends with this status after its first event.
     *   ALREADY_EXISTS      also when another sidecar of this cluster holds the candidacy of the
     *                       same identity for this lock: one identity must not campaign twice.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<?, dev.mcl.v1.LeadershipEvent>
        campaign(dev.mcl.v1.CampaignRequest request) {
      return io.grpc.stub.ClientCalls.blockingV2ServerStreamingCall(
          getChannel(), getCampaignMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Resign gives up candidacy (and leadership, if held) for `lock` and returns once the local
     * MultiClusterLease no longer names this candidate, so the controller releases the global lock.
     * The matching Campaign stream receives LOST (if it was leading) and then ends with status OK.
     * Errors:
     *   INVALID_ARGUMENT    empty or invalid lock name or namespace.
     *   FAILED_PRECONDITION no Campaign for this lock (and identity, when given) is active here.
     *   UNAVAILABLE         the kube-apiserver did not accept the change; the campaign is still
     *                       cancelled locally and the controller releases the lock when the
     *                       candidate's renewals go stale.
     * </pre>
     */
    public dev.mcl.v1.ResignResponse resign(dev.mcl.v1.ResignRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getResignMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Observe streams the leader of `lock` as seen from this cluster, for any caller: the first event
     * arrives at once with the current view, then one event per change, including NO_LEADER. Every
     * observer of a lock sees the same sequence of (leader, fencing_token) values. Observers never
     * receive LEADER or LOST; those are Campaign-only.
     * Errors: INVALID_ARGUMENT (lock name or namespace). If the apiserver becomes unreachable the
     * stream stays open and continues once the sidecar's watch resumes.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<?, dev.mcl.v1.LeadershipEvent>
        observe(dev.mcl.v1.ObserveRequest request) {
      return io.grpc.stub.ClientCalls.blockingV2ServerStreamingCall(
          getChannel(), getObserveMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Leader returns the current leader of `lock`.
     * Errors:
     *   INVALID_ARGUMENT    lock name or namespace invalid.
     *   NOT_FOUND           no candidate currently leads the lock (or the lock does not exist).
     *   UNAVAILABLE         the sidecar has not yet synced with its kube-apiserver.
     * </pre>
     */
    public dev.mcl.v1.LeaderResponse leader(dev.mcl.v1.LeaderRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getLeaderMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service Election.
   */
  public static final class ElectionBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<ElectionBlockingStub> {
    private ElectionBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ElectionBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ElectionBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Campaign makes the caller a candidate for `lock` and streams its leadership events.
     * The first event arrives at once and states the current view (LEADER, FOLLOWER or NO_LEADER);
     * after that an event is sent on every change. Leadership is bound to this stream: when the caller
     * cancels it, or its connection drops, the sidecar resigns at once, exactly as Resign would.
     * After LOST the candidacy continues: the stream may later report LEADER again — with the same
     * fencing token when the same grant is confirmed again after a lapse (e.g. a slow heartbeat), or
     * with a new, larger one for a new grant. LOST always comes before the next state (FOLLOWER,
     * NO_LEADER, or LEADER of a new grant). A grant that names this candidate but is not confirmed yet
     * is reported as NO_LEADER. A caller that wants to stop campaigning cancels the stream or calls
     * Resign.
     * The sidecar reports LEADER only while the election controller's confirmation that the grant is
     * backed by a live global (etcd) lease is fresh by the sidecar's own monotonic clock, and reports
     * LOST before that lease could have expired when confirmations stop. An app must stop acting as
     * leader when it receives LOST, and should pass `fencing_token` to anything it writes.
     * Every LEADER event carries a `validity` bound: the instant on the node's CLOCK_MONOTONIC after
     * which the app must stop acting as leader unless a later event arrived, exactly as if it had
     * received LOST. The bound is never later than the sidecar's own LOST deadline, so an app that
     * honours it stops in time even when the sidecar is frozen or the connection to it stalls. While
     * the grant stays confirmed the sidecar sends LEADER again, with the same grant and a later bound,
     * each time the bound moves forward (about every third of the controller's session TTL), so a
     * healthy leader's bound never lapses. A repeated LEADER with the same fencing token is such a
     * renewal, not a new grant. The client libraries (client-stubs/) enforce the bound for you.
     * Errors:
     *   INVALID_ARGUMENT    empty or invalid lock name or namespace, identity longer than 128 bytes,
     *                       lease_duration_seconds outside [2, 3600].
     *   ALREADY_EXISTS      this identity already campaigns for this lock on this sidecar.
     *   UNAVAILABLE         the kube-apiserver is unreachable when the campaign starts, or the
     *                       previous campaign of this identity for this lock is still resigning.
     *   NOT_FOUND           the lock's namespace does not exist in this cluster (the message names
     *                       it); the stream ends with this status after its first event.
     *   ALREADY_EXISTS      also when another sidecar of this cluster holds the candidacy of the
     *                       same identity for this lock: one identity must not campaign twice.
     * </pre>
     */
    public java.util.Iterator<dev.mcl.v1.LeadershipEvent> campaign(
        dev.mcl.v1.CampaignRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getCampaignMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Resign gives up candidacy (and leadership, if held) for `lock` and returns once the local
     * MultiClusterLease no longer names this candidate, so the controller releases the global lock.
     * The matching Campaign stream receives LOST (if it was leading) and then ends with status OK.
     * Errors:
     *   INVALID_ARGUMENT    empty or invalid lock name or namespace.
     *   FAILED_PRECONDITION no Campaign for this lock (and identity, when given) is active here.
     *   UNAVAILABLE         the kube-apiserver did not accept the change; the campaign is still
     *                       cancelled locally and the controller releases the lock when the
     *                       candidate's renewals go stale.
     * </pre>
     */
    public dev.mcl.v1.ResignResponse resign(dev.mcl.v1.ResignRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getResignMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Observe streams the leader of `lock` as seen from this cluster, for any caller: the first event
     * arrives at once with the current view, then one event per change, including NO_LEADER. Every
     * observer of a lock sees the same sequence of (leader, fencing_token) values. Observers never
     * receive LEADER or LOST; those are Campaign-only.
     * Errors: INVALID_ARGUMENT (lock name or namespace). If the apiserver becomes unreachable the
     * stream stays open and continues once the sidecar's watch resumes.
     * </pre>
     */
    public java.util.Iterator<dev.mcl.v1.LeadershipEvent> observe(
        dev.mcl.v1.ObserveRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getObserveMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Leader returns the current leader of `lock`.
     * Errors:
     *   INVALID_ARGUMENT    lock name or namespace invalid.
     *   NOT_FOUND           no candidate currently leads the lock (or the lock does not exist).
     *   UNAVAILABLE         the sidecar has not yet synced with its kube-apiserver.
     * </pre>
     */
    public dev.mcl.v1.LeaderResponse leader(dev.mcl.v1.LeaderRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getLeaderMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service Election.
   */
  public static final class ElectionFutureStub
      extends io.grpc.stub.AbstractFutureStub<ElectionFutureStub> {
    private ElectionFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ElectionFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ElectionFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Resign gives up candidacy (and leadership, if held) for `lock` and returns once the local
     * MultiClusterLease no longer names this candidate, so the controller releases the global lock.
     * The matching Campaign stream receives LOST (if it was leading) and then ends with status OK.
     * Errors:
     *   INVALID_ARGUMENT    empty or invalid lock name or namespace.
     *   FAILED_PRECONDITION no Campaign for this lock (and identity, when given) is active here.
     *   UNAVAILABLE         the kube-apiserver did not accept the change; the campaign is still
     *                       cancelled locally and the controller releases the lock when the
     *                       candidate's renewals go stale.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.mcl.v1.ResignResponse> resign(
        dev.mcl.v1.ResignRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getResignMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Leader returns the current leader of `lock`.
     * Errors:
     *   INVALID_ARGUMENT    lock name or namespace invalid.
     *   NOT_FOUND           no candidate currently leads the lock (or the lock does not exist).
     *   UNAVAILABLE         the sidecar has not yet synced with its kube-apiserver.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.mcl.v1.LeaderResponse> leader(
        dev.mcl.v1.LeaderRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getLeaderMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_CAMPAIGN = 0;
  private static final int METHODID_RESIGN = 1;
  private static final int METHODID_OBSERVE = 2;
  private static final int METHODID_LEADER = 3;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final AsyncService serviceImpl;
    private final int methodId;

    MethodHandlers(AsyncService serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_CAMPAIGN:
          serviceImpl.campaign((dev.mcl.v1.CampaignRequest) request,
              (io.grpc.stub.StreamObserver<dev.mcl.v1.LeadershipEvent>) responseObserver);
          break;
        case METHODID_RESIGN:
          serviceImpl.resign((dev.mcl.v1.ResignRequest) request,
              (io.grpc.stub.StreamObserver<dev.mcl.v1.ResignResponse>) responseObserver);
          break;
        case METHODID_OBSERVE:
          serviceImpl.observe((dev.mcl.v1.ObserveRequest) request,
              (io.grpc.stub.StreamObserver<dev.mcl.v1.LeadershipEvent>) responseObserver);
          break;
        case METHODID_LEADER:
          serviceImpl.leader((dev.mcl.v1.LeaderRequest) request,
              (io.grpc.stub.StreamObserver<dev.mcl.v1.LeaderResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getCampaignMethod(),
          io.grpc.stub.ServerCalls.asyncServerStreamingCall(
            new MethodHandlers<
              dev.mcl.v1.CampaignRequest,
              dev.mcl.v1.LeadershipEvent>(
                service, METHODID_CAMPAIGN)))
        .addMethod(
          getResignMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.mcl.v1.ResignRequest,
              dev.mcl.v1.ResignResponse>(
                service, METHODID_RESIGN)))
        .addMethod(
          getObserveMethod(),
          io.grpc.stub.ServerCalls.asyncServerStreamingCall(
            new MethodHandlers<
              dev.mcl.v1.ObserveRequest,
              dev.mcl.v1.LeadershipEvent>(
                service, METHODID_OBSERVE)))
        .addMethod(
          getLeaderMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.mcl.v1.LeaderRequest,
              dev.mcl.v1.LeaderResponse>(
                service, METHODID_LEADER)))
        .build();
  }

  private static abstract class ElectionBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    ElectionBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return dev.mcl.v1.ElectionOuterClass.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("Election");
    }
  }

  private static final class ElectionFileDescriptorSupplier
      extends ElectionBaseDescriptorSupplier {
    ElectionFileDescriptorSupplier() {}
  }

  private static final class ElectionMethodDescriptorSupplier
      extends ElectionBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    ElectionMethodDescriptorSupplier(java.lang.String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (ElectionGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new ElectionFileDescriptorSupplier())
              .addMethod(getCampaignMethod())
              .addMethod(getResignMethod())
              .addMethod(getObserveMethod())
              .addMethod(getLeaderMethod())
              .build();
        }
      }
    }
    return result;
  }
}
