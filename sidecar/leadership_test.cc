#include "sidecar/leadership.h"

#include <vector>

#include "common/contract.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::sidecar {

// Readable failure messages.
void PrintTo(const LeadershipEvent& e, std::ostream* os) {
  *os << LeaderStateName(e.state) << "(" << e.grant.leader << "/"
      << e.grant.token;
  if (!e.reason.empty()) *os << ": " << e.reason;
  if (e.valid_until) *os << " until " << absl::FormatDuration(*e.valid_until);
  if (e.renewal) *os << " renewal";
  *os << ")";
}

namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kMe[] = "pod-a_uid-a";
constexpr char kOther[] = "pod-b_uid-b";
// This campaign's instance, and another candidacy's of the same identity.
constexpr char kInstance[] = "1a2b3c";
constexpr char kOtherInstance[] = "9f8e7d";
constexpr char kSession[] = "7a1b";
constexpr char kHeartbeat[] = "default/mcl-heartbeat-cluster-0";
const absl::Duration kTtl = absl::Seconds(2);
// V = TTL·(1 − ρ) − m (with ρ = 1 % and m = 150 ms: 1.83 s).
const absl::Duration kV = contract::ValidityAfterConfirmedWrite(kTtl);

class LeadershipTest : public ::testing::Test {
 protected:
  LeadershipTest() : l_(Leadership::Options{kMe, kInstance, ""}, &clock_) {}

  // An object version whose status grants `leader` (token `token`) in
  // cluster-0, spec holder `holder`; a holder or leader that is kMe names
  // kInstance.
  LeaseView View(int64_t rv, const std::string& holder,
                 const std::string& leader, int64_t token,
                 int64_t confirmed_rv = 0,
                 const std::string& session = kSession) {
    LeaseView v;
    v.resource_version = rv;
    if (!holder.empty()) v.holder = holder;
    if (holder == kMe) v.holder_instance = kInstance;
    v.lease_duration_seconds = 2;
    v.renew_time = absl::StrCat("t", rv);
    v.grant.leader = leader;
    v.grant.cluster = leader.empty() ? "" : "cluster-0";
    v.grant.token = token;
    if (leader == kMe) v.grant.instance = kInstance;
    if (!leader.empty()) {
      v.session = session;
      v.heartbeat = kHeartbeat;
      v.session_ttl_ms = absl::ToInt64Milliseconds(kTtl);
      v.confirmed_rv = confirmed_rv;
    }
    return v;
  }
  Confirmation Confirm(int64_t c, const std::string& session = kSession) {
    return Confirmation{session, c, kTtl};
  }
  // My write at rv, sent now; the response object carries the same status as
  // before.
  void Write(int64_t rv, const LeaseView& response) {
    l_.RecordWrite(rv, clock_.Monotonic());
    l_.ObserveObject(response);
  }
  // Leads with token 42: my write rv 10 at t0 is confirmed by a heartbeat.
  void BecomeLeader() {
    l_.ObserveObject(View(5, "", "", 0));
    t0_ = clock_.Monotonic();
    Write(10, View(10, kMe, "", 0));
    l_.ObserveObject(View(11, kMe, kMe, 42));  // granted, not yet confirmed
    ASSERT_EQ(l_.state(), LeaderState::kNoLeader);
    clock_.Advance(absl::Milliseconds(100));
    l_.ObserveConfirmation(Confirm(11));
    ASSERT_EQ(l_.state(), LeaderState::kLeader);
    l_.TakeEvents();
  }

  FakeClock clock_;
  Leadership l_;
  absl::Duration t0_;
};

TEST_F(LeadershipTest, StartsWithNoLeaderAndNoEvents) {
  EXPECT_EQ(l_.Current().state, LeaderState::kNoLeader);
  EXPECT_THAT(l_.TakeEvents(), IsEmpty());
  EXPECT_FALSE(l_.deadline().has_value());
}

TEST_F(LeadershipTest, AnotherLeaderMakesAFollower) {
  l_.ObserveObject(View(3, kOther, kOther, 7));
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].state, LeaderState::kFollower);
  EXPECT_EQ(ev[0].grant.leader, kOther);
  EXPECT_EQ(ev[0].grant.token, 7);
  // Same grant again (a renewal of the other holder): no event.
  l_.ObserveObject(View(4, kOther, kOther, 7));
  EXPECT_THAT(l_.TakeEvents(), IsEmpty());
  // The other leader changes grant: one FOLLOWER event with the new token.
  l_.ObserveObject(View(5, kOther, kOther, 9));
  ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].grant.token, 9);
  // Revoked: NO_LEADER.
  l_.ObserveObject(View(6, kOther, "", 0));
  ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].state, LeaderState::kNoLeader);
}

