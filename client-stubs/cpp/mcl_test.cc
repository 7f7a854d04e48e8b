// The `mcl` command as a real process against the scripted sidecar
// (testing/fake_sidecar.h): bad input and exit codes, `mcl run`'s process
// handling (token in the environment, stop at LOST / the bound / stream end /
// SIGTERM, SIGKILL after --grace, resign when CMD exits, --restart), and the
// query commands. The same on the real test bed: mcl_testbed_test.cc.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client-stubs/cpp/cli_flags.h"
#include "client-stubs/cpp/metrics.h"
#include "client-stubs/cpp/testing/fake_sidecar.h"
#include "client-stubs/cpp/testing/probe.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testbed/cc/free_port.h"
#include "testbed/cc/subprocess.h"

namespace mcl::cli {
namespace {

using ::mcl::client::testing::FakeSidecar;
using ::mcl::client::testing::FakeStream;
using ::mcl::client::testing::ProbeLine;
using ::mcl::client::testing::ReadProbe;
using ::mcl::testbed::RunCommand;
using ::mcl::testbed::Runfile;
using ::mcl::testbed::Subprocess;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(15);

int64_t MonoNs() {
  return absl::ToInt64Nanoseconds(Clock::Real()->Monotonic());
}

class MclTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = FakeSidecar::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    sidecar_ = std::move(*s);
    char tmpl[] = "/tmp/mcl-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    probe_ = dir_ + "/probe";
  }
  void TearDown() override {
    if (run_ != nullptr && run_->running()) (void)run_->Stop(absl::Seconds(10));
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::map<std::string, std::string> Env() {
    return {{"MCL_SIDECAR_ADDR", sidecar_->address()}};
  }
  static std::string Mcl() { return Runfile("client-stubs/cpp/mcl"); }

  // `mcl ARGS...` to completion.
  testbed::CommandResult Mcl(std::vector<std::string> args,
                             std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), Mcl());
    if (env.empty()) env = Env();
    auto r = RunCommand(args, kWait, "", env);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(testbed::CommandResult{});
  }

  // Starts `mcl run --lock lock FLAGS -- test_cmd PROBE CMD_ARGS`.
  void StartRun(std::vector<std::string> flags,
                std::vector<std::string> cmd_args = {}) {
    std::vector<std::string> argv = {Mcl(), "run", "--lock=lock",
                                     "--namespace=default", "--identity=me"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back("--");
    argv.push_back(Runfile("client-stubs/cpp/testing/test_cmd"));
    argv.push_back(probe_);
    argv.insert(argv.end(), cmd_args.begin(), cmd_args.end());
    auto p = Subprocess::Start(argv, dir_ + "/mcl-run.log", Env());
    ASSERT_TRUE(p.ok()) << p.status();
    run_ = std::make_unique<Subprocess>(std::move(*p));
  }

  std::vector<ProbeLine> Probe() { return ReadProbe(probe_); }
  int Count(const std::string& kind) {
    int n = 0;
    for (const auto& l : Probe()) n += l.kind == kind;
    return n;
  }
  // The test CMD's file is its only channel back, so this polls it.
  bool WaitCount(const std::string& kind, int n) {
    return testbed::WaitUntil([&] { return Count(kind) >= n; }, kWait);
  }
  ProbeLine Nth(const std::string& kind, int n) {
    for (const auto& l : Probe()) {
      if (l.kind == kind && n-- == 0) return l;
    }
    return {};
  }
  std::string RunLog() { return run_ != nullptr ? run_->Log() : ""; }

  FakeStream* Campaign(int n) {
    FakeStream* s = sidecar_->WaitForStream("Campaign", n, kWait);
    EXPECT_NE(s, nullptr) << RunLog();
    return s;
  }
  // mcl run exits with `code` within kWait.
  void ExpectExit(int code) {
    auto c = run_->Wait(kWait);
    ASSERT_TRUE(c.ok()) << c.status() << RunLog();
    EXPECT_EQ(*c, code) << RunLog();
  }

  std::unique_ptr<FakeSidecar> sidecar_;
  std::string dir_, probe_;
  std::unique_ptr<Subprocess> run_;
};

