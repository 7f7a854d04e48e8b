#include "controller/liveness.h"

#include <algorithm>
#include <utility>

namespace mcl::controller {

void LivenessTracker::Observe(const std::string& uid, int64_t generation,
                              const std::optional<std::string>& holder,
                              absl::Duration now) {
  if (first_seen_.has_value() && uid != uid_) {
    // A new incarnation of the lock: nothing we knew applies to it.
    *this = LivenessTracker();
  }
  if (!first_seen_.has_value()) {
    first_seen_ = now;
    uid_ = uid;
    generation_ = generation;
    holder_ = holder;
    // The restart rule: the current holder counts as observed now.
    if (holder.has_value()) last_renewal_[*holder] = now;
    return;
  }
  if (generation <= generation_)
    return;  // nothing new in spec (or an old re-delivery)
  const bool consecutive = generation == generation_ + 1;
  if (!consecutive) last_gap_ = now;
  if (!holder.has_value()) {
    resigned_ = (consecutive && holder_.has_value()) ? holder_ : std::nullopt;
    if (resigned_) resigned_at_[*resigned_] = generation;
    // A resign after a gap: keep nothing (we cannot attribute the write).
  } else {
    resigned_.reset();
    last_renewal_[*holder] = now;
  }
  generation_ = generation;
  holder_ = holder;
}

absl::Duration LivenessTracker::LastRenewal(const std::string& holder) const {
  auto it = last_renewal_.find(holder);
  absl::Duration t = it != last_renewal_.end()
                         ? it->second
                         : first_seen_.value_or(absl::ZeroDuration());
  return std::max(t, last_gap_);
}

void LivenessTracker::Prune(const std::optional<std::string>& keep_a,
                            const std::optional<std::string>& keep_b) {
  for (auto it = last_renewal_.begin(); it != last_renewal_.end();) {
    const bool keep = (keep_a && *keep_a == it->first) ||
                      (keep_b && *keep_b == it->first) ||
                      (holder_ && *holder_ == it->first);
    it = keep ? std::next(it) : last_renewal_.erase(it);
  }
  for (auto it = resigned_at_.begin(); it != resigned_at_.end();) {
    const bool keep =
        (keep_a && *keep_a == it->first) || (keep_b && *keep_b == it->first);
    it = keep ? std::next(it) : resigned_at_.erase(it);
  }
}

}  // namespace mcl::controller
