// Client against real etcds: failover from a dead endpoint, errors naming
// endpoints, deadlines against a stopped etcd and a silent listener, TLS and
// mTLS (and an unknown CA), user/password auth (wrong password, missing
// permission, token refresh after auth is re-enabled).
#include "common/etcd/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/etcd/kv.h"
#include "common/etcd/session.h"
#include "common/etcd/testing/etcd_process.h"
#include "common/etcd/watch.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testbed/cc/free_port.h"

namespace mcl::etcd {
namespace {

using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;

std::string DeadEndpoint() {
  absl::StatusOr<int> port = testbed::FreeLoopbackPort();
  return absl::StrCat("127.0.0.1:", port.ok() ? *port : 1);
}

std::unique_ptr<Client> MustCreate(ClientConfig config) {
  auto c = Client::Create(std::move(config));
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

// A watch and a session work through `client` (the streams, not only unary
// calls).
void ExpectStreamsWork(Client* client, const std::string& key) {
  KV kv(client);
  absl::Mutex mu;
  std::vector<std::string> seen;
  WatchOptions o;
  o.key = key;
  WatchCallbacks cb;
  cb.on_events = [&](const std::vector<Event>& events, int64_t) {
    absl::MutexLock l(&mu);
    for (const auto& e : events) seen.push_back(e.kv.value);
  };
  auto put = kv.Put(key, "before-watch");
  ASSERT_TRUE(put.ok()) << put.status();
  o.start_revision = put->revision;
  auto w = Watch::Start(client, o, cb);
  ASSERT_TRUE(w.ok()) << w.status();
  SessionOptions so;
  so.ttl_seconds = 5;
  std::atomic<int> renewed{0};
  so.on_renewed = [&](const KeepAliveResponse&) { ++renewed; };
  auto s = Session::Create(client, so);
  ASSERT_TRUE(s.ok()) << s.status();
  PutOptions with_lease;
  with_lease.lease = (*s)->lease_id();
  ASSERT_TRUE(kv.Put(key, "with-lease", with_lease).ok());
  {
    absl::MutexLock l(&mu);
    auto two = [&]()
                   ABSL_NO_THREAD_SAFETY_ANALYSIS { return seen.size() >= 2; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&two), absl::Seconds(10)));
    EXPECT_THAT(seen, ::testing::ElementsAre("before-watch", "with-lease"));
  }
  ASSERT_TRUE(testbed::WaitUntil([&] { return renewed.load() >= 1; },
                                 absl::Seconds(10)));
  EXPECT_TRUE((*s)->Close().ok());
  auto gone = kv.Get(key);
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_FALSE(gone->has_value());
}

// ---- Plain etcd: failover and deadlines
// ---------------------------------------------------------

class PlainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto e = testing::EtcdProcess::Start();
    ASSERT_TRUE(e.ok()) << e.status();
    etcd_ = e->release();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(etcd_, nullptr);
    if (!etcd_->running()) {
      ASSERT_TRUE(etcd_->Restart().ok());
    }
  }
  static testing::EtcdProcess* etcd_;
};
testing::EtcdProcess* PlainTest::etcd_ = nullptr;

