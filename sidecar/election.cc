#include "sidecar/election.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/kube/errors.h"
#include "common/log.h"
#include "sidecar/kube_view.h"

namespace mcl::sidecar {
namespace {

// Waits longer than this are cut so that a wrong deadline can never park the
// worker for good.
constexpr absl::Duration kMaxIdle = absl::Minutes(1);

}  // namespace

Election::Election(ElectionOptions options,
                   kube::MultiClusterLeaseClient client,
                   std::unique_ptr<WatchFactory> watches)
    : options_(std::move(options)),
      client_(client),
      watches_(std::move(watches)) {
  worker_ = std::thread([this] { WorkerLoop(); });
}

Election::~Election() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  Kick();
  worker_.join();
  // Watches are stopped outside mu_: stopping joins the informer thread, whose
  // callbacks take mu_.
  std::map<std::string, Namespace> namespaces;
  std::map<std::string, Heartbeat> heartbeats;
  {
    absl::MutexLock l(&mu_);
    namespaces.swap(namespaces_);
    heartbeats.swap(heartbeats_);
  }
}

void Election::Kick() {
  absl::MutexLock l(&kick_mu_);
  kicked_ = true;
  kick_cv_.Signal();
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
  const std::string& ns = key.ns;
  LeaseWatch* w = nullptr;
  {
    absl::MutexLock l(&mu_);
    if (shut_down_)
      return absl::UnavailableError("the sidecar is shutting down");
    Namespace& n = namespaces_[ns];
    if (!n.watch) {
      LeaseWatchCallbacks cb;
      cb.on_upsert = [this, ns](const kube::MultiClusterLease& o) {
        OnLeaseUpsert(ns, o);
      };
      cb.on_delete = [this, ns](const kube::MultiClusterLease& o) {
        OnLeaseDelete(ns, o);
      };
      cb.on_error = [this, ns](const absl::Status& s) { OnLeaseError(ns, s); };
      n.watch = watches_->WatchLeases(ns, std::move(cb));
      LogInfo("watching MultiClusterLeases", {{"namespace", ns}});
    }
    w = n.watch.get();
  }
  if (!w->WaitForSync(options_.sync_timeout)) {
    absl::Status e = w->LastError();
    return absl::UnavailableError(absl::StrCat(
        "the sidecar has not synced with its kube-apiserver (namespace ", ns,
        ") within ", absl::FormatDuration(options_.sync_timeout),
        e.ok() ? "" : ": ", e.message(), "; retry with backoff"));
  }
  bool failing;
  {
    absl::MutexLock l(&mu_);
    failing = namespaces_[ns].failing;
  }
  if (!failing) return w;
  // The watch failed lately: ask the apiserver directly whether it is
  // reachable.
  auto r = client_.Get(ns, key.name);
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

Election::Lock& Election::EnsureLock(const LockKey& key, LeaseWatch* watch) {
  auto it = locks_.find(key);
  if (it != locks_.end()) return it->second;
  Lock& lock = locks_[key];
  lock.key = key;
  auto r = retired_metrics_.find(key.str());
  if (r != retired_metrics_.end()) {
    lock.metrics = r->second;
    retired_metrics_.erase(r);
  }
  // The informer's cache is updated before its handler runs, so whatever
  // version Get returns, any newer one reaches OnLeaseUpsert after this (and
  // older ones are ignored by Apply).
  std::optional<kube::MultiClusterLease> obj = watch->Get(key.name);
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

void Election::MaybeDropLock(const LockKey& key) {
  auto it = locks_.find(key);
  if (it == locks_.end()) return;
  if (!it->second.campaigns.empty() || !it->second.observers.empty()) return;
  it->second.metrics.is_leader = false;
  retired_metrics_[key.str()] = it->second.metrics;
  locks_.erase(it);
}

void Election::Apply(Lock& lock, const LeaseView& view,
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
  // The write invariant: every campaign applies this version (and its events go
  // out) before the worker can base a write on it — both happen under mu_, and
  // the worker writes only from lock.obj.
  for (auto& [id, c] : lock.campaigns) {
    if (c->ended) continue;
    c->leadership->ObserveObject(view);
    c->candidacy->Observe(view);
    Flush(lock, *c);
  }
  NotifyObservers(lock);
  if (view.exists && !view.heartbeat.empty())
    SetHeartbeat(lock, view.heartbeat);
  Kick();
}

void Election::ApplyObject(const kube::MultiClusterLease& obj) {
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
  Apply(it->second, *v, &obj);
}

void Election::SetHeartbeat(Lock& lock, const std::string& hb) {
  if (lock.heartbeat == hb) return;
  lock.heartbeat = hb;
  auto it = heartbeats_.find(hb);
  if (it == heartbeats_.end()) {
    std::vector<std::string> parts =
        absl::StrSplit(hb, absl::MaxSplits('/', 1));
    std::string ns = parts.size() == 2 ? parts[0] : lock.key.ns;
    std::string name = parts.size() == 2 ? parts[1] : parts[0];
    HeartbeatCallbacks cb;
    cb.on_upsert = [this, hb](const kube::Lease& l) { OnHeartbeat(hb, l); };
    Heartbeat& h = heartbeats_[hb];
    // Heartbeat watches are few (one per controller in the cluster) and kept
    // until exit.
    h.watch = watches_->WatchHeartbeat(ns, name, std::move(cb));
    LogInfo("watching heartbeat Lease", {{"lease", hb}});
    return;
  }
  if (it->second.latest) {
    for (auto& [id, c] : lock.campaigns) {
      if (c->ended) continue;
      c->leadership->ObserveConfirmation(*it->second.latest);
      Flush(lock, *c);
    }
  }
}

void Election::Flush(Lock& lock, Campaign& c) {
  std::vector<LeadershipEvent> events = c.leadership->TakeEvents();
  if (events.empty()) return;
  absl::Time now = options_.clock->WallNow();
  for (const LeadershipEvent& e : events) {
    if (e.state == LeaderState::kLeader) ++lock.metrics.transitions;
    LogInfo("leadership", {{"lock", lock.key.str()},
                           {"identity", c.identity},
                           {"state", LeaderStateName(e.state)},
                           {"token", absl::StrCat(e.grant.token)},
                           {"reason", e.reason}});
    c.sink->Send(StreamEvent{lock.key, e, now});
  }
  bool leading = false;
  for (auto& [id, other] : lock.campaigns)
    leading = leading || other->leadership->leading();
  lock.metrics.is_leader = leading;
  Kick();  // the deadline may have moved
}

void Election::NotifyObservers(Lock& lock) {
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

void Election::OnLeaseUpsert(const std::string& ns,
                             const kube::MultiClusterLease& obj) {
  absl::MutexLock l(&mu_);
  namespaces_[ns].failing = false;
  ApplyObject(obj);
}

void Election::OnLeaseDelete(const std::string& ns,
                             const kube::MultiClusterLease& obj) {
  absl::MutexLock l(&mu_);
  namespaces_[ns].failing = false;
  auto it = locks_.find(LockKey{ns, obj.metadata.name});
  if (it == locks_.end()) return;
  LeaseView gone;
  gone.exists = false;
  auto rv = kube::ParseResourceVersion(obj.metadata.resource_version);
  gone.resource_version =
      rv.ok() ? *rv : (it->second.view ? it->second.view->resource_version : 0);
  Apply(it->second, gone, nullptr);
}

void Election::OnLeaseError(const std::string& ns, const absl::Status& s) {
  {
    absl::MutexLock l(&mu_);
    namespaces_[ns].failing = true;
  }
  LogWarn("MultiClusterLease watch failed; retrying",
          {{"namespace", ns}, {"error", std::string(s.message())}});
}

void Election::OnHeartbeat(const std::string& key, const kube::Lease& lease) {
  std::optional<Confirmation> c = ToConfirmation(lease);
  if (!c) return;
  absl::MutexLock l(&mu_);
  auto h = heartbeats_.find(key);
  if (h != heartbeats_.end()) h->second.latest = c;
  for (auto& [k, lock] : locks_) {
    if (lock.heartbeat != key) continue;
    for (auto& [id, camp] : lock.campaigns) {
      if (camp->ended) continue;
      camp->leadership->ObserveConfirmation(*c);
      Flush(lock, *camp);
    }
  }
}

absl::StatusOr<uint64_t> Election::StartCampaign(
    const LockKey& key, const std::string& identity,
    absl::Duration lease_duration, std::shared_ptr<EventSink> sink) {
  auto w = SyncedWatch(key);
  if (!w.ok()) return w.status();
  absl::MutexLock l(&mu_);
  if (shut_down_) return absl::UnavailableError("the sidecar is shutting down");
  Lock& lock = EnsureLock(key, *w);
  for (auto& [id, c] : lock.campaigns) {
    if (c->identity != identity) continue;
    if (!c->ended) {
      return absl::AlreadyExistsError(absl::StrCat(
          "identity \"", identity, "\" already campaigns for lock ", key.str(),
          " on this sidecar; cancel that Campaign stream (or call Resign) "
          "before starting another, "
          "or campaign with a different identity"));
    }
    return absl::UnavailableError(
        absl::StrCat("the previous campaign of \"", identity, "\" for lock ",
                     key.str(), " is still resigning; retry in a moment"));
  }
  auto c = std::make_unique<Campaign>();
  c->id = next_id_++;
  c->key = key;
  c->identity = identity;
  c->lease_duration = lease_duration;
  c->leadership = std::make_unique<Leadership>(
      Leadership::Options{identity, options_.cluster}, options_.clock);
  c->candidacy =
      std::make_unique<Candidacy>(identity, lease_duration, options_.clock);
  c->sink = std::move(sink);
  if (lock.view) {
    c->leadership->ObserveObject(*lock.view);
    c->candidacy->Observe(*lock.view);
  }
  auto h = heartbeats_.find(lock.heartbeat);
  if (h != heartbeats_.end() && h->second.latest) {
    c->leadership->ObserveConfirmation(*h->second.latest);
  }
  c->leadership
      ->TakeEvents();  // the first event states the current view instead
  c->sink->Send(
      StreamEvent{key, c->leadership->Current(), options_.clock->WallNow()});
  uint64_t id = c->id;
  LogInfo("campaign started",
          {{"lock", key.str()},
           {"identity", identity},
           {"lease_duration", absl::FormatDuration(lease_duration)}});
  campaign_locks_[id] = key;
  lock.campaigns[id] = std::move(c);
  Kick();
  return id;
}

void Election::EndCampaign(uint64_t id, const std::string& reason) {
  absl::MutexLock l(&kick_mu_);
  pending_campaign_ends_.emplace_back(id, reason);
  kicked_ = true;
  kick_cv_.Signal();
}

void Election::EndObserve(uint64_t id) {
  absl::MutexLock l(&kick_mu_);
  pending_observer_ends_.push_back(id);
  kicked_ = true;
  kick_cv_.Signal();
}

Election::Campaign* Election::FindCampaign(uint64_t id) {
  auto k = campaign_locks_.find(id);
  if (k == campaign_locks_.end()) return nullptr;
  auto l = locks_.find(k->second);
  if (l == locks_.end()) return nullptr;
  auto c = l->second.campaigns.find(id);
  return c == l->second.campaigns.end() ? nullptr : c->second.get();
}

void Election::EndCampaignLocked(Campaign& c, const std::string& reason,
                                 bool finish_stream) {
  if (c.ended) {
    c.finish_stream = c.finish_stream || finish_stream;
    return;
  }
  auto it = locks_.find(c.key);
  c.leadership->Tick();  // a lapse that already happened is not "leading"
  c.was_leader = c.leadership->leading();
  c.leadership->Close(reason);
  if (it != locks_.end()) Flush(it->second, c);
  c.ended = true;
  c.finish_stream = finish_stream;
  c.retry_at = -absl::InfiniteDuration();
  c.backoff.Reset();
  // Releasing is worth retrying only while the spec could still make the
  // controller wait for us.
  c.release_until = options_.clock->Monotonic() + c.lease_duration;
  LogInfo(
      "campaign ending",
      {{"lock", c.key.str()}, {"identity", c.identity}, {"reason", reason}});
  Kick();
}

void Election::Resign(const LockKey& key, const std::string& identity,
                      std::function<void(absl::StatusOr<bool>)> done) {
  struct Aggregate {
    int remaining = 0;
    bool was_leader = false;
    absl::Status error;
    std::function<void(absl::StatusOr<bool>)> done;
  };
  auto agg = std::make_shared<Aggregate>();
  agg->done = std::move(done);
  {
    absl::MutexLock l(&mu_);
    auto it = locks_.find(key);
    std::vector<Campaign*> matching;
    if (it != locks_.end()) {
      for (auto& [id, c] : it->second.campaigns) {
        if (identity.empty() || c->identity == identity)
          matching.push_back(c.get());
      }
    }
    if (!matching.empty()) {
      agg->remaining = static_cast<int>(matching.size());
      for (Campaign* c : matching) {
        c->waiters.push_back([agg](absl::StatusOr<bool> r) {
          if (r.ok()) {
            agg->was_leader = agg->was_leader || *r;
          } else if (agg->error.ok()) {
            agg->error = r.status();
          }
          if (--agg->remaining == 0) {
            if (agg->error.ok()) {
              agg->done(agg->was_leader);
            } else {
              agg->done(agg->error);
            }
          }
        });
        EndCampaignLocked(*c, "resigned", /*finish_stream=*/true);
      }
      return;
    }
  }
  agg->done(absl::FailedPreconditionError(absl::StrCat(
      "no Campaign for lock ", key.str(),
      identity.empty() ? "" : absl::StrCat(" with identity \"", identity, "\""),
      " is active on this sidecar; Resign applies only to a lock this sidecar "
      "campaigns for")));
}

void Election::CompleteRelease(Lock& lock, Campaign& c,
                               absl::StatusOr<bool> result) {
  for (auto& w : c.waiters) deferred_.push_back([w, result] { w(result); });
  c.waiters.clear();
  if (!result.ok() && options_.clock->Monotonic() < c.release_until) {
    return;  // the waiters have their answer; keep trying to release in the
             // background
  }
  if (c.finish_stream) c.sink->Finish(absl::OkStatus());
  LogInfo("campaign ended",
          {{"lock", lock.key.str()}, {"identity", c.identity}});
  uint64_t id = c.id;
  LockKey key = lock.key;
  campaign_locks_.erase(id);
  lock.campaigns.erase(id);  // destroys c
  bool leading = false;
  for (auto& [i, other] : lock.campaigns)
    leading = leading || other->leadership->leading();
  lock.metrics.is_leader = leading;
  MaybeDropLock(key);
  changed_.SignalAll();
}

absl::StatusOr<uint64_t> Election::StartObserve(
    const LockKey& key, std::shared_ptr<EventSink> sink) {
  auto w = SyncedWatch(key);
  if (!w.ok() && !absl::IsUnavailable(w.status())) return w.status();
  if (!w.ok()) {
    // Observe stays usable while the apiserver is unreachable, as long as the
    // cache was filled once.
    absl::MutexLock l(&mu_);
    auto n = namespaces_.find(key.ns);
    if (shut_down_ || n == namespaces_.end() || !n->second.watch->HasSynced())
      return w.status();
    w = n->second.watch.get();
  }
  absl::MutexLock l(&mu_);
  if (shut_down_) return absl::UnavailableError("the sidecar is shutting down");
  Lock& lock = EnsureLock(key, *w);
  uint64_t id = next_id_++;
  LeadershipEvent e;
  e.state =
      lock.observed.empty() ? LeaderState::kNoLeader : LeaderState::kFollower;
  e.grant = lock.observed;
  sink->Send(StreamEvent{key, e, options_.clock->WallNow()});
  lock.observers[id] = std::move(sink);
  observer_locks_[id] = key;
  return id;
}

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
  } else {
    absl::MutexLock l(&mu_);
    auto it = locks_.find(key);
    if (it != locks_.end()) {
      if (it->second.view && it->second.view->exists)
        g = it->second.view->grant;
    } else if (auto obj = (*w)->Get(key.name)) {
      auto v = ToLeaseView(*obj);
      if (v.ok()) g = v->grant;
    }
  }
  if (g.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no candidate currently leads lock ", key.str()));
  }
  return g;
}

void Election::Shutdown(absl::Duration grace) {
  absl::Duration until = options_.clock->Monotonic() + grace;
  absl::MutexLock l(&mu_);
  shut_down_ = true;
  for (auto& [k, lock] : locks_) {
    for (auto& [id, c] : lock.campaigns) {
      EndCampaignLocked(*c, "the sidecar is shutting down",
                        /*finish_stream=*/true);
      c->release_until = std::min(c->release_until, until);
    }
  }
  auto none_left = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return campaign_locks_.empty();
  };
  while (!none_left()) {
    absl::Duration left = until - options_.clock->Monotonic();
    if (left <= absl::ZeroDuration()) break;
    changed_.WaitWithTimeout(&mu_, left);
  }
  for (auto& [k, lock] : locks_) {
    for (auto& [id, c] : lock.campaigns) c->sink->Finish(absl::OkStatus());
    for (auto& [id, sink] : lock.observers) {
      sink->Finish(absl::UnavailableError("the sidecar is shutting down"));
    }
  }
  LogInfo("shut down",
          {{"unreleased_campaigns", absl::StrCat(campaign_locks_.size())}});
}

