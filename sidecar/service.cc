#include "sidecar/service.h"

#include <memory>
#include <string>

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

// A Campaign or Observe stream: the Election's EventSink for it. Tells the
// Election once when the call is over, so a cancelled Campaign resigns.
class EventStream : public ServerStream<mcl::v1::LeadershipEvent>,
                    public EventSink {
 public:
  enum class Kind { kCampaign, kObserve };
  EventStream(ElectionApi* election, Clock* clock, Kind kind)
      : election_(election), clock_(clock), kind_(kind) {}

  // The Election's id for this stream, once registered.
  // The Election's answer to StartCampaign/StartObserve: an error ends the
  // stream with it; an id registers it. If the call ended first (OnDone found
  // no id yet), ends it here: each side sees the other's write under mu_, so
  // exactly one of them calls End.
  void Registered(const absl::StatusOr<uint64_t>& id) {
    if (!id.ok()) {
      Finish(id.status());
      return;
    }
    bool over, cancelled;
    {
      absl::MutexLock l(&mu_);
      id_ = *id;
      over = over_;
      cancelled = cancelled_;
    }
    if (over) End(EndReason(cancelled));
  }

  void Send(const StreamEvent& e) override { Write(ToProto(e)); }
  void Finish(const absl::Status& s) override { Close(ToGrpc(s)); }

 protected:
  // The send time is taken just before gRPC gets the message: a message
  // queued behind others is stamped when its turn comes.
  void BeforeWrite(mcl::v1::LeadershipEvent* m) override {
    StampSent(clock_->Monotonic(), m);
  }

  void OnDone(bool cancelled) override {
    {
      absl::MutexLock l(&mu_);
      over_ = true;
      cancelled_ = cancelled;
    }
    End(EndReason(cancelled));
  }

 private:
  std::string EndReason(bool cancelled) const {
    if (kind_ != Kind::kCampaign) return "";
    return cancelled ? "the Campaign stream was cancelled"
                     : "the Campaign stream ended";
  }

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

  ElectionApi* election_;
  Clock* clock_;
  Kind kind_;
  absl::Mutex mu_;
  bool over_ ABSL_GUARDED_BY(mu_) = false;  // the call is done
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;  // the Election was told
  uint64_t id_ ABSL_GUARDED_BY(mu_) = 0;
};

using ResignCall = UnaryCall<mcl::v1::ResignRequest, mcl::v1::ResignResponse>;
using LeaderCall = UnaryCall<mcl::v1::LeaderRequest, mcl::v1::LeaderResponse>;

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
  if (e.event.state == LeaderState::kLeader && e.event.valid_until) {
    out.mutable_validity()->set_valid_until_monotonic_ns(
        absl::ToInt64Nanoseconds(*e.event.valid_until));
  }
  return out;
}

void StampSent(absl::Duration sent, mcl::v1::LeadershipEvent* e) {
  if (!e->has_validity()) return;
  mcl::v1::Validity* v = e->mutable_validity();
  const int64_t sent_ns = absl::ToInt64Nanoseconds(sent);
  v->set_sent_monotonic_ns(sent_ns);
  const int64_t left = v->valid_until_monotonic_ns() - sent_ns;
  v->mutable_remaining()->set_seconds(left / 1000000000);
  v->mutable_remaining()->set_nanos(static_cast<int32_t>(left % 1000000000));
}

void ElectionService::Start(CompletionLoop* loop, Workers* workers) {
  loop_ = loop;
  workers_ = workers;
  AcceptCampaign();
  AcceptObserve();
  AcceptResign();
  AcceptLeader();
}

// Each Accept* waits for one call of its method and, when it arrives, first
// waits for the next, so one call of each method is always pending.

void ElectionService::AcceptCampaign() {
  auto stream = std::make_shared<EventStream>(election_, clock_,
                                              EventStream::Kind::kCampaign);
  auto req = std::make_shared<mcl::v1::CampaignRequest>();
  void* tag = stream->Arm([this, stream, req](bool ok) {
    if (!ok) return;  // shutting down
    AcceptCampaign();
    workers_->Run([this, stream, req] {
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
            "identity is empty and this sidecar has no default identity; "
            "pass identity, or run the sidecar with POD_NAME and POD_UID set "
            "(downward API) or --identity");
      }
      if (s.ok())
        s = ValidateLeaseDuration(req->lease_duration_seconds(),
                                  "lease_duration_seconds");
      if (!s.ok()) {
        stream->Finish(s);
        return;
      }
      absl::Duration ld = req->lease_duration_seconds() == 0
                              ? election_->DefaultLeaseDuration()
                              : absl::Seconds(req->lease_duration_seconds());
      stream->Registered(election_->StartCampaign(
          election_->Key(req->lock().namespace_(), req->lock().name()),
          identity, ld, stream));
    });
  });
  service_.RequestCampaign(stream->context(), req.get(), stream->writer(),
                           loop_->cq(), loop_->cq(), tag);
}

void ElectionService::AcceptObserve() {
  auto stream = std::make_shared<EventStream>(election_, clock_,
                                              EventStream::Kind::kObserve);
  auto req = std::make_shared<mcl::v1::ObserveRequest>();
  void* tag = stream->Arm([this, stream, req](bool ok) {
    if (!ok) return;
    AcceptObserve();
    workers_->Run([this, stream, req] {
      absl::Status s = ValidateLock(req->lock());
      if (!s.ok()) {
        stream->Finish(s);
        return;
      }
      stream->Registered(election_->StartObserve(
          election_->Key(req->lock().namespace_(), req->lock().name()),
          stream));
    });
  });
  service_.RequestObserve(stream->context(), req.get(), stream->writer(),
                          loop_->cq(), loop_->cq(), tag);
}

void ElectionService::AcceptResign() {
  auto call = std::make_shared<ResignCall>();
  void* tag = CompletionLoop::Tag([this, call](bool ok) {
    if (!ok) return;
    AcceptResign();
    const mcl::v1::ResignRequest& req = *call->request();
    absl::Status s = ValidateLock(req.lock());
    if (s.ok()) s = ValidateIdentity(req.identity(), "identity");
    if (!s.ok()) {
      call->Reply(ToGrpc(s));
      return;
    }
    workers_->Run([this, call] {
      const mcl::v1::ResignRequest& req = *call->request();
      election_->Resign(
          election_->Key(req.lock().namespace_(), req.lock().name()),
          req.identity(), [call](absl::StatusOr<bool> r) {
            if (r.ok()) call->response()->set_was_leader(*r);
            call->Reply(ToGrpc(r.status()));
          });
    });
  });
  service_.RequestResign(call->context(), call->request(), call->responder(),
                         loop_->cq(), loop_->cq(), tag);
}

void ElectionService::AcceptLeader() {
  auto call = std::make_shared<LeaderCall>();
  void* tag = CompletionLoop::Tag([this, call](bool ok) {
    if (!ok) return;
    AcceptLeader();
    absl::Status s = ValidateLock(call->request()->lock());
    if (!s.ok()) {
      call->Reply(ToGrpc(s));
      return;
    }
    workers_->Run([this, call] {
      const mcl::v1::LockRef& lock = call->request()->lock();
      auto g =
          election_->Leader(election_->Key(lock.namespace_(), lock.name()));
      if (!g.ok()) {
        call->Reply(ToGrpc(g.status()));
        return;
      }
      FillLeader(*g, call->response()->mutable_leader());
      call->Reply(grpc::Status::OK);
    });
  });
  service_.RequestLeader(call->context(), call->request(), call->responder(),
                         loop_->cq(), loop_->cq(), tag);
}

}  // namespace mcl::sidecar
