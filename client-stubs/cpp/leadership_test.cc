// The library against a scripted sidecar (testing/fake_sidecar.h: a real gRPC
// server on loopback). Deadline tests run on a FakeClock that the fake sidecar
// stamps its bounds with, so "the bound passed" is an Advance(), not a sleep;
// one test checks the real CLOCK_MONOTONIC path.
#include "client-stubs/cpp/leadership.h"

#include <stdlib.h>

#include <atomic>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "client-stubs/cpp/testing/fake_sidecar.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testbed/cc/free_port.h"

namespace mcl::client {
namespace {

using ::mcl::client::testing::FakeSidecar;
using ::mcl::client::testing::FakeStream;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(10);

// What each run of fn saw: started with a token and bound; cancelled, when and
// why; returned.
struct FnRun {
  int64_t token = 0;
  absl::Duration valid_until;
  absl::Duration cancelled_at = absl::InfiniteDuration();  // OnCancel, clock
  absl::Duration returned_at = absl::InfiniteDuration();
  std::string reason;
  bool leader_at_start = false;
  bool returned = false;
};

class Recorder {
 public:
  explicit Recorder(Clock* clock) : clock_(clock) {}

  // fn: records, waits for the cancellation (or returns `finish` at once
  // when set), records again.
  LeaderFn Fn(const std::optional<absl::Status>& finish = std::nullopt) {
    return [this, finish](const LeaderContext& ctx) -> absl::Status {
      size_t i;
      {
        absl::MutexLock l(&mu_);
        i = runs_.size();
        FnRun r;
        r.token = ctx.fencing_token();
        r.valid_until = ctx.valid_until();
        r.leader_at_start = ctx.IsLeaderNow();
        runs_.push_back(r);
      }
      ctx.OnCancel([this, i] {
        absl::MutexLock l(&mu_);
        runs_[i].cancelled_at = clock_->Monotonic();
      });
      if (finish.has_value()) {
        absl::MutexLock l(&mu_);
        runs_[i].returned = true;
        return *finish;
      }
      ctx.WaitForCancel(absl::InfiniteDuration());
      EXPECT_FALSE(ctx.IsLeaderNow());
      absl::MutexLock l(&mu_);
      runs_[i].reason = ctx.cancel_reason();
      runs_[i].returned_at = clock_->Monotonic();
      runs_[i].returned = true;
      return absl::OkStatus();
    };
  }

  bool WaitRuns(size_t n) {
    absl::MutexLock l(&mu_);
    auto c = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return runs_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&c), kWait);
  }
  bool WaitReturned(size_t i) {
    absl::MutexLock l(&mu_);
    auto c = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return runs_.size() > i && runs_[i].returned;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&c), kWait);
  }
  FnRun run(size_t i) {
    absl::MutexLock l(&mu_);
    return runs_.at(i);
  }
  size_t runs() {
    absl::MutexLock l(&mu_);
    return runs_.size();
  }

 private:
  Clock* const clock_;
  absl::Mutex mu_;
  std::vector<FnRun> runs_ ABSL_GUARDED_BY(mu_);
};

class LeadershipTest : public ::testing::Test {
 protected:
  void Init(Clock* clock) {
    clock_ = clock;
    auto s = FakeSidecar::Start(clock);
    ASSERT_TRUE(s.ok()) << s.status();
    sidecar_ = std::move(*s);
    recorder_ = std::make_unique<Recorder>(clock);
  }
  void SetUp() override { Init(&fake_); }

  LeadershipOptions Options() {
    LeadershipOptions o;
    o.sidecar_address = sidecar_->address();
    o.lock = "lock";
    o.lock_namespace = "default";
    o.identity = "me";
    o.clock = clock_;
    o.reconnect = {absl::Milliseconds(10), absl::Milliseconds(100), 2};
    o.on_event = [this](const mcl::v1::LeadershipEvent&) {
      absl::MutexLock l(&mu_);
      ++events_;
    };
    return o;
  }

  std::unique_ptr<Leadership> Start(LeaderFn fn) {
    auto l = Leadership::Start(Options(), std::move(fn));
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? std::move(*l) : nullptr;
  }

