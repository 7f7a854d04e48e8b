#include "controller/controller.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/backoff.h"
#include "common/etcd/txn.h"
#include "common/kube/config.h"
#include "common/kube/errors.h"
#include "common/kube/objects.h"
#include "common/log.h"
#include "controller/cr_codec.h"

namespace mcl::controller {
namespace {

using kube::Json;

constexpr char kSessionAnnotation[] = "mcl.dev/session";
constexpr char kConfirmedAnnotation[] = "mcl.dev/confirmed-resource-version";
constexpr char kTtlAnnotation[] = "mcl.dev/session-ttl-ms";

std::string StringAt(const Json& obj, std::initializer_list<const char*> path) {
  const Json* cur = &obj;
  for (const char* p : path) {
    if (!cur->is_object() || !cur->has_field(p)) return "";
    cur = &cur->at(p);
  }
  return cur->is_string() ? cur->as_string() : "";
}

// An etcd error that says the backend is not answering (as opposed to a refused
// request).
bool Unreachable(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) ||
         absl::IsCancelled(s);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Controller>> Controller::Create(
    ControllerOptions options) {
  if (options.cluster.empty())
    return absl::InvalidArgumentError("--cluster-name is required");
  if (options.etcd_endpoints.empty()) {
    return absl::InvalidArgumentError("--etcd-endpoints is required");
  }
  if (options.session_ttl < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        "--session-ttl must be at least 1s (etcd's granularity)");
  }
  while (options.key_prefix.size() > 1 && options.key_prefix.back() == '/') {
    options.key_prefix.pop_back();
  }
  std::unique_ptr<Controller> c(new Controller(std::move(options)));
  const ControllerOptions& o = c->options_;

  auto kcfg = kube::LoadConfig(o.kubeconfig);
  if (!kcfg.ok()) return kcfg.status();
  kube::SkipUnusedDefaultCaFile(*kcfg);
  auto kube = kube::KubeClient::Create(*kcfg);
  if (!kube.ok()) return kube.status();
  c->kube_ = std::move(*kube);
  kube::EventRecorderOptions eo;
  eo.component = "mcl-controller";
  eo.instance = o.identity;
  c->events_ = std::make_unique<kube::EventRecorder>(c->kube_.get(), eo);

  etcd::ClientConfig ecfg;
  ecfg.endpoints = o.etcd_endpoints;
  if (!o.etcd_ca.empty() || !o.etcd_cert.empty()) {
    etcd::TlsConfig tls;
    tls.ca_file = o.etcd_ca;
    tls.cert_file = o.etcd_cert;
    tls.key_file = o.etcd_key;
    ecfg.tls = tls;
  }
  ecfg.username = o.etcd_username;
  ecfg.password = o.etcd_password;
  // A call must not outlast a keepalive period by much: a stuck Txn would stall
  // a worker while the session's fate is decided elsewhere.
  ecfg.call_timeout = std::max(absl::Seconds(1), o.session_ttl / 2);
  auto etcd = etcd::Client::Create(ecfg);
  if (!etcd.ok()) return etcd.status();
  c->etcd_ = std::move(*etcd);
  c->kv_ = std::make_unique<etcd::KV>(c->etcd_.get());
  c->lease_ = std::make_unique<etcd::Lease>(c->etcd_.get());

  ReconcilerConfig rc;
  rc.cluster = o.cluster;
  rc.heartbeat = absl::StrCat(o.namespace_, "/", c->heartbeat_name_);
  rc.default_lease_duration = o.default_lease_duration;
  c->reconciler_ = std::make_unique<LockReconciler>(rc, c->clock_);

