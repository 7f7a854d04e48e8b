// Package resourcelock provides a client-go resourcelock.Interface backed by the mcl sidecar, so
// leaderelection.RunOrDie and controller-runtime managers (Options.LeaderElectionResourceLockInterface)
// elect one leader across clusters without any other change:
//
//	lock, err := resourcelock.New(resourcelock.Config{Namespace: "default", Name: "my-lock", Identity: id})
//	mgr, err := manager.New(cfg, manager.Options{
//		LeaderElection:                      true,
//		LeaderElectionResourceLockInterface: lock,
//	})
//
// # Safe by default: leader work stops at LOST or at the bound
//
// client-go's elector stops leading only after RenewDeadline of failed renewals, whatever the lock
// says; that is later than the sidecar's LOST and later than the validity bound of its last
// LEADER, so the old leader's work could overlap the next leader's. The lock therefore acts on
// its own, the moment its campaign stops leading (LOST, the bound passed without a renewal, or
// the stream ended) after client-go was told it leads:
//
//   - it cancels every context it handed out through LeaderContext (pass one to
//     leaderelection.RunOrDie, or use Lock.BaseContext as controller-runtime's
//     manager.Options.BaseContext): client-go's OnStartedLeading context, or the manager's
//     runnables, end at once;
//   - it calls Config.OnLost, if set (on its own goroutine);
//   - if neither was used, it exits the process with status 1, as controller-runtime does when it
//     loses leadership and as client-go's examples do in OnStoppedLeading — only sooner.
//
// Config.UnsafeStopAtRenewDeadline turns the exit off and leaves the stop to client-go's
// RenewDeadline (which can overlap the next leader).
//
// # How client-go's elector maps onto the sidecar
//
// The lock runs an election.Campaign (package mcl.dev/mcl/client-stubs/go/election), which keeps
// the Campaign stream open, reconnects with backoff, enforces the bound on CLOCK_MONOTONIC, and
// never reports leadership across a reconnect without a fresh LEADER.
//
//   - Create/Update(ler) with ler.HolderIdentity == Identity() starts the campaign if needed and
//     returns nil only while the campaign leads (a LEADER whose bound is still ahead). Otherwise
//     it returns an error, so the elector keeps retrying every RetryPeriod.
//   - Update(ler) with an empty HolderIdentity (client-go's ReleaseOnCancel) resigns: Resign and
//     the stream is cancelled, so the sidecar releases the lock at once.
//   - Get also starts the campaign (a follower's elector never calls Update while another
//     candidate leads, yet it must be a candidate to be chosen next). It returns a record whose
//     HolderIdentity is the current leader: this candidate while the campaign leads, the other
//     candidate while the sidecar reports FOLLOWER, otherwise whatever the sidecar's Leader call
//     answers (empty if nobody leads). RenewTime is always "now": the sidecar vouches for the
//     holder's liveness, so the elector's own expiry arithmetic must not second-guess it.
//     LeaseDurationSeconds is Config.LeaseDuration.
//
// Leadership belongs to the Campaign stream: Close (or the process exiting) resigns.
package resourcelock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	rl "k8s.io/client-go/tools/leaderelection/resourcelock"

	"mcl.dev/mcl/client-stubs/go/election"
	mclv1 "mcl.dev/mcl/client-stubs/go/mclv1"
)

// DefaultAddr is the sidecar's address when neither Config.Addr nor $MCL_SIDECAR_ADDR (which
// the Helm chart's injection sets) is set.
const DefaultAddr = election.DefaultAddr

// ErrLeadershipLost is the cause (context.Cause) of a LeaderContext's cancellation.
var ErrLeadershipLost = errors.New("mcl resourcelock: leadership lost")

// exit ends the process when leadership is lost and nothing else stops the leader's work
// (a variable for the tests).
var exit = os.Exit

