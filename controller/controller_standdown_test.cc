// Standing down instead of exiting, on the real test bed (issue 15, PLAN
// decisions 5 and 6): two replicas of one cluster where the active one is
// paused past its replica Lease and resumed (it never touches a key the other
// granted, stands down, and later takes over again without a restart); and
// the leading cluster losing its apiserver (another cluster leads within
// TTL + 500 ms of the moment no local candidate can still count itself
// leader; the controller keeps running and rejoins when the apiserver is
// back). A binary of its own: it stops an apiserver.
#include <signal.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/contract.h"
#include "common/etcd/watch.h"
#include "common/kube/objects.h"
#include "controller/controller_test_util.h"
#include "controller/lock_status.h"
#include "gtest/gtest.h"
#include "testbed/cc/subprocess.h"
#include "testbed/cc/testbed.h"

namespace mcl::controller::testing {
namespace {

using testbed::WaitUntil;

absl::Duration Mono() { return Clock::Real()->Monotonic(); }

// Every change of one etcd key, with the monotonic time the test saw it.
class KeyHistory {
 public:
  KeyHistory(etcd::Client* client, const std::string& key) {
    etcd::WatchOptions o;
    o.key = key;
    etcd::WatchCallbacks cb;
    cb.on_created = [this](int64_t) {
      absl::MutexLock l(&mu_);
      created_ = true;
    };
    cb.on_events = [this](const std::vector<etcd::Event>& events, int64_t) {
      absl::MutexLock l(&mu_);
      for (const auto& e : events) changes_.push_back({e, Mono()});
    };
    auto w = etcd::Watch::Start(client, o, cb);
    EXPECT_TRUE(w.ok()) << w.status();
    if (w.ok()) watch_ = std::move(*w);
    absl::MutexLock l(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&created_), absl::Seconds(10));
  }
  struct Change {
    etcd::Event event;
    absl::Duration seen;
  };
  std::vector<Change> changes() {
    absl::MutexLock l(&mu_);
    return changes_;
  }

