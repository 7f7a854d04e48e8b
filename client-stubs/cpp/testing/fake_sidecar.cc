#include "client-stubs/cpp/testing/fake_sidecar.h"

#include "testbed/cc/free_port.h"

namespace mcl::client::testing {

// --- FakeStream
// ------------------------------------------------------------------

FakeStream::FakeStream(Clock* clock, std::string kind,
                       mcl::v1::CampaignRequest request)
    : clock_(clock), kind_(std::move(kind)), request_(std::move(request)) {}

void FakeStream::Send(const mcl::v1::LeadershipEvent& event) {
  {
    absl::MutexLock l(&mu_);
    if (end_.has_value() || done_) return;
    queue_.push_back(event);
    last_state_ = event.state();
  }
  Pump();
}

void FakeStream::End(const grpc::Status& status) {
  {
    absl::MutexLock l(&mu_);
    if (end_.has_value()) return;
    end_ = status;
  }
  Pump();
}

// gRPC may run a reaction inline, so StartWrite / Finish are called without
// holding mu_; writing_ / finishing_ keep one operation in flight.
void FakeStream::Pump() {
  enum { kNothing, kWrite, kFinish } what = kNothing;
  grpc::Status finish;
  {
    absl::MutexLock l(&mu_);
    if (writing_ || finishing_ || done_) return;
    if (!queue_.empty()) {
      current_ = queue_.front();
      queue_.pop_front();
      writing_ = true;
      what = kWrite;
    } else if (end_.has_value()) {
      finishing_ = true;
      finish = *end_;
      what = kFinish;
    }
  }
  if (what == kWrite) StartWrite(&current_);
  if (what == kFinish) Finish(finish);
}

void FakeStream::OnWriteDone(bool ok) {
  {
    absl::MutexLock l(&mu_);
    writing_ = false;
    if (!ok) {
      // The client is gone; nothing more can be written.
      queue_.clear();
      if (!end_.has_value()) end_ = grpc::Status::CANCELLED;
    }
  }
  Pump();
}

void FakeStream::OnCancel() {
  {
    absl::MutexLock l(&mu_);
    if (!cancelled_at_.has_value()) cancelled_at_ = clock_->Monotonic();
    queue_.clear();
    if (!end_.has_value()) end_ = grpc::Status::CANCELLED;
  }
  Pump();
}

void FakeStream::OnDone() {
  absl::MutexLock l(&mu_);
  done_ = true;
}

bool FakeStream::WaitCancelled(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto cond = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return cancelled_at_.has_value() || done_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&cond), timeout);
  return cancelled_at_.has_value();
}

std::optional<absl::Duration> FakeStream::cancelled_at() {
  absl::MutexLock l(&mu_);
  return cancelled_at_;
}

bool FakeStream::WaitFlushed(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto cond = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return (queue_.empty() && !writing_) || done_;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&cond), timeout) &&
         queue_.empty() && !writing_;
}

bool FakeStream::over() {
  absl::MutexLock l(&mu_);
  return done_ || finishing_;
}

mcl::v1::State FakeStream::last_state() {
  absl::MutexLock l(&mu_);
  return last_state_;
}

// --- FakeSidecar
// ---------------------------------------------------------------

absl::StatusOr<std::unique_ptr<FakeSidecar>> FakeSidecar::Start(Clock* clock) {
  absl::StatusOr<int> port = testbed::FreeLoopbackPort();
  if (!port.ok()) return port.status();
  std::unique_ptr<FakeSidecar> s(new FakeSidecar(clock));
  s->port_ = *port;
  if (absl::Status st = s->Serve(); !st.ok()) return st;
  return s;
}

absl::Status FakeSidecar::Serve() {
  grpc::ServerBuilder b;
  b.AddListeningPort(address(), grpc::InsecureServerCredentials());
  b.RegisterService(this);
  server_ = b.BuildAndStart();
  if (server_ == nullptr) {
    return absl::UnavailableError("the fake sidecar cannot serve on " +
                                  address());
  }
  return absl::OkStatus();
}

FakeSidecar::~FakeSidecar() {
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }
}

void FakeSidecar::Kill() {
  if (server_ == nullptr) return;
  // An immediate deadline cancels every open RPC and closes the connections.
  server_->Shutdown(std::chrono::system_clock::now());
  server_->Wait();
  dead_servers_.push_back(std::move(server_));
}

absl::Status FakeSidecar::Restart() {
  if (server_ != nullptr) return absl::FailedPreconditionError("still serving");
  return Serve();
}

FakeStream* FakeSidecar::AddStream(const std::string& kind,
                                   const mcl::v1::CampaignRequest& request) {
  absl::MutexLock l(&mu_);
  streams_.push_back(std::make_unique<FakeStream>(clock_, kind, request));
  return streams_.back().get();
}

