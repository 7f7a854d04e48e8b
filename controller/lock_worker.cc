#include "controller/lock_worker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace mcl::controller {
namespace {

int64_t RvNumber(const std::string& rv) {
  return kube::ParseResourceVersion(rv).value_or(-1);
}

}  // namespace

void LockWorker::Reconcile(const std::string& key) {
  if (key.find('/') == std::string::npos) return;
  if (d_.may_act && !d_.may_act()) {
    // Standby or standing down: keep the memory current (the inbox must not
    // grow), act on nothing. Rejoining enqueues every lock again.
    d_.table->With(key, [](LockSlot&) {});
    return;
  }
  for (int iteration = 0; iteration < 8 && !d_.stopping(); ++iteration) {
    Step step = Step::kDone;
    d_.table->With(key, [&](LockSlot& slot) { step = Once(key, slot); });
    if (step == Step::kForget) {
      d_.table->Forget(key);
      d_.keys->ForgetTombstone(key);  // drop the tombstone too
      return;
    }
    if (step == Step::kDone) return;
  }
  // Still busy after 8 steps: let other locks run.
  if (!d_.stopping()) d_.queue->Add(key);
}

std::optional<kube::MultiClusterLease> LockWorker::Current(
    const std::string& key, LockSlot& slot, bool* bad) {
  *bad = false;
  kube::ObjectPtr obj = d_.informer->GetByKey(key);
  if (slot.written) {
    // Our own write's answer is newer than the informer until the informer
    // catches up (or the object is gone).
    if (obj == nullptr ||
        RvNumber(kube::ResourceVersionOf(*obj)) >=
            RvNumber(slot.written->metadata.resource_version)) {
      slot.written.reset();
    } else {
      return slot.written;
    }
  }
  if (obj == nullptr) return std::nullopt;
  auto cr = kube::MultiClusterLease::FromJson(*obj);
  if (!cr.ok()) {
    *bad = true;
    const std::string why(cr.status().message());
    if (slot.last_why != why) {
      slot.last_why = why;
      LogWarn("cannot use this MultiClusterLease",
              {{"lock", key}, {"error", why}});
    }
    return std::nullopt;
  }
  return std::move(*cr);
}

LockWorker::Step LockWorker::Once(const std::string& key, LockSlot& slot) {
  bool bad = false;
  std::optional<kube::MultiClusterLease> cur = Current(key, slot, &bad);
  if (bad) return Step::kDone;
  const kube::MultiClusterLease* cr = cur ? &*cur : nullptr;
  const KeyView kv = d_.keys->View(key);
  const SessionView sv = d_.session->View();
  Plan plan = d_.reconciler->Reconcile(cr, kv, sv, slot.memory);
  d_.metrics->reconciles++;
  if (plan.forget) return Step::kForget;
  if (std::holds_alternative<std::monostate>(plan.action)) {
    if (cr != nullptr) {
      for (const auto& e : plan.events) PostEvent(*cr, e);
    }
    if (slot.last_why != plan.why) {
      slot.last_why = plan.why;
      LogInfo(plan.why, {{"lock", key}, {"action", "none"}});
    }
    slot.failures = 0;
    if (plan.requeue_at) {
      d_.queue->AddAt(key, *plan.requeue_at + absl::Milliseconds(1));
    }
    return Step::kDone;
  }
  LogInfo(plan.why, {{"lock", key},
                     {"action", ActionName(plan.action)},
                     {"holder", cr != nullptr && cr->spec.holder_identity
                                    ? *cr->spec.holder_identity
                                    : ""},
                     {"session", SessionHex(sv.id)}});
  const Executor::Outcome outcome =
      d_.executor->Execute(key, cr, plan.action, sv, slot);
  if (outcome == Executor::Outcome::kNotActing) return Step::kDone;
  if (outcome == Executor::Outcome::kFailed) {
    const int n = ++slot.failures;
    slot.last_why.clear();
    const absl::Duration delay = std::min(
        absl::Seconds(5), absl::Milliseconds(50) * (1 << std::min(n - 1, 7)));
    d_.queue->AddAt(key, d_.clock->Monotonic() + delay);
    return Step::kDone;
  }
  if (cr != nullptr) {
    for (const auto& e : plan.events) PostEvent(*cr, e);
  }
  slot.failures = 0;
  slot.last_why.clear();
  return Step::kAgain;
}

void LockWorker::PostEvent(const kube::MultiClusterLease& cr,
                           const EventNote& note) {
  kube::ObjectReference ref = kube::RefTo(cr);
  ref.resource_version.clear();  // one Event series per lock, not per version
  d_.events->Record(
      ref, note.warning ? kube::EventType::kWarning : kube::EventType::kNormal,
      note.reason, note.message);
}

}  // namespace mcl::controller
