#include "controller/lock_reconciler.h"

#include <cpprest/json.h>

#include <algorithm>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/kube/time.h"

namespace mcl::controller {
namespace {

using web::json::value;

Condition* FindMutable(LockStatus& s, const std::string& type) {
  for (auto& c : s.conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

// Sets a condition, keeping lastTransitionTime while its status does not
// change.
void SetCondition(LockStatus& s, const std::string& type, bool ok,
                  const std::string& reason, const std::string& message,
                  const std::string& now) {
  const std::string status = ok ? "True" : "False";
  Condition* c = FindMutable(s, type);
  if (c == nullptr) {
    s.conditions.push_back(Condition{type, status, reason, message, now});
    return;
  }
  if (c->status != status || c->last_transition_time.empty())
    c->last_transition_time = now;
  c->status = status;
  c->reason = reason;
  c->message = message;
}

void ClearLeader(LockStatus& s) {
  s.leader.clear();
  s.leader_cluster.clear();
  s.acquire_time.clear();
  s.fencing_token = 0;
  s.session.clear();
  s.heartbeat.clear();
  s.session_ttl_ms = 0;
}

std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.3gs", absl::ToDoubleSeconds(d));
}

}  // namespace

const Condition* LockStatus::Find(const std::string& type) const {
  for (const auto& c : conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

bool StatusDiffers(const LockStatus& a, const LockStatus& b) {
  if (a.leader != b.leader || a.leader_cluster != b.leader_cluster ||
      a.acquire_time != b.acquire_time || a.fencing_token != b.fencing_token ||
      a.transitions != b.transitions || a.session != b.session ||
      a.heartbeat != b.heartbeat || a.session_ttl_ms != b.session_ttl_ms ||
      a.conditions.size() != b.conditions.size()) {
    return true;
  }
  for (const auto& ca : a.conditions) {
    const Condition* cb = b.Find(ca.type);
    if (cb == nullptr || cb->status != ca.status || cb->reason != ca.reason ||
        cb->message != ca.message) {
      return true;
    }
  }
  return false;
}

std::string EncodeKeyValue(const KeyValue& v) {
  value o = value::object();
  o["cluster"] = value::string(v.cluster);
  o["holder"] = value::string(v.holder);
  o["session"] = value::string(v.session);
  o["acquireTime"] = value::string(v.acquire_time);
  return o.serialize();
}

std::optional<KeyValue> ParseKeyValue(const std::string& raw) {
  std::error_code ec;
  value o = value::parse(raw, ec);
  if (ec || !o.is_object()) return std::nullopt;
  auto str = [&](const char* k) -> std::optional<std::string> {
    if (!o.has_field(k)) return std::string();
    const value& f = o.at(k);
    if (!f.is_string()) return std::nullopt;
    return f.as_string();
  };
  auto cluster = str("cluster"), holder = str("holder"),
       session = str("session"), acquire = str("acquireTime");
  if (!cluster || !holder || !session || !acquire || cluster->empty() ||
      holder->empty()) {
    return std::nullopt;
  }
  return KeyValue{*cluster, *holder, *session, *acquire};
}

const char* ActionName(Action::Kind k) {
  switch (k) {
    case Action::kNone:
      return "none";
    case Action::kAddFinalizer:
      return "add-finalizer";
    case Action::kRemoveFinalizer:
      return "remove-finalizer";
    case Action::kTxnCreate:
      return "txn-create";
    case Action::kTxnRepoint:
      return "txn-repoint";
    case Action::kTxnDelete:
      return "txn-delete";
    case Action::kWriteStatus:
      return "write-status";
  }
  return "?";
}

// design.md §Ack. The timeout: every renewal of g.holder that any confirmation
// can cover was observed by us no later than LastRenewal (liveness.h), and the
// sidecar's validity ends by T_w + TTL·(1−rho) − m on its clock, T_w before our
// observation; TTL·(1+rho) + m on ours is a safe upper bound for the same
// instant.
absl::Duration LockReconciler::AckDeadline(const Grantee& g,
                                           const SessionView& s,
                                           const LockMemory& mem) const {
  return mem.liveness.LastRenewal(g.holder) + s.ttl * (1 + kRho) + kMargin;
}

bool LockReconciler::Acked(const Grantee& g, const SessionView& s,
                           const LockMemory& mem, absl::Duration now) const {
  if (mem.revoke.has_value() && mem.revoke->grantee.holder == g.holder &&
      mem.revoke->grantee.token == g.token && mem.revoke->acked) {
    return true;
  }
  // Resigned after the grant (design.md §Ack), even if another local holder has
  // taken over since.
  if (g.generation > 0 && mem.liveness.ResignedAt(g.holder) > g.generation)
    return true;
  return now >= AckDeadline(g, s, mem);
}

Plan LockReconciler::Reconcile(const CrView* cr, const KeyView& key,
                               const SessionView& s, LockMemory& mem) const {
  const absl::Duration now = clock_->Monotonic();
  const std::string wall = kube::FormatKubeTime(clock_->WallNow());
  Plan plan;
  auto requeue = [&](absl::Duration at) {
    plan.requeue_at = plan.requeue_at ? std::min(*plan.requeue_at, at) : at;
  };

  if (cr != nullptr) {
    mem.liveness.Observe(cr->uid, cr->generation, cr->holder, now);
    if (!mem.initialized) {
      mem.initialized = true;
      mem.max_token_seen = cr->status.fencing_token;
      // Restart: a status of ours naming a local leader under the live session
      // means that candidate may believe it leads. Under another session it
      // cannot: only our heartbeat confirms, and it names our session.
      if (!cr->status.leader.empty() &&
          cr->status.leader_cluster == config_.cluster && s.alive &&
          cr->status.session == SessionHex(s.id)) {
        mem.announced = Grantee{cr->status.leader, cr->status.fencing_token,
                                cr->generation};
      }
    }
    // An ack of a revocation: a spec write by the grantee after our revoking
    // write (the sidecar's write invariant: it had seen the revocation before
    // writing).
    if (mem.revoke && !mem.revoke->acked &&
        cr->generation > mem.revoke->generation &&
        cr->holder == mem.revoke->grantee.holder) {
      mem.revoke->acked = true;
    }
  }

  std::optional<KeyValue> kv;
  if (key.present) kv = ParseKeyValue(key.raw);
  const bool trusted = key.known && s.alive;
  const bool ours = trusted && key.present && kv &&
                    kv->cluster == config_.cluster && s.id != 0 &&
                    key.lease == s.id;

  // Rule 7: without a live session nothing of ours is held any more, and every
  // candidate we had told has lapsed (confirmations stop before the lease can
  // expire). A key that is known not to be ours likewise ends any grant we had:
  // it went with our lease.
  if (!s.alive || (key.known && !ours)) {
    mem.announced.reset();
    mem.revoke.reset();
  }

  if (cr == nullptr) {
    if (ours) {
      // Deleted without (or past) our finalizer while we hold the key: no
      // status can be written, so only the timeout can end the grant.
      if (mem.announced && !Acked(*mem.announced, s, mem, now)) {
        requeue(AckDeadline(*mem.announced, s, mem));
        plan.why =
            "CR gone; waiting for the grantee's validity to run out before "
            "release";
        return plan;
      }
      if (!s.reachable) {
        plan.why = "CR gone; release waits for etcd";
        return plan;
      }
      mem.announced.reset();
      plan.action.kind = Action::kTxnDelete;
      plan.action.expected_mod_revision = key.mod_revision;
      plan.why = "CR gone; releasing";
      return plan;
    }
    plan.forget = key.known || !s.alive;
    plan.why = "CR gone";
    return plan;
  }

  // ---- Candidate liveness (rule 2) ----
  const std::optional<std::string>& holder = cr->holder;
  const absl::Duration lease_duration =
      cr->lease_duration_seconds > 0 ? absl::Seconds(cr->lease_duration_seconds)
                                     : config_.default_lease_duration;
  absl::Duration stale_at = absl::ZeroDuration();
  bool candidate_live = false;
  if (holder.has_value() && !cr->deleting) {
    stale_at = mem.liveness.LastRenewal(*holder) + lease_duration;
    candidate_live = now < stale_at;
  }
  if (candidate_live) requeue(stale_at);
  const bool want_hold = candidate_live && !s.shutting_down;
  mem.liveness.Prune(
      holder, mem.announced ? std::optional<std::string>(mem.announced->holder)
                            : std::nullopt);

  // ---- Desired status pieces ----
  LockStatus desired = cr->status;
  desired.observed_generation = cr->generation;
  if (s.alive && s.reachable) {
    SetCondition(desired, kBackendReachable, true, "Reachable",
                 "etcd answers keepalives", wall);
  } else if (s.alive) {
    SetCondition(desired, kBackendReachable, false, "Unreachable",
                 "etcd does not answer; confirmations stopped", wall);
  } else {
    SetCondition(
        desired, kBackendReachable, false, "SessionLost",
        "no live etcd session; locks held by this cluster are released", wall);
  }
  if (cr->deleting) {
    SetCondition(desired, kCandidateLive, false, "Deleting",
                 "the lock is being deleted", wall);
  } else if (!holder.has_value()) {
    SetCondition(desired, kCandidateLive, false, "NoHolder",
                 "spec.holderIdentity is not set", wall);
  } else if (candidate_live) {
    SetCondition(
        desired, kCandidateLive, true, "Renewing",
        absl::StrCat(*holder, " renews within ", Seconds(lease_duration)),
        wall);
  } else {
    SetCondition(desired, kCandidateLive, false, "Stale",
                 absl::StrCat("no renewal by ", *holder, " observed for ",
                              Seconds(lease_duration)),
                 wall);
  }
  // A new token is a change of leader. Memory moves only when a status showing
  // it is applied (OnStatusResult), so a write that conflicts and is recomputed
  // still counts it once.
  auto count_token = [&](int64_t token) {
    if (token > std::max(mem.max_token_seen, cr->status.fencing_token)) {
      desired.transitions = cr->status.transitions + 1;
    }
  };
  auto write_if_changed = [&](Action::Purpose purpose) {
    if (!StatusDiffers(desired, cr->status)) return false;
    plan.action.kind = Action::kWriteStatus;
    plan.action.status = desired;
    plan.action.precondition_rv = cr->resource_version;
    plan.action.purpose = purpose;
    return true;
  };
  auto no_leader = [&](const std::string& reason, const std::string& message) {
    ClearLeader(desired);
    SetCondition(desired, kGlobalLockHeld, false, reason, message, wall);
  };

  // ---- The key is ours ----
  if (ours) {
    const std::string& key_holder = kv->holder;
    const int64_t token = key.mod_revision;
    std::optional<Grantee>& announced = mem.announced;

    if (want_hold && *holder == key_holder) {
      if (announced && announced->holder != key_holder) {
        // Someone else may still think they lead (a crash between re-point and
        // status, seen after restart): they must lapse before the new holder is
        // told.
        if (!Acked(*announced, s, mem, now)) {
          requeue(AckDeadline(*announced, s, mem));
          plan.why = absl::StrCat("waiting for ", announced->holder,
                                  " to stop leading");
          return plan;
        }
        announced.reset();
        mem.revoke.reset();
      }
      count_token(token);
      desired.leader = key_holder;
      desired.leader_cluster = config_.cluster;
      desired.acquire_time = kv->acquire_time;
      desired.fencing_token = token;
      desired.session = SessionHex(s.id);
      desired.heartbeat = config_.heartbeat;
      desired.session_ttl_ms = absl::ToInt64Milliseconds(s.ttl);
      if (!s.confirmed_rv.empty()) {
        desired.confirmed_resource_version = s.confirmed_rv;
        int64_t c = 0, rv = 0;
        if (absl::SimpleAtoi(s.confirmed_rv, &c) &&
            absl::SimpleAtoi(cr->resource_version, &rv) && rv <= c) {
          desired.last_confirmed_renew_time = cr->renew_time;
        }
      }
      SetCondition(desired, kGlobalLockHeld, true, "Granted",
                   absl::StrCat("held by ", key_holder, " in cluster ",
                                config_.cluster, " with fencing token ", token),
                   wall);
      // Announced from the moment the write may land (a lost answer may still
      // have applied it).
      announced = Grantee{key_holder, token, cr->generation};
      mem.revoke.reset();
      if (write_if_changed(Action::kGrant)) {
        if (cr->status.fencing_token != token ||
            cr->status.leader != key_holder) {
          plan.events.push_back(
              {false, "Granted",
               absl::StrCat("global lock granted to ", key_holder,
                            " in cluster ", config_.cluster, ", fencing token ",
                            token)});
        }
        plan.why = "grant";
      }
      return plan;
    }

    if (want_hold) {
      // Rule 4: a local replica took over the candidacy. The old grantee must
      // stop first.
      if (announced && announced->holder != *holder) {
        if (!Acked(*announced, s, mem, now)) {
          requeue(AckDeadline(*announced, s, mem));
          plan.why =
              absl::StrCat("holder changed to ", *holder, "; waiting for ",
                           announced->holder, " to stop leading");
          return plan;
        }
        announced.reset();
        mem.revoke.reset();
      }
      if (!s.reachable) {
        plan.why = "re-point waits for etcd";
        return plan;
      }
      plan.action.kind = Action::kTxnRepoint;
      plan.action.expected_mod_revision = token;
      plan.action.value =
          EncodeKeyValue(KeyValue{config_.cluster, *holder, SessionHex(s.id),
                                  kube::FormatMicroTime(clock_->WallNow())});
      plan.events.push_back(
          {false, "HolderChanged",
           absl::StrCat("global lock moves from ", key_holder, " to ", *holder,
                        " within cluster ", config_.cluster)});
      plan.why = "re-point to the new local holder";
      return plan;
    }

    // Rule 5: release (resigned, stale, deleting, shutting down).
    const std::string why = cr->deleting ? "the lock is being deleted"
                            : s.shutting_down
                                ? "the controller is shutting down"
                            : !holder.has_value() ? "the candidate resigned"
                                                  : "the candidate is stale";
    if (announced) {
      const bool revoked = mem.revoke &&
                           mem.revoke->grantee.holder == announced->holder &&
                           mem.revoke->grantee.token == announced->token;
      if (!revoked) {
        // First tell everyone the grant is over (leader cleared), so that any
        // later spec write by the grantee proves it had seen this (the write
        // invariant). Even for a resign: otherwise the same holder could
        // re-campaign on the old status and count as leader again.
        no_leader("Releasing", absl::StrCat("releasing: ", why));
        plan.action.kind = Action::kWriteStatus;
        plan.action.status = desired;
        plan.action.precondition_rv = cr->resource_version;
        plan.action.purpose = Action::kRevoke;
        plan.action.revoke_holder = announced->holder;
        plan.action.revoke_token = announced->token;
        plan.action.revoke_generation = cr->generation;
        // The resign is the ack (design.md §Ack) when the spec we revoke on top
        // of still shows it.
        plan.action.revoke_is_resign_ack =
            !holder.has_value() && mem.liveness.resigned() == announced->holder;
        plan.events.push_back(
            {false, "Revoking",
             absl::StrCat("revoking ", announced->holder, "'s grant (token ",
                          announced->token, "): ", why)});
        plan.why = absl::StrCat("revoke: ", why);
        return plan;
      }
      if (!Acked(*announced, s, mem, now)) {
        requeue(AckDeadline(*announced, s, mem));
        plan.why = absl::StrCat("revoked; waiting for ", announced->holder,
                                "'s ack or timeout");
        return plan;
      }
    }
    if (!s.reachable) {
      plan.why = "release waits for etcd";
      return plan;
    }
    announced.reset();
    mem.revoke.reset();
    plan.action.kind = Action::kTxnDelete;
    plan.action.expected_mod_revision = token;
    plan.events.push_back(
        {false, "Released",
         absl::StrCat("global lock released (token ", token, "): ", why)});
    plan.why = absl::StrCat("release: ", why);
    return plan;
  }

  // ---- Not ours: absent, foreign, garbage, or unknown ----
  if (cr->deleting) {
    // Nothing of ours to release (a key of a lost session goes with its lease).
    if (cr->has_finalizer && (key.known || !s.alive)) {
      plan.action.kind = Action::kRemoveFinalizer;
      plan.why = "deleted; nothing held";
    } else {
      plan.why = "deleted; waiting for etcd to tell whether we hold the key";
    }
    return plan;
  }

  if (!s.alive) {
    no_leader("SessionLost",
              "no live etcd session; this cluster claims nothing");
    if (write_if_changed(Action::kInfo)) {
      plan.events.push_back(
          {true, "SessionLost", "no live etcd session; leadership withdrawn"});
    }
    plan.why = "no session";
    return plan;
  }
  if (!key.known) {
    // etcd is unreachable: keep showing what we last knew, with
    // BackendReachable=False. Local candidates lapse by themselves
    // (confirmations stopped).
    write_if_changed(Action::kInfo);
    plan.why = "etcd state unknown";
    return plan;
  }

  if (!key.present) {
    if (want_hold && s.reachable) {
      if (!cr->has_finalizer) {
        plan.action.kind = Action::kAddFinalizer;
        plan.why = "finalizer before contending";
        return plan;
      }
      plan.action.kind = Action::kTxnCreate;
      plan.action.value =
          EncodeKeyValue(KeyValue{config_.cluster, *holder, SessionHex(s.id),
                                  kube::FormatMicroTime(clock_->WallNow())});
      plan.why = "contend";
      return plan;
    }
    no_leader(want_hold ? "BackendUnreachable" : "NoLiveCandidate",
              want_hold ? "waiting for etcd to contend"
                        : "the lock is free and no local candidate is live");
    write_if_changed(Action::kInfo);
    plan.why = "free";
    return plan;
  }

  if (!kv) {
    no_leader("InvalidKeyValue",
              "the etcd key of this lock holds a value that is not mcl's; the "
              "lock stays blocked "
              "until the key is removed or its lease expires");
    if (mem.warned_value != key.raw) {
      mem.warned_value = key.raw;
      plan.events.push_back(
          {true, "InvalidKeyValue",
           "the etcd key of this lock holds a value that is not mcl's"});
    }
    write_if_changed(Action::kInfo);
    plan.why = "garbage key value";
    return plan;
  }

  // Rule 6: a foreign holder (another cluster, or another session of ours being
  // expired).
  count_token(key.mod_revision);
  desired.leader = kv->holder;
  desired.leader_cluster = kv->cluster;
  desired.acquire_time = kv->acquire_time;
  desired.fencing_token = key.mod_revision;
  desired.session.clear();
  desired.heartbeat.clear();
  desired.session_ttl_ms = 0;
  const bool other_cluster = kv->cluster != config_.cluster;
  SetCondition(desired, kGlobalLockHeld, false,
               other_cluster ? "HeldByOtherCluster" : "HeldByOtherSession",
               absl::StrCat("held by ", kv->holder, " in cluster ", kv->cluster,
                            " with fencing token ", key.mod_revision),
               wall);
  if (write_if_changed(Action::kInfo) &&
      (cr->status.fencing_token != key.mod_revision ||
       cr->status.leader != kv->holder)) {
    plan.events.push_back(
        {false, "LeaderElsewhere",
         absl::StrCat("leader is ", kv->holder, " in cluster ", kv->cluster,
                      ", fencing token ", key.mod_revision)});
  }
  plan.why = "held elsewhere";
  return plan;
}

void LockReconciler::OnStatusResult(const Action& action, WriteOutcome outcome,
                                    LockMemory& mem) const {
  if (action.kind != Action::kWriteStatus || outcome != WriteOutcome::kApplied)
    return;
  mem.max_token_seen =
      std::max(mem.max_token_seen, action.status.fencing_token);
  // Only a write known to be applied counts as a revocation: acks are judged
  // against it.
  if (action.purpose != Action::kRevoke) return;
  LockMemory::Revoke r;
  r.grantee = Grantee{action.revoke_holder, action.revoke_token};
  r.generation = action.revoke_generation;
  r.acked = action.revoke_is_resign_ack;
  mem.revoke = r;
}

}  // namespace mcl::controller
