// Leadership: the sidecar's rule for telling one Campaign "you lead"
// (docs/design.md §The sidecar's rule, §Confirmation). A pure state machine:
// no I/O, time from an injected Clock, one instance per Campaign stream. The
// adapter (lock_table.h) feeds it every object version it learns (watch
// events and its own write responses), its own writes (resourceVersion and
// monotonic send time), confirmations (from the heartbeat Lease and from
// status), and calls Tick() at deadline(); it forwards TakeEvents() to the
// stream.
//
// THE RULE. LEADER for token t iff all hold:
//   * the candidacy is open (stream alive, not resigned);
//   * the latest object version known (highest resourceVersion) has
//       spec.holderIdentity == me, spec.holderInstance == my instance,
//       status.leader == me, status.leaderCluster == my cluster,
//       status.leaderInstance == my instance, status.fencingToken == t,
//       status.session == s;
//   * now_mono < T_w* + V, where w* is my latest write with w* <= c for a
//     confirmation (s, c, TTL), T_w* is the monotonic time taken *before*
//     that write was sent, and V = TTL·(1 − ρ) − m
//     (contract::ValidityAfterConfirmedWrite).
//
// WHY THIS IS SAFE (S1). A confirmation (s, c) is published after etcd
// answered a keepalive of session s that the controller sent after its
// informer had processed resourceVersion c. If my write w <= c, the
// controller saw w before sending that keepalive, and I sent w before it was
// applied:
//
//     T_w  <  t_send(keepalive)  <  t_refresh(lease s)
//
// (one causal chain; no clocks compared). etcd keeps lease s, and the key of
// the grant attached to it, until at least t_refresh + TTL on etcd's clock.
// Measured on my monotonic clock, whose rate differs from etcd's by at most
// ρ, that interval is at least TTL·(1 − ρ) long, so I say LEADER only until
// T_w* + TTL·(1 − ρ) − m; the margin m (150 ms) absorbs the lateness of my own
// timer and the time the app needs to act on LOST. A confirmation that
// arrives late (a slow watch) cannot extend anything: validity is counted
// from T_w*, a moment before the keepalive, never from the arrival.
// Out-of-order confirmations only ever name older writes, so keeping the
// maximum c per session is sound. Confirmations of another session than
// status.session are kept (a new session may be named by the next status)
// but never used for the current one. Writes whose resourceVersion is unknown
// (timeouts, conflicts) are never used.
//
// Revocation: the controller revokes a grant by clearing status.leader; the
// adapter keeps the write invariant (design.md §The sidecar's rule): every
// object version is applied here before any spec write based on it is sent
// (CheckWritePrecondition), so LOST is emitted before the write that acks the
// revocation, and the controller releases the key only after that ack or
// after a timeout that outlasts every validity this class can compute.
//
// One identity, two candidacies (a copied pod name, a restarted sidecar):
// each Campaign stream has its own random instance, and the controller grants
// the pair (identity, instance), a new instance always with a new token. A
// grant is mine only if it names my instance, so two candidacies of one
// identity can never both hold the rule, and never with the same token.
//
// Clock skew tolerated: none needed between wall clocks (they are never
// compared, S3); the monotonic clock *rates* of sidecar, controller and etcd
// leader may differ by up to ρ = 1 % (common/contract.h).
//
// THE APP'S BOUND. Every LEADER event carries valid_until = the deadline the
// rule computes at that moment, and deadline() (when LOST is due) is always
// the bound of the last LEADER event: the sidecar's LOST deadline and the
// app's bound are one number. While leading, a confirmation of a newer write
// moves it forward: a LEADER renewal (same grant, later bound) goes out. It
// never moves backwards without a LOST: if the rule's deadline would become
// earlier than the bound already sent (the writes it was counted from were
// forgotten), or the bound has passed before a newer confirmation arrived,
// LOST comes first and then LEADER with the new bound. So every bound an app
// was given is at or before the moment the sidecar says LOST, and LOST
// follows every bound that passes (docs/design.md §The app's bound).
//
// Events (what the stream sees): the first event is Current(); then one
// event per change of (state, grant, bound). Losing leadership always emits
// LOST (with the lost grant and a reason) before anything else, then the new
// view (FOLLOWER / NO_LEADER) unless the grant still names me but is not
// confirmed, in which case the stream stays in LOST and later says LEADER
// again (same or new token) once a fresh confirmation arrives. A grant that
// names me but is not (yet) confirmed is reported as NO_LEADER to a candidate
// that was not leading: nobody may act as leader yet.
#ifndef MCL_SIDECAR_LEADERSHIP_H_
#define MCL_SIDECAR_LEADERSHIP_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "sidecar/lease_view.h"

