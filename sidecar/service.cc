#include "sidecar/service.h"

#include <deque>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/validate.h"

namespace mcl::sidecar {
namespace {

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) {
  int64_t secs = absl::ToUnixSeconds(t);
  ts->set_seconds(secs);
  ts->set_nanos(static_cast<int32_t>((t - absl::FromUnixSeconds(secs)) /
                                     absl::Nanoseconds(1)));
}

mcl::v1::State ToProtoState(LeaderState s) {
  switch (s) {
    case LeaderState::kNoLeader:
      return mcl::v1::NO_LEADER;
    case LeaderState::kFollower:
      return mcl::v1::FOLLOWER;
    case LeaderState::kLeader:
      return mcl::v1::LEADER;
    case LeaderState::kLost:
      return mcl::v1::LOST;
  }
  return mcl::v1::STATE_UNSPECIFIED;
}

void FillLeader(const Grant& g, mcl::v1::Leader* l) {
  l->set_identity(g.leader);
  l->set_cluster(g.cluster);
  l->set_fencing_token(g.token);
  if (g.acquire_time != absl::InfinitePast())
    SetTimestamp(g.acquire_time, l->mutable_acquire_time());
}

absl::Status ValidateLock(const mcl::v1::LockRef& lock) {
  absl::Status s = ValidateLockName(lock.name(), "lock.name");
  if (!s.ok()) return s;
  if (!lock.namespace_().empty())
    return ValidateNamespace(lock.namespace_(), "lock.namespace");
  return absl::OkStatus();
}

// One server stream. Owned by a shared_ptr: the Election holds it as its
// EventSink and gRPC may finish the call (OnDone) at any time, so the object
// outlives whichever lets go last. gRPC calls (StartWrite, Finish) are never
// made with mu_ held: their reactions may run inline.
class EventStream : public grpc::ServerWriteReactor<mcl::v1::LeadershipEvent>,
                    public EventSink,
                    public std::enable_shared_from_this<EventStream> {
 public:
  enum class Kind { kCampaign, kObserve };
  static std::shared_ptr<EventStream> Create(Election* election, Kind kind) {
    std::shared_ptr<EventStream> s(new EventStream(election, kind));
    s->self_ = s;
    return s;
  }

  // The Election's id for this stream, once registered.
  void Registered(uint64_t id) {
    bool cancelled;
    {
      absl::MutexLock l(&mu_);
      id_ = id;
      cancelled = cancelled_;
    }
    if (cancelled) End("the Campaign stream was cancelled");
  }

  void Send(const StreamEvent& e) override {
    const mcl::v1::LeadershipEvent* msg;
    {
      absl::MutexLock l(&mu_);
      if (finish_requested_) return;
      queue_.push_back(ToProto(e));
      if (writing_) return;
      writing_ = true;
      msg = &queue_.front();  // stays valid until OnWriteDone pops it (deque
                              // references are stable)
    }
    StartWrite(msg);
  }

  void Finish(const absl::Status& s) override {
    {
      absl::MutexLock l(&mu_);
      if (finish_requested_) return;
      finish_requested_ = true;
      finish_status_ = ToGrpc(s);
      if (writing_) return;  // OnWriteDone finishes after the queued events
      finish_called_ = true;
    }
    grpc::ServerWriteReactor<mcl::v1::LeadershipEvent>::Finish(finish_status_);
  }

  void OnWriteDone(bool ok) override {
    bool finish = false;
    const mcl::v1::LeadershipEvent* next = nullptr;
    {
      absl::MutexLock l(&mu_);
      queue_.pop_front();
      if (!ok) {
        // The client is gone; the call ends (OnCancel/OnDone follow).
        queue_.clear();
        if (!finish_requested_) {
          finish_requested_ = true;
          finish_status_ =
              grpc::Status(grpc::StatusCode::CANCELLED, "stream write failed");
        }
      }
      if (!queue_.empty()) {
        next = &queue_.front();
      } else {
        writing_ = false;
        if (finish_requested_ && !finish_called_) {
          finish_called_ = true;
          finish = true;
        }
      }
    }
    if (next != nullptr) {
      StartWrite(next);
    } else if (finish) {
      grpc::ServerWriteReactor<mcl::v1::LeadershipEvent>::Finish(
          finish_status_);
    }
  }

  void OnCancel() override {
    {
      absl::MutexLock l(&mu_);
      cancelled_ = true;
    }
    End(kind_ == Kind::kCampaign ? "the Campaign stream was cancelled" : "");
    Finish(absl::CancelledError("cancelled by the client"));
  }

  void OnDone() override {
    End(kind_ == Kind::kCampaign ? "the Campaign stream ended" : "");
    std::shared_ptr<EventStream> keep;
    absl::MutexLock l(&mu_);
    keep.swap(self_);  // released when this scope ends, after the lock
  }

 private:
  EventStream(Election* election, Kind kind)
      : election_(election), kind_(kind) {}

  // Tells the Election once that this stream is over (a campaign resigns).
  void End(const std::string& reason) {
    uint64_t id;
    {
      absl::MutexLock l(&mu_);
      if (ended_ || id_ == 0) return;
      ended_ = true;
      id = id_;
    }
    if (kind_ == Kind::kCampaign) {
      election_->EndCampaign(id, reason);
    } else {
      election_->EndObserve(id);
    }
  }

  Election* election_;
  Kind kind_;
  std::shared_ptr<EventStream> self_;  // keeps the reactor alive until OnDone
  absl::Mutex mu_;
  std::deque<mcl::v1::LeadershipEvent>
      queue_;  // front is being written while writing_
  bool writing_ = false;
  bool finish_requested_ = false;
  bool finish_called_ = false;
  bool cancelled_ = false;
  bool ended_ = false;
  uint64_t id_ = 0;
  grpc::Status finish_status_;
};

}  // namespace

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

