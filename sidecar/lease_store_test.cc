// The kube LeaseStore against a scripted loopback apiserver that holds bytes
// (no reset): every request ends by the client's request timeout, whether the
// server sends nothing or stops in the middle of a response. This is the
// bound on how long a hung apiserver request keeps the spec writer (and so
// the other locks' writes) waiting; LOST never waits for it (deadline_timer.h).
#include "sidecar/lease_store.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/kube/client.h"
#include "common/kube/test_server.h"
#include "gtest/gtest.h"

namespace mcl::sidecar {
namespace {

using ::mcl::kube::testing::Connection;
using ::mcl::kube::testing::HttpRequest;
using ::mcl::kube::testing::LoopbackServer;

constexpr absl::Duration kRequestTimeout = absl::Milliseconds(400);

std::unique_ptr<kube::KubeClient> ClientFor(const LoopbackServer& server) {
  kube::Config cfg;
  cfg.server = server.url();
  cfg.token = "t0ken";
  cfg.source = "test config";
  kube::ClientOptions o;
  o.request_timeout = kRequestTimeout;
  auto client = kube::KubeClient::Create(cfg, o);
  EXPECT_TRUE(client.ok()) << client.status();
  return std::move(*client);
}

kube::MultiClusterLease Lock() {
  kube::MultiClusterLease l;
  l.metadata.namespace_ = "default";
  l.metadata.name = "lock-a";
  l.metadata.resource_version = "5";
  l.spec.holder_identity = "me";
  return l;
}

// Each call fails, and returns within the timeout plus scheduling slack.
void ExpectBounded(LeaseStore& store) {
  struct Call {
    const char* name;
    std::function<absl::Status()> run;
  };
  const Call calls[] = {
      {"Get", [&] { return store.Get("default", "lock-a").status(); }},
      {"Create", [&] { return store.Create(Lock()).status(); }},
      {"Update", [&] { return store.Update(Lock()).status(); }},
  };
  for (const Call& c : calls) {
    const absl::Time start = absl::Now();
    absl::Status s = c.run();
    const absl::Duration took = absl::Now() - start;
    EXPECT_FALSE(s.ok()) << c.name;
    EXPECT_GE(took, kRequestTimeout - absl::Milliseconds(50)) << c.name;
    EXPECT_LT(took, kRequestTimeout + absl::Seconds(2))
        << c.name << " took " << took << ": " << s;
  }
}

TEST(KubeLeaseStoreTest, ARequestTheServerNeverAnswersEndsAtTheTimeout) {
  auto server = LoopbackServer::Start(
      [](const HttpRequest&, Connection& c) { c.Hang(absl::Seconds(30)); });
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ClientFor(**server);
  auto store = NewKubeLeaseStore(client.get());
  ExpectBounded(*store);
}

TEST(KubeLeaseStoreTest, AResponseHeldInTheMiddleEndsAtTheTimeout) {
  auto server = LoopbackServer::Start([](const HttpRequest&, Connection& c) {
    c.Write(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "Content-Length: 4096\r\n\r\n{\"kind\":\"MultiClusterLease\",");
    c.Hang(absl::Seconds(30));
  });
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ClientFor(**server);
  auto store = NewKubeLeaseStore(client.get());
  ExpectBounded(*store);
}

}  // namespace
}  // namespace mcl::sidecar
