// Leases, keepalive and Session against a real etcd: grant/revoke/TTL, a 2 s
// lease kept alive for 20 s, expiry after the keepalive stops (never before the
// last answered send time + TTL), loss reported on revoke and on an unreachable
// etcd, and a keepalive stream that survives a restart.
#include "common/etcd/lease.h"

#include <atomic>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/etcd/client.h"
#include "common/etcd/kv.h"
#include "common/etcd/session.h"
#include "common/etcd/testing/etcd_process.h"
#include "common/etcd/watch.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testbed/faultproxy/faultproxy.h"

namespace mcl::etcd {
namespace {

using ::testing::HasSubstr;

// Collects keepalive answers and losses; waits on them.
class Recorder {
 public:
  KeepAliveCallbacks Callbacks() {
    KeepAliveCallbacks cb;
    cb.on_renewed = [this](const KeepAliveResponse& r) {
      absl::MutexLock l(&mu_);
      renewals_.push_back(r);
    };
    cb.on_lost = [this](const absl::Status& why) {
      absl::MutexLock l(&mu_);
      lost_.push_back(why);
      lost_at_ = Clock::Real()->Monotonic();
    };
    return cb;
  }
  // Waits until `pred(renewals)` holds; false on timeout or loss.
  bool WaitRenewals(
      const std::function<bool(const std::vector<KeepAliveResponse>&)>& pred,
      absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    auto cond = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !lost_.empty() || pred(renewals_);
    };
    mu_.AwaitWithTimeout(absl::Condition(&cond), timeout);
    return lost_.empty() && pred(renewals_);
  }
  bool WaitLost(absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    auto cond = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !lost_.empty();
    };
    return mu_.AwaitWithTimeout(absl::Condition(&cond), timeout);
  }
  std::vector<KeepAliveResponse> renewals() {
    absl::MutexLock l(&mu_);
    return renewals_;
  }
  std::vector<absl::Status> lost() {
    absl::MutexLock l(&mu_);
    return lost_;
  }
  absl::Duration lost_at() {
    absl::MutexLock l(&mu_);
    return lost_at_;
  }

 private:
  absl::Mutex mu_;
  std::vector<KeepAliveResponse> renewals_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> lost_ ABSL_GUARDED_BY(mu_);
  absl::Duration lost_at_ ABSL_GUARDED_BY(mu_);
};

// Watches one key and records when its DELETE arrives.
class DeleteWaiter {
 public:
  DeleteWaiter(Client* client, const std::string& key, int64_t from_revision) {
    WatchOptions o;
    o.key = key;
    o.start_revision = from_revision;
    WatchCallbacks cb;
    cb.on_events = [this](const std::vector<Event>& events, int64_t) {
      for (const Event& e : events) {
        if (e.type == Event::Type::kDelete) {
          absl::MutexLock l(&mu_);
          deleted_ = true;
          deleted_at_ = Clock::Real()->Monotonic();
        }
      }
    };
    auto w = Watch::Start(client, o, cb);
    EXPECT_TRUE(w.ok()) << w.status();
    if (w.ok()) watch_ = std::move(*w);
  }
  // The monotonic time the delete was seen, or nullopt on timeout.
  std::optional<absl::Duration> Wait(absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&deleted_), timeout))
      return std::nullopt;
    return deleted_at_;
  }

 private:
  absl::Mutex mu_;
  bool deleted_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration deleted_at_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Watch> watch_;
};

class LeaseTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto e = testing::EtcdProcess::Start();
    ASSERT_TRUE(e.ok()) << e.status();
    etcd_ = e->release();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(etcd_, nullptr);
    if (!etcd_->running()) {
      ASSERT_TRUE(etcd_->Restart().ok());
    }
    ClientConfig config;
    config.endpoints = {etcd_->address()};
    config.call_timeout = absl::Seconds(3);
    auto c = Client::Create(config);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
    kv_ = std::make_unique<KV>(client_.get());
    prefix_ = absl::StrCat(
        "/", ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        "/");
  }

  static testing::EtcdProcess* etcd_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<KV> kv_;
  std::string prefix_;
};

testing::EtcdProcess* LeaseTest::etcd_ = nullptr;

