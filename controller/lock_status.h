// The MultiClusterLease status as the controller writes it: its conditions and
// the rule for "does this change need a write" (docs/design.md §"Controller
// reconcile": status is written only on change). Pure functions over the one
// typed model (common/kube/objects.h).
#ifndef MCL_CONTROLLER_LOCK_STATUS_H_
#define MCL_CONTROLLER_LOCK_STATUS_H_

#include <string>

#include "common/kube/objects.h"

namespace mcl::controller {

// Condition types (metav1.Condition) of a MultiClusterLease status.
inline constexpr char kBackendReachable[] = "BackendReachable";
inline constexpr char kGlobalLockHeld[] = "GlobalLockHeld";
inline constexpr char kCandidateLive[] = "CandidateLive";

using LockStatus = kube::MultiClusterLeaseStatus;

// The condition of `type`, or nullptr.
const kube::Condition* FindCondition(const LockStatus& s,
                                     const std::string& type);

// Sets a condition, keeping lastTransitionTime while its status does not
// change. `now` is RFC 3339 (metav1.Time).
void SetCondition(LockStatus& s, const std::string& type, bool ok,
                  const std::string& reason, const std::string& message,
                  const std::string& now);

// Clears every field that names a leader (leader, cluster, instance,
// acquireTime, token, session, heartbeat, session TTL).
void ClearLeader(LockStatus& s);

// True when a and b differ in anything a reader acts on. observedGeneration and
// the confirmation fields change with every renewal; comparing them would turn
// every renewal into a status write.
bool StatusDiffers(const LockStatus& a, const LockStatus& b);

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_LOCK_STATUS_H_
