#include "common/stop_flag.h"

#include <thread>

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

}  // namespace
}  // namespace mcl
