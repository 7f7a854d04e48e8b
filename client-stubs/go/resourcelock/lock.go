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
// # How client-go's elector maps onto the sidecar
//
// client-go's LeaderElector believes it leads while Create/Update of a record naming its own
// identity succeed. The sidecar decides who leads; this lock only reports its decision:
//
//   - Create/Update(ler) with ler.HolderIdentity == Identity() makes sure a Campaign stream is open
//     for (Namespace, Name, Identity) and returns nil only while that stream's latest event is
//     LEADER. Otherwise it returns an error, so the elector keeps retrying every RetryPeriod.
//   - Update(ler) with an empty HolderIdentity (client-go's ReleaseOnCancel) resigns: the stream is
//     cancelled and Resign is called, so the sidecar releases the lock at once.
//   - Get also opens the Campaign (a follower's elector never calls Update while another candidate
//     leads, yet it must be a candidate to be chosen next). It returns a record whose
//     HolderIdentity is the current leader: this candidate while the sidecar reports LEADER, the
//     other candidate while it reports FOLLOWER, otherwise whatever the sidecar's Leader call
//     answers (empty if nobody leads). RenewTime is always "now": the sidecar vouches for the
//     holder's liveness, so the elector's own expiry arithmetic must not second-guess it.
//     LeaseDurationSeconds is Config.LeaseDuration.
//   - When the sidecar reports LOST (or the stream breaks while leading), Get stops naming this
//     candidate and Update fails, so the elector stops leading once its RenewDeadline passes.
//     client-go cannot be told sooner; set Config.OnLost to stop work at once (for example exit
//     the process, as controller-runtime does when it loses leadership).
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
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	rl "k8s.io/client-go/tools/leaderelection/resourcelock"

	mclv1 "mcl.dev/mcl/client-stubs/go/mclv1"
)

// DefaultAddr is the sidecar's address when neither Config.Addr nor $MCL_SIDECAR_ADDR (which
// the Helm chart's injection sets) is set.
const DefaultAddr = "127.0.0.1:7400"

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
	// according to the sidecar, before client-go's elector notices.
	OnLost func()
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

	mu       sync.Mutex
	campaign *campaign // the open Campaign stream, or nil
	closed   bool
}

var _ rl.Interface = (*Lock)(nil)

// campaign is one Campaign stream and the latest event it delivered.
type campaign struct {
	cancel context.CancelFunc
	first  chan struct{} // closed when the first event (or the stream's end) arrives
	done   chan struct{} // closed when the stream has ended
	mu     sync.Mutex
	last   *mclv1.LeadershipEvent // nil until the first event
	err    error                  // why the stream ended
	// resigned: we ended the stream ourselves (release or Close), which is not a loss.
	resigned atomic.Bool
}

func (c *campaign) snapshot() (*mclv1.LeadershipEvent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return c.last, false
	default:
		return c.last, true
	}
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
	l := &Lock{cfg: cfg, conn: cfg.Conn,
		lockRef: &mclv1.LockRef{Namespace: cfg.Namespace, Name: cfg.Name}}
	if l.conn == nil {
		addr := cfg.Addr
		if addr == "" {
			addr = os.Getenv("MCL_SIDECAR_ADDR")
		}
		if addr == "" {
			addr = DefaultAddr
		}
		l.cfg.Addr = addr
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("mcl resourcelock: sidecar address %q: %w", addr, err)
		}
		l.conn, l.ownsConn = conn, true
	}
	l.client = mclv1.NewElectionClient(l.conn)
	return l, nil
}

// Identity implements resourcelock.Interface.
func (l *Lock) Identity() string { return l.cfg.Identity }

// Describe implements resourcelock.Interface.
func (l *Lock) Describe() string {
	ns := l.cfg.Namespace
	if ns == "" {
		ns = "(sidecar namespace)"
	}
	return fmt.Sprintf("mcl MultiClusterLease %s/%s", ns, l.cfg.Name)
}

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
	c, err := l.ensureCampaign(ctx)
	if err != nil {
		return err
	}
	ev, open := c.snapshot()
	if open && ev.GetState() == mclv1.State_LEADER {
		return nil
	}
	return fmt.Errorf("mcl resourcelock: %s is not the leader of %s (sidecar says %s, leader %q)",
		l.cfg.Identity, l.Describe(), stateOf(ev, open), ev.GetLeader().GetIdentity())
}

