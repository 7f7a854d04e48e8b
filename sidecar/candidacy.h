// Candidacy: the local half of a campaign — which spec write (if any) this
// candidate's sidecar makes next on the MultiClusterLease of its own cluster.
// Pure: no I/O, time from an injected Clock.
//
// Local replicas of one lock contend on the spec with optimistic concurrency
// (every write is preconditioned on the resourceVersion it was computed from,
// so exactly one of two racing writers wins and the other gets 409). A
// candidacy is the pair (spec.holderIdentity, spec.holderInstance): each
// Campaign stream has its own random instance, so two candidacies of one
// identity (a copied pod name, a restarted sidecar) are two holders. A
// candidate takes the spec over only when
//   * the object does not exist (create), or
//   * spec.holderIdentity is absent (the holder resigned), or
//   * the holder's (holderIdentity, holderInstance, renewTime) has not
//     changed for the holder's leaseDurationSeconds, measured on this
//     sidecar's monotonic clock from when it first observed it. renewTime is
//     compared only for change, never with a local clock (S3); a sidecar that
//     just started counts from its start, which can only delay a take-over,
//     never hasten it. This holds for a stale candidacy of my own identity
//     too (a sidecar that crashed and restarted).
// Another candidacy of my identity that *renews* while I watch is live: one
// identity must not campaign twice for a lock, so duplicate() turns true and
// the adapter ends this campaign (ALREADY_EXISTS).
// The holder renews spec.renewTime every leaseDuration/4 (design.md
// §Confirmation, Timing). Taking over never grants leadership by itself: the
// controller grants the new holder only after the old grantee acked or timed
// out (design.md §Ack).
#ifndef MCL_SIDECAR_CANDIDACY_H_
#define MCL_SIDECAR_CANDIDACY_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "common/clock.h"
#include "sidecar/lease_view.h"

namespace mcl::sidecar {

class Candidacy {
 public:
  enum class Action {
    // Nothing to write now; wake up at `wake_at` (if set) and ask again.
    kNone,
    // Create the object with holder = me.
    kCreate,
    // Update spec.holderIdentity = me, preconditioned on `precondition_rv`.
    kTakeOver,
    // Update spec.renewTime, preconditioned on `precondition_rv`.
    kRenew,
  };
  struct Decision {
    Action action = Action::kNone;
    int64_t precondition_rv = 0;
    std::optional<absl::Duration> wake_at;  // monotonic
    std::string why;                        // for logs
  };

  Candidacy(std::string identity, std::string instance,
            absl::Duration lease_duration, Clock* clock);

  // The latest object version (or a deletion / "does not exist" with
  // exists=false). Older versions are ignored.
  void Observe(const LeaseView& v);
  // My spec write was accepted; `sent_at` is when it was sent (the renewal
  // period restarts there).
  void WriteSucceeded(absl::Duration sent_at) { last_write_ = sent_at; }
  // A write failed: forget the renewal time so the next decision renews at once
  // (after backoff).
  void WriteFailed() { last_write_.reset(); }

  Decision Next() const;

  const std::string& identity() const { return identity_; }
  const std::string& instance() const { return instance_; }
  // Another candidacy of my identity renewed the spec while I watched: it is
  // live, and this one must give up. Its instance is other_instance().
  bool duplicate() const { return duplicate_; }
  const std::string& other_instance() const { return seen_instance_; }
  absl::Duration lease_duration() const { return lease_duration_; }
  // Every quarter of the lease; and, while the status names an etcd session
  // TTL (a grant to this cluster), at least every quarter of that TTL too: a
  // renewal counts toward leadership for only about one TTL after it was sent
  // (design.md §Confirmation, Timing), so a lease much longer than the TTL
  // would otherwise let leadership lapse between renewals.
  absl::Duration renew_period() const {
    absl::Duration period = lease_duration_ / 4;
    if (latest_.has_value() && latest_->session_ttl_ms > 0) {
      period =
          std::min(period, absl::Milliseconds(latest_->session_ttl_ms) / 4);
    }
    return period;
  }
  bool synced() const { return latest_.has_value(); }
  // The latest version's spec names this candidacy (identity and instance).
  bool holding() const;

 private:
  std::string identity_;
  std::string instance_;
  absl::Duration lease_duration_;
  Clock* clock_;
  std::optional<LeaseView> latest_;
  std::optional<absl::Duration> last_write_;
  // The other holder's (identity, instance, renewTime) as last seen, and when
  // it was first seen.
  std::string seen_holder_, seen_instance_, seen_renew_;
  absl::Duration seen_since_;
  bool duplicate_ = false;
};

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_CANDIDACY_H_
