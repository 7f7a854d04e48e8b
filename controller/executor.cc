#include "controller/executor.h"

#include <algorithm>
#include <utility>

#include "common/contract.h"
#include "common/kube/errors.h"
#include "common/log.h"

namespace mcl::controller {
namespace {

// An etcd error that says the backend is not answering (as opposed to a
// refused request).
bool Unreachable(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) ||
         absl::IsCancelled(s);
}

}  // namespace

Executor::Executor(LockWriter* locks, KeyWriter* keys, KeyCache* key_cache,
                   ReplicaEpoch* epoch, const LockReconciler* reconciler,
                   Clock* clock, Metrics* metrics, Hooks hooks)
    : locks_(locks),
      keys_(keys),
      key_cache_(key_cache),
      epoch_(epoch),
      reconciler_(reconciler),
      clock_(clock),
      metrics_(metrics),
      hooks_(std::move(hooks)) {}

Executor::Outcome Executor::Execute(const std::string& key,
                                    const kube::MultiClusterLease* cur,
                                    const Action& action,
                                    const SessionView& session,
                                    LockSlot& slot) {
  if (std::holds_alternative<std::monostate>(action)) return Outcome::kDone;
  // The replica fence, on the monotonic clock, right before the write.
  if (!MayAct()) return Outcome::kNotActing;
  const std::string ek = key_cache_->EtcdKey(key);
  const int64_t sid = session.id;
  if (const auto* a = std::get_if<TxnCreate>(&action)) {
    metrics_->contention_attempts++;
    return Txn(key, etcd::CreateIfAbsent(ek, a->value, sid), "txn-create",
               false, a->value, sid);
  }
  if (const auto* a = std::get_if<TxnRepoint>(&action)) {
    return Txn(key,
               etcd::PutIfOwned(ek, a->expected_mod_revision, a->value, sid),
               "txn-repoint", false, a->value, sid);
  }
  if (const auto* a = std::get_if<TxnDelete>(&action)) {
    return Txn(key, etcd::DeleteIfOwned(ek, a->expected_mod_revision),
               "txn-delete", true, "", sid);
  }
  if (cur == nullptr) return Outcome::kFailed;  // CR writes need the CR
  if (std::holds_alternative<AddFinalizer>(action)) {
    return Finalizer(key, *cur, true, slot);
  }
  if (std::holds_alternative<RemoveFinalizer>(action)) {
    return Finalizer(key, *cur, false, slot);
  }
  return Status(key, *cur, std::get<WriteStatus>(action), session, slot);
}

Executor::Outcome Executor::Finalizer(const std::string& key,
                                      const kube::MultiClusterLease& cur,
                                      bool add, LockSlot& slot) {
  kube::MultiClusterLease obj = cur;
  auto& f = obj.metadata.finalizers;
  f.erase(std::remove(f.begin(), f.end(), contract::kFinalizer), f.end());
  if (add) f.push_back(contract::kFinalizer);
  // Preconditioned on the version it was computed from (cur's own).
  auto r = locks_->Update(obj);
  if (r.ok()) {
    slot.written = std::move(*r);
    return Outcome::kDone;
  }
  if (absl::IsNotFound(r.status())) return Outcome::kDone;
  if (!kube::IsConflict(r.status())) {
    LogWarn("finalizer update failed",
            {{"lock", key}, {"error", std::string(r.status().message())}});
  }
  return Outcome::kFailed;
}

Executor::Outcome Executor::Status(const std::string& key,
                                   const kube::MultiClusterLease& cur,
                                   const WriteStatus& w,
                                   const SessionView& session, LockSlot& slot) {
  kube::MultiClusterLease obj = cur;
  obj.status = w.status;
  obj.metadata.resource_version = w.precondition_rv;
  // A grant's status carries a confirmation (design.md §Confirmation): it
  // counts as an attempt to publish it, landed or not (§Stand-down).
  if (!w.status.session.empty() &&
      !w.status.confirmed_resource_version.empty() &&
      hooks_.on_publish_attempt) {
    hooks_.on_publish_attempt(session.confirmed_sent_at);
  }
  metrics_->status_writes++;
  auto r = locks_->UpdateStatus(obj);
  WriteOutcome outcome = WriteOutcome::kApplied;
  if (!r.ok()) {
    outcome = (kube::IsConflict(r.status()) || absl::IsNotFound(r.status()))
                  ? WriteOutcome::kConflict
                  : WriteOutcome::kFailed;
  }
  reconciler_->OnStatusResult(w, outcome, slot.memory);
  if (r.ok()) {
    slot.written = std::move(*r);
    return Outcome::kDone;
  }
  if (outcome == WriteOutcome::kConflict) {
    metrics_->status_conflicts++;
  } else {
    metrics_->status_write_errors++;
    LogWarn("status write failed",
            {{"lock", key}, {"error", std::string(r.status().message())}});
  }
  return Outcome::kFailed;
}

