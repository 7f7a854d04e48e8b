#include "controller/controller.h"

#include <malloc.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/backoff.h"
#include "common/contract.h"
#include "common/kube/config.h"
#include "common/log.h"

namespace mcl::controller {

absl::StatusOr<std::unique_ptr<Controller>> Controller::Create(
    ControllerOptions options, Clock* clock) {
  if (options.cluster.empty()) {
    return absl::InvalidArgumentError("--cluster-name is required");
  }
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
  std::unique_ptr<Controller> c(new Controller(std::move(options), clock));
  const ControllerOptions& o = c->options_;
  Controller* self = c.get();

  auto kcfg = kube::LoadConfig(o.kubeconfig);
  if (!kcfg.ok()) return kcfg.status();
  kube::SkipUnusedDefaultCaFile(*kcfg);
  kube::ClientOptions ko;
  ko.clock = clock;
  auto kube = kube::KubeClient::Create(*kcfg, ko);
  if (!kube.ok()) return kube.status();
  c->kube_ = std::move(*kube);
  kube::EventRecorderOptions eo;
  eo.component = "mcl-controller";
  eo.instance = o.identity;
  eo.clock = clock;
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
  ecfg.clock = clock;
  auto etcd = etcd::Client::Create(ecfg);
  if (!etcd.ok()) return etcd.status();
  c->etcd_ = std::move(*etcd);

  c->lease_store_ =
      std::make_unique<KubeLeaseStore>(c->kube_.get(), &c->metrics_);
  c->lock_writer_ =
      std::make_unique<KubeLockWriter>(c->kube_.get(), &c->metrics_);
  c->key_writer_ = std::make_unique<EtcdKeyWriter>(c->etcd_.get());

  ReplicaElectionOptions ro;
  ro.namespace_ = o.namespace_;
  ro.name = contract::ElectionLeaseName(o.cluster);
  ro.identity = o.identity;
  ro.duration = c->election_duration_;
  c->election_ =
      std::make_unique<ReplicaElection>(c->lease_store_.get(), clock, ro);

  ReconcilerConfig rc;
  rc.cluster = o.cluster;
  rc.heartbeat =
      absl::StrCat(o.namespace_, "/", contract::HeartbeatLeaseName(o.cluster));
  rc.default_lease_duration = o.default_lease_duration;
  c->reconciler_ = std::make_unique<LockReconciler>(rc, clock);

  KeyCache::Callbacks kc;
  kc.on_key = [self](const std::string& k) { self->queue_.Add(k); };
  kc.on_resync = [self] { self->EnqueueAll(); };
  kc.on_change = [self] { self->released_.Notify(); };
  c->keys_ = std::make_unique<KeyCache>(c->etcd_.get(), clock, o.key_prefix,
                                        &c->metrics_, kc);

  EtcdSessionOptions so;
  so.ttl = o.session_ttl;
  so.namespace_ = o.namespace_;
  so.heartbeat = contract::HeartbeatLeaseName(o.cluster);
  so.identity = o.identity;
  so.on_state_change = [self] {
    self->released_.Notify();
    self->EnqueueAll();
  };
  c->session_ = std::make_unique<EtcdSession>(
      c->etcd_.get(), c->lease_store_.get(), clock, &c->metrics_, so);

  Executor::Hooks hooks;
  hooks.on_etcd_result = [self](bool ok) {
    self->session_->RecordCallResult(ok);
  };
  hooks.confirm_soon = [self] { self->session_->ConfirmSoon(); };
  c->executor_ = std::make_unique<Executor>(
      c->lock_writer_.get(), c->key_writer_.get(), c->keys_.get(),
      c->reconciler_.get(), clock, &c->metrics_, hooks);

  kube::InformerOptions io;
  if (o.watch_namespaces.size() == 1) io.namespace_ = o.watch_namespaces[0];
  // Thousands of locks, one read per reconcile: keep the cache as text.
  io.compact_cache = true;
  io.on_error = [](const absl::Status& s) {
    LogWarn("MultiClusterLease informer error",
            {{"error", std::string(s.message())}});
  };
  auto enqueue = [self](const kube::Json& obj) {
    auto cr = kube::MultiClusterLease::FromJson(obj);
    if (!cr.ok() || !self->NamespaceWatched(cr->metadata.namespace_)) return;
    const std::string key = cr->metadata.Key();
    std::optional<std::string> holder = cr->spec.holder_identity;
    if (holder && holder->empty()) holder.reset();
    self->table_.Observe(key, cr->metadata.uid, cr->metadata.generation, holder,
                         self->clock_->Monotonic());
    self->queue_.Add(key);
  };
  kube::Informer::Handlers h;
  h.on_add = enqueue;
  h.on_update = [enqueue](const kube::Json&, const kube::Json& obj) {
    enqueue(obj);
  };
  h.on_delete = enqueue;
  // design.md §Confirmation step 2: every renewal up to rv has been observed
  // (the handlers above ran) by this moment; SessionTracker picks, per answered
  // keepalive, the newest such moment before it was sent. Recorded per event,
  // not sampled, so a keepalive sent right after a grant confirms the renewal
  // the grant was based on.
  h.on_synced = [self](const std::string& rv) {
    const int64_t n = kube::ParseResourceVersion(rv).value_or(-1);
    if (n > 0) self->session_->RecordProcessed(n);
  };
  c->informer_ = std::make_unique<kube::Informer>(
      c->kube_.get(), kube::MultiClusterLeaseResource(), io, std::move(h));

  LockWorker::Deps wd;
  wd.informer = c->informer_.get();
  wd.table = &c->table_;
  wd.keys = c->keys_.get();
  wd.session = c->session_.get();
  wd.reconciler = c->reconciler_.get();
  wd.executor = c->executor_.get();
  wd.queue = &c->queue_;
  wd.events = c->events_.get();
  wd.metrics = &c->metrics_;
  wd.clock = clock;
  wd.stopping = [self] { return self->stopping_.load(); };
  c->worker_ = std::make_unique<LockWorker>(wd);
  return c;
}

Controller::Controller(ControllerOptions options, Clock* clock)
    : options_(std::move(options)),
      clock_(clock),
      queue_(clock),
      released_(clock) {
  election_duration_ = options_.election_lease_duration;
  if (election_duration_ <= absl::ZeroDuration()) {
    election_duration_ = std::clamp(options_.session_ttl * 3, absl::Seconds(3),
                                    absl::Seconds(15));
  }
  // On SIGTERM heartbeats stop at once, so after TTL·(1+rho)+m no local
  // candidate can still count itself leader (design.md §Confirmation) and
  // revoking the session is safe for every lock, acked or not. A shorter bound
  // would not be.
  const absl::Duration lapse =
      contract::LapseAfterObservedRenewal(options_.session_ttl);
  if (options_.shutdown_timeout < lapse) options_.shutdown_timeout = lapse;
  metrics_.locks_held = [this] { return LocksHeld(); };
  metrics_.locks_known = [this] {
    return static_cast<int64_t>(informer_ ? informer_->Size() : 0);
  };
  metrics_.queue_depth = [this] { return static_cast<int64_t>(queue_.Len()); };
  metrics_.backend_reachable = [this] { return session_->View().reachable; };
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
  stopping_ = true;
  queue_.ShutDown();
  if (election_) election_->Stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  if (keys_) keys_->Stop();
  if (session_) session_->Stop();
  if (informer_) informer_->Stop();
}

bool Controller::NamespaceWatched(const std::string& ns) const {
  if (options_.watch_namespaces.empty()) return true;
  return std::find(options_.watch_namespaces.begin(),
                   options_.watch_namespaces.end(),
                   ns) != options_.watch_namespaces.end();
}

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
  for (std::string& k : keys_->PresentKeys()) all.insert(std::move(k));
  for (std::string& k : table_.Keys()) all.insert(std::move(k));
  for (const auto& k : all) queue_.Add(k);
}

