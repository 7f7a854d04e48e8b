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

// A view of any version whose resourceVersion is an integer. A status session
// TTL outside what a controller may be configured with (contract.h
// CheckSessionTtl) is dropped (session_ttl_ms 0: the status confirms nothing)
// and the reason is left in `refused_confirmation` for the caller to log.
absl::StatusOr<LeaseView> ToLeaseView(const kube::MultiClusterLease& obj);
// nullopt when the Lease carries no confirmation yet (an annotation missing);
// an error, which the caller logs, when it carries one that cannot be
// believed: a number that does not parse, or a session TTL outside what a
// controller may be configured with, which would let one corrupt or forged
// heartbeat extend a sidecar's validity without bound.
absl::StatusOr<std::optional<Confirmation>> ToConfirmation(
    const kube::Lease& lease);

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_KUBE_VIEW_H_
