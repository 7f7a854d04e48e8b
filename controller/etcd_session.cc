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
    tracker_.Started(s.id, s.ttl, s.valid_from, s.remaining, s.adopted);
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
    if (!hex.empty() && absl::SimpleHexAtoi(hex, &id) && id != 0 &&
        options_.adoptable && !options_.adoptable(static_cast<int64_t>(id))) {
      LogInfo("the previous etcd session was abandoned; starting a new one",
              {{"session", hex}});
      id = 0;
    }
    if (id != 0) {
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
  if (thread_.joinable()) return;
  stopping_ = false;
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
    // Nothing of this session is ours any more: no view names it.
    tracker_ = SessionTracker();
    heartbeat_.reset();
  }
  // Outside mu_: its keepalive callbacks take mu_. Stops the keepalive; the
  // lease is not revoked.
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

void EtcdSession::NotePublishAttempt(absl::Duration sent_at) {
  absl::MutexLock l(&mu_);
  tracker_.NotePublishAttempt(sent_at);
}

absl::Duration EtcdSession::ReleaseDeadline() const {
  absl::MutexLock l(&mu_);
  return tracker_.ReleaseDeadline();
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

// The session loop's own state between turns (loop thread only).
struct EtcdSession::LoopState {
  Backoff session_backoff{{absl::Milliseconds(100), absl::Seconds(5), 2.0}};
  // A failed heartbeat write is retried soon (it may carry the confirmation a
  // handoff waits for), then less and less often while the apiserver fails.
  Backoff heartbeat_backoff{{absl::Milliseconds(10), absl::Seconds(2), 2.0}};
  Backoff release_backoff{{absl::Milliseconds(100), absl::Seconds(5), 2.0}};
  absl::Duration next_release_try = absl::ZeroDuration();
  absl::Duration next_session_try = absl::ZeroDuration();
  // No heartbeat write before this (a retry after a failure); zero = none
  // pending.
  absl::Duration heartbeat_retry_at = absl::ZeroDuration();
  SessionView last;
  bool first_view = true;
  std::string last_hb_error;
};

void EtcdSession::Loop() {
  pthread_setname_np(pthread_self(), "etcd-session");
  LoopState st;
  while (!stopping_.load()) {
    const absl::Duration now = clock_->Monotonic();
    bool shutting_down = false;
    const bool need_session = RetireLostSession(now, &shutting_down);
    ReleaseLostKeys(now, &st);
    if (need_session && !shutting_down && now >= st.next_session_try) {
      absl::Status est = Establish(false);
      if (est.ok()) {
        st.session_backoff.Reset();
      } else {
        st.next_session_try = now + st.session_backoff.Next();
        LogWarn("cannot start an etcd session; retrying",
                {{"error", std::string(est.message())}});
      }
    }
    ReportStateChange(&st);
    PublishStep(&st);
    const absl::Duration now_end = clock_->Monotonic();
    const absl::Duration wake = NextWake(now_end, st);
    if (wake > now_end) wake_.WaitUntil(wake);
  }
}

bool EtcdSession::RetireLostSession(absl::Duration now, bool* shutting_down) {
  std::unique_ptr<etcd::Session> lost;
  bool need_session;
  {
    absl::MutexLock l(&mu_);
    *shutting_down = tracker_.View(now).shutting_down;
    need_session = tracker_.id() == 0 || tracker_.Lost(now);
    if (need_session && tracker_.id() != 0 && session_ != nullptr) {
      // Rule 7: what we held is gone or will be. Its keys are released once
      // no local candidate can count itself leader on it (never by revoking
      // the lease: another replica may have adopted it).
      lost_.push_back({tracker_.id(), tracker_.ReleaseDeadline()});
      lost = std::move(session_);
    }
  }
  lost.reset();  // its keepalive stops; outside mu_ (callbacks take it)
  return need_session;
}

void EtcdSession::ReleaseLostKeys(absl::Duration now, LoopState* st) {
  if (lost_.empty() || now < lost_.front().release_at ||
      now < st->next_release_try || !options_.release_keys) {
    return;
  }
  const absl::Status rs = options_.release_keys(lost_.front().id);
  if (rs.ok() || absl::IsAborted(rs)) {
    LogInfo("keys of a lost etcd session released",
            {{"session", SessionHex(lost_.front().id)},
             {"result", rs.ok() ? "released" : std::string(rs.message())}});
    lost_.erase(lost_.begin());
    st->release_backoff.Reset();
  } else {
    st->next_release_try = now + st->release_backoff.Next();
  }
}

void EtcdSession::ReportStateChange(LoopState* st) {
  const SessionView v = View();
  const SessionView& last = st->last;
  if (!st->first_view && v.alive == last.alive &&
      v.reachable == last.reachable && v.id == last.id &&
      v.frozen == last.frozen) {
    return;
  }
  LogInfo("backend state",
          {{"session", SessionHex(v.id)},
           {"alive", v.alive ? "true" : "false"},
           {"reachable", v.reachable ? "true" : "false"},
           {"confirmations", v.frozen ? "failing" : "published"}});
  st->last = v;
  st->first_view = false;
  // Every status shows BackendReachable; rule 7 applies to every lock.
  if (options_.on_state_change) options_.on_state_change();
}

void EtcdSession::PublishStep(LoopState* st) {
  std::optional<Heartbeat> hb;
  const bool may_publish = !options_.may_publish || options_.may_publish();
  if (may_publish && clock_->Monotonic() >= st->heartbeat_retry_at) {
    absl::MutexLock l(&mu_);
    hb = tracker_.TakeHeartbeat(clock_->Monotonic());
    if (!hb) st->heartbeat_retry_at = absl::ZeroDuration();  // nothing to do
  }
  if (!hb) return;
  absl::Status ps = PublishHeartbeat(*hb);
  if (!ps.ok()) {
    {
      absl::MutexLock l(&mu_);
      tracker_.PublishFailed();
    }
    st->heartbeat_retry_at = clock_->Monotonic() + st->heartbeat_backoff.Next();
    if (st->last_hb_error != ps.message()) {
      st->last_hb_error = std::string(ps.message());
      LogWarn("heartbeat write failed", {{"error", st->last_hb_error}});
    }
    return;
  }
  {
    absl::MutexLock l(&mu_);
    tracker_.PublishSucceeded();
  }
  st->heartbeat_retry_at = absl::ZeroDuration();
  st->heartbeat_backoff.Reset();
  st->last_hb_error.clear();
}

// Sleep until an event (an answered keepalive wakes the loop at once, since
// its confirmation is on the graceful-handoff path) or the next deadline: the
// session's next change by time (loss, etcd unreachable), a retry. The cap is
// insurance only; every change the loop reacts to is one of those.
absl::Duration EtcdSession::NextWake(absl::Duration now, const LoopState& st) {
  absl::Duration wake = now + absl::Seconds(1);
  {
    absl::MutexLock l(&mu_);
    if (std::optional<absl::Duration> t = tracker_.NextChangeByTime(now))
      wake = std::min(wake, *t);
    if ((tracker_.id() == 0 || tracker_.Lost(now)) &&
        !tracker_.View(now).shutting_down)
      wake = std::min(wake, st.next_session_try);
  }
  if (st.heartbeat_retry_at > now) wake = std::min(wake, st.heartbeat_retry_at);
  if (!lost_.empty()) {
    wake =
        std::min(wake, std::max(lost_.front().release_at, st.next_release_try));
  }
  return wake;
}

}  // namespace mcl::controller
