// The campaign's bounded subset, in the README's test command: seeded runs on
// a three-member global etcd, every history judged (S1 with validity bounds,
// S2, observers, L3). The seeds are chosen (mcl-campaign --plans) so each run
// has one fault on the leader's path, one of each hazard the design must
// survive; the full campaign (run.sh) draws them at random. Fails on any
// violation and names the seed; replay one with
//   e2e/campaign/run.sh --runs 1 --seed S --etcd-members 3 --fault-phase 10s
#include "e2e/campaign/campaign.h"

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "testbed/cc/subprocess.h"

namespace mcl::campaign {
namespace {

TEST(CampaignTest, SeededFaultRunsKeepOneLeaderAndRecover) {
  CampaignOptions o;
  o.seeds = {
      172,   // pause/sidecar (leader's) for 5.6 s
      643,   // hold/sidecar-apiserver (leader's) for 3.9 s
      316,   // two-candidacies/one-cluster (the leader's identity) for 2.5 s
      242,   // two-candidacies/two-clusters for 2.0 s
      94,    // split-brain: the active replica paused 7.7 s, then resumed
      2822,  // hold/controller-etcd (leader's replica, member 1) for 5.8 s
      137,   // clock/controller -7109 s (leader's replica) for 2.3 s
      473,   // kill/apiserver (leader's cluster) for 3.2 s
      420,   // hold/app-sidecar (leader's) for 3.3 s
      259,   // pause/controller (leader's active replica) for 3.3 s
  };
  o.etcd_members = 3;
  o.fault_phase = absl::Seconds(10);
  const char* out = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  if (out == nullptr) out = std::getenv("TEST_TMPDIR");
  o.out = std::string(out != nullptr ? out : "/tmp") + "/campaign";
  o.binaries.controller = testbed::Runfile("controller/mcl-controller");
  o.binaries.sidecar = testbed::Runfile("sidecar/mcl-sidecar");
  o.binaries.recorder = testbed::Runfile("e2e/campaign/mcl-recorder");
  o.binaries.faketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
  auto summary = RunCampaign(o);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->runs, static_cast<int>(o.seeds.size()));
  EXPECT_EQ(summary->setup_errors, 0) << summary->ToText();
  EXPECT_EQ(summary->failed, 0) << summary->ToText();
}

}  // namespace
}  // namespace mcl::campaign
