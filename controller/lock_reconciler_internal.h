// Internals shared by the reconciler's rule files (lock_reconciler.cc,
// lock_reconciler_ours.cc): one reconcile's context and small helpers. Not for
// use outside the reconciler.
#ifndef MCL_CONTROLLER_LOCK_RECONCILER_INTERNAL_H_
#define MCL_CONTROLLER_LOCK_RECONCILER_INTERNAL_H_

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/contract.h"
#include "common/kube/objects.h"
#include "controller/lock_reconciler.h"
#include "controller/lock_status.h"

namespace mcl::controller {
namespace internal {

using Purpose = WriteStatus::Purpose;

inline std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.3gs", absl::ToDoubleSeconds(d));
}

inline bool HasFinalizer(const kube::MultiClusterLease& cr) {
  const auto& f = cr.metadata.finalizers;
  return std::find(f.begin(), f.end(), contract::kFinalizer) != f.end();
}

inline Holder HolderOfKey(const contract::KeyValue& kv) {
  return Holder{kv.holder, kv.instance};
}

}  // namespace internal

struct LockReconciler::Ctx {
  Ctx(const kube::MultiClusterLease* cr_, const KeyView& key_,
      const SessionView& s_, absl::Duration now_, std::string wall_)
      : cr(cr_), key(key_), s(s_), now(now_), wall(std::move(wall_)) {}

  const kube::MultiClusterLease* const cr;
  const KeyView& key;
  const SessionView& s;
  const absl::Duration now;
  const std::string wall;  // metav1.Time of now, for conditions

  std::optional<contract::KeyValue> kv;  // the key's value, when ours or valid
  bool ours = false;  // the key is attached to our live session

  // Set by DesiredConditions (cr != nullptr).
  std::optional<Holder> holder;
  bool candidate_live = false;
  bool want_hold = false;  // live candidate and not shutting down
  absl::Duration lease_duration;
  LockStatus desired;

  Plan plan;

  void Requeue(absl::Duration at) {
    plan.requeue_at = plan.requeue_at ? std::min(*plan.requeue_at, at) : at;
  }
  // A new token is a change of leader. Memory moves only when a status showing
  // it is applied (OnStatusResult), so a write that conflicts and is
  // recomputed still counts it once.
  void CountToken(int64_t token, const LockMemory& mem) {
    if (token > std::max(mem.max_token_seen, cr->status.fencing_token)) {
      desired.transitions = cr->status.transitions + 1;
    }
  }
  // Plans a status write of `desired` when it differs from the CR's.
  bool WriteIfChanged(WriteStatus::Purpose purpose) {
    if (!StatusDiffers(desired, cr->status)) return false;
    WriteStatus w;
    w.status = desired;
    w.precondition_rv = cr->metadata.resource_version;
    w.purpose = purpose;
    plan.action = std::move(w);
    return true;
  }
  void NoLeader(const std::string& reason, const std::string& message) {
    ClearLeader(desired);
    SetCondition(desired, kGlobalLockHeld, false, reason, message, wall);
  }
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_LOCK_RECONCILER_INTERNAL_H_
