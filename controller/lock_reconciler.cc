#include "controller/lock_reconciler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/kube/time.h"
#include "controller/lock_reconciler_internal.h"

namespace mcl::controller {

using internal::HasFinalizer;
using internal::HolderOfKey;
using internal::Purpose;
using internal::Seconds;

std::string Holder::ToString() const {
  if (instance.empty()) return identity;
  return absl::StrCat(identity, " (instance ", instance, ")");
}

std::optional<Holder> HolderOf(const kube::MultiClusterLease& cr) {
  const auto& h = cr.spec.holder_identity;
  if (!h.has_value() || h->empty()) return std::nullopt;
  return Holder{*h, cr.spec.holder_instance.value_or("")};
}

const char* ActionName(const Action& a) {
  struct Name {
    const char* operator()(std::monostate) const { return "none"; }
    const char* operator()(const AddFinalizer&) const {
      return "add-finalizer";
    }
    const char* operator()(const RemoveFinalizer&) const {
      return "remove-finalizer";
    }
    const char* operator()(const TxnCreate&) const { return "txn-create"; }
    const char* operator()(const TxnRepoint&) const { return "txn-repoint"; }
    const char* operator()(const TxnDelete&) const { return "txn-delete"; }
    const char* operator()(const WriteStatus&) const { return "write-status"; }
  };
  return std::visit(Name{}, a);
}

// design.md §Ack. The timeout: every renewal of g.holder that any confirmation
// can cover was observed by us no later than LastRenewal (liveness.h), and the
// sidecar's validity ends by T_w + TTL·(1−rho) − m on its clock, T_w before our
// observation; TTL·(1+rho) + m on ours is a safe upper bound for the same
// instant.
absl::Duration LockReconciler::AckDeadline(const Grantee& g,
                                           const SessionView& s,
                                           const LockMemory& mem) const {
  return mem.liveness.LastRenewal(g.holder.Key()) +
         contract::LapseAfterObservedRenewal(s.ttl);
}

bool LockReconciler::Acked(const Grantee& g, const SessionView& s,
                           const LockMemory& mem, absl::Duration now) const {
  if (mem.revoke.has_value() && mem.revoke->grantee.holder == g.holder &&
      mem.revoke->grantee.token == g.token && mem.revoke->acked) {
    return true;
  }
  // Resigned after the grant (design.md §Ack), even if another local holder has
  // taken over since.
  if (g.generation > 0 &&
      mem.liveness.ResignedAt(g.holder.Key()) > g.generation) {
    return true;
  }
  return now >= AckDeadline(g, s, mem);
}

Plan LockReconciler::Reconcile(const kube::MultiClusterLease* cr,
                               const KeyView& key, const SessionView& s,
                               LockMemory& mem) const {
  Ctx c(cr, key, s, clock_->Monotonic(),
        kube::FormatKubeTime(clock_->WallNow()));
  Observe(c, mem);
  if (cr == nullptr) return CrGone(c, mem);
  DesiredConditions(c, mem);
  if (c.ours) {
    if (c.want_hold && *c.holder == HolderOfKey(*c.kv)) return Grant(c, mem);
    if (c.want_hold) return Repoint(c, mem);
    return Release(c, mem);
  }
  // Not ours: absent, foreign, garbage, or unknown.
  if (cr->metadata.deletion_timestamp.has_value()) {
    return DeletedNothingHeld(c);
  }
  if (!s.alive) return SessionLost(c);
  if (!key.known) return KeyUnknown(c);
  if (!key.present) return Contend(c);
  if (!c.kv) return InvalidValue(c, mem);
  return Foreign(c, mem);
}

void LockReconciler::Observe(Ctx& c, LockMemory& mem) const {
  const kube::MultiClusterLease* cr = c.cr;
  const SessionView& s = c.s;
  if (cr != nullptr) {
    const std::optional<Holder> h = HolderOf(*cr);
    mem.liveness.Observe(
        cr->metadata.uid, cr->metadata.generation,
        h ? std::optional<std::string>(h->Key()) : std::nullopt, c.now);
    if (!mem.initialized) {
      mem.initialized = true;
      mem.max_token_seen = cr->status.fencing_token;
      // Restart: a status of ours naming a local leader under the live session
      // means that candidate may believe it leads. Under another session it
      // cannot: only our heartbeat confirms, and it names our session.
      if (!cr->status.leader.empty() &&
          cr->status.leader_cluster == config_.cluster && s.alive &&
          cr->status.session == SessionHex(s.id)) {
        mem.announced =
            Grantee{Holder{cr->status.leader, cr->status.leader_instance},
                    cr->status.fencing_token, cr->metadata.generation};
      }
    }
    // An ack of a revocation: a spec write by the grantee after our revoking
    // write (the sidecar's write invariant: it had seen the revocation before
    // writing).
    if (mem.revoke && !mem.revoke->acked &&
        cr->metadata.generation > mem.revoke->generation &&
        HolderOf(*cr) == mem.revoke->grantee.holder) {
      mem.revoke->acked = true;
    }
  }
  if (c.key.present) c.kv = contract::ParseKeyValue(c.key.raw);
  const bool trusted = c.key.known && s.alive;
  c.ours = trusted && c.key.present && c.kv &&
           c.kv->cluster == config_.cluster && s.id != 0 && c.key.lease == s.id;
  // Rule 7: without a live session nothing of ours is held any more, and every
  // candidate we had told has lapsed (confirmations stop before the lease can
  // expire). A key that is known not to be ours likewise ends any grant we had:
  // it went with our lease.
  if (!s.alive || (c.key.known && !c.ours)) {
    mem.announced.reset();
    mem.revoke.reset();
  }
}

Plan LockReconciler::CrGone(Ctx& c, LockMemory& mem) const {
  Plan& plan = c.plan;
  if (c.ours) {
    // Deleted without (or past) our finalizer while we hold the key: no status
    // can be written, so only the timeout can end the grant.
    if (mem.announced && !Acked(*mem.announced, c.s, mem, c.now)) {
      c.Requeue(AckDeadline(*mem.announced, c.s, mem));
      plan.why =
          "CR gone; waiting for the grantee's validity to run out before "
          "release";
      return plan;
    }
    if (!c.s.reachable) {
      plan.why = "CR gone; release waits for etcd";
      return plan;
    }
    mem.announced.reset();
    plan.action = TxnDelete{c.key.mod_revision};
    plan.why = "CR gone; releasing";
    return plan;
  }
  plan.forget = c.key.known || !c.s.alive;
  plan.why = "CR gone";
  return plan;
}

// Rule 2 (candidate liveness) and the conditions every status carries.
void LockReconciler::DesiredConditions(Ctx& c, LockMemory& mem) const {
  const kube::MultiClusterLease& cr = *c.cr;
  const SessionView& s = c.s;
  const bool deleting = cr.metadata.deletion_timestamp.has_value();
  c.holder = HolderOf(cr);
  c.lease_duration = cr.spec.lease_duration_seconds > 0
                         ? absl::Seconds(cr.spec.lease_duration_seconds)
                         : config_.default_lease_duration;
  absl::Duration stale_at = absl::ZeroDuration();
  if (c.holder.has_value() && !deleting) {
    stale_at = mem.liveness.LastRenewal(c.holder->Key()) + c.lease_duration;
    c.candidate_live = c.now < stale_at;
  }
  if (c.candidate_live) c.Requeue(stale_at);
  c.want_hold = c.candidate_live && !s.shutting_down;
  mem.liveness.Prune(
      c.holder ? std::optional<std::string>(c.holder->Key()) : std::nullopt,
      mem.announced ? std::optional<std::string>(mem.announced->holder.Key())
                    : std::nullopt);

  LockStatus& d = c.desired;
  d = cr.status;
  d.observed_generation = cr.metadata.generation;
  if (s.alive && s.reachable) {
    SetCondition(d, kBackendReachable, true, "Reachable",
                 "etcd answers keepalives", c.wall);
  } else if (s.alive) {
    SetCondition(d, kBackendReachable, false, "Unreachable",
                 "etcd does not answer; confirmations stopped", c.wall);
  } else {
    SetCondition(
        d, kBackendReachable, false, "SessionLost",
        "no live etcd session; locks held by this cluster are released",
        c.wall);
  }
  if (deleting) {
    SetCondition(d, kCandidateLive, false, "Deleting",
                 "the lock is being deleted", c.wall);
  } else if (!c.holder.has_value()) {
    SetCondition(d, kCandidateLive, false, "NoHolder",
                 "spec.holderIdentity is not set", c.wall);
  } else if (c.candidate_live) {
    SetCondition(d, kCandidateLive, true, "Renewing",
                 absl::StrCat(c.holder->ToString(), " renews within ",
                              Seconds(c.lease_duration)),
                 c.wall);
  } else {
    SetCondition(d, kCandidateLive, false, "Stale",
                 absl::StrCat("no renewal by ", c.holder->ToString(),
                              " observed for ", Seconds(c.lease_duration)),
                 c.wall);
  }
}

Plan LockReconciler::DeletedNothingHeld(Ctx& c) const {
  // Nothing of ours to release (a key of a lost session goes with its lease).
  if (HasFinalizer(*c.cr) && (c.key.known || !c.s.alive)) {
    c.plan.action = RemoveFinalizer{};
    c.plan.why = "deleted; nothing held";
  } else {
    c.plan.why = "deleted; waiting for etcd to tell whether we hold the key";
  }
  return c.plan;
}

Plan LockReconciler::SessionLost(Ctx& c) const {
  c.NoLeader("SessionLost",
             "no live etcd session; this cluster claims nothing");
  if (c.WriteIfChanged(Purpose::kInfo)) {
    c.plan.events.push_back(
        {true, "SessionLost", "no live etcd session; leadership withdrawn"});
  }
  c.plan.why = "no session";
  return c.plan;
}

Plan LockReconciler::KeyUnknown(Ctx& c) const {
  // etcd is unreachable: keep showing what we last knew, with
  // BackendReachable=False. Local candidates lapse by themselves
  // (confirmations stopped).
  c.WriteIfChanged(Purpose::kInfo);
  c.plan.why = "etcd state unknown";
  return c.plan;
}

Plan LockReconciler::Contend(Ctx& c) const {
  if (c.want_hold && c.s.reachable) {
    if (!HasFinalizer(*c.cr)) {
      c.plan.action = AddFinalizer{};
      c.plan.why = "finalizer before contending";
      return c.plan;
    }
    c.plan.action = TxnCreate{contract::EncodeKeyValue(
        {config_.cluster, c.holder->identity, SessionHex(c.s.id),
         kube::FormatMicroTime(clock_->WallNow()), c.holder->instance})};
    c.plan.why = "contend";
    return c.plan;
  }
  c.NoLeader(c.want_hold ? "BackendUnreachable" : "NoLiveCandidate",
             c.want_hold ? "waiting for etcd to contend"
                         : "the lock is free and no local candidate is live");
  c.WriteIfChanged(Purpose::kInfo);
  c.plan.why = "free";
  return c.plan;
}

Plan LockReconciler::InvalidValue(Ctx& c, LockMemory& mem) const {
  c.NoLeader("InvalidKeyValue",
             "the etcd key of this lock holds a value that is not mcl's; the "
             "lock stays blocked until the key is removed or its lease "
             "expires");
  if (mem.warned_value != c.key.raw) {
    mem.warned_value = c.key.raw;
    c.plan.events.push_back(
        {true, "InvalidKeyValue",
         "the etcd key of this lock holds a value that is not mcl's"});
  }
  c.WriteIfChanged(Purpose::kInfo);
  c.plan.why = "garbage key value";
  return c.plan;
}

// Rule 6: a foreign holder (another cluster, or another session of ours being
// expired): the status shows it, our candidate follows.
Plan LockReconciler::Foreign(Ctx& c, LockMemory& mem) const {
  const kube::MultiClusterLease& cr = *c.cr;
  const contract::KeyValue& kv = *c.kv;
  const int64_t token = c.key.mod_revision;
  LockStatus& d = c.desired;
  c.CountToken(token, mem);
  d.leader = kv.holder;
  d.leader_cluster = kv.cluster;
  d.leader_instance.clear();
  d.acquire_time = kv.acquire_time;
  d.fencing_token = token;
  d.session.clear();
  d.heartbeat.clear();
  d.session_ttl_milliseconds = 0;
  const bool other_cluster = kv.cluster != config_.cluster;
  SetCondition(d, kGlobalLockHeld, false,
               other_cluster ? "HeldByOtherCluster" : "HeldByOtherSession",
               absl::StrCat("held by ", kv.holder, " in cluster ", kv.cluster,
                            " with fencing token ", token),
               c.wall);
  if (c.WriteIfChanged(Purpose::kInfo) &&
      (cr.status.fencing_token != token || cr.status.leader != kv.holder)) {
    c.plan.events.push_back(
        {false, "LeaderElsewhere",
         absl::StrCat("leader is ", kv.holder, " in cluster ", kv.cluster,
                      ", fencing token ", token)});
  }
  c.plan.why = "held elsewhere";
  return c.plan;
}

void LockReconciler::OnStatusResult(const WriteStatus& action,
                                    WriteOutcome outcome,
                                    LockMemory& mem) const {
  if (outcome != WriteOutcome::kApplied) return;
  mem.max_token_seen =
      std::max(mem.max_token_seen, action.status.fencing_token);
  // Only a write known to be applied counts as a revocation: acks are judged
  // against it.
  if (action.purpose != Purpose::kRevoke || !action.revocation) return;
  LockMemory::Revoke r;
  r.grantee = action.revocation->grantee;
  r.generation = action.revocation->generation;
  r.acked = action.revocation->is_resign_ack;
  mem.revoke = r;
}

}  // namespace mcl::controller
