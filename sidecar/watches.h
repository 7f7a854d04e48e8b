// WatchFactory over the one kube Informer (common/kube/informer.h): one
// informer per namespace for MultiClusterLeases, one per heartbeat Lease (a
// field selector on its name).
#ifndef MCL_SIDECAR_WATCHES_H_
#define MCL_SIDECAR_WATCHES_H_

#include <memory>

#include "common/kube/client.h"
#include "sidecar/election.h"

namespace mcl::sidecar {

std::unique_ptr<WatchFactory> NewInformerWatchFactory(kube::KubeClient* client);

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_WATCHES_H_