int64_t Controller::LocksHeld() const {
  return session_->HeldIfAlive(
      [this](int64_t id) { return keys_->KeysHeldBy(id); });
}

HttpReply Controller::Serve(absl::string_view path) {
  if (path == "/metrics") {
    return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_.Render()};
  }
  if (path == "/healthz") return {200, "text/plain", "ok\n"};
  if (path == "/readyz") {
    const bool active = active_.load();
    const bool ready =
        active && session_->View().alive && keys_->known() && synced_.load();
    return {ready ? 200 : 503, "text/plain",
            ready    ? "ready\n"
            : active ? "not ready: session/informer\n"
                     : "standby\n"};
  }
  return {404, "text/plain", "not found; try /metrics, /healthz, /readyz\n"};
}

// Becomes the active replica (false: stopped first), then takes the session
// and starts listing, watching and reconciling.
bool Controller::BecomeActive(const StopFlag* stop) {
  if (!election_->Acquire(stop)) return false;
  active_ = true;
  threads_.emplace_back([this] {
    if (election_->Renew() == ReplicaElection::Outcome::kLost) {
      LogError("exiting so that a standby takes over",
               {{"identity", options_.identity}});
      std::_Exit(1);
    }
  });
  // The first session decides whether the previous one is adopted; locks are
  // reconciled only after, so that statuses naming a live session are treated
  // as announced grants (design.md §Ack).
  Backoff backoff({absl::Milliseconds(100), absl::Seconds(5), 2.0});
  while (true) {
    absl::Status st = session_->Establish(true);
    if (st.ok()) break;
    LogWarn("cannot reach etcd for the session; retrying",
            {{"error", std::string(st.message())}});
    if (stop->WaitFor(backoff.Next())) break;
  }
  session_->Start();
  keys_->Start();
  informer_->Start();
  while (!stop->IsSet() && !informer_->WaitForSync(absl::Milliseconds(200))) {
  }
  synced_ = informer_->HasSynced();
  LogInfo("informer synced", {{"locks", absl::StrCat(informer_->Size())}});
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    threads_.emplace_back([this] {
      std::string key;
      while (queue_.Get(&key)) {
        worker_->Reconcile(key);
        queue_.Done(key);
      }
    });
  }
  EnqueueAll();
  return true;
}