TEST_F(LeadershipTest, GrantWithoutConfirmationIsNotLeadership) {
  l_.ObserveObject(View(5, "", "", 0));
  Write(10, View(10, kMe, "", 0));
  // No confirmedResourceVersion in status.
  l_.ObserveObject(View(11, kMe, kMe, 42));
  EXPECT_EQ(l_.state(), LeaderState::kNoLeader);
  EXPECT_THAT(l_.TakeEvents(), IsEmpty());
}

TEST_F(LeadershipTest, ConfirmationInTheGrantingStatusLeadsAtOnce) {
  l_.ObserveObject(View(5, "", "", 0));
  absl::Duration sent = clock_.Monotonic();
  Write(10, View(10, kMe, "", 0));
  clock_.Advance(absl::Milliseconds(300));
  l_.ObserveObject(View(11, kMe, kMe, 42, /*confirmed_rv=*/10));
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].state, LeaderState::kLeader);
  EXPECT_EQ(ev[0].grant.token, 42);
  EXPECT_EQ(ev[0].grant.cluster, "cluster-0");
  ASSERT_TRUE(l_.deadline().has_value());
  // Counted from the send time, not the arrival.
  EXPECT_EQ(*l_.deadline(), sent + kV);
}

TEST_F(LeadershipTest,
       ConfirmationLapsesToLostStrictlyBeforeTheLeaseCanExpire) {
  BecomeLeader();
  ASSERT_TRUE(l_.deadline().has_value());
  const absl::Duration deadline = *l_.deadline();
  EXPECT_EQ(deadline, t0_ + kV);
  // etcd keeps the lease until at least t_refresh + TTL > T_w + TTL (its
  // clock): LOST comes first.
  EXPECT_LT(deadline, t0_ + kTtl * (1 - 0.01));
  clock_.Advance(deadline - clock_.Monotonic() - absl::Nanoseconds(1));
  l_.Tick();
  EXPECT_EQ(l_.state(), LeaderState::kLeader);
  clock_.Advance(absl::Nanoseconds(1));
  l_.Tick();
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].state, LeaderState::kLost);
  EXPECT_EQ(ev[0].grant.token, 42);
  EXPECT_EQ(ev[0].reason, "confirmation lapsed");
  EXPECT_FALSE(l_.deadline().has_value());
}

TEST_F(LeadershipTest,
       RenewalsConfirmedByHeartbeatsKeepLeadershipContinuously) {
  BecomeLeader();
  int64_t rv = 11;
  for (int i = 0; i < 20; ++i) {
    clock_.Advance(absl::Milliseconds(500));  // renewal period leaseDuration/4
    absl::Duration sent = clock_.Monotonic();
    ++rv;
    Write(rv, View(rv, kMe, kMe, 42));
    // Propagation to the controller and back.
    clock_.Advance(absl::Milliseconds(200));
    l_.ObserveConfirmation(Confirm(rv));
    EXPECT_EQ(*l_.deadline(), sent + kV);
    l_.Tick();
    EXPECT_EQ(l_.state(), LeaderState::kLeader);
    // Each confirmation of a newer renewal is one LEADER renewal: the same
    // grant with the later bound, which is the new deadline.
    auto ev = l_.TakeEvents();
    ASSERT_THAT(ev, SizeIs(1));
    EXPECT_EQ(ev[0].state, LeaderState::kLeader);
    EXPECT_TRUE(ev[0].renewal);
    EXPECT_EQ(ev[0].grant.token, 42);
    EXPECT_EQ(ev[0].valid_until, sent + kV);
  }
}

TEST_F(LeadershipTest, EveryLeaderEventCarriesItsBoundWhichIsTheLostDeadline) {
  l_.ObserveObject(View(5, "", "", 0));
  const absl::Duration sent = clock_.Monotonic();
  Write(10, View(10, kMe, "", 0));
  l_.ObserveObject(View(11, kMe, kMe, 42, /*confirmed_rv=*/10));
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].state, LeaderState::kLeader);
  EXPECT_FALSE(ev[0].renewal);
  EXPECT_EQ(ev[0].valid_until, sent + kV);
  EXPECT_EQ(l_.Current().valid_until, sent + kV);
  EXPECT_EQ(l_.deadline(), sent + kV);
  // Only LEADER carries a bound.
  clock_.Advance(kV);
  l_.Tick();
  ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].state, LeaderState::kLost);
  EXPECT_FALSE(ev[0].valid_until.has_value());
}

