// Controller: the election controller process of one cluster. Thin adapters
// around the pure LockReconciler: the one MultiClusterLease informer, one etcd
// watch on the key prefix, one etcd session lease (kept alive about every
// TTL/3, shared by every key), a work queue keyed by namespace/name, the
// heartbeat Lease, the replica-election Lease, Events (kube::EventRecorder),
// metrics.
//
// Threads: N workers (reconcile + the one action each plan names), a session
// thread (session (re)creation, the etcd watch, heartbeat writes, reachability
// changes), the replica-election renewer, the event sender and the metrics
// server. Shared state lives under mu_; a lock's LockMemory is touched only by
// the worker that holds the lock's key (the work queue hands a key to one
// worker at a time).
#ifndef MCL_CONTROLLER_CONTROLLER_H_
#define MCL_CONTROLLER_CONTROLLER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/etcd/client.h"
#include "common/etcd/kv.h"
#include "common/etcd/lease.h"
#include "common/etcd/watch.h"
#include "common/kube/client.h"
#include "common/kube/events.h"
#include "common/kube/informer.h"
#include "common/stop_flag.h"
#include "controller/lock_reconciler.h"
#include "controller/metrics.h"
#include "controller/session_tracker.h"
#include "controller/work_queue.h"

namespace mcl::controller {

struct ControllerOptions {
  std::string kubeconfig;  // "" = in-cluster
  std::string cluster;
  std::vector<std::string> etcd_endpoints;
  std::string etcd_ca, etcd_cert, etcd_key;
  std::string etcd_username, etcd_password;
  std::string key_prefix = "/mcl/locks";
  absl::Duration session_ttl = absl::Seconds(10);
  std::string namespace_ = "mcl-system";
  std::vector<std::string> watch_namespaces;  // empty = all
  std::string identity;
  std::string metrics_address = "127.0.0.1:0";
  absl::Duration election_lease_duration =
      absl::ZeroDuration();  // 0: clamp(3·TTL, 3 s, 15 s)
  absl::Duration default_lease_duration = absl::Seconds(15);
  absl::Duration shutdown_timeout =
      absl::ZeroDuration();  // at least TTL·(1+rho) + m
  int workers = 8;
};

class Controller {
 public:
  static absl::StatusOr<std::unique_ptr<Controller>> Create(
      ControllerOptions options);
  ~Controller();

  // Runs until `stop` is set (main sets it on SIGTERM/SIGINT), then releases
  // every lock it holds and returns the process exit code. `stop` must outlive
  // the call.
  int Run(const StopFlag* stop);

 private:
  struct KeyEntry {
    bool present = false;
    int64_t mod_revision = 0;
    int64_t lease = 0;
    std::string raw;
    int64_t rev = 0;  // revision this information is from (a put's
                      // mod_revision, a delete's)
  };
  explicit Controller(ControllerOptions options);

  // Replica election (coordination.k8s.io Lease mcl-controller-<cluster>).
  bool AcquireActive(const StopFlag* stop);
  void RenewActiveLoop();
  void ReleaseActive();

  // etcd session: adopt the heartbeat's session if etcd says it lives, else a
  // new one.
  absl::Status EstablishSession(bool try_adopt);
  absl::Status StartKeyWatch();
  void SessionLoop();
  absl::Status PublishHeartbeat(const Heartbeat& hb);
  // A KV call's result for the tracker; wakes SessionLoop when it changes
  // whether etcd counts as reachable.
  void RecordCallResult(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets stopping_ and wakes SessionLoop.
  void SignalStop();

  void WorkerLoop();
  void ReconcileLock(const std::string& key);
  // Runs the action; false when it failed (requeue with backoff).
  bool Execute(const std::string& key, const kube::Json& cur,
               const CrView* view, const Plan& plan, LockMemory& mem);
  void ApplyKey(const std::string& lock_key, const KeyEntry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  KeyView KeyViewFor(const std::string& lock_key) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::string EtcdKey(const std::string& lock_key) const;
  // "ns/name" of an etcd key under the prefix; "" if it is not a lock key.
  std::string LockKeyOf(const std::string& etcd_key) const;
  bool NamespaceWatched(const std::string& ns) const;
  void EnqueueAll();
  int64_t LocksHeld() const;
  int64_t LocksHeldLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void PostEvent(const CrView& cr, const EventNote& note);

  ControllerOptions options_;
  Clock* clock_ = Clock::Real();
  absl::Duration election_duration_;
  std::string heartbeat_name_;
  std::string election_name_;

  std::unique_ptr<kube::KubeClient> kube_;
  std::unique_ptr<kube::Informer> informer_;
  // Events on the CRs (rate-limited, aggregated, written in the background;
  // destroyed before kube_).
  std::unique_ptr<kube::EventRecorder> events_;
  std::unique_ptr<etcd::Client> etcd_;
  std::unique_ptr<etcd::KV> kv_;
  std::unique_ptr<etcd::Lease> lease_;
  std::unique_ptr<etcd::Watch> watch_;
  std::unique_ptr<LockReconciler> reconciler_;
  WorkQueue queue_{Clock::Real()};
  Metrics metrics_;
  HttpServer http_;

  mutable absl::Mutex mu_;
  SessionTracker tracker_ ABSL_GUARDED_BY(mu_);
  // Wakes SessionLoop: something it reacts to happened (an answered
  // keepalive, a lost session, a watch to restart, etcd's reachability
  // changed, shutdown, stop). Time-driven changes it computes itself.
  bool session_event_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, KeyEntry> keys_ ABSL_GUARDED_BY(mu_);
  bool keys_known_ ABSL_GUARDED_BY(mu_) = false;
  bool watch_needs_restart_ ABSL_GUARDED_BY(mu_) = true;
  std::map<std::string, LockMemory> memory_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, kube::Json> written_
      ABSL_GUARDED_BY(mu_);  // our last write's answer
  std::map<std::string, int> failures_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> warned_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> last_why_ ABSL_GUARDED_BY(mu_);
  kube::Json heartbeat_obj_ ABSL_GUARDED_BY(mu_);

  std::atomic<bool> active_{false};
  StopFlag stopping_;  // set once the locks are released: threads exit
  std::atomic<bool> synced_{false};
  kube::Json election_obj_;  // the election Lease as last written (renewer
                             // thread only)
  absl::Duration election_renewed_at_;

  std::vector<std::thread> threads_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_CONTROLLER_H_
