// Every branch of the per-lock reconcile (docs/design.md §"Controller
// reconcile", §Ack), driven with a fake clock: grant, follow, foreign, garbage,
// release by resign / ack / timeout, local holder change, deletion, session
// loss, unreachable etcd, shutdown, restart.
#include "controller/lock_reconciler.h"

#include <algorithm>

#include "common/contract.h"
#include "gtest/gtest.h"

namespace mcl::controller {
namespace {

using Purpose = WriteStatus::Purpose;

constexpr int64_t kSession = 0x7a11;
constexpr char kCluster[] = "cluster-a";

std::string Kind(const Plan& p) { return ActionName(p.action); }
const WriteStatus& W(const Plan& p) {
  static const WriteStatus kNone;
  const auto* w = std::get_if<WriteStatus>(&p.action);
  EXPECT_NE(w, nullptr) << "not a status write: " << Kind(p);
  return w != nullptr ? *w : kNone;
}
std::string Value(const Plan& p) {
  if (const auto* a = std::get_if<TxnCreate>(&p.action)) return a->value;
  if (const auto* a = std::get_if<TxnRepoint>(&p.action)) return a->value;
  ADD_FAILURE() << "no key value in " << Kind(p);
  return "";
}
int64_t Expected(const Plan& p) {
  if (const auto* a = std::get_if<TxnRepoint>(&p.action)) {
    return a->expected_mod_revision;
  }
  if (const auto* a = std::get_if<TxnDelete>(&p.action)) {
    return a->expected_mod_revision;
  }
  ADD_FAILURE() << "no expected mod_revision in " << Kind(p);
  return 0;
}

class ReconcilerTest : public ::testing::Test {
 protected:
  ReconcilerTest()
      : r_(ReconcilerConfig{kCluster, "mcl-system/mcl-heartbeat-cluster-a"},
           &clock_) {
    cr_.metadata.namespace_ = "default";
    cr_.metadata.name = "lock";
    cr_.metadata.uid = "uid-1";
    cr_.metadata.resource_version = "100";
    cr_.metadata.generation = 1;
    SetFinalizer(true);
    cr_.spec.holder_identity = "pod-a";
    cr_.spec.lease_duration_seconds = 2;
    cr_.spec.renew_time = "2026-11-23T01:00:00.000000Z";
    session_.id = kSession;
    session_.alive = true;
    session_.reachable = true;
    session_.ttl = absl::Seconds(2);
    session_.confirmed_rv = "100";
    key_.known = true;
  }

  Plan Run() { return r_.Reconcile(&cr_, key_, session_, mem_); }

  void SetFinalizer(bool present) {
    auto& f = cr_.metadata.finalizers;
    f.erase(std::remove(f.begin(), f.end(), contract::kFinalizer), f.end());
    if (present) f.push_back(contract::kFinalizer);
  }
  void Delete() { cr_.metadata.deletion_timestamp = "2026-11-23T01:00:00Z"; }
  // A spec write (renewal) by `holder` (nullopt = resign), as the informer
  // would deliver it.
  void SpecWrite(std::optional<std::string> holder) {
    cr_.metadata.generation++;
    cr_.spec.holder_identity = std::move(holder);
    BumpRv();
  }
  void BumpRv() {
    cr_.metadata.resource_version =
        std::to_string(std::stoll(cr_.metadata.resource_version) + 1);
  }
  // Applies a status write the way the apiserver would (and reports the
  // outcome).
  void Apply(const Plan& p) {
    ASSERT_EQ(Kind(p), "write-status");
    EXPECT_EQ(W(p).precondition_rv, cr_.metadata.resource_version);
    cr_.status = W(p).status;
    BumpRv();
    r_.OnStatusResult(W(p), WriteOutcome::kApplied, mem_);
  }
  void KeyOurs(const std::string& holder, int64_t rev,
               const std::string& instance = "") {
    key_.present = true;
    key_.mod_revision = rev;
    key_.lease = kSession;
    key_.raw = contract::EncodeKeyValue(
        {kCluster, holder, SessionHex(kSession), "t0", instance});
  }
  // A spec write by `holder` as candidacy `instance`.
  void SpecWriteAs(const std::string& holder, const std::string& instance) {
    cr_.spec.holder_instance = instance;
    SpecWrite(holder);
  }
  void KeyForeign(const std::string& cluster, const std::string& holder,
                  int64_t rev) {
    key_.present = true;
    key_.mod_revision = rev;
    key_.lease = 0x99;
    key_.raw = contract::EncodeKeyValue({cluster, holder, "99", "t1", ""});
  }
  void KeyAbsent() { key_ = KeyView{true, false, 0, 0, ""}; }
  // Brings the lock to "granted to pod-a with token `rev`, status written".
  void Granted(int64_t rev) {
    KeyOurs("pod-a", rev);
    Plan p = Run();
    Apply(p);
    ASSERT_EQ(cr_.status.leader, "pod-a");
  }
  absl::Duration AckTimeout() {
    return session_.ttl * (1 + contract::kRho) + contract::kMargin;
  }
  const kube::Condition* Cond(const Plan& p, const char* type) {
    return FindCondition(W(p).status, type);
  }

