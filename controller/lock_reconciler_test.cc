// Every branch of the per-lock reconcile (docs/design.md §"Controller
// reconcile", §Ack), driven with a fake clock: grant, follow, foreign, garbage,
// release by resign / ack / timeout, local holder change, deletion, session
// loss, unreachable etcd, shutdown, restart.
#include "controller/lock_reconciler.h"

#include "gtest/gtest.h"

namespace mcl::controller {
namespace {

constexpr int64_t kSession = 0x7a11;
constexpr char kCluster[] = "cluster-a";

class ReconcilerTest : public ::testing::Test {
 protected:
  ReconcilerTest()
      : r_(ReconcilerConfig{kCluster, "mcl-system/mcl-heartbeat-cluster-a"},
           &clock_) {
    cr_.namespace_ = "default";
    cr_.name = "lock";
    cr_.uid = "uid-1";
    cr_.resource_version = "100";
    cr_.generation = 1;
    cr_.has_finalizer = true;
    cr_.holder = "pod-a";
    cr_.lease_duration_seconds = 2;
    cr_.renew_time = "2026-11-23T01:00:00.000000Z";
    session_.id = kSession;
    session_.alive = true;
    session_.reachable = true;
    session_.ttl = absl::Seconds(2);
    session_.confirmed_rv = "100";
    key_.known = true;
  }

  Plan Run() { return r_.Reconcile(&cr_, key_, session_, mem_); }

  // A spec write (renewal) by `holder` (nullopt = resign), as the informer
  // would deliver it.
  void SpecWrite(std::optional<std::string> holder) {
    cr_.generation++;
    cr_.holder = std::move(holder);
    BumpRv();
  }
  void BumpRv() {
    cr_.resource_version = std::to_string(std::stoll(cr_.resource_version) + 1);
  }
  // Applies a status write the way the apiserver would (and reports the
  // outcome).
  void Apply(const Plan& p) {
    ASSERT_EQ(p.action.kind, Action::kWriteStatus);
    EXPECT_EQ(p.action.precondition_rv, cr_.resource_version);
    cr_.status = p.action.status;
    BumpRv();
    r_.OnStatusResult(p.action, WriteOutcome::kApplied, mem_);
  }
  void KeyOurs(const std::string& holder, int64_t rev) {
    key_.present = true;
    key_.mod_revision = rev;
    key_.lease = kSession;
    key_.raw = EncodeKeyValue({kCluster, holder, SessionHex(kSession), "t0"});
  }
  void KeyForeign(const std::string& cluster, const std::string& holder,
                  int64_t rev) {
    key_.present = true;
    key_.mod_revision = rev;
    key_.lease = 0x99;
    key_.raw = EncodeKeyValue({cluster, holder, "99", "t1"});
  }
  void KeyAbsent() { key_ = KeyView{true, false, 0, 0, ""}; }
  // Brings the lock to "granted to pod-a with token `rev`, status written".
  void Granted(int64_t rev) {
    KeyOurs("pod-a", rev);
    Plan p = Run();
    Apply(p);
    ASSERT_EQ(cr_.status.leader, "pod-a");
  }
  absl::Duration AckTimeout() { return session_.ttl * (1 + kRho) + kMargin; }

  FakeClock clock_;
  LockReconciler r_;
  CrView cr_;
  KeyView key_;
  SessionView session_;
  LockMemory mem_;
};

TEST_F(ReconcilerTest,
       FreeLockWithLiveCandidateAddsFinalizerThenCreatesTheKey) {
  cr_.has_finalizer = false;
  Plan p = Run();
  EXPECT_EQ(p.action.kind, Action::kAddFinalizer);
  cr_.has_finalizer = true;
  p = Run();
  ASSERT_EQ(p.action.kind, Action::kTxnCreate);
  auto v = ParseKeyValue(p.action.value);
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
  ASSERT_EQ(p.action.kind, Action::kWriteStatus);
  EXPECT_EQ(p.action.purpose, Action::kGrant);
  const LockStatus& s = p.action.status;
  EXPECT_EQ(s.leader, "pod-a");
  EXPECT_EQ(s.leader_cluster, kCluster);
  EXPECT_EQ(s.fencing_token, 42);
  EXPECT_EQ(s.session, SessionHex(kSession));
  EXPECT_EQ(s.heartbeat, "mcl-system/mcl-heartbeat-cluster-a");
  EXPECT_EQ(s.session_ttl_ms, 2000);
  EXPECT_EQ(s.confirmed_resource_version, "100");
  EXPECT_EQ(s.last_confirmed_renew_time, cr_.renew_time);  // rv 100 <= c 100
  EXPECT_EQ(s.transitions, 1);
  EXPECT_EQ(s.acquire_time, "t0");
  EXPECT_EQ(s.Find(kGlobalLockHeld)->status, "True");
  EXPECT_EQ(s.Find(kCandidateLive)->status, "True");
  EXPECT_EQ(s.Find(kBackendReachable)->status, "True");
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0].reason, "Granted");
  ASSERT_TRUE(mem_.announced.has_value());
  EXPECT_EQ(mem_.announced->token, 42);
  Apply(p);
  // Renewals change nothing a reader acts on: no status write per renewal.
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Milliseconds(500));
    SpecWrite("pod-a");
    session_.confirmed_rv = cr_.resource_version;
    p = Run();
    EXPECT_EQ(p.action.kind, Action::kNone) << i;
  }
}

