#include "sidecar/health_service.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mcl::sidecar {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class HealthService::WatchStream : public ServerStream<HealthCheckResponse> {
 public:
  explicit WatchStream(HealthService* health) : health_(health) {}
  HealthCheckRequest* request() { return &request_; }
  void set_id(uint64_t id) { id_ = id; }

  void Send(HealthCheckResponse::ServingStatus status) {
    HealthCheckResponse r;
    r.set_status(status);
    Write(std::move(r));
  }

 protected:
  void OnDone(bool) override {
    absl::MutexLock l(&health_->mu_);
    health_->watches_.erase(id_);  // may drop the last reference but one
  }

 private:
  HealthService* health_;
  HealthCheckRequest request_;
  uint64_t id_ = 0;  // set on the loop's thread before OnDone can run
};

HealthService::HealthService(std::set<std::string> services)
    : services_(std::move(services)) {}

void HealthService::Start(CompletionLoop* loop) {
  loop_ = loop;
  AcceptCheck();
  AcceptWatch();
}

HealthCheckResponse::ServingStatus HealthService::StatusOf(
    const std::string& service) {
  if (!service.empty() && services_.count(service) == 0) {
    return HealthCheckResponse::SERVICE_UNKNOWN;
  }
  absl::MutexLock l(&mu_);
  return serving_ ? HealthCheckResponse::SERVING
                  : HealthCheckResponse::NOT_SERVING;
}

void HealthService::SetServing(bool serving) {
  std::vector<std::pair<std::shared_ptr<WatchStream>, std::string>> to_tell;
  {
    absl::MutexLock l(&mu_);
    if (serving_ == serving) return;
    serving_ = serving;
    for (auto& [id, w] : watches_) {
      const std::string& service = w->request()->service();
      // A watch of an unknown name heard SERVICE_UNKNOWN, which this does
      // not change.
      if (service.empty() || services_.count(service) != 0)
        to_tell.emplace_back(w, service);
    }
  }
  for (auto& [w, service] : to_tell) w->Send(StatusOf(service));
}

void HealthService::AcceptCheck() {
  using CheckCall = UnaryCall<HealthCheckRequest, HealthCheckResponse>;
  auto call = std::make_shared<CheckCall>();
  void* tag = CompletionLoop::Tag([this, call](bool ok) {
    if (!ok) return;
    AcceptCheck();
    const std::string& service = call->request()->service();
    HealthCheckResponse::ServingStatus s = StatusOf(service);
    if (s == HealthCheckResponse::SERVICE_UNKNOWN) {
      call->Reply(grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat("unknown service \"", service,
                       "\"; ask for \"\" (the whole server) or one of: ",
                       absl::StrJoin(services_, ", "))));
      return;
    }
    call->response()->set_status(s);
    call->Reply(grpc::Status::OK);
  });
  service_.RequestCheck(call->context(), call->request(), call->responder(),
                        loop_->cq(), loop_->cq(), tag);
}

void HealthService::AcceptWatch() {
  auto stream = std::make_shared<WatchStream>(this);
  void* tag = stream->Arm([this, stream](bool ok) {
    if (!ok) return;
    AcceptWatch();
    {
      absl::MutexLock l(&mu_);
      stream->set_id(next_watch_);
      watches_[next_watch_++] = stream;
    }
    // The current status at once; an unknown service stays open with
    // SERVICE_UNKNOWN, as the protocol says.
    stream->Send(StatusOf(stream->request()->service()));
  });
  service_.RequestWatch(stream->context(), stream->request(), stream->writer(),
                        loop_->cq(), loop_->cq(), tag);
}

}  // namespace mcl::sidecar