  kube::InformerOptions io;
  if (o.watch_namespaces.size() == 1) io.namespace_ = o.watch_namespaces[0];
  // Thousands of locks, one read per reconcile: keep the cache as text.
  io.compact_cache = true;
  io.on_error = [](const absl::Status& s) {
    LogWarn("MultiClusterLease informer error",
            {{"error", std::string(s.message())}});
  };
  Controller* self = c.get();
  auto enqueue = [self](const Json& obj) {
    const std::string ns = StringAt(obj, {"metadata", "namespace"});
    if (!self->NamespaceWatched(ns)) return;
    const std::string key = kube::ObjectKeyOf(obj);
    // Every delivered version goes into the liveness tracker, not only the one
    // a reconcile later reads: a resign followed at once by a local takeover
    // must still count as the resigner's ack (design.md §Ack), and renewals are
    // timed when they arrive.
    if (auto v = CrViewFromJson(obj); v.ok()) {
      absl::MutexLock l(&self->mu_);
      self->memory_[key].liveness.Observe(v->uid, v->generation, v->holder,
                                          self->clock_->Monotonic());
    }
    self->queue_.Add(key);
  };
  kube::Informer::Handlers h;
  h.on_add = enqueue;
  h.on_update = [enqueue](const Json&, const Json& obj) { enqueue(obj); };
  h.on_delete = enqueue;
  // design.md §Confirmation step 2: every renewal up to rv has been observed
  // (the handlers above ran) by this moment; SessionTracker picks, per answered
  // keepalive, the newest such moment before it was sent. Recorded per event,
  // not sampled, so a keepalive sent right after a grant confirms the renewal
  // the grant was based on.
  h.on_synced = [self](const std::string& rv) {
    const int64_t n = RvNumber(rv);
    if (n <= 0) return;
    const absl::Duration now = self->clock_->Monotonic();
    absl::MutexLock l(&self->mu_);
    self->tracker_.RecordProcessed(n, now);
  };
  c->informer_ = std::make_unique<kube::Informer>(
      c->kube_.get(), kube::MultiClusterLeaseResource(), io, std::move(h));
  return c;
}

Controller::Controller(ControllerOptions options)
    : options_(std::move(options)) {
  election_duration_ = options_.election_lease_duration;
  if (election_duration_ <= absl::ZeroDuration()) {
    election_duration_ = std::clamp(options_.session_ttl * 3, absl::Seconds(3),
                                    absl::Seconds(15));
  }
  // On SIGTERM heartbeats stop at once, so after TTL·(1+rho)+m no local
  // candidate can still count itself leader (design.md §Confirmation) and
  // revoking the session is safe for every lock, acked or not. A shorter bound
  // would not be.
  const absl::Duration lapse = options_.session_ttl * (1 + kRho) + kMargin;
  if (options_.shutdown_timeout < lapse) options_.shutdown_timeout = lapse;
  heartbeat_name_ = absl::StrCat("mcl-heartbeat-", options_.cluster);
  election_name_ = absl::StrCat("mcl-controller-", options_.cluster);
  metrics_.locks_held = [this] { return LocksHeld(); };
  metrics_.locks_known = [this] {
    return static_cast<int64_t>(informer_ ? informer_->Size() : 0);
  };
  metrics_.queue_depth = [this] { return static_cast<int64_t>(queue_.Len()); };
  metrics_.backend_reachable = [this] {
    absl::MutexLock l(&mu_);
    return tracker_.View(clock_->Monotonic()).reachable;
  };
  metrics_.active = [this] { return active_.load(); };
  metrics_.events_pending = [this] {
    return events_ ? events_->stats().pending : 0;
  };
  metrics_.events_dropped = [this] {
    if (!events_) return int64_t{0};
    const kube::EventRecorder::Stats s = events_->stats();
    return s.dropped + s.rate_limited + s.failed;
  };
  metrics_.events_written = [this] {
    if (!events_) return int64_t{0};
    const kube::EventRecorder::Stats s = events_->stats();
    return s.created + s.aggregated;
  };
}

Controller::~Controller() {
  SignalStop();
  queue_.ShutDown();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  watch_.reset();
  if (informer_) informer_->Stop();
}

bool Controller::NamespaceWatched(const std::string& ns) const {
  if (options_.watch_namespaces.empty()) return true;
  return std::find(options_.watch_namespaces.begin(),
                   options_.watch_namespaces.end(),
                   ns) != options_.watch_namespaces.end();
}

std::string Controller::EtcdKey(const std::string& lock_key) const {
  return absl::StrCat(options_.key_prefix, "/", lock_key);
}

std::string Controller::LockKeyOf(const std::string& etcd_key) const {
  const std::string prefix = options_.key_prefix + "/";
  if (etcd_key.compare(0, prefix.size(), prefix) != 0) return "";
  std::vector<std::string> parts =
      absl::StrSplit(etcd_key.substr(prefix.size()), '/');
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) return "";
  return absl::StrCat(parts[0], "/", parts[1]);
}

// ---- Replica election
// --------------------------------------------------------------------------

bool Controller::AcquireActive(const StopFlag* stop) {
  const kube::Resource& res = kube::LeaseResource();
  const absl::Duration poll =
      std::min(absl::Seconds(1), election_duration_ / 4);
  const int64_t duration_s = absl::ToInt64Seconds(election_duration_);
  std::string observed;
  absl::Duration observed_at;
  std::string standby_logged;
  while (!stop->IsSet()) {
    auto got = kube_->Get(res, options_.namespace_, election_name_);
    const absl::Duration now = clock_->Monotonic();
    const std::string wall = kube::FormatMicroTime(clock_->WallNow());
    if (!got.ok()) {
      if (absl::IsNotFound(got.status())) {
        Json obj = Json::object();
        obj["apiVersion"] = Json::string("coordination.k8s.io/v1");
        obj["kind"] = Json::string("Lease");
        Json& meta = kube::ChildObject(obj, "metadata");
        meta["name"] = Json::string(election_name_);
        meta["namespace"] = Json::string(options_.namespace_);
        Json& spec = kube::ChildObject(obj, "spec");
        spec["holderIdentity"] = Json::string(options_.identity);
        spec["leaseDurationSeconds"] = Json::number(duration_s);
        spec["acquireTime"] = Json::string(wall);
        spec["renewTime"] = Json::string(wall);
        auto created = kube_->Create(res, options_.namespace_, obj);
        metrics_.apiserver_writes++;
        if (created.ok()) {
          election_obj_ = *created;
          election_renewed_at_ = now;
          LogInfo("active replica",
                  {{"identity", options_.identity}, {"lease", election_name_}});
          return true;
        }
        LogWarn("cannot create the election Lease",
                {{"error", std::string(created.status().message())}});
      } else {
        LogWarn("cannot read the election Lease",
                {{"error", std::string(got.status().message())}});
      }
      stop->WaitFor(poll);
      continue;
    }
    const std::string holder = StringAt(*got, {"spec", "holderIdentity"});
    const std::string renew = StringAt(*got, {"spec", "renewTime"});
    const std::string seen = absl::StrCat(holder, "|", renew);
    if (seen != observed) {
      observed = seen;
      observed_at =
          now;  // judged by our own clock from when we saw it change (S3)
    }
    if (holder.empty() || holder == options_.identity ||
        now - observed_at >= election_duration_) {
      Json obj = *got;
      Json& spec = kube::ChildObject(obj, "spec");
      if (holder != options_.identity) {
        int64_t transitions = 0;
        if (spec.has_field("leaseTransitions") &&
            spec.at("leaseTransitions").is_integer()) {
          transitions = spec.at("leaseTransitions").as_number().to_int64();
        }
        spec["leaseTransitions"] = Json::number(transitions + 1);
        spec["acquireTime"] = Json::string(wall);
      }
      spec["holderIdentity"] = Json::string(options_.identity);
      spec["leaseDurationSeconds"] = Json::number(duration_s);
      spec["renewTime"] = Json::string(wall);
      auto updated = kube_->Update(res, obj);
      metrics_.apiserver_writes++;
      if (updated.ok()) {
        election_obj_ = *updated;
        election_renewed_at_ = now;
        LogInfo("active replica", {{"identity", options_.identity},
                                   {"previous", holder},
                                   {"lease", election_name_}});
        return true;
      }
      LogWarn("taking the election Lease failed",
              {{"error", std::string(updated.status().message())}});
    } else if (standby_logged != holder) {
      standby_logged = holder;
      LogInfo("standby",
              {{"active", holder},
               {"lease_duration", absl::FormatDuration(election_duration_)}});
    }
    stop->WaitFor(poll);
  }
  return false;
}

