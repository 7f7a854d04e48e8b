// Controller: the election controller process of one cluster, as wiring of its
// parts (controller/README.md has the map):
//   ReplicaElection  which replica is active (coordination.k8s.io Lease)
//   EtcdSession      the one etcd session lease, keepalives, heartbeat Lease
//   KeyCache         the lock keys in etcd (list + watch)
//   kube::Informer   the MultiClusterLeases (text cache)
//   LockTable        per-lock memory, one owner at a time
//   WorkQueue + LockWorker × N   reconcile (LockReconciler) and act (Executor)
//   HttpServer       /metrics, /healthz, /readyz, /activez
//
//   ReplicaEpoch     this replica's epoch in etcd; guards every Txn
//
// Create() builds and wires the parts (controller.cc); Run() is the lifecycle
// (controller_lifecycle.cc; design.md §"Stand-down"): serve HTTP; wait to
// become the active replica; claim the replica epoch; adopt or start the
// session; list, watch, reconcile. It stands down, keeping the process, when
// the replica Lease is lost (its fence passed), when another replica claimed
// a newer epoch (deposed), or when no confirmation could be published until
// the release deadline (the apiserver is gone): it stops acting at once,
// releases its keys (epoch-guarded) once no local candidate can still count
// itself leader, stops its session, and goes back to waiting for the Lease.
// On stop (SIGTERM) it revokes and releases every held lock (waiting for
// acks, bounded by TTL·(1+rho)+m), deletes what is left, gives up the Lease.
//
// Threads: the lifecycle runs on the caller's thread of Run(); the replica
// Lease is renewed on a thread per activation; the parts above run their
// own (controller/README.md).
#ifndef MCL_CONTROLLER_CONTROLLER_H_
#define MCL_CONTROLLER_CONTROLLER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/etcd/client.h"
#include "common/http_server.h"
#include "common/kube/client.h"
#include "common/kube/events.h"
#include "common/kube/informer.h"
#include "common/stop_flag.h"
#include "controller/apiserver_health.h"
#include "controller/etcd_session.h"
#include "controller/executor.h"
#include "controller/key_cache.h"
#include "controller/lease_store.h"
#include "controller/lock_reconciler.h"
#include "controller/lock_table.h"
#include "controller/lock_worker.h"
#include "controller/metrics.h"
#include "controller/replica_election.h"
#include "controller/replica_epoch.h"
#include "controller/work_queue.h"

namespace mcl::controller {

struct ControllerOptions {
  std::string kubeconfig;  // "" = in-cluster
  std::string cluster;
  std::vector<std::string> etcd_endpoints;
  std::string etcd_ca, etcd_cert, etcd_key;
  std::string etcd_username, etcd_password;
  std::string key_prefix = contract::kDefaultKeyPrefix;
  absl::Duration session_ttl = absl::Seconds(10);
  std::string namespace_ = "mcl-system";
  std::vector<std::string> watch_namespaces;  // empty = all
  std::string identity;
  std::string metrics_address = "127.0.0.1:0";
  // 0: clamp(3·TTL, 3 s, 15 s).
  absl::Duration election_lease_duration = absl::ZeroDuration();
  absl::Duration default_lease_duration = absl::Seconds(15);
  // At least TTL·(1+rho) + m.
  absl::Duration shutdown_timeout = absl::ZeroDuration();
  int workers = 8;
};

class Controller {
 public:
  // Checks the options, loads the kubeconfig and builds every part; connects
  // to nothing yet. `clock` (not owned) is the one time source of every part.
  static absl::StatusOr<std::unique_ptr<Controller>> Create(
      ControllerOptions options, Clock* clock);
  ~Controller();

  // Runs until `stop` is set (main sets it on SIGTERM/SIGINT), then releases
  // every lock it holds and returns the process exit code. `stop` must outlive
  // the call.
  int Run(const StopFlag* stop);

