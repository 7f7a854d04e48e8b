// LockWorker: one worker's turn at one lock: read the CR (the informer's copy,
// or our own last write's answer while it is newer), the etcd key and the
// session; let the reconciler plan; run the one action; log, post Events,
// requeue. Repeats while each step succeeds and changes something (at most 8
// steps, then the lock goes to the back of the queue so others run).
//
// Threads: the controller's workers call Reconcile(key) for the key the work
// queue handed them (one worker per key at a time), so the lock's slot in the
// LockTable is theirs for the duration.
#ifndef MCL_CONTROLLER_LOCK_WORKER_H_
#define MCL_CONTROLLER_LOCK_WORKER_H_

#include <functional>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/kube/events.h"
#include "common/kube/informer.h"
#include "controller/etcd_session.h"
#include "controller/executor.h"
#include "controller/key_cache.h"
#include "controller/lock_reconciler.h"
#include "controller/lock_table.h"
#include "controller/metrics.h"
#include "controller/work_queue.h"

namespace mcl::controller {

class LockWorker {
 public:
  struct Deps {
    kube::Informer* informer;
    LockTable* table;
    KeyCache* keys;
    EtcdSession* session;
    const LockReconciler* reconciler;
    Executor* executor;
    WorkQueue* queue;
    kube::EventRecorder* events;
    Metrics* metrics;
    Clock* clock;
    // True once the controller stops: no further step is taken.
    std::function<bool()> stopping;
    // Whether this replica may act (active, fenced, epoch held). When it may
    // not, a turn only applies the lock's pending observations.
    std::function<bool()> may_act;
  };
  explicit LockWorker(Deps deps) : d_(std::move(deps)) {}

  void Reconcile(const std::string& key);

 private:
  enum class Step { kAgain, kDone, kForget };
  Step Once(const std::string& key, LockSlot& slot);
  // The CR to reconcile: our write's answer while the informer lags behind it,
  // else the informer's copy; nullopt when gone or undecodable.
  std::optional<kube::MultiClusterLease> Current(const std::string& key,
                                                 LockSlot& slot, bool* bad);
  void PostEvent(const kube::MultiClusterLease& cr, const EventNote& note);

  const Deps d_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_LOCK_WORKER_H_
