// Command manager is the usage of seed 000, working: a controller-runtime manager whose leader
// election goes through the mcl sidecar, with no other change to the manager. Its only runnable
// needs leader election, so it runs only on the elected replica in any cluster.
//
//	KUBECONFIG / --kubeconfig   the app's own cluster access (controller-runtime's usual rules)
//	MCL_SIDECAR_ADDR            the sidecar (default 127.0.0.1:7400)
//	MCL_LOCK, MCL_NAMESPACE     the lock (default my-global-leader-lock, the sidecar's namespace)
//	MCL_IDENTITY                this replica (default <hostname>_<uuid>)
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"mcl.dev/mcl/client-stubs/go/resourcelock"
)

func main() {
	identity := os.Getenv("MCL_IDENTITY")
	if identity == "" {
		host, _ := os.Hostname()
		identity = host + "_" + string(uuid.NewUUID())
	}
	lockName := os.Getenv("MCL_LOCK")
	if lockName == "" {
		lockName = "my-global-leader-lock"
	}
	// client-go's timings; the lock reports the same lease duration to the sidecar. Short, for the
	// tests' 2 s controller session TTL (the sidecar renews every lease/4, which must stay well
	// below the controller's session TTL).
	lease, renew, retry := 4*time.Second, 3*time.Second, time.Second

	// 1. The multi-cluster lock: the sidecar (MCL_SIDECAR_ADDR) decides who leads. Safe by
	// default: when this replica stops leading (LOST, or the validity bound of its last LEADER
	// passed without a renewal, e.g. because the sidecar froze) the lock exits the process at
	// once, as controller-runtime does when it loses leadership, instead of leaving the
	// controllers running until client-go's RenewDeadline. (Alternatively, set
	// manager.Options.BaseContext to lock.BaseContext so only the runnables stop.)
	lock, err := resourcelock.New(resourcelock.Config{
		Namespace: os.Getenv("MCL_NAMESPACE"), Name: lockName, Identity: identity, LeaseDuration: lease,
	})
	if err != nil {
		fail(err)
	}

	// 2. The manager, with leader election through the lock.
	mgr, err := manager.New(ctrl.GetConfigOrDie(), manager.Options{
		LeaderElection:                      true,
		LeaderElectionResourceLockInterface: lock,
		LeaderElectionReleaseOnCancel:       true, // SIGTERM resigns at once
		LeaseDuration:                       &lease,
		RenewDeadline:                       &renew,
		RetryPeriod:                         &retry,
		Metrics:                             metricsserver.Options{BindAddress: "0"},
	})
	if err != nil {
		fail(err)
	}

	// Register your controllers here. This runnable stands for them: like controllers, it
	// needs leader election, so the manager starts it only once this replica leads.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		fmt.Printf("leading as %s\n", identity)
		<-ctx.Done()
		return nil
	})); err != nil {
		fail(err)
	}

	// 3. Start the manager as usual.
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		fail(err)
	}
	fmt.Println("stopped, bye")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