// Get implements resourcelock.Interface: see the package documentation.
func (l *Lock) Get(ctx context.Context) (*rl.LeaderElectionRecord, []byte, error) {
	rec := rl.LeaderElectionRecord{
		LeaseDurationSeconds: int(l.cfg.LeaseDuration / time.Second),
		RenewTime:            metav1.NewTime(time.Now()),
	}
	// A failure to open the campaign is not fatal to Get: the leader can still be reported,
	// and the next Get/Update tries again.
	c, campaignErr := l.ensureCampaign(ctx)
	var ev *mclv1.LeadershipEvent
	open := false
	if c != nil {
		ev, open = c.snapshot()
	}
	switch {
	case open && ev.GetState() == mclv1.State_LEADER:
		rec.HolderIdentity = l.cfg.Identity
		rec.AcquireTime = acquireTime(ev.GetLeader())
	case open && ev.GetState() == mclv1.State_FOLLOWER && ev.GetLeader().GetIdentity() != l.cfg.Identity:
		rec.HolderIdentity = ev.GetLeader().GetIdentity()
		rec.AcquireTime = acquireTime(ev.GetLeader())
	default:
		// NO_LEADER, LOST, or no live stream: ask the sidecar who leads.
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
			// The sidecar's status names us, but our Campaign is not (or no longer) LEADER: we
			// must not lead, so report nobody.
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

// ensureCampaign opens a Campaign stream if none is open and waits (bounded by ctx and 2 s) for
// its first event, which the sidecar sends at once.
func (l *Lock) ensureCampaign(ctx context.Context) (*campaign, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("mcl resourcelock: lock is closed")
	}
	c := l.campaign
	if c != nil {
		select {
		case <-c.done:
			c = nil // ended: open a new one
		default:
		}
	}
	if c == nil {
		streamCtx, cancel := context.WithCancel(context.Background())
		stream, err := l.client.Campaign(streamCtx, &mclv1.CampaignRequest{
			Lock:                 l.lockRef,
			Identity:             l.cfg.Identity,
			LeaseDurationSeconds: int32(l.cfg.LeaseDuration / time.Second),
		})
		if err != nil {
			cancel()
			l.mu.Unlock()
			return nil, fmt.Errorf("mcl resourcelock: campaign for %s: %w", l.Describe(), err)
		}
		c = &campaign{cancel: cancel, first: make(chan struct{}), done: make(chan struct{})}
		l.campaign = c
		go l.receive(c, stream)
	}
	l.mu.Unlock()

	wait := time.NewTimer(2 * time.Second)
	defer wait.Stop()
	select {
	case <-c.first:
	case <-ctx.Done():
	case <-wait.C:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil && c.err != nil {
		return c, fmt.Errorf("mcl resourcelock: campaign for %s: %w", l.Describe(), c.err)
	}
	return c, nil
}

// receive records the stream's events until it ends.
func (l *Lock) receive(c *campaign, stream grpc.ServerStreamingClient[mclv1.LeadershipEvent]) {
	var firstOnce sync.Once
	wasLeader := false
	for {
		ev, err := stream.Recv()
		c.mu.Lock()
		if err != nil {
			c.err = err
			close(c.done)
			c.mu.Unlock()
			firstOnce.Do(func() { close(c.first) })
			c.cancel()
			if wasLeader && !c.resigned.Load() {
				l.lost("campaign stream ended: " + err.Error())
			} else if status.Code(err) != codes.Canceled {
				l.cfg.Logf("mcl resourcelock: %s: campaign stream ended: %v", l.Describe(), err)
			}
			return
		}
		c.last = ev
		c.mu.Unlock()
		firstOnce.Do(func() { close(c.first) })

		isLeader := ev.GetState() == mclv1.State_LEADER
		if wasLeader && !isLeader && !c.resigned.Load() {
			l.lost(fmt.Sprintf("sidecar says %s (%s)", ev.GetState(), ev.GetReason()))
		}
		wasLeader = isLeader
	}
}

func (l *Lock) lost(why string) {
	l.cfg.Logf("mcl resourcelock: %s: %s lost leadership: %s", l.Describe(), l.cfg.Identity, why)
	if l.cfg.OnLost != nil {
		go l.cfg.OnLost()
	}
}

// resign cancels the open campaign, if any, and asks the sidecar to release the lock.
func (l *Lock) resign(ctx context.Context) error {
	l.mu.Lock()
	c := l.campaign
	l.campaign = nil
	l.mu.Unlock()
	if c == nil {
		return nil
	}
	c.resigned.Store(true)
	// Resign first, so the sidecar has cleared the holder when it returns; cancelling the stream
	// alone would also resign, but asynchronously.
	_, err := l.client.Resign(ctx, &mclv1.ResignRequest{Lock: l.lockRef, Identity: l.cfg.Identity})
	c.cancel()
	select {
	case <-c.done:
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

func stateOf(ev *mclv1.LeadershipEvent, open bool) string {
	switch {
	case !open:
		return "campaign stream closed"
	case ev == nil:
		return "no event yet"
	default:
		return ev.GetState().String()
	}
}
