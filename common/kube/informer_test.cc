// The informer's watch timeouts, against a scripted loopback server: each
// watch asks for a different server-side duration in [min, 2 * min), so that
// clients started together drift apart instead of re-watching in lockstep.
#include "common/kube/informer.h"

#include <set>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/kube/client.h"
#include "common/kube/test_server.h"
#include "gtest/gtest.h"

namespace mcl::kube {
namespace {

using testing::Connection;
using testing::HttpRequest;
using testing::LoopbackServer;

TEST(JitteredWatchTimeoutTest, SpansMinToTwiceMin) {
  const absl::Duration min = absl::Minutes(5);
  EXPECT_EQ(JitteredWatchTimeout(min, 0.0), min);
  EXPECT_EQ(JitteredWatchTimeout(min, 0.5), absl::Seconds(450));
  EXPECT_LT(JitteredWatchTimeout(min, 0.9999999), 2 * min);
  // Out-of-range draws are clamped, never below min nor at 2 * min.
  EXPECT_EQ(JitteredWatchTimeout(min, -1.0), min);
  EXPECT_LT(JitteredWatchTimeout(min, 1.0), 2 * min);
  EXPECT_GE(JitteredWatchTimeout(min, 1.0), min);
}

// The server lists nothing, then ends every watch at once after a bookmark
// (progress, so the informer re-watches without backing off), and records the
// timeoutSeconds each watch asked for.
TEST(InformerWatchTimeoutTest, EachWatchAsksForADifferentTimeout) {
  constexpr size_t kWatches = 20;
  absl::Mutex mu;
  std::vector<int64_t> timeouts;
  absl::Notification enough;
  auto server = LoopbackServer::Start([&](const HttpRequest& r, Connection& c) {
    if (r.query.count("watch") == 0) {
      c.Respond(
          200, "application/json",
          R"({"apiVersion":"mcl.dev/v1alpha1","kind":"MultiClusterLeaseList","metadata":{"resourceVersion":"1"},"items":[]})");
      return;
    }
    int64_t t = -1;
    auto it = r.query.find("timeoutSeconds");
    if (it != r.query.end()) (void)absl::SimpleAtoi(it->second, &t);
    size_t n = 0;
    {
      absl::MutexLock l(&mu);
      timeouts.push_back(t);
      n = timeouts.size();
    }
    if (n >= kWatches) {
      if (n == kWatches) enough.Notify();
      c.Hang(absl::Seconds(30));  // enough: a quiet watch until Stop()
      return;
    }
    c.StartChunked();
    c.Chunk(absl::StrCat(
        R"({"type":"BOOKMARK","object":{"kind":"MultiClusterLease","apiVersion":"mcl.dev/v1alpha1","metadata":{"resourceVersion":")",
        n + 1, "\"}}}\n"));
    c.EndChunked();
  });
  ASSERT_TRUE(server.ok()) << server.status();
  Config cfg;
  cfg.server = (*server)->url();
  cfg.token = "t0ken";
  cfg.source = "test config";
  auto client = KubeClient::Create(cfg);
  ASSERT_TRUE(client.ok()) << client.status();
  InformerOptions o;
  o.namespace_ = "default";
  o.watch_timeout = absl::Seconds(100);
  Informer inf(client->get(), MultiClusterLeaseResource(), o, {});
  inf.Start();
  ASSERT_TRUE(enough.WaitForNotificationWithTimeout(absl::Seconds(20)))
      << inf.LastError();
  inf.Stop();
  absl::MutexLock l(&mu);
  std::set<int64_t> distinct;
  for (int64_t t : timeouts) {
    EXPECT_GE(t, 100);
    EXPECT_LT(t, 200);
    distinct.insert(t);
  }
  // 20 uniform draws from 100 values: all equal with probability 1e-38;
  // fewer than 5 distinct ones, below 1e-20.
  EXPECT_GE(distinct.size(), 5u);
}

}  // namespace
}  // namespace mcl::kube
