#include "client-stubs/cpp/leadership.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client-stubs/cpp/leader_state.h"
#include "client-stubs/cpp/sidecar_channel.h"
#include "common/stop_flag.h"
#include "mcl/v1/election.grpc.pb.h"

namespace mcl::client {
namespace {

// Stream endings after which campaigning again cannot help.
// Why a Campaign stream ended, for on_disconnect and cancellation reasons. An
// OK end has no message of its own; say what it means.
absl::Status StreamEnd(const grpc::Status& status, const std::string& lock) {
  if (!status.ok()) return FromGrpc(status);
  return absl::CancelledError(
      absl::StrCat("the sidecar ended the campaign for lock ", lock,
                   " (resigned through the Resign RPC); campaigning again"));
}

bool Permanent(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::UNIMPLEMENTED:
      return true;
    default:
      return false;
  }
}

std::string EventReason(const mcl::v1::LeadershipEvent& e) {
  std::string s = mcl::v1::State_Name(e.state());
  if (s.empty()) s = absl::StrCat("state ", static_cast<int>(e.state()));
  if (!e.reason().empty()) absl::StrAppend(&s, ": ", e.reason());
  return s;
}

}  // namespace

class TermContext;

class Leadership::Impl {
 public:
  Impl(LeadershipOptions o, LeaderFn fn, std::string address);
  void Start();
  void Stop();
  void Join();
  bool IsLeaderNow();
  std::optional<Grant> Current();
  bool IsLive(uint64_t term_id);
  StopFlag& done() { return done_; }
  absl::Status result() {
    absl::MutexLock l(&mu_);
    return end_.value_or(absl::OkStatus());
  }
  Clock* clock() const { return options_.clock; }

 private:
  void StreamLoop();
  // One Campaign stream, from the call to its end. Returns its final status and
  // whether any event arrived.
  grpc::Status OneStream(bool* got_event);
  void Supervise();
  void EndLocked(absl::Status s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!end_.has_value()) end_ = std::move(s);
  }
  bool OverLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_requested_ || end_.has_value();
  }
  std::string CancelReasonLocked(const TermContext& term, absl::Duration now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const LeadershipOptions options_;
  const LeaderFn fn_;
  const std::string lock_;  // "namespace/name" (namespace may be empty)
  const std::string address_;
  mcl::v1::CampaignRequest request_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<mcl::v1::Election::Stub> stub_;

  absl::Mutex mu_;
  LeaderState state_ ABSL_GUARDED_BY(mu_);
  // Why the latest term ended, by event or stream end (for cancel_reason()).
  std::string ended_by_ ABSL_GUARDED_BY(mu_);
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> end_ ABSL_GUARDED_BY(mu_);
  // Set by the supervisor once fn has returned for good: the stream may end.
  bool close_stream_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* stream_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::shared_ptr<TermContext> running_ ABSL_GUARDED_BY(mu_);
  // Set by the worker when fn returned: its status, and whether its term was
  // still live then (fn finished by itself: the campaign ends).
  bool worker_exited_ ABSL_GUARDED_BY(mu_) = false;
  bool returned_live_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status fn_status_ ABSL_GUARDED_BY(mu_);

  Wakeup supervisor_wake_;  // state changed, fn returned, Stop()
  StopFlag close_flag_;     // wakes the stream thread's backoff wait
  StopFlag done_;           // the campaign is over (end_ is final)
  std::thread stream_thread_, supervisor_thread_, worker_;
};

// The context of one term. Its cancellation is a StopFlag (waits on the
// monotonic clock) plus callbacks run by whoever cancels.
class TermContext : public LeaderContext {
 public:
  TermContext(Leadership::Impl* impl, const Term& t, std::string lock)
      : impl_(impl),
        id_(t.id),
        grant_(t.grant),
        lock_(std::move(lock)),
        bound_ns_(absl::ToInt64Nanoseconds(t.valid_until)),
        cancelled_(impl->clock()) {}