void Controller::RenewActiveLoop() {
  const kube::Resource& res = kube::LeaseResource();
  // Stop acting before any standby can count our lease as expired: it waits the
  // full duration from when *it* saw our last renewal, which was after we sent
  // it.
  const absl::Duration fence = election_duration_ * (1 - kRho) - kMargin;
  absl::Duration next = election_renewed_at_ + election_duration_ / 3;
  while (!stopping_.IsSet()) {
    const absl::Duration now = clock_->Monotonic();
    if (now >= election_renewed_at_ + fence) {
      LogError(
          "lost the replica election Lease; exiting so that a standby takes "
          "over",
          {{"identity", options_.identity}});
      std::_Exit(1);
    }
    if (now < next) {
      // Until the next renewal, or the fence if a retry would pass it.
      stopping_.WaitFor(std::min(next, election_renewed_at_ + fence) - now);
      continue;
    }
    Json obj = election_obj_;
    kube::ChildObject(obj, "spec")["renewTime"] =
        Json::string(kube::FormatMicroTime(clock_->WallNow()));
    auto updated = kube_->Update(res, obj);
    metrics_.apiserver_writes++;
    if (updated.ok()) {
      election_obj_ = *updated;
      election_renewed_at_ = now;
      next = now + election_duration_ / 3;
      continue;
    }
    if (kube::IsConflict(updated.status())) {
      auto got = kube_->Get(res, options_.namespace_, election_name_);
      if (got.ok()) {
        if (StringAt(*got, {"spec", "holderIdentity"}) != options_.identity) {
          LogError("another replica took the election Lease; exiting",
                   {{"holder", StringAt(*got, {"spec", "holderIdentity"})}});
          std::_Exit(1);
        }
        election_obj_ = *got;
      }
    } else {
      LogWarn("renewing the election Lease failed",
              {{"error", std::string(updated.status().message())}});
    }
    next = now + std::min(absl::Milliseconds(500), election_duration_ / 10);
  }
}

void Controller::ReleaseActive() {
  Json obj = election_obj_;
  if (obj.is_null()) return;
  kube::ChildObject(obj, "spec").erase("holderIdentity");
  auto updated = kube_->Update(kube::LeaseResource(), obj);
  metrics_.apiserver_writes++;
  if (!updated.ok()) {
    LogWarn("releasing the election Lease failed",
            {{"error", std::string(updated.status().message())}});
  }
}

// ---- etcd session, watch, heartbeat
// -------------------------------------------------------------

absl::Status Controller::EstablishSession(bool try_adopt) {
  auto make_callbacks = [this](int64_t id) {
    etcd::KeepAliveCallbacks cb;
    cb.on_renewed = [this](const etcd::KeepAliveResponse& r) {
      metrics_.keepalives++;
      absl::MutexLock l(&mu_);
      tracker_.OnRenewed(r.id, r.ttl_seconds, r.sent_at, r.received_at);
      session_event_ = true;
    };
    cb.on_lost = [this, id](const absl::Status& why) {
      LogWarn("etcd session lost", {{"session", SessionHex(id)},
                                    {"why", std::string(why.message())}});
      absl::MutexLock l(&mu_);
      tracker_.OnLost(id);
      session_event_ = true;
    };
    return cb;
  };
  if (try_adopt) {
    // design: a standby (or a restarted controller) keeps the previous session
    // if etcd says it still lives, so the keys it holds and the statuses naming
    // it stay valid.
    auto hb =
        kube_->Get(kube::LeaseResource(), options_.namespace_, heartbeat_name_);
    if (!hb.ok() && !absl::IsNotFound(hb.status())) return hb.status();
    const std::string hex =
        hb.ok() ? StringAt(*hb, {"metadata", "annotations", kSessionAnnotation})
                : "";
    uint64_t id = 0;
    if (!hex.empty() && absl::SimpleHexAtoi(hex, &id) && id != 0) {
      const absl::Duration sent = clock_->Monotonic();
      auto info = lease_->TimeToLive(static_cast<int64_t>(id));
      metrics_.etcd_requests++;
      if (!info.ok() && !absl::IsNotFound(info.status())) return info.status();
      if (info.ok() && info->ttl_seconds > 0) {
        // etcd reports whole seconds; count one less to be safe.
        const int64_t remaining = std::max<int64_t>(0, info->ttl_seconds - 1);
        const int64_t granted =
            std::max(info->granted_ttl_seconds, info->ttl_seconds);
        {
          absl::MutexLock l(&mu_);
          tracker_.Started(static_cast<int64_t>(id), absl::Seconds(granted),
                           sent, absl::Seconds(remaining));
        }
        etcd::LeaseGrant g;
        g.id = static_cast<int64_t>(id);
        g.ttl_seconds = granted;
        g.sent_at = sent - absl::Seconds(granted - remaining);
        absl::Status st = lease_->KeepAlive(g, make_callbacks(g.id));
        if (st.ok() || absl::IsAlreadyExists(st)) {
          LogInfo(
              "adopted etcd session",
              {{"session", hex}, {"remaining_ttl_s", absl::StrCat(remaining)}});
          return absl::OkStatus();
        }
        return st;
      }
      LogInfo("previous etcd session is gone; starting a new one",
              {{"session", hex}});
    }
  }
  const int64_t ttl_s = static_cast<int64_t>(
      std::ceil(absl::ToDoubleSeconds(options_.session_ttl)));
  const absl::Time t0 = absl::Now();
  auto grant = lease_->Grant(ttl_s);
  metrics_.etcd_requests++;
  metrics_.etcd_latency.Observe(absl::Now() - t0);
  if (!grant.ok()) {
    metrics_.etcd_errors++;
    return grant.status();
  }
  {
    absl::MutexLock l(&mu_);
    tracker_.Started(grant->id, absl::Seconds(grant->ttl_seconds),
                     grant->sent_at, absl::Seconds(grant->ttl_seconds));
  }
  absl::Status st = lease_->KeepAlive(*grant, make_callbacks(grant->id));
  if (!st.ok()) return st;
  LogInfo("new etcd session", {{"session", SessionHex(grant->id)},
                               {"ttl_s", absl::StrCat(grant->ttl_seconds)}});
  return absl::OkStatus();
}

