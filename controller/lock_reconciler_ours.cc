// The rules for a lock whose etcd key is ours (docs/design.md §"Controller
// reconcile" rules 3 to 5): announce the grant, re-point to a new local
// holder, or revoke and release.
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/kube/time.h"
#include "controller/lock_reconciler.h"
#include "controller/lock_reconciler_internal.h"

namespace mcl::controller {

using internal::HolderOfKey;
using internal::Purpose;

// The key is ours and names the live local candidate: the status announces the
// grant (rule 3, after the Txn; also after a re-point or a restart).
Plan LockReconciler::Grant(Ctx& c, LockMemory& mem) const {
  const kube::MultiClusterLease& cr = *c.cr;
  const SessionView& s = c.s;
  const Holder key_holder = HolderOfKey(*c.kv);
  const int64_t token = c.key.mod_revision;
  std::optional<Grantee>& announced = mem.announced;
  if (announced && announced->holder != key_holder) {
    // Someone else may still think they lead (a crash between re-point and
    // status, seen after restart): they must lapse before the new holder is
    // told.
    if (!Acked(*announced, s, mem, c.now)) {
      c.Requeue(AckDeadline(*announced, s, mem));
      c.plan.why = absl::StrCat("waiting for ", announced->holder.ToString(),
                                " to stop leading");
      return c.plan;
    }
    announced.reset();
    mem.revoke.reset();
  }
  LockStatus& d = c.desired;
  c.CountToken(token, mem);
  d.leader = key_holder.identity;
  d.leader_instance = key_holder.instance;
  d.leader_cluster = config_.cluster;
  d.acquire_time = c.kv->acquire_time;
  d.fencing_token = token;
  d.session = SessionHex(s.id);
  d.heartbeat = config_.heartbeat;
  d.session_ttl_milliseconds = absl::ToInt64Milliseconds(s.ttl);
  if (!s.confirmed_rv.empty()) {
    d.confirmed_resource_version = s.confirmed_rv;
    int64_t confirmed = 0, rv = 0;
    if (absl::SimpleAtoi(s.confirmed_rv, &confirmed) &&
        absl::SimpleAtoi(cr.metadata.resource_version, &rv) &&
        rv <= confirmed) {
      d.last_confirmed_renew_time = cr.spec.renew_time;
    }
  }
  SetCondition(d, kGlobalLockHeld, true, "Granted",
               absl::StrCat("held by ", key_holder.ToString(), " in cluster ",
                            config_.cluster, " with fencing token ", token),
               c.wall);
  // Announced from the moment the write may land (a lost answer may still have
  // applied it).
  announced = Grantee{key_holder, token, cr.metadata.generation};
  mem.revoke.reset();
  if (c.WriteIfChanged(Purpose::kGrant)) {
    if (cr.status.fencing_token != token ||
        cr.status.leader != key_holder.identity ||
        cr.status.leader_instance != key_holder.instance) {
      c.plan.events.push_back(
          {false, "Granted",
           absl::StrCat("global lock granted to ", key_holder.ToString(),
                        " in cluster ", config_.cluster, ", fencing token ",
                        token)});
    }
    c.plan.why = "grant";
  }
  return c.plan;
}

// Rule 4: a local replica took over the candidacy. The old grantee must stop
// first; then the key moves to the new holder with a new token.
Plan LockReconciler::Repoint(Ctx& c, LockMemory& mem) const {
  const Holder& holder = *c.holder;
  std::optional<Grantee>& announced = mem.announced;
  if (announced && announced->holder != holder) {
    if (!Acked(*announced, c.s, mem, c.now)) {
      c.Requeue(AckDeadline(*announced, c.s, mem));
      c.plan.why = absl::StrCat("holder changed to ", holder.ToString(),
                                "; waiting for ", announced->holder.ToString(),
                                " to stop leading");
      return c.plan;
    }
    announced.reset();
    mem.revoke.reset();
  }
  if (!c.s.reachable) {
    c.plan.why = "re-point waits for etcd";
    return c.plan;
  }
  c.plan.action = TxnRepoint{
      c.key.mod_revision,
      contract::EncodeKeyValue(
          {config_.cluster, holder.identity, SessionHex(c.s.id),
           kube::FormatMicroTime(clock_->WallNow()), holder.instance})};
  c.plan.events.push_back(
      {false, "HolderChanged",
       absl::StrCat("global lock moves from ", HolderOfKey(*c.kv).ToString(),
                    " to ", holder.ToString(), " within cluster ",
                    config_.cluster)});
  c.plan.why = "re-point to the new local holder";
  return c.plan;
}

// Rule 5: release (resigned, stale, deleting, shutting down): revoke the
// announced grant, wait for its ack or timeout, then delete the key.
Plan LockReconciler::Release(Ctx& c, LockMemory& mem) const {
  const kube::MultiClusterLease& cr = *c.cr;
  const std::string why =
      cr.metadata.deletion_timestamp.has_value() ? "the lock is being deleted"
      : c.s.shutting_down     ? "the controller is shutting down"
      : !c.holder.has_value() ? "the candidate resigned"
                              : "the candidate is stale";
  std::optional<Grantee>& announced = mem.announced;
  if (announced) {
    const bool revoked = mem.revoke &&
                         mem.revoke->grantee.holder == announced->holder &&
                         mem.revoke->grantee.token == announced->token;
    if (!revoked) {
      // First tell everyone the grant is over (leader cleared), so that any
      // later spec write by the grantee proves it had seen this (the write
      // invariant). Even for a resign: otherwise the same holder could
      // re-campaign on the old status and count as leader again.
      c.NoLeader("Releasing", absl::StrCat("releasing: ", why));
      WriteStatus w;
      w.status = c.desired;
      w.precondition_rv = cr.metadata.resource_version;
      w.purpose = Purpose::kRevoke;
      // The resign is the ack (design.md §Ack) when the spec we revoke on top
      // of still shows it.
      w.revocation =
          Revocation{*announced, cr.metadata.generation,
                     !c.holder.has_value() &&
                         mem.liveness.resigned() == announced->holder.Key()};
      c.plan.action = std::move(w);
      c.plan.events.push_back(
          {false, "Revoking",
           absl::StrCat("revoking ", announced->holder.ToString(),
                        "'s grant (token ", announced->token, "): ", why)});
      c.plan.why = absl::StrCat("revoke: ", why);
      return c.plan;
    }
    if (!Acked(*announced, c.s, mem, c.now)) {
      c.Requeue(AckDeadline(*announced, c.s, mem));
      c.plan.why =
          absl::StrCat("revoked; waiting for ", announced->holder.ToString(),
                       "'s ack or timeout");
      return c.plan;
    }
  }
  if (!c.s.reachable) {
    c.plan.why = "release waits for etcd";
    return c.plan;
  }
  announced.reset();
  mem.revoke.reset();
  const int64_t token = c.key.mod_revision;
  c.plan.action = TxnDelete{token};
  c.plan.events.push_back(
      {false, "Released",
       absl::StrCat("global lock released (token ", token, "): ", why)});
  c.plan.why = absl::StrCat("release: ", why);
  return c.plan;
}

}  // namespace mcl::controller
