#include "controller/etcd_session.h"

#include <pthread.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/backoff.h"
#include "common/contract.h"
#include "common/kube/time.h"
#include "common/log.h"

namespace mcl::controller {

EtcdSession::EtcdSession(etcd::Client* etcd, LeaseStore* leases, Clock* clock,
                         Metrics* metrics, EtcdSessionOptions options)
    : etcd_(etcd),
      leases_(leases),
      clock_(clock),
      metrics_(metrics),
      options_(std::move(options)),
      wake_(clock) {}

EtcdSession::~EtcdSession() { Stop(); }

void EtcdSession::Notify() { wake_.Notify(); }

etcd::SessionOptions EtcdSession::SessionCallbacks() {
  etcd::SessionOptions o;
  o.ttl_seconds =
      static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(options_.ttl)));
  o.on_start = [this](const etcd::SessionStart& s) {
    absl::MutexLock l(&mu_);
    tracker_.Started(s.id, s.ttl, s.valid_from, s.remaining);
  };
  o.on_renewed = [this](const etcd::KeepAliveResponse& r) {
    metrics_->keepalives++;
    {
      absl::MutexLock l(&mu_);
      tracker_.OnRenewed(r.id, r.ttl_seconds, r.sent_at, r.received_at);
    }
    // The confirmation it carries may be on a handoff's path: publish now.
    Notify();
  };
  o.on_lost = [this](const absl::Status& why) {
    int64_t id;
    {
      absl::MutexLock l(&mu_);
      id = tracker_.id();
      tracker_.OnLost(id);
    }
    LogWarn("etcd session lost",
            {{"session", SessionHex(id)}, {"why", std::string(why.message())}});
    Notify();
  };
  return o;
}

absl::Status EtcdSession::Establish(bool try_adopt) {
  if (try_adopt) {
    // A standby (or a restarted controller) keeps the previous session if etcd
    // says it still lives, so the keys it holds and the statuses naming it
    // stay valid.
    auto hb = leases_->Get(options_.namespace_, options_.heartbeat);
    if (!hb.ok() && !absl::IsNotFound(hb.status())) return hb.status();
    std::string hex;
    if (hb.ok()) {
      auto it = hb->metadata.annotations.find(contract::kSessionAnnotation);
      if (it != hb->metadata.annotations.end()) hex = it->second;
    }
    uint64_t id = 0;
    if (!hex.empty() && absl::SimpleHexAtoi(hex, &id) && id != 0) {
      auto s = etcd::Session::Adopt(etcd_, static_cast<int64_t>(id),
                                    SessionCallbacks());
      metrics_->etcd_requests++;
      if (s.ok()) {
        LogInfo(
            "adopted etcd session",
            {{"session", hex},
             {"remaining_ttl_s",
              absl::StrCat(absl::ToInt64Seconds((*s)->start().remaining))}});
        absl::MutexLock l(&mu_);
        session_ = std::move(*s);
        return absl::OkStatus();
      }
      if (!absl::IsNotFound(s.status())) {
        metrics_->etcd_errors++;
        return s.status();
      }
      LogInfo("previous etcd session is gone; starting a new one",
              {{"session", hex}});
    }
  }
  const absl::Duration t0 = clock_->Monotonic();
  auto s = etcd::Session::Create(etcd_, SessionCallbacks());
  metrics_->etcd_requests++;
  metrics_->etcd_latency.Observe(clock_->Monotonic() - t0);
  if (!s.ok()) {
    metrics_->etcd_errors++;
    return s.status();
  }
  LogInfo("new etcd session", {{"session", SessionHex((*s)->lease_id())},
                               {"ttl_s", absl::StrCat((*s)->ttl_seconds())}});
  absl::MutexLock l(&mu_);
  session_ = std::move(*s);
  return absl::OkStatus();
}

void EtcdSession::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void EtcdSession::Stop() {
  stopping_ = true;
  Notify();
  if (thread_.joinable()) thread_.join();
  std::unique_ptr<etcd::Session> s;
  {
    absl::MutexLock l(&mu_);
    s = std::move(session_);
  }
  // Outside mu_: its keepalive callbacks take mu_.
  s.reset();
}

