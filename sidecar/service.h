// The gRPC service mcl.v1.Election on the async API (async_grpc.h): validates
// requests, maps them onto Election and streams its events. Streams are small
// objects, not threads, so 100 observers cost 100 small objects.
#ifndef MCL_SIDECAR_SERVICE_H_
#define MCL_SIDECAR_SERVICE_H_

#include "common/clock.h"
#include "mcl/v1/election.grpc.pb.h"
#include "sidecar/async_grpc.h"
#include "sidecar/election_api.h"

namespace mcl::sidecar {

class ElectionService {
 public:
  // `clock` stamps each LEADER event's validity with its send time; its
  // Monotonic() must be CLOCK_MONOTONIC (Clock::Real()), the clock the
  // bound is on.
  explicit ElectionService(ElectionApi* election, Clock* clock = Clock::Real())
      : election_(election), clock_(clock) {}

  // Register with the ServerBuilder before BuildAndStart.
  grpc::Service* service() { return &service_; }
  // Starts taking calls: each arrives on `loop`; handlers that may block
  // (Campaign, Observe and Leader wait for the namespace's first sync) run on
  // `workers`. Both must outlive the server.
  void Start(CompletionLoop* loop, Workers* workers);

 private:
  void AcceptCampaign();
  void AcceptObserve();
  void AcceptResign();
  void AcceptLeader();

  ElectionApi* election_;
  Clock* clock_;
  mcl::v1::Election::AsyncService service_;
  CompletionLoop* loop_ = nullptr;
  Workers* workers_ = nullptr;
};

grpc::Status ToGrpc(const absl::Status& s);
// A LEADER event's validity gets valid_until only; the stream stamps
// sent_monotonic_ns and remaining when it hands the event to gRPC.
mcl::v1::LeadershipEvent ToProto(const StreamEvent& e);
// Stamps a LEADER event's validity with its send time `sent` (monotonic).
void StampSent(absl::Duration sent, mcl::v1::LeadershipEvent* e);

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_SERVICE_H_
