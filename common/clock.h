// Clock: the one source of time for mcl's logic, injected so that state
// machines and the threads around them are tested without sleeping. Two kinds
// of time, never mixed:
//   Monotonic() — for every duration and deadline (lease validity, staleness,
//                 backoff). On the real clock this is CLOCK_MONOTONIC, the
//                 kernel's clock that every process on the node shares.
//   WallNow()   — only for values written for humans (renewTime, acquireTime
//                 in the CR).
//
// Timed waits. Safety deadlines must be waited for on the monotonic clock.
// Debian's abseil (20220623) turns every timed wait (Mutex::AwaitWithTimeout,
// CondVar::WaitWithTimeout, Notification::WaitForNotificationWithTimeout)
// into an absolute CLOCK_REALTIME deadline (FUTEX_CLOCK_REALTIME): a wall-clock
// step back by an hour makes a 1 s wait last an hour and a second. Wakeup
// (below) waits on CLOCK_MONOTONIC instead (libstdc++'s steady_clock, through
// pthread_cond_clockwait), and on a FakeClock it wakes when the fake time
// passes the deadline, so timer threads run on simulated time in tests.
#ifndef MCL_COMMON_CLOCK_H_
#define MCL_COMMON_CLOCK_H_

#include <condition_variable>
#include <mutex>
#include <set>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mcl {

class Wakeup;

class Clock {
 public:
  virtual ~Clock() = default;
  // A monotonic instant, as a Duration since an arbitrary epoch. Never goes
  // backwards.
  virtual absl::Duration Monotonic() = 0;
  virtual absl::Time WallNow() = 0;

  // The process-wide real clock (CLOCK_MONOTONIC and the system clock).
  static Clock* Real();

 private:
  friend class Wakeup;
  // One step of a timed wait for Wakeup: blocks on `cv` (releasing `lock`)
  // until notified or until Monotonic() may have reached `deadline`. May return
  // early; the caller re-checks.
  virtual void WaitStep(std::unique_lock<std::mutex>& lock,
                        std::condition_variable& cv,
                        absl::Duration deadline) = 0;
  // A Wakeup on this clock is created / destroyed (FakeClock pokes them when
  // time moves).
  virtual void Register(Wakeup*) {}
  virtual void Unregister(Wakeup*) {}
};

// Wakeup: "something happened, or it is time" for one waiting thread — the
// primitive behind every timer loop that must not oversleep (deadline timers,
// fences, renewals). Notify() may be called from any thread; a notification
// is kept until a wait consumes it. Timed waits are on the clock's monotonic
// time (see the file comment), never on the wall clock.
class Wakeup {
 public:
  explicit Wakeup(Clock* clock = Clock::Real());
  ~Wakeup();
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  void Notify();
  // Returns true as soon as notified (consuming the notification), false once
  // the clock's Monotonic() reaches `deadline` (absl::InfiniteDuration() waits
  // for a notification only).
  bool WaitUntil(absl::Duration deadline);
  bool WaitFor(absl::Duration timeout) {
    return WaitUntil(clock_->Monotonic() + timeout);
  }
  Clock* clock() const { return clock_; }

 private:
  friend class FakeClock;
  void Poke();  // the fake time moved: re-check the deadline

  Clock* const clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

// A clock that moves only when told to. Thread-safe. Wakeups on it wake when
// Advance() moves the time past their deadline.
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
  void Advance(absl::Duration d);
  // Moves only the wall clock (a step of NTP, a skewed node); monotonic time is
  // unaffected.
  void StepWall(absl::Duration d) {
    absl::MutexLock l(&mu_);
    wall_ += d;
  }

 private:
  void WaitStep(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                absl::Duration deadline) override;
  void Register(Wakeup* w) override;
  void Unregister(Wakeup* w) override;

  absl::Mutex mu_;
  absl::Duration mono_ ABSL_GUARDED_BY(mu_) = absl::Seconds(1000);
  absl::Time wall_ ABSL_GUARDED_BY(mu_);
  // Taken before a Wakeup's own mutex (Advance pokes under it); never while
  // holding mu_.
  std::mutex wakeups_mu_;
  std::set<Wakeup*> wakeups_;
};

}  // namespace mcl

#endif  // MCL_COMMON_CLOCK_H_
