// StopFlag: a one-way "stop" that long-running loops wait on. A loop sleeps
// with WaitFor(time to its next deadline) instead of polling a flag in short
// slices, so a stop is seen at once and an idle loop does not wake up for
// nothing. Thread-safe; never reset. Timed waits run on the clock's monotonic
// time (common/clock.h: abseil's timed waits would follow wall-clock steps).
#ifndef MCL_COMMON_STOP_FLAG_H_
#define MCL_COMMON_STOP_FLAG_H_

#include <atomic>
#include <memory>

#include "absl/time/time.h"
#include "common/clock.h"

namespace mcl {

class StopFlag {
 public:
  explicit StopFlag(Clock* clock = Clock::Real());
  StopFlag(const StopFlag&) = delete;
  StopFlag& operator=(const StopFlag&) = delete;

  // Idempotent.
  void Set();
  bool IsSet() const;
  // Waits until Set() or `timeout` (which may be absl::InfiniteDuration());
  // returns IsSet().
  bool WaitFor(absl::Duration timeout) const;
  // Waits until Set() or until the clock's Monotonic() reaches `deadline`.
  bool WaitUntil(absl::Duration deadline) const;

 private:
  std::atomic<bool> set_{false};
  // Waits are const; the wakeup they block on is not (mutable would do, but
  // this keeps the class's own fields plain).
  std::unique_ptr<Wakeup> wakeup_;
};

}  // namespace mcl

#endif  // MCL_COMMON_STOP_FLAG_H_
