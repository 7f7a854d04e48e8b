// Election on a FakeClock, with the apiserver played by FakeKube and the
// controller by the test: campaign, renewal, confirmation, lapse, resign,
// stream end, observers, shutdown. The threads are the real ones (spec
// writer, deadline timer, watch delivery); only time is simulated.
#include "sidecar/election.h"

#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "common/contract.h"
#include "common/kube/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/testing/fake_kube.h"
#include "sidecar/testing/recording_sink.h"

namespace mcl::sidecar {
namespace {

using ::mcl::sidecar::testing::FakeKube;
using ::mcl::sidecar::testing::RecordingSink;
using ::testing::HasSubstr;

constexpr char kNs[] = "default";
constexpr char kLock[] = "lock-a";
constexpr char kSession[] = "5e55";
const std::string kHeartbeatName = contract::HeartbeatLeaseName("cluster-0");
const absl::Duration kTtl = absl::Seconds(2);
const absl::Duration kLease = absl::Seconds(2);
// V = TTL·(1 − ρ) − m: how long after the send time of a confirmed write the
// sidecar may say LEADER.
const absl::Duration kValidity = contract::ValidityAfterConfirmedWrite(kTtl);

using Lease = std::optional<kube::MultiClusterLease>;

int64_t Rv(const kube::MultiClusterLease& o) {
  return std::stoll(o.metadata.resource_version);
}

class ElectionTest : public ::testing::Test {
 protected:
  ElectionTest() {
    ElectionOptions o;
    o.default_namespace = kNs;
    o.default_identity = "default-id";
    o.clock = &clock_;
    election_ = std::make_unique<Election>(o, kube_.Store(), kube_.Watches());
  }
  ~ElectionTest() override {
    kube_.HoldWrites(false);
    election_.reset();
  }

  LockKey Key(const std::string& name = kLock) { return LockKey{kNs, name}; }
  // Another sidecar of the same cluster: its own Election on the same
  // apiserver and clock.
  std::unique_ptr<Election> AnotherSidecar() {
    ElectionOptions o;
    o.default_namespace = kNs;
    o.clock = &clock_;
    return std::make_unique<Election>(o, kube_.Store(), kube_.Watches());
  }

  std::shared_ptr<RecordingSink> Sink() {
    return std::make_shared<RecordingSink>(&clock_);
  }

  // Starts a campaign of `identity` and waits until its create or take-over
  // of the spec was accepted (at fake time now).
  std::shared_ptr<RecordingSink> Campaign(const std::string& identity,
                                          uint64_t* id = nullptr,
                                          const std::string& lock = kLock) {
    auto sink = Sink();
    auto r = election_->StartCampaign(Key(lock), identity, kLease, sink);
    EXPECT_TRUE(r.ok()) << r.status();
    if (id != nullptr && r.ok()) *id = *r;
    return sink;
  }
  bool WaitHolder(const std::string& identity,
                  const std::string& lock = kLock) {
    return kube_.WaitFor(kNs, lock, [&](const Lease& l) {
      return l && l->spec.holder_identity.value_or("") == identity;
    });
  }
  // The controller grants the spec's holder with `token`, confirming the
  // spec's current version (the status of a grant carries the confirmation
  // of the keepalive before it).
  kube::MultiClusterLease Grant(int64_t token,
                                const std::string& lock = kLock) {
    Lease cur = kube_.Get(kNs, lock);
    EXPECT_TRUE(cur.has_value());
    const std::string holder = cur->spec.holder_identity.value_or("");
    const std::string instance = cur->spec.holder_instance.value_or("");
    const int64_t confirmed = Rv(*cur);
    auto r =
        kube_.UpdateStatus(kNs, lock, [&](kube::MultiClusterLeaseStatus& s) {
          s.leader = holder;
          s.leader_instance = instance;
          s.leader_cluster = "cluster-0";
          s.fencing_token = token;
          s.session = kSession;
          s.heartbeat = absl::StrCat(kNs, "/", kHeartbeatName);
          s.session_ttl_milliseconds = absl::ToInt64Milliseconds(kTtl);
          s.confirmed_resource_version = absl::StrCat(confirmed);
        });
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  }
  void Revoke(const std::string& lock = kLock) {
    auto r =
        kube_.UpdateStatus(kNs, lock, [](kube::MultiClusterLeaseStatus& s) {
          s.leader.clear();
          s.leader_cluster.clear();
          s.fencing_token = 0;
        });
    EXPECT_TRUE(r.ok()) << r.status();
  }
  // A heartbeat confirming every write up to resourceVersion `c` (default:
  // the latest).
  void Confirm(int64_t c = 0) {
    kube_.PublishHeartbeat(kNs, kHeartbeatName, kSession,
                           c > 0 ? c : kube_.rv(), kTtl);
  }
  // Leads lock-a as `identity` with token 7; returns the sink and sets
  // `*confirmed_at` to the send time of the confirmed write.
  std::shared_ptr<RecordingSink> Lead(const std::string& identity,
                                      absl::Duration* confirmed_at,
                                      uint64_t* id = nullptr) {
    *confirmed_at = clock_.Monotonic();  // the create is sent at this time
    auto sink = Campaign(identity, id);
    EXPECT_TRUE(WaitHolder(identity));
    Grant(7);
    auto led = sink->WaitFor(LeaderState::kLeader);
    EXPECT_TRUE(led.has_value()) << sink->Describe();
    if (led) {
      EXPECT_EQ(led->e.event.grant.token, 7);
    }
    return sink;
  }

