// RecordingSink: an EventSink for unit tests of the sidecar's core. It keeps
// every event with the (fake) monotonic time at which it was sent, and lets a
// test wait, with a bounded real-time wait, for the next event in a state or
// for the stream's end.
#ifndef MCL_SIDECAR_TESTING_RECORDING_SINK_H_
#define MCL_SIDECAR_TESTING_RECORDING_SINK_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "sidecar/election_api.h"

namespace mcl::sidecar::testing {

class RecordingSink : public EventSink {
 public:
  struct Received {
    StreamEvent e;
    absl::Duration mono;  // the clock's Monotonic() inside Send
  };
  explicit RecordingSink(Clock* clock) : clock_(clock) {}

  // Runs inside Send / Finish, as a stream whose end reaches the core from
  // within a write would.
  void set_on_send(std::function<void(const StreamEvent&)> f) {
    absl::MutexLock l(&mu_);
    on_send_ = std::move(f);
  }

  void Send(const StreamEvent& e) override {
    std::function<void(const StreamEvent&)> hook;
    {
      absl::MutexLock l(&mu_);
      events_.push_back({e, clock_->Monotonic()});
      hook = on_send_;
    }
    if (hook) hook(e);
  }
  void Finish(const absl::Status& s) override {
    absl::MutexLock l(&mu_);
    if (!finished_) status_ = s;
    finished_ = true;
  }

  // The next event not yet returned by Next/WaitFor, if one arrives within
  // `timeout` (real time).
  std::optional<Received> Next(absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock l(&mu_);
    auto more = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return next_ < events_.size();
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&more), timeout))
      return std::nullopt;
    return events_[next_++];
  }
  // Skips events until one in `state`.
  std::optional<Received> WaitFor(LeaderState state,
                                  absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock l(&mu_);
    auto found = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      while (next_ < events_.size()) {
        if (events_[next_].e.event.state == state) return true;
        ++next_;
      }
      return false;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&found), timeout))
      return std::nullopt;
    return events_[next_++];
  }
  // No event beyond those returned so far.
  bool Quiet() {
    absl::MutexLock l(&mu_);
    return next_ == events_.size();
  }
  std::optional<absl::Status> WaitFinished(
      absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock l(&mu_);
    auto done = [this]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout))
      return std::nullopt;
    return status_;
  }
  std::vector<Received> events() {
    absl::MutexLock l(&mu_);
    return events_;
  }
  // "LEADER(a/7 until 16m41.83s @16m40s) LOST(a/7: resigned @...) ..." for
  // failure messages.
  std::string Describe() {
    absl::MutexLock l(&mu_);
    std::vector<std::string> parts;
    for (const Received& r : events_) {
      const LeadershipEvent& e = r.e.event;
      parts.push_back(absl::StrCat(
          LeaderStateName(e.state), "(", e.grant.leader, "/", e.grant.token,
          e.reason.empty() ? "" : ": ", e.reason,
          e.valid_until
              ? absl::StrCat(" until ", absl::FormatDuration(*e.valid_until))
              : "",
          " @", absl::FormatDuration(r.mono), ")"));
    }
    return absl::StrJoin(parts, " ");
  }

 private:
  Clock* const clock_;
  absl::Mutex mu_;
  std::vector<Received> events_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::function<void(const StreamEvent&)> on_send_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mcl::sidecar::testing

#endif  // MCL_SIDECAR_TESTING_RECORDING_SINK_H_
