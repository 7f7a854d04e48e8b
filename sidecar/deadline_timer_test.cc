#include "sidecar/deadline_timer.h"

#include <set>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace mcl::sidecar {
namespace {

// The state a timer serves, as LockTable's is: deadlines. `fire` records
// its fake time, drops the deadlines that have passed (as TickDeadlines sends
// their LOST) and returns the earliest one left.
class Recorder {
 public:
  explicit Recorder(FakeClock* clock) : clock_(clock) {}
  absl::Duration Fire() {
    absl::MutexLock l(&mu_);
    const absl::Duration now = clock_->Monotonic();
    runs_.push_back(now);
    deadlines_.erase(deadlines_.begin(), deadlines_.upper_bound(now));
    return deadlines_.empty() ? absl::InfiniteDuration() : *deadlines_.begin();
  }
  // A new deadline in the state; the caller then arms the timer with it.
  void Add(absl::Duration d) {
    absl::MutexLock l(&mu_);
    deadlines_.insert(d);
  }
  // Waits (real time, bounded) for a run at exactly `at`.
  bool WaitRun(absl::Duration at) {
    absl::MutexLock l(&mu_);
    auto ran = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (absl::Duration t : runs_) {
        if (t == at) return true;
      }
      return false;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&ran), absl::Seconds(10));
  }
  std::vector<absl::Duration> runs() {
    absl::MutexLock l(&mu_);
    return runs_;
  }

 private:
  FakeClock* clock_;
  absl::Mutex mu_;
  std::vector<absl::Duration> runs_ ABSL_GUARDED_BY(mu_);
  std::set<absl::Duration> deadlines_ ABSL_GUARDED_BY(mu_);
};

// The runs of `fire` after `since`, which the test's own Arm or the returned
// deadlines caused. (A run at the time of an Arm made while `fire` was
// running is allowed: the timer may look once more than needed, never less.)
std::vector<absl::Duration> RunsAfter(Recorder& r, absl::Duration since) {
  std::vector<absl::Duration> out;
  for (absl::Duration t : r.runs()) {
    if (t > since) out.push_back(t);
  }
  return out;
}

TEST(DeadlineTimerTest, RunsAtStartThenAtTheDeadlineItReturned) {
  FakeClock clock;
  Recorder r(&clock);
  const absl::Duration t0 = clock.Monotonic();
  r.Add(t0 + absl::Seconds(2));
  DeadlineTimer timer(&clock, [&] { return r.Fire(); });
  ASSERT_TRUE(r.WaitRun(t0));
  clock.Advance(absl::Milliseconds(1999));
  clock.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(r.WaitRun(t0 + absl::Seconds(2)));
  // Nothing ran between the start and the deadline.
  EXPECT_EQ(RunsAfter(r, t0),
            std::vector<absl::Duration>{t0 + absl::Seconds(2)});
}

TEST(DeadlineTimerTest, AnEarlierArmMakesItRunThenAndNothingElseWakesIt) {
  FakeClock clock;
  Recorder r(&clock);
  const absl::Duration t0 = clock.Monotonic();
  r.Add(t0 + absl::Seconds(10));
  DeadlineTimer timer(&clock, [&] { return r.Fire(); });
  ASSERT_TRUE(r.WaitRun(t0));
  r.Add(t0 + absl::Seconds(1));
  timer.Arm(t0 + absl::Seconds(1));
  clock.Advance(absl::Seconds(1));
  ASSERT_TRUE(r.WaitRun(t0 + absl::Seconds(1)));
  clock.Advance(absl::Seconds(9));
  ASSERT_TRUE(r.WaitRun(t0 + absl::Seconds(10)));
  // No deadline is left: the timer sleeps through any time until an Arm.
  clock.Advance(absl::Seconds(30));
  const absl::Duration t40 = clock.Monotonic();
  r.Add(t40);
  timer.Arm(t40);
  ASSERT_TRUE(r.WaitRun(t40));
  EXPECT_EQ(RunsAfter(r, t0),
            (std::vector<absl::Duration>{t0 + absl::Seconds(1),
                                         t0 + absl::Seconds(10), t40}));
}

}  // namespace
}  // namespace mcl::sidecar