  // Sends `e` on `s` and waits until the library has applied it.
  void Deliver(FakeStream* s, const mcl::v1::LeadershipEvent& e) {
    int want;
    {
      absl::MutexLock l(&mu_);
      want = events_ + 1;
    }
    s->Send(e);
    absl::MutexLock l(&mu_);
    auto c = [&]()
                 ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return events_ >= want; };
    ASSERT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&c), kWait));
  }

  FakeStream* Campaign(int n) {
    FakeStream* s = sidecar_->WaitForStream("Campaign", n, kWait);
    EXPECT_NE(s, nullptr) << "no Campaign stream #" << n;
    return s;
  }

  FakeClock fake_;
  Clock* clock_ = nullptr;
  std::unique_ptr<FakeSidecar> sidecar_;
  std::unique_ptr<Recorder> recorder_;
  absl::Mutex mu_;
  int events_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST_F(LeadershipTest, CampaignsWithTheOptionsAndRunsFnOnlyAfterLeader) {
  auto l = Start(recorder_->Fn());
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->request().lock().name(), "lock");
  EXPECT_EQ(s->request().lock().namespace_(), "default");
  EXPECT_EQ(s->request().identity(), "me");
  Deliver(s, FakeSidecar::Event(mcl::v1::FOLLOWER, "other", 3));
  EXPECT_FALSE(l->IsLeaderNow());
  EXPECT_EQ(recorder_->runs(), 0u);
  const mcl::v1::LeadershipEvent leader =
      sidecar_->LeaderEvent(7, absl::Seconds(2));
  Deliver(s, leader);
  ASSERT_TRUE(recorder_->WaitRuns(1));
  EXPECT_EQ(recorder_->run(0).token, 7);
  EXPECT_TRUE(recorder_->run(0).leader_at_start);
  EXPECT_EQ(absl::ToInt64Nanoseconds(recorder_->run(0).valid_until),
            leader.validity().valid_until_monotonic_ns());
  EXPECT_TRUE(l->IsLeaderNow());
  ASSERT_TRUE(l->Current().has_value());
  EXPECT_EQ(l->Current()->leader.fencing_token(), 7);
}

TEST_F(LeadershipTest, BoundLapseWithoutRenewalCancelsButKeepsCampaigning) {
  auto l = Start(recorder_->Fn());
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  const absl::Duration t0 = fake_.Monotonic();
  Deliver(s, sidecar_->LeaderEvent(7, absl::Seconds(2)));
  ASSERT_TRUE(recorder_->WaitRuns(1));
  fake_.Advance(absl::Milliseconds(1999));
  EXPECT_TRUE(l->IsLeaderNow());
  fake_.Advance(absl::Milliseconds(1));  // the bound: the sidecar is silent
  EXPECT_FALSE(l->IsLeaderNow());
  ASSERT_TRUE(recorder_->WaitReturned(0));
  const FnRun r = recorder_->run(0);
  EXPECT_EQ(r.reason, "validity bound passed");
  EXPECT_EQ(r.cancelled_at, t0 + absl::Seconds(2));
  // Not a resign: the stream stays open, and the next LEADER runs fn again.
  EXPECT_FALSE(s->over());
  Deliver(s, sidecar_->LeaderEvent(7, absl::Seconds(2)));
  ASSERT_TRUE(recorder_->WaitRuns(2));
  EXPECT_EQ(recorder_->run(1).token, 7);
}

TEST_F(LeadershipTest, RenewalMovesTheBoundWithoutRestartingFn) {
  auto l = Start(recorder_->Fn());
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  Deliver(s, sidecar_->LeaderEvent(7, absl::Seconds(2)));
  ASSERT_TRUE(recorder_->WaitRuns(1));
  fake_.Advance(absl::Milliseconds(1500));
  Deliver(s, sidecar_->LeaderEvent(7, absl::Seconds(2)));  // until t0 + 3.5 s
  fake_.Advance(absl::Milliseconds(1000));                 // past t0 + 2 s
  EXPECT_TRUE(l->IsLeaderNow());
  EXPECT_EQ(recorder_->runs(), 1u);
  fake_.Advance(absl::Milliseconds(1000));  // t0 + 3.5 s
  ASSERT_TRUE(recorder_->WaitReturned(0));
  EXPECT_EQ(recorder_->run(0).reason, "validity bound passed");
  EXPECT_EQ(recorder_->runs(), 1u);
}