  FakeClock clock_;
  LockReconciler r_;
  kube::MultiClusterLease cr_;
  KeyView key_;
  SessionView session_;
  LockMemory mem_;
};

TEST_F(ReconcilerTest,
       FreeLockWithLiveCandidateAddsFinalizerThenCreatesTheKey) {
  SetFinalizer(false);
  Plan p = Run();
  EXPECT_EQ(Kind(p), "add-finalizer");
  SetFinalizer(true);
  p = Run();
  ASSERT_EQ(Kind(p), "txn-create");
  auto v = contract::ParseKeyValue(Value(p));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->cluster, kCluster);
  EXPECT_EQ(v->holder, "pod-a");
  EXPECT_EQ(v->session, SessionHex(kSession));
  EXPECT_FALSE(v->acquire_time.empty());
  // Re-run until stale: a live candidate is re-checked when it would go stale.
  ASSERT_TRUE(p.requeue_at.has_value());
  EXPECT_EQ(*p.requeue_at, clock_.Monotonic() + absl::Seconds(2));
}

TEST_F(ReconcilerTest, GrantWritesTheWholeStatusOnceThenNothing) {
  KeyOurs("pod-a", 42);
  Plan p = Run();
  ASSERT_EQ(Kind(p), "write-status");
  EXPECT_EQ(W(p).purpose, Purpose::kGrant);
  const LockStatus& s = W(p).status;
  EXPECT_EQ(s.leader, "pod-a");
  EXPECT_EQ(s.leader_cluster, kCluster);
  EXPECT_EQ(s.fencing_token, 42);
  EXPECT_EQ(s.session, SessionHex(kSession));
  EXPECT_EQ(s.heartbeat, "mcl-system/mcl-heartbeat-cluster-a");
  EXPECT_EQ(s.session_ttl_milliseconds, 2000);
  EXPECT_EQ(s.confirmed_resource_version, "100");
  EXPECT_EQ(s.last_confirmed_renew_time,
            cr_.spec.renew_time);  // rv 100 <= c 100
  EXPECT_EQ(s.transitions, 1);
  EXPECT_EQ(s.acquire_time, "t0");
  EXPECT_EQ(FindCondition(s, kGlobalLockHeld)->status, "True");
  EXPECT_EQ(FindCondition(s, kCandidateLive)->status, "True");
  EXPECT_EQ(FindCondition(s, kBackendReachable)->status, "True");
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0].reason, "Granted");
  ASSERT_TRUE(mem_.announced.has_value());
  EXPECT_EQ(mem_.announced->token, 42);
  Apply(p);
  // Renewals change nothing a reader acts on: no status write per renewal.
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Milliseconds(500));
    SpecWrite("pod-a");
    session_.confirmed_rv = cr_.metadata.resource_version;
    p = Run();
    EXPECT_EQ(Kind(p), "none") << i;
  }
}

TEST_F(ReconcilerTest, RenewalNotYetConfirmedKeepsTheOlderConfirmedRenewTime) {
  cr_.status.last_confirmed_renew_time = "older";
  session_.confirmed_rv = "99";
  KeyOurs("pod-a", 42);
  Plan p = Run();
  EXPECT_EQ(W(p).status.confirmed_resource_version, "99");
  EXPECT_EQ(W(p).status.last_confirmed_renew_time, "older");
}

