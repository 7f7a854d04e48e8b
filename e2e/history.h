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
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mcl::e2e {

struct Interval {
  std::string app;       // one app process (or candidacy): unique
  std::string identity;  // the identity it campaigned with; "" = app
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

// What one app was told, or what happened to it, as the fault campaign's
// recorder logs it (e2e/campaign/recorder.cc), on CLOCK_MONOTONIC.
struct AppEvent {
  enum class Kind {
    kLeader,  // LEADER: a new grant, or a renewal of the same token
    kEnd,     // LOST or any other state, stream end, a clock error
    kDeath,   // the process was killed (recorded by whoever killed it)
  };
  std::string app;
  std::string identity;
  absl::Duration at;
  Kind kind = Kind::kEnd;
  int64_t token = 0;
  // kLeader: the validity bound (valid_until_monotonic_ns); infinite when the
  // sidecar sent none.
  absl::Duration valid_until = absl::InfiniteDuration();
};

// The intervals in which each app acted as leader, judged as its client
// library does (shared/DESIGN.md, fault model): from a LEADER until the first
// of an end, the app's death, or the validity bound of its latest LEADER. A
// LEADER with the token the app holds moves the bound (a renewal); one that
// comes after the bound passed starts a new interval of the same grant. Events
// of one app are taken in time order, ties in the given order.
std::vector<Interval> IntervalsFromEvents(std::vector<AppEvent> events);

// L3: how long after `heal` some app acted as leader (zero when one did at
// `heal`); nullopt when none did before `until`.
std::optional<absl::Duration> LeaderAfter(
    const std::vector<Interval>& intervals, absl::Duration heal,
    absl::Duration until);

// The pure checks, for tests of the checker itself.
absl::Status CheckIntervals(std::vector<Interval> intervals);
absl::Status CheckObservations(
    const std::vector<Interval>& intervals,
    const std::map<std::string, std::vector<Observation>>& observations);

}  // namespace mcl::e2e

#endif  // MCL_E2E_HISTORY_H_
