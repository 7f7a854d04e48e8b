// The Kubernetes API's time formats, in a dependency-free target of their own
// so pure code (the controller's reconciler) formats times exactly as the
// client does, without linking the client.
#ifndef MCL_COMMON_KUBE_TIME_H_
#define MCL_COMMON_KUBE_TIME_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mcl::kube {

// RFC 3339 with microseconds in UTC, the wire form of metav1.MicroTime
// ("2026-01-02T03:04:05.123456Z").
std::string FormatMicroTime(absl::Time t);
// RFC 3339 with seconds in UTC, metav1.Time.
std::string FormatKubeTime(absl::Time t);
absl::StatusOr<absl::Time> ParseKubeTime(absl::string_view s);

}  // namespace mcl::kube

#endif  // MCL_COMMON_KUBE_TIME_H_
