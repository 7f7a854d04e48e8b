#include "e2e/campaign/recorder_log.h"

#include "gtest/gtest.h"

namespace mcl::campaign {
namespace {

TEST(ParseFlatJsonTest, StringsNumbersAndEscapes) {
  auto m = ParseFlatJson(
      R"({"t":12,"app":"c0a1","msg":"a \"b\" \\ \u0041","n":-3})");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ((*m)["t"], "12");
  EXPECT_EQ((*m)["msg"], "a \"b\" \\ A");
  EXPECT_EQ((*m)["n"], "-3");
  EXPECT_FALSE(ParseFlatJson(R"({"t":12,"app":"c0)").has_value());  // cut short
  EXPECT_FALSE(ParseFlatJson("not json").has_value());
}

TEST(ParseRecorderLogTest, EventsObservationsAndACutLine) {
  RecorderLog log;
  ParseRecorderLog(
      R"({"t":1,"app":"a","ev":"start","stream":1,"identity":"id-a"}
{"t":2,"app":"a","ev":"leader","stream":1,"token":7,"valid_until":500,"sent":1,"identity":"id-a"}
{"t":3,"app":"a","ev":"observe","observer":"a/o1","identity":"id-a","token":7}
{"t":3,"app":"a","ev":"observe","observer":"a/o1","identity":"id-a","token":7}
{"t":4,"app":"a","ev":"renewal","stream":1,"token":7,"valid_until":900,"sent":3}
{"t":5,"app":"a","ev":"follower","stream":1}
{"t":6,"app":"a","ev":"lost","stream":1,"token":7}
{"t":7,"app":"a","ev":"lea)",
      &log);
  log.events.push_back({});
  ParseRecorderLog(DeathLine("a", 8), &log);
  EXPECT_EQ(log.malformed, 1);
  ASSERT_EQ(log.observations["a/o1"].size(), 1u);  // the repeat is dropped
  // leader, renewal, lost, death (+ the one pushed by hand)
  ASSERT_EQ(log.events.size(), 5u);
  EXPECT_EQ(log.events[0].identity, "id-a");
  EXPECT_EQ(log.events[0].valid_until, absl::Nanoseconds(500));
  EXPECT_EQ(log.events[1].kind, e2e::AppEvent::Kind::kLeader);
  EXPECT_EQ(log.events[2].kind, e2e::AppEvent::Kind::kEnd);
  EXPECT_EQ(log.events[4].kind, e2e::AppEvent::Kind::kDeath);
  EXPECT_EQ(log.events[4].at, absl::Nanoseconds(8));
}

}  // namespace
}  // namespace mcl::campaign
