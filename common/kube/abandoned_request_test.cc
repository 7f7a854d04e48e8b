// A request the client gives up on must not kill the process when it fails
// later.
//
// cpprestsdk's pplx raises SIGTRAP (and then std::terminate) when a task's
// exception is destroyed without anyone having called get()/wait() on it. The
// client gives up on a request whose cancellation does not complete within
// its grace ("no complete response within ..."); the request still fails
// afterwards (the cancelled socket's aborted I/O), and that exception must be
// observed. The campaign found it on a sidecar after a wall-clock step back
// (findings.md, seeds 200006/200010/200099): the process died 1-3 s after
// "spec write failed ... no complete response within 5s".
//
// Here the cancellation cannot complete in time because cpprestsdk's only I/O
// thread is held busy (a stalled I/O thread, as on an overloaded node), which
// reproduces the abandoned request on the real client and a loopback server,
// without faketime. Then the thread is let go, and everything queued on it
// runs.
#include <pplx/threadpool.h>

#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "common/kube/client.h"
#include "common/kube/test_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::kube {
namespace {

using testing::Connection;
using ::testing::HasSubstr;
using testing::HttpRequest;
using testing::LoopbackServer;

// Holds cpprestsdk's I/O thread (the test runs it with one) until Release().
class StalledIoThread {
 public:
  StalledIoThread() {
    crossplat::threadpool::shared_instance().service().post([this] {
      running_.Notify();
      release_.WaitForNotification();
    });
    running_.WaitForNotification();
  }
  ~StalledIoThread() { Release(); }
  void Release() {
    if (!release_.HasBeenNotified()) release_.Notify();
  }

 private:
  absl::Notification running_;
  absl::Notification release_;
};

// Runs everything the I/O thread had queued, and what that queued in turn
// (a task's completion schedules its continuations, which complete further
// tasks): one handler at a time on the single thread, so a marker runs only
// after everything queued before it. The chains here are a few links long.
void DrainIoThread() {
  for (int round = 0; round < 20; ++round) {
    absl::Notification ran;
    crossplat::threadpool::shared_instance().service().post(
        [&ran] { ran.Notify(); });
    ran.WaitForNotification();
  }
}

class AbandonedRequestTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // One I/O thread, so a test can stall it and drain it. Must precede the
    // first request in this process.
    crossplat::threadpool::initialize_with_threads(1);
  }

  void SetUp() override {
    auto s = LoopbackServer::Start([this](const HttpRequest&, Connection& c) {
      if (!arrived_.HasBeenNotified()) arrived_.Notify();
      c.Hang(absl::Seconds(60));  // holds the request: no byte back
    });
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    Config cfg;
    cfg.server = server_->url();
    cfg.source = "test config";
    ClientOptions o;
    // Long enough that the stall is in place before it passes, on a loaded
    // machine.
    o.request_timeout = absl::Seconds(1);
    auto c = KubeClient::Create(cfg, o);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
  }

  void TearDown() override {
    client_.reset();
    DrainIoThread();
    if (server_) server_->Stop();
  }

  absl::Notification arrived_;
  std::unique_ptr<LoopbackServer> server_;
  std::unique_ptr<KubeClient> client_;
};

TEST_F(AbandonedRequestTest, RequestThatFailsAfterTheClientGaveUp) {
  absl::Status got;
  std::unique_ptr<StalledIoThread> stall;
  std::thread caller([&] {
    got = client_->Get(MultiClusterLeaseResource(), "default", "x").status();
  });
  arrived_.WaitForNotification();  // the request is in flight, held
  stall = std::make_unique<StalledIoThread>();
  caller.join();  // the deadline, then the cancellation's grace, both missed
  EXPECT_TRUE(absl::IsDeadlineExceeded(got)) << got;
  EXPECT_THAT(got.message(), HasSubstr("no complete response within"));

  // The cancelled request now fails on the I/O thread; with nobody observing
  // its exception, pplx raises SIGTRAP and this test process dies here.
  stall->Release();
  DrainIoThread();

  // The client still works after it.
  auto again = client_->Get(MultiClusterLeaseResource(), "default", "x");
  EXPECT_TRUE(absl::IsDeadlineExceeded(again.status())) << again.status();
}

TEST_F(AbandonedRequestTest, WatchThatFailsAfterTheClientGaveUp) {
  absl::Status got;
  std::unique_ptr<StalledIoThread> stall;
  std::thread caller([&] {
    WatchOptions wo;
    wo.idle_timeout = absl::Seconds(60);
    got = client_->Watch(MultiClusterLeaseResource(), "default", wo,
                         [](WatchEvent) { return true; });
  });
  arrived_.WaitForNotification();
  stall = std::make_unique<StalledIoThread>();
  caller.join();
  EXPECT_TRUE(absl::IsDeadlineExceeded(got)) << got;
  EXPECT_THAT(got.message(), HasSubstr("no response headers within"));
  stall->Release();
  DrainIoThread();
}

}  // namespace
}  // namespace mcl::kube
