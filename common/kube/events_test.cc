// EventRecorder against a loopback server that plays the events API: creation,
// aggregation of repeats into a count, the per-object token bucket (on a fake
// clock), and failures counted.
#include "common/kube/events.h"

#include "absl/strings/match.h"
#include "common/kube/errors.h"
#include "common/kube/test_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::kube {
namespace {

using testing::Connection;
using ::testing::HasSubstr;
using testing::HttpRequest;
using testing::LoopbackServer;

class EventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = LoopbackServer::Start([this](const HttpRequest& r, Connection& c) {
      if (absl::StrContains(r.path, "forbidden")) {
        c.Respond(
            403, "application/json",
            R"({"kind":"Status","reason":"Forbidden","message":"no","code":403})");
      } else if (r.method == "PATCH" && absl::StrContains(r.path, "expired")) {
        c.Respond(
            404, "application/json",
            R"({"kind":"Status","reason":"NotFound","message":"gone","code":404})");
      } else {
        c.Respond(r.method == "POST" ? 201 : 200, "application/json",
                  r.body.empty() ? "{}" : r.body);
      }
    });
    ASSERT_TRUE(s.ok());
    server_ = std::move(*s);
    Config cfg;
    cfg.server = server_->url();
    auto c = KubeClient::Create(cfg);
    ASSERT_TRUE(c.ok());
    client_ = std::move(*c);
  }
  std::vector<HttpRequest> Writes() { return server_->requests(); }

  ObjectReference Ref(const std::string& name) {
    return {"mcl.dev/v1alpha1",
            "MultiClusterLease",
            "team",
            name,
            "uid-" + name,
            "7"};
  }

  // A recorder's options on the fake clock with the given token bucket.
  EventRecorderOptions BucketOptions(int burst, absl::Duration refill) {
    EventRecorderOptions o;
    o.burst = burst;
    o.refill = refill;
    o.clock = &clock_;
    return o;
  }

  // A server that accepts requests and never answers, and a client of it whose
  // requests time out after 1 s.
  void StartHangingServer() {
    auto hang = LoopbackServer::Start(
        [](const HttpRequest&, Connection& c) { c.Hang(absl::Seconds(30)); });
    ASSERT_TRUE(hang.ok());
    hanging_server_ = std::move(*hang);
    Config cfg;
    cfg.server = hanging_server_->url();
    ClientOptions co;
    co.request_timeout = absl::Seconds(1);
    auto client = KubeClient::Create(cfg, co);
    ASSERT_TRUE(client.ok());
    hanging_client_ = std::move(*client);
  }

  FakeClock clock_;
  std::unique_ptr<LoopbackServer> server_, hanging_server_;
  std::unique_ptr<KubeClient> hanging_client_;
  std::unique_ptr<KubeClient> client_;
};

