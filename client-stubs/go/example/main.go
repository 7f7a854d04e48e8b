// Command example campaigns for an mcl lock through the sidecar and does "leader work" only while
// it leads. It is the reference example for Go; client-stubs/test/run.sh runs it against a real
// sidecar.
//
//	MCL_SIDECAR_ADDR  the sidecar (default 127.0.0.1:7400)
//	MCL_LOCK          lock name (default example-lock); MCL_NAMESPACE (default: the sidecar's)
//	MCL_IDENTITY      candidate identity (default: the sidecar's, i.e. pod name + uid)
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	mclv1 "mcl.dev/mcl/client-stubs/go/mclv1"
)

func main() {
	// SIGTERM (pod shutdown) or Ctrl-C cancels ctx, which cancels the Campaign stream: that is
	// how we resign. The sidecar releases the lock at once so another candidate can take over.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	// The sidecar listens on loopback only, so plaintext is fine.
	conn, err := grpc.NewClient(getenv("MCL_SIDECAR_ADDR", "127.0.0.1:7400"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatalf("connect: %v", err)
	}
	defer conn.Close()

	stream, err := mclv1.NewElectionClient(conn).Campaign(ctx, &mclv1.CampaignRequest{
		Lock:     &mclv1.LockRef{Namespace: os.Getenv("MCL_NAMESPACE"), Name: getenv("MCL_LOCK", "example-lock")},
		Identity: os.Getenv("MCL_IDENTITY"),
	})
	if err != nil {
		log.Fatalf("campaign: %v", err)
	}

	stopWork := func() {} // cancels the leader work; a no-op while we do not lead
	for {
		ev, err := stream.Recv()
		if err != nil {
			stopWork() // the stream is gone: we are certainly not the leader any more
			if ctx.Err() != nil {
				fmt.Println("resigned, bye")
				return
			}
			log.Fatalf("campaign stream ended: %v", err)
		}
		l := ev.GetLeader()
		fmt.Printf("event state=%s leader=%s cluster=%s token=%d\n",
			ev.GetState(), l.GetIdentity(), l.GetCluster(), l.GetFencingToken())

		switch ev.GetState() {
		case mclv1.State_LEADER:
			stopWork()
			stopWork = startLeaderWork(ctx, l.GetFencingToken())
		case mclv1.State_LOST:
			stopWork() // stop acting as leader at once
			stopWork = func() {}
		}
	}
}

// startLeaderWork runs leaderWork in the background; the returned func stops it and waits until
// it has stopped, so no leader work happens after LOST.
func startLeaderWork(ctx context.Context, token int64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); leaderWork(ctx, token) }()
	return func() { cancel(); <-done }
}

// leaderWork stands for what only the leader may do. Pass the fencing token to anything you
// write, so storage can reject a deposed leader's late writes.
func leaderWork(ctx context.Context, token int64) {
	for t := time.NewTicker(time.Second); ; {
		fmt.Printf("leader work token=%d\n", token)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
