#include "common/etcd/lease.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/backoff.h"
#include "common/etcd/errors.h"

namespace mcl::etcd {
namespace {

constexpr absl::Duration kForever = absl::Hours(24 * 365);

// The smallest gap between two keepalives of one lease.
constexpr absl::Duration kMinInterval = absl::Milliseconds(100);

}  // namespace

Lease::Lease(Client* client)
    : client_(client), clock_(client->clock()), wake_(clock_) {}

Lease::~Lease() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    if (ctx_ != nullptr) ctx_->TryCancel();
  }
  wake_.Notify();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<LeaseGrant> Lease::Grant(int64_t ttl_seconds, int64_t id,
                                        absl::Duration timeout) {
  if (ttl_seconds <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd: lease TTL must be > 0 seconds, got ", ttl_seconds));
  }
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(ttl_seconds);
  req.set_id(id);
  etcdserverpb::LeaseGrantResponse resp;
  absl::Duration sent_at;
  absl::Status s =
      client_->Call("Lease.LeaseGrant", Client::CallKind::kMutation, timeout,
                    [&](Client::Connection& c, grpc::ClientContext* ctx) {
                      sent_at = clock_->Monotonic();
                      return c.lease->LeaseGrant(ctx, req, &resp);
                    });
  if (!s.ok()) return s;
  if (!resp.error().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("etcd Lease.LeaseGrant: ", resp.error()));
  }
  LeaseGrant g;
  g.id = resp.id();
  g.ttl_seconds = resp.ttl();
  g.sent_at = sent_at;
  g.revision = resp.header().revision();
  return g;
}

absl::Status Lease::Revoke(int64_t id, absl::Duration timeout) {
  StopKeepAlive(id);
  etcdserverpb::LeaseRevokeRequest req;
  req.set_id(id);
  etcdserverpb::LeaseRevokeResponse resp;
  return client_->Call("Lease.LeaseRevoke", Client::CallKind::kMutation,
                       timeout,
                       [&](Client::Connection& c, grpc::ClientContext* ctx) {
                         return c.lease->LeaseRevoke(ctx, req, &resp);
                       });
}

absl::StatusOr<LeaseInfo> Lease::TimeToLive(int64_t id, bool keys,
                                            absl::Duration timeout) {
  etcdserverpb::LeaseTimeToLiveRequest req;
  req.set_id(id);
  req.set_keys(keys);
  etcdserverpb::LeaseTimeToLiveResponse resp;
  std::string endpoint;
  absl::Status s =
      client_->Call("Lease.LeaseTimeToLive", Client::CallKind::kRead, timeout,
                    [&](Client::Connection& c, grpc::ClientContext* ctx) {
                      endpoint = c.address;
                      return c.lease->LeaseTimeToLive(ctx, req, &resp);
                    });
  if (!s.ok()) return s;
  if (resp.ttl() < 0) {
    // etcd answers -1 for a lease it does not know.
    return absl::NotFoundError(absl::StrCat(
        "etcd Lease.LeaseTimeToLive on ", endpoint, ": NOT_FOUND: lease ", id,
        " does not exist (expired or revoked)"));
  }
  LeaseInfo info;
  info.id = resp.id();
  info.ttl_seconds = resp.ttl();
  info.granted_ttl_seconds = resp.grantedttl();
  for (const auto& k : resp.keys()) info.keys.push_back(k);
  return info;
}

absl::Status Lease::KeepAlive(const LeaseGrant& grant,
                              KeepAliveCallbacks callbacks) {
  if (grant.id == 0 || grant.ttl_seconds <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd: KeepAlive needs a granted lease, got id ", grant.id,
                     " ttl ", grant.ttl_seconds));
  }
  absl::MutexLock l(&mu_);
  if (stopping_) return absl::CancelledError("etcd: Lease is shutting down");
  if (kept_.count(grant.id) != 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("etcd: lease ", grant.id, " is already kept alive"));
  }
  Kept k;
  k.ttl_seconds = grant.ttl_seconds;
  k.alive_until = grant.sent_at + absl::Seconds(grant.ttl_seconds);
  k.next_send = clock_->Monotonic();
  k.callbacks = std::move(callbacks);
  kept_.emplace(grant.id, std::move(k));
  kick_ = true;
  wake_.Notify();
  if (!thread_.joinable()) {
    thread_ = std::thread([this] { Run(); });
    thread_id_ = thread_.get_id();
  }
  return absl::OkStatus();
}

void Lease::StopKeepAlive(int64_t id) {
  bool on_own_thread;
  {
    absl::MutexLock l(&mu_);
    kept_.erase(id);
    on_own_thread = std::this_thread::get_id() == thread_id_;
  }
  // Wait out a batch of callbacks that was collected before the erase.
  if (!on_own_thread) absl::MutexLock wait(&callback_mu_);
}

std::vector<int64_t> Lease::KeptAlive() const {
  absl::MutexLock l(&mu_);
  std::vector<int64_t> ids;
  for (const auto& [id, k] : kept_) ids.push_back(id);
  return ids;
}