TEST_F(EventsTest, CreatesThenAggregatesRepeats) {
  EventRecorderOptions o;
  o.component = "mcl-controller";
  o.instance = "pod-x";
  o.clock = &clock_;
  EventRecorder rec(client_.get(), o);
  ASSERT_TRUE(
      rec.Record(Ref("lock"), EventType::kNormal, "Granted", "token 5"));
  ASSERT_TRUE(
      rec.Record(Ref("lock"), EventType::kNormal, "Granted", "token 5"));
  ASSERT_TRUE(
      rec.Record(Ref("lock"), EventType::kWarning, "Lost", "etcd unreachable"));
  ASSERT_TRUE(rec.Flush(absl::Seconds(10)));
  auto w = Writes();
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].method, "POST");
  EXPECT_EQ(w[0].path, "/api/v1/namespaces/team/events");
  Json ev = Json::parse(w[0].body);
  EXPECT_EQ(ev.at("involvedObject").at("kind").as_string(),
            "MultiClusterLease");
  EXPECT_EQ(ev.at("involvedObject").at("uid").as_string(), "uid-lock");
  EXPECT_EQ(ev.at("reason").as_string(), "Granted");
  EXPECT_EQ(ev.at("type").as_string(), "Normal");
  EXPECT_EQ(ev.at("source").at("component").as_string(), "mcl-controller");
  EXPECT_EQ(ev.at("reportingInstance").as_string(), "pod-x");
  EXPECT_EQ(ev.at("count").as_integer(), 1);
  std::string name = ev.at("metadata").at("name").as_string();
  EXPECT_THAT(name, HasSubstr("lock."));
  EXPECT_EQ(w[1].method, "PATCH");
  EXPECT_EQ(w[1].path, "/api/v1/namespaces/team/events/" + name);
  EXPECT_EQ(w[1].headers.at("content-type"), "application/merge-patch+json");
  EXPECT_EQ(Json::parse(w[1].body).at("count").as_integer(), 2);
  EXPECT_EQ(w[2].method, "POST");
  EXPECT_EQ(Json::parse(w[2].body).at("type").as_string(), "Warning");
  auto st = rec.stats();
  EXPECT_EQ(st.created, 2);
  EXPECT_EQ(st.aggregated, 1);
  // After the aggregation window, the same message is a new Event.
  clock_.Advance(absl::Minutes(11));
  ASSERT_TRUE(
      rec.Record(Ref("lock"), EventType::kNormal, "Granted", "token 5"));
  ASSERT_TRUE(rec.Flush(absl::Seconds(10)));
  EXPECT_EQ(Writes().back().method, "POST");
}

TEST_F(EventsTest, LongNamesAndTextsStayWithinTheApiLimits) {
  EventRecorderOptions o;
  o.instance = std::string(200, 'p');
  o.clock = &clock_;
  EventRecorder rec(client_.get(), o);
  // A 253-character object name whose cut point falls right after a '-'.
  const std::string name = std::string(218, 'a') + "-" + std::string(34, 'b');
  ASSERT_TRUE(rec.Record(Ref(name), EventType::kNormal, "Granted",
                         std::string(2000, 'm')));
  ASSERT_TRUE(rec.Flush(absl::Seconds(10)));
  auto w = Writes();
  ASSERT_EQ(w.size(), 1u);
  Json ev = Json::parse(w[0].body);
  const std::string event_name = ev.at("metadata").at("name").as_string();
  EXPECT_LE(event_name.size(), 253u);
  EXPECT_EQ(event_name.rfind(std::string(218, 'a') + ".", 0), 0u) << event_name;
  EXPECT_EQ(ev.at("involvedObject").at("name").as_string(), name);
  EXPECT_EQ(ev.at("reportingInstance").as_string().size(), 128u);
  EXPECT_EQ(ev.at("message").as_string().size(), 1024u);
  EXPECT_EQ(rec.stats().pending, 0);
}

TEST_F(EventsTest, TokenBucketPerObjectAndReason) {
  EventRecorder rec(client_.get(), BucketOptions(2, absl::Seconds(10)));
  EXPECT_TRUE(rec.Record(Ref("a"), EventType::kNormal, "Renewed", "1"));
  EXPECT_TRUE(rec.Record(Ref("a"), EventType::kNormal, "Renewed", "2"));
  EXPECT_FALSE(rec.Record(Ref("a"), EventType::kNormal, "Renewed", "3"));
  EXPECT_TRUE(rec.Record(Ref("a"), EventType::kNormal, "Other", "x"))
      << "another reason";
  EXPECT_TRUE(rec.Record(Ref("b"), EventType::kNormal, "Renewed", "1"))
      << "another object";
  clock_.Advance(absl::Seconds(10));
  EXPECT_TRUE(rec.Record(Ref("a"), EventType::kNormal, "Renewed", "4"))
      << "refilled one";
  EXPECT_FALSE(rec.Record(Ref("a"), EventType::kNormal, "Renewed", "5"));
  ASSERT_TRUE(rec.Flush(absl::Seconds(10)));
  EXPECT_EQ(rec.stats().rate_limited, 2);
  EXPECT_EQ(rec.stats().created, 5);
  EXPECT_EQ(Writes().size(), 5u);
}