  FakeClock clock_;
  FakeKube kube_;
  std::unique_ptr<Election> election_;
};

TEST_F(ElectionTest, CampaignCreatesTheLockAndLeadsOnceGrantedAndConfirmed) {
  auto sink = Campaign("a");
  auto first = sink->Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->e.event.state, LeaderState::kNoLeader);
  ASSERT_TRUE(WaitHolder("a"));
  Lease l = kube_.Get(kNs, kLock);
  EXPECT_EQ(l->spec.lease_duration_seconds, 2);
  Grant(7);
  auto led = sink->WaitFor(LeaderState::kLeader);
  ASSERT_TRUE(led.has_value()) << sink->Describe();
  EXPECT_EQ(led->e.event.grant.leader, "a");
  EXPECT_EQ(led->e.event.grant.cluster, "cluster-0");
  EXPECT_EQ(led->e.lock.str(), "default/lock-a");
  auto m = election_->Metrics();
  EXPECT_TRUE(m["default/lock-a"].is_leader);
  EXPECT_EQ(m["default/lock-a"].transitions, 1);
  EXPECT_EQ(m["default/lock-a"].campaigns, 1);
}

TEST_F(ElectionTest, AGrantWithoutAConfirmationOfMyWriteIsNotLeadership) {
  auto sink = Campaign("a");
  ASSERT_TRUE(WaitHolder("a"));
  const std::string instance =
      kube_.Get(kNs, kLock)->spec.holder_instance.value_or("");
  auto r =
      kube_.UpdateStatus(kNs, kLock, [&](kube::MultiClusterLeaseStatus& s) {
        s.leader = "a";
        s.leader_instance = instance;
        s.leader_cluster = "cluster-0";
        s.fencing_token = 7;
        s.session = kSession;
        s.heartbeat = absl::StrCat(kNs, "/", kHeartbeatName);
        s.session_ttl_milliseconds = 2000;
      });
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(kube_.DrainWatches());
  EXPECT_FALSE(sink->WaitFor(LeaderState::kLeader, absl::Milliseconds(50)));
  Confirm();  // confirms the create
  EXPECT_TRUE(sink->WaitFor(LeaderState::kLeader).has_value())
      << sink->Describe();
}

TEST_F(ElectionTest, TheHolderRenewsEveryQuarterOfItsLease) {
  absl::Duration t0;
  auto sink = Lead("a", &t0);
  const std::string renew0 = kube_.Get(kNs, kLock)->spec.renew_time;
  const int writes = kube_.writes();
  clock_.Advance(kLease / 4);
  ASSERT_TRUE(kube_.WaitFor(kNs, kLock, [&](const Lease& l) {
    return l && l->spec.renew_time != renew0;
  }));
  EXPECT_EQ(kube_.writes(), writes + 1);
  EXPECT_EQ(kube_.Get(kNs, kLock)->spec.holder_identity.value_or(""), "a");
}

TEST_F(ElectionTest, ConfirmedRenewalsKeepLeadershipAndTheirLapseIsLost) {
  absl::Duration t0;
  auto sink = Lead("a", &t0);
  // Renew and confirm three times: each confirmation counts from the send
  // time of the renewal it confirms, and moves the bound forward: a LEADER
  // renewal with the new bound.
  absl::Duration last_confirmed = t0;
  for (int i = 0; i < 3; ++i) {
    const int64_t before = kube_.rv();
    clock_.Advance(kLease / 4);
    const absl::Duration sent = clock_.Monotonic();
    ASSERT_TRUE(kube_.WaitFor(
        kNs, kLock, [&](const Lease& l) { return l && Rv(*l) > before; }));
    Confirm();
    auto renewal = sink->WaitFor(LeaderState::kLeader);
    ASSERT_TRUE(renewal.has_value()) << sink->Describe();
    EXPECT_TRUE(renewal->e.event.renewal);
    EXPECT_EQ(renewal->e.event.grant.token, 7);
    EXPECT_EQ(renewal->e.event.valid_until, sent + kValidity);
    last_confirmed = sent;
  }
  EXPECT_TRUE(sink->Quiet()) << sink->Describe();
  // Confirmations stop; renewals go on. LOST comes at T_w* + V, not before.
  const absl::Duration deadline = last_confirmed + kValidity;
  while (clock_.Monotonic() + kLease / 4 < deadline) {
    clock_.Advance(kLease / 4);
  }
  EXPECT_FALSE(sink->WaitFor(LeaderState::kLost, absl::Milliseconds(50)))
      << sink->Describe();
  clock_.Advance(deadline - clock_.Monotonic());
  auto lost = sink->WaitFor(LeaderState::kLost);
  ASSERT_TRUE(lost.has_value()) << sink->Describe();
  EXPECT_EQ(lost->e.event.reason, "confirmation lapsed");
  EXPECT_EQ(lost->e.event.grant.token, 7);
  EXPECT_GE(lost->mono, deadline);
  EXPECT_FALSE(election_->Metrics()["default/lock-a"].is_leader);
  // A fresh confirmation of a newer renewal: LEADER again, same token.
  const int64_t before = kube_.rv();
  clock_.Advance(kLease / 4);
  ASSERT_TRUE(kube_.WaitFor(
      kNs, kLock, [&](const Lease& l) { return l && Rv(*l) > before; }));
  Confirm();
  auto again = sink->WaitFor(LeaderState::kLeader);
  ASSERT_TRUE(again.has_value()) << sink->Describe();
  EXPECT_EQ(again->e.event.grant.token, 7);
  EXPECT_FALSE(again->e.event.renewal);
  EXPECT_EQ(election_->Metrics()["default/lock-a"].transitions, 2);
}

// A deadline never waits behind I/O: the renewal hangs (the link to the
// apiserver holds bytes), and LOST still goes out at the deadline.
TEST_F(ElectionTest, LostComesAtItsDeadlineWhileASpecWriteHangs) {
  absl::Duration t0;
  auto sink = Lead("a", &t0);
  kube_.HoldWrites(true);
  clock_.Advance(kLease / 4);  // the renewal is sent, and hangs
  ASSERT_TRUE(kube_.WaitForHeldWrites(1));
  clock_.Advance(t0 + kValidity - clock_.Monotonic());
  auto lost = sink->WaitFor(LeaderState::kLost, absl::Seconds(5));
  ASSERT_TRUE(lost.has_value())
      << "no LOST while the write hangs: " << sink->Describe();
  EXPECT_EQ(lost->e.event.reason, "confirmation lapsed");
  EXPECT_GE(lost->mono, t0 + kValidity);
  EXPECT_FALSE(election_->Metrics()["default/lock-a"].is_leader);
}

// The same when the request that hangs is the read after a conflict.
TEST_F(ElectionTest, LostComesAtItsDeadlineWhileTheReadAfterAConflictHangs) {
  absl::Duration t0;
  auto sink = Lead("a", &t0);
  kube_.FailWrites(
      kube::WithKubeDetails(absl::AbortedError("conflict"), "Conflict", 409),
      1);
  kube_.HoldWrites(true, /*reads=*/true);
  clock_.Advance(kLease / 4);  // the renewal conflicts; the re-read hangs
  ASSERT_TRUE(kube_.WaitForHeldWrites(1));
  clock_.Advance(t0 + kValidity - clock_.Monotonic());
  auto lost = sink->WaitFor(LeaderState::kLost, absl::Seconds(5));
  ASSERT_TRUE(lost.has_value())
      << "no LOST while the read hangs: " << sink->Describe();
  EXPECT_GE(lost->mono, t0 + kValidity);
}

// Nor do events to observers: they come from the watch, not the writer.
TEST_F(ElectionTest, ObserversHearOfANewGrantWhileASpecWriteHangs) {
  absl::Duration t0;
  auto sink = Lead("a", &t0);
  auto obs = Sink();
  ASSERT_TRUE(election_->StartObserve(Key(), obs).ok());
  ASSERT_TRUE(obs->WaitFor(LeaderState::kFollower).has_value());
  kube_.HoldWrites(true);
  clock_.Advance(kLease / 4);  // the renewal is sent, and hangs
  ASSERT_TRUE(kube_.WaitForHeldWrites(1));
  Grant(9);
  auto f = obs->WaitFor(LeaderState::kFollower, absl::Seconds(5));
  ASSERT_TRUE(f.has_value()) << obs->Describe();
  EXPECT_EQ(f->e.event.grant.token, 9);
}

TEST_F(ElectionTest, RevocationIsLostWithoutWaitingForAWrite) {
  absl::Duration t0;
  auto sink = Lead("a", &t0);
  const int writes = kube_.writes();
  Revoke();
  auto lost = sink->WaitFor(LeaderState::kLost);
  ASSERT_TRUE(lost.has_value()) << sink->Describe();
  EXPECT_EQ(lost->e.event.reason, "the controller revoked the grant");
  // No spec write was made between the revocation and LOST: LOST is applied
  // in the same critical section as the version that revokes.
  EXPECT_EQ(kube_.writes(), writes);
}

TEST_F(ElectionTest, ResignReleasesTheSpecThenEndsTheStream) {
  absl::Duration t0;
  auto sink = Lead("a", &t0);
  absl::Notification done;
  absl::StatusOr<bool> result;
  election_->Resign(Key(), "", [&](absl::StatusOr<bool> r) {
    result = r;
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(*result);
  EXPECT_FALSE(kube_.Get(kNs, kLock)->spec.holder_identity.has_value());
  auto lost = sink->WaitFor(LeaderState::kLost);
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->e.event.reason, "resigned");
  auto end = sink->WaitFinished();
  ASSERT_TRUE(end.has_value());
  EXPECT_TRUE(end->ok()) << *end;
  // `mcl status` lists campaigns; this lock has none left.
  EXPECT_EQ(election_->Metrics()["default/lock-a"].campaigns, 0);
  // Nothing left to resign.
  absl::Notification again;
  election_->Resign(Key(), "a", [&](absl::StatusOr<bool> r) {
    result = r;
    again.Notify();
  });
  ASSERT_TRUE(again.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(absl::IsFailedPrecondition(result.status())) << result.status();
}

TEST_F(ElectionTest, AStreamEndReportedFromInsideASendResignsAtOnce) {
  absl::Duration t0;
  uint64_t id = 0;
  auto sink = Lead("a", &t0, &id);
  // The stream goes away while an event is being handed to it (the core's
  // mutex is held): EndCampaign must not block or re-enter.
  sink->set_on_send([&](const StreamEvent&) {
    election_->EndCampaign(id, "the Campaign stream was cancelled");
  });
  Revoke();
  ASSERT_TRUE(kube_.WaitFor(kNs, kLock, [](const Lease& l) {
    return l && !l->spec.holder_identity.has_value();
  }));
  auto lost = sink->WaitFor(LeaderState::kLost);
  ASSERT_TRUE(lost.has_value()) << sink->Describe();
}

TEST_F(ElectionTest, ACampaignInANamespaceThatDoesNotExistEndsWithNotFound) {
  auto sink = Sink();
  auto id = election_->StartCampaign(LockKey{"nope", kLock}, "a", kLease, sink);
  ASSERT_TRUE(id.ok()) << id.status();
  auto first = sink->Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->e.event.state, LeaderState::kNoLeader);
  auto end = sink->WaitFinished();
  ASSERT_TRUE(end.has_value());
  EXPECT_TRUE(absl::IsNotFound(*end)) << *end;
  EXPECT_THAT(std::string(end->message()),
              HasSubstr("namespace \"nope\" does not exist in this cluster"));
  EXPECT_THAT(std::string(end->message()), HasSubstr("nope/lock-a"));
  // Given up, not retried: the campaign is gone, and its identity may
  // campaign again (and fails the same way until the namespace exists).
  kube_.AddNamespace("nope");
  auto again = Sink();
  ASSERT_TRUE(
      election_->StartCampaign(LockKey{"nope", kLock}, "a", kLease, again)
          .ok());
  EXPECT_TRUE(kube_.WaitFor("nope", kLock, [](const Lease& l) {
    return l && l->spec.holder_identity == "a";
  }));
  EXPECT_FALSE(again->WaitFinished(absl::Milliseconds(50)).has_value());
}

TEST_F(ElectionTest, SecondCampaignOfOneIdentityIsRefused) {
  auto sink = Campaign("a");
  auto again = election_->StartCampaign(Key(), "a", kLease, Sink());
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
  EXPECT_THAT(std::string(again.status().message()),
              HasSubstr("already campaigns for lock default/lock-a"));
}

TEST_F(ElectionTest, ALiveHolderIsTakenOverOnlyAfterItsLeaseWithoutRenewal) {
  auto a = Campaign("a");
  ASSERT_TRUE(WaitHolder("a"));
  // A second sidecar of the cluster, on the same apiserver.
  std::unique_ptr<Election> other = AnotherSidecar();
  auto bsink = Sink();
  ASSERT_TRUE(other->StartCampaign(Key(), "b", kLease, bsink).ok());
  // "a" renews every quarter of its lease: "b" never takes over.
  for (int i = 0; i < 8; ++i) {
    const int64_t before = kube_.rv();
    clock_.Advance(kLease / 4);
    ASSERT_TRUE(kube_.WaitFor(
        kNs, kLock, [&](const Lease& l) { return l && Rv(*l) > before; }));
    ASSERT_TRUE(kube_.DrainWatches());
    EXPECT_EQ(kube_.Get(kNs, kLock)->spec.holder_identity.value_or(""), "a");
  }
  // "a"'s sidecar crashes (no release): "b" takes over once the spec has
  // not changed for a whole lease on its clock, and not before.
  election_.reset();
  clock_.Advance(kLease - absl::Milliseconds(1));
  ASSERT_TRUE(kube_.DrainWatches());
  EXPECT_FALSE(kube_.WaitFor(
      kNs, kLock,
      [](const Lease& l) { return l && l->spec.holder_identity == "b"; },
      absl::Milliseconds(50)));
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(WaitHolder("b"));
}

TEST_F(ElectionTest, ObserversOfALockAllSeeTheSameSequence) {
  auto o1 = Sink();
  auto o2 = Sink();
  ASSERT_TRUE(election_->StartObserve(Key(), o1).ok());
  auto a = Campaign("a");
  ASSERT_TRUE(WaitHolder("a"));
  ASSERT_TRUE(election_->StartObserve(Key(), o2).ok());
  Grant(7);
  Grant(9);
  Revoke();
  ASSERT_TRUE(kube_.DrainWatches());
  auto seq = [](RecordingSink& s) {
    std::vector<std::string> out;
    for (const auto& r : s.events())
      out.push_back(absl::StrCat(LeaderStateName(r.e.event.state), "/",
                                 r.e.event.grant.token));
    return out;
  };
  std::vector<std::string> want = {"NO_LEADER/0", "FOLLOWER/7", "FOLLOWER/9",
                                   "NO_LEADER/0"};
  EXPECT_EQ(seq(*o1), want);
  EXPECT_EQ(seq(*o2), want);
}

TEST_F(ElectionTest, ShutdownResignsEveryCampaignAndEndsEveryStream) {
  absl::Duration t0;
  auto sink = Lead("a", &t0);
  auto obs = Sink();
  ASSERT_TRUE(election_->StartObserve(Key(), obs).ok());
  election_->Shutdown(absl::Seconds(5));
  auto lost = sink->WaitFor(LeaderState::kLost);
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->e.event.reason, "the sidecar is shutting down");
  EXPECT_FALSE(kube_.Get(kNs, kLock)->spec.holder_identity.has_value());
  // UNAVAILABLE, not OK: the app did not ask to stop, so its library must
  // campaign again (OK is Resign's).
  auto end = sink->WaitFinished();
  ASSERT_TRUE(end.has_value());
  EXPECT_TRUE(absl::IsUnavailable(*end)) << *end;
  EXPECT_EQ(end->message(), "the sidecar is shutting down");
  auto oend = obs->WaitFinished();
  ASSERT_TRUE(oend.has_value());
  EXPECT_TRUE(absl::IsUnavailable(*oend)) << *oend;
  auto late = election_->StartCampaign(Key("other"), "b", kLease, Sink());
  EXPECT_TRUE(absl::IsUnavailable(late.status())) << late.status();
}

TEST_F(ElectionTest, ShutdownGivesUpOnAHungReleaseAtItsGraceOnTheFakeClock) {
  absl::Duration t0;
  auto sink = Lead("a", &t0);
  kube_.HoldWrites(true);
  std::thread shutdown([&] { election_->Shutdown(absl::Seconds(3)); });
  ASSERT_TRUE(kube_.WaitForHeldWrites(1));
  clock_.Advance(absl::Seconds(3));
  shutdown.join();  // returns at the grace although the release still hangs
  auto end = sink->WaitFinished();
  ASSERT_TRUE(end.has_value());
  EXPECT_TRUE(absl::IsUnavailable(*end)) << *end;
}

// The first reason to end a stream wins: an app that resigned is not told to
// campaign again because the sidecar began shutting down during the release.
TEST_F(ElectionTest, AResignBeforeTheShutdownStillEndsTheStreamWithOk) {
  absl::Duration t0;
  auto sink = Lead("a", &t0);
  kube_.HoldWrites(true);
  election_->Resign(Key(), "a", [](absl::StatusOr<bool>) {});
  ASSERT_TRUE(kube_.WaitForHeldWrites(1));  // the release is in flight
  std::thread shutdown([&] { election_->Shutdown(absl::Seconds(30)); });
  kube_.HoldWrites(false);
  shutdown.join();
  auto end = sink->WaitFinished();
  ASSERT_TRUE(end.has_value());
  EXPECT_TRUE(end->ok()) << *end;
}

TEST_F(ElectionTest, AFailingWatchIsReportedUntilItDeliversAgain) {
  auto sink = Campaign("a");
  ASSERT_TRUE(WaitHolder("a"));
  ASSERT_TRUE(kube_.DrainWatches());
  EXPECT_TRUE(election_->ApiserverStatus().ok());
  kube_.FailWatch(kNs, absl::UnavailableError("connection refused"));
  ASSERT_TRUE(kube_.DrainWatches());
  absl::Status s = election_->ApiserverStatus();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("namespace default: connection refused"));
  Grant(7);  // an event: the watch works again
  ASSERT_TRUE(kube_.DrainWatches());
  EXPECT_TRUE(election_->ApiserverStatus().ok());
}

