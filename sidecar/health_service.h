// The standard gRPC health service (grpc.health.v1.Health: Check and Watch) on
// the async API, so the server has no callback method (async_grpc.h says why).
// Reports one status for the whole server under "" and for each name given.
#ifndef MCL_SIDECAR_HEALTH_SERVICE_H_
#define MCL_SIDECAR_HEALTH_SERVICE_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "sidecar/async_grpc.h"

namespace mcl::sidecar {

class HealthService {
 public:
  // `services`: the names besides "" that Check and Watch know.
  explicit HealthService(std::set<std::string> services);

  grpc::Service* service() { return &service_; }
  void Start(CompletionLoop* loop);

  // SERVING or NOT_SERVING for every known name; Watch streams hear of it.
  void SetServing(bool serving);

 private:
  class WatchStream;
  void AcceptCheck();
  void AcceptWatch();
  grpc::health::v1::HealthCheckResponse::ServingStatus StatusOf(
      const std::string& service);

  const std::set<std::string> services_;
  grpc::health::v1::Health::AsyncService service_;
  CompletionLoop* loop_ = nullptr;
  absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_watch_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::shared_ptr<WatchStream>> watches_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_HEALTH_SERVICE_H_
