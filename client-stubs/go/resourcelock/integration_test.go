//go:build integration

package resourcelock

// Integration tests: client-go's leaderelection over the REAL sidecar (with a test bed and the
// controller behind it). Run by client-stubs/test/run.sh:
//
//	MCL_SIDECAR_ADDR=127.0.0.1:P [MCL_SIDECAR_ADDR_2=127.0.0.1:Q] go test -tags integration -run Integration ./resourcelock
//
// MCL_SIDECAR_ADDR_2 is a second sidecar in the same cluster (another pod); without it both
// candidates share one sidecar.

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/client-go/tools/leaderelection"

	"mcl.dev/mcl/client-stubs/go/election"
	mclv1 "mcl.dev/mcl/client-stubs/go/mclv1"
)

func sidecarAddrs(t *testing.T) (string, string) {
	t.Helper()
	a := os.Getenv("MCL_SIDECAR_ADDR")
	if a == "" {
		t.Fatal("MCL_SIDECAR_ADDR must name a running sidecar (see client-stubs/test/run.sh)")
	}
	b := os.Getenv("MCL_SIDECAR_ADDR_2")
	if b == "" {
		b = a
	}
	return a, b
}

// candidate is one client-go LeaderElector over a Lock, with its leadership recorded.
type candidate struct {
	id      string
	lock    *Lock
	lost    atomic.Int32
	leading atomic.Bool
	started chan struct{}
	stopped chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
}

// guard fails the test if two candidates lead at once (judged by client-go's callbacks).
type guard struct {
	mu      sync.Mutex
	leaders map[string]bool
	t       *testing.T
}

func (g *guard) set(id string, on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if on {
		for other := range g.leaders {
			g.t.Errorf("%s started leading while %s leads", id, other)
		}
		g.leaders[id] = true
	} else {
		delete(g.leaders, id)
	}
}

