#include "client-stubs/cpp/leader_state.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::client {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kT0 = absl::Seconds(1000);

mcl::v1::LeadershipEvent Leader(int64_t token, absl::Duration sent,
                                absl::Duration until) {
  mcl::v1::LeadershipEvent e;
  e.mutable_lock()->set_name("l");
  e.set_state(mcl::v1::LEADER);
  e.mutable_leader()->set_identity("me");
  e.mutable_leader()->set_fencing_token(token);
  e.mutable_validity()->set_sent_monotonic_ns(absl::ToInt64Nanoseconds(sent));
  e.mutable_validity()->set_valid_until_monotonic_ns(
      absl::ToInt64Nanoseconds(until));
  return e;
}

mcl::v1::LeadershipEvent Other(mcl::v1::State s) {
  mcl::v1::LeadershipEvent e;
  e.set_state(s);
  return e;
}

TEST(LeaderState, LeaderStartsATermThatEndsAtItsBound) {
  LeaderState st;
  EXPECT_FALSE(st.LiveTerm(kT0));
  ASSERT_TRUE(st.OnEvent(Leader(7, kT0, kT0 + absl::Seconds(2)),
                         kT0 + absl::Milliseconds(1))
                  .ok());
  auto t = st.LiveTerm(kT0 + absl::Seconds(1));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->grant.fencing_token(), 7);
  EXPECT_EQ(t->valid_until, kT0 + absl::Seconds(2));
  EXPECT_EQ(t->started, kT0 + absl::Milliseconds(1));
  EXPECT_EQ(st.NextDeadline(kT0), kT0 + absl::Seconds(2));
  EXPECT_TRUE(st.IsLive(t->id, kT0 + absl::Seconds(2) - absl::Nanoseconds(1)));
  // At the bound exactly, the app must already have stopped.
  EXPECT_FALSE(st.LiveTerm(kT0 + absl::Seconds(2)));
  EXPECT_FALSE(st.IsLive(t->id, kT0 + absl::Seconds(2)));
  EXPECT_TRUE(st.Holds(t->id));
  EXPECT_EQ(st.NextDeadline(kT0 + absl::Seconds(2)), absl::InfiniteDuration());
}

TEST(LeaderState, RenewalBeforeTheBoundExtendsTheSameTerm) {
  LeaderState st;
  ASSERT_TRUE(st.OnEvent(Leader(7, kT0, kT0 + absl::Seconds(2)), kT0).ok());
  const uint64_t id = st.LiveTerm(kT0)->id;
  ASSERT_TRUE(
      st.OnEvent(Leader(7, kT0 + absl::Seconds(1), kT0 + absl::Seconds(3)),
                 kT0 + absl::Seconds(1))
          .ok());
  auto t = st.LiveTerm(kT0 + absl::Milliseconds(2500));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->id, id);
  EXPECT_EQ(t->valid_until, kT0 + absl::Seconds(3));
}

TEST(LeaderState, RenewalThatArrivesAfterTheBoundStartsANewTerm) {
  LeaderState st;
  ASSERT_TRUE(st.OnEvent(Leader(7, kT0, kT0 + absl::Seconds(2)), kT0).ok());
  const uint64_t id = st.LiveTerm(kT0)->id;
  // Sent in time, delivered late (a frozen app or a stalled connection).
  ASSERT_TRUE(
      st.OnEvent(Leader(7, kT0 + absl::Seconds(1), kT0 + absl::Seconds(5)),
                 kT0 + absl::Seconds(2))
          .ok());
  EXPECT_FALSE(st.IsLive(id, kT0 + absl::Seconds(2)));
  auto t = st.LiveTerm(kT0 + absl::Seconds(2));
  ASSERT_TRUE(t);
  EXPECT_NE(t->id, id);
  EXPECT_EQ(t->grant.fencing_token(), 7);
}

