// EtcdSession: the controller's one etcd session lease and everything that
// follows from it (design.md §Confirmation, §"Controller reconcile" rule 7):
//   - establishing it: adopting the session the heartbeat Lease names when etcd
//     says it still lives (a standby taking over keeps every grant), else a
//     new one; a lost session is replaced, with backoff;
//   - the keepalive answers, fed to the SessionTracker (confirmation and loss
//     bookkeeping);
//   - publishing confirmations in the heartbeat Lease after each answered
//     keepalive whose c advanced, only while may_publish() (this replica is
//     active and fenced); a failed write is retried (the same confirmation,
//     session_tracker.h) after 10 ms, then backing off to 2 s;
//   - a lost session's keys: released (epoch-guarded deletes, through
//     release_keys) once its release deadline has passed and etcd answers,
//     never by revoking the lease (another replica may have adopted it);
//   - ConfirmSoon(): an extra keepalive now, after a grant, so the heartbeat
//     that follows within milliseconds confirms the new holder's latest
//     renewal instead of the next periodic one (design.md §"Failover
//     timings").
//
// Threads: Establish() runs on the caller's thread; Start() runs the session
// loop on a thread of its own, which sleeps until an event (an answered
// keepalive, a lost session, a change of etcd's reachability, Stop()) or its
// next deadline (loss or unreachability by time, a retry), on the monotonic
// clock. The etcd keepalive thread calls into the tracker. Every other method
// is thread-safe. on_state_change runs on the session loop's thread.
#ifndef MCL_CONTROLLER_ETCD_SESSION_H_
#define MCL_CONTROLLER_ETCD_SESSION_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/etcd/client.h"
#include "common/etcd/session.h"
#include "common/kube/objects.h"
#include "controller/lease_store.h"
#include "controller/metrics.h"
#include "controller/session_tracker.h"

namespace mcl::controller {

struct EtcdSessionOptions {
  absl::Duration ttl = absl::Seconds(10);
  std::string namespace_;  // of the heartbeat Lease
  std::string heartbeat;   // its name: contract::HeartbeatLeaseName(cluster)
  std::string identity;    // this replica, as the heartbeat's holder
  // Called when the session view changes in a way every lock's status shows
  // (alive, reachable, session id) or its publication freezes or thaws.
  std::function<void()> on_state_change;
  // Whether this replica may publish confirmations now (fence, epoch).
  std::function<bool()> may_publish;
  // Releases the keys still attached to a lost session; OK when done.
  std::function<absl::Status(int64_t session_id)> release_keys;
  // Whether the heartbeat's session may be adopted (not abandoned).
  std::function<bool(int64_t session_id)> adoptable;
};

class EtcdSession {
 public:
  EtcdSession(etcd::Client* etcd, LeaseStore* leases, Clock* clock,
              Metrics* metrics, EtcdSessionOptions options);
  ~EtcdSession();  // Stop()

  // The first session: adopts the heartbeat's session if etcd says it lives
  // (`try_adopt`), else grants a new one. Locks must be reconciled only after
  // it, so that statuses naming a live session count as announced grants.
  absl::Status Establish(bool try_adopt);
  // Starts the session loop. Start/Stop may alternate (standing down and
  // rejoining).
  void Start();
  // Ends the loop and the session's keepalive (the lease is not revoked: it
  // expires after its TTL unless another replica keeps it alive).
  void Stop();

  SessionView View() const;
  int64_t id() const;
  // The loss deadline of the current session (none without a live one).
  std::optional<absl::Duration> LossDeadline() const;
  // Keys held by the current session if it is alive, per `held_by`.
  int64_t HeldIfAlive(const std::function<int64_t(int64_t)>& held_by) const;

  // The informer has processed every change up to `rv` (design.md
  // §Confirmation step 2). Informer thread.
  void RecordProcessed(int64_t rv);
  // An etcd KV call's result (a failure makes etcd unreachable until the next
  // success or answered keepalive).
  void RecordCallResult(bool ok);
  // Sends the next keepalive now (after a grant).
  void ConfirmSoon();
  // Wakes the session loop (may_publish() may have changed).
  void Wake() { Notify(); }
  // From now on no heartbeat is published: after ReleaseDeadline() no local
  // candidate can still count itself leader.
  void SetShuttingDown();
  // A status write carried the confirmation whose S is `sent_at`.
  void NotePublishAttempt(absl::Duration sent_at);
  // The moment from which no local candidate can count itself leader on a
  // confirmation of the current session (session_tracker.h).
  absl::Duration ReleaseDeadline() const;

 private:
  etcd::SessionOptions SessionCallbacks();
  struct LoopState;
  // The session loop: each turn retires a lost session, releases the keys of
  // lost ones, replaces the session, reports state changes, publishes, then
  // sleeps until NextWake.
  void Loop();
  // Moves a lost session to lost_; whether a new one is needed.
  bool RetireLostSession(absl::Duration now, bool* shutting_down);
  void ReleaseLostKeys(absl::Duration now, LoopState* st);
  void ReportStateChange(LoopState* st);
  void PublishStep(LoopState* st);
  absl::Duration NextWake(absl::Duration now, const LoopState& st);
  absl::Status PublishHeartbeat(const Heartbeat& hb);
  void Notify();

  etcd::Client* const etcd_;
  LeaseStore* const leases_;
  Clock* const clock_;
  Metrics* const metrics_;
  const EtcdSessionOptions options_;

  mutable absl::Mutex mu_;
  SessionTracker tracker_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<etcd::Session> session_ ABSL_GUARDED_BY(mu_);
  // The heartbeat Lease as last written (re-read after a failure).
  std::optional<kube::Lease> heartbeat_ ABSL_GUARDED_BY(mu_);

  struct Lost {
    int64_t id;
    absl::Duration release_at;
  };
  // Lost sessions whose keys are still to be released (loop thread only).
  std::vector<Lost> lost_;

  std::atomic<bool> stopping_{false};
  Wakeup wake_;  // an event the loop reacts to
  std::thread thread_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_ETCD_SESSION_H_
