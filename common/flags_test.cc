#include "common/flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(absl::Duration, session_ttl, absl::Seconds(10), "session TTL");
ABSL_FLAG(int, workers, 8, "workers");
ABSL_FLAG(bool, restart, false, "restart");
ABSL_FLAG(std::string, output, "text", "output format");
ABSL_FLAG(std::string, other, "", "a flag of another subcommand");

namespace mcl::flags {
namespace {

using ::testing::HasSubstr;

FlagSet Set() {
  FlagSet set;
  set.program = "prog sub";
  set.names = {"session_ttl", "workers", "restart", "output"};
  set.aliases = {{"o", "output"}};
  set.elsewhere = "another subcommand takes it";
  return set;
}

std::string Error(const FlagSet& set, const std::vector<std::string>& args) {
  ResetToDefaults(set);
  auto p = Parse(set, args);
  EXPECT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(p.status().message());
}

TEST(Flags, NameEqualsValueAndNameSpaceValue) {
  FlagSet set = Set();
  ResetToDefaults(set);
  auto p = Parse(
      set, {"--session-ttl=3s", "--workers", "4", "-o", "json", "--restart"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->help);
  EXPECT_EQ(absl::GetFlag(FLAGS_session_ttl), absl::Seconds(3));
  EXPECT_EQ(absl::GetFlag(FLAGS_workers), 4);
  EXPECT_EQ(absl::GetFlag(FLAGS_output), "json");
  EXPECT_TRUE(absl::GetFlag(FLAGS_restart));
  // Underscores, one dash, --noflag and --flag=false.
  ASSERT_TRUE(Parse(set, {"-session_ttl", "1m", "--norestart"}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_session_ttl), absl::Minutes(1));
  EXPECT_FALSE(absl::GetFlag(FLAGS_restart));
  ASSERT_TRUE(Parse(set, {"--restart=true", "--output=a=b"}).ok());
  EXPECT_TRUE(absl::GetFlag(FLAGS_restart));
  EXPECT_EQ(absl::GetFlag(FLAGS_output), "a=b");
  ResetToDefaults(set);
  EXPECT_EQ(absl::GetFlag(FLAGS_workers), 8);
  EXPECT_FALSE(absl::GetFlag(FLAGS_restart));
}

TEST(Flags, UnknownFlag) {
  FlagSet set = Set();
  EXPECT_EQ(Error(set, {"--bogus=1"}), "unknown flag --bogus for prog sub");
  EXPECT_EQ(Error(set, {"--other", "x"}),
            "unknown flag --other for prog sub (another subcommand takes it)");
  set.program.clear();
  set.elsewhere.clear();
  EXPECT_EQ(Error(set, {"--other"}), "unknown flag --other");
  EXPECT_EQ(Error(set, {"--noworkers"}),
            "--noworkers: --workers is not a true/false flag");
  EXPECT_EQ(Error(set, {"--norestart=1"}),
            "--norestart=1: use --restart=false or --norestart");
}

TEST(Flags, MissingValue) {
  EXPECT_EQ(Error(Set(), {"--workers"}), "--workers needs a value");
  EXPECT_EQ(Error(Set(), {"-o"}), "--output needs a value");
}

TEST(Flags, BadValueSaysWhatToFix) {
  EXPECT_EQ(Error(Set(), {"--session-ttl=soon"}),
            "bad value \"soon\" for --session-ttl: want a duration such as "
            "2s, 500ms or 1m30s");
  EXPECT_EQ(Error(Set(), {"--workers", "many"}),
            "bad value \"many\" for --workers: want an integer");
  EXPECT_EQ(Error(Set(), {"--restart=maybe"}),
            "bad value \"maybe\" for --restart: want true or false");
}

TEST(Flags, PositionalArgumentsAndDashDash) {
  FlagSet set = Set();
  EXPECT_EQ(Error(set, {"--workers=2", "x"}), "unexpected argument \"x\"");
  EXPECT_EQ(Error(set, {"--"}), "unexpected argument \"--\"");
  EXPECT_EQ(Error(set, {"-"}), "unexpected argument \"-\"");
  set.takes_command = true;
  set.positional_hint = "; put it after \"--\"";
  EXPECT_EQ(Error(set, {"x"}),
            "unexpected argument \"x\"; put it after \"--\"");
  auto p = Parse(set, {"--workers=2", "--", "cmd", "--workers=3", "--help"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->dashdash);
  EXPECT_FALSE(p->help);
  EXPECT_THAT(p->command,
              ::testing::ElementsAre("cmd", "--workers=3", "--help"));
  EXPECT_EQ(absl::GetFlag(FLAGS_workers), 2);
  p = Parse(set, {"--workers=2"});
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->dashdash);
}

TEST(Flags, HelpStopsParsing) {
  for (const char* h : {"--help", "-h", "-help", "--helpfull", "--help=x"}) {
    auto p = Parse(Set(), {h, "--bogus"});
    ASSERT_TRUE(p.ok()) << h;
    EXPECT_TRUE(p->help) << h;
  }
  const std::string help = Help(Set());
  EXPECT_THAT(
      help, HasSubstr("--session-ttl (default \"10s\")\n      session TTL\n"));
  EXPECT_THAT(help, HasSubstr("--output, -o (default \"text\")"));
  EXPECT_THAT(help, ::testing::Not(HasSubstr("--other")));
}

TEST(Flags, ParseMainExitCodes) {
  FlagSet set = Set();
  auto run = [&](std::vector<std::string> a) {
    std::vector<char*> argv;
    argv.reserve(a.size());
    for (std::string& s : a) argv.push_back(s.data());
    return ParseMain(set, static_cast<int>(argv.size()), argv.data(), "about",
                     7, 9);
  };
  EXPECT_EQ(run({"prog", "--workers=5"}), -1);
  EXPECT_EQ(absl::GetFlag(FLAGS_workers), 5);
  EXPECT_EQ(run({"prog", "--help"}), 7);
  EXPECT_EQ(run({"prog", "--workers"}), 9);
  EXPECT_EQ(Spelling("a_b_c"), "--a-b-c");
}

}  // namespace
}  // namespace mcl::flags
