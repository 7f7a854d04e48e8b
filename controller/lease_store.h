// Where the controller's coordination.k8s.io Leases live (the heartbeat Lease
// and the replica-election Lease): an interface in front of the typed kube
// client, so the replica election and the heartbeat publisher run against an
// in-memory store in unit tests, and against the apiserver in the binary.
#ifndef MCL_CONTROLLER_LEASE_STORE_H_
#define MCL_CONTROLLER_LEASE_STORE_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/kube/client.h"
#include "common/kube/objects.h"
#include "common/kube/typed_client.h"
#include "controller/apiserver_health.h"
#include "controller/metrics.h"

namespace mcl::controller {

class LeaseStore {
 public:
  virtual ~LeaseStore() = default;
  // NOT_FOUND when absent.
  virtual absl::StatusOr<kube::Lease> Get(const std::string& ns,
                                          const std::string& name) = 0;
  // ALREADY_EXISTS when someone created it first.
  virtual absl::StatusOr<kube::Lease> Create(const kube::Lease& lease) = 0;
  // Conditional on lease.metadata.resource_version (kube::IsConflict when
  // stale).
  virtual absl::StatusOr<kube::Lease> Update(const kube::Lease& lease) = 0;
};

// The apiserver's Leases; counts each write in metrics.apiserver_writes and
// reports each call's outcome to `health` (may be null).
class KubeLeaseStore : public LeaseStore {
 public:
  KubeLeaseStore(kube::KubeClient* client, Metrics* metrics,
                 ApiserverHealth* health)
      : leases_(client), metrics_(metrics), health_(health) {}
  absl::StatusOr<kube::Lease> Get(const std::string& ns,
                                  const std::string& name) override {
    return TrackedCall(health_, [&] { return leases_.Get(ns, name); });
  }
  absl::StatusOr<kube::Lease> Create(const kube::Lease& lease) override {
    metrics_->apiserver_writes++;
    return TrackedCall(health_, [&] { return leases_.Create(lease); });
  }
  absl::StatusOr<kube::Lease> Update(const kube::Lease& lease) override {
    metrics_->apiserver_writes++;
    return TrackedCall(health_, [&] { return leases_.Update(lease); });
  }

 private:
  kube::LeaseClient leases_;
  Metrics* metrics_;
  ApiserverHealth* health_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_LEASE_STORE_H_