TEST_F(LeadershipTest, AConfirmationThatDoesNotMoveTheBoundSendsNothing) {
  BecomeLeader();
  l_.ObserveConfirmation(Confirm(11));  // the same heartbeat again
  clock_.Advance(absl::Milliseconds(300));
  Write(12, View(12, kMe, kMe, 42));  // not covered by any confirmation
  l_.ObserveConfirmation(Confirm(11));
  EXPECT_THAT(l_.TakeEvents(), IsEmpty());
  EXPECT_EQ(l_.deadline(), t0_ + kV);
}

TEST_F(LeadershipTest, ABoundThatPassedIsLostBeforeLeaderAgain) {
  BecomeLeader();
  clock_.Advance(absl::Milliseconds(500));
  const absl::Duration sent = clock_.Monotonic();
  Write(12, View(12, kMe, kMe, 42));
  // The bound t0 + V passes before the timer ticks (it runs late); then the
  // confirmation of write 12 arrives. The app stopped at its bound: it hears
  // LOST, then LEADER with the new bound — never a renewal that would extend
  // a bound already passed.
  clock_.Advance(t0_ + kV - clock_.Monotonic());
  l_.ObserveConfirmation(Confirm(12));
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(2));
  EXPECT_EQ(ev[0].state, LeaderState::kLost);
  EXPECT_EQ(ev[0].reason, "confirmation lapsed");
  EXPECT_EQ(ev[1].state, LeaderState::kLeader);
  EXPECT_FALSE(ev[1].renewal);
  EXPECT_EQ(ev[1].grant.token, 42);
  EXPECT_EQ(ev[1].valid_until, sent + kV);
}

TEST_F(LeadershipTest, ABoundNeverMovesEarlierWithoutLost) {
  BecomeLeader();
  clock_.Advance(absl::Milliseconds(500));
  const absl::Duration sent = clock_.Monotonic();
  Write(12, View(12, kMe, kMe, 42));
  l_.ObserveConfirmation(Confirm(12));
  ASSERT_EQ(l_.deadline(), sent + kV);
  l_.TakeEvents();
  // The status now names another session whose confirmation covers only my
  // first write: the rule's deadline is earlier than the bound the app has.
  l_.ObserveObject(View(13, kMe, kMe, 42, /*confirmed_rv=*/11, "s2"));
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(2));
  EXPECT_EQ(ev[0].state, LeaderState::kLost);
  EXPECT_EQ(ev[0].reason, "the confirmation of the grant moved earlier");
  EXPECT_EQ(ev[1].state, LeaderState::kLeader);
  EXPECT_FALSE(ev[1].renewal);
  EXPECT_EQ(ev[1].valid_until, t0_ + kV);
  EXPECT_EQ(l_.deadline(), t0_ + kV);
}

TEST_F(LeadershipTest,
       LateConfirmationDoesNotExtendValidityBeyondSendTimePlusV) {
  l_.ObserveObject(View(5, "", "", 0));
  absl::Duration sent = clock_.Monotonic();
  Write(10, View(10, kMe, "", 0));
  l_.ObserveObject(View(11, kMe, kMe, 42));
  // The confirmation of write 10 is delivered 1.5 s late by a slow watch.
  clock_.Advance(absl::Milliseconds(1500));
  l_.ObserveConfirmation(Confirm(11));
  ASSERT_EQ(l_.state(), LeaderState::kLeader);
  EXPECT_EQ(*l_.deadline(), sent + kV);  // not arrival + V
  clock_.Advance(sent + kV - clock_.Monotonic());
  l_.Tick();
  EXPECT_EQ(l_.state(), LeaderState::kLost);
}

TEST_F(LeadershipTest, ConfirmationArrivingAfterValidityEndedNeverSaysLeader) {
  l_.ObserveObject(View(5, "", "", 0));
  Write(10, View(10, kMe, "", 0));
  l_.ObserveObject(View(11, kMe, kMe, 42));
  clock_.Advance(kV);
  l_.ObserveConfirmation(Confirm(11));
  EXPECT_EQ(l_.state(), LeaderState::kNoLeader);
  EXPECT_THAT(l_.TakeEvents(), IsEmpty());
}

