// Executor: runs the one action a Plan names (lock_reconciler.h) against the
// apiserver or etcd, and feeds what it learned back: the reconciler's memory
// (OnStatusResult), our last write's answer (LockSlot::written), the key cache
// (a Txn's answer is the newest news about the key), the session (a call's
// success or failure; ConfirmSoon after a grant).
//
// The etcd writes are the lock-key shapes of common/etcd/txn.h: create-if-
// absent attached to the session, put-if-owned (mod_revision and lease), and
// delete-if-owned (mod_revision), each reading the key in its Else branch so a
// lost race teaches the current holder in the same round trip.
//
// Threads: called by the worker that holds the lock's key; stateless apart
// from its collaborators, which are thread-safe.
#ifndef MCL_CONTROLLER_EXECUTOR_H_
#define MCL_CONTROLLER_EXECUTOR_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/etcd/kv.h"
#include "common/etcd/txn.h"
#include "common/kube/client.h"
#include "common/kube/objects.h"
#include "common/kube/typed_client.h"
#include "controller/key_cache.h"
#include "controller/lock_reconciler.h"
#include "controller/lock_table.h"
#include "controller/metrics.h"

namespace mcl::controller {

// The apiserver side: MultiClusterLease writes.
class LockWriter {
 public:
  virtual ~LockWriter() = default;
  // Conditional on metadata.resource_version (kube::IsConflict when stale).
  virtual absl::StatusOr<kube::MultiClusterLease> Update(
      const kube::MultiClusterLease& obj) = 0;
  virtual absl::StatusOr<kube::MultiClusterLease> UpdateStatus(
      const kube::MultiClusterLease& obj) = 0;
};

class KubeLockWriter : public LockWriter {
 public:
  KubeLockWriter(kube::KubeClient* client, Metrics* metrics)
      : leases_(client), metrics_(metrics) {}
  absl::StatusOr<kube::MultiClusterLease> Update(
      const kube::MultiClusterLease& obj) override {
    metrics_->apiserver_writes++;
    return leases_.Update(obj);
  }
  absl::StatusOr<kube::MultiClusterLease> UpdateStatus(
      const kube::MultiClusterLease& obj) override {
    metrics_->apiserver_writes++;
    return leases_.UpdateStatus(obj);
  }

 private:
  kube::MultiClusterLeaseClient leases_;
  Metrics* metrics_;
};

// The etcd side: one Txn.
class KeyWriter {
 public:
  virtual ~KeyWriter() = default;
  virtual absl::StatusOr<etcd::TxnResult> Commit(const etcd::Txn& txn) = 0;
};

class EtcdKeyWriter : public KeyWriter {
 public:
  explicit EtcdKeyWriter(etcd::Client* client) : kv_(client) {}
  absl::StatusOr<etcd::TxnResult> Commit(const etcd::Txn& txn) override {
    return kv_.Commit(txn);
  }

 private:
  etcd::KV kv_;
};

class Executor {
 public:
  struct Hooks {
    // An etcd call answered (true) or found etcd unreachable (false).
    std::function<void(bool ok)> on_etcd_result;
    // A grant was written to etcd: confirm it soon (EtcdSession::ConfirmSoon).
    std::function<void()> confirm_soon;
  };
  Executor(LockWriter* locks, KeyWriter* keys, KeyCache* key_cache,
           const LockReconciler* reconciler, Clock* clock, Metrics* metrics,
           Hooks hooks);

  // Runs `action` for lock `key` (`cur`: the CR it was computed from, null
  // when gone) with the session `session_id`. False when it failed (the
  // caller retries with backoff); a lost race or a conflict that taught us
  // something new is a success (reconcile again at once).
  bool Execute(const std::string& key, const kube::MultiClusterLease* cur,
               const Action& action, int64_t session_id, LockSlot& slot);

 private:
  bool Finalizer(const std::string& key, const kube::MultiClusterLease& cur,
                 bool add, LockSlot& slot);
  bool Status(const std::string& key, const kube::MultiClusterLease& cur,
              const WriteStatus& w, LockSlot& slot);
  bool Txn(const std::string& key, const etcd::Txn& txn, const char* what,
           bool is_delete, const std::string& value, int64_t session_id);

  LockWriter* const locks_;
  KeyWriter* const keys_;
  KeyCache* const key_cache_;
  const LockReconciler* const reconciler_;
  Clock* const clock_;
  Metrics* const metrics_;
  const Hooks hooks_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_EXECUTOR_H_
