#include "sidecar/testing/fake_kube.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/contract.h"
#include "common/kube/errors.h"

namespace mcl::sidecar::testing {
namespace {

std::string Key(const std::string& ns, const std::string& name) {
  return ns + "/" + name;
}

// The error the apiserver answers, through the real client's parser.
absl::Status ApiError(int code, const std::string& reason,
                      const std::string& message, const std::string& method,
                      const std::string& path) {
  std::string body = absl::StrCat(
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)",
      R"("message":")", message, R"(","reason":")", reason, R"(","code":)",
      code, "}");
  return kube::StatusFromResponse(code, "application/json", body, method,
                                  absl::StrCat("https://127.0.0.1", path));
}

std::string Path(const std::string& ns, const std::string& name = "") {
  return absl::StrCat("/apis/mcl.dev/v1alpha1/namespaces/", ns,
                      "/multiclusterleases", name.empty() ? "" : "/", name);
}

}  // namespace

class FakeKube::Store_ : public LeaseStore {
 public:
  explicit Store_(FakeKube* k) : k_(k) {}
  absl::StatusOr<kube::MultiClusterLease> Get(
      const std::string& ns, const std::string& name) override {
    return k_->StoreGet(ns, name);
  }
  absl::StatusOr<kube::MultiClusterLease> Create(
      const kube::MultiClusterLease& obj) override {
    return k_->Create(obj);
  }
  absl::StatusOr<kube::MultiClusterLease> Update(
      const kube::MultiClusterLease& obj) override {
    return k_->Update(obj);
  }

 private:
  FakeKube* k_;
};

class FakeKube::LeaseWatch_ : public LeaseWatch {
 public:
  LeaseWatch_(FakeKube* k, std::string ns, LeaseWatchCallbacks cb)
      : k_(k), ns_(std::move(ns)), cb_(std::move(cb)) {
    k_->Register(this);
  }
  ~LeaseWatch_() override { k_->Unregister(this); }
  bool WaitForSync(absl::Duration) override { return true; }
  bool HasSynced() override { return true; }
  std::optional<kube::MultiClusterLease> Get(const std::string& name) override {
    absl::MutexLock l(&mu_);
    auto it = cache_.find(name);
    if (it == cache_.end()) return std::nullopt;
    return it->second;
  }
  absl::Status LastError() override {
    absl::MutexLock l(&mu_);
    return last_error_;
  }

  const std::string& ns() const { return ns_; }
  // The watch's list: the cache starts with what exists.
  void Fill(const std::map<std::string, kube::MultiClusterLease>& objects) {
    absl::MutexLock l(&mu_);
    for (const auto& [k, o] : objects) {
      if (o.metadata.namespace_ == ns_) cache_[o.metadata.name] = o;
    }
  }
  // On the delivery thread: the cache first, then the callback (as the
  // informer does). Versions the cache already has are not delivered again.
  void Deliver(const Event& e) {
    if (e.kind == Event::kError) {
      {
        absl::MutexLock l(&mu_);
        last_error_ = e.error;
      }
      cb_.on_error(e.error);
      return;
    }
    const std::string& name = e.obj.metadata.name;
    const int64_t rv = std::stoll(e.obj.metadata.resource_version);
    {
      absl::MutexLock l(&mu_);
      last_error_ = absl::OkStatus();
      auto it = cache_.find(name);
      const int64_t have =
          it == cache_.end() ? 0
                             : std::stoll(it->second.metadata.resource_version);
      if (e.kind == Event::kUpsert) {
        if (rv <= have) return;
        cache_[name] = e.obj;
      } else {
        if (it == cache_.end()) return;
        cache_.erase(it);
      }
    }
    if (e.kind == Event::kUpsert) {
      cb_.on_upsert(e.obj);
    } else {
      cb_.on_delete(e.obj);
    }
  }

 private:
  FakeKube* k_;
  const std::string ns_;
  const LeaseWatchCallbacks cb_;
  absl::Mutex mu_;
  std::map<std::string, kube::MultiClusterLease> cache_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
};

