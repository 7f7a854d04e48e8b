// The executor against scripted writers on a FakeClock: the exact etcd Txn of
// each action (create-if-absent, put-if-owned by mod_revision and lease,
// delete-if-owned by mod_revision), each guarded by the replica epoch; what a
// success, a lost race, a failed epoch guard and an unreachable etcd teach the
// key cache, the session and the epoch; the fence checked before any write;
// status and finalizer writes with their preconditions and memory updates;
// and the batched release of a session's keys.
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
using Outcome = Executor::Outcome;

constexpr int64_t kSession = 0x7a11;
constexpr int64_t kEpoch = 10;
constexpr char kLock[] = "default/lock";
constexpr char kKey[] = "/mcl/locks/default/lock";
constexpr char kEpochKey[] = "/mcl/locks/_epoch/c0";

etcd::KeyValue Kv(const std::string& key, int64_t mod_revision,
                  int64_t lease = 0, const std::string& value = "") {
  etcd::KeyValue kv;
  kv.key = key;
  kv.mod_revision = mod_revision;
  kv.lease = lease;
  kv.value = value;
  return kv;
}

etcd::OpResult Read(std::vector<etcd::KeyValue> kvs) {
  etcd::OpResult r;
  r.kind = etcd::OpResult::Kind::kRange;
  r.range.kvs = std::move(kvs);
  return r;
}

etcd::TxnResult Won(int64_t revision) {
  etcd::TxnResult r;
  r.succeeded = true;
  r.revision = revision;
  return r;
}

// A failed guarded txn: Else read the key, then the epoch key.
etcd::TxnResult Lost(int64_t revision, std::vector<etcd::KeyValue> key,
                     int64_t epoch_now = kEpoch) {
  etcd::TxnResult r;
  r.revision = revision;
  r.results.push_back(Read(std::move(key)));
  r.results.push_back(Read({Kv(kEpochKey, epoch_now)}));
  return r;
}

class ExecutorTest : public ::testing::Test {
 protected:
  ExecutorTest()
      : keys_(nullptr, &clock_, "/mcl/locks", absl::Seconds(1), &metrics_, {}),
        epoch_(&txns_, kEpochKey, "r1", [this] { deposed_++; }),
        reconciler_(ReconcilerConfig{"c0", "ns/hb"}, &clock_),
        executor_(&locks_, &txns_, &keys_, &epoch_, &reconciler_, &clock_,
                  &metrics_, Hooks()) {
    cr_.metadata.namespace_ = "default";
    cr_.metadata.name = "lock";
    cr_.metadata.resource_version = "100";
    cr_.metadata.finalizers = {"other/finalizer"};
    session_.id = kSession;
    session_.confirmed_sent_at = absl::Seconds(1234);
    // The epoch: nothing there yet, our conditional write lands at kEpoch.
    etcd::TxnResult empty;
    empty.succeeded = true;
    empty.results.push_back(Read({}));
    txns_.Script(empty);
    txns_.Script(Won(kEpoch));
    EXPECT_EQ(epoch_.Claim().value_or(0), kEpoch);
    claim_txns_ = txns_.txns().size();
  }
  Executor::Hooks Hooks() {
    Executor::Hooks h;
    h.may_act = [this] { return may_act_; };
    h.on_etcd_result = [this](bool ok) { etcd_results_.push_back(ok); };
    h.confirm_soon = [this] { confirms_++; };
    h.on_publish_attempt = [this](absl::Duration s) { attempts_.push_back(s); };
    return h;
  }
  Outcome Run(const Action& a) {
    return executor_.Execute(kLock, &cr_, a, session_, slot_);
  }
  // The lock txns sent (after the epoch claim).
  std::vector<etcdserverpb::TxnRequest> Sent() {
    auto all = txns_.txns();
    return {all.begin() + static_cast<long>(claim_txns_), all.end()};
  }
  // The last compare and Else read of a guarded txn are the epoch's.
  static void ExpectGuarded(const etcdserverpb::TxnRequest& t,
                            int64_t epoch = kEpoch) {
    ASSERT_GE(t.compare_size(), 1);
    const auto& g = t.compare(t.compare_size() - 1);
    EXPECT_EQ(g.key(), kEpochKey);
    EXPECT_EQ(g.target(), etcdserverpb::Compare::MOD);
    EXPECT_EQ(g.mod_revision(), epoch);
    ASSERT_GE(t.failure_size(), 1);
    EXPECT_EQ(t.failure(t.failure_size() - 1).request_range().key(), kEpochKey);
  }

