// SessionTracker: the controller's etcd session as the election logic sees it,
// and the bookkeeping behind confirmations (design.md §Confirmation). Pure; the
// adapter feeds it events with monotonic timestamps and asks it what to
// publish. Not thread-safe (the adapter serialises calls).
//
// Confirmation. The informer reports, after its handlers have run for a
// MultiClusterLease event, the resourceVersion it has processed
// (RecordProcessed). The etcd Lease client reports for each answered keepalive
// the monotonic time `sent_at` taken just before that keepalive was sent. We
// publish c = the greatest resourceVersion processed at or before `sent_at`:
// every renewal w <= c was observed before the keepalive left, so etcd
// refreshed the lease after the sidecar sent w (design.md §Confirmation step
// 3). Picking c from records taken *before* sent_at is the same as "read c
// before sending", without a hook inside the keepalive loop; the informer
// reports every event (Handlers::on_synced), so a keepalive sent right after a
// grant confirms the renewal the grant was based on.
//
// Publication and release (design.md §"Stand-down"). A confirmation is
// (session, c) with S, the send time of the first keepalive that confirmed c:
// every write w <= c was observed before S, so a sidecar counting from its own
// T_w < S is valid until before S + TTL·(1−rho) − m on its clock, hence before
// S + TTL·(1+rho) + m on ours. We remember the largest S whose confirmation we
// *tried* to publish (a heartbeat write or a status write, whether or not it
// landed). While heartbeat writes fail, retries carry the same confirmation
// and status writes are offered no newer one ("frozen"), so that S stops
// moving; ReleaseDeadline() = S + TTL·(1+rho) + m is then the moment no local
// candidate can still count itself leader on any confirmation of ours, and
// the keys can be released without acks.
//
// Loss. etcd refreshed the lease no earlier than the last answered keepalive's
// sent_at (S), so it may expire at S + TTL by etcd's clock; by ours, allowing
// clock-rate drift rho and margin m, from S + TTL·(1−rho) − m on. From then on
// the session counts as lost: no key of it is ours any more (design.md
// §"Controller reconcile" rule 7) and no confirmation is published for it
// again.
#ifndef MCL_CONTROLLER_SESSION_TRACKER_H_
#define MCL_CONTROLLER_SESSION_TRACKER_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "common/contract.h"

namespace mcl::controller {

// The session as one lock's reconcile needs it.
struct SessionView {
  int64_t id = 0;          // etcd lease ID; 0 = none
  bool alive = false;      // a session whose lease cannot have expired yet
  bool reachable = false;  // etcd answers (keepalives answered recently, last
                           // KV call worked)
  absl::Duration ttl = absl::Seconds(10);
  // c of the last answered keepalive ("" before the first); while heartbeat
  // writes fail, the one those writes retry (see the file comment).
  std::string confirmed_rv;
  // S of confirmed_rv: report it with NotePublishAttempt when a status write
  // carries confirmed_rv.
  absl::Duration confirmed_sent_at;
  bool shutting_down = false;
  // Heartbeat writes are failing: confirmations no longer move forward.
  bool frozen = false;
};

// What the heartbeat Lease publishes (design.md §Objects "Heartbeat Lease").
struct Heartbeat {
  int64_t session = 0;
  std::string confirmed_rv;
  absl::Duration ttl;
  absl::Duration sent_at;  // S of confirmed_rv (see the file comment)
};

std::string SessionHex(int64_t id);

class SessionTracker {
 public:
  // The informer has processed every MultiClusterLease event up to `rv` by
  // monotonic time `now`.
  void RecordProcessed(int64_t rv, absl::Duration now);

  // A new (or adopted) session. `valid_from`: a monotonic time before which
  // etcd had granted or refreshed the lease (Grant's sent_at; for an adopted
  // lease, the sent_at of the TimeToLive that reported `remaining`). An
  // adopted session may carry confirmations its previous owner published,
  // all sent before `valid_from`: they count as attempted at valid_from.
  void Started(int64_t id, absl::Duration ttl, absl::Duration valid_from,
               absl::Duration remaining, bool adopted = false);
  // An answered keepalive of session `id`. ttl_seconds <= 0 means etcd says the
  // lease is gone.
  void OnRenewed(int64_t id, int64_t ttl_seconds, absl::Duration sent_at,
                 absl::Duration received_at);
  // The keepalive loop gave up on `id` (etcd said gone, or nothing answered for
  // a TTL).
  void OnLost(int64_t id);
  // Result of an etcd KV call (Txn, Range, Watch): a failure makes the backend
  // unreachable until the next success or answered keepalive.
  void OnCallResult(bool ok, absl::Duration now);
  // From now on no heartbeat is published (TakeHeartbeat returns nothing).
  void SetShuttingDown() { shutting_down_ = true; }

  SessionView View(absl::Duration now) const;
  bool Lost(absl::Duration now) const;
  // View(now).reachable, without building the view.
  bool Reachable(absl::Duration now) const;
  // The loss deadline: from then on Lost() (none without a live session).
  std::optional<absl::Duration> LossDeadline() const;
  // The next moment after `now` at which View(), Lost() or TakeHeartbeat() can
  // change with no event in between: the loss deadline, or the moment etcd
  // counts as unreachable for want of answers. None when only an event can
  // change them. The controller's session loop sleeps until then.
  std::optional<absl::Duration> NextChangeByTime(absl::Duration now) const;
  int64_t id() const { return id_; }

  // A confirmation not yet published (session or c changed since the last
  // TakeHeartbeat). A new session is published at once with c = "0", which
  // confirms no write. While frozen, the failed heartbeat again (a retry).
  // Counts as an attempt to publish it.
  std::optional<Heartbeat> TakeHeartbeat(absl::Duration now);
  // The heartbeat write failed: freeze (retries carry the same confirmation).
  void PublishFailed();
  // A heartbeat write landed: confirmations move forward again.
  void PublishSucceeded() { frozen_ = false; }
  // A status write carried the confirmation whose S is `sent_at`.
  void NotePublishAttempt(absl::Duration sent_at);
  // S + TTL·(1+rho) + m for the newest confirmation we tried to publish (see
  // the file comment); for a session that never published one, its start.
  absl::Duration ReleaseDeadline() const;
  bool frozen() const { return frozen_; }

 private:
  absl::Duration UnreachableAt() const;

  // (time, rv), both increasing.
  std::deque<std::pair<absl::Duration, int64_t>> processed_;
  int64_t id_ = 0;
  absl::Duration ttl_ = absl::Seconds(10);
  absl::Duration expiry_base_;  // S: etcd refreshed the lease after this
  bool lost_ = false;
  absl::Duration last_answer_;
  bool call_failed_ = false;
  int64_t confirmed_rv_ = 0;
  absl::Duration confirmed_sent_at_;
  bool has_confirmation_ = false;
  int64_t published_session_ = 0;
  int64_t published_rv_ = -1;
  bool shutting_down_ = false;
  bool frozen_ = false;
  std::optional<Heartbeat> last_taken_;  // what a frozen retry publishes
  absl::Duration started_at_;
  std::optional<absl::Duration> attempted_sent_at_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_SESSION_TRACKER_H_
