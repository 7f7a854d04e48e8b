// What the integration tests of common/kube share on the real test bed:
// MultiClusterLeases labelled with a run name (tests that share one test bed
// select only their own), a holder change, and etcdctl for editing, compacting,
// snapshotting and restoring a cluster's etcd behind its apiserver. Test-only.
#ifndef MCL_COMMON_KUBE_RUN_LEASES_H_
#define MCL_COMMON_KUBE_RUN_LEASES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/kube/client.h"
#include "common/kube/objects.h"

namespace mcl::kube::testing {

// A lease in "default" labelled run=`run`, held by `holder` for 15 s.
MultiClusterLease RunLease(const std::string& run, const std::string& name,
                           const std::string& holder);
// Sets spec.holderIdentity of default/`name` with a merge patch.
absl::StatusOr<MultiClusterLease> SetHolder(KubeClient* client,
                                            const std::string& name,
                                            const std::string& holder);
// Runs etcdctl (v3 API) with `args`; its output, or an error with it.
absl::StatusOr<std::string> Etcdctl(const std::vector<std::string>& args);

}  // namespace mcl::kube::testing

#endif  // MCL_COMMON_KUBE_RUN_LEASES_H_
