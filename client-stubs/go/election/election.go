// Package election runs a function only while this process leads an mcl lock, and stops it in
// time: at LOST, at the end of the Campaign stream, and at the validity bound of the last LEADER
// event when no renewal came, on this process's own CLOCK_MONOTONIC. The bound is what keeps two
// apps from acting as leader at once when the sidecar freezes or the connection to it stalls:
// the sidecar sets it to its own LOST deadline, before any other candidate can be granted.
//
//	err := election.RunWhileLeader(ctx, election.Config{Name: "my-lock"},
//		func(ctx context.Context, token int64) error {
//			// Act as leader until ctx is done; pass token to storage that must fence.
//			<-ctx.Done()
//			return nil
//		})
//
// # What Run does
//
//   - Campaigns (opens the sidecar's Campaign stream) and calls fn on its own goroutine when the
//     sidecar reports LEADER with a bound still ahead; fn's context is cancelled at LOST,
//     FOLLOWER or NO_LEADER, at the stream's end, when Run's context ends, and at the bound minus
//     Config.StopMargin unless a renewal (LEADER with the same token and a later bound) came
//     first. context.Cause(ctx) says which (ErrLost, ErrDeadline, ...).
//   - Waits for fn to return before it calls fn again, so two calls never overlap. fn must return
//     soon after its context is done: the library cannot stop code that ignores it.
//   - Starts fn again on the next LEADER (a new grant, or the same one confirmed again after a
//     lapse).
//   - Reconnects with backoff when the stream breaks (sidecar restart), and never reports
//     leadership across a reconnect: a new stream starts as a follower until its own LEADER.
//   - Returns nil when ctx ends (the stream is cancelled, which resigns); fn's error when fn
//     returned on its own while leading (Run resigns first); or a permanent error: a bad lock name
//     or namespace, another live candidacy of this identity, a ClockError, ErrNoValidity.
//
// Fencing tokens remain the defence against the app's own pauses: a process paused between its
// check of IsLeader and its write can act after the bound, so storage should reject writes that
// carry an older token.
package election

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	mclv1 "mcl.dev/mcl/client-stubs/go/mclv1"
)

// DefaultAddr is the sidecar's address when neither Config.Addr nor $MCL_SIDECAR_ADDR is set.
const DefaultAddr = "127.0.0.1:7400"

// DefaultStopMargin is how long before the bound fn's context is cancelled by default: time for
// the timer to fire late on a loaded machine and for fn to notice, so leader work has stopped at
// the bound itself.
const DefaultStopMargin = 100 * time.Millisecond

// Causes of the cancellation of fn's context (context.Cause).
var (
	// ErrLost: the sidecar reported that this candidate no longer leads (LOST, FOLLOWER or
	// NO_LEADER).
	ErrLost = errors.New("mcl election: leadership lost (the sidecar said so)")
	// ErrDeadline: the bound of the last LEADER event passed without a renewal.
	ErrDeadline = errors.New("mcl election: leadership lapsed at its validity bound (no renewal from the sidecar)")
	// ErrStreamEnded: the Campaign stream broke or ended (sidecar restart, connection loss).
	ErrStreamEnded = errors.New("mcl election: campaign stream ended")
	// ErrStopped: Run's context ended; the campaign resigns.
	ErrStopped = errors.New("mcl election: campaign stopped")
)

// Config configures a Campaign. Name is required.
type Config struct {
	// Addr of the sidecar; default $MCL_SIDECAR_ADDR, else DefaultAddr. "unix:///path" selects a
	// unix socket. Ignored when Conn is set.
	Addr string
	// Conn, if set, is used instead of dialling Addr (Close leaves it open).
	Conn *grpc.ClientConn
	// Namespace of the lock; empty means the sidecar's own.
	Namespace string
	// Name of the lock (a DNS-1123 subdomain).
	Name string
	// Identity of this candidate; empty means the sidecar's default (pod name + uid).
	Identity string
	// LeaseDuration sent with the Campaign; 0 means the sidecar's default.
	LeaseDuration time.Duration
	// StopMargin: fn's context is cancelled this long before the bound, and IsLeader turns false
	// then. Default DefaultStopMargin; a negative value means 0.
	StopMargin time.Duration
	// AllowMissingValidity accepts LEADER events without a validity bound (sidecars older than
	// this library) and then leads until LOST or the stream's end, as before the bound existed.
	// Unsafe when the sidecar freezes. By default such an event ends Run with ErrNoValidity.
	AllowMissingValidity bool
	// MinBackoff and MaxBackoff bound the wait before reconnecting after the stream broke
	// (defaults 100 ms and 5 s; doubled after each failure, with jitter).
	MinBackoff, MaxBackoff time.Duration
	// OnEvent, if set, is called on Run's goroutine for each event, in order: after fn has
	// stopped for an event that ends leadership, and before fn starts for a LEADER. The library
	// adds synthetic LOST events (Local set) for a lapsed bound and a stream that ended while
	// leading, so the LEADER..LOST pairs it sees are exactly the times fn may run.
	OnEvent func(Event)
	// Logf logs reconnects and diagnostics; default log.Printf.
	Logf func(format string, args ...any)
}

// Event is one leadership event as the library acted on it.
type Event struct {
	*mclv1.LeadershipEvent
	// ReceivedNs is CLOCK_MONOTONIC when the event arrived (for a synthetic event: when the
	// library decided).
	ReceivedNs int64
	// Renewal: a LEADER for the grant fn already runs under, with a later bound.
	Renewal bool
	// Local: a synthetic LOST made by the library (bound passed, stream ended while leading).
	Local bool
}

