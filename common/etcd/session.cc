#include "common/etcd/session.h"

#include <utility>

namespace mcl::etcd {

Session::Session(Client* client, SessionOptions options)
    : options_(std::move(options)), lease_(std::make_unique<Lease>(client)) {}

absl::StatusOr<std::unique_ptr<Session>> Session::Create(
    Client* client, SessionOptions options) {
  std::unique_ptr<Session> s(new Session(client, std::move(options)));
  auto grant =
      s->lease_->Grant(s->options_.ttl_seconds, 0, s->options_.timeout);
  if (!grant.ok()) return grant.status();
  s->grant_ = *grant;
  {
    absl::MutexLock l(&s->mu_);
    s->alive_until_ = grant->sent_at + absl::Seconds(grant->ttl_seconds);
  }
  Session* self = s.get();
  KeepAliveCallbacks callbacks;
  callbacks.on_renewed = [self](const KeepAliveResponse& r) {
    self->OnRenewed(r);
  };
  callbacks.on_lost = [self](const absl::Status& why) { self->OnLost(why); };
  if (absl::Status ka = s->lease_->KeepAlive(*grant, std::move(callbacks));
      !ka.ok())
    return ka;
  return s;
}

Session::~Session() {
  // Ends the keepalive thread before the members its callbacks use go away.
  lease_.reset();
}

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
  absl::MutexLock l(&mu_);
  if (!done_) {
    done_ = true;
    status_ = why;
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

absl::Status Session::Close(absl::Duration timeout) {
  {
    absl::MutexLock l(&mu_);
    if (revoked_) return absl::OkStatus();
  }
  lease_->StopKeepAlive(grant_.id);
  {
    absl::MutexLock l(&mu_);
    if (!done_) {
      done_ = true;
      status_ = absl::CancelledError("etcd session closed");
    }
  }
  absl::Status s = lease_->Revoke(grant_.id, timeout);
  if (s.ok() || absl::IsNotFound(s)) {
    absl::MutexLock l(&mu_);
    revoked_ = true;
    return absl::OkStatus();
  }
  return s;
}

}  // namespace mcl::etcd
