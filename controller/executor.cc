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
                   const LockReconciler* reconciler, Clock* clock,
                   Metrics* metrics, Hooks hooks)
    : locks_(locks),
      keys_(keys),
      key_cache_(key_cache),
      reconciler_(reconciler),
      clock_(clock),
      metrics_(metrics),
      hooks_(std::move(hooks)) {}

bool Executor::Execute(const std::string& key,
                       const kube::MultiClusterLease* cur, const Action& action,
                       int64_t session_id, LockSlot& slot) {
  const std::string ek = key_cache_->EtcdKey(key);
  if (const auto* a = std::get_if<TxnCreate>(&action)) {
    metrics_->contention_attempts++;
    return Txn(key, etcd::CreateIfAbsent(ek, a->value, session_id),
               "txn-create", false, a->value, session_id);
  }
  if (const auto* a = std::get_if<TxnRepoint>(&action)) {
    return Txn(
        key,
        etcd::PutIfOwned(ek, a->expected_mod_revision, a->value, session_id),
        "txn-repoint", false, a->value, session_id);
  }
  if (const auto* a = std::get_if<TxnDelete>(&action)) {
    return Txn(key, etcd::DeleteIfOwned(ek, a->expected_mod_revision),
               "txn-delete", true, "", session_id);
  }
  if (std::holds_alternative<std::monostate>(action)) return true;
  if (cur == nullptr) return false;  // CR writes need the CR
  if (std::holds_alternative<AddFinalizer>(action)) {
    return Finalizer(key, *cur, true, slot);
  }
  if (std::holds_alternative<RemoveFinalizer>(action)) {
    return Finalizer(key, *cur, false, slot);
  }
  return Status(key, *cur, std::get<WriteStatus>(action), slot);
}

bool Executor::Finalizer(const std::string& key,
                         const kube::MultiClusterLease& cur, bool add,
                         LockSlot& slot) {
  kube::MultiClusterLease obj = cur;
  auto& f = obj.metadata.finalizers;
  f.erase(std::remove(f.begin(), f.end(), contract::kFinalizer), f.end());
  if (add) f.push_back(contract::kFinalizer);
  // Preconditioned on the version it was computed from (cur's own).
  auto r = locks_->Update(obj);
  if (r.ok()) {
    slot.written = std::move(*r);
    return true;
  }
  if (absl::IsNotFound(r.status())) return true;
  if (!kube::IsConflict(r.status())) {
    LogWarn("finalizer update failed",
            {{"lock", key}, {"error", std::string(r.status().message())}});
  }
  return false;
}

bool Executor::Status(const std::string& key,
                      const kube::MultiClusterLease& cur, const WriteStatus& w,
                      LockSlot& slot) {
  kube::MultiClusterLease obj = cur;
  obj.status = w.status;
  obj.metadata.resource_version = w.precondition_rv;
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
    return true;
  }
  if (outcome == WriteOutcome::kConflict) {
    metrics_->status_conflicts++;
  } else {
    metrics_->status_write_errors++;
    LogWarn("status write failed",
            {{"lock", key}, {"error", std::string(r.status().message())}});
  }
  return false;
}

bool Executor::Txn(const std::string& key, const etcd::Txn& txn,
                   const char* what, bool is_delete, const std::string& value,
                   int64_t session_id) {
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
    return false;
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
    return true;
  }
  // Lost the race (or the key changed under us): learn the current state from
  // the Else branch's Get.
  if (!r->results.empty() && !r->results[0].range.kvs.empty()) {
    const auto& kv = r->results[0].range.kvs[0];
    key_cache_->Apply(key, KeyEntry{true, kv.mod_revision, kv.lease, kv.value,
                                    kv.mod_revision});
  } else {
    key_cache_->Apply(key, KeyEntry{false, 0, 0, "", r->revision});
  }
  return true;  // reconcile again at once with what we learned
}

}  // namespace mcl::controller