func runCandidate(t *testing.T, g *guard, addr, name, id string) *candidate {
	t.Helper()
	c := &candidate{id: id, started: make(chan struct{}), stopped: make(chan struct{}), done: make(chan struct{})}
	lock, err := New(Config{Addr: addr, Namespace: os.Getenv("MCL_NAMESPACE"), Name: name, Identity: id,
		LeaseDuration: 4 * time.Second, OnLost: func() { c.lost.Add(1) }, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	c.lock = lock
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 250 * time.Millisecond,
		ReleaseOnCancel: true, Name: name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { g.set(id, true); c.leading.Store(true); close(c.started) },
			OnStoppedLeading: func() {
				c.leading.Store(false)
				g.set(id, false)
				close(c.stopped)
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { defer close(c.done); le.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-c.done; lock.Close() })
	return c
}

func waitChan(t *testing.T, ch chan struct{}, d time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-ch:
		return time.Since(start)
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
		return 0
	}
}

func TestIntegrationClientGoElectsOneAndHandsOver(t *testing.T) {
	addrA, addrB := sidecarAddrs(t)
	name := fmt.Sprintf("rl-%d", rand.Int63())
	g := &guard{leaders: map[string]bool{}, t: t}

	a := runCandidate(t, g, addrA, name, name+"-a")
	d := waitChan(t, a.started, 30*time.Second, "the first candidate to lead")
	t.Logf("%s leads after %v", a.id, d)
	rec, _, err := a.lock.Get(context.Background())
	if err != nil || rec.HolderIdentity != a.id {
		t.Fatalf("Get on the leader = %+v, %v; want holder %s", rec, err, a.id)
	}

	b := runCandidate(t, g, addrB, name, name+"-b")
	// B becomes a candidate and sees A as the holder, but must not lead while A does.
	deadline := time.Now().Add(15 * time.Second)
	for {
		rec, _, err := b.lock.Get(context.Background())
		if err == nil && rec.HolderIdentity == a.id {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second candidate never saw %s as holder: %+v, %v", a.id, rec, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	if b.leading.Load() {
		t.Fatal("the second candidate leads while the first still does")
	}

	// Cancelling A's elector releases (ReleaseOnCancel → Update with no holder → Resign), and
	// B takes over well within one lease duration.
	a.cancel()
	waitChan(t, a.stopped, 10*time.Second, "the first candidate to stop leading")
	<-a.done
	d = waitChan(t, b.started, 20*time.Second, "the second candidate to lead after the first released")
	t.Logf("%s leads %v after %s released", b.id, d, a.id)
	if rec, _, err := b.lock.Get(context.Background()); err != nil || rec.HolderIdentity != b.id {
		t.Fatalf("Get on the new leader = %+v, %v", rec, err)
	}
	if a.lost.Load() != 0 {
		t.Errorf("OnLost called %d times for a voluntary release", a.lost.Load())
	}
}

func TestIntegrationLostReachesTheElector(t *testing.T) {
	addrA, _ := sidecarAddrs(t)
	name := fmt.Sprintf("rl-lost-%d", rand.Int63())
	g := &guard{leaders: map[string]bool{}, t: t}
	a := runCandidate(t, g, addrA, name, name+"-a")
	waitChan(t, a.started, 30*time.Second, "the candidate to lead")

	// Someone else (here: the test, through the sidecar's API) resigns the campaign: the
	// sidecar sends LOST and ends the stream; OnLost must fire at once.
	conn, err := grpc.NewClient(addrA, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := mclv1.NewElectionClient(conn).Resign(ctx, &mclv1.ResignRequest{
		Lock: &mclv1.LockRef{Namespace: os.Getenv("MCL_NAMESPACE"), Name: name}, Identity: a.id})
	if err != nil || !resp.GetWasLeader() {
		t.Fatalf("Resign = %v, %v; want was_leader", resp, err)
	}
	start := time.Now()
	for a.lost.Load() == 0 {
		if time.Since(start) > 3*time.Second {
			t.Fatal("OnLost not called within 3 s of the sidecar's LOST")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("OnLost %v after Resign returned", time.Since(start))
}

// TestIntegrationFrozenSidecarEndsClientGosLeaderContext: with the lock's LeaderContext given
// to client-go, freezing the leader's sidecar (SIGSTOP) ends client-go's OnStartedLeading context
// at or before the bound of the last LEADER, before the other candidate is granted the lock.
func TestIntegrationFrozenSidecarEndsClientGosLeaderContext(t *testing.T) {
	addrA, addrB := sidecarAddrs(t)
	pid, err := strconv.Atoi(os.Getenv("MCL_SIDECAR_PID"))
	if err != nil {
		t.Fatal("set MCL_SIDECAR_PID, the process of the sidecar at MCL_SIDECAR_ADDR (see client-stubs/test/run.sh)")
	}
	name := fmt.Sprintf("rl-freeze-%d", rand.Int63())
	var mu sync.Mutex
	var boundA, ctxEndedA, grantB int64
	endedA := make(chan struct{})
	startedB := make(chan struct{})
	elector := func(addr, id string, onStarted func(ctx context.Context), onEvent func(election.Event)) {
		lock, err := New(Config{Addr: addr, Namespace: os.Getenv("MCL_NAMESPACE"), Name: name, Identity: id,
			LeaseDuration: 4 * time.Second, Logf: t.Logf, OnEvent: onEvent})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 250 * time.Millisecond,
			ReleaseOnCancel: true, Name: name,
			Callbacks: leaderelection.LeaderCallbacks{OnStartedLeading: onStarted, OnStoppedLeading: func() {}},
		})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); le.Run(lock.LeaderContext(ctx)) }()
		t.Cleanup(func() { cancel(); <-done; lock.Close() })
	}
	elector(addrA, name+"-a", func(ctx context.Context) {
		<-ctx.Done()
		mu.Lock()
		ctxEndedA = election.MonotonicNow()
		mu.Unlock()
		close(endedA)
	}, func(ev election.Event) {
		if ev.GetState() == mclv1.State_LEADER {
			mu.Lock()
			boundA = ev.GetValidity().GetValidUntilMonotonicNs()
			mu.Unlock()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		led := boundA != 0
		mu.Unlock()
		if led {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first candidate did not lead within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	elector(addrB, name+"-b", func(ctx context.Context) { close(startedB); <-ctx.Done() }, func(ev election.Event) {
		if ev.GetState() == mclv1.State_LEADER && !ev.Renewal {
			w := ev.GetLeader().GetAcquireTime().AsTime()
			mu.Lock()
			grantB = election.MonotonicNow() - time.Since(w).Nanoseconds() // wall -> CLOCK_MONOTONIC, this host
			mu.Unlock()
		}
	})
	time.Sleep(2 * time.Second) // b is a candidate (its sidecar renews its spec)
	frozenAt := election.MonotonicNow()
	syscall.Kill(pid, syscall.SIGSTOP)
	defer syscall.Kill(pid, syscall.SIGCONT)
	waitChan(t, endedA, 15*time.Second, "client-go's leader context of the frozen sidecar's candidate to end")
	waitChan(t, startedB, 30*time.Second, "the other candidate to lead")
	syscall.Kill(pid, syscall.SIGCONT)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("frozen at 0: a's leader context ended %+.0f ms, its bound %+.0f ms; b granted %+.0f ms",
		float64(ctxEndedA-frozenAt)/1e6, float64(boundA-frozenAt)/1e6, float64(grantB-frozenAt)/1e6)
	if ctxEndedA > boundA {
		t.Errorf("client-go's leader context ended %.1f ms after the bound", float64(ctxEndedA-boundA)/1e6)
	}
	if ctxEndedA >= grantB {
		t.Errorf("client-go's leader context ended %.1f ms after the other candidate's grant", float64(ctxEndedA-grantB)/1e6)
	}
}