void Controller::ApplyKey(const std::string& lock_key, const KeyEntry& entry) {
  auto it = keys_.find(lock_key);
  if (it != keys_.end() && it->second.rev > entry.rev) return;  // older news
  keys_[lock_key] = entry;
}

KeyView Controller::KeyViewFor(const std::string& lock_key) const {
  KeyView v;
  v.known = keys_known_;
  auto it = keys_.find(lock_key);
  if (it != keys_.end() && it->second.present) {
    v.present = true;
    v.mod_revision = it->second.mod_revision;
    v.lease = it->second.lease;
    v.raw = it->second.raw;
  }
  return v;
}

absl::Status Controller::StartKeyWatch() {
  watch_
      .reset();  // never from its own callback: this runs on the session thread
  etcd::RangeOptions ro;
  ro.prefix = true;
  const absl::Time t0 = absl::Now();
  auto list = kv_->Range(options_.key_prefix + "/", ro);
  metrics_.etcd_requests++;
  metrics_.etcd_latency.Observe(absl::Now() - t0);
  if (!list.ok()) {
    metrics_.etcd_errors++;
    return list.status();
  }
  {
    absl::MutexLock l(&mu_);
    std::set<std::string> seen;
    for (const auto& kv : list->kvs) {
      const std::string lk = LockKeyOf(kv.key);
      if (lk.empty()) {
        if (warned_.insert(kv.key).second) {
          LogWarn("ignoring an etcd key under the prefix that names no lock",
                  {{"key", kv.key}});
        }
        continue;
      }
      seen.insert(lk);
      keys_[lk] =
          KeyEntry{true, kv.mod_revision, kv.lease, kv.value, kv.mod_revision};
    }
    for (auto& [lk, e] : keys_) {
      if (!seen.count(lk)) e = KeyEntry{false, 0, 0, "", list->revision};
    }
    keys_known_ = true;
  }
  etcd::WatchOptions wo;
  wo.key = options_.key_prefix + "/";
  wo.prefix = true;
  wo.start_revision = list->revision + 1;
  etcd::WatchCallbacks cb;
  cb.on_events = [this](const std::vector<etcd::Event>& events, int64_t) {
    std::vector<std::string> touched;
    {
      absl::MutexLock l(&mu_);
      for (const auto& ev : events) {
        const std::string lk = LockKeyOf(ev.kv.key);
        if (lk.empty()) {
          if (warned_.insert(ev.kv.key).second) {
            LogWarn("ignoring an etcd key under the prefix that names no lock",
                    {{"key", ev.kv.key}});
          }
          continue;
        }
        if (ev.type == etcd::Event::Type::kPut) {
          ApplyKey(lk, KeyEntry{true, ev.kv.mod_revision, ev.kv.lease,
                                ev.kv.value, ev.kv.mod_revision});
        } else {
          ApplyKey(lk, KeyEntry{false, 0, 0, "", ev.kv.mod_revision});
        }
        touched.push_back(lk);
      }
    }
    for (const auto& lk : touched) queue_.Add(lk);
  };
  cb.on_created = [this](int64_t) {
    bool was;
    {
      absl::MutexLock l(&mu_);
      was = keys_known_;
      keys_known_ = true;
    }
    if (!was) EnqueueAll();
  };
  cb.on_disconnected = [this](const absl::Status& why) {
    LogWarn("etcd watch disconnected", {{"why", std::string(why.message())}});
    absl::MutexLock l(&mu_);
    keys_known_ = false;
  };
  cb.on_done = [this](const absl::Status& why) {
    LogWarn("etcd watch ended; relisting",
            {{"why", std::string(why.message())}});
    absl::MutexLock l(&mu_);
    keys_known_ = false;
    watch_needs_restart_ = true;
    session_event_ = true;
  };
  auto w = etcd::Watch::Start(etcd_.get(), wo, cb);
  if (!w.ok()) return w.status();
  watch_ = std::move(*w);
  EnqueueAll();
  return absl::OkStatus();
}

