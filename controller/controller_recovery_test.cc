// Recovery on the real test bed: a standby replica taking over (session
// adopted, nothing lost or double-granted) and an etcd outage of 3×TTL
// (BackendReachable=False, nobody claims once the lease could have expired, a
// leader again after the restart). A binary of its own: stopping the global
// etcd must not disturb other tests.
#include <signal.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "controller/controller_test_util.h"
#include "controller/lock_status.h"
#include "gtest/gtest.h"
#include "testbed/cc/subprocess.h"
#include "testbed/cc/testbed.h"

namespace mcl::controller::testing {
namespace {

using testbed::WaitUntil;

constexpr absl::Duration kSlack = absl::Milliseconds(1500);

// Samples both CRs and the etcd key until stopped, recording any instant at
// which both clusters' statuses claim the lock or the status of a holder
// disagrees with the key.
class DoubleGrantMonitor {
 public:
  DoubleGrantMonitor(Env* env, std::string lock)
      : env_(env), lock_(std::move(lock)) {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        auto a = env_->Read(0, lock_);
        auto b = env_->Read(1, lock_);
        if (a.ok() && b.ok()) {
          samples_++;
          if (Holds(*a) && Holds(*b)) {
            absl::MutexLock l(&mu_);
            violations_.push_back(
                absl::StrCat("both hold: ", a->status.fencing_token, " and ",
                             b->status.fencing_token));
          }
        }
        absl::SleepFor(absl::Milliseconds(20));
      }
    });
  }
  ~DoubleGrantMonitor() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> violations() {
    absl::MutexLock l(&mu_);
    return violations_;
  }
  int samples() const { return samples_.load(); }

 private:
  Env* env_;
  std::string lock_;
  std::atomic<bool> stop_{false};
  std::atomic<int> samples_{0};
  absl::Mutex mu_;
  std::vector<std::string> violations_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

class RecoveryTest : public ControllerFixture {};

TEST_F(RecoveryTest,
       StandbyTakesOverAdoptsTheSessionAndNothingIsDoubleGranted) {
  // Cluster-0 runs two replicas. The session TTL (6 s) outlives the replica
  // hand-over (election Lease 2 s + polling), so the standby adopts the session
  // and the grant survives unchanged.
  const std::vector<std::string> flags = {"--session-ttl", "6s",
                                          "--election-lease-duration", "2s"};
  testbed::Subprocess* r1 = Start(0, "r1", flags);
  ASSERT_NE(r1, nullptr);
  testbed::Subprocess* r2 = Start(0, "r2", flags, /*wait_ready=*/false);
  ASSERT_NE(r2, nullptr);
  ASSERT_TRUE(r2->WaitForLog("\"msg\":\"standby\"", absl::Seconds(10)))
      << r2->Log();
  ASSERT_NE(Start(1, "c1"), nullptr);
  const std::string lock = "standby";
  ASSERT_TRUE(env_->CreateLock(0, lock).ok());
  ASSERT_TRUE(env_->CreateLock(1, lock).ok());
  Campaign(0, lock, "pod-a");
  auto g1 = WaitHeld(0, lock, "pod-a", absl::Seconds(10));
  ASSERT_TRUE(g1.has_value());
  Campaign(1, lock, "pod-b");
  auto before = env_->Key(lock);
  ASSERT_TRUE(before.ok() && before->has_value());

  DoubleGrantMonitor monitor(env_.get(), lock);
  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(r1->Signal(SIGKILL).ok());
  ASSERT_TRUE(r2->WaitForLog("\"msg\":\"active replica\"",
                             absl::Seconds(2) + kSlack + absl::Seconds(1)))
      << r2->Log();
  const absl::Duration takeover = absl::Now() - t0;
  EXPECT_LE(takeover, absl::Seconds(2) + kSlack)
      << "standby must take over within its lease";
  ASSERT_TRUE(r2->WaitForLog("adopted etcd session", absl::Seconds(5)))
      << r2->Log();
  ASSERT_TRUE(r2->WaitForLog("informer synced", absl::Seconds(10)));
  // The same key (same lease, same revision): nothing was released or
  // re-granted.
  absl::SleepFor(absl::Seconds(1));
  auto after = env_->Key(lock);
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_EQ((*after)->lease, (*before)->lease);
  EXPECT_EQ((*after)->mod_revision, (*before)->mod_revision);
  auto v0 = env_->Read(0, lock);
  ASSERT_TRUE(v0.ok());
  EXPECT_TRUE(Holds(*v0));
  EXPECT_EQ(v0->status.fencing_token, g1->status.fencing_token);
  // The new active replica serves: the candidate goes stale, cluster-1 wins.
  candidates_[0]->Stop();
  auto g2 = WaitHeld(1, lock, "pod-b",
                     absl::Seconds(6) * 1.01 + kSlack + absl::Seconds(3));
  ASSERT_TRUE(g2.has_value()) << r2->Log();
  EXPECT_GT(g2->status.fencing_token, g1->status.fencing_token);
  monitor.Stop();
  EXPECT_GT(monitor.samples(), 20);
  EXPECT_TRUE(monitor.violations().empty()) << monitor.violations()[0];
}

