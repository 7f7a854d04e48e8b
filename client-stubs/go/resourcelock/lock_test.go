package resourcelock

// Unit tests: the Lock against a small in-process fake of the Election service, and client-go's
// real LeaderElector driven through it. The integration test (integration_test.go, build tag
// "integration") uses the real sidecar.

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"k8s.io/client-go/tools/leaderelection"
	rl "k8s.io/client-go/tools/leaderelection/resourcelock"

	"mcl.dev/mcl/client-stubs/go/election"
	mclv1 "mcl.dev/mcl/client-stubs/go/mclv1"
)

// fakeSidecar serves Election; the test pushes Campaign events with send().
type fakeSidecar struct {
	mclv1.UnimplementedElectionServer
	mu       sync.Mutex
	streams  map[string]chan *mclv1.LeadershipEvent // identity → events for its open Campaign
	requests []*mclv1.CampaignRequest
	resigns  []string
	leader   *mclv1.Leader // answer of Leader; nil → NOT_FOUND
	opened   chan string   // identity, once per Campaign
	ended    chan string   // identity, once per Campaign end
	kill     map[string]chan error
}

func newFake() *fakeSidecar {
	return &fakeSidecar{streams: map[string]chan *mclv1.LeadershipEvent{}, kill: map[string]chan error{},
		opened: make(chan string, 16), ended: make(chan string, 16)}
}

func (f *fakeSidecar) Campaign(req *mclv1.CampaignRequest, stream grpc.ServerStreamingServer[mclv1.LeadershipEvent]) error {
	f.mu.Lock()
	if _, dup := f.streams[req.Identity]; dup {
		f.mu.Unlock()
		return status.Error(codes.AlreadyExists, "already campaigning")
	}
	events := make(chan *mclv1.LeadershipEvent, 16)
	kill := make(chan error, 1)
	f.streams[req.Identity], f.kill[req.Identity] = events, kill
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.streams, req.Identity)
		delete(f.kill, req.Identity)
		f.mu.Unlock()
		f.ended <- req.Identity
	}()
	// Like the real sidecar: the current view at once.
	if err := stream.Send(&mclv1.LeadershipEvent{Lock: req.Lock, State: mclv1.State_NO_LEADER}); err != nil {
		return err
	}
	f.opened <- req.Identity
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case err := <-kill:
			return err
		case ev := <-events:
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}

func (f *fakeSidecar) Resign(ctx context.Context, req *mclv1.ResignRequest) (*mclv1.ResignResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resigns = append(f.resigns, req.Identity)
	kill, ok := f.kill[req.Identity]
	if !ok {
		return nil, status.Error(codes.FailedPrecondition, "not campaigning")
	}
	kill <- nil
	return &mclv1.ResignResponse{}, nil
}

func (f *fakeSidecar) Leader(ctx context.Context, req *mclv1.LeaderRequest) (*mclv1.LeaderResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leader == nil {
		return nil, status.Error(codes.NotFound, "no leader")
	}
	return &mclv1.LeaderResponse{Leader: f.leader}, nil
}

type calls struct {
	requests []*mclv1.CampaignRequest
	resigns  []string
}

func (f *fakeSidecar) snapshot() calls {
	f.mu.Lock()
	defer f.mu.Unlock()
	return calls{append([]*mclv1.CampaignRequest(nil), f.requests...), append([]string(nil), f.resigns...)}
}

// send pushes an event to identity's open Campaign.
func (f *fakeSidecar) send(t *testing.T, identity string, state mclv1.State, leader string, token int64) {
	t.Helper()
	f.mu.Lock()
	ch, ok := f.streams[identity]
	f.mu.Unlock()
	if !ok {
		t.Fatalf("no open campaign for %q", identity)
	}
	var ld *mclv1.Leader
	if leader != "" {
		ld = &mclv1.Leader{Identity: leader, Cluster: "cluster-0", FencingToken: token}
	}
	ev := &mclv1.LeadershipEvent{State: state, Leader: ld}
	if state == mclv1.State_LEADER {
		ev.Validity = validFor(10 * time.Second)
	}
	ch <- ev
}