TEST_F(ReconcilerTest, RenewalNotYetConfirmedKeepsTheOlderConfirmedRenewTime) {
  cr_.status.last_confirmed_renew_time = "older";
  session_.confirmed_rv = "99";
  KeyOurs("pod-a", 42);
  Plan p = Run();
  EXPECT_EQ(p.action.status.confirmed_resource_version, "99");
  EXPECT_EQ(p.action.status.last_confirmed_renew_time, "older");
}

TEST_F(ReconcilerTest, ForeignHolderIsShownWithItsTokenAndTheCandidateFollows) {
  KeyForeign("cluster-b", "pod-z", 77);
  Plan p = Run();
  ASSERT_EQ(p.action.kind, Action::kWriteStatus);
  EXPECT_EQ(p.action.status.leader, "pod-z");
  EXPECT_EQ(p.action.status.leader_cluster, "cluster-b");
  EXPECT_EQ(p.action.status.fencing_token, 77);
  EXPECT_EQ(p.action.status.session, "");  // never confirmable by our heartbeat
  EXPECT_EQ(p.action.status.Find(kGlobalLockHeld)->reason,
            "HeldByOtherCluster");
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0].reason, "LeaderElsewhere");
  Apply(p);
  EXPECT_EQ(Run().action.kind, Action::kNone);
  // The holder changes over there: new token, transitions counted.
  KeyForeign("cluster-b", "pod-y", 80);
  p = Run();
  EXPECT_EQ(p.action.status.fencing_token, 80);
  EXPECT_EQ(p.action.status.transitions, 2);
}

TEST_F(ReconcilerTest, TransitionsCountEachNewTokenOnceEvenAfterAConflict) {
  KeyForeign("cluster-b", "pod-z", 77);
  Plan p = Run();
  EXPECT_EQ(p.action.status.transitions, 1);
  r_.OnStatusResult(p.action, WriteOutcome::kConflict, mem_);
  SpecWrite("pod-a");
  p = Run();
  EXPECT_EQ(p.action.status.transitions, 1) << "recomputed after the conflict";
  Apply(p);
  EXPECT_EQ(Run().action.kind, Action::kNone);
  // The lock is freed and shown again under the same token: no new transition.
  KeyAbsent();
  session_.reachable = false;
  Apply(Run());
  KeyForeign("cluster-b", "pod-z", 77);
  session_.reachable = true;
  p = Run();
  EXPECT_EQ(p.action.status.transitions, 1);
}

TEST_F(ReconcilerTest, KeyOfOurClusterUnderAnotherSessionIsNotOurs) {
  key_.present = true;
  key_.mod_revision = 50;
  key_.lease = 0x1234;  // a previous replica's session, not yet expired
  key_.raw = EncodeKeyValue({kCluster, "pod-a", "1234", "t"});
  Plan p = Run();
  ASSERT_EQ(p.action.kind, Action::kWriteStatus);
  EXPECT_EQ(p.action.status.leader, "pod-a");
  EXPECT_EQ(p.action.status.session, "");
  EXPECT_EQ(p.action.status.Find(kGlobalLockHeld)->reason,
            "HeldByOtherSession");
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
    ASSERT_EQ(p.action.kind, Action::kWriteStatus) << garbage;
    EXPECT_EQ(p.action.status.leader, "");
    EXPECT_EQ(p.action.status.Find(kGlobalLockHeld)->reason, "InvalidKeyValue");
    ASSERT_EQ(p.events.size(), 1u);
    EXPECT_TRUE(p.events[0].warning);
    Apply(p);
    p = Run();
    EXPECT_EQ(p.action.kind, Action::kNone);
    EXPECT_TRUE(p.events.empty()) << "warned twice";
  }
}

