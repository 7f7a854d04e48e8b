//go:build integration

package election

// The real test bed (client-stubs/test/with_testbed.sh runs it through run.sh):
//
//	MCL_SIDECAR_ADDR=127.0.0.1:P MCL_SIDECAR_PID=N MCL_SIDECAR_ADDR_2=127.0.0.1:Q \
//	  go test -tags integration -run Integration ./election
//
// MCL_SIDECAR_PID is the process of the sidecar at MCL_SIDECAR_ADDR: the test freezes it.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	mclv1 "mcl.dev/mcl/client-stubs/go/mclv1"
)

// leaderLog records, on CLOCK_MONOTONIC, what one candidate's app did.
type leaderLog struct {
	mu        sync.Mutex
	bound     int64 // the bound of the latest LEADER event
	lastWork  int64 // the latest step of leader work
	stoppedAt int64 // when leader work returned after its context ended
	grantRecv int64 // when a LEADER of a new grant arrived
	grantSent int64 // its sent_monotonic_ns
	grantWall time.Time
	token     int64
	started   chan int64
	stopped   chan struct{}
}

func newLeaderLog() *leaderLog {
	return &leaderLog{started: make(chan int64, 4), stopped: make(chan struct{}, 4)}
}

func (g *leaderLog) onEvent(ev Event) {
	if ev.GetState() != mclv1.State_LEADER {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.bound = ev.GetValidity().GetValidUntilMonotonicNs()
	if !ev.Renewal && g.grantRecv == 0 {
		g.grantRecv, g.grantSent = ev.ReceivedNs, ev.GetValidity().GetSentMonotonicNs()
		g.grantWall = ev.GetLeader().GetAcquireTime().AsTime()
		g.token = ev.GetLeader().GetFencingToken()
	}
}

// work is the leader work: a step every 5 ms while IsLeader, until its context ends.
func (g *leaderLog) work(c **Campaign) func(ctx context.Context, token int64) error {
	return func(ctx context.Context, token int64) error {
		g.started <- token
		for ctx.Err() == nil {
			if (*c).IsLeader() {
				g.mu.Lock()
				g.lastWork = MonotonicNow()
				g.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
		g.mu.Lock()
		g.stoppedAt = MonotonicNow()
		g.mu.Unlock()
		g.stopped <- struct{}{}
		return nil
	}
}

// startCandidate campaigns for name on addr with g's leader work; the returned func (also run at
// the test's end) stops it and waits for Run to return.
func startCandidate(t *testing.T, ctx context.Context, addr, name, id string, g *leaderLog) (stop func()) {
	t.Helper()
	var c *Campaign
	c, err := New(Config{Addr: addr, Namespace: os.Getenv("MCL_NAMESPACE"), Name: name, Identity: id,
		LeaseDuration: 4 * time.Second, OnEvent: g.onEvent, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, g.work(&c)) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: Run = %v", id, err)
			}
			c.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// monotonicOfWall converts a wall-clock time of this host to CLOCK_MONOTONIC (for the grant's
// acquire time, which the controller on this host stamps with its wall clock). Valid while
// nobody steps the wall clock during the test.
func monotonicOfWall(w time.Time) int64 {
	mono, wall := MonotonicNow(), time.Now()
	return mono - wall.Sub(w).Nanoseconds()
}

// TestIntegrationFrozenSidecarStopsLeaderWork freezes the leading candidate's sidecar (SIGSTOP):
// its app must stop its leader work at or before the bound of its last LEADER, and before the
// other candidate is granted the lock.
func TestIntegrationFrozenSidecarStopsLeaderWork(t *testing.T) {
	addrA, addrB := os.Getenv("MCL_SIDECAR_ADDR"), os.Getenv("MCL_SIDECAR_ADDR_2")
	pid, err := strconv.Atoi(os.Getenv("MCL_SIDECAR_PID"))
	if addrA == "" || addrB == "" || err != nil {
		t.Fatal("set MCL_SIDECAR_ADDR, MCL_SIDECAR_PID (its process) and MCL_SIDECAR_ADDR_2 (see client-stubs/test/run.sh)")
	}
	name := fmt.Sprintf("go-freeze-%d", rand.Int64N(1e12))
	ctx := context.Background()

	a, b := newLeaderLog(), newLeaderLog()
	startCandidate(t, ctx, addrA, name, name+"-a", a)
	select {
	case <-a.started:
	case <-time.After(30 * time.Second):
		t.Fatal("candidate a did not lead within 30 s")
	}
	startCandidate(t, ctx, addrB, name, name+"-b", b)
	time.Sleep(time.Second) // b is a candidate now (its sidecar renews its spec)

	frozenAt := MonotonicNow()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			syscall.Kill(pid, syscall.SIGCONT)
			thawed = true
		}
	}
	defer thaw()
	select {
	case <-a.stopped:
	case <-time.After(15 * time.Second):
		thaw()
		t.Fatal("a's leader work still runs 15 s after its sidecar froze")
	}
	select {
	case <-b.started:
	case <-time.After(30 * time.Second):
		thaw()
		t.Fatal("b was not granted the lock within 30 s of a's freeze")
	}
	thaw()

	a.mu.Lock()
	b.mu.Lock()
	defer a.mu.Unlock()
	defer b.mu.Unlock()
	grant := monotonicOfWall(b.grantWall)
	t.Logf("a: frozen at 0, last work %+.0f ms, stopped %+.0f ms, bound %+.0f ms; b: granted %+.0f ms "+
		"(acquire time), LEADER sent %+.0f ms, received %+.0f ms",
		ms(a.lastWork-frozenAt), ms(a.stoppedAt-frozenAt), ms(a.bound-frozenAt), ms(grant-frozenAt),
		ms(b.grantSent-frozenAt), ms(b.grantRecv-frozenAt))
	if a.stoppedAt > a.bound {
		t.Errorf("a's leader work stopped %.1f ms after its bound", ms(a.stoppedAt-a.bound))
	}
	if a.lastWork > a.stoppedAt {
		t.Errorf("a worked after it stopped")
	}
	if a.stoppedAt >= grant {
		t.Errorf("a's leader work stopped %.1f ms after b was granted the lock", ms(a.stoppedAt-grant))
	}
	if a.stoppedAt >= b.grantSent {
		t.Errorf("a's leader work stopped %.1f ms after b's LEADER was sent", ms(a.stoppedAt-b.grantSent))
	}
	// One line for docs/benchmarks.md (client-stubs/test/run.sh collects it).
	fmt.Printf("FREEZE lang=go stop_before_bound_ms=%.1f stop_before_grant_ms=%.1f stop_before_leader_event_ms=%.1f freeze_to_stop_ms=%.1f\n",
		ms(a.bound-a.stoppedAt), ms(grant-a.stoppedAt), ms(b.grantRecv-a.stoppedAt), ms(a.stoppedAt-frozenAt))
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }
