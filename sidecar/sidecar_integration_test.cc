// mcl-sidecar as real processes, through its real gRPC API over loopback / unix
// sockets, against a real kube-apiserver of the test bed, with the SIDECAR
// identity. The election controller is played by FakeController (the CONTROLLER
// identity, following docs/design.md), so the tests can stop and delay
// confirmations precisely; tests with the real controller are in
// sidecar_controller_integration_test.cc.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/contract.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/errors.h"
#include "common/kube/typed_client.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "sidecar/testing/fake_controller.h"
#include "sidecar/testing/sidecar_client.h"
#include "testbed/cc/free_port.h"
#include "testbed/cc/testbed.h"

namespace mcl::sidecar::testing {
namespace {

using ::mcl::testbed::SharedTestbed;
using ::mcl::testbed::Testbed;
using ::mcl::testbed::UniqueName;
using ::mcl::v1::CampaignRequest;
using ::mcl::v1::LeadershipEvent;
using ::testing::HasSubstr;

constexpr absl::Duration kTtl = absl::Seconds(2);
constexpr absl::Duration kEventTimeout = absl::Seconds(20);

int FreePort() {
  absl::StatusOr<int> port = testbed::FreeLoopbackPort();
  EXPECT_TRUE(port.ok()) << port.status();
  return port.value_or(0);
}

std::string Describe(const std::vector<ReceivedEvent>& h) {
  std::vector<std::string> parts;
  for (const auto& e : h) {
    parts.push_back(absl::StrCat(mcl::v1::State_Name(e.event.state()), "(",
                                 e.event.leader().identity(), "/",
                                 e.event.leader().fencing_token(), ")"));
  }
  return absl::StrJoin(parts, " ");
}

// The HTTP status code of GET http://127.0.0.1:PORT/PATH, as text.
std::string HttpCode(int port, const std::string& path) {
  auto r = testbed::RunCommand(
      {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
       absl::StrCat("http://127.0.0.1:", port, path)},
      absl::Seconds(10));
  return r.ok() ? r->output : r.status().ToString();
}

// How many times the stream went into LEADER: a LEADER right after a LEADER of
// the same token is a renewal of the bound, not a new leadership.
int LeadershipsIn(const std::vector<ReceivedEvent>& h) {
  int n = 0;
  for (size_t i = 0; i < h.size(); ++i) {
    if (h[i].event.state() != mcl::v1::LEADER) continue;
    const bool renewal = i > 0 && h[i - 1].event.state() == mcl::v1::LEADER &&
                         h[i - 1].event.leader().fencing_token() ==
                             h[i].event.leader().fencing_token();
    n += renewal ? 0 : 1;
  }
  return n;
}

class SidecarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mcl-sc-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto cfg = kube::LoadKubeconfigFile(tb_.cluster(0).kubeconfig_admin);
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    admin_ = std::move(*kube::KubeClient::Create(*cfg));
  }

  // Sidecars started by a test body have stopped by now. The logs stay for a
  // look after a failure; a passing test leaves nothing.
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::vector<std::string> Args(const std::string& identity) {
    return {"--kubeconfig=" + tb_.cluster(0).kubeconfig_sidecar,
            "--namespace=default", "--identity=" + identity,
            "--lease-duration=2"};
  }

