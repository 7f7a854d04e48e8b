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