TEST_F(ReconcilerTest, ForeignHolderIsShownWithItsTokenAndTheCandidateFollows) {
  KeyForeign("cluster-b", "pod-z", 77);
  Plan p = Run();
  ASSERT_EQ(Kind(p), "write-status");
  EXPECT_EQ(W(p).status.leader, "pod-z");
  EXPECT_EQ(W(p).status.leader_cluster, "cluster-b");
  EXPECT_EQ(W(p).status.fencing_token, 77);
  EXPECT_EQ(W(p).status.session, "");  // never confirmable by our heartbeat
  EXPECT_EQ(Cond(p, kGlobalLockHeld)->reason, "HeldByOtherCluster");
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0].reason, "LeaderElsewhere");
  Apply(p);
  EXPECT_EQ(Kind(Run()), "none");
  // The holder changes over there: new token, transitions counted.
  KeyForeign("cluster-b", "pod-y", 80);
  p = Run();
  EXPECT_EQ(W(p).status.fencing_token, 80);
  EXPECT_EQ(W(p).status.transitions, 2);
}

TEST_F(ReconcilerTest, TransitionsCountEachNewTokenOnceEvenAfterAConflict) {
  KeyForeign("cluster-b", "pod-z", 77);
  Plan p = Run();
  EXPECT_EQ(W(p).status.transitions, 1);
  r_.OnStatusResult(W(p), WriteOutcome::kConflict, mem_);
  SpecWrite("pod-a");
  p = Run();
  EXPECT_EQ(W(p).status.transitions, 1) << "recomputed after the conflict";
  Apply(p);
  EXPECT_EQ(Kind(Run()), "none");
  // The lock is freed and shown again under the same token: no new transition.
  KeyAbsent();
  session_.reachable = false;
  Apply(Run());
  KeyForeign("cluster-b", "pod-z", 77);
  session_.reachable = true;
  p = Run();
  EXPECT_EQ(W(p).status.transitions, 1);
}

TEST_F(ReconcilerTest, KeyOfOurClusterUnderAnotherSessionIsNotOurs) {
  key_.present = true;
  key_.mod_revision = 50;
  key_.lease = 0x1234;  // a previous replica's session, not yet expired
  key_.raw = contract::EncodeKeyValue({kCluster, "pod-a", "1234", "t", ""});
  Plan p = Run();
  ASSERT_EQ(Kind(p), "write-status");
  EXPECT_EQ(W(p).status.leader, "pod-a");
  EXPECT_EQ(W(p).status.session, "");
  EXPECT_EQ(Cond(p, kGlobalLockHeld)->reason, "HeldByOtherSession");
  EXPECT_FALSE(mem_.announced.has_value());
}

TEST_F(ReconcilerTest,
       GarbageKeyValueBlocksTheLockWithAClearConditionAndOneWarning) {
  for (const char* garbage :
       {"not json", "{\"cluster\":5}", "[]", "{}", "\xff\xfe"}) {
    key_ = KeyView{true, true, 9, 0, garbage};
    mem_ = LockMemory();
    cr_.status = LockStatus();
    Plan p = Run();
    ASSERT_EQ(Kind(p), "write-status") << garbage;
    EXPECT_EQ(W(p).status.leader, "");
    EXPECT_EQ(Cond(p, kGlobalLockHeld)->reason, "InvalidKeyValue");
    ASSERT_EQ(p.events.size(), 1u);
    EXPECT_TRUE(p.events[0].warning);
    Apply(p);
    p = Run();
    EXPECT_EQ(Kind(p), "none");
    EXPECT_TRUE(p.events.empty()) << "warned twice";
  }
}

