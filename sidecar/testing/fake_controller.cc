#include "sidecar/testing/fake_controller.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/contract.h"
#include "common/kube/config.h"
#include "common/kube/errors.h"
#include "gtest/gtest.h"

namespace mcl::sidecar::testing {

FakeController::FakeController(Options o) : o_(std::move(o)) {
  auto cfg = kube::LoadKubeconfigFile(o_.kubeconfig);
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  kube::ClientOptions copts;
  copts.request_timeout = absl::Seconds(2);
  auto c = kube::KubeClient::Create(*cfg, copts);
  EXPECT_TRUE(c.ok()) << c.status();
  client_ = std::move(*c);
  kube::InformerOptions io;
  io.namespace_ = o_.ns;
  io.backoff = {absl::Milliseconds(50), absl::Milliseconds(500), 2.0};
  auto kick = [this] {
    absl::MutexLock l(&mu_);
    dirty_ = true;
    cv_.Signal();
  };
  kube::TypedInformer<kube::MultiClusterLease>::Handlers h;
  h.on_add = [kick](const kube::MultiClusterLease&) { kick(); };
  h.on_update = [kick](const kube::MultiClusterLease&,
                       const kube::MultiClusterLease&) { kick(); };
  h.on_delete = [kick](const kube::MultiClusterLease&) { kick(); };
  informer_ = std::make_unique<kube::TypedInformer<kube::MultiClusterLease>>(
      client_.get(), io, h);
  informer_->Start();
  thread_ = std::thread([this] { Loop(); });
}

FakeController::~FakeController() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
    cv_.Signal();
  }
  thread_.join();
  informer_->Stop();
}

void FakeController::Manage(const std::string& lock) {
  absl::MutexLock l(&mu_);
  locks_.insert(lock);
  dirty_ = true;
  cv_.Signal();
}

void FakeController::SetHeartbeats(bool on) {
  absl::MutexLock l(&mu_);
  heartbeats_ = on;
}

void FakeController::SetHeartbeatDelay(absl::Duration d) {
  absl::MutexLock l(&mu_);
  delay_ = d;
}

std::vector<absl::Time> FakeController::CaptureTimes() {
  absl::MutexLock l(&mu_);
  return captures_;
}

absl::Time FakeController::LastPublishedCapture() {
  absl::MutexLock l(&mu_);
  return captures_.empty() ? absl::InfinitePast() : captures_.back();
}

int64_t FakeController::grants() {
  absl::MutexLock l(&mu_);
  return grants_;
}

void FakeController::Loop() {
  for (;;) {
    std::set<std::string> locks;
    {
      absl::MutexLock l(&mu_);
      absl::Duration wait = next_heartbeat_ - absl::Now();
      // Staleness of a holder is noticed without an event: look again at least
      // every 100 ms.
      wait = std::min(wait, absl::Milliseconds(100));
      if (!dirty_ && !stop_ && wait > absl::ZeroDuration())
        cv_.WaitWithTimeout(&mu_, wait);
      if (stop_) return;
      dirty_ = false;
      locks = locks_;
    }
    if (absl::Now() >= next_heartbeat_) {
      next_heartbeat_ = absl::Now() + o_.ttl / 4;
      Heartbeat();
    }
    std::string c = informer_->LastSyncResourceVersion();
    for (const std::string& lock : locks) Reconcile(lock, c);
  }
}