TEST_F(MclTest, MalformedInputGetsExitCode2AndWhatToFix) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  } cases[] = {
      {{"run", "--lock=Bad_Name", "--", "true"}, "has 'B' at position 0"},
      {{"run", "--lock=x", "true"},
       "unexpected argument \"true\"; put the command after \"--\""},
      {{"run", "--lock=x"}, "missing \"--\" before the command"},
      {{"run", "--lock=x", "--"}, "no command after \"--\""},
      {{"run", "--", "true"}, "--lock is required"},
      {{"run", "--lock=x", "--grace=soon", "--", "true"},
       "bad value \"soon\" for --grace"},
      {{"run", "--lock=x", "--grace=-1s", "--", "true"},
       "--grace must not be negative"},
      {{"run", "--lock=x", "--lease-duration=1s", "--", "true"}, "2s..3600s"},
      {{"run", "--lock=x", "--lease-duration=2.5s", "--", "true"},
       "whole seconds"},
      {{"run", "--lock=x", "--bogus", "--", "true"},
       "unknown flag --bogus for mcl run"},
      {{"run", "--lock=x", "-o", "json", "--", "true"},
       "another subcommand takes it"},
      {{"run", "--lock=x", "--norestart=1", "--", "true"}, "--norestart=1"},
      {{"leader", "--lock=x", "-o", "yaml"}, "-o yaml: use text or json"},
      {{"leader", "--lock=x", "--namespace=a.b"}, "DNS-1123 label"},
      {{"leader", "--lock"}, "--lock needs a value"},
      {{"observe", "--lock=x", "--", "true"}, "takes no command"},
      {{"frobnicate"}, "unknown command \"frobnicate\""},
  };
  for (const Case& c : cases) {
    testbed::CommandResult r = Mcl(c.args);
    EXPECT_EQ(r.exit_code, kUsage) << absl::StrJoin(c.args, " ") << "\n"
                                   << r.output;
    EXPECT_THAT(r.output, HasSubstr(c.says)) << absl::StrJoin(c.args, " ");
  }
  testbed::CommandResult bad_addr =
      Mcl({"leader", "--lock=x"}, {{"MCL_SIDECAR_ADDR", "sidecar:port"}});
  EXPECT_EQ(bad_addr.exit_code, kUsage);
  EXPECT_THAT(bad_addr.output, HasSubstr("MCL_SIDECAR_ADDR \"sidecar:port\""));
  EXPECT_EQ(sidecar_->streams("Campaign"), 0);
}