TEST_F(ElectionTest, LeaderAnswersFromTheCacheAndNotFoundWhenNobodyLeads) {
  EXPECT_TRUE(absl::IsNotFound(election_->Leader(Key()).status()));
  auto sink = Campaign("a");
  ASSERT_TRUE(WaitHolder("a"));
  Grant(7);
  ASSERT_TRUE(kube_.DrainWatches());
  auto g = election_->Leader(Key());
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->leader, "a");
  EXPECT_EQ(g->token, 7);
}

// One identity, two candidacies (PLAN decision 4): a second sidecar of the
// cluster campaigns with an identity that another one's campaign holds.
TEST_F(ElectionTest, ASecondLiveCandidacyOfOneIdentityEndsWithAlreadyExists) {
  absl::Duration t0;
  auto first = Lead("a", &t0);
  const std::string first_instance =
      kube_.Get(kNs, kLock)->spec.holder_instance.value_or("");
  ASSERT_EQ(first_instance.size(), 16u);  // 64 random bits, hex
  std::unique_ptr<Election> other = AnotherSidecar();
  auto second = Sink();
  ASSERT_TRUE(other->StartCampaign(Key(), "a", kLease, second).ok());
  // The first renews: the second sees a live candidacy of its identity.
  const int64_t before = kube_.rv();
  clock_.Advance(kLease / 4);
  ASSERT_TRUE(kube_.WaitFor(
      kNs, kLock, [&](const Lease& l) { return l && Rv(*l) > before; }));
  auto end = second->WaitFinished();
  ASSERT_TRUE(end.has_value()) << second->Describe();
  EXPECT_TRUE(absl::IsAlreadyExists(*end)) << *end;
  EXPECT_THAT(std::string(end->message()),
              HasSubstr("another candidacy of identity \"a\" is renewing "
                        "lock default/lock-a"));
  EXPECT_THAT(std::string(end->message()), HasSubstr(first_instance));
  // It was never told LEADER, and never wrote the spec; the first still
  // leads.
  for (const auto& e : second->events())
    EXPECT_NE(e.e.event.state, LeaderState::kLeader) << second->Describe();
  EXPECT_EQ(kube_.Get(kNs, kLock)->spec.holder_instance, first_instance);
  EXPECT_TRUE(election_->Metrics()["default/lock-a"].is_leader)
      << first->Describe();
}

