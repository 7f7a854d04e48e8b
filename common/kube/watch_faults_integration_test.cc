// Watches against a real kube-apiserver when the path or the server fails
// quietly: a loopback proxy that holds bytes (no reset) between the informer
// and the apiserver, and an apiserver whose etcd is restored from a snapshot
// (its resourceVersions go back).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/informer.h"
#include "common/kube/run_leases.h"
#include "common/kube/typed_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testbed/cc/subprocess.h"
#include "testbed/cc/testbed.h"
#include "testbed/faultproxy/faultproxy.h"

namespace mcl::kube {
namespace {

using testbed::Identity;
using testbed::SharedTestbed;
using testbed::UniqueName;
using ::testing::ElementsAre;

constexpr absl::Duration kWait = absl::Seconds(60);

// "ADD name holder", "UPDATE name holder->holder", "DELETE name".
class Log {
 public:
  TypedInformer<MultiClusterLease>::Handlers Handlers() {
    return {[this](const MultiClusterLease& l) {
              Add("ADD " + l.metadata.name + " " + Holder(l));
            },
            [this](const MultiClusterLease& a, const MultiClusterLease& b) {
              Add(absl::StrCat("UPDATE ", a.metadata.name, " ", Holder(a), "->",
                               Holder(b)));
            },
            [this](const MultiClusterLease& l) {
              Add("DELETE " + l.metadata.name);
            }};
  }
  std::vector<std::string> lines() const {
    absl::MutexLock l(&mu_);
    return lines_;
  }
  bool Has(const std::string& line) const {
    absl::MutexLock l(&mu_);
    return std::find(lines_.begin(), lines_.end(), line) != lines_.end();
  }

 private:
  static std::string Holder(const MultiClusterLease& l) {
    return l.spec.holder_identity.value_or("-");
  }
  void Add(std::string line) {
    absl::MutexLock l(&mu_);
    lines_.push_back(std::move(line));
  }
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_;
};

class WatchFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cfg = LoadKubeconfigFile(tb_.kubeconfig(0, Identity::kAdmin));
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    config_ = *cfg;
    client_ = Client(config_);
    run_ = UniqueName("run");
  }

