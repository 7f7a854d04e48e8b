#include "common/clock.h"

#include <time.h>

#include <chrono>

namespace mcl {
namespace {

class RealClock : public Clock {
 public:
  absl::Duration Monotonic() override {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return absl::DurationFromTimespec(ts);
  }
  absl::Time WallNow() override { return absl::Now(); }

 private:
  void WaitStep(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                absl::Duration deadline) override {
    if (deadline == absl::InfiniteDuration()) {
      cv.wait(lock);
      return;
    }
    // libstdc++'s steady_clock is CLOCK_MONOTONIC with the same epoch as
    // Monotonic(), and wait_until on it uses pthread_cond_clockwait with
    // CLOCK_MONOTONIC: a wall-clock step cannot stretch this wait.
    const std::chrono::steady_clock::time_point until(
        std::chrono::nanoseconds(absl::ToInt64Nanoseconds(deadline)));
    cv.wait_until(lock, until);
  }
};

}  // namespace

Clock* Clock::Real() {
  static RealClock* clock = new RealClock();
  return clock;
}

Wakeup::Wakeup(Clock* clock) : clock_(clock) { clock_->Register(this); }

Wakeup::~Wakeup() { clock_->Unregister(this); }

void Wakeup::Notify() {
  std::lock_guard<std::mutex> l(mu_);
  notified_ = true;
  cv_.notify_all();
}

void Wakeup::Poke() {
  std::lock_guard<std::mutex> l(mu_);
  cv_.notify_all();
}

bool Wakeup::WaitUntil(absl::Duration deadline) {
  std::unique_lock<std::mutex> l(mu_);
  while (!notified_ && clock_->Monotonic() < deadline) {
    clock_->WaitStep(l, cv_, deadline);
  }
  const bool notified = notified_;
  notified_ = false;
  return notified;
}

void FakeClock::Advance(absl::Duration d) {
  {
    absl::MutexLock l(&mu_);
    mono_ += d;
    wall_ += d;
  }
  std::lock_guard<std::mutex> l(wakeups_mu_);
  for (Wakeup* w : wakeups_) w->Poke();
}

void FakeClock::WaitStep(std::unique_lock<std::mutex>& lock,
                         std::condition_variable& cv, absl::Duration) {
  // Woken by Notify() or by Advance()'s Poke(); the caller re-checks the time.
  cv.wait(lock);
}

void FakeClock::Register(Wakeup* w) {
  std::lock_guard<std::mutex> l(wakeups_mu_);
  wakeups_.insert(w);
}

void FakeClock::Unregister(Wakeup* w) {
  std::lock_guard<std::mutex> l(wakeups_mu_);
  wakeups_.erase(w);
}

}  // namespace mcl