TEST_F(ReconcilerTest, StaleCandidateIsRevokedThenReleasedAtTheTimeoutBound) {
  Granted(42);
  const absl::Duration last_renewal = clock_.Monotonic();
  clock_.Advance(absl::Seconds(2));  // leaseDurationSeconds without a renewal
  Plan p = Run();
  ASSERT_EQ(Kind(p), "write-status");
  EXPECT_EQ(W(p).purpose, Purpose::kRevoke);
  EXPECT_EQ(W(p).status.leader, "");
  EXPECT_EQ(W(p).status.fencing_token, 0);
  EXPECT_EQ(Cond(p, kCandidateLive)->reason, "Stale");
  EXPECT_EQ(Cond(p, kGlobalLockHeld)->reason, "Releasing");
  Apply(p);
  // Not before lastObservedRenewal + TTL·(1+rho) + m.
  p = Run();
  EXPECT_EQ(Kind(p), "none");
  ASSERT_TRUE(p.requeue_at.has_value());
  EXPECT_EQ(*p.requeue_at, last_renewal + AckTimeout());
  clock_.Advance(last_renewal + AckTimeout() - clock_.Monotonic() -
                 absl::Microseconds(1));
  EXPECT_EQ(Kind(Run()), "none");
  clock_.Advance(absl::Microseconds(1));
  p = Run();
  ASSERT_EQ(Kind(p), "txn-delete");
  EXPECT_EQ(Expected(p), 42);
  KeyAbsent();
  p = Run();
  ASSERT_EQ(Kind(p), "write-status");
  EXPECT_EQ(W(p).status.leader, "");
  EXPECT_EQ(Cond(p, kGlobalLockHeld)->reason, "NoLiveCandidate");
}

TEST_F(ReconcilerTest, AckAfterRevocationReleasesAtOnce) {
  Granted(42);
  Delete();  // e.g. kubectl delete: the finalizer keeps the object
  Plan p = Run();
  ASSERT_EQ(W(p).purpose, Purpose::kRevoke);
  Apply(p);
  EXPECT_EQ(Kind(Run()), "none");
  // The grantee writes spec after seeing the revocation: that is its ack.
  clock_.Advance(absl::Milliseconds(10));
  SpecWrite("pod-a");
  p = Run();
  ASSERT_EQ(Kind(p), "txn-delete");
  KeyAbsent();
  p = Run();
  EXPECT_EQ(Kind(p), "remove-finalizer");
}

TEST_F(ReconcilerTest, SpecWriteBeforeTheRevocationIsNoAck) {
  Granted(42);
  Delete();
  Plan p = Run();
  // A renewal lands first: the revoke is computed from an old version and
  // conflicts.
  r_.OnStatusResult(W(p), WriteOutcome::kConflict, mem_);
  SpecWrite("pod-a");
  p = Run();
  ASSERT_EQ(W(p).purpose, Purpose::kRevoke) << "must revoke again, not release";
  Apply(p);
  EXPECT_EQ(Kind(Run()), "none");
}

TEST_F(ReconcilerTest, ResignIsTheAckOnceTheRevocationIsApplied) {
  Granted(42);
  clock_.Advance(absl::Milliseconds(100));
  SpecWrite(std::nullopt);  // Resign: holderIdentity removed
  Plan p = Run();
  ASSERT_EQ(W(p).purpose, Purpose::kRevoke);
  EXPECT_TRUE(W(p).revocation->is_resign_ack);
  EXPECT_EQ(Cond(p, kCandidateLive)->reason, "NoHolder");
  Apply(p);
  p = Run();
  ASSERT_EQ(Kind(p), "txn-delete") << "no timer on the graceful path";
}

TEST_F(ReconcilerTest, ResignSeenAfterAGapWaitsForTheTimeout) {
  Granted(42);
  cr_.metadata.generation +=
      2;  // two spec writes coalesced: someone else may have written in between
  cr_.spec.holder_identity.reset();
  BumpRv();
  Plan p = Run();
  ASSERT_EQ(W(p).purpose, Purpose::kRevoke);
  EXPECT_FALSE(W(p).revocation->is_resign_ack);
  Apply(p);
  p = Run();
  EXPECT_EQ(Kind(p), "none");
  ASSERT_TRUE(p.requeue_at.has_value());
  EXPECT_EQ(*p.requeue_at,
            clock_.Monotonic() + AckTimeout());  // the gap counts as "now"
}

