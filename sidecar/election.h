// Election: the sidecar's core, between the gRPC service (service.h) and the
// Kubernetes API. It wires together
//   * LockTable (lock_table.h): the campaign bookkeeping and the pure state
//     machines (leadership.h, candidacy.h), under one mutex, no I/O;
//   * Subscriptions (subscriptions.h): the MultiClusterLease watches, one per
//     namespace, and the heartbeat Lease watches, on informer threads;
//   * SpecWriter (spec_writer.h): the thread that makes the spec writes;
//   * DeadlineTimer (deadline_timer.h): the thread that sends LOST at each
//     campaign's deadline, whatever the writer's requests are doing;
// and answers the API (election_api.h): it waits for a namespace's first sync
// and asks the apiserver directly when the watch is failing, outside every
// mutex, on the caller's thread (a gRPC worker).
#ifndef MCL_SIDECAR_ELECTION_H_
#define MCL_SIDECAR_ELECTION_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "sidecar/deadline_timer.h"
#include "sidecar/election_api.h"
#include "sidecar/lease_store.h"
#include "sidecar/lock_table.h"
#include "sidecar/spec_writer.h"
#include "sidecar/subscriptions.h"
#include "sidecar/watches.h"

namespace mcl::sidecar {

struct ElectionOptions {
  std::string default_namespace = "default";
  std::string default_identity;
  // This sidecar's cluster ("" = learn it from status.heartbeat; see
  // Leadership::Options).
  std::string cluster;
  absl::Duration default_lease_duration = absl::Seconds(15);
  // How long Campaign/Leader wait for a namespace's first sync before
  // UNAVAILABLE.
  absl::Duration sync_timeout = absl::Seconds(5);
  Clock* clock = Clock::Real();
};

class Election : public ElectionApi {
 public:
  Election(ElectionOptions options, std::unique_ptr<LeaseStore> store,
           std::unique_ptr<WatchFactory> watches);
  ~Election() override;
  Election(const Election&) = delete;
  Election& operator=(const Election&) = delete;

  const ElectionOptions& options() const { return options_; }

  LockKey Key(const std::string& ns, const std::string& name) const override;
  std::string Identity(const std::string& requested) const override;
  absl::Duration DefaultLeaseDuration() const override {
    return options_.default_lease_duration;
  }
  absl::StatusOr<uint64_t> StartCampaign(
      const LockKey& key, const std::string& identity,
      absl::Duration lease_duration, std::shared_ptr<EventSink> sink) override;
  void EndCampaign(uint64_t id, const std::string& reason) override;
  void Resign(const LockKey& key, const std::string& identity,
              std::function<void(absl::StatusOr<bool>)> done) override;
  absl::StatusOr<uint64_t> StartObserve(
      const LockKey& key, std::shared_ptr<EventSink> sink) override;
  void EndObserve(uint64_t id) override;
  absl::StatusOr<Grant> Leader(const LockKey& key) override;

  // SIGTERM: resign every campaign (LOST first), wait up to `grace` (on the
  // monotonic clock) for the spec writes, end every stream. Further calls
  // fail with UNAVAILABLE.
  void Shutdown(absl::Duration grace);

  std::map<std::string, LockMetrics> Metrics() { return table_.Metrics(); }
  // The apiserver has been reachable since the last error (for /healthz and
  // tests).
  bool Healthy() { return subscriptions_.Healthy(); }

 private:
  // The namespace's watch once it has synced. UNAVAILABLE when it does not
  // sync in time, or when the watch is failing and a direct read of `key`
  // fails too. When that read was made, `*probe` receives its result
  // (nullopt: not found).
  absl::StatusOr<LeaseWatch*> SyncedWatch(
      const LockKey& key,
      std::optional<std::optional<kube::MultiClusterLease>>* probe = nullptr);

  const ElectionOptions options_;
  const std::unique_ptr<LeaseStore> store_;
  const std::unique_ptr<WatchFactory> watches_;
  // Notified when a campaign is removed (Shutdown waits on it).
  Wakeup campaign_removed_;
  // Built in this order, destroyed in reverse after ~Election stopped the
  // watches (whose callbacks reach the table, and through its hooks the
  // writer and the timer): the writer first (its thread may still arm the
  // timer), then the timer (its thread calls only the table and itself), then
  // the table.
  LockTable table_;
  Subscriptions subscriptions_;
  DeadlineTimer timer_;
  SpecWriter writer_;
};

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_ELECTION_H_
