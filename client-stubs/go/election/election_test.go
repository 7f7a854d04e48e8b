package election

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mclv1 "mcl.dev/mcl/client-stubs/go/mclv1"
)

func TestLostCancelsLeaderWork(t *testing.T) {
	f, addr := startFake(t)
	r := newRecorder()
	c, _, _ := run(t, Config{Addr: addr, Namespace: "ns", Identity: "me", LeaseDuration: 4 * time.Second}, r.fn)
	s := f.next(t)
	if s.req.GetLock().GetNamespace() != "ns" || s.req.GetLock().GetName() != "lock" ||
		s.req.GetIdentity() != "me" || s.req.GetLeaseDurationSeconds() != 4 {
		t.Errorf("campaign request %v", s.req)
	}
	s.state(mclv1.State_FOLLOWER, 3)
	r.quiet(t, 100*time.Millisecond)
	if c.IsLeader() {
		t.Fatal("IsLeader while FOLLOWER")
	}
	s.leader(7, 10*time.Second)
	r.started(t, 7)
	if tok, ok := c.Leadership(); !ok || tok != 7 {
		t.Fatalf("Leadership() = %d, %v; want 7, true", tok, ok)
	}
	s.state(mclv1.State_LOST, 7)
	if st := r.stopped(t); !errors.Is(st.cause, ErrLost) {
		t.Errorf("cause %v, want ErrLost", st.cause)
	}
	if c.IsLeader() {
		t.Error("IsLeader after LOST")
	}
}

func TestDeadlineLapsesWithoutRenewal(t *testing.T) {
	f, addr := startFake(t)
	r := newRecorder()
	var mu sync.Mutex
	var events []Event
	c, _, _ := run(t, Config{Addr: addr, OnEvent: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }}, r.fn)
	s := f.next(t)
	bound := s.leader(5, 400*time.Millisecond)
	r.started(t, 5)
	if until, ok := c.ValidUntil(); !ok || until != bound {
		t.Errorf("ValidUntil() = %d, %v; want %d", until, ok, bound)
	}
	st := r.stopped(t)
	if !errors.Is(st.cause, ErrDeadline) {
		t.Errorf("cause %v, want ErrDeadline", st.cause)
	}
	if st.at > bound {
		t.Errorf("leader work stopped %v after the bound", time.Duration(st.at-bound))
	}
	if early := time.Duration(bound - st.at); early > DefaultStopMargin+200*time.Millisecond {
		t.Errorf("leader work stopped %v before the bound; want about the margin (%v)", early, DefaultStopMargin)
	}
	if c.IsLeader() {
		t.Error("IsLeader after the bound")
	}
	// The application sees the lapse as a LOST of its own, after the LEADER.
	waitFor(t, "the local LOST event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := len(events)
		return n == 2 && events[1].GetState() == mclv1.State_LOST && events[1].Local && events[0].GetState() == mclv1.State_LEADER
	})
	// The stream stays open: a later LEADER (same grant, confirmed again) starts fn again.
	s.leader(5, 10*time.Second)
	r.started(t, 5)
}

func TestRenewalExtendsTheBound(t *testing.T) {
	f, addr := startFake(t)
	r := newRecorder()
	var renewals atomic.Int32
	c, _, _ := run(t, Config{Addr: addr, OnEvent: func(e Event) {
		if e.Renewal {
			renewals.Add(1)
		}
	}}, r.fn)
	s := f.next(t)
	s.leader(9, 300*time.Millisecond)
	r.started(t, 9)
	// Renew every 100 ms for 1.2 s, each bound 300 ms ahead: fn must keep running throughout,
	// four times past the first bound.
	var last int64
	for i := 0; i < 12; i++ {
		time.Sleep(100 * time.Millisecond)
		last = s.leader(9, 300*time.Millisecond)
		if !c.IsLeader() {
			t.Fatalf("IsLeader false during renewals (round %d)", i)
		}
	}
	r.quiet(t, 0)
	st := r.stopped(t)
	if !errors.Is(st.cause, ErrDeadline) || st.at > last {
		t.Errorf("after the renewals stopped: cause %v, %v after the last bound", st.cause, time.Duration(st.at-last))
	}
	if n := renewals.Load(); n != 12 {
		t.Errorf("%d renewals reported, want 12", n)
	}
}

func TestStreamEndCancelsAndReconnectNeverReportsLeader(t *testing.T) {
	f, addr := startFake(t)
	r := newRecorder()
	c, _, _ := run(t, Config{Addr: addr}, r.fn)
	s := f.next(t)
	s.leader(11, 10*time.Second)
	r.started(t, 11)
	s.breakIt()
	if st := r.stopped(t); !errors.Is(st.cause, ErrStreamEnded) {
		t.Errorf("cause %v, want ErrStreamEnded", st.cause)
	}
	// The library reconnects; the new stream is not leading until it says so itself, even
	// though the old grant's bound is still ahead.
	s2 := f.next(t)
	s2.state(mclv1.State_NO_LEADER, 0)
	r.quiet(t, 200*time.Millisecond)
	if c.IsLeader() {
		t.Fatal("IsLeader after a reconnect without a fresh LEADER")
	}
	s2.leader(12, 10*time.Second)
	r.started(t, 12)
}