TEST_F(ReconcilerTest, RecampaignBeforeTheRevocationKeepsTheGrant) {
  Granted(42);
  SpecWrite(std::nullopt);
  Plan p = Run();
  ASSERT_EQ(W(p).purpose, Purpose::kRevoke);
  r_.OnStatusResult(W(p), WriteOutcome::kConflict, mem_);
  SpecWrite("pod-a");  // the same holder campaigns again on the old status
  p = Run();
  EXPECT_EQ(Kind(p), "none") << "key, holder and status agree again";
  EXPECT_EQ(mem_.announced->holder.identity, "pod-a");
}

TEST_F(ReconcilerTest, LocalHolderChangeWaitsForTheOldGranteeThenRepoints) {
  Granted(42);
  const absl::Duration a_last = clock_.Monotonic();
  clock_.Advance(absl::Milliseconds(300));
  SpecWrite("pod-b");  // local replica failover (CAS on spec)
  Plan p = Run();
  EXPECT_EQ(Kind(p), "none");
  ASSERT_TRUE(p.requeue_at.has_value());
  EXPECT_EQ(*p.requeue_at, a_last + AckTimeout());
  // pod-b's renewals are no ack of pod-a.
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(absl::Milliseconds(500));
    SpecWrite("pod-b");
    EXPECT_EQ(Kind(Run()), "none");
  }
  clock_.Advance(a_last + AckTimeout() - clock_.Monotonic());
  p = Run();
  ASSERT_EQ(Kind(p), "txn-repoint");
  EXPECT_EQ(Expected(p), 42);
  EXPECT_EQ(contract::ParseKeyValue(Value(p))->holder, "pod-b");
  EXPECT_FALSE(mem_.announced.has_value());
  // The re-point succeeded with a new revision: pod-b is announced with the new
  // token.
  KeyOurs("pod-b", 57);
  p = Run();
  ASSERT_EQ(W(p).purpose, Purpose::kGrant);
  EXPECT_EQ(W(p).status.leader, "pod-b");
  EXPECT_EQ(W(p).status.fencing_token, 57);
  EXPECT_EQ(W(p).status.transitions, 2);
}

TEST_F(ReconcilerTest, HolderChangeBackBeforeTheTimeoutKeepsTheGrant) {
  Granted(42);
  SpecWrite("pod-b");
  EXPECT_EQ(Kind(Run()), "none");
  SpecWrite("pod-a");
  Plan p = Run();
  EXPECT_EQ(Kind(p), "none");
  EXPECT_EQ(mem_.announced->holder.identity, "pod-a");
  EXPECT_EQ(mem_.announced->token, 42);
}

TEST_F(ReconcilerTest, HolderNeverToldIsReleasedWithoutWaiting) {
  KeyOurs("pod-a", 42);
  Plan p = Run();  // grant status...
  r_.OnStatusResult(W(p), WriteOutcome::kConflict, mem_);
  // ...conservatively counts as announced even when it conflicted: the answer
  // can lie.
  ASSERT_TRUE(mem_.announced.has_value());
  // Without any announcement (e.g. the key was created and the candidate
  // vanished):
  mem_.announced.reset();
  cr_.spec.holder_identity.reset();
  cr_.metadata.generation++;
  p = Run();
  EXPECT_EQ(Kind(p), "txn-delete");
}

TEST_F(ReconcilerTest, DeletedCrReleasesAndDropsTheFinalizer) {
  KeyAbsent();
  Delete();
  EXPECT_EQ(Kind(Run()), "remove-finalizer");
  SetFinalizer(false);
  EXPECT_EQ(Kind(Run()), "none");
}

TEST_F(ReconcilerTest, CrGoneFromTheCacheReleasesAfterTheTimeoutOnly) {
  Granted(42);
  const absl::Duration last = clock_.Monotonic();
  Plan p = r_.Reconcile(nullptr, key_, session_, mem_);
  EXPECT_EQ(Kind(p), "none");
  EXPECT_EQ(*p.requeue_at, last + AckTimeout());
  clock_.Advance(AckTimeout());
  p = r_.Reconcile(nullptr, key_, session_, mem_);
  EXPECT_EQ(Kind(p), "txn-delete");
  KeyAbsent();
  p = r_.Reconcile(nullptr, key_, session_, mem_);
  EXPECT_TRUE(p.forget);
}