TEST_F(LeadershipTest, LostCancelsAndANewGrantRunsFnAgainWithItsToken) {
  auto l = Start(recorder_->Fn());
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  Deliver(s, sidecar_->LeaderEvent(7, absl::Seconds(2)));
  ASSERT_TRUE(recorder_->WaitRuns(1));
  Deliver(s, FakeSidecar::Event(mcl::v1::LOST, "me", 7, "deposed"));
  EXPECT_FALSE(l->IsLeaderNow());
  ASSERT_TRUE(recorder_->WaitReturned(0));
  EXPECT_EQ(recorder_->run(0).reason, "LOST: deposed");
  Deliver(s, sidecar_->LeaderEvent(9, absl::Seconds(2)));
  ASSERT_TRUE(recorder_->WaitRuns(2));
  EXPECT_EQ(recorder_->run(1).token, 9);
  // A LEADER of another grant without LOST first ends the term too.
  Deliver(s, sidecar_->LeaderEvent(11, absl::Seconds(2)));
  ASSERT_TRUE(recorder_->WaitReturned(1));
  EXPECT_EQ(recorder_->run(1).reason, "a new grant (fencing token 11)");
  ASSERT_TRUE(recorder_->WaitRuns(3));
  EXPECT_EQ(recorder_->run(2).token, 11);
}

TEST_F(LeadershipTest, OnCancelAfterTheCancellationRunsAtOnce) {
  std::atomic<bool> ran{false};
  absl::Notification started, checked;
  auto l = Start([&](const LeaderContext& ctx) {
    started.Notify();
    ctx.WaitForCancel(absl::InfiniteDuration());
    ctx.OnCancel([&] { ran = true; });
    EXPECT_TRUE(ran);
    checked.Notify();
    return absl::OkStatus();
  });
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  Deliver(s, sidecar_->LeaderEvent(7, absl::Seconds(2)));
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kWait));
  Deliver(s, FakeSidecar::Event(mcl::v1::NO_LEADER));
  EXPECT_TRUE(checked.WaitForNotificationWithTimeout(kWait));
}

TEST_F(LeadershipTest, StopCancelsFnFirstAndResignsOnlyAfterItReturned) {
  absl::Duration fn_returned;
  auto l = Start([&](const LeaderContext& ctx) {
    ctx.WaitForCancel(absl::InfiniteDuration());
    EXPECT_EQ(ctx.cancel_reason(), "stopped");
    fake_.Advance(absl::Milliseconds(300));  // slow cleanup
    fn_returned = fake_.Monotonic();
    return absl::OkStatus();
  });
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  Deliver(s, sidecar_->LeaderEvent(7, absl::Seconds(10)));
  ASSERT_TRUE(l->IsLeaderNow());
  l->Stop();
  EXPECT_FALSE(l->IsLeaderNow());
  EXPECT_TRUE(l->Wait().ok());
  ASSERT_TRUE(s->WaitCancelled(kWait));
  EXPECT_GE(*s->cancelled_at(), fn_returned);
}

TEST_F(LeadershipTest, FnReturningWhileLeaderEndsTheCampaignWithItsStatus) {
  auto l = Start(recorder_->Fn(absl::DataLossError("work failed")));
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  Deliver(s, sidecar_->LeaderEvent(7, absl::Seconds(10)));
  absl::Status st = l->Wait();
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_TRUE(s->WaitCancelled(kWait));  // resigned
  EXPECT_EQ(sidecar_->streams("Campaign"), 1);
}

