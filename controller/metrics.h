// Prometheus text metrics of the controller (served on /metrics by
// common/http_server). Counters are atomics bumped by whichever thread does the
// counted thing; gauges are computed on scrape by the functions the controller
// installs.
#ifndef MCL_CONTROLLER_METRICS_H_
#define MCL_CONTROLLER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/time/time.h"

namespace mcl::controller {

// The version of this build (the chart's appVersion; mcl_build_info).
inline constexpr char kVersion[] = "0.1.0";

class Histogram {
 public:
  static constexpr std::array<double, 12> kBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
  void Observe(absl::Duration d);
  void Render(const std::string& name, const std::string& help,
              std::string* out) const;

 private:
  std::array<std::atomic<int64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> sum_micros_{0};
};

struct Metrics {
  std::atomic<int64_t> contention_attempts{0};  // Txn create-if-absent sent
  std::atomic<int64_t> grants{0};    // creates and re-points that succeeded
  std::atomic<int64_t> releases{0};  // deletes that succeeded
  // Unary etcd calls (txn, range, lease).
  std::atomic<int64_t> etcd_requests{0};
  std::atomic<int64_t> etcd_errors{0};
  std::atomic<int64_t> status_writes{0};
  std::atomic<int64_t> status_write_errors{0};  // failures other than conflicts
  std::atomic<int64_t> status_conflicts{0};
  // Writes for locks and liveness: status, finalizer, heartbeat and election
  // Leases (Events apart).
  std::atomic<int64_t> apiserver_writes{0};
  std::atomic<int64_t> heartbeats{0};
  std::atomic<int64_t> reconciles{0};
  std::atomic<int64_t> keepalives{0};
  std::atomic<int64_t> stand_downs{0};
  Histogram etcd_latency;
  std::function<int64_t()> locks_held;  // gauge, computed on scrape
  std::function<int64_t()> locks_known;
  std::function<int64_t()> queue_depth;
  std::function<int64_t()> events_pending;
  std::function<int64_t()> events_dropped;  // queue full, rate-limited, refused
  std::function<int64_t()> events_written;  // creates + count updates
  std::function<bool()> backend_reachable;
  std::function<bool()> active;
  std::function<bool()> standing_down;

  std::string Render() const;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_METRICS_H_
