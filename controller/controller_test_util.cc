#include "controller/controller_test_util.h"

#include <signal.h>

#include <cstdlib>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/kube/config.h"
#include "common/kube/errors.h"
#include "common/kube/objects.h"
#include "gtest/gtest.h"

namespace mcl::controller::testing {

using kube::Json;

Env::Env(testbed::Testbed& tb_) : tb(tb_) {
  ns = testbed::UniqueName("ctl");
  prefix = "/mcl-test/" + ns;
  for (int c = 0; c < tb.clusters(); ++c) {
    auto out = tb.Kubectl(c, {"create", "namespace", ns});
    EXPECT_TRUE(out.ok()) << out.status();
    for (auto [who, vec] :
         {std::make_pair(testbed::Identity::kAdmin, &admin_),
          std::make_pair(testbed::Identity::kSidecar, &sidecar_)}) {
      auto cfg = kube::LoadKubeconfigFile(tb.kubeconfig(c, who));
      EXPECT_TRUE(cfg.ok()) << cfg.status();
      auto client = kube::KubeClient::Create(*cfg);
      EXPECT_TRUE(client.ok()) << client.status();
      vec->push_back(std::move(*client));
    }
  }
  etcd::ClientConfig ec;
  ec.endpoints = {tb.global_etcd_address()};
  auto client = etcd::Client::Create(ec);
  EXPECT_TRUE(client.ok()) << client.status();
  etcd_ = std::move(*client);
  kv_ = std::make_unique<etcd::KV>(etcd_.get());
}

Env::~Env() = default;

absl::StatusOr<std::unique_ptr<testbed::Subprocess>> Env::StartController(
    int c, const std::string& identity, const std::vector<std::string>& extra,
    bool wait_ready) {
  const char* out_dir = getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  std::string log = absl::StrCat(out_dir != nullptr ? out_dir : tb.dir(), "/",
                                 ns, "-cluster", c, "-", identity, ".log");
  std::vector<std::string> argv = {
      testbed::Runfile("controller/mcl-controller"),
      "--kubeconfig",
      tb.kubeconfig(c, testbed::Identity::kController),
      "--cluster-name",
      tb.cluster(c).name,
      "--etcd-endpoints",
      tb.global_etcd_address(),
      "--session-ttl",
      absl::FormatDuration(kTtl),
      "--namespace",
      ns,
      "--watch-namespaces",
      ns,
      "--key-prefix",
      prefix,
      "--identity",
      identity,
      "--metrics-address",
      "127.0.0.1:0"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto p = testbed::Subprocess::Start(argv, log);
  if (!p.ok()) return p.status();
  auto proc = std::make_unique<testbed::Subprocess>(std::move(*p));
  if (wait_ready && !proc->WaitForLog("informer synced", absl::Seconds(30))) {
    return absl::DeadlineExceededError(absl::StrCat(
        "controller ", identity, " did not get ready; log:\n", proc->Log()));
  }
  return proc;
}

absl::Status Env::CreateLock(int c, const std::string& name,
                             const std::string& spec_json) {
  auto spec = kube::ParseJson(spec_json, "spec");
  if (!spec.ok()) return spec.status();
  Json obj = Json::object();
  obj["apiVersion"] = Json::string("mcl.dev/v1alpha1");
  obj["kind"] = Json::string("MultiClusterLease");
  kube::ChildObject(obj, "metadata")["name"] = Json::string(name);
  kube::ChildObject(obj, "metadata")["namespace"] = Json::string(ns);
  obj["spec"] = *spec;
  return admin(c)->Create(kube::MultiClusterLeaseResource(), ns, obj).status();
}

absl::StatusOr<kube::MultiClusterLease> Env::Read(int c,
                                                  const std::string& name) {
  auto j = admin(c)->Get(kube::MultiClusterLeaseResource(), ns, name);
  if (!j.ok()) return j.status();
  return kube::MultiClusterLease::FromJson(*j);
}

absl::StatusOr<std::optional<etcd::KeyValue>> Env::Key(
    const std::string& name) {
  return kv_->Get(EtcdKey(name));
}

Candidate::Candidate(kube::KubeClient* client, std::string ns, std::string name,
                     std::string holder, int lease_seconds)
    : client_(client),
      ns_(std::move(ns)),
      name_(std::move(name)),
      holder_(std::move(holder)),
      lease_seconds_(lease_seconds) {}

Candidate::~Candidate() { Stop(); }

absl::Status Candidate::RenewOnce() {
  Json patch = Json::object();
  Json& spec = kube::ChildObject(patch, "spec");
  spec["holderIdentity"] = Json::string(holder_);
  spec["leaseDurationSeconds"] = Json::number(lease_seconds_);
  spec["renewTime"] = Json::string(kube::FormatMicroTime(absl::Now()));
  const absl::Duration sent = Clock::Real()->Monotonic();
  auto r =
      client_->MergePatch(kube::MultiClusterLeaseResource(), ns_, name_, patch);
  if (r.ok()) {
    renewals_++;
    absl::MutexLock l(&mu_);
    last_renewal_ = absl::Now();
    writes_.emplace_back(
        kube::ParseResourceVersion(kube::ResourceVersionOf(*r)).value_or(0),
        sent);
  }
  return r.status();
}

void Candidate::Start() {
  stop_ = std::make_unique<StopFlag>();
  (void)RenewOnce();
  thread_ = std::thread([this, stop = stop_.get()] {
    const absl::Duration period = absl::Seconds(lease_seconds_) / 4;
    while (!stop->WaitFor(period)) (void)RenewOnce();
  });
}

absl::Time Candidate::Stop() {
  if (stop_ != nullptr) stop_->Set();
  if (thread_.joinable()) thread_.join();
  absl::MutexLock l(&mu_);
  return last_renewal_;
}

std::vector<std::pair<int64_t, absl::Duration>> Candidate::writes() {
  absl::MutexLock l(&mu_);
  return writes_;
}

absl::Status Candidate::Resign() {
  Stop();
  Json patch = Json::object();
  kube::ChildObject(patch, "spec")["holderIdentity"] = Json::null();
  return client_
      ->MergePatch(kube::MultiClusterLeaseResource(), ns_, name_, patch)
      .status();
}

bool CondIs(const kube::MultiClusterLease& v, const std::string& type,
            const std::string& status, const std::string& reason) {
  const kube::Condition* c = FindCondition(v.status, type);
  return c != nullptr && c->status == status &&
         (reason.empty() || c->reason == reason);
}

bool Holds(const kube::MultiClusterLease& v) {
  return CondIs(v, kGlobalLockHeld, "True");
}

void ControllerFixture::SetUp() {
  env_ = std::make_unique<Env>(testbed::SharedTestbed(2));
}

void ControllerFixture::TearDown() {
  for (auto& c : candidates_) c->Stop();
  for (auto& p : procs_) {
    if (p) {
      (void)p->Signal(SIGCONT);
      (void)p->Stop(absl::Seconds(15));
    }
  }
}

testbed::Subprocess* ControllerFixture::Start(
    int c, const std::string& id, const std::vector<std::string>& extra,
    bool wait_ready) {
  auto p = env_->StartController(c, id, extra, wait_ready);
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return nullptr;
  procs_.push_back(std::move(*p));
  return procs_.back().get();
}

Candidate* ControllerFixture::Campaign(int c, const std::string& name,
                                       const std::string& holder,
                                       int lease_seconds) {
  candidates_.push_back(std::make_unique<Candidate>(
      env_->sidecar(c), env_->ns, name, holder, lease_seconds));
  candidates_.back()->Start();
  return candidates_.back().get();
}

std::optional<kube::MultiClusterLease> ControllerFixture::WaitHeld(
    int c, const std::string& name, const std::string& holder,
    absl::Duration timeout) {
  std::optional<kube::MultiClusterLease> seen;
  testbed::WaitUntil(
      [&] {
        auto v = env_->Read(c, name);
        if (v.ok() && Holds(*v) && v->status.leader == holder) seen = *v;
        return seen.has_value();
      },
      timeout);
  return seen;
}

}  // namespace mcl::controller::testing
