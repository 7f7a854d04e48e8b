// Clock: the one source of time for mcl's logic, injected so that state
// machines are tested without sleeping. Two kinds of time, never mixed:
//   Monotonic() — for every duration and deadline (lease validity, staleness,
//   backoff). WallNow()   — only for values written for humans (renewTime,
//   acquireTime in the CR).
#ifndef MCL_COMMON_CLOCK_H_
#define MCL_COMMON_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mcl {

class Clock {
 public:
  virtual ~Clock() = default;
  // A monotonic instant, as a Duration since an arbitrary epoch. Never goes
  // backwards.
  virtual absl::Duration Monotonic() = 0;
  virtual absl::Time WallNow() = 0;

  // The process-wide real clock (CLOCK_MONOTONIC and the system clock).
  static Clock* Real();
};

// A clock that moves only when told to. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time wall_start = absl::FromUnixSeconds(1790000000))
      : wall_(wall_start) {}
  absl::Duration Monotonic() override {
    absl::MutexLock l(&mu_);
    return mono_;
  }
  absl::Time WallNow() override {
    absl::MutexLock l(&mu_);
    return wall_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock l(&mu_);
    mono_ += d;
    wall_ += d;
  }
  // Moves only the wall clock (a step of NTP, a skewed node); monotonic time is
  // unaffected.
  void StepWall(absl::Duration d) {
    absl::MutexLock l(&mu_);
    wall_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Duration mono_ ABSL_GUARDED_BY(mu_) = absl::Seconds(1000);
  absl::Time wall_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mcl

#endif  // MCL_COMMON_CLOCK_H_