 private:
  absl::Mutex mu_;
  bool created_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Change> changes_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<etcd::Watch> watch_;
};

// A Prometheus sample of a controller, or -1.
double Metric(const testbed::Subprocess& p, const std::string& name) {
  const std::string log = p.Log();
  const size_t at = log.find("\"msg\":\"metrics listening\"");
  if (at == std::string::npos) return -1;
  const size_t port_at = log.find("\"port\":\"", at);
  const int port = std::atoi(log.c_str() + port_at + 8);
  auto r = testbed::RunCommand(
      {"curl", "-s", absl::StrCat("http://127.0.0.1:", port, "/metrics")},
      absl::Seconds(10));
  if (!r.ok()) return -1;
  for (absl::string_view line : absl::StrSplit(r->output, '\n')) {
    if (absl::StartsWith(line, name + " ")) {
      double v = -1;
      if (absl::SimpleAtod(line.substr(name.size() + 1), &v)) return v;
    }
  }
  return -1;
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

class StandDownTest : public ControllerFixture {};

// PLAN decision 5. r1 is paused (SIGSTOP) past its replica Lease; r2 takes
// over, claims a newer epoch, adopts the session, and releases the lock when
// its candidate resigns, so cluster 1 leads. r1, resumed, finds its fence
// passed and itself deposed: it stands down without writing the key, keeps
// running, and when r2 dies it becomes the active replica again.
TEST_F(StandDownTest, APausedReplicaResumesDeposedAndNeverTouchesTheKey) {
  // The session outlives the hand-over (election Lease 3 s), so r2 adopts it
  // and r1's grant survives the pause unchanged.
  const std::vector<std::string> flags = {"--session-ttl", "6s",
                                          "--election-lease-duration", "3s"};
  testbed::Subprocess* r1 = Start(0, "r1", flags);
  ASSERT_NE(r1, nullptr);
  testbed::Subprocess* r2 = Start(0, "r2", flags, /*wait_ready=*/false);
  ASSERT_NE(r2, nullptr);
  ASSERT_TRUE(r2->WaitForLog("\"msg\":\"standby\"", absl::Seconds(10)));
  ASSERT_NE(Start(1, "c1"), nullptr);
  const std::string lock = "paused";
  ASSERT_TRUE(env_->CreateLock(0, lock).ok());
  ASSERT_TRUE(env_->CreateLock(1, lock).ok());
  Candidate* a = Campaign(0, lock, "pod-a");
  ASSERT_TRUE(WaitHeld(0, lock, "pod-a", absl::Seconds(10)).has_value());
  Campaign(1, lock, "pod-b");
  auto granted = env_->Key(lock);
  ASSERT_TRUE(granted.ok() && granted->has_value());
  const double r1_grants = Metric(*r1, "mcl_controller_grants_total");
  const double r1_releases = Metric(*r1, "mcl_controller_releases_total");
  ASSERT_GE(r1_grants, 1);

  KeyHistory history(env_->etcd(), env_->EtcdKey(lock));
  ASSERT_TRUE(r1->Signal(SIGSTOP).ok());
  const absl::Duration paused_at = Mono();
  ASSERT_TRUE(r2->WaitForLog("\"msg\":\"active replica\"", absl::Seconds(10)))
      << r2->Log();
  ASSERT_TRUE(r2->WaitForLog("replica epoch claimed", absl::Seconds(10)));
  ASSERT_TRUE(r2->WaitForLog("adopted etcd session", absl::Seconds(10)))
      << r2->Log();
  // r2 serves: the candidate resigns, r2 revokes and releases, cluster 1
  // leads.
  ASSERT_TRUE(a->Resign().ok());
  ASSERT_TRUE(WaitHeld(1, lock, "pod-b", absl::Seconds(10)).has_value())
      << r2->Log();
  auto now_held = env_->Key(lock);
  ASSERT_TRUE(now_held.ok() && now_held->has_value());
  EXPECT_EQ(contract::ParseKeyValue((*now_held)->value)->cluster,
            env_->tb.cluster(1).name);
  const size_t changes_before_resume = history.changes().size();

  // r1 resumes with a view from before the pause.
  ASSERT_TRUE(r1->Signal(SIGCONT).ok());
  const absl::Duration resumed_at = Mono();
  std::cerr << "r1 paused for " << resumed_at - paused_at << "\n";
  ASSERT_TRUE(r1->WaitForLog("\"msg\":\"standing down\"", absl::Seconds(10)))
      << r1->Log();
  ASSERT_TRUE(r1->WaitForLog("stood down", absl::Seconds(10))) << r1->Log();
  ASSERT_TRUE(r1->WaitForLog("\"msg\":\"standby\"", absl::Seconds(10)))
      << r1->Log();
  EXPECT_TRUE(r1->running()) << "stands down, does not exit";
  // Nothing r1 did reached the key: no change since cluster 1's grant, and
  // r1 counts no grant or release after its pause.
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(history.changes().size(), changes_before_resume);
  auto after = env_->Key(lock);
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_EQ((*after)->mod_revision, (*now_held)->mod_revision);
  EXPECT_EQ(Metric(*r1, "mcl_controller_grants_total"), r1_grants);
  EXPECT_EQ(Metric(*r1, "mcl_controller_releases_total"), r1_releases);
  EXPECT_EQ(Metric(*r1, "mcl_controller_active"), 0);
  EXPECT_GE(Metric(*r1, "mcl_controller_stand_downs_total"), 1);

  // Rejoins without a restart: r2 dies, r1 takes over and serves.
  ASSERT_TRUE(r2->Signal(SIGKILL).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Count(r1->Log(), "\"msg\":\"active replica\"") >= 2 &&
               Count(r1->Log(), "replica epoch claimed") >= 2;
      },
      absl::Seconds(15)))
      << r1->Log();
  Campaign(0, lock, "pod-a2");
  ASSERT_TRUE(candidates_[1]->Resign().ok());  // pod-b leaves cluster 1
  EXPECT_TRUE(WaitHeld(0, lock, "pod-a2", absl::Seconds(15)).has_value())
      << r1->Log();
  EXPECT_EQ(Metric(*r1, "mcl_controller_active"), 1);
}