TEST_F(LeaseTest, GrantTimeToLiveAndRevokeDeletesAttachedKeys) {
  Lease lease(client_.get());
  auto grant = lease.Grant(30);
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_NE(grant->id, 0);
  EXPECT_EQ(grant->ttl_seconds, 30);
  PutOptions with_lease;
  with_lease.lease = grant->id;
  ASSERT_TRUE(kv_->Put(prefix_ + "a", "1", with_lease).ok());
  ASSERT_TRUE(kv_->Put(prefix_ + "b", "2", with_lease).ok());
  ASSERT_TRUE(kv_->Put(prefix_ + "c", "no lease").ok());

  auto ttl = lease.TimeToLive(grant->id, /*keys=*/true);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_EQ(ttl->granted_ttl_seconds, 30);
  EXPECT_GT(ttl->ttl_seconds, 25);
  EXPECT_THAT(ttl->keys,
              ::testing::UnorderedElementsAre(prefix_ + "a", prefix_ + "b"));

  ASSERT_TRUE(lease.Revoke(grant->id).ok());
  RangeOptions all;
  all.prefix = true;
  auto left = kv_->Range(prefix_, all);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->kvs.size(), 1u);
  EXPECT_EQ(left->kvs[0].key, prefix_ + "c");

  auto gone = lease.TimeToLive(grant->id);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(gone.status().message()),
              HasSubstr("does not exist"));
  auto again = lease.Revoke(grant->id);
  EXPECT_EQ(again.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(again.message()), HasSubstr("lease not found"));
  EXPECT_EQ(lease.Grant(0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(LeaseTest, KeepAliveKeepsA2sLeaseAliveFor20s) {
  Lease lease(client_.get());
  auto grant = lease.Grant(2);
  ASSERT_TRUE(grant.ok()) << grant.status();
  PutOptions with_lease;
  with_lease.lease = grant->id;
  ASSERT_TRUE(kv_->Put(prefix_ + "held", "x", with_lease).ok());
  Recorder rec;
  const absl::Duration start = Clock::Real()->Monotonic();
  ASSERT_TRUE(lease.KeepAlive(*grant, rec.Callbacks()).ok());
  EXPECT_EQ(lease.KeptAlive(), std::vector<int64_t>{grant->id});
  EXPECT_EQ(lease.KeepAlive(*grant, {}).code(),
            absl::StatusCode::kAlreadyExists);

  // Wait for the event "a keepalive sent 20 s after the start was answered".
  ASSERT_TRUE(rec.WaitRenewals(
      [&](const std::vector<KeepAliveResponse>& r) {
        return !r.empty() && r.back().sent_at >= start + absl::Seconds(20);
      },
      absl::Seconds(30)))
      << (rec.lost().empty() ? "timed out" : rec.lost()[0].ToString());

  auto renewals = rec.renewals();
  // Every TTL/3 (~667 ms): about 30 in 20 s.
  EXPECT_GE(renewals.size(), 25u);
  absl::Duration prev_sent = grant->sent_at;
  for (const KeepAliveResponse& r : renewals) {
    EXPECT_EQ(r.id, grant->id);
    EXPECT_EQ(r.ttl_seconds, 2)
        << "TTL must be renewed to the full 2 s, never 0";
    EXPECT_LE(r.sent_at, r.received_at);
    EXPECT_GT(r.sent_at, prev_sent);
    // The lease was never left unconfirmed for its whole TTL.
    EXPECT_LT(r.sent_at - prev_sent, absl::Seconds(2));
    EXPECT_EQ(r.endpoint, etcd_->address());
    prev_sent = r.sent_at;
  }
  EXPECT_TRUE(rec.lost().empty());
  auto held = kv_->Get(prefix_ + "held");
  ASSERT_TRUE(held.ok() && held->has_value());
  EXPECT_EQ((*held)->lease, grant->id);
  auto ttl = lease.TimeToLive(grant->id);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_GT(ttl->ttl_seconds, 0);
  ASSERT_TRUE(lease.Revoke(grant->id).ok());
  EXPECT_TRUE(lease.KeptAlive().empty());
}

TEST_F(LeaseTest,
       LeaseExpiresAfterKeepAliveStopsButNotBeforeLastAnsweredSendPlusTtl) {
  Lease lease(client_.get());
  auto grant = lease.Grant(2);
  ASSERT_TRUE(grant.ok()) << grant.status();
  PutOptions with_lease;
  with_lease.lease = grant->id;
  auto put = kv_->Put(prefix_ + "held", "x", with_lease);
  ASSERT_TRUE(put.ok());
  DeleteWaiter deleted(client_.get(), prefix_ + "held", put->revision + 1);
  Recorder rec;
  ASSERT_TRUE(lease.KeepAlive(*grant, rec.Callbacks()).ok());
  ASSERT_TRUE(rec.WaitRenewals([](const auto& r) { return r.size() >= 3; },
                               absl::Seconds(10)));
  lease.StopKeepAlive(grant->id);
  const absl::Duration stopped_at = Clock::Real()->Monotonic();
  const absl::Duration last_sent = rec.renewals().back().sent_at;

  auto deleted_at = deleted.Wait(absl::Seconds(10));
  ASSERT_TRUE(deleted_at.has_value()) << "the key outlived its lease";
  // The safety bound the controller relies on: expiry comes after last answered
  // send + TTL.
  EXPECT_GE(*deleted_at, last_sent + absl::Seconds(2));
  // And it does expire: within TTL + a margin for etcd's expiry checker (every
  // 500 ms).
  EXPECT_LE(*deleted_at,
            stopped_at + absl::Seconds(2) + absl::Milliseconds(1500));
  EXPECT_EQ(lease.TimeToLive(grant->id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(rec.lost().empty()) << "a stopped keepalive reports nothing";
}

TEST_F(LeaseTest, RevokedElsewhereIsReportedLost) {
  Lease lease(client_.get());
  auto grant = lease.Grant(6);
  ASSERT_TRUE(grant.ok()) << grant.status();
  Recorder rec;
  ASSERT_TRUE(lease.KeepAlive(*grant, rec.Callbacks()).ok());
  ASSERT_TRUE(rec.WaitRenewals([](const auto& r) { return !r.empty(); },
                               absl::Seconds(10)));
  Lease other(client_.get());
  ASSERT_TRUE(other.Revoke(grant->id).ok());
  // The next keepalive (within TTL/3 = 2 s) is answered with TTL 0.
  ASSERT_TRUE(rec.WaitLost(absl::Seconds(5)));
  ASSERT_EQ(rec.lost().size(), 1u);
  EXPECT_EQ(rec.lost()[0].code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(
      std::string(rec.lost()[0].message()),
      HasSubstr(absl::StrCat("lease ", grant->id, " no longer exists")));
  EXPECT_TRUE(lease.KeptAlive().empty());
}

TEST_F(LeaseTest, SessionKeepsItsLeaseAndCloseRevokes) {
  std::atomic<int> renewed{0};
  SessionOptions o;
  o.ttl_seconds = 2;
  o.on_renewed = [&](const KeepAliveResponse&) { ++renewed; };
  auto session = Session::Create(client_.get(), o);
  ASSERT_TRUE(session.ok()) << session.status();
  Session& s = **session;
  EXPECT_NE(s.lease_id(), 0);
  EXPECT_EQ(s.ttl_seconds(), 2);
  auto created =
      kv_->Commit(CreateIfAbsent(prefix_ + "lock", "me", s.lease_id()));
  ASSERT_TRUE(created.ok() && created->succeeded);
  // Outlive the TTL twice over, waiting on the session's own renewals.
  EXPECT_FALSE(s.WaitDone(absl::Seconds(5)));
  EXPECT_GE(renewed.load(), 5);
  ASSERT_TRUE(s.last_renewal().has_value());
  EXPECT_EQ(s.known_alive_until(),
            s.last_renewal()->sent_at + absl::Seconds(2));
  EXPECT_GT(s.known_alive_until(), Clock::Real()->Monotonic());
  EXPECT_TRUE(s.status().ok());
  auto held = kv_->Get(prefix_ + "lock");
  ASSERT_TRUE(held.ok() && held->has_value());

  ASSERT_TRUE(s.Close().ok());
  EXPECT_TRUE(s.Done());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kCancelled);
  auto gone = kv_->Get(prefix_ + "lock");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value()) << "Close revokes: attached keys go at once";
  EXPECT_TRUE(s.Close().ok()) << "idempotent";
}

// A second process takes over a session (a controller replica adopting its
// predecessor's): the lease and its keys live on after the first stops
// keeping it alive, and a lease that is gone cannot be adopted.
TEST_F(LeaseTest, AdoptedSessionKeepsTheLeaseAndItsKeysAlive) {
  SessionOptions o;
  o.ttl_seconds = 2;
  auto first = Session::Create(client_.get(), o);
  ASSERT_TRUE(first.ok()) << first.status();
  const int64_t id = (*first)->lease_id();
  EXPECT_FALSE((*first)->start().adopted);
  EXPECT_EQ((*first)->start().remaining, absl::Seconds(2));
  auto created = kv_->Commit(CreateIfAbsent(prefix_ + "lock", "me", id));
  ASSERT_TRUE(created.ok() && created->succeeded);

  ClientConfig config;
  config.endpoints = {etcd_->address()};
  auto other = Client::Create(config);
  ASSERT_TRUE(other.ok());
  const absl::Duration before = Clock::Real()->Monotonic();
  auto adopted = Session::Adopt(other->get(), id, o);
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  Session& s = **adopted;
  EXPECT_EQ(s.lease_id(), id);
  EXPECT_EQ(s.ttl_seconds(), 2);
  EXPECT_TRUE(s.start().adopted);
  EXPECT_GE(s.start().valid_from, before);
  // Whole seconds, rounded down by etcd, counted from before the question.
  EXPECT_GE(s.start().remaining, absl::Seconds(1));
  EXPECT_LE(s.start().remaining, absl::Seconds(2));
  EXPECT_LE(s.known_alive_until(), s.start().valid_from + s.start().remaining);
  (*first)->StopKeepAlive();
  EXPECT_TRUE((*first)->Done());
  first->reset();

  // Three TTLs later the key is still there: the adopter keeps it alive.
  EXPECT_FALSE(s.WaitDone(absl::Seconds(6)));
  auto held = kv_->Get(prefix_ + "lock");
  ASSERT_TRUE(held.ok() && held->has_value());
  EXPECT_EQ((*held)->lease, id);

  ASSERT_TRUE(s.Close().ok());
  auto gone = Session::Adopt(client_.get(), id, o);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound) << gone.status();
  EXPECT_EQ(Session::Adopt(client_.get(), 0, o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The keepalive stream goes through a path that starts holding bytes: its
// answers stop without a reset. The stream is dropped after max(1 s, TTL/2)
// without an answer and keepalives continue on the next endpoint, so the
// session survives a stuck member.
TEST_F(LeaseTest, ASilentKeepaliveStreamMovesToTheNextEndpoint) {
  using faultproxy::FaultProxy;
  auto path = testing::ProxyTo(*etcd_);
  ASSERT_TRUE(path.ok()) << path.status();
  ClientConfig config;
  config.endpoints = {path->address, etcd_->address()};
  config.call_timeout = absl::Seconds(2);
  auto client = Client::Create(config);
  ASSERT_TRUE(client.ok());
  std::atomic<int> direct{0};
  const std::string direct_address = etcd_->address();
  SessionOptions o;
  o.ttl_seconds = 3;
  o.on_renewed = [&](const KeepAliveResponse& r) {
    if (r.endpoint == direct_address) ++direct;
  };
  auto session = Session::Create(client->get(), o);
  ASSERT_TRUE(session.ok()) << session.status();
  ASSERT_FALSE((*session)->WaitDone(absl::Seconds(1)));
  ASSERT_TRUE(path->Set(FaultProxy::Mode::kHold).ok());
  // Three TTLs: without the move the lease would be lost after one.
  EXPECT_FALSE((*session)->WaitDone(absl::Seconds(9))) << (*session)->status();
  EXPECT_GE(direct.load(), 3);
  auto info = Lease(client_.get()).TimeToLive((*session)->lease_id());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_GT(info->ttl_seconds, 0);
  ASSERT_TRUE(path->Set(FaultProxy::Mode::kPass).ok());
  EXPECT_TRUE((*session)->Close().ok());
}

TEST_F(LeaseTest, UnreachableEtcdLosesTheSessionAfterTtlNotBefore) {
  std::atomic<bool> lost{false};
  SessionOptions o;
  o.ttl_seconds = 2;
  o.on_lost = [&](const absl::Status&) { lost = true; };
  auto session = Session::Create(client_.get(), o);
  ASSERT_TRUE(session.ok()) << session.status();
  Session& s = **session;
  ASSERT_FALSE(s.WaitDone(absl::Seconds(1)));
  ASSERT_TRUE(etcd_->Kill().ok());
  const absl::Duration killed_at = Clock::Real()->Monotonic();
  ASSERT_TRUE(s.WaitDone(absl::Seconds(6)));
  const absl::Duration done_at = Clock::Real()->Monotonic();
  EXPECT_TRUE(lost.load());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDeadlineExceeded)
      << s.status();
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("no keepalive answered"));
  // Not before the lease could have expired, and not much after.
  EXPECT_GE(done_at, s.known_alive_until());
  EXPECT_LE(done_at, killed_at + absl::Seconds(2) + absl::Milliseconds(500));
  ASSERT_TRUE(etcd_->Restart().ok());
}

TEST_F(LeaseTest, KeepAliveStreamReconnectsAfterEtcdRestart) {
  SessionOptions o;
  o.ttl_seconds = 10;
  std::atomic<int64_t> renewed_after_restart{0};
  std::atomic<bool> restarted{false};
  o.on_renewed = [&](const KeepAliveResponse&) {
    if (restarted.load()) ++renewed_after_restart;
  };
  auto session = Session::Create(client_.get(), o);
  ASSERT_TRUE(session.ok()) << session.status();
  ASSERT_TRUE(etcd_->Stop().ok());
  ASSERT_TRUE(etcd_->Restart().ok());
  restarted = true;
  ASSERT_TRUE(testbed::WaitUntil(
      [&] { return renewed_after_restart.load() >= 2; }, absl::Seconds(15)));
  EXPECT_FALSE((*session)->Done()) << (*session)->status();
  EXPECT_TRUE((*session)->Close().ok());
}

}  // namespace
}  // namespace mcl::etcd