absl::Duration Lease::Step(bool stream_up, const std::string& endpoint,
                           std::vector<int64_t>* due, Batch* batch,
                           bool* silent) {
  while (!inbox_.empty()) {
    Inbox in = std::move(inbox_.front());
    inbox_.pop_front();
    const int64_t id = in.response.id();
    auto it = kept_.find(id);
    if (it == kept_.end()) continue;  // stopped meanwhile
    Kept& k = it->second;
    if (k.pending.empty())
      continue;  // not an answer to anything we sent on this stream
    absl::Duration sent_at = k.pending.front();
    k.pending.pop_front();
    if (in.response.ttl() <= 0) {
      auto on_lost = std::move(k.callbacks.on_lost);
      kept_.erase(it);
      absl::Status lost = absl::NotFoundError(absl::StrCat(
          "etcd Lease.LeaseKeepAlive on ", endpoint, ": NOT_FOUND: lease ", id,
          " no longer exists (it expired or was revoked)"));
      if (on_lost) batch->push_back([on_lost, lost] { on_lost(lost); });
      continue;
    }
    k.ttl_seconds = in.response.ttl();
    k.alive_until =
        std::max(k.alive_until, sent_at + absl::Seconds(k.ttl_seconds));
    if (k.callbacks.on_renewed) {
      KeepAliveResponse r;
      r.id = id;
      r.ttl_seconds = k.ttl_seconds;
      r.sent_at = sent_at;
      r.received_at = in.received_at;
      r.revision = in.response.header().revision();
      r.endpoint = endpoint;
      auto on_renewed = k.callbacks.on_renewed;
      batch->push_back([on_renewed, r] { on_renewed(r); });
    }
  }
  const absl::Duration now = clock_->Monotonic();
  absl::Duration wake = now + kForever;
  for (auto it = kept_.begin(); it != kept_.end();) {
    Kept& k = it->second;
    if (now >= k.alive_until) {
      auto on_lost = std::move(k.callbacks.on_lost);
      absl::Status lost = absl::DeadlineExceededError(absl::StrCat(
          "etcd lease ", it->first,
          ": no keepalive answered within its TTL of ", k.ttl_seconds, "s (",
          stream_up ? absl::StrCat("stream to ", endpoint, " is up")
                    : "etcd unreachable",
          "); it may have expired"));
      it = kept_.erase(it);
      if (on_lost) batch->push_back([on_lost, lost] { on_lost(lost); });
      continue;
    }
    // An answer overdue on a stream that is up: the stream is silent.
    const absl::Duration answer_bound =
        std::max(absl::Seconds(1), absl::Seconds(k.ttl_seconds) / 2);
    if (stream_up && silent != nullptr && !k.pending.empty()) {
      if (now >= k.pending.front() + answer_bound) *silent = true;
      wake = std::min(wake, k.pending.front() + answer_bound);
    }
    if (stream_up && now >= k.next_send) {
      due->push_back(it->first);
      k.next_send =
          now + std::max(absl::Seconds(k.ttl_seconds) / 3, kMinInterval);
    }
    wake = std::min(wake, k.alive_until);
    if (stream_up) wake = std::min(wake, k.next_send);
    ++it;
  }
  return wake;
}

void Lease::KeepAliveNow(int64_t id) {
  absl::MutexLock l(&mu_);
  auto it = kept_.find(id);
  if (it == kept_.end()) return;
  it->second.next_send = std::min(it->second.next_send, clock_->Monotonic());
  kick_ = true;
  wake_.Notify();
}

void Lease::RunBatch(Batch* batch) {
  callback_mu_.Lock();
  mu_.Unlock();
  for (auto& f : *batch) f();
  batch->clear();
  callback_mu_.Unlock();
}

void Lease::WaitOffline(absl::Duration d) {
  const absl::Duration until = clock_->Monotonic() + d;
  while (true) {
    mu_.Lock();
    if (stopping_) {
      mu_.Unlock();
      return;
    }
    kick_ = false;
    std::vector<int64_t> none;
    Batch batch;
    absl::Duration wake = std::min(until, Step(false, "", &none, &batch));
    RunBatch(&batch);  // unlocks mu_
    if (clock_->Monotonic() >= until) return;
    // A loss deadline is a safety wait: on the monotonic clock (Wakeup), never
    // one that a wall-clock step back would stretch (common/clock.h).
    wake_.WaitUntil(wake);
  }
}