absl::Status Controller::PublishHeartbeat(const Heartbeat& hb) {
  const kube::Resource& res = kube::LeaseResource();
  Json obj;
  {
    absl::MutexLock l(&mu_);
    obj = heartbeat_obj_;
  }
  bool create = false;
  if (obj.is_null()) {
    auto got = kube_->Get(res, options_.namespace_, heartbeat_name_);
    if (got.ok()) {
      obj = *got;
    } else if (absl::IsNotFound(got.status())) {
      create = true;
      obj = Json::object();
      obj["apiVersion"] = Json::string("coordination.k8s.io/v1");
      obj["kind"] = Json::string("Lease");
      Json& meta = kube::ChildObject(obj, "metadata");
      meta["name"] = Json::string(heartbeat_name_);
      meta["namespace"] = Json::string(options_.namespace_);
    } else {
      return got.status();
    }
  }
  Json& ann =
      kube::ChildObject(kube::ChildObject(obj, "metadata"), "annotations");
  ann[kSessionAnnotation] = Json::string(SessionHex(hb.session));
  ann[kConfirmedAnnotation] = Json::string(hb.confirmed_rv);
  ann[kTtlAnnotation] =
      Json::string(absl::StrCat(absl::ToInt64Milliseconds(hb.ttl)));
  Json& spec = kube::ChildObject(obj, "spec");
  spec["holderIdentity"] = Json::string(options_.identity);
  spec["leaseDurationSeconds"] = Json::number(
      static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(hb.ttl))));
  spec["renewTime"] = Json::string(kube::FormatMicroTime(clock_->WallNow()));
  auto r = create ? kube_->Create(res, options_.namespace_, obj)
                  : kube_->Update(res, obj);
  metrics_.apiserver_writes++;
  absl::MutexLock l(&mu_);
  if (!r.ok()) {
    heartbeat_obj_ =
        Json();  // re-read next time (conflict, or someone deleted it)
    return r.status();
  }
  metrics_.heartbeats++;
  heartbeat_obj_ = *r;
  return absl::OkStatus();
}

void Controller::SessionLoop() {
  Backoff session_backoff({absl::Milliseconds(100), absl::Seconds(5), 2.0});
  Backoff watch_backoff({absl::Milliseconds(100), absl::Seconds(5), 2.0});
  // A failed heartbeat write is retried soon (it may carry the confirmation a
  // handoff waits for), then less and less often while the apiserver fails.
  Backoff heartbeat_backoff({absl::Milliseconds(10), absl::Seconds(2), 2.0});
  absl::Duration next_session_try, next_watch_try;
  std::optional<absl::Duration> heartbeat_retry_at;  // after a failed write
  SessionView last;
  bool first_view = true;
  std::string last_hb_error;
  absl::Duration next_trim = clock_->Monotonic() + absl::Seconds(30);
  while (!stopping_.IsSet()) {
    const absl::Duration now = clock_->Monotonic();
    int64_t lost_id = 0;
    bool need_session = false, need_watch = false, shutting_down = false;
    SessionView v;
    {
      absl::MutexLock l(&mu_);
      v = tracker_.View(now);
      shutting_down = v.shutting_down;
      need_session = tracker_.id() == 0 || tracker_.Lost(now);
      if (need_session) lost_id = tracker_.id();
      need_watch = watch_needs_restart_;
    }
    if (need_session && !shutting_down && now >= next_session_try) {
      if (lost_id != 0) {
        // Rule 7: what we held is gone or will be; revoke so the keys go now,
        // not at expiry.
        lease_->StopKeepAlive(lost_id);
        (void)lease_->Revoke(lost_id, absl::Seconds(1));
      }
      absl::Status st = EstablishSession(false);
      if (st.ok()) {
        session_backoff.Reset();
      } else {
        next_session_try = now + session_backoff.Next();
        LogWarn("cannot start an etcd session; retrying",
                {{"error", std::string(st.message())}});
      }
    }
    if (need_watch && now >= next_watch_try) {
      absl::Status st = StartKeyWatch();
      if (st.ok()) {
        absl::MutexLock l(&mu_);
        watch_needs_restart_ = false;
        watch_backoff.Reset();
      } else {
        next_watch_try = now + watch_backoff.Next();
        LogWarn("cannot list etcd keys; retrying",
                {{"error", std::string(st.message())}});
      }
    }
    {
      absl::MutexLock l(&mu_);
      v = tracker_.View(clock_->Monotonic());
    }
    if (first_view || v.alive != last.alive || v.reachable != last.reachable ||
        v.id != last.id) {
      LogInfo("backend state", {{"session", SessionHex(v.id)},
                                {"alive", v.alive ? "true" : "false"},
                                {"reachable", v.reachable ? "true" : "false"}});
      last = v;
      first_view = false;
      EnqueueAll();  // every status shows BackendReachable; rule 7 applies to
                     // every lock
    }
    std::optional<Heartbeat> hb;
    if (!heartbeat_retry_at || clock_->Monotonic() >= *heartbeat_retry_at) {
      absl::MutexLock l(&mu_);
      hb = tracker_.TakeHeartbeat(clock_->Monotonic());
      if (!hb) heartbeat_retry_at.reset();  // nothing left to publish (lost)
    }
    if (hb) {
      absl::Status st = PublishHeartbeat(*hb);
      if (!st.ok()) {
        {
          absl::MutexLock l(&mu_);
          tracker_.PublishFailed();
        }
        heartbeat_retry_at = clock_->Monotonic() + heartbeat_backoff.Next();
        if (last_hb_error != st.message()) {
          last_hb_error = std::string(st.message());
          LogWarn("heartbeat write failed", {{"error", last_hb_error}});
        }
      } else {
        heartbeat_retry_at.reset();
        heartbeat_backoff.Reset();
        last_hb_error.clear();
      }
    }
    if (clock_->Monotonic() >= next_trim) {
      // Return freed pages after bursts (initial list, mass grants) instead of
      // keeping the peak.
      malloc_trim(0);
      next_trim = clock_->Monotonic() + absl::Seconds(30);
    }
    // Sleep until an event (session_event_: an answered keepalive wakes this
    // loop at once, since its confirmation is on the graceful-handoff path,
    // design.md §Failover timings) or the next deadline: the session's next
    // change by time (loss, etcd unreachable), a retry, the trim. The cap is
    // insurance only; every change the loop reacts to is one of those.
    absl::MutexLock l(&mu_);
    const absl::Duration now_end = clock_->Monotonic();
    absl::Duration wake = std::min(next_trim, now_end + absl::Seconds(1));
    if (std::optional<absl::Duration> t = tracker_.NextChangeByTime(now_end))
      wake = std::min(wake, *t);
    if ((tracker_.id() == 0 || tracker_.Lost(now_end)) &&
        !tracker_.View(now_end).shutting_down)
      wake = std::min(wake, next_session_try);
    if (watch_needs_restart_) wake = std::min(wake, next_watch_try);
    if (heartbeat_retry_at) wake = std::min(wake, *heartbeat_retry_at);
    auto event = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return session_event_;
    };
    if (wake > now_end) {
      mu_.AwaitWithTimeout(absl::Condition(&event), wake - now_end);
    }
    session_event_ = false;
  }
}

