// Input checks for the public API, with messages that say what to fix
// (proto/mcl/v1/election.proto, "Error codes"). Pure functions.
#ifndef MCL_SIDECAR_VALIDATE_H_
#define MCL_SIDECAR_VALIDATE_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"

namespace mcl::sidecar {

// A Kubernetes object name: DNS-1123 subdomain (lowercase alphanumerics, '-',
// '.', at most 253, starting and ending with an alphanumeric). `field` names
// the request field in the message.
absl::Status ValidateLockName(const std::string& name,
                              const std::string& field);
// A namespace: DNS-1123 label (at most 63, no '.').
absl::Status ValidateNamespace(const std::string& ns, const std::string& field);
// At most 128 bytes of printable ASCII without spaces (the CRD's
// spec.holderIdentity pattern).
absl::Status ValidateIdentity(const std::string& identity,
                              const std::string& field);
// 0 (default) or within [2, 3600] seconds.
absl::Status ValidateLeaseDuration(int64_t seconds, const std::string& field);

// Longest candidate identity (the CRD's bound on spec.holderIdentity).
inline constexpr size_t kMaxIdentityLength = 128;

// "<pod name>_<pod uid>" from the downward API, or "" when POD_NAME is unset.
// A name too long for that is cut (the UID keeps it unique), so the default is
// always a valid identity.
std::string IdentityFromEnv();

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_VALIDATE_H_