void Lease::Run() {
  pthread_setname_np(pthread_self(), "etcd-lease");
  Backoff backoff(client_->config().reconnect_backoff);
  while (WaitForWork()) {
    auto stream = client_->ConnectStream("Lease.LeaseKeepAlive",
                                         absl::Now() + ConnectBudget());
    if (!stream.ok()) {
      WaitOffline(backoff.Next());
      continue;
    }
    const std::string endpoint = stream->connection->address;
    auto ctx = std::make_shared<grpc::ClientContext>();
    Client::PrepareContext(*stream, ctx.get());
    if (!BeginStream(ctx)) return;
    auto rw = stream->connection->lease->LeaseKeepAlive(ctx.get());
    std::thread reader([this, &rw] { ReadAnswers(rw.get()); });
    bool answered = false;
    bool silent = false;
    ServeStream(rw.get(), endpoint, &answered, &silent);
    ctx->TryCancel();
    reader.join();
    grpc::Status status = rw->Finish();
    if (!EndStream(endpoint, silent, &status)) return;  // stopping
    client_->OnStreamError(*stream, status);
    if (silent) continue;  // at once, on the next endpoint
    if (answered) backoff.Reset();
    WaitOffline(backoff.Next());
  }
}

bool Lease::WaitForWork() {
  absl::MutexLock l(&mu_);
  auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !kept_.empty();
  };
  mu_.Await(absl::Condition(&has_work));
  return !stopping_;
}

absl::Duration Lease::ConnectBudget() {
  // Connecting must not delay a loss report: wait no longer than the first
  // lease's expiry.
  absl::Duration connect_for = client_->config().dial_timeout;
  {
    absl::MutexLock l(&mu_);
    const absl::Duration now = clock_->Monotonic();
    for (const auto& [id, k] : kept_) {
      connect_for = std::min(connect_for, k.alive_until - now);
    }
  }
  return std::max(connect_for, absl::Milliseconds(1));
}

bool Lease::BeginStream(std::shared_ptr<grpc::ClientContext> ctx) {
  absl::MutexLock l(&mu_);
  if (stopping_) return false;
  ctx_ = std::move(ctx);
  inbox_.clear();
  reader_done_ = false;
  const absl::Duration now = clock_->Monotonic();
  for (auto& [id, k] : kept_) {
    k.pending.clear();  // answers to the old stream's keepalives never come
    k.next_send = now;
  }
  return true;
}

void Lease::ReadAnswers(KeepAliveStream* rw) {
  etcdserverpb::LeaseKeepAliveResponse r;
  while (rw->Read(&r)) {
    absl::Duration t = clock_->Monotonic();
    {
      absl::MutexLock l(&mu_);
      inbox_.push_back({r, t});
    }
    wake_.Notify();
  }
  {
    absl::MutexLock l(&mu_);
    reader_done_ = true;
  }
  wake_.Notify();
}

void Lease::ServeStream(KeepAliveStream* rw, const std::string& endpoint,
                        bool* answered, bool* silent) {
  bool write_failed = false;
  while (true) {
    mu_.Lock();
    if (stopping_ || reader_done_ || write_failed || *silent) {
      mu_.Unlock();
      break;
    }
    *answered |= !inbox_.empty();
    std::vector<int64_t> due;
    Batch batch;
    absl::Duration wake = Step(true, endpoint, &due, &batch, silent);
    if (*silent) {
      // Let the batch run, then leave this stream for another endpoint.
      due.clear();
    }
    mu_.Unlock();
    write_failed = !SendKeepAlives(rw, due);
    mu_.Lock();
    RunBatch(&batch);  // unlocks mu_
    if (write_failed) continue;
    {
      absl::MutexLock l(&mu_);
      if (stopping_ || reader_done_ || kick_ || !inbox_.empty()) {
        kick_ = false;
        continue;
      }
    }
    // Until the next keepalive is due or a lease's loss deadline, on the
    // monotonic clock (a wall-clock step must not delay either); an answer,
    // a kick or a stop wakes it earlier.
    wake_.WaitUntil(wake);
    absl::MutexLock l(&mu_);
    kick_ = false;
  }
}

bool Lease::SendKeepAlives(KeepAliveStream* rw,
                           const std::vector<int64_t>& due) {
  // Each send time is taken just before its write (answers are only handled
  // on this thread, after the send time is recorded).
  for (int64_t id : due) {
    etcdserverpb::LeaseKeepAliveRequest req;
    req.set_id(id);
    absl::Duration sent_at = clock_->Monotonic();
    if (!rw->Write(req)) return false;
    absl::MutexLock l(&mu_);
    auto it = kept_.find(id);
    if (it != kept_.end()) it->second.pending.push_back(sent_at);
  }
  return true;
}

bool Lease::EndStream(const std::string& endpoint, bool silent,
                      grpc::Status* status) {
  mu_.Lock();
  const bool stopping = stopping_;
  ctx_.reset();
  // Answers read before the stream ended still count.
  std::vector<int64_t> none;
  Batch batch;
  Step(false, endpoint, &none, &batch);
  RunBatch(&batch);  // unlocks mu_
  if (stopping) return false;
  if (silent) {
    *status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                           "keepalive stream silent: answers overdue");
  } else if (status->ok()) {
    *status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                           "keepalive stream closed by etcd");
  }
  return true;
}

}  // namespace mcl::etcd