TEST_F(LeadershipTest,
       ConfirmationCoveringOnlyAnOlderWriteCountsFromThatWrite) {
  l_.ObserveObject(View(5, "", "", 0));
  absl::Duration first = clock_.Monotonic();
  Write(10, View(10, kMe, "", 0));
  l_.ObserveObject(View(11, kMe, kMe, 42));
  clock_.Advance(absl::Milliseconds(500));
  Write(12, View(12, kMe, kMe, 42));
  // The controller had processed up to 11 only: write 12 is not covered, write
  // 10 is.
  l_.ObserveConfirmation(Confirm(11));
  EXPECT_EQ(*l_.deadline(), first + kV);
}

TEST_F(LeadershipTest,
       ConfirmationBeforeTheWriteResponseCountsOnceTheWriteIsRecorded) {
  l_.ObserveObject(View(5, "", "", 0));
  absl::Duration sent = clock_.Monotonic();
  // The watch brings the grant and the heartbeat before my write's response is
  // processed.
  l_.ObserveObject(View(11, kMe, kMe, 42));
  l_.ObserveConfirmation(Confirm(11));
  EXPECT_EQ(l_.state(), LeaderState::kNoLeader);
  l_.RecordWrite(10, sent);
  EXPECT_EQ(l_.state(), LeaderState::kLeader);
  EXPECT_EQ(*l_.deadline(), sent + kV);
}

TEST_F(LeadershipTest, OutOfOrderConfirmationsNeverShrinkValidity) {
  BecomeLeader();
  clock_.Advance(absl::Milliseconds(500));
  absl::Duration sent = clock_.Monotonic();
  Write(12, View(12, kMe, kMe, 42));
  l_.ObserveConfirmation(Confirm(12));
  l_.ObserveConfirmation(Confirm(10));  // an older heartbeat delivered late
  EXPECT_EQ(*l_.deadline(), sent + kV);
}

TEST_F(LeadershipTest, ConfirmationsOfAnotherSessionAreIgnored) {
  l_.ObserveObject(View(5, "", "", 0));
  Write(10, View(10, kMe, "", 0));
  l_.ObserveObject(View(11, kMe, kMe, 42));
  l_.ObserveConfirmation(Confirm(11, "other-session"));
  EXPECT_EQ(l_.state(), LeaderState::kNoLeader);
  EXPECT_FALSE(l_.ValidUntil(kSession).has_value());
  // And once leading, a newer confirmation of another session does not extend
  // validity.
  l_.ObserveConfirmation(Confirm(11));
  ASSERT_EQ(l_.state(), LeaderState::kLeader);
  absl::Duration d = *l_.deadline();
  clock_.Advance(absl::Milliseconds(500));
  Write(12, View(12, kMe, kMe, 42));
  l_.ObserveConfirmation(Confirm(12, "other-session"));
  EXPECT_EQ(*l_.deadline(), d);
}

TEST_F(LeadershipTest, StatusNamingANewSessionNeedsThatSessionsConfirmation) {
  BecomeLeader();
  // The controller restarted: same token cannot survive a new session, but even
  // if the status only changed its session, the old session's confirmations no
  // longer count.
  l_.ObserveObject(View(12, kMe, kMe, 42, 0, "new-session"));
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].state, LeaderState::kLost);
}

TEST_F(LeadershipTest, OutOfOrderObjectVersionsAreIgnored) {
  BecomeLeader();
  // A stale watch event (rv 8 < 11) claiming another leader changes nothing.
  l_.ObserveObject(View(8, kOther, kOther, 7));
  EXPECT_EQ(l_.state(), LeaderState::kLeader);
  EXPECT_EQ(l_.latest_rv(), 11);
  // Neither does a replay of the current version.
  l_.ObserveObject(View(11, kMe, "", 0));
  EXPECT_EQ(l_.state(), LeaderState::kLeader);
  EXPECT_THAT(l_.TakeEvents(), IsEmpty());
}

TEST_F(LeadershipTest, RevokedStatusIsLostBeforeTheNextWriteMayBeSent) {
  BecomeLeader();
  // The write invariant: a write based on rv 13 may not be sent before rv 13
  // was applied.
  EXPECT_TRUE(l_.CheckWritePrecondition(11).ok());
  absl::Status s = l_.CheckWritePrecondition(13);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("13"));
  l_.ObserveObject(View(13, kMe, "", 0));  // the controller revokes
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(2));
  EXPECT_EQ(ev[0].state, LeaderState::kLost);
  EXPECT_EQ(ev[0].grant.token, 42);
  EXPECT_EQ(ev[0].reason, "the controller revoked the grant");
  EXPECT_EQ(ev[1].state, LeaderState::kNoLeader);
  // Now the ack may be written.
  EXPECT_TRUE(l_.CheckWritePrecondition(13).ok());
}

