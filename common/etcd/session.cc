#include "common/etcd/session.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace mcl::etcd {

Session::Session(Client* client, SessionOptions options)
    : options_(std::move(options)), lease_(std::make_unique<Lease>(client)) {}

absl::StatusOr<std::unique_ptr<Session>> Session::Create(
    Client* client, SessionOptions options) {
  std::unique_ptr<Session> s(new Session(client, std::move(options)));
  auto grant =
      s->lease_->Grant(s->options_.ttl_seconds, 0, s->options_.timeout);
  if (!grant.ok()) return grant.status();
  s->start_.id = grant->id;
  s->start_.ttl = absl::Seconds(grant->ttl_seconds);
  s->start_.valid_from = grant->sent_at;
  s->start_.remaining = s->start_.ttl;
  if (absl::Status st = s->Start(*grant); !st.ok()) return st;
  return s;
}

absl::StatusOr<std::unique_ptr<Session>> Session::Adopt(
    Client* client, int64_t id, SessionOptions options) {
  if (id == 0) {
    return absl::InvalidArgumentError("etcd: Session::Adopt of lease 0");
  }
  std::unique_ptr<Session> s(new Session(client, std::move(options)));
  const absl::Duration sent = client->clock()->Monotonic();
  auto info = s->lease_->TimeToLive(id, false, s->options_.timeout);
  if (!info.ok()) return info.status();
  if (info->ttl_seconds <= 0) {
    return absl::NotFoundError(
        absl::StrCat("etcd: lease ", id, " is expiring (TTL 0)"));
  }
  // etcd's leader answers its remaining time truncated to whole seconds
  // (etcdserver's LeaseTimeToLive: int64(Remaining().Seconds())), so at least
  // that much was left when it answered, after `sent`.
  const int64_t remaining = info->ttl_seconds;
  const int64_t granted =
      std::max(info->granted_ttl_seconds, info->ttl_seconds);
  s->start_.id = id;
  s->start_.ttl = absl::Seconds(granted);
  s->start_.valid_from = sent;
  s->start_.remaining = absl::Seconds(remaining);
  s->start_.adopted = true;
  // The keepalive loop counts expiry from sent_at + ttl: place sent_at so that
  // this is sent + remaining.
  LeaseGrant g;
  g.id = id;
  g.ttl_seconds = granted;
  g.sent_at = sent - absl::Seconds(granted - remaining);
  if (absl::Status st = s->Start(g); !st.ok()) return st;
  return s;
}

absl::Status Session::Start(const LeaseGrant& grant) {
  if (options_.on_start) options_.on_start(start_);
  {
    absl::MutexLock l(&mu_);
    alive_until_ = grant.sent_at + absl::Seconds(grant.ttl_seconds);
  }
  KeepAliveCallbacks callbacks;
  callbacks.on_renewed = [this](const KeepAliveResponse& r) { OnRenewed(r); };
  callbacks.on_lost = [this](const absl::Status& why) { OnLost(why); };
  return lease_->KeepAlive(grant, std::move(callbacks));
}

Session::~Session() {
  // Ends the keepalive thread before the members its callbacks use go away.
  lease_.reset();
}

void Session::KeepAliveNow() { lease_->KeepAliveNow(start_.id); }

void Session::OnRenewed(const KeepAliveResponse& r) {
  {
    absl::MutexLock l(&mu_);
    last_ = r;
    alive_until_ =
        std::max(alive_until_, r.sent_at + absl::Seconds(r.ttl_seconds));
  }
  if (options_.on_renewed) options_.on_renewed(r);
}

void Session::OnLost(const absl::Status& why) {
  {
    absl::MutexLock l(&mu_);
    if (done_) return;  // closed meanwhile
  }
  // The callback runs before Done() turns true, so whoever waits on Done()
  // knows it has run.
  if (options_.on_lost) options_.on_lost(why);
  MarkDone(why);
}

void Session::MarkDone(absl::Status why) {
  absl::MutexLock l(&mu_);
  if (!done_) {
    done_ = true;
    status_ = std::move(why);
  }
}

bool Session::Done() const {
  absl::MutexLock l(&mu_);
  return done_;
}

absl::Status Session::status() const {
  absl::MutexLock l(&mu_);
  return status_;
}

bool Session::WaitDone(absl::Duration timeout) const {
  absl::MutexLock l(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
  return done_;
}

std::optional<KeepAliveResponse> Session::last_renewal() const {
  absl::MutexLock l(&mu_);
  return last_;
}

absl::Duration Session::known_alive_until() const {
  absl::MutexLock l(&mu_);
  return alive_until_;
}

void Session::StopKeepAlive() {
  lease_->StopKeepAlive(start_.id);
  MarkDone(absl::CancelledError("etcd session: keepalive stopped"));
}

absl::Status Session::Close(absl::Duration timeout) {
  {
    absl::MutexLock l(&mu_);
    if (revoked_) return absl::OkStatus();
  }
  lease_->StopKeepAlive(start_.id);
  MarkDone(absl::CancelledError("etcd session closed"));
  absl::Status s = lease_->Revoke(start_.id, timeout);
  if (s.ok() || absl::IsNotFound(s)) {
    absl::MutexLock l(&mu_);
    revoked_ = true;
    return absl::OkStatus();
  }
  return s;
}

}  // namespace mcl::etcd