class FakeKube::HeartbeatWatch_ : public HeartbeatWatch {
 public:
  HeartbeatWatch_(FakeKube* k, std::string key, HeartbeatCallbacks cb)
      : k_(k), key_(std::move(key)), cb_(std::move(cb)) {
    k_->Register(this);
  }
  ~HeartbeatWatch_() override { k_->Unregister(this); }
  const std::string& key() const { return key_; }
  void Deliver(const kube::Lease& l) { cb_.on_upsert(l); }

 private:
  FakeKube* k_;
  const std::string key_;
  const HeartbeatCallbacks cb_;
};

class FakeKube::Factory_ : public WatchFactory {
 public:
  explicit Factory_(FakeKube* k) : k_(k) {}
  std::unique_ptr<LeaseWatch> WatchLeases(const std::string& ns,
                                          LeaseWatchCallbacks cb) override {
    return std::make_unique<LeaseWatch_>(k_, ns, std::move(cb));
  }
  std::unique_ptr<HeartbeatWatch> WatchHeartbeat(
      const std::string& ns, const std::string& name,
      HeartbeatCallbacks cb) override {
    return std::make_unique<HeartbeatWatch_>(k_, Key(ns, name), std::move(cb));
  }

 private:
  FakeKube* k_;
};

FakeKube::FakeKube() {
  namespaces_.insert("default");
  delivery_ = std::thread([this] { DeliveryLoop(); });
}

FakeKube::~FakeKube() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  delivery_.join();
}

std::unique_ptr<LeaseStore> FakeKube::Store() {
  return std::make_unique<Store_>(this);
}

std::unique_ptr<WatchFactory> FakeKube::Watches() {
  return std::make_unique<Factory_>(this);
}

void FakeKube::AddNamespace(const std::string& ns) {
  absl::MutexLock l(&mu_);
  namespaces_.insert(ns);
}

