// The informer against scripted apiservers that fail the quiet ways: a watch
// whose path holds bytes (no reset, no close), an apiserver whose etcd was
// restored from a backup (its versions went back, and a watch from the old
// version is silent), and "too large resource version". Each must end in a
// fresh cache within a bound, never in a stale one or a retry loop.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/kube/client.h"
#include "common/kube/errors.h"
#include "common/kube/informer.h"
#include "common/kube/test_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::kube {
namespace {

using testing::Connection;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::HttpRequest;
using testing::LeaseJson;
using testing::ListJson;
using testing::LoopbackServer;
using testing::WatchEventJson;

constexpr absl::Duration kWait = absl::Seconds(20);

std::string Query(const HttpRequest& r, const std::string& key) {
  auto it = r.query.find(key);
  return it == r.query.end() ? "" : it->second;
}
bool IsWatch(const HttpRequest& r) { return Query(r, "watch") == "true"; }
bool IsProbe(const HttpRequest& r) {
  return !IsWatch(r) && Query(r, "limit") == "1";
}

std::unique_ptr<KubeClient> ClientFor(const LoopbackServer& server) {
  Config cfg;
  cfg.server = server.url();
  cfg.token = "t0ken";
  cfg.source = "test config";
  ClientOptions o;
  o.request_timeout = absl::Seconds(2);
  auto c = KubeClient::Create(cfg, o);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

// The handler calls, as "ADD a@5", "UPDATE a@5->7 p1->p2", "DELETE a@5".
class Log {
 public:
  Informer::Handlers Handlers() {
    Informer::Handlers h;
    h.on_add = [this](const Json& o) { Add("ADD " + Name(o)); };
    h.on_update = [this](const Json& a, const Json& b) {
      Add(absl::StrCat("UPDATE ", Name(a), "->", ResourceVersionOf(b), " ",
                       Holder(a), "->", Holder(b)));
    };
    h.on_delete = [this](const Json& o) { Add("DELETE " + Name(o)); };
    return h;
  }
  std::vector<std::string> lines() const {
    absl::MutexLock l(&mu_);
    return lines_;
  }
  size_t size() const {
    absl::MutexLock l(&mu_);
    return lines_.size();
  }

 private:
  static std::string Name(const Json& o) {
    return absl::StrCat(o.at("metadata").at("name").as_string(), "@",
                        ResourceVersionOf(o));
  }
  static std::string Holder(const Json& o) {
    return o.at("spec").at("holderIdentity").as_string();
  }
  void Add(std::string line) {
    absl::MutexLock l(&mu_);
    lines_.push_back(std::move(line));
  }
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_;
};

TEST(WatchBoundsTest, DefaultIdleBound) {
  InformerOptions o;
  EXPECT_EQ(WatchIdleTimeout(o), absl::Seconds(75));
  o.watch_idle_timeout = absl::Seconds(4);
  EXPECT_EQ(WatchIdleTimeout(o), absl::Seconds(4));
  o.watch_idle_timeout = absl::Milliseconds(10);
  EXPECT_EQ(WatchIdleTimeout(o), kMinWatchIdleTimeout);
}

// A watch delivers one event and then nothing: its connection stays open,
// silent. The informer must close it within the idle bound, check the
// version, and resume from the last version it saw — without calling it an
// error, since a quiet resource looks the same (a held path shows up in the
// check that follows: watch_faults_integration_test).
TEST(SilentWatchTest, HeldWatchIsClosedWithinTheIdleBoundAndResumed) {
  constexpr absl::Duration kIdle = absl::Seconds(2);
  Clock* clock = Clock::Real();
  absl::Mutex mu;
  absl::Duration went_silent = absl::InfiniteDuration();
  absl::Duration resumed = absl::InfiniteDuration();
  auto server = LoopbackServer::Start([&](const HttpRequest& r, Connection& c) {
    if (IsProbe(r)) {
      c.Respond(200, "application/json", ListJson({}, "11"));
    } else if (!IsWatch(r)) {
      c.Respond(200, "application/json", ListJson({}, "10"));
    } else if (Query(r, "resourceVersion") == "10") {
      c.StartChunked();
      c.Chunk(WatchEventJson("ADDED", LeaseJson("a", "11")));
      {
        absl::MutexLock l(&mu);
        went_silent = clock->Monotonic();
      }
      c.Hang(absl::Seconds(60));  // holds: no byte, no close
    } else {
      {
        absl::MutexLock l(&mu);
        if (resumed == absl::InfiniteDuration()) resumed = clock->Monotonic();
      }
      c.StartChunked();
      c.Chunk(WatchEventJson("ADDED", LeaseJson("b", "12")));
      c.Hang(absl::Seconds(60));
    }
  });
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ClientFor(**server);
  Log log;
  InformerOptions o;
  o.namespace_ = "default";
  o.watch_idle_timeout = kIdle;
  Informer inf(client.get(), MultiClusterLeaseResource(), o, log.Handlers());
  inf.Start();
  ASSERT_TRUE(inf.WaitForResourceVersion("12", kWait)) << inf.LastError();
  EXPECT_THAT(log.lines(), ElementsAre("ADD a@11", "ADD b@12"));
  const Informer::Stats stats = inf.stats();
  inf.Stop();
  EXPECT_EQ(stats.idle, 1);
  EXPECT_EQ(stats.probes, 1);
  EXPECT_EQ(stats.errors, 0) << "a quiet watch is not an error";
  EXPECT_EQ(stats.lists, 1) << "the version did not go back: no relist";
  absl::MutexLock l(&mu);
  // Closed and resumed within the bound (plus the version check on loopback
  // and scheduling on a loaded machine).
  EXPECT_GE(resumed - went_silent, kIdle - absl::Milliseconds(100));
  EXPECT_LE(resumed - went_silent, kIdle + absl::Seconds(1));
}

// Before: the informer saw a@90, b@95 and c@101. Then the apiserver's etcd
// is restored from a backup taken at 60: its versions start over below what
// the informer saw, c never existed, b is gone, a has the same version with
// other content, and d is new. A watch from 101 would be silent (the server
// has not reached 101): the informer must find out and relist, by content.
TEST(SilentWatchTest, RestoredHistoryLeadsToARelistByContent) {
  absl::Mutex mu;
  bool restored = false;
  int future_watches = 0;
  auto server = LoopbackServer::Start([&](const HttpRequest& r, Connection& c) {
    bool after;
    {
      absl::MutexLock l(&mu);
      after = restored;
    }
    const std::string rv = Query(r, "resourceVersion");
    if (!after) {
      if (!IsWatch(r)) {
        c.Respond(
            200, "application/json",
            ListJson({LeaseJson("a", "90", "p1"), LeaseJson("b", "95", "p1")},
                     "100"));
        return;
      }
      c.StartChunked();
      c.Chunk(WatchEventJson("ADDED", LeaseJson("c", "101", "p1")));
      {
        absl::MutexLock l(&mu);
        restored = true;  // the apiserver goes down and comes back restored
      }
      c.CloseAfter();  // the connection drops mid-stream
      return;
    }
    if (IsProbe(r)) {
      c.Respond(200, "application/json", ListJson({}, "60"));
    } else if (!IsWatch(r)) {
      c.Respond(
          200, "application/json",
          ListJson({LeaseJson("a", "90", "p9"), LeaseJson("d", "55")}, "60"));
    } else if (rv == "60") {
      c.StartChunked();
      c.Chunk(WatchEventJson("MODIFIED", LeaseJson("d", "61", "p2")));
      c.Hang(absl::Seconds(60));
    } else {
      // As the real apiserver does for a version it has not reached: an
      // open watch that sends nothing, not even bookmarks.
      {
        absl::MutexLock l(&mu);
        ++future_watches;
      }
      c.StartChunked();
      c.Hang(absl::Seconds(60));
    }
  });
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ClientFor(**server);
  Log log;
  std::vector<std::string> errors;
  InformerOptions o;
  o.namespace_ = "default";
  o.backoff = {absl::Milliseconds(10), absl::Milliseconds(100), 2.0};
  o.on_error = [&](const absl::Status& s) {
    absl::MutexLock l(&mu);
    errors.push_back(std::string(s.message()));
  };
  Informer inf(client.get(), MultiClusterLeaseResource(), o, log.Handlers());
  inf.Start();
  ASSERT_TRUE(inf.WaitUntil([&] { return log.size() >= 8; }, kWait))
      << inf.LastError();
  const Informer::Stats stats = inf.stats();
  inf.Stop();
  EXPECT_THAT(
      log.lines(),
      ElementsAre(
          "ADD a@90", "ADD b@95",
          "ADD c@101",  // before
                        // the relist's diff: same version, other content
          "UPDATE a@90->90 p1->p9", "ADD d@55", "DELETE b@95", "DELETE c@101",
          "UPDATE d@55->61 pod->p2"));  // the new watch
  EXPECT_EQ(inf.LastSyncResourceVersion(), "61");
  EXPECT_EQ(stats.rewinds, 1);
  EXPECT_EQ(stats.lists, 2);
  absl::MutexLock l(&mu);
  EXPECT_EQ(future_watches, 0) << "no watch from a version the server lost";
  bool named = false;
  for (const std::string& e : errors) {
    named = named || (absl::StrContains(e, "went back from 101 to 60") &&
                      absl::StrContains(e, "restored from a backup"));
  }
  EXPECT_TRUE(named) << "the rewind is reported to on_error";
}

// The apiserver answers a watch from a version it has not reached with
// "too large resource version" — as an ERROR event in the stream, or as the
// watch request's HTTP 504. Either way: one relist, not a retry loop.
class TooLargeTest : public ::testing::TestWithParam<bool> {};

TEST_P(TooLargeTest, LeadsToARelistNotARetryLoop) {
  const bool as_event = GetParam();
  const std::string too_large =
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Too large resource version: 10, current: 8","reason":"Timeout","details":{"causes":[{"reason":"ResourceVersionTooLarge","message":"Too large resource version"}],"retryAfterSeconds":1},"code":504})";
  absl::Mutex mu;
  int lists = 0, watches_from_10 = 0;
  absl::Notification watching_from_20;
  auto server = LoopbackServer::Start([&](const HttpRequest& r, Connection& c) {
    const std::string rv = Query(r, "resourceVersion");
    if (IsProbe(r)) {
      c.Respond(200, "application/json", ListJson({}, "20"));
    } else if (!IsWatch(r)) {
      int n;
      {
        absl::MutexLock l(&mu);
        n = ++lists;
      }
      c.Respond(
          200, "application/json",
          n == 1 ? ListJson({LeaseJson("a", "5")}, "10")
                 : ListJson({LeaseJson("a", "5"), LeaseJson("b", "15")}, "20"));
    } else if (rv == "10") {
      {
        absl::MutexLock l(&mu);
        ++watches_from_10;
      }
      if (as_event) {
        c.StartChunked();
        c.Chunk(WatchEventJson("ERROR", too_large));
        c.EndChunked();
      } else {
        c.Respond(504, "application/json", too_large);
      }
    } else {
      if (!watching_from_20.HasBeenNotified()) watching_from_20.Notify();
      c.StartChunked();
      c.Hang(absl::Seconds(60));
    }
  });
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ClientFor(**server);
  Log log;
  InformerOptions o;
  o.namespace_ = "default";
  o.backoff = {absl::Milliseconds(10), absl::Milliseconds(100), 2.0};
  Informer inf(client.get(), MultiClusterLeaseResource(), o, log.Handlers());
  inf.Start();
  ASSERT_TRUE(inf.WaitForResourceVersion("20", kWait)) << inf.LastError();
  // The informer moved on to a watch from the relist's version.
  ASSERT_TRUE(watching_from_20.WaitForNotificationWithTimeout(kWait));
  const Informer::Stats stats = inf.stats();
  inf.Stop();
  EXPECT_THAT(log.lines(), ElementsAre("ADD a@5", "ADD b@15"));
  EXPECT_EQ(stats.too_large, 1);
  EXPECT_EQ(stats.lists, 2);
  absl::MutexLock l(&mu);
  EXPECT_EQ(watches_from_10, 1);
}

INSTANTIATE_TEST_SUITE_P(Form, TooLargeTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "ErrorEvent" : "Http504";
                         });

TEST(TooLargeTest, IsRecognisedFromTheCauseOrTheOldMessage) {
  const char* body =
      R"({"kind":"Status","status":"Failure","message":"Too large resource version: 10, current: 8","reason":"Timeout","details":{"causes":[{"reason":"ResourceVersionTooLarge","message":"Too large resource version"}]},"code":504})";
  absl::Status s = StatusFromResponse(504, "application/json", body, "GET",
                                      "https://x/apis/mcl.dev/v1alpha1/x");
  EXPECT_TRUE(IsTooLargeResourceVersion(s)) << s;
  EXPECT_FALSE(IsGone(s));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("Timeout: Too large resource version: 10"));
  // Servers before 1.17 said so only in the message.
  absl::Status old = StatusFromResponse(
      504, "application/json",
      R"({"kind":"Status","message":"Too large resource version: 10, current: 8","reason":"Timeout","code":504})",
      "GET", "https://x/y");
  EXPECT_TRUE(IsTooLargeResourceVersion(old)) << old;
  // A plain 504 is not.
  EXPECT_FALSE(IsTooLargeResourceVersion(
      StatusFromResponse(504, "text/plain", "gateway timeout", "GET", "u")));
  // From a watch ERROR event.
  absl::Status ev =
      StatusFromWatchError(Json::parse(body), "watch of multiclusterleases");
  EXPECT_TRUE(IsTooLargeResourceVersion(ev)) << ev;
  EXPECT_THAT(std::string(ev.message()),
              HasSubstr("watch of multiclusterleases: ERROR event with HTTP "
                        "code 504 Timeout: Too large resource version"));
}

}  // namespace
}  // namespace mcl::kube
