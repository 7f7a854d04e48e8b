#include "e2e/history.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::e2e {
namespace {

using ::testing::HasSubstr;

absl::Duration Ms(int64_t ms) { return absl::Milliseconds(ms); }

TEST(HistoryCheckTest, SequentialIntervalsWithGrowingTokensPass) {
  History h;
  h.Leader("a", 10, Ms(0));
  h.Lost("a", Ms(100));
  h.Leader("b", 12, Ms(100));  // touching is not overlapping
  h.Lost("b", Ms(200));
  h.Leader("a", 15, Ms(250));
  EXPECT_TRUE(h.Check().ok()) << h.Check();
  EXPECT_EQ(h.CurrentLeader(), "a");
  EXPECT_EQ(h.CurrentToken(), 15);
}

TEST(HistoryCheckTest, OverlapIsAnS1Violation) {
  History h;
  h.Leader("a", 10, Ms(0));
  h.Leader("b", 12, Ms(50));
  h.Lost("a", Ms(60));
  absl::Status s = h.Check();
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("S1 violated: b"));
}

TEST(HistoryCheckTest, StillOpenIntervalOverlapsEverythingAfterIt) {
  History h;
  h.Leader("a", 10, Ms(0));
  h.Leader("b", 12, Ms(5000));
  EXPECT_THAT(std::string(h.Check().message()), HasSubstr("led until now"));
}

TEST(HistoryCheckTest, NonIncreasingTokenIsAnS2Violation) {
  History h;
  h.Leader("a", 10, Ms(0));
  h.Lost("a", Ms(10));
  h.Leader("b", 10, Ms(20));
  EXPECT_THAT(std::string(h.Check().message()), HasSubstr("S2 violated"));
}

TEST(HistoryCheckTest, RegrantToSameAppClosesThePreviousInterval) {
  History h;
  h.Leader("a", 10, Ms(0));
  h.Leader("a", 11, Ms(10));
  EXPECT_TRUE(h.Check().ok());
  EXPECT_EQ(h.Intervals()[0].end, Ms(10));
}

TEST(HistoryCheckTest, SameGrantToldAgainAfterALapseIsAllowed) {
  History h;
  h.Leader("a", 10, Ms(0));
  h.Lost("a", Ms(100));
  h.Leader("a", 10, Ms(150));
  EXPECT_TRUE(h.Check().ok()) << h.Check();
  h.Lost("a", Ms(200));
  h.Leader("b", 10, Ms(300));
  EXPECT_THAT(std::string(h.Check().message()), HasSubstr("S2 violated"));
}

TEST(HistoryCheckTest, ObserverGoingBackwardsFails) {
  History h;
  h.Observed("o1", {"a", 10});
  h.Observed("o1", {"b", 9});
  EXPECT_THAT(std::string(h.Check().message()), HasSubstr("after token 10"));
}

TEST(HistoryCheckTest, TokenNamingTwoIdentitiesFails) {
  History h;
  h.Leader("a", 10, Ms(0));
  h.Observed("o1", {"b", 10});
  EXPECT_THAT(std::string(h.Check().message()), HasSubstr("names a"));
}

TEST(HistoryCheckTest, ObserversAgreeIgnoresNoLeaderAndRepeats) {
  History h;
  h.Observed("o1", {"a", 10});
  h.Observed("o1", {"", 0});
  h.Observed("o1", {"b", 12});
  h.Observed("o2", {"a", 10});
  h.Observed("o2", {"a", 10});
  h.Observed("o2", {"b", 12});
  EXPECT_TRUE(h.CheckObserversAgree().ok()) << h.CheckObserversAgree();
  h.Observed("o3", {"b", 12});
  EXPECT_THAT(std::string(h.CheckObserversAgree().message()),
              HasSubstr("observers disagree"));
}

}  // namespace
}  // namespace mcl::e2e