TEST_F(MclTest, HelpListsEveryCommandAndFlag) {
  testbed::CommandResult r = Mcl({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* s : {"mcl run", "mcl observe", "mcl leader", "mcl status",
                        "mcl resign", "MCL_SIDECAR_ADDR", "Exit codes"}) {
    EXPECT_THAT(r.output, HasSubstr(s));
  }
  r = Mcl({"run", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* s : {"--grace", "--restart", "--lease-duration",
                        "MCL_FENCING_TOKEN", "MCL_VALID_UNTIL_MONOTONIC_NS"}) {
    EXPECT_THAT(r.output, HasSubstr(s));
  }
}

TEST_F(MclTest, CommandThatCannotRunIsRefusedBeforeCampaigning) {
  testbed::CommandResult r = Mcl({"run", "--lock=x", "--", "no-such-cmd-here"});
  EXPECT_EQ(r.exit_code, kNotFound);
  EXPECT_THAT(r.output, HasSubstr("no-such-cmd-here: command not found"));
  const std::string not_exec = dir_ + "/not-exec";
  std::ofstream(not_exec) << "#!/bin/sh\n";
  r = Mcl({"run", "--lock=x", "--", not_exec});
  EXPECT_EQ(r.exit_code, kCannotExec);
  EXPECT_THAT(r.output, HasSubstr("not executable"));
  EXPECT_EQ(sidecar_->streams("Campaign"), 0);
}

TEST_F(MclTest, UnreachableSidecarGetsExitCode3NamingTheAddress) {
  auto port = testbed::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  const std::string addr = absl::StrCat("127.0.0.1:", *port);
  for (std::vector<std::string> args :
       {std::vector<std::string>{"leader", "--lock=x", "--timeout=1s"},
        {"resign", "--lock=x", "--timeout=1s"},
        {"observe", "--lock=x", "--timeout=1s"},
        {"run", "--lock=x", "--connect-timeout=1s", "--", "true"}}) {
    testbed::CommandResult r = Mcl(args, {{"MCL_SIDECAR_ADDR", addr}});
    EXPECT_EQ(r.exit_code, kUnreachable) << args[0] << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr(addr)) << args[0];
    EXPECT_THAT(r.output, HasSubstr("MCL_SIDECAR_ADDR")) << args[0];
  }
  testbed::CommandResult r =
      Mcl({"status", "--timeout=1s", "--metrics-addr=" + addr});
  EXPECT_EQ(r.exit_code, kUnreachable) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--metrics-address"));
}

TEST_F(MclTest, RunStartsCmdWithTheGrantInItsEnvironment) {
  StartRun({});
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->request().lock().name(), "lock");
  EXPECT_EQ(s->request().lock().namespace_(), "default");
  EXPECT_EQ(s->request().identity(), "me");
  s->Send(FakeSidecar::Event(mcl::v1::FOLLOWER, "other", 41));
  const mcl::v1::LeadershipEvent e =
      sidecar_->LeaderEvent(42, absl::Seconds(30));
  s->Send(e);
  ASSERT_TRUE(WaitCount("start", 1)) << RunLog();
  const ProbeLine start = Nth("start", 0);
  EXPECT_EQ(start.kv.at("token"), "42");
  EXPECT_EQ(start.kv.at("lock"), "lock");
  EXPECT_EQ(start.kv.at("namespace"), "default");
  EXPECT_EQ(start.kv.at("identity"), "me");
  EXPECT_EQ(start.Int("until"), e.validity().valid_until_monotonic_ns());
  EXPECT_THAT(start.kv.at("until_wall"),
              ::testing::MatchesRegex("20[0-9][0-9]-.*T.*Z"));
  // Its own process group, not mcl's.
  EXPECT_EQ(start.kv.at("pgid"), start.kv.at("pid"));
  EXPECT_NE(start.Int("pgid"), run_->pid());
}

TEST_F(MclTest, BoundLapseStopsCmdAtTheBoundAndTheNextGrantRestartsIt) {
  StartRun({});
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  const mcl::v1::LeadershipEvent e =
      sidecar_->LeaderEvent(42, absl::Seconds(2));
  s->Send(e);  // and then silence: a frozen sidecar
  ASSERT_TRUE(WaitCount("term", 1)) << RunLog();
  const int64_t term = Nth("term", 0).Int("mono");
  EXPECT_GE(term, e.validity().valid_until_monotonic_ns()) << "stopped early";
  EXPECT_THAT(RunLog(), HasSubstr("validity bound passed"));
  EXPECT_FALSE(s->over()) << "a lapse is not a resign";
  s->Send(sidecar_->LeaderEvent(43, absl::Seconds(30)));
  ASSERT_TRUE(WaitCount("start", 2)) << RunLog();
  EXPECT_EQ(Nth("start", 1).kv.at("token"), "43");
}

