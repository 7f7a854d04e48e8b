#include "common/clock.h"

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

}  // namespace
}  // namespace mcl
