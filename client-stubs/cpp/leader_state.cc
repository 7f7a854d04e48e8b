#include "client-stubs/cpp/leader_state.h"

#include "absl/strings/str_cat.h"

namespace mcl::client {
namespace {

std::string LockName(const mcl::v1::LeadershipEvent& e) {
  return e.lock().namespace_().empty()
             ? e.lock().name()
             : absl::StrCat(e.lock().namespace_(), "/", e.lock().name());
}

}  // namespace

absl::Status CheckValidity(const mcl::v1::LeadershipEvent& e,
                           absl::Duration now) {
  if (e.state() != mcl::v1::LEADER) return absl::OkStatus();
  if (!e.has_validity()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the sidecar sent LEADER for lock ", LockName(e),
        " without a validity bound: it is older than this client library, "
        "which never acts as leader without one (no safe bound is known for "
        "such a grant); upgrade the sidecar"));
  }
  const mcl::v1::Validity& v = e.validity();
  if (v.sent_monotonic_ns() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "LEADER for lock ", LockName(e),
        " has validity.sent_monotonic_ns = ", v.sent_monotonic_ns(),
        "; a sidecar always sets it to its CLOCK_MONOTONIC"));
  }
  if (e.leader().fencing_token() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("LEADER for lock ", LockName(e), " has fencing token ",
                     e.leader().fencing_token(), "; tokens are positive"));
  }
  const absl::Duration sent = absl::Nanoseconds(v.sent_monotonic_ns());
  if (now < sent) {
    return absl::FailedPreconditionError(absl::StrCat(
        "clock check failed for lock ", LockName(e),
        ": the sidecar sent LEADER at CLOCK_MONOTONIC ", v.sent_monotonic_ns(),
        " ns but this process read ", absl::ToInt64Nanoseconds(now),
        " ns on receipt, so it does not share the sidecar's clock (another "
        "host, or another time namespace) and cannot enforce the bound; run "
        "the app in the sidecar's pod (MCL_SIDECAR_ADDR must be the local "
        "sidecar)"));
  }
  return absl::OkStatus();
}

absl::Status LeaderState::OnEvent(const mcl::v1::LeadershipEvent& e,
                                  absl::Duration now) {
  if (!failure_.ok()) return failure_;
  if (e.state() != mcl::v1::LEADER) {
    term_.reset();
    return absl::OkStatus();
  }
  absl::Status check = CheckValidity(e, now);
  if (!check.ok()) {
    term_.reset();
    failure_ = check;
    return check;
  }
  const absl::Duration until =
      absl::Nanoseconds(e.validity().valid_until_monotonic_ns());
  const bool renewal =
      term_.has_value() && now < term_->valid_until &&
      term_->grant.fencing_token() == e.leader().fencing_token();
  if (renewal) {
    term_->valid_until = until;
    term_->grant = e.leader();
    return absl::OkStatus();
  }
  term_.reset();
  // A bound already past on receipt (a long delivery delay, or an app paused
  // while the event waited) starts nothing.
  if (now < until) term_ = Term{next_id_++, e.leader(), until, now};
  return absl::OkStatus();
}

std::optional<Term> LeaderState::LiveTerm(absl::Duration now) const {
  if (term_.has_value() && now < term_->valid_until) return term_;
  return std::nullopt;
}

bool LeaderState::IsLive(uint64_t id, absl::Duration now) const {
  return term_.has_value() && term_->id == id && now < term_->valid_until;
}

absl::Duration LeaderState::NextDeadline(absl::Duration now) const {
  if (term_.has_value() && now < term_->valid_until) return term_->valid_until;
  return absl::InfiniteDuration();
}

}  // namespace mcl::client