Executor::Outcome Executor::Txn(const std::string& key, etcd::Txn txn,
                                const char* what, bool is_delete,
                                const std::string& value, int64_t session_id) {
  epoch_->Guard(txn);
  const absl::Duration t0 = clock_->Monotonic();
  auto r = keys_->Commit(txn);
  metrics_->etcd_requests++;
  metrics_->etcd_latency.Observe(clock_->Monotonic() - t0);
  if (r.ok() && r->succeeded && !is_delete && hooks_.confirm_soon) {
    // A fresh keepalive now, so the heartbeat that follows in milliseconds
    // confirms the new holder's latest renewal (design.md §Failover timings)
    // instead of the next periodic one, up to TTL/3 later.
    hooks_.confirm_soon();
  }
  if (!r.ok()) {
    metrics_->etcd_errors++;
    if (Unreachable(r.status()) && hooks_.on_etcd_result) {
      hooks_.on_etcd_result(false);
    }
    LogWarn("etcd transaction failed",
            {{"lock", key},
             {"action", what},
             {"error", std::string(r.status().message())}});
    return Outcome::kFailed;
  }
  if (hooks_.on_etcd_result) hooks_.on_etcd_result(true);
  if (r->succeeded) {
    if (is_delete) {
      metrics_->releases++;
      key_cache_->Apply(key, KeyEntry{false, 0, 0, "", r->revision});
    } else {
      metrics_->grants++;
      key_cache_->Apply(
          key, KeyEntry{true, r->revision, session_id, value, r->revision});
    }
    return Outcome::kDone;
  }
  // Lost the race, the key changed under us, or another replica holds a newer
  // epoch. Learn the key's state from the Else branch's first read.
  if (!r->results.empty() && !r->results[0].range.kvs.empty()) {
    const auto& kv = r->results[0].range.kvs[0];
    key_cache_->Apply(key, KeyEntry{true, kv.mod_revision, kv.lease, kv.value,
                                    kv.mod_revision});
  } else {
    key_cache_->Apply(key, KeyEntry{false, 0, 0, "", r->revision});
  }
  if (!epoch_->CheckGuard(*r)) return Outcome::kNotActing;  // deposed
  return Outcome::kDone;  // reconcile again at once with what we learned
}

absl::Status Executor::ReleaseHeld(int64_t session_id) {
  constexpr size_t kPerRequest = 64;
  // These releases skip the revocations: no status naming this session may
  // ever be confirmed again, so it must never be adopted (replica_epoch.h).
  if (absl::Status st = epoch_->Abandon(session_id); !st.ok()) return st;
  std::vector<std::pair<std::string, int64_t>> held =
      key_cache_->HeldBy(session_id);
  for (size_t at = 0; at < held.size(); at += kPerRequest) {
    const size_t end = std::min(held.size(), at + kPerRequest);
    etcd::Txn txn;
    for (size_t i = at; i < end; ++i) {
      txn.Then(etcd::Op::Nested(etcd::DeleteIfOwned(
          key_cache_->EtcdKey(held[i].first), held[i].second, session_id)));
    }
    epoch_->Guard(txn);
    const absl::Duration t0 = clock_->Monotonic();
    auto r = keys_->Commit(txn);
    metrics_->etcd_requests++;
    metrics_->etcd_latency.Observe(clock_->Monotonic() - t0);
    if (!r.ok()) {
      metrics_->etcd_errors++;
      if (Unreachable(r.status()) && hooks_.on_etcd_result) {
        hooks_.on_etcd_result(false);
      }
      return r.status();
    }
    if (!r->succeeded) {
      epoch_->CheckGuard(*r);
      return absl::AbortedError(
          "deposed: another replica holds the replica epoch; its keys are not "
          "ours to release");
    }
    for (size_t i = at; i < end; ++i) {
      const size_t j = i - at;
      if (j < r->results.size() && r->results[j].txn_succeeded) {
        metrics_->releases++;
        key_cache_->Apply(held[i].first,
                          KeyEntry{false, 0, 0, "", r->revision});
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace mcl::controller