// Config configures a Lock. Name and Identity are required.
type Config struct {
	// Addr of the sidecar's gRPC API; default $MCL_SIDECAR_ADDR, else DefaultAddr.
	// "unix:///path" selects a unix socket. Ignored when Conn is set.
	Addr string
	// Conn, if set, is used instead of dialling Addr (Close then leaves it open).
	Conn *grpc.ClientConn
	// Namespace of the MultiClusterLease; empty means the sidecar's own namespace.
	Namespace string
	// Name of the lock (a DNS-1123 subdomain).
	Name string
	// Identity of this candidate, unique across all clusters (client-go requires it non-empty).
	Identity string
	// LeaseDuration is sent with the Campaign and reported in records; use the same value as
	// leaderelection.LeaderElectionConfig.LeaseDuration. Default 15s.
	LeaseDuration time.Duration
	// OnLost, if set, is called (on its own goroutine) every time this candidate stops leading
	// after client-go was told it leads: at LOST, at the validity bound without a renewal, or when
	// the stream ends. It must make the leader's work stop (the bound is already reached, minus
	// StopMargin). Setting it turns off the default exit.
	OnLost func()
	// UnsafeStopAtRenewDeadline turns off the default exit when neither OnLost nor a
	// LeaderContext is used: the leader's work then stops only when client-go gives up after
	// RenewDeadline, possibly while another candidate already leads.
	UnsafeStopAtRenewDeadline bool
	// StopMargin, AllowMissingValidity: as in election.Config.
	StopMargin           time.Duration
	AllowMissingValidity bool
	// OnEvent, if set, sees every leadership event after the lock acted on it (as
	// election.Config.OnEvent), e.g. for logging.
	OnEvent func(election.Event)
	// Logf logs RecordEvent calls and campaign diagnostics; default log.Printf.
	Logf func(format string, args ...any)
}

// Lock implements k8s.io/client-go/tools/leaderelection/resourcelock.Interface over the sidecar.
type Lock struct {
	cfg      Config
	conn     *grpc.ClientConn
	ownsConn bool
	client   mclv1.ElectionClient
	lockRef  *mclv1.LockRef
	camp     *election.Campaign

	mu         sync.Mutex
	run        *campaignRun // the running campaign, or nil
	closed     bool
	told       bool // Update told client-go "you lead" since the last loss
	usedCtx    bool // LeaderContext was called at least once
	nextCtx    int
	leaderCtxs map[int]context.CancelCauseFunc
}

var _ rl.Interface = (*Lock)(nil)

// campaignRun is one run of the election.Campaign: from the first Get/Update until a resign or a
// permanent error.
type campaignRun struct {
	cancel context.CancelFunc
	first  chan struct{} // closed at the first event or the run's end
	done   chan struct{} // closed when Run returned
	err    error         // Run's result, once done is closed

	mu        sync.Mutex
	view      *mclv1.LeadershipEvent // latest event that was not a renewal
	leading   bool                   // the latest event was LEADER
	resigning bool                   // we are ending it: not a loss
}

// New returns a Lock; it dials lazily, so the sidecar need not be up yet.
func New(cfg Config) (*Lock, error) {
	if cfg.Name == "" {
		return nil, errors.New("mcl resourcelock: Config.Name is required")
	}
	if cfg.Identity == "" {
		return nil, errors.New("mcl resourcelock: Config.Identity is required")
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = 15 * time.Second
	}
	if cfg.LeaseDuration < 2*time.Second {
		return nil, fmt.Errorf("mcl resourcelock: LeaseDuration %v is below the sidecar's minimum of 2s", cfg.LeaseDuration)
	}
	if cfg.Logf == nil {
		cfg.Logf = log.Printf
	}
	l := &Lock{cfg: cfg, conn: cfg.Conn, leaderCtxs: map[int]context.CancelCauseFunc{},
		lockRef: &mclv1.LockRef{Namespace: cfg.Namespace, Name: cfg.Name}}
	if l.conn == nil {
		conn, addr, err := election.Dial(cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("mcl resourcelock: %w", err)
		}
		l.conn, l.ownsConn, l.cfg.Addr = conn, true, addr
	}
	l.client = mclv1.NewElectionClient(l.conn)
	camp, err := election.New(election.Config{Conn: l.conn, Namespace: cfg.Namespace, Name: cfg.Name,
		Identity: cfg.Identity, LeaseDuration: cfg.LeaseDuration, StopMargin: cfg.StopMargin,
		AllowMissingValidity: cfg.AllowMissingValidity, OnEvent: l.onEvent, Logf: cfg.Logf})
	if err != nil {
		return nil, fmt.Errorf("mcl resourcelock: %w", err)
	}
	l.camp = camp
	return l, nil
}

// LeaderContext returns a context derived from parent that the lock cancels (cause
// ErrLeadershipLost) the moment this candidate stops leading after client-go was told it leads.
// Pass it to leaderelection.RunOrDie or LeaderElector.Run: client-go's OnStartedLeading context
// then ends at LOST or at the bound, not RenewDeadline later. Using it turns off the default
// exit (package documentation).
func (l *Lock) LeaderContext(parent context.Context) context.Context {
	ctx, cancel := context.WithCancelCause(parent)
	l.mu.Lock()
	l.usedCtx = true
	id := l.nextCtx
	l.nextCtx++
	l.leaderCtxs[id] = cancel
	l.mu.Unlock()
	context.AfterFunc(ctx, func() {
		l.mu.Lock()
		delete(l.leaderCtxs, id)
		l.mu.Unlock()
	})
	return ctx
}

