// LeaseStore: the MultiClusterLease calls the sidecar makes with its own
// identity (spec writes and the reads that decide after a conflict), as an
// interface so that Election is unit-tested on a fake (sidecar/testing/
// fake_kube.h) and a FakeClock, without an apiserver.
//
// Every call blocks until the apiserver answers or the client's request
// timeout passes (--request-timeout); callers never hold a mutex across one.
#ifndef MCL_SIDECAR_LEASE_STORE_H_
#define MCL_SIDECAR_LEASE_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/kube/client.h"
#include "common/kube/objects.h"

namespace mcl::sidecar {

class LeaseStore {
 public:
  virtual ~LeaseStore() = default;
  // NOT_FOUND when the object does not exist.
  virtual absl::StatusOr<kube::MultiClusterLease> Get(
      const std::string& ns, const std::string& name) = 0;
  // ALREADY_EXISTS when it does; NOT_FOUND when the namespace does not exist.
  virtual absl::StatusOr<kube::MultiClusterLease> Create(
      const kube::MultiClusterLease& obj) = 0;
  // Preconditioned on obj.metadata.resource_version: kube::IsConflict() when
  // the object changed since; NOT_FOUND when it is gone.
  virtual absl::StatusOr<kube::MultiClusterLease> Update(
      const kube::MultiClusterLease& obj) = 0;
};

// Over the Kubernetes API (the client is not owned and must outlive it).
std::unique_ptr<LeaseStore> NewKubeLeaseStore(kube::KubeClient* client);

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_LEASE_STORE_H_