namespace mcl::e2e {
namespace {

using Kind = AppEvent::Kind;

AppEvent Ev(const std::string& app, int64_t at_ms, Kind kind, int64_t token = 0,
            int64_t valid_until_ms = -1) {
  AppEvent e;
  e.app = app;
  e.identity = app;
  e.at = absl::Milliseconds(at_ms);
  e.kind = kind;
  e.token = token;
  if (valid_until_ms >= 0) e.valid_until = absl::Milliseconds(valid_until_ms);
  return e;
}

TEST(IntervalsFromEventsTest, LeadershipEndsAtTheFirstOfEndDeathAndBound) {
  auto iv = IntervalsFromEvents({
      Ev("a", 0, Kind::kLeader, 10, 500),  // bound at 500 ...
      Ev("a", 800, Kind::kEnd),            // ... comes before LOST at 800
      Ev("b", 900, Kind::kLeader, 12),     // no bound: until death
      Ev("b", 1000, Kind::kDeath), Ev("c", 1100, Kind::kLeader, 13, 5000),
      Ev("c", 1200, Kind::kEnd),  // LOST before the bound
  });
  ASSERT_EQ(iv.size(), 3u);
  EXPECT_EQ(iv[0].end, absl::Milliseconds(500));
  EXPECT_EQ(iv[1].end, absl::Milliseconds(1000));
  EXPECT_EQ(iv[2].end, absl::Milliseconds(1200));
  EXPECT_TRUE(CheckIntervals(iv).ok());
}

TEST(IntervalsFromEventsTest, RenewalMovesTheBoundAndALapseStartsANewPiece) {
  auto iv = IntervalsFromEvents({
      Ev("a", 0, Kind::kLeader, 10, 500),
      Ev("a", 400, Kind::kLeader, 10, 900),    // renewal before the bound
      Ev("a", 1000, Kind::kLeader, 10, 1500),  // after the bound: a new piece
      Ev("a", 1200, Kind::kEnd),
  });
  ASSERT_EQ(iv.size(), 2u);
  EXPECT_EQ(iv[0].start, absl::Milliseconds(0));
  EXPECT_EQ(iv[0].end, absl::Milliseconds(900));
  EXPECT_EQ(iv[1].start, absl::Milliseconds(1000));
  EXPECT_EQ(iv[1].end, absl::Milliseconds(1200));
  EXPECT_TRUE(CheckIntervals(iv).ok());  // the same grant, told again
}

TEST(IntervalsFromEventsTest, AFrozenLeaderWithoutABoundOverlapsTheNextOne) {
  // No validity: the app counts as leader until it hears LOST, which a frozen
  // sidecar sends late; the bound would have stopped it in time.
  auto iv = IntervalsFromEvents({
      Ev("a", 0, Kind::kLeader, 10),
      Ev("b", 3000, Kind::kLeader, 12, 5000),
      Ev("a", 4000, Kind::kEnd),
  });
  EXPECT_THAT(std::string(CheckIntervals(iv).message()),
              HasSubstr("S1 violated"));
  iv = IntervalsFromEvents({
      Ev("a", 0, Kind::kLeader, 10, 1800),
      Ev("b", 3000, Kind::kLeader, 12, 5000),
      Ev("a", 4000, Kind::kEnd),
  });
  EXPECT_TRUE(CheckIntervals(iv).ok());
}

TEST(IntervalsFromEventsTest, OneTokenForTwoAppsIsAnS2Violation) {
  auto iv = IntervalsFromEvents({
      Ev("a", 0, Kind::kLeader, 10, 100),
      Ev("b", 200, Kind::kLeader, 10, 300),
  });
  EXPECT_THAT(std::string(CheckIntervals(iv).message()),
              HasSubstr("S2 violated"));
}

TEST(IntervalsFromEventsTest, ABoundAlreadyPastOnArrivalGivesNoLeadership) {
  auto iv = IntervalsFromEvents({Ev("a", 100, Kind::kLeader, 10, 50)});
  EXPECT_TRUE(iv.empty());
}

TEST(LeaderAfterTest, ZeroWhenOneLeadsAtHealElseTheFirstStart) {
  std::vector<Interval> iv = {
      {"a", "a", 10, absl::Milliseconds(0), absl::Milliseconds(1000)},
      {"b", "b", 12, absl::Milliseconds(3000), absl::InfiniteDuration()}};
  EXPECT_EQ(LeaderAfter(iv, absl::Milliseconds(500), absl::Seconds(60)),
            absl::ZeroDuration());
  EXPECT_EQ(LeaderAfter(iv, absl::Milliseconds(1500), absl::Seconds(60)),
            absl::Milliseconds(1500));
  EXPECT_EQ(LeaderAfter(iv, absl::Milliseconds(1500), absl::Milliseconds(2000)),
            std::nullopt);
}

}  // namespace
}  // namespace mcl::e2e