TEST_F(LeadershipTest, AnotherCandidateGrantedIsLostThenFollower) {
  BecomeLeader();
  l_.ObserveObject(View(12, kOther, kOther, 50));
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(2));
  EXPECT_EQ(ev[0].state, LeaderState::kLost);
  EXPECT_THAT(ev[0].reason, HasSubstr("another candidate was granted"));
  EXPECT_EQ(ev[1].state, LeaderState::kFollower);
  EXPECT_EQ(ev[1].grant.leader, kOther);
  EXPECT_EQ(ev[1].grant.token, 50);
}

TEST_F(LeadershipTest, LosingTheLocalSpecHolderIsLost) {
  BecomeLeader();
  // Another local replica took the spec over (status still names me until the
  // controller acts).
  l_.ObserveObject(View(12, kOther, kMe, 42));
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].state, LeaderState::kLost);
  EXPECT_THAT(ev[0].reason, HasSubstr("no longer the local candidate"));
  EXPECT_EQ(l_.Current().state, LeaderState::kLost);
}

TEST_F(LeadershipTest, NewTokenIsLostOfTheOldGrantThenLeaderOfTheNew) {
  BecomeLeader();
  l_.ObserveObject(View(12, kMe, kMe, 60, /*confirmed_rv=*/11));
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(2));
  EXPECT_EQ(ev[0].state, LeaderState::kLost);
  EXPECT_EQ(ev[0].grant.token, 42);
  EXPECT_EQ(ev[1].state, LeaderState::kLeader);
  EXPECT_EQ(ev[1].grant.token, 60);
}

TEST_F(LeadershipTest, FreshConfirmationAfterALapseLeadsAgain) {
  BecomeLeader();
  clock_.Advance(kV);
  l_.Tick();
  ASSERT_EQ(l_.state(), LeaderState::kLost);
  l_.TakeEvents();
  absl::Duration sent = clock_.Monotonic();
  Write(12, View(12, kMe, kMe, 42));
  // Unconfirmed: stays LOST, no NO_LEADER noise.
  EXPECT_EQ(l_.state(), LeaderState::kLost);
  EXPECT_THAT(l_.TakeEvents(), IsEmpty());
  l_.ObserveConfirmation(Confirm(12));
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].state, LeaderState::kLeader);
  EXPECT_EQ(*l_.deadline(), sent + kV);
}

TEST_F(LeadershipTest, DeletedLockIsLostThenNoLeader) {
  BecomeLeader();
  LeaseView gone;
  gone.resource_version = 12;
  gone.exists = false;
  l_.ObserveObject(gone);
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(2));
  EXPECT_EQ(ev[0].state, LeaderState::kLost);
  EXPECT_EQ(ev[0].reason, "the lock was deleted");
  EXPECT_EQ(ev[1].state, LeaderState::kNoLeader);
}

TEST_F(LeadershipTest, DeletionCarryingTheLastStatesVersionStillApplies) {
  BecomeLeader();
  LeaseView gone;
  // The informer found it gone on a relist: last known state's rv.
  gone.resource_version = 11;
  gone.exists = false;
  l_.ObserveObject(gone);
  EXPECT_EQ(l_.state(), LeaderState::kNoLeader);
  // A re-created object has a larger version and applies; an older deletion
  // does not.
  l_.ObserveObject(View(15, kOther, kOther, 70));
  EXPECT_EQ(l_.state(), LeaderState::kFollower);
  gone.resource_version = 14;
  l_.ObserveObject(gone);
  EXPECT_EQ(l_.state(), LeaderState::kFollower);
}

TEST_F(LeadershipTest, CloseWhileLeadingIsLostAndThenSilent) {
  BecomeLeader();
  l_.Close("resigned");
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].state, LeaderState::kLost);
  EXPECT_EQ(ev[0].reason, "resigned");
  EXPECT_TRUE(l_.closed());
  l_.ObserveObject(View(20, kOther, kOther, 70));
  l_.Tick();
  EXPECT_THAT(l_.TakeEvents(), IsEmpty());
}

TEST_F(LeadershipTest, CloseAfterAnUnnoticedLapseReportsTheLapse) {
  BecomeLeader();
  clock_.Advance(kV + absl::Seconds(1));  // the timer has not fired yet
  l_.Close("resigned");
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].reason, "confirmation lapsed");
}