// BaseContext is LeaderContext(context.Background()), in the shape of controller-runtime's
// manager.Options.BaseContext: the manager's runnables (its controllers) end when leadership is
// lost. The manager itself then stops with "leader election lost" once client-go notices.
func (l *Lock) BaseContext() context.Context { return l.LeaderContext(context.Background()) }

// Identity implements resourcelock.Interface.
func (l *Lock) Identity() string { return l.cfg.Identity }

// Describe implements resourcelock.Interface.
func (l *Lock) Describe() string { return "mcl MultiClusterLease " + l.camp.Describe() }

// RecordEvent implements resourcelock.Interface by logging (the sidecar and the controller record
// Kubernetes Events on the MultiClusterLease themselves).
func (l *Lock) RecordEvent(s string) {
	l.cfg.Logf("mcl resourcelock: %s: %s %s", l.Describe(), l.cfg.Identity, s)
}

// Create implements resourcelock.Interface; it is the same as Update.
func (l *Lock) Create(ctx context.Context, ler rl.LeaderElectionRecord) error {
	return l.Update(ctx, ler)
}

// Update implements resourcelock.Interface: see the package documentation.
func (l *Lock) Update(ctx context.Context, ler rl.LeaderElectionRecord) error {
	switch ler.HolderIdentity {
	case l.cfg.Identity:
	case "":
		return l.resign(ctx)
	default:
		return fmt.Errorf("mcl resourcelock: cannot write holder %q; this lock campaigns only for %q",
			ler.HolderIdentity, l.cfg.Identity)
	}
	r, err := l.ensureCampaign(ctx)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.camp.IsLeader() {
		l.told = true
		return nil
	}
	view := r.snapshot()
	return fmt.Errorf("mcl resourcelock: %s is not the leader of %s (sidecar says %s, leader %q)",
		l.cfg.Identity, l.Describe(), view.GetState(), view.GetLeader().GetIdentity())
}

// Get implements resourcelock.Interface: see the package documentation.
func (l *Lock) Get(ctx context.Context) (*rl.LeaderElectionRecord, []byte, error) {
	rec := rl.LeaderElectionRecord{
		LeaseDurationSeconds: int(l.cfg.LeaseDuration / time.Second),
		RenewTime:            metav1.NewTime(time.Now()),
	}
	// A failure to start the campaign is not fatal to Get: the leader can still be reported,
	// and the next Get/Update tries again.
	r, campaignErr := l.ensureCampaign(ctx)
	var view *mclv1.LeadershipEvent
	if r != nil {
		view = r.snapshot()
	}
	switch {
	case l.camp.IsLeader():
		rec.HolderIdentity = l.cfg.Identity
		rec.AcquireTime = acquireTime(view.GetLeader())
	case view.GetState() == mclv1.State_FOLLOWER && view.GetLeader().GetIdentity() != l.cfg.Identity:
		rec.HolderIdentity = view.GetLeader().GetIdentity()
		rec.AcquireTime = acquireTime(view.GetLeader())
	default:
		// NO_LEADER, LOST, a lapsed bound, or no live stream: ask the sidecar who leads.
		resp, err := l.client.Leader(ctx, &mclv1.LeaderRequest{Lock: l.lockRef})
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			if campaignErr != nil {
				err = fmt.Errorf("%w (campaign: %v)", err, campaignErr)
			}
			return nil, nil, fmt.Errorf("mcl resourcelock: asking the sidecar for the leader of %s: %w", l.Describe(), err)
		case resp.GetLeader().GetIdentity() != l.cfg.Identity:
			rec.HolderIdentity = resp.GetLeader().GetIdentity()
			rec.AcquireTime = acquireTime(resp.GetLeader())
		default:
			// The sidecar's status names us, but our campaign does not lead (yet, or any more):
			// we must not lead, so report nobody.
		}
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, nil, err
	}
	return &rec, raw, nil
}

