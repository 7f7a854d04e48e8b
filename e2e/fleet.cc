#include "e2e/fleet.h"

#include <signal.h>
#include <unistd.h>

#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/contract.h"
#include "common/kube/config.h"
#include "common/kube/informer.h"
#include "testbed/cc/free_port.h"

namespace mcl::e2e {
namespace {

std::string SidecarKubeconfig(testbed::Testbed& tb, int cluster) {
  return tb.kubeconfig(cluster, testbed::Identity::kSidecar);
}

}  // namespace

absl::Duration MonoNow() { return Clock::Real()->Monotonic(); }

// --- App --------------------------------------------------------------------

App::App(std::string identity, Sidecar* sidecar, History* history)
    : identity_(std::move(identity)), sidecar_(sidecar), history_(history) {}

App::~App() {
  Cancel();
  if (reader_.joinable()) reader_.join();
}

void App::Campaign(const std::string& lock, int lease_duration_seconds) {
  if (reader_.joinable()) {
    Cancel();
    reader_.join();
  }
  {
    absl::MutexLock l(&mu_);
    dead_ = false;
    finished_ = false;
    leading_ = false;
  }
  ctx_ = std::make_unique<grpc::ClientContext>();
  mcl::v1::CampaignRequest req;
  req.mutable_lock()->set_name(lock);
  req.set_identity(identity_);
  req.set_lease_duration_seconds(lease_duration_seconds);
  grpc::ClientContext* ctx = ctx_.get();
  std::shared_ptr<mcl::v1::Election::Stub> stub = sidecar_->Stub();
  reader_ = std::thread([this, ctx, stub, req] {
    auto stream = stub->Campaign(ctx, req);
    mcl::v1::LeadershipEvent ev;
    while (stream->Read(&ev)) {
      absl::Duration now = MonoNow();
      absl::MutexLock l(&mu_);
      log_.push_back(ev);
      if (dead_) continue;
      if (ev.state() == mcl::v1::LEADER) {
        if (!leading_ || ev.leader().fencing_token() != token_locked()) {
          history_->Leader(identity_, ev.leader().fencing_token(), now);
        }
        leading_ = true;
      } else if (leading_) {
        history_->Lost(identity_, now);
        leading_ = false;
      }
    }
    grpc::Status st = stream->Finish();
    absl::Duration now = MonoNow();
    absl::MutexLock l(&mu_);
    if (leading_ && !dead_) history_->Lost(identity_, now);
    leading_ = false;
    finished_ = true;
    final_ = st;
  });
}

int64_t App::token_locked() const {
  for (auto it = log_.rbegin(); it != log_.rend(); ++it) {
    if (it->state() == mcl::v1::LEADER) return it->leader().fencing_token();
  }
  return 0;
}

void App::Cancel() {
  if (ctx_ != nullptr) ctx_->TryCancel();
}

void App::Die() {
  absl::Duration now = MonoNow();
  absl::MutexLock l(&mu_);
  if (leading_ && !dead_) history_->Lost(identity_, now);
  leading_ = false;
  dead_ = true;
}

bool App::WaitFor(mcl::v1::State state, absl::Duration timeout,
                  int since_event) {
  auto cond = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    for (size_t k = static_cast<size_t>(since_event); k < log_.size(); ++k) {
      if (log_[k].state() == state) return true;
    }
    return false;
  };
  absl::MutexLock l(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&cond), timeout);
}

int App::events() const {
  absl::MutexLock l(&mu_);
  return static_cast<int>(log_.size());
}

bool App::leading() const {
  absl::MutexLock l(&mu_);
  return leading_;
}

int64_t App::token() const {
  absl::MutexLock l(&mu_);
  return token_locked();
}

bool App::finished() const {
  absl::MutexLock l(&mu_);
  return finished_;
}

grpc::Status App::final_status() const {
  absl::MutexLock l(&mu_);
  return final_;
}

// --- Observer ---------------------------------------------------------------