void FakeController::Heartbeat() {
  bool on;
  absl::Duration delay;
  {
    absl::MutexLock l(&mu_);
    on = heartbeats_;
    delay = delay_;
  }
  if (!on) return;
  // c is read before the "keepalive"; the keepalive is answered at once (the
  // session is alive).
  absl::Time captured = absl::Now();
  std::string c = informer_->LastSyncResourceVersion();
  if (c.empty()) return;
  if (delay > absl::ZeroDuration())
    absl::SleepFor(delay);  // the slow path being simulated
  kube::LeaseClient leases(client_.get());
  auto lease = leases.Get(o_.ns, heartbeat_name());
  kube::Lease l;
  if (lease.ok()) l = *lease;
  l.metadata.name = heartbeat_name();
  l.metadata.namespace_ = o_.ns;
  l.metadata.annotations[contract::kSessionAnnotation] = o_.session;
  l.metadata.annotations[contract::kConfirmedResourceVersionAnnotation] = c;
  l.metadata.annotations[contract::kSessionTtlAnnotation] =
      absl::StrCat(absl::ToInt64Milliseconds(o_.ttl));
  l.spec.holder_identity = o_.session;
  l.spec.renew_time = kube::FormatMicroTime(absl::Now());
  auto r = lease.ok() ? leases.Update(l) : leases.Create(l);
  if (r.ok()) {
    absl::MutexLock m(&mu_);
    captures_.push_back(captured);
  }
}

void FakeController::Reconcile(const std::string& lock, const std::string& c) {
  std::optional<kube::MultiClusterLease> obj = informer_->Get(o_.ns, lock);
  if (!obj) return;
  // The holder is the candidacy: (identity, instance) (common/contract.h).
  const std::string holder_id = obj->spec.holder_identity.value_or("");
  const std::string holder_instance = obj->spec.holder_instance.value_or("");
  const std::string holder =
      holder_id.empty() ? "" : absl::StrCat(holder_id, "#", holder_instance);
  Observed& seen = observed_[lock];
  if (holder != seen.holder || obj->spec.renew_time != seen.renew) {
    seen = Observed{holder, obj->spec.renew_time, absl::Now()};
  }
  const absl::Duration ld = absl::Seconds(obj->spec.lease_duration_seconds);
  const bool live = !holder.empty() && absl::Now() - seen.seen < ld;
  const std::string leader =
      obj->status.leader.empty()
          ? ""
          : absl::StrCat(obj->status.leader, "#", obj->status.leader_instance);
  kube::MultiClusterLease next = *obj;
  bool write = false;
  if (leader.empty()) {
    if (live) {
      next.status.leader = holder_id;
      next.status.leader_instance = holder_instance;
      next.status.leader_cluster = o_.cluster;
      next.status.fencing_token = ++next_token_;
      next.status.acquire_time = kube::FormatMicroTime(absl::Now());
      next.status.session = o_.session;
      next.status.heartbeat = o_.ns + "/" + heartbeat_name();
      next.status.session_ttl_milliseconds = absl::ToInt64Milliseconds(o_.ttl);
      next.status.confirmed_resource_version = c;
      next.status.transitions++;
      write = true;
    }
  } else if (holder.empty()) {
    // Resign: the spec write that cleared the holder is the ack; release.
    next.status = kube::MultiClusterLeaseStatus();
    next.status.transitions = obj->status.transitions;
    write = true;
  } else if (holder != leader) {
    // A new local holder (another identity, or another candidacy of the same
    // one): re-point only after the old grantee's timeout (§Ack), with a new
    // token; it cannot ack since the spec is no longer its own.
    auto it = last_renewal_.find(lock);
    absl::Time old_renewal =
        it == last_renewal_.end() ? absl::Now() : it->second;
    absl::Time safe = old_renewal + contract::LapseAfterObservedRenewal(o_.ttl);
    if (absl::Now() >= safe && live) {
      next.status.leader = holder_id;
      next.status.leader_instance = holder_instance;
      next.status.fencing_token = ++next_token_;
      next.status.acquire_time = kube::FormatMicroTime(absl::Now());
      next.status.confirmed_resource_version = c;
      next.status.transitions++;
      write = true;
    } else if (next_heartbeat_ > safe) {
      next_heartbeat_ = safe;  // wake up then
    }
  }
  if (!holder.empty() && holder == leader) last_renewal_[lock] = seen.seen;
  if (!write) return;
  kube::MultiClusterLeaseClient mcls(client_.get());
  auto r = mcls.UpdateStatus(next);
  if (r.ok() && !next.status.leader.empty() &&
      absl::StrCat(next.status.leader, "#", next.status.leader_instance) !=
          leader) {
    absl::MutexLock l(&mu_);
    ++grants_;
  }
}

}  // namespace mcl::sidecar::testing