TEST_F(ReconcilerTest, SessionLostClearsTheLeaderAndStopsAllEtcdWork) {
  Granted(42);
  session_.alive = false;
  session_.reachable = false;
  Plan p = Run();
  ASSERT_EQ(Kind(p), "write-status");
  EXPECT_EQ(W(p).status.leader, "");
  EXPECT_EQ(W(p).status.session, "");
  EXPECT_EQ(Cond(p, kBackendReachable)->status, "False");
  EXPECT_EQ(Cond(p, kBackendReachable)->reason, "SessionLost");
  EXPECT_EQ(Cond(p, kGlobalLockHeld)->reason, "SessionLost");
  EXPECT_FALSE(mem_.announced.has_value());
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_TRUE(p.events[0].warning);
  Apply(p);
  EXPECT_EQ(Kind(Run()), "none");
  // A new session: the old key (old lease) is someone else's until etcd expires
  // it.
  session_.alive = session_.reachable = true;
  session_.id = 0x5e55;
  p = Run();
  ASSERT_EQ(Kind(p), "write-status");
  EXPECT_EQ(Cond(p, kGlobalLockHeld)->reason, "HeldByOtherSession");
  KeyAbsent();
  EXPECT_EQ(Kind(Run()), "txn-create");
}

TEST_F(ReconcilerTest,
       UnreachableEtcdShowsBackendReachableFalseAndDefersEtcdWork) {
  Granted(42);
  session_.reachable = false;
  Plan p = Run();
  ASSERT_EQ(Kind(p), "write-status");
  EXPECT_EQ(Cond(p, kBackendReachable)->status, "False");
  EXPECT_EQ(Cond(p, kBackendReachable)->reason, "Unreachable");
  EXPECT_EQ(W(p).status.leader, "pod-a");
  Apply(p);
  // The candidate resigns meanwhile: the revocation is written, the delete
  // waits for etcd.
  SpecWrite(std::nullopt);
  p = Run();
  ASSERT_EQ(W(p).purpose, Purpose::kRevoke);
  Apply(p);
  EXPECT_EQ(Kind(Run()), "none");
  session_.reachable = true;
  EXPECT_EQ(Kind(Run()), "txn-delete");
  // Unknown key state (watch down) never starts a contention.
  KeyAbsent();
  key_.known = false;
  EXPECT_NE(Kind(Run()), "txn-create");
}

TEST_F(ReconcilerTest, ShutdownRevokesWaitsForTheAckAndReleases) {
  Granted(42);
  session_.shutting_down = true;
  Plan p = Run();
  ASSERT_EQ(W(p).purpose, Purpose::kRevoke);
  EXPECT_NE(Cond(p, kGlobalLockHeld)->message.find("shutting down"),
            std::string::npos);
  Apply(p);
  SpecWrite("pod-a");  // the sidecar's next renewal acks
  EXPECT_EQ(Kind(Run()), "txn-delete");
  // A free lock is not contended during shutdown.
  KeyAbsent();
  EXPECT_NE(Kind(Run()), "txn-create");
}

TEST_F(ReconcilerTest, RestartTreatsOurStatusAsAnnouncedAndCountsFromStart) {
  // A standby took over the session; the CR says pod-a leads with our session.
  cr_.status.leader = "pod-a";
  cr_.status.leader_cluster = kCluster;
  cr_.status.fencing_token = 42;
  cr_.status.session = SessionHex(kSession);
  cr_.spec.holder_identity = "pod-b";  // meanwhile a local failover happened
  KeyOurs("pod-a", 42);
  const absl::Duration start = clock_.Monotonic();
  Plan p = Run();
  EXPECT_EQ(Kind(p), "none");
  ASSERT_TRUE(mem_.announced.has_value());
  EXPECT_EQ(*p.requeue_at, start + absl::Seconds(2))
      << "pod-b's staleness comes first";
  clock_.Advance(absl::Seconds(1));
  SpecWrite("pod-b");
  p = Run();
  EXPECT_EQ(Kind(p), "none");
  EXPECT_EQ(*p.requeue_at, start + AckTimeout())
      << "pod-a never observed: counts from start";
  clock_.Advance(start + AckTimeout() - clock_.Monotonic());
  EXPECT_EQ(Kind(Run()), "txn-repoint");
}