  FakeClock clock_;
  Metrics metrics_;
  FakeLockWriter locks_;
  FakeKeyWriter txns_;
  KeyCache keys_;
  int deposed_ = 0;
  ReplicaEpoch epoch_;
  LockReconciler reconciler_;
  Executor executor_;
  size_t claim_txns_ = 0;
  kube::MultiClusterLease cr_;
  SessionView session_;
  LockSlot slot_;
  bool may_act_ = true;
  std::vector<bool> etcd_results_;
  std::vector<absl::Duration> attempts_;
  int confirms_ = 0;
};

TEST_F(ExecutorTest, TheEpochIsClaimedConditionallyOnWhatWasRead) {
  const auto all = txns_.txns();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].success(0).request_range().key(), kEpochKey);
  ASSERT_EQ(all[1].compare_size(), 1);
  EXPECT_EQ(all[1].compare(0).target(), etcdserverpb::Compare::CREATE);
  EXPECT_EQ(all[1].success(0).request_put().value(), R"({"identity":"r1"})");
  EXPECT_TRUE(epoch_.Held());
}

TEST_F(ExecutorTest, CreateIsCreateIfAbsentOnTheSessionAndAWinIsConfirmed) {
  txns_.Script(Won(42));
  ASSERT_EQ(Run(TxnCreate{"v"}), Outcome::kDone);
  const auto txns = Sent();
  ASSERT_EQ(txns.size(), 1u);
  const etcdserverpb::TxnRequest& t = txns[0];
  ASSERT_EQ(t.compare_size(), 2);
  EXPECT_EQ(t.compare(0).key(), kKey);
  EXPECT_EQ(t.compare(0).target(), etcdserverpb::Compare::CREATE);
  EXPECT_EQ(t.compare(0).create_revision(), 0);
  ExpectGuarded(t);
  ASSERT_EQ(t.success_size(), 1);
  EXPECT_EQ(t.success(0).request_put().lease(), kSession);
  EXPECT_EQ(t.success(0).request_put().value(), "v");
  EXPECT_EQ(t.failure(0).request_range().key(), kKey);
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
  txns_.Script(Lost(41, {Kv(kKey, 40, 0x99, "theirs")}));
  EXPECT_EQ(Run(TxnCreate{"v"}), Outcome::kDone);
  const KeyView v = keys_.View(kLock);
  EXPECT_TRUE(v.present);
  EXPECT_EQ(v.mod_revision, 40);
  EXPECT_EQ(v.lease, 0x99);
  EXPECT_EQ(v.raw, "theirs");
  EXPECT_EQ(confirms_, 0);
  EXPECT_EQ(metrics_.grants.load(), 0);
  EXPECT_EQ(deposed_, 0) << "the guard held; only the key's compare failed";
}

// PLAN decision 5: another replica claimed a newer epoch; our txn changed
// nothing, and we learn that we are deposed.
TEST_F(ExecutorTest, AFailedEpochGuardDeposesAndWritesNothingMore) {
  txns_.Script(Lost(60, {Kv(kKey, 42, kSession, "ours")}, /*epoch_now=*/55));
  EXPECT_EQ(Run(TxnDelete{42}), Outcome::kNotActing);
  EXPECT_EQ(deposed_, 1);
  EXPECT_TRUE(epoch_.deposed());
  EXPECT_FALSE(epoch_.Held());
  EXPECT_TRUE(keys_.View(kLock).present) << "the key is still there";
}

TEST_F(ExecutorTest, NothingIsWrittenPastTheFence) {
  may_act_ = false;
  EXPECT_EQ(Run(TxnCreate{"v"}), Outcome::kNotActing);
  EXPECT_EQ(Run(AddFinalizer{}), Outcome::kNotActing);
  WriteStatus w;
  w.precondition_rv = "100";
  EXPECT_EQ(Run(w), Outcome::kNotActing);
  EXPECT_TRUE(Sent().empty());
  EXPECT_TRUE(locks_.updates().empty());
  EXPECT_TRUE(locks_.status_updates().empty());
}