TEST_F(LeadershipTest, FnThatStopsAtTheBoundByPollingKeepsTheCampaign) {
  auto l = Start([&](const LeaderContext& ctx) {
    while (ctx.IsLeaderNow()) {
      ctx.WaitForCancel(absl::Milliseconds(10));  // on the fake clock
    }
    return absl::OkStatus();
  });
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  Deliver(s, sidecar_->LeaderEvent(7, absl::Seconds(1)));
  fake_.Advance(absl::Seconds(1));
  EXPECT_FALSE(l->WaitFor(absl::ZeroDuration()).has_value());
  Deliver(s, sidecar_->LeaderEvent(8, absl::Seconds(1)));
  EXPECT_TRUE(l->IsLeaderNow());
  EXPECT_FALSE(s->over());
}

TEST_F(LeadershipTest, ClockCheckFailureEndsTheCampaignWithoutLeading) {
  auto l = Start(recorder_->Fn());
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  // Sent "later" than our clock reads: another host, another clock.
  mcl::v1::LeadershipEvent e = sidecar_->LeaderEvent(7, absl::Seconds(5));
  e.mutable_validity()->set_sent_monotonic_ns(
      e.validity().sent_monotonic_ns() +
      absl::ToInt64Nanoseconds(absl::Hours(1)));
  s->Send(e);
  absl::Status st = l->Wait();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("clock check failed"));
  EXPECT_EQ(recorder_->runs(), 0u);
  EXPECT_TRUE(s->WaitCancelled(kWait));
  EXPECT_FALSE(l->IsLeaderNow());
}

TEST_F(LeadershipTest, LeaderWithoutValidityIsNeverActedOn) {
  auto l = Start(recorder_->Fn());
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  s->Send(FakeSidecar::Event(mcl::v1::LEADER, "me", 7));
  absl::Status st = l->Wait();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("upgrade the sidecar"));
  EXPECT_EQ(recorder_->runs(), 0u);
  EXPECT_TRUE(s->WaitCancelled(kWait));
}

TEST_F(LeadershipTest, PermanentStreamErrorsEndTheCampaign) {
  for (auto [code, want] :
       {std::pair{grpc::StatusCode::NOT_FOUND, absl::StatusCode::kNotFound},
        {grpc::StatusCode::INVALID_ARGUMENT,
         absl::StatusCode::kInvalidArgument},
        {grpc::StatusCode::ALREADY_EXISTS, absl::StatusCode::kAlreadyExists}}) {
    const int n = sidecar_->streams("Campaign");
    auto l = Start(recorder_->Fn());
    FakeStream* s = Campaign(n);
    ASSERT_NE(s, nullptr);
    s->End(grpc::Status(code, "namespace \"nope\" does not exist"));
    absl::Status st = l->Wait();
    EXPECT_EQ(st.code(), want) << st;
    EXPECT_THAT(st.message(), HasSubstr("namespace \"nope\""));
    EXPECT_EQ(sidecar_->streams("Campaign"), n + 1) << "it campaigned again";
  }
}