std::map<std::string, LockMetrics> Election::Metrics() {
  absl::MutexLock l(&mu_);
  std::map<std::string, LockMetrics> out = retired_metrics_;
  for (auto& [k, lock] : locks_) out[k.str()] = lock.metrics;
  return out;
}

bool Election::Healthy() {
  absl::MutexLock l(&mu_);
  for (auto& [ns, n] : namespaces_) {
    if (n.failing) return false;
  }
  return true;
}

bool Election::NextWrite(Write* w, absl::Duration* wake) {
  const absl::Duration now = options_.clock->Monotonic();
  *wake = now + kMaxIdle;
  std::vector<std::pair<Lock*, Campaign*>> done;
  bool found = false;
  for (auto& [k, lock] : locks_) {
    for (auto& [id, cp] : lock.campaigns) {
      Campaign& c = *cp;
      if (!c.ended) {
        if (auto d = c.leadership->deadline()) {
          if (*d <= now) {
            c.leadership->Tick();
            Flush(lock, c);
          } else {
            *wake = std::min(*wake, *d);
          }
        }
      }
      if (found) continue;
      if (now < c.retry_at) {
        *wake = std::min(*wake, c.retry_at);
        continue;
      }
      if (c.ended) {
        bool holding = lock.view && lock.view->exists && lock.view->holder &&
                       *lock.view->holder == c.identity && lock.obj;
        if (!holding) {
          done.emplace_back(&lock, &c);
          continue;
        }
        if (now >= c.release_until) {
          done.emplace_back(&lock, &c);
          continue;
        }
        w->kind = Write::kUpdate;
        w->campaign = c.id;
        w->release = true;
        w->obj = *lock.obj;
        w->obj.spec.holder_identity.reset();
        w->obj.spec.renew_time =
            kube::FormatMicroTime(options_.clock->WallNow());
        found = true;
        continue;
      }
      Candidacy::Decision d = c.candidacy->Next();
      if (d.action == Candidacy::Action::kNone) {
        if (d.wake_at) *wake = std::min(*wake, *d.wake_at);
        continue;
      }
      if (!c.leadership->CheckWritePrecondition(d.precondition_rv).ok())
        continue;
      w->campaign = c.id;
      w->release = false;
      if (d.action == Candidacy::Action::kCreate) {
        w->kind = Write::kCreate;
        w->obj = kube::MultiClusterLease();
        w->obj.metadata.name = lock.key.name;
        w->obj.metadata.namespace_ = lock.key.ns;
      } else {
        if (!lock.obj) continue;
        w->kind = Write::kUpdate;
        w->obj = *lock.obj;
      }
      w->obj.spec.holder_identity = c.identity;
      w->obj.spec.lease_duration_seconds =
          static_cast<int32_t>(absl::ToInt64Seconds(c.lease_duration));
      w->obj.spec.renew_time = kube::FormatMicroTime(options_.clock->WallNow());
      found = true;
    }
  }
  for (auto& [lock, c] : done) CompleteRelease(*lock, *c, c->was_leader);
  return found;
}

