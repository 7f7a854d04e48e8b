// mcl-sidecar with the real mcl-controller in two clusters of the test bed
// (global etcd, two real kube-apiservers): a candidate in cluster A campaigns
// and wins; when it resigns, cancels its stream or its sidecar gets SIGTERM,
// the candidate in cluster B is told LEADER — after A was told LOST — by watch,
// well before any lease could have expired. And one identity campaigning on
// two sidecars of one cluster leads once.
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/testing/sidecar_client.h"
#include "testbed/cc/testbed.h"

namespace mcl::sidecar::testing {
namespace {

using ::mcl::testbed::Identity;
using ::mcl::testbed::SharedTestbed;
using ::mcl::testbed::Subprocess;
using ::mcl::testbed::Testbed;
using ::mcl::testbed::UniqueName;

// Campaigns use a long lease so that only a graceful handoff can be this fast:
// the crash path would need leaseDuration (10 s) of staleness first.
constexpr int kLeaseSeconds = 10;
constexpr absl::Duration kGraceful = absl::Seconds(5);
constexpr absl::Duration kEventTimeout = absl::Seconds(30);

std::string Describe(const std::vector<ReceivedEvent>& h) {
  std::vector<std::string> parts;
  for (const auto& e : h) {
    parts.push_back(absl::StrCat(mcl::v1::State_Name(e.event.state()), "(",
                                 e.event.leader().identity(), "@",
                                 e.event.leader().cluster(), "/",
                                 e.event.leader().fencing_token(), ")"));
  }
  return absl::StrJoin(parts, " ");
}

class SidecarWithControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mcl-scc-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ns_ = UniqueName("scc");
    prefix_ = "/mcl-sidecar-test/" + ns_;
    for (int c = 0; c < 2; ++c) {
      auto out = tb_.Kubectl(c, {"create", "namespace", ns_});
      ASSERT_TRUE(out.ok()) << out.status();
      std::vector<std::string> argv = {
          testbed::Runfile("controller/mcl-controller"),
          "--kubeconfig=" + tb_.kubeconfig(c, Identity::kController),
          "--cluster-name=" + tb_.cluster(c).name,
          "--etcd-endpoints=" + tb_.global_etcd_address(),
          "--session-ttl=2s",
          "--namespace=" + ns_,
          "--watch-namespaces=" + ns_,
          "--key-prefix=" + prefix_,
          "--identity=ctl-" + std::to_string(c),
          "--metrics-address=127.0.0.1:0"};
      auto p = Subprocess::Start(argv,
                                 absl::StrCat(dir_, "/controller-", c, ".log"));
      ASSERT_TRUE(p.ok()) << p.status();
      controllers_.push_back(std::make_unique<Subprocess>(std::move(*p)));
      ASSERT_TRUE(
          controllers_.back()->WaitForLog("informer synced", absl::Seconds(30)))
          << controllers_.back()->Log();
      auto s = Sidecar::Start(
          absl::StrCat("sidecar-", c), dir_,
          {"--kubeconfig=" + tb_.kubeconfig(c, Identity::kSidecar),
           "--namespace=" + ns_, "--cluster-name=" + tb_.cluster(c).name,
           absl::StrCat("--identity=app-", c)});
      ASSERT_TRUE(s.ok()) << s.status();
      sidecars_.push_back(std::move(*s));
    }
  }

