#include "common/stop_flag.h"

namespace mcl {

void StopFlag::Set() {
  absl::MutexLock l(&mu_);
  set_ = true;
}

bool StopFlag::IsSet() const {
  absl::MutexLock l(&mu_);
  return set_;
}

bool StopFlag::WaitFor(absl::Duration timeout) const {
  absl::MutexLock l(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&set_), timeout);
}

}  // namespace mcl