TEST_F(PlainTest, ConfigErrorsAreClear) {
  ClientConfig none;
  EXPECT_THAT(Client::Create(none).status().ToString(),
              HasSubstr("no endpoints"));
  ClientConfig bad;
  bad.endpoints = {"localhost"};
  EXPECT_EQ(Client::Create(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad.endpoints = {"http://127.0.0.1:1/path"};
  EXPECT_EQ(Client::Create(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  ClientConfig half_auth;
  half_auth.endpoints = {"127.0.0.1:1"};
  half_auth.username = "root";
  EXPECT_EQ(Client::Create(half_auth).status().code(),
            absl::StatusCode::kInvalidArgument);
  ClientConfig missing_ca;
  missing_ca.endpoints = {"127.0.0.1:1"};
  missing_ca.tls = TlsConfig{};
  missing_ca.tls->ca_file = "/nonexistent/ca.crt";
  auto s = Client::Create(missing_ca).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.ToString(), HasSubstr("/nonexistent/ca.crt"));
  ClientConfig http_with_tls;
  http_with_tls.endpoints = {"http://127.0.0.1:1"};
  http_with_tls.tls = TlsConfig{};
  EXPECT_EQ(Client::Create(http_with_tls).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PlainTest, HostNameEndpointIsResolved) {
  ClientConfig config;
  config.endpoints = {absl::StrCat("localhost:", etcd_->address().substr(10))};
  auto client = MustCreate(config);
  ASSERT_NE(client, nullptr);
  KV kv(client.get());
  auto put = kv.Put("/hostname/k", "v");
  EXPECT_TRUE(put.ok()) << put.status();
}

TEST_F(PlainTest, FailsOverFromADeadEndpoint) {
  const std::string dead = DeadEndpoint();
  ClientConfig config;
  config.endpoints = {dead, "http://" + etcd_->address()};
  auto client = MustCreate(config);
  ASSERT_NE(client, nullptr);
  KV kv(client.get());
  auto put =
      kv.Put("/failover/k", "v");  // a mutation: the dead endpoint never got it
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(client->current_endpoint(), etcd_->address());
  auto got = kv.Get("/failover/k");
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
  EXPECT_EQ((*got)->value, "v");
  ExpectStreamsWork(client.get(), "/failover/streams");
}

TEST_F(PlainTest, StreamsFailOverFromADeadEndpointToo) {
  ClientConfig config;
  config.endpoints = {DeadEndpoint(), etcd_->address()};
  auto client = MustCreate(config);
  ASSERT_NE(client, nullptr);
  // The streams are the first to use the client: they find the live endpoint
  // themselves.
  ExpectStreamsWork(client.get(), "/failover/streams-first");
}

TEST_F(PlainTest, AllEndpointsDownNamesEachOne) {
  const std::string a = DeadEndpoint(), b = DeadEndpoint();
  ClientConfig config;
  config.endpoints = {a, b};
  auto client = MustCreate(config);
  ASSERT_NE(client, nullptr);
  KV kv(client.get());
  auto r = kv.Get("/k");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()),
              AllOf(HasSubstr("etcd KV.Range"), HasSubstr(a), HasSubstr(b),
                    HasSubstr("onnection refused")));
}

TEST_F(PlainTest, CallAgainstAStoppedEtcdEndsWithinItsDeadline) {
  ClientConfig config;
  config.endpoints = {etcd_->address()};
  auto client = MustCreate(config);
  ASSERT_NE(client, nullptr);
  KV kv(client.get());
  ASSERT_TRUE(kv.Put("/deadline/k", "v").ok());  // connected first
  ASSERT_TRUE(etcd_->Stop().ok());
  for (int i = 0; i < 3; ++i) {
    PutOptions o;
    o.timeout = absl::Seconds(2);
    absl::Duration t0 = Clock::Real()->Monotonic();
    auto r = kv.Put("/deadline/k", "v2", o);
    absl::Duration took = Clock::Real()->Monotonic() - t0;
    EXPECT_THAT(r.status().code(), AnyOf(absl::StatusCode::kUnavailable,
                                         absl::StatusCode::kDeadlineExceeded))
        << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(etcd_->address()));
    EXPECT_LE(took, absl::Seconds(2) + absl::Milliseconds(300));
  }
}

// A listener that accepts TCP but never speaks HTTP/2: the worst case for a
// deadline.
TEST_F(PlainTest, CallAgainstASilentListenerEndsWithinItsDeadline) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ClientConfig config;
  config.endpoints = {absl::StrCat("127.0.0.1:", ntohs(addr.sin_port))};
  auto client = MustCreate(config);
  ASSERT_NE(client, nullptr);
  KV kv(client.get());
  RangeOptions o;
  o.timeout = absl::Milliseconds(1500);
  absl::Duration t0 = Clock::Real()->Monotonic();
  auto r = kv.Range("/k", o);
  absl::Duration took = Clock::Real()->Monotonic() - t0;
  close(fd);
  EXPECT_THAT(r.status().code(), AnyOf(absl::StatusCode::kUnavailable,
                                       absl::StatusCode::kDeadlineExceeded))
      << r.status();
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr(config.endpoints[0]));
  EXPECT_LE(took, absl::Milliseconds(1500) + absl::Milliseconds(300));
}

// ---- TLS
// ----------------------------------------------------------------------------------------

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::EtcdProcessOptions o;
    o.tls = true;
    o.client_cert_auth = true;
    auto e = testing::EtcdProcess::Start(o);
    ASSERT_TRUE(e.ok()) << e.status();
    etcd_ = e->release();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(etcd_, nullptr); }
  ClientConfig Config(const std::string& ca, bool client_cert) {
    ClientConfig c;
    c.endpoints = {"https://" + etcd_->address()};
    c.tls = TlsConfig{};
    c.tls->ca_file = ca;
    if (client_cert) {
      c.tls->cert_file = etcd_->client_cert_file();
      c.tls->key_file = etcd_->client_key_file();
    }
    c.call_timeout = absl::Seconds(3);
    return c;
  }
  static testing::EtcdProcess* etcd_;
};
testing::EtcdProcess* TlsTest::etcd_ = nullptr;

TEST_F(TlsTest, MutualTlsWorksForCallsAndStreams) {
  auto client = MustCreate(Config(etcd_->ca_file(), /*client_cert=*/true));
  ASSERT_NE(client, nullptr);
  KV kv(client.get());
  auto created = kv.Commit(CreateIfAbsent("/tls/lock", "me", 0));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->succeeded);
  ExpectStreamsWork(client.get(), "/tls/streams");
}

TEST_F(TlsTest, UnknownCaIsAClearError) {
  auto client =
      MustCreate(Config(etcd_->other_ca_file(), /*client_cert=*/true));
  ASSERT_NE(client, nullptr);
  KV kv(client.get());
  auto r = kv.Get("/tls/k");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(std::string(r.status().message()),
              AllOf(HasSubstr(etcd_->address()),
                    AnyOf(HasSubstr("CERTIFICATE_VERIFY_FAILED"),
                          HasSubstr("andshake"))))
      << r.status();
}