mcl::v1::LeadershipEvent ToProto(const StreamEvent& e) {
  mcl::v1::LeadershipEvent out;
  out.mutable_lock()->set_namespace_(e.lock.ns);
  out.mutable_lock()->set_name(e.lock.name);
  out.set_state(ToProtoState(e.event.state));
  if (!e.event.grant.empty()) FillLeader(e.event.grant, out.mutable_leader());
  SetTimestamp(e.time, out.mutable_time());
  out.set_reason(e.event.reason);
  return out;
}

grpc::ServerWriteReactor<mcl::v1::LeadershipEvent>* ElectionService::Campaign(
    grpc::CallbackServerContext* ctx, const mcl::v1::CampaignRequest* req) {
  auto stream = EventStream::Create(election_, EventStream::Kind::kCampaign);
  absl::Status s = ValidateLock(req->lock());
  std::string identity = election_->Identity(req->identity());
  if (s.ok()) {
    s = ValidateIdentity(
        identity,
        req->identity().empty()
            ? "the default identity ($POD_NAME_$POD_UID or --identity)"
            : "identity");
  }
  if (s.ok() && identity.empty()) {
    s = absl::InvalidArgumentError(
        "identity is empty and this sidecar has no default identity; pass "
        "identity, or run the "
        "sidecar with POD_NAME and POD_UID set (downward API) or --identity");
  }
  if (s.ok())
    s = ValidateLeaseDuration(req->lease_duration_seconds(),
                              "lease_duration_seconds");
  if (!s.ok()) {
    stream->Finish(s);
    return stream.get();
  }
  absl::Duration ld = req->lease_duration_seconds() == 0
                          ? election_->options().default_lease_duration
                          : absl::Seconds(req->lease_duration_seconds());
  auto id = election_->StartCampaign(
      election_->Key(req->lock().namespace_(), req->lock().name()), identity,
      ld, stream);
  if (!id.ok()) {
    stream->Finish(id.status());
  } else {
    stream->Registered(*id);
  }
  return stream.get();
}

grpc::ServerUnaryReactor* ElectionService::Resign(
    grpc::CallbackServerContext* ctx, const mcl::v1::ResignRequest* req,
    mcl::v1::ResignResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Status s = ValidateLock(req->lock());
  if (s.ok()) s = ValidateIdentity(req->identity(), "identity");
  if (!s.ok()) {
    reactor->Finish(ToGrpc(s));
    return reactor;
  }
  election_->Resign(
      election_->Key(req->lock().namespace_(), req->lock().name()),
      req->identity(), [reactor, resp](absl::StatusOr<bool> r) {
        if (r.ok()) resp->set_was_leader(*r);
        reactor->Finish(ToGrpc(r.status()));
      });
  return reactor;
}

grpc::ServerWriteReactor<mcl::v1::LeadershipEvent>* ElectionService::Observe(
    grpc::CallbackServerContext* ctx, const mcl::v1::ObserveRequest* req) {
  auto stream = EventStream::Create(election_, EventStream::Kind::kObserve);
  absl::Status s = ValidateLock(req->lock());
  if (!s.ok()) {
    stream->Finish(s);
    return stream.get();
  }
  auto id = election_->StartObserve(
      election_->Key(req->lock().namespace_(), req->lock().name()), stream);
  if (!id.ok()) {
    stream->Finish(id.status());
  } else {
    stream->Registered(*id);
  }
  return stream.get();
}

grpc::ServerUnaryReactor* ElectionService::Leader(
    grpc::CallbackServerContext* ctx, const mcl::v1::LeaderRequest* req,
    mcl::v1::LeaderResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Status s = ValidateLock(req->lock());
  if (!s.ok()) {
    reactor->Finish(ToGrpc(s));
    return reactor;
  }
  auto g = election_->Leader(
      election_->Key(req->lock().namespace_(), req->lock().name()));
  if (!g.ok()) {
    reactor->Finish(ToGrpc(g.status()));
    return reactor;
  }
  FillLeader(*g, resp->mutable_leader());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace mcl::sidecar
