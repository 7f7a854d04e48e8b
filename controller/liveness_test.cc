#include "controller/liveness.h"

#include "gtest/gtest.h"

namespace mcl::controller {
namespace {

const absl::Duration T0 = absl::Seconds(100);

TEST(LivenessTest, FirstSightCountsAsObservedNowForEveryHolder) {
  LivenessTracker t;
  t.Observe("u", 7, std::string("a"), T0);
  EXPECT_EQ(t.LastRenewal("a"), T0);
  EXPECT_EQ(t.LastRenewal("never-seen"), T0) << "restart rule: conservative";
}

TEST(LivenessTest, OnlyNewGenerationsAreRenewals) {
  LivenessTracker t;
  t.Observe("u", 7, std::string("a"), T0);
  t.Observe("u", 7, std::string("a"),
            T0 + absl::Seconds(1));  // status write, resync
  EXPECT_EQ(t.LastRenewal("a"), T0);
  t.Observe("u", 6, std::string("a"),
            T0 + absl::Seconds(2));  // old re-delivery
  EXPECT_EQ(t.LastRenewal("a"), T0);
  t.Observe("u", 8, std::string("a"), T0 + absl::Seconds(3));
  EXPECT_EQ(t.LastRenewal("a"), T0 + absl::Seconds(3));
}

TEST(LivenessTest, HolderChangeKeepsTheOldHoldersLastRenewal) {
  LivenessTracker t;
  t.Observe("u", 1, std::string("a"), T0);
  t.Observe("u", 2, std::string("b"), T0 + absl::Seconds(1));
  EXPECT_EQ(t.LastRenewal("a"), T0);
  EXPECT_EQ(t.LastRenewal("b"), T0 + absl::Seconds(1));
  t.Prune(std::string("b"), std::string("a"));
  EXPECT_EQ(t.LastRenewal("a"), T0);
}

TEST(LivenessTest, ResignIsAttributedOnlyAcrossConsecutiveGenerations) {
  LivenessTracker t;
  t.Observe("u", 1, std::string("a"), T0);
  t.Observe("u", 2, std::nullopt, T0 + absl::Seconds(1));
  EXPECT_EQ(t.resigned(), std::optional<std::string>("a"));
  t.Observe("u", 3, std::string("a"), T0 + absl::Seconds(2));
  EXPECT_FALSE(t.resigned().has_value());
  t.Observe("u", 5, std::nullopt, T0 + absl::Seconds(3));
  EXPECT_FALSE(t.resigned().has_value())
      << "a skipped generation hides who wrote";
}

TEST(LivenessTest, SkippedGenerationsCountAsARenewalOfAnyoneAtThatMoment) {
  LivenessTracker t;
  t.Observe("u", 1, std::string("a"), T0);
  t.Observe("u", 4, std::string("b"), T0 + absl::Seconds(5));
  // a may have renewed in generation 2 or 3, which a relist coalesced away.
  EXPECT_EQ(t.LastRenewal("a"), T0 + absl::Seconds(5));
}

TEST(LivenessTest, ANewIncarnationForgetsEverything) {
  LivenessTracker t;
  t.Observe("u1", 9, std::string("a"), T0);
  t.Observe("u2", 1, std::string("b"), T0 + absl::Seconds(1));
  EXPECT_EQ(t.generation(), 1);
  EXPECT_EQ(t.LastRenewal("a"), T0 + absl::Seconds(1));
}

}  // namespace
}  // namespace mcl::controller