  int64_t fencing_token() const override { return grant_.fencing_token(); }
  const mcl::v1::Leader& grant() const override { return grant_; }
  const std::string& lock() const override { return lock_; }
  absl::Duration valid_until() const override {
    return absl::Nanoseconds(bound_ns_.load());
  }
  bool IsLeaderNow() const override {
    return !cancelled_now_ && impl_->IsLive(id_);
  }
  bool cancelled() const override { return cancelled_now_; }
  bool WaitForCancel(absl::Duration timeout) const override {
    return cancelled_.WaitFor(timeout);
  }
  void OnCancel(std::function<void()> callback) const override {
    {
      absl::MutexLock l(&mu_);
      if (!fired_) {
        callbacks_.push_back(std::move(callback));
        return;
      }
    }
    callback();
  }
  std::string cancel_reason() const override {
    absl::MutexLock l(&mu_);
    return reason_;
  }

  uint64_t id() const { return id_; }
  void SetBound(absl::Duration until) {
    bound_ns_.store(absl::ToInt64Nanoseconds(until));
  }
  // Once, on the calling thread: cancelled() turns true, the callbacks run
  // (they may look at cancelled()), then WaitForCancel's waiters wake (and
  // find every callback run).
  void Cancel(const std::string& reason) {
    std::vector<std::function<void()>> run;
    {
      absl::MutexLock l(&mu_);
      if (fired_) return;
      fired_ = true;
      reason_ = reason;
      run.swap(callbacks_);
    }
    cancelled_now_ = true;
    for (auto& cb : run) cb();
    cancelled_.Set();
  }

 private:
  Leadership::Impl* const impl_;  // outlives every context (see Join)
  const uint64_t id_;
  const mcl::v1::Leader grant_;
  const std::string lock_;
  std::atomic<int64_t> bound_ns_;
  std::atomic<bool> cancelled_now_{false};
  StopFlag cancelled_;  // set after the callbacks ran
  mutable absl::Mutex mu_;
  mutable std::vector<std::function<void()>> callbacks_ ABSL_GUARDED_BY(mu_);
  bool fired_ ABSL_GUARDED_BY(mu_) = false;
  std::string reason_ ABSL_GUARDED_BY(mu_);
};

Leadership::Impl::Impl(LeadershipOptions o, LeaderFn fn, std::string address)
    : options_(std::move(o)),
      fn_(std::move(fn)),
      lock_(options_.lock_namespace.empty()
                ? options_.lock
                : absl::StrCat(options_.lock_namespace, "/", options_.lock)),
      address_(std::move(address)),
      supervisor_wake_(options_.clock),
      close_flag_(options_.clock),
      done_(options_.clock) {
  request_.mutable_lock()->set_name(options_.lock);
  request_.mutable_lock()->set_namespace_(options_.lock_namespace);
  request_.set_identity(options_.identity);
  request_.set_lease_duration_seconds(options_.lease_duration_seconds);
  channel_ = NewSidecarChannel(address_, options_.reconnect.max);
  stub_ = mcl::v1::Election::NewStub(channel_);
}

void Leadership::Impl::Start() {
  stream_thread_ = std::thread([this] { StreamLoop(); });
  supervisor_thread_ = std::thread([this] { Supervise(); });
}

void Leadership::Impl::Stop() {
  absl::MutexLock l(&mu_);
  stop_requested_ = true;
  supervisor_wake_.Notify();
}

void Leadership::Impl::Join() {
  if (supervisor_thread_.joinable()) supervisor_thread_.join();
}

bool Leadership::Impl::IsLive(uint64_t term_id) {
  absl::MutexLock l(&mu_);
  return !OverLocked() && state_.IsLive(term_id, options_.clock->Monotonic());
}

bool Leadership::Impl::IsLeaderNow() { return Current().has_value(); }

std::optional<Leadership::Grant> Leadership::Impl::Current() {
  absl::MutexLock l(&mu_);
  if (OverLocked()) return std::nullopt;
  std::optional<mcl::client::Term> t =
      state_.LiveTerm(options_.clock->Monotonic());
  if (!t) return std::nullopt;
  return Grant{t->grant, t->valid_until};
}