// Close resigns (if campaigning) and closes the connection it dialled. The Lock can't be used after.
func (l *Lock) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := l.resign(ctx)
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	if l.ownsConn {
		if cerr := l.conn.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// ensureCampaign starts the campaign if it is not running and waits (bounded by ctx and 2 s) for
// its first event, which the sidecar sends at once.
func (l *Lock) ensureCampaign(ctx context.Context) (*campaignRun, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("mcl resourcelock: lock is closed")
	}
	r := l.run
	if r != nil {
		select {
		case <-r.done: // a permanent error ended it: start again
			r = nil
		default:
		}
	}
	if r == nil {
		runCtx, cancel := context.WithCancel(context.Background())
		r = &campaignRun{cancel: cancel, first: make(chan struct{}), done: make(chan struct{})}
		l.run = r
		go func() {
			err := l.camp.Run(runCtx, func(ctx context.Context, _ int64) error { <-ctx.Done(); return nil })
			r.mu.Lock()
			// Still leading here: a permanent error (e.g. a clock check) ended a LEADER.
			wasLeading := r.leading && !r.resigning
			r.err, r.leading = err, false
			r.mu.Unlock()
			close(r.done)
			l.firstSeen(r)
			if err != nil {
				l.cfg.Logf("mcl resourcelock: %s: campaign ended: %v", l.Describe(), err)
			}
			if wasLeading {
				l.lost(fmt.Sprintf("campaign ended: %v", err))
			}
		}()
	}
	l.mu.Unlock()

	wait := time.NewTimer(2 * time.Second)
	defer wait.Stop()
	select {
	case <-r.first:
	case <-ctx.Done():
	case <-wait.C:
	}
	select {
	case <-r.done:
		if r.err != nil {
			return r, fmt.Errorf("mcl resourcelock: campaign for %s: %w", l.Describe(), r.err)
		}
	default:
	}
	return r, nil
}

func (l *Lock) firstSeen(r *campaignRun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.first:
	default:
		close(r.first)
	}
}

// onEvent runs on the campaign's goroutine for every event, after the library acted on it.
func (l *Lock) onEvent(ev election.Event) {
	l.mu.Lock()
	r := l.run
	l.mu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	wasLeading := r.leading
	r.leading = ev.GetState() == mclv1.State_LEADER
	if !ev.Renewal {
		r.view = ev.LeadershipEvent
	}
	resigning := r.resigning
	r.mu.Unlock()
	l.firstSeen(r)
	if wasLeading && !r.leading && !resigning {
		l.lost(fmt.Sprintf("%s (%s)", ev.GetState(), ev.GetReason()))
	}
	if l.cfg.OnEvent != nil {
		l.cfg.OnEvent(ev)
	}
}

func (r *campaignRun) snapshot() *mclv1.LeadershipEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.view
}

// lost stops the leader's work by every means the user chose, or by exiting (package doc).
func (l *Lock) lost(why string) {
	l.mu.Lock()
	told := l.told
	l.told = false
	cancels := l.leaderCtxs
	l.leaderCtxs = map[int]context.CancelCauseFunc{}
	usedCtx := l.usedCtx
	l.mu.Unlock()
	if !told {
		// client-go was never told it leads under this grant: nothing to stop.
		l.cfg.Logf("mcl resourcelock: %s: %s stopped leading before client-go took it up: %s", l.Describe(), l.cfg.Identity, why)
		return
	}
	l.cfg.Logf("mcl resourcelock: %s: %s lost leadership: %s", l.Describe(), l.cfg.Identity, why)
	for _, cancel := range cancels {
		cancel(fmt.Errorf("%w: %s", ErrLeadershipLost, why))
	}
	if l.cfg.OnLost != nil {
		go l.cfg.OnLost()
	}
	if !usedCtx && l.cfg.OnLost == nil && !l.cfg.UnsafeStopAtRenewDeadline {
		l.cfg.Logf("mcl resourcelock: exiting so that the leader's work stops now (client-go would go on until " +
			"RenewDeadline); pass Lock.LeaderContext to client-go or set Config.OnLost to handle this yourself")
		exit(1)
	}
}

// resign ends the campaign, if any, and asks the sidecar to release the lock.
func (l *Lock) resign(ctx context.Context) error {
	l.mu.Lock()
	r := l.run
	l.run = nil
	l.told = false
	l.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	r.resigning = true
	r.mu.Unlock()
	// Resign first, so the sidecar has cleared the holder when it returns; cancelling the stream
	// alone would also resign, but asynchronously.
	_, err := l.client.Resign(ctx, &mclv1.ResignRequest{Lock: l.lockRef, Identity: l.cfg.Identity})
	r.cancel()
	select {
	case <-r.done:
	case <-ctx.Done():
	}
	if status.Code(err) == codes.FailedPrecondition {
		err = nil // the campaign had already ended
	}
	if err != nil {
		return fmt.Errorf("mcl resourcelock: resign %s: %w", l.Describe(), err)
	}
	return nil
}

func acquireTime(ld *mclv1.Leader) metav1.Time {
	if t := ld.GetAcquireTime(); t != nil {
		return metav1.NewTime(t.AsTime())
	}
	return metav1.Time{}
}
