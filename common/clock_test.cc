#include "common/clock.h"

#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace mcl {
namespace {

TEST(ClockTest, RealMonotonicNeverGoesBackwards) {
  absl::Duration prev = Clock::Real()->Monotonic();
  for (int i = 0; i < 1000; ++i) {
    absl::Duration now = Clock::Real()->Monotonic();
    EXPECT_GE(now, prev);
    prev = now;
  }
}

TEST(ClockTest, FakeWallStepDoesNotMoveMonotonic) {
  FakeClock c;
  absl::Duration m = c.Monotonic();
  absl::Time w = c.WallNow();
  c.StepWall(absl::Hours(-1));
  EXPECT_EQ(c.Monotonic(), m);
  EXPECT_EQ(c.WallNow(), w - absl::Hours(1));
  c.Advance(absl::Seconds(2));
  EXPECT_EQ(c.Monotonic(), m + absl::Seconds(2));
}

TEST(WakeupTest, RealClockTimesOutAndKeepsANotification) {
  Wakeup w;
  const absl::Duration t0 = Clock::Real()->Monotonic();
  EXPECT_FALSE(w.WaitFor(absl::Milliseconds(20)));
  EXPECT_GE(Clock::Real()->Monotonic() - t0, absl::Milliseconds(20));
  w.Notify();  // before anyone waits: kept until a wait consumes it
  EXPECT_TRUE(w.WaitFor(absl::Seconds(10)));
  EXPECT_FALSE(w.WaitFor(absl::ZeroDuration()));
}

// A timer thread on a FakeClock sleeps until the fake time passes its
// deadline, however long that takes in real time, and no longer.
TEST(WakeupTest, FakeClockWaitEndsWhenFakeTimePassesTheDeadline) {
  FakeClock clock;
  Wakeup w(&clock);
  const absl::Duration deadline = clock.Monotonic() + absl::Seconds(5);
  absl::Notification returned;
  bool notified = true;
  std::thread waiter([&] {
    notified = w.WaitUntil(deadline);
    returned.Notify();
  });
  clock.Advance(absl::Seconds(4));
  EXPECT_FALSE(returned.WaitForNotificationWithTimeout(absl::Milliseconds(50)));
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(returned.WaitForNotificationWithTimeout(absl::Seconds(10)));
  waiter.join();
  EXPECT_FALSE(notified);
}

TEST(WakeupTest, NotifyWakesAFakeClockWaiterWithoutTimeMoving) {
  FakeClock clock;
  Wakeup w(&clock);
  absl::Notification returned;
  bool notified = false;
  std::thread waiter([&] {
    notified = w.WaitUntil(absl::InfiniteDuration());
    returned.Notify();
  });
  w.Notify();
  EXPECT_TRUE(returned.WaitForNotificationWithTimeout(absl::Seconds(10)));
  waiter.join();
  EXPECT_TRUE(notified);
}

}  // namespace
}  // namespace mcl