void Controller::RecordCallResult(bool ok) {
  const absl::Duration now = clock_->Monotonic();
  const bool was_reachable = tracker_.Reachable(now);
  tracker_.OnCallResult(ok, now);
  if (tracker_.Reachable(now) != was_reachable) session_event_ = true;
}

void Controller::SignalStop() {
  stopping_.Set();
  absl::MutexLock l(&mu_);
  session_event_ = true;
}

// ---- Reconcile
// ---------------------------------------------------------------------------------

void Controller::EnqueueAll() {
  std::set<std::string> all;
  if (informer_) {
    for (std::string& key : informer_->Keys()) {
      // Keys are "namespace/name".
      if (NamespaceWatched(key.substr(0, key.find('/')))) {
        all.insert(std::move(key));
      }
    }
  }
  {
    absl::MutexLock l(&mu_);
    for (const auto& [k, e] : keys_) {
      if (e.present) all.insert(k);
    }
    for (const auto& [k, m] : memory_) all.insert(k);
  }
  for (const auto& k : all) queue_.Add(k);
}

int64_t Controller::LocksHeld() const {
  absl::MutexLock l(&mu_);
  return LocksHeldLocked();
}

int64_t Controller::LocksHeldLocked() const {
  const SessionView v = tracker_.View(clock_->Monotonic());
  if (!v.alive) return 0;
  int64_t n = 0;
  for (const auto& [k, e] : keys_) {
    if (e.present && e.lease == v.id) ++n;
  }
  return n;
}

void Controller::WorkerLoop() {
  std::string key;
  while (queue_.Get(&key)) {
    ReconcileLock(key);
    queue_.Done(key);
  }
}

void Controller::ReconcileLock(const std::string& key) {
  std::vector<std::string> ns_name =
      absl::StrSplit(key, absl::MaxSplits('/', 1));
  if (ns_name.size() != 2) return;
  for (int iteration = 0; iteration < 8 && !stopping_.IsSet(); ++iteration) {
    kube::ObjectPtr obj = informer_->GetByKey(key);
    Json cur;
    bool have = false;
    KeyView kv;
    SessionView sv;
    LockMemory* mem;
    {
      absl::MutexLock l(&mu_);
      auto w = written_.find(key);
      if (w != written_.end()) {
        // Our own write's answer is newer than the informer until the informer
        // catches up.
        if (obj == nullptr ||  // deleted since
            RvNumber(kube::ResourceVersionOf(*obj)) >=
                RvNumber(kube::ResourceVersionOf(w->second))) {
          written_.erase(w);
        } else {
          cur = w->second;
          have = true;
        }
      }
      if (!have && obj != nullptr) {
        cur = *obj;
        have = true;
      }
      kv = KeyViewFor(key);
      sv = tracker_.View(clock_->Monotonic());
      mem = &memory_[key];
    }
    CrView view;
    if (have) {
      auto v = CrViewFromJson(cur);
      if (!v.ok()) {
        absl::MutexLock l(&mu_);
        if (warned_
                .insert(
                    absl::StrCat(key, "#", std::string(v.status().message())))
                .second) {
          LogWarn(
              "cannot use this MultiClusterLease",
              {{"lock", key}, {"error", std::string(v.status().message())}});
        }
        return;
      }
      view = std::move(*v);
    }
    Plan plan = reconciler_->Reconcile(have ? &view : nullptr, kv, sv, *mem);
    metrics_.reconciles++;
    if (plan.forget) {
      absl::MutexLock l(&mu_);
      memory_.erase(key);
      written_.erase(key);
      auto k = keys_.find(key);
      if (k != keys_.end() && !k->second.present)
        keys_.erase(k);  // drop the tombstone too
      failures_.erase(key);
      last_why_.erase(key);
      return;
    }
    if (plan.action.kind == Action::kNone) {
      if (have) {
        for (const auto& e : plan.events) PostEvent(view, e);
      }
      {
        absl::MutexLock l(&mu_);
        std::string& last = last_why_[key];
        if (last != plan.why) {
          last = plan.why;
          LogInfo(plan.why, {{"lock", key}, {"action", "none"}});
        }
        failures_.erase(key);
      }
      if (plan.requeue_at)
        queue_.AddAt(key, *plan.requeue_at + absl::Milliseconds(1));
      return;
    }
    LogInfo(plan.why, {{"lock", key},
                       {"action", ActionName(plan.action.kind)},
                       {"holder", view.holder.value_or("")},
                       {"session", SessionHex(sv.id)}});
    const bool ok = Execute(key, cur, have ? &view : nullptr, plan, *mem);
    if (!ok) {
      int n;
      {
        absl::MutexLock l(&mu_);
        n = ++failures_[key];
        last_why_.erase(key);
      }
      const absl::Duration delay = std::min(
          absl::Seconds(5), absl::Milliseconds(50) * (1 << std::min(n - 1, 7)));
      queue_.AddAt(key, clock_->Monotonic() + delay);
      return;
    }
    if (have) {
      for (const auto& e : plan.events) PostEvent(view, e);
    }
    {
      absl::MutexLock l(&mu_);
      failures_.erase(key);
      last_why_.erase(key);
    }
  }
  if (!stopping_.IsSet())
    queue_.Add(key);  // still busy after 8 steps: let other locks run
}

