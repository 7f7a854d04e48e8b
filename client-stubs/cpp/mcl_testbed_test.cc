// `mcl run` on the real test bed: a global etcd, two clusters of real
// kube-apiservers, the real election controller in each, real sidecars. In
// cluster 0 `mcl run` (through sidecar A) runs the test CMD, which records on
// CLOCK_MONOTONIC when it started (and with which token) and when SIGTERM
// reached it; in cluster 1 candidate B campaigns through sidecar B (e2e/
// fleet.h records when it was told LEADER, on the same clock). So "CMD stopped
// before B was granted" is a comparison of two CLOCK_MONOTONIC readings on
// this machine, and S1 is judged by e2e/history.h's checker.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "client-stubs/cpp/testing/probe.h"
#include "e2e/fleet.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testbed/cc/free_port.h"
#include "testbed/cc/subprocess.h"

namespace mcl::cli {
namespace {

using ::mcl::client::testing::ReadProbe;
using ::mcl::e2e::Fleet;
using ::mcl::e2e::Interval;
using ::mcl::e2e::MonoNow;
using ::mcl::testbed::Runfile;
using ::mcl::testbed::Subprocess;
using ::testing::HasSubstr;

constexpr absl::Duration kGrant = absl::Seconds(30);
// A graceful handoff (resign, stream end) is by watch, well under this.
constexpr absl::Duration kHandoff = absl::Seconds(5);

class MclTestbedTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    e2e::FleetOptions o;
    o.clusters = 2;
    auto f = Fleet::Start(o);
    ASSERT_TRUE(f.ok()) << f.status();
    fleet_ = f->release();
    auto b = fleet_->AddSidecar(1);
    ASSERT_TRUE(b.ok()) << b.status();
    sidecar_b_ = *b;
    // Sidecar A, started here rather than by the fleet, to serve /metrics.
    auto port = testbed::FreeLoopbackPort();
    auto metrics = testbed::FreeLoopbackPort();
    ASSERT_TRUE(port.ok() && metrics.ok());
    address_a_ = absl::StrCat("127.0.0.1:", *port);
    metrics_a_ = absl::StrCat("127.0.0.1:", *metrics);
    auto a = Subprocess::Start(
        {Runfile("sidecar/mcl-sidecar"),
         "--kubeconfig=" +
             fleet_->testbed().kubeconfig(0, testbed::Identity::kSidecar),
         "--listen=" + address_a_, "--metrics-address=" + metrics_a_,
         "--namespace=default", "--identity=sidecar-a", "--lease-duration=2s"},
        fleet_->LogDir() + "/sidecar-a.log");
    ASSERT_TRUE(a.ok()) << a.status();
    sidecar_a_ = new Subprocess(std::move(*a));
    auto channel =
        grpc::CreateChannel(address_a_, grpc::InsecureChannelCredentials());
    ASSERT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() +
                                          std::chrono::seconds(20)))
        << sidecar_a_->Log();
  }
  static void TearDownTestSuite() {
    if (sidecar_a_ != nullptr) {
      (void)kill(sidecar_a_->pid(), SIGCONT);
      (void)sidecar_a_->Stop(absl::Seconds(10));
      delete sidecar_a_;
    }
    delete fleet_;
  }

  void SetUp() override {
    ASSERT_NE(fleet_, nullptr);
    ASSERT_NE(sidecar_a_, nullptr);
    lock_ = testbed::UniqueName("mcl");
    probe_ = fleet_->LogDir() + "/" + lock_ + ".probe";
  }
  void TearDown() override {
    (void)kill(sidecar_a_->pid(), SIGCONT);
    if (run_ != nullptr && run_->running()) (void)run_->Stop(absl::Seconds(10));
  }

  std::map<std::string, std::string> EnvA() {
    return {{"MCL_SIDECAR_ADDR", address_a_},
            {"MCL_SIDECAR_METRICS_ADDR", metrics_a_}};
  }

  // `mcl run` through sidecar A; waits until CMD started. Returns its token.
  int64_t StartRun() {
    auto p = Subprocess::Start(
        {Runfile("client-stubs/cpp/mcl"), "run", "--lock=" + lock_,
         "--identity=run-a", "--grace=2s", "--",
         Runfile("client-stubs/cpp/testing/test_cmd"), probe_},
        fleet_->LogDir() + "/" + lock_ + ".mcl.log", EnvA());
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return -1;
    run_ = std::make_unique<Subprocess>(std::move(*p));
    bool started = testbed::WaitUntil(
        [&] { return !ReadProbe(probe_, "start").empty() || !run_->running(); },
        kGrant);
    EXPECT_TRUE(started && run_->running())
        << "CMD did not start; mcl run's log:\n"
        << run_->Log() << "\nsidecar A:\n"
        << sidecar_a_->Log();
    auto lines = ReadProbe(probe_, "start");
    return lines.empty() ? -1 : lines[0].Int("token");
  }

  // Candidate B in cluster 1 campaigns and follows run-a.
  e2e::App* CandidateB() {
    e2e::App* b = fleet_->AddApp("b-" + lock_, sidecar_b_);
    b->Campaign(lock_, 2);
    EXPECT_TRUE(b->WaitFor(mcl::v1::FOLLOWER, kGrant));
    return b;
  }

  // When B was told LEADER (CLOCK_MONOTONIC), waiting up to `timeout`.
  std::optional<absl::Duration> BGranted(e2e::App* b, absl::Duration timeout) {
    std::optional<absl::Duration> at;
    fleet_->history().WaitUntil(
        [&](const std::vector<Interval>& intervals) {
          for (const Interval& i : intervals) {
            if (i.app == b->identity()) {
              at = i.start;
              return true;
            }
          }
          return false;
        },
        timeout);
    return at;
  }

  // CMD's leadership as an interval in the history (start line to SIGTERM),
  // then the S1/S2 checker over everything the fleet recorded.
  void CheckHistory(int64_t token) {
    auto start = ReadProbe(probe_, "start");
    auto term = ReadProbe(probe_, "term");
    ASSERT_FALSE(start.empty());
    ASSERT_FALSE(term.empty());
    e2e::History h;
    for (const Interval& i : fleet_->history().Intervals()) {
      if (i.app != "b-" + lock_) continue;
      h.Leader(i.app, i.token, i.start);
      if (i.end != absl::InfiniteDuration()) h.Lost(i.app, i.end);
    }
    h.Leader("cmd-" + lock_, token, absl::Nanoseconds(start[0].Int("mono")));
    h.Lost("cmd-" + lock_, absl::Nanoseconds(term[0].Int("mono")));
    EXPECT_TRUE(h.Check().ok()) << h.Check();
  }

  static Fleet* fleet_;
  static e2e::Sidecar* sidecar_b_;
  static Subprocess* sidecar_a_;
  static std::string address_a_, metrics_a_;
  std::string lock_, probe_;
  std::unique_ptr<Subprocess> run_;
};

