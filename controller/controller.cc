// Controller's construction and wiring (controller.h): options, clients, the
// parts and the callbacks that connect them, metrics and probes. The lifecycle
// is controller_lifecycle.cc.
#include "controller/controller.h"

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/contract.h"
#include "common/kube/config.h"
#include "common/log.h"

namespace mcl::controller {

namespace {

// Refuses what cannot work, with the flag to fix; normalizes the key prefix.
absl::Status CheckOptions(ControllerOptions* o) {
  if (o->cluster.empty()) {
    return absl::InvalidArgumentError("--cluster-name is required");
  }
  if (o->etcd_endpoints.empty()) {
    return absl::InvalidArgumentError("--etcd-endpoints is required");
  }
  // Sidecars believe only TTLs in this range (a confirmation is worth about
  // one TTL of leadership), so a controller outside it could grant nothing.
  if (absl::Status ttl = contract::CheckSessionTtl(o->session_ttl); !ttl.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--session-ttl: ", ttl.message()));
  }
  while (o->key_prefix.size() > 1 && o->key_prefix.back() == '/') {
    o->key_prefix.pop_back();
  }
  return absl::OkStatus();
}

etcd::ClientConfig EtcdConfig(const ControllerOptions& o, Clock* clock) {
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
  return ecfg;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Controller>> Controller::Create(
    ControllerOptions options, Clock* clock) {
  if (absl::Status st = CheckOptions(&options); !st.ok()) return st;
  std::unique_ptr<Controller> c(new Controller(std::move(options), clock));
  if (absl::Status st = c->Connect(); !st.ok()) return st;
  c->BuildElection();
  c->BuildKeyCache();
  c->BuildSession();
  c->BuildExecutor();
  c->BuildInformer();
  c->BuildWorker();
  return c;
}

absl::Status Controller::Connect() {
  const ControllerOptions& o = options_;
  auto kcfg = kube::LoadConfig(o.kubeconfig);
  if (!kcfg.ok()) return kcfg.status();
  kube::SkipUnusedDefaultCaFile(*kcfg);
  kube::ClientOptions ko;
  ko.clock = clock_;
  auto kube = kube::KubeClient::Create(*kcfg, ko);
  if (!kube.ok()) return kube.status();
  kube_ = std::move(*kube);
  // A write that hangs (an apiserver stopping, a path holding bytes) must not
  // hold the heartbeat or the replica Lease for long.
  kube::ClientOptions wo = ko;
  wo.request_timeout =
      std::clamp(o.session_ttl, absl::Seconds(2), absl::Seconds(15));
  auto writes = kube::KubeClient::Create(*kcfg, wo);
  if (!writes.ok()) return writes.status();
  kube_writes_ = std::move(*writes);
  kube::EventRecorderOptions eo;
  eo.component = "mcl-controller";
  eo.instance = o.identity;
  eo.clock = clock_;
  events_ = std::make_unique<kube::EventRecorder>(kube_.get(), eo);

  auto etcd = etcd::Client::Create(EtcdConfig(o, clock_));
  if (!etcd.ok()) return etcd.status();
  etcd_ = std::move(*etcd);
  return absl::OkStatus();
}

void Controller::BuildElection() {
  const ControllerOptions& o = options_;
  // The apiserver counts as unreachable once the latest call failed and none
  // answered for a third of the TTL (a keepalive period): one error is not an
  // outage.
  apiserver_ = std::make_unique<ApiserverHealth>(
      clock_, o.session_ttl / 3, [this] { lifecycle_wake_.Notify(); });
  lease_store_ = std::make_unique<KubeLeaseStore>(kube_writes_.get(), &metrics_,
                                                  apiserver_.get());
  lock_writer_ = std::make_unique<KubeLockWriter>(kube_writes_.get(), &metrics_,
                                                  apiserver_.get());
  key_writer_ = std::make_unique<EtcdKeyWriter>(etcd_.get());

  ReplicaElectionOptions ro;
  ro.namespace_ = o.namespace_;
  ro.name = contract::ElectionLeaseName(o.cluster);
  ro.identity = o.identity;
  ro.duration = election_duration_;
  election_ = std::make_unique<ReplicaElection>(lease_store_.get(), clock_, ro);
  epoch_ = std::make_unique<ReplicaEpoch>(
      key_writer_.get(), contract::ReplicaEpochKey(o.key_prefix, o.cluster),
      o.identity, [this] { lifecycle_wake_.Notify(); });

  ReconcilerConfig rc;
  rc.cluster = o.cluster;
  rc.heartbeat =
      absl::StrCat(o.namespace_, "/", contract::HeartbeatLeaseName(o.cluster));
  rc.default_lease_duration = o.default_lease_duration;
  reconciler_ = std::make_unique<LockReconciler>(rc, clock_);
}

void Controller::BuildKeyCache() {
  KeyCache::Callbacks kc;
  kc.on_key = [this](const std::string& k) { queue_.Add(k); };
  kc.on_resync = [this] { EnqueueAll(); };
  kc.on_change = [this] { released_.Notify(); };
  kc.on_epoch = [this](const std::string& cluster, int64_t revision) {
    if (cluster == options_.cluster) epoch_->Observe(revision);
  };
  // A key watch that hears nothing (not even progress) for half a TTL is
  // re-established: a delete must not wait behind a stuck member.
  keys_ = std::make_unique<KeyCache>(
      etcd_.get(), clock_, options_.key_prefix,
      std::max(absl::Seconds(1), options_.session_ttl / 2), &metrics_, kc);
}

void Controller::BuildSession() {
  EtcdSessionOptions so;
  so.ttl = options_.session_ttl;
  so.namespace_ = options_.namespace_;
  so.heartbeat = contract::HeartbeatLeaseName(options_.cluster);
  so.identity = options_.identity;
  so.on_state_change = [this] {
    released_.Notify();
    lifecycle_wake_.Notify();
    EnqueueAll();
  };
  so.may_publish = [this] { return MayAct(); };
  so.release_keys = [this](int64_t id) { return executor_->ReleaseHeld(id); };
  so.adoptable = [this](int64_t id) { return epoch_->AdoptAllowed(id); };
  session_ = std::make_unique<EtcdSession>(etcd_.get(), lease_store_.get(),
                                           clock_, &metrics_, so);
}

void Controller::BuildExecutor() {
  Executor::Hooks hooks;
  hooks.may_act = [this] { return MayAct(); };
  hooks.on_etcd_result = [this](bool ok) { session_->RecordCallResult(ok); };
  hooks.confirm_soon = [this] { session_->ConfirmSoon(); };
  hooks.on_publish_attempt = [this](absl::Duration s) {
    session_->NotePublishAttempt(s);
  };
  executor_ = std::make_unique<Executor>(
      lock_writer_.get(), key_writer_.get(), keys_.get(), epoch_.get(),
      reconciler_.get(), clock_, &metrics_, hooks);
}

void Controller::BuildInformer() {
  kube::InformerOptions io;
  if (options_.watch_namespaces.size() == 1) {
    io.namespace_ = options_.watch_namespaces[0];
  }
  // Thousands of locks, one read per reconcile: keep the cache as text.
  io.compact_cache = true;
  // After an apiserver outage the controller rejoins at once (L3), but acts
  // on a stale cache until its watch is back: retry at most a second apart.
  io.backoff = {absl::Milliseconds(100), absl::Seconds(1), 2.0};
  io.on_error = [](const absl::Status& s) {
    LogWarn("MultiClusterLease informer error",
            {{"error", std::string(s.message())}});
  };
  auto enqueue = [this](const kube::Json& obj) { Observe(obj); };
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
  h.on_synced = [this](const std::string& rv) {
    const int64_t n = kube::ParseResourceVersion(rv).value_or(-1);
    if (n > 0) session_->RecordProcessed(n);
  };
  informer_ = std::make_unique<kube::Informer>(
      kube_.get(), kube::MultiClusterLeaseResource(), io, std::move(h));
}

void Controller::Observe(const kube::Json& obj) {
  auto cr = kube::MultiClusterLease::FromJson(obj);
  if (!cr.ok() || !NamespaceWatched(cr->metadata.namespace_)) return;
  const std::string key = cr->metadata.Key();
  // Renewals are timed per candidacy (identity and instance).
  const std::optional<Holder> holder = HolderOf(*cr);
  table_.Observe(
      key, cr->metadata.uid, cr->metadata.generation,
      holder ? std::optional<std::string>(holder->Key()) : std::nullopt,
      clock_->Monotonic());
  queue_.Add(key);
}

void Controller::BuildWorker() {
  LockWorker::Deps wd;
  wd.informer = informer_.get();
  wd.table = &table_;
  wd.keys = keys_.get();
  wd.session = session_.get();
  wd.reconciler = reconciler_.get();
  wd.executor = executor_.get();
  wd.queue = &queue_;
  wd.events = events_.get();
  wd.metrics = &metrics_;
  wd.clock = clock_;
  wd.stopping = [this] { return stopping_.load(); };
  wd.may_act = [this] { return MayAct(); };
  worker_ = std::make_unique<LockWorker>(wd);
}

Controller::Controller(ControllerOptions options, Clock* clock)
    : options_(std::move(options)),
      clock_(clock),
      queue_(clock),
      released_(clock),
      lifecycle_wake_(clock) {
  election_duration_ = options_.election_lease_duration;
  if (election_duration_ <= absl::ZeroDuration()) {
    election_duration_ = std::clamp(options_.session_ttl * 3, absl::Seconds(3),
                                    absl::Seconds(15));
  }
  // On SIGTERM heartbeats stop at once, so after TTL·(1+rho)+m no local
  // candidate can still count itself leader (design.md §Confirmation) and
  // deleting the keys is safe for every lock, acked or not. A shorter bound
  // would not be.
  const absl::Duration lapse =
      contract::LapseAfterObservedRenewal(options_.session_ttl);
  if (options_.shutdown_timeout < lapse) options_.shutdown_timeout = lapse;
  WireMetrics();
}

// The gauges read the parts when rendered; parts built later (informer_,
// session_) exist by the time the HTTP server starts, in Run().
void Controller::WireMetrics() {
  metrics_.locks_held = [this] { return LocksHeld(); };
  metrics_.locks_known = [this] {
    return static_cast<int64_t>(informer_ ? informer_->Size() : 0);
  };
  metrics_.queue_depth = [this] { return static_cast<int64_t>(queue_.Len()); };
  metrics_.backend_reachable = [this] { return session_->View().reachable; };
  metrics_.active = [this] { return acting_.load(); };
  metrics_.standing_down = [this] {
    return state_.load() == State::kStandingDown;
  };
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
  acting_ = false;
  queue_.ShutDown();
  if (election_) election_->Stop();
  StopRenewer();
  for (auto& t : workers_) {
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

bool Controller::MayAct() const {
  return acting_.load() && election_->MayAct() && epoch_->Held();
}

// Probes (issue 17): liveness never depends on the apiserver or etcd;
// readiness does not depend on being the active replica (a standby is a ready
// pod, so rollouts and drains proceed); /activez says whether this replica
// serves the locks.
HttpReply Controller::Serve(absl::string_view path) {
  if (path == "/metrics") {
    return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_.Render()};
  }
  if (path == "/healthz") return {200, "text/plain", "ok\n"};
  const State state = state_.load();
  const char* role = state == State::kActive         ? "active"
                     : state == State::kStandingDown ? "standing down"
                                                     : "standby";
  if (path == "/readyz") {
    return {200, "text/plain", absl::StrCat("ready (", role, ")\n")};
  }
  if (path == "/activez") {
    if (!MayAct()) {
      return {503, "text/plain", absl::StrCat("not active (", role, ")\n")};
    }
    const bool serving =
        session_->View().alive && keys_->known() && synced_.load();
    return {serving ? 200 : 503, "text/plain",
            serving ? "active\n"
                    : "active, not serving yet: etcd session, key watch or "
                      "informer\n"};
  }
  return {404, "text/plain",
          "not found; try /metrics, /healthz, /readyz, /activez\n"};
}

}  // namespace mcl::controller
