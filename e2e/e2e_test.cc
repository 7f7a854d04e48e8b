// End-to-end: three clusters (real kube-apiservers), a global etcd, a
// controller per cluster and two sidecars per cluster, all real processes on
// loopback; the apps are Campaign streams held by this test. Scenarios:
// graceful resign, stream cancel, SIGKILL of the leader's sidecar (app dies
// with it), loss of the leader's whole cluster and its return. After every
// scenario the recorded history is checked: no two leadership intervals overlap
// on this machine's monotonic clock (S1), tokens strictly increase (S2), and
// every observer saw the same leaders and tokens.
#include <signal.h>

#include <random>

#include "absl/strings/str_cat.h"
#include "e2e/fleet.h"
#include "gtest/gtest.h"

namespace mcl::e2e {
namespace {

constexpr char kLock[] = "e2e-lock";
constexpr int kClusters = 3;
constexpr int kSidecarsPerCluster = 2;

// Bounds asserted here are generous on purpose (a loaded 2-core machine); the
// benchmark measures the real distributions. What they prove: graceful handoff
// needs no expiry (bound < lease TTL), crash failover needs no manual step and
// ends within TTL + lease + margins.
constexpr absl::Duration kGracefulBound = absl::Milliseconds(1500);
constexpr absl::Duration kCrashBound = absl::Seconds(10);

class EndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FleetOptions opts;
    opts.clusters = kClusters;
    auto fleet = Fleet::Start(opts);
    ASSERT_TRUE(fleet.ok()) << fleet.status();
    fleet_ = std::move(*fleet);
    for (int c = 0; c < kClusters; ++c) {
      for (int k = 0; k < kSidecarsPerCluster; ++k) {
        auto sc = fleet_->AddSidecar(c);
        ASSERT_TRUE(sc.ok()) << sc.status();
        sidecars_.push_back(*sc);
      }
      observers_.push_back(fleet_->AddObserver(absl::StrCat("observer-c", c),
                                               sidecars_.back(), kLock));
    }
  }

  void TearDown() override {
    if (fleet_ != nullptr) {
      absl::Status s = fleet_->history().Check();
      EXPECT_TRUE(s.ok()) << s;
    }
  }

  void CampaignAll() {
    std::vector<App*> apps;
    for (Sidecar* s : sidecars_) {
      App* app = fleet_->AddApp(absl::StrCat("app-", s->name), s);
      apps.push_back(app);
    }
    std::shuffle(apps.begin(), apps.end(), rng_);
    for (App* app : apps) {
      app->Campaign(kLock, fleet_->options().lease_duration_seconds);
      Jitter(absl::Milliseconds(100));
    }
  }

  // Random timing between steps, so repeated runs interleave differently.
  void Jitter(absl::Duration max) {
    std::uniform_int_distribution<int64_t> d(0, absl::ToInt64Milliseconds(max));
    absl::SleepFor(absl::Milliseconds(d(rng_)));
  }

  // Waits until some app leads and every observer names it; returns it.
  // Observers in `blind_cluster` (whose controller is stopped, so nobody
  // updates its status) are not asked.
  App* WaitForLeaderEverywhere(const std::string& not_identity,
                               absl::Duration timeout, int blind_cluster = -1) {
    absl::Time deadline = absl::Now() + timeout;
    App* leader = fleet_->WaitForLeader(not_identity, timeout);
    if (leader == nullptr) return nullptr;
    for (Observer* o : observers_) {
      if (!o->sidecar()->alive()) continue;  // its cluster is down
      if (o->sidecar()->cluster == blind_cluster) continue;
      if (!o->WaitForLeader(leader->identity(), 0, deadline - absl::Now())) {
        ADD_FAILURE() << "an observer never saw " << leader->identity()
                      << "; it sees " << o->latest().identity;
        return nullptr;
      }
    }
    return leader;
  }

  // Time from `start` (monotonic) until an app other than `old` leads.
  absl::Duration WaitForNewLeader(const std::string& old, absl::Duration start,
                                  absl::Duration timeout) {
    return fleet_->NewLeaderAfter(old, start, timeout)
        .value_or(absl::InfiniteDuration());
  }

  std::unique_ptr<Fleet> fleet_;
  std::vector<Sidecar*> sidecars_;
  std::vector<Observer*> observers_;
  std::mt19937 rng_{std::random_device{}()};
};

