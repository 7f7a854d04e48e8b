//go:build integration

package election

// A measurement, not a test: client-stubs/test/bench.sh runs it on the real test bed and its
// numbers go to docs/benchmarks.md. With the libraries in the loop:
//   - handoff: the leader app (the Go example, a process on the first sidecar) gets SIGTERM; time
//     until the follower's leader function starts (it campaigns with this library on the second
//     sidecar);
//   - app crash: the same with SIGKILL of the leader app (its sidecar sees the stream break and
//     resigns at once);
//   - sidecar crash: the leader app runs on a sidecar of its own (started here), and that sidecar
//     gets SIGKILL (the app too): the lock must expire (the controller's session TTL);
//   - freeze: SIGSTOP of the leader's sidecar; when its app's leader work stopped, relative to
//     the freeze, to its bound, to the next grant and to the next leader's LEADER.
//
//	MCL_BENCH_ROUNDS=N MCL_GO_EXAMPLE=path/to/example (plus the variables of integration_test.go)

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mclv1 "mcl.dev/mcl/client-stubs/go/mclv1"
)

func TestIntegrationBench(t *testing.T) {
	rounds, err := strconv.Atoi(os.Getenv("MCL_BENCH_ROUNDS"))
	example := os.Getenv("MCL_GO_EXAMPLE")
	pid, perr := strconv.Atoi(os.Getenv("MCL_SIDECAR_PID"))
	if err != nil || rounds < 1 || example == "" || perr != nil {
		t.Skip("a measurement: set MCL_BENCH_ROUNDS, MCL_GO_EXAMPLE and MCL_SIDECAR_PID (client-stubs/test/bench.sh)")
	}
	addrA, addrB := os.Getenv("MCL_SIDECAR_ADDR"), os.Getenv("MCL_SIDECAR_ADDR_2")

	var handoff, crash, sidecarCrash []float64
	for i := 0; i < rounds; i++ {
		handoff = append(handoff, appFailover(t, example, addrA, addrB, syscall.SIGTERM, nil))
		crash = append(crash, appFailover(t, example, addrA, addrB, syscall.SIGKILL, nil))
		own, addr := startSidecar(t, fmt.Sprintf("bench-sidecar-%d", i))
		sidecarCrash = append(sidecarCrash, appFailover(t, example, addr, addrB, syscall.SIGKILL, own))
	}
	var freezeToStop, beforeBound, beforeGrant, beforeLeader, freezeToNext []float64
	for i := 0; i < rounds; i++ {
		f := freezeRound(t, addrA, addrB, pid)
		freezeToStop = append(freezeToStop, f[0])
		beforeBound = append(beforeBound, f[1])
		beforeGrant = append(beforeGrant, f[2])
		beforeLeader = append(beforeLeader, f[3])
		freezeToNext = append(freezeToNext, f[4])
	}
	report := func(name string, v []float64) {
		s := slices.Clone(v)
		slices.Sort(s)
		q := func(p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
		fmt.Printf("BENCH %-42s n=%d min=%.0f p50=%.0f p90=%.0f max=%.0f ms\n", name, len(s), s[0], q(0.5), q(0.9), s[len(s)-1])
	}
	report("handoff: SIGTERM -> next fn starts", handoff)
	report("app crash: SIGKILL of app -> next fn starts", crash)
	report("sidecar crash: SIGKILL -> next fn starts", sidecarCrash)
	report("freeze: SIGSTOP -> leader work stopped", freezeToStop)
	report("freeze: stopped before its bound by", beforeBound)
	report("freeze: stopped before the next grant by", beforeGrant)
	report("freeze: stopped before next LEADER by", beforeLeader)
	report("freeze: SIGSTOP -> next LEADER", freezeToNext)
}

// startSidecar starts a sidecar of the test bed's cluster on a port of its own; the test kills it.
func startSidecar(t *testing.T, identity string) (*exec.Cmd, string) {
	t.Helper()
	out, err := exec.Command(os.Getenv("MCL_TESTBED_SH"), "free-port").Output()
	if err != nil {
		t.Fatalf("free-port: %v", err)
	}
	addr := "127.0.0.1:" + strings.TrimSpace(string(out))
	cmd := exec.Command(os.Getenv("MCL_SIDECAR_BIN"), "--kubeconfig="+os.Getenv("MCL_SIDECAR_KUBECONFIG"),
		"--listen="+addr, "--namespace="+os.Getenv("MCL_NAMESPACE"), "--cluster-name="+os.Getenv("MCL_CLUSTER_NAME"),
		"--identity="+identity, "--lease-duration="+os.Getenv("MCL_SIDECAR_LEASE"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a sidecar (MCL_SIDECAR_BIN=%q): %v", os.Getenv("MCL_SIDECAR_BIN"), err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, addr
}

// appFailover runs the Go example as the leader on addrA, a library candidate on addrB, and once
// the example does leader work sends sig to it — or, with sidecar set, SIGKILLs that sidecar and
// then the example. It returns the ms until the candidate's fn starts.
func appFailover(t *testing.T, example, addrA, addrB string, sig syscall.Signal, sidecar *exec.Cmd) float64 {
	t.Helper()
	name := fmt.Sprintf("bench-%d", rand.Int64N(1e12))
	cmd := exec.Command(example)
	cmd.Env = append(os.Environ(), "MCL_SIDECAR_ADDR="+addrA, "MCL_LOCK="+name, "MCL_IDENTITY="+name+"-a")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	leading := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := false
		for sc.Scan() {
			if !once && strings.HasPrefix(sc.Text(), "leader work ") {
				once = true
				close(leading)
			}
		}
	}()
	select {
	case <-leading:
	case <-time.After(60 * time.Second):
		t.Fatal("the example app did not lead within 60 s")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follower := make(chan struct{}, 1)
	started := make(chan int64, 1)
	c, err := New(Config{Addr: addrB, Namespace: os.Getenv("MCL_NAMESPACE"), Name: name, Identity: name + "-b",
		LeaseDuration: 4 * time.Second, Logf: t.Logf, OnEvent: func(ev Event) {
			if ev.GetState() == mclv1.State_FOLLOWER {
				select {
				case follower <- struct{}{}:
				default:
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(ctx context.Context, token int64) error {
			started <- MonotonicNow()
			<-ctx.Done()
			return nil
		})
	}()
	defer func() { cancel(); <-done }()
	select {
	case <-follower:
	case <-time.After(30 * time.Second):
		t.Fatal("the second candidate never saw the app as leader")
	}
	time.Sleep(500 * time.Millisecond) // its sidecar has renewed its candidacy
	t0 := MonotonicNow()
	if sidecar != nil {
		sidecar.Process.Kill()
	}
	cmd.Process.Signal(sig)
	select {
	case t1 := <-started:
		return ms(t1 - t0)
	case <-time.After(60 * time.Second):
		t.Fatalf("no new leader within 60 s of %v", sig)
		return 0
	}
}

// freezeRound returns, in ms: SIGSTOP -> leader work stopped; stopped before the bound;
// stopped before the next grant; stopped before the next LEADER; SIGSTOP -> next LEADER.
func freezeRound(t *testing.T, addrA, addrB string, pid int) [5]float64 {
	t.Helper()
	name := fmt.Sprintf("bench-freeze-%d", rand.Int64N(1e12))
	a, b := newLeaderLog(), newLeaderLog()
	stopA := startCandidate(t, context.Background(), addrA, name, name+"-a", a)
	defer stopA()
	select {
	case <-a.started:
	case <-time.After(30 * time.Second):
		t.Fatal("a did not lead within 30 s")
	}
	stopB := startCandidate(t, context.Background(), addrB, name, name+"-b", b)
	defer stopB()
	time.Sleep(time.Second)
	frozenAt := MonotonicNow()
	syscall.Kill(pid, syscall.SIGSTOP)
	defer syscall.Kill(pid, syscall.SIGCONT)
	select {
	case <-a.stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("a's work did not stop")
	}
	select {
	case <-b.started:
	case <-time.After(30 * time.Second):
		t.Fatal("b was not granted")
	}
	syscall.Kill(pid, syscall.SIGCONT)
	a.mu.Lock()
	b.mu.Lock()
	defer a.mu.Unlock()
	defer b.mu.Unlock()
	grant := monotonicOfWall(b.grantWall)
	if a.stoppedAt > a.bound || a.stoppedAt >= grant {
		t.Errorf("round %s: a stopped %.1f ms after its bound / %.1f ms after the grant", name,
			ms(a.stoppedAt-a.bound), ms(a.stoppedAt-grant))
	}
	return [5]float64{ms(a.stoppedAt - frozenAt), ms(a.bound - a.stoppedAt), ms(grant - a.stoppedAt),
		ms(b.grantRecv - a.stoppedAt), ms(b.grantRecv - frozenAt)}
}