TEST_F(TlsTest, MissingClientCertificateIsRefused) {
  auto client = MustCreate(Config(etcd_->ca_file(), /*client_cert=*/false));
  ASSERT_NE(client, nullptr);
  KV kv(client.get());
  auto r = kv.Get("/tls/k");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(etcd_->address()));
}

// ---- Auth
// ---------------------------------------------------------------------------------------

class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto e = testing::EtcdProcess::Start();
    ASSERT_TRUE(e.ok()) << e.status();
    etcd_ = e->release();
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"role", "add", "root"},
             {"user", "add", "root:rootpw"},
             {"user", "grant-role", "root", "root"},
             {"role", "add", "limited"},
             {"role", "grant-permission", "limited", "readwrite", "/alice/",
              "--prefix=true"},
             {"user", "add", "alice:alicepw"},
             {"user", "grant-role", "alice", "limited"},
             {"auth", "enable"},
         }) {
      auto out = etcd_->Etcdctl(args);
      ASSERT_TRUE(out.ok()) << out.status();
    }
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(etcd_, nullptr); }
  ClientConfig Config(const std::string& user, const std::string& password) {
    ClientConfig c;
    c.endpoints = {etcd_->address()};
    c.username = user;
    c.password = password;
    return c;
  }
  static testing::EtcdProcess* etcd_;
};
testing::EtcdProcess* AuthTest::etcd_ = nullptr;

TEST_F(AuthTest, UsernameAndPasswordWorkForCallsAndStreams) {
  auto client = MustCreate(Config("root", "rootpw"));
  ASSERT_NE(client, nullptr);
  KV kv(client.get());
  ASSERT_TRUE(kv.Put("/auth/k", "v").ok());
  EXPECT_EQ(client->token_fetches(), 1);
  ExpectStreamsWork(client.get(), "/auth/streams");
  EXPECT_EQ(client->token_fetches(), 1) << "one token serves calls and streams";
}

TEST_F(AuthTest, WrongPasswordNamesTheCause) {
  auto client = MustCreate(Config("root", "wrong"));
  ASSERT_NE(client, nullptr);
  KV kv(client.get());
  auto r = kv.Put("/auth/k", "v");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
      << r.status();
  EXPECT_THAT(std::string(r.status().message()),
              AllOf(HasSubstr("Auth.Authenticate"), HasSubstr(etcd_->address()),
                    HasSubstr("invalid user ID or password"),
                    HasSubstr("user 'root'")));
  EXPECT_EQ(client->Authenticate().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AuthTest, NoCredentialsIsAClearError) {
  ClientConfig c;
  c.endpoints = {etcd_->address()};
  auto client = MustCreate(c);
  ASSERT_NE(client, nullptr);
  KV kv(client.get());
  auto r = kv.Put("/auth/k", "v");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              AllOf(HasSubstr("KV.Put"), HasSubstr(etcd_->address()),
                    HasSubstr("user name")))
      << r.status();
}

TEST_F(AuthTest, MissingPermissionIsPermissionDenied) {
  auto client = MustCreate(Config("alice", "alicepw"));
  ASSERT_NE(client, nullptr);
  KV kv(client.get());
  EXPECT_TRUE(kv.Put("/alice/k", "mine").ok());
  auto r = kv.Put("/mcl/locks/x", "not mine");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied)
      << r.status();
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("permission denied"));
  // A watch outside the permitted prefix is ended by etcd, and says so.
  absl::Notification done;
  absl::Status why;
  WatchOptions o;
  o.key = "/mcl/locks/";
  o.prefix = true;
  WatchCallbacks cb;
  cb.on_done = [&](const absl::Status& s) {
    why = s;
    done.Notify();
  };
  auto w = Watch::Start(client.get(), o, cb);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(why.code(), absl::StatusCode::kPermissionDenied) << why;
}

TEST_F(AuthTest, TokenIsRefreshedWhenEtcdInvalidatesIt) {
  auto client = MustCreate(Config("root", "rootpw"));
  ASSERT_NE(client, nullptr);
  KV kv(client.get());
  ASSERT_TRUE(kv.Put("/auth/refresh", "1").ok());
  ASSERT_EQ(client->token_fetches(), 1);
  // Disabling auth drops every token etcd has handed out.
  ASSERT_TRUE(
      etcd_->Etcdctl({"auth", "disable"}, {"--user", "root:rootpw"}).ok());
  ASSERT_TRUE(etcd_->Etcdctl({"auth", "enable"}).ok());
  auto put = kv.Put("/auth/refresh", "2");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(client->token_fetches(), 2);
  auto got = kv.Get("/auth/refresh");
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
  EXPECT_EQ((*got)->value, "2");
}

}  // namespace
}  // namespace mcl::etcd