std::optional<kube::MultiClusterLease> FakeKube::Get(const std::string& ns,
                                                     const std::string& name) {
  absl::MutexLock l(&mu_);
  auto it = objects_.find(Key(ns, name));
  if (it == objects_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<kube::MultiClusterLease> FakeKube::StoreGet(
    const std::string& ns, const std::string& name) {
  absl::MutexLock l(&mu_);
  MaybeHold(/*read=*/true);
  auto it = objects_.find(Key(ns, name));
  if (it == objects_.end()) {
    return ApiError(
        404, "NotFound",
        absl::StrCat("multiclusterleases.mcl.dev \\\"", name, "\\\" not found"),
        "GET", Path(ns, name));
  }
  return it->second;
}

void FakeKube::MaybeHold(bool read) {
  if (!hold_ || (read && !hold_reads_)) return;
  ++held_;
  auto released = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !hold_ || stopping_;
  };
  mu_.Await(absl::Condition(&released));
}

absl::Status FakeKube::TakeWriteFault() {
  // A failing write fails at once; the others may hang.
  if (fault_count_ > 0) {
    --fault_count_;
    return fault_;
  }
  MaybeHold(/*read=*/false);
  return absl::OkStatus();
}

absl::StatusOr<kube::MultiClusterLease> FakeKube::Create(
    const kube::MultiClusterLease& obj) {
  absl::MutexLock l(&mu_);
  if (absl::Status s = TakeWriteFault(); !s.ok()) return s;
  const std::string& ns = obj.metadata.namespace_;
  const std::string& name = obj.metadata.name;
  if (namespaces_.count(ns) == 0) {
    return ApiError(404, "NotFound",
                    absl::StrCat("namespaces \\\"", ns, "\\\" not found"),
                    "POST", Path(ns));
  }
  if (objects_.count(Key(ns, name)) > 0) {
    return ApiError(409, "AlreadyExists",
                    absl::StrCat("multiclusterleases.mcl.dev \\\"", name,
                                 "\\\" already exists"),
                    "POST", Path(ns));
  }
  kube::MultiClusterLease stored;
  stored.metadata.namespace_ = ns;
  stored.metadata.name = name;
  stored.metadata.resource_version = absl::StrCat(++rv_);
  stored.spec = obj.spec;  // a create's status is dropped (/status only)
  objects_[Key(ns, name)] = stored;
  ++writes_;
  Enqueue(Event{Event::kUpsert, ns, stored, {}, {}, nullptr});
  return stored;
}

absl::StatusOr<kube::MultiClusterLease> FakeKube::Update(
    const kube::MultiClusterLease& obj) {
  absl::MutexLock l(&mu_);
  if (absl::Status s = TakeWriteFault(); !s.ok()) return s;
  const std::string& ns = obj.metadata.namespace_;
  const std::string& name = obj.metadata.name;
  auto it = objects_.find(Key(ns, name));
  if (it == objects_.end()) {
    return ApiError(
        404, "NotFound",
        absl::StrCat("multiclusterleases.mcl.dev \\\"", name, "\\\" not found"),
        "PUT", Path(ns, name));
  }
  if (!obj.metadata.resource_version.empty() &&
      obj.metadata.resource_version != it->second.metadata.resource_version) {
    return ApiError(
        409, "Conflict",
        absl::StrCat("Operation cannot be fulfilled on "
                     "multiclusterleases.mcl.dev \\\"",
                     name,
                     "\\\": the object has been modified; please apply your "
                     "changes to the latest version and try again"),
        "PUT", Path(ns, name));
  }
  it->second.spec = obj.spec;  // status changes only through /status
  it->second.metadata.resource_version = absl::StrCat(++rv_);
  ++writes_;
  Enqueue(Event{Event::kUpsert, ns, it->second, {}, {}, nullptr});
  return it->second;
}

absl::StatusOr<kube::MultiClusterLease> FakeKube::UpdateStatus(
    const std::string& ns, const std::string& name,
    const std::function<void(kube::MultiClusterLeaseStatus&)>& edit) {
  absl::MutexLock l(&mu_);
  auto it = objects_.find(Key(ns, name));
  if (it == objects_.end())
    return absl::NotFoundError(absl::StrCat(ns, "/", name, " not found"));
  edit(it->second.status);
  it->second.metadata.resource_version = absl::StrCat(++rv_);
  Enqueue(Event{Event::kUpsert, ns, it->second, {}, {}, nullptr});
  return it->second;
}

absl::Status FakeKube::Delete(const std::string& ns, const std::string& name) {
  absl::MutexLock l(&mu_);
  auto it = objects_.find(Key(ns, name));
  if (it == objects_.end())
    return absl::NotFoundError(absl::StrCat(ns, "/", name, " not found"));
  kube::MultiClusterLease last = it->second;
  last.metadata.resource_version = absl::StrCat(++rv_);
  objects_.erase(it);
  Enqueue(Event{Event::kDelete, ns, last, {}, {}, nullptr});
  return absl::OkStatus();
}

void FakeKube::PublishHeartbeat(const std::string& ns, const std::string& name,
                                const std::string& session,
                                int64_t confirmed_rv, absl::Duration ttl) {
  absl::MutexLock l(&mu_);
  kube::Lease& lease = heartbeats_[Key(ns, name)];
  lease.metadata.namespace_ = ns;
  lease.metadata.name = name;
  lease.metadata.resource_version = absl::StrCat(++rv_);
  auto& a = lease.metadata.annotations;
  a[contract::kSessionAnnotation] = session;
  a[contract::kConfirmedResourceVersionAnnotation] = absl::StrCat(confirmed_rv);
  a[contract::kSessionTtlAnnotation] =
      absl::StrCat(absl::ToInt64Milliseconds(ttl));
  Event e{Event::kHeartbeat, ns, {}, lease, {}, nullptr};
  Enqueue(std::move(e));
}

int64_t FakeKube::rv() {
  absl::MutexLock l(&mu_);
  return rv_;
}

int FakeKube::writes() {
  absl::MutexLock l(&mu_);
  return writes_;
}

bool FakeKube::WaitFor(
    const std::string& ns, const std::string& name,
    const std::function<bool(const std::optional<kube::MultiClusterLease>&)>&
        pred,
    absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = objects_.find(Key(ns, name));
    return pred(it == objects_.end()
                    ? std::nullopt
                    : std::optional<kube::MultiClusterLease>(it->second));
  };
  return mu_.AwaitWithTimeout(absl::Condition(&holds), timeout);
}

