// Every timed wait in common/kube that bounds a request or a loop runs on the
// monotonic clock. Debian's abseil turns Mutex::AwaitWithTimeout & co. into an
// absolute CLOCK_REALTIME deadline (common/clock.h), so a wall clock an hour
// ahead of the time the deadline was computed from — a step back — makes a
// 1 s wait last an hour and a second.
//
// The Scenario tests below run twice: in this process, and in a child under
// libfaketime whose wall clock is one hour ahead while CLOCK_MONOTONIC stays
// true (FAKETIME_DONT_FAKE_MONOTONIC=1). The offset applies to what the child
// reads; the kernel's futex compares an abseil deadline computed from that
// faked time with the real one: exactly the stretch a step back causes. In the
// child, each timed wait must still end on time.
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/kube/client.h"
#include "common/kube/events.h"
#include "common/kube/informer.h"
#include "common/kube/test_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testbed/cc/subprocess.h"

namespace mcl::kube {
namespace {

using testing::Connection;
using ::testing::HasSubstr;
using testing::HttpRequest;
using testing::LoopbackServer;

constexpr char kChildEnv[] = "MCL_WALL_CLOCK_STEP_CHILD";
constexpr char kParentWallEnv[] = "MCL_WALL_CLOCK_STEP_PARENT_UNIX";

// How long a wait of `timeout` may take here: loaded machine, loopback I/O.
constexpr absl::Duration kSlack = absl::Seconds(3);

class ScenarioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // In the child, the fake offset must be in effect, or this proves nothing.
    if (std::getenv(kChildEnv) == nullptr) return;
    int64_t parent = 0;
    ASSERT_TRUE(absl::SimpleAtoi(std::getenv(kParentWallEnv), &parent));
    ASSERT_GT(absl::Now(), absl::FromUnixSeconds(parent) + absl::Minutes(50))
        << "libfaketime is not in effect";
  }
  std::unique_ptr<LoopbackServer> Serve(LoopbackServer::Handler h) {
    auto s = LoopbackServer::Start(std::move(h));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::unique_ptr<KubeClient> ClientFor(const LoopbackServer& server,
                                        absl::Duration timeout) {
    Config cfg;
    cfg.server = server.url();
    cfg.source = "test config";
    ClientOptions o;
    o.request_timeout = timeout;
    auto c = KubeClient::Create(cfg, o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }
  absl::Duration Now() { return Clock::Real()->Monotonic(); }
};

// A response that trickles forever: cpprestsdk's own idle timer never fires,
// only the request deadline can end it.
TEST_F(ScenarioTest, RequestDeadline) {
  auto server = Serve([](const HttpRequest&, Connection& c) {
    c.StartChunked();
    while (c.Chunk("{")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  auto client = ClientFor(*server, absl::Seconds(1));
  const absl::Duration t0 = Now();
  auto got = client->Get(MultiClusterLeaseResource(), "default", "x");
  EXPECT_TRUE(absl::IsDeadlineExceeded(got.status())) << got.status();
  EXPECT_LT(Now() - t0, absl::Seconds(1) + kSlack);
}

// A watch whose headers never come ends at the request timeout.
TEST_F(ScenarioTest, WatchHeadersDeadline) {
  auto server = Serve(
      [](const HttpRequest&, Connection& c) { c.Hang(absl::Seconds(60)); });
  auto client = ClientFor(*server, absl::Seconds(1));
  WatchOptions wo;
  wo.idle_timeout = absl::Seconds(60);
  const absl::Duration t0 = Now();
  absl::Status s = client->Watch(MultiClusterLeaseResource(), "default", wo,
                                 [](WatchEvent) { return true; });
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_LT(Now() - t0, absl::Seconds(1) + kSlack);
}

TEST_F(ScenarioTest, InformerWaits) {
  auto server = Serve(
      [](const HttpRequest&, Connection& c) { c.Hang(absl::Seconds(60)); });
  auto client = ClientFor(*server, absl::Seconds(30));
  Informer inf(client.get(), MultiClusterLeaseResource(), {}, {});
  inf.Start();  // its list hangs
  absl::Duration t0 = Now();
  EXPECT_FALSE(inf.WaitForSync(absl::Seconds(1)));
  EXPECT_LT(Now() - t0, absl::Seconds(1) + kSlack);
  t0 = Now();
  EXPECT_FALSE(inf.WaitUntil([] { return false; }, absl::Seconds(1)));
  EXPECT_LT(Now() - t0, absl::Seconds(1) + kSlack);
  EXPECT_FALSE(inf.WaitForResourceVersion("5", absl::Seconds(1)));
  EXPECT_LT(Now() - t0, absl::Seconds(2) + kSlack);
}

// Failed lists are retried after the backoff, not an hour later.
TEST_F(ScenarioTest, InformerBackoff) {
  auto lists = std::make_shared<Wakeup>(Clock::Real());
  auto server = Serve([lists](const HttpRequest&, Connection& c) {
    c.Respond(500, "text/plain", "no");
    lists->Notify();
  });
  auto client = ClientFor(*server, absl::Seconds(5));
  InformerOptions o;
  o.backoff = {absl::Milliseconds(100), absl::Milliseconds(200), 2.0};
  Informer inf(client.get(), MultiClusterLeaseResource(), o, {});
  inf.Start();
  const absl::Duration deadline = Now() + absl::Seconds(1) + kSlack;
  int seen = 0;
  while (seen < 5 && lists->WaitUntil(deadline)) seen = inf.stats().lists;
  EXPECT_GE(inf.stats().lists, 5) << "5 lists, 4 backoffs of <= 200 ms";
  inf.Stop();
}

TEST_F(ScenarioTest, EventFlush) {
  auto server = Serve(
      [](const HttpRequest&, Connection& c) { c.Hang(absl::Seconds(60)); });
  auto client = ClientFor(*server, absl::Seconds(30));
  EventRecorderOptions o;
  o.component = "test";
  o.shutdown_flush = absl::ZeroDuration();
  EventRecorder rec(client.get(), o);
  ObjectReference obj;
  obj.kind = "MultiClusterLease";
  obj.namespace_ = "default";
  obj.name = "x";
  ASSERT_TRUE(rec.Record(obj, EventType::kNormal, "Test", "hello"));
  const absl::Duration t0 = Now();
  EXPECT_FALSE(rec.Flush(absl::Seconds(1)));  // the write hangs
  EXPECT_LT(Now() - t0, absl::Seconds(1) + kSlack);
  server->Stop();  // ends the hanging write, so the recorder can stop
}

// Runs every Scenario test again in a child whose wall clock is an hour
// ahead. Before the waits moved to the monotonic clock, the child hung (and
// was killed at the timeout).
TEST(WallClockStepTest, WaitsEndOnTimeWithTheWallClockAnHourAhead) {
  if (std::getenv(kChildEnv) != nullptr) return;  // the child runs scenarios
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  ASSERT_GT(n, 0);
  self[n] = '\0';
  const char* tmp = std::getenv("TEST_TMPDIR");
  // Under --config=asan, libfaketime is preloaded ahead of the ASan runtime;
  // ASan refuses to start then unless told the order is intended.
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string asan_options = absl::StrCat(
      asan != nullptr ? asan : "", asan != nullptr && *asan != '\0' ? ":" : "",
      "verify_asan_link_order=0");
  auto r = testbed::RunCommand(
      {"faketime", "-f", "+1h", self}, absl::Seconds(60), "",
      {{kChildEnv, "1"},
       {kParentWallEnv, absl::StrCat(absl::ToUnixSeconds(absl::Now()))},
       {"FAKETIME_DONT_FAKE_MONOTONIC", "1"},
       {"ASAN_OPTIONS", asan_options},
       // Bazel's test protocol: GoogleTest takes its filter from here, and
       // the child must not write over this test's XML report.
       {"TESTBRIDGE_TEST_ONLY", "ScenarioTest.*"},
       {"XML_OUTPUT_FILE",
        absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/child.xml")}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->output;
  EXPECT_THAT(r->output, HasSubstr("[  PASSED  ] 5 tests"));
}

}  // namespace
}  // namespace mcl::kube
