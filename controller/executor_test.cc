// The executor against scripted writers on a FakeClock: the exact etcd Txn of
// each action (create-if-absent, put-if-owned by mod_revision and lease,
// delete-if-owned by mod_revision), what a success, a lost race and an
// unreachable etcd teach the key cache and the session, and the status and
// finalizer writes with their preconditions and memory updates.
#include "controller/executor.h"

#include <vector>

#include "common/contract.h"
#include "common/kube/errors.h"
#include "controller/testing/fakes.h"
#include "gtest/gtest.h"

namespace mcl::controller {
namespace {

using testing::FakeKeyWriter;
using testing::FakeLockWriter;

constexpr int64_t kSession = 0x7a11;
constexpr char kLock[] = "default/lock";
constexpr char kKey[] = "/mcl/locks/default/lock";

etcd::TxnResult Won(int64_t revision) {
  etcd::TxnResult r;
  r.succeeded = true;
  r.revision = revision;
  return r;
}

etcd::TxnResult Lost(int64_t revision, const etcd::KeyValue& holder) {
  etcd::TxnResult r;
  r.succeeded = false;
  r.revision = revision;
  etcd::OpResult get;
  get.kind = etcd::OpResult::Kind::kRange;
  get.range.kvs.push_back(holder);
  r.results.push_back(get);
  return r;
}

class ExecutorTest : public ::testing::Test {
 protected:
  ExecutorTest()
      : keys_(nullptr, &clock_, "/mcl/locks", &metrics_, {}),
        reconciler_(ReconcilerConfig{"c0", "ns/hb"}, &clock_),
        executor_(&locks_, &txns_, &keys_, &reconciler_, &clock_, &metrics_,
                  Hooks()) {
    cr_.metadata.namespace_ = "default";
    cr_.metadata.name = "lock";
    cr_.metadata.resource_version = "100";
    cr_.metadata.finalizers = {"other/finalizer"};
  }
  Executor::Hooks Hooks() {
    Executor::Hooks h;
    h.on_etcd_result = [this](bool ok) { etcd_results_.push_back(ok); };
    h.confirm_soon = [this] { confirms_++; };
    return h;
  }
  bool Run(const Action& a) {
    return executor_.Execute(kLock, &cr_, a, kSession, slot_);
  }