TEST_F(MclTest, RenewalsKeepTheSameCmdRunningPastTheFirstBound) {
  StartRun({});
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  const mcl::v1::LeadershipEvent first =
      sidecar_->LeaderEvent(42, absl::Milliseconds(1500));
  s->Send(first);
  ASSERT_TRUE(WaitCount("start", 1)) << RunLog();
  // The sidecar renews every 500 ms, as it would every third of its TTL.
  while (MonoNs() < first.validity().valid_until_monotonic_ns() +
                        absl::ToInt64Nanoseconds(absl::Seconds(1))) {
    s->Send(sidecar_->LeaderEvent(42, absl::Milliseconds(1500)));
    absl::SleepFor(absl::Milliseconds(500));
  }
  EXPECT_EQ(Count("start"), 1) << RunLog();
  EXPECT_EQ(Count("term"), 0) << RunLog();
  s->Send(FakeSidecar::Event(mcl::v1::LOST, "me", 42, "deposed"));
  ASSERT_TRUE(WaitCount("term", 1)) << RunLog();
  EXPECT_THAT(RunLog(), HasSubstr("LOST: deposed"));
}

TEST_F(MclTest, CmdThatIgnoresSigtermIsKilledAfterTheGrace) {
  StartRun({"--grace=700ms"}, {"--ignore-term"});
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  s->Send(sidecar_->LeaderEvent(42, absl::Seconds(30)));
  ASSERT_TRUE(WaitCount("start", 1)) << RunLog();
  const pid_t pid = static_cast<pid_t>(Nth("start", 0).Int("pid"));
  s->Send(FakeSidecar::Event(mcl::v1::LOST, "me", 42, "deposed"));
  ASSERT_TRUE(WaitCount("term", 1)) << RunLog();
  const int64_t term = Nth("term", 0).Int("mono");
  // Gone (reaped by mcl) only after the grace.
  ASSERT_TRUE(testbed::WaitUntil([&] { return kill(pid, 0) != 0; }, kWait))
      << RunLog();
  EXPECT_GE(MonoNs() - term, absl::ToInt64Nanoseconds(absl::Milliseconds(700)));
  EXPECT_THAT(RunLog(), HasSubstr("after --grace: SIGKILL"));
  EXPECT_TRUE(run_->running());  // still campaigning
}

TEST_F(MclTest, CmdExitingByItselfResignsAndItsStatusIsMcls) {
  StartRun({}, {"--exit=7"});
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  s->Send(sidecar_->LeaderEvent(42, absl::Seconds(30)));
  ExpectExit(7);
  EXPECT_TRUE(s->WaitCancelled(kWait)) << "not resigned";
  EXPECT_EQ(sidecar_->streams("Campaign"), 1);
}

TEST_F(MclTest, RestartRunsCmdAgainWithTheSameGrant) {
  StartRun({"--restart"}, {"--exit=0"});
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  s->Send(sidecar_->LeaderEvent(42, absl::Seconds(30)));
  ASSERT_TRUE(WaitCount("start", 3)) << RunLog();
  EXPECT_EQ(Nth("start", 2).kv.at("token"), "42");
  EXPECT_FALSE(s->over());
  EXPECT_TRUE(run_->running());
}

TEST_F(MclTest, SigtermStopsCmdFirstThenResignsAndExits0) {
  StartRun({});
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  s->Send(sidecar_->LeaderEvent(42, absl::Seconds(30)));
  ASSERT_TRUE(WaitCount("start", 1)) << RunLog();
  ASSERT_TRUE(run_->Signal(SIGTERM).ok());
  ExpectExit(0);
  ASSERT_EQ(Count("term"), 1) << RunLog();
  ASSERT_TRUE(s->WaitCancelled(kWait)) << "not resigned";
  // The campaign ended only after CMD had been told to stop.
  EXPECT_GE(absl::ToInt64Nanoseconds(*s->cancelled_at()),
            Nth("term", 0).Int("mono"));
  EXPECT_THAT(RunLog(), HasSubstr("resigned"));
}