func TestClockCheckRefusesToLead(t *testing.T) {
	f, addr := startFake(t)
	r := newRecorder()
	_, _, done := run(t, Config{Addr: addr}, r.fn)
	s := f.next(t)
	// Sent "in the future" of our clock: another host or time namespace.
	now := MonotonicNow()
	s.events <- &mclv1.LeadershipEvent{State: mclv1.State_LEADER, Leader: &mclv1.Leader{FencingToken: 3},
		Validity: &mclv1.Validity{SentMonotonicNs: now + int64(time.Hour), ValidUntilMonotonicNs: now + 2*int64(time.Hour)}}
	err := result(t, done)
	var ce *ClockError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "do not share CLOCK_MONOTONIC") {
		t.Fatalf("Run = %v, want a ClockError", err)
	}
	r.quiet(t, 50*time.Millisecond)
	s.waitClosed(t) // the campaign was cancelled: the sidecar resigns it
}

func TestMissingValidityRefusedByDefault(t *testing.T) {
	f, addr := startFake(t)
	r := newRecorder()
	_, _, done := run(t, Config{Addr: addr}, r.fn)
	s := f.next(t)
	s.events <- &mclv1.LeadershipEvent{State: mclv1.State_LEADER, Leader: &mclv1.Leader{FencingToken: 3}}
	if err := result(t, done); !errors.Is(err, ErrNoValidity) {
		t.Fatalf("Run = %v, want ErrNoValidity", err)
	}
	r.quiet(t, 50*time.Millisecond)
	s.waitClosed(t)
}

func TestMissingValidityAllowedLeadsUntilLost(t *testing.T) {
	f, addr := startFake(t)
	r := newRecorder()
	c, _, _ := run(t, Config{Addr: addr, AllowMissingValidity: true}, r.fn)
	s := f.next(t)
	s.events <- &mclv1.LeadershipEvent{State: mclv1.State_LEADER, Leader: &mclv1.Leader{FencingToken: 3}}
	r.started(t, 3)
	s.events <- &mclv1.LeadershipEvent{State: mclv1.State_LEADER, Leader: &mclv1.Leader{FencingToken: 3}}
	r.quiet(t, 200*time.Millisecond)
	if !c.IsLeader() {
		t.Fatal("not leading under an unbounded LEADER")
	}
	s.state(mclv1.State_LOST, 3)
	if st := r.stopped(t); !errors.Is(st.cause, ErrLost) {
		t.Errorf("cause %v", st.cause)
	}
}

func TestLeaderPastItsBoundIsIgnored(t *testing.T) {
	f, addr := startFake(t)
	r := newRecorder()
	c, _, _ := run(t, Config{Addr: addr}, r.fn)
	s := f.next(t)
	s.leader(4, 50*time.Millisecond) // within the stop margin: already over
	r.quiet(t, 200*time.Millisecond)
	if c.IsLeader() {
		t.Fatal("leading on an expired LEADER")
	}
}

func TestFnReturningResignsAndEndsRun(t *testing.T) {
	f, addr := startFake(t)
	boom := errors.New("job failed")
	_, _, done := run(t, Config{Addr: addr}, func(ctx context.Context, token int64) error { return boom })
	s := f.next(t)
	s.leader(2, 10*time.Second)
	if err := result(t, done); !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want fn's error", err)
	}
	s.waitClosed(t)
}

func TestCancelStopsWorkAndResigns(t *testing.T) {
	f, addr := startFake(t)
	r := newRecorder()
	_, cancel, done := run(t, Config{Addr: addr}, r.fn)
	s := f.next(t)
	s.leader(2, 10*time.Second)
	r.started(t, 2)
	cancel()
	if st := r.stopped(t); !errors.Is(st.cause, context.Canceled) && !errors.Is(st.cause, ErrStopped) {
		t.Errorf("cause %v", st.cause)
	}
	if err := result(t, done); err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
	s.waitClosed(t)
}

func TestPermanentErrorsEndRun(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{status.Error(codes.NotFound, `namespace "nope" does not exist`), `namespace "nope"`},
		{status.Error(codes.InvalidArgument, "lock name: invalid"), "lock name"},
		{status.Error(codes.AlreadyExists, "identity me already campaigns"), "already campaigns"},
	} {
		f, addr := startFake(t)
		f.refuse <- tc.err
		_, _, done := run(t, Config{Addr: addr}, newRecorder().fn)
		if err := result(t, done); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run = %v, want an error containing %q", err, tc.want)
		}
	}
}

func TestUnavailableIsRetried(t *testing.T) {
	f, addr := startFake(t)
	f.refuse <- status.Error(codes.Unavailable, "apiserver unreachable")
	f.refuse <- status.Error(codes.Unavailable, "apiserver unreachable")
	r := newRecorder()
	run(t, Config{Addr: addr}, r.fn)
	s := f.next(t)
	s.leader(8, 10*time.Second)
	r.started(t, 8)
}

func TestConfigErrors(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "Name") {
		t.Errorf("New without a name = %v", err)
	}
	if _, err := New(Config{Name: "l", LeaseDuration: time.Second}); err == nil || !strings.Contains(err.Error(), "LeaseDuration") {
		t.Errorf("New with a 1 s lease = %v", err)
	}
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