 private:
  enum class State { kStandby, kActive, kStandingDown };
  enum class Reason { kStop, kLeaseLost, kDeposed, kApiserverGone, kFailed };

  // Construction and wiring (controller.cc), in Create's order: each part is
  // built after those it is handed.
  Controller(ControllerOptions options, Clock* clock);
  // The apiserver clients (informer and Events; the controller's own writes,
  // with a deadline) and the etcd client; connects to nothing yet.
  absl::Status Connect();
  // ApiserverHealth, the Lease store and writers, replica election and
  // epoch, the reconciler.
  void BuildElection();
  void BuildKeyCache();
  void BuildSession();
  void BuildExecutor();
  void BuildInformer();
  void BuildWorker();
  void WireMetrics();
  // A MultiClusterLease delivered by the informer (informer thread): the
  // observation goes to the lock's inbox, the key to the queue.
  void Observe(const kube::Json& obj);
  // The probes and /metrics (the HTTP server's thread).
  HttpReply Serve(absl::string_view path);

  // The lifecycle (controller_lifecycle.cc), on Run()'s thread.
  // Claims the epoch, takes the session, starts the parts; true once acting.
  bool Activate(const StopFlag* stop);
  // The key watch, the informer (waiting for its sync) and the workers, once
  // per process.
  void StartPartsOnce(const StopFlag* stop);
  // Until a reason to stand down (or stop).
  Reason WaitForStandDown(const StopFlag* stop);
  void StandDown(Reason why);
  void Shutdown();
  // Releases the keys of the current session (after its release deadline).
  void ReleaseRemaining(absl::Duration give_up_at);
  void StopRenewer();
  bool MayAct() const;
  void EnqueueAll();
  bool NamespaceWatched(const std::string& ns) const;
  int64_t LocksHeld() const;
  static const char* ReasonName(Reason r);

  ControllerOptions options_;
  Clock* const clock_;
  absl::Duration election_duration_;

  Metrics metrics_;
  // Fed by the Lease store and the lock writer (declared before them).
  std::unique_ptr<ApiserverHealth> apiserver_;
  std::unique_ptr<kube::KubeClient> kube_;
  // The controller's own Lease, status and finalizer writes, with a deadline
  // of about one TTL (kube_'s serves the informer's long lists and Events).
  std::unique_ptr<kube::KubeClient> kube_writes_;
  std::unique_ptr<etcd::Client> etcd_;
  // Destroyed before kube_ (declared after it).
  std::unique_ptr<kube::EventRecorder> events_;
  std::unique_ptr<KubeLeaseStore> lease_store_;
  std::unique_ptr<KubeLockWriter> lock_writer_;
  std::unique_ptr<EtcdKeyWriter> key_writer_;
  std::unique_ptr<ReplicaElection> election_;
  std::unique_ptr<ReplicaEpoch> epoch_;
  std::unique_ptr<LockReconciler> reconciler_;
  std::unique_ptr<KeyCache> keys_;
  std::unique_ptr<EtcdSession> session_;
  LockTable table_;
  WorkQueue queue_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<kube::Informer> informer_;
  std::unique_ptr<LockWorker> worker_;
  std::unique_ptr<HttpServer> http_;

  // Acting: active, epoch claimed, session taken (workers act while this and
  // the fence hold).
  std::atomic<bool> acting_{false};
  std::atomic<State> state_{State::kStandby};
  std::atomic<bool> lease_lost_{false};
  std::atomic<bool> synced_{false};
  std::atomic<bool> stopping_{false};
  bool parts_started_ = false;  // lifecycle thread only
  // Woken when a held key goes or the session changes (the SIGTERM wait).
  Wakeup released_;
  // Woken by anything the lifecycle waits for: stop, a lost Lease, deposed,
  // the session's publication freezing or thawing.
  Wakeup lifecycle_wake_;
  std::unique_ptr<StopFlag> renew_stop_;  // per activation
  std::thread renewer_;
  std::vector<std::thread> workers_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_CONTROLLER_H_