Observer::Observer(std::string name, Sidecar* sidecar, History* history,
                   const std::string& lock)
    : name_(std::move(name)), sidecar_(sidecar), history_(history) {
  mcl::v1::ObserveRequest req;
  req.mutable_lock()->set_name(lock);
  reader_ = std::thread([this, req] {
    while (true) {
      grpc::ClientContext ctx;
      {
        absl::MutexLock l(&mu_);
        if (stopping_) return;
        ctx_ = &ctx;
      }
      std::shared_ptr<mcl::v1::Election::Stub> stub = sidecar_->Stub();
      if (stub != nullptr && sidecar_->alive()) {
        auto stream = stub->Observe(&ctx, req);
        mcl::v1::LeadershipEvent ev;
        while (stream->Read(&ev)) {
          Observation o;
          if (ev.state() == mcl::v1::FOLLOWER ||
              ev.state() == mcl::v1::LEADER) {
            o.identity = ev.leader().identity();
            o.token = ev.leader().fencing_token();
          }
          history_->Observed(name_, o);
          absl::MutexLock l(&mu_);
          latest_ = o;
        }
        stream->Finish();
      }
      absl::MutexLock l(&mu_);
      ctx_ = nullptr;
      // The sidecar went away (or is restarting): forget the view and try again
      // shortly.
      latest_ = Observation{};
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                               absl::Milliseconds(50)))
        return;
    }
  });
}

Observer::~Observer() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    if (ctx_ != nullptr) ctx_->TryCancel();
  }
  if (reader_.joinable()) reader_.join();
}

bool Observer::WaitForLeader(const std::string& identity, int64_t min_token,
                             absl::Duration timeout) {
  auto cond = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return latest_.identity == identity && latest_.token > min_token;
  };
  absl::MutexLock l(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&cond), timeout);
}

std::optional<Observation> Observer::WaitForOtherLeader(
    const std::string& not_identity, absl::Duration timeout) {
  auto cond = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !latest_.identity.empty() && latest_.identity != not_identity;
  };
  absl::MutexLock l(&mu_);
  if (!mu_.AwaitWithTimeout(absl::Condition(&cond), timeout)) {
    return std::nullopt;
  }
  return latest_;
}

Observation Observer::latest() const {
  absl::MutexLock l(&mu_);
  return latest_;
}

// --- Fleet ------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Fleet>> Fleet::Start(FleetOptions options) {
  if (options.controller_binary.empty()) {
    options.controller_binary = testbed::Runfile("controller/mcl-controller");
  }
  if (options.sidecar_binary.empty()) {
    options.sidecar_binary = testbed::Runfile("sidecar/mcl-sidecar");
  }
  std::unique_ptr<Fleet> fleet(new Fleet(options));
  auto tb = testbed::Testbed::Start(options.clusters);
  if (!tb.ok()) return tb.status();
  fleet->testbed_ = std::move(*tb);
  fleet->controllers_.resize(static_cast<size_t>(options.clusters));
  for (int i = 0; i < options.clusters; ++i) {
    auto ns = fleet->testbed_->Kubectl(
        i, {"create", "namespace", options.controller_namespace});
    if (!ns.ok()) return ns.status();
    absl::Status s = fleet->StartController(i);
    if (!s.ok()) return s;
  }
  return fleet;
}

bool Fleet::WaitLocalCandidate(int cluster, const std::string& lock,
                               const std::string& identity,
                               absl::Duration timeout) {
  const size_t i = static_cast<size_t>(cluster);
  if (admins_.size() <= i) admins_.resize(i + 1);
  if (admins_[i] == nullptr) {
    auto cfg =
        kube::LoadKubeconfigFile(testbed_->cluster(cluster).kubeconfig_admin);
    if (!cfg.ok()) return false;
    auto client = kube::KubeClient::Create(*cfg);
    if (!client.ok()) return false;
    admins_[i] = std::move(*client);
  }
  // Woken by each watch event on that one object, not by polling.
  kube::InformerOptions o;
  o.namespace_ = options_.lock_namespace;
  o.field_selector = "metadata.name=" + lock;
  kube::TypedInformer<kube::MultiClusterLease> informer(admins_[i].get(), o,
                                                        {});
  informer.Start();
  const bool named = informer.WaitUntil(
      [&] {
        auto l = informer.Get(options_.lock_namespace, lock);
        return l.has_value() && l->spec.holder_identity == identity;
      },
      timeout);
  informer.Stop();
  return named;
}

