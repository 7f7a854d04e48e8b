#include "common/etcd/watch.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/backoff.h"
#include "common/etcd/errors.h"

namespace mcl::etcd {

absl::StatusOr<std::unique_ptr<Watch>> Watch::Start(Client* client,
                                                    WatchOptions options,
                                                    WatchCallbacks callbacks) {
  auto end = ResolveRangeEnd(options.key, options);
  if (!end.ok()) return end.status();
  if (options.start_revision < 0) {
    return absl::InvalidArgumentError(
        "etcd: Watch start_revision must be >= 0");
  }
  std::unique_ptr<Watch> w(
      new Watch(client, std::move(options), std::move(callbacks), *end));
  w->thread_ = std::thread([p = w.get()] { p->Run(); });
  return w;
}

Watch::Watch(Client* client, WatchOptions options, WatchCallbacks callbacks,
             std::string range_end)
    : client_(client),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      range_end_(std::move(range_end)),
      guard_wake_(client->clock()) {
  next_rev_ = options_.start_revision;
  if (options_.start_revision > 0)
    last_delivered_ = options_.start_revision - 1;
}

Watch::~Watch() { Stop(); }

void Watch::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    done_ = true;
    if (ctx_ != nullptr) ctx_->TryCancel();
  }
  guard_wake_.Notify();
  if (thread_.joinable() && std::this_thread::get_id() != thread_.get_id())
    thread_.join();
}

bool Watch::Done() const {
  absl::MutexLock l(&mu_);
  return done_;
}

absl::Status Watch::status() const {
  absl::MutexLock l(&mu_);
  return status_;
}

int64_t Watch::next_revision() const {
  absl::MutexLock l(&mu_);
  return next_rev_;
}

void Watch::Finish(absl::Status why) {
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return;
    done_ = true;
    status_ = why;
  }
  if (callbacks_.on_done) callbacks_.on_done(why);
}

void Watch::Run() {
  pthread_setname_np(pthread_self(), "etcd-watch");
  Backoff backoff(client_->config().reconnect_backoff);
  while (true) {
    bool made_progress = false;
    std::optional<absl::Status> terminal = RunStream(&made_progress);
    if (terminal.has_value()) {
      Finish(*terminal);
      return;
    }
    if (made_progress) backoff.Reset();
    absl::MutexLock l(&mu_);
    if (stopping_) return;
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff.Next());
    if (stopping_) return;
  }
}

bool Watch::Stopping() const {
  absl::MutexLock l(&mu_);
  return stopping_;
}

std::optional<absl::Status> Watch::RunStream(bool* made_progress) {
  auto stream = client_->ConnectStream(
      "Watch.Watch", absl::Now() + client_->config().dial_timeout);
  if (!stream.ok()) {
    if (!Stopping() && callbacks_.on_disconnected)
      callbacks_.on_disconnected(stream.status());
    return std::nullopt;
  }
  const std::string endpoint = stream->connection->address;
  auto ctx = std::make_shared<grpc::ClientContext>();
  Client::PrepareContext(*stream, ctx.get());
  // etcd's rpctypes.MetadataRequireLeaderKey: a member without a leader ends
  // the stream ("no leader") instead of serving a stale view.
  if (options_.require_leader) ctx->AddMetadata("hasleader", "true");
  int64_t start;
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return std::nullopt;
    ctx_ = ctx;
    start = next_rev_;
    last_heard_ = client_->clock()->Monotonic();
    stream_done_ = false;
    silent_ = false;
  }
  auto rw = stream->connection->watch->Watch(ctx.get());
  std::optional<absl::Status> terminal;
  std::thread guard;
  if (rw->Write(CreateRequest(start))) {
    guard = std::thread([&] { GuardSilence(ctx.get(), rw.get()); });
    etcdserverpb::WatchResponse resp;
    while (rw->Read(&resp)) {
      {
        absl::MutexLock l(&mu_);
        last_heard_ = client_->clock()->Monotonic();
      }
      if (Stopping()) break;
      terminal = EndedByEtcd(resp, endpoint, start);
      if (terminal.has_value()) break;
      OnResponse(resp, made_progress);
    }
  }
  if (terminal.has_value() || Stopping()) ctx->TryCancel();
  return EndStream(*stream, rw.get(), &guard, std::move(terminal));
}

etcdserverpb::WatchRequest Watch::CreateRequest(int64_t start) const {
  etcdserverpb::WatchRequest req;
  auto* create = req.mutable_create_request();
  create->set_key(options_.key.empty() ? std::string(1, '\0') : options_.key);
  create->set_range_end(range_end_);
  create->set_start_revision(start);
  create->set_prev_kv(options_.prev_kv);
  create->set_progress_notify(options_.progress_notify);
  if (options_.no_put)
    create->add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
  if (options_.no_delete)
    create->add_filters(etcdserverpb::WatchCreateRequest::NODELETE);
  return req;
}