namespace mcl::sidecar {

enum class LeaderState { kNoLeader, kFollower, kLeader, kLost };
const char* LeaderStateName(LeaderState s);

struct LeadershipEvent {
  LeaderState state = LeaderState::kNoLeader;
  // FOLLOWER / LEADER: the current grant; LOST: the grant that was lost.
  Grant grant;
  // LOST: why.
  std::string reason;
  // LEADER: the bound, on the monotonic clock: the LOST deadline of this
  // grant as the rule computes it when the event is made. The app may act as
  // leader until then unless it hears more (proto/mcl/v1/election.proto,
  // Validity; docs/design.md §The app's bound).
  std::optional<absl::Duration> valid_until;
  // LEADER: a renewal — the same grant as the LEADER before it, with a later
  // bound, and no LOST in between.
  bool renewal = false;
};

class Leadership {
 public:
  struct Options {
    std::string identity;
    // This campaign's candidacy instance (spec.holderInstance; random per
    // Campaign stream). The rule requires spec.holderInstance and
    // status.leaderInstance to name it.
    std::string instance;
    // This sidecar's cluster. Empty: the cluster named by the local
    // controller's heartbeat Lease (status.heartbeat =
    // "ns/mcl-heartbeat-<cluster>"); the status is written only by the local
    // controller, so that name is authoritative.
    std::string cluster;
    // Own writes remembered for confirmation.
    size_t max_writes = 64;
  };

  Leadership(Options options, Clock* clock);

  // An object version (watch event, list, or own write response). Versions at
  // or below the latest known resourceVersion are ignored (out of order); a
  // deletion (exists = false) replaces an existing version of the same or a
  // lower resourceVersion. A status that carries a confirmation (session,
  // confirmedResourceVersion, sessionTTLMilliseconds) is applied as one.
  void ObserveObject(const LeaseView& view);
  // A confirmation from the heartbeat Lease named in status.heartbeat.
  void ObserveConfirmation(const Confirmation& c);
  // The apiserver accepted my spec write and assigned `rv`; `sent_at` is the
  // monotonic time taken before the request was sent. Call it with the
  // response's object too (ObserveObject).
  void RecordWrite(int64_t rv, absl::Duration sent_at);
  // Resign / stream end: LOST (if leading) with `reason`; no events after this.
  void Close(const std::string& reason);
  // Re-evaluates the rule at the clock's now (call at deadline()).
  void Tick();

  // The write invariant: a spec write preconditioned on `rv` may be sent only
  // if that version (and so its status) has already been applied here.
  // FailedPrecondition otherwise.
  absl::Status CheckWritePrecondition(int64_t rv) const;

  // The current view, for the stream's first event (LOST is reported as such).
  LeadershipEvent Current() const { return current_; }
  LeaderState state() const { return current_.state; }
  bool leading() const { return current_.state == LeaderState::kLeader; }
  bool closed() const { return closed_; }
  // When the LEADER state lapses unless a new confirmation arrives (only while
  // leading): the bound of the last LEADER event.
  std::optional<absl::Duration> deadline() const;
  // The validity end the rule computes now for `session` (tests and metrics).
  std::optional<absl::Duration> ValidUntil(const std::string& session) const;
  int64_t latest_rv() const { return latest_ ? latest_->resource_version : 0; }
  const std::optional<LeaseView>& latest() const { return latest_; }

  // Events produced since the last call, in order.
  std::vector<LeadershipEvent> TakeEvents();

 private:
  struct Write {
    int64_t rv;
    absl::Duration sent_at;
  };
  struct SessionConfirmation {
    int64_t confirmed_rv = 0;
    absl::Duration ttl;
  };
  void ApplyConfirmation(const Confirmation& c);
  void Evaluate();
  void Emit(LeaderState s, const Grant& g, const std::string& reason,
            std::optional<absl::Duration> valid_until = std::nullopt,
            bool renewal = false);
  std::string MyCluster() const;
  // Why the rule fails for the latest object ("" when it holds apart from
  // confirmation).
  std::string RuleFailure() const;

  Options options_;
  Clock* clock_;
  std::optional<LeaseView> latest_;
  std::deque<Write> writes_;  // increasing rv
  std::map<std::string, SessionConfirmation> confirmations_;
  bool closed_ = false;
  LeadershipEvent current_;
  std::vector<LeadershipEvent> events_;
};

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_LEADERSHIP_H_