TEST_F(ExecutorTest, RepointAndDeleteAreGuardedByTheTokenTheyWereComputedFor) {
  txns_.Script(Won(57));
  ASSERT_EQ(Run(TxnRepoint{42, "v2"}), Outcome::kDone);
  txns_.Script(Won(60));
  ASSERT_EQ(Run(TxnDelete{57}), Outcome::kDone);
  const auto t = Sent();
  ASSERT_EQ(t.size(), 2u);
  // Re-point: mod_revision == 42 and still our session's key.
  ASSERT_EQ(t[0].compare_size(), 3);
  EXPECT_EQ(t[0].compare(0).target(), etcdserverpb::Compare::MOD);
  EXPECT_EQ(t[0].compare(0).mod_revision(), 42);
  EXPECT_EQ(t[0].compare(1).target(), etcdserverpb::Compare::LEASE);
  EXPECT_EQ(t[0].compare(1).lease(), kSession);
  ExpectGuarded(t[0]);
  EXPECT_EQ(t[0].success(0).request_put().lease(), kSession);
  // Delete: mod_revision == 57.
  ASSERT_EQ(t[1].compare_size(), 2);
  EXPECT_EQ(t[1].compare(0).target(), etcdserverpb::Compare::MOD);
  EXPECT_EQ(t[1].compare(0).mod_revision(), 57);
  ExpectGuarded(t[1]);
  EXPECT_TRUE(t[1].success(0).has_request_delete_range());
  EXPECT_FALSE(keys_.View(kLock).present);
  EXPECT_EQ(confirms_, 1) << "only the re-point is a grant";
  EXPECT_EQ(metrics_.releases.load(), 1);
}

TEST_F(ExecutorTest, AnUnreachableEtcdIsAFailureAndReportedToTheSession) {
  txns_.Script(absl::UnavailableError("connection refused"));
  EXPECT_EQ(Run(TxnCreate{"v"}), Outcome::kFailed);
  EXPECT_EQ(etcd_results_, std::vector<bool>{false});
  EXPECT_EQ(metrics_.etcd_errors.load(), 1);
  // A refused request is no sign of unreachability.
  txns_.Script(absl::PermissionDeniedError("no"));
  EXPECT_EQ(Run(TxnCreate{"v"}), Outcome::kFailed);
  EXPECT_EQ(etcd_results_, std::vector<bool>{false});
}

TEST_F(ExecutorTest, StatusWritesArePreconditionedAndAppliedRevocationsKept) {
  WriteStatus w;
  w.status.leader = "";
  w.precondition_rv = "99";
  w.purpose = WriteStatus::Purpose::kRevoke;
  w.revocation = Revocation{Grantee{Holder{"pod-a", ""}, 42, 7}, 8, false};
  ASSERT_EQ(Run(w), Outcome::kDone);
  ASSERT_EQ(locks_.status_updates().size(), 1u);
  EXPECT_EQ(locks_.status_updates()[0].metadata.resource_version, "99");
  ASSERT_TRUE(slot_.written.has_value());
  EXPECT_EQ(slot_.written->metadata.resource_version, "100");
  ASSERT_TRUE(slot_.memory.revoke.has_value());
  EXPECT_EQ(slot_.memory.revoke->grantee.holder.identity, "pod-a");
  EXPECT_EQ(slot_.memory.revoke->generation, 8);
  EXPECT_TRUE(attempts_.empty()) << "a revocation confirms nothing";

  // A conflict is a failure and teaches nothing.
  slot_ = LockSlot();
  locks_.Script(
      kube::WithKubeDetails(absl::AbortedError("stale"), "Conflict", 409));
  EXPECT_EQ(Run(w), Outcome::kFailed);
  EXPECT_FALSE(slot_.memory.revoke.has_value());
  EXPECT_FALSE(slot_.written.has_value());
  EXPECT_EQ(metrics_.status_conflicts.load(), 1);
}

