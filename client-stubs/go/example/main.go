// Command example campaigns for an mcl lock through the sidecar and does "leader work" only while
// it leads, with the Go client library (package election), which stops the work at LOST, at the
// stream's end, and at the validity bound of the last LEADER when no renewal came. It is the
// reference example for Go and the app of the demo (demo/); client-stubs/test/run.sh runs it
// against a real sidecar.
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

	"mcl.dev/mcl/client-stubs/go/election"
)

func main() {
	// SIGTERM (pod shutdown) or Ctrl-C cancels ctx, which cancels the Campaign stream: that is
	// how we resign. The sidecar releases the lock at once so another candidate can take over.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	err := election.RunWhileLeader(ctx, election.Config{
		Namespace: os.Getenv("MCL_NAMESPACE"),
		Name:      getenv("MCL_LOCK", "example-lock"),
		Identity:  os.Getenv("MCL_IDENTITY"),
		// One line per event; renewals of the same grant (about every third of the controller's
		// session TTL) are not printed.
		OnEvent: func(ev election.Event) {
			if ev.Renewal {
				return
			}
			l := ev.GetLeader()
			fmt.Printf("event state=%s leader=%s cluster=%s token=%d\n",
				ev.GetState(), l.GetIdentity(), l.GetCluster(), l.GetFencingToken())
			if ev.Local {
				fmt.Printf("stopped leading: %s\n", ev.GetReason())
			}
		},
	}, leaderWork)
	if err != nil {
		log.Fatalf("campaign ended: %v", err)
	}
	fmt.Println("resigned, bye")
}

// leaderWork stands for what only the leader may do; the library calls it on LEADER and cancels
// ctx when leadership ends. Pass the fencing token to anything you write, so storage can reject
// a deposed leader's late writes.
func leaderWork(ctx context.Context, token int64) error {
	for t := time.NewTicker(time.Second); ; {
		fmt.Printf("leader work token=%d\n", token)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
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