  std::unique_ptr<Sidecar> StartSidecar(const std::string& name,
                                        std::vector<std::string> extra = {}) {
    std::vector<std::string> args = Args(name);
    args.insert(args.end(), extra.begin(), extra.end());
    auto s = Sidecar::Start(name, dir_, args);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::unique_ptr<FakeController> StartController() {
    FakeController::Options o;
    o.kubeconfig = tb_.cluster(0).kubeconfig_controller;
    o.ttl = kTtl;
    return std::make_unique<FakeController>(o);
  }

  static CampaignRequest Campaign(const std::string& lock,
                                  const std::string& identity = "",
                                  int lease = 0) {
    CampaignRequest r;
    *r.mutable_lock() = Lock(lock);
    r.set_identity(identity);
    r.set_lease_duration_seconds(lease);
    return r;
  }

  std::optional<kube::MultiClusterLease> GetLease(const std::string& name) {
    kube::MultiClusterLeaseClient c(admin_.get());
    auto l = c.Get("default", name);
    if (!l.ok()) return std::nullopt;
    return *l;
  }

  std::string Holder(const std::string& name) {
    auto l = GetLease(name);
    return l ? l->spec.holder_identity.value_or("") : "<absent>";
  }

  Testbed& tb_ = SharedTestbed(1);
  std::string dir_;
  std::unique_ptr<kube::KubeClient> admin_;
};

TEST_F(SidecarTest, UnixSocketIsOwnerOnlyUnlessSocketModeSaysOtherwise) {
  auto a = StartSidecar("sock-default");
  ASSERT_NE(a, nullptr);
  struct stat st {};
  ASSERT_EQ(stat((dir_ + "/sock-default.sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto b = StartSidecar("sock-group", {"--socket-mode=0660"});
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(stat((dir_ + "/sock-group.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_F(SidecarTest, RefusesNonLoopbackListenAddressesAndDocumentsItsFlags) {
  for (const char* addr :
       {"0.0.0.0:7499", "10.1.2.3:7499", "[::]:7499", ":7499"}) {
    auto r = testbed::RunCommand(
        {SidecarBinary(), std::string("--listen=") + addr,
         "--kubeconfig=" + tb_.cluster(0).kubeconfig_sidecar},
        absl::Seconds(10));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 2) << addr;
    EXPECT_THAT(r->output, HasSubstr(absl::StrCat(
                               "refusing to serve on --listen=", addr)));
  }
  auto help =
      testbed::RunCommand({SidecarBinary(), "--help"}, absl::Seconds(10));
  ASSERT_TRUE(help.ok());
  EXPECT_EQ(help->exit_code, 0);
  for (const char* flag :
       {"--kubeconfig", "--listen", "--namespace", "--identity",
        "--lease-duration", "--metrics-address"}) {
    EXPECT_THAT(help->output, HasSubstr(flag));
  }
}

TEST_F(SidecarTest, ServesHealthAndReflectionOnLoopbackTcp) {
  int port = FreePort();
  auto sc = StartSidecar("tcp", {absl::StrCat("--listen=127.0.0.1:", port)});
  ASSERT_NE(sc, nullptr);
  auto health = grpc::health::v1::Health::NewStub(sc->channel());
  grpc::ClientContext hctx;
  hctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest hreq;
  grpc::health::v1::HealthCheckResponse hresp;
  ASSERT_TRUE(health->Check(&hctx, hreq, &hresp).ok());
  EXPECT_EQ(hresp.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  // Reflection's list_services, as grpcurl does it. The reflection protos are
  // registered by libgrpc++_reflection but their C++ headers are not installed,
  // so the request is encoded by hand: ServerReflectionRequest{list_services:
  // ""} = field 7, length 0.
  grpc::GenericStub generic(sc->channel());
  grpc::CompletionQueue cq;
  grpc::ClientContext rctx;
  rctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto call = generic.PrepareCall(
      &rctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      &cq);
  auto step = [&cq](grpc::GenericClientAsyncReaderWriter* c, auto op) {
    void* tag = nullptr;
    bool ok = false;
    op();
    EXPECT_TRUE(cq.Next(&tag, &ok));
    return ok;
  };
  ASSERT_TRUE(
      step(call.get(), [&] { call->StartCall(reinterpret_cast<void*>(1)); }));
  grpc::Slice req_slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer req(&req_slice, 1);
  ASSERT_TRUE(
      step(call.get(), [&] { call->Write(req, reinterpret_cast<void*>(2)); }));
  ASSERT_TRUE(
      step(call.get(), [&] { call->WritesDone(reinterpret_cast<void*>(3)); }));
  grpc::ByteBuffer resp;
  ASSERT_TRUE(
      step(call.get(), [&] { call->Read(&resp, reinterpret_cast<void*>(4)); }));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(resp.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_THAT(bytes, HasSubstr("mcl.v1.Election"));
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
  grpc::Status fin;
  step(call.get(), [&] { call->Finish(&fin, reinterpret_cast<void*>(5)); });
  EXPECT_TRUE(fin.ok()) << fin.error_message();
}

// The health service is the sidecar's own (async API): Check knows "" and
// mcl.v1.Election, says NOT_FOUND otherwise; Watch sends the current status at
// once (SERVICE_UNKNOWN for an unknown name, the stream staying open) and
// NOT_SERVING when the sidecar begins to shut down.
TEST_F(SidecarTest, HealthCheckAndWatchFollowTheServingStatus) {
  using grpc::health::v1::HealthCheckRequest;
  using grpc::health::v1::HealthCheckResponse;
  auto sc = StartSidecar("health");
  ASSERT_NE(sc, nullptr);
  auto health = grpc::health::v1::Health::NewStub(sc->channel());
  auto check = [&](const std::string& service, HealthCheckResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(5));
    HealthCheckRequest req;
    req.set_service(service);
    return health->Check(&ctx, req, resp);
  };
  HealthCheckResponse resp;
  ASSERT_TRUE(check("mcl.v1.Election", &resp).ok());
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
  grpc::Status unknown = check("no.such.Service", &resp);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(unknown.error_message(), HasSubstr("mcl.v1.Election"));

  grpc::ClientContext wctx, uctx;
  wctx.set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(30));
  uctx.set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(30));
  HealthCheckRequest all, other;
  other.set_service("no.such.Service");
  auto watch = health->Watch(&wctx, all);
  auto watch_unknown = health->Watch(&uctx, other);
  ASSERT_TRUE(watch->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
  ASSERT_TRUE(watch_unknown->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVICE_UNKNOWN);

  ASSERT_TRUE(sc->process().Signal(SIGTERM).ok());
  ASSERT_TRUE(watch->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::NOT_SERVING);
  auto code = sc->process().Wait(absl::Seconds(15));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << sc->process().Log();
  // The streams end with the process (not left hanging until the deadline).
  EXPECT_FALSE(watch->Read(&resp));
  EXPECT_FALSE(watch_unknown->Read(&resp));
}

struct BadCall {
  std::string label;
  std::function<grpc::Status(mcl::v1::Election::Stub*)> call;
  grpc::StatusCode code;
  std::string message;
};

grpc::Status CampaignStatus(mcl::v1::Election::Stub* stub,
                            const CampaignRequest& req) {
  auto r = StreamReader::Campaign(stub, req);
  auto end = r->WaitEnd(absl::Seconds(10));
  if (!end.ok())
    return grpc::Status(grpc::StatusCode::UNKNOWN, "stream did not end");
  return *end;
}

TEST_F(SidecarTest, BadInputIsRejectedThroughGrpcWithMessagesThatSayWhatToFix) {
  auto sc = StartSidecar("badinput",
                         {absl::StrCat("--listen=127.0.0.1:", FreePort())});
  ASSERT_NE(sc, nullptr);
  const std::string held = UniqueName("held");
  auto first = StreamReader::Campaign(sc->stub(), Campaign(held, "app-1"));
  ASSERT_TRUE(first->Next(kEventTimeout).has_value()) << "no first event";

  std::vector<BadCall> cases = {
      {"empty lock name",
       [](auto* s) { return CampaignStatus(s, Campaign("")); },
       grpc::StatusCode::INVALID_ARGUMENT, "lock.name is empty"},
      {"lock name with uppercase and underscore",
       [](auto* s) { return CampaignStatus(s, Campaign("My_Lock")); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "use only lowercase letters, digits, '-' and '.'"},
      {"lock name too long",
       [](auto* s) {
         return CampaignStatus(s, Campaign(std::string(254, 'a')));
       },
       grpc::StatusCode::INVALID_ARGUMENT, "at most 253"},
      {"invalid namespace",
       [](auto* s) {
         CampaignRequest r = Campaign("ok");
         r.mutable_lock()->set_namespace_("Team.A");
         return CampaignStatus(s, r);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "lock.namespace"},
      {"identity too long",
       [](auto* s) {
         return CampaignStatus(s, Campaign("ok", std::string(129, 'i')));
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       "identity is 129 bytes long; at most 128"},
      {"identity with a space",
       [](auto* s) { return CampaignStatus(s, Campaign("ok", "two words")); },
       grpc::StatusCode::INVALID_ARGUMENT, "printable ASCII without spaces"},
      {"negative lease duration",
       [](auto* s) { return CampaignStatus(s, Campaign("ok", "", -5)); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "lease_duration_seconds is -5; use 0"},
      {"lease duration of one second",
       [](auto* s) { return CampaignStatus(s, Campaign("ok", "", 1)); },
       grpc::StatusCode::INVALID_ARGUMENT, "[2, 3600]"},
      {"absurd lease duration",
       [](auto* s) { return CampaignStatus(s, Campaign("ok", "", 100000)); },
       grpc::StatusCode::INVALID_ARGUMENT, "lease_duration_seconds is 100000"},
      {"second Campaign for the same lock and identity",
       [held](auto* s) { return CampaignStatus(s, Campaign(held, "app-1")); },
       grpc::StatusCode::ALREADY_EXISTS,
       "already campaigns for lock default/" + held},
      {"Resign of a lock not campaigned",
       [](auto* s) {
         grpc::ClientContext ctx;
         mcl::v1::ResignRequest r;
         *r.mutable_lock() = Lock("never-campaigned");
         mcl::v1::ResignResponse resp;
         return s->Resign(&ctx, r, &resp);
       },
       grpc::StatusCode::FAILED_PRECONDITION,
       "no Campaign for lock default/never-campaigned"},
      {"Resign with another identity",
       [held](auto* s) {
         grpc::ClientContext ctx;
         mcl::v1::ResignRequest r;
         *r.mutable_lock() = Lock(held);
         r.set_identity("someone-else");
         mcl::v1::ResignResponse resp;
         return s->Resign(&ctx, r, &resp);
       },
       grpc::StatusCode::FAILED_PRECONDITION, "with identity \"someone-else\""},
      {"Resign with an invalid lock",
       [](auto* s) {
         grpc::ClientContext ctx;
         mcl::v1::ResignRequest r;
         mcl::v1::ResignResponse resp;
         return s->Resign(&ctx, r, &resp);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "lock.name is empty"},
      {"Observe with an invalid lock",
       [](auto* s) {
         mcl::v1::ObserveRequest r;
         *r.mutable_lock() = Lock("-bad");
         auto reader = StreamReader::Observe(s, r);
         auto end = reader->WaitEnd(absl::Seconds(10));
         return end.ok() ? *end
                         : grpc::Status(grpc::StatusCode::UNKNOWN, "no end");
       },
       grpc::StatusCode::INVALID_ARGUMENT, "must start and end"},
      {"Leader with an invalid lock",
       [](auto* s) {
         grpc::ClientContext ctx;
         mcl::v1::LeaderRequest r;
         *r.mutable_lock() = Lock("a..b");
         mcl::v1::LeaderResponse resp;
         return s->Leader(&ctx, r, &resp);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "'.'-separated part"},
      {"Leader of a lock nobody leads",
       [](auto* s) {
         grpc::ClientContext ctx;
         mcl::v1::LeaderRequest r;
         *r.mutable_lock() = Lock("nobody-leads-this");
         mcl::v1::LeaderResponse resp;
         return s->Leader(&ctx, r, &resp);
       },
       grpc::StatusCode::NOT_FOUND,
       "no candidate currently leads lock default/nobody-leads-this"},
  };
  for (const BadCall& c : cases) {
    grpc::Status s = c.call(sc->stub());
    EXPECT_EQ(s.error_code(), c.code) << c.label << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message)) << c.label;
  }
  // The rejected second Campaign did not disturb the first.
  EXPECT_FALSE(first->WaitEnd(absl::Milliseconds(200)).ok())
      << "the first Campaign ended";
}

TEST_F(SidecarTest, SidecarIdentityWritesSpecButTheApiserverForbidsItStatus) {
  auto ctl = StartController();
  const std::string lock = UniqueName("rbac");
  ctl->Manage(lock);
  auto sc = StartSidecar("rbac");
  ASSERT_NE(sc, nullptr);
  auto camp = StreamReader::Campaign(sc->stub(), Campaign(lock));
  ASSERT_TRUE(camp->WaitFor(mcl::v1::LEADER, kEventTimeout).has_value())
      << Describe(camp->History());
  // The spec was written by the sidecar process: the apiserver records it as
  // the field manager.
  auto obj = GetLease(lock);
  ASSERT_TRUE(obj.has_value());
  EXPECT_EQ(obj->spec.holder_identity.value_or(""), "rbac");
  std::string managers =
      obj->raw.at("metadata").at("managedFields").serialize();
  EXPECT_THAT(managers, HasSubstr("\"manager\":\"mcl-sidecar\""));
  // The same credentials the sidecar runs with are refused /status by the
  // apiserver.
  auto cfg = kube::LoadKubeconfigFile(tb_.cluster(0).kubeconfig_sidecar);
  ASSERT_TRUE(cfg.ok());
  auto client = kube::KubeClient::Create(*cfg);
  ASSERT_TRUE(client.ok());
  kube::MultiClusterLeaseClient as_sidecar(client->get());
  auto patch = kube::ParseJson(
      R"({"status":{"leader":"intruder","fencingToken":999999}})", "patch");
  ASSERT_TRUE(patch.ok());
  auto r = as_sidecar.MergePatch("default", lock, *patch, "status");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(kube::IsForbidden(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("multiclusterleases/status"));
  EXPECT_EQ(GetLease(lock)->status.leader, "rbac");
}

TEST_F(SidecarTest, ThreeSidecarsOneLocalHolderKillFailsOverAndObserversAgree) {
  auto ctl = StartController();
  const std::string lock = UniqueName("three");
  ctl->Manage(lock);
  std::vector<std::unique_ptr<Sidecar>> sidecars;
  for (const char* n : {"sc-a", "sc-b", "sc-c"}) {
    sidecars.push_back(StartSidecar(n));
    ASSERT_NE(sidecars.back(), nullptr);
  }
  // Observers on every sidecar, started before anyone campaigns.
  std::vector<std::vector<std::unique_ptr<StreamReader>>> observers(3);
  mcl::v1::ObserveRequest oreq;
  *oreq.mutable_lock() = Lock(lock);
  for (int i = 0; i < 3; ++i) {
    for (int k = 0; k < 3; ++k) {
      observers[i].push_back(StreamReader::Observe(sidecars[i]->stub(), oreq));
      auto first = observers[i].back()->Next(kEventTimeout);
      ASSERT_TRUE(first.has_value());
      EXPECT_EQ(first->event.state(), mcl::v1::NO_LEADER);
    }
  }
  std::vector<std::unique_ptr<StreamReader>> camps;
  for (int i = 0; i < 3; ++i)
    camps.push_back(
        StreamReader::Campaign(sidecars[i]->stub(), Campaign(lock)));

  // Exactly one becomes the local holder and is told LEADER; the others
  // FOLLOWER of it.
  int leader = -1;
  std::string leader_id;
  int64_t token1 = 0;
  ASSERT_TRUE(testbed::WaitUntil(
      [&] {
        for (int i = 0; i < 3; ++i) {
          for (const auto& e : camps[i]->History()) {
            if (e.event.state() == mcl::v1::LEADER) {
              leader = i;
              token1 = e.event.leader().fencing_token();
              leader_id = e.event.leader().identity();
            }
          }
        }
        return leader >= 0;
      },
      kEventTimeout));
  EXPECT_EQ(Holder(lock), leader_id);
  EXPECT_EQ(leader_id,
            std::vector<std::string>({"sc-a", "sc-b", "sc-c"})[leader]);
  for (int i = 0; i < 3; ++i) {
    if (i == leader) continue;
    auto f = camps[i]->WaitFor(mcl::v1::FOLLOWER, kEventTimeout);
    ASSERT_TRUE(f.has_value()) << Describe(camps[i]->History());
    EXPECT_EQ(f->event.leader().identity(), leader_id);
    for (const auto& e : camps[i]->History())
      EXPECT_NE(e.event.state(), mcl::v1::LEADER);
  }
  // Steady state for a few renewal periods: still exactly one holder, one
  // LEADER.
  // A span of time is what is being tested here.
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ(Holder(lock), leader_id);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(LeadershipsIn(camps[i]->History()), i == leader ? 1 : 0)
        << Describe(camps[i]->History());
  }

  // SIGKILL the holder's sidecar: another one takes over the spec, and is
  // granted a larger token.
  absl::Time killed = absl::Now();
  ASSERT_TRUE(sidecars[leader]->process().Signal(SIGKILL).ok());
  int next = -1;
  int64_t token2 = 0;
  ASSERT_TRUE(testbed::WaitUntil(
      [&] {
        for (int i = 0; i < 3; ++i) {
          if (i == leader) continue;
          for (const auto& e : camps[i]->History()) {
            if (e.event.state() == mcl::v1::LEADER) {
              next = i;
              token2 = e.event.leader().fencing_token();
            }
          }
        }
        return next >= 0;
      },
      absl::Seconds(30)));
  absl::Duration failover = absl::Now() - killed;
  EXPECT_GT(token2, token1);
  // leaseDuration (spec staleness) + TTL·(1+ρ) + m (the controller's ack
  // timeout) overlap; plus delays.
  EXPECT_LT(failover, absl::Seconds(8)) << failover;
  std::string next_id =
      std::vector<std::string>({"sc-a", "sc-b", "sc-c"})[next];
  EXPECT_EQ(Holder(lock), next_id);
  int other = 3 - leader - next;
  auto f = camps[other]->WaitFor(mcl::v1::FOLLOWER, kEventTimeout);
  ASSERT_TRUE(f.has_value());
  // It may first have seen the old leader again; its latest FOLLOWER names the
  // new one.
  testbed::WaitUntil(
      [&] {
        auto h = camps[other]->History();
        return h.back().event.leader().identity() == next_id;
      },
      kEventTimeout);
  EXPECT_EQ(camps[other]->History().back().event.leader().identity(), next_id);

  // Every observer on the surviving sidecars saw the same sequence of (leader,
  // token).
  std::string expected;
  for (int i = 0; i < 3; ++i) {
    if (i == leader) continue;
    for (auto& o : observers[i]) {
      ASSERT_TRUE(testbed::WaitUntil(
          [&] {
            return o->History().back().event.leader().fencing_token() == token2;
          },
          kEventTimeout));
      std::string seq = Describe(o->History());
      if (expected.empty()) expected = seq;
      EXPECT_EQ(seq, expected);
    }
  }
  EXPECT_EQ(expected,
            absl::StrCat("NO_LEADER(/0) FOLLOWER(", leader_id, "/", token1,
                         ") FOLLOWER(", next_id, "/", token2, ")"));
}

// One identity, two candidacies (PLAN decision 4; issue 15): two sidecars of
// one cluster campaign with the same identity. The controller (FakeController
// here, following the design) grants one candidacy (identity, instance); the
// other sees it renew and ends with ALREADY_EXISTS. At most one app is ever
// told LEADER, and no token is told to two apps.
TEST_F(SidecarTest, OneIdentityOnTwoSidecarsLeadsOnceAndTheOtherIsRefused) {
  auto ctl = StartController();
  const std::string lock = UniqueName("twin");
  ctl->Manage(lock);
  auto a = StartSidecar("twin-a");
  auto b = StartSidecar("twin-b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto ca = StreamReader::Campaign(a->stub(), Campaign(lock, "twin"));
  auto cb = StreamReader::Campaign(b->stub(), Campaign(lock, "twin"));
  auto [refused, winner] = FirstToEnd(ca.get(), cb.get(), kEventTimeout);
  ASSERT_NE(refused, nullptr)
      << "A: " << Describe(ca->History()) << "\nB: " << Describe(cb->History());
  auto end = refused->WaitEnd(absl::ZeroDuration());
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::ALREADY_EXISTS)
      << end->error_message();
  EXPECT_THAT(end->error_message(),
              HasSubstr(absl::StrCat("another candidacy of identity \"twin\" "
                                     "is renewing lock default/",
                                     lock)));
  auto led = winner->WaitFor(mcl::v1::LEADER, kEventTimeout);
  ASSERT_TRUE(led.has_value()) << Describe(winner->History());
  for (const auto& e : refused->History()) {
    EXPECT_NE(e.event.state(), mcl::v1::LEADER) << Describe(refused->History());
  }
  // The winner keeps leading with its one token.
  EXPECT_FALSE(winner->WaitEnd(absl::Milliseconds(500)).ok());
  for (const auto& e : winner->History()) {
    if (e.event.state() == mcl::v1::LEADER) {
      EXPECT_EQ(e.event.leader().fencing_token(),
                led->event.leader().fencing_token());
    }
  }
  EXPECT_EQ(ctl->grants(), 1);
}

TEST_F(SidecarTest, CancellingTheStreamResignsAtOnce) {
  auto ctl = StartController();
  const std::string lock = UniqueName("cancel");
  ctl->Manage(lock);
  auto sc = StartSidecar("cancel");
  ASSERT_NE(sc, nullptr);
  auto camp = StreamReader::Campaign(sc->stub(), Campaign(lock));
  ASSERT_TRUE(camp->WaitFor(mcl::v1::LEADER, kEventTimeout).has_value());
  ASSERT_EQ(Holder(lock), "cancel");
  absl::Time cancelled = absl::Now();
  camp->Cancel();
  // The spec holder is cleared by the sidecar well before the lease duration (2
  // s) could expire.
  ASSERT_TRUE(testbed::WaitUntil([&] { return Holder(lock).empty(); },
                                 absl::Seconds(10)));
  EXPECT_LT(absl::Now() - cancelled, absl::Seconds(1));
  // The controller released the grant on that ack.
  ASSERT_TRUE(
      testbed::WaitUntil([&] { return GetLease(lock)->status.leader.empty(); },
                         absl::Seconds(10)));
  // And the identity may campaign again at once.
  auto again = StreamReader::Campaign(sc->stub(), Campaign(lock));
  auto e = again->WaitFor(mcl::v1::LEADER, kEventTimeout);
  ASSERT_TRUE(e.has_value()) << Describe(again->History());
}

TEST_F(SidecarTest,
       ResignReturnsOnceTheSpecIsClearedAndTheStreamSaysLostThenEnds) {
  auto ctl = StartController();
  const std::string lock = UniqueName("resign");
  ctl->Manage(lock);
  auto sc = StartSidecar("resign");
  ASSERT_NE(sc, nullptr);
  auto camp = StreamReader::Campaign(sc->stub(), Campaign(lock));
  auto led = camp->WaitFor(mcl::v1::LEADER, kEventTimeout);
  ASSERT_TRUE(led.has_value());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  mcl::v1::ResignRequest req;
  *req.mutable_lock() = Lock(lock);
  mcl::v1::ResignResponse resp;
  grpc::Status s = sc->stub()->Resign(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(resp.was_leader());
  EXPECT_EQ(Holder(lock), "");  // already cleared when Resign returned
  auto lost = camp->WaitFor(mcl::v1::LOST, absl::Seconds(5));
  ASSERT_TRUE(lost.has_value()) << Describe(camp->History());
  EXPECT_EQ(lost->event.reason(), "resigned");
  EXPECT_EQ(lost->event.leader().fencing_token(),
            led->event.leader().fencing_token());
  auto end = camp->WaitEnd(absl::Seconds(5));
  ASSERT_TRUE(end.ok());
  EXPECT_TRUE(end->ok()) << end->error_message();
  // A second Resign finds nothing to resign.
  grpc::ClientContext ctx2;
  EXPECT_EQ(sc->stub()->Resign(&ctx2, req, &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

// The bound in LEADER events (proto Validity): on the node's CLOCK_MONOTONIC,
// renewed while confirmations flow, and never later than the LOST the sidecar
// sends when they stop.
TEST_F(SidecarTest, LeaderEventsCarryABoundRenewedWhileLeadingAndEndedByLost) {
  auto ctl = StartController();
  const std::string lock = UniqueName("bound");
  ctl->Manage(lock);
  auto sc = StartSidecar("bound");
  ASSERT_NE(sc, nullptr);
  auto camp = StreamReader::Campaign(sc->stub(), Campaign(lock));
  auto led = camp->WaitFor(mcl::v1::LEADER, kEventTimeout);
  ASSERT_TRUE(led.has_value()) << Describe(camp->History());
  const int64_t token = led->event.leader().fencing_token();
  const absl::Duration v = contract::ValidityAfterConfirmedWrite(kTtl);
  auto check = [&](const ReceivedEvent& e) {
    ASSERT_TRUE(e.event.has_validity()) << "LEADER without a bound";
    const mcl::v1::Validity& b = e.event.validity();
    // Sent before it was received, on the same clock.
    EXPECT_LE(b.sent_monotonic_ns(), e.mono_ns);
    const int64_t remaining =
        b.remaining().seconds() * 1000000000 + b.remaining().nanos();
    EXPECT_EQ(remaining, b.valid_until_monotonic_ns() - b.sent_monotonic_ns());
    // Counted from a write sent before the event: at most V after it.
    EXPECT_LE(b.valid_until_monotonic_ns(),
              e.mono_ns + absl::ToInt64Nanoseconds(v));
  };
  check(*led);
  // Confirmations every TTL/4 move the bound forward: LEADER renewals, same
  // token, each bound later than the one before.
  int64_t bound = led->event.validity().valid_until_monotonic_ns();
  for (int renewals = 0; renewals < 3; ++renewals) {
    auto r = camp->WaitFor(mcl::v1::LEADER, absl::Seconds(10));
    ASSERT_TRUE(r.has_value()) << Describe(camp->History());
    check(*r);
    EXPECT_EQ(r->event.leader().fencing_token(), token);
    EXPECT_GT(r->event.validity().valid_until_monotonic_ns(), bound);
    bound = r->event.validity().valid_until_monotonic_ns();
  }
  // Confirmations stop: LOST comes at the last bound, not before it (the app
  // stops at the bound by itself) and not long after.
  ctl->SetHeartbeats(false);
  std::optional<ReceivedEvent> lost;
  while (!lost) {
    auto e = camp->Next(absl::Seconds(10));
    ASSERT_TRUE(e.has_value()) << Describe(camp->History());
    if (e->event.state() == mcl::v1::LEADER) {
      check(*e);
      bound = e->event.validity().valid_until_monotonic_ns();
    } else if (e->event.state() == mcl::v1::LOST) {
      lost = e;
    }
  }
  EXPECT_EQ(lost->event.reason(), "confirmation lapsed");
  EXPECT_FALSE(lost->event.has_validity());
  EXPECT_LE(bound, lost->mono_ns) << "LOST came before the bound passed";
  EXPECT_LT(lost->mono_ns - bound, absl::ToInt64Nanoseconds(absl::Seconds(1)))
      << "LOST came " << (lost->mono_ns - bound) / 1000000
      << " ms after the bound";
}

// A lock in a namespace that does not exist: the create answers 404, and the
// stream ends with NOT_FOUND naming the namespace instead of NO_LEADER
// forever.
TEST_F(SidecarTest, CampaignInAMissingNamespaceEndsWithNotFoundNamingIt) {
  auto sc = StartSidecar("nons");
  ASSERT_NE(sc, nullptr);
  const std::string ns = UniqueName("no-such-ns");
  CampaignRequest req = Campaign("lock-a");
  req.mutable_lock()->set_namespace_(ns);
  auto camp = StreamReader::Campaign(sc->stub(), req);
  auto first = camp->Next(kEventTimeout);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->event.state(), mcl::v1::NO_LEADER);
  auto end = camp->WaitEnd(kEventTimeout);
  ASSERT_TRUE(end.ok()) << "the stream did not end";
  EXPECT_EQ(end->error_code(), grpc::StatusCode::NOT_FOUND)
      << end->error_message();
  EXPECT_THAT(end->error_message(),
              HasSubstr(absl::StrCat("namespace \"", ns,
                                     "\" does not exist in this cluster")));
}

TEST_F(SidecarTest, StoppedConfirmationsAreLostBeforeTheLeaseCouldExpire) {
  auto ctl = StartController();
  const std::string lock = UniqueName("lapse");
  ctl->Manage(lock);
  auto sc = StartSidecar("lapse");
  ASSERT_NE(sc, nullptr);
  auto camp = StreamReader::Campaign(sc->stub(), Campaign(lock));
  ASSERT_TRUE(camp->WaitFor(mcl::v1::LEADER, kEventTimeout).has_value());
  // Leadership held across several heartbeats.
  absl::SleepFor(absl::Seconds(1));
  ctl->SetHeartbeats(false);
  // The etcd lease behind the last confirmation lives until at least capture +
  // TTL; LOST must come before (the capture happened after the sidecar's
  // confirmed write was sent).
  auto lost = camp->WaitFor(mcl::v1::LOST, absl::Seconds(10));
  ASSERT_TRUE(lost.has_value()) << Describe(camp->History());
  absl::Time last_capture = ctl->LastPublishedCapture();
  EXPECT_EQ(lost->event.reason(), "confirmation lapsed");
  EXPECT_LT(lost->at, last_capture + kTtl)
      << "LOST arrived " << absl::FormatDuration(lost->at - last_capture)
      << " after the last confirmation's capture";
  // The stream stays open; confirmations resume → LEADER again with the same
  // grant.
  ctl->SetHeartbeats(true);
  auto again = camp->WaitFor(mcl::v1::LEADER, kEventTimeout);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->event.leader().fencing_token(),
            lost->event.leader().fencing_token());
}

TEST_F(SidecarTest,
       LateConfirmationsNeverExtendLeadershipBeyondTheirCapturePlusTtl) {
  auto ctl = StartController();
  ctl->SetHeartbeatDelay(absl::Milliseconds(1200));
  const std::string lock = UniqueName("late");
  ctl->Manage(lock);
  auto sc = StartSidecar("late");
  ASSERT_NE(sc, nullptr);
  auto camp = StreamReader::Campaign(sc->stub(), Campaign(lock));
  // Let the delayed confirmations flow for a while.
  absl::SleepFor(absl::Seconds(8));
  ctl->SetHeartbeats(false);
  ASSERT_TRUE(testbed::WaitUntil(
      [&] {
        auto h = camp->History();
        return !h.empty() && h.back().event.state() != mcl::v1::LEADER;
      },
      absl::Seconds(10)));
  std::vector<absl::Time> captures = ctl->CaptureTimes();
  auto h = camp->History();
  int leaders = 0;
  // Every LEADER period ends (LOST) before the newest capture published before
  // it + TTL.
  for (const auto& e : h) {
    if (e.event.state() == mcl::v1::LEADER) ++leaders;
    if (e.event.state() != mcl::v1::LOST) continue;
    absl::Time newest = absl::InfinitePast();
    for (absl::Time c : captures) {
      if (c < e.at) newest = std::max(newest, c);
    }
    EXPECT_LT(e.at, newest + kTtl)
        << "LOST at +" << absl::FormatDuration(e.at - newest);
  }
  EXPECT_GE(leaders, 1) << Describe(h);
}

TEST_F(SidecarTest, SigtermResignsEveryLockAndExitsZero) {
  auto ctl = StartController();
  const std::string a = UniqueName("term-a"), b = UniqueName("term-b");
  ctl->Manage(a);
  ctl->Manage(b);
  auto sc = StartSidecar("term");
  ASSERT_NE(sc, nullptr);
  auto ca = StreamReader::Campaign(sc->stub(), Campaign(a));
  auto cb = StreamReader::Campaign(sc->stub(), Campaign(b));
  ASSERT_TRUE(ca->WaitFor(mcl::v1::LEADER, kEventTimeout).has_value());
  ASSERT_TRUE(cb->WaitFor(mcl::v1::LEADER, kEventTimeout).has_value());
  ASSERT_TRUE(sc->process().Signal(SIGTERM).ok());
  auto code = sc->process().Wait(absl::Seconds(15));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << sc->process().Log();
  for (auto* c : {ca.get(), cb.get()}) {
    auto lost = c->WaitFor(mcl::v1::LOST, absl::Seconds(5));
    ASSERT_TRUE(lost.has_value()) << Describe(c->History());
    EXPECT_EQ(lost->event.reason(), "the sidecar is shutting down");
    // UNAVAILABLE (not Resign's OK): the client libraries campaign again.
    auto end = c->WaitEnd(absl::Seconds(5));
    ASSERT_TRUE(end.ok()) << end.status();
    EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(end->error_message(), "the sidecar is shutting down");
  }
  EXPECT_EQ(Holder(a), "");
  EXPECT_EQ(Holder(b), "");
}

TEST_F(SidecarTest, MetricsAndHealthz) {
  auto ctl = StartController();
  const std::string lock = UniqueName("metrics");
  ctl->Manage(lock);
  int port = FreePort();
  auto sc = StartSidecar("metrics",
                         {absl::StrCat("--metrics-address=127.0.0.1:", port)});
  ASSERT_NE(sc, nullptr);
  auto camp = StreamReader::Campaign(sc->stub(), Campaign(lock));
  ASSERT_TRUE(camp->WaitFor(mcl::v1::LEADER, kEventTimeout).has_value());
  auto metrics = testbed::RunCommand(
      {"curl", "-sf", absl::StrCat("http://127.0.0.1:", port, "/metrics")},
      absl::Seconds(10));
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->output,
              HasSubstr(absl::StrCat("mcl_sidecar_is_leader{lock=\"default/",
                                     lock, "\"} 1")));
  EXPECT_THAT(metrics->output,
              HasSubstr(absl::StrCat(
                  "mcl_sidecar_leader_transitions_total{lock=\"default/", lock,
                  "\"} 1")));
  EXPECT_THAT(metrics->output, HasSubstr("mcl_sidecar_renew_errors_total"));
  EXPECT_THAT(metrics->output,
              HasSubstr(absl::StrCat("mcl_sidecar_campaigns{lock=\"default/",
                                     lock, "\"} 1")));
  EXPECT_THAT(metrics->output, HasSubstr("mcl_sidecar_apiserver_reachable 1"));
  EXPECT_EQ(HttpCode(port, "/healthz"), "200");
  EXPECT_EQ(HttpCode(port, "/readyz"), "200");
}

// Last in this file: it stops the shared apiserver and starts it again.
TEST_F(SidecarTest,
       ZApiserverDownCallsAreUnavailableStreamsStayOpenAndRecover) {
  auto ctl = StartController();
  const std::string lock = UniqueName("down");
  ctl->Manage(lock);
  const int port = FreePort();
  auto sc = StartSidecar("down",
                         {absl::StrCat("--metrics-address=127.0.0.1:", port)});
  ASSERT_NE(sc, nullptr);
  auto camp = StreamReader::Campaign(sc->stub(), Campaign(lock));
  mcl::v1::ObserveRequest oreq;
  *oreq.mutable_lock() = Lock(lock);
  auto obs = StreamReader::Observe(sc->stub(), oreq);
  auto led = camp->WaitFor(mcl::v1::LEADER, kEventTimeout);
  ASSERT_TRUE(led.has_value());

  ASSERT_TRUE(tb_.Stop("apiserver-0").ok());
  // Confirmations stop with the apiserver: LOST, and the stream stays open.
  auto lost = camp->WaitFor(mcl::v1::LOST, absl::Seconds(10));
  ASSERT_TRUE(lost.has_value()) << Describe(camp->History());
  // Calls that need the apiserver answer UNAVAILABLE (once the watch has
  // noticed).
  ASSERT_TRUE(testbed::WaitUntil(
      [&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
        mcl::v1::LeaderRequest r;
        *r.mutable_lock() = Lock(lock);
        mcl::v1::LeaderResponse resp;
        return sc->stub()->Leader(&ctx, r, &resp).error_code() ==
               grpc::StatusCode::UNAVAILABLE;
      },
      absl::Seconds(20)));
  grpc::Status other =
      CampaignStatus(sc->stub(), Campaign(UniqueName("while-down")));
  EXPECT_EQ(other.error_code(), grpc::StatusCode::UNAVAILABLE)
      << other.error_message();
  EXPECT_THAT(other.error_message(), HasSubstr("retry"));
  EXPECT_FALSE(camp->WaitEnd(absl::Milliseconds(100)).ok())
      << "the Campaign stream ended";
  // Liveness does not depend on the apiserver (an outage must not restart
  // every sidecar); readiness and the metric report it.
  EXPECT_EQ(HttpCode(port, "/healthz"), "200");
  EXPECT_EQ(HttpCode(port, "/readyz"), "503");
  auto metrics = testbed::RunCommand(
      {"curl", "-sf", absl::StrCat("http://127.0.0.1:", port, "/metrics")},
      absl::Seconds(10));
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->output, HasSubstr("mcl_sidecar_apiserver_reachable 0"));
  EXPECT_FALSE(obs->WaitEnd(absl::Milliseconds(100)).ok())
      << "the Observe stream ended";

  ASSERT_TRUE(tb_.StartAgain("apiserver-0").ok());
  auto back = camp->WaitFor(mcl::v1::LEADER, absl::Seconds(60));
  ASSERT_TRUE(back.has_value()) << Describe(camp->History());
  grpc::ClientContext ctx;
  mcl::v1::LeaderRequest r;
  *r.mutable_lock() = Lock(lock);
  mcl::v1::LeaderResponse resp;
  ASSERT_TRUE(testbed::WaitUntil(
      [&] {
        grpc::ClientContext c;
        return sc->stub()->Leader(&c, r, &resp).ok();
      },
      absl::Seconds(20)));
  EXPECT_EQ(resp.leader().identity(), "down");
  EXPECT_FALSE(obs->WaitEnd(absl::Milliseconds(100)).ok());
}

}  // namespace
}  // namespace mcl::sidecar::testing
