// LeaderState: what one client may believe about its leadership, as a pure
// function of the events its Campaign streams delivered and of the node's
// CLOCK_MONOTONIC. No threads, no I/O; //client-stubs/cpp:leadership drives it.
//
// A *term* is one uninterrupted period in which the app may act as leader: it
// starts at a LEADER event whose bound lies in the future and ends at the
// first of
//   - any other event (LOST, FOLLOWER, NO_LEADER, an unknown state),
//   - a LEADER of another grant (another fencing token),
//   - the end of the stream (OnStreamEnd; a reconnect starts from nothing),
//   - its bound: the monotonic instant `valid_until` of the latest LEADER.
// A LEADER with the term's token that arrives *before* the bound is a renewal:
// it replaces the bound by its own (the sidecar's latest word, later or not).
// One that arrives at or after the bound starts a new term, even with the same
// token (proto: "the same grant is confirmed again after a lapse"), so a late
// renewal never revives a lapsed term and the app's function is started again.
//
// Safety argument (docs/design.md, "The app's bound"; decision 3 of the plan):
// the sidecar sets `valid_until` to its own LOST deadline for the grant, which
// comes before any other candidate can be granted the lock. App and sidecar
// read the same kernel CLOCK_MONOTONIC, so comparing `valid_until` with our own
// reading needs no translation, and no delivery delay can move the bound
// later: a late event only leaves less time. We never add `remaining` to a
// receive time (that would extend the bound by the delay). Hence LiveTerm(now)
// is non-null only at instants before the sidecar's LOST deadline of a grant it
// confirmed to this stream — exactly when the sidecar itself would still say
// LEADER.
//
// Permanent errors (OnEvent returns them; from then on nothing is live and the
// campaign must end — a caller that kept it open would hold a lock it cannot
// use):
//   FAILED_PRECONDITION  the clock check failed: our CLOCK_MONOTONIC on receipt
//                        is smaller than the event's `sent_monotonic_ns`, so we
//                        are not on the sidecar's clock (another host, another
//                        time namespace) and its bound means nothing here;
//   FAILED_PRECONDITION  a LEADER without `validity`: the sidecar is older than
//                        the bound. Safe default: never lead on it. No bound is
//                        known for such a grant (counting from receipt would
//                        stretch it by the delivery delay), so trusting it at
//                        all could let two apps lead. Upgrade the sidecar.
//   INVALID_ARGUMENT     a LEADER with a malformed bound or fencing token
//                        (sent_monotonic_ns <= 0, fencing_token <= 0).
#ifndef MCL_CLIENT_STUBS_CPP_LEADER_STATE_H_
#define MCL_CLIENT_STUBS_CPP_LEADER_STATE_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "mcl/v1/election.pb.h"

namespace mcl::client {

struct Term {
  uint64_t id = 0;  // 1, 2, ...: one per term, never reused by a LeaderState
  mcl::v1::Leader grant;       // identity, cluster, fencing token, acquire time
  absl::Duration valid_until;  // CLOCK_MONOTONIC; the latest bound
  absl::Duration started;      // CLOCK_MONOTONIC when its first LEADER arrived
};

class LeaderState {
 public:
  // Applies `event`, received at `now` (CLOCK_MONOTONIC as a Duration since
  // its epoch). See the file comment for the errors.
  absl::Status OnEvent(const mcl::v1::LeadershipEvent& event,
                       absl::Duration now);
  // The stream ended, whatever the reason: the term ends. Events of the next
  // stream start from nothing (a reconnect never carries a term over).
  void OnStreamEnd() { term_.reset(); }

  // The term the app may act in at `now`, or nullopt.
  std::optional<Term> LiveTerm(absl::Duration now) const;
  // Whether term `id` is still live at `now` (false once it ended, forever).
  bool IsLive(uint64_t id, absl::Duration now) const;
  // Whether the latest term is `id` (live or lapsed, but not ended by an
  // event or a stream end).
  bool Holds(uint64_t id) const { return term_.has_value() && term_->id == id; }
  // The bound of the live term (the next instant at which LiveTerm may change
  // without an event), or absl::InfiniteDuration() when none is live.
  absl::Duration NextDeadline(absl::Duration now) const;
  // Set once OnEvent failed; the error it returned.
  const absl::Status& failure() const { return failure_; }

 private:
  std::optional<Term> term_;
  uint64_t next_id_ = 1;
  absl::Status failure_;
};

// Checks a LEADER event's bound against `now` as the file comment says; OK for
// other states. Exposed for the CLI's diagnostics and the tests.
absl::Status CheckValidity(const mcl::v1::LeadershipEvent& event,
                           absl::Duration now);

}  // namespace mcl::client

#endif  // MCL_CLIENT_STUBS_CPP_LEADER_STATE_H_