TEST_F(ReconcilerTest, StaleCandidateIsRevokedThenReleasedAtTheTimeoutBound) {
  Granted(42);
  const absl::Duration last_renewal = clock_.Monotonic();
  clock_.Advance(absl::Seconds(2));  // leaseDurationSeconds without a renewal
  Plan p = Run();
  ASSERT_EQ(p.action.kind, Action::kWriteStatus);
  EXPECT_EQ(p.action.purpose, Action::kRevoke);
  EXPECT_EQ(p.action.status.leader, "");
  EXPECT_EQ(p.action.status.fencing_token, 0);
  EXPECT_EQ(p.action.status.Find(kCandidateLive)->reason, "Stale");
  EXPECT_EQ(p.action.status.Find(kGlobalLockHeld)->reason, "Releasing");
  Apply(p);
  // Not before lastObservedRenewal + TTL·(1+rho) + m.
  p = Run();
  EXPECT_EQ(p.action.kind, Action::kNone);
  ASSERT_TRUE(p.requeue_at.has_value());
  EXPECT_EQ(*p.requeue_at, last_renewal + AckTimeout());
  clock_.Advance(last_renewal + AckTimeout() - clock_.Monotonic() -
                 absl::Microseconds(1));
  EXPECT_EQ(Run().action.kind, Action::kNone);
  clock_.Advance(absl::Microseconds(1));
  p = Run();
  ASSERT_EQ(p.action.kind, Action::kTxnDelete);
  EXPECT_EQ(p.action.expected_mod_revision, 42);
  KeyAbsent();
  p = Run();
  ASSERT_EQ(p.action.kind, Action::kWriteStatus);
  EXPECT_EQ(p.action.status.leader, "");
  EXPECT_EQ(p.action.status.Find(kGlobalLockHeld)->reason, "NoLiveCandidate");
}

TEST_F(ReconcilerTest, AckAfterRevocationReleasesAtOnce) {
  Granted(42);
  cr_.deleting = true;  // e.g. kubectl delete: the finalizer keeps the object
  Plan p = Run();
  ASSERT_EQ(p.action.purpose, Action::kRevoke);
  Apply(p);
  EXPECT_EQ(Run().action.kind, Action::kNone);
  // The grantee writes spec after seeing the revocation: that is its ack.
  clock_.Advance(absl::Milliseconds(10));
  SpecWrite("pod-a");
  p = Run();
  ASSERT_EQ(p.action.kind, Action::kTxnDelete);
  KeyAbsent();
  p = Run();
  EXPECT_EQ(p.action.kind, Action::kRemoveFinalizer);
}

TEST_F(ReconcilerTest, SpecWriteBeforeTheRevocationIsNoAck) {
  Granted(42);
  cr_.deleting = true;
  Plan p = Run();
  // A renewal lands first: the revoke is computed from an old version and
  // conflicts.
  r_.OnStatusResult(p.action, WriteOutcome::kConflict, mem_);
  SpecWrite("pod-a");
  p = Run();
  ASSERT_EQ(p.action.purpose, Action::kRevoke)
      << "must revoke again, not release";
  Apply(p);
  EXPECT_EQ(Run().action.kind, Action::kNone);
}

TEST_F(ReconcilerTest, ResignIsTheAckOnceTheRevocationIsApplied) {
  Granted(42);
  clock_.Advance(absl::Milliseconds(100));
  SpecWrite(std::nullopt);  // Resign: holderIdentity removed
  Plan p = Run();
  ASSERT_EQ(p.action.purpose, Action::kRevoke);
  EXPECT_TRUE(p.action.revoke_is_resign_ack);
  EXPECT_EQ(p.action.status.Find(kCandidateLive)->reason, "NoHolder");
  Apply(p);
  p = Run();
  ASSERT_EQ(p.action.kind, Action::kTxnDelete)
      << "no timer on the graceful path";
}

