#include "sidecar/watches.h"

#include "absl/strings/str_cat.h"
#include "common/kube/informer.h"

namespace mcl::sidecar {
namespace {

// Watches end on the server after this long, stretched at random up to twice
// as long (kube::JitteredWatchTimeout), and are resumed from the last
// resourceVersion.
constexpr absl::Duration kWatchTimeout = absl::Minutes(5);

// Decodes `j` as T; reports a failure to `on_error` (if any) and returns
// nullopt.
template <typename T>
std::optional<T> Decode(
    const kube::Json& j,
    const std::function<void(const absl::Status&)>& on_error) {
  auto t = T::FromJson(j);
  if (!t.ok()) {
    if (on_error) on_error(t.status());
    return std::nullopt;
  }
  return std::move(*t);
}

// The untyped Informer is used (not TypedInformer) because an update needs only
// the new object: decoding the old one too would double the sidecar's idle CPU
// per event.
class InformerLeaseWatch : public LeaseWatch {
 public:
  InformerLeaseWatch(kube::KubeClient* client, const std::string& ns,
                     LeaseWatchCallbacks cb)
      : ns_(ns),
        informer_(client, kube::MultiClusterLease::resource(),
                  Options(ns, cb.on_error), Handlers(cb)) {
    informer_.Start();
  }
  ~InformerLeaseWatch() override { informer_.Stop(); }
  bool WaitForSync(absl::Duration timeout) override {
    return informer_.WaitForSync(timeout);
  }
  bool HasSynced() override { return informer_.HasSynced(); }
  std::optional<kube::MultiClusterLease> Get(const std::string& name) override {
    kube::ObjectPtr p = informer_.Get(ns_, name);
    if (p == nullptr) return std::nullopt;
    return Decode<kube::MultiClusterLease>(*p, nullptr);
  }
  absl::Status LastError() override { return informer_.LastError(); }

 private:
  static kube::InformerOptions Options(
      const std::string& ns,
      std::function<void(const absl::Status&)> on_error) {
    kube::InformerOptions o;
    o.namespace_ = ns;
    o.watch_timeout = kWatchTimeout;
    o.on_error = std::move(on_error);
    return o;
  }
  static kube::Informer::Handlers Handlers(const LeaseWatchCallbacks& cb) {
    kube::Informer::Handlers h;
    h.on_add = [cb](const kube::Json& j) {
      if (auto o = Decode<kube::MultiClusterLease>(j, cb.on_error))
        cb.on_upsert(*o);
    };
    h.on_update = [cb](const kube::Json&, const kube::Json& j) {
      if (auto o = Decode<kube::MultiClusterLease>(j, cb.on_error))
        cb.on_upsert(*o);
    };
    h.on_delete = [cb](const kube::Json& j) {
      if (auto o = Decode<kube::MultiClusterLease>(j, cb.on_error))
        cb.on_delete(*o);
    };
    return h;
  }
  std::string ns_;
  kube::Informer informer_;
};

class InformerHeartbeatWatch : public HeartbeatWatch {
 public:
  InformerHeartbeatWatch(kube::KubeClient* client, const std::string& ns,
                         const std::string& name, HeartbeatCallbacks cb)
      : informer_(client, kube::Lease::resource(), Options(ns, name),
                  Handlers(cb)) {
    informer_.Start();
  }
  ~InformerHeartbeatWatch() override { informer_.Stop(); }

 private:
  static kube::InformerOptions Options(const std::string& ns,
                                       const std::string& name) {
    kube::InformerOptions o;
    o.namespace_ = ns;
    o.field_selector = absl::StrCat("metadata.name=", name);
    o.watch_timeout = kWatchTimeout;
    return o;
  }
  static kube::Informer::Handlers Handlers(const HeartbeatCallbacks& cb) {
    kube::Informer::Handlers h;
    h.on_add = [cb](const kube::Json& j) {
      if (auto l = Decode<kube::Lease>(j, nullptr)) cb.on_upsert(*l);
    };
    h.on_update = [cb](const kube::Json&, const kube::Json& j) {
      if (auto l = Decode<kube::Lease>(j, nullptr)) cb.on_upsert(*l);
    };
    return h;
  }
  kube::Informer informer_;
};

class InformerWatchFactory : public WatchFactory {
 public:
  explicit InformerWatchFactory(kube::KubeClient* client) : client_(client) {}
  std::unique_ptr<LeaseWatch> WatchLeases(const std::string& ns,
                                          LeaseWatchCallbacks cb) override {
    return std::make_unique<InformerLeaseWatch>(client_, ns, std::move(cb));
  }
  std::unique_ptr<HeartbeatWatch> WatchHeartbeat(
      const std::string& ns, const std::string& name,
      HeartbeatCallbacks cb) override {
    return std::make_unique<InformerHeartbeatWatch>(client_, ns, name,
                                                    std::move(cb));
  }

 private:
  kube::KubeClient* client_;
};

}  // namespace

std::unique_ptr<WatchFactory> NewInformerWatchFactory(
    kube::KubeClient* client) {
  return std::make_unique<InformerWatchFactory>(client);
}

}  // namespace mcl::sidecar
