// The replica election on a FakeClock against an in-memory Lease store with
// the apiserver's optimistic concurrency: creating the Lease, renewing every
// third of the duration, a standby waiting the full duration from when *it*
// saw the last change (whatever the wall clock does), the fence on renewal
// failures, losing to another holder, release, and the blocking loops waking
// on fake time and on stop.
#include "controller/replica_election.h"

#include <thread>

#include "common/contract.h"
#include "common/stop_flag.h"
#include "controller/testing/fakes.h"
#include "gtest/gtest.h"

namespace mcl::controller {
namespace {

using testing::FakeLeaseStore;

constexpr char kNs[] = "mcl-system";
constexpr char kName[] = "mcl-controller-c0";
constexpr absl::Duration kDuration = absl::Seconds(4);

ReplicaElectionOptions Options(const std::string& identity) {
  ReplicaElectionOptions o;
  o.namespace_ = kNs;
  o.name = kName;
  o.identity = identity;
  o.duration = kDuration;
  return o;
}

// Fence() keeps whole nanoseconds.
absl::Duration Ns(absl::Duration d) {
  return absl::Trunc(d, absl::Nanoseconds(1));
}

absl::Duration FenceAfter() {
  return kDuration * (1 - contract::kRho) - contract::kMargin;
}

kube::Lease HeldBy(const std::string& holder, const std::string& renew) {
  kube::Lease l;
  l.metadata.namespace_ = kNs;
  l.metadata.name = kName;
  l.spec.holder_identity = holder;
  l.spec.lease_duration_seconds = 4;
  l.spec.renew_time = renew;
  l.spec.lease_transitions = 3;
  return l;
}

class ReplicaElectionTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  FakeLeaseStore store_;
};

TEST_F(ReplicaElectionTest, CreatesTheLeaseWhenAbsentThenRenewsEveryThird) {
  ReplicaElection e(&store_, &clock_, Options("r1"));
  EXPECT_EQ(e.Fence(), absl::ZeroDuration());
  EXPECT_FALSE(e.MayAct());
  const absl::Duration t0 = clock_.Monotonic();
  ASSERT_TRUE(e.TryAcquire());
  EXPECT_TRUE(e.MayAct());
  EXPECT_EQ(e.Fence(), Ns(t0 + FenceAfter()));
  auto l = store_.Peek(kNs, kName);
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->spec.holder_identity, "r1");
  EXPECT_EQ(l->spec.lease_duration_seconds, 4);
  EXPECT_FALSE(l->spec.acquire_time.empty());
  const int writes = store_.writes();

  // Nothing is due before duration/3.
  auto next = e.RenewStep();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, t0 + kDuration / 3);
  EXPECT_EQ(store_.writes(), writes);
  clock_.Advance(kDuration / 3);
  next = e.RenewStep();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(store_.writes(), writes + 1);
  EXPECT_EQ(*next, clock_.Monotonic() + kDuration / 3);
  EXPECT_EQ(e.Fence(), Ns(clock_.Monotonic() + FenceAfter()));
}

TEST_F(ReplicaElectionTest,
       StandbyTakesOverOnlyAfterTheFullDurationUnchangedByItsOwnClock) {
  store_.Put(HeldBy("r1", "2026-01-01T00:00:00.000000Z"));
  ReplicaElection e(&store_, &clock_, Options("r2"));
  EXPECT_FALSE(e.TryAcquire());  // first sight: counts from now
  const absl::Duration seen = clock_.Monotonic();
  clock_.Advance(absl::Seconds(3));
  EXPECT_FALSE(e.TryAcquire());
  // The active replica renews: the wait starts again from when r2 sees it.
  store_.Put(HeldBy("r1", "2026-01-01T00:00:03.000000Z"));
  clock_.Advance(absl::Seconds(1));
  EXPECT_FALSE(e.TryAcquire());
  const absl::Duration renewal_seen = clock_.Monotonic();
  EXPECT_GT(renewal_seen, seen);
  // A wall-clock step (either way) changes nothing: only monotonic time counts.
  clock_.StepWall(absl::Hours(-2));
  clock_.Advance(kDuration - absl::Milliseconds(1));
  EXPECT_FALSE(e.TryAcquire());
  clock_.StepWall(absl::Hours(5));
  EXPECT_FALSE(e.TryAcquire());
  clock_.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(e.TryAcquire()) << "unchanged for the full duration";
  auto l = store_.Peek(kNs, kName);
  EXPECT_EQ(l->spec.holder_identity, "r2");
  EXPECT_EQ(l->spec.lease_transitions, 4);
  EXPECT_EQ(e.Fence(), Ns(clock_.Monotonic() + FenceAfter()));
}

