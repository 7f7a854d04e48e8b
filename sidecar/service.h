// The gRPC service mcl.v1.Election (callback API): validates requests, maps
// them onto Election and streams its events. Streams are reactors, not threads,
// so 100 observers cost 100 small objects.
#ifndef MCL_SIDECAR_SERVICE_H_
#define MCL_SIDECAR_SERVICE_H_

#include "mcl/v1/election.grpc.pb.h"
#include "sidecar/election.h"

namespace mcl::sidecar {

class ElectionService : public mcl::v1::Election::CallbackService {
 public:
  explicit ElectionService(Election* election) : election_(election) {}

  grpc::ServerWriteReactor<mcl::v1::LeadershipEvent>* Campaign(
      grpc::CallbackServerContext* ctx,
      const mcl::v1::CampaignRequest* req) override;
  grpc::ServerUnaryReactor* Resign(grpc::CallbackServerContext* ctx,
                                   const mcl::v1::ResignRequest* req,
                                   mcl::v1::ResignResponse* resp) override;
  grpc::ServerWriteReactor<mcl::v1::LeadershipEvent>* Observe(
      grpc::CallbackServerContext* ctx,
      const mcl::v1::ObserveRequest* req) override;
  grpc::ServerUnaryReactor* Leader(grpc::CallbackServerContext* ctx,
                                   const mcl::v1::LeaderRequest* req,
                                   mcl::v1::LeaderResponse* resp) override;

 private:
  Election* election_;
};

grpc::Status ToGrpc(const absl::Status& s);
mcl::v1::LeadershipEvent ToProto(const StreamEvent& e);

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_SERVICE_H_
