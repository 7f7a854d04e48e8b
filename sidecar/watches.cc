#include "sidecar/watches.h"

#include "absl/strings/str_cat.h"
#include "common/kube/informer.h"

namespace mcl::sidecar {
namespace {

// Watches end after this long on the server and are resumed from the last resourceVersion.
constexpr absl::Duration kWatchTimeout = absl::Minutes(5);

class InformerLeaseWatch : public LeaseWatch {
 public:
  InformerLeaseWatch(kube::KubeClient* client, const std::string& ns, LeaseWatchCallbacks cb)
      : ns_(ns), informer_(client, Options(ns, cb.on_error), Handlers(cb)) {
    informer_.Start();
  }
  ~InformerLeaseWatch() override { informer_.Stop(); }
  bool WaitForSync(absl::Duration timeout) override { return informer_.WaitForSync(timeout); }
  bool HasSynced() override { return informer_.HasSynced(); }
  std::optional<kube::MultiClusterLease> Get(const std::string& name) override {
    return informer_.Get(ns_, name);
  }
  absl::Status LastError() override { return informer_.untyped().LastError(); }

 private:
  static kube::InformerOptions Options(const std::string& ns,
                                       std::function<void(const absl::Status&)> on_error) {
    kube::InformerOptions o;
    o.namespace_ = ns;
    o.watch_timeout = kWatchTimeout;
    o.on_error = std::move(on_error);
    return o;
  }
  static kube::TypedInformer<kube::MultiClusterLease>::Handlers Handlers(
      const LeaseWatchCallbacks& cb) {
    kube::TypedInformer<kube::MultiClusterLease>::Handlers h;
    h.on_add = cb.on_upsert;
    h.on_update = [f = cb.on_upsert](const kube::MultiClusterLease&,
                                     const kube::MultiClusterLease& now) { f(now); };
    h.on_delete = cb.on_delete;
    return h;
  }
  std::string ns_;
  kube::TypedInformer<kube::MultiClusterLease> informer_;
};

class InformerHeartbeatWatch : public HeartbeatWatch {
 public:
  InformerHeartbeatWatch(kube::KubeClient* client, const std::string& ns, const std::string& name,
                         HeartbeatCallbacks cb)
      : informer_(client, Options(ns, name), Handlers(cb)) {
    informer_.Start();
  }
  ~InformerHeartbeatWatch() override { informer_.Stop(); }

 private:
  static kube::InformerOptions Options(const std::string& ns, const std::string& name) {
    kube::InformerOptions o;
    o.namespace_ = ns;
    o.field_selector = absl::StrCat("metadata.name=", name);
    o.watch_timeout = kWatchTimeout;
    return o;
  }
  static kube::TypedInformer<kube::Lease>::Handlers Handlers(const HeartbeatCallbacks& cb) {
    kube::TypedInformer<kube::Lease>::Handlers h;
    h.on_add = cb.on_upsert;
    h.on_update = [f = cb.on_upsert](const kube::Lease&, const kube::Lease& now) { f(now); };
    return h;
  }
  kube::TypedInformer<kube::Lease> informer_;
};

class InformerWatchFactory : public WatchFactory {
 public:
  explicit InformerWatchFactory(kube::KubeClient* client) : client_(client) {}
  std::unique_ptr<LeaseWatch> WatchLeases(const std::string& ns, LeaseWatchCallbacks cb) override {
    return std::make_unique<InformerLeaseWatch>(client_, ns, std::move(cb));
  }
  std::unique_ptr<HeartbeatWatch> WatchHeartbeat(const std::string& ns, const std::string& name,
                                                 HeartbeatCallbacks cb) override {
    return std::make_unique<InformerHeartbeatWatch>(client_, ns, name, std::move(cb));
  }

 private:
  kube::KubeClient* client_;
};

}  // namespace

std::unique_ptr<WatchFactory> NewInformerWatchFactory(kube::KubeClient* client) {
  return std::make_unique<InformerWatchFactory>(client);
}

}  // namespace mcl::sidecar