SessionView EtcdSession::View() const {
  absl::MutexLock l(&mu_);
  return tracker_.View(clock_->Monotonic());
}

int64_t EtcdSession::id() const {
  absl::MutexLock l(&mu_);
  return tracker_.id();
}

std::optional<absl::Duration> EtcdSession::LossDeadline() const {
  absl::MutexLock l(&mu_);
  return tracker_.LossDeadline();
}

int64_t EtcdSession::HeldIfAlive(
    const std::function<int64_t(int64_t)>& held_by) const {
  int64_t id;
  {
    absl::MutexLock l(&mu_);
    const SessionView v = tracker_.View(clock_->Monotonic());
    if (!v.alive) return 0;
    id = v.id;
  }
  return held_by(id);
}

void EtcdSession::RecordProcessed(int64_t rv) {
  const absl::Duration now = clock_->Monotonic();
  absl::MutexLock l(&mu_);
  tracker_.RecordProcessed(rv, now);
}

void EtcdSession::RecordCallResult(bool ok) {
  bool changed;
  {
    absl::MutexLock l(&mu_);
    const absl::Duration now = clock_->Monotonic();
    const bool was = tracker_.Reachable(now);
    tracker_.OnCallResult(ok, now);
    changed = tracker_.Reachable(now) != was;
  }
  if (changed) Notify();
}

void EtcdSession::ConfirmSoon() {
  absl::MutexLock l(&mu_);
  if (session_ != nullptr) session_->KeepAliveNow();
}

void EtcdSession::SetShuttingDown() {
  {
    absl::MutexLock l(&mu_);
    tracker_.SetShuttingDown();
  }
  Notify();
}

absl::Status EtcdSession::Revoke(absl::Duration timeout) {
  std::unique_ptr<etcd::Session> s;
  {
    absl::MutexLock l(&mu_);
    s = std::move(session_);
  }
  if (s == nullptr) return absl::OkStatus();
  return s->Close(timeout);
}

absl::Status EtcdSession::PublishHeartbeat(const Heartbeat& hb) {
  std::optional<kube::Lease> cached;
  {
    absl::MutexLock l(&mu_);
    cached = heartbeat_;
  }
  kube::Lease obj;
  bool create = false;
  if (cached) {
    obj = std::move(*cached);
  } else {
    auto got = leases_->Get(options_.namespace_, options_.heartbeat);
    if (got.ok()) {
      obj = std::move(*got);
    } else if (absl::IsNotFound(got.status())) {
      create = true;
      obj.metadata.namespace_ = options_.namespace_;
      obj.metadata.name = options_.heartbeat;
    } else {
      return got.status();
    }
  }
  auto& ann = obj.metadata.annotations;
  ann[contract::kSessionAnnotation] = SessionHex(hb.session);
  ann[contract::kConfirmedResourceVersionAnnotation] = hb.confirmed_rv;
  ann[contract::kSessionTtlAnnotation] =
      absl::StrCat(absl::ToInt64Milliseconds(hb.ttl));
  obj.spec.holder_identity = options_.identity;
  obj.spec.lease_duration_seconds =
      static_cast<int32_t>(std::ceil(absl::ToDoubleSeconds(hb.ttl)));
  obj.spec.renew_time = kube::FormatMicroTime(clock_->WallNow());
  auto r = create ? leases_->Create(obj) : leases_->Update(obj);
  absl::MutexLock l(&mu_);
  if (!r.ok()) {
    heartbeat_.reset();  // re-read next time (conflict, or someone deleted it)
    return r.status();
  }
  metrics_->heartbeats++;
  heartbeat_ = std::move(*r);
  return absl::OkStatus();
}