bool Controller::Execute(const std::string& key, const Json& cur,
                         const CrView* view, const Plan& plan,
                         LockMemory& mem) {
  const Action& a = plan.action;
  const kube::Resource& res = kube::MultiClusterLeaseResource();
  switch (a.kind) {
    case Action::kNone:
      return true;
    case Action::kAddFinalizer:
    case Action::kRemoveFinalizer: {
      auto r = kube_->Update(
          res, WithFinalizer(cur, kFinalizer, a.kind == Action::kAddFinalizer));
      metrics_.apiserver_writes++;
      if (r.ok()) {
        absl::MutexLock l(&mu_);
        if (!r->is_null() && r->is_object()) written_[key] = *r;
        return true;
      }
      if (absl::IsNotFound(r.status())) return true;
      if (!kube::IsConflict(r.status())) {
        LogWarn("finalizer update failed",
                {{"lock", key}, {"error", std::string(r.status().message())}});
      }
      return false;
    }
    case Action::kWriteStatus: {
      metrics_.status_writes++;
      metrics_.apiserver_writes++;
      auto r = kube_->UpdateStatus(
          res, WithStatus(cur, a.status, a.precondition_rv));
      WriteOutcome outcome = WriteOutcome::kApplied;
      if (!r.ok()) {
        outcome = (kube::IsConflict(r.status()) || absl::IsNotFound(r.status()))
                      ? WriteOutcome::kConflict
                      : WriteOutcome::kFailed;
      }
      reconciler_->OnStatusResult(a, outcome, mem);
      if (r.ok()) {
        absl::MutexLock l(&mu_);
        written_[key] = *r;
        return true;
      }
      if (outcome == WriteOutcome::kConflict) {
        metrics_.status_conflicts++;
      } else {
        metrics_.status_write_errors++;
        LogWarn("status write failed",
                {{"lock", key}, {"error", std::string(r.status().message())}});
      }
      return false;
    }
    case Action::kTxnCreate:
    case Action::kTxnRepoint:
    case Action::kTxnDelete: {
      const std::string ek = EtcdKey(key);
      int64_t sid;
      {
        absl::MutexLock l(&mu_);
        sid = tracker_.id();
      }
      etcd::Txn txn;
      etcd::PutOptions po;
      po.lease = sid;
      if (a.kind == Action::kTxnCreate) {
        metrics_.contention_attempts++;
        txn.If(etcd::CreateRevision(ek) == 0)
            .Then(etcd::Op::Put(ek, a.value, po));
      } else if (a.kind == Action::kTxnRepoint) {
        txn.If(etcd::ModRevision(ek) == a.expected_mod_revision)
            .If(etcd::LeaseOf(ek) == sid)
            .Then(etcd::Op::Put(ek, a.value, po));
      } else {
        txn.If(etcd::ModRevision(ek) == a.expected_mod_revision)
            .Then(etcd::Op::Delete(ek));
      }
      txn.Else(etcd::Op::Get(ek));
      const absl::Time t0 = absl::Now();
      auto r = kv_->Commit(txn);
      metrics_.etcd_requests++;
      metrics_.etcd_latency.Observe(absl::Now() - t0);
      if (r.ok() && r->succeeded && a.kind != Action::kTxnDelete) {
        // A fresh keepalive now, so the heartbeat that follows in milliseconds
        // confirms the new holder's latest renewal (design.md §Failover
        // timings) instead of the next periodic one, up to TTL/3 later.
        lease_->KeepAliveNow(sid);
      }
      absl::MutexLock l(&mu_);
      if (!r.ok()) {
        metrics_.etcd_errors++;
        if (Unreachable(r.status())) RecordCallResult(false);
        LogWarn("etcd transaction failed",
                {{"lock", key},
                 {"action", ActionName(a.kind)},
                 {"error", std::string(r.status().message())}});
        return false;
      }
      RecordCallResult(true);
      if (r->succeeded) {
        if (a.kind == Action::kTxnDelete) {
          metrics_.releases++;
          ApplyKey(key, KeyEntry{false, 0, 0, "", r->revision});
        } else {
          metrics_.grants++;
          ApplyKey(key, KeyEntry{true, r->revision, sid, a.value, r->revision});
        }
        return true;
      }
      // Lost the race (or the key changed under us): learn the current state
      // from Else's Get.
      if (!r->results.empty() && !r->results[0].range.kvs.empty()) {
        const auto& kv = r->results[0].range.kvs[0];
        ApplyKey(key, KeyEntry{true, kv.mod_revision, kv.lease, kv.value,
                               kv.mod_revision});
      } else {
        ApplyKey(key, KeyEntry{false, 0, 0, "", r->revision});
      }
      return true;  // reconcile again at once with what we learned
    }
  }
  return false;
}

