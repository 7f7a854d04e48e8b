// The work queue on a FakeClock: dedup, one worker per key, delayed adds that
// keep the earliest deadline and are released by the queue's own timer when
// fake time reaches them, and shutdown waking blocked workers.
#include "controller/work_queue.h"

#include <thread>

#include "gtest/gtest.h"

namespace mcl::controller {
namespace {

TEST(WorkQueueTest, DeduplicatesAndHandsAKeyToOneWorkerAtATime) {
  FakeClock clock;
  WorkQueue q(&clock);
  q.Add("a");
  q.Add("a");
  q.Add("b");
  EXPECT_EQ(q.Len(), 2u);
  std::string k;
  ASSERT_TRUE(q.Get(&k));
  EXPECT_EQ(k, "a");
  q.Add("a");  // while processing: not handed out again until Done
  ASSERT_TRUE(q.Get(&k));
  EXPECT_EQ(k, "b");
  EXPECT_EQ(q.Len(), 0u);
  q.Done("a");
  EXPECT_EQ(q.Len(), 1u);
  q.Done("b");
  EXPECT_EQ(q.Busy(), 1u);
}

TEST(WorkQueueTest, DelayedAddsKeepTheEarliestDeadlineAndWaitForIt) {
  FakeClock clock;
  WorkQueue q(&clock);
  q.AddAt("a", clock.Monotonic() + absl::Seconds(5));
  q.AddAt("a", clock.Monotonic() + absl::Seconds(1));
  q.AddAt("a", clock.Monotonic() + absl::Seconds(3));
  q.AddAt("b", clock.Monotonic() + absl::Seconds(2));
  EXPECT_EQ(q.Len(), 0u);
  // The worker blocks until the timer releases "a" at fake time +1 s.
  std::string got;
  std::thread worker([&] {
    if (q.Get(&got)) q.Done(got);
  });
  clock.Advance(absl::Seconds(1));
  worker.join();
  EXPECT_EQ(got, "a");
  EXPECT_EQ(q.Len(), 0u) << "b is not due yet; a's later adds were dropped";
  clock.Advance(absl::Seconds(1));
  ASSERT_TRUE(q.Get(&got));
  EXPECT_EQ(got, "b");
  q.Done("b");
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkQueueTest, ShutDownWakesBlockedWorkers) {
  FakeClock clock;
  WorkQueue q(&clock);
  q.AddAt("a", clock.Monotonic() + absl::Hours(1));
  bool got = true;
  std::thread worker([&] {
    std::string k;
    got = q.Get(&k);
  });
  q.ShutDown();
  worker.join();
  EXPECT_FALSE(got);
  q.Add("b");
  EXPECT_EQ(q.Len(), 0u);
}

}  // namespace
}  // namespace mcl::controller