int Controller::Run(const StopFlag* stop) {
  auto http =
      HttpServer::Start(options_.metrics_address, "--metrics-address",
                        [this](absl::string_view path) { return Serve(path); });
  if (!http.ok()) {
    LogError("metrics server",
             {{"error", std::string(http.status().message())}});
    return 2;
  }
  http_ = std::move(*http);
  LogInfo("metrics listening", {{"address", absl::StrJoin(http_->bound(), ",")},
                                {"port", absl::StrCat(http_->port())}});
  LogInfo("starting",
          {{"cluster", options_.cluster},
           {"identity", options_.identity},
           {"etcd", absl::StrJoin(options_.etcd_endpoints, ",")},
           {"key_prefix", options_.key_prefix},
           {"session_ttl", absl::FormatDuration(options_.session_ttl)},
           {"namespace", options_.namespace_}});

  if (!BecomeActive(stop)) {
    LogInfo("stopped while standby");
    http_.reset();
    return 0;
  }
  // Return freed pages after bursts (initial list, mass grants) instead of
  // keeping the peak.
  while (!stop->WaitFor(absl::Seconds(30))) malloc_trim(0);
  Shutdown();
  http_.reset();
  return 0;
}

// SIGTERM: revoke every lock (waiting for acks, bounded by the ack timeout),
// then the session.
void Controller::Shutdown() {
  const absl::Duration t0 = clock_->Monotonic();
  LogInfo("shutting down: releasing held locks",
          {{"held", absl::StrCat(LocksHeld())}});
  session_->SetShuttingDown();
  EnqueueAll();
  // Every release and every loss of the session notifies released_; the one
  // change by time alone is the session's loss deadline, so each wait ends at
  // that at the latest.
  const absl::Duration deadline = t0 + options_.shutdown_timeout;
  for (absl::Duration now = clock_->Monotonic(); now < deadline;
       now = clock_->Monotonic()) {
    if (LocksHeld() == 0) break;
    absl::Duration until = deadline;
    if (std::optional<absl::Duration> loss = session_->LossDeadline()) {
      until = std::min(until, *loss);
    }
    released_.WaitUntil(until);
  }
  const int64_t left = LocksHeld();
  absl::Status st = session_->Revoke(absl::Seconds(2));
  if (!st.ok() && !absl::IsNotFound(st)) {
    LogWarn("revoking the session failed; its keys expire with its TTL",
            {{"error", std::string(st.message())}});
  }
  stopping_ = true;
  queue_.ShutDown();
  election_->Stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  keys_->Stop();
  session_->Stop();
  informer_->Stop();
  election_->Release();
  LogInfo("stopped",
          {{"released_after", absl::FormatDuration(clock_->Monotonic() - t0)},
           {"left_to_session_revoke", absl::StrCat(left)}});
}

}  // namespace mcl::controller
