#include "sidecar/candidacy.h"

#include "absl/strings/str_cat.h"

namespace mcl::sidecar {

Candidacy::Candidacy(std::string identity, std::string instance,
                     absl::Duration lease_duration, Clock* clock)
    : identity_(std::move(identity)),
      instance_(std::move(instance)),
      lease_duration_(lease_duration),
      clock_(clock) {}

void Candidacy::Observe(const LeaseView& v) {
  if (latest_ && latest_->exists && v.exists &&
      v.resource_version <= latest_->resource_version) {
    return;
  }
  if (latest_ && v.resource_version < latest_->resource_version) return;
  latest_ = v;
  if (v.exists && v.holder && !holding()) {
    const std::string instance = v.holder_instance.value_or("");
    const bool same_holder =
        *v.holder == seen_holder_ && instance == seen_instance_;
    if (!same_holder || v.renew_time != seen_renew_) {
      // Another candidacy of my own identity that renews is live.
      if (same_holder && *v.holder == identity_) duplicate_ = true;
      // A renewal (or a new holder): its staleness is counted afresh from now,
      // on my clock.
      seen_holder_ = *v.holder;
      seen_instance_ = instance;
      seen_renew_ = v.renew_time;
      seen_since_ = clock_->Monotonic();
    }
  } else {
    seen_holder_.clear();
    seen_instance_.clear();
    seen_renew_.clear();
  }
}

bool Candidacy::holding() const {
  return latest_ && latest_->exists && latest_->holder &&
         *latest_->holder == identity_ &&
         latest_->holder_instance.value_or("") == instance_;
}

Candidacy::Decision Candidacy::Next() const {
  Decision d;
  if (!latest_) {
    d.why = "not synced";
    return d;
  }
  const absl::Duration now = clock_->Monotonic();
  const LeaseView& v = *latest_;
  if (!v.exists) {
    d.action = Action::kCreate;
    d.why = "the lock does not exist";
    return d;
  }
  d.precondition_rv = v.resource_version;
  if (!v.holder) {
    d.action = Action::kTakeOver;
    d.why = "no local holder";
    return d;
  }
  if (holding()) {
    if (!last_write_ || now >= *last_write_ + renew_period()) {
      d.action = Action::kRenew;
      d.why = "renewal due";
    } else {
      d.wake_at = *last_write_ + renew_period();
      d.why = "holding";
    }
    return d;
  }
  absl::Duration holder_ld = v.lease_duration_seconds > 0
                                 ? absl::Seconds(v.lease_duration_seconds)
                                 : lease_duration_;
  absl::Duration stale_at = seen_since_ + holder_ld;
  if (now >= stale_at) {
    d.action = Action::kTakeOver;
    d.why =
        absl::StrCat("holder ", *v.holder, "/", v.holder_instance.value_or(""),
                     " has not renewed for ", absl::FormatDuration(holder_ld));
  } else {
    d.wake_at = stale_at;
    d.why = absl::StrCat("holder ", *v.holder, " is live");
  }
  return d;
}

}  // namespace mcl::sidecar
