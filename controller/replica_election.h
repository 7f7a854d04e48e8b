// ReplicaElection: which of a cluster's controller replicas is active, decided
// with a coordination.k8s.io Lease (mcl-controller-<cluster>), in the manner of
// client-go's leaderelection but with every wait on the monotonic clock.
//
// Safety argument (design.md §"Controller election"). A standby takes the
// Lease only after seeing its (holder, renewTime) unchanged for the full
// duration by its own clock, counted from when *it* saw the last change; that
// change was written after the active replica took the time it renews from.
// The active replica counts its fence from that earlier time:
//   fence = last successful renewal's start + duration·(1−rho) − m,
// so by any pair of clocks within the drift bound, the active replica's fence
// passes before a standby can take over. Whoever acts for the replica checks
// Fence() (on the monotonic clock) before every action.
//
// Threads: Acquire() and Renew() block the calling thread (the controller's
// election thread); Fence() and active() are read from any thread; Stop()
// wakes the blocked call.
#ifndef MCL_CONTROLLER_REPLICA_ELECTION_H_
#define MCL_CONTROLLER_REPLICA_ELECTION_H_

#include <atomic>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/kube/objects.h"
#include "common/stop_flag.h"
#include "controller/lease_store.h"

namespace mcl::controller {

struct ReplicaElectionOptions {
  std::string namespace_;
  std::string name;      // contract::ElectionLeaseName(cluster)
  std::string identity;  // this replica
  absl::Duration duration = absl::Seconds(15);
};

class ReplicaElection {
 public:
  enum class Outcome {
    kStopped,  // Stop() was called
    kLost,     // the fence passed without a renewal, or another replica holds
               // the Lease
  };

  ReplicaElection(LeaseStore* store, Clock* clock,
                  ReplicaElectionOptions options);

  // Blocks until this replica holds the Lease (true), or until Stop() or
  // `stop` (false). Polls the Lease every min(1 s, duration/4). `stop` (may be
  // null) must run on the same clock.
  bool Acquire(const StopFlag* stop = nullptr);
  // Renews about every duration/3 until Stop() or `stop` (kStopped), or until
  // the Lease is lost (kLost). After kLost, Fence() is in the past; Acquire()
  // may be called again. `stop` (may be null) must run on the same clock.
  Outcome Renew(const StopFlag* stop = nullptr);
  // Gives the Lease up (holderIdentity cleared) so a standby can take over at
  // once. Only after Renew() returned.
  void Release();

  // The single steps the loops above repeat (tests drive them on a FakeClock).
  // One poll of a standby: true once this replica holds the Lease.
  bool TryAcquire();
  // One step of the active replica at the clock's time: renews when due.
  // Returns the monotonic time of the next step, or nullopt when the Lease is
  // lost.
  std::optional<absl::Duration> RenewStep();
  // Wakes Acquire()/Renew(); they return. Idempotent and final.
  void Stop();

  // The monotonic instant until which this replica may act; zero when it has
  // never held the Lease.
  absl::Duration Fence() const;
  // Holds the Lease and the fence has not passed.
  bool MayAct() const;
  const ReplicaElectionOptions& options() const { return options_; }

 private:
  // Takes the Lease over from `observed` (or creates it); true on success.
  bool Take(const std::optional<kube::Lease>& observed, absl::Duration now);
  void Renewed(const kube::Lease& lease, absl::Duration started);

  LeaseStore* const store_;
  Clock* const clock_;
  const ReplicaElectionOptions options_;
  const absl::Duration fence_after_;  // duration·(1−rho) − m
  StopFlag stop_;

  // Election thread only.
  std::optional<kube::Lease> lease_;  // as last written by us
  absl::Duration renewed_at_;         // start of the last successful write
  absl::Duration next_renewal_;
  std::string observed_;  // holder|renewTime as a standby last saw them
  absl::Duration observed_at_;
  std::string standby_logged_;

  std::atomic<int64_t> fence_ns_{0};  // Fence(), for other threads
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_REPLICA_ELECTION_H_
