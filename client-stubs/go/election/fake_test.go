package election

// A fake sidecar for the unit tests: a real gRPC server on 127.0.0.1 whose Campaign streams the
// test scripts event by event (LEADER with a validity bound, renewals, LOST, a broken stream).

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	mclv1 "mcl.dev/mcl/client-stubs/go/mclv1"
)

type fakeSidecar struct {
	mclv1.UnimplementedElectionServer
	streams chan *fakeStream // one per Campaign call, in order
	// refuse, if set, answers the next Campaign calls with this error instead of a stream.
	refuse chan error
}

// fakeStream is one open Campaign stream, driven by the test.
type fakeStream struct {
	req    *mclv1.CampaignRequest
	events chan *mclv1.LeadershipEvent
	end    chan error    // ends the stream with this status (nil: OK)
	closed chan struct{} // closed when the stream is over (the client cancelled or we ended it)
}

func (f *fakeSidecar) Campaign(req *mclv1.CampaignRequest, srv grpc.ServerStreamingServer[mclv1.LeadershipEvent]) error {
	select {
	case err := <-f.refuse:
		return err
	default:
	}
	s := &fakeStream{req: req, events: make(chan *mclv1.LeadershipEvent, 16), end: make(chan error, 1),
		closed: make(chan struct{})}
	defer close(s.closed)
	f.streams <- s
	for {
		select {
		case <-srv.Context().Done():
			return nil
		case err := <-s.end:
			return err
		case ev := <-s.events:
			if err := srv.Send(ev); err != nil {
				return err
			}
		}
	}
}

func startFake(t *testing.T) (*fakeSidecar, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSidecar{streams: make(chan *fakeStream, 16), refuse: make(chan error, 4)}
	srv := grpc.NewServer()
	mclv1.RegisterElectionServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return f, lis.Addr().String()
}

func (f *fakeSidecar) next(t *testing.T) *fakeStream {
	t.Helper()
	select {
	case s := <-f.streams:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no Campaign stream opened within 5 s")
		return nil
	}
}

// leader sends LEADER for token, valid for `valid` from now (sent now).
func (s *fakeStream) leader(token int64, valid time.Duration) int64 {
	now := MonotonicNow()
	until := now + int64(valid)
	s.events <- &mclv1.LeadershipEvent{State: mclv1.State_LEADER,
		Leader: &mclv1.Leader{Identity: "me", Cluster: "c0", FencingToken: token},
		Validity: &mclv1.Validity{ValidUntilMonotonicNs: until, SentMonotonicNs: now,
			Remaining: durationpb.New(valid)}}
	return until
}

func (s *fakeStream) state(st mclv1.State, token int64) {
	s.events <- &mclv1.LeadershipEvent{State: st, Leader: &mclv1.Leader{Identity: "other", FencingToken: token}}
}

func (s *fakeStream) breakIt() { s.end <- status.Error(codes.Unavailable, "sidecar restarting") }

func (s *fakeStream) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the client did not end the Campaign stream within 5 s")
	}
}

// recorder is an fn that records each call's token, start and stop on CLOCK_MONOTONIC.
type recorder struct {
	starts chan int64 // token
	stops  chan stop
}

type stop struct {
	token int64
	at    int64
	cause error
}

func newRecorder() *recorder {
	return &recorder{starts: make(chan int64, 16), stops: make(chan stop, 16)}
}

func (r *recorder) fn(ctx context.Context, token int64) error {
	r.starts <- token
	<-ctx.Done()
	r.stops <- stop{token: token, at: MonotonicNow(), cause: context.Cause(ctx)}
	return nil
}

func (r *recorder) started(t *testing.T, want int64) {
	t.Helper()
	select {
	case got := <-r.starts:
		if got != want {
			t.Fatalf("fn started with token %d, want %d", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("fn did not start (token %d) within 5 s", want)
	}
}

func (r *recorder) stopped(t *testing.T) stop {
	t.Helper()
	select {
	case s := <-r.stops:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("fn was not stopped within 5 s")
		return stop{}
	}
}

func (r *recorder) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case tok := <-r.starts:
		t.Fatalf("fn started (token %d) when it must not", tok)
	case s := <-r.stops:
		t.Fatalf("fn stopped (token %d, %v) when it must not", s.token, s.cause)
	case <-time.After(d):
	}
}

type runResult struct{ err error }

// run starts Run in the background; the returned channel gets its result.
func run(t *testing.T, cfg Config, fn func(context.Context, int64) error) (*Campaign, context.CancelFunc, chan error) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "lock"
	}
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 20 * time.Millisecond
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, fn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5 s of its context's end")
		}
		c.Close()
	})
	return c, cancel, done
}

func result(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		done <- err // for the cleanup
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5 s")
		return nil
	}
}