FakeStream* FakeSidecar::WaitForStream(const std::string& kind, int n,
                                       absl::Duration timeout) {
  FakeStream* found = nullptr;
  auto cond = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int k = 0;
    for (auto& s : streams_) {
      if (s->kind() == kind && k++ == n) {
        found = s.get();
        return true;
      }
    }
    return false;
  };
  absl::MutexLock l(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&cond), timeout);
  return found;
}

int FakeSidecar::streams(const std::string& kind) {
  absl::MutexLock l(&mu_);
  int k = 0;
  for (auto& s : streams_) k += s->kind() == kind;
  return k;
}

void FakeSidecar::SetLeader(std::optional<mcl::v1::Leader> leader) {
  absl::MutexLock l(&mu_);
  leader_ = std::move(leader);
}

std::vector<mcl::v1::ResignRequest> FakeSidecar::resigns() {
  absl::MutexLock l(&mu_);
  return resigns_;
}

mcl::v1::LeadershipEvent FakeSidecar::LeaderEvent(int64_t token,
                                                  absl::Duration valid_for,
                                                  const std::string& identity) {
  mcl::v1::LeadershipEvent e = Event(mcl::v1::LEADER, identity, token);
  const absl::Duration now = clock_->Monotonic();
  mcl::v1::Validity* v = e.mutable_validity();
  v->set_sent_monotonic_ns(absl::ToInt64Nanoseconds(now));
  v->set_valid_until_monotonic_ns(absl::ToInt64Nanoseconds(now + valid_for));
  v->mutable_remaining()->set_seconds(
      absl::ToInt64Seconds(valid_for));  // display only
  return e;
}

mcl::v1::LeadershipEvent FakeSidecar::Event(mcl::v1::State state,
                                            const std::string& identity,
                                            int64_t token,
                                            const std::string& reason) {
  mcl::v1::LeadershipEvent e;
  e.mutable_lock()->set_namespace_("default");
  e.mutable_lock()->set_name("lock");
  e.set_state(state);
  if (!identity.empty() || token != 0) {
    e.mutable_leader()->set_identity(identity);
    e.mutable_leader()->set_cluster("cluster-0");
    e.mutable_leader()->set_fencing_token(token);
  }
  e.set_reason(reason);
  return e;
}

grpc::ServerWriteReactor<mcl::v1::LeadershipEvent>* FakeSidecar::Campaign(
    grpc::CallbackServerContext*, const mcl::v1::CampaignRequest* request) {
  return AddStream("Campaign", *request);
}

grpc::ServerWriteReactor<mcl::v1::LeadershipEvent>* FakeSidecar::Observe(
    grpc::CallbackServerContext*, const mcl::v1::ObserveRequest* request) {
  mcl::v1::CampaignRequest r;
  *r.mutable_lock() = request->lock();
  return AddStream("Observe", r);
}

grpc::ServerUnaryReactor* FakeSidecar::Resign(
    grpc::CallbackServerContext* ctx, const mcl::v1::ResignRequest* request,
    mcl::v1::ResignResponse* response) {
  std::vector<FakeStream*> matching;
  {
    absl::MutexLock l(&mu_);
    resigns_.push_back(*request);
    for (auto& s : streams_) {
      if (s->kind() == "Campaign" && !s->over() &&
          s->request().lock().name() == request->lock().name() &&
          (request->identity().empty() ||
           s->request().identity() == request->identity())) {
        matching.push_back(s.get());
      }
    }
  }
  bool was_leader = false;
  for (FakeStream* s : matching) {
    if (s->last_state() == mcl::v1::LEADER) {
      was_leader = true;
      s->Send(Event(mcl::v1::LOST, "", 0, "resigned"));
    }
    s->End(grpc::Status::OK);
  }
  response->set_was_leader(was_leader);
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(matching.empty()
                ? grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                               "no Campaign for lock " +
                                   request->lock().name() + " is active here")
                : grpc::Status::OK);
  return r;
}

grpc::ServerUnaryReactor* FakeSidecar::Leader(
    grpc::CallbackServerContext* ctx, const mcl::v1::LeaderRequest* request,
    mcl::v1::LeaderResponse* response) {
  grpc::Status status = grpc::Status::OK;
  {
    absl::MutexLock l(&mu_);
    if (leader_.has_value()) {
      *response->mutable_leader() = *leader_;
    } else {
      status =
          grpc::Status(grpc::StatusCode::NOT_FOUND,
                       "no candidate leads lock " + request->lock().name());
    }
  }
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(status);
  return r;
}

}  // namespace mcl::client::testing