TEST(LeaderState, ABoundAlreadyPastOnReceiptStartsNothing) {
  LeaderState st;
  ASSERT_TRUE(
      st.OnEvent(Leader(7, kT0, kT0 + absl::Seconds(1)), kT0 + absl::Seconds(1))
          .ok());
  EXPECT_FALSE(st.LiveTerm(kT0 + absl::Seconds(1)));
}

TEST(LeaderState, ARenewalMayShortenTheBound) {
  LeaderState st;
  ASSERT_TRUE(st.OnEvent(Leader(7, kT0, kT0 + absl::Seconds(5)), kT0).ok());
  ASSERT_TRUE(st.OnEvent(Leader(7, kT0, kT0 + absl::Seconds(2)), kT0).ok());
  EXPECT_FALSE(st.LiveTerm(kT0 + absl::Seconds(3)));
}

TEST(LeaderState, EveryOtherEventAndStreamEndEndTheTerm) {
  for (mcl::v1::State s :
       {mcl::v1::LOST, mcl::v1::FOLLOWER, mcl::v1::NO_LEADER,
        mcl::v1::STATE_UNSPECIFIED, static_cast<mcl::v1::State>(42)}) {
    LeaderState st;
    ASSERT_TRUE(st.OnEvent(Leader(7, kT0, kT0 + absl::Seconds(2)), kT0).ok());
    ASSERT_TRUE(st.OnEvent(Other(s), kT0).ok());
    EXPECT_FALSE(st.LiveTerm(kT0)) << s;
  }
  LeaderState st;
  ASSERT_TRUE(st.OnEvent(Leader(7, kT0, kT0 + absl::Seconds(2)), kT0).ok());
  st.OnStreamEnd();
  EXPECT_FALSE(st.LiveTerm(kT0));
}

TEST(LeaderState, ANewTokenIsANewTerm) {
  LeaderState st;
  ASSERT_TRUE(st.OnEvent(Leader(7, kT0, kT0 + absl::Seconds(2)), kT0).ok());
  const uint64_t id = st.LiveTerm(kT0)->id;
  ASSERT_TRUE(st.OnEvent(Leader(9, kT0, kT0 + absl::Seconds(2)), kT0).ok());
  EXPECT_FALSE(st.IsLive(id, kT0));
  EXPECT_EQ(st.LiveTerm(kT0)->grant.fencing_token(), 9);
}

TEST(LeaderState, ClockCheckFailsTheCampaignForGood) {
  LeaderState st;
  absl::Status s = st.OnEvent(
      Leader(7, kT0 + absl::Seconds(1), kT0 + absl::Seconds(3)), kT0);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("clock check failed"));
  EXPECT_FALSE(st.LiveTerm(kT0));
  // Nothing is trusted afterwards, not even a well-formed LEADER.
  EXPECT_FALSE(
      st.OnEvent(Leader(7, kT0, kT0 + absl::Seconds(3)), kT0 + absl::Seconds(1))
          .ok());
  EXPECT_FALSE(st.LiveTerm(kT0 + absl::Seconds(1)));
  EXPECT_EQ(st.failure().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(LeaderState, LeaderWithoutValidityIsNeverTrusted) {
  LeaderState st;
  mcl::v1::LeadershipEvent e = Leader(7, kT0, kT0 + absl::Seconds(2));
  e.clear_validity();
  absl::Status s = st.OnEvent(e, kT0);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("without a validity bound"));
  EXPECT_THAT(s.message(), HasSubstr("upgrade the sidecar"));
  EXPECT_FALSE(st.LiveTerm(kT0));
}

TEST(LeaderState, MalformedLeaderIsRefused) {
  LeaderState a;
  EXPECT_EQ(a.OnEvent(Leader(7, absl::ZeroDuration(), kT0), kT0).code(),
            absl::StatusCode::kInvalidArgument);
  LeaderState b;
  EXPECT_EQ(b.OnEvent(Leader(0, kT0, kT0 + absl::Seconds(1)), kT0).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(b.LiveTerm(kT0));
}

}  // namespace
}  // namespace mcl::client
