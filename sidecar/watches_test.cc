// The informer-backed watches against a scripted loopback apiserver
// (common/kube/test_server.h): what they request, which callbacks each list,
// watch event and undecodable object produce, and how a failing list is
// reported.
#include "sidecar/watches.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/kube/client.h"
#include "common/kube/test_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::sidecar {
namespace {

using ::mcl::kube::testing::Connection;
using ::mcl::kube::testing::HttpRequest;
using ::mcl::kube::testing::LoopbackServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Mcl(const std::string& name, int rv,
                const std::string& spec = R"({"holderIdentity":"a"})") {
  return absl::StrCat(
      R"({"apiVersion":"mcl.dev/v1alpha1","kind":"MultiClusterLease",)",
      R"("metadata":{"name":")", name,
      R"(","namespace":"team","resourceVersion":")", rv, R"("},"spec":)", spec,
      "}");
}

std::string Event(const std::string& type, const std::string& obj) {
  return absl::StrCat(R"({"type":")", type, R"(","object":)", obj, "}\n");
}

// What the callbacks saw, in order, as "upsert lock-a 5" etc.
class Log {
 public:
  void Add(const std::string& s) {
    absl::MutexLock l(&mu_);
    lines_.push_back(s);
  }
  bool WaitSize(size_t n) {
    absl::MutexLock l(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return lines_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  }
  std::vector<std::string> lines() {
    absl::MutexLock l(&mu_);
    return lines_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<kube::KubeClient> ClientFor(const LoopbackServer& server) {
  kube::Config cfg;
  cfg.server = server.url();
  cfg.token = "t0ken";
  cfg.source = "test config";
  auto client = kube::KubeClient::Create(cfg);
  EXPECT_TRUE(client.ok()) << client.status();
  return std::move(*client);
}

TEST(LeaseWatchTest, ListThenWatchEventsReachTheCallbacksInOrder) {
  auto server = LoopbackServer::Start([](const HttpRequest& r, Connection& c) {
    if (r.query.count("watch") == 0) {
      c.Respond(200, "application/json",
                absl::StrCat(R"({"apiVersion":"mcl.dev/v1alpha1",)",
                             R"("kind":"MultiClusterLeaseList",)",
                             R"("metadata":{"resourceVersion":"5"},"items":[)",
                             Mcl("lock-a", 5), "]}"));
      return;
    }
    if (r.query.at("resourceVersion") != "5") {
      c.Hang(absl::Seconds(30));  // the resumed watch: quiet until Stop
      return;
    }
    c.StartChunked();
    c.Chunk(Event("MODIFIED", Mcl("lock-a", 6)));
    c.Chunk(Event("ADDED", Mcl("lock-b", 7)));
    // A field of the wrong type: reported, never delivered half-read.
    c.Chunk(Event("MODIFIED",
                  Mcl("lock-b", 8, R"({"leaseDurationSeconds":"soon"})")));
    c.Chunk(Event("DELETED", Mcl("lock-a", 9)));
    c.EndChunked();
  });
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ClientFor(**server);
  auto factory = NewInformerWatchFactory(client.get());
  Log log;
  LeaseWatchCallbacks cb;
  cb.on_upsert = [&](const kube::MultiClusterLease& o) {
    log.Add(absl::StrCat("upsert ", o.metadata.name, " ",
                         o.metadata.resource_version));
  };
  cb.on_delete = [&](const kube::MultiClusterLease& o) {
    log.Add(absl::StrCat("delete ", o.metadata.name, " ",
                         o.metadata.resource_version));
  };
  cb.on_error = [&](const absl::Status& s) {
    log.Add(absl::StrCat("error ", s.message()));
  };
  auto watch = factory->WatchLeases("team", cb);
  ASSERT_TRUE(watch->WaitForSync(absl::Seconds(10)));
  EXPECT_TRUE(watch->HasSynced());
  ASSERT_TRUE(log.WaitSize(5));
  auto lines = log.lines();
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], "upsert lock-a 5");
  EXPECT_EQ(lines[1], "upsert lock-a 6");
  EXPECT_EQ(lines[2], "upsert lock-b 7");
  EXPECT_THAT(lines[3], HasSubstr("error "));
  EXPECT_THAT(lines[3], HasSubstr("leaseDurationSeconds"));
  EXPECT_EQ(lines[4], "delete lock-a 9");
  EXPECT_FALSE(watch->Get("lock-a").has_value());
  // The cache holds what the apiserver sent last; a version that does not
  // decode is never handed out, from the cache either.
  EXPECT_FALSE(watch->Get("lock-b").has_value());
  // Every request was for the namespace's MultiClusterLeases.
  for (const HttpRequest& r : (*server)->requests()) {
    EXPECT_EQ(r.path,
              "/apis/mcl.dev/v1alpha1/namespaces/team/multiclusterleases");
  }
  watch.reset();  // stops the informer (cancels the hanging watch)
}

TEST(LeaseWatchTest, AFailingListIsReportedAndKeptAsTheLastError) {
  auto server = LoopbackServer::Start([](const HttpRequest&, Connection& c) {
    c.Respond(
        403, "application/json",
        R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden: sidecar cannot list","reason":"Forbidden","code":403})");
  });
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ClientFor(**server);
  auto factory = NewInformerWatchFactory(client.get());
  Log log;
  LeaseWatchCallbacks cb;
  cb.on_upsert = [](const kube::MultiClusterLease&) {};
  cb.on_delete = [](const kube::MultiClusterLease&) {};
  cb.on_error = [&](const absl::Status& s) {
    log.Add(std::string(s.message()));
  };
  auto watch = factory->WatchLeases("team", cb);
  EXPECT_FALSE(watch->WaitForSync(absl::Milliseconds(300)));
  ASSERT_TRUE(log.WaitSize(1));
  EXPECT_THAT(log.lines()[0], HasSubstr("sidecar cannot list"));
  EXPECT_THAT(std::string(watch->LastError().message()),
              HasSubstr("sidecar cannot list"));
}

TEST(HeartbeatWatchTest, WatchesOneLeaseByNameAndDeliversItsVersions) {
  const std::string lease = absl::StrCat(
      R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":)",
      R"({"name":"mcl-heartbeat-east","namespace":"mcl-system",)",
      R"("resourceVersion":"3","annotations":{"mcl.dev/session":"5e55"}},)",
      R"("spec":{"holderIdentity":"5e55"}})");
  auto server = LoopbackServer::Start([&](const HttpRequest& r, Connection& c) {
    if (r.query.count("watch") == 0) {
      c.Respond(
          200, "application/json",
          absl::StrCat(R"({"apiVersion":"coordination.k8s.io/v1",)",
                       R"("kind":"LeaseList","metadata":)",
                       R"({"resourceVersion":"3"},"items":[)", lease, "]}"));
      return;
    }
    c.Hang(absl::Seconds(30));
  });
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ClientFor(**server);
  auto factory = NewInformerWatchFactory(client.get());
  Log log;
  HeartbeatCallbacks cb;
  cb.on_upsert = [&](const kube::Lease& l) {
    log.Add(absl::StrCat(l.metadata.name, " ",
                         l.metadata.annotations.at("mcl.dev/session")));
  };
  auto watch = factory->WatchHeartbeat("mcl-system", "mcl-heartbeat-east", cb);
  ASSERT_TRUE(log.WaitSize(1));
  EXPECT_THAT(log.lines(), ElementsAre("mcl-heartbeat-east 5e55"));
  auto requests = (*server)->requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests[0].path,
            "/apis/coordination.k8s.io/v1/namespaces/mcl-system/leases");
  EXPECT_EQ(requests[0].query.at("fieldSelector"),
            "metadata.name=mcl-heartbeat-east");
  watch.reset();
}

}  // namespace
}  // namespace mcl::sidecar