TEST_F(EventsTest, TokensRefillFractionallyBetweenCalls) {
  // Recorded every 6 s with a 10 s refill and a burst of 1: partial periods
  // add up, so every second attempt gets a token back (with whole periods
  // counted per call, none ever would: 6 s / 10 s rounds to 0 each time).
  EventRecorder rec(client_.get(), BucketOptions(1, absl::Seconds(10)));
  int accepted = 0;
  for (int i = 0; i < 10; ++i) {
    accepted += rec.Record(Ref("flap"), EventType::kNormal, "Granted",
                           std::to_string(i))
                    ? 1
                    : 0;
    clock_.Advance(absl::Seconds(6));
  }
  // t = 0 (the burst), 12, 24, 36, 48 s.
  EXPECT_EQ(accepted, 5);
}

TEST_F(EventsTest, FailuresAreCountedAndExpiredEventsRecreated) {
  EventRecorderOptions o;
  o.clock = &clock_;
  EventRecorder rec(client_.get(), o);
  ObjectReference denied = Ref("x");
  denied.namespace_ = "forbidden";
  ASSERT_TRUE(rec.Record(denied, EventType::kNormal, "R", "m"));
  ASSERT_TRUE(rec.Record(Ref("expired"), EventType::kNormal, "R", "m"));
  ASSERT_TRUE(rec.Record(Ref("expired"), EventType::kNormal, "R",
                         "m"));  // PATCH → 404 → POST
  ASSERT_TRUE(rec.Flush(absl::Seconds(10)));
  auto st = rec.stats();
  EXPECT_EQ(st.failed, 1);
  EXPECT_EQ(st.created, 2);
  EXPECT_TRUE(IsForbidden(rec.LastError())) << rec.LastError();
  auto w = Writes();
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[2].method, "PATCH");
  EXPECT_EQ(w[3].method, "POST");
}

TEST_F(EventsTest, BoundedQueue) {
  // A server that never answers: the queue fills and further events are
  // dropped, not blocked on.
  ASSERT_NO_FATAL_FAILURE(StartHangingServer());
  EventRecorderOptions o;
  o.queue_limit = 3;
  o.burst = 100;
  o.clock = &clock_;
  auto rec = std::make_unique<EventRecorder>(hanging_client_.get(), o);
  absl::Time t0 = absl::Now();
  int accepted = 0;
  for (int i = 0; i < 10; ++i) {
    accepted +=
        rec->Record(Ref("q"), EventType::kNormal, "R", std::to_string(i)) ? 1
                                                                          : 0;
  }
  EXPECT_LT(absl::Now() - t0, absl::Milliseconds(500))
      << "Record() must not block";
  EXPECT_LE(accepted, 4);  // the queue, plus one the writer may have taken
  EXPECT_GE(rec->stats().dropped, 6);
  rec.reset();  // bounded: shutdown_flush, then the write in flight (1 s)
  EXPECT_LT(absl::Now() - t0, absl::Seconds(10));
}

TEST_F(EventsTest, ShutdownDropsWhatItCannotWriteInTime) {
  // 20 events queued against a server that never answers (1 s per request):
  // written one by one, shutdown would take 20 s; shutdown_flush bounds it.
  ASSERT_NO_FATAL_FAILURE(StartHangingServer());
  EventRecorderOptions o;
  o.burst = 100;
  o.clock = &clock_;  // frozen: the flush deadline passes at once
  o.shutdown_flush = absl::ZeroDuration();
  auto rec = std::make_unique<EventRecorder>(hanging_client_.get(), o);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(
        rec->Record(Ref("s"), EventType::kNormal, "R", std::to_string(i)));
  }
  absl::Time t0 = absl::Now();
  rec.reset();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(3))
      << "at most the write in flight finishes";
}

}  // namespace
}  // namespace mcl::kube
