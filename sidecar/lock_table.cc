#include "sidecar/lock_table.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/kube/errors.h"
#include "common/log.h"
#include "sidecar/kube_view.h"

namespace mcl::sidecar {

namespace {

constexpr char kShuttingDown[] = "the sidecar is shutting down";

}  // namespace

absl::Status LockTable::ShuttingDown() {
  return absl::UnavailableError(kShuttingDown);
}

LockTable::LockTable(Options options, Hooks hooks)
    : options_(std::move(options)), hooks_(std::move(hooks)) {}

LockTable::Lock& LockTable::EnsureLock(const LockKey& key, LeaseWatch* cache) {
  auto it = locks_.find(key);
  if (it != locks_.end()) return it->second;
  Lock& lock = locks_[key];
  lock.key = key;
  auto r = retired_metrics_.find(key.str());
  if (r != retired_metrics_.end()) {
    lock.metrics = r->second;
    retired_metrics_.erase(r);
  }
  // Read under mu_: whatever version the cache returns, any newer one reaches
  // ApplyObject after this (and older ones are ignored by Apply).
  std::optional<kube::MultiClusterLease> obj = cache->Get(key.name);
  std::optional<LeaseView> view;
  if (obj) {
    auto v = ToLeaseView(*obj);
    if (v.ok()) view = *v;
  }
  if (view) {
    Apply(lock, *view, &*obj);
  } else {
    LeaseView absent;
    absent.exists = false;
    Apply(lock, absent, nullptr);
  }
  return lock;
}

void LockTable::MaybeDropLock(const LockKey& key) {
  auto it = locks_.find(key);
  if (it == locks_.end()) return;
  if (!it->second.campaigns.empty() || !it->second.observers.empty()) return;
  it->second.metrics.is_leader = false;
  retired_metrics_[key.str()] = it->second.metrics;
  locks_.erase(it);
}

void LockTable::Apply(Lock& lock, const LeaseView& view,
                      const kube::MultiClusterLease* obj) {
  if (lock.view) {
    const LeaseView& have = *lock.view;
    bool newer = view.exists ? view.resource_version > have.resource_version
                             : have.exists && view.resource_version >=
                                                  have.resource_version;
    if (!newer) return;
  }
  lock.view = view;
  if (obj != nullptr) {
    lock.obj = *obj;
  } else {
    lock.obj.reset();
  }
  // The write invariant: every campaign applies this version (and its events
  // go out) before the writer can base a write on it — both happen under mu_,
  // and NextWrite writes only from lock.obj.
  std::vector<Campaign*> duplicates;
  for (auto& [id, c] : lock.campaigns) {
    if (c->ended) continue;
    c->leadership->ObserveObject(view);
    c->candidacy->Observe(view);
    Flush(lock, *c);
    if (c->candidacy->duplicate()) duplicates.push_back(c.get());
  }
  NotifyObservers(lock);
  if (view.exists && !view.heartbeat.empty())
    SetHeartbeat(lock, view.heartbeat);
  hooks_.write_due();
  // Last: removing the last campaign may drop `lock`.
  for (Campaign* c : duplicates) {
    FailCampaign(
        lock, *c,
        absl::AlreadyExistsError(absl::StrCat(
            "another candidacy of identity \"", c->identity,
            "\" is renewing lock ", lock.key.str(),
            " in this cluster (spec.holderInstance ",
            c->candidacy->other_instance(), "; this campaign's is ",
            c->instance,
            "): one identity must not campaign twice for a lock. Give each "
            "candidate its own identity (the default, <pod name>_<pod uid>, "
            "is unique per pod), or stop the other one")));
  }
}

void LockTable::ApplyObjectLocked(const kube::MultiClusterLease& obj) {
  LockKey key{obj.metadata.namespace_, obj.metadata.name};
  auto it = locks_.find(key);
  if (it == locks_.end()) return;  // nobody here uses this lock
  auto v = ToLeaseView(obj);
  if (!v.ok()) {
    LogWarn(
        "ignoring a MultiClusterLease version",
        {{"lock", key.str()}, {"error", std::string(v.status().message())}});
    return;
  }
  if (!v->refused_confirmation.empty()) {
    LogWarn(
        "a MultiClusterLease status whose confirmation cannot be "
        "believed; it confirms nothing",
        {{"lock", key.str()}, {"error", v->refused_confirmation}});
  }
  Apply(it->second, *v, &obj);
}

void LockTable::ApplyObject(const kube::MultiClusterLease& obj) {
  absl::MutexLock l(&mu_);
  ApplyObjectLocked(obj);
}

void LockTable::ApplyDeletion(const std::string& ns,
                              const kube::MultiClusterLease& obj) {
  absl::MutexLock l(&mu_);
  auto it = locks_.find(LockKey{ns, obj.metadata.name});
  if (it == locks_.end()) return;
  LeaseView gone;
  gone.exists = false;
  auto rv = kube::ParseResourceVersion(obj.metadata.resource_version);
  gone.resource_version =
      rv.ok() ? *rv : (it->second.view ? it->second.view->resource_version : 0);
  Apply(it->second, gone, nullptr);
}

void LockTable::SetHeartbeat(Lock& lock, const std::string& hb) {
  if (lock.heartbeat == hb) return;
  lock.heartbeat = hb;
  std::optional<Confirmation> latest = hooks_.heartbeat(hb, lock.key.ns);
  if (!latest) return;
  for (auto& [id, c] : lock.campaigns) {
    if (c->ended) continue;
    c->leadership->ObserveConfirmation(*latest);
    Flush(lock, *c);
  }
}

void LockTable::ApplyConfirmation(const std::string& heartbeat,
                                  const Confirmation& c) {
  absl::MutexLock l(&mu_);
  for (auto& [k, lock] : locks_) {
    if (lock.heartbeat != heartbeat) continue;
    for (auto& [id, camp] : lock.campaigns) {
      if (camp->ended) continue;
      camp->leadership->ObserveConfirmation(c);
      Flush(lock, *camp);
    }
  }
}

void LockTable::Flush(Lock& lock, Campaign& c) {
  std::vector<LeadershipEvent> events = c.leadership->TakeEvents();
  if (events.empty()) return;
  absl::Time now = options_.clock->WallNow();
  for (const LeadershipEvent& e : events) {
    if (e.renewal) {
      // One per confirmation while leading (about every TTL/3): not a
      // transition, and too frequent to log.
      c.sink->Send(StreamEvent{lock.key, e, now});
      continue;
    }
    if (e.state == LeaderState::kLeader) ++lock.metrics.transitions;
    LogInfo("leadership", {{"lock", lock.key.str()},
                           {"identity", c.identity},
                           {"state", LeaderStateName(e.state)},
                           {"token", absl::StrCat(e.grant.token)},
                           {"reason", e.reason}});
    c.sink->Send(StreamEvent{lock.key, e, now});
  }
  UpdateIsLeader(lock);
  ArmDeadline(c);
}

void LockTable::ArmDeadline(Campaign& c) {
  if (std::optional<absl::Duration> d = c.leadership->deadline())
    hooks_.deadline(*d);
}

void LockTable::UpdateIsLeader(Lock& lock) {
  bool leading = false;
  for (auto& [id, other] : lock.campaigns)
    leading = leading || other->leadership->leading();
  lock.metrics.is_leader = leading;
}

void LockTable::NotifyObservers(Lock& lock) {
  Grant g;
  if (lock.view && lock.view->exists) g = lock.view->grant;
  if (g.SameAs(lock.observed) && g.empty() == lock.observed.empty()) return;
  lock.observed = g;
  LeadershipEvent e;
  e.state = g.empty() ? LeaderState::kNoLeader : LeaderState::kFollower;
  e.grant = g;
  StreamEvent se{lock.key, e, options_.clock->WallNow()};
  for (auto& [id, sink] : lock.observers) sink->Send(se);
}

LockTable::Campaign* LockTable::FindCampaign(uint64_t id) {
  auto k = campaign_locks_.find(id);
  if (k == campaign_locks_.end()) return nullptr;
  auto l = locks_.find(k->second);
  if (l == locks_.end()) return nullptr;
  auto c = l->second.campaigns.find(id);
  return c == l->second.campaigns.end() ? nullptr : c->second.get();
}

void LockTable::EndCampaignLocked(Campaign& c, const std::string& reason,
                                  std::optional<absl::Status> finish_with) {
  if (c.ended) {
    // The first reason to end the stream wins: a Resign before the shutdown
    // still ends it with OK.
    if (!c.finish_with) c.finish_with = std::move(finish_with);
    return;
  }
  auto it = locks_.find(c.key);
  c.leadership->Tick();  // a lapse that already happened is not "leading"
  c.was_leader = c.leadership->leading();
  c.leadership->Close(reason);
  if (it != locks_.end()) Flush(it->second, c);
  c.ended = true;
  c.finish_with = std::move(finish_with);
  c.retry_at = -absl::InfiniteDuration();
  c.backoff.Reset();
  // Releasing is worth retrying only while the spec could still make the
  // controller wait for us.
  c.release_until = options_.clock->Monotonic() + c.lease_duration;
  LogInfo(
      "campaign ending",
      {{"lock", c.key.str()}, {"identity", c.identity}, {"reason", reason}});
  hooks_.write_due();
}

void LockTable::CompleteRelease(Lock& lock, Campaign& c,
                                absl::StatusOr<bool> result) {
  for (auto& w : c.waiters) deferred_.push_back([w, result] { w(result); });
  c.waiters.clear();
  if (!result.ok() && options_.clock->Monotonic() < c.release_until) {
    // The waiters have their answer; keep trying to release in the
    // background.
    return;
  }
  if (c.finish_with) c.sink->Finish(*c.finish_with);
  RemoveCampaign(lock, c);
}

void LockTable::FailCampaign(Lock& lock, Campaign& c,
                             const absl::Status& error) {
  c.leadership->Close(std::string(error.message()));
  Flush(lock, c);
  c.sink->Finish(error);
  LogWarn("campaign failed", {{"lock", lock.key.str()},
                              {"identity", c.identity},
                              {"error", std::string(error.message())}});
  RemoveCampaign(lock, c);
}

void LockTable::RemoveCampaign(Lock& lock, Campaign& c) {
  LogInfo("campaign ended",
          {{"lock", lock.key.str()}, {"identity", c.identity}});
  const uint64_t id = c.id;
  const LockKey key = lock.key;
  campaign_locks_.erase(id);
  lock.campaigns.erase(id);  // destroys c
  UpdateIsLeader(lock);
  MaybeDropLock(key);
  hooks_.campaign_removed();
}

std::vector<std::function<void()>> LockTable::TakeDeferred() {
  absl::MutexLock l(&mu_);
  std::vector<std::function<void()>> out;
  out.swap(deferred_);
  return out;
}

absl::Duration LockTable::TickDeadlines() {
  absl::MutexLock l(&mu_);
  const absl::Duration now = options_.clock->Monotonic();
  absl::Duration next = absl::InfiniteDuration();
  for (auto& [k, lock] : locks_) {
    for (auto& [id, c] : lock.campaigns) {
      if (c->ended) continue;
      std::optional<absl::Duration> d = c->leadership->deadline();
      if (!d) continue;
      if (*d <= now) {
        c->leadership->Tick();
        Flush(lock, *c);
        d = c->leadership->deadline();  // none once LOST
        if (!d) continue;
      }
      next = std::min(next, *d);
    }
  }
  return next;
}

void LockTable::BeginShutdown(absl::Duration release_until) {
  absl::MutexLock l(&mu_);
  shut_down_ = true;
  for (auto& [k, lock] : locks_) {
    for (auto& [id, c] : lock.campaigns) {
      EndCampaignLocked(*c, kShuttingDown, ShuttingDown());
      c->release_until = std::min(c->release_until, release_until);
    }
  }
}

size_t LockTable::campaigns() {
  absl::MutexLock l(&mu_);
  return campaign_locks_.size();
}

void LockTable::FinishStreams() {
  absl::MutexLock l(&mu_);
  for (auto& [k, lock] : locks_) {
    // Campaigns whose release did not finish within the grace.
    for (auto& [id, c] : lock.campaigns) c->sink->Finish(ShuttingDown());
    for (auto& [id, sink] : lock.observers) sink->Finish(ShuttingDown());
  }
}

std::map<std::string, LockMetrics> LockTable::Metrics() {
  absl::MutexLock l(&mu_);
  std::map<std::string, LockMetrics> out = retired_metrics_;
  for (auto& [k, lock] : locks_) {
    LockMetrics m = lock.metrics;
    m.campaigns = 0;
    for (const auto& [id, c] : lock.campaigns) {
      if (!c->ended) m.campaigns++;
    }
    out[k.str()] = m;
  }
  return out;
}

}  // namespace mcl::sidecar
