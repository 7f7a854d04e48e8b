// Command-line flags of mcl-sidecar, parsed without global state so they are
// unit-tested. Accepts --name=value and --name value; --help prints Usage().
#ifndef MCL_SIDECAR_FLAGS_H_
#define MCL_SIDECAR_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mcl::sidecar {

struct SidecarFlags {
  std::string kubeconfig;  // "": $KUBECONFIG, else in-cluster
  std::string listen = "127.0.0.1:7400";
  // Permissions of a unix socket (--listen=unix:...): who may connect. Owner
  // only by default; 0660 lets the pod's group (fsGroup) in.
  unsigned socket_mode = 0600;
  // "": $POD_NAMESPACE, else the kubeconfig's (the pod's) namespace.
  std::string namespace_;
  std::string identity;  // "": "$POD_NAME_$POD_UID"
  // "": learned from the local controller's heartbeat Lease name.
  std::string cluster_name;
  absl::Duration lease_duration = absl::Seconds(15);
  std::string metrics_address;  // "": no metrics/health HTTP endpoint
  absl::Duration shutdown_grace = absl::Seconds(10);
  absl::Duration request_timeout = absl::Seconds(5);
  bool help = false;
};

std::string Usage();
// InvalidArgument naming the flag and what is wrong with it.
absl::StatusOr<SidecarFlags> ParseFlags(const std::vector<std::string>& args);

// The gRPC API listens on loopback only: 127.0.0.0/8, [::1], localhost (with a
// port) or a unix socket ("unix:///path", "unix:path"). Anything else is
// refused with a message saying why.
absl::Status ValidateListenAddress(const std::string& address);

// The filesystem path of a "unix:" listen address ("" for any other).
std::string UnixSocketPath(const std::string& address);

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_FLAGS_H_
