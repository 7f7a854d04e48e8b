#include "common/stop_flag.h"

#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace mcl {
namespace {

TEST(StopFlagTest, WaitForTimesOutWhileUnset) {
  StopFlag stop;
  EXPECT_FALSE(stop.IsSet());
  EXPECT_FALSE(stop.WaitFor(absl::Milliseconds(20)));
  EXPECT_FALSE(stop.WaitFor(absl::ZeroDuration()));
}

TEST(StopFlagTest, SetIsIdempotentAndSticky) {
  StopFlag stop;
  stop.Set();
  stop.Set();
  EXPECT_TRUE(stop.IsSet());
  EXPECT_TRUE(stop.WaitFor(absl::ZeroDuration()));
  EXPECT_TRUE(stop.WaitFor(absl::InfiniteDuration()));
}

// A waiter with no deadline is woken by Set() from another thread.
TEST(StopFlagTest, SetWakesAnUnboundedWaiter) {
  StopFlag stop;
  absl::Notification waiting, returned;
  bool result = false;
  std::thread waiter([&] {
    waiting.Notify();
    result = stop.WaitFor(absl::InfiniteDuration());
    returned.Notify();
  });
  waiting.WaitForNotification();
  EXPECT_FALSE(returned.HasBeenNotified());
  stop.Set();
  EXPECT_TRUE(returned.WaitForNotificationWithTimeout(absl::Seconds(10)));
  waiter.join();
  EXPECT_TRUE(result);
}

// Every waiter wakes, not only the first one.
TEST(StopFlagTest, SetWakesEveryWaiter) {
  StopFlag stop;
  constexpr int kWaiters = 4;
  absl::Notification returned[kWaiters];
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&, i] {
      stop.WaitFor(absl::InfiniteDuration());
      returned[i].Notify();
    });
  }
  stop.Set();
  for (auto& r : returned) {
    EXPECT_TRUE(r.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }
  for (auto& t : waiters) t.join();
}

TEST(StopFlagTest, RunsOnAFakeClock) {
  FakeClock clock;
  StopFlag stop(&clock);
  absl::Notification returned;
  bool result = true;
  const absl::Duration deadline = clock.Monotonic() + absl::Seconds(30);
  std::thread waiter([&] {
    result = stop.WaitUntil(deadline);
    returned.Notify();
  });
  clock.Advance(absl::Seconds(29));
  EXPECT_FALSE(returned.WaitForNotificationWithTimeout(absl::Milliseconds(50)));
  clock.Advance(absl::Seconds(2));
  EXPECT_TRUE(returned.WaitForNotificationWithTimeout(absl::Seconds(10)));
  waiter.join();
  EXPECT_FALSE(result);
}

}  // namespace
}  // namespace mcl
