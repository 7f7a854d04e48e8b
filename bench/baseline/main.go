// Baseline for mcl's failover benchmarks: client-go's leaderelection with a coordination.k8s.io
// Lease, in one cluster, measured the same way as mcl (bench/failover.py runs both).
//
// It runs --candidates electors in this process, each with its own client (own connection), and
// repeats a scenario --rounds times:
//
//	graceful: the leader cancels its context with ReleaseOnCancel, as a client-go program does on
//	          SIGTERM; measured from the cancel to the next OnStartedLeading.
//	crash:    the leader stops renewing without releasing (what SIGKILL leaves behind); measured
//	          from the stop to the next OnStartedLeading.
//
// Output: one JSON object per round on stdout: {"scenario":..., "latency_ms":...}.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

type candidate struct {
	id     string
	cancel context.CancelFunc
	done   chan struct{}
}

type leadEvent struct {
	id string
	at time.Time
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster holding the Lease")
	namespace := flag.String("namespace", "default", "namespace of the Lease")
	candidates := flag.Int("candidates", 3, "electors that contend")
	rounds := flag.Int("rounds", 10, "handoffs to measure (bounded)")
	scenario := flag.String("scenario", "graceful", "graceful or crash")
	leaseDuration := flag.Duration("lease-duration", 15*time.Second, "LeaseDuration (client-go default 15s)")
	renewDeadline := flag.Duration("renew-deadline", 10*time.Second, "RenewDeadline (default 10s)")
	retryPeriod := flag.Duration("retry-period", 2*time.Second, "RetryPeriod (default 2s)")
	timeout := flag.Duration("timeout", 10*time.Minute, "stop after this long, whatever is done")
	flag.Parse()
	if *kubeconfig == "" || *candidates < 2 || *rounds < 1 || (*scenario != "graceful" && *scenario != "crash") {
		fmt.Fprintln(os.Stderr, "usage: baseline --kubeconfig FILE [--candidates N>=2] [--rounds N>=1] [--scenario graceful|crash]")
		os.Exit(2)
	}
	deadline := time.Now().Add(*timeout)
	lockName := fmt.Sprintf("baseline-%d", time.Now().UnixNano())
	led := make(chan leadEvent, 16)

	start := func(id string) *candidate {
		cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kubeconfig:", err)
			os.Exit(1)
		}
		cfg.QPS, cfg.Burst = 100, 100
		client := kubernetes.NewForConfigOrDie(cfg)
		ctx, cancel := context.WithCancel(context.Background())
		c := &candidate{id: id, cancel: cancel, done: make(chan struct{})}
		lock := &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Name: lockName, Namespace: *namespace},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: id},
		}
		go func() {
			defer close(c.done)
			leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
				Lock:            lock,
				LeaseDuration:   *leaseDuration,
				RenewDeadline:   *renewDeadline,
				RetryPeriod:     *retryPeriod,
				ReleaseOnCancel: *scenario == "graceful",
				Callbacks: leaderelection.LeaderCallbacks{
					OnStartedLeading: func(context.Context) { led <- leadEvent{id, time.Now()} },
					OnStoppedLeading: func() {},
				},
			})
		}()
		return c
	}

	live := map[string]*candidate{}
	next := 0
	spawn := func() {
		id := fmt.Sprintf("candidate-%d", next)
		next++
		live[id] = start(id)
	}
	for i := 0; i < *candidates; i++ {
		spawn()
	}
	var leader leadEvent
	select {
	case leader = <-led:
	case <-time.After(time.Until(deadline)):
		fmt.Fprintln(os.Stderr, "no first leader before the timeout")
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	var wg sync.WaitGroup
	for r := 0; r < *rounds && time.Now().Before(deadline); r++ {
		old := live[leader.id]
		delete(live, leader.id)
		t0 := time.Now()
		old.cancel() // graceful: releases the Lease; crash: simply stops renewing it
		wg.Add(1)
		go func() { defer wg.Done(); <-old.done }()
		select {
		case leader = <-led:
		case <-time.After(time.Until(deadline)):
			fmt.Fprintln(os.Stderr, "no new leader before the timeout")
			os.Exit(1)
		}
		_ = enc.Encode(map[string]any{"system": "client-go", "scenario": *scenario,
			"latency_ms": float64(leader.at.Sub(t0).Microseconds()) / 1000.0})
		spawn() // keep the number of contenders constant
	}
	for _, c := range live {
		c.cancel()
	}
	wg.Wait()
}