grpc::Status Leadership::Impl::OneStream(bool* got_event) {
  grpc::ClientContext ctx;
  {
    absl::MutexLock l(&mu_);
    if (close_stream_) return grpc::Status::CANCELLED;
    stream_ctx_ = &ctx;
  }
  std::unique_ptr<grpc::ClientReader<mcl::v1::LeadershipEvent>> reader =
      stub_->Campaign(&ctx, request_);
  mcl::v1::LeadershipEvent ev;
  while (reader->Read(&ev)) {
    *got_event = true;
    bool applied = false;
    {
      absl::MutexLock l(&mu_);
      // Read the clock after the event arrived: the clock check and the bound
      // compare against the moment of receipt or later, never earlier.
      const absl::Duration now = options_.clock->Monotonic();
      absl::Status s = state_.OnEvent(ev, now);
      applied = s.ok();
      if (!s.ok()) {
        EndLocked(s);
        ended_by_ = std::string(s.message());
      } else if (std::optional<mcl::client::Term> t = state_.LiveTerm(now)) {
        if (running_ != nullptr && running_->id() == t->id) {
          running_->SetBound(t->valid_until);
        }
      } else {
        ended_by_ = EventReason(ev);
      }
      supervisor_wake_.Notify();
    }
    if (applied && options_.on_event) options_.on_event(ev);
  }
  grpc::Status status = reader->Finish();
  absl::MutexLock l(&mu_);
  stream_ctx_ = nullptr;
  state_.OnStreamEnd();
  ended_by_ = absl::StrCat("the Campaign stream ended: ",
                           StreamEnd(status, lock_).ToString());
  supervisor_wake_.Notify();
  return status;
}

void Leadership::Impl::StreamLoop() {
  Backoff backoff(options_.reconnect);
  const absl::Duration started = options_.clock->Monotonic();
  bool ever = false;
  for (;;) {
    bool over = false;
    {
      absl::MutexLock l(&mu_);
      if (close_stream_) return;
      over = OverLocked();
    }
    if (over) {
      // No stream is open and none may start: wait for the supervisor.
      close_flag_.WaitFor(absl::InfiniteDuration());
      continue;
    }
    bool got = false;
    grpc::Status status = OneStream(&got);
    ever = ever || got;
    absl::Duration delay;
    {
      absl::MutexLock l(&mu_);
      if (OverLocked() || close_stream_) continue;
      // An OK end (a Resign RPC, e.g. `mcl resign`) is not permanent: like
      // every client library, campaign again; the app leads again only on a
      // fresh LEADER of the new stream.
      // ALREADY_EXISTS on the first stream is another live candidacy of this
      // identity: misuse. After a stream that worked it may be our own
      // previous candidacy, which the sidecar (restarted, or not yet aware
      // the old stream ended) still counts as live: retry, as the other
      // libraries do.
      const bool own_previous =
          ever && status.error_code() == grpc::StatusCode::ALREADY_EXISTS;
      if (Permanent(status.error_code()) && !own_previous) {
        EndLocked(FromGrpc(status));
      } else if (!ever && options_.clock->Monotonic() - started >=
                              options_.connect_timeout) {
        EndLocked(absl::UnavailableError(absl::StrCat(
            "no answer from the mcl sidecar at ", address_, " within ",
            absl::FormatDuration(options_.connect_timeout), " (",
            FromGrpc(status).ToString(),
            "); is it running? Set MCL_SIDECAR_ADDR to its address")));
      }
      if (OverLocked()) {
        supervisor_wake_.Notify();
        continue;
      }
      if (got) backoff.Reset();
      delay = backoff.Next();
      if (options_.connect_timeout != absl::InfiniteDuration() && !ever) {
        delay = std::min(delay, started + options_.connect_timeout -
                                    options_.clock->Monotonic());
      }
    }
    if (options_.on_disconnect) {
      options_.on_disconnect(StreamEnd(status, lock_), delay);
    }
    close_flag_.WaitFor(delay);
  }
}

std::string Leadership::Impl::CancelReasonLocked(const TermContext& term,
                                                 absl::Duration now) {
  if (stop_requested_) return "stopped";
  if (end_.has_value()) return end_->ToString();
  std::optional<mcl::client::Term> live = state_.LiveTerm(now);
  if (state_.Holds(term.id()) ||
      (live && live->grant.fencing_token() == term.fencing_token())) {
    return "validity bound passed";
  }
  if (live) {
    return absl::StrCat("a new grant (fencing token ",
                        live->grant.fencing_token(), ")");
  }
  return ended_by_;
}

