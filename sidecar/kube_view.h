// Conversions from the API objects (common/kube) to the plain values the
// sidecar's state machines read: a MultiClusterLease version to a LeaseView, a
// heartbeat Lease to a Confirmation. The resourceVersions are parsed as
// integers (design.md §Confirmation 5); an object whose resourceVersion is not
// an integer is rejected rather than mis-ordered.
#ifndef MCL_SIDECAR_KUBE_VIEW_H_
#define MCL_SIDECAR_KUBE_VIEW_H_

#include <optional>

#include "absl/status/statusor.h"
#include "common/kube/objects.h"
#include "sidecar/lease_view.h"

namespace mcl::sidecar {

absl::StatusOr<LeaseView> ToLeaseView(const kube::MultiClusterLease& obj);
// nullopt when the Lease carries no (complete, well-formed) confirmation.
std::optional<Confirmation> ToConfirmation(const kube::Lease& lease);

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_KUBE_VIEW_H_
