#include "e2e/history.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace mcl::e2e {

void History::Leader(const std::string& app, int64_t token, absl::Duration at) {
  absl::MutexLock l(&mu_);
  for (Interval& i : intervals_) {
    // A new token while still leading (re-grant) closes the previous interval
    // at the same instant.
    if (i.app == app && i.end == absl::InfiniteDuration()) i.end = at;
  }
  intervals_.push_back({app, "", token, at, absl::InfiniteDuration()});
}

void History::Lost(const std::string& app, absl::Duration at) {
  absl::MutexLock l(&mu_);
  for (Interval& i : intervals_) {
    if (i.app == app && i.end == absl::InfiniteDuration()) i.end = at;
  }
}

void History::Observed(const std::string& observer, const Observation& o) {
  absl::MutexLock l(&mu_);
  auto& seq = observations_[observer];
  if (!seq.empty() && seq.back().identity == o.identity &&
      seq.back().token == o.token) {
    return;  // the same view repeated
  }
  seq.push_back(o);
}

std::vector<Interval> History::Intervals() const {
  absl::MutexLock l(&mu_);
  return intervals_;
}

std::map<std::string, std::vector<Observation>> History::Observations() const {
  absl::MutexLock l(&mu_);
  return observations_;
}

std::string History::CurrentLeader() const {
  absl::MutexLock l(&mu_);
  for (const Interval& i : intervals_) {
    if (i.end == absl::InfiniteDuration()) return i.app;
  }
  return "";
}

bool History::WaitUntil(
    const std::function<bool(const std::vector<Interval>&)>& holds,
    absl::Duration timeout) const {
  absl::MutexLock l(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return holds(intervals_);
  };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

int64_t History::CurrentToken() const {
  absl::MutexLock l(&mu_);
  for (const Interval& i : intervals_) {
    if (i.end == absl::InfiniteDuration()) return i.token;
  }
  return 0;
}

absl::Status CheckIntervals(std::vector<Interval> intervals) {
  std::sort(
      intervals.begin(), intervals.end(),
      [](const Interval& a, const Interval& b) { return a.start < b.start; });
  for (size_t k = 1; k < intervals.size(); ++k) {
    const Interval& prev = intervals[k - 1];
    const Interval& cur = intervals[k];
    // The same grant told again after a lapse of its confirmation (LOST, then
    // LEADER with the same token): allowed, provided it does not overlap; no
    // other grant can sit in between, since that one would carry a larger
    // token.
    const bool same_grant = cur.app == prev.app && cur.token == prev.token;
    if (cur.start < prev.end) {
      return absl::FailedPreconditionError(absl::StrCat(
          "S1 violated: ", cur.app, " (token ", cur.token,
          ") was told LEADER at ", absl::FormatDuration(cur.start), " while ",
          prev.app, " (token ", prev.token, ") led until ",
          prev.end == absl::InfiniteDuration()
              ? "now"
              : absl::FormatDuration(prev.end)));
    }
    if (cur.token <= prev.token && !same_grant) {
      return absl::FailedPreconditionError(absl::StrCat(
          "S2 violated: token ", cur.token, " granted to ", cur.app,
          " after token ", prev.token, " granted to ", prev.app));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckObservations(
    const std::vector<Interval>& intervals,
    const std::map<std::string, std::vector<Observation>>& observations) {
  std::map<int64_t, std::string> owner;
  for (const Interval& i : intervals) {
    owner[i.token] = i.identity.empty() ? i.app : i.identity;
  }
  for (const auto& [observer, seq] : observations) {
    int64_t last = 0;
    for (const Observation& o : seq) {
      if (o.identity.empty()) continue;
      if (o.token < last) {
        return absl::FailedPreconditionError(
            absl::StrCat("observer ", observer, " saw token ", o.token,
                         " after token ", last));
      }
      last = o.token;
      auto [it, inserted] = owner.emplace(o.token, o.identity);
      if (!inserted && it->second != o.identity) {
        return absl::FailedPreconditionError(absl::StrCat(
            "token ", o.token, " names ", it->second,
            " elsewhere but observer ", observer, " saw ", o.identity));
      }
    }
  }
  return absl::OkStatus();
}

std::vector<Interval> IntervalsFromEvents(std::vector<AppEvent> events) {
  std::stable_sort(events.begin(), events.end(),
                   [](const AppEvent& a, const AppEvent& b) {
                     return a.app != b.app ? a.app < b.app : a.at < b.at;
                   });
  std::vector<Interval> out;
  std::optional<Interval> open;  // the current app's interval
  absl::Duration bound = absl::InfiniteDuration();
  auto close = [&](absl::Duration at) {
    if (!open.has_value()) return;
    open->end = std::min(at, bound);
    if (open->end > open->start) out.push_back(*open);
    open.reset();
  };
  for (size_t k = 0; k < events.size(); ++k) {
    const AppEvent& e = events[k];
    if (k > 0 && events[k - 1].app != e.app) close(absl::InfiniteDuration());
    if (e.kind != AppEvent::Kind::kLeader) {
      close(e.at);
      continue;
    }
    if (open.has_value() && open->token == e.token && e.at < bound) {
      bound = e.valid_until;  // a renewal: the latest bound counts
      continue;
    }
    close(e.at);  // another grant, or the same one after its bound passed
    if (e.valid_until <= e.at) continue;  // arrived too late to act on
    open = Interval{e.app, e.identity, e.token, e.at, absl::InfiniteDuration()};
    bound = e.valid_until;
  }
  close(absl::InfiniteDuration());
  return out;
}

std::optional<absl::Duration> LeaderAfter(
    const std::vector<Interval>& intervals, absl::Duration heal,
    absl::Duration until) {
  std::optional<absl::Duration> first;
  for (const Interval& i : intervals) {
    if (i.end <= heal || i.start >= until) continue;
    const absl::Duration after = std::max(i.start, heal) - heal;
    if (!first.has_value() || after < *first) first = after;
  }
  return first;
}

absl::Status History::Check() const {
  absl::Status s = CheckIntervals(Intervals());
  if (!s.ok()) return s;
  return CheckObservations(Intervals(), Observations());
}

absl::Status History::CheckObserversAgree() const {
  auto leaders_of = [](const std::vector<Observation>& seq) {
    std::vector<Observation> leaders;
    for (const Observation& o : seq) {
      if (!o.identity.empty()) leaders.push_back(o);
    }
    return leaders;
  };
  auto describe = [](const std::vector<Observation>& v) {
    std::string s;
    for (const Observation& o : v)
      absl::StrAppend(&s, o.identity, "#", o.token, " ");
    return s;
  };
  auto all = Observations();
  if (all.empty()) return absl::OkStatus();
  const std::string& reference_name = all.begin()->first;
  const std::vector<Observation> reference = leaders_of(all.begin()->second);
  for (const auto& [observer, seq] : all) {
    std::vector<Observation> leaders = leaders_of(seq);
    bool same = leaders.size() == reference.size();
    for (size_t k = 0; same && k < leaders.size(); ++k) {
      same = leaders[k].identity == reference[k].identity &&
             leaders[k].token == reference[k].token;
    }
    if (!same) {
      return absl::FailedPreconditionError(absl::StrCat(
          "observers disagree: ", reference_name, " saw ", describe(reference),
          "but ", observer, " saw ", describe(leaders)));
    }
  }
  return absl::OkStatus();
}

}  // namespace mcl::e2e