// A grant's status carries a confirmation: trying to write it counts as an
// attempt to publish it (design.md §Stand-down), even when it fails.
TEST_F(ExecutorTest, AGrantStatusIsAnAttemptToPublishItsConfirmation) {
  WriteStatus w;
  w.status.leader = "pod-a";
  w.status.session = SessionHex(kSession);
  w.status.confirmed_resource_version = "99";
  w.precondition_rv = "100";
  w.purpose = WriteStatus::Purpose::kGrant;
  locks_.Script(absl::UnavailableError("apiserver down"));
  EXPECT_EQ(Run(w), Outcome::kFailed);
  EXPECT_EQ(attempts_, std::vector<absl::Duration>{absl::Seconds(1234)});
}

TEST_F(ExecutorTest, FinalizerIsAddedOnceAndRemovedAlone) {
  ASSERT_EQ(Run(AddFinalizer{}), Outcome::kDone);
  ASSERT_EQ(locks_.updates().size(), 1u);
  EXPECT_EQ(
      locks_.updates()[0].metadata.finalizers,
      (std::vector<std::string>{"other/finalizer", contract::kFinalizer}));
  EXPECT_EQ(locks_.updates()[0].metadata.resource_version, "100");
  cr_ = *slot_.written;
  ASSERT_EQ(Run(AddFinalizer{}), Outcome::kDone);
  EXPECT_EQ(locks_.updates()[1].metadata.finalizers.size(), 2u);
  cr_ = *slot_.written;
  ASSERT_EQ(Run(RemoveFinalizer{}), Outcome::kDone);
  EXPECT_EQ(locks_.updates()[2].metadata.finalizers,
            std::vector<std::string>{"other/finalizer"});
  // Gone meanwhile: nothing left to do.
  locks_.Script(absl::NotFoundError("gone"));
  EXPECT_EQ(Run(RemoveFinalizer{}), Outcome::kDone);
}

// Standing down or shutting down past the release deadline: the session is
// first recorded as abandoned in the epoch key (never to be adopted, so no
// stale status naming it is ever confirmed again), then every key of the
// session goes, each under its own compare, in guarded requests of 64.
TEST_F(ExecutorTest, ReleaseHeldDeletesTheSessionsKeysInGuardedBatches) {
  for (int i = 0; i < 70; ++i) {
    keys_.Apply("ns/l" + std::to_string(i),
                KeyEntry{true, 100 + i, kSession, "v", 100 + i});
  }
  keys_.Apply("ns/other", KeyEntry{true, 99, 0x99, "v", 99});
  txns_.Script(Won(300));  // the abandon record: our epoch moves to 300
  for (int batch : {64, 6}) {
    etcd::TxnResult r = Won(500);
    for (int i = 0; i < batch; ++i) {
      etcd::OpResult n;
      n.kind = etcd::OpResult::Kind::kTxn;
      n.txn_succeeded = true;
      r.results.push_back(n);
    }
    txns_.Script(r);
  }
  ASSERT_TRUE(executor_.ReleaseHeld(kSession).ok());
  const auto t = Sent();
  ASSERT_EQ(t.size(), 3u);
  ExpectGuarded(t[0]);
  EXPECT_EQ(t[0].success(0).request_put().key(), kEpochKey);
  EXPECT_NE(t[0].success(0).request_put().value().find(SessionHex(kSession)),
            std::string::npos);
  EXPECT_FALSE(epoch_.AdoptAllowed(kSession));
  EXPECT_EQ(epoch_.epoch(), 300);
  EXPECT_EQ(t[1].success_size(), 64);
  EXPECT_EQ(t[2].success_size(), 6);
  ExpectGuarded(t[1], 300);
  ExpectGuarded(t[2], 300);
  const auto& nested = t[1].success(0).request_txn();
  EXPECT_EQ(nested.compare(0).target(), etcdserverpb::Compare::MOD);
  EXPECT_TRUE(nested.success(0).has_request_delete_range());
  EXPECT_EQ(keys_.KeysHeldBy(kSession), 0);
  EXPECT_TRUE(keys_.View("ns/other").present) << "not ours";
  // Deposed: nothing of ours may be touched any more.
  keys_.Apply("ns/again", KeyEntry{true, 600, kSession, "v", 600});
  txns_.Script(Lost(700, {}, /*epoch_now=*/650));
  EXPECT_EQ(executor_.ReleaseHeld(kSession).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(deposed_, 1);
}

}  // namespace
}  // namespace mcl::controller
