// ApiserverHealth: whether this cluster's apiserver answers, as the
// controller's own writes find it (the replica-election and heartbeat Leases,
// status and finalizer writes). Any answer, even a 409 or a 404, is an answer;
// a transport failure (refused, reset, TLS, timeout) or a 5xx is not, and
// neither is a request still waiting for its answer (a stopped apiserver can
// keep connections open, a partition can hold bytes: requests then hang until
// their timeout). Unreachable() is true when, for `grace`, nothing answered
// while the latest call failed or a call was outstanding: a one-off error does
// not count. The controller stands down when the apiserver is unreachable and
// no local candidate can still count itself leader (design.md §"Stand-down").
//
// Thread-safe; on_change runs on the calling thread when a call becomes
// outstanding while none was, or fails (the controller re-evaluates then).
#ifndef MCL_CONTROLLER_APISERVER_HEALTH_H_
#define MCL_CONTROLLER_APISERVER_HEALTH_H_

#include <algorithm>
#include <functional>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/kube/errors.h"

namespace mcl::controller {

class ApiserverHealth {
 public:
  ApiserverHealth(Clock* clock, absl::Duration grace,
                  std::function<void()> on_change = nullptr)
      : clock_(clock),
        grace_(grace),
        on_change_(std::move(on_change)),
        last_answer_(clock->Monotonic()) {}

  // One call, from its start to its outcome (RAII).
  class Call {
   public:
    explicit Call(ApiserverHealth* h) : h_(h) {
      if (h_ != nullptr) started_ = h_->Begin();
    }
    ~Call() {
      if (h_ != nullptr && !done_) h_->End(started_, absl::CancelledError());
    }
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;
    void Done(const absl::Status& s) {
      if (h_ != nullptr && !done_) h_->End(started_, s);
      done_ = true;
    }

   private:
    ApiserverHealth* h_;
    absl::Duration started_;
    bool done_ = false;
  };

  // Nothing answered for `grace` while the latest call failed or a call was
  // outstanding that long.
  bool Unreachable(absl::Duration now) const {
    std::optional<absl::Duration> at = UnreachableAt();
    return at.has_value() && now >= *at;
  }
  // When Unreachable() turns true if nothing answers meanwhile; none while
  // the latest call answered and none is outstanding.
  std::optional<absl::Duration> UnreachableAt() const {
    absl::MutexLock l(&mu_);
    if (failing_) return last_answer_ + grace_;
    if (!outstanding_.empty()) {
      return std::max(last_answer_, *outstanding_.begin()) + grace_;
    }
    return std::nullopt;
  }

 private:
  absl::Duration Begin() {
    const absl::Duration now = clock_->Monotonic();
    bool first;
    {
      absl::MutexLock l(&mu_);
      first = outstanding_.empty();
      outstanding_.insert(now);
    }
    // Only the first outstanding call moves UnreachableAt() earlier.
    if (first && on_change_) on_change_();
    return now;
  }
  void End(absl::Duration started, const absl::Status& s) {
    const int code = kube::HttpCode(s);
    const bool answered = s.ok() || (code != 0 && code < 500);
    bool failed_now;
    {
      absl::MutexLock l(&mu_);
      auto it = outstanding_.find(started);
      if (it != outstanding_.end()) outstanding_.erase(it);
      if (answered) last_answer_ = std::max(last_answer_, clock_->Monotonic());
      failed_now = !answered && !failing_;
      failing_ = !answered;
    }
    if (failed_now && on_change_) on_change_();
  }

  Clock* const clock_;
  const absl::Duration grace_;
  const std::function<void()> on_change_;
  mutable absl::Mutex mu_;
  absl::Duration last_answer_ ABSL_GUARDED_BY(mu_);
  bool failing_ ABSL_GUARDED_BY(mu_) = false;
  std::multiset<absl::Duration> outstanding_ ABSL_GUARDED_BY(mu_);
};

// Runs `request` (one apiserver call returning an absl::StatusOr) as one
// tracked Call of `health` (may be null) and returns its result.
template <typename Request>
auto TrackedCall(ApiserverHealth* health, Request&& request) {
  ApiserverHealth::Call call(health);
  auto r = std::forward<Request>(request)();
  call.Done(r.status());
  return r;
}

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_APISERVER_HEALTH_H_