TEST_F(ReplicaElectionTest, AFreedOrOwnLeaseIsTakenAtOnce) {
  kube::Lease freed = HeldBy("", "2026-01-01T00:00:00.000000Z");
  freed.spec.holder_identity.reset();
  store_.Put(freed);
  ReplicaElection a(&store_, &clock_, Options("r2"));
  EXPECT_TRUE(a.TryAcquire());
  // A restarted replica with the same identity finds itself the holder.
  ReplicaElection b(&store_, &clock_, Options("r2"));
  EXPECT_TRUE(b.TryAcquire());
}

// The fence: duration·(1−rho) − m after the start of the last successful
// renewal, never later; no standby can have taken over before it.
TEST_F(ReplicaElectionTest, FailedRenewalsEndAtTheFenceNotBefore) {
  ReplicaElection e(&store_, &clock_, Options("r1"));
  const absl::Duration fence = clock_.Monotonic() + FenceAfter();
  ASSERT_TRUE(e.TryAcquire());
  EXPECT_EQ(e.Fence(), Ns(fence));
  store_.FailWith(absl::UnavailableError("apiserver down"));
  std::optional<absl::Duration> next = e.RenewStep();
  while (next.has_value()) {
    EXPECT_LE(*next, fence) << "a step never sleeps past the fence";
    EXPECT_LT(clock_.Monotonic(), fence);
    EXPECT_TRUE(e.MayAct());
    clock_.Advance(*next - clock_.Monotonic());
    next = e.RenewStep();
  }
  EXPECT_EQ(clock_.Monotonic(), fence);
  EXPECT_FALSE(e.MayAct());
  // Retries came every min(500 ms, duration/10) = 400 ms after the first
  // renewal was due at duration/3.
  EXPECT_GE(store_.writes(), 1 + 6);
}

TEST_F(ReplicaElectionTest, AnotherHolderEndsTheRenewalsAtOnce) {
  ReplicaElection e(&store_, &clock_, Options("r1"));
  ASSERT_TRUE(e.TryAcquire());
  store_.Put(HeldBy("r2", "2026-01-01T00:00:09.000000Z"));
  clock_.Advance(kDuration / 3);
  EXPECT_FALSE(e.RenewStep().has_value());
  EXPECT_FALSE(e.MayAct());
  EXPECT_EQ(store_.Peek(kNs, kName)->spec.holder_identity, "r2");
}

TEST_F(ReplicaElectionTest, ReleaseClearsTheHolderForAStandby) {
  ReplicaElection e(&store_, &clock_, Options("r1"));
  ASSERT_TRUE(e.TryAcquire());
  e.Release();
  EXPECT_FALSE(e.MayAct());
  EXPECT_FALSE(store_.Peek(kNs, kName)->spec.holder_identity.has_value());
  ReplicaElection standby(&store_, &clock_, Options("r2"));
  EXPECT_TRUE(standby.TryAcquire()) << "no need to wait for the duration";
}

// The loops around the steps: they sleep on the fake clock's monotonic time
// and end on Stop() or the caller's stop flag.
TEST_F(ReplicaElectionTest, LoopsWakeOnFakeTimeAndEndOnStop) {
  store_.Put(HeldBy("r1", "2026-01-01T00:00:00.000000Z"));
  ReplicaElection e(&store_, &clock_, Options("r2"));
  StopFlag stop(&clock_);
  bool acquired = true;
  std::thread standby([&] { acquired = e.Acquire(&stop); });
  EXPECT_TRUE(store_.WaitForCalls(1));
  stop.Set();
  standby.join();
  EXPECT_FALSE(acquired);

  ReplicaElection active(&store_, &clock_, Options("r1"));
  ASSERT_TRUE(active.Acquire());
  ReplicaElection::Outcome outcome = ReplicaElection::Outcome::kLost;
  const int calls = store_.calls();
  std::thread renewer([&] { outcome = active.Renew(); });
  // Each advance past duration/3 makes one renewal.
  for (int i = 1; i <= 3; ++i) {
    clock_.Advance(kDuration / 3);
    EXPECT_TRUE(store_.WaitForCalls(calls + i)) << i;
  }
  active.Stop();
  renewer.join();
  EXPECT_EQ(outcome, ReplicaElection::Outcome::kStopped);
  EXPECT_TRUE(active.MayAct());
}

}  // namespace
}  // namespace mcl::controller
