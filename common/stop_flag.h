// StopFlag: a one-way "stop" that long-running loops wait on. A loop sleeps
// with WaitFor(time to its next deadline) instead of polling a flag in short
// slices, so a stop is seen at once and an idle loop does not wake up for
// nothing. Thread-safe; never reset.
#ifndef MCL_COMMON_STOP_FLAG_H_
#define MCL_COMMON_STOP_FLAG_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mcl {

class StopFlag {
 public:
  StopFlag() = default;
  StopFlag(const StopFlag&) = delete;
  StopFlag& operator=(const StopFlag&) = delete;

  // Idempotent.
  void Set();
  bool IsSet() const;
  // Waits until Set() or `timeout` (which may be absl::InfiniteDuration());
  // returns IsSet().
  bool WaitFor(absl::Duration timeout) const;

 private:
  mutable absl::Mutex mu_;
  bool set_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace mcl

#endif  // MCL_COMMON_STOP_FLAG_H_