// A stale candidacy of one's own identity (a sidecar that crashed and came
// back with the same pod name) is taken over after its lease like any other;
// the new candidacy is a new holder, granted with a new token.
TEST_F(ElectionTest, AStaleCandidacyOfOneIdentityIsTakenOverWithANewToken) {
  absl::Duration t0;
  auto first = Lead("a", &t0);
  const std::string old_instance =
      kube_.Get(kNs, kLock)->spec.holder_instance.value_or("");
  election_.reset();  // crash: no release
  std::unique_ptr<Election> restarted = AnotherSidecar();
  auto sink = Sink();
  ASSERT_TRUE(restarted->StartCampaign(Key(), "a", kLease, sink).ok());
  // The old grant names the old instance: not this campaign's.
  auto f = sink->Next();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->e.event.state, LeaderState::kFollower);
  clock_.Advance(kLease);
  ASSERT_TRUE(kube_.WaitFor(kNs, kLock, [&](const Lease& l) {
    return l && l->spec.holder_instance.value_or(old_instance) != old_instance;
  }));
  EXPECT_FALSE(sink->WaitFinished(absl::Milliseconds(50)).has_value());
  // The controller re-points the grant to the new holder with a new token.
  Grant(8);
  auto led = sink->WaitFor(LeaderState::kLeader);
  ASSERT_TRUE(led.has_value()) << sink->Describe();
  EXPECT_EQ(led->e.event.grant.token, 8);
  for (const auto& e : sink->events()) {
    if (e.e.event.state == LeaderState::kLeader) {
      EXPECT_NE(e.e.event.grant.token, 7) << sink->Describe();
    }
  }
}

}  // namespace
}  // namespace mcl::sidecar