absl::Status Election::Refetch(const LockKey& key) {
  auto r = client_.Get(key.ns, key.name);
  absl::MutexLock l(&mu_);
  auto it = locks_.find(key);
  if (it == locks_.end()) return absl::OkStatus();
  if (!r.ok() && !absl::IsNotFound(r.status())) return r.status();
  if (r.ok()) {
    ApplyObject(*r);
  } else if (absl::IsNotFound(r.status())) {
    LeaseView gone;
    gone.exists = false;
    gone.resource_version =
        it->second.view ? it->second.view->resource_version : 0;
    Apply(it->second, gone, nullptr);
  }
  return absl::OkStatus();
}

void Election::Execute(Write& w) {
  w.sent_at =
      options_.clock->Monotonic();  // T_w: taken before the request is sent
  absl::StatusOr<kube::MultiClusterLease> r =
      w.kind == Write::kCreate ? client_.Create(w.obj) : client_.Update(w.obj);
  LockKey key{w.obj.metadata.namespace_, w.obj.metadata.name};
  if (!r.ok() &&
      (kube::IsConflict(r.status()) || absl::IsAlreadyExists(r.status()) ||
       absl::IsNotFound(r.status()))) {
    // Someone else wrote first (or the object appeared / vanished): learn the
    // new version and decide again. The watch would bring it too; a read is
    // faster.
    absl::Status s = Refetch(key);
    if (s.ok()) return;
    r = s;
  }
  absl::MutexLock l(&mu_);
  Campaign* c = FindCampaign(w.campaign);
  auto it = locks_.find(key);
  if (r.ok()) {
    if (it != locks_.end()) ApplyObject(*r);
    if (c == nullptr) return;
    auto rv = kube::ParseResourceVersion(r->metadata.resource_version);
    if (rv.ok()) c->leadership->RecordWrite(*rv, w.sent_at);
    c->candidacy->WriteSucceeded(w.sent_at);
    c->backoff.Reset();
    c->retry_at = -absl::InfiniteDuration();
    if (it != locks_.end()) {
      Flush(it->second, *c);
      if (w.release) CompleteRelease(it->second, *c, c->was_leader);
    }
    return;
  }
  if (it != locks_.end()) ++it->second.metrics.renew_errors;
  LogWarn(w.release ? "release failed" : "spec write failed",
          {{"lock", key.str()}, {"error", std::string(r.status().message())}});
  if (c == nullptr) return;
  c->candidacy->WriteFailed();
  c->retry_at = options_.clock->Monotonic() + c->backoff.Next();
  if (w.release && it != locks_.end()) {
    CompleteRelease(it->second, *c,
                    absl::UnavailableError(absl::StrCat(
                        "the kube-apiserver did not accept the resignation: ",
                        r.status().message(),
                        "; the campaign is cancelled here and the controller "
                        "releases the lock "
                        "when its renewals go stale")));
  }
}