Fleet::~Fleet() {
  observers_.clear();
  for (auto& app : apps_) app->Cancel();
  apps_.clear();
  for (auto& s : sidecars_) {
    if (s->process) (void)s->process->Stop(absl::Seconds(5));
  }
  for (auto& c : controllers_) {
    if (c) (void)c->Stop(absl::Seconds(10));
  }
}

std::string Fleet::LogDir() const { return testbed_->dir(); }

absl::Status Fleet::StartController(int cluster) {
  std::string etcd = testbed_->global_etcd_address();
  std::string name = testbed_->cluster(cluster).name;
  std::string log =
      absl::StrCat(LogDir(), "/controller-", cluster, "-", restarts_++, ".log");
  auto proc = testbed::Subprocess::Start(
      {options_.controller_binary, "--kubeconfig",
       testbed_->kubeconfig(cluster, testbed::Identity::kController),
       "--cluster-name", name, "--etcd-endpoints", etcd, "--session-ttl",
       absl::FormatDuration(options_.session_ttl), "--namespace",
       options_.controller_namespace, "--identity",
       absl::StrCat(name, "-controller-", restarts_), "--metrics-address",
       "127.0.0.1:0"},
      log);
  if (!proc.ok()) return proc.status();
  controllers_[static_cast<size_t>(cluster)] =
      std::make_unique<testbed::Subprocess>(std::move(*proc));
  // Ready once it publishes the cluster's heartbeat Lease under its own
  // identity: it is the active replica, holds an etcd session and can grant.
  // (The Lease alone is not enough: a killed predecessor's outlives it, and a
  // restarted controller is a new replica that waits out the old one's
  // replica Lease first.)
  const std::string heartbeat = contract::HeartbeatLeaseName(name);
  const std::string identity = absl::StrCat(name, "-controller-", restarts_);
  bool ready = testbed::WaitUntil(
      [&] {
        auto holder = testbed_->Kubectl(
            cluster, {"get", "lease", "-n", options_.controller_namespace,
                      heartbeat, "-o", "jsonpath={.spec.holderIdentity}"});
        return holder.ok() && absl::StripAsciiWhitespace(*holder) == identity;
      },
      absl::Seconds(30));
  if (!ready) {
    return absl::DeadlineExceededError(absl::StrCat(
        "controller ", identity, " of ", name, " published no heartbeat Lease ",
        heartbeat, " within 30s; log:\n",
        controllers_[static_cast<size_t>(cluster)]->Log()));
  }
  return absl::OkStatus();
}

absl::Status Fleet::StopController(int cluster, int sig) {
  auto& c = controllers_.at(static_cast<size_t>(cluster));
  if (c == nullptr) return absl::FailedPreconditionError("no controller");
  absl::Status s = c->Signal(sig);
  if (!s.ok()) return s;
  if (sig == SIGTERM) {
    auto code = c->Wait(absl::Seconds(30));
    if (!code.ok()) return code.status();
    if (*code != 0) {
      return absl::InternalError(
          absl::StrCat("controller exited with ", *code, " on SIGTERM"));
    }
  } else {
    (void)c->Wait(absl::Seconds(10));
  }
  return absl::OkStatus();
}

absl::StatusOr<Sidecar*> Fleet::AddSidecar(int cluster) {
  auto sc = std::make_unique<Sidecar>();
  sc->cluster = cluster;
  int n = 0;
  for (auto& s : sidecars_) n += s->cluster == cluster;
  sc->name = absl::StrCat("c", cluster, "-s", n);
  sidecars_.push_back(std::move(sc));
  Sidecar* s = sidecars_.back().get();
  absl::Status st = RestartSidecar(s);
  if (!st.ok()) return st;
  return s;
}