TEST_F(ReconcilerTest, ResignSeenAfterAGapWaitsForTheTimeout) {
  Granted(42);
  cr_.generation +=
      2;  // two spec writes coalesced: someone else may have written in between
  cr_.holder.reset();
  BumpRv();
  Plan p = Run();
  ASSERT_EQ(p.action.purpose, Action::kRevoke);
  EXPECT_FALSE(p.action.revoke_is_resign_ack);
  Apply(p);
  p = Run();
  EXPECT_EQ(p.action.kind, Action::kNone);
  ASSERT_TRUE(p.requeue_at.has_value());
  EXPECT_EQ(*p.requeue_at,
            clock_.Monotonic() + AckTimeout());  // the gap counts as "now"
}

TEST_F(ReconcilerTest, RecampaignBeforeTheRevocationKeepsTheGrant) {
  Granted(42);
  SpecWrite(std::nullopt);
  Plan p = Run();
  ASSERT_EQ(p.action.purpose, Action::kRevoke);
  r_.OnStatusResult(p.action, WriteOutcome::kConflict, mem_);
  SpecWrite("pod-a");  // the same holder campaigns again on the old status
  p = Run();
  EXPECT_EQ(p.action.kind, Action::kNone)
      << "key, holder and status agree again";
  EXPECT_EQ(mem_.announced->holder, "pod-a");
}

TEST_F(ReconcilerTest, LocalHolderChangeWaitsForTheOldGranteeThenRepoints) {
  Granted(42);
  const absl::Duration a_last = clock_.Monotonic();
  clock_.Advance(absl::Milliseconds(300));
  SpecWrite("pod-b");  // local replica failover (CAS on spec)
  Plan p = Run();
  EXPECT_EQ(p.action.kind, Action::kNone);
  ASSERT_TRUE(p.requeue_at.has_value());
  EXPECT_EQ(*p.requeue_at, a_last + AckTimeout());
  // pod-b's renewals are no ack of pod-a.
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(absl::Milliseconds(500));
    SpecWrite("pod-b");
    EXPECT_EQ(Run().action.kind, Action::kNone);
  }
  clock_.Advance(a_last + AckTimeout() - clock_.Monotonic());
  p = Run();
  ASSERT_EQ(p.action.kind, Action::kTxnRepoint);
  EXPECT_EQ(p.action.expected_mod_revision, 42);
  EXPECT_EQ(ParseKeyValue(p.action.value)->holder, "pod-b");
  EXPECT_FALSE(mem_.announced.has_value());
  // The re-point succeeded with a new revision: pod-b is announced with the new
  // token.
  KeyOurs("pod-b", 57);
  p = Run();
  ASSERT_EQ(p.action.purpose, Action::kGrant);
  EXPECT_EQ(p.action.status.leader, "pod-b");
  EXPECT_EQ(p.action.status.fencing_token, 57);
  EXPECT_EQ(p.action.status.transitions, 2);
}

TEST_F(ReconcilerTest, HolderChangeBackBeforeTheTimeoutKeepsTheGrant) {
  Granted(42);
  SpecWrite("pod-b");
  EXPECT_EQ(Run().action.kind, Action::kNone);
  SpecWrite("pod-a");
  Plan p = Run();
  EXPECT_EQ(p.action.kind, Action::kNone);
  EXPECT_EQ(mem_.announced->holder, "pod-a");
  EXPECT_EQ(mem_.announced->token, 42);
}

TEST_F(ReconcilerTest, HolderNeverToldIsReleasedWithoutWaiting) {
  KeyOurs("pod-a", 42);
  Plan p = Run();  // grant status...
  r_.OnStatusResult(p.action, WriteOutcome::kConflict, mem_);
  // ...conservatively counts as announced even when it conflicted: the answer
  // can lie.
  ASSERT_TRUE(mem_.announced.has_value());
  // Without any announcement (e.g. the key was created and the candidate
  // vanished):
  mem_.announced.reset();
  cr_.holder.reset();
  cr_.generation++;
  p = Run();
  EXPECT_EQ(p.action.kind, Action::kTxnDelete);
}

TEST_F(ReconcilerTest, DeletedCrReleasesAndDropsTheFinalizer) {
  KeyAbsent();
  cr_.deleting = true;
  EXPECT_EQ(Run().action.kind, Action::kRemoveFinalizer);
  cr_.has_finalizer = false;
  EXPECT_EQ(Run().action.kind, Action::kNone);
}