  FakeClock clock_;
  Metrics metrics_;
  FakeLockWriter locks_;
  FakeKeyWriter txns_;
  KeyCache keys_;
  LockReconciler reconciler_;
  Executor executor_;
  kube::MultiClusterLease cr_;
  LockSlot slot_;
  std::vector<bool> etcd_results_;
  int confirms_ = 0;
};

TEST_F(ExecutorTest, CreateIsCreateIfAbsentOnTheSessionAndAWinIsConfirmed) {
  txns_.Script(Won(42));
  ASSERT_TRUE(Run(TxnCreate{"v"}));
  const std::vector<etcdserverpb::TxnRequest> txns = txns_.txns();
  ASSERT_EQ(txns.size(), 1u);
  const etcdserverpb::TxnRequest& t = txns[0];
  ASSERT_EQ(t.compare_size(), 1);
  EXPECT_EQ(t.compare(0).key(), kKey);
  EXPECT_EQ(t.compare(0).target(), etcdserverpb::Compare::CREATE);
  EXPECT_EQ(t.compare(0).create_revision(), 0);
  ASSERT_EQ(t.success_size(), 1);
  EXPECT_EQ(t.success(0).request_put().lease(), kSession);
  EXPECT_EQ(t.success(0).request_put().value(), "v");
  ASSERT_EQ(t.failure_size(), 1);
  EXPECT_TRUE(t.failure(0).has_request_range());
  // The win is the newest news about the key; a confirmation goes out now.
  const KeyView v = keys_.View(kLock);
  EXPECT_TRUE(v.present);
  EXPECT_EQ(v.mod_revision, 42);
  EXPECT_EQ(v.lease, kSession);
  EXPECT_EQ(v.raw, "v");
  EXPECT_EQ(confirms_, 1);
  EXPECT_EQ(etcd_results_, std::vector<bool>{true});
  EXPECT_EQ(metrics_.contention_attempts.load(), 1);
  EXPECT_EQ(metrics_.grants.load(), 1);
}

TEST_F(ExecutorTest, ALostRaceTeachesTheHolderAndIsNoFailure) {
  etcd::KeyValue holder;
  holder.key = kKey;
  holder.value = "theirs";
  holder.mod_revision = 40;
  holder.lease = 0x99;
  txns_.Script(Lost(41, holder));
  EXPECT_TRUE(Run(TxnCreate{"v"}));
  const KeyView v = keys_.View(kLock);
  EXPECT_TRUE(v.present);
  EXPECT_EQ(v.mod_revision, 40);
  EXPECT_EQ(v.lease, 0x99);
  EXPECT_EQ(v.raw, "theirs");
  EXPECT_EQ(confirms_, 0);
  EXPECT_EQ(metrics_.grants.load(), 0);
}

TEST_F(ExecutorTest, RepointAndDeleteAreGuardedByTheTokenTheyWereComputedFor) {
  txns_.Script(Won(57));
  ASSERT_TRUE(Run(TxnRepoint{42, "v2"}));
  txns_.Script(Won(60));
  ASSERT_TRUE(Run(TxnDelete{57}));
  const auto t = txns_.txns();
  ASSERT_EQ(t.size(), 2u);
  // Re-point: mod_revision == 42 and still our session's key.
  ASSERT_EQ(t[0].compare_size(), 2);
  EXPECT_EQ(t[0].compare(0).target(), etcdserverpb::Compare::MOD);
  EXPECT_EQ(t[0].compare(0).mod_revision(), 42);
  EXPECT_EQ(t[0].compare(1).target(), etcdserverpb::Compare::LEASE);
  EXPECT_EQ(t[0].compare(1).lease(), kSession);
  EXPECT_EQ(t[0].success(0).request_put().lease(), kSession);
  // Delete: mod_revision == 57.
  ASSERT_EQ(t[1].compare_size(), 1);
  EXPECT_EQ(t[1].compare(0).target(), etcdserverpb::Compare::MOD);
  EXPECT_EQ(t[1].compare(0).mod_revision(), 57);
  EXPECT_TRUE(t[1].success(0).has_request_delete_range());
  EXPECT_FALSE(keys_.View(kLock).present);
  EXPECT_EQ(confirms_, 1) << "only the re-point is a grant";
  EXPECT_EQ(metrics_.releases.load(), 1);
}

TEST_F(ExecutorTest, AnUnreachableEtcdIsAFailureAndReportedToTheSession) {
  txns_.Script(absl::UnavailableError("connection refused"));
  EXPECT_FALSE(Run(TxnCreate{"v"}));
  EXPECT_EQ(etcd_results_, std::vector<bool>{false});
  EXPECT_EQ(metrics_.etcd_errors.load(), 1);
  // A refused request is no sign of unreachability.
  txns_.Script(absl::PermissionDeniedError("no"));
  EXPECT_FALSE(Run(TxnCreate{"v"}));
  EXPECT_EQ(etcd_results_, std::vector<bool>{false});
}

TEST_F(ExecutorTest, StatusWritesArePreconditionedAndAppliedRevocationsKept) {
  WriteStatus w;
  w.status.leader = "";
  w.precondition_rv = "99";
  w.purpose = WriteStatus::Purpose::kRevoke;
  w.revocation = Revocation{Grantee{"pod-a", 42, 7}, 8, false};
  ASSERT_TRUE(Run(w));
  ASSERT_EQ(locks_.status_updates().size(), 1u);
  EXPECT_EQ(locks_.status_updates()[0].metadata.resource_version, "99");
  ASSERT_TRUE(slot_.written.has_value());
  EXPECT_EQ(slot_.written->metadata.resource_version, "100");
  ASSERT_TRUE(slot_.memory.revoke.has_value());
  EXPECT_EQ(slot_.memory.revoke->grantee.holder, "pod-a");
  EXPECT_EQ(slot_.memory.revoke->generation, 8);

  // A conflict is a failure and teaches nothing.
  slot_ = LockSlot();
  locks_.Script(
      kube::WithKubeDetails(absl::AbortedError("stale"), "Conflict", 409));
  EXPECT_FALSE(Run(w));
  EXPECT_FALSE(slot_.memory.revoke.has_value());
  EXPECT_FALSE(slot_.written.has_value());
  EXPECT_EQ(metrics_.status_conflicts.load(), 1);
}

TEST_F(ExecutorTest, FinalizerIsAddedOnceAndRemovedAlone) {
  ASSERT_TRUE(Run(AddFinalizer{}));
  ASSERT_EQ(locks_.updates().size(), 1u);
  EXPECT_EQ(
      locks_.updates()[0].metadata.finalizers,
      (std::vector<std::string>{"other/finalizer", contract::kFinalizer}));
  EXPECT_EQ(locks_.updates()[0].metadata.resource_version, "100");
  cr_ = *slot_.written;
  ASSERT_TRUE(Run(AddFinalizer{}));
  EXPECT_EQ(locks_.updates()[1].metadata.finalizers.size(), 2u);
  cr_ = *slot_.written;
  ASSERT_TRUE(Run(RemoveFinalizer{}));
  EXPECT_EQ(locks_.updates()[2].metadata.finalizers,
            std::vector<std::string>{"other/finalizer"});
  // Gone meanwhile: nothing left to do.
  locks_.Script(absl::NotFoundError("gone"));
  EXPECT_TRUE(Run(RemoveFinalizer{}));
}

}  // namespace
}  // namespace mcl::controller