void Election::WorkerLoop() {
  pthread_setname_np(pthread_self(), "election");
  for (;;) {
    std::vector<std::pair<uint64_t, std::string>> ends;
    std::vector<uint64_t> observer_ends;
    {
      absl::MutexLock l(&kick_mu_);
      ends.swap(pending_campaign_ends_);
      observer_ends.swap(pending_observer_ends_);
      kicked_ = false;
    }
    Write w;
    absl::Duration wake;
    bool have_write = false;
    std::vector<std::function<void()>> deferred;
    {
      absl::MutexLock l(&mu_);
      if (stopping_) return;
      for (auto& [id, reason] : ends) {
        if (Campaign* c = FindCampaign(id))
          EndCampaignLocked(*c, reason, /*finish_stream=*/false);
      }
      for (uint64_t id : observer_ends) {
        auto k = observer_locks_.find(id);
        if (k == observer_locks_.end()) continue;
        auto it = locks_.find(k->second);
        if (it != locks_.end()) it->second.observers.erase(id);
        LockKey key = k->second;
        observer_locks_.erase(k);
        MaybeDropLock(key);
      }
      have_write = NextWrite(&w, &wake);
      deferred.swap(deferred_);
    }
    for (auto& f : deferred) f();
    if (have_write) {
      Execute(w);
      absl::MutexLock l(&mu_);
      deferred.clear();
      deferred.swap(deferred_);
    } else {
      absl::MutexLock l(&kick_mu_);
      absl::Duration left = wake - options_.clock->Monotonic();
      if (!kicked_ && left > absl::ZeroDuration())
        kick_cv_.WaitWithTimeout(&kick_mu_, left);
      continue;
    }
    for (auto& f : deferred) f();
  }
}

}  // namespace mcl::sidecar
