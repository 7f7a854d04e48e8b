// Prometheus text metrics of the controller and a tiny HTTP/1.0 server for
// /metrics, /healthz and /readyz (a few GETs per scrape interval; one thread,
// one connection at a time is plenty).
#ifndef MCL_CONTROLLER_METRICS_H_
#define MCL_CONTROLLER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mcl::controller {

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
  std::atomic<int64_t> etcd_requests{
      0};  // unary etcd calls (txn, range, lease)
  std::atomic<int64_t> etcd_errors{0};
  std::atomic<int64_t> status_writes{0};
  std::atomic<int64_t> status_write_errors{0};  // failures other than conflicts
  std::atomic<int64_t> status_conflicts{0};
  std::atomic<int64_t> apiserver_writes{
      0};  // every write: status, finalizer, lease, event
  std::atomic<int64_t> heartbeats{0};
  std::atomic<int64_t> reconciles{0};
  std::atomic<int64_t> keepalives{0};
  Histogram etcd_latency;
  std::function<int64_t()> locks_held;  // gauge, computed on scrape
  std::function<int64_t()> locks_known;
  std::function<int64_t()> queue_depth;
  std::function<int64_t()> events_pending;
  std::function<int64_t()> events_dropped;  // queue full, rate-limited, refused
  std::function<int64_t()> events_written;  // creates + count updates
  std::function<bool()> backend_reachable;
  std::function<bool()> active;

  std::string Render() const;
};

class HttpServer {
 public:
  using Handler = std::function<std::pair<int, std::string>()>;
  HttpServer() = default;
  ~HttpServer();
  // Listens on "host:port" (port 0: any); returns the bound port.
  absl::StatusOr<int> Start(const std::string& address,
                            std::map<std::string, Handler> handlers);
  void Stop();

 private:
  void Serve();
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::map<std::string, Handler> handlers_;
  std::thread thread_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_METRICS_H_