  // The test's own writes wait longer than the informers' requests: a cold
  // apiserver on a loaded machine may take seconds to answer the first ones.
  static std::unique_ptr<KubeClient> Client(
      const Config& cfg, absl::Duration timeout = absl::Seconds(15)) {
    ClientOptions co;
    co.request_timeout = timeout;
    auto c = KubeClient::Create(cfg, co);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  InformerOptions Options() {
    InformerOptions o;
    o.namespace_ = "default";
    o.label_selector = "run=" + run_;
    o.backoff = {absl::Milliseconds(50), absl::Seconds(1), 2.0};
    o.on_error = [](const absl::Status& s) {
      fprintf(stderr, "informer: %s\n", s.ToString().c_str());
    };
    return o;
  }

  MultiClusterLease Lease(const std::string& name, const std::string& holder) {
    return testing::RunLease(run_, name, holder);
  }
  absl::StatusOr<MultiClusterLease> SetHolder(const std::string& name,
                                              const std::string& holder) {
    return testing::SetHolder(client_.get(), name, holder);
  }

  int ApiserverPort() const {
    int port = 0;
    absl::string_view url = tb_.cluster(0).apiserver;
    EXPECT_TRUE(absl::SimpleAtoi(url.substr(url.rfind(':') + 1), &port));
    return port;
  }

  // A value of the test bed's environment file (testbed.sh writes it).
  std::string TestbedEnv(const std::string& key) const {
    std::ifstream in(tb_.dir() + "/testbed.env");
    std::string line;
    while (std::getline(in, line)) {
      if (absl::StartsWith(line, key + "=")) return line.substr(key.size() + 1);
    }
    return "";
  }

  testbed::Testbed& tb_ = SharedTestbed(1);
  Config config_;
  std::unique_ptr<KubeClient> client_;
  std::string run_;
};

// The path between the informer and the apiserver holds bytes: no reset, no
// close, nothing. The informer must notice within its idle bound, keep
// trying while the path holds, and catch up — without loss or duplicate —
// once it heals.
TEST_F(WatchFaultsTest, HeldPathIsDetectedWithinTheIdleBoundAndHeals) {
  constexpr absl::Duration kIdle = absl::Seconds(6);
  Clock* clock = Clock::Real();
  absl::Mutex mu;
  absl::Duration held_at = absl::InfiniteDuration();
  absl::Duration detected_at = absl::InfiniteDuration();
  absl::Status detected_by;
  using faultproxy::FaultProxy;
  auto proxy = FaultProxy::Start();
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  auto port = (*proxy)->AddLink("informer-apiserver", ApiserverPort());
  ASSERT_TRUE(port.ok()) << port.status();
  Config via = config_;
  via.server = absl::StrCat("https://127.0.0.1:", *port);
  auto client = Client(via, absl::Seconds(2));
  std::string a = UniqueName("held");
  auto created =
      MultiClusterLeaseClient(client_.get()).Create(Lease(a, "before"));
  ASSERT_TRUE(created.ok()) << created.status();
  Log log;
  InformerOptions o = Options();
  o.watch_idle_timeout = kIdle;
  o.on_error = [&](const absl::Status& s) {
    fprintf(stderr, "informer: %s\n", s.ToString().c_str());
    absl::MutexLock l(&mu);
    if (held_at != absl::InfiniteDuration() &&
        detected_at == absl::InfiniteDuration()) {
      detected_at = clock->Monotonic();
      detected_by = s;
    }
  };
  TypedInformer<MultiClusterLease> inf(client.get(), o, log.Handlers());
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(kWait));
  // A healthy, quiet watch gets no bookmarks (nothing moves this resource's
  // watch cache): it is reopened at the bound, and that is not an error.
  ASSERT_TRUE(
      inf.WaitUntil([&] { return inf.untyped().stats().idle >= 2; }, kWait));
  EXPECT_EQ(inf.untyped().stats().errors, 0) << inf.untyped().LastError();
  EXPECT_EQ(inf.untyped().stats().lists, 1);

  {
    absl::MutexLock l(&mu);
    ASSERT_TRUE(
        (*proxy)->Set("informer-apiserver", {FaultProxy::Mode::kHold}).ok());
    held_at = clock->Monotonic();
  }
  auto during = SetHolder(a, "during");  // straight to the apiserver
  ASSERT_TRUE(during.ok()) << during.status();
  ASSERT_TRUE(inf.WaitUntil(
      [&] {
        absl::MutexLock l(&mu);
        return detected_at != absl::InfiniteDuration();
      },
      kWait));
  {
    absl::MutexLock l(&mu);
    // The idle bound counts from the last byte, which came before the hold;
    // then the version check, held too, fails at the request timeout (2 s).
    EXPECT_LE(detected_at - held_at, kIdle + absl::Seconds(3)) << detected_by;
    EXPECT_TRUE(absl::IsDeadlineExceeded(detected_by)) << detected_by;
  }
  EXPECT_FALSE(log.Has("UPDATE " + a + " before->during"))
      << "nothing passes a held path";

  fprintf(stderr, "held: detected after %s\n",
          absl::FormatDuration(clock->Monotonic() - held_at).c_str());
  ASSERT_TRUE(
      (*proxy)->Set("informer-apiserver", {FaultProxy::Mode::kPass}).ok());
  const absl::Duration released_at = clock->Monotonic();
  ASSERT_TRUE(
      inf.WaitForResourceVersion(during->metadata.resource_version, kWait))
      << inf.untyped().LastError();
  fprintf(stderr, "held: caught up %s after the release\n",
          absl::FormatDuration(clock->Monotonic() - released_at).c_str());
  EXPECT_THAT(log.lines(), ElementsAre("ADD " + a + " before",
                                       "UPDATE " + a + " before->during"));
  EXPECT_EQ(inf.untyped().stats().lists, 1) << "resumed, not relisted";
  inf.Stop();
}

