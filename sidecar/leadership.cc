#include "sidecar/leadership.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/contract.h"

namespace mcl::sidecar {

const char* LeaderStateName(LeaderState s) {
  switch (s) {
    case LeaderState::kNoLeader:
      return "NO_LEADER";
    case LeaderState::kFollower:
      return "FOLLOWER";
    case LeaderState::kLeader:
      return "LEADER";
    case LeaderState::kLost:
      return "LOST";
  }
  return "?";
}

Leadership::Leadership(Options options, Clock* clock)
    : options_(std::move(options)), clock_(clock) {}

std::string Leadership::MyCluster() const {
  if (!options_.cluster.empty()) return options_.cluster;
  if (latest_) return contract::ClusterFromHeartbeat(latest_->heartbeat);
  return "";
}

void Leadership::ObserveObject(const LeaseView& view) {
  if (closed_) return;
  // Out-of-order or repeated versions (a watch replay, a write response older
  // than a watch event) would make the rule judge a status that has already
  // been replaced. A deletion may carry the resourceVersion of the last state
  // (the informer reports the last known object when it finds it gone on a
  // relist): it still replaces that state.
  if (latest_) {
    const int64_t have = latest_->resource_version;
    bool newer = view.exists ? view.resource_version > have
                             : latest_->exists && view.resource_version >= have;
    if (!newer) return;
  }
  latest_ = view;
  if (view.exists && !view.session.empty() && view.confirmed_rv > 0 &&
      view.session_ttl_ms > 0) {
    // The status written with a grant carries the confirmation of the keepalive
    // before it (design.md §Reconcile 3), so a fresh grant is confirmed without
    // waiting for a heartbeat.
    ApplyConfirmation({view.session, view.confirmed_rv,
                       absl::Milliseconds(view.session_ttl_ms)});
  }
  Evaluate();
}

void Leadership::ObserveConfirmation(const Confirmation& c) {
  if (closed_) return;
  ApplyConfirmation(c);
  Evaluate();
}

void Leadership::ApplyConfirmation(const Confirmation& c) {
  // The TTL range again here, not only in the decoders: whatever feeds this
  // state machine, one confirmation must not buy validity without bound.
  if (c.session.empty() || c.confirmed_rv <= 0 ||
      !contract::CheckSessionTtl(c.ttl).ok())
    return;
  auto it = confirmations_.find(c.session);
  if (it == confirmations_.end()) {
    // Sessions change only when a controller restarts; keep a few, dropping
    // ones the current status does not name.
    if (confirmations_.size() >= 8) {
      for (auto e = confirmations_.begin(); e != confirmations_.end(); ++e) {
        if (!latest_ || e->first != latest_->session) {
          confirmations_.erase(e);
          break;
        }
      }
    }
    confirmations_[c.session] = {c.confirmed_rv, c.ttl};
    return;
  }
  // A confirmation with a smaller c (delivered out of order) names only older
  // writes: keep the max.
  if (c.confirmed_rv > it->second.confirmed_rv)
    it->second.confirmed_rv = c.confirmed_rv;
  it->second.ttl = c.ttl;
}

void Leadership::RecordWrite(int64_t rv, absl::Duration sent_at) {
  if (closed_ || rv <= 0) return;
  Write w{rv, sent_at};
  auto pos =
      std::upper_bound(writes_.begin(), writes_.end(), rv,
                       [](int64_t r, const Write& x) { return r < x.rv; });
  writes_.insert(pos, w);
  while (writes_.size() > options_.max_writes) writes_.pop_front();
  // A confirmation may have arrived before the write's response did; it counts
  // now.
  Evaluate();
}

std::optional<absl::Duration> Leadership::ValidUntil(
    const std::string& session) const {
  auto it = confirmations_.find(session);
  if (session.empty() || it == confirmations_.end()) return std::nullopt;
  const Write* best = nullptr;
  for (auto w = writes_.rbegin(); w != writes_.rend(); ++w) {
    if (w->rv <= it->second.confirmed_rv) {
      best = &*w;
      break;
    }
  }
  if (best == nullptr) return std::nullopt;
  return best->sent_at + contract::ValidityAfterConfirmedWrite(it->second.ttl);
}

std::optional<absl::Duration> Leadership::deadline() const {
  if (!leading()) return std::nullopt;
  return current_.valid_until;
}

std::string Leadership::RuleFailure() const {
  if (!latest_ || !latest_->exists) return "the lock was deleted";
  const LeaseView& v = *latest_;
  if (v.grant.empty()) return "the controller revoked the grant";
  if (v.grant.leader != options_.identity) {
    return absl::StrCat("another candidate was granted (", v.grant.leader,
                        " in cluster ", v.grant.cluster, ")");
  }
  std::string mine = MyCluster();
  if (mine.empty())
    return "this sidecar's cluster is unknown (no heartbeat named in status)";
  if (v.grant.cluster != mine) {
    return absl::StrCat("the grant names cluster ", v.grant.cluster, ", not ",
                        mine);
  }
  if (!v.holder || *v.holder != options_.identity) {
    return absl::StrCat(
        "no longer the local candidate (spec.holderIdentity is ",
        v.holder ? *v.holder : "<none>", ")");
  }
  if (v.holder_instance.value_or("") != options_.instance) {
    return absl::StrCat("another candidacy of identity ", options_.identity,
                        " holds the spec (spec.holderInstance ",
                        v.holder_instance.value_or("<none>"),
                        ", this campaign's is ", options_.instance, ")");
  }
  if (v.grant.instance != options_.instance) {
    return v.grant.instance.empty()
               ? "the grant names no candidacy (status.leaderInstance is "
                 "empty: the controller is older than this sidecar)"
               : absl::StrCat("the grant is for another candidacy of identity ",
                              options_.identity, " (status.leaderInstance ",
                              v.grant.instance, ")");
  }
  if (v.grant.token <= 0) return "the grant carries no fencing token";
  if (v.session.empty()) return "the grant names no session";
  return "";
}

void Leadership::Tick() {
  if (closed_) return;
  Evaluate();
}

void Leadership::Emit(LeaderState s, const Grant& g, const std::string& reason,
                      std::optional<absl::Duration> valid_until, bool renewal) {
  current_ = LeadershipEvent{s, g, reason, valid_until, renewal};
  events_.push_back(current_);
}

void Leadership::Evaluate() {
  if (closed_) return;
  const absl::Duration now = clock_->Monotonic();
  std::string failure = RuleFailure();
  bool mine = false;                    // the grant names me in my cluster
  bool leads = false;                   // the whole rule holds
  std::optional<absl::Duration> until;  // then: its deadline
  Grant grant;
  if (latest_ && latest_->exists) grant = latest_->grant;
  // A grant to another candidacy of my identity (another instance) is not
  // mine: that one leads, this one follows. One that names no instance may
  // be mine, but the rule cannot hold.
  if (!grant.empty() && grant.leader == options_.identity &&
      (MyCluster().empty() || grant.cluster == MyCluster()) &&
      (grant.instance.empty() || grant.instance == options_.instance)) {
    mine = true;
    if (failure.empty()) {
      until = ValidUntil(latest_->session);
      if (until && now < *until) {
        leads = true;
      } else {
        failure =
            until ? "confirmation lapsed" : "the grant is not confirmed yet";
      }
    }
  }
  const LeadershipEvent prev = current_;
  if (leads) {
    if (prev.state == LeaderState::kLeader) {
      const bool same = prev.grant.SameAs(grant);
      const absl::Duration bound = *prev.valid_until;
      if (same && now < bound && *until >= bound) {
        // Still leading on the bound already sent; a later deadline is a
        // renewal.
        if (*until > bound) {
          Emit(LeaderState::kLeader, grant, "", until, /*renewal=*/true);
        }
        return;
      }
      // The bound sent may never be extended after it passed, nor shortened
      // without LOST (see THE APP'S BOUND).
      Emit(LeaderState::kLost, prev.grant,
           !same          ? absl::StrCat("superseded by a new grant (token ",
                                         grant.token, ")")
           : now >= bound ? "confirmation lapsed"
                          : "the confirmation of the grant moved earlier");
    }
    Emit(LeaderState::kLeader, grant, "", until);
    return;
  }
  if (prev.state == LeaderState::kLeader) {
    if (mine && !grant.SameAs(prev.grant)) {
      failure =
          absl::StrCat("superseded by a new grant (token ", grant.token, ")");
    }
    Emit(LeaderState::kLost, prev.grant, failure);
  }
  if (mine) {
    // Granted to me but not (yet, or no longer) confirmed: nobody may act as
    // leader. A stream that just lost stays in LOST; one that never led sees
    // NO_LEADER.
    if (current_.state == LeaderState::kLost) return;
    if (current_.state != LeaderState::kNoLeader || !current_.grant.empty()) {
      Emit(LeaderState::kNoLeader, Grant{}, "");
    }
    return;
  }
  if (!grant.empty()) {
    if (current_.state != LeaderState::kFollower ||
        !current_.grant.SameAs(grant)) {
      Emit(LeaderState::kFollower, grant, "");
    }
    return;
  }
  if (current_.state != LeaderState::kNoLeader)
    Emit(LeaderState::kNoLeader, Grant{}, "");
}

void Leadership::Close(const std::string& reason) {
  if (closed_) return;
  // Re-evaluate first so that a lapse that already happened is reported as what
  // it was.
  Evaluate();
  if (current_.state == LeaderState::kLeader)
    Emit(LeaderState::kLost, current_.grant, reason);
  closed_ = true;
}

absl::Status Leadership::CheckWritePrecondition(int64_t rv) const {
  if (rv > latest_rv()) {
    return absl::FailedPreconditionError(
        absl::StrCat("write invariant: resourceVersion ", rv,
                     " has not been applied to the leadership state "
                     "(latest applied ",
                     latest_rv(), ")"));
  }
  return absl::OkStatus();
}

std::vector<LeadershipEvent> Leadership::TakeEvents() {
  std::vector<LeadershipEvent> out;
  out.swap(events_);
  return out;
}

}  // namespace mcl::sidecar
