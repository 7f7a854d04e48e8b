// Waiters: any number of threads waiting, each with its own timeout, for a
// condition that other threads make true and announce with NotifyAll() — the
// informer's WaitUntil/WaitForSync and the event recorder's Flush.
//
// Why not absl::Mutex::AwaitWithTimeout: Debian's abseil turns that timeout
// into an absolute CLOCK_REALTIME deadline (common/clock.h), so a wall-clock
// step back stretches it by the size of the step. Each wait here blocks on its
// own mcl::Wakeup, on the clock's monotonic time; NotifyAll() pokes all of
// them, and a notification that comes between a waiter's check and its sleep
// is kept by the Wakeup, so none is lost.
//
// Thread-safe. A condition runs on the waiting thread without any lock held
// here, so it may take the caller's own locks.
#ifndef MCL_COMMON_KUBE_WAITERS_H_
#define MCL_COMMON_KUBE_WAITERS_H_

#include <functional>
#include <set>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace mcl::kube {

class Waiters {
 public:
  explicit Waiters(Clock* clock = Clock::Real()) : clock_(clock) {}
  Waiters(const Waiters&) = delete;
  Waiters& operator=(const Waiters&) = delete;

  // Wakes every current waiter to re-check its condition.
  void NotifyAll();
  // Waits until `done()` holds — checked at once and after every NotifyAll()
  // — or until `timeout` has passed on the clock's monotonic time. Returns the
  // last value of `done()`.
  bool WaitUntil(const std::function<bool()>& done,
                 absl::Duration timeout) const;

 private:
  Clock* const clock_;
  mutable absl::Mutex mu_;
  mutable std::set<Wakeup*> waiting_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mcl::kube

#endif  // MCL_COMMON_KUBE_WAITERS_H_