absl::Status Fleet::RestartSidecar(Sidecar* s) {
  auto port = testbed::FreeLoopbackPort();
  if (!port.ok()) return port.status();
  s->address = absl::StrCat("127.0.0.1:", *port);
  std::string log =
      absl::StrCat(LogDir(), "/sidecar-", s->name, "-", restarts_++, ".log");
  auto proc = testbed::Subprocess::Start(
      {options_.sidecar_binary, "--kubeconfig",
       SidecarKubeconfig(*testbed_, s->cluster), "--listen", s->address,
       "--namespace", options_.lock_namespace, "--identity", s->name,
       "--lease-duration", absl::StrCat(options_.lease_duration_seconds, "s")},
      log);
  if (!proc.ok()) return proc.status();
  s->process = std::make_unique<testbed::Subprocess>(std::move(*proc));
  s->channel =
      grpc::CreateChannel(s->address, grpc::InsecureChannelCredentials());
  if (!s->channel->WaitForConnected(std::chrono::system_clock::now() +
                                    std::chrono::seconds(20))) {
    return absl::DeadlineExceededError(
        absl::StrCat("sidecar ", s->name, " did not listen on ", s->address,
                     " within 20s; log:\n", s->process->Log()));
  }
  absl::MutexLock l(&s->mu);
  s->stub = mcl::v1::Election::NewStub(s->channel);
  s->alive_ = true;
  return absl::OkStatus();
}

absl::Status Fleet::SignalSidecar(Sidecar* s, int sig) {
  {
    absl::MutexLock l(&s->mu);
    s->alive_ = false;
  }
  if (sig == SIGKILL) {
    for (auto& app : apps_) {
      if (app->sidecar() == s) app->Die();
    }
  }
  absl::Status st = s->process->Signal(sig);
  if (!st.ok()) return st;
  auto code = s->process->Wait(absl::Seconds(30));
  return code.ok() ? absl::OkStatus() : code.status();
}

App* Fleet::AddApp(const std::string& identity, Sidecar* sidecar) {
  apps_.push_back(std::make_unique<App>(identity, sidecar, &history_));
  return apps_.back().get();
}

Observer* Fleet::AddObserver(const std::string& name, Sidecar* sidecar,
                             const std::string& lock) {
  observers_.push_back(
      std::make_unique<Observer>(name, sidecar, &history_, lock));
  return observers_.back().get();
}

std::vector<App*> Fleet::apps() {
  std::vector<App*> out;
  for (auto& a : apps_) out.push_back(a.get());
  return out;
}

App* Fleet::AppWithIdentity(const std::string& identity) {
  for (auto& a : apps_) {
    if (a->identity() == identity) return a.get();
  }
  return nullptr;
}

App* Fleet::Leader() { return AppWithIdentity(history_.CurrentLeader()); }

std::optional<absl::Duration> Fleet::NewLeaderAfter(const std::string& old,
                                                    absl::Duration start,
                                                    absl::Duration timeout) {
  std::optional<absl::Duration> after;
  history_.WaitUntil(
      [&](const std::vector<Interval>& intervals) {
        for (const Interval& i : intervals) {
          if (i.app != old && i.start > start) {
            after = i.start - start;
            return true;
          }
        }
        return false;
      },
      timeout);
  return after;
}

App* Fleet::WaitForLeader(const std::string& not_identity,
                          absl::Duration timeout) {
  App* leader = nullptr;
  history_.WaitUntil(
      [&](const std::vector<Interval>& intervals) {
        leader = nullptr;
        for (const Interval& i : intervals) {
          if (i.end == absl::InfiniteDuration() && i.app != not_identity)
            leader = AppWithIdentity(i.app);
        }
        return leader != nullptr;
      },
      timeout);
  return leader;
}

absl::Status Fleet::KillCluster(int cluster) {
  for (auto& s : sidecars_) {
    if (s->cluster == cluster && s->process && s->process->running()) {
      absl::Status st = SignalSidecar(s.get(), SIGKILL);
      if (!st.ok()) return st;
    }
  }
  return StopController(cluster, SIGKILL);
}

absl::Status Fleet::ReviveCluster(int cluster) {
  absl::Status st = StartController(cluster);
  if (!st.ok()) return st;
  for (auto& s : sidecars_) {
    if (s->cluster == cluster) {
      st = RestartSidecar(s.get());
      if (!st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

}  // namespace mcl::e2e