// Campaign is a candidacy for one lock; Run drives it.
type Campaign struct {
	cfg      Config
	conn     *grpc.ClientConn
	ownsConn bool
	client   mclv1.ElectionClient
	running  atomic.Bool

	mu         sync.Mutex
	token      int64 // of the running term; 0 while not leading
	stopAtNs   int64 // the bound minus the margin, on CLOCK_MONOTONIC
	validUntil int64 // the bound itself (math.MaxInt64 for an unbounded LEADER)
}

// New returns a Campaign; it dials lazily, so the sidecar need not be up yet.
func New(cfg Config) (*Campaign, error) {
	if cfg.Name == "" {
		return nil, errors.New("mcl election: Config.Name (the lock's name) is required")
	}
	if cfg.LeaseDuration != 0 && (cfg.LeaseDuration < 2*time.Second || cfg.LeaseDuration > time.Hour) {
		return nil, fmt.Errorf("mcl election: Config.LeaseDuration %v is outside the sidecar's range [2s, 1h]", cfg.LeaseDuration)
	}
	if cfg.StopMargin == 0 {
		cfg.StopMargin = DefaultStopMargin
	} else if cfg.StopMargin < 0 {
		cfg.StopMargin = 0
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	if cfg.Logf == nil {
		cfg.Logf = log.Printf
	}
	c := &Campaign{cfg: cfg, conn: cfg.Conn}
	if c.conn == nil {
		conn, addr, err := Dial(cfg.Addr)
		if err != nil {
			return nil, err
		}
		c.conn, c.ownsConn, c.cfg.Addr = conn, true, addr
	}
	c.client = mclv1.NewElectionClient(c.conn)
	return c, nil
}

// Dial makes a (lazy) plaintext connection to the sidecar at addr; an empty addr means
// $MCL_SIDECAR_ADDR, else DefaultAddr. It returns the address it used. The sidecar listens on
// loopback or a unix socket only ("unix:///path"), so plaintext is what it serves.
func Dial(addr string) (*grpc.ClientConn, string, error) {
	if addr == "" {
		addr = os.Getenv("MCL_SIDECAR_ADDR")
	}
	if addr == "" {
		addr = DefaultAddr
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, addr, fmt.Errorf("mcl election: sidecar address %q: %w", addr, err)
	}
	return conn, addr, nil
}

// RunWhileLeader is New(cfg), Run(ctx, fn) and Close in one call.
func RunWhileLeader(ctx context.Context, cfg Config, fn func(ctx context.Context, token int64) error) error {
	c, err := New(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Run(ctx, fn)
}

// Close closes the connection the Campaign dialled. Cancel Run's context first.
func (c *Campaign) Close() error {
	if c.ownsConn {
		return c.conn.Close()
	}
	return nil
}

// Describe names the lock, for messages.
func (c *Campaign) Describe() string {
	ns := c.cfg.Namespace
	if ns == "" {
		ns = "(sidecar namespace)"
	}
	return ns + "/" + c.cfg.Name
}

// IsLeader reports whether this candidate leads now: a LEADER was received on the current
// stream, nothing ended it since, and its bound (minus StopMargin) is still ahead on
// CLOCK_MONOTONIC. Check it right before an action that only the leader may take, and still
// pass the fencing token along.
func (c *Campaign) IsLeader() bool {
	_, ok := c.Leadership()
	return ok
}

// Leadership returns the fencing token of the grant this candidate leads under, and whether it
// leads now (as IsLeader).
func (c *Campaign) Leadership() (token int64, ok bool) {
	c.mu.Lock()
	token, stopAt := c.token, c.stopAtNs
	c.mu.Unlock()
	if token == 0 || MonotonicNow() >= stopAt {
		return 0, false
	}
	return token, true
}

// ValidUntil returns the bound of the current leadership on CLOCK_MONOTONIC (ns), and false
// when not leading.
func (c *Campaign) ValidUntil() (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.validUntil, c.token != 0
}

func (c *Campaign) setLeading(token, validUntil int64) {
	stopAt := validUntil
	if validUntil != math.MaxInt64 {
		stopAt = validUntil - int64(c.cfg.StopMargin)
	}
	c.mu.Lock()
	c.token, c.validUntil, c.stopAtNs = token, validUntil, stopAt
	c.mu.Unlock()
}

// Run campaigns until ctx ends, fn returns on its own, or a permanent error; see the package
// documentation. Only one Run at a time per Campaign.
func (c *Campaign) Run(ctx context.Context, fn func(ctx context.Context, token int64) error) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("mcl election: Run is already running on this Campaign")
	}
	defer c.running.Store(false)
	backoff := c.cfg.MinBackoff
	hadStream := false
	for {
		s := &stream{c: c, fn: fn, lapsed: make(chan *term, 1)}
		res := s.run(ctx, hadStream)
		c.setLeading(0, 0)
		hadStream = hadStream || res.opened
		switch {
		case res.final:
			return res.err
		case ctx.Err() != nil:
			return nil
		}
		if res.gotEvent {
			backoff = c.cfg.MinBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		c.cfg.Logf("mcl election: %s: campaign stream ended (%v); reconnecting in %v", c.Describe(), res.err, wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}
