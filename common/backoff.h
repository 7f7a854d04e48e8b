// Backoff: bounded exponential backoff with full jitter, the one retry policy
// in mcl (watches, etcd reconnects, status writes). Not thread-safe; one per
// retry loop.
#ifndef MCL_COMMON_BACKOFF_H_
#define MCL_COMMON_BACKOFF_H_

#include <cstdint>
#include <random>

#include "absl/time/time.h"

namespace mcl {

class Backoff {
 public:
  struct Options {
    absl::Duration initial = absl::Milliseconds(100);
    absl::Duration max = absl::Seconds(10);
    double multiplier = 2.0;
  };
  Backoff() : Backoff(Options()) {}
  explicit Backoff(Options options, uint64_t seed = std::random_device{}());

  // The next delay: uniform in [0, min(max, initial * multiplier^attempt)]
  // ("full jitter"), so many clients that failed together do not retry
  // together.
  absl::Duration Next();
  // After a success: the next failure starts again from `initial`.
  void Reset() { attempt_ = 0; }
  int attempts() const { return attempt_; }

 private:
  Options options_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace mcl

#endif  // MCL_COMMON_BACKOFF_H_