TEST_F(LeadershipTest, CloseWhenNotLeadingEmitsNothing) {
  l_.ObserveObject(View(3, kOther, kOther, 7));
  l_.TakeEvents();
  l_.Close("resigned");
  EXPECT_THAT(l_.TakeEvents(), IsEmpty());
}

TEST_F(LeadershipTest, GrantForMyIdentityInAnotherClusterIsNotMine) {
  Leadership l(Leadership::Options{kMe, kInstance, "cluster-1"}, &clock_);
  l.ObserveObject(View(5, "", "", 0));
  l.RecordWrite(10, clock_.Monotonic());
  l.ObserveObject(View(11, kMe, kMe, 42, 10));  // grant says cluster-0
  EXPECT_EQ(l.state(), LeaderState::kFollower);
  EXPECT_EQ(l.Current().grant.cluster, "cluster-0");
}

TEST_F(LeadershipTest, ExplicitClusterMatchingTheGrantLeads) {
  Leadership l(Leadership::Options{kMe, kInstance, "cluster-0"}, &clock_);
  l.RecordWrite(10, clock_.Monotonic());
  l.ObserveObject(View(11, kMe, kMe, 42, 10));
  EXPECT_EQ(l.state(), LeaderState::kLeader);
}

TEST_F(LeadershipTest,
       GrantWithoutAHeartbeatNameCannotBeAttributedToMyCluster) {
  l_.RecordWrite(10, clock_.Monotonic());
  LeaseView v = View(11, kMe, kMe, 42, 10);
  v.heartbeat = "";
  l_.ObserveObject(v);
  EXPECT_EQ(l_.state(), LeaderState::kNoLeader);
}

TEST_F(LeadershipTest, RememberedWritesAreBounded) {
  Leadership l(Leadership::Options{kMe, kInstance, "", 4}, &clock_);
  for (int64_t rv = 1; rv <= 10; ++rv) {
    l.RecordWrite(rv, clock_.Monotonic());
    clock_.Advance(absl::Milliseconds(10));
  }
  l.ObserveObject(View(11, kMe, kMe, 42));
  l.ObserveConfirmation(Confirm(5));  // write 5 was forgotten: cannot be used
  EXPECT_EQ(l.state(), LeaderState::kNoLeader);
  l.ObserveConfirmation(Confirm(8));
  EXPECT_EQ(l.state(), LeaderState::kLeader);
}

// One identity, two candidacies: only the grant of my instance is mine.
TEST_F(LeadershipTest, AGrantToAnotherCandidacyOfMyIdentityIsNotMine) {
  l_.ObserveObject(View(5, "", "", 0));
  Write(10, View(10, kMe, "", 0));
  LeaseView v = View(11, kMe, kMe, 42, /*confirmed_rv=*/11);
  v.holder_instance = kOtherInstance;  // the other candidacy took the spec
  v.grant.instance = kOtherInstance;   // and was granted
  l_.ObserveObject(v);
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].state, LeaderState::kFollower);
  EXPECT_EQ(ev[0].grant.token, 42);
}

TEST_F(LeadershipTest, TheRuleNeedsMyInstanceInSpecAndStatus) {
  BecomeLeader();
  // The spec now names another candidacy of my identity; the status still
  // names me: LOST before anything else.
  LeaseView v = View(12, kMe, kMe, 42, /*confirmed_rv=*/11);
  v.holder_instance = kOtherInstance;
  l_.ObserveObject(v);
  auto ev = l_.TakeEvents();
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].state, LeaderState::kLost);
  EXPECT_THAT(ev[0].reason, HasSubstr("another candidacy of identity"));
  EXPECT_THAT(ev[0].reason, HasSubstr(kOtherInstance));
}

TEST_F(LeadershipTest, AGrantThatNamesNoInstanceIsNeverLeadership) {
  // A controller older than this sidecar grants without leaderInstance: no
  // candidacy can tell whether it is the one granted, so none leads.
  l_.ObserveObject(View(5, "", "", 0));
  Write(10, View(10, kMe, "", 0));
  LeaseView v = View(11, kMe, kMe, 42, /*confirmed_rv=*/10);
  v.grant.instance.clear();
  l_.ObserveObject(v);
  EXPECT_EQ(l_.state(), LeaderState::kNoLeader);
  EXPECT_THAT(l_.TakeEvents(), IsEmpty());
}

}  // namespace
}  // namespace mcl::sidecar