// PLAN decision 6, issue 15: the leading cluster's apiserver stops. Its
// controller cannot publish confirmations any more; from S_last +
// TTL·(1+rho) + m on it releases its keys, and cluster 1 leads within TTL +
// 500 ms of the moment the candidate's validity ran out (its last write
// covered by a heartbeat that landed + TTL·(1−rho) − m). The controller keeps
// running, stands down, and rejoins when the apiserver is back.
TEST_F(StandDownTest, ControlPlaneLossFailsOverFastAndTheControllerRejoins) {
  testbed::Subprocess* c0 = Start(0, "c0");
  ASSERT_NE(c0, nullptr);
  ASSERT_NE(Start(1, "c1"), nullptr);
  const std::string lock = "cploss";
  ASSERT_TRUE(env_->CreateLock(0, lock).ok());
  ASSERT_TRUE(env_->CreateLock(1, lock).ok());
  Candidate* a = Campaign(0, lock, "pod-a");
  ASSERT_TRUE(WaitHeld(0, lock, "pod-a", absl::Seconds(10)).has_value());
  Campaign(1, lock, "pod-b");
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto v = env_->Read(1, lock);
        return v.ok() && CondIs(*v, kCandidateLive, "True");
      },
      absl::Seconds(10)));
  KeyHistory history(env_->etcd(), env_->EtcdKey(lock));

  // Kill the apiserver right after a heartbeat landed, so that no later one
  // can: c is what the candidate's confirmation covers.
  const std::string hb_name =
      contract::HeartbeatLeaseName(env_->tb.cluster(0).name);
  auto confirmed = [&]() -> int64_t {
    auto l = env_->admin(0)->Get(kube::LeaseResource(), env_->ns, hb_name);
    if (!l.ok()) return -1;
    auto lease = kube::Lease::FromJson(*l);
    if (!lease.ok()) return -1;
    auto it = lease->metadata.annotations.find(
        contract::kConfirmedResourceVersionAnnotation);
    int64_t c = -1;
    if (it != lease->metadata.annotations.end())
      absl::SimpleAtoi(it->second, &c);
    return c;
  };
  const int64_t c_before = confirmed();
  int64_t c = c_before;
  ASSERT_TRUE(WaitUntil(
      [&] {
        c = confirmed();
        return c > c_before;
      },
      absl::Seconds(10)));
  ASSERT_TRUE(env_->tb.Kill("apiserver-0").ok());
  const absl::Duration killed_at = Mono();

  // T_w*: the candidate's newest write that c covers.
  absl::Duration t_w = absl::ZeroDuration();
  for (const auto& [rv, sent] : a->writes()) {
    if (rv <= c) t_w = std::max(t_w, sent);
  }
  ASSERT_GT(t_w, absl::ZeroDuration());
  const absl::Duration ttl = kTtl;
  const absl::Duration validity_end =
      t_w + contract::ValidityAfterConfirmedWrite(ttl);

  // Cluster 1's grant: the first put of the key by cluster 1.
  absl::Duration granted_at = absl::ZeroDuration();
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (const auto& ch : history.changes()) {
          auto v = contract::ParseKeyValue(ch.event.kv.value);
          if (ch.event.type == etcd::Event::Type::kPut && v &&
              v->cluster == env_->tb.cluster(1).name) {
            granted_at = ch.seen;
            return true;
          }
        }
        return false;
      },
      absl::Seconds(15)))
      << c0->Log();
  std::cerr << "apiserver killed " << killed_at - t_w
            << " after the covered write; validity ended at +"
            << validity_end - t_w << "; cluster 1 granted at +"
            << granted_at - t_w << " (" << granted_at - validity_end
            << " after the validity ended)\n";
  EXPECT_LE(granted_at - validity_end, ttl + absl::Milliseconds(500))
      << c0->Log();
  ASSERT_TRUE(WaitHeld(1, lock, "pod-b", absl::Seconds(5)).has_value());
  ASSERT_TRUE(c0->WaitForLog("\"msg\":\"standing down\"", absl::Seconds(10)));
  EXPECT_TRUE(c0->running()) << "stands down, does not exit";

  // The apiserver comes back: c0 rejoins on its own and serves again.
  ASSERT_TRUE(env_->tb.StartAgain("apiserver-0").ok());
  ASSERT_TRUE(WaitUntil(
      [&] { return Count(c0->Log(), "\"msg\":\"active replica\"") >= 2; },
      absl::Seconds(30)))
      << c0->Log();
  EXPECT_TRUE(c0->running());
  ASSERT_TRUE(candidates_[1]->Resign().ok());
  EXPECT_TRUE(WaitHeld(0, lock, "pod-a", absl::Seconds(15)).has_value())
      << c0->Log();
}

}  // namespace
}  // namespace mcl::controller::testing
