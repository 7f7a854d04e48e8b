#include "e2e/campaign/plan.h"

#include <set>

#include "gtest/gtest.h"

namespace mcl::campaign {
namespace {

TEST(PlanTest, ASeedGivesTheSamePlan) {
  Shape sh;
  for (uint64_t seed : {1u, 2u, 77u}) {
    Plan a = MakePlan(seed, sh, absl::Seconds(15));
    Plan b = MakePlan(seed, sh, absl::Seconds(15));
    ASSERT_EQ(a.faults.size(), b.faults.size());
    for (size_t k = 0; k < a.faults.size(); ++k) {
      EXPECT_EQ(a.faults[k].Describe(), b.faults[k].Describe());
    }
  }
}

TEST(PlanTest, FaultsStayInsideThePhaseAndTheirBounds) {
  Shape sh;
  sh.etcd_members = 3;
  std::set<std::string> labels;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    Plan p = MakePlan(seed, sh, absl::Seconds(15));
    ASSERT_GE(p.faults.size(), 1u);
    ASSERT_LE(p.faults.size(), 3u);
    for (const Fault& f : p.faults) {
      labels.insert(f.Label());
      EXPECT_GE(f.at, absl::ZeroDuration());
      EXPECT_LE(f.at + f.duration, absl::Seconds(15)) << f.Describe();
      if (f.kind == Kind::kSplitBrain) {
        EXPECT_GT(f.duration, sh.election_lease) << f.Describe();
      } else {
        EXPECT_GE(f.duration, absl::Milliseconds(100)) << f.Describe();
        EXPECT_LE(f.duration, 3 * sh.ttl) << f.Describe();
      }
      EXPECT_LT(f.member, 3);
      EXPECT_LT(f.cluster, sh.clusters);
    }
  }
  // Every kind of fault on every target and link comes up.
  EXPECT_EQ(labels.size(), 15u + 12u + 3u + 2u + 1u);
}

}  // namespace
}  // namespace mcl::campaign
