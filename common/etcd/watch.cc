#include "common/etcd/watch.h"

#include <pthread.h>

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
      range_end_(std::move(range_end)) {
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

std::optional<absl::Status> Watch::RunStream(bool* made_progress) {
  auto stopping = [this] {
    absl::MutexLock l(&mu_);
    return stopping_;
  };
  auto stream = client_->ConnectStream(
      "Watch.Watch", absl::Now() + client_->config().dial_timeout);
  if (!stream.ok()) {
    if (!stopping() && callbacks_.on_disconnected)
      callbacks_.on_disconnected(stream.status());
    return std::nullopt;
  }
  const std::string endpoint = stream->connection->address;
  auto ctx = std::make_shared<grpc::ClientContext>();
  Client::PrepareContext(*stream, ctx.get());
  int64_t start;
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return std::nullopt;
    ctx_ = ctx;
    start = next_rev_;
  }
  auto rw = stream->connection->watch->Watch(ctx.get());

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

  std::optional<absl::Status> terminal;
  if (rw->Write(req)) {
    etcdserverpb::WatchResponse resp;
    while (rw->Read(&resp)) {
      if (stopping()) break;
      const int64_t header_rev = resp.header().revision();
      if (resp.compact_revision() > 0) {
        // etcd cannot replay from `start`: report it, never paper over it.
        if (callbacks_.on_compacted)
          callbacks_.on_compacted(resp.compact_revision());
        terminal = absl::OutOfRangeError(absl::StrCat(
            "etcd Watch.Watch on ", endpoint, ": OUT_OF_RANGE: revision ",
            start, " of '", options_.key, "' is compacted (compact revision ",
            resp.compact_revision(), "); re-read and watch again"));
        break;
      }
      if (resp.canceled()) {
        const std::string& reason = resp.cancel_reason();
        absl::StatusCode code = absl::StrContains(reason, "permission denied")
                                    ? absl::StatusCode::kPermissionDenied
                                    : absl::StatusCode::kFailedPrecondition;
        terminal = absl::Status(
            code, absl::StrCat("etcd Watch.Watch on ", endpoint, ": ",
                               absl::StatusCodeToString(code), ": watch of '",
                               options_.key, "' cancelled by etcd: ",
                               reason.empty() ? "(no reason given)" : reason));
        break;
      }
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
        continue;
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
        continue;
      }
      std::vector<Event> events;
      events.reserve(static_cast<size_t>(resp.events_size()));
      for (const auto& ev : resp.events()) {
        if (ev.kv().mod_revision() <= last_delivered_)
          continue;  // already delivered
        Event e;
        e.type = ev.type() == mvccpb::Event::DELETE ? Event::Type::kDelete
                                                    : Event::Type::kPut;
        e.kv = KeyValue::FromProto(ev.kv());
        if (ev.has_prev_kv()) e.prev_kv = KeyValue::FromProto(ev.prev_kv());
        events.push_back(std::move(e));
      }
      if (events.empty()) continue;
      *made_progress = true;
      last_delivered_ = events.back().kv.mod_revision;
      {
        absl::MutexLock l(&mu_);
        next_rev_ = last_delivered_ + 1;
      }
      if (callbacks_.on_events) callbacks_.on_events(events, header_rev);
    }
  }
  if (terminal.has_value() || stopping()) ctx->TryCancel();
  grpc::Status status = rw->Finish();
  {
    absl::MutexLock l(&mu_);
    ctx_.reset();
  }
  if (terminal.has_value()) return terminal;
  if (stopping()) return std::nullopt;
  if (status.ok())
    status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "watch stream closed by etcd");
  client_->OnStreamError(*stream, status);
  if (callbacks_.on_disconnected)
    callbacks_.on_disconnected(FromGrpc(status, "Watch.Watch", endpoint));
  return std::nullopt;
}

}  // namespace mcl::etcd