TEST_F(LeadershipTest, BadOptionsAreRefusedWithWhatToFix) {
  auto bad = [&](auto mutate, const std::string& says) {
    LeadershipOptions o = Options();
    mutate(o);
    auto l = Leadership::Start(o, recorder_->Fn());
    ASSERT_FALSE(l.ok());
    EXPECT_EQ(l.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(l.status().message(), HasSubstr(says));
  };
  bad([](LeadershipOptions& o) { o.lock = ""; }, "the lock name is empty");
  bad([](LeadershipOptions& o) { o.lock = "My_Lock"; },
      "has 'M' at position 0");
  bad([](LeadershipOptions& o) { o.lock = "a..b"; },
      "empty '.'-separated part");
  bad([](LeadershipOptions& o) { o.lock = std::string(254, 'a'); },
      "at most 253");
  bad([](LeadershipOptions& o) { o.lock_namespace = "a.b"; }, "DNS-1123 label");
  bad([](LeadershipOptions& o) { o.lease_duration_seconds = 1; }, "2..3600");
  bad([](LeadershipOptions& o) { o.sidecar_address = "localhost"; },
      "HOST:PORT");
  bad([](LeadershipOptions& o) { o.sidecar_address = "http://x:1"; },
      "HOST:PORT");
  bad([](LeadershipOptions& o) { o.sidecar_address = "unix:relative"; },
      "absolute");
  auto no_fn = Leadership::Start(Options(), nullptr);
  EXPECT_EQ(no_fn.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SidecarAddressTest, ComesFromTheEnvironmentWithTheChartsDefault) {
  unsetenv("MCL_SIDECAR_ADDR");
  EXPECT_EQ(*SidecarAddress(""), "127.0.0.1:7400");
  setenv("MCL_SIDECAR_ADDR", "unix:///run/mcl/sock", 1);
  EXPECT_EQ(*SidecarAddress(""), "unix:///run/mcl/sock");
  EXPECT_EQ(*SidecarAddress("[::1]:7400"), "[::1]:7400");
  setenv("MCL_SIDECAR_ADDR", "127.0.0.1:http", 1);
  EXPECT_THAT(SidecarAddress("").status().message(),
              HasSubstr("MCL_SIDECAR_ADDR \"127.0.0.1:http\""));
  unsetenv("MCL_SIDECAR_ADDR");
}

// --- on the real clock ------------------------------------------------------

class RealClockLeadershipTest : public LeadershipTest {
 protected:
  void SetUp() override { Init(Clock::Real()); }
};

TEST_F(RealClockLeadershipTest, BoundIsEnforcedOnClockMonotonic) {
  auto l = Start(recorder_->Fn());
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  const mcl::v1::LeadershipEvent e =
      sidecar_->LeaderEvent(7, absl::Milliseconds(300));
  s->Send(e);
  ASSERT_TRUE(recorder_->WaitRuns(1));
  ASSERT_TRUE(recorder_->WaitReturned(0));
  const FnRun r = recorder_->run(0);
  EXPECT_EQ(r.reason, "validity bound passed");
  // Never before the bound (the library waits on CLOCK_MONOTONIC, to the ns).
  EXPECT_GE(r.cancelled_at,
            absl::Nanoseconds(e.validity().valid_until_monotonic_ns()));
}

TEST_F(RealClockLeadershipTest,
       SidecarRestartCancelsAndReconnectsWithoutCarryingLeadership) {
  std::vector<absl::Status> disconnects;
  absl::Mutex dmu;
  LeadershipOptions o = Options();
  o.on_disconnect = [&](const absl::Status& s, absl::Duration) {
    absl::MutexLock lk(&dmu);
    disconnects.push_back(s);
  };
  auto started = Leadership::Start(o, recorder_->Fn());
  ASSERT_TRUE(started.ok());
  std::unique_ptr<Leadership> l = std::move(*started);
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  Deliver(s, sidecar_->LeaderEvent(7, absl::Seconds(30)));
  ASSERT_TRUE(recorder_->WaitRuns(1));
  sidecar_->Kill();
  ASSERT_TRUE(recorder_->WaitReturned(0));
  EXPECT_THAT(recorder_->run(0).reason, HasSubstr("Campaign stream ended"));
  EXPECT_FALSE(l->IsLeaderNow());  // the 30 s bound does not survive the stream
  ASSERT_TRUE(sidecar_->Restart().ok());
  FakeStream* s2 = Campaign(1);
  ASSERT_NE(s2, nullptr);
  Deliver(s2, FakeSidecar::Event(mcl::v1::NO_LEADER));
  EXPECT_FALSE(l->IsLeaderNow());
  EXPECT_EQ(recorder_->runs(), 1u);
  Deliver(s2, sidecar_->LeaderEvent(12, absl::Seconds(30)));
  ASSERT_TRUE(recorder_->WaitRuns(2));
  EXPECT_EQ(recorder_->run(1).token, 12);
  absl::MutexLock lk(&dmu);
  EXPECT_FALSE(disconnects.empty());
}

TEST_F(RealClockLeadershipTest, TransientStreamErrorsReconnect) {
  auto l = Start(recorder_->Fn());
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  Deliver(s, sidecar_->LeaderEvent(7, absl::Seconds(30)));
  ASSERT_TRUE(recorder_->WaitRuns(1));
  s->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "apiserver unreachable"));
  ASSERT_TRUE(recorder_->WaitReturned(0));
  EXPECT_THAT(recorder_->run(0).reason, HasSubstr("apiserver unreachable"));
  EXPECT_NE(Campaign(1), nullptr);
}

