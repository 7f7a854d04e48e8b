#include "common/backoff.h"

#include "gtest/gtest.h"

namespace mcl {
namespace {

TEST(BackoffTest, GrowsExponentiallyUpToMaxWithJitterBelowTheCeiling) {
  Backoff b({absl::Milliseconds(100), absl::Seconds(1), 2.0}, /*seed=*/42);
  absl::Duration ceilings[] = {absl::Milliseconds(100), absl::Milliseconds(200),
                               absl::Milliseconds(400), absl::Milliseconds(800),
                               absl::Seconds(1),        absl::Seconds(1)};
  for (absl::Duration c : ceilings) {
    absl::Duration d = b.Next();
    EXPECT_GE(d, absl::ZeroDuration());
    EXPECT_LE(d, c);
  }
  EXPECT_EQ(b.attempts(), 6);
}

TEST(BackoffTest, JitterSpreadsRetries) {
  Backoff b({absl::Seconds(1), absl::Seconds(1), 2.0}, 7);
  absl::Duration lo = absl::InfiniteDuration(), hi = absl::ZeroDuration();
  for (int i = 0; i < 200; ++i) {
    absl::Duration d = b.Next();
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, absl::Milliseconds(100));
  EXPECT_GT(hi, absl::Milliseconds(900));
}

TEST(BackoffTest, ResetStartsOver) {
  Backoff b({absl::Milliseconds(10), absl::Seconds(100), 10.0}, 1);
  for (int i = 0; i < 5; ++i) b.Next();
  b.Reset();
  EXPECT_LE(b.Next(), absl::Milliseconds(10));
}

TEST(BackoffTest, HugeAttemptCountsDoNotOverflow) {
  Backoff b({absl::Milliseconds(1), absl::Seconds(3), 2.0}, 3);
  for (int i = 0; i < 10000; ++i) EXPECT_LE(b.Next(), absl::Seconds(3));
}

}  // namespace
}  // namespace mcl
