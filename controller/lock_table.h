// LockTable: the controller's per-lock state between reconciles, keyed by
// "namespace/name": the reconciler's LockMemory, our last write's answer and
// the worker's bookkeeping (failures, last log line).
//
// One owner. A slot (and the LockMemory in it, whose LivenessTracker is
// single-threaded by design) is touched only by the worker that holds the
// lock's key (the work queue hands a key to one worker at a time), inside
// With(). The informer thread never touches it: it reports every version of a
// lock's spec it delivers (Observe) into the lock's inbox, with the monotonic
// time of delivery; the owner applies the inbox, in order, before it looks at
// the slot. So renewals keep the time they were observed (design.md rule 2,
// §Ack), and the memory does not change under a reconcile. A slot handed out
// twice at once (a broken caller) stops the process: "two owners".
//
// Threads: Observe from the informer thread; With/Forget from the worker that
// holds the key; Keys from any thread.
#ifndef MCL_CONTROLLER_LOCK_TABLE_H_
#define MCL_CONTROLLER_LOCK_TABLE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kube/objects.h"
#include "controller/lock_reconciler.h"

namespace mcl::controller {

struct LockSlot {
  LockMemory memory;
  // Our last write's answer: newer than the informer's copy until the informer
  // catches up.
  std::optional<kube::MultiClusterLease> written;
  int failures = 0;      // consecutive failed actions (backoff)
  std::string last_why;  // the last "nothing to do" reason logged
};

class LockTable {
 public:
  // Informer thread: a version of the lock's spec, seen at monotonic `now`.
  // Every delivered version counts, not only the one a reconcile later reads:
  // a resign followed at once by a local takeover must still count as the
  // resigner's ack (design.md §Ack), and renewals are timed when they arrive.
  void Observe(const std::string& key, const std::string& uid,
               int64_t generation, const std::optional<std::string>& holder,
               absl::Duration now);
  // The worker holding `key` runs `fn` on its slot (created if absent), after
  // applying the observations that arrived since.
  void With(const std::string& key, const std::function<void(LockSlot&)>& fn);
  // Drops the slot (the worker holding `key`, when the lock is gone), unless
  // an observation arrived meanwhile: the next owner starts from it.
  void Forget(const std::string& key);
  // Every lock with a slot.
  std::vector<std::string> Keys() const;
  // A new activation of this replica (after standing down, another replica
  // may have acted): each slot's memory is rebuilt at its next With(), as
  // after a restart (the reconciler's restart rule), keeping only the
  // observations of renewals, which stay true.
  void Restart();

 private:
  struct Observation {
    std::string uid;
    int64_t generation = 0;
    std::optional<std::string> holder;
    absl::Duration at;
  };
  struct Entry {
    LockSlot slot;                   // the owner's, outside mu_
    std::vector<Observation> inbox;  // mu_
    bool owned = false;              // mu_: inside With()
    int64_t restarts = 0;            // mu_: the Restart() it is current with
  };

  mutable absl::Mutex mu_;
  // std::map: an Entry stays where it is while others are added.
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  int64_t restarts_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_LOCK_TABLE_H_
