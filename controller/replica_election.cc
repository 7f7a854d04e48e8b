#include "controller/replica_election.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/contract.h"
#include "common/kube/errors.h"
#include "common/kube/time.h"
#include "common/log.h"

namespace mcl::controller {

ReplicaElection::ReplicaElection(LeaseStore* store, Clock* clock,
                                 ReplicaElectionOptions options)
    : store_(store),
      clock_(clock),
      options_(std::move(options)),
      fence_after_(options_.duration * (1 - contract::kRho) -
                   contract::kMargin),
      stop_(clock) {}

void ReplicaElection::Stop() { stop_.Set(); }

absl::Duration ReplicaElection::Fence() const {
  return absl::Nanoseconds(fence_ns_.load());
}

bool ReplicaElection::MayAct() const {
  const int64_t f = fence_ns_.load();
  return f != 0 && clock_->Monotonic() < absl::Nanoseconds(f);
}

void ReplicaElection::Renewed(const kube::Lease& lease,
                              absl::Duration started) {
  lease_ = lease;
  renewed_at_ = started;
  next_renewal_ = started + options_.duration / 3;
  fence_ns_ = absl::ToInt64Nanoseconds(started + fence_after_);
}

bool ReplicaElection::Take(const std::optional<kube::Lease>& observed,
                           absl::Duration now) {
  const std::string wall = kube::FormatMicroTime(clock_->WallNow());
  const int32_t duration_s =
      static_cast<int32_t>(std::ceil(absl::ToDoubleSeconds(options_.duration)));
  kube::Lease l;
  std::string previous;
  if (observed) {
    l = *observed;
    previous = l.spec.holder_identity.value_or("");
    if (previous != options_.identity) {
      l.spec.lease_transitions++;
      l.spec.acquire_time = wall;
    }
  } else {
    l.metadata.namespace_ = options_.namespace_;
    l.metadata.name = options_.name;
    l.spec.acquire_time = wall;
  }
  l.spec.holder_identity = options_.identity;
  l.spec.lease_duration_seconds = duration_s;
  l.spec.renew_time = wall;
  auto written = observed ? store_->Update(l) : store_->Create(l);
  if (!written.ok()) {
    LogWarn(observed ? "taking the election Lease failed"
                     : "cannot create the election Lease",
            {{"error", std::string(written.status().message())}});
    return false;
  }
  Renewed(*written, now);
  LogInfo("active replica", {{"identity", options_.identity},
                             {"previous", previous},
                             {"lease", options_.name}});
  return true;
}

bool ReplicaElection::TryAcquire() {
  auto got = store_->Get(options_.namespace_, options_.name);
  // Taken after the read: the change it shows happened before (S3, and
  // conservative for the standby's wait below).
  const absl::Duration now = clock_->Monotonic();
  if (!got.ok()) {
    if (absl::IsNotFound(got.status())) return Take(std::nullopt, now);
    LogWarn("cannot read the election Lease",
            {{"error", std::string(got.status().message())}});
    return false;
  }
  const std::string holder = got->spec.holder_identity.value_or("");
  const std::string seen = absl::StrCat(holder, "|", got->spec.renew_time);
  if (seen != observed_) {
    observed_ = seen;
    observed_at_ = now;  // judged by our own clock from when we saw it (S3)
  }
  if (holder.empty() || holder == options_.identity ||
      now - observed_at_ >= options_.duration) {
    return Take(*got, now);
  }
  if (standby_logged_ != holder) {
    standby_logged_ = holder;
    LogInfo("standby",
            {{"active", holder},
             {"lease_duration", absl::FormatDuration(options_.duration)}});
  }
  return false;
}

bool ReplicaElection::Acquire(const StopFlag* stop) {
  // Waits on the caller's flag (if any); our own Stop() is checked each poll.
  const StopFlag* wait_on = stop != nullptr ? stop : &stop_;
  const absl::Duration poll = std::min(absl::Seconds(1), options_.duration / 4);
  while (!stop_.IsSet() && !wait_on->IsSet()) {
    if (TryAcquire()) return true;
    wait_on->WaitFor(poll);
  }
  return false;
}

std::optional<absl::Duration> ReplicaElection::RenewStep() {
  const absl::Duration now = clock_->Monotonic();
  const absl::Duration fence = renewed_at_ + fence_after_;
  if (now >= fence) {
    LogError("lost the replica election Lease: no renewal within its fence",
             {{"identity", options_.identity}});
    return std::nullopt;
  }
  // Until the next renewal, or the fence if a retry would pass it.
  if (now < next_renewal_) return std::min(next_renewal_, fence);
  kube::Lease l = *lease_;
  l.spec.renew_time = kube::FormatMicroTime(clock_->WallNow());
  auto updated = store_->Update(l);
  if (updated.ok()) {
    Renewed(*updated, now);
    return std::min(next_renewal_, renewed_at_ + fence_after_);
  }
  if (kube::IsConflict(updated.status())) {
    auto got = store_->Get(options_.namespace_, options_.name);
    if (got.ok()) {
      const std::string holder = got->spec.holder_identity.value_or("");
      if (holder != options_.identity) {
        LogError("another replica took the election Lease",
                 {{"holder", holder}});
        fence_ns_ = 0;
        return std::nullopt;
      }
      lease_ = *got;
    }
  } else {
    LogWarn("renewing the election Lease failed",
            {{"error", std::string(updated.status().message())}});
  }
  next_renewal_ =
      now + std::min(absl::Milliseconds(500), options_.duration / 10);
  return std::min(next_renewal_, fence);
}

ReplicaElection::Outcome ReplicaElection::Renew(const StopFlag* stop) {
  const StopFlag* wait_on = stop != nullptr ? stop : &stop_;
  while (!stop_.IsSet() && !wait_on->IsSet()) {
    std::optional<absl::Duration> next = RenewStep();
    if (!next) return Outcome::kLost;
    wait_on->WaitUntil(*next);
  }
  return Outcome::kStopped;
}

void ReplicaElection::Release() {
  if (!lease_) return;
  kube::Lease l = *lease_;
  l.spec.holder_identity.reset();
  auto updated = store_->Update(l);
  if (!updated.ok()) {
    LogWarn("releasing the election Lease failed",
            {{"error", std::string(updated.status().message())}});
  }
  fence_ns_ = 0;
}

}  // namespace mcl::controller