// sendLeader pushes a LEADER with a validity bound `valid` from now.
func (f *fakeSidecar) sendLeader(t *testing.T, identity string, token int64, valid time.Duration) {
	t.Helper()
	f.mu.Lock()
	ch, ok := f.streams[identity]
	f.mu.Unlock()
	if !ok {
		t.Fatalf("no open campaign for %q", identity)
	}
	ch <- &mclv1.LeadershipEvent{State: mclv1.State_LEADER, Validity: validFor(valid),
		Leader: &mclv1.Leader{Identity: identity, Cluster: "cluster-0", FencingToken: token}}
}

func validFor(d time.Duration) *mclv1.Validity {
	now := election.MonotonicNow()
	return &mclv1.Validity{SentMonotonicNs: now, ValidUntilMonotonicNs: now + int64(d)}
}

// exits counts the lock's default process exits (stubbed out for the tests).
var exits atomic.Int32

func init() { exit = func(int) { exits.Add(1) } }

func (f *fakeSidecar) breakStream(t *testing.T, identity string) {
	t.Helper()
	f.mu.Lock()
	kill, ok := f.kill[identity]
	f.mu.Unlock()
	if !ok {
		t.Fatalf("no open campaign for %q", identity)
	}
	kill <- status.Error(codes.Unavailable, "sidecar restarting")
}

func (f *fakeSidecar) setLeader(identity string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if identity == "" {
		f.leader = nil
		return
	}
	f.leader = &mclv1.Leader{Identity: identity, Cluster: "cluster-1", FencingToken: 7}
}

func startFake(t *testing.T) (*fakeSidecar, *grpc.ClientConn) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	f := newFake()
	mclv1.RegisterElectionServer(srv, f)
	go srv.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///fake",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); srv.Stop() })
	return f, conn
}

func newLock(t *testing.T, conn *grpc.ClientConn, identity string, onLost func()) *Lock {
	t.Helper()
	l, err := New(Config{Conn: conn, Namespace: "ns", Name: "lock", Identity: identity,
		LeaseDuration: 4 * time.Second, OnLost: onLost, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func recv(t *testing.T, ch chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %q", want)
	}
}

func self(id string) rl.LeaderElectionRecord { return rl.LeaderElectionRecord{HolderIdentity: id} }

func TestNewValidatesConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Identity: "a"}, "Name is required"},
		{Config{Name: "l"}, "Identity is required"},
		{Config{Name: "l", Identity: "a", LeaseDuration: time.Second}, "below the sidecar's minimum"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want error containing %q", c.cfg, err, c.want)
		}
	}
}