void Leadership::Impl::Supervise() {
  for (;;) {
    std::shared_ptr<TermContext> cancel, start;
    std::string reason;
    bool join = false, finish = false;
    absl::Duration wake_at = absl::InfiniteDuration();
    {
      absl::MutexLock l(&mu_);
      const absl::Duration now = options_.clock->Monotonic();
      if (running_ != nullptr && worker_exited_) {
        join = true;
        if (returned_live_) {
          // fn finished by itself while leading: the work is done.
          EndLocked(fn_status_);
        }
      }
      std::optional<mcl::client::Term> live;
      if (!OverLocked()) live = state_.LiveTerm(now);
      // A context is cancelled while fn may still run; after fn returned it
      // is no longer valid (its callbacks would act on things fn released).
      if (!join && running_ != nullptr && !running_->cancelled() &&
          !(live && live->id == running_->id())) {
        cancel = running_;
        reason = CancelReasonLocked(*running_, now);
      }
      if (!join && running_ == nullptr) {
        if (live) {
          running_ = std::make_shared<TermContext>(this, *live, lock_);
          worker_exited_ = false;
          start = running_;
        } else if (OverLocked()) {
          close_stream_ = true;
          if (stream_ctx_ != nullptr) stream_ctx_->TryCancel();
          finish = true;
        }
      }
      if (live) wake_at = live->valid_until;
    }
    if (cancel != nullptr) cancel->Cancel(reason);
    if (join) {
      worker_.join();
      absl::MutexLock l(&mu_);
      running_ = nullptr;
      worker_exited_ = false;
      continue;
    }
    if (start != nullptr) {
      worker_ = std::thread([this, start] {
        absl::Status s = fn_(*start);
        absl::MutexLock l(&mu_);
        worker_exited_ = true;
        returned_live_ =
            !start->cancelled() && !OverLocked() &&
            state_.IsLive(start->id(), options_.clock->Monotonic());
        fn_status_ = std::move(s);
        supervisor_wake_.Notify();
      });
      continue;
    }
    if (finish) {
      close_flag_.Set();
      stream_thread_.join();
      done_.Set();
      return;
    }
    supervisor_wake_.WaitUntil(wake_at);
  }
}

// --- Leadership
// ---------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Leadership>> Leadership::Start(
    LeadershipOptions options, LeaderFn fn) {
  if (absl::Status s = ValidateLockName(options.lock); !s.ok()) return s;
  if (absl::Status s = ValidateNamespace(options.lock_namespace); !s.ok()) {
    return s;
  }
  if (options.lease_duration_seconds != 0 &&
      (options.lease_duration_seconds < 2 ||
       options.lease_duration_seconds > 3600)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "lease_duration_seconds is ", options.lease_duration_seconds,
        "; use 0 (the sidecar's default) or 2..3600"));
  }
  if (!fn)
    return absl::InvalidArgumentError("fn is empty; pass the leader work");
  if (options.clock == nullptr) options.clock = Clock::Real();
  absl::StatusOr<std::string> address = SidecarAddress(options.sidecar_address);
  if (!address.ok()) return address.status();
  auto impl = std::make_shared<Impl>(std::move(options), std::move(fn),
                                     *std::move(address));
  impl->Start();
  return std::unique_ptr<Leadership>(new Leadership(std::move(impl)));
}

Leadership::Leadership(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Leadership::~Leadership() {
  Stop();
  impl_->Join();
}

void Leadership::Stop() { impl_->Stop(); }

absl::Status Leadership::Wait() {
  impl_->done().WaitFor(absl::InfiniteDuration());
  return impl_->result();
}

std::optional<absl::Status> Leadership::WaitFor(absl::Duration timeout) {
  if (!impl_->done().WaitFor(timeout)) return std::nullopt;
  return impl_->result();
}

bool Leadership::IsLeaderNow() const { return impl_->IsLeaderNow(); }

std::optional<Leadership::Grant> Leadership::Current() const {
  return impl_->Current();
}

absl::Status RunWhileLeader(LeadershipOptions options, LeaderFn fn) {
  absl::StatusOr<std::unique_ptr<Leadership>> l =
      Leadership::Start(std::move(options), std::move(fn));
  if (!l.ok()) return l.status();
  return (*l)->Wait();
}

}  // namespace mcl::client
