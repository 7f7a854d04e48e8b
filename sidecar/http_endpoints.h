// What the sidecar serves over HTTP (--metrics-address), as a pure function
// of what the core reports, so it is unit-tested without a server:
//
//   /metrics  Prometheus text: per lock mcl_sidecar_is_leader,
//             mcl_sidecar_leader_transitions_total,
//             mcl_sidecar_renew_errors_total; and
//             mcl_sidecar_apiserver_reachable (1/0).
//   /healthz  liveness: 200 while the core answers (its mutex is not stuck).
//             Never fails because the kube-apiserver is unreachable: an
//             outage of the control plane must not make the kubelet restart
//             every sidecar of the cluster (issue 17).
//   /readyz   200 while the kube-apiserver watches work, 503 with the error
//             otherwise: for dashboards and alerts, not meant as the pod's
//             readiness probe (that would take the app out of its Services
//             during an apiserver outage).
#ifndef MCL_SIDECAR_HTTP_ENDPOINTS_H_
#define MCL_SIDECAR_HTTP_ENDPOINTS_H_

#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "common/http_server.h"
#include "sidecar/election_api.h"

namespace mcl::sidecar {

using ::mcl::HttpReply;

struct HttpSources {
  // Per lock "namespace/name"; takes the core's mutex.
  std::function<std::map<std::string, LockMetrics>()> metrics;
  // OK while the kube-apiserver watches work; their last error otherwise.
  std::function<absl::Status()> apiserver;
};

HttpReply ServeHttp(absl::string_view path, const HttpSources& sources);

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_HTTP_ENDPOINTS_H_