TEST_F(ReconcilerTest, CrGoneFromTheCacheReleasesAfterTheTimeoutOnly) {
  Granted(42);
  const absl::Duration last = clock_.Monotonic();
  Plan p = r_.Reconcile(nullptr, key_, session_, mem_);
  EXPECT_EQ(p.action.kind, Action::kNone);
  EXPECT_EQ(*p.requeue_at, last + AckTimeout());
  clock_.Advance(AckTimeout());
  p = r_.Reconcile(nullptr, key_, session_, mem_);
  EXPECT_EQ(p.action.kind, Action::kTxnDelete);
  KeyAbsent();
  p = r_.Reconcile(nullptr, key_, session_, mem_);
  EXPECT_TRUE(p.forget);
}

TEST_F(ReconcilerTest, SessionLostClearsTheLeaderAndStopsAllEtcdWork) {
  Granted(42);
  session_.alive = false;
  session_.reachable = false;
  Plan p = Run();
  ASSERT_EQ(p.action.kind, Action::kWriteStatus);
  EXPECT_EQ(p.action.status.leader, "");
  EXPECT_EQ(p.action.status.session, "");
  EXPECT_EQ(p.action.status.Find(kBackendReachable)->status, "False");
  EXPECT_EQ(p.action.status.Find(kBackendReachable)->reason, "SessionLost");
  EXPECT_EQ(p.action.status.Find(kGlobalLockHeld)->reason, "SessionLost");
  EXPECT_FALSE(mem_.announced.has_value());
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_TRUE(p.events[0].warning);
  Apply(p);
  EXPECT_EQ(Run().action.kind, Action::kNone);
  // A new session: the old key (old lease) is someone else's until etcd expires
  // it.
  session_.alive = session_.reachable = true;
  session_.id = 0x5e55;
  p = Run();
  ASSERT_EQ(p.action.kind, Action::kWriteStatus);
  EXPECT_EQ(p.action.status.Find(kGlobalLockHeld)->reason,
            "HeldByOtherSession");
  KeyAbsent();
  EXPECT_EQ(Run().action.kind, Action::kTxnCreate);
}

TEST_F(ReconcilerTest,
       UnreachableEtcdShowsBackendReachableFalseAndDefersEtcdWork) {
  Granted(42);
  session_.reachable = false;
  Plan p = Run();
  ASSERT_EQ(p.action.kind, Action::kWriteStatus);
  EXPECT_EQ(p.action.status.Find(kBackendReachable)->status, "False");
  EXPECT_EQ(p.action.status.Find(kBackendReachable)->reason, "Unreachable");
  EXPECT_EQ(p.action.status.leader, "pod-a");
  Apply(p);
  // The candidate resigns meanwhile: the revocation is written, the delete
  // waits for etcd.
  SpecWrite(std::nullopt);
  p = Run();
  ASSERT_EQ(p.action.purpose, Action::kRevoke);
  Apply(p);
  EXPECT_EQ(Run().action.kind, Action::kNone);
  session_.reachable = true;
  EXPECT_EQ(Run().action.kind, Action::kTxnDelete);
  // Unknown key state (watch down) never starts a contention.
  KeyAbsent();
  key_.known = false;
  EXPECT_NE(Run().action.kind, Action::kTxnCreate);
}

TEST_F(ReconcilerTest, ShutdownRevokesWaitsForTheAckAndReleases) {
  Granted(42);
  session_.shutting_down = true;
  Plan p = Run();
  ASSERT_EQ(p.action.purpose, Action::kRevoke);
  EXPECT_NE(
      p.action.status.Find(kGlobalLockHeld)->message.find("shutting down"),
      std::string::npos);
  Apply(p);
  SpecWrite("pod-a");  // the sidecar's next renewal acks
  EXPECT_EQ(Run().action.kind, Action::kTxnDelete);
  // A free lock is not contended during shutdown.
  KeyAbsent();
  EXPECT_NE(Run().action.kind, Action::kTxnCreate);
}