void EtcdSession::Loop() {
  pthread_setname_np(pthread_self(), "etcd-session");
  Backoff session_backoff({absl::Milliseconds(100), absl::Seconds(5), 2.0});
  // A failed heartbeat write is retried soon (it may carry the confirmation a
  // handoff waits for), then less and less often while the apiserver fails.
  Backoff heartbeat_backoff({absl::Milliseconds(10), absl::Seconds(2), 2.0});
  etcd::Lease revoker(etcd_);  // revokes lost sessions; keeps nothing alive
  absl::Duration next_session_try = absl::ZeroDuration();
  // No heartbeat write before this (a retry after a failure); zero = none
  // pending.
  absl::Duration heartbeat_retry_at = absl::ZeroDuration();
  SessionView last;
  bool first_view = true;
  std::string last_hb_error;
  while (!stopping_.load()) {
    const absl::Duration now = clock_->Monotonic();
    int64_t lost_id = 0;
    bool need_session = false, shutting_down = false;
    std::unique_ptr<etcd::Session> lost;
    {
      absl::MutexLock l(&mu_);
      shutting_down = tracker_.View(now).shutting_down;
      need_session = tracker_.id() == 0 || tracker_.Lost(now);
      if (need_session) {
        lost_id = tracker_.id();
        lost = std::move(session_);
      }
    }
    lost.reset();  // its keepalive stops; outside mu_ (callbacks take it)
    if (need_session && !shutting_down && now >= next_session_try) {
      if (lost_id != 0) {
        // Rule 7: what we held is gone or will be; revoke so the keys go now,
        // not at expiry.
        (void)revoker.Revoke(lost_id, absl::Seconds(1));
      }
      absl::Status st = Establish(false);
      if (st.ok()) {
        session_backoff.Reset();
      } else {
        next_session_try = now + session_backoff.Next();
        LogWarn("cannot start an etcd session; retrying",
                {{"error", std::string(st.message())}});
      }
    }
    const SessionView v = View();
    if (first_view || v.alive != last.alive || v.reachable != last.reachable ||
        v.id != last.id) {
      LogInfo("backend state", {{"session", SessionHex(v.id)},
                                {"alive", v.alive ? "true" : "false"},
                                {"reachable", v.reachable ? "true" : "false"}});
      last = v;
      first_view = false;
      // Every status shows BackendReachable; rule 7 applies to every lock.
      if (options_.on_state_change) options_.on_state_change();
    }
    std::optional<Heartbeat> hb;
    if (clock_->Monotonic() >= heartbeat_retry_at) {
      absl::MutexLock l(&mu_);
      hb = tracker_.TakeHeartbeat(clock_->Monotonic());
      if (!hb) heartbeat_retry_at = absl::ZeroDuration();  // nothing to publish
    }
    if (hb) {
      absl::Status st = PublishHeartbeat(*hb);
      if (!st.ok()) {
        {
          absl::MutexLock l(&mu_);
          tracker_.PublishFailed();
        }
        heartbeat_retry_at = clock_->Monotonic() + heartbeat_backoff.Next();
        if (last_hb_error != st.message()) {
          last_hb_error = std::string(st.message());
          LogWarn("heartbeat write failed", {{"error", last_hb_error}});
        }
      } else {
        heartbeat_retry_at = absl::ZeroDuration();
        heartbeat_backoff.Reset();
        last_hb_error.clear();
      }
    }
    // Sleep until an event (an answered keepalive wakes this loop at once,
    // since its confirmation is on the graceful-handoff path) or the next
    // deadline: the session's next change by time (loss, etcd unreachable), a
    // retry. The cap is insurance only; every change the loop reacts to is one
    // of those.
    const absl::Duration now_end = clock_->Monotonic();
    absl::Duration wake = now_end + absl::Seconds(1);
    {
      absl::MutexLock l(&mu_);
      if (std::optional<absl::Duration> t = tracker_.NextChangeByTime(now_end))
        wake = std::min(wake, *t);
      if ((tracker_.id() == 0 || tracker_.Lost(now_end)) &&
          !tracker_.View(now_end).shutting_down)
        wake = std::min(wake, next_session_try);
    }
    if (heartbeat_retry_at > now_end) wake = std::min(wake, heartbeat_retry_at);
    if (wake > now_end) wake_.WaitUntil(wake);
  }
}

}  // namespace mcl::controller
