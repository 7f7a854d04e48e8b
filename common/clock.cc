#include "common/clock.h"

#include <time.h>

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
};

}  // namespace

Clock* Clock::Real() {
  static RealClock* clock = new RealClock();
  return clock;
}

}  // namespace mcl