void FakeKube::HoldWrites(bool on, bool reads) {
  absl::MutexLock l(&mu_);
  hold_ = on;
  hold_reads_ = on && reads;
}

bool FakeKube::WaitForHeldWrites(int n, absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto reached = [&]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return held_ >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

void FakeKube::FailWrites(const absl::Status& s, int n) {
  absl::MutexLock l(&mu_);
  fault_ = s;
  fault_count_ = n;
}

void FakeKube::PauseWatches(bool paused) {
  absl::MutexLock l(&mu_);
  paused_ = paused;
}

void FakeKube::FailWatch(const std::string& ns, const absl::Status& s) {
  absl::MutexLock l(&mu_);
  Enqueue(Event{Event::kError, ns, {}, {}, s, nullptr});
}

bool FakeKube::DrainWatches(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.empty() && !delivering_;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&drained), timeout);
}

void FakeKube::Enqueue(Event e) { queue_.push_back(std::move(e)); }

void FakeKube::Register(LeaseWatch_* w) {
  absl::MutexLock l(&mu_);
  w->Fill(objects_);
  lease_watches_.insert(w);
}

void FakeKube::Unregister(LeaseWatch_* w) {
  absl::MutexLock l(&mu_);
  // Not while the delivery thread may be calling into it.
  auto idle = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !delivering_; };
  mu_.Await(absl::Condition(&idle));
  lease_watches_.erase(w);
}

void FakeKube::Register(HeartbeatWatch_* w) {
  absl::MutexLock l(&mu_);
  heartbeat_watches_.insert(w);
  auto it = heartbeats_.find(w->key());
  if (it != heartbeats_.end()) {
    // The watch's list, to this watch only.
    Enqueue(Event{Event::kHeartbeat,
                  it->second.metadata.namespace_,
                  {},
                  it->second,
                  {},
                  w});
  }
}

void FakeKube::Unregister(HeartbeatWatch_* w) {
  absl::MutexLock l(&mu_);
  auto idle = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !delivering_; };
  mu_.Await(absl::Condition(&idle));
  heartbeat_watches_.erase(w);
}

void FakeKube::DeliveryLoop() {
  for (;;) {
    Event e;
    std::vector<LeaseWatch_*> leases;
    std::vector<HeartbeatWatch_*> beats;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || (!paused_ && !queue_.empty());
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      e = std::move(queue_.front());
      queue_.pop_front();
      delivering_ = true;
      if (e.kind == Event::kHeartbeat) {
        const std::string key =
            Key(e.lease.metadata.namespace_, e.lease.metadata.name);
        for (HeartbeatWatch_* w : heartbeat_watches_) {
          if (w->key() == key && (e.only == nullptr || e.only == w))
            beats.push_back(w);
        }
      } else {
        for (LeaseWatch_* w : lease_watches_) {
          if (w->ns() == e.ns) leases.push_back(w);
        }
      }
    }
    // Outside mu_: the callbacks take the code under test's mutexes, which
    // may call back in here (a new watch registers).
    for (LeaseWatch_* w : leases) w->Deliver(e);
    for (HeartbeatWatch_* w : beats) w->Deliver(e.lease);
    absl::MutexLock l(&mu_);
    delivering_ = false;
  }
}

}  // namespace mcl::sidecar::testing