  void TearDown() override {
    for (auto& s : sidecars_) {
      if (s->process().running()) (void)s->process().Stop(absl::Seconds(10));
    }
    for (auto& c : controllers_) (void)c->Stop(absl::Seconds(10));
    // The logs stay for a look after a failure; a passing test leaves nothing.
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  mcl::v1::CampaignRequest Campaign(const std::string& lock) {
    mcl::v1::CampaignRequest r;
    *r.mutable_lock() = Lock(lock);
    r.set_lease_duration_seconds(kLeaseSeconds);
    return r;
  }

  // A leads `lock`, B follows it. Returns A's LEADER event.
  ReceivedEvent ALeadsBFollows(const std::string& lock,
                               std::unique_ptr<StreamReader>* a,
                               std::unique_ptr<StreamReader>* b) {
    *a = StreamReader::Campaign(sidecars_[0]->stub(), Campaign(lock));
    auto led = (*a)->WaitFor(mcl::v1::LEADER, kEventTimeout);
    EXPECT_TRUE(led.has_value()) << Describe((*a)->History()) << "\n"
                                 << controllers_[0]->Log();
    if (!led) return {};
    EXPECT_EQ(led->event.leader().identity(), "app-0");
    EXPECT_EQ(led->event.leader().cluster(), "cluster-0");
    EXPECT_GT(led->event.leader().fencing_token(), 0);
    *b = StreamReader::Campaign(sidecars_[1]->stub(), Campaign(lock));
    auto f = (*b)->WaitFor(mcl::v1::FOLLOWER, kEventTimeout);
    EXPECT_TRUE(f.has_value()) << Describe((*b)->History());
    if (f) {
      EXPECT_EQ(f->event.leader().identity(), "app-0");
      EXPECT_EQ(f->event.leader().cluster(), "cluster-0");
      EXPECT_EQ(f->event.leader().fencing_token(),
                led->event.leader().fencing_token());
    }
    return *led;
  }

  // B is told LEADER after A's LOST, with a larger token, within kGraceful of
  // `since`. `a_hears_lost`: A's stream is still open to receive LOST (not when
  // A cancelled it itself).
  void ExpectHandover(StreamReader* a, StreamReader* b,
                      const ReceivedEvent& a_led, absl::Time since,
                      bool a_hears_lost = true) {
    auto b_led = b->WaitFor(mcl::v1::LEADER, kEventTimeout);
    ASSERT_TRUE(b_led.has_value()) << Describe(b->History()) << "\n"
                                   << controllers_[1]->Log();
    EXPECT_EQ(b_led->event.leader().identity(), "app-1");
    EXPECT_EQ(b_led->event.leader().cluster(), "cluster-1");
    EXPECT_GT(b_led->event.leader().fencing_token(),
              a_led.event.leader().fencing_token());
    EXPECT_LT(b_led->at - since, kGraceful)
        << "handover took " << (b_led->at - since);
    if (!a_hears_lost) return;
    // S1: A was told LOST before B was told LEADER.
    absl::Time a_lost = absl::InfiniteFuture();
    for (const auto& e : a->History()) {
      if (e.event.state() == mcl::v1::LOST && a_lost == absl::InfiniteFuture())
        a_lost = e.at;
    }
    EXPECT_LT(a_lost, b_led->at)
        << "A: " << Describe(a->History()) << "\nB: " << Describe(b->History());
    // A led without a lapse until it gave up: one leadership (LEADER, then
    // only renewals of its bound with the same token), then one LOST (a 10 s
    // lease under a 2 s session TTL must still be renewed often enough).
    int leaderships = 0, losts = 0;
    const auto h = a->History();
    for (size_t i = 0; i < h.size(); ++i) {
      const bool renewal = i > 0 && h[i - 1].event.state() == mcl::v1::LEADER &&
                           h[i - 1].event.leader().fencing_token() ==
                               h[i].event.leader().fencing_token();
      leaderships += h[i].event.state() == mcl::v1::LEADER && !renewal;
      losts += h[i].event.state() == mcl::v1::LOST;
    }
    EXPECT_EQ(leaderships, 1) << Describe(h);
    EXPECT_EQ(losts, 1) << Describe(h);
  }

  Testbed& tb_ = SharedTestbed(2);
  std::string dir_, ns_, prefix_;
  std::vector<std::unique_ptr<Subprocess>> controllers_;
  std::vector<std::unique_ptr<Sidecar>> sidecars_;
};

TEST_F(SidecarWithControllerTest, ResignInClusterAHandsLeadershipToClusterB) {
  const std::string lock = UniqueName("resign");
  std::unique_ptr<StreamReader> a, b;
  ReceivedEvent a_led = ALeadsBFollows(lock, &a, &b);
  ASSERT_GT(a_led.event.leader().fencing_token(), 0);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  mcl::v1::ResignRequest req;
  *req.mutable_lock() = Lock(lock);
  mcl::v1::ResignResponse resp;
  absl::Time resigned = absl::Now();
  grpc::Status s = sidecars_[0]->stub()->Resign(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(resp.was_leader());
  ExpectHandover(a.get(), b.get(), a_led, resigned);
  auto end = a->WaitEnd(absl::Seconds(5));
  ASSERT_TRUE(end.ok());
  EXPECT_TRUE(end->ok());
  // Observers in both clusters converge on B's grant.
  for (int c = 0; c < 2; ++c) {
    grpc::ClientContext lctx;
    mcl::v1::LeaderRequest lreq;
    *lreq.mutable_lock() = Lock(lock);
    mcl::v1::LeaderResponse lresp;
    ASSERT_TRUE(testbed::WaitUntil(
        [&] {
          grpc::ClientContext cc;
          return sidecars_[c]->stub()->Leader(&cc, lreq, &lresp).ok() &&
                 lresp.leader().identity() == "app-1";
        },
        absl::Seconds(10)))
        << "cluster " << c << " sees " << lresp.leader().identity();
    EXPECT_EQ(lresp.leader().cluster(), "cluster-1");
  }
}

TEST_F(SidecarWithControllerTest, CancellingTheCampaignStreamIsResign) {
  const std::string lock = UniqueName("cancel");
  std::unique_ptr<StreamReader> a, b;
  ReceivedEvent a_led = ALeadsBFollows(lock, &a, &b);
  ASSERT_GT(a_led.event.leader().fencing_token(), 0);
  absl::Time cancelled = absl::Now();
  a->Cancel();
  // The app ended the stream itself (it knows it stopped leading); no LOST can
  // reach it.
  ExpectHandover(a.get(), b.get(), a_led, cancelled, /*a_hears_lost=*/false);
  auto end = a->WaitEnd(absl::Seconds(5));
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(SidecarWithControllerTest, SigtermOfTheSidecarIsResign) {
  const std::string lock = UniqueName("sigterm");
  std::unique_ptr<StreamReader> a, b;
  ReceivedEvent a_led = ALeadsBFollows(lock, &a, &b);
  ASSERT_GT(a_led.event.leader().fencing_token(), 0);
  absl::Time termed = absl::Now();
  ASSERT_TRUE(sidecars_[0]->process().Signal(SIGTERM).ok());
  ExpectHandover(a.get(), b.get(), a_led, termed);
  auto code = sidecars_[0]->process().Wait(absl::Seconds(15));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
}

// One identity, two candidacies (PLAN decision 4; issue 15), with the real
// controller: two sidecars of cluster 0 campaign with one identity. At most
// one app is told LEADER, the other's stream ends with ALREADY_EXISTS, and no
// token is told to two apps. It needs the controller side of the decision
// (status.leaderInstance, a new instance as a change of holder).
TEST_F(SidecarWithControllerTest, OneIdentityTwiceInOneClusterLeadsOnce) {
  const std::string lock = UniqueName("twin");
  auto extra = Sidecar::Start(
      "sidecar-0b", dir_,
      {"--kubeconfig=" + tb_.kubeconfig(0, Identity::kSidecar),
       "--namespace=" + ns_, "--cluster-name=" + tb_.cluster(0).name,
       "--identity=app-0"});
  ASSERT_TRUE(extra.ok()) << extra.status();
  auto a = StreamReader::Campaign(sidecars_[0]->stub(), Campaign(lock));
  auto b = StreamReader::Campaign((*extra)->stub(), Campaign(lock));
  auto [refused, winner] = FirstToEnd(a.get(), b.get(), kEventTimeout);
  ASSERT_NE(refused, nullptr)
      << "A: " << Describe(a->History()) << "\nB: " << Describe(b->History());
  auto end = refused->WaitEnd(absl::ZeroDuration());
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::ALREADY_EXISTS)
      << end->error_message();
  auto led = winner->WaitFor(mcl::v1::LEADER, kEventTimeout);
  ASSERT_TRUE(led.has_value()) << Describe(winner->History()) << "\n"
                               << controllers_[0]->Log();
  for (const auto& e : refused->History()) {
    // Never LEADER, so never a token told to two apps.
    EXPECT_NE(e.event.state(), mcl::v1::LEADER) << Describe(refused->History());
  }
  EXPECT_FALSE(winner->WaitEnd(absl::Seconds(1)).ok())
      << Describe(winner->History());
  (void)(*extra)->process().Stop(absl::Seconds(10));
}

}  // namespace
}  // namespace mcl::sidecar::testing