std::optional<absl::Status> Watch::EndedByEtcd(
    const etcdserverpb::WatchResponse& resp, const std::string& endpoint,
    int64_t start) {
  if (resp.compact_revision() > 0) {
    // etcd cannot replay from `start`: report it, never paper over it.
    if (callbacks_.on_compacted)
      callbacks_.on_compacted(resp.compact_revision());
    return absl::OutOfRangeError(absl::StrCat(
        "etcd Watch.Watch on ", endpoint, ": OUT_OF_RANGE: revision ", start,
        " of '", options_.key, "' is compacted (compact revision ",
        resp.compact_revision(), "); re-read and watch again"));
  }
  if (resp.canceled()) {
    const std::string& reason = resp.cancel_reason();
    absl::StatusCode code = absl::StrContains(reason, "permission denied")
                                ? absl::StatusCode::kPermissionDenied
                                : absl::StatusCode::kFailedPrecondition;
    return absl::Status(
        code, absl::StrCat("etcd Watch.Watch on ", endpoint, ": ",
                           absl::StatusCodeToString(code), ": watch of '",
                           options_.key, "' cancelled by etcd: ",
                           reason.empty() ? "(no reason given)" : reason));
  }
  return std::nullopt;
}

void Watch::OnResponse(const etcdserverpb::WatchResponse& resp,
                       bool* made_progress) {
  const int64_t header_rev = resp.header().revision();
  if (resp.created()) {
    *made_progress = true;
    {
      absl::MutexLock l(&mu_);
      // Watching "from now": only changes after the created revision are
      // ours.
      if (next_rev_ == 0) {
        next_rev_ = header_rev + 1;
        last_delivered_ = header_rev;
      }
    }
    if (callbacks_.on_created) callbacks_.on_created(header_rev);
    return;
  }
  if (resp.watch_id() == -1) {
    // The answer to our progress request. etcd 3.4 sends it on the stream's
    // control path at the store's revision, possibly ahead of events still
    // queued for this watch, so it proves only that the stream is alive: the
    // resume point does not move.
    return;
  }
  if (resp.events_size() == 0) {
    // Progress: every change up to header_rev was sent. Resume from
    // header_rev itself rather than header_rev + 1: the dedup mark drops a
    // repeat, so being conservative costs nothing.
    {
      absl::MutexLock l(&mu_);
      next_rev_ = std::max(next_rev_, header_rev);
    }
    if (callbacks_.on_progress) callbacks_.on_progress(header_rev);
    return;
  }
  DeliverEvents(resp, made_progress);
}

void Watch::DeliverEvents(const etcdserverpb::WatchResponse& resp,
                          bool* made_progress) {
  std::vector<Event> events;
  events.reserve(static_cast<size_t>(resp.events_size()));
  for (const auto& ev : resp.events()) {
    if (ev.kv().mod_revision() <= last_delivered_) continue;  // delivered
    Event e;
    e.type = ev.type() == mvccpb::Event::DELETE ? Event::Type::kDelete
                                                : Event::Type::kPut;
    e.kv = KeyValue::FromProto(ev.kv());
    if (ev.has_prev_kv()) e.prev_kv = KeyValue::FromProto(ev.prev_kv());
    events.push_back(std::move(e));
  }
  if (events.empty()) return;
  *made_progress = true;
  last_delivered_ = events.back().kv.mod_revision;
  {
    absl::MutexLock l(&mu_);
    next_rev_ = last_delivered_ + 1;
  }
  if (callbacks_.on_events)
    callbacks_.on_events(events, resp.header().revision());
}

std::optional<absl::Status> Watch::EndStream(
    const Client::Stream& stream, WatchStream* rw, std::thread* guard,
    std::optional<absl::Status> terminal) {
  bool silent;
  {
    absl::MutexLock l(&mu_);
    stream_done_ = true;
  }
  guard_wake_.Notify();
  if (guard->joinable()) guard->join();  // before Finish: no Write after it
  grpc::Status status = rw->Finish();
  {
    absl::MutexLock l(&mu_);
    ctx_.reset();
    silent = silent_;
  }
  if (terminal.has_value()) return terminal;
  if (Stopping()) return std::nullopt;
  if (silent) {
    // Counts as an unreachable endpoint: the next stream goes elsewhere.
    status = grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        absl::StrCat("watch stream silent for ",
                     absl::FormatDuration(options_.silence_timeout),
                     " (no event, progress or answer to a progress request)"));
  } else if (status.ok()) {
    status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "watch stream closed by etcd");
  }
  client_->OnStreamError(stream, status);
  if (callbacks_.on_disconnected)
    callbacks_.on_disconnected(
        FromGrpc(status, "Watch.Watch", stream.connection->address));
  return std::nullopt;
}

void Watch::GuardSilence(grpc::ClientContext* ctx, WatchStream* rw) {
  Clock* clock = client_->clock();
  const absl::Duration bound =
      std::max(options_.silence_timeout, absl::Milliseconds(300));
  const absl::Duration every = bound / 3;
  absl::Duration next_ask = clock->Monotonic() + every;
  while (true) {
    const absl::Duration now = clock->Monotonic();
    absl::Duration wake;
    {
      absl::MutexLock l(&mu_);
      if (stream_done_ || stopping_) return;
      if (now - last_heard_ >= bound) {
        silent_ = true;
        ctx->TryCancel();  // the reader returns; the stream is re-established
        return;
      }
      wake = std::min(next_ask, last_heard_ + bound);
    }
    if (now >= next_ask) {
      etcdserverpb::WatchRequest ask;
      ask.mutable_progress_request();
      if (!rw->Write(ask)) return;  // the stream is ending
      next_ask = now + every;
      continue;
    }
    // On the monotonic clock: a wall-clock step must not hide a silence.
    guard_wake_.WaitUntil(wake);
  }
}

}  // namespace mcl::etcd