// The sidecar's two deliberate stream ends: OK after a Resign RPC (a
// step-down) and UNAVAILABLE when it shuts down. Both end the term at once and
// campaign again, as in the Go, Python, Java and Node.js libraries; leadership
// comes back only with a fresh LEADER on the new stream.
TEST_F(RealClockLeadershipTest,
       ResignAndSidecarShutdownEndTheTermThenCampaign) {
  const grpc::Status ends[] = {grpc::Status::OK,
                               grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                            "the sidecar is shutting down")};
  auto l = Start(recorder_->Fn());
  int stream = 0;
  int64_t token = 7;
  for (const grpc::Status& end : ends) {
    SCOPED_TRACE(end.error_code());
    FakeStream* s = Campaign(stream);
    ASSERT_NE(s, nullptr);
    const size_t run = recorder_->runs();
    Deliver(s, sidecar_->LeaderEvent(token, absl::Seconds(30)));
    ASSERT_TRUE(recorder_->WaitRuns(run + 1));
    EXPECT_TRUE(l->IsLeaderNow());
    s->End(end);
    ASSERT_TRUE(recorder_->WaitReturned(run));
    EXPECT_THAT(recorder_->run(run).reason,
                HasSubstr(end.ok() ? "resigned" : "shutting down"));
    EXPECT_FALSE(l->IsLeaderNow());  // the 30 s bound ends with the stream
    FakeStream* next = Campaign(++stream);
    ASSERT_NE(next, nullptr) << "it did not campaign again";
    Deliver(next, FakeSidecar::Event(mcl::v1::FOLLOWER, "other", token + 1));
    EXPECT_FALSE(l->IsLeaderNow());
    EXPECT_EQ(recorder_->runs(), run + 1);
    token += 2;
  }
  EXPECT_FALSE(l->WaitFor(absl::ZeroDuration()).has_value())
      << "the campaign ended";
}

// After a reconnect, ALREADY_EXISTS may name our own previous candidacy (a
// restarted sidecar still sees its instance renewing): the library retries
// with backoff instead of giving up, and leads only on a fresh LEADER.
TEST_F(RealClockLeadershipTest, AlreadyExistsAfterAReconnectIsRetried) {
  auto l = Start(recorder_->Fn());
  FakeStream* s = Campaign(0);
  ASSERT_NE(s, nullptr);
  Deliver(s, sidecar_->LeaderEvent(7, absl::Seconds(30)));
  ASSERT_TRUE(recorder_->WaitRuns(1));
  s->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "sidecar restarting"));
  ASSERT_TRUE(recorder_->WaitReturned(0));
  FakeStream* dup = Campaign(1);
  ASSERT_NE(dup, nullptr);
  dup->End(grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                        "identity \"me\" already campaigns for the lock"));
  FakeStream* again = Campaign(2);
  ASSERT_NE(again, nullptr) << "it gave up after ALREADY_EXISTS";
  EXPECT_FALSE(l->WaitFor(absl::ZeroDuration()).has_value());
  EXPECT_FALSE(l->IsLeaderNow());
  Deliver(again, sidecar_->LeaderEvent(9, absl::Seconds(30)));
  ASSERT_TRUE(recorder_->WaitRuns(2));
  EXPECT_EQ(recorder_->run(1).token, 9);
}

TEST_F(RealClockLeadershipTest, UnreachableSidecarFailsAfterConnectTimeout) {
  auto port = testbed::FreeLoopbackPort();  // nothing listens there
  ASSERT_TRUE(port.ok());
  LeadershipOptions o = Options();
  o.sidecar_address = absl::StrCat("127.0.0.1:", *port);
  o.connect_timeout = absl::Milliseconds(500);
  absl::Status st = RunWhileLeader(o, recorder_->Fn());
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(st.message(), HasSubstr(o.sidecar_address));
  EXPECT_THAT(st.message(), HasSubstr("MCL_SIDECAR_ADDR"));
  EXPECT_EQ(recorder_->runs(), 0u);
}

}  // namespace
}  // namespace mcl::client
