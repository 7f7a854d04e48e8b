#include "sidecar/deadline_timer.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

namespace mcl::sidecar {

DeadlineTimer::DeadlineTimer(Clock* clock, std::function<absl::Duration()> fire)
    : clock_(clock), fire_(std::move(fire)), wakeup_(clock) {
  thread_ = std::thread([this] { Loop(); });
}

DeadlineTimer::~DeadlineTimer() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  wakeup_.Notify();
  thread_.join();
}

void DeadlineTimer::Arm(absl::Duration deadline) {
  {
    absl::MutexLock l(&mu_);
    if (deadline >= armed_) return;
    armed_ = deadline;
  }
  wakeup_.Notify();
}

void DeadlineTimer::Loop() {
  pthread_setname_np(pthread_self(), "deadlines");
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      if (stopping_) return;
      // While `fire` runs the thread is not armed: any Arm() from now on
      // records its deadline and notifies, so a deadline that moves earlier
      // after `fire` has looked is not missed.
      armed_ = absl::InfiniteDuration();
    }
    const absl::Duration next = fire_();
    absl::Duration until;
    {
      absl::MutexLock l(&mu_);
      armed_ = std::min(armed_, next);
      until = armed_;
    }
    wakeup_.WaitUntil(until);
  }
}

}  // namespace mcl::sidecar
