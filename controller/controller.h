// Controller: the election controller process of one cluster, as wiring of its
// parts (controller/README.md has the map):
//   ReplicaElection  which replica is active (coordination.k8s.io Lease)
//   EtcdSession      the one etcd session lease, keepalives, heartbeat Lease
//   KeyCache         the lock keys in etcd (list + watch)
//   kube::Informer   the MultiClusterLeases (text cache)
//   LockTable        per-lock memory, one owner at a time
//   WorkQueue + LockWorker × N   reconcile (LockReconciler) and act (Executor)
//   HttpServer       /metrics, /healthz, /readyz
//
// Run() is the lifecycle: serve HTTP, wait to become the active replica, adopt
// or start the session, list and watch, reconcile until stopped; on stop,
// revoke and release every held lock (waiting for acks, bounded by
// TTL·(1+rho)+m), revoke the session, give up the replica Lease.
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
#include "controller/etcd_session.h"
#include "controller/executor.h"
#include "controller/key_cache.h"
#include "controller/lease_store.h"
#include "controller/lock_reconciler.h"
#include "controller/lock_table.h"
#include "controller/lock_worker.h"
#include "controller/metrics.h"
#include "controller/replica_election.h"
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
  Controller(ControllerOptions options, Clock* clock);
  void StartHttp();
  HttpReply Serve(absl::string_view path);
  bool BecomeActive(const StopFlag* stop);
  void Shutdown();
  void EnqueueAll();
  bool NamespaceWatched(const std::string& ns) const;
  int64_t LocksHeld() const;

  ControllerOptions options_;
  Clock* const clock_;
  absl::Duration election_duration_;

  Metrics metrics_;
  std::unique_ptr<kube::KubeClient> kube_;
  std::unique_ptr<etcd::Client> etcd_;
  // Destroyed before kube_ (declared after it).
  std::unique_ptr<kube::EventRecorder> events_;
  std::unique_ptr<KubeLeaseStore> lease_store_;
  std::unique_ptr<KubeLockWriter> lock_writer_;
  std::unique_ptr<EtcdKeyWriter> key_writer_;
  std::unique_ptr<ReplicaElection> election_;
  std::unique_ptr<LockReconciler> reconciler_;
  std::unique_ptr<KeyCache> keys_;
  std::unique_ptr<EtcdSession> session_;
  LockTable table_;
  WorkQueue queue_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<kube::Informer> informer_;
  std::unique_ptr<LockWorker> worker_;
  std::unique_ptr<HttpServer> http_;

  std::atomic<bool> active_{false};
  std::atomic<bool> synced_{false};
  std::atomic<bool> stopping_{false};
  // Woken when a held key goes or the session changes (the SIGTERM wait).
  Wakeup released_;
  std::vector<std::thread> threads_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_CONTROLLER_H_