TEST_F(ReconcilerTest, RestartTreatsOurStatusAsAnnouncedAndCountsFromStart) {
  // A standby took over the session; the CR says pod-a leads with our session.
  cr_.status.leader = "pod-a";
  cr_.status.leader_cluster = kCluster;
  cr_.status.fencing_token = 42;
  cr_.status.session = SessionHex(kSession);
  cr_.holder = "pod-b";  // meanwhile a local failover happened
  KeyOurs("pod-a", 42);
  const absl::Duration start = clock_.Monotonic();
  Plan p = Run();
  EXPECT_EQ(p.action.kind, Action::kNone);
  ASSERT_TRUE(mem_.announced.has_value());
  EXPECT_EQ(*p.requeue_at, start + absl::Seconds(2))
      << "pod-b's staleness comes first";
  clock_.Advance(absl::Seconds(1));
  SpecWrite("pod-b");
  p = Run();
  EXPECT_EQ(p.action.kind, Action::kNone);
  EXPECT_EQ(*p.requeue_at, start + AckTimeout())
      << "pod-a never observed: counts from start";
  clock_.Advance(start + AckTimeout() - clock_.Monotonic());
  EXPECT_EQ(Run().action.kind, Action::kTxnRepoint);
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
  cr_.renew_time =
      "1999-01-01T00:00:00.000000Z";  // an absurd clock on the sidecar's node
  clock_.StepWall(absl::Hours(1000));
  Plan p = Run();
  EXPECT_EQ(p.action.kind, Action::kTxnCreate)
      << "renewTime's value is never compared";
  clock_.Advance(absl::Milliseconds(1999));
  EXPECT_EQ(Run().action.kind, Action::kTxnCreate);
  clock_.Advance(absl::Milliseconds(1));
  p = Run();
  EXPECT_EQ(p.action.kind, Action::kWriteStatus);
  EXPECT_EQ(p.action.status.Find(kCandidateLive)->reason, "Stale");
}

TEST_F(ReconcilerTest,
       MissingLeaseDurationUsesTheDefaultAndAbsurdOnesAreHonoured) {
  cr_.lease_duration_seconds = 0;
  Plan p = Run();
  EXPECT_EQ(*p.requeue_at, clock_.Monotonic() + absl::Seconds(15));
  cr_.lease_duration_seconds = 3600;
  p = Run();
  EXPECT_EQ(*p.requeue_at, clock_.Monotonic() + absl::Hours(1));
  EXPECT_NE(p.action.kind, Action::kNone);
}

TEST_F(ReconcilerTest, NoHolderOnAFreeLockSaysSo) {
  cr_.holder.reset();
  KeyAbsent();
  Plan p = Run();
  ASSERT_EQ(p.action.kind, Action::kWriteStatus);
  EXPECT_EQ(p.action.status.Find(kCandidateLive)->reason, "NoHolder");
  EXPECT_EQ(p.action.status.Find(kGlobalLockHeld)->reason, "NoLiveCandidate");
  EXPECT_FALSE(p.requeue_at.has_value());
  Apply(p);
  EXPECT_EQ(Run().action.kind, Action::kNone);
}

TEST_F(ReconcilerTest, ConditionTransitionTimeStaysWhileTheStatusDoesNot) {
  cr_.holder.reset();
  KeyAbsent();
  Apply(Run());
  const std::string t = cr_.status.Find(kCandidateLive)->last_transition_time;
  clock_.Advance(absl::Seconds(5));
  SpecWrite("pod-a");
  Plan p = Run();
  ASSERT_EQ(p.action.kind, Action::kTxnCreate);
  KeyOurs("pod-a", 5);
  p = Run();
  EXPECT_NE(p.action.status.Find(kCandidateLive)->last_transition_time, t);
  EXPECT_EQ(p.action.status.Find(kBackendReachable)->last_transition_time,
            cr_.status.Find(kBackendReachable)->last_transition_time);
}

TEST(StatusDiffersTest, IgnoresFieldsThatChangeWithEveryRenewal) {
  LockStatus a;
  a.leader = "x";
  a.conditions.push_back({"A", "True", "R", "m", "t1"});
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

TEST(KeyValueTest, RoundTripsAndRejectsWhatIsNotOurs) {
  KeyValue v{"c", "h", "s", "2026-01-01T00:00:00.000000Z"};
  auto back = ParseKeyValue(EncodeKeyValue(v));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->cluster, "c");
  EXPECT_EQ(back->holder, "h");
  EXPECT_EQ(back->session, "s");
  EXPECT_EQ(back->acquire_time, v.acquire_time);
  EXPECT_FALSE(ParseKeyValue(""));
  EXPECT_FALSE(ParseKeyValue("{\"cluster\":\"c\"}"));
  EXPECT_FALSE(ParseKeyValue("{\"cluster\":\"c\",\"holder\":\"\"}"));
  EXPECT_FALSE(ParseKeyValue("{\"cluster\":\"c\",\"holder\":1}"));
  EXPECT_FALSE(ParseKeyValue("{\"cluster\":\"c\",\"holder\":\"h\""));
  EXPECT_TRUE(
      ParseKeyValue("{\"cluster\":\"c\",\"holder\":\"h\",\"extra\":[1]}"));
}

}  // namespace
}  // namespace mcl::controller
