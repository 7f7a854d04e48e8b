#include "common/kube/waiters.h"

namespace mcl::kube {

void Waiters::NotifyAll() {
  absl::MutexLock l(&mu_);
  for (Wakeup* w : waiting_) w->Notify();
}

bool Waiters::WaitUntil(const std::function<bool()>& done,
                        absl::Duration timeout) const {
  const absl::Duration deadline = clock_->Monotonic() + timeout;
  Wakeup wakeup(clock_);
  {
    // Registered before the first check: a change between that check and the
    // sleep leaves a notification behind.
    absl::MutexLock l(&mu_);
    waiting_.insert(&wakeup);
  }
  bool ok = done();
  while (!ok && wakeup.WaitUntil(deadline)) ok = done();
  if (!ok) ok = done();  // the deadline passed: one last look
  absl::MutexLock l(&mu_);
  waiting_.erase(&wakeup);
  return ok;
}

}  // namespace mcl::kube