// ---- Events
// ------------------------------------------------------------------------------------

void Controller::PostEvent(const CrView& cr, const EventNote& note) {
  kube::ObjectReference ref;
  ref.api_version = kube::MultiClusterLeaseResource().ApiVersion();
  ref.kind = kube::MultiClusterLeaseResource().kind;
  ref.namespace_ = cr.namespace_;
  ref.name = cr.name;
  ref.uid = cr.uid;
  events_->Record(
      ref, note.warning ? kube::EventType::kWarning : kube::EventType::kNormal,
      note.reason, note.message);
}

// ---- Run
// ---------------------------------------------------------------------------------------

int Controller::Run(const StopFlag* stop) {
  std::map<std::string, HttpServer::Handler> handlers;
  handlers["/metrics"] = [this] {
    return std::make_pair(200, metrics_.Render());
  };
  handlers["/healthz"] = [] {
    return std::make_pair(200, std::string("ok\n"));
  };
  handlers["/readyz"] = [this] {
    bool alive;
    {
      absl::MutexLock l(&mu_);
      alive = tracker_.View(clock_->Monotonic()).alive && keys_known_;
    }
    const bool ready = active_.load() && alive && synced_.load();
    return std::make_pair(
        ready ? 200 : 503,
        std::string(ready            ? "ready\n"
                    : active_.load() ? "not ready: session/informer\n"
                                     : "standby\n"));
  };
  auto port = http_.Start(options_.metrics_address, std::move(handlers));
  if (!port.ok()) {
    LogError("metrics server",
             {{"error", std::string(port.status().message())}});
    return 2;
  }
  LogInfo("metrics listening", {{"address", options_.metrics_address},
                                {"port", absl::StrCat(*port)}});
  LogInfo("starting",
          {{"cluster", options_.cluster},
           {"identity", options_.identity},
           {"etcd", absl::StrJoin(options_.etcd_endpoints, ",")},
           {"key_prefix", options_.key_prefix},
           {"session_ttl", absl::FormatDuration(options_.session_ttl)},
           {"namespace", options_.namespace_}});

  if (!AcquireActive(stop)) {
    LogInfo("stopped while standby");
    http_.Stop();
    return 0;
  }
  active_ = true;
  threads_.emplace_back([this] { RenewActiveLoop(); });

  // The first session decides whether the previous one is adopted; locks are
  // reconciled only after, so that statuses naming a live session are treated
  // as announced grants (design.md §Ack).
  Backoff backoff({absl::Milliseconds(100), absl::Seconds(5), 2.0});
  while (true) {
    absl::Status st = EstablishSession(true);
    if (st.ok()) break;
    LogWarn("cannot reach etcd for the session; retrying",
            {{"error", std::string(st.message())}});
    if (stop->WaitFor(backoff.Next())) break;
  }
  threads_.emplace_back([this] { SessionLoop(); });
  informer_->Start();
  while (!stop->IsSet() && !informer_->WaitForSync(absl::Milliseconds(200))) {
  }
  synced_ = informer_->HasSynced();
  LogInfo("informer synced", {{"locks", absl::StrCat(informer_->Size())}});
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    threads_.emplace_back([this] { WorkerLoop(); });
  }
  EnqueueAll();

  stop->WaitFor(absl::InfiniteDuration());

  // SIGTERM: revoke every lock (waiting for acks, bounded by the ack timeout),
  // then the session.
  const absl::Time t0 = absl::Now();
  LogInfo("shutting down: releasing held locks",
          {{"held", absl::StrCat(LocksHeld())}});
  {
    absl::MutexLock l(&mu_);
    tracker_.SetShuttingDown();
    session_event_ = true;
  }
  EnqueueAll();
  const absl::Duration deadline =
      clock_->Monotonic() + options_.shutdown_timeout;
  {
    // Every release and every loss of the session changes state under mu_,
    // which re-evaluates the condition at once; the one change by time alone
    // is the session's loss deadline, so each wait ends at that at the latest.
    absl::MutexLock l(&mu_);
    auto released = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return LocksHeldLocked() == 0;
    };
    for (absl::Duration now = clock_->Monotonic(); now < deadline;
         now = clock_->Monotonic()) {
      absl::Duration until = deadline;
      if (std::optional<absl::Duration> loss = tracker_.LossDeadline())
        until = std::min(until, *loss);
      if (mu_.AwaitWithTimeout(absl::Condition(&released), until - now)) break;
    }
  }
  const int64_t left = LocksHeld();
  int64_t sid;
  {
    absl::MutexLock l(&mu_);
    sid = tracker_.id();
  }
  if (sid != 0) {
    lease_->StopKeepAlive(sid);
    absl::Status st = lease_->Revoke(sid, absl::Seconds(2));
    if (!st.ok() && !absl::IsNotFound(st)) {
      LogWarn("revoking the session failed; its keys expire with its TTL",
              {{"error", std::string(st.message())}});
    }
  }
  queue_.ShutDown();
  SignalStop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  watch_.reset();
  informer_->Stop();
  ReleaseActive();
  LogInfo("stopped",
          {{"released_after", absl::FormatDuration(absl::Now() - t0)},
           {"left_to_session_revoke", absl::StrCat(left)}});
  http_.Stop();
  return 0;
}

}  // namespace mcl::controller
