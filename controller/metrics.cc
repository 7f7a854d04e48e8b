#include "controller/metrics.h"

#include <malloc.h>

#include "absl/strings/str_cat.h"

namespace mcl::controller {

constexpr std::array<double, 12> Histogram::kBounds;

void Histogram::Observe(absl::Duration d) {
  const double s = absl::ToDoubleSeconds(d);
  size_t i = 0;
  while (i < kBounds.size() && s > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(absl::ToInt64Microseconds(d),
                        std::memory_order_relaxed);
}

void Histogram::Render(const std::string& name, const std::string& help,
                       std::string* out) const {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name,
                  " histogram\n");
  int64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i].load();
    absl::StrAppend(out, name, "_bucket{le=\"", kBounds[i], "\"} ", cumulative,
                    "\n");
  }
  cumulative += buckets_[kBounds.size()].load();
  absl::StrAppend(out, name, "_bucket{le=\"+Inf\"} ", cumulative, "\n");
  absl::StrAppend(out, name, "_sum ",
                  static_cast<double>(sum_micros_.load()) / 1e6, "\n");
  absl::StrAppend(out, name, "_count ", count_.load(), "\n");
}

std::string Metrics::Render() const {
  std::string out;
  auto counter = [&](const char* name, const char* help, int64_t v) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name,
                    " counter\n", name, " ", v, "\n");
  };
  auto gauge = [&](const char* name, const char* help, int64_t v) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name,
                    " gauge\n", name, " ", v, "\n");
  };
  gauge("mcl_controller_locks_held",
        "Global locks this controller holds in etcd.",
        locks_held ? locks_held() : 0);
  gauge("mcl_controller_locks_known",
        "MultiClusterLeases in the informer cache.",
        locks_known ? locks_known() : 0);
  gauge("mcl_controller_queue_depth", "Locks waiting to be reconciled.",
        queue_depth ? queue_depth() : 0);
  gauge("mcl_controller_events_pending", "Events queued for the apiserver.",
        events_pending ? events_pending() : 0);
  gauge("mcl_controller_backend_reachable", "1 when etcd answers.",
        backend_reachable && backend_reachable() ? 1 : 0);
  gauge("mcl_controller_active",
        "1 while this replica acts for the cluster (active, fenced, epoch "
        "held).",
        active && active() ? 1 : 0);
  gauge("mcl_controller_standing_down",
        "1 while this replica stands down (releasing, then standby).",
        standing_down && standing_down() ? 1 : 0);
  absl::StrAppend(&out,
                  "# HELP mcl_build_info The build of this process.\n"
                  "# TYPE mcl_build_info gauge\n"
                  "mcl_build_info{component=\"controller\",version=\"",
                  kVersion, "\"} 1\n");
  // Live heap (glibc), to tell data from allocator slack when reading RSS.
  gauge("mcl_controller_heap_inuse_bytes",
        "Bytes allocated and not freed (glibc mallinfo2).",
        static_cast<int64_t>(mallinfo2().uordblks));
  counter("mcl_controller_contention_attempts_total",
          "Create-if-absent transactions sent.", contention_attempts.load());
  counter("mcl_controller_grants_total", "Keys created or re-pointed.",
          grants.load());
  counter("mcl_controller_releases_total", "Keys deleted on release.",
          releases.load());
  counter("mcl_controller_etcd_requests_total", "Unary etcd requests.",
          etcd_requests.load());
  counter("mcl_controller_etcd_errors_total", "Failed unary etcd requests.",
          etcd_errors.load());
  counter("mcl_controller_keepalives_total", "Answered session keepalives.",
          keepalives.load());
  counter("mcl_controller_stand_downs_total",
          "Times this replica stood down (Lease lost, deposed, apiserver "
          "gone).",
          stand_downs.load());
  counter("mcl_controller_status_writes_total", "Status writes sent.",
          status_writes.load());
  counter("mcl_controller_status_write_errors_total",
          "Status writes that failed (not conflicts).",
          status_write_errors.load());
  counter("mcl_controller_status_conflicts_total",
          "Status writes refused as stale (409).", status_conflicts.load());
  counter("mcl_controller_apiserver_writes_total",
          "Apiserver writes for locks and liveness: status, finalizers, the "
          "heartbeat Lease (Events: mcl_controller_event_writes_total).",
          apiserver_writes.load());
  counter("mcl_controller_heartbeats_total", "Heartbeat Lease writes.",
          heartbeats.load());
  counter("mcl_controller_reconciles_total", "Per-lock reconciles.",
          reconciles.load());
  counter("mcl_controller_events_dropped_total",
          "Events not written (queue full, rate-limited, or refused by the "
          "apiserver).",
          events_dropped ? events_dropped() : 0);
  counter("mcl_controller_event_writes_total",
          "core/v1 Event writes (creates and repeat-count updates).",
          events_written ? events_written() : 0);
  etcd_latency.Render("mcl_controller_etcd_request_duration_seconds",
                      "Latency of unary etcd requests.", &out);
  return out;
}

}  // namespace mcl::controller
