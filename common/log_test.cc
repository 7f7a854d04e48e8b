#include "common/log.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

TEST(LogTest, OneJsonObjectPerLineWithFieldsInOrder) {
  std::string line =
      FormatLogLine("warn", "status write failed",
                    {{"lock", "ns/a"}, {"error", "409 Conflict"}});
  EXPECT_THAT(line,
              MatchesRegex("\\{\"ts\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:"
                           "[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z\",\"level\":\"warn\","
                           "\"msg\":\"status write failed\",\"lock\":\"ns/a\","
                           "\"error\":\"409 Conflict\"\\}"));
}

TEST(LogTest, EscapesQuotesBackslashesAndControlBytes) {
  std::string line =
      FormatLogLine("info", "say \"hi\"\n",
                    {{"path", "a\\b\tc"}, {"raw", std::string("\x01\x1f", 2)}});
  EXPECT_THAT(line, HasSubstr("\"msg\":\"say \\\"hi\\\"\\n\""));
  EXPECT_THAT(line, HasSubstr("\"path\":\"a\\\\b\\tc\""));
  EXPECT_THAT(line, HasSubstr("\"raw\":\"\\u0001\\u001f\""));
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(LogTest, KeepsUtf8AsIs) {
  std::string line = FormatLogLine("info", "caf\xc3\xa9", {});
  EXPECT_THAT(line, HasSubstr("\"msg\":\"caf\xc3\xa9\""));
}

}  // namespace
}  // namespace mcl
