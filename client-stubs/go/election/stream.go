package election

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mclv1 "mcl.dev/mcl/client-stubs/go/mclv1"
)

// stream is one Campaign stream and the leader terms that run under it. Its run loop is the only
// goroutine that changes its state; a term's lapse timer only cancels the term's context and
// tells the loop.
type stream struct {
	c      *Campaign
	fn     func(ctx context.Context, token int64) error
	term   *term      // the running (or stopping) call of fn, or nil
	lapsed chan *term // a term whose lapse timer fired
}

// term is one call of fn, for one grant.
type term struct {
	token  int64
	cancel context.CancelCauseFunc
	ctx    context.Context
	done   chan struct{}
	err    error       // fn's result, once done is closed
	timer  *time.Timer // cancels ctx at the bound minus the margin; nil for an unbounded LEADER
	lapsed atomic.Bool // the timer fired
}

type received struct {
	ctx context.Context // Run's
	ev  *mclv1.LeadershipEvent
	at  int64 // CLOCK_MONOTONIC on receipt
	err error
}

type streamResult struct {
	err      error
	final    bool // Run must return err (permanent error, or fn returned on its own)
	opened   bool // the sidecar accepted the stream (sent at least one event)
	gotEvent bool
}

func (s *stream) run(ctx context.Context, hadStream bool) streamResult {
	c := s.c
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := &mclv1.CampaignRequest{
		Lock:                 &mclv1.LockRef{Namespace: c.cfg.Namespace, Name: c.cfg.Name},
		Identity:             c.cfg.Identity,
		LeaseDurationSeconds: int32(c.cfg.LeaseDuration / time.Second),
	}
	grpcStream, err := c.client.Campaign(streamCtx, req)
	if err != nil {
		return s.classify(ctx, err, hadStream, false)
	}
	events := make(chan received)
	go func() {
		for {
			ev, err := grpcStream.Recv()
			r := received{ctx: ctx, ev: ev, at: MonotonicNow(), err: err}
			select {
			case events <- r:
			case <-streamCtx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	gotEvent := false
	for {
		select {
		case <-ctx.Done():
			s.stopTerm(ErrStopped)
			return streamResult{opened: gotEvent, gotEvent: gotEvent}
		case t := <-s.lapsed:
			if t == s.term {
				s.endLapsed()
			}
		case <-s.termDone():
			t := s.term
			switch {
			case ctx.Err() != nil:
				s.stopTerm(ErrStopped)
				return streamResult{opened: gotEvent, gotEvent: gotEvent}
			case t.ctx.Err() == nil:
				// fn returned while its context was live: the app is done leading. Resign (the
				// deferred cancel ends the stream) and hand fn's result to Run's caller.
				s.stopTerm(ErrStopped)
				return streamResult{err: t.err, final: true, opened: true, gotEvent: true}
			default:
				// Every other cancellation waits in stopTerm, so this one was the lapse timer.
				s.endLapsed()
			}
		case r := <-events:
			if r.err != nil {
				var lostTok int64
				if s.term != nil {
					lostTok = s.term.token
				}
				s.stopTerm(ErrStreamEnded)
				if lostTok != 0 {
					s.emit(localLost(lostTok, "campaign stream ended: "+r.err.Error()), MonotonicNow(), false, true)
				}
				return s.classify(ctx, r.err, hadStream, gotEvent)
			}
			gotEvent = true
			if err := s.handle(r); err != nil {
				return streamResult{err: err, final: true, opened: true, gotEvent: true}
			}
		}
	}
}

// handle acts on one event from the sidecar; an error is permanent and ends Run.
func (s *stream) handle(r received) error {
	ev := r.ev
	if ev.GetState() != mclv1.State_LEADER {
		s.stopTerm(ErrLost)
		s.emit(ev, r.at, false, false)
		return nil
	}
	token := ev.GetLeader().GetFencingToken()
	validUntil := int64(math.MaxInt64)
	if v := ev.GetValidity(); v != nil {
		if r.at < v.GetSentMonotonicNs() {
			s.stopTerm(ErrLost)
			return &ClockError{ReceivedNs: r.at, SentNs: v.GetSentMonotonicNs()}
		}
		validUntil = v.GetValidUntilMonotonicNs()
	} else if !s.c.cfg.AllowMissingValidity {
		s.stopTerm(ErrLost)
		return ErrNoValidity
	}

	if t := s.term; t != nil {
		if t.token == token && s.rearm(t, validUntil) {
			s.c.setLeading(token, validUntil)
			s.emit(ev, r.at, true, false)
			return nil
		}
		// Another grant without a LOST between (the sidecar always sends one; be safe), or the
		// term lapsed just now: stop it before anything new starts.
		if t.lapsed.Load() {
			s.endLapsed()
		} else {
			s.stopTerm(ErrLost)
			s.emit(localLost(t.token, "a new grant arrived without LOST"), MonotonicNow(), false, true)
		}
	}
	s.emit(ev, r.at, false, false)
	s.start(r.ctx, token, validUntil)
	return nil
}

// endLapsed ends the term whose bound passed and reports it as a local LOST.
func (s *stream) endLapsed() {
	tok := s.term.token
	s.stopTerm(ErrDeadline)
	s.emit(localLost(tok, "validity bound passed without a renewal"), MonotonicNow(), false, true)
}

// start calls fn for a grant whose bound is still ahead (after the margin).
func (s *stream) start(parent context.Context, token, validUntil int64) {
	c := s.c
	var wait time.Duration
	if validUntil != math.MaxInt64 {
		wait = time.Duration(validUntil - int64(c.cfg.StopMargin) - MonotonicNow())
		if wait <= 0 {
			c.cfg.Logf("mcl election: %s: LEADER (token %d) arrived after its bound; not leading until the next event", c.Describe(), token)
			return
		}
	}
	ctx, cancel := context.WithCancelCause(parent)
	t := &term{token: token, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	if validUntil != math.MaxInt64 {
		t.timer = time.AfterFunc(wait, func() { s.lapse(t) })
	}
	s.term = t
	c.setLeading(token, validUntil)
	go func() {
		defer close(t.done)
		t.err = s.fn(ctx, token)
	}()
}

// lapse runs on the timer's goroutine: it stops fn's context at once, without waiting for the
// loop, and tells the loop.
func (s *stream) lapse(t *term) {
	t.lapsed.Store(true)
	t.cancel(ErrDeadline)
	select {
	case s.lapsed <- t:
	default: // the loop has one lapse pending already; it checks every term it stops
	}
}

// rearm moves the term's lapse to the new bound; false if the timer already fired.
func (s *stream) rearm(t *term, validUntil int64) bool {
	if t.timer == nil {
		return validUntil == math.MaxInt64
	}
	if validUntil == math.MaxInt64 || !t.timer.Stop() {
		return false
	}
	wait := time.Duration(validUntil - int64(s.c.cfg.StopMargin) - MonotonicNow())
	if wait <= 0 {
		s.lapse(t)
		return false
	}
	t.timer.Reset(wait)
	return true
}

// stopTerm cancels the running fn, if any, and waits until it has returned.
func (s *stream) stopTerm(cause error) {
	s.c.setLeading(0, 0)
	t := s.term
	if t == nil {
		return
	}
	s.term = nil
	if t.timer != nil {
		t.timer.Stop()
	}
	t.cancel(cause)
	<-t.done
}

func (s *stream) termDone() <-chan struct{} {
	if s.term == nil {
		return nil
	}
	return s.term.done
}

func (s *stream) emit(ev *mclv1.LeadershipEvent, at int64, renewal, local bool) {
	if s.c.cfg.OnEvent != nil {
		s.c.cfg.OnEvent(Event{LeadershipEvent: ev, ReceivedNs: at, Renewal: renewal, Local: local})
	}
}

func localLost(token int64, reason string) *mclv1.LeadershipEvent {
	return &mclv1.LeadershipEvent{State: mclv1.State_LOST, Reason: reason,
		Leader: &mclv1.Leader{FencingToken: token}}
}

// classify decides whether a stream error is permanent (Run returns it) or worth a reconnect.
func (s *stream) classify(ctx context.Context, err error, hadStream, gotEvent bool) streamResult {
	res := streamResult{err: err, opened: gotEvent, gotEvent: gotEvent}
	if ctx.Err() != nil {
		return res
	}
	if errors.Is(err, io.EOF) {
		res.err = errors.New("the sidecar ended the stream (the campaign was resigned)")
		return res
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.PermissionDenied, codes.Unimplemented, codes.Unauthenticated:
		res.final = true
	case codes.AlreadyExists:
		// On the first stream this is another live candidacy of the same identity: misuse. After
		// a reconnect it may be our own previous stream that the sidecar has not seen end yet.
		res.final = !hadStream
	}
	if res.final {
		res.err = fmt.Errorf("mcl election: campaign for %s: %w", s.c.Describe(), err)
	}
	return res
}
