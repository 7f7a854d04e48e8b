// What `mcl status` reads: the sidecar's Prometheus text at /metrics (the
// sidecar has no RPC that lists its campaigns; its per-lock
// mcl_sidecar_campaigns gauge says which locks it campaigns for).
#ifndef MCL_CLIENT_STUBS_CPP_METRICS_H_
#define MCL_CLIENT_STUBS_CPP_METRICS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mcl::cli {

struct LockMetrics {
  bool is_leader = false;    // mcl_sidecar_is_leader
  int64_t transitions = 0;   // mcl_sidecar_leader_transitions_total
  int64_t renew_errors = 0;  // mcl_sidecar_renew_errors_total
  // mcl_sidecar_campaigns: campaigns not ended. None from a sidecar older
  // than the gauge (then every lock it served is listed).
  std::optional<int64_t> campaigns;
};

// Per lock ("namespace/name"), from the text exposition format. Lines of other
// metrics are skipped; a malformed mcl_sidecar_* line is an error naming it.
absl::StatusOr<std::map<std::string, LockMetrics>> ParseSidecarMetrics(
    const std::string& text);

// The body of GET http://host_port/path (HTTP/1.0, plain; loopback use),
// bounded by `timeout`. UNAVAILABLE for connection failures and non-200
// answers.
absl::StatusOr<std::string> HttpGet(const std::string& host_port,
                                    const std::string& path,
                                    absl::Duration timeout);

}  // namespace mcl::cli

#endif  // MCL_CLIENT_STUBS_CPP_METRICS_H_
