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
// Fencing (PLAN decision 5): nothing is written unless may_act() says this
// replica may act (its replica Lease fence has not passed, it is not deposed,
// it is not standing down), checked right before each write on the
// monotonic clock; and every etcd Txn is guarded by the replica epoch, so a
// write of a replica that was paused between that check and the Txn fails.
//
// Threads: called by the worker that holds the lock's key, and by the
// lifecycle thread for releases; stateless apart from its collaborators,
// which are thread-safe.
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
#include "controller/executor_io.h"
#include "controller/key_cache.h"
#include "controller/lock_reconciler.h"
#include "controller/lock_table.h"
#include "controller/metrics.h"
#include "controller/replica_epoch.h"
#include "controller/session_tracker.h"

namespace mcl::controller {

class Executor {
 public:
  struct Hooks {
    // May this replica write now? (fence, epoch, not standing down)
    std::function<bool()> may_act;
    // An etcd call answered (true) or found etcd unreachable (false).
    std::function<void(bool ok)> on_etcd_result;
    // A grant was written to etcd: confirm it soon (EtcdSession::ConfirmSoon).
    std::function<void()> confirm_soon;
    // A status write carried the confirmation whose S is `sent_at`
    // (EtcdSession::NotePublishAttempt).
    std::function<void(absl::Duration sent_at)> on_publish_attempt;
  };
  enum class Outcome {
    kDone,       // applied, or taught us something new: reconcile again
    kFailed,     // retry with backoff
    kNotActing,  // this replica may not act (or was just deposed): drop it
  };
  Executor(LockWriter* locks, KeyWriter* keys, KeyCache* key_cache,
           ReplicaEpoch* epoch, const LockReconciler* reconciler, Clock* clock,
           Metrics* metrics, Hooks hooks);

  // Runs `action` for lock `key` (`cur`: the CR it was computed from, null
  // when gone), planned with `session`.
  Outcome Execute(const std::string& key, const kube::MultiClusterLease* cur,
                  const Action& action, const SessionView& session,
                  LockSlot& slot);

  // Deletes every key attached to `session_id`, each only if unchanged since
  // its grant, all guarded by the epoch, in requests of up to 64 (nested
  // txns). For releases that need no acks: the session's release deadline
  // has passed (standing down, shutdown, a lost session). OK once none is
  // left; ABORTED when deposed (nothing of ours may be touched any more).
  absl::Status ReleaseHeld(int64_t session_id);

 private:
  Outcome Finalizer(const std::string& key, const kube::MultiClusterLease& cur,
                    bool add, LockSlot& slot);
  Outcome Status(const std::string& key, const kube::MultiClusterLease& cur,
                 const WriteStatus& w, const SessionView& session,
                 LockSlot& slot);
  Outcome Txn(const std::string& key, etcd::Txn txn, const char* what,
              bool is_delete, const std::string& value, int64_t session_id);
  bool MayAct() const { return !hooks_.may_act || hooks_.may_act(); }

  LockWriter* const locks_;
  KeyWriter* const keys_;
  KeyCache* const key_cache_;
  ReplicaEpoch* const epoch_;
  const LockReconciler* const reconciler_;
  Clock* const clock_;
  Metrics* const metrics_;
  const Hooks hooks_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_EXECUTOR_H_
