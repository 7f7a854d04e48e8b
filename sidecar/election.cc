#include "sidecar/election.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "sidecar/kube_view.h"

namespace mcl::sidecar {

Election::Election(ElectionOptions options, std::unique_ptr<LeaseStore> store,
                   std::unique_ptr<WatchFactory> watches)
    : options_(std::move(options)),
      store_(std::move(store)),
      watches_(std::move(watches)),
      campaign_removed_(options_.clock),
      table_(LockTable::Options{options_.cluster, options_.clock},
             LockTable::Hooks{
                 [this] { writer_.Kick(); },
                 [this](absl::Duration deadline) { timer_.Arm(deadline); },
                 [this](const std::string& hb, const std::string& ns) {
                   return subscriptions_.Heartbeat(hb, ns);
                 },
                 [this] { campaign_removed_.Notify(); },
             }),
      subscriptions_(watches_.get(), &table_),
      timer_(options_.clock, [this] { return table_.TickDeadlines(); }),
      writer_(&table_, store_.get(), options_.clock) {}

Election::~Election() {
  // The watches first: their callbacks reach the writer and the timer through
  // the table's hooks (see the members' order).
  subscriptions_.Stop();
}

LockKey Election::Key(const std::string& ns, const std::string& name) const {
  return LockKey{ns.empty() ? options_.default_namespace : ns, name};
}

std::string Election::Identity(const std::string& requested) const {
  return requested.empty() ? options_.default_identity : requested;
}

absl::StatusOr<LeaseWatch*> Election::SyncedWatch(
    const LockKey& key,
    std::optional<std::optional<kube::MultiClusterLease>>* probe) {
  LeaseWatch* w = subscriptions_.Leases(key.ns);
  if (w == nullptr)
    return absl::UnavailableError("the sidecar is shutting down");
  if (!w->WaitForSync(options_.sync_timeout)) {
    absl::Status e = w->LastError();
    return absl::UnavailableError(absl::StrCat(
        "the sidecar has not synced with its kube-apiserver (namespace ",
        key.ns, ") within ", absl::FormatDuration(options_.sync_timeout),
        e.ok() ? "" : ": ", e.message(), "; retry with backoff"));
  }
  if (!subscriptions_.Failing(key.ns)) return w;
  // The watch failed lately: ask the apiserver directly whether it is
  // reachable.
  auto r = store_->Get(key.ns, key.name);
  if (!r.ok() && !absl::IsNotFound(r.status())) {
    return absl::UnavailableError(absl::StrCat(
        "the kube-apiserver is unreachable: ", r.status().message(),
        "; retry with backoff"));
  }
  if (probe != nullptr) {
    if (r.ok()) {
      probe->emplace(*r);
    } else {
      probe->emplace(std::nullopt);
    }
  }
  return w;
}

absl::StatusOr<uint64_t> Election::StartCampaign(
    const LockKey& key, const std::string& identity,
    absl::Duration lease_duration, std::shared_ptr<EventSink> sink) {
  auto w = SyncedWatch(key);
  if (!w.ok()) return w.status();
  return table_.StartCampaign(key, identity, lease_duration, std::move(sink),
                              *w);
}

void Election::EndCampaign(uint64_t id, const std::string& reason) {
  writer_.EndCampaign(id, reason);
}

void Election::Resign(const LockKey& key, const std::string& identity,
                      std::function<void(absl::StatusOr<bool>)> done) {
  auto shared = std::make_shared<std::function<void(absl::StatusOr<bool>)>>(
      std::move(done));
  if (table_.Resign(key, identity,
                    [shared](absl::StatusOr<bool> r) { (*shared)(r); })) {
    return;
  }
  (*shared)(absl::FailedPreconditionError(absl::StrCat(
      "no Campaign for lock ", key.str(),
      identity.empty() ? "" : absl::StrCat(" with identity \"", identity, "\""),
      " is active on this sidecar; Resign applies only to a lock this sidecar "
      "campaigns for")));
}

absl::StatusOr<uint64_t> Election::StartObserve(
    const LockKey& key, std::shared_ptr<EventSink> sink) {
  auto w = SyncedWatch(key);
  if (!w.ok() && !absl::IsUnavailable(w.status())) return w.status();
  if (!w.ok()) {
    // Observe stays usable while the apiserver is unreachable, as long as the
    // cache was filled once.
    LeaseWatch* cached = subscriptions_.Leases(key.ns);
    if (cached == nullptr || !cached->HasSynced()) return w.status();
    w = cached;
  }
  return table_.StartObserve(key, std::move(sink), *w);
}

void Election::EndObserve(uint64_t id) { writer_.EndObserve(id); }

absl::StatusOr<Grant> Election::Leader(const LockKey& key) {
  std::optional<std::optional<kube::MultiClusterLease>> probe;
  auto w = SyncedWatch(key, &probe);
  if (!w.ok()) return w.status();
  Grant g;
  if (probe) {
    // The watch may lag; the direct read just made is the freshest answer.
    if (*probe) {
      auto v = ToLeaseView(**probe);
      if (v.ok()) g = v->grant;
    }
  } else if (std::optional<Grant> cached = table_.CachedGrant(key)) {
    g = *cached;
  } else if (auto obj = (*w)->Get(key.name)) {
    auto v = ToLeaseView(*obj);
    if (v.ok()) g = v->grant;
  }
  if (g.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no candidate currently leads lock ", key.str()));
  }
  return g;
}

void Election::Shutdown(absl::Duration grace) {
  const absl::Duration until = options_.clock->Monotonic() + grace;
  table_.BeginShutdown(until);
  while (table_.campaigns() > 0 && options_.clock->Monotonic() < until) {
    campaign_removed_.WaitUntil(until);
  }
  table_.FinishStreams();
  LogInfo("shut down",
          {{"unreleased_campaigns", absl::StrCat(table_.campaigns())}});
}

}  // namespace mcl::sidecar
