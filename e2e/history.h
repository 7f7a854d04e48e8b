// History: what every app was told about leadership, and what every observer
// saw, on one machine's monotonic clock; and the checker that judges it against
// S1 and S2 of shared/DESIGN.md.
//
// Apps record LEADER(token) when their Campaign stream says so and LOST (or
// their death) when it ends. Since every process in the end-to-end tests runs
// on this machine, intervals from different apps are comparable on
// CLOCK_MONOTONIC.
#ifndef MCL_E2E_HISTORY_H_
#define MCL_E2E_HISTORY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mcl::e2e {

struct Interval {
  std::string app;
  int64_t token = 0;
  absl::Duration start;  // monotonic
  absl::Duration end =
      absl::InfiniteDuration();  // open while the app still leads
};

struct Observation {
  std::string identity;  // empty: no leader
  int64_t token = 0;
};

class History {
 public:
  void Leader(const std::string& app, int64_t token, absl::Duration at);
  // LOST, stream end or the app's death: closes the app's open interval, if
  // any.
  void Lost(const std::string& app, absl::Duration at);
  void Observed(const std::string& observer, const Observation& o);

  std::vector<Interval> Intervals() const;
  std::map<std::string, std::vector<Observation>> Observations() const;
  // The app leading now (open interval), or "" if none.
  std::string CurrentLeader() const;
  int64_t CurrentToken() const;
  // Waits until `holds(intervals)` is true, checked at once and after every
  // change to the history; false if `timeout` passes first.
  bool WaitUntil(const std::function<bool(const std::vector<Interval>&)>& holds,
                 absl::Duration timeout) const;

  // S1: no two intervals overlap. S2: tokens strictly increase in the order
  // leadership was granted. Observers: each one's tokens strictly increase, and
  // a token names the same identity for every observer and app. Returns the
  // first violation, described.
  absl::Status Check() const;
  // Also: every observer saw exactly the same sequence of leaders (after
  // dropping "no leader").
  absl::Status CheckObserversAgree() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<Interval> intervals_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<Observation>> observations_
      ABSL_GUARDED_BY(mu_);
};

// The pure checks, for tests of the checker itself.
absl::Status CheckIntervals(std::vector<Interval> intervals);
absl::Status CheckObservations(
    const std::vector<Interval>& intervals,
    const std::map<std::string, std::vector<Observation>>& observations);

}  // namespace mcl::e2e

#endif  // MCL_E2E_HISTORY_H_
