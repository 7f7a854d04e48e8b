#include "controller/session_tracker.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace mcl::controller {

std::string SessionHex(int64_t id) {
  return absl::StrFormat("%x", static_cast<uint64_t>(id));
}

void SessionTracker::RecordProcessed(int64_t rv, absl::Duration now) {
  if (!processed_.empty() && rv <= processed_.back().second) return;
  processed_.emplace_back(now, rv);
  // Bounded: a keepalive's sent_at is at most a few seconds old; samples older
  // than the newest one at least a minute old are never needed.
  while (processed_.size() > 2 &&
         processed_[1].first + absl::Minutes(1) < now) {
    processed_.pop_front();
  }
  if (processed_.size() > 4096) processed_.pop_front();
}

void SessionTracker::Started(int64_t id, absl::Duration ttl,
                             absl::Duration valid_from,
                             absl::Duration remaining, bool adopted) {
  id_ = id;
  started_at_ = valid_from;
  frozen_ = false;
  last_taken_.reset();
  attempted_sent_at_.reset();
  if (adopted) attempted_sent_at_ = valid_from;
  ttl_ = ttl;
  lost_ = false;
  // Loss is judged as if the lease had `remaining` of its TTL left at
  // valid_from.
  expiry_base_ = valid_from - (ttl - std::min(remaining, ttl));
  last_answer_ = valid_from;
  call_failed_ = false;
  has_confirmation_ = false;
  confirmed_rv_ = 0;
}

void SessionTracker::OnRenewed(int64_t id, int64_t ttl_seconds,
                               absl::Duration sent_at,
                               absl::Duration received_at) {
  if (id != id_ || id_ == 0 || lost_)
    return;  // a lost session stays lost (rule 7)
  if (ttl_seconds <= 0) {
    lost_ = true;
    return;
  }
  if (Lost(received_at)) {
    // The answer came after we had to assume expiry; too late to trust
    // (sidecars lapsed).
    lost_ = true;
    return;
  }
  expiry_base_ = std::max(expiry_base_, sent_at);
  last_answer_ = std::max(last_answer_, received_at);
  call_failed_ = false;
  // c = greatest rv processed at or before sent_at.
  while (processed_.size() > 1 && processed_[1].first <= sent_at)
    processed_.pop_front();
  if (!processed_.empty() && processed_.front().first <= sent_at) {
    if (!has_confirmation_ || processed_.front().second > confirmed_rv_) {
      confirmed_rv_ = processed_.front().second;
      confirmed_sent_at_ = sent_at;  // the first keepalive to confirm it
      has_confirmation_ = true;
    }
  }
}

void SessionTracker::OnLost(int64_t id) {
  if (id == id_) lost_ = true;
}

void SessionTracker::OnCallResult(bool ok, absl::Duration now) {
  call_failed_ = !ok;
  if (ok) last_answer_ = std::max(last_answer_, now);
}

bool SessionTracker::Lost(absl::Duration now) const {
  if (id_ == 0) return false;
  if (lost_) return true;
  return now >= expiry_base_ + ttl_ * (1 - contract::kRho) - contract::kMargin;
}

std::optional<absl::Duration> SessionTracker::LossDeadline() const {
  if (id_ == 0 || lost_) return std::nullopt;
  return expiry_base_ + ttl_ * (1 - contract::kRho) - contract::kMargin;
}

std::optional<absl::Duration> SessionTracker::NextChangeByTime(
    absl::Duration now) const {
  if (id_ == 0 || Lost(now)) return std::nullopt;
  absl::Duration next = *LossDeadline();
  const absl::Duration unreachable_at = UnreachableAt();
  if (!call_failed_ && unreachable_at > now)
    next = std::min(next, unreachable_at);
  return next;
}

absl::Duration SessionTracker::UnreachableAt() const {
  // Keepalives go out every TTL/3; two missed answers mean etcd is not
  // answering.
  return last_answer_ + ttl_ * 2 / 3 + contract::kMargin;
}

bool SessionTracker::Reachable(absl::Duration now) const {
  return id_ != 0 && !Lost(now) && !call_failed_ && now < UnreachableAt();
}

SessionView SessionTracker::View(absl::Duration now) const {
  SessionView v;
  v.id = id_;
  v.ttl = ttl_;
  v.alive = id_ != 0 && !Lost(now);
  v.reachable = Reachable(now);
  if (frozen_ && last_taken_) {
    // Offer no confirmation newer than the one the failing writes retry.
    v.confirmed_rv =
        last_taken_->confirmed_rv == "0" ? "" : last_taken_->confirmed_rv;
    v.confirmed_sent_at = last_taken_->sent_at;
  } else {
    v.confirmed_rv =
        has_confirmation_ ? absl::StrFormat("%d", confirmed_rv_) : "";
    v.confirmed_sent_at = confirmed_sent_at_;
  }
  v.shutting_down = shutting_down_;
  v.frozen = frozen_;
  return v;
}

std::optional<Heartbeat> SessionTracker::TakeHeartbeat(absl::Duration now) {
  // Shutting down: confirm nothing new, so every local leader lapses within
  // TTL·(1+rho)+m of the shutdown and the keys can then be released whatever
  // the state of each lock.
  if (id_ == 0 || Lost(now) || shutting_down_) return std::nullopt;
  if (frozen_ && last_taken_) return last_taken_;  // a retry, same S
  // A new session is published at once, before it confirms anything (c = 0
  // covers no write): a standby learns which session to adopt from it.
  const int64_t rv = has_confirmation_ ? confirmed_rv_ : 0;
  if (published_session_ == id_ && published_rv_ == rv) return std::nullopt;
  published_session_ = id_;
  published_rv_ = rv;
  last_taken_ =
      Heartbeat{id_, absl::StrFormat("%d", rv), ttl_, confirmed_sent_at_};
  if (has_confirmation_) NotePublishAttempt(confirmed_sent_at_);
  return last_taken_;
}

void SessionTracker::PublishFailed() {
  if (last_taken_) frozen_ = true;
}

void SessionTracker::NotePublishAttempt(absl::Duration sent_at) {
  if (!attempted_sent_at_ || sent_at > *attempted_sent_at_) {
    attempted_sent_at_ = sent_at;
  }
}

absl::Duration SessionTracker::ReleaseDeadline() const {
  if (!attempted_sent_at_) return started_at_;
  return *attempted_sent_at_ + contract::LapseAfterObservedRenewal(ttl_);
}

}  // namespace mcl::controller
