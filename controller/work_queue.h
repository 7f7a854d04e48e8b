// WorkQueue: lock keys ("namespace/name") to reconcile, deduplicated, with
// delayed adds, in the shape of client-go's workqueue: a key is handed to one
// worker at a time; a key added while it is being processed is queued again
// when that worker calls Done. Level-triggered reconciles make coalescing safe:
// one run sees the latest state of everything.
//
// Threads: any thread adds; workers block in Get (an untimed wait); one timer
// thread of the queue's own moves delayed keys to the queue when they are due,
// waiting on the clock's monotonic time (common/clock.h: Wakeup), so a
// wall-clock step cannot delay a reconcile that a deadline asked for, and a
// FakeClock drives it in tests.
#ifndef MCL_CONTROLLER_WORK_QUEUE_H_
#define MCL_CONTROLLER_WORK_QUEUE_H_

#include <deque>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace mcl::controller {

class WorkQueue {
 public:
  explicit WorkQueue(Clock* clock);
  ~WorkQueue();  // ShutDown()

  void Add(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  // Adds `key` at monotonic time `at` (or earlier, if another add asks for
  // earlier).
  void AddAt(const std::string& key, absl::Duration at)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks for the next key; false once shut down.
  bool Get(std::string* key) ABSL_LOCKS_EXCLUDED(mu_);
  void Done(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  // Wakes every Get (they return false) and ends the timer thread.
  void ShutDown() ABSL_LOCKS_EXCLUDED(mu_);
  size_t Len() const ABSL_LOCKS_EXCLUDED(mu_);
  // Ready keys plus keys being processed (0 = idle right now).
  size_t Busy() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void AddLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues the delayed keys due at `now`; returns the next due time.
  absl::Duration PromoteDueLocked(absl::Duration now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TimerLoop();

  Clock* clock_;
  mutable absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> dirty_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> processing_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Duration> delayed_at_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<absl::Duration, std::string>> delayed_
      ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  Wakeup timer_wake_;  // an earlier deadline, or shutdown
  std::thread timer_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_WORK_QUEUE_H_
