#include "sidecar/candidacy.h"

#include "gtest/gtest.h"

namespace mcl::sidecar {
namespace {

using Action = Candidacy::Action;

constexpr char kMyInstance[] = "a1";

// A version whose spec names `holder` (with instance `instance`; "me" with no
// instance given means this candidacy).
LeaseView Spec(int64_t rv, const std::string& holder, const std::string& renew,
               int32_t ld = 4, const std::string& instance = "") {
  LeaseView v;
  v.resource_version = rv;
  if (!holder.empty()) v.holder = holder;
  if (!instance.empty()) {
    v.holder_instance = instance;
  } else if (holder == "me") {
    v.holder_instance = kMyInstance;
  }
  v.renew_time = renew;
  v.lease_duration_seconds = ld;
  return v;
}

class CandidacyTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  Candidacy c_{"me", kMyInstance, absl::Seconds(8), &clock_};
};

TEST_F(CandidacyTest, DoesNothingBeforeItKnowsTheObject) {
  EXPECT_EQ(c_.Next().action, Action::kNone);
  EXPECT_FALSE(c_.Next().wake_at.has_value());
}

TEST_F(CandidacyTest, CreatesAnAbsentLock) {
  LeaseView absent;
  absent.exists = false;
  c_.Observe(absent);
  EXPECT_EQ(c_.Next().action, Action::kCreate);
}

TEST_F(CandidacyTest, TakesOverWhenNoLocalHolder) {
  c_.Observe(Spec(7, "", ""));
  auto d = c_.Next();
  EXPECT_EQ(d.action, Action::kTakeOver);
  EXPECT_EQ(d.precondition_rv, 7);
}

TEST_F(CandidacyTest, HolderRenewsEveryQuarterOfTheLeaseDuration) {
  c_.Observe(Spec(7, "me", "r1"));
  // No write of mine known yet: renew at once.
  EXPECT_EQ(c_.Next().action, Action::kRenew);
  absl::Duration sent = clock_.Monotonic();
  c_.WriteSucceeded(sent);
  c_.Observe(Spec(8, "me", "r2"));
  auto d = c_.Next();
  EXPECT_EQ(d.action, Action::kNone);
  ASSERT_TRUE(d.wake_at.has_value());
  EXPECT_EQ(*d.wake_at, sent + absl::Seconds(2));
  clock_.Advance(absl::Seconds(2) - absl::Nanoseconds(1));
  EXPECT_EQ(c_.Next().action, Action::kNone);
  clock_.Advance(absl::Nanoseconds(1));
  d = c_.Next();
  EXPECT_EQ(d.action, Action::kRenew);
  EXPECT_EQ(d.precondition_rv, 8);
  c_.WriteFailed();
  EXPECT_EQ(c_.Next().action, Action::kRenew);
}

TEST_F(CandidacyTest,
       WaitsForALiveHolderAndTakesOverWhenItsRenewTimeStaysUnchanged) {
  c_.Observe(Spec(7, "other", "r1", /*ld=*/4));
  absl::Duration first_seen = clock_.Monotonic();
  auto d = c_.Next();
  EXPECT_EQ(d.action, Action::kNone);
  EXPECT_EQ(
      // The holder's lease duration, not mine.
      *d.wake_at, first_seen + absl::Seconds(4));
  clock_.Advance(absl::Seconds(3));
  // The holder renews: staleness counts afresh from this observation.
  c_.Observe(Spec(8, "other", "r2", 4));
  clock_.Advance(absl::Seconds(3));
  EXPECT_EQ(c_.Next().action, Action::kNone);
  // A version that changes something else (status) but not renewTime does not
  // reset the count.
  c_.Observe(Spec(9, "other", "r2", 4));
  clock_.Advance(absl::Seconds(1));
  d = c_.Next();
  EXPECT_EQ(d.action, Action::kTakeOver);
  EXPECT_EQ(d.precondition_rv, 9);
}

TEST_F(CandidacyTest, GrantedHolderRenewsEveryQuarterOfTheSessionTtlIfShorter) {
  // An 8 s lease under a 2 s etcd session TTL: renewals every 2 s would let the
  // confirmation lapse between them, so the holder renews every 500 ms.
  LeaseView granted = Spec(7, "me", "r1");
  granted.session_ttl_ms = 2000;
  c_.Observe(granted);
  absl::Duration sent = clock_.Monotonic();
  c_.WriteSucceeded(sent);
  granted.resource_version = 8;
  granted.renew_time = "r2";
  c_.Observe(granted);
  EXPECT_EQ(c_.renew_period(), absl::Milliseconds(500));
  auto d = c_.Next();
  ASSERT_TRUE(d.wake_at.has_value());
  EXPECT_EQ(*d.wake_at, sent + absl::Milliseconds(500));
  // A longer TTL does not slow renewals below a quarter of the lease.
  granted.resource_version = 9;
  granted.session_ttl_ms = 60000;
  c_.Observe(granted);
  EXPECT_EQ(c_.renew_period(), absl::Seconds(2));
}

TEST_F(CandidacyTest, RenewTimeValuesAreNeverComparedWithTheLocalClock) {
  // A renewTime far in the past (a skewed node) is still live while it keeps
  // changing.
  c_.Observe(Spec(7, "other", "1999-01-01T00:00:00.000000Z", 4));
  clock_.Advance(absl::Seconds(3));
  c_.Observe(Spec(8, "other", "1999-01-01T00:00:01.000000Z", 4));
  clock_.Advance(absl::Seconds(3));
  EXPECT_EQ(c_.Next().action, Action::kNone);
}

TEST_F(CandidacyTest, OlderVersionsAreIgnored) {
  c_.Observe(Spec(9, "other", "r2", 4));
  c_.Observe(Spec(7, "", ""));
  auto d = c_.Next();
  EXPECT_EQ(d.action, Action::kNone);
  EXPECT_FALSE(c_.holding());
}

TEST_F(CandidacyTest, DeletionLeadsToCreate) {
  c_.Observe(Spec(9, "me", "r2"));
  EXPECT_TRUE(c_.holding());
  LeaseView gone;
  gone.resource_version = 10;
  gone.exists = false;
  c_.Observe(gone);
  EXPECT_FALSE(c_.holding());
  EXPECT_EQ(c_.Next().action, Action::kCreate);
}

// One identity, two candidacies: the other one is a holder like any other
// (taken over when stale), and one that renews while I watch is live.
TEST_F(CandidacyTest, AStaleCandidacyOfMyIdentityIsTakenOverAfterItsLease) {
  c_.Observe(Spec(10, "me", "t1", 4, "b2"));  // a crashed sidecar's
  EXPECT_FALSE(c_.holding());
  Candidacy::Decision d = c_.Next();
  EXPECT_EQ(d.action, Action::kNone);
  ASSERT_TRUE(d.wake_at.has_value());
  clock_.Advance(absl::Seconds(4));
  d = c_.Next();
  EXPECT_EQ(d.action, Action::kTakeOver);
  EXPECT_EQ(d.precondition_rv, 10);
  EXPECT_FALSE(c_.duplicate());
}

TEST_F(CandidacyTest, AnotherCandidacyOfMyIdentityThatRenewsIsADuplicate) {
  c_.Observe(Spec(10, "me", "t1", 4, "b2"));
  EXPECT_FALSE(c_.duplicate());
  clock_.Advance(absl::Seconds(1));
  c_.Observe(Spec(11, "me", "t2", 4, "b2"));  // it renewed: it is live
  EXPECT_TRUE(c_.duplicate());
  EXPECT_EQ(c_.other_instance(), "b2");
}

TEST_F(CandidacyTest, AnotherIdentityRenewingIsNoDuplicate) {
  c_.Observe(Spec(10, "other", "t1"));
  c_.Observe(Spec(11, "other", "t2"));
  EXPECT_FALSE(c_.duplicate());
  // Nor is my own candidacy renewing.
  c_.Observe(Spec(12, "me", "t3"));
  c_.Observe(Spec(13, "me", "t4"));
  EXPECT_TRUE(c_.holding());
  EXPECT_FALSE(c_.duplicate());
}

}  // namespace
}  // namespace mcl::sidecar
