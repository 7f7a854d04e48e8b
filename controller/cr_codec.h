// Conversions between the MultiClusterLease JSON of the apiserver and the
// reconciler's views. Never throws; a field of the wrong type is an error
// naming it (kube::JsonReader).
#ifndef MCL_CONTROLLER_CR_CODEC_H_
#define MCL_CONTROLLER_CR_CODEC_H_

#include "absl/status/statusor.h"
#include "common/kube/json.h"
#include "controller/lock_reconciler.h"

namespace mcl::controller {

absl::StatusOr<CrView> CrViewFromJson(const kube::Json& obj);
// status as the CRD spells it; empty/zero fields omitted.
kube::Json StatusToJson(const LockStatus& s);
// `obj` with its status replaced by `s` and metadata.resourceVersion set to
// `rv` (the precondition).
kube::Json WithStatus(const kube::Json& obj, const LockStatus& s,
                      const std::string& rv);
// `obj` with the finalizer added or removed (keeping the others),
// preconditioned on its own resourceVersion.
kube::Json WithFinalizer(const kube::Json& obj, const std::string& finalizer,
                         bool present);
// resourceVersion compared as an integer (design.md §Confirmation 5); -1 when
// not a number.
int64_t RvNumber(const std::string& rv);

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_CR_CODEC_H_