func TestDefaultsAndDescribe(t *testing.T) {
	t.Setenv("MCL_SIDECAR_ADDR", "127.0.0.1:7999")
	l, err := New(Config{Name: "lock", Identity: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.cfg.Addr != "127.0.0.1:7999" || l.cfg.LeaseDuration != 15*time.Second {
		t.Errorf("defaults: addr %q lease %v", l.cfg.Addr, l.cfg.LeaseDuration)
	}
	t.Setenv("MCL_SIDECAR_ADDR", "")
	if l2, err := New(Config{Name: "lock", Identity: "a"}); err != nil || l2.cfg.Addr != DefaultAddr {
		t.Errorf("without MCL_SIDECAR_ADDR: want %s, got %v", DefaultAddr, err)
	} else {
		l2.Close()
	}
	if l.Identity() != "a" || !strings.Contains(l.Describe(), "lock") {
		t.Errorf("Identity %q Describe %q", l.Identity(), l.Describe())
	}
}

func TestUpdateSucceedsOnlyWhileLeader(t *testing.T) {
	f, conn := startFake(t)
	l := newLock(t, conn, "me", nil)
	ctx := context.Background()

	if err := l.Create(ctx, self("me")); err == nil || !strings.Contains(err.Error(), "NO_LEADER") {
		t.Fatalf("Create while NO_LEADER = %v, want not-leader error", err)
	}
	recv(t, f.opened, "me")
	if req := f.snapshot().requests[0]; req.Lock.Namespace != "ns" || req.Lock.Name != "lock" || req.LeaseDurationSeconds != 4 {
		t.Errorf("campaign request %v", req)
	}
	f.send(t, "me", mclv1.State_FOLLOWER, "other", 3)
	waitFor(t, "FOLLOWER to be refused", func() bool { return l.Update(ctx, self("me")) != nil })
	f.send(t, "me", mclv1.State_LEADER, "me", 5)
	waitFor(t, "Update to succeed as LEADER", func() bool { return l.Update(ctx, self("me")) == nil })
	f.send(t, "me", mclv1.State_LOST, "me", 5)
	waitFor(t, "Update to fail after LOST", func() bool { return l.Update(ctx, self("me")) != nil })
	if n := len(f.snapshot().requests); n != 1 {
		t.Errorf("%d Campaign calls, want one stream reused across calls", n)
	}
	if err := l.Update(ctx, self("someone-else")); err == nil {
		t.Error("Update naming another holder succeeded")
	}
}

func TestGetReportsTheSidecarsView(t *testing.T) {
	f, conn := startFake(t)
	l := newLock(t, conn, "me", nil)
	ctx := context.Background()
	get := func() *rl.LeaderElectionRecord {
		t.Helper()
		rec, raw, err := l.Get(ctx)
		if err != nil || len(raw) == 0 {
			t.Fatalf("Get: %v (raw %q)", err, raw)
		}
		if rec.LeaseDurationSeconds != 4 || time.Since(rec.RenewTime.Time) > 2*time.Second {
			t.Fatalf("record not fresh: %+v", rec)
		}
		return rec
	}

	// No leader anywhere: empty holder, and Get has opened the campaign.
	if rec := get(); rec.HolderIdentity != "" {
		t.Errorf("holder %q, want none", rec.HolderIdentity)
	}
	recv(t, f.opened, "me")
	// FOLLOWER: the other candidate holds.
	f.send(t, "me", mclv1.State_FOLLOWER, "other", 3)
	waitFor(t, "holder other", func() bool { return get().HolderIdentity == "other" })
	// LEADER: we hold.
	f.send(t, "me", mclv1.State_LEADER, "me", 5)
	waitFor(t, "holder me", func() bool { return get().HolderIdentity == "me" })
	// LOST while the apiserver status still names us: we must not appear to hold.
	f.setLeader("me")
	f.send(t, "me", mclv1.State_LOST, "me", 5)
	waitFor(t, "holder cleared", func() bool { return get().HolderIdentity == "" })
	// LOST and a foreign leader elected meanwhile.
	f.setLeader("far-away")
	if rec := get(); rec.HolderIdentity != "far-away" {
		t.Errorf("holder %q, want far-away", rec.HolderIdentity)
	}
}

func TestLostCallsOnLostAndStreamBreakIsLoss(t *testing.T) {
	f, conn := startFake(t)
	var lost atomic.Int32
	l := newLock(t, conn, "me", func() { lost.Add(1) })
	ctx := context.Background()
	l.Update(ctx, self("me"))
	recv(t, f.opened, "me")
	f.send(t, "me", mclv1.State_LEADER, "me", 5)
	waitFor(t, "leader", func() bool { return l.Update(ctx, self("me")) == nil })
	f.send(t, "me", mclv1.State_LOST, "me", 5)
	waitFor(t, "OnLost after LOST", func() bool { return lost.Load() == 1 })

	f.send(t, "me", mclv1.State_LEADER, "me", 9)
	waitFor(t, "leader again", func() bool { return l.Update(ctx, self("me")) == nil })
	f.breakStream(t, "me")
	recv(t, f.ended, "me")
	waitFor(t, "OnLost after the stream broke", func() bool { return lost.Load() == 2 })
	if rec, _, err := l.Get(ctx); err != nil || rec.HolderIdentity == "me" {
		t.Errorf("Get after the stream broke = %+v, %v; must not name us", rec, err)
	}
	// The next call reopened the campaign.
	recv(t, f.opened, "me")
}

func TestReleaseResigns(t *testing.T) {
	f, conn := startFake(t)
	var lost atomic.Int32
	l := newLock(t, conn, "me", func() { lost.Add(1) })
	ctx := context.Background()
	l.Update(ctx, self("me"))
	recv(t, f.opened, "me")
	f.send(t, "me", mclv1.State_LEADER, "me", 5)
	waitFor(t, "leader", func() bool { return l.Update(ctx, self("me")) == nil })
	if err := l.Update(ctx, rl.LeaderElectionRecord{HolderIdentity: ""}); err != nil {
		t.Fatalf("release: %v", err)
	}
	recv(t, f.ended, "me")
	if r := f.snapshot().resigns; len(r) != 1 || r[0] != "me" {
		t.Errorf("Resign calls %v, want [me]", r)
	}
	time.Sleep(50 * time.Millisecond)
	if n := lost.Load(); n != 0 {
		t.Errorf("OnLost called %d times for a voluntary release", n)
	}
	// Releasing with no campaign open is a no-op.
	if err := l.Update(ctx, rl.LeaderElectionRecord{}); err != nil {
		t.Errorf("second release: %v", err)
	}
}

func TestSidecarDownIsAnError(t *testing.T) {
	// A port nobody listens on: every call fails, none hangs past its context.
	l, err := New(Config{Addr: "127.0.0.1:1", Name: "lock", Identity: "me", LeaseDuration: 2 * time.Second, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := l.Update(ctx, self("me")); err == nil {
		t.Error("Update succeeded with no sidecar")
	}
	if _, _, err := l.Get(ctx); err == nil {
		t.Error("Get succeeded with no sidecar")
	}
}

// TestClientGoElector drives client-go's real LeaderElector through the Lock: it leads only after
// the sidecar says LEADER and stops leading after LOST.
func TestClientGoElector(t *testing.T) {
	f, conn := startFake(t)
	l := newLock(t, conn, "me", nil)
	var leading atomic.Bool
	started, stopped := make(chan struct{}), make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: l, LeaseDuration: 4 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 100 * time.Millisecond,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { leading.Store(true); close(started) },
			OnStoppedLeading: func() { leading.Store(false); close(stopped) },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go le.Run(ctx)

	recv(t, f.opened, "me")
	f.send(t, "me", mclv1.State_FOLLOWER, "other", 3)
	time.Sleep(500 * time.Millisecond)
	if leading.Load() {
		t.Fatal("elector leads while the sidecar says FOLLOWER")
	}
	f.send(t, "me", mclv1.State_LEADER, "me", 4)
	select {
	case <-started:
	case <-time.After(3 * time.Second):
		t.Fatal("elector did not start leading after LEADER")
	}
	if le.GetLeader() != "me" {
		t.Errorf("GetLeader %q", le.GetLeader())
	}
	lostAt := time.Now()
	f.send(t, "me", mclv1.State_LOST, "me", 4)
	select {
	case <-stopped:
		// client-go gives up after RenewDeadline of failed renewals.
		// (+3 s of slack for a loaded machine).
		if d := time.Since(lostAt); d > 2*time.Second+3*time.Second {
			t.Errorf("stopped leading %v after LOST, want within RenewDeadline (2s) + 3s", d)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("elector still leads 8 s after LOST")
	}
}

// electorWith runs client-go's LeaderElector over l with a long RenewDeadline (10 s), so a stop
// that comes from client-go itself is easy to tell from one that comes from the lock. It returns
// a channel that receives, on CLOCK_MONOTONIC, when OnStartedLeading's context ended.
func electorWith(t *testing.T, l *Lock, ctx context.Context) (started chan struct{}, ctxEnded chan int64) {
	t.Helper()
	started, ctxEnded = make(chan struct{}), make(chan int64, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: l, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 100 * time.Millisecond,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				close(started)
				<-ctx.Done()
				ctxEnded <- election.MonotonicNow()
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); le.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	return started, ctxEnded
}

func waitStarted(t *testing.T, started chan struct{}) {
	t.Helper()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("elector did not start leading after LEADER")
	}
}

// TestLeaderContextStopsClientGoAtTheBound: with the lock's LeaderContext, client-go's leader
// context ends at the validity bound when no renewal comes, not RenewDeadline later.
func TestLeaderContextStopsClientGoAtTheBound(t *testing.T) {
	f, conn := startFake(t)
	l := newLock(t, conn, "me", nil)
	before := exits.Load()
	started, ended := electorWith(t, l, l.LeaderContext(context.Background()))
	recv(t, f.opened, "me")
	f.sendLeader(t, "me", 4, 800*time.Millisecond)
	bound := election.MonotonicNow() + int64(800*time.Millisecond)
	waitStarted(t, started)
	select {
	case at := <-ended:
		if at > bound {
			t.Errorf("client-go's leader context ended %v after the bound", time.Duration(at-bound))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client-go's leader context still live 5 s after the bound")
	}
	if exits.Load() != before {
		t.Error("the lock exited although a LeaderContext stops the work")
	}
}

// TestDefaultExitsAtLost: without OnLost or a LeaderContext, the lock ends the process at LOST
// (client-go alone would lead on until RenewDeadline).
func TestDefaultExitsAtLost(t *testing.T) {
	f, conn := startFake(t)
	l := newLock(t, conn, "me", nil)
	before := exits.Load()
	started, _ := electorWith(t, l, context.Background())
	recv(t, f.opened, "me")
	f.send(t, "me", mclv1.State_LEADER, "me", 4)
	waitStarted(t, started)
	f.send(t, "me", mclv1.State_LOST, "me", 4)
	waitFor(t, "the default exit", func() bool { return exits.Load() == before+1 })
}

// TestDefaultExitsAtTheBound: the same when the bound passes without a renewal (a frozen sidecar).
func TestDefaultExitsAtTheBound(t *testing.T) {
	f, conn := startFake(t)
	l := newLock(t, conn, "me", nil)
	before := exits.Load()
	started, _ := electorWith(t, l, context.Background())
	recv(t, f.opened, "me")
	f.sendLeader(t, "me", 4, 600*time.Millisecond)
	bound := election.MonotonicNow() + int64(600*time.Millisecond)
	waitStarted(t, started)
	waitFor(t, "the default exit", func() bool { return exits.Load() == before+1 })
	if now := election.MonotonicNow(); now > bound+int64(500*time.Millisecond) {
		t.Errorf("exit came %v after the bound", time.Duration(now-bound))
	}
	if err := l.Update(context.Background(), self("me")); err == nil {
		t.Error("Update succeeds after the bound")
	}
}

func TestUnsafeOptOutDoesNotExit(t *testing.T) {
	f, conn := startFake(t)
	l, err := New(Config{Conn: conn, Name: "lock", Identity: "me", LeaseDuration: 4 * time.Second,
		UnsafeStopAtRenewDeadline: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	before := exits.Load()
	started, _ := electorWith(t, l, context.Background())
	recv(t, f.opened, "me")
	f.send(t, "me", mclv1.State_LEADER, "me", 4)
	waitStarted(t, started)
	f.send(t, "me", mclv1.State_LOST, "me", 4)
	time.Sleep(300 * time.Millisecond)
	if exits.Load() != before {
		t.Error("the lock exited although UnsafeStopAtRenewDeadline is set")
	}
}