TEST_F(MclTest, SigtermWhileFollowingResignsAtOnce) {
  StartRun({});
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  s->Send(FakeSidecar::Event(mcl::v1::FOLLOWER, "other", 41));
  ASSERT_TRUE(s->WaitFlushed(kWait));
  ASSERT_TRUE(run_->Signal(SIGINT).ok());
  ExpectExit(0);
  EXPECT_TRUE(s->WaitCancelled(kWait));
  EXPECT_EQ(Count("start"), 0);
}

// A resign from outside is a step-down: CMD stops, and mcl run campaigns again
// (as every mcl client library does on a stream that ends with OK).
TEST_F(MclTest, ResignFromOutsideStopsCmdAndCampaignsAgain) {
  StartRun({});
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  s->Send(sidecar_->LeaderEvent(42, absl::Seconds(30)));
  ASSERT_TRUE(WaitCount("start", 1)) << RunLog();
  testbed::CommandResult r = Mcl({"resign", "--lock=lock", "--identity=me"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resigned lock (was the leader)"));
  ASSERT_TRUE(WaitCount("term", 1)) << RunLog();
  ASSERT_EQ(sidecar_->resigns().size(), 1u);
  EXPECT_EQ(sidecar_->resigns()[0].identity(), "me");
  FakeStream* again = Campaign(1);
  ASSERT_NE(again, nullptr);
  again->Send(sidecar_->LeaderEvent(43, absl::Seconds(30)));
  ASSERT_TRUE(WaitCount("start", 2)) << RunLog();
  ASSERT_TRUE(run_->Signal(SIGTERM).ok());
  ExpectExit(0);
}

TEST_F(MclTest, OldSidecarWithoutValidityIsRefusedWithoutStartingCmd) {
  StartRun({});
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  s->Send(FakeSidecar::Event(mcl::v1::LEADER, "me", 42));
  ExpectExit(kRefused);
  EXPECT_THAT(RunLog(), HasSubstr("upgrade the sidecar"));
  EXPECT_EQ(Count("start"), 0);
  EXPECT_TRUE(s->WaitCancelled(kWait));
}

TEST_F(MclTest, SidecarRestartStopsCmdAndANewGrantStartsItWithTheNewToken) {
  StartRun({});
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  s->Send(sidecar_->LeaderEvent(42, absl::Seconds(30)));
  ASSERT_TRUE(WaitCount("start", 1)) << RunLog();
  sidecar_->Kill();
  ASSERT_TRUE(WaitCount("term", 1)) << RunLog();
  ASSERT_TRUE(sidecar_->Restart().ok());
  FakeStream* s2 = Campaign(1);
  ASSERT_NE(s2, nullptr);
  s2->Send(sidecar_->LeaderEvent(50, absl::Seconds(30)));
  ASSERT_TRUE(WaitCount("start", 2)) << RunLog();
  EXPECT_EQ(Nth("start", 1).kv.at("token"), "50");
}

TEST_F(MclTest, LeaderPrintsTheGrantOrExits1) {
  testbed::CommandResult r = Mcl({"leader", "--lock=lock"});
  EXPECT_EQ(r.exit_code, kNoLeader) << r.output;
  EXPECT_THAT(r.output, HasSubstr("nobody leads lock now"));
  mcl::v1::Leader l;
  l.set_identity("app-0");
  l.set_cluster("cluster-0");
  l.set_fencing_token(42);
  sidecar_->SetLeader(l);
  r = Mcl({"leader", "--lock=lock"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "leader=app-0 cluster=cluster-0 token=42\n");
  r = Mcl({"leader", "--lock=lock", "-o", "json"});
  EXPECT_EQ(r.output,
            "{\"identity\":\"app-0\",\"cluster\":\"cluster-0\","
            "\"fencingToken\":\"42\"}\n");
}

TEST_F(MclTest, ResignWithoutACampaignExits4WithTheSidecarsMessage) {
  testbed::CommandResult r = Mcl({"resign", "--lock=lock"});
  EXPECT_EQ(r.exit_code, kRefused) << r.output;
  EXPECT_THAT(r.output, HasSubstr("no Campaign for lock lock"));
}

TEST_F(MclTest, ObservePrintsALinePerChangeUntilSigterm) {
  auto p = Subprocess::Start({Mcl(), "observe", "--lock=lock"},
                             dir_ + "/observe.log", Env());
  ASSERT_TRUE(p.ok());
  FakeStream* s = sidecar_->WaitForStream("Observe", 0, kWait);
  ASSERT_NE(s, nullptr);
  s->Send(FakeSidecar::Event(mcl::v1::NO_LEADER));
  s->Send(FakeSidecar::Event(mcl::v1::FOLLOWER, "app-0", 42));
  s->Send(FakeSidecar::Event(mcl::v1::FOLLOWER, "app-0", 42));  // no change
  s->Send(FakeSidecar::Event(mcl::v1::FOLLOWER, "app-1", 43));
  ASSERT_TRUE(p->WaitForLog("leader=app-1", kWait)) << p->Log();
  ASSERT_TRUE(p->Signal(SIGTERM).ok());
  auto code = p->Wait(kWait);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
  std::vector<std::string> lines =
      absl::StrSplit(p->Log(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << p->Log();
  EXPECT_THAT(lines[0], ::testing::EndsWith(" NO_LEADER"));
  EXPECT_THAT(
      lines[1],
      ::testing::EndsWith(" FOLLOWER leader=app-0 cluster=cluster-0 token=42"));
  EXPECT_THAT(lines[2], HasSubstr("leader=app-1"));

  auto j = Subprocess::Start({Mcl(), "observe", "--lock=lock", "-o", "json"},
                             dir_ + "/observe-json.log", Env());
  ASSERT_TRUE(j.ok());
  FakeStream* s2 = sidecar_->WaitForStream("Observe", 1, kWait);
  ASSERT_NE(s2, nullptr);
  s2->Send(FakeSidecar::Event(mcl::v1::FOLLOWER, "app-0", 42));
  ASSERT_TRUE(j->WaitForLog("\"fencingToken\":\"42\"", kWait)) << j->Log();
  EXPECT_THAT(j->Log(), HasSubstr("\"state\":\"FOLLOWER\""));
  ASSERT_TRUE(j->Signal(SIGINT).ok());
  EXPECT_EQ(j->Wait(kWait).value_or(-1), 0);
}

TEST_F(MclTest, ObserveReconnectsAfterASidecarRestartAndPrintsOnlyChanges) {
  auto p = Subprocess::Start({Mcl(), "observe", "--lock=lock"},
                             dir_ + "/observe.log", Env());
  ASSERT_TRUE(p.ok());
  FakeStream* s = sidecar_->WaitForStream("Observe", 0, kWait);
  ASSERT_NE(s, nullptr);
  s->Send(FakeSidecar::Event(mcl::v1::FOLLOWER, "app-0", 42));
  ASSERT_TRUE(p->WaitForLog("token=42", kWait)) << p->Log();
  sidecar_->Kill();
  ASSERT_TRUE(sidecar_->Restart().ok());
  FakeStream* s2 = sidecar_->WaitForStream("Observe", 1, kWait);
  ASSERT_NE(s2, nullptr) << p->Log();
  s2->Send(FakeSidecar::Event(mcl::v1::FOLLOWER, "app-0", 42));  // the same
  s2->Send(FakeSidecar::Event(mcl::v1::FOLLOWER, "app-1", 43));
  ASSERT_TRUE(p->WaitForLog("token=43", kWait)) << p->Log();
  ASSERT_TRUE(p->Signal(SIGTERM).ok());
  EXPECT_EQ(p->Wait(kWait).value_or(-1), 0);
  const std::string log = p->Log();
  size_t n = 0;
  for (size_t at = log.find("token=42"); at != std::string::npos;
       at = log.find("token=42", at + 1)) {
    ++n;
  }
  EXPECT_EQ(n, 1u) << log;
  EXPECT_THAT(log, HasSubstr("the Observe stream ended"));
}

// The reference example (run.sh runs it on the real test bed) on the library.
TEST_F(MclTest, ExampleDoesLeaderWorkOnlyWhileLeadingAndResignsOnSigterm) {
  std::map<std::string, std::string> env = Env();
  env["MCL_LOCK"] = "lock";
  auto p = Subprocess::Start({Runfile("client-stubs/cpp/election_example")},
                             dir_ + "/example.log", env);
  ASSERT_TRUE(p.ok());
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  s->Send(FakeSidecar::Event(mcl::v1::FOLLOWER, "other", 41));
  s->Send(sidecar_->LeaderEvent(42, absl::Seconds(30)));
  s->Send(sidecar_->LeaderEvent(42, absl::Seconds(30)));  // a renewal
  ASSERT_TRUE(p->WaitForLog("leader work token=42", kWait)) << p->Log();
  s->Send(FakeSidecar::Event(mcl::v1::LOST, "me", 42, "deposed"));
  ASSERT_TRUE(p->WaitForLog("event state=LOST", kWait)) << p->Log();
  ASSERT_TRUE(p->Signal(SIGTERM).ok());
  EXPECT_EQ(p->Wait(kWait).value_or(-1), 0) << p->Log();
  EXPECT_TRUE(s->WaitCancelled(kWait));
  std::vector<std::string> lines =
      absl::StrSplit(p->Log(), '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 5u) << p->Log();
  EXPECT_EQ(lines[0],
            "event state=FOLLOWER leader=other cluster=cluster-0 token=41");
  EXPECT_EQ(lines[1],
            "event state=LEADER leader=me cluster=cluster-0 token=42");
  EXPECT_EQ(lines.back(), "resigned, bye");
  bool leading = false;
  for (const std::string& l : lines) {
    if (absl::StartsWith(l, "event state=")) {
      leading = absl::StartsWith(l, "event state=LEADER");
    }
    if (absl::StartsWith(l, "leader work")) {
      EXPECT_TRUE(leading) << p->Log();
    }
  }
  EXPECT_THAT(p->Log(), ::testing::Not(HasSubstr(
                            "state=LEADER leader=me cluster=cluster-0 "
                            "token=42\nevent state=LEADER")));
}

TEST(MetricsTest, ParsesTheSidecarsPerLockMetrics) {
  auto m = ParseSidecarMetrics(
      "# HELP mcl_sidecar_is_leader 1 while ...\n"
      "# TYPE mcl_sidecar_is_leader gauge\n"
      "mcl_sidecar_is_leader{lock=\"default/a\"} 1\n"
      "mcl_sidecar_is_leader{lock=\"ns/b.c\"} 0\n"
      "mcl_sidecar_leader_transitions_total{lock=\"default/a\"} 3\n"
      "mcl_sidecar_renew_errors_total{lock=\"ns/b.c\"} 2\n"
      "mcl_sidecar_campaigns{lock=\"default/a\"} 1\n"
      "mcl_sidecar_up 1\n"
      "process_cpu_seconds_total 4\n");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_TRUE(m->at("default/a").is_leader);
  EXPECT_EQ(m->at("default/a").transitions, 3);
  EXPECT_FALSE(m->at("ns/b.c").is_leader);
  EXPECT_EQ(m->at("ns/b.c").renew_errors, 2);
  EXPECT_EQ(m->at("default/a").campaigns, 1);
  EXPECT_FALSE(m->at("ns/b.c").campaigns.has_value()) << "an older sidecar";
  EXPECT_FALSE(
      ParseSidecarMetrics("mcl_sidecar_is_leader{lock=\"a\"} x\n").ok());
}

}  // namespace
}  // namespace mcl::cli
