// DeadlineTimer: a thread whose only job is to be on time. It calls `fire`
// when the clock's monotonic time reaches the earliest deadline it was given
// (by Arm, or by `fire`'s own return value), and sleeps in between on
// mcl::Wakeup: CLOCK_MONOTONIC, never the wall clock (common/clock.h), and
// simulated time on a FakeClock.
//
// The sidecar runs LockTable::TickDeadlines on it, so that LOST goes out at a
// campaign's deadline whatever the spec writer is doing: a write or read that
// hangs on the apiserver cannot delay it (issue 16). `fire` takes only the
// table's mutex, which no thread holds across a request.
#ifndef MCL_SIDECAR_DEADLINE_TIMER_H_
#define MCL_SIDECAR_DEADLINE_TIMER_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace mcl::sidecar {

class DeadlineTimer {
 public:
  // Runs `fire` once at start, then at each deadline; `fire` returns the next
  // deadline (absl::InfiniteDuration(): none). Starts the thread.
  DeadlineTimer(Clock* clock, std::function<absl::Duration()> fire);
  ~DeadlineTimer();  // stops and joins the thread
  DeadlineTimer(const DeadlineTimer&) = delete;
  DeadlineTimer& operator=(const DeadlineTimer&) = delete;

  // Makes sure `fire` runs no later than monotonic `deadline`. Cheap when the
  // timer is already due earlier (it does not wake the thread). Any thread;
  // never blocks on anything but a leaf mutex.
  void Arm(absl::Duration deadline);

 private:
  void Loop();

  Clock* const clock_;
  const std::function<absl::Duration()> fire_;
  Wakeup wakeup_;
  absl::Mutex mu_;  // a leaf
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // When the thread will next run `fire` unless woken earlier (infinite while
  // `fire` runs; minus infinity before the first run, which looks anyway).
  absl::Duration armed_ ABSL_GUARDED_BY(mu_) = -absl::InfiniteDuration();
  std::thread thread_;
};

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_DEADLINE_TIMER_H_
