#include "sidecar/subscriptions.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "sidecar/kube_view.h"

namespace mcl::sidecar {

Subscriptions::Subscriptions(WatchFactory* factory, LockTable* table)
    : factory_(factory), table_(table) {}

Subscriptions::~Subscriptions() { Stop(); }

LeaseWatch* Subscriptions::Leases(const std::string& ns) {
  absl::MutexLock l(&mu_);
  if (stopped_) return nullptr;
  Namespace& n = namespaces_[ns];
  if (!n.watch) {
    LeaseWatchCallbacks cb;
    cb.on_upsert = [this, ns](const kube::MultiClusterLease& o) {
      SetFailing(ns, absl::OkStatus());
      table_->ApplyObject(o);
    };
    cb.on_delete = [this, ns](const kube::MultiClusterLease& o) {
      SetFailing(ns, absl::OkStatus());
      table_->ApplyDeletion(ns, o);
    };
    cb.on_error = [this, ns](const absl::Status& s) {
      SetFailing(ns, s);
      LogWarn("MultiClusterLease watch failed; retrying",
              {{"namespace", ns}, {"error", std::string(s.message())}});
    };
    n.watch = factory_->WatchLeases(ns, std::move(cb));
    LogInfo("watching MultiClusterLeases", {{"namespace", ns}});
  }
  return n.watch.get();
}

void Subscriptions::SetFailing(const std::string& ns,
                               const absl::Status& failing) {
  absl::MutexLock l(&mu_);
  auto it = namespaces_.find(ns);
  if (it != namespaces_.end()) it->second.failing = failing;
}

bool Subscriptions::Failing(const std::string& ns) {
  absl::MutexLock l(&mu_);
  auto it = namespaces_.find(ns);
  return it != namespaces_.end() && !it->second.failing.ok();
}

absl::Status Subscriptions::Status() {
  absl::MutexLock l(&mu_);
  for (auto& [ns, n] : namespaces_) {
    if (!n.failing.ok()) {
      return absl::Status(n.failing.code(), absl::StrCat("namespace ", ns, ": ",
                                                         n.failing.message()));
    }
  }
  return absl::OkStatus();
}

std::optional<Confirmation> Subscriptions::Heartbeat(
    const std::string& heartbeat, const std::string& default_ns) {
  absl::MutexLock l(&mu_);
  auto it = heartbeats_.find(heartbeat);
  if (it != heartbeats_.end()) return it->second.latest;
  if (stopped_) return std::nullopt;
  std::vector<std::string> parts =
      absl::StrSplit(heartbeat, absl::MaxSplits('/', 1));
  std::string ns = parts.size() == 2 ? parts[0] : default_ns;
  std::string name = parts.size() == 2 ? parts[1] : parts[0];
  HeartbeatCallbacks cb;
  cb.on_upsert = [this, heartbeat](const kube::Lease& lease) {
    OnHeartbeat(heartbeat, lease);
  };
  // Starting a watch only starts its thread: safe under the table's mutex.
  heartbeats_[heartbeat].watch =
      factory_->WatchHeartbeat(ns, name, std::move(cb));
  LogInfo("watching heartbeat Lease", {{"lease", heartbeat}});
  return std::nullopt;
}

void Subscriptions::OnHeartbeat(const std::string& heartbeat,
                                const kube::Lease& lease) {
  absl::StatusOr<std::optional<Confirmation>> c = ToConfirmation(lease);
  if (!c.ok()) {
    // Confirms nothing: the confirmations already counted keep their own
    // bounds, and leadership lapses at them unless a good heartbeat follows.
    std::string refused(c.status().message());
    bool log = false;
    {
      absl::MutexLock l(&mu_);
      auto it = heartbeats_.find(heartbeat);
      if (it != heartbeats_.end() && it->second.refused != refused) {
        it->second.refused = refused;
        log = true;
      }
    }
    if (log) {
      LogWarn(
          "ignoring a heartbeat that cannot be believed (it confirms "
          "nothing); is the controller's heartbeat Lease written by "
          "something else?",
          {{"lease", heartbeat}, {"error", refused}});
    }
    return;
  }
  if (!c->has_value()) return;
  {
    absl::MutexLock l(&mu_);
    auto it = heartbeats_.find(heartbeat);
    if (it != heartbeats_.end()) {
      it->second.latest = *c;
      it->second.refused.clear();
    }
  }
  table_->ApplyConfirmation(heartbeat, **c);
}

void Subscriptions::Stop() {
  std::map<std::string, Namespace> namespaces;
  std::map<std::string, HeartbeatSub> heartbeats;
  {
    absl::MutexLock l(&mu_);
    stopped_ = true;
    namespaces.swap(namespaces_);
    heartbeats.swap(heartbeats_);
  }
  // Destroyed here, outside mu_: each joins its informer thread, whose
  // callbacks take mu_.
}

}  // namespace mcl::sidecar
