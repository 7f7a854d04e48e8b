#include "common/backoff.h"

#include <algorithm>
#include <cmath>

namespace mcl {

Backoff::Backoff(Options options, uint64_t seed)
    : options_(options), rng_(seed) {}

absl::Duration Backoff::Next() {
  double scale = std::pow(options_.multiplier, std::min(attempt_, 62));
  absl::Duration ceiling = std::min(options_.max, options_.initial * scale);
  ++attempt_;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  return ceiling * unit(rng_);
}

}  // namespace mcl