TEST_F(EndToEndTest, ResignKillAndClusterLossKeepOneLeaderAndGrowingTokens) {
  CampaignAll();
  App* leader = WaitForLeaderEverywhere("", absl::Seconds(20));
  ASSERT_NE(leader, nullptr) << "no leader after campaigning";

  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    // 1. Graceful: the leader resigns.
    int64_t token = leader->token();
    std::string old = leader->identity();
    absl::Duration t0 = MonoNow();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    mcl::v1::ResignRequest req;
    req.mutable_lock()->set_name(kLock);
    req.set_identity(old);
    mcl::v1::ResignResponse resp;
    grpc::Status st = leader->sidecar()->Stub()->Resign(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_TRUE(resp.was_leader());
    absl::Duration handoff = WaitForNewLeader(old, t0, absl::Seconds(10));
    EXPECT_LT(handoff, kGracefulBound)
        << "graceful handoff took " << absl::FormatDuration(handoff);
    leader = WaitForLeaderEverywhere(old, absl::Seconds(10));
    ASSERT_NE(leader, nullptr);
    EXPECT_GT(leader->token(), token);
    // The resigned app campaigns again.
    for (App* a : fleet_->apps()) {
      if (a->identity() == old) a->Campaign(kLock, 2);
    }
    Jitter(absl::Milliseconds(500));

    // 2. Crash: SIGKILL the leader's sidecar; its app dies with it.
    token = leader->token();
    old = leader->identity();
    Sidecar* dead = leader->sidecar();
    t0 = MonoNow();
    ASSERT_TRUE(fleet_->SignalSidecar(dead, SIGKILL).ok());
    absl::Duration failover =
        WaitForNewLeader(old, t0, kCrashBound + absl::Seconds(5));
    EXPECT_LT(failover, kCrashBound)
        << "crash failover took " << absl::FormatDuration(failover);
    leader = WaitForLeaderEverywhere(old, absl::Seconds(10));
    ASSERT_NE(leader, nullptr);
    EXPECT_GT(leader->token(), token);
    ASSERT_TRUE(fleet_->RestartSidecar(dead).ok());
    for (App* a : fleet_->apps()) {
      if (a->sidecar() == dead) a->Campaign(kLock, 2);
    }
    Jitter(absl::Milliseconds(500));

    // 3. Cluster loss: the leader's controller and all its sidecars die; then
    // it returns.
    token = leader->token();
    old = leader->identity();
    int lost = leader->sidecar()->cluster;
    t0 = MonoNow();
    ASSERT_TRUE(fleet_->KillCluster(lost).ok());
    failover = WaitForNewLeader(old, t0, kCrashBound + absl::Seconds(5));
    EXPECT_LT(failover, kCrashBound)
        << "cluster-loss failover took " << absl::FormatDuration(failover);
    leader = WaitForLeaderEverywhere(old, absl::Seconds(10));
    ASSERT_NE(leader, nullptr);
    EXPECT_NE(leader->sidecar()->cluster, lost);
    EXPECT_GT(leader->token(), token);
    ASSERT_TRUE(fleet_->ReviveCluster(lost).ok());
    for (App* a : fleet_->apps()) {
      if (a->sidecar()->cluster == lost) a->Campaign(kLock, 2);
    }
    // Observers in the revived cluster catch up to the current leader.
    leader = WaitForLeaderEverywhere("", absl::Seconds(20));
    ASSERT_NE(leader, nullptr);
    absl::Status s = fleet_->history().Check();
    ASSERT_TRUE(s.ok()) << s;
  }
}

TEST_F(EndToEndTest, StreamCancelAndSidecarSigtermAreResigns) {
  CampaignAll();
  App* leader = WaitForLeaderEverywhere("", absl::Seconds(20));
  ASSERT_NE(leader, nullptr);

  // Cancelling the Campaign stream resigns at once.
  std::string old = leader->identity();
  absl::Duration t0 = MonoNow();
  leader->Cancel();
  absl::Duration handoff = WaitForNewLeader(old, t0, absl::Seconds(10));
  EXPECT_LT(handoff, kGracefulBound);
  leader = WaitForLeaderEverywhere(old, absl::Seconds(10));
  ASSERT_NE(leader, nullptr);

  // SIGTERM of the leader's sidecar (a pod's shutdown) resigns too, well before
  // any TTL.
  old = leader->identity();
  t0 = MonoNow();
  ASSERT_TRUE(fleet_->SignalSidecar(leader->sidecar(), SIGTERM).ok());
  handoff = WaitForNewLeader(old, t0, absl::Seconds(10));
  EXPECT_LT(handoff, kGracefulBound);
  EXPECT_EQ(leader->sidecar()->process->Wait(absl::Seconds(1)).value_or(-1), 0)
      << "sidecar did not exit 0 on SIGTERM";
}

TEST_F(EndToEndTest, ControllerSigtermHandsOverAtOnce) {
  CampaignAll();
  App* leader = WaitForLeaderEverywhere("", absl::Seconds(20));
  ASSERT_NE(leader, nullptr);
  std::string old = leader->identity();
  int cluster = leader->sidecar()->cluster;
  absl::Duration t0 = MonoNow();
  ASSERT_TRUE(fleet_->StopController(cluster, SIGTERM).ok());
  absl::Duration handoff = WaitForNewLeader(old, t0, absl::Seconds(15));
  // "At once": well under the 2 s session TTL it would take if the lease had to
  // expire.
  EXPECT_LT(handoff, kGracefulBound);
  leader = WaitForLeaderEverywhere(old, absl::Seconds(10), cluster);
  ASSERT_NE(leader, nullptr);
  EXPECT_NE(leader->sidecar()->cluster, cluster);
}

}  // namespace
}  // namespace mcl::e2e