Fleet* MclTestbedTest::fleet_ = nullptr;
e2e::Sidecar* MclTestbedTest::sidecar_b_ = nullptr;
Subprocess* MclTestbedTest::sidecar_a_ = nullptr;
std::string MclTestbedTest::address_a_;
std::string MclTestbedTest::metrics_a_;

TEST_F(MclTestbedTest, FrozenSidecarStopsCmdBeforeAnotherCandidateIsGranted) {
  const int64_t token = StartRun();
  ASSERT_GT(token, 0);
  e2e::App* b = CandidateB();

  // The token in CMD's environment is the grant everyone sees.
  auto leader = testbed::RunCommand(
      {Runfile("client-stubs/cpp/mcl"), "leader", "--lock=" + lock_},
      absl::Seconds(20), "", {{"MCL_SIDECAR_ADDR", sidecar_b_->address}});
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(leader->exit_code, 0) << leader->output;
  EXPECT_THAT(leader->output,
              ::testing::StartsWith(absl::StrCat(
                  "leader=run-a cluster=cluster-0 token=", token, " ")));
  // `mcl status` on sidecar A lists the lock as led from here, with one
  // campaign (mcl run's).
  auto status = testbed::RunCommand({Runfile("client-stubs/cpp/mcl"), "status"},
                                    absl::Seconds(20), "", EnvA());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->exit_code, 0) << status->output;
  EXPECT_THAT(status->output,
              HasSubstr(absl::StrCat("default/", lock_, "\t1\tyes\trun-a\t")));

  const absl::Duration frozen = MonoNow();
  ASSERT_EQ(kill(sidecar_a_->pid(), SIGSTOP), 0);
  std::optional<absl::Duration> granted = BGranted(b, kGrant);
  ASSERT_TRUE(granted.has_value())
      << "B was not granted while A's sidecar was frozen";
  auto term = ReadProbe(probe_, "term");
  ASSERT_FALSE(term.empty()) << "CMD was not stopped; mcl run:\n"
                             << run_->Log();
  const absl::Duration stopped = absl::Nanoseconds(term[0].Int("mono"));
  EXPECT_LT(stopped, *granted)
      << "CMD stopped " << (stopped - *granted) << " after B's grant";
  EXPECT_GT(stopped, frozen);
  EXPECT_GT(b->token(), token);
  EXPECT_THAT(run_->Log(), HasSubstr("validity bound passed"));
  CheckHistory(token);
  ::testing::Test::RecordProperty(
      "cmd_stopped_before_grant_ms",
      static_cast<int>(absl::ToInt64Milliseconds(*granted - stopped)));
  std::printf("CMD stopped %s after the freeze and %s before B's grant\n",
              absl::FormatDuration(stopped - frozen).c_str(),
              absl::FormatDuration(*granted - stopped).c_str());
  ASSERT_EQ(kill(sidecar_a_->pid(), SIGCONT), 0);
}

TEST_F(MclTestbedTest, SigtermToMclRunStopsCmdAndResignsAtOnce) {
  const int64_t token = StartRun();
  ASSERT_GT(token, 0);
  e2e::App* b = CandidateB();
  const absl::Duration signalled = MonoNow();
  ASSERT_TRUE(run_->Signal(SIGTERM).ok());
  std::optional<absl::Duration> granted = BGranted(b, kGrant);
  ASSERT_TRUE(granted.has_value());
  EXPECT_LT(*granted - signalled, kHandoff)
      << "the handoff took " << (*granted - signalled);
  auto code = run_->Wait(absl::Seconds(15));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << run_->Log();
  auto term = ReadProbe(probe_, "term");
  ASSERT_FALSE(term.empty());
  EXPECT_LT(absl::Nanoseconds(term[0].Int("mono")), *granted);
  EXPECT_GT(b->token(), token);
  CheckHistory(token);
  std::printf("handoff after SIGTERM to mcl run: %s\n",
              absl::FormatDuration(*granted - signalled).c_str());
}

}  // namespace
}  // namespace mcl::cli