TEST_F(ReconcilerTest, RestartUnderANewSessionAnnouncesNothing) {
  cr_.status.leader = "pod-a";
  cr_.status.leader_cluster = kCluster;
  cr_.status.session = "dead";
  KeyAbsent();
  Run();
  EXPECT_FALSE(mem_.announced.has_value());
}

TEST_F(ReconcilerTest, CandidateStalenessUsesObservationTimeNotRenewTime) {
  cr_.spec.renew_time =
      "1999-01-01T00:00:00.000000Z";  // an absurd clock on the sidecar's node
  clock_.StepWall(absl::Hours(1000));
  Plan p = Run();
  EXPECT_EQ(Kind(p), "txn-create") << "renewTime's value is never compared";
  clock_.Advance(absl::Milliseconds(1999));
  EXPECT_EQ(Kind(Run()), "txn-create");
  clock_.Advance(absl::Milliseconds(1));
  p = Run();
  EXPECT_EQ(Kind(p), "write-status");
  EXPECT_EQ(Cond(p, kCandidateLive)->reason, "Stale");
}

TEST_F(ReconcilerTest,
       MissingLeaseDurationUsesTheDefaultAndAbsurdOnesAreHonoured) {
  cr_.spec.lease_duration_seconds = 0;
  Plan p = Run();
  EXPECT_EQ(*p.requeue_at, clock_.Monotonic() + absl::Seconds(15));
  cr_.spec.lease_duration_seconds = 3600;
  p = Run();
  EXPECT_EQ(*p.requeue_at, clock_.Monotonic() + absl::Hours(1));
  EXPECT_NE(Kind(p), "none");
}

TEST_F(ReconcilerTest, NoHolderOnAFreeLockSaysSo) {
  cr_.spec.holder_identity.reset();
  KeyAbsent();
  Plan p = Run();
  ASSERT_EQ(Kind(p), "write-status");
  EXPECT_EQ(Cond(p, kCandidateLive)->reason, "NoHolder");
  EXPECT_EQ(Cond(p, kGlobalLockHeld)->reason, "NoLiveCandidate");
  EXPECT_FALSE(p.requeue_at.has_value());
  Apply(p);
  EXPECT_EQ(Kind(Run()), "none");
}

TEST_F(ReconcilerTest, ConditionTransitionTimeStaysWhileTheStatusDoesNot) {
  cr_.spec.holder_identity.reset();
  KeyAbsent();
  Apply(Run());
  const std::string t =
      FindCondition(cr_.status, kCandidateLive)->last_transition_time;
  clock_.Advance(absl::Seconds(5));
  SpecWrite("pod-a");
  Plan p = Run();
  ASSERT_EQ(Kind(p), "txn-create");
  KeyOurs("pod-a", 5);
  p = Run();
  EXPECT_NE(Cond(p, kCandidateLive)->last_transition_time, t);
  EXPECT_EQ(Cond(p, kBackendReachable)->last_transition_time,
            FindCondition(cr_.status, kBackendReachable)->last_transition_time);
}