TEST_F(RecoveryTest,
       EtcdOutageWithdrawsEveryClaimAndALeaderReturnsAfterTheRestart) {
  ASSERT_NE(Start(0, "c0"), nullptr);
  ASSERT_NE(Start(1, "c1"), nullptr);
  const std::string lock = "outage";
  ASSERT_TRUE(env_->CreateLock(0, lock).ok());
  ASSERT_TRUE(env_->CreateLock(1, lock).ok());
  Campaign(0, lock, "pod-a");
  auto g1 = WaitHeld(0, lock, "pod-a", absl::Seconds(10));
  ASSERT_TRUE(g1.has_value());
  Campaign(1, lock, "pod-b");

  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(env_->tb.Stop("global-etcd").ok());
  // BackendReachable=False in both clusters, and by the time the lease could
  // have expired (TTL after the last answered keepalive, which was before t0)
  // no cluster claims the lock.
  auto nobody_claims = [&] {
    for (int c = 0; c < 2; ++c) {
      auto v = env_->Read(c, lock);
      if (!v.ok() || Holds(*v) || !v->status.leader.empty() ||
          !CondIs(*v, kBackendReachable, "False")) {
        return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(WaitUntil(nobody_claims, kTtl + kSlack));
  EXPECT_LE(absl::Now() - t0, kTtl + kSlack);
  auto v0 = env_->Read(0, lock);
  ASSERT_TRUE(v0.ok());
  EXPECT_TRUE(CondIs(*v0, kBackendReachable, "False", "SessionLost"));
  // It stays so for the rest of the outage (3×TTL in all).
  while (absl::Now() - t0 < kTtl * 3) {
    EXPECT_TRUE(nobody_claims());
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_TRUE(env_->tb.StartAgain("global-etcd").ok());
  const absl::Time t1 = absl::Now();
  // A leader again: new sessions (backoff ≤ 5 s), old sessions revoked,
  // contention by watch.
  std::optional<std::pair<kube::MultiClusterLease, kube::MultiClusterLease>>
      agreed;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto a = env_->Read(0, lock);
        auto b = env_->Read(1, lock);
        if (a.ok() && b.ok() && (Holds(*a) || Holds(*b)) &&
            !a->status.leader.empty() &&
            a->status.fencing_token == b->status.fencing_token &&
            CondIs(*a, kBackendReachable, "True") &&
            CondIs(*b, kBackendReachable, "True")) {
          agreed = std::make_pair(*a, *b);
        }
        return agreed.has_value();
      },
      absl::Seconds(15)))
      << "no leader within 15 s of etcd's restart";
  std::cerr << "leader again " << absl::Now() - t1 << " after the restart\n";
  EXPECT_FALSE(Holds(agreed->first) && Holds(agreed->second));
  EXPECT_GT(agreed->first.status.fencing_token, g1->status.fencing_token);
}

}  // namespace
}  // namespace mcl::controller::testing
