#include "sidecar/lease_store.h"

#include "common/kube/typed_client.h"

namespace mcl::sidecar {
namespace {

class KubeLeaseStore : public LeaseStore {
 public:
  explicit KubeLeaseStore(kube::KubeClient* client) : client_(client) {}
  absl::StatusOr<kube::MultiClusterLease> Get(
      const std::string& ns, const std::string& name) override {
    return client_.Get(ns, name);
  }
  absl::StatusOr<kube::MultiClusterLease> Create(
      const kube::MultiClusterLease& obj) override {
    return client_.Create(obj);
  }
  absl::StatusOr<kube::MultiClusterLease> Update(
      const kube::MultiClusterLease& obj) override {
    return client_.Update(obj);
  }

 private:
  kube::MultiClusterLeaseClient client_;
};

}  // namespace

std::unique_ptr<LeaseStore> NewKubeLeaseStore(kube::KubeClient* client) {
  return std::make_unique<KubeLeaseStore>(client);
}

}  // namespace mcl::sidecar