// design.md §Instances: one identity, two candidacies. The grant names the
// instance; a new instance under the same identity is a change of holder: the
// old instance must ack or time out (the new one's renewals are no ack), and
// then the key is re-pointed, so the new instance gets a new token, never the
// old one.
TEST_F(ReconcilerTest, AnInstanceChangeIsAHolderChangeWithANewToken) {
  cr_.spec.holder_instance = "aaaa";
  KeyOurs("pod-a", 42, "aaaa");
  Plan p = Run();
  ASSERT_EQ(Kind(p), "write-status");
  EXPECT_EQ(W(p).status.leader, "pod-a");
  EXPECT_EQ(W(p).status.leader_instance, "aaaa");
  Apply(p);
  const absl::Duration a_last = clock_.Monotonic();

  clock_.Advance(absl::Milliseconds(200));
  SpecWriteAs("pod-a", "bbbb");  // a second candidacy of pod-a takes the spec
  p = Run();
  EXPECT_EQ(Kind(p), "none") << "the old token is never the new instance's";
  ASSERT_TRUE(p.requeue_at.has_value());
  EXPECT_EQ(*p.requeue_at, a_last + AckTimeout());
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(absl::Milliseconds(500));
    SpecWriteAs("pod-a", "bbbb");
    EXPECT_EQ(Kind(Run()), "none") << "bbbb's renewals are no ack of aaaa";
  }
  clock_.Advance(a_last + AckTimeout() - clock_.Monotonic());
  p = Run();
  ASSERT_EQ(Kind(p), "txn-repoint");
  EXPECT_EQ(Expected(p), 42);
  auto v = contract::ParseKeyValue(Value(p));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->holder, "pod-a");
  EXPECT_EQ(v->instance, "bbbb");
  KeyOurs("pod-a", 57, "bbbb");
  p = Run();
  ASSERT_EQ(Kind(p), "write-status");
  EXPECT_EQ(W(p).purpose, Purpose::kGrant);
  EXPECT_EQ(W(p).status.leader_instance, "bbbb");
  EXPECT_EQ(W(p).status.fencing_token, 57);
  EXPECT_EQ(W(p).status.transitions, 2);
}

// The old instance resigning (consecutive generations) is its ack: the new
// instance is granted at once.
TEST_F(ReconcilerTest, TheOldInstancesResignAcksItAtOnce) {
  cr_.spec.holder_instance = "aaaa";
  KeyOurs("pod-a", 42, "aaaa");
  Apply(Run());
  SpecWrite(std::nullopt);
  Plan p = Run();
  ASSERT_EQ(W(p).purpose, Purpose::kRevoke);
  EXPECT_TRUE(W(p).revocation->is_resign_ack);
  EXPECT_EQ(W(p).status.leader_instance, "");
  Apply(p);
  SpecWriteAs("pod-a", "bbbb");
  p = Run();
  ASSERT_EQ(Kind(p), "txn-repoint") << "no timer: aaaa resigned";
  EXPECT_EQ(contract::ParseKeyValue(Value(p))->instance, "bbbb");
}

// After a restart, a key granted to another instance of the same identity is
// not announced to the instance now in the spec.
TEST_F(ReconcilerTest, RestartDoesNotHandAnotherInstancesGrantOver) {
  cr_.status.leader = "pod-a";
  cr_.status.leader_instance = "aaaa";
  cr_.status.leader_cluster = kCluster;
  cr_.status.fencing_token = 42;
  cr_.status.session = SessionHex(kSession);
  cr_.spec.holder_instance = "bbbb";
  KeyOurs("pod-a", 42, "aaaa");
  Plan p = Run();
  EXPECT_EQ(Kind(p), "none");
  ASSERT_TRUE(mem_.announced.has_value());
  EXPECT_EQ(mem_.announced->holder.instance, "aaaa");
  const absl::Duration start = clock_.Monotonic();
  clock_.Advance(absl::Seconds(1));
  SpecWriteAs("pod-a", "bbbb");  // bbbb renews; aaaa never observed
  EXPECT_EQ(Kind(Run()), "none");
  clock_.Advance(start + AckTimeout() - clock_.Monotonic());
  EXPECT_EQ(Kind(Run()), "txn-repoint");
}

TEST(StatusDiffersTest, IgnoresFieldsThatChangeWithEveryRenewal) {
  LockStatus a;
  a.leader = "x";
  kube::Condition c;
  c.type = "A";
  c.status = "True";
  c.reason = "R";
  c.message = "m";
  c.last_transition_time = "t1";
  a.conditions.push_back(c);
  LockStatus b = a;
  b.observed_generation = 9;
  b.confirmed_resource_version = "77";
  b.last_confirmed_renew_time = "z";
  b.conditions[0].last_transition_time = "t2";
  EXPECT_FALSE(StatusDiffers(a, b));
  b.conditions[0].reason = "Q";
  EXPECT_TRUE(StatusDiffers(a, b));
  b = a;
  b.fencing_token = 1;
  EXPECT_TRUE(StatusDiffers(a, b));
}

}  // namespace
}  // namespace mcl::controller
