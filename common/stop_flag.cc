#include "common/stop_flag.h"

namespace mcl {

StopFlag::StopFlag(Clock* clock) : wakeup_(std::make_unique<Wakeup>(clock)) {}

void StopFlag::Set() {
  set_.store(true);
  // Every waiter must see it, not only the one that consumes the
  // notification: WaitUntil re-checks set_ after each wake and a set flag
  // re-notifies (below).
  wakeup_->Notify();
}

bool StopFlag::IsSet() const { return set_.load(); }

bool StopFlag::WaitFor(absl::Duration timeout) const {
  if (timeout == absl::InfiniteDuration())
    return WaitUntil(absl::InfiniteDuration());
  return WaitUntil(wakeup_->clock()->Monotonic() + timeout);
}

bool StopFlag::WaitUntil(absl::Duration deadline) const {
  while (!set_.load()) {
    if (!wakeup_->WaitUntil(deadline)) return set_.load();
  }
  // Pass the notification on to any other thread waiting on this flag.
  wakeup_->Notify();
  return true;
}

}  // namespace mcl