// The cluster's etcd is restored from a snapshot taken before the informer's
// last changes (etcd 3.4's restore keeps the snapshot's revision, so the
// apiserver's versions go back). The informer must relist: the object made
// after the snapshot disappears, the edited one returns to its snapshot
// state, and later writes arrive.
TEST_F(WatchFaultsTest, RestoredEtcdLeadsToARelist) {
  MultiClusterLeaseClient leases(client_.get());
  std::string kept = UniqueName("kept"), late = UniqueName("late"),
              filler = UniqueName("filler");
  for (const auto& [name, holder] :
       {std::pair{kept, "snap"}, std::pair{filler, "f0"}}) {
    auto created = leases.Create(Lease(name, holder));
    ASSERT_TRUE(created.ok()) << created.status();
  }
  Log log;
  TypedInformer<MultiClusterLease> inf(client_.get(), Options(),
                                       log.Handlers());
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(kWait));

  const std::string etcd = tb_.cluster(0).etcd;
  const std::string snapshot = tb_.dir() + "/etcd-0-" + run_ + ".db";
  ASSERT_TRUE(
      testing::Etcdctl({"--endpoints=" + etcd, "snapshot", "save", snapshot})
          .ok());
  ASSERT_TRUE(leases.Create(Lease(late, "after")).ok());
  ASSERT_TRUE(SetHolder(kept, "after").ok());
  // Enough writes after the snapshot that the restored apiserver's own
  // writes (leases, at startup) cannot bring its version back past the
  // informer's before it reconnects.
  absl::StatusOr<MultiClusterLease> last;
  for (int i = 1; i <= 200; ++i) {
    last = SetHolder(filler, absl::StrCat("f", i));
    ASSERT_TRUE(last.ok()) << last.status();
  }
  ASSERT_TRUE(
      inf.WaitForResourceVersion(last->metadata.resource_version, kWait));
  ASSERT_TRUE(log.Has("ADD " + late + " after"));

  ASSERT_TRUE(tb_.Stop("apiserver-0").ok());
  ASSERT_TRUE(tb_.Stop("etcd-0").ok());
  const std::string data = tb_.dir() + "/etcd-0/data";
  const std::string peer = TestbedEnv("MCL_CLUSTER_0_ETCD_PEER");
  ASSERT_FALSE(peer.empty());
  std::error_code ignored;
  std::filesystem::remove_all(data, ignored);
  ASSERT_TRUE(testing::Etcdctl({"snapshot", "restore", snapshot, "--name",
                                "etcd-0", "--data-dir", data,
                                "--initial-cluster", "etcd-0=" + peer,
                                "--initial-advertise-peer-urls", peer})
                  .ok());
  ASSERT_TRUE(tb_.StartAgain("etcd-0").ok());
  ASSERT_TRUE(tb_.StartAgain("apiserver-0").ok());

  ASSERT_TRUE(inf.WaitUntil(
      [&] {
        return log.Has("DELETE " + late) &&
               log.Has("UPDATE " + kept + " after->snap");
      },
      kWait))
      << inf.untyped().LastError();
  EXPECT_GE(inf.untyped().stats().rewinds, 1);
  // And the informer follows the restored history from there.
  std::string next = UniqueName("next");
  absl::StatusOr<MultiClusterLease> created;
  ASSERT_TRUE(testbed::WaitUntil(
      [&] { return (created = leases.Create(Lease(next, "new"))).ok(); },
      kWait))
      << created.status();
  ASSERT_TRUE(
      inf.WaitUntil([&] { return log.Has("ADD " + next + " new"); }, kWait));
  EXPECT_EQ(inf.Get("default", kept)->spec.holder_identity, "snap");
  EXPECT_FALSE(inf.Get("default", late).has_value());
  inf.Stop();
}

}  // namespace
}  // namespace mcl::kube
